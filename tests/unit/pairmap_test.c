/* pairmap_test.c - the (string, string) counter map (runtime/core/pairmap.c): pairs
 * whose concatenations are equal stay apart, values survive growth, a walk sees each
 * pair once, a lookup by the two-step hash finds what a plain one does. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "pairmap.h"
#include "unit.h"

#define N 3000

int main(void)
{
    rt_pairmap m = { 0 };
    uint64_t *ab = rt_pairmap_put(&m, "ab", "c"), *a_bc = rt_pairmap_put(&m, "a", "bc");
    unit_check(ab && a_bc && ab != a_bc, "pairmap: (ab, c) and (a, bc) are different pairs");
    rt_pairmap_free(&m);

    memset(&m, 0, sizeof m);
    int bad = 0;
    char a[32], b[32];
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < N; i++) {
            snprintf(a, sizeof a, "domain%d", i % 37);
            snprintf(b, sizeof b, "type%d", i);
            uint64_t *v = rt_pairmap_put(&m, a, b);
            if (!v)
                bad++;
            else
                *v += (uint64_t)i + 1;
        }
    for (int i = 0; i < N; i++) {
        snprintf(a, sizeof a, "domain%d", i % 37);
        snprintf(b, sizeof b, "type%d", i);
        uint64_t *v = rt_pairmap_get(&m, a, b);
        bad += !v || *v != 3 * ((uint64_t)i + 1);
    }
    unit_check(bad == 0 && m.n == N, "pairmap: %d pairs counted three times each through "
               "growth (%d wrong, n=%zu)", N, bad, m.n);
    unit_check(rt_pairmap_get(&m, "domain0", "type1") == NULL,
               "pairmap: a pair never put is absent");
    int diff = 0;
    for (int k = 0; k < N; k++) {
        snprintf(a, sizeof a, "domain%d", k % 37);
        snprintf(b, sizeof b, "type%d", k);
        uint64_t ha = rt_pairmap_hash_a(a), h = rt_pairmap_hash_b(ha, b);
        diff += h != rt_pairmap_hash(a, b);
        diff += rt_pairmap_get_hashed(&m, a, b, h) != rt_pairmap_get(&m, a, b);
        diff += rt_pairmap_get_hashed(&m, a, "*", rt_pairmap_hash_b(ha, "*")) != NULL;
    }
    unit_check(diff == 0, "pairmap: the two-step hash is the pair's, lookups by it "
               "find the same slots as plain ones, and (a, \"*\") never put is absent (%d differ)", diff);
    size_t i = 0, seen = 0;
    const char *pa, *pb;
    uint64_t v, sum = 0;
    while (rt_pairmap_next(&m, &i, &pa, &pb, &v)) {
        seen++;
        sum += v;
    }
    unit_check(seen == N && sum == 3ull * N * (N + 1) / 2, "pairmap: a walk sees each pair "
               "once with its value (%zu pairs)", seen);
    rt_pairmap_free(&m);
    return unit_exit();
}
