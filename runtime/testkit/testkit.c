/* testkit.c - `eddy test`: processor unit tests written in Lua.
 *
 * A test file runs in a Lua state of its own (plain LuaJIT with its standard
 * libraries: test code is the operator's, not a processor). It declares tests with
 * test(name, fn) and builds harnesses with eddy.harness{...}; each harness is the
 * worker `eddy run` builds from the config (RT_WORKER_TEST: the same processors,
 * routes, windows, timers, state and dead letters), with every sink keeping its
 * records in memory and every lookup answering from the test's rows. Nothing is
 * opened: no Kafka, MySQL, Elasticsearch or ClickHouse.
 *
 * Records are compared as JSON (key order is irrelevant); a difference names the
 * field. Results are TAP on stdout, optionally JUnit XML; exit 1 on a failure. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <lauxlib.h>
#include <lualib.h>

#include "bindings.h"
#include "clock.h"
#include "log.h"
#include "readfile.h"
#include "testkit.h"
#include "worker.h"

#define HARNESS_MT "eddy.harness"
#define TESTS_KEY "eddy.tests"      /* registry: the list test() fills */

typedef struct harness {
    rt_config cfg;
    rt_worker w;
    int cfg_live, live;     /* cfg is loaded; w is set up (maybe half, if init failed) */
    char rules_dir[64];     /* the test's rules: a temporary copy of rules.dir, or "" */
} harness;

/* Options every harness of the run starts from (the command line's). */
typedef struct run_opts {
    const char *config;
    char **sets;
    int nsets;
    rt_buf scratch;         /* json.encode's */
} run_opts;

static run_opts *opts_of(lua_State *L)
{
    return lua_touserdata(L, lua_upvalueindex(1));
}

static harness *check_harness(lua_State *L)
{
    harness *h = luaL_checkudata(L, 1, HARNESS_MT);
    if (!h->live)
        luaL_error(L, "the harness is closed");
    return h;
}

