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

#include "clock.h"
#include "dlq.h"
#include "json_out.h"
#include "log.h"

/* Base64 of `in`, quoted, appended to b; 0 or -1 when out of memory. */
static int put_base64(rt_buf *b, const char *in, size_t len)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (rt_buf_reserve(b, (len + 2) / 3 * 4 + 2) < 0)
        return -1;
    char *o = b->data + b->len;
    const unsigned char *p = (const unsigned char *)in;
    *o++ = '"';
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < len) v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < len) v |= p[i + 2];
        *o++ = tab[v >> 18];
        *o++ = tab[(v >> 12) & 63];
        *o++ = i + 1 < len ? tab[(v >> 6) & 63] : '=';
        *o++ = i + 2 < len ? tab[v & 63] : '=';
    }
    *o++ = '"';
    b->len = (size_t)(o - b->data);
    return 0;
}

/* `{"key":` or `,"key":`: `first` opens the object. Keys are ours, plain ASCII. */
static int put_key(rt_buf *b, int first, const char *key)
{
    size_t n = strlen(key);
    if (rt_buf_reserve(b, n + 4) < 0)
        return -1;
    char *o = b->data + b->len;
    *o++ = first ? '{' : ',';
    *o++ = '"';
    memcpy(o, key, n);
    o += n;
    *o++ = '"';
    *o++ = ':';
    b->len = (size_t)(o - b->data);
    return 0;
}

/* Details quote input (the decoder's "near '...'", Lua messages), which may not be
 * UTF-8; a dead letter must still be written, so then every byte past ASCII is '?'. */
static int put_text(rt_buf *b, int first, const char *key, const char *s)
{
    size_t n = strlen(s), bad;
    if (put_key(b, first, key) < 0)
        return -1;
    if (rt_json_put_string(b, s, n, &bad) == 0)
        return 0;
    if (bad == n)
        return -1;
    char *copy = strdup(s);
    if (!copy)
        return -1;
    for (char *p = copy; *p; p++)
        if ((unsigned char)*p >= 0x80)
            *p = '?';
    int rc = rt_json_put_string(b, copy, n, &bad);
    free(copy);
    return rc;
}

static int put_int(rt_buf *b, const char *key, long long v)
{
    char num[24];
    int n = snprintf(num, sizeof num, "%lld", v);
    return put_key(b, 0, key) < 0 ? -1 : rt_buf_append(b, num, (size_t)n);
}

/* The exact bytes: a JSON string when they are UTF-8 (NULs escaped), else base64. */
static int put_raw(rt_buf *b, const char *raw, size_t len)
{
    size_t bad;
    if (put_key(b, 0, "raw") < 0)
        return -1;
    if (rt_json_put_string(b, raw, len, &bad) == 0)
        return 0;
    if (bad == len || put_base64(b, raw, len) < 0)
        return -1;
    return put_key(b, 0, "raw_encoding") < 0 ? -1 : rt_buf_append(b, "\"base64\"", 8);
}

static int put_origin(rt_buf *b, const rt_origin *o)
{
    if (put_key(b, 0, "origin") < 0)
        return -1;
    if (o->topic) {
        if (put_text(b, 1, "topic", o->topic) < 0 || put_int(b, "partition", o->partition) < 0 ||
            put_int(b, "offset", o->offset) < 0)
            return -1;
    } else if (put_text(b, 1, "file", o->file) < 0 || put_int(b, "line", o->line) < 0) {
        return -1;
    }
    return rt_buf_putc(b, '}');
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
    rt_buf text = { 0 };
    size_t kept = kept_raw(ev->raw, ev->raw_len, max_raw);
    if (s->raw_dead_letters) {
        rc = write_raw(s, ev, why, processor, ticket, kept);
        goto out;
    }
    /* Written directly, not through a jansson tree: a bad input file dead-letters a
     * record for every line, and the tree cost 40,000 instructions a record. */
    if (put_text(&text, 1, "reason", why->reason) < 0 ||
        put_text(&text, 0, "detail", why->detail) < 0 ||
        (processor && put_text(&text, 0, "processor", processor) < 0) ||
        (ev->event_id && put_text(&text, 0, "eventId", ev->event_id) < 0) ||
        put_origin(&text, &ev->origin) < 0 ||
        put_int(&text, "time", rt_epoch_ms()) < 0 ||
        put_raw(&text, ev->raw, kept) < 0 ||
        (kept < ev->raw_len && put_int(&text, "raw_truncated", (long long)ev->raw_len) < 0) ||
        rt_buf_putc(&text, '}') < 0)
        goto out;
    rt_out out = { ticket, ev->event_id, ev->event_id ? strlen(ev->event_id) : 0, NULL, 0, NULL };
    rc = rt_sink_write(s, text.data, text.len, &out);
out:
    if (rc < 0) {
        char where[512];
        rt_error("dead-letter write to sink %s failed (reason %s, %s)", s->name, why->reason,
                 rt_origin_text(&ev->origin, where, sizeof where));
    }
    rt_buf_free(&text);
    return rc;
}
