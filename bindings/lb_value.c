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

/* ---- merge = "sum": accumulators' bytes merged without Lua ---- */

/* The result is what merging two at a time, left to right, gives (numbers added, two
 * int64 as int64; tables merged key by key; nil the identity; any other value the later
 * one's), made in one pass over all of them: a window that fires over six slices
 * parsed, matched and wrote its growing accumulator five times over. */

typedef struct pair {
    const char *k, *v, *end;    /* its key's bytes, its value's, and where it ends */
} pair;

/* The pairs of the tables being merged: in `few` (on the stack) while they fit. */
enum { FEW = 32 };
typedef struct pairs {
    pair *v;
    size_t n, cap;
    pair few[FEW];
} pairs;

/* Any total order on the key bytes, then the pairs' own order (they are in one array):
 * equal keys sort together, earliest first. */
static int pair_cmp(const void *a, const void *b)
{
    const pair *x = *(const pair *const *)a, *y = *(const pair *const *)b;
    size_t nx = (size_t)(x->v - x->k), ny = (size_t)(y->v - y->k);
    int c = memcmp(x->k, y->k, nx < ny ? nx : ny);
    if (c || nx != ny)
        return c ? c : (nx > ny) - (nx < ny);
    return (x > y) - (x < y);
}

static int same_key(const pair *x, const pair *y)
{
    size_t n = (size_t)(x->v - x->k);
    return n == (size_t)(y->v - y->k) && x->k[n - 1] == y->k[n - 1] &&
           memcmp(x->k, y->k, n) == 0;
}

/* Append the pairs of the table at p (its tag) to ps, each key and value checked by
 * skip on the way. Where the table ends, or NULL (malformed, or out of memory). */
static const char *collect_pairs(const char *p, const char *end, int depth, pairs *ps)
{
    for (p++; p < end && *p != T_END;) {
        const char *k = p, *val = skip(k, end, depth + 1);
        const char *next = val ? skip(val, end, depth + 1) : NULL;
        if (!next)
            return NULL;
        if (ps->n == ps->cap) {
            pair *w = malloc(2 * ps->cap * sizeof *w);
            if (!w)
                return NULL;
            memcpy(w, ps->v, ps->n * sizeof *w);
            if (ps->v != ps->few)
                free(ps->v);
            ps->v = w;
            ps->cap *= 2;
        }
        ps->v[ps->n++] = (pair){ k, val, next };
        p = next;
    }
    return p < end ? p + 1 : NULL;
}

/* Number the pairs' keys 0, 1, ... in the order they first appear: grp[i] is pair i's
 * key, first[g] the first pair of key g. The count of keys, or -1 (out of memory). Few
 * pairs are matched one by one; more are sorted. */
static long number_keys(const pairs *ps, uint32_t *grp, uint32_t *first)
{
    uint32_t ng = 0;
    if (ps->n <= FEW) {
        for (uint32_t i = 0; i < ps->n; i++) {
            uint32_t g = 0;
            while (g < ng && !same_key(&ps->v[first[g]], &ps->v[i]))
                g++;
            if (g == ng)
                first[ng++] = i;
            grp[i] = g;
        }
        return ng;
    }
    const pair **by = malloc(ps->n * sizeof *by);
    uint32_t *num = malloc(ps->n * sizeof *num);    /* a run's key number, once seen */
    if (!by || !num) {
        free(by);
        free(num);
        return -1;
    }
    for (size_t i = 0; i < ps->n; i++)
        by[i] = &ps->v[i];
    qsort(by, ps->n, sizeof *by, pair_cmp);
    uint32_t runs = 0;
    for (size_t i = 0; i < ps->n; i++) {
        if (i && !same_key(by[i - 1], by[i]))
            runs++;
        grp[by[i] - ps->v] = runs;
        num[runs] = UINT32_MAX;
    }
    for (uint32_t i = 0; i < ps->n; i++) {
        if (num[grp[i]] == UINT32_MAX) {
            num[grp[i]] = ng;
            first[ng++] = i;
        }
        grp[i] = num[grp[i]];
    }
    free(by);
    free(num);
    return ng;
}

static int merge_many(const lb_span *v, size_t n, int depth, rt_buf *out);

/* The tables among v (the others are nils), merged: keys in the order they first
 * appear, each with the merge of its values in the tables' order. */
