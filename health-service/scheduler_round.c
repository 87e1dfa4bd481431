/* scheduler_round.c - the scheduler's coordinator (see scheduler.h):
 * every interval a round: a snapshot of the seed mailboxes, then each
 * known domain's open copies split into tasks per seed mailbox and for
 * the domain's loop (sched_enqueue), the copies with neither marked
 * unchecked here. Also the domain instances, made on first use.
 *
 * Threads: the coordinator alone, except sched_snap_drop (any thread).
 */
#include "scheduler_int.h"
#include "log.h"
#include "metrics.h"
#include "timeutil.h"
#include "xalloc.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- the seed mailboxes of a round --------------------------------------- */

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
void sched_snap_drop(struct scheduler *s, struct snap *p)
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

/* ---- building a round ------------------------------------------------- */

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
    r->read_ms = time_mono_ms();
    if (hstore_open_copies(s->cfg.store, domain, since, s->cfg.max_per_round, &c, &n) != 0 ||
        n == 0) {
        hstore_copies_free(c, n);
        return;
    }
    if (!seeded) {
        if (has_loop)
            sched_enqueue(s, r, domain, &dom_for(s, domain, entry)->slot, entry, NULL, c, n);
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
    /* one pass moves each copy into its group's own array (a task owns it) */
    struct hstore_copy **part = xcalloc(ng, sizeof *part);
    size_t *fill = xcalloc(ng, sizeof *fill);
    for (size_t g = 0; g < ng; g++)
        if (count[g])
            part[g] = xcalloc(count[g], sizeof *part[g]);
    for (size_t i = 0; i < n; i++)
        part[group[i]][fill[group[i]]++] = c[i];
    for (size_t g = 0; g < ng; g++) {
        if (!count[g])
            continue;
        if (g == p->n + 1)
            mark_unchecked(s, r, domain, part[g], count[g]);
        else if (g == p->n)
            sched_enqueue(s, r, domain, &dom_for(s, domain, entry)->slot, entry, NULL, part[g],
                          count[g]);
        else if (!p->v[g]->slot.ops)
            hstore_copies_free(part[g], count[g]); /* a bad entry: they wait for a good one */
        else
            sched_enqueue(s, r, domain, &p->v[g]->slot, NULL, p->v[g], part[g], count[g]);
    }
    free(part);
    free(fill);
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
    sched_snap_drop(s, old);
    char **names = NULL;
    size_t n = 0;
    if (hstore_domain_names(s->cfg.store, &names, &n) == 0) {
        for (size_t i = 0; i < n && !atomic_load(&s->stop); i++) {
            split_domain(s, r, names[i]);
            sched_publish_placement(s, names[i]);
        }
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    sched_round_task_done(s, r);
}

void *sched_coordinator_main(void *arg)
{
    struct scheduler *s = arg;
    for (uint64_t no = 1; !atomic_load(&s->stop); no++) {
        int64_t start = time_mono_ms();
        if (hstore_leader(s->cfg.store)) /* another instance's rounds check the copies */
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
