/* test_metrics.c - metrics registry: exact text output, escaping, number
 * formatting, series identity, programmer-error aborts, and lock-free
 * updates from several threads. */
#include "metrics.h"
#include "test.h"

#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define L(...) ((const char *const[]){__VA_ARGS__, NULL})

static double uptime_value = 12.25;
static int uptime_calls;

static double read_uptime(void *arg)
{
    uptime_calls++;
    return *(double *)arg;
}

static void test_render(void)
{
    static const double buckets[] = {0.25, 0.5, 1};
    struct metrics *m = metrics_new();

    struct metric *sent = metrics_counter(m, "emails_sent_total", "Emails sent.", NULL);
    struct metric *err_mp = metrics_counter(m, "smtp_errors_total", "SMTP errors by client.",
                                            L("client", "mailpit", "code", "421"));
    struct metric *depth = metrics_gauge(m, "queue_depth", "Messages waiting.", NULL);
    metrics_gauge_fn(m, "uptime_seconds", "Seconds since start.", L("service", "warmup"),
                     read_uptime, &uptime_value);
    struct metric *dur = metrics_histogram(m, "send_duration_seconds", "Time to send one message.",
                                           NULL, buckets, 3);
    struct metric *dur_route = metrics_histogram(
        m, "send_duration_seconds", "Time to send one message.", L("route", "/send"), buckets, 3);
    /* a series added later still renders under its family */
    struct metric *err_gm = metrics_counter(m, "smtp_errors_total", "SMTP errors by client.",
                                            L("client", "gmail", "code", "550"));

    metric_inc(sent);
    metric_inc(sent);
    metric_add(sent, 1);
    metric_inc(err_mp);
    metric_add(err_gm, 2.5);
    metric_set(depth, 17);
    metric_gauge_add(depth, -2.5);
    metric_observe(dur, 0.125);
    metric_observe(dur, 0.25); /* on a bound: counts in that bucket */
    metric_observe(dur, 0.375);
    metric_observe(dur, 0.75);
    metric_observe(dur, 3);
    metric_observe(dur_route, 0.5);

    CHECK(metric_value(sent) == 3, "metric_value: counter");
    CHECK(metric_value(depth) == 14.5, "metric_value: gauge");

    const char *want = "# HELP emails_sent_total Emails sent.\n"
                       "# TYPE emails_sent_total counter\n"
                       "emails_sent_total 3\n"
                       "# HELP smtp_errors_total SMTP errors by client.\n"
                       "# TYPE smtp_errors_total counter\n"
                       "smtp_errors_total{client=\"mailpit\",code=\"421\"} 1\n"
                       "smtp_errors_total{client=\"gmail\",code=\"550\"} 2.5\n"
                       "# HELP queue_depth Messages waiting.\n"
                       "# TYPE queue_depth gauge\n"
                       "queue_depth 14.5\n"
                       "# HELP uptime_seconds Seconds since start.\n"
                       "# TYPE uptime_seconds gauge\n"
                       "uptime_seconds{service=\"warmup\"} 12.25\n"
                       "# HELP send_duration_seconds Time to send one message.\n"
                       "# TYPE send_duration_seconds histogram\n"
                       "send_duration_seconds_bucket{le=\"0.25\"} 2\n"
                       "send_duration_seconds_bucket{le=\"0.5\"} 3\n"
                       "send_duration_seconds_bucket{le=\"1\"} 4\n"
                       "send_duration_seconds_bucket{le=\"+Inf\"} 5\n"
                       "send_duration_seconds_sum 4.5\n"
                       "send_duration_seconds_count 5\n"
                       "send_duration_seconds_bucket{route=\"/send\",le=\"0.25\"} 0\n"
                       "send_duration_seconds_bucket{route=\"/send\",le=\"0.5\"} 1\n"
                       "send_duration_seconds_bucket{route=\"/send\",le=\"1\"} 1\n"
                       "send_duration_seconds_bucket{route=\"/send\",le=\"+Inf\"} 1\n"
                       "send_duration_seconds_sum{route=\"/send\"} 0.5\n"
                       "send_duration_seconds_count{route=\"/send\"} 1\n";
    uptime_calls = 0;
    char *out = metrics_render(m);
    CHECK_STR(out, want, "render: exact output");
    CHECK_INT(uptime_calls, 1, "render: gauge callback called once");
    free(out);

    uptime_value = 13;
    out = metrics_render(m);
    CHECK(strstr(out, "uptime_seconds{service=\"warmup\"} 13\n") != NULL,
          "render: gauge callback read at scrape time");
    free(out);

    /* counters never go down */
    metric_add(sent, -1);
    metric_add(sent, NAN);
    CHECK(metric_value(sent) == 3, "counter: negative and NaN increments ignored");
    metric_observe(dur, NAN);
    out = metrics_render(m);
    CHECK(strstr(out, "send_duration_seconds_count 5\n") && strstr(out, "_sum 4.5\n"),
          "histogram: NaN observation ignored");
    free(out);
    metrics_free(m);

    m = metrics_new();
    out = metrics_render(m);
    CHECK_STR(out, "", "render: empty registry");
    free(out);
    struct metric *h0 = metrics_histogram(m, "h0", "only +Inf", NULL, NULL, 0);
    metric_observe(h0, -1);
    out = metrics_render(m);
    CHECK_STR(out,
              "# HELP h0 only +Inf\n# TYPE h0 histogram\nh0_bucket{le=\"+Inf\"} 1\n"
              "h0_sum -1\nh0_count 1\n",
              "render: histogram without buckets");
    free(out);
    metrics_free(m);
    metrics_free(NULL);
}

