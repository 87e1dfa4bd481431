/* ingest.c - turns consumed Kafka messages into store changes, as the
 * kconsumer's pipeline: ingest_prepare on the consumer thread parses batch
 * k+1 while ingest_apply on the writer thread stores batch k.
 *
 * user.registered events (user topic) add users and domains; email.sent /
 * email.failed (email topic) add tracked copies and bounces. A message that
 * cannot be understood (bad JSON, missing field, unknown version or type)
 * is logged with its topic/partition/offset, counted, and skipped: it
 * never blocks its partition. Valid events of a batch are applied in one
 * transaction; the consumer stores the offsets only after it committed (at
 * least once, made exactly-once in effect by the store's idempotence).
 */
#include "events.h"
#include "happ.h"
#include "hstore.h"
#include "kconsumer.h"
#include "log.h"
#include "metrics.h"
#include "timeutil.h"
#include "xalloc.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* a parsed batch: owns the events' strings */
struct ingest_work {
    struct user_event *users;
    struct copy_event *copies;
    size_t n, nu, nc, invalid;
};

void *ingest_prepare(void *arg, const struct kmsg *msgs, size_t n)
{
    struct happ *app = arg;
    struct ingest_work *w = xcalloc(1, sizeof *w);
    const char *user_topic = app->cfg->svc.user_topic;
    size_t users = 0;
    for (size_t i = 0; i < n; i++)
        users += strcmp(msgs[i].topic, user_topic) == 0;
    /* sized to what the batch holds of each topic: a users' array as long
     * as a batch of copies would be cleared for nothing (user_event is
     * large) */
    w->users = xcalloc(users ? users : 1, sizeof *w->users);
    w->copies = xcalloc(n - users ? n - users : 1, sizeof *w->copies);
    w->n = n;
    char err[256];
    for (size_t i = 0; i < n; i++) {
        const struct kmsg *m = &msgs[i];
        bool user = strcmp(m->topic, user_topic) == 0;
        int rc;
        if (user)
            rc = events_parse_user(m->value, m->value_len, &w->users[w->nu], err, sizeof err);
        else
            rc = events_parse_copy(m->value, m->value_len, &w->copies[w->nc], err, sizeof err);
        if (rc > 0)
            continue; /* valid, of a type health does not use */
        if (rc != 0) {
            log_warn("event skipped topic=%s partition=%d offset=%lld: %s", m->topic,
                     (int)m->partition, (long long)m->offset, err);
            w->invalid++;
            continue;
        }
        if (user)
            w->nu++;
        else
            w->nc++;
    }
    hstore_key_copies(app->store, w->copies, w->nc);
    return w;
}

int ingest_apply(void *arg, void *work)
{
    struct happ *app = arg;
    struct ingest_work *w = work;
    size_t new_users = 0, new_copies = 0;
    int64_t t0 = time_mono_ms();
    if (hstore_apply_events(app->store, w->users, w->nu, w->copies, w->nc, &new_users,
                            &new_copies) != 0)
        return -1; /* the consumer applies the same batch again */
    metric_add(app->events_consumed, (double)w->n);
    metric_add(app->events_invalid, (double)w->invalid);
    if (new_users || new_copies)
        log_info("ingested %zu events in %lld ms: %zu new users, %zu new copies", w->n,
                 (long long)(time_mono_ms() - t0), new_users, new_copies);
    return 0;
}

void ingest_release(void *arg, void *work)
{
    (void)arg;
    struct ingest_work *w = work;
    if (!w)
        return;
    for (size_t i = 0; i < w->nu; i++)
        events_user_cleanup(&w->users[i]);
    for (size_t i = 0; i < w->nc; i++)
        events_copy_cleanup(&w->copies[i]);
    free(w->users);
    free(w->copies);
    free(w);
}
