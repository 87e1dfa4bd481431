/* scheduler.h - feedback-loop rounds on a worker pool.
 *
 * Every interval a coordinator thread takes each known domain's open
 * copies (sent within the tracking window, not bounced, not unchecked)
 * and splits them into tasks: the copies sent to a seed mailbox
 * (seeds.h) are checked in that mailbox, the others by the domain's loop
 * (loops.h); a copy with neither is marked unchecked at once
 * (FL_UNCHECKED: it leaves the pending count for good). A pool of workers
 * runs the tasks: the loop's check, the results into the store, the
 * mailbox's status. Loop instances (one per seed mailbox, one per domain
 * with a loop) are kept across rounds, so IMAP connections are reused;
 * open connections are bounded (max_connections: the least recently used
 * idle one is closed before another is opened). An instance still busy
 * from an earlier round is skipped, and the tasks of instances whose last
 * round failed (a dead or silent mailbox) wait behind the others and take
 * at most half the workers, so slow or dead mailboxes delay nothing
 * else.
 *
 * When the last task of a round ends, its worker logs the round (tasks,
 * copies, unchecked, failures, skipped, duration) and calls
 * round_done (the placement summaries, placement.h). A copy first found in
 * the inbox is observed once in health_time_to_inbox_seconds{provider}.
 * start/stop from the main thread; the seeds set may be reloaded while
 * the scheduler runs (a round holds a snapshot).
 */
#ifndef SCHEDULER_H
#define SCHEDULER_H

#include <stddef.h>
#include <stdint.h>

struct hstore;
struct loops_config;
struct metrics;
struct providers;
struct seeds;

struct scheduler_config {
    struct hstore *store;
    const struct loops_config *loops;
    struct seeds *seeds; /* or NULL: no seed mailboxes */
    struct metrics *metrics;
    int interval_s;
    int64_t window_ms;
    size_t max_per_round;                /* copies per domain per round (0: 200,000) */
    int workers;                         /* worker threads (0: 4) */
    int max_connections;                 /* open IMAP connections at most (0: 100) */
    const struct providers *providers;   /* the provider of a domain; NULL: the domain */
    void (*round_done)(void *round_arg); /* or NULL; on a worker's thread */
    void *round_arg;
};

struct scheduler;

/* scheduler_start - the coordinator and the workers; NULL with a message
 * when a thread cannot be started (those started are stopped) */
struct scheduler *scheduler_start(const struct scheduler_config *cfg, char *errbuf, size_t errlen);
/* scheduler_stop - finish the tasks in progress, drop the queued ones,
 * join, destroy the domain instances, free; NULL no-op */
void scheduler_stop(struct scheduler *s);

#endif
