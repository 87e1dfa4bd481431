/* test_store.c - the warmup store's send queue on a real SQLite file: the
 * claim index (schema 3) holds only claimable copies, the claim uses it,
 * outcomes move copies out of it, a version 2 database is migrated with
 * its copies in every state; the listings page and return plain rows. */
#include "../../warmup-service/store.c"
#include "test.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NUSERS 50

static char tmpdir[] = "/tmp/test_store.XXXXXX";

/* count - one integer from sql on db, -1 on error */
static long long count(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    long long v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* plan - the EXPLAIN QUERY PLAN lines of sql, joined with '|' */
static void plan(sqlite3 *db, const char *sql, char *out, size_t len)
{
    char *q = xasprintf("EXPLAIN QUERY PLAN %s", sql);
    sqlite3_stmt *st = NULL;
    out[0] = '\0';
    if (sqlite3_prepare_v2(db, q, -1, &st, NULL) == SQLITE_OK)
        while (sqlite3_step(st) == SQLITE_ROW) {
            size_t n = strlen(out);
            snprintf(out + n, len - n, "%s|", (const char *)sqlite3_column_text(st, 3));
        }
    sqlite3_finalize(st);
    free(q);
}

static void add_users(struct store *s)
{
    struct user_reg u[NUSERS];
    int res[NUSERS];
    char names[NUSERS][16], addrs[NUSERS][32];
    for (int i = 0; i < NUSERS; i++) {
        snprintf(names[i], sizeof names[i], "User %d", i);
        snprintf(addrs[i], sizeof addrs[i], "u%d@example.com", i);
        u[i] = (struct user_reg){names[i], addrs[i], "example.com", "2026-12-03T00:00:00Z",
                                 "{}",     NULL};
    }
    CHECK_INT(store_register_batch(s, u, NUSERS, "emailId-events", res), 0, "users registered");
}

static int64_t new_email(struct store *s)
{
    struct email_spec spec = {.from = "noreply@d.test",
                              .subject = "Hi",
                              .body = "Hello {{name}}",
                              .smtp_client = "default",
                              .msgid_domain = "d.test"};
    int64_t id = 0, n = 0;
    char *mid = NULL;
    CHECK_INT(store_create_email(s, &spec, &id, &n, &mid), 0, "email created");
    CHECK_INT(n, NUSERS, "one copy per user");
    CHECK_INT(store_fanout_drain(s, 7), 0, "its copies made by the fan-out");
    free(mid);
    return id;
}

static void claims_free(struct claim *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(c[i].recipient);
        free(c[i].name);
    }
}

/* in_index - copies the claim index holds (read through it) */
static long long in_index(struct store *s)
{
    return count(s->w, "SELECT count(*) FROM deliveries INDEXED BY deliveries_claim"
                       " WHERE state IN (0, 3)");
}

