/* main.c - the eddy command line: run, check, test, config, version. */
#include <glob.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <curl/curl.h>

#include "config.h"
#include "log.h"
#include "stopsig.h"
#include "supervisor.h"
#include "testkit.h"
#include "worker.h"

enum { EXIT_OK = 0, EXIT_RUNTIME = 1, EXIT_USAGE = 2 };

#define DEFAULT_CONFIG "conf/eddy.conf"
#define TEST_GLOB_1 "tests/processors/*_test.lua"
#define TEST_GLOB_2 "processors/*_test.lua"

static const char usage[] =
    "usage: eddy <command> [options]\n"
    "\n"
    "commands:\n"
    "  run     [-c FILE] [--set key=value]...  run the pipeline\n"
    "  check   [-c FILE] [--set key=value]...  check config and processors, print routes\n"
    "  test    [-c FILE] [--set key=value]... [--junit FILE] [TEST.lua...]\n"
    "                                          run processor tests (default: every\n"
    "                                          " TEST_GLOB_1 "\n"
    "                                          and " TEST_GLOB_2 ")\n"
    "  state   [-c FILE] [--set key=value]... PROCESSOR [KEY]\n"
    "                                          print a processor's keyed state and open\n"
    "                                          windows from the checkpoints in state.dir\n"
    "  config                                  list every config key with its default\n"
    "  version                                 print the version\n"
    "\n"
    "  -c FILE defaults to " DEFAULT_CONFIG ".\n"
    "exit codes: 0 ok, 1 runtime failure, 2 usage or config error\n";

typedef struct cli {
    const char *config;
    char **sets;
    int nsets;
    char **files;           /* eddy test: test files; eddy state: processor and key */
    int nfiles;
    const char *junit;
} cli;

static int parse_options(int argc, char **argv, cli *o)
{
    o->config = DEFAULT_CONFIG;
    o->sets = calloc((size_t)argc, sizeof *o->sets);
    o->files = calloc((size_t)argc, sizeof *o->files);
    if (!o->sets || !o->files)
        return -1;
    int test = !strcmp(argv[1], "test"), state = !strcmp(argv[1], "state");
    for (int i = 2; i < argc; i++) {
        if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc) {
            o->config = argv[++i];
        } else if (strcmp(argv[i], "--set") == 0 && i + 1 < argc) {
            o->sets[o->nsets++] = argv[++i];
        } else if (strncmp(argv[i], "--set=", 6) == 0) {
            o->sets[o->nsets++] = argv[i] + 6;
        } else if (test && strcmp(argv[i], "--junit") == 0 && i + 1 < argc) {
            o->junit = argv[++i];
        } else if ((test || (state && o->nfiles < 2)) && argv[i][0] != '-') {
            o->files[o->nfiles++] = argv[i];
        } else {
            fprintf(stderr, "eddy: unknown or incomplete option '%s'\n\n%s", argv[i], usage);
            return -1;
        }
    }
    return 0;
}

enum setup_for { FOR_CHECK, FOR_RUN, FOR_SUPERVISOR };

