/* nearest.h - "did you mean": how far a mistyped name is from a known one. */
#ifndef RT_NEAREST_H
#define RT_NEAREST_H

#include <stddef.h>

/* Edits to turn a into b (Levenshtein); SIZE_MAX when either has 256 bytes or more. */
size_t rt_edit_distance(const char *a, const char *b);

#endif
