/* events.h - parsing and validation of the Kafka events the health
 * service consumes (DESIGN.md section 5). Pure; strings in the parsed
 * structs are copies owned by the struct (events_*_cleanup). */
#ifndef EVENTS_H
#define EVENTS_H

#include "addr.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EVENT_MAX_BYTES (64 * 1024)

struct user_event {
    struct addr addr; /* email_id, normalised; addr.domain is the domain */
    char *name;
    char *at;
};

/* events_parse_user - a v1 user.registered event; 0, or -1 with the reason
 * (bad JSON, missing or mistyped field, unknown version or type, domain not
 * matching the address, too large). */
int events_parse_user(const char *value, size_t len, struct user_event *out, char *errbuf,
                      size_t errlen);
void events_user_cleanup(struct user_event *ev);

/* an email.sent or email.failed event: one copy of a broadcast */
struct copy_event {
    bool failed; /* email.failed: the copy was dead-lettered (a bounce) */
    char *message_id, *broadcast_id, *recipient, *domain, *smtp_client, *smtp_reply;
    char *block; /* holds the strings above (one allocation) */
    int64_t email_id;
    int64_t sent_at_ms; /* parsed from sent_at; 0 when absent (failed) */
    /* set by hstore_key_copies (the store's key and arrival order) */
    int64_t key;
    size_t seq;
    bool keyed;
};

/* events_parse_copy - a v1 email.sent / email.failed event; 0, or -1 with
 * the reason (as events_parse_user; also a Message-ID without brackets,
 * a domain not matching the recipient) */
int events_parse_copy(const char *value, size_t len, struct copy_event *out, char *errbuf,
                      size_t errlen);
void events_copy_cleanup(struct copy_event *ev);
/* events_type - the "type" of a JSON event value into out ("" if none) */
void events_type(const char *value, size_t len, char *out, size_t outlen);

#endif
