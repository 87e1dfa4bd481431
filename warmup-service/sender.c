/* sender.c - pipeline lifecycle, the registry of email runs and the dispatcher
 * thread (see sender.h for the threads). The registry and the wake-up
 * flag are guarded by s->lock; a run's paused flag and token bucket
 * are safe to touch from any thread. */
#include "bqueue.h"
#include "errbuf.h"
#include "log.h"
#include "metrics.h"
#include "pacer.h"
#include "providers.h"
#include "ratelimit.h"
#include "sender_int.h"
#include "store_cluster.h"
#include "throttle.h"
#include "timeutil.h"
#include "xalloc.h"

#include <json-c/json.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CLAIM_MAX 256   /* copies claimed per email per round */
#define MAX_ACTIVE 4096 /* emails looked at per round */
#define IDLE_WAIT_MS 50 /* dispatcher sleep when nothing was claimed */
#define RESULTS_QUEUE                                                                              \
    1024 /* outcomes waiting for the writer: bounds the copies sent                                \
            but not yet committed (re-sent after a crash) */

void email_run_unref(struct email_run *c)
{
    if (c && atomic_fetch_sub(&c->refs, 1) == 1) {
        email_info_cleanup(&c->info);
        json_object_put(c->defaults);
        ratelimit_free(c->rl);
        free(c);
    }
}

/* run_find - registry lookup; caller holds s->lock */
static struct email_run *run_find(struct sender *s, int64_t id)
{
    for (size_t i = 0; i < s->nruns; i++)
        if (s->runs[i]->info.id == id)
            return s->runs[i];
    return NULL;
}

/* shared - this instance's part of a TPM (0: unlimited) */
static double shared(struct sender *s, int tpm)
{
    int n = atomic_load(&s->share);
    return tpm > 0 ? (double)tpm / (n > 0 ? n : 1) : 0;
}

/* run_load - read an email from the store into the registry */
static struct email_run *run_load(struct sender *s, int64_t id)
{
    struct email_run *c = xcalloc(1, sizeof *c);
    if (store_get_email(s->cfg.store, id, true, &c->info) != 0) {
        free(c);
        return NULL;
    }
    if (c->info.defaults)
        c->defaults = json_tokener_parse(c->info.defaults); /* checked when stored */
    int idx = smtp_clients_find(s->cfg.clients, c->info.smtp_client);
    c->client = idx >= 0 ? idx : (int)s->cfg.clients->default_idx;
    atomic_init(&c->paused, c->info.paused);
    atomic_init(&c->refs, 1);
    c->rl = ratelimit_new(shared(s, c->info.tpm));
    pthread_mutex_lock(&s->lock);
    if (s->nruns == s->capruns) {
        s->capruns = s->capruns ? s->capruns * 2 : 16;
        s->runs = xreallocarray(s->runs, s->capruns, sizeof *s->runs);
    }
    s->runs[s->nruns++] = c;
    pthread_mutex_unlock(&s->lock);
    log_info("email_id=%lld loaded for sending (client %s, tpm %d)", (long long)id,
             s->cfg.clients->v[c->client].s.name, c->info.tpm);
    return c;
}

/* run_get - the registry's run of email id, loaded when missing */
static struct email_run *run_get(struct sender *s, int64_t id)
{
    pthread_mutex_lock(&s->lock);
    struct email_run *c = run_find(s, id);
    pthread_mutex_unlock(&s->lock);
    return c ? c : run_load(s, id);
}

/* run_controls - a run's pause and rate as stored; caller holds s->lock */
static void run_controls(struct sender *s, struct email_run *c, bool paused, int tpm)
{
    atomic_store(&c->paused, paused);
    c->info.tpm = tpm;
    ratelimit_set(c->rl, shared(s, tpm));
}

void sender_email_changed(struct sender *s, int64_t id)
{
    struct email_info e;
    if (store_get_email(s->cfg.store, id, false, &e) != 0)
        return;
    pthread_mutex_lock(&s->lock);
    struct email_run *c = run_find(s, id);
    if (c)
        run_controls(s, c, e.paused, e.tpm);
    s->kicked = true;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
    email_info_cleanup(&e);
}

