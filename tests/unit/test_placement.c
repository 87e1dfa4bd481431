/* test_placement.c - placement by identity and provider
 * (health-service/placement_calc.c) and the store reads under it
 * (hstore_sqlite_placement.c, migration 8): grouping rows by provider, the
 * changes since the last summaries published, percentiles and the
 * cumulative histogram; over a real store in one, two and four files the
 * counts per (identity, domain) with each copy in one state, found_at set
 * by the first round that finds a copy and never moved, and a store of
 * schema 7 in two files migrated (every file: the new columns and index,
 * copies placed before have an unknown found_at). */
#include "hstore.h"
#include "hstore_sqlite.h"
#include "log.h"
#include "placement_calc.h"
#include "providers.h"
#include "test.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define T0 1795428000000 /* sent_at of the first copy (ms) */

static const char *const THROTTLES =
    "[{\"provider\":\"gmail\",\"domains\":[\"gmail.test\",\".gm.test\"]}]";

/* pairs_text - "identity/provider:checked,inbox,spam,bounced,complained[ gone][ quiet]" */
static void pairs_text(const struct placement_pair *v, size_t n, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n && len < cap; i++) {
        int w = snprintf(out + len, cap - len, "%s%s/%s:%lld,%lld,%lld,%lld,%lld%s%s", i ? " " : "",
                         v[i].identity ? v[i].identity : "-", v[i].provider,
                         (long long)v[i].n.checked, (long long)v[i].n.inbox, (long long)v[i].n.spam,
                         (long long)v[i].n.bounced, (long long)v[i].n.complained,
                         v[i].gone ? " gone" : "", v[i].quiet ? " quiet" : "");
        if (w > 0)
            len += (size_t)w;
    }
}

static struct hstore_placement_row row(const char *identity, const char *domain, int64_t inbox,
                                       int64_t spam, int64_t bounced, int64_t complained)
{
    return (struct hstore_placement_row){
        .identity = (char *)identity,
        .domain = (char *)domain,
        .copies = inbox + spam + bounced + complained + 1,
        .checked = inbox + spam + bounced + complained,
        .inbox = inbox,
        .spam = spam,
        .bounced = bounced,
        .complained = complained,
    };
}

