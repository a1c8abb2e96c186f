/* changes.h - which (partition, key) entries of a processor's keyed stores changed since
 * the changelog last wrote them (state.changelog=true): keyed state, one window
 * definition's keys, timers. A store with a log notes every write, delete, expiry and
 * firing here; the worker writes each noted entry's value as it is then (or a
 * tombstone when it is gone) and clears the log. Noting a key twice is harmless: the
 * current value is written twice. */
#ifndef RT_CHANGES_H
#define RT_CHANGES_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

enum rt_change_store { RT_CHANGE_STATE, RT_CHANGE_TIMER, RT_CHANGE_WINDOW };

typedef struct rt_changes {
    rt_buf log;             /* entries: a header, then the key bytes */
    int lost;               /* a note failed (out of memory): the changelog is incomplete */
} rt_changes;

typedef struct rt_change {
    int32_t partition;
    enum rt_change_store store;
    uint32_t def;           /* RT_CHANGE_WINDOW: the window definition's index */
    const char *key;        /* timers: key, '\0', tag */
    size_t len;
} rt_change;

/* Note a change; nothing when `c` is NULL (no changelog). */
void rt_changes_note(rt_changes *c, enum rt_change_store store, uint32_t def,
                     int32_t partition, const char *key, size_t len);
/* Iterate: start with *pos = 0; 1 with *out set, 0 at the end. */
int  rt_changes_next(const rt_changes *c, size_t *pos, rt_change *out);
/* Forget the notes (the memory is kept for the next ones). */
void rt_changes_clear(rt_changes *c);
void rt_changes_free(rt_changes *c);

#endif
