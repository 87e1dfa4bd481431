/* main.c - health-service: read configuration, create the modules, serve
 * until SIGTERM/SIGINT, tear down.
 *
 * Threads: main (signals), the HTTP pool (libmicrohttpd), the Kafka
 * consumer's two (kconsumer.c: its consumer thread calls ingest_prepare,
 * its writer thread ingest_apply), the feedback-loop workers
 * (scheduler.c). Signals are blocked before any thread starts and taken
 * with sigwait() here.
 */
#include "api.h"
#include "happ.h"
#include "hconfig.h"
#include "hstore.h"
#include "dblock.h"
#include "httpd.h"
#include "kconsumer.h"
#include "log.h"
#include "loops/loops.h"
#include "scheduler.h"
#include "metrics.h"

#include <stdlib.h>

static double consumer_lag(void *arg)
{
    struct kconsumer_stats ks;
    kconsumer_stats(arg, &ks);
    return (double)ks.lag;
}

static double consumer_kafka_up(void *arg)
{
    struct kconsumer_stats ks;
    kconsumer_stats(arg, &ks);
    return ks.kafka_up ? 1 : 0;
}

static double tracked_copies(void *arg)
{
    return (double)hstore_tracked_count(arg);
}

static double known_domains(void *arg)
{
    return (double)hstore_domain_count(arg);
}

int main(void)
{
    struct hconfig cfg;
    char err[512];
    sigset_t set;
    svc_signals_block(&set);

    hconfig_load(&cfg);
    struct happ app = {.cfg = &cfg};
    /* the whole configuration is checked before the store is touched */
    struct loops_config loops;
    if (loops_config_load(&loops, cfg.loops_file, err, sizeof err) != 0)
        log_fatal("config: %s", err);
    app.loops = &loops;
    int lock = dblock_acquire(cfg.svc.db_path, err, sizeof err);
    if (lock < 0)
        log_fatal("store: %s", err);
    app.store = hstore_open(cfg.svc.db_path, err, sizeof err);
    if (!app.store)
        log_fatal("store: %s", err);
    app.metrics = metrics_new();
    app.events_consumed = metrics_counter(app.metrics, "health_events_consumed_total",
                                          "Kafka events consumed and committed", NULL);
    app.events_invalid = metrics_counter(app.metrics, "health_events_invalid_total",
                                         "Kafka events skipped as malformed", NULL);
    metrics_gauge_fn(app.metrics, "health_known_domains", "Recipient domains known", NULL,
                     known_domains, app.store);

    const char *topics[] = {cfg.svc.email_topic, cfg.svc.user_topic, NULL};
    struct kconsumer_config kc = {
        .brokers = cfg.svc.kafka_brokers,
        .group_id = cfg.group_id,
        .topics = topics,
        .client_id = "health-service",
        .extra = cfg.svc.kafka_sec.conf,
        .prepare = ingest_prepare,
        .apply = ingest_apply,
        .release = ingest_release,
        .arg = &app,
        .max_batch = 40000, /* one commit per 40000 events at full speed: fewer page writes */
    };
    app.consumer = kconsumer_start(&kc, err, sizeof err);
    if (!app.consumer)
        log_fatal("kafka consumer: %s", err);
    metrics_gauge_fn(app.metrics, "health_consumer_lag", "Messages behind the end of the topics",
                     NULL, consumer_lag, app.consumer);
    metrics_gauge_fn(app.metrics, "kafka_up", "1 when a Kafka broker answered recently", NULL,
                     consumer_kafka_up, app.consumer);
    metrics_gauge_fn(app.metrics, "health_tracked_copies", "Copies tracked", NULL, tracked_copies,
                     app.store);
    struct scheduler_config sc = {
        .store = app.store,
        .loops = &loops,
        .metrics = app.metrics,
        .interval_s = cfg.check_interval_s,
        .window_ms = cfg.track_window_s * 1000,
    };
    struct scheduler *sched = scheduler_start(&sc);

    struct http_config hc = {
        .routes = api_routes,
        .nroutes = api_nroutes,
        .app = &app,
        .metrics = app.metrics,
    };
    svc_http_config(&cfg.svc, &hc);
    struct http_server *srv = http_start(&hc, err, sizeof err);
    if (!srv)
        log_fatal("http: %s", err);
    log_info("health-service listening on %s:%d (auth %s) db=%s kafka=%s group=%s",
             cfg.svc.bind_addr, http_port(srv), cfg.svc.api_token ? "on" : "off", cfg.svc.db_path,
             cfg.svc.kafka_brokers, cfg.group_id);

    int sig = svc_signals_wait(&set);
    log_info("signal %d: shutting down", sig);
    http_stop(srv);
    scheduler_stop(sched);
    kconsumer_stop(app.consumer);
    loops_config_cleanup(&loops);
    metrics_free(app.metrics);
    hstore_free(app.store);
    dblock_release(lock);
    hconfig_cleanup(&cfg);
    log_info("stopped");
    return 0;
}
