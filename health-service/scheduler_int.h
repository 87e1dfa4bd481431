/* scheduler_int.h - private to the scheduler's two files: scheduler.c
 * (the worker pool: queue, tasks, connection budget, start and stop) and
 * scheduler_round.c (the coordinator: each round's snapshot of the seed
 * mailboxes and its tasks). Nothing else includes it.
 *
 * Ownership: a round owns its snapshot reference (dropped when its last
 * task ends); a task owns its copies and its domain string; the scheduler
 * owns the domain instances (freed at stop) and the newest snapshot's
 * second reference. Locking as described in scheduler.c.
 */
#ifndef SCHEDULER_INT_H
#define SCHEDULER_INT_H

#include "scheduler.h"
#include "hstore.h"
#include "loop_slot.h"
#include "loops/loops.h"
#include "seeds.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* copies waiting in the queue at most: the coordinator waits beyond */
#define QUEUE_COPIES_MAX 400000

/* a domain's own loop instance */
struct dom_inst {
    char *domain;
    const struct loop_entry *entry;
    struct loop_slot slot; /* ops set; loop made by the first task */
};

/* the seed mailboxes as of a round, held by the round and (the newest)
 * by the scheduler for eviction; refs under the lock */
struct snap {
    struct seed **v; /* sorted by address */
    size_t n;
    const char **domains; /* their distinct domains, sorted */
    size_t ndomains;
    int refs;
};

/* one round: lives until its last task ends */
struct round {
    uint64_t no;
    int64_t started_ms; /* monotonic */
    int64_t read_ms;    /* when the copies being queued were read (monotonic) */
    struct snap *snap;
    size_t left; /* tasks not ended, +1 while the coordinator builds */
    size_t tasks, copies, unchecked, failed, skipped;
};

struct task {
    struct round *r;
    char *domain;
    struct loop_slot *slot;
    const struct loop_entry *entry; /* a domain task: to make its loop */
    struct seed *seed;              /* NULL: the domain's loop */
    struct hstore_copy *c;          /* owned (hstore_copies_free) */
    size_t n;
    struct task *next;
};

/* per loop type: health_checks_total etc. */
struct loop_metrics {
    const struct feedback_loop_ops *ops;
    struct metric *checks, *errors, *duration;
};

struct scheduler {
    struct scheduler_config cfg;
    pthread_t coordinator;
    bool coordinator_started;
    pthread_t *workers;
    size_t nworkers;
    atomic_bool stop;
    pthread_mutex_t mu;
    pthread_cond_t work_cv;   /* a task was queued, or stop */
    pthread_cond_t space_cv;  /* the queue shrank */
    pthread_cond_t closed_cv; /* a slot closed for the budget is free again */
    pthread_cond_t tick_cv;   /* stop (the coordinator's sleep) */
    /* queued tasks: [0] of slots whose last round ran, [1] of failing ones
     * (a dead or silent mailbox), which at most max_failing workers run at
     * once: the others always have workers */
    struct task *head[2], *tail[2];
    size_t queued_copies;
    int failing_running, max_failing;
    struct dom_inst **dom;
    size_t ndom;
    struct snap *live; /* the newest round's seeds (for eviction) */
    struct loop_metrics lm[4];
    size_t nlm;
    struct metric *m_commands, *m_unchecked, *m_connections, *m_skipped;
    atomic_uint_fast64_t commands_seen;
};

/* ---- scheduler.c ------------------------------------------------------ */

/* sched_enqueue - hand copies c[0..n) (taken) to slot as a task of r,
 * unless the slot is busy, or its last task ended after r->read_ms (its
 * results may postdate what the copies say they were: checked again, they
 * would be counted twice); then they are freed and wait for a later round.
 * Waits while the queue holds QUEUE_COPIES_MAX copies. */
void sched_enqueue(struct scheduler *s, struct round *r, const char *domain, struct loop_slot *slot,
                   const struct loop_entry *entry, struct seed *seed, struct hstore_copy *c,
                   size_t n);
/* sched_round_task_done - one task of r ended or was dropped; the last
 * ends the round (its log line, round_done, its snapshot) */
void sched_round_task_done(struct scheduler *s, struct round *r);
/* sched_publish_placement - health_placement_copies{domain,state} */
void sched_publish_placement(struct scheduler *s, const char *domain);

/* ---- scheduler_round.c ------------------------------------------------ */

/* sched_coordinator_main - the coordinator thread: a round every interval */
void *sched_coordinator_main(void *arg);
/* sched_snap_drop - one reference less on p (NULL: none); the last frees */
void sched_snap_drop(struct scheduler *s, struct snap *p);

#endif
