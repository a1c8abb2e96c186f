/* buf.h - growable byte buffer used for encoding records and batching output. */
#ifndef RT_BUF_H
#define RT_BUF_H

#include <stddef.h>

typedef struct rt_buf {
    char  *data;
    size_t len;
    size_t cap;
} rt_buf;

/* Make room for `extra` more bytes; 0 or -1 when out of memory. */
int  rt_buf_reserve(rt_buf *b, size_t extra);
/* Append bytes; 0 or -1 when out of memory. */
int  rt_buf_append(rt_buf *b, const void *p, size_t n);
/* Append one byte; 0 or -1 when out of memory. */
int  rt_buf_putc(rt_buf *b, char c);
/* The contents as a C string the caller frees; the buffer is left empty. NULL when
 * out of memory (the buffer keeps its contents). */
char *rt_buf_take(rt_buf *b);
/* Release the memory and reset to empty. */
void rt_buf_free(rt_buf *b);

#endif
