/* lb_int64.c - exact 64-bit integers for Lua.
 *
 * LuaJIT numbers are doubles, exact only up to 2^53. An id like 9007199254740993 read
 * from a payload would silently change, so such integers become int64 values: they
 * print, compare and encode back to JSON with every digit. */
#include <inttypes.h>
#include <stdio.h>

#include <lauxlib.h>

#include "bindings.h"

#define INT64_MT "eddy.int64"

void lb_int64_push(lua_State *L, long long v)
{
    long long *p = lua_newuserdata(L, sizeof *p);
    *p = v;
    luaL_getmetatable(L, INT64_MT);
    lua_setmetatable(L, -2);
}

int lb_int64_test(lua_State *L, int idx, long long *v)
{
    long long *p = lua_touserdata(L, idx);
    if (!p || !lua_getmetatable(L, idx))
        return 0;
    luaL_getmetatable(L, INT64_MT);
    int same = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    if (same)
        *v = *p;
    return same;
}

/* Compare an int64 with an int64 or a number. */
static void operands(lua_State *L, long long *a, long long *b)
{
    int ia = lb_int64_test(L, 1, a), ib = lb_int64_test(L, 2, b);
    if (!ia)
        *a = (long long)luaL_checknumber(L, 1);
    if (!ib)
        *b = (long long)luaL_checknumber(L, 2);
}

static int int64_tostring(lua_State *L)
{
    long long v;
    if (!lb_int64_test(L, 1, &v))
        return luaL_argerror(L, 1, "int64 expected");
    char s[24];
    snprintf(s, sizeof s, "%lld", v);
    lua_pushstring(L, s);
    return 1;
}

static int int64_eq(lua_State *L)
{
    long long a, b;
    operands(L, &a, &b);
    lua_pushboolean(L, a == b);
    return 1;
}

static int int64_lt(lua_State *L)
{
    long long a, b;
    operands(L, &a, &b);
    lua_pushboolean(L, a < b);
    return 1;
}

static int int64_le(lua_State *L)
{
    long long a, b;
    operands(L, &a, &b);
    lua_pushboolean(L, a <= b);
    return 1;
}

static int int64_concat(lua_State *L)
{
    for (int i = 1; i <= 2; i++) {
        long long v;
        if (lb_int64_test(L, i, &v)) {
            char s[24];
            snprintf(s, sizeof s, "%lld", v);
            lua_pushstring(L, s);
            lua_replace(L, i);
        }
    }
    lua_concat(L, 2);
    return 1;
}

static const luaL_Reg int64_meta[] = {
    { "__tostring", int64_tostring },
    { "__eq", int64_eq },
    { "__lt", int64_lt },
    { "__le", int64_le },
    { "__concat", int64_concat },
    { NULL, NULL },
};

void lb_int64_open(lua_State *L)
{
    luaL_newmetatable(L, INT64_MT);
    luaL_register(L, NULL, int64_meta);
    lua_pushliteral(L, "int64");
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 1);
}
