/* event.c - BusinessEvent decoding and validation, before any Lua runs.
 *
 * Duplicate keys are refused: with two "domain" keys the record means different
 * things to different readers. Strings may hold \u0000 in the payload (Lua strings are
 * 8-bit clean), but not in the routing fields, where C code compares them. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "event.h"

const char *const rt_reason_names[RT_NREASONS] = {
    [RT_REASON_NONE] = "",
    [RT_REASON_BAD_JSON] = "bad_json",
    [RT_REASON_TOO_DEEP] = "too_deep",
    [RT_REASON_TOO_LARGE] = "too_large",
    [RT_REASON_MISSING_FIELD] = "missing_field",
    [RT_REASON_BAD_TYPE] = "bad_type",
    [RT_REASON_BAD_VALUE] = "bad_value",
    [RT_REASON_NO_ROUTE] = "no_route",
    [RT_REASON_PROCESSOR_ERROR] = "processor_error",
    [RT_REASON_REJECTED] = "rejected",
    [RT_REASON_TIMEOUT] = "timeout",
    [RT_REASON_MEMORY] = "memory",
    [RT_REASON_TOO_MANY_EMITS] = "too_many_emits",
    [RT_REASON_OUTPUT_TOO_LARGE] = "output_too_large",
    [RT_REASON_QUARANTINED] = "quarantined",
    [RT_REASON_LOOKUP_FAILED] = "lookup_failed",
    [RT_REASON_SINK_ERROR] = "sink_error",
    [RT_REASON_TRUNCATED] = "truncated",
    [RT_REASON_LATE] = "late",
};

static void reject(rt_reject *why, rt_reason code, const char *field, const char *fmt,
                   va_list ap)
{
    why->code = code;
    snprintf(why->reason, sizeof why->reason, "%s%s%s", rt_reason_names[code],
             field ? ":" : "", field ? field : "");
    vsnprintf(why->detail, sizeof why->detail, fmt, ap);
}

void rt_reject_set(rt_reject *why, rt_reason code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    reject(why, code, NULL, fmt, ap);
    va_end(ap);
}

void rt_reject_field(rt_reject *why, rt_reason code, const char *field, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    reject(why, code, field, fmt, ap);
    va_end(ap);
}

const char *rt_origin_text(const rt_origin *o, char *buf, size_t len)
{
    if (o->topic)
        snprintf(buf, len, "%s/%d@%lld", o->topic, (int)o->partition, (long long)o->offset);
    else
        snprintf(buf, len, "%s:%lld", o->file, o->line);
    return buf;
}

static const char *type_of(const rt_jtape *t, long i)
{
    switch (t->v[i].type) {
    case RT_JOBJECT: return "object";
    case RT_JARRAY: return "array";
    case RT_JSTRING: return "string";
    case RT_JINT: return "integer";
    case RT_JREAL: return "number";
    case RT_JTRUE:
    case RT_JFALSE: return "boolean";
    case RT_JNULL: return "null";
    }
    return "unknown";
}

static long member(const rt_event *ev, const char *name)
{
    return rt_jtape_get(&ev->tape, 0, name, strlen(name));
}

/* A string field: required ones must be present and non-empty. NULL leaves *out NULL. */
static int string_field(rt_event *ev, const char *name, int required, const char **out,
                        rt_reject *why)
{
    const rt_jtape *t = &ev->tape;
    long v = member(ev, name);
    *out = NULL;
    if (v < 0 || (!required && t->v[v].type == RT_JNULL)) {
        if (!required)
            return 0;
        rt_reject_field(why, RT_REASON_MISSING_FIELD, name, "field '%s' is missing", name);
        return -1;
    }
    if (t->v[v].type != RT_JSTRING) {
        rt_reject_field(why, RT_REASON_BAD_TYPE, name, "field '%s' must be a string, not %s",
                        name, type_of(t, v));
        return -1;
    }
    size_t len = t->v[v].len;
    const char *s = rt_jtape_str(t, (uint32_t)v);
    if (required && (len == 0 || strlen(s) != len)) {
        rt_reject_field(why, RT_REASON_BAD_VALUE, name,
                        "field '%s' must be a non-empty string without NUL", name);
        return -1;
    }
    *out = s;
    return 0;
}

