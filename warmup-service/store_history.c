/* store_history.c - store_history.h on both engines: /history's
 * filtered keyset pages, the archiver's scan and commit, the archives
 * listing, deliveries' monthly partitions (PostgreSQL). Reads on the
 * reader connection (r_lock), the commit and the partitions on the writer
 * (w_lock), never both. Statement texts are fixed fragments; every value
 * is bound (a partition's name, checked against deliveries_pYYYYMM, is
 * the one identifier written into SQL). */
#include "store_history.h"
#include "db.h"
#include "log.h"
#include "msgid.h"
#include "store.h"
#include "store_int.h"
#include "buf.h"
#include "xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* the columns read_row takes, from deliveries d joined to its email e */
#define HISTORY_COLS                                                                               \
    "SELECT d.id, d.email_id, e.salt, e.msgid_domain, d.recipient, d.state, d.attempts,"           \
    " d.last_code, d.last_reply, d.updated_at, d.due_at FROM deliveries d"                         \
    " JOIN emails e ON e.id = d.email_id"

/* /history's fragments (history_sql) */
#define HISTORY_BEFORE " WHERE d.id < ?%d"
#define HISTORY_RECIPIENT " AND d.recipient = ?%d COLLATE NOCASE"
#define HISTORY_PG_RECIPIENT " AND lower(d.recipient::text) COLLATE \"C\" = lower(?%d)"
#define HISTORY_EMAIL " AND d.email_id = ?%d"
#define HISTORY_STATE " AND d.state = ?%d"
#define HISTORY_FROM " AND d.updated_at >= ?%d"
#define HISTORY_TO " AND d.updated_at < ?%d"
#define HISTORY_ORDER " ORDER BY d.id DESC LIMIT ?%d"
/* a time range alone: "+" keeps SQLite off an index for that term. A
 * narrow range is read through deliveries_updated (its rows sorted by id,
 * at most HISTORY_NARROW of them); a wide one by id, newest first */
#define HISTORY_BEFORE_SCAN " WHERE +d.id < ?%d"
#define HISTORY_STATE_SCAN " AND +d.state = ?%d"
#define HISTORY_FROM_SCAN " AND +d.updated_at >= ?%d"
#define HISTORY_TO_SCAN " AND +d.updated_at < ?%d"
#define HISTORY_RANGE_COUNT                                                                        \
    "SELECT count(*) FROM (SELECT 1 FROM deliveries WHERE updated_at >= ?1 AND updated_at < ?2"    \
    " LIMIT ?3) AS r"
#define HISTORY_NARROW 100000
/* PostgreSQL, a narrow range: the newest ids of the range's copies from
 * deliveries_updated alone (updated_at, id, state: an index-only scan,
 * migration 12), then only their rows; "+h.id" keeps the planner off an
 * id-ordered scan that would filter every newer copy */
#define HISTORY_PG_NARROW " WHERE d.id IN (SELECT h.id FROM deliveries h WHERE +h.id < ?%d"
#define HISTORY_PG_STATE " AND h.state = ?%d"
#define HISTORY_PG_FROM " AND h.updated_at >= ?%d"
#define HISTORY_PG_TO " AND h.updated_at < ?%d"
#define HISTORY_PG_ORDER " ORDER BY +h.id DESC LIMIT ?%d) ORDER BY d.id DESC"

/* archiver: final-state copies updated before ?1, after the key (?2, ?3),
 * read and deleted through deliveries_updated in its order ("+state":
 * not through deliveries_state, which would scan every sent copy and
 * sort them) */
#define ARCHIVE_PAGE                                                                               \
    HISTORY_COLS " WHERE d.updated_at < ?1 AND +d.state IN (2, 4, 5)"                              \
                 " AND (d.updated_at, d.id) > (?2, ?3) ORDER BY d.updated_at, d.id LIMIT ?4"
#define ARCHIVE_DELETE                                                                             \
    "DELETE FROM deliveries WHERE updated_at < ?1 AND +state IN (2, 4, 5)"                         \
    " AND (updated_at, id) >= (?2, ?3) AND (updated_at, id) <= (?4, ?5)"
