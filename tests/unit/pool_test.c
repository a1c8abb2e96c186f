/* pool_test.c - the pool of small blocks (runtime/core/pool.c) under rt_pool_realloc,
 * the lua_Alloc a processor's state uses: blocks come back to their class, blocks of
 * the allocator underneath (made before the pool, or too large) go back to it and never
 * into a class, a full range falls back, a refusal leaves the block as it was. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pool.h"
#include "unit.h"

/* The allocator underneath: libc, counting its live blocks; refuses when `refuse`. */
typedef struct under_state {
    long live;
    int refuse;
} under_state;

static void *under(void *ud, void *ptr, size_t osize, size_t nsize)
{
    under_state *u = ud;
    if (nsize == 0) {
        u->live -= ptr != NULL;
        free(ptr);
        return NULL;
    }
    if (u->refuse)
        return NULL;
    void *q = realloc(ptr, nsize);
    if (q && !ptr)
        u->live++;
    return q;
}

static void fill(void *p, size_t n, int c) { memset(p, c, n); }

static int holds(const void *p, size_t n, int c)
{
    for (size_t i = 0; i < n; i++)
        if (((const unsigned char *)p)[i] != (unsigned char)c)
            return 0;
    return 1;
}

int main(void)
{
    rt_pool pl;
    under_state u = { 0, 0 };
    unit_check(rt_pool_init(&pl, 64 * 1024) == 0, "pool: a range is reserved");

    void *a = rt_pool_realloc(&pl, under, &u, NULL, 0, 40);
    unit_check(a && rt_pool_owns(&pl, a) && (uintptr_t)a % RT_POOL_GRAIN == 0 && u.live == 0,
               "pool: a small block comes from the range, aligned");
    fill(a, 40, 'a');
    void *b = rt_pool_realloc(&pl, under, &u, a, 40, 44);
    unit_check(b == a, "pool: growing within the class keeps the block");
    void *c = rt_pool_realloc(&pl, under, &u, b, 44, 100);
    unit_check(c && c != b && rt_pool_owns(&pl, c) && holds(c, 40, 'a'),
               "pool: growing past the class moves the block and its bytes");
    void *d = rt_pool_realloc(&pl, under, &u, NULL, 0, 33);
    unit_check(d == b, "pool: a freed block is the next of its class");
    unit_check(rt_pool_realloc(&pl, under, &u, c, 100, 20) == c,
               "pool: shrinking keeps the block");
    rt_pool_realloc(&pl, under, &u, c, 20, 0);      /* freed as its new size's class */
    unit_check(rt_pool_realloc(&pl, under, &u, NULL, 0, 17) == c,
               "pool: a shrunk block serves its new class (it is larger than that)");

    void *big = rt_pool_realloc(&pl, under, &u, NULL, 0, RT_POOL_MAX + 1);
    unit_check(big && !rt_pool_owns(&pl, big) && u.live == 1,
               "pool: a block past RT_POOL_MAX comes from the allocator underneath");
    fill(big, RT_POOL_MAX + 1, 'b');
    void *small = rt_pool_realloc(&pl, under, &u, big, RT_POOL_MAX + 1, 64);
    unit_check(small && rt_pool_owns(&pl, small) && u.live == 0 && holds(small, 64, 'b'),
               "pool: shrunk under RT_POOL_MAX it moves into the pool, its bytes kept");

    /* A block the allocator underneath made before the pool took over. */
    void *old = under(&u, NULL, 0, 24);
    fill(old, 24, 'o');
    rt_pool_realloc(&pl, under, &u, old, 24, 0);
    void *next32 = rt_pool_realloc(&pl, under, &u, NULL, 0, 32);
    unit_check(u.live == 0 && next32 != old,
               "pool: a block it does not own is freed underneath, never into a class");
    old = under(&u, NULL, 0, 24);
    fill(old, 24, 'o');
    void *moved = rt_pool_realloc(&pl, under, &u, old, 24, 48);
    unit_check(moved && rt_pool_owns(&pl, moved) && u.live == 0 && holds(moved, 24, 'o'),
               "pool: growing a block it does not own moves it into the pool");

    /* The range used up: the allocator underneath serves, and a refusal is NULL. */
    int outside = 0;
    void *last = NULL, *from_under[200];
    for (int i = 0; i < 200; i++) {
        last = rt_pool_realloc(&pl, under, &u, NULL, 0, RT_POOL_MAX);
        if (last && !rt_pool_owns(&pl, last))
            from_under[outside++] = last;
    }
    unit_check(outside > 0 && u.live == outside,
               "pool: past its range, blocks come from underneath (%d)", outside);
    void *inpool = rt_pool_realloc(&pl, under, &u, NULL, 0, 16);
    fill(inpool, 16, 'k');
    u.refuse = 1;
    unit_check(rt_pool_realloc(&pl, under, &u, inpool, 16, RT_POOL_MAX) == NULL &&
               holds(inpool, 16, 'k'),
               "pool: a growth refused underneath is NULL, the block untouched");
    u.refuse = 0;
    for (int i = 0; i < outside; i++)
        rt_pool_realloc(&pl, under, &u, from_under[i], RT_POOL_MAX, 0);
    unit_check(u.live == 0, "pool: blocks from underneath are freed there");
    rt_pool_release(&pl);

    /* An empty pool (its range refused) gives nothing and owns nothing. */
    rt_pool none = { 0 };
    void *e = rt_pool_realloc(&none, under, &u, NULL, 0, 16);
    unit_check(e && !rt_pool_owns(&none, e), "pool: an empty pool hands every block down");
    rt_pool_realloc(&none, under, &u, e, 16, 0);
    return unit_exit();
}
