/* hstore_sqlite.h - the SQLite backend of the health store, private to
 * its files: hstore_sqlite_files.c (the files, the reader's view of all of
 * them), hstore_sqlite.c (opening, the ops table, users and domains),
 * hstore_sqlite_copies.c (copy ingest), hstore_sqlite_checks.c (feedback
 * rounds), hstore_sqlite_feedback.c (bounce and complaint reports),
 * hstore_sqlite_stats.c (/mail_stats reads) and hstore_sqlite_placement.c
 * (placement by identity and provider, time to inbox),
 * hstore_sqlite_analytics.c (the /analytics counts per series and hour); also
 * tests/unit/test_hstore.c. Layers: files below the others; checks uses
 * copies' hsqlite_stats_add; hstore_sqlite.c calls every module. */
#ifndef HSTORE_SQLITE_H
#define HSTORE_SQLITE_H

#include "hstore.h"
#include "hstore_delta.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

/* schema version 2. copies: one row per copy (key: its Message-ID, so a
 * redelivered event changes nothing). email_stats: the per-email counters
 * kept in the same transactions as the copies, so /mail_stats is one row
 * read whatever the number of copies. placement: 0 not checked yet or
 * unknown, 1 not found, 2 inbox, 3 spam, 4 unchecked (enum fl_placement;
 * 4 from schema 10). */
#define HSTORE_COPIES_SCHEMA_SQL                                                                   \
    "CREATE TABLE copies (message_id TEXT PRIMARY KEY, email_id INTEGER NOT NULL,"                 \
    " broadcast_id TEXT NOT NULL, recipient TEXT NOT NULL, domain TEXT NOT NULL,"                  \
    " smtp_client TEXT NOT NULL, sent_at INTEGER NOT NULL, bounced INTEGER NOT NULL DEFAULT 0,"    \
    " smtp_reply TEXT, placement INTEGER NOT NULL DEFAULT 0, opened INTEGER NOT NULL DEFAULT 0,"   \
    " read INTEGER NOT NULL DEFAULT 0, rounds INTEGER NOT NULL DEFAULT 0, checked_at INTEGER);"    \
    "CREATE INDEX copies_email ON copies(email_id);"                                               \
    "CREATE INDEX copies_open ON copies(domain, sent_at) WHERE bounced = 0;"                       \
    "CREATE TABLE email_stats (email_id INTEGER PRIMARY KEY, broadcast_id TEXT NOT NULL,"          \
    " tracked INTEGER NOT NULL DEFAULT 0, delivered INTEGER NOT NULL DEFAULT 0,"                   \
    " spam INTEGER NOT NULL DEFAULT 0, opened INTEGER NOT NULL DEFAULT 0,"                         \
    " read INTEGER NOT NULL DEFAULT 0, bounced INTEGER NOT NULL DEFAULT 0, checked_at INTEGER);"   \
    "CREATE INDEX email_stats_broadcast ON email_stats(broadcast_id);"                             \
    "ALTER TABLE domains ADD COLUMN tracked INTEGER NOT NULL DEFAULT 0;"                           \
    "ALTER TABLE domains ADD COLUMN checked INTEGER NOT NULL DEFAULT 0;"                           \
    "ALTER TABLE domains ADD COLUMN last_round_at INTEGER;"                                        \
    "ALTER TABLE domains ADD COLUMN last_error TEXT;"

/* 3: per-domain placement counters (kept like email_stats), from what the
 * copies already say (FL_INBOX = 2, FL_SPAM = 3) */
