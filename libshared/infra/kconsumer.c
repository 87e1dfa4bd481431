/* kconsumer.c - at-least-once Kafka consumer group member. See kconsumer.h.
 *
 * Two threads work as a pipeline. The consumer thread polls, collects a
 * batch (max_batch messages or batch_wait_ms after the first one),
 * prepares it (the caller's prepare, e.g. parsing) and hands it over in a
 * one-batch slot; then it polls and prepares the next batch while the
 * writer thread applies the previous one (the caller's apply or handler,
 * e.g. one store transaction), and while that waits in the slot it
 * collects the messages of the one after (up to max_batch, unprepared). After a successful apply
 * the writer stores the batch's offsets (highest offset + 1 per partition) for librdkafka's
 * auto-commit. Batches are applied one at a time, in the order they were
 * polled, so a stored offset never passes an unapplied message.
 *
 * A failed apply is retried on the writer after a growing backoff; while
 * it fails the consumer thread pauses every assigned partition (nothing
 * new is fetched, polls still serve rebalances) and keeps what still
 * arrives for later.
 *
 * Rebalances (eager or cooperative) and stop: the consumer thread asks the
 * writer to hold after its current attempt (quiesce), takes back every
 * unapplied batch (its work is released; it is prepared again when handed
 * over), drops the messages of revoked partitions (their next owner reads
 * them again from the commit) and commits the stored offsets
 * synchronously before the partitions are given up. Lag and broker state
 * come from librdkafka's statistics, once per second.
 *
 * Threads: the consumer thread runs prepare and every librdkafka callback;
 * the writer thread runs apply/handler and stores offsets; the hand-over
 * state is under `qmu` (with `qcond`), stats under `mu`.
 * kconsumer_stop() joins both threads, commits, then closes (callbacks then
 * keep off the handle) and destroys with a bound (kafka_destroy_bounded)
 * on the caller's thread.
 */
#include "kconsumer.h"
#include "errbuf.h"
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
#define POLL_MS 100    /* bounds the reaction to kconsumer_stop() */
#define BUSY_POLL_MS 5 /* bounds the reaction to a free slot while collecting */
#define DESTROY_TIMEOUT_MS 5000

/* a batch of messages, in poll order, with what prepare made of it */
struct kbatch {
    rd_kafka_message_t **m;
    struct kmsg *k; /* the messages as handed to prepare/handler */
    size_t n, cap;
    void *work; /* prepare's result, while prepared */
    bool prepared;
};

struct kconsumer {
    rd_kafka_t *rk;
    pthread_t thread, writer;
    atomic_bool stop;
    bool closing; /* set by kconsumer_stop() after the join: callbacks keep off the handle */
    kconsumer_handler_fn handler;
    kconsumer_prepare_fn prepare;
    kconsumer_apply_fn apply;
    kconsumer_release_fn release;
    void *arg;
    int max_batch, batch_wait_ms;

    pthread_mutex_t mu; /* guards stats */
    struct kconsumer_stats stats;

    /* hand-over between the two threads, under qmu */
    pthread_mutex_t qmu;
    pthread_cond_t qcond;
    struct kbatch *ready;    /* prepared, waiting for the writer */
    struct kbatch *inflight; /* the writer's: being applied or waiting for a retry */
    bool applying;           /* the writer is inside apply/handler */
    bool failing;            /* inflight failed; retried at retry_at_ms */
    bool hold;               /* the consumer thread has taken the batches back */
    bool writer_stop;
    int64_t retry_at_ms;
    int backoff_ms, attempts;

    /* consumer thread only (and the closing caller after the join) */
    struct kbatch acc;   /* being collected */
    int64_t deadline_ms; /* hand acc over at this time */
    bool paused;
    rd_kafka_topic_partition_list_t *assignment;
};

static void set_stat_up(struct kconsumer *c, bool up)
{
    pthread_mutex_lock(&c->mu);
    c->stats.kafka_up = up;
    pthread_mutex_unlock(&c->mu);
}

/* --- batches ------------------------------------------------------------ */

static void kbatch_push(struct kbatch *b, rd_kafka_message_t *m)
{
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 64;
        b->m = xreallocarray(b->m, b->cap, sizeof b->m[0]);
        b->k = xreallocarray(b->k, b->cap, sizeof b->k[0]);
    }
    b->m[b->n++] = m;
}

/* kbatch_unprepare - release what prepare made of b */
static void kbatch_unprepare(struct kconsumer *c, struct kbatch *b)
{
    if (b->prepared && c->release)
        c->release(c->arg, b->work);
    b->work = NULL;
    b->prepared = false;
}

