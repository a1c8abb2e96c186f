/* processor.c - Lua processors: a sandboxed LuaJIT state per processor file.
 *
 * Every call into Lua is a lua_pcall/lua_cpcall whose result goes through failed(),
 * the one place that turns a Lua error into a dead-letter reason. Loading runs as one
 * protected C function, so a broken file (or out of memory) is an error, not a panic.
 * Per event, a trampoline kept in the registry pushes the arguments inside the
 * protected call, so nothing allocates outside protection on the hot path. */
#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "bindings.h"
#include "nearest.h"
#include "clock.h"
#include "log.h"
#include "beat.h"
#include "hash.h"
#include "processor.h"
#include "readfile.h"
#include "sandbox.h"

/* The context guard's table: what ctx allows in each kind of call. A lookup may wait
 * only in process(), whose coroutine the worker resumes; outputs only where a call's
 * outputs are collected (not in add/merge, whose results become the window's). */
const unsigned rt_call_allows[RT_NCALL_KINDS] = {
    [RT_CALL_NONE] = 0,
    [RT_CALL_INIT] = 0,
    [RT_CALL_PROCESS] = RT_CTX_EMIT | RT_CTX_WAIT | RT_CTX_STATE | RT_CTX_TIMER,
    [RT_CALL_ADD] = RT_CTX_STATE | RT_CTX_TIMER,
    [RT_CALL_MERGE] = RT_CTX_STATE | RT_CTX_TIMER,
    [RT_CALL_WINDOW] = RT_CTX_EMIT | RT_CTX_STATE | RT_CTX_TIMER,
    [RT_CALL_TIMER] = RT_CTX_EMIT | RT_CTX_STATE | RT_CTX_TIMER,
};

const char *const rt_call_names[RT_NCALL_KINDS] = {
    [RT_CALL_NONE] = "between calls", [RT_CALL_INIT] = "init",
    [RT_CALL_PROCESS] = "process()", [RT_CALL_ADD] = "a window's add",
    [RT_CALL_MERGE] = "a window's merge", [RT_CALL_WINDOW] = "on_window",
    [RT_CALL_TIMER] = "on_timer",
};

typedef struct load_job {
    rt_processor *p;
    const char *src;
    size_t len;
    int64_t allowed_lateness_ms;
    int strict;             /* rt_processor_env.strict */
} load_job;

/* Turn the status of a Lua call on `L` (the state or a call's coroutine) into 0, or
 * -1 with the dead-letter reason; the error value is popped. */
static int failed(rt_processor *p, lua_State *L, int rc, rt_reject *why)
{
    if (rc == 0 && p->limit == RT_LIMIT_NONE)
        return 0;
    if (p->limit != RT_LIMIT_NONE) {
        rt_sandbox_limit_reject(p, why);
        if (rc == 0)
            return -1;
    } else if (lua_touserdata(L, -1) == &lb_reject_marker) {
        rt_reject_set(why, RT_REASON_REJECTED, "%s", p->reject);
    } else if (rc == LUA_ERRMEM) {
        rt_reject_set(why, RT_REASON_MEMORY, "out of memory");
    } else {
        const char *msg = lua_tostring(L, -1);
        if (msg)
            rt_reject_set(why, RT_REASON_PROCESSOR_ERROR, "%s", msg);
        else
            rt_reject_set(why, RT_REASON_PROCESSOR_ERROR, "(error object is a %s value)",
                          luaL_typename(L, -1));
    }
    lua_pop(L, 1);
    return -1;
}

static const char *file_stem(const char *path, char *buf, size_t len)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    snprintf(buf, len, "%s", base);
    char *dot = strrchr(buf, '.');
    if (dot)
        *dot = '\0';
    return buf;
}

/* The line of the first "<key> =" in the source on or after line `from`, or 0. */
static int line_of(const char *src, size_t len, const char *key, int from)
{
    size_t k = strlen(key);
    int line = 1;
    for (size_t i = 0; src && i + k <= len; i++) {
        if (src[i] == '\n')
            line++;
        if (line < from || memcmp(src + i, key, k) != 0 ||
            (i && (isalnum((unsigned char)src[i - 1]) || src[i - 1] == '_')))
            continue;
        size_t j = i + k;
        while (j < len && (src[j] == ' ' || src[j] == '\t'))
            j++;
        if (j < len && src[j] == '=' && (j + 1 >= len || src[j + 1] != '='))
            return line;
    }
    return 0;
}