void sender_email_sync(struct sender *s, const struct email_control *v, size_t n)
{
    bool kick = false;
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < n; i++) {
        struct email_run *c = run_find(s, v[i].id);
        if (!c || (atomic_load(&c->paused) == v[i].paused && c->info.tpm == v[i].tpm))
            continue;
        log_info("email_id=%lld controls changed by another instance: paused %d, tpm %d",
                 (long long)v[i].id, v[i].paused, v[i].tpm);
        run_controls(s, c, v[i].paused, v[i].tpm);
        kick = true;
    }
    if (kick) {
        s->kicked = true;
        pthread_cond_signal(&s->wake);
    }
    pthread_mutex_unlock(&s->lock);
    pacer_changed(s->pacer, 0); /* identities: read again at the next plan */
}

void sender_set_share(struct sender *s, int n)
{
    if (n < 1)
        n = 1;
    if (atomic_exchange(&s->share, n) == n)
        return;
    log_info("sending rates shared by %d instance%s", n, n > 1 ? "s" : "");
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < s->nruns; i++)
        ratelimit_set(s->runs[i]->rl, shared(s, s->runs[i]->info.tpm));
    pthread_mutex_unlock(&s->lock);
    for (size_t i = 0; i < s->nclients; i++)
        ratelimit_set(s->clients[i].rl, shared(s, s->clients[i].cfg->s.tpm));
    throttle_set_share(s->throttle, n);
}

void sender_identity_changed(struct sender *s, int64_t identity_id)
{
    pacer_changed(s->pacer, identity_id);
    sender_notify(s);
}

bool sender_email_reason(struct sender *s, int64_t email_id, char *buf, size_t len)
{
    bool held = false;
    pthread_mutex_lock(&s->lock);
    struct email_run *c = run_find(s, email_id);
    if (c && c->reason[0]) {
        snprintf(buf, len, "%s", c->reason);
        held = true;
    }
    pthread_mutex_unlock(&s->lock);
    return held;
}

void sender_notify(struct sender *s)
{
    pthread_mutex_lock(&s->lock);
    s->kicked = true;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
}

/* evict - drop runs that were not active in the last round */
static void evict(struct sender *s)
{
    pthread_mutex_lock(&s->lock);
    size_t keep = 0;
    for (size_t i = 0; i < s->nruns; i++) {
        struct email_run *c = s->runs[i];
        if (c->seen) {
            c->seen = false;
            s->runs[keep++] = c;
        } else {
            email_run_unref(c);
        }
    }
    s->nruns = keep;
    pthread_mutex_unlock(&s->lock);
}

/* lanes_refresh - learn the lanes stored since the last round (a new
 * recipient domain) and the throttled groups' lanes */
static void lanes_refresh(struct sender *s)
{
    struct lane_row *v = NULL;
    size_t n = 0;
    int64_t after = s->nlanes ? (int64_t)s->nlanes - 1 : 0;
    if (store_lanes(s->cfg.store, after, &v, &n) != 0 || n == 0) {
        store_lanes_free(v, n);
        return;
    }
    size_t want = (size_t)v[n - 1].lane + 1;
    s->lanes = xreallocarray(s->lanes, want, sizeof *s->lanes);
    for (size_t i = s->nlanes; i < want; i++)
        s->lanes[i] = (struct lane_info){.group = -1};
    s->nlanes = want;
    for (size_t i = 0; i < n; i++) {
        struct lane_info *li = &s->lanes[v[i].lane];
        li->domain = v[i].domain; /* the row's string moves here */
        v[i].domain = NULL;
        li->group = providers_index(s->cfg.providers, li->domain);
        if (li->group >= 0 && throttle_limited(s->throttle, li->group)) {
            size_t g = (size_t)li->group;
            s->group_lanes[g] =
                xreallocarray(s->group_lanes[g], s->ngroup_lanes[g] + 1, sizeof *s->group_lanes[g]);
            s->group_lanes[g][s->ngroup_lanes[g]++] = v[i].lane;
        }
    }
    store_lanes_free(v, n);
}

