/* suppress.c - an address onto the suppression list with its event
 * (suppress.h). Any thread. */
#include "suppress.h"
#include "event.h"
#include "log.h"
#include "outbox.h"
#include "store.h"
#include "timeutil.h"

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

int suppress_add(struct store *st, struct outbox_publisher *ob, const char *topic,
                 const struct addr *a, const char *reason, int64_t email_ref, int *result,
                 int64_t *dropped)
{
    char at[32];
    int64_t now = time_now_ms();
    time_rfc3339_ms(now, at, sizeof at);
    struct event_user_unsubscribed ev = {.address = a->norm, .reason = reason, .at = at};
    char *event = event_encode_user_unsubscribed(&ev);
    struct suppress_req r = {.address = a->norm,
                             .domain = a->domain,
                             .reason = reason,
                             .at_ms = now,
                             .email_ref = email_ref,
                             .event = event};
    int rc = store_suppress(st, &r, topic, result, dropped);
    free(event);
    if (rc != 0)
        return -1;
    if (*result == STORE_INSERTED) {
        outbox_publisher_notify(ob);
        log_info("suppressed email_id=%s reason=%s email=%lld queued_copies_dropped=%lld", a->norm,
                 reason, (long long)email_ref, (long long)*dropped);
    }
    return 0;
}
