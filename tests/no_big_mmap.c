/* no_big_mmap.c - an LD_PRELOAD shim for tests: an anonymous mapping that only reserves
 * address space (MAP_NORESERVE) of NO_MMAP_MIN_MB megabytes or more fails with ENOMEM,
 * as under a tight `ulimit -v`. t_limits.sh runs eddy under it to check that a Lua state
 * whose pool of small blocks gets no range runs on libc alone, its memory limit kept.
 * (It cannot use ulimit -v itself: AddressSanitizer reserves terabytes of shadow.) */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/types.h>

typedef void *(*mmap_fn)(void *, size_t, int, int, int, off_t);

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    static mmap_fn real;
    const char *min_mb = getenv("NO_MMAP_MIN_MB");
    size_t min = (size_t)strtoull(min_mb ? min_mb : "1024", NULL, 10) << 20;
    if ((flags & MAP_ANONYMOUS) && (flags & MAP_NORESERVE) && len >= min) {
        errno = ENOMEM;
        return MAP_FAILED;
    }
    if (!real && !(real = (mmap_fn)dlsym(RTLD_NEXT, "mmap"))) {
        errno = ENOSYS;
        return MAP_FAILED;
    }
    return real(addr, len, prot, flags, fd, off);
}
