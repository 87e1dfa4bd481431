/* hconfig.h - the health service's configuration, read once from the
 * environment at start-up. Read-only afterwards. */
#ifndef HCONFIG_H
#define HCONFIG_H

#include "log.h"

struct hconfig {
    char *bind_addr;
    int port;
    char *api_token;
    char *kafka_brokers;
    char email_topic[256];
    char user_topic[256];
    char *group_id;
    char *db_path;
    enum log_level log_level;
    enum log_format log_format;
    int http_threads;
};

/* hconfig_load - fatal with one line naming a bad variable */
void hconfig_load(struct hconfig *cfg);
void hconfig_cleanup(struct hconfig *cfg);

#endif
