/* wconfig.c - environment -> struct wconfig. Main thread, at start-up. */
#include "wconfig.h"
#include "config.h"
#include "kafka.h"
#include "xalloc.h"

#include <stdlib.h>
#include <string.h>

void wconfig_load(struct wconfig *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    static const char *const levels[] = {"debug", "info", "warn", "error", NULL};
    static const char *const formats[] = {"text", "json", NULL};
    cfg->log_level = (enum log_level)config_enum("LOG_LEVEL", "info", levels);
    cfg->log_format = (enum log_format)config_enum("LOG_FORMAT", "text", formats);
    log_init(cfg->log_level, cfg->log_format, "warmup-service");

    cfg->bind_addr = config_str("BIND_ADDR", "127.0.0.1");
    cfg->port = (int)config_long("PORT", 8080, 0, 65535);
    cfg->api_token = config_str("API_TOKEN", NULL);
    cfg->kafka_brokers = config_str("KAFKA_BROKERS", "127.0.0.1:9092");
    char *topics = config_str("KAFKA_TOPIC", NULL);
    if (kafka_topics_parse(topics, cfg->email_topic, sizeof cfg->email_topic, cfg->user_topic,
                           sizeof cfg->user_topic) != 0)
        log_fatal("config: KAFKA_TOPIC: must be two comma-separated topic names "
                  "(email events, user events)");
    free(topics);
    cfg->db_path = config_str("DB_PATH", "./data/warmup-service.db");
    cfg->http_threads = (int)config_long("HTTP_THREADS", 4, 1, 64);
    cfg->import_max_bytes =
        (size_t)config_long("IMPORT_MAX_BYTES", 512L * 1024 * 1024, 1024, 16L * 1024 * 1024 * 1024);
}

void wconfig_cleanup(struct wconfig *cfg)
{
    free(cfg->bind_addr);
    free(cfg->api_token);
    free(cfg->kafka_brokers);
    free(cfg->db_path);
    memset(cfg, 0, sizeof *cfg);
}
