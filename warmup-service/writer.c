/* writer.c - the one thread that commits send outcomes: batches of
 * outcomes, the emails' counters and the email.sent / email.failed events
 * go into the store in one transaction, then the outbox publisher is
 * woken. A failed commit is retried with the same batch: an outcome is
 * never dropped (worst case after a crash: the copy is sent again). */
#include "bqueue.h"
#include "log.h"
#include "outbox.h"
#include "sender_int.h"
#include "timeutil.h"
#include "xalloc.h"

#include <stdlib.h>

#define WRITE_BATCH 512

void *writer_main(void *arg)
{
    struct sender *s = arg;
    void *items[WRITE_BATCH];
    struct outcome *rs = xcalloc(WRITE_BATCH, sizeof *rs);
    for (;;) {
        size_t n = bqueue_pop_batch(s->results, items, WRITE_BATCH, 100);
        if (n == 0) {
            if (bqueue_closed(s->results))
                break;
            continue;
        }
        bool events = false;
        for (size_t i = 0; i < n; i++) {
            struct queued_outcome *o = items[i];
            rs[i] = o->r;
            events |= o->r.event != NULL;
        }
        int64_t backoff = 100;
        while (store_apply_results(s->cfg.store, rs, n, s->cfg.email_topic, time_now_ms()) != 0) {
            log_error("writer: committing %zu outcomes failed; retrying in %lld ms", n,
                      (long long)backoff);
            time_sleep_ms(backoff);
            if (backoff < 5000)
                backoff *= 2;
        }
        if (events)
            outbox_publisher_notify(s->cfg.outbox);
        for (size_t i = 0; i < n; i++) {
            struct queued_outcome *o = items[i];
            free(o->r.event);
            free(o->r.event_key);
            email_run_unref(o->c);
            free(o);
        }
    }
    free(rs);
    return NULL;
}