static void test_claim_index(void)
{
    char path[128], why[256], p[1024];
    snprintf(path, sizeof path, "%s/w.db", tmpdir);
    struct store *s = store_open(path, why, sizeof why);
    CHECK(s != NULL, "store opens");
    if (!s)
        return;
    add_users(s);
    int64_t id = new_email(s);

    plan(s->w, sqldb_sql(s->claim), p, sizeof p);
    CHECK(strstr(p, "USING COVERING INDEX deliveries_claim") != NULL &&
              !strstr(p, "SCAN deliveries"),
          "the claim reads the partial claim index, never the whole table");
    if (!strstr(p, "deliveries_claim"))
        fprintf(stderr, "# plan: %s\n", p);
    CHECK_INT(in_index(s), NUSERS, "every pending copy is in the claim index");

    struct claim c[NUSERS];
    size_t n = 0;
    int64_t now = 1796000000000;
    CHECK_INT(store_claim(s, id, 20, now, 60000, NULL, c, &n), 0, "claim");
    CHECK_INT(n, 20, "20 copies claimed");
    CHECK_INT(in_index(s), NUSERS - 20, "claimed copies leave the index");
    CHECK_INT(count(s->w, "SELECT count(*) FROM deliveries WHERE state = 1"), 20, "and are leased");

    /* 10 sent, 5 to retry (due now), 4 dead, 1 released */
    struct outcome r[20];
    memset(r, 0, sizeof r);
    for (int i = 0; i < 20; i++) {
        r[i].copy_id = c[i].id;
        r[i].email_id = id;
        r[i].kind = i < 10   ? OUTCOME_SENT
                    : i < 15 ? OUTCOME_RETRY
                    : i < 19 ? OUTCOME_DEAD
                             : OUTCOME_RELEASE;
        r[i].code = i < 10 ? 250 : i < 15 ? 451 : 550;
        r[i].due_at = now;
    }
    claims_free(c, n);
    CHECK_INT(count(s->w, "PRAGMA synchronous"), 2,
              "after a claim (NORMAL) the writer is back at FULL for the API's commits");
    CHECK_INT(store_apply_results(s, r, 20, "email-events", now), 0, "outcomes applied");
    CHECK_INT(count(s->w, "PRAGMA synchronous"), 2, "and after the outcomes too");
    CHECK_INT(in_index(s), NUSERS - 20 + 5 + 1,
              "retries and the released copy are claimable again");
    CHECK_INT(count(s->w, "SELECT count(*) FROM deliveries WHERE state = 2"), 10, "10 sent");

    /* pending first, then the due retries; sent and dead copies never */
    CHECK_INT(store_claim(s, id, NUSERS, now + 1, 60000, NULL, c, &n), 0, "second claim");
    CHECK_INT(n, NUSERS - 20 + 1 + 5, "every pending copy and every due retry");
    int retries = 0;
    for (size_t i = 0; i < n; i++)
        retries += c[i].attempts == 1;
    CHECK_INT(retries, 5, "the five retries come with their attempt");
    claims_free(c, n);
    CHECK_INT(in_index(s), 0, "nothing claimable is left in the index");

    /* leased copies (state 1) are found without the index */
    int64_t released = 0;
    CHECK_INT(store_release_leases(s, &released), 0, "release leases");
    CHECK_INT(released, NUSERS - 20 + 1 + 5, "every leased copy released");
    CHECK_INT(in_index(s), NUSERS - 20 + 1 + 5, "released copies are claimable again");
    int64_t requeued = 0;
    CHECK_INT(store_reconcile(s, id, now, &requeued), 0, "reconcile");
    CHECK_INT(requeued, 4, "the dead letters are requeued");
    CHECK_INT(in_index(s), NUSERS - 10, "everything not sent is claimable");
    store_free(s);
}

/* test_lists - the listings return plain rows, page with limit and
 * offset, and dead letters come newest first */
