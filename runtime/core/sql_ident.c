/* sql_ident.c - checking and quoting the table and column names that config gives.
 * Names are never taken from events; values only ever travel as bound parameters. */
#include <stdlib.h>
#include <string.h>

#include "sql_ident.h"

int rt_sql_identifier(const char *s, size_t n)
{
    if (!n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return 0;
    return 1;
}

int rt_sql_names(const char *list, char ***names, size_t *n)
{
    char **v = NULL;
    size_t k = 0;
    int rc = -1;
    for (const char *p = list; *p;) {
        p += strspn(p, " ");
        size_t len = strcspn(p, ","), m = len;
        while (m && p[m - 1] == ' ')
            m--;
        if (!rt_sql_identifier(p, m)) {
            rc = -2;
            goto fail;
        }
        char **nv = realloc(v, (k + 1) * sizeof *v);
        if (!nv)
            goto fail;
        v = nv;
        if (!(v[k] = strndup(p, m)))
            goto fail;
        k++;
        p += len + (p[len] == ',');
    }
    *names = v;
    *n = k;
    return 0;
fail:
    rt_sql_names_free(v, k);
    return rc;
}

void rt_sql_names_free(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

int rt_sql_quote(rt_buf *b, const char *name)
{
    if (rt_buf_putc(b, '`') < 0 || rt_buf_append(b, name, strlen(name)) < 0)
        return -1;
    return rt_buf_putc(b, '`');
}
