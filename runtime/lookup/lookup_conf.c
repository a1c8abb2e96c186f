/* lookup_conf.c - lookup definitions: read lookup.<name>.* keys, check identifiers,
 * build the SQL once, and report the metrics. Identifiers come only from config and
 * only as [A-Za-z0-9_]+, backquoted; key values are only ever bound parameters. */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "lookup_def.h"
#include "sql_ident.h"

static const char *def(const rt_config *c, const char *name, const char *field)
{
    char key[256];
    snprintf(key, sizeof key, "lookup.%s.%s", name, field);
    return rt_config_get(c, key);
}

static long long def_int(const rt_config *c, const char *name, const char *field)
{
    char key[256];
    snprintf(key, sizeof key, "lookup.%s.%s", name, field);
    return rt_config_int(c, key);
}

/* "FILE:LINE: lookup.<name>.<field>: what", at the line of `field`, or of `at` when
 * `field` is missing. */
static int bad_at(const rt_config *c, const char *name, const char *at, const char *field,
                  char *err, size_t errlen, const char *what)
{
    char key[256], atkey[256], where[300];
    snprintf(key, sizeof key, "lookup.%s.%s", name, field);
    snprintf(atkey, sizeof atkey, "lookup.%s.%s", name, at);
    snprintf(err, errlen, "%s: %s: %s", rt_config_where(c, atkey, where, sizeof where), key,
             what);
    return -1;
}

static int bad(const rt_config *c, const char *name, const char *field, char *err,
               size_t errlen, const char *what)
{
    return bad_at(c, name, field, field, err, errlen, what);
}

/* "`key`, `a`, `b`" from the key and the comma list (spaces around names allowed). */
static int select_list(rt_buf *b, const char *key, const char *columns)
{
    if (rt_buf_append(b, "`", 1) || rt_buf_append(b, key, strlen(key)) ||
        rt_buf_append(b, "`", 1))
        return -1;
    if (!columns)
        return rt_buf_append(b, ", t.*", 5);
    for (const char *p = columns; *p;) {
        p += strspn(p, " ");
        size_t n = strcspn(p, ",");
        size_t m = n;
        while (m && p[m - 1] == ' ')
            m--;
        if (!rt_sql_identifier(p, m))
            return -2;
        if (rt_buf_append(b, ", `", 3) || rt_buf_append(b, p, m) || rt_buf_append(b, "`", 1))
            return -1;
        p += n + (p[n] == ',');
    }
    return 0;
}

static int build_sql(rt_lookup *lk, const rt_config *c, char *err, size_t errlen)
{
    rt_buf head = { 0 }, b = { 0 };
    int rc = -1, sel;
    if ((sel = rt_buf_append(&head, "SELECT ", 7)) == 0)
        sel = select_list(&head, lk->key, lk->columns);
    if (sel == -2) {
        rc = bad(c, lk->name, "columns", err, errlen,
                 "must be a comma list of column names made of [A-Za-z0-9_]");
        goto out;
    }
    if (sel < 0 || rt_buf_append(&head, " FROM `", 7) ||
        rt_buf_append(&head, lk->table, strlen(lk->table)) || rt_buf_append(&head, "` t", 3))
        goto oom;
    if (rt_buf_append(&b, head.data, head.len) || !(lk->load_sql = rt_buf_take(&b)))
        goto oom;
    for (unsigned k = 0; (1u << k) <= lk->batch_size * 2 && k < RT_LOOKUP_IN_SIZES; k++) {
        if (rt_buf_append(&b, head.data, head.len) || rt_buf_append(&b, " WHERE `", 8) ||
            rt_buf_append(&b, lk->key, strlen(lk->key)) || rt_buf_append(&b, "` IN (?", 7))
            goto oom;
        for (unsigned i = 1; i < (1u << k); i++)
            if (rt_buf_append(&b, ",?", 2))
                goto oom;
        if (rt_buf_putc(&b, ')') || !(lk->in_sql[k] = rt_buf_take(&b)))
            goto oom;
    }
    rc = 0;
    goto out;
oom:
    snprintf(err, errlen, "out of memory");
out:
    rt_buf_free(&head);
    rt_buf_free(&b);
    return rc;
}

