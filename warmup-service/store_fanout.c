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
/* PostgreSQL: an email another instance is fanning out is skipped */
static const char *const pick_pg_sql =
    "SELECT id, fan_cursor, fan_max FROM emails WHERE fan_cursor < fan_max AND paused = 0"
    " AND (?1 = 0 OR n_pending < ?1) ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED";
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
    struct sqldb_stmt *pick = sqldb_prepare(s->wq, s->pg ? pick_pg_sql : pick_sql);
    struct sqldb_stmt *endq = sqldb_prepare(s->wq, end_sql);
    /* another instance may have added a suppression: always checked there */
    struct sqldb_stmt *copy =
        sqldb_prepare(s->wq, s->n_supp == 0 && !s->pg ? copy_sql : copy_chk_sql);
    struct sqldb_stmt *adv = sqldb_prepare(s->wq, advance_sql);
    if (!pick || !endq || !copy || !adv)
        goto out;
    sqldb_bind_int64(pick, 1, ahead);
    r = sqldb_step(pick);
    if (r != SQLDB_ROW) {
        rc = r == SQLDB_DONE ? 0 : -1;
        goto out;
    }
    id = sqldb_column_int64(pick, 0);
    cursor = sqldb_column_int64(pick, 1);
    max = sqldb_column_int64(pick, 2);
    sqldb_bind_int64(endq, 1, cursor);
    sqldb_bind_int64(endq, 2, max);
    sqldb_bind_int64(endq, 3, size - 1);
    r = sqldb_step(endq);
    if (r == SQLDB_ROW)
        end = sqldb_column_int64(endq, 0);
    else if (r == SQLDB_DONE)
        end = max; /* the last chunk */
    else
        goto out;
    sqldb_bind_int64(copy, 1, id);
    sqldb_bind_int64(copy, 2, cursor);
    sqldb_bind_int64(copy, 3, end);
    if (sqldb_run(copy) != 0)
        goto out;
    *copies = sqldb_changes(s->wq);
    sqldb_bind_int64(adv, 1, id);
    sqldb_bind_int64(adv, 2, end);
    sqldb_bind_int64(adv, 3, *copies);
    if (sqldb_run(adv) != 0)
        goto out;
    *email_id = id;
    rc = 1;
out:
    if (rc < 0)
        log_error("store: fan-out chunk failed: %s", sqldb_errmsg(s->wq));
    sqldb_finalize(pick);
    sqldb_finalize(endq);
    sqldb_finalize(copy);
    sqldb_finalize(adv);
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
    if (sqldb_begin(s->wq) == 0) {
        rc = store_lock_users(s, false) == 0 ? chunk(s, size, ahead, email_id, copies) : -1;
        if (rc == 1 && sqldb_commit(s->wq) != 0)
            rc = -1;
        if (rc != 1)
            sqldb_rollback(s->wq);
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
    struct sqldb_stmt *st = sqldb_prepare(s->wq, eligible_sql);
    if (st && sqldb_step(st) == SQLDB_ROW)
        n = sqldb_column_int64(st, 0);
    sqldb_finalize(st);
    pthread_mutex_unlock(&s->w_lock);
    return n;
}
