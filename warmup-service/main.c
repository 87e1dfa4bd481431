/* main.c - warmup-service: read configuration, create the modules, serve
 * until SIGTERM/SIGINT, tear down.
 *
 * Threads: main (start-up, signals, shutdown), the HTTP pool
 * (libmicrohttpd), the outbox publisher (outbox.c), the sending pipeline
 * (sender.c, worker.c, writer.c), the feedback-events consumer's two
 * (feedback.c over kconsumer.c), the email-send consumer's two (sendq.c). The shared start-up and
 * shutdown are service.c's; warmup_vars lists the variables this service reads beyond
 * svc_config_vars (--help). One more thread: the fan-out of broadcasts (fanout.c).
 */
#include "api.h"
#include "app.h"
#include "archive.h"
#include "cluster.h"
#include "dblock.h"
#include "dkim.h"
#include "fanout.h"
#include "feedback.h"
#include "sendq.h"
#include "httpd.h"
#include "identities.h"
#include "importer.h"
#include "log.h"
#include "metrics.h"
#include "outbox.h"
#include "sqldb.h"
#include "sender.h"
#include "service.h"
#include "smtp/smtp_clients.h"
#include "store.h"
#include "upload.h"
#include "identity_clock.h"
#include "providers.h"
#include "wconfig.h"

#include <string.h>

