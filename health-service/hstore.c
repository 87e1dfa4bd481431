/* hstore.c - health-service SQLite store: its files (opening, the shard
 * count, the reader's view of all of them), users and domains. See
 * hstore.h for the threads and hstore_int.h for the files. */
#include "hstore.h"
#include "hstore_int.h"
#include "buf.h"
#include "db.h"
#include "log.h"
#include "timeutil.h"
#include "xalloc.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static const char *const migrations[] = {
    /* 1: users seen (dedupe key of user.registered) and known domains */
    "CREATE TABLE users (email_id TEXT PRIMARY KEY, domain TEXT NOT NULL, name TEXT NOT NULL,"
    " registered_at TEXT NOT NULL);"
    "CREATE TABLE domains (domain TEXT PRIMARY KEY, users INTEGER NOT NULL DEFAULT 0,"
    " first_seen TEXT NOT NULL, last_seen TEXT NOT NULL);",
    /* 2: tracked copies, per-email aggregates, per-domain check state */
    HSTORE_COPIES_SCHEMA_SQL,
    /* 3: per-domain placement counters */
    HSTORE_DOMAIN_PLACEMENT_SQL,
    /* 4: copies_email was never read (per-email figures live in email_stats)
     * and cost a B-tree insert per tracked copy */
    "DROP INDEX IF EXISTS copies_email;",
    /* 5: copies keyed by a hash of the Message-ID (hstore_int.h) */
    HSTORE_COPIES_BY_HASH_SQL,
    /* 6: the number of files the copies are spread over */
    HSTORE_SHARDS_SQL,
};
#define N_MIGRATIONS (sizeof migrations / sizeof migrations[0])

/* the SQL function hstore_mid_hash(text) of migration 5 */
static void sql_mid_hash(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    const unsigned char *t = sqlite3_value_text(argv[0]);
    if (t)
        sqlite3_result_int64(ctx, hstore_mid_hash((const char *)t));
    else
        sqlite3_result_null(ctx);
}

/* register_mid_hash - hstore_mid_hash(text) on the writer, for migration 5 */
static int register_mid_hash(sqlite3 *w, char *errbuf, size_t errlen)
{
    if (sqlite3_create_function(w, "hstore_mid_hash", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL,
                                sql_mid_hash, NULL, NULL) == SQLITE_OK)
        return 0;
    snprintf(errbuf, errlen, "cannot register hstore_mid_hash: %s", sqlite3_errmsg(w));
    return -1;
}

void hstore_set_hash(struct hstore *s, hstore_hash_fn fn)
{
    s->hash = fn;
}

sqlite3_stmt *hstore_prepare_union(struct hstore *s, const char *head, const char *arm,
                                   const char *arm_tail, const char *tail)
{
    struct buf b;
    buf_init(&b, 64 * 1024);
    int rc = buf_printf(&b, "%s", head);
    for (int k = 0; k < s->nshards; k++)
        rc |= buf_printf(&b, "%s%s%s%s", k ? " UNION ALL " : "", arm, s->shard[k].schema, arm_tail);
    rc |= buf_printf(&b, "%s", tail);
    sqlite3_stmt *st = rc == 0 ? db_prepare(s->r, buf_str(&b)) : NULL;
    buf_cleanup(&b);
    return st;
}

int64_t hstore_read_int(struct hstore *s, sqlite3_stmt *st)
{
    int64_t n = -1;
    pthread_mutex_lock(&s->r_lock);
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    pthread_mutex_unlock(&s->r_lock);
    return n;
}

/* shard_count - file 0's shard count (store_shards), set to want if the
 * store has not chosen yet; 1..HSTORE_MAX_SHARDS, or -1 */
static int shard_count(sqlite3 *w, int want)
{
    sqlite3_stmt *st = db_prepare(w, "UPDATE store_shards SET n = ?1 WHERE n = 0");
    if (!st)
        return -1;
    sqlite3_bind_int(st, 1, want);
    int r = sqlite3_step(st);
    sqlite3_finalize(st);
    if (r != SQLITE_DONE || !(st = db_prepare(w, "SELECT n FROM store_shards")))
        return -1;
    int n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
    sqlite3_finalize(st);
    return n < 1 || n > HSTORE_MAX_SHARDS || (n & (n - 1)) ? -1 : n;
}

