/* lb_string.c - the sandbox's string.find, match, gmatch and gsub: Lua 5.1 patterns
 * matched by a backtracking matcher that looks at processor.timeout.ms as it goes.
 *
 * Why not LuaJIT's own: its matcher is a C function that never returns to the VM while
 * it backtracks, so the count hook cannot stop `("a"):rep(1e6):find(".-.-.-.-b")`, and
 * in one process nothing else could. This one counts its steps and checks the clock
 * every STEPS_PER_CHECK; past the deadline it raises the sandbox's timeout error. A
 * plain find (no specials, or plain=true) is a linear memmem. */
#define _GNU_SOURCE     /* memmem */
#include <ctype.h>
#include <string.h>

#include <lauxlib.h>

#include "bindings.h"
#include "clock.h"

#define MAX_CAPTURES 32
#define MAX_DEPTH 200           /* nested pattern items: bounds the C stack */
#define STEPS_PER_CHECK 4096
#define CAP_UNFINISHED (-1)
#define CAP_POSITION (-2)
#define ESC '%'
#define SPECIALS "^$*+?.([%-"

typedef struct matcher {
    lua_State *L;
    rt_processor *p;
    const char *src, *src_end;  /* the subject */
    const char *pat_end;
    unsigned steps;
    int depth;
    int level;                  /* captures opened */
    struct { const char *at; ptrdiff_t len; } cap[MAX_CAPTURES];
} matcher;

/* Every STEPS_PER_CHECK steps: past the call's deadline, stop like the count hook. */
static void step(matcher *m)
{
    if (++m->steps % STEPS_PER_CHECK == 0 && m->p->deadline_ms &&
        rt_clock_ms() >= m->p->deadline_ms)
        rt_processor_limit_error(m->L, m->p, RT_LIMIT_TIMEOUT);
}

/* The end of the single-character class starting at p. */
static const char *class_end(matcher *m, const char *p)
{
    if (*p++ == ESC) {
        if (p >= m->pat_end)
            luaL_error(m->L, "malformed pattern (ends with '%%')");
        return p + 1;
    }
    if (p[-1] == '[') {
        if (p < m->pat_end && *p == '^')
            p++;
        do {    /* the first ']' of a set is a member */
            if (p >= m->pat_end)
                luaL_error(m->L, "malformed pattern (missing ']')");
            if (*p++ == ESC && p < m->pat_end)
                p++;
        } while (p >= m->pat_end || *p != ']');
        return p + 1;
    }
    return p;
}

static int in_class(int c, int cl)
{
    int r;
    switch (tolower(cl)) {
    case 'a': r = isalpha(c); break;
    case 'c': r = iscntrl(c); break;
    case 'd': r = isdigit(c); break;
    case 'l': r = islower(c); break;
    case 'p': r = ispunct(c); break;
    case 's': r = isspace(c); break;
    case 'u': r = isupper(c); break;
    case 'w': r = isalnum(c); break;
    case 'x': r = isxdigit(c); break;
    case 'z': r = c == 0; break;
    default: return cl == c;    /* %. and the like: the character itself */
    }
    return isupper(cl) ? !r : r != 0;
}

/* c against the set [p .. ec], ec pointing at its ']'. */
static int in_set(int c, const char *p, const char *ec)
{
    int yes = 1;
    if (*++p == '^') {
        yes = 0;
        p++;
    }
    while (p < ec) {
        if (*p == ESC) {
            p++;
            if (in_class(c, (unsigned char)*p))
                return yes;
            p++;
        } else if (p[1] == '-' && p + 2 < ec) {
            if ((unsigned char)p[0] <= c && c <= (unsigned char)p[2])
                return yes;
            p += 3;
        } else {
            if ((unsigned char)*p == c)
                return yes;
            p++;
        }
    }
    return !yes;
}

static int single(const char *s, const char *end, const char *p, const char *ep)
{
    if (s >= end)
        return 0;
    int c = (unsigned char)*s;
    switch (*p) {
    case '.': return 1;
    case ESC: return in_class(c, (unsigned char)p[1]);
    case '[': return in_set(c, p, ep - 1);
    default: return (unsigned char)*p == c;
    }
}

static const char *do_match(matcher *m, const char *s, const char *p);