static int dup_opt(char **dst, const char *src)
{
    *dst = src ? strdup(src) : NULL;
    return src && !*dst ? -1 : 0;
}

static int parse_lookup(rt_lookup *lk, const rt_config *c, const char *name, char *err,
                        size_t errlen)
{
    static const char *const modes[] = { "partial", "full", "none" };
    static const char *const policies[] = { "wait", "null", "dlq" };
    if (dup_opt(&lk->name, name) || dup_opt(&lk->table, def(c, name, "table")) ||
        dup_opt(&lk->key, def(c, name, "key")) || dup_opt(&lk->columns, def(c, name, "columns")) ||
        dup_opt(&lk->query, def(c, name, "query"))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    const char *mode = def(c, name, "cache"), *policy = def(c, name, "on.failure");
    for (int i = 0; i < 3; i++) {
        if (strcmp(mode, modes[i]) == 0)
            lk->mode = (enum rt_cache_mode)i;
        if (strcmp(policy, policies[i]) == 0)
            lk->on_failure = (enum rt_on_failure)i;
    }
    lk->max_rows = (size_t)def_int(c, name, "max.rows");
    lk->batch_size = (size_t)def_int(c, name, "batch.size");
    lk->expire_write_ms = def_int(c, name, "expire.after.write.ms");
    lk->expire_access_ms = def_int(c, name, "expire.after.access.ms");
    lk->reload_ms = def_int(c, name, "reload.interval.ms");
    lk->max_wait_ms = def_int(c, name, "max.wait.ms");
    lk->cache_missing = (int)def_int(c, name, "cache.missing.key");
    lk->backoff_first_ms = (int)rt_config_int(c, "mysql.retry.backoff.ms");
    lk->backoff_max_ms = (int)rt_config_int(c, "mysql.retry.backoff.max.ms");
    lk->sendq.next = lk->sendq.prev = &lk->sendq;
    if (!rt_sql_identifier(name, strlen(name)))
        return bad(c, name, "table", err, errlen,
                   "the lookup name must be made of [A-Za-z0-9_]");

    if (lk->query) {
        const char *q = lk->query, *mark = strchr(q, '?');
        if (lk->table || lk->key || lk->columns)
            return bad(c, name, "query", err, errlen,
                       "give either query or table/key/columns, not both");
        if (!mark || strchr(mark + 1, '?'))
            return bad(c, name, "query", err, errlen, "must hold exactly one ? (the key)");
        if (strncasecmp(q + strspn(q, " \t"), "select", 6))
            return bad(c, name, "query", err, errlen, "must be a SELECT");
        if (lk->mode == RT_CACHE_FULL)
            return bad(c, name, "cache", err, errlen,
                       "full needs table/key (a query with ? cannot load the whole table)");
        return 0;
    }
    if (!lk->table)
        return bad(c, name, "table", err, errlen, "missing: give table and key, or query");
    if (!rt_sql_identifier(lk->table, strlen(lk->table)))
        return bad(c, name, "table", err, errlen, "must be a table name made of [A-Za-z0-9_]");
    if (!lk->key)
        return bad_at(c, name, "table", "key", err, errlen,
                      "missing: the key column of the table");
    if (!rt_sql_identifier(lk->key, strlen(lk->key)))
        return bad(c, name, "key", err, errlen, "must be a column name made of [A-Za-z0-9_]");
    return build_sql(lk, c, err, errlen);
}

int rt_lookups_setup(rt_lookups *ls, const rt_config *c, struct event_base *base,
                     char *err, size_t errlen)
{
    memset(ls, 0, sizeof *ls);
    for (size_t i = 0; i < c->n; i++) {
        const char *k = c->v[i].key;
        if (strncmp(k, "lookup.", 7))
            continue;
        size_t n = strcspn(k + 7, ".");
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)n, k + 7);
        if (rt_lookups_find(ls, name))
            continue;
        rt_lookup **v = realloc(ls->v, (ls->n + 1) * sizeof *v);
        rt_lookup *lk = calloc(1, sizeof *lk);
        if (v)
            ls->v = v;
        if (!v || !lk) {
            free(lk);
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        ls->v[ls->n++] = lk;
        if (rt_cache_init(&lk->keys) < 0 || parse_lookup(lk, c, name, err, errlen) < 0)
            return -1;
    }
    /* Checked even without lookups, so a bad mysql.url is named at start. */
    ls->have_conf = 1;
    if (rt_mysql_conf_load(&ls->conf, c, err, errlen) < 0)
        return -1;
    for (size_t i = 0; base && i < ls->n; i++)
        if (rt_lookup_start(ls->v[i], base, &ls->conf) < 0) {
            snprintf(err, errlen, "lookup %s: cannot start: out of memory", ls->v[i]->name);
            return -1;
        }
    return 0;
}

