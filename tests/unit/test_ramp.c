/* test_ramp.c - warmup ramps: quotas against exact decimal arithmetic,
 * windows across Berlin's DST changes (and Lord Howe's half hour, Apia's
 * skipped day), the next window start, pacing bounds and a paced day that
 * sends its whole quota evenly, strict dates. */
#include "ramp.h"
#include "test.h"
#include "tz.h"

#include <math.h>
#include <stdint.h>

#define H_MS INT64_C(3600000)

/* exact_quota - floor(start * 115^n / 100^n), capped: the decimal digits of
 * start * 115^n without its last 2n */
static int64_t exact_quota(int start, int n, int64_t cap)
{
    unsigned char dig[256] = {0}; /* little-endian decimal digits */
    int len = 0;
    for (int v = start; v > 0; v /= 10)
        dig[len++] = (unsigned char)(v % 10);
    for (int i = 0; i < n; i++) {
        int carry = 0;
        for (int k = 0; k < len || carry; k++) {
            int v = (k < len ? dig[k] : 0) * 115 + carry;
            dig[k] = (unsigned char)(v % 10);
            carry = v / 10;
            if (k >= len)
                len = k + 1;
        }
    }
    int64_t q = 0;
    for (int k = len - 1; k >= 2 * n; k--) {
        q = q * 10 + dig[k];
        if (q >= cap)
            return cap;
    }
    return q;
}

static void test_quota(void)
{
    int64_t start = 0;
    CHECK(date_parse("2026-12-05", &start) == 0 && start == 20792, "2026-12-05 is day 20792");
    struct ramp r = {
        .start_per_day = 20, .growth_pct = 15, .max_per_day = 5000, .start_day = start};
    int bad = 0;
    for (int n = 0; n < 60; n++) {
        int64_t want = exact_quota(20, n, 5000), got = ramp_quota(&r, start + n);
        if (got != want && bad++ < 5)
            printf("#   day %d: quota %lld, exact %lld\n", n, (long long)got, (long long)want);
    }
    CHECK_INT(bad, 0, "20/15%/5000: 60 days of quotas equal floor(20 * 1.15^n), capped");
    CHECK_INT(ramp_quota(&r, start), 20, "day 0: 20");
    CHECK_INT(ramp_quota(&r, start + 1), 23, "day 1: 23");
    CHECK_INT(ramp_quota(&r, start + 5), 40, "day 5: 40 (40.227)");
    CHECK_INT(ramp_quota(&r, start + 39), 4658, "day 39: 4658 (4658.496)");
    CHECK_INT(ramp_quota(&r, start + 40), 5000, "day 40: capped at 5000");
    CHECK_INT(ramp_quota(&r, start - 1), 0, "before start_date: 0");
    CHECK_INT(ramp_quota(&r, INT64_MIN), 0, "INT64_MIN: 0");
    CHECK_INT(ramp_quota(&r, start + 1000000), 5000, "a million days on: 5000");
    CHECK_INT(ramp_quota(&r, INT64_MAX), 5000, "INT64_MAX: 5000");
    struct ramp flat = {.start_per_day = 7, .growth_pct = 0, .max_per_day = 100, .start_day = 0};
    CHECK(ramp_quota(&flat, 0) == 7 && ramp_quota(&flat, 3650) == 7, "0% growth stays at start");
    struct ramp dbl = {.start_per_day = 1, .growth_pct = 100, .max_per_day = 1000, .start_day = 0};
    CHECK(ramp_quota(&dbl, 9) == 512 && ramp_quota(&dbl, 10) == 1000, "100%: 1, 2, .. 512, 1000");
    struct ramp down = {
        .start_per_day = 100, .growth_pct = -50, .max_per_day = 100, .start_day = 0};
    CHECK(ramp_quota(&down, 1) == 50 && ramp_quota(&down, 7) == 0, "-50%: 100, 50, .. 0");
    struct ramp nan_ramp = {.start_per_day = 10, .growth_pct = NAN, .max_per_day = 100};
    CHECK_INT(ramp_quota(&nan_ramp, 5), 0, "NaN growth: 0");
    struct ramp zero = {.start_per_day = 0, .growth_pct = 15, .max_per_day = 100};
    CHECK_INT(ramp_quota(&zero, 5), 0, "start 0: 0");
}

