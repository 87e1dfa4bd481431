/* kconsumer.c - at-least-once Kafka consumer group member. See kconsumer.h.
 *
 * One thread polls, collects a batch (max_batch messages or batch_wait_ms
 * after the first one) and calls the handler. On success the batch's
 * offsets (highest offset + 1 per partition) are stored and librdkafka's
 * auto-commit sends them; on failure the batch is kept, every assigned
 * partition is paused (so nothing past the batch is fetched, while polls
 * still serve rebalances and heartbeats) and the same batch is handed
 * again after a growing backoff. Messages fetched before the pause that
 * still arrive are appended to the kept batch, so nothing is skipped.
 *
 * Rebalances (eager or cooperative): on revoke the stored offsets are
 * committed synchronously and unhandled messages of the revoked partitions
 * are dropped (their next owner reads them again from the commit). Lag and
 * broker state come from librdkafka's statistics, once per second.
 *
 * Threads: the consumer thread runs the handler and every librdkafka
 * callback; kconsumer_stats() from any thread (under `mu`); kconsumer_stop()
 * joins the thread, commits, then closes (callbacks then keep off the handle) and
 * destroys with a bound (kafka_destroy_bounded) on the caller's thread.
 */
#include "kconsumer.h"
#include "kafka.h"
#include "log.h"
#include "timeutil.h"
#include "xalloc.h"

#include <json-c/json.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BACKOFF_MIN_MS 500
#define BACKOFF_MAX_MS 30000
#define POLL_MS 100 /* bounds the reaction to kconsumer_stop() */
#define DESTROY_TIMEOUT_MS 5000

struct kconsumer {
    rd_kafka_t *rk;
    pthread_t thread;
    atomic_bool stop;
    bool closing; /* set by kconsumer_stop() after the join: callbacks keep off the handle */
    kconsumer_handler_fn handler;
    void *arg;
    int max_batch, batch_wait_ms;

    pthread_mutex_t mu; /* guards stats */
    struct kconsumer_stats stats;

    /* consumer thread only (and the closing caller after the join) */
    rd_kafka_message_t **batch;
    struct kmsg *kmsgs;
    size_t n, cap;
    int64_t deadline_ms; /* hand the batch over at this time */
    bool failing, paused;
    int64_t retry_at_ms;
    int backoff_ms, attempts;
    rd_kafka_topic_partition_list_t *assignment;
};

static void set_stat_up(struct kconsumer *c, bool up)
{
    pthread_mutex_lock(&c->mu);
    c->stats.kafka_up = up;
    pthread_mutex_unlock(&c->mu);
}

/* --- batch -------------------------------------------------------------- */

static void batch_push(struct kconsumer *c, rd_kafka_message_t *m)
{
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 64;
        c->batch = xreallocarray(c->batch, c->cap, sizeof c->batch[0]);
        c->kmsgs = xreallocarray(c->kmsgs, c->cap, sizeof c->kmsgs[0]);
    }
    if (c->n == 0)
        c->deadline_ms = time_mono_ms() + c->batch_wait_ms;
    c->batch[c->n++] = m;
}

static void batch_clear(struct kconsumer *c)
{
    for (size_t i = 0; i < c->n; i++)
        rd_kafka_message_destroy(c->batch[i]);
    c->n = 0;
}

/* pause_all - pause or resume every assigned partition */
static void pause_all(struct kconsumer *c, bool pause)
{
    if (c->paused == pause)
        return;
    c->paused = pause;
    if (!c->assignment || c->assignment->cnt == 0)
        return;
    rd_kafka_resp_err_t err = pause ? rd_kafka_pause_partitions(c->rk, c->assignment)
                                    : rd_kafka_resume_partitions(c->rk, c->assignment);
    if (err)
        log_warn("kconsumer: %s failed: %s", pause ? "pause" : "resume", rd_kafka_err2str(err));
}

