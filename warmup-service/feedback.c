/* feedback.c - feedback-events to suppressions and to identities'
 * provider states (feedback.h): kconsumer's pipeline, feedback_prepare
 * decoding batch k+1 on the consumer thread while feedback_apply stores
 * batch k on the writer thread. */
#include "feedback.h"
#include "addr.h"
#include "event.h"
#include "identities.h"
#include "identity_clock.h"
#include "kconsumer.h"
#include "log.h"
#include "metrics.h"
#include "policy.h"
#include "store.h"
#include "suppress.h"
#include "xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum fb_kind { FB_HARD, FB_SOFT, FB_COMPLAINT, FB_SUMMARY, FB_INVALID, FB_KINDS };
static const char *const fb_kind_names[FB_KINDS] = {"hard_bounce", "soft_bounce", "complaint",
                                                    "placement_summary", "invalid"};

#define SUMMARIES_HELP                                                                             \
    "placement.summary events applied to an identity, or ignored (no identity has the address)"

struct feedback {
    struct kconsumer *consumer;
    struct store *store;
    struct outbox_publisher *outbox;
    const char *user_topic;
    const struct policy *policy;
    struct identities *identities;
    struct metric *counted[FB_KINDS]; /* feedback_events_total{type} */
    struct metric *applied, *unknown; /* warmup_placement_summaries_total{result} */
};

/* a summary's decision, kept until its batch is committed */
struct fb_decision {
    bool changed;
    struct policy_decision d;
    char state[16]; /* the new state's name */
};

/* a decoded batch: the addresses to suppress, the placement summaries
 * (their strings owned) and what was counted */
struct fb_work {
    struct addr *addrs;
    struct suppress_item *items;
    size_t n;
    struct identity_summary *sums;
    size_t nsums;
    size_t counts[FB_KINDS];
    /* feedback_apply's */
    struct feedback *f;
    int64_t now_ms;
    struct fb_decision *dec;
    int64_t *ids;
};

/* printable - no control character (the provider goes into log lines) */
static bool printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return false;
    return true;
}

/* add_summary - a decoded placement.summary into w (its identity
 * normalised); false when the identity is not an address or the provider
 * is empty or holds a control character */
static bool add_summary(struct fb_work *w, const struct event_placement_summary *p)
{
    struct addr a;
    char why[128];
    if (addr_parse(p->identity, &a, why, sizeof why) != 0 || !p->provider[0] ||
        !printable(p->provider))
        return false;
    w->sums[w->nsums++] = (struct identity_summary){
        .address = xstrdup(a.norm),
        .provider = xstrdup(p->provider),
        .window_s = p->window_s,
        .checked = p->checked,
        .inbox = p->inbox,
        .spam = p->spam,
        .bounced = p->bounced,
        .complained = p->complained,
        .at = xstrdup(p->at),
    };
    return true;
}

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
        enum fb_kind k = add_summary(w, &ev.placement) ? FB_SUMMARY : FB_INVALID;
        if (k == FB_INVALID)
            log_warn("feedback event skipped topic=%s partition=%d offset=%lld: placement.summary"
                     " with an empty provider or a control character in it",
                     m->topic, (int)m->partition, (long long)m->offset);
        event_cleanup(&ev);
        return k;
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
    w->sums = xcalloc(n ? n : 1, sizeof *w->sums);
    for (size_t i = 0; i < n; i++)
        w->counts[classify(w, &msgs[i])]++;
    return w;
}

/* decide - store_summary_fn: summary i through the policy (under the
 * store's write lock; the decision kept in w->dec[i] for after the commit) */
