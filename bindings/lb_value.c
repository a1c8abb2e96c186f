/* lb_value.c - Lua values as bytes and back, for what the host keeps for processors
 * (keyed state, window accumulators) outside their Lua state: it must survive a
 * reload and go into checkpoints. A tag byte per value; tables as key/value pairs. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <lauxlib.h>

#include "bindings.h"

/* Deeper tables are refused; it also stops a table that contains itself. */
#define MAX_DEPTH 32

enum { T_NIL = 'z', T_FALSE = 'f', T_TRUE = 't', T_NUM = 'n', T_INT64 = 'i', T_STR = 's',
       T_TABLE = '{', T_END = '}' };

static void put(lua_State *L, rt_buf *out, const void *p, size_t n)
{
    if (rt_buf_append(out, p, n) < 0)
        luaL_error(L, "out of memory");
}

static void put_tag(lua_State *L, rt_buf *out, char tag)
{
    put(L, out, &tag, 1);
}

static void dump(lua_State *L, int idx, rt_buf *out, int depth, const char *what)
{
    long long i64;
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        put_tag(L, out, T_NIL);
        return;
    case LUA_TBOOLEAN:
        put_tag(L, out, lua_toboolean(L, idx) ? T_TRUE : T_FALSE);
        return;
    case LUA_TNUMBER: {
        double d = lua_tonumber(L, idx);
        put_tag(L, out, T_NUM);
        put(L, out, &d, sizeof d);
        return;
    }
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        uint32_t len = (uint32_t)n;
        if (n > UINT32_MAX)
            luaL_error(L, "%s: string too long", what);
        put_tag(L, out, T_STR);
        put(L, out, &len, sizeof len);
        put(L, out, s, n);
        return;
    }
    case LUA_TTABLE:
        if (depth >= MAX_DEPTH)
            luaL_error(L, "%s: tables nested deeper than %d (or a cycle)", what, MAX_DEPTH);
        if (lua_getmetatable(L, idx)) {
            lua_pop(L, 1);
            luaL_error(L, "%s: a table with a metatable cannot be stored", what);
        }
        luaL_checkstack(L, 3, what);
        put_tag(L, out, T_TABLE);
        lua_pushnil(L);
        while (lua_next(L, idx)) {      /* idx is absolute */
            int kt = lua_type(L, -2);
            if (kt != LUA_TSTRING && kt != LUA_TNUMBER && kt != LUA_TBOOLEAN)
                luaL_error(L, "%s: table keys must be strings, numbers or booleans", what);
            int top = lua_gettop(L);
            dump(L, top - 1, out, depth + 1, what);
            dump(L, top, out, depth + 1, what);
            lua_pop(L, 1);
        }
        put_tag(L, out, T_END);
        return;
    default:
        if (lb_int64_test(L, idx, &i64)) {
            put_tag(L, out, T_INT64);
            put(L, out, &i64, sizeof i64);
            return;
        }
        luaL_error(L, "%s: a %s value cannot be stored", what, luaL_typename(L, idx));
    }
}

void lb_value_dump(lua_State *L, int idx, rt_buf *out, const char *what)
{
    if (idx < 0 && idx > LUA_REGISTRYINDEX)
        idx = lua_gettop(L) + idx + 1;
    dump(L, idx, out, 0, what);
}

typedef struct reader {
    const char *p, *end;
} reader;

static int take(reader *r, void *dst, size_t n)
{
    if ((size_t)(r->end - r->p) < n)
        return -1;
    memcpy(dst, r->p, n);
    r->p += n;
    return 0;
}

/* The end of the value at p, or NULL when it is malformed or runs past end. */
static const char *skip(const char *p, const char *end, int depth)
{
    uint32_t n;
    if (depth > MAX_DEPTH || p >= end)
        return NULL;
    switch (*p++) {
    case T_NIL:
    case T_FALSE:
    case T_TRUE:
        return p;
    case T_NUM:
    case T_INT64:
        return end - p >= 8 ? p + 8 : NULL;
    case T_STR:
        if (end - p < (ptrdiff_t)sizeof n)
            return NULL;
        memcpy(&n, p, sizeof n);
        p += sizeof n;
        return (size_t)(end - p) >= n ? p + n : NULL;
    case T_TABLE:
        while (p && p < end && *p != T_END)
            p = skip(p, end, depth + 1);
        return p && p < end ? p + 1 : NULL;
    default:
        return NULL;
    }
}

/* The sizes to make the table at p (after its tag) with, read ahead: its keys 1..n go
 * to the array part and the rest to the hash part at once, instead of the table
 * growing key by key (each growth rehashes all of it). A table whose integer keys have
 * holes is left to grow as it did before (0, 0), so that its length (a border) comes
 * out as it always has. */
