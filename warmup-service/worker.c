/* worker.c - a sending worker: one thread per SMTP connection of a client.
 * Pops small batches from the client's queue, composes each copy, sends
 * the batch over its own session (kept open across batches) and hands the
 * outcomes to the writer. While the pipeline stops, queued copies are
 * released unsent. The session belongs to this thread only.
 *
 * The client's circuit breaker (shared with the other workers of the
 * client): a batch that timed out or could not connect opens it; while it
 * is open the copies popped are released at once (not charged an attempt;
 * the dispatcher claims no more), and the first worker to see the probe
 * due runs ops->probe, which closes the breaker or opens it again for a
 * longer backoff. The copies after the failure in that batch (skipped)
 * are released too; the one in flight is charged an attempt. */
#include "buf.h"
#include "dkim.h"
#include "errbuf.h"
#include "bqueue.h"
#include "event.h"
#include "log.h"
#include "metrics.h"
#include "mime.h"
#include "msgid.h"
#include "sender_int.h"
#include "throttle.h"
#include "timeutil.h"
#include "unsub.h"
#include "tmpl.h"
#include "xalloc.h"
#include "addr.h"
#include "utf8.h"
#include "verp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BATCH 64
#define MAX_MESSAGE (8 * 1024 * 1024)
#define ENVELOPE_FROM_MAX 320 /* bounces+{token}@{a domain of <= 255} */
#define BUF_KEEP (256 * 1024) /* a message buffer larger than this is freed after use */

static const char *domain_of(const char *addr)
{
    const char *at = strrchr(addr, '@');
    return at ? at + 1 : "";
}

/* make_event - the copy's email.sent, or email.failed with the reply */
static char *make_event(const struct email_run *c, const struct queued_claim *j, const char *msgid,
                        const char *client, const struct smtp_result *res, bool sent)
{
    char reply[600];
    struct event_email_sent ev = {
        .failed = !sent,
        .message_id = msgid,
        .broadcast_id = c->info.message_id,
        .email_id = c->info.id,
        .recipient = j->claim.recipient,
        .domain = domain_of(j->claim.recipient),
        .campaign = c->info.campaign_id,
        .variant = c->info.variant,
        .smtp_client = client,
        .identity = c->info.from,    /* stored normalised */
        .sent_at_ms = time_now_ms(), /* for email.failed: the last attempt */
    };
    if (!sent) {
        if (res->code && strncmp(res->text, "", 1) != 0 &&
            !(res->text[0] >= '0' && res->text[0] <= '9'))
            snprintf(reply, sizeof reply, "%d %s", res->code, res->text);
        else
            snprintf(reply, sizeof reply, "%s", res->text);
        ev.smtp_reply = reply;
    }
    return event_encode_email_sent(&ev);
}

/* retry_delay - exponential backoff with +-25% jitter: each delay is still
 * longer than the previous one (2 * 0.75 > 1.25) */
static int64_t retry_delay(int base_ms, int attempt, unsigned *seed)
{
    int64_t d = base_ms;
    for (int i = 1; i < attempt && d < 3600 * 1000; i++)
        d *= 2;
    if (d > 3600 * 1000)
        d = 3600 * 1000;
    double jitter = 0.75 + 0.5 * (double)rand_r(seed) / ((double)RAND_MAX + 1.0);
    return (int64_t)((double)d * jitter);
}

static void emit(struct sender *s, struct queued_claim *j, enum outcome_kind kind,
                 const struct smtp_result *res, char *event, char *msgid, int64_t due)
{
    struct queued_outcome *o = xcalloc(1, sizeof *o);
    o->c = j->c; /* the claim's reference moves to the outcome */
    o->r.copy_id = j->claim.id;
    o->r.email_id = j->c->info.id;
    o->r.attempts_before = j->claim.attempts;
    o->r.kind = kind;
    o->r.due_at = due;
    if (res) {
        o->r.code = res->code;
        (void)strlcpy_ok(o->r.enhanced, res->enhanced, sizeof o->r.enhanced);
        (void)strlcpy_ok(o->r.text, res->text, sizeof o->r.text);
    }
    o->r.event = event;
    o->r.event_key = msgid;
    o->r.identity_id = j->identity_id;
    o->r.day = j->day;
    o->r.lane = j->claim.lane;
    throttle_done(s->throttle, j->group); /* its provider's connection is free again */
    free(j->claim.recipient);
    free(j->claim.name);
    free(j->claim.data);
    free(j);
    bqueue_push(s->results, o); /* the writer closes its queue only after every worker left */
}

