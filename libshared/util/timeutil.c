/* timeutil.c - clocks and timestamps. */
#include "timeutil.h"
#include "tz.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int64_t time_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t time_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* put2 - two decimal digits of v (0..99) */
static char *put2(char *p, int v)
{
    p[0] = (char)('0' + v / 10);
    p[1] = (char)('0' + v % 10);
    return p + 2;
}

/* fmt - digit by digit, since every event carries one per copy sent and
 * snprintf is a visible part of a copy's cost; years outside 0..9999 and
 * times before 1970 keep snprintf */
static void fmt(int64_t ms, char *out, size_t len, int with_ms)
{
    /* floored: -1 ms is 23:59:59.999 of the day before the epoch */
    int f = (int)(ms % 1000);
    time_t secs = (time_t)(ms / 1000 - (f < 0));
    f += f < 0 ? 1000 : 0;
    struct tm tm;
    gmtime_r(&secs, &tm);
    int year = tm.tm_year + 1900;
    if (ms < 0 || year > 9999) {
        if (with_ms)
            snprintf(out, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", year, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, f);
        else
            snprintf(out, len, "%04d-%02d-%02dT%02d:%02d:%02dZ", year, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min, tm.tm_sec);
        return;
    }
    char b[32], *p = put2(put2(b, year / 100), year % 100);
    *p++ = '-';
    p = put2(p, tm.tm_mon + 1);
    *p++ = '-';
    p = put2(p, tm.tm_mday);
    *p++ = 'T';
    p = put2(p, tm.tm_hour);
    *p++ = ':';
    p = put2(p, tm.tm_min);
    *p++ = ':';
    p = put2(p, tm.tm_sec);
    if (with_ms) {
        *p++ = '.';
        *p++ = (char)('0' + f / 100);
        p = put2(p, f % 100);
    }
    *p++ = 'Z';
    size_t n = (size_t)(p - b);
    if (len == 0)
        return;
    if (n >= len) /* as snprintf: what fits, terminated */
        n = len - 1;
    memcpy(out, b, n);
    out[n] = '\0';
}

int time_rfc5322(int64_t ms, char *out, size_t len)
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    int64_t sec = ms / 1000 - (ms % 1000 < 0 ? 1 : 0);
    time_t t = (time_t)sec;
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL || tm.tm_year < 0 || tm.tm_year > 9999 - 1900)
        return -1;
    /* digit by digit, as fmt: this runs once per copy */
    char b[40], *p = b;
    int year = tm.tm_year + 1900;
    memcpy(p, days[tm.tm_wday], 3);
    p += 3;
    *p++ = ',';
    *p++ = ' ';
    p = put2(p, tm.tm_mday);
    *p++ = ' ';
    memcpy(p, months[tm.tm_mon], 3);
    p += 3;
    *p++ = ' ';
    p = put2(put2(p, year / 100), year % 100);
    *p++ = ' ';
    p = put2(p, tm.tm_hour);
    *p++ = ':';
    p = put2(p, tm.tm_min);
    *p++ = ':';
    p = put2(p, tm.tm_sec);
    memcpy(p, " +0000", 7);
    p += 6;
    if ((size_t)(p - b) >= len)
        return -1;
    memcpy(out, b, (size_t)(p - b) + 1);
    return 0;
}

void time_rfc3339_ms(int64_t ms, char *out, size_t len)
{
    fmt(ms, out, len, 1);
}

void time_rfc3339(int64_t ms, char *out, size_t len)
{
    fmt(ms, out, len, 0);
}

void time_sleep_ms(int64_t ms)
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

void time_cond_init_mono(pthread_cond_t *cv)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(cv, &ca);
    pthread_condattr_destroy(&ca);
}

struct timespec time_mono_deadline(int64_t ms)
{
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += (time_t)(ms / 1000);
    dl.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    return dl;
}

/* digits - n decimal digits at *p into *out, *p moved past them */
static bool digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return false;
        v = v * 10 + (c - '0');
    }
    *p += n;
    *out = v;
    return true;
}

int time_parse_rfc3339(const char *s, int64_t *ms)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, mo, d, h = 0, mi = 0, sec = 0, frac = 0;
    const char *p = s;
    if (!digits(&p, 4, &y) || *p++ != '-' || !digits(&p, 2, &mo) || *p++ != '-' ||
        !digits(&p, 2, &d))
        return -1;
    if (y < 1970 || mo < 1 || mo > 12 || d < 1)
        return -1;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (d > mdays[mo - 1] + (mo == 2 && leap))
        return -1;
    int64_t off_s = 0;
    if (*p) {
        if ((*p != 'T' && *p != 't') || (p++, !digits(&p, 2, &h)) || *p++ != ':' ||
            !digits(&p, 2, &mi) || *p++ != ':' || !digits(&p, 2, &sec) || h > 23 || mi > 59 ||
            sec > 59)
            return -1;
        if (*p == '.') {
            int nd = 0;
            for (p++; *p >= '0' && *p <= '9'; p++, nd++)
                if (nd < 3)
                    frac = frac * 10 + (*p - '0');
            if (nd == 0)
                return -1;
            for (; nd < 3; nd++)
                frac *= 10;
        }
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-' || *p == ' ') {
            int sign = *p == '-' ? -1 : 1, oh, om;
            p++;
            if (!digits(&p, 2, &oh) || *p++ != ':' || !digits(&p, 2, &om) || oh > 23 || om > 59)
                return -1;
            off_s = sign * (oh * 3600 + om * 60);
        } else {
            return -1;
        }
        if (*p)
            return -1;
    }
    int64_t t = (tz_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - off_s) * 1000;
    if (t < 0)
        return -1;
    *ms = t + frac;
    return 0;
}
