/* bqueue.c - bounded blocking FIFO (ring buffer, one mutex, two condvars).
 * The ring holds cap + reserve slots: bqueue_push stops at cap, the
 * urgent bqueue_push_front at cap + reserve. */
#include "bqueue.h"
#include "timeutil.h"
#include "xalloc.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

struct bqueue {
    pthread_mutex_t mu;
    pthread_cond_t not_empty, not_full;
    void **ring;
    size_t cap, head, len;
    size_t size; /* ring slots: cap + reserve */
    bool closed;
};

struct bqueue *bqueue_new_reserve(size_t capacity, size_t reserve)
{
    struct bqueue *q = xcalloc(1, sizeof *q);
    pthread_mutex_init(&q->mu, NULL);
    time_cond_init_mono(&q->not_empty);
    time_cond_init_mono(&q->not_full);
    q->cap = capacity ? capacity : 1;
    q->size = q->cap + reserve;
    q->ring = xcalloc(q->size, sizeof *q->ring);
    return q;
}

struct bqueue *bqueue_new(size_t capacity)
{
    return bqueue_new_reserve(capacity, 0);
}

void bqueue_free(struct bqueue *q)
{
    if (!q)
        return;
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->not_empty);
    pthread_cond_destroy(&q->not_full);
    free(q->ring);
    free(q);
}

bool bqueue_push(struct bqueue *q, void *item)
{
    pthread_mutex_lock(&q->mu);
    while (q->len >= q->cap && !q->closed)
        pthread_cond_wait(&q->not_full, &q->mu);
    bool ok = !q->closed;
    if (ok) {
        q->ring[(q->head + q->len) % q->size] = item;
        q->len++;
        pthread_cond_signal(&q->not_empty);
    }
    pthread_mutex_unlock(&q->mu);
    return ok;
}

bool bqueue_push_front(struct bqueue *q, void *item)
{
    pthread_mutex_lock(&q->mu);
    while (q->len >= q->size && !q->closed)
        pthread_cond_wait(&q->not_full, &q->mu);
    bool ok = !q->closed;
    if (ok) {
        q->head = (q->head + q->size - 1) % q->size;
        q->ring[q->head] = item;
        q->len++;
        pthread_cond_signal(&q->not_empty);
    }
    pthread_mutex_unlock(&q->mu);
    return ok;
}

size_t bqueue_pop_batch(struct bqueue *q, void **items, size_t max, int timeout_ms)
{
    return bqueue_pop_batch_while(q, items, max, timeout_ms, NULL);
}

size_t bqueue_pop_batch_while(struct bqueue *q, void **items, size_t max, int timeout_ms,
                              bool (*same)(const void *first, const void *next))
{
    struct timespec dl = time_mono_deadline(timeout_ms);
    pthread_mutex_lock(&q->mu);
    while (q->len == 0 && !q->closed) {
        if (pthread_cond_timedwait(&q->not_empty, &q->mu, &dl) == ETIMEDOUT)
            break;
    }
    size_t n = 0;
    while (n < max && q->len > 0 && (n == 0 || !same || same(items[0], q->ring[q->head]))) {
        items[n++] = q->ring[q->head];
        q->head = (q->head + 1) % q->size;
        q->len--;
    }
    if (n)
        pthread_cond_broadcast(&q->not_full);
    pthread_mutex_unlock(&q->mu);
    return n;
}

size_t bqueue_len(struct bqueue *q)
{
    pthread_mutex_lock(&q->mu);
    size_t n = q->len;
    pthread_mutex_unlock(&q->mu);
    return n;
}

size_t bqueue_space(struct bqueue *q)
{
    pthread_mutex_lock(&q->mu);
    size_t n = q->len < q->cap ? q->cap - q->len : 0;
    pthread_mutex_unlock(&q->mu);
    return n;
}

size_t bqueue_space_front(struct bqueue *q)
{
    pthread_mutex_lock(&q->mu);
    size_t n = q->size - q->len;
    pthread_mutex_unlock(&q->mu);
    return n;
}

void bqueue_close(struct bqueue *q)
{
    pthread_mutex_lock(&q->mu);
    q->closed = true;
    pthread_cond_broadcast(&q->not_empty);
    pthread_cond_broadcast(&q->not_full);
    pthread_mutex_unlock(&q->mu);
}

bool bqueue_closed(struct bqueue *q)
{
    pthread_mutex_lock(&q->mu);
    bool c = q->closed;
    pthread_mutex_unlock(&q->mu);
    return c;
}
