/* keymap_test.c - the keyed-state index (runtime/core/keymap.c) against a plain array
 * model: random puts, gets and deletes over keys that differ only by partition or by
 * a byte, through growth and tombstones; then a walk that deletes as it goes. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keymap.h"
#include "unit.h"

#define NKEYS 600
#define OPS 40000

typedef struct model {
    int32_t partition;
    char key[16];
    size_t len;
    intptr_t value;     /* 0: absent */
} model;

int main(void)
{
    static model m[NKEYS];
    rt_keymap km = { 0 };
    int mismatches = 0, oom = 0;
    for (int i = 0; i < NKEYS; i++) {
        m[i].partition = i % 3;     /* the same text under three partitions */
        /* Keys with embedded NUL bytes and shared prefixes. */
        m[i].len = (size_t)snprintf(m[i].key, sizeof m[i].key, "k%d", i / 3) + (i % 2);
    }
    srand(7);
    for (int op = 0; op < OPS; op++) {
        model *e = &m[rand() % NKEYS];
        int what = rand() % 3;
        if (what == 0) {
            void **slot = rt_keymap_put(&km, e->partition, e->key, e->len);
            if (!slot) {
                oom++;
                continue;
            }
            e->value = op + 1;
            *slot = (void *)e->value;
        } else if (what == 1) {
            void *v = rt_keymap_del(&km, e->partition, e->key, e->len);
            mismatches += (intptr_t)v != e->value;
            e->value = 0;
        } else {
            mismatches += (intptr_t)rt_keymap_get(&km, e->partition, e->key, e->len) != e->value;
        }
    }
    size_t live = 0;
    for (int i = 0; i < NKEYS; i++) {
        live += m[i].value != 0;
        mismatches += (intptr_t)rt_keymap_get(&km, m[i].partition, m[i].key, m[i].len) != m[i].value;
    }
    unit_check(!oom && mismatches == 0, "keymap: %d random puts, gets and deletes agree with "
               "the model (%d mismatches)", OPS, mismatches);
    unit_check(km.n == live, "keymap: n counts the live keys (%zu, model %zu)", km.n, live);
    unit_check(km.used <= km.cap && km.n <= km.used, "keymap: live <= used <= capacity "
               "(%zu, %zu, %zu)", km.n, km.used, km.cap);

    /* A walk sees every live key once, and may delete the key it is on. */
    size_t i = 0, seen = 0, wrong = 0;
    rt_keymap_slot *s;
    while ((s = rt_keymap_next(&km, &i))) {
        seen++;
        int found = 0;
        for (int j = 0; j < NKEYS; j++)
            if (m[j].value && m[j].partition == s->partition && m[j].len == s->len &&
                memcmp(m[j].key, s->key, s->len) == 0 && (intptr_t)s->value == m[j].value) {
                found = 1;
                m[j].value = 0;
            }
        wrong += !found;
        rt_keymap_del(&km, s->partition, s->key, s->len);
    }
    unit_check(seen == live && wrong == 0 && km.n == 0, "keymap: a deleting walk visits each "
               "of the %zu keys once and leaves the map empty (%zu seen, %zu unknown)",
               live, seen, wrong);
    rt_keymap_free(&km);

    /* A key in two partitions is found from either; one in a single partition is not. */
    rt_keymap two = { 0 };
    int32_t other = -1;
    int ok = rt_keymap_put(&two, 3, "m1", 2) && rt_keymap_put(&two, 3, "m2", 2) &&
             rt_keymap_put(&two, 5, "m1", 2);
    unit_check(ok && rt_keymap_elsewhere(&two, 3, "m1", 2, &other) && other == 5 &&
                   rt_keymap_elsewhere(&two, 5, "m1", 2, &other) && other == 3,
               "keymap: a key held by partitions 3 and 5 is found elsewhere from each");
    unit_check(!rt_keymap_elsewhere(&two, 3, "m2", 2, &other) &&
                   !rt_keymap_elsewhere(&two, 7, "m3", 2, &other),
               "keymap: a key of one partition, or of none, is not found elsewhere");
    rt_keymap_del(&two, 5, "m1", 2);
    unit_check(!rt_keymap_elsewhere(&two, 3, "m1", 2, &other),
               "keymap: once partition 5's copy of the key is deleted, it is not split");
    rt_keymap_free(&two);

    /* The map's own copy of a key (what a window key points at) is the one a later put
     * of the same key hands back, and stays where it is while the table grows. */
    rt_keymap grow = { 0 };
    const char *own = NULL, *again = NULL, *later = NULL;
    int put = rt_keymap_put_own(&grow, 1, "first", 5, &own) != NULL &&
              rt_keymap_put_own(&grow, 1, "first", 5, &again) != NULL;
    for (int g = 0; put && g < 5000; g++) {
        char k[16];
        int n = snprintf(k, sizeof k, "k%d", g);
        put = rt_keymap_put(&grow, 1, k, (size_t)n) != NULL;
    }
    put = put && rt_keymap_put_own(&grow, 1, "first", 5, &later) != NULL;
    unit_check(put && own && own == again && own == later && memcmp(own, "first", 5) == 0 &&
                   grow.cap > 5000,
               "keymap: the own copy of a key is handed back by later puts and survives "
               "growing to %zu slots", grow.cap);
    rt_keymap_free(&grow);
    return unit_exit();
}
