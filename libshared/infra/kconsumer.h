/* kconsumer.h - Kafka consumer group member for at-least-once processing.
 *
 * Messages are handed to the caller in batches (up to max_batch, or what
 * arrived within batch_wait_ms), as a two-stage pipeline: prepare (e.g.
 * parsing) runs on the consumer thread for batch k+1 while apply (e.g.
 * one SQLite transaction) runs on the writer thread for batch k. Apply
 * commits the caller's store and returns 0; only then are the batch's
 * offsets stored (enable.auto.offset.store=false) and committed by
 * librdkafka's auto-commit, and committed synchronously on stop. Batches
 * are applied one at a time in poll order. If apply returns non-zero the
 * same batch is applied again after a backoff: nothing is skipped. A
 * message the caller cannot understand must be accepted (and counted),
 * not failed, or it would block its partition.
 *
 * The simple form is one handler (called on the writer thread with the
 * messages); the pipelined form is prepare/apply/release.
 *
 * While a batch waits for its retry every assigned partition is paused, so
 * nothing past it is fetched. On a rebalance the writer finishes its
 * current attempt, the stored offsets are committed synchronously before
 * partitions are given up, and unapplied messages of revoked partitions are
 * dropped (their next owner reads them from the commit); the others are
 * prepared again. kconsumer_stop drops unapplied batches the same way.
 * At most two prepared batches are held (one applied, one waiting) and the
 * messages of a third (collected, not prepared, while the second waits),
 * plus, while a batch waits for its retry, what had been fetched before
 * the pause.
 * Settings: enable.auto.commit=true (every 1 s), auto.offset.reset=earliest,
 * fetch.wait.max.ms=100, session.timeout.ms (heartbeat a third of it, at
 * most 3 s); lag and kafka_up come from librdkafka statistics once per
 * second.
 *
 * Threads: the consumer thread (prepare, librdkafka callbacks), the writer
 * thread (apply or handler, offsets); start/stop/stats from the owner.
 */
#ifndef KCONSUMER_H
#define KCONSUMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct kmsg {
    const char *topic;
    int32_t partition;
    int64_t offset;
    const char *key; /* may be NULL */
    size_t key_len;
    const char *value; /* may be NULL; not NUL-terminated */
    size_t value_len;
};

/* handler: msgs borrowed for the call; return 0 when committed */
typedef int (*kconsumer_handler_fn)(void *arg, const struct kmsg *msgs, size_t n);
/* prepare: the work of a batch (msgs stay valid until release); apply:
 * commit it, 0 on success (else it is applied again later); release: free
 * it (after success, or when the batch is dropped or prepared again) */
typedef void *(*kconsumer_prepare_fn)(void *arg, const struct kmsg *msgs, size_t n);
typedef int (*kconsumer_apply_fn)(void *arg, void *work);
typedef void (*kconsumer_release_fn)(void *arg, void *work);

struct kconsumer_config {
    const char *brokers;
    const char *group_id;
    const char *const *topics; /* NULL-terminated */
    const char *client_id;
    int max_batch;          /* default 500 */
    int batch_wait_ms;      /* default 50 */
    int session_timeout_ms; /* default 6000 */
    /* more librdkafka "key", "value" pairs, NULL-terminated; may be NULL */
    const char *const *extra;
    kconsumer_handler_fn handler; /* either this */
    kconsumer_prepare_fn prepare; /* or these (prepare and release optional) */
    kconsumer_apply_fn apply;
    kconsumer_release_fn release;
    void *arg;
};

struct kconsumer;

struct kconsumer *kconsumer_start(const struct kconsumer_config *cfg, char *errbuf, size_t errlen);
/* kconsumer_stop - stop both threads (the writer finishes its current
 * attempt), commit stored offsets, close the group membership, free. NULL
 * is a no-op. */
void kconsumer_stop(struct kconsumer *c);

struct kconsumer_stats {
    uint64_t consumed; /* messages handed to the handler successfully */
    uint64_t batches;
    int64_t lag;   /* sum over assigned partitions, -1 unknown */
    bool assigned; /* has a partition assignment */
    bool kafka_up;
};
void kconsumer_stats(struct kconsumer *c, struct kconsumer_stats *out);

#endif
