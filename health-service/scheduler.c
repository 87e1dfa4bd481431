/* scheduler.c - feedback-loop rounds on a worker pool (see scheduler.h):
 * the queue, the workers, a task's run (connection budget, check, store,
 * report), a round's end, start and stop. Building the rounds is
 * scheduler_round.c's; what both share is scheduler_int.h.
 *
 * Threads: the workers (one task at a time), and the coordinator in
 * sched_enqueue. The lock guards the task queue, every slot's bookkeeping
 * (loop_slot.h) and the rounds' task counts; a slot's loop is used only by
 * the thread that marked it running or closing. The store and the seeds set lock
 * themselves.
 */
#include "scheduler_int.h"
#include "errbuf.h"
#include "hstore.h"
#include "log.h"
#include "loop_slot.h"
#include "loops/loops.h"
#include "metrics.h"
#include "placement_calc.h"
#include "providers.h"
#include "seeds.h"
#include "timeutil.h"
#include "xalloc.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define DEFAULT_MAX_PER_ROUND 200000
#define DEFAULT_WORKERS 4
#define DEFAULT_MAX_CONNECTIONS 100

/* ---- metrics ---------------------------------------------------------- */

static const struct loop_metrics *metrics_of(struct scheduler *s,
                                             const struct feedback_loop_ops *ops)
{
    for (size_t i = 0; i < s->nlm; i++)
        if (s->lm[i].ops == ops)
            return &s->lm[i];
    /* registered up front for every known type (scheduler_start) */
    return NULL;
}

static void register_loop_metrics(struct scheduler *s, const struct feedback_loop_ops *ops)
{
    static const double buckets[] = {0.001, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60};
    if (!ops || metrics_of(s, ops) || s->nlm == sizeof s->lm / sizeof s->lm[0])
        return;
    const char *lbl[] = {"loop", ops->name, NULL};
    struct loop_metrics *m = &s->lm[s->nlm++];
    m->ops = ops;
    m->checks = metrics_counter(s->cfg.metrics, "health_checks_total",
                                "Copies checked by a feedback loop", lbl);
    m->errors = metrics_counter(s->cfg.metrics, "health_loop_errors_total",
                                "Feedback-loop rounds that could not check", lbl);
    m->duration = metrics_histogram(s->cfg.metrics, "health_round_duration_seconds",
                                    "Time of one mailbox's or domain's check round", lbl, buckets,
                                    sizeof buckets / sizeof buckets[0]);
}

/* publish_commands - health_imap_commands_total up to loop_imap_commands() */
static void publish_commands(struct scheduler *s)
{
    uint64_t now = loop_imap_commands();
    uint_fast64_t seen = atomic_load(&s->commands_seen);
    while (now > seen) {
        if (atomic_compare_exchange_weak(&s->commands_seen, &seen, now)) {
            metric_add(s->m_commands, (double)(now - seen));
            return;
        }
    }
}

/* publish_placement - health_placement_copies{domain,state} from the
 * domain's counters in the store (one row read) */
void sched_publish_placement(struct scheduler *s, const char *domain)
{
    struct hplacement p;
    if (!s->cfg.metrics || hstore_domain_placement(s->cfg.store, domain, &p) != 0)
        return;
    int64_t pending = p.tracked - p.delivered - p.spam - p.bounced - p.unchecked;
    const struct {
        const char *state;
        int64_t v;
    } v[] = {{"delivered", p.delivered},
             {"spam", p.spam},
             {"opened", p.opened},
             {"read", p.read},
             {"bounced", p.bounced},
             {"complained", p.complained},
             {"rescued", p.rescued},
             {"unchecked", p.unchecked},
             {"pending", pending > 0 ? pending : 0}};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        metric_set(
            metrics_gauge(s->cfg.metrics, "health_placement_copies",
                          "Tracked copies of a recipient domain by what its feedback loop "
                          "found (opened, read and rescued are subsets of delivered or spam)",
                          (const char *const[]){"domain", domain, "state", v[i].state, NULL}),
            (double)v[i].v);
}

/* observe_found - each copy of a stored round first found, and found in
 * the inbox: its time to inbox into health_time_to_inbox_seconds */
static void observe_found(struct scheduler *s, const char *domain, const struct hstore_copy *c,
                          size_t n, int64_t now_ms)
{
    struct metric *h = NULL;
    for (size_t i = 0; i < n && s->cfg.metrics; i++) {
        if (c[i].old_found || c[i].fl.placement != FL_INBOX)
            continue;
        if (!h)
            h = metrics_histogram(
                s->cfg.metrics, "health_time_to_inbox_seconds",
                "Seconds from sending to the round that first found a copy, in the inbox",
                (const char *const[]){"provider", providers_name(s->cfg.providers, domain), NULL},
                placement_buckets, PLACEMENT_NBUCKETS);
        int64_t d = now_ms - c[i].fl.sent_at_ms;
        metric_observe(h, d > 0 ? (double)d / 1000.0 : 0.0);
    }
}

