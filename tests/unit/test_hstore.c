/* test_hstore.c - copy ingest of the health store (health-service/hstore*.c):
 * the same events applied one per transaction and in large batches (where
 * runs of email.sent copies go through the multi-row INSERT) must leave the
 * same copies and counters, redeliveries and bounces included; also with a
 * Message-ID hash that collides all the time, with the copies in one, two
 * or four files, and after migrating a store of schema 4 (copies keyed by
 * the Message-ID text). Also a feedback-loop round over copies in two
 * files: oldest first across them, results counted once. And a process
 * killed (SIGKILL) between the commits of a batch's files, again and
 * again: each batch delivered again, as Kafka would, the store ends as an
 * uninterrupted run leaves it. And copies no loop looks at (unchecked) or
 * rescued from spam by an engagement, on a store migrated from schema 9:
 * each counted once, an unchecked copy never handed to a round again, a
 * rescued copy's placement kept in spam, and a round that is not the
 * domain loop's leaving the domain's round time and error alone. */
#include "hstore.h"
#include "hstore_sqlite.h"
#include "log.h"
#include "test.h"

#include "db.h"

#include <sqlite3.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define NEV 900
#define NIDS 400

static char mids[NIDS][48], rcpts[NIDS][48], doms[NIDS][24], bids[8][40];

/* event i of the sequence: 400 email.sent copies with repeats (also
 * back to back), then a mix with email.failed for known and new copies */
static struct copy_event event(size_t i)
{
    static unsigned seed = 12345;
    size_t id;
    bool failed = false;
    if (i < 150)
        id = i;
    else if (i < 160)
        id = 150 + (i - 150) / 2; /* the same copy twice in a row */
    else if (i < 400)
        id = (i * 7) % 230; /* some seen before, some new */
    else {
        seed = seed * 1103515245 + 12345;
        id = (seed >> 8) % NIDS;
        failed = (seed >> 20) % 4 == 0;
    }
    int64_t email = (int64_t)(id % 7) + 1;
    return (struct copy_event){
        .failed = failed,
        .message_id = mids[id],
        .broadcast_id = bids[email],
        .recipient = rcpts[id],
        .domain = doms[id],
        .smtp_client = "custom",
        .smtp_reply = failed ? "550 no" : NULL,
        .email_id = email,
        .sent_at_ms = failed ? 0 : 1795428000000 + (int64_t)id,
    };
}

/* apply - the sequence in batches of `batch`; the sum of *new_copies */
static size_t apply(struct hstore *s, const struct copy_event *ev, size_t batch, bool keyed)
{
    static struct copy_event b[NEV];
    size_t added = 0;
    for (size_t i = 0; i < NEV; i += batch) {
        size_t n = NEV - i < batch ? NEV - i : batch, nu, nc;
        memcpy(b, &ev[i], n * sizeof *b);
        if (keyed) /* as the pipelined ingest does before applying */
            hstore_key_copies(s, b, n);
        if (hstore_apply_events(s, NULL, 0, b, n, &nu, &nc) != 0)
            return (size_t)-1;
        added += nc;
    }
    return added;
}

/* stats_line - t as one line of text (out of cap at out + *len) */
static void stats_line(char *out, size_t cap, size_t *len, const struct hstore_stats *t)
{
    const struct hplacement *p = &t->n;
    int w = snprintf(
        out + *len, cap - *len, "{%lld %s %lld %lld %lld %lld %lld %lld %d %lld %s %s}",
        (long long)t->email_id, t->message_id, (long long)p->tracked, (long long)p->delivered,
        (long long)p->spam, (long long)p->opened, (long long)p->read, (long long)p->bounced,
        t->checked, (long long)(t->checked ? t->checked_at : 0), t->recipient ? t->recipient : "-",
        t->domain ? t->domain : "-");
    if (w > 0 && (size_t)w < cap - *len)
        *len += (size_t)w;
}

/* domains_text - every domain's figures but first_seen and last_seen
 * (which differ between runs); caller frees */
static char *domains_text(struct hstore *s, size_t *count)
{
    struct hstore_domain *d = NULL;
    size_t n = 0, cap = 1 << 20, len = 0;
    char *out = calloc(1, cap);
    *count = 0;
    if (!out || hstore_domains(s, &d, &n) != 0)
        return out;
    for (size_t i = 0; i < n; i++) {
        const struct hplacement *p = &d[i].n;
        int w = snprintf(
            out + len, cap - len, "%s %lld %lld %lld %d %lld %s %lld %lld %lld %lld %lld\n",
            d[i].domain, (long long)d[i].users, (long long)p->tracked, (long long)d[i].checked,
            d[i].has_round, (long long)d[i].last_round_at, d[i].last_error ? d[i].last_error : "-",
            (long long)p->delivered, (long long)p->spam, (long long)p->opened, (long long)p->read,
            (long long)p->bounced);
        if (w > 0 && (size_t)w < cap - len)
            len += (size_t)w;
    }
    *count = n;
    hstore_domains_free(d, n);
    return out;
}

