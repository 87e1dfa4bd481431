/* hstore_pg_ingest.c - the PostgreSQL backend's ingest (hstore_apply_events):
 * users and their domains, copies keyed by Message-ID (a redelivered
 * event adds nothing), their analytics series, and the counters they
 * change (hstore_pg_counters.c), in one transaction on the writer
 * connection under w_lock (the consumer's writer thread).
 *
 * A batch costs a few statements whatever its size: each table's rows go
 * in one statement of arrays expanded with unnest(), in one order (the
 * series by their key, users by address, copies by a hash of the
 * Message-ID, then emails, domains and analytics cells, each sorted), so
 * concurrent instances neither deadlock nor lose an increment. What one
 * copy event at a time would do is worked out in memory first: of the
 * events of one Message-ID the first inserts the copy, and the first
 * email.failed (the first event, or one after an email.sent) bounces it,
 * either in that insert or, for a copy stored before, by an update. */
#include "hstore_pg_int.h"
#include "timeutil.h"
#include "xalloc.h"

#include <stdlib.h>
#include <string.h>

static uint64_t fnv(uint64_t h, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        h = (h ^ *p) * 1099511628211u;
    return h;
}
#define FNV0 1469598103934665603u

static const char *or_empty(const char *s)
{
    return s ? s : "";
}

/* ---- analytics series ---------------------------------------------------------- */

/* a batch's distinct series (domain, identity, campaign, variant), found
 * through an open-addressing index sized for the batch */
struct series {
    const struct copy_event *e; /* the first event with this key */
    uint64_t h;
    int64_t id;
};
struct series_set {
    struct series *v;
    size_t n;
    uint32_t *slot; /* index + 1 into v, 0 = empty */
    size_t mask;
};

static int cmp_series_key(const struct copy_event *x, const struct copy_event *y)
{
    int c = strcmp(x->domain, y->domain);
    if (!c)
        c = strcmp(or_empty(x->identity), or_empty(y->identity));
    if (!c)
        c = (x->campaign > y->campaign) - (x->campaign < y->campaign);
    if (!c)
        c = strcmp(or_empty(x->variant), or_empty(y->variant));
    return c;
}

/* series_index - e's series in m (added if new) */
static uint32_t series_index(struct series_set *m, const struct copy_event *e)
{
    uint64_t h = fnv(fnv(fnv(FNV0, e->domain), or_empty(e->identity)), or_empty(e->variant));
    h = (h ^ (uint64_t)e->campaign) * 1099511628211u;
    size_t i = h & m->mask;
    for (; m->slot[i]; i = (i + 1) & m->mask) {
        struct series *x = &m->v[m->slot[i] - 1];
        if (x->h == h && cmp_series_key(x->e, e) == 0)
            return m->slot[i] - 1;
    }
    m->v[m->n] = (struct series){.e = e, .h = h};
    m->slot[i] = (uint32_t)++m->n;
    return (uint32_t)(m->n - 1);
}

/* a series' key and its index in the set, for sorting */
struct sref {
    const struct copy_event *e;
    uint32_t i;
};

static int cmp_sref(const void *a, const void *b)
{
    return cmp_series_key(((const struct sref *)a)->e, ((const struct sref *)b)->e);
}

/* series_run - the series v[want[0..n)] (in key order) through statement
 * sql; with a SELECT, each found gets its id */
static int series_run(struct hpg *s, struct series *v, const uint32_t *want, size_t n,
                      const char *sql)
{
    struct sqlarr a[4];
    sqlarr_init_all(a, 4, n * 16);
    for (size_t i = 0; i < n; i++) {
        const struct copy_event *e = v[want[i]].e;
        sqlarr_text(&a[0], e->domain);
        sqlarr_text(&a[1], or_empty(e->identity));
        sqlarr_int(&a[2], e->campaign);
        sqlarr_text(&a[3], or_empty(e->variant));
    }
    struct sqldb_stmt *st = sqldb_prepare(s->w, sql);
    int rc = st ? sqlarr_bind_all(a, 4, st) : -1;
    int r = rc;
    while (rc == 0 && (r = sqldb_step(st)) == SQLDB_ROW) {
        int64_t o = sqldb_column_int64(st, 0);
        if (o >= 1 && (size_t)o <= n)
            v[want[o - 1]].id = sqldb_column_int64(st, 1);
    }
    sqldb_finalize(st);
    sqlarr_cleanup_all(a, 4);
    return rc == 0 && r == SQLDB_DONE ? 0 : -1;
}

