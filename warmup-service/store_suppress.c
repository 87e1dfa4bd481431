/* store_suppress.c - the SQLite backend of store.h for the suppression
 * list: add, one address or a batch (with the queued copies dropped and
 * the events in the same transaction), remove, read, list, and the
 * worker's late check. Locks as
 * in store.c (w_lock for the writer connection, r_lock for the reader);
 * n_supp changes under w_lock, supp_epoch after each committed addition.
 * Statements run once per request and are prepared per call. */
#include "db.h"
#include "log.h"
#include "outbox.h"
#include "store.h"
#include "store_int.h"
#include "xalloc.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

int store_suppress_open(struct store *s)
{
    int rc = -1;
    pthread_mutex_lock(&s->w_lock);
    struct sqldb_stmt *st = sqldb_prepare(s->wq, "SELECT count(*) FROM suppressions");
    if (st && sqldb_step(st) == SQLDB_ROW) {
        s->n_supp = sqldb_column_int64(st, 0);
        rc = 0;
    }
    sqldb_finalize(st);
    pthread_mutex_unlock(&s->w_lock);
    return rc;
}

void suppression_cleanup(struct suppression *x)
{
    free(x->address);
    free(x->reason);
    memset(x, 0, sizeof *x);
}

void store_suppressions_free(struct suppression *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        suppression_cleanup(&v[i]);
    free(v);
}

/* drop_queued - the address's pending and retry copies to suppressed, and
 * their emails' counters, inside the caller's transaction: one range of
 * the claim index per email with queued copies (STORE_DROP_QUEUED_SQL) */
static int drop_queued(struct store *s, const char *address, int64_t at_ms, int64_t *dropped)
{
    int rc = -1, r;
    struct sqldb_stmt *upd = NULL, *cnt = NULL;
    *dropped = 0;
    upd = sqldb_prepare(s->wq, s->pg ? STORE_DROP_QUEUED_PG_SQL : STORE_DROP_QUEUED_SQL);
    cnt = sqldb_prepare(s->wq, "UPDATE emails SET n_pending = n_pending - ?2,"
                               " n_failed = n_failed - ?3, n_suppressed = n_suppressed + ?2 + ?3"
                               " WHERE id = ?1");
    if (!upd || !cnt)
        goto out;
    /* one copy per email and address: the rows are few */
    struct {
        int64_t id, pending, failed;
    } *d = NULL;
    size_t nd = 0, cap = 0;
    sqldb_bind_text(upd, 1, address, -1);
    sqldb_bind_int64(upd, 2, at_ms);
    while ((r = sqldb_step(upd)) == SQLDB_ROW) {
        int64_t id = sqldb_column_int64(upd, 0);
        size_t i = 0;
        while (i < nd && d[i].id != id)
            i++;
        if (i == nd) {
            d = store_grow(d, &cap, nd, sizeof *d);
            d[nd].id = id;
            d[nd].pending = d[nd].failed = 0;
            nd++;
        }
        if (sqldb_column_int64(upd, 1) == 0)
            d[i].pending++;
        else
            d[i].failed++;
        (*dropped)++;
    }
    sqldb_reset(upd);
    if (r != SQLDB_DONE) {
        log_error("store: dropping queued copies failed: %s", sqldb_errmsg(s->wq));
        free(d);
        goto out;
    }
    rc = 0;
    for (size_t i = 0; i < nd && rc == 0; i++) {
        sqldb_bind_int64(cnt, 1, d[i].id);
        sqldb_bind_int64(cnt, 2, d[i].pending);
        sqldb_bind_int64(cnt, 3, d[i].failed);
        rc = sqldb_run(cnt);
        sqldb_reset(cnt);
    }
    free(d);
out:
    sqldb_finalize(upd);
    sqldb_finalize(cnt);
    return rc;
}

