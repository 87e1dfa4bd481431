/* store_identities.c - the SQLite backend of store.h for sending
 * identities (tables identities and identity_providers, migration 6):
 * create, read, list, operator pause and resume, and the placement
 * summaries with each provider's state. Locks as in store.c (w_lock for
 * the writer connection, r_lock for the reader); every write is one
 * transaction. Statements run once per request or batch and are prepared
 * per call. */
#include "db.h"
#include "log.h"
#include "store.h"
#include "store_int.h"
#include "xalloc.h"

#include <stdlib.h>
#include <string.h>

#define IDENTITY_COLS                                                                              \
    "id, address, name, smtp_client, ramp_start_per_day, ramp_growth_pct, ramp_max_per_day,"       \
    " ramp_start_day, win_start_min, win_end_min, tz, paused, paused_reason, created_at"
#define PROVIDER_COLS                                                                              \
    "provider, state, reason, since_ms, grace_until_ms, checked, inbox_rate, spam_rate,"           \
    " bounce_rate, complaint_rate"

void identity_cleanup(struct identity *x)
{
    if (!x)
        return;
    free(x->address);
    free(x->name);
    free(x->smtp_client);
    free(x->tz);
    free(x->paused_reason);
    free(x->created_at);
    for (size_t i = 0; i < x->nproviders; i++) {
        free(x->providers[i].provider);
        free(x->providers[i].state);
        free(x->providers[i].reason);
    }
    free(x->providers);
    memset(x, 0, sizeof *x);
}

void store_identities_free(struct identity *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        identity_cleanup(&v[i]);
    free(v);
}

int store_create_identity(struct store *s, const struct identity_spec *spec, int64_t *id)
{
    int rc = -1;
    *id = 0;
    pthread_mutex_lock(&s->w_lock);
    struct sqldb_stmt *st =
        sqldb_prepare(s->wq, "INSERT INTO identities(address, name, smtp_client,"
                             " ramp_start_per_day, ramp_growth_pct, ramp_max_per_day,"
                             " ramp_start_day, win_start_min, win_end_min, tz,"
                             " created_at) VALUES(?,?,?,?,?,?,?,?,?,?,?)"
                             " ON CONFLICT DO NOTHING RETURNING id");
    if (!st || sqldb_begin(s->wq) != 0)
        goto out;
    sqldb_bind_text(st, 1, spec->address, -1);
    sqldb_bind_text(st, 2, spec->name, -1); /* NULL binds NULL */
    sqldb_bind_text(st, 3, spec->smtp_client, -1);
    if (spec->has_ramp) {
        sqldb_bind_int64(st, 4, spec->ramp.start_per_day);
        sqldb_bind_double(st, 5, spec->ramp.growth_pct);
        sqldb_bind_int64(st, 6, spec->ramp.max_per_day);
        sqldb_bind_int64(st, 7, spec->ramp.start_day);
    }
    if (spec->has_window) {
        sqldb_bind_int64(st, 8, spec->win_start_min);
        sqldb_bind_int64(st, 9, spec->win_end_min);
        sqldb_bind_text(st, 10, spec->tz ? spec->tz : "UTC", -1);
    }
    sqldb_bind_text(st, 11, spec->created_at, -1);
    int r = sqldb_step(st);
    if (r < 0)
        goto out;
    if (r == SQLDB_DONE) { /* the address has an identity */
        rc = 1;
        goto out;
    }
    *id = sqldb_column_int64(st, 0);
    sqldb_reset(st);
    rc = sqldb_commit(s->wq);
    if (rc != 0)
        *id = 0;
out:
    if (rc != 0)
        sqldb_rollback(s->wq);
    sqldb_finalize(st);
    pthread_mutex_unlock(&s->w_lock);
    return rc;
}

/* read_identity - one row of IDENTITY_COLS into x */
static void read_identity(struct sqldb_stmt *st, struct identity *x)
{
    memset(x, 0, sizeof *x);
    x->id = sqldb_column_int64(st, 0);
    x->address = store_qcol_str(st, 1);
    x->name = store_qcol_dup(st, 2);
    x->smtp_client = store_qcol_dup(st, 3);
    x->has_ramp = !sqldb_column_null(st, 4);
    if (x->has_ramp) {
        x->ramp.start_per_day = sqldb_column_int64(st, 4);
        x->ramp.growth_pct = sqldb_column_double(st, 5);
        x->ramp.max_per_day = sqldb_column_int64(st, 6);
        x->ramp.start_day = sqldb_column_int64(st, 7);
    }
    x->has_window = !sqldb_column_null(st, 8);
    x->win_start_min = x->has_window ? sqldb_column_int64(st, 8) : 0;
    x->win_end_min = x->has_window ? sqldb_column_int64(st, 9) : 1440;
    x->tz = x->has_window ? store_qcol_str(st, 10) : xstrdup("UTC");
    x->paused = sqldb_column_int64(st, 11) != 0;
    x->paused_reason = store_qcol_dup(st, 12);
    x->created_at = store_qcol_str(st, 13);
}