/* compose - the copy's message into b, DKIM-signed when its From domain
 * has keys; -1 with a reason (permanent) */
static int compose(const struct email_run *c, const struct queued_claim *j, const char *msgid,
                   struct dkim_ctx *dk, const struct unsub_config *unsub, struct buf *b, char *err,
                   size_t errlen)
{
    const struct email_info *e = &c->info;
    json_object *data = j->claim.data ? json_tokener_parse(j->claim.data) : NULL;
    struct tmpl_vars v = {.name = j->claim.name,
                          .address = j->claim.recipient,
                          .data = data,
                          .defaults = c->defaults};
    char *subject = tmpl_fill(e->subject, &v, false);
    char *text = tmpl_fill(e->body, &v, false);
    char *html = e->html ? tmpl_fill(e->html, &v, true) : NULL;
    json_object_put(data);
    if (!subject || !text || (e->html && !html)) {
        errbuf_set(err, errlen, "the filled message is over %d bytes", TMPL_FILLED_MAX);
        free(subject);
        free(text);
        free(html);
        return -1;
    }
    struct mime_input in = {
        .from = e->from,
        .from_name = e->from_name,
        .to = j->claim.recipient,
        .to_name = j->claim.name,
        .subject = subject,
        .text = text,
        .html = html,
        .message_id = msgid,
        .date_ms = time_now_ms(),
    };
    char fid[MIME_FEEDBACK_ID_MAX];
    if (mime_feedback_id(e->id, e->from, e->msgid_domain, fid, sizeof fid) == 0)
        in.feedback_id = fid;
    char *unsub_value = unsub_header(unsub, j->claim.recipient, e->id); /* NULL: off */
    in.list_unsubscribe = unsub_value;
    in.one_click = unsub_value != NULL;
    buf_reset(b);
    int rc = mime_compose(&in, b, err, errlen);
    if (rc == 0) /* after composing: the signature covers the final headers */
        rc = dkim_sign_copy(dk, e->from, in.date_ms / 1000, b, err, errlen);
    free(unsub_value);
    free(subject);
    free(text);
    free(html);
    return rc;
}

/* envelope_from - MAIL FROM of a copy: bounces+{token}@{BOUNCE_DOMAIN}
 * (VERP: a bounce names its copy) when BOUNCE_DOMAIN is set, else from
 * (also if the Message-ID had no token, which ours always have) */
static const char *envelope_from(const struct sender *s, const char *msgid, const char *from,
                                 char *out, size_t len)
{
    char tok[VERP_TOKEN_MAX];
    if (!s->cfg.bounce_domain || verp_token_from_message_id(msgid, tok, sizeof tok) != 0 ||
        verp_address(tok, s->cfg.bounce_domain, out, len) != 0)
        return from;
    return out;
}

/* envelope_rcpt - RCPT TO of a copy: with the domain in A-labels when the
 * local part is ASCII (as mime writes To), else as it is (UTF-8: the
 * engine sends it only to a server that offers SMTPUTF8) */
static const char *envelope_rcpt(const char *rcpt, struct addr *a)
{
    size_t n = strlen(rcpt);
    if (utf8_ascii_len(rcpt, n) == n || addr_parse(rcpt, a, NULL, 0) != 0 ||
        addr_ascii(a, NULL, 0) != 0)
        return rcpt;
    return a->norm;
}

static void set_down(struct client_rt *cl, const struct smtp_result *r)
{
    bool down = r->outcome == SMTP_TEMPFAIL && r->code == 0;
    if (down) {
        pthread_mutex_lock(&cl->why_lock);
        snprintf(cl->down_why, sizeof cl->down_why, "%s", r->text);
        pthread_mutex_unlock(&cl->why_lock);
    }
    atomic_store(&cl->down, down);
}

static void handle_result(struct sender *s, struct client_rt *cl, struct queued_claim *j,
                          char *msgid, const struct smtp_result *r, unsigned *seed)
{
    const char *client = cl->cfg->s.name;
    const char *dom = domain_of(j->claim.recipient);
    if (r->outcome == SMTP_SENT) {
        metric_inc(cl->m_sent);
        log_debug("sent email_id=%lld message_id=%s domain=%s client=%s", (long long)j->c->info.id,
                  msgid, dom, client);
        emit(s, j, OUTCOME_SENT, r, make_event(j->c, j, msgid, client, r, true), msgid, 0);
        return;
    }
    metric_inc(cl->m_failed);
    int attempt = j->claim.attempts + 1;
    if (r->outcome == SMTP_TEMPFAIL && attempt <= s->cfg.retry_max) {
        int64_t due = time_now_ms() + retry_delay(s->cfg.retry_base_ms, attempt, seed);
        metric_inc(cl->m_retries);
        log_info("retry email_id=%lld message_id=%s domain=%s attempt=%d reply=%s",
                 (long long)j->c->info.id, msgid, dom, attempt, r->text);
        free(msgid);
        emit(s, j, OUTCOME_RETRY, r, NULL, NULL, due);
        return;
    }
    metric_inc(cl->m_dlq);
    log_warn("dead letter email_id=%lld message_id=%s domain=%s attempts=%d reply=%s",
             (long long)j->c->info.id, msgid, dom, attempt, r->text);
    emit(s, j, OUTCOME_DEAD, r, make_event(j->c, j, msgid, client, r, false), msgid, 0);
}

