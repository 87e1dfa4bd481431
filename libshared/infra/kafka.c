/* kafka.c - common librdkafka configuration, the connection's security
 * settings (read at start-up on the main thread) and topic list parsing.
 *
 * kafka_conf_new() gives every client the same base: bootstrap servers,
 * client id, and a log callback that routes librdkafka's log lines through
 * log.h (librdkafka calls it from its own threads; log.h is thread-safe).
 * Owns nothing after it returns.
 */
#include "kafka.h"
#include "config.h"
#include "errbuf.h"
#include "log.h"
#include "timeutil.h"
#include "xalloc.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* kafka_log_cb - librdkafka syslog levels (0 emerg .. 7 debug) to log.h.
 * LOG_ERR (3) is what librdkafka uses for a refused connection or a broker
 * that went away: recoverable, so a warning here; what cannot recover
 * reaches the error callbacks as RD_KAFKA_RESP_ERR__FATAL. */
static void kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    const char *name = rk ? rd_kafka_name(rk) : "rdkafka";
    if (level <= 2)
        log_error("kafka: client=%s fac=%s %s", name, fac, buf);
    else if (level <= 4)
        log_warn("kafka: client=%s fac=%s %s", name, fac, buf);
    else if (level <= 6)
        log_info("kafka: client=%s fac=%s %s", name, fac, buf);
    else
        log_debug("kafka: client=%s fac=%s %s", name, fac, buf);
}

static int conf_set(rd_kafka_conf_t *conf, const char *key, const char *value, char *errbuf,
                    size_t errlen)
{
    char err[512];
    if (rd_kafka_conf_set(conf, key, value, err, sizeof err) != RD_KAFKA_CONF_OK) {
        errbuf_set(errbuf, errlen, "kafka setting %s: %s", key, err);
        return -1;
    }
    return 0;
}