/* ---- rounds ----------------------------------------------------------- */

/* round_end - the round's last task ended (the caller holds no lock) */
static void round_end(struct scheduler *s, struct round *r)
{
    publish_commands(s);
    log_info("check round=%llu tasks=%zu copies=%zu unchecked=%zu failed=%zu skipped=%zu "
             "duration_ms=%lld",
             (unsigned long long)r->no, r->tasks, r->copies, r->unchecked, r->failed, r->skipped,
             (long long)(time_mono_ms() - r->started_ms));
    if (s->cfg.round_done && !atomic_load(&s->stop))
        s->cfg.round_done(s->cfg.round_arg);
    sched_snap_drop(s, r->snap);
    free(r);
}

/* round_task_done - one task of r ended (or was dropped) */
void sched_round_task_done(struct scheduler *s, struct round *r)
{
    pthread_mutex_lock(&s->mu);
    bool last = --r->left == 0;
    pthread_mutex_unlock(&s->mu);
    if (last)
        round_end(s, r);
}

/* budget - before slot is used: its connection counted, and while
 * max_connections slots hold one, the least recently used that no worker
 * runs is closed first (a queued task of it reconnects when it runs). Since
 * max_connections >= workers, there is always one to close: the bound is
 * strict, also while several workers connect at once. */
static void budget(struct scheduler *s, struct loop_slot *slot)
{
    if (!slot->ops || !slot->ops->connected || s->cfg.max_connections <= 0)
        return;
    pthread_mutex_lock(&s->mu);
    size_t open = 0;
    while (!slot->connected) {
        struct loop_slot *victim = NULL;
        size_t nseeds = s->live ? s->live->n : 0;
        open = 0;
        for (size_t i = 0; i < s->ndom + nseeds; i++) {
            struct loop_slot *x = i < s->ndom ? &s->dom[i]->slot : &s->live->v[i - s->ndom]->slot;
            if (!x->connected)
                continue;
            open++;
            if (!x->running && !x->closing && x->ops->idle_close &&
                (!victim || x->used_ms < victim->used_ms))
                victim = x;
        }
        if (open < (size_t)s->cfg.max_connections || !victim) {
            slot->connected = true; /* let open: the others count it from now */
            open++;
            break;
        }
        victim->closing = true;
        pthread_mutex_unlock(&s->mu);
        victim->ops->idle_close(victim->loop);
        pthread_mutex_lock(&s->mu);
        victim->closing = false;
        victim->connected = false;
        pthread_cond_broadcast(&s->closed_cv);
    }
    if (open)
        metric_set(s->m_connections, (double)open);
    pthread_mutex_unlock(&s->mu);
}

/* run_task - check the task's copies, store the results, report */
static void run_task(struct scheduler *s, struct task *t)
{
    struct loop_slot *slot = t->slot;
    char err[256] = "";
    if (!slot->loop && t->entry) {
        slot->loop = t->entry->ops->create(t->domain, t->entry->settings, err, sizeof err);
        if (!slot->loop)
            log_error("loop %s for domain=%s: %s", t->entry->ops->name, t->domain, err);
    }
    budget(s, slot);
    int64_t t0 = time_mono_ms();
    struct fl_copy *fl = xcalloc(t->n, sizeof *fl);
    for (size_t i = 0; i < t->n; i++)
        fl[i] = t->c[i].fl;
    int rc = slot->loop ? slot->ops->check(slot->loop, fl, t->n, err, sizeof err) : -1;
    if (!slot->loop && !err[0])
        snprintf(err, sizeof err, "the loop could not be created");
    int64_t first = 0, rescued = 0;
    for (size_t i = 0; i < t->n; i++) {
        struct hstore_copy *c = &t->c[i];
        c->fl.placement = rc == 0 ? fl[i].placement : FL_UNKNOWN;
        c->fl.opened = rc == 0 && fl[i].opened;
        c->fl.read = rc == 0 && fl[i].read;
        c->fl.rescued = rc == 0 && fl[i].rescued;
        if (rc == 0 && c->fl.rounds == 0)
            first++;
        if (c->fl.rescued && !c->old_rescued)
            rescued++;
    }
    free(fl);
    const struct loop_metrics *lm = metrics_of(s, slot->ops);
    if (lm) {
        metric_observe(lm->duration, (double)(time_mono_ms() - t0) / 1000.0);
        metric_add(lm->checks, (double)t->n);
        if (rc != 0)
            metric_inc(lm->errors);
    }
    int64_t now = time_now_ms();
    if (hstore_apply_checks(s->cfg.store, t->domain, t->c, t->n, now, rc == 0 ? NULL : err,
                            t->seed == NULL) == 0)
        observe_found(s, t->domain, t->c, t->n, now);
    /* a mailbox failing round after round is logged when its error changes */
    bool news =
        !t->seed || seeds_report(s->cfg.seeds, t->seed, now, rc == 0 ? NULL : err, first, rescued);
    const char *where = t->seed ? "mailbox" : "domain";
    const char *who = t->seed ? t->seed->address : t->domain;
    if (rc != 0 && news)
        log_warn("round %s=%s loop=%s copies=%zu failed: %s (results unknown)", where, who,
                 slot->ops->name, t->n, err);
    else if (rc == 0 && news && t->seed)
        log_info("round mailbox=%s loop=%s copies=%zu rescued=%lld: recovered", who,
                 slot->ops->name, t->n, (long long)rescued);
    else
        log_debug("round %s=%s loop=%s copies=%zu rescued=%lld%s%s", where, who, slot->ops->name,
                  t->n, (long long)rescued, rc ? " failed: " : "", rc ? err : "");
    pthread_mutex_lock(&s->mu);
    slot->busy = false;
    slot->running = false;
    slot->failing = rc != 0;
    slot->connected = slot->loop && slot->ops->connected && slot->ops->connected(slot->loop);
    slot->used_ms = time_mono_ms();
    if (rc != 0)
        t->r->failed++;
    pthread_mutex_unlock(&s->mu);
    publish_commands(s);
    sched_publish_placement(s, t->domain);
}