static void test_lists(void)
{
    char path[128], why[256];
    snprintf(path, sizeof path, "%s/l.db", tmpdir);
    struct store *s = store_open(path, why, sizeof why);
    CHECK(s != NULL, "store opens");
    if (!s)
        return;
    add_users(s);
    struct user_row *u;
    size_t n;
    CHECK_INT(store_list_users(s, 3, 10, &u, &n), 0, "list users");
    CHECK_INT(n, 3, "a page of three");
    CHECK_STR(n == 3 ? u[0].address : NULL, "u10@example.com", "from the offset, in order");
    CHECK_STR(n == 3 ? u[2].name : NULL, "User 12", "names come with them");
    store_users_free(u, n);
    CHECK_INT(store_list_users(s, 10, NUSERS, &u, &n), 0, "list past the end");
    CHECK_INT(n, 0, "nothing");
    store_users_free(u, n);

    int64_t id = new_email(s), other = new_email(s);
    struct email_info *e;
    CHECK_INT(store_list_emails(s, 10, 1, &e, &n), 0, "list emails");
    CHECK_INT(n == 1 ? e[0].id : -1, other, "the second email");
    store_emails_free(e, n);

    /* five dead letters of the first email, one of the other, at t0+i */
    struct claim c[NUSERS];
    struct outcome r[6];
    int64_t t0 = 1796000000000;
    memset(r, 0, sizeof r);
    CHECK_INT(store_claim(s, id, 5, t0, 60000, NULL, c, &n), 0, "claim five");
    for (size_t i = 0; i < n && i < 5; i++)
        r[i] = (struct outcome){.copy_id = c[i].id, .email_id = id, .kind = OUTCOME_DEAD};
    claims_free(c, n);
    CHECK_INT(store_claim(s, other, 1, t0, 60000, NULL, c, &n), 0, "claim one");
    r[5] = (struct outcome){
        .copy_id = n ? c[0].id : 0, .email_id = other, .kind = OUTCOME_DEAD, .code = 550};
    snprintf(r[5].enhanced, sizeof r[5].enhanced, "5.1.1");
    snprintf(r[5].text, sizeof r[5].text, "550 5.1.1 no such user");
    claims_free(c, n);
    for (int i = 0; i < 6; i++)
        CHECK_INT(store_apply_results(s, &r[i], 1, "email-events", t0 + i), 0, "dead-lettered");

    struct dead_letter *d;
    CHECK_INT(store_dlq(s, 0, 100, 0, &d, &n), 0, "dlq of every email");
    CHECK_INT(n, 6, "six dead letters");
    CHECK(n == 6 && d[0].email_id == other && d[0].at_ms == t0 + 5 && d[0].smtp_code == 550,
          "newest first, with its time and code");
    CHECK_STR(n == 6 ? d[0].smtp_reply : NULL, "550 5.1.1 no such user", "the reply");
    CHECK_STR(n == 6 ? d[0].smtp_enhanced : NULL, "5.1.1", "the enhanced code");
    store_dead_letters_free(d, n);
    CHECK_INT(store_dlq(s, id, 2, 1, &d, &n), 0, "dlq of one email, limit 2 offset 1");
    CHECK(n == 2 && d[0].copy_id == r[3].copy_id && d[1].copy_id == r[2].copy_id,
          "the offset skips the newest");
    store_dead_letters_free(d, n);
    CHECK_INT(store_dlq(s, id, 10, 5, &d, &n), 0, "dlq past the end");
    CHECK_INT(n, 0, "nothing");
    store_dead_letters_free(d, n);
    store_free(s);
}

/* test_migration - a version 2 database (claim index over every copy)
 * with copies in each state: version 3 keeps every row, and the claim
 * takes exactly the pending and due retry copies */
