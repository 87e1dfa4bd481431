/* hstore_sqlite_analytics.c - the /analytics counts of the SQLite store
 * (migration 11, hstore_sqlite.h): per series (recipient domain,
 * identity, campaign, variant) and hour of sending, the copies sent,
 * delivered, spam, opened, read, bounced and complained.
 *
 * Writers (the ingest, a round's results, a bounce or complaint report)
 * collect what a transaction changes in a han_batch and write one upsert
 * per (series, hour) touched before they commit, under the file's
 * w_lock; a new series gets its analytics_series row inside the same
 * transaction. The reader sums every file's rows on the reader connection
 * under r_lock: a query reads the series table and, per matching series,
 * its rows in the window (primary key (series, hour)), never the copies. */
#include "hstore_sqlite.h"
#include "buf.h"
#include "db.h"
#include "xalloc.h"

#include <stdlib.h>
#include <string.h>

#define HOUR_MS INT64_C(3600000)

int han_flush(struct hshard *h, const struct han_batch *b)
{
    if (!b->n)
        return 0;
    if (!h->an_upsert)
        h->an_upsert = db_prepare(
            h->w,
            "INSERT INTO analytics(series, hour, sent, delivered, spam, opened, read, bounced,"
            " complained) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
            " ON CONFLICT(series, hour) DO UPDATE SET sent = sent + ?3,"
            " delivered = delivered + ?4, spam = spam + ?5, opened = opened + ?6,"
            " read = read + ?7, bounced = bounced + ?8, complained = complained + ?9");
    sqlite3_stmt *st = h->an_upsert;
    if (!st)
        return -1;
    for (size_t k = 0; k < b->n; k++) {
        const struct han_cell *c = &b->v[k];
        bool any = false;
        for (int q = 0; q < HAN_N; q++)
            any = any || c->n[q];
        if (!any)
            continue; /* changes that cancelled out */
        sqlite3_bind_int64(st, 1, c->series);
        sqlite3_bind_int64(st, 2, c->hour);
        for (int q = 0; q < HAN_N; q++)
            sqlite3_bind_int64(st, 3 + q, c->n[q]);
        int rc = db_step(h->w, st);
        sqlite3_reset(st);
        if (rc != 0)
            return -1;
    }
    return 0;
}

/* ---- series ----------------------------------------------------------- */

struct series_entry {
    const char *domain, *identity, *variant; /* borrowed from the events */
    int64_t campaign, id;
    uint64_t h;
};

struct han_series_map {
    struct series_entry *v;
    size_t n, cap;
    uint32_t *slot;
    size_t mask;
};

struct han_series_map *han_series_new(void)
{
    struct han_series_map *m = xcalloc(1, sizeof *m);
    m->cap = 8;
    m->v = xcalloc(m->cap, sizeof *m->v);
    m->mask = 2 * m->cap - 1;
    m->slot = xcalloc(m->mask + 1, sizeof *m->slot);
    return m;
}

void han_series_free(struct han_series_map *m)
{
    if (!m)
        return;
    free(m->v);
    free(m->slot);
    free(m);
}

static uint64_t fnv(uint64_t h, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        h = (h ^ *p) * 1099511628211u;
    return (h ^ 0xff) * 1099511628211u; /* a separator: ("ab","c") != ("a","bc") */
}

static const char *or_empty(const char *s)
{
    return s ? s : "";
}

/* lookup - the id of (domain, identity, campaign, variant) in h; made if
 * new */
static int lookup(struct hshard *h, const struct series_entry *e, int64_t *id)
{
    if (!h->series_find)
        h->series_find = db_prepare(h->w, "SELECT id FROM analytics_series WHERE domain = ?1"
                                          " AND identity = ?2 AND campaign = ?3 AND variant = ?4");
    if (!h->series_ins)
        h->series_ins = db_prepare(h->w, "INSERT INTO analytics_series(domain, identity, campaign,"
                                         " variant) VALUES(?1, ?2, ?3, ?4)");
    sqlite3_stmt *st = h->series_find;
    if (!st || !h->series_ins)
        return -1;
    for (int pass = 0; pass < 2; pass++, st = h->series_ins) {
        sqlite3_bind_text(st, 1, e->domain, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, e->identity, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, e->campaign);
        sqlite3_bind_text(st, 4, e->variant, -1, SQLITE_STATIC);
        int r = sqlite3_step(st);
        if (r == SQLITE_ROW)
            *id = sqlite3_column_int64(st, 0);
        else if (r == SQLITE_DONE && pass == 1)
            *id = sqlite3_last_insert_rowid(h->w);
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        if (r == SQLITE_ROW || (r == SQLITE_DONE && pass == 1))
            return 0;
        if (r != SQLITE_DONE)
            return -1;
    }
    return -1;
}

