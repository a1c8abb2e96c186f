/* sandbox.c - what a processor's Lua state may reach, and its limits: the globals
 * left after the libraries are opened, the allocator that enforces
 * processor.memory.mb, the count hook that enforces processor.timeout.ms in
 * interpreted code, and the tally of errors in a row that quarantines a processor.
 *
 * The count hook is set only on a call that has run past its deadline. While any count
 * hook is set LuaJIT sends every interpreted instruction through its hook dispatch
 * (about 2% of the shipped pipeline), so a watchdog thread looks at the call in
 * progress every WATCH_TICK_MS instead and, once it is late, signals the thread running
 * it; the handler sets the hook, as LuaJIT's own luajit.c does for Ctrl-C, and the hook
 * raises the timeout within DEADLINE_CHECK_EVERY instructions. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lualib.h>
#include <luajit.h>

#include "bindings.h"
#include "clock.h"
#include "log.h"
#include "pool.h"
#include "sandbox.h"

/* Globals a processor may use; everything else the libraries define is removed.
 * Left out on purpose: load, loadstring, dofile, loadfile (code from outside,
 * bytecode), getfenv/setfenv (reach other environments), collectgarbage, gcinfo,
 * newproxy, jit, require, module; os, io, debug, ffi and package are never opened. */
static const char *const allowed_globals[] = {
    "assert", "error", "ipairs", "next", "pairs", "pcall", "xpcall", "print",
    "rawequal", "rawget", "rawset", "select", "setmetatable", "getmetatable",
    "tonumber", "tostring", "type", "unpack", "_G", "_VERSION",
    "coroutine", "string", "table", "math", "bit", NULL,
};

const char *const rt_limit_names[RT_NLIMITS] = { "", "timeout", "memory", "too_many_emits",
                                                  "output_too_large" };

/* The dead-letter reason of each limit (the same words). */
static const rt_reason limit_reasons[RT_NLIMITS] = {
    RT_REASON_NONE, RT_REASON_TIMEOUT, RT_REASON_MEMORY, RT_REASON_TOO_MANY_EMITS,
    RT_REASON_OUTPUT_TOO_LARGE,
};

/* Instructions between two looks at the clock: cheap next to the work they stand for.
 * The hook only runs in the interpreter; compiled traces never call it, which is why the
 * supervisor also watches each call from outside (supervisor.c). */
#define DEADLINE_CHECK_EVERY 1000
/* How often the watchdog looks at the call in progress: a late call is stopped within
 * this of its deadline. */
#define WATCH_TICK_MS 5
/* Ignored by default, used by nothing else here (the Go runtime preempts with it). */
#define WATCH_SIGNAL SIGURG

/* The Lua call in progress on this process's processor thread, as the watchdog sees
 * it. Written by that thread (rt_sandbox_arm / rt_sandbox_disarm), read by the
 * watchdog and by the signal handler. */
static struct {
    lua_State *L;               /* NULL between calls */
    int64_t deadline_ms;
    pthread_t thread;           /* the one running the call */
    pthread_t watchdog;
    int users;                  /* states that hold the watchdog */
    int stop;                   /* the watchdog's users are gone: it ends */
    pid_t started;              /* the process whose watchdog runs (not a fork's parent) */
    int always;                 /* no watchdog could start: every state keeps its hook */
} watch;

/* The range of a state's pool of small blocks (pool.h): half of processor.memory.mb,
 * 128 MB when that is 0 (address space, used as blocks are handed out). The pool never
 * gives a class's free blocks to another class, so a state whose small objects change
 * size could hold its range dead beside what LuaJIT's allocator then serves: half
 * keeps that under one and a half times the limit. */
#define POOL_UNLIMITED ((size_t)128 << 20)

/* The blocks the pool does not serve: larger ones (a big table's parts, long strings,
 * the stack) and any past its range, from libc. Not from LuaJIT's own arena: LuaJIT
 * unmaps that at lua_close only if the state still allocates through it, so a state
 * made by luaL_newstate and then wrapped left 128 KB of address space (44 KB resident)
 * behind at every close: every reload and every `eddy check`. */
static void *libc_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    if (nsize == 0) {
        free(ptr);
        return NULL;
    }
    return realloc(ptr, nsize);
}

/* lua_Alloc with processor.memory.mb as the ceiling, over the state's pool (the small
 * blocks an event makes and frees: the file pipeline took 13% less time than on
 * LuaJIT's own allocator) and libc behind it. Refusing makes LuaJIT raise a memory
 * error in the call that allocated; shrinking and freeing always succeed. */
