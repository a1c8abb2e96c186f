/* lb_window.c - the Lua side of windows: reading a processor's `windows` table, the
 * Lua aggregation (add, merge, result) over accumulators the host keeps serialized,
 * and the on_window(win, ctx) call. Every call goes through rt_processor_invoke. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "bindings.h"

static char *dup_or_raise(lua_State *L, const char *s)
{
    char *d = strdup(s);
    if (!d)
        luaL_error(L, "out of memory");
    return d;
}

/* 100 years of milliseconds. */
#define WINDOW_MS_MAX 3155760000000.0

static int64_t ms_field(lua_State *L, int t, const char *name, const char *win, int required,
                        int64_t dflt)
{
    lua_getfield(L, t, name);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        if (required)
            luaL_error(L, "windows.%s: %s is required", win, name);
        return dflt;
    }
    lua_Number v = lua_tonumber(L, -1);
    /* The bound keeps timestamp + size + lateness inside int64 for any accepted
     * timestamp (event.timestamp.max is at most year 9999, 2.6e14 ms). */
    if (!lua_isnumber(L, -1) || !(v >= 0 && v <= WINDOW_MS_MAX) || v != floor(v) ||
        (required && v <= 0))
        luaL_error(L, "windows.%s: %s must be a whole number of milliseconds%s, at most "
                   "%.0f (100 years)", win, name, required ? " above 0" : "", WINDOW_MS_MAX);
    lua_pop(L, 1);
    return (int64_t)v;
}

static int fn_field(lua_State *L, int t, const char *name, const char *win)
{
    lua_getfield(L, t, name);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return LUA_NOREF;
    }
    if (!lua_isfunction(L, -1))
        luaL_error(L, "windows.%s: %s must be a function", win, name);
    return luaL_ref(L, LUA_REGISTRYINDEX);
}

/* merge: a function, or "sum" (lb_value_merge_sum: eddy merges without calling Lua). */
static void merge_field(lua_State *L, rt_window_def *d, int t)
{
    lua_getfield(L, t, "merge");
    int sum = lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), "sum") == 0;
    if (!sum && !lua_isnil(L, -1) && !lua_isfunction(L, -1))
        luaL_error(L, "windows.%s: merge must be a function or \"sum\"", d->name);
    lua_pop(L, 1);
    d->merge_sum = sum;
    if (!sum)
        d->merge_ref = fn_field(L, t, "merge", d->name);
}

static void read_agg(lua_State *L, rt_window_def *d, int t)
{
    static const struct { const char *name; enum rt_window_agg agg; } aggs[] = {
        { "sum", RT_AGG_SUM }, { "min", RT_AGG_MIN }, { "max", RT_AGG_MAX },
        { "avg", RT_AGG_AVG },
    };
    d->add_ref = fn_field(L, t, "add", d->name);
    d->result_ref = fn_field(L, t, "result", d->name);
    merge_field(L, d, t);
    int merge = d->merge_ref != LUA_NOREF || d->merge_sum;
    lua_getfield(L, t, "agg");
    const char *agg = lua_tostring(L, -1);
    if (d->add_ref != LUA_NOREF) {
        if (agg)
            luaL_error(L, "windows.%s: give agg or add, not both", d->name);
        d->agg = RT_AGG_LUA;
        if (d->kind == RT_WINDOW_SESSION && !merge)
            luaL_error(L, "windows.%s: a session window with add needs merge(a, b)", d->name);
        d->sliced = d->kind == RT_WINDOW_SLIDING && d->slide < d->size && merge;
    } else if (!agg || strcmp(agg, "count") == 0) {
        d->agg = RT_AGG_COUNT;
    } else {
        const char *colon = strchr(agg, ':');
        size_t i = 0, n = sizeof aggs / sizeof *aggs;
        while (colon && i < n && (strlen(aggs[i].name) != (size_t)(colon - agg) ||
                                  memcmp(aggs[i].name, agg, (size_t)(colon - agg)) != 0))
            i++;
        if (!colon || i == n || !colon[1])
            luaL_error(L, "windows.%s: agg must be count, sum:<field>, avg:<field>, "
                          "min:<field> or max:<field>", d->name);
        d->agg = aggs[i].agg;
        /* <field> is a payload field; "payload." in front is allowed too. */
        const char *f = strncmp(colon + 1, "payload.", 8) == 0 ? colon + 9 : colon + 1;
        lua_pushfstring(L, "payload.%s", f);
        d->field = dup_or_raise(L, lua_tostring(L, -1));
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const rt_window_def *)a)->name, ((const rt_window_def *)b)->name);
}

