/* kconsumer.h - Kafka consumer group member for at-least-once processing.
 *
 * A thread polls the subscribed topics and hands messages to the caller's
 * handler in batches (up to max_batch, or what arrived within
 * batch_wait_ms). The handler commits its own store (one SQLite
 * transaction) and returns 0; only then are the batch's offsets stored
 * (enable.auto.offset.store=false) and committed by librdkafka's
 * auto-commit, and committed synchronously on stop. If the handler returns
 * non-zero the same batch is handed again after a backoff: nothing is
 * skipped. A message the handler cannot understand must be accepted (and
 * counted) by the handler, not failed, or it would block its partition.
 *
 * While a batch waits for its retry every assigned partition is paused, so
 * nothing past it is fetched. On a rebalance the stored offsets are
 * committed synchronously before partitions are given up, and unhandled
 * messages of revoked partitions are dropped (their next owner reads them
 * from the commit); kconsumer_stop drops an unhandled batch the same way.
 * Settings: enable.auto.commit=true (every 1 s), auto.offset.reset=earliest,
 * session.timeout.ms (heartbeat a third of it, at most 3 s); lag and
 * kafka_up come from librdkafka statistics once per second.
 *
 * Threads: the consumer thread calls the handler; start/stop/stats from
 * the owner.
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
    kconsumer_handler_fn handler;
    void *arg;
};

struct kconsumer;

struct kconsumer *kconsumer_start(const struct kconsumer_config *cfg, char *errbuf, size_t errlen);
/* kconsumer_stop - stop the thread, commit stored offsets, close the
 * group membership, free. NULL is a no-op. */
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
