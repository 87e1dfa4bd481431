/* store_uploads.c - uploads, upload_parts, imports and campaign_recipients
 * (store_uploads.h) on the store's SQLite connections: writes on the
 * writer under w_lock, reads on the reader under r_lock. Statements are
 * prepared per call: these are a few calls per request or per batch of
 * thousands of rows (the batch's insert is prepared once per batch). */
#include "store_uploads.h"
#include "db.h"
#include "log.h"
#include "sqlarr.h"
#include "store.h"
#include "store_int.h"
#include "xalloc.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define UPLOAD_COLS                                                                                \
    "id, coalesce(campaign_id, 0), filename, content_type, backend, s3_upload_id, object_key,"     \
    " state, size, part_size, expires_ms, nparts, created_at"

#define IMPORT_COLS                                                                                \
    "id, coalesce(campaign_id, 0), kind, upload_id, source, state, rows, imported, duplicates,"    \
    " n_invalid, invalid, error, resume_at, created_at, updated_at"

void upload_row_cleanup(struct upload_row *u)
{
    if (!u)
        return;
    free(u->id);
    free(u->filename);
    free(u->content_type);
    free(u->backend);
    free(u->s3_upload_id);
    free(u->object_key);
    free(u->state);
    free(u->created_at);
    memset(u, 0, sizeof *u);
}

void import_row_cleanup(struct import_row *r)
{
    if (!r)
        return;
    free(r->kind);
    free(r->upload_id);
    free(r->source);
    free(r->state);
    free(r->invalid);
    free(r->error);
    free(r->created_at);
    free(r->updated_at);
    memset(r, 0, sizeof *r);
}

static void read_upload(struct sqldb_stmt *st, struct upload_row *u)
{
    u->id = store_qcol_str(st, 0);
    u->campaign_id = sqldb_column_int64(st, 1);
    u->filename = store_qcol_str(st, 2);
    u->content_type = store_qcol_str(st, 3);
    u->backend = store_qcol_str(st, 4);
    u->s3_upload_id = store_qcol_dup(st, 5);
    u->object_key = store_qcol_dup(st, 6);
    u->state = store_qcol_str(st, 7);
    u->size = sqldb_column_int64(st, 8);
    u->part_size = sqldb_column_int64(st, 9);
    u->expires_ms = sqldb_column_int64(st, 10);
    u->nparts = sqldb_column_int64(st, 11);
    u->created_at = store_qcol_str(st, 12);
}

static void read_import(struct sqldb_stmt *st, struct import_row *r)
{
    r->id = sqldb_column_int64(st, 0);
    r->campaign_id = sqldb_column_int64(st, 1);
    r->kind = store_qcol_str(st, 2);
    r->upload_id = store_qcol_dup(st, 3);
    r->source = store_qcol_str(st, 4);
    r->state = store_qcol_str(st, 5);
    r->rows = sqldb_column_int64(st, 6);
    r->imported = sqldb_column_int64(st, 7);
    r->duplicates = sqldb_column_int64(st, 8);
    r->n_invalid = sqldb_column_int64(st, 9);
    r->invalid = store_qcol_str(st, 10);
    r->error = store_qcol_dup(st, 11);
    r->resume_at = sqldb_column_int64(st, 12);
    r->created_at = store_qcol_str(st, 13);
    r->updated_at = store_qcol_dup(st, 14);
}

/* read_one - run a one-row query on the reader: fill() the row; 0, 1 none, -1 */
static int read_one(struct store *s, const char *sql, const char *text, int64_t num,
                    void (*fill)(struct sqldb_stmt *, void *), void *out)
{
    int rc = -1;
    pthread_mutex_lock(&s->r_lock);
    struct sqldb_stmt *st = sqldb_prepare(s->rq, sql);
    if (st) {
        if (text)
            sqldb_bind_text(st, 1, text, -1);
        else
            sqldb_bind_int64(st, 1, num);
        int r = sqldb_step(st);
        if (r == SQLDB_ROW) {
            fill(st, out);
            rc = 0;
        } else if (r == SQLDB_DONE) {
            rc = 1;
        } else {
            log_error("store: %s", sqldb_errmsg(s->rq));
        }
        sqldb_finalize(st);
    }
    pthread_mutex_unlock(&s->r_lock);
    return rc;
}