static void *sandbox_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    rt_processor *p = ud;
    if (!ptr)
        osize = 0;
    if (nsize > osize && p->limits.memory && p->mem_used + (nsize - osize) > p->limits.memory) {
        p->limit = RT_LIMIT_MEMORY;
        p->limit_detail[0] = '\0';
        return NULL;
    }
    void *q = rt_pool_realloc(&p->blocks, p->under, p->under_ud, ptr, osize, nsize);
    if (q || nsize == 0)
        p->mem_used += nsize - osize;   /* unsigned: wraps back down when shrinking */
    return q;
}

static void deadline_hook(lua_State *L, lua_Debug *ar)
{
    void *ud;
    lua_getallocf(L, &ud);
    rt_processor *p = ud;
    if (p->deadline_ms && rt_clock_ms() >= p->deadline_ms)
        rt_processor_limit_error(L, p, RT_LIMIT_TIMEOUT);
}

/* On the processor thread, interrupted by the watchdog. lua_sethook is one of the few
 * Lua calls meant for a signal handler; the call it finds may be a later one than the
 * watchdog saw late, whose hook then only checks its deadline until it ends. A hook
 * already set is left alone: the late call may be raising its timeout right now. */
static void on_late(int sig)
{
    int saved = errno;
    lua_State *L = __atomic_load_n(&watch.L, __ATOMIC_ACQUIRE);
    if (L && !(lua_gethookmask(L) & LUA_MASKCOUNT))
        lua_sethook(L, deadline_hook, LUA_MASKCOUNT, DEADLINE_CHECK_EVERY);
    errno = saved;
}

static void *watchdog(void *arg)
{
    const struct timespec tick = { 0, WATCH_TICK_MS * 1000000L };
    while (!__atomic_load_n(&watch.stop, __ATOMIC_ACQUIRE)) {
        nanosleep(&tick, NULL);
        int64_t d = __atomic_load_n(&watch.deadline_ms, __ATOMIC_ACQUIRE);
        if (!d || rt_clock_ms() < d || !__atomic_load_n(&watch.L, __ATOMIC_ACQUIRE))
            continue;
        /* Signalled again each tick while late: a hook set while LuaJIT itself was
         * changing its hook mask (a __gc metamethod starting) can be lost. A failure
         * (the thread is gone) leaves nothing to stop. */
        (void)pthread_kill(watch.thread, WATCH_SIGNAL);
    }
    return NULL;
}

/* A state that needs the watchdog: the first one in a process starts it (a forked
 * worker has none of its parent's threads, whatever its copy of `watch` says). */
static int watchdog_hold(void)
{
    pid_t self = getpid();
    if (watch.started != self)
        watch.users = 0;
    if (watch.users++ > 0)
        return 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_late;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(WATCH_SIGNAL, &sa, NULL) < 0) {
        watch.users = 0;
        return -1;
    }
    /* The watchdog must never take the signal itself, nor SIGTERM meant for the loop. */
    sigset_t all, old;
    sigfillset(&all);
    __atomic_store_n(&watch.stop, 0, __ATOMIC_RELEASE);
    int rc = pthread_sigmask(SIG_SETMASK, &all, &old) != 0 ? -1 : 0;
    if (rc == 0) {
        rc = pthread_create(&watch.watchdog, NULL, watchdog, NULL) != 0 ? -1 : 0;
        if (pthread_sigmask(SIG_SETMASK, &old, NULL) != 0)
            rt_warn("sandbox: cannot restore the signal mask after starting the watchdog");
    }
    watch.started = rc == 0 ? self : 0;
    watch.users = rc == 0 ? 1 : 0;
    return rc;
}

/* The last state let go: the thread ends (within a tick) and is joined. */
static void watchdog_release(void)
{
    if (watch.started != getpid() || watch.users <= 0 || --watch.users > 0)
        return;
    __atomic_store_n(&watch.stop, 1, __ATOMIC_RELEASE);
    int err = pthread_join(watch.watchdog, NULL);
    if (err)
        rt_warn("sandbox: cannot join the watchdog thread: %s", strerror(err));
    watch.started = 0;
}

int rt_processor_limit_error(lua_State *L, rt_processor *p, enum rt_limit limit)
{
    /* Sticky for the call: a processor that catches the error with pcall still has
     * its event dead-lettered with this reason. */
    p->limit = limit;
    p->limit_detail[0] = '\0';
    return luaL_error(L, "%s: sandbox limit hit", rt_limit_names[limit]);
}

int rt_processor_limit_errorf(lua_State *L, rt_processor *p, enum rt_limit limit,
                              const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->limit_detail, sizeof p->limit_detail, fmt, ap);
    va_end(ap);
    p->limit = limit;
    return luaL_error(L, "%s: %s", rt_limit_names[limit], p->limit_detail);
}

