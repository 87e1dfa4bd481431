/* report.h - delivery status notifications (RFC 3464) and feedback
 * reports (RFC 5965, ARF) read from a raw message, through libetpan's
 * MIME parser. What a report says, not what it means for our copies:
 * matching and classifying are bounce_match.c's.
 *
 * A report is a multipart/report whose report-type is delivery-status
 * (a message/delivery-status part: one group of per-message fields, then
 * one group per recipient) or feedback-report (a message/feedback-report
 * part: one group of fields). The returned message (message/rfc822) or
 * its headers (text/rfc822-headers) give the original Message-ID.
 *
 * Owns: a parsed struct report and every string in it (report_cleanup).
 * Pure, any thread; the input is borrowed for the call.
 */
#ifndef REPORT_H
#define REPORT_H

#include <stddef.h>

enum report_kind {
    REPORT_DSN = 1, /* report-type=delivery-status */
    REPORT_ARF,     /* report-type=feedback-report */
};

/* a DSN's per-recipient group; strings unfolded, NULL when absent */
struct report_rcpt {
    char *final_rcpt;    /* Final-Recipient's address (after "rfc822;"), no brackets */
    char *original_rcpt; /* Original-Recipient's address */
    char *action;        /* lower-cased: failed, delayed, delivered, relayed, expanded */
    char *status;        /* "5.1.1" as written */
    char *diagnostic;    /* Diagnostic-Code: "smtp; 550 5.1.1 ..." */
};

#define REPORT_MAX_ADDRS 8
#define REPORT_MAX_RCPTS 64

struct report {
    enum report_kind kind;
    /* where the report says the original came from or this report went
     * to, VERP candidates in this order: the report's Delivered-To,
     * X-Original-To and To; an ARF's Original-Mail-From; the returned
     * message's Return-Path. Bare addresses, no brackets. */
    char *addrs[REPORT_MAX_ADDRS];
    size_t naddrs;
    char *returned_mid; /* the returned message's Message-ID, <...>; NULL */
    /* REPORT_DSN */
    struct report_rcpt *rcpts;
    size_t nrcpts;
    /* REPORT_ARF (NULL when absent) */
    char *feedback_type;      /* lower-cased */
    char *original_rcpt_to;   /* bare address */
    char *original_mail_from; /* bare address */
    char *arrival_date;
    char *reported_domain;
    char *user_agent;
};

/* report_parse - the report in msg[len] into *out: 0; or -1 with why
 * ("not a multipart/report", "no message/delivery-status part", "a
 * recipient without Final-Recipient", ...) and *out empty. A per-recipient
 * group needs Final-Recipient or Original-Recipient, Action and Status; a
 * feedback report needs Feedback-Type. */
int report_parse(const char *msg, size_t len, struct report *out, char *why, size_t whylen);
/* report_cleanup - free what report_parse filled; an empty report is fine */
void report_cleanup(struct report *r);

#endif