static void task_free(struct task *t)
{
    hstore_copies_free(t->c, t->n);
    free(t->domain);
    free(t);
}

/* next_task - the next task a worker may run (the caller holds the
 * lock): a healthy slot's first, a failing one's within max_failing */
static struct task *next_task(struct scheduler *s, int *q)
{
    *q = s->head[0] ? 0 : s->head[1] && s->failing_running < s->max_failing ? 1 : -1;
    if (*q < 0)
        return NULL;
    struct task *t = s->head[*q];
    s->head[*q] = t->next;
    if (!s->head[*q])
        s->tail[*q] = NULL;
    return t;
}

static void *worker_main(void *arg)
{
    struct scheduler *s = arg;
    for (;;) {
        int q = -1;
        struct task *t = NULL;
        pthread_mutex_lock(&s->mu);
        while (!atomic_load(&s->stop) && !(t = next_task(s, &q)))
            pthread_cond_wait(&s->work_cv, &s->mu);
        if (!t) {
            pthread_mutex_unlock(&s->mu);
            return NULL;
        }
        if (atomic_load(&s->stop)) {
            /* taken off the queue: dropped with the rest at stop */
            t->next = s->head[q];
            s->head[q] = t;
            if (!s->tail[q])
                s->tail[q] = t;
            pthread_mutex_unlock(&s->mu);
            return NULL;
        }
        s->failing_running += q == 1;
        s->queued_copies -= t->n;
        pthread_cond_signal(&s->space_cv);
        while (t->slot->closing) /* another worker's budget closes it: wait */
            pthread_cond_wait(&s->closed_cv, &s->mu);
        t->slot->running = true;
        pthread_mutex_unlock(&s->mu);
        run_task(s, t);
        if (q == 1) {
            pthread_mutex_lock(&s->mu);
            s->failing_running--;
            pthread_cond_signal(&s->work_cv); /* a failing task may wait for this */
            pthread_mutex_unlock(&s->mu);
        }
        struct round *r = t->r;
        task_free(t);
        sched_round_task_done(s, r);
    }
}

/* enqueue - hand copies c[0..n) (taken) to slot, unless it is busy */
void sched_enqueue(struct scheduler *s, struct round *r, const char *domain, struct loop_slot *slot,
                   const struct loop_entry *entry, struct seed *seed, struct hstore_copy *c,
                   size_t n)
{
    pthread_mutex_lock(&s->mu);
    while (s->queued_copies > QUEUE_COPIES_MAX && (s->head[0] || s->head[1]) &&
           !atomic_load(&s->stop))
        pthread_cond_wait(&s->space_cv, &s->mu);
    /* a task that ended after the read may have stored results the copies
     * do not show yet */
    bool stale = slot->used_ms >= r->read_ms;
    if (slot->busy || stale || atomic_load(&s->stop)) {
        r->skipped++;
        pthread_mutex_unlock(&s->mu);
        log_debug("round %s=%s %s: its copies=%zu wait", seed ? "mailbox" : "domain",
                  seed ? seed->address : domain,
                  stale ? "checked since its copies were read" : "busy since an earlier round", n);
        if (s->m_skipped)
            metric_inc(s->m_skipped);
        hstore_copies_free(c, n);
        return;
    }
    slot->busy = true;
    struct task *t = xcalloc(1, sizeof *t);
    *t = (struct task){.r = r,
                       .domain = xstrdup(domain),
                       .slot = slot,
                       .entry = entry,
                       .seed = seed,
                       .c = c,
                       .n = n};
    r->left++;
    r->tasks++;
    r->copies += n;
    int q = slot->failing;
    if (s->tail[q])
        s->tail[q]->next = t;
    else
        s->head[q] = t;
    s->tail[q] = t;
    s->queued_copies += n;
    pthread_cond_signal(&s->work_cv);
    pthread_mutex_unlock(&s->mu);
}

