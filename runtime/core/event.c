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

/* The envelope's members, found in one pass over the record's top object rather than
 * one search a field. */
enum { F_DOMAIN, F_TYPE, F_EVENT_ID, F_TIMESTAMP, F_PAYLOAD, F_VERSION, F_SOURCE, NFIELDS };
static const struct {
    const char *name;
    uint32_t len;
} fields[NFIELDS] = {
    [F_DOMAIN] = { "domain", 6 }, [F_TYPE] = { "type", 4 }, [F_EVENT_ID] = { "eventId", 7 },
    [F_TIMESTAMP] = { "timestamp", 9 }, [F_PAYLOAD] = { "payload", 7 },
    [F_VERSION] = { "version", 7 }, [F_SOURCE] = { "source", 6 },
};

/* 1 if the n bytes at k are `name`: n is a constant at each use, so the compare is
 * inlined (a call to memcmp for each of a record's keys showed in perf). */
#define IS(k, name, n) (memcmp((k), (name), (n)) == 0)

/* The field a key names, or -1: by its length and first letter, then all of it. */
static int field_of(const char *k, uint32_t len)
{
    int f;
    switch (len) {
    case 4: return IS(k, "type", 4) ? F_TYPE : -1;
    case 6: f = k[0] == 'd' ? F_DOMAIN : F_SOURCE; return IS(k, fields[f].name, 6) ? f : -1;
    case 7:
        f = k[0] == 'e' ? F_EVENT_ID : k[0] == 'p' ? F_PAYLOAD : F_VERSION;
        return IS(k, fields[f].name, 7) ? f : -1;
    case 9: return IS(k, "timestamp", 9) ? F_TIMESTAMP : -1;
    }
    return -1;
}

/* at[f]: the value node of field f, or -1. Keys are unique (the tape refuses
 * duplicates). */
static void find_fields(const rt_jtape *t, long at[NFIELDS])
{
    for (int f = 0; f < NFIELDS; f++)
        at[f] = -1;
    uint32_t k = 1;
    for (uint32_t m = 0; m < t->v[0].len; m++) {
        int f = field_of(rt_jtape_str(t, k), t->v[k].len);
        if (f >= 0)
            at[f] = (long)k + 1;
        k = t->v[k + 1].next;
    }
}

/* A string field: required ones must be present and non-empty. NULL leaves *out NULL. */
static int string_field(rt_event *ev, const long at[NFIELDS], int f, int required,
                        const char **out, rt_reject *why)
{
    const rt_jtape *t = &ev->tape;
    const char *name = fields[f].name;
    long v = at[f];
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
    if (required && (len == 0 || memchr(s, '\0', len))) {
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
    long at[NFIELDS];
    find_fields(t, at);
    if (string_field(ev, at, F_DOMAIN, 1, &ev->domain, why) < 0 ||
        string_field(ev, at, F_TYPE, 1, &ev->type, why) < 0 ||
        string_field(ev, at, F_EVENT_ID, 1, &ev->event_id, why) < 0)
        return -1;

    long ts = at[F_TIMESTAMP];
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

    long payload = at[F_PAYLOAD];
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
    if (string_field(ev, at, F_VERSION, 0, &ev->version, why) < 0 ||
        string_field(ev, at, F_SOURCE, 0, &ev->source, why) < 0)
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
