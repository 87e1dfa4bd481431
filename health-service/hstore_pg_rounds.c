/* hstore_pg_rounds.c - the PostgreSQL backend's feedback-loop rounds (the
 * copies a round checks, on the reader; its results, on the writer) and
 * bounce and complaint reports (writer), each write with the counters it
 * changes (hstore_pg_counters.c) in one transaction. Called by the
 * scheduler's threads and the bounce mailbox reader. */
#include "hstore_pg_int.h"
#include "log.h"
#include "timeutil.h"
#include "xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- rounds ---------------------------------------------------------------------- */

int hpg_open_copies(struct hstore *store, const char *domain, int64_t since_ms, size_t max,
                    struct hstore_copy **out, size_t *n)
{
    struct hpg *s = hpg(store);
    int r = -1;
    *n = 0;
    *out = xcalloc(max ? max : 1, sizeof **out);
    hpg_lock_reader(s);
    struct sqldb_stmt *st = sqldb_prepare(
        s->r, "SELECT message_id, recipient, sent_at, rounds, placement, opened, read, email_id,"
              " id, found_at IS NOT NULL, rescued, coalesce(series, 0) FROM copies"
              " WHERE domain = ?1 AND bounced = 0 AND placement <> 4 AND sent_at >= ?2"
              " ORDER BY sent_at LIMIT ?3");
    if (st) {
        sqldb_bind_text(st, 1, domain, -1);
        sqldb_bind_int64(st, 2, since_ms);
        sqldb_bind_int64(st, 3, (int64_t)max);
        while ((r = sqldb_step(st)) == SQLDB_ROW && *n < max) {
            struct hstore_copy *c = &(*out)[(*n)++];
            c->message_id = hpg_col_dup(st, 0);
            c->recipient = hpg_col_dup(st, 1);
            c->fl.message_id = c->message_id;
            c->fl.recipient = c->recipient;
            c->fl.sent_at_ms = sqldb_column_int64(st, 2);
            c->fl.rounds = (int)sqldb_column_int64(st, 3);
            c->old_placement = (enum fl_placement)sqldb_column_int64(st, 4);
            c->old_opened = sqldb_column_int64(st, 5) != 0;
            c->old_read = sqldb_column_int64(st, 6) != 0;
            c->email_id = sqldb_column_int64(st, 7);
            c->id = sqldb_column_int64(st, 8);
            c->old_found = sqldb_column_int64(st, 9) != 0;
            c->old_rescued = sqldb_column_int64(st, 10) != 0;
            c->series = sqldb_column_int64(st, 11);
        }
    }
    sqldb_finalize(st);
    pthread_mutex_unlock(&s->r_lock);
    return r == SQLDB_DONE || (r == SQLDB_ROW && *n == max) ? 0 : -1;
}

int hpg_apply_checks(struct hstore *store, const char *domain, const struct hstore_copy *c,
                     size_t n, int64_t now_ms, const char *error, bool domain_round)
{
    struct hpg *s = hpg(store);
    int rc = -1;
    struct hpg_aggs em;
    hpg_aggs_init(&em);
    int64_t newly_checked = 0;
    struct hstore_delta all = {0};
    struct han_batch an;
    han_init(&an);
    pthread_mutex_lock(&s->w_lock);
    struct sqldb_stmt *upd = NULL, *unc = NULL;
    if (!sqldb_ok(s->w) || sqldb_begin(s->w) != 0)
        goto out;
    /* found_at: the first round that found the copy in a folder, only */
    upd = sqldb_prepare(s->w, "UPDATE copies SET placement = ?2, opened = ?3, read = ?4,"
                              " rescued = ?6, rounds = rounds + 1, checked_at = ?5,"
                              " found_at = coalesce(found_at, CASE WHEN ?2 IN (2, 3) THEN ?5 END)"
                              " WHERE id = ?1");
    unc = sqldb_prepare(s->w, "UPDATE copies SET placement = 4 WHERE id = ?1 AND placement <> 4");
    if (!upd || !unc)
        goto out;
    for (size_t i = 0; i < n; i++) {
        const struct hstore_copy *x = &c[i];
        enum fl_placement p;
        bool opened, read, rescued;
        if (!hstore_check_outcome(x, &p, &opened, &read, &rescued))
            continue;
        bool checked = p != FL_UNCHECKED;
        struct sqldb_stmt *st = checked ? upd : unc;
        sqldb_bind_int64(st, 1, x->id);
        if (checked) {
            sqldb_bind_int64(st, 2, (int)p);
            sqldb_bind_int64(st, 3, opened);
            sqldb_bind_int64(st, 4, read);
            sqldb_bind_int64(st, 5, now_ms);
            sqldb_bind_int64(st, 6, rescued);
        }
        if (sqldb_run(st) != 0)
            goto out;
        if (!checked && sqldb_changes(s->w) == 0)
            continue;
        if (checked && x->fl.rounds == 0)
            newly_checked++;
        struct hpg_agg *a = hpg_agg_email(&em, x->email_id);
        a->checked = a->checked || checked;
        hstore_delta_check(&a->d, x, p, opened, read, rescued);
        hstore_delta_check(&all, x, p, opened, read, rescued);
        han_add_check(&an, x, p, opened, read);
    }
    if (hpg_stats_upsert(s, &em, now_ms) != 0 ||
        hpg_domain_add(s, domain, &all, newly_checked, domain_round, now_ms, error) != 0 ||
        hpg_an_flush(s, &an) != 0)
        goto out;
    rc = sqldb_commit(s->w);
    if (rc == 0)
        hstore_counted(store, an.entered);
out:
    if (rc != 0) {
        log_error("hstore: applying checks for %s failed: %s", domain, sqldb_errmsg(s->w));
        sqldb_rollback(s->w);
    }
    sqldb_finalize(upd);
    sqldb_finalize(unc);
    pthread_mutex_unlock(&s->w_lock);
    han_cleanup(&an);
    hpg_aggs_cleanup(&em);
    return rc;
}

