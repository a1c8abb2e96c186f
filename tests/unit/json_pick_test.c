/* json_pick_test.c - data-driven cases for runtime/core/json_pick.c: each case picks the
 * paths "id", "n", "p.k" and "p" from a text and shows what it found as
 * kind:value per path (unescaped for strings; "-" absent), or "error". Every valid case
 * is checked against jansson too, so the scanner accepts and rejects what jansson does. */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "json_pick.h"

static const struct {
    const char *name, *text, *want;
} cases[] = {
    { "plain record", "{\"id\":\"a1\",\"n\":12.5,\"p\":{\"k\":\"x\"}}",
      "s:a1 n:12.5 s:x o:{\"k\":\"x\"}" },
    { "absent fields", "{\"id\":\"a\"}", "s:a - - -" },
    { "null and booleans", "{\"id\":null,\"n\":true,\"p\":{\"k\":false}}",
      "z:null t:true f:false o:{\"k\":false}" },
    { "whitespace everywhere", " { \"id\" : 7 ,\n\"p\" : { \"k\" : [ 1 , 2 ] } } ",
      "n:7 - a:[ 1 , 2 ] o:{ \"k\" : [ 1 , 2 ] }" },
    { "escapes decoded", "{\"id\":\"a\\\"b\\\\c\\/d\\n\\u00e9\\ud83d\\ude00\"}",
      "s:a\"b\\c/d\n\xc3\xa9\xf0\x9f\x98\x80 - - -" },
    { "escaped key matches", "{\"\\u0069d\":\"x\"}", "s:x - - -" },
    { "last duplicate wins", "{\"id\":1,\"id\":2}", "n:2 - - -" },
    { "a later p without k clears p.k", "{\"p\":{\"k\":1},\"p\":{}}", "- - - o:{}" },
    { "p not an object", "{\"p\":\"k\"}", "- - - s:k" },
    { "nested fields skipped", "{\"x\":{\"id\":9,\"y\":[{\"n\":1}]},\"n\":-0.5e+3}",
      "- n:-0.5e+3 - -" },
    { "empty containers", "{\"id\":{},\"n\":[]}", "o:{} a:[] - -" },
    { "not an object", "[1]", "error" },
    { "trailing garbage", "{\"id\":1} x", "error" },
    { "missing colon", "{\"id\" 1}", "error" },
    { "trailing comma", "{\"id\":1,}", "error" },
    { "unterminated string", "{\"id\":\"abc}", "error" },
    { "control character in string", "{\"id\":\"a\tb\"}", "error" },
    { "bad escape", "{\"id\":\"\\x\"}", "error" },
    { "short unicode escape", "{\"id\":\"\\u12\"}", "error" },
    { "leading zero", "{\"n\":012}", "error" },
    { "bare minus", "{\"n\":-}", "error" },
    { "fraction without digits", "{\"n\":1.}", "error" },
    { "exponent without digits", "{\"n\":1e}", "error" },
    { "bad literal", "{\"n\":nul}", "error" },
    { "unclosed array", "{\"n\":[1,2}", "error" },
    { "array missing comma", "{\"n\":[1 2]}", "error" },
    { "empty text", "", "error" },
};

static const char *const paths[] = { "id", "n", "p.k", "p" };

static void show(char *out, size_t cap, const char *text)
{
    rt_json_span v[4];
    if (rt_json_pick(text, strlen(text), paths, 4, v) < 0) {
        snprintf(out, cap, "error");
        return;
    }
    size_t n = 0;
    for (int i = 0; i < 4 && n < cap; i++) {
        const char *sep = i ? " " : "";
        if (v[i].kind == RT_JSON_ABSENT) {
            n += (size_t)snprintf(out + n, cap - n, "%s-", sep);
            continue;
        }
        rt_buf b = { 0 };
        int rc = v[i].kind == RT_JSON_STRING ? rt_json_unescape(&b, v[i].at, v[i].len)
                                             : rt_buf_append(&b, v[i].at, v[i].len);
        n += (size_t)snprintf(out + n, cap - n, "%s%c:%.*s", sep, "-zftnsoa"[v[i].kind],
                              rc < 0 ? 5 : (int)b.len, rc < 0 ? "ERROR" : b.data);
        rt_buf_free(&b);
    }
}

int main(void)
{
    int failed = 0;
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        char got[512];
        show(got, sizeof got, cases[c].text);
        int ok = strcmp(got, cases[c].want) == 0;
        printf("%s - json_pick: %s\n", ok ? "ok" : "FAIL", cases[c].name);
        if (!ok)
            printf("#   want %s\n#   got  %s\n", cases[c].want, got);
        /* jansson must agree on whether the text is one JSON object. */
        json_t *j = json_loads(cases[c].text, JSON_DECODE_ANY, NULL);
        int valid = j && json_is_object(j);
        json_decref(j);
        int agree = valid == (strcmp(got, "error") != 0);
        printf("%s - json_pick agrees with jansson: %s\n", agree ? "ok" : "FAIL", cases[c].name);
        failed += !ok + !agree;
    }
    /* Nesting within the limit is fine; deeper is refused, not a stack overflow. */
    static const struct { int depth, accepted; } deep[] = { { 100, 1 }, { 2000, 0 } };
    for (size_t d = 0; d < 2; d++) {
        static char text[4200];
        size_t n = (size_t)snprintf(text, sizeof text, "{\"x\":");
        for (int i = 0; i < deep[d].depth; i++)
            text[n++] = '[';
        for (int i = 0; i < deep[d].depth; i++)
            text[n++] = ']';
        text[n++] = '}';
        rt_json_span v[4];
        int ok = (rt_json_pick(text, n, paths, 4, v) == 0) == deep[d].accepted;
        printf("%s - json_pick: nesting %d deep is %s\n", ok ? "ok" : "FAIL", deep[d].depth,
               deep[d].accepted ? "accepted" : "refused");
        failed += !ok;
    }
    return failed ? 1 : 0;
}
