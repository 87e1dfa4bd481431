/* metrics.h - Prometheus text exposition (format 0.0.4) registry.
 *
 * A registry owns metric families (counter, gauge, histogram); a family
 * owns its series, one per label set. Series handles are created once and
 * updated lock-free (C11 atomics) from any thread; rendering takes the
 * registry lock. Gauge callbacks are called while rendering, from the
 * scraping thread. Names and label values are escaped as the format
 * requires. Handles stay valid until metrics_free().
 */
#ifndef METRICS_H
#define METRICS_H

#include <stddef.h>

struct metrics;
struct metric;

struct metrics *metrics_new(void);
void metrics_free(struct metrics *m);

/* labels: NULL, or "key" "value" pairs as a NULL-terminated array, e.g.
 * (const char *[]){"client", "mailpit", NULL}. The same name with the same
 * labels returns the same series; a name registered with another type or
 * help aborts (programmer error). */
struct metric *metrics_counter(struct metrics *m, const char *name, const char *help,
                               const char *const *labels);
struct metric *metrics_gauge(struct metrics *m, const char *name, const char *help,
                             const char *const *labels);
/* buckets: strictly increasing upper bounds; +Inf is added */
struct metric *metrics_histogram(struct metrics *m, const char *name, const char *help,
                                 const char *const *labels, const double *buckets, size_t nbuckets);
/* a gauge whose value is read by calling fn(arg) at scrape time */
void metrics_gauge_fn(struct metrics *m, const char *name, const char *help,
                      const char *const *labels, double (*fn)(void *arg), void *arg);

void metric_inc(struct metric *c);
void metric_add(struct metric *c, double v); /* counter: v >= 0 */
void metric_set(struct metric *g, double v); /* gauge */
void metric_gauge_add(struct metric *g, double v);
void metric_observe(struct metric *h, double v); /* histogram */
double metric_value(const struct metric *c);     /* counter/gauge, for tests */

/* metrics_render - the whole registry as text; caller frees */
char *metrics_render(struct metrics *m);

#endif
