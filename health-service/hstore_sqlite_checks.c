/* hstore_sqlite_checks.c - the scheduler's side of the SQLite store: a domain's open
 * copies (from every file, oldest first) and a round's results (each
 * file's copies and counters in a transaction on that file). Called from
 * the scheduler's worker threads; reads under r_lock, writes under the
 * w_lock of one file at a time. */
#include "hstore_sqlite.h"
#include "buf.h"
#include "db.h"
#include "log.h"
#include "timeutil.h"
#include "xalloc.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

/* open_copies_sql - the open copies of ?1 sent since ?2 in every file,
 * merged in sent_at order (each file's part comes from its copies_open
 * index in that order), at most ?3. Unchecked copies (placement 4) are
 * skipped as the index range is read: an index that left them out would
 * cost the ingest (bench/RESULTS.md). */
static char *open_copies_sql(const struct hsqlite *s)
{
    struct buf b;
    buf_init(&b, 64 * 1024);
    for (int k = 0; k < s->nshards; k++)
        buf_printf(&b,
                   "%sSELECT message_id, recipient, sent_at, rounds, placement, opened, read,"
                   " email_id, rowid, %d, found_at IS NOT NULL, rescued, coalesce(series, 0)"
                   " FROM %s.copies"
                   " WHERE domain = ?1 AND bounced = 0"
                   " AND sent_at >= ?2 AND placement != 4",
                   k ? " UNION ALL " : "", k, s->shard[k].schema);
    buf_printf(&b, " ORDER BY 3 LIMIT ?3");
    return buf_steal(&b);
}

int hsqlite_open_copies(struct hstore *store, const char *domain, int64_t since_ms, size_t max,
                        struct hstore_copy **out, size_t *n)
{
    struct hsqlite *s = hsqlite(store);
    int r = SQLITE_ERROR;
    *n = 0;
    *out = xcalloc(max ? max : 1, sizeof **out);
    char *sql = open_copies_sql(s);
    pthread_mutex_lock(&s->r_lock);
    sqlite3_stmt *st = sql ? db_prepare(s->r, sql) : NULL;
    if (st) {
        sqlite3_bind_text(st, 1, domain, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, since_ms);
        sqlite3_bind_int64(st, 3, (int64_t)max);
        while ((r = sqlite3_step(st)) == SQLITE_ROW && *n < max) {
            struct hstore_copy *c = &(*out)[(*n)++];
            c->message_id = xstrdup((const char *)sqlite3_column_text(st, 0));
            c->recipient = xstrdup((const char *)sqlite3_column_text(st, 1));
            c->fl.message_id = c->message_id;
            c->fl.recipient = c->recipient;
            c->fl.sent_at_ms = sqlite3_column_int64(st, 2);
            c->fl.rounds = sqlite3_column_int(st, 3);
            c->old_placement = (enum fl_placement)sqlite3_column_int(st, 4);
            c->old_opened = sqlite3_column_int(st, 5) != 0;
            c->old_read = sqlite3_column_int(st, 6) != 0;
            c->email_id = sqlite3_column_int64(st, 7);
            c->id = sqlite3_column_int64(st, 8);
            c->shard = sqlite3_column_int(st, 9);
            c->old_found = sqlite3_column_int(st, 10) != 0;
            c->old_rescued = sqlite3_column_int(st, 11) != 0;
            c->series = sqlite3_column_int64(st, 12);
        }
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&s->r_lock);
    free(sql);
    return r == SQLITE_DONE ? 0 : -1;
}

struct stat_delta {
    int64_t email_id;
    bool checked; /* some copy of the email was checked (not only marked unchecked) */
    struct hstore_delta d;
};

/* apply_file - the round's results for the copies of c in file k, in
 * one transaction on it: the copies, their emails' counters, the
 * domain's counters and the analytics counts in that file; for a domain
 * round file 0 also keeps the domain's round time and error (its row
 * made if the domain's copies are all elsewhere) */
