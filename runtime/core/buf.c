/* buf.c - growable byte buffer. */
#include <stdlib.h>
#include <string.h>

#include "buf.h"

int rt_buf_reserve(rt_buf *b, size_t extra)
{
    if (b->cap - b->len >= extra)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < extra) {
        if (cap > ((size_t)-1) / 2)
            return -1;
        cap *= 2;
    }
    char *p = realloc(b->data, cap);
    if (!p)
        return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

int rt_buf_append(rt_buf *b, const void *p, size_t n)
{
    if (rt_buf_reserve(b, n) < 0)
        return -1;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

int rt_buf_putc(rt_buf *b, char c)
{
    if (b->len == b->cap && rt_buf_reserve(b, 1) < 0)
        return -1;
    b->data[b->len++] = c;
    return 0;
}

char *rt_buf_take(rt_buf *b)
{
    if (rt_buf_putc(b, '\0') < 0)
        return NULL;
    char *s = b->data;
    b->data = NULL;
    b->len = b->cap = 0;
    return s;
}

void rt_buf_free(rt_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
