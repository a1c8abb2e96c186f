/* lookup_cache.c - chained hash of keys plus an intrusive LRU list of cached rows.
 * The table doubles when it holds as many entries as buckets, so chains stay short. */
#include <stdlib.h>
#include <string.h>

#include "lookup_cache.h"

rt_row *rt_row_new(const rt_cell *cells, unsigned n)
{
    size_t text = 0;
    for (unsigned i = 0; i < n; i++)
        if (cells[i].type == RT_CELL_TEXT)
            text += cells[i].len + 1;
    rt_row *r = malloc(sizeof *r + n * sizeof *cells + text);
    if (!r)
        return NULL;
    r->refs = 1;
    r->n = n;
    char *p = (char *)(r->cells + n);
    for (unsigned i = 0; i < n; i++) {
        r->cells[i] = cells[i];
        if (cells[i].type == RT_CELL_TEXT) {
            memcpy(p, cells[i].s, cells[i].len);
            p[cells[i].len] = '\0';
            r->cells[i].s = p;
            p += cells[i].len + 1;
        }
    }
    return r;
}

rt_row *rt_row_ref(rt_row *r)
{
    if (r)
        r->refs++;
    return r;
}

void rt_row_release(rt_row *r)
{
    if (r && --r->refs == 0)
        free(r);
}

static uint32_t hash_key(const char *k, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)k[i]) * 16777619u;
    return h;
}

int rt_cache_init(rt_cache *c)
{
    memset(c, 0, sizeof *c);
    c->nbuckets = 64;
    c->buckets = calloc(c->nbuckets, sizeof *c->buckets);
    c->lru.next = c->lru.prev = &c->lru;
    return c->buckets ? 0 : -1;
}

rt_entry *rt_cache_find(const rt_cache *c, const char *key, size_t len)
{
    uint32_t h = hash_key(key, len);
    for (rt_entry *e = c->buckets[h & (c->nbuckets - 1)]; e; e = e->hnext)
        if (e->hash == h && e->klen == len && memcmp(e->key, key, len) == 0)
            return e;
    return NULL;
}

static void grow(rt_cache *c)
{
    size_t n = c->nbuckets * 2;
    rt_entry **b = calloc(n, sizeof *b);
    if (!b)
        return;     /* longer chains, still correct */
    for (size_t i = 0; i < c->nbuckets; i++)
        for (rt_entry *e = c->buckets[i], *next; e; e = next) {
            next = e->hnext;
            e->hnext = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
        }
    free(c->buckets);
    c->buckets = b;
    c->nbuckets = n;
}

rt_entry *rt_cache_add(rt_cache *c, const char *key, size_t len)
{
    if (c->n >= c->nbuckets)
        grow(c);
    rt_entry *e = calloc(1, sizeof *e + len + 1);
    if (!e)
        return NULL;
    e->state = RT_ENTRY_PENDING;
    e->hash = hash_key(key, len);
    e->klen = len;
    memcpy(e->key, key, len);
    e->wtail = &e->waiters;
    e->prev = e->next = e;      /* in no list */
    rt_entry **slot = &c->buckets[e->hash & (c->nbuckets - 1)];
    e->hnext = *slot;
    *slot = e;
    c->n++;
    return e;
}

void rt_entry_unlink(rt_entry *e)
{
    e->prev->next = e->next;
    e->next->prev = e->prev;
    e->prev = e->next = e;
}

void rt_entry_link_after(rt_entry *pos, rt_entry *e)
{
    e->next = pos->next;
    e->prev = pos;
    pos->next->prev = e;
    pos->next = e;
}

void rt_cache_store(rt_cache *c, rt_entry *e, rt_row *row, double now)
{
    rt_entry_unlink(e);
    if (e->state == RT_ENTRY_CACHED)
        rt_row_release(e->row);
    else
        c->cached++;
    e->state = RT_ENTRY_CACHED;
    e->row = row;
    e->written = e->accessed = now;
    rt_entry_link_after(&c->lru, e);
}

void rt_cache_touch(rt_cache *c, rt_entry *e, double now)
{
    e->accessed = now;
    if (c->lru.next != e) {
        rt_entry_unlink(e);
        rt_entry_link_after(&c->lru, e);
    }
}

rt_entry *rt_cache_oldest(const rt_cache *c)
{
    return c->lru.prev == &c->lru ? NULL : c->lru.prev;
}

void rt_cache_remove(rt_cache *c, rt_entry *e)
{
    rt_entry **p = &c->buckets[e->hash & (c->nbuckets - 1)];
    while (*p != e)
        p = &(*p)->hnext;
    *p = e->hnext;
    rt_entry_unlink(e);
    if (e->state == RT_ENTRY_CACHED)
        c->cached--;
    rt_row_release(e->row);
    c->n--;
    free(e);
}

void rt_cache_free(rt_cache *c)
{
    if (c->buckets)
        for (size_t i = 0; i < c->nbuckets; i++)
            for (rt_entry *e = c->buckets[i], *next; e; e = next) {
                next = e->hnext;
                rt_row_release(e->row);
                free(e);
            }
    free(c->buckets);
    memset(c, 0, sizeof *c);
}
