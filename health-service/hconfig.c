/* hconfig.c - environment -> struct hconfig. Main thread, at start-up. */
#include "hconfig.h"
#include "config.h"
#include "kafka.h"

#include <stdlib.h>
#include <string.h>

void hconfig_load(struct hconfig *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    static const char *const levels[] = {"debug", "info", "warn", "error", NULL};
    static const char *const formats[] = {"text", "json", NULL};
    cfg->log_level = (enum log_level)config_enum("LOG_LEVEL", "info", levels);
    cfg->log_format = (enum log_format)config_enum("LOG_FORMAT", "text", formats);
    log_init(cfg->log_level, cfg->log_format, "health-service");

    cfg->bind_addr = config_str("BIND_ADDR", "127.0.0.1");
    cfg->port = (int)config_long("PORT", 8081, 0, 65535);
    cfg->api_token = config_str("API_TOKEN", NULL);
    cfg->kafka_brokers = config_str("KAFKA_BROKERS", "127.0.0.1:9092");
    char *topics = config_str("KAFKA_TOPIC", NULL);
    if (kafka_topics_parse(topics, cfg->email_topic, sizeof cfg->email_topic, cfg->user_topic,
                           sizeof cfg->user_topic) != 0)
        log_fatal("config: KAFKA_TOPIC: must be two comma-separated topic names "
                  "(email events, user events)");
    free(topics);
    cfg->group_id = config_str("KAFKA_GROUP_ID", "health-service");
    cfg->db_path = config_str("DB_PATH", "./data/health-service.db");
    cfg->http_threads = (int)config_long("HTTP_THREADS", 4, 1, 64);
}

void hconfig_cleanup(struct hconfig *cfg)
{
    free(cfg->bind_addr);
    free(cfg->api_token);
    free(cfg->kafka_brokers);
    free(cfg->group_id);
    free(cfg->db_path);
    memset(cfg, 0, sizeof *cfg);
}
