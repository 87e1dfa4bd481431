/* hstore_pg_read.c - the PostgreSQL backend's reads on the reader
 * connection under r_lock (HTTP threads, the scheduler, the placement
 * thread): domains, /mail_stats, placement by identity and domain, time to
 * inbox, reconciliation and /analytics. */
#include "hstore_pg_int.h"
#include "log.h"
#include "xalloc.h"

#include <stdlib.h>
#include <string.h>

/* ---- domains ----------------------------------------------------------------- */

#define DOMAIN_COLS                                                                                \
    "domain, users, first_seen, last_seen, tracked, checked, last_round_at, last_error,"           \
    " delivered, spam, opened, read, bounced, complained, unchecked, rescued"

int hpg_domains(struct hstore *store, struct hstore_domain **out, size_t *n)
{
    struct hpg *s = hpg(store);
    size_t cap = 0;
    int r = -1;
    *out = NULL;
    *n = 0;
    hpg_lock_reader(s);
    struct sqldb_stmt *q =
        sqldb_prepare(s->r, "SELECT " DOMAIN_COLS " FROM domains ORDER BY domain");
    while (q && (r = sqldb_step(q)) == SQLDB_ROW) {
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            *out = xreallocarray(*out, cap, sizeof **out);
        }
        (*out)[(*n)++] = (struct hstore_domain){
            .domain = hpg_col_dup(q, 0),
            .users = sqldb_column_int64(q, 1),
            .first_seen = hpg_col_dup(q, 2),
            .last_seen = hpg_col_dup(q, 3),
            .checked = sqldb_column_int64(q, 5),
            .has_round = !sqldb_column_null(q, 6),
            .last_round_at = sqldb_column_int64(q, 6),
            .last_error = sqldb_column_null(q, 7) ? NULL : hpg_col_dup(q, 7),
            .n = {.tracked = sqldb_column_int64(q, 4),
                  .delivered = sqldb_column_int64(q, 8),
                  .spam = sqldb_column_int64(q, 9),
                  .opened = sqldb_column_int64(q, 10),
                  .read = sqldb_column_int64(q, 11),
                  .bounced = sqldb_column_int64(q, 12),
                  .complained = sqldb_column_int64(q, 13),
                  .unchecked = sqldb_column_int64(q, 14),
                  .rescued = sqldb_column_int64(q, 15)},
        };
    }
    sqldb_finalize(q);
    pthread_mutex_unlock(&s->r_lock);
    if (r == SQLDB_DONE)
        return 0;
    for (size_t i = 0; i < *n; i++) {
        free((*out)[i].domain);
        free((*out)[i].first_seen);
        free((*out)[i].last_seen);
        free((*out)[i].last_error);
    }
    free(*out);
    *out = NULL;
    *n = 0;
    return -1;
}

/* read_int - the one integer sql answers on the reader, or -1 */
static int64_t read_int(struct hpg *s, const char *sql)
{
    hpg_lock_reader(s);
    struct sqldb_stmt *st = sqldb_prepare(s->r, sql);
    int64_t v = st && sqldb_step(st) == SQLDB_ROW ? sqldb_column_int64(st, 0) : -1;
    sqldb_finalize(st);
    pthread_mutex_unlock(&s->r_lock);
    return v;
}

int64_t hpg_domain_count(struct hstore *store)
{
    return read_int(hpg(store), "SELECT count(*) FROM domains");
}

int64_t hpg_tracked_count(struct hstore *store)
{
    return read_int(hpg(store), "SELECT coalesce(sum(tracked), 0) FROM email_stats");
}

