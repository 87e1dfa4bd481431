/* hstore_pg_ingest.c - the PostgreSQL backend's ingest (hstore_apply_events):
 * users and their domains, copies keyed by Message-ID (a redelivered
 * event adds nothing), their analytics series, and the counters they
 * change (hstore_pg_counters.c), in one transaction on the writer
 * connection under w_lock (the consumer's writer thread). */
#include "hstore_pg_int.h"
#include "timeutil.h"
#include "xalloc.h"

#include <stdlib.h>
#include <string.h>

/* series_of - the analytics series of copy e (made if new) */
static int series_of(struct hpg *s, const struct copy_event *e, int64_t *id)
{
    struct sqldb_stmt *st = sqldb_prepare(
        s->w, "WITH n AS (INSERT INTO analytics_series(domain, identity, campaign, variant)"
              " VALUES(?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING RETURNING id)"
              " SELECT id FROM n UNION ALL SELECT id FROM analytics_series WHERE domain = ?1"
              " AND identity = ?2 AND campaign = ?3 AND variant = ?4");
    if (!st)
        return -1;
    sqldb_bind_text(st, 1, e->domain, -1);
    sqldb_bind_text(st, 2, e->identity ? e->identity : "", -1);
    sqldb_bind_int64(st, 3, e->campaign);
    sqldb_bind_text(st, 4, e->variant ? e->variant : "", -1);
    int r = sqldb_step(st);
    if (r == SQLDB_ROW)
        *id = sqldb_column_int64(st, 0);
    sqldb_finalize(st);
    return r == SQLDB_ROW ? 0 : -1;
}

/* ---- ingest ------------------------------------------------------------------ */

static int cmp_domain(const void *a, const void *b)
{
    return strcmp(((const struct hpg_agg *)a)->key, ((const struct hpg_agg *)b)->key);
}

/* apply_copy - one copy event: *tracked / *bounced say what it adds; a
 * tracked copy that bounced after all is counted in an */
static int apply_copy(struct hpg *s, const struct copy_event *e, int64_t series, int64_t sent_at,
                      struct han_batch *an, bool *tracked, bool *bounced)
{
    *tracked = *bounced = false;
    if (e->failed) {
        struct sqldb_stmt *up = sqldb_prepare(
            s->w, "UPDATE copies SET bounced = 1, smtp_reply = ?2 WHERE message_id = ?1"
                  " AND bounced = 0 RETURNING coalesce(series, 0), sent_at");
        if (!up)
            return -1;
        sqldb_bind_text(up, 1, e->message_id, -1);
        hpg_bind_text_or_null(up, 2, e->smtp_reply);
        int r = sqldb_step(up);
        if (r == SQLDB_ROW) { /* a tracked copy bounced after all */
            han_add(an, sqldb_column_int64(up, 0), sqldb_column_int64(up, 1), HAN_BOUNCED, 1);
            *bounced = true;
        }
        sqldb_finalize(up);
        if (r != SQLDB_DONE)
            return r == SQLDB_ROW ? 0 : -1;
    }
    struct sqldb_stmt *ins = sqldb_prepare(
        s->w, "INSERT INTO copies(message_id, email_id, broadcast_id, recipient, domain,"
              " smtp_client, sent_at, bounced, smtp_reply, identity, campaign, variant, series)"
              " VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(message_id) DO NOTHING RETURNING id");
    if (!ins)
        return -1;
    sqldb_bind_text(ins, 1, e->message_id, -1);
    sqldb_bind_int64(ins, 2, e->email_id);
    sqldb_bind_text(ins, 3, e->broadcast_id ? e->broadcast_id : "", -1);
    sqldb_bind_text(ins, 4, e->recipient, -1);
    sqldb_bind_text(ins, 5, e->domain, -1);
    sqldb_bind_text(ins, 6, e->smtp_client ? e->smtp_client : "", -1);
    sqldb_bind_int64(ins, 7, sent_at);
    sqldb_bind_int64(ins, 8, e->failed ? 1 : 0);
    hpg_bind_text_or_null(ins, 9, e->smtp_reply);
    hpg_bind_text_or_null(ins, 10, e->identity);
    if (e->campaign)
        sqldb_bind_int64(ins, 11, e->campaign);
    else
        sqldb_bind_null(ins, 11);
    hpg_bind_text_or_null(ins, 12, e->variant);
    sqldb_bind_int64(ins, 13, series);
    int r = sqldb_step(ins);
    sqldb_finalize(ins);
    if (r < 0)
        return -1;
    if (r == SQLDB_ROW) {
        *tracked = true;
        *bounced = e->failed;
        han_add(an, series, sent_at, HAN_SENT, 1);
        if (e->failed)
            han_add(an, series, sent_at, HAN_BOUNCED, 1);
    }
    return 0;
}

/* a batch's series seen so far: most batches touch a few, so most copies
 * need no lookup (strings borrowed from the batch's events) */
#define SERIES_MEMO 64
struct series_memo {
    const char *domain, *identity, *variant;
    int64_t campaign, id;
};