static void test_numbers(void)
{
    static const struct {
        double v;
        const char *want;
    } rows[] = {
        {0, "0"},
        {-0.0, "0"},
        {42, "42"},
        {-3, "-3"},
        {0.1, "0.1"},
        {2.5, "2.5"},
        {1.0 / 3, "0.3333333333333333"},
        {123456789012345, "123456789012345"},
        {1e20, "1e+20"},
        {1.5e-7, "1.5e-07"},
        {9007199254740993.0, "9007199254740992"},
        {INFINITY, "+Inf"},
        {-INFINITY, "-Inf"},
        {NAN, "NaN"},
    };
    struct metrics *m = metrics_new();
    struct metric *g = metrics_gauge(m, "num", "n", NULL);
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char want[128], name[64];
        metric_set(g, rows[i].v);
        snprintf(want, sizeof want, "# HELP num n\n# TYPE num gauge\nnum %s\n", rows[i].want);
        snprintf(name, sizeof name, "number format: %s", rows[i].want);
        char *out = metrics_render(m);
        CHECK_STR(out, want, name);
        free(out);
    }
    metrics_free(m);

    /* bucket bounds use the same formatting in le="..." */
    static const double b[] = {0.005, 0.1, 2.5, 10, 1e20};
    m = metrics_new();
    metrics_histogram(m, "b", "h", NULL, b, 5);
    char *out = metrics_render(m);
    CHECK(strstr(out, "b_bucket{le=\"0.005\"} 0\nb_bucket{le=\"0.1\"} 0\nb_bucket{le=\"2.5\"} 0\n"
                      "b_bucket{le=\"10\"} 0\nb_bucket{le=\"1e+20\"} 0\n"
                      "b_bucket{le=\"+Inf\"} 0\nb_sum 0\nb_count 0\n") != NULL,
          "bucket bounds formatted");
    free(out);
    metrics_free(m);
}

static void test_escaping(void)
{
    struct metrics *m = metrics_new();
    struct metric *c = metrics_counter(m, "esc_total", "Line one\nback\\slash \"quoted\"",
                                       L("v", "a\"b\\c\nd", "empty", ""));
    metric_inc(c);
    char *out = metrics_render(m);
    CHECK_STR(out,
              "# HELP esc_total Line one\\nback\\\\slash \"quoted\"\n"
              "# TYPE esc_total counter\n"
              "esc_total{v=\"a\\\"b\\\\c\\nd\",empty=\"\"} 1\n",
              "escaping: help and label values");
    free(out);
    metrics_free(m);
}

static double fn_a(void *arg)
{
    (void)arg;
    return 1;
}

