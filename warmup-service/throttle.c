/* throttle.c - see throttle.h. The buckets are ratelimit.h's (thread-safe,
 * at most 0.1 s of burst, so a minute holds to the rate within a token);
 * the in-flight count is an atomic. */
#include "throttle.h"
#include "metrics.h"
#include "providers.h"
#include "ratelimit.h"
#include "xalloc.h"

#include <stdatomic.h>
#include <stdlib.h>

struct group_rt {
    struct ratelimit *minute, *hour; /* NULL: no such limit */
    double per_minute, per_hour;     /* as configured (throttle_set_share) */
    int connections;                 /* 0: no limit */
    atomic_int inflight;
};

struct throttle {
    struct group_rt *g;
    size_t n;
};

static double inflight_of(void *arg)
{
    return (double)atomic_load(&((struct group_rt *)arg)->inflight);
}

struct throttle *throttle_new(const struct providers *p, struct metrics *m)
{
    struct throttle *t = xcalloc(1, sizeof *t);
    t->n = providers_count(p);
    t->g = xcalloc(t->n ? t->n : 1, sizeof *t->g);
    for (size_t i = 0; i < t->n; i++) {
        const struct provider_group *pg = providers_get(p, i);
        struct group_rt *g = &t->g[i];
        g->minute = pg->per_minute > 0 ? ratelimit_new(pg->per_minute) : NULL;
        g->hour = pg->per_hour > 0 ? ratelimit_new(pg->per_hour / 60.0) : NULL;
        g->connections = pg->connections;
        g->per_minute = pg->per_minute;
        g->per_hour = pg->per_hour;
        atomic_init(&g->inflight, 0);
        if (m)
            metrics_gauge_fn(m, "provider_inflight",
                             "Copies of the provider claimed and not yet answered (THROTTLES_FILE)",
                             (const char *[]){"provider", pg->name, NULL}, inflight_of, g);
    }
    return t;
}

void throttle_free(struct throttle *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++) {
        ratelimit_free(t->g[i].minute);
        ratelimit_free(t->g[i].hour);
    }
    free(t->g);
    free(t);
}

void throttle_set_share(struct throttle *t, int n)
{
    for (size_t i = 0; t && n > 0 && i < t->n; i++) {
        if (t->g[i].minute)
            ratelimit_set(t->g[i].minute, t->g[i].per_minute / n);
        if (t->g[i].hour)
            ratelimit_set(t->g[i].hour, t->g[i].per_hour / 60.0 / n);
    }
}

bool throttle_limited(const struct throttle *t, int g)
{
    if (!t || g < 0 || (size_t)g >= t->n)
        return false;
    const struct group_rt *x = &t->g[g];
    return x->minute || x->hour || x->connections > 0;
}

int throttle_take(struct throttle *t, int g, int want, int64_t now_ms, int64_t *wait_ms)
{
    if (!throttle_limited(t, g) || want <= 0)
        return want > 0 ? want : 0;
    struct group_rt *x = &t->g[g];
    if (x->connections > 0) {
        int room = x->connections - atomic_load(&x->inflight);
        if (room < want)
            want = room > 0 ? room : 0;
        if (want == 0) {
            if (*wait_ms > 5)
                *wait_ms = 5; /* an outcome frees a connection: look again soon */
            return 0;
        }
    }
    int got = want, got2 = want;
    int64_t w;
    if (x->minute && (w = ratelimit_take(x->minute, want, now_ms, &got)) > 0 && w < *wait_ms)
        *wait_ms = w;
    if (got > 0 && x->hour) {
        if ((w = ratelimit_take(x->hour, got, now_ms, &got2)) > 0 && w < *wait_ms)
            *wait_ms = w;
        if (got2 < got && x->minute)
            ratelimit_refund(x->minute, got - got2);
        got = got2;
    }
    if (got > 0)
        atomic_fetch_add(&x->inflight, got);
    return got;
}

void throttle_refund(struct throttle *t, int g, int n)
{
    if (!throttle_limited(t, g) || n <= 0)
        return;
    struct group_rt *x = &t->g[g];
    if (x->minute)
        ratelimit_refund(x->minute, n);
    if (x->hour)
        ratelimit_refund(x->hour, n);
    atomic_fetch_sub(&x->inflight, n);
}

void throttle_done(struct throttle *t, int g)
{
    if (throttle_limited(t, g))
        atomic_fetch_sub(&t->g[g].inflight, 1);
}