rd_kafka_conf_t *kafka_conf_new(const char *brokers, const char *client_id,
                                const char *const *extra, char *errbuf, size_t errlen)
{
    if (!brokers || !*brokers) {
        errbuf_set(errbuf, errlen, "no Kafka bootstrap servers given");
        return NULL;
    }
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(conf, kafka_log_cb);
    /* librdkafka's debug lines only when we log debug ourselves */
    const char *level = log_enabled(LOG_DEBUG) ? "7" : "6";
    if (conf_set(conf, "bootstrap.servers", brokers, errbuf, errlen) != 0 ||
        conf_set(conf, "client.id", client_id && *client_id ? client_id : "rdkafka", errbuf,
                 errlen) != 0 ||
        conf_set(conf, "log_level", level, errbuf, errlen) != 0)
        goto fail;
    for (size_t i = 0; extra && extra[i]; i += 2) {
        if (!extra[i + 1]) {
            errbuf_set(errbuf, errlen, "kafka setting %s has no value", extra[i]);
            goto fail;
        }
        if (conf_set(conf, extra[i], extra[i + 1], errbuf, errlen) != 0)
            goto fail;
    }
    return conf;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

/* --- security settings ------------------------------------------------- */

/* broker_host - the host of one bootstrap entry ("[proto://]host[:port]",
 * "[v6]:port") into out; false when it does not fit */
static bool broker_host(const char *e, size_t n, char *out, size_t outlen)
{
    const char *end = e + n, *sep = NULL;
    for (const char *p = e; p + 2 < end; p++)
        if (p[0] == ':' && p[1] == '/' && p[2] == '/') {
            sep = p + 3;
            break;
        }
    if (sep)
        e = sep;
    while (e < end && isspace((unsigned char)*e))
        e++;
    while (end > e && isspace((unsigned char)end[-1]))
        end--;
    const char *h = e, *hend = end;
    if (e < end && *e == '[') {
        h = e + 1;
        hend = memchr(h, ']', (size_t)(end - h));
        if (!hend)
            return false;
    } else {
        const char *colon = memchr(e, ':', (size_t)(end - e));
        /* one colon: host:port; more: a bare IPv6 address */
        if (colon && !memchr(colon + 1, ':', (size_t)(end - colon - 1)))
            hend = colon;
    }
    size_t hl = (size_t)(hend - h);
    if (hl >= outlen)
        return false;
    memcpy(out, h, hl);
    out[hl] = '\0';
    return true;
}

/* remote_broker - the first broker in the list that is not loopback (into
 * host), or false when all are */
static bool remote_broker(const char *brokers, char *host, size_t hostlen)
{
    const char *p = brokers;
    while (*p) {
        size_t n = strcspn(p, ",");
        host[0] = '\0';
        if (!broker_host(p, n, host, hostlen) || !config_host_is_loopback(host)) {
            if (!host[0])
                snprintf(host, hostlen, "%.*s", (int)(n < 64 ? n : 64), p);
            return true;
        }
        p += n;
        if (*p == ',')
            p++;
    }
    return false;
}

/* security_read - the variables into s, checked against each other */
static int security_read(struct kafka_security *s, const char *brokers, char *errbuf, size_t errlen)
{
    static const char *const protocols[] = {"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL", NULL};
    static const char *const mechanisms[] = {"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", NULL};
    int proto, mech = 0;
    char *mech_set = NULL, eb[128];
    int rc = -1;

    if (config_get_enum("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT", protocols, &proto, errbuf, errlen) <
            0 ||
        config_get_secret("KAFKA_SASL_PASSWORD", &s->password, errbuf, errlen) < 0 ||
        config_get_str("KAFKA_SASL_USERNAME", NULL, &s->username, errbuf, errlen) < 0 ||
        config_get_str("KAFKA_SASL_MECHANISM", NULL, &mech_set, errbuf, errlen) < 0 ||
        config_get_str("KAFKA_CA_FILE", NULL, &s->ca_file, errbuf, errlen) < 0)
        goto out;
    s->protocol = xstrdup(protocols[proto]);
    for (char *c = s->protocol; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    bool sasl = proto >= 2, tls = proto == 1 || proto == 3;
    if (!sasl) {
        const char *stray = mech_set      ? "KAFKA_SASL_MECHANISM"
                            : s->username ? "KAFKA_SASL_USERNAME"
                            : s->password ? "KAFKA_SASL_PASSWORD"
                                          : NULL;
        if (stray) {
            errbuf_set(errbuf, errlen,
                       "%s: is set but KAFKA_SECURITY_PROTOCOL is %s; SASL needs "
                       "SASL_PLAINTEXT or SASL_SSL",
                       stray, protocols[proto]);
            goto out;
        }
    } else {
        if (config_get_enum("KAFKA_SASL_MECHANISM", "PLAIN", mechanisms, &mech, errbuf, errlen) < 0)
            goto out;
        s->mechanism = xstrdup(mechanisms[mech]);
        const char *missing = !s->username   ? "KAFKA_SASL_USERNAME"
                              : !s->password ? "KAFKA_SASL_PASSWORD"
                                             : NULL;
        if (missing) {
            errbuf_set(errbuf, errlen, "%s: is required when KAFKA_SECURITY_PROTOCOL is %s",
                       missing, protocols[proto]);
            goto out;
        }
    }
    if (s->ca_file && !tls) {
        errbuf_set(errbuf, errlen,
                   "KAFKA_CA_FILE: is set but KAFKA_SECURITY_PROTOCOL is %s; it needs SSL or "
                   "SASL_SSL",
                   protocols[proto]);
        goto out;
    }
    if (s->ca_file && access(s->ca_file, R_OK) < 0) {
        errbuf_set(errbuf, errlen, "KAFKA_CA_FILE: cannot read '%s': %s", s->ca_file,
                   strerror_r(errno, eb, sizeof eb));
        goto out;
    }
    char host[256];
    if (sasl && !tls && mech == 0 && remote_broker(brokers, host, sizeof host)) {
        errbuf_set(errbuf, errlen,
                   "KAFKA_SECURITY_PROTOCOL: SASL_PLAINTEXT with mechanism PLAIN would send "
                   "KAFKA_SASL_PASSWORD in clear text to %s, which is not a loopback host; use "
                   "SASL_SSL",
                   host);
        goto out;
    }
    rc = 0;
out:
    free(mech_set);
    return rc;
}

int kafka_security_load(struct kafka_security *s, const char *brokers, char *errbuf, size_t errlen)
{
    static const struct {
        const char *key, *var;
        size_t off;
        bool secret;
    } map[] = {
        {"security.protocol", "KAFKA_SECURITY_PROTOCOL", offsetof(struct kafka_security, protocol),
         false},
        {"sasl.mechanisms", "KAFKA_SASL_MECHANISM", offsetof(struct kafka_security, mechanism),
         false},
        {"sasl.username", "KAFKA_SASL_USERNAME", offsetof(struct kafka_security, username), false},
        {"sasl.password", "KAFKA_SASL_PASSWORD", offsetof(struct kafka_security, password), true},
        {"ssl.ca.location", "KAFKA_CA_FILE", offsetof(struct kafka_security, ca_file), false},
    };
    memset(s, 0, sizeof *s);
    if (security_read(s, brokers ? brokers : "", errbuf, errlen) < 0)
        return -1;
    rd_kafka_conf_t *probe = rd_kafka_conf_new();
    size_t k = 0;
    int rc = 0;
    for (size_t i = 0; i < sizeof map / sizeof map[0] && rc == 0; i++) {
        const char *v = *(char *const *)((const char *)s + map[i].off);
        char err[256];
        if (!v)
            continue;
        if (rd_kafka_conf_set(probe, map[i].key, v, err, sizeof err) != RD_KAFKA_CONF_OK) {
            /* librdkafka's message may quote the value: never for the password */
            errbuf_set(errbuf, errlen, "%s: librdkafka refuses %s%s%s", map[i].var, map[i].key,
                       map[i].secret ? "" : ": ", map[i].secret ? "" : err);
            rc = -1;
        }
        s->conf[k++] = map[i].key;
        s->conf[k++] = v;
    }
    rd_kafka_conf_destroy(probe);
    return rc;
}

void kafka_security_cleanup(struct kafka_security *s)
{
    if (!s)
        return;
    if (s->password)
        explicit_bzero(s->password, strlen(s->password));
    free(s->protocol);
    free(s->mechanism);
    free(s->username);
    free(s->password);
    free(s->ca_file);
    memset(s, 0, sizeof *s);
}

/* topic_ok - Kafka's legal topic names: [A-Za-z0-9._-]{1,249} */
static int topic_ok(const char *s, size_t n)
{
    if (n == 0 || n > 249)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!isalnum(c) && c != '.' && c != '_' && c != '-')
            return 0;
    }
    return 1;
}