/* read_provider - one row of PROVIDER_COLS into p */
static void read_provider(struct sqldb_stmt *st, struct identity_provider *p)
{
    p->provider = store_qcol_str(st, 0);
    p->state = store_qcol_str(st, 1);
    p->reason = store_qcol_str(st, 2);
    p->since_ms = sqldb_column_int64(st, 3);
    p->grace_until_ms = sqldb_column_int64(st, 4);
    p->checked = sqldb_column_int64(st, 5);
    p->inbox_rate = sqldb_column_double(st, 6);
    p->spam_rate = sqldb_column_double(st, 7);
    p->bounce_rate = sqldb_column_double(st, 8);
    p->complaint_rate = sqldb_column_double(st, 9);
}

/* load_providers - x's provider rows through st (bound to nothing yet);
 * SQLDB_DONE or the error */
static int load_providers(struct sqldb_stmt *st, struct identity *x)
{
    size_t cap = 0;
    int r;
    sqldb_reset(st);
    sqldb_bind_int64(st, 1, x->id);
    while ((r = sqldb_step(st)) == SQLDB_ROW) {
        x->providers = store_grow(x->providers, &cap, x->nproviders, sizeof *x->providers);
        memset(&x->providers[x->nproviders], 0, sizeof *x->providers);
        read_provider(st, &x->providers[x->nproviders++]);
    }
    sqldb_reset(st);
    return r;
}

/* get_one - the identity selected by where (one parameter: an integer id
 * or a text address) with its providers; 0, 1 none, -1 */
static int get_one(struct store *s, const char *sql, int64_t id, const char *address,
                   struct identity *out)
{
    int rc = -1;
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&s->r_lock);
    struct sqldb_stmt *st = sqldb_prepare(s->rq, sql);
    struct sqldb_stmt *pv = sqldb_prepare(s->rq, "SELECT " PROVIDER_COLS " FROM identity_providers"
                                                 " WHERE identity_id = ?1 ORDER BY provider");
    if (!st || !pv)
        goto out;
    if (address)
        sqldb_bind_text(st, 1, address, -1);
    else
        sqldb_bind_int64(st, 1, id);
    int r = sqldb_step(st);
    if (r == SQLDB_DONE) {
        rc = 1;
        goto out;
    }
    if (r != SQLDB_ROW)
        goto out;
    read_identity(st, out);
    if (load_providers(pv, out) != SQLDB_DONE) {
        identity_cleanup(out);
        goto out;
    }
    rc = 0;
out:
    if (rc < 0)
        log_error("store: reading an identity failed: %s", sqldb_errmsg(s->rq));
    sqldb_finalize(st);
    sqldb_finalize(pv);
    pthread_mutex_unlock(&s->r_lock);
    return rc;
}

int store_get_identity(struct store *s, int64_t id, struct identity *out)
{
    return get_one(s, "SELECT " IDENTITY_COLS " FROM identities WHERE id = ?1", id, NULL, out);
}

int store_identity_by_address(struct store *s, const char *address, struct identity *out)
{
    return get_one(s, "SELECT " IDENTITY_COLS " FROM identities WHERE address = ?1", 0, address,
                   out);
}

int store_list_identities(struct store *s, int64_t limit, int64_t offset, struct identity **out,
                          size_t *n)
{
    int r = -1;
    size_t cap = 0;
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&s->r_lock);
    struct sqldb_stmt *st = sqldb_prepare(s->rq, "SELECT " IDENTITY_COLS " FROM identities"
                                                 " ORDER BY id LIMIT ?1 OFFSET ?2");
    struct sqldb_stmt *pv = sqldb_prepare(s->rq, "SELECT " PROVIDER_COLS " FROM identity_providers"
                                                 " WHERE identity_id = ?1 ORDER BY provider");
    if (st && pv) {
        sqldb_bind_int64(st, 1, limit);
        sqldb_bind_int64(st, 2, offset);
        while ((r = sqldb_step(st)) == SQLDB_ROW) {
            *out = store_grow(*out, &cap, *n, sizeof **out);
            struct identity *x = &(*out)[(*n)++];
            read_identity(st, x);
            if ((r = load_providers(pv, x)) != SQLDB_DONE)
                break;
        }
    }
    sqldb_finalize(st);
    sqldb_finalize(pv);
    pthread_mutex_unlock(&s->r_lock);
    if (r != SQLDB_DONE) {
        log_error("store: listing identities failed: %s", sqldb_errmsg(s->rq));
        store_identities_free(*out, *n);
        *out = NULL;
        *n = 0;
        return -1;
    }
    return 0;
}