/* tune_writer - the page cache and checkpoints of a file's writer */
static void tune_writer(sqlite3 *w, int nshards)
{
    /* the ingest inserts copies keyed by random Message-IDs: a bigger page
     * cache on the writer saves a pread per B-tree level once the table
     * outgrows SQLite's default 2 MB (bounded: 32 MB over all files) */
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA cache_size=-%d", 32768 / nshards);
    sqlite3_exec(w, sql, NULL, NULL, NULL);
    /* an ingest commit writes thousands of pages to the WAL, so SQLite's
     * default (a checkpoint once the WAL holds 1,000 pages) checkpointed
     * after every commit, copying hot pages (B-tree interiors, the pages
     * new rows go to) to the database and syncing it each time; every
     * 10,000 pages (WAL ~40 MB or one large commit, cut back to 64 MB if
     * a checkpoint could not reset it) copies each of them less often */
    sqlite3_exec(w, "PRAGMA wal_autocheckpoint=10000", NULL, NULL, NULL);
    sqlite3_exec(w, "PRAGMA journal_size_limit=67108864", NULL, NULL, NULL);
}

/* open_file - file k > 0 (path.shard<k>): its writer, migrated, attached
 * to the reader as s<k> */
static int open_file(struct hstore *s, const char *path, int k, char *errbuf, size_t errlen)
{
    struct hshard *h = &s->shard[k];
    char file[4096];
    if ((size_t)snprintf(file, sizeof file, "%s.shard%d", path, k) >= sizeof file) {
        snprintf(errbuf, errlen, "DB_PATH is too long");
        return -1;
    }
    if (db_open(file, &h->w, errbuf, errlen) != 0 || register_mid_hash(h->w, errbuf, errlen) != 0 ||
        db_migrate(h->w, migrations, N_MIGRATIONS, errbuf, errlen) != 0)
        return -1;
    char sql[64];
    snprintf(sql, sizeof sql, "ATTACH DATABASE ?1 AS %s", h->schema);
    sqlite3_stmt *st = db_prepare(s->r, sql);
    int r = SQLITE_ERROR;
    if (st) {
        sqlite3_bind_text(st, 1, file, -1, SQLITE_STATIC);
        r = sqlite3_step(st);
        sqlite3_finalize(st);
    }
    if (r != SQLITE_DONE) {
        snprintf(errbuf, errlen, "cannot attach %s: %s", file, sqlite3_errmsg(s->r));
        return -1;
    }
    return 0;
}

/* prepare_domains - the reader's domain statements, summed over the files
 * (file 0 alone has the users and the round state) */
static int prepare_domains(struct hstore *s)
{
    static const char cols[] = "SELECT domain, users, first_seen, last_seen, tracked, checked,"
                               " last_round_at, last_error, delivered, spam, opened, read,"
                               " bounced FROM ";
    static const char sums[] = "SELECT domain, sum(users), min(first_seen), max(last_seen),"
                               " sum(tracked), sum(checked), max(last_round_at),"
                               " max(last_error), sum(delivered), sum(spam), sum(opened),"
                               " sum(read), sum(bounced) FROM (";
    s->list_domains =
        hstore_prepare_union(s, sums, cols, ".domains", ") GROUP BY domain ORDER BY domain");
    s->domain_placement = hstore_prepare_union(
        s,
        "SELECT sum(tracked), sum(delivered), sum(spam), sum(opened), sum(read),"
        " sum(bounced) FROM (",
        cols, ".domains WHERE domain = ?1", ") GROUP BY domain");
    s->count_domains = hstore_prepare_union(s, "SELECT count(DISTINCT domain) FROM (",
                                            "SELECT domain FROM ", ".domains", ")");
    s->domain_names = hstore_prepare_union(s, "SELECT DISTINCT domain FROM (",
                                           "SELECT domain FROM ", ".domains", ") ORDER BY domain");
    return s->list_domains && s->domain_placement && s->count_domains && s->domain_names ? 0 : -1;
}

struct hstore *hstore_open(const char *path, char *errbuf, size_t errlen)
{
    return hstore_open_shards(path, HSTORE_SHARDS_DEFAULT, errbuf, errlen);
}