#define HSTORE_DOMAIN_PLACEMENT_SQL                                                                \
    "ALTER TABLE domains ADD COLUMN delivered INTEGER NOT NULL DEFAULT 0;"                         \
    "ALTER TABLE domains ADD COLUMN spam INTEGER NOT NULL DEFAULT 0;"                              \
    "ALTER TABLE domains ADD COLUMN opened INTEGER NOT NULL DEFAULT 0;"                            \
    "ALTER TABLE domains ADD COLUMN read INTEGER NOT NULL DEFAULT 0;"                              \
    "ALTER TABLE domains ADD COLUMN bounced INTEGER NOT NULL DEFAULT 0;"                           \
    "UPDATE domains SET"                                                                           \
    " delivered = (SELECT count(*) FROM copies c WHERE c.domain = domains.domain"                  \
    " AND c.placement = 2),"                                                                       \
    " spam = (SELECT count(*) FROM copies c WHERE c.domain = domains.domain AND c.placement = 3)," \
    " opened = (SELECT count(*) FROM copies c WHERE c.domain = domains.domain AND c.opened = 1),"  \
    " read = (SELECT count(*) FROM copies c WHERE c.domain = domains.domain AND c.read = 1),"      \
    " bounced = (SELECT count(*) FROM copies c WHERE c.domain = domains.domain AND c.bounced = "   \
    "1);"

/* 5: copies found by a 64-bit hash of the Message-ID (hsqlite_mid_hash)
 * instead of the Message-ID text. The copies table grows in arrival
 * order, but Message-IDs are random (<email-{id}.{16 random hex}@...>), so
 * every new copy lands on a random page of the Message-ID index: with the
 * text as key nearly every copy of a large batch dirties its own index
 * page. An integer key makes the index several times smaller, so a
 * batch's inserts share pages (bench/RESULTS.md). The index is UNIQUE: two different Message-IDs
 * with the same hash (never seen in practice) keep the first one's hash, and the later one is
 * stored with mid_hash NULL; lookups therefore match on (mid_hash = hash OR mid_hash IS NULL) AND
 * message_id. The rebuild keeps every column and the arrival order. */
#define HSTORE_COPIES_BY_HASH_SQL                                                                  \
    "CREATE TABLE copies_v5 (message_id TEXT NOT NULL, mid_hash INTEGER,"                          \
    " email_id INTEGER NOT NULL, broadcast_id TEXT NOT NULL, recipient TEXT NOT NULL,"             \
    " domain TEXT NOT NULL, smtp_client TEXT NOT NULL, sent_at INTEGER NOT NULL,"                  \
    " bounced INTEGER NOT NULL DEFAULT 0, smtp_reply TEXT, placement INTEGER NOT NULL DEFAULT 0,"  \
    " opened INTEGER NOT NULL DEFAULT 0, read INTEGER NOT NULL DEFAULT 0,"                         \
    " rounds INTEGER NOT NULL DEFAULT 0, checked_at INTEGER);"                                     \
    "CREATE UNIQUE INDEX copies_mid ON copies_v5(mid_hash);"                                       \
    "INSERT OR IGNORE INTO copies_v5 SELECT message_id, hstore_mid_hash(message_id), email_id,"    \
    " broadcast_id, recipient, domain, smtp_client, sent_at, bounced, smtp_reply, placement,"      \
    " opened, read, rounds, checked_at FROM copies ORDER BY rowid;"                                \
    "INSERT INTO copies_v5 SELECT message_id, NULL, email_id, broadcast_id, recipient, domain,"    \
    " smtp_client, sent_at, bounced, smtp_reply, placement, opened, read, rounds, checked_at"      \
    " FROM copies c WHERE NOT EXISTS (SELECT 1 FROM copies_v5 n"                                   \
    " WHERE n.mid_hash = hstore_mid_hash(c.message_id) AND n.message_id = c.message_id)"           \
    " ORDER BY rowid;"                                                                             \
    "DROP TABLE copies;"                                                                           \
    "ALTER TABLE copies_v5 RENAME TO copies;"                                                      \
    "CREATE INDEX copies_open ON copies(domain, sent_at) WHERE bounced = 0;"

/* the copy with Message-ID ?2 whose hash is ?1 (see schema 5) */
#define HSTORE_COPY_MATCH "(mid_hash = ?1 OR mid_hash IS NULL) AND message_id = ?2"