int store_pause_identity(struct store *s, int64_t id, const char *reason)
{
    int rc = -1;
    pthread_mutex_lock(&s->w_lock);
    struct sqldb_stmt *st =
        sqldb_prepare(s->wq, "UPDATE identities SET paused = 1, paused_reason = ?2 WHERE id = ?1");
    if (st) {
        sqldb_bind_int64(st, 1, id);
        sqldb_bind_text(st, 2, reason, -1);
        if (sqldb_run(st) == 0) /* autocommit: one statement */
            rc = sqldb_changes(s->wq) ? 0 : 1;
    }
    sqldb_finalize(st);
    pthread_mutex_unlock(&s->w_lock);
    return rc;
}

int store_resume_identity(struct store *s, int64_t id, int64_t now_ms, int64_t grace_until_ms,
                          const char *reason, bool *was_paused, char ***resumed, size_t *nresumed)
{
    int rc = -1, r;
    size_t cap = 0;
    *was_paused = false;
    *resumed = NULL;
    *nresumed = 0;
    pthread_mutex_lock(&s->w_lock);
    struct sqldb_stmt *get = sqldb_prepare(s->wq, "SELECT paused FROM identities WHERE id = ?1");
    struct sqldb_stmt *upd = sqldb_prepare(
        s->wq, "UPDATE identities SET paused = 0, paused_reason = NULL WHERE id = ?1");
    struct sqldb_stmt *pv = sqldb_prepare(s->wq, "UPDATE identity_providers SET state = 'ramping',"
                                                 " reason = ?2, since_ms = ?3, grace_until_ms = ?4"
                                                 " WHERE identity_id = ?1 AND state = 'paused'"
                                                 " RETURNING provider");
    if (!get || !upd || !pv || sqldb_begin(s->wq) != 0)
        goto out;
    sqldb_bind_int64(get, 1, id);
    r = sqldb_step(get);
    if (r == SQLDB_DONE) {
        rc = 1;
        goto out;
    }
    if (r != SQLDB_ROW)
        goto out;
    *was_paused = sqldb_column_int64(get, 0) != 0;
    sqldb_bind_int64(upd, 1, id);
    if (sqldb_run(upd) != 0)
        goto out;
    sqldb_bind_int64(pv, 1, id);
    sqldb_bind_text(pv, 2, reason, -1);
    sqldb_bind_int64(pv, 3, now_ms);
    sqldb_bind_int64(pv, 4, grace_until_ms);
    while ((r = sqldb_step(pv)) == SQLDB_ROW) {
        *resumed = store_grow(*resumed, &cap, *nresumed, sizeof **resumed);
        (*resumed)[(*nresumed)++] = store_qcol_str(pv, 0);
    }
    if (r != SQLDB_DONE) {
        log_error("store: resuming identity %lld failed: %s", (long long)id, sqldb_errmsg(s->wq));
        goto out;
    }
    sqldb_reset(pv);
    rc = sqldb_commit(s->wq);
out:
    if (rc != 0) {
        sqldb_rollback(s->wq);
        for (size_t i = 0; i < *nresumed; i++)
            free((*resumed)[i]);
        free(*resumed);
        *resumed = NULL;
        *nresumed = 0;
        *was_paused = false;
    }
    sqldb_finalize(get);
    sqldb_finalize(upd);
    sqldb_finalize(pv);
    pthread_mutex_unlock(&s->w_lock);
    return rc;
}

/* apply_one - summary v (identity id) through fn onto its provider row,
 * inside the caller's transaction */