const char *rt_processor_where(const rt_processor *p, const char *key, const char *within,
                               char *buf, size_t len)
{
    int from = within ? line_of(p->load_src, p->load_len, within, 1) : 1;
    int line = from ? line_of(p->load_src, p->load_len, key, from) : 0;
    if (line)
        snprintf(buf, len, "%s:%d", p->path, line);
    else
        snprintf(buf, len, "%s", p->path);
    return buf;
}

void rt_processor_check_keys(lua_State *L, rt_processor *p, int t,
                             const char *const *known, const char *what)
{
    for (lua_pushnil(L); lua_next(L, t); lua_pop(L, 1)) {
        if (lua_type(L, -2) != LUA_TSTRING)
            luaL_error(L, "%s: %s has a key that is not a name", p->path, what);
        const char *key = lua_tostring(L, -2), *near = NULL;
        size_t best = SIZE_MAX;
        int i = 0;
        for (; known[i] && strcmp(known[i], key) != 0; i++) {
            /* size for size_ms: a known key that only adds a unit is one edit away */
            size_t klen = strlen(key), d = strncmp(known[i], key, klen) == 0 &&
                                                   known[i][klen] == '_' ? 1
                                                   : rt_edit_distance(key, known[i]);
            if (d < best) {
                best = d;
                near = known[i];
            }
        }
        if (known[i])
            continue;
        char where[4200];
        rt_processor_where(p, key, NULL, where, sizeof where);
        if (near && best <= 2 && best < strlen(key))
            luaL_error(L, "%s: unknown key '%s' in %s; did you mean '%s'?", where, key, what,
                       near);
        luaL_error(L, "%s: unknown key '%s' in %s", where, key, what);
    }
}

/* ctx.emit("name", ...) with a literal name that no sink declares would fail on every
 * event until the processor is quarantined. `eddy check` refuses it; a run warns (a
 * config may leave out sinks of processors whose events it never gets). Names built at
 * run time are checked when emitted; commented-out lines are skipped. */
static void check_emits(lua_State *L, rt_processor *p, const load_job *job)
{
    const char *src = job->src;
    size_t len = job->len;
    int line = 1, comment = 0;
    for (size_t i = 0; p->sinks && i < len; i++) {
        if (src[i] == '\n') {
            line++;
            comment = 0;
            continue;
        }
        if (src[i] == '-' && i + 1 < len && src[i + 1] == '-')
            comment = 1;
        if (comment || len - i < 6 || memcmp(src + i, "emit(", 5) != 0 ||
            (i && (isalnum((unsigned char)src[i - 1]) || src[i - 1] == '_')))
            continue;
        size_t j = i + 5;
        while (j < len && (src[j] == ' ' || src[j] == '\t'))
            j++;
        if (j >= len || (src[j] != '"' && src[j] != '\''))
            continue;
        char quote = src[j++], name[128];
        size_t n = 0;
        while (j < len && src[j] != quote && src[j] != '\\' && src[j] != '\n' &&
               n + 1 < sizeof name)
            name[n++] = src[j++];
        if (j >= len || src[j] != quote)
            continue;
        /* A name alone, not the start of one built with .. */
        for (j++; j < len && (src[j] == ' ' || src[j] == '\t'); j++)
            ;
        if (j >= len || (src[j] != ',' && src[j] != ')'))
            continue;
        name[n] = '\0';
        if (rt_sinks_find(p->sinks, name))
            continue;
        if (job->strict)
            luaL_error(L, "%s:%d: ctx.emit to sink '%s', which no sink declares (declare "
                          "sink.%s.type)", p->path, line, name, name);
        rt_warn("%s:%d: ctx.emit to sink '%s', which no sink declares: those emits will "
                "fail (eddy check refuses this)", p->path, line, name);
    }
}

