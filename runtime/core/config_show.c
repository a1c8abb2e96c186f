/* config_show.c - the config as operators see it: `eddy config`, `eddy check`, the
 * start-up log line and GET /-/config. Every path that prints a value goes through
 * rt_config_shown, so a secret cannot leak through one of them. */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "config.h"
#include "log.h"
#include "source.h"

int rt_config_is_secret(const char *key)
{
    static const char *const words[] = { "password", "secret", "sasl", "token", "key.pem",
                                         "api.key" };
    for (size_t i = 0; i < sizeof words / sizeof *words; i++)
        if (strstr(key, words[i]))
            return 1;
    return 0;
}

/* Append n bytes of s to buf (len bytes, NUL kept), clamped. */
static void append(char *buf, size_t len, size_t *o, const char *s, size_t n)
{
    if (*o + 1 >= len)
        return;
    if (n > len - 1 - *o)
        n = len - 1 - *o;
    memcpy(buf + *o, s, n);
    *o += n;
    buf[*o] = '\0';
}

const char *rt_config_shown(const char *key, const char *value, char *buf, size_t len)
{
    if (rt_config_is_secret(key))
        return *value ? "***" : "";
    /* scheme://user:password@host...: keep the user and host, hide the password. The
     * password may hold '@' and '/', so as mysql.url's parser does, the last '@' ends
     * it; a URL with '@' only in its path is masked too, which leaks nothing. */
    const char *scheme = strstr(value, "://");
    if (!scheme || !len)
        return value;
    const char *user = scheme + 3, *at = strrchr(user, '@');
    const char *colon = at ? memchr(user, ':', (size_t)(at - user)) : NULL;
    const char *rest = colon ? at : value, *query = strchr(rest, '?');
    if (!colon && !query)
        return value;
    size_t o = 0;
    buf[0] = '\0';
    if (colon) {
        append(buf, len, &o, value, (size_t)(colon - value));
        append(buf, len, &o, ":***", 4);
    }
    if (!query) {
        append(buf, len, &o, rest, strlen(rest));
        return buf;
    }
    /* ?api_key=...&token=...: every query value is hidden, whatever its name; the
     * names stay, so the operator still sees what is set. */
    append(buf, len, &o, rest, (size_t)(query - rest));
    for (const char *p = query; *p && *p != '#';) {
        size_t name = strcspn(p + 1, "=&#") + 1;
        append(buf, len, &o, p, name);
        p += name;
        if (*p == '=') {
            append(buf, len, &o, "=***", 4);
            p += 1 + strcspn(p + 1, "&#");
        }
    }
    const char *frag = strchr(query, '#');
    if (frag)
        append(buf, len, &o, frag, strlen(frag));
    return buf;
}

static const char *type_name(const rt_conf_key *s)
{
    switch (s->type) {
    case RT_CONF_INT: return "int";
    case RT_CONF_BOOL: return "bool";
    case RT_CONF_ENUM: return rt_conf_choices(s);
    case RT_CONF_STRING: break;
    }
    return "string";
}

void rt_config_print_keys(FILE *out)
{
    fprintf(out, "%-26s %-20s %-16s %s\n", "KEY", "TYPE", "DEFAULT", "MEANING");
    rt_conf_iter it = { 0 };
    for (const rt_conf_key *s = rt_conf_next(&it); s; s = rt_conf_next(&it))
        fprintf(out, "%-26s %-20s %-16s %s\n", s->pattern, type_name(s),
                s->def ? (*s->def ? s->def : "(empty)") : (s->required ? "(required)" : "-"),
                s->help);
}

void rt_config_print(const rt_config *c, FILE *out)
{
    char buf[1024];
    for (size_t i = 0; i < c->n; i++)
        fprintf(out, "  %s=%s\n", c->v[i].key,
                rt_config_shown(c->v[i].key, c->v[i].value, buf, sizeof buf));
}

/* One key of GET /-/config: its value as shown and where it came from. */
static int add_key(json_t *keys, const char *key, const char *value, const char *from)
{
    char buf[1024];
    json_t *k = json_object();
    if (!k || json_array_append_new(keys, k))
        return -1;
    return json_object_set_new(k, "key", json_string(key)) ||
           json_object_set_new(k, "value", json_string(rt_config_shown(key, value, buf,
                                                                       sizeof buf))) ||
           json_object_set_new(k, "from", json_string(from));
}

