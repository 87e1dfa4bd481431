/* store_fanout.c - the SQLite backend of store_fanout.h: one chunk of a
 * broadcast's background fan-out per transaction, and the count of
 * eligible recipients. Every function takes w_lock (the writer); the
 * statements run once per chunk and are prepared per call. */
#include "store_fanout.h"
#include "db.h"
#include "log.h"
#include "store.h"
#include "store_int.h"

/* the next email to fan out: ?1 the ahead bound (0: none) */
static const char *const pick_sql =
    "SELECT id, fan_cursor, fan_max FROM emails WHERE fan_cursor < fan_max AND paused = 0"
    " AND (?1 = 0 OR n_pending < ?1) ORDER BY id LIMIT 1";
/* the last user id of the chunk after ?1 (up to ?2), ?3 users long */
static const char *const end_sql =
    "SELECT id FROM users WHERE id > ?1 AND id <= ?2 ORDER BY id LIMIT 1 OFFSET ?3";
/* the chunk's copies; with no suppression stored the check is skipped */
static const char *const copy_sql =
    "INSERT INTO deliveries(email_id, user_id, recipient, name, lane, data)"
    " SELECT ?1, id, email_id, name, lane, attributes FROM users WHERE id > ?2 AND id <= ?3"
    " ORDER BY id";
static const char *const copy_chk_sql =
    "INSERT INTO deliveries(email_id, user_id, recipient, name, lane, data)"
    " SELECT ?1, id, email_id, name, lane, attributes FROM users WHERE id > ?2 AND id <= ?3"
    " AND NOT EXISTS (SELECT 1 FROM suppressions WHERE address = users.email_id) ORDER BY id";
static const char *const advance_sql =
    "UPDATE emails SET fan_cursor = ?2, n_pending = n_pending + ?3, fan_left = fan_left - ?3"
    " WHERE id = ?1";
static const char *const eligible_sql = "SELECT eligible FROM fanout_counts WHERE id = 1";

/* chunk - inside the caller's transaction: 1 done a chunk, 0 none, -1 */
static int chunk(struct store *s, int64_t size, int64_t ahead, int64_t *email_id, int64_t *copies)
{
    int rc = -1, r;
    int64_t id, cursor, max, end;
    sqlite3_stmt *pick = db_prepare(s->w, pick_sql), *endq = db_prepare(s->w, end_sql);
    sqlite3_stmt *copy = db_prepare(s->w, s->n_supp == 0 ? copy_sql : copy_chk_sql);
    sqlite3_stmt *adv = db_prepare(s->w, advance_sql);
    if (!pick || !endq || !copy || !adv)
        goto out;
    sqlite3_bind_int64(pick, 1, ahead);
    r = sqlite3_step(pick);
    if (r != SQLITE_ROW) {
        rc = r == SQLITE_DONE ? 0 : -1;
        goto out;
    }
    id = sqlite3_column_int64(pick, 0);
    cursor = sqlite3_column_int64(pick, 1);
    max = sqlite3_column_int64(pick, 2);
    sqlite3_bind_int64(endq, 1, cursor);
    sqlite3_bind_int64(endq, 2, max);
    sqlite3_bind_int64(endq, 3, size - 1);
    r = sqlite3_step(endq);
    if (r == SQLITE_ROW)
        end = sqlite3_column_int64(endq, 0);
    else if (r == SQLITE_DONE)
        end = max; /* the last chunk */
    else
        goto out;
    sqlite3_bind_int64(copy, 1, id);
    sqlite3_bind_int64(copy, 2, cursor);
    sqlite3_bind_int64(copy, 3, end);
    if (db_step(s->w, copy) != 0)
        goto out;
    *copies = sqlite3_changes(s->w);
    sqlite3_bind_int64(adv, 1, id);
    sqlite3_bind_int64(adv, 2, end);
    sqlite3_bind_int64(adv, 3, *copies);
    if (db_step(s->w, adv) != 0)
        goto out;
    *email_id = id;
    rc = 1;
out:
    if (rc < 0)
        log_error("store: fan-out chunk failed: %s", sqlite3_errmsg(s->w));
    sqlite3_finalize(pick);
    sqlite3_finalize(endq);
    sqlite3_finalize(copy);
    sqlite3_finalize(adv);
    return rc;
}

int store_fanout_step(struct store *s, int64_t size, int64_t ahead, int64_t *email_id,
                      int64_t *copies)
{
    int rc = -1;
    *email_id = 0;
    *copies = 0;
    if (size < 1)
        size = 1;
    pthread_mutex_lock(&s->w_lock);
    if (db_begin(s->w) == 0) {
        rc = chunk(s, size, ahead, email_id, copies);
        if (rc == 1 && db_commit(s->w) != 0)
            rc = -1;
        if (rc != 1)
            db_rollback(s->w);
    }
    pthread_mutex_unlock(&s->w_lock);
    if (rc != 1) {
        *email_id = 0;
        *copies = 0;
    }
    return rc;
}

int store_fanout_drain(struct store *s, int64_t size)
{
    int64_t id, n;
    int rc;
    while ((rc = store_fanout_step(s, size, 0, &id, &n)) == 1)
        ;
    return rc;
}

int64_t store_fanout_eligible(struct store *s)
{
    int64_t n = -1;
    pthread_mutex_lock(&s->w_lock);
    sqlite3_stmt *st = db_prepare(s->w, eligible_sql);
    if (st && sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->w_lock);
    return n;
}
