/* sink_mysql.h - the MySQL sink: batched upserts into a (wide) table, at least once or
 * exactly once with the consumed offsets committed in the same transaction. */
#ifndef RT_SINK_MYSQL_H
#define RT_SINK_MYSQL_H

#include "mysql_conn.h"
#include "sink.h"

/* How a column is updated when the row's key exists already. */
enum rt_merge {
    RT_MERGE_KEY,       /* part of the key: never updated */
    RT_MERGE_REPLACE,   /* the new value, unless it is NULL (partial update) */
    RT_MERGE_SUM,       /* old + new (sink.<name>.sum) */
    RT_MERGE_SEQUENCED, /* the new value only from a row whose sequence is not older */
    RT_MERGE_SEQUENCE,  /* the sequence column itself: the greatest seen */
};

/* One sink.<name>.* definition, with its SQL built once. */
typedef struct rt_mysql_sink_def {
    char *name, *table;
    char **cols;            /* columns written, in statement order */
    char **paths;           /* record field path per column ("a.b" descends) */
    enum rt_merge *merge;
    size_t ncols;
    int sequence;           /* index of the sequence column, or -1 */
    long long batch_rows, batch_ms;
    long long retry_ms, retry_max_ms;   /* mysql.retry.backoff[.max].ms */
    int exactly_once;
    const char *group;      /* kafka.group.id, for the offsets table */
    char *insert_sql, *offsets_select_sql, *offsets_upsert_sql;
    rt_mysql_conf db;
} rt_mysql_sink_def;

/* Read and check sink.<name>.* of a mysql sink. -1 with err "FILE:LINE: key: what". */
int  rt_mysql_sink_def_load(rt_mysql_sink_def *d, const rt_config *c, const char *name,
                            char *err, size_t errlen);
void rt_mysql_sink_def_free(rt_mysql_sink_def *d);

#endif