static void fill_upload(struct sqldb_stmt *st, void *out)
{
    read_upload(st, out);
}

static void fill_import(struct sqldb_stmt *st, void *out)
{
    read_import(st, out);
}

int store_upload_get(struct store *s, const char *id, struct upload_row *out)
{
    return read_one(s, "SELECT " UPLOAD_COLS " FROM uploads WHERE id = ?", id, 0, fill_upload, out);
}

int store_upload_latest(struct store *s, int64_t campaign_id, struct upload_row *out)
{
    return read_one(s,
                    "SELECT " UPLOAD_COLS " FROM uploads WHERE campaign_id = ?"
                    " ORDER BY rowid DESC LIMIT 1",
                    NULL, campaign_id, fill_upload, out);
}

int store_import_get(struct store *s, int64_t id, const char *kind, struct import_row *out)
{
    int rc =
        read_one(s, "SELECT " IMPORT_COLS " FROM imports WHERE id = ?", NULL, id, fill_import, out);
    if (rc == 0 && kind && strcmp(out->kind, kind) != 0) {
        import_row_cleanup(out);
        rc = 1;
    }
    return rc;
}

int store_import_of_upload(struct store *s, const char *upload_id, struct import_row *out)
{
    return read_one(s,
                    "SELECT " IMPORT_COLS " FROM imports WHERE upload_id = ?"
                    " ORDER BY id DESC LIMIT 1",
                    upload_id, 0, fill_import, out);
}

int store_import_next(struct store *s, struct import_row *out)
{
    return read_one(s,
                    "SELECT " IMPORT_COLS " FROM imports WHERE state IN ('queued', 'importing')"
                    " AND id > ? ORDER BY id LIMIT 1",
                    NULL, 0, fill_import, out);
}

int store_campaign_state(struct store *s, int64_t id, char **state, bool *upload_audience)
{
    int rc = -1;
    *state = NULL;
    *upload_audience = false;
    pthread_mutex_lock(&s->r_lock);
    struct sqldb_stmt *st =
        sqldb_prepare(s->rq, "SELECT state, CASE WHEN json_type(audience, '$.upload') = 'true'"
                             " THEN 1 ELSE 0 END FROM campaigns WHERE id = ?");
    if (st) {
        sqldb_bind_int64(st, 1, id);
        int r = sqldb_step(st);
        if (r == SQLDB_ROW) {
            *state = store_qcol_str(st, 0);
            *upload_audience = sqldb_column_int64(st, 1) != 0;
            rc = 0;
        } else if (r == SQLDB_DONE) {
            rc = 1;
        }
        sqldb_finalize(st);
    }
    pthread_mutex_unlock(&s->r_lock);
    return rc;
}

/* bind - bind a list: 'i' int64, 't' text (NULL: SQL NULL) */
static void bindv(struct sqldb_stmt *st, const char *types, va_list ap)
{
    for (int i = 0; types[i]; i++) {
        if (types[i] == 'i')
            sqldb_bind_int64(st, i + 1, va_arg(ap, int64_t));
        else
            sqldb_bind_text(st, i + 1, va_arg(ap, const char *), -1);
    }
}

/* wexec - one statement on the writer (w_lock held); changes or -1 */
static int64_t wexec(struct store *s, const char *sql, const char *types, ...)
{
    struct sqldb_stmt *st = sqldb_prepare(s->wq, sql);
    if (!st)
        return -1;
    va_list ap;
    va_start(ap, types);
    bindv(st, types, ap);
    va_end(ap);
    int r = sqldb_step(st);
    sqldb_finalize(st);
    if (r != SQLDB_DONE && r != SQLDB_ROW) {
        log_error("store: %s", sqldb_errmsg(s->wq));
        return -1;
    }
    return sqldb_changes(s->wq);
}

/* wscalar - an integer query on the writer (w_lock held); def when no row */
static int64_t wscalar(struct store *s, const char *sql, const char *types, ...)
{
    struct sqldb_stmt *st = sqldb_prepare(s->wq, sql);
    if (!st)
        return -1;
    va_list ap;
    va_start(ap, types);
    bindv(st, types, ap);
    va_end(ap);
    int64_t v = sqldb_step(st) == SQLDB_ROW ? sqldb_column_int64(st, 0) : 0;
    sqldb_finalize(st);
    return v;
}