/* The dead-letter text of the limit a call hit. */
void rt_sandbox_limit_reject(const rt_processor *p, rt_reject *why)
{
    if (p->limit_detail[0]) {
        rt_reject_set(why, limit_reasons[p->limit], "%s", p->limit_detail);
        return;
    }
    switch (p->limit) {
    case RT_LIMIT_TIMEOUT:
        rt_reject_set(why, RT_REASON_TIMEOUT, "ran longer than processor.timeout.ms=%lld",
                      (long long)p->limits.timeout_ms);
        break;
    case RT_LIMIT_MEMORY:
        rt_reject_set(why, RT_REASON_MEMORY, "Lua state would exceed processor.memory.mb=%zu",
                      p->limits.memory >> 20);
        break;
    default:
        rt_reject_set(why, RT_REASON_TOO_MANY_EMITS, "more than processor.max.emits=%u records",
                      (unsigned)p->limits.max_emits);
        break;
    }
}

/* Errors in a row (not ctx.reject, which is the processor's own verdict) quarantine
 * the processor: past that, running it again is only waste and noise. */
void rt_sandbox_count_outcome(rt_processor *p, int rc, const rt_reject *why)
{
    if (rc == 0 || why->code == RT_REASON_REJECTED) {
        p->consecutive_errors = 0;
        return;
    }
    if (p->limit != RT_LIMIT_NONE)
        p->limit_hits[p->limit]++;
    if (++p->consecutive_errors == p->limits.max_consecutive_errors && p->limits.max_consecutive_errors) {
        p->quarantined = 1;
        p->quarantines++;
        rt_error("processor %s quarantined after %u errors in a row (last: %s: %s); its "
                 "events are dead-lettered as quarantined until it is reloaded", p->name,
                 (unsigned)p->consecutive_errors, why->reason, why->detail);
    }
}

/* Arm the deadline for a stretch of Lua starting at now_ms (rt_clock_ms) that may run
 * `used` ms already. The caller reads the clock once for this and its other needs. */
void rt_sandbox_arm(rt_processor *p, int64_t now_ms, int64_t used_ms)
{
    p->deadline_ms = p->limits.timeout_ms ? now_ms + p->limits.timeout_ms - used_ms : 0;
    if (!p->deadline_ms)
        return;
    watch.thread = pthread_self();
    __atomic_store_n(&watch.deadline_ms, p->deadline_ms, __ATOMIC_RELEASE);
    __atomic_store_n(&watch.L, p->L, __ATOMIC_RELEASE);
}

void rt_sandbox_disarm(rt_processor *p)
{
    if (!p->deadline_ms)
        return;
    p->deadline_ms = 0;
    /* Cleared first: a signal from here on finds no call and sets nothing. */
    __atomic_store_n(&watch.L, NULL, __ATOMIC_RELEASE);
    __atomic_store_n(&watch.deadline_ms, 0, __ATOMIC_RELEASE);
    if (!watch.always && (lua_gethookmask(p->L) & LUA_MASKCOUNT))
        lua_sethook(p->L, NULL, 0, 0);
}

static int sandbox_print(lua_State *L)
{
    rt_processor *p = lua_touserdata(L, lua_upvalueindex(1));
    int n = lua_gettop(L);
    /* Every tostring first: a luaL_Buffer owns the top of the stack while it is open,
     * so nothing else may be pushed between its calls. */
    lua_getglobal(L, "tostring");
    for (int i = 1; i <= n; i++) {
        lua_pushvalue(L, n + 1);
        lua_pushvalue(L, i);
        lua_call(L, 1, 1);
        if (!lua_isstring(L, -1))
            return luaL_error(L, "'tostring' must return a string to 'print'");
        lua_replace(L, i);
    }
    lua_pop(L, 1);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = 1; i <= n; i++) {
        if (i > 1)
            luaL_addchar(&b, '\t');
        lua_pushvalue(L, i);
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    rt_info("processor %s: %s", p->name ? p->name : p->path, lua_tostring(L, -1));
    return 0;
}

static int allowed(const char *name)
{
    for (const char *const *a = allowed_globals; *a; a++)
        if (strcmp(*a, name) == 0)
            return 1;
    return 0;
}

void rt_sandbox_jit(lua_State *L, rt_processor *p)
{
    if (!p->limits.jit && !luaJIT_setmode(L, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_ON))
        luaL_error(L, "%s: cannot turn the JIT compiler on", p->path);
    p->limits.jit = 1;
}

