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
