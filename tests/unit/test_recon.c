/* test_recon.c - an email's reconciliation from a real SQLite health store
 * (health-service/hstore_sqlite_recon.c), with its copies in one file and
 * in four: a copy in every state (inbox, spam, complained after the inbox,
 * bounced by a report, a dead letter, not found within and after the
 * window, found after it), counted exactly once so the states add up to
 * tracked; accepted less the dead letters; the window's edge to the
 * millisecond; copies no loop looks at (unchecked: a state of their own,
 * never pending or missing, bounced first); another email's copies never
 * counted; the 100 oldest
 * missing Message-IDs of 150, in order, across the files; an unknown
 * email; the plan (each file's copies from the batch of the email's first copy, no scan of the
 * copies); a store made before the index gets it. */
#include "hstore.h"
#include "hstore_sqlite.h"
#include "log.h"
#include "test.h"

#include <sqlite3.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define T0 1795428000000 /* the window's start in these tests */
#define N5 16            /* email 5: one copy per case below */
#define N7 150           /* email 7: never checked, all before the window */

static char mid5[N5][48], rcpt5[N5][48], mid6[5][48], mid7[N7][48];

/* email 5's copies: sent_at relative to T0, and what happens to each */
enum fate {
    INBOX,
    SPAM,
    INBOX_COMPLAINED,
    SPAM_COMPLAINED,
    BOUNCED,
    DEAD,
    NOT_FOUND,
    UNKNOWN,   /* never checked */
    UNCHECKED, /* no loop looks at it (FL_UNCHECKED) */
    UNCHECKED_BOUNCED
};
static const struct {
    int64_t sent;
    enum fate fate;
} case5[N5] = {
    {1000, INBOX},              /* 0 */
    {1001, INBOX},              /* 1 */
    {1002, SPAM},               /* 2 */
    {1003, INBOX_COMPLAINED},   /* 3: complained */
    {1004, BOUNCED},            /* 4: a bounce report: bounced, accepted */
    {0, DEAD},                  /* 5: email.failed: bounced, not accepted */
    {-500, SPAM_COMPLAINED},    /* 6: complained */
    {-2000, NOT_FOUND},         /* 7: missing */
    {-3000, UNKNOWN},           /* 8: missing (the oldest) */
    {0, UNKNOWN},               /* 9: sent at the window's start: pending */
    {-1, UNKNOWN},              /* 10: a millisecond before it: missing */
    {2000, NOT_FOUND},          /* 11: pending */
    {-9000, INBOX},             /* 12: found, long ago: inbox */
    {-2500, UNCHECKED},         /* 13: unchecked, not missing */
    {3000, UNCHECKED},          /* 14: unchecked, not pending */
    {-4000, UNCHECKED_BOUNCED}, /* 15: unchecked, then a bounce report: bounced */
};

static struct copy_event copy(const char *mid, const char *rcpt, const char *domain, int64_t email,
                              const char *bid, int64_t sent_at, bool failed)
{
    return (struct copy_event){.failed = failed,
                               .message_id = mid,
                               .broadcast_id = bid,
                               .recipient = rcpt,
                               .domain = domain,
                               .smtp_client = "custom",
                               .smtp_reply = failed ? "550 5.1.1 no such user" : NULL,
                               .email_id = email,
                               .sent_at_ms = failed ? 0 : sent_at};
}

/* fill - emails 5, 6 and 7 into s, email 5's copies taken through a round
 * and the reports their fate says; 0 or -1 */
