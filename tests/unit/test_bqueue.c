/* test_bqueue.c - the bounded queue's urgent lane (libshared/util/bqueue.c):
 * bqueue_push_front and its reserve, bqueue_space(_front), and batches
 * that end where a predicate says (bqueue_pop_batch_while). */
#include "bqueue.h"
#include "test.h"

#include <stdint.h>

static bool same_parity(const void *a, const void *b)
{
    return ((uintptr_t)a & 1) == ((uintptr_t)b & 1);
}

int main(void)
{
    void *it[16];
    struct bqueue *q = bqueue_new_reserve(4, 2);
    CHECK_INT((long long)bqueue_space(q), 4, "space: the capacity");
    CHECK_INT((long long)bqueue_space_front(q), 6, "space_front: capacity and reserve");
    for (uintptr_t i = 2; i <= 8; i += 2) /* bulk: 2 4 6 8 */
        bqueue_push(q, (void *)i);
    CHECK_INT((long long)bqueue_space(q), 0, "full for bulk");
    CHECK_INT((long long)bqueue_space_front(q), 2, "room left in the reserve");
    bqueue_push_front(q, (void *)(uintptr_t)3); /* urgent, pushed last first */
    bqueue_push_front(q, (void *)(uintptr_t)1);
    CHECK_INT((long long)bqueue_len(q), 6, "six queued");
    CHECK_INT((long long)bqueue_space(q), 0, "bulk space never negative");
    size_t n = bqueue_pop_batch_while(q, it, 16, 0, same_parity);
    CHECK(n == 2 && (uintptr_t)it[0] == 1 && (uintptr_t)it[1] == 3,
          "the urgent items first, in order, and the batch ends before the bulk ones");
    n = bqueue_pop_batch_while(q, it, 3, 0, same_parity);
    CHECK(n == 3 && (uintptr_t)it[0] == 2 && (uintptr_t)it[2] == 6, "then the bulk ones, max 3");
    bqueue_push(q, (void *)(uintptr_t)10);
    bqueue_push(q, (void *)(uintptr_t)11); /* wraps around the ring */
    n = bqueue_pop_batch(q, it, 16, 0);
    CHECK(n == 3 && (uintptr_t)it[0] == 8 && (uintptr_t)it[1] == 10 && (uintptr_t)it[2] == 11,
          "pop_batch takes all in order across the wrap");
    CHECK_INT((long long)bqueue_pop_batch(q, it, 16, 10), 0, "empty: timeout, nothing");
    bqueue_close(q);
    CHECK(!bqueue_push_front(q, (void *)(uintptr_t)5), "closed: push_front refused");
    bqueue_free(q);
    return test_done();
}
