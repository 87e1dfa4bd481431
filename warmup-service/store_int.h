/* store_int.h - the store's private parts, shared by store.c (users) and
 * store_emails.c (emails and deliveries). Not for other modules. */
#ifndef STORE_INT_H
#define STORE_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "sqldb.h"

#include <sqlite3.h>

/* deliveries.state */
enum {
    DLV_PENDING = 0,
    DLV_LEASED = 1,
    DLV_SENT = 2,
    DLV_RETRY = 3,
    DLV_DEAD = 4,
    DLV_SUPPRESSED = 5 /* dropped: its address is on the suppression list */
};

/* schema version 2. deliveries is the durable send queue: one row per
 * recipient copy, recipient and name copied from users so a claim is one
 * statement. emails carries the progress counters, kept by the writer in
 * the same transactions as the state changes (a leased copy still counts
 * as pending or failed). */
#define STORE_EMAILS_SCHEMA_SQL                                                                    \
    "CREATE TABLE emails (id INTEGER PRIMARY KEY, message_id TEXT NOT NULL,"                       \
    " from_addr TEXT NOT NULL, from_name TEXT, subject TEXT NOT NULL, body TEXT NOT NULL,"         \
    " html TEXT, smtp_client TEXT NOT NULL, tpm INTEGER NOT NULL DEFAULT 0,"                       \
    " paused INTEGER NOT NULL DEFAULT 0, salt TEXT NOT NULL, msgid_domain TEXT NOT NULL,"          \
    " created_at TEXT NOT NULL, n_pending INTEGER NOT NULL DEFAULT 0,"                             \
    " n_sent INTEGER NOT NULL DEFAULT 0, n_failed INTEGER NOT NULL DEFAULT 0,"                     \
    " n_dead INTEGER NOT NULL DEFAULT 0);"                                                         \
    "CREATE TABLE deliveries (id INTEGER PRIMARY KEY, email_id INTEGER NOT NULL,"                  \
    " user_id INTEGER NOT NULL, recipient TEXT NOT NULL, name TEXT NOT NULL,"                      \
    " state INTEGER NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0,"                      \
    " due_at INTEGER NOT NULL DEFAULT 0, lease_until INTEGER NOT NULL DEFAULT 0,"                  \
    " last_code INTEGER, last_enhanced TEXT, last_reply TEXT, updated_at INTEGER);"                \
    "CREATE INDEX deliveries_claim ON deliveries(email_id, state, due_at);"                        \
    "CREATE INDEX deliveries_dead ON deliveries(email_id) WHERE state = 4;"

/* 3: the claim index keeps only the copies a claim takes (pending, retry).
 * A copy leaves it when claimed and a sent one never comes back, so the
 * claim is one index delete per copy and the outcome none, and the index
 * stays as small as the work left. The claim names the index's condition
 * (state IN (0, 3)), as SQLite uses a partial index only for a query that
 * states it; leased copies (state 1) are found by a scan (start-up
 * release, /reconcile). */
#define STORE_CLAIM_INDEX_SQL                                                                      \
    "DROP INDEX deliveries_claim;"                                                                 \
    "CREATE INDEX deliveries_claim ON deliveries(email_id, state, due_at) WHERE state IN (0, 3);"

/* 4: the suppression list (store_suppress.c), keyed by address without
 * case like users.email_id; rowid order is the listing order. Copies
 * dropped for a suppressed address are counted per email. */
#define STORE_SUPPRESS_SCHEMA_SQL                                                                  \
    "CREATE TABLE suppressions (address TEXT PRIMARY KEY COLLATE NOCASE, reason TEXT NOT NULL,"    \
    " at_ms INTEGER NOT NULL, email_ref INTEGER);"                                                 \
    "ALTER TABLE emails ADD COLUMN n_suppressed INTEGER NOT NULL DEFAULT 0;"

/* a suppressed address's queued copies (pending, retry) dropped at ?2
 * (ms: /history's updated_at, the archiver's age); the planner reads them
 * through the claim index of the emails with queued copies or through
 * deliveries_recipient (migration 10), whichever is smaller */
#define STORE_DROP_QUEUED_HEAD                                                                     \
    "UPDATE deliveries SET state = 5, updated_at = ?2 WHERE email_id IN"                           \
    " (SELECT id FROM emails WHERE n_pending + n_failed > 0) AND state IN (0, 3) AND "
#define STORE_DROP_QUEUED_SQL                                                                      \
    STORE_DROP_QUEUED_HEAD "recipient = ?1 COLLATE NOCASE RETURNING email_id, attempts"
/* PostgreSQL: the address matched as deliveries_recipient (store_pg.h) */
#define STORE_DROP_QUEUED_PG_SQL                                                                   \
    STORE_DROP_QUEUED_HEAD "lower(recipient::text) COLLATE \"C\" = lower(?1)"                      \
                           " RETURNING email_id, attempts"

