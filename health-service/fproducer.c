/* fproducer.c - a producer of the feedback topic (fproducer.h): the
 * librdkafka handle, its delivery reports into the senders' flags, the
 * bounded wait, the replacement after a fatal error. */
#include "fproducer.h"
#include "errbuf.h"
#include "kafka.h"
#include "log.h"
#include "timeutil.h"
#include "xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DESTROY_TIMEOUT_MS 5000

struct fproducer {
    rd_kafka_t *rk;
    char *brokers, *client_id, *topic;
    const char *const *extra; /* borrowed */
};

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    bool *delivered = m->_private;
    if (delivered)
        *delivered = m->err == RD_KAFKA_RESP_ERR_NO_ERROR;
    if (m->err)
        log_warn("feedback producer: an event was not delivered: %s", rd_kafka_err2str(m->err));
}

static rd_kafka_t *handle_new(const struct fproducer *p, char *errbuf, size_t errlen)
{
    rd_kafka_conf_t *conf = kafka_conf_new(p->brokers, p->client_id, p->extra, errbuf, errlen);
    if (!conf)
        return NULL;
    return kafka_producer_new(conf, FPRODUCER_TIMEOUT_MS, dr_cb, errbuf, errlen);
}

struct fproducer *fproducer_new(const char *brokers, const char *client_id,
                                const char *const *extra, const char *topic, char *errbuf,
                                size_t errlen)
{
    struct fproducer *p = xcalloc(1, sizeof *p);
    p->extra = extra;
    p->brokers = xstrdup(brokers);
    p->client_id = xstrdup(client_id);
    p->topic = xstrdup(topic);
    p->rk = handle_new(p, errbuf, errlen);
    if (!p->rk) {
        fproducer_free(p);
        return NULL;
    }
    return p;
}

int fproducer_send(struct fproducer *p, const char *key, const char *value, bool *delivered,
                   char *errbuf, size_t errlen)
{
    *delivered = false;
    rd_kafka_resp_err_t err = rd_kafka_producev(
        p->rk, RD_KAFKA_V_TOPIC(p->topic), RD_KAFKA_V_KEY(key, strlen(key)),
        RD_KAFKA_V_VALUE((void *)value, strlen(value)), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_OPAQUE(delivered), RD_KAFKA_V_END);
    if (err) {
        errbuf_set(errbuf, errlen, "%s", rd_kafka_err2str(err));
        return -1;
    }
    return 0;
}

void fproducer_wait(struct fproducer *p, const atomic_bool *stop)
{
    int64_t end = time_mono_ms() + FPRODUCER_TIMEOUT_MS + 2000;
    while (rd_kafka_outq_len(p->rk) > 0 && time_mono_ms() < end && !atomic_load(stop))
        rd_kafka_flush(p->rk, 200);
    if (rd_kafka_outq_len(p->rk) > 0) {
        rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        while (rd_kafka_outq_len(p->rk) > 0)
            rd_kafka_poll(p->rk, 50);
    }
    char reason[256];
    if (rd_kafka_fatal_error(p->rk, reason, sizeof reason) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        char err[256];
        log_error("feedback producer failed (%s): a new one", reason);
        rd_kafka_t *fresh = handle_new(p, err, sizeof err);
        if (fresh) {
            kafka_destroy_bounded(p->rk, DESTROY_TIMEOUT_MS);
            p->rk = fresh;
        } else {
            log_error("feedback producer: %s", err);
        }
    }
}

void fproducer_free(struct fproducer *p)
{
    if (!p)
        return;
    if (p->rk) {
        rd_kafka_flush(p->rk, 0);
        kafka_destroy_bounded(p->rk, DESTROY_TIMEOUT_MS);
    }
    free(p->brokers);
    free(p->client_id);
    free(p->topic);
    free(p);
}
