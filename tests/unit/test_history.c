/* test_history.c - the copies' history and archival on a real SQLite
 * file: every /history filter against a brute-force filter of the rows
 * inserted, keyset pages that neither miss nor repeat a copy while new
 * copies arrive, the cursor's check (forged, foreign), the per-filter
 * indexes in the query plans, and archive_once: exactly the old
 * final-state copies move into gzip JSON Lines files listed in archives,
 * the rest stays, the emails' counters do not change, a count mismatch
 * commits nothing, an orphan file is removed. */
#include "../../warmup-service/api_history.c"
#include "../../warmup-service/store_history.c"
#include "archive.h"
#include "db.h"
#include "msgid.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define NCOPIES 240
#define DAY (86400LL * 1000)

static char tmpdir[] = "/tmp/test_history.XXXXXX";

struct copy {
    int64_t id, email_id;
    char recipient[32];
    int state;
    int64_t updated_at; /* 0: NULL */
};
static struct copy copies[NCOPIES + 64];
static size_t ncopies;

static long long count(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    long long v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

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

/* add_copy - a copy inserted as the sender would leave it */
static void add_copy(struct store *s, int64_t email_id, const char *rcpt, int state, int64_t upd)
{
    sqlite3_stmt *st = NULL;
    sqlite3_prepare_v2(s->w,
                       "INSERT INTO deliveries(email_id, user_id, recipient, name, state, attempts,"
                       " due_at, last_code, last_reply, updated_at) VALUES(?1, 0, ?2, '', ?3, ?4,"
                       " ?5, ?6, ?7, ?8) RETURNING id",
                       -1, &st, NULL);
    sqlite3_bind_int64(st, 1, email_id);
    sqlite3_bind_text(st, 2, rcpt, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, state);
    sqlite3_bind_int(st, 4, upd ? 1 : 0);
    sqlite3_bind_int64(st, 5, state == DLV_RETRY ? upd + 60000 : 0);
    if (upd) {
        sqlite3_bind_int(st, 6, state == DLV_SENT ? 250 : 451);
        sqlite3_bind_text(st, 7, state == DLV_SENT ? "250 2.0.0 Ok" : "451 4.3.0 later", -1,
                          SQLITE_STATIC);
        sqlite3_bind_int64(st, 8, upd);
    }
    struct copy *c = &copies[ncopies++];
    c->id = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    c->email_id = email_id;
    snprintf(c->recipient, sizeof c->recipient, "%s", rcpt);
    c->state = state;
    c->updated_at = upd;
}

static bool matches(const struct copy *c, const struct history_query *q)
{
    return (!q->recipient || strcasecmp(c->recipient, q->recipient) == 0) &&
           (!q->email_id || c->email_id == q->email_id) && (q->state < 0 || c->state == q->state) &&
           (!q->has_from || (c->updated_at && c->updated_at >= q->from_ms)) &&
           (!q->has_to || (c->updated_at && c->updated_at < q->to_ms)) &&
           (!q->before_id || c->id < q->before_id);
}

/* same_as_brute - store_history(q) returns the brute-force answer */
static void same_as_brute(struct store *s, struct history_query q, const char *name)
{
    struct history_row *v;
    size_t n;
    int rc = store_history(s, &q, &v, &n);
    int64_t want[NCOPIES + 64];
    size_t nw = 0;
    for (size_t i = ncopies; i-- > 0 && (int64_t)nw < q.limit;)
        if (matches(&copies[i], &q))
            want[nw++] = copies[i].id;
    bool ok = rc == 0 && n == nw && nw > 0;
    for (size_t i = 0; ok && i < n; i++)
        ok = v[i].id == want[i];
    CHECK(ok, name);
    if (!ok)
        printf("#   got %zu rows, want %zu\n", n, nw);
    store_history_free(v, n);
}

static int64_t new_email(struct store *s)
{
    struct email_spec spec = {.from = "noreply@d.test",
                              .subject = "Hi",
                              .body = "Hello",
                              .smtp_client = "default",
                              .msgid_domain = "d.test"};
    int64_t id = 0, n = 0;
    char *mid = NULL;
    store_create_email(s, &spec, &id, &n, &mid);
    free(mid);
    return id;
}

static void test_filters(struct store *s, int64_t e1, int64_t e2, int64_t base)
{
    struct history_query all = {.state = -1, .limit = 1000};
    same_as_brute(s, all, "no filter: every copy, newest first");
    struct history_query q = all;
    q.recipient = "R3@example.COM";
    same_as_brute(s, q, "recipient ignoring case");
    q = all;
    q.email_id = e2;
    same_as_brute(s, q, "email_id");
    for (int st = 0; st <= DLV_SUPPRESSED; st++) {
        q = all;
        q.state = st;
        char name[64];
        snprintf(name, sizeof name, "status %s", status_names[st]);
        same_as_brute(s, q, name);
    }
    q = all;
    q.has_from = q.has_to = true;
    q.from_ms = base + 10 * 1000;
    q.to_ms = base + 50 * 1000;
    same_as_brute(s, q, "from/to on updated_at");
    {
        struct history_row *v;
        size_t n;
        store_history(s, &q, &v, &n);
        bool half_open = true;
        for (size_t i = 0; i < n; i++)
            half_open = half_open && v[i].updated_at >= q.from_ms && v[i].updated_at < q.to_ms;
        CHECK(half_open && n > 0, "from/to is half-open [from, to)");
        store_history_free(v, n);
    }
    q.state = DLV_SENT;
    q.email_id = e1;
    q.recipient = "r1@example.com";
    same_as_brute(s, q, "every filter at once");
    q = all;
    q.limit = 5;
    same_as_brute(s, q, "limit");
}

static void test_row_shape(struct store *s, int64_t e1)
{
    struct email_info e;
    store_get_email(s, e1, false, &e);
    struct history_query q = {.state = DLV_RETRY, .limit = 1};
    struct history_row *v;
    size_t n;
    store_history(s, &q, &v, &n);
    CHECK_INT(n, 1, "a retry copy");
    if (n == 1) {
        email_info_cleanup(&e);
        store_get_email(s, v[0].email_id, false, &e);
        char *mid = msgid_copy(v[0].email_id, e.salt, v[0].id, e.msgid_domain);
        CHECK_STR(v[0].message_id, mid, "message_id is msgid_copy's");
        free(mid);
        json_object *o = api_history_json(&v[0]);
        CHECK_STR(json_object_get_string(json_object_object_get(o, "status")), "retry",
                  "status name");
        CHECK(json_object_object_get(o, "next_attempt_at") != NULL, "a retry has next_attempt_at");
        CHECK_INT(json_object_get_int(json_object_object_get(o, "last_code")), 451, "last_code");
        json_object_put(o);
    }
    store_history_free(v, n);
    q.state = DLV_PENDING;
    q.email_id = e1;
    store_history(s, &q, &v, &n);
    if (n == 1) {
        json_object *o = api_history_json(&v[0]);
        json_object *u;
        CHECK(json_object_object_get_ex(o, "updated_at", &u) && u == NULL,
              "a pending copy's updated_at is null");
        CHECK(json_object_object_get_ex(o, "last_code", &u) && u == NULL, "and its last_code");
        json_object_put(o);
    }
    store_history_free(v, n);
    email_info_cleanup(&e);
}

/* test_paging - pages of 7 over a recipient's copies while new ones
 * arrive: every copy there at the start exactly once, in id order */
static void test_paging(struct store *s, int64_t e1)
{
    struct history_query q = {.recipient = "r2@example.com", .state = -1, .limit = 7};
    size_t first = ncopies;
    int64_t want[NCOPIES];
    size_t nw = 0;
    for (size_t i = ncopies; i-- > 0;)
        if (matches(&copies[i], &q))
            want[nw++] = copies[i].id;
    int64_t got[NCOPIES + 64];
    size_t ng = 0;
    int pages = 0;
    bool ok = true;
    for (;;) {
        struct history_row *v;
        size_t n;
        if (store_history(s, &q, &v, &n) != 0) {
            ok = false;
            break;
        }
        for (size_t i = 0; i < n && ng < NCOPIES + 64; i++)
            got[ng++] = v[i].id;
        pages++;
        int64_t last = n ? v[n - 1].id : 0;
        store_history_free(v, n);
        if ((int64_t)n < q.limit)
            break;
        /* the cursor round trip, as the API does it */
        char cur[33];
        cursor_make(last, &q, cur);
        q.before_id = 0;
        ok = ok && cursor_parse(cur, &q, &q.before_id) == 0 && q.before_id == last;
        add_copy(s, e1, "R2@example.com", DLV_PENDING, 0); /* newer: not in this walk */
    }
    bool same = ok && ng == nw;
    for (size_t i = 0; same && i < ng; i++)
        same = got[i] == want[i];
    CHECK(same && pages > 3, "pages: no copy missed or repeated while copies arrive");
    CHECK(ncopies > first, "copies were added between pages");
}

static void test_cursor(void)
{
    struct history_query q = {.email_id = 3, .state = DLV_SENT, .limit = 10};
    char cur[33];
    int64_t id = 0;
    cursor_make(12345, &q, cur);
    CHECK(cursor_parse(cur, &q, &id) == 0 && id == 12345, "a cursor gives back its id");
    char forged[33];
    memcpy(forged, cur, sizeof forged);
    forged[15] = forged[15] == '0' ? '1' : '0'; /* another id, same check */
    CHECK(cursor_parse(forged, &q, &id) != 0, "a forged id is refused");
    memcpy(forged, cur, sizeof forged);
    forged[31] = forged[31] == '0' ? '1' : '0';
    CHECK(cursor_parse(forged, &q, &id) != 0, "a forged check is refused");
    struct history_query other = q;
    other.state = DLV_DEAD;
    CHECK(cursor_parse(cur, &other, &id) != 0, "a cursor of another query is refused");
    CHECK(cursor_parse("zz", &q, &id) != 0, "not hex, too short");
    CHECK(cursor_parse("ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ", &q, &id) != 0, "not hex");
    CHECK(cursor_parse("00000000000000000000000000000000", &q, &id) != 0, "id 0");
    CHECK(cursor_parse("ffffffffffffffff0000000000000000", &q, &id) != 0, "id beyond int64");
    int64_t t;
    CHECK(time_parse_rfc3339("2026-12-05T10:00:00Z", &t) == 0 && t == 1796464800000LL,
          "RFC 3339 Z");
    CHECK(time_parse_rfc3339("2026-12-05T11:00:00.5+01:00", &t) == 0 && t == 1796464800500LL,
          "RFC 3339 offset and fraction");
    CHECK(time_parse_rfc3339("2026-02-30T10:00:00Z", &t) != 0, "no Feb 30");
    CHECK(time_parse_rfc3339("2026-12-05", &t) == 0 && t == 1796428800000LL,
          "a date alone is its midnight UTC (as /analytics)");
    CHECK(time_parse_rfc3339("yesterday", &t) != 0, "a word is refused");
}

/* PLAN - the plan of a /history statement, its parameters numbered 1..n */
#define PLAN(out, ...)                                                                             \
    do {                                                                                           \
        char *q_ = xasprintf(__VA_ARGS__);                                                         \
        plan(s->r, q_, out, sizeof out);                                                           \
        free(q_);                                                                                  \
    } while (0)

static void test_plans(struct store *s)
{
    char p[1024];
    PLAN(p, HISTORY_COLS HISTORY_BEFORE HISTORY_RECIPIENT HISTORY_ORDER, 1, 2, 3);
    CHECK(strstr(p, "deliveries_recipient") && !strstr(p, "TEMP B-TREE"),
          "recipient: an index range, no sort");
    printf("# %s\n", p);
    PLAN(p, HISTORY_COLS HISTORY_BEFORE HISTORY_EMAIL HISTORY_ORDER, 1, 2, 3);
    CHECK(strstr(p, "deliveries_email") && !strstr(p, "TEMP B-TREE"),
          "email_id: an index range, no sort");
    printf("# %s\n", p);
    PLAN(p, HISTORY_COLS HISTORY_BEFORE HISTORY_STATE HISTORY_ORDER, 1, 2, 3);
    CHECK(strstr(p, "deliveries_state") && !strstr(p, "TEMP B-TREE"),
          "status: an index range, no sort");
    PLAN(p,
         HISTORY_COLS HISTORY_BEFORE_SCAN HISTORY_STATE_SCAN HISTORY_FROM HISTORY_TO HISTORY_ORDER,
         1, 2, 3, 4, 5);
    CHECK(strstr(p, "deliveries_updated"), "a narrow time range: through the updated_at index");
    PLAN(p,
         HISTORY_COLS HISTORY_BEFORE HISTORY_STATE HISTORY_FROM_SCAN HISTORY_TO_SCAN HISTORY_ORDER,
         1, 2, 3, 4, 5);
    CHECK(strstr(p, "deliveries_state") && !strstr(p, "TEMP B-TREE"),
          "a wide one: by id within the status, no sort");
    plan(s->r, ARCHIVE_PAGE, p, sizeof p);
    CHECK(strstr(p, "deliveries_updated") && !strstr(p, "TEMP B-TREE"),
          "archive scan: the updated_at index, no sort");
}

/* read_archive - the ids of a .jsonl.gz file into ids[] (appended); -1 on a bad line */
static int read_archive(const char *path, int64_t *ids, size_t *n, size_t max)
{
    gzFile gz = gzopen(path, "rb");
    if (!gz)
        return -1;
    char line[4096];
    int rc = 0;
    while (gzgets(gz, line, sizeof line)) {
        json_object *o = json_tokener_parse(line);
        json_object *id, *mid, *st;
        if (!o || !json_object_object_get_ex(o, "id", &id) ||
            !json_object_object_get_ex(o, "message_id", &mid) ||
            !json_object_object_get_ex(o, "status", &st) || *n >= max ||
            line[strlen(line) - 1] != '\n')
            rc = -1;
        else
            ids[(*n)++] = json_object_get_int64(id);
        json_object_put(o);
    }
    gzclose(gz);
    return rc;
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void test_archive(struct store *s, int64_t e1, int64_t e2, int64_t now)
{
    char *dir = xasprintf("%s/archives", tmpdir);
    mkdir(dir, 0700);
    struct archive_config c = {.store = s, .after_days = 30, .dir = dir, .batch = 7};
    struct email_info b1, b2;
    store_get_email(s, e1, false, &b1);
    store_get_email(s, e2, false, &b2);
    int64_t cutoff = now - 30 * DAY, want[NCOPIES + 64];
    size_t nw = 0;
    for (size_t i = 0; i < ncopies; i++) {
        const struct copy *x = &copies[i];
        if (x->updated_at && x->updated_at < cutoff &&
            (x->state == DLV_SENT || x->state == DLV_DEAD || x->state == DLV_SUPPRESSED))
            want[nw++] = x->id;
    }
    long long live = count(s->r, "SELECT count(*) FROM deliveries");

    /* a mismatch (a copy changed since the scan) commits nothing */
    struct archive_span span = {
        .rows = 2, .first_upd = 0, .first_id = 0, .last_upd = cutoff, .last_id = 0};
    struct archive_entry a = {.name = "x", .store = "local"};
    CHECK_INT(store_archive_commit(s, cutoff, &span, &a), 1, "a count mismatch: 1");
    CHECK_INT(count(s->r, "SELECT count(*) FROM deliveries"), live, "and nothing deleted");
    CHECK_INT(count(s->r, "SELECT count(*) FROM archives"), 0, "and no archives row");

    int64_t files = 0, rows = 0;
    char err[256];
    CHECK_INT(archive_once(&c, now, &files, &rows, err, sizeof err), 0, "archive pass");
    CHECK_INT(rows, nw, "every old final-state copy moved");
    CHECK_INT(files, (nw + 6) / 7, "files of at most 7 copies");
    CHECK_INT(count(s->r, "SELECT count(*) FROM deliveries"), live - (long long)nw,
              "the live table shrank by exactly those");
    char q[256];
    snprintf(q, sizeof q,
             "SELECT count(*) FROM deliveries WHERE updated_at < %lld AND state IN (2, 4, 5)",
             (long long)cutoff);
    CHECK_INT(count(s->r, q), 0, "no old final-state copy left");
    snprintf(q, sizeof q, "SELECT count(*) FROM deliveries WHERE updated_at < %lld",
             (long long)cutoff);
    CHECK(count(s->r, q) > 0, "old copies still queued (pending, retry) stay");

    struct archive_entry *v;
    size_t n;
    store_list_archives(s, 1000, 0, &v, &n);
    CHECK_INT(n, files, "one archives row per file");
    int64_t got[NCOPIES + 64];
    size_t ng = 0, sum = 0;
    bool files_ok = true;
    for (size_t i = 0; i < n; i++) {
        char *path = xasprintf("%s/%s", dir, v[i].name);
        struct stat sb;
        size_t before = ng;
        files_ok = files_ok && stat(path, &sb) == 0 && sb.st_size == v[i].bytes &&
                   read_archive(path, got, &ng, NCOPIES + 64) == 0 &&
                   (int64_t)(ng - before) == v[i].rows && strcmp(v[i].store, "local") == 0;
        sum += (size_t)v[i].rows;
        free(path);
    }
    CHECK(files_ok, "each file: its size, its rows, one JSON object per line");
    qsort(got, ng, sizeof got[0], cmp64);
    qsort(want, nw, sizeof want[0], cmp64);
    bool same = ng == nw && sum == nw;
    for (size_t i = 0; same && i < ng; i++)
        same = got[i] == want[i];
    CHECK(same, "the files hold exactly the moved copies");
    store_archives_free(v, n);

    struct email_info a1, a2;
    store_get_email(s, e1, false, &a1);
    store_get_email(s, e2, false, &a2);
    CHECK(a1.sent == b1.sent && a1.dead == b1.dead && a1.pending == b1.pending &&
              a1.failed == b1.failed && a1.suppressed == b1.suppressed && a2.sent == b2.sent &&
              a2.dead == b2.dead,
          "emails' progress counters unchanged");
    email_info_cleanup(&a1);
    email_info_cleanup(&a2);
    email_info_cleanup(&b1);
    email_info_cleanup(&b2);

    CHECK_INT(archive_once(&c, now, &files, &rows, err, sizeof err), 0, "a second pass");
    CHECK_INT(rows + files, 0, "has nothing left to move");

    /* an orphan (file without its row) and a spool are removed, a listed file stays */
    char *orphan = xasprintf("%s/copies-0000000000001-1.jsonl.gz", dir);
    char *spool = xasprintf("%s/.spool.jsonl.gz", dir);
    FILE *f = fopen(orphan, "w");
    if (f)
        fclose(f);
    f = fopen(spool, "w");
    if (f)
        fclose(f);
    archive_clean(&c);
    CHECK(access(orphan, F_OK) != 0 && access(spool, F_OK) != 0, "orphan and spool removed");
    store_list_archives(s, 1, 0, &v, &n);
    char *kept = n ? xasprintf("%s/%s", dir, v[0].name) : xstrdup("/nonexistent");
    CHECK(access(kept, F_OK) == 0, "a listed file stays");
    store_archives_free(v, n);
    free(kept);
    free(orphan);
    free(spool);
    free(dir);
}

int main(void)
{
    if (!mkdtemp(tmpdir))
        return 1;
    char *path = xasprintf("%s/w.db", tmpdir);
    char err[256];
    struct store *s = store_open(path, err, sizeof err);
    CHECK(s != NULL, "store opened");
    if (!s)
        return test_done();
    int64_t e1 = new_email(s), e2 = new_email(s);
    int64_t now = time_now_ms(), old = now - 40 * DAY;
    /* half the copies old, half recent; every state, five recipients */
    for (int i = 0; i < NCOPIES; i++) {
        char rcpt[32];
        snprintf(rcpt, sizeof rcpt, "r%d@example.com", i % 5);
        int st = i % 6;
        int64_t base = i < NCOPIES / 2 ? old : now - 3600 * 1000;
        add_copy(s, i % 3 ? e1 : e2, rcpt, st, st == DLV_PENDING ? 0 : base + i * 1000);
    }
    /* counters as the writer would keep them */
    sqlite3_exec(s->w,
                 "UPDATE emails SET n_sent = (SELECT count(*) FROM deliveries WHERE email_id ="
                 " emails.id AND state = 2), n_dead = (SELECT count(*) FROM deliveries WHERE"
                 " email_id = emails.id AND state = 4)",
                 NULL, NULL, NULL);
    test_filters(s, e1, e2, old);
    test_row_shape(s, e1);
    test_cursor();
    test_plans(s);
    test_paging(s, e1);
    test_archive(s, e1, e2, now);
    store_free(s);
    free(path);
    char *rm = xasprintf("rm -rf %s", tmpdir);
    if (system(rm) != 0)
        printf("# could not remove %s\n", tmpdir);
    free(rm);
    return test_done();
}