/* summary - every copy's and email's stats and every domain's counters */
static char *summary(struct hstore *s)
{
    size_t cap = 1 << 20, len = 0;
    char *out = calloc(1, cap);
    for (size_t id = 0; id < NIDS && out; id++) {
        struct hstore_stats t;
        int r = hstore_stats_copy(s, mids[id], &t);
        len += (size_t)snprintf(out + len, cap - len, "%s %d ", mids[id], r);
        if (r == 0) {
            stats_line(out, cap, &len, &t);
            hstore_stats_cleanup(&t);
        }
        len += (size_t)snprintf(out + len, cap - len, "\n");
    }
    for (int64_t e = 1; e <= 7; e++) {
        struct hstore_stats t;
        int r = hstore_stats_email(s, e, NULL, &t);
        len += (size_t)snprintf(out + len, cap - len, "email %lld %d ", (long long)e, r);
        if (r == 0) {
            stats_line(out, cap, &len, &t);
            hstore_stats_cleanup(&t);
        }
        r = hstore_stats_email(s, 0, bids[e], &t); /* by its broadcast Message-ID */
        len += (size_t)snprintf(out + len, cap - len, "\nbroadcast %s %d ", bids[e], r);
        if (r == 0) {
            stats_line(out, cap, &len, &t);
            hstore_stats_cleanup(&t);
        }
        len += (size_t)snprintf(out + len, cap - len, "\n");
    }
    for (int d = 0; d < 5; d++) {
        struct hplacement p = {0};
        char dom[24];
        snprintf(dom, sizeof dom, "d%d.test", d);
        int r = hstore_domain_placement(s, dom, &p);
        len += (size_t)snprintf(out + len, cap - len, "%s %d %lld %lld\n", dom, r,
                                (long long)p.tracked, (long long)p.bounced);
    }
    return out;
}

/* weak_hash - three values for 400 Message-IDs: most copies collide (all
 * in one file) */
static int64_t weak_hash(const char *message_id)
{
    return (int64_t)(strlen(message_id) % 3);
}

/* weak_spread - three values in different files of a 2- or 4-file store */
static int64_t weak_spread(const char *message_id)
{
    return (int64_t)((uint64_t)(strlen(message_id) % 3) << 62);
}

static void remove_db(const char *path)
{
    static const char *const suffix[] = {"", "-wal", "-shm"};
    for (int j = 0; j < 3; j++) {
        char f[128];
        if ((size_t)snprintf(f, sizeof f, "%s%s", path, suffix[j]) < sizeof f)
            unlink(f);
    }
}

/* v4_store - a store file of schema 4 holding copies 0..n-1 of the
 * sequence (email.sent, tracked) with their email counters */
static int v4_store(const char *path, size_t n)
{
    sqlite3 *db;
    if (sqlite3_open(path, &db) != SQLITE_OK)
        return -1;
    int rc = sqlite3_exec(
        db,
        "CREATE TABLE users (email_id TEXT PRIMARY KEY, domain TEXT NOT NULL, name TEXT NOT NULL,"
        " registered_at TEXT NOT NULL);"
        "CREATE TABLE domains (domain TEXT PRIMARY KEY, users INTEGER NOT NULL DEFAULT 0,"
        " first_seen TEXT NOT NULL, last_seen TEXT NOT NULL);" HSTORE_COPIES_SCHEMA_SQL
            HSTORE_DOMAIN_PLACEMENT_SQL "DROP INDEX copies_email; PRAGMA user_version=4;",
        NULL, NULL, NULL);
    sqlite3_stmt *ins = NULL, *st = NULL;
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(db,
                                "INSERT INTO copies(message_id, email_id, broadcast_id, recipient,"
                                " domain, smtp_client, sent_at) VALUES(?,?,?,?,?,'custom',?)",
                                -1, &ins, NULL);
    if (rc == SQLITE_OK)
        rc =
            sqlite3_prepare_v2(db,
                               "INSERT INTO email_stats(email_id, broadcast_id, tracked)"
                               " VALUES(?1, ?2, 1) ON CONFLICT DO UPDATE SET tracked = tracked + 1",
                               -1, &st, NULL);
    for (size_t id = 0; rc == SQLITE_OK && id < n; id++) {
        int64_t email = (int64_t)(id % 7) + 1;
        sqlite3_bind_text(ins, 1, mids[id], -1, SQLITE_STATIC);
        sqlite3_bind_int64(ins, 2, email);
        sqlite3_bind_text(ins, 3, bids[email], -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 4, rcpts[id], -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 5, doms[id], -1, SQLITE_STATIC);
        sqlite3_bind_int64(ins, 6, 1795428000000 + (int64_t)id);
        sqlite3_bind_int64(st, 1, email);
        sqlite3_bind_text(st, 2, bids[email], -1, SQLITE_STATIC);
        if (sqlite3_step(ins) != SQLITE_DONE || sqlite3_step(st) != SQLITE_DONE)
            rc = SQLITE_ERROR;
        sqlite3_reset(ins);
        sqlite3_reset(st);
    }
    sqlite3_finalize(ins);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc == SQLITE_OK ? 0 : -1;
}

/* shard_files - how many files a store at path has (path, path.shard1, ...) */
static int shard_files(const char *path)
{
    int n = 1;
    char f[96];
    while (n < 16 && (size_t)snprintf(f, sizeof f, "%s.shard%d", path, n) < sizeof f &&
           access(f, F_OK) == 0)
        n++;
    return n;
}

/* remove_store - the files of a store of up to 8 files */
static void remove_store(const char *path)
{
    remove_db(path);
    for (int k = 1; k < 8; k++) {
        char f[96];
        if ((size_t)snprintf(f, sizeof f, "%s.shard%d", path, k) < sizeof f)
            remove_db(f);
    }
}

/* rounds - a feedback-loop round over 40 copies of one domain spread over
 * two files: the open copies come oldest first from both, the results
 * count once in the email's and the domain's figures, the round's time
 * and error are the domain's */