static void test_migration(void)
{
    char path[128], why[256];
    snprintf(path, sizeof path, "%s/v2.db", tmpdir);
    sqlite3 *db = NULL;
    CHECK_INT(sqlite3_open(path, &db), SQLITE_OK, "v2 database created");
    char *err = NULL;
    int rc = sqlite3_exec(db, migrations[0], NULL, NULL, &err);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, migrations[1], NULL, NULL, &err);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(
            db,
            "PRAGMA user_version = 2;"
            "INSERT INTO emails (id, message_id, from_addr, subject, body, smtp_client, salt,"
            " msgid_domain, created_at, n_pending, n_sent, n_failed, n_dead)"
            " VALUES (7, '<email-7@d.test>', 'a@d.test', 's', 'b', 'default', 'x', 'd.test',"
            " '2026-12-03T00:00:00Z', 2, 1, 2, 1);"
            "INSERT INTO deliveries (email_id, user_id, recipient, name, state, attempts, due_at)"
            " VALUES (7, 1, 'p1@e.test', 'p1', 0, 0, 0), (7, 2, 'p2@e.test', 'p2', 0, 0, 0),"
            " (7, 3, 'l@e.test', 'l', 1, 1, 0), (7, 4, 's@e.test', 's', 2, 1, 0),"
            " (7, 5, 'r@e.test', 'r', 3, 1, 5), (7, 6, 'late@e.test', 'late', 3, 1, "
            "99999999999999),"
            " (7, 7, 'd@e.test', 'd', 4, 3, 0);",
            NULL, NULL, &err);
    CHECK_INT(rc, SQLITE_OK, "version 2 schema and rows");
    if (err)
        fprintf(stderr, "# %s\n", err);
    sqlite3_free(err);
    sqlite3_close(db);

    struct store *s = store_open(path, why, sizeof why);
    CHECK(s != NULL, "a version 2 database opens (migrated)");
    if (!s) {
        fprintf(stderr, "# %s\n", why);
        return;
    }
    CHECK_INT(count(s->w, "PRAGMA user_version"), sizeof migrations / sizeof migrations[0],
              "the latest schema version (lanes, then identities)");
    CHECK_INT(count(s->w, "SELECT count(*) FROM users WHERE lane = 0 OR lane IS NULL"), 0,
              "every old user has its domain's lane");
    CHECK_INT(count(s->w, "SELECT count(*) FROM deliveries d JOIN users u ON u.id = d.user_id"
                          " WHERE d.state IN (0, 1, 3) AND d.lane != u.lane"),
              0, "every queued old copy has its user's lane");
    CHECK_INT(count(s->w, "SELECT n_suppressed FROM emails WHERE id = 7"), 0,
              "an old email has suppressed 0");
    CHECK_INT(count(s->w, "SELECT count(*) FROM deliveries"), 7, "every copy kept");
    CHECK_INT(count(s->w, "SELECT count(*) FROM sqlite_master WHERE name = 'deliveries_claim'"
                          " AND sql LIKE '%WHERE state IN (0, 3)'"),
              1, "the claim index is partial");
    CHECK_INT(in_index(s), 4, "it holds the pending and retry copies");
    int64_t released = 0;
    CHECK_INT(store_release_leases(s, &released), 0, "release");
    CHECK_INT(released, 1, "the leased copy of the old run is released");
    struct claim c[8];
    size_t n = 0;
    CHECK_INT(store_claim(s, 7, 8, 1000, 60000, NULL, c, &n), 0, "claim on the migrated queue");
    CHECK_INT(n, 4, "two pending, the released one and the due retry; not sent, dead or not due");
    int late = 0;
    for (size_t i = 0; i < n; i++)
        late +=
            strcmp(c[i].recipient, "late@e.test") == 0 || strcmp(c[i].recipient, "s@e.test") == 0;
    CHECK_INT(late, 0, "neither the sent copy nor the retry that is not due");
    claims_free(c, n);
    store_free(s);
}

/* email_counts - "pending failed sent dead suppressed" of an email */
static void email_counts(struct store *s, int64_t id, char *out, size_t len)
{
    struct email_info e;
    out[0] = '\0';
    if (store_get_email(s, id, false, &e) != 0)
        return;
    snprintf(out, len, "%lld %lld %lld %lld %lld", (long long)e.pending, (long long)e.failed,
             (long long)e.sent, (long long)e.dead, (long long)e.suppressed);
    email_info_cleanup(&e);
}

static int suppress(struct store *s, const char *address, int *result, int64_t *dropped)
{
    struct suppress_req r = {.address = address,
                             .domain = strchr(address, '@') + 1,
                             .reason = "manual",
                             .at_ms = 1796000000000,
                             .event = "{\"type\":\"user.unsubscribed\"}"};
    return store_suppress(s, &r, "emailId-events", result, dropped);
}

/* the suppression list: queued copies dropped when an address is
 * suppressed, at claim and by the worker's late check; fan-out and
 * backfill skip it; the counters add up */