static int validate(rt_event *ev, const rt_event_limits *lim, rt_reject *why)
{
    const rt_jtape *t = &ev->tape;
    if (t->v[0].type != RT_JOBJECT) {
        rt_reject_field(why, RT_REASON_BAD_TYPE, "event",
                        "an event must be a JSON object, not %s", type_of(t, 0));
        return -1;
    }
    if (string_field(ev, "domain", 1, &ev->domain, why) < 0 ||
        string_field(ev, "type", 1, &ev->type, why) < 0 ||
        string_field(ev, "eventId", 1, &ev->event_id, why) < 0)
        return -1;

    long ts = member(ev, "timestamp");
    if (ts < 0) {
        rt_reject_field(why, RT_REASON_MISSING_FIELD, "timestamp",
                        "field 'timestamp' is missing");
        return -1;
    }
    double real = t->v[ts].num.d;
    if (t->v[ts].type == RT_JREAL && real == floor(real)) {
        rt_reject_field(why, RT_REASON_BAD_VALUE, "timestamp",
                        "field 'timestamp' is %.17g, past "
                        "event.timestamp.max (%lld)", real, lim->timestamp_max);
        return -1;
    }
    if (t->v[ts].type != RT_JINT) {
        rt_reject_field(why, RT_REASON_BAD_TYPE, "timestamp",
                        "field 'timestamp' must be an integer (epoch ms), not %s",
                        type_of(t, ts));
        return -1;
    }
    ev->timestamp = t->v[ts].num.i;
    if (ev->timestamp < 0) {
        rt_reject_field(why, RT_REASON_BAD_VALUE, "timestamp",
                        "field 'timestamp' is negative (%lld)",
                        ev->timestamp);
        return -1;
    }
    /* Past the bound, window ends (timestamp + size) could overflow, and the watermark
     * would jump so far ahead that every later event is late. */
    if (ev->timestamp > lim->timestamp_max) {
        rt_reject_field(why, RT_REASON_BAD_VALUE, "timestamp",
                        "field 'timestamp' is %lld, past "
                        "event.timestamp.max (%lld)", ev->timestamp, lim->timestamp_max);
        return -1;
    }

    long payload = member(ev, "payload");
    if (payload < 0) {
        rt_reject_field(why, RT_REASON_MISSING_FIELD, "payload", "field 'payload' is missing");
        return -1;
    }
    if (t->v[payload].type != RT_JOBJECT) {
        rt_reject_field(why, RT_REASON_BAD_TYPE, "payload",
                        "field 'payload' must be an object, not %s", type_of(t, payload));
        return -1;
    }
    ev->payload = (uint32_t)payload;
    if (string_field(ev, "version", 0, &ev->version, why) < 0 ||
        string_field(ev, "source", 0, &ev->source, why) < 0)
        return -1;
    return 0;
}

int rt_event_decode(rt_event *ev, const char *raw, size_t len, const rt_event_limits *lim,
                    rt_reject *why)
{
    rt_event_clear(ev);
    ev->raw = raw;
    ev->raw_len = len;
    if (len > lim->max_bytes) {
        rt_reject_set(why, RT_REASON_TOO_LARGE,
                      "event is %zu bytes, event.max.bytes is %zu", len,
                      lim->max_bytes);
        return -1;
    }
    rt_jerror jerr;
    if (rt_jtape_parse(&ev->tape, raw, len, &jerr) < 0) {
        rt_reject_set(why, jerr.too_deep ? RT_REASON_TOO_DEEP : RT_REASON_BAD_JSON,
                      "column %zu: %s", jerr.column, jerr.text);
        return -1;
    }
    ev->decoded = 1;
    /* On failure the tape stays, so the dead letter can still name the eventId;
     * the caller clears the event in every case. */
    return validate(ev, lim, why);
}

const char *rt_event_key(const rt_event *ev, const char *path, char *buf, size_t len,
                         size_t *klen)
{
    const rt_jtape *t = &ev->tape;
    long v = ev->decoded ? rt_jtape_at(t, 0, path) : -1;
    int n;
    switch (v >= 0 ? (enum rt_jtype)t->v[v].type : RT_JNULL) {
    case RT_JSTRING:
        *klen = t->v[v].len;
        return rt_jtape_str(t, (uint32_t)v);
    case RT_JINT:
        n = snprintf(buf, len, "%lld", t->v[v].num.i);
        break;
    case RT_JREAL:
        n = snprintf(buf, len, "%.17g", t->v[v].num.d);
        break;
    case RT_JTRUE:
    case RT_JFALSE:
        n = snprintf(buf, len, "%s", t->v[v].type == RT_JTRUE ? "true" : "false");
        break;
    default:
        return NULL;
    }
    *klen = (size_t)n;
    return buf;
}

void rt_event_clear(rt_event *ev)
{
    rt_jtape_reset(&ev->tape);
    ev->decoded = 0;
    ev->payload = 0;
    ev->timestamp = 0;
    ev->domain = ev->type = ev->event_id = ev->version = ev->source = NULL;
}

void rt_event_free(rt_event *ev)
{
    rt_event_clear(ev);
    rt_jtape_free(&ev->tape);
}
