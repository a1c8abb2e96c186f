/* pool.h - small blocks by size class, carved from one reserved address range.
 *
 * A processor's Lua state allocates and frees about fifteen small objects an event
 * (tables, their parts, strings, the ev userdata): in LuaJIT's own allocator, freeing
 * them (coalescing with their neighbours) and the allocations were a tenth of the file
 * pipeline's time. Here a free block goes on its size class's list and the next
 * allocation of that class takes it back, hot in the cache. Blocks are never merged or
 * returned: the range is reserved (not committed) up front, so the pool holds at most
 * its size of memory, and owning a block is one compare of its address.
 *
 * Sizes are rounded up to RT_POOL_GRAIN; blocks are RT_POOL_GRAIN-aligned. Callers
 * pass the block's size back when they free it (lua_Alloc does). */
#ifndef RT_POOL_H
#define RT_POOL_H

#include <stddef.h>
#include <stdint.h>

#define RT_POOL_GRAIN 16
#define RT_POOL_MAX 512         /* larger blocks are not the pool's */
#define RT_POOL_CLASSES (RT_POOL_MAX / RT_POOL_GRAIN + 1)

typedef struct rt_pool {
    char *base, *next, *end;    /* the range; [base, next) has been handed out */
    void *free[RT_POOL_CLASSES];
} rt_pool;

/* lua_Alloc's contract: realloc, malloc when ptr is NULL, free when nsize is 0. */
typedef void *(*rt_pool_under)(void *ud, void *ptr, size_t osize, size_t nsize);

/* Reserve `bytes` of address space (rounded up to pages); 0 or -1 (mmap failed). */
int rt_pool_init(rt_pool *pl, size_t bytes);
/* Give the range back: every block of it is gone. */
void rt_pool_release(rt_pool *pl);

static inline size_t rt_pool_class(size_t n)
{
    return (n + RT_POOL_GRAIN - 1) / RT_POOL_GRAIN;
}

/* 1 if p is a block of the pool. */
static inline int rt_pool_owns(const rt_pool *pl, const void *p)
{
    return (uintptr_t)p - (uintptr_t)pl->base < (uintptr_t)(pl->next - pl->base);
}

/* A block of at least n bytes (0 < n <= RT_POOL_MAX), or NULL when the range is used
 * up and that class has none free. */
static inline void *rt_pool_get(rt_pool *pl, size_t n)
{
    size_t c = rt_pool_class(n);
    void *p = pl->free[c];
    if (p) {
        pl->free[c] = *(void **)p;
        return p;
    }
    size_t size = c * RT_POOL_GRAIN;
    if ((size_t)(pl->end - pl->next) < size)
        return NULL;
    p = pl->next;
    pl->next += size;
    return p;
}

/* Take back block p, got for n bytes (or for more: a block can serve a smaller class). */
static inline void rt_pool_put(rt_pool *pl, void *p, size_t n)
{
    size_t c = rt_pool_class(n);
    *(void **)p = pl->free[c];
    pl->free[c] = p;
}

/* realloc as lua_Alloc does it, the pool serving blocks up to RT_POOL_MAX and `under`
 * the rest and what the pool cannot give. A block the pool does not own (made by
 * `under`, before the pool took over too) goes back to `under`. NULL when `under`
 * refused (ptr is then untouched); shrinking and freeing never fail. */
void *rt_pool_realloc(rt_pool *pl, rt_pool_under under, void *ud, void *ptr, size_t osize,
                      size_t nsize);

#endif