static void table_sizes(const char *p, const char *end, int depth, int *narr, int *nrec)
{
    int pairs = 0, ints = 0, hi = 0;
    *narr = *nrec = 0;
    while (p && p < end && *p != T_END) {
        if (*p == T_NUM && end - p >= 9) {
            double k;
            memcpy(&k, p + 1, sizeof k);
            if (k >= 1 && k <= INT32_MAX && k == (double)(int)k) {
                ints++;
                hi = (int)k > hi ? (int)k : hi;
            }
        }
        if (!(p = skip(p, end, depth + 1)) || !(p = skip(p, end, depth + 1)))
            return;
        pairs++;
    }
    if (!p || p >= end || ints != hi)
        return;
    *narr = hi;
    *nrec = pairs - hi;
}

/* Push one value; -1 (nothing pushed) when the bytes are malformed. */
static int load(lua_State *L, reader *r, int depth)
{
    char tag;
    if (depth > MAX_DEPTH || take(r, &tag, 1) < 0 || !lua_checkstack(L, 3))
        return -1;
    switch (tag) {
    case T_NIL:
        lua_pushnil(L);
        return 0;
    case T_FALSE:
    case T_TRUE:
        lua_pushboolean(L, tag == T_TRUE);
        return 0;
    case T_NUM: {
        double d;
        if (take(r, &d, sizeof d) < 0)
            return -1;
        lua_pushnumber(L, d);
        return 0;
    }
    case T_INT64: {
        long long v;
        if (take(r, &v, sizeof v) < 0)
            return -1;
        lb_int64_push(L, v);
        return 0;
    }
    case T_STR: {
        uint32_t n;
        if (take(r, &n, sizeof n) < 0 || (size_t)(r->end - r->p) < n)
            return -1;
        lua_pushlstring(L, r->p, n);
        r->p += n;
        return 0;
    }
    case T_TABLE: {
        int narr, nrec;
        table_sizes(r->p, r->end, depth, &narr, &nrec);
        lua_createtable(L, narr, nrec);
        while (r->p < r->end && *r->p != T_END) {
            if (load(L, r, depth + 1) < 0)
                goto bad;
            if (lua_isnil(L, -1) || load(L, r, depth + 1) < 0) {
                lua_pop(L, 1);
                goto bad;
            }
            lua_rawset(L, -3);
        }
        if (r->p >= r->end)
            goto bad;
        r->p++;
        return 0;
    bad:
        lua_pop(L, 1);
        return -1;
    }
    default:
        return -1;
    }
}

int lb_value_load(lua_State *L, const char *bytes, size_t len)
{
    reader r = { bytes, bytes + len };
    if (load(L, &r, 0) < 0)
        return -1;
    if (r.p != r.end) {
        lua_pop(L, 1);
        return -1;
    }
    return 0;
}

/* ---- merge = "sum": two accumulators' bytes merged without Lua ---- */

typedef struct pair {
    const char *k, *v, *end;    /* its key's bytes, its value's, and where it ends */
} pair;

static int same_key(const pair *x, const pair *y)
{
    size_t n = (size_t)(x->v - x->k);
    return n == (size_t)(y->v - y->k) && x->k[n - 1] == y->k[n - 1] &&
           memcmp(x->k, y->k, n) == 0;
}

/* The key order of the sorted pairs of a large table: any total order on the bytes. */
static int pair_cmp(const void *a, const void *b)
{
    const pair *x = a, *y = b;
    size_t nx = (size_t)(x->v - x->k), ny = (size_t)(y->v - y->k);
    int c = memcmp(x->k, y->k, nx < ny ? nx : ny);
    return c ? c : (nx > ny) - (nx < ny);
}

/* The pairs of the table at p (its tag) into *v, which starts as the caller's `few`
 * and is malloc'd past them; their count, and *after where the table ends. Every key
 * and value is checked by skip on the way. -1 when malformed or out of memory. */
static long pairs_of(const char *p, const char *end, int depth, pair *few, size_t nfew,
                     pair **v, const char **after)
{
    size_t n = 0, cap = nfew;
    *v = few;
    for (p++; p < end && *p != T_END;) {
        const char *k = p, *val = skip(k, end, depth + 1);
        const char *next = val ? skip(val, end, depth + 1) : NULL;
        if (!next)
            return -1;
        if (n == cap) {
            pair *w = malloc(2 * cap * sizeof *w);
            if (!w)
                return -1;
            memcpy(w, *v, n * sizeof *w);
            if (*v != few)
                free(*v);
            *v = w;
            cap *= 2;
        }
        (*v)[n++] = (pair){ k, val, next };
        p = next;
    }
    if (p >= end)
        return -1;
    *after = p + 1;
    return (long)n;
}

