/* hstore_pg.c - the PostgreSQL backend of the health store (hstore.h),
 * chosen by a postgres:// DATABASE_URL: the same tables as the SQLite
 * backend's latest schema (users, domains, copies, email_stats,
 * analytics_series, analytics), one database shared by every
 * health-service instance. Counters are kept by "+ delta" upserts in the
 * transactions that change the copies, so instances ingesting different
 * Kafka partitions add up; rows are locked in one order (emails, then
 * domains, then analytics cells, each sorted) so concurrent batches never
 * deadlock. A copy is keyed by its Message-ID (UNIQUE): a redelivered
 * event finds it.
 *
 * Threads as hstore.h: writes on the writer connection under w_lock (the
 * consumer's writer, the scheduler's workers, the bounce reader), reads
 * on the reader connection under r_lock. libpq connections are not
 * shared across threads otherwise. */
#include "hstore_pg.h"
#include "errbuf.h"
#include "hstore_delta.h"
#include "log.h"
#include "sqldb.h"
#include "timeutil.h"
#include "xalloc.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HOUR_MS INT64_C(3600000)

static const char *const migrations[] = {
    /* 1: the SQLite backend's schema 11, as one */
    "CREATE TABLE users (email_id TEXT PRIMARY KEY, domain TEXT NOT NULL, name TEXT NOT NULL,"
    " registered_at TEXT NOT NULL);"
    "CREATE TABLE domains (domain TEXT PRIMARY KEY, users BIGINT NOT NULL DEFAULT 0,"
    " first_seen TEXT NOT NULL, last_seen TEXT NOT NULL, tracked BIGINT NOT NULL DEFAULT 0,"
    " checked BIGINT NOT NULL DEFAULT 0, last_round_at BIGINT, last_error TEXT,"
    " delivered BIGINT NOT NULL DEFAULT 0, spam BIGINT NOT NULL DEFAULT 0,"
    " opened BIGINT NOT NULL DEFAULT 0, read BIGINT NOT NULL DEFAULT 0,"
    " bounced BIGINT NOT NULL DEFAULT 0, complained BIGINT NOT NULL DEFAULT 0,"
    " unchecked BIGINT NOT NULL DEFAULT 0, rescued BIGINT NOT NULL DEFAULT 0);"
    "CREATE TABLE copies (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    " message_id TEXT NOT NULL UNIQUE, email_id BIGINT NOT NULL, broadcast_id TEXT NOT NULL,"
    " recipient TEXT NOT NULL, domain TEXT NOT NULL, smtp_client TEXT NOT NULL,"
    " sent_at BIGINT NOT NULL, bounced BIGINT NOT NULL DEFAULT 0, bounce TEXT, smtp_reply TEXT,"
    " placement BIGINT NOT NULL DEFAULT 0, opened BIGINT NOT NULL DEFAULT 0,"
    " read BIGINT NOT NULL DEFAULT 0, rounds BIGINT NOT NULL DEFAULT 0, checked_at BIGINT,"
    " complained BIGINT NOT NULL DEFAULT 0, feedback_type TEXT, identity TEXT, found_at BIGINT,"
    " rescued BIGINT NOT NULL DEFAULT 0, campaign BIGINT, variant TEXT, series BIGINT);"
    "CREATE INDEX copies_open ON copies(domain, sent_at) WHERE bounced = 0 AND placement <> 4;"
    "CREATE INDEX copies_email ON copies(email_id, sent_at);"
    "CREATE INDEX copies_sent ON copies(sent_at);"
    "CREATE TABLE email_stats (email_id BIGINT PRIMARY KEY, broadcast_id TEXT NOT NULL,"
    " tracked BIGINT NOT NULL DEFAULT 0, delivered BIGINT NOT NULL DEFAULT 0,"
    " spam BIGINT NOT NULL DEFAULT 0, opened BIGINT NOT NULL DEFAULT 0,"
    " read BIGINT NOT NULL DEFAULT 0, bounced BIGINT NOT NULL DEFAULT 0, checked_at BIGINT,"
    " complained BIGINT NOT NULL DEFAULT 0, first_sent_at BIGINT,"
    " unchecked BIGINT NOT NULL DEFAULT 0, rescued BIGINT NOT NULL DEFAULT 0);"
    "CREATE INDEX email_stats_broadcast ON email_stats(broadcast_id);"
    "CREATE TABLE analytics_series (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    " domain TEXT NOT NULL, identity TEXT NOT NULL, campaign BIGINT NOT NULL,"
    " variant TEXT NOT NULL, UNIQUE (domain, identity, campaign, variant));"
    "CREATE TABLE analytics (series BIGINT NOT NULL, hour BIGINT NOT NULL, sent BIGINT NOT NULL,"
    " delivered BIGINT NOT NULL, spam BIGINT NOT NULL, opened BIGINT NOT NULL,"
    " read BIGINT NOT NULL, bounced BIGINT NOT NULL, complained BIGINT NOT NULL,"
    " PRIMARY KEY (series, hour));",
};