/* 5: lanes. Each recipient domain gets a number (domains.id, its lane),
 * kept on the user and on each of its copies, so the sender can claim the
 * copies of some providers while others wait (a provider's throttle, an
 * identity paused for it). deliveries_lane is the claim index per lane;
 * deliveries_claim (id order across lanes) stays for the unconstrained
 * claim. identity_days counts the copies each identity handed to SMTP per
 * local day and lane (its quota), charged in the claim's transaction. */
#define STORE_LANES_SCHEMA_SQL                                                                     \
    "CREATE TABLE domains (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);"                    \
    "INSERT INTO domains(name) SELECT domain FROM users GROUP BY domain ORDER BY min(id);"         \
    "ALTER TABLE users ADD COLUMN lane INTEGER NOT NULL DEFAULT 0;"                                \
    "UPDATE users SET lane = (SELECT id FROM domains WHERE name = users.domain);"                  \
    "ALTER TABLE deliveries ADD COLUMN lane INTEGER NOT NULL DEFAULT 0;"                           \
    "UPDATE deliveries SET lane = coalesce((SELECT lane FROM users"                                \
    " WHERE users.id = deliveries.user_id), 0)"                                                    \
    " WHERE state IN (0, 1, 3);"                                                                   \
    "CREATE INDEX deliveries_lane ON deliveries(email_id, lane, state, due_at)"                    \
    " WHERE state IN (0, 3);"                                                                      \
    "CREATE TABLE identity_days (identity_id INTEGER NOT NULL, day INTEGER NOT NULL,"              \
    " lane INTEGER NOT NULL, sent INTEGER NOT NULL, PRIMARY KEY (identity_id, day, lane))"         \
    " WITHOUT ROWID;"

/* 6: sending identities and, per identity and recipient provider, the
 * state the placement policy gave it and the last placement.summary */
#define STORE_IDENTITIES_SCHEMA_SQL                                                                \
    "CREATE TABLE identities (id INTEGER PRIMARY KEY,"                                             \
    " address TEXT NOT NULL UNIQUE COLLATE NOCASE, name TEXT, smtp_client TEXT,"                   \
    " ramp_start_per_day INTEGER, ramp_growth_pct REAL, ramp_max_per_day INTEGER,"                 \
    " ramp_start_day INTEGER, win_start_min INTEGER, win_end_min INTEGER, tz TEXT,"                \
    " paused INTEGER NOT NULL DEFAULT 0, paused_reason TEXT, created_at TEXT NOT NULL);"           \
    "CREATE TABLE identity_providers (identity_id INTEGER NOT NULL, provider TEXT NOT NULL,"       \
    " state TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '', since_ms INTEGER NOT NULL,"            \
    " grace_until_ms INTEGER NOT NULL DEFAULT 0, checked INTEGER NOT NULL DEFAULT 0,"              \
    " inbox_rate REAL NOT NULL DEFAULT 0, spam_rate REAL NOT NULL DEFAULT 0,"                      \
    " bounce_rate REAL NOT NULL DEFAULT 0, complaint_rate REAL NOT NULL DEFAULT 0,"                \
    " window_s INTEGER, inbox INTEGER, spam INTEGER, bounced INTEGER, complained INTEGER,"         \
    " summary_at TEXT, PRIMARY KEY (identity_id, provider)) WITHOUT ROWID;"

/* 7: templates and campaigns (DESIGN 9.5).
 * - templates: immutable versions (name, version); defaults is a JSON
 *   object of placeholder values; from_addr/from_name for sends that name
 *   no sender (POST /messages, email-send).
 * - users.attributes: the user's JSON object (<= 4 KiB) or NULL; a
 *   copy's per-recipient variables travel in deliveries.data (a user's
 *   attributes copied at fan-out and backfill, a transactional message's
 *   data, an uploaded list's extra columns), so a claim reads one row.
 * - emails.kind: 0 broadcast (/send; the only kind a backfill copies),
 *   1 a campaign's variant, 2 the transactional messages of one template
 *   version, sender and priority. priority 1 (high) is claimed first.
 *   defaults: the template's defaults (JSON object) or NULL.
 * - campaigns: a draft until started; its emails (one per variant) carry
 *   campaign_id. audience and variants are the JSON as posted (checked).
 * - campaign_recipients: an uploaded list, in file order (line).
 * - uploads, upload_parts: presigned multipart uploads (UPLOAD_STORE);
 *   imports: background CSV imports (an upload's list, /users/import
 *   ?async=1) with their progress. */