static void test_suppress(void)
{
    char path[128], why[256], p[1024], cnt[96];
    snprintf(path, sizeof path, "%s/s.db", tmpdir);
    struct store *s = store_open(path, why, sizeof why);
    CHECK(s != NULL, "store opens");
    if (!s)
        return;
    add_users(s);
    int64_t a = new_email(s);
    struct claim c[NUSERS];
    size_t n = 0;
    int64_t now = 1796000000000;
    CHECK_INT(store_claim(s, a, 5, now, 60000, NULL, c, &n), 0,
              "claim 5 (no suppression: plain claim)");
    uint64_t epoch = c[0].epoch;
    int result;
    int64_t dropped;
    long long outbox0 = count(s->w, "SELECT count(*) FROM outbox");

    CHECK_INT(suppress(s, "u10@example.com", &result, &dropped), 0, "suppress a queued address");
    CHECK(result == STORE_INSERTED && dropped == 1, "stored, its pending copy dropped");
    email_counts(s, a, cnt, sizeof cnt);
    CHECK_STR(cnt, "49 0 0 0 1", "pending - 1, suppressed + 1");
    CHECK_INT(count(s->w, "SELECT count(*) FROM deliveries WHERE state = 5 AND"
                          " recipient = 'u10@example.com' AND updated_at = 1796000000000"),
              1, "the copy's status is suppressed, changed at the suppression's time (/history)");
    CHECK_INT(count(s->w, "SELECT count(*) FROM outbox WHERE topic = 'emailId-events' AND"
                          " key = 'example.com'") -
                  outbox0,
              1, "its event is in the outbox (same transaction), key = the domain");
    CHECK_INT(suppress(s, "U10@Example.com", &result, &dropped), 0, "again, another case");
    CHECK(result == STORE_DUPLICATE && dropped == 0, "a duplicate: nothing done");
    CHECK_INT(count(s->w, "SELECT count(*) FROM outbox") - outbox0, 1, "and no second event");

    /* u1 is leased: left to the worker's check */
    CHECK_INT(store_suppressed_since(s, epoch, "u1@example.com"), 0,
              "before: u1 not suppressed since the claim");
    CHECK_INT(suppress(s, "u1@example.com", &result, &dropped), 0, "suppress a leased address");
    CHECK(result == STORE_INSERTED && dropped == 0, "a leased copy is not touched in the store");
    CHECK_INT(store_suppressed_since(s, epoch, "U1@example.com"), 1,
              "the worker sees u1 suppressed after its claim");
    CHECK_INT(store_suppressed_since(s, epoch, "u2@example.com"), 0, "not u2");
    uint64_t now_epoch;
    now_epoch = atomic_load(&s->supp_epoch);
    CHECK_INT(store_suppressed_since(s, now_epoch, "u1@example.com"), 0,
              "an unchanged epoch checks nothing");
    struct outcome r[5];
    memset(r, 0, sizeof r);
    int u1 = -1;
    for (size_t i = 0; i < n; i++) {
        r[i].copy_id = c[i].id;
        r[i].email_id = a;
        bool is_u1 = strcmp(c[i].recipient, "u1@example.com") == 0;
        r[i].kind = is_u1 ? OUTCOME_SUPPRESSED : OUTCOME_RELEASE;
        if (is_u1)
            u1 = (int)i;
    }
    CHECK(u1 >= 0, "u1 was among the claimed");
    claims_free(c, n);
    CHECK_INT(store_apply_results(s, r, n, "email-events", now), 0, "outcomes applied");
    email_counts(s, a, cnt, sizeof cnt);
    CHECK_STR(cnt, "48 0 0 0 2", "the worker's drop counted");

    /* a copy back in the queue (as /reconcile does) is dropped at claim */
    CHECK(db_exec(s->w, "UPDATE deliveries SET state = 0 WHERE recipient = 'u10@example.com';"
                        "UPDATE emails SET n_pending = n_pending + 1,"
                        " n_suppressed = n_suppressed - 1") == 0,
          "u10's copy requeued by hand");
    plan(s->w, sqldb_sql(s->claim_chk), p, sizeof p);
    CHECK(strstr(p, "deliveries_claim") != NULL && !strstr(p, "SCAN deliveries") &&
              !strstr(p, "SCAN suppressions"),
          "the checked claim uses the claim index and the suppressions key");
    if (!strstr(p, "deliveries_claim"))
        fprintf(stderr, "# plan: %s\n", p);
    CHECK_INT(store_claim(s, a, NUSERS, now + 1, 60000, NULL, c, &n), 0, "checked claim");
    bool leaked = false;
    for (size_t i = 0; i < n; i++)
        leaked |= strcmp(c[i].recipient, "u10@example.com") == 0 ||
                  strcmp(c[i].recipient, "u1@example.com") == 0;
    CHECK(n == NUSERS - 2 && !leaked, "every copy but the suppressed two");
    CHECK_INT(count(s->w, "SELECT updated_at FROM deliveries WHERE recipient = 'u10@example.com'"),
              now + 1, "a copy dropped at claim is changed then (/history, the archiver)");
    claims_free(c, n);
    email_counts(s, a, cnt, sizeof cnt);
    CHECK_STR(cnt, "48 0 0 0 2", "the requeued copy dropped again, counted once");

    plan(s->w, STORE_DROP_QUEUED_SQL, p, sizeof p);
    CHECK((strstr(p, "deliveries_claim") || strstr(p, "deliveries_recipient")) &&
              !strstr(p, "SCAN deliveries"),
          "suppressing reads an index (the active emails' claim index or the address's copies"
          " since migration 10), not the whole table");
    if (!strstr(p, "deliveries_claim") && !strstr(p, "deliveries_recipient"))
        fprintf(stderr, "# plan: %s\n", p);

    /* fan-out and backfill skip suppressed addresses */
    struct email_spec spec = {.from = "noreply@d.test",
                              .subject = "Hi",
                              .body = "b",
                              .smtp_client = "default",
                              .msgid_domain = "d.test"};
    int64_t b = 0, rcpts = 0;
    char *mid = NULL;
    CHECK_INT(store_create_email(s, &spec, &b, &rcpts, &mid), 0, "a second email");
    CHECK_INT(store_fanout_drain(s, 7), 0, "its copies made by the fan-out");
    free(mid);
    CHECK_INT(rcpts, NUSERS - 2, "its fan-out skips the two suppressed addresses");
    CHECK_INT(suppress(s, "late@x.test", &result, &dropped), 0, "suppress before registering");
    struct user_reg u = {"Late", "late@x.test", "x.test", "2026-12-03T00:00:00Z", "{}", NULL};
    CHECK_INT(store_register_batch(s, &u, 1, "emailId-events", &result), 0, "late registers");
    CHECK_INT(count(s->w, "SELECT count(*) FROM deliveries WHERE recipient = 'late@x.test'"), 0,
              "no backfill for a suppressed address");
    email_counts(s, b, cnt, sizeof cnt);
    CHECK_STR(cnt, "48 0 0 0 0", "the counters did not move");

    /* listing, reading, removal */
    struct suppression *v = NULL;
    CHECK_INT(store_list_suppressions(s, 10, 0, &v, &n), 0, "list");
    CHECK(n == 3 && strcmp(v[0].address, "u10@example.com") == 0 &&
              strcmp(v[2].address, "late@x.test") == 0 && strcmp(v[1].reason, "manual") == 0 &&
              v[1].at_ms == now,
          "in order, with reason and time");
    store_suppressions_free(v, n);
    CHECK_INT(store_list_suppressions(s, 1, 1, &v, &n), 0, "a page");
    CHECK(n == 1 && strcmp(v[0].address, "u1@example.com") == 0, "limit 1 offset 1");
    store_suppressions_free(v, n);
    struct suppression x;
    CHECK_INT(store_get_suppression(s, "LATE@x.test", &x), 0, "found without case");
    suppression_cleanup(&x);
    CHECK_INT(store_unsuppress(s, "Late@X.test"), 0, "removed");
    CHECK_INT(store_unsuppress(s, "late@x.test"), 1, "not suppressed any more");
    CHECK_INT(store_get_suppression(s, "late@x.test", &x), 1, "gone");
    store_free(s);
    s = store_open(path, why, sizeof why);
    CHECK(s && s->n_supp == 2, "reopened: the count of suppressions is read back");
    store_free(s);
}

