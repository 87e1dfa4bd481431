/* analytics.h - GET /analytics (DESIGN 9.5) without HTTP: the window and
 * bucket a query asks for, the store's rows laid out as a continuous
 * series; and the Prometheus counters of the same seven counts.
 *
 * Semantics (README "Analytics"): a send cohort. Each tracked copy counts
 * in the bucket of its sent_at (UTC hours, or UTC days), with what is
 * known of it now: sent, delivered and spam (its placement now: a copy a
 * later round finds elsewhere moves out of its count), opened, read,
 * bounced, complained (each once per copy). So a bucket answers "of the
 * copies sent then, how many landed where", its rates are ratios within
 * one cohort, and a bucket's figures grow while its copies are checked;
 * summed over every bucket they are /domains' and /mail_stats' figures.
 * Counting each event in the bucket of its own time would mix cohorts (a
 * delivered count larger than the sent count of its hour) and need the
 * time of every change kept per copy; the metrics below give the event
 * rates instead.
 *
 * The window is [from, to) widened to whole buckets; at most
 * ANALYTICS_MAX_HOURS hour buckets or ANALYTICS_MAX_DAYS day buckets.
 * Pure functions (any thread) but analytics_metrics_start, called once by
 * main before the store is written to; its counters are then bumped from
 * whatever thread commits a store write. */
#ifndef ANALYTICS_H
#define ANALYTICS_H

#include "hstore.h"

#include <stddef.h>
#include <stdint.h>

#define ANALYTICS_MAX_HOURS 744 /* 31 days of hour buckets */
#define ANALYTICS_MAX_DAYS 366
#define ANALYTICS_DEFAULT_DAYS 7 /* the window when from is not given */

/* the names of the seven counts, in enum hstore_an order (JSON fields and
 * the metrics' event label) */
extern const char *const analytics_names[HAN_N];

/* a query's buckets: [from_ms, to_ms) cut in nbuckets of bucket_hours */
struct analytics_window {
    int64_t from_ms, to_ms;
    int bucket_hours; /* 1 or 24 */
    size_t nbuckets;
};

/* analytics_window - the buckets of the parameters from, to and bucket
 * (each NULL when absent): to defaults to now_ms, from to ANALYTICS_DEFAULT_DAYS
 * before to, bucket to hour when the window has at most
 * ANALYTICS_MAX_HOURS hours and else day. 0, or -1 with errbuf naming the
 * bad parameter (a 400). */
int analytics_window(const char *from, const char *to, const char *bucket, int64_t now_ms,
                     struct analytics_window *w, char *errbuf, size_t errlen);

/* analytics_query - the store query of w (filters left empty) */
struct hstore_an_query analytics_query(const struct analytics_window *w);

/* analytics_fill - every bucket of w's counts into out[0, w->nbuckets)
 * (zero where rows has none; rows as hstore_analytics gives them, oldest
 * first, rows outside w ignored) and their sums into totals */
void analytics_fill(const struct analytics_window *w, const struct hstore_an_row *rows, size_t n,
                    int64_t (*out)[HAN_N], int64_t totals[HAN_N]);

struct metrics;
struct metric;
/* health_analytics_copies_total{event}: what entered each count (a copy
 * found in the inbox, then lost, then found again counts twice here) */
struct analytics_metrics {
    struct metric *copies[HAN_N];
};
/* analytics_metrics_start - the counters in m (at 0), bumped by s's
 * commits from now on; am must outlive s's writes */
void analytics_metrics_start(struct analytics_metrics *am, struct metrics *m, struct hstore *s);

#endif
