/* hstore_sqlite_feedback.c - the SQLite backend's record of bounce and
 * complaint reports (hstore_apply_feedback): the copy's row and the
 * bounced / complained counters of its email and domain, in one
 * transaction of the copy's file (the counters of a copy live in its
 * file, hstore_sqlite.h).
 *
 * Threads: the bounce mailbox reader's. It takes only the copy's file's
 * w_lock, so it never waits while holding another (the ingest takes file
 * 0's first). Statements are prepared per call: a report is rare next to
 * the IMAP round trip that brought it. */
#include "hstore_sqlite.h"
#include "db.h"
#include "log.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* run - one write statement with up to two text and one integer
 * parameters (?1 ?2 text, ?3 integer); 0 or -1 */
static int run(sqlite3 *w, const char *sql, const char *t1, const char *t2, int64_t i3)
{
    sqlite3_stmt *st = db_prepare(w, sql);
    if (!st)
        return -1;
    if (t1)
        sqlite3_bind_text(st, 1, t1, -1, SQLITE_STATIC);
    if (t2)
        sqlite3_bind_text(st, 2, t2, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, i3);
    int rc = db_step(w, st);
    sqlite3_finalize(st);
    return rc;
}

/* record - inside h's transaction: the copy (found by key and Message-ID)
 * marked, its counters and analytics counts moved (what entered them in
 * entered); 0, 1 no such copy, -1 error */
static int record(struct hshard *h, int64_t key, const char *message_id,
                  const struct hstore_feedback *f, bool *changed, int64_t entered[HAN_N])
{
    sqlite3_stmt *st =
        db_prepare(h->w, "SELECT rowid, email_id, domain, bounced, complained,"
                         " coalesce(series, 0), sent_at FROM copies WHERE " HSTORE_COPY_MATCH);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, key);
    sqlite3_bind_text(st, 2, message_id, -1, SQLITE_STATIC);
    int r = sqlite3_step(st);
    if (r != SQLITE_ROW) {
        sqlite3_finalize(st);
        return r == SQLITE_DONE ? 1 : -1;
    }
    int64_t rowid = sqlite3_column_int64(st, 0), email_id = sqlite3_column_int64(st, 1);
    char domain[256];
    snprintf(domain, sizeof domain, "%s", (const char *)sqlite3_column_text(st, 2));
    bool done = f->complained ? sqlite3_column_int(st, 4) != 0 : sqlite3_column_int(st, 3) != 0;
    int64_t series = sqlite3_column_int64(st, 5), sent_at = sqlite3_column_int64(st, 6);
    sqlite3_finalize(st);
    if (done)
        return 0; /* a dead letter, or reported before */

    int rc;
    if (f->complained) {
        rc = run(h->w, "UPDATE copies SET complained = 1, feedback_type = ?1 WHERE rowid = ?3",
                 f->feedback_type, NULL, rowid);
        rc =
            rc ? rc
               : run(h->w, "UPDATE email_stats SET complained = complained + 1 WHERE email_id = ?3",
                     NULL, NULL, email_id);
        rc = rc ? rc
                : run(h->w, "UPDATE domains SET complained = complained + 1 WHERE domain = ?1",
                      domain, NULL, 0);
    } else {
        char reply[1100];
        snprintf(reply, sizeof reply, "%s%s%s", f->status ? f->status : "",
                 f->diagnostic && *f->diagnostic ? " " : "", f->diagnostic ? f->diagnostic : "");
        rc = run(h->w,
                 "UPDATE copies SET bounced = 1, bounce = ?1, smtp_reply = ?2 WHERE rowid = ?3",
                 f->soft ? "soft" : "hard", reply, rowid);
        rc = rc ? rc
                : run(h->w, "UPDATE email_stats SET bounced = bounced + 1 WHERE email_id = ?3",
                      NULL, NULL, email_id);
        rc = rc ? rc
                : run(h->w, "UPDATE domains SET bounced = bounced + 1 WHERE domain = ?1", domain,
                      NULL, 0);
    }
    struct han_batch an;
    han_init(&an);
    han_add(&an, series, sent_at, f->complained ? HAN_COMPLAINED : HAN_BOUNCED, 1);
    if (rc == 0)
        rc = han_flush(h, &an);
    if (rc == 0) {
        *changed = true;
        for (int q = 0; q < HAN_N; q++)
            entered[q] += an.entered[q];
    }
    han_cleanup(&an);
    return rc;
}

int hsqlite_apply_feedback(struct hstore *store, const char *message_id,
                           const struct hstore_feedback *f, bool *changed)
{
    struct hsqlite *s = hsqlite(store);
    int64_t key = s->hash(message_id);
    struct hshard *h = &s->shard[hsqlite_shard_of(s, key)];
    int rc = -1;
    int64_t entered[HAN_N] = {0};
    *changed = false;
    pthread_mutex_lock(&h->w_lock);
    if (db_begin(h->w) == 0) {
        rc = record(h, key, message_id, f, changed, entered);
        if (rc == 0 && *changed && db_commit(h->w) != 0)
            rc = -1;
        else if (rc == 0 && *changed)
            hstore_counted(store, entered);
        if (rc != 0 || !*changed)
            db_rollback(h->w);
    }
    if (rc < 0) {
        log_error("hstore: recording a report on file %s failed: %s", h->schema,
                  sqlite3_errmsg(h->w));
        *changed = false;
    }
    pthread_mutex_unlock(&h->w_lock);
    return rc;
}
