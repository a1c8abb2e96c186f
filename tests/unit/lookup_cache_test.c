/* lookup_cache_test.c - a lookup's key table (runtime/lookup/lookup_cache.c) against a
 * model: keys added pending, stored, touched and evicted at random. The LRU list is
 * always the cached keys from most to least recently used, `cached` counts them, and
 * rows are shared by reference. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lookup_cache.h"
#include "unit.h"

#define NKEYS 400
#define OPS 20000

typedef struct model {
    char key[16];
    int state;          /* 0 absent, 1 pending, 2 cached */
    double used;        /* when last stored or touched */
} model;

/* The model's index of an entry's key "k<n>" (keys are not NUL-ended). */
static int index_of(const rt_entry *e)
{
    char text[16];
    snprintf(text, sizeof text, "%.*s", (int)e->klen, e->key);
    return atoi(text + 1);
}

/* The LRU list, walked front to back, is exactly the cached keys by `used`, newest
 * first; the count and the back links agree. */
static int lru_ok(const rt_cache *c, model *m)
{
    size_t n = 0;
    double prev = 1e300;
    for (const rt_entry *e = c->lru.next; e != &c->lru; e = e->next) {
        if (e->next->prev != e || e->state != RT_ENTRY_CACHED)
            return 0;
        int i = index_of(e);
        if (m[i].state != 2 || m[i].used > prev)
            return 0;
        prev = m[i].used;
        n++;
    }
    size_t want = 0;
    for (int i = 0; i < NKEYS; i++)
        want += m[i].state == 2;
    return n == want && c->cached == want;
}

int main(void)
{
    static model m[NKEYS];
    rt_cache c;
    if (rt_cache_init(&c) < 0)
        return 1;
    rt_cell cell = { .type = RT_CELL_TEXT, .s = "sensor", .len = 6 };
    rt_row *row = rt_row_new(&cell, 1);
    if (!row)
        return 1;
    for (int i = 0; i < NKEYS; i++)
        snprintf(m[i].key, sizeof m[i].key, "k%d", i);
    srand(11);
    int wrong = 0, lru_bad = 0;
    double now = 0;
    for (int op = 0; op < OPS; op++) {
        model *k = &m[rand() % NKEYS];
        size_t len = strlen(k->key);
        rt_entry *e = rt_cache_find(&c, k->key, len);
        now += 1;
        wrong += (e != NULL) != (k->state != 0);
        switch (rand() % 4) {
        case 0:     /* a miss starts a fetch */
            if (!e && (e = rt_cache_add(&c, k->key, len)))
                k->state = 1;
            break;
        case 1:     /* the fetch answered (with the shared row, or no row) */
            if (e && k->state == 1) {
                rt_cache_store(&c, e, rand() % 2 ? rt_row_ref(row) : NULL, now);
                k->state = 2;
                k->used = now;
            }
            break;
        case 2:     /* a hit */
            if (e && k->state == 2) {
                rt_cache_touch(&c, e, now);
                k->used = now;
            }
            break;
        default:    /* evict the oldest */
            if ((e = rt_cache_oldest(&c))) {
                m[index_of(e)].state = 0;
                rt_cache_remove(&c, e);
            }
        }
        if (op % 97 == 0)
            lru_bad += !lru_ok(&c, m);
    }
    lru_bad += !lru_ok(&c, m);
    size_t want_n = 0;
    for (int i = 0; i < NKEYS; i++)
        want_n += m[i].state != 0;
    unit_check(wrong == 0 && c.n == want_n, "lookup cache: find agrees with the model over "
               "%d operations (%d wrong, n=%zu want %zu)", OPS, wrong, c.n, want_n);
    unit_check(lru_bad == 0, "lookup cache: the LRU list is the cached keys, newest first, "
               "and `cached` counts them (%d bad checks)", lru_bad);
    rt_cache_free(&c);
    unit_check(row->refs == 1, "lookup cache: freeing the cache drops its row references "
               "(%u left, want 1)", (unsigned)row->refs);
    rt_row_release(row);
    return unit_exit();
}
