/* test_tz.c - time zones: offsets and local-to-UTC conversions of the
 * system's zones against Python's zoneinfo, POSIX TZ footer rules against
 * glibc (tz_cases.h, generated at build time by gen_tz_cases.py), the RFC
 * 8536 cases neither gets right, version 1 files, names that are refused,
 * and damaged files that must fail cleanly. */
#include "test.h"
#include "tz.h"
#include "tz_cases.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>

#define NZONES (sizeof tz_zones / sizeof tz_zones[0])
#define NRULES (sizeof tz_rules / sizeof tz_rules[0])

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* rule_tzif - a version 2 TZif without transitions: everything comes from
 * the footer rule */
static size_t rule_tzif(const char *rule, unsigned char *out, size_t cap)
{
    size_t len = 0;
    for (int block = 0; block < 2; block++) {
        unsigned char *h = out + len;
        memset(h, 0, 44);
        memcpy(h, "TZif2", 5);
        put32(h + 36, 1); /* one type */
        put32(h + 40, 4); /* "XXX\0" */
        len += 44;
        memset(out + len, 0, 6); /* offset 0, standard, abbreviation 0 */
        len += 6;
        memcpy(out + len, "XXX", 4);
        len += 4;
    }
    int k = snprintf((char *)out + len, cap - len, "\n%s\n", rule);
    return len + (size_t)k;
}

static unsigned char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    unsigned char *buf = malloc(1 << 20);
    *len = fread(buf, 1, 1 << 20, f);
    fclose(f);
    return buf;
}

static void test_zones(void)
{
    char err[256], name[128];
    for (size_t z = 0; z < NZONES; z++) {
        struct tz *tz = tz_load(tz_zones[z], err, sizeof err);
        snprintf(name, sizeof name, "%s loads", tz_zones[z]);
        CHECK(tz != NULL, name);
        if (!tz) {
            printf("#   %s\n", err);
            continue;
        }
        CHECK_STR(tz_name(tz), tz_zones[z], "tz_name is the loaded name");
        int n = 0, bad = 0;
        for (size_t i = 0; i < sizeof tz_off_cases / sizeof tz_off_cases[0]; i++) {
            const struct tz_off_case *c = &tz_off_cases[i];
            if ((size_t)c->zone != z)
                continue;
            n++;
            int32_t got = tz_offset_s(tz, c->utc);
            if (got != c->off && bad++ < 5)
                printf("#   %s at %" PRId64 ": offset %d, zoneinfo says %d\n", tz_zones[z], c->utc,
                       got, c->off);
        }
        snprintf(name, sizeof name, "%s: %d offsets (1900-2400) agree with zoneinfo", tz_zones[z],
                 n);
        CHECK(n > 900 && bad == 0, name);
        n = bad = 0;
        for (size_t i = 0; i < sizeof tz_l2u_cases / sizeof tz_l2u_cases[0]; i++) {
            const struct tz_l2u_case *c = &tz_l2u_cases[i];
            if ((size_t)c->zone != z)
                continue;
            n++;
            int64_t got = 0;
            int rc = tz_local_to_utc(tz, c->local, &got);
            if ((rc != 0 || got != c->utc) && bad++ < 5)
                printf("#   %s local %" PRId64 ": utc %" PRId64 " (rc %d), zoneinfo says %" PRId64
                       "\n",
                       tz_zones[z], c->local, got, rc, c->utc);
        }
        snprintf(name, sizeof name,
                 "%s: %d local times (gaps, repeats, after 2037) agree with zoneinfo", tz_zones[z],
                 n);
        CHECK(n > 100 && bad == 0, name);
        tz_free(tz);
    }
}

