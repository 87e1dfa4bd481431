/* identities.c - today's view of identities, their state gauge, the policy
 * decisions' log and counter, operator pause and resume (identities.h).
 * Locks: mu guards the cache entries' fields and list; tz_mu the zones.
 * Neither is held while calling the metrics registry (its render lock
 * calls the gauge, which takes mu) or the store. */
#include "identities.h"
#include "identity_clock.h"
#include "log.h"
#include "metrics.h"
#include "policy.h"
#include "ramp.h"
#include "store.h"
#include "tz.h"
#include "xalloc.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DECISIONS_HELP                                                                             \
    "Placement policy decisions and operator actions, by identity, provider, decision and reason"
#define STATE_HELP "1 for each identity's current state (ramping, holding, paused, warm), else 0"

static const char *const state_names[IDENTITY_NSTATES] = {"ramping", "holding", "paused", "warm"};

const char *identity_state_name(enum identity_state s)
{
    return (unsigned)s < IDENTITY_NSTATES ? state_names[s] : "ramping";
}

struct id_entry;
struct gauge_slot {
    struct id_entry *e;
    enum identity_state state;
};

/* what an identity's state depends on, for the gauge */
struct id_entry {
    struct identities *ids;
    int64_t id;
    char *address;
    bool has_ramp;
    struct ramp ramp;
    int win_start, win_end;
    const struct tz *tz;
    bool paused;
    bool provider_held; /* some provider holding or paused */
    struct gauge_slot slots[IDENTITY_NSTATES];
    struct id_entry *next;
};

struct tz_entry {
    char *name;
    struct tz *tz; /* NULL: could not be loaded (UTC) */
    struct tz_entry *next;
};

struct identities {
    struct identities_config cfg;
    pthread_mutex_t mu;
    struct id_entry *entries;
    pthread_mutex_t tz_mu;
    struct tz_entry *zones;
};

/* append - printf onto s[n] after what it holds, truncating */
static void append(char *s, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void append(char *s, size_t n, const char *fmt, ...)
{
    size_t len = strlen(s);
    if (len + 1 >= n)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s + len, n - len, fmt, ap);
    va_end(ap);
}

/* local_day - the local day at now_ms of the window start..end in tz */
static int64_t local_day(int start, int end, const struct tz *tz, int64_t now_ms)
{
    struct window w = {.start_min = start, .end_min = end, .tz = tz};
    int64_t day, s, e;
    window_day(&w, now_ms, &day, &s, &e);
    return day;
}

/* state_of - DESIGN 9.3's identity state */
static enum identity_state state_of(bool paused, bool provider_held, bool has_ramp,
                                    const struct ramp *r, int64_t quota)
{
    if (paused)
        return IDENTITY_PAUSED;
    if (provider_held)
        return IDENTITY_HOLDING;
    if (!has_ramp || quota >= r->max_per_day)
        return IDENTITY_WARM;
    return IDENTITY_RAMPING;
}

static bool held(const struct identity *x)
{
    for (size_t i = 0; i < x->nproviders; i++)
        if (strcmp(x->providers[i].state, "ramping") != 0)
            return true;
    return false;
}

void identity_today(const struct identity *x, const struct tz *tz, int64_t now_ms,
                    struct identity_today *t)
{
    memset(t, 0, sizeof *t);
    t->day = local_day(x->win_start_min, x->win_end_min, tz, now_ms);
    t->has_quota = x->has_ramp;
    t->quota = x->has_ramp ? ramp_quota(&x->ramp, t->day) : 0;
    t->state = state_of(x->paused, held(x), x->has_ramp, &x->ramp, t->quota);
    char date[16];
    switch (t->state) {
    case IDENTITY_PAUSED:
        append(t->reason, sizeof t->reason, "%s",
               x->paused_reason ? x->paused_reason : "paused by operator");
        break;
    case IDENTITY_HOLDING:
        for (size_t i = 0; i < x->nproviders; i++) {
            const struct identity_provider *p = &x->providers[i];
            if (strcmp(p->state, "ramping") != 0)
                append(t->reason, sizeof t->reason, "%s%s %s: %s", t->reason[0] ? "; " : "",
                       p->provider, p->state, p->reason);
        }
        break;
    case IDENTITY_WARM:
        if (x->has_ramp)
            append(t->reason, sizeof t->reason, "quota at max_per_day %lld",
                   (long long)x->ramp.max_per_day);
        else
            append(t->reason, sizeof t->reason, "no ramp");
        break;
    case IDENTITY_RAMPING:
        date_format(x->ramp.start_day, date, sizeof date);
        if (t->day < x->ramp.start_day)
            append(t->reason, sizeof t->reason, "the ramp starts on %s", date);
        else
            append(t->reason, sizeof t->reason, "ramp day %lld since %s",
                   (long long)(t->day - x->ramp.start_day), date);
        break;
    }
}

/* ---- the gauge ---------------------------------------------------------- */

static double state_gauge(void *arg)
{
    struct gauge_slot *g = arg;
    struct id_entry *e = g->e;
    int64_t now = ident_now_ms();
    pthread_mutex_lock(&e->ids->mu);
    int64_t quota = 0;
    if (e->has_ramp)
        quota = ramp_quota(&e->ramp, local_day(e->win_start, e->win_end, e->tz, now));
    enum identity_state st = state_of(e->paused, e->provider_held, e->has_ramp, &e->ramp, quota);
    pthread_mutex_unlock(&e->ids->mu);
    return st == g->state ? 1 : 0;
}