#define ARCHIVE_INSERT                                                                             \
    "INSERT INTO archives(name, store, first_id, last_id, n_rows, n_bytes, min_updated_at,"        \
    " max_updated_at, created_at) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
#define ARCHIVE_LIST                                                                               \
    "SELECT id, name, store, first_id, last_id, n_rows, n_bytes, min_updated_at, max_updated_at,"  \
    " created_at FROM archives ORDER BY id LIMIT ?1 OFFSET ?2"
#define ARCHIVE_KNOWN "SELECT 1 FROM archives WHERE name = ?1"

/* copies read per page by the archiver (the reader lock's hold) */
#define ARCHIVE_PAGE_ROWS 2000

/* PostgreSQL: deliveries' monthly partitions (deliveries_pYYYYMM,
 * store_pg.h) whose month ended at or before ?1 (ms) */
#define PARTITIONS_OLD                                                                             \
    "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"                    \
    " WHERE i.inhparent = 'deliveries'::regclass AND c.relname ~ '^deliveries_p[0-9]{6}$'"         \
    " AND extract(epoch FROM to_date(substr(c.relname, 13), 'YYYYMM') + interval '1 month')"       \
    " * 1000 <= ?1 ORDER BY c.relname"
#define PARTITIONS_MAX 240

void history_row_cleanup(struct history_row *r)
{
    free(r->message_id);
    free(r->recipient);
    free(r->last_reply);
    memset(r, 0, sizeof *r);
}

void store_history_free(struct history_row *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        history_row_cleanup(&v[i]);
    free(v);
}

/* read_row - a HISTORY_COLS row into r (heap strings) */
static void read_row(struct sqldb_stmt *st, struct history_row *r)
{
    r->id = sqldb_column_int64(st, 0);
    r->email_id = sqldb_column_int64(st, 1);
    r->message_id =
        msgid_copy(r->email_id, sqldb_column_text(st, 2), r->id, sqldb_column_text(st, 3));
    r->recipient = store_qcol_str(st, 4);
    r->state = sqldb_column_int64(st, 5);
    r->attempts = sqldb_column_int64(st, 6);
    r->has_code = !sqldb_column_null(st, 7);
    r->last_code = sqldb_column_int64(st, 7);
    r->last_reply = store_qcol_dup(st, 8);
    r->updated_at = sqldb_column_int64(st, 9);
    r->due_at = sqldb_column_int64(st, 10);
}

/* range_rows - copies updated in the query's range, counted up to max
 * through deliveries_updated (r_lock held); max on error */
static int64_t range_rows(struct store *s, const struct history_query *q, int64_t max)
{
    int64_t v = max;
    struct sqldb_stmt *st = sqldb_prepare(s->rq, HISTORY_RANGE_COUNT);
    if (st) {
        sqldb_bind_int64(st, 1, q->has_from ? q->from_ms : INT64_MIN);
        sqldb_bind_int64(st, 2, q->has_to ? q->to_ms : INT64_MAX);
        sqldb_bind_int64(st, 3, max);
        if (sqldb_step(st) == SQLDB_ROW)
            v = sqldb_column_int64(st, 0);
        sqldb_finalize(st);
    }
    return v;
}

/* history_sql - the statement of q into sql: the keyset bound, one
 * fragment per filter given, each with the next parameter number (%d:
 * PostgreSQL refuses a statement whose parameter list has a gap), then
 * the limit. narrow: a time range alone, of few copies */