static int fill(struct hstore *s)
{
    struct copy_event ev[N5 + 5 + N7];
    size_t n = 0, nu, nc;
    for (int i = 0; i < N5; i++)
        ev[n++] = copy(mid5[i], rcpt5[i], "r5.test", 5, "<email-5@w.test>", T0 + case5[i].sent,
                       case5[i].fate == DEAD);
    for (int i = 0; i < 5; i++) /* email 6: same domain, same times, all missing */
        ev[n++] =
            copy(mid6[i], "x@r5.test", "r5.test", 6, "<email-6@w.test>", T0 - 5000 + i, false);
    for (int i = 0; i < N7; i++) /* email 7: arriving in a shuffled order */
        ev[n++] = copy(mid7[(i * 37) % N7], "y@r7.test", "r7.test", 7, "<email-7@w.test>",
                       T0 - 100000 + (int64_t)((i * 37) % N7) * 10, false);
    if (hstore_apply_events(s, NULL, 0, ev, n, &nu, &nc) != 0 || nc != n)
        return -1;
    struct hstore_copy *c;
    size_t m;
    if (hstore_open_copies(s, "r5.test", 0, 100, &c, &m) != 0)
        return -1;
    for (size_t k = 0; k < m; k++)
        for (int i = 0; i < N5; i++)
            if (strcmp(c[k].message_id, mid5[i]) == 0) {
                enum fate f = case5[i].fate;
                c[k].fl.placement = f == INBOX || f == INBOX_COMPLAINED ? FL_INBOX
                                    : f == SPAM || f == SPAM_COMPLAINED ? FL_SPAM
                                    : f == NOT_FOUND                    ? FL_NOT_FOUND
                                                                        : FL_UNKNOWN;
            }
    int rc = hstore_apply_checks(s, "r5.test", c, m, T0 + 5000, NULL, true);
    /* the copies no loop looks at, marked as the scheduler does */
    for (size_t k = 0; k < m; k++) {
        bool unchecked = false;
        for (int i = 0; i < N5; i++)
            if (strcmp(c[k].message_id, mid5[i]) == 0)
                unchecked = case5[i].fate == UNCHECKED || case5[i].fate == UNCHECKED_BOUNCED;
        c[k].fl.placement = unchecked ? FL_UNCHECKED : FL_UNKNOWN;
    }
    if (rc == 0)
        rc = hstore_apply_checks(s, "r5.test", c, m, T0 + 6000, NULL, false);
    hstore_copies_free(c, m);
    const struct hstore_feedback hard = {.status = "5.1.1"},
                                 abuse = {.complained = true, .feedback_type = "abuse"};
    bool changed;
    for (int i = 0; rc == 0 && i < N5; i++) {
        enum fate f = case5[i].fate;
        if (f == INBOX_COMPLAINED || f == SPAM_COMPLAINED)
            rc = hstore_apply_feedback(s, mid5[i], &abuse, &changed);
        else if (f == BOUNCED || f == UNCHECKED_BOUNCED)
            rc = hstore_apply_feedback(s, mid5[i], &hard, &changed);
    }
    return rc;
}

/* line - r's counts as text */
static void line(const struct hstore_recon *r, char *out, size_t n)
{
    snprintf(out, n,
             "accepted %lld tracked %lld inbox %lld spam %lld bounced %lld complained %lld"
             " unchecked %lld pending %lld missing %lld ids %zu",
             (long long)r->accepted, (long long)r->tracked, (long long)r->inbox, (long long)r->spam,
             (long long)r->bounced, (long long)r->complained, (long long)r->unchecked,
             (long long)r->pending, (long long)r->missing, r->nmissing_ids);
}

static bool adds_up(const struct hstore_recon *r)
{
    return r->inbox + r->spam + r->bounced + r->complained + r->unchecked + r->pending +
               r->missing ==
           r->tracked;
}

/* plan_ok - every step of sql's plan that reads copies is a rowid range:
 * no scan of the copies, nothing stored before the batch of the email's
 * first copy */
static bool plan_ok(sqlite3 *db, const char *sql, int files, char *why, size_t n)
{
    char *eqp = sqlite3_mprintf("EXPLAIN QUERY PLAN %s", sql);
    sqlite3_stmt *st = NULL;
    int searches = 0;
    bool ok = sqlite3_prepare_v2(db, eqp, -1, &st, NULL) == SQLITE_OK;
    snprintf(why, n, "%s", ok ? "" : sqlite3_errmsg(db));
    while (ok && sqlite3_step(st) == SQLITE_ROW) {
        const char *d = (const char *)sqlite3_column_text(st, 3);
        if (!d || !strstr(d, "copies"))
            continue;
        if (strncmp(d, "SEARCH ", 7) != 0 || !strstr(d, "USING INTEGER PRIMARY KEY (rowid>?)")) {
            snprintf(why, n, "plan step: %s", d ? d : "");
            ok = false;
        }
        searches++;
    }
    sqlite3_finalize(st);
    sqlite3_free(eqp);
    if (ok && searches != files) {
        snprintf(why, n, "%d index searches for %d files", searches, files);
        ok = false;
    }
    return ok;
}