#define STORE_CAMPAIGNS_SCHEMA_SQL                                                                 \
    "CREATE TABLE templates (name TEXT NOT NULL, version INTEGER NOT NULL,"                        \
    " subject TEXT NOT NULL, text TEXT NOT NULL, html TEXT, defaults TEXT NOT NULL,"               \
    " from_addr TEXT, from_name TEXT, created_at TEXT NOT NULL, PRIMARY KEY (name, version))"      \
    " WITHOUT ROWID;"                                                                              \
    "ALTER TABLE users ADD COLUMN attributes TEXT;"                                                \
    "ALTER TABLE emails ADD COLUMN kind INTEGER NOT NULL DEFAULT 0;"                               \
    "ALTER TABLE emails ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;"                           \
    "ALTER TABLE emails ADD COLUMN campaign_id INTEGER;"                                           \
    "ALTER TABLE emails ADD COLUMN variant TEXT;"                                                  \
    "ALTER TABLE emails ADD COLUMN template TEXT;"                                                 \
    "ALTER TABLE emails ADD COLUMN template_version INTEGER;"                                      \
    "ALTER TABLE emails ADD COLUMN defaults TEXT;"                                                 \
    "CREATE INDEX emails_campaign ON emails(campaign_id) WHERE campaign_id IS NOT NULL;"           \
    "ALTER TABLE deliveries ADD COLUMN data TEXT;"                                                 \
    "CREATE TABLE campaigns (id INTEGER PRIMARY KEY, name TEXT NOT NULL,"                          \
    " from_addr TEXT NOT NULL, from_name TEXT, template TEXT NOT NULL, version INTEGER NOT NULL,"  \
    " audience TEXT NOT NULL, variants TEXT, tpm INTEGER NOT NULL DEFAULT 0, smtp_client TEXT,"    \
    " state TEXT NOT NULL DEFAULT 'draft', paused INTEGER NOT NULL DEFAULT 0,"                     \
    " total INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL, started_at TEXT);"               \
    "CREATE TABLE campaign_recipients (campaign_id INTEGER NOT NULL,"                              \
    " address TEXT NOT NULL COLLATE NOCASE, name TEXT NOT NULL, domain TEXT NOT NULL,"             \
    " attributes TEXT, line INTEGER NOT NULL, PRIMARY KEY (campaign_id, address)) WITHOUT ROWID;"  \
    "CREATE TABLE uploads (id TEXT PRIMARY KEY, campaign_id INTEGER, filename TEXT NOT NULL,"      \
    " size INTEGER NOT NULL, content_type TEXT NOT NULL, part_size INTEGER NOT NULL,"              \
    " nparts INTEGER NOT NULL, backend TEXT NOT NULL, s3_upload_id TEXT, object_key TEXT,"         \
    " state TEXT NOT NULL, expires_ms INTEGER NOT NULL, created_at TEXT NOT NULL);"                \
    "CREATE TABLE upload_parts (upload_id TEXT NOT NULL, part INTEGER NOT NULL,"                   \
    " size INTEGER NOT NULL, etag TEXT NOT NULL, PRIMARY KEY (upload_id, part)) WITHOUT ROWID;"    \
    "CREATE TABLE imports (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, campaign_id INTEGER,"       \
    " upload_id TEXT, source TEXT NOT NULL, state TEXT NOT NULL, rows INTEGER NOT NULL DEFAULT 0," \
    " imported INTEGER NOT NULL DEFAULT 0, duplicates INTEGER NOT NULL DEFAULT 0,"                 \
    " invalid TEXT NOT NULL DEFAULT '[]', n_invalid INTEGER NOT NULL DEFAULT 0, error TEXT,"       \
    " resume_at INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL, updated_at TEXT);"

/* 8: transactional requests already stored, by their idempotency key
 * (an Idempotency-Key header, an email-send message's partition and
 * offset), so a request sent or delivered again makes no second copy */
#define STORE_MESSAGE_REQUESTS_SQL                                                                 \
    "CREATE TABLE message_requests (key TEXT PRIMARY KEY, email_id INTEGER NOT NULL,"              \
    " copy_id INTEGER NOT NULL) WITHOUT ROWID;"

/* 11: the instance holding a lease (leases of several instances on
 * PostgreSQL: store_pg.h) */
#define STORE_LEASE_OWNER_SQL "ALTER TABLE deliveries ADD COLUMN lease_owner TEXT;"

/* the advisory lock of store_lock_users (PostgreSQL) */
#define STORE_USERS_LOCK_KEY 0x7761726d75736572LL

/* a row id and the index of its entry in the caller's batch; sorted by id
 * (store_cmp_id_ix) to find a RETURNING row's entry with bsearch */
struct store_id_ix {
    int64_t id;
    size_t i;
};
int store_cmp_id_ix(const void *a, const void *b);