static void history_sql(struct buf *sql, const struct history_query *q, bool narrow, bool pg)
{
    bool range = (q->has_from || q->has_to) && !q->recipient && !q->email_id;
    bool wide = range && !narrow;
    int np = 0;
    buf_printf(sql, "%s", HISTORY_COLS);
    if (narrow && pg) {
        buf_printf(sql, HISTORY_PG_NARROW, ++np);
        if (q->state >= 0)
            buf_printf(sql, HISTORY_PG_STATE, ++np);
        if (q->has_from)
            buf_printf(sql, HISTORY_PG_FROM, ++np);
        if (q->has_to)
            buf_printf(sql, HISTORY_PG_TO, ++np);
        buf_printf(sql, HISTORY_PG_ORDER, ++np);
        return;
    }
    buf_printf(sql, narrow ? HISTORY_BEFORE_SCAN : HISTORY_BEFORE, ++np);
    if (q->recipient)
        buf_printf(sql, pg ? HISTORY_PG_RECIPIENT : HISTORY_RECIPIENT, ++np);
    if (q->email_id)
        buf_printf(sql, HISTORY_EMAIL, ++np);
    if (q->state >= 0)
        buf_printf(sql, narrow ? HISTORY_STATE_SCAN : HISTORY_STATE, ++np);
    if (q->has_from)
        buf_printf(sql, wide ? HISTORY_FROM_SCAN : HISTORY_FROM, ++np);
    if (q->has_to)
        buf_printf(sql, wide ? HISTORY_TO_SCAN : HISTORY_TO, ++np);
    buf_printf(sql, HISTORY_ORDER, ++np);
}

int store_history(struct store *s, const struct history_query *q, struct history_row **out,
                  size_t *n)
{
    int r = -1;
    size_t cap = 0;
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&s->r_lock);
    /* recipient and email_id select few copies through their index; a time
     * range alone picks its plan by the range's size */
    bool range = (q->has_from || q->has_to) && !q->recipient && !q->email_id;
    bool narrow = range && range_rows(s, q, HISTORY_NARROW) < HISTORY_NARROW;
    struct buf sql;
    buf_init(&sql, 4096);
    history_sql(&sql, q, narrow, s->pg);
    struct sqldb_stmt *st = sqldb_prepare(s->rq, buf_str(&sql));
    if (st) {
        int np = 0; /* in history_sql's order */
        sqldb_bind_int64(st, ++np, q->before_id > 0 ? q->before_id : INT64_MAX);
        if (q->recipient)
            sqldb_bind_text(st, ++np, q->recipient, -1);
        if (q->email_id)
            sqldb_bind_int64(st, ++np, q->email_id);
        if (q->state >= 0)
            sqldb_bind_int64(st, ++np, q->state);
        if (q->has_from)
            sqldb_bind_int64(st, ++np, q->from_ms);
        if (q->has_to)
            sqldb_bind_int64(st, ++np, q->to_ms);
        sqldb_bind_int64(st, ++np, q->limit);
        while ((r = sqldb_step(st)) == SQLDB_ROW) {
            *out = store_grow(*out, &cap, *n, sizeof **out);
            read_row(st, &(*out)[(*n)++]);
        }
        if (r != SQLDB_DONE)
            log_error("store: history: %s", sqldb_errmsg(s->rq));
        sqldb_finalize(st);
    }
    pthread_mutex_unlock(&s->r_lock);
    buf_cleanup(&sql);
    if (r != SQLDB_DONE) {
        store_history_free(*out, *n);
        *out = NULL;
        *n = 0;
        return -1;
    }
    return 0;
}

int store_archive_scan(struct store *s, int64_t cutoff_ms, int64_t max,
                       int (*fn)(void *arg, const struct history_row *r), void *arg,
                       struct archive_span *span)
{
    memset(span, 0, sizeof *span);
    int64_t k_upd = INT64_MIN, k_id = INT64_MIN;
    struct history_row *page = xcalloc(ARCHIVE_PAGE_ROWS, sizeof *page);
    int rc = 0;
    while (rc == 0 && span->rows < max) {
        int64_t want = max - span->rows < ARCHIVE_PAGE_ROWS ? max - span->rows : ARCHIVE_PAGE_ROWS;
        size_t got = 0;
        int r = -1;
        pthread_mutex_lock(&s->r_lock);
        struct sqldb_stmt *st = sqldb_prepare(s->rq, ARCHIVE_PAGE);
        if (st) {
            sqldb_bind_int64(st, 1, cutoff_ms);
            sqldb_bind_int64(st, 2, k_upd);
            sqldb_bind_int64(st, 3, k_id);
            sqldb_bind_int64(st, 4, want);
            while ((r = sqldb_step(st)) == SQLDB_ROW)
                read_row(st, &page[got++]);
            if (r != SQLDB_DONE)
                log_error("store: archive scan: %s", sqldb_errmsg(s->rq));
            sqldb_finalize(st);
        }
        pthread_mutex_unlock(&s->r_lock);
        if (r != SQLDB_DONE)
            rc = -1;
        for (size_t i = 0; i < got; i++) {
            const struct history_row *h = &page[i];
            if (rc == 0 && (rc = fn(arg, h)) == 0) {
                if (span->rows == 0) {
                    span->first_upd = h->updated_at;
                    span->first_id = h->id;
                    span->min_id = span->max_id = h->id;
                }
                span->rows++;
                span->last_upd = h->updated_at;
                span->last_id = h->id;
                if (h->id < span->min_id)
                    span->min_id = h->id;
                if (h->id > span->max_id)
                    span->max_id = h->id;
            }
            history_row_cleanup(&page[i]);
        }
        if (got < (size_t)want)
            break;
        k_upd = span->last_upd;
        k_id = span->last_id;
    }
    free(page);
    return rc;
}

