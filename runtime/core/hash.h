/* hash.h - FNV-1a, 64-bit: checkpoint checksums and the file hashes reload compares. */
#ifndef RT_HASH_H
#define RT_HASH_H

#include <stddef.h>
#include <stdint.h>

#define RT_FNV1A_INIT 1469598103934665603ULL

/* Continue hash `h` over n bytes (start from RT_FNV1A_INIT). */
static inline uint64_t rt_fnv1a(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 1099511628211ULL;
    return h;
}

#endif