static void pure(void)
{
    char err[256], got[1024];
    struct providers *p = providers_parse(THROTTLES, err, sizeof err);
    CHECK(p != NULL, err);
    struct hstore_placement_row rows[] = {
        row(NULL, "gmail.test", 7, 0, 0, 0),       row("a@x.test", "gmail.test", 3, 1, 0, 0),
        row("a@x.test", "mx.gm.test", 1, 1, 1, 1), row("a@x.test", "other.test", 0, 2, 0, 0),
        row("b@x.test", "gmail.test", 0, 0, 0, 0),
    };
    size_t nr = sizeof rows / sizeof rows[0];
    struct placement_pair *g, *ch, *last = NULL;
    size_t ng, nch, nlast = 0;
    placement_group(rows, nr, p, true, &g, &ng);
    pairs_text(g, ng, got, sizeof got);
    CHECK_STR(got,
              "a@x.test/gmail:8,4,2,1,1 a@x.test/other.test:2,0,2,0,0 b@x.test/gmail:0,0,0,0,0",
              "by identity: a group's domains summed, a domain in no group its own provider, "
              "copies without an identity left out");
    placement_pairs_free(g, ng);
    placement_group(rows, nr, p, false, &g, &ng);
    pairs_text(g, ng, got, sizeof got);
    CHECK_STR(got, "-/gmail:15,11,2,1,1 -/other.test:2,0,2,0,0",
              "by provider: every copy, with an identity or not");
    placement_pairs_free(g, ng);

    placement_group(rows, nr, p, true, &g, &ng);
    placement_diff(last, nlast, g, ng, &ch, &nch);
    CHECK_INT(nch, 3, "after start-up every pair with copies is a change (a pair of zeros too)");
    for (size_t i = 0; i < nch; i++)
        placement_commit(&last, &nlast, &ch[i]);
    placement_pairs_free(ch, nch);
    placement_diff(last, nlast, g, ng, &ch, &nch);
    CHECK_INT(nch, 0, "the same counts again: nothing to publish");
    placement_pairs_free(ch, nch);
    placement_pairs_free(g, ng);

    rows[1].inbox++; /* a@x gmail: one more in the inbox */
    rows[1].checked++;
    rows[3].copies = 9;        /* a@x other.test: more copies, none checked: the same summary */
    rows[4].domain = "y.test"; /* b@x: gmail gone (its pair was all zeros), y.test new */
    placement_group(rows, nr, p, true, &g, &ng);
    placement_diff(last, nlast, g, ng, &ch, &nch);
    pairs_text(ch, nch, got, sizeof got);
    CHECK_STR(
        got,
        "a@x.test/gmail:9,5,2,1,1 b@x.test/gmail:0,0,0,0,0 gone quiet b@x.test/y.test:0,0,0,0,0",
        "changes: the changed pair, a gone pair of zeros (quiet), a new pair; "
        "copies not yet checked change nothing");
    for (size_t i = 0; i < nch; i++)
        placement_commit(&last, &nlast, &ch[i]);
    placement_pairs_free(ch, nch);
    pairs_text(last, nlast, got, sizeof got);
    CHECK_STR(got,
              "a@x.test/gmail:9,5,2,1,1 a@x.test/other.test:2,0,2,0,0 b@x.test/y.test:0,0,0,0,0",
              "committed: the gone pair forgotten");
    placement_pairs_free(g, ng);
    /* a@x other.test leaves the window: one summary of zeros, then forgotten */
    placement_group(rows, 3, p, true, &g, &ng);
    placement_diff(last, nlast, g, ng, &ch, &nch);
    pairs_text(ch, nch, got, sizeof got);
    CHECK_STR(got, "a@x.test/other.test:0,0,0,0,0 gone b@x.test/y.test:0,0,0,0,0 gone quiet",
              "pairs that left the window: zeros published once when they had counts");
    placement_pairs_free(ch, nch);
    placement_pairs_free(g, ng);
    placement_pairs_free(last, nlast);

    /* time to inbox: gmail 50 copies at 5 s, 40 at 20 s, 10 at 100 s (two domains) */
    struct hstore_delay_row d[] = {
        {.domain = "gmail.test", .delay_s = 5, .count = 30},
        {.domain = "gmail.test", .delay_s = 100, .count = 10},
        {.domain = "mx.gm.test", .delay_s = 5, .count = 20},
        {.domain = "mx.gm.test", .delay_s = 20, .count = 40},
    };
    struct provider_report *r;
    size_t n;
    placement_report(rows, nr, d, 4, p, &r, &n);
    CHECK_INT(n, 3, "three providers: gmail, other.test, y.test");
    CHECK_STR(n ? r[0].provider : NULL, "gmail", "sorted by name");
    if (n == 3) {
        CHECK(r[0].found == 100 && r[0].p50 == 5 && r[0].p90 == 20 && r[0].p99 == 100,
              "gmail: 100 found, nearest-rank p50 5 s, p90 20 s, p99 100 s");
        const int64_t want[PLACEMENT_NBUCKETS + 1] = {50,  90,  90,  100, 100, 100,
                                                      100, 100, 100, 100, 100, 100};
        CHECK(memcmp(r[0].cumulative, want, sizeof want) == 0,
              "gmail: cumulative histogram 10:50 30:90 60:90 120:100 ... +Inf:100");
        CHECK(r[0].n.checked == 16 && r[0].n.inbox == 12, "gmail: the counts of every identity");
        CHECK(r[1].found == 0 && r[1].cumulative[PLACEMENT_NBUCKETS] == 0,
              "other.test: nothing found in the inbox, an empty histogram");
    }
    provider_reports_free(r, n);
    struct hstore_delay_row one = {.domain = "other.test", .delay_s = 10, .count = 1};
    placement_report(rows, nr, &one, 1, p, &r, &n);
    CHECK(n == 3 && r[1].found == 1 && r[1].p50 == 10 && r[1].p99 == 10 && r[1].cumulative[0] == 1,
          "one copy found at 10 s: every percentile 10, in the le=10 bucket");
    provider_reports_free(r, n);
    providers_free(p);
}

