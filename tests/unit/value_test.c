/* value_test.c - Lua values as bytes and back (bindings/lb_value.c), data-driven: each
 * value must come back equal, with the same length (#) for its tables, and every
 * truncation and single-byte corruption of the bytes must be refused or load cleanly,
 * never read past them (run under ASan by make asan-test), leaving the stack as it was. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "bindings.h"
#include "unit.h"

/* Lua expressions: the values kept as keyed state and window accumulators. */
static const char *const values[] = {
    "nil", "true", "false", "0", "-1.5", "1e300", "2^53", "''", "'a\\0b'",
    "{}",
    "{1, 2, 3}",
    "{n = 3, out = 1, g = 'fence-1', f = { ['hz-airport'] = 2 }}",
    "{1, 2, 3, x = 'y', [true] = false}",
    "{[1] = 1, [2] = 2, [4] = 4}",                          /* a hole */
    "{[2] = 'b', [3] = 'c'}",                               /* no 1 */
    "{[0] = 'z', [-1] = 'n', [1.5] = 'f', [1e300] = 'big'}",
    "(function() local t = {} for i = 1, 1000 do t[i] = i * 2 end return t end)()",
    "(function() local t = {} for i = 1, 100 do t[i] = i; t['k' .. i] = {i} end return t end)()",
    "(function() local t = {} for i = 1, 300 do t['k' .. i] = i end return t end)()",
    "(function() local t = {} for i = 1, 50 do t[i * 3] = i end return t end)()",
    "(function() local t = 'leaf' for i = 1, 30 do t = { t, d = i } end return t end)()",
    "{ big = int64('9007199254740993'), list = { int64('-5'), 'x' } }",
};

/* merge = "sum" (lb_value_merge_sum): a, then the later b, and what must come out. */
static const char *const merges[][3] = {
    { "1", "2", "3" },
    { "1.5", "nil", "1.5" },
    { "nil", "{n = 1}", "{n = 1}" },
    { "nil", "nil", "nil" },
    { "'a'", "'b'", "'b'" },
    { "1", "'b'", "'b'" },
    { "{n = 1}", "7", "7" },
    { "int64('9007199254740993')", "int64('2')", "int64('9007199254740995')" },
    { "int64('5')", "2", "2" },
    { "{}", "{}", "{}" },
    { "{n = 3, out = 1, g = 'fence-1'}", "{n = 2, out = 0, g = 'fence-2'}",
      "{n = 5, out = 1, g = 'fence-2'}" },
    { "{n = 1, f = { a = 2 }}", "{n = 1, g = 'x', f = { a = 1, b = 4 }}",
      "{n = 2, g = 'x', f = { a = 3, b = 4 }}" },
    { "{n = 1, f = { a = 2 }}", "{n = 1}", "{n = 2, f = { a = 2 }}" },
    { "{1, 2, 3}", "{10, 20}", "{11, 22, 3}" },
    { "{x = true, y = {1}}", "{x = false, y = 'flat'}", "{x = false, y = 'flat'}" },
    { "{[1.5] = 1, [true] = 2}", "{[1.5] = 1, [false] = 3}",
      "{[1.5] = 2, [true] = 2, [false] = 3}" },
    /* more keys than are looked for one by one: sorted and searched */
    { "(function() local t = {} for i = 1, 40 do t['k' .. i] = i end return t end)()",
      "(function() local t = {} for i = 21, 60 do t['k' .. i] = 1 end return t end)()",
      "(function() local t = {} for i = 1, 60 do t['k' .. i] = (i <= 40 and i or 0) + "
      "(i > 20 and 1 or 0) end return t end)()" },
    { "(function() local t = 'leaf' for i = 1, 20 do t = { t, d = i } end return t end)()",
      "(function() local t = 'leaf' for i = 1, 20 do t = { t, d = 1 } end return t end)()",
      "(function() local t = 'leaf' for i = 1, 20 do t = { t, d = i + 1 } end return t end)()" },
};

/* Merges of more than two at once (the slices of a window that fires), and what must
 * come out: what merging them two at a time from the left gives. */
