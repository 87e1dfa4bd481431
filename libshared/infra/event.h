/* event.h - the Kafka events both services exchange (README.md, "Events (Kafka)"):
 * the one owner of their type names, field names and schema version.
 * Producers encode a struct into the JSON value; consumers decode a value
 * into the same struct, validated. A new event type is one enum value, one
 * struct, one encoder and one decoder here.
 *
 * Types, their topic (KAFKA_TOPIC names the two) and message key:
 *   user.registered  user topic (emailId-events)  key = the domain
 *   user.unsubscribed user topic                  key = the domain
 *   email.sent       email topic (email-events)   key = the copy's Message-ID
 *   email.failed     email topic                  key = the copy's Message-ID
 *   email.bounced    feedback topic (feedback-events, KAFKA_FEEDBACK_TOPIC)
 *                                                 key = the recipient address
 *   email.complained feedback topic               key = the recipient address
 *   placement.summary feedback topic              key = the identity address
 *
 * Encoding: strings in the struct are borrowed for the call; the caller
 * frees the returned text. Decoding: unknown fields are ignored, a missing
 * or mistyped field, another schema version or an unexpected type is
 * refused with the reason; the decoded strings live in one allocation
 * owned by the struct (event_cleanup). Pure, any thread.
 */
#ifndef EVENT_H
#define EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EVENT_VERSION 1             /* the "v" every event carries */
#define EVENT_MAX_BYTES (64 * 1024) /* a longer value is refused unread */
#define EVENT_TYPE_MAX 64           /* the longest "type" read */
#define EVENT_VARIANT_MAX 64        /* the longest A/B variant name */

enum event_type {
    EVENT_NONE = 0,
    EVENT_USER_REGISTERED,   /* "user.registered" */
    EVENT_EMAIL_SENT,        /* "email.sent" */
    EVENT_EMAIL_FAILED,      /* "email.failed": a copy was dead-lettered */
    EVENT_EMAIL_BOUNCED,     /* "email.bounced": a report says a copy was not delivered */
    EVENT_EMAIL_COMPLAINED,  /* "email.complained": its recipient reported a copy */
    EVENT_USER_UNSUBSCRIBED, /* "user.unsubscribed": an address was suppressed */
    EVENT_PLACEMENT_SUMMARY, /* "placement.summary": where an identity's copies land at a provider
                              */
    EVENT_TYPE_COUNT
};

/* a set of types, for event_decode */
#define EVENT_BIT(t) (1u << (t))
/* the types each topic carries */
#define EVENT_ON_USER_TOPIC (EVENT_BIT(EVENT_USER_REGISTERED) | EVENT_BIT(EVENT_USER_UNSUBSCRIBED))
#define EVENT_ON_EMAIL_TOPIC (EVENT_BIT(EVENT_EMAIL_SENT) | EVENT_BIT(EVENT_EMAIL_FAILED))
#define EVENT_ON_FEEDBACK_TOPIC                                                                    \
    (EVENT_BIT(EVENT_EMAIL_BOUNCED) | EVENT_BIT(EVENT_EMAIL_COMPLAINED) |                          \
     EVENT_BIT(EVENT_PLACEMENT_SUMMARY))

/* user.registered: a recipient was registered */
struct event_user_registered {
    const char *address; /* "email_id" on the wire; decoded: normalised (addr.h) */
    const char *name;
    const char *domain; /* the address's domain, lower-cased */
    const char *at;     /* the registration time, RFC 3339, as written */
    char *block;        /* decoded: holds the strings above */
};

/* user.unsubscribed: an address was put on the suppression list; it
 * receives nothing more (reason: unsubscribed, hard_bounce, complaint or
 * manual) */
struct event_user_unsubscribed {
    const char *address; /* "email_id" on the wire; decoded: normalised (addr.h) */
    const char *reason;
    const char *at; /* RFC 3339 UTC, as written */
    char *block;    /* decoded: holds the strings above */
};

/* email.sent (a copy accepted by the SMTP server) or, when failed,
 * email.failed (a copy dead-lettered): the same fields plus smtp_reply */
struct event_email_sent {
    bool failed;
    const char *message_id;   /* the copy's, <...@...> */
    const char *broadcast_id; /* the broadcast's Message-ID, <...@...> */
    int64_t email_id;         /* the broadcast, >= 1; an email.failed with 0 answers a send
                               * request refused before any email held it (email-send) */
    const char *recipient;    /* decoded: normalised */
    const char *domain;       /* the recipient's domain, lower-cased */
    const char *smtp_client;
    const char *identity;   /* the copy's From address (sending identity); decoded: normalised,
                             * NULL when the event has none (written before identities) */
    int64_t campaign;       /* the campaign the copy belongs to (DESIGN 9.5); 0: none */
    const char *variant;    /* its A/B variant's name; NULL: none */
    int64_t sent_at_ms;     /* the (last) attempt; decoded: 0 when an
                             * email.failed has no sent_at */
    const char *smtp_reply; /* email.failed only; may be NULL */
    char *block;            /* decoded: holds the strings above */
};