static void read_routes(lua_State *L, rt_processor *p, int spec)
{
    lua_getfield(L, spec, "routes");
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return;
    }
    if (!lua_istable(L, -1))
        luaL_error(L, "%s: routes must be a table of {domain=..., type=...}", p->path);
    int routes = lua_gettop(L);
    size_t n = lua_objlen(L, routes);
    p->routes = calloc(n ? n : 1, sizeof *p->routes);
    if (!p->routes)
        luaL_error(L, "out of memory");
    for (size_t i = 1; i <= n; i++) {
        lua_rawgeti(L, routes, (int)i);
        if (!lua_istable(L, -1))
            luaL_error(L, "%s: routes[%d] must be a table", p->path, (int)i);
        /* Check both fields before allocating: luaL_error must not leak a copy. */
        static const char *const field[2] = { "domain", "type" };
        const char *val[2];
        for (int f = 0; f < 2; f++) {
            lua_getfield(L, -1 - f, field[f]);
            size_t len = 0;
            val[f] = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
            if (!val[f] || !len || strlen(val[f]) != len)
                luaL_error(L, "%s: routes[%d].%s must be a non-empty string", p->path,
                           (int)i, field[f]);
        }
        if (strcmp(val[0], "*") == 0)
            luaL_error(L, "%s: routes[%d].domain cannot be '*'", p->path, (int)i);
        rt_route_decl *d = &p->routes[p->nroutes++];
        d->domain = strdup(val[0]);
        d->type = strdup(val[1]);
        if (!d->domain || !d->type)
            luaL_error(L, "out of memory");
        lua_pop(L, 3);      /* domain, type, routes[i] */
    }
    lua_pop(L, 1);
}

/* Called by the trampoline inside the call's coroutine: builds the ev object there,
 * so its allocation is protected too. */