const struct tz *identities_tz(struct identities *ids, const char *name)
{
    if (!name || strcmp(name, "UTC") == 0)
        return NULL;
    pthread_mutex_lock(&ids->tz_mu);
    struct tz_entry *z = ids->zones;
    while (z && strcmp(z->name, name) != 0)
        z = z->next;
    if (!z) {
        char err[256];
        z = xcalloc(1, sizeof *z);
        z->name = xstrdup(name);
        z->tz = tz_load(name, err, sizeof err);
        if (!z->tz)
            log_warn("identities: %s; using UTC", err);
        z->next = ids->zones;
        ids->zones = z;
    }
    pthread_mutex_unlock(&ids->tz_mu);
    return z->tz;
}

/* refresh - x into the cache, its gauge series created when new */
static void refresh(struct identities *ids, const struct identity *x)
{
    const struct tz *tz = identities_tz(ids, x->tz);
    bool created = false;
    pthread_mutex_lock(&ids->mu);
    struct id_entry *e = ids->entries;
    while (e && e->id != x->id)
        e = e->next;
    if (!e) {
        e = xcalloc(1, sizeof *e);
        e->ids = ids;
        e->id = x->id;
        e->address = xstrdup(x->address);
        for (int k = 0; k < IDENTITY_NSTATES; k++)
            e->slots[k] = (struct gauge_slot){.e = e, .state = (enum identity_state)k};
        e->next = ids->entries;
        ids->entries = e;
        created = true;
    }
    e->has_ramp = x->has_ramp;
    e->ramp = x->ramp;
    e->win_start = x->win_start_min;
    e->win_end = x->win_end_min;
    e->tz = tz;
    e->paused = x->paused;
    e->provider_held = held(x);
    pthread_mutex_unlock(&ids->mu);
    if (created && ids->cfg.metrics) /* entries live until identities_free */
        for (int k = 0; k < IDENTITY_NSTATES; k++)
            metrics_gauge_fn(
                ids->cfg.metrics, "warmup_identity_state", STATE_HELP,
                (const char *[]){"identity", e->address, "state", state_names[k], NULL},
                state_gauge, &e->slots[k]);
}

void identities_changed(struct identities *ids, const struct identity *x)
{
    refresh(ids, x);
    if (ids->cfg.changed)
        ids->cfg.changed(ids->cfg.changed_arg, x->id);
}

struct identities *identities_new(const struct identities_config *cfg, char *err, size_t n)
{
    struct identities *ids = xcalloc(1, sizeof *ids);
    ids->cfg = *cfg;
    pthread_mutex_init(&ids->mu, NULL);
    pthread_mutex_init(&ids->tz_mu, NULL);
    for (int64_t offset = 0;;) {
        struct identity *v;
        size_t nv;
        if (store_list_identities(cfg->store, 1000, offset, &v, &nv) != 0) {
            snprintf(err, n, "cannot read the identities");
            identities_free(ids);
            return NULL;
        }
        for (size_t i = 0; i < nv; i++)
            refresh(ids, &v[i]);
        store_identities_free(v, nv);
        if (nv < 1000)
            break;
        offset += (int64_t)nv;
    }
    return ids;
}

void identities_free(struct identities *ids)
{
    if (!ids)
        return;
    for (struct id_entry *e = ids->entries, *next; e; e = next) {
        next = e->next;
        free(e->address);
        free(e);
    }
    for (struct tz_entry *z = ids->zones, *next; z; z = next) {
        next = z->next;
        tz_free(z->tz);
        free(z->name);
        free(z);
    }
    pthread_mutex_destroy(&ids->mu);
    pthread_mutex_destroy(&ids->tz_mu);
    free(ids);
}

/* ---- decisions ---------------------------------------------------------- */

void identities_decision(struct identities *ids, const char *address, const char *provider,
                         const char *decision, const char *why, const char *state,
                         const char *reason)
{
    log_info("identity=%s provider=%s %s: %s (decision=%s reason=%s)", address, provider, state,
             reason, decision, why);
    if (ids->cfg.metrics)
        metric_inc(metrics_counter(ids->cfg.metrics, "warmup_policy_decisions_total",
                                   DECISIONS_HELP,
                                   (const char *[]){"identity", address, "provider", provider,
                                                    "decision", decision, "reason", why, NULL}));
}

int identities_pause(struct identities *ids, int64_t id, const char *reason)
{
    if (!reason)
        reason = "paused by operator";
    int rc = store_pause_identity(ids->cfg.store, id, reason);
    if (rc != 0)
        return rc;
    struct identity x;
    if (store_get_identity(ids->cfg.store, id, &x) == 0) {
        identities_decision(ids, x.address, "all", "pause", "operator", "paused", reason);
        identities_changed(ids, &x);
        identity_cleanup(&x);
    }
    return 0;
}

int identities_resume(struct identities *ids, int64_t id)
{
    static const char reason[] = "resumed by operator";
    int64_t now = ident_now_ms();
    int64_t grace = now + (int64_t)(ids->cfg.policy->cooldown_hours * 3600.0 * 1000.0);
    bool was_paused;
    char **resumed;
    size_t n;
    int rc =
        store_resume_identity(ids->cfg.store, id, now, grace, reason, &was_paused, &resumed, &n);
    if (rc != 0)
        return rc;
    struct identity x;
    if (store_get_identity(ids->cfg.store, id, &x) == 0) {
        if (was_paused)
            identities_decision(ids, x.address, "all", "resume", "operator", "ramping", reason);
        for (size_t i = 0; i < n; i++)
            identities_decision(ids, x.address, resumed[i], "resume", "operator", "ramping",
                                reason);
        identities_changed(ids, &x);
        identity_cleanup(&x);
    }
    for (size_t i = 0; i < n; i++)
        free(resumed[i]);
    free(resumed);
    return 0;
}
