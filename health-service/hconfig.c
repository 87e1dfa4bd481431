/* hconfig.c - environment -> struct hconfig. Main thread, at start-up. */
#include "hconfig.h"
#include "config.h"

#include <stdlib.h>
#include <string.h>

void hconfig_load(struct hconfig *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    svc_config_load(&cfg->svc, "health-service", 8081);
    cfg->group_id = config_str("KAFKA_GROUP_ID", "health-service");
}

void hconfig_cleanup(struct hconfig *cfg)
{
    free(cfg->group_id);
    svc_config_cleanup(&cfg->svc);
}