/* lane_provider - the provider of a lane: its group's name or its domain
 * ("" for a lane not known yet) */
static const char *lane_provider(const struct sender *s, int64_t lane)
{
    if (lane <= 0 || (size_t)lane >= s->nlanes || !s->lanes[lane].domain)
        return "";
    const struct lane_info *li = &s->lanes[lane];
    return li->group >= 0 ? providers_get(s->cfg.providers, (size_t)li->group)->name : li->domain;
}

/* blocked_for - the identity may not send to this provider now */
static bool blocked_for(const struct pace *pc, const char *provider)
{
    for (size_t i = 0; pc && i < pc->nblocked; i++)
        if (strcasecmp(pc->blocked[i], provider) == 0)
            return true;
    return false;
}

/* lane_held - the interval claims skip this lane: its group is throttled
 * (claimed on its own), or the identity may not send to its provider */
static bool lane_held(const struct sender *s, size_t lane, const struct pace *pc)
{
    if (lane >= s->nlanes || !s->lanes[lane].domain)
        return false;
    return throttle_limited(s->throttle, s->lanes[lane].group) ||
           (pc && pc->nblocked && blocked_for(pc, lane_provider(s, (int64_t)lane)));
}

/* claim_into - one claim of up to want copies of c (scope NULL: any
 * lane) appended at claims[*n]; returns how many */
static size_t claim_into(struct sender *s, struct email_run *c, const struct claim_scope *scope,
                         int want, struct claim *claims, size_t *n)
{
    size_t got = 0;
    if (want <= 0)
        return 0;
    if (store_claim(s->cfg.store, c->info.id, want, time_now_ms(), s->cfg.lease_ms, scope,
                    claims + *n, &got) != 0)
        got = 0;
    *n += got;
    return got;
}

/* claim_constrained - with provider limits: each throttled group's lanes
 * for what its throttle grants, then every other lane in intervals
 * between the throttled ones, starting at a rotating lane so that no
 * domain is always first. Up to want copies in claims; returns how many */
static size_t claim_constrained(struct sender *s, struct email_run *c, int want,
                                struct claim *claims, int64_t now, int64_t *wait_ms,
                                const struct pace *pc)
{
    size_t n = 0;
    struct claim_scope sc = {.identity_id = pc->identity_id, .day = pc->day};
    size_t ngroups = providers_count(s->cfg.providers);
    for (size_t g = 0; g < ngroups && (int)n < want; g++) {
        if (!s->ngroup_lanes[g] || blocked_for(pc, providers_get(s->cfg.providers, g)->name))
            continue;
        int k = throttle_take(s->throttle, (int)g, want - (int)n, now, wait_ms);
        size_t before = n;
        size_t nl = s->ngroup_lanes[g], first = s->rotate_lane % nl;
        for (size_t i = 0; i < nl && (int)(n - before) < k; i++) {
            sc.lane_lo = sc.lane_hi = s->group_lanes[g][(first + i) % nl];
            claim_into(s, c, &sc, k - (int)(n - before), claims, &n);
        }
        throttle_refund(s->throttle, (int)g, k - (int)(n - before));
    }
    /* the other lanes: [start, end of lanes) then [0, start), each cut
     * around held lanes; lanes stored after the last refresh are in the
     * open last interval, lane 0 holds the copies of a store migrated
     * without their user */
    size_t start = s->nlanes > 1 ? 1 + s->rotate_lane++ % (s->nlanes - 1) : 1;
    for (int pass = 0; pass < 2 && (int)n < want; pass++) {
        int64_t lo = pass == 0 ? (int64_t)start : 0;
        int64_t end = pass == 0 ? INT64_MAX : (int64_t)start - 1;
        for (int64_t l = lo; l <= end && (int)n < want;) {
            while (l <= end && (size_t)l < s->nlanes && lane_held(s, (size_t)l, pc))
                l++;
            if (l > end)
                break;
            int64_t hi = l;
            while (hi < end && (size_t)(hi + 1) < s->nlanes && !lane_held(s, (size_t)(hi + 1), pc))
                hi++;
            if ((size_t)(hi + 1) >= s->nlanes && pass == 0)
                hi = end; /* past the known lanes: all of them */
            sc.lane_lo = l;
            sc.lane_hi = hi;
            claim_into(s, c, &sc, want - (int)n, claims, &n);
            if (hi == INT64_MAX)
                break;
            l = hi + 1;
        }
    }
    return n;
}

