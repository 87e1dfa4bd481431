/* ingest.c - turns consumed Kafka messages into store changes.
 *
 * Runs on the kconsumer thread only. A message that cannot be understood
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

#include <stdlib.h>
#include <string.h>

int ingest_batch(void *arg, const struct kmsg *msgs, size_t n)
{
    struct happ *app = arg;
    struct user_event *ev = xcalloc(n ? n : 1, sizeof *ev);
    size_t nev = 0, invalid = 0, added = 0;
    char err[256];
    for (size_t i = 0; i < n; i++) {
        const struct kmsg *m = &msgs[i];
        if (strcmp(m->topic, app->cfg->svc.user_topic) != 0)
            continue; /* email events: handled by the tracker (later) */
        if (events_parse_user(m->value, m->value_len, &ev[nev], err, sizeof err) != 0) {
            log_warn("event skipped topic=%s partition=%d offset=%lld: %s", m->topic,
                     (int)m->partition, (long long)m->offset, err);
            invalid++;
            continue;
        }
        nev++;
    }
    int rc = hstore_apply_users(app->store, ev, nev, &added);
    for (size_t i = 0; i < nev; i++)
        events_user_cleanup(&ev[i]);
    free(ev);
    if (rc != 0)
        return -1; /* the consumer hands the same batch again */
    metric_add(app->events_consumed, (double)n);
    metric_add(app->events_invalid, (double)invalid);
    if (added)
        log_info("ingested %zu events: %zu new users", n, added);
    return 0;
}