static int apply_file(struct hsqlite *s, int k, const char *domain, const struct hstore_copy *c,
                      size_t n, int64_t now_ms, const char *error, bool domain_round)
{
    struct hshard *h = &s->shard[k];
    int rc = -1;
    struct stat_delta *d = xcalloc(n ? n : 1, sizeof *d);
    size_t nd = 0, newly_checked = 0;
    sqlite3_stmt *upd = NULL, *unc = NULL, *dom = NULL;
    struct han_batch an;
    han_init(&an);
    pthread_mutex_lock(&h->w_lock);
    if (db_begin(h->w) != 0)
        goto out;
    /* found_at: the first round that found the copy in a folder, only */
    upd = db_prepare(h->w, "UPDATE copies SET placement = ?2, opened = ?3, read = ?4,"
                           " rescued = ?6, rounds = rounds + 1, checked_at = ?5,"
                           " found_at = coalesce(found_at, CASE WHEN ?2 IN (2, 3) THEN ?5 END)"
                           " WHERE rowid = ?1");
    /* an unchecked copy was not checked: rounds and checked_at stay; one
     * marked before changes nothing (counted once, whatever the caller read) */
    unc = db_prepare(h->w, "UPDATE copies SET placement = 4 WHERE rowid = ?1 AND placement != 4");
    const char *sql;
    if (k > 0)
        sql = "UPDATE domains SET checked = checked + ?2,"
              " delivered = delivered + ?5, spam = spam + ?6, opened = opened + ?7,"
              " read = read + ?8, unchecked = unchecked + ?10, rescued = rescued + ?11"
              " WHERE domain = ?1";
    else if (domain_round)
        sql = "INSERT INTO domains(domain, first_seen, last_seen, checked, last_round_at,"
              " last_error, delivered, spam, opened, read, unchecked, rescued)"
              " VALUES(?1, ?9, ?9, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?10, ?11)"
              " ON CONFLICT(domain) DO UPDATE SET checked = checked + ?2,"
              " last_round_at = ?3, last_error = ?4,"
              " delivered = delivered + ?5, spam = spam + ?6, opened = opened + ?7,"
              " read = read + ?8, unchecked = unchecked + ?10, rescued = rescued + ?11";
    else
        sql = "INSERT INTO domains(domain, first_seen, last_seen, checked, delivered, spam,"
              " opened, read, unchecked, rescued)"
              " VALUES(?1, ?9, ?9, ?2, ?5, ?6, ?7, ?8, ?10, ?11)"
              " ON CONFLICT(domain) DO UPDATE SET checked = checked + ?2,"
              " delivered = delivered + ?5, spam = spam + ?6, opened = opened + ?7,"
              " read = read + ?8, unchecked = unchecked + ?10, rescued = rescued + ?11";
    dom = db_prepare(h->w, sql);
    if (!upd || !unc || !dom)
        goto out;
    for (size_t i = 0; i < n; i++) {
        const struct hstore_copy *x = &c[i];
        enum fl_placement p;
        bool opened, read, rescued;
        if (x->shard != k || !hstore_check_outcome(x, &p, &opened, &read, &rescued))
            continue; /* another file's, or not checked this round: keep what was known */
        bool checked = p != FL_UNCHECKED;
        sqlite3_stmt *st = checked ? upd : unc;
        sqlite3_bind_int64(st, 1, x->id);
        if (checked) {
            sqlite3_bind_int(st, 2, (int)p);
            sqlite3_bind_int(st, 3, opened);
            sqlite3_bind_int(st, 4, read);
            sqlite3_bind_int64(st, 5, now_ms);
            sqlite3_bind_int(st, 6, rescued);
        }
        int r = sqlite3_step(st);
        sqlite3_reset(st);
        if (r != SQLITE_DONE)
            goto out;
        if (!checked && sqlite3_changes(h->w) == 0)
            continue;
        if (checked && x->fl.rounds == 0)
            newly_checked++;
        size_t j = 0;
        while (j < nd && d[j].email_id != x->email_id)
            j++;
        if (j == nd)
            d[nd++].email_id = x->email_id;
        d[j].checked = d[j].checked || checked;
        hstore_delta_check(&d[j].d, x, p, opened, read, rescued);
        han_add_check(&an, x, p, opened, read);
    }
    if (han_flush(h, &an) != 0)
        goto out;
    struct hstore_delta all = {0};
    for (size_t j = 0; j < nd; j++) {
        if (hsqlite_stats_add(h, d[j].email_id, NULL, 0, &d[j].d, d[j].checked ? now_ms : 0) != 0)
            goto out;
        all.delivered += d[j].d.delivered;
        all.spam += d[j].d.spam;
        all.opened += d[j].d.opened;
        all.read += d[j].d.read;
        all.unchecked += d[j].d.unchecked;
        all.rescued += d[j].d.rescued;
    }
    char at[32]; /* first_seen of a row made here */
    time_rfc3339_ms(now_ms, at, sizeof at);
    sqlite3_bind_text(dom, 1, domain, -1, SQLITE_STATIC);
    sqlite3_bind_int64(dom, 2, (int64_t)newly_checked);
    sqlite3_bind_int64(dom, 5, all.delivered);
    sqlite3_bind_int64(dom, 6, all.spam);
    sqlite3_bind_int64(dom, 7, all.opened);
    sqlite3_bind_int64(dom, 8, all.read);
    sqlite3_bind_int64(dom, 10, all.unchecked);
    sqlite3_bind_int64(dom, 11, all.rescued);
    if (k == 0) {
        if (domain_round) {
            sqlite3_bind_int64(dom, 3, now_ms);
            sqlite3_bind_text(dom, 4, error, -1, SQLITE_STATIC);
        }
        sqlite3_bind_text(dom, 9, at, -1, SQLITE_STATIC);
    }
    if (sqlite3_step(dom) != SQLITE_DONE)
        goto out;
    rc = db_commit(h->w);
    if (rc == 0)
        hstore_counted(&s->base, an.entered);
out:
    if (rc != 0) {
        log_error("hstore: applying checks for %s to file %s failed: %s", domain, h->schema,
                  sqlite3_errmsg(h->w));
        db_rollback(h->w);
    }
    sqlite3_finalize(upd);
    sqlite3_finalize(unc);
    sqlite3_finalize(dom);
    pthread_mutex_unlock(&h->w_lock);
    han_cleanup(&an);
    free(d);
    return rc;
}

int hsqlite_apply_checks(struct hstore *store, const char *domain, const struct hstore_copy *c,
                         size_t n, int64_t now_ms, const char *error, bool domain_round)
{
    struct hsqlite *s = hsqlite(store);
    bool in[HSTORE_MAX_SHARDS] = {domain_round}; /* file 0 keeps the domain round's time */
    for (size_t i = 0; i < n; i++)
        if (c[i].shard >= 0 && c[i].shard < s->nshards)
            in[c[i].shard] = true;
    int rc = 0;
    for (int k = 0; k < s->nshards; k++)
        if (in[k] && apply_file(s, k, domain, c, n, now_ms, error, domain_round) != 0)
            rc = -1;
    return rc;
}
