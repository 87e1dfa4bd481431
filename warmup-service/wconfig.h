/* wconfig.h - the warmup service's configuration, read once from the
 * environment at start-up (see README "Configuration"). Owned by main;
 * read-only afterwards, so any thread may read it. */
#ifndef WCONFIG_H
#define WCONFIG_H

#include "policy.h"
#include "svcconfig.h"
#include "unsub.h"
#include "upload.h"

#include <stddef.h>
#include <stdint.h>

struct wconfig {
    struct svc_config svc; /* PORT, BIND_ADDR, KAFKA_*, DB_PATH, LOG_*, ... */
    size_t import_max_bytes;
    char *message_id_domain; /* NULL: the domain of each email's from */
    char *bounce_domain;     /* BOUNCE_DOMAIN, ASCII; NULL: MAIL FROM is the From */
    int retry_max;
    int retry_base_ms;
    int send_batch;
    int lease_s;
    int fanout_chunk;            /* FANOUT_CHUNK: users per fan-out transaction */
    int shutdown_grace_s;        /* SIGTERM: how long in-flight SMTP sends may finish */
    int breaker_base_ms;         /* circuit breaker: first backoff before a probe */
    int breaker_max_ms;          /* circuit breaker: longest backoff */
    char *dkim_keys_file;        /* NULL: no DKIM signing */
    char *feedback_topic;        /* KAFKA_FEEDBACK_TOPIC: consumed (feedback.h) */
    char *send_topic;            /* KAFKA_SEND_TOPIC: consumed (sendq.h) */
    char *send_group;            /* KAFKA_SEND_GROUP_ID */
    struct unsub_config unsub;   /* PUBLIC_URL, UNSUBSCRIBE_SECRET, UNSUBSCRIBE_MAILTO */
    struct policy policy;        /* WARMUP_POLICY (policy.h) */
    char *throttles_file;        /* THROTTLES_FILE: provider groups and limits; NULL: none */
    int64_t clock_offset_ms;     /* WARMUP_CLOCK_OFFSET (tests): the identities' clock */
    struct upload_config upload; /* UPLOAD_STORE, UPLOAD_*, S3_*, AWS_* (upload.h) */
    int archive_after_days;      /* ARCHIVE_AFTER_DAYS; 0: never (archive.h) */
    char *archive_dir;           /* ARCHIVE_DIR: DB_PATH's folder/archives by default */
    int archive_interval_s;      /* ARCHIVE_INTERVAL: seconds between passes */
    int64_t archive_batch;       /* ARCHIVE_BATCH: copies per file */
};

/* wconfig_load - fill cfg from the environment; a bad variable is fatal
 * with one line naming it. Free with wconfig_cleanup(). */
void wconfig_load(struct wconfig *cfg);
void wconfig_cleanup(struct wconfig *cfg);

#endif
