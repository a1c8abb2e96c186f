/* unit.h - what every C unit test prints: "ok - <name>" or "FAIL - <name>" per check
 * (tests/t_unit.sh counts them), and an exit status that is 1 when any failed. */
#ifndef UNIT_H
#define UNIT_H

#include <stdarg.h>
#include <stdio.h>

static int unit_failed;

static void __attribute__((format(printf, 2, 3))) unit_check(int ok, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("%s - ", ok ? "ok" : "FAIL");
    vprintf(fmt, ap);
    putchar('\n');
    va_end(ap);
    unit_failed += !ok;
}

static int unit_exit(void)
{
    fflush(stdout);
    return unit_failed ? 1 : 0;
}

#endif
