/* test_fanout.c - the background fan-out of broadcasts (store_fanout.c) on
 * a real SQLite file: /send's snapshot makes no copy and knows its
 * recipients; chunks in id order; the ahead bound; a stop mid-way resumes
 * at the cursor without a second copy; users registered after the
 * snapshot get exactly one copy (backfill); suppressions before and
 * during the fan-out; the recipients counter equals the copies made. */
#include "../../warmup-service/store.c"
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/test_fanout.XXXXXX";

/* count - one integer from sql on the writer, -1 on error */
static long long count(struct store *s, const char *sql)
{
    sqlite3_stmt *st = NULL;
    long long v = -1;
    if (sqlite3_prepare_v2(s->w, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static long long countf(struct store *s, const char *fmt, long long a)
{
    char *q = xasprintf(fmt, a);
    long long v = count(s, q);
    free(q);
    return v;
}

/* add_users - users u{from}..u{to-1}@example.com in one batch */
static void add_users(struct store *s, int from, int to)
{
    int n = to - from;
    struct user_reg *u = xcalloc((size_t)n, sizeof *u);
    int *res = xcalloc((size_t)n, sizeof *res);
    char(*names)[24] = xcalloc((size_t)n, sizeof *names);
    char(*addrs)[40] = xcalloc((size_t)n, sizeof *addrs);
    for (int i = 0; i < n; i++) {
        snprintf(names[i], sizeof names[i], "User %d", from + i);
        snprintf(addrs[i], sizeof addrs[i], "u%d@example.com", from + i);
        u[i] = (struct user_reg){names[i], addrs[i], "example.com", "2026-12-05T00:00:00Z",
                                 "{}",     NULL};
    }
    CHECK_INT(store_register_batch(s, u, (size_t)n, "emailId-events", res), 0, "users registered");
    free(u);
    free(res);
    free(names);
    free(addrs);
}

static int64_t new_email(struct store *s, int64_t *recipients)
{
    struct email_spec spec = {.from = "noreply@d.test",
                              .subject = "Hi",
                              .body = "Hello {{name}}",
                              .smtp_client = "default",
                              .msgid_domain = "d.test"};
    int64_t id = 0;
    char *mid = NULL;
    CHECK_INT(store_create_email(s, &spec, &id, recipients, &mid), 0, "email created");
    free(mid);
    return id;
}

static int suppress(struct store *s, const char *address)
{
    int result;
    int64_t dropped;
    struct suppress_req r = {.address = address,
                             .domain = strchr(address, '@') + 1,
                             .reason = "manual",
                             .at_ms = 1796000000000,
                             .event = "{\"type\":\"user.unsubscribed\"}"};
    return store_suppress(s, &r, "emailId-events", &result, &dropped);
}

/* total - pending + failed + sent + dead + suppressed as GET /emails/{id} shows them */
static long long total(struct store *s, int64_t id, long long *pending)
{
    struct email_info e;
    if (store_get_email(s, id, false, &e) != 0)
        return -1;
    long long t = e.pending + e.failed + e.sent + e.dead + e.suppressed;
    if (pending)
        *pending = e.pending;
    email_info_cleanup(&e);
    return t;
}

/* copies - the email's copies, and how many distinct users they reach */
static void copies(struct store *s, int64_t id, long long *n, long long *users)
{
    *n = countf(s, "SELECT count(*) FROM deliveries WHERE email_id = %lld", id);
    *users = countf(s, "SELECT count(DISTINCT user_id) FROM deliveries WHERE email_id = %lld", id);
}

static struct store *open_db(const char *name)
{
    char path[128], why[256];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    struct store *s = store_open(path, why, sizeof why);
    CHECK(s != NULL, "store opens");
    return s;
}

/* chunks in id order, the pending count covers copies not made yet, the
 * ahead bound, pause */
static void test_chunks(void)
{
    struct store *s = open_db("chunks.db");
    if (!s)
        return;
    add_users(s, 0, 100);
    int64_t r = 0, id = new_email(s, &r), eid, n;
    long long pending = 0, nc, nu;
    CHECK_INT(r, 100, "recipients: every user");
    CHECK_INT(countf(s, "SELECT count(*) FROM deliveries WHERE email_id = %lld", id), 0,
              "/send makes no copy");
    CHECK_INT(total(s, id, &pending), 100, "progress adds up before the fan-out");
    CHECK_INT(pending, 100, "  ... every copy pending");
    CHECK_INT(store_fanout_step(s, 30, 0, &eid, &n), 1, "a chunk");
    CHECK(eid == id && n == 30, "30 copies of the email");
    CHECK_INT(countf(s, "SELECT max(user_id) FROM deliveries WHERE email_id = %lld", id), 30,
              "the first 30 users in id order");
    CHECK_INT(countf(s, "SELECT fan_cursor FROM emails WHERE id = %lld", id), 30,
              "the cursor on the email row");
    CHECK_INT(total(s, id, &pending), 100, "progress adds up mid-way");
    CHECK_INT(pending, 100, "  ... pending counts the copies not made yet");
    CHECK_INT(countf(s, "SELECT n_pending FROM emails WHERE id = %lld", id), 30,
              "  ... the sender sees only the copies made");

    /* ahead bound: 30 pending, bound 40: one more chunk, then none */
    CHECK_INT(store_fanout_step(s, 30, 40, &eid, &n), 1, "below the ahead bound: a chunk");
    CHECK_INT(store_fanout_step(s, 30, 40, &eid, &n), 0, "60 pending ahead of the sender: wait");
    CHECK(eid == 0 && n == 0, "  ... nothing made");
    /* the sender sends 50 of them */
    db_exec(s->w, "UPDATE deliveries SET state = 2 WHERE id IN (SELECT id FROM deliveries"
                  " ORDER BY id LIMIT 50)");
    char *q = xasprintf("UPDATE emails SET n_pending = n_pending - 50, n_sent = 50 WHERE id = %lld",
                        (long long)id);
    db_exec(s->w, q);
    free(q);
    CHECK_INT(store_fanout_step(s, 30, 40, &eid, &n), 1, "the sender drained: a chunk again");

    /* pause waits */
    CHECK_INT(store_set_paused(s, id, true), 0, "paused");
    CHECK_INT(store_fanout_step(s, 30, 0, &eid, &n), 0, "a paused email's fan-out waits");
    CHECK_INT(store_set_paused(s, id, false), 0, "resumed");
    CHECK_INT(store_fanout_drain(s, 30), 0, "drained");
    copies(s, id, &nc, &nu);
    CHECK(nc == 100 && nu == 100, "one copy per user");
    CHECK_INT(
        countf(s, "SELECT fan_cursor = fan_max AND fan_left = 0 FROM emails WHERE id = %lld", id),
        1, "the fan-out is done");
    CHECK_INT(total(s, id, &pending), 100, "progress adds up at the end");
    CHECK_INT(pending, 50, "  ... 50 pending, 50 sent");
    CHECK_INT(store_fanout_step(s, 30, 0, &eid, &n), 0, "nothing left");

    /* a broadcast with no user is done at once */
    int64_t empty = 0;
    add_users(s, 100, 101); /* a later email sees 101 */
    int64_t id2 = new_email(s, &empty);
    CHECK_INT(empty, 101, "a second email counts 101");
    CHECK_INT(store_fanout_drain(s, 1000), 0, "drained in one chunk");
    copies(s, id2, &nc, &nu);
    CHECK(nc == 101 && nu == 101, "one copy per user");
    store_free(s);
}

/* a stop mid-way (the store closed between chunks, as a kill would lose
 * an uncommitted chunk) resumes at the cursor: no copy twice, none lost;
 * users registered after the snapshot get exactly one copy (backfill) */
static void test_resume_and_backfill(void)
{
    struct store *s = open_db("resume.db");
    if (!s)
        return;
    add_users(s, 0, 250);
    int64_t r = 0, id = new_email(s, &r), eid, n;
    long long nc, nu;
    CHECK_INT(store_fanout_step(s, 40, 0, &eid, &n), 1, "chunk 1");
    CHECK_INT(store_fanout_step(s, 40, 0, &eid, &n), 1, "chunk 2");
    /* a chunk that fails midway commits nothing: its copies and cursor go together */
    CHECK_INT(db_begin(s->w), 0, "a transaction");
    char *ins = xasprintf("INSERT INTO deliveries(email_id, user_id, recipient, name)"
                          " SELECT %lld, id, email_id, name FROM users WHERE id > 80 AND id <= 120",
                          (long long)id);
    CHECK_INT(db_exec(s->w, ins), 0, "a chunk's copies ...");
    free(ins);
    db_rollback(s->w);      /* ... lost with the process */
    add_users(s, 250, 260); /* after the snapshot */
    store_free(s);
    s = open_db("resume.db");
    if (!s)
        return;
    CHECK_INT(countf(s, "SELECT fan_cursor FROM emails WHERE id = %lld", id), 80,
              "the cursor survived the restart");
    add_users(s, 260, 270);
    CHECK_INT(store_fanout_drain(s, 40), 0, "resumed and drained");
    copies(s, id, &nc, &nu);
    CHECK_INT(nc, 270, "every user one copy, the 20 late ones included");
    CHECK_INT(nu, 270, "  ... no user twice");
    CHECK_INT(
        countf(s, "SELECT count(*) FROM deliveries WHERE email_id = %lld AND user_id > 250", id),
        20, "the late users' copies came by backfill, once each");
    CHECK_INT(total(s, id, NULL), 270, "progress: the recipients and the 20 backfilled");
    store_free(s);
}

/* suppressions before the snapshot (not counted), during the fan-out
 * (counted in suppressed, no copy), removed during it (a copy again);
 * the recipients counter equals the copies made */
static void test_suppress(void)
{
    struct store *s = open_db("supp.db");
    if (!s)
        return;
    CHECK_INT(suppress(s, "u3@example.com"), 0, "suppressed before registering");
    add_users(s, 0, 100);
    CHECK_INT(suppress(s, "u7@example.com"), 0, "suppressed after registering");
    CHECK_INT(suppress(s, "nobody@example.com"), 0, "an address no user has");
    CHECK_INT(store_fanout_eligible(s), 98, "eligible: 100 users, 2 suppressed");
    CHECK_INT(store_unsuppress(s, "nobody@example.com"), 0, "unsuppressed, no user");
    CHECK_INT(store_fanout_eligible(s), 98, "  ... the count did not move");
    CHECK_INT(store_unsuppress(s, "u7@example.com"), 0, "unsuppressed");
    CHECK_INT(store_fanout_eligible(s), 99, "  ... one more eligible");
    CHECK_INT(suppress(s, "U7@Example.com"), 0, "suppressed again, another case");
    CHECK_INT(store_fanout_eligible(s), 98, "  ... one less");
    CHECK_INT(store_fanout_eligible(s),
              count(s, "SELECT count(*) FROM users WHERE NOT EXISTS"
                       " (SELECT 1 FROM suppressions WHERE address = users.email_id)"),
              "the counter equals a count of the table");

    /* exact: the recipients are the copies finally made */
    int64_t r = 0, id = new_email(s, &r), eid, n;
    long long nc, nu, pending;
    CHECK_INT(r, 98, "recipients: the 98 not suppressed");
    CHECK_INT(store_fanout_drain(s, 16), 0, "drained");
    copies(s, id, &nc, &nu);
    CHECK_INT(nc, r, "the copies made equal the recipients");
    CHECK_INT(countf(s,
                     "SELECT count(*) FROM deliveries WHERE email_id = %lld AND recipient IN"
                     " ('u3@example.com', 'u7@example.com')",
                     id),
              0, "none for the suppressed");
    CHECK_INT(total(s, id, NULL), r, "progress adds up to the recipients");

    /* during the fan-out: users 1..40 done; u10 (copy made) and u60
     * (not reached) suppressed; u3 (suppressed at /send, not reached)
     * unsuppressed */
    int64_t id2 = new_email(s, &r);
    CHECK_INT(r, 98, "a second email: 98 recipients");
    CHECK_INT(store_fanout_step(s, 40, 0, &eid, &n), 1, "one chunk");
    CHECK(eid == id2 && n == 38, "users 1..40 but the suppressed u3 and u7: 38 copies");
    CHECK_INT(suppress(s, "u10@example.com"), 0, "u10 suppressed: its queued copy dropped");
    CHECK_INT(suppress(s, "u60@example.com"), 0, "u60 suppressed before its chunk");
    CHECK_INT(total(s, id2, &pending), 98, "progress still adds up to the recipients");
    CHECK_INT(pending, 96, "  ... 96 pending, 2 suppressed");
    CHECK_INT(store_fanout_eligible(s), 96, "eligible: 96");
    CHECK_INT(store_fanout_drain(s, 40), 0, "drained");
    CHECK_INT(countf(s, "SELECT count(*) FROM deliveries WHERE email_id = %lld AND state = 0", id2),
              96, "96 copies pending");
    CHECK_INT(countf(s,
                     "SELECT count(*) FROM deliveries WHERE email_id = %lld AND recipient ="
                     " 'u60@example.com'",
                     id2),
              0, "no copy for u60");
    CHECK_INT(total(s, id2, &pending), 98, "sent + failed + pending + dead + suppressed = 98");
    CHECK_INT(countf(s, "SELECT n_suppressed FROM emails WHERE id = %lld", id2), 2,
              "suppressed: u10 and u60");

    /* removed during the fan-out: the copy is made and pending says so */
    int64_t id3 = new_email(s, &r);
    CHECK_INT(r, 96, "a third email: 96 recipients");
    CHECK_INT(store_unsuppress(s, "u60@example.com"), 0, "u60 unsuppressed before its chunk");
    CHECK_INT(total(s, id3, &pending), 97, "pending counts its copy");
    CHECK_INT(store_fanout_drain(s, 40), 0, "drained");
    copies(s, id3, &nc, &nu);
    CHECK(nc == 97 && nu == 97, "97 copies, u60's included");
    CHECK_INT(countf(s, "SELECT fan_left FROM emails WHERE id = %lld", id3), 0, "none left");
    store_free(s);
}

/* a version-8 database with users and suppressions: the migration counts
 * the eligible users */
static void test_migration(void)
{
    char path[128];
    snprintf(path, sizeof path, "%s/v8.db", tmpdir);
    sqlite3 *db = NULL;
    CHECK_INT(sqlite3_open(path, &db), SQLITE_OK, "a raw database");
    char err[256];
    CHECK_INT(db_migrate(db, migrations, 8, err, sizeof err), 0, "migrated to version 8");
    CHECK_INT(db_exec(db, "INSERT INTO users(name, email_id, domain, created_at) VALUES"
                          " ('A', 'a@x.test', 'x.test', ''), ('B', 'b@x.test', 'x.test', ''),"
                          " ('C', 'c@x.test', 'x.test', '');"
                          "INSERT INTO suppressions(address, reason, at_ms) VALUES"
                          " ('B@X.test', 'manual', 0), ('z@x.test', 'manual', 0)"),
              0, "users and suppressions");
    sqlite3_close(db);
    struct store *s = open_db("v8.db");
    if (!s)
        return;
    CHECK_INT(store_fanout_eligible(s), 2, "the migration counted 2 eligible users");
    store_free(s);
}

int main(void)
{
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    log_init(LOG_ERROR, LOG_TEXT, "test_fanout");
    test_chunks();
    test_resume_and_backfill();
    test_suppress();
    test_migration();
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        perror("rm");
    return test_done();
}
