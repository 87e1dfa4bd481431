/* cluster.c - the cluster thread (cluster.h). Its one job: every
 * CLUSTER_BEAT_MS, a heartbeat and what other instances changed. It
 * uses the store's cluster connection only. */
#include "cluster.h"
#include "log.h"
#include "sender.h"
#include "store_cluster.h"
#include "timeutil.h"
#include "xalloc.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#define CONTROLS_MAX 4096 /* emails with copies left read per beat */

struct cluster {
    struct store *st;
    struct sender *sender;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    int64_t supp_version;
    bool beat_failed;
    struct email_control *ctl; /* CONTROLS_MAX, read at every beat */
};

/* beat - one round; logs a failure once until it recovers */
static void beat(struct cluster *c)
{
    struct email_control *ctl = c->ctl;
    int live = 1;
    int64_t supp = 0, released = 0;
    size_t n = 0;
    int64_t now = time_now_ms();
    int rc = store_cluster_beat(c->st, now, &live, &supp);
    if (rc == 0) {
        sender_set_share(c->sender, live);
        if (supp != c->supp_version) {
            c->supp_version = supp;
            store_supp_moved(c->st);
        }
        rc = store_release_dead(c->st, now, &released);
    }
    if (rc == 0 && released > 0) {
        log_warn("cluster: released %lld copies leased by an instance not seen for %d s",
                 (long long)released, STORE_DEAD_MS / 1000);
        sender_notify(c->sender);
    }
    if (rc == 0 && (rc = store_email_controls(c->st, ctl, CONTROLS_MAX, &n)) == 0)
        sender_email_sync(c->sender, ctl, n);
    if (rc != 0 && !c->beat_failed)
        log_error("cluster: heartbeat failed (the database is unreachable?); retrying");
    else if (rc == 0 && c->beat_failed)
        log_info("cluster: heartbeat again (%d live instance%s)", live, live > 1 ? "s" : "");
    c->beat_failed = rc != 0;
}

static void *cluster_main(void *arg)
{
    struct cluster *c = arg;
    pthread_mutex_lock(&c->mu);
    while (!c->stop) {
        struct timespec dl = time_mono_deadline(CLUSTER_BEAT_MS);
        pthread_cond_timedwait(&c->cv, &c->mu, &dl);
        if (c->stop)
            break;
        pthread_mutex_unlock(&c->mu);
        beat(c);
        pthread_mutex_lock(&c->mu);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

struct cluster *cluster_start(struct store *st, struct sender *sender, bool pg)
{
    if (!pg)
        return NULL;
    struct cluster *c = xcalloc(1, sizeof *c);
    c->st = st;
    c->sender = sender;
    c->supp_version = -1;
    pthread_mutex_init(&c->mu, NULL);
    time_cond_init_mono(&c->cv);
    c->ctl = xcalloc(CONTROLS_MAX, sizeof *c->ctl);
    beat(c);
    if (pthread_create(&c->thread, NULL, cluster_main, c) != 0) {
        log_error("cluster: cannot start the thread");
        pthread_mutex_destroy(&c->mu);
        pthread_cond_destroy(&c->cv);
        free(c->ctl);
        free(c);
        return NULL;
    }
    log_info("cluster: instance %s joined", store_instance(st));
    return c;
}

void cluster_stop(struct cluster *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    c->stop = true;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->thread, NULL);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    free(c->ctl);
    free(c);
}
