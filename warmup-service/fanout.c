/* fanout.c - the fan-out thread (fanout.h). It runs store_fanout_step
 * until nothing is left to do, then sleeps until fanout_notify or a
 * short poll: the poll notices the sender draining an email below its
 * ahead bound and an email resumed, with no call from either. */
#include "fanout.h"
#include "errbuf.h"
#include "log.h"
#include "sender.h"
#include "store_fanout.h"
#include "xalloc.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

enum { POLL_MS = 100, ERROR_WAIT_MS = 1000 };

struct fanout {
    struct fanout_config cfg;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop, poked;
};

/* wait_ms - sleep up to ms unless poked or stopping; mu held */
static void wait_ms(struct fanout *f, int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    while (!f->stop && !f->poked)
        if (pthread_cond_timedwait(&f->cv, &f->mu, &ts) == ETIMEDOUT)
            break;
    f->poked = false;
}

static void *fanout_main(void *arg)
{
    struct fanout *f = arg;
    int64_t ahead = 2 * f->cfg.chunk;
    pthread_mutex_lock(&f->mu);
    while (!f->stop) {
        pthread_mutex_unlock(&f->mu);
        int64_t id, copies;
        int rc = store_fanout_step(f->cfg.store, f->cfg.chunk, ahead, &id, &copies);
        if (rc == 1 && copies > 0)
            sender_notify(f->cfg.sender);
        if (rc < 0)
            log_error("fanout: a chunk failed; retrying in %d ms", ERROR_WAIT_MS);
        pthread_mutex_lock(&f->mu);
        if (rc != 1)
            wait_ms(f, rc < 0 ? ERROR_WAIT_MS : POLL_MS);
    }
    pthread_mutex_unlock(&f->mu);
    return NULL;
}

struct fanout *fanout_start(const struct fanout_config *cfg, char *errbuf, size_t errlen)
{
    struct fanout *f = xcalloc(1, sizeof *f);
    f->cfg = *cfg;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&f->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&f->mu, NULL);
    if (pthread_create(&f->thread, NULL, fanout_main, f) != 0) {
        errbuf_set(errbuf, errlen, "cannot start the fan-out thread");
        pthread_cond_destroy(&f->cv);
        pthread_mutex_destroy(&f->mu);
        free(f);
        return NULL;
    }
    return f;
}

void fanout_notify(struct fanout *f)
{
    if (!f)
        return;
    pthread_mutex_lock(&f->mu);
    f->poked = true;
    pthread_cond_signal(&f->cv);
    pthread_mutex_unlock(&f->mu);
}

void fanout_stop(struct fanout *f)
{
    if (!f)
        return;
    pthread_mutex_lock(&f->mu);
    f->stop = true;
    pthread_cond_signal(&f->cv);
    pthread_mutex_unlock(&f->mu);
    pthread_join(f->thread, NULL);
    pthread_cond_destroy(&f->cv);
    pthread_mutex_destroy(&f->mu);
    free(f);
}