/* 6: the number of copy files of the store (see struct hshard), fixed
 * when the store is made: a store that already holds copies keeps them in
 * its one file (1); a new one gets hstore_sqlite_open's count (0 until
 * then). Read from file 0 only (the other files run the same migrations). */
#define HSTORE_SHARDS_SQL                                                                          \
    "CREATE TABLE IF NOT EXISTS store_shards (n INTEGER NOT NULL);"                                \
    "INSERT INTO store_shards SELECT CASE WHEN EXISTS (SELECT 1 FROM copies) THEN 1 ELSE 0 END"    \
    " WHERE NOT EXISTS (SELECT 1 FROM store_shards);"

/* 7: bounce and complaint reports (hstore_sqlite_feedback.c): a copy a
 * report says bounced gets bounced = 1 as a dead letter does, its kind
 * ('hard' or 'soft') in bounce and the report's status and diagnostic in
 * smtp_reply; a copy reported by its recipient gets complained = 1 and the
 * report's feedback_type; email_stats and domains count complained beside
 * bounced */
#define HSTORE_FEEDBACK_SQL                                                                        \
    "ALTER TABLE copies ADD COLUMN bounce TEXT;"                                                   \
    "ALTER TABLE copies ADD COLUMN complained INTEGER NOT NULL DEFAULT 0;"                         \
    "ALTER TABLE copies ADD COLUMN feedback_type TEXT;"                                            \
    "ALTER TABLE email_stats ADD COLUMN complained INTEGER NOT NULL DEFAULT 0;"                    \
    "ALTER TABLE domains ADD COLUMN complained INTEGER NOT NULL DEFAULT 0;"

/* 8: placement per sending identity and provider (hstore_sqlite_placement.c):
 * identity, the copy's sending identity (email.sent "identity"; NULL for
 * events without one), and found_at, when a feedback loop first found the
 * copy in a folder (ms; set once, never moved by a later round; 0 for a
 * copy found before this migration: found, time unknown).
 * copy_batches: per ingest batch, the rowids of its new copies and their
 * earliest and latest sent_at. "The copies sent since T" are then one
 * rowid range of the copies table (from the first batch that holds a copy
 * sent at T or later), read without an index: any index led by sent_at or
 * email_id costs the ingest a third of its rate, as a batch is stored in
 * Message-ID hash order and its entries land all over the index's recent
 * pages (bench/RESULTS.md). A store older than this migration gets one row
 * for all its copies. */
#define HSTORE_PLACEMENT_SQL                                                                       \
    "ALTER TABLE copies ADD COLUMN identity TEXT;"                                                 \
    "ALTER TABLE copies ADD COLUMN found_at INTEGER;"                                              \
    "UPDATE copies SET found_at = 0 WHERE placement IN (2, 3);"                                    \
    "CREATE TABLE copy_batches (first_rowid INTEGER NOT NULL, last_rowid INTEGER NOT NULL,"        \
    " min_sent INTEGER NOT NULL, max_sent INTEGER NOT NULL);"                                      \
    "INSERT INTO copy_batches SELECT min(rowid), max(rowid), min(sent_at), max(sent_at)"           \
    " FROM copies HAVING count(*) > 0;"

/* the first rowid of file %1$s's copies sent at time T or later (none:
 * past every copy), for a format whose first argument is the schema: T
 * the SQL expression given */
#define HSTORE_SINCE_ROWID(t)                                                                      \
    "coalesce((SELECT min(first_rowid) FROM %1$s.copy_batches WHERE max_sent >= " t "),"           \
    " 9223372036854775807)"

/* hsqlite_mid_hash - the copies key of a Message-ID: 64-bit FNV-1a of its
 * bytes, as a signed integer (also the SQL function hstore_mid_hash(text)
 * on the writer, for migration 5) */