static void release(struct sender *s, struct queued_claim *j)
{
    emit(s, j, OUTCOME_RELEASE, NULL, NULL, NULL, 0);
}

/* breaker_report - tell the breaker what a batch says about the server;
 * true when the batch could not reach it (a timeout or a failed connect) */
static bool breaker_report(struct client_rt *cl, unsigned epoch, const struct smtp_result *res,
                           size_t k)
{
    const struct smtp_result *down = NULL;
    bool answered = false;
    for (size_t i = 0; i < k; i++) {
        if (!down && (res[i].fail == SMTP_FAIL_TIMEOUT || res[i].fail == SMTP_FAIL_CONNECT))
            down = &res[i];
        answered |= res[i].code != 0;
    }
    if (!down) {
        if (answered)
            smtp_breaker_answered(&cl->br);
        return false;
    }
    if (smtp_breaker_trip(&cl->br, epoch, time_mono_ms(), down->text)) {
        struct smtp_breaker_status st;
        smtp_breaker_status(&cl->br, time_mono_ms(), &st);
        metric_inc(cl->m_trips);
        log_warn("smtp client=%s circuit open: %s; sending stops, next probe in %lld ms",
                 cl->cfg->s.name, down->text, (long long)st.probe_in_ms);
    }
    return true;
}

/* probe_if_due - when the client's breaker is open and its probe due, and
 * no other worker probes: probe the server on a connection of its own */
static void probe_if_due(struct sender *s, struct client_rt *cl, const struct smtp_settings *st)
{
    if (atomic_load(&s->stopping) || !smtp_breaker_probe_begin(&cl->br, time_mono_ms()))
        return;
    char why[256] = "";
    const struct smtp_client_ops *ops = cl->cfg->ops;
    int rc = ops->probe ? ops->probe(st, why, sizeof why) : 0;
    bool abandoned = rc != 0 && atomic_load(&s->cancel_io);
    smtp_breaker_probe_end(&cl->br, rc == 0, abandoned, time_mono_ms(), why);
    if (rc == 0) {
        atomic_store(&cl->down, false);
        log_info("smtp client=%s probe ok: circuit closed, sending resumes", cl->cfg->s.name);
        sender_notify(s);
    } else if (!abandoned) {
        struct smtp_breaker_status bs;
        smtp_breaker_status(&cl->br, time_mono_ms(), &bs);
        log_warn("smtp client=%s probe failed: %s; circuit stays open, next probe in %lld ms",
                 cl->cfg->s.name, why, (long long)bs.probe_in_ms);
    }
}

/* same_priority - a batch holds copies of one priority: high-priority
 * copies at the head of the queue go without the bulk copies behind them,
 * so they do not wait for a whole batch's SMTP round trips */
static bool same_priority(const void *first, const void *next)
{
    const struct queued_claim *a = first, *b = next;
    return (a->c->info.priority > 0) == (b->c->info.priority > 0);
}

