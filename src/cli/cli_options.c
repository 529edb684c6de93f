/* cli_options: the options several commands take alike: the serial line's (--baud, --timeout,
 * --gap, --rs485, with the same ranges and words everywhere), and whole numbers from a
 * command's own table. */
#include "cli.h"

#include <stddef.h>
#include <stdio.h>

#include "parse.h"
#include "serial.h"

/* The serial options that take one whole number into an int of struct serial_opts. */
static const struct cli_int_option serial_ints[] = {
    {'t', 10, 60000, offsetof(struct serial_opts, timeout_ms), "--timeout takes 10..60000 ms"},
    {'g', 0, 10000, offsetof(struct serial_opts, gap_ms), "--gap takes 0..10000 ms"},
};

int cli_take_serial_option(const char *cmd, struct serial_opts *so, int c, const char *arg)
{
    long n;
    switch (c) {
    case 'b':
        if (parse_long(arg, 1200, 115200, &n) || !serial_baud_supported((int)n)) {
            fprintf(stderr, "%s: unsupported baud rate '%s' (1200..115200)\n", cmd, arg);
            return CLI_EXIT_USAGE;
        }
        so->baud = (int)n;
        return -1;
    case 'r':
        so->rs485 = 1;
        return -1;
    default:
        return cli_take_int_option(cmd, serial_ints, sizeof serial_ints / sizeof serial_ints[0],
                                   so, c, arg);
    }
}

int cli_take_int_option(const char *cmd, const struct cli_int_option *tab, size_t n, void *base,
                        int c, const char *arg)
{
    for (size_t i = 0; i < n; i++) {
        if (tab[i].c != c)
            continue;
        long v;
        if (parse_long(arg, tab[i].lo, tab[i].hi, &v)) {
            fprintf(stderr, "%s: %s\n", cmd, tab[i].msg);
            return CLI_EXIT_USAGE;
        }
        *(int *)(void *)((char *)base + tab[i].off) = (int)v;
        return -1;
    }
    return 0;
}
