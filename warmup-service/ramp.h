/* ramp.h - a sending identity's daily quota, its sending window in its time
 * zone, and the pacing of copies across the window (DESIGN 9.3).
 *
 * Pure functions of their arguments (the caller passes the clock and the
 * jitter); any thread. Days are local dates as days since 1970-01-01, the
 * same numbering as date_parse(). A window borrows its time zone (the
 * caller keeps it loaded while the window is used).
 */
#ifndef RAMP_H
#define RAMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tz;

struct ramp {
    int64_t start_per_day;
    double growth_pct;
    int64_t max_per_day;
    int64_t start_day; /* days since 1970-01-01 of start_date */
};

/* ramp_quota - copies allowed on local day `day`: 0 before start_day, else
 * min(max_per_day, floor(start_per_day * (1 + growth_pct/100)^(day -
 * start_day) + 1e-9)); never negative, no overflow however far the day */
int64_t ramp_quota(const struct ramp *r, int64_t day);

struct window {
    int start_min, end_min; /* minutes after local midnight, 0 <= start < end <= 1440 */
    const struct tz *tz;    /* borrowed; NULL = UTC */
};

/* window_parse - "HH:MM" (exactly five characters, 00:00..23:59) into
 * minutes after midnight; "24:00" only when is_end. 0, or -1 */
int window_parse(const char *hhmm, bool is_end, int *min);
/* window_day - the local day containing now_ms, and that day's window
 * [*start_ms, *end_ms) as UTC instants (ms): local midnight plus
 * start_min/end_min, so a window spanning a DST change is an hour shorter
 * or longer; a bound that falls in a skipped hour moves forward by it.
 * now may lie before, in or after the window. */
void window_day(const struct window *w, int64_t now_ms, int64_t *day, int64_t *start_ms,
                int64_t *end_ms);
/* window_next_start - the first window start strictly after now_ms (today's
 * if it is still ahead, else a later day's), and in *day the local day it
 * opens (as window_day would say at that instant) */
int64_t window_next_start(const struct window *w, int64_t now_ms, int64_t *day);
/* pace_next - when the next copy of the day may go, after the slot (or the
 * instant) now_ms: now + (end - now) / (quota - sent + 1) * (0.75 + 0.5 *
 * u), u uniform in [0,1) (jitter; clamped to it, NaN = 0.5): the rest of
 * the window in equal shares, one more than the copies left, so the last
 * copy lands a share before the end rather than on it; at most end - 1.
 * Fractional milliseconds, so a rate above 1,000 copies a second keeps its
 * precision when each slot follows the last. INFINITY when sent >= quota
 * or now >= end (nothing more today). */
double pace_next(double now_ms, int64_t end_ms, int64_t quota, int64_t sent, double u);
/* date_parse - strict "YYYY-MM-DD" (year 0001..9999, a real date, nothing
 * before or after) into days since 1970-01-01. 0, or -1 */
int date_parse(const char *yyyy_mm_dd, int64_t *day);
/* date_format - "YYYY-MM-DD" into out[n] (n >= 11; shorter is truncated) */
void date_format(int64_t day, char *out, size_t n);

#endif