/* set_reason - why the email's copies wait ("" none), for its progress */
static void set_reason(struct sender *s, struct email_run *c, const char *why)
{
    pthread_mutex_lock(&s->lock);
    snprintf(c->reason, sizeof c->reason, "%s", why);
    pthread_mutex_unlock(&s->lock);
}

/* dispatch_one - claim what the buckets and the queue allow for one email;
 * returns the number of copies queued. *wait_ms is lowered to when a
 * bucket that held this email back has its next token, so the dispatcher
 * wakes on time (a full bucket loses what accrues beyond its capacity). */
static size_t dispatch_one(struct sender *s, struct email_run *c, struct claim *claims,
                           int64_t *wait_ms)
{
    struct client_rt *cl = &s->clients[c->client];
    if (!smtp_breaker_closed(&cl->br))
        return 0; /* nothing is claimed for a client whose server does not answer */
    bool urgent = c->info.priority > 0; /* ahead of every bulk copy queued */
    size_t room = urgent ? bqueue_space_front(cl->q) : bqueue_space(cl->q);
    int want = room < CLAIM_MAX ? (int)room : CLAIM_MAX;
    if (want <= 0 || atomic_load(&c->paused))
        return 0;
    int64_t now = time_mono_ms();
    int got_client = 0, got = 0;
    int64_t w = ratelimit_take(cl->rl, want, now, &got_client);
    if (got_client > 0) {
        int64_t we = ratelimit_take(c->rl, got_client, now, &got);
        if (we > 0 && (w == 0 || we < w)) /* w == 0: the client granted all */
            w = we;
    }
    /* wake 2 ms early: a bucket at capacity loses what accrues while the
     * dispatcher is late, and a wake-up is never exact */
    if (w > 0 && w - 2 < *wait_ms)
        *wait_ms = w > 3 ? w - 2 : 1;
    if (got < got_client)
        ratelimit_refund(cl->rl, got_client - got);
    if (got <= 0)
        return 0;
    struct pace pc;
    char why[sizeof c->reason];
    pacer_plan(s->pacer, c->info.from, got, &pc, wait_ms, why, sizeof why);
    if (pc.allow < got || !why[0])
        set_reason(s, c, why); /* held by the identity (or nothing holds it) */
    if (pc.allow < got) {      /* the identity's quota, window or pause */
        ratelimit_refund(cl->rl, got - pc.allow);
        ratelimit_refund(c->rl, got - pc.allow);
        got = pc.allow;
        if (got <= 0)
            return 0;
    }
    size_t n = 0;
    if (pc.identity_id || providers_count(s->cfg.providers) > 0) /* some limit by provider */
        n = claim_constrained(s, c, got, claims, now, wait_ms, &pc);
    else
        claim_into(s, c, NULL, got, claims, &n);
    if (pc.allow == got && why[0]) /* some providers blocked: a reason if copies wait */
        set_reason(s, c, (int)n < got ? why : "");
    if (pc.identity_id && n > 0) {
        const char **names = xcalloc(n, sizeof *names);
        for (size_t i = 0; i < n; i++) {
            if ((size_t)claims[i].lane >= s->nlanes)
                lanes_refresh(s);
            names[i] = lane_provider(s, claims[i].lane);
        }
        pacer_claimed(s->pacer, &pc, names, n);
        free(names);
    }
    if ((int)n < got) {
        ratelimit_refund(cl->rl, got - (int)n);
        ratelimit_refund(c->rl, got - (int)n);
    }
    for (size_t k = 0; k < n; k++) {
        size_t i = urgent ? n - 1 - k : k; /* pushed at the head: last first keeps their order */
        struct queued_claim *j = xmalloc(sizeof *j);
        j->claim = claims[i];
        j->c = c;
        j->group = (size_t)j->claim.lane < s->nlanes ? s->lanes[j->claim.lane].group : -1;
        j->identity_id = pc.identity_id;
        j->day = pc.day;
        atomic_fetch_add(&c->refs, 1);
        bool pushed = urgent ? bqueue_push_front(cl->q, j) : bqueue_push(cl->q, j);
        if (!pushed) { /* closed while stopping: the lease is released at start */
            throttle_done(s->throttle, j->group);
            free(j->claim.recipient);
            free(j->claim.name);
            free(j->claim.data);
            email_run_unref(c);
            free(j);
        }
    }
    return n;
}

