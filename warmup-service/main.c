/* main.c - warmup-service: read configuration, create the modules, serve
 * until SIGTERM/SIGINT, tear down.
 *
 * Threads: main (signals), the HTTP pool (libmicrohttpd), the outbox
 * publisher (outbox.c), the sending pipeline (sender.c, worker.c,
 * writer.c). Signals are blocked before any thread starts and
 * taken with sigwait() here.
 */
#include "api.h"
#include "app.h"
#include "dblock.h"
#include "httpd.h"
#include "log.h"
#include "metrics.h"
#include "outbox.h"
#include "sender.h"
#include "smtp/smtp_clients.h"
#include "store.h"
#include "wconfig.h"

#include <stdlib.h>
#include <string.h>

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

int main(void)
{
    struct wconfig cfg;
    char err[512];
    sigset_t set;
    svc_signals_block(&set);

    wconfig_load(&cfg);
    struct app app = {.cfg = &cfg};
    /* before any thread starts: loading takes the secrets out of the
     * environment (setenv/unsetenv are not thread-safe) */
    struct smtp_clients clients;
    if (smtp_clients_load(&clients, err, sizeof err) != 0)
        log_fatal("config: %s", err);
    app.clients = &clients;
    int lock = dblock_acquire(cfg.svc.db_path, err, sizeof err);
    if (lock < 0)
        log_fatal("store: %s", err);
    app.store = store_open(cfg.svc.db_path, err, sizeof err);
    if (!app.store)
        log_fatal("store: %s", err);
    struct outbox_config oc = {.db_path = cfg.svc.db_path,
                               .brokers = cfg.svc.kafka_brokers,
                               .client_id = "warmup-service",
                               .extra = cfg.svc.kafka_sec.conf};
    app.outbox = outbox_publisher_start(&oc, err, sizeof err);
    if (!app.outbox)
        log_fatal("outbox: %s", err);
    app.metrics = metrics_new();
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
    };
    app.sender = sender_start(&sc, err, sizeof err);
    if (!app.sender)
        log_fatal("sender: %s", err);

    /* the import route's cap comes from IMPORT_MAX_BYTES */
    struct http_route routes[16];
    if (api_nroutes > sizeof routes / sizeof routes[0])
        log_fatal("too many routes");
    memcpy(routes, api_routes, api_nroutes * sizeof routes[0]);
    for (size_t i = 0; i < api_nroutes; i++)
        if (routes[i].stream)
            routes[i].body_max = cfg.import_max_bytes;

    struct http_config hc = {
        .routes = routes,
        .nroutes = api_nroutes,
        .app = &app,
        .metrics = app.metrics,
    };
    svc_http_config(&cfg.svc, &hc);
    struct http_server *srv = http_start(&hc, err, sizeof err);
    if (!srv)
        log_fatal("http: %s", err);
    log_info("warmup-service listening on %s:%d (auth %s) db=%s kafka=%s smtp=%s",
             cfg.svc.bind_addr, http_port(srv), cfg.svc.api_token ? "on" : "off", cfg.svc.db_path,
             cfg.svc.kafka_brokers, clients.v[clients.default_idx].s.name);

    int sig = svc_signals_wait(&set);
    log_info("signal %d: shutting down", sig);
    http_stop(srv);
    sender_stop(app.sender); /* commits every outcome and its event into the outbox */
    smtp_clients_cleanup(&clients);
    outbox_publisher_stop(app.outbox, 5000);
    metrics_free(app.metrics);
    store_free(app.store);
    dblock_release(lock);
    wconfig_cleanup(&cfg);
    log_info("stopped");
    return 0;
}