struct hstore *hstore_open_shards(const char *path, int nshards, char *errbuf, size_t errlen)
{
    if (nshards < 1 || nshards > HSTORE_MAX_SHARDS || (nshards & (nshards - 1))) {
        snprintf(errbuf, errlen, "hstore: %d files: not a power of two up to %d", nshards,
                 HSTORE_MAX_SHARDS);
        return NULL;
    }
    struct hstore *s = xcalloc(1, sizeof *s);
    pthread_mutex_init(&s->r_lock, NULL);
    for (int k = 0; k < HSTORE_MAX_SHARDS; k++) {
        pthread_mutex_init(&s->shard[k].w_lock, NULL);
        snprintf(s->shard[k].schema, sizeof s->shard[k].schema, k ? "s%d" : "main", k);
    }
    s->hash = hstore_mid_hash;
    s->nshards = 1;
    if (db_open_store(path, migrations, N_MIGRATIONS, register_mid_hash, &s->shard[0].w, &s->r,
                      errbuf, errlen) != 0) {
        hstore_free(s);
        return NULL;
    }
    int n = shard_count(s->shard[0].w, nshards);
    if (n < 0) {
        snprintf(errbuf, errlen, "%s: no valid shard count in store_shards", path);
        hstore_free(s);
        return NULL;
    }
    for (s->nshards = 1; s->nshards < n; s->nshards++)
        if (open_file(s, path, s->nshards, errbuf, errlen) != 0) {
            s->nshards++; /* its writer, if any, is closed with the others */
            hstore_free(s);
            return NULL;
        }
    while (1 << s->shard_bits < s->nshards)
        s->shard_bits++;
    for (int k = 0; k < s->nshards; k++)
        tune_writer(s->shard[k].w, s->nshards);
    sqlite3 *w = s->shard[0].w;
    s->ins_user = db_prepare(w, "INSERT INTO users(email_id, domain, name, registered_at)"
                                " VALUES(?,?,?,?) ON CONFLICT DO NOTHING");
    s->upsert_domain = db_prepare(w, "INSERT INTO domains(domain, users, first_seen, last_seen)"
                                     " VALUES(?1, 1, ?2, ?2) ON CONFLICT(domain) DO UPDATE"
                                     " SET users = users + 1, last_seen = ?2");
    if (!s->ins_user || !s->upsert_domain || prepare_domains(s) != 0 ||
        hstore_prepare_stats(s) != 0) {
        snprintf(errbuf, errlen, "cannot prepare statements on %s", path);
        hstore_free(s);
        return NULL;
    }
    if (s->nshards > 1)
        log_info("hstore: copies spread over %d files (%s and %s.shard1..%d)", s->nshards, path,
                 path, s->nshards - 1);
    return s;
}

void hstore_free(struct hstore *s)
{
    if (!s)
        return;
    for (int k = 0; k < s->nshards; k++)
        db_close(s->shard[k].w); /* with its statements */
    db_close(s->r);
    pthread_mutex_destroy(&s->r_lock);
    for (int k = 0; k < HSTORE_MAX_SHARDS; k++)
        pthread_mutex_destroy(&s->shard[k].w_lock);
    free(s);
}

