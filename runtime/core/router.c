/* router.c - route table.
 *
 * Config keys are applied first and fix their (domain, type): a declaration for a
 * fixed pair is overridden, not a conflict. That is how an operator settles two
 * processors that claim the same pair. */
#include <stdlib.h>
#include <string.h>

#include "router.h"

static int add(rt_router *r, const char *domain, const char *type, int owner,
               const char *from)
{
    uint64_t *slot = rt_pairmap_put(&r->map, domain, type);
    rt_route *v = realloc(r->v, (r->n + 1) * sizeof *v);
    if (!slot || !v)
        return -1;
    r->v = v;
    rt_route *rt = &r->v[r->n];
    rt->domain = strdup(domain);
    rt->type = strdup(type);
    rt->from = strdup(from);
    rt->owner = owner;
    r->n++;
    *slot = r->n;
    return rt->domain && rt->type && rt->from ? 0 : -1;
}

static int find_owner(const rt_route_owner *owners, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(owners[i].name, name) == 0)
            return (int)i;
    return -1;
}

int rt_router_build(rt_router *r, const rt_route_owner *owners, size_t nowners,
                    const rt_config *c, char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    for (size_t i = 0; i < c->n; i++) {
        const rt_conf_entry *e = &c->v[i];
        if (strncmp(e->key, "route.", 6))
            continue;
        char domain[256], where[300];
        const char *d = e->key + 6, *dot = strchr(d, '.');
        snprintf(domain, sizeof domain, "%.*s", (int)(dot - d), d);
        int owner = find_owner(owners, nowners, e->value);
        if (owner < 0) {
            snprintf(err, errlen, "%s:%d: %s: no processor named '%s'", e->file, e->line,
                     e->key, e->value);
            goto fail;
        }
        snprintf(where, sizeof where, "%s:%d", e->file, e->line);
        if (add(r, domain, dot + 1, owner, where) < 0)
            goto oom;
    }
    for (size_t o = 0; o < nowners; o++) {
        for (size_t k = 0; k < owners[o].nroutes; k++) {
            const rt_route_decl *d = &owners[o].routes[k];
            uint64_t *have = rt_pairmap_get(&r->map, d->domain, d->type);
            if (have) {
                const rt_route *old = &r->v[*have - 1];
                if (strcmp(old->from, "declared") || old->owner == (int)o)
                    continue;
                snprintf(err, errlen,
                         "route conflict: %s (%s) and %s (%s) both declare domain=%s "
                         "type=%s; set route.%s.%s=<processor> to choose one",
                         owners[old->owner].name, owners[old->owner].path, owners[o].name,
                         owners[o].path, d->domain, d->type, d->domain, d->type);
                goto fail;
            }
            if (add(r, d->domain, d->type, (int)o, "declared") < 0)
                goto oom;
        }
    }
    /* A processor that declares no route and that no route key names would get
     * nothing, silently ("0 routes"): `route =` for `routes =` once did that. (One
     * whose declared routes route.* keys all gave to another is the operator's
     * choice.) */
    for (size_t o = 0; o < nowners; o++) {
        size_t k = 0;
        while (k < r->n && r->v[k].owner != (int)o)
            k++;
        if (k < r->n || !owners[o].reachable || owners[o].nroutes)
            continue;
        snprintf(err, errlen, "%s: processor '%s' has no route, so no event would reach it: "
                 "declare routes = { { domain = \"...\", type = \"...\" } } or set "
                 "route.<domain>.<type>=%s", owners[o].path, owners[o].name, owners[o].name);
        goto fail;
    }
    return 0;
oom:
    snprintf(err, errlen, "out of memory building the route table");
fail:
    rt_router_free(r);
    return -1;
}

int rt_router_lookup(const rt_router *r, const char *domain, const char *type,
                     uint64_t *pair_hash)
{
    uint64_t ha = rt_pairmap_hash_a(domain);
    *pair_hash = rt_pairmap_hash_b(ha, type);
    const uint64_t *v = rt_pairmap_get_hashed(&r->map, domain, type, *pair_hash);
    if (!v)
        v = rt_pairmap_get_hashed(&r->map, domain, "*", rt_pairmap_hash_b(ha, "*"));
    return v ? r->v[*v - 1].owner : -1;
}

static int by_domain_type(const void *a, const void *b)
{
    const rt_route *x = *(const rt_route *const *)a, *y = *(const rt_route *const *)b;
    int c = strcmp(x->domain, y->domain);
    return c ? c : strcmp(x->type, y->type);
}

void rt_router_print(const rt_router *r, const rt_route_owner *owners, FILE *out)
{
    const rt_route **sorted = malloc((r->n ? r->n : 1) * sizeof *sorted);
    if (!sorted)
        return;
    for (size_t i = 0; i < r->n; i++)
        sorted[i] = &r->v[i];
    qsort(sorted, r->n, sizeof *sorted, by_domain_type);
    fprintf(out, "%-12s %-20s %-12s %s\n", "DOMAIN", "TYPE", "PROCESSOR", "FROM");
    for (size_t i = 0; i < r->n; i++)
        fprintf(out, "%-12s %-20s %-12s %s\n", sorted[i]->domain, sorted[i]->type,
                owners[sorted[i]->owner].name,
                strcmp(sorted[i]->from, "declared") ? sorted[i]->from
                                                    : owners[sorted[i]->owner].path);
    free(sorted);
}

void rt_router_free(rt_router *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->v[i].domain);
        free(r->v[i].type);
        free(r->v[i].from);
    }
    free(r->v);
    rt_pairmap_free(&r->map);
    memset(r, 0, sizeof *r);
}