static void rounds(const char *dir)
{
    enum { NC = 40 };
    static char mid[NC][48], rcpt[NC][48];
    struct copy_event ev[NC];
    char path[128], err[256] = "";
    snprintf(path, sizeof path, "%s/rounds.db", dir);
    struct hstore *s = hstore_sqlite_open(path, 2, err, sizeof err);
    CHECK(s != NULL, err);
    if (!s)
        return;
    for (size_t i = 0; i < NC; i++) {
        snprintf(mid[i], sizeof mid[i], "<email-9.%zx@r.test>", i * 2654435761u);
        snprintf(rcpt[i], sizeof rcpt[i], "seed%zu@r.test", i);
        ev[i] = (struct copy_event){.message_id = mid[i],
                                    .broadcast_id = "<email-9@r.test>",
                                    .recipient = rcpt[i],
                                    .domain = "r.test",
                                    .smtp_client = "custom",
                                    .email_id = 9,
                                    .sent_at_ms = 1795428000000 + (int64_t)(NC - i) * 1000};
    }
    size_t nu, nc;
    CHECK(hstore_apply_events(s, NULL, 0, ev, NC, &nu, &nc) == 0 && nc == NC, "40 copies stored");
    CHECK_INT(shard_files(path), 2, "a new store made with two files has two");
    struct hstore_copy *c = NULL;
    size_t n = 0;
    CHECK(hstore_open_copies(s, "r.test", 0, 10, &c, &n) == 0, "open copies read");
    CHECK_INT(n, 10, "at most 10 open copies");
    bool sorted = true, in[2] = {false, false};
    for (size_t i = 0; i < n; i++) {
        sorted = sorted && c[i].fl.sent_at_ms == 1795428000000 + (int64_t)(i + 1) * 1000;
        if (c[i].shard >= 0 && c[i].shard < 2)
            in[c[i].shard] = true;
        c[i].fl.placement = i % 2 ? FL_INBOX : FL_SPAM;
        c[i].fl.opened = i < 3;
    }
    CHECK(sorted, "the 10 oldest, oldest first, across the files");
    CHECK(in[0] && in[1], "from both files");
    CHECK(hstore_apply_checks(s, "r.test", c, n, 1795428100000, "imap: timeout", true) == 0,
          "round results stored");
    struct hplacement p = {0};
    CHECK(hstore_domain_placement(s, "r.test", &p) == 0, "domain known");
    CHECK(p.tracked == NC && p.delivered == 5 && p.spam == 5 && p.opened == 3,
          "domain: 40 tracked, 5 inbox, 5 spam, 3 opened");
    struct hstore_stats t;
    char line[256];
    size_t len = 0;
    CHECK(hstore_stats_email(s, 9, NULL, &t) == 0, "email 9 known");
    stats_line(line, sizeof line, &len, &t);
    CHECK_STR(line, "{9 <email-9@r.test> 40 5 5 3 0 0 1 1795428100000 - -}",
              "email 9: the files' counters summed");
    hstore_stats_cleanup(&t);
    /* the same results again (a second round): counted once */
    for (size_t i = 0; i < n; i++) {
        c[i].old_placement = c[i].fl.placement;
        c[i].old_opened = c[i].fl.opened;
        c[i].fl.rounds = 1;
    }
    CHECK(hstore_apply_checks(s, "r.test", c, n, 1795428200000, NULL, true) == 0,
          "second round stored");
    CHECK(hstore_domain_placement(s, "r.test", &p) == 0 && p.delivered == 5 && p.spam == 5,
          "a second round with the same results changes no count");
    struct hstore_domain *d = NULL;
    size_t nd = 0;
    CHECK(hstore_domains(s, &d, &nd) == 0 && nd == 1, "one domain listed");
    CHECK_INT(nd ? d[0].checked : -1, 10, "10 copies checked (once each)");
    CHECK(nd && d[0].last_error == NULL, "the last round's error (none) is the domain's");
    CHECK(nd && d[0].has_round && d[0].last_round_at == 1795428200000,
          "the last round's time is the domain's");
    hstore_domains_free(d, nd);
    hstore_copies_free(c, n);
    hstore_free(s);
    CHECK(hstore_sqlite_open(path, 3, err, sizeof err) == NULL && strstr(err, "power of two"),
          "three files refused (not a power of two), before the store is touched");
    /* reopened asking for four files: a store keeps the count it was made with */
    s = hstore_sqlite_open(path, 4, err, sizeof err);
    CHECK(s != NULL, err);
    if (s) {
        CHECK_INT(hstore_tracked_count(s), NC, "reopened: 40 copies tracked");
        CHECK(hstore_apply_events(s, NULL, 0, ev, NC, &nu, &nc) == 0 && nc == 0,
              "reopened: every copy found again (a redelivery)");
        hstore_free(s);
    }
    /* and with the default (one file): still two, every copy found */
    s = hstore_sqlite_open(path, 1, err, sizeof err);
    CHECK(s != NULL, err);
    if (s) {
        CHECK(hstore_apply_events(s, NULL, 0, ev, NC, &nu, &nc) == 0 && nc == 0,
              "reopened with one file asked: every copy found in the two");
        hstore_free(s);
    }
    CHECK_INT(shard_files(path), 2, "still two files");
    remove_store(path);
}

/* die_mid_batch - in a child process: open the store at path, apply
 * ev[0, n) as hstore_apply_events does, but be killed (SIGKILL) after
 * the files k > 0 committed their parts and before file 0 commits */
static void die_mid_batch(const char *path, int files, const struct copy_event *ev, size_t n)
{
    char err[256];
    struct hstore *store = hstore_sqlite_open(path, files, err, sizeof err);
    if (!store)
        _exit(3);
    struct hsqlite *s = hsqlite(store);
    size_t added = 0;
    int64_t entered[HAN_N] = {0};
    pthread_mutex_lock(&s->shard[0].w_lock);
    if (db_begin(s->shard[0].w) != 0 || hsqlite_apply_copies(s, ev, n, &added, entered) != 0)
        _exit(4);
    raise(SIGKILL);
    _exit(5);
}

