/* source.c - the registry of input kinds, and the calls the worker makes on its source. */
#include <stdio.h>
#include <string.h>

#include "source.h"

/* The registry: every kind of input, found by `source.type`. */
const rt_source_kind *const rt_source_kinds[] = {
    &rt_source_kind_file, &rt_source_kind_kafka, NULL,
};

const rt_source_kind *rt_source_kind_of(const rt_config *c)
{
    const char *name = rt_config_get(c, "source.type");
    for (size_t i = 0; name && rt_source_kinds[i]; i++)
        if (strcmp(rt_source_kinds[i]->name, name) == 0)
            return rt_source_kinds[i];
    return NULL;
}

int rt_source_kind_has(const rt_config *c, unsigned flag)
{
    const rt_source_kind *k = rt_source_kind_of(c);
    return k && (k->flags & flag) == flag;
}

int rt_source_open(rt_source *s, const rt_source_env *env, char *err, size_t errlen)
{
    const rt_source_kind *k = rt_source_kind_of(env->cfg);
    s->kind = NULL;
    s->impl = NULL;
    if (!k) {
        /* config_keys.c refuses other values; this is the registry disagreeing. */
        snprintf(err, errlen, "%s: source.type: no such kind of source", env->cfg->path);
        return -1;
    }
    if (k->open(s, env, err, errlen) < 0) {
        if (s->impl)
            k->close(s);
        s->impl = NULL;
        return -1;
    }
    s->kind = k;
    return 0;
}

int rt_source_has(const rt_source *s, unsigned flag)
{
    return s->kind && (s->kind->flags & flag) == flag;
}

void rt_source_stop(rt_source *s)
{
    if (s->kind)
        s->kind->stop(s);
}

void rt_source_pause(rt_source *s, int pause)
{
    if (s->kind && s->kind->pause)
        s->kind->pause(s, pause);
}

void rt_source_commit_now(rt_source *s)
{
    if (s->kind && s->kind->commit_now)
        s->kind->commit_now(s);
}

void *rt_source_group_metadata(rt_source *s)
{
    return s->kind && s->kind->group_metadata ? s->kind->group_metadata(s) : NULL;
}

int rt_source_metrics(rt_source *s, rt_buf *out)
{
    return s->kind && s->kind->metrics ? s->kind->metrics(s, out) : 0;
}

void rt_source_where(rt_source *s, char *buf, size_t len)
{
    if (s->kind)
        s->kind->where(s, buf, len);
    else
        snprintf(buf, len, "?");
}

int rt_source_close(rt_source *s)
{
    int rc = 0;
    if (s->kind)
        rc = s->kind->close(s);
    s->kind = NULL;
    s->impl = NULL;
    return rc;
}