/* store_offsets - highest offset + 1 per partition of the batch */
static void store_offsets(struct kconsumer *c)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(8);
    for (size_t i = 0; i < c->n; i++) {
        const rd_kafka_message_t *m = c->batch[i];
        const char *topic = rd_kafka_topic_name(m->rkt);
        rd_kafka_topic_partition_t *tp = rd_kafka_topic_partition_list_find(l, topic, m->partition);
        if (!tp)
            tp = rd_kafka_topic_partition_list_add(l, topic, m->partition);
        if (m->offset + 1 > tp->offset || tp->offset < 0)
            tp->offset = m->offset + 1;
    }
    rd_kafka_resp_err_t err = rd_kafka_offsets_store(c->rk, l);
    for (int i = 0; i < l->cnt; i++)
        if (l->elems[i].err)
            log_warn("kconsumer: offset not stored topic=%s partition=%d offset=%lld: %s",
                     l->elems[i].topic, (int)l->elems[i].partition, (long long)l->elems[i].offset,
                     rd_kafka_err2str(l->elems[i].err));
    if (err && err != RD_KAFKA_RESP_ERR__INVALID_ARG)
        log_debug("kconsumer: offsets_store: %s", rd_kafka_err2str(err));
    rd_kafka_topic_partition_list_destroy(l);
}

/* handle_batch - hand the batch over; on success store its offsets, on
 * failure keep it for a retry after a backoff */
static void handle_batch(struct kconsumer *c)
{
    for (size_t i = 0; i < c->n; i++) {
        const rd_kafka_message_t *m = c->batch[i];
        c->kmsgs[i] = (struct kmsg){
            .topic = rd_kafka_topic_name(m->rkt),
            .partition = m->partition,
            .offset = m->offset,
            .key = m->key,
            .key_len = m->key_len,
            .value = m->payload,
            .value_len = m->len,
        };
    }
    size_t n = c->n;
    if (c->handler(c->arg, c->kmsgs, n) == 0) {
        store_offsets(c);
        batch_clear(c);
        if (c->failing)
            log_info("kconsumer: batch handled after %d attempts", c->attempts + 1);
        c->failing = false;
        c->attempts = 0;
        c->backoff_ms = 0;
        pause_all(c, false);
        pthread_mutex_lock(&c->mu);
        c->stats.consumed += n;
        c->stats.batches++;
        pthread_mutex_unlock(&c->mu);
        return;
    }
    c->attempts++;
    c->backoff_ms = c->backoff_ms == 0                   ? BACKOFF_MIN_MS
                    : c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS
                                                         : c->backoff_ms * 2;
    c->failing = true;
    c->retry_at_ms = time_mono_ms() + c->backoff_ms;
    pause_all(c, true);
    log_warn("kconsumer: handler failed for %zu messages (attempt %d); retrying in %d ms", n,
             c->attempts, c->backoff_ms);
}

/* drop_revoked - forget unhandled messages of partitions we lost */
static void drop_revoked(struct kconsumer *c, const rd_kafka_topic_partition_list_t *parts)
{
    size_t keep = 0, dropped = 0;
    for (size_t i = 0; i < c->n; i++) {
        rd_kafka_message_t *m = c->batch[i];
        if (rd_kafka_topic_partition_list_find(parts, rd_kafka_topic_name(m->rkt), m->partition)) {
            rd_kafka_message_destroy(m);
            dropped++;
        } else {
            c->batch[keep++] = m;
        }
    }
    c->n = keep;
    if (dropped)
        log_info("kconsumer: dropped %zu unhandled messages of revoked partitions", dropped);
    if (c->n == 0 && c->failing) {
        c->failing = false;
        c->attempts = 0;
        c->backoff_ms = 0;
    }
}

/* --- librdkafka callbacks (consumer thread, or the closing caller) ------ */

