/* json_tape.c - one validating pass from JSON bytes to a tape (see json_tape.h).
 *
 * Recursive descent over the bytes; nodes are appended to t->v and referred to by
 * index (the array may move while it grows). Strings are unescaped into t->strs, which
 * is sized once per record to the record's length: a string's decoded bytes and its
 * NUL never take more room than its quoted form, so it never moves while parsing and
 * offsets can be handed out at once. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "json_out.h"
#include "json_tape.h"

#define MAX_DEPTH 2048          /* jansson's, so that too_deep means what it meant */
#define SMALL_OBJECT 16         /* keys compared pairwise for duplicates; a hash above */
#define KEEP_NODES 4096         /* buffers kept between records, past which they go */
#define KEEP_STRS (64 * 1024)

typedef struct parser {
    rt_jtape *t;
    const unsigned char *s, *p, *end;
    rt_jerror *err;
} parser;

__attribute__((format(printf, 3, 4)))
static int fail(parser *ps, const unsigned char *at, const char *fmt, ...)
{
    va_list ap;
    ps->err->column = (size_t)(at - ps->s) + 1;
    va_start(ap, fmt);
    vsnprintf(ps->err->text, sizeof ps->err->text, fmt, ap);
    va_end(ap);
    return -1;
}

static inline void skip_ws(parser *ps)
{
    /* Records rarely hold whitespace: one compare says there is none here. */
    while (ps->p < ps->end && *ps->p <= ' ' &&
           (*ps->p == ' ' || *ps->p == '\n' || *ps->p == '\r' || *ps->p == '\t'))
        ps->p++;
}

/* Double the node array; -1 (out of memory, reported). Apart from add_node, so that
 * add_node stays small enough to inline. */
static __attribute__((noinline)) int grow_nodes(parser *ps)
{
    rt_jtape *t = ps->t;
    size_t cap = t->cap ? t->cap * 2 : 64;
    rt_jnode *v = cap > UINT32_MAX ? NULL : realloc(t->v, cap * sizeof *v);
    if (!v)
        return fail(ps, ps->p, "out of memory");
    t->v = v;
    t->cap = cap;
    return 0;
}

/* A new node of `type`; its index, or -1 (out of memory, reported). */
static inline long add_node(parser *ps, enum rt_jtype type)
{
    rt_jtape *t = ps->t;
    if (t->n == t->cap && grow_nodes(ps) < 0)
        return -1;
    rt_jnode *n = &t->v[t->n];
    n->type = (uint8_t)type;
    n->len = 0;
    n->str = 0;
    n->next = (uint32_t)t->n + 1;
    return (long)t->n++;
}

static int hex4(const unsigned char *p, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = p[i], d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
            d = (c | 0x20) - 'a' + 10;
        else
            return -1;
        v = v << 4 | d;
    }
    *out = v;
    return 0;
}

