/* placement.c - the placement.summary thread (placement.h): its rounds,
 * the pairs last published, the provider gauges.
 *
 * Thread "placement": waits for a kick (a feedback-loop round ended) or
 * the interval, runs a round, and so on until placement_stop. It alone
 * touches last, the producer and the gauges; kicked and stop are shared
 * (mu, atomics). */
#include "placement.h"
#include "errbuf.h"
#include "event.h"
#include "fproducer.h"
#include "hstore.h"
#include "log.h"
#include "metrics.h"
#include "placement_calc.h"
#include "timeutil.h"
#include "xalloc.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIN_GAP_MS 1000 /* between two rounds, at least */

struct placement {
    struct placement_config cfg;
    struct fproducer *fp;
    pthread_t thread;
    bool started;
    atomic_bool stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool kicked;                 /* under mu */
    struct placement_pair *last; /* the pairs as last published, sorted */
    size_t nlast;
    char **gauged; /* providers with gauges, so one that leaves is set to 0 */
    size_t ngauged;
    struct metric *m_published, *m_failed, *m_errors, *m_seconds;
};

/* ---- the provider gauges ---------------------------------------------- */

static void provider_gauges(struct placement *p, const char *provider,
                            const struct placement_counts *c)
{
    const struct {
        const char *state;
        int64_t v;
    } v[] = {{"checked", c->checked},
             {"inbox", c->inbox},
             {"spam", c->spam},
             {"bounced", c->bounced},
             {"complained", c->complained}};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        metric_set(
            metrics_gauge(p->cfg.metrics, "health_provider_copies",
                          "Copies sent within FEEDBACK_WINDOW to a recipient provider whose "
                          "placement is known (checked = inbox + spam + bounced + "
                          "complained; each copy in one)",
                          (const char *const[]){"provider", provider, "state", v[i].state, NULL}),
            (double)v[i].v);
}

/* set_gauges - every provider's counts of rows (any identity or none); a
 * provider seen before and absent now gets zeros */
static void set_gauges(struct placement *p, const struct hstore_placement_row *rows, size_t n)
{
    struct placement_pair *g;
    size_t ng;
    placement_group(rows, n, p->cfg.providers, false, &g, &ng);
    for (size_t k = 0; k < p->ngauged; k++) {
        bool present = false;
        for (size_t i = 0; i < ng && !present; i++)
            present = strcmp(g[i].provider, p->gauged[k]) == 0;
        if (!present)
            provider_gauges(p, p->gauged[k], &(struct placement_counts){0});
    }
    for (size_t i = 0; i < ng; i++) {
        provider_gauges(p, g[i].provider, &g[i].n);
        bool known = false;
        for (size_t k = 0; k < p->ngauged && !known; k++)
            known = strcmp(g[i].provider, p->gauged[k]) == 0;
        if (!known) {
            p->gauged = xreallocarray(p->gauged, p->ngauged + 1, sizeof *p->gauged);
            p->gauged[p->ngauged++] = xstrdup(g[i].provider);
        }
    }
    placement_pairs_free(g, ng);
}

/* ---- a round ------------------------------------------------------------ */

/* publish - the changes ch[0, n): each produced, the delivered ones (and
 * the quiet ones) committed into last */
static void publish(struct placement *p, const struct placement_pair *ch, size_t n, int64_t now)
{
    bool *sent = xcalloc(n, sizeof *sent), *delivered = xcalloc(n, sizeof *delivered);
    char at[32], err[256];
    size_t produced = 0;
    time_rfc3339_ms(now, at, sizeof at);
    for (size_t i = 0; i < n; i++) {
        if (ch[i].quiet)
            continue;
        const struct event_placement_summary e = {.identity = ch[i].identity,
                                                  .provider = ch[i].provider,
                                                  .window_s = p->cfg.window_s,
                                                  .checked = ch[i].n.checked,
                                                  .inbox = ch[i].n.inbox,
                                                  .spam = ch[i].n.spam,
                                                  .bounced = ch[i].n.bounced,
                                                  .complained = ch[i].n.complained,
                                                  .at = at};
        char *value = event_encode_placement_summary(&e);
        sent[i] = fproducer_send(p->fp, ch[i].identity, value, &delivered[i], err, sizeof err) == 0;
        free(value);
        if (!sent[i])
            log_warn("placement.summary identity=%s provider=%s not produced: %s", ch[i].identity,
                     ch[i].provider, err);
        produced += sent[i];
    }
    if (produced)
        fproducer_wait(p->fp, &p->stop);
    for (size_t i = 0; i < n; i++) {
        if (ch[i].quiet) {
            placement_commit(&p->last, &p->nlast, &ch[i]);
            continue;
        }
        if (!(sent[i] && delivered[i])) {
            metric_inc(p->m_failed); /* still unpublished: tried again next round */
            continue;
        }
        placement_commit(&p->last, &p->nlast, &ch[i]);
        metric_inc(p->m_published);
        log_info("placement.summary identity=%s provider=%s window_s=%lld checked=%lld inbox=%lld "
                 "spam=%lld bounced=%lld complained=%lld%s",
                 ch[i].identity, ch[i].provider, (long long)p->cfg.window_s,
                 (long long)ch[i].n.checked, (long long)ch[i].n.inbox, (long long)ch[i].n.spam,
                 (long long)ch[i].n.bounced, (long long)ch[i].n.complained,
                 ch[i].gone ? " (no copy in the window any more)" : "");
    }
    free(sent);
    free(delivered);
}

