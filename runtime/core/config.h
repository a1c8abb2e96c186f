/* config.h - the properties file: parsing, ${VAR} expansion, --set overrides, validation. */
#ifndef RT_CONFIG_H
#define RT_CONFIG_H

#include <stdio.h>

#include "keymap.h"

enum rt_conf_type { RT_CONF_STRING, RT_CONF_INT, RT_CONF_BOOL, RT_CONF_ENUM };

/* One known key. In `pattern` a '*' stands for one name without dots; a '*' at the
 * very end stands for the rest of the key (so route.*.* matches route.order.a.b). */
typedef struct rt_conf_key {
    const char *pattern;
    enum rt_conf_type type;
    const char *def;        /* default value, NULL when none */
    int required;
    const char *choices;    /* enums: "a|b|c" */
    long long min, max;     /* ints: inclusive bounds */
    const char *help;
} rt_conf_key;

/* The declarative table of eddy's own keys (config_keys.c), NULL-terminated. */
extern const rt_conf_key rt_conf_keys[];

/* Every known key: eddy's own, then the keys each source and sink kind registers
 * (core/source.h, core/sink.h). Start with `it` zeroed; NULL after the last. */
typedef struct rt_conf_iter {
    size_t table;
    const rt_conf_key *k;
} rt_conf_iter;
const rt_conf_key *rt_conf_next(rt_conf_iter *it);
/* The choices of an enum key, "a|b|c"; for source.type and sink.*.type (choices NULL
 * in the table) the names of the registered kinds. */
const char *rt_conf_choices(const rt_conf_key *s);

typedef struct rt_conf_entry {
    char *key;
    char *value;
    const char *file;       /* the config path, or "--set" */
    int line;               /* line in file, or position of the --set argument */
    const rt_conf_key *spec;
} rt_conf_entry;

typedef struct rt_config {
    rt_conf_entry *v;
    size_t n, cap;
    rt_keymap index;        /* key -> position in v + 1, so start-up is linear in keys */
    char *path;
} rt_config;

/* Read `path`, apply `sets` ("key=value"), check every key and value.
 * On error writes "FILE:LINE: key: what is wrong" into err and returns -1. */
int  rt_config_load(rt_config *c, const char *path, char *const *sets, int nsets,
                    char *err, size_t errlen);
/* Release everything the config holds. */
void rt_config_free(rt_config *c);
/* The entry set for `key`, or NULL when it was not set (defaults are not entries). */
const rt_conf_entry *rt_config_entry(const rt_config *c, const char *key);
/* The value of `key`: the set one, else the table default, else NULL. */
const char *rt_config_get(const rt_config *c, const char *key);
/* The value of an int or bool key (bools are 0/1); 0 when unset without default. */
long long rt_config_int(const rt_config *c, const char *key);
/* Where `key` was set, "FILE:LINE", for error messages; the config path when unset. */
const char *rt_config_where(const rt_config *c, const char *key, char *buf, size_t len);
/* config_show.c: true for keys whose values must never be printed (passwords, SASL). */
int  rt_config_is_secret(const char *key);
/* `value` of `key` as it may be printed: "***" for secrets, the password of a
 * scheme://user:password@host URL masked (written into buf), else value itself. */
const char *rt_config_shown(const char *key, const char *value, char *buf, size_t len);
/* Print the table of known keys with type, default and help (`eddy config`). */
void rt_config_print_keys(FILE *out);
/* Print the effective config, secrets masked (`eddy check`). */
void rt_config_print(const rt_config *c, FILE *out);
/* The effective config as JSON (GET /-/config): every set key with the file:line it
 * came from, then the defaults; secrets masked. Free the text; NULL when out of memory. */
char *rt_config_json(const rt_config *c);
/* Print each <prefix><name> declared by a <prefix><name><decl> key (sink.x.type) with
 * its settings: set ones with file:line, defaults that apply to its <tag_field>. */
void rt_config_print_declared(const rt_config *c, const char *prefix, const char *decl,
                              const char *tag_field, FILE *out);
/* Log one line saying what this run reads, writes and where (start-up), secrets masked. */
void rt_config_log_summary(const rt_config *c);

#endif
