/* keymap.h - open-addressing hash map from (partition, key bytes) to a pointer: the
 * index of keyed state and of window keys, which live per input partition. The hash is
 * of the key bytes alone, so the entries of one key in several partitions sit in one
 * probe run, where rt_keymap_elsewhere finds them with the lookup's own reads. */
#ifndef RT_KEYMAP_H
#define RT_KEYMAP_H

#include <stddef.h>
#include <stdint.h>

/* 32 bytes: a map of 100,000 keys has 262,144 slots, and a job has one a processor for
 * its state and one a window definition. */
typedef struct rt_keymap_slot {
    char *key;              /* own copy; NULL empty; the map's tombstone after a delete */
    void *value;
    uint32_t len;
    uint32_t hash;          /* the low half of the key's FNV-1a hash */
    int32_t partition;
} rt_keymap_slot;

typedef struct rt_keymap {
    rt_keymap_slot *slots;
    size_t cap, n, used;    /* used: live slots plus tombstones */
} rt_keymap;

/* The value of (partition, key), or NULL. */
void *rt_keymap_get(const rt_keymap *m, int32_t partition, const char *key, size_t len);
/* Where the value of (partition, key) is kept, inserted as NULL when new; NULL when out
 * of memory. The pointer is valid until the next put or delete. */
void **rt_keymap_put(rt_keymap *m, int32_t partition, const char *key, size_t len);
/* rt_keymap_put, and *own the map's copy of the key: valid until the key is deleted,
 * so a value freed with its key can point at it instead of keeping a copy. */
void **rt_keymap_put_own(rt_keymap *m, int32_t partition, const char *key, size_t len,
                         const char **own);
/* Remove (partition, key); its value, or NULL when absent (the caller frees it). */
void *rt_keymap_del(rt_keymap *m, int32_t partition, const char *key, size_t len);
/* Whether a partition other than `partition` holds `key`: 1 with *other set, else 0.
 * (State is kept per input partition; a key in two is a key whose values are split.) */
int rt_keymap_elsewhere(const rt_keymap *m, int32_t partition, const char *key, size_t len,
                        int32_t *other);
/* Iterate: start with *i = 0; the next live slot, or NULL at the end. Deleting the
 * returned slot's key during the walk is allowed. */
rt_keymap_slot *rt_keymap_next(const rt_keymap *m, size_t *i);
/* Slot i (< m->cap) when it holds a key, else NULL: for walks in bounded steps. */
rt_keymap_slot *rt_keymap_at(const rt_keymap *m, size_t i);
/* Release the map (not the values). */
void rt_keymap_free(rt_keymap *m);

#endif
