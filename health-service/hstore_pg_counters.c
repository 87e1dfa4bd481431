/* hstore_pg_counters.c - the counters the PostgreSQL backend's writes
 * keep: an email's (email_stats), a domain's (domains) and the /analytics
 * cells (analytics), each by a "+ delta" upsert in the writer's
 * transaction; what a write adds to them per email or domain (struct
 * hpg_aggs), bound as text arrays (sqlarr.h). Rows are upserted in
 * key order, so concurrent transactions lock them in one order. Called
 * with w_lock held (hstore_pg_int.h). */
#include "hstore_pg_int.h"
#include "timeutil.h"
#include "xalloc.h"

#include <stdlib.h>
#include <string.h>

/* ---- what a write adds per email or domain ----------------------------------- */

void hpg_aggs_init(struct hpg_aggs *a)
{
    a->n = 0;
    a->cap = 16;
    a->v = xcalloc(a->cap, sizeof *a->v);
    a->mask = 2 * a->cap - 1;
    a->slot = xcalloc(a->mask + 1, sizeof *a->slot);
}

void hpg_aggs_cleanup(struct hpg_aggs *a)
{
    free(a->v);
    free(a->slot);
    a->v = NULL;
    a->slot = NULL;
    a->n = 0;
}

/* aggs_add - a new entry with hash h (slots stay at most half full) */
static struct hpg_agg *aggs_add(struct hpg_aggs *a, uint64_t h)
{
    if (a->n == a->cap) {
        a->cap *= 2;
        a->v = xreallocarray(a->v, a->cap, sizeof *a->v);
        free(a->slot);
        a->mask = 2 * a->cap - 1;
        a->slot = xcalloc(a->mask + 1, sizeof *a->slot);
        for (size_t k = 0; k < a->n; k++) {
            size_t i = a->v[k].h & a->mask;
            while (a->slot[i])
                i = (i + 1) & a->mask;
            a->slot[i] = (uint32_t)(k + 1);
        }
    }
    size_t i = h & a->mask;
    while (a->slot[i])
        i = (i + 1) & a->mask;
    a->v[a->n] = (struct hpg_agg){.h = h};
    a->slot[i] = (uint32_t)++a->n;
    return &a->v[a->n - 1];
}

struct hpg_agg *hpg_agg_email(struct hpg_aggs *a, int64_t email_id)
{
    uint64_t h = (uint64_t)email_id * 0x9E3779B97F4A7C15u >> 32;
    for (size_t i = h & a->mask; a->slot[i]; i = (i + 1) & a->mask)
        if (a->v[a->slot[i] - 1].email_id == email_id)
            return &a->v[a->slot[i] - 1];
    struct hpg_agg *g = aggs_add(a, h);
    g->email_id = email_id;
    return g;
}

struct hpg_agg *hpg_agg_domain(struct hpg_aggs *a, const char *domain)
{
    uint64_t h = 1469598103934665603u; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)domain; *p; p++)
        h = (h ^ *p) * 1099511628211u;
    for (size_t i = h & a->mask; a->slot[i]; i = (i + 1) & a->mask)
        if (strcmp(a->v[a->slot[i] - 1].key, domain) == 0)
            return &a->v[a->slot[i] - 1];
    struct hpg_agg *g = aggs_add(a, h);
    g->key = domain;
    return g;
}

static int cmp_email(const void *a, const void *b)
{
    const struct hpg_agg *x = a, *y = b;
    return (x->email_id > y->email_id) - (x->email_id < y->email_id);
}

static int cmp_domain(const void *a, const void *b)
{
    return strcmp(((const struct hpg_agg *)a)->key, ((const struct hpg_agg *)b)->key);
}

/* ---- the upserts --------------------------------------------------------------- */

/* the columns a delta adds to, after the statement's own */
#define DELTA_ARRS 6

static void add_delta(struct sqlarr *v, const struct hstore_delta *d)
{
    sqlarr_int(&v[0], d->delivered);
    sqlarr_int(&v[1], d->spam);
    sqlarr_int(&v[2], d->opened);
    sqlarr_int(&v[3], d->read);
    sqlarr_int(&v[4], d->unchecked);
    sqlarr_int(&v[5], d->rescued);
}

