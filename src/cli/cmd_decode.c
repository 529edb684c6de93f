/* cmd_decode: `bmsfleet decode` validates and decodes one response frame pasted from a log. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "mbmap.h"
#include "report.h"
#include "s42.h"

static void usage(FILE *f)
{
    fputs("usage: bmsfleet decode [--protocol daren|pace|pylontech|seplos] [--command HEX]\n"
          "                       [--json] [FRAME]\n"
          "Validates one Service 42 response frame (argument, or stdin) and prints its values,\n"
          "or the exact reason it is rejected. The command defaults to 42 (analog values);\n"
          "44 decodes alarms/status, 4F/51/47/93/C1/C2 identity. Without --protocol the\n"
          "variant is recognised from VER/CID1. With --protocol modbus, FRAME is a hex dump of\n"
          "a Modbus RTU answer to function 03 from register 0 (or of the 37 registers alone).\n"
          "exit: 0 decoded, 1 frame rejected, 2 usage\n",
          f);
}

/* Reads all of stdin (bounded). */
static char *read_stdin(size_t *len)
{
    size_t cap = S42_MAX_FRAME + 64, n = 0;
    char *buf = malloc(cap + 1);
    if (buf == NULL)
        return NULL;
    size_t r;
    while (n < cap && (r = fread(buf + n, 1, cap - n, stdin)) > 0)
        n += r;
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* Modbus: a hex dump of an RTU answer (or of the 37 registers) through the register map. */
static int decode_modbus(const char *text, int json)
{
    uint16_t regs[MBMAP_NREGS];
    uint8_t slave = 0;
    char why[200];
    struct sample s;
    if (mbmap_parse_hex(text, regs, &slave, why, sizeof why) != 0 ||
        mbmap_decode(regs, &s) != 0) {
        fprintf(stderr, "rejected: %s\n", why);
        return CLI_EXIT_FAIL;
    }
    s.address = slave;
    if (json)
        report_print_json(stdout, report_sample_json(&s, "modbus", 0));
    else
        report_sample_table(stdout, &s, "modbus", NULL);
    return CLI_EXIT_OK;
}

/* Says why the frame is rejected; the exit code. */
static int rejected(int err, const struct s42_diag *d)
{
    char why[200];
    fprintf(stderr, "rejected: %s\n", s42_describe(err, d, why, sizeof why));
    return CLI_EXIT_FAIL;
}

/* The frame as pasted, in a new string: leading blanks and a trailing newline are not part of
 * it; one copied without its CR gets one. Anything else stays and is judged by the parser.
 * NULL when out of memory. */
static char *pasted_frame(const char *text, size_t len, size_t *out_len)
{
    while (len > 0 && (*text == ' ' || *text == '\t' || *text == '\n'))
        text++, len--;
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == ' ' || text[len - 1] == '\t'))
        len--;
    char *frame = malloc(len + 2);
    if (frame == NULL)
        return NULL;
    memcpy(frame, text, len);
    if (len == 0 || frame[len - 1] != '\r')
        frame[len++] = '\r';
    frame[len] = '\0';
    *out_len = len;
    return frame;
}

/* The frame parsed and checked against its variant (--protocol's, else the one VER/CID1
 * name). 0, else the exit code after the reason. */
static int parse_frame(const char *text, size_t len, const char *proto, struct s42_frame *f,
                       const struct s42_variant **v)
{
    struct s42_diag d = {-1, 0, 0};
    size_t flen = 0;
    char *frame = pasted_frame(text, len, &flen);
    if (frame == NULL)
        return CLI_EXIT_FAIL;
    int err = s42_parse(frame, flen, f, &d);
    free(frame);
    if (err)
        return rejected(err, &d);
    *v = proto ? s42_variant_find(proto) : s42_variant_guess(f);
    if (*v == NULL) {
        fprintf(stderr, "rejected: unknown protocol family VER 0x%02X CID1 0x%02X (use --protocol)\n",
                f->ver, f->cid1);
        return CLI_EXIT_FAIL;
    }
    err = s42_check(f, *v, f->adr, &d);
    return err ? rejected(err, &d) : 0;
}

