/* hconfig.h - the health service's configuration, read once from the
 * environment at start-up. Read-only afterwards. */
#ifndef HCONFIG_H
#define HCONFIG_H

#include "svcconfig.h"

#include <stdint.h>

struct hconfig {
    struct svc_config svc; /* PORT, BIND_ADDR, KAFKA_*, DB_PATH, LOG_*, ... */
    char *group_id;
    int check_interval_s;
    int64_t track_window_s;
    char *loops_file;          /* FEEDBACK_LOOPS_FILE, NULL: built-ins only */
    int db_files;              /* DB_FILES: 1, 2, 4 or 8 (a new store's copy files) */
    char *bounce_mailbox;      /* BOUNCE_MAILBOX (JSON; may hold a password), NULL: none */
    char *feedback_topic;      /* KAFKA_FEEDBACK_TOPIC */
    char *throttles_file;      /* THROTTLES_FILE: recipient providers, NULL: none */
    int64_t feedback_window_s; /* FEEDBACK_WINDOW */
    char *seeds_file;          /* SEED_MAILBOXES_FILE, NULL: no seed mailboxes */
    int check_workers;         /* CHECK_WORKERS: feedback-loop worker threads */
    int imap_max_connections;  /* IMAP_MAX_CONNECTIONS: open IMAP connections at most */
};

/* hconfig_load - fatal with one line naming a bad variable */
void hconfig_load(struct hconfig *cfg);
void hconfig_cleanup(struct hconfig *cfg);

#endif
