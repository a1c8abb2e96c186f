/* reload_report.c - what a reload did (the answer to POST /-/reload) and where every
 * processor stands (GET /-/processors), as JSON. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "reload_int.h"

int rt_report_init(rt_reload_report *r)
{
    r->unchanged = 0;
    r->doc = json_pack("{s:[], s:[], s:[], s:[], s:[]}", "reloaded", "added", "removed",
                       "refused", "rules");
    return r->doc ? 0 : -1;
}

void rt_report_name(rt_reload_report *r, const char *list, const char *name)
{
    json_array_append_new(json_object_get(r->doc, list), json_string(name));
}

void rt_report_refused(rt_reload_report *r, const char *path, const char *error)
{
    json_array_append_new(json_object_get(r->doc, "refused"),
                          json_pack("{s:s, s:s}", "file", path, "error", error));
}

static int dump(json_t *doc, rt_buf *out)
{
    char *text = doc ? json_dumps(doc, JSON_INDENT(2)) : NULL;
    int rc = text && rt_buf_append(out, text, strlen(text)) == 0 && rt_buf_putc(out, '\n') == 0
                 ? 0 : -1;
    free(text);
    return rc;
}

int rt_report_dump(rt_reload_report *r, rt_buf *out)
{
    json_object_set_new(r->doc, "unchanged", json_integer((json_int_t)r->unchanged));
    return dump(r->doc, out);
}

void rt_report_free(rt_reload_report *r)
{
    json_decref(r->doc);
    r->doc = NULL;
}

static json_t *describe_one(const rt_worker *w, const rt_processor *p)
{
    char hash[17];
    snprintf(hash, sizeof hash, "%016llx", (unsigned long long)p->hash);
    json_t *routes = json_array(), *limits = json_object();
    for (size_t i = 0; routes && !p->removed && i < w->router.n; i++) {
        const rt_route *r = &w->router.v[i];
        if ((size_t)r->owner == p->slot)
            json_array_append_new(routes, json_pack("{s:s, s:s, s:s}", "domain", r->domain,
                                                    "type", r->type, "from", r->from));
    }
    for (int l = RT_LIMIT_NONE + 1; limits && l < RT_NLIMITS; l++)
        json_object_set_new(limits, rt_limit_names[l], json_integer((json_int_t)p->limit_hits[l]));
    return json_pack("{s:s, s:s, s:s, s:s?, s:I, s:o, s:I, s:I, s:I, s:I, s:I, s:s?, s:b, s:b, "
                     "s:I, s:o}",
                     "name", p->name, "file", p->path, "hash", hash, "key", p->key,
                     "loaded_at_ms", (json_int_t)p->loaded_at, "routes", routes,
                     "events", (json_int_t)p->processed, "errors", (json_int_t)p->errors,
                     "reloads", (json_int_t)p->reloads,
                     "reload_failures", (json_int_t)p->reload_failures,
                     "verified_events", (json_int_t)p->verified,
                     "last_reload_error", p->last_error, "quarantined", p->quarantined,
                     "removed", p->removed, "memory_bytes", (json_int_t)p->mem_used,
                     "limit_hits", limits);
}

int rt_reload_describe(rt_worker *w, rt_buf *out)
{
    json_t *doc = json_pack("{s:i, s:i, s:[], s:[], s:[]}", "worker", w->index, "pid",
                            (int)getpid(), "processors", "refused_files", "rules");
    if (!doc)
        return -1;
    json_t *procs = json_object_get(doc, "processors");
    for (size_t i = 0; i < w->nprocs; i++)
        json_array_append_new(procs, describe_one(w, w->procs[i]));
    for (size_t i = 0; w->reload && i < w->reload->nrefused; i++) {
        const rt_refused *f = &w->reload->refused[i];
        json_array_append_new(json_object_get(doc, "refused_files"),
                              json_pack("{s:s, s:s, s:I}", "file", f->path, "error", f->error,
                                        "failures", (json_int_t)f->failures));
    }
    for (size_t i = 0; i < w->rules.n; i++) {
        const rt_rules_file *f = &w->rules.v[i];
        char hash[17];
        snprintf(hash, sizeof hash, "%016llx", (unsigned long long)f->hash);
        json_array_append_new(json_object_get(doc, "rules"),
                              json_pack("{s:s, s:s, s:b, s:I, s:I, s:s?}", "name", f->name,
                                        "hash", hash, "loaded", f->doc != NULL,
                                        "reloads", (json_int_t)f->reloads,
                                        "failures", (json_int_t)f->failures,
                                        "last_error", f->error));
    }
    int rc = dump(doc, out);
    json_decref(doc);
    return rc;
}
