/* bqueue.h - bounded blocking FIFO of pointers (multi-producer,
 * multi-consumer), the backpressure between the dispatcher, the workers
 * and the writer. The queue never owns the items: whoever pops one owns
 * it. Thread-safe. */
#ifndef BQUEUE_H
#define BQUEUE_H

#include <stdbool.h>
#include <stddef.h>

struct bqueue;

struct bqueue *bqueue_new(size_t capacity);
/* bqueue_new_reserve - as bqueue_new, with reserve more slots that only
 * bqueue_push_front may fill (urgent items never wait behind a full queue) */
struct bqueue *bqueue_new_reserve(size_t capacity, size_t reserve);
/* bqueue_free - the queue must be empty (items are not freed) */
void bqueue_free(struct bqueue *q);
/* bqueue_push - wait while full; false if the queue was closed */
bool bqueue_push(struct bqueue *q, void *item);
/* bqueue_push_front - push item at the head (popped next), waiting while
 * the capacity and the reserve are full; false if the queue was closed */
bool bqueue_push_front(struct bqueue *q, void *item);
/* bqueue_pop_batch - wait up to timeout_ms for at least one item, then
 * take up to max without waiting; returns the count (0: timeout/closed) */
size_t bqueue_pop_batch(struct bqueue *q, void **items, size_t max, int timeout_ms);
/* bqueue_pop_batch_while - as bqueue_pop_batch, but the batch ends before
 * the first item for which same(first item, item) is false */
size_t bqueue_pop_batch_while(struct bqueue *q, void **items, size_t max, int timeout_ms,
                              bool (*same)(const void *first, const void *next));
size_t bqueue_len(struct bqueue *q);
size_t bqueue_space(struct bqueue *q);
/* bqueue_space_front - the room bqueue_push_front has (reserve included) */
size_t bqueue_space_front(struct bqueue *q);
/* bqueue_close - wake every waiter; pushes fail from now on, pops drain
 * what is left */
void bqueue_close(struct bqueue *q);
bool bqueue_closed(struct bqueue *q);

#endif