rt_lookup *rt_lookups_find(const rt_lookups *ls, const char *name)
{
    for (size_t i = 0; i < ls->n; i++)
        if (strcmp(ls->v[i]->name, name) == 0)
            return ls->v[i];
    return NULL;
}

const char *rt_lookup_name(const rt_lookup *lk)
{
    return lk->name;
}

const char *const *rt_lookup_fields(const rt_lookup *lk, unsigned *n)
{
    *n = lk->nfields;
    return (const char *const *)lk->fields;
}

int rt_lookup_set_fields(rt_lookup *lk, const char *const *names, unsigned n)
{
    int same = n == lk->nfields;
    for (unsigned i = 0; same && i < n; i++)
        same = strcmp(names[i], lk->fields[i]) == 0;
    if (same)
        return 0;
    char **f = calloc(n ? n : 1, sizeof *f);
    if (!f)
        return -1;
    for (unsigned i = 0; i < n; i++)
        if (!(f[i] = strdup(names[i]))) {
            while (i--)
                free(f[i]);
            free(f);
            return -1;
        }
    for (unsigned i = 0; i < lk->nfields; i++)
        free(lk->fields[i]);
    free(lk->fields);
    lk->fields = f;
    lk->nfields = n;
    return 0;
}

const char *rt_lookup_number_key(double v, char *buf, size_t len, size_t *n)
{
    int w = v == (double)(long long)v ? snprintf(buf, len, "%lld", (long long)v)
                                      : snprintf(buf, len, "%.17g", v);
    *n = (size_t)w;
    return buf;
}

int rt_cell_key(const rt_cell *c, char *num, size_t numlen, const char **k, size_t *len)
{
    switch (c->type) {
    case RT_CELL_TEXT:
        *k = c->s;
        *len = c->len;
        return 0;
    case RT_CELL_INT:
        *len = (size_t)snprintf(num, numlen, "%lld", c->i);
        *k = num;
        return 0;
    case RT_CELL_DOUBLE:
        *k = rt_lookup_number_key(c->d, num, numlen, len);
        return 0;
    default:
        return -1;
    }
}

void rt_lookup_def_free(rt_lookup *lk)
{
    free(lk->name);
    free(lk->table);
    free(lk->key);
    free(lk->columns);
    free(lk->query);
    free(lk->load_sql);
    for (int k = 0; k < RT_LOOKUP_IN_SIZES; k++)
        free(lk->in_sql[k]);
    for (unsigned i = 0; i < lk->nfields; i++)
        free(lk->fields[i]);
    free(lk->fields);
    free(lk);
}

void rt_lookups_free(rt_lookups *ls)
{
    for (size_t i = 0; i < ls->n; i++)
        rt_lookup_free(ls->v[i]);
    free(ls->v);
    if (ls->have_conf)
        rt_mysql_conf_free(&ls->conf);
    memset(ls, 0, sizeof *ls);
}