static char *put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) {
        *o++ = (char)cp;
    } else if (cp < 0x800) {
        *o++ = (char)(0xC0 | cp >> 6);
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *o++ = (char)(0xE0 | cp >> 12);
        *o++ = (char)(0x80 | (cp >> 6 & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *o++ = (char)(0xF0 | cp >> 18);
        *o++ = (char)(0x80 | (cp >> 12 & 0x3F));
        *o++ = (char)(0x80 | (cp >> 6 & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    }
    return o;
}

/* The \u escape at p (after the backslash and 'u'), a surrogate pair taken whole. */
static int unicode_escape(parser *ps, unsigned *cp)
{
    const unsigned char *at = ps->p - 2;
    *cp = 0;
    if (ps->end - ps->p < 4 || hex4(ps->p, cp) < 0)
        return fail(ps, at, "invalid escape");
    ps->p += 4;
    if (*cp >= 0xDC00 && *cp <= 0xDFFF)
        return fail(ps, at, "invalid Unicode '\\u%04X'", *cp);
    if (*cp < 0xD800 || *cp > 0xDBFF)
        return 0;
    unsigned low;
    if (ps->end - ps->p < 6 || ps->p[0] != '\\' || ps->p[1] != 'u' ||
        hex4(ps->p + 2, &low) < 0 || low < 0xDC00 || low > 0xDFFF)
        return fail(ps, at, "invalid Unicode '\\u%04X'", *cp);
    ps->p += 6;
    *cp = 0x10000 + ((*cp - 0xD800) << 10) + (low - 0xDC00);
    return 0;
}

/* The string at ps->p (its opening quote) into strs, as a new node. */
static long parse_string(parser *ps, int is_key)
{
    rt_jtape *t = ps->t;
    const unsigned char *p = ps->p + 1, *end = ps->end;
    char *start = t->strs.data + t->strs.len, *o = start;
    long idx = add_node(ps, RT_JSTRING);
    if (idx < 0)
        return -1;
    for (;;) {
        /* The common run: printable ASCII, copied as is, a word at a time. The output
         * is never longer than the input read so far, so a word written whole (past
         * the run's end too) stays inside strs, which holds the record's length. */
        while (end - p >= 8) {
            size_t k = rt_json_plain8(p);
            memcpy(o, p, 8);
            o += k;
            p += k;
            if (k < 8)
                break;
        }
        while (p < end && rt_json_plain_byte(*p))
            *o++ = (char)*p++;
        if (p >= end)
            return fail(ps, p, "premature end of input in a string");
        unsigned c = *p;
        if (c == '"')
            break;
        if (c < 0x20)
            return fail(ps, p, "control character 0x%x in a string", c);
        if (c >= 0x80) {
            size_t n = rt_json_utf8_len(p, (size_t)(end - p));
            if (!n)
                return fail(ps, p, "invalid UTF-8 in a string");
            memcpy(o, p, n);
            o += n;
            p += n;
            continue;
        }
        /* A backslash. */
        if (end - p < 2)
            return fail(ps, p, "premature end of input in a string");
        switch (p[1]) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '/': *o++ = '/'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u': {
            unsigned cp = 0;
            ps->p = p + 2;
            if (unicode_escape(ps, &cp) < 0)
                return -1;
            if (cp == 0 && is_key)
                return fail(ps, p, "NUL byte in object key not supported");
            o = put_utf8(o, cp);
            p = ps->p;
            continue;
        }
        default:
            return fail(ps, p, "invalid escape");
        }
        p += 2;
    }
    *o = '\0';
    rt_jnode *n = &t->v[idx];
    n->str = (uint32_t)t->strs.len;
    n->len = (uint32_t)(o - start);
    t->strs.len += (size_t)(o - start) + 1;
    ps->p = p + 1;
    return idx;
}

/* Clinger's fast path: a decimal whose digits, read as an integer m, fit 2^53 and
 * whose power of ten e is within 22 either way is m * 10^e or m / 10^-e, both
 * operands exact doubles, so the one rounding of that operation gives what strtod
 * gives. The usual amounts and coordinates take it; the rest go to strtod. */
static int exact_decimal(const unsigned char *p, const unsigned char *end, double *out)
{
    static const double pow10[] = { 1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
                                    1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19,
                                    1e20, 1e21, 1e22 };
    const uint64_t max = 1ULL << 53;
    uint64_t m = 0;
    int neg = *p == '-', e = 0, frac = 0;
    p += neg;
    for (; p < end && *p != 'e' && *p != 'E'; p++) {
        if (*p == '.') {
            frac = 1;
            continue;
        }
        unsigned d = *p - '0';
        if (m > (max - d) / 10)
            return 0;
        m = m * 10 + d;
        e -= frac;
    }
    if (p < end) {          /* the exponent, already checked to be digits */
        int eneg = 0, x = 0;
        p++;
        if (*p == '+' || *p == '-')
            eneg = *p++ == '-';
        for (; p < end; p++) {
            if (x > 1000)
                return 0;
            x = x * 10 + (*p - '0');
        }
        e += eneg ? -x : x;
    }
    if (e < -22 || e > 22)
        return 0;
    double d = (double)m;
    d = e < 0 ? d / pow10[-e] : d * pow10[e];
    *out = neg ? -d : d;
    return 1;
}

static int parse_number(parser *ps)
{
    const unsigned char *p = ps->p, *start = p, *end = ps->end;
    int neg = 0, is_int = 1;
    if (*p == '-') {
        neg = 1;
        p++;
    }
    if (p >= end || *p < '0' || *p > '9')
        return fail(ps, start, "invalid number");
    /* The integer part's value comes with the scan while it cannot overflow. */
    const unsigned char *digits = p;
    unsigned long long v18 = 0;
    if (*p == '0')
        p++;
    else
        for (; p < end && *p >= '0' && *p <= '9'; p++)
            v18 = v18 * 10 + (unsigned)(*p - '0');
    if (p < end && *p == '.') {
        is_int = 0;
        if (++p >= end || *p < '0' || *p > '9')
            return fail(ps, start, "invalid number");
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        is_int = 0;
        if (++p < end && (*p == '+' || *p == '-'))
            p++;
        if (p >= end || *p < '0' || *p > '9')
            return fail(ps, start, "invalid number");
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    }
    long idx = add_node(ps, RT_JINT);
    if (idx < 0)
        return -1;
    rt_jnode *n = &ps->t->v[idx];
    ps->p = p;
    if (is_int) {
        /* Exact while it fits int64 (the limit of a negative one is one more). */
        unsigned long long v = 0, limit = neg ? 9223372036854775808ULL : 9223372036854775807ULL;
        int over = 0;
        const unsigned char *d = digits;
        if (p - d <= 18) {      /* 18 digits never reach the limit: no check per digit */
            v = v18;
            d = p;
        }
        for (; d < p && !over; d++) {
            unsigned dig = *d - '0';
            if (v > (limit - dig) / 10)
                over = 1;
            else
                v = v * 10 + dig;
        }
        if (!over) {
            n->num.i = neg ? (long long)(0 - v) : (long long)v;
            return 0;
        }
    }
    double fast;
    if (!is_int && exact_decimal(start, p, &fast)) {
        n->type = RT_JREAL;
        n->num.d = fast;
        return 0;
    }
    /* strtod needs the text terminated; numbers longer than this are rare. */
    char small[64], *text = small;
    size_t len = (size_t)(p - start);
    if (len >= sizeof small && !(text = malloc(len + 1)))
        return fail(ps, start, "out of memory");
    memcpy(text, start, len);
    text[len] = '\0';
    double d = strtod(text, NULL);
    if (text != small)
        free(text);
    if (isinf(d))
        return fail(ps, start, "real number overflow");
    n->type = RT_JREAL;
    n->num.d = d;
    return 0;
}

static int same_key(const rt_jtape *t, uint32_t a, uint32_t b)
{
    return t->v[a].len == t->v[b].len &&
           memcmp(rt_jtape_str(t, a), rt_jtape_str(t, b), t->v[a].len) == 0;
}

/* A key's length and its first, middle and last bytes in one word: equal keys, equal
 * words. */
static inline uint64_t key_sig(const rt_jtape *t, uint32_t k)
{
    uint32_t len = t->v[k].len;
    const unsigned char *s = (const unsigned char *)rt_jtape_str(t, k);
    if (!len)
        return 0;
    return (uint64_t)len | (uint64_t)s[0] << 32 | (uint64_t)s[len / 2] << 40 |
           (uint64_t)s[len - 1] << 48;
}

/* A key that appears twice in object `obj`: its node, or 0 (none) or -1 (no memory). */
static long duplicate_key(const rt_jtape *t, uint32_t obj)
{
    uint32_t n = t->v[obj].len, small[SMALL_OBJECT], *keys = small, i = obj + 1;
    long dup = 0;
    if (n < 2)
        return 0;
    if (n > SMALL_OBJECT && !(keys = malloc(n * sizeof *keys)))
        return -1;
    for (uint32_t m = 0; m < n; m++) {
        keys[m] = i;
        i = t->v[i + 1].next;
    }
    if (n <= SMALL_OBJECT) {
        /* On a word of each key (its length and three of its bytes) before all of its
         * bytes: keys of one object seldom share all four. Each word also picks one of
         * 64 bits; a key whose bit is still clear repeats no key before it, so only a
         * key whose bit is taken is compared with those. */
        uint64_t sig[SMALL_OBJECT], seen = 0;
        for (uint32_t a = 0; a < n && !dup; a++) {
            sig[a] = key_sig(t, keys[a]);
            uint64_t bit = 1ull << ((sig[a] * 0x9E3779B97F4A7C15ull) >> 58);
            if (seen & bit)
                for (uint32_t b = 0; b < a && !dup; b++)
                    if (sig[a] == sig[b] && same_key(t, keys[a], keys[b]))
                        dup = keys[a];
            seen |= bit;
        }
        return dup;
    }
    /* Open addressing over the key nodes, at most half full. */
    size_t size = 64;
    while (size < 2 * (size_t)n)
        size *= 2;
    uint32_t *slot = calloc(size, sizeof *slot);
    if (!slot) {
        free(keys);
        return -1;
    }
    for (uint32_t m = 0; m < n && !dup; m++) {
        uint32_t k = keys[m];
        size_t h = (size_t)rt_fnv1a(RT_FNV1A_INIT, rt_jtape_str(t, k), t->v[k].len) & (size - 1);
        while (slot[h] && !(dup = same_key(t, slot[h] - 1, k) ? k : 0))
            h = (h + 1) & (size - 1);
        slot[h] = k + 1;
    }
    free(slot);
    free(keys);
    return dup;
}

static int parse_value(parser *ps, int depth);

/* An object member's key and its colon. */
static int parse_key(parser *ps)
{
    if (ps->p >= ps->end || *ps->p != '"')
        return fail(ps, ps->p, "string or '}' expected");
    if (parse_string(ps, 1) < 0)
        return -1;
    skip_ws(ps);
    if (ps->p >= ps->end || *ps->p != ':')
        return fail(ps, ps->p, "':' expected");
    ps->p++;
    skip_ws(ps);
    return 0;
}

/* An object or an array at ps->p: its members up to the closing bracket, each of an
 * object's with its key first. */
static int parse_container(parser *ps, int depth, int is_object)
{
    const unsigned char *open = ps->p;
    char close = is_object ? '}' : ']';
    long idx = add_node(ps, is_object ? RT_JOBJECT : RT_JARRAY);
    uint32_t count = 0;
    if (idx < 0)
        return -1;
    ps->p++;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == close) {
        ps->p++;
    } else {
        for (;;) {
            if ((is_object && parse_key(ps) < 0) || parse_value(ps, depth + 1) < 0)
                return -1;
            count++;
            skip_ws(ps);
            if (ps->p < ps->end && *ps->p == ',') {
                ps->p++;
                skip_ws(ps);
                continue;
            }
            if (ps->p < ps->end && *ps->p == close) {
                ps->p++;
                break;
            }
            return fail(ps, ps->p, "',' or '%c' expected", close);
        }
    }
    rt_jtape *t = ps->t;
    t->v[idx].len = count;
    t->v[idx].next = (uint32_t)t->n;
    long dup = is_object ? duplicate_key(t, (uint32_t)idx) : 0;
    if (dup < 0)
        return fail(ps, open, "out of memory");
    if (dup)
        return fail(ps, open, "duplicate object key '%.60s'", rt_jtape_str(t, (uint32_t)dup));
    return 0;
}