#define SERIES_ARGS                                                                                \
    " unnest(?1::text[], ?2::text[], ?3::bigint[], ?4::text[]) WITH ORDINALITY"                    \
    " AS u(d, i, c, v, o)"

/* series_ids - every series of m its id: those stored read, the others
 * inserted (in key order) and read again */
static int series_ids(struct hpg *s, struct series_set *m)
{
    static const char sel[] = "SELECT u.o, s.id FROM" SERIES_ARGS " JOIN analytics_series s"
                              " ON s.domain = u.d AND s.identity = u.i AND s.campaign = u.c"
                              " AND s.variant = u.v";
    uint32_t *ord = xcalloc(m->n, sizeof *ord);
    struct sref *r = xcalloc(m->n, sizeof *r);
    int rc = -1;
    for (size_t i = 0; i < m->n; i++)
        r[i] = (struct sref){m->v[i].e, (uint32_t)i};
    qsort(r, m->n, sizeof *r, cmp_sref);
    for (size_t i = 0; i < m->n; i++)
        ord[i] = r[i].i;
    free(r);
    if (series_run(s, m->v, ord, m->n, sel) != 0)
        goto out;
    size_t miss = 0;
    for (size_t i = 0; i < m->n; i++)
        if (!m->v[ord[i]].id)
            ord[miss++] = ord[i]; /* still in key order */
    if (miss && (series_run(s, m->v, ord, miss,
                            "INSERT INTO analytics_series(domain, identity, campaign, variant)"
                            " SELECT d, i, c, v FROM" SERIES_ARGS
                            " ORDER BY o ON CONFLICT DO NOTHING") != 0 ||
                 series_run(s, m->v, ord, miss, sel) != 0))
        goto out;
    rc = 0;
    for (size_t i = 0; i < miss; i++)
        if (!m->v[ord[i]].id)
            rc = -1;
out:
    free(ord);
    return rc;
}

/* ---- users ---------------------------------------------------------------------- */

/* a user event and where it is in the batch */
struct uev {
    const struct user_event *e;
    size_t seq;
};

static int cmp_uev(const void *a, const void *b)
{
    const struct uev *x = a, *y = b;
    int c = strcmp(x->e->addr.norm, y->e->addr.norm);
    return c ? c : (x->seq > y->seq) - (x->seq < y->seq);
}

/* apply_users - the batch's new users (the first event of each address),
 * in address order; their domains' users and times into dm */
