/* config.c - properties file parsing and validation.
 *
 * Format: `key=value` lines; `#` or `!` starts a comment line, and ` #` (whitespace
 * then #) starts a comment after a value, so `a#b` stays a value. `${VAR}` and
 * `${VAR:-default}` expand from the environment. A key set twice in one file is an
 * error (a silent last-one-wins hides typos); --set overrides the file on purpose. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "config.h"
#include "nearest.h"

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* '*' matches a dot-free name; a final '*' matches the non-empty rest. */
static int pattern_match(const char *p, const char *k)
{
    for (; *p; p++) {
        if (*p != '*') {
            if (*p != *k++)
                return 0;
            continue;
        }
        const char *start = k;
        if (p[1] == '\0')
            return *k != '\0';
        while (*k && *k != '.')
            k++;
        if (k == start)
            return 0;
    }
    return *k == '\0';
}

static const rt_conf_key *find_spec(const char *key)
{
    rt_conf_iter it = { 0 };
    for (const rt_conf_key *s = rt_conf_next(&it); s; s = rt_conf_next(&it))
        if (pattern_match(s->pattern, key))
            return s;
    return NULL;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

/* Expand ${VAR} and ${VAR:-default} into a new string; NULL with `why` set on error. */
static char *expand(const char *in, char *why, size_t whylen)
{
    size_t cap = strlen(in) + 1, len = 0;
    char *out = malloc(cap);
    if (!out) {
        snprintf(why, whylen, "out of memory");
        return NULL;
    }
    while (*in) {
        const char *piece = in;
        size_t n = 1;
        char name[256];
        if (in[0] == '$' && in[1] == '{') {
            const char *close = strchr(in + 2, '}');
            if (!close) {
                snprintf(why, whylen, "unterminated ${ in value");
                goto fail;
            }
            const char *colon = strstr(in + 2, ":-");
            size_t nlen = (colon && colon < close ? colon : close) - (in + 2);
            if (nlen == 0 || nlen >= sizeof name) {
                snprintf(why, whylen, "bad variable name in ${...}");
                goto fail;
            }
            memcpy(name, in + 2, nlen);
            name[nlen] = '\0';
            piece = getenv(name);
            if (piece) {
                n = strlen(piece);
            } else if (colon && colon < close) {
                piece = colon + 2;
                n = (size_t)(close - piece);
            } else {
                snprintf(why, whylen, "environment variable %s is not set", name);
                goto fail;
            }
            in = close + 1;
        } else {
            in++;
        }
        if (len + n + 1 > cap) {
            cap = (len + n + 1) * 2;
            char *p = realloc(out, cap);
            if (!p) {
                snprintf(why, whylen, "out of memory");
                goto fail;
            }
            out = p;
        }
        memcpy(out + len, piece, n);
        len += n;
    }
    out[len] = '\0';
    return out;
fail:
    free(out);
    return NULL;
}

static rt_conf_entry *find_entry(const rt_config *c, const char *key)
{
    uintptr_t at = (uintptr_t)rt_keymap_get(&c->index, 0, key, strlen(key));
    return at ? &c->v[at - 1] : NULL;
}

/* Add or (for --set) replace an entry; takes ownership of `value`. */
static int put(rt_config *c, const char *key, char *value, const char *file, int line,
               int replace, char *err, size_t errlen)
{
    rt_conf_entry *e = find_entry(c, key);
    if (e && !replace) {
        free(value);
        return fail(err, errlen, "%s:%d: %s: set twice (first at line %d)", file, line, key,
                    e->line);
    }
    if (!e) {
        if (c->n == c->cap) {
            size_t cap = c->cap ? c->cap * 2 : 32;
            rt_conf_entry *v = realloc(c->v, cap * sizeof *v);
            if (!v) {
                free(value);
                return fail(err, errlen, "%s:%d: %s: out of memory", file, line, key);
            }
            c->v = v;
            c->cap = cap;
        }
        e = &c->v[c->n];
        e->key = strdup(key);
        void **slot = e->key ? rt_keymap_put(&c->index, 0, key, strlen(key)) : NULL;
        if (!slot) {
            free(e->key);
            free(value);
            return fail(err, errlen, "%s:%d: %s: out of memory", file, line, key);
        }
        *slot = (void *)(uintptr_t)++c->n;
    } else {
        free(e->value);
    }
    e->value = value;
    e->file = file;
    e->line = line;
    e->spec = NULL;
    return 0;
}

/* One "key=value" text, from the file or from --set. */
static int parse_assignment(rt_config *c, char *text, const char *file, int line, int replace,
                            char *err, size_t errlen)
{
    char *eq = strchr(text, '=');
    if (!eq) {
        /* Only the key-like start is echoed: "mysql.password: hunter2" is a secret
         * written with the wrong separator. */
        char *k = trim(text);
        int n = (int)strspn(k, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                               "0123456789._-*");
        return fail(err, errlen, "%s:%d: %.*s%s expected key=value%s", file, line, n, k,
                    n ? ":" : "", k[n] ? " (the rest of the line is not shown)" : "");
    }
    *eq = '\0';
    char *key = trim(text), *raw = trim(eq + 1);
    if (!*key)
        return fail(err, errlen, "%s:%d: missing key before '='", file, line);
    for (char *p = key; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("._-*", *p))
            return fail(err, errlen, "%s:%d: %s: invalid character '%c' in key", file, line,
                        key, *p);
    if (!replace)
        for (char *p = raw; *p; p++)
            if (*p == '#' && p > raw && isspace((unsigned char)p[-1])) {
                *p = '\0';
                raw = trim(raw);
                break;
            }
    char why[300];
    char *value = expand(raw, why, sizeof why);
    if (!value)
        return fail(err, errlen, "%s:%d: %s: %s", file, line, key, why);
    return put(c, key, value, file, line, replace, err, errlen);
}

static int check_value(const rt_conf_entry *e, char *err, size_t errlen)
{
    const rt_conf_key *s = e->spec;
    const char *v = e->value;
    /* Never echo the value of a secret back into a log. */
    char buf[1024];
    const char *shown = rt_config_shown(e->key, v, buf, sizeof buf);
    switch (s->type) {
    case RT_CONF_INT: {
        char *end;
        errno = 0;
        long long x = strtoll(v, &end, 10);
        if (!*v || *end || errno)
            return fail(err, errlen, "%s:%d: %s: '%s' is not an integer", e->file, e->line,
                        e->key, shown);
        if (x < s->min || x > s->max)
            return fail(err, errlen, "%s:%d: %s: %lld is out of range [%lld, %lld]", e->file,
                        e->line, e->key, x, s->min, s->max);
        return 0;
    }
    case RT_CONF_BOOL:
        if (strcmp(v, "true") && strcmp(v, "false"))
            return fail(err, errlen, "%s:%d: %s: '%s' is not true or false", e->file, e->line,
                        e->key, shown);
        return 0;
    case RT_CONF_ENUM: {
        size_t n = strlen(v);
        const char *choices = rt_conf_choices(s);
        for (const char *p = choices; n && *p;) {
            const char *bar = strchr(p, '|');
            size_t len = bar ? (size_t)(bar - p) : strlen(p);
            if (len == n && strncmp(p, v, n) == 0)
                return 0;
            p += len + (bar ? 1 : 0);
        }
        return fail(err, errlen, "%s:%d: %s: '%s' is not one of %s", e->file, e->line, e->key,
                    shown, choices);
    }
    case RT_CONF_STRING:
        return 0;
    }
    return 0;
}

/* `pattern` with each '*' replaced by the key's name at that place ("sink.*.path" for
 * "sink.dlq.pth" gives "sink.dlq.path"). -1 when the key has no name for a '*' or it
 * does not fit in `len`. */
static int instantiate(const char *pattern, const char *key, char *out, size_t len)
{
    size_t o = 0;
    for (const char *p = pattern; *p; p++) {
        if (*p == '.') {
            key += strcspn(key, ".");
            key += *key == '.';
        }
        const char *s = p;
        size_t n = 1;
        if (*p == '*') {        /* the key's name here; at the very end, the rest */
            s = key;
            n = p[1] ? strcspn(key, ".") : strlen(key);
            if (n == 0)
                return -1;      /* the key has no name there: no suggestion */
        }
        if (o + n >= len)
            return -1;
        memcpy(out + o, s, n);
        o += n;
    }
    out[o] = '\0';
    return 0;
}

/* The known key nearest to the unknown `key` (two edits at most, fewer for short
 * keys), into `buf`; or "". */
static const char *nearest_key(const char *key, char *buf, size_t len)
{
    char cand[256];
    size_t best = 3;
    buf[0] = '\0';
    rt_conf_iter it = { 0 };
    for (const rt_conf_key *s = rt_conf_next(&it); s; s = rt_conf_next(&it)) {
        if (instantiate(s->pattern, key, cand, sizeof cand) < 0)
            continue;
        /* processor.timeout for processor.timeout.ms: only the unit left out */
        size_t klen = strlen(key), d = !strncmp(cand, key, klen) && cand[klen] == '.'
                                       ? 1 : rt_edit_distance(key, cand);
        if (d < best && d * 4 < strlen(key)) {
            best = d;
            snprintf(buf, len, "%s", cand);
        }
    }
    return buf;
}

static int validate(rt_config *c, char *err, size_t errlen)
{
    char near[256];
    for (size_t i = 0; i < c->n; i++) {
        rt_conf_entry *e = &c->v[i];
        e->spec = find_spec(e->key);
        if (!e->spec && *nearest_key(e->key, near, sizeof near))
            return fail(err, errlen, "%s:%d: %s: unknown key; did you mean '%s'?", e->file,
                        e->line, e->key, near);
        if (!e->spec)
            return fail(err, errlen, "%s:%d: %s: unknown key", e->file, e->line, e->key);
        if (check_value(e, err, errlen) < 0)
            return -1;
    }
    rt_conf_iter it = { 0 };
    for (const rt_conf_key *s = rt_conf_next(&it); s; s = rt_conf_next(&it))
        if (s->required && !find_entry(c, s->pattern))
            return fail(err, errlen, "%s: %s: required key is missing", c->path, s->pattern);
    return 0;
}

int rt_config_load(rt_config *c, const char *path, char *const *sets, int nsets, char *err,
                   size_t errlen)
{
    int rc = -1, lineno = 0;
    char *line = NULL;
    size_t cap = 0;
    memset(c, 0, sizeof *c);
    c->path = strdup(path);
    if (!c->path)
        return fail(err, errlen, "%s: out of memory", path);
    FILE *f = fopen(path, "r");
    if (!f)
        return fail(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    while (getline(&line, &cap, f) >= 0) {
        lineno++;
        char *s = trim(line);
        if (!*s || *s == '#' || *s == '!')
            continue;
        if (parse_assignment(c, s, c->path, lineno, 0, err, errlen) < 0)
            goto out;
    }
    if (ferror(f)) {
        fail(err, errlen, "%s:%d: read error: %s", path, lineno, strerror(errno));
        goto out;
    }
    for (int i = 0; i < nsets; i++) {
        char *copy = strdup(sets[i]);
        if (!copy) {
            fail(err, errlen, "--set: out of memory");
            goto out;
        }
        int r = parse_assignment(c, copy, "--set", i + 1, 1, err, errlen);
        free(copy);
        if (r < 0)
            goto out;
    }
    rc = validate(c, err, errlen);
out:
    free(line);
    fclose(f);
    return rc;
}

void rt_config_free(rt_config *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->v[i].key);
        free(c->v[i].value);
    }
    free(c->v);
    rt_keymap_free(&c->index);
    free(c->path);
    memset(c, 0, sizeof *c);
}

const rt_conf_entry *rt_config_entry(const rt_config *c, const char *key)
{
    return find_entry(c, key);
}

const char *rt_config_get(const rt_config *c, const char *key)
{
    const rt_conf_entry *e = find_entry(c, key);
    if (e)
        return e->value;
    const rt_conf_key *s = find_spec(key);
    return s ? s->def : NULL;
}

long long rt_config_int(const rt_config *c, const char *key)
{
    const char *v = rt_config_get(c, key);
    if (!v)
        return 0;
    if (strcmp(v, "true") == 0)
        return 1;
    return strtoll(v, NULL, 10);
}

const char *rt_config_where(const rt_config *c, const char *key, char *buf, size_t len)
{
    const rt_conf_entry *e = find_entry(c, key);
    if (e)
        snprintf(buf, len, "%s:%d", e->file, e->line);
    else
        snprintf(buf, len, "%s", c->path);
    return buf;
}