/* Remove the temporary rules dir and its files. */
static void remove_rules_dir(harness *h)
{
    DIR *d = h->rules_dir[0] ? opendir(h->rules_dir) : NULL;
    char path[512];
    for (struct dirent *e; d && (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", h->rules_dir, e->d_name);
        unlink(path);
    }
    if (d)
        closedir(d);
    if (h->rules_dir[0])
        rmdir(h->rules_dir);
    h->rules_dir[0] = '\0';
}

static void harness_release(harness *h)
{
    remove_rules_dir(h);
    if (h->live)
        rt_worker_free(&h->w);
    if (h->cfg_live)
        rt_config_free(&h->cfg);
    h->live = h->cfg_live = 0;
}

static int harness_gc(lua_State *L)
{
    harness_release(luaL_checkudata(L, 1, HARNESS_MT));
    return 0;
}

/* --- fixtures --- */

/* The text of a Lua key or cell value; numbers as the lookup keys them. */
static const char *scalar_text(lua_State *L, int idx, char *num, size_t len, size_t *n)
{
    if (lua_type(L, idx) == LUA_TNUMBER)
        return rt_lookup_number_key(lua_tonumber(L, idx), num, len, n);
    if (lua_type(L, idx) == LUA_TSTRING)
        return lua_tolstring(L, idx, n);
    return NULL;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* lookups = { <name> = { [key] = { field = value, ... }, ... } } at index `t`: each
 * lookup's fields are the union of its rows' fields, in name order. Lookups the test
 * leaves out have no rows at all. */
static void load_fixtures(lua_State *L, harness *h, int t)
{
    rt_lookups *ls = rt_worker_test_lookups(&h->w);
    for (size_t i = 0; i < ls->n; i++)
        if (rt_lookup_fixture(ls->v[i], NULL, 0) < 0)
            luaL_error(L, "out of memory");
    if (lua_isnil(L, t))
        return;
    luaL_checktype(L, t, LUA_TTABLE);
    for (lua_pushnil(L); lua_next(L, t); lua_pop(L, 1)) {
        const char *name = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
        rt_lookup *lk = name ? rt_lookups_find(ls, name) : NULL;
        if (!lk)
            luaL_error(L, "lookups: the config has no lookup named '%s'",
                       name ? name : "(not a string)");
        luaL_checktype(L, -1, LUA_TTABLE);
        int rows = lua_gettop(L);
        /* The field names, each once. */
        lua_newtable(L);
        int seen = lua_gettop(L);
        size_t nf = 0;
        for (lua_pushnil(L); lua_next(L, rows); lua_pop(L, 1)) {
            if (lua_type(L, -1) != LUA_TTABLE)
                luaL_error(L, "lookups.%s: each row is a table of fields", name);
            for (lua_pushnil(L); lua_next(L, -2); lua_pop(L, 1)) {
                if (lua_type(L, -2) != LUA_TSTRING)
                    luaL_error(L, "lookups.%s: field names are strings", name);
                lua_pushvalue(L, -2);
                lua_rawget(L, seen);
                if (lua_isnil(L, -1)) {
                    lua_pushvalue(L, -3);
                    lua_pushboolean(L, 1);
                    lua_rawset(L, seen);
                    nf++;
                }
                lua_pop(L, 1);
            }
        }
        const char **fields = lua_newuserdata(L, (nf ? nf : 1) * sizeof *fields);
        rt_cell *cells = lua_newuserdata(L, (nf ? nf : 1) * sizeof *cells);
        size_t k = 0;
        for (lua_pushnil(L); lua_next(L, seen); lua_pop(L, 1))
            fields[k++] = lua_tostring(L, -2);
        qsort(fields, nf, sizeof *fields, cmp_names);
        if (rt_lookup_fixture(lk, fields, (unsigned)nf) < 0)
            luaL_error(L, "out of memory");
        for (lua_pushnil(L); lua_next(L, rows); lua_pop(L, 1)) {
            char num[64];
            size_t klen;
            const char *key = scalar_text(L, -2, num, sizeof num, &klen);
            if (!key)
                luaL_error(L, "lookups.%s: row keys are strings or numbers", name);
            for (size_t f = 0; f < nf; f++) {
                lua_getfield(L, -1, fields[f]);
                rt_cell *c = &cells[f];
                memset(c, 0, sizeof *c);
                if (lua_type(L, -1) == LUA_TNUMBER) {
                    double d = lua_tonumber(L, -1);
                    if (d == (double)(long long)d && d > -9.2e18 && d < 9.2e18) {
                        c->type = RT_CELL_INT;
                        c->i = (long long)d;
                    } else {
                        c->type = RT_CELL_DOUBLE;
                        c->d = d;
                    }
                } else if (lua_type(L, -1) == LUA_TBOOLEAN) {
                    c->type = RT_CELL_INT;
                    c->i = lua_toboolean(L, -1);
                } else if (lua_type(L, -1) == LUA_TSTRING) {
                    c->type = RT_CELL_TEXT;
                    c->s = lua_tolstring(L, -1, &c->len);
                } else if (!lua_isnil(L, -1)) {
                    luaL_error(L, "lookups.%s[%s].%s: a string, number, boolean or nil", name,
                               key, fields[f]);
                }
                lua_pop(L, 1);  /* the string stays alive in the row table */
            }
            if (rt_lookup_fixture_row(lk, key, klen, cells) < 0)
                luaL_error(L, "out of memory");
        }
        lua_settop(L, rows);
    }
}

static int write_file(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    int ok = fwrite(data, 1, len, f) == len;
    return fclose(f) == 0 && ok ? 0 : -1;
}

/* rules = { <name> = <table> } at index `t`: a temporary rules dir holding the files
 * of `dir` (rules.dir) with these replacing or joining them, as <name>.json. */
static void make_rules_dir(lua_State *L, harness *h, int t, const char *dir)
{
    run_opts *o = opts_of(L);
    char path[512], err[512];
    snprintf(h->rules_dir, sizeof h->rules_dir, "/tmp/eddy-test-rules.XXXXXX");
    if (!mkdtemp(h->rules_dir)) {
        h->rules_dir[0] = '\0';
        luaL_error(L, "rules: cannot create a temporary dir");
    }
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));) {
        size_t n = strlen(e->d_name), len;
        if (e->d_name[0] == '.' || n < 6 || strcmp(e->d_name + n - 5, ".json"))
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        char *bytes = rt_read_file(path, &len, err, sizeof err);
        snprintf(path, sizeof path, "%s/%s", h->rules_dir, e->d_name);
        int rc = bytes ? write_file(path, bytes, len) : -1;
        free(bytes);
        if (rc < 0) {
            closedir(d);
            luaL_error(L, "rules: cannot copy %s/%s", dir, e->d_name);
        }
    }
    if (d)
        closedir(d);
    for (lua_pushnil(L); lua_next(L, t); lua_pop(L, 1)) {
        const char *name = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
        if (!name || strchr(name, '/') || !*name)
            luaL_error(L, "rules: names are file names without .json");
        o->scratch.len = 0;
        lb_json_encode(L, lua_gettop(L), &o->scratch);
        snprintf(path, sizeof path, "%s/%s.json", h->rules_dir, name);
        if (write_file(path, o->scratch.data, o->scratch.len) < 0)
            luaL_error(L, "rules: cannot write %s", path);
    }
}