/* kbatch_clear - release the work and destroy the messages; b stays usable */
static void kbatch_clear(struct kconsumer *c, struct kbatch *b)
{
    kbatch_unprepare(c, b);
    for (size_t i = 0; i < b->n; i++)
        rd_kafka_message_destroy(b->m[i]);
    b->n = 0;
}

static void kbatch_free(struct kconsumer *c, struct kbatch *b)
{
    if (!b)
        return;
    kbatch_clear(c, b);
    free(b->m);
    free(b->k);
    free(b);
}

/* kbatch_take_front - move src's messages in front of dst's (src is older);
 * both lose their work; src is freed */
static void kbatch_take_front(struct kconsumer *c, struct kbatch *dst, struct kbatch *src)
{
    if (!src)
        return;
    kbatch_unprepare(c, dst);
    kbatch_unprepare(c, src);
    size_t n = dst->n;
    for (size_t i = 0; i < src->n; i++)
        kbatch_push(dst, src->m[i]); /* room for both */
    memmove(dst->m + src->n, dst->m, n * sizeof dst->m[0]);
    memcpy(dst->m, src->m, src->n * sizeof dst->m[0]);
    src->n = 0;
    kbatch_free(c, src);
}

/* kbatch_prepare - the kmsg view of b's messages, then the caller's prepare */
static void kbatch_prepare(struct kconsumer *c, struct kbatch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        const rd_kafka_message_t *m = b->m[i];
        b->k[i] = (struct kmsg){
            .topic = rd_kafka_topic_name(m->rkt),
            .partition = m->partition,
            .offset = m->offset,
            .key = m->key,
            .key_len = m->key_len,
            .value = m->payload,
            .value_len = m->len,
        };
    }
    b->work = c->prepare ? c->prepare(c->arg, b->k, b->n) : NULL;
    b->prepared = true;
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
static void store_offsets(struct kconsumer *c, const struct kbatch *b)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(8);
    for (size_t i = 0; i < b->n; i++) {
        const rd_kafka_message_t *m = b->m[i];
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

/* --- writer thread ------------------------------------------------------ */

/* cond_wait_until - wait on qcond (qmu held) until woken or the
 * CLOCK_MONOTONIC time until_mono_ms */
static void cond_wait_until(struct kconsumer *c, int64_t until_mono_ms)
{
    int64_t ms = until_mono_ms - time_mono_ms();
    struct timespec dl = time_mono_deadline(ms > 0 ? ms : 0);
    pthread_cond_timedwait(&c->qcond, &c->qmu, &dl);
}

/* writer_main - apply the handed-over batches one at a time, in order;
 * store each one's offsets once applied; retry a failed one after a
 * growing backoff (the consumer thread pauses the partitions meanwhile) */
static void *writer_main(void *arg)
{
    struct kconsumer *c = arg;
    pthread_setname_np(pthread_self(), "kc-apply"); /* top -H, perf, gdb */
    pthread_mutex_lock(&c->qmu);
    while (!c->writer_stop) {
        if (c->hold || (!c->inflight && !c->ready)) {
            pthread_cond_wait(&c->qcond, &c->qmu);
            continue;
        }
        if (!c->inflight) {
            c->inflight = c->ready; /* the consumer thread may prepare the next one */
            c->ready = NULL;
            pthread_cond_broadcast(&c->qcond);
        }
        if (c->failing && time_mono_ms() < c->retry_at_ms) {
            cond_wait_until(c, c->retry_at_ms);
            continue;
        }
        struct kbatch *b = c->inflight;
        c->applying = true;
        pthread_mutex_unlock(&c->qmu);

        int rc = c->apply ? c->apply(c->arg, b->work) : c->handler(c->arg, b->k, b->n);
        if (rc == 0)
            store_offsets(c, b);

        pthread_mutex_lock(&c->qmu);
        c->applying = false;
        if (rc == 0) {
            if (c->failing)
                log_info("kconsumer: batch handled after %d attempts", c->attempts + 1);
            c->failing = false;
            c->attempts = 0;
            c->backoff_ms = 0;
            c->inflight = NULL;
            pthread_mutex_lock(&c->mu);
            c->stats.consumed += b->n;
            c->stats.batches++;
            pthread_mutex_unlock(&c->mu);
            pthread_cond_broadcast(&c->qcond);
            pthread_mutex_unlock(&c->qmu);
            kbatch_free(c, b);
            pthread_mutex_lock(&c->qmu);
            continue;
        }
        c->attempts++;
        c->backoff_ms = c->backoff_ms == 0                   ? BACKOFF_MIN_MS
                        : c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS
                                                             : c->backoff_ms * 2;
        c->failing = true;
        c->retry_at_ms = time_mono_ms() + c->backoff_ms;
        log_warn("kconsumer: handler failed for %zu messages (attempt %d); retrying in %d ms", b->n,
                 c->attempts, c->backoff_ms);
        pthread_cond_broadcast(&c->qcond);
    }
    pthread_mutex_unlock(&c->qmu);
    return NULL;
}

/* --- consumer thread ---------------------------------------------------- */

/* quiesce - take every unapplied batch back into acc (oldest first), after
 * the writer's current attempt; the writer then holds until unquiesce */
static void quiesce(struct kconsumer *c)
{
    pthread_mutex_lock(&c->qmu);
    c->hold = true;
    while (c->applying)
        pthread_cond_wait(&c->qcond, &c->qmu);
    struct kbatch *ready = c->ready, *inflight = c->inflight;
    c->ready = c->inflight = NULL;
    c->failing = false; /* a failed batch is applied again when handed over */
    pthread_mutex_unlock(&c->qmu);
    kbatch_take_front(c, &c->acc, ready);
    kbatch_take_front(c, &c->acc, inflight);
}

static void unquiesce(struct kconsumer *c)
{
    pthread_mutex_lock(&c->qmu);
    c->hold = false;
    pthread_cond_broadcast(&c->qcond);
    pthread_mutex_unlock(&c->qmu);
}

/* drop_revoked - forget unapplied messages of partitions we lost (after
 * quiesce, all of them are in acc) */
static void drop_revoked(struct kconsumer *c, const rd_kafka_topic_partition_list_t *parts)
{
    struct kbatch *b = &c->acc;
    size_t keep = 0, dropped = 0;
    kbatch_unprepare(c, b);
    for (size_t i = 0; i < b->n; i++) {
        rd_kafka_message_t *m = b->m[i];
        if (rd_kafka_topic_partition_list_find(parts, rd_kafka_topic_name(m->rkt), m->partition)) {
            rd_kafka_message_destroy(m);
            dropped++;
        } else {
            b->m[keep++] = m;
        }
    }
    b->n = keep;
    if (b->n > 0)
        c->deadline_ms = time_mono_ms(); /* hand what is left over at once */
    if (dropped)
        log_info("kconsumer: dropped %zu unhandled messages of revoked partitions", dropped);
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
    /* NULL while the protocol is unknown: e.g. in the close of a member the
     * group has just dropped in a rebalance (test_kafka, UBSan) */
    const char *proto = rd_kafka_rebalance_protocol(rk);
    bool coop = proto && strcmp(proto, "COOPERATIVE") == 0;
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
        if (c->paused) /* a failed batch waits for its retry: fetch nothing new yet */
            rd_kafka_pause_partitions(rk, parts);
        refresh_assignment(c);
        set_stat_up(c, true);
        return;
    }
    if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        log_info("kconsumer: revoked %d partitions%s", parts->cnt,
                 rd_kafka_assignment_lost(rk) ? " (lost)" : "");
        quiesce(c); /* the writer has stored what it applied */
        drop_revoked(c, parts);
        if (!c->closing && !rd_kafka_assignment_lost(rk)) /* closing: committed already */
            commit_sync(c, "revoke");
    } else {
        log_warn("kconsumer: rebalance error: %s", rd_kafka_err2str(err));
        quiesce(c);
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
    unquiesce(c); /* what is left is handed over again (and the partitions resumed) */
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
    if (c->acc.n == 0)
        c->deadline_ms = time_mono_ms() + c->batch_wait_ms;
    kbatch_push(&c->acc, m);
}