static const char *match_balance(matcher *m, const char *s, const char *p)
{
    if (p + 1 >= m->pat_end)
        luaL_error(m->L, "unbalanced pattern");
    if (s >= m->src_end || *s != *p)
        return NULL;
    int open = *p, close = p[1], depth = 1;
    while (++s < m->src_end) {
        step(m);
        if (*s == close) {
            if (--depth == 0)
                return s + 1;
        } else if (*s == open) {
            depth++;
        }
    }
    return NULL;
}

/* Longest run of the class first, then give back one at a time. */
static const char *max_expand(matcher *m, const char *s, const char *p, const char *ep)
{
    ptrdiff_t i = 0;
    while (single(s + i, m->src_end, p, ep)) {
        step(m);
        i++;
    }
    for (; i >= 0; i--) {
        step(m);
        const char *r = do_match(m, s + i, ep + 1);
        if (r)
            return r;
    }
    return NULL;
}

/* Shortest run first, then one more at a time. */
static const char *min_expand(matcher *m, const char *s, const char *p, const char *ep)
{
    for (;;) {
        step(m);
        const char *r = do_match(m, s, ep + 1);
        if (r)
            return r;
        if (!single(s, m->src_end, p, ep))
            return NULL;
        s++;
    }
}

static const char *start_capture(matcher *m, const char *s, const char *p, ptrdiff_t what)
{
    if (m->level >= MAX_CAPTURES)
        luaL_error(m->L, "too many captures");
    m->cap[m->level].at = s;
    m->cap[m->level].len = what;
    m->level++;
    const char *r = do_match(m, s, p);
    if (!r)
        m->level--;
    return r;
}

static const char *end_capture(matcher *m, const char *s, const char *p)
{
    int l = -1;
    for (int i = m->level - 1; i >= 0; i--)
        if (m->cap[i].len == CAP_UNFINISHED) {
            l = i;
            break;
        }
    if (l < 0)
        luaL_error(m->L, "invalid pattern capture");
    m->cap[l].len = s - m->cap[l].at;
    const char *r = do_match(m, s, p);
    if (!r)
        m->cap[l].len = CAP_UNFINISHED;
    return r;
}

static int capture_index(matcher *m, int c)
{
    int l = c - '1';
    if (l < 0 || l >= m->level || m->cap[l].len == CAP_UNFINISHED)
        luaL_error(m->L, "invalid capture index");
    return l;
}

static const char *match_backref(matcher *m, const char *s, int c)
{
    int l = capture_index(m, c);
    size_t len = (size_t)m->cap[l].len;
    if ((size_t)(m->src_end - s) >= len && memcmp(m->cap[l].at, s, len) == 0)
        return s + len;
    return NULL;
}

static const char *match_frontier(matcher *m, const char *s, const char **pp)
{
    const char *p = *pp + 2;
    if (p >= m->pat_end || *p != '[')
        luaL_error(m->L, "missing '[' after '%%f' in pattern");
    const char *ep = class_end(m, p);
    int prev = s == m->src ? 0 : (unsigned char)s[-1];
    int cur = s < m->src_end ? (unsigned char)*s : 0;
    *pp = ep;
    return !in_set(prev, p, ep - 1) && in_set(cur, p, ep - 1) ? s : NULL;
}

/* The end of the match of pattern p at s, or NULL. Tail positions loop instead of
 * recursing, so the depth grows only with nested items, not with the subject. */
static const char *do_match(matcher *m, const char *s, const char *p)
{
    if (++m->depth > MAX_DEPTH)
        luaL_error(m->L, "pattern too complex");
    for (;;) {
        step(m);
        if (p >= m->pat_end)
            break;
        if (*p == '(') {
            s = p + 1 < m->pat_end && p[1] == ')'
                    ? start_capture(m, s, p + 2, CAP_POSITION)
                    : start_capture(m, s, p + 1, CAP_UNFINISHED);
            goto out;
        }
        if (*p == ')') {
            s = end_capture(m, s, p + 1);
            goto out;
        }
        if (*p == '$' && p + 1 == m->pat_end) {
            if (s != m->src_end)
                s = NULL;
            goto out;
        }
        if (*p == ESC && p + 1 < m->pat_end) {
            if (p[1] == 'b') {
                s = match_balance(m, s, p + 2);
                if (!s)
                    goto out;
                p += 4;
                continue;
            }
            if (p[1] == 'f') {
                if (!match_frontier(m, s, &p)) {
                    s = NULL;
                    goto out;
                }
                continue;
            }
            if (isdigit((unsigned char)p[1])) {
                s = match_backref(m, s, (unsigned char)p[1]);
                if (!s)
                    goto out;
                p += 2;
                continue;
            }
        }
        const char *ep = class_end(m, p);
        int ok = single(s, m->src_end, p, ep);
        char q = ep < m->pat_end ? *ep : '\0';
        if (q == '?') {
            const char *r;
            if (ok && (r = do_match(m, s + 1, ep + 1))) {
                s = r;
                goto out;
            }
            p = ep + 1;
            continue;
        }
        if (q == '*') {
            s = max_expand(m, s, p, ep);
            goto out;
        }
        if (q == '+') {
            s = ok ? max_expand(m, s + 1, p, ep) : NULL;
            goto out;
        }
        if (q == '-') {
            s = min_expand(m, s, p, ep);
            goto out;
        }
        if (!ok) {
            s = NULL;
            goto out;
        }
        s++;
        p = ep;
    }
out:
    m->depth--;
    return s;
}

