/* tz.c - TZif files (RFC 8536) and POSIX TZ rules: the offset in effect at
 * an instant and the instant of a local wall time.
 *
 * A zone is its transitions (UTC instants, ascending, each naming a local
 * time type), the types' UT offsets, and the footer rule that takes over
 * after the last transition. Nothing is shared or cached between zones;
 * after tz_parse() returns, a zone is only read. Any thread.
 */
#include "tz.h"
#include "errbuf.h"
#include "xalloc.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define TZ_DIR "/usr/share/zoneinfo"
#define TZ_NAME_MAX 64
/* the largest real TZif is ~100 KiB (with leap seconds); anything far
 * bigger is not a zone file */
#define TZ_FILE_MAX (1024 * 1024)
/* instants are clamped to +-1e15 s (31 million years): the calendar
 * arithmetic then never overflows */
#define TZ_T_MAX INT64_C(1000000000000000)
/* wall offsets are below 25 h, and a rule time within 167 h of midnight */
#define TZ_OFF_MAX (25 * 3600)
#define TZ_RULE_TIME_MAX (167 * 3600 + 59 * 60 + 59)

enum rule_kind { RULE_JULIAN, RULE_ZERO, RULE_MONTH };

/* one end of the DST period: a day of the year and a local time that day */
struct rule_date {
    enum rule_kind kind;
    int n;       /* Jn: 1..365 (no Feb 29); n: 0..365 */
    int m, w, d; /* Mm.w.d: month, week 1..5 (5 = last), weekday 0 = Sunday */
    int32_t time;
};

struct posix_rule {
    int32_t std_off, dst_off; /* seconds east of UTC */
    bool has_dst;
    struct rule_date start, end; /* start in standard time, end in DST */
};

struct tz {
    char *name;
    size_t ntrans;
    int64_t *trans; /* ascending UTC instants */
    uint8_t *tidx;  /* type of each transition */
    size_t ntypes;
    int32_t *utoff; /* offset of each type */
    bool has_rule;
    struct posix_rule rule;
};

/* a transition computed from the footer rule; RULE_CHANGES of them (five
 * years) are computed around an instant */
#define RULE_CHANGES 10
struct rule_change {
    int64_t at;
    int32_t off;
    int order; /* at equal instants the end sorts before the start */
};

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

static int64_t clamp_t(int64_t t)
{
    return t > TZ_T_MAX ? TZ_T_MAX : t < -TZ_T_MAX ? -TZ_T_MAX : t;
}

static bool is_leap(int64_t y)
{
    return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
}

