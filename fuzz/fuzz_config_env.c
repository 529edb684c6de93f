/* fuzz_config_env: any values of the replaced program's variables (BMS_PORT ... DEBUG_MODE,
 * the input split at NUL bytes, one value each in that order). Whatever loads must give an
 * equivalent YAML file that loads again to the same fleet: what `bmsfleet check` promises its
 * users when they move from the environment to a file. */
#include "config.h"
#include "fuzz.h"

static const char *const vars[] = {"BMS_PORT",  "BMS_SLAVE_ID",      "READ_INTERVAL",
                                   "MQTT_HOST", "MQTT_PORT",         "MQTT_USER",
                                   "MQTT_PASSWORD", "MQTT_TOPIC_PREFIX", "DEVICE_ID",
                                   "DEBUG_MODE"};
#define NVARS (sizeof vars / sizeof vars[0])
static char *values[NVARS];

static const char *fake_getenv(const char *name)
{
    for (size_t i = 0; i < NVARS; i++) {
        if (strcmp(name, vars[i]) == 0)
            return values[i];
    }
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct config_errors errs;
    char *buf;
    char *parts[NVARS];
    size_t n = fuzz_split(data, size, &buf, parts, NVARS);
    for (size_t i = 0; i < NVARS; i++)
        values[i] = i < n ? parts[i] : NULL;
    struct config *c = NULL;
    int rc = config_from_env(fake_getenv, &c, &errs);
    if (rc == 0) {
        char *yaml = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&yaml, &len);
        FUZZ_CHECK(f != NULL);
        config_write_yaml(f, c);
        fclose(f);
        unsetenv("MQTT_PASSWORD");
        unsetenv("BMSFLEET_MQTT_PASSWORD");
        struct config *d = NULL;
        int rc2 = config_load_string("equivalent.yaml", yaml, &d, &errs);
        if (rc2 != 0) {
            for (size_t i = 0; i < errs.n; i++)
                fprintf(stderr, "%s\n", errs.msg[i]);
            fprintf(stderr, "--- written:\n%s\n", yaml);
        }
        FUZZ_CHECK(rc2 == 0);
        FUZZ_CHECK(strcmp(c->ports[0].device, d->ports[0].device) == 0);
        FUZZ_CHECK(c->ports[0].packs[0].address == d->ports[0].packs[0].address);
        FUZZ_CHECK(c->ports[0].interval_s == d->ports[0].interval_s);
        FUZZ_CHECK(strcmp(c->node_id, d->node_id) == 0);
        FUZZ_CHECK(c->mqtt.enabled == d->mqtt.enabled);
        if (c->mqtt.enabled) {
            FUZZ_CHECK(strcmp(c->mqtt.host, d->mqtt.host) == 0);
            FUZZ_CHECK(strcmp(c->mqtt.username, d->mqtt.username) == 0);
            FUZZ_CHECK(c->mqtt.port == d->mqtt.port);
        }
        config_free(d);
        free(yaml);
    }
    config_free(c);
    free(buf);
    return 0;
}