/* crashes - the sequence in batches of 300 into a store of `files` files;
 * every batch is first applied by a process killed between its files'
 * commits, then again (Kafka's redelivery of the uncommitted batch); the
 * store must end with want (summary of an uninterrupted run) */
static void crashes(const char *dir, int files, const struct copy_event *ev, const char *want,
                    size_t want_added)
{
    char path[128], err[256] = "", name[128];
    snprintf(path, sizeof path, "%s/crash%d.db", dir, files);
    int64_t prev = 0;
    int kills = 0, partial = 0, exact = 0;
    for (size_t i = 0; i < NEV; i += 300) {
        size_t n = NEV - i < 300 ? NEV - i : 300;
        pid_t pid = fork();
        if (pid == 0)
            die_mid_batch(path, files, &ev[i], n);
        int st = 0;
        if (pid < 0 || waitpid(pid, &st, 0) != pid)
            break;
        kills += WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL;
        struct hstore *s = hstore_sqlite_open(path, files, err, sizeof err);
        CHECK(s != NULL, err);
        if (!s)
            return;
        int64_t before = hstore_tracked_count(s);
        size_t nu, nc;
        int r = hstore_apply_events(s, NULL, 0, &ev[i], n, &nu, &nc);
        int64_t after = hstore_tracked_count(s);
        hstore_free(s);
        if (r != 0)
            break;
        partial += before > prev && before < after;
        exact += after == before + (int64_t)nc; /* the redelivery added just what was missing */
        prev = after;
    }
    struct hstore *s = hstore_sqlite_open(path, files, err, sizeof err);
    CHECK(s != NULL, err);
    if (!s)
        return;
    snprintf(name, sizeof name, "%d file(s): 3 processes killed mid-batch", files);
    CHECK_INT(kills, 3, name);
    snprintf(name, sizeof name, "%d file(s): each redelivery added only what was missing", files);
    CHECK_INT(exact, 3, name);
    snprintf(name, sizeof name, "%d file(s): the killed batches left part of their copies", files);
    if (files > 1)
        CHECK_INT(partial, 3, name);
    else
        CHECK_INT(partial, 0, "one file: a killed batch left nothing (one transaction)");
    int64_t tracked = hstore_tracked_count(s);
    snprintf(name, sizeof name, "%d file(s): nothing lost or counted twice (tracked)", files);
    CHECK_INT(tracked, (int64_t)want_added, name);
    char *got = summary(s);
    snprintf(name, sizeof name, "%d file(s), killed mid-batch 3 times: the same stats", files);
    CHECK_STR(got, want, name);
    free(got);
    hstore_free(s);
    remove_store(path);
}

/* migration - a schema 4 store with the first 100 copies: after the
 * migration they answer /mail_stats, are redeliveries, and new ones count */
static void migration(const char *dir)
{
    char path[128], err[256] = "";
    snprintf(path, sizeof path, "%s/v4.db", dir);
    CHECK(v4_store(path, 100) == 0, "a store of schema 4 with 100 copies");
    struct hstore *s = hstore_open(path, 1, err, sizeof err);
    CHECK(s != NULL, err);
    if (!s)
        return;
    struct hstore_stats t = {0};
    CHECK(hstore_stats_copy(s, mids[42], &t) == 0, "a migrated copy answers by its Message-ID");
    CHECK_STR(t.recipient, rcpts[42], "with its recipient");
    hstore_stats_cleanup(&t);
    CHECK_INT(hstore_tracked_count(s), 100, "100 copies tracked after the migration");
    struct copy_event ev[120];
    for (size_t i = 0; i < 120; i++)
        ev[i] = event(i); /* copies 0..119: 100 known, 20 new */
    size_t nu, nc;
    CHECK(hstore_apply_events(s, NULL, 0, ev, 120, &nu, &nc) == 0, "events applied");
    CHECK_INT(nc, 20, "only the 20 copies not in the migrated store are new");
    CHECK_INT(hstore_tracked_count(s), 120, "120 copies tracked");
    hstore_free(s);
    CHECK_INT(shard_files(path), 1, "a store that held copies keeps them in its one file");
    remove_store(path);
}

/* many_keys - one batch touching 1,000 domains and 300 emails (the
 * per-batch counters' index grows many times) counts what one event per
 * transaction counts */
