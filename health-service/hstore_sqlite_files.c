/* hstore_sqlite_files.c - the SQLite store's files: opening and migrating
 * them, the shard count, each extra file's writer thread, the reader
 * connection that attaches every file, statements over all of them, the
 * Message-ID hash. The lowest layer of the backend (hstore_sqlite.h);
 * called at open and close (one thread), for reads under r_lock, and
 * hsqlite_post/hsqlite_wait by the consumer's writer.
 *
 * Thread "hstore-s<k>" (one per file k > 0 of a store of several): waits
 * for a job (a batch's part for its file), runs it, says done; the same
 * thread for the store's life, so a batch costs a wake-up per file, not a
 * thread start. */
#include "hstore_sqlite.h"
#include "errbuf.h"
#include "buf.h"
#include "db.h"
#include "log.h"
#include "xalloc.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

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
    /* 5: copies keyed by a hash of the Message-ID (hstore_sqlite.h) */
    HSTORE_COPIES_BY_HASH_SQL,
    /* 6: the number of files the copies are spread over */
    HSTORE_SHARDS_SQL,
    /* 7: bounce and complaint reports */
    HSTORE_FEEDBACK_SQL,
    /* 8: each copy's identity and when it was first found */
    HSTORE_PLACEMENT_SQL,
    /* 9: an email's copies by sending time (reconciliation) */
    HSTORE_RECON_SQL,
    /* 10: unchecked and rescued copies */
    HSTORE_UNCHECKED_SQL,
    /* 11: campaigns and variants, the /analytics counts */
    HSTORE_ANALYTICS_SQL,
};
#define N_MIGRATIONS (sizeof migrations / sizeof migrations[0])

int64_t hsqlite_mid_hash(const char *message_id)
{
    uint64_t h = 1469598103934665603u; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)message_id; *p; p++)
        h = (h ^ *p) * 1099511628211u;
    int64_t v;
    memcpy(&v, &h, sizeof v); /* two's complement: the full 64 bits as an SQLite integer */
    return v;
}

/* the SQL function hstore_mid_hash(text) of migration 5 */
static void sql_mid_hash(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    const unsigned char *t = sqlite3_value_text(argv[0]);
    if (t)
        sqlite3_result_int64(ctx, hsqlite_mid_hash((const char *)t));
    else
        sqlite3_result_null(ctx);
}

/* register_mid_hash - hstore_mid_hash(text) on the writer, for migration 5 */
static int register_mid_hash(sqlite3 *w, char *errbuf, size_t errlen)
{
    if (sqlite3_create_function(w, "hstore_mid_hash", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL,
                                sql_mid_hash, NULL, NULL) == SQLITE_OK)
        return 0;
    errbuf_set(errbuf, errlen, "cannot register hstore_mid_hash: %s", sqlite3_errmsg(w));
    return -1;
}

sqlite3_stmt *hsqlite_prepare_union(struct hsqlite *s, const char *head, const char *arm,
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

int64_t hsqlite_read_int(struct hsqlite *s, sqlite3_stmt *st)
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
    /* an ingest commit writes thousands of pages to the WAL: with SQLite's
     * default (a checkpoint once the WAL holds 1,000 pages) every commit
     * would be followed by a checkpoint, copying the hot pages (B-tree
     * interiors, the pages new rows go to) and syncing the database each
     * time; at 10,000 pages (about one large commit; the WAL cut back to
     * 64 MiB when a checkpoint could not reset it) each is copied less
     * often */
    sqlite3_exec(w, "PRAGMA wal_autocheckpoint=10000", NULL, NULL, NULL);
    sqlite3_exec(w, "PRAGMA journal_size_limit=67108864", NULL, NULL, NULL);
}

/* open_file - file k > 0 (path.shard<k>): its writer, migrated, attached
 * to the reader as s<k> */
static int open_file(struct hsqlite *s, const char *path, int k, char *errbuf, size_t errlen)
{
    struct hshard *h = &s->shard[k];
    char file[4096];
    if ((size_t)snprintf(file, sizeof file, "%s.shard%d", path, k) >= sizeof file) {
        errbuf_set(errbuf, errlen, "DB_PATH is too long");
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
        errbuf_set(errbuf, errlen, "cannot attach %s: %s", file, sqlite3_errmsg(s->r));
        return -1;
    }
    return 0;
}