static void refresh_assignment(struct kconsumer *c)
{
    rd_kafka_topic_partition_list_t *a = NULL;
    if (c->closing) {
        /* rd_kafka_assignment() from the rebalance callback of
         * rd_kafka_consumer_close() can wait forever on a terminating
         * handle (seen with librdkafka 2.0.2 after a broker outage) */
        pthread_mutex_lock(&c->mu);
        c->stats.assigned = false;
        c->stats.lag = -1;
        pthread_mutex_unlock(&c->mu);
        return;
    }
    if (rd_kafka_assignment(c->rk, &a) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return;
    if (c->assignment)
        rd_kafka_topic_partition_list_destroy(c->assignment);
    c->assignment = a;
    pthread_mutex_lock(&c->mu);
    c->stats.assigned = a->cnt > 0;
    if (a->cnt == 0)
        c->stats.lag = -1;
    pthread_mutex_unlock(&c->mu);
}

static void commit_sync(struct kconsumer *c, const char *why)
{
    rd_kafka_resp_err_t err = rd_kafka_commit(c->rk, NULL, 0);
    if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
        log_warn("kconsumer: commit on %s failed: %s", why, rd_kafka_err2str(err));
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    struct kconsumer *c = opaque;
    bool coop = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        log_info("kconsumer: assigned %d partitions", parts->cnt);
        if (coop) {
            rd_kafka_error_t *e = rd_kafka_incremental_assign(rk, parts);
            if (e) {
                log_warn("kconsumer: assign: %s", rd_kafka_error_string(e));
                rd_kafka_error_destroy(e);
            }
        } else {
            rd_kafka_assign(rk, parts);
        }
        if (c->paused) /* a kept batch is waiting: fetch nothing new yet */
            rd_kafka_pause_partitions(rk, parts);
        refresh_assignment(c);
        set_stat_up(c, true);
        return;
    }
    if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        log_info("kconsumer: revoked %d partitions%s", parts->cnt,
                 rd_kafka_assignment_lost(rk) ? " (lost)" : "");
        drop_revoked(c, parts);
        if (!c->closing && !rd_kafka_assignment_lost(rk)) /* closing: committed already */
            commit_sync(c, "revoke");
    } else {
        log_warn("kconsumer: rebalance error: %s", rd_kafka_err2str(err));
        drop_revoked(c, parts);
    }
    if (coop) {
        rd_kafka_error_t *e = rd_kafka_incremental_unassign(rk, parts);
        if (e) {
            log_warn("kconsumer: unassign: %s", rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
        }
    } else {
        rd_kafka_assign(rk, NULL);
    }
    refresh_assignment(c);
    if (c->n == 0 && c->paused) {
        c->paused = false; /* nothing kept: what remains may flow again */
        if (c->assignment && c->assignment->cnt > 0)
            rd_kafka_resume_partitions(rk, c->assignment);
    }
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)rk;
    struct kconsumer *c = opaque;
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
        log_warn("kconsumer: all Kafka brokers are down: %s", reason);
        set_stat_up(c, false);
    } else if (err == RD_KAFKA_RESP_ERR__FATAL) {
        log_error("kconsumer: fatal error: %s", reason);
    } else {
        log_debug("kconsumer: kafka error %s: %s", rd_kafka_err2name(err), reason);
    }
}

static int64_t jint(json_object *o, const char *key)
{
    json_object *v;
    if (!o || !json_object_object_get_ex(o, key, &v))
        return -1;
    return json_object_get_int64(v);
}

/* stats_cb - lag over the assignment (high watermark minus the position:
 * the application's, else the committed offset, else the log start) and
 * whether a broker connection is up */