static void many_keys(const char *dir)
{
    enum { NC = 3000, ND = 1000, NE = 300 };
    static char mid[NC][48], rcpt[NC][48], dom[NC][24], bid[NC][40];
    static struct copy_event ev[NC];
    for (size_t i = 0; i < NC; i++) {
        size_t e = i % NE + 1;
        snprintf(mid[i], sizeof mid[i], "<email-%zu.%zx@m.test>", e, i * 2654435761u);
        snprintf(dom[i], sizeof dom[i], "k%zu.test", i % ND);
        snprintf(rcpt[i], sizeof rcpt[i], "u%zu@k%zu.test", i, i % ND);
        snprintf(bid[i], sizeof bid[i], "<email-%zu@m.test>", e);
        ev[i] = (struct copy_event){.message_id = mid[i],
                                    .broadcast_id = bid[i],
                                    .recipient = rcpt[i],
                                    .domain = dom[i],
                                    .smtp_client = "custom",
                                    .email_id = (int64_t)e,
                                    .sent_at_ms = 1795428000000 + (int64_t)i,
                                    .failed = i % 7 == 3,
                                    .smtp_reply = i % 7 == 3 ? "550" : NULL};
    }
    char *sums[2] = {NULL, NULL};
    for (int k = 0; k < 2; k++) {
        char path[128], err[256] = "";
        snprintf(path, sizeof path, "%s/many%d.db", dir, k);
        struct hstore *s = hstore_open(path, 1, err, sizeof err);
        CHECK(s != NULL, err);
        if (!s)
            return;
        size_t nu, nc, added = 0;
        for (size_t i = 0; i < NC; i += k ? NC : 1) {
            if (hstore_apply_events(s, NULL, 0, &ev[i], k ? NC : 1, &nu, &nc) != 0)
                break;
            added += nc;
        }
        CHECK_INT(added, NC,
                  k ? "one batch of 3,000 copies over 1,000 domains: all added"
                    : "3,000 copies one by one: all added");
        size_t nd = 0, na = 0, len;
        struct hstore_stats *a = NULL;
        sums[k] = domains_text(s, &nd);
        CHECK(hstore_all_stats(s, 1000, 0, &a, &na) == 0, "all stats read");
        len = sums[k] ? strlen(sums[k]) : 0;
        for (size_t i = 0; sums[k] && i < na; i++)
            stats_line(sums[k], 1 << 20, &len, &a[i]);
        hstore_stats_free(a, na);
        CHECK_INT(nd, ND, "1,000 domains known");
        CHECK_INT(na, NE, "300 emails counted");
        hstore_free(s);
        remove_store(path);
    }
    /* first_seen / last_seen differ between the runs: domains_text leaves them out */
    CHECK_STR(sums[1], sums[0], "the batch leaves the counters one by one leaves");
    free(sums[0]);
    free(sums[1]);
}

/* feedback - bounce and complaint reports (hstore_apply_feedback) on a
 * store of four files: each copy counted once in its email's and domain's
 * bounced or complained, a second report and a report on a dead letter
 * change nothing, an unknown copy is 1, a bounced copy is no longer
 * checked */
static void feedback(const char *dir)
{
    char path[64], err[256] = "", mid[8][48], rcpt[8][48];
    snprintf(path, sizeof path, "%s/fb.db", dir);
    struct hstore *s = hstore_sqlite_open(path, 4, err, sizeof err);
    CHECK(s != NULL, err);
    if (!s)
        return;
    struct copy_event c[8];
    for (int i = 0; i < 8; i++) {
        snprintf(mid[i], sizeof mid[i], "<email-9.%016x@w.test>", (unsigned)i * 2654435761u);
        snprintf(rcpt[i], sizeof rcpt[i], "u%d@fb.test", i);
        c[i] = (struct copy_event){.failed = i == 7,
                                   .message_id = mid[i],
                                   .broadcast_id = "<email-9@w.test>",
                                   .recipient = rcpt[i],
                                   .domain = "fb.test",
                                   .smtp_client = "custom",
                                   .smtp_reply = i == 7 ? "550 no" : NULL,
                                   .email_id = 9,
                                   .sent_at_ms = i == 7 ? 0 : 1795428000000 + i};
    }
    size_t nu, nc;
    CHECK_INT(hstore_apply_events(s, NULL, 0, c, 8, &nu, &nc), 0, "feedback: copies stored");
    const struct hstore_feedback hard = {.status = "5.1.1", .diagnostic = "smtp; 550 5.1.1 no"},
                                 soft = {.soft = true, .status = "4.4.1"},
                                 abuse = {.complained = true, .feedback_type = "abuse"};
    bool changed = false;
    CHECK_INT(hstore_apply_feedback(s, mid[0], &hard, &changed), 0, "feedback: a hard bounce");
    CHECK(changed, "feedback: recorded");
    CHECK_INT(hstore_apply_feedback(s, mid[0], &soft, &changed), 0, "feedback: again");
    CHECK(!changed, "feedback: a second bounce report changes nothing");
    CHECK_INT(hstore_apply_feedback(s, mid[1], &soft, &changed), 0, "feedback: a soft bounce");
    CHECK(changed, "feedback: recorded");
    CHECK_INT(hstore_apply_feedback(s, mid[7], &hard, &changed), 0, "feedback: a dead letter");
    CHECK(!changed, "feedback: a dead letter is counted once");
    for (int k = 0; k < 2; k++) {
        CHECK_INT(hstore_apply_feedback(s, mid[2], &abuse, &changed), 0, "feedback: a complaint");
        CHECK(changed == (k == 0), "feedback: a complaint is recorded once");
    }
    CHECK_INT(hstore_apply_feedback(s, mid[0], &abuse, &changed), 0,
              "feedback: a complaint about a bounced copy");
    CHECK_INT(hstore_apply_feedback(s, "<email-9.ffffffffffffffff@w.test>", &hard, &changed), 1,
              "feedback: an unknown copy");
    struct hstore_stats t;
    CHECK_INT(hstore_stats_email(s, 9, NULL, &t), 0, "feedback: email stats");
    CHECK(t.n.tracked == 8 && t.n.bounced == 3 && t.n.complained == 2,
          "feedback: the email counts 3 bounced (dead letter, hard, soft) and 2 complained");
    hstore_stats_cleanup(&t);
    CHECK_INT(hstore_stats_copy(s, mid[2], &t), 0, "feedback: copy stats");
    CHECK(t.n.complained == 1 && t.n.bounced == 0, "feedback: the copy complained");
    hstore_stats_cleanup(&t);
    struct hplacement p = {0};
    CHECK_INT(hstore_domain_placement(s, "fb.test", &p), 0, "feedback: domain");
    CHECK(p.bounced == 3 && p.complained == 2, "feedback: the domain counts the same");
    struct hstore_copy *open;
    size_t n;
    CHECK_INT(hstore_open_copies(s, "fb.test", 0, 100, &open, &n), 0, "feedback: open copies");
    CHECK_INT(n, 5, "feedback: bounced copies are no longer checked");
    hstore_copies_free(open, n);
    hstore_free(s);
    remove_store(path);
}

