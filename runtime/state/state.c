/* state.c - keyed state. Values are opaque bytes here: the bindings serialize Lua
 * values, so the store can outlive a processor's Lua state and be checkpointed. TTL is
 * on processing time, as Flink's StateTtlConfig: checked on read, and swept a bounded
 * part of the map at a time by rt_state_sweep (Flink's incremental cleanup), so that
 * keys never read again do not stay forever. */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "state.h"

int rt_state_init(rt_state *st, const char *name)
{
    memset(st, 0, sizeof *st);
    st->name = strdup(name);
    return st->name ? 0 : -1;
}

static void drop(rt_state *st, rt_state_value *v, size_t klen)
{
    st->bytes -= v->len + klen;
    free(v);
}

const rt_state_value *rt_state_get(rt_state *st, int32_t partition, const char *key,
                                   size_t klen, int64_t now_ms)
{
    rt_state_value *v = rt_keymap_get(&st->map, partition, key, klen);
    if (v && v->expires_ms && v->expires_ms <= now_ms) {
        drop(st, rt_keymap_del(&st->map, partition, key, klen), klen);
        rt_changes_note(st->changes, RT_CHANGE_STATE, 0, partition, key, klen);
        st->expired++;
        return NULL;
    }
    return v;
}

/* One write of a call, in its undo log: the key, then this header, so the log is
 * read back from its end. `old` is the value the write replaced (NULL: none). */
typedef struct undo_entry {
    rt_state_value *old;
    size_t klen;
    int32_t partition;
} undo_entry;

static int log_write(rt_buf *undo, int32_t partition, const char *key, size_t klen)
{
    undo_entry e = { NULL, klen, partition };
    size_t mark = undo->len;
    if (rt_buf_append(undo, key, klen) < 0 || rt_buf_append(undo, &e, sizeof e) < 0) {
        undo->len = mark;
        return -1;
    }
    return 0;
}

/* The replaced value goes to the newest entry instead of being freed. */
static void log_old(rt_state *st, rt_buf *undo, rt_state_value *old, size_t klen)
{
    if (!old)
        return;
    st->bytes -= old->len + klen;
    if (!undo) {
        free(old);
        return;
    }
    st->undo_bytes += old->len + klen;
    memcpy(undo->data + undo->len - sizeof(undo_entry), &old, sizeof old);
}

int rt_state_set(rt_state *st, rt_buf *undo, int32_t partition, const char *key,
                 size_t klen, const char *val, size_t vlen, int64_t expires_ms)
{
    rt_state_value *v = malloc(sizeof *v + (vlen ? vlen : 1));
    if (!v || (undo && log_write(undo, partition, key, klen) < 0)) {
        free(v);
        return -1;
    }
    v->expires_ms = expires_ms;
    st->ttl_set |= expires_ms != 0;
    v->len = vlen;
    memcpy(v->data, val, vlen);
    void **slot = rt_keymap_put(&st->map, partition, key, klen);
    if (!slot) {
        if (undo)
            undo->len -= klen + sizeof(undo_entry);
        free(v);
        return -1;
    }
    if (!*slot)
        rt_state_split_check(&st->map, &st->keys_split, "processor", st->name, partition, key,
                             klen);
    log_old(st, undo, *slot, klen);
    *slot = v;
    st->bytes += vlen + klen;
    rt_changes_note(st->changes, RT_CHANGE_STATE, 0, partition, key, klen);
    return 0;
}

int rt_state_del(rt_state *st, rt_buf *undo, int32_t partition, const char *key,
                 size_t klen)
{
    if (!rt_keymap_get(&st->map, partition, key, klen))
        return 0;
    if (undo && log_write(undo, partition, key, klen) < 0)
        return -1;
    log_old(st, undo, rt_keymap_del(&st->map, partition, key, klen), klen);
    rt_changes_note(st->changes, RT_CHANGE_STATE, 0, partition, key, klen);
    return 1;
}

void rt_state_undo(rt_state *st, rt_buf *undo, int keep)
{
    while (undo->len) {
        undo_entry e;
        memcpy(&e, undo->data + undo->len - sizeof e, sizeof e);
        undo->len -= sizeof e + e.klen;
        const char *key = undo->data + undo->len;
        if (e.old)
            st->undo_bytes -= e.old->len + e.klen;
        if (keep) {
            free(e.old);
            continue;
        }
        if (!e.old) {
            rt_state_value *now = rt_keymap_del(&st->map, e.partition, key, e.klen);
            if (now)
                drop(st, now, e.klen);
            continue;
        }
        void **slot = rt_keymap_put(&st->map, e.partition, key, e.klen);
        if (!slot) {
            free(e.old);    /* out of memory: the key keeps its newer value */
            continue;
        }
        if (*slot)
            drop(st, *slot, e.klen);
        *slot = e.old;
        st->bytes += e.old->len + e.klen;
    }
}

size_t rt_state_sweep(rt_state *st, size_t slots, int64_t now_ms)
{
    size_t n = 0, i, end;
    if (!st->ttl_set || !st->map.cap)
        return 0;
    if (st->sweep_at >= st->map.cap)    /* the map was rebuilt smaller */
        st->sweep_at = 0;
    i = st->sweep_at;
    end = slots < st->map.cap - i ? i + slots : st->map.cap;
    for (; i < end; i++) {
        rt_keymap_slot *s = rt_keymap_at(&st->map, i);
        rt_state_value *v = s ? s->value : NULL;
        if (v && v->expires_ms && v->expires_ms <= now_ms) {
            size_t klen = s->len;
            rt_changes_note(st->changes, RT_CHANGE_STATE, 0, s->partition, s->key, klen);
            drop(st, rt_keymap_del(&st->map, s->partition, s->key, klen), klen);
            n++;
        }
    }
    st->sweep_at = end < st->map.cap ? end : 0;
    st->expired += n;
    return n;
}

void rt_state_drop_partition(rt_state *st, int32_t partition)
{
    size_t i = 0;
    rt_keymap_slot *s;
    while ((s = rt_keymap_next(&st->map, &i)))
        if (s->partition == partition) {
            size_t klen = s->len;
            drop(st, rt_keymap_del(&st->map, partition, s->key, klen), klen);
        }
}

size_t rt_state_count(const rt_state *st)
{
    return st->map.n;
}

void rt_state_free(rt_state *st)
{
    size_t i = 0;
    rt_keymap_slot *s;
    while ((s = rt_keymap_next(&st->map, &i)))
        free(s->value);
    rt_keymap_free(&st->map);
    free(st->name);
    memset(st, 0, sizeof *st);
}

void rt_state_split_check(const rt_keymap *map, uint64_t *split, const char *what,
                          const char *name, int32_t partition, const char *key, size_t klen)
{
    int32_t other;
    if (!rt_keymap_elsewhere(map, partition, key, klen, &other))
        return;
    if ((*split)++ == 0)
        rt_warn("%s %s: key '%.*s' is kept in input partitions %d and %d: state and windows "
                "are per partition, so this key's values and counts are split between them "
                "(declare the processor's key, e.g. key = \"payload.id\", and eddy repartitions "
                "by it; eddy_state_keys_split_total counts such keys)",
                what, name, (int)(klen > 200 ? 200 : klen), key, (int)other, (int)partition);
}