static void matcher_init(matcher *m, lua_State *L, const char *s, size_t ls, const char *p,
                         size_t lp)
{
    void *ud;
    lua_getallocf(L, &ud);
    m->L = L;
    m->p = ud;
    m->src = s;
    m->src_end = s + ls;
    m->pat_end = p + lp;
    m->steps = 0;
}

/* One try of the whole pattern at s: no captures, no depth carried from the last. */
static const char *match_at(matcher *m, const char *s, const char *p)
{
    m->level = 0;
    m->depth = 0;
    return do_match(m, s, p);
}

static void push_capture(matcher *m, int i, const char *s, const char *e)
{
    if (i >= m->level) {
        if (i != 0)
            luaL_error(m->L, "invalid capture index");
        lua_pushlstring(m->L, s, (size_t)(e - s));   /* the whole match */
        return;
    }
    if (m->cap[i].len == CAP_UNFINISHED)
        luaL_error(m->L, "unfinished capture");
    if (m->cap[i].len == CAP_POSITION)
        lua_pushinteger(m->L, m->cap[i].at - m->src + 1);
    else
        lua_pushlstring(m->L, m->cap[i].at, (size_t)m->cap[i].len);
}

/* Push the captures (or the whole match when there are none); their count. */
static int push_captures(matcher *m, const char *s, const char *e)
{
    int n = m->level == 0 && s ? 1 : m->level;
    luaL_checkstack(m->L, n, "too many captures");
    for (int i = 0; i < n; i++)
        push_capture(m, i, s, e);
    return n;
}

static ptrdiff_t start_pos(ptrdiff_t pos, size_t len)
{
    if (pos < 0)
        pos += (ptrdiff_t)len + 1;
    return pos < 0 ? 0 : pos;
}

static int plain(const char *p, size_t lp)
{
    for (size_t i = 0; i < lp; i++)
        if (p[i] && strchr(SPECIALS, p[i]))
            return 0;
    return 1;
}

/* string.find and string.match. */
static int find_aux(lua_State *L, int find)
{
    size_t ls, lp;
    const char *s = luaL_checklstring(L, 1, &ls);
    const char *p = luaL_checklstring(L, 2, &lp);
    ptrdiff_t init = start_pos(luaL_optinteger(L, 3, 1), ls) - 1;
    if (init < 0)
        init = 0;
    if ((size_t)init > ls)
        init = (ptrdiff_t)ls;
    if (find && (lua_toboolean(L, 4) || plain(p, lp))) {
        /* A plain search is linear: it cannot run away. */
        const char *hit = lp == 0 ? s + init
                        : lp <= ls - (size_t)init ? memmem(s + init, ls - (size_t)init, p, lp)
                        : NULL;
        if (!hit) {
            lua_pushnil(L);
            return 1;
        }
        lua_pushinteger(L, hit - s + 1);
        lua_pushinteger(L, hit - s + (ptrdiff_t)lp);
        return 2;
    }
    matcher m;
    matcher_init(&m, L, s, ls, p, lp);
    int anchor = lp && *p == '^';
    if (anchor)
        p++;
    const char *at = s + init;
    do {
        const char *e = match_at(&m, at, p);
        if (e) {
            if (find) {
                lua_pushinteger(L, at - s + 1);
                lua_pushinteger(L, e - s);
                return push_captures(&m, NULL, NULL) + 2;
            }
            return push_captures(&m, at, e);
        }
    } while (at++ < m.src_end && !anchor);
    lua_pushnil(L);
    return 1;
}

static int str_find(lua_State *L)
{
    return find_aux(L, 1);
}

