/* store_cluster.c - heartbeats, dead instances' leases, shared controls
 * (store_cluster.h). On PostgreSQL every function runs on the cluster
 * connection (s->cq, under c_lock); on SQLite there is nothing to share. */
#include "store_cluster.h"
#include "log.h"
#include "store.h"
#include "store_int.h"

#include <stdatomic.h>

static int beat(struct store *s, int64_t now_ms, int *live, int64_t *supp_version)
{
    struct sqldb_stmt *up =
        sqldb_prepare(s->cq, "INSERT INTO instances(id, started_ms, seen_ms) VALUES(?1, ?2, ?2)"
                             " ON CONFLICT (id) DO UPDATE SET seen_ms = excluded.seen_ms");
    struct sqldb_stmt *cnt =
        sqldb_prepare(s->cq, "SELECT (SELECT count(*) FROM instances WHERE seen_ms > ?1),"
                             " (SELECT supp_version FROM fanout_counts WHERE id = 1)");
    int rc = -1;
    if (up && cnt) {
        sqldb_bind_text(up, 1, s->instance, -1);
        sqldb_bind_int64(up, 2, now_ms);
        sqldb_bind_int64(cnt, 1, now_ms - STORE_DEAD_MS);
        if (sqldb_run(up) == 0 && sqldb_step(cnt) == SQLDB_ROW) {
            *live = (int)sqldb_column_int64(cnt, 0);
            *supp_version = sqldb_column_int64(cnt, 1);
            rc = 0;
        }
    }
    sqldb_finalize(up);
    sqldb_finalize(cnt);
    return rc;
}

int store_cluster_beat(struct store *s, int64_t now_ms, int *live, int64_t *supp_version)
{
    *live = 1;
    *supp_version = 0;
    if (!s->pg)
        return 0;
    pthread_mutex_lock(&s->c_lock);
    int rc = sqldb_ok(s->cq) ? beat(s, now_ms, live, supp_version) : -1;
    pthread_mutex_unlock(&s->c_lock);
    if (rc != 0 || *live < 1)
        *live = 1;
    return rc;
}

int store_release_dead(struct store *s, int64_t now_ms, int64_t *released)
{
    *released = 0;
    if (!s->pg)
        return 0;
    pthread_mutex_lock(&s->c_lock);
    struct sqldb_stmt *st = sqldb_prepare(
        s->cq, "UPDATE deliveries SET state = CASE WHEN attempts = 0 THEN 0 ELSE 3 END,"
               " due_at = 0, lease_owner = NULL WHERE state = 1 AND (lease_owner IS NULL"
               " OR lease_owner NOT IN (SELECT id FROM instances WHERE seen_ms > ?1))");
    struct sqldb_stmt *gone = sqldb_prepare(s->cq, "DELETE FROM instances WHERE seen_ms < ?1");
    int rc = -1;
    if (st && gone) {
        sqldb_bind_int64(st, 1, now_ms - STORE_DEAD_MS);
        sqldb_bind_int64(gone, 1, now_ms - STORE_DEAD_MS);
        if (sqldb_run(st) == 0) {
            *released = sqldb_changes(s->cq);
            rc = sqldb_run(gone);
        }
    }
    sqldb_finalize(st);
    sqldb_finalize(gone);
    pthread_mutex_unlock(&s->c_lock);
    return rc;
}

void store_cluster_leave(struct store *s)
{
    if (!s->pg || !s->cq)
        return;
    pthread_mutex_lock(&s->c_lock);
    struct sqldb_stmt *st = sqldb_prepare(s->cq, "DELETE FROM instances WHERE id = ?");
    if (st) {
        sqldb_bind_text(st, 1, s->instance, -1);
        sqldb_run(st);
    }
    sqldb_finalize(st);
    pthread_mutex_unlock(&s->c_lock);
}

void store_supp_moved(struct store *s)
{
    atomic_fetch_add(&s->supp_epoch, 1);
}

int store_email_controls(struct store *s, struct email_control *out, size_t max, size_t *n)
{
    *n = 0;
    if (!s->pg)
        return 0;
    pthread_mutex_lock(&s->c_lock);
    struct sqldb_stmt *st =
        sqldb_prepare(s->cq, "SELECT id, paused, tpm FROM emails"
                             " WHERE n_pending + n_failed + fan_left > 0 ORDER BY id LIMIT ?");
    int r = -1;
    if (st) {
        sqldb_bind_int64(st, 1, (int64_t)max);
        while ((r = sqldb_step(st)) == SQLDB_ROW && *n < max) {
            struct email_control *c = &out[(*n)++];
            c->id = sqldb_column_int64(st, 0);
            c->paused = sqldb_column_int64(st, 1) != 0;
            c->tpm = (int)sqldb_column_int64(st, 2);
        }
    }
    sqldb_finalize(st);
    pthread_mutex_unlock(&s->c_lock);
    return r == SQLDB_DONE ? 0 : -1;
}

/* lock_call - one pg_(try_)advisory_(un)lock on the cluster connection */
static bool lock_call(struct store *s, const char *sql, int64_t key)
{
    pthread_mutex_lock(&s->c_lock);
    struct sqldb_stmt *st = sqldb_prepare(s->cq, sql);
    bool got = false;
    if (st) {
        sqldb_bind_int64(st, 1, key);
        got = sqldb_step(st) == SQLDB_ROW && sqldb_column_int64(st, 0) != 0;
    }
    sqldb_finalize(st);
    pthread_mutex_unlock(&s->c_lock);
    return got;
}

bool store_cluster_try(struct store *s, int64_t key)
{
    return !s->pg || lock_call(s, "SELECT pg_try_advisory_lock(?)", key);
}

void store_cluster_release(struct store *s, int64_t key)
{
    if (s->pg)
        lock_call(s, "SELECT pg_advisory_unlock(?)", key);
}

const char *store_instance(const struct store *s)
{
    return s->instance;
}
