/* sink_mysql_conf.c - sink.<name>.* of a mysql sink: the column mapping, how each
 * column merges into an existing row, and the statements, built once. Table and column
 * names come only from config and are checked; values are only ever bound. */
#include <stdlib.h>
#include <string.h>

#include "json_pick.h"
#include "sink_mysql.h"
#include "source.h"
#include "sql_ident.h"

static int column_index(const rt_mysql_sink_def *d, const char *col)
{
    for (size_t i = 0; i < d->ncols; i++)
        if (strcmp(d->cols[i], col) == 0)
            return (int)i;
    return -1;
}

/* Mark every column of the comma list in `field` with `merge`. */
static int mark(rt_mysql_sink_def *d, const rt_config *c, const char *field,
                enum rt_merge merge, char *err, size_t errlen)
{
    const char *list = rt_sink_conf(c, d->name, field);
    char **names = NULL, msg[300];
    size_t n = 0;
    int rc = -1;
    if (!list)
        return 0;
    int got = rt_sql_names(list, &names, &n);
    if (got == -2 || (got == 0 && n == 0))
        return rt_sink_conf_error(c, d->name, field, err, errlen,
                                  "must be a comma list of column names made of [A-Za-z0-9_]");
    if (got < 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        int k = column_index(d, names[i]);
        if (k < 0) {
            snprintf(msg, sizeof msg, "'%s' is not in sink.%s.columns", names[i], d->name);
            rt_sink_conf_error(c, d->name, field, err, errlen, msg);
            goto out;
        }
        if (d->merge[k] != RT_MERGE_REPLACE) {
            snprintf(msg, sizeof msg, "column '%s' is already a key, sum or sequence column",
                     names[i]);
            rt_sink_conf_error(c, d->name, field, err, errlen, msg);
            goto out;
        }
        d->merge[k] = merge;
    }
    rc = 0;
out:
    rt_sql_names_free(names, n);
    return rc;
}

/* The assignment of one column in ON DUPLICATE KEY UPDATE. The sequence column comes
 * last: MySQL applies assignments left to right, and the guards must compare with the
 * stored sequence, not the new one. */
static int assignment(rt_buf *b, const rt_mysql_sink_def *d, size_t i)
{
    const char *c = d->cols[i], *s = d->sequence >= 0 ? d->cols[d->sequence] : NULL;
    char sql[600];
    switch (d->merge[i]) {
    case RT_MERGE_REPLACE:
        snprintf(sql, sizeof sql, "`%s` = COALESCE(VALUES(`%s`), `%s`)", c, c, c);
        break;
    case RT_MERGE_SUM:
        snprintf(sql, sizeof sql, "`%s` = COALESCE(`%s`, 0) + COALESCE(VALUES(`%s`), 0)", c, c, c);
        break;
    case RT_MERGE_SEQUENCED:
        snprintf(sql, sizeof sql, "`%s` = IF(`%s` IS NULL OR VALUES(`%s`) >= `%s`, "
                 "COALESCE(VALUES(`%s`), `%s`), `%s`)", c, s, s, s, c, c, c);
        break;
    case RT_MERGE_SEQUENCE:
        snprintf(sql, sizeof sql, "`%s` = IF(`%s` IS NULL OR VALUES(`%s`) >= `%s`, "
                 "VALUES(`%s`), `%s`)", c, c, c, c, c, c);
        break;
    default:
        return 0;
    }
    return rt_buf_append(b, sql, strlen(sql));
}

static int put(rt_buf *b, const char *s)
{
    return rt_buf_append(b, s, strlen(s));
}

static int build_sql(rt_mysql_sink_def *d, const char *offsets)
{
    rt_buf b = { 0 };
    int first = 1;
    if (put(&b, "INSERT INTO ") || rt_sql_quote(&b, d->table) ||
        put(&b, " ("))
        goto oom;
    for (size_t i = 0; i < d->ncols; i++)
        if ((i && put(&b, ", ")) || rt_sql_quote(&b, d->cols[i]))
            goto oom;
    if (put(&b, ") VALUES ("))
        goto oom;
    for (size_t i = 0; i < d->ncols; i++)
        if (rt_buf_append(&b, i ? ", ?" : "?", i ? 3 : 1))
            goto oom;
    if (put(&b, ") ON DUPLICATE KEY UPDATE "))
        goto oom;
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < d->ncols; i++) {
            if (d->merge[i] == RT_MERGE_KEY || (d->merge[i] == RT_MERGE_SEQUENCE) != pass)
                continue;
            if ((!first && put(&b, ", ")) || assignment(&b, d, i))
                goto oom;
            first = 0;
        }
    if (first && (rt_sql_quote(&b, d->cols[0]) || put(&b, " = ") ||
                  rt_sql_quote(&b, d->cols[0])))
        goto oom;   /* only key columns: a duplicate changes nothing */
    if (!(d->insert_sql = rt_buf_take(&b)))
        goto oom;
    if (!d->exactly_once)
        return 0;
    if (put(&b, "SELECT topic, kafka_partition, next_offset FROM ") ||
        rt_sql_quote(&b, offsets) ||
        put(&b, " WHERE consumer_group = ? AND sink = ? FOR UPDATE") ||
        !(d->offsets_select_sql = rt_buf_take(&b)))
        goto oom;
    if (put(&b, "INSERT INTO ") || rt_sql_quote(&b, offsets) ||
        put(&b, " (consumer_group, sink, topic, kafka_partition, next_offset) "
                          "VALUES (?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE next_offset = "
                          "GREATEST(next_offset, VALUES(next_offset))") ||
        !(d->offsets_upsert_sql = rt_buf_take(&b)))
        goto oom;
    return 0;
oom:
    rt_buf_free(&b);
    return -1;
}

