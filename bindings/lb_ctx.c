/* lb_ctx.c - the `ctx` table handed to init() and process(): emit, log, now, reject,
 * check, rules, json (lookup is in lb_lookup.c). Each function finds its processor in
 * upvalue 1. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "bindings.h"
#include "clock.h"
#include "log.h"

const char lb_reject_marker = 'r';

static rt_processor *self(lua_State *L)
{
    return lua_touserdata(L, lua_upvalueindex(1));
}

/* The message key of a sink with sink.<name>.key: that field of the record as text.
 * A record without it has no key (Kafka then spreads records over partitions). */
static void append_key(lua_State *L, const rt_sink *s, rt_buf *b)
{
    size_t n;
    long long v;
    char digits[24];
    const char *k = NULL;
    lua_getfield(L, 2, s->key_field);
    if (lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER) {
        k = lua_tolstring(L, -1, &n);
    } else if (lb_int64_test(L, -1, &v)) {
        n = (size_t)snprintf(digits, sizeof digits, "%lld", v);
        k = digits;
    } else if (!lua_isnil(L, -1)) {
        luaL_error(L, "ctx.emit: key field '%s' of sink %s must be a string or number, not %s",
                   s->key_field, s->name, luaL_typename(L, -1));
    }
    if (k && rt_buf_append(b, k, n) < 0)
        luaL_error(L, "ctx.emit: out of memory");
    lua_pop(L, 1);
}

void lb_ctx_allowed(lua_State *L, const rt_processor *p, unsigned need, const char *what)
{
    if ((p->cx.allows & need) != need)
        luaL_error(L, "%s cannot be used in %s", what, rt_call_names[p->cx.kind]);
}

/* ctx.emit(sink, record): encoded now, delivered when the call returns normally. */
static int ctx_emit(lua_State *L)
{
    rt_processor *p = self(L);
    const char *name = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    lb_ctx_allowed(L, p, RT_CTX_EMIT, "ctx.emit");
    if (p->limits.max_emits && ++p->cx.emits > p->limits.max_emits)
        return rt_processor_limit_error(L, p, RT_LIMIT_EMITS);
    /* Processors mostly emit to one sink: try the last one before the lookup. */
    rt_sink *s = p->last_sink && strcmp(p->last_sink->name, name) == 0
                     ? p->last_sink : rt_sinks_find(p->sinks, name);
    if (!s)
        return luaL_error(L, "ctx.emit: unknown sink '%s'", name);
    p->last_sink = s;
    rt_buf *b = &p->cx.outbox->bytes;
    size_t off = b->len;
    lb_json_encode(L, 2, b);
    size_t key_off = b->len;
    /* Checked once encoded: the records wait in C memory until process() returns, and
     * a Kafka producer refuses one past its message.max.bytes for good. */
    if (s->max_record && key_off - off > s->max_record)
        return rt_processor_limit_errorf(L, p, RT_LIMIT_OUTPUT, "a record of %zu bytes for "
                                         "sink %s, which takes at most %zu", key_off - off,
                                         s->name, s->max_record);
    if (p->limits.max_output && key_off > p->limits.max_output)
        return rt_processor_limit_errorf(L, p, RT_LIMIT_OUTPUT, "records of this call passed "
                                         "processor.max.output.mb=%zu", p->limits.max_output >> 20);
    if (s->key_field)
        append_key(L, s, b);
    if (rt_outbox_add(p->cx.outbox, s, off, key_off) < 0)
        return luaL_error(L, "ctx.emit: out of memory");
    return 0;
}

/* ctx.log(level, message) with level debug|info|warn|error. */
static int ctx_log(lua_State *L)
{
    static const char *const levels[] = { "debug", "info", "warn", "error", NULL };
    int level = luaL_checkoption(L, 1, NULL, levels);
    const char *msg = luaL_checkstring(L, 2);
    rt_log((enum rt_log_level)level, "processor %s: %s", self(L)->name, msg);
    return 0;
}

/* ctx.now(): processing time, epoch milliseconds. */
static int ctx_now(lua_State *L)
{
    lua_pushnumber(L, (lua_Number)rt_epoch_ms());
    return 1;
}