int hpg_domain_placement(struct hstore *store, const char *domain, struct hplacement *out)
{
    struct hpg *s = hpg(store);
    hpg_lock_reader(s);
    struct sqldb_stmt *q = sqldb_prepare(
        s->r, "SELECT tracked, delivered, spam, opened, read, bounced, complained, unchecked,"
              " rescued FROM domains WHERE domain = ?1");
    int r = -1;
    if (q) {
        sqldb_bind_text(q, 1, domain, -1);
        r = sqldb_step(q);
        if (r == SQLDB_ROW)
            *out = (struct hplacement){
                .tracked = sqldb_column_int64(q, 0),
                .delivered = sqldb_column_int64(q, 1),
                .spam = sqldb_column_int64(q, 2),
                .opened = sqldb_column_int64(q, 3),
                .read = sqldb_column_int64(q, 4),
                .bounced = sqldb_column_int64(q, 5),
                .complained = sqldb_column_int64(q, 6),
                .unchecked = sqldb_column_int64(q, 7),
                .rescued = sqldb_column_int64(q, 8),
            };
    }
    sqldb_finalize(q);
    pthread_mutex_unlock(&s->r_lock);
    return r == SQLDB_ROW ? 0 : r == SQLDB_DONE ? 1 : -1;
}

int hpg_domain_names(struct hstore *store, char ***names, size_t *n)
{
    struct hpg *s = hpg(store);
    size_t cap = 16;
    int r = -1;
    *n = 0;
    *names = xcalloc(cap, sizeof **names);
    hpg_lock_reader(s);
    struct sqldb_stmt *q = sqldb_prepare(s->r, "SELECT domain FROM domains ORDER BY domain");
    while (q && (r = sqldb_step(q)) == SQLDB_ROW) {
        if (*n == cap) {
            cap *= 2;
            *names = xreallocarray(*names, cap, sizeof **names);
        }
        (*names)[(*n)++] = hpg_col_dup(q, 0);
    }
    sqldb_finalize(q);
    pthread_mutex_unlock(&s->r_lock);
    return r == SQLDB_DONE ? 0 : -1;
}

/* ---- /mail_stats ------------------------------------------------------------ */

#define STATS_COLS                                                                                 \
    "email_id, broadcast_id, tracked, delivered, spam, opened, read, bounced, checked_at,"         \
    " complained, unchecked, rescued"

/* stats_row - a row of STATS_COLS into t */
static void stats_row(struct hstore_stats *t, struct sqldb_stmt *st)
{
    t->email_id = sqldb_column_int64(st, 0);
    t->message_id = hpg_col_dup(st, 1);
    t->n.tracked = sqldb_column_int64(st, 2);
    t->n.delivered = sqldb_column_int64(st, 3);
    t->n.spam = sqldb_column_int64(st, 4);
    t->n.opened = sqldb_column_int64(st, 5);
    t->n.read = sqldb_column_int64(st, 6);
    t->n.bounced = sqldb_column_int64(st, 7);
    t->checked = !sqldb_column_null(st, 8);
    t->checked_at = sqldb_column_int64(st, 8);
    t->n.complained = sqldb_column_int64(st, 9);
    t->n.unchecked = sqldb_column_int64(st, 10);
    t->n.rescued = sqldb_column_int64(st, 11);
}

int hpg_stats_email(struct hstore *store, int64_t email_id, const char *broadcast_id,
                    struct hstore_stats *out)
{
    struct hpg *s = hpg(store);
    hpg_lock_reader(s);
    struct sqldb_stmt *st = sqldb_prepare(
        s->r, broadcast_id ? "SELECT " STATS_COLS " FROM email_stats WHERE broadcast_id = ?1"
                             " ORDER BY email_id LIMIT 1"
                           : "SELECT " STATS_COLS " FROM email_stats WHERE email_id = ?1");
    int r = -1;
    if (st) {
        if (broadcast_id)
            sqldb_bind_text(st, 1, broadcast_id, -1);
        else
            sqldb_bind_int64(st, 1, email_id);
        r = sqldb_step(st);
        if (r == SQLDB_ROW) {
            *out = (struct hstore_stats){0};
            stats_row(out, st);
        }
    }
    sqldb_finalize(st);
    pthread_mutex_unlock(&s->r_lock);
    return r == SQLDB_ROW ? 0 : r == SQLDB_DONE ? 1 : -1;
}