/* eddy.harness{ config = FILE, set = { key = value }, lookups = { ... },
 *               rules = { ... } } */
static int l_harness(lua_State *L)
{
    run_opts *o = opts_of(L);
    char err[1024];
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_getfield(L, 1, "config");
    const char *config = luaL_optstring(L, -1, o->config);
    lua_getfield(L, 1, "set");
    int set = lua_gettop(L);
    /* The command line's --set first, the test's after: the test has the last word. */
    lua_newtable(L);
    int sets = lua_gettop(L), n = 0;
    for (int i = 0; i < o->nsets; i++) {
        lua_pushstring(L, o->sets[i]);
        lua_rawseti(L, sets, ++n);
    }
    if (!lua_isnil(L, set)) {
        luaL_checktype(L, set, LUA_TTABLE);
        for (lua_pushnil(L); lua_next(L, set); lua_pop(L, 1)) {
            if (lua_type(L, -2) != LUA_TSTRING)
                luaL_error(L, "set: keys are config key names");
            const char *v = lua_type(L, -1) == LUA_TBOOLEAN
                            ? (lua_toboolean(L, -1) ? "true" : "false") : lua_tostring(L, -1);
            if (!v)
                luaL_error(L, "set.%s: a string, number or boolean", lua_tostring(L, -2));
            lua_pushfstring(L, "%s=%s", lua_tostring(L, -2), v);
            lua_rawseti(L, sets, ++n);
        }
    }
    char **argv = lua_newuserdata(L, (size_t)(n ? n : 1) * sizeof *argv);
    for (int i = 0; i < n; i++) {
        lua_rawgeti(L, sets, i + 1);
        argv[i] = (char *)lua_tostring(L, -1);
        lua_pop(L, 1);      /* still referenced by `sets` */
    }
    harness *h = lua_newuserdata(L, sizeof *h);
    memset(h, 0, sizeof *h);
    luaL_getmetatable(L, HARNESS_MT);
    lua_setmetatable(L, -2);
    int hi = lua_gettop(L);
    if (rt_config_load(&h->cfg, config, argv, n, err, sizeof err) < 0)
        return luaL_error(L, "harness: %s", err);
    h->cfg_live = 1;
    lua_getfield(L, 1, "rules");
    if (!lua_isnil(L, -1)) {
        /* The config again, with rules.dir set to the test's copy. */
        luaL_checktype(L, -1, LUA_TTABLE);
        make_rules_dir(L, h, lua_gettop(L), rt_config_get(&h->cfg, "rules.dir"));
        rt_config_free(&h->cfg);
        h->cfg_live = 0;
        char **more = lua_newuserdata(L, (size_t)(n + 1) * sizeof *more);
        memcpy(more, argv, (size_t)n * sizeof *more);
        lua_pushfstring(L, "rules.dir=%s", h->rules_dir);
        more[n] = (char *)lua_tostring(L, -1);
        if (rt_config_load(&h->cfg, config, more, n + 1, err, sizeof err) < 0)
            return luaL_error(L, "harness: %s", err);
        h->cfg_live = 1;
    }
    h->live = 1;    /* from here __gc frees what init set up, even when it failed */
    if (rt_worker_init(&h->w, &h->cfg, RT_WORKER_TEST, 0, err, sizeof err) < 0)
        return luaL_error(L, "harness: %s", err);
    lua_getfield(L, 1, "lookups");
    load_fixtures(L, h, lua_gettop(L));
    lua_pushvalue(L, hi);
    return 1;
}