static void round_once(struct placement *p)
{
    int64_t now = time_now_ms(), t0 = time_mono_ms();
    struct hstore_placement_row *rows;
    size_t n;
    if (hstore_placement_counts(p->cfg.store, now - p->cfg.window_s * 1000, &rows, &n) != 0) {
        metric_inc(p->m_errors);
        log_warn("placement: the store could not be read (tried again next round)");
        return;
    }
    int64_t read_ms = time_mono_ms() - t0;
    set_gauges(p, rows, n);
    struct placement_pair *cur, *ch;
    size_t ncur, nch;
    placement_group(rows, n, p->cfg.providers, true, &cur, &ncur);
    hstore_placement_rows_free(rows, n);
    placement_diff(p->last, p->nlast, cur, ncur, &ch, &nch);
    placement_pairs_free(cur, ncur);
    if (nch)
        publish(p, ch, nch, now);
    placement_pairs_free(ch, nch);
    int64_t ms = time_mono_ms() - t0;
    metric_set(p->m_seconds, (double)ms / 1000.0);
    log_debug("placement round: %zu rows read in %lld ms, %zu pairs, %zu changes, %lld ms in all",
              n, (long long)read_ms, ncur, nch, (long long)ms);
}

static void *thread_main(void *arg)
{
    struct placement *p = arg;
    pthread_setname_np(pthread_self(), "placement"); /* top -H, perf, gdb */
    while (!atomic_load(&p->stop)) {
        pthread_mutex_lock(&p->mu);
        p->kicked = false; /* a kick from now on asks for another round */
        pthread_mutex_unlock(&p->mu);
        int64_t start = time_mono_ms();
        round_once(p);
        int64_t end = time_mono_ms(), len = end - start;
        int64_t earliest = end + (4 * len > MIN_GAP_MS ? 4 * len : MIN_GAP_MS);
        int64_t latest = start + (int64_t)p->cfg.interval_s * 1000;
        if (latest < earliest)
            latest = earliest;
        pthread_mutex_lock(&p->mu);
        for (;;) {
            int64_t now = time_mono_ms();
            if (atomic_load(&p->stop) || now >= latest || (p->kicked && now >= earliest))
                break;
            int64_t until = p->kicked ? earliest : latest;
            struct timespec dl = time_mono_deadline(until - now);
            pthread_cond_timedwait(&p->cv, &p->mu, &dl);
        }
        pthread_mutex_unlock(&p->mu);
    }
    return NULL;
}

/* ---- start / stop ------------------------------------------------------- */

struct placement *placement_start(const struct placement_config *cfg, char *errbuf, size_t errlen)
{
    struct placement *p = xcalloc(1, sizeof *p);
    p->cfg = *cfg;
    pthread_mutex_init(&p->mu, NULL);
    time_cond_init_mono(&p->cv);
    p->m_published = metrics_counter(cfg->metrics, "health_placement_summaries_total",
                                     "placement.summary events, by what became of them",
                                     (const char *const[]){"result", "published", NULL});
    p->m_failed = metrics_counter(cfg->metrics, "health_placement_summaries_total",
                                  "placement.summary events, by what became of them",
                                  (const char *const[]){"result", "failed", NULL});
    p->m_errors = metrics_counter(cfg->metrics, "health_placement_round_errors_total",
                                  "Placement summary rounds that could not read the store", NULL);
    p->m_seconds = metrics_gauge(cfg->metrics, "health_placement_round_seconds",
                                 "Time of the last placement summary round (store read, "
                                 "grouping, publishing)",
                                 NULL);
    p->fp = fproducer_new(cfg->brokers, "health-service-placement", cfg->kafka_extra, cfg->topic,
                          errbuf, errlen);
    if (!p->fp) {
        placement_stop(p);
        return NULL;
    }
    int rc = pthread_create(&p->thread, NULL, thread_main, p);
    if (rc != 0) {
        errbuf_set(errbuf, errlen, "cannot start the placement thread: %s", strerror(rc));
        placement_stop(p);
        return NULL;
    }
    p->started = true;
    log_info("placement: summaries over the last %lld s after each round, published to %s",
             (long long)cfg->window_s, cfg->topic);
    return p;
}

void placement_kick(void *arg)
{
    struct placement *p = arg;
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->kicked = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

void placement_stop(struct placement *p)
{
    if (!p)
        return;
    atomic_store(&p->stop, true);
    pthread_mutex_lock(&p->mu);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    if (p->started)
        pthread_join(p->thread, NULL);
    fproducer_free(p->fp);
    placement_pairs_free(p->last, p->nlast);
    for (size_t k = 0; k < p->ngauged; k++)
        free(p->gauged[k]);
    free(p->gauged);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p);
}