char *rt_config_json(const rt_config *c)
{
    char *text = NULL;
    json_t *root = json_object(), *keys = json_array();
    if (!root || !keys || json_object_set_new(root, "file", json_string(c->path)) ||
        json_object_set(root, "keys", keys))
        goto out;
    /* What was set, with file:line (or --set), then the defaults of the plain keys. */
    for (size_t i = 0; i < c->n; i++) {
        char where[512];
        snprintf(where, sizeof where, "%s:%d", c->v[i].file, c->v[i].line);
        if (add_key(keys, c->v[i].key, c->v[i].value, where))
            goto out;
    }
    rt_conf_iter it = { 0 };
    for (const rt_conf_key *s = rt_conf_next(&it); s; s = rt_conf_next(&it))
        if (s->def && !strchr(s->pattern, '*') && !rt_config_entry(c, s->pattern) &&
            add_key(keys, s->pattern, s->def, "default"))
            goto out;
    text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
out:
    json_decref(keys);
    json_decref(root);
    return text;
}

/* The next entry from *i on that declares a <prefix><name><decl> (sink.x.type,
 * lookup.x.table): its name goes into `name`. 0 when there are no more. */
static int next_declared(const rt_config *c, size_t *i, const char *prefix, const char *decl,
                         char *name, size_t len)
{
    size_t plen = strlen(prefix), dlen = strlen(decl);
    for (; *i < c->n; (*i)++) {
        const char *k = c->v[*i].key;
        size_t klen = strlen(k);
        if (strncmp(k, prefix, plen) || klen <= plen + dlen || strcmp(k + klen - dlen, decl))
            continue;
        snprintf(name, len, "%.*s", (int)(klen - plen - dlen), k + plen);
        (*i)++;
        return 1;
    }
    return 0;
}

/* The value of <prefix><name><field>, or "-". */
static const char *group_get(const rt_config *c, const char *prefix, const char *name,
                             const char *field)
{
    char key[512];
    snprintf(key, sizeof key, "%s%s%s", prefix, name, field);
    const char *v = rt_config_get(c, key);
    return v ? v : "-";
}

/* Append " name(value of name.<field>)" for every name declared by <prefix>.<name><decl>. */
static void list_declared(const rt_config *c, const char *prefix, const char *decl,
                          const char *field, char *out, size_t cap)
{
    char name[256];
    size_t o = 0, i = 0;
    while (o < cap && next_declared(c, &i, prefix, decl, name, sizeof name))
        o += (size_t)snprintf(out + o, cap - o, " %s(%s)", name,
                              group_get(c, prefix, name, field));
}

/* Does a default, whose help is `help`, apply to a group of kind `tag`? Help texts
 * start with the kinds they are for ("MySQL sink: ...", "full cache: ..."). */
static int default_applies(const char *help, const char *tag)
{
    static const char *const kinds[] = { "MySQL", "Elasticsearch", "Kafka", "partial cache",
                                         "full cache" };
    const char *colon = strchr(help, ':');
    if (!colon)
        return 1;
    char head[128];
    snprintf(head, sizeof head, "%.*s", (int)(colon - help), help);
    if (strstr(head, tag))
        return 1;
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++)
        if (strstr(head, kinds[i]))
            return 0;
    return 1;
}

/* One key set in a group: "field=value  [file:line]", the value masked if secret. */
static void print_set(const rt_conf_entry *e, size_t group_len, FILE *out)
{
    char buf[1024];
    fprintf(out, "      %s=%s  [%s:%d]\n", e->key + group_len,
            rt_config_shown(e->key, e->value, buf, sizeof buf), e->file, e->line);
}

/* Print the keys of one sink or lookup: the ones set, with where, and the defaults
 * that apply to its kind `tag`. Keys are looked up, not scanned for, so `eddy check`
 * stays linear in the number of keys; only sink.*.field.* needs a scan. */