static int stats_cb(rd_kafka_t *rk, char *json, size_t json_len, void *opaque)
{
    (void)rk;
    (void)json_len;
    struct kconsumer *c = opaque;
    json_object *root = json_tokener_parse(json);
    if (!root)
        return 0;
    bool up = false;
    json_object *brokers, *topics;
    if (json_object_object_get_ex(root, "brokers", &brokers)) {
        json_object_object_foreach(brokers, name, b)
        {
            (void)name;
            json_object *st;
            if (jint(b, "nodeid") >= 0 && json_object_object_get_ex(b, "state", &st) &&
                strcmp(json_object_get_string(st), "UP") == 0)
                up = true;
        }
    }
    int64_t lag = c->assignment && c->assignment->cnt > 0 ? 0 : -1;
    json_object_object_get_ex(root, "topics", &topics);
    for (int i = 0; lag >= 0 && i < c->assignment->cnt; i++) {
        const rd_kafka_topic_partition_t *tp = &c->assignment->elems[i];
        json_object *t = NULL, *parts = NULL, *part = NULL;
        char pid[16];
        snprintf(pid, sizeof pid, "%d", (int)tp->partition);
        if (!topics || !json_object_object_get_ex(topics, tp->topic, &t) ||
            !json_object_object_get_ex(t, "partitions", &parts) ||
            !json_object_object_get_ex(parts, pid, &part)) {
            lag = -1;
            break;
        }
        int64_t hi = jint(part, "hi_offset"), pos = jint(part, "app_offset");
        if (pos < 0)
            pos = jint(part, "committed_offset");
        if (pos < 0)
            pos = jint(part, "lo_offset");
        if (hi < 0 || pos < 0)
            lag = -1;
        else if (hi > pos)
            lag += hi - pos;
    }
    json_object_put(root);
    pthread_mutex_lock(&c->mu);
    c->stats.kafka_up = up;
    c->stats.lag = lag;
    pthread_mutex_unlock(&c->mu);
    return 0; /* librdkafka frees json */
}

/* --- thread ------------------------------------------------------------- */

static void poll_one(struct kconsumer *c, int timeout_ms)
{
    rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, timeout_ms);
    if (!m)
        return;
    if (m->err) {
        if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
            log_warn("kconsumer: %s%s%s", m->rkt ? rd_kafka_topic_name(m->rkt) : "",
                     m->rkt ? ": " : "", rd_kafka_message_errstr(m));
        rd_kafka_message_destroy(m);
        return;
    }
    batch_push(c, m);
}

static void *consumer_main(void *arg)
{
    struct kconsumer *c = arg;
    while (!atomic_load(&c->stop)) {
        int64_t now = time_mono_ms();
        if (c->failing) {
            if (now < c->retry_at_ms) {
                int64_t d = c->retry_at_ms - now;
                poll_one(c, d < POLL_MS ? (int)d : POLL_MS);
            } else {
                handle_batch(c);
            }
            continue;
        }
        int timeout = POLL_MS;
        if (c->n > 0)
            timeout = c->deadline_ms > now ? (int)(c->deadline_ms - now) : 0;
        poll_one(c, timeout);
        if (c->n > 0 && ((int)c->n >= c->max_batch || time_mono_ms() >= c->deadline_ms))
            handle_batch(c);
    }
    if (c->n > 0)
        log_info("kconsumer: stopping with %zu unhandled messages (they will be read again)", c->n);
    batch_clear(c);
    return NULL;
}

/* --- lifecycle ---------------------------------------------------------- */