struct hpg {
    struct hstore base; /* first */
    pthread_mutex_t w_lock, r_lock;
    struct sqldb *w, *r;
    /* the leader lock: a session advisory lock on a connection of its own
     * (l_lock), opened on first use; held: this instance has it */
    pthread_mutex_t l_lock;
    struct sqldb *l;
    char *url;
    bool held, told; /* told: the state was logged once */
};

/* the advisory lock key of the rounds' leader */
#define LEADER_KEY "7405921312"

static struct hpg *hpg(struct hstore *s)
{
    return (struct hpg *)s;
}

/* ---- small helpers ------------------------------------------------------- */

/* lock_reader - r_lock, with the reader reconnected if its connection broke
 * (the failed query before found it: a restarted server costs one error) */
static void lock_reader(struct hpg *s)
{
    pthread_mutex_lock(&s->r_lock);
    sqldb_ok(s->r);
}

static void bind_text_or_null(struct sqldb_stmt *st, int i, const char *v)
{
    if (v)
        sqldb_bind_text(st, i, v, -1);
    else
        sqldb_bind_null(st, i);
}

static char *col_dup(struct sqldb_stmt *st, int i)
{
    const char *t = sqldb_column_text(st, i);
    return xstrdup(t ? t : "");
}

/* ---- counters -------------------------------------------------------------- */