static const char *const merges_n[][6] = {
    { "{n = 1, g = 'a'}", "{n = 2, f = { x = 1 }}", "nil", "{n = 3, g = 'b', f = { x = 2, y = 1 }}",
      "{n = 6, g = 'b', f = { x = 3, y = 1 }}", NULL },
    { "1", "2", "'reset'", "4", "4", NULL },
    { "1", "nil", "2.5", "nil", "3.5", NULL },
    { "{n = 1}", "5", "{n = 2}", "{n = 3}", "{n = 5}", NULL },
    { "int64('9007199254740993')", "int64('1')", "int64('1')", "int64('9007199254740995')", NULL },
    { "nil", "nil", "nil", NULL },
    /* more pairs than are matched one by one: their keys sorted */
    { "(function() local t = {} for i = 1, 30 do t['k' .. i] = i end return t end)()",
      "(function() local t = {} for i = 11, 40 do t['k' .. i] = 1 end return t end)()",
      "(function() local t = {} for i = 21, 50 do t['k' .. i] = { i } end return t end)()",
      "(function() local t = {} for i = 1, 50 do t['k' .. i] = i <= 10 and i or i <= 20 "
      "and i + 1 or i <= 40 and { i } or { i } end return t end)()", NULL },
};

/* deep(a, b): equal values, tables compared key by key and by their length. */
static const char deep_lua[] =
    "local function deep(a, b)\n"
    "  if type(a) ~= 'table' or type(b) ~= 'table' then\n"
    "    return a == b or (type(a) == 'userdata' and tostring(a) == tostring(b))\n"
    "  end\n"
    "  if #a ~= #b then return false end\n"
    "  for k, v in pairs(a) do if not deep(v, b[k]) then return false end end\n"
    "  for k in pairs(b) do if a[k] == nil then return false end end\n"
    "  return true\n"
    "end\n"
    "return deep\n";

/* int64(text): the exact integer the bindings push for JSON past 2^53. */
static int int64_new(lua_State *L)
{
    lb_int64_push(L, strtoll(luaL_checkstring(L, 1), NULL, 10));
    return 1;
}

static int dump_top(lua_State *L)
{
    rt_buf *b = lua_touserdata(L, 1);
    lb_value_dump(L, 2, b, "test");
    return 0;
}

/* The bytes of the value at the top (popped); 0, or -1 when dump raised an error. */
static int dump(lua_State *L, rt_buf *b)
{
    b->len = 0;
    lua_pushcfunction(L, dump_top);
    lua_pushlightuserdata(L, b);
    lua_pushvalue(L, -3);
    int rc = lua_pcall(L, 2, 0, 0);
    if (rc)
        lua_pop(L, 1);
    lua_pop(L, 1);
    return rc ? -1 : 0;
}

/* The byte values a damaged byte is set to: every tag, and one that is none. */
static const char tags[] = { 'z', 'f', 't', 'n', 'i', 's', '{', '}', (char)0xff };

/* Push the value of a Lua expression; 0, or -1 (said, nothing pushed). */
static int push_expr(lua_State *L, const char *expr)
{
    char chunk[512];
    snprintf(chunk, sizeof chunk, "return %s", expr);
    if (luaL_dostring(L, chunk)) {
        printf("# %s: %s\n", expr, lua_tostring(L, -1));
        lua_pop(L, 1);
        return -1;
    }
    return 0;
}

/* 1 when the two values on top are deep-equal (deep at index `deep`); both popped. */
static int pop_equal(lua_State *L, int deep)
{
    lua_pushvalue(L, deep);
    lua_insert(L, -3);
    lua_call(L, 2, 1);
    int same = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return same;
}

/* 1 when the value's bytes load back equal. */
static int round_trip(lua_State *L, int deep, const char *expr, rt_buf *b)
{
    if (push_expr(L, expr) < 0)
        return 0;
    int top = lua_gettop(L);
    if (dump(L, b) < 0)
        return 0;
    (void)push_expr(L, expr);
    if (lb_value_load(L, b->data, b->len) < 0) {
        lua_pop(L, 1);
        return 0;
    }
    return pop_equal(L, deep) && lua_gettop(L) == top - 1;
}

/* The bytes of a Lua expression into b; 0, or -1. */
static int bytes_of(lua_State *L, const char *expr, rt_buf *b)
{
    return push_expr(L, expr) < 0 ? -1 : dump(L, b);
}

static int merge2(const char *a, size_t alen, const char *b, size_t blen, rt_buf *out)
{
    lb_span v[2] = { { a, alen }, { b, blen } };
    return lb_value_merge_sum(v, 2, out);
}

/* 1 when merging a's and b's bytes gives what `want` is, and no prefix of either, nor
 * a byte of either changed to each tag, makes the merge read past them (ASan) or
 * succeed on a truncation. */