int store_suppress_batch(struct store *s, const struct suppress_req *r, size_t n, const char *topic,
                         int *result, int64_t *dropped)
{
    int rc = -1;
    size_t added = 0;
    for (size_t i = 0; i < n; i++) {
        dropped[i] = 0;
        result[i] = STORE_DUPLICATE;
    }
    pthread_mutex_lock(&s->w_lock);
    struct sqldb_stmt *ins =
        sqldb_prepare(s->wq, "INSERT INTO suppressions(address, reason, at_ms,"
                             " email_ref) VALUES(?,?,?,?) ON CONFLICT DO NOTHING");
    if (!ins || sqldb_begin(s->wq) != 0 || store_lock_users(s, true) != 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        sqldb_bind_text(ins, 1, r[i].address, -1);
        sqldb_bind_text(ins, 2, r[i].reason, -1);
        sqldb_bind_int64(ins, 3, r[i].at_ms);
        if (r[i].email_ref > 0)
            sqldb_bind_int64(ins, 4, r[i].email_ref);
        else
            sqldb_bind_null(ins, 4);
        int st = sqldb_run(ins);
        sqldb_reset(ins);
        if (st != 0)
            goto out;
        if (sqldb_changes(s->wq) == 0) /* already suppressed: nothing to do */
            continue;
        if (drop_queued(s, r[i].address, r[i].at_ms, &dropped[i]) != 0 ||
            outbox_add_q(s->wq, topic, r[i].domain, r[i].event) != 0)
            goto out;
        result[i] = STORE_INSERTED;
        added++;
    }
    rc = sqldb_commit(s->wq);
    if (rc == 0 && added > 0) {
        s->n_supp += (int64_t)added;
        atomic_fetch_add(&s->supp_epoch, 1);
    }
out:
    if (rc != 0) {
        sqldb_rollback(s->wq);
        for (size_t i = 0; i < n; i++) {
            dropped[i] = 0;
            result[i] = STORE_DUPLICATE;
        }
    }
    sqldb_finalize(ins);
    pthread_mutex_unlock(&s->w_lock);
    return rc;
}

int store_suppress(struct store *s, const struct suppress_req *r, const char *topic, int *result,
                   int64_t *dropped)
{
    return store_suppress_batch(s, r, 1, topic, result, dropped);
}

int store_unsuppress(struct store *s, const char *address)
{
    int rc = -1;
    pthread_mutex_lock(&s->w_lock);
    struct sqldb_stmt *st = sqldb_prepare(s->wq, "DELETE FROM suppressions WHERE address = ?1");
    if (st && sqldb_begin(s->wq) == 0) {
        sqldb_bind_text(st, 1, address, -1);
        if (store_lock_users(s, true) == 0 && sqldb_run(st) == 0) {
            rc = sqldb_changes(s->wq) ? 0 : 1;
            if (sqldb_commit(s->wq) != 0)
                rc = -1;
            else if (rc == 0)
                s->n_supp--;
        }
        if (rc < 0)
            sqldb_rollback(s->wq);
    }
    sqldb_finalize(st);
    pthread_mutex_unlock(&s->w_lock);
    return rc;
}

static void read_row(struct sqldb_stmt *st, struct suppression *x)
{
    x->address = store_qcol_str(st, 0);
    x->reason = store_qcol_str(st, 1);
    x->at_ms = sqldb_column_int64(st, 2);
}

int store_get_suppression(struct store *s, const char *address, struct suppression *out)
{
    int rc = -1;
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&s->r_lock);
    struct sqldb_stmt *st =
        sqldb_prepare(s->rq, "SELECT address, reason, at_ms FROM suppressions WHERE address = ?1");
    if (st) {
        sqldb_bind_text(st, 1, address, -1);
        int r = sqldb_step(st);
        if (r == SQLDB_ROW) {
            read_row(st, out);
            rc = 0;
        } else if (r == SQLDB_DONE) {
            rc = 1;
        }
        sqldb_finalize(st);
    }
    pthread_mutex_unlock(&s->r_lock);
    return rc;
}

int store_list_suppressions(struct store *s, int64_t limit, int64_t offset,
                            struct suppression **out, size_t *n)
{
    int r = -1;
    size_t cap = 0;
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&s->r_lock);
    struct sqldb_stmt *st = sqldb_prepare(s->rq, "SELECT address, reason, at_ms FROM suppressions"
                                                 " ORDER BY rowid LIMIT ?1 OFFSET ?2");
    if (st) {
        sqldb_bind_int64(st, 1, limit);
        sqldb_bind_int64(st, 2, offset);
        while ((r = sqldb_step(st)) == SQLDB_ROW) {
            *out = store_grow(*out, &cap, *n, sizeof **out);
            read_row(st, &(*out)[(*n)++]);
        }
        sqldb_finalize(st);
    }
    pthread_mutex_unlock(&s->r_lock);
    if (r != SQLDB_DONE) {
        store_suppressions_free(*out, *n);
        *out = NULL;
        *n = 0;
        return -1;
    }
    return 0;
}

int store_suppressed_since(struct store *s, uint64_t epoch, const char *address)
{
    if (atomic_load(&s->supp_epoch) == epoch)
        return 0;
    struct suppression x;
    int rc = store_get_suppression(s, address, &x);
    if (rc == 0)
        suppression_cleanup(&x);
    return rc == 0 ? 1 : rc == 1 ? 0 : -1;
}