typedef int64_t (*hstore_hash_fn)(const char *message_id);
int64_t hsqlite_mid_hash(const char *message_id);

/* the most copy files of a store, and what a new store gets unless
 * DB_FILES says otherwise. One file is one thing to back up and one
 * atomic commit per batch; more files give each its own writer thread, so
 * a batch's B-tree inserts use every CPU and one file's commit overlaps
 * the others' inserts, at the price of a read over every file per query
 * (bench/RESULTS.md) */
#define HSTORE_MAX_SHARDS 8
#define HSTORE_SHARDS_DEFAULT 1

/* hshard - one file of the store with its writer connection. File 0 is
 * DB_PATH and also holds the users and each domain's round state; file
 * k > 0 is DB_PATH.shard<k>. All have the same schema. A copy lives in
 * the file of its key's range (hsqlite_shard_of), with the per-email
 * (email_stats) and per-domain (domains: tracked, checked and the
 * placement counters) counters of the copies in that file, kept in the
 * same transactions; the reader connection attaches every file and sums
 * them. Writes to a file hold its w_lock; a thread that holds two took
 * file 0's first (the ingest, on file k's writer thread while the
 * consumer's writer holds file 0's).
 *
 * A batch is therefore committed file by file: files k > 0 first, each
 * on its own, then file 0 with the users. Killed in between, a file that
 * committed keeps its copies and their counters together; the batch's
 * offsets were not committed, so Kafka delivers it again and each file
 * finds what it already holds. Nothing is lost or counted twice, but a
 * reader may briefly see part of a batch (tests: test_hstore's crash
 * between the commits, test_health_kill.sh). */
struct hshard {
    pthread_mutex_t w_lock;
    sqlite3 *w;
    char schema[8]; /* the file's name on the reader: main, s1, s2, ... */
    /* file k > 0 of a store of several: its writer thread "hstore-s<k>",
     * started at open and joined at close, runs one job at a time
     * (hsqlite_post, hsqlite_wait); job, done and stop under job_lock */
    pthread_t thread;
    bool has_thread, stop, done;
    pthread_mutex_t job_lock;
    pthread_cond_t job_cv;
    void (*job)(void *);
    void *job_arg;
    /* writer statements of the copy ingest, prepared on first use (w_lock) */
    sqlite3_stmt *ins_copy, *find_copy, *upd_bounce, *stats_upsert, *domain_upsert;
    sqlite3_stmt *last_rowid, *ins_range; /* a batch's copy_batches row */
    sqlite3_stmt *ins_chunk;              /* email.sent copies HSTORE_CHUNK at a time */
    /* the analytics counts (hstore_sqlite_analytics.c; w_lock) */
    sqlite3_stmt *series_find, *series_ins, *an_upsert, *copy_series;
    /* on the reader (r_lock): /mail_stats lookups in this file */
    sqlite3_stmt *stats_copy, *stats_by_id, *stats_by_bid;
};

/* the backend's state; hstore_sqlite_open makes it, hsqlite_free frees it */
struct hsqlite {
    struct hstore base; /* first: a struct hstore * is a struct hsqlite * */
    pthread_mutex_t r_lock;
    sqlite3 *r;              /* reader: file 0 as main, file k attached as s<k> */
    int nshards, shard_bits; /* nshards = 1 << shard_bits */
    struct hshard shard[HSTORE_MAX_SHARDS];
    hstore_hash_fn hash;                    /* hsqlite_mid_hash; tests may use a weaker one */
    sqlite3_stmt *ins_user, *upsert_domain; /* on file 0's writer */
    /* reader statements over every file, prepared at open (r_lock):
     * parsing one per request costs more than running it */
    sqlite3_stmt *list_domains, *count_domains, *domain_placement, *domain_names;
    sqlite3_stmt *all_stats, *tracked_count;
    sqlite3_stmt *analytics; /* hstore_sqlite_analytics.c */
    /* hstore_sqlite_placement.c: a reader of its own with every file
     * attached, so a read over many copies never holds r_lock; its
     * statements prepared at open (p_lock) */
    pthread_mutex_t p_lock;
    sqlite3 *p;
    sqlite3_stmt *placement_counts, *inbox_delays;
};

