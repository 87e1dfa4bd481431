/* hstore_int.h - the health store's private parts, shared by hstore.c
 * (users, domains) and hstore_copies.c (tracked copies and their stats). */
#ifndef HSTORE_INT_H
#define HSTORE_INT_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdint.h>

/* schema version 2. copies: one row per copy (key: its Message-ID, so a
 * redelivered event changes nothing). email_stats: the per-email counters
 * kept in the same transactions as the copies, so /mail_stats is one row
 * read whatever the number of copies. placement: 0 not checked yet or
 * unknown, 1 not found, 2 inbox, 3 spam (enum fl_placement). */
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

/* 5: copies found by a 64-bit hash of the Message-ID (hstore_mid_hash)
 * instead of the Message-ID text. The copies table grows in arrival
 * order, but Message-IDs are random (<email-{id}.{16 random hex}@...>), so
 * every new copy lands on a random page of the Message-ID index: with the
 * text as key (~60 bytes an entry) nearly each copy of a batch dirtied its
 * own index page once the table passed a few 100,000 rows (4 GB written
 * to the WAL for 1M copies). An integer key makes the index 3.5 times
 * smaller, so a batch's inserts share pages (1.7 GB, and less with larger
 * batches). The index is UNIQUE: two different Message-IDs with the same
 * hash (never seen in practice) keep the first one's hash, and the later
 * one is stored with mid_hash NULL; lookups therefore match on
 * (mid_hash = hash OR mid_hash IS NULL) AND message_id. The rebuild keeps
 * every column and the arrival order. */
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

/* hstore_mid_hash - the copies key of a Message-ID: 64-bit FNV-1a of its
 * bytes, as a signed integer (also the SQL function hstore_mid_hash(text)
 * on the writer, for migration 5) */
typedef int64_t (*hstore_hash_fn)(const char *message_id);
int64_t hstore_mid_hash(const char *message_id);

struct hstore {
    pthread_mutex_t w_lock, r_lock;
    sqlite3 *w, *r;
    hstore_hash_fn hash; /* hstore_mid_hash; tests may use a weaker one (hstore_set_hash) */
    sqlite3_stmt *ins_user, *upsert_domain, *list_domains, *count_domains, *domain_placement;
    /* writer statements of the copy ingest, prepared on first use (w_lock) */
    sqlite3_stmt *ins_copy, *find_copy, *upd_bounce, *stats_upsert, *domain_upsert;
    sqlite3_stmt *ins_chunk; /* email.sent copies HSTORE_CHUNK at a time */
    /* reader statements of /mail_stats, prepared at open (r_lock): parsing
     * one per request cost more than running it, inside the reader lock */
    sqlite3_stmt *stats_by_id, *stats_by_bid, *stats_copy;
};

/* hstore_prepare_stats - the /mail_stats reader statements; 0 or -1 */
int hstore_prepare_stats(struct hstore *s);

/* hstore_set_hash - for tests: the store's Message-ID hash (a degenerate
 * one makes collisions). Set it right after hstore_open, before any copy. */
void hstore_set_hash(struct hstore *s, hstore_hash_fn fn);

/* email.sent copies per multi-row INSERT: one statement run (cursors,
 * halt, reset) for many rows */
#define HSTORE_CHUNK 64

struct copy_event;
struct json_object;
/* hstore_apply_copies - n copy events inside the caller's transaction
 * (writer connection, w_lock held): rows per copy, the per-email and
 * per-domain counters once per email and domain of the batch; counts new
 * copies in *added. -1 on a database error (the caller rolls back). */
int hstore_apply_copies(struct hstore *s, const struct copy_event *e, size_t n, size_t *added);
/* hstore_time_json - column i (ms since the epoch or NULL) as an RFC 3339
 * string or JSON null */
struct json_object *hstore_time_json(sqlite3_stmt *st, int i);

#endif