void rt_sandbox_open(lua_State *L, rt_processor *p)
{
    static const luaL_Reg libs[] = {
        { "", luaopen_base }, { LUA_TABLIBNAME, luaopen_table },
        { LUA_STRLIBNAME, luaopen_string }, { LUA_MATHLIBNAME, luaopen_math },
        { LUA_BITLIBNAME, luaopen_bit },
        /* luaopen_jit turns the JIT compiler on; the jit table is removed below. */
        { LUA_JITLIBNAME, luaopen_jit }, { NULL, NULL },
    };
    for (const luaL_Reg *lib = libs; lib->func; lib++) {
        lua_pushcfunction(L, lib->func);
        lua_pushstring(L, lib->name);
        lua_call(L, 1, 0);
    }
    /* The count hook never runs inside a compiled trace, so only interpreted code can
     * be stopped at processor.timeout.ms in-process. Interpreting costs the shipped
     * pipeline nothing beyond make bench's noise (its compiled code was under 1% of the
     * profile); rt_sandbox_jit turns the compiler back on for a processor that asks. */
    if (!p->limits.jit && !luaJIT_setmode(L, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF))
        luaL_error(L, "cannot turn the JIT compiler off");
    /* Clearing fields during lua_next is allowed; adding is not. */
    lua_pushnil(L);
    while (lua_next(L, LUA_GLOBALSINDEX)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING || !allowed(lua_tostring(L, -1))) {
            lua_pushvalue(L, -1);
            lua_pushnil(L);
            lua_rawset(L, LUA_GLOBALSINDEX);
        }
    }
    /* ("").dump reaches string.dump through the string metatable: remove it there. */
    lua_getglobal(L, "string");
    lua_pushnil(L);
    lua_setfield(L, -2, "dump");
    lua_pop(L, 1);
    lb_string_open(L);
    lua_pushlightuserdata(L, p);
    lua_pushcclosure(L, sandbox_print, 1);
    lua_setglobal(L, "print");
    /* Kept before the file runs: ctx.lookup waits with the real coroutine.yield. */
    lua_getglobal(L, "coroutine");
    lua_getfield(L, -1, "yield");
    p->yield_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pop(L, 1);
    lb_int64_open(L);
    p->event_mt_ref = lb_event_open(L);
}


/* As luaL_newstate's: an error outside any protected call ends the process. */
static int panic(lua_State *L)
{
    const char *msg = lua_tostring(L, -1);
    rt_error("Lua panic, an error outside a protected call: %s", msg ? msg : "?");
    return 0;
}

lua_State *rt_sandbox_newstate(rt_processor *p)
{
    /* Without the range (mmap refused) the pool is empty and gives nothing: the
     * allocator behind it serves every block, as fast as before the pool. */
    if (rt_pool_init(&p->blocks, p->limits.memory ? p->limits.memory / 2 : POOL_UNLIMITED) < 0)
        rt_warn("processor %s: no address range for its allocation pool: %s", p->path,
                strerror(errno));
    p->mem_used = 0;
    p->under = libc_alloc;
    p->under_ud = NULL;
    lua_State *L = lua_newstate(sandbox_alloc, p);
    if (!L) {
        /* A LuaJIT built without GC64 takes no allocator of ours on x86-64: its objects
         * must lie in the low 2 GB, which only its own allocator sees to. That one
         * then, with no pool (and its arena left at each close, as said above). */
        rt_pool_release(&p->blocks);
        if (!(L = luaL_newstate()))
            return NULL;
        p->under = lua_getallocf(L, &p->under_ud);
        /* What the new state already holds counts too (and is freed through us). */
        p->mem_used = (size_t)lua_gc(L, LUA_GCCOUNT, 0) * 1024 +
                      (size_t)lua_gc(L, LUA_GCCOUNTB, 0);
        lua_setallocf(L, sandbox_alloc, p);
    }
    lua_atpanic(L, panic);
    if (p->limits.timeout_ms && !watch.always) {
        if (watchdog_hold() == 0) {
            p->watched = 1;
        } else {
            rt_warn("processor %s: no watchdog thread could start; processor.timeout.ms is "
                    "checked by a count hook on every call", p->path);
            watch.always = 1;
        }
    }
    /* Without the watchdog, the hook runs all the time: slower, as safe. */
    if (watch.always && p->limits.timeout_ms)
        lua_sethook(L, deadline_hook, LUA_MASKCOUNT, DEADLINE_CHECK_EVERY);
    return L;
}

void rt_sandbox_close(rt_processor *p)
{
    if (p->L)
        lua_close(p->L);
    p->L = NULL;
    rt_pool_release(&p->blocks);  /* after lua_close, which frees into it */
    if (p->watched)
        watchdog_release();
    p->watched = 0;
}