/* ---- the store ------------------------------------------------------------ */

enum { NC = 24 };
static char mids[NC][48], rcpts[NC][48];

/* copy i: identity a@x.test (i % 3 == 0: b@x.test; i == 23: none), to
 * gmail.test (even) or mx.gm.test (odd), sent at T0 + i s */
static struct copy_event copy(size_t i)
{
    snprintf(mids[i], sizeof mids[i], "<email-5.%016zx@x.test>", i * 2654435761u + 7);
    snprintf(rcpts[i], sizeof rcpts[i], "u%zu@%s", i, i % 2 ? "mx.gm.test" : "gmail.test");
    return (struct copy_event){.message_id = mids[i],
                               .broadcast_id = "<email-5@x.test>",
                               .recipient = rcpts[i],
                               .domain = i % 2 ? "mx.gm.test" : "gmail.test",
                               .smtp_client = "custom",
                               .identity = i == 23      ? NULL
                                           : i % 3 == 0 ? "b@x.test"
                                                        : "a@x.test",
                               .email_id = 5,
                               .sent_at_ms = T0 + (int64_t)i * 1000};
}

/* round - a check round of domain at now: copy i gets place(i) */
static int round_at(struct hstore *s, const char *domain, int64_t now,
                    enum fl_placement (*place)(size_t i))
{
    struct hstore_copy *c;
    size_t n;
    if (hstore_open_copies(s, domain, 0, 100, &c, &n) != 0)
        return -1;
    for (size_t k = 0; k < n; k++) {
        size_t i = 0;
        while (i < NC && strcmp(mids[i], c[k].message_id) != 0)
            i++;
        c[k].fl.placement = place(i);
    }
    int rc = hstore_apply_checks(s, domain, c, n, now, NULL, true);
    hstore_copies_free(c, n);
    return rc;
}

/* first: copies 0-11 in the inbox (but 4: spam), the others not found */
static enum fl_placement first(size_t i)
{
    return i == 4 ? FL_SPAM : i < 12 ? FL_INBOX : FL_NOT_FOUND;
}

/* second: also 12-15 found, 12 in spam; 2 moved to spam */
static enum fl_placement second(size_t i)
{
    return i == 4 || i == 12 || i == 2 ? FL_SPAM : i < 16 ? FL_INBOX : FL_NOT_FOUND;
}

static char *rows_text(struct hstore *s, int64_t since)
{
    struct hstore_placement_row *r;
    size_t n;
    static char out[1024];
    size_t len = 0;
    out[0] = '\0';
    if (hstore_placement_counts(s, since, &r, &n) != 0)
        return "error";
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(
            out + len, sizeof out - len, "%s%s/%s:%lld,%lld,%lld,%lld,%lld,%lld", i ? " " : "",
            r[i].identity ? r[i].identity : "-", r[i].domain, (long long)r[i].copies,
            (long long)r[i].checked, (long long)r[i].inbox, (long long)r[i].spam,
            (long long)r[i].bounced, (long long)r[i].complained);
    hstore_placement_rows_free(r, n);
    return out;
}

static char *delays_text(struct hstore *s, int64_t since)
{
    struct hstore_delay_row *r;
    size_t n;
    static char out[1024];
    size_t len = 0;
    out[0] = '\0';
    if (hstore_inbox_delays(s, since, &r, &n) != 0)
        return "error";
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(out + len, sizeof out - len, "%s%s:%lldx%lld", i ? " " : "",
                                r[i].domain, (long long)r[i].delay_s, (long long)r[i].count);
    hstore_delay_rows_free(r, n);
    return out;
}

