/* scheduler.c - feedback-loop rounds on a worker pool (see scheduler.h).
 *
 * Threads: the coordinator (builds each round's tasks; owns the list of
 * domain instances, appending under the lock) and the workers (run one
 * task at a time). The lock guards the task queue, every slot's
 * bookkeeping (loop_slot.h) and the rounds' task counts; a slot's loop is
 * used only by the thread that marked it busy. The store and the seeds
 * set lock themselves.
 */
#include "scheduler.h"
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
/* copies waiting in the queue at most: the coordinator waits beyond */
#define QUEUE_COPIES_MAX 400000

/* a domain's own loop instance */
struct dom_inst {
    char *domain;
    const struct loop_entry *entry;
    struct loop_slot slot; /* ops set; loop made by the first task */
};

/* the seed mailboxes as of a round, held by the round and (the newest)
 * by the scheduler for eviction; refs under the lock */
struct snap {
    struct seed **v; /* sorted by address */
    size_t n;
    const char **domains; /* their distinct domains, sorted */
    size_t ndomains;
    int refs;
};

/* one round: lives until its last task ends */
struct round {
    uint64_t no;
    int64_t started_ms; /* monotonic */
    struct snap *snap;
    size_t left; /* tasks not ended, +1 while the coordinator builds */
    size_t tasks, copies, unchecked, failed, skipped;
};

struct task {
    struct round *r;
    char *domain;
    struct loop_slot *slot;
    const struct loop_entry *entry; /* a domain task: to make its loop */
    struct seed *seed;              /* NULL: the domain's loop */
    struct hstore_copy *c;          /* owned (hstore_copies_free) */
    size_t n;
    struct task *next;
};

/* per loop type: health_checks_total etc. */
struct loop_metrics {
    const struct feedback_loop_ops *ops;
    struct metric *checks, *errors, *duration;
};

struct scheduler {
    struct scheduler_config cfg;
    pthread_t coordinator;
    bool coordinator_started;
    pthread_t *workers;
    size_t nworkers;
    atomic_bool stop;
    pthread_mutex_t mu;
    pthread_cond_t work_cv;  /* a task was queued, or stop */
    pthread_cond_t space_cv; /* the queue shrank */
    pthread_cond_t tick_cv;  /* stop (the coordinator's sleep) */
    /* queued tasks: [0] of slots whose last round ran, [1] of failing ones
     * (a dead or silent mailbox), which at most max_failing workers run at
     * once: the others always have workers */
    struct task *head[2], *tail[2];
    size_t queued_copies;
    int failing_running, max_failing;
    struct dom_inst **dom;
    size_t ndom;
    struct snap *live; /* the newest round's seeds (for eviction) */
    struct loop_metrics lm[4];
    size_t nlm;
    struct metric *m_commands, *m_unchecked, *m_connections, *m_skipped;
    atomic_uint_fast64_t commands_seen;
};

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
static void publish_placement(struct scheduler *s, const char *domain)
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

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* snap_take - the seeds set now, with one reference */
static struct snap *snap_take(struct scheduler *s)
{
    struct snap *p = xcalloc(1, sizeof *p);
    p->refs = 1;
    if (!s->cfg.seeds)
        return p;
    p->v = seeds_snapshot(s->cfg.seeds, &p->n);
    p->domains = p->n ? xcalloc(p->n, sizeof *p->domains) : NULL;
    for (size_t i = 0; i < p->n; i++)
        p->domains[i] = p->v[i]->domain;
    if (p->n > 1)
        qsort(p->domains, p->n, sizeof *p->domains, cmp_str);
    for (size_t i = 0; i < p->n; i++)
        if (p->ndomains == 0 || strcmp(p->domains[p->ndomains - 1], p->domains[i]) != 0)
            p->domains[p->ndomains++] = p->domains[i];
    return p;
}

/* snap_drop - one reference less; the last frees (outside the lock) */
static void snap_drop(struct scheduler *s, struct snap *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&s->mu);
    bool last = --p->refs == 0;
    pthread_mutex_unlock(&s->mu);
    if (!last)
        return;
    if (s->cfg.seeds)
        seeds_snapshot_free(s->cfg.seeds, p->v, p->n);
    free(p->domains);
    free(p);
}

/* snap_has_domain - some seed mailbox is at domain */
static bool snap_has_domain(const struct snap *p, const char *domain)
{
    return p->ndomains &&
           bsearch(&domain, p->domains, p->ndomains, sizeof *p->domains, cmp_str) != NULL;
}

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
    snap_drop(s, r->snap);
    free(r);
}

