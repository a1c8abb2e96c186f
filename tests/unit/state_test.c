/* state_test.c - the TTL sweep of keyed state (runtime/state/state.c): it looks at a
 * bounded number of slots per call, round and round the map, drops exactly the values
 * expired by then, keeps the usage counters and the changelog notes right, and leaves
 * an undo log able to put back what a call replaced. */
#include <stdio.h>
#include <string.h>

#include "state.h"
#include "unit.h"

#define NKEYS 1000
#define STEP 64

/* Key i: a TTL ending at 100 when i % 5 < 3, at 1e12 when i % 5 == 3, none otherwise. */
static int64_t expiry_of(int i)
{
    return i % 5 < 3 ? 100 : i % 5 == 3 ? 1000000000000 : 0;
}

static int set(rt_state *st, rt_buf *undo, int i, int64_t expires, const char *val)
{
    char key[16];
    int n = snprintf(key, sizeof key, "k%d", i);
    return rt_state_set(st, undo, i % 4, key, (size_t)n, val, strlen(val), expires);
}

static const rt_state_value *get(rt_state *st, int i, int64_t now)
{
    char key[16];
    int n = snprintf(key, sizeof key, "k%d", i);
    return rt_state_get(st, i % 4, key, (size_t)n, now);
}

static size_t held_bytes(rt_state *st)
{
    size_t i = 0, b = 0;
    rt_keymap_slot *s;
    while ((s = rt_keymap_next(&st->map, &i)))
        b += s->len + ((rt_state_value *)s->value)->len;
    return b;
}

int main(void)
{
    rt_state st;
    rt_changes ch = { 0 };
    rt_buf undo = { 0 };
    int bad = 0;
    if (rt_state_init(&st, "p") < 0)
        return 1;

    /* Nothing with a TTL yet: the sweep has nothing to do and does not move. */
    for (int i = 0; i < NKEYS; i++)
        if (expiry_of(i) == 0)
            bad += set(&st, NULL, i, 0, "v") < 0;
    unit_check(rt_state_sweep(&st, STEP, 1000) == 0 && st.sweep_at == 0,
               "sweep: no value with a TTL, nothing looked at");

    for (int i = 0; i < NKEYS; i++)
        if (expiry_of(i) != 0)
            bad += set(&st, NULL, i, expiry_of(i), "value");
    unit_check(bad == 0 && rt_state_count(&st) == NKEYS, "sweep: %d values stored", NKEYS);
    st.changes = &ch;

    /* Before the TTLs end: a whole round drops nothing. */
    size_t dropped = 0, calls = 0;
    do {
        dropped += rt_state_sweep(&st, STEP, 99);
        calls++;
    } while (st.sweep_at != 0);
    unit_check(dropped == 0 && calls == (st.map.cap + STEP - 1) / STEP,
               "sweep: a round of %zu slots in steps of %d drops nothing before the TTLs end",
               st.map.cap, STEP);

    /* One call looks at STEP slots, no more: it drops at most the expired ones in them. */
    size_t expired_in_first = 0;
    for (size_t i = 0; i < STEP; i++) {
        rt_keymap_slot *s = rt_keymap_at(&st.map, i);
        expired_in_first += s && ((rt_state_value *)s->value)->expires_ms == 100;
    }
    size_t first = rt_state_sweep(&st, STEP, 100);
    unit_check(first == expired_in_first && st.sweep_at == STEP,
               "sweep: one call looks at %d slots and drops their %zu expired values", STEP,
               expired_in_first);

    dropped = first;
    while (st.sweep_at != 0)
        dropped += rt_state_sweep(&st, STEP, 100);
    size_t want = 0, kept_right = 1;
    for (int i = 0; i < NKEYS; i++) {
        int gone = get(&st, i, 100) == NULL;
        want += expiry_of(i) == 100;
        kept_right &= gone == (expiry_of(i) == 100);
    }
    unit_check(dropped == want && st.expired == want && rt_state_count(&st) == NKEYS - want &&
                   kept_right,
               "sweep: a round drops the %zu values expired at 100, and only them", want);
    unit_check(st.bytes == held_bytes(&st), "sweep: the byte counter matches what is held");

    size_t pos = 0, notes = 0;
    rt_change c;
    while (rt_changes_next(&ch, &pos, &c))
        notes += c.store == RT_CHANGE_STATE;
    unit_check(notes == want, "sweep: every value dropped is noted for the changelog (%zu)",
               notes);
    st.changes = NULL;

    /* A call replaced a value with one that expires; the sweep drops the new one; the
     * call fails: its undo log puts the old value back. */
    bad = set(&st, NULL, 3, 0, "old") < 0;
    bad += set(&st, &undo, 3, 150, "new") < 0;
    while (rt_state_sweep(&st, STEP, 200), st.sweep_at != 0)
        ;
    int swept = get(&st, 3, 200) == NULL;
    rt_state_undo(&st, &undo, 0);
    const rt_state_value *v = get(&st, 3, 200);
    unit_check(!bad && swept && v && v->len == 3 && memcmp(v->data, "old", 3) == 0 &&
                   st.bytes == held_bytes(&st) && st.undo_bytes == 0,
               "sweep: a value swept during a call that fails: the undo puts the old one back");

    rt_state_free(&st);
    rt_changes_free(&ch);
    rt_buf_free(&undo);
    return unit_exit();
}
