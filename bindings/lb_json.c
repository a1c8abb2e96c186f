/* lb_json.c - the `json` module, and the JSON conversions ctx.emit and ev.payload use.
 *
 * Encoding writes text straight from Lua values into a buffer, with no jansson tree in
 * between: this runs once per emitted record, so it is on the hot path. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "bindings.h"
#include "json_load.h"
#include "json_out.h"
#include "json_tape.h"

#define ARRAY_MT "eddy.json.array"
#define MAX_DEPTH 100
#define GUARD_MT "eddy.json.guard"

static void grow(lua_State *L, rt_buf *b, size_t n)
{
    if (rt_buf_reserve(b, n) < 0)
        luaL_error(L, "out of memory encoding JSON");
}

/* Called for every token, so the common case is one compare and a memcpy. */
static inline void put(lua_State *L, rt_buf *b, const char *s, size_t n)
{
    if (b->cap - b->len < n)
        grow(L, b, n);
    memcpy(b->data + b->len, s, n);
    b->len += n;
}

/* Decimal digits of v into the end of buf; returns the start. Two digits a division:
 * timestamps have 13. */
static char *digits(char *end, unsigned long long v)
{
    static const char pairs[] =
        "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
        "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
        "8081828384858687888990919293949596979899";
    while (v >= 100) {
        unsigned r = (unsigned)(v % 100);
        v /= 100;
        end -= 2;
        memcpy(end, pairs + 2 * r, 2);
    }
    if (v >= 10) {
        end -= 2;
        memcpy(end, pairs + 2 * v, 2);
    } else {
        *--end = (char)('0' + v);
    }
    return end;
}

static const double powers_of_ten[] = { 1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6 };

static void encode_number(lua_State *L, double d, rt_buf *b)
{
    char s[40];
    char *end = s + sizeof s, *p;
    if (isnan(d) || isinf(d))
        luaL_error(L, "cannot encode %s as JSON", isnan(d) ? "NaN" : "infinity");
    /* Fast path for the usual business numbers (ids, amounts, coordinates): the
     * fewest decimals k such that m / 10^k converts back to d. IEEE division is
     * correctly rounded, as is strtod, so the text reads back as the same double. */
    double a = fabs(d);
    if (a == 0 && signbit(d)) {
        put(L, b, "-0.0", 4);       /* "-0" would read back as the integer 0 */
        return;
    }
    if (a < 9007199254740992.0 && a == floor(a)) {
        p = digits(end, (unsigned long long)a);
        if (d < 0)
            *--p = '-';
        put(L, b, p, (size_t)(end - p));
        return;
    }
    if (a < 1e9) {
        for (int k = 0; k <= 6; k++) {
            double m = nearbyint(a * powers_of_ten[k]);
            if (m / powers_of_ten[k] != a)
                continue;
            unsigned long long v = (unsigned long long)m;
            p = end;
            for (int i = 0; i < k; i++, v /= 10)
                *--p = (char)('0' + v % 10);
            if (k)
                *--p = '.';
            p = digits(p, v);
            if (signbit(d) && m != 0)
                *--p = '-';
            put(L, b, p, (size_t)(end - p));
            return;
        }
    }
    int n;
    if (d == floor(d) && a < 1e15) {
        n = snprintf(s, sizeof s, "%lld", (long long)d);
    } else {
        /* The shorter of two precisions that reads back as the same double. */
        n = snprintf(s, sizeof s, "%.14g", d);
        if (strtod(s, NULL) != d)
            n = snprintf(s, sizeof s, "%.17g", d);
    }
    put(L, b, s, (size_t)n);
}

static void encode_string(lua_State *L, const char *s, size_t n, rt_buf *b)
{
    size_t bad;
    if (rt_json_put_string(b, s, n, &bad) < 0) {
        if (bad == n)
            luaL_error(L, "out of memory encoding JSON");
        luaL_error(L, "cannot encode string as JSON: invalid UTF-8 at byte %d", (int)bad + 1);
    }
}

/* An object key as `"key":`. The keys of what a processor emits are the same few
 * literal strings record after record, so their encoded form is kept per Lua state, by
 * the address of the interned string: a hit is one compare. The cached strings are held
 * in an anchor table (the cache's environment) so that none is collected while its slot
 * names it, and no other string can take its address. Keys whose encoded form is longer
 * than KEY_ENC are encoded each time. */
#define KEY_SLOTS 128
#define KEY_ENC 55

typedef struct key_slot {
    const char *at;             /* the Lua string's bytes, anchored while cached */
    unsigned char enclen;
    char enc[KEY_ENC];          /* "key": (quotes, escapes, colon) */
} key_slot;