static void test_rules(void)
{
    unsigned char buf[512];
    char err[256], name[160];
    for (size_t r = 0; r < NRULES; r++) {
        size_t len = rule_tzif(tz_rules[r], buf, sizeof buf);
        struct tz *tz = tz_parse(buf, len, tz_rules[r], err, sizeof err);
        snprintf(name, sizeof name, "rule %s parses", tz_rules[r]);
        CHECK(tz != NULL, name);
        if (!tz) {
            printf("#   %s\n", err);
            continue;
        }
        int n = 0, bad = 0;
        for (size_t i = 0; i < sizeof tz_rule_cases / sizeof tz_rule_cases[0]; i++) {
            const struct tz_rule_case *c = &tz_rule_cases[i];
            if ((size_t)c->rule != r)
                continue;
            n++;
            int32_t got = tz_offset_s(tz, c->utc);
            if (got != c->off && bad++ < 5)
                printf("#   %s at %" PRId64 ": offset %d, glibc says %d\n", tz_rules[r], c->utc,
                       got, c->off);
        }
        snprintf(name, sizeof name, "rule %s: %d offsets agree with glibc", tz_rules[r], n);
        CHECK(n > 500 && bad == 0, name);
        tz_free(tz);
    }
}

/* RFC 8536 3.3.1: "EST5EDT,0/0,J365/25" is DST all year (glibc and Python
 * both compute standard time for the first hours of each UTC year) */
static void test_rfc_cases(void)
{
    unsigned char buf[512];
    char err[256];
    size_t len = rule_tzif("EST5EDT,0/0,J365/25", buf, sizeof buf);
    struct tz *tz = tz_parse(buf, len, "all-year DST", err, sizeof err);
    CHECK(tz != NULL, "all-year DST rule parses");
    if (!tz)
        return;
    static const int64_t at[] = {1704067200 /* 2024-01-01T00:00Z */,
                                 1704085199,
                                 1704085200,
                                 1717200000,
                                 1735689599,
                                 1735707600,
                                 4102444800 /* 2100 */};
    int bad = 0;
    for (size_t i = 0; i < sizeof at / sizeof at[0]; i++)
        bad += tz_offset_s(tz, at[i]) != -4 * 3600;
    CHECK_INT(bad, 0, "EST5EDT,0/0,J365/25 is -04:00 all year, across new year too");
    tz_free(tz);
    /* a start moved into the previous year by a negative time (glibc looks
     * only at the UTC year's own dates) and an end past midnight */
    len = rule_tzif("XXX-5YYY-6,J1/-1:30,J200/+24:30:15", buf, sizeof buf);
    tz = tz_parse(buf, len, "J1/-1:30", err, sizeof err);
    CHECK(tz && tz_offset_s(tz, 1672507799) == 5 * 3600 &&
              tz_offset_s(tz, 1672507800) == 6 * 3600 && tz_offset_s(tz, 1672531199) == 6 * 3600 &&
              tz_offset_s(tz, 1672531200) == 6 * 3600,
          "J1/-1:30: DST from 2022-12-31 17:30Z, across the UTC new year");
    CHECK(tz && tz_offset_s(tz, 1689791414) == 6 * 3600 && tz_offset_s(tz, 1689791415) == 5 * 3600,
          "J200/+24:30:15: DST until 2023-07-19 18:30:15Z");
    tz_free(tz);

    /* hand-checked Berlin instants and wall times around the 2026 changes */
    tz = tz_load("Europe/Berlin", err, sizeof err);
    CHECK_INT(tz_offset_s(tz, 1774745999), 3600, "Berlin 2026-03-29 00:59:59Z is +01:00");
    CHECK_INT(tz_offset_s(tz, 1774746000), 7200, "Berlin 2026-03-29 01:00:00Z is +02:00");
    CHECK_INT(tz_offset_s(tz, 1792889999), 7200, "Berlin 2026-10-25 00:59:59Z is +02:00");
    CHECK_INT(tz_offset_s(tz, 1792890000), 3600, "Berlin 2026-10-25 01:00:00Z is +01:00");
    int64_t u = 0;
    CHECK(tz_local_to_utc(tz, 1774751400, &u) == 0 && u == 1774746000 + 1800,
          "Berlin 02:30 on 2026-03-29 (skipped) is 03:30 CEST = 01:30Z");
    CHECK(tz_local_to_utc(tz, 1792895400, &u) == 0 && u == 1792895400 - 7200,
          "Berlin 02:30 on 2026-10-25 (twice) is the first, 00:30Z");
    CHECK(tz_local_to_utc(tz, INT64_C(2000000000000000), &u) == -1,
          "a local time beyond 1e15 s is refused");
    /* 2100-07-01T12:00Z: far past the file's last transition */
    CHECK_INT(tz_offset_s(tz, INT64_C(4118212800)), 7200, "Berlin in July 2100 is +02:00");
    CHECK_INT(tz_offset_s(tz, INT64_MAX), tz_offset_s(tz, INT64_C(1000000000000000)),
              "INT64_MAX is answered (clamped)");
    tz_offset_s(tz, INT64_MIN);
    tz_free(tz);

    CHECK_INT(tz_offset_s(NULL, 1774746000), 0, "a NULL zone is UTC");
    CHECK(tz_local_to_utc(NULL, 12345, &u) == 0 && u == 12345, "a NULL zone converts as UTC");
    CHECK_STR(tz_name(NULL), "UTC", "a NULL zone is named UTC");
}