static int apply_one(struct hstore *s, const struct user_event *e, size_t *added)
{
    sqlite3_stmt *st = s->ins_user;
    sqlite3_bind_text(st, 1, e->addr.norm, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, e->addr.domain, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, e->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, e->at, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return -1;
    if (sqlite3_changes(s->shard[0].w) == 0)
        return 0; /* seen before: a redelivery */
    st = s->upsert_domain;
    sqlite3_bind_text(st, 1, e->addr.domain, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, e->at, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return -1;
    (*added)++;
    return 0;
}

int hstore_apply_events(struct hstore *s, const struct user_event *users, size_t nu,
                        const struct copy_event *copies, size_t nc, size_t *new_users,
                        size_t *new_copies)
{
    int rc = -1;
    struct hshard *h0 = &s->shard[0];
    *new_users = *new_copies = 0;
    pthread_mutex_lock(&h0->w_lock);
    if (db_begin(h0->w) != 0)
        goto out;
    for (size_t i = 0; i < nu; i++) {
        if (apply_one(s, &users[i], new_users) != 0) {
            log_error("hstore: apply failed: %s", sqlite3_errmsg(h0->w));
            goto out;
        }
    }
    if (nc > 0 && hstore_apply_copies(s, copies, nc, new_copies) != 0) {
        log_error("hstore: apply copies failed: %s", sqlite3_errmsg(h0->w));
        goto out;
    }
    rc = db_commit(h0->w);
out:
    if (rc != 0) {
        db_rollback(h0->w);
        *new_users = *new_copies = 0;
    }
    pthread_mutex_unlock(&h0->w_lock);
    return rc;
}

/* time_json - column i (ms since the epoch or NULL) as an RFC 3339
 * string or JSON null */
static json_object *time_json(sqlite3_stmt *st, int i)
{
    if (sqlite3_column_type(st, i) == SQLITE_NULL)
        return NULL;
    char at[32];
    time_rfc3339_ms(sqlite3_column_int64(st, i), at, sizeof at);
    return json_object_new_string(at);
}

json_object *hstore_domains(struct hstore *s)
{
    json_object *arr = json_object_new_array();
    int rc;
    pthread_mutex_lock(&s->r_lock);
    sqlite3_stmt *st = s->list_domains;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        json_object *d = json_object_new_object();
        json_object_object_add(d, "domain",
                               json_object_new_string((const char *)sqlite3_column_text(st, 0)));
        json_object_object_add(d, "users", json_object_new_int64(sqlite3_column_int64(st, 1)));
        json_object_object_add(d, "first_seen",
                               json_object_new_string((const char *)sqlite3_column_text(st, 2)));
        json_object_object_add(d, "last_seen",
                               json_object_new_string((const char *)sqlite3_column_text(st, 3)));
        json_object_object_add(d, "tracked", json_object_new_int64(sqlite3_column_int64(st, 4)));
        json_object_object_add(d, "checked", json_object_new_int64(sqlite3_column_int64(st, 5)));
        json_object_object_add(d, "last_round_at", time_json(st, 6));
        const unsigned char *le = sqlite3_column_text(st, 7);
        json_object_object_add(d, "last_error",
                               le ? json_object_new_string((const char *)le) : NULL);
        static const char *const counts[] = {"delivered", "spam", "opened", "read", "bounced"};
        for (int k = 0; k < 5; k++)
            json_object_object_add(d, counts[k],
                                   json_object_new_int64(sqlite3_column_int64(st, 8 + k)));
        json_object_array_add(arr, d);
    }
    sqlite3_reset(st);
    pthread_mutex_unlock(&s->r_lock);
    if (rc != SQLITE_DONE) {
        json_object_put(arr);
        return NULL;
    }
    return arr;
}

int64_t hstore_domain_count(struct hstore *s)
{
    return hstore_read_int(s, s->count_domains);
}

int hstore_domain_placement(struct hstore *s, const char *domain, struct hplacement *out)
{
    sqlite3_stmt *st = s->domain_placement;
    pthread_mutex_lock(&s->r_lock);
    sqlite3_bind_text(st, 1, domain, -1, SQLITE_STATIC);
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW)
        *out = (struct hplacement){
            .tracked = sqlite3_column_int64(st, 0),
            .delivered = sqlite3_column_int64(st, 1),
            .spam = sqlite3_column_int64(st, 2),
            .opened = sqlite3_column_int64(st, 3),
            .read = sqlite3_column_int64(st, 4),
            .bounced = sqlite3_column_int64(st, 5),
        };
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    pthread_mutex_unlock(&s->r_lock);
    return r == SQLITE_ROW ? 0 : r == SQLITE_DONE ? 1 : -1;
}

bool hstore_ping(struct hstore *s)
{
    return hstore_domain_count(s) >= 0;
}

int hstore_domain_names(struct hstore *s, char ***names, size_t *n)
{
    int r;
    size_t cap = 16;
    *n = 0;
    *names = xcalloc(cap, sizeof **names);
    pthread_mutex_lock(&s->r_lock);
    sqlite3_stmt *st = s->domain_names;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap *= 2;
            *names = xreallocarray(*names, cap, sizeof **names);
        }
        (*names)[(*n)++] = xstrdup((const char *)sqlite3_column_text(st, 0));
    }
    sqlite3_reset(st);
    pthread_mutex_unlock(&s->r_lock);
    return r == SQLITE_DONE ? 0 : -1;
}
