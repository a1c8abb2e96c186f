/* readfile.h - a whole file into memory (processor sources, rules files). */
#ifndef RT_READFILE_H
#define RT_READFILE_H

#include <stddef.h>

/* The bytes of `path`, NUL-terminated (malloc'd; *len excludes the NUL). NULL with err
 * "PATH: why". */
char *rt_read_file(const char *path, size_t *len, char *err, size_t errlen);

#endif
