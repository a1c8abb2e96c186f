/* json_tape_test.c - the tape decoder against jansson, which decoded records before it:
 * a table of valid and invalid inputs, then thousands of random mutations of real
 * records. Each input must be accepted by both or refused by both (with a too_deep
 * exactly when jansson overflowed its stack), and what both accept must hold the same
 * values. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "json_load.h"
#include "json_tape.h"
#include "unit.h"

/* 1 when node i of t holds what v holds. */
static int same(const rt_jtape *t, uint32_t i, const json_t *v)
{
    const rt_jnode *n = &t->v[i];
    switch (n->type) {
    case RT_JNULL: return json_is_null(v);
    case RT_JTRUE: return json_is_true(v);
    case RT_JFALSE: return json_is_false(v);
    case RT_JINT: return json_is_integer(v) && json_integer_value(v) == n->num.i;
    case RT_JREAL:
        return json_is_real(v) && (json_real_value(v) == n->num.d ||
                                   (isnan(n->num.d) && isnan(json_real_value(v))));
    case RT_JSTRING:
        return json_is_string(v) && json_string_length(v) == n->len &&
               memcmp(json_string_value(v), rt_jtape_str(t, i), n->len) == 0;
    case RT_JARRAY: {
        if (!json_is_array(v) || json_array_size(v) != n->len)
            return 0;
        uint32_t j = i + 1;
        for (uint32_t m = 0; m < n->len; m++) {
            if (!same(t, j, json_array_get(v, m)))
                return 0;
            j = t->v[j].next;
        }
        return j == n->next;
    }
    case RT_JOBJECT: {
        if (!json_is_object(v) || json_object_size(v) != n->len)
            return 0;
        uint32_t k = i + 1;
        for (uint32_t m = 0; m < n->len; m++) {
            json_t *item = json_object_getn(v, rt_jtape_str(t, k), t->v[k].len);
            if (!item || !same(t, k + 1, item))
                return 0;
            k = t->v[k + 1].next;
        }
        return k == n->next;
    }
    }
    return 0;
}