int han_series(struct hshard *h, struct han_series_map *m, const struct copy_event *c, int64_t *id)
{
    struct series_entry e = {.domain = c->domain,
                             .identity = or_empty(c->identity),
                             .variant = or_empty(c->variant),
                             .campaign = c->campaign};
    e.h =
        fnv(fnv(fnv(1469598103934665603u ^ (uint64_t)e.campaign, e.domain), e.identity), e.variant);
    size_t i = e.h & m->mask;
    for (; m->slot[i]; i = (i + 1) & m->mask) {
        const struct series_entry *x = &m->v[m->slot[i] - 1];
        if (x->h == e.h && x->campaign == e.campaign && strcmp(x->domain, e.domain) == 0 &&
            strcmp(x->identity, e.identity) == 0 && strcmp(x->variant, e.variant) == 0) {
            *id = x->id;
            return 0;
        }
    }
    if (lookup(h, &e, &e.id) != 0)
        return -1;
    if (m->n == m->cap) {
        m->cap *= 2;
        m->v = xreallocarray(m->v, m->cap, sizeof *m->v);
        free(m->slot);
        m->mask = 2 * m->cap - 1;
        m->slot = xcalloc(m->mask + 1, sizeof *m->slot);
        for (size_t k = 0; k < m->n; k++) {
            size_t j = m->v[k].h & m->mask;
            while (m->slot[j])
                j = (j + 1) & m->mask;
            m->slot[j] = (uint32_t)(k + 1);
        }
        for (i = e.h & m->mask; m->slot[i]; i = (i + 1) & m->mask)
            ;
    }
    m->v[m->n] = e;
    m->slot[i] = (uint32_t)++m->n;
    *id = e.id;
    return 0;
}

int han_copy_series(struct hshard *h, int64_t rowid, int64_t *series, int64_t *sent_at)
{
    if (!h->copy_series)
        h->copy_series = db_prepare(h->w, "SELECT series, sent_at FROM copies WHERE rowid = ?1");
    sqlite3_stmt *st = h->copy_series;
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, rowid);
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
        *series = sqlite3_column_int64(st, 0); /* NULL: 0, no series */
        *sent_at = sqlite3_column_int64(st, 1);
    }
    sqlite3_reset(st);
    return r == SQLITE_ROW ? 0 : -1;
}

/* ---- the reader --------------------------------------------------------- */

int hsqlite_prepare_analytics(struct hsqlite *s)
{
    struct buf b;
    buf_init(&b, 64 * 1024);
    int rc = buf_printf(&b, "SELECT bucket, sum(sent), sum(delivered), sum(spam), sum(opened),"
                            " sum(read), sum(bounced), sum(complained) FROM (");
    for (int k = 0; k < s->nshards; k++)
        rc |= buf_printf(&b,
                         "%2$sSELECT a.hour / ?7 AS bucket, a.sent, a.delivered, a.spam, a.opened,"
                         " a.read, a.bounced, a.complained FROM %1$s.analytics_series s"
                         " JOIN %1$s.analytics a ON a.series = s.id AND a.hour >= ?1"
                         " AND a.hour < ?2 WHERE (?3 IS NULL OR s.domain = ?3)"
                         " AND (?4 IS NULL OR s.identity = ?4) AND (?5 IS NULL OR s.campaign = ?5)"
                         " AND (?6 IS NULL OR s.variant = ?6)",
                         s->shard[k].schema, k ? " UNION ALL " : "");
    rc |= buf_printf(&b, ") GROUP BY bucket ORDER BY bucket");
    s->analytics = rc == 0 ? db_prepare(s->r, buf_str(&b)) : NULL;
    buf_cleanup(&b);
    return s->analytics ? 0 : -1;
}

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

int hsqlite_analytics(struct hstore *store, const struct hstore_an_query *q,
                      struct hstore_an_row **out, size_t *n)
{
    struct hsqlite *s = hsqlite(store);
    int w = q->bucket_hours > 0 ? q->bucket_hours : 1;
    size_t cap = 64;
    int r;
    *n = 0;
    *out = xcalloc(cap, sizeof **out);
    pthread_mutex_lock(&s->r_lock);
    sqlite3_stmt *st = s->analytics;
    sqlite3_bind_int64(st, 1, q->from_hour);
    sqlite3_bind_int64(st, 2, q->to_hour);
    bind_text_or_null(st, 3, q->domain);
    bind_text_or_null(st, 4, q->identity);
    if (q->campaign)
        sqlite3_bind_int64(st, 5, q->campaign);
    else
        sqlite3_bind_null(st, 5);
    bind_text_or_null(st, 6, q->variant);
    sqlite3_bind_int(st, 7, w);
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap *= 2;
            *out = xreallocarray(*out, cap, sizeof **out);
        }
        struct hstore_an_row *row = &(*out)[(*n)++];
        row->hour = sqlite3_column_int64(st, 0) * w;
        for (int k = 0; k < HAN_N; k++)
            row->n[k] = sqlite3_column_int64(st, 1 + k);
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    pthread_mutex_unlock(&s->r_lock);
    if (r != SQLITE_DONE) {
        free(*out);
        *out = NULL;
        *n = 0;
        return -1;
    }
    return 0;
}