/* figures - a copy's, an email's or a domain's counters as text */
static void figures(char *out, size_t cap, const struct hplacement *p)
{
    snprintf(out, cap,
             "tracked %lld delivered %lld spam %lld opened %lld read %lld bounced %lld"
             " unchecked %lld rescued %lld",
             (long long)p->tracked, (long long)p->delivered, (long long)p->spam,
             (long long)p->opened, (long long)p->read, (long long)p->bounced,
             (long long)p->unchecked, (long long)p->rescued);
}

/* email_is, copy_is, domain_is - do email 3's, copy i's, u.test's figures
 * read want (a check each, named name) */
static void email_is(struct hstore *s, const char *want, const char *name)
{
    struct hstore_stats t;
    char got[256] = "unknown";
    if (hstore_stats_email(s, 3, NULL, &t) == 0) {
        figures(got, sizeof got, &t.n);
        hstore_stats_cleanup(&t);
    }
    CHECK_STR(got, want, name);
}

static void copy_is(struct hstore *s, const char *mid, const char *want, const char *name)
{
    struct hstore_stats t;
    char got[256] = "unknown";
    if (hstore_stats_copy(s, mid, &t) == 0) {
        figures(got, sizeof got, &t.n);
        hstore_stats_cleanup(&t);
    }
    CHECK_STR(got, want, name);
}

static void domain_is(struct hstore *s, const char *want, const char *name)
{
    struct hplacement p;
    char got[256] = "unknown", list[256] = "not listed";
    if (hstore_domain_placement(s, "u.test", &p) == 0)
        figures(got, sizeof got, &p);
    CHECK_STR(got, want, name);
    struct hstore_domain *d = NULL;
    size_t nd = 0;
    if (hstore_domains(s, &d, &nd) == 0 && nd == 1)
        figures(list, sizeof list, &d[0].n);
    hstore_domains_free(d, nd);
    CHECK_STR(list, want, "  ... and /domains says the same");
}

/* round_state - u.test's checked count, round time and error as text */
static void round_state(struct hstore *s, char *out, size_t cap)
{
    struct hstore_domain *d = NULL;
    size_t nd = 0;
    snprintf(out, cap, "no domain");
    if (hstore_domains(s, &d, &nd) == 0 && nd == 1)
        snprintf(out, cap, "checked %lld round %lld error %s", (long long)d[0].checked,
                 d[0].has_round ? (long long)d[0].last_round_at : -1LL,
                 d[0].last_error ? d[0].last_error : "-");
    hstore_domains_free(d, nd);
}

/* open_ids - the open copies of u.test by index into mid (-1: another),
 * as "0 1 3 ..." in the order read; the copies into *c (caller frees) */
static void open_ids(struct hstore *s, char mid[][48], size_t nmid, struct hstore_copy **c,
                     size_t *n, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = '\0';
    if (hstore_open_copies(s, "u.test", 0, 100, c, n) != 0) {
        snprintf(out, cap, "error");
        return;
    }
    for (size_t k = 0; k < *n; k++) {
        int id = -1;
        for (size_t i = 0; i < nmid; i++)
            if (strcmp((*c)[k].message_id, mid[i]) == 0)
                id = (int)i;
        len += (size_t)snprintf(out + len, cap - len, "%s%d%s", k ? " " : "", id,
                                (*c)[k].old_rescued ? "r" : "");
    }
}

/* set - copy i of the open copies c gets placement p (and rescued, opened) */
static void set(struct hstore_copy *c, size_t n, char mid[][48], size_t i, enum fl_placement p,
                bool rescued, bool opened)
{
    for (size_t k = 0; k < n; k++)
        if (strcmp(c[k].message_id, mid[i]) == 0) {
            c[k].fl.placement = p;
            c[k].fl.rescued = rescued;
            c[k].fl.opened = opened;
        }
}

/* unchecked_rescued - see the file's comment: eight copies of email 3 to
 * u.test in a store of two files */