/* email.bounced (a delivery status notification: the copy was not
 * delivered) or, when complained, email.complained (a feedback report:
 * the recipient reported the copy) */
struct event_email_feedback {
    bool complained;
    const char *message_id; /* the copy's, <...@...> */
    int64_t email_id;       /* the broadcast, >= 1 */
    const char *recipient;  /* decoded: normalised */
    const char *domain;     /* the recipient's domain, lower-cased */
    /* email.bounced only */
    bool soft;              /* "bounce": "soft" (temporary failure), else "hard" */
    const char *status;     /* the RFC 3463 status, "5.1.1" */
    const char *diagnostic; /* the remote server's words; "" when none */
    /* email.complained only */
    const char *feedback_type; /* RFC 5965 Feedback-Type: "abuse", "fraud", ... */
    const char *at;            /* when the report was read, RFC 3339 UTC */
    char *block;               /* decoded: holds the strings above */
};

/* placement.summary: over the last window_s seconds, the copies of one
 * sending identity to one recipient provider that health checked, and
 * where they landed (health-service publishes it when it changed) */
struct event_placement_summary {
    const char *identity; /* the From address, normalised */
    const char *provider; /* a THROTTLES_FILE group name, or a domain */
    int64_t window_s;
    int64_t checked, inbox, spam, bounced, complained;
    const char *at; /* RFC 3339 UTC */
    char *block;    /* decoded: holds the strings above */
};

/* a decoded event: type says which member is set */
struct event {
    enum event_type type;
    union {
        struct event_user_registered user_registered;
        struct event_email_sent email_sent;   /* EVENT_EMAIL_SENT and _FAILED */
        struct event_email_feedback feedback; /* EVENT_EMAIL_BOUNCED and _COMPLAINED */
        struct event_user_unsubscribed user_unsubscribed;
        struct event_placement_summary placement;
    };
};

/* event_type_name - "user.registered", ...; NULL for no type */
const char *event_type_name(enum event_type t);
/* event_type_parse - the type named name, or EVENT_NONE */
enum event_type event_type_parse(const char *name);

/* event_encode_user_registered / event_encode_email_sent - the event's
 * JSON value (fields in the README's order); caller frees. sent_at is
 * written unless an email.failed has sent_at_ms 0, smtp_reply only for an
 * email.failed that has one. */
char *event_encode_user_registered(const struct event_user_registered *e);
char *event_encode_email_sent(const struct event_email_sent *e);
/* event_encode_feedback - email.bounced (message_id, email_id, recipient,
 * domain, bounce, status, diagnostic, at) or email.complained (message_id,
 * email_id, recipient, domain, feedback_type, at); a NULL diagnostic is
 * written as "" */
char *event_encode_feedback(const struct event_email_feedback *e);
/* event_encode_user_unsubscribed - email_id, reason, at */
char *event_encode_user_unsubscribed(const struct event_user_unsubscribed *e);
/* event_encode_placement_summary - identity, provider, window_s, checked,
 * inbox, spam, bounced, complained, at */
char *event_encode_placement_summary(const struct event_placement_summary *e);
/* event_encode - the JSON value of ev, by its type; NULL for EVENT_NONE */
char *event_encode(const struct event *ev);

/* event_decode - a v1 event of one of the types in accept (EVENT_BIT set)
 * into *out (zeroed first): 0, or -1 with the reason (empty, too large,
 * bad JSON, not an object, unknown version, unexpected type, a missing,
 * mistyped or oversized field, an invalid address, a domain not matching
 * the address, a Message-ID without brackets, a sent_at that is not an
 * RFC 3339 UTC time; for email.bounced and email.complained: a bounce
 * other than hard or soft, a status that is not an RFC 3463 code, an at
 * that is not RFC 3339 UTC; for placement.summary: a count below 0, inbox +
 * spam + bounced + complained above checked, a window_s below 1); a refused event holds nothing.
 * The caller releases a decoded event with event_cleanup. */
int event_decode(const char *text, size_t len, unsigned accept, struct event *out, char *errbuf,
                 size_t errlen);
/* event_cleanup - free what event_decode allocated; a zeroed event is fine */
void event_cleanup(struct event *ev);

#endif
