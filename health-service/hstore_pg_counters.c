/* hstore_pg_counters.c - the counters the PostgreSQL backend's writes
 * keep: an email's (email_stats), a domain's (domains) and the /analytics
 * cells (analytics), each by a "+ delta" upsert in the writer's
 * transaction, and what a write adds to them per email or domain (struct
 * hpg_agg). Called with w_lock held (hstore_pg_int.h). */
#include "hstore_pg_int.h"
#include "timeutil.h"
#include "xalloc.h"

#include <stdlib.h>
#include <string.h>

/* ---- counters -------------------------------------------------------------- */

/* stats_add - d into email_id's counters (row made if new) */
int hpg_stats_add(struct hpg *s, int64_t email_id, const char *broadcast_id, int64_t first_sent,
                  const struct hstore_delta *d, int64_t checked_at)
{
    struct sqldb_stmt *st = sqldb_prepare(
        s->w, "INSERT INTO email_stats(email_id, broadcast_id, tracked, delivered, spam, opened,"
              " read, bounced, checked_at, first_sent_at, unchecked, rescued)"
              " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
              " ON CONFLICT(email_id) DO UPDATE SET tracked = email_stats.tracked + ?3,"
              " delivered = email_stats.delivered + ?4, spam = email_stats.spam + ?5,"
              " opened = email_stats.opened + ?6, read = email_stats.read + ?7,"
              " bounced = email_stats.bounced + ?8,"
              " checked_at = coalesce(?9, email_stats.checked_at),"
              " first_sent_at = CASE WHEN ?10 IS NULL THEN email_stats.first_sent_at"
              " WHEN email_stats.first_sent_at IS NULL OR ?10 < email_stats.first_sent_at"
              " THEN ?10 ELSE email_stats.first_sent_at END,"
              " unchecked = email_stats.unchecked + ?11, rescued = email_stats.rescued + ?12");
    if (!st)
        return -1;
    sqldb_bind_int64(st, 1, email_id);
    sqldb_bind_text(st, 2, broadcast_id ? broadcast_id : "", -1);
    sqldb_bind_int64(st, 3, d->tracked);
    sqldb_bind_int64(st, 4, d->delivered);
    sqldb_bind_int64(st, 5, d->spam);
    sqldb_bind_int64(st, 6, d->opened);
    sqldb_bind_int64(st, 7, d->read);
    sqldb_bind_int64(st, 8, d->bounced);
    if (checked_at)
        sqldb_bind_int64(st, 9, checked_at);
    else
        sqldb_bind_null(st, 9);
    if (first_sent)
        sqldb_bind_int64(st, 10, first_sent);
    else
        sqldb_bind_null(st, 10);
    sqldb_bind_int64(st, 11, d->unchecked);
    sqldb_bind_int64(st, 12, d->rescued);
    int rc = sqldb_run(st);
    sqldb_finalize(st);
    return rc;
}

/* domain_add - d and newly checked into domain's counters (row made if
 * new); round: the domain loop's round time and error too */
int hpg_domain_add(struct hpg *s, const char *domain, const struct hstore_delta *d, int64_t checked,
                   bool round, int64_t now_ms, const char *error)
{
    char at[32];
    time_rfc3339_ms(now_ms, at, sizeof at);
    struct sqldb_stmt *st = sqldb_prepare(
        s->w, "INSERT INTO domains(domain, first_seen, last_seen, tracked, bounced, checked,"
              " delivered, spam, opened, read, unchecked, rescued, last_round_at, last_error)"
              " VALUES(?1, ?2, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11,"
              " CASE WHEN ?12 <> 0 THEN ?13 END, CASE WHEN ?12 <> 0 THEN ?14 END)"
              " ON CONFLICT(domain) DO UPDATE SET tracked = domains.tracked + ?3,"
              " bounced = domains.bounced + ?4, checked = domains.checked + ?5,"
              " delivered = domains.delivered + ?6, spam = domains.spam + ?7,"
              " opened = domains.opened + ?8, read = domains.read + ?9,"
              " unchecked = domains.unchecked + ?10, rescued = domains.rescued + ?11,"
              " last_round_at = CASE WHEN ?12 <> 0 THEN ?13 ELSE domains.last_round_at END,"
              " last_error = CASE WHEN ?12 <> 0 THEN ?14 ELSE domains.last_error END");
    if (!st)
        return -1;
    sqldb_bind_text(st, 1, domain, -1);
    sqldb_bind_text(st, 2, at, -1);
    sqldb_bind_int64(st, 3, d->tracked);
    sqldb_bind_int64(st, 4, d->bounced);
    sqldb_bind_int64(st, 5, checked);
    sqldb_bind_int64(st, 6, d->delivered);
    sqldb_bind_int64(st, 7, d->spam);
    sqldb_bind_int64(st, 8, d->opened);
    sqldb_bind_int64(st, 9, d->read);
    sqldb_bind_int64(st, 10, d->unchecked);
    sqldb_bind_int64(st, 11, d->rescued);
    sqldb_bind_int64(st, 12, round);
    sqldb_bind_int64(st, 13, now_ms);
    hpg_bind_text_or_null(st, 14, error);
    int rc = sqldb_run(st);
    sqldb_finalize(st);
    return rc;
}

static int cmp_cell(const void *a, const void *b)
{
    const struct han_cell *x = a, *y = b;
    if (x->series != y->series)
        return x->series < y->series ? -1 : 1;
    return (x->hour > y->hour) - (x->hour < y->hour);
}

/* an_flush - b's cells into analytics, in key order */
int hpg_an_flush(struct hpg *s, struct han_batch *b)
{
    if (!b->n)
        return 0;
    qsort(b->v, b->n, sizeof *b->v, cmp_cell);
    struct sqldb_stmt *st = sqldb_prepare(
        s->w, "INSERT INTO analytics(series, hour, sent, delivered, spam, opened, read, bounced,"
              " complained) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT(series, hour)"
              " DO UPDATE SET sent = analytics.sent + ?3, delivered = analytics.delivered + ?4,"
              " spam = analytics.spam + ?5, opened = analytics.opened + ?6,"
              " read = analytics.read + ?7, bounced = analytics.bounced + ?8,"
              " complained = analytics.complained + ?9");
    int rc = st ? 0 : -1;
    for (size_t i = 0; rc == 0 && i < b->n; i++) {
        sqldb_bind_int64(st, 1, b->v[i].series);
        sqldb_bind_int64(st, 2, b->v[i].hour);
        for (int q = 0; q < HAN_N; q++)
            sqldb_bind_int64(st, 3 + q, b->v[i].n[q]);
        rc = sqldb_run(st);
    }
    sqldb_finalize(st);
    return rc;
}

struct hpg_agg *hpg_agg_find(struct hpg_agg **v, size_t *n, size_t *cap, int64_t email_id,
                             const char *domain)
{
    for (size_t i = 0; i < *n; i++)
        if (domain ? strcmp((*v)[i].key, domain) == 0 : (*v)[i].email_id == email_id)
            return &(*v)[i];
    if (*n == *cap) {
        *cap = *cap ? 2 * *cap : 16;
        *v = xreallocarray(*v, *cap, sizeof **v);
    }
    struct hpg_agg *a = &(*v)[(*n)++];
    *a = (struct hpg_agg){.email_id = email_id};
    return a;
}

int hpg_cmp_email(const void *a, const void *b)
{
    const struct hpg_agg *x = a, *y = b;
    return (x->email_id > y->email_id) - (x->email_id < y->email_id);
}