void *worker_main(void *arg)
{
    struct worker_arg *wa = arg;
    struct sender *s = wa->s;
    struct client_rt *cl = wa->cl;
    free(wa);
    const struct smtp_client_ops *ops = cl->cfg->ops;
    char err[256];
    struct smtp_settings st = cl->cfg->s; /* this session's: with the shutdown's cancel flag */
    st.cancel = &s->cancel_io;
    void *session = ops->open(&st, err, sizeof err);
    if (!session)
        log_error("smtp client %s: %s", cl->cfg->s.name, err);
    unsigned seed = (unsigned)time_now_ms() ^ (unsigned)(uintptr_t)&seed;
    size_t batch = s->cfg.batch > MAX_BATCH ? MAX_BATCH : (size_t)s->cfg.batch;
    void *items[MAX_BATCH];
    struct queued_claim *sendj[MAX_BATCH];
    char *msgids[MAX_BATCH];
    struct smtp_envelope env[MAX_BATCH];
    char env_from[MAX_BATCH][ENVELOPE_FROM_MAX];
    struct addr env_rcpt[MAX_BATCH];
    struct smtp_result res[MAX_BATCH];
    struct buf bufs[MAX_BATCH];
    for (size_t i = 0; i < MAX_BATCH; i++)
        buf_init(&bufs[i], MAX_MESSAGE);
    struct dkim_ctx *dk = dkim_ctx_new(s->cfg.dkim); /* NULL: no keys */
    for (;;) {
        size_t n = bqueue_pop_batch_while(cl->q, items, batch, 200, same_priority);
        if (!smtp_breaker_closed(&cl->br))
            probe_if_due(s, cl, &st);
        if (n == 0) {
            if (bqueue_closed(cl->q))
                break;
            continue;
        }
        /* the queue is half empty: the dispatcher, which sleeps while the
         * queues are full, refills it now rather than on its idle timer
         * (half: each claim, one SQLite commit, takes many copies) */
        size_t space = bqueue_space(cl->q), len = bqueue_len(cl->q);
        if (space >= len && space - n < len + n)
            sender_notify(s);
        size_t k = 0;
        unsigned epoch = smtp_breaker_epoch(&cl->br);
        bool held = !smtp_breaker_closed(&cl->br); /* open: release, do not send */
        for (size_t i = 0; i < n; i++) {
            struct queued_claim *j = items[i];
            if (held || atomic_load(&s->stopping) || atomic_load(&j->c->paused)) {
                release(s, j);
                continue;
            }
            /* its address was suppressed after the claim: dropped unsent */
            if (store_suppressed_since(s->cfg.store, j->claim.epoch, j->claim.recipient) == 1) {
                emit(s, j, OUTCOME_SUPPRESSED, NULL, NULL, NULL, 0);
                continue;
            }
            char *msgid =
                msgid_copy(j->c->info.id, j->c->info.salt, j->claim.id, j->c->info.msgid_domain);
            if (compose(j->c, j, msgid, dk, s->cfg.unsub, &bufs[k], err, sizeof err) != 0) {
                struct smtp_result r = {.outcome = SMTP_PERMFAIL};
                snprintf(r.text, sizeof r.text, "message not composed: %s", err);
                handle_result(s, cl, j, msgid, &r, &seed);
                continue;
            }
            sendj[k] = j;
            msgids[k] = msgid;
            env[k] = (struct smtp_envelope){
                .from = envelope_from(s, msgid, j->c->info.from, env_from[k], sizeof env_from[k]),
                .rcpt = envelope_rcpt(j->claim.recipient, &env_rcpt[k]),
                .data = bufs[k].data,
                .len = bufs[k].len};
            k++;
        }
        if (k == 0)
            continue;
        metric_set(s->m_active, (double)atomic_fetch_add(&s->active, 1) + 1);
        int64_t t0 = time_mono_ms();
        if (session) {
            ops->send(session, env, k, res);
        } else {
            for (size_t i = 0; i < k; i++) {
                res[i] = (struct smtp_result){.outcome = SMTP_TEMPFAIL};
                snprintf(res[i].text, sizeof res[i].text, "client not available: %s", err);
            }
        }
        metric_observe(cl->m_duration, (double)(time_mono_ms() - t0) / 1000.0);
        metric_set(s->m_active, (double)atomic_fetch_sub(&s->active, 1) - 1);
        set_down(cl, &res[k - 1]);
        bool unreachable = breaker_report(cl, epoch, res, k);
        for (size_t i = 0; i < k; i++) {
            if (res[i].fail == SMTP_FAIL_CANCELLED || (unreachable && res[i].skipped)) {
                free(msgids[i]); /* not attempted, or shutting down: not charged */
                release(s, sendj[i]);
                continue;
            }
            handle_result(s, cl, sendj[i], msgids[i], &res[i], &seed);
        }
        for (size_t i = 0; i < k; i++) /* a rare large copy does not stay */
            buf_trim(&bufs[i], BUF_KEEP);
    }
    for (size_t i = 0; i < MAX_BATCH; i++)
        buf_cleanup(&bufs[i]);
    dkim_ctx_free(dk);
    if (session)
        ops->close(session);
    pthread_mutex_lock(&s->lock);
    atomic_fetch_sub(&s->workers_left, 1);
    pthread_cond_broadcast(&s->workers_done);
    pthread_mutex_unlock(&s->lock);
    return NULL;
}
