/* lb_metric.c - custom metrics of a processor (Flink's user counters and gauges): the
 * processor table declares them, ctx.metric updates them, the worker exports them on
 * /metrics as eddy_<processor>_<name>{processor="...", <labels>}. Their values are kept
 * by the worker under the processor's name, so they outlive a reload; the supervisor
 * adds up the workers' samples. An update is made at once: a failed event's updates
 * stay, as a Flink counter's do. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "bindings.h"

static rt_processor *self(lua_State *L)
{
    return lua_touserdata(L, lua_upvalueindex(1));
}

/* [a-zA-Z_][a-zA-Z0-9_]*, as Prometheus names and labels are. */
static int valid_name(const char *s)
{
    if (!*s || isdigit((unsigned char)*s))
        return 0;
    for (; *s; s++)
        if (*s != '_' && !isalnum((unsigned char)*s))
            return 0;
    return 1;
}

static char *dup_or_raise(lua_State *L, const char *s)
{
    char *d = strdup(s);
    if (!d)
        luaL_error(L, "out of memory");
    return d;
}

/* metrics = { <name> = { type = "counter"|"gauge", help = "...", labels = { ... } } } */
void lb_metric_read(lua_State *L, rt_processor *p, int spec)
{
    static const char *const keys[] = { "type", "help", "labels", NULL };
    lua_getfield(L, spec, "metrics");
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return;
    }
    if (!lua_istable(L, -1))
        luaL_error(L, "%s: metrics must be a table of name = { type = ... }", p->path);
    int t = lua_gettop(L);
    size_t n = 0;
    for (lua_pushnil(L); lua_next(L, t); lua_pop(L, 1))
        n++;
    if (!(p->metric_defs = calloc(n ? n : 1, sizeof *p->metric_defs)))
        luaL_error(L, "out of memory");
    for (lua_pushnil(L); lua_next(L, t); lua_pop(L, 1)) {
        const char *name = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "";
        if (!valid_name(name))
            luaL_error(L, "%s: metrics: '%s' is not a metric name ([a-zA-Z_][a-zA-Z0-9_]*)",
                       p->path, name);
        if (!lua_istable(L, -1))
            luaL_error(L, "%s: metrics.%s must be a table", p->path, name);
        rt_processor_check_keys(L, p, lua_gettop(L), keys, "a metric declaration");
        rt_metric_def *d = &p->metric_defs[p->nmetric_defs++];
        d->name = dup_or_raise(L, name);
        lua_getfield(L, -1, "type");
        const char *type = lua_tostring(L, -1);
        if (!type || (strcmp(type, "counter") && strcmp(type, "gauge")))
            luaL_error(L, "%s: metrics.%s.type must be \"counter\" or \"gauge\"", p->path, name);
        d->gauge = !strcmp(type, "gauge");
        lua_getfield(L, -2, "help");
        d->help = dup_or_raise(L, lua_isstring(L, -1) ? lua_tostring(L, -1) : name);
        lua_getfield(L, -3, "labels");
        size_t nl = lua_istable(L, -1) ? lua_objlen(L, -1) : 0;
        if (!lua_isnil(L, -1) && !lua_istable(L, -1))
            luaL_error(L, "%s: metrics.%s.labels must be a list of names", p->path, name);
        if (!(d->labels = calloc(nl ? nl : 1, sizeof *d->labels)))
            luaL_error(L, "out of memory");
        for (size_t i = 1; i <= nl; i++) {
            lua_rawgeti(L, -1, (int)i);
            const char *l = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "";
            if (!valid_name(l) || !strcmp(l, "processor"))
                luaL_error(L, "%s: metrics.%s.labels[%d]: '%s' is not a label name (and "
                           "'processor' is eddy's)", p->path, name, (int)i, l);
            d->labels[d->nlabels++] = dup_or_raise(L, l);
            lua_pop(L, 1);
        }
        lua_pop(L, 3);
    }
    lua_pop(L, 1);
}

