/* kafka.c - common librdkafka configuration and topic list parsing.
 *
 * kafka_conf_new() gives every client the same base: bootstrap servers,
 * client id, and a log callback that routes librdkafka's log lines through
 * log.h (librdkafka calls it from its own threads; log.h is thread-safe).
 * Owns nothing after it returns.
 */
#include "kafka.h"
#include "log.h"
#include "timeutil.h"
#include "xalloc.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
        snprintf(errbuf, errlen, "kafka setting %s: %s", key, err);
        return -1;
    }
    return 0;
}

rd_kafka_conf_t *kafka_conf_new(const char *brokers, const char *client_id,
                                const char *const *extra, char *errbuf, size_t errlen)
{
    if (!brokers || !*brokers) {
        snprintf(errbuf, errlen, "no Kafka bootstrap servers given");
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
            snprintf(errbuf, errlen, "kafka setting %s has no value", extra[i]);
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
        rd_kafka_destroy(rk); /* no thread: unbounded, as before */
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