static void unchecked_rescued(const char *dir)
{
    enum { NC = 8 };
    static char mid[NC][48], rcpt[NC][48];
    struct copy_event ev[NC];
    char path[128], err[256] = "", got[256], want[256];
    const int64_t T = 1795428000000;
    snprintf(path, sizeof path, "%s/unchecked.db", dir);
    struct hstore *s = hstore_sqlite_open(path, 2, err, sizeof err);
    CHECK(s != NULL, err);
    if (!s)
        return;
    for (size_t i = 0; i < NC; i++) {
        snprintf(mid[i], sizeof mid[i], "<email-3.%zx@u.test>", i * 2654435761u + 1);
        snprintf(rcpt[i], sizeof rcpt[i], "seed%zu@u.test", i);
        ev[i] = (struct copy_event){.message_id = mid[i],
                                    .broadcast_id = "<email-3@u.test>",
                                    .recipient = rcpt[i],
                                    .domain = "u.test",
                                    .smtp_client = "custom",
                                    .email_id = 3,
                                    .sent_at_ms = T + (int64_t)i * 1000};
    }
    size_t nu, nc, n = 0;
    CHECK(hstore_apply_events(s, NULL, 0, ev, NC, &nu, &nc) == 0 && nc == NC, "8 copies stored");
    /* the domain loop's round over copies 0-5: 0 inbox, 1 spam, the others not found */
    struct hstore_copy *c = NULL;
    open_ids(s, mid, NC, &c, &n, got, sizeof got);
    CHECK_STR(got, "0 1 2 3 4 5 6 7", "every copy open, oldest first");
    for (size_t k = 0; k < n; k++)
        c[k].fl.placement = FL_NOT_FOUND;
    set(c, n, mid, 0, FL_INBOX, false, false);
    set(c, n, mid, 1, FL_SPAM, false, false);
    CHECK(hstore_apply_checks(s, "u.test", c, 6, T + 60000, "imap: slow", true) == 0,
          "the domain loop's round stored");
    hstore_copies_free(c, n);
    hstore_free(s);

    /* the store taken back to schema 9 (both files), then opened again */
    int back = 0;
    for (int k = 0; k < 2; k++) {
        char f[160];
        snprintf(f, sizeof f, k ? "%s.shard1" : "%s", path);
        sqlite3 *db;
        if (sqlite3_open(f, &db) == SQLITE_OK &&
            sqlite3_exec(
                db, /* migration 11 undone, then 10 */
                "DROP TABLE analytics; DROP TABLE analytics_series;"
                "ALTER TABLE copies DROP COLUMN series;"
                " ALTER TABLE copies DROP COLUMN variant; ALTER TABLE copies DROP COLUMN campaign;"
                " ALTER TABLE copies DROP COLUMN rescued;"
                " ALTER TABLE email_stats DROP COLUMN unchecked;"
                " ALTER TABLE email_stats DROP COLUMN rescued;"
                " ALTER TABLE domains DROP COLUMN unchecked;"
                " ALTER TABLE domains DROP COLUMN rescued; PRAGMA user_version = 9;",
                NULL, NULL, NULL) == SQLITE_OK)
            back++;
        sqlite3_close(db);
    }
    CHECK_INT(back, 2, "both files taken back to schema 9");
    s = hstore_sqlite_open(path, 2, err, sizeof err);
    CHECK(s != NULL, err);
    if (!s)
        return;
    email_is(s, "tracked 8 delivered 1 spam 1 opened 0 read 0 bounced 0 unchecked 0 rescued 0",
             "migrated from schema 9: the email's counters kept");
    domain_is(s, "tracked 8 delivered 1 spam 1 opened 0 read 0 bounced 0 unchecked 0 rescued 0",
              "migrated: the domain's counters kept");
    copy_is(s, mid[1],
            "tracked 1 delivered 0 spam 1 opened 0 read 0 bounced 0 unchecked 0 rescued 0",
            "migrated: a copy's placement kept");
    round_state(s, got, sizeof got);
    snprintf(want, sizeof want, "checked 6 round %lld error imap: slow", (long long)(T + 60000));
    CHECK_STR(got, want, "migrated: the domain's checked count, round time and error kept");

    /* not the domain loop's: copies 2 and 6 (never checked) unchecked, a
     * seed mailbox finds 3 in the inbox and rescues 1 from spam (and
     * marks it read); copy 5 rescued although its round failed */
    open_ids(s, mid, NC, &c, &n, got, sizeof got);
    CHECK_STR(got, "0 1 2 3 4 5 6 7", "migrated: every copy open");
    set(c, n, mid, 2, FL_UNCHECKED, false, false);
    set(c, n, mid, 6, FL_UNCHECKED, false, false);
    set(c, n, mid, 3, FL_INBOX, false, false);
    set(c, n, mid, 7, FL_NOT_FOUND, false, false);
    set(c, n, mid, 1, FL_SPAM, true, true);
    CHECK(hstore_apply_checks(s, "u.test", c, n, T + 120000, NULL, false) == 0,
          "a round that is not the domain loop's stored");
    /* the same marking given again (as read before it): nothing more */
    struct hstore_copy stale[2];
    size_t ns = 0;
    for (size_t k = 0; k < n && ns < 2; k++)
        if (c[k].fl.placement == FL_UNCHECKED)
            stale[ns++] = c[k];
    CHECK(ns == 2 && hstore_apply_checks(s, "u.test", stale, ns, T + 125000, NULL, false) == 0,
          "the unchecked marking given again");
    hstore_copies_free(c, n);
    round_state(s, got, sizeof got);
    snprintf(want, sizeof want, "checked 7 round %lld error imap: slow", (long long)(T + 60000));
    CHECK_STR(got, want,
              "not the domain loop's round: its time and error untouched; copy 7 checked,"
              " the unchecked copy 6 not");
    email_is(s, "tracked 8 delivered 2 spam 1 opened 1 read 0 bounced 0 unchecked 2 rescued 1",
             "email: 2 unchecked, 1 rescued (still in spam), 2 delivered");
    domain_is(s, "tracked 8 delivered 2 spam 1 opened 1 read 0 bounced 0 unchecked 2 rescued 1",
              "domain: the same");
    copy_is(s, mid[2],
            "tracked 1 delivered 0 spam 0 opened 0 read 0 bounced 0 unchecked 1 rescued 0",
            "an unchecked copy's own figures");
    struct hstore_stats t;
    CHECK(hstore_stats_copy(s, mid[6], &t) == 0 && !t.checked, "an unchecked copy was not checked");
    hstore_stats_cleanup(&t);
    copy_is(s, mid[1],
            "tracked 1 delivered 0 spam 1 opened 1 read 0 bounced 0 unchecked 0 rescued 1",
            "a rescued copy: spam, opened, rescued");

    /* a later round: unchecked copies are no longer open; the rescued one
     * is found in the inbox and rescued again: it stays spam, counted once */
    open_ids(s, mid, NC, &c, &n, got, sizeof got);
    CHECK_STR(got, "0 1r 3 4 5 7", "open copies: never the unchecked ones; 1 was rescued");
    set(c, n, mid, 1, FL_INBOX, true, true);
    set(c, n, mid, 5, FL_UNKNOWN, true, false);
    CHECK(hstore_apply_checks(s, "u.test", c, n, T + 180000, NULL, true) == 0,
          "the domain loop's next round stored");
    hstore_copies_free(c, n);
    email_is(s, "tracked 8 delivered 2 spam 2 opened 1 read 0 bounced 0 unchecked 2 rescued 2",
             "a rescued copy found in the inbox stays in spam, counted once; 5 rescued unknown");
    copy_is(s, mid[1],
            "tracked 1 delivered 0 spam 1 opened 1 read 0 bounced 0 unchecked 0 rescued 1",
            "the rescued copy still spam");
    copy_is(s, mid[5],
            "tracked 1 delivered 0 spam 1 opened 0 read 0 bounced 0 unchecked 0 rescued 1",
            "a copy rescued in a failed round: recorded as rescued from spam");
    round_state(s, got, sizeof got);
    snprintf(want, sizeof want, "checked 7 round %lld error -", (long long)(T + 180000));
    CHECK_STR(got, want, "the domain loop's round: its time and error (none) recorded");
    open_ids(s, mid, NC, &c, &n, got, sizeof got);
    CHECK_STR(got, "0 1r 3 4 5r 7", "still no unchecked copy open");
    hstore_copies_free(c, n);
    hstore_free(s);
    remove_store(path);
}

