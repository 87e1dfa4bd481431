/* httpconn.c - connection deadlines and the reaper thread (httpconn.h).
 *
 * Threads: HTTP pool threads (open/phase/body/close of their own
 * connections) and "http-reaper" (httpconn_reap every 200 ms). Everything
 * in the table is guarded by t->mu.
 */
#include "httpconn.h"
#include "log.h"
#include "metrics.h"
#include "timeutil.h"
#include "xalloc.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>

struct httpconn {
    struct httpconn *prev, *next;
    int fd;
    enum httpconn_phase phase;
    int64_t since_ms;    /* when the phase began */
    int64_t deadline_ms; /* 0: none */
    bool dropped;
};

struct httpconn_table {
    struct httpconn_config cfg;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    struct httpconn *head;
    unsigned n;
    pthread_t reaper;
    struct metric *dropped[3]; /* by enum drop_reason */
};

enum drop_reason { DROP_HEADER, DROP_BODY, DROP_BUSY };
static const char *const drop_names[] = {"header_timeout", "body_timeout", "busy"};

static void *reaper_main(void *arg)
{
    struct httpconn_table *t = arg;
    pthread_mutex_lock(&t->mu);
    while (!t->stop) {
        struct timespec ts = time_mono_deadline(200);
        pthread_cond_timedwait(&t->cv, &t->mu, &ts);
        if (t->stop)
            break;
        pthread_mutex_unlock(&t->mu);
        httpconn_reap(t, time_mono_ms());
        pthread_mutex_lock(&t->mu);
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

static double open_count(void *arg)
{
    struct httpconn_table *t = arg;
    pthread_mutex_lock(&t->mu);
    double n = t->n;
    pthread_mutex_unlock(&t->mu);
    return n;
}

struct httpconn_table *httpconn_table_new(const struct httpconn_config *cfg)
{
    struct httpconn_table *t = xcalloc(1, sizeof *t);
    t->cfg = *cfg;
    pthread_mutex_init(&t->mu, NULL);
    time_cond_init_mono(&t->cv);
    if (cfg->metrics) {
        static const char name[] = "http_connections_dropped_total";
        static const char help[] = "Connections shut down by the server before a request completed";
        for (int i = 0; i < 3; i++)
            t->dropped[i] = metrics_counter(cfg->metrics, name, help,
                                            (const char *[]){"reason", drop_names[i], NULL});
        metrics_gauge_fn(cfg->metrics, "http_connections_open", "Open HTTP connections", NULL,
                         open_count, t);
    }
    if (pthread_create(&t->reaper, NULL, reaper_main, t) != 0) {
        pthread_mutex_destroy(&t->mu);
        pthread_cond_destroy(&t->cv);
        free(t);
        return NULL;
    }
    return t;
}

void httpconn_table_free(struct httpconn_table *t)
{
    if (!t)
        return;
    pthread_mutex_lock(&t->mu);
    t->stop = true;
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
    pthread_join(t->reaper, NULL);
    while (t->head)
        httpconn_close(t, t->head);
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cv);
    free(t);
}

/* set_phase - locked */
static void set_phase(struct httpconn_table *t, struct httpconn *c, enum httpconn_phase p,
                      int64_t now)
{
    c->phase = p;
    c->since_ms = now;
    switch (p) {
    case HTTPCONN_HEADERS:
        c->deadline_ms = now + (int64_t)t->cfg.header_timeout_s * 1000;
        break;
    case HTTPCONN_BODY:
        c->deadline_ms = now + (int64_t)t->cfg.body_timeout_s * 1000;
        break;
    case HTTPCONN_SERVING:
        c->deadline_ms = 0;
        break;
    }
}

struct httpconn *httpconn_open(struct httpconn_table *t, int fd)
{
    struct httpconn *c = xcalloc(1, sizeof *c);
    c->fd = fd;
    pthread_mutex_lock(&t->mu);
    set_phase(t, c, HTTPCONN_HEADERS, time_mono_ms());
    c->next = t->head;
    if (t->head)
        t->head->prev = c;
    t->head = c;
    t->n++;
    pthread_mutex_unlock(&t->mu);
    return c;
}

void httpconn_phase(struct httpconn_table *t, struct httpconn *c, enum httpconn_phase p)
{
    if (!c)
        return;
    int64_t now = time_mono_ms();
    pthread_mutex_lock(&t->mu);
    set_phase(t, c, p, now);
    pthread_mutex_unlock(&t->mu);
}

void httpconn_body(struct httpconn_table *t, struct httpconn *c, size_t len)
{
    if (!c || !t->cfg.body_min_rate)
        return;
    pthread_mutex_lock(&t->mu);
    if (c->phase == HTTPCONN_BODY && c->deadline_ms)
        c->deadline_ms += (int64_t)(len * 1000 / t->cfg.body_min_rate);
    pthread_mutex_unlock(&t->mu);
}

void httpconn_close(struct httpconn_table *t, struct httpconn *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&t->mu);
    if (c->prev)
        c->prev->next = c->next;
    else
        t->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    t->n--;
    pthread_mutex_unlock(&t->mu);
    free(c);
}

static bool near_cap(const struct httpconn_table *t)
{
    return t->cfg.max_conns && t->n >= t->cfg.max_conns - t->cfg.max_conns / 8;
}

int httpconn_busy(struct httpconn_table *t)
{
    pthread_mutex_lock(&t->mu);
    bool b = near_cap(t);
    pthread_mutex_unlock(&t->mu);
    return b;
}

int httpconn_reap(struct httpconn_table *t, int64_t now_ms)
{
    int n = 0;
    pthread_mutex_lock(&t->mu);
    bool busy = near_cap(t);
    for (struct httpconn *c = t->head; c; c = c->next) {
        if (c->dropped || c->phase == HTTPCONN_SERVING)
            continue;
        enum drop_reason why;
        if (c->deadline_ms && now_ms >= c->deadline_ms)
            why = c->phase == HTTPCONN_BODY ? DROP_BODY : DROP_HEADER;
        else if (busy && c->phase == HTTPCONN_HEADERS &&
                 now_ms - c->since_ms >= (int64_t)t->cfg.busy_timeout_ms)
            why = DROP_BUSY;
        else
            continue;
        /* the descriptor is valid: httpconn_close (under mu) runs before
         * libmicrohttpd closes it; the connection then sees end of file */
        shutdown(c->fd, SHUT_RDWR);
        c->dropped = true;
        n++;
        if (t->dropped[why])
            metric_inc(t->dropped[why]);
        log_debug("http: connection %d shut down (%s)", c->fd, drop_names[why]);
    }
    pthread_mutex_unlock(&t->mu);
    return n;
}
