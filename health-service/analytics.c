/* analytics.c - GET /analytics's window, buckets and series (analytics.h),
 * and the counters of the same counts. Pure but the metrics. */
#include "analytics.h"
#include "errbuf.h"
#include "metrics.h"
#include "timeutil.h"
#include "tz.h"

#include <stdbool.h>
#include <string.h>

#define HOUR_MS INT64_C(3600000)

const char *const analytics_names[HAN_N] = {"sent", "delivered", "spam",      "opened",
                                            "read", "bounced",   "complained"};

int analytics_window(const char *from, const char *to, const char *bucket, int64_t now_ms,
                     struct analytics_window *w, char *errbuf, size_t errlen)
{
    static const char when[] = "an RFC 3339 time (2026-12-05T10:00:00Z, or with an offset "
                               "such as +01:00 written %2B01:00) or a date (2026-12-05)";
    int64_t f, t = now_ms;
    int bh = 0;
    if (bucket && strcmp(bucket, "hour") == 0) {
        bh = 1;
    } else if (bucket && strcmp(bucket, "day") == 0) {
        bh = 24;
    } else if (bucket) {
        errbuf_set(errbuf, errlen, "bucket must be hour or day");
        return -1;
    }
    if (to && time_parse_rfc3339(to, &t) != 0) {
        errbuf_set(errbuf, errlen, "to must be %s", when);
        return -1;
    }
    f = t - ANALYTICS_DEFAULT_DAYS * 24 * HOUR_MS;
    if (from && time_parse_rfc3339(from, &f) != 0) {
        errbuf_set(errbuf, errlen, "from must be %s", when);
        return -1;
    }
    if (f < 0)
        f = 0;
    if (f >= t) {
        errbuf_set(errbuf, errlen, "from must be before to");
        return -1;
    }
    if (!bh) /* the finest buckets that fit */
        bh = (t + HOUR_MS - 1) / HOUR_MS - f / HOUR_MS <= ANALYTICS_MAX_HOURS ? 1 : 24;
    int64_t width = bh * HOUR_MS;
    w->bucket_hours = bh;
    w->from_ms = f / width * width;
    w->to_ms = (t + width - 1) / width * width;
    int64_t nb = (w->to_ms - w->from_ms) / width;
    if (bh == 1 && nb > ANALYTICS_MAX_HOURS) {
        errbuf_set(errbuf, errlen,
                   "bucket=hour covers at most %d hours (31 days); this window has %lld: ask for "
                   "bucket=day or a shorter window",
                   ANALYTICS_MAX_HOURS, (long long)nb);
        return -1;
    }
    if (bh == 24 && nb > ANALYTICS_MAX_DAYS) {
        errbuf_set(errbuf, errlen,
                   "from and to: the window covers %lld days, at most %d with bucket=day",
                   (long long)nb, ANALYTICS_MAX_DAYS);
        return -1;
    }
    w->nbuckets = (size_t)nb;
    return 0;
}

struct hstore_an_query analytics_query(const struct analytics_window *w)
{
    return (struct hstore_an_query){.from_hour = w->from_ms / HOUR_MS,
                                    .to_hour = w->to_ms / HOUR_MS,
                                    .bucket_hours = w->bucket_hours};
}

void analytics_fill(const struct analytics_window *w, const struct hstore_an_row *rows, size_t n,
                    int64_t (*out)[HAN_N], int64_t totals[HAN_N])
{
    int64_t first = w->from_ms / HOUR_MS;
    memset(out, 0, w->nbuckets * sizeof *out);
    memset(totals, 0, HAN_N * sizeof *totals);
    for (size_t i = 0; i < n; i++) {
        if (rows[i].hour < first)
            continue;
        int64_t b = (rows[i].hour - first) / w->bucket_hours;
        if (b >= (int64_t)w->nbuckets)
            continue;
        for (int q = 0; q < HAN_N; q++) {
            out[b][q] += rows[i].n[q];
            totals[q] += rows[i].n[q];
        }
    }
}

static void counted(void *arg, const int64_t n[HAN_N])
{
    struct analytics_metrics *am = arg;
    for (int q = 0; q < HAN_N; q++)
        if (n[q] > 0)
            metric_add(am->copies[q], (double)n[q]);
}

void analytics_metrics_start(struct analytics_metrics *am, struct metrics *m, struct hstore *s)
{
    for (int q = 0; q < HAN_N; q++)
        am->copies[q] = metrics_counter(
            m, "health_analytics_copies_total",
            "Copies entering each /analytics count: sent (tracked), delivered, spam, opened, "
            "read, bounced, complained",
            (const char *const[]){"event", analytics_names[q], NULL});
    hstore_set_counted(s, counted, am);
}