int hpg_stats_copy(struct hstore *store, const char *message_id, struct hstore_stats *out)
{
    struct hpg *s = hpg(store);
    hpg_lock_reader(s);
    struct sqldb_stmt *st = sqldb_prepare(
        s->r, "SELECT email_id, message_id, 1, CASE WHEN placement = 2 THEN 1 ELSE 0 END,"
              " CASE WHEN placement = 3 THEN 1 ELSE 0 END, opened, read, bounced, checked_at,"
              " complained, CASE WHEN placement = 4 THEN 1 ELSE 0 END, rescued, recipient, domain"
              " FROM copies WHERE message_id = ?1");
    int r = -1;
    if (st) {
        sqldb_bind_text(st, 1, message_id, -1);
        r = sqldb_step(st);
        if (r == SQLDB_ROW) {
            *out = (struct hstore_stats){0};
            stats_row(out, st);
            out->recipient = hpg_col_dup(st, 12);
            out->domain = hpg_col_dup(st, 13);
        }
    }
    sqldb_finalize(st);
    pthread_mutex_unlock(&s->r_lock);
    return r == SQLDB_ROW ? 0 : r == SQLDB_DONE ? 1 : -1;
}

int hpg_all_stats(struct hstore *store, int64_t limit, int64_t offset, struct hstore_stats **out,
                  size_t *n)
{
    struct hpg *s = hpg(store);
    size_t cap = 16;
    int r = -1;
    *n = 0;
    *out = xcalloc(cap, sizeof **out);
    hpg_lock_reader(s);
    struct sqldb_stmt *st = sqldb_prepare(
        s->r, "SELECT " STATS_COLS " FROM email_stats ORDER BY email_id LIMIT ?1 OFFSET ?2");
    if (st) {
        sqldb_bind_int64(st, 1, limit);
        sqldb_bind_int64(st, 2, offset);
        while ((r = sqldb_step(st)) == SQLDB_ROW) {
            if (*n == cap) {
                cap *= 2;
                *out = xreallocarray(*out, cap, sizeof **out);
            }
            (*out)[*n] = (struct hstore_stats){0};
            stats_row(&(*out)[(*n)++], st);
        }
    }
    sqldb_finalize(st);
    pthread_mutex_unlock(&s->r_lock);
    if (r == SQLDB_DONE)
        return 0;
    for (size_t i = 0; i < *n; i++)
        free((*out)[i].message_id);
    free(*out);
    *out = NULL;
    *n = 0;
    return -1;
}

/* ---- placement ------------------------------------------------------------------ */

int hpg_placement_counts(struct hstore *store, int64_t since_ms, struct hstore_placement_row **out,
                         size_t *n)
{
    struct hpg *s = hpg(store);
    size_t cap = 16;
    int r = -1;
    *n = 0;
    *out = xcalloc(cap, sizeof **out);
    hpg_lock_reader(s);
    struct sqldb_stmt *q = sqldb_prepare(
        s->r, "SELECT nullif(identity, ''), domain, count(*),"
              " sum(CASE WHEN bounced = 1 THEN 1 ELSE 0 END),"
              " sum(CASE WHEN bounced = 0 AND complained = 1 THEN 1 ELSE 0 END),"
              " sum(CASE WHEN bounced = 0 AND complained = 0 AND placement = 3 THEN 1 ELSE 0 END),"
              " sum(CASE WHEN bounced = 0 AND complained = 0 AND placement = 2 THEN 1 ELSE 0 END)"
              " FROM copies WHERE sent_at >= ?1 GROUP BY 1, 2 ORDER BY 1 NULLS FIRST, 2");
    if (q) {
        sqldb_bind_int64(q, 1, since_ms);
        while ((r = sqldb_step(q)) == SQLDB_ROW) {
            if (*n == cap) {
                cap *= 2;
                *out = xreallocarray(*out, cap, sizeof **out);
            }
            struct hstore_placement_row *x = &(*out)[(*n)++];
            *x = (struct hstore_placement_row){
                .identity = sqldb_column_null(q, 0) ? NULL : hpg_col_dup(q, 0),
                .domain = hpg_col_dup(q, 1),
                .copies = sqldb_column_int64(q, 2),
                .bounced = sqldb_column_int64(q, 3),
                .complained = sqldb_column_int64(q, 4),
                .spam = sqldb_column_int64(q, 5),
                .inbox = sqldb_column_int64(q, 6),
            };
            x->checked = x->bounced + x->complained + x->spam + x->inbox;
        }
    }
    sqldb_finalize(q);
    pthread_mutex_unlock(&s->r_lock);
    if (r == SQLDB_DONE)
        return 0;
    for (size_t i = 0; i < *n; i++) {
        free((*out)[i].identity);
        free((*out)[i].domain);
    }
    free(*out);
    *out = NULL;
    *n = 0;
    return -1;
}