/* --- results --- */

/* Push { outputs = { <sink> = {records} }, dead = {dead letters} } and forget them. */
static void push_results(lua_State *L, harness *h)
{
    const rt_sinks *ss = rt_worker_test_sinks(&h->w);
    const rt_sink *dlq = rt_sinks_find(ss, rt_config_get(&h->cfg, "dlq.sink"));
    lua_createtable(L, 0, 2);
    lua_newtable(L);
    for (size_t i = 0; i < ss->n; i++) {
        rt_sink *s = &ss->v[i];
        const rt_buf *b = rt_sink_captured(s);
        lua_newtable(L);
        int k = 0;
        for (size_t off = 0; b && off < b->len;) {
            const char *rec = b->data + off, *nl = memchr(rec, '\n', b->len - off);
            size_t len = (size_t)(nl - rec);
            json_t *v = json_loadb(rec, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
            if (!v || lb_json_push(L, v) < 0)
                lua_pushlstring(L, rec, len);   /* a forwarded line that is not JSON */
            json_decref(v);
            lua_rawseti(L, -2, ++k);
            off += len + 1;
        }
        rt_sink_captured_clear(s);
        if (s == dlq)
            lua_setfield(L, -3, "dead");
        else
            lua_setfield(L, -2, s->name);
    }
    lua_setfield(L, -2, "outputs");
}

/* h:send(event [, partition]): the event a table (encoded as JSON) or the raw bytes. */
static int l_send(lua_State *L)
{
    harness *h = check_harness(L);
    run_opts *o = opts_of(L);
    int32_t partition = (int32_t)luaL_optinteger(L, 3, 0);
    const char *raw;
    size_t len;
    if (lua_type(L, 2) == LUA_TSTRING) {
        raw = lua_tolstring(L, 2, &len);
    } else {
        luaL_checktype(L, 2, LUA_TTABLE);
        o->scratch.len = 0;
        lb_json_encode(L, 2, &o->scratch);
        raw = o->scratch.data;
        len = o->scratch.len;
    }
    if (rt_worker_test_send(&h->w, raw, len, partition) < 0)
        return luaL_error(L, "send: the event did not finish (an output failed)");
    push_results(L, h);
    return 1;
}

/* h:advance{ watermark = ms, clock = ms } */
static int l_advance(lua_State *L)
{
    harness *h = check_harness(L);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_getfield(L, 2, "watermark");
    lua_getfield(L, 2, "clock");
    if (lua_isnil(L, -1) && lua_isnil(L, -2))
        return luaL_error(L, "advance: give watermark = <ms> or clock = <ms>");
    int64_t wm = lua_isnil(L, -2) ? INT64_MIN : (int64_t)luaL_checknumber(L, -2);
    int64_t now = lua_isnil(L, -1) ? INT64_MIN : (int64_t)luaL_checknumber(L, -1);
    if (rt_worker_test_advance(&h->w, wm, now) < 0)
        return luaL_error(L, "advance: an output failed");
    push_results(L, h);
    return 1;
}

/* h:finish(): the end of a bounded input; every window and event-time timer fires. */
static int l_finish(lua_State *L)
{
    harness *h = check_harness(L);
    if (rt_worker_test_advance(&h->w, RT_WATERMARK_END, INT64_MIN) < 0)
        return luaL_error(L, "finish: an output failed");
    push_results(L, h);
    return 1;
}

/* h:state(processor, key [, partition]) -> value (nil when none), expiry (epoch ms or
 * nil). */
static int l_state(lua_State *L)
{
    harness *h = check_harness(L);
    const char *name = luaL_checkstring(L, 2);
    size_t klen;
    const char *key = luaL_checklstring(L, 3, &klen);
    int32_t partition = (int32_t)luaL_optinteger(L, 4, 0);
    rt_processor *p = rt_worker_find_processor(&h->w, name);
    if (!p)
        return luaL_error(L, "state: no processor named '%s'", name);
    const rt_state_value *v = rt_state_get(p->state, partition, key, klen, rt_epoch_ms());
    if (!v)
        return 0;
    if (lb_value_load(L, v->data, v->len) < 0)
        return luaL_error(L, "state: the value of '%s' is malformed", key);
    if (!v->expires_ms)
        return 1;
    lua_pushnumber(L, (lua_Number)v->expires_ms);
    return 2;
}

static int l_close(lua_State *L)
{
    harness_release(luaL_checkudata(L, 1, HARNESS_MT));
    return 0;
}

/* eddy.event(domain, type, payload [, fields]): a BusinessEvent with eventId
 * "test-<n>" and timestamp 1700000000000 + n*1000 unless `fields` gives them. */
static int l_event(lua_State *L)
{
    static long long n;
    luaL_checkstring(L, 1);
    luaL_checkstring(L, 2);
    luaL_checktype(L, 3, LUA_TTABLE);
    n++;
    lua_newtable(L);
    lua_pushvalue(L, 1);
    lua_setfield(L, -2, "domain");
    lua_pushvalue(L, 2);
    lua_setfield(L, -2, "type");
    lua_pushvalue(L, 3);
    lua_setfield(L, -2, "payload");
    lua_pushfstring(L, "test-%d", (int)n);
    lua_setfield(L, -2, "eventId");
    lua_pushnumber(L, 1700000000000.0 + (double)n * 1000);
    lua_setfield(L, -2, "timestamp");
    lua_pushliteral(L, "1.0");
    lua_setfield(L, -2, "version");
    lua_pushliteral(L, "eddy-test");
    lua_setfield(L, -2, "source");
    if (lua_istable(L, 4))
        for (lua_pushnil(L); lua_next(L, 4); ) {
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_settable(L, -4);
        }
    return 1;
}

/* --- assertions --- */

/* The JSON form of the value at idx (tables compared as JSON: key order ignored). */
static json_t *as_json(lua_State *L, int idx, rt_buf *b)
{
    b->len = 0;
    lb_json_encode(L, idx, b);
    json_t *v = json_loadb(b->data, b->len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    if (!v)
        luaL_error(L, "out of memory");
    return v;
}

static int same_number(const json_t *a, const json_t *b)
{
    return json_is_number(a) && json_is_number(b) &&
           json_number_value(a) == json_number_value(b);
}

/* The path of the first difference of `act` from `exp` into `path`, or 0 when none.
 * With `subset`, fields of an object that `exp` leaves out are not compared. */
static int differ(const json_t *act, const json_t *exp, int subset, rt_buf *path)
{
    size_t mark = path->len;
    char seg[64];
    if (same_number(act, exp))
        return 0;
    if (json_is_object(exp) && json_is_object(act)) {
        const char *k;
        json_t *ev;
        json_object_foreach((json_t *)exp, k, ev) {
            if (path->len && rt_buf_putc(path, '.') < 0)
                return 1;
            if (rt_buf_append(path, k, strlen(k)) < 0)
                return 1;
            json_t *av = json_object_get(act, k);
            if (!av || differ(av, ev, subset, path))
                return 1;
            path->len = mark;
        }
        if (subset)
            return 0;
        json_object_foreach((json_t *)act, k, ev)
            if (!json_object_get(exp, k)) {
                /* a field only `act` has: it differs, named if memory allows */
                if (!path->len || rt_buf_putc(path, '.') == 0)
                    (void)rt_buf_append(path, k, strlen(k));
                return 1;
            }
        return 0;
    }
    if (json_is_array(exp) && json_is_array(act)) {
        size_t n = json_array_size(exp);
        for (size_t i = 0; i < n || i < json_array_size(act); i++) {
            int len = snprintf(seg, sizeof seg, "[%zu]", i + 1);     /* Lua's index */
            if (rt_buf_append(path, seg, (size_t)len) < 0)
                return 1;
            json_t *av = json_array_get(act, i), *ev = json_array_get(exp, i);
            if (!av || !ev || differ(av, ev, subset, path))
                return 1;
            path->len = mark;
        }
        return 0;
    }
    return !json_equal((json_t *)act, (json_t *)exp);
}

/* A JSON value at `path` ("a.b[2]") of `root`, or NULL. */
static json_t *at_path(json_t *root, const char *path)
{
    json_t *v = root;
    char key[256];
    while (v && *path) {
        if (*path == '.')
            path++;
        if (*path == '[') {
            size_t i = strtoul(path + 1, (char **)&path, 10);
            path++;     /* ']' */
            v = i ? json_array_get(v, i - 1) : NULL;
        } else {
            size_t n = strcspn(path, ".[");
            snprintf(key, sizeof key, "%.*s", (int)n, path);
            path += n;
            v = json_object_get(v, key);
        }
    }
    return v;
}

static char *dump(const json_t *v)
{
    return v ? json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY)
             : strdup("(missing)");
}

static int compare(lua_State *L, int subset)
{
    run_opts *o = opts_of(L);
    luaL_checkany(L, 1);
    luaL_checkany(L, 2);
    const char *label = luaL_optstring(L, 3, subset ? "expect.has" : "expect.eq");
    rt_buf path = { 0 };
    json_t *act = lua_isnil(L, 1) ? json_null() : as_json(L, 1, &o->scratch);
    json_t *exp = as_json(L, 2, &o->scratch);
    int bad = differ(act, exp, subset, &path);
    if (bad) {
        if (rt_buf_putc(&path, '\0') < 0)
            path.len = 0;
        char *a = dump(at_path(act, path.len ? path.data : "")),
             *e = dump(at_path(exp, path.len ? path.data : "")),
             *wa = dump(act), *we = dump(exp);
        lua_pushfstring(L, "%s: %s%s\n    expected: %s\n    actual:   %s\n"
                        "  whole expected: %s\n  whole actual:   %s", label,
                        path.len > 1 ? "differs at " : "differs",
                        path.len > 1 ? path.data : "", e ? e : "?", a ? a : "?",
                        we ? we : "?", wa ? wa : "?");
        free(a);
        free(e);
        free(wa);
        free(we);
    }
    json_decref(act);
    json_decref(exp);
    rt_buf_free(&path);
    if (bad) {
        luaL_where(L, 1);
        lua_insert(L, -2);
        lua_concat(L, 2);
        return lua_error(L);
    }
    return 0;
}

/* expect.eq(actual, expected [, label]): equal as JSON. */
static int l_expect_eq(lua_State *L)
{
    return compare(L, 0);
}

/* expect.has(actual, expected [, label]): every field `expected` gives is in
 * `actual`, equal; others are not looked at. */
static int l_expect_has(lua_State *L)
{
    return compare(L, 1);
}

/* test(name, fn) */
static int l_test(lua_State *L)
{
    luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_getfield(L, LUA_REGISTRYINDEX, TESTS_KEY);
    lua_createtable(L, 2, 0);
    lua_pushvalue(L, 1);
    lua_rawseti(L, -2, 1);
    lua_pushvalue(L, 2);
    lua_rawseti(L, -2, 2);
    lua_rawseti(L, -2, (int)lua_objlen(L, -2) + 1);
    return 0;
}

static void open_api(lua_State *L, run_opts *o)
{
    static const luaL_Reg harness_methods[] = {
        { "send", l_send }, { "advance", l_advance }, { "finish", l_finish },
        { "state", l_state }, { "close", l_close }, { NULL, NULL } };
    luaL_openlibs(L);
    lb_int64_open(L);
    luaL_newmetatable(L, HARNESS_MT);
    lua_pushcfunction(L, harness_gc);
    lua_setfield(L, -2, "__gc");
    lua_newtable(L);
    for (const luaL_Reg *r = harness_methods; r->name; r++) {
        lua_pushlightuserdata(L, o);
        lua_pushcclosure(L, r->func, 1);
        lua_setfield(L, -2, r->name);
    }
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    lua_newtable(L);
    lua_setfield(L, LUA_REGISTRYINDEX, TESTS_KEY);
    lua_newtable(L);                                /* eddy */
    lua_pushlightuserdata(L, o);
    lua_pushcclosure(L, l_harness, 1);
    lua_setfield(L, -2, "harness");
    lua_pushcfunction(L, l_event);
    lua_setfield(L, -2, "event");
    lb_json_open(L, &o->scratch);
    lua_setfield(L, -2, "json");
    lua_setglobal(L, "eddy");
    lua_newtable(L);                                /* expect */
    lua_pushlightuserdata(L, o);
    lua_pushcclosure(L, l_expect_eq, 1);
    lua_setfield(L, -2, "eq");
    lua_pushlightuserdata(L, o);
    lua_pushcclosure(L, l_expect_has, 1);
    lua_setfield(L, -2, "has");
    lua_setglobal(L, "expect");
    lua_pushcfunction(L, l_test);
    lua_setglobal(L, "test");
}

/* --- the run --- */

typedef struct result {
    char *file, *name, *message;    /* message NULL: passed */
} result;

typedef struct results {
    result *v;
    size_t n, cap;
    size_t failed;
} results;

static int add_result(results *rs, const char *file, const char *name, const char *message)
{
    if (rs->n == rs->cap) {
        size_t cap = rs->cap ? rs->cap * 2 : 32;
        result *v = realloc(rs->v, cap * sizeof *v);
        if (!v)
            return -1;
        rs->v = v;
        rs->cap = cap;
    }
    result *r = &rs->v[rs->n];
    r->file = strdup(file);
    r->name = strdup(name);
    r->message = message ? strdup(message) : NULL;
    if (!r->file || !r->name || (message && !r->message)) {
        free(r->file);
        free(r->name);
        free(r->message);
        return -1;
    }
    rs->n++;
    rs->failed += message != NULL;
    return 0;
}

/* TAP: "ok N - file: name", failures with their message as YAML-ish comments. */
static void print_tap(const result *r, size_t n)
{
    printf("%s %zu - %s: %s\n", r->message ? "not ok" : "ok", n, r->file, r->name);
    if (!r->message)
        return;
    printf("  ---\n");
    for (const char *p = r->message; *p;) {
        size_t len = strcspn(p, "\n");
        printf("  # %.*s\n", (int)len, p);
        p += len + (p[len] == '\n');
    }
    printf("  ...\n");
}

/* The message handler: an error that is not a string still fails the test. */
static int message_of(lua_State *L)
{
    if (!lua_isstring(L, 1))
        lua_pushliteral(L, "(error object is not a string)");
    return 1;
}

static int run_file(const char *file, run_opts *o, results *rs)
{
    lua_State *L = luaL_newstate();
    int rc = -1;
    if (!L)
        return add_result(rs, file, "(load)", "out of memory");
    open_api(L, o);
    lua_pushcfunction(L, message_of);
    int tb = lua_gettop(L);
    const char *failed = NULL;
    if (luaL_loadfile(L, file) != 0 || lua_pcall(L, 0, 0, tb) != 0)
        failed = lua_tostring(L, -1);
    lua_getfield(L, LUA_REGISTRYINDEX, TESTS_KEY);
    int tests = lua_gettop(L), n = (int)lua_objlen(L, tests);
    if (!failed && n == 0)
        failed = "no test(name, fn) in the file";
    if (failed) {   /* the file itself is one failure */
        if ((rc = add_result(rs, file, "(load)", failed)) == 0)
            print_tap(&rs->v[rs->n - 1], rs->n);
        goto out;
    }
    for (int i = 1; i <= n; i++) {
        lua_rawgeti(L, tests, i);
        lua_rawgeti(L, -1, 1);
        char *name = strdup(lua_tostring(L, -1));
        lua_pop(L, 1);
        lua_rawgeti(L, -1, 2);
        int ok = lua_pcall(L, 0, 0, tb) == 0;
        int added = add_result(rs, file, name ? name : "?", ok ? NULL : lua_tostring(L, -1));
        free(name);
        if (added < 0)
            goto out;
        print_tap(&rs->v[rs->n - 1], rs->n);
        lua_settop(L, tests);
    }
    rc = 0;
out:
    lua_close(L);
    return rc;
}

static void xml_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
    }
}