void lb_window_read(lua_State *L, rt_processor *p, int spec, int64_t default_lateness)
{
    static const char *const kinds[] = { "tumbling", "sliding", "session", NULL };
    lua_getfield(L, spec, "windows");
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return;
    }
    if (lua_isfunction(L, -1)) {    /* windows(ctx): sizes may come from ctx.rules */
        lua_rawgeti(L, LUA_REGISTRYINDEX, p->ctx_ref);
        lua_call(L, 1, 1);
    }
    if (!lua_istable(L, -1))
        luaL_error(L, "%s: windows must be a table of name = {kind = ..., ...} (or a "
                      "function of ctx returning one)", p->path);
    int t = lua_gettop(L);
    size_t n = 0;
    for (lua_pushnil(L); lua_next(L, t); lua_pop(L, 1))
        n++;
    if (!n) {
        lua_pop(L, 1);
        return;
    }
    if (!(p->window_defs = calloc(n, sizeof *p->window_defs)))
        luaL_error(L, "out of memory");
    for (lua_pushnil(L); lua_next(L, t); lua_pop(L, 1)) {
        if (lua_type(L, -2) != LUA_TSTRING || !lua_istable(L, -1))
            luaL_error(L, "%s: windows must map names to tables", p->path);
        rt_window_def *d = &p->window_defs[p->nwindows++];
        d->add_ref = d->result_ref = d->merge_ref = LUA_NOREF;
        d->name = dup_or_raise(L, lua_tostring(L, -2));
        lua_pushvalue(L, -2);       /* interned once: on_window gets it every firing */
        d->name_ref = luaL_ref(L, LUA_REGISTRYINDEX);
        int w = lua_gettop(L);
        static const char *const keys[] = { "kind", "size_ms", "slide_ms", "gap_ms", "key",
                                            "agg", "add", "merge", "result", "lateness_ms",
                                            NULL };
        char what[160];
        snprintf(what, sizeof what, "windows.%s", d->name);
        rt_processor_check_keys(L, p, w, keys, what);
        lua_getfield(L, w, "kind");
        const char *kind = lua_tostring(L, -1);
        int k = 0;
        while (kind && kinds[k] && strcmp(kinds[k], kind) != 0)
            k++;
        if (!kind || !kinds[k]) {
            char where[4200];
            luaL_error(L, "%s: windows.%s: kind must be tumbling, sliding or session",
                       rt_processor_where(p, "kind", d->name, where, sizeof where), d->name);
        }
        d->kind = (enum rt_window_kind)k;
        lua_pop(L, 1);
        if (d->kind == RT_WINDOW_SESSION) {
            d->gap = ms_field(L, w, "gap_ms", d->name, 1, 0);
        } else {
            d->size = ms_field(L, w, "size_ms", d->name, 1, 0);
            d->slide = d->kind == RT_WINDOW_SLIDING ? ms_field(L, w, "slide_ms", d->name, 1, 0)
                                                    : d->size;
            if (d->slide > d->size)
                luaL_error(L, "windows.%s: slide_ms must not exceed size_ms", d->name);
        }
        d->lateness = ms_field(L, w, "lateness_ms", d->name, 0, default_lateness);
        lua_getfield(L, w, "key");
        if (!lua_isnil(L, -1)) {
            if (lua_type(L, -1) != LUA_TSTRING || !lua_objlen(L, -1))
                luaL_error(L, "windows.%s: key must be a record path such as "
                              "\"payload.deviceId\"", d->name);
            d->key = dup_or_raise(L, lua_tostring(L, -1));
        }
        lua_pop(L, 1);
        read_agg(L, d, w);
    }
    qsort(p->window_defs, p->nwindows, sizeof *p->window_defs, by_name);
    if (p->on_window_ref == LUA_NOREF)
        luaL_error(L, "%s: windows are declared but on_window is missing", p->path);
    lua_pop(L, 1);
}