/* Unwind to the pcall path, which reads the detail from p->reject. */
static int raise_reject(lua_State *L)
{
    lua_pushlightuserdata(L, (void *)&lb_reject_marker);
    return lua_error(L);
}

/* ctx.reject(detail): stop here and dead-letter the event with reason `rejected`. */
static int ctx_reject(lua_State *L)
{
    rt_processor *p = self(L);
    snprintf(p->reject, sizeof p->reject, "%s", luaL_optstring(L, 1, "rejected by processor"));
    return raise_reject(L);
}

/* The Lua type a ctx.check spec names ("number", "string?", ...), -1 if none. */
static int spec_type(const char *name, size_t n, int *optional)
{
    *optional = n && name[n - 1] == '?';
    n -= (size_t)*optional;
    /* By length first: this runs for every field of every check. */
    switch (n) {
    case 5: return memcmp(name, "table", 5) == 0 ? LUA_TTABLE : -1;
    case 6: return memcmp(name, "string", 6) == 0 ? LUA_TSTRING
                   : memcmp(name, "number", 6) == 0 ? LUA_TNUMBER : -1;
    case 7: return memcmp(name, "boolean", 7) == 0 ? LUA_TBOOLEAN : -1;
    }
    return -1;
}

/* A spec as ctx.check reads it: its fields sorted by name, each with the type it
 * wants. The userdata's environment holds the names and the spec's type texts, at
 * 2i+1 and 2i+2, for the lookups and the message. */
typedef struct spec_field {
    int type;
    int optional;
} spec_field;

typedef struct spec {
    size_t n;
    spec_field f[];
} spec;

typedef struct spec_name {
    const char *name;
    int key;        /* the stack index of its name, then of its type text */
} spec_name;

static int by_name(const void *a, const void *b)
{
    return strcmp(((const spec_name *)a)->name, ((const spec_name *)b)->name);
}

/* Read the spec at index 2 into a new userdata, pushed, and keep it in the cache (upvalue
 * 2, weak keys) under the spec table. */
static spec *compile_spec(lua_State *L)
{
    size_t n = 0;
    lua_settop(L, 2);
    lua_pushnil(L);
    while (lua_next(L, 2)) {
        size_t len = 0;
        int optional;
        const char *type = lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TSTRING
                               ? lua_tolstring(L, -1, &len) : NULL;
        if (!type || spec_type(type, len, &optional) < 0)
            luaL_error(L, "ctx.check: spec must map field names to "
                          "string|number|boolean|table, with ? for optional");
        luaL_checkstack(L, 3, "ctx.check: spec too large");
        lua_pushvalue(L, -2);       /* name, type text, and the name again for lua_next */
        n++;
    }
    /* The stack: spec's pairs from 3 on, as name, type text. */
    spec_name *order = n ? lua_newuserdata(L, n * sizeof *order) : NULL;
    for (size_t i = 0; i < n; i++) {
        order[i].key = 3 + 2 * (int)i;
        order[i].name = lua_tostring(L, order[i].key);
    }
    if (n)
        qsort(order, n, sizeof *order, by_name);
    spec *c = lua_newuserdata(L, sizeof *c + n * sizeof c->f[0]);
    c->n = n;
    lua_createtable(L, 2 * (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        size_t len;
        const char *type = lua_tolstring(L, order[i].key + 1, &len);
        c->f[i].type = spec_type(type, len, &c->f[i].optional);
        lua_pushvalue(L, order[i].key);
        lua_rawseti(L, -2, 2 * (int)i + 1);
        lua_pushvalue(L, order[i].key + 1);
        lua_rawseti(L, -2, 2 * (int)i + 2);
    }
    lua_setfenv(L, -2);
    lua_pushvalue(L, 2);
    lua_pushvalue(L, -2);
    lua_rawset(L, lua_upvalueindex(2));
    lua_insert(L, 3);
    lua_settop(L, 3);
    return c;
}

/* ctx.check(tbl, {field = "string"|"number"|"boolean"|"table", opt = "number?"}):
 * reject the event, naming the first field (in name order, so that the message does not
 * depend on hashing) that is missing or of the wrong type. A spec table is read the
 * first time it is used and kept: this runs for every event, and reading the spec again
 * took twice the Lua calls of checking the fields. */
static int ctx_check(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);
    lua_pushvalue(L, 2);
    lua_rawget(L, lua_upvalueindex(2));
    spec *c = lua_touserdata(L, 3);
    if (!c)
        c = compile_spec(L);
    lua_getfenv(L, 3);
    for (size_t i = 0; i < c->n; i++) {
        lua_rawgeti(L, 4, 2 * (int)i + 1);
        lua_rawget(L, 1);
        int have = lua_type(L, -1);
        lua_pop(L, 1);
        if (have == c->f[i].type || (have == LUA_TNIL && c->f[i].optional))
            continue;
        lua_rawgeti(L, 4, 2 * (int)i + 1);
        lua_rawgeti(L, 4, 2 * (int)i + 2);
        rt_processor *p = self(L);
        snprintf(p->reject, sizeof p->reject, "payload.%s: expected %s, got %s",
                 lua_tostring(L, -2), lua_tostring(L, -1), lua_typename(L, have));
        return raise_reject(L);
    }
    return 0;
}

