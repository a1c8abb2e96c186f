/* json_load.h - jansson's json_loadb, taking every valid JSON number. */
#ifndef RT_JSON_LOAD_H
#define RT_JSON_LOAD_H

#include <stddef.h>
#include <jansson.h>

/* json_loadb, except that an integer outside int64 (valid JSON, which jansson refuses
 * with "too big integer") is read as a double, as JavaScript and Lua read it. Integers
 * inside int64 stay exact. NULL and `err` filled on any other error. */
json_t *rt_json_loadb(const char *buf, size_t len, size_t flags, json_error_t *err);

#endif