/* a batch of suppressions (the feedback-events consumer's): one
 * transaction, an address twice stored once, an old entry untouched, the
 * queued copies of each dropped and one event per new entry */
static void test_suppress_batch(void)
{
    char path[128], why[256], cnt[96];
    snprintf(path, sizeof path, "%s/b.db", tmpdir);
    struct store *s = store_open(path, why, sizeof why);
    CHECK(s != NULL, "store opens");
    if (!s)
        return;
    add_users(s);
    int64_t a = new_email(s);
    int result[4];
    int64_t dropped[4];
    CHECK_INT(suppress(s, "u3@example.com", result, dropped), 0, "u3 suppressed before");
    long long outbox0 = count(s->w, "SELECT count(*) FROM outbox");
    uint64_t epoch0 = atomic_load(&s->supp_epoch);
    static const char *const who[4] = {"u4@example.com", "U3@example.com", "u5@example.com",
                                       "U4@Example.com"};
    static const char *const why_[4] = {"hard_bounce", "complaint", "complaint", "complaint"};
    struct suppress_req r[4];
    for (int i = 0; i < 4; i++)
        r[i] = (struct suppress_req){.address = who[i],
                                     .domain = "example.com",
                                     .reason = why_[i],
                                     .at_ms = 1796000000000,
                                     .email_ref = a,
                                     .event = "{\"type\":\"user.unsubscribed\"}"};
    CHECK_INT(store_suppress_batch(s, r, 4, "emailId-events", result, dropped), 0,
              "a batch of four");
    CHECK(result[0] == STORE_INSERTED && result[1] == STORE_DUPLICATE &&
              result[2] == STORE_INSERTED && result[3] == STORE_DUPLICATE,
          "new, already suppressed, new, twice in the batch");
    CHECK(dropped[0] == 1 && dropped[1] == 0 && dropped[2] == 1 && dropped[3] == 0,
          "the queued copy of each new entry dropped");
    CHECK_INT(count(s->w, "SELECT count(*) FROM outbox") - outbox0, 2, "one event per new entry");
    CHECK_INT(count(s->w, "SELECT count(*) FROM suppressions WHERE address = 'u4@example.com'"
                          " AND reason = 'hard_bounce'"),
              1, "the first reason kept for an address twice in the batch");
    CHECK_INT(count(s->w, "SELECT count(*) FROM suppressions WHERE address = 'u3@example.com'"
                          " AND reason = 'manual'"),
              1, "an old entry untouched");
    char cnt_want[32];
    email_counts(s, a, cnt, sizeof cnt);
    snprintf(cnt_want, sizeof cnt_want, "%d 0 0 0 3", NUSERS - 3);
    CHECK_STR(cnt, cnt_want, "three copies suppressed in all");
    CHECK(s->n_supp == 3 && atomic_load(&s->supp_epoch) != epoch0, "the count and the epoch moved");
    /* a failing batch writes nothing: the second request has no event (NOT NULL) */
    r[0].address = "u6@example.com";
    r[1].address = "u7@example.com";
    r[1].event = NULL;
    CHECK_INT(store_suppress_batch(s, r, 2, "emailId-events", result, dropped), -1,
              "a batch that fails midway");
    CHECK(result[0] == STORE_DUPLICATE && dropped[0] == 0, "  ... reports nothing stored");
    CHECK_INT(count(s->w, "SELECT count(*) FROM suppressions WHERE address IN"
                          " ('u6@example.com', 'u7@example.com')"),
              0, "  ... and stored nothing (rolled back)");
    CHECK(s->n_supp == 3, "  ... the count did not move");
    store_free(s);
}

int main(void)
{
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    log_init(LOG_ERROR, LOG_TEXT, "test_store");
    test_claim_index();
    test_lists();
    test_migration();
    test_suppress();
    test_suppress_batch();
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "# could not remove %s\n", tmpdir);
    return test_done();
}
