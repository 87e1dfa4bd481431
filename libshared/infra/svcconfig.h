/* svcconfig.h - the configuration both services share (README, "Configuration"):
 * PORT, BIND_ADDR, API_TOKEN, KAFKA_BROKERS, KAFKA_TOPIC, DB_PATH,
 * LOG_LEVEL, LOG_FORMAT, HTTP_THREADS, HTTP_TIMEOUT, ALLOWED_HOSTS,
 * HTTP_MAX_CONNECTIONS, HTTP_MAX_CONNECTIONS_PER_IP, HTTP_HEADER_TIMEOUT,
 * HTTP_BODY_TIMEOUT. Read once at start-up
 * on the main thread; a bad value is fatal with one line naming it. Also
 * initialises the logger. Free with svc_config_cleanup(). The Kafka
 * security settings come from kafka_security_load(); API_TOKEN and the
 * other secrets leave the environment once read (config_get_secret). */
#ifndef SVCCONFIG_H
#define SVCCONFIG_H

#include "kafka.h"
#include "log.h"

#include <stdio.h>

struct svc_config {
    char *bind_addr;
    int port;
    char *api_token; /* NULL when unset */
    char *kafka_brokers;
    struct kafka_security kafka_sec; /* its conf: the clients' extra settings */
    char email_topic[256];
    char user_topic[256];
    char *db_path;
    char *database_url; /* NULL: SQLite at db_path; else PostgreSQL (a secret) */
    enum log_level log_level;
    enum log_format log_format;
    int http_threads;
    int http_timeout_s;
    char *allowed_hosts; /* NULL when unset */
    int http_max_conns;
    int http_max_conns_per_ip;
    int http_header_timeout_s;
    int http_body_timeout_s;
};

struct http_config;

/* svc_config_load - service names the logger and the default DB_PATH
 * (./data/<service>.db) */
void svc_config_load(struct svc_config *c, const char *service, int default_port);
void svc_config_cleanup(struct svc_config *c);
/* svc_http_config - the listener settings of c into h (borrowed strings,
 * valid while c is); routes, app and metrics are the caller's */
void svc_http_config(const struct svc_config *c, struct http_config *h);

/* One environment variable for the usage text (--help): its name, its
 * default as shown to a user ("" when unset means off or none) and one line
 * of meaning. A table ends with {NULL}. */
struct svc_var {
    const char *name;
    const char *def;
    const char *meaning;
};

/* svc_config_vars - the variables svc_config_load reads, the Kafka security
 * ones included; PORT's and DB_PATH's defaults depend on the service and
 * are NULL here (svc_config_usage fills them in) */
extern const struct svc_var svc_config_vars[];

/* svc_config_usage - a table of the shared variables, then the service's
 * own (own may be NULL), one per line, with the defaults svc_config_load
 * uses for this service */
void svc_config_usage(FILE *f, const char *service, int default_port, const struct svc_var *own);

#endif
