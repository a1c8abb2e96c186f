/* rules.c - rules files parsed by the host; a bad change is refused, the old rules stay. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "log.h"
#include "readfile.h"
#include "rules.h"

static int json_file(const struct dirent *d)
{
    size_t n = strlen(d->d_name);
    return n > 5 && d->d_name[0] != '.' && strcmp(d->d_name + n - 5, ".json") == 0;
}

static rt_rules_file *find(const rt_rules *r, const char *name)
{
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->v[i].name, name) == 0)
            return &r->v[i];
    return NULL;
}

static rt_rules_file *add(rt_rules *r, const char *name, size_t len)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 8;
        rt_rules_file *v = realloc(r->v, cap * sizeof *v);
        if (!v)
            return NULL;
        r->v = v;
        r->cap = cap;
    }
    rt_rules_file *f = &r->v[r->n];
    memset(f, 0, sizeof *f);
    if (!(f->name = strndup(name, len)))
        return NULL;
    r->n++;
    return f;
}

/* Read and parse one file into f. 1 when its rules changed, 0 when the bytes are the
 * ones in force (or the ones refused last time), -1 with f->error set when refused. */
static int read_one(rt_rules *r, rt_rules_file *f, const char *path)
{
    char err[512];
    size_t len;
    char *src = rt_read_file(path, &len, err, sizeof err);
    int rc = -1;
    if (src) {
        uint64_t h = rt_fnv1a(RT_FNV1A_INIT, src, len);
        if ((f->doc && h == f->hash) || (f->error && h == f->refused_hash)) {
            free(src);
            return 0;
        }
        json_error_t jerr;
        json_t *doc = json_loadb(src, len, JSON_DECODE_ANY, &jerr);
        free(src);
        if (doc) {
            json_decref(f->doc);
            f->doc = doc;
            f->hash = h;
            free(f->error);
            f->error = NULL;
            return 1;
        }
        f->refused_hash = h;
        snprintf(err, sizeof err, "%.300s:%d: %.160s", path, jerr.line, jerr.text);
    }
    free(f->error);
    f->error = strdup(err);
    return rc;
}

static int scan(rt_rules *r, char **changed, size_t *nchanged, char *err, size_t errlen)
{
    struct dirent **names = NULL;
    int n = scandir(r->dir, &names, json_file, alphasort), rc = 0;
    size_t used = 0;
    if (n < 0)
        return errno == ENOENT ? 0 : (snprintf(err, errlen, "rules.dir %s: %s", r->dir,
                                                strerror(errno)), -1);
    for (int i = 0; i < n && rc == 0; i++) {
        char path[4096];
        const char *base = names[i]->d_name;
        size_t stem = strlen(base) - 5;
        snprintf(path, sizeof path, "%s/%s", r->dir, base);
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)stem, base);
        rt_rules_file *f = find(r, name);
        if (!f && !(f = add(r, base, stem))) {
            snprintf(err, errlen, "out of memory");
            rc = -1;
            break;
        }
        int got = read_one(r, f, path);
        if (got < 0 && !changed) {
            snprintf(err, errlen, "%s", f->error);
            rc = -1;
        } else if (got < 0) {
            f->failures++;
            rt_error("rules %s refused: %s; the rules loaded before stay", name, f->error);
        } else if (got > 0 && changed) {
            f->reloads++;
            rt_info("rules %s reloaded from %s", name, path);
            size_t need = used + strlen(name) + 2;
            char *c = realloc(*changed, need);
            if (!c) {
                rc = -1;
                break;
            }
            memcpy(c + used, name, strlen(name) + 1);
            used += strlen(name) + 1;
            c[used] = '\0';
            *changed = c;
            (*nchanged)++;
        }
    }
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

int rt_rules_load(rt_rules *r, const char *dir, char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    if (!(r->dir = strdup(dir))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return scan(r, NULL, NULL, err, errlen);
}

int rt_rules_rescan(rt_rules *r, char **changed)
{
    char err[256];
    size_t n = 0;
    *changed = NULL;
    if (scan(r, changed, &n, err, sizeof err) < 0) {
        rt_error("rules: %s", err);
        return -1;
    }
    return (int)n;
}

const json_t *rt_rules_get(const rt_rules *r, const char *name)
{
    const rt_rules_file *f = r ? find(r, name) : NULL;
    return f ? f->doc : NULL;
}

void rt_rules_free(rt_rules *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->v[i].name);
        free(r->v[i].error);
        json_decref(r->v[i].doc);
    }
    free(r->v);
    free(r->dir);
    memset(r, 0, sizeof *r);
}
