/* keymap.c - FNV-1a hashed, linear-probing map with tombstones, so that keyed state
 * can delete (TTL, ctx.state.del) without rebuilding the table. */
#include <stdlib.h>
#include <string.h>

#include "keymap.h"

static char tombstone;
#define TOMB (&tombstone)

/* The partition is left out: see keymap.h. */
static uint32_t hash_key(const char *key, size_t len)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)key[i]) * 1099511628211ULL;
    return (uint32_t)h;
}

static int same(const rt_keymap_slot *s, int32_t partition, const char *key, size_t len,
                uint32_t h)
{
    return s->key != TOMB && s->hash == h && s->partition == partition && s->len == len &&
           memcmp(s->key, key, len) == 0;
}

/* The slot holding the key, or NULL. */
static rt_keymap_slot *find(const rt_keymap *m, int32_t partition, const char *key,
                            size_t len, uint32_t h)
{
    if (!m->cap)
        return NULL;
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        rt_keymap_slot *s = &m->slots[i];
        if (!s->key)
            return NULL;
        if (same(s, partition, key, len, h))
            return s;
    }
}

void *rt_keymap_get(const rt_keymap *m, int32_t partition, const char *key, size_t len)
{
    rt_keymap_slot *s = find(m, partition, key, len, hash_key(key, len));
    return s ? s->value : NULL;
}

/* Rebuild at a size that fits the live keys, dropping the tombstones. */
static int rehash(rt_keymap *m)
{
    size_t cap = 16;
    while (cap * 3 < (m->n + 1) * 8)    /* at most 3/8 full after the rebuild */
        cap *= 2;
    rt_keymap_slot *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return -1;
    for (size_t i = 0; i < m->cap; i++) {
        rt_keymap_slot *s = &m->slots[i];
        if (!s->key || s->key == TOMB)
            continue;
        size_t j = s->hash & (cap - 1);
        while (slots[j].key)
            j = (j + 1) & (cap - 1);
        slots[j] = *s;
    }
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    m->used = m->n;
    return 0;
}

void **rt_keymap_put(rt_keymap *m, int32_t partition, const char *key, size_t len)
{
    const char *own;
    return rt_keymap_put_own(m, partition, key, len, &own);
}

void **rt_keymap_put_own(rt_keymap *m, int32_t partition, const char *key, size_t len,
                         const char **own)
{
    uint32_t h = hash_key(key, len);
    rt_keymap_slot *s = find(m, partition, key, len, h);
    if (s) {
        *own = s->key;
        return &s->value;
    }
    if (len > UINT32_MAX || ((m->used + 1) * 4 > m->cap * 3 && rehash(m) < 0))
        return NULL;
    char *copy = malloc(len ? len : 1);
    if (!copy)
        return NULL;
    memcpy(copy, key, len);
    size_t mask = m->cap - 1, i = h & mask;
    while (m->slots[i].key && m->slots[i].key != TOMB)
        i = (i + 1) & mask;
    s = &m->slots[i];
    if (!s->key)
        m->used++;
    *s = (rt_keymap_slot){ copy, NULL, (uint32_t)len, h, partition };
    m->n++;
    *own = copy;
    return &s->value;
}

void *rt_keymap_del(rt_keymap *m, int32_t partition, const char *key, size_t len)
{
    rt_keymap_slot *s = find(m, partition, key, len, hash_key(key, len));
    if (!s)
        return NULL;
    void *v = s->value;
    free(s->key);
    s->key = TOMB;
    s->value = NULL;
    m->n--;
    return v;
}

int rt_keymap_elsewhere(const rt_keymap *m, int32_t partition, const char *key, size_t len,
                        int32_t *other)
{
    if (!m->cap)
        return 0;
    uint32_t h = hash_key(key, len);
    size_t mask = m->cap - 1;
    for (size_t i = h & mask; m->slots[i].key; i = (i + 1) & mask) {
        const rt_keymap_slot *s = &m->slots[i];
        if (s->key != TOMB && s->hash == h && s->partition != partition && s->len == len &&
            memcmp(s->key, key, len) == 0) {
            *other = s->partition;
            return 1;
        }
    }
    return 0;
}

rt_keymap_slot *rt_keymap_at(const rt_keymap *m, size_t i)
{
    rt_keymap_slot *s = &m->slots[i];
    return s->key && s->key != TOMB ? s : NULL;
}

rt_keymap_slot *rt_keymap_next(const rt_keymap *m, size_t *i)
{
    while (*i < m->cap) {
        rt_keymap_slot *s = &m->slots[(*i)++];
        if (s->key && s->key != TOMB)
            return s;
    }
    return NULL;
}

void rt_keymap_free(rt_keymap *m)
{
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].key && m->slots[i].key != TOMB)
            free(m->slots[i].key);
    free(m->slots);
    memset(m, 0, sizeof *m);
}
