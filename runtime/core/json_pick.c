/* json_pick.c - a validating single-pass JSON scanner that keeps only the spans of the
 * values asked for. Parsing a record into a jansson tree only to read five fields of it
 * cost the mysql sink about a third of its CPU; this allocates nothing. */
#include <string.h>

#include "json_pick.h"

/* Deeper nesting is refused, as jansson refuses it (its limit is 2048). */
#define MAX_DEPTH 512

typedef struct {
    const char *p, *end;
    int depth;
} scan;

/* Paths still matching at one level: index into out[] and the path's remaining part. */
typedef struct {
    size_t idx[RT_JSON_PICK_MAX];
    const char *rem[RT_JSON_PICK_MAX];
    size_t n;
} alive;

static void skip_ws(scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

static int hex4(const char *p, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

/* At the opening quote: the span between the quotes; *esc says whether it has escapes. */
static int scan_string(scan *s, const char **at, size_t *len, int *esc)
{
    const char *p = ++s->p;
    *esc = 0;
    while (p < s->end && *p != '"') {
        if ((unsigned char)*p < 0x20)
            return -1;
        if (*p == '\\') {
            *esc = 1;
            if (++p >= s->end)
                return -1;
            unsigned u;
            if (*p == 'u') {
                if (s->end - p < 5 || hex4(p + 1, &u) < 0)
                    return -1;
                p += 4;
            } else if (!strchr("\"\\/bfnrt", *p) || !*p) {
                return -1;
            }
        }
        p++;
    }
    if (p >= s->end)
        return -1;
    *at = s->p;
    *len = (size_t)(p - s->p);
    s->p = p + 1;
    return 0;
}

static int digits(scan *s)
{
    const char *from = s->p;
    while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
        s->p++;
    return s->p > from ? 0 : -1;
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static int scan_number(scan *s)
{
    if (s->p < s->end && *s->p == '-')
        s->p++;
    if (s->p < s->end && *s->p == '0')
        s->p++;
    else if (digits(s) < 0)
        return -1;
    if (s->p < s->end && *s->p == '.') {
        s->p++;
        if (digits(s) < 0)
            return -1;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
            s->p++;
        if (digits(s) < 0)
            return -1;
    }
    return 0;
}

static int literal(scan *s, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
        return -1;
    s->p += n;
    return 0;
}

static int scan_object(scan *s, const alive *a, rt_json_span *out);

/* One value of any kind; paths that continue inside it are in `a` (may be NULL). */
static int scan_value(scan *s, const alive *a, rt_json_kind *kind)
{
    const char *at;
    size_t len;
    int esc;
    skip_ws(s);
    if (s->p >= s->end)
        return -1;
    switch (*s->p) {
    case '"':
        *kind = RT_JSON_STRING;
        return scan_string(s, &at, &len, &esc);
    case '{':
        *kind = RT_JSON_OBJECT;
        return scan_object(s, a, NULL);
    case '[': {
        *kind = RT_JSON_ARRAY;
        if (++s->depth > MAX_DEPTH)
            return -1;
        s->p++;
        skip_ws(s);
        if (s->p < s->end && *s->p == ']') {
            s->p++;
            s->depth--;
            return 0;
        }
        for (;;) {
            rt_json_kind k;
            if (scan_value(s, NULL, &k) < 0)
                return -1;
            skip_ws(s);
            if (s->p >= s->end)
                return -1;
            if (*s->p++ == ']')
                break;
            if (s->p[-1] != ',')
                return -1;
        }
        s->depth--;
        return 0;
    }
    case 't':
        *kind = RT_JSON_TRUE;
        return literal(s, "true");
    case 'f':
        *kind = RT_JSON_FALSE;
        return literal(s, "false");
    case 'n':
        *kind = RT_JSON_NULL;
        return literal(s, "null");
    default:
        *kind = RT_JSON_NUMBER;
        return scan_number(s);
    }
}

/* Does the key (raw span) equal the path segment seg[0..n)? */
static int key_is(const char *key, size_t klen, int esc, const char *seg, size_t n)
{
    if (!esc)
        return klen == n && memcmp(key, seg, n) == 0;
    rt_buf b = { 0 };
    int same = rt_json_unescape(&b, key, klen) == 0 && b.len == n && memcmp(b.data, seg, n) == 0;
    rt_buf_free(&b);
    return same;
}

/* After '{': the members up to the closing '}'; a member whose key ends a path in `a`
 * is recorded into out[], one whose key starts a longer path is searched in turn. */
static int members(scan *s, const alive *a, rt_json_span *out)
{
    for (;;) {
        skip_ws(s);
        if (s->p >= s->end || *s->p != '"')
            return -1;
        const char *key;
        size_t klen;
        int esc;
        if (scan_string(s, &key, &klen, &esc) < 0)
            return -1;
        skip_ws(s);
        if (s->p >= s->end || *s->p++ != ':')
            return -1;
        alive sub = { .n = 0 };
        size_t ends[RT_JSON_PICK_MAX], nends = 0;
        for (size_t i = 0; a && i < a->n; i++) {
            const char *rem = a->rem[i];
            size_t seg = strcspn(rem, ".");
            if (!key_is(key, klen, esc, rem, seg))
                continue;
            out[a->idx[i]] = (rt_json_span){ RT_JSON_ABSENT, NULL, 0 };  /* last key wins */
            if (rem[seg]) {
                sub.idx[sub.n] = a->idx[i];
                sub.rem[sub.n++] = rem + seg + 1;
            } else {
                ends[nends++] = a->idx[i];
            }
        }
        skip_ws(s);
        const char *from = s->p;
        rt_json_kind kind;
        int rc;
        if (sub.n && s->p < s->end && *s->p == '{') {
            kind = RT_JSON_OBJECT;
            rc = scan_object(s, &sub, out);
        } else {
            rc = scan_value(s, NULL, &kind);
        }
        if (rc < 0)
            return -1;
        for (size_t e = 0; e < nends; e++) {
            rt_json_span *v = &out[ends[e]];
            *v = (rt_json_span){ kind, from, (size_t)(s->p - from) };
            if (kind == RT_JSON_STRING) {  /* without its quotes */
                v->at++;
                v->len -= 2;
            }
        }
        skip_ws(s);
        if (s->p >= s->end)
            return -1;
        if (*s->p++ == '}')
            return 0;
        if (s->p[-1] != ',')
            return -1;
    }
}

static int scan_object(scan *s, const alive *a, rt_json_span *out)
{
    if (++s->depth > MAX_DEPTH)
        return -1;
    s->p++;
    skip_ws(s);
    int rc = 0;
    if (s->p < s->end && *s->p == '}')
        s->p++;
    else
        rc = members(s, a && out ? a : NULL, out);
    s->depth--;
    return rc;
}

int rt_json_pick(const char *text, size_t len, const char *const *paths, size_t n,
                 rt_json_span *out)
{
    if (n > RT_JSON_PICK_MAX)
        return -1;
    scan s = { text, text + len, 0 };
    alive a = { .n = n };
    for (size_t i = 0; i < n; i++) {
        out[i] = (rt_json_span){ RT_JSON_ABSENT, NULL, 0 };
        a.idx[i] = i;
        a.rem[i] = paths[i];
    }
    skip_ws(&s);
    if (s.p >= s.end || *s.p != '{' || scan_object(&s, &a, out) < 0)
        return -1;
    skip_ws(&s);
    return s.p == s.end ? 0 : -1;
}

static int put_utf8(rt_buf *b, unsigned c)
{
    char u[4];
    size_t n;
    if (c < 0x80) {
        u[0] = (char)c;
        n = 1;
    } else if (c < 0x800) {
        u[0] = (char)(0xC0 | (c >> 6));
        u[1] = (char)(0x80 | (c & 0x3F));
        n = 2;
    } else if (c < 0x10000) {
        u[0] = (char)(0xE0 | (c >> 12));
        u[1] = (char)(0x80 | ((c >> 6) & 0x3F));
        u[2] = (char)(0x80 | (c & 0x3F));
        n = 3;
    } else {
        u[0] = (char)(0xF0 | (c >> 18));
        u[1] = (char)(0x80 | ((c >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((c >> 6) & 0x3F));
        u[3] = (char)(0x80 | (c & 0x3F));
        n = 4;
    }
    return rt_buf_append(b, u, n);
}

int rt_json_unescape(rt_buf *b, const char *at, size_t len)
{
    const char *p = at, *end = at + len;
    while (p < end) {
        const char *bs = memchr(p, '\\', (size_t)(end - p));
        if (rt_buf_append(b, p, (size_t)((bs ? bs : end) - p)) < 0)
            return -1;
        if (!bs)
            return 0;
        p = bs + 1;
        if (p >= end)
            return -1;
        char c = *p++;
        int rc;
        switch (c) {
        case 'b': rc = rt_buf_putc(b, '\b'); break;
        case 'f': rc = rt_buf_putc(b, '\f'); break;
        case 'n': rc = rt_buf_putc(b, '\n'); break;
        case 'r': rc = rt_buf_putc(b, '\r'); break;
        case 't': rc = rt_buf_putc(b, '\t'); break;
        case '"': case '\\': case '/': rc = rt_buf_putc(b, c); break;
        case 'u': {
            unsigned u, lo;
            if (end - p < 4 || hex4(p, &u) < 0)
                return -1;
            p += 4;
            if (u >= 0xDC00 && u <= 0xDFFF)  /* a low surrogate first */
                return -1;
            if (u >= 0xD800 && u <= 0xDBFF) {
                if (end - p < 6 || p[0] != '\\' || p[1] != 'u' || hex4(p + 2, &lo) < 0 ||
                    lo < 0xDC00 || lo > 0xDFFF)
                    return -1;
                p += 6;
                u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
            }
            rc = put_utf8(b, u);
            break;
        }
        default:
            return -1;
        }
        if (rc < 0)
            return -1;
    }
    return 0;
}