static int merge_tables(const lb_span *v, size_t n, int depth, rt_buf *out)
{
    uint32_t grp_few[FEW], first_few[FEW], at_few[FEW + 1];
    lb_span vals_few[FEW];
    pairs ps;
    ps.v = ps.few;
    ps.n = 0;
    ps.cap = FEW;
    uint32_t *grp = grp_few, *first = first_few, *at = at_few;
    lb_span *vals = vals_few;
    int rc = -1;
    for (size_t i = 0; i < n; i++) {
        const char *end = v[i].p + v[i].len;
        if (*v[i].p == T_TABLE && collect_pairs(v[i].p, end, depth, &ps) != end)
            goto out;
    }
    if (ps.n > FEW) {
        grp = malloc(ps.n * sizeof *grp);
        first = malloc(ps.n * sizeof *first);
        at = malloc((ps.n + 1) * sizeof *at);
        vals = malloc(ps.n * sizeof *vals);
        if (!grp || !first || !at || !vals)
            goto out;
    }
    long ng = number_keys(&ps, grp, first);
    if (ng < 0)
        goto out;
    /* Each key's values side by side, in the tables' order: at[g] is where key g's
     * begin (a counting sort by key number). */
    memset(at, 0, ((size_t)ng + 1) * sizeof *at);
    for (size_t i = 0; i < ps.n; i++)
        at[grp[i] + 1]++;
    for (long g = 0; g < ng; g++)
        at[g + 1] += at[g];
    for (size_t i = 0; i < ps.n; i++) {
        const pair *x = &ps.v[i];
        vals[at[grp[i]]++] = (lb_span){ x->v, (size_t)(x->end - x->v) };
    }
    /* Now at[g] is where key g's values end. */
    if (rt_buf_putc(out, T_TABLE) < 0)
        goto out;
    for (long g = 0; g < ng; g++) {
        const pair *key = &ps.v[first[g]];
        uint32_t from = g ? at[g - 1] : 0;
        if (rt_buf_append(out, key->k, (size_t)(key->v - key->k)) < 0 ||
            merge_many(vals + from, at[g] - from, depth + 1, out) < 0)
            goto out;
    }
    rc = rt_buf_putc(out, T_END);
out:
    if (ps.v != ps.few)
        free(ps.v);
    if (grp != grp_few) {
        free(grp);
        free(first);
        free(at);
        free(vals);
    }
    return rc;
}

static int merge_many(const lb_span *v, size_t n, int depth, rt_buf *out)
{
    if (depth > MAX_DEPTH || !n)
        return -1;
    /* Merging left to right keeps the values from the last one that neither is nil
     * nor combines with the one before it (a table after a table, a number after a
     * number of its type); those before it are replaced. */
    size_t from = 0;
    for (size_t i = 0; i < n; i++) {
        if (!v[i].len)
            return -1;
        char t = *v[i].p;
        if (i && (t == T_NIL || (t == *v[from].p && (t == T_TABLE || t == T_NUM ||
                                                    t == T_INT64))))
            continue;
        from = i;
    }
    char kind = *v[from].p;
    int combines = kind == T_TABLE || kind == T_NUM || kind == T_INT64;
    size_t count = 0;
    for (size_t i = 0; i < n; i++) {
        const char *end = v[i].p + v[i].len;
        if (i >= from && *v[i].p == kind && combines) {
            count++;
            if (kind != T_TABLE && v[i].len != 9)
                return -1;
        } else if (skip(v[i].p, end, depth) != end) {
            return -1;  /* replaced or nil, but checked all the same */
        }
    }
    if (kind == T_TABLE && count > 1)
        return merge_tables(v + from, n - from, depth, out);
    if (!combines || count == 1) {
        const char *end = v[from].p + v[from].len;
        if (kind == T_TABLE && skip(v[from].p, end, depth) != end)
            return -1;
        return rt_buf_append(out, v[from].p, v[from].len);
    }
    /* Numbers, added in order from the first: what two at a time gives, to the bit. */
    char sum[9] = { kind };
    double d = 0;
    uint64_t u = 0;     /* unsigned: wraps as the int64 type does */
    for (size_t i = from, seen = 0; i < n; i++) {
        if (*v[i].p != kind)
            continue;
        double x;
        uint64_t y;
        memcpy(&x, v[i].p + 1, sizeof x);
        memcpy(&y, v[i].p + 1, sizeof y);
        d = seen ? d + x : x;
        u = seen ? u + y : y;
        seen++;
    }
    if (kind == T_NUM)
        memcpy(sum + 1, &d, sizeof d);
    else
        memcpy(sum + 1, &u, sizeof u);
    return rt_buf_append(out, sum, sizeof sum);
}

int lb_value_merge_sum(const lb_span *v, size_t n, rt_buf *out)
{
    return merge_many(v, n, 0, out);
}