/* JUnit XML, one testsuite per file, as CI systems read it. */
static int write_junit(const char *path, const results *rs)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "eddy test: cannot write %s\n", path);
        return -1;
    }
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites tests=\"%zu\" "
            "failures=\"%zu\">\n", rs->n, rs->failed);
    for (size_t i = 0; i < rs->n;) {
        size_t j = i, fails = 0;
        while (j < rs->n && !strcmp(rs->v[j].file, rs->v[i].file))
            fails += rs->v[j++].message != NULL;
        fprintf(f, "  <testsuite name=\"");
        xml_text(f, rs->v[i].file);
        fprintf(f, "\" tests=\"%zu\" failures=\"%zu\">\n", j - i, fails);
        for (; i < j; i++) {
            fprintf(f, "    <testcase classname=\"");
            xml_text(f, rs->v[i].file);
            fprintf(f, "\" name=\"");
            xml_text(f, rs->v[i].name);
            if (!rs->v[i].message) {
                fprintf(f, "\"/>\n");
                continue;
            }
            fprintf(f, "\">\n      <failure message=\"");
            xml_text(f, rs->v[i].name);
            fprintf(f, " failed\">");
            xml_text(f, rs->v[i].message);
            fprintf(f, "</failure>\n    </testcase>\n");
        }
        fprintf(f, "  </testsuite>\n");
    }
    fprintf(f, "</testsuites>\n");
    return fclose(f) == 0 ? 0 : -1;
}

int rt_testkit_main(const char *config, char **sets, int nsets, char **files, int nfiles,
                    const char *junit)
{
    run_opts o = { config, sets, nsets, { 0 } };
    results rs = { 0 };
    int rc = 1;
    if (nfiles == 0) {
        fprintf(stderr, "eddy test: no test files (name them, or put *_test.lua files in "
                "tests/processors/ or processors/)\n");
        return 2;
    }
    rt_log_set_level(RT_LOG_ERROR);    /* results say what happened: dead letters too */
    printf("TAP version 13\n");
    for (int i = 0; i < nfiles; i++)
        if (run_file(files[i], &o, &rs) < 0) {
            fprintf(stderr, "eddy test: out of memory\n");
            goto out;
        }
    printf("1..%zu\n# %zu passed, %zu failed\n", rs.n, rs.n - rs.failed, rs.failed);
    if (junit && write_junit(junit, &rs) < 0)
        goto out;
    rc = rs.failed ? 1 : 0;
out:
    for (size_t i = 0; i < rs.n; i++) {
        free(rs.v[i].file);
        free(rs.v[i].name);
        free(rs.v[i].message);
    }
    free(rs.v);
    rt_buf_free(&o.scratch);
    return rc;
}
