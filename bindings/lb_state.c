/* lb_state.c - ctx.state: get(key), set(key, value [, ttl_ms]), del(key). Values are
 * kept by the host (runtime/state/state.c) under the processor's name and the input
 * partition of the call in progress, so they survive a reload and move with their
 * partition. A table is stored as a copy: change it, then set it again. */
#include <lauxlib.h>

#include "bindings.h"
#include "clock.h"

static rt_processor *self(lua_State *L)
{
    return lua_touserdata(L, lua_upvalueindex(1));
}

/* The key as bytes: a string, or a number's text. */
static const char *check_key(lua_State *L, size_t *len)
{
    int t = lua_type(L, 1);
    if (t != LUA_TSTRING && t != LUA_TNUMBER)
        luaL_argerror(L, 1, "state keys are strings or numbers");
    return lua_tolstring(L, 1, len);
}

static rt_state *store(lua_State *L, rt_processor *p)
{
    lb_ctx_allowed(L, p, RT_CTX_STATE, "ctx.state");
    if (!p->state)
        luaL_error(L, "ctx.state is not available here");
    return p->state;
}

static int state_get(lua_State *L)
{
    rt_processor *p = self(L);
    size_t klen;
    const char *key = check_key(L, &klen);
    const rt_state_value *v = rt_state_get(store(L, p), p->cx.partition, key, klen,
                                           rt_epoch_coarse_ms());
    if (!v) {
        lua_pushnil(L);
        return 1;
    }
    if (lb_value_load(L, v->data, v->len) < 0)
        return luaL_error(L, "ctx.state.get: stored value of key '%s' is corrupt", key);
    return 1;
}

static int state_set(lua_State *L)
{
    rt_processor *p = self(L);
    size_t klen;
    const char *key = check_key(L, &klen);
    rt_state *st = store(L, p);
    if (lua_isnil(L, 2)) {
        if (rt_state_del(st, p->cx.undo, p->cx.partition, key, klen) < 0)
            return luaL_error(L, "ctx.state.set: out of memory");
        return 0;
    }
    lua_Number ttl = luaL_optnumber(L, 3, (lua_Number)p->state_ttl_ms);
    if (!(ttl >= 0))
        return luaL_argerror(L, 3, "ttl_ms must be >= 0");
    rt_buf *b = &p->scratch;
    b->len = 0;
    lb_value_dump(L, 2, b, "ctx.state.set");
    /* 0 is "never"; so is a TTL too long for epoch ms (math.huge, 1e300): it would
     * overflow into the past and the value would be gone at once. */
    int64_t expires = ttl > 0 && ttl < 9.0e15 ? rt_epoch_coarse_ms() + (int64_t)ttl : 0;
    /* Keyed state is C memory, outside processor.memory.mb: it has its own bound. The
     * old value's bytes are still counted, so a replacement near the bound is refused
     * a little early rather than overshooting it. */
    if (p->limits.max_state &&
        st->bytes + st->undo_bytes + b->len + klen > p->limits.max_state)
        return rt_processor_limit_errorf(L, p, RT_LIMIT_MEMORY, "ctx.state would hold more "
                                         "than state.max.mb=%zu", p->limits.max_state >> 20);
    if (rt_state_set(st, p->cx.undo, p->cx.partition, key, klen, b->data, b->len, expires) < 0)
        return luaL_error(L, "ctx.state.set: out of memory");
    return 0;
}

static int state_del(lua_State *L)
{
    rt_processor *p = self(L);
    size_t klen;
    const char *key = check_key(L, &klen);
    int rc = rt_state_del(store(L, p), p->cx.undo, p->cx.partition, key, klen);
    if (rc < 0)
        return luaL_error(L, "ctx.state.del: out of memory");
    lua_pushboolean(L, rc);
    return 1;
}

static const luaL_Reg state_funcs[] = {
    { "get", state_get },
    { "set", state_set },
    { "del", state_del },
    { NULL, NULL },
};

void lb_state_push(lua_State *L, rt_processor *p)
{
    lua_createtable(L, 0, 3);
    for (const luaL_Reg *f = state_funcs; f->name; f++) {
        lua_pushlightuserdata(L, p);
        lua_pushcclosure(L, f->func, 1);
        lua_setfield(L, -2, f->name);
    }
}
