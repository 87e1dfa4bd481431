/* test_analytics.c - the /analytics counts (health-service/analytics.c and
 * hstore_sqlite_analytics.c). The window: times and dates parsed, buckets
 * aligned, the default and the limits, each bad parameter named; the
 * series zero-filled. The store: copies of several domains, identities,
 * campaigns and variants sent over many hours, delivered again, dead-
 * lettered (new and already tracked), placed by two rounds (one moving
 * copies between inbox and spam, opening and reading some), bounced and
 * complained about (twice); in one and four files. Every query (each
 * filter, hour and day buckets, a window cutting the hours) must equal
 * the same sums over the copies themselves, and what entered each count
 * (the metrics) must add up. A store of schema 10 gets its counts from
 * its copies when migrated. */
#include "analytics.h"
#include "hstore.h"
#include "hstore_sqlite.h"
#include "log.h"
#include "test.h"
#include "timeutil.h"

#include <sqlite3.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define H INT64_C(3600000)
#define NCOPY 600
#define BASE (INT64_C(1795428000000) / H * H) /* an hour's start */

/* ---- the window --------------------------------------------------------- */

static void times(void)
{
    static const struct {
        const char *in;
        int64_t want; /* -1: refused */
    } cases[] = {
        {"2026-12-05", INT64_C(1796428800000)},
        {"2026-12-05T10:00:00Z", INT64_C(1796464800000)},
        {"2026-12-05T10:00:00.5Z", INT64_C(1796464800500)},
        {"2026-12-05T10:00:00.123456Z", INT64_C(1796464800123)},
        {"2026-12-05t10:00:00z", INT64_C(1796464800000)},
        {"2026-12-05T11:00:00+01:00", INT64_C(1796464800000)},
        {"2026-12-05T11:00:00 01:00", INT64_C(1796464800000)}, /* '+' form-decoded */
        {"2026-12-05T08:30:00-01:30", INT64_C(1796464800000)},
        {"2024-02-29", INT64_C(1709164800000)},
        {"1970-01-01T00:00:00Z", 0},
        {"2026-02-29", -1},
        {"2026-13-01", -1},
        {"2026-12-05T24:00:00Z", -1},
        {"2026-12-05T10:00:00", -1}, /* no zone */
        {"2026-12-05T10:00Z", -1},
        {"2026-12-05T10:00:00.Z", -1},
        {"2026-12-05T10:00:00Zx", -1},
        {"1969-12-31T23:59:59Z", -1},
        {"1970-01-01T00:30:00+01:00", -1},
        {"yesterday", -1},
        {"", -1},
        {"2026-1-05", -1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t ms = -1;
        int rc = time_parse_rfc3339(cases[i].in, &ms);
        char name[96];
        snprintf(name, sizeof name, "time '%s'", cases[i].in);
        if (cases[i].want < 0)
            CHECK(rc == -1, name);
        else
            CHECK_INT(rc == 0 ? ms : -2, cases[i].want, name);
    }
}

static void windows(void)
{
    const int64_t now = INT64_C(1796464800000) + 25 * 60000; /* 2026-12-05T10:25Z */
    struct analytics_window w;
    char err[256];
    CHECK(analytics_window(NULL, NULL, NULL, now, &w, err, sizeof err) == 0,
          "no parameter: the default window");
    CHECK_INT(w.bucket_hours, 1, "default: hour buckets");
    CHECK_INT(w.to_ms, now - 25 * 60000 + H, "default: up to the end of the current hour");
    CHECK_INT(w.from_ms, now - 25 * 60000 - 7 * 24 * H, "default: from 7 days before");
    CHECK_INT(w.nbuckets, 7 * 24 + 1, "default: 169 hours");
    CHECK(analytics_window("2026-12-01", "2026-12-05", "day", now, &w, err, sizeof err) == 0 &&
              w.nbuckets == 4 && w.bucket_hours == 24,
          "four days, day buckets");
    CHECK(analytics_window("2026-12-01T10:30:00Z", "2026-12-01T12:00:01Z", NULL, now, &w, err,
                           sizeof err) == 0 &&
              w.nbuckets == 3 && w.from_ms == INT64_C(1796119200000),
          "a window widened to whole hours: 10:00 to 13:00");
    CHECK(analytics_window("2026-10-01", "2026-12-01", NULL, now, &w, err, sizeof err) == 0 &&
              w.bucket_hours == 24 && w.nbuckets == 61,
          "61 days without bucket: day buckets");
    CHECK(analytics_window("2026-11-01", "2026-12-02", "hour", now, &w, err, sizeof err) == 0 &&
              w.nbuckets == 744,
          "31 days of hours: allowed");
    static const struct {
        const char *from, *to, *bucket, *names;
    } bad[] = {
        {"2026-11-01", "2026-12-02T00:00:01Z", "hour", "bucket=hour"},
        {NULL, NULL, "week", "bucket must"},
        {NULL, NULL, "", "bucket must"},
        {"2026-12-05T10:00:00", NULL, NULL, "from must"},
        {NULL, "soon", NULL, "to must"},
        {"2026-12-05", "2026-12-05", NULL, "from must be before to"},
        {"2026-12-06", "2026-12-05", "day", "from must be before to"},
        {"2024-01-01", "2026-01-01", NULL, "from and to"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char name[160];
        err[0] = '\0';
        int rc = analytics_window(bad[i].from, bad[i].to, bad[i].bucket, now, &w, err, sizeof err);
        snprintf(name, sizeof name, "refused, naming the parameter: %s", err);
        CHECK(rc == -1 && strstr(err, bad[i].names) != NULL, name);
    }
    /* zero-filled series */
    CHECK(analytics_window("2026-12-05T00:00:00Z", "2026-12-05T05:00:00Z", "hour", now, &w, err,
                           sizeof err) == 0,
          "five hours");
    int64_t first = w.from_ms / H;
    struct hstore_an_row rows[] = {
        {.hour = first - 1, .n = {9, 9, 9, 9, 9, 9, 9}}, /* outside: ignored */
        {.hour = first + 1, .n = {5, 3, 1, 2, 1, 0, 0}},
        {.hour = first + 4, .n = {2, 0, 1, 0, 0, 1, 1}},
        {.hour = first + 5, .n = {9, 9, 9, 9, 9, 9, 9}},
    };
    int64_t out[5][HAN_N], tot[HAN_N];
    analytics_fill(&w, rows, 4, out, tot);
    CHECK(out[0][HAN_SENT] == 0 && out[1][HAN_SENT] == 5 && out[1][HAN_DELIVERED] == 3 &&
              out[2][HAN_SENT] == 0 && out[3][HAN_SENT] == 0 && out[4][HAN_COMPLAINED] == 1,
          "every bucket present, the empty ones zero");
    CHECK(tot[HAN_SENT] == 7 && tot[HAN_SPAM] == 2 && tot[HAN_BOUNCED] == 1, "totals");
}

/* ---- the store ---------------------------------------------------------- */

static char mids[NCOPY + 10][40];
static const char *const doms[] = {"a.test", "b.test", "c.test"};
static int64_t entered[HAN_N];

static void count_entered(void *arg, const int64_t n[HAN_N])
{
    (void)arg;
    for (int q = 0; q < HAN_N; q++)
        entered[q] += n[q];
}

static struct copy_event copy(int i, bool failed)
{
    int campaign = i % 5 == 0 ? 0 : 1 + i % 2;
    return (struct copy_event){
        .failed = failed,
        .message_id = mids[i],
        .broadcast_id = "<email-1@t.test>",
        .recipient = i % 3 == 0   ? "u@a.test"
                     : i % 3 == 1 ? "u@b.test"
                                  : "u@c.test",
        .domain = doms[i % 3],
        .smtp_client = "custom",
        .smtp_reply = failed ? "550 no" : NULL,
        .identity = i % 4 == 0   ? NULL
                    : i % 4 == 1 ? "news@acme.test"
                                 : "promo@acme.test",
        .campaign = campaign,
        .variant = campaign ? (i % 7 < 4 ? "A" : "B") : NULL,
        .email_id = 1 + i % 3,
        /* 20 minutes apart over 50 steps: 17 hours; new dead letters: now */
        .sent_at_ms = failed && i >= NCOPY ? 0 : BASE + (int64_t)(i % 50) * 1200000,
    };
}

static int apply(struct hstore *s, struct copy_event *ev, size_t n)
{
    size_t nu, nc;
    hstore_key_copies(s, ev, n);
    return hstore_apply_events(s, NULL, 0, ev, n, &nu, &nc);
}

/* check_round - every domain's open copies placed by f */
static void check_round(struct hstore *s, int pass)
{
    for (int d = 0; d < 3; d++) {
        struct hstore_copy *c;
        size_t n;
        if (hstore_open_copies(s, doms[d], 0, 10000, &c, &n) != 0)
            continue;
        for (size_t k = 0; k < n; k++) {
            int j = (int)strtol(c[k].message_id + 3, NULL, 10);
            enum fl_placement p = j % 4 == 0   ? FL_INBOX
                                  : j % 4 == 1 ? FL_SPAM
                                  : j % 4 == 2 ? FL_NOT_FOUND
                                               : FL_UNKNOWN;
            if (pass == 1 && j % 8 == 0)
                p = FL_SPAM; /* moved from the inbox */
            if (pass == 1 && j % 4 == 2 && j % 3 == 0)
                p = FL_INBOX; /* found late */
            c[k].fl.placement = p;
            c[k].fl.opened = p == FL_INBOX && j % 3 == 0;
            c[k].fl.read = c[k].fl.opened && pass == 1 && j % 2 == 0;
        }
        hstore_apply_checks(s, doms[d], c, n, BASE + 30 * H, NULL, true);
        hstore_copies_free(c, n);
    }
}

/* brute - the sums over the copies themselves, as one text line per bucket */
static char *brute(struct hstore *s, const struct hstore_an_query *q)
{
    struct hsqlite *h = hsqlite(s);
    static char out[65536];
    size_t len = 0;
    out[0] = '\0';
    char sql[4096];
    int at = snprintf(sql, sizeof sql,
                      "SELECT b, sum(n), sum(d), sum(sp), sum(o), sum(r),"
                      " sum(bo), sum(co) FROM (");
    for (int k = 0; k < h->nshards; k++)
        at += snprintf(sql + at, sizeof sql - (size_t)at,
                       "%sSELECT sent_at / 3600000 / ?7 AS b, 1 AS n, placement = 2 AS d,"
                       " placement = 3 AS sp, opened AS o, read AS r, bounced AS bo,"
                       " complained AS co FROM %s.copies WHERE sent_at >= ?1 * 3600000"
                       " AND sent_at < ?2 * 3600000 AND (?3 IS NULL OR domain = ?3)"
                       " AND (?4 IS NULL OR coalesce(identity, '') = ?4)"
                       " AND (?5 IS NULL OR coalesce(campaign, 0) = ?5)"
                       " AND (?6 IS NULL OR coalesce(variant, '') = ?6)",
                       k ? " UNION ALL " : "", h->shard[k].schema);
    snprintf(sql + at, sizeof sql - (size_t)at, ") GROUP BY b ORDER BY b");
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(h->r, sql, -1, &st, NULL) != SQLITE_OK)
        return out;
    sqlite3_bind_int64(st, 1, q->from_hour);
    sqlite3_bind_int64(st, 2, q->to_hour);
    if (q->domain)
        sqlite3_bind_text(st, 3, q->domain, -1, SQLITE_STATIC);
    if (q->identity)
        sqlite3_bind_text(st, 4, q->identity, -1, SQLITE_STATIC);
    if (q->campaign)
        sqlite3_bind_int64(st, 5, q->campaign);
    if (q->variant)
        sqlite3_bind_text(st, 6, q->variant, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 7, q->bucket_hours);
    while (sqlite3_step(st) == SQLITE_ROW && len < sizeof out - 200) {
        len +=
            (size_t)snprintf(out + len, sizeof out - len,
                             "%lld:", (long long)(sqlite3_column_int64(st, 0) * q->bucket_hours));
        for (int c = 1; c <= HAN_N; c++)
            len += (size_t)snprintf(out + len, sizeof out - len, " %lld",
                                    (long long)sqlite3_column_int64(st, c));
        len += (size_t)snprintf(out + len, sizeof out - len, "\n");
    }
    sqlite3_finalize(st);
    return out;
}

/* kept - what hstore_analytics answers, in brute's format */
static char *kept(struct hstore *s, const struct hstore_an_query *q)
{
    static char out[65536];
    size_t len = 0, n = 0;
    struct hstore_an_row *r = NULL;
    out[0] = '\0';
    if (hstore_analytics(s, q, &r, &n) != 0)
        return "error";
    for (size_t i = 0; i < n && len < sizeof out - 200; i++) {
        len += (size_t)snprintf(out + len, sizeof out - len, "%lld:", (long long)r[i].hour);
        for (int c = 0; c < HAN_N; c++)
            len += (size_t)snprintf(out + len, sizeof out - len, " %lld", (long long)r[i].n[c]);
        len += (size_t)snprintf(out + len, sizeof out - len, "\n");
    }
    free(r);
    return out;
}

static int64_t brute_total(struct hstore *s, const char *col)
{
    struct hsqlite *h = hsqlite(s);
    int64_t total = 0;
    for (int k = 0; k < h->nshards; k++) {
        char sql[160];
        sqlite3_stmt *st;
        snprintf(sql, sizeof sql, "SELECT sum(%s) FROM %s.copies", col, h->shard[k].schema);
        if (sqlite3_prepare_v2(h->r, sql, -1, &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
            total += sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    return total;
}

/* same - every query of the list answers as the copies say */
static void same(struct hstore *s, const char *what)
{
    static const struct hstore_an_query qs[] = {
        {.bucket_hours = 1},
        {.bucket_hours = 24},
        {.bucket_hours = 1, .domain = "b.test"},
        {.bucket_hours = 1, .identity = "news@acme.test"},
        {.bucket_hours = 1, .identity = ""},
        {.bucket_hours = 1, .campaign = 1},
        {.bucket_hours = 1, .campaign = 2, .variant = "B"},
        {.bucket_hours = 1, .variant = "A", .domain = "c.test"},
        {.bucket_hours = 24, .campaign = 1, .variant = "A", .identity = "promo@acme.test"},
        {.bucket_hours = 1, .domain = "nowhere.test"},
    };
    for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++) {
        struct hstore_an_query q = qs[i];
        /* a window from the copies' third hour to their tenth, then everything */
        for (int win = 0; win < 2; win++) {
            q.from_hour = win ? 0 : BASE / H + 2;
            q.to_hour = win ? INT64_C(1) << 40 : BASE / H + 10;
            char name[200], *want = strdup(brute(s, &q));
            snprintf(name, sizeof name, "%s: query %zu (%s window) as the copies say", what, i,
                     win ? "whole" : "cut");
            CHECK_STR(kept(s, &q), want, name);
            free(want);
        }
    }
}

/* scenario - the events, rounds and reports into a store of `files` files */
static void scenario(const char *dir, int files)
{
    char path[256], err[256], name[160];
    snprintf(path, sizeof path, "%s/a%d.db", dir, files);
    struct hstore *s = hstore_sqlite_open(path, files, err, sizeof err);
    CHECK(s != NULL, s ? "store opened" : err);
    if (!s)
        return;
    memset(entered, 0, sizeof entered);
    hstore_set_counted(s, count_entered, NULL);
    static struct copy_event ev[NCOPY + 40];
    int rc = 0;
    for (int b = 0; b < NCOPY; b += 200) {
        for (int i = 0; i < 200; i++)
            ev[i] = copy(b + i, false);
        rc |= apply(s, ev, 200);
    }
    /* redeliveries, dead letters of tracked copies (10..19, 12 twice) and
     * of new ones (NCOPY..NCOPY+9, sent now) */
    size_t n = 0;
    for (int i = 0; i < 100; i++)
        ev[n++] = copy(i, false);
    for (int i = 10; i < 20; i++)
        ev[n++] = copy(i, true);
    ev[n++] = copy(12, true);
    for (int i = NCOPY; i < NCOPY + 10; i++)
        ev[n++] = copy(i, true);
    rc |= apply(s, ev, n);
    CHECK(rc == 0, "events applied");
    snprintf(name, sizeof name, "%d file(s): sent entered once per copy", files);
    CHECK_INT(entered[HAN_SENT], NCOPY + 10, name);
    same(s, files == 1 ? "1 file, ingested" : "4 files, ingested");
    check_round(s, 0);
    check_round(s, 1);
    same(s, files == 1 ? "1 file, two rounds" : "4 files, two rounds");
    struct hstore_feedback bounce = {.status = "5.1.1"},
                           complaint = {.complained = true, .feedback_type = "abuse"};
    bool changed;
    for (int i = 0; i < NCOPY; i += 7)
        hstore_apply_feedback(s, mids[i], &bounce, &changed);
    for (int i = 0; i < NCOPY; i += 11)
        hstore_apply_feedback(s, mids[i], &complaint, &changed);
    hstore_apply_feedback(s, mids[22], &complaint, &changed); /* again: nothing */
    same(s, files == 1 ? "1 file, reports" : "4 files, reports");
    snprintf(name, sizeof name, "%d file(s): bounced and complained entered once per copy", files);
    CHECK(entered[HAN_BOUNCED] == brute_total(s, "bounced") &&
              entered[HAN_COMPLAINED] == brute_total(s, "complained"),
          name);
    snprintf(name, sizeof name, "%d file(s): opened and read entered once per copy", files);
    CHECK(entered[HAN_OPENED] == brute_total(s, "opened") &&
              entered[HAN_READ] == brute_total(s, "read"),
          name);
    snprintf(name, sizeof name,
             "%d file(s): delivered entered more often than copies stayed (some moved to spam)",
             files);
    CHECK(entered[HAN_DELIVERED] > brute_total(s, "placement = 2") &&
              entered[HAN_SPAM] == brute_total(s, "placement = 3"),
          name);
    /* few rows: one per series and hour, whatever the copies */
    int64_t rows = 0;
    for (int k = 0; k < hsqlite(s)->nshards; k++) {
        char sql[96];
        sqlite3_stmt *st;
        snprintf(sql, sizeof sql, "SELECT count(*) FROM %s.analytics", hsqlite(s)->shard[k].schema);
        if (sqlite3_prepare_v2(hsqlite(s)->r, sql, -1, &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
            rows += sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    printf("# %d file(s): %lld analytics rows for %d copies\n", files, (long long)rows, NCOPY + 10);
    hstore_free(s);

    /* taken back to schema 10: the migration rebuilds the counts from the
     * copies (each without campaign or variant then) */
    int back = 0;
    for (int k = 0; k < files; k++) {
        char f[300];
        sqlite3 *db;
        snprintf(f, sizeof f, k ? "%s.shard%d" : "%s", path, k);
        if (sqlite3_open(f, &db) == SQLITE_OK &&
            sqlite3_exec(db,
                         "DROP TABLE analytics; DROP TABLE analytics_series;"
                         " ALTER TABLE copies DROP COLUMN series;"
                         " ALTER TABLE copies DROP COLUMN variant;"
                         " ALTER TABLE copies DROP COLUMN campaign; PRAGMA user_version = 10;",
                         NULL, NULL, NULL) == SQLITE_OK)
            back++;
        sqlite3_close(db);
    }
    snprintf(name, sizeof name, "%d file(s) taken back to schema 10", files);
    CHECK_INT(back, files, name);
    s = hstore_sqlite_open(path, files, err, sizeof err);
    CHECK(s != NULL, s ? "migrated" : err);
    if (!s)
        return;
    same(s, files == 1 ? "1 file, migrated" : "4 files, migrated");
    /* and kept from there: a copy placed after the migration */
    check_round(s, 0);
    same(s, files == 1 ? "1 file, migrated, a round" : "4 files, migrated, a round");
    hstore_free(s);
}

int main(void)
{
    log_init(LOG_WARN, LOG_TEXT, "test");
    times();
    windows();
    for (int i = 0; i < NCOPY + 10; i++)
        snprintf(mids[i], sizeof mids[i], "<c-%04d.%08x@t.test>", i, (unsigned)i * 2654435761u);
    char dir[] = "/tmp/test_analytics.XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    scenario(dir, 1);
    scenario(dir, 4);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        printf("# could not remove %s\n", dir);
    return test_done();
}
