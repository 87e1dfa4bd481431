/* pacer.c - see pacer.h. One entry per From address seen (with or without
 * an identity); an identity's entry holds its settings, zone, today's
 * counts per provider and the next pacing slot, all on the identity clock
 * (identity_clock.h). Entries are reloaded from the store when changed,
 * when the local day turns, and every RELOAD_MS. */
#include "pacer.h"
#include "identity_clock.h"
#include "log.h"
#include "providers.h"
#include "ramp.h"
#include "store.h"
#include "timeutil.h"
#include "tz.h"
#include "xalloc.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define RELOAD_MS 30000  /* settings and counts read again at least this often */
#define NONE_TTL_MS 5000 /* a From without identity is asked again after this */
#define HOLD_LOOKBACK 7  /* days a holding provider's cap looks back */

struct prov_count {
    char *provider;
    int64_t sent; /* today */
    int64_t cap;  /* holding: the day's cap; -1 none */
    bool paused;  /* paused for this identity */
    char *why;    /* paused or holding: the state's reason */
};

struct entry {
    char *from;
    int64_t id; /* 0: no identity */
    int64_t loaded_mono;
    bool stale;
    struct identity info;
    struct tz *tz;
    struct window win;
    int64_t day, quota, sent; /* today's; quota -1: no ramp */
    struct prov_count *pc;
    size_t npc;
    double next_ms; /* identity clock: the next slot (fractional: rates above 1,000/s
                     * keep their precision); 0: set at the next plan */
    const char **blocked;
};

struct pacer {
    struct store *st;
    const struct providers *prov;
    struct entry *v;
    size_t n, cap;
    pthread_mutex_t lock; /* the changed list (any thread) */
    int64_t *changed;
    size_t nchanged, capchanged;
    bool all_changed;
    unsigned seed;
};

struct pacer *pacer_new(struct store *st, const struct providers *prov)
{
    struct pacer *p = xcalloc(1, sizeof *p);
    p->st = st;
    p->prov = prov;
    pthread_mutex_init(&p->lock, NULL);
    p->seed = (unsigned)time_now_ms();
    return p;
}

static void entry_clear(struct entry *e)
{
    identity_cleanup(&e->info);
    tz_free(e->tz);
    e->tz = NULL;
    for (size_t i = 0; i < e->npc; i++) {
        free(e->pc[i].provider);
        free(e->pc[i].why);
    }
    free(e->pc);
    e->pc = NULL;
    e->npc = 0;
    free(e->blocked);
    e->blocked = NULL;
}

void pacer_free(struct pacer *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n; i++) {
        entry_clear(&p->v[i]);
        free(p->v[i].from);
    }
    free(p->v);
    free(p->changed);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

void pacer_changed(struct pacer *p, int64_t identity_id)
{
    pthread_mutex_lock(&p->lock);
    if (identity_id <= 0) {
        p->all_changed = true;
    } else {
        if (p->nchanged == p->capchanged) {
            p->capchanged = p->capchanged ? 2 * p->capchanged : 8;
            p->changed = xreallocarray(p->changed, p->capchanged, sizeof *p->changed);
        }
        p->changed[p->nchanged++] = identity_id;
    }
    pthread_mutex_unlock(&p->lock);
}

/* take_changed - mark the entries changed since the last plan stale */
static void take_changed(struct pacer *p)
{
    pthread_mutex_lock(&p->lock);
    bool all = p->all_changed;
    for (size_t i = 0; i < p->n; i++)
        for (size_t k = 0; !all && k < p->nchanged; k++)
            if (p->v[i].id == p->changed[k])
                p->v[i].stale = true;
    if (all)
        for (size_t i = 0; i < p->n; i++)
            p->v[i].stale = true;
    p->nchanged = 0;
    p->all_changed = false;
    pthread_mutex_unlock(&p->lock);
}

static struct prov_count *prov(struct entry *e, const char *name)
{
    for (size_t i = 0; i < e->npc; i++)
        if (strcasecmp(e->pc[i].provider, name) == 0)
            return &e->pc[i];
    e->pc = xreallocarray(e->pc, e->npc + 1, sizeof *e->pc);
    e->blocked = xreallocarray(e->blocked, e->npc + 1, sizeof *e->blocked);
    struct prov_count *x = &e->pc[e->npc++];
    *x = (struct prov_count){.provider = xstrdup(name), .cap = -1};
    return x;
}