/* version1 - Berlin cut to its version 1 block (32-bit instants, no
 * footer) gives zoneinfo's offsets from 1902 to 2037 */
static void test_version1(void)
{
    size_t len = 0;
    unsigned char *data = read_file("/usr/share/zoneinfo/Europe/Berlin", &len);
    CHECK(data != NULL && len > 44, "Berlin's file reads");
    if (!data)
        return;
    uint32_t cnt[6];
    for (int i = 0; i < 6; i++)
        cnt[i] = (uint32_t)data[20 + 4 * i] << 24 | (uint32_t)data[21 + 4 * i] << 16 |
                 (uint32_t)data[22 + 4 * i] << 8 | data[23 + 4 * i];
    size_t v1 = 44 + cnt[3] * 5 + cnt[4] * 6 + cnt[5] + cnt[2] * 8 + cnt[1] + cnt[0];
    data[4] = 0; /* version 1 */
    char err[256];
    struct tz *tz = tz_parse(data, v1, "v1", err, sizeof err);
    CHECK(tz != NULL, "Berlin's version 1 block parses alone");
    int n = 0, bad = 0;
    for (size_t i = 0; tz && i < sizeof tz_off_cases / sizeof tz_off_cases[0]; i++) {
        const struct tz_off_case *c = &tz_off_cases[i];
        if (strcmp(tz_zones[c->zone], "Europe/Berlin") != 0 || c->utc < -2147483647LL ||
            c->utc > 2147483647LL)
            continue;
        n++;
        bad += tz_offset_s(tz, c->utc) != c->off;
    }
    CHECK(n > 500 && bad == 0, "version 1 offsets (1902-2037) agree with zoneinfo");
    tz_free(tz);
    /* the same bytes claiming version 2 lack their second block */
    data[4] = '2';
    tz = tz_parse(data, v1, "v2cut", err, sizeof err);
    CHECK(tz == NULL && strstr(err, "version 2") != NULL, "a cut version 2 file is refused");
    free(data);
}

