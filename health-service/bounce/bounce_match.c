/* bounce_match.c - a parsed report matched to a tracked copy and
 * classified (bounce_match.h). Reads the store (hstore_stats_email for a
 * token's email, hstore_stats_copy for the copy); writes nothing.
 * Threads: the bounce reader's. */
#include "bounce_match.h"
#include "errbuf.h"
#include "hstore.h"
#include "timeutil.h"
#include "verp.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char *const result_names[BOUNCE_RESULTS] = {
    [BOUNCE_BOUNCED] = "bounced",     [BOUNCE_COMPLAINED] = "complained",
    [BOUNCE_IGNORED] = "ignored",     [BOUNCE_UNMATCHED] = "unmatched",
    [BOUNCE_MALFORMED] = "malformed",
};

const char *bounce_result_name(enum bounce_result r)
{
    return r < BOUNCE_RESULTS ? result_names[r] : "?";
}

/* copy_of_token - the copy a VERP address names: 0 with *t filled, 1
 * when it is no VERP address or names no tracked copy, -1 store error */
static int copy_of_token(struct hstore *store, const char *addr, struct hstore_stats *t)
{
    int64_t email_id;
    char hex[VERP_HEX_LEN + 1], mid[1000];
    if (verp_parse(addr, NULL, &email_id, hex) != 0)
        return 1;
    struct hstore_stats e;
    int rc = hstore_stats_email(store, email_id, NULL, &e);
    if (rc != 0)
        return rc;
    /* the broadcast's Message-ID <email-{id}@{domain}> gives the domain */
    const char *at = strrchr(e.message_id, '@');
    size_t n = at ? strlen(at + 1) : 0;
    char domain[256];
    rc = 1;
    if (n >= 2 && n < sizeof domain && at[n] == '>') {
        memcpy(domain, at + 1, n - 1);
        domain[n - 1] = '\0';
        if (verp_message_id(email_id, hex, domain, mid, sizeof mid) == 0)
            rc = hstore_stats_copy(store, mid, t);
    }
    hstore_stats_cleanup(&e);
    return rc;
}

/* find_copy - the copy r is about into *t: 0, 1 none (why set), -1 */
static int find_copy(struct hstore *store, const struct report *r, struct hstore_stats *t,
                     char *why, size_t whylen)
{
    const char *token = NULL;
    for (size_t i = 0; i < r->naddrs; i++) {
        int rc = copy_of_token(store, r->addrs[i], t);
        if (rc <= 0)
            return rc;
        if (!token && strncasecmp(r->addrs[i], VERP_PREFIX, strlen(VERP_PREFIX)) == 0)
            token = r->addrs[i];
    }
    if (r->returned_mid) {
        int rc = hstore_stats_copy(store, r->returned_mid, t);
        if (rc <= 0)
            return rc;
    }
    if (token)
        errbuf_set(why, whylen, "%.300s names no tracked copy", token);
    else
        errbuf_set(why, whylen, "no VERP address");
    if (r->returned_mid)
        errbuf_set(why + strlen(why), whylen - strlen(why),
                   " and the returned Message-ID %.300s is no tracked copy", r->returned_mid);
    else
        errbuf_set(why + strlen(why), whylen - strlen(why), " and no returned Message-ID");
    return 1;
}

/* copy_text - s into out[len] (cut to fit) */
static void copy_text(char *out, size_t len, const char *s)
{
    snprintf(out, len, "%s", s ? s : "");
}

/* classify_dsn - the group about the copy's recipient, and what it means */
static void classify_dsn(const struct report *r, const struct hstore_stats *t,
                         struct bounce_outcome *o)
{
    const struct report_rcpt *g = NULL;
    for (size_t i = 0; i < r->nrcpts && !g; i++) {
        const struct report_rcpt *x = &r->rcpts[i];
        if ((x->final_rcpt && strcasecmp(x->final_rcpt, t->recipient) == 0) ||
            (x->original_rcpt && strcasecmp(x->original_rcpt, t->recipient) == 0))
            g = x;
    }
    if (!g) {
        const struct report_rcpt *x = &r->rcpts[0];
        o->result = BOUNCE_UNMATCHED;
        errbuf_set(o->why, sizeof o->why,
                   "the report is about %.300s, the copy %.300s went to %.300s",
                   x->final_rcpt ? x->final_rcpt : x->original_rcpt, t->message_id, t->recipient);
        return;
    }
    bool failed = strcmp(g->action, "failed") == 0;
    if (!failed || g->status[0] == '2') {
        o->result = BOUNCE_IGNORED;
        errbuf_set(o->why, sizeof o->why, "Action %.40s, Status %s: no bounce", g->action,
                   g->status);
        return;
    }
    o->result = BOUNCE_BOUNCED;
    o->ev.soft = g->status[0] == '4';
    copy_text(o->status, sizeof o->status, g->status);
    copy_text(o->diagnostic, sizeof o->diagnostic, g->diagnostic);
    o->ev.status = o->status;
    o->ev.diagnostic = o->diagnostic;
}

/* classify_arf - a complaint, unless another kind of feedback report */
static void classify_arf(const struct report *r, const struct hstore_stats *t,
                         struct bounce_outcome *o)
{
    static const char *const complaints[] = {"abuse", "fraud", "virus", "other"};
    if (r->original_rcpt_to && strcasecmp(r->original_rcpt_to, t->recipient) != 0) {
        o->result = BOUNCE_UNMATCHED;
        errbuf_set(o->why, sizeof o->why, "Original-Rcpt-To %.300s, the copy %.300s went to %.300s",
                   r->original_rcpt_to, t->message_id, t->recipient);
        return;
    }
    for (size_t i = 0; i < sizeof complaints / sizeof complaints[0]; i++) {
        if (strcmp(r->feedback_type, complaints[i]) == 0) {
            o->result = BOUNCE_COMPLAINED;
            o->ev.complained = true;
            copy_text(o->feedback_type, sizeof o->feedback_type, complaints[i]);
            o->ev.feedback_type = o->feedback_type;
            return;
        }
    }
    o->result = BOUNCE_IGNORED;
    errbuf_set(o->why, sizeof o->why, "Feedback-Type %.60s: no complaint", r->feedback_type);
}

int bounce_match(struct hstore *store, const struct report *r, int64_t now_ms,
                 struct bounce_outcome *out)
{
    struct hstore_stats t;
    memset(out, 0, sizeof *out);
    int rc = find_copy(store, r, &t, out->why, sizeof out->why);
    if (rc < 0)
        return -1;
    if (rc == 1) {
        out->result = BOUNCE_UNMATCHED;
        return 0;
    }
    if (r->kind == REPORT_DSN)
        classify_dsn(r, &t, out);
    else
        classify_arf(r, &t, out);
    copy_text(out->mid, sizeof out->mid, t.message_id);
    copy_text(out->recipient, sizeof out->recipient, t.recipient);
    copy_text(out->domain, sizeof out->domain, t.domain);
    time_rfc3339_ms(now_ms, out->at, sizeof out->at);
    out->ev.message_id = out->mid;
    out->ev.email_id = t.email_id;
    out->ev.recipient = out->recipient;
    out->ev.domain = out->domain;
    out->ev.at = out->at;
    hstore_stats_cleanup(&t);
    return 0;
}
