/* bounce.c - the bounce mailbox reader (bounce.h): its thread, a round,
 * the producer of feedback-events and the reports it skips.
 *
 * Thread "bounce" (one, started by bounce_start when BOUNCE_MAILBOX is
 * set): a round every CHECK_INTERVAL, of its own, so a slow mailbox or a
 * Kafka outage delays nothing else. SIGPIPE is blocked in it for its life
 * (IMAP writes to a dropped connection fail with EPIPE instead). It owns
 * the mailbox session, the producer and the skip list; it writes to the
 * store (hstore_apply_feedback) and the metrics, which lock themselves.
 *
 * A round: UNSEEN UIDs of the folder, at most ROUND_MAX reports fetched
 * and parsed one by one; a bounce or complaint recorded in the store,
 * then produced (opaque: its item); a flush waits for the delivery
 * reports (bounded: message.timeout.ms, then what is left is purged);
 * the reports whose events were delivered and those that ask for nothing
 * are flagged \Seen (or moved) in one command and counted.
 */
#include "bounce.h"
#include "bounce_match.h"
#include "errbuf.h"
#include "event.h"
#include "hstore.h"
#include "kafka.h"
#include "log.h"
#include "mailbox.h"
#include "metrics.h"
#include "report.h"
#include "timeutil.h"
#include "xalloc.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROUND_MAX 500                       /* reports read per round */
#define MAX_REPORT_BYTES (10 * 1024 * 1024) /* a larger message is malformed */
#define MESSAGE_TIMEOUT_MS 10000            /* librdkafka message.timeout.ms */
#define UNMATCHED_RETRY_MS (30 * 60 * 1000) /* an unmatched report is tried again this long */
#define DESTROY_TIMEOUT_MS 5000

/* a report this process leaves alone (malformed), or tries again for a
 * while (unmatched) */
struct skip {
    uint32_t uid;
    bool permanent;
    int64_t first_ms;
};

/* a report of the round */
struct item {
    uint32_t uid;
    enum bounce_result result;
    bool produced, delivered;
};

struct bounce_reader {
    struct mailbox *mb;
    struct bounce_config cfg;
    char *topic;
    rd_kafka_t *rk;
    pthread_t thread;
    bool started;
    atomic_bool stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint32_t uidvalidity;
    struct skip *skip; /* by uid */
    size_t nskip;
    struct metric *m_reports[BOUNCE_RESULTS], *m_errors;
    char last_err[256]; /* the last round's failure, logged once */
};

/* ---- the skip list ----------------------------------------------------- */

