/* scheduler.c - one thread per loop entry running check rounds (see
 * scheduler.h). Each worker owns its loop instances (one per domain); the
 * store is the only shared state and locks itself. */
#include "scheduler.h"
#include "errbuf.h"
#include "hstore.h"
#include "log.h"
#include "loops/loops.h"
#include "metrics.h"
#include "placement_calc.h"
#include "providers.h"
#include "timeutil.h"
#include "xalloc.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

struct instance {
    char *domain;
    void *loop;
};

struct worker {
    struct scheduler *s;
    const struct loop_entry *entry;
    pthread_t thread;
    struct instance *inst;
    size_t ninst;
    struct metric *m_checks, *m_errors, *m_duration;
};

struct scheduler {
    struct scheduler_config cfg;
    struct worker *w;
    size_t nw;
    atomic_bool stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

/* instance_for - the worker's loop for domain, created on first use */
static void *instance_for(struct worker *w, const char *domain)
{
    for (size_t i = 0; i < w->ninst; i++)
        if (strcmp(w->inst[i].domain, domain) == 0)
            return w->inst[i].loop;
    char err[256];
    void *loop = w->entry->ops->create(domain, w->entry->settings, err, sizeof err);
    if (!loop) {
        log_error("loop %s for domain=%s: %s", w->entry->ops->name, domain, err);
        return NULL;
    }
    w->inst = xreallocarray(w->inst, w->ninst + 1, sizeof *w->inst);
    w->inst[w->ninst++] = (struct instance){.domain = xstrdup(domain), .loop = loop};
    return loop;
}

/* publish_placement - health_placement_copies{domain,state} from the
 * domain's counters in the store (one row read) */
static void publish_placement(struct worker *w, const char *domain)
{
    struct hplacement p;
    if (!w->s->cfg.metrics || hstore_domain_placement(w->s->cfg.store, domain, &p) != 0)
        return;
    int64_t pending = p.tracked - p.delivered - p.spam - p.bounced;
    const struct {
        const char *state;
        int64_t v;
    } v[] = {{"delivered", p.delivered},
             {"spam", p.spam},
             {"opened", p.opened},
             {"read", p.read},
             {"bounced", p.bounced},
             {"complained", p.complained},
             {"pending", pending > 0 ? pending : 0}};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        metric_set(
            metrics_gauge(w->s->cfg.metrics, "health_placement_copies",
                          "Tracked copies of a recipient domain by what its feedback loop "
                          "found (opened and read are subsets of delivered)",
                          (const char *const[]){"domain", domain, "state", v[i].state, NULL}),
            (double)v[i].v);
}

/* observe_found - each copy of a stored round first found, and found in
 * the inbox: its time to inbox into health_time_to_inbox_seconds */
static void observe_found(struct worker *w, const char *domain, const struct hstore_copy *c,
                          size_t n, int64_t now_ms)
{
    struct metric *h = NULL;
    for (size_t i = 0; i < n && w->s->cfg.metrics; i++) {
        if (c[i].old_found || c[i].fl.placement != FL_INBOX)
            continue;
        if (!h)
            h = metrics_histogram(
                w->s->cfg.metrics, "health_time_to_inbox_seconds",
                "Seconds from sending to the round that first found a copy, in the inbox",
                (const char *const[]){"provider", providers_name(w->s->cfg.providers, domain),
                                      NULL},
                placement_buckets, PLACEMENT_NBUCKETS);
        int64_t d = now_ms - c[i].fl.sent_at_ms;
        metric_observe(h, d > 0 ? (double)d / 1000.0 : 0.0);
    }
}

static void round_domain(struct worker *w, const char *domain)
{
    struct scheduler *s = w->s;
    struct hstore_copy *c = NULL;
    size_t n = 0;
    int64_t since = time_now_ms() - s->cfg.window_ms;
    if (hstore_open_copies(s->cfg.store, domain, since, s->cfg.max_per_round, &c, &n) != 0 ||
        n == 0) {
        hstore_copies_free(c, n);
        publish_placement(w, domain);
        return;
    }
    void *loop = instance_for(w, domain);
    char err[256] = "";
    int64_t t0 = time_mono_ms();
    struct fl_copy *fl = xcalloc(n, sizeof *fl);
    for (size_t i = 0; i < n; i++)
        fl[i] = c[i].fl;
    int rc = loop ? w->entry->ops->check(loop, fl, n, err, sizeof err) : -1;
    if (!loop)
        snprintf(err, sizeof err, "the loop could not be created");
    for (size_t i = 0; i < n; i++) {
        c[i].fl.placement = rc == 0 ? fl[i].placement : FL_UNKNOWN;
        c[i].fl.opened = fl[i].opened;
        c[i].fl.read = fl[i].read;
    }
    free(fl);
    metric_observe(w->m_duration, (double)(time_mono_ms() - t0) / 1000.0);
    metric_add(w->m_checks, (double)n);
    if (rc != 0) {
        metric_inc(w->m_errors);
        log_warn("round domain=%s loop=%s copies=%zu failed: %s (results unknown)", domain,
                 w->entry->ops->name, n, err);
    } else {
        log_debug("round domain=%s loop=%s copies=%zu", domain, w->entry->ops->name, n);
    }
    int64_t now = time_now_ms();
    if (hstore_apply_checks(s->cfg.store, domain, c, n, now, rc == 0 ? NULL : err, true) == 0)
        observe_found(w, domain, c, n, now);
    hstore_copies_free(c, n);
    publish_placement(w, domain);
}

/* mine - does this worker serve domain? */
static bool mine(const struct worker *w, const char *domain)
{
    return loops_config_for(w->s->cfg.loops, domain) == w->entry;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct scheduler *s = w->s;
    while (!atomic_load(&s->stop)) {
        int64_t start = time_mono_ms();
        if (strcmp(w->entry->domain, "default") == 0) {
            char **names = NULL;
            size_t n = 0;
            if (hstore_domain_names(s->cfg.store, &names, &n) == 0)
                for (size_t i = 0; i < n && !atomic_load(&s->stop); i++)
                    if (mine(w, names[i]))
                        round_domain(w, names[i]);
            for (size_t i = 0; i < n; i++)
                free(names[i]);
            free(names);
        } else {
            round_domain(w, w->entry->domain);
        }
        if (s->cfg.round_done && !atomic_load(&s->stop))
            s->cfg.round_done(s->cfg.round_arg);
        int64_t next = start + (int64_t)s->cfg.interval_s * 1000;
        pthread_mutex_lock(&s->mu);
        while (!atomic_load(&s->stop) && time_mono_ms() < next) {
            int64_t left = next - time_mono_ms();
            struct timespec dl = time_mono_deadline(left > 0 ? left : 0);
            pthread_cond_timedwait(&s->cv, &s->mu, &dl);
        }
        pthread_mutex_unlock(&s->mu);
    }
    for (size_t i = 0; i < w->ninst; i++) {
        w->entry->ops->destroy(w->inst[i].loop);
        free(w->inst[i].domain);
    }
    free(w->inst);
    return NULL;
}

struct scheduler *scheduler_start(const struct scheduler_config *cfg, char *errbuf, size_t errlen)
{
    struct scheduler *s = xcalloc(1, sizeof *s);
    s->cfg = *cfg;
    if (!s->cfg.max_per_round)
        s->cfg.max_per_round = 10000;
    pthread_mutex_init(&s->mu, NULL);
    time_cond_init_mono(&s->cv);
    s->nw = cfg->loops->n;
    s->w = xcalloc(s->nw, sizeof *s->w);
    static const double buckets[] = {0.001, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60};
    for (size_t i = 0; i < s->nw; i++) {
        struct worker *w = &s->w[i];
        w->s = s;
        w->entry = &cfg->loops->v[i];
        const char *lbl[] = {"loop", w->entry->ops->name, NULL};
        w->m_checks = metrics_counter(cfg->metrics, "health_checks_total",
                                      "Copies checked by a feedback loop", lbl);
        w->m_errors = metrics_counter(cfg->metrics, "health_loop_errors_total",
                                      "Feedback-loop rounds that could not check", lbl);
        w->m_duration = metrics_histogram(cfg->metrics, "health_round_duration_seconds",
                                          "Time of one domain's check round", lbl, buckets,
                                          sizeof buckets / sizeof buckets[0]);
        int rc = pthread_create(&w->thread, NULL, worker_main, w);
        if (rc != 0) {
            errbuf_set(errbuf, errlen, "cannot start the worker of loop %s: %s",
                       w->entry->ops->name, strerror(rc));
            s->nw = i; /* scheduler_stop joins only the workers started */
            scheduler_stop(s);
            return NULL;
        }
    }
    return s;
}

void scheduler_stop(struct scheduler *s)
{
    if (!s)
        return;
    atomic_store(&s->stop, true);
    pthread_mutex_lock(&s->mu);
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    for (size_t i = 0; i < s->nw; i++)
        pthread_join(s->w[i].thread, NULL);
    free(s->w);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
}