static void run(const char *dir, int files)
{
    char path[128], err[256] = "", name[512], got[256], why[256];
    snprintf(path, sizeof path, "%s/recon%d.db", dir, files);
    struct hstore *s = hstore_sqlite_open(path, files, err, sizeof err);
    CHECK(s != NULL, s ? "store opened" : err);
    if (!s)
        return;
    snprintf(name, sizeof name, "%d file(s): emails 5, 6, 7 stored, a round and reports applied",
             files);
    CHECK(fill(s) == 0, name);

    struct hstore_recon r;
    snprintf(name, sizeof name, "%d file(s): email 5 reconciled", files);
    CHECK_INT(hstore_reconcile(s, 5, T0, &r), 0, name);
    line(&r, got, sizeof got);
    snprintf(name, sizeof name, "%d file(s): email 5, each copy in one state", files);
    CHECK_STR(got,
              "accepted 15 tracked 16 inbox 3 spam 1 bounced 3 complained 2 unchecked 2 pending 2 "
              "missing 3"
              " ids 3",
              name);
    snprintf(name, sizeof name, "%d file(s): the states add up to tracked", files);
    CHECK(adds_up(&r), name);
    snprintf(name, sizeof name, "%d file(s): the missing copies named, oldest first", files);
    CHECK(r.nmissing_ids == 3 && strcmp(r.missing_ids[0], mid5[8]) == 0 &&
              strcmp(r.missing_ids[1], mid5[7]) == 0 && strcmp(r.missing_ids[2], mid5[10]) == 0,
          name);
    CHECK_INT(r.email_id, 5, "the email's id");
    hstore_recon_cleanup(&r);

    /* the window's edge: a copy sent at its start is pending, one sent a
     * millisecond before is missing */
    CHECK_INT(hstore_reconcile(s, 5, T0 + 1, &r), 0, "window a millisecond later");
    line(&r, got, sizeof got);
    snprintf(name, sizeof name, "%d file(s): a millisecond later the copy sent at T0 is missing",
             files);
    CHECK_STR(got,
              "accepted 15 tracked 16 inbox 3 spam 1 bounced 3 complained 2 unchecked 2 pending 1 "
              "missing 4"
              " ids 4",
              name);
    CHECK(r.nmissing_ids == 4 && strcmp(r.missing_ids[3], mid5[9]) == 0,
          "and named last (the newest)");
    hstore_recon_cleanup(&r);
    CHECK_INT(hstore_reconcile(s, 5, T0 - 10000, &r), 0, "window 10 s earlier");
    line(&r, got, sizeof got);
    snprintf(name, sizeof name, "%d file(s): every copy not found within a long window: pending",
             files);
    CHECK_STR(got,
              "accepted 15 tracked 16 inbox 3 spam 1 bounced 3 complained 2 unchecked 2 pending 5 "
              "missing 0"
              " ids 0",
              name);
    CHECK(r.missing_ids == NULL, "no names when nothing is missing");
    hstore_recon_cleanup(&r);

    /* email 7: 150 missing, the 100 oldest named in order */
    CHECK_INT(hstore_reconcile(s, 7, T0, &r), 0, "email 7 reconciled");
    snprintf(name, sizeof name, "%d file(s): email 7: 150 missing, 100 named", files);
    CHECK(r.tracked == N7 && r.missing == N7 && r.nmissing_ids == HSTORE_RECON_IDS && adds_up(&r),
          name);
    bool order = true;
    for (size_t i = 0; i < r.nmissing_ids; i++)
        order = order && strcmp(r.missing_ids[i], mid7[i]) == 0;
    snprintf(name, sizeof name, "%d file(s): email 7: the 100 oldest, oldest first", files);
    CHECK(order, name);
    hstore_recon_cleanup(&r);

    CHECK_INT(hstore_reconcile(s, 6, T0, &r), 0, "email 6 reconciled");
    CHECK(r.tracked == 5 && r.missing == 5 && r.accepted == 5 && adds_up(&r),
          "email 6: only its own 5 copies");
    hstore_recon_cleanup(&r);
    CHECK_INT(hstore_reconcile(s, 8, T0, &r), 1, "an email without copies: unknown");

    /* /mail_stats agrees where the states do not overlap */
    struct hstore_stats t;
    CHECK_INT(hstore_stats_email(s, 5, NULL, &t), 0, "email 5's stats");
    CHECK(t.n.tracked == 16 && t.n.bounced == 3 && t.n.complained == 2 && t.n.unchecked == 3,
          "tracked, bounced, complained and unchecked as /mail_stats counts them (each copy in"
          " each that holds)");
    hstore_stats_cleanup(&t);

    /* the plan: one rowid range of copies per file, per statement */
    sqlite3 *db = hsqlite(s)->r;
    for (int ids = 0; ids < 2; ids++) {
        char *sql = hsqlite_recon_sql(hsqlite(s), ids);
        bool ok = plan_ok(db, sql, files, why, sizeof why);
        snprintf(name, sizeof name, "%d file(s): the %s read only the email's index range (%s)",
                 files, ids ? "names" : "counts", why);
        CHECK(ok, name);
        free(sql);
    }
    hstore_free(s);

    /* a store made before email_stats.first_sent_at (schema 8): it and
     * what schema 10 added dropped, the version set back, reopened: the
     * migration finds it again from the copies */
    sqlite3 *w;
    int version = 0;
    if (sqlite3_open(path, &w) == SQLITE_OK) {
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(w, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
            version = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
        char sql[1024];
        snprintf(sql, sizeof sql, /* migration 11 undone, then 10 and 9 */
                 "DROP TABLE analytics; DROP TABLE analytics_series;"
                 " ALTER TABLE copies DROP COLUMN series; ALTER TABLE copies DROP COLUMN variant;"
                 " ALTER TABLE copies DROP COLUMN campaign;"
                 " ALTER TABLE email_stats DROP COLUMN first_sent_at;"
                 " ALTER TABLE copies DROP COLUMN rescued;"
                 " ALTER TABLE email_stats DROP COLUMN unchecked;"
                 " ALTER TABLE email_stats DROP COLUMN rescued;"
                 " ALTER TABLE domains DROP COLUMN unchecked;"
                 " ALTER TABLE domains DROP COLUMN rescued; PRAGMA user_version = %d;",
                 version - 3);
        CHECK(sqlite3_exec(w, sql, NULL, NULL, NULL) == SQLITE_OK, "first_sent_at dropped");
        sqlite3_close(w);
    }
    s = hstore_sqlite_open(path, files, err, sizeof err);
    CHECK(s != NULL, s ? "store opened" : err);
    if (s) {
        char *sql = hsqlite_recon_sql(hsqlite(s), false);
        snprintf(name, sizeof name, "%d file(s): migrated again, the same plan", files);
        CHECK(plan_ok(hsqlite(s)->r, sql, files, why, sizeof why), name);
        free(sql);
        CHECK_INT(hstore_reconcile(s, 5, T0, &r), 0, "reconciled after the migration");
        CHECK(r.tracked == 16 && r.missing == 3 && r.unchecked == 2, "same answer");
        hstore_recon_cleanup(&r);
        hstore_free(s);
    }
}

int main(void)
{
    log_init(LOG_WARN, LOG_TEXT, "test");
    for (int i = 0; i < N5; i++) {
        snprintf(mid5[i], sizeof mid5[i], "<email-5.%016x@w.test>", (unsigned)i * 2654435761u);
        snprintf(rcpt5[i], sizeof rcpt5[i], "u%d@r5.test", i);
    }
    for (int i = 0; i < 5; i++)
        snprintf(mid6[i], sizeof mid6[i], "<email-6.%d@w.test>", i);
    for (int i = 0; i < N7; i++) /* mid7[i] is the i-th oldest */
        snprintf(mid7[i], sizeof mid7[i], "<email-7.%03d.%x@w.test>", i, (unsigned)i * 40503u);
    char dir[] = "/tmp/test_recon.XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "temp dir");
    run(dir, 1);
    run(dir, 4);
    char cmd[64];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return test_done();
}