static void test_names(void)
{
    static const struct {
        const char *name, *err;
    } bad[] = {
        {"Europe/Nowhere", "unknown time zone 'Europe/Nowhere'"},
        {"../../etc/passwd", "unknown time zone '../../etc/passwd'"},
        {"Europe/../Europe/Berlin", "unknown time zone 'Europe/../Europe/Berlin'"},
        {"/etc/localtime", "unknown time zone '/etc/localtime'"},
        {"", "unknown time zone ''"},
        {"Europe", "unknown time zone 'Europe'"},
        {"zone.tab", "unknown time zone 'zone.tab'"},
        {"Europe/Berlin ", "unknown time zone 'Europe/Berlin '"},
        {"Europe/Berlin\n", "unknown time zone (a name"},
        {"Europe'Berlin", "unknown time zone (a name"},
        {"Aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
         "unknown time zone (a name"},
        {"leapseconds", "time zone 'leapseconds': not a TZif file"},
        {"right/Europe/Berlin", "leap seconds are not supported"},
    };
    char err[256], name[200];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        struct tz *tz = tz_load(bad[i].name, err, sizeof err);
        snprintf(name, sizeof name, "'%s' is refused: %s", bad[i].name, err);
        for (char *s = name; *s; s++)
            if (*s == '\n')
                *s = '?';
        CHECK(tz == NULL && strstr(err, bad[i].err) != NULL, name);
        tz_free(tz);
    }
    CHECK(tz_load(NULL, err, sizeof err) == NULL, "a NULL name is refused");
    static const char *const good[] = {"UTC",
                                       "Etc/UTC",
                                       "Etc/GMT-14",
                                       "Etc/GMT+12",
                                       "America/Argentina/Buenos_Aires",
                                       "posix/Europe/Berlin"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        struct tz *tz = tz_load(good[i], err, sizeof err);
        snprintf(name, sizeof name, "'%s' loads", good[i]);
        CHECK(tz != NULL, name);
        tz_free(tz);
    }
    struct tz *tz = tz_load("Etc/GMT-14", err, sizeof err);
    CHECK_INT(tz_offset_s(tz, 1774746000), 14 * 3600, "Etc/GMT-14 is +14:00");
    tz_free(tz);

    /* a zoneinfo directory without the files: only UTC still loads */
    tz = tz_load_dir("/nonexistent-zoneinfo", "UTC", err, sizeof err);
    CHECK(tz != NULL && tz_offset_s(tz, 1774746000) == 0, "UTC works without its file");
    tz_free(tz);
    tz = tz_load_dir("/nonexistent-zoneinfo", "Etc/UTC", err, sizeof err);
    CHECK(tz != NULL, "Etc/UTC works without its file");
    tz_free(tz);
    tz = tz_load_dir("/nonexistent-zoneinfo", "Europe/Berlin", err, sizeof err);
    CHECK(tz == NULL && strstr(err, "unknown time zone 'Europe/Berlin'"),
          "Europe/Berlin without its file is unknown");
}

static void test_bad_rules(void)
{
    static const char *const bad[] = {
        "CET",                          /* no offset */
        "CE-1",                         /* name of 2 letters */
        "CET-1CEST,M3.5.0",             /* one date */
        "CET-1CEST,M13.5.0,M10.5.0",    /* month 13 */
        "CET-1CEST,M3.6.0,M10.5.0",     /* week 6 */
        "CET-1CEST,M3.5.7,M10.5.0",     /* weekday 7 */
        "CET-1CEST,J0,J300",            /* J0 */
        "CET-1CEST,J366,J300",          /* J366 */
        "CET-1CEST,366,300",            /* n 366 */
        "CET-1CEST,M3.5.0/168,M10.5.0", /* over 167 h */
        "CET-25",                       /* offset over 24:59:59 */
        "CET-1:60",                     /* minutes 60 */
        "<+03>-3x",                     /* junk */
        "<+3>-3",                       /* quoted name of 2 */
        "CET-1CEST,M3.5.0,M10.5.0,",    /* trailing comma */
        "CET-1CEST,M3.5.0/2:,M10.5.0",
    };
    unsigned char buf[512];
    char err[256], name[200];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t len = rule_tzif(bad[i], buf, sizeof buf);
        err[0] = '\0';
        struct tz *tz = tz_parse(buf, len, "x", err, sizeof err);
        snprintf(name, sizeof name, "rule '%s' is refused", bad[i]);
        CHECK(tz == NULL && strstr(err, "bad TZ string"), name);
        tz_free(tz);
    }
    /* without dates the DST part takes the US rule; an empty footer keeps
     * the last type */
    size_t len = rule_tzif("EST5EDT", buf, sizeof buf);
    struct tz *tz = tz_parse(buf, len, "x", err, sizeof err);
    CHECK(tz && tz_offset_s(tz, 1772953200) == -4 * 3600 &&
              tz_offset_s(tz, 1772953199) == -5 * 3600,
          "EST5EDT without dates changes on the second Sunday of March (2026-03-08)");
    tz_free(tz);
    len = rule_tzif("", buf, sizeof buf);
    tz = tz_parse(buf, len, "x", err, sizeof err);
    CHECK(tz && tz_offset_s(tz, 1773558000) == 0, "an empty footer: the last (only) type");
    tz_free(tz);
}

