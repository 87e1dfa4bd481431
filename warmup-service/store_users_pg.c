/* store_users_pg.c - registrations on PostgreSQL as one statement per
 * table for the whole batch (store_int.h: store_register_pg): a round
 * trip per user and per table bounded an import (bench/import.sh).
 * Runs on the writer connection, under w_lock, inside the caller's
 * transaction, after store_lock_users(s, true). */
#include "log.h"
#include "outbox.h"
#include "sqlarr.h"
#include "store.h"
#include "store_int.h"
#include "xalloc.h"

#include <stdlib.h>
#include <string.h>

/* the batch's new domains, in order of first appearance (their ids are
 * the lanes) */
#define DOMAINS_PG_SQL                                                                             \
    "INSERT INTO domains(name) SELECT u.d FROM unnest(?1::text[]) WITH ORDINALITY AS u(d, o)"      \
    " GROUP BY u.d ORDER BY min(u.o) ON CONFLICT DO NOTHING"

/* the users in batch order: a duplicate (registered before, or earlier in
 * the batch) is no row of RETURNING */
#define USERS_PG_SQL                                                                               \
    "INSERT INTO users(name, email_id, domain, created_at, lane, attributes)"                      \
    " SELECT u.n, u.a, u.d, u.c, dm.id, u.attr FROM unnest(?1::text[], ?2::text[], ?3::text[],"    \
    " ?4::text[], ?5::text[]) WITH ORDINALITY AS u(n, a, d, c, attr, o)"                           \
    " JOIN domains dm ON dm.name = u.d ORDER BY u.o ON CONFLICT DO NOTHING RETURNING id, email_id"

/* the backfill of the new users (ids ?1): a copy of every broadcast for
 * each address not suppressed, user by user; a row per user backfilled */
#define BACKFILL_PG_SQL                                                                            \
    "WITH ins AS (INSERT INTO deliveries(email_id, user_id, recipient, name, lane, data)"          \
    " SELECT e.id, u.id, u.email_id, u.name, u.lane, u.attributes FROM users u, emails e"          \
    " WHERE u.id = ANY(?1::bigint[]) AND e.kind = 0"                                               \
    " AND NOT EXISTS (SELECT 1 FROM suppressions WHERE address = u.email_id)"                      \
    " ORDER BY u.id, e.id RETURNING user_id)"                                                      \
    " SELECT user_id, count(*) FROM ins GROUP BY user_id"

/* every broadcast got one copy per backfilled user */
#define BACKFILL_COUNT_PG_SQL "UPDATE emails SET n_pending = n_pending + ?1 WHERE kind = 0"

struct addr_ix {
    const char *a;
    size_t i;
};

static int cmp_addr_ix(const void *x, const void *y)
{
    const struct addr_ix *p = x, *q = y;
    int c = strcmp(p->a, q->a);
    return c ? c : (p->i > q->i) - (p->i < q->i);
}

/* run_arrays - sql with v[0..n) bound as its parameters 1..n; 0 or -1 */
static int run_arrays(struct store *s, const char *sql, struct sqlarr *v, int n)
{
    struct sqldb_stmt *st = sqldb_prepare(s->wq, sql);
    int rc = st && sqlarr_bind_all(v, n, st) == 0 ? sqldb_run(st) : -1;
    sqldb_finalize(st);
    return rc;
}

/* insert_users - result[i] INSERTED or DUPLICATE; ids[0..*nids) the new
 * users' ids with their index in u, sorted by id */