static int apply_one(struct store *s, struct sqldb_stmt *cur, struct sqldb_stmt *put,
                     const struct identity_summary *v, size_t i, int64_t id, int64_t now_ms,
                     store_summary_fn fn, void *arg)
{
    struct identity_provider was = {0}, next;
    sqldb_reset(cur);
    sqldb_bind_int64(cur, 1, id);
    sqldb_bind_text(cur, 2, v->provider, -1);
    int r = sqldb_step(cur);
    bool known = r == SQLDB_ROW;
    if (known) {
        read_provider(cur, &was);
    } else if (r == SQLDB_DONE) {
        was.provider = xstrdup(v->provider);
        was.state = xstrdup("ramping");
        was.reason = xstrdup("");
        was.since_ms = now_ms;
    } else {
        log_error("store: reading a provider state failed: %s", sqldb_errmsg(s->wq));
        sqldb_reset(cur);
        return -1;
    }
    sqldb_reset(cur);
    next = was;
    fn(arg, i, id, &was, &next);
    sqldb_reset(put);
    sqldb_bind_int64(put, 1, id);
    sqldb_bind_text(put, 2, was.provider, -1);
    sqldb_bind_text(put, 3, next.state, -1);
    sqldb_bind_text(put, 4, next.reason ? next.reason : "", -1);
    sqldb_bind_int64(put, 5, next.since_ms);
    sqldb_bind_int64(put, 6, next.grace_until_ms);
    sqldb_bind_int64(put, 7, v->checked);
    sqldb_bind_double(put, 8, next.inbox_rate);
    sqldb_bind_double(put, 9, next.spam_rate);
    sqldb_bind_double(put, 10, next.bounce_rate);
    sqldb_bind_double(put, 11, next.complaint_rate);
    sqldb_bind_int64(put, 12, v->window_s);
    sqldb_bind_int64(put, 13, v->inbox);
    sqldb_bind_int64(put, 14, v->spam);
    sqldb_bind_int64(put, 15, v->bounced);
    sqldb_bind_int64(put, 16, v->complained);
    sqldb_bind_text(put, 17, v->at, -1);
    int rc = sqldb_run(put);
    sqldb_reset(put);
    free(was.provider);
    free(was.state);
    free(was.reason);
    return rc;
}

int store_apply_summaries(struct store *s, const struct identity_summary *v, size_t n,
                          int64_t now_ms, store_summary_fn fn, void *arg, int64_t *identity_ids)
{
    int rc = -1;
    for (size_t i = 0; i < n; i++)
        identity_ids[i] = 0;
    if (n == 0)
        return 0;
    pthread_mutex_lock(&s->w_lock);
    struct sqldb_stmt *who = sqldb_prepare(s->wq, "SELECT id FROM identities WHERE address = ?1");
    struct sqldb_stmt *cur = sqldb_prepare(s->wq, "SELECT " PROVIDER_COLS " FROM identity_providers"
                                                  " WHERE identity_id = ?1 AND provider = ?2");
    struct sqldb_stmt *put = sqldb_prepare(
        s->wq, "INSERT INTO identity_providers(identity_id, provider, state, reason, since_ms,"
               " grace_until_ms, checked, inbox_rate, spam_rate, bounce_rate, complaint_rate,"
               " window_s, inbox, spam, bounced, complained, summary_at)"
               " VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17)"
               " ON CONFLICT(identity_id, provider) DO UPDATE SET state = ?3, reason = ?4,"
               " since_ms = ?5, grace_until_ms = ?6, checked = ?7, inbox_rate = ?8,"
               " spam_rate = ?9, bounce_rate = ?10, complaint_rate = ?11, window_s = ?12,"
               " inbox = ?13, spam = ?14, bounced = ?15, complained = ?16, summary_at = ?17");
    if (!who || !cur || !put || sqldb_begin(s->wq) != 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        sqldb_reset(who);
        sqldb_bind_text(who, 1, v[i].address, -1);
        int r = sqldb_step(who);
        int64_t id = r == SQLDB_ROW ? sqldb_column_int64(who, 0) : 0;
        sqldb_reset(who);
        if (r != SQLDB_ROW && r != SQLDB_DONE) {
            log_error("store: looking up an identity failed: %s", sqldb_errmsg(s->wq));
            goto out;
        }
        if (id == 0) /* no identity: ignored */
            continue;
        if (apply_one(s, cur, put, &v[i], i, id, now_ms, fn, arg) != 0)
            goto out;
        identity_ids[i] = id;
    }
    rc = sqldb_commit(s->wq);
out:
    if (rc != 0) {
        sqldb_rollback(s->wq);
        for (size_t i = 0; i < n; i++)
            identity_ids[i] = 0;
    }
    sqldb_finalize(who);
    sqldb_finalize(cur);
    sqldb_finalize(put);
    pthread_mutex_unlock(&s->w_lock);
    return rc;
}
