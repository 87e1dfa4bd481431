/* events.c - a consumed value into the store's record: event_decode with
 * the types of the value's topic, the decoded strings moved (not copied)
 * into the record. */
#include "events.h"

#include <stdlib.h>
#include <string.h>

int events_parse_user(const char *value, size_t len, struct user_event *out, char *errbuf,
                      size_t errlen)
{
    struct event ev;
    memset(out, 0, sizeof *out);
    if (event_decode(value, len, EVENT_ON_USER_TOPIC, &ev, errbuf, errlen) != 0)
        return -1;
    if (ev.type != EVENT_USER_REGISTERED) { /* user.unsubscribed: nothing to track */
        event_cleanup(&ev);
        return 1;
    }
    const struct event_user_registered *u = &ev.user_registered;
    /* both fit: event_decode took them from addr_parse */
    memcpy(out->addr.norm, u->address, strlen(u->address) + 1);
    memcpy(out->addr.domain, u->domain, strlen(u->domain) + 1);
    out->name = u->name;
    out->at = u->at;
    out->block = u->block;
    return 0;
}

void events_user_cleanup(struct user_event *ev)
{
    free(ev->block);
    ev->block = NULL;
    ev->name = ev->at = NULL;
}

int events_parse_copy(const char *value, size_t len, struct copy_event *out, char *errbuf,
                      size_t errlen)
{
    struct event ev;
    memset(out, 0, sizeof *out);
    if (event_decode(value, len, EVENT_ON_EMAIL_TOPIC, &ev, errbuf, errlen) != 0)
        return -1;
    const struct event_email_sent *e = &ev.email_sent;
    if (e->email_id == 0) { /* a refused send request: no copy to track */
        event_cleanup(&ev);
        return 1;
    }
    out->failed = e->failed;
    out->message_id = e->message_id;
    out->broadcast_id = e->broadcast_id;
    out->recipient = e->recipient;
    out->domain = e->domain;
    out->smtp_client = e->smtp_client;
    out->smtp_reply = e->smtp_reply;
    out->identity = e->identity;
    out->variant = e->variant;
    out->campaign = e->campaign;
    out->block = e->block;
    out->email_id = e->email_id;
    out->sent_at_ms = e->sent_at_ms;
    return 0;
}

void events_copy_cleanup(struct copy_event *ev)
{
    free(ev->block);
    memset(ev, 0, sizeof *ev);
}
