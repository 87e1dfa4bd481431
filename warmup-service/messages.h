/* messages.h - transactional sends (DESIGN 9.5): one copy of a template
 * to one address, from POST /messages and from the email-send topic.
 * Checks the request, fills nothing (the worker does), stores the copy
 * durably and wakes the sender. HTTP pool threads and the email-send
 * consumer's thread; the module keeps no state of its own.
 */
#ifndef MESSAGES_H
#define MESSAGES_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct app;

/* a request; every pointer borrowed for the call */
struct message_req {
    const char *to;
    const char *template_name;
    int version;       /* 0: the latest */
    json_object *data; /* an object or NULL; its "name" is the recipient's name (else the user's) */
    const char *priority; /* "high", "normal" or NULL (normal) */
    const char *from;     /* NULL: the template's */
    const char *from_name;
    const char *smtp_client; /* NULL: the From identity's, else the default */
    const char *request_key; /* idempotency key (NULL: none): the same key again answers the
                              * copy stored the first time and stores nothing */
};

/* the answer: status 202 with message_id and email_id, or a 4xx/503 with
 * an error code and message (never a secret) */
struct message_result {
    int status;
    char *message_id; /* heap, caller frees (202 only) */
    int64_t email_id;
    bool replayed;    /* the request_key's copy was stored before */
    const char *code; /* static; NULL on 202 */
    char error[400];
};

/* messages_submit - check and store one transactional copy. Errors:
 * 400 invalid_field (to, priority, data), 400 unknown_template (name or
 * version), 400 no_from (neither the request nor the template has one),
 * 400 missing_placeholder (naming it), 409 address_suppressed, 503. */
void messages_submit(struct app *app, const struct message_req *m, struct message_result *out);

#endif