static void *dispatcher_main(void *arg)
{
    struct sender *s = arg;
    int64_t *ids = xcalloc(MAX_ACTIVE, sizeof *ids);
    struct claim *claims = xcalloc(CLAIM_MAX, sizeof *claims);
    size_t rotate = 0;
    while (!atomic_load(&s->stopping)) {
        size_t nids = 0, queued = 0;
        int64_t wait_ms = IDLE_WAIT_MS;
        if (store_active_emails(s->cfg.store, ids, MAX_ACTIVE, &nids) != 0)
            nids = 0;
        if (nids)
            lanes_refresh(s);
        /* high-priority emails come first in ids: each round serves
         * them first, in order; the others take turns */
        size_t high = 0;
        for (; high < nids && !atomic_load(&s->stopping); high++) {
            struct email_run *c = run_get(s, ids[high]);
            if (!c || c->info.priority == 0)
                break;
            c->seen = true;
            queued += dispatch_one(s, c, claims, &wait_ms);
        }
        size_t nbulk = nids - high;
        for (size_t k = 0; k < nbulk && !atomic_load(&s->stopping); k++) {
            struct email_run *c = run_get(s, ids[high + (k + rotate) % nbulk]);
            if (!c)
                continue;
            c->seen = true;
            queued += dispatch_one(s, c, claims, &wait_ms);
        }
        rotate++;
        evict(s);
        size_t depth = 0;
        for (size_t i = 0; i < s->nclients; i++)
            depth += bqueue_len(s->clients[i].q);
        metric_set(s->m_queue, (double)depth);
        if (queued)
            continue;
        pthread_mutex_lock(&s->lock);
        if (!s->kicked && !atomic_load(&s->stopping)) {
            struct timespec dl = time_mono_deadline(wait_ms);
            pthread_cond_timedwait(&s->wake, &s->lock, &dl);
        }
        s->kicked = false;
        pthread_mutex_unlock(&s->lock);
    }
    free(ids);
    free(claims);
    return NULL;
}

static double circuit_open(void *arg)
{
    return smtp_breaker_closed(arg) ? 0 : 1;
}

static void client_metrics(struct sender *s, struct client_rt *cl)
{
    const char *lbl[] = {"client", cl->cfg->s.name, NULL};
    static const double buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
    struct metrics *m = s->cfg.metrics;
    cl->m_sent = metrics_counter(m, "email_sent_total", "Copies accepted by the SMTP server", lbl);
    cl->m_failed = metrics_counter(m, "email_failed_total",
                                   "Copy attempts that failed (temporary or permanent)", lbl);
    cl->m_retries =
        metrics_counter(m, "email_retries_total", "Copies scheduled for another attempt", lbl);
    cl->m_dlq = metrics_counter(m, "email_dlq_total", "Copies dead-lettered", lbl);
    cl->m_duration = metrics_histogram(m, "email_send_duration_seconds",
                                       "Time to send one batch of copies over SMTP", lbl, buckets,
                                       sizeof buckets / sizeof buckets[0]);
    cl->m_trips = metrics_counter(m, "smtp_circuit_trips_total",
                                  "Times the client's circuit breaker opened", lbl);
    metrics_gauge_fn(m, "smtp_circuit_open",
                     "1 while the client's circuit breaker is open (no sending until a probe "
                     "succeeds)",
                     lbl, circuit_open, &cl->br);
}

/* client_conns - the client's SMTP connections, one worker each */
static int client_conns(const struct client_rt *cl)
{
    return cl->cfg->s.connections > 0 ? cl->cfg->s.connections : 1;
}