static void test_window_parse(void)
{
    static const struct {
        const char *s;
        bool is_end;
        int want; /* -1: refused */
    } rows[] = {
        {"08:00", false, 480}, {"00:00", false, 0},   {"23:59", false, 1439},
        {"24:00", true, 1440}, {"20:30", true, 1230}, {"24:00", false, -1},
        {"24:01", true, -1},   {"25:00", true, -1},   {"08:60", false, -1},
        {"8:00", false, -1},   {"08:0", false, -1},   {"08:00 ", false, -1},
        {" 08:00", false, -1}, {"0800", false, -1},   {"08-00", false, -1},
        {"", false, -1},       {"+8:00", false, -1},  {"08:00:00", false, -1},
        {NULL, false, -1},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        int min = -7;
        int rc = window_parse(rows[i].s, rows[i].is_end, &min);
        char name[80];
        snprintf(name, sizeof name, "window_parse('%s', %s)", rows[i].s ? rows[i].s : "NULL",
                 rows[i].is_end ? "end" : "start");
        CHECK(rows[i].want < 0 ? rc == -1 && min == -7 : rc == 0 && min == rows[i].want, name);
    }
}

static void test_window_day(void)
{
    char err[256];
    struct tz *berlin = tz_load("Europe/Berlin", err, sizeof err);
    CHECK(berlin != NULL, "Europe/Berlin loads");
    struct window day12 = {480, 1200, berlin}, full = {0, 1440, berlin};
    int64_t day, s, e;

    /* 2026-03-29: 02:00 CET -> 03:00 CEST; now = 12:00 local */
    window_day(&day12, INT64_C(1774778400000), &day, &s, &e);
    CHECK(day == 20541 && s == INT64_C(1774764000000) && e == INT64_C(1774807200000),
          "2026-03-29 08:00-20:00 Berlin: 06:00Z-18:00Z");
    CHECK_INT(e - s, 12 * H_MS, "2026-03-29 08:00-20:00 is 12 h");
    window_day(&full, INT64_C(1774778400000), &day, &s, &e);
    CHECK(s == INT64_C(1774738800000) && e == INT64_C(1774821600000),
          "2026-03-29 00:00-24:00: local midnights");
    CHECK_INT(e - s, 23 * H_MS, "2026-03-29 00:00-24:00 is 23 h");
    /* 2026-10-25: 03:00 CEST -> 02:00 CET */
    window_day(&day12, INT64_C(1792929600000), &day, &s, &e);
    CHECK(day == 20751 && s == INT64_C(1792911600000) && e == INT64_C(1792954800000),
          "2026-10-25 08:00-20:00 Berlin: 07:00Z-19:00Z");
    CHECK_INT(e - s, 12 * H_MS, "2026-10-25 08:00-20:00 is 12 h");
    window_day(&full, INT64_C(1792929600000), &day, &s, &e);
    CHECK(s == INT64_C(1792879200000) && e == INT64_C(1792969200000),
          "2026-10-25 00:00-24:00: local midnights");
    CHECK_INT(e - s, 25 * H_MS, "2026-10-25 00:00-24:00 is 25 h");

    /* the local day, not the UTC one */
    window_day(&day12, INT64_C(1774740600000), &day, &s, &e); /* 03-28 23:30Z = 00:30 CET */
    CHECK_INT(day, 20541, "2026-03-28T23:30Z is 2026-03-29 in Berlin");
    window_day(&day12, INT64_C(1774823400000), &day, &s, &e); /* 03-29 22:30Z = 00:30 CEST */
    CHECK_INT(day, 20542, "2026-03-29T22:30Z is 2026-03-30 in Berlin");
    window_day(&day12, INT64_C(1774823399999), &day, &s, &e);
    CHECK_INT(day, 20542, "one ms before: still 2026-03-30 (midnight was 22:00Z)");
    window_day(&day12, INT64_C(1774821599999), &day, &s, &e);
    CHECK_INT(day, 20541, "2026-03-29T21:59:59.999Z is 2026-03-29");
    /* a bound in the skipped hour moves forward by it */
    struct window gap = {150, 1200, berlin};
    window_day(&gap, INT64_C(1774778400000), &day, &s, &e);
    CHECK_INT(s, INT64_C(1774746000000) + 1800000, "02:30 on 2026-03-29 opens at 03:30 CEST");

    /* UTC (NULL) and a zone west of UTC */
    struct window utc = {480, 1200, NULL};
    window_day(&utc, INT64_C(1774778400000), &day, &s, &e);
    CHECK(day == 20541 && s == 20541 * 86400000LL + 8 * H_MS && e == 20541 * 86400000LL + 20 * H_MS,
          "UTC window: 08:00Z-20:00Z");
    window_day(&utc, -1, &day, &s, &e);
    CHECK_INT(day, -1, "1969-12-31T23:59:59.999Z is day -1");
    window_day(&day12, INT64_MAX, &day, &s, &e);
    CHECK(s < e, "INT64_MAX: a window (clamped), no overflow");
    window_day(&day12, INT64_MIN, &day, &s, &e);
    CHECK(s < e && window_next_start(&day12, INT64_MIN, &day) > INT64_MIN,
          "INT64_MIN: a window (clamped), no overflow");
    struct tz *ny = tz_load("America/New_York", err, sizeof err);
    struct window nyw = {480, 1200, ny};
    window_day(&nyw, INT64_C(1772938800000), &day, &s, &e); /* 03-08 03:00Z = 22:00 EST 03-07 */
    CHECK_INT(day, 20519, "2026-03-08T03:00Z is 2026-03-07 in New York");
    tz_free(ny);

    struct tz *lh = tz_load("Australia/Lord_Howe", err, sizeof err);
    struct window lhw = {0, 1440, lh};
    window_day(&lhw, INT64_C(1791072000000), &day, &s, &e); /* 2026-10-04 ~ noon local */
    CHECK(s == INT64_C(1791034200000) && e - s == 23 * H_MS + H_MS / 2,
          "Lord Howe 2026-10-04 00:00-24:00 is 23.5 h");
    tz_free(lh);
    tz_free(berlin);
}

