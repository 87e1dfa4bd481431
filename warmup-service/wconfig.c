/* wconfig.c - environment -> struct wconfig. Main thread, at start-up. */
#include "wconfig.h"
#include "config.h"

#include <string.h>

void wconfig_load(struct wconfig *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    svc_config_load(&cfg->svc, "warmup-service", 8080);
    cfg->import_max_bytes =
        (size_t)config_long("IMPORT_MAX_BYTES", 512L * 1024 * 1024, 1024, 16L * 1024 * 1024 * 1024);
}

void wconfig_cleanup(struct wconfig *cfg)
{
    svc_config_cleanup(&cfg->svc);
}
