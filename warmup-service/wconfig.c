/* wconfig.c - environment -> struct wconfig. Main thread, at start-up. */
#include "wconfig.h"
#include "addr.h"
#include "config.h"
#include "xalloc.h"

#include <stdlib.h>
#include <string.h>

/* allow_public_host - the PUBLIC_URL's host joins ALLOWED_HOSTS: the
 * unsubscribe links reach the service under that name (Host), and a
 * forgotten ALLOWED_HOSTS would answer every one-click POST 421 */
static void allow_public_host(struct wconfig *cfg)
{
    const char *url = cfg->unsub.public_url;
    if (!url)
        return;
    const char *host = strstr(url, "://") + 3;
    size_t n = strcspn(host, ":/");
    if (host[0] == '[' || n == 0) /* an IPv6 literal: list it in ALLOWED_HOSTS */
        return;
    char *old = cfg->svc.allowed_hosts;
    cfg->svc.allowed_hosts =
        old ? xasprintf("%s,%.*s", old, (int)n, host) : xasprintf("%.*s", (int)n, host);
    free(old);
}

/* ascii_domain - the value v (NULL: unset) of the domain-valued variable
 * name in its ASCII (xn--) form; not a valid domain is fatal. Frees v. */
static char *ascii_domain(const char *name, char *v)
{
    if (!v)
        return NULL;
    char why[128];
    struct addr a;
    char *probe = xasprintf("x@%s", v);
    int bad = addr_parse(probe, &a, why, sizeof why) || addr_ascii(&a, why, sizeof why);
    free(probe);
    if (bad)
        log_fatal("config: %s: not a valid domain: %s", name, why);
    free(v);
    return xstrdup(a.domain);
}

void wconfig_load(struct wconfig *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    svc_config_load(&cfg->svc, "warmup-service", 8080);
    cfg->import_max_bytes =
        (size_t)config_long("IMPORT_MAX_BYTES", 512L * 1024 * 1024, 1024, 16L * 1024 * 1024 * 1024);
    cfg->message_id_domain =
        ascii_domain("MESSAGE_ID_DOMAIN", config_str("MESSAGE_ID_DOMAIN", NULL));
    cfg->bounce_domain = ascii_domain("BOUNCE_DOMAIN", config_str("BOUNCE_DOMAIN", NULL));
    cfg->retry_max = (int)config_long("RETRY_MAX", 5, 0, 100);
    cfg->retry_base_ms = (int)config_long("RETRY_BASE_MS", 1000, 1, 3600 * 1000);
    cfg->send_batch = (int)config_long("SEND_BATCH", 32, 1, 64);
    cfg->lease_s = (int)config_long("SEND_LEASE_SECONDS", 600, 10, 86400);
    cfg->fanout_chunk = (int)config_long("FANOUT_CHUNK", 10000, 1, 1000000);
    cfg->shutdown_grace_s = (int)config_long("SHUTDOWN_GRACE_S", 10, 0, 3600);
    cfg->breaker_base_ms = (int)config_long("SMTP_BREAKER_BACKOFF_MS", 1000, 10, 3600 * 1000);
    cfg->breaker_max_ms =
        (int)config_long("SMTP_BREAKER_BACKOFF_MAX_MS", 60000, 10, 24 * 3600 * 1000);
    if (cfg->breaker_max_ms < cfg->breaker_base_ms)
        log_fatal("config: SMTP_BREAKER_BACKOFF_MAX_MS: must be at least SMTP_BREAKER_BACKOFF_MS");
    cfg->dkim_keys_file = config_str("DKIM_KEYS_FILE", NULL);
    cfg->feedback_topic = config_str("KAFKA_FEEDBACK_TOPIC", "feedback-events");
    cfg->send_topic = config_str("KAFKA_SEND_TOPIC", "email-send");
    cfg->send_group = config_str("KAFKA_SEND_GROUP_ID", "warmup-service-send");
    cfg->throttles_file = config_str("THROTTLES_FILE", NULL);
    char *off = config_str("WARMUP_CLOCK_OFFSET", NULL);
    if (off) {
        char *end;
        double v = strtod(off, &end);
        if (end == off || *end || !(v > -1e10 && v < 1e10))
            log_fatal("config: WARMUP_CLOCK_OFFSET: not a number of seconds: '%.32s'", off);
        cfg->clock_offset_ms = (int64_t)(v * 1000.0);
        free(off);
    }
    char err[256];
    policy_defaults(&cfg->policy);
    char *policy = config_str("WARMUP_POLICY", NULL);
    if (policy && policy_parse(policy, &cfg->policy, err, sizeof err) != 0)
        log_fatal("config: %s", err);
    free(policy);
    if (unsub_config_load(&cfg->unsub, err, sizeof err) != 0)
        log_fatal("config: %s", err);
    allow_public_host(cfg);
    /* local part URLs: PUBLIC_URL, else the bound address */
    const char *ba = cfg->svc.bind_addr;
    char *base = cfg->unsub.public_url ? xstrdup(cfg->unsub.public_url)
                 : strchr(ba, ':')     ? xasprintf("http://[%s]:%d", ba, cfg->svc.port)
                                       : xasprintf("http://%s:%d", ba, cfg->svc.port);
    if (upload_config_load(&cfg->upload, cfg->svc.db_path, base, err, sizeof err) != 0)
        log_fatal("config: %s", err);
    free(base);
    cfg->archive_after_days = (int)config_long("ARCHIVE_AFTER_DAYS", 0, 0, 36500);
    cfg->archive_interval_s = (int)config_long("ARCHIVE_INTERVAL", 300, 1, 86400);
    cfg->archive_batch = config_long("ARCHIVE_BATCH", 100000, 1, 10000000);
    const char *db = cfg->svc.db_path, *slash = strrchr(db, '/');
    char *adir = slash ? xasprintf("%.*s/archives", (int)(slash - db), db) : xstrdup("archives");
    cfg->archive_dir = config_str("ARCHIVE_DIR", adir);
    free(adir);
}

void wconfig_cleanup(struct wconfig *cfg)
{
    free(cfg->message_id_domain);
    free(cfg->bounce_domain);
    free(cfg->dkim_keys_file);
    free(cfg->feedback_topic);
    free(cfg->send_topic);
    free(cfg->send_group);
    free(cfg->throttles_file);
    unsub_config_cleanup(&cfg->unsub);
    upload_config_cleanup(&cfg->upload);
    free(cfg->archive_dir);
    svc_config_cleanup(&cfg->svc);
}
