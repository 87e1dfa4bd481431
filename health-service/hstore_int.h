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

/* 6: the number of copy files of the store (see struct hshard), fixed
 * when the store is made: a store that already holds copies keeps them in
 * its one file (1); a new one gets hstore_open_shards' count (0 until
 * then). Read from file 0 only (the other files run the same migrations). */
#define HSTORE_SHARDS_SQL                                                                          \
    "CREATE TABLE IF NOT EXISTS store_shards (n INTEGER NOT NULL);"                                \
    "INSERT INTO store_shards SELECT CASE WHEN EXISTS (SELECT 1 FROM copies) THEN 1 ELSE 0 END"    \
    " WHERE NOT EXISTS (SELECT 1 FROM store_shards);"

/* hstore_mid_hash - the copies key of a Message-ID: 64-bit FNV-1a of its
 * bytes, as a signed integer (also the SQL function hstore_mid_hash(text)
 * on the writer, for migration 5) */
typedef int64_t (*hstore_hash_fn)(const char *message_id);
int64_t hstore_mid_hash(const char *message_id);

/* the most copy files of a store, and what a new store gets: one writer
 * thread per file (the ingest's B-tree inserts were one CPU's work). Four
 * did best on two CPUs (one file's commit and fsync overlap the others'
 * inserts, and each index is smaller): 1M copies from the bench's events
 * applied in 7.0 s in one file, 5.1-5.7 s in two, 4.2-4.4 s in four, 4.6 s
 * in eight */
#define HSTORE_MAX_SHARDS 8
#define HSTORE_SHARDS_DEFAULT 4

/* hshard - one file of the store with its writer connection. File 0 is
 * DB_PATH and also holds the users and each domain's round state; file
 * k > 0 is DB_PATH.shard<k>. All have the same schema. A copy lives in
 * the file of its key's range (hstore_shard_of), with the per-email
 * (email_stats) and per-domain (domains: tracked, checked and the
 * placement counters) counters of the copies in that file, kept in the
 * same transactions; the reader connection attaches every file and sums
 * them. Writes to a file hold its w_lock; a thread that holds two took
 * file 0's first (the ingest storing a small part of another file). */
struct hshard {
    pthread_mutex_t w_lock;
    sqlite3 *w;
    char schema[8]; /* the file's name on the reader: main, s1, s2, ... */
    /* writer statements of the copy ingest, prepared on first use (w_lock) */
    sqlite3_stmt *ins_copy, *find_copy, *upd_bounce, *stats_upsert, *domain_upsert;
    sqlite3_stmt *ins_chunk; /* email.sent copies HSTORE_CHUNK at a time */
    /* on the reader (r_lock): /mail_stats lookups in this file */
    sqlite3_stmt *stats_copy, *stats_by_id, *stats_by_bid;
};

struct hstore {
    pthread_mutex_t r_lock;
    sqlite3 *r;              /* reader: file 0 as main, file k attached as s<k> */
    int nshards, shard_bits; /* nshards = 1 << shard_bits */
    struct hshard shard[HSTORE_MAX_SHARDS];
    hstore_hash_fn hash; /* hstore_mid_hash; tests may use a weaker one (hstore_set_hash) */
    sqlite3_stmt *ins_user, *upsert_domain; /* on file 0's writer */
    /* reader statements over every file, prepared at open (r_lock):
     * parsing one per request cost more than running it */
    sqlite3_stmt *list_domains, *count_domains, *domain_placement, *domain_names;
    sqlite3_stmt *all_stats, *tracked_count;
};

/* hstore_shard_of - the file of key k: its top shard_bits bits, taken in
 * the signed order hstore_key_copies sorts by, so a sorted batch splits
 * into one run per file */
static inline int hstore_shard_of(const struct hstore *s, int64_t k)
{
    if (!s->shard_bits)
        return 0;
    return (int)(((uint64_t)k ^ (UINT64_C(1) << 63)) >> (64 - s->shard_bits));
}

/* hstore_prepare_union - a reader statement over every file: head, then
 * arm + schema + arm_tail for each file joined by UNION ALL, then tail;
 * NULL on error */
sqlite3_stmt *hstore_prepare_union(struct hstore *s, const char *head, const char *arm,
                                   const char *arm_tail, const char *tail);
/* hstore_read_int - the one integer a reader statement answers (under
 * r_lock), or -1 */
int64_t hstore_read_int(struct hstore *s, sqlite3_stmt *st);

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
/* hstore_apply_copies - the copies of a batch into their files, each
 * file's part in one transaction on its own thread (file 0's on the
 * caller's, inside the caller's transaction there: users go with it);
 * counts new copies in *added. -1 if a file failed (the caller rolls
 * back file 0; the files that committed keep their copies, which a
 * redelivery of the batch then finds). File 0's w_lock held. */
int hstore_apply_copies(struct hstore *s, const struct copy_event *e, size_t n, size_t *added);
/* hstore_stats_add - add deltas to an email's counters in file h
 * (creating its row; checked_at 0: unchanged); h's w_lock held */
int hstore_stats_add(struct hshard *h, int64_t email_id, const char *broadcast_id, int tracked,
                     int delivered, int spam, int opened, int read, int bounced,
                     int64_t checked_at);

#endif