/* sender_halt - stop and join the threads started (every worker counted in
 * nthreads; the dispatcher and writer as told); pthread_join on a thread
 * never started is undefined */
static void sender_halt(struct sender *s, bool dispatcher, bool writer)
{
    atomic_store(&s->stopping, true);
    sender_notify(s);
    if (dispatcher)
        pthread_join(s->dispatcher, NULL);
    /* workers release what is queued and finish the batch in hand, within
     * the grace period; then their SMTP waits are cancelled and those
     * copies released as well */
    for (size_t i = 0; i < s->nclients; i++)
        bqueue_close(s->clients[i].q);
    struct timespec dl = time_mono_deadline(s->cfg.shutdown_grace_ms);
    pthread_mutex_lock(&s->lock);
    while (atomic_load(&s->workers_left) > 0 &&
           pthread_cond_timedwait(&s->workers_done, &s->lock, &dl) != ETIMEDOUT)
        ;
    pthread_mutex_unlock(&s->lock);
    int left = atomic_load(&s->workers_left);
    if (left > 0) {
        log_warn("shutdown: %d SMTP workers still busy after the %d ms grace; cancelling their "
                 "sends (those copies are released and sent again later)",
                 left, s->cfg.shutdown_grace_ms);
        atomic_store(&s->cancel_io, true);
    }
    for (size_t i = 0; i < s->nclients; i++)
        for (int t = 0; t < s->clients[i].nthreads; t++)
            pthread_join(s->clients[i].threads[t], NULL);
    bqueue_close(s->results); /* the writer drains it and exits */
    if (writer)
        pthread_join(s->writer, NULL);
}

/* sender_free - free what sender_start made, the threads joined */
static void sender_free(struct sender *s)
{
    for (size_t i = 0; i < s->nclients; i++) {
        struct client_rt *cl = &s->clients[i];
        bqueue_free(cl->q);
        ratelimit_free(cl->rl);
        free(cl->threads);
        pthread_mutex_destroy(&cl->why_lock);
        smtp_breaker_cleanup(&cl->br);
    }
    for (size_t i = 0; i < s->nruns; i++)
        email_run_unref(s->runs[i]);
    free(s->runs);
    for (size_t i = 0; i < s->nlanes; i++)
        free(s->lanes[i].domain);
    free(s->lanes);
    for (size_t g = 0; g < providers_count(s->cfg.providers); g++)
        free(s->group_lanes[g]);
    free(s->group_lanes);
    free(s->ngroup_lanes);
    throttle_free(s->throttle);
    pacer_free(s->pacer);
    free(s->clients);
    bqueue_free(s->results);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->wake);
    pthread_cond_destroy(&s->workers_done);
    free(s);
}

