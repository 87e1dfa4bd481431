/* feedback.c - feedback-events to suppressions (feedback.h): kconsumer's
 * pipeline, feedback_prepare decoding batch k+1 on the consumer thread
 * while feedback_apply stores batch k on the writer thread. */
#include "feedback.h"
#include "addr.h"
#include "event.h"
#include "kconsumer.h"
#include "log.h"
#include "metrics.h"
#include "suppress.h"
#include "xalloc.h"

#include <stdlib.h>
#include <string.h>

enum fb_kind { FB_HARD, FB_SOFT, FB_COMPLAINT, FB_SUMMARY, FB_INVALID, FB_KINDS };
static const char *const fb_kind_names[FB_KINDS] = {"hard_bounce", "soft_bounce", "complaint",
                                                    "placement_summary", "invalid"};

struct feedback {
    struct kconsumer *consumer;
    struct store *store;
    struct outbox_publisher *outbox;
    const char *user_topic;
    struct metric *counted[FB_KINDS]; /* feedback_events_total{type} */
};

/* a decoded batch: the addresses to suppress and what was counted */
struct fb_work {
    struct addr *addrs;
    struct suppress_item *items;
    size_t n;
    size_t counts[FB_KINDS];
};

/* classify - one message into w (an item when it suppresses); its kind */
static enum fb_kind classify(struct fb_work *w, const struct kmsg *m)
{
    char why[256];
    struct event ev;
    if (!m->value ||
        event_decode(m->value, m->value_len, EVENT_ON_FEEDBACK_TOPIC, &ev, why, sizeof why) != 0) {
        log_warn("feedback event skipped topic=%s partition=%d offset=%lld: %s", m->topic,
                 (int)m->partition, (long long)m->offset, m->value ? why : "no value");
        return FB_INVALID;
    }
    if (ev.type == EVENT_PLACEMENT_SUMMARY) {
        event_cleanup(&ev);
        return FB_SUMMARY;
    }
    const struct event_email_feedback *f = &ev.feedback;
    enum fb_kind kind = f->complained ? FB_COMPLAINT : f->soft ? FB_SOFT : FB_HARD;
    if (kind != FB_SOFT) {
        struct addr *a = &w->addrs[w->n];
        if (addr_parse(f->recipient, a, why, sizeof why) != 0) { /* decoded: cannot happen */
            log_warn("feedback event skipped topic=%s partition=%d offset=%lld: recipient: %s",
                     m->topic, (int)m->partition, (long long)m->offset, why);
            kind = FB_INVALID;
        } else {
            w->items[w->n++] = (struct suppress_item){
                .a = a,
                .reason = kind == FB_HARD ? "hard_bounce" : "complaint",
                .email_ref = f->email_id,
            };
        }
    }
    event_cleanup(&ev);
    return kind;
}

static void *feedback_prepare(void *arg, const struct kmsg *msgs, size_t n)
{
    (void)arg;
    struct fb_work *w = xcalloc(1, sizeof *w);
    w->addrs = xcalloc(n ? n : 1, sizeof *w->addrs);
    w->items = xcalloc(n ? n : 1, sizeof *w->items);
    for (size_t i = 0; i < n; i++)
        w->counts[classify(w, &msgs[i])]++;
    return w;
}

static int feedback_apply(void *arg, void *work)
{
    struct feedback *f = arg;
    struct fb_work *w = work;
    if (suppress_add_batch(f->store, f->outbox, f->user_topic, w->items, w->n) != 0)
        return -1; /* the consumer applies the same batch again */
    for (int k = 0; k < FB_KINDS; k++)
        metric_add(f->counted[k], (double)w->counts[k]);
    return 0;
}

static void feedback_release(void *arg, void *work)
{
    (void)arg;
    struct fb_work *w = work;
    if (!w)
        return;
    free(w->addrs);
    free(w->items);
    free(w);
}

struct feedback *feedback_start(const struct feedback_config *cfg, char *errbuf, size_t errlen)
{
    struct feedback *f = xcalloc(1, sizeof *f);
    f->store = cfg->store;
    f->outbox = cfg->outbox;
    f->user_topic = cfg->user_topic;
    for (int k = 0; k < FB_KINDS; k++)
        f->counted[k] = metrics_counter(
            cfg->metrics, "feedback_events_total",
            "feedback-events consumed, by type (hard and complaint suppress; invalid: skipped)",
            (const char *[]){"type", fb_kind_names[k], NULL});
    const char *topics[] = {cfg->topic, NULL};
    struct kconsumer_config kc = {
        .brokers = cfg->brokers,
        .group_id = FEEDBACK_GROUP_ID,
        .topics = topics,
        .client_id = "warmup-service",
        .extra = cfg->extra,
        .prepare = feedback_prepare,
        .apply = feedback_apply,
        .release = feedback_release,
        .arg = f,
    };
    f->consumer = kconsumer_start(&kc, errbuf, errlen);
    if (!f->consumer) {
        free(f);
        return NULL;
    }
    return f;
}

void feedback_stop(struct feedback *f)
{
    if (!f)
        return;
    kconsumer_stop(f->consumer);
    free(f);
}

bool feedback_kafka_up(struct feedback *f)
{
    struct kconsumer_stats ks;
    kconsumer_stats(f->consumer, &ks);
    return ks.kafka_up;
}
