/* changes.c - the log of changed keys (changes.h): a flat buffer, so noting is an
 * append and clearing keeps the memory; the worker empties it after every event. */
#include <string.h>

#include "changes.h"

typedef struct entry {
    int32_t partition;
    uint32_t store, def;
    uint32_t len;
} entry;

void rt_changes_note(rt_changes *c, enum rt_change_store store, uint32_t def,
                     int32_t partition, const char *key, size_t len)
{
    if (!c)
        return;
    entry e = { partition, (uint32_t)store, def, (uint32_t)len };
    size_t mark = c->log.len;
    if (len > UINT32_MAX || rt_buf_append(&c->log, &e, sizeof e) < 0 ||
        rt_buf_append(&c->log, key, len) < 0) {
        c->log.len = mark;
        c->lost = 1;
    }
}

int rt_changes_next(const rt_changes *c, size_t *pos, rt_change *out)
{
    entry e;
    if (*pos + sizeof e > c->log.len)
        return 0;
    memcpy(&e, c->log.data + *pos, sizeof e);
    *out = (rt_change){ e.partition, (enum rt_change_store)e.store, e.def,
                        c->log.data + *pos + sizeof e, e.len };
    *pos += sizeof e + e.len;
    return 1;
}

void rt_changes_clear(rt_changes *c)
{
    c->log.len = 0;
}

void rt_changes_free(rt_changes *c)
{
    rt_buf_free(&c->log);
    c->lost = 0;
}
