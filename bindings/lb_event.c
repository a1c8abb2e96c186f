/* lb_event.c - the `ev` object handed to process().
 *
 * The event stays a decoded tape in C (json_tape.h); Lua gets a small userdata whose
 * fields are read when asked for, and the payload becomes a Lua table only on first access
 * (cached for the rest of the call). A processor that routes on ev.type alone never
 * pays for converting the payload. */
#include <string.h>

#include <lauxlib.h>

#include "bindings.h"

#define EVENT_MT "eddy.event"

typedef struct event_ud {
    const rt_event *ev;     /* NULL once process() has returned */
    int has_payload;        /* the converted payload is the userdata's environment */
} event_ud;

static void push_opt(lua_State *L, const char *s)
{
    if (s)
        lua_pushstring(L, s);
    else
        lua_pushnil(L);
}

/* The payload table lives as the userdata's environment: it goes away with the ev
 * object, so there is nothing to release after the call. */
static void push_payload(lua_State *L, event_ud *u)
{
    if (u->has_payload) {
        lua_getfenv(L, 1);
        return;
    }
    if (lb_jtape_push(L, &u->ev->tape, u->ev->payload) < 0)
        luaL_error(L, "payload is nested too deeply");
    lua_pushvalue(L, -1);
    lua_setfenv(L, 1);
    u->has_payload = 1;
}

static int event_index(lua_State *L)
{
    /* Only EVENT_MT has this __index (and its __metatable hides it), so skip the
     * metatable check on the hottest call. */
    event_ud *u = lua_touserdata(L, 1);
    size_t n;
    const char *k = luaL_checklstring(L, 2, &n);
    const rt_event *ev = u->ev;
    if (!ev)
        return luaL_error(L, "event used after process() returned (copy the fields you keep)");
    switch (n) {
    case 4:
        if (memcmp(k, "type", 4) == 0) { lua_pushstring(L, ev->type); return 1; }
        break;
    case 6:
        if (memcmp(k, "domain", 6) == 0) { lua_pushstring(L, ev->domain); return 1; }
        if (memcmp(k, "source", 6) == 0) { push_opt(L, ev->source); return 1; }
        break;
    case 7:
        if (memcmp(k, "payload", 7) == 0) { push_payload(L, u); return 1; }
        if (memcmp(k, "eventId", 7) == 0) { lua_pushstring(L, ev->event_id); return 1; }
        if (memcmp(k, "version", 7) == 0) { push_opt(L, ev->version); return 1; }
        break;
    case 9:
        if (memcmp(k, "timestamp", 9) == 0) {
            if (ev->timestamp > (1LL << 53))
                lb_int64_push(L, ev->timestamp);
            else
                lua_pushnumber(L, (lua_Number)ev->timestamp);
            return 1;
        }
        break;
    }
    lua_pushnil(L);
    return 1;
}

static int event_newindex(lua_State *L)
{
    return luaL_error(L, "ev is read-only (build a new table to emit)");
}

static int event_tostring(lua_State *L)
{
    event_ud *u = lua_touserdata(L, 1);
    if (u->ev)
        lua_pushfstring(L, "BusinessEvent(%s/%s %s)", u->ev->domain, u->ev->type,
                        u->ev->event_id);
    else
        lua_pushliteral(L, "BusinessEvent(detached)");
    return 1;
}

static const luaL_Reg event_meta[] = {
    { "__index", event_index },
    { "__newindex", event_newindex },
    { "__tostring", event_tostring },
    { NULL, NULL },
};

int lb_event_open(lua_State *L)
{
    luaL_newmetatable(L, EVENT_MT);
    luaL_register(L, NULL, event_meta);
    lua_pushliteral(L, "BusinessEvent");
    lua_setfield(L, -2, "__metatable");
    return luaL_ref(L, LUA_REGISTRYINDEX);
}

void *lb_event_push(lua_State *L, const rt_event *ev, int mt_ref)
{
    event_ud *u = lua_newuserdata(L, sizeof *u);
    u->ev = ev;
    u->has_payload = 0;
    lua_rawgeti(L, LUA_REGISTRYINDEX, mt_ref);
    lua_setmetatable(L, -2);
    return u;
}

void lb_event_detach(void *handle)
{
    ((event_ud *)handle)->ev = NULL;
}