static void remove_store(const char *path)
{
    char f[160];
    for (int k = 0; k < 8; k++)
        for (int j = 0; j < 3; j++) {
            static const char *const suffix[] = {"", "-wal", "-shm"};
            if (k)
                snprintf(f, sizeof f, "%s.shard%d%s", path, k, suffix[j]);
            else
                snprintf(f, sizeof f, "%s%s", path, suffix[j]);
            unlink(f);
        }
}

static void store(const char *dir, int files)
{
    char path[128], err[256] = "", name[160];
    snprintf(path, sizeof path, "%s/p%d.db", dir, files);
    struct hstore *s = hstore_sqlite_open(path, files, err, sizeof err);
    CHECK(s != NULL, err);
    if (!s)
        return;
    struct copy_event ev[NC];
    for (size_t i = 0; i < NC; i++)
        ev[i] = copy(i);
    size_t nu, nc;
    CHECK(hstore_apply_events(s, NULL, 0, ev, NC, &nu, &nc) == 0 && nc == NC, "24 copies stored");
    /* rounds 10 s and 20 s after T0 + 30 s; one bounce, one complaint */
    int64_t t1 = T0 + 40000, t2 = T0 + 60000;
    CHECK(round_at(s, "gmail.test", t1, first) == 0 && round_at(s, "mx.gm.test", t1, first) == 0,
          "first round");
    CHECK(round_at(s, "gmail.test", t2, second) == 0 && round_at(s, "mx.gm.test", t2, second) == 0,
          "second round");
    bool changed;
    struct hstore_feedback bounce = {.status = "5.1.1"},
                           complaint = {.complained = true, .feedback_type = "abuse"};
    CHECK(hstore_apply_feedback(s, mids[6], &bounce, &changed) == 0 && changed, "copy 6 bounced");
    CHECK(hstore_apply_feedback(s, mids[8], &complaint, &changed) == 0 && changed,
          "copy 8 complained");
    /* a: 1 2 4 5 7 8 10 11 13 14 16 17 19 20 22; b: 0 3 6 9 12 15 18 21; none: 23 */
    snprintf(name, sizeof name,
             "%d file(s): counts per identity and domain, each copy in one state", files);
    CHECK_STR(rows_text(s, 0),
              "-/mx.gm.test:1,0,0,0,0,0 a@x.test/gmail.test:8,5,2,2,0,1 "
              "a@x.test/mx.gm.test:7,5,5,0,0,0 b@x.test/gmail.test:4,3,1,1,1,0 "
              "b@x.test/mx.gm.test:4,3,3,0,0,0",
              name);
    snprintf(name, sizeof name, "%d file(s): only the copies sent since the time", files);
    CHECK_STR(rows_text(s, T0 + 20000),
              "-/mx.gm.test:1,0,0,0,0,0 a@x.test/gmail.test:2,0,0,0,0,0 "
              "b@x.test/mx.gm.test:1,0,0,0,0,0",
              name);
    /* inbox now: 0 1 3 5 6(bounced) 7 8(complained) 9 10 11 13 14 15; found at t1 but 13-15
     * (t2); delay = found - (T0 + i s), rounded up */
    snprintf(name, sizeof name,
             "%d file(s): time to inbox from the first round that found each copy", files);
    CHECK_STR(delays_text(s, 0),
              "gmail.test:30x1 gmail.test:32x1 gmail.test:34x1 gmail.test:40x1 gmail.test:46x1 "
              "mx.gm.test:29x1 mx.gm.test:31x1 mx.gm.test:33x1 mx.gm.test:35x1 mx.gm.test:37x1 "
              "mx.gm.test:39x1 mx.gm.test:45x1 mx.gm.test:47x1",
              name);
    hstore_free(s);
    remove_store(path);
}

/* migration - a store of schema 7 in two files (made by taking a new one
 * back): migrated, each file has identity, found_at and copy_batches; the
 * copies found before count with no identity and no known time */