struct sender *sender_start(const struct sender_config *cfg, char *errbuf, size_t errlen)
{
    struct sender *s = xcalloc(1, sizeof *s);
    s->cfg = *cfg;
    if (s->cfg.batch <= 0)
        s->cfg.batch = 8;
    if (s->cfg.lease_ms <= 0)
        s->cfg.lease_ms = 10 * 60 * 1000;
    if (s->cfg.shutdown_grace_ms < 0)
        s->cfg.shutdown_grace_ms = 0;
    if (s->cfg.breaker_base_ms <= 0)
        s->cfg.breaker_base_ms = 1000;
    if (s->cfg.breaker_max_ms < s->cfg.breaker_base_ms)
        s->cfg.breaker_max_ms = s->cfg.breaker_base_ms;
    pthread_mutex_init(&s->lock, NULL);
    time_cond_init_mono(&s->wake);
    time_cond_init_mono(&s->workers_done);
    s->m_queue = metrics_gauge(cfg->metrics, "email_queue_depth",
                               "Copies claimed and waiting for a worker", NULL);
    s->m_active =
        metrics_gauge(cfg->metrics, "email_workers_active", "Workers sending right now", NULL);
    int64_t released = 0;
    if (store_release_leases(cfg->store, &released) != 0) {
        errbuf_set(errbuf, errlen, "cannot release the leases of a previous run");
        free(s);
        return NULL;
    }
    if (released)
        log_warn("released %lld copies leased by a previous run (crash?)", (long long)released);
    atomic_init(&s->share, 1);
    s->throttle = throttle_new(cfg->providers, cfg->metrics);
    s->pacer = pacer_new(cfg->store, cfg->providers);
    size_t ngroups = providers_count(cfg->providers);
    s->group_lanes = xcalloc(ngroups ? ngroups : 1, sizeof *s->group_lanes);
    s->ngroup_lanes = xcalloc(ngroups ? ngroups : 1, sizeof *s->ngroup_lanes);
    s->nclients = cfg->clients->n;
    s->clients = xcalloc(s->nclients, sizeof *s->clients);
    s->results = bqueue_new(RESULTS_QUEUE);
    for (size_t i = 0; i < s->nclients; i++) {
        struct client_rt *cl = &s->clients[i];
        cl->cfg = &cfg->clients->v[i];
        cl->rl = ratelimit_new(cl->cfg->s.tpm);
        size_t qcap = (size_t)client_conns(cl) * (size_t)s->cfg.batch * 4;
        cl->q = bqueue_new_reserve(qcap < 64 ? 64 : qcap, CLAIM_MAX); /* room for urgent copies */
        pthread_mutex_init(&cl->why_lock, NULL);
        smtp_breaker_init(&cl->br, s->cfg.breaker_base_ms, s->cfg.breaker_max_ms,
                          (unsigned)time_now_ms() ^ (unsigned)(i * 2654435761u));
        client_metrics(s, cl);
    }
    /* consumers before producers: the writer, the workers, then the
     * dispatcher; a thread that cannot start stops those started */
    bool writer = false;
    int rc = pthread_create(&s->writer, NULL, writer_main, s);
    if (rc != 0)
        goto fail;
    writer = true;
    for (size_t i = 0; i < s->nclients; i++) {
        struct client_rt *cl = &s->clients[i];
        int want = client_conns(cl);
        cl->threads = xcalloc((size_t)want, sizeof *cl->threads);
        for (; cl->nthreads < want; cl->nthreads++) {
            struct worker_arg *wa = xmalloc(sizeof *wa);
            wa->s = s;
            wa->cl = cl;
            atomic_fetch_add(&s->workers_left, 1);
            rc = pthread_create(&cl->threads[cl->nthreads], NULL, worker_main, wa);
            if (rc != 0) {
                atomic_fetch_sub(&s->workers_left, 1);
                free(wa);
                goto fail;
            }
        }
    }
    rc = pthread_create(&s->dispatcher, NULL, dispatcher_main, s);
    if (rc != 0)
        goto fail;
    return s;
fail:
    errbuf_set(errbuf, errlen, "cannot start a thread: %s", strerror(rc));
    sender_halt(s, false, writer);
    sender_free(s);
    return NULL;
}

void sender_stop(struct sender *s)
{
    if (!s)
        return;
    sender_halt(s, true, true);
    sender_free(s);
}

bool sender_smtp_ok(struct sender *s, char *why, size_t len)
{
    for (size_t i = 0; i < s->nclients; i++) {
        struct client_rt *cl = &s->clients[i];
        if (!smtp_breaker_closed(&cl->br)) {
            struct smtp_breaker_status st;
            smtp_breaker_status(&cl->br, time_mono_ms(), &st);
            if (st.state != SMTP_BREAKER_CLOSED) {
                if (st.state == SMTP_BREAKER_PROBING)
                    snprintf(why, len, "%s: circuit open (%s); probing the server now",
                             cl->cfg->s.name, st.why);
                else
                    snprintf(why, len, "%s: circuit open (%s); next probe in %lld ms",
                             cl->cfg->s.name, st.why, (long long)st.probe_in_ms);
                return false;
            }
        }
    }
    for (size_t i = 0; i < s->nclients; i++) {
        struct client_rt *cl = &s->clients[i];
        if (atomic_load(&cl->down)) {
            pthread_mutex_lock(&cl->why_lock);
            snprintf(why, len, "%s: %s", cl->cfg->s.name, cl->down_why);
            pthread_mutex_unlock(&cl->why_lock);
            return false;
        }
    }
    return true;
}
