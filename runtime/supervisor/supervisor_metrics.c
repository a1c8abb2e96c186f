/* supervisor_metrics.c - one /metrics for all workers: the texts of the workers are
 * merged family by family, and samples with the same name and labels are added up, so
 * a dashboard sees the process as one. A restarted worker's counters start again from
 * 0; so that the sums never go down (Prometheus would read a reset of the whole sum),
 * the counters and histograms of a dead worker's last answer are kept ("retired") and
 * added to every later merge. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "supervisor.h"

typedef struct sample {
    char *key;              /* name{labels} */
    double value;
} sample;

typedef struct family {
    char *name, *help, *type;
    sample *v;
    size_t n, cap;
} family;

typedef struct merged {
    family *f;
    size_t n, cap;
} merged;

/* Gauges that are points in time or a build: taking the sum would mean nothing. */
static int combine_least(const char *name)
{
    return !strcmp(name, "eddy_start_time_seconds") || !strcmp(name, "eddy_watermark_seconds");
}

static int combine_greatest(const char *name)
{
    return !strcmp(name, "eddy_build_info") || strstr(name, "timestamp_seconds") ||
           !strcmp(name, "eddy_checkpoint_duration_seconds");
}

static family *family_get(merged *m, const char *name, size_t len)
{
    for (size_t i = 0; i < m->n; i++)
        if (strlen(m->f[i].name) == len && memcmp(m->f[i].name, name, len) == 0)
            return &m->f[i];
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 64;
        family *f = realloc(m->f, cap * sizeof *f);
        if (!f)
            return NULL;
        m->f = f;
        m->cap = cap;
    }
    family *f = &m->f[m->n];
    memset(f, 0, sizeof *f);
    if (!(f->name = strndup(name, len)))
        return NULL;
    m->n++;
    return f;
}

static int add_sample(family *f, const char *key, size_t len, double v)
{
    for (size_t i = 0; i < f->n; i++)
        if (strlen(f->v[i].key) == len && memcmp(f->v[i].key, key, len) == 0) {
            double *have = &f->v[i].value;
            if (f->type && !strcmp(f->type, "gauge") && combine_least(f->name))
                *have = v < *have ? v : *have;
            else if (f->type && !strcmp(f->type, "gauge") && combine_greatest(f->name))
                *have = v > *have ? v : *have;
            else
                *have += v;
            return 0;
        }
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 16;
        sample *s = realloc(f->v, cap * sizeof *s);
        if (!s)
            return -1;
        f->v = s;
        f->cap = cap;
    }
    if (!(f->v[f->n].key = strndup(key, len)))
        return -1;
    f->v[f->n++].value = v;
    return 0;
}

/* "# HELP name text" / "# TYPE name type": set the family's field once. */
static int comment(merged *m, const char *line, size_t len, family **cur)
{
    int help = len > 7 && !strncmp(line, "# HELP ", 7), type = len > 7 && !strncmp(line, "# TYPE ", 7);
    if (!help && !type)
        return 0;
    const char *name = line + 7, *sp = memchr(name, ' ', len - 7);
    if (!sp)
        return 0;
    family *f = family_get(m, name, (size_t)(sp - name));
    if (!f)
        return -1;
    char **field = help ? &f->help : &f->type;
    if (!*field && !(*field = strndup(sp + 1, (size_t)(line + len - sp - 1))))
        return -1;
    *cur = f;
    return 0;
}

/* A family whose samples only grow while its worker lives. */
static int is_cumulative(const family *f)
{
    return f->type && (!strcmp(f->type, "counter") || !strcmp(f->type, "histogram"));
}

/* Add the samples of `text` to m; with `cumulative_only`, those of counters and
 * histograms only. */
static int parse(merged *m, const char *text, size_t len, int cumulative_only)
{
    family *cur = NULL;
    for (const char *p = text, *end = text + len; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (n && p[0] == '#') {
            if (comment(m, p, n, &cur) < 0)
                return -1;
        } else if (n) {
            /* The value is after the last space (label values may hold spaces). */
            const char *sp = p + n;
            while (sp > p && sp[-1] != ' ')
                sp--;
            if (sp > p + 1) {
                const char *name_end = p;
                while (name_end < sp && *name_end != '{' && *name_end != ' ')
                    name_end++;
                family *f = cur && !strncmp(p, cur->name, strlen(cur->name))
                                ? cur : family_get(m, p, (size_t)(name_end - p));
                if (!f)
                    return -1;
                if ((!cumulative_only || is_cumulative(f)) &&
                    add_sample(f, p, (size_t)(sp - 1 - p), strtod(sp, NULL)) < 0)
                    return -1;
            }
        }
        p += n + 1;
    }
    return 0;
}

/* The merged families as text; a family without samples is left out when `skip_empty`. */
static int emit(const merged *m, rt_buf *out, int skip_empty)
{
    for (size_t i = 0; i < m->n; i++) {
        const family *f = &m->f[i];
        char line[128];
        if (skip_empty && !f->n)
            continue;
        if (f->help && (rt_buf_append(out, "# HELP ", 7) || rt_buf_append(out, f->name, strlen(f->name)) ||
                        rt_buf_putc(out, ' ') || rt_buf_append(out, f->help, strlen(f->help)) ||
                        rt_buf_putc(out, '\n')))
            return -1;
        if (f->type && (rt_buf_append(out, "# TYPE ", 7) || rt_buf_append(out, f->name, strlen(f->name)) ||
                        rt_buf_putc(out, ' ') || rt_buf_append(out, f->type, strlen(f->type)) ||
                        rt_buf_putc(out, '\n')))
            return -1;
        for (size_t j = 0; j < f->n; j++) {
            int k = snprintf(line, sizeof line, " %.17g\n", f->v[j].value);
            if (rt_buf_append(out, f->v[j].key, strlen(f->v[j].key)) ||
                rt_buf_append(out, line, (size_t)k))
                return -1;
        }
    }
    return 0;
}

static void merged_free(merged *m)
{
    for (size_t i = 0; i < m->n; i++) {
        for (size_t j = 0; j < m->f[i].n; j++)
            free(m->f[i].v[j].key);
        free(m->f[i].v);
        free(m->f[i].name);
        free(m->f[i].help);
        free(m->f[i].type);
    }
    free(m->f);
}

int rt_metrics_merge(const rt_buf *texts, size_t n, rt_buf *out)
{
    merged m = { 0 };
    int rc = -1;
    for (size_t i = 0; i < n; i++)
        if (texts[i].len && parse(&m, texts[i].data, texts[i].len, 0) < 0)
            goto out;
    rc = emit(&m, out, 0);
out:
    merged_free(&m);
    return rc;
}

int rt_metrics_retire(rt_buf *retired, const rt_buf *last)
{
    merged m = { 0 };
    rt_buf out = { 0 };
    int rc = -1;
    if ((retired->len && parse(&m, retired->data, retired->len, 1) < 0) ||
        (last->len && parse(&m, last->data, last->len, 1) < 0) || emit(&m, &out, 1) < 0)
        goto out;
    rt_buf_free(retired);
    *retired = out;
    out = (rt_buf){ 0 };
    rc = 0;
out:
    rt_buf_free(&out);
    merged_free(&m);
    return rc;
}