int hpg_stats_upsert(struct hpg *s, struct hpg_aggs *a, int64_t checked_at)
{
    enum { EM, BC, TR, BO, CA, FS, NA = FS + 1 + DELTA_ARRS };
    if (!a->n)
        return 0;
    qsort(a->v, a->n, sizeof *a->v, cmp_email);
    struct sqlarr v[NA];
    sqlarr_init_all(v, NA, a->n * 8);
    for (size_t i = 0; i < a->n; i++) {
        const struct hpg_agg *g = &a->v[i];
        sqlarr_int(&v[EM], g->email_id);
        sqlarr_text(&v[BC], g->key ? g->key : "");
        sqlarr_int(&v[TR], g->d.tracked);
        sqlarr_int(&v[BO], g->d.bounced);
        if (g->checked && checked_at)
            sqlarr_int(&v[CA], checked_at);
        else
            sqlarr_null(&v[CA]);
        if (g->first_sent)
            sqlarr_int(&v[FS], g->first_sent);
        else
            sqlarr_null(&v[FS]);
        add_delta(&v[FS + 1], &g->d);
    }
    struct sqldb_stmt *st = sqldb_prepare(
        s->w,
        "INSERT INTO email_stats(email_id, broadcast_id, tracked, bounced, checked_at,"
        " first_sent_at, delivered, spam, opened, read, unchecked, rescued)"
        " SELECT e, b, t, bo, ca, fs, dl, sp, op, rd, un, re FROM unnest(?1::bigint[], ?2::text[],"
        " ?3::bigint[], ?4::bigint[], ?5::bigint[], ?6::bigint[], ?7::bigint[], ?8::bigint[],"
        " ?9::bigint[], ?10::bigint[], ?11::bigint[], ?12::bigint[]) WITH ORDINALITY"
        " AS u(e, b, t, bo, ca, fs, dl, sp, op, rd, un, re, o) ORDER BY o"
        " ON CONFLICT(email_id) DO UPDATE SET tracked = email_stats.tracked + excluded.tracked,"
        " bounced = email_stats.bounced + excluded.bounced,"
        " checked_at = coalesce(excluded.checked_at, email_stats.checked_at),"
        " first_sent_at = CASE WHEN excluded.first_sent_at IS NULL THEN email_stats.first_sent_at"
        " WHEN email_stats.first_sent_at IS NULL"
        " OR excluded.first_sent_at < email_stats.first_sent_at THEN excluded.first_sent_at"
        " ELSE email_stats.first_sent_at END,"
        " delivered = email_stats.delivered + excluded.delivered,"
        " spam = email_stats.spam + excluded.spam, opened = email_stats.opened + excluded.opened,"
        " read = email_stats.read + excluded.read,"
        " unchecked = email_stats.unchecked + excluded.unchecked,"
        " rescued = email_stats.rescued + excluded.rescued");
    int rc = st && sqlarr_bind_all(v, NA, st) == 0 ? sqldb_run(st) : -1;
    sqldb_finalize(st);
    sqlarr_cleanup_all(v, NA);
    return rc;
}

int hpg_stats_add(struct hpg *s, int64_t email_id, const char *broadcast_id, int64_t first_sent,
                  const struct hstore_delta *d, int64_t checked_at)
{
    struct hpg_aggs a;
    hpg_aggs_init(&a);
    struct hpg_agg *g = hpg_agg_email(&a, email_id);
    g->key = broadcast_id;
    g->d = *d;
    g->first_sent = first_sent;
    g->checked = checked_at != 0;
    int rc = hpg_stats_upsert(s, &a, checked_at);
    hpg_aggs_cleanup(&a);
    return rc;
}