typedef struct key_cache {
    key_slot slot[KEY_SLOTS];
} key_cache;

/* The registry key of a state's cache (a full userdata; lb_json_open makes it). */
static const char key_cache_tag;

static key_cache *key_cache_of(lua_State *L)
{
    lua_pushlightuserdata(L, (void *)&key_cache_tag);
    lua_rawget(L, LUA_REGISTRYINDEX);
    key_cache *kc = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return kc;
}

static void key_cache_open(lua_State *L)
{
    lua_pushlightuserdata(L, (void *)&key_cache_tag);
    key_cache *kc = lua_newuserdata(L, sizeof *kc);
    memset(kc, 0, sizeof *kc);
    lua_createtable(L, KEY_SLOTS, 0);   /* sized now: anchoring never allocates */
    lua_setfenv(L, -2);
    lua_rawset(L, LUA_REGISTRYINDEX);
}

/* The key is the string at stack index kidx. */
static void encode_key(lua_State *L, key_cache *kc, int kidx, const char *k, size_t n,
                       rt_buf *b)
{
    key_slot *e = NULL;
    if (kc) {
        e = &kc->slot[(((uintptr_t)k >> 3) * 0x9E3779B97F4A7C15ull) >> 57];
        if (e->at == k) {
            /* The whole slot's bytes at a constant size, then only enclen count: a copy
             * of variable size was compiled to `rep movsq`, whose start-up took 40% of
             * this file's time (perf) for these few bytes. */
            if (b->cap - b->len < KEY_ENC)
                grow(L, b, KEY_ENC);
            memcpy(b->data + b->len, e->enc, KEY_ENC);
            b->len += e->enclen;
            return;
        }
    }
    size_t start = b->len;
    encode_string(L, k, n, b);
    put(L, b, ":", 1);
    size_t enclen = b->len - start;
    if (!e || enclen > KEY_ENC)
        return;
    lua_pushlightuserdata(L, (void *)&key_cache_tag);
    lua_rawget(L, LUA_REGISTRYINDEX);
    lua_getfenv(L, -1);
    lua_pushvalue(L, kidx);
    lua_rawseti(L, -2, (int)(e - kc->slot) + 1);
    lua_pop(L, 2);
    e->at = k;
    e->enclen = (unsigned char)enclen;
    memcpy(e->enc, b->data + start, enclen);
}

static int is_array_mt(lua_State *L, int idx)
{
    if (!lua_getmetatable(L, idx))
        return 0;
    luaL_getmetatable(L, ARRAY_MT);
    int same = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    return same;
}

static void encode_value(lua_State *L, key_cache *kc, int idx, rt_buf *b, int depth);

/* A key of an object that is not a string: a table with array and non-array keys,
 * or one whose keys are not strings. */
static void bad_key(lua_State *L, int idx)
{
    if (lua_objlen(L, idx) > 0)
        luaL_error(L, "cannot encode a table with both array and non-array keys");
    luaL_error(L, "cannot encode a table key of type %s (object keys are strings)",
               luaL_typename(L, -2));
}

static void encode_table(lua_State *L, key_cache *kc, int idx, rt_buf *b, int depth)
{
    /* Stack room for a key, a value, two for the key cache and one scratch slot;
     * scalars need no more. */
    luaL_checkstack(L, 6, "JSON encode");
    int top = lua_gettop(L);
    size_t n;
    if (is_array_mt(L, idx)) {
        n = lua_objlen(L, idx);
    } else {
        /* Most tables are records: a string first key makes an object at once, without
         * the length an array needs (a number key later is refused there). */
        lua_pushnil(L);
        if (!lua_next(L, idx)) {
            put(L, b, "{}", 2);
            return;
        }
        if (lua_type(L, -2) == LUA_TSTRING) {
            put(L, b, "{", 1);
            for (;;) {
                if (lua_type(L, -2) != LUA_TSTRING)
                    bad_key(L, idx);
                size_t klen;
                const char *k = lua_tolstring(L, -2, &klen);
                encode_key(L, kc, top + 1, k, klen, b);
                encode_value(L, kc, top + 2, b, depth + 1);
                lua_pop(L, 1);
                if (!lua_next(L, idx))
                    break;
                put(L, b, ",", 1);
            }
            put(L, b, "}", 1);
            return;
        }
        /* A first key that is not a string: keys 1..n make an array. */
        if (!(n = lua_objlen(L, idx)))
            bad_key(L, idx);
        lua_settop(L, top);
        /* A border n and exactly n keys means the keys are 1..n. */
        size_t count = 0;
        lua_pushnil(L);
        while (lua_next(L, idx)) {
            lua_pop(L, 1);
            count++;
        }
        if (count != n)
            luaL_error(L, "cannot encode a table with both array and non-array keys");
    }
    put(L, b, "[", 1);
    for (size_t i = 1; i <= n; i++) {
        if (i > 1)
            put(L, b, ",", 1);
        lua_rawgeti(L, idx, (int)i);
        encode_value(L, kc, top + 1, b, depth + 1);
        lua_pop(L, 1);
    }
    put(L, b, "]", 1);
}

