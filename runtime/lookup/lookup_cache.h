/* lookup_cache.h - the key table of one lookup: cached rows in LRU order, and keys
 * whose row is being fetched with the calls waiting for them. */
#ifndef RT_LOOKUP_CACHE_H
#define RT_LOOKUP_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "mysql_conn.h"

/* An immutable result row, shared by the cache and the calls it answered. */
typedef struct rt_row {
    uint32_t refs;
    uint32_t n;
    rt_cell cells[];        /* text copied after the cells */
} rt_row;

/* A copy of `n` cells as a row with one reference; NULL when out of memory. */
rt_row *rt_row_new(const rt_cell *cells, unsigned n);
/* One more reference. */
rt_row *rt_row_ref(rt_row *r);
/* Drop a reference (NULL is fine). */
void    rt_row_release(rt_row *r);

struct rt_lkwait;

enum rt_entry_state { RT_ENTRY_CACHED, RT_ENTRY_PENDING };

typedef struct rt_entry {
    struct rt_entry *hnext;         /* hash chain */
    struct rt_entry *prev, *next;   /* cached: LRU list; pending: send queue */
    enum rt_entry_state state;
    rt_row *row;            /* cached or fetched; NULL: the key has no row */
    double written, accessed;       /* monotonic seconds */
    struct rt_lkwait *waiters, **wtail;     /* pending: calls waiting, in order */
    double since;           /* pending: when the first call started waiting */
    uint32_t hash;
    size_t klen;
    char key[];
} rt_entry;

typedef struct rt_cache {
    rt_entry **buckets;
    size_t nbuckets, n;     /* n: every entry, cached or pending */
    size_t cached;
    rt_entry lru;           /* sentinel: lru.next is the most recently used */
} rt_cache;

/* Take an entry out of the list it is in (LRU or a send queue); a no-op when in none. */
void rt_entry_unlink(rt_entry *e);
/* Put `e` (in no list) right after `pos` in pos's list (`pos` may be a sentinel). */
void rt_entry_link_after(rt_entry *pos, rt_entry *e);
/* Start empty. -1 when out of memory. */
int  rt_cache_init(rt_cache *c);
/* The entry for `key`, or NULL. */
rt_entry *rt_cache_find(const rt_cache *c, const char *key, size_t len);
/* A new pending entry for `key` (not already present); NULL when out of memory. */
rt_entry *rt_cache_add(rt_cache *c, const char *key, size_t len);
/* Make `e` cached with `row` (reference taken over) as the most recently used. */
void rt_cache_store(rt_cache *c, rt_entry *e, rt_row *row, double now);
/* Mark a cached entry used now: it moves to the front of the LRU list. */
void rt_cache_touch(rt_cache *c, rt_entry *e, double now);
/* The least recently used cached entry, or NULL. */
rt_entry *rt_cache_oldest(const rt_cache *c);
/* Remove and free an entry (its row reference is dropped). */
void rt_cache_remove(rt_cache *c, rt_entry *e);
/* Free every entry. */
void rt_cache_free(rt_cache *c);

#endif
