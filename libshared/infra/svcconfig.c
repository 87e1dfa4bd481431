/* svcconfig.c - the shared service settings and their usage lines. Main
 * thread, at start-up. A variable read here is listed in svc_config_vars
 * (tests/integration/test_foundation.sh checks both against the README). */
#include "svcconfig.h"
#include "sqldb.h"
#include "config.h"
#include "httpd.h"
#include "kafka.h"
#include "xalloc.h"

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
    c->database_url = config_secret("DATABASE_URL");
    if (c->database_url && !sqldb_is_url(c->database_url))
        log_fatal("config: DATABASE_URL: must be a postgres:// or postgresql:// URL");
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
    if (c->database_url)
        explicit_bzero(c->database_url, strlen(c->database_url));
    free(c->database_url);
    free(c->allowed_hosts);
    memset(c, 0, sizeof *c);
}

const struct svc_var svc_config_vars[] = {
    {"PORT", NULL, "HTTP port"},
    {"BIND_ADDR", "127.0.0.1", "address to listen on; a non-loopback one needs API_TOKEN"},
    {"API_TOKEN", "", "bearer token for every endpoint but /healthz, /readyz, /metrics"},
    {"KAFKA_BROKERS", "127.0.0.1:9092", "Kafka bootstrap servers"},
    {"KAFKA_TOPIC", "email-events,emailId-events", "the email and user event topics"},
    {"KAFKA_SECURITY_PROTOCOL", "PLAINTEXT", "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"},
    {"KAFKA_SASL_MECHANISM", "PLAIN", "with SASL_*: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"},
    {"KAFKA_SASL_USERNAME", "", "with SASL_*: the user"},
    {"KAFKA_SASL_PASSWORD", "", "with SASL_*: its password (secret)"},
    {"KAFKA_CA_FILE", "system store", "with SSL or SASL_SSL: CA bundle for the brokers"},
    {"DB_PATH", NULL, "SQLite file (mode 0600)"},
    {"DATABASE_URL", "",
     "postgres://user@host/db: state in PostgreSQL instead of DB_PATH (secret)"},
    {"LOG_LEVEL", "info", "debug, info, warn or error"},
    {"LOG_FORMAT", "text", "text or json (one object per line)"},
    {"HTTP_THREADS", "4", "HTTP worker threads"},
    {"HTTP_TIMEOUT", "30", "seconds without progress before a connection is closed"},
    {"HTTP_HEADER_TIMEOUT", "10", "seconds for a request's line and headers (and keep-alive idle)"},
    {"HTTP_BODY_TIMEOUT", "30", "seconds for a request body, +1 per 4 KiB received"},
    {"HTTP_MAX_CONNECTIONS", "1024", "open connections in all"},
    {"HTTP_MAX_CONNECTIONS_PER_IP", "128", "open connections from one client address"},
    {"ALLOWED_HOSTS", "", "comma-separated Host names answered besides the bound address"},
    {NULL, NULL, NULL},
};

/* var_default - v's default as shown: the service's PORT and DB_PATH, "-"
 * for none */
static const char *var_default(const struct svc_var *v, const char *port, const char *db)
{
    if (!v->def)
        return strcmp(v->name, "PORT") == 0 ? port : db;
    return *v->def ? v->def : "-";
}

static void usage_lines(FILE *f, const struct svc_var *v, int wname, int wdef, const char *port,
                        const char *db)
{
    for (; v && v->name; v++)
        fprintf(f, "  %-*s  %-*s  %s\n", wname, v->name, wdef, var_default(v, port, db),
                v->meaning);
}

static void usage_widths(const struct svc_var *v, const char *port, const char *db, int *wname,
                         int *wdef)
{
    for (; v && v->name; v++) {
        int n = (int)strlen(v->name), d = (int)strlen(var_default(v, port, db));
        *wname = n > *wname ? n : *wname;
        *wdef = d > *wdef ? d : *wdef;
    }
}

void svc_config_usage(FILE *f, const char *service, int default_port, const struct svc_var *own)
{
    char port[16];
    snprintf(port, sizeof port, "%d", default_port);
    char *db = xasprintf("./data/%s.db", service);
    int wname = (int)strlen("variable"), wdef = (int)strlen("default");
    usage_widths(svc_config_vars, port, db, &wname, &wdef);
    usage_widths(own, port, db, &wname, &wdef);
    fprintf(f, "  %-*s  %-*s  %s\n", wname, "variable", wdef, "default", "meaning");
    usage_lines(f, svc_config_vars, wname, wdef, port, db);
    usage_lines(f, own, wname, wdef, port, db);
    free(db);
}