static int merges_to(lua_State *L, int deep, const char *const m[3], rt_buf *a, rt_buf *b,
                     rt_buf *out)
{
    if (bytes_of(L, m[0], a) < 0 || bytes_of(L, m[1], b) < 0)
        return 0;
    out->len = 0;
    if (merge2(a->data, a->len, b->data, b->len, out) < 0 ||
        lb_value_load(L, out->data, out->len) < 0)
        return 0;
    if (push_expr(L, m[2]) < 0) {
        lua_pop(L, 1);
        return 0;
    }
    int ok = pop_equal(L, deep);
    for (int side = 0; side < 2; side++) {
        rt_buf *x = side ? b : a;
        for (size_t n = 0; n < x->len; n++) {
            out->len = 0;
            ok &= merge2(a->data, side ? a->len : n, b->data, side ? n : b->len, out) < 0;
        }
        for (size_t i = 0; i < x->len; i++) {
            char was = x->data[i];
            for (size_t t = 0; t < sizeof tags; t++) {
                x->data[i] = tags[t];
                out->len = 0;
                (void)merge2(a->data, a->len, b->data, b->len, out);
            }
            x->data[i] = was;
        }
    }
    return ok;
}

/* 1 when merging v[0..n) at once (into *all) and two at a time from the left (into
 * *acc, step the scratch) both succeed and give the same bytes. */
static int same_as_two_at_a_time(const lb_span *v, size_t n, rt_buf *all, rt_buf *step,
                                 rt_buf *acc)
{
    all->len = acc->len = 0;
    if (lb_value_merge_sum(v, n, all) < 0 || rt_buf_append(acc, v[0].p, v[0].len) < 0)
        return 0;
    for (size_t i = 1; i < n; i++) {
        step->len = 0;
        if (merge2(acc->data, acc->len, v[i].p, v[i].len, step) < 0)
            return 0;
        acc->len = 0;
        if (rt_buf_append(acc, step->data, step->len) < 0)
            return 0;
    }
    return all->len == acc->len && memcmp(all->data, acc->data, all->len) == 0;
}

/* 1 when merging the values of m (up to the last, the one wanted) at once gives both
 * what is wanted and, byte for byte, what merging them two at a time from the left
 * gives; and no truncation of one of them is taken. */
static int merges_n_to(lua_State *L, int deep, const char *const *m)
{
    enum { MAX = 5 };
    rt_buf in[MAX] = { { 0 } }, all = { 0 }, step = { 0 }, acc = { 0 };
    lb_span v[MAX];
    size_t n = 0;
    int ok = 0;
    while (m[n + 1] && n < MAX)
        n++;
    for (size_t i = 0; i < n; i++) {
        if (bytes_of(L, m[i], &in[i]) < 0)
            goto out;
        v[i] = (lb_span){ in[i].data, in[i].len };
    }
    if (!same_as_two_at_a_time(v, n, &all, &step, &acc) ||
        lb_value_load(L, all.data, all.len) < 0)
        goto out;
    if (push_expr(L, m[n]) < 0) {
        lua_pop(L, 1);
        goto out;
    }
    ok = pop_equal(L, deep);
    for (size_t i = 0; i < n; i++)
        for (size_t cut = 0; cut < in[i].len; cut++) {
            v[i].len = cut;
            all.len = 0;
            ok &= lb_value_merge_sum(v, n, &all) < 0;
            v[i].len = in[i].len;
        }
out:
    for (size_t i = 0; i < MAX; i++)
        rt_buf_free(&in[i]);
    rt_buf_free(&all);
    rt_buf_free(&step);
    rt_buf_free(&acc);
    return ok;
}

/* Random accumulators from a small alphabet of keys and kinds (numbers, int64, strings,
 * booleans, nil, nested tables), so that keys repeat across the values and kinds change
 * between them; a deterministic sequence. */
static const char random_lua[] =
    "local seed = 12345\n"
    "local function rnd(n) seed = seed * 16807 % 2147483647 return seed % n + 1 end\n"
    "local keys = { 'n', 'out', 'g', 'f', 'x', 1, 2, 3, true }\n"
    "local function value(depth)\n"
    "  local k\n"
    "  if depth == 0 then k = rnd(8) == 1 and rnd(6) or 7\n"        /* mostly tables */
    "  else k = rnd(depth > 2 and 6 or 8) end\n"
    "  if k <= 2 then return rnd(100) / 4 end\n"
    "  if k == 3 then return int64(tostring(rnd(1000))) end\n"
    "  if k == 4 then return ('s' .. rnd(3)) end\n"
    "  if k == 5 then return rnd(2) == 1 end\n"
    "  if k == 6 then return nil end\n"
    "  local t = {}\n"
    "  for i = 1, rnd(depth == 0 and rnd(2) == 1 and 40 or 6) - 1 do\n"
    "    local key = rnd(4) == 1 and ('k' .. rnd(60)) or keys[rnd(#keys)]\n"
    "    t[key] = value(depth + 1)\n"
    "  end\n"
    "  return t\n"
    "end\n"
    "return function() return value(0) end\n";