int64_t tz_days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = floor_div(y, 400);
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void tz_civil_from_days(int64_t day, int64_t *y, int *m, int *d)
{
    int64_t z = day + 719468;
    int64_t era = floor_div(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

int tz_days_in_month(int64_t y, int m)
{
    static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m < 1 || m > 12)
        return 0;
    return dim[m - 1] + (m == 2 && is_leap(y));
}

/* ---- the POSIX TZ rule ---- */

/* rule_day - the day (since the epoch) a rule date falls on in year y */
static int64_t rule_day(const struct rule_date *r, int64_t y)
{
    if (r->kind == RULE_JULIAN)
        return tz_days_from_civil(y, 1, 1) + r->n - 1 + (is_leap(y) && r->n >= 60);
    if (r->kind == RULE_ZERO)
        return tz_days_from_civil(y, 1, 1) + r->n;
    int64_t first = tz_days_from_civil(y, r->m, 1);
    int dow = (int)(((first % 7) + 7 + 4) % 7); /* 1970-01-01 was a Thursday */
    int md = 1 + (r->d - dow + 7) % 7 + (r->w - 1) * 7;
    while (md > tz_days_in_month(y, r->m))
        md -= 7;
    return first + md - 1;
}

/* rule_changes - the DST starts and ends of years y0..y0+4, sorted */
static void rule_changes(const struct posix_rule *r, int64_t y0,
                         struct rule_change ch[RULE_CHANGES])
{
    for (int i = 0; i < RULE_CHANGES / 2; i++) {
        int64_t y = y0 + i;
        ch[2 * i] = (struct rule_change){
            rule_day(&r->start, y) * 86400 + r->start.time - r->std_off, r->dst_off, 1};
        ch[2 * i + 1] = (struct rule_change){
            rule_day(&r->end, y) * 86400 + r->end.time - r->dst_off, r->std_off, 0};
    }
    for (int i = 1; i < RULE_CHANGES; i++) { /* insertion sort: few, nearly sorted */
        struct rule_change c = ch[i];
        int j = i;
        while (j > 0 &&
               (ch[j - 1].at > c.at || (ch[j - 1].at == c.at && ch[j - 1].order > c.order))) {
            ch[j] = ch[j - 1];
            j--;
        }
        ch[j] = c;
    }
}

/* rule_first_year - two years before t's: the changes of y0..y0+4 then
 * surround t (a rule time is within a week of its day) */
static int64_t rule_first_year(const struct posix_rule *r, int64_t t)
{
    int64_t y;
    int m, d;
    tz_civil_from_days(floor_div(t + r->std_off, 86400), &y, &m, &d);
    return y - 2;
}

static int32_t rule_offset(const struct posix_rule *r, int64_t t)
{
    if (!r->has_dst)
        return r->std_off;
    struct rule_change ch[RULE_CHANGES];
    rule_changes(r, rule_first_year(r, t), ch);
    int32_t off = r->std_off;
    for (int i = 0; i < RULE_CHANGES && ch[i].at <= t; i++)
        off = ch[i].off;
    return off;
}

/* rule_next - the first change of the rule after t, or INT64_MAX */
static int64_t rule_next(const struct posix_rule *r, int64_t t)
{
    if (!r->has_dst)
        return INT64_MAX;
    struct rule_change ch[RULE_CHANGES];
    rule_changes(r, rule_first_year(r, t), ch);
    for (int i = 0; i < RULE_CHANGES; i++)
        if (ch[i].at > t)
            return ch[i].at;
    return INT64_MAX;
}

/* parse_num - 1..maxdigits decimal digits, into *v */
static bool parse_num(const char **p, int maxdigits, int *v)
{
    int n = 0, val = 0;
    while (**p >= '0' && **p <= '9' && n < maxdigits) {
        val = val * 10 + (**p - '0');
        (*p)++;
        n++;
    }
    if (n == 0 || (**p >= '0' && **p <= '9'))
        return false;
    *v = val;
    return true;
}

/* parse_hms - [+-]h[h..][:mm[:ss]] with at most hdigits hour digits, in
 * seconds (sign applied as written) */
static bool parse_hms(const char **p, int hdigits, int32_t *out)
{
    int sign = 1, h, m = 0, s = 0;
    if (**p == '+' || **p == '-')
        sign = *(*p)++ == '-' ? -1 : 1;
    if (!parse_num(p, hdigits, &h))
        return false;
    if (**p == ':') {
        (*p)++;
        if (!parse_num(p, 2, &m) || m > 59)
            return false;
        if (**p == ':') {
            (*p)++;
            if (!parse_num(p, 2, &s) || s > 59)
                return false;
        }
    }
    *out = sign * (h * 3600 + m * 60 + s);
    return true;
}

/* parse_abbr - "CET" (3+ letters) or "<+0330>" (3+ of [A-Za-z0-9+-]) */
static bool parse_abbr(const char **p)
{
    const char *s = *p;
    size_t n = 0;
    if (*s == '<') {
        s++;
        while ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
               *s == '+' || *s == '-') {
            s++;
            n++;
        }
        if (*s != '>' || n < 3)
            return false;
        *p = s + 1;
        return true;
    }
    while ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z')) {
        s++;
        n++;
    }
    if (n < 3)
        return false;
    *p = s;
    return true;
}

/* parse_offset - a POSIX offset (hours west, up to 24:59:59) as seconds east */
static bool parse_offset(const char **p, int32_t *east)
{
    int32_t west;
    if (!parse_hms(p, 2, &west) || west > TZ_OFF_MAX - 1 || west < -(TZ_OFF_MAX - 1))
        return false;
    *east = -west;
    return true;
}