static int str_match(lua_State *L)
{
    return find_aux(L, 0);
}

static int gmatch_next(lua_State *L)
{
    size_t ls, lp;
    const char *s = lua_tolstring(L, lua_upvalueindex(1), &ls);
    const char *p = lua_tolstring(L, lua_upvalueindex(2), &lp);
    matcher m;
    matcher_init(&m, L, s, ls, p, lp);
    for (const char *at = s + lua_tointeger(L, lua_upvalueindex(3)); at <= m.src_end; at++) {
        const char *e = match_at(&m, at, p);
        if (e) {
            ptrdiff_t next = e - s;
            if (e == at)
                next++;     /* an empty match: move on by one */
            lua_pushinteger(L, next);
            lua_replace(L, lua_upvalueindex(3));
            return push_captures(&m, at, e);
        }
    }
    return 0;
}

static int str_gmatch(lua_State *L)
{
    luaL_checkstring(L, 1);
    luaL_checkstring(L, 2);
    lua_settop(L, 2);
    lua_pushinteger(L, 0);
    lua_pushcclosure(L, gmatch_next, 3);
    return 1;
}

static void add_replacement_string(matcher *m, luaL_Buffer *b, const char *s, const char *e)
{
    size_t l;
    const char *r = lua_tolstring(m->L, 3, &l);
    for (size_t i = 0; i < l; i++) {
        if (r[i] != ESC) {
            luaL_addchar(b, r[i]);
        } else if (++i < l && !isdigit((unsigned char)r[i])) {
            luaL_addchar(b, r[i]);
        } else if (i < l && r[i] == '0') {
            luaL_addlstring(b, s, (size_t)(e - s));
        } else if (i < l) {
            push_capture(m, r[i] - '1', s, e);
            luaL_addvalue(b);
        }
    }
}

static void add_replacement(matcher *m, luaL_Buffer *b, const char *s, const char *e)
{
    lua_State *L = m->L;
    switch (lua_type(L, 3)) {
    case LUA_TNUMBER:
    case LUA_TSTRING:
        add_replacement_string(m, b, s, e);
        return;
    case LUA_TFUNCTION:
        lua_pushvalue(L, 3);
        lua_call(L, push_captures(m, s, e), 1);
        break;
    case LUA_TTABLE:
        push_capture(m, 0, s, e);
        lua_gettable(L, 3);
        break;
    }
    if (!lua_toboolean(L, -1)) {
        lua_pop(L, 1);
        lua_pushlstring(L, s, (size_t)(e - s));     /* false or nil: keep the match */
    } else if (!lua_isstring(L, -1)) {
        luaL_error(L, "invalid replacement value (a %s)", luaL_typename(L, -1));
    }
    luaL_addvalue(b);
}

static int str_gsub(lua_State *L)
{
    size_t ls, lp;
    const char *s = luaL_checklstring(L, 1, &ls);
    const char *p = luaL_checklstring(L, 2, &lp);
    int tr = lua_type(L, 3);
    lua_Integer max = luaL_optinteger(L, 4, (lua_Integer)ls + 1);
    luaL_argcheck(L, tr == LUA_TNUMBER || tr == LUA_TSTRING || tr == LUA_TFUNCTION ||
                         tr == LUA_TTABLE, 3, "string/function/table expected");
    matcher m;
    matcher_init(&m, L, s, ls, p, lp);
    int anchor = lp && *p == '^';
    if (anchor)
        p++;
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    const char *at = s;
    lua_Integer n = 0;
    while (n < max) {
        const char *e = match_at(&m, at, p);
        if (e) {
            n++;
            add_replacement(&m, &b, at, e);
        }
        if (e && e > at)
            at = e;
        else if (at < m.src_end)
            luaL_addchar(&b, *at++);
        else
            break;
        if (anchor)
            break;
    }
    luaL_addlstring(&b, at, (size_t)(m.src_end - at));
    luaL_pushresult(&b);
    lua_pushinteger(L, (lua_Integer)n);
    return 2;
}

void lb_string_open(lua_State *L)
{
    static const luaL_Reg fns[] = {
        { "find", str_find }, { "match", str_match }, { "gmatch", str_gmatch },
        { "gsub", str_gsub }, { NULL, NULL },
    };
    lua_getglobal(L, "string");
    for (const luaL_Reg *f = fns; f->name; f++) {
        lua_pushcfunction(L, f->func);
        lua_setfield(L, -2, f->name);
    }
    lua_pop(L, 1);
}