int rt_mysql_sink_def_load(rt_mysql_sink_def *d, const rt_config *c, const char *name,
                           char *err, size_t errlen)
{
    char key[256], msg[300];
    memset(d, 0, sizeof *d);
    d->sequence = -1;
    if (!(d->name = strdup(name)))
        goto oom;
    const char *table = rt_sink_conf(c, name, "table"), *cols = rt_sink_conf(c, name, "columns");
    if (!table || !rt_sql_identifier(table, strlen(table)))
        return rt_sink_conf_error(c, name, "table", err, errlen,
                                  table ? "must be a table name made of [A-Za-z0-9_]"
                                        : "required for a mysql sink");
    if (!(d->table = strdup(table)))
        goto oom;
    int got = cols ? rt_sql_names(cols, &d->cols, &d->ncols) : -2;
    if (got == -1)
        goto oom;
    if (got == -2 || d->ncols == 0)
        return rt_sink_conf_error(c, name, "columns", err, errlen,
                                  cols ? "must be a comma list of column names made of "
                                         "[A-Za-z0-9_]"
                                       : "required for a mysql sink");
    if (d->ncols > RT_JSON_PICK_MAX)
        return rt_sink_conf_error(c, name, "columns", err, errlen,
                                  "names more than " RT_JSON_PICK_STR " columns");
    d->paths = calloc(d->ncols, sizeof *d->paths);
    d->merge = calloc(d->ncols, sizeof *d->merge);
    if (!d->paths || !d->merge)
        goto oom;
    for (size_t i = 0; i < d->ncols; i++) {
        d->merge[i] = RT_MERGE_REPLACE;
        snprintf(key, sizeof key, "sink.%s.field.%s", name, d->cols[i]);
        const char *path = rt_config_get(c, key);
        if (!(d->paths[i] = strdup(path && *path ? path : d->cols[i])))
            goto oom;
    }
    /* A field mapping for a column that is not written is a typo: say so. */
    snprintf(key, sizeof key, "sink.%s.field.", name);
    for (size_t i = 0; i < c->n; i++)
        if (strncmp(c->v[i].key, key, strlen(key)) == 0 &&
            column_index(d, c->v[i].key + strlen(key)) < 0) {
            snprintf(err, errlen, "%s:%d: %s: '%s' is not in sink.%s.columns", c->v[i].file,
                     c->v[i].line, c->v[i].key, c->v[i].key + strlen(key), name);
            return -1;
        }
    if (!rt_sink_conf(c, name, "key"))
        return rt_sink_conf_error(c, name, "key", err, errlen,
                                  "required for a mysql sink: the columns of the table's "
                                  "primary or unique key, which make writes upserts");
    if (mark(d, c, "key", RT_MERGE_KEY, err, errlen) < 0 ||
        mark(d, c, "sum", RT_MERGE_SUM, err, errlen) < 0)
        return -1;
    const char *seq = rt_sink_conf(c, name, "sequence.column");
    if (seq) {
        if ((d->sequence = column_index(d, seq)) < 0 || d->merge[d->sequence] != RT_MERGE_REPLACE) {
            snprintf(msg, sizeof msg, "'%s' must be a column of sink.%s.columns that is not "
                     "a key or sum column", seq, name);
            return rt_sink_conf_error(c, name, "sequence.column", err, errlen, msg);
        }
        d->merge[d->sequence] = RT_MERGE_SEQUENCE;
        if (rt_sink_conf(c, name, "sequence.group")) {
            if (mark(d, c, "sequence.group", RT_MERGE_SEQUENCED, err, errlen) < 0)
                return -1;
        } else {
            for (size_t i = 0; i < d->ncols; i++)
                if (d->merge[i] == RT_MERGE_REPLACE)
                    d->merge[i] = RT_MERGE_SEQUENCED;
        }
    } else if (rt_sink_conf(c, name, "sequence.group")) {
        return rt_sink_conf_error(c, name, "sequence.group", err, errlen,
                                  "needs sink.<name>.sequence.column");
    }
    d->batch_rows = rt_sink_conf_int(c, name, "batch.rows");
    d->batch_ms = rt_sink_conf_int(c, name, "batch.ms");
    d->retry_ms = rt_config_int(c, "mysql.retry.backoff.ms");
    d->retry_max_ms = rt_config_int(c, "mysql.retry.backoff.max.ms");
    d->exactly_once = (int)rt_sink_conf_int(c, name, "exactly.once");
    const char *offsets = rt_sink_conf(c, name, "offsets.table");
    if (d->exactly_once) {
        d->group = rt_config_get(c, "kafka.group.id");
        if (!rt_source_kind_has(c, RT_SOURCE_COMMITS) || !d->group)
            return rt_sink_conf_error(c, name, "exactly.once", err, errlen,
                                      "needs source.type=kafka and kafka.group.id: the "
                                      "offsets stored are the consumer group's");
        if (!rt_sql_identifier(offsets, strlen(offsets)))
            return rt_sink_conf_error(c, name, "offsets.table", err, errlen,
                                      "must be a table name made of [A-Za-z0-9_]");
    }
    if (build_sql(d, offsets) < 0)
        goto oom;
    return rt_mysql_conf_load(&d->db, c, err, errlen);
oom:
    snprintf(err, errlen, "out of memory");
    return -1;
}

void rt_mysql_sink_def_free(rt_mysql_sink_def *d)
{
    rt_sql_names_free(d->cols, d->ncols);
    if (d->paths)
        rt_sql_names_free(d->paths, d->ncols);
    free(d->merge);
    free(d->name);
    free(d->table);
    free(d->insert_sql);
    free(d->offsets_select_sql);
    free(d->offsets_upsert_sql);
    rt_mysql_conf_free(&d->db);
    memset(d, 0, sizeof *d);
}