/* parse_date - ",Jn[/time]", ",n[/time]" or ",Mm.w.d[/time]" */
static bool parse_date(const char **p, struct rule_date *r)
{
    if (**p != ',')
        return false;
    (*p)++;
    memset(r, 0, sizeof *r);
    if (**p == 'J') {
        (*p)++;
        r->kind = RULE_JULIAN;
        if (!parse_num(p, 3, &r->n) || r->n < 1 || r->n > 365)
            return false;
    } else if (**p == 'M') {
        (*p)++;
        r->kind = RULE_MONTH;
        if (!parse_num(p, 2, &r->m) || r->m < 1 || r->m > 12 || *(*p)++ != '.' ||
            !parse_num(p, 1, &r->w) || r->w < 1 || r->w > 5 || *(*p)++ != '.' ||
            !parse_num(p, 1, &r->d) || r->d > 6)
            return false;
    } else {
        r->kind = RULE_ZERO;
        if (!parse_num(p, 3, &r->n) || r->n > 365)
            return false;
    }
    r->time = 2 * 3600;
    if (**p == '/') {
        (*p)++;
        if (!parse_hms(p, 3, &r->time) || r->time > TZ_RULE_TIME_MAX || r->time < -TZ_RULE_TIME_MAX)
            return false;
    }
    return true;
}

/* posix_parse - "std offset [dst [offset] [,start[/time],end[/time]]]";
 * a DST part without dates takes the US rule, as glibc does */
static bool posix_parse(const char *s, struct posix_rule *r)
{
    memset(r, 0, sizeof *r);
    if (!parse_abbr(&s) || !parse_offset(&s, &r->std_off))
        return false;
    if (*s == '\0')
        return true;
    if (!parse_abbr(&s))
        return false;
    r->has_dst = true;
    r->dst_off = r->std_off + 3600;
    if (*s != ',' && *s != '\0' && !parse_offset(&s, &r->dst_off))
        return false;
    if (*s == '\0') {
        const char *us = ",M3.2.0,M11.1.0";
        return parse_date(&us, &r->start) && parse_date(&us, &r->end);
    }
    return parse_date(&s, &r->start) && parse_date(&s, &r->end) && *s == '\0';
}

/* ---- TZif ---- */

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

struct tzif_counts {
    uint32_t isut, isstd, leap, time, type, chars;
};

/* tzif_header - the counts of the header at p; the size of its data block
 * (time_size: 4 for version 1, 8 after) or 0 when the header is bad */
static size_t tzif_header(const unsigned char *p, size_t len, int time_size, struct tzif_counts *c)
{
    if (len < 44 || memcmp(p, "TZif", 4) != 0)
        return 0;
    c->isut = be32(p + 20);
    c->isstd = be32(p + 24);
    c->leap = be32(p + 28);
    c->time = be32(p + 32);
    c->type = be32(p + 36);
    c->chars = be32(p + 40);
    if (c->type == 0 || c->type > 256 || (c->isut && c->isut != c->type) ||
        (c->isstd && c->isstd != c->type))
        return 0;
    size_t block = (size_t)c->time * (size_t)(time_size + 1) + (size_t)c->type * 6 + c->chars +
                   (size_t)c->leap * (size_t)(time_size + 4) + c->isstd + c->isut;
    return 44 + block;
}

struct tz *tz_parse(const unsigned char *data, size_t len, const char *name, char *err, size_t n)
{
    struct tzif_counts c;
    size_t size1 = tzif_header(data, len, 4, &c);
    if (size1 == 0 || size1 > len) {
        errbuf_set(err, n, "time zone '%s': not a TZif file", name);
        return NULL;
    }
    const unsigned char *p = data + 44;
    size_t block_end = size1;
    int tsize = 4;
    const char *footer = NULL;
    size_t footer_len = 0;
    if (data[4] >= '2') {
        size_t size2 = tzif_header(data + size1, len - size1, 8, &c);
        if (size2 == 0 || size2 > len - size1) {
            errbuf_set(err, n, "time zone '%s': bad TZif version 2 block", name);
            return NULL;
        }
        p = data + size1 + 44;
        block_end = size1 + size2;
        tsize = 8;
        /* the footer: "\n" TZ string "\n" */
        const unsigned char *f = data + block_end;
        size_t rest = len - block_end;
        const unsigned char *nl = rest > 1 && f[0] == '\n' ? memchr(f + 1, '\n', rest - 1) : NULL;
        if (!nl) {
            errbuf_set(err, n, "time zone '%s': missing TZ string footer", name);
            return NULL;
        }
        footer = (const char *)f + 1;
        footer_len = (size_t)(nl - f) - 1;
    }

