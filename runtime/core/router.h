/* router.h - the route table: (domain, type) to processor. */
#ifndef RT_ROUTER_H
#define RT_ROUTER_H

#include <stdio.h>

#include "config.h"
#include "pairmap.h"

/* One (domain, type) a processor asks for; type "*" means every type of the domain. */
typedef struct rt_route_decl {
    char *domain, *type;
} rt_route_decl;

/* What the router needs to know of a processor. */
typedef struct rt_route_owner {
    const char *name, *path;
    const rt_route_decl *routes;
    size_t nroutes;
    int reachable;          /* some route must reach it (a processor in use) */
} rt_route_owner;

typedef struct rt_route {
    char *domain, *type;
    int owner;              /* index into the owners given to rt_router_build */
    char *from;             /* "declared" or the config FILE:LINE that set it */
} rt_route;

typedef struct rt_router {
    rt_pairmap map;         /* (domain, type) -> route index + 1 */
    rt_route *v;
    size_t n;
} rt_router;

/* Build from declared routes and route.<domain>.<type> keys. -1 with err set on a
 * conflict (naming both processors) or a route to an unknown processor. */
int  rt_router_build(rt_router *r, const rt_route_owner *owners, size_t nowners,
                     const rt_config *c, char *err, size_t errlen);
/* The owner index for (domain, type): an exact type first, then "*"; -1 for none.
 * *pair_hash: the pair's rt_pairmap hash, for the other maps keyed by it. */
int  rt_router_lookup(const rt_router *r, const char *domain, const char *type,
                      uint64_t *pair_hash);
/* Print the table, one route a line, sorted by domain then type. */
void rt_router_print(const rt_router *r, const rt_route_owner *owners, FILE *out);
/* Release the table. */
void rt_router_free(rt_router *r);

#endif
