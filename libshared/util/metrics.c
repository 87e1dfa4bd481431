/* metrics.c - Prometheus text exposition (format 0.0.4) registry.
 *
 * The registry owns its families (in registration order) and each family
 * its series (in creation order). Registration and rendering hold the
 * registry mutex; series values are C11 atomics (a double's bits in an
 * _Atomic uint64_t, added with a compare-exchange loop), so any thread
 * updates a handle without a lock. Gauge callbacks run under the mutex in
 * the scraping thread: they must not call back into the registry.
 * Misuse (bad names, type/help/bucket mismatch, wrong handle type) is a
 * programmer error and aborts.
 */
#include "metrics.h"
#include "buf.h"
#include "log.h"
#include "xalloc.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* no practical cap: running out of memory first aborts through xrealloc */
#define RENDER_CAP (SIZE_MAX / 4)

enum metric_type { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM };

static const char *const type_names[] = {"counter", "gauge", "histogram"};

struct family;

struct metric {
    struct family *fam;
    char **labels;           /* key, value, ..., NULL: our copy */
    char *label_text;        /* escaped 'k="v",k2="v2"' ("" without labels) */
    _Atomic uint64_t bits;   /* counter/gauge value, a double's bits */
    double (*fn)(void *arg); /* gauge read at scrape time, or NULL */
    void *arg;
    _Atomic uint64_t *bucket_counts; /* histogram: nbounds + 1 (last is +Inf), not cumulative */
    _Atomic uint64_t sum_bits;       /* histogram sum, a double's bits */
};

struct family {
    char *name;
    char *help;
    enum metric_type type;
    double *bounds; /* histogram upper bounds, +Inf implied */
    size_t nbounds;
    struct metric **series;
    size_t nseries, aseries;
};

struct metrics {
    pthread_mutex_t lock;
    struct family **fams;
    size_t nfams, afams;
};

/* metrics_panic - report a programmer error on one line and abort */
__attribute__((format(printf, 1, 2), noreturn)) static void metrics_panic(const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log_write(LOG_ERROR, "metrics: %s", msg);
    abort();
}

static uint64_t dbl_bits(double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    return u;
}

static double bits_dbl(uint64_t u)
{
    double v;
    memcpy(&v, &u, sizeof v);
    return v;
}