/* ---- bounce and complaint reports ---------------------------------------------- */

int hpg_apply_feedback(struct hstore *store, const char *message_id,
                       const struct hstore_feedback *f, bool *changed)
{
    struct hpg *s = hpg(store);
    int rc = -1;
    *changed = false;
    char reply[1100];
    snprintf(reply, sizeof reply, "%s%s%s", f->status ? f->status : "",
             f->diagnostic && *f->diagnostic ? " " : "", f->diagnostic ? f->diagnostic : "");
    struct han_batch an;
    han_init(&an);
    pthread_mutex_lock(&s->w_lock);
    struct sqldb_stmt *st = NULL;
    if (!sqldb_ok(s->w) || sqldb_begin(s->w) != 0)
        goto out;
    /* the copy marked unless it already was: a dead letter, or reported before */
    st = sqldb_prepare(s->w, f->complained
                                 ? "UPDATE copies SET complained = 1, feedback_type = ?2"
                                   " WHERE message_id = ?1 AND complained = 0"
                                   " RETURNING email_id, domain, coalesce(series, 0), sent_at"
                                 : "UPDATE copies SET bounced = 1, bounce = ?2, smtp_reply = ?3"
                                   " WHERE message_id = ?1 AND bounced = 0"
                                   " RETURNING email_id, domain, coalesce(series, 0), sent_at");
    if (!st)
        goto out;
    sqldb_bind_text(st, 1, message_id, -1);
    if (f->complained) {
        hpg_bind_text_or_null(st, 2, f->feedback_type);
    } else {
        sqldb_bind_text(st, 2, f->soft ? "soft" : "hard", -1);
        sqldb_bind_text(st, 3, reply, -1);
    }
    int r = sqldb_step(st);
    if (r < 0)
        goto out;
    if (r == SQLDB_DONE) { /* no such copy, or nothing new */
        sqldb_finalize(st);
        st = sqldb_prepare(s->w, "SELECT 1 FROM copies WHERE message_id = ?1");
        if (!st)
            goto out;
        sqldb_bind_text(st, 1, message_id, -1);
        r = sqldb_step(st);
        rc = r == SQLDB_ROW ? 0 : r == SQLDB_DONE ? 1 : -1;
        goto out;
    }
    int64_t email_id = sqldb_column_int64(st, 0);
    char *domain = hpg_col_dup(st, 1);
    han_add(&an, sqldb_column_int64(st, 2), sqldb_column_int64(st, 3),
            f->complained ? HAN_COMPLAINED : HAN_BOUNCED, 1);
    sqldb_finalize(st);
    st = NULL;
    struct hstore_delta d = {.bounced = !f->complained};
    int64_t now = time_now_ms();
    int e = 0;
    if (f->complained) {
        struct sqldb_stmt *u = sqldb_prepare(
            s->w, "UPDATE email_stats SET complained = complained + 1 WHERE email_id = ?1");
        struct sqldb_stmt *v =
            sqldb_prepare(s->w, "UPDATE domains SET complained = complained + 1 WHERE domain = ?1");
        if (u && v) {
            sqldb_bind_int64(u, 1, email_id);
            sqldb_bind_text(v, 1, domain, -1);
            e = sqldb_run(u) || sqldb_run(v);
        } else {
            e = -1;
        }
        sqldb_finalize(u);
        sqldb_finalize(v);
    } else {
        e = hpg_stats_add(s, email_id, NULL, 0, &d, 0) ||
            hpg_domain_add(s, domain, &d, 0, false, now, NULL);
    }
    free(domain);
    if (e || hpg_an_flush(s, &an) != 0 || sqldb_commit(s->w) != 0)
        goto out;
    *changed = true;
    rc = 0;
    hstore_counted(store, an.entered);
out:
    sqldb_finalize(st);
    if (rc < 0)
        log_error("hstore: recording a report failed: %s", sqldb_errmsg(s->w));
    if (rc != 0 || !*changed)
        sqldb_rollback(s->w);
    pthread_mutex_unlock(&s->w_lock);
    han_cleanup(&an);
    return rc;
}