static inline struct hsqlite *hsqlite(struct hstore *s)
{
    return (struct hsqlite *)s;
}

/* hsqlite_shard_of - the file of key k: its top shard_bits bits, taken in
 * the signed order hsqlite_key_copies sorts by, so a sorted batch splits
 * into one run per file */
static inline int hsqlite_shard_of(const struct hsqlite *s, int64_t k)
{
    if (!s->shard_bits)
        return 0;
    return (int)(((uint64_t)k ^ (UINT64_C(1) << 63)) >> (64 - s->shard_bits));
}

/* ---- hstore_sqlite_files.c: the files -------------------------------- */

/* hsqlite_open_files - s's files at path (file 0, and the others its
 * store_shards row names, nshards for a new store), migrated, their
 * writers tuned, attached to the reader; 0, or -1 with errbuf (what was
 * opened is closed by hsqlite_close_files) */
int hsqlite_open_files(struct hsqlite *s, const char *path, int nshards, char *errbuf,
                       size_t errlen);
/* hsqlite_close_files - every writer thread joined, every connection
 * closed with its statements */
void hsqlite_close_files(struct hsqlite *s);
/* hsqlite_post - run fn(arg) on file h's writer thread (h has one and is
 * idle); hsqlite_wait - until it returned. A file without a thread runs
 * fn at once on the caller's, in hsqlite_post. */
void hsqlite_post(struct hshard *h, void (*fn)(void *), void *arg);
void hsqlite_wait(struct hshard *h);
/* hsqlite_prepare_union - a reader statement over every file: head, then
 * arm + schema + arm_tail for each file joined by UNION ALL, then tail;
 * NULL on error */
sqlite3_stmt *hsqlite_prepare_union(struct hsqlite *s, const char *head, const char *arm,
                                    const char *arm_tail, const char *tail);
/* hsqlite_read_int - the one integer a reader statement answers (under
 * r_lock), or -1 */
int64_t hsqlite_read_int(struct hsqlite *s, sqlite3_stmt *st);

/* ---- hstore_sqlite_copies.c: copy ingest ----------------------------- */

/* email.sent copies per multi-row INSERT: one statement run (cursors,
 * halt, reset) for many rows */
#define HSTORE_CHUNK 64

/* hsqlite_key_copies - the key_copies op */
void hsqlite_key_copies(struct hstore *store, struct copy_event *copies, size_t n);
/* hsqlite_apply_copies - the copies of a batch into their files, each
 * file's part in one transaction on its own thread (file 0's on the
 * caller's, inside the caller's transaction there: users go with it);
 * counts new copies in *added, and adds what file 0's part entered in the
 * analytics counts to entered (the caller tells hstore_counted once it
 * committed; the other files tell it after their commits). -1 if a file
 * failed (the caller rolls back file 0; the files that committed keep
 * their copies, which a redelivery of the batch then finds). File 0's
 * w_lock held. */
int hsqlite_apply_copies(struct hsqlite *s, const struct copy_event *e, size_t n, size_t *added,
                         int64_t entered[HAN_N]);
/* hsqlite_stats_add - add d to an email's counters in file h (creating
 * its row; checked_at 0: unchanged; first_sent, when not 0, lowers the
 * email's first_sent_at to it); h's w_lock held */
int hsqlite_stats_add(struct hshard *h, int64_t email_id, const char *broadcast_id,
                      int64_t first_sent, const struct hstore_delta *d, int64_t checked_at);

/* ---- hstore_sqlite_checks.c: feedback rounds ------------------------- */