/* hand_over - prepare the collected batch and put it in the writer's
 * (empty) slot */
static void hand_over(struct kconsumer *c)
{
    struct kbatch *b = xmalloc(sizeof *b);
    *b = c->acc;
    c->acc = (struct kbatch){0};
    kbatch_prepare(c, b); /* while the writer applies the previous batch */
    pthread_mutex_lock(&c->qmu);
    c->ready = b;
    pthread_cond_broadcast(&c->qcond);
    pthread_mutex_unlock(&c->qmu);
}

static void *consumer_main(void *arg)
{
    struct kconsumer *c = arg;
    pthread_setname_np(pthread_self(), "kc-poll");
    while (!atomic_load(&c->stop)) {
        pthread_mutex_lock(&c->qmu);
        bool failing = c->failing, busy = c->ready != NULL;
        if (busy && !failing) {
            /* the slot is full: collect the next batch's messages while the
             * writer works (it is prepared once the slot is free, so at
             * most two batches are parsed at a time), then wait */
            if ((int)c->acc.n < c->max_batch) {
                pthread_mutex_unlock(&c->qmu);
                poll_one(c, BUSY_POLL_MS);
            } else {
                cond_wait_until(c, time_mono_ms() + POLL_MS);
                pthread_mutex_unlock(&c->qmu);
            }
            continue;
        }
        pthread_mutex_unlock(&c->qmu);
        pause_all(c, failing); /* fetch nothing new while a batch waits for its retry */
        int64_t now = time_mono_ms();
        int timeout = POLL_MS;
        if (c->acc.n > 0 && !busy)
            timeout = c->deadline_ms > now ? (int)(c->deadline_ms - now) : 0;
        if ((int)c->acc.n < c->max_batch) /* else: collected while the slot was full */
            poll_one(c, timeout < POLL_MS ? timeout : POLL_MS);
        if (!busy && c->acc.n > 0 &&
            ((int)c->acc.n >= c->max_batch || time_mono_ms() >= c->deadline_ms))
            hand_over(c);
    }
    quiesce(c);
    if (c->acc.n > 0)
        log_info("kconsumer: stopping with %zu unhandled messages (they will be read again)",
                 c->acc.n);
    kbatch_clear(c, &c->acc);
    pthread_mutex_lock(&c->qmu);
    c->writer_stop = true;
    pthread_cond_broadcast(&c->qcond);
    pthread_mutex_unlock(&c->qmu);
    pthread_join(c->writer, NULL);
    return NULL;
}