/* ---- calls ---- */

typedef struct call {
    rt_processor *p;
    const rt_window_def *d;
    const rt_event *ev;
    void *ev_handle;
    const rt_wkey *k;
    rt_pane *pane;
    const rt_pane *from;
    rt_pane *const *panes;  /* add: the panes the event joins */
    size_t n;
} call;

static void push_acc(lua_State *L, const rt_pane *pane)
{
    if (!pane->acc)
        lua_pushnil(L);
    else if (lb_value_load(L, pane->acc, pane->acc_len) < 0)
        luaL_error(L, "window accumulator is corrupt");
}

/* An accumulator's bytes in a malloc'd block of their own; NULL when out of memory. */
static char *acc_copy(const char *bytes, size_t len)
{
    char *acc = malloc(len ? len : 1);
    if (acc)
        memcpy(acc, bytes, len);
    return acc;
}

/* The value at `idx`, serialized into a malloc'd copy. */
static char *dump_acc(lua_State *L, rt_processor *p, int idx, const char *what, size_t *len)
{
    rt_buf *b = &p->scratch;
    b->len = 0;
    lb_value_dump(L, idx, b, what);
    char *acc = acc_copy(b->data, b->len);
    if (!acc)
        luaL_error(L, "out of memory");
    *len = b->len;
    return acc;
}

static void set_acc(rt_pane *pane, char *acc, size_t len)
{
    free(pane->acc);
    pane->acc = acc;
    pane->acc_len = len;
}

/* add(acc, ev, ctx) for every pane, with one ev (its payload converted once). The
 * results are kept in a table until every call returned (a day's window sliding by
 * seconds is thousands of them: more than the stack takes); they are serialized one
 * after another into the scratch buffer, copied out, and only then swapped in, so an
 * error anywhere leaves every pane as it was. */
#define ADD_FEW 8      /* panes whose bookkeeping add_body keeps on the C stack */

static int add_body(lua_State *L, void *arg)
{
    call *c = arg;
    if (c->p->add_ev_ref > 0)   /* process()'s own ev, payload converted already */
        lua_rawgeti(L, LUA_REGISTRYINDEX, c->p->add_ev_ref);
    else
        c->ev_handle = lb_event_push(L, c->ev, c->p->event_mt_ref);
    int ev = lua_gettop(L);
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->p->ctx_ref);
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->d->add_ref);
    lua_createtable(L, (int)c->n, 0);
    int results = ev + 3;
    for (size_t i = 0; i < c->n; i++) {
        lua_pushvalue(L, ev + 2);
        push_acc(L, c->panes[i]);
        lua_pushvalue(L, ev);
        lua_pushvalue(L, ev + 1);
        lua_call(L, 3, 1);
        lua_rawseti(L, results, (int)i + 1);
    }
    rt_buf *b = &c->p->scratch;
    /* A sliced window adds to one slice: no userdata for that. */
    size_t ends_few[ADD_FEW];
    char *accs_few[ADD_FEW];
    size_t *ends = c->n <= ADD_FEW ? ends_few : lua_newuserdata(L, c->n * sizeof *ends);
    char **accs = c->n <= ADD_FEW ? accs_few : lua_newuserdata(L, c->n * sizeof *accs);
    b->len = 0;
    for (size_t i = 0; i < c->n; i++) {
        lua_rawgeti(L, results, (int)i + 1);
        lb_value_dump(L, -1, b, "window add");
        lua_pop(L, 1);
        ends[i] = b->len;
    }
    for (size_t i = 0; i < c->n; i++) {
        size_t from = i ? ends[i - 1] : 0;
        if (!(accs[i] = acc_copy(b->data + from, ends[i] - from))) {
            while (i--)
                free(accs[i]);
            luaL_error(L, "out of memory");
        }
    }
    for (size_t i = 0; i < c->n; i++)
        set_acc(c->panes[i], accs[i], ends[i] - (i ? ends[i - 1] : 0));
    return 0;
}

