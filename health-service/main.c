/* main.c - health-service: read configuration, create the modules, serve
 * until SIGTERM/SIGINT (SIGHUP reloads SEED_MAILBOXES_FILE), tear down.
 *
 * Threads: main (start-up, signals, shutdown), the HTTP pool
 * (libmicrohttpd), the Kafka consumer's two (kconsumer.c: its consumer
 * thread calls ingest_prepare, its writer thread ingest_apply), the
 * feedback-loop coordinator and workers (scheduler.c), the bounce mailbox reader
 * (bounce/bounce.c, when BOUNCE_MAILBOX is set), the placement summaries
 * (placement.c). The shared start-up and shutdown
 * are service.c's; health_vars lists the variables this service reads
 * beyond svc_config_vars (--help).
 */
#include "analytics.h"
#include "api.h"
#include "bounce/bounce.h"
#include "dblock.h"
#include "sqldb.h"
#include "happ.h"
#include "hconfig.h"
#include "hstore.h"
#include "kconsumer.h"
#include "log.h"
#include "loops/loops.h"
#include "metrics.h"
#include "placement.h"
#include "providers.h"
#include "scheduler.h"
#include "seeds.h"
#include "service.h"

static const struct svc_var health_vars[] = {
    {"KAFKA_GROUP_ID", "health-service", "Kafka consumer group"},
    {"CHECK_INTERVAL", "60", "seconds between feedback-loop rounds"},
    {"TRACK_WINDOW", "604800", "seconds after sending during which a copy is checked"},
    {"FEEDBACK_LOOPS_FILE", "", "JSON: domain -> feedback loop and its settings"},
    {"DB_FILES", "1", "1, 2, 4 or 8: SQLite files a new store spreads copies over"},
    {"BOUNCE_MAILBOX", "", "JSON: the IMAP mailbox of bounces and complaint reports"},
    {"KAFKA_FEEDBACK_TOPIC", "feedback-events",
     "topic of email.bounced, email.complained and placement.summary"},
    {"THROTTLES_FILE", "", "JSON: recipient providers (named groups of domains)"},
    {"FEEDBACK_WINDOW", "86400",
     "seconds of sending that placement summaries and /providers cover"},
    {"SEED_MAILBOXES_FILE", "",
     "JSON: per recipient address, the IMAP seed mailbox its copies are checked in (SIGHUP "
     "reloads it)"},
    {"CHECK_WORKERS", "4", "feedback-loop worker threads (mailboxes and domains checked at once)"},
    {"IMAP_MAX_CONNECTIONS", "100", "open IMAP connections of the feedback loops at most (1-200)"},
    {NULL, NULL, NULL},
};

static const struct service_info health_info = {
    .name = "health-service",
    .summary = "Consumes the warmup events, tracks every copy and asks per-domain feedback "
               "loops where it landed.",
    .default_port = 8081,
    .vars = health_vars,
};

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

static double seeds_ok(void *arg)
{
    return (double)seeds_count_ok(arg);
}

static double seeds_error(void *arg)
{
    return (double)(seeds_count(arg) - seeds_count_ok(arg));
}

/* reload_seeds - SIGHUP: SEED_MAILBOXES_FILE again (a bad file keeps the
 * set as it was) */
static void reload_seeds(void *arg)
{
    struct happ *app = arg;
    char err[512];
    if (!app->cfg->seeds_file) {
        log_info("SIGHUP: no SEED_MAILBOXES_FILE to reload");
        return;
    }
    if (seeds_load(app->seeds, app->cfg->seeds_file, NULL, err, sizeof err) != 0)
        log_error("SIGHUP: %s (the seed mailboxes stay as they were)", err);
}

