/* sender_int.h - private state of the sending pipeline, shared by
 * sender.c (lifecycle, email runs, dispatcher), worker.c and writer.c. */
#ifndef SENDER_INT_H
#define SENDER_INT_H

#include "sender.h"
#include "smtp/smtp_breaker.h"
#include "smtp/smtp_clients.h"
#include "store.h"

#include <pthread.h>
#include <stdatomic.h>

struct bqueue;
struct ratelimit;
struct metric;

/* email_run - an email being sent: its content and run-time controls.
 * Refcounted: the registry holds one reference, every queued claim and outcome one. */
struct email_run {
    struct email_info info;       /* with bodies */
    struct json_object *defaults; /* info.defaults parsed (NULL: none); read-only */
    int client;                   /* index into the clients */
    atomic_bool paused;
    struct ratelimit *rl;
    atomic_int refs;
    bool seen;        /* dispatcher only: still active in the last round */
    char reason[256]; /* why its identity holds it back now ("" none); s->lock */
};

/* queued_claim - one claimed copy on its way to a worker (owned by who popped it) */
struct queued_claim {
    struct email_run *c;
    struct claim claim;
    int group;                /* its provider's THROTTLES_FILE group (throttle_done), -1 none */
    int64_t identity_id, day; /* the identity day it was charged to; 0: none */
};

/* queued_outcome - one copy's outcome on its way to the writer */
struct queued_outcome {
    struct outcome r;
    struct email_run *c; /* reference, dropped by the writer */
};

struct client_rt {
    const struct smtp_client_cfg *cfg;
    struct ratelimit *rl;
    struct bqueue *q;
    pthread_t *threads;
    int nthreads;
    struct metric *m_sent, *m_failed, *m_retries, *m_dlq, *m_duration, *m_trips;
    struct smtp_breaker br; /* shared by the client's workers and the dispatcher */
    atomic_bool down;       /* the last attempt could not reach the server */
    char down_why[256];
    pthread_mutex_t why_lock;
};

/* a lane (recipient domain) as the dispatcher knows it */
struct lane_info {
    char *domain; /* NULL: no such lane (yet) */
    int group;    /* its THROTTLES_FILE group, -1 none */
};

struct sender {
    struct sender_config cfg;
    struct throttle *throttle;
    struct pacer *pacer; /* sending identities (dispatcher thread) */
    /* dispatcher thread only: lanes[1..nlanes-1] as stored; the lanes of
     * each throttled group (group_lanes[g], ngroup_lanes[g]) */
    struct lane_info *lanes;
    size_t nlanes;
    int64_t **group_lanes;
    size_t *ngroup_lanes;
    size_t rotate_lane; /* where the next interval claim starts */
    struct client_rt *clients;
    size_t nclients;
    struct bqueue *results;
    pthread_t dispatcher, writer;
    atomic_bool stopping;
    atomic_bool cancel_io; /* the shutdown grace is over: in-flight SMTP waits end */
    atomic_int workers_left;
    pthread_cond_t workers_done; /* with lock: a worker left */
    atomic_int active;           /* workers sending right now */
    pthread_mutex_t lock;        /* registry of email runs and the wake-up condvar */
    pthread_cond_t wake;
    bool kicked;
    struct email_run **runs;
    size_t nruns, capruns;
    struct metric *m_queue, *m_active;
    atomic_int share; /* instances sharing every TPM (sender_set_share) */
};

void email_run_unref(struct email_run *c);
void *worker_main(void *arg);
void *writer_main(void *arg);

struct worker_arg {
    struct sender *s;
    struct client_rt *cl;
};

#endif