    if (c.leap > 0) { /* "right/" zones count leap seconds in their instants */
        errbuf_set(err, n, "time zone '%s': zones with leap seconds are not supported", name);
        return NULL;
    }
    struct tz *tz = xcalloc(1, sizeof *tz);
    tz->name = xstrdup(name);
    tz->ntrans = c.time;
    tz->ntypes = c.type;
    tz->trans = xcalloc(c.time ? c.time : 1, sizeof *tz->trans);
    tz->tidx = xcalloc(c.time ? c.time : 1, 1);
    tz->utoff = xcalloc(c.type, sizeof *tz->utoff);
    for (size_t i = 0; i < c.time; i++) {
        tz->trans[i] = tsize == 8 ? be64(p + 8 * i) : (int32_t)be32(p + 4 * i);
        if (i > 0 && tz->trans[i] <= tz->trans[i - 1]) {
            errbuf_set(err, n, "time zone '%s': transitions out of order", name);
            goto fail;
        }
    }
    p += (size_t)c.time * (size_t)tsize;
    for (size_t i = 0; i < c.time; i++) {
        tz->tidx[i] = p[i];
        if (p[i] >= c.type) {
            errbuf_set(err, n, "time zone '%s': bad local time type index", name);
            goto fail;
        }
    }
    p += c.time;
    for (size_t i = 0; i < c.type; i++) {
        int32_t off = (int32_t)be32(p + 6 * i);
        if (off <= -TZ_OFF_MAX || off >= TZ_OFF_MAX) {
            errbuf_set(err, n, "time zone '%s': UT offset out of range", name);
            goto fail;
        }
        tz->utoff[i] = off;
    }
    if (footer && footer_len > 0) {
        char rule[128];
        if (footer_len >= sizeof rule) {
            errbuf_set(err, n, "time zone '%s': TZ string too long", name);
            goto fail;
        }
        memcpy(rule, footer, footer_len);
        rule[footer_len] = '\0';
        if (!posix_parse(rule, &tz->rule)) {
            errbuf_set(err, n, "time zone '%s': bad TZ string '%s'", name, rule);
            goto fail;
        }
        tz->has_rule = true;
    }
    return tz;
fail:
    tz_free(tz);
    return NULL;
}

void tz_free(struct tz *tz)
{
    if (!tz)
        return;
    free(tz->name);
    free(tz->trans);
    free(tz->tidx);
    free(tz->utoff);
    free(tz);
}

const char *tz_name(const struct tz *tz)
{
    return tz ? tz->name : "UTC";
}

static bool valid_name(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > TZ_NAME_MAX || name[0] == '/' || strstr(name, ".."))
        return false;
    for (const char *s = name; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '+' || *s == '-' || *s == '/'))
            return false;
    return true;
}

/* read_zone - the file's bytes into *out (caller frees); 0, or an errno
 * value (ENOENT also for what is not a regular file of sensible size) */
static int read_zone(const char *path, unsigned char **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return errno;
    struct stat st;
    int rc = 0;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > TZ_FILE_MAX) {
        rc = ENOENT;
        goto out;
    }
    *out = xmalloc((size_t)st.st_size + 1);
    *len = fread(*out, 1, (size_t)st.st_size + 1, f);
    if (ferror(f) || *len > (size_t)st.st_size) {
        free(*out);
        *out = NULL;
        rc = EIO;
    }
out:
    fclose(f);
    return rc;
}

struct tz *tz_load(const char *name, char *err, size_t n)
{
    return tz_load_dir(TZ_DIR, name, err, n);
}

