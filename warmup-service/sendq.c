/* sendq.c - email-send requests to transactional copies (sendq.h), on
 * kconsumer's writer thread, one request at a time in offset order. */
#include "sendq.h"
#include "addr.h"
#include "app.h"
#include "event.h"
#include "jsonx.h"
#include "kconsumer.h"
#include "log.h"
#include "messages.h"
#include "metrics.h"
#include "outbox.h"
#include "store.h"
#include "xalloc.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REQUEST_MAX (64 * 1024) /* a longer value is refused unread */

enum { SQ_QUEUED, SQ_REFUSED, SQ_REPLAYED, SQ_RESULTS };
static const char *const sq_names[SQ_RESULTS] = {"queued", "refused", "replayed"};

struct sendq {
    struct kconsumer *consumer;
    struct sendq_config cfg;
    struct metric *counted[SQ_RESULTS];
};

/* refuse - the email.failed answering a request that cannot be sent (its
 * Message-ID names the request: partition and offset),
 * into the outbox: 0, or -1 when the store is down (apply again) */
static int refuse(struct sendq *q, const struct kmsg *m, const char *recipient, const char *why)
{
    struct addr a;
    char err[128], mid[400];
    const char *domain = "invalid", *rcpt = "unknown@invalid";
    if (recipient && addr_parse(recipient, &a, err, sizeof err) == 0) {
        rcpt = a.norm;
        domain = a.domain;
    }
    /* unique per request and the same when it is delivered again */
    snprintf(mid, sizeof mid, "<send.%" PRId32 ".%" PRId64 "@%s>", m->partition, m->offset, domain);
    struct event_email_sent ev = {
        .failed = true,
        .message_id = mid,
        .broadcast_id = mid,
        .email_id = 0,
        .recipient = rcpt,
        .domain = domain,
        .smtp_client = "",
        .smtp_reply = why,
    };
    char *text = event_encode_email_sent(&ev);
    int rc = store_add_event(q->cfg.app->store, q->cfg.email_topic, mid, text);
    free(text);
    if (rc == 0) {
        outbox_publisher_notify(q->cfg.app->outbox);
        metric_inc(q->counted[SQ_REFUSED]);
        log_warn("email-send request refused partition=%d offset=%lld domain=%s: %s",
                 (int)m->partition, (long long)m->offset, domain, why);
    }
    return rc;
}

/* one_request - 0 when handled (queued, replayed or refused), -1 when it
 * must be tried again (the store is down) */
static int one_request(struct sendq *q, const struct kmsg *m)
{
    char err[256], key[160];
    json_object *o = NULL, *data = NULL, *uid = NULL;
    const char *type = NULL, *rcpt = NULL, *prio = NULL;
    int64_t version = 0;
    int rc = 0;
    if (!m->value || m->value_len == 0 || m->value_len > REQUEST_MAX) {
        snprintf(err, sizeof err, "the request is empty or over %d bytes", REQUEST_MAX);
        return refuse(q, m, NULL, err);
    }
    if (jsonx_parse_object(m->value, m->value_len, &o, err, sizeof err) != 0)
        return refuse(q, m, NULL, err);
    json_object_object_get_ex(o, "recipient", &uid); /* for the refusal's address */
    if (uid && json_object_is_type(uid, json_type_string))
        rcpt = json_object_get_string(uid);
    /* other fields (userId, a producer's own) are not ours: ignored */
    if (jsonx_get_string(o, "emailType", true, 64, &type, err, sizeof err) != 0 ||
        jsonx_get_string(o, "recipient", true, 1024, &rcpt, err, sizeof err) != 0 ||
        jsonx_get_string(o, "priority", false, 16, &prio, err, sizeof err) != 0 ||
        jsonx_get_int(o, "version", false, 1, 1000000000, &version, NULL, err, sizeof err) != 0) {
        rc = refuse(q, m, rcpt, err);
        goto out;
    }
    if (json_object_object_get_ex(o, "templateData", &data) &&
        json_object_is_type(data, json_type_null))
        data = NULL;
    snprintf(key, sizeof key, "kafka:%s:%" PRId32 ":%" PRId64, m->topic, m->partition, m->offset);
    struct message_req req = {
        .to = rcpt,
        .template_name = type,
        .version = (int)version,
        .data = data,
        .priority = prio,
        .request_key = key,
    };
    struct message_result r;
    messages_submit(q->cfg.app, &req, &r);
    if (r.status == 202) {
        metric_inc(q->counted[r.replayed ? SQ_REPLAYED : SQ_QUEUED]);
        free(r.message_id);
    } else if (r.status >= 500) {
        log_warn("email-send partition=%d offset=%lld: %s; tried again later", (int)m->partition,
                 (long long)m->offset, r.error);
        rc = -1;
    } else {
        rc = refuse(q, m, rcpt, r.error);
    }
out:
    json_object_put(o);
    return rc;
}

/* handler - the batch in offset order; a request that must be tried
 * again stops the batch, which kconsumer applies again (the requests
 * before it replay by their keys) */
static int handler(void *arg, const struct kmsg *msgs, size_t n)
{
    struct sendq *q = arg;
    for (size_t i = 0; i < n; i++)
        if (one_request(q, &msgs[i]) != 0)
            return -1;
    return 0;
}

struct sendq *sendq_start(const struct sendq_config *cfg, char *errbuf, size_t errlen)
{
    struct sendq *q = xcalloc(1, sizeof *q);
    q->cfg = *cfg;
    for (int k = 0; k < SQ_RESULTS; k++)
        q->counted[k] = metrics_counter(
            cfg->app->metrics, "email_send_requests_total",
            "email-send requests consumed: queued as a copy, refused (email.failed), or replayed "
            "(delivered again, its copy stored before)",
            (const char *[]){"result", sq_names[k], NULL});
    const char *topics[] = {cfg->topic, NULL};
    struct kconsumer_config kc = {
        .brokers = cfg->brokers,
        .group_id = cfg->group_id,
        .topics = topics,
        .client_id = "warmup-service-send",
        .extra = cfg->extra,
        .max_batch = 100,
        .batch_wait_ms = 5, /* a request waits for its batch: keep it short */
        .handler = handler,
        .arg = q,
    };
    q->consumer = kconsumer_start(&kc, errbuf, errlen);
    if (!q->consumer) {
        free(q);
        return NULL;
    }
    return q;
}

void sendq_stop(struct sendq *q)
{
    if (!q)
        return;
    kconsumer_stop(q->consumer);
    free(q);
}

bool sendq_kafka_up(struct sendq *q)
{
    struct kconsumer_stats ks;
    kconsumer_stats(q->consumer, &ks);
    return ks.kafka_up;
}