static bool same_text(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

/* series_memo_of - series_of, remembered in m (*nm entries) */
static int series_memo_of(struct hpg *s, struct series_memo *m, size_t *nm,
                          const struct copy_event *e, int64_t *id)
{
    for (size_t i = 0; i < *nm; i++)
        if (m[i].campaign == e->campaign && same_text(m[i].domain, e->domain) &&
            same_text(m[i].identity, e->identity) && same_text(m[i].variant, e->variant)) {
            *id = m[i].id;
            return 0;
        }
    if (series_of(s, e, id) != 0)
        return -1;
    if (*nm < SERIES_MEMO)
        m[(*nm)++] = (struct series_memo){e->domain, e->identity, e->variant, e->campaign, *id};
    return 0;
}

static int apply_copies(struct hpg *s, const struct copy_event *c, size_t n, size_t *added,
                        int64_t entered[HAN_N])
{
    struct series_memo memo[SERIES_MEMO];
    size_t nmemo = 0;
    struct hpg_agg *em = NULL, *dm = NULL;
    size_t nem = 0, cem = 0, ndm = 0, cdm = 0;
    struct han_batch an;
    han_init(&an);
    int rc = -1;
    int64_t now = time_now_ms();
    for (size_t i = 0; i < n; i++) {
        const struct copy_event *e = &c[i];
        int64_t series = 0, at = e->sent_at_ms ? e->sent_at_ms : now;
        bool t, b;
        if (series_memo_of(s, memo, &nmemo, e, &series) != 0 ||
            apply_copy(s, e, series, at, &an, &t, &b) != 0)
            goto out;
        if (!t && !b)
            continue;
        struct hpg_agg *x = hpg_agg_find(&em, &nem, &cem, e->email_id, NULL);
        struct hpg_agg *y = hpg_agg_find(&dm, &ndm, &cdm, 0, e->domain);
        x->key = e->broadcast_id;
        y->key = e->domain;
        x->d.tracked += t, y->d.tracked += t;
        x->d.bounced += b, y->d.bounced += b;
        if (e->sent_at_ms > 0 && (!x->first_sent || e->sent_at_ms < x->first_sent))
            x->first_sent = e->sent_at_ms;
        *added += t;
    }
    if (nem > 1)
        qsort(em, nem, sizeof *em, hpg_cmp_email);
    if (ndm > 1)
        qsort(dm, ndm, sizeof *dm, cmp_domain);
    for (size_t i = 0; i < nem; i++)
        if (hpg_stats_add(s, em[i].email_id, em[i].key, em[i].first_sent, &em[i].d, 0) != 0)
            goto out;
    for (size_t i = 0; i < ndm; i++)
        if (hpg_domain_add(s, dm[i].key, &dm[i].d, 0, false, now, NULL) != 0)
            goto out;
    if (hpg_an_flush(s, &an) != 0)
        goto out;
    for (int q = 0; q < HAN_N; q++)
        entered[q] += an.entered[q];
    rc = 0;
out:
    free(em);
    free(dm);
    han_cleanup(&an);
    return rc;
}

int hpg_apply_events(struct hstore *store, const struct user_event *users, size_t nu,
                     const struct copy_event *copies, size_t nc, size_t *new_users,
                     size_t *new_copies)
{
    struct hpg *s = hpg(store);
    int rc = -1;
    int64_t entered[HAN_N] = {0};
    *new_users = *new_copies = 0;
    pthread_mutex_lock(&s->w_lock);
    if (!sqldb_ok(s->w) || sqldb_begin(s->w) != 0)
        goto out;
    for (size_t i = 0; i < nu; i++) {
        const struct user_event *e = &users[i];
        struct sqldb_stmt *st = sqldb_prepare(
            s->w, "WITH u AS (INSERT INTO users(email_id, domain, name, registered_at)"
                  " VALUES(?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING RETURNING domain)"
                  " INSERT INTO domains(domain, users, first_seen, last_seen)"
                  " SELECT domain, 1, ?4, ?4 FROM u ON CONFLICT(domain) DO UPDATE"
                  " SET users = domains.users + 1, last_seen = ?4");
        if (!st)
            goto out;
        sqldb_bind_text(st, 1, e->addr.norm, -1);
        sqldb_bind_text(st, 2, e->addr.domain, -1);
        sqldb_bind_text(st, 3, e->name ? e->name : "", -1);
        sqldb_bind_text(st, 4, e->at ? e->at : "", -1);
        int r = sqldb_run(st);
        sqldb_finalize(st);
        if (r != 0)
            goto out;
        *new_users += sqldb_changes(s->w) > 0;
    }
    if (nc && apply_copies(s, copies, nc, new_copies, entered) != 0)
        goto out;
    rc = sqldb_commit(s->w);
    if (rc == 0)
        hstore_counted(store, entered);
out:
    if (rc != 0) {
        sqldb_rollback(s->w);
        *new_users = *new_copies = 0;
    }
    pthread_mutex_unlock(&s->w_lock);
    return rc;
}
