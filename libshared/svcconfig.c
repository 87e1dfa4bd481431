/* svcconfig.c - the shared service settings. Main thread, at start-up. */
#include "svcconfig.h"
#include "config.h"
#include "httpd.h"
#include "kafka.h"
#include "xalloc.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

void svc_config_load(struct svc_config *c, const char *service, int default_port)
{
    memset(c, 0, sizeof *c);
    static const char *const levels[] = {"debug", "info", "warn", "error", NULL};
    static const char *const formats[] = {"text", "json", NULL};
    c->log_level = (enum log_level)config_enum("LOG_LEVEL", "info", levels);
    c->log_format = (enum log_format)config_enum("LOG_FORMAT", "text", formats);
    log_init(c->log_level, c->log_format, service);

    c->bind_addr = config_str("BIND_ADDR", "127.0.0.1");
    c->port = (int)config_long("PORT", default_port, 0, 65535);
    c->api_token = config_secret("API_TOKEN");
    c->kafka_brokers = config_str("KAFKA_BROKERS", "127.0.0.1:9092");
    char err[512];
    if (kafka_security_load(&c->kafka_sec, c->kafka_brokers, err, sizeof err) < 0)
        log_fatal("config: %s", err);
    if (strcmp(c->kafka_sec.protocol, "plaintext") != 0)
        log_info("kafka: security.protocol=%s sasl.mechanism=%s sasl.username=%s ca_file=%s",
                 c->kafka_sec.protocol, c->kafka_sec.mechanism ? c->kafka_sec.mechanism : "-",
                 c->kafka_sec.username ? c->kafka_sec.username : "-",
                 c->kafka_sec.ca_file ? c->kafka_sec.ca_file : "(system store)");
    char *topics = config_str("KAFKA_TOPIC", NULL);
    if (kafka_topics_parse(topics, c->email_topic, sizeof c->email_topic, c->user_topic,
                           sizeof c->user_topic) != 0)
        log_fatal("config: KAFKA_TOPIC: must be two comma-separated topic names "
                  "(email events, user events)");
    free(topics);
    char *def_db = xasprintf("./data/%s.db", service);
    c->db_path = config_str("DB_PATH", def_db);
    free(def_db);
    c->http_threads = (int)config_long("HTTP_THREADS", 4, 1, 64);
    c->http_timeout_s = (int)config_long("HTTP_TIMEOUT", 30, 1, 3600);
    c->allowed_hosts = config_str("ALLOWED_HOSTS", NULL);
    c->http_max_conns = (int)config_long("HTTP_MAX_CONNECTIONS", 1024, 16, 65536);
    c->http_max_conns_per_ip =
        (int)config_long("HTTP_MAX_CONNECTIONS_PER_IP", 128, 1, c->http_max_conns);
    c->http_header_timeout_s = (int)config_long("HTTP_HEADER_TIMEOUT", 10, 1, 3600);
    c->http_body_timeout_s = (int)config_long("HTTP_BODY_TIMEOUT", 30, 1, 3600);
}

void svc_http_config(const struct svc_config *c, struct http_config *h)
{
    h->bind_addr = c->bind_addr;
    h->port = c->port;
    h->api_token = c->api_token;
    h->threads = (unsigned)c->http_threads;
    h->conn_timeout_s = (unsigned)c->http_timeout_s;
    h->allowed_hosts = c->allowed_hosts;
    h->max_conns = (unsigned)c->http_max_conns;
    h->max_conns_per_ip = (unsigned)c->http_max_conns_per_ip;
    h->header_timeout_s = (unsigned)c->http_header_timeout_s;
    h->body_timeout_s = (unsigned)c->http_body_timeout_s;
}

void svc_config_cleanup(struct svc_config *c)
{
    free(c->bind_addr);
    if (c->api_token)
        explicit_bzero(c->api_token, strlen(c->api_token));
    free(c->api_token);
    free(c->kafka_brokers);
    kafka_security_cleanup(&c->kafka_sec);
    free(c->db_path);
    free(c->allowed_hosts);
    memset(c, 0, sizeof *c);
}

void svc_signals_block(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    pthread_sigmask(SIG_BLOCK, set, NULL);
    signal(SIGPIPE, SIG_IGN);
}

int svc_signals_wait(const sigset_t *set)
{
    int sig = 0;
    sigwait(set, &sig);
    return sig;
}
