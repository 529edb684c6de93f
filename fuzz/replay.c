/* replay: runs a fuzz target over files, without libFuzzer: every file named on the command
 * line, or every regular file of each directory named. Used by CTest to keep every seed and
 * every input that once crashed a target passing in the ordinary (ASan+UBSan) build. */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

#define REPLAY_MAX_INPUT (1 << 20)

static int run_file(const char *path, uint8_t *buf)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "replay: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t n = fread(buf, 1, REPLAY_MAX_INPUT, f);
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        fprintf(stderr, "replay: cannot read %s\n", path);
        return -1;
    }
    /* a copy of exactly n bytes, so ASan sees a read past the input */
    uint8_t *in = malloc(n ? n : 1);
    if (in == NULL)
        return -1;
    memcpy(in, buf, n);
    LLVMFuzzerTestOneInput(in, n);
    free(in);
    return 0;
}

static int cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
    uint8_t *buf = malloc(REPLAY_MAX_INPUT);
    if (buf == NULL)
        return 1;
    int files = 0, failed = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
            failed++;
            continue;
        }
        if (!S_ISDIR(st.st_mode)) {
            failed += run_file(argv[i], buf) != 0;
            files++;
            continue;
        }
        struct dirent **names;
        int n = scandir(argv[i], &names, NULL, NULL);
        if (n < 0) {
            failed++;
            continue;
        }
        char **paths = calloc((size_t)n + 1, sizeof *paths);
        int k = 0;
        for (int j = 0; j < n; j++) {
            if (names[j]->d_name[0] != '.' && paths) {
                size_t len = strlen(argv[i]) + strlen(names[j]->d_name) + 2;
                paths[k] = malloc(len);
                if (paths[k]) {
                    snprintf(paths[k], len, "%s/%s", argv[i], names[j]->d_name);
                    k++;
                }
            }
            free(names[j]);
        }
        free(names);
        if (paths)
            qsort(paths, (size_t)k, sizeof *paths, cmp);
        for (int j = 0; j < k; j++) {
            failed += run_file(paths[j], buf) != 0;
            files++;
            free(paths[j]);
        }
        free(paths);
    }
    free(buf);
    /* the closing line CTest output readers look for */
    printf("%d passed, %d failed\n", files - failed, failed);
    return failed || files == 0 ? 1 : 0;
}