static void decide(void *arg, size_t i, int64_t identity_id, const struct identity_provider *cur,
                   struct identity_provider *next)
{
    (void)identity_id;
    struct fb_work *w = arg;
    const struct identity_summary *s = &w->sums[i];
    int st = policy_state_parse(cur->state);
    struct policy_current c = {
        .state = st < 0 ? POLICY_RAMPING : (enum policy_state)st,
        .since_ms = cur->since_ms,
        .grace_until_ms = cur->grace_until_ms,
    };
    struct policy_counts counts = {s->checked, s->inbox, s->spam, s->bounced, s->complained};
    struct fb_decision *d = &w->dec[i];
    policy_decide(w->f->policy, &c, &counts, w->now_ms, &d->d);
    d->changed = d->d.changed;
    next->checked = s->checked;
    next->inbox_rate = d->d.inbox_rate;
    next->spam_rate = d->d.spam_rate;
    next->bounce_rate = d->d.bounce_rate;
    next->complaint_rate = d->d.complaint_rate;
    if (d->changed) {
        snprintf(d->state, sizeof d->state, "%s", policy_state_name(d->d.state));
        next->state = d->state;
        next->reason = d->d.reason;
        next->since_ms = w->now_ms;
    }
}

/* apply_summaries - the batch's summaries in one transaction, then each
 * decision logged and counted and each changed identity refreshed */
static int apply_summaries(struct feedback *f, struct fb_work *w)
{
    w->f = f;
    w->now_ms = ident_now_ms();
    free(w->dec); /* an earlier try of the same batch */
    free(w->ids);
    w->dec = xcalloc(w->nsums, sizeof *w->dec);
    w->ids = xcalloc(w->nsums, sizeof *w->ids);
    if (store_apply_summaries(f->store, w->sums, w->nsums, w->now_ms, decide, w, w->ids) != 0)
        return -1;
    for (size_t i = 0; i < w->nsums; i++) {
        metric_inc(w->ids[i] ? f->applied : f->unknown);
        if (!w->ids[i])
            log_debug("placement.summary for %s: no such identity, ignored", w->sums[i].address);
    }
    for (size_t i = 0; i < w->nsums; i++) { /* each changed identity once */
        bool first = w->ids[i] && w->dec[i].changed;
        for (size_t j = 0; first && j < i; j++)
            if (w->ids[j] == w->ids[i] && w->dec[j].changed)
                first = false;
        struct identity x;
        if (!first || store_get_identity(f->store, w->ids[i], &x) != 0)
            continue;
        for (size_t j = i; j < w->nsums; j++) { /* named as stored */
            const struct fb_decision *d = &w->dec[j];
            if (w->ids[j] == x.id && d->changed)
                identities_decision(f->identities, x.address, w->sums[j].provider, d->d.decision,
                                    d->d.why, d->state, d->d.reason);
        }
        identities_changed(f->identities, &x);
        identity_cleanup(&x);
    }
    return 0;
}

static int feedback_apply(void *arg, void *work)
{
    struct feedback *f = arg;
    struct fb_work *w = work;
    if (suppress_add_batch(f->store, f->outbox, f->user_topic, w->items, w->n) != 0)
        return -1; /* the consumer applies the same batch again */
    /* a second transaction: suppressions applied twice change nothing */
    if (w->nsums > 0 && apply_summaries(f, w) != 0)
        return -1;
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
    for (size_t i = 0; i < w->nsums; i++) {
        free((char *)w->sums[i].address);
        free((char *)w->sums[i].provider);
        free((char *)w->sums[i].at);
    }
    free(w->sums);
    free(w->dec);
    free(w->ids);
    free(w);
}

struct feedback *feedback_start(const struct feedback_config *cfg, char *errbuf, size_t errlen)
{
    struct feedback *f = xcalloc(1, sizeof *f);
    f->store = cfg->store;
    f->outbox = cfg->outbox;
    f->user_topic = cfg->user_topic;
    f->policy = cfg->policy;
    f->identities = cfg->identities;
    f->applied = metrics_counter(cfg->metrics, "warmup_placement_summaries_total", SUMMARIES_HELP,
                                 (const char *[]){"result", "applied", NULL});
    f->unknown = metrics_counter(cfg->metrics, "warmup_placement_summaries_total", SUMMARIES_HELP,
                                 (const char *[]){"result", "unknown_identity", NULL});
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