int hpg_domains_upsert(struct hpg *s, struct hpg_aggs *a, int64_t now_ms)
{
    enum { DO, US, FI, LA, TR, BO, NA = BO + 1 + DELTA_ARRS };
    if (!a->n)
        return 0;
    char now[32];
    time_rfc3339_ms(now_ms, now, sizeof now);
    qsort(a->v, a->n, sizeof *a->v, cmp_domain);
    struct sqlarr v[NA];
    sqlarr_init_all(v, NA, a->n * 8);
    for (size_t i = 0; i < a->n; i++) {
        const struct hpg_agg *g = &a->v[i];
        sqlarr_text(&v[DO], g->key);
        sqlarr_int(&v[US], g->users);
        sqlarr_text(&v[FI], g->users ? g->first_user : now);
        sqlarr_text(&v[LA], g->users ? g->last_user : now);
        sqlarr_int(&v[TR], g->d.tracked);
        sqlarr_int(&v[BO], g->d.bounced);
        add_delta(&v[BO + 1], &g->d);
    }
    struct sqldb_stmt *st = sqldb_prepare(
        s->w, "INSERT INTO domains(domain, users, first_seen, last_seen, tracked, bounced,"
              " delivered, spam, opened, read, unchecked, rescued)"
              " SELECT d, us, fi, la, t, bo, dl, sp, op, rd, un, re FROM unnest(?1::text[],"
              " ?2::bigint[], ?3::text[], ?4::text[], ?5::bigint[], ?6::bigint[], ?7::bigint[],"
              " ?8::bigint[], ?9::bigint[], ?10::bigint[], ?11::bigint[], ?12::bigint[])"
              " WITH ORDINALITY AS u(d, us, fi, la, t, bo, dl, sp, op, rd, un, re, o) ORDER BY o"
              " ON CONFLICT(domain) DO UPDATE SET users = domains.users + excluded.users,"
              " last_seen = CASE WHEN excluded.users > 0 THEN excluded.last_seen"
              " ELSE domains.last_seen END, tracked = domains.tracked + excluded.tracked,"
              " bounced = domains.bounced + excluded.bounced,"
              " delivered = domains.delivered + excluded.delivered,"
              " spam = domains.spam + excluded.spam, opened = domains.opened + excluded.opened,"
              " read = domains.read + excluded.read,"
              " unchecked = domains.unchecked + excluded.unchecked,"
              " rescued = domains.rescued + excluded.rescued");
    int rc = st && sqlarr_bind_all(v, NA, st) == 0 ? sqldb_run(st) : -1;
    sqldb_finalize(st);
    sqlarr_cleanup_all(v, NA);
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

int hpg_an_flush(struct hpg *s, struct han_batch *b)
{
    enum { SE, HO, NA = HO + 1 + HAN_N };
    if (!b->n)
        return 0;
    qsort(b->v, b->n, sizeof *b->v, cmp_cell);
    struct sqlarr v[NA];
    sqlarr_init_all(v, NA, b->n * 8);
    for (size_t i = 0; i < b->n; i++) {
        sqlarr_int(&v[SE], b->v[i].series);
        sqlarr_int(&v[HO], b->v[i].hour);
        for (int q = 0; q < HAN_N; q++)
            sqlarr_int(&v[HO + 1 + q], b->v[i].n[q]);
    }
    struct sqldb_stmt *st = sqldb_prepare(
        s->w, "INSERT INTO analytics(series, hour, sent, delivered, spam, opened, read, bounced,"
              " complained) SELECT se, ho, a, dl, sp, op, rd, bo, co FROM unnest(?1::bigint[],"
              " ?2::bigint[], ?3::bigint[], ?4::bigint[], ?5::bigint[], ?6::bigint[],"
              " ?7::bigint[], ?8::bigint[], ?9::bigint[]) WITH ORDINALITY"
              " AS u(se, ho, a, dl, sp, op, rd, bo, co, o) ORDER BY o ON CONFLICT(series, hour)"
              " DO UPDATE SET sent = analytics.sent + excluded.sent,"
              " delivered = analytics.delivered + excluded.delivered,"
              " spam = analytics.spam + excluded.spam, opened = analytics.opened + excluded.opened,"
              " read = analytics.read + excluded.read,"
              " bounced = analytics.bounced + excluded.bounced,"
              " complained = analytics.complained + excluded.complained");
    int rc = st && sqlarr_bind_all(v, NA, st) == 0 ? sqldb_run(st) : -1;
    sqldb_finalize(st);
    sqlarr_cleanup_all(v, NA);
    return rc;
}