int store_upload_create(struct store *s, const struct upload_row *u)
{
    pthread_mutex_lock(&s->w_lock);
    int64_t n = wexec(s,
                      "INSERT INTO uploads(id, campaign_id, filename, size, content_type,"
                      " part_size, nparts, backend, s3_upload_id, object_key, state, expires_ms,"
                      " created_at) VALUES(?,?,?,?,?,?,?,?,?,?,'open',?,?)",
                      "tititiittt"
                      "it",
                      u->id, u->campaign_id, u->filename, u->size, u->content_type, u->part_size,
                      (int64_t)u->nparts, u->backend, u->s3_upload_id, u->object_key, u->expires_ms,
                      u->created_at);
    pthread_mutex_unlock(&s->w_lock);
    return n == 1 ? 0 : -1;
}

int store_upload_put_part(struct store *s, const char *id, int part, int64_t size, const char *etag)
{
    pthread_mutex_lock(&s->w_lock);
    int64_t n = wexec(s,
                      "INSERT INTO upload_parts(upload_id, part, size, etag) VALUES(?,?,?,?)"
                      " ON CONFLICT(upload_id, part) DO UPDATE SET size = excluded.size,"
                      " etag = excluded.etag",
                      "tiit", id, (int64_t)part, size, etag);
    pthread_mutex_unlock(&s->w_lock);
    return n == 1 ? 0 : -1;
}

int store_upload_etag(struct store *s, const char *id, int part, char *out, size_t len)
{
    int rc = -1;
    pthread_mutex_lock(&s->r_lock);
    struct sqldb_stmt *st =
        sqldb_prepare(s->rq, "SELECT etag FROM upload_parts WHERE upload_id = ? AND part = ?");
    if (st) {
        sqldb_bind_text(st, 1, id, -1);
        sqldb_bind_int64(st, 2, part);
        int r = sqldb_step(st);
        if (r == SQLDB_ROW) {
            const char *t = sqldb_column_text(st, 0);
            rc = strlcpy_ok(out, t ? (const char *)t : "", len) == 0 ? 0 : -1;
        } else if (r == SQLDB_DONE) {
            rc = 1;
        }
        sqldb_finalize(st);
    }
    pthread_mutex_unlock(&s->r_lock);
    return rc;
}

/* busy_campaign - the campaign has an import queued or running (w_lock) */
static int64_t busy_campaign(struct store *s, int64_t campaign_id)
{
    return wscalar(s,
                   "SELECT count(*) FROM imports WHERE campaign_id = ?"
                   " AND state IN ('queued', 'importing')",
                   "i", campaign_id);
}

int store_upload_complete(struct store *s, const char *id, int64_t campaign_id, const char *source,
                          const char *now, int64_t *import_id)
{
    int rc = -1;
    pthread_mutex_lock(&s->w_lock);
    if (sqldb_begin(s->wq) != 0)
        goto out;
    if (busy_campaign(s, campaign_id) != 0) {
        rc = 1;
        goto out;
    }
    int64_t n =
        wexec(s, "UPDATE uploads SET state = 'completed' WHERE id = ? AND state = 'open'", "t", id);
    if (n != 1) {
        rc = n == 0 ? 1 : -1;
        goto out;
    }
    *import_id = wscalar(s,
                         "INSERT INTO imports(kind, campaign_id, upload_id, source, state,"
                         " created_at, updated_at) VALUES('campaign', ?, ?, ?, 'queued', ?, ?)"
                         " RETURNING id",
                         "ittt"
                         "t",
                         campaign_id, id, source, now, now);
    if (*import_id <= 0)
        goto out;
    rc = sqldb_commit(s->wq);
out:
    if (rc != 0)
        sqldb_rollback(s->wq);
    pthread_mutex_unlock(&s->w_lock);
    return rc;
}