int main(int argc, char **argv)
{
    struct service *svc = service_new(&health_info, argc, argv);
    struct hconfig cfg;
    char err[512];
    hconfig_load(&cfg);
    struct happ app = {.cfg = &cfg, .metrics = service_metrics(svc)};
    /* the whole configuration is checked before the store is touched */
    struct loops_config loops;
    if (loops_config_load(&loops, cfg.loops_file, err, sizeof err) != 0)
        log_fatal("config: %s", err);
    app.loops = &loops;
    app.seeds = seeds_new();
    if (cfg.seeds_file && seeds_load(app.seeds, cfg.seeds_file, NULL, err, sizeof err) != 0)
        log_fatal("config: %s", err);
    struct providers *providers = NULL;
    if (cfg.throttles_file && !(providers = providers_load(cfg.throttles_file, err, sizeof err)))
        log_fatal("config: %s", err);
    app.providers = providers;
    struct bounce_reader *bounces = NULL;
    if (cfg.bounce_mailbox && !(bounces = bounce_new(cfg.bounce_mailbox, err, sizeof err)))
        log_fatal("config: %s", err);
    /* PostgreSQL is shared by every instance; a SQLite file has one process */
    int lock = cfg.svc.database_url ? -1 : dblock_acquire(cfg.svc.db_path, err, sizeof err);
    if (lock < 0 && !cfg.svc.database_url)
        log_fatal("store: %s", err);
    char db_shown[512];
    sqldb_url_redacted(cfg.svc.database_url ? cfg.svc.database_url : cfg.svc.db_path, db_shown,
                       sizeof db_shown);
    app.store = hstore_open(cfg.svc.database_url ? cfg.svc.database_url : cfg.svc.db_path,
                            cfg.db_files, err, sizeof err);
    if (!app.store)
        log_fatal("store: %s", err);
    struct analytics_metrics analytics; /* counters of the /analytics counts */
    analytics_metrics_start(&analytics, app.metrics, app.store);
    app.events_consumed = metrics_counter(app.metrics, "health_events_consumed_total",
                                          "Kafka events consumed and committed", NULL);
    app.events_invalid = metrics_counter(app.metrics, "health_events_invalid_total",
                                         "Kafka events skipped as malformed", NULL);
    metrics_gauge_fn(app.metrics, "health_known_domains", "Recipient domains known", NULL,
                     known_domains, app.store);
    metrics_gauge_fn(app.metrics, "health_seed_mailboxes", "Seed mailboxes by state",
                     (const char *const[]){"state", "ok", NULL}, seeds_ok, app.seeds);
    metrics_gauge_fn(app.metrics, "health_seed_mailboxes", "Seed mailboxes by state",
                     (const char *const[]){"state", "error", NULL}, seeds_error, app.seeds);

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
        .max_batch = 40000, /* fewer, larger commits at full speed */
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
    struct placement_config pc = {
        .store = app.store,
        .providers = providers,
        .metrics = app.metrics,
        .brokers = cfg.svc.kafka_brokers,
        .kafka_extra = cfg.svc.kafka_sec.conf,
        .topic = cfg.feedback_topic,
        .window_s = cfg.feedback_window_s,
        .interval_s = cfg.check_interval_s,
    };
    struct placement *placement = placement_start(&pc, err, sizeof err);
    if (!placement)
        log_fatal("placement: %s", err);
    struct scheduler_config sc = {
        .store = app.store,
        .loops = &loops,
        .seeds = app.seeds,
        .metrics = app.metrics,
        .workers = cfg.check_workers,
        .max_connections = cfg.imap_max_connections,
        .interval_s = cfg.check_interval_s,
        .window_ms = cfg.track_window_s * 1000,
        .providers = providers,
        .round_done = placement_kick,
        .round_arg = placement,
    };
    struct scheduler *sched = scheduler_start(&sc, err, sizeof err);
    if (!sched)
        log_fatal("scheduler: %s", err);

    struct bounce_config bc = {
        .store = app.store,
        .metrics = app.metrics,
        .brokers = cfg.svc.kafka_brokers,
        .kafka_extra = cfg.svc.kafka_sec.conf,
        .topic = cfg.feedback_topic,
        .interval_s = cfg.check_interval_s,
    };
    if (bounces && bounce_start(bounces, &bc, err, sizeof err) != 0)
        log_fatal("bounces: %s", err);

    if (service_http_start(svc, &cfg.svc, api_routes, api_nroutes, &app, err, sizeof err) != 0)
        log_fatal("http: %s", err);
    log_info("health-service listening on %s:%d (auth %s) db=%s kafka=%s group=%s",
             cfg.svc.bind_addr, service_port(svc), cfg.svc.api_token ? "on" : "off", db_shown,
             cfg.svc.kafka_brokers, cfg.group_id);

    service_on_hup(svc, reload_seeds, &app);
    service_wait(svc);
    bounce_stop(bounces);
    scheduler_stop(sched);
    seeds_free(app.seeds);
    placement_stop(placement);
    kconsumer_stop(app.consumer);
    loops_config_cleanup(&loops);
    hstore_free(app.store);
    providers_free(providers);
    dblock_release(lock);
    hconfig_cleanup(&cfg);
    service_free(svc);
    return 0;
}
