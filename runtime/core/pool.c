/* pool.c - the reserved range of a pool (see pool.h). */
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "pool.h"

int rt_pool_init(rt_pool *pl, size_t bytes)
{
    memset(pl, 0, sizeof *pl);
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    bytes = (bytes + page - 1) / page * page;
    if (!bytes)
        return 0;
    /* Reserved, not committed: a page costs memory once a block on it is handed out. */
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return -1;
    pl->base = pl->next = p;
    pl->end = pl->base + bytes;
    return 0;
}

void rt_pool_release(rt_pool *pl)
{
    if (pl->base)
        munmap(pl->base, (size_t)(pl->end - pl->base));
    memset(pl, 0, sizeof *pl);
}

void *rt_pool_realloc(rt_pool *pl, rt_pool_under under, void *ud, void *ptr, size_t osize,
                      size_t nsize)
{
    int mine = ptr && rt_pool_owns(pl, ptr);
    if (nsize == 0 && mine) {
        rt_pool_put(pl, ptr, osize);
        return NULL;
    }
    if (!mine && (nsize == 0 || nsize > RT_POOL_MAX))
        return under(ud, ptr, osize, nsize);
    /* Shrinking keeps the block (larger than its new class needs), so it cannot fail. */
    if (mine && (nsize <= osize || rt_pool_class(nsize) == rt_pool_class(osize)))
        return ptr;
    void *q = nsize <= RT_POOL_MAX ? rt_pool_get(pl, nsize) : NULL;
    if (!q) {
        if (!mine)
            return under(ud, ptr, osize, nsize);
        if (!(q = under(ud, NULL, 0, nsize)))
            return NULL;
    }
    if (ptr) {
        memcpy(q, ptr, osize < nsize ? osize : nsize);
        if (mine)
            rt_pool_put(pl, ptr, osize);
        else
            under(ud, ptr, osize, 0);
    }
    return q;
}
