/* watermark_test.c - event-time progress (runtime/state/watermark.c), as scripts:
 * "a<p>@<now>" assigns partition p, "e<p>:<ts>@<now>" is an event of p with event
 * time ts, "w@<now>" computes; `want` is every computed watermark, in order ("-" for
 * none yet). Out-of-orderness 100 ms, idle timeout 1000 ms. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "watermark.h"
#include "unit.h"

static const struct {
    const char *name, *script, *want;
} cases[] = {
    { "the largest event time minus the out-of-orderness", "e0:1000@0 w@0 e0:1500@1 w@1",
      "900 1400" },
    { "it never goes back when an older event comes", "e0:1000@0 w@0 e0:200@1 w@1",
      "900 900" },
    { "the slowest partition holds it back", "e0:1000@0 e1:400@0 w@0 e1:800@1 w@1",
      "300 700" },
    { "an assigned partition without events holds it back", "a1@0 e0:1000@0 w@10", "-" },
    { "until it is idle", "a1@0 e0:1000@900 w@10 w@1001 w@1500", "- 900 900" },
    { "an idle partition holds nothing back, and its first event does not pull the "
      "watermark back", "e0:1000@0 e1:5000@0 w@0 e0:9000@1500 w@1500 e1:200@1600 w@1600",
      "900 8900 8900" },
    { "a partition that stops sending is left out once idle", "e0:1000@0 e1:3000@0 w@0 "
      "e0:1100@1200 w@1600", "900 1000" },
    { "when every partition is idle it stays where it is", "e0:1000@0 w@0 w@5000",
      "900 900" },
};

int main(void)
{
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        rt_watermark wm;
        char script[256], got[256] = "";
        rt_watermark_init(&wm, 100, 1000);
        snprintf(script, sizeof script, "%s", cases[c].script);
        int oom = 0;
        for (char *t = strtok(script, " "); t; t = strtok(NULL, " ")) {
            long p = 0, ts = 0, now = 0;
            if (t[0] == 'a' && sscanf(t, "a%ld@%ld", &p, &now) == 2) {
                oom |= rt_watermark_assign(&wm, "events", (int32_t)p, now) < 0;
            } else if (t[0] == 'e' && sscanf(t, "e%ld:%ld@%ld", &p, &ts, &now) == 3) {
                oom |= rt_watermark_observe(&wm, "events", (int32_t)p, ts, now) < 0;
            } else if (sscanf(t, "w@%ld", &now) == 1) {
                int64_t w = rt_watermark_compute(&wm, now);
                size_t n = strlen(got);
                if (w == INT64_MIN)
                    snprintf(got + n, sizeof got - n, "%s-", n ? " " : "");
                else
                    snprintf(got + n, sizeof got - n, "%s%" PRId64, n ? " " : "", w);
            }
        }
        int ok = !oom && strcmp(got, cases[c].want) == 0;
        unit_check(ok, "watermark: %s", cases[c].name);
        if (!ok)
            printf("    expected: %s\n    actual:   %s\n", cases[c].want, got);
        rt_watermark_free(&wm);
    }
    return unit_exit();
}
