/* dlq.c - dead-letter records.
 *
 * `raw` must give back the exact bytes that came in. Valid UTF-8 (NUL included) goes in
 * as a JSON string; anything else as base64 with "raw_encoding":"base64", because a JSON
 * string cannot hold invalid UTF-8 without changing it. A record longer than
 * dlq.max.raw.bytes is cut there and marked (raw_truncated / eddy.raw.truncated, its
 * full size): the dead-letter path must carry whatever the source accepted, and a Kafka
 * producer refuses records past its message.max.bytes. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "clock.h"
#include "dlq.h"
#include "log.h"

static char *base64(const char *in, size_t len)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc((len + 2) / 3 * 4 + 1), *o = out;
    if (!out)
        return NULL;
    const unsigned char *p = (const unsigned char *)in;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < len) v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < len) v |= p[i + 2];
        *o++ = tab[v >> 18];
        *o++ = tab[(v >> 12) & 63];
        *o++ = i + 1 < len ? tab[(v >> 6) & 63] : '=';
        *o++ = i + 2 < len ? tab[v & 63] : '=';
    }
    *o = '\0';
    return out;
}

/* Details quote input (jansson's "near '...'", Lua messages), which may not be UTF-8;
 * a dead letter must still be written, so such bytes become '?'. */
static json_t *safe_string(const char *s)
{
    json_t *v = json_string(s);
    if (v)
        return v;
    char *copy = strdup(s);
    if (!copy)
        return NULL;
    for (char *p = copy; *p; p++)
        if ((unsigned char)*p >= 0x80)
            *p = '?';
    v = json_string(copy);
    free(copy);
    return v;
}

static int set_raw(json_t *rec, const char *raw, size_t len)
{
    json_t *s = json_stringn(raw, len);
    if (s)
        return json_object_set_new(rec, "raw", s);
    char *b64 = base64(raw, len);
    if (!b64)
        return -1;
    int rc = json_object_set_new(rec, "raw", json_string(b64));
    free(b64);
    if (rc == 0)
        rc = json_object_set_new(rec, "raw_encoding", json_string("base64"));
    return rc;
}

static int set_origin(json_t *origin, const rt_origin *o)
{
    if (o->topic)
        return json_object_set_new(origin, "topic", safe_string(o->topic)) ||
               json_object_set_new(origin, "partition", json_integer(o->partition)) ||
               json_object_set_new(origin, "offset", json_integer(o->offset));
    return json_object_set_new(origin, "file", safe_string(o->file)) ||
           json_object_set_new(origin, "line", json_integer(o->line));
}

/* How much of `raw` a dead letter carries: all of it, or max_raw bytes cut back to the
 * start of a UTF-8 sequence (so that valid text stays a JSON string). */
static size_t kept_raw(const char *raw, size_t len, size_t max_raw)
{
    if (!max_raw || len <= max_raw)
        return len;
    size_t n = max_raw;
    for (int i = 0; i < 3 && n > 0 && ((unsigned char)raw[n] & 0xc0) == 0x80; i++)
        n--;
    return n;
}

/* Kafka dead letters: the value is the original bytes, the rest travels in headers. */
static int write_raw(rt_sink *s, const rt_event *ev, const rt_reject *why,
                     const char *processor, rt_ticket *ticket, size_t kept)
{
    char where[512], total[32];
    rt_origin_text(&ev->origin, where, sizeof where);
    rt_header h[6] = {
        { "eddy.reason", why->reason, strlen(why->reason) },
        { "eddy.detail", why->detail, strlen(why->detail) },
        { "eddy.origin", where, strlen(where) },
    };
    size_t n = 3;
    if (processor)
        h[n++] = (rt_header){ "eddy.processor", processor, strlen(processor) };
    if (ev->event_id)
        h[n++] = (rt_header){ "eddy.eventId", ev->event_id, strlen(ev->event_id) };
    if (kept < ev->raw_len) {
        snprintf(total, sizeof total, "%zu", ev->raw_len);
        h[n++] = (rt_header){ "eddy.raw.truncated", total, strlen(total) };
    }
    rt_out out = { ticket, ev->event_id, ev->event_id ? strlen(ev->event_id) : 0, h, n, NULL };
    return rt_sink_write(s, ev->raw, kept, &out);
}

int rt_dlq_write(rt_sink *s, const rt_event *ev, const rt_reject *why, const char *processor,
                 rt_ticket *ticket, size_t max_raw)
{
    int rc = -1;
    char *text = NULL;
    json_t *rec = NULL, *origin = NULL;
    size_t kept = kept_raw(ev->raw, ev->raw_len, max_raw);
    if (s->raw_dead_letters) {
        rc = write_raw(s, ev, why, processor, ticket, kept);
        goto out;
    }
    rec = json_object();
    origin = json_object();
    if (!rec || !origin)
        goto out;
    /* json_object_set_new steals its value even on failure, so one check per call. */
    if (json_object_set_new(rec, "reason", json_string(why->reason)) ||
        json_object_set_new(rec, "detail", safe_string(why->detail)) ||
        (processor && json_object_set_new(rec, "processor", safe_string(processor))) ||
        (ev->event_id && json_object_set_new(rec, "eventId", json_string(ev->event_id))) ||
        set_origin(origin, &ev->origin) ||
        json_object_set(rec, "origin", origin) ||
        json_object_set_new(rec, "time",
                            json_integer((json_int_t)rt_epoch_ms())) ||
        set_raw(rec, ev->raw, kept) ||
        (kept < ev->raw_len &&
         json_object_set_new(rec, "raw_truncated", json_integer((json_int_t)ev->raw_len))))
        goto out;
    text = json_dumps(rec, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!text)
        goto out;
    rt_out out = { ticket, ev->event_id, ev->event_id ? strlen(ev->event_id) : 0, NULL, 0, NULL };
    rc = rt_sink_write(s, text, strlen(text), &out);
out:
    if (rc < 0) {
        char where[512];
        rt_error("dead-letter write to sink %s failed (reason %s, %s)", s->name, why->reason,
                 rt_origin_text(&ev->origin, where, sizeof where));
    }
    free(text);
    json_decref(origin);
    json_decref(rec);
    return rc;
}
