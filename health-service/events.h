/* events.h - parsing and validation of the Kafka events the health
 * service consumes (DESIGN.md section 5). Pure; strings in the parsed
 * structs are copies owned by the struct (events_*_cleanup). */
#ifndef EVENTS_H
#define EVENTS_H

#include "addr.h"

#include <stddef.h>

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

#endif
