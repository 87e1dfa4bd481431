/* ingest.c - turns consumed Kafka messages into store changes.
 *
 * Runs on the kconsumer thread only. user.registered events (user topic)
 * add users and domains; email.sent / email.failed (email topic) add
 * tracked copies and bounces. A message that cannot be understood
 * (bad JSON, missing field, unknown version or type) is logged with its
 * topic/partition/offset, counted, and skipped: it never blocks its
 * partition. Valid events of a batch are applied in one transaction; the
 * consumer stores the offsets only after it committed (at least once,
 * made exactly-once in effect by the store's idempotence).
 */
#include "events.h"
#include "happ.h"
#include "hstore.h"
#include "kconsumer.h"
#include "log.h"
#include "metrics.h"
#include "xalloc.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

int ingest_batch(void *arg, const struct kmsg *msgs, size_t n)
{
    struct happ *app = arg;
    struct user_event *users = xcalloc(n ? n : 1, sizeof *users);
    struct copy_event *copies = xcalloc(n ? n : 1, sizeof *copies);
    size_t nu = 0, nc = 0, invalid = 0, new_users = 0, new_copies = 0;
    char err[256];
    for (size_t i = 0; i < n; i++) {
        const struct kmsg *m = &msgs[i];
        bool user = strcmp(m->topic, app->cfg->svc.user_topic) == 0;
        int rc;
        if (user)
            rc = events_parse_user(m->value, m->value_len, &users[nu], err, sizeof err);
        else
            rc = events_parse_copy(m->value, m->value_len, &copies[nc], err, sizeof err);
        if (rc != 0) {
            log_warn("event skipped topic=%s partition=%d offset=%lld: %s", m->topic,
                     (int)m->partition, (long long)m->offset, err);
            invalid++;
            continue;
        }
        if (user)
            nu++;
        else
            nc++;
    }
    int rc = hstore_apply_events(app->store, users, nu, copies, nc, &new_users, &new_copies);
    for (size_t i = 0; i < nu; i++)
        events_user_cleanup(&users[i]);
    for (size_t i = 0; i < nc; i++)
        events_copy_cleanup(&copies[i]);
    free(users);
    free(copies);
    if (rc != 0)
        return -1; /* the consumer hands the same batch again */
    metric_add(app->events_consumed, (double)n);
    metric_add(app->events_invalid, (double)invalid);
    if (new_users || new_copies)
        log_info("ingested %zu events: %zu new users, %zu new copies", n, new_users, new_copies);
    return 0;
}
