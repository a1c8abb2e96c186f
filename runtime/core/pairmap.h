/* pairmap.h - open-addressing hash map keyed by a pair of strings, e.g. (domain, type). */
#ifndef RT_PAIRMAP_H
#define RT_PAIRMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct rt_pairmap_slot {
    char *key;              /* "a\0b\0", NULL for an empty slot */
    size_t alen;
    uint64_t hash;
    uint64_t value;
} rt_pairmap_slot;

typedef struct rt_pairmap {
    rt_pairmap_slot *slots;
    size_t cap, n;
} rt_pairmap;

/* The value stored for (a, b), or NULL. */
uint64_t *rt_pairmap_get(const rt_pairmap *m, const char *a, const char *b);
/* The hash of (a, b) that the *_hashed calls take, so that a record's (domain, type)
 * is hashed once on the hot path for the router and the counters. It comes in two
 * steps too, so that (domain, "*") costs one byte more:
 * rt_pairmap_hash(a, b) == rt_pairmap_hash_b(rt_pairmap_hash_a(a), b). */
uint64_t rt_pairmap_hash(const char *a, const char *b);
uint64_t rt_pairmap_hash_a(const char *a);
uint64_t rt_pairmap_hash_b(uint64_t ha, const char *b);
/* rt_pairmap_get given that hash. */
uint64_t *rt_pairmap_get_hashed(const rt_pairmap *m, const char *a, const char *b,
                                uint64_t h);
/* The value for (a, b), inserted as 0 when new; NULL when out of memory. */
uint64_t *rt_pairmap_put(rt_pairmap *m, const char *a, const char *b);
/* Iterate: start with *i = 0; 1 and the next pair while there is one, else 0. */
int rt_pairmap_next(const rt_pairmap *m, size_t *i, const char **a, const char **b,
                    uint64_t *value);
/* Release the map. */
void rt_pairmap_free(rt_pairmap *m);

#endif
