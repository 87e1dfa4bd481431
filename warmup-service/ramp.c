/* ramp.c - daily quotas, sending windows and pacing (see ramp.h). Local
 * days and wall times come from libshared's tz; nothing here reads a clock
 * or keeps state. Any thread. */
#include "ramp.h"
#include "tz.h"

#include <math.h>
#include <stdio.h>

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

int64_t ramp_quota(const struct ramp *r, int64_t day)
{
    if (day < r->start_day || r->start_per_day <= 0 || r->max_per_day <= 0)
        return 0;
    double v = (double)r->start_per_day *
               pow(1.0 + r->growth_pct / 100.0, (double)day - (double)r->start_day);
    if (!(v > 0)) /* NaN, or a ramp that shrank to nothing */
        return 0;
    double q = floor(v + 1e-9);
    if (q >= (double)r->max_per_day) /* also infinity */
        return r->max_per_day;
    return (int64_t)q;
}

int window_parse(const char *s, bool is_end, int *min)
{
    if (!s)
        return -1;
    for (int i = 0; i < 5; i++)
        if (i == 2 ? s[i] != ':' : (s[i] < '0' || s[i] > '9'))
            return -1;
    if (s[5] != '\0')
        return -1;
    int h = (s[0] - '0') * 10 + (s[1] - '0'), m = (s[3] - '0') * 10 + (s[4] - '0');
    if (m > 59 || h > 24 || (h == 24 && (!is_end || m != 0)))
        return -1;
    *min = h * 60 + m;
    return 0;
}

/* local_ms - the UTC instant (ms) of minute `min` after local midnight of day */
static int64_t local_ms(const struct tz *tz, int64_t day, int min)
{
    int64_t utc = 0;
    if (tz_local_to_utc(tz, day * 86400 + (int64_t)min * 60, &utc) != 0)
        utc = day * 86400 + (int64_t)min * 60; /* beyond 1e15 s: no zone is meaningful */
    return utc * 1000;
}

/* instants are clamped to +-1e17 ms (3 million years): day arithmetic in ms
 * then never overflows */
static int64_t clamp_ms(int64_t ms)
{
    const int64_t lim = INT64_C(100000000000000000);
    return ms > lim ? lim : ms < -lim ? -lim : ms;
}

static int64_t local_day(const struct tz *tz, int64_t ms)
{
    int64_t s = floor_div(clamp_ms(ms), 1000);
    return floor_div(s + tz_offset_s(tz, s), 86400);
}

void window_day(const struct window *w, int64_t now_ms, int64_t *day, int64_t *start_ms,
                int64_t *end_ms)
{
    *day = local_day(w->tz, now_ms);
    *start_ms = local_ms(w->tz, *day, w->start_min);
    *end_ms = local_ms(w->tz, *day, w->end_min);
}

int64_t window_next_start(const struct window *w, int64_t now_ms, int64_t *day)
{
    int64_t d = local_day(w->tz, now_ms), start = 0;
    /* today's start, else tomorrow's; a day skipped whole (Apia, 2011-12-30)
     * moves its start into the next day, hence a few more */
    for (int i = 0; i < 4; i++) {
        start = local_ms(w->tz, d + i, w->start_min);
        if (start > now_ms)
            break;
    }
    *day = local_day(w->tz, start);
    return start;
}

double pace_next(double now_ms, int64_t end_ms, int64_t quota, int64_t sent, double u)
{
    if (sent >= quota || now_ms >= (double)end_ms)
        return INFINITY;
    if (isnan(u))
        u = 0.5;
    u = u < 0 ? 0 : u >= 1 ? 1 - 1e-9 : u;
    if (sent < 0)
        sent = 0;
    double gap = ((double)end_ms - now_ms) / (double)(quota - sent + 1) * (0.75 + 0.5 * u);
    double last = (double)(end_ms - 1);
    return now_ms + gap >= last ? last : now_ms + gap;
}

int date_parse(const char *s, int64_t *day)
{
    if (!s)
        return -1;
    for (int i = 0; i < 10; i++)
        if ((i == 4 || i == 7) ? s[i] != '-' : (s[i] < '0' || s[i] > '9'))
            return -1;
    if (s[10] != '\0')
        return -1;
    int y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
    int m = (s[5] - '0') * 10 + (s[6] - '0'), d = (s[8] - '0') * 10 + (s[9] - '0');
    if (y < 1 || m < 1 || m > 12 || d < 1 || d > tz_days_in_month(y, m))
        return -1;
    *day = tz_days_from_civil(y, m, d);
    return 0;
}

void date_format(int64_t day, char *out, size_t n)
{
    int64_t y;
    int m, d;
    tz_civil_from_days(day, &y, &m, &d);
    snprintf(out, n, "%04lld-%02d-%02d", (long long)y, m, d);
}
