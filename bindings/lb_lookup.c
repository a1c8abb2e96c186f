/* lb_lookup.c - ctx.lookup(name, key): the row of a lookup as a table, or nil.
 *
 * A cache hit returns at once. On a miss the call's coroutine yields; the worker
 * resumes it when the row has arrived, and take() builds the table inside the
 * coroutine, where allocation is protected. The waiting half is Lua (below) because
 * a C function cannot resume after yielding through itself. */
#include <string.h>

#include <lauxlib.h>

#include "bindings.h"

static const char wrapper_src[] =
    "local raw, take, yield = ...\n"
    "return function(name, key)\n"
    "  local row, waits = raw(name, key)\n"
    "  if waits then yield() return take() end\n"
    "  return row\n"
    "end\n";

static rt_processor *self(lua_State *L)
{
    return lua_touserdata(L, lua_upvalueindex(1));
}

/* The lookup's field names as Lua strings (an array in the registry, keyed by the
 * lookup, which lives as long as the worker): made once, where naming each field of
 * each row by its C string hashed and interned it again. */
static void push_names(lua_State *L, const rt_lookup *lk, const char *const *fields,
                       unsigned nf)
{
    lua_pushlightuserdata(L, (void *)lk);
    lua_rawget(L, LUA_REGISTRYINDEX);
    if (!lua_isnil(L, -1))
        return;
    lua_pop(L, 1);
    lua_createtable(L, (int)nf, 0);
    for (unsigned i = 0; i < nf; i++) {
        lua_pushstring(L, fields[i]);
        lua_rawseti(L, -2, (int)i + 1);
    }
    lua_pushlightuserdata(L, (void *)lk);
    lua_pushvalue(L, -2);
    lua_rawset(L, LUA_REGISTRYINDEX);
}

/* Fields come in result-column order; NULL columns are left out (nil in Lua). */
static void push_row(lua_State *L, const rt_lookup *lk, const rt_row *row)
{
    unsigned nf;
    const char *const *fields = rt_lookup_fields(lk, &nf);
    if (!row) {
        lua_pushnil(L);
        return;
    }
    unsigned n = row->n < nf ? row->n : nf;
    push_names(L, lk, fields, nf);
    int names = lua_gettop(L);
    lua_createtable(L, 0, (int)n);
    for (unsigned i = 0; i < n; i++) {
        const rt_cell *c = &row->cells[i];
        if (c->type == RT_CELL_NULL)
            continue;
        lua_rawgeti(L, names, (int)i + 1);
        switch (c->type) {
        case RT_CELL_NULL:      /* left out above; a nil value sets nothing */
            lua_pushnil(L);
            break;
        case RT_CELL_INT:
            if (c->i > (1LL << 53) || c->i < -(1LL << 53))
                lb_int64_push(L, c->i);
            else
                lua_pushnumber(L, (lua_Number)c->i);
            break;
        case RT_CELL_DOUBLE:
            lua_pushnumber(L, c->d);
            break;
        case RT_CELL_TEXT:
            lua_pushlstring(L, c->s, c->len);
            break;
        }
        lua_rawset(L, -3);
    }
    lua_remove(L, names);
}

/* raw(name, key) -> row | nil | nil, true (the caller must yield, then take()). */
static int lookup_raw(lua_State *L)
{
    rt_processor *p = self(L);
    const char *name = luaL_checkstring(L, 1);
    char num[40];
    size_t len;
    long long v;
    const char *key;
    switch (lua_type(L, 2)) {
    case LUA_TNIL:
        return 0;       /* no key, no row */
    case LUA_TSTRING:
        key = lua_tolstring(L, 2, &len);
        break;
    case LUA_TNUMBER:
        key = rt_lookup_number_key(lua_tonumber(L, 2), num, sizeof num, &len);
        break;
    default:
        if (!lb_int64_test(L, 2, &v))
            return luaL_argerror(L, 2, "key must be a string or a number");
        len = (size_t)snprintf(num, sizeof num, "%lld", v);
        key = num;
    }
    rt_lookup *lk = p->last_lookup;
    if (!lk || strcmp(rt_lookup_name(lk), name) != 0)
        lk = p->lookups ? rt_lookups_find(p->lookups, name) : NULL;
    if (!lk)
        return luaL_error(L, "ctx.lookup: unknown lookup '%s'", name);
    p->last_lookup = lk;
    int can_wait = (p->cx.allows & RT_CTX_WAIT) && p->cx.wait && L == p->cx.running;
    const rt_row *row;
    int r = rt_lookup_get(lk, key, len, (rt_row **)&row, can_wait ? p->cx.wait : NULL);
    if (r < 0)
        return luaL_error(L, "ctx.lookup: out of memory");
    if (r == 1) {
        push_row(L, lk, row);
        return 1;
    }
    if (!can_wait && p->cx.kind != RT_CALL_PROCESS)
        return luaL_error(L, "ctx.lookup cannot wait inside %s: '%s' key %s is not cached",
                          rt_call_names[p->cx.kind], name, key);
    if (!can_wait)
        return luaL_error(L, "ctx.lookup cannot wait inside a coroutine of process() or a "
                             "function called from C: '%s' key %s is not cached", name, key);
    p->cx.waiting = 1;
    lua_pushnil(L);
    lua_pushboolean(L, 1);
    return 2;
}

/* take() -> the row the call waited for. */
static int lookup_take(lua_State *L)
{
    rt_processor *p = self(L);
    if (!p->cx.wait || p->cx.wait->state != RT_WAIT_READY)
        return luaL_error(L, "ctx.lookup: resumed without an answer");
    push_row(L, p->cx.wait->lk, p->cx.wait->row);
    return 1;
}

void lb_lookup_push(lua_State *L, rt_processor *p)
{
    if (luaL_loadbuffer(L, wrapper_src, sizeof wrapper_src - 1, "=ctx.lookup"))
        lua_error(L);
    lua_pushlightuserdata(L, p);
    lua_pushcclosure(L, lookup_raw, 1);
    lua_pushlightuserdata(L, p);
    lua_pushcclosure(L, lookup_take, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, p->yield_ref);
    lua_call(L, 3, 1);
}