static void encode_value(lua_State *L, key_cache *kc, int idx, rt_buf *b, int depth)
{
    if (depth > MAX_DEPTH)
        luaL_error(L, "cannot encode JSON nested deeper than %d (a cycle?)", MAX_DEPTH);
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        put(L, b, "null", 4);
        return;
    case LUA_TBOOLEAN:
        if (lua_toboolean(L, idx))
            put(L, b, "true", 4);
        else
            put(L, b, "false", 5);
        return;
    case LUA_TNUMBER:
        encode_number(L, lua_tonumber(L, idx), b);
        return;
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        encode_string(L, s, n, b);
        return;
    }
    case LUA_TTABLE:
        encode_table(L, kc, idx, b, depth);
        return;
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == NULL) {     /* json.null */
            put(L, b, "null", 4);
            return;
        }
        break;
    case LUA_TUSERDATA: {
        long long v;
        if (lb_int64_test(L, idx, &v)) {
            char s[24];
            put(L, b, s, (size_t)snprintf(s, sizeof s, "%lld", v));
            return;
        }
        break;
    }
    }
    luaL_error(L, "cannot encode a %s as JSON", luaL_typename(L, idx));
}

void lb_json_encode(lua_State *L, int idx, rt_buf *out)
{
    if (idx < 0)
        idx = lua_gettop(L) + idx + 1;
    encode_value(L, key_cache_of(L), idx, out, 0);
}

/* Bounded well below LuaJIT's C stack limit, so deep input fails cleanly. */
#define MAX_PUSH_DEPTH 512

static int push_value(lua_State *L, json_t *v, int depth)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        /* Containers hold a key and a value on the stack while filling. */
        if (depth > MAX_PUSH_DEPTH || !lua_checkstack(L, 4))
            return -1;
        const char *k;
        size_t klen;
        json_t *item;
        lua_createtable(L, 0, (int)json_object_size(v));
        json_object_keylen_foreach(v, k, klen, item) {
            if (json_is_null(item))
                continue;
            lua_pushlstring(L, k, klen);
            if (push_value(L, item, depth + 1) < 0)
                return -1;
            lua_rawset(L, -3);
        }
        return 0;
    }
    case JSON_ARRAY: {
        if (depth > MAX_PUSH_DEPTH || !lua_checkstack(L, 4))
            return -1;
        size_t n = json_array_size(v);
        lua_createtable(L, (int)n, 0);
        for (size_t i = 0; i < n; i++) {
            if (push_value(L, json_array_get(v, i), depth + 1) < 0)
                return -1;
            lua_rawseti(L, -2, (int)i + 1);
        }
        luaL_getmetatable(L, ARRAY_MT);
        lua_setmetatable(L, -2);
        return 0;
    }
    case JSON_STRING:
        lua_pushlstring(L, json_string_value(v), json_string_length(v));
        return 0;
    case JSON_INTEGER: {
        json_int_t i = json_integer_value(v);
        if (i >= -(1LL << 53) && i <= (1LL << 53))
            lua_pushnumber(L, (lua_Number)i);
        else
            lb_int64_push(L, i);
        return 0;
    }
    case JSON_REAL:
        lua_pushnumber(L, json_real_value(v));
        return 0;
    case JSON_TRUE:
    case JSON_FALSE:
        lua_pushboolean(L, json_is_true(v));
        return 0;
    case JSON_NULL:
        lua_pushlightuserdata(L, NULL);
        return 0;
    }
    return -1;
}

int lb_json_push(lua_State *L, json_t *v)
{
    int top = lua_gettop(L);
    if (push_value(L, v, 0) == 0)
        return 0;
    lua_settop(L, top);
    return -1;
}

/* The tape's value at node i as Lua, built straight from the decoded record: the same
 * shapes as push_value. */