/* copy_trimmed - s[0..n) without surrounding blanks into out; 0 or -1 */
static int copy_trimmed(const char *s, size_t n, char *out, size_t len)
{
    while (n > 0 && isspace((unsigned char)*s)) {
        s++;
        n--;
    }
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        n--;
    if (!topic_ok(s, n) || n >= len)
        return -1;
    memcpy(out, s, n);
    out[n] = '\0';
    return 0;
}

int kafka_topics_parse(const char *s, char *email_topic, size_t len1, char *user_topic, size_t len2)
{
    if (!s || !*s) {
        if (strlcpy_ok(email_topic, KAFKA_TOPIC_EMAIL_DEFAULT, len1) != 0 ||
            strlcpy_ok(user_topic, KAFKA_TOPIC_USER_DEFAULT, len2) != 0)
            return -1;
        return 0;
    }
    const char *comma = strchr(s, ',');
    if (!comma || strchr(comma + 1, ','))
        return -1;
    if (copy_trimmed(s, (size_t)(comma - s), email_topic, len1) != 0 ||
        copy_trimmed(comma + 1, strlen(comma + 1), user_topic, len2) != 0)
        return -1;
    return 0;
}

/* --- bounded destroy ---------------------------------------------------- */

/* Shared by the caller and the destroying thread; the last one to let go
 * (refs reaching 0, under mu) frees it. */
struct destroy_job {
    rd_kafka_t *rk;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    int refs;
};

static void job_release(struct destroy_job *j)
{
    pthread_mutex_lock(&j->mu);
    bool last = --j->refs == 0;
    pthread_mutex_unlock(&j->mu);
    if (last) {
        pthread_cond_destroy(&j->cv);
        pthread_mutex_destroy(&j->mu);
        free(j);
    }
}

static void *destroy_main(void *arg)
{
    struct destroy_job *j = arg;
    rd_kafka_destroy(j->rk);
    pthread_mutex_lock(&j->mu);
    j->done = true;
    pthread_cond_signal(&j->cv);
    pthread_mutex_unlock(&j->mu);
    job_release(j);
    return NULL;
}

int kafka_destroy_bounded(rd_kafka_t *rk, int timeout_ms)
{
    if (!rk)
        return 1;
    char name[128]; /* rk may be gone by the time the warning is logged */
    snprintf(name, sizeof name, "%s", rd_kafka_name(rk));
    struct destroy_job *j = xcalloc(1, sizeof *j);
    j->rk = rk;
    j->refs = 2;
    pthread_mutex_init(&j->mu, NULL);
    time_cond_init_mono(&j->cv);

    pthread_t t;
    if (pthread_create(&t, NULL, destroy_main, j) != 0) {
        rd_kafka_destroy(rk); /* no thread: an unbounded destroy */
        j->refs = 0;
        pthread_cond_destroy(&j->cv);
        pthread_mutex_destroy(&j->mu);
        free(j);
        return 1;
    }
    pthread_detach(t);

    struct timespec until = time_mono_deadline(timeout_ms);
    pthread_mutex_lock(&j->mu);
    int rc = 0;
    while (!j->done && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&j->cv, &j->mu, &until);
    bool done = j->done;
    pthread_mutex_unlock(&j->mu);
    if (!done)
        log_warn("kafka: client %s not destroyed after %d ms (librdkafka hang after a broker "
                 "outage, confluentinc/librdkafka#4674); shutting down without it",
                 name, timeout_ms);
    job_release(j);
    return done ? 1 : 0;
}

rd_kafka_t *kafka_producer_new(rd_kafka_conf_t *conf, int timeout_ms,
                               void (*dr_cb)(rd_kafka_t *, const rd_kafka_message_t *, void *),
                               char *errbuf, size_t errlen)
{
    char timeout[16], err[512];
    snprintf(timeout, sizeof timeout, "%d", timeout_ms);
    static const char *const base[] = {"enable.idempotence", "true", "acks", "all", NULL};
    for (size_t i = 0; base[i]; i += 2)
        rd_kafka_conf_set(conf, base[i], base[i + 1], err, sizeof err);
    rd_kafka_conf_set(conf, "message.timeout.ms", timeout, err, sizeof err);
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        errbuf_set(errbuf, errlen, "kafka producer: %s", err);
    }
    return rk;
}
