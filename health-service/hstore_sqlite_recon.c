/* hstore_sqlite_recon.c - an email's reconciliation from the SQLite store
 * (hstore_reconcile, GET /emails/{id}/reconciliation): its copies in every
 * file counted by state, and the oldest missing ones named.
 *
 * Each file answers from one rowid range of its copies: those stored since
 * the batch that holds the email's first copy (email_stats.first_sent_at
 * and copy_batches, kept by the ingest): one aggregate over it, and, when
 * something is missing, one ordered read of it stopping at
 * HSTORE_RECON_IDS. No index leads by email_id or sent_at (either costs
 * the ingest a third of its rate; see HSTORE_PLACEMENT_SQL), so a report
 * on an old email reads every copy stored since
 * (tests/unit/test_recon.c checks the plans). Both statements run in one read
 * transaction, so the counts and the names come from the same snapshot of each file, and the states
 * are exclusive by construction (hstore.h: struct hstore_recon), so they add up to tracked whatever
 * the ingest and the rounds do meanwhile.
 *
 * Threads: any HTTP thread. A call opens its own read-only connection
 * with every file attached and closes it: a report over a large email
 * never holds r_lock, which /mail_stats and the scheduler's rounds share,
 * and reports run side by side. */
#include "hstore_sqlite.h"
#include "buf.h"
#include "log.h"
#include "xalloc.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* where the email's copies begin in file %1$s (none there: past every copy) */
#define FIRST_ROWID                                                                                \
    HSTORE_SINCE_ROWID("(SELECT first_sent_at FROM %1$s.email_stats WHERE email_id = ?1)")

/* a copy not found: in no folder, not bounced, not complained, not unchecked */
#define NOT_FOUND "bounced = 0 AND complained = 0 AND placement NOT IN (2, 3, 4)"

char *hsqlite_recon_sql(const struct hsqlite *s, bool ids)
{
    struct buf b;
    buf_init(&b, 64 * 1024);
    /* ?1 email_id, ?2 the window's start, ?3 how many names */
    buf_printf(&b, ids ? "SELECT message_id FROM ("
                       : "SELECT sum(t), sum(a), sum(b), sum(c), sum(sp), sum(i), sum(u),"
                         " sum(p), sum(m) FROM (");
    for (int k = 0; k < s->nshards; k++) {
        const char *schema = s->shard[k].schema, *sep = k ? " UNION ALL " : "";
        if (ids)
            buf_printf(&b,
                       "%2$sSELECT * FROM (SELECT message_id, sent_at, %3$d AS f, rowid AS r"
                       " FROM %1$s.copies WHERE rowid >= " FIRST_ROWID
                       " AND email_id = ?1 AND sent_at < ?2 AND " NOT_FOUND
                       " ORDER BY sent_at, rowid LIMIT ?3)",
                       schema, sep, k);
        else /* a dead letter: bounced by its email.failed, no report */
            buf_printf(&b,
                       "%2$sSELECT count(*) AS t,"
                       " sum(CASE WHEN bounced = 0 THEN 1 ELSE bounce IS NOT NULL END) AS a,"
                       " sum(bounced != 0) AS b, sum(bounced = 0 AND complained != 0) AS c,"
                       " sum(bounced = 0 AND complained = 0 AND placement = 3) AS sp,"
                       " sum(bounced = 0 AND complained = 0 AND placement = 2) AS i,"
                       " sum(bounced = 0 AND complained = 0 AND placement = 4) AS u,"
                       " sum(" NOT_FOUND " AND sent_at >= ?2) AS p,"
                       " sum(" NOT_FOUND " AND sent_at < ?2) AS m"
                       " FROM %1$s.copies WHERE rowid >= " FIRST_ROWID " AND email_id = ?1",
                       schema, sep);
    }
    buf_printf(&b, ids ? ") ORDER BY sent_at, f, r LIMIT ?3" : ")");
    return buf_steal(&b);
}

/* open_reader - a read-only connection on s's files, attached under the
 * names the shared reader gives them; NULL on error (logged) */
