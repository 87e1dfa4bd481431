/* placement.h - placement.summary events (DESIGN 9.3): after each
 * feedback-loop round, where the copies sent within FEEDBACK_WINDOW by each
 * sending identity landed at each recipient provider, published on the
 * feedback topic (key: the identity address) for the pairs whose counts
 * changed since the last summary published, and for every pair with copies
 * once after start-up. A pair whose copies all left the window gets one last
 * summary of zeros. Copies without an identity are not summarised.
 *
 * A summary round is one store read (hstore_placement_counts), the grouping
 * by provider (placement_calc.h), the changed pairs produced with an
 * idempotent producer and their delivery reports awaited (bounded): a pair
 * whose summary was not delivered counts as unpublished and is tried again
 * next round. It also sets the gauges health_provider_copies{provider,state}
 * (every copy sent within the window, with an identity or not).
 *
 * Threads: placement_start / placement_stop on the main thread;
 * placement_kick from the scheduler's workers (any thread); the thread
 * "placement" does the rest (the store read, the producer, the last
 * published pairs). Rounds are no closer than 1 s, nor than four times the
 * last round's length, so many loop workers cannot make it run back to
 * back; without kicks one runs every interval anyway.
 */
#ifndef PLACEMENT_H
#define PLACEMENT_H

#include <stddef.h>
#include <stdint.h>

struct hstore;
struct metrics;
struct providers;

struct placement_config {
    struct hstore *store;
    const struct providers *providers; /* NULL: every domain its own provider */
    struct metrics *metrics;
    const char *brokers;
    const char *const *kafka_extra; /* the security settings; may be NULL */
    const char *topic;              /* KAFKA_FEEDBACK_TOPIC */
    int64_t window_s;               /* FEEDBACK_WINDOW */
    int interval_s;                 /* CHECK_INTERVAL */
};

struct placement;

/* placement_start - the producer and the thread (a first round at once);
 * NULL with a message. cfg's pointers must outlive it. */
struct placement *placement_start(const struct placement_config *cfg, char *errbuf, size_t errlen);
/* placement_kick - a feedback-loop round ended: summarise soon (arg: the
 * struct placement; the scheduler's round_done) */
void placement_kick(void *arg);
/* placement_stop - end the round in progress, join, free; NULL no-op */
void placement_stop(struct placement *p);

#endif