/* The values of an analog (0x42) or alarm (0x44) answer. */
static int print_values(const struct s42_variant *v, const struct s42_frame *f, long cid2,
                        int json)
{
    struct s42_diag d = {-1, 0, 0};
    struct sample s;
    sample_init(&s);
    s.address = f->adr;
    int err = cid2 == S42_CID2_ANALOG ? s42_decode_analog(v, f, &s, &d)
                                      : s42_decode_alarm(v, f, &s, &d);
    if (err)
        return rejected(err, &d);
    if (json)
        report_print_json(stdout, report_sample_json(&s, s42_variant_name(v), 0));
    else
        report_sample_table(stdout, &s, s42_variant_name(v), NULL);
    return CLI_EXIT_OK;
}

/* The identity an identity command's answer carries. */
static int print_identity(const struct s42_variant *v, const struct s42_frame *f, long cid2,
                          int json)
{
    struct s42_diag d = {-1, 0, 0};
    struct s42_identity id;
    s42_identity_init(&id);
    int err = s42_decode_identity(v, (uint8_t)cid2, f, &id, &d);
    if (err)
        return rejected(err, &d);
    if (json) {
        cJSON *o = report_identity_json(&id);
        cJSON_AddNumberToObject(o, "address", f->adr);
        cJSON_AddStringToObject(o, "protocol", s42_variant_name(v));
        report_print_json(stdout, o);
    } else {
        printf("pack %u (%s) identity\n", f->adr, s42_variant_name(v));
        report_identity_table(stdout, &id);
    }
    return CLI_EXIT_OK;
}

static int decode_frame(const char *text, size_t len, const char *proto, long cid2, int json)
{
    if (proto && strcmp(proto, "modbus") == 0) {
        char *copy = strndup(text, len);
        if (copy == NULL)
            return CLI_EXIT_FAIL;
        int rc = decode_modbus(copy, json);
        free(copy);
        return rc;
    }
    struct s42_frame f;
    const struct s42_variant *v;
    int rc = parse_frame(text, len, proto, &f, &v);
    if (rc != 0)
        return rc;
    int kind = s42_has_command(v, (uint8_t)cid2);
    if (kind == 0) {
        fprintf(stderr, "rejected: %s has no command 0x%02lX\n", s42_variant_name(v), cid2);
        return CLI_EXIT_FAIL;
    }
    if (kind == 1) {
        printf("valid %s frame from address %u, command 0x%02lX; INFO not decoded (%zu bytes):\n",
               s42_variant_name(v), f.adr, cid2, f.info_len);
        for (size_t i = 0; i < f.info_len; i++)
            printf("%02X%s", f.info[i], i + 1 == f.info_len ? "\n" : "");
        return CLI_EXIT_OK;
    }
    if (cid2 == S42_CID2_ANALOG || cid2 == S42_CID2_ALARM)
        return print_values(v, &f, cid2, json);
    return print_identity(v, &f, cid2, json);
}

int cmd_decode(int argc, char **argv)
{
    static const struct option opts[] = {{"protocol", required_argument, NULL, 'p'},
                                         {"command", required_argument, NULL, 'c'},
                                         {"json", no_argument, NULL, 'j'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *proto = NULL;
    long cid2 = S42_CID2_ANALOG;
    int json = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "p:c:jh", opts, NULL)) != -1) {
        switch (c) {
        case 'p':
            proto = optarg;
            if (s42_variant_find(proto) == NULL && strcmp(proto, "modbus") != 0) {
                fprintf(stderr,
                        "decode: unknown protocol '%s' (daren, pace, pylontech, seplos, modbus)\n",
                        proto);
                return CLI_EXIT_USAGE;
            }
            break;
        case 'c': {
            /* commands are hex on the wire and in every document: "42", "0x44", "4F" */
            char *end;
            const char *digits = (optarg[0] == '0' && (optarg[1] == 'x' || optarg[1] == 'X'))
                                     ? optarg + 2
                                     : optarg;
            cid2 = strtol(digits, &end, 16);
            if (*digits == '\0' || *end != '\0' || cid2 < 0 || cid2 > 0xFF) {
                fprintf(stderr, "decode: --command takes a hex byte such as 42, 44 or 4F\n");
                return CLI_EXIT_USAGE;
            }
            break;
        }
        case 'j':
            json = 1;
            break;
        case 'h':
            usage(stdout);
            return CLI_EXIT_OK;
        default:
            usage(stderr);
            return CLI_EXIT_USAGE;
        }
    }
    if (argc - optind > 1) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (optind < argc)
        return decode_frame(argv[optind], strlen(argv[optind]), proto, cid2, json);
    size_t len;
    char *in = read_stdin(&len);
    if (in == NULL)
        return CLI_EXIT_FAIL;
    int rc = decode_frame(in, len, proto, cid2, json);
    free(in);
    return rc;
}