static void test_next_start(void)
{
    char err[256];
    struct tz *berlin = tz_load("Europe/Berlin", err, sizeof err);
    struct window w = {480, 1200, berlin};
    int64_t day = 0;
    /* Saturday 2026-03-28 21:00 CET: next is Sunday 08:00 CEST, 06:00Z */
    CHECK(window_next_start(&w, INT64_C(1774728000000), &day) == INT64_C(1774764000000) &&
              day == 20541,
          "after Saturday's window: Sunday 2026-03-29 08:00 CEST");
    /* Sunday 05:00Z = 07:00 CEST: today's start is still ahead */
    CHECK(window_next_start(&w, INT64_C(1774760400000), &day) == INT64_C(1774764000000) &&
              day == 20541,
          "before the window: today's start");
    CHECK(window_next_start(&w, INT64_C(1774764000000), &day) ==
                  INT64_C(1774764000000) + 24 * H_MS &&
              day == 20542,
          "exactly at the start: tomorrow's");
    CHECK(window_next_start(&w, INT64_C(1774778400000), &day) ==
                  INT64_C(1774764000000) + 24 * H_MS &&
              day == 20542,
          "inside the window: tomorrow's");
    /* at Saturday 2026-10-24 08:00 CEST, Sunday 08:00 CET is 25 h ahead */
    int64_t sat_start = INT64_C(1792911600000) - 25 * H_MS;
    CHECK(window_next_start(&w, sat_start, &day) == INT64_C(1792911600000) && day == 20751,
          "across the October change: 25 h after the previous start");
    tz_free(berlin);

    /* Apia skipped 2011-12-30: from 12-29 21:00 local the next 08:00 is 12-31's */
    struct tz *apia = tz_load("Pacific/Apia", err, sizeof err);
    struct window aw = {480, 1200, apia};
    CHECK(window_next_start(&aw, INT64_C(1325228400000), &day) == INT64_C(1325268000000) &&
              day == 15339,
          "Apia: after 2011-12-29 the next window opens 2011-12-31 08:00");
    tz_free(apia);
}