static void test_identity(void)
{
    static const double b[] = {1, 2};
    struct metrics *m = metrics_new();
    struct metric *a = metrics_counter(m, "id_total", "h", L("k", "v"));
    CHECK(metrics_counter(m, "id_total", "h", L("k", "v")) == a, "same name+labels: same series");
    CHECK(metrics_counter(m, "id_total", "h", L("k", "w")) != a, "other label value: new series");
    CHECK(metrics_counter(m, "id_total", "h", NULL) != a, "no labels: new series");
    struct metric *n = metrics_counter(m, "id_total", "h", NULL);
    CHECK(metrics_counter(m, "id_total", "h", (const char *const[]){NULL}) == n,
          "NULL and empty label list are the same series");
    struct metric *g = metrics_gauge(m, "id_gauge", "h", NULL);
    CHECK(metrics_gauge(m, "id_gauge", "h", NULL) == g, "gauge: same series");
    struct metric *h = metrics_histogram(m, "id_hist", "h", L("x", "1"), b, 2);
    CHECK(metrics_histogram(m, "id_hist", "h", L("x", "1"), b, 2) == h, "histogram: same series");
    metrics_gauge_fn(m, "id_fn", "h", NULL, fn_a, NULL);
    metrics_gauge_fn(m, "id_fn", "h", NULL, fn_a, NULL);

    metric_inc(a);
    metric_inc(metrics_counter(m, "id_total", "h", L("k", "v")));
    CHECK(metric_value(a) == 2, "same series shares its value");

    char *out = metrics_render(m);
    const char *p = strstr(out, "id_fn 1\n");
    CHECK(p && !strstr(p + 1, "id_fn 1\n"), "gauge_fn registered twice renders once");
    size_t types = 0;
    for (p = out; (p = strstr(p, "# TYPE id_total ")); p++)
        types++;
    CHECK_INT(types, 1, "one TYPE line per family");
    free(out);
    metrics_free(m);
}

/* programmer errors: each abort case runs in a child */
static void abort_type_mismatch(struct metrics *m)
{
    metrics_counter(m, "x", "h", NULL);
    metrics_gauge(m, "x", "h", NULL);
}
static void abort_help_mismatch(struct metrics *m)
{
    metrics_counter(m, "x", "h", NULL);
    metrics_counter(m, "x", "other", L("a", "b"));
}
static void abort_bucket_mismatch(struct metrics *m)
{
    static const double b1[] = {1, 2}, b2[] = {1, 3};
    metrics_histogram(m, "x", "h", NULL, b1, 2);
    metrics_histogram(m, "x", "h", L("a", "b"), b2, 2);
}
static void abort_bad_buckets(struct metrics *m)
{
    static const double b[] = {1, 1};
    metrics_histogram(m, "x", "h", NULL, b, 2);
}
static void abort_inf_bucket(struct metrics *m)
{
    static const double b[] = {1, INFINITY};
    metrics_histogram(m, "x", "h", NULL, b, 2);
}
static void abort_bad_name(struct metrics *m)
{
    metrics_counter(m, "bad-name", "h", NULL);
}
static void abort_bad_label_name(struct metrics *m)
{
    metrics_counter(m, "x", "h", L("0k", "v"));
}
static void abort_reserved_label(struct metrics *m)
{
    metrics_counter(m, "x", "h", L("__name__", "v"));
}
static void abort_odd_labels(struct metrics *m)
{
    metrics_counter(m, "x", "h", L("k", "v", "k2"));
}
static void abort_repeated_label(struct metrics *m)
{
    metrics_counter(m, "x", "h", L("k", "v", "k", "w"));
}
static void abort_le_label(struct metrics *m)
{
    static const double b[] = {1};
    metrics_histogram(m, "x", "h", L("le", "1"), b, 1);
}
static void abort_set_counter(struct metrics *m)
{
    metric_set(metrics_counter(m, "x", "h", NULL), 1);
}
static void abort_observe_gauge(struct metrics *m)
{
    metric_observe(metrics_gauge(m, "x", "h", NULL), 1);
}
static void abort_inc_histogram(struct metrics *m)
{
    metric_inc(metrics_histogram(m, "x", "h", NULL, NULL, 0));
}
static void abort_fn_over_gauge(struct metrics *m)
{
    metrics_gauge(m, "x", "h", NULL);
    metrics_gauge_fn(m, "x", "h", NULL, fn_a, NULL);
}
static void abort_gauge_over_fn(struct metrics *m)
{
    metrics_gauge_fn(m, "x", "h", NULL, fn_a, NULL);
    metrics_gauge(m, "x", "h", NULL);
}
static void no_abort(struct metrics *m)
{
    metrics_counter(m, "x", "h", L("k", "v"));
    metrics_counter(m, "x", "h", L("k", "w"));
}

