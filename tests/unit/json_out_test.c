/* json_out_test.c - rt_json_put_string: a table of strings with the exact text each must
 * give, a table of malformed UTF-8 with the offset each must be refused at (leaving the
 * buffer as it was), and random strings, whose verdict must be jansson's json_stringn's
 * (dead letters chose between a string and base64 with it) and whose text jansson must
 * read back as the same bytes. */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "json_out.h"
#include "unit.h"

typedef struct good {
    const char *name, *in;
    size_t len;             /* 0: strlen(in) */
    const char *out;
} good;

static const good goods[] = {
    { "empty", "", 0, "\"\"" },
    { "plain", "abc", 0, "\"abc\"" },
    { "quote and backslash", "a\"b\\c", 0, "\"a\\\"b\\\\c\"" },
    { "short escapes", "\n\r\t\b\f", 0, "\"\\n\\r\\t\\b\\f\"" },
    { "other controls", "\x01\x1f", 0, "\"\\u0001\\u001f\"" },
    { "NUL inside", "a\0b", 3, "\"a\\u0000b\"" },
    { "DEL and slash as they are", "\x7f/", 0, "\"\x7f/\"" },
    { "2, 3 and 4 byte UTF-8", "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 0,
      "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"" },
    { "escape at the end of a word", "1234567\"", 0, "\"1234567\\\"\"" },
    { "escape right after a word", "12345678\"x", 0, "\"12345678\\\"x\"" },
    { "UTF-8 across a word", "1234567\xc3\xa9z", 0, "\"1234567\xc3\xa9z\"" },
    { "long plain run", "abcdefghijklmnopqrstuvwxyz0123456789", 0,
      "\"abcdefghijklmnopqrstuvwxyz0123456789\"" },
};

typedef struct bad {
    const char *name, *in;
    size_t at;
} bad;

static const bad bads[] = {
    { "lone continuation byte", "ab\x80", 2 },
    { "overlong 2-byte", "\xc0\x80", 0 },
    { "overlong 3-byte", "x\xe0\x80\x80", 1 },
    { "surrogate", "12345678\xed\xa0\x80", 8 },
    { "past U+10FFFF", "\xf4\x90\x80\x80", 0 },
    { "F5 lead byte", "\xf5\x80\x80\x80", 0 },
    { "sequence cut at the end", "euro \xe2\x82", 5 },
    { "lead byte then ASCII", "\xc3(", 0 },
};

static void check_goods(void)
{
    for (size_t i = 0; i < sizeof goods / sizeof *goods; i++) {
        const good *g = &goods[i];
        size_t len = g->len ? g->len : strlen(g->in), at = 99;
        rt_buf b = { 0 };
        rt_buf_append(&b, "x", 1);      /* appended after what is there */
        int rc = rt_json_put_string(&b, g->in, len, &at);
        unit_check(rc == 0 && b.len == 1 + strlen(g->out) &&
                   memcmp(b.data + 1, g->out, b.len - 1) == 0,
                   "json_out: %s", g->name);
        rt_buf_free(&b);
    }
}

static void check_bads(void)
{
    for (size_t i = 0; i < sizeof bads / sizeof *bads; i++) {
        const bad *x = &bads[i];
        size_t at = 99;
        rt_buf b = { 0 };
        rt_buf_append(&b, "keep", 4);
        int rc = rt_json_put_string(&b, x->in, strlen(x->in), &at);
        unit_check(rc == -1 && at == x->at && b.len == 4 && memcmp(b.data, "keep", 4) == 0,
                   "json_out: %s refused at byte %zu (got rc %d at %zu)", x->name, x->at, rc,
                   at);
        rt_buf_free(&b);
    }
}

/* Random strings, mostly ASCII with escapes, some high bytes (often malformed). */
static void check_random(void)
{
    unsigned agree = 0, valid = 0, read_back = 0;
    const unsigned n = 20000;
    srand(42);
    for (unsigned k = 0; k < n; k++) {
        char s[40];
        size_t len = (size_t)(rand() % 40), at;
        for (size_t i = 0; i < len; i++) {
            int r = rand() % 100;
            s[i] = (char)(r < 70 ? 0x20 + rand() % 95 : r < 80 ? rand() % 0x20
                          : 0x80 + rand() % 0x80);
        }
        json_t *j = json_stringn(s, len);
        rt_buf b = { 0 };
        int rc = rt_json_put_string(&b, s, len, &at);
        agree += (rc == 0) == (j != NULL);
        if (rc == 0) {
            valid++;
            json_error_t e;
            json_t *back = json_loadb(b.data, b.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
            read_back += back && json_is_string(back) && json_string_length(back) == len &&
                         memcmp(json_string_value(back), s, len) == 0;
            json_decref(back);
        }
        json_decref(j);
        rt_buf_free(&b);
    }
    unit_check(agree == n, "json_out: %u random strings, valid UTF-8 exactly when jansson "
               "says so (%u agree)", n, agree);
    unit_check(valid > n / 10 && valid < n, "json_out: random strings both valid and not "
               "(%u valid)", valid);
    unit_check(read_back == valid, "json_out: jansson reads every valid one back as the same "
               "bytes (%u of %u)", read_back, valid);
}

int main(void)
{
    check_goods();
    check_bads();
    check_random();
    return unit_exit();
}
