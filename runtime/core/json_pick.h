/* json_pick.h - the values at a few dotted paths of one JSON object, found by a single
 * scan without building a tree (the mysql sink's per-row hot path). */
#ifndef RT_JSON_PICK_H
#define RT_JSON_PICK_H

#include <stddef.h>

#include "buf.h"

/* Most paths one call may ask for. */
#define RT_JSON_PICK_MAX 64
#define RT_JSON_PICK_STR "64"

typedef enum {
    RT_JSON_ABSENT = 0, RT_JSON_NULL, RT_JSON_FALSE, RT_JSON_TRUE,
    RT_JSON_NUMBER, RT_JSON_STRING, RT_JSON_OBJECT, RT_JSON_ARRAY
} rt_json_kind;

/* A value as it stands in the text: a string's span excludes its quotes and still holds
 * its escapes; a number, object or array is its text. */
typedef struct {
    rt_json_kind kind;
    const char  *at;
    size_t       len;
} rt_json_span;

/* Scan the object `text` and fill out[i] with the value at paths[i] ("a.b" looks into
 * the object at "a"); the last of duplicate keys wins, as with jansson. 0, or -1 when
 * the text is not one well-formed JSON object or n > RT_JSON_PICK_MAX. */
int rt_json_pick(const char *text, size_t len, const char *const *paths, size_t n,
                 rt_json_span *out);
/* Append a string span's characters with its escapes decoded (UTF-8); 0 or -1 when out
 * of memory or the escapes are malformed. */
int rt_json_unescape(rt_buf *b, const char *at, size_t len);

#endif