int store_archive_commit(struct store *s, int64_t cutoff_ms, const struct archive_span *span,
                         const struct archive_entry *a)
{
    int rc = -1;
    pthread_mutex_lock(&s->w_lock);
    struct sqldb_stmt *ins = sqldb_prepare(s->wq, ARCHIVE_INSERT);
    struct sqldb_stmt *del = sqldb_prepare(s->wq, ARCHIVE_DELETE);
    if (!ins || !del || sqldb_begin(s->wq) != 0)
        goto out;
    sqldb_bind_text(ins, 1, a->name, -1);
    sqldb_bind_text(ins, 2, a->store, -1);
    sqldb_bind_int64(ins, 3, a->first_id);
    sqldb_bind_int64(ins, 4, a->last_id);
    sqldb_bind_int64(ins, 5, a->rows);
    sqldb_bind_int64(ins, 6, a->bytes);
    sqldb_bind_int64(ins, 7, a->min_updated_at);
    sqldb_bind_int64(ins, 8, a->max_updated_at);
    sqldb_bind_int64(ins, 9, a->created_at);
    if (sqldb_run(ins) != 0)
        goto out;
    sqldb_bind_int64(del, 1, cutoff_ms);
    sqldb_bind_int64(del, 2, span->first_upd);
    sqldb_bind_int64(del, 3, span->first_id);
    sqldb_bind_int64(del, 4, span->last_upd);
    sqldb_bind_int64(del, 5, span->last_id);
    if (sqldb_run(del) != 0)
        goto out;
    if (sqldb_changes(s->wq) != span->rows) {
        log_warn("store: archive %s: %lld copies changed since the scan; retried later", a->name,
                 (long long)(span->rows - sqldb_changes(s->wq)));
        rc = 1;
        goto out;
    }
    rc = sqldb_commit(s->wq);
out:
    if (rc != 0)
        sqldb_rollback(s->wq);
    sqldb_finalize(ins);
    sqldb_finalize(del);
    pthread_mutex_unlock(&s->w_lock);
    return rc;
}

void store_archives_free(struct archive_entry *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++) {
        free(v[i].name);
        free(v[i].store);
    }
    free(v);
}

int store_list_archives(struct store *s, int64_t limit, int64_t offset, struct archive_entry **out,
                        size_t *n)
{
    int r = -1;
    size_t cap = 0;
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&s->r_lock);
    struct sqldb_stmt *st = sqldb_prepare(s->rq, ARCHIVE_LIST);
    if (st) {
        sqldb_bind_int64(st, 1, limit);
        sqldb_bind_int64(st, 2, offset);
        while ((r = sqldb_step(st)) == SQLDB_ROW) {
            *out = store_grow(*out, &cap, *n, sizeof **out);
            struct archive_entry *a = &(*out)[(*n)++];
            a->id = sqldb_column_int64(st, 0);
            a->name = store_qcol_str(st, 1);
            a->store = store_qcol_str(st, 2);
            a->first_id = sqldb_column_int64(st, 3);
            a->last_id = sqldb_column_int64(st, 4);
            a->rows = sqldb_column_int64(st, 5);
            a->bytes = sqldb_column_int64(st, 6);
            a->min_updated_at = sqldb_column_int64(st, 7);
            a->max_updated_at = sqldb_column_int64(st, 8);
            a->created_at = sqldb_column_int64(st, 9);
        }
        sqldb_finalize(st);
    }
    pthread_mutex_unlock(&s->r_lock);
    if (r != SQLDB_DONE) {
        store_archives_free(*out, *n);
        *out = NULL;
        *n = 0;
        return -1;
    }
    return 0;
}

