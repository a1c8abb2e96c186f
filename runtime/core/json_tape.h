/* json_tape.h - a record's JSON decoded in one validating pass into a flat array of
 * nodes (a "tape") and one arena of unescaped strings, both kept and reused for the
 * next record: no allocation per value, unlike a jansson tree. The event envelope is
 * checked on it in C and the payload becomes Lua tables straight from it
 * (lb_jtape_push). It accepts what jansson accepted with JSON_REJECT_DUPLICATES |
 * JSON_ALLOW_NUL (the dead-letter reasons stay the same): an object or array at the
 * top, UTF-8 only, no duplicate keys, \u0000 in values but not in keys, nesting up to
 * 2048, integers as int64 or, past it, as doubles. */
#ifndef RT_JSON_TAPE_H
#define RT_JSON_TAPE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "buf.h"

enum rt_jtype { RT_JNULL, RT_JFALSE, RT_JTRUE, RT_JINT, RT_JREAL, RT_JSTRING, RT_JARRAY,
                RT_JOBJECT };

/* Containers are followed by their members: an array's items, an object's key (a
 * string node) and value pairs. `next` skips a value with everything inside it. */
typedef struct rt_jnode {
    uint8_t type;           /* enum rt_jtype */
    uint32_t len;           /* string: bytes; array: items; object: members */
    uint32_t next;          /* index of the node after this value */
    uint32_t str;           /* string: offset of its bytes (NUL-terminated) in strs */
    union {
        long long i;
        double d;
    } num;
} rt_jnode;

typedef struct rt_jtape {
    rt_jnode *v;
    size_t n, cap;
    rt_buf strs;
} rt_jtape;

typedef struct rt_jerror {
    int too_deep;           /* nested past the limit (dead letter too_deep) */
    size_t column;          /* 1-based byte position */
    char text[120];
} rt_jerror;

/* Whether byte c is plain string text, copied as is both ways: not '"', '\\', a control
 * character or a byte of a multi-byte UTF-8 sequence. */
static inline int rt_json_plain_byte(unsigned c)
{
    return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

/* How many of the 8 bytes at p (0 to 8), from the first, are plain string text. The JSON
 * decoder and encoder copy a whole word and advance by this much. On little-endian
 * machines one bit trick: "has a zero byte" / "has a byte below n" never miss, and
 * their first set byte is exact (a false one only follows a true one). */
static inline size_t rt_json_plain8(const unsigned char *p)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
    uint64_t w;
    memcpy(&w, p, 8);
    uint64_t q = w ^ (ones * '"'), b = w ^ (ones * '\\');
    uint64_t special = (((w - ones * 0x20) & ~w) | ((q - ones) & ~q) | ((b - ones) & ~b) | w) & high;
    return special ? (size_t)__builtin_ctzll(special) / 8 : 8;
#else
    size_t n = 0;
    while (n < 8 && rt_json_plain_byte(p[n]))
        n++;
    return n;
#endif
}

/* Decode `s`: 0 and node 0 the top value, or -1 with err filled. */
int rt_jtape_parse(rt_jtape *t, const char *s, size_t len, rt_jerror *err);
/* A string node's bytes, NUL-terminated (they may hold NULs: use its len). */
static inline const char *rt_jtape_str(const rt_jtape *t, uint32_t i)
{
    return t->strs.data + t->v[i].str;
}
/* The value of member `key` of object node `obj`, or -1. */
long rt_jtape_get(const rt_jtape *t, uint32_t obj, const char *key, size_t klen);
/* The value at a dotted path ("payload.deviceId") from object node `obj`, or -1. */
long rt_jtape_at(const rt_jtape *t, uint32_t obj, const char *path);
/* Forget the record; large buffers are released, small ones kept for the next. */
void rt_jtape_reset(rt_jtape *t);
void rt_jtape_free(rt_jtape *t);

#endif
