/* suppress.c - an address onto the suppression list with its event
 * (suppress.h). Any thread. */
#include "suppress.h"
#include "event.h"
#include "log.h"
#include "outbox.h"
#include "store.h"
#include "timeutil.h"
#include "xalloc.h"

#include <stdlib.h>
#include <string.h>

const char *const suppress_reasons[] = {"unsubscribed", "hard_bounce", "complaint", "manual", NULL};

bool suppress_reason_ok(const char *reason)
{
    for (int i = 0; suppress_reasons[i]; i++)
        if (strcmp(reason, suppress_reasons[i]) == 0)
            return true;
    return false;
}

int suppress_add_batch(struct store *st, struct outbox_publisher *ob, const char *topic,
                       struct suppress_item *v, size_t n)
{
    if (n == 0)
        return 0;
    char at[32];
    int64_t now = time_now_ms();
    time_rfc3339_ms(now, at, sizeof at);
    struct suppress_req *r = xcalloc(n, sizeof *r);
    int *result = xcalloc(n, sizeof *result);
    int64_t *dropped = xcalloc(n, sizeof *dropped);
    for (size_t i = 0; i < n; i++) {
        struct event_user_unsubscribed ev = {
            .address = v[i].a->norm, .reason = v[i].reason, .at = at};
        r[i] = (struct suppress_req){.address = v[i].a->norm,
                                     .domain = v[i].a->domain,
                                     .reason = v[i].reason,
                                     .at_ms = now,
                                     .email_ref = v[i].email_ref,
                                     .event = event_encode_user_unsubscribed(&ev)};
    }
    int rc = store_suppress_batch(st, r, n, topic, result, dropped);
    bool added = false;
    for (size_t i = 0; i < n; i++) {
        v[i].result = result[i];
        v[i].dropped = dropped[i];
        free((char *)r[i].event);
        if (rc == 0 && result[i] == STORE_INSERTED) {
            added = true;
            log_info("suppressed email_id=%s reason=%s email=%lld queued_copies_dropped=%lld",
                     v[i].a->norm, v[i].reason, (long long)v[i].email_ref, (long long)v[i].dropped);
        }
    }
    free(r);
    free(result);
    free(dropped);
    if (rc != 0)
        return -1;
    if (added)
        outbox_publisher_notify(ob);
    return 0;
}

int suppress_add(struct store *st, struct outbox_publisher *ob, const char *topic,
                 const struct addr *a, const char *reason, int64_t email_ref, int *result,
                 int64_t *dropped)
{
    struct suppress_item it = {.a = a, .reason = reason, .email_ref = email_ref};
    int rc = suppress_add_batch(st, ob, topic, &it, 1);
    *result = it.result;
    *dropped = it.dropped;
    return rc;
}
