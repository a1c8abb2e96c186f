/* json_out.h - JSON text written straight into a buffer: the one string encoder of
 * emitted records (bindings/lb_json.c) and dead letters (pipeline/dlq.c). */
#ifndef RT_JSON_OUT_H
#define RT_JSON_OUT_H

#include <stddef.h>
#include <string.h>

#include "buf.h"
#include "json_tape.h"

/* Length of the UTF-8 sequence at p (at most n bytes, p[0] >= 0x80), 0 when it is not
 * well-formed. */
size_t rt_json_utf8_len(const unsigned char *p, size_t n);

/* Append the n bytes at s as a quoted JSON string: '"', '\\' and control characters
 * escaped (\u0000 for NUL), everything else as is. 0; -1 with nothing appended when s
 * is not well-formed UTF-8 (*bad: the offset of the first bad byte; no overlong forms,
 * surrogates or code points past U+10FFFF) or when out of memory (*bad = n). Inline:
 * it runs for every string of every emitted record, and a call costs 5% of encoding. */
static inline __attribute__((always_inline)) int
rt_json_put_string(rt_buf *b, const char *s, size_t n, size_t *bad)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    /* Room for the worst case (every byte \u00XX) up front: no checks in the loop. */
    if (b->cap - b->len < n * 6 + 2 && rt_buf_reserve(b, n * 6 + 2) < 0) {
        *bad = n;
        return -1;
    }
    char *o = b->data + b->len;
    *o++ = '"';
    for (size_t i = 0;;) {
        /* The plain run, a word at a time (the room above covers a whole one), then
         * its last bytes one by one. */
        while (n - i >= 8) {
            size_t k = rt_json_plain8(p + i);
            memcpy(o, p + i, 8);
            o += k;
            i += k;
            if (k < 8)
                break;
        }
        while (i < n && rt_json_plain_byte(p[i]))
            *o++ = (char)p[i++];
        if (i == n)
            break;
        unsigned c = p[i];
        if (c >= 0x80) {
            size_t len = rt_json_utf8_len(p + i, n - i);
            if (!len) {
                *bad = i;
                return -1;      /* b->len not moved: nothing was appended */
            }
            memcpy(o, p + i, len);
            o += len;
            i += len;
            continue;
        }
        *o++ = '\\';
        switch (c) {
        case '"': case '\\': *o++ = (char)c; break;
        case '\n': *o++ = 'n'; break;
        case '\r': *o++ = 'r'; break;
        case '\t': *o++ = 't'; break;
        case '\b': *o++ = 'b'; break;
        case '\f': *o++ = 'f'; break;
        default:
            memcpy(o, "u00", 3);
            o[3] = hex[c >> 4];
            o[4] = hex[c & 15];
            o += 5;
        }
        i++;
    }
    *o++ = '"';
    b->len = (size_t)(o - b->data);
    return 0;
}

#endif