struct scheduler *scheduler_start(const struct scheduler_config *cfg, char *errbuf, size_t errlen)
{
    struct scheduler *s = xcalloc(1, sizeof *s);
    s->cfg = *cfg;
    if (!s->cfg.max_per_round)
        s->cfg.max_per_round = DEFAULT_MAX_PER_ROUND;
    if (s->cfg.workers <= 0)
        s->cfg.workers = DEFAULT_WORKERS;
    if (s->cfg.max_connections <= 0)
        s->cfg.max_connections = DEFAULT_MAX_CONNECTIONS;
    s->max_failing = s->cfg.workers > 1 ? s->cfg.workers / 2 : 1;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->work_cv, NULL);
    pthread_cond_init(&s->space_cv, NULL);
    pthread_cond_init(&s->closed_cv, NULL);
    time_cond_init_mono(&s->tick_cv);
    register_loop_metrics(s, &loop_mock_ops);
    register_loop_metrics(s, &loop_imap_ops);
    for (size_t i = 0; i < cfg->loops->n; i++)
        register_loop_metrics(s, cfg->loops->v[i].ops);
    s->m_commands = metrics_counter(cfg->metrics, "health_imap_commands_total",
                                    "IMAP commands sent by the feedback loops", NULL);
    s->m_unchecked = metrics_counter(cfg->metrics, "health_unchecked_copies_total",
                                     "Copies no seed mailbox or domain loop looks at", NULL);
    s->m_skipped =
        metrics_counter(cfg->metrics, "health_round_skipped_total",
                        "Mailbox or domain rounds skipped: busy since an earlier round", NULL);
    s->m_connections = metrics_gauge(cfg->metrics, "health_imap_connections",
                                     "Open IMAP connections of the feedback loops", NULL);
    s->workers = xcalloc((size_t)s->cfg.workers, sizeof *s->workers);
    for (int i = 0; i < s->cfg.workers; i++) {
        int rc = pthread_create(&s->workers[i], NULL, worker_main, s);
        if (rc != 0) {
            errbuf_set(errbuf, errlen, "cannot start a feedback-loop worker: %s", strerror(rc));
            scheduler_stop(s);
            return NULL;
        }
        s->nworkers++;
    }
    int rc = pthread_create(&s->coordinator, NULL, sched_coordinator_main, s);
    if (rc != 0) {
        errbuf_set(errbuf, errlen, "cannot start the feedback-loop coordinator: %s", strerror(rc));
        scheduler_stop(s);
        return NULL;
    }
    s->coordinator_started = true;
    return s;
}

void scheduler_stop(struct scheduler *s)
{
    if (!s)
        return;
    atomic_store(&s->stop, true);
    pthread_mutex_lock(&s->mu);
    pthread_cond_broadcast(&s->work_cv);
    pthread_cond_broadcast(&s->space_cv);
    pthread_cond_broadcast(&s->tick_cv);
    pthread_mutex_unlock(&s->mu);
    if (s->coordinator_started)
        pthread_join(s->coordinator, NULL);
    for (size_t i = 0; i < s->nworkers; i++)
        pthread_join(s->workers[i], NULL);
    /* the tasks nobody ran, and their rounds */
    for (int q = 0; q < 2; q++) {
        while (s->head[q]) {
            struct task *t = s->head[q];
            s->head[q] = t->next;
            struct round *r = t->r;
            t->slot->busy = false;
            task_free(t);
            if (--r->left == 0) {
                sched_snap_drop(s, r->snap);
                free(r);
            }
        }
    }
    sched_snap_drop(s, s->live);
    for (size_t i = 0; i < s->ndom; i++) {
        struct dom_inst *d = s->dom[i];
        if (d->slot.loop)
            d->slot.ops->destroy(d->slot.loop);
        free(d->domain);
        free(d);
    }
    free(s->dom);
    free(s->workers);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->work_cv);
    pthread_cond_destroy(&s->space_cv);
    pthread_cond_destroy(&s->closed_cv);
    pthread_cond_destroy(&s->tick_cv);
    free(s);
}
