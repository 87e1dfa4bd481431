/* scheduler.h - feedback-loop rounds.
 *
 * One worker thread per loops_config entry (a domain with its own loop, or
 * "default" for every other known domain). Every interval a worker takes,
 * for each of its domains, the copies sent within the tracking window and
 * not bounced (copies that arrived since the last round are simply part of
 * the next one), asks that domain's loop instance (kept across rounds, so
 * an IMAP connection is reused) and commits the results. A slow or dead
 * mailbox only delays its own worker. start/stop from the main thread.
 * A copy first found in the inbox is observed once in
 * health_time_to_inbox_seconds{provider}; after each pass over its domains
 * a worker calls round_done (the placement summaries, placement.h).
 */
#ifndef SCHEDULER_H
#define SCHEDULER_H

#include <stddef.h>
#include <stdint.h>

struct hstore;
struct loops_config;
struct metrics;
struct providers;

struct scheduler_config {
    struct hstore *store;
    const struct loops_config *loops;
    struct metrics *metrics;
    int interval_s;
    int64_t window_ms;
    size_t max_per_round;                /* copies per domain per round */
    const struct providers *providers;   /* the provider of a domain; NULL: the domain */
    void (*round_done)(void *round_arg); /* or NULL; on the worker's thread */
    void *round_arg;
};

struct scheduler;

/* scheduler_start - one worker per loops entry; NULL with a message when a
 * thread cannot be started (the workers already started are stopped) */
struct scheduler *scheduler_start(const struct scheduler_config *cfg, char *errbuf, size_t errlen);
/* scheduler_stop - finish the round in progress, join, free; NULL no-op */
void scheduler_stop(struct scheduler *s);

#endif
