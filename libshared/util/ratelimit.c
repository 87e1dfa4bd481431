/* ratelimit.c - token bucket behind a mutex.
 *
 * State: the rate in tokens per millisecond, the capacity, the tokens
 * accrued (a double: fractions of a token carry over, so no rate is lost to
 * rounding) and the time of the last refill. Time comes from the caller.
 * Any thread; one short critical section per call.
 */
#include "ratelimit.h"
#include "xalloc.h"

#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

/* absorbs floating-point error: 100 ms * 0.01 token/ms must be one token */
#define RL_EPS 1e-9
/* the fraction of the next token kept above the capacity: a caller that
 * comes back a little late (the dispatcher wakes on a timer) loses no rate,
 * yet one take never gets more than the capacity (floor stays below +1) */
#define RL_CARRY (1.0 - 1e-6)

struct ratelimit {
    pthread_mutex_t mu;
    double per_minute; /* 0: unlimited */
    double per_ms;
    double capacity;
    double tokens;
    int64_t last_ms;
    bool started; /* last_ms is set */
};

/* rl_configure - set the rate fields; caller holds the lock */
static void rl_configure(struct ratelimit *rl, double per_minute)
{
    if (!(per_minute > 0) || !isfinite(per_minute)) {
        rl->per_minute = 0;
        rl->per_ms = 0;
        rl->capacity = 0;
        return;
    }
    rl->per_minute = per_minute;
    rl->per_ms = per_minute / 60000.0;
    double per_second = per_minute / 60.0;
    rl->capacity = per_second / 10.0 > 1.0 ? floor(per_second / 10.0) : 1.0;
    if (rl->tokens > rl->capacity)
        rl->tokens = rl->capacity;
}

struct ratelimit *ratelimit_new(double per_minute)
{
    struct ratelimit *rl = xcalloc(1, sizeof *rl);
    if (pthread_mutex_init(&rl->mu, NULL) != 0)
        abort();
    rl_configure(rl, per_minute);
    rl->tokens = rl->capacity; /* start full: a new bucket may send at once */
    return rl;
}

void ratelimit_free(struct ratelimit *rl)
{
    if (!rl)
        return;
    pthread_mutex_destroy(&rl->mu);
    free(rl);
}

void ratelimit_set(struct ratelimit *rl, double per_minute)
{
    pthread_mutex_lock(&rl->mu);
    rl_configure(rl, per_minute);
    pthread_mutex_unlock(&rl->mu);
}

double ratelimit_get(const struct ratelimit *rl)
{
    /* the mutex is the only mutable part of a const bucket */
    pthread_mutex_t *mu = (pthread_mutex_t *)&rl->mu;
    pthread_mutex_lock(mu);
    double r = rl->per_minute;
    pthread_mutex_unlock(mu);
    return r;
}

int64_t ratelimit_take(struct ratelimit *rl, int n, int64_t now_ms, int *granted)
{
    int got = 0;
    int64_t wait = 0;
    if (n <= 0)
        goto out;
    pthread_mutex_lock(&rl->mu);
    /* refill; an older reading than the last one adds nothing */
    if (!rl->started) {
        rl->started = true;
        rl->last_ms = now_ms;
    } else if (now_ms > rl->last_ms) {
        if (rl->per_ms > 0) {
            rl->tokens += (double)(now_ms - rl->last_ms) * rl->per_ms;
            if (rl->tokens > rl->capacity + RL_CARRY)
                rl->tokens = rl->capacity + RL_CARRY;
        }
        rl->last_ms = now_ms;
    }
    if (rl->per_ms <= 0) {
        got = n;
    } else {
        double avail = floor(rl->tokens + RL_EPS);
        got = avail >= (double)n ? n : (int)avail;
        rl->tokens -= got;
        if (got < n) {
            double ms = ceil((1.0 - rl->tokens) / rl->per_ms - RL_EPS);
            wait = ms < 1.0 ? 1 : ms > 9e15 ? (int64_t)9e15 : (int64_t)ms;
        }
    }
    pthread_mutex_unlock(&rl->mu);
out:
    if (granted)
        *granted = got;
    return wait;
}

void ratelimit_refund(struct ratelimit *rl, int n)
{
    if (n <= 0)
        return;
    pthread_mutex_lock(&rl->mu);
    if (rl->per_ms > 0) {
        rl->tokens += n;
        if (rl->tokens > rl->capacity)
            rl->tokens = rl->capacity;
    }
    pthread_mutex_unlock(&rl->mu);
}