static void *writer_main(void *arg)
{
    struct hshard *h = arg;
    char name[16];
    snprintf(name, sizeof name, "hstore-%s", h->schema); /* top -H, perf, gdb */
    pthread_setname_np(pthread_self(), name);
    pthread_mutex_lock(&h->job_lock);
    for (;;) {
        while (!h->job && !h->stop)
            pthread_cond_wait(&h->job_cv, &h->job_lock);
        if (!h->job)
            break; /* stop, and nothing left to run */
        void (*fn)(void *) = h->job;
        pthread_mutex_unlock(&h->job_lock);
        fn(h->job_arg);
        pthread_mutex_lock(&h->job_lock);
        h->job = NULL;
        h->done = true;
        pthread_cond_broadcast(&h->job_cv);
    }
    pthread_mutex_unlock(&h->job_lock);
    return NULL;
}

void hsqlite_post(struct hshard *h, void (*fn)(void *), void *arg)
{
    if (!h->has_thread) {
        fn(arg);
        return;
    }
    pthread_mutex_lock(&h->job_lock);
    h->job = fn;
    h->job_arg = arg;
    h->done = false;
    pthread_cond_broadcast(&h->job_cv);
    pthread_mutex_unlock(&h->job_lock);
}

void hsqlite_wait(struct hshard *h)
{
    if (!h->has_thread)
        return;
    pthread_mutex_lock(&h->job_lock);
    while (!h->done)
        pthread_cond_wait(&h->job_cv, &h->job_lock);
    pthread_mutex_unlock(&h->job_lock);
}

/* start_writers - the writer thread of every file k > 0 */
static int start_writers(struct hsqlite *s, char *errbuf, size_t errlen)
{
    for (int k = 1; k < s->nshards; k++) {
        struct hshard *h = &s->shard[k];
        int e = pthread_create(&h->thread, NULL, writer_main, h);
        if (e != 0) {
            errbuf_set(errbuf, errlen, "cannot start the writer thread of store file %d: %s", k,
                       strerror(e));
            return -1;
        }
        h->has_thread = true;
    }
    return 0;
}

int hsqlite_open_files(struct hsqlite *s, const char *path, int nshards, char *errbuf,
                       size_t errlen)
{
    for (int k = 0; k < HSTORE_MAX_SHARDS; k++) {
        snprintf(s->shard[k].schema, sizeof s->shard[k].schema, k ? "s%d" : "main", k);
        pthread_mutex_init(&s->shard[k].job_lock, NULL);
        pthread_cond_init(&s->shard[k].job_cv, NULL);
    }
    s->nshards = 1;
    if (db_open_store(path, migrations, N_MIGRATIONS, register_mid_hash, &s->shard[0].w, &s->r,
                      errbuf, errlen) != 0)
        return -1;
    int n = shard_count(s->shard[0].w, nshards);
    if (n < 0) {
        errbuf_set(errbuf, errlen, "%s: no valid shard count in store_shards", path);
        return -1;
    }
    for (s->nshards = 1; s->nshards < n; s->nshards++)
        if (open_file(s, path, s->nshards, errbuf, errlen) != 0) {
            s->nshards++; /* its writer, if any, is closed with the others */
            return -1;
        }
    while (1 << s->shard_bits < s->nshards)
        s->shard_bits++;
    for (int k = 0; k < s->nshards; k++)
        tune_writer(s->shard[k].w, s->nshards);
    return start_writers(s, errbuf, errlen);
}

void hsqlite_close_files(struct hsqlite *s)
{
    for (int k = 0; k < HSTORE_MAX_SHARDS; k++) {
        struct hshard *h = &s->shard[k];
        if (h->has_thread) {
            pthread_mutex_lock(&h->job_lock);
            h->stop = true;
            pthread_cond_broadcast(&h->job_cv);
            pthread_mutex_unlock(&h->job_lock);
            pthread_join(h->thread, NULL);
            h->has_thread = false;
        }
    }
    for (int k = 0; k < s->nshards; k++)
        db_close(s->shard[k].w); /* with its statements */
    db_close(s->r);
    for (int k = 0; k < HSTORE_MAX_SHARDS; k++) {
        pthread_cond_destroy(&s->shard[k].job_cv);
        pthread_mutex_destroy(&s->shard[k].job_lock);
    }
}
