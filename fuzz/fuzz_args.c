/* fuzz_args: the query arguments of `export` and `top` (the input split at NUL bytes into an
 * argument list): the ISO 8601 parser on each argument, then both commands' whole argument
 * handling. A --db naming no file is appended (the last --db wins; with --once for top), so
 * a run ends at the database, whatever the arguments asked for. What the commands print (usage,
 * errors) goes to /dev/null: fuzz/run.sh closes stdout, and stderr is muted around each call,
 * so that libFuzzer's and the sanitizers' reports stay readable. */
#include <fcntl.h>
#include <unistd.h>

#include "cli.h"
#include "parse.h"
#include "fuzz.h"

#define MAX_ARGS 16

static void run(int (*cmd)(int, char **), const char *name, char **args, size_t n,
                const char *const *tail)
{
    char *argv[MAX_ARGS + 8];
    int argc = 0;
    argv[argc++] = (char *)name;
    for (size_t i = 0; i < n; i++)
        argv[argc++] = args[i];
    for (size_t i = 0; tail[i]; i++)
        argv[argc++] = (char *)tail[i];
    argv[argc] = NULL;
    static int devnull = -1;
    if (devnull < 0)
        devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    fflush(stderr);
    int saved = dup(2);
    FUZZ_CHECK(devnull >= 0 && saved >= 0 && dup2(devnull, 2) == 2);
    int rc = cmd(argc, argv);
    fflush(stderr);
    FUZZ_CHECK(dup2(saved, 2) == 2);
    close(saved);
    FUZZ_CHECK(rc >= 0 && rc <= CLI_EXIT_NODATA);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf;
    char *args[MAX_ARGS];
    size_t n = fuzz_split(data, size, &buf, args, MAX_ARGS);
    for (size_t i = 0; i < n; i++) {
        int64_t t;
        if (parse_time(args[i], &t) == 0)
            FUZZ_CHECK(t > -24 * 3600); /* 1970-01-01 less a zone under 24 h at most */
    }
    static const char *const export_tail[] = {"--db", "/nonexistent/bmsfleet-fuzz.db", NULL};
    static const char *const top_tail[] = {"--db", "/nonexistent/bmsfleet-fuzz.db", "--once",
                                           NULL};
    run(cmd_export, "export", args, n, export_tail);
    run(cmd_top, "top", args, n, top_tail);
    free(buf);
    return 0;
}