/* Failures among `runs` random sequences of 2 to 5 values: merged at once against
 * merged two at a time, byte for byte. */
static int random_merges(lua_State *L, int runs)
{
    enum { MAX = 5 };
    rt_buf in[MAX] = { { 0 } }, all = { 0 }, step = { 0 }, acc = { 0 };
    lb_span v[MAX];
    int bad = 0;
    if (luaL_dostring(L, random_lua))
        return runs;
    int gen = lua_gettop(L);
    for (int r = 0; r < runs; r++) {
        size_t n = 2 + (size_t)r % (MAX - 1);
        for (size_t i = 0; i < n; i++) {
            lua_pushvalue(L, gen);
            lua_call(L, 0, 1);
            if (dump(L, &in[i]) < 0)
                goto out;
            v[i] = (lb_span){ in[i].data, in[i].len };
        }
        bad += !same_as_two_at_a_time(v, n, &all, &step, &acc);
    }
out:
    lua_settop(L, gen - 1);
    for (size_t i = 0; i < MAX; i++)
        rt_buf_free(&in[i]);
    rt_buf_free(&all);
    rt_buf_free(&step);
    rt_buf_free(&acc);
    return bad;
}

/* Every prefix of the bytes is refused; every byte changed to each tag (or 0xff)
 * loads or is refused. Either way the stack is as it was. The count of failures. */
static int damaged(lua_State *L, rt_buf *b)
{
    int bad = 0, top = lua_gettop(L);
    for (size_t n = 0; n < b->len; n++) {
        if (lb_value_load(L, b->data, n) == 0) {
            lua_pop(L, 1);
            bad++;
        }
        bad += lua_gettop(L) != top;
        lua_settop(L, top);
    }
    for (size_t i = 0; i < b->len; i++) {
        char was = b->data[i];
        for (size_t t = 0; t < sizeof tags; t++) {
            b->data[i] = tags[t];
            if (lb_value_load(L, b->data, b->len) == 0)
                lua_pop(L, 1);
            bad += lua_gettop(L) != top;
            lua_settop(L, top);
        }
        b->data[i] = was;
    }
    return bad;
}

int main(void)
{
    lua_State *L = luaL_newstate();
    rt_buf b = { 0 };
    if (!L)
        return 1;
    luaL_openlibs(L);
    lb_int64_open(L);
    lua_register(L, "int64", int64_new);
    if (luaL_dostring(L, deep_lua))
        return 1;
    int deep = lua_gettop(L);
    for (size_t i = 0; i < sizeof values / sizeof *values; i++)
        unit_check(round_trip(L, deep, values[i], &b), "value: %.60s comes back equal",
                   values[i]);
    rt_buf a = { 0 }, c = { 0 };
    for (size_t i = 0; i < sizeof merges / sizeof *merges; i++)
        unit_check(merges_to(L, deep, merges[i], &a, &b, &c), "merge sum: %.40s and %.40s",
                   merges[i][0], merges[i][1]);
    for (size_t i = 0; i < sizeof merges_n / sizeof *merges_n; i++)
        unit_check(merges_n_to(L, deep, merges_n[i]), "merge sum of many: %.30s, %.30s, ... "
                   "as two at a time", merges_n[i][0], merges_n[i][1]);
    unit_check(random_merges(L, 2000) == 0, "merge sum of many: 2,000 random sequences of 2 "
               "to 5 values give, byte for byte, what merging two at a time gives");
    rt_buf_free(&a);
    rt_buf_free(&c);
    /* The damaged forms of the richest value. */
    (void)luaL_dostring(L, "return {1, 2, 'three', x = { y = { 'z', true, 1.5 } }, [0] = false}");
    int dumped = dump(L, &b);
    unit_check(dumped == 0 && damaged(L, &b) == 0,
               "value: every truncation of %zu bytes is refused and no damaged byte "
               "unbalances the stack", b.len);
    rt_buf_free(&b);
    lua_close(L);
    return unit_exit();
}
