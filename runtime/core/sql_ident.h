/* sql_ident.h - SQL identifiers taken from config: only [A-Za-z0-9_]+, backquoted. */
#ifndef RT_SQL_IDENT_H
#define RT_SQL_IDENT_H

#include <stddef.h>

#include "buf.h"

/* 1 when s[0..n) is a non-empty [A-Za-z0-9_]+ name. */
int  rt_sql_identifier(const char *s, size_t n);
/* Split a comma list ("a, b,c") into names. 0; -1 out of memory; -2 a bad name. */
int  rt_sql_names(const char *list, char ***names, size_t *n);
/* Free what rt_sql_names returned. */
void rt_sql_names_free(char **names, size_t n);
/* Append `name` backquoted. -1 when out of memory. */
int  rt_sql_quote(rt_buf *b, const char *name);

#endif
