/* lb_timer.c - ctx.timer(key, at_ms, tag [, "processing"]): call on_timer(key, tag, ctx)
 * once the watermark (event time, the default) or the clock (processing time) reaches
 * at_ms. One timer per (key, tag) and input partition: setting it again moves it;
 * at_ms nil cancels it. */
#include <lauxlib.h>

#include "bindings.h"

static int ctx_timer(lua_State *L)
{
    static const char *const domains[] = { "event", "processing", NULL };
    rt_processor *p = lua_touserdata(L, lua_upvalueindex(1));
    int t = lua_type(L, 1);
    if (t != LUA_TSTRING && t != LUA_TNUMBER)
        return luaL_argerror(L, 1, "timer keys are strings or numbers");
    size_t klen, taglen;
    const char *key = lua_tolstring(L, 1, &klen);
    const char *tag = luaL_optlstring(L, 3, "", &taglen);
    int domain = luaL_checkoption(L, 4, "event", domains);
    if (p->on_timer_ref == LUA_NOREF)
        return luaL_error(L, "ctx.timer: the processor has no on_timer");
    lb_ctx_allowed(L, p, RT_CTX_TIMER, "ctx.timer");
    if (!p->timers)
        return luaL_error(L, "ctx.timer is not available here");
    if (lua_isnil(L, 2)) {
        lua_pushboolean(L, rt_timers_cancel(p->timers, p->cx.partition, key, klen, tag,
                                            taglen));
        return 1;
    }
    lua_Number at = luaL_checknumber(L, 2);
    if (!(at > -9.0e15 && at < 9.0e15))
        return luaL_argerror(L, 2, "at_ms must be epoch milliseconds");
    if (rt_timers_set(p->timers, p->cx.partition, key, klen, tag, taglen, (int64_t)at,
                      (enum rt_time_domain)domain) < 0)
        return luaL_error(L, "ctx.timer: out of memory");
    return 0;
}

void lb_timer_push(lua_State *L, rt_processor *p)
{
    lua_pushlightuserdata(L, p);
    lua_pushcclosure(L, ctx_timer, 1);
}

static int timer_body(lua_State *L, void *arg)
{
    rt_processor *p = ((void **)arg)[0];
    const rt_timer *t = ((void **)arg)[1];
    lua_rawgeti(L, LUA_REGISTRYINDEX, p->on_timer_ref);
    lua_pushlstring(L, t->id, t->klen);
    lua_pushlstring(L, t->id + t->klen + 1, t->idlen - t->klen - 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, p->ctx_ref);
    lua_call(L, 3, 0);
    return 0;
}

int lb_timer_fire(rt_processor *p, const rt_timer *t, rt_outbox *out, const rt_origin *call,
                  rt_reject *why)
{
    void *arg[2] = { p, (void *)t };
    return rt_processor_invoke(p, RT_CALL_TIMER, timer_body, arg, out, t->partition, call, why);
}