static int apply_users(struct hpg *s, const struct user_event *u, size_t n, struct hpg_aggs *dm,
                       size_t *added)
{
    struct uev *v = xcalloc(n, sizeof *v);
    bool *isnew = xcalloc(n, sizeof *isnew);
    size_t nd = 0;
    for (size_t i = 0; i < n; i++)
        v[i] = (struct uev){&u[i], i};
    qsort(v, n, sizeof *v, cmp_uev);
    struct sqlarr a[4];
    sqlarr_init_all(a, 4, n * 32);
    for (size_t i = 0; i < n; i++) {
        if (i && strcmp(v[i].e->addr.norm, v[nd - 1].e->addr.norm) == 0)
            continue; /* the same address again: changes nothing */
        v[nd++] = v[i];
        sqlarr_text(&a[0], v[i].e->addr.norm);
        sqlarr_text(&a[1], v[i].e->addr.domain);
        sqlarr_text(&a[2], or_empty(v[i].e->name));
        sqlarr_text(&a[3], or_empty(v[i].e->at));
    }
    struct sqldb_stmt *st = sqldb_prepare(
        s->w, "INSERT INTO users(email_id, domain, name, registered_at) SELECT e, d, n, r"
              " FROM unnest(?1::text[], ?2::text[], ?3::text[], ?4::text[]) WITH ORDINALITY"
              " AS u(e, d, n, r, o) ORDER BY o ON CONFLICT DO NOTHING RETURNING email_id");
    int rc = st ? sqlarr_bind_all(a, 4, st) : -1, r = -1;
    while (rc == 0 && (r = sqldb_step(st)) == SQLDB_ROW) {
        const char *id = sqldb_column_text(st, 0);
        size_t lo = 0, hi = nd; /* v[0..nd) is in address order */
        while (id && lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            int c = strcmp(v[mid].e->addr.norm, id);
            if (c == 0) {
                isnew[v[mid].seq] = true;
                break;
            }
            if (c < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
    }
    sqldb_finalize(st);
    if (rc == 0 && r == SQLDB_DONE) {
        for (size_t i = 0; i < n; i++) { /* in batch order: the last one's time is last_seen */
            if (!isnew[i])
                continue;
            struct hpg_agg *g = hpg_agg_domain(dm, u[i].addr.domain);
            if (!g->users++)
                g->first_user = or_empty(u[i].at);
            g->last_user = or_empty(u[i].at);
            ++*added;
        }
    } else {
        rc = -1;
    }
    sqlarr_cleanup_all(a, 4);
    free(v);
    free(isnew);
    return rc;
}

/* ---- copies ---------------------------------------------------------------------- */

/* a copy event and where it is in the batch */
struct cev {
    const struct copy_event *e;
    uint64_t h; /* of the Message-ID: the order rows are locked in */
    size_t seq;
};

/* the events of one Message-ID */
struct group {
    const char *mid;
    uint64_t h;
    size_t f;        /* the first event's seq */
    size_t b;        /* the first email.failed's seq, or SIZE_MAX */
    bool inserted;   /* the copy is new: f's row, bounced if b */
    bool bounced_up; /* a copy stored before bounced by b */
};

static int cmp_mid(uint64_t h, const char *m, const struct group *g)
{
    if (h != g->h)
        return h < g->h ? -1 : 1;
    return strcmp(m, g->mid);
}

static int cmp_cev(const void *a, const void *b)
{
    const struct cev *x = a, *y = b;
    if (x->h != y->h)
        return x->h < y->h ? -1 : 1;
    int c = strcmp(x->e->message_id, y->e->message_id);
    return c ? c : (x->seq > y->seq) - (x->seq < y->seq);
}

/* find_group - the group of Message-ID m in g[0..n) (in key order), or NULL */
static struct group *find_group(struct group *g, size_t n, const char *m)
{
    if (!m)
        return NULL;
    uint64_t h = fnv(FNV0, m);
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = cmp_mid(h, m, &g[mid]);
        if (c == 0)
            return &g[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

/* insert_copies - each group's first event as a copy, unless its
 * Message-ID is stored; marks the groups inserted */
static int insert_copies(struct hpg *s, const struct copy_event *c, struct group *g, size_t ng,
                         const int64_t *series, const int64_t *sent)
{
    enum { MID, EM, BC, RC, DO, CL, SE, BO, RE, ID, CA, VA, SR, NA };
    struct sqlarr a[NA];
    for (int k = 0; k < NA; k++)
        sqlarr_init(&a[k], ng * (k == MID || k == RC ? 48 : 16));
    for (size_t i = 0; i < ng; i++) {
        const struct copy_event *e = &c[g[i].f];
        bool b = g[i].b != SIZE_MAX; /* the first failed: this event, or a later one */
        sqlarr_text(&a[MID], e->message_id);
        sqlarr_int(&a[EM], e->email_id);
        sqlarr_text(&a[BC], or_empty(e->broadcast_id));
        sqlarr_text(&a[RC], e->recipient);
        sqlarr_text(&a[DO], e->domain);
        sqlarr_text(&a[CL], or_empty(e->smtp_client));
        sqlarr_int(&a[SE], sent[g[i].f]);
        sqlarr_int(&a[BO], b);
        sqlarr_text(&a[RE], b ? c[g[i].b].smtp_reply : e->smtp_reply);
        sqlarr_text(&a[ID], e->identity);
        if (e->campaign)
            sqlarr_int(&a[CA], e->campaign);
        else
            sqlarr_null(&a[CA]);
        sqlarr_text(&a[VA], e->variant);
        sqlarr_int(&a[SR], series[g[i].f]);
    }
    struct sqldb_stmt *st = sqldb_prepare(
        s->w, "INSERT INTO copies(message_id, email_id, broadcast_id, recipient, domain,"
              " smtp_client, sent_at, bounced, smtp_reply, identity, campaign, variant, series)"
              " SELECT m, e, b, r, d, c, t, x, y, i, k, v, s FROM unnest(?1::text[],"
              " ?2::bigint[], ?3::text[], ?4::text[], ?5::text[], ?6::text[], ?7::bigint[],"
              " ?8::bigint[], ?9::text[], ?10::text[], ?11::bigint[], ?12::text[], ?13::bigint[])"
              " WITH ORDINALITY AS u(m, e, b, r, d, c, t, x, y, i, k, v, s, o) ORDER BY o"
              " ON CONFLICT(message_id) DO NOTHING RETURNING message_id");
    int rc = st ? sqlarr_bind_all(a, NA, st) : -1, r = -1;
    while (rc == 0 && (r = sqldb_step(st)) == SQLDB_ROW) {
        struct group *x = find_group(g, ng, sqldb_column_text(st, 0));
        if (x)
            x->inserted = true;
    }
    sqldb_finalize(st);
    sqlarr_cleanup_all(a, NA);
    return rc == 0 && r == SQLDB_DONE ? 0 : -1;
}

/* bounce_stored - copies stored before that an email.failed of the batch
 * bounces, unless they were already: rows locked in key order, then
 * updated; each one bounced counted in an, in its stored series and hour */
static int bounce_stored(struct hpg *s, const struct copy_event *c, struct group *g, size_t ng,
                         struct han_batch *an)
{
    struct sqlarr a[2];
    size_t n = 0;
    for (size_t i = 0; i < ng; i++)
        if (!g[i].inserted && g[i].b != SIZE_MAX)
            n++;
    if (!n)
        return 0;
    sqlarr_init(&a[0], n * 48);
    sqlarr_init(&a[1], n * 16);
    for (size_t i = 0; i < ng; i++)
        if (!g[i].inserted && g[i].b != SIZE_MAX) {
            sqlarr_text(&a[0], g[i].mid);
            sqlarr_text(&a[1], c[g[i].b].smtp_reply);
        }
    struct sqldb_stmt *st = sqldb_prepare(
        s->w, "WITH l AS MATERIALIZED (SELECT c.id, u.y FROM unnest(?1::text[], ?2::text[])"
              " WITH ORDINALITY AS u(m, y, o) JOIN copies c ON c.message_id = u.m"
              " WHERE c.bounced = 0 ORDER BY u.o FOR UPDATE OF c)"
              " UPDATE copies SET bounced = 1, smtp_reply = l.y FROM l"
              " WHERE copies.id = l.id AND copies.bounced = 0"
              " RETURNING copies.message_id, coalesce(copies.series, 0), copies.sent_at");
    int rc = st ? sqlarr_bind_all(a, 2, st) : -1, r = -1;
    while (rc == 0 && (r = sqldb_step(st)) == SQLDB_ROW) {
        struct group *x = find_group(g, ng, sqldb_column_text(st, 0));
        if (x && !x->bounced_up) { /* a tracked copy bounced after all */
            x->bounced_up = true;
            han_add(an, sqldb_column_int64(st, 1), sqldb_column_int64(st, 2), HAN_BOUNCED, 1);
        }
    }
    sqldb_finalize(st);
    sqlarr_cleanup_all(a, 2);
    return rc == 0 && r == SQLDB_DONE ? 0 : -1;
}

/* apply_copies - the batch's copies; what they add into em, dm and an */
static int apply_copies(struct hpg *s, const struct copy_event *c, size_t n, int64_t now,
                        struct hpg_aggs *em, struct hpg_aggs *dm, struct han_batch *an,
                        size_t *added)
{
    struct cev *v = xcalloc(n, sizeof *v);
    struct group *g = xcalloc(n, sizeof *g);
    int64_t *series = xcalloc(n, sizeof *series), *sent = xcalloc(n, sizeof *sent);
    uint32_t *sx = xcalloc(n, sizeof *sx);
    uint8_t *tb = xcalloc(n, 1); /* what event i added: 1 tracked, 2 bounced */
    struct series_set m = {.v = xcalloc(n, sizeof *m.v)};
    size_t ng = 0;
    int rc = -1;
    for (m.mask = 1; m.mask < 2 * n; m.mask <<= 1)
        ;
    m.slot = xcalloc(m.mask--, sizeof *m.slot);
    for (size_t i = 0; i < n; i++) {
        v[i] = (struct cev){&c[i], fnv(FNV0, c[i].message_id), i};
        sent[i] = c[i].sent_at_ms ? c[i].sent_at_ms : now;
        sx[i] = series_index(&m, &c[i]);
    }
    if (series_ids(s, &m) != 0)
        goto out;
    for (size_t i = 0; i < n; i++)
        series[i] = m.v[sx[i]].id;
    qsort(v, n, sizeof *v, cmp_cev);
    for (size_t i = 0; i < n; i++) {
        if (!ng || cmp_mid(v[i].h, v[i].e->message_id, &g[ng - 1]) != 0)
            g[ng++] = (struct group){
                .mid = v[i].e->message_id, .h = v[i].h, .f = v[i].seq, .b = SIZE_MAX};
        struct group *x = &g[ng - 1];
        if (v[i].e->failed && x->b == SIZE_MAX) /* events of a group come in batch order */
            x->b = v[i].seq;
    }
    if (insert_copies(s, c, g, ng, series, sent) != 0 || bounce_stored(s, c, g, ng, an) != 0)
        goto out;
    /* what each event added, as one at a time in batch order would have */
    for (size_t i = 0; i < ng; i++) {
        const struct group *x = &g[i];
        if (x->inserted) {
            tb[x->f] |= 1;
            han_add(an, series[x->f], sent[x->f], HAN_SENT, 1);
        }
        if (x->b != SIZE_MAX && (x->inserted || x->bounced_up)) {
            tb[x->b] |= 2;
            if (x->inserted)
                han_add(an, series[x->f], sent[x->f], HAN_BOUNCED, 1);
        }
    }
    for (size_t i = 0; i < n; i++) {
        const struct copy_event *e = &c[i];
        int t = tb[i] & 1, b = tb[i] >> 1;
        if (!t && !b)
            continue;
        struct hpg_agg *x = hpg_agg_email(em, e->email_id);
        struct hpg_agg *y = hpg_agg_domain(dm, e->domain);
        x->key = e->broadcast_id;
        x->d.tracked += t, y->d.tracked += t;
        x->d.bounced += b, y->d.bounced += b;
        if (e->sent_at_ms > 0 && (!x->first_sent || e->sent_at_ms < x->first_sent))
            x->first_sent = e->sent_at_ms;
        *added += (size_t)t;
    }
    rc = 0;
out:
    free(v);
    free(g);
    free(series);
    free(sent);
    free(sx);
    free(tb);
    free(m.v);
    free(m.slot);
    return rc;
}

int hpg_apply_events(struct hstore *store, const struct user_event *users, size_t nu,
                     const struct copy_event *copies, size_t nc, size_t *new_users,
                     size_t *new_copies)
{
    struct hpg *s = hpg(store);
    int rc = -1;
    int64_t now = time_now_ms();
    struct hpg_aggs em, dm;
    struct han_batch an;
    hpg_aggs_init(&em);
    hpg_aggs_init(&dm);
    han_init(&an);
    *new_users = *new_copies = 0;
    pthread_mutex_lock(&s->w_lock);
    if (!sqldb_ok(s->w) || sqldb_begin(s->w) != 0)
        goto out;
    if (nu && apply_users(s, users, nu, &dm, new_users) != 0)
        goto out;
    if (nc && apply_copies(s, copies, nc, now, &em, &dm, &an, new_copies) != 0)
        goto out;
    if (hpg_stats_upsert(s, &em, 0) != 0 || hpg_domains_upsert(s, &dm, now) != 0 ||
        hpg_an_flush(s, &an) != 0)
        goto out;
    rc = sqldb_commit(s->w);
    if (rc == 0)
        hstore_counted(store, an.entered);
out:
    if (rc != 0) {
        sqldb_rollback(s->w);
        *new_users = *new_copies = 0;
    }
    pthread_mutex_unlock(&s->w_lock);
    hpg_aggs_cleanup(&em);
    hpg_aggs_cleanup(&dm);
    han_cleanup(&an);
    return rc;
}