int store_archive_known(struct store *s, const char *name)
{
    int r = -1;
    pthread_mutex_lock(&s->r_lock);
    struct sqldb_stmt *st = sqldb_prepare(s->rq, ARCHIVE_KNOWN);
    if (st) {
        sqldb_bind_text(st, 1, name, -1);
        r = sqldb_step(st);
        sqldb_finalize(st);
    }
    pthread_mutex_unlock(&s->r_lock);
    return r == SQLDB_ROW ? 1 : r == SQLDB_DONE ? 0 : -1;
}

/* partition_name - name is deliveries_pYYYYMM (so it may be pasted into SQL) */
static bool partition_name(const char *name)
{
    if (strlen(name) != 18 || strncmp(name, "deliveries_p", 12) != 0)
        return false;
    for (int i = 12; i < 18; i++)
        if (name[i] < '0' || name[i] > '9')
            return false;
    return true;
}

/* drop_if_empty - in one transaction: name locked, dropped when it holds
 * no row; 1 dropped, 0 kept, -1 error (w_lock held) */
static int drop_if_empty(struct store *s, const char *name)
{
    char sql[128];
    if (sqldb_begin(s->wq) != 0)
        return -1;
    snprintf(sql, sizeof sql, "LOCK TABLE %s IN ACCESS EXCLUSIVE MODE", name);
    int rc = sqldb_exec(s->wq, sql);
    struct sqldb_stmt *st = NULL;
    if (rc == 0) {
        snprintf(sql, sizeof sql, "SELECT 1 FROM %s LIMIT 1", name);
        st = sqldb_prepare(s->wq, sql);
        int r = st ? sqldb_step(st) : -1;
        rc = r == SQLDB_DONE ? 1 : r == SQLDB_ROW ? 0 : -1;
        sqldb_finalize(st);
    }
    if (rc == 1) {
        snprintf(sql, sizeof sql, "DROP TABLE %s", name);
        if (sqldb_exec(s->wq, sql) != 0 || sqldb_commit(s->wq) != 0)
            rc = -1;
    }
    if (rc != 1)
        sqldb_rollback(s->wq);
    return rc;
}

int store_archive_partitions(struct store *s, int64_t cutoff_ms, int *dropped)
{
    *dropped = 0;
    if (!s->pg)
        return 0;
    char *names[PARTITIONS_MAX];
    size_t n = 0;
    int rc = -1;
    pthread_mutex_lock(&s->w_lock);
    if (sqldb_exec(s->wq, "SELECT warmup_partitions(2)") != 0)
        goto out;
    struct sqldb_stmt *st = sqldb_prepare(s->wq, PARTITIONS_OLD);
    if (!st)
        goto out;
    sqldb_bind_int64(st, 1, cutoff_ms);
    int r;
    while ((r = sqldb_step(st)) == SQLDB_ROW && n < PARTITIONS_MAX) {
        const char *name = sqldb_column_text(st, 0);
        if (name && partition_name(name))
            names[n++] = xstrdup(name);
    }
    sqldb_finalize(st);
    if (r < 0)
        goto out;
    rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        int d = drop_if_empty(s, names[i]);
        if (d < 0)
            rc = -1;
        else if (d == 1) {
            ++*dropped;
            log_info("archive: dropped partition %s (its month is archived)", names[i]);
        }
    }
out:
    pthread_mutex_unlock(&s->w_lock);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    if (rc != 0)
        log_error("store: deliveries partitions: %s", sqldb_errmsg(s->wq));
    return rc;
}
