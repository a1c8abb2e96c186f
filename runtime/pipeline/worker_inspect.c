/* worker_inspect.c - a processor's keyed state and open windows as JSON, for
 * GET /-/state/<processor> and `eddy state` (a checkpoint directory, offline).
 *
 * Values are stored serialized by the bindings (lb_value); they are read back in a
 * throwaway Lua state of our own, never the processor's, so looking cannot change or
 * slow a processor beyond the loop time the answer takes. */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <lauxlib.h>

#include "bindings.h"
#include "worker_int.h"

typedef struct decode_job {
    const char *data;
    size_t len;
    rt_buf *out;
} decode_job;

static int decode_protected(lua_State *L)
{
    decode_job *j = lua_touserdata(L, 1);
    if (lb_value_load(L, j->data, j->len) < 0)
        return luaL_error(L, "malformed");
    lb_json_encode(L, -1, j->out);
    return 0;
}

/* The JSON of a stored value, or a string saying why there is none. */
static json_t *value_json(lua_State *L, rt_buf *scratch, const char *data, size_t len)
{
    decode_job j = { data, len, scratch };
    scratch->len = 0;
    if (lua_cpcall(L, decode_protected, &j) != 0) {
        lua_pop(L, 1);
        return json_string("(not readable as JSON)");
    }
    json_t *v = json_loadb(scratch->data, scratch->len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    return v ? v : json_string("(not readable as JSON)");
}

/* The document as one line of `out`: 200, or -1 when out of memory. */
static int reply_json(const json_t *doc, rt_buf *out)
{
    char *text = json_dumps(doc, JSON_COMPACT);
    int rc = text && rt_buf_append(out, text, strlen(text)) == 0 && rt_buf_putc(out, '\n') == 0
             ? 200 : -1;
    free(text);
    return rc;
}

/* Every key when `key` is NULL, else only that one. */
static int wanted(const char *key, const char *k, size_t len)
{
    return !key || (strlen(key) == len && memcmp(key, k, len) == 0);
}

static json_t *pane_json(lua_State *L, rt_buf *scratch, const rt_window_def *d,
                         const rt_wkey *k, const rt_pane *p)
{
    json_t *o = json_pack("{s:s, s:i, s:s%, s:I, s:I, s:I, s:i}", "window", d->name,
                          "partition", (int)k->partition, "key", k->key, k->klen,
                          "start", (json_int_t)p->start, "end", (json_int_t)p->end,
                          "events", (json_int_t)p->count, "fired", p->fired);
    if (o && d->agg == RT_AGG_LUA && p->acc &&
        json_object_set_new(o, "acc", value_json(L, scratch, p->acc, p->acc_len)) < 0)
        goto fail;
    if (o && d->agg != RT_AGG_LUA && d->agg != RT_AGG_COUNT && p->n &&
        (json_object_set_new(o, "sum", json_real(p->sum)) < 0 ||
         json_object_set_new(o, "min", json_real(p->min)) < 0 ||
         json_object_set_new(o, "max", json_real(p->max)) < 0))
        goto fail;
    return o;
fail:
    json_decref(o);
    return NULL;
}

int rt_worker_inspect(rt_worker *w, const char *processor, const char *key, size_t limit,
                      rt_buf *out)
{
    rt_processor *p = rt_worker_find_processor(w, processor);
    if (!p)
        return 404;
    rt_keyed *kd = w->keyed[p->slot];
    lua_State *L = luaL_newstate();
    json_t *doc = json_pack("{s:s, s:[], s:[], s:b}", "processor", p->name, "state",
                            "windows", "truncated", 0);
    rt_buf scratch = { 0 };
    int rc = -1;
    if (!L || !doc)
        goto out;
    lb_int64_open(L);
    lb_json_open(L, &scratch);
    lua_pop(L, 1);
    json_t *state = json_object_get(doc, "state"), *windows = json_object_get(doc, "windows");
    size_t n = 0, i = 0;
    rt_keymap_slot *s;
    while ((s = rt_keymap_next(&kd->state.map, &i))) {
        const rt_state_value *v = s->value;
        if (!wanted(key, s->key, s->len))
            continue;
        if (n++ >= limit)
            break;
        json_t *e = json_pack("{s:i, s:s%, s:o, s:o}", "partition", (int)s->partition,
                              "key", s->key, s->len, "value",
                              value_json(L, &scratch, v->data, v->len), "expires_ms",
                              v->expires_ms ? json_integer(v->expires_ms) : json_null());
        if (!e || json_array_append_new(state, e) < 0)
            goto out;
    }
    for (size_t d = 0; d < kd->windows.ndefs; d++) {
        const rt_window_def *def = &kd->windows.defs[d];
        for (i = 0; (s = rt_keymap_next(&kd->windows.keys[d], &i));) {
            const rt_wkey *k = s->value;
            if (!wanted(key, k->key, k->klen))
                continue;
            for (size_t j = 0; j < k->n && n++ < limit; j++) {
                json_t *e = pane_json(L, &scratch, def, k, &k->panes[j]);
                if (!e || json_array_append_new(windows, e) < 0)
                    goto out;
            }
            /* A sliced window's accumulator is in its slices. */
            for (size_t j = 0; j < k->nslices && n++ < limit; j++) {
                json_t *e = pane_json(L, &scratch, def, k, &k->slices[j]);
                if (e && (json_object_del(e, "fired") < 0 ||
                          json_object_set_new(e, "slice", json_true()) < 0)) {
                    json_decref(e);
                    e = NULL;
                }
                if (!e || json_array_append_new(windows, e) < 0)
                    goto out;
            }
        }
    }
    if (n > limit && json_object_set_new(doc, "truncated", json_true()) < 0)
        goto out;
    rc = reply_json(doc, out);
out:
    if (L)
        lua_close(L);
    json_decref(doc);
    rt_buf_free(&scratch);
    return rc;
}

/* Per-partition tallies of one processor's stores, added into the partition's object. */
typedef struct tally {
    int32_t partition;
    json_int_t state_keys, state_bytes, window_keys, timers;
} tally;

static tally *tally_of(tally *v, size_t n, int32_t partition)
{
    for (size_t i = 0; i < n; i++)
        if (v[i].partition == partition)
            return &v[i];
    return NULL;
}

int rt_worker_partitions(rt_worker *w, rt_buf *out)
{
    size_t n = 0;
    tally *v = NULL;
    json_t *doc = json_pack("{s:i, s:[]}", "worker", w->index, "partitions");
    json_t *parts = doc ? json_object_get(doc, "partitions") : NULL;
    int rc = -1;
    for (rt_track_part *p = w->tracker.parts; p; p = p->link)
        n++;
    if (!parts || !(v = calloc(n ? n : 1, sizeof *v)))
        goto out;
    n = 0;
    for (rt_track_part *p = w->tracker.parts; p; p = p->link)
        if (!tally_of(v, n, p->partition))
            v[n++].partition = p->partition;
    /* One walk over every store; a key of a partition no longer read is not counted. */
    for (size_t k = 0; k < w->nkeyed; k++) {
        rt_keyed *kd = w->keyed[k];
        rt_keymap_slot *s;
        tally *t;
        size_t i = 0;
        while ((s = rt_keymap_next(&kd->state.map, &i)))
            if ((t = tally_of(v, n, s->partition))) {
                t->state_keys++;
                t->state_bytes += (json_int_t)(s->len + ((rt_state_value *)s->value)->len);
            }
        for (size_t d = 0; d < kd->windows.ndefs; d++)
            for (i = 0; (s = rt_keymap_next(&kd->windows.keys[d], &i));)
                if ((t = tally_of(v, n, s->partition)))
                    t->window_keys++;
        for (i = 0; (s = rt_keymap_next(&kd->timers.map, &i));)
            if ((t = tally_of(v, n, s->partition)))
                t->timers++;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *topics = json_array(), *o;
        for (rt_track_part *p = w->tracker.parts; topics && p; p = p->link)
            if (p->partition == v[i].partition &&
                json_array_append_new(topics, json_pack("{s:s, s:I}", "topic", p->topic,
                                                        "committable_offset",
                                                        (json_int_t)p->stored)) < 0)
                break;
        o = json_pack("{s:i, s:o, s:I, s:I, s:I, s:I}", "partition", (int)v[i].partition,
                      "topics", topics, "state_keys", v[i].state_keys, "state_bytes",
                      v[i].state_bytes, "window_keys", v[i].window_keys, "timers",
                      v[i].timers);
        /* Both calls take their value's reference even when they fail. */
        if (!o || json_array_append_new(parts, o) < 0)
            goto out;
        json_t *cl = rt_worker_changelog_describe(w, v[i].partition);
        if (cl && json_object_set_new(o, "changelog", cl) < 0)
            goto out;
    }
    rc = reply_json(doc, out);
out:
    free(v);
    json_decref(doc);
    return rc;
}