/* Remember that p read rules `name`: a change of that file reloads p. */
static void note_rules_read(lua_State *L, rt_processor *p, const char *name)
{
    char **v = realloc(p->rules_read, (p->nrules_read + 1) * sizeof *v);
    if (!v)
        luaL_error(L, "out of memory");
    p->rules_read = v;
    if (!(v[p->nrules_read] = strdup(name)))
        luaL_error(L, "out of memory");
    p->nrules_read++;
}

/* ctx.rules(name): rules.dir/<name>.json as the host parsed it, decoded once per load.
 * A missing or broken file is an error, so a processor that reads its rules in init()
 * fails to load rather than run without them. */
static int ctx_rules(lua_State *L)
{
    rt_processor *p = self(L);
    size_t n;
    const char *name = luaL_checklstring(L, 1, &n);
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)name[i]) && name[i] != '_' && name[i] != '-')
            return luaL_argerror(L, 1, "rules name may hold only letters, digits, _ and -");
    lua_getfield(L, lua_upvalueindex(2), name);
    if (!lua_isnil(L, -1))
        return 1;
    const json_t *doc = rt_rules_get(p->rules, name);
    if (!doc)
        return luaL_error(L, "ctx.rules: no rules file %s/%s.json (or it never parsed)",
                          p->rules ? p->rules->dir : ".", name);
    if (lb_json_push(L, (json_t *)doc) < 0)
        return luaL_error(L, "ctx.rules: %s: nested too deep", name);
    note_rules_read(L, p, name);
    lua_pushvalue(L, -1);
    lua_setfield(L, lua_upvalueindex(2), name);
    return 1;
}

static const luaL_Reg ctx_funcs[] = {
    { "emit", ctx_emit },
    { "log", ctx_log },
    { "now", ctx_now },
    { "reject", ctx_reject },
    { NULL, NULL },
};

void lb_ctx_push(lua_State *L, rt_processor *p)
{
    lua_createtable(L, 0, 12);
    for (const luaL_Reg *f = ctx_funcs; f->name; f++) {
        lua_pushlightuserdata(L, p);
        lua_pushcclosure(L, f->func, 1);
        lua_setfield(L, -2, f->name);
    }
    lua_pushlightuserdata(L, p);
    lua_createtable(L, 0, 8);       /* specs read, by spec table (weak keys) */
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_pushcclosure(L, ctx_check, 2);
    lua_setfield(L, -2, "check");
    lua_pushlightuserdata(L, p);
    lua_newtable(L);        /* rules already read */
    lua_pushcclosure(L, ctx_rules, 2);
    lua_setfield(L, -2, "rules");
    lb_lookup_push(L, p);
    lua_setfield(L, -2, "lookup");
    lb_json_open(L, &p->scratch);
    lua_setfield(L, -2, "json");
    lb_state_push(L, p);
    lua_setfield(L, -2, "state");
    lb_timer_push(L, p);
    lua_setfield(L, -2, "timer");
    lb_geo_open(L);
    lua_setfield(L, -2, "geo");
    lb_metric_push(L, p);
    lua_setfield(L, -2, "metric");
}