static void consumer_free(struct kconsumer *c)
{
    /* the list came from rd_kafka_assignment(): its elements hold
     * references to the handle's partitions, and rd_kafka_destroy waits
     * for every partition to be released (it hung for the full bound on
     * every stop while the list was freed after it) */
    if (c->assignment)
        rd_kafka_topic_partition_list_destroy(c->assignment);
    c->assignment = NULL;
    /* a handle that did not go away may still call back with c: keep c */
    if (c->rk && !kafka_destroy_bounded(c->rk, DESTROY_TIMEOUT_MS))
        return;
    free(c->batch);
    free(c->kmsgs);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

struct kconsumer *kconsumer_start(const struct kconsumer_config *cfg, char *errbuf, size_t errlen)
{
    if (!cfg->group_id || !*cfg->group_id || !cfg->topics || !cfg->topics[0] || !cfg->handler) {
        snprintf(errbuf, errlen, "kconsumer: group_id, topics and handler are required");
        return NULL;
    }
    struct kconsumer *c = xcalloc(1, sizeof *c);
    pthread_mutex_init(&c->mu, NULL);
    c->handler = cfg->handler;
    c->arg = cfg->arg;
    c->max_batch = cfg->max_batch > 0 ? cfg->max_batch : 500;
    c->batch_wait_ms = cfg->batch_wait_ms > 0 ? cfg->batch_wait_ms : 50;
    c->stats.lag = -1;
    int session = cfg->session_timeout_ms > 0 ? cfg->session_timeout_ms : 6000;
    int heartbeat = session / 3 < 3000 ? session / 3 : 3000;
    char session_s[16], heartbeat_s[16];
    snprintf(session_s, sizeof session_s, "%d", session);
    snprintf(heartbeat_s, sizeof heartbeat_s, "%d", heartbeat > 100 ? heartbeat : 100);
    const char *const base[] = {
        "group.id",
        cfg->group_id,
        "enable.auto.offset.store",
        "false",
        "enable.auto.commit",
        "true",
        "auto.commit.interval.ms",
        "1000",
        "auto.offset.reset",
        "earliest",
        "session.timeout.ms",
        session_s,
        "heartbeat.interval.ms",
        heartbeat_s,
        "statistics.interval.ms",
        "1000",
        NULL,
    };
    rd_kafka_conf_t *conf = kafka_conf_new(cfg->brokers, cfg->client_id, base, errbuf, errlen);
    if (!conf)
        goto fail;
    for (size_t i = 0; cfg->extra && cfg->extra[i]; i += 2) {
        char err[512];
        if (!cfg->extra[i + 1] || rd_kafka_conf_set(conf, cfg->extra[i], cfg->extra[i + 1], err,
                                                    sizeof err) != RD_KAFKA_CONF_OK) {
            snprintf(errbuf, errlen, "kafka setting %s: %s", cfg->extra[i],
                     cfg->extra[i + 1] ? err : "no value");
            rd_kafka_conf_destroy(conf);
            goto fail;
        }
    }
    rd_kafka_conf_set_opaque(conf, c);
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    rd_kafka_conf_set_stats_cb(conf, stats_cb);
    char err[512];
    c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (!c->rk) {
        snprintf(errbuf, errlen, "kafka consumer: %s", err);
        rd_kafka_conf_destroy(conf);
        goto fail;
    }
    rd_kafka_poll_set_consumer(c->rk);
    rd_kafka_topic_partition_list_t *subs = rd_kafka_topic_partition_list_new(4);
    for (size_t i = 0; cfg->topics[i]; i++)
        rd_kafka_topic_partition_list_add(subs, cfg->topics[i], RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t serr = rd_kafka_subscribe(c->rk, subs);
    rd_kafka_topic_partition_list_destroy(subs);
    if (serr) {
        snprintf(errbuf, errlen, "kafka subscribe: %s", rd_kafka_err2str(serr));
        goto fail;
    }
    if (pthread_create(&c->thread, NULL, consumer_main, c) != 0) {
        snprintf(errbuf, errlen, "kconsumer: cannot start the consumer thread");
        rd_kafka_consumer_close(c->rk);
        goto fail;
    }
    log_info("kconsumer: started group=%s brokers=%s", cfg->group_id, cfg->brokers);
    return c;
fail:
    consumer_free(c);
    return NULL;
}

void kconsumer_stop(struct kconsumer *c)
{
    if (!c)
        return;
    atomic_store(&c->stop, true);
    pthread_join(c->thread, NULL);
    commit_sync(c, "stop");
    c->closing = true;
    rd_kafka_resp_err_t err = rd_kafka_consumer_close(c->rk); /* revokes */
    if (err)
        log_warn("kconsumer: close: %s", rd_kafka_err2str(err));
    struct kconsumer_stats st;
    kconsumer_stats(c, &st);
    log_info("kconsumer: stopped consumed=%llu batches=%llu", (unsigned long long)st.consumed,
             (unsigned long long)st.batches);
    consumer_free(c);
}

void kconsumer_stats(struct kconsumer *c, struct kconsumer_stats *out)
{
    if (!c) {
        memset(out, 0, sizeof *out);
        out->lag = -1;
        return;
    }
    pthread_mutex_lock(&c->mu);
    *out = c->stats;
    pthread_mutex_unlock(&c->mu);
}