int hpg_inbox_delays(struct hstore *store, int64_t since_ms, struct hstore_delay_row **out,
                     size_t *n)
{
    struct hpg *s = hpg(store);
    size_t cap = 16;
    int r = -1;
    *n = 0;
    *out = xcalloc(cap, sizeof **out);
    hpg_lock_reader(s);
    struct sqldb_stmt *q =
        sqldb_prepare(s->r, "SELECT domain, greatest(0, (found_at - sent_at + 999) / 1000) AS d,"
                            " count(*) FROM copies WHERE sent_at >= ?1 AND placement = 2"
                            " AND found_at > 0 GROUP BY 1, 2 ORDER BY 1, 2");
    if (q) {
        sqldb_bind_int64(q, 1, since_ms);
        while ((r = sqldb_step(q)) == SQLDB_ROW) {
            if (*n == cap) {
                cap *= 2;
                *out = xreallocarray(*out, cap, sizeof **out);
            }
            (*out)[(*n)++] = (struct hstore_delay_row){.domain = hpg_col_dup(q, 0),
                                                       .delay_s = sqldb_column_int64(q, 1),
                                                       .count = sqldb_column_int64(q, 2)};
        }
    }
    sqldb_finalize(q);
    pthread_mutex_unlock(&s->r_lock);
    if (r == SQLDB_DONE)
        return 0;
    for (size_t i = 0; i < *n; i++)
        free((*out)[i].domain);
    free(*out);
    *out = NULL;
    *n = 0;
    return -1;
}

/* ---- reconciliation -------------------------------------------------------------- */

/* a copy not found: in no folder, not bounced, not complained, not unchecked */
#define NOT_FOUND "bounced = 0 AND complained = 0 AND placement NOT IN (2, 3, 4)"