/* load_counts - today's counts per provider, and each holding provider's
 * cap from the days before. Providers come from the lanes' domains; the
 * dispatcher passes names the same way (pacer_claimed). */
static void load_counts(struct pacer *p, struct entry *e)
{
    struct identity_day_count *v = NULL;
    size_t n = 0;
    e->sent = 0;
    for (size_t i = 0; i < e->info.nproviders; i++) {
        const struct identity_provider *ip = &e->info.providers[i];
        struct prov_count *x = prov(e, ip->provider);
        x->paused = strcmp(ip->state, "paused") == 0;
        x->cap = strcmp(ip->state, "holding") == 0 ? 1 : -1;
        free(x->why);
        x->why = xstrdup(ip->reason && *ip->reason ? ip->reason : ip->state);
    }
    if (store_identity_days(p->st, e->id, e->day - HOLD_LOOKBACK, e->day, &v, &n) != 0)
        return;
    for (size_t i = 0; i < n; i++) {
        struct prov_count *x = prov(e, providers_name(p->prov, v[i].domain));
        if (v[i].day == e->day) {
            x->sent += v[i].sent;
            e->sent += v[i].sent;
        }
    }
    /* a holding provider's cap: its best day of the last week, today
     * included (summed over its domains), so its volume stops growing */
    for (size_t k = 0; k < e->npc; k++) {
        struct prov_count *x = &e->pc[k];
        if (x->cap < 0)
            continue;
        for (int64_t d = e->day - HOLD_LOOKBACK; d <= e->day; d++) {
            int64_t sum = 0;
            for (size_t i = 0; i < n; i++)
                if (v[i].day == d &&
                    strcasecmp(providers_name(p->prov, v[i].domain), x->provider) == 0)
                    sum += v[i].sent;
            if (sum > x->cap)
                x->cap = sum;
        }
    }
    store_identity_days_free(v, n);
}

/* load - (re)read e's identity at identity-clock now: settings, zone,
 * today's window and counts. false: no identity for e->from */
static bool load(struct pacer *p, struct entry *e, int64_t now)
{
    int64_t old_day = e->day;
    double old_next = e->next_ms;
    entry_clear(e);
    e->id = 0;
    e->stale = false;
    e->loaded_mono = time_mono_ms();
    int rc = store_identity_by_address(p->st, e->from, &e->info);
    if (rc != 0) {
        if (rc < 0)
            log_warn("pacer: identity of %s unreadable; sending unpaced until the next try",
                     e->from);
        memset(&e->info, 0, sizeof e->info);
        return false;
    }
    e->id = e->info.id;
    e->win = (struct window){.start_min = 0, .end_min = 1440};
    if (e->info.has_window) {
        char err[160];
        e->win.start_min = e->info.win_start_min;
        e->win.end_min = e->info.win_end_min;
        if (e->info.tz && strcmp(e->info.tz, "UTC") != 0 &&
            !(e->tz = tz_load(e->info.tz, err, sizeof err)))
            log_warn("identity_id=%lld: %s; its window is read in UTC", (long long)e->id, err);
        e->win.tz = e->tz;
    }
    int64_t start, end;
    window_day(&e->win, now, &e->day, &start, &end);
    e->quota = e->info.has_ramp ? ramp_quota(&e->info.ramp, e->day) : -1;
    load_counts(p, e);
    e->next_ms = e->day == old_day ? old_next : 0; /* a new day: placed at the next plan */
    return true;
}

static struct entry *lookup(struct pacer *p, const char *from, int64_t now)
{
    struct entry *e = NULL;
    for (size_t i = 0; i < p->n && !e; i++)
        if (strcasecmp(p->v[i].from, from) == 0)
            e = &p->v[i];
    if (!e) {
        if (p->n == p->cap) {
            p->cap = p->cap ? 2 * p->cap : 8;
            p->v = xreallocarray(p->v, p->cap, sizeof *p->v);
        }
        e = &p->v[p->n++];
        memset(e, 0, sizeof *e);
        e->from = xstrdup(from);
        e->stale = true;
    }
    int64_t age = time_mono_ms() - e->loaded_mono;
    if (e->stale || age >= (e->id ? RELOAD_MS : NONE_TTL_MS))
        load(p, e, now);
    return e;
}