static int push_event(lua_State *L)
{
    rt_processor *p = lua_touserdata(L, lua_upvalueindex(1));
    p->cx.ev_handle = lb_event_push(L, lua_touserdata(L, 1), p->event_mt_ref);
    if (p->nwindows) {      /* kept for the windows' add of this event */
        lua_pushvalue(L, -1);
        p->cx.ev_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    return 1;
}

/* The body of every call's coroutine. Lua, not C, so process() may yield through it. */
static const char trampoline_src[] =
    "local process, push_event, ctx = ...\n"
    "return function(evp) return process(push_event(evp), ctx) end\n";

/* on_window(win, ctx) called with the window's fields as arguments: a table
 * constructor makes `win` from a template in one step, where the C API would intern
 * and insert each of its 7 keys (lb_window.c fire_body). */
static const char on_window_src[] =
    "local on_window, ctx = ...\n"
    "return function(name, key, start, stop, count, late, result)\n"
    "  return on_window({ name = name, key = key, start = start, [\"end\"] = stop,\n"
    "                     count = count, late = late, result = result }, ctx)\n"
    "end\n";

/* One call of rt_processor_invoke: the body runs inside the protected call. */
typedef struct invoke_job {
    int (*body)(lua_State *L, void *arg);
    void *arg;
} invoke_job;

static int invoke_protected(lua_State *L)
{
    invoke_job *job = lua_touserdata(L, 1);
    lua_settop(L, 0);
    return job->body(L, job->arg);
}

/* The whole load, protected: libraries, sandbox, compile, run, check the table, init. */
static int load_protected(lua_State *L)
{
    load_job *job = lua_touserdata(L, 1);
    rt_processor *p = job->p;
    rt_sandbox_open(L, p);
    /* rt_processor_invoke's entry, made once: lua_cpcall would make a closure a call. */
    lua_pushcfunction(L, invoke_protected);
    p->invoke_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    /* "t": text only. Precompiled bytecode is refused: crafted bytecode can break
     * out of the VM. Syntax errors already start with "path:line:". */
    if (job->len && job->src[0] == LUA_SIGNATURE[0])
        luaL_error(L, "%s: precompiled bytecode is not accepted; ship the Lua source", p->path);
    if (luaL_loadbufferx(L, job->src, job->len, lua_pushfstring(L, "@%s", p->path), "t"))
        return lua_error(L);
    lua_call(L, 0, 1);
    if (!lua_istable(L, -1))
        luaL_error(L, "%s: must return a table (got %s)", p->path, luaL_typename(L, -1));
    int spec = lua_gettop(L);
    static const char *const keys[] = { "name", "routes", "process", "init", "windows",
                                        "on_window", "on_timer", "jit", "state_ttl_ms",
                                        "metrics", "key", NULL };
    rt_processor_check_keys(L, p, spec, keys, "the processor table");

    char stem[256];
    lua_getfield(L, spec, "name");
    if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TSTRING)
        luaL_error(L, "%s: name must be a string", p->path);
    const char *name = lua_isnil(L, -1) ? file_stem(p->path, stem, sizeof stem)
                                        : lua_tostring(L, -1);
    for (const char *c = name; *c; c++)
        if (!isalnum((unsigned char)*c) && *c != '_' && *c != '-')
            luaL_error(L, "%s: name '%s' may hold only letters, digits, _ and -", p->path,
                       name);
    if (!*name)
        luaL_error(L, "%s: name is empty", p->path);
    p->name = strdup(name);
    if (!p->name)
        luaL_error(L, "out of memory");
    lua_pop(L, 1);

    read_routes(L, p, spec);

    lua_getfield(L, spec, "key");
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TSTRING || !lua_objlen(L, -1) ||
            strlen(lua_tostring(L, -1)) != lua_objlen(L, -1))
            luaL_error(L, "%s: key must be a record path such as \"payload.merchantId\"",
                       p->path);
        if (!(p->key = strdup(lua_tostring(L, -1))))
            luaL_error(L, "out of memory");
    }
    lua_pop(L, 1);

    lua_getfield(L, spec, "process");
    if (!lua_isfunction(L, -1))
        luaL_error(L, "%s: process must be a function", p->path);
    check_emits(L, p, job);
    p->process_ref = luaL_ref(L, LUA_REGISTRYINDEX);

    lb_ctx_push(L, p);
    p->ctx_ref = luaL_ref(L, LUA_REGISTRYINDEX);

    static const struct { const char *name; size_t off; } hooks[] = {
        { "on_window", offsetof(rt_processor, on_window_ref) },
        { "on_timer", offsetof(rt_processor, on_timer_ref) },
    };
    for (size_t i = 0; i < sizeof hooks / sizeof *hooks; i++) {
        lua_getfield(L, spec, hooks[i].name);
        if (!lua_isnil(L, -1) && !lua_isfunction(L, -1))
            luaL_error(L, "%s: %s must be a function", p->path, hooks[i].name);
        int *ref = (int *)((char *)p + hooks[i].off);
        if (lua_isnil(L, -1))
            lua_pop(L, 1);
        else
            *ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    lua_getfield(L, spec, "jit");
    if (!lua_isnil(L, -1) && !lua_isboolean(L, -1))
        luaL_error(L, "%s: jit must be true or false", p->path);
    int jit = lua_toboolean(L, -1);
    lua_pop(L, 1);
    lb_window_read(L, p, spec, job->allowed_lateness_ms);
    lb_metric_read(L, p, spec);
    lua_getfield(L, spec, "state_ttl_ms");
    if (!lua_isnil(L, -1)) {
        lua_Number ttl = lua_tonumber(L, -1);
        if (!lua_isnumber(L, -1) || !(ttl >= 0))
            luaL_error(L, "%s: state_ttl_ms must be a number of milliseconds >= 0", p->path);
        p->state_ttl_ms = ttl < 9.0e15 ? (int64_t)ttl : 0;     /* longer: never expires */
    }
    lua_pop(L, 1);

    lua_getfield(L, spec, "init");
    if (!lua_isnil(L, -1)) {
        if (!lua_isfunction(L, -1))
            luaL_error(L, "%s: init must be a function", p->path);
        lua_rawgeti(L, LUA_REGISTRYINDEX, p->ctx_ref);
        lua_call(L, 1, 0);
    } else {
        lua_pop(L, 1);
    }
    /* Only now: windows(ctx) and init run interpreted, so an endless loop in them is
     * stopped at processor.timeout.ms (the load is refused, a reload keeps the old
     * version) rather than compiled beyond the count hook's reach. */
    if (jit)
        rt_sandbox_jit(L, p);
    if (luaL_loadbuffer(L, trampoline_src, sizeof trampoline_src - 1, "=trampoline"))
        return lua_error(L);
    lua_rawgeti(L, LUA_REGISTRYINDEX, p->process_ref);
    lua_pushlightuserdata(L, p);
    lua_pushcclosure(L, push_event, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, p->ctx_ref);
    lua_call(L, 3, 1);
    p->trampoline_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    if (p->on_window_ref != LUA_NOREF) {
        if (luaL_loadbuffer(L, on_window_src, sizeof on_window_src - 1, "=on_window"))
            return lua_error(L);
        lua_rawgeti(L, LUA_REGISTRYINDEX, p->on_window_ref);
        lua_rawgeti(L, LUA_REGISTRYINDEX, p->ctx_ref);
        lua_call(L, 2, 1);
        luaL_unref(L, LUA_REGISTRYINDEX, p->on_window_ref);
        p->on_window_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    return 0;
}

int rt_processor_load(rt_processor *p, const char *path, const rt_processor_env *env,
                      char *err, size_t errlen)
{
    size_t len = 0;
    char *src = rt_read_file(path, &len, err, errlen);
    if (!src) {
        memset(p, 0, sizeof *p);
        return -1;
    }
    int rc = rt_processor_load_source(p, path, src, len, env, err, errlen);
    free(src);
    return rc;
}

int rt_processor_load_source(rt_processor *p, const char *path, const char *src,
                             size_t len, const rt_processor_env *env, char *err,
                             size_t errlen)
{
    int rc = -1;
    memset(p, 0, sizeof *p);
    p->process_ref = p->ctx_ref = p->trampoline_ref = p->yield_ref = LUA_NOREF;
    p->invoke_ref = LUA_NOREF;
    p->on_window_ref = p->on_timer_ref = LUA_NOREF;
    p->sinks = env->sinks;
    p->lookups = env->lookups;
    p->rules = env->rules;
    p->limits = env->limits;
    p->loaded_at = rt_epoch_ms();
    p->hash = rt_fnv1a(RT_FNV1A_INIT, src, len);
    p->path = strdup(path);
    if (!p->path) {
        snprintf(err, errlen, "%s: out of memory", path);
        goto out;
    }
    p->L = rt_sandbox_newstate(p);
    if (!p->L) {
        snprintf(err, errlen, "%s: cannot create a Lua state", path);
        goto out;
    }
    load_job job = { p, src, len, env->allowed_lateness_ms, env->strict };
    rt_reject why;
    rt_sandbox_arm(p, rt_clock_ms(), 0);    /* init() runs under a call's time limit */
    p->cx = (rt_ctx){ .kind = RT_CALL_INIT, .allows = rt_call_allows[RT_CALL_INIT] };
    p->load_src = src;
    p->load_len = len;
    int loaded = lua_cpcall(p->L, load_protected, &job);
    p->load_src = NULL;
    p->load_len = 0;
    p->cx = (rt_ctx){ .kind = RT_CALL_NONE };
    rt_sandbox_disarm(p);
    if (failed(p, p->L, loaded, &why) < 0) {
        /* Errors of the table's checks (windows.w: ...) come without a place. */
        size_t plen = strlen(path);
        if (why.code == RT_REASON_PROCESSOR_ERROR && strncmp(why.detail, path, plen) == 0)
            snprintf(err, errlen, "%s", why.detail);
        else if (why.code == RT_REASON_PROCESSOR_ERROR)
            snprintf(err, errlen, "%s: %s", path, why.detail);
        else
            snprintf(err, errlen, "%s: %s: %s", path, why.reason, why.detail);
        goto out;
    }
    rc = 0;
out:
    p->limit = RT_LIMIT_NONE;
    return rc;
}

void rt_processor_carry_over(rt_processor *p, const rt_processor *old)
{
    p->slot = old->slot;
    p->state = old->state;
    p->timers = old->timers;
    p->series = old->series;
    p->beat = old->beat;
    p->processed = old->processed;
    p->errors = old->errors;
    memcpy(p->limit_hits, old->limit_hits, sizeof p->limit_hits);
    p->reloads = old->reloads;
    p->reload_failures = old->reload_failures;
    p->quarantines = old->quarantines;
    p->latency = old->latency;
}

/* Protected: a new coroutine, anchored in the registry. */
static int new_thread(lua_State *L)
{
    rt_call *c = lua_touserdata(L, 1);
    c->co = lua_newthread(L);
    c->ref = luaL_ref(L, LUA_REGISTRYINDEX);
    return 0;
}

/* Detach the call's ev (later uses raise an error) and drop the ref that kept it. */
static void release_ev(rt_processor *p, rt_call *c)
{
    if (c->ev_handle)
        lb_event_detach(c->ev_handle);
    c->ev_handle = NULL;
    if (c->ev_ref > 0)
        luaL_unref(p->L, LUA_REGISTRYINDEX, c->ev_ref);
    c->ev_ref = 0;
}

void rt_processor_lend_ev(rt_processor *p, rt_call *c)
{
    p->add_ev_ref = c->ev_ref;
}

void rt_processor_return_ev(rt_processor *p, rt_call *c)
{
    p->add_ev_ref = 0;
    release_ev(p, c);
}

/* The call is over: count it, detach its ev (unless it returned and its ev is kept for
 * the windows' add), and keep its coroutine for the next call if it finished normally
 * (a coroutine that raised an error or is suspended cannot run another call). */
static void end_call(rt_processor *p, rt_call *c, int ok, int error)
{
    if (!ok || c->ev_ref <= 0)
        release_ev(p, c);
    /* An event that failed leaves no state change behind, as it leaves no output. */
    if (p->state)
        rt_state_undo(p->state, &c->undo, ok && !p->dry_run);
    if (ok && p->npool < RT_PROCESSOR_POOL) {
        lua_settop(c->co, 0);
        p->pool[p->npool++] = c->ref;
    } else {
        luaL_unref(p->L, LUA_REGISTRYINDEX, c->ref);
    }
    c->co = NULL;
    c->ref = LUA_NOREF;
    rt_histogram_observe(&p->latency, c->elapsed);
    p->processed++;
    if (error)
        p->errors++;
}

/* Run the call's coroutine until it returns, fails or waits for a lookup. */
static int run(rt_processor *p, rt_call *c, int nargs, rt_outbox *out, rt_lkwait *wait,
               rt_reject *why)
{
    /* One clock read for the call's start: its deadline, its beat and its latency. */
    double t0 = rt_clock_s();
    int64_t t0_ms = (int64_t)(t0 * 1000);
    rt_ctx outer = p->cx;
    /* c->emits: other calls ran while this one waited. */
    p->cx = (rt_ctx){ .kind = RT_CALL_PROCESS, .allows = rt_call_allows[RT_CALL_PROCESS],
                      .outbox = out, .wait = wait, .running = c->co,
                      .partition = c->partition, .undo = &c->undo, .emits = c->emits,
                      .ev_handle = c->ev_handle, .ev_ref = c->ev_ref };
    rt_sandbox_arm(p, t0_ms, (int64_t)(c->elapsed * 1000));
    p->limit = RT_LIMIT_NONE;
    rt_beat_enter(p->beat, p->name, &c->origin, t0_ms);
    int rc = lua_resume(c->co, nargs);
    rt_beat_leave(p->beat);
    rt_sandbox_disarm(p);
    int waiting = p->cx.waiting;
    c->emits = p->cx.emits;
    c->ev_handle = p->cx.ev_handle;
    c->ev_ref = p->cx.ev_ref;
    p->cx = outer;
    c->elapsed += rt_clock_s() - t0;
    if (rc == LUA_YIELD && waiting && p->limit == RT_LIMIT_NONE)
        return 1;
    int result = 0;
    if (rc == LUA_YIELD) {
        if (p->limit != RT_LIMIT_NONE)
            rt_sandbox_limit_reject(p, why);
        else
            rt_reject_set(why, RT_REASON_PROCESSOR_ERROR,
                          "process() yielded; only ctx.lookup may wait inside process()");
        result = -1;
    } else {
        result = failed(p, c->co, rc, why);
    }
    rt_sandbox_count_outcome(p, result, why);
    end_call(p, c, result == 0 && rc == 0, result < 0);
    return result;
}

int rt_processor_start(rt_processor *p, rt_call *c, const rt_event *ev, rt_outbox *out,
                       rt_lkwait *wait, rt_reject *why)
{
    c->elapsed = 0;
    c->ev_handle = NULL;
    c->ev_ref = 0;
    c->partition = ev->origin.partition;
    c->origin = ev->origin;
    c->emits = 0;
    if (p->quarantined) {
        rt_reject_set(why, RT_REASON_QUARANTINED,
                      "processor %s is quarantined after %u errors in a "
                      "row; reload it", p->name, (unsigned)p->consecutive_errors);
        p->processed++;
        p->errors++;
        return -1;
    }
    if (p->npool) {
        c->ref = p->pool[--p->npool];
        lua_rawgeti(p->L, LUA_REGISTRYINDEX, c->ref);
        c->co = lua_tothread(p->L, -1);
        lua_pop(p->L, 1);
    } else if (lua_cpcall(p->L, new_thread, c)) {
        lua_pop(p->L, 1);
        rt_reject_set(why, RT_REASON_MEMORY, "out of memory");
        p->processed++;
        p->errors++;
        return -1;
    }
    /* A fresh or finished coroutine has room for these two without allocating. */
    lua_rawgeti(c->co, LUA_REGISTRYINDEX, p->trampoline_ref);
    lua_pushlightuserdata(c->co, (void *)ev);
    return run(p, c, 1, out, wait, why);
}

int rt_processor_invoke(rt_processor *p, rt_call_kind kind,
                        int (*body)(lua_State *L, void *arg), void *arg, rt_outbox *out,
                        int32_t partition, const rt_origin *call, rt_reject *why)
{
    invoke_job job = { body, arg };
    if (p->quarantined) {
        rt_reject_set(why, RT_REASON_QUARANTINED, "processor %s is quarantined", p->name);
        return -1;
    }
    /* A window's add may run inside process()'s completion, never inside process():
     * the outer call's limit state is its own. */
    rt_ctx outer = p->cx;
    unsigned allows = rt_call_allows[kind] & (out ? ~0u : ~RT_CTX_EMIT);
    p->cx = (rt_ctx){ .kind = kind, .allows = allows, .outbox = out,
                      .partition = partition, .undo = &p->invoke_undo };
    p->limit = RT_LIMIT_NONE;
    int64_t now_ms = rt_clock_ms();
    rt_sandbox_arm(p, now_ms, 0);
    rt_beat_enter(p->beat, p->name, call, now_ms);
    /* Pushing a registry value and a light userdata onto a stack with room allocates
     * nothing, so only the call itself can fail, and it is protected. */
    int rc;
    if (p->invoke_ref != LUA_NOREF && lua_checkstack(p->L, 2)) {
        lua_rawgeti(p->L, LUA_REGISTRYINDEX, p->invoke_ref);
        lua_pushlightuserdata(p->L, &job);
        rc = lua_pcall(p->L, 1, 0, 0);
    } else {
        rc = lua_cpcall(p->L, invoke_protected, &job);
    }
    rt_beat_leave(p->beat);
    rt_sandbox_disarm(p);
    p->cx = outer;
    int result = failed(p, p->L, rc, why);
    if (p->state)
        rt_state_undo(p->state, &p->invoke_undo, result == 0);
    rt_sandbox_count_outcome(p, result, why);
    p->limit = RT_LIMIT_NONE;
    if (result < 0)
        p->errors++;
    return result;
}

int rt_processor_resume(rt_processor *p, rt_call *c, rt_outbox *out, rt_lkwait *wait,
                        rt_reject *why)
{
    return run(p, c, 0, out, wait, why);
}

void rt_processor_abort(rt_processor *p, rt_call *c)
{
    if (c->co)
        end_call(p, c, 0, 0);
    else
        release_ev(p, c);       /* returned; its ev was kept for an add not made */
}

void rt_call_free(rt_call *c)
{
    rt_buf_free(&c->undo);
}

void rt_processor_free(rt_processor *p)
{
    rt_sandbox_close(p);
    for (size_t i = 0; i < p->nroutes; i++) {
        free(p->routes[i].domain);
        free(p->routes[i].type);
    }
    free(p->routes);
    rt_window_defs_free(p->window_defs, p->nwindows);
    rt_metric_defs_free(p->metric_defs, p->nmetric_defs);
    for (size_t i = 0; i < p->nrules_read; i++)
        free(p->rules_read[i]);
    free(p->rules_read);
    free(p->last_error);
    free(p->key);
    free(p->name);
    free(p->path);
    rt_buf_free(&p->scratch);
    rt_buf_free(&p->scratch2);
    rt_buf_free(&p->invoke_undo);
    memset(p, 0, sizeof *p);
}

int rt_outbox_add(rt_outbox *o, rt_sink *sink, size_t off, size_t key_off)
{
    if (o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 8;
        rt_emit *v = realloc(o->v, cap * sizeof *v);
        if (!v)
            return -1;
        o->v = v;
        o->cap = cap;
    }
    o->v[o->n] = (rt_emit){ sink, off, key_off - off, key_off, o->bytes.len - key_off };
    o->n++;
    return 0;
}

void rt_outbox_reset(rt_outbox *o)
{
    o->n = 0;
    o->bytes.len = 0;
}

void rt_outbox_free(rt_outbox *o)
{
    rt_buf_free(&o->bytes);
    free(o->v);
    memset(o, 0, sizeof *o);
}