static const struct svc_var warmup_vars[] = {
    {"IMPORT_MAX_BYTES", "536870912", "largest CSV import body"},
    {"CHOOSEN_SMTP_CLIENT_TYPE", "MAILPIT",
     "the default client: GOOGLE, MAILPIT, CUSTOM or DRYRUN"},
    {"GMAIL_SMTP_USERNAME", "", "GOOGLE: the account"},
    {"GMAIL_SMTP_APP_PASSWORD", "", "GOOGLE: its app password (secret)"},
    {"GMAIL_SMTP_HOST", "smtp.gmail.com", "GOOGLE: the server"},
    {"GMAIL_SMTP_PORT", "587", "GOOGLE: its port (STARTTLS and AUTH always)"},
    {"MAILPIT_SMTP_ADDR", "127.0.0.1:1025", "MAILPIT: HOST:PORT of a plain SMTP catcher"},
    {"SMTP_HOST", "", "CUSTOM: the server (required)"},
    {"SMTP_PORT", "25", "CUSTOM: its port"},
    {"SMTP_TLS", "starttls", "CUSTOM: none, starttls (required) or tls (implicit)"},
    {"SMTP_USERNAME", "", "CUSTOM: AUTH user, only over TLS or to a loopback host"},
    {"SMTP_PASSWORD", "", "CUSTOM: AUTH password (secret)"},
    {"SMTP_CA_FILE", "system store", "CUSTOM and GOOGLE: CA bundle for the server"},
    {"SMTP_HELO", "", "EHLO name (else MESSAGE_ID_DOMAIN)"},
    {"SMTP_SPOOL_DIR", "./data/spool", "DRYRUN: where .eml files are written"},
    {"SMTP_CLIENTS_FILE", "", "JSON list of named clients (replaces the SMTP variables)"},
    {"WORKERS", "4", "SMTP connections of the default client"},
    {"SEND_TPM", "0", "the default client's messages per minute (0: no limit)"},
    {"SMTP_CONNECT_TIMEOUT_MS", "10000", "connect and greeting time limit"},
    {"SMTP_COMMAND_TIMEOUT_MS", "30000", "time limit of one SMTP command"},
    {"SMTP_MESSAGE_TIMEOUT_MS", "120000", "time limit of one message's data"},
    {"SMTP_BREAKER_BACKOFF_MS", "1000", "circuit breaker: first wait before a probe"},
    {"SMTP_BREAKER_BACKOFF_MAX_MS", "60000", "circuit breaker: longest wait"},
    {"RETRY_MAX", "5", "retries before a copy is dead-lettered"},
    {"RETRY_BASE_MS", "1000", "first retry delay, doubling per retry"},
    {"MESSAGE_ID_DOMAIN", "from's domain", "domain of the Message-IDs"},
    {"BOUNCE_DOMAIN", "", "VERP envelope sender bounces+{token}@BOUNCE_DOMAIN (else the From)"},
    {"SEND_BATCH", "32", "copies per SMTP call on one connection (1-64)"},
    {"SEND_LEASE_SECONDS", "600", "lease of a claimed copy before /reconcile may requeue it"},
    {"FANOUT_CHUNK", "10000", "users per transaction of a broadcast's background fan-out"},
    {"SHUTDOWN_GRACE_S", "10", "on SIGTERM, seconds SMTP sends in flight may finish"},
    {"PUBLIC_URL", "", "base URL of the unsubscribe links (https://mail.example.com)"},
    {"UNSUBSCRIBE_SECRET", "", "HMAC key of the unsubscribe tokens, >= 16 bytes (secret)"},
    {"UNSUBSCRIBE_MAILTO", "", "address of the List-Unsubscribe mailto: (optional)"},
    {"KAFKA_FEEDBACK_TOPIC", "feedback-events", "bounces and complaints that suppress"},
    {"KAFKA_SEND_TOPIC", "email-send", "send requests other systems produce (consumed)"},
    {"KAFKA_SEND_GROUP_ID", "warmup-service-send", "the consumer group of KAFKA_SEND_TOPIC"},
    {"DKIM_KEYS_FILE", "", "JSON list of DKIM keys; copies of those domains are signed"},
    {"THROTTLES_FILE", "", "JSON list of recipient providers (domain groups) and their limits"},
    {"WARMUP_CLOCK_OFFSET", "0", "tests only: seconds added to the identities' clock"},
    {"WARMUP_POLICY", "", "JSON thresholds of the placement policy (README: Warmup control)"},
    {"UPLOAD_STORE", "local", "where uploaded CSVs go: local or s3://bucket/prefix"},
    {"UPLOAD_DIR", "DB_PATH's folder/uploads", "local parts, spooled imports, the URL key"},
    {"UPLOAD_SECRET", "generated in UPLOAD_DIR", "HMAC key of local part URLs (secret)"},
    {"UPLOAD_MAX_BYTES", "5368709120", "largest upload"},
    {"UPLOAD_PART_SIZE", "16777216", "bytes per part (S3: at least 5 MiB)"},
    {"UPLOAD_URL_TTL", "3600", "seconds a part URL stays valid"},
    {"S3_ENDPOINT", "", "s3: https://host[:port] (http only to loopback), path-style"},
    {"S3_CA_FILE", "system store", "s3: CA bundle for the endpoint"},
    {"AWS_REGION", "us-east-1", "s3: the bucket's region"},
    {"AWS_ACCESS_KEY_ID", "", "s3: the access key"},
    {"AWS_SECRET_ACCESS_KEY", "", "s3: the secret key (secret)"},
    {"ARCHIVE_AFTER_DAYS", "0", "archive sent, dead, suppressed copies older than this (0: never)"},
    {"ARCHIVE_DIR", "DB_PATH's folder/archives", "archive files (UPLOAD_STORE=s3: their spool)"},
    {"ARCHIVE_INTERVAL", "300", "seconds between two archiver passes"},
    {"ARCHIVE_BATCH", "100000", "copies per archive file"},
    {NULL, NULL, NULL},
};

static const struct service_info warmup_info = {
    .name = "warmup-service",
    .summary = "Registers recipients, broadcasts emails to them over SMTP and publishes one "
               "Kafka event per copy sent and per user registered.",
    .default_port = 8080,
    .vars = warmup_vars,
};

static double outbox_pending(void *arg)
{
    struct outbox_stats st;
    outbox_publisher_stats(arg, &st);
    return (double)st.pending;
}

static double kafka_up(void *arg)
{
    struct outbox_stats st;
    outbox_publisher_stats(arg, &st);
    return st.kafka_up ? 1 : 0;
}

/* identity_changed - identities.h's notice: the sender reloads the identity */
static void identity_changed(void *arg, int64_t identity_id)
{
    sender_identity_changed(arg, identity_id);
}

