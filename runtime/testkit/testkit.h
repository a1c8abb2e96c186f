/* testkit.h - `eddy test`: processor unit tests (testkit.c). */
#ifndef RT_TESTKIT_H
#define RT_TESTKIT_H

/* Run the test files; harnesses read `config` with `sets` applied unless a test names
 * its own. With `junit`, also write JUnit XML there. Exit code: 0 all passed, 1 a test
 * failed, 2 usage. */
int rt_testkit_main(const char *config, char **sets, int nsets, char **files, int nfiles,
                    const char *junit);

#endif