int store_uploads_stale(struct store *s, int64_t before_ms, char **ids, size_t max, size_t *n)
{
    int rc = -1, r;
    *n = 0;
    pthread_mutex_lock(&s->r_lock);
    struct sqldb_stmt *st = sqldb_prepare(s->rq, "SELECT id FROM uploads WHERE state = 'open'"
                                                 " AND expires_ms < ? ORDER BY expires_ms LIMIT ?");
    if (st) {
        sqldb_bind_int64(st, 1, before_ms);
        sqldb_bind_int64(st, 2, (int64_t)max);
        while ((r = sqldb_step(st)) == SQLDB_ROW && *n < max)
            ids[(*n)++] = store_qcol_str(st, 0);
        rc = r == SQLDB_DONE || r == SQLDB_ROW ? 0 : -1;
        sqldb_finalize(st);
    }
    pthread_mutex_unlock(&s->r_lock);
    return rc;
}

int store_upload_abort(struct store *s, const char *id)
{
    int rc = -1;
    pthread_mutex_lock(&s->w_lock);
    if (sqldb_begin(s->wq) != 0)
        goto out;
    int64_t n =
        wexec(s, "UPDATE uploads SET state = 'aborted' WHERE id = ? AND state = 'open'", "t", id);
    if (n != 1) {
        rc = n == 0 ? 1 : -1;
        goto out;
    }
    if (wexec(s, "DELETE FROM upload_parts WHERE upload_id = ?", "t", id) < 0)
        goto out;
    rc = sqldb_commit(s->wq);
out:
    if (rc != 0)
        sqldb_rollback(s->wq);
    pthread_mutex_unlock(&s->w_lock);
    return rc;
}

int store_import_create(struct store *s, const char *kind, const char *source, const char *now,
                        int64_t *id)
{
    pthread_mutex_lock(&s->w_lock);
    *id = wscalar(s,
                  "INSERT INTO imports(kind, source, state, created_at, updated_at)"
                  " VALUES(?, ?, 'queued', ?, ?) RETURNING id",
                  "tttt", kind, source, now, now);
    pthread_mutex_unlock(&s->w_lock);
    return *id > 0 ? 0 : -1;
}

int store_import_start(struct store *s, int64_t id, const char *now)
{
    int rc = -1;
    pthread_mutex_lock(&s->w_lock);
    if (sqldb_begin(s->wq) != 0)
        goto out;
    /* a new list replaces the campaign's earlier one */
    if (wexec(s,
              "DELETE FROM campaign_recipients WHERE campaign_id = (SELECT campaign_id FROM"
              " imports WHERE id = ? AND state = 'queued' AND kind = 'campaign')",
              "i", id) < 0 ||
        wexec(s,
              "UPDATE imports SET state = 'importing', updated_at = ? WHERE id = ?"
              " AND state = 'queued'",
              "ti", now, id) < 0)
        goto out;
    rc = sqldb_commit(s->wq);
out:
    if (rc != 0)
        sqldb_rollback(s->wq);
    pthread_mutex_unlock(&s->w_lock);
    return rc;
}

/* progress - the import row's counters (w_lock, inside a transaction) */
static int progress(struct store *s, int64_t import_id, const struct import_progress *p)
{
    int64_t n = wexec(s,
                      "UPDATE imports SET rows = ?, imported = ?, duplicates = ?, n_invalid = ?,"
                      " resume_at = ?, invalid = coalesce(?, invalid), updated_at = ?"
                      " WHERE id = ?",
                      "iiiiitti", p->rows, p->imported, p->duplicates, p->n_invalid, p->resume_at,
                      p->invalid, p->now, import_id);
    return n == 1 ? 0 : -1;
}

/* recipients_pg - PostgreSQL: the batch as one statement (a round trip per
 * row bounded the import); *dups the rows already there or earlier in it */