/* --- lifecycle ---------------------------------------------------------- */

static void consumer_free(struct kconsumer *c)
{
    /* the list came from rd_kafka_assignment(): its elements hold
     * references to the handle's partitions, and rd_kafka_destroy waits
     * for every partition to be released, so the list goes first */
    if (c->assignment)
        rd_kafka_topic_partition_list_destroy(c->assignment);
    c->assignment = NULL;
    /* a handle that did not go away may still call back with c: keep c */
    if (c->rk && !kafka_destroy_bounded(c->rk, DESTROY_TIMEOUT_MS))
        return;
    kbatch_clear(c, &c->acc);
    free(c->acc.m);
    free(c->acc.k);
    kbatch_free(c, c->ready);
    kbatch_free(c, c->inflight);
    pthread_mutex_destroy(&c->mu);
    pthread_mutex_destroy(&c->qmu);
    pthread_cond_destroy(&c->qcond);
    free(c);
}

struct kconsumer *kconsumer_start(const struct kconsumer_config *cfg, char *errbuf, size_t errlen)
{
    if (!cfg->group_id || !*cfg->group_id || !cfg->topics || !cfg->topics[0] ||
        !(cfg->handler || cfg->apply)) {
        errbuf_set(errbuf, errlen,
                   "kconsumer: group_id, topics and handler (or apply) are required");
        return NULL;
    }
    struct kconsumer *c = xcalloc(1, sizeof *c);
    pthread_mutex_init(&c->mu, NULL);
    pthread_mutex_init(&c->qmu, NULL);
    time_cond_init_mono(&c->qcond);
    c->handler = cfg->handler;
    c->prepare = cfg->prepare;
    c->apply = cfg->apply;
    c->release = cfg->release;
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
        /* a fetch the broker holds for lack of data (up to this long)
         * delays the partitions assigned meanwhile, at every start and
         * rebalance: librdkafka's default (500) is too long for that */
        "fetch.wait.max.ms",
        "100",
        NULL,
    };
    rd_kafka_conf_t *conf = kafka_conf_new(cfg->brokers, cfg->client_id, base, errbuf, errlen);
    if (!conf)
        goto fail;
    for (size_t i = 0; cfg->extra && cfg->extra[i]; i += 2) {
        char err[512];
        if (!cfg->extra[i + 1] || rd_kafka_conf_set(conf, cfg->extra[i], cfg->extra[i + 1], err,
                                                    sizeof err) != RD_KAFKA_CONF_OK) {
            errbuf_set(errbuf, errlen, "kafka setting %s: %s", cfg->extra[i],
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
        errbuf_set(errbuf, errlen, "kafka consumer: %s", err);
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
        errbuf_set(errbuf, errlen, "kafka subscribe: %s", rd_kafka_err2str(serr));
        goto fail;
    }
    if (pthread_create(&c->writer, NULL, writer_main, c) != 0) {
        errbuf_set(errbuf, errlen, "kconsumer: cannot start the writer thread");
        rd_kafka_consumer_close(c->rk);
        goto fail;
    }
    if (pthread_create(&c->thread, NULL, consumer_main, c) != 0) {
        errbuf_set(errbuf, errlen, "kconsumer: cannot start the consumer thread");
        pthread_mutex_lock(&c->qmu);
        c->writer_stop = true;
        pthread_cond_broadcast(&c->qcond);
        pthread_mutex_unlock(&c->qmu);
        pthread_join(c->writer, NULL);
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
