/* pairmap.c - FNV-1a hashed, linear-probing map keyed by two strings.
 * The pair is hashed in place, so a lookup on the hot path copies nothing. */
#include <stdlib.h>
#include <string.h>

#include "pairmap.h"

uint64_t rt_pairmap_hash_a(const char *a)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *a; a++)
        h = (h ^ (unsigned char)*a) * 1099511628211ULL;
    return (h ^ 0x1f) * 1099511628211ULL;
}

uint64_t rt_pairmap_hash_b(uint64_t ha, const char *b)
{
    uint64_t h = ha;
    for (; *b; b++)
        h = (h ^ (unsigned char)*b) * 1099511628211ULL;
    return h;
}

uint64_t rt_pairmap_hash(const char *a, const char *b)
{
    return rt_pairmap_hash_b(rt_pairmap_hash_a(a), b);
}

static rt_pairmap_slot *find(const rt_pairmap *m, const char *a, const char *b, uint64_t h)
{
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        rt_pairmap_slot *s = &m->slots[i];
        if (!s->key)
            return s;
        if (s->hash == h && strcmp(s->key, a) == 0 && strcmp(s->key + s->alen + 1, b) == 0)
            return s;
    }
}

uint64_t *rt_pairmap_get_hashed(const rt_pairmap *m, const char *a, const char *b,
                                uint64_t h)
{
    if (!m->cap)
        return NULL;
    rt_pairmap_slot *s = find(m, a, b, h);
    return s->key ? &s->value : NULL;
}

uint64_t *rt_pairmap_get(const rt_pairmap *m, const char *a, const char *b)
{
    return rt_pairmap_get_hashed(m, a, b, rt_pairmap_hash(a, b));
}

static int grow(rt_pairmap *m)
{
    size_t cap = m->cap ? m->cap * 2 : 16;
    rt_pairmap_slot *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return -1;
    rt_pairmap old = *m;
    m->slots = slots;
    m->cap = cap;
    for (size_t i = 0; i < old.cap; i++)
        if (old.slots[i].key)
            *find(m, old.slots[i].key, old.slots[i].key + old.slots[i].alen + 1,
                  old.slots[i].hash) = old.slots[i];
    free(old.slots);
    return 0;
}

uint64_t *rt_pairmap_put(rt_pairmap *m, const char *a, const char *b)
{
    if ((m->n + 1) * 4 > m->cap * 3 && grow(m) < 0)
        return NULL;
    uint64_t h = rt_pairmap_hash(a, b);
    rt_pairmap_slot *s = find(m, a, b, h);
    if (s->key)
        return &s->value;
    size_t alen = strlen(a), blen = strlen(b);
    char *key = malloc(alen + blen + 2);
    if (!key)
        return NULL;
    memcpy(key, a, alen + 1);
    memcpy(key + alen + 1, b, blen + 1);
    s->key = key;
    s->alen = alen;
    s->hash = h;
    s->value = 0;
    m->n++;
    return &s->value;
}

int rt_pairmap_next(const rt_pairmap *m, size_t *i, const char **a, const char **b,
                    uint64_t *value)
{
    for (; *i < m->cap; (*i)++) {
        const rt_pairmap_slot *s = &m->slots[*i];
        if (!s->key)
            continue;
        *a = s->key;
        *b = s->key + s->alen + 1;
        *value = s->value;
        (*i)++;
        return 1;
    }
    return 0;
}

void rt_pairmap_free(rt_pairmap *m)
{
    for (size_t i = 0; i < m->cap; i++)
        free(m->slots[i].key);
    free(m->slots);
    memset(m, 0, sizeof *m);
}
