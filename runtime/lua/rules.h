/* rules.h - the rules files of rules.dir (<name>.json), parsed by the host, handed to
 * processors by ctx.rules(name), and re-read on reload: a file that does not parse is
 * refused and the rules loaded before stay. */
#ifndef RT_RULES_H
#define RT_RULES_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

typedef struct rt_rules_file {
    char *name;             /* file name without .json */
    json_t *doc;            /* the rules in force; NULL if never parsed */
    uint64_t hash;          /* of the bytes of doc */
    uint64_t refused_hash;  /* of the last refused bytes, so they are reported once */
    char *error;            /* why the last change was refused; NULL when it was not */
    uint64_t reloads, failures;
} rt_rules_file;

typedef struct rt_rules {
    char *dir;
    rt_rules_file *v;
    size_t n, cap;
} rt_rules;

/* Read every *.json of `dir` (a missing dir holds no rules). -1 with err "FILE:LINE:
 * why" when one does not parse: start-up refuses it. */
int rt_rules_load(rt_rules *r, const char *dir, char *err, size_t errlen);
/* Read the dir again. Changed files that parse replace their rules and their names
 * are appended to `changed` (NUL-separated, ending in an empty name); refused ones are
 * logged and kept as they were. The number of changed files, or -1 when out of memory. */
int rt_rules_rescan(rt_rules *r, char **changed);
/* The rules named `name`, or NULL. */
const json_t *rt_rules_get(const rt_rules *r, const char *name);
void rt_rules_free(rt_rules *r);

#endif