/* damaged - every prefix of a real file, and files with bytes flipped,
 * parse or fail without reading out of bounds (ASan watches) */
static void test_damaged(void)
{
    size_t len = 0;
    unsigned char *data = read_file("/usr/share/zoneinfo/America/New_York", &len);
    if (!data)
        return;
    char err[256];
    int ok = 0;
    for (size_t cut = 0; cut < len; cut++) {
        unsigned char *copy = malloc(cut ? cut : 1); /* exact size: ASan sees overreads */
        memcpy(copy, data, cut);
        struct tz *tz = tz_parse(copy, cut, "cut", err, sizeof err);
        ok += tz != NULL;
        tz_free(tz);
        free(copy);
    }
    CHECK_INT(ok, 0, "every proper prefix of New_York's file is refused");
    unsigned int seed = 17;
    int parsed = 0;
    unsigned char *copy = malloc(len);
    for (int round = 0; round < 3000; round++) {
        memcpy(copy, data, len);
        for (int k = 0; k < 3; k++) {
            seed = seed * 1103515245u + 12345u;
            size_t at = (seed >> 8) % len;
            seed = seed * 1103515245u + 12345u;
            copy[at] ^= (unsigned char)(1u << ((seed >> 16) % 8));
        }
        struct tz *tz = tz_parse(copy, len, "flip", err, sizeof err);
        if (tz) {
            parsed++;
            int64_t u;
            for (int64_t t = -4000000000LL; t < 8000000000LL; t += 40000000)
                tz_local_to_utc(tz, t + tz_offset_s(tz, t), &u);
        }
        tz_free(tz);
    }
    free(copy);
    printf("# %d of 3000 damaged files still parsed\n", parsed);
    CHECK(1, "3000 files with flipped bits parse or fail cleanly");
    free(data);
}

static void test_civil(void)
{
    static const struct {
        int64_t y;
        int m, d;
        int64_t day;
    } rows[] = {{1970, 1, 1, 0},         {1969, 12, 31, -1},    {2000, 2, 29, 11016},
                {2026, 3, 29, 20541},    {2026, 10, 25, 20751}, {1, 1, 1, -719162},
                {9999, 12, 31, 2932896}, {2400, 3, 1, 157114}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        int64_t y;
        int m, d;
        tz_civil_from_days(rows[i].day, &y, &m, &d);
        CHECK(tz_days_from_civil(rows[i].y, rows[i].m, rows[i].d) == rows[i].day &&
                  y == rows[i].y && m == rows[i].m && d == rows[i].d,
              "days <-> civil date");
    }
    int bad = 0;
    for (int64_t day = -1000000; day < 3000000; day += 37) {
        int64_t y;
        int m, d;
        tz_civil_from_days(day, &y, &m, &d);
        bad += tz_days_from_civil(y, m, d) != day || d < 1 || d > tz_days_in_month(y, m);
    }
    CHECK_INT(bad, 0, "day numbers round-trip through dates (year -768 to 10183)");
    CHECK(tz_days_in_month(2024, 2) == 29 && tz_days_in_month(2100, 2) == 28 &&
              tz_days_in_month(2000, 2) == 29 && tz_days_in_month(2026, 4) == 30 &&
              tz_days_in_month(2026, 13) == 0,
          "days in month");
}

int main(void)
{
    test_zones();
    test_rules();
    test_rfc_cases();
    test_version1();
    test_names();
    test_bad_rules();
    test_damaged();
    test_civil();
    return test_done();
}
