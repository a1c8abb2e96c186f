/* mysql_conf.c - the mysql.* keys: a mysql:// URL or separate host/port/user keys. */
#include <stdlib.h>
#include <string.h>

#include "mysql_conn.h"

static int set_dup(char **dst, const char *src, size_t n)
{
    free(*dst);
    *dst = strndup(src, n);
    return *dst ? 0 : -1;
}

/* mysql://user[:password]@host[:port]/database. The password is split at the last '@'
 * so that it may contain '@'; it never appears in an error message. */
static int parse_url(rt_mysql_conf *mc, const char *url, const char **what)
{
    const char *p = url, *at, *slash, *colon;
    *what = "must look like mysql://user:password@host:port/database";
    if (strncmp(p, "mysql://", 8))
        return -1;
    p += 8;
    /* '@' and '/' may sit in the password, so the last '@' ends it. */
    at = strrchr(p, '@');
    if (!at)
        return -1;
    slash = strchr(at, '/');
    if (!slash || !slash[1])
        return -1;
    colon = memchr(p, ':', (size_t)(at - p));
    if (set_dup(&mc->user, p, (size_t)((colon ? colon : at) - p)) < 0 ||
        set_dup(&mc->password, colon ? colon + 1 : at, colon ? (size_t)(at - colon - 1) : 0) < 0)
        goto oom;
    const char *host = at + 1, *port = memchr(host, ':', (size_t)(slash - host));
    if (set_dup(&mc->host, host, (size_t)((port ? port : slash) - host)) < 0 ||
        set_dup(&mc->database, slash + 1, strlen(slash + 1)) < 0)
        goto oom;
    if (!*mc->user || !*mc->host)
        return -1;
    if (port) {
        char *end;
        long v = strtol(port + 1, &end, 10);
        if (end != slash || v < 1 || v > 65535) {
            *what = "has a bad port";
            return -1;
        }
        mc->port = (unsigned)v;
    }
    return 0;
oom:
    *what = "out of memory";
    return -1;
}

int rt_mysql_conf_load(rt_mysql_conf *mc, const rt_config *c, char *err, size_t errlen)
{
    static const char *const tls_modes[] = { "disabled", "required", "verify", NULL };
    char where[300];
    const char *url = rt_config_get(c, "mysql.url"), *what = NULL;
    memset(mc, 0, sizeof *mc);
    mc->port = (unsigned)rt_config_int(c, "mysql.port");
    if (set_dup(&mc->host, rt_config_get(c, "mysql.host"), strlen(rt_config_get(c, "mysql.host"))) ||
        set_dup(&mc->user, rt_config_get(c, "mysql.user"), strlen(rt_config_get(c, "mysql.user"))) ||
        set_dup(&mc->password, rt_config_get(c, "mysql.password"),
                strlen(rt_config_get(c, "mysql.password"))) ||
        set_dup(&mc->database, rt_config_get(c, "mysql.database"),
                strlen(rt_config_get(c, "mysql.database")))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (url && parse_url(mc, url, &what) < 0) {
        snprintf(err, errlen, "%s: mysql.url: %s", rt_config_where(c, "mysql.url", where,
                 sizeof where), what);
        return -1;
    }
    const char *tls = rt_config_get(c, "mysql.tls");
    for (int i = 0; tls_modes[i]; i++)
        if (strcmp(tls, tls_modes[i]) == 0)
            mc->tls = i;
    mc->tls_ca = rt_config_get(c, "mysql.tls.ca");
    mc->tls_cert = rt_config_get(c, "mysql.tls.cert");
    mc->tls_key = rt_config_get(c, "mysql.tls.key");
    mc->timeout_ms = (int)rt_config_int(c, "mysql.timeout.ms");
    return 0;
}

void rt_mysql_conf_free(rt_mysql_conf *mc)
{
    free(mc->host);
    free(mc->user);
    free(mc->password);
    free(mc->database);
    memset(mc, 0, sizeof *mc);
}
