/* hconfig.c - environment -> struct hconfig. Main thread, at start-up. */
#include "hconfig.h"
#include "config.h"
#include "log.h"

#include <stdlib.h>
#include <string.h>

void hconfig_load(struct hconfig *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    svc_config_load(&cfg->svc, "health-service", 8081);
    cfg->group_id = config_str("KAFKA_GROUP_ID", "health-service");
    cfg->check_interval_s = (int)config_long("CHECK_INTERVAL", 60, 1, 86400);
    cfg->track_window_s = config_long("TRACK_WINDOW", 7L * 86400, 60, 365L * 86400);
    cfg->loops_file = config_str("FEEDBACK_LOOPS_FILE", NULL);
    static const char *const files[] = {"1", "2", "4", "8", NULL};
    cfg->db_files = 1 << config_enum("DB_FILES", "1", files);
    cfg->bounce_mailbox = config_secret("BOUNCE_MAILBOX");
    cfg->feedback_topic = config_str("KAFKA_FEEDBACK_TOPIC", "feedback-events");
    cfg->throttles_file = config_str("THROTTLES_FILE", NULL);
    cfg->feedback_window_s = config_long("FEEDBACK_WINDOW", 86400, 60, 365L * 86400);
    cfg->seeds_file = config_str("SEED_MAILBOXES_FILE", NULL);
    cfg->check_workers = (int)config_long("CHECK_WORKERS", 4, 1, 256);
    /* libetpan waits on its sockets with select(): a descriptor above
     * FD_SETSIZE (1024) aborts the process. A connection takes three (the
     * socket and libetpan's cancel pipe), so they stay well below it
     * beside Kafka's, the HTTP clients' and the store's */
    cfg->imap_max_connections = (int)config_long("IMAP_MAX_CONNECTIONS", 100, 1, 200);
    if (cfg->imap_max_connections < cfg->check_workers)
        log_fatal("config: IMAP_MAX_CONNECTIONS: must be at least CHECK_WORKERS (%d)",
                  cfg->check_workers);
}

void hconfig_cleanup(struct hconfig *cfg)
{
    free(cfg->group_id);
    free(cfg->loops_file);
    if (cfg->bounce_mailbox) {
        explicit_bzero(cfg->bounce_mailbox, strlen(cfg->bounce_mailbox));
        free(cfg->bounce_mailbox);
    }
    free(cfg->feedback_topic);
    free(cfg->throttles_file);
    free(cfg->seeds_file);
    svc_config_cleanup(&cfg->svc);
}