static void when_text(const struct entry *e, int64_t at_ms, char *out, size_t n)
{
    int64_t local = at_ms / 1000 + tz_offset_s(e->tz, at_ms / 1000);
    char date[16];
    date_format(local / 86400 - (local % 86400 < 0), date, sizeof date);
    int64_t sod = ((local % 86400) + 86400) % 86400;
    snprintf(out, n, "%s %02d:%02d %s", date, (int)(sod / 3600), (int)(sod / 60 % 60),
             e->tz ? tz_name(e->tz) : "UTC");
}

void pacer_plan(struct pacer *p, const char *from, int want, struct pace *out, int64_t *wait_ms,
                char *why, size_t whylen)
{
    memset(out, 0, sizeof *out);
    out->allow = want;
    why[0] = '\0';
    take_changed(p);
    int64_t now = ident_now_ms();
    struct entry *e = lookup(p, from, now);
    if (!e->id)
        return;
    int64_t day, start, end;
    window_day(&e->win, now, &day, &start, &end);
    if (day != e->day)
        load(p, e, now);
    if (!e->id)
        return;
    out->identity_id = e->id;
    out->day = e->day;
    out->allow = 0;
    char when[64];
    if (e->info.paused) {
        snprintf(why, whylen, "identity %s paused: %s", e->info.address,
                 e->info.paused_reason ? e->info.paused_reason : "by the operator");
        return;
    }
    if (now < start || now >= end || (e->quota >= 0 && e->sent >= e->quota)) {
        int64_t nday, next = now < start ? start : window_next_start(&e->win, now, &nday);
        when_text(e, next, when, sizeof when);
        if (now >= start && now < end)
            snprintf(why, whylen, "identity %s: today's quota of %lld reached; next window %s",
                     e->info.address, (long long)e->quota, when);
        else
            snprintf(why, whylen, "identity %s: outside its sending window; it opens %s",
                     e->info.address, when);
        return;
    }
    int allow = want;
    if (e->quota >= 0) {
        int64_t left = e->quota - e->sent;
        double interval = (double)(end - now) / (double)left;
        if (e->next_ms == 0) /* the day's first plan, or after a restart: no burst */
            e->next_ms = (double)now + interval * (rand_r(&p->seed) / (RAND_MAX + 1.0));
        if ((double)now < e->next_ms) {
            int64_t w = (int64_t)(e->next_ms - (double)now) + 1;
            if (w < *wait_ms)
                *wait_ms = w;
            return;
        }
        /* slots missed while the dispatcher was late are granted now, but
         * at most one interval (or 100 ms) of them: no burst after a lull */
        double late = (double)now - e->next_ms, most = interval > 100 ? interval : 100;
        if (late > most)
            e->next_ms = (double)now - (late = most);
        int64_t due = 1 + (int64_t)(late / interval);
        if (due < allow)
            allow = (int)due;
        if (left < allow)
            allow = (int)left;
    }
    out->allow = allow;
    size_t nb = 0, used = 0;
    for (size_t i = 0; i < e->npc; i++) {
        const struct prov_count *x = &e->pc[i];
        if (!x->paused && !(x->cap >= 0 && x->sent >= x->cap))
            continue;
        e->blocked[nb++] = x->provider;
        if (used < whylen) /* the reason if these providers' copies are left waiting */
            used += (size_t)snprintf(why + used, whylen - used,
                                     "%sidentity %s: nothing to %s now (%s%s)", nb > 1 ? "; " : "",
                                     e->info.address, x->provider,
                                     x->paused ? "" : "holding at today's cap: ", x->why);
    }
    out->blocked = e->blocked;
    out->nblocked = nb;
}

void pacer_claimed(struct pacer *p, const struct pace *pc, const char *const *provider, size_t n)
{
    if (!pc->identity_id || n == 0)
        return;
    struct entry *e = NULL;
    for (size_t i = 0; i < p->n && !e; i++)
        if (p->v[i].id == pc->identity_id)
            e = &p->v[i];
    if (!e || e->day != pc->day)
        return;
    for (size_t i = 0; i < n; i++)
        prov(e, provider[i])->sent++;
    e->sent += (int64_t)n;
    if (e->quota >= 0 && e->sent < e->quota) {
        /* each slot follows the last one (not the clock), spread over what
         * is left of the window */
        int64_t now = ident_now_ms(), day, start, end;
        window_day(&e->win, now, &day, &start, &end);
        for (size_t i = 0; i < n && e->next_ms < (double)end; i++)
            e->next_ms = pace_next(e->next_ms, end, e->quota, e->sent - (int64_t)(n - 1 - i),
                                   rand_r(&p->seed) / (RAND_MAX + 1.0));
    }
}