/* stats_add - d into email_id's counters (row made if new) */
static int stats_add(struct hpg *s, int64_t email_id, const char *broadcast_id, int64_t first_sent,
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
static int domain_add(struct hpg *s, const char *domain, const struct hstore_delta *d,
                      int64_t checked, bool round, int64_t now_ms, const char *error)
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
    bind_text_or_null(st, 14, error);
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
static int an_flush(struct hpg *s, struct han_batch *b)
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

/* what a batch adds to one email or one domain */
struct agg {
    int64_t email_id;
    const char *key; /* domain, or the email's broadcast_id */
    struct hstore_delta d;
    int64_t first_sent; /* ingest: the earliest new copy's sent_at, 0 none */
    bool checked;       /* a round: some copy of the email was checked */
};

static struct agg *agg_find(struct agg **v, size_t *n, size_t *cap, int64_t email_id,
                            const char *domain)
{
    for (size_t i = 0; i < *n; i++)
        if (domain ? strcmp((*v)[i].key, domain) == 0 : (*v)[i].email_id == email_id)
            return &(*v)[i];
    if (*n == *cap) {
        *cap = *cap ? 2 * *cap : 16;
        *v = xreallocarray(*v, *cap, sizeof **v);
    }
    struct agg *a = &(*v)[(*n)++];
    *a = (struct agg){.email_id = email_id};
    return a;
}

static int cmp_email(const void *a, const void *b)
{
    const struct agg *x = a, *y = b;
    return (x->email_id > y->email_id) - (x->email_id < y->email_id);
}

static int cmp_domain(const void *a, const void *b)
{
    return strcmp(((const struct agg *)a)->key, ((const struct agg *)b)->key);
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
        bind_text_or_null(up, 2, e->smtp_reply);
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
    bind_text_or_null(ins, 9, e->smtp_reply);
    bind_text_or_null(ins, 10, e->identity);
    if (e->campaign)
        sqldb_bind_int64(ins, 11, e->campaign);
    else
        sqldb_bind_null(ins, 11);
    bind_text_or_null(ins, 12, e->variant);
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
    struct agg *em = NULL, *dm = NULL;
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
        struct agg *x = agg_find(&em, &nem, &cem, e->email_id, NULL);
        struct agg *y = agg_find(&dm, &ndm, &cdm, 0, e->domain);
        x->key = e->broadcast_id;
        y->key = e->domain;
        x->d.tracked += t, y->d.tracked += t;
        x->d.bounced += b, y->d.bounced += b;
        if (e->sent_at_ms > 0 && (!x->first_sent || e->sent_at_ms < x->first_sent))
            x->first_sent = e->sent_at_ms;
        *added += t;
    }
    if (nem > 1)
        qsort(em, nem, sizeof *em, cmp_email);
    if (ndm > 1)
        qsort(dm, ndm, sizeof *dm, cmp_domain);
    for (size_t i = 0; i < nem; i++)
        if (stats_add(s, em[i].email_id, em[i].key, em[i].first_sent, &em[i].d, 0) != 0)
            goto out;
    for (size_t i = 0; i < ndm; i++)
        if (domain_add(s, dm[i].key, &dm[i].d, 0, false, now, NULL) != 0)
            goto out;
    if (an_flush(s, &an) != 0)
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

static int hpg_apply_events(struct hstore *store, const struct user_event *users, size_t nu,
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

/* ---- domains ----------------------------------------------------------------- */

#define DOMAIN_COLS                                                                                \
    "domain, users, first_seen, last_seen, tracked, checked, last_round_at, last_error,"           \
    " delivered, spam, opened, read, bounced, complained, unchecked, rescued"

static int hpg_domains(struct hstore *store, struct hstore_domain **out, size_t *n)
{
    struct hpg *s = hpg(store);
    size_t cap = 0;
    int r = -1;
    *out = NULL;
    *n = 0;
    lock_reader(s);
    struct sqldb_stmt *q =
        sqldb_prepare(s->r, "SELECT " DOMAIN_COLS " FROM domains ORDER BY domain");
    while (q && (r = sqldb_step(q)) == SQLDB_ROW) {
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            *out = xreallocarray(*out, cap, sizeof **out);
        }
        (*out)[(*n)++] = (struct hstore_domain){
            .domain = col_dup(q, 0),
            .users = sqldb_column_int64(q, 1),
            .first_seen = col_dup(q, 2),
            .last_seen = col_dup(q, 3),
            .checked = sqldb_column_int64(q, 5),
            .has_round = !sqldb_column_null(q, 6),
            .last_round_at = sqldb_column_int64(q, 6),
            .last_error = sqldb_column_null(q, 7) ? NULL : col_dup(q, 7),
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
    lock_reader(s);
    struct sqldb_stmt *st = sqldb_prepare(s->r, sql);
    int64_t v = st && sqldb_step(st) == SQLDB_ROW ? sqldb_column_int64(st, 0) : -1;
    sqldb_finalize(st);
    pthread_mutex_unlock(&s->r_lock);
    return v;
}

static int64_t hpg_domain_count(struct hstore *store)
{
    return read_int(hpg(store), "SELECT count(*) FROM domains");
}

static int64_t hpg_tracked_count(struct hstore *store)
{
    return read_int(hpg(store), "SELECT coalesce(sum(tracked), 0) FROM email_stats");
}

static int hpg_domain_placement(struct hstore *store, const char *domain, struct hplacement *out)
{
    struct hpg *s = hpg(store);
    lock_reader(s);
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

static int hpg_domain_names(struct hstore *store, char ***names, size_t *n)
{
    struct hpg *s = hpg(store);
    size_t cap = 16;
    int r = -1;
    *n = 0;
    *names = xcalloc(cap, sizeof **names);
    lock_reader(s);
    struct sqldb_stmt *q = sqldb_prepare(s->r, "SELECT domain FROM domains ORDER BY domain");
    while (q && (r = sqldb_step(q)) == SQLDB_ROW) {
        if (*n == cap) {
            cap *= 2;
            *names = xreallocarray(*names, cap, sizeof **names);
        }
        (*names)[(*n)++] = col_dup(q, 0);
    }
    sqldb_finalize(q);
    pthread_mutex_unlock(&s->r_lock);
    return r == SQLDB_DONE ? 0 : -1;
}

/* ---- rounds ---------------------------------------------------------------------- */

static int hpg_open_copies(struct hstore *store, const char *domain, int64_t since_ms, size_t max,
                           struct hstore_copy **out, size_t *n)
{
    struct hpg *s = hpg(store);
    int r = -1;
    *n = 0;
    *out = xcalloc(max ? max : 1, sizeof **out);
    lock_reader(s);
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
            c->message_id = col_dup(st, 0);
            c->recipient = col_dup(st, 1);
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

static int hpg_apply_checks(struct hstore *store, const char *domain, const struct hstore_copy *c,
                            size_t n, int64_t now_ms, const char *error, bool domain_round)
{
    struct hpg *s = hpg(store);
    int rc = -1;
    struct agg *em = NULL;
    size_t nem = 0, cem = 0;
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
        struct agg *a = agg_find(&em, &nem, &cem, x->email_id, NULL);
        a->checked = a->checked || checked;
        hstore_delta_check(&a->d, x, p, opened, read, rescued);
        hstore_delta_check(&all, x, p, opened, read, rescued);
        han_add_check(&an, x, p, opened, read);
    }
    if (nem > 1)
        qsort(em, nem, sizeof *em, cmp_email);
    for (size_t j = 0; j < nem; j++)
        if (stats_add(s, em[j].email_id, NULL, 0, &em[j].d, em[j].checked ? now_ms : 0) != 0)
            goto out;
    if (domain_add(s, domain, &all, newly_checked, domain_round, now_ms, error) != 0 ||
        an_flush(s, &an) != 0)
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
    free(em);
    return rc;
}

/* ---- /mail_stats ------------------------------------------------------------ */

#define STATS_COLS                                                                                 \
    "email_id, broadcast_id, tracked, delivered, spam, opened, read, bounced, checked_at,"         \
    " complained, unchecked, rescued"

/* stats_row - a row of STATS_COLS into t */
static void stats_row(struct hstore_stats *t, struct sqldb_stmt *st)
{
    t->email_id = sqldb_column_int64(st, 0);
    t->message_id = col_dup(st, 1);
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

static int hpg_stats_email(struct hstore *store, int64_t email_id, const char *broadcast_id,
                           struct hstore_stats *out)
{
    struct hpg *s = hpg(store);
    lock_reader(s);
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

static int hpg_stats_copy(struct hstore *store, const char *message_id, struct hstore_stats *out)
{
    struct hpg *s = hpg(store);
    lock_reader(s);
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
            out->recipient = col_dup(st, 12);
            out->domain = col_dup(st, 13);
        }
    }
    sqldb_finalize(st);
    pthread_mutex_unlock(&s->r_lock);
    return r == SQLDB_ROW ? 0 : r == SQLDB_DONE ? 1 : -1;
}

static int hpg_all_stats(struct hstore *store, int64_t limit, int64_t offset,
                         struct hstore_stats **out, size_t *n)
{
    struct hpg *s = hpg(store);
    size_t cap = 16;
    int r = -1;
    *n = 0;
    *out = xcalloc(cap, sizeof **out);
    lock_reader(s);
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

/* ---- bounce and complaint reports ---------------------------------------------- */

static int hpg_apply_feedback(struct hstore *store, const char *message_id,
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
        bind_text_or_null(st, 2, f->feedback_type);
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
    char *domain = col_dup(st, 1);
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
        e = stats_add(s, email_id, NULL, 0, &d, 0) ||
            domain_add(s, domain, &d, 0, false, now, NULL);
    }
    free(domain);
    if (e || an_flush(s, &an) != 0 || sqldb_commit(s->w) != 0)
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

/* ---- placement ------------------------------------------------------------------ */

static int hpg_placement_counts(struct hstore *store, int64_t since_ms,
                                struct hstore_placement_row **out, size_t *n)
{
    struct hpg *s = hpg(store);
    size_t cap = 16;
    int r = -1;
    *n = 0;
    *out = xcalloc(cap, sizeof **out);
    lock_reader(s);
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
                .identity = sqldb_column_null(q, 0) ? NULL : col_dup(q, 0),
                .domain = col_dup(q, 1),
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

static int hpg_inbox_delays(struct hstore *store, int64_t since_ms, struct hstore_delay_row **out,
                            size_t *n)
{
    struct hpg *s = hpg(store);
    size_t cap = 16;
    int r = -1;
    *n = 0;
    *out = xcalloc(cap, sizeof **out);
    lock_reader(s);
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
            (*out)[(*n)++] = (struct hstore_delay_row){.domain = col_dup(q, 0),
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

static int hpg_reconcile(struct hstore *store, int64_t email_id, int64_t window_start_ms,
                         struct hstore_recon *out)
{
    struct hpg *s = hpg(store);
    struct hstore_recon r = {.email_id = email_id};
    int rc = -1, step = -1;
    lock_reader(s);
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
            r.missing_ids[r.nmissing_ids++] = col_dup(st, 0);
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

static int hpg_analytics(struct hstore *store, const struct hstore_an_query *q,
                         struct hstore_an_row **out, size_t *n)
{
    struct hpg *s = hpg(store);
    int w = q->bucket_hours > 0 ? q->bucket_hours : 1, r = -1;
    size_t cap = 64;
    *n = 0;
    *out = xcalloc(cap, sizeof **out);
    lock_reader(s);
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
        bind_text_or_null(st, 3, q->domain);
        bind_text_or_null(st, 4, q->identity);
        if (q->campaign)
            sqldb_bind_int64(st, 5, q->campaign);
        else
            sqldb_bind_null(st, 5);
        bind_text_or_null(st, 6, q->variant);
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

/* ---- the leader ------------------------------------------------------------------- */

/* holds - the lock is held on a live connection (a query proves it) */
static bool holds(struct hpg *s)
{
    struct sqldb_stmt *st = sqldb_prepare(s->l, "SELECT 1");
    bool ok = st && sqldb_step(st) == SQLDB_ROW;
    sqldb_finalize(st);
    return ok;
}

static bool hpg_leader(struct hstore *store)
{
    struct hpg *s = hpg(store);
    char err[256];
    pthread_mutex_lock(&s->l_lock);
    bool was = s->held;
    if (s->held && !holds(s)) /* the connection went, and the lock with it */
        s->held = false;
    if (!s->held) {
        if (s->l && !sqldb_ok(s->l)) {
            sqldb_close(s->l);
            s->l = NULL;
        }
        if (!s->l && !(s->l = sqldb_open_pg(s->url, err, sizeof err)))
            log_warn("hstore: leader lock: %s", err);
        struct sqldb_stmt *st =
            s->l ? sqldb_prepare(s->l, "SELECT pg_try_advisory_lock(" LEADER_KEY ")") : NULL;
        s->held = st && sqldb_step(st) == SQLDB_ROW && sqldb_column_int64(st, 0) == 1;
        sqldb_finalize(st);
    }
    if (s->held != was || !s->told)
        log_info(s->held ? "hstore: this instance is the leader: it runs the rounds"
                         : "hstore: another instance is the leader: this one ingests only");
    s->told = true;
    bool held = s->held;
    pthread_mutex_unlock(&s->l_lock);
    return held;
}

/* ---- opening ----------------------------------------------------------------------- */

static void hpg_free(struct hstore *store)
{
    struct hpg *s = hpg(store);
    sqldb_close(s->w);
    sqldb_close(s->r);
    sqldb_close(s->l); /* the leader lock goes with its session */
    pthread_mutex_destroy(&s->w_lock);
    pthread_mutex_destroy(&s->r_lock);
    pthread_mutex_destroy(&s->l_lock);
    if (s->url)
        explicit_bzero(s->url, strlen(s->url));
    free(s->url);
    free(s);
}

static const struct hstore_ops hpg_ops = {
    .name = "postgres",
    .free = hpg_free,
    .apply_events = hpg_apply_events,
    .key_copies = NULL,
    .domains = hpg_domains,
    .domain_count = hpg_domain_count,
    .domain_placement = hpg_domain_placement,
    .domain_names = hpg_domain_names,
    .open_copies = hpg_open_copies,
    .apply_checks = hpg_apply_checks,
    .stats_email = hpg_stats_email,
    .stats_copy = hpg_stats_copy,
    .all_stats = hpg_all_stats,
    .tracked_count = hpg_tracked_count,
    .apply_feedback = hpg_apply_feedback,
    .placement_counts = hpg_placement_counts,
    .inbox_delays = hpg_inbox_delays,
    .reconcile = hpg_reconcile,
    .analytics = hpg_analytics,
    .leader = hpg_leader,
};

struct hstore *hstore_pg_open(const char *url, char *errbuf, size_t errlen)
{
    struct hpg *s = xcalloc(1, sizeof *s);
    s->base.ops = &hpg_ops;
    pthread_mutex_init(&s->w_lock, NULL);
    pthread_mutex_init(&s->r_lock, NULL);
    pthread_mutex_init(&s->l_lock, NULL);
    s->url = xstrdup(url);
    if (!(s->w = sqldb_open_pg(url, errbuf, errlen)) ||
        !(s->r = sqldb_open_pg(url, errbuf, errlen)) ||
        sqldb_migrate(s->w, migrations, sizeof migrations / sizeof migrations[0], errbuf, errlen) !=
            0) {
        hpg_free(&s->base);
        return NULL;
    }
    return &s->base;
}