/* atomic_add_double - lock-free *p += v on a double stored as bits */
static void atomic_add_double(_Atomic uint64_t *p, double v)
{
    uint64_t old = atomic_load_explicit(p, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(p, &old, dbl_bits(bits_dbl(old) + v),
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
}

/* valid_name - Prometheus metric ([a-zA-Z_:][a-zA-Z0-9_:]*) or label name
 * ([a-zA-Z_][a-zA-Z0-9_]*, not starting with "__") */
static bool valid_name(const char *s, bool label)
{
    if (!s || !*s)
        return false;
    if (label && s[0] == '_' && s[1] == '_')
        return false;
    for (const char *p = s; *p; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                  (!label && c == ':') || (p != s && c >= '0' && c <= '9');
        if (!ok)
            return false;
    }
    return true;
}

/* escape - append s escaped for HELP (\\ \n) or for a label value (also \") */
static void escape(struct buf *b, const char *s, bool label_value)
{
    for (; *s; s++) {
        if (*s == '\\')
            buf_append(b, "\\\\", 2);
        else if (*s == '\n')
            buf_append(b, "\\n", 2);
        else if (*s == '"' && label_value)
            buf_append(b, "\\\"", 2);
        else
            buf_appendc(b, *s);
    }
}

/* format_number - a double as Prometheus parses it: integral values without
 * exponent, others in the shortest form that reads back exactly (at most
 * %.17g), "+Inf", "-Inf", "NaN" */
static void format_number(double v, char *out, size_t len)
{
    if (isnan(v)) {
        snprintf(out, len, "NaN");
    } else if (isinf(v)) {
        snprintf(out, len, v > 0 ? "+Inf" : "-Inf");
    } else if (v > -1e15 && v < 1e15 && v == (double)(int64_t)v) {
        snprintf(out, len, "%" PRId64, (int64_t)v);
    } else {
        for (int prec = 1; prec <= 17; prec++) {
            snprintf(out, len, "%.*g", prec, v);
            if (strtod(out, NULL) == v)
                break;
        }
    }
}

static size_t count_labels(const char *const *labels)
{
    size_t n = 0;
    while (labels && labels[n])
        n++;
    return n;
}

static bool same_labels(char *const *a, const char *const *b)
{
    size_t i = 0;
    for (; a[i] && b && b[i]; i++)
        if (strcmp(a[i], b[i]) != 0)
            return false;
    return !a[i] && (!b || !b[i]);
}

/* check_labels - abort on an odd list, a bad or repeated name, or "le" on
 * a histogram */
static void check_labels(const char *name, const char *const *labels, enum metric_type type)
{
    size_t n = count_labels(labels);
    if (n % 2)
        metrics_panic("%s: label list has an odd number of entries", name);
    for (size_t i = 0; i < n; i += 2) {
        if (!valid_name(labels[i], true))
            metrics_panic("%s: invalid label name '%s'", name, labels[i]);
        if (type == METRIC_HISTOGRAM && strcmp(labels[i], "le") == 0)
            metrics_panic("%s: label 'le' is reserved for histograms", name);
        for (size_t j = 0; j < i; j += 2)
            if (strcmp(labels[i], labels[j]) == 0)
                metrics_panic("%s: label '%s' given twice", name, labels[i]);
    }
}

struct metrics *metrics_new(void)
{
    struct metrics *m = xcalloc(1, sizeof *m);
    if (pthread_mutex_init(&m->lock, NULL) != 0)
        metrics_panic("pthread_mutex_init failed");
    return m;
}

static void series_free(struct metric *s)
{
    for (size_t i = 0; s->labels[i]; i++)
        free(s->labels[i]);
    free(s->labels);
    free(s->label_text);
    free(s->bucket_counts);
    free(s);
}

void metrics_free(struct metrics *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->nfams; i++) {
        struct family *f = m->fams[i];
        for (size_t j = 0; j < f->nseries; j++)
            series_free(f->series[j]);
        free(f->series);
        free(f->bounds);
        free(f->name);
        free(f->help);
        free(f);
    }
    free(m->fams);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

/* family_get - the family called name, created if new; aborts on a
 * type, help or bucket mismatch. Caller holds the lock. */
static struct family *family_get(struct metrics *m, const char *name, const char *help,
                                 enum metric_type type, const double *bounds, size_t nbounds)
{
    if (!valid_name(name, false))
        metrics_panic("invalid metric name '%s'", name ? name : "(null)");
    for (size_t i = 0; i < m->nfams; i++) {
        struct family *f = m->fams[i];
        if (strcmp(f->name, name) != 0)
            continue;
        if (f->type != type)
            metrics_panic("%s: registered as %s, now as %s", name, type_names[f->type],
                          type_names[type]);
        if (strcmp(f->help, help) != 0)
            metrics_panic("%s: registered with another help text", name);
        if (type == METRIC_HISTOGRAM &&
            (f->nbounds != nbounds ||
             (nbounds && memcmp(f->bounds, bounds, nbounds * sizeof *bounds) != 0)))
            metrics_panic("%s: registered with other buckets", name);
        return f;
    }
    if (type == METRIC_HISTOGRAM) {
        for (size_t i = 0; i < nbounds; i++)
            if (!isfinite(bounds[i]) || (i > 0 && !(bounds[i] > bounds[i - 1])))
                metrics_panic("%s: buckets must be finite and strictly increasing", name);
    }
    struct family *f = xcalloc(1, sizeof *f);
    f->name = xstrdup(name);
    f->help = xstrdup(help);
    f->type = type;
    if (type == METRIC_HISTOGRAM && nbounds) {
        f->bounds = xreallocarray(NULL, nbounds, sizeof *bounds);
        memcpy(f->bounds, bounds, nbounds * sizeof *bounds);
        f->nbounds = nbounds;
    }
    if (m->nfams == m->afams) {
        m->afams = m->afams ? m->afams * 2 : 16;
        /* an array of pointers: NOLINTNEXTLINE(bugprone-sizeof-expression) */
        m->fams = xreallocarray(m->fams, m->afams, sizeof *m->fams);
    }
    m->fams[m->nfams++] = f;
    return f;
}

/* series_get - the series of f with labels, created if new. Caller holds
 * the lock. */
static struct metric *series_get(struct family *f, const char *const *labels)
{
    for (size_t i = 0; i < f->nseries; i++)
        if (same_labels(f->series[i]->labels, labels))
            return f->series[i];
    check_labels(f->name, labels, f->type);

    struct metric *s = xcalloc(1, sizeof *s);
    size_t n = count_labels(labels);
    struct buf text;
    buf_init(&text, RENDER_CAP);
    s->fam = f;
    s->labels = xreallocarray(NULL, n + 1, sizeof *s->labels);
    for (size_t i = 0; i < n; i++)
        s->labels[i] = xstrdup(labels[i]);
    s->labels[n] = NULL;
    for (size_t i = 0; i < n; i += 2) {
        buf_printf(&text, "%s%s=\"", i ? "," : "", labels[i]);
        escape(&text, labels[i + 1], true);
        buf_appendc(&text, '"');
    }
    s->label_text = buf_steal(&text);
    atomic_init(&s->bits, dbl_bits(0.0));
    atomic_init(&s->sum_bits, dbl_bits(0.0));
    if (f->type == METRIC_HISTOGRAM) {
        s->bucket_counts = xreallocarray(NULL, f->nbounds + 1, sizeof *s->bucket_counts);
        for (size_t i = 0; i <= f->nbounds; i++)
            atomic_init(&s->bucket_counts[i], 0);
    }
    if (f->nseries == f->aseries) {
        f->aseries = f->aseries ? f->aseries * 2 : 4;
        /* an array of pointers: NOLINTNEXTLINE(bugprone-sizeof-expression) */
        f->series = xreallocarray(f->series, f->aseries, sizeof *f->series);
    }
    f->series[f->nseries++] = s;
    return s;
}

/* metrics_register - find or create the series name{labels} */
static struct metric *metrics_register(struct metrics *m, const char *name, const char *help,
                                       const char *const *labels, enum metric_type type,
                                       const double *bounds, size_t nbounds)
{
    if (!help)
        help = "";
    pthread_mutex_lock(&m->lock);
    struct family *f = family_get(m, name, help, type, bounds, nbounds);
    struct metric *s = series_get(f, labels);
    pthread_mutex_unlock(&m->lock);
    return s;
}

struct metric *metrics_counter(struct metrics *m, const char *name, const char *help,
                               const char *const *labels)
{
    return metrics_register(m, name, help, labels, METRIC_COUNTER, NULL, 0);
}

struct metric *metrics_gauge(struct metrics *m, const char *name, const char *help,
                             const char *const *labels)
{
    struct metric *s = metrics_register(m, name, help, labels, METRIC_GAUGE, NULL, 0);
    if (s->fn)
        metrics_panic("%s: series is a callback gauge", name);
    return s;
}

struct metric *metrics_histogram(struct metrics *m, const char *name, const char *help,
                                 const char *const *labels, const double *buckets, size_t nbuckets)
{
    return metrics_register(m, name, help, labels, METRIC_HISTOGRAM, buckets, nbuckets);
}

void metrics_gauge_fn(struct metrics *m, const char *name, const char *help,
                      const char *const *labels, double (*fn)(void *arg), void *arg)
{
    if (!fn)
        metrics_panic("%s: NULL gauge callback", name);
    if (!help)
        help = "";
    pthread_mutex_lock(&m->lock);
    struct family *f = family_get(m, name, help, METRIC_GAUGE, NULL, 0);
    size_t before = f->nseries;
    struct metric *s = series_get(f, labels);
    if (f->nseries != before) {
        s->fn = fn;
        s->arg = arg;
    } else if (s->fn != fn || s->arg != arg) {
        metrics_panic("%s: series already registered with another value source", name);
    }
    pthread_mutex_unlock(&m->lock);
}

/* check_type - abort when a handle of the wrong kind is updated */
static void check_type(const struct metric *s, enum metric_type want, const char *op)
{
    if (s->fam->type != want || s->fn)
        metrics_panic("%s: %s on a %s%s", s->fam->name, op, s->fn ? "callback " : "",
                      type_names[s->fam->type]);
}

void metric_inc(struct metric *c)
{
    metric_add(c, 1.0);
}

void metric_add(struct metric *c, double v)
{
    if (c->fam->type == METRIC_GAUGE) {
        check_type(c, METRIC_GAUGE, "metric_add");
        atomic_add_double(&c->bits, v);
        return;
    }
    check_type(c, METRIC_COUNTER, "metric_add");
    /* a counter never goes down: drop negative and NaN increments */
    if (!(v >= 0))
        return;
    atomic_add_double(&c->bits, v);
}

void metric_set(struct metric *g, double v)
{
    check_type(g, METRIC_GAUGE, "metric_set");
    atomic_store_explicit(&g->bits, dbl_bits(v), memory_order_relaxed);
}

void metric_gauge_add(struct metric *g, double v)
{
    check_type(g, METRIC_GAUGE, "metric_gauge_add");
    atomic_add_double(&g->bits, v);
}

void metric_observe(struct metric *h, double v)
{
    check_type(h, METRIC_HISTOGRAM, "metric_observe");
    if (isnan(v)) /* would poison the sum forever */
        return;
    const struct family *f = h->fam;
    size_t lo = 0, hi = f->nbounds; /* first bound >= v, or nbounds for +Inf */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v <= f->bounds[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    atomic_fetch_add_explicit(&h->bucket_counts[lo], 1, memory_order_relaxed);
    atomic_add_double(&h->sum_bits, v);
}

double metric_value(const struct metric *c)
{
    if (c->fam->type == METRIC_HISTOGRAM)
        metrics_panic("%s: metric_value on a histogram", c->fam->name);
    return bits_dbl(atomic_load_explicit(&c->bits, memory_order_relaxed));
}

/* render_sample - one line: name{labels[,extra]} value */
static void render_sample(struct buf *b, const char *name, const char *suffix, const char *labels,
                          const char *extra, double v)
{
    char num[40];
    format_number(v, num, sizeof num);
    buf_printf(b, "%s%s", name, suffix);
    if (*labels || extra)
        buf_printf(b, "{%s%s%s}", labels, (*labels && extra) ? "," : "", extra ? extra : "");
    buf_printf(b, " %s\n", num);
}

static void render_histogram(struct buf *b, const struct family *f, struct metric *s)
{
    char num[40], le[48];
    uint64_t cum = 0;
    for (size_t i = 0; i <= f->nbounds; i++) {
        cum += atomic_load_explicit(&s->bucket_counts[i], memory_order_relaxed);
        if (i < f->nbounds)
            format_number(f->bounds[i], num, sizeof num);
        else
            snprintf(num, sizeof num, "+Inf");
        snprintf(le, sizeof le, "le=\"%s\"", num);
        render_sample(b, f->name, "_bucket", s->label_text, le, (double)cum);
    }
    double sum = bits_dbl(atomic_load_explicit(&s->sum_bits, memory_order_relaxed));
    render_sample(b, f->name, "_sum", s->label_text, NULL, sum);
    /* _count is the +Inf bucket, so the two always agree */
    render_sample(b, f->name, "_count", s->label_text, NULL, (double)cum);
}

char *metrics_render(struct metrics *m)
{
    struct buf b;
    buf_init(&b, RENDER_CAP);
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < m->nfams; i++) {
        const struct family *f = m->fams[i];
        buf_printf(&b, "# HELP %s ", f->name);
        escape(&b, f->help, false);
        buf_printf(&b, "\n# TYPE %s %s\n", f->name, type_names[f->type]);
        for (size_t j = 0; j < f->nseries; j++) {
            struct metric *s = f->series[j];
            if (f->type == METRIC_HISTOGRAM)
                render_histogram(&b, f, s);
            else if (s->fn)
                render_sample(&b, f->name, "", s->label_text, NULL, s->fn(s->arg));
            else
                render_sample(&b, f->name, "", s->label_text, NULL, metric_value(s));
        }
    }
    pthread_mutex_unlock(&m->lock);
    return buf_steal(&b);
}