int lb_window_add(rt_processor *p, const rt_window_def *d, const rt_event *ev,
                  rt_pane *const *panes, size_t n, int32_t partition, rt_reject *why)
{
    call c = { .p = p, .d = d, .ev = ev, .panes = panes, .n = n };
    int rc = rt_processor_invoke(p, RT_CALL_ADD, add_body, &c, NULL, partition, NULL, why);
    if (c.ev_handle)
        lb_event_detach(c.ev_handle);
    return rc;
}

static int merge_body(lua_State *L, void *arg)
{
    call *c = arg;
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->d->merge_ref);
    push_acc(L, c->pane);
    push_acc(L, c->from);
    lua_call(L, 2, 1);
    size_t len;
    char *acc = dump_acc(L, c->p, -1, "window merge", &len);
    set_acc(c->pane, acc, len);
    return 0;
}

/* merge = "sum" of two panes: no Lua call, so nothing to protect. */
static int merge_sum(rt_processor *p, rt_pane *into, const rt_pane *from, rt_reject *why)
{
    rt_buf *b = &p->scratch;
    b->len = 0;
    if (!from->acc)
        return 0;
    lb_span both[2] = { { into->acc, into->acc_len }, { from->acc, from->acc_len } };
    if (into->acc && lb_value_merge_sum(both, 2, b) < 0) {
        rt_reject_set(why, RT_REASON_PROCESSOR_ERROR, "window merge: an accumulator is "
                      "corrupt (or out of memory)");
        return -1;
    }
    size_t len = into->acc ? b->len : from->acc_len;
    char *copy = acc_copy(into->acc ? b->data : from->acc, len);
    if (!copy) {
        rt_reject_set(why, RT_REASON_PROCESSOR_ERROR, "window merge: out of memory");
        return -1;
    }
    set_acc(into, copy, len);
    return 0;
}

int lb_window_merge(rt_processor *p, const rt_window_def *d, rt_pane *into,
                    const rt_pane *from, int32_t partition, rt_reject *why)
{
    if (d->merge_sum)
        return merge_sum(p, into, from, why);
    call c = { .p = p, .d = d, .pane = into, .from = from };
    return rt_processor_invoke(p, RT_CALL_MERGE, merge_body, &c, NULL, partition, NULL, why);
}

/* push_merged for merge = "sum": the window's accumulators (its own, then its slices'
 * in time order) merged in C in one pass, and one table loaded, where merge(a, b)
 * loads every slice and calls Lua for each. */
static void push_summed(lua_State *L, rt_processor *p, const rt_wkey *k, const rt_pane *win)
{
    rt_buf *spans = &p->scratch2, *merged = &p->scratch;
    spans->len = merged->len = 0;
    if (rt_buf_reserve(spans, (k->nslices + 1) * sizeof(lb_span)) < 0)
        luaL_error(L, "out of memory");
    lb_span *v = (lb_span *)(void *)spans->data;
    size_t n = 0;
    if (win->acc)
        v[n++] = (lb_span){ win->acc, win->acc_len };
    for (size_t i = 0; i < k->nslices && k->slices[i].start < win->end; i++) {
        const rt_pane *s = &k->slices[i];
        if (s->start >= win->start && s->acc)
            v[n++] = (lb_span){ s->acc, s->acc_len };
    }
    if (!n) {
        lua_pushnil(L);
        return;
    }
    lb_span acc = v[0];     /* one accumulator loads as it is */
    if (n > 1) {
        if (lb_value_merge_sum(v, n, merged) < 0)
            luaL_error(L, "window accumulator is corrupt (or out of memory)");
        acc = (lb_span){ merged->data, merged->len };
    }
    if (lb_value_load(L, acc.p, acc.len) < 0)
        luaL_error(L, "window accumulator is corrupt");
}