struct tz *tz_load_dir(const char *dir, const char *name, char *err, size_t n)
{
    if (!name || !valid_name(name)) {
        bool printable = name && strlen(name) <= TZ_NAME_MAX;
        for (const char *s = name; printable && *s; s++)
            printable = *s >= 0x20 && *s < 0x7f && *s != '\'';
        if (printable)
            errbuf_set(err, n, "unknown time zone '%s'", name);
        else
            errbuf_set(err, n,
                       "unknown time zone (a name of at most %d characters of "
                       "[A-Za-z0-9_+-/])",
                       TZ_NAME_MAX);
        return NULL;
    }
    char *path = xasprintf("%s/%s", dir, name);
    unsigned char *data = NULL;
    size_t len = 0;
    int rc = read_zone(path, &data, &len);
    free(path);
    if (rc != 0) {
        if (strcmp(name, "UTC") == 0 || strcmp(name, "Etc/UTC") == 0) {
            struct tz *tz = xcalloc(1, sizeof *tz);
            tz->name = xstrdup(name);
            tz->ntypes = 1;
            tz->utoff = xcalloc(1, sizeof *tz->utoff);
            return tz;
        }
        if (rc == ENOENT || rc == ENOTDIR)
            errbuf_set(err, n, "unknown time zone '%s'", name);
        else
            errbuf_set(err, n, "time zone '%s': cannot read %s/%s (errno %d)", name, dir, name, rc);
        return NULL;
    }
    struct tz *tz = tz_parse(data, len, name, err, n);
    free(data);
    return tz;
}

/* ---- offsets ---- */

int32_t tz_offset_s(const struct tz *tz, int64_t utc_s)
{
    if (!tz)
        return 0;
    int64_t t = clamp_t(utc_s);
    if (tz->ntrans == 0 || t >= tz->trans[tz->ntrans - 1]) {
        if (tz->has_rule)
            return rule_offset(&tz->rule, t);
        return tz->utoff[tz->ntrans ? tz->tidx[tz->ntrans - 1] : 0];
    }
    if (t < tz->trans[0])
        return tz->utoff[0];
    size_t lo = 0, hi = tz->ntrans - 1; /* trans[lo] <= t < trans[hi] */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (tz->trans[mid] <= t)
            lo = mid;
        else
            hi = mid;
    }
    return tz->utoff[tz->tidx[lo]];
}

/* next_change - the first transition after t (perhaps without a change of
 * offset), or INT64_MAX */
static int64_t next_change(const struct tz *tz, int64_t t)
{
    if (tz->ntrans == 0 || t >= tz->trans[tz->ntrans - 1])
        return tz->has_rule ? rule_next(&tz->rule, t) : INT64_MAX;
    if (t < tz->trans[0])
        return tz->trans[0];
    size_t lo = 0, hi = tz->ntrans - 1; /* trans[lo] <= t < trans[hi] */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (tz->trans[mid] <= t)
            lo = mid;
        else
            hi = mid;
    }
    return tz->trans[hi];
}

int tz_local_to_utc(const struct tz *tz, int64_t local_s, int64_t *utc_s)
{
    if (local_s > TZ_T_MAX || local_s < -TZ_T_MAX)
        return -1;
    if (!tz) {
        *utc_s = local_s;
        return 0;
    }
    /* Walk the periods of constant offset from well before the answer: the
     * first period that holds local_s - offset is the earliest instant; a
     * period that starts after it means local_s was skipped (a gap), and
     * the offset before the gap moves it forward by the gap's length. */
    int64_t start = INT64_MIN, cur = local_s - 2 * TZ_OFF_MAX;
    int32_t off = tz_offset_s(tz, cur), prev_off = off;
    for (int guard = 0; guard < 1000; guard++) {
        int64_t u = local_s - off;
        if (u < start) {
            *utc_s = local_s - prev_off;
            return 0;
        }
        int64_t next = next_change(tz, cur);
        if (u < next) {
            *utc_s = u;
            return 0;
        }
        prev_off = off;
        start = cur = next;
        off = tz_offset_s(tz, cur);
    }
    *utc_s = local_s - off; /* not reached: transitions are hours apart */
    return 0;
}