/* The declaration of the metric named by argument 1. */
static const rt_metric_def *def_of(lua_State *L, const rt_processor *p)
{
    const char *name = luaL_checkstring(L, 1);
    for (size_t i = 0; i < p->nmetric_defs; i++)
        if (!strcmp(p->metric_defs[i].name, name))
            return &p->metric_defs[i];
    luaL_error(L, "ctx.metric: '%s' is not declared in the processor's metrics table", name);
    return NULL;
}

/* The series of metric `d` with the labels at `li`, created if new; NULL when no new
 * one may be made. */
static double *series(lua_State *L, rt_processor *p, const rt_metric_def *d, int li)
{
    if (!lua_isnoneornil(L, li))
        luaL_checktype(L, li, LUA_TTABLE);
    rt_buf *b = &p->scratch;
    b->len = 0;
    /* '{' so that rt_prom_label puts no comma before the first label; dropped below */
    if (rt_buf_append(b, d->name, strlen(d->name) + 1) < 0 || rt_buf_putc(b, '{') < 0)
        luaL_error(L, "out of memory");
    size_t brace = b->len - 1;
    for (size_t i = 0; i < d->nlabels; i++) {
        if (lua_isnoneornil(L, li))
            lua_pushnil(L);
        else
            lua_getfield(L, li, d->labels[i]);
        int t = lua_type(L, -1);
        if (t != LUA_TSTRING && t != LUA_TNUMBER)
            luaL_error(L, "ctx.metric: %s needs label '%s' (a string or number)", d->name,
                       d->labels[i]);
        if (rt_prom_label(b, d->labels[i], lua_tostring(L, -1)) < 0)
            luaL_error(L, "out of memory");
        lua_pop(L, 1);
    }
    size_t n = 0;
    if (!lua_isnoneornil(L, li))
        for (lua_pushnil(L); lua_next(L, li); lua_pop(L, 1))
            n++;
    if (n != d->nlabels)
        luaL_error(L, "ctx.metric: %s takes the labels it declares, no others", d->name);
    memmove(b->data + brace, b->data + brace + 1, b->len - brace - 1);
    b->len--;
    if (!p->series)
        luaL_error(L, "ctx.metric is not available here");
    return rt_series_at(p->series, b->data, b->len, p->limits.max_series);
}

/* ctx.metric.inc(name [, n] [, labels]) and ctx.metric.set(name, value [, labels]). */
static int update(lua_State *L, int set)
{
    rt_processor *p = self(L);
    int li = !set && lua_type(L, 2) == LUA_TTABLE ? 2 : 3;
    lua_Number x = li == 2 ? 1 : set ? luaL_checknumber(L, 2) : luaL_optnumber(L, 2, 1);
    const rt_metric_def *d = def_of(L, p);
    if (set && !d->gauge)
        return luaL_error(L, "ctx.metric.set: %s is a counter; use inc", d->name);
    if (!d->gauge && !(x >= 0))
        return luaL_error(L, "ctx.metric.inc: counter %s cannot go down", d->name);
    double *v = series(L, p, d, li);
    if (!v) {
        lua_pushnil(L);
        lua_pushfstring(L, "ctx.metric: %s has no room for a new series "
                        "(processor.max.metric.series=%d)", d->name, (int)p->limits.max_series);
        return 2;
    }
    *v = set ? x : *v + x;
    lua_pushboolean(L, 1);
    return 1;
}

static int metric_inc(lua_State *L)
{
    return update(L, 0);
}

static int metric_set(lua_State *L)
{
    return update(L, 1);
}

void lb_metric_push(lua_State *L, rt_processor *p)
{
    lua_createtable(L, 0, 2);
    lua_pushlightuserdata(L, p);
    lua_pushcclosure(L, metric_inc, 1);
    lua_setfield(L, -2, "inc");
    lua_pushlightuserdata(L, p);
    lua_pushcclosure(L, metric_set, 1);
    lua_setfield(L, -2, "set");
}