int main(void)
{
    static struct copy_event ev[NEV];
    log_init(LOG_WARN, LOG_TEXT, "test");
    for (size_t id = 0; id < NIDS; id++) {
        snprintf(mids[id], sizeof mids[id], "<email-%zu.%zu@w.test>", id % 7 + 1, id);
        snprintf(rcpts[id], sizeof rcpts[id], "u%zu@d%zu.test", id, id % 5);
        snprintf(doms[id], sizeof doms[id], "d%zu.test", id % 5);
    }
    for (int e = 1; e <= 7; e++)
        snprintf(bids[e], sizeof bids[e], "<email-%d@w.test>", e);
    for (size_t i = 0; i < NEV; i++)
        ev[i] = event(i);

    char dir[] = "/tmp/test_hstore.XXXXXX", path[16][64], err[256] = "";
    CHECK(mkdtemp(dir) != NULL, "temp dir");
    /* every run must leave what run 0 (single events, one file) leaves;
     * weak: a hash that makes most Message-IDs collide (1: in one file, 2:
     * spread over the files); keyed: sorted first by hstore_key_copies */
    enum { RUNS = 14 };
    static const struct {
        const char *name;
        size_t batch;
        int weak;
        bool keyed;
        int files;
    } runs[RUNS] = {
        {"single events", 1, 0, false, 1},
        {"batches of 200", 200, 0, false, 1},
        {"one batch", NEV, 0, false, 1},
        {"colliding hashes, single events", 1, 1, false, 1},
        {"colliding hashes, one batch", NEV, 1, false, 1},
        {"keyed batches of 200", 200, 0, true, 1},
        {"keyed, colliding hashes, one batch", NEV, 1, true, 1},
        {"two files, single events", 1, 0, false, 2},
        {"two files, batches of 200", 200, 0, false, 2},
        {"two files, one keyed batch", NEV, 0, true, 2},
        {"two files, colliding hashes in one, one batch", NEV, 1, false, 2},
        {"two files, colliding hashes in both, one batch", NEV, 2, true, 2},
        {"four files, batches of 200", 200, 0, false, 4},
        {"four files, colliding hashes in three, single events", 1, 2, false, 4},
    };
    char *sum[RUNS];
    size_t added[RUNS];
    for (int k = 0; k < RUNS; k++) {
        snprintf(path[k], sizeof path[k], "%s/h%d.db", dir, k);
        struct hstore *s = hstore_sqlite_open(path[k], runs[k].files, err, sizeof err);
        CHECK(s != NULL, err);
        if (!s)
            return test_done();
        if (runs[k].weak)
            hstore_sqlite_set_hash(s, runs[k].weak == 1 ? weak_hash : weak_spread);
        bool keyed = runs[k].keyed;
        added[k] = apply(s, ev, runs[k].batch, keyed);
        sum[k] = summary(s);
        if (k == 0)
            CHECK_INT(hstore_tracked_count(s), (int64_t)added[0], "tracked = copies added");
        /* everything again: a redelivery of every batch changes nothing */
        CHECK_INT(apply(s, ev, runs[k].batch, keyed), 0, "redelivered batches add nothing");
        char *again = summary(s);
        CHECK_STR(again, sum[k], "redelivered batches change nothing");
        free(again);
        hstore_free(s);
        char name[96];
        snprintf(name, sizeof name, "%s: %d file(s)", runs[k].name, runs[k].files);
        CHECK_INT(shard_files(path[k]), runs[k].files, name);
    }
    CHECK(added[0] > 300 && added[0] < NIDS + 1, "some copies were redelivered");
    for (int k = 1; k < RUNS; k++) {
        char name[96];
        snprintf(name, sizeof name, "%s: the same copies added", runs[k].name);
        CHECK_INT(added[k], added[0], name);
        snprintf(name, sizeof name, "%s: the same stats", runs[k].name);
        CHECK_STR(sum[k], sum[0], name);
    }
    crashes(dir, 1, ev, sum[0], added[0]);
    crashes(dir, 4, ev, sum[0], added[0]);
    for (int k = 0; k < RUNS; k++) {
        free(sum[k]);
        remove_store(path[k]);
    }
    rounds(dir);
    migration(dir);
    many_keys(dir);
    feedback(dir);
    unchecked_rescued(dir);
    rmdir(dir);
    return test_done();
}