/* 1 when the tape and jansson agree on s. */
static int agree(rt_jtape *t, const char *s, size_t len, char *why, size_t whylen)
{
    json_error_t jerr;
    rt_jerror err;
    json_t *v = rt_json_loadb(s, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    int ok = rt_jtape_parse(t, s, len, &err) == 0, rc;
    if (!v && !ok)
        rc = (json_error_code(&jerr) == json_error_stack_overflow) == err.too_deep;
    else if (v && !ok && memchr(s, '\0', len))
        rc = 1;     /* jansson skips a raw NUL after a number or literal ("[1\0]"); JSON
                     * has no NUL outside strings, and the tape refuses it */
    else
        rc = v && ok && same(t, 0, v);
    snprintf(why, whylen, "jansson %s (%s), tape %s (%s)", v ? "accepts" : "refuses",
             v ? "" : jerr.text, ok ? "accepts" : "refuses", ok ? "" : err.text);
    json_decref(v);
    return rc;
}

static const char *const cases[] = {
    "{}", "[]", " {\"a\" : [1, 2.5, -0, 1e2, true, false, null, \"x\"]}\r\n",
    "{\"domain\":\"order\",\"type\":\"a\",\"timestamp\":1,\"eventId\":\"e\",\"payload\":{}}",
    "{\"s\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\u20ac\\ud83d\\ude00\"}",
    "{\"nul\":\"a\\u0000b\"}", "{\"a\\u0000\":1}", "{\"x\":\"\\ud800\"}",
    "{\"x\":\"\\udc00\"}", "{\"x\":\"\\ud800\\u0041\"}", "{\"x\":\"\\u12g4\"}", "{\"x\":\"\\q\"}",
    "{\"x\":\"caf\xc3\xa9\"}", "{\"x\":\"\xc3\"}", "{\"x\":\"\xc0\xaf\"}", "{\"x\":\"\xed\xa0\x80\"}",
    "{\"x\":\"\xf4\x90\x80\x80\"}", "{\"x\":\"\xf0\x9f\x98\x80\"}", "{\"x\":\"\xe0\x80\xaf\"}",
    "{\"x\":\"tab\there\"}", "{\"x\":1}x", "{\"x\":1}}", "", "   ", "1", "\"s\"", "null",
    "[01]", "[1.]", "[.5]", "[-]", "[1e]", "[1e+]", "[-01]", "[1.5e-400]", "[1e400]",
    "[-1e400]", "[123456789012345678901234567890]", "[-9223372036854775808]",
    "[9223372036854775807]", "[9223372036854775808]", "[-9223372036854775809]",
    "[1,]", "[,1]", "{,}", "{\"a\":1,}", "{\"a\" 1}", "{\"a\":}", "{1:2}", "[tru]", "[nul]",
    "[true false]", "{\"a\":1,\"a\":2}", "{\"a\":{\"b\":1,\"b\":1}}",
    "{\"k1\":1,\"k2\":2,\"k3\":3,\"k4\":4,\"k5\":5,\"k6\":6,\"k7\":7,\"k8\":8,\"k9\":9,"
    "\"k10\":10,\"k11\":11,\"k12\":12,\"k13\":13,\"k14\":14,\"k15\":15,\"k16\":16,\"k17\":17,"
    "\"k18\":18,\"k19\":19,\"k5\":20}",
    "{\"k1\":1,\"k2\":2,\"k3\":3,\"k4\":4,\"k5\":5,\"k6\":6,\"k7\":7,\"k8\":8,\"k9\":9,"
    "\"k10\":10,\"k11\":11,\"k12\":12,\"k13\":13,\"k14\":14,\"k15\":15,\"k16\":16,\"k17\":17,"
    "\"k18\":18,\"k19\":19,\"k20\":20}",
    "{\"\":1,\"\\u0061\":2,\"a\":3}", "[\"unterminated]", "{\"a\":\"b", "[[[]]",
    /* Keys alike in length and first 7 bytes (one word), then in their bytes. */
    "{\"payloadA\":1,\"payloadB\":2}", "{\"payload_x\":1,\"payload_x\":2}",
    "{\"payload\":1,\"payloads\":2,\"payload\":3}", "{\"a\\u0000b\":1,\"a\\u0000c\":2}",
    /* Integers around the 18 digits read without an overflow check. */
    "[999999999999999999]", "[-999999999999999999]", "[1000000000000000000]",
    "[9999999999999999999]", "[-1000000000000000000]",
};

/* Records like the ones eddy reads, mutated at random below. */
static const char *const seeds[] = {
    "{\"domain\":\"order\",\"type\":\"order_pay\",\"timestamp\":1700000000000,\"eventId\":"
    "\"e-1\",\"version\":\"1\",\"source\":\"shop\",\"payload\":{\"orderId\":\"o-1\",\"amount\":"
    "12.5,\"items\":[{\"sku\":\"a\",\"qty\":2},{\"sku\":\"b\\u00e9\",\"qty\":-1}],\"paid\":"
    "true,\"note\":null,\"big\":9007199254740993}}",
    "{\"domain\":\"geofence\",\"type\":\"location\",\"timestamp\":1,\"eventId\":\"g\","
    "\"payload\":{\"deviceId\":\"d-7\",\"lat\":31.2304,\"lon\":121.4737,\"tags\":[[],{},"
    "[1,[2,[3]]]],\"s\":\"line\\nbreak \\\"quoted\\\" \\ud83d\\ude00\"}}",
};

int main(void)
{
    rt_jtape t = { 0 };
    char why[400];
    int bad = 0;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        if (!agree(&t, cases[i], strlen(cases[i]), why, sizeof why) && bad++ < 5)
            printf("# disagree on %s: %s\n", cases[i], why);
    unit_check(bad == 0, "json tape: %zu hand-written inputs decoded as jansson did "
               "(%d disagree)", sizeof cases / sizeof *cases, bad);

    rt_jerror nul_err;
    int nul_rc = rt_jtape_parse(&t, "[1\0]", 4, &nul_err);
    unit_check(nul_rc < 0 && nul_err.column == 3,
               "json tape: a raw NUL outside a string is refused at its column (%zu: %s)",
               nul_err.column, nul_err.text);

    /* Nesting at and past the limit, both ways round. */
    for (int depth = 2046; depth <= 2050; depth++) {
        size_t len = (size_t)depth * 2;
        char *s = malloc(len);
        if (!s)
            return 1;
        memset(s, '[', (size_t)depth);
        memset(s + depth, ']', (size_t)depth);
        if (!agree(&t, s, len, why, sizeof why) && bad++ < 10)
            printf("# disagree at depth %d: %s\n", depth, why);
        free(s);
    }
    unit_check(bad == 0, "json tape: nesting around 2048 is refused (too_deep) where "
               "jansson refused it");

    /* Random byte mutations of real records: replaced, inserted or deleted bytes. */
    srand(7);
    int rounds = 20000, accepted = 0;
    bad = 0;
    for (int r = 0; r < rounds; r++) {
        const char *seed = seeds[r % 2];
        size_t len = strlen(seed);
        char buf[1024];
        memcpy(buf, seed, len);
        for (int m = 0, n = 1 + rand() % 3; m < n; m++) {
            size_t at = (size_t)rand() % len;
            int op = rand() % 3;
            const char pick[] = "{}[]\",:\\u0e9-+.1 \x00\xc3\xa9\xff" "aenlrtf";
            char c = rand() % 2 ? pick[rand() % (int)(sizeof pick - 1)] : (char)(rand() % 256);
            if (op == 0) {
                buf[at] = c;
            } else if (op == 1 && len + 1 < sizeof buf) {
                memmove(buf + at + 1, buf + at, len - at);
                buf[at] = c;
                len++;
            } else if (len > 1) {
                memmove(buf + at, buf + at + 1, len - at - 1);
                len--;
            }
        }
        json_error_t jerr;
        json_t *v = rt_json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
        accepted += v != NULL;
        json_decref(v);
        if (!agree(&t, buf, len, why, sizeof why) && bad++ < 5)
            printf("# disagree on %.*s: %s\n", (int)len, buf, why);
    }
    unit_check(bad == 0 && accepted > 100 && accepted < rounds - 100,
               "json tape: %d random mutations of records decoded as jansson did (%d "
               "accepted, %d disagree)", rounds, accepted, bad);

    /* Numbers: the fast path for short decimals must give strtod's double, bit for bit,
     * and hand the rest (long mantissas, far exponents, subnormals) on. */
    srand(11);
    bad = 0;
    int numbers = 20000;
    for (int r = 0; r < numbers; r++) {
        char buf[128];
        int len = snprintf(buf, sizeof buf, "[%s", rand() % 4 ? "" : "-");
        int digits = 1 + rand() % (r % 3 ? 17 : 25);
        for (int d = 0; d < digits; d++)
            buf[len++] = (char)('0' + (d == 0 && digits > 1 ? 1 + rand() % 9 : rand() % 10));
        if (rand() % 4) {
            buf[len++] = '.';
            for (int d = 0, n = 1 + rand() % 18; d < n; d++)
                buf[len++] = (char)('0' + rand() % 10);
        }
        if (rand() % 3 == 0)
            len += snprintf(buf + len, sizeof buf - (size_t)len, "e%s%d",
                            rand() % 2 ? "-" : (rand() % 2 ? "+" : ""), rand() % 330);
        buf[len++] = ']';
        if (!agree(&t, buf, (size_t)len, why, sizeof why) && bad++ < 5)
            printf("# disagree on %.*s: %s\n", len, buf, why);
    }
    unit_check(bad == 0, "json tape: %d random numbers decoded to jansson's (strtod's) "
               "values (%d disagree)", numbers, bad);

    /* Strings copied a word at a time: every byte that ends the plain run (quote,
     * backslash, control, UTF-8) at every position of a word, after runs of every
     * length. */
    static const char *const stops[] = { "\\\"", "\\\\", "\\n", "\\u00e9", "\xc3\xa9",
                                         "\xe2\x82\xac", "\x1f", "\x7f", "\xff", "\"" };
    bad = 0;
    int strings = 0;
    for (size_t k = 0; k < sizeof stops / sizeof *stops; k++)
        for (int pre = 0; pre < 20; pre++)
            for (int post = 0; post < 12; post += 3) {
                char buf[128];
                int len = snprintf(buf, sizeof buf, "{\"k%.*s\":\"%.*s%s%.*s\"}", pre % 9,
                                   "abcdefghi", pre, "ABCDEFGHIJKLMNOPQRST", stops[k], post,
                                   "0123456789ab");
                strings++;
                if (!agree(&t, buf, (size_t)len, why, sizeof why) && bad++ < 5)
                    printf("# disagree on %.*s: %s\n", len, buf, why);
            }
    unit_check(bad == 0, "json tape: %d strings with a special byte at each offset of a "
               "word decoded as jansson did (%d disagree)", strings, bad);

    /* Duplicate keys: objects of 2 to 20 keys (the pairwise path and the hashed one),
     * with key j a copy of key i for every i < j, and with no copy at all but keys that
     * share their length, first, middle and last bytes (the word compared first). */
    bad = 0;
    int objects = 0;
    for (int n = 2; n <= 20; n++)
        for (int i = -1; i < n; i++)
            for (int j = i + 1; j < n; j += i < 0 ? n : 1) {
                char buf[512];
                int len = snprintf(buf, sizeof buf, "{");
                for (int k = 0; k < n; k++)
                    len += snprintf(buf + len, sizeof buf - (size_t)len, "%s\"a%cb%cz\":%d",
                                    k ? "," : "", 'A' + (k == j && i >= 0 ? i : k) % 26,
                                    'a' + (k == j && i >= 0 ? i : k) / 26, k);
                len += snprintf(buf + len, sizeof buf - (size_t)len, "}");
                objects++;
                if (!agree(&t, buf, (size_t)len, why, sizeof why) && bad++ < 5)
                    printf("# disagree on %.*s: %s\n", len, buf, why);
            }
    unit_check(bad == 0 && objects > 1000, "json tape: %d objects with and without a "
               "duplicate key refused and accepted as jansson does (%d disagree)", objects, bad);

    /* Lookups the envelope and the windows use. */
    const char *rec = seeds[0];
    int parsed = rt_jtape_parse(&t, rec, strlen(rec), &(rt_jerror){ 0 }) == 0;
    long ts = parsed ? rt_jtape_get(&t, 0, "timestamp", 9) : -1;
    long sku = parsed ? rt_jtape_at(&t, 0, "payload.orderId") : -1;
    unit_check(ts > 0 && t.v[ts].type == RT_JINT && t.v[ts].num.i == 1700000000000LL &&
               sku > 0 && strcmp(rt_jtape_str(&t, (uint32_t)sku), "o-1") == 0 &&
               rt_jtape_at(&t, 0, "payload.missing") == -1 &&
               rt_jtape_at(&t, 0, "payload.orderId.x") == -1,
               "json tape: members by name and by dotted path");
    rt_jtape_free(&t);
    return unit_exit();
}