static void migration(const char *dir)
{
    char path[128], err[256] = "";
    snprintf(path, sizeof path, "%s/m.db", dir);
    struct hstore *s = hstore_sqlite_open(path, 2, err, sizeof err);
    CHECK(s != NULL, err);
    if (!s)
        return;
    struct copy_event ev[NC];
    for (size_t i = 0; i < NC; i++)
        ev[i] = copy(i);
    size_t nu, nc;
    CHECK(hstore_apply_events(s, NULL, 0, ev, NC, &nu, &nc) == 0 && nc == NC, "24 copies stored");
    CHECK(round_at(s, "gmail.test", T0 + 40000, first) == 0, "a round");
    hstore_free(s);
    int back = 0;
    for (int k = 0; k < 2; k++) {
        char f[160];
        snprintf(f, sizeof f, k ? "%s.shard1" : "%s", path);
        sqlite3 *db;
        if (sqlite3_open(f, &db) == SQLITE_OK &&
            sqlite3_exec(
                db, /* migration 11 undone, then 10, 9 and 8 */
                "DROP TABLE analytics; DROP TABLE analytics_series;"
                "ALTER TABLE copies DROP COLUMN series;"
                " ALTER TABLE copies DROP COLUMN variant; ALTER TABLE copies DROP COLUMN campaign;"
                " DROP TABLE copy_batches; ALTER TABLE copies DROP COLUMN identity;"
                " ALTER TABLE copies DROP COLUMN found_at;"
                " ALTER TABLE email_stats DROP COLUMN first_sent_at;"
                " ALTER TABLE copies DROP COLUMN rescued;"
                " ALTER TABLE email_stats DROP COLUMN unchecked;"
                " ALTER TABLE email_stats DROP COLUMN rescued;"
                " ALTER TABLE domains DROP COLUMN unchecked;"
                " ALTER TABLE domains DROP COLUMN rescued;"
                " PRAGMA user_version = 7;",
                NULL, NULL, NULL) == SQLITE_OK)
            back++;
        sqlite3_close(db);
    }
    CHECK_INT(back, 2, "both files taken back to schema 7");
    s = hstore_sqlite_open(path, 2, err, sizeof err);
    CHECK(s != NULL, err);
    if (!s)
        return;
    CHECK_STR(rows_text(s, 0), "-/gmail.test:12,6,5,1,0,0 -/mx.gm.test:12,0,0,0,0,0",
              "migrated: every copy kept, without an identity, its placement kept");
    CHECK_STR(delays_text(s, 0), "", "copies found before the migration: no time to inbox");
    ev[0] = copy(0);
    CHECK(hstore_apply_events(s, NULL, 0, ev, 1, &nu, &nc) == 0 && nc == 0,
          "a redelivered copy is found again");
    hstore_free(s);
    int ok = 0;
    for (int k = 0; k < 2; k++) {
        char f[160];
        snprintf(f, sizeof f, k ? "%s.shard1" : "%s", path);
        sqlite3 *db;
        sqlite3_stmt *st;
        if (sqlite3_open(f, &db) == SQLITE_OK &&
            sqlite3_prepare_v2(db,
                               "SELECT (SELECT user_version FROM pragma_user_version),"
                               " (SELECT count(*) FROM copy_batches WHERE first_rowid <= (SELECT"
                               " min(rowid) FROM copies) AND last_rowid >= (SELECT max(rowid) FROM"
                               " copies)),"
                               " (SELECT count(*) FROM copies WHERE found_at = 0)",
                               -1, &st, NULL) == SQLITE_OK) {
            if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) >= 8 &&
                sqlite3_column_int(st, 1) == 1)
                ok += 1 + 100 * sqlite3_column_int(st, 2);
            sqlite3_finalize(st);
        }
        sqlite3_close(db);
    }
    CHECK_INT(
        ok, 2 + 100 * 6,
        "both files migrated, one copy_batches row over their copies; the 6 found copies have "
        "found_at 0 (time unknown)");
    remove_store(path);
}

int main(void)
{
    log_init(LOG_WARN, LOG_TEXT, "test");
    char dir[] = "/tmp/test_placement.XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    pure();
    store(dir, 1);
    store(dir, 2);
    store(dir, 4);
    migration(dir);
    rmdir(dir);
    return test_done();
}
