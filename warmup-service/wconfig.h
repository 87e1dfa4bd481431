/* wconfig.h - the warmup service's configuration, read once from the
 * environment at start-up (see README "Configuration"). Owned by main;
 * read-only afterwards, so any thread may read it. */
#ifndef WCONFIG_H
#define WCONFIG_H

#include "log.h"

#include <stddef.h>

struct wconfig {
    char *bind_addr;
    int port;
    char *api_token; /* NULL when unset */
    char *kafka_brokers;
    char email_topic[256];
    char user_topic[256];
    char *db_path;
    enum log_level log_level;
    enum log_format log_format;
    int http_threads;
    size_t import_max_bytes;
};

/* wconfig_load - fill cfg from the environment; a bad variable is fatal
 * with one line naming it. Free with wconfig_cleanup(). */
void wconfig_load(struct wconfig *cfg);
void wconfig_cleanup(struct wconfig *cfg);

#endif