static int literal(parser *ps, const char *word, size_t n, enum rt_jtype type)
{
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
        return fail(ps, ps->p, "invalid token");
    ps->p += n;
    return add_node(ps, type) < 0 ? -1 : 0;
}

static int parse_value(parser *ps, int depth)
{
    if (ps->p >= ps->end)
        return fail(ps, ps->p, "premature end of input");
    switch (*ps->p) {
    case '{':
    case '[':
        if (depth >= MAX_DEPTH) {
            ps->err->too_deep = 1;
            return fail(ps, ps->p, "maximum parsing depth reached");
        }
        return parse_container(ps, depth, *ps->p == '{');
    case '"':
        return parse_string(ps, 0) < 0 ? -1 : 0;
    case 't':
        return literal(ps, "true", 4, RT_JTRUE);
    case 'f':
        return literal(ps, "false", 5, RT_JFALSE);
    case 'n':
        return literal(ps, "null", 4, RT_JNULL);
    default:
        if (*ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9'))
            return parse_number(ps);
        return fail(ps, ps->p, "invalid token");
    }
}

int rt_jtape_parse(rt_jtape *t, const char *s, size_t len, rt_jerror *err)
{
    parser ps = { t, (const unsigned char *)s, (const unsigned char *)s,
                  (const unsigned char *)s + len, err };
    err->too_deep = 0;
    err->column = 0;
    err->text[0] = '\0';
    t->n = 0;
    t->strs.len = 0;
    if (len >= UINT32_MAX)
        return fail(&ps, ps.p, "record too large");
    if (rt_buf_reserve(&t->strs, len + 1) < 0)
        return fail(&ps, ps.p, "out of memory");
    skip_ws(&ps);
    if (ps.p >= ps.end || (*ps.p != '{' && *ps.p != '['))
        return fail(&ps, ps.p, "'[' or '{' expected");
    if (parse_value(&ps, 0) < 0)
        return -1;
    skip_ws(&ps);
    if (ps.p != ps.end)
        return fail(&ps, ps.p, "end of file expected");
    return 0;
}

long rt_jtape_get(const rt_jtape *t, uint32_t obj, const char *key, size_t klen)
{
    if (obj >= t->n || t->v[obj].type != RT_JOBJECT)
        return -1;
    uint32_t i = obj + 1;
    for (uint32_t m = 0; m < t->v[obj].len; m++) {
        if (t->v[i].len == klen && memcmp(rt_jtape_str(t, i), key, klen) == 0)
            return (long)i + 1;
        i = t->v[i + 1].next;
    }
    return -1;
}

long rt_jtape_at(const rt_jtape *t, uint32_t obj, const char *path)
{
    long v = obj;
    for (;;) {
        size_t n = strcspn(path, ".");
        if ((v = rt_jtape_get(t, (uint32_t)v, path, n)) < 0 || !path[n])
            return v;
        path += n + 1;
    }
}

void rt_jtape_reset(rt_jtape *t)
{
    t->n = 0;
    t->strs.len = 0;
    if (t->cap > KEEP_NODES) {
        free(t->v);
        t->v = NULL;
        t->cap = 0;
    }
    if (t->strs.cap > KEEP_STRS)
        rt_buf_free(&t->strs);
}

void rt_jtape_free(rt_jtape *t)
{
    free(t->v);
    t->v = NULL;
    t->n = t->cap = 0;
    rt_buf_free(&t->strs);
}