static bool dies_with_abort(void (*fn)(struct metrics *))
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen("/dev/null", "w", stderr))
            _exit(3);
        struct metrics *m = metrics_new();
        fn(m);
        metrics_free(m);
        _exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
}

static void test_aborts(void)
{
    static const struct {
        const char *name;
        void (*fn)(struct metrics *);
        bool aborts;
    } rows[] = {
        {"abort: type mismatch", abort_type_mismatch, true},
        {"abort: help mismatch", abort_help_mismatch, true},
        {"abort: bucket mismatch", abort_bucket_mismatch, true},
        {"abort: buckets not increasing", abort_bad_buckets, true},
        {"abort: infinite bucket", abort_inf_bucket, true},
        {"abort: bad metric name", abort_bad_name, true},
        {"abort: bad label name", abort_bad_label_name, true},
        {"abort: reserved label name", abort_reserved_label, true},
        {"abort: odd label list", abort_odd_labels, true},
        {"abort: repeated label", abort_repeated_label, true},
        {"abort: le label on histogram", abort_le_label, true},
        {"abort: metric_set on counter", abort_set_counter, true},
        {"abort: metric_observe on gauge", abort_observe_gauge, true},
        {"abort: metric_inc on histogram", abort_inc_histogram, true},
        {"abort: gauge_fn over a gauge", abort_fn_over_gauge, true},
        {"abort: gauge over a gauge_fn", abort_gauge_over_fn, true},
        {"no abort: same family, other labels", no_abort, false},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        CHECK(dies_with_abort(rows[i].fn) == rows[i].aborts, rows[i].name);
}

#define NTHREADS 4
#define NITER 100000

struct worker {
    struct metrics *m;
    struct metric *counter, *halves, *gauge, *hist;
    struct metric *registered; /* what this thread got for a shared name */
};

static void *work(void *arg)
{
    struct worker *w = arg;
    w->registered = metrics_counter(w->m, "shared_total", "h", L("k", "v"));
    for (int i = 0; i < NITER; i++) {
        metric_inc(w->counter);
        metric_add(w->halves, 0.5);
        metric_gauge_add(w->gauge, 1);
        metric_gauge_add(w->gauge, -1);
        metric_observe(w->hist, (i % 2) ? 0.25 : 4);
    }
    return NULL;
}

static void test_threads(void)
{
    static const double b[] = {1};
    struct metrics *m = metrics_new();
    struct worker w[NTHREADS];
    pthread_t tid[NTHREADS];
    struct metric *counter = metrics_counter(m, "inc_total", "h", NULL);
    struct metric *halves = metrics_counter(m, "halves_total", "h", NULL);
    struct metric *gauge = metrics_gauge(m, "updown", "h", NULL);
    struct metric *hist = metrics_histogram(m, "obs", "h", NULL, b, 1);

    for (int i = 0; i < NTHREADS; i++) {
        w[i] = (struct worker){m, counter, halves, gauge, hist, NULL};
        pthread_create(&tid[i], NULL, work, &w[i]);
    }
    for (int i = 0; i < 20; i++) /* scrape while the workers update */
        free(metrics_render(m));
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(tid[i], NULL);

    CHECK(metric_value(counter) == NTHREADS * NITER, "threads: 4 x 100000 metric_inc");
    CHECK_INT((long long)metric_value(counter), 400000, "threads: counter is exactly 400000");
    CHECK(metric_value(halves) == NTHREADS * NITER * 0.5, "threads: metric_add(0.5)");
    CHECK(metric_value(gauge) == 0, "threads: gauge +1/-1 ends at 0");
    bool same = true;
    for (int i = 1; i < NTHREADS; i++)
        same = same && w[i].registered == w[0].registered && w[0].registered;
    CHECK(same, "threads: concurrent registration returns one series");
    char *out = metrics_render(m);
    CHECK(strstr(out, "obs_bucket{le=\"1\"} 200000\nobs_bucket{le=\"+Inf\"} 400000\n"
                      "obs_sum 850000\nobs_count 400000\n") != NULL,
          "threads: histogram counts and sum");
    free(out);
    metrics_free(m);
}

int main(void)
{
    test_render();
    test_numbers();
    test_escaping();
    test_identity();
    test_aborts();
    test_threads();
    return test_done();
}