static struct skip *skip_find(struct bounce_reader *b, uint32_t uid)
{
    size_t lo = 0, hi = b->nskip;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (b->skip[mid].uid == uid)
            return &b->skip[mid];
        if (b->skip[mid].uid < uid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static struct skip *skip_add(struct bounce_reader *b, uint32_t uid, bool permanent, int64_t now)
{
    size_t at = 0, hi = b->nskip;
    while (at < hi) {
        size_t mid = at + (hi - at) / 2;
        if (b->skip[mid].uid < uid)
            at = mid + 1;
        else
            hi = mid;
    }
    b->skip = xreallocarray(b->skip, b->nskip + 1, sizeof *b->skip);
    memmove(&b->skip[at + 1], &b->skip[at], (b->nskip - at) * sizeof *b->skip);
    b->skip[at] = (struct skip){.uid = uid, .permanent = permanent, .first_ms = now};
    b->nskip++;
    return &b->skip[at];
}

/* ---- the producer ------------------------------------------------------ */

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    struct item *it = m->_private;
    if (!it)
        return;
    it->delivered = m->err == RD_KAFKA_RESP_ERR_NO_ERROR;
    if (m->err)
        log_warn("bounce: event for report uid=%u not delivered: %s", (unsigned)it->uid,
                 rd_kafka_err2str(m->err));
}

static rd_kafka_t *producer_new(const struct bounce_config *cfg, char *errbuf, size_t errlen)
{
    rd_kafka_conf_t *conf =
        kafka_conf_new(cfg->brokers, "health-service-bounces", cfg->kafka_extra, errbuf, errlen);
    if (!conf)
        return NULL;
    return kafka_producer_new(conf, MESSAGE_TIMEOUT_MS, dr_cb, errbuf, errlen);
}

/* wait_deliveries - until every produced message has its delivery report:
 * MESSAGE_TIMEOUT_MS and a little more, then (or on stop) the rest purged,
 * so no report refers to the round's items afterwards */
static void wait_deliveries(struct bounce_reader *b)
{
    int64_t end = time_mono_ms() + MESSAGE_TIMEOUT_MS + 2000;
    while (rd_kafka_outq_len(b->rk) > 0 && time_mono_ms() < end && !atomic_load(&b->stop))
        rd_kafka_flush(b->rk, 200);
    if (rd_kafka_outq_len(b->rk) > 0) {
        rd_kafka_purge(b->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        while (rd_kafka_outq_len(b->rk) > 0)
            rd_kafka_poll(b->rk, 50);
    }
    char reason[256];
    if (rd_kafka_fatal_error(b->rk, reason, sizeof reason) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        char err[256];
        log_error("bounce: kafka producer failed (%s): a new one", reason);
        rd_kafka_t *fresh = producer_new(&b->cfg, err, sizeof err);
        if (fresh) {
            kafka_destroy_bounded(b->rk, DESTROY_TIMEOUT_MS);
            b->rk = fresh;
        }
    }
}

/* ---- a round ----------------------------------------------------------- */

/* printable - s with control and 8-bit bytes as '?', for a log line */
static const char *printable(const char *s, char *out, size_t len)
{
    size_t i = 0;
    for (; s && s[i] && i + 1 < len; i++)
        out[i] = (unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f ? '?' : s[i];
    out[i] = '\0';
    return out;
}

/* left_alone - a malformed report, or an unmatched one the first time:
 * counted and logged once */
static void left_alone(struct bounce_reader *b, uint32_t uid, enum bounce_result r, const char *why,
                       int64_t now)
{
    char p[600];
    struct skip *s = skip_find(b, uid);
    if (!s) {
        s = skip_add(b, uid, r == BOUNCE_MALFORMED, now);
        metric_inc(b->m_reports[r]);
        log_warn("bounce report uid=%u result=%s: %s (left unseen)", (unsigned)uid,
                 bounce_result_name(r), printable(why, p, sizeof p));
    } else if (now - s->first_ms > UNMATCHED_RETRY_MS) {
        s->permanent = true; /* its copy never turned up */
    }
}

/* publish - record o in the store and produce its event; false when the
 * report must wait for a later round */
static bool publish(struct bounce_reader *b, struct item *it, const struct bounce_outcome *o)
{
    const struct hstore_feedback f = {.complained = o->ev.complained,
                                      .soft = o->ev.soft,
                                      .status = o->ev.status,
                                      .diagnostic = o->ev.diagnostic,
                                      .feedback_type = o->ev.feedback_type};
    bool changed;
    if (hstore_apply_feedback(b->cfg.store, o->ev.message_id, &f, &changed) < 0)
        return false; /* logged by the store */
    char *value = event_encode_feedback(&o->ev);
    rd_kafka_resp_err_t err = rd_kafka_producev(
        b->rk, RD_KAFKA_V_TOPIC(b->topic), RD_KAFKA_V_KEY(o->ev.recipient, strlen(o->ev.recipient)),
        RD_KAFKA_V_VALUE(value, strlen(value)), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_OPAQUE(it), RD_KAFKA_V_END);
    free(value);
    if (err) {
        log_warn("bounce: cannot produce the event of report uid=%u: %s", (unsigned)it->uid,
                 rd_kafka_err2str(err));
        return false;
    }
    it->produced = true;
    const char *rec = changed ? "new" : "already";
    if (o->ev.complained)
        log_info("bounce report uid=%u result=complained message_id=%s email_id=%lld "
                 "recipient=%s feedback_type=%s recorded=%s",
                 (unsigned)it->uid, o->ev.message_id, (long long)o->ev.email_id, o->ev.recipient,
                 o->ev.feedback_type, rec);
    else
        log_info("bounce report uid=%u result=bounced message_id=%s email_id=%lld recipient=%s "
                 "bounce=%s status=%s recorded=%s",
                 (unsigned)it->uid, o->ev.message_id, (long long)o->ev.email_id, o->ev.recipient,
                 o->ev.soft ? "soft" : "hard", o->ev.status, rec);
    return true;
}

/* read_one - fetch, parse, match report uid into *it; -1 when the round
 * must stop (connection or store failure), else 0 */
static int read_one(struct bounce_reader *b, struct item *it, int64_t now, char *err, size_t errlen)
{
    char *msg, why[512];
    size_t len;
    it->result = BOUNCE_RESULTS; /* nothing to do (yet) */
    int rc = mailbox_fetch(b->mb, it->uid, MAX_REPORT_BYTES, &msg, &len, why, sizeof why);
    if (rc < 0) {
        errbuf_set(err, errlen, "%s", why);
        return -1;
    }
    if (rc == 2)
        left_alone(b, it->uid, BOUNCE_MALFORMED, why, now);
    if (rc > 0)
        return 0; /* too large, or expunged meanwhile */
    struct report r;
    if (report_parse(msg, len, &r, why, sizeof why) != 0) {
        free(msg);
        left_alone(b, it->uid, BOUNCE_MALFORMED, why, now);
        return 0;
    }
    free(msg);
    struct bounce_outcome o;
    rc = bounce_match(b->cfg.store, &r, now, &o);
    report_cleanup(&r);
    if (rc != 0) {
        errbuf_set(err, errlen, "the store could not be read");
        return -1;
    }
    char p[600];
    switch (o.result) {
    case BOUNCE_UNMATCHED:
        left_alone(b, it->uid, BOUNCE_UNMATCHED, o.why, now);
        break;
    case BOUNCE_IGNORED:
        it->result = BOUNCE_IGNORED;
        log_info("bounce report uid=%u result=ignored message_id=%s: %s", (unsigned)it->uid, o.mid,
                 printable(o.why, p, sizeof p));
        break;
    default:
        if (publish(b, it, &o))
            it->result = o.result;
        break;
    }
    return 0;
}

/* round_failed - count it; log it when it is news */
static void round_failed(struct bounce_reader *b, const char *err)
{
    metric_inc(b->m_errors);
    if (strcmp(err, b->last_err) != 0)
        log_warn("bounce: mailbox %s: %s (tried again every round)", mailbox_describe(b->mb), err);
    snprintf(b->last_err, sizeof b->last_err, "%s", err);
}

static void round_once(struct bounce_reader *b)
{
    uint32_t *uids = NULL, uidvalidity = 0;
    size_t n = 0, nitems = 0, ndone = 0;
    char err[512] = "";
    int64_t now = time_now_ms();
    if (mailbox_unseen(b->mb, &uids, &n, &uidvalidity, err, sizeof err) != 0) {
        round_failed(b, err);
        return;
    }
    if (uidvalidity != b->uidvalidity) { /* another folder's UIDs: forget */
        b->uidvalidity = uidvalidity;
        free(b->skip);
        b->skip = NULL;
        b->nskip = 0;
    }
    struct item *items = xcalloc(n ? n : 1, sizeof *items);
    for (size_t i = 0; i < n && nitems < ROUND_MAX && !atomic_load(&b->stop); i++) {
        const struct skip *s = skip_find(b, uids[i]);
        if (s && s->permanent)
            continue;
        struct item *it = &items[nitems++];
        it->uid = uids[i];
        if (read_one(b, it, now, err, sizeof err) != 0)
            break;
        err[0] = '\0';
    }
    if (nitems)
        wait_deliveries(b);
    uint32_t *done = xcalloc(nitems ? nitems : 1, sizeof *done);
    for (size_t i = 0; i < nitems; i++) {
        const struct item *it = &items[i];
        if (it->result == BOUNCE_IGNORED || (it->produced && it->delivered))
            done[ndone++] = it->uid;
    }
    char derr[512];
    if (mailbox_done(b->mb, done, ndone, derr, sizeof derr) != 0) {
        log_warn("bounce: %zu processed reports not flagged, read again next round: %s", ndone,
                 derr);
    } else {
        for (size_t i = 0; i < nitems; i++)
            if (items[i].result == BOUNCE_IGNORED || (items[i].produced && items[i].delivered))
                metric_inc(b->m_reports[items[i].result]);
    }
    free(done);
    free(items);
    free(uids);
    if (err[0]) {
        round_failed(b, err);
        return;
    }
    if (b->last_err[0])
        log_info("bounce: mailbox %s readable again", mailbox_describe(b->mb));
    b->last_err[0] = '\0';
}

static void *reader_main(void *arg)
{
    struct bounce_reader *b = arg;
    pthread_setname_np(pthread_self(), "bounce"); /* top -H, perf, gdb */
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, NULL);
    while (!atomic_load(&b->stop)) {
        int64_t next = time_mono_ms() + (int64_t)b->cfg.interval_s * 1000;
        if (hstore_leader(b->cfg.store)) /* one instance reads the mailbox */
            round_once(b);
        pthread_mutex_lock(&b->mu);
        while (!atomic_load(&b->stop) && time_mono_ms() < next) {
            struct timespec dl = time_mono_deadline(next - time_mono_ms());
            pthread_cond_timedwait(&b->cv, &b->mu, &dl);
        }
        pthread_mutex_unlock(&b->mu);
    }
    mailbox_free(b->mb); /* LOGOUT on this thread, with SIGPIPE blocked */
    b->mb = NULL;
    return NULL;
}

/* ---- start / stop ------------------------------------------------------ */

struct bounce_reader *bounce_new(const char *json, char *errbuf, size_t errlen)
{
    char err[448];
    struct mailbox *mb = mailbox_new(json, err, sizeof err);
    if (!mb) {
        errbuf_set(errbuf, errlen, "BOUNCE_MAILBOX: %s", err);
        return NULL;
    }
    struct bounce_reader *b = xcalloc(1, sizeof *b);
    b->mb = mb;
    pthread_mutex_init(&b->mu, NULL);
    time_cond_init_mono(&b->cv);
    return b;
}

int bounce_start(struct bounce_reader *b, const struct bounce_config *cfg, char *errbuf,
                 size_t errlen)
{
    b->cfg = *cfg;
    b->topic = xstrdup(cfg->topic);
    b->cfg.topic = b->topic;
    for (int r = 0; r < BOUNCE_RESULTS; r++)
        b->m_reports[r] = metrics_counter(
            cfg->metrics, "health_bounce_reports_total",
            "Reports read from the bounce mailbox, by what they became",
            (const char *[]){"result", bounce_result_name((enum bounce_result)r), NULL});
    b->m_errors = metrics_counter(cfg->metrics, "health_bounce_round_errors_total",
                                  "Bounce mailbox rounds that failed (IMAP, store)", NULL);
    b->rk = producer_new(&b->cfg, errbuf, errlen);
    if (!b->rk)
        return -1;
    int rc = pthread_create(&b->thread, NULL, reader_main, b);
    if (rc != 0) {
        errbuf_set(errbuf, errlen, "cannot start the bounce mailbox reader: %s", strerror(rc));
        return -1;
    }
    b->started = true;
    log_info("bounce: reading %s every %d s, publishing to %s", mailbox_describe(b->mb),
             cfg->interval_s, b->topic);
    return 0;
}

void bounce_stop(struct bounce_reader *b)
{
    if (!b)
        return;
    atomic_store(&b->stop, true);
    pthread_mutex_lock(&b->mu);
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
    if (b->started)
        pthread_join(b->thread, NULL);
    mailbox_free(b->mb); /* not started: never connected */
    if (b->rk) {
        rd_kafka_flush(b->rk, 0);
        kafka_destroy_bounded(b->rk, DESTROY_TIMEOUT_MS);
    }
    free(b->skip);
    free(b->topic);
    pthread_mutex_destroy(&b->mu);
    pthread_cond_destroy(&b->cv);
    free(b);
}