static int recipients_pg(struct store *s, int64_t campaign_id, const struct recipient_in *v,
                         size_t n, int64_t *dups)
{
    struct sqlarr a[5];
    sqlarr_init_all(a, 5, 48 * n);
    for (size_t i = 0; i < n; i++) {
        sqlarr_text(&a[0], v[i].address);
        sqlarr_text(&a[1], v[i].name);
        sqlarr_text(&a[2], v[i].domain);
        sqlarr_text(&a[3], v[i].attributes);
        sqlarr_int(&a[4], v[i].line);
    }
    struct sqldb_stmt *st = sqldb_prepare(
        s->wq, "INSERT INTO campaign_recipients(campaign_id, address, name, domain, attributes,"
               " line) SELECT ?6, u.a, u.n, u.d, u.attr, u.l FROM unnest(?1::text[], ?2::text[],"
               " ?3::text[], ?4::text[], ?5::bigint[]) WITH ORDINALITY AS u(a, n, d, attr, l, o)"
               " ORDER BY u.o ON CONFLICT DO NOTHING");
    int rc = -1;
    if (st && sqlarr_bind_all(a, 5, st) == 0) {
        sqldb_bind_int64(st, 6, campaign_id);
        rc = sqldb_run(st);
    }
    if (rc == 0)
        *dups = (int64_t)n - sqldb_changes(s->wq);
    else
        log_error("store: insert of %zu recipients: %s", n, sqldb_errmsg(s->wq));
    sqldb_finalize(st);
    sqlarr_cleanup_all(a, 5);
    return rc;
}

/* recipients_sqlite - SQLite: a statement per row (no round trips) */
static int recipients_sqlite(struct store *s, int64_t campaign_id, const struct recipient_in *v,
                             size_t n, int64_t *dups)
{
    struct sqldb_stmt *st = sqldb_prepare(s->wq, "INSERT INTO campaign_recipients(campaign_id,"
                                                 " address, name, domain, attributes, line)"
                                                 " VALUES(?,?,?,?,?,?) ON CONFLICT DO NOTHING");
    int rc = st ? 0 : -1;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        sqldb_bind_int64(st, 1, campaign_id);
        sqldb_bind_text(st, 2, v[i].address, -1);
        sqldb_bind_text(st, 3, v[i].name, -1);
        sqldb_bind_text(st, 4, v[i].domain, -1);
        sqldb_bind_text(st, 5, v[i].attributes, -1);
        sqldb_bind_int64(st, 6, v[i].line);
        int r = sqldb_step(st);
        sqldb_reset(st);
        if (r != SQLDB_DONE) {
            log_error("store: insert recipient: %s", sqldb_errmsg(s->wq));
            rc = -1;
        } else if (sqldb_changes(s->wq) == 0) {
            (*dups)++;
        }
    }
    sqldb_finalize(st);
    return rc;
}

int store_import_recipients(struct store *s, int64_t import_id, int64_t campaign_id,
                            const struct recipient_in *v, size_t n, struct import_progress *p,
                            int64_t *dups)
{
    int rc = -1;
    bool counted = false;
    *dups = 0;
    pthread_mutex_lock(&s->w_lock);
    if (sqldb_begin(s->wq) != 0)
        goto out;
    if ((s->pg ? recipients_pg : recipients_sqlite)(s, campaign_id, v, n, dups) != 0)
        goto out;
    p->imported += (int64_t)n - *dups;
    p->duplicates += *dups;
    counted = true;
    if (progress(s, import_id, p) == 0)
        rc = sqldb_commit(s->wq);
out:
    if (rc != 0) {
        sqldb_rollback(s->wq);
        if (counted) {
            p->imported -= (int64_t)n - *dups;
            p->duplicates -= *dups;
        }
    }
    pthread_mutex_unlock(&s->w_lock);
    return rc;
}

int store_import_progress(struct store *s, int64_t import_id, const struct import_progress *p)
{
    pthread_mutex_lock(&s->w_lock);
    int rc = progress(s, import_id, p);
    pthread_mutex_unlock(&s->w_lock);
    return rc;
}

int store_import_finish(struct store *s, int64_t import_id, const char *state, const char *error,
                        const struct import_progress *p)
{
    int rc = -1;
    pthread_mutex_lock(&s->w_lock);
    if (sqldb_begin(s->wq) != 0)
        goto out;
    if (progress(s, import_id, p) != 0 ||
        wexec(s, "UPDATE imports SET state = ?, error = ? WHERE id = ?", "tti", state, error,
              import_id) != 1)
        goto out;
    rc = sqldb_commit(s->wq);
out:
    if (rc != 0)
        sqldb_rollback(s->wq);
    pthread_mutex_unlock(&s->w_lock);
    return rc;
}