struct user_reg;
/* store_register_pg (store_users_pg.c) - PostgreSQL: the users u[0..n),
 * the backfill of the new ones and their events (topic) as one statement
 * per table, inside the caller's transaction on wq after
 * store_lock_users(s, true). result[i] as store_register_batch's;
 * backfilled[i] (may be NULL) the copies queued for u[i]. 0 or -1 (roll
 * back). */
int store_register_pg(struct store *s, const struct user_reg *const *u, size_t n, const char *topic,
                      int *result, int64_t *backfilled);

struct store {
    /* PostgreSQL (DATABASE_URL): w and r are NULL, wq and rq connect to
     * the server; instance names this process's leases and heartbeat */
    bool pg;
    char instance[96];
    /* the cluster thread's connection (PostgreSQL; store_cluster.c) */
    pthread_mutex_t c_lock;
    struct sqldb *cq;
    /* the claims' connection (PostgreSQL): a claim, its dropped copies'
     * counters and its identity charges (claim, claim_*, claim_charge)
     * run beside the outcomes' transactions on wq. NULL on SQLite, whose
     * claims take wq and w_lock. Both take identity_days rows (by lane)
     * before emails rows (by id): no deadlock between them. */
    pthread_mutex_t k_lock;
    struct sqldb *kq;
    pthread_mutex_t w_lock;
    pthread_mutex_t r_lock;
    sqlite3 *w;
    sqlite3 *r;
    /* the same two connections through sqldb.h (modules moved to it for
     * PostgreSQL use these; closed before w and r) */
    struct sqldb *wq, *rq;
    struct sqldb_stmt *ins_user;
    struct sqldb_stmt *backfill;
    struct sqldb_stmt *backfill_count;
    struct sqldb_stmt *list_users;
    struct sqldb_stmt *list_ids;
    struct sqldb_stmt *count_users;
    /* the sender's writer statements (w_lock): a claim, and a copy's
     * outcome, its release and the per-email counters of a results batch */
    struct sqldb_stmt *claim, *res_done, *res_release, *res_counters;
    /* the claim that also drops copies of suppressed addresses, the
     * outcome of a copy found suppressed by its worker, the counters of a
     * claim's dropped copies (w_lock) */
    struct sqldb_stmt *claim_chk, *res_supp, *claim_counters;
    /* the claims of a lane range (the first also drops suppressed copies),
     * an identity's day count by lane (w_lock) */
    struct sqldb_stmt *claim_lane_chk, *claim_lane, *charge, *claim_charge;
    /* a registration's lane: the domain's row, then its id (w_lock) */
    struct sqldb_stmt *ins_domain, *get_lane;
    /* suppressions stored (w_lock): while 0, fan-out, backfill and claim
     * skip the check. supp_epoch grows with every suppression (any thread
     * reads it): a claim remembers it, and its worker checks the address
     * again only when it moved (store_suppressed_since). */
    int64_t n_supp;
    _Atomic uint64_t supp_epoch;
    /* PRAGMA synchronous=NORMAL / FULL on the writer: see sync_mode */
    struct sqldb_stmt *sync_normal, *sync_full;

    /* group commit of single registrations (store_register_async) */
    pthread_t gc_thread;
    bool gc_started;
    pthread_mutex_t gc_mu;
    pthread_cond_t gc_cv;
    struct store_reg_req *gc_head, **gc_tail; /* waiting for the next commit */
    bool gc_stop;
};

/* store_insert_email - one emails row from sp (its salt drawn, its
 * message_id <email-{id}@{msgid_domain}> set, no copies counted) inside
 * the caller's transaction (w_lock held). *message_id: caller frees. 0,
 * or -1 (*message_id NULL). */
int store_insert_email(struct store *s, const struct email_spec *sp, int64_t *id,
                       char **message_id);

/* store_prepare_sender - the sender's cached writer statements (at open); 0 or -1 */
int store_prepare_sender(struct store *s);

/* store_suppress_open - count the suppressions at open; 0 or -1 */
int store_suppress_open(struct store *s);

/* store_lock_users - in the caller's transaction on the writer
 * (PostgreSQL; a no-op on SQLite, whose writer excludes every other):
 * exclusive for what must see the users and suppressions unchanged while
 * it commits (registration, suppression, a broadcast's snapshot, a
 * campaign's start), shared for a fan-out chunk. Without it, a user
 * committed after a broadcast's snapshot with an id below its fan_max
 * would get neither the fan-out's copy nor a backfill. 0 or -1. */
int store_lock_users(struct store *s, bool exclusive);

/* store_qcol_dup - column i as a heap string (caller frees), NULL for SQL
 * NULL; store_qcol_str - the same, "" for SQL NULL */
char *store_qcol_dup(struct sqldb_stmt *st, int i);
char *store_qcol_str(struct sqldb_stmt *st, int i);
/* store_grow - v with room for element n (capacity *cap, doubled) */
void *store_grow(void *v, size_t *cap, size_t n, size_t size);

#endif