/* 10: copies no loop looks at (placement 4, FL_UNCHECKED) and copies an
 * engagement moved from spam to the inbox (rescued, their placement kept
 * at 3), counted per email and per domain like the placements. Nothing
 * to rebuild: no copy had either before. Columns with a constant
 * default: SQLite adds them without rewriting a row. */
#define HSTORE_UNCHECKED_SQL                                                                       \
    "ALTER TABLE copies ADD COLUMN rescued INTEGER NOT NULL DEFAULT 0;"                            \
    "ALTER TABLE email_stats ADD COLUMN unchecked INTEGER NOT NULL DEFAULT 0;"                     \
    "ALTER TABLE email_stats ADD COLUMN rescued INTEGER NOT NULL DEFAULT 0;"                       \
    "ALTER TABLE domains ADD COLUMN unchecked INTEGER NOT NULL DEFAULT 0;"                         \
    "ALTER TABLE domains ADD COLUMN rescued INTEGER NOT NULL DEFAULT 0;"

int hsqlite_open_copies(struct hstore *store, const char *domain, int64_t since_ms, size_t max,
                        struct hstore_copy **out, size_t *n);
int hsqlite_apply_checks(struct hstore *store, const char *domain, const struct hstore_copy *c,
                         size_t n, int64_t now_ms, const char *error, bool domain_round);

/* ---- hstore_sqlite_stats.c: /mail_stats reads ------------------------ */

/* hsqlite_prepare_stats - the /mail_stats reader statements; 0 or -1 */
int hsqlite_prepare_stats(struct hsqlite *s);
int hsqlite_stats_email(struct hstore *store, int64_t email_id, const char *broadcast_id,
                        struct hstore_stats *out);
int hsqlite_stats_copy(struct hstore *store, const char *message_id, struct hstore_stats *out);
int hsqlite_all_stats(struct hstore *store, int64_t limit, int64_t offset,
                      struct hstore_stats **out, size_t *n);
int64_t hsqlite_tracked_count(struct hstore *store);

/* ---- hstore_sqlite_feedback.c: bounce and complaint reports ---------- */

int hsqlite_apply_feedback(struct hstore *store, const char *message_id,
                           const struct hstore_feedback *f, bool *changed);

/* ---- hstore_sqlite_placement.c: placement by identity and provider -- */

/* hsqlite_open_placement - the placement reader and its statements (after
 * hsqlite_open_files); 0, or -1 with errbuf. hsqlite_close_placement -
 * closes them (before hsqlite_close_files); safe after a failed open. */
int hsqlite_open_placement(struct hsqlite *s, char *errbuf, size_t errlen);
void hsqlite_close_placement(struct hsqlite *s);
int hsqlite_placement_counts(struct hstore *store, int64_t since_ms,
                             struct hstore_placement_row **out, size_t *n);
int hsqlite_inbox_delays(struct hstore *store, int64_t since_ms, struct hstore_delay_row **out,
                         size_t *n);

/* ---- hstore_sqlite_recon.c: an email's reconciliation ---------------- */

/* 9: when each email's first copy was sent (this file's), kept by the
 * ingest: an email's reconciliation reads the copies stored from there */
#define HSTORE_RECON_SQL                                                                           \
    "ALTER TABLE email_stats ADD COLUMN first_sent_at INTEGER;"                                    \
    "UPDATE email_stats SET first_sent_at = x.m FROM (SELECT email_id, min(sent_at) AS m"          \
    " FROM copies GROUP BY email_id) AS x WHERE x.email_id = email_stats.email_id;"

int hsqlite_reconcile(struct hstore *store, int64_t email_id, int64_t window_start_ms,
                      struct hstore_recon *out);
/* hsqlite_recon_sql - the reconciliation's statement over s's files: the
 * counts, or (ids) the oldest missing copies' Message-IDs; caller frees
 * (also for tests: EXPLAIN QUERY PLAN) */
char *hsqlite_recon_sql(const struct hsqlite *s, bool ids);

/* ---- hstore_sqlite_analytics.c: counts per series and sending hour -- */

