/* suppress.h - putting an address on the suppression list: the reason
 * checked, the user.unsubscribed event built, the store told (the entry,
 * its queued copies dropped and the event in one transaction), the outbox
 * woken. Shared by the API (/suppressions, /u/{token}) and the
 * feedback-events consumer. Any thread. */
#ifndef SUPPRESS_H
#define SUPPRESS_H

#include "addr.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;
struct outbox_publisher;

/* the reasons of the contract, NULL-terminated */
extern const char *const suppress_reasons[];
/* suppress_reason_ok - reason is one of suppress_reasons */
bool suppress_reason_ok(const char *reason);

/* suppress_add - suppress a (parsed) address for reason (email_ref: the
 * email that asked, 0 none); the event goes to topic. 0: *result is
 * STORE_INSERTED (stored, *dropped queued copies dropped, event queued)
 * or STORE_DUPLICATE (already suppressed: nothing changed); -1: database
 * error, nothing stored. */
int suppress_add(struct store *st, struct outbox_publisher *ob, const char *topic,
                 const struct addr *a, const char *reason, int64_t email_ref, int *result,
                 int64_t *dropped);

/* one address of a batch: a, reason and email_ref in; result and dropped
 * out (as suppress_add's) */
struct suppress_item {
    const struct addr *a;
    const char *reason;
    int64_t email_ref;
    int result;
    int64_t dropped;
};
/* suppress_add_batch - suppress_add for n items in ONE transaction (all or
 * nothing): 0, or -1 (database error, nothing stored, every result
 * STORE_DUPLICATE). */
int suppress_add_batch(struct store *st, struct outbox_publisher *ob, const char *topic,
                       struct suppress_item *v, size_t n);

#endif