/* A sliced window's accumulator: merge(a, b) over its slices in time order, after the
 * window's own accumulator if it has one (added to before slicing: restored from a
 * checkpoint of a version without merge). nil when nothing was added. */
static void push_merged(lua_State *L, rt_processor *p, const rt_window_def *d,
                        const rt_wkey *k, const rt_pane *win)
{
    if (d->merge_sum) {
        push_summed(L, p, k, win);
        return;
    }
    int have = win->acc != NULL;
    if (have)
        push_acc(L, win);
    for (size_t i = 0; i < k->nslices && k->slices[i].start < win->end; i++) {
        const rt_pane *s = &k->slices[i];
        if (s->start < win->start || !s->acc)
            continue;
        if (have) {
            lua_rawgeti(L, LUA_REGISTRYINDEX, d->merge_ref);
            lua_insert(L, -2);
            push_acc(L, s);
            lua_call(L, 2, 1);
        } else {
            push_acc(L, s);
            have = 1;
        }
    }
    if (!have)
        lua_pushnil(L);
}

static void push_result(lua_State *L, rt_processor *p, const rt_window_def *d,
                        const rt_wkey *k, const rt_pane *pane)
{
    switch (d->agg) {
    case RT_AGG_COUNT:
        lua_pushnumber(L, (lua_Number)pane->count);
        break;
    case RT_AGG_SUM:
        lua_pushnumber(L, pane->sum);
        break;
    case RT_AGG_MIN:
    case RT_AGG_MAX:
    case RT_AGG_AVG:
        if (!pane->n)
            lua_pushnil(L);
        else
            lua_pushnumber(L, d->agg == RT_AGG_MIN ? pane->min : d->agg == RT_AGG_MAX
                                  ? pane->max : pane->sum / (double)pane->n);
        break;
    case RT_AGG_LUA:
        if (d->result_ref != LUA_NOREF)
            lua_rawgeti(L, LUA_REGISTRYINDEX, d->result_ref);
        if (d->sliced)
            push_merged(L, p, d, k, pane);
        else
            push_acc(L, pane);
        if (d->result_ref != LUA_NOREF)
            lua_call(L, 1, 1);
        break;
    }
}

static int fire_body(lua_State *L, void *arg)
{
    call *c = arg;
    /* The processor's on_window behind a wrapper that makes `win` of these
     * (processor.c on_window_src) and passes ctx. */
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->p->on_window_ref);
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->d->name_ref);
    lua_pushlstring(L, c->k->key, c->k->klen);
    lua_pushnumber(L, (lua_Number)c->pane->start);
    lua_pushnumber(L, (lua_Number)c->pane->end);
    lua_pushnumber(L, (lua_Number)c->pane->count);
    lua_pushboolean(L, c->pane->fired > 1);
    push_result(L, c->p, c->d, c->k, c->pane);
    lua_call(L, 7, 0);
    return 0;
}

int lb_window_fire(rt_processor *p, const rt_window_def *d, const rt_wkey *k,
                   const rt_pane *pane, rt_outbox *out, const rt_origin *id, rt_reject *why)
{
    call c = { .p = p, .d = d, .k = k, .pane = (rt_pane *)pane };
    return rt_processor_invoke(p, RT_CALL_WINDOW, fire_body, &c, out, k->partition, id, why);
}