/* round_task_done - one task of r ended (or was dropped) */
static void round_task_done(struct scheduler *s, struct round *r)
{
    pthread_mutex_lock(&s->mu);
    bool last = --r->left == 0;
    pthread_mutex_unlock(&s->mu);
    if (last)
        round_end(s, r);
}

/* budget - before slot (not connected) is used: while max_connections
 * slots hold a connection, close the least recently used idle one */
static void budget(struct scheduler *s, struct loop_slot *slot)
{
    if (!slot->ops || !slot->ops->connected || s->cfg.max_connections <= 0)
        return;
    pthread_mutex_lock(&s->mu);
    if (slot->connected) {
        pthread_mutex_unlock(&s->mu);
        return;
    }
    for (;;) {
        size_t open = 0;
        struct loop_slot *victim = NULL;
        size_t nseeds = s->live ? s->live->n : 0;
        for (size_t i = 0; i < s->ndom + nseeds; i++) {
            struct loop_slot *x = i < s->ndom ? &s->dom[i]->slot : &s->live->v[i - s->ndom]->slot;
            if (!x->connected)
                continue;
            open++;
            if (!x->busy && x->ops->idle_close && (!victim || x->used_ms < victim->used_ms))
                victim = x;
        }
        metric_set(s->m_connections, (double)open);
        if (open < (size_t)s->cfg.max_connections || !victim)
            break;
        victim->busy = true;
        pthread_mutex_unlock(&s->mu);
        victim->ops->idle_close(victim->loop);
        pthread_mutex_lock(&s->mu);
        victim->busy = false;
        victim->connected = false;
    }
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
    slot->failing = rc != 0;
    slot->connected = slot->loop && slot->ops->connected && slot->ops->connected(slot->loop);
    slot->used_ms = time_mono_ms();
    if (rc != 0)
        t->r->failed++;
    pthread_mutex_unlock(&s->mu);
    publish_commands(s);
    publish_placement(s, t->domain);
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
        round_task_done(s, r);
    }
}

/* ---- building a round (coordinator) ----------------------------------- */

/* dom_for - the domain's instance slot (made on first use), or NULL */
static struct dom_inst *dom_for(struct scheduler *s, const char *domain,
                                const struct loop_entry *entry)
{
    for (size_t i = 0; i < s->ndom; i++)
        if (strcmp(s->dom[i]->domain, domain) == 0 && s->dom[i]->entry == entry)
            return s->dom[i];
    struct dom_inst *d = xcalloc(1, sizeof *d);
    d->domain = xstrdup(domain);
    d->entry = entry;
    d->slot.ops = entry->ops;
    pthread_mutex_lock(&s->mu);
    s->dom = xreallocarray(s->dom, s->ndom + 1, sizeof *s->dom);
    s->dom[s->ndom++] = d;
    pthread_mutex_unlock(&s->mu);
    return d;
}

