/* events.h - the consumed events as the health store takes them: decoded
 * and validated by libshared's event.h (the owner of the wire format),
 * plus the store's own fields. Strings in a struct are owned by its block
 * (events_*_cleanup). Pure, any thread. */
#ifndef EVENTS_H
#define EVENTS_H

#include "addr.h"
#include "event.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* a user.registered event */
struct user_event {
    struct addr addr; /* email_id, normalised; addr.domain is the domain */
    const char *name;
    const char *at;
    char *block; /* holds name and at */
};

/* events_parse_user - a value of the user topic: 0 for a v1
 * user.registered, 1 for another valid type of the topic
 * (user.unsubscribed: skipped, not invalid; *out empty), or -1 with the
 * reason (event_decode) */
int events_parse_user(const char *value, size_t len, struct user_event *out, char *errbuf,
                      size_t errlen);
void events_user_cleanup(struct user_event *ev);

/* an email.sent or email.failed event: one copy of a broadcast */
struct copy_event {
    bool failed; /* email.failed: the copy was dead-lettered (a bounce) */
    const char *message_id, *broadcast_id, *recipient, *domain, *smtp_client, *smtp_reply;
    const char *identity; /* the sending identity (From, normalised); NULL when absent */
    const char *variant;  /* the campaign's A/B variant; NULL when none */
    int64_t campaign;     /* the campaign; 0 when none */
    char *block;          /* holds the strings above (one allocation) */
    int64_t email_id;
    int64_t sent_at_ms; /* parsed from sent_at; 0 when absent (failed) */
    /* set by hstore_key_copies (the store's key and arrival order) */
    int64_t key;
    size_t seq;
    bool keyed;
};

/* events_parse_copy - a value of the email topic (a v1 email.sent or
 * email.failed); 0, or -1 with the reason (event_decode) */
int events_parse_copy(const char *value, size_t len, struct copy_event *out, char *errbuf,
                      size_t errlen);
void events_copy_cleanup(struct copy_event *ev);

#endif