static void test_pace(void)
{
    int64_t now = 1000000, end = now + 12 * H_MS;
    CHECK(pace_next(now, end, 10, 10, 0.5) == INFINITY, "sent == quota: never");
    CHECK(pace_next(now, end, 10, 11, 0.5) == INFINITY, "sent > quota: never");
    CHECK(pace_next(now, end, 0, 0, 0.5) == INFINITY, "quota 0: never");
    CHECK(pace_next(end, end, 10, 0, 0.5) == INFINITY, "at the window's end: never");
    CHECK(pace_next(end + 1, end, 10, 0, 0.5) == INFINITY, "after the end: never");
    int64_t even = 12 * H_MS / 9; /* 8 left: nine shares, the last kept as margin */
    CHECK_INT((int64_t)pace_next(now, end, 10, 2, 0.5), now + even, "u = 0.5: the even spacing");
    CHECK_INT((int64_t)pace_next(now, end, 10, 2, 0.0), now + even * 3 / 4, "u = 0: 0.75 of it");
    int64_t hi = (int64_t)pace_next(now, end, 10, 2, 0.999999);
    CHECK(hi < now + even * 5 / 4 && hi > now + even * 5 / 4 - 100,
          "u -> 1: just under 1.25 of it");
    CHECK_INT((int64_t)pace_next(now, end, 10, 2, -3), now + even * 3 / 4, "u < 0 counts as 0");
    CHECK(pace_next(now, end, 10, 2, 7) < now + even * 5 / 4, "u >= 1 stays under 1.25");
    CHECK_INT((int64_t)pace_next(now, end, 10, 2, NAN), now + even, "u NaN counts as 0.5");
    CHECK_INT((int64_t)pace_next(end - 2, end, 10, 9, 0.99), end - 1,
              "the last copy stays inside the window");
    CHECK_INT((int64_t)pace_next(end - 1, end, 10, 0, 0.5), end - 1, "1 ms left: end - 1");
    int bad = 0;
    for (int i = 0; i < 1000; i++) {
        double u = i / 1000.0;
        int64_t t = (int64_t)pace_next(now, end, 1000, 7, u);
        double g = (double)(end - now) / 994;
        bad += t < now + (int64_t)(g * 0.75) || t >= now + (int64_t)ceil(g * 1.25);
    }
    CHECK_INT(bad, 0, "1000 draws of u: within [0.75, 1.25) of the even spacing");

    /* a paced day: 500 copies over a 12 h window with pseudo-random jitter
     * all go inside it, and no tenth of the window holds more than twice
     * its even share (the spread criterion) */
    int64_t quota = 500, sent = 0;
    double t = now;
    int tenth[10] = {0};
    unsigned int seed = 12345;
    while (sent < quota) {
        seed = seed * 1103515245u + 12345u;
        double u = (double)((seed >> 8) & 0xffff) / 65536.0;
        double next = pace_next(t, end, quota, sent, u);
        if (isinf(next) || next >= (double)end)
            break;
        t = next;
        tenth[((int64_t)t - now) * 10 / (end - now)]++;
        sent++;
    }
    CHECK_INT(sent, quota, "a paced day sends its whole quota inside the window");
    int worst = 0;
    for (int i = 0; i < 10; i++)
        worst = tenth[i] > worst ? tenth[i] : worst;
    printf("# busiest tenth of the window: %d copies (even: 50)\n", worst);
    CHECK(worst <= 100, "no tenth of the window holds more than twice the even rate");
}

static void test_dates(void)
{
    static const char *const bad[] = {
        "2026-02-30",  "2026-13-01", "2026-1-01",  "2026-01-1",  "2026-01-01x", "2026-01-01 ",
        " 2026-01-01", "",           "2026-00-10", "2026-01-00", "2026/01/01",  "+026-01-01",
        "0000-01-01",  "2100-02-29", "2026-04-31", "20260101",   "2026-01-0a",  "2026-01",
    };
    char name[80];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t day = 42;
        snprintf(name, sizeof name, "date '%s' is refused", bad[i]);
        CHECK(date_parse(bad[i], &day) == -1 && day == 42, name);
    }
    int64_t day = 42;
    CHECK(date_parse(NULL, &day) == -1, "a NULL date is refused");
    CHECK(date_parse("2024-02-29", &day) == 0 && day == 19782, "2024-02-29 is day 19782");
    CHECK(date_parse("2000-02-29", &day) == 0 && day == 11016, "2000-02-29 (leap century)");
    CHECK(date_parse("1970-01-01", &day) == 0 && day == 0, "1970-01-01 is day 0");
    CHECK(date_parse("1969-12-31", &day) == 0 && day == -1, "1969-12-31 is day -1");
    CHECK(date_parse("0001-01-01", &day) == 0 && day == -719162, "0001-01-01");
    CHECK(date_parse("9999-12-31", &day) == 0 && day == 2932896, "9999-12-31");
    char out[16];
    date_format(20792, out, sizeof out);
    CHECK_STR(out, "2026-12-05", "date_format(20792)");
    date_format(-719162, out, sizeof out);
    CHECK_STR(out, "0001-01-01", "date_format keeps 4 digits");
    char small[8];
    date_format(20792, small, sizeof small);
    CHECK_STR(small, "2026-12", "a short buffer is truncated, NUL-terminated");
    int badrt = 0;
    for (int64_t d = -25567; d < 200000; d++) { /* 1900-01-01 .. 2517 */
        int64_t back = 0;
        date_format(d, out, sizeof out);
        badrt += date_parse(out, &back) != 0 || back != d;
    }
    CHECK_INT(badrt, 0, "every day 1900-2517 formats and parses back");
}

int main(void)
{
    test_quota();
    test_window_parse();
    test_window_day();
    test_next_start();
    test_pace();
    test_dates();
    return test_done();
}