static void print_group(const rt_config *c, const char *prefix, const char *name,
                        const char *tag, FILE *out)
{
    size_t plen = strlen(prefix), group_len = plen + strlen(name) + 1;
    rt_conf_iter it = { 0 };
    for (const rt_conf_key *s = rt_conf_next(&it); s; s = rt_conf_next(&it)) {
        if (strncmp(s->pattern, prefix, plen) || strncmp(s->pattern + plen, "*.", 2))
            continue;
        const char *field = s->pattern + plen + 1;     /* ".table" */
        char key[512];
        size_t klen = (size_t)snprintf(key, sizeof key, "%s%s%s", prefix, name, field);
        if (field[strlen(field) - 1] == '*') {          /* many keys: the ones set */
            for (size_t i = 0; i < c->n; i++)
                if (c->v[i].spec == s && strncmp(c->v[i].key, key, klen - 1) == 0)
                    print_set(&c->v[i], group_len, out);
            continue;
        }
        const rt_conf_entry *e = rt_config_entry(c, key);
        if (e)
            print_set(e, group_len, out);
        else if (s->def && default_applies(s->help, tag))
            fprintf(out, "      %s=%s  [default]\n", field + 1, s->def);
    }
}

void rt_config_print_declared(const rt_config *c, const char *prefix, const char *decl,
                              const char *tag_field, FILE *out)
{
    static const struct { const char *type, *tag; } tags[] = {
        { "mysql", "MySQL" }, { "elasticsearch", "Elasticsearch" }, { "kafka", "Kafka" },
        { "partial", "partial cache" }, { "full", "full cache" },
    };
    char name[256];
    size_t i = 0;
    while (next_declared(c, &i, prefix, decl, name, sizeof name)) {
        const char *kind = group_get(c, prefix, name, tag_field), *tag = kind;
        for (size_t t = 0; t < sizeof tags / sizeof *tags; t++)
            if (!strcmp(kind, tags[t].type))
                tag = tags[t].tag;
        fprintf(out, "  %s (%s)\n", name, kind);
        print_group(c, prefix, name, tag, out);
    }
}

/* The value of `key`, or "-" when it has none (the summary runs before the checks that
 * would refuse that). */
static const char *val(const rt_config *c, const char *key)
{
    const char *v = rt_config_get(c, key);
    return v ? v : "-";
}

void rt_config_log_summary(const rt_config *c)
{
    char sinks[768] = "", lookups[768] = "", mysql[512] = "", where[512] = "", buf[512];
    const char *src = val(c, "source.type"), *url = rt_config_get(c, "mysql.url");
    int kafka = rt_source_kind_has(c, RT_SOURCE_COMMITS);     /* a consumer group's */
    list_declared(c, "sink.", ".type", ".type", sinks, sizeof sinks);
    list_declared(c, "lookup.", ".table", ".cache", lookups, sizeof lookups);
    if (url)
        snprintf(mysql, sizeof mysql, " mysql=%s", rt_config_shown("mysql.url", url, buf,
                                                                   sizeof buf));
    else if (lookups[0] || strstr(sinks, "(mysql)"))
        snprintf(mysql, sizeof mysql, " mysql=%s@%s:%s/%s", val(c, "mysql.user"),
                 val(c, "mysql.host"), val(c, "mysql.port"), val(c, "mysql.database"));
    if (kafka)
        snprintf(where, sizeof where, "%s bootstrap=%s", val(c, "source.topics"),
                 rt_config_get(c, "kafka.embedded") && rt_config_int(c, "kafka.embedded")
                     ? "embedded" : val(c, "kafka.bootstrap.servers"));
    else
        snprintf(where, sizeof where, "%s", val(c, "source.file.path"));
    rt_info("config %s: source=%s %s processors.dir=%s rules.dir=%s sinks:%s lookups:%s%s "
            "dlq.sink=%s admin.listen=%s workers=%s state.dir=%s log=%s/%s",
            c->path, src, where, val(c, "processors.dir"), val(c, "rules.dir"),
            sinks[0] ? sinks : " none", lookups[0] ? lookups : " none", mysql,
            val(c, "dlq.sink"), val(c, "admin.listen"), val(c, "runtime.workers"),
            val(c, "state.dir"), val(c, "log.level"), val(c, "log.format"));
}
