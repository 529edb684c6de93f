/* fuzz_config_yaml: any file as the YAML configuration. Whatever loads must load again from
 * what `bmsfleet check` prints for it (the equivalent YAML), to the same model. Seeds: the
 * example configurations and the bad ones of tests/test_config.c. */
#include "config.h"
#include "fuzz.h"

static void forget(struct config *c)
{
    memset(c->source, 0, sizeof c->source);
    for (size_t p = 0; p < c->nports; p++) {
        c->ports[p].line = 0;
        for (size_t k = 0; k < c->ports[p].npacks; k++)
            c->ports[p].packs[k].line = 0;
    }
    /* the password never reaches the YAML; warnings name the file and the line */
    memset(c->mqtt.password, 0, sizeof c->mqtt.password);
    memset(c->warnings, 0, sizeof c->warnings);
    c->nwarnings = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct config_errors errs;
    unsetenv("MQTT_PASSWORD");
    unsetenv("BMSFLEET_MQTT_PASSWORD");
    char *yaml = fuzz_strndup(data, size);
    struct config *c = NULL;
    int rc = config_load_string("fuzz.yaml", yaml, &c, &errs);
    FUZZ_CHECK(errs.n <= CONFIG_MAX_ERRORS);
    for (size_t i = 0; i < errs.n; i++)
        FUZZ_CHECK(memchr(errs.msg[i], 0, sizeof errs.msg[i]) != NULL);
    if (rc == 0) {
        FUZZ_CHECK(c != NULL);
        char *text = NULL, *yaml2 = NULL;
        size_t len = 0, len2 = 0;
        FILE *f = open_memstream(&text, &len);
        FUZZ_CHECK(f != NULL);
        config_write_summary(f, c);
        fclose(f);
        f = open_memstream(&yaml2, &len2);
        FUZZ_CHECK(f != NULL);
        config_write_yaml(f, c);
        fclose(f);
        struct config *d = NULL;
        int rc2 = config_load_string("again.yaml", yaml2, &d, &errs);
        if (rc2 != 0) {
            for (size_t i = 0; i < errs.n; i++)
                fprintf(stderr, "%s\n", errs.msg[i]);
            fprintf(stderr, "--- written:\n%s\n", yaml2);
        }
        FUZZ_CHECK(rc2 == 0);
        forget(c);
        forget(d);
        if (!c->mqtt.enabled) { /* without an mqtt section the YAML carries none of it */
            memset(&c->mqtt, 0, sizeof c->mqtt);
            memset(&d->mqtt, 0, sizeof d->mqtt);
        }
        FUZZ_CHECK(memcmp(c, d, sizeof *c) == 0);
        config_free(d);
        free(yaml2);
        free(text);
    } else {
        FUZZ_CHECK(c == NULL && errs.n > 0);
    }
    config_free(c);
    free(yaml);
    return 0;
}