static int insert_users(struct store *s, const struct user_reg *const *u, size_t n, int *result,
                        struct store_id_ix *ids, size_t *nids)
{
    struct sqlarr a[5];
    sqlarr_init_all(a, 5, 48 * n);
    for (size_t i = 0; i < n; i++) {
        sqlarr_text(&a[0], u[i]->name);
        sqlarr_text(&a[1], u[i]->address);
        sqlarr_text(&a[2], u[i]->domain);
        sqlarr_text(&a[3], u[i]->created_at);
        sqlarr_text(&a[4], u[i]->attributes);
        result[i] = STORE_DUPLICATE;
    }
    int rc = run_arrays(s, DOMAINS_PG_SQL, &a[2], 1);
    struct addr_ix *ax = xcalloc(n, sizeof *ax);
    for (size_t i = 0; i < n; i++)
        ax[i] = (struct addr_ix){u[i]->address, i};
    qsort(ax, n, sizeof *ax, cmp_addr_ix);
    struct sqldb_stmt *st = rc == 0 ? sqldb_prepare(s->wq, USERS_PG_SQL) : NULL;
    rc = -1;
    *nids = 0;
    if (st && sqlarr_bind_all(a, 5, st) == 0) {
        int row;
        while ((row = sqldb_step(st)) == SQLDB_ROW) {
            /* the row of the first input with exactly this address: a
             * later one (or another case of it) conflicted with it */
            const char *addr = sqldb_column_text(st, 1);
            size_t lo = 0, hi = n;
            while (addr && lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (strcmp(ax[mid].a, addr) < 0)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            if (!addr || lo == n || strcmp(ax[lo].a, addr) != 0 || *nids == n) {
                log_error("store: a registered address not in its batch");
                break;
            }
            result[ax[lo].i] = STORE_INSERTED;
            ids[(*nids)++] = (struct store_id_ix){sqldb_column_int64(st, 0), ax[lo].i};
        }
        rc = row == SQLDB_DONE ? 0 : -1;
    }
    sqldb_finalize(st);
    free(ax);
    sqlarr_cleanup_all(a, 5);
    qsort(ids, *nids, sizeof *ids, store_cmp_id_ix);
    return rc;
}

/* backfill - the new users' copies of earlier broadcasts and their count
 * (backfilled[i] for u[i], may be NULL); 0 or -1 */
static int backfill(struct store *s, const struct store_id_ix *ids, size_t nids,
                    int64_t *backfilled)
{
    struct sqlarr a;
    sqlarr_init(&a, 12 * nids);
    for (size_t k = 0; k < nids; k++)
        sqlarr_int(&a, ids[k].id);
    struct sqldb_stmt *st = sqldb_prepare(s->wq, BACKFILL_PG_SQL);
    int rc = -1, row = -1;
    int64_t users = 0;
    if (st && sqlarr_bind(&a, st, 1) == 0) {
        while ((row = sqldb_step(st)) == SQLDB_ROW) {
            struct store_id_ix key = {sqldb_column_int64(st, 0), 0};
            const struct store_id_ix *hit = bsearch(&key, ids, nids, sizeof *ids, store_cmp_id_ix);
            users++;
            if (hit && backfilled)
                backfilled[hit->i] = sqldb_column_int64(st, 1);
        }
        rc = row == SQLDB_DONE ? 0 : -1;
    }
    sqldb_finalize(st);
    sqlarr_cleanup(&a);
    if (rc != 0 || users == 0)
        return rc;
    st = sqldb_prepare(s->wq, BACKFILL_COUNT_PG_SQL);
    if (st) {
        sqldb_bind_int64(st, 1, users);
        rc = sqldb_run(st);
    }
    sqldb_finalize(st);
    return st ? rc : -1;
}

int store_register_pg(struct store *s, const struct user_reg *const *u, size_t n, const char *topic,
                      int *result, int64_t *backfilled)
{
    if (n == 0)
        return 0;
    struct store_id_ix *ids = xcalloc(n, sizeof *ids);
    const char **keys = xcalloc(n, sizeof *keys), **vals = xcalloc(n, sizeof *vals);
    size_t nids = 0, nev = 0;
    if (backfilled)
        memset(backfilled, 0, n * sizeof *backfilled);
    int rc = insert_users(s, u, n, result, ids, &nids);
    if (rc == 0 && nids > 0)
        rc = backfill(s, ids, nids, backfilled);
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (result[i] == STORE_INSERTED) {
            keys[nev] = u[i]->domain;
            vals[nev++] = u[i]->event;
        }
    if (rc == 0)
        rc = outbox_add_batch_q(s->wq, topic, keys, vals, nev);
    else
        log_error("store: registration of %zu users failed: %s", n, sqldb_errmsg(s->wq));
    free(ids);
    free(keys);
    free(vals);
    return rc;
}