/* enqueue - hand copies c[0..n) (taken) to slot, unless it is busy */
static void enqueue(struct scheduler *s, struct round *r, const char *domain,
                    struct loop_slot *slot, const struct loop_entry *entry, struct seed *seed,
                    struct hstore_copy *c, size_t n)
{
    pthread_mutex_lock(&s->mu);
    while (s->queued_copies > QUEUE_COPIES_MAX && (s->head[0] || s->head[1]) &&
           !atomic_load(&s->stop))
        pthread_cond_wait(&s->space_cv, &s->mu);
    if (slot->busy || atomic_load(&s->stop)) {
        r->skipped++;
        pthread_mutex_unlock(&s->mu);
        log_debug("round %s=%s busy since an earlier round: its copies=%zu wait",
                  seed ? "mailbox" : "domain", seed ? seed->address : domain, n);
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

/* mark_unchecked - copies no loop looks at: stored as FL_UNCHECKED */
static void mark_unchecked(struct scheduler *s, struct round *r, const char *domain,
                           struct hstore_copy *c, size_t n)
{
    for (size_t i = 0; i < n; i++)
        c[i].fl.placement = FL_UNCHECKED;
    if (hstore_apply_checks(s->cfg.store, domain, c, n, time_now_ms(), NULL, false) == 0) {
        r->unchecked += n;
        if (s->m_unchecked)
            metric_add(s->m_unchecked, (double)n);
        log_info("round domain=%s unchecked=%zu: no seed mailbox and no loop for their "
                 "recipients",
                 domain, n);
    }
    hstore_copies_free(c, n);
}

/* take - the copies of c (n) whose group is g, moved into a new array
 * of count elements */
static struct hstore_copy *take(struct hstore_copy *c, size_t n, const size_t *group, size_t g,
                                size_t count)
{
    struct hstore_copy *out = xcalloc(count, sizeof *out);
    for (size_t i = 0, k = 0; i < n && k < count; i++)
        if (group[i] == g)
            out[k++] = c[i];
    return out;
}

/* split_domain - the open copies of domain into tasks: per seed mailbox,
 * the domain's loop, or unchecked */
static void split_domain(struct scheduler *s, struct round *r, const char *domain)
{
    const struct loop_entry *entry = loops_config_for(s->cfg.loops, domain);
    bool has_loop = entry && entry->ops;
    const struct snap *p = r->snap;
    bool seeded = snap_has_domain(p, domain);
    struct hstore_copy *c = NULL;
    size_t n = 0;
    int64_t since = time_now_ms() - s->cfg.window_ms;
    if (hstore_open_copies(s->cfg.store, domain, since, s->cfg.max_per_round, &c, &n) != 0 ||
        n == 0) {
        hstore_copies_free(c, n);
        return;
    }
    if (!seeded) {
        if (has_loop)
            enqueue(s, r, domain, &dom_for(s, domain, entry)->slot, entry, NULL, c, n);
        else
            mark_unchecked(s, r, domain, c, n);
        return;
    }
    /* group of each copy: its seed mailbox's index in the snapshot; p->n
     * for the domain's loop; p->n + 1 for none */
    size_t ng = p->n + 2;
    size_t *group = xcalloc(n, sizeof *group), *count = xcalloc(ng, sizeof *count);
    for (size_t i = 0; i < n; i++) {
        size_t g = seeds_find(p->v, p->n, c[i].recipient);
        if (g == p->n && !has_loop)
            g = p->n + 1;
        group[i] = g;
        count[g]++;
    }
    for (size_t g = 0; g < ng; g++) {
        if (!count[g])
            continue;
        struct hstore_copy *part = take(c, n, group, g, count[g]);
        if (g == p->n + 1)
            mark_unchecked(s, r, domain, part, count[g]);
        else if (g == p->n)
            enqueue(s, r, domain, &dom_for(s, domain, entry)->slot, entry, NULL, part, count[g]);
        else if (!p->v[g]->slot.ops)
            hstore_copies_free(part, count[g]); /* a bad entry: they wait for a good one */
        else
            enqueue(s, r, domain, &p->v[g]->slot, NULL, p->v[g], part, count[g]);
    }
    free(c); /* the strings went with the parts */
    free(group);
    free(count);
}

/* run_round - one round's tasks queued; the round ends with its last */
static void run_round(struct scheduler *s, uint64_t no)
{
    struct round *r = xcalloc(1, sizeof *r);
    r->no = no;
    r->started_ms = time_mono_ms();
    r->left = 1; /* the coordinator's, while it builds */
    r->snap = snap_take(s);
    pthread_mutex_lock(&s->mu);
    r->snap->refs++; /* the scheduler's, as the live set */
    struct snap *old = s->live;
    s->live = r->snap;
    pthread_mutex_unlock(&s->mu);
    snap_drop(s, old);
    char **names = NULL;
    size_t n = 0;
    if (hstore_domain_names(s->cfg.store, &names, &n) == 0) {
        for (size_t i = 0; i < n && !atomic_load(&s->stop); i++) {
            split_domain(s, r, names[i]);
            publish_placement(s, names[i]);
        }
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    round_task_done(s, r);
}

static void *coordinator_main(void *arg)
{
    struct scheduler *s = arg;
    for (uint64_t no = 1; !atomic_load(&s->stop); no++) {
        int64_t start = time_mono_ms();
        run_round(s, no);
        int64_t next = start + (int64_t)s->cfg.interval_s * 1000;
        pthread_mutex_lock(&s->mu);
        while (!atomic_load(&s->stop) && time_mono_ms() < next) {
            int64_t left = next - time_mono_ms();
            struct timespec dl = time_mono_deadline(left > 0 ? left : 0);
            pthread_cond_timedwait(&s->tick_cv, &s->mu, &dl);
        }
        pthread_mutex_unlock(&s->mu);
    }
    return NULL;
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
    int rc = pthread_create(&s->coordinator, NULL, coordinator_main, s);
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
                snap_drop(s, r->snap);
                free(r);
            }
        }
    }
    snap_drop(s, s->live);
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
    pthread_cond_destroy(&s->tick_cv);
    free(s);
}
