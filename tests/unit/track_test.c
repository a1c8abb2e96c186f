/* track_test.c - data-driven cases for the offset tracker (runtime/core/track.c).
 * Each case is a script: "b<offset>" begins the next ticket, "h<i>" holds ticket i,
 * "r<i>" releases it; `stored` is every committable position reported, in order. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "track.h"

static const struct {
    const char *name, *script, *stored;
} cases[] = {
    { "in order", "b0 b1 r0 r1", "1 2" },
    { "a later event done first waits for the earlier one", "b0 b1 r1 r0", "2" },
    { "an output hold keeps the offset back", "b0 h0 r0 r0", "1" },
    { "several outputs: the last ack moves it", "b7 h0 h0 r0 r0 r0", "8" },
    { "gaps in offsets (compacted topic)", "b5 b9 r1 r0", "10" },
    { "a stuck head blocks everything after it", "b0 b1 b2 r1 r2", "" },
    { "the head released last releases the run", "b0 b1 b2 r1 r2 r0", "3" },
    { "interleaved", "b0 b1 r0 b2 r2 r1", "1 3" },
};

typedef struct result {
    char text[256];
} result;

static void store(void *arg, const char *topic, int32_t partition, int64_t next)
{
    result *r = arg;
    size_t n = strlen(r->text);
    snprintf(r->text + n, sizeof r->text - n, "%s%lld", n ? " " : "", (long long)next);
}

int main(void)
{
    int failed = 0;
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        result r = { "" };
        rt_tracker t;
        rt_ticket *tickets[32];
        int n = 0;
        rt_track_init(&t, store, &r);
        rt_track_part *p = rt_track_part_get(&t, "events", 0);
        char script[256];
        snprintf(script, sizeof script, "%s", cases[c].script);
        for (char *tok = strtok(script, " "); tok; tok = strtok(NULL, " ")) {
            long v = strtol(tok + 1, NULL, 10);
            if (tok[0] == 'b')
                tickets[n++] = rt_track_begin(&t, p, v, 0);
            else if (tok[0] == 'h')
                rt_track_hold(tickets[v]);
            else
                rt_track_release(&t, tickets[v]);
        }
        int ok = strcmp(r.text, cases[c].stored) == 0;
        printf("%s - track: %s\n", ok ? "ok" : "FAIL", cases[c].name);
        if (!ok) {
            printf("    expected: %s\n    actual:   %s\n", cases[c].stored, r.text);
            failed++;
        }
        rt_track_free(&t);
    }
    /* A partition with events in flight cannot be dropped; an idle one can. */
    rt_tracker t;
    rt_track_init(&t, NULL, NULL);
    rt_track_part *p = rt_track_part_get(&t, "events", 3);
    rt_ticket *k = rt_track_begin(&t, p, 0, 0);
    int busy = rt_track_part_drop(&t, p);
    rt_track_release(&t, k);
    int idle = rt_track_part_drop(&t, p);
    int ok = busy == -1 && idle == 0 && t.inflight == 0 && t.parts == NULL;
    printf("%s - track: a partition is dropped only when idle\n", ok ? "ok" : "FAIL");
    failed += !ok;
    rt_track_free(&t);

    /* The e2e latency: observed when the last hold goes, from born_ms; a ticket
     * without a timestamp (a file's line) is not observed. */
    rt_track_init(&t, NULL, NULL);
    p = rt_track_part_get(&t, "events", 0);
    rt_ticket *old = rt_track_begin(&t, p, 0, rt_epoch_ms() - 2000);
    rt_ticket *line = rt_track_begin(&t, p, 1, 0);
    rt_track_hold(old);             /* an output written for it */
    rt_track_release(&t, old);
    int held = t.e2e.total == 0;
    rt_track_release(&t, old);      /* the output acknowledged */
    rt_track_release(&t, line);
    /* Buckets by rt_hist_bounds_e2e: 2 s is past 1 s and within 5 s (index 10). */
    ok = held && t.e2e.total == 1 && t.e2e.counts[10] == 1 && t.e2e.sum >= 2.0 &&
         t.e2e.sum < 5.0;
    printf("%s - track: e2e latency observed once, at the last release, from the record's "
           "timestamp (%.3f s)\n", ok ? "ok" : "FAIL", t.e2e.sum);
    failed += !ok;
    rt_track_free(&t);

    /* Its stages: 2 s before eddy took it (fetch), processed at once, its output
     * acknowledged 20 ms later (deliver); they add up to the e2e latency. A ticket
     * whose processing never ended (a failed run let go of it) has no stages. */
    rt_track_init(&t, NULL, NULL);
    p = rt_track_part_get(&t, "events", 0);
    rt_ticket *rec = rt_track_begin(&t, p, 0, rt_epoch_ms() - 2000);
    rt_ticket *cut = rt_track_begin(&t, p, 1, rt_epoch_ms() - 2000);
    line = rt_track_begin(&t, p, 2, 0);
    rt_track_hold(rec);
    rt_track_processed(&t, rec);
    const struct timespec wait = { 0, 20 * 1000000L };
    nanosleep(&wait, NULL);
    rt_track_release(&t, rec);
    const rt_histogram *f = &t.stage[RT_STAGE_FETCH], *pr = &t.stage[RT_STAGE_PROCESS],
                       *dl = &t.stage[RT_STAGE_DELIVER];
    double parts = f->sum + pr->sum + dl->sum, whole = t.e2e.sum;
    ok = t.e2e.total == 1 && f->total == 1 && pr->total == 1 && dl->total == 1 &&
         f->sum >= 1.99 && f->sum < 2.5 && pr->sum < 0.01 && dl->sum >= 0.02 && dl->sum < 1 &&
         parts - whole < 1e-6 && whole - parts < 1e-6;
    printf("%s - track: e2e latency by stage: fetch %.3f s, process %.3f s, deliver %.3f s "
           "(together %.6f s of %.6f)\n", ok ? "ok" : "FAIL", f->sum, pr->sum, dl->sum, parts,
           whole);
    failed += !ok;
    rt_track_release(&t, cut);
    rt_track_processed(&t, line);
    ok = t.e2e.total == 2 && f->total == 1 && pr->total == 1 && dl->total == 1 &&
         t.inflight == 0;
    printf("%s - track: a ticket let go before its processing ended, and a file's line, "
           "have no stages\n", ok ? "ok" : "FAIL");
    failed += !ok;
    rt_track_free(&t);

    /* A partition assigned again and restored to an older checkpoint starts over: its
     * position is none until an event is done, then that event's, though lower. One
     * with events in flight is left alone. */
    rt_track_init(&t, NULL, NULL);
    p = rt_track_part_get(&t, "events", 2);
    rt_track_release(&t, rt_track_begin(&t, p, 90, 0));
    int again = rt_track_part_restart(&t, "events", 2);
    int64_t none = p->stored;
    rt_track_release(&t, rt_track_begin(&t, p, 40, 0));
    int64_t lower = p->stored;
    k = rt_track_begin(&t, p, 41, 0);
    busy = rt_track_part_restart(&t, "events", 2);
    ok = again == 0 && none == -1 && lower == 41 && busy == -1 && p->stored == 41;
    printf("%s - track: a partition restarted from a checkpoint goes on from its offsets\n",
           ok ? "ok" : "FAIL");
    failed += !ok;
    rt_track_release(&t, k);
    rt_track_free(&t);

    /* Held stores (checkpoints): positions move without being stored; the marks taken
     * at one moment are stored later, even after the positions moved on. A partition
     * with nothing done has no mark. */
    result r = { "" };
    rt_track_mark *marks = NULL;
    size_t nmarks = 0;
    rt_track_init(&t, store, &r);
    rt_track_hold_stores(&t);
    p = rt_track_part_get(&t, "events", 0);
    rt_track_part_get(&t, "events", 1);
    rt_track_release(&t, rt_track_begin(&t, p, 4, 0));
    int took = rt_track_marks(&t, &marks, &nmarks);
    rt_track_release(&t, rt_track_begin(&t, p, 5, 0));
    int quiet = r.text[0] == '\0';
    rt_track_store_marks(&t, marks, nmarks);
    ok = took == 0 && nmarks == 1 && quiet && strcmp(r.text, "5") == 0 && p->stored == 6;
    printf("%s - track: held stores: only the marks are stored (%s)\n", ok ? "ok" : "FAIL",
           r.text);
    failed += !ok;
    rt_track_free(&t);
    return failed ? 1 : 0;
}