int hpg_reconcile(struct hstore *store, int64_t email_id, int64_t window_start_ms,
                  struct hstore_recon *out)
{
    struct hpg *s = hpg(store);
    struct hstore_recon r = {.email_id = email_id};
    int rc = -1, step = -1;
    hpg_lock_reader(s);
    /* both statements see one snapshot: the states add up to tracked */
    struct sqldb_stmt *st = NULL;
    if (sqldb_exec(s->r, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") != 0)
        goto out;
    st = sqldb_prepare(
        s->r, "SELECT count(*),"
              " sum(CASE WHEN bounced = 0 OR bounce IS NOT NULL THEN 1 ELSE 0 END),"
              " sum(CASE WHEN bounced <> 0 THEN 1 ELSE 0 END),"
              " sum(CASE WHEN bounced = 0 AND complained <> 0 THEN 1 ELSE 0 END),"
              " sum(CASE WHEN bounced = 0 AND complained = 0 AND placement = 3 THEN 1 ELSE 0 END),"
              " sum(CASE WHEN bounced = 0 AND complained = 0 AND placement = 2 THEN 1 ELSE 0 END),"
              " sum(CASE WHEN bounced = 0 AND complained = 0 AND placement = 4 THEN 1 ELSE 0 END),"
              " sum(CASE WHEN " NOT_FOUND " AND sent_at >= ?2 THEN 1 ELSE 0 END),"
              " sum(CASE WHEN " NOT_FOUND " AND sent_at < ?2 THEN 1 ELSE 0 END)"
              " FROM copies WHERE email_id = ?1");
    if (!st)
        goto out;
    sqldb_bind_int64(st, 1, email_id);
    sqldb_bind_int64(st, 2, window_start_ms);
    if (sqldb_step(st) != SQLDB_ROW)
        goto out;
    int64_t *v[] = {&r.tracked, &r.accepted,  &r.bounced, &r.complained, &r.spam,
                    &r.inbox,   &r.unchecked, &r.pending, &r.missing};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        *v[i] = sqldb_column_int64(st, (int)i); /* NULL (no copy): 0 */
    sqldb_finalize(st);
    st = NULL;
    if (r.tracked == 0) {
        rc = 1;
        goto out;
    }
    if (r.missing > 0) {
        st = sqldb_prepare(s->r,
                           "SELECT message_id FROM copies WHERE email_id = ?1"
                           " AND sent_at < ?2 AND " NOT_FOUND " ORDER BY sent_at, id LIMIT ?3");
        if (!st)
            goto out;
        sqldb_bind_int64(st, 1, email_id);
        sqldb_bind_int64(st, 2, window_start_ms);
        sqldb_bind_int64(st, 3, HSTORE_RECON_IDS);
        r.missing_ids = xcalloc(HSTORE_RECON_IDS, sizeof *r.missing_ids);
        while (r.nmissing_ids < HSTORE_RECON_IDS && (step = sqldb_step(st)) == SQLDB_ROW)
            r.missing_ids[r.nmissing_ids++] = hpg_col_dup(st, 0);
        if (r.nmissing_ids < HSTORE_RECON_IDS && step != SQLDB_DONE)
            goto out;
    }
    rc = 0;
out:
    sqldb_finalize(st);
    sqldb_rollback(s->r);
    pthread_mutex_unlock(&s->r_lock);
    if (rc < 0)
        log_error("hstore: reconciliation of email %lld failed: %s", (long long)email_id,
                  sqldb_errmsg(s->r));
    if (rc == 0) {
        *out = r;
    } else {
        for (size_t i = 0; i < r.nmissing_ids; i++)
            free(r.missing_ids[i]);
        free(r.missing_ids);
    }
    return rc;
}

/* ---- analytics --------------------------------------------------------------------- */

int hpg_analytics(struct hstore *store, const struct hstore_an_query *q, struct hstore_an_row **out,
                  size_t *n)
{
    struct hpg *s = hpg(store);
    int w = q->bucket_hours > 0 ? q->bucket_hours : 1, r = -1;
    size_t cap = 64;
    *n = 0;
    *out = xcalloc(cap, sizeof **out);
    hpg_lock_reader(s);
    struct sqldb_stmt *st = sqldb_prepare(
        s->r, "SELECT a.hour / ?7 AS bucket, sum(a.sent), sum(a.delivered), sum(a.spam),"
              " sum(a.opened), sum(a.read), sum(a.bounced), sum(a.complained)"
              " FROM analytics_series s JOIN analytics a ON a.series = s.id AND a.hour >= ?1"
              " AND a.hour < ?2 WHERE (?3::text IS NULL OR s.domain = ?3)"
              " AND (?4::text IS NULL OR s.identity = ?4)"
              " AND (?5::bigint IS NULL OR s.campaign = ?5)"
              " AND (?6::text IS NULL OR s.variant = ?6) GROUP BY 1 ORDER BY 1");
    if (st) {
        sqldb_bind_int64(st, 1, q->from_hour);
        sqldb_bind_int64(st, 2, q->to_hour);
        hpg_bind_text_or_null(st, 3, q->domain);
        hpg_bind_text_or_null(st, 4, q->identity);
        if (q->campaign)
            sqldb_bind_int64(st, 5, q->campaign);
        else
            sqldb_bind_null(st, 5);
        hpg_bind_text_or_null(st, 6, q->variant);
        sqldb_bind_int64(st, 7, w);
        while ((r = sqldb_step(st)) == SQLDB_ROW) {
            if (*n == cap) {
                cap *= 2;
                *out = xreallocarray(*out, cap, sizeof **out);
            }
            struct hstore_an_row *row = &(*out)[(*n)++];
            row->hour = sqldb_column_int64(st, 0) * w;
            for (int k = 0; k < HAN_N; k++)
                row->n[k] = sqldb_column_int64(st, 1 + k);
        }
    }
    sqldb_finalize(st);
    pthread_mutex_unlock(&s->r_lock);
    if (r == SQLDB_DONE)
        return 0;
    free(*out);
    *out = NULL;
    *n = 0;
    return -1;
}
