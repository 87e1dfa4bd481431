/* smtp_breaker.c - the circuit breaker of one SMTP client (states, backoff
 * and threads in smtp_breaker.h). Owns nothing but its lock; the state is
 * atomic so the send path reads it without the lock, and it is written
 * only under the lock. Called by the client's workers, the dispatcher and
 * the HTTP threads (/readyz, /metrics).
 */
#include "smtp_breaker.h"

#include <stdio.h>
#include <stdlib.h>

void smtp_breaker_init(struct smtp_breaker *b, int64_t base_ms, int64_t max_ms, unsigned seed)
{
    pthread_mutex_init(&b->lock, NULL);
    atomic_init(&b->state, SMTP_BREAKER_CLOSED);
    atomic_init(&b->epoch, 0);
    atomic_init(&b->level, 0);
    b->base_ms = base_ms > 0 ? base_ms : 1;
    b->max_ms = max_ms >= b->base_ms ? max_ms : b->base_ms;
    b->probe_at = 0;
    b->trips = 0;
    b->seed = seed;
    b->why[0] = '\0';
}

void smtp_breaker_cleanup(struct smtp_breaker *b)
{
    pthread_mutex_destroy(&b->lock);
}

bool smtp_breaker_closed(struct smtp_breaker *b)
{
    return atomic_load_explicit(&b->state, memory_order_acquire) == SMTP_BREAKER_CLOSED;
}

unsigned smtp_breaker_epoch(struct smtp_breaker *b)
{
    return atomic_load_explicit(&b->epoch, memory_order_acquire);
}

int64_t smtp_breaker_backoff(int64_t base_ms, int64_t max_ms, int level, unsigned *seed)
{
    int64_t d = base_ms;
    for (int i = 1; i < level && d < max_ms; i++)
        d *= 2;
    if (d > max_ms)
        d = max_ms;
    double j = 0.8 + 0.4 * (double)rand_r(seed) / ((double)RAND_MAX + 1.0);
    int64_t r = (int64_t)((double)d * j);
    return r > max_ms ? max_ms : r < 1 ? 1 : r;
}

/* open_locked - OPEN with the next level's backoff; caller holds the lock */
static void open_locked(struct smtp_breaker *b, int64_t now_ms, const char *why)
{
    int level = atomic_load(&b->level) + 1;
    if (level > 62)
        level = 62;
    atomic_store(&b->level, level);
    b->probe_at = now_ms + smtp_breaker_backoff(b->base_ms, b->max_ms, level, &b->seed);
    if (why)
        snprintf(b->why, sizeof b->why, "%s", why);
    atomic_store_explicit(&b->state, SMTP_BREAKER_OPEN, memory_order_release);
}

bool smtp_breaker_trip(struct smtp_breaker *b, unsigned epoch, int64_t now_ms, const char *why)
{
    bool opened = false;
    pthread_mutex_lock(&b->lock);
    if (atomic_load(&b->state) == SMTP_BREAKER_CLOSED && atomic_load(&b->epoch) == epoch) {
        open_locked(b, now_ms, why);
        b->trips++;
        opened = true;
    }
    pthread_mutex_unlock(&b->lock);
    return opened;
}

void smtp_breaker_answered(struct smtp_breaker *b)
{
    if (atomic_load_explicit(&b->level, memory_order_relaxed) == 0)
        return;
    pthread_mutex_lock(&b->lock);
    if (atomic_load(&b->state) == SMTP_BREAKER_CLOSED)
        atomic_store(&b->level, 0);
    pthread_mutex_unlock(&b->lock);
}

bool smtp_breaker_probe_begin(struct smtp_breaker *b, int64_t now_ms)
{
    if (atomic_load_explicit(&b->state, memory_order_acquire) != SMTP_BREAKER_OPEN)
        return false;
    bool mine = false;
    pthread_mutex_lock(&b->lock);
    if (atomic_load(&b->state) == SMTP_BREAKER_OPEN && now_ms >= b->probe_at) {
        atomic_store(&b->state, SMTP_BREAKER_PROBING);
        mine = true;
    }
    pthread_mutex_unlock(&b->lock);
    return mine;
}

void smtp_breaker_probe_end(struct smtp_breaker *b, bool ok, bool abandoned, int64_t now_ms,
                            const char *why)
{
    pthread_mutex_lock(&b->lock);
    if (atomic_load(&b->state) == SMTP_BREAKER_PROBING) {
        if (abandoned) {
            b->probe_at = now_ms;
            atomic_store(&b->state, SMTP_BREAKER_OPEN);
        } else if (ok) {
            atomic_fetch_add(&b->epoch, 1);
            atomic_store_explicit(&b->state, SMTP_BREAKER_CLOSED, memory_order_release);
        } else {
            open_locked(b, now_ms, why);
        }
    }
    pthread_mutex_unlock(&b->lock);
}

void smtp_breaker_status(struct smtp_breaker *b, int64_t now_ms, struct smtp_breaker_status *out)
{
    pthread_mutex_lock(&b->lock);
    out->state = (enum smtp_breaker_state)atomic_load(&b->state);
    out->probe_in_ms =
        out->state == SMTP_BREAKER_OPEN && b->probe_at > now_ms ? b->probe_at - now_ms : 0;
    out->level = atomic_load(&b->level);
    out->trips = b->trips;
    snprintf(out->why, sizeof out->why, "%s", b->why);
    pthread_mutex_unlock(&b->lock);
}