/* 11: the /analytics counts (DESIGN 9.5). Each copy keeps its campaign
 * (NULL: none) and A/B variant from its email.sent event, and its series:
 * the id in analytics_series of its (recipient domain, identity,
 * campaign, variant), '' and 0 standing for none. analytics holds, per
 * series and hour of sending (sent_at / 3600000), the copies sent and how
 * many of them are delivered, spam, opened, read, bounced, complained
 * now: kept in the transactions that change the copies, so a query
 * reads a few rows per series and hour, never the copies. Counts of the
 * copies in a file live in that file (as email_stats). A store older than
 * this gets its copies' series and counts here, once. */
#define HSTORE_ANALYTICS_SQL                                                                       \
    "ALTER TABLE copies ADD COLUMN campaign INTEGER;"                                              \
    "ALTER TABLE copies ADD COLUMN variant TEXT;"                                                  \
    "ALTER TABLE copies ADD COLUMN series INTEGER;"                                                \
    "CREATE TABLE analytics_series (id INTEGER PRIMARY KEY, domain TEXT NOT NULL,"                 \
    " identity TEXT NOT NULL, campaign INTEGER NOT NULL, variant TEXT NOT NULL,"                   \
    " UNIQUE (domain, identity, campaign, variant));"                                              \
    "CREATE TABLE analytics (series INTEGER NOT NULL, hour INTEGER NOT NULL,"                      \
    " sent INTEGER NOT NULL, delivered INTEGER NOT NULL, spam INTEGER NOT NULL,"                   \
    " opened INTEGER NOT NULL, read INTEGER NOT NULL, bounced INTEGER NOT NULL,"                   \
    " complained INTEGER NOT NULL, PRIMARY KEY (series, hour)) WITHOUT ROWID;"                     \
    "INSERT INTO analytics_series(domain, identity, campaign, variant)"                            \
    " SELECT DISTINCT domain, coalesce(identity, ''), 0, '' FROM copies;"                          \
    "UPDATE copies SET series = (SELECT id FROM analytics_series s WHERE s.domain = copies.domain" \
    " AND s.identity = coalesce(copies.identity, '') AND s.campaign = 0 AND s.variant = '');"      \
    "INSERT INTO analytics SELECT series, sent_at / 3600000, count(*), sum(placement = 2),"        \
    " sum(placement = 3), sum(opened), sum(read), sum(bounced), sum(complained) FROM copies"       \
    " GROUP BY 1, 2;"

/* han_flush - b's cells into file h's analytics (h's transaction open,
 * w_lock held); 0 or -1 */
int han_flush(struct hshard *h, const struct han_batch *b);

/* a series map of one transaction: (domain, identity, campaign, variant)
 * -> analytics_series id in one file, made on first use */
struct han_series_map;
struct han_series_map *han_series_new(void);
void han_series_free(struct han_series_map *m);
/* han_series - the id of e's series in file h (made if new; h's
 * transaction open); 0 or -1 */
int han_series(struct hshard *h, struct han_series_map *m, const struct copy_event *e, int64_t *id);
/* han_copy_series - the series and sent_at of the copy at rowid in h;
 * 0 or -1 */
int han_copy_series(struct hshard *h, int64_t rowid, int64_t *series, int64_t *sent_at);
/* hsqlite_prepare_analytics - the reader's statement; 0 or -1 */
int hsqlite_prepare_analytics(struct hsqlite *s);
int hsqlite_analytics(struct hstore *store, const struct hstore_an_query *q,
                      struct hstore_an_row **out, size_t *n);

/* ---- hstore_sqlite.c ------------------------------------------------- */

/* hstore_sqlite_set_hash - for tests: the store's Message-ID hash (a
 * degenerate one makes collisions). Set it right after opening, before
 * any copy. */
void hstore_sqlite_set_hash(struct hstore *store, hstore_hash_fn fn);

#endif