static sqlite3 *open_reader(struct hsqlite *s)
{
    char *file[HSTORE_MAX_SHARDS] = {0};
    pthread_mutex_lock(&s->r_lock);
    for (int k = 0; k < s->nshards; k++) {
        const char *f = sqlite3_db_filename(s->r, s->shard[k].schema);
        file[k] = f && *f ? xstrdup(f) : NULL;
    }
    pthread_mutex_unlock(&s->r_lock);
    sqlite3 *db = NULL;
    int k = 0;
    if (!file[0] || sqlite3_open_v2(file[0], &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX,
                                    NULL) != SQLITE_OK)
        goto fail;
    sqlite3_busy_timeout(db, 5000);
    for (k = 1; k < s->nshards; k++) {
        char sql[64];
        snprintf(sql, sizeof sql, "ATTACH DATABASE ?1 AS %s", s->shard[k].schema);
        sqlite3_stmt *st = NULL;
        int r = file[k] ? sqlite3_prepare_v2(db, sql, -1, &st, NULL) : SQLITE_ERROR;
        if (r == SQLITE_OK) {
            sqlite3_bind_text(st, 1, file[k], -1, SQLITE_STATIC);
            r = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
        }
        sqlite3_finalize(st);
        if (r != SQLITE_OK)
            goto fail;
    }
    for (k = 0; k < s->nshards; k++)
        free(file[k]);
    return db;
fail:
    log_error("hstore: cannot open a reader for the reconciliation (file %d): %s", k,
              db ? sqlite3_errmsg(db) : "no file name");
    sqlite3_close(db);
    for (k = 0; k < s->nshards; k++)
        free(file[k]);
    return NULL;
}

/* prepare - sql on db, bound to ?1 email_id, ?2 window start, ?3 limit
 * (when the statement has it); NULL on error */
static sqlite3_stmt *prepare(sqlite3 *db, const char *sql, int64_t email_id, int64_t since)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        log_error("hstore: reconciliation statement: %s", sqlite3_errmsg(db));
        sqlite3_finalize(st);
        return NULL;
    }
    sqlite3_bind_int64(st, 1, email_id);
    sqlite3_bind_int64(st, 2, since);
    if (sqlite3_bind_parameter_count(st) >= 3)
        sqlite3_bind_int(st, 3, HSTORE_RECON_IDS);
    return st;
}

int hsqlite_reconcile(struct hstore *store, int64_t email_id, int64_t window_start_ms,
                      struct hstore_recon *out)
{
    struct hsqlite *s = hsqlite(store);
    struct hstore_recon r = {.email_id = email_id};
    char *count_sql = hsqlite_recon_sql(s, false), *ids_sql = hsqlite_recon_sql(s, true);
    sqlite3_stmt *st = NULL;
    int rc = -1, step;
    sqlite3 *db = open_reader(s);
    if (!db || sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
        goto out;
    if (!(st = prepare(db, count_sql, email_id, window_start_ms)))
        goto out;
    if ((step = sqlite3_step(st)) != SQLITE_ROW)
        goto out;
    int64_t *v[] = {&r.tracked, &r.accepted,  &r.bounced, &r.complained, &r.spam,
                    &r.inbox,   &r.unchecked, &r.pending, &r.missing};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        *v[i] = sqlite3_column_int64(st, i); /* NULL (no copy): 0 */
    sqlite3_finalize(st);
    st = NULL;
    if (r.tracked == 0) {
        rc = 1;
        goto out;
    }
    if (r.missing > 0) {
        if (!(st = prepare(db, ids_sql, email_id, window_start_ms)))
            goto out;
        r.missing_ids = xcalloc(HSTORE_RECON_IDS, sizeof *r.missing_ids);
        while (r.nmissing_ids < HSTORE_RECON_IDS && (step = sqlite3_step(st)) == SQLITE_ROW)
            r.missing_ids[r.nmissing_ids++] = xstrdup((const char *)sqlite3_column_text(st, 0));
        if (r.nmissing_ids < HSTORE_RECON_IDS && step != SQLITE_DONE)
            goto out;
    }
    rc = 0;
out:
    if (rc < 0)
        log_error("hstore: reconciliation of email %lld failed: %s", (long long)email_id,
                  db ? sqlite3_errmsg(db) : "no reader");
    sqlite3_finalize(st);
    if (db) {
        sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
        sqlite3_close(db);
    }
    free(count_sql);
    free(ids_sql);
    if (rc == 0) {
        *out = r;
    } else {
        for (size_t i = 0; i < r.nmissing_ids; i++)
            free(r.missing_ids[i]);
        free(r.missing_ids);
    }
    return rc;
}