static const char *merge_value(const char *a, const char *aend, const char *b,
                               const char *bend, int depth, rt_buf *out);

/* Tables a and b (at their tags): a's keys in a's order, each merged with b's value
 * for the same key if b has one, then the keys only b has. Where a ends, or NULL. */
static const char *merge_tables(const char *a, const char *aend, const char *b,
                                const char *bend, int depth, rt_buf *out)
{
    /* Up to FEW keys in b are looked for one by one; more are sorted and searched. */
    enum { FEW = 16 };
    pair afew[FEW], bfew[FEW], *ap = afew, *bp = bfew;
    char usedfew[FEW], *used = usedfew;
    const char *a_after = NULL, *b_after = NULL, *rc = NULL;
    long na = pairs_of(a, aend, depth, afew, FEW, &ap, &a_after);
    long nb = na < 0 ? -1 : pairs_of(b, bend, depth, bfew, FEW, &bp, &b_after);
    if (nb < 0 || b_after != bend || (nb > FEW && !(used = malloc((size_t)nb))))
        goto out;
    memset(used, 0, (size_t)nb);
    if (nb > FEW)
        qsort(bp, (size_t)nb, sizeof *bp, pair_cmp);
    if (rt_buf_putc(out, T_TABLE) < 0)
        goto out;
    for (long i = 0; i < na; i++) {
        const pair *x = &ap[i], *y = NULL;
        if (nb > FEW) {
            y = bsearch(x, bp, (size_t)nb, sizeof *bp, pair_cmp);
        } else {
            for (long j = 0; j < nb && !y; j++)
                y = !used[j] && same_key(x, &bp[j]) ? &bp[j] : NULL;
        }
        if (!y) {
            if (rt_buf_append(out, x->k, (size_t)(x->end - x->k)) < 0)
                goto out;
            continue;
        }
        used[y - bp] = 1;
        if (rt_buf_append(out, x->k, (size_t)(x->v - x->k)) < 0 ||
            merge_value(x->v, x->end, y->v, y->end, depth + 1, out) != x->end)
            goto out;
    }
    for (long i = 0; i < nb; i++)
        if (!used[i] && rt_buf_append(out, bp[i].k, (size_t)(bp[i].end - bp[i].k)) < 0)
            goto out;
    rc = rt_buf_putc(out, T_END) < 0 ? NULL : a_after;
out:
    if (ap != afew)
        free(ap);
    if (bp != bfew)
        free(bp);
    if (used != usedfew)
        free(used);
    return rc;
}

/* Numbers added (two int64 as int64), tables merged key by key, nil the identity,
 * anything else b's (the later slice's). b must end at bend; where a ends, or NULL
 * when either is malformed or memory ran out. */
static const char *merge_value(const char *a, const char *aend, const char *b,
                               const char *bend, int depth, rt_buf *out)
{
    if (depth > MAX_DEPTH || a >= aend || b >= bend)
        return NULL;
    if (*a == T_TABLE && *b == T_TABLE)
        return merge_tables(a, aend, b, bend, depth, out);
    const char *a_after = skip(a, aend, depth);
    if (!a_after || skip(b, bend, depth) != bend)
        return NULL;
    if (*b == T_NIL)
        return rt_buf_append(out, a, (size_t)(a_after - a)) < 0 ? NULL : a_after;
    if (*a != *b || (*a != T_NUM && *a != T_INT64))
        return rt_buf_append(out, b, (size_t)(bend - b)) < 0 ? NULL : a_after;
    char sum[9] = { *a };
    if (*a == T_NUM) {
        double x, y;
        memcpy(&x, a + 1, sizeof x);
        memcpy(&y, b + 1, sizeof y);
        x += y;
        memcpy(sum + 1, &x, sizeof x);
    } else {
        uint64_t x, y;          /* unsigned: wraps as the int64 type does */
        memcpy(&x, a + 1, sizeof x);
        memcpy(&y, b + 1, sizeof y);
        x += y;
        memcpy(sum + 1, &x, sizeof x);
    }
    return rt_buf_append(out, sum, sizeof sum) < 0 ? NULL : a_after;
}

int lb_value_merge_sum(const char *a, size_t alen, const char *b, size_t blen, rt_buf *out)
{
    return merge_value(a, a + alen, b, b + blen, 0, out) == a + alen ? 0 : -1;
}
