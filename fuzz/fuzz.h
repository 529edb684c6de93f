/* fuzz: what every fuzz target shares. Each target defines LLVMFuzzerTestOneInput; built with
 * clang's libFuzzer (preset `fuzz`, fuzz/run.sh) it is fuzzed, built into the ordinary test
 * suite with fuzz/replay.c it runs every file of its corpus (fuzz/corpus/<target>/: the seeds
 * and every input that once crashed) as a regression test.
 *
 * FUZZ_CHECK is an invariant of the code under test, not of the input: when it fails the
 * target aborts, which libFuzzer reports as a crash with the input that caused it. */
#ifndef BMSFLEET_FUZZ_H
#define BMSFLEET_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                       \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);       \
            abort();                                                                           \
        }                                                                                      \
    } while (0)

/* The input as a NUL-terminated string (what the code under test takes); free() it. */
static inline char *fuzz_strndup(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (s == NULL)
        abort();
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/* Splits the input at NUL bytes into at most max strings (pointing into a copy in *buf, which
 * the caller frees). Returns how many. */
static inline size_t fuzz_split(const uint8_t *data, size_t size, char **buf, char **out,
                                size_t max)
{
    *buf = fuzz_strndup(data, size);
    size_t n = 0;
    char *p = *buf, *end = *buf + size;
    while (n < max && p <= end) {
        out[n++] = p;
        p += strlen(p) + 1;
    }
    return n;
}

#endif