static void app_metrics(struct app *app)
{
    struct metrics *m = app->metrics;
    app->users_registered =
        metrics_counter(m, "users_registered_total", "Users registered (API and import)", NULL);
    app->users_duplicate = metrics_counter(m, "users_duplicate_total",
                                           "Registrations refused as already registered", NULL);
    app->import_invalid =
        metrics_counter(m, "users_import_invalid_total", "Invalid rows in CSV imports", NULL);
    metrics_gauge_fn(m, "outbox_pending", "Events waiting in the outbox", NULL, outbox_pending,
                     app->outbox);
    metrics_gauge_fn(m, "kafka_up", "1 when a Kafka broker answered recently", NULL, kafka_up,
                     app->outbox);
}

int main(int argc, char **argv)
{
    struct service *svc = service_new(&warmup_info, argc, argv);
    struct wconfig cfg;
    char err[512];
    wconfig_load(&cfg);
    struct app app = {.cfg = &cfg, .metrics = service_metrics(svc)};
    /* before any thread starts: loading takes the secrets out of the
     * environment (setenv/unsetenv are not thread-safe) */
    struct smtp_clients clients;
    if (smtp_clients_load(&clients, err, sizeof err) != 0)
        log_fatal("config: %s", err);
    app.clients = &clients;
    struct dkim_signer *dkim = NULL; /* keys parsed once, before the workers start */
    if (cfg.dkim_keys_file && dkim_signer_load(cfg.dkim_keys_file, &dkim, err, sizeof err) != 0)
        log_fatal("config: %s", err);
    struct providers *providers = providers_load(cfg.throttles_file, err, sizeof err);
    if (!providers)
        log_fatal("config: %s", err);
    ident_clock_set(cfg.clock_offset_ms);
    if (cfg.clock_offset_ms)
        log_warn("WARMUP_CLOCK_OFFSET: the identities' clock runs %lld ms off the wall clock "
                 "(for tests only)",
                 (long long)cfg.clock_offset_ms);
    /* SQLite: one process per file (dblock.h); PostgreSQL: any number */
    const char *db = cfg.svc.database_url ? cfg.svc.database_url : cfg.svc.db_path;
    int lock = cfg.svc.database_url ? -1 : dblock_acquire(cfg.svc.db_path, err, sizeof err);
    if (!cfg.svc.database_url && lock < 0)
        log_fatal("store: %s", err);
    app.store = store_open(db, err, sizeof err);
    if (!app.store)
        log_fatal("store: %s", err);
    struct outbox_config oc = {.db_path = db,
                               .brokers = cfg.svc.kafka_brokers,
                               .client_id = "warmup-service",
                               .extra = cfg.svc.kafka_sec.conf};
    app.outbox = outbox_publisher_start(&oc, err, sizeof err);
    if (!app.outbox)
        log_fatal("outbox: %s", err);
    app_metrics(&app);
    struct sender_config sc = {
        .store = app.store,
        .clients = &clients,
        .metrics = app.metrics,
        .outbox = app.outbox,
        .email_topic = cfg.svc.email_topic,
        .retry_max = cfg.retry_max,
        .retry_base_ms = cfg.retry_base_ms,
        .lease_ms = (int64_t)cfg.lease_s * 1000,
        .batch = cfg.send_batch,
        .shutdown_grace_ms = cfg.shutdown_grace_s * 1000,
        .breaker_base_ms = cfg.breaker_base_ms,
        .breaker_max_ms = cfg.breaker_max_ms,
        .bounce_domain = cfg.bounce_domain,
        .dkim = dkim,
        .unsub = &cfg.unsub,
        .providers = providers,
    };
    app.sender = sender_start(&sc, err, sizeof err);
    if (!app.sender)
        log_fatal("sender: %s", err);
    struct cluster *cluster = cluster_start(app.store, app.sender, cfg.svc.database_url != NULL);
    struct fanout_config fo = {.store = app.store, .sender = app.sender, .chunk = cfg.fanout_chunk};
    app.fanout = fanout_start(&fo, err, sizeof err);
    if (!app.fanout)
        log_fatal("fanout: %s", err);
    struct identities_config ic = {.store = app.store,
                                   .metrics = app.metrics,
                                   .policy = &cfg.policy,
                                   .changed = identity_changed,
                                   .changed_arg = app.sender};
    app.identities = identities_new(&ic, err, sizeof err);
    if (!app.identities)
        log_fatal("identities: %s", err);
    struct feedback_config fc = {.brokers = cfg.svc.kafka_brokers,
                                 .topic = cfg.feedback_topic,
                                 .user_topic = cfg.svc.user_topic,
                                 .extra = cfg.svc.kafka_sec.conf,
                                 .store = app.store,
                                 .outbox = app.outbox,
                                 .metrics = app.metrics,
                                 .policy = &cfg.policy,
                                 .identities = app.identities};
    app.feedback = feedback_start(&fc, err, sizeof err);
    if (!app.feedback)
        log_fatal("feedback consumer: %s", err);
    app.uploads = uploads_new(&cfg.upload, app.store, err, sizeof err);
    if (!app.uploads)
        log_fatal("uploads: %s", err);
    app.importer = importer_start(&app, err, sizeof err);
    if (!app.importer)
        log_fatal("importer: %s", err);
    struct archive_config ac = {.store = app.store,
                                .after_days = cfg.archive_after_days,
                                .dir = cfg.archive_dir,
                                .s3 = cfg.upload.backend == UPLOAD_S3 ? &cfg.upload : NULL,
                                .batch = cfg.archive_batch,
                                .interval_s = cfg.archive_interval_s};
    struct archiver *archiver = archiver_start(&ac, err, sizeof err);
    if (!archiver && *err)
        log_fatal("archive: %s", err);
    struct sendq_config qc = {.brokers = cfg.svc.kafka_brokers,
                              .topic = cfg.send_topic,
                              .group_id = cfg.send_group,
                              .email_topic = cfg.svc.email_topic,
                              .extra = cfg.svc.kafka_sec.conf,
                              .app = &app};
    app.sendq = sendq_start(&qc, err, sizeof err);
    if (!app.sendq)
        log_fatal("email-send consumer: %s", err);

    /* the import route's cap comes from IMPORT_MAX_BYTES */
    struct http_route routes[128];
    if (api_nroutes > sizeof routes / sizeof routes[0])
        log_fatal("too many routes");
    memcpy(routes, api_routes, api_nroutes * sizeof routes[0]);
    for (size_t i = 0; i < api_nroutes; i++)
        if (routes[i].stream && routes[i].body_max == (size_t)-1)
            routes[i].body_max = cfg.import_max_bytes;
    if (service_http_start(svc, &cfg.svc, routes, api_nroutes, &app, err, sizeof err) != 0)
        log_fatal("http: %s", err);
    char db_shown[512]; /* a URL's password never reaches the log */
    sqldb_url_redacted(db, db_shown, sizeof db_shown);
    log_info("warmup-service listening on %s:%d (auth %s) db=%s kafka=%s smtp=%s",
             cfg.svc.bind_addr, service_port(svc), cfg.svc.api_token ? "on" : "off", db_shown,
             cfg.svc.kafka_brokers, clients.v[clients.default_idx].s.name);

    service_wait(svc);
    importer_stop(app.importer); /* between two batches: the import resumes at the next start */
    archiver_stop(archiver);     /* between two files */
    /* the consumer's offsets are committed after its last transaction */
    sendq_stop(app.sendq);
    feedback_stop(app.feedback);
    fanout_stop(app.fanout); /* between two chunks: the fan-out resumes at the next start */
    cluster_stop(cluster);
    sender_stop(app.sender); /* commits every outcome and its event into the outbox */
    smtp_clients_cleanup(&clients);
    dkim_signer_free(dkim);
    providers_free(providers);
    outbox_publisher_stop(app.outbox, 5000);
    uploads_free(app.uploads);
    store_free(app.store);
    dblock_release(lock);
    wconfig_cleanup(&cfg);
    service_free(svc);
    identities_free(app.identities); /* after the scraper: its gauge reads them */
    return 0;
}