/* Load config and worker; on error print it and return the exit code. */
static int setup(const cli *o, rt_config *cfg, rt_worker *w, enum setup_for what)
{
    char err[1024];
    memset(w, 0, sizeof *w);
    if (rt_config_load(cfg, o->config, o->sets, o->nsets, err, sizeof err) < 0) {
        fprintf(stderr, "eddy: %s\n", err);
        return EXIT_USAGE;
    }
    /* Both are enums the config has checked already. */
    rt_log_set_level((enum rt_log_level)rt_log_parse_level(rt_config_get(cfg, "log.level")));
    rt_log_set_format(rt_config_get(cfg, "log.format"));
    if (what != FOR_CHECK)
        rt_config_log_summary(cfg);
    if (rt_worker_init(w, cfg, what == FOR_RUN ? RT_WORKER_OPEN : RT_WORKER_CHECK, 0, err, sizeof err) < 0) {
        fprintf(stderr, "eddy: %s\n", err);
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

static int cmd_check(const cli *o)
{
    rt_config cfg;
    rt_worker w;
    int rc = setup(o, &cfg, &w, FOR_CHECK);
    if (rc == EXIT_OK) {
        printf("config %s: ok\n", o->config);
        printf("\nprocessors:\n");
        for (size_t i = 0; i < w.nprocs; i++)
            printf("  %-12s %s (%zu routes)\n", w.procs[i]->name, w.procs[i]->path,
                   w.procs[i]->nroutes);
        printf("\nroutes:\n");
        rt_worker_print_routes(&w, stdout);
        printf("\nsinks (dead letters: %s):\n", w.dlq->name);
        rt_config_print_declared(&cfg, "sink.", ".type", ".type", stdout);
        printf("\nlookups:\n");
        rt_config_print_declared(&cfg, "lookup.", ".table", ".cache", stdout);
        rt_config_print_declared(&cfg, "lookup.", ".query", ".cache", stdout);
        printf("\nall settings:\n");
        rt_config_print(&cfg, stdout);
    }
    rt_worker_free(&w);
    rt_config_free(&cfg);
    return rc;
}

/* Under a supervisor the master checks config and processors as `eddy check` does;
 * each worker it forks loads them again for itself. */
static int cmd_run_supervised(const cli *o, rt_config *cfg)
{
    rt_worker w;
    int rc = setup(o, cfg, &w, FOR_SUPERVISOR);
    rt_worker_free(&w);
    if (rc == EXIT_OK)
        rc = rt_supervisor_run(cfg);
    rt_config_free(cfg);
    return rc;
}

static int cmd_run(const cli *o)
{
    rt_config cfg;
    rt_worker w;
    char err[1024];
    /* Until the loop handles them (rt_worker_run, rt_supervisor_run). */
    if (rt_stop_signals_hold() < 0) {
        fprintf(stderr, "eddy: cannot hold SIGTERM and SIGINT\n");
        return EXIT_RUNTIME;
    }
    if (rt_config_load(&cfg, o->config, o->sets, o->nsets, err, sizeof err) < 0) {
        fprintf(stderr, "eddy: %s\n", err);
        return EXIT_USAGE;
    }
    int want = rt_supervisor_wanted(&cfg, err, sizeof err);
    rt_config_free(&cfg);
    if (want < 0) {
        fprintf(stderr, "eddy: %s\n", err);
        return EXIT_USAGE;
    }
    if (want)
        return cmd_run_supervised(o, &cfg);
    int rc = setup(o, &cfg, &w, FOR_RUN);
    if (rc == EXIT_OK)
        rc = rt_worker_run(&w) < 0 ? EXIT_RUNTIME : EXIT_OK;
    rt_worker_free(&w);
    rt_config_free(&cfg);
    return rc;
}

/* eddy test: the files given, or every file of the two default places. */
static int cmd_test(const cli *o)
{
    glob_t g = { 0 };
    int rc;
    if (o->nfiles)
        return rt_testkit_main(o->config, o->sets, o->nsets, o->files, o->nfiles, o->junit);
    int r1 = glob(TEST_GLOB_1, 0, NULL, &g);
    int r2 = glob(TEST_GLOB_2, GLOB_APPEND, NULL, &g);
    if ((r1 && r1 != GLOB_NOMATCH) || (r2 && r2 != GLOB_NOMATCH)) {
        fprintf(stderr, "eddy test: cannot list the test files\n");
        rc = EXIT_RUNTIME;
    } else {
        rc = rt_testkit_main(o->config, o->sets, o->nsets, g.gl_pathv, (int)g.gl_pathc,
                             o->junit);
    }
    globfree(&g);
    return rc;
}

/* eddy state: the worker a run would build, restored from state.dir as a start does,
 * asked as GET /-/state/<processor> would be, without a limit. */
static int cmd_state(const cli *o)
{
    rt_config cfg;
    rt_worker w;
    rt_buf out = { 0 };
    char err[1024];
    int rc = EXIT_USAGE;
    if (o->nfiles < 1) {
        fprintf(stderr, "eddy state: name a processor\n\n%s", usage);
        return EXIT_USAGE;
    }
    memset(&w, 0, sizeof w);
    if (rt_config_load(&cfg, o->config, o->sets, o->nsets, err, sizeof err) < 0) {
        fprintf(stderr, "eddy: %s\n", err);
        return EXIT_USAGE;
    }
    rt_log_set_level(RT_LOG_WARN);
    const char *dir = rt_config_get(&cfg, "state.dir");
    if (!dir || !*dir) {
        fprintf(stderr, "eddy state: state.dir is not set in %s\n", o->config);
    } else if (rt_worker_init(&w, &cfg, RT_WORKER_TEST, 0, err, sizeof err) < 0) {
        fprintf(stderr, "eddy: %s\n", err);
    } else if (rt_worker_restore_dir(&w, dir) < 0) {
        rc = EXIT_RUNTIME;
    } else {
        int code = rt_worker_inspect(&w, o->files[0], o->nfiles > 1 ? o->files[1] : NULL,
                                     SIZE_MAX, &out);
        if (code == 404) {
            fprintf(stderr, "eddy state: no processor named '%s'\n", o->files[0]);
        } else if (code < 0) {
            fprintf(stderr, "eddy state: out of memory\n");
            rc = EXIT_RUNTIME;
        } else {
            rc = fwrite(out.data, 1, out.len, stdout) == out.len && fflush(stdout) == 0
                 ? EXIT_OK : EXIT_RUNTIME;
        }
    }
    rt_buf_free(&out);
    rt_worker_free(&w);
    rt_config_free(&cfg);
    return rc;
}

/* The soft open-files limit up to the hard one, as servers do: Kafka connections,
 * MySQL pools, sink files and admin clients all take descriptors, and 1024 (a common
 * default) is soon spent. Failing leaves the limit as it was. */
static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int main(int argc, char **argv)
{
    /* A closed stdout must be a write error we report, not a silent death. */
    signal(SIGPIPE, SIG_IGN);
    /* Past a file-size limit, a write error (EFBIG) the sink reports, like a full disk. */
    signal(SIGXFSZ, SIG_IGN);
    raise_nofile();
    if (argc < 2) {
        fputs(usage, stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        fputs(usage, stdout);
        return EXIT_OK;
    }
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("eddy %s\n", EDDY_VERSION);
        return EXIT_OK;
    }
    if (!strcmp(cmd, "config")) {
        rt_config_print_keys(stdout);
        return EXIT_OK;
    }
    if (strcmp(cmd, "run") && strcmp(cmd, "check") && strcmp(cmd, "test") &&
        strcmp(cmd, "state")) {
        fprintf(stderr, "eddy: unknown command '%s'\n\n%s", cmd, usage);
        return EXIT_USAGE;
    }
    /* Once, before any thread (librdkafka's) runs: curl's global state is not
     * thread-safe to set up lazily. */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fputs("eddy: cannot initialise libcurl\n", stderr);
        return EXIT_FAILURE;
    }
    cli o = { 0 };
    int rc = EXIT_USAGE;
    if (parse_options(argc, argv, &o) == 0)
        rc = !strcmp(cmd, "run") ? cmd_run(&o) : !strcmp(cmd, "test") ? cmd_test(&o)
           : !strcmp(cmd, "state") ? cmd_state(&o) : cmd_check(&o);
    free(o.sets);
    free(o.files);
    curl_global_cleanup();
    return rc;
}