static int push_node(lua_State *L, const rt_jtape *t, uint32_t i, int depth)
{
    const rt_jnode *n = &t->v[i];
    switch ((enum rt_jtype)n->type) {
    case RT_JOBJECT: {
        if (depth > MAX_PUSH_DEPTH || !lua_checkstack(L, 4))
            return -1;
        uint32_t k = i + 1;
        lua_createtable(L, 0, (int)n->len);
        for (uint32_t m = 0; m < n->len; m++) {
            uint32_t val = k + 1;
            if (t->v[val].type != RT_JNULL) {
                lua_pushlstring(L, rt_jtape_str(t, k), t->v[k].len);
                if (push_node(L, t, val, depth + 1) < 0)
                    return -1;
                lua_rawset(L, -3);
            }
            k = t->v[val].next;
        }
        return 0;
    }
    case RT_JARRAY: {
        if (depth > MAX_PUSH_DEPTH || !lua_checkstack(L, 4))
            return -1;
        uint32_t j = i + 1;
        lua_createtable(L, (int)n->len, 0);
        for (uint32_t m = 0; m < n->len; m++) {
            if (push_node(L, t, j, depth + 1) < 0)
                return -1;
            lua_rawseti(L, -2, (int)m + 1);
            j = t->v[j].next;
        }
        luaL_getmetatable(L, ARRAY_MT);
        lua_setmetatable(L, -2);
        return 0;
    }
    case RT_JSTRING:
        lua_pushlstring(L, rt_jtape_str(t, i), n->len);
        return 0;
    case RT_JINT:
        if (n->num.i >= -(1LL << 53) && n->num.i <= (1LL << 53))
            lua_pushnumber(L, (lua_Number)n->num.i);
        else
            lb_int64_push(L, n->num.i);
        return 0;
    case RT_JREAL:
        lua_pushnumber(L, n->num.d);
        return 0;
    case RT_JTRUE:
    case RT_JFALSE:
        lua_pushboolean(L, n->type == RT_JTRUE);
        return 0;
    case RT_JNULL:
        lua_pushlightuserdata(L, NULL);
        return 0;
    }
    return -1;
}

int lb_jtape_push(lua_State *L, const rt_jtape *t, uint32_t i)
{
    int top = lua_gettop(L);
    if (push_node(L, t, i, 0) == 0)
        return 0;
    lua_settop(L, top);
    return -1;
}

/* Holds a decoded tree while it is converted, so a Lua error (out of memory) in the
 * middle of the conversion cannot leak it: __gc frees what was not freed. */
typedef struct json_guard {
    json_t *v;
} json_guard;

static int guard_gc(lua_State *L)
{
    json_guard *g = lua_touserdata(L, 1);
    json_decref(g->v);
    g->v = NULL;
    return 0;
}

static int lua_json_encode(lua_State *L)
{
    rt_buf *b = lua_touserdata(L, lua_upvalueindex(1));
    luaL_checkany(L, 1);
    b->len = 0;
    lb_json_encode(L, 1, b);
    lua_pushlstring(L, b->data, b->len);
    return 1;
}

/* Bad text is a runtime failure of the data, not misuse: nil, message. */
static int lua_json_decode(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    json_error_t err;
    json_guard *g = lua_newuserdata(L, sizeof *g);
    g->v = NULL;
    luaL_getmetatable(L, GUARD_MT);
    lua_setmetatable(L, -2);
    g->v = rt_json_loadb(s, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    if (!g->v) {
        lua_pushnil(L);
        lua_pushfstring(L, "column %d: %s", err.column, err.text);
        return 2;
    }
    int rc = lb_json_push(L, g->v);
    json_decref(g->v);
    g->v = NULL;
    if (rc < 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "nested deeper than %d", MAX_PUSH_DEPTH);
        return 2;
    }
    return 1;
}

/* Mark a table as a JSON array, so that an empty one encodes as []. */
static int json_mark_array(lua_State *L)
{
    if (lua_isnoneornil(L, 1))
        lua_newtable(L);
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    luaL_getmetatable(L, ARRAY_MT);
    lua_setmetatable(L, 1);
    return 1;
}

int lb_json_open(lua_State *L, rt_buf *scratch)
{
    key_cache_open(L);
    luaL_newmetatable(L, ARRAY_MT);
    lua_pop(L, 1);
    luaL_newmetatable(L, GUARD_MT);
    lua_pushcfunction(L, guard_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    lua_createtable(L, 0, 4);
    lua_pushlightuserdata(L, scratch);
    lua_pushcclosure(L, lua_json_encode, 1);
    lua_setfield(L, -2, "encode");
    lua_pushcfunction(L, lua_json_decode);
    lua_setfield(L, -2, "decode");
    lua_pushcfunction(L, json_mark_array);
    lua_setfield(L, -2, "array");
    lua_pushlightuserdata(L, NULL);
    lua_setfield(L, -2, "null");
    return 1;
}
