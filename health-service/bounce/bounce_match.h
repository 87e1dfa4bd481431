/* bounce_match.h - what a parsed report means for our copies: the copy it
 * is about (its VERP token, else the Message-ID it returns) and the event
 * it becomes (DESIGN 9.2).
 *
 * Matching: each VERP candidate of the report (report.h: the report's
 * Delivered-To, X-Original-To, To, an ARF's Original-Mail-From, the
 * returned Return-Path) that parses as bounces+{token}@domain names a copy
 * through its email's broadcast Message-ID (the domain) and the token; the
 * first one the store tracks wins. Else the returned message's Message-ID,
 * when the store tracks that copy. A DSN must also name the copy's
 * recipient (Final-Recipient or Original-Recipient), an ARF's
 * Original-Rcpt-To, when present, too.
 *
 * Classification: a DSN recipient with Action failed is a hard bounce for
 * a 5.x.x status and a soft one for 4.x.x; Action delayed (the MTA keeps
 * trying and reports again if it gives up), delivered, relayed and
 * expanded are no bounce (ignored). An ARF with Feedback-Type abuse,
 * fraud, virus or other is a complaint; other types (not-spam,
 * auth-failure) are ignored.
 *
 * Threads: the bounce reader's; reads the store.
 */
#ifndef BOUNCE_MATCH_H
#define BOUNCE_MATCH_H

#include "event.h"
#include "report.h"

#include <stdint.h>

struct hstore;

enum bounce_result {
    BOUNCE_BOUNCED = 0, /* an email.bounced */
    BOUNCE_COMPLAINED,  /* an email.complained */
    BOUNCE_IGNORED,     /* a report about a copy that asks for nothing */
    BOUNCE_UNMATCHED,   /* about no copy we track */
    BOUNCE_MALFORMED,   /* not a report we can read */
    BOUNCE_RESULTS
};

/* bounce_result_name - "bounced", "complained", ... (the metric's label) */
const char *bounce_result_name(enum bounce_result r);

/* what a report became; the event's strings point into this struct */
struct bounce_outcome {
    enum bounce_result result;
    char why[512];                  /* ignored, unmatched: the reason (printable) */
    struct event_email_feedback ev; /* bounced, complained */
    char mid[1000], recipient[1024], domain[256], status[16], diagnostic[1001];
    char feedback_type[64], at[40];
};

/* bounce_match - report r (read at now_ms) into *out; 0, or -1 when the
 * store could not be read (try again later) */
int bounce_match(struct hstore *store, const struct report *r, int64_t now_ms,
                 struct bounce_outcome *out);

#endif
