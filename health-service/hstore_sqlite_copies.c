/* hstore_sqlite_copies.c - the SQLite backend's ingest of copy events
 * into the store's files, and the per-email counters they keep.
 *
 * Threads: the caller (the consumer's kc-apply thread) stores file 0's
 * part of a batch; each other file's part is stored at the same time on
 * a thread started for that batch ("hstore-s<k>", when its part is large
 * enough to pay for it), which takes that file's w_lock for its
 * transaction and ends with it. */
#include "hstore_sqlite.h"
#include "db.h"
#include "log.h"
#include "timeutil.h"
#include "xalloc.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* cached - the statement *slot, prepared on the file's writer at first use */
static sqlite3_stmt *cached(struct hshard *h, sqlite3_stmt **slot, const char *sql)
{
    if (!*slot)
        *slot = db_prepare(h->w, sql);
    return *slot;
}

/* step_reset - step a cached statement once and make it reusable */
static int step_reset(struct hshard *h, sqlite3_stmt *st)
{
    int rc = db_step(h->w, st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}

int hsqlite_stats_add(struct hshard *h, int64_t email_id, const char *broadcast_id,
                      int64_t first_sent, const struct hstore_delta *d, int64_t checked_at)
{
    sqlite3_stmt *st =
        cached(h, &h->stats_upsert,
               "INSERT INTO email_stats(email_id, broadcast_id, tracked, delivered, spam, opened,"
               " read, bounced, checked_at, first_sent_at, unchecked, rescued)"
               " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
               " ON CONFLICT(email_id) DO UPDATE SET tracked = tracked + ?3,"
               " delivered = delivered + ?4, spam = spam + ?5, opened = opened + ?6,"
               " read = read + ?7, bounced = bounced + ?8,"
               " checked_at = coalesce(?9, checked_at),"
               " first_sent_at = CASE WHEN ?10 IS NULL THEN first_sent_at"
               " ELSE min(coalesce(first_sent_at, ?10), ?10) END,"
               " unchecked = unchecked + ?11, rescued = rescued + ?12");
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, email_id);
    sqlite3_bind_text(st, 2, broadcast_id ? broadcast_id : "", -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, d->tracked);
    sqlite3_bind_int(st, 4, d->delivered);
    sqlite3_bind_int(st, 5, d->spam);
    sqlite3_bind_int(st, 6, d->opened);
    sqlite3_bind_int(st, 7, d->read);
    sqlite3_bind_int(st, 8, d->bounced);
    sqlite3_bind_int(st, 11, d->unchecked);
    sqlite3_bind_int(st, 12, d->rescued);
    if (checked_at)
        sqlite3_bind_int64(st, 9, checked_at);
    else
        sqlite3_bind_null(st, 9);
    if (first_sent)
        sqlite3_bind_int64(st, 10, first_sent);
    else
        sqlite3_bind_null(st, 10);
    return step_reset(h, st);
}

/* what a batch adds to one email's or one domain's counters */
struct agg {
    const char *key;          /* domain (points into the batch's events) */
    int64_t email_id;         /* email aggregates */
    const char *broadcast_id; /* the email's, for a first row */
    uint64_t h;               /* of the email_id or the domain */
    int tracked, bounced;
    int64_t first_sent; /* email aggregates: the earliest new copy's sent_at, 0 none */
};

/* aggs - the distinct emails or domains of a batch, in first-seen order,
 * found through an open-addressing index that grows with them (a batch
 * of 40,000 copies usually touches a few, but can touch thousands) */
struct aggs {
    struct agg *v;
    size_t n, cap;
    uint32_t *slot; /* index + 1 into v, 0 = empty; mask + 1 slots */
    size_t mask;
};

static void aggs_init(struct aggs *a)
{
    a->n = 0;
    a->cap = 16;
    a->v = xcalloc(a->cap, sizeof *a->v);
    a->mask = 2 * a->cap - 1;
    a->slot = xcalloc(a->mask + 1, sizeof *a->slot);
}

static void aggs_cleanup(struct aggs *a)
{
    free(a->v);
    free(a->slot);
}

/* aggs_add - a new entry with hash h (slots at most half full) */
static struct agg *aggs_add(struct aggs *a, uint64_t h)
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
    a->v[a->n] = (struct agg){.h = h};
    a->slot[i] = (uint32_t)++a->n;
    return &a->v[a->n - 1];
}

static struct agg *agg_email(struct aggs *a, const struct copy_event *e)
{
    uint64_t h = (uint64_t)e->email_id * 0x9E3779B97F4A7C15u >> 32;
    for (size_t i = h & a->mask; a->slot[i]; i = (i + 1) & a->mask)
        if (a->v[a->slot[i] - 1].email_id == e->email_id)
            return &a->v[a->slot[i] - 1];
    struct agg *g = aggs_add(a, h);
    g->email_id = e->email_id;
    g->broadcast_id = e->broadcast_id;
    return g;
}

static struct agg *agg_domain(struct aggs *a, const char *domain)
{
    uint64_t h = (uint64_t)hsqlite_mid_hash(domain); /* FNV-1a */
    for (size_t i = h & a->mask; a->slot[i]; i = (i + 1) & a->mask)
        if (strcmp(a->v[a->slot[i] - 1].key, domain) == 0)
            return &a->v[a->slot[i] - 1];
    struct agg *g = aggs_add(a, h);
    g->key = domain;
    return g;
}

/* a copy event of a batch with its key */
struct keyed {
    const struct copy_event *e;
    int64_t hash;
    size_t seq; /* arrival order */
};

/* sort_keyed - by key, then in arrival order: an LSD radix sort on the
 * key's bytes, stable, so copies with the same key keep the order they
 * came in (v must be in arrival order). Eight linear passes: far cheaper
 * than a comparison sort of a large batch. */
static void sort_keyed(struct keyed *v, size_t n)
{
    if (n < 2)
        return;
    struct keyed *tmp = xmalloc(n * sizeof *tmp), *src = v, *dst = tmp;
    for (int shift = 0; shift < 64; shift += 8) {
        size_t count[256] = {0};
        for (size_t i = 0; i < n; i++) /* the sign bit flipped: signed order */
            count[((uint64_t)src[i].hash ^ (UINT64_C(1) << 63)) >> shift & 0xff]++;
        if (count[((uint64_t)src[0].hash ^ (UINT64_C(1) << 63)) >> shift & 0xff] == n)
            continue; /* every key has this byte: nothing moves */
        size_t at = 0;
        for (int d = 0; d < 256; d++) {
            size_t c = count[d];
            count[d] = at;
            at += c;
        }
        for (size_t i = 0; i < n; i++)
            dst[count[((uint64_t)src[i].hash ^ (UINT64_C(1) << 63)) >> shift & 0xff]++] = src[i];
        struct keyed *t = src;
        src = dst;
        dst = t;
    }
    if (src != v)
        memcpy(v, src, n * sizeof *v);
    free(tmp);
}

/* find_copy - the stored copy e (hash key) in file h: 1 with its rowid and
 * bounced flag, 0 if none, -1 on error */
static int find_copy(struct hshard *h, const struct copy_event *e, int64_t key, int64_t *rowid,
                     int *bounced)
{
    sqlite3_stmt *st =
        cached(h, &h->find_copy, "SELECT rowid, bounced FROM copies WHERE " HSTORE_COPY_MATCH);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, key);
    sqlite3_bind_text(st, 2, e->message_id, -1, SQLITE_STATIC);
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
        *rowid = sqlite3_column_int64(st, 0);
        *bounced = sqlite3_column_int(st, 1);
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return r == SQLITE_ROW ? 1 : r == SQLITE_DONE ? 0 : -1;
}

/* sent_time - when copy e is stored as sent: its sent_at, else now (an
 * email.failed without one) */
static int64_t sent_time(const struct copy_event *e, int64_t now)
{
    return e->sent_at_ms ? e->sent_at_ms : now;
}

/* bind_campaign - e's campaign (NULL: none), variant and series (0: NULL)
 * as parameters p, p + 1, p + 2 */
static void bind_campaign(sqlite3_stmt *st, int p, const struct copy_event *e, int64_t series)
{
    if (e->campaign)
        sqlite3_bind_int64(st, p, e->campaign);
    else
        sqlite3_bind_null(st, p);
    sqlite3_bind_text(st, p + 1, e->variant, -1, SQLITE_STATIC); /* NULL: none */
    if (series)
        sqlite3_bind_int64(st, p + 2, series);
    else
        sqlite3_bind_null(st, p + 2);
}

/* insert_copy - e's row in file h under key (NULL when with_hash is
 * false: the hash belongs to another Message-ID), sent at sent_at, in
 * analytics series; *added says whether it was new */
static int insert_copy(struct hshard *h, const struct copy_event *e, int64_t key, bool with_hash,
                       int64_t sent_at, int64_t series, bool *added)
{
    sqlite3_stmt *st = cached(h, &h->ins_copy,
                              "INSERT OR IGNORE INTO copies(message_id, mid_hash, email_id,"
                              " broadcast_id, recipient, domain, smtp_client, sent_at, bounced,"
                              " smtp_reply, identity, campaign, variant, series)"
                              " VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, e->message_id, -1, SQLITE_STATIC);
    if (with_hash)
        sqlite3_bind_int64(st, 2, key);
    else
        sqlite3_bind_null(st, 2);
    sqlite3_bind_int64(st, 3, e->email_id);
    sqlite3_bind_text(st, 4, e->broadcast_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, e->recipient, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, e->domain, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, e->smtp_client, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 8, sent_at);
    sqlite3_bind_int(st, 9, e->failed);
    sqlite3_bind_text(st, 10, e->smtp_reply, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 11, e->identity, -1, SQLITE_STATIC); /* NULL: none */
    bind_campaign(st, 12, e, series);
    if (step_reset(h, st) != 0)
        return -1;
    *added = sqlite3_changes(h->w) == 1;
    return 0;
}

/* insert_unless_stored - e's row if no copy with its Message-ID is stored
 * yet; under its hash, else (the hash is another Message-ID's) without */
static int insert_unless_stored(struct hshard *h, const struct keyed *k, int64_t sent_at,
                                int64_t series, bool *added)
{
    int64_t rowid;
    int bounced;
    if (insert_copy(h, k->e, k->hash, true, sent_at, series, added) != 0)
        return -1;
    if (*added)
        return 0;
    int r = find_copy(h, k->e, k->hash, &rowid, &bounced);
    if (r != 0)
        return r < 0 ? -1 : 0; /* stored before: a redelivery */
    return insert_copy(h, k->e, k->hash, false, sent_at, series, added);
}

/* apply_one_copy - the copy's row (sent at sent_at, in series); *tracked
 * and *bounced say what it adds; a tracked copy that bounced after all
 * is counted in an, in its stored series and hour */
static int apply_one_copy(struct hshard *h, const struct keyed *k, int64_t sent_at, int64_t series,
                          struct han_batch *an, int *tracked, int *bounced)
{
    const struct copy_event *e = k->e;
    bool added = false;
    *tracked = *bounced = 0;
    if (e->failed) {
        int64_t rowid;
        int was;
        int r = find_copy(h, e, k->hash, &rowid, &was);
        if (r < 0)
            return -1;
        if (r == 1 && was)
            return 0; /* seen before: a redelivery */
        if (r == 1) { /* a tracked copy bounced after all */
            sqlite3_stmt *st = cached(
                h, &h->upd_bounce, "UPDATE copies SET bounced = 1, smtp_reply = ? WHERE rowid = ?");
            if (!st)
                return -1;
            sqlite3_bind_text(st, 1, e->smtp_reply, -1, SQLITE_STATIC);
            sqlite3_bind_int64(st, 2, rowid);
            if (step_reset(h, st) != 0)
                return -1;
            int64_t was_series, was_sent;
            if (han_copy_series(h, rowid, &was_series, &was_sent) != 0)
                return -1;
            han_add(an, was_series, was_sent, HAN_BOUNCED, 1);
            *bounced = 1;
            return 0;
        }
    }
    /* new, or a redelivered email.sent: the first row stays */
    if (insert_unless_stored(h, k, sent_at, series, &added) != 0)
        return -1;
    if (added) {
        *tracked = 1;
        *bounced = e->failed;
    }
    return 0;
}

/* chunk_stmt - the HSTORE_CHUNK-row INSERT of email.sent copies (as
 * insert_copy's, with bounced and smtp_reply left to their defaults);
 * CHUNK_PARAMS parameters a row */
#define CHUNK_PARAMS 12
static sqlite3_stmt *chunk_stmt(struct hshard *h)
{
    static const char head[] = "INSERT OR IGNORE INTO copies(message_id, mid_hash, email_id,"
                               " broadcast_id, recipient, domain, smtp_client, sent_at,"
                               " identity, campaign, variant, series) VALUES";
    static const char row[] = "(?,?,?,?,?,?,?,?,?,?,?,?),";
    char sql[sizeof head + HSTORE_CHUNK * (sizeof row - 1)];
    if (h->ins_chunk)
        return h->ins_chunk;
    size_t len = sizeof head - 1;
    memcpy(sql, head, len);
    for (int k = 0; k < HSTORE_CHUNK; k++, len += sizeof row - 1)
        memcpy(sql + len, row, sizeof row - 1);
    sql[len - 1] = '\0'; /* the last comma */
    return h->ins_chunk = db_prepare(h->w, sql);
}

/* apply_sent_chunk - HSTORE_CHUNK email.sent copies in one statement
 * (series[k]: copy k's analytics series); tracked[k] says whether copy k
 * is new (not a redelivery) */
static int apply_sent_chunk(struct hshard *h, const struct keyed *e, const int64_t *series,
                            int64_t now, bool *tracked)
{
    sqlite3_stmt *st = chunk_stmt(h);
    if (!st)
        return -1;
    for (int k = 0; k < HSTORE_CHUNK; k++) {
        const struct copy_event *c = e[k].e;
        int p = k * CHUNK_PARAMS;
        sqlite3_bind_text(st, p + 1, c->message_id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, p + 2, e[k].hash);
        sqlite3_bind_int64(st, p + 3, c->email_id);
        sqlite3_bind_text(st, p + 4, c->broadcast_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, p + 5, c->recipient, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, p + 6, c->domain, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, p + 7, c->smtp_client, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, p + 8, sent_time(c, now));
        sqlite3_bind_text(st, p + 9, c->identity, -1, SQLITE_STATIC);
        bind_campaign(st, p + 10, c, series[k]);
    }
    int r = db_step(h->w, st);
    sqlite3_reset(st); /* every parameter is bound again next time */
    if (r != 0)
        return -1;
    int changes = sqlite3_changes(h->w);
    if (changes == HSTORE_CHUNK) {
        for (int k = 0; k < HSTORE_CHUNK; k++)
            tracked[k] = true;
        return 0;
    }
    /* some were ignored: redeliveries, or a hash taken by another
     * Message-ID. The rows this statement added got the consecutive
     * rowids up to the last one it inserted (max + 1 each). */
    int64_t first_new = changes ? sqlite3_last_insert_rowid(h->w) - changes + 1 : INT64_MAX;
    int64_t rowids[HSTORE_CHUNK];
    for (int k = 0; k < HSTORE_CHUNK; k++) {
        int bounced;
        r = find_copy(h, e[k].e, e[k].hash, &rowids[k], &bounced);
        if (r < 0)
            return -1;
        if (r == 0) { /* its hash belongs to an older Message-ID */
            if (insert_copy(h, e[k].e, e[k].hash, false, sent_time(e[k].e, now), series[k],
                            &tracked[k]) != 0)
                return -1;
            rowids[k] = sqlite3_last_insert_rowid(h->w);
            continue;
        }
        tracked[k] = rowids[k] >= first_new;
        for (int j = 0; j < k && tracked[k]; j++) /* the same copy twice in the chunk */
            if (rowids[j] == rowids[k])
                tracked[k] = false;
    }
    return 0;
}

/* by_key - the order of a keyed batch: by key (the index order), then as
 * the copies came, so a bounce stays after its copy */
static int by_key(const struct copy_event *x, const struct copy_event *y)
{
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return (x->seq > y->seq) - (x->seq < y->seq);
}

void hsqlite_key_copies(struct hstore *store, struct copy_event *copies, size_t n)
{
    struct hsqlite *s = hsqlite(store);
    struct keyed *k = xcalloc(n ? n : 1, sizeof *k);
    for (size_t i = 0; i < n; i++)
        k[i] = (struct keyed){.e = &copies[i], .hash = s->hash(copies[i].message_id), .seq = i};
    sort_keyed(k, n);
    struct copy_event *sorted = xcalloc(n ? n : 1, sizeof *sorted);
    for (size_t i = 0; i < n; i++) {
        sorted[i] = *k[i].e;
        sorted[i].key = k[i].hash;
        sorted[i].seq = k[i].seq;
        sorted[i].keyed = true;
    }
    memcpy(copies, sorted, n * sizeof *copies);
    free(sorted);
    free(k);
}

/* keyed_in_order - the copies as hsqlite_key_copies left them */
static bool keyed_in_order(const struct copy_event *c, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!c[i].keyed || (i > 0 && by_key(&c[i - 1], &c[i]) > 0))
            return false;
    return true;
}

/* the rowids and sending times of a batch's new copies in one file */
struct batch_range {
    int64_t first;              /* the first rowid the batch may use */
    int64_t min_sent, max_sent; /* of its new copies */
    size_t n;
};

static void range_add(struct batch_range *r, int64_t sent_at)
{
    if (!r->n || sent_at < r->min_sent)
        r->min_sent = sent_at;
    if (!r->n || sent_at > r->max_sent)
        r->max_sent = sent_at;
    r->n++;
}

/* last_rowid - the highest rowid of h's copies (0: none) */
static int last_rowid(struct hshard *h, int64_t *out)
{
    sqlite3_stmt *st = cached(h, &h->last_rowid, "SELECT coalesce(max(rowid), 0) FROM copies");
    if (!st)
        return -1;
    int r = sqlite3_step(st);
    *out = r == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    return r == SQLITE_ROW ? 0 : -1;
}

/* record_range - the batch's copy_batches row (HSTORE_PLACEMENT_SQL) */
static int record_range(struct hshard *h, const struct batch_range *r)
{
    int64_t last;
    if (last_rowid(h, &last) != 0)
        return -1;
    sqlite3_stmt *st =
        cached(h, &h->ins_range,
               "INSERT INTO copy_batches(first_rowid, last_rowid, min_sent, max_sent)"
               " VALUES(?1, ?2, ?3, ?4)");
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, r->first);
    sqlite3_bind_int64(st, 2, last);
    sqlite3_bind_int64(st, 3, r->min_sent);
    sqlite3_bind_int64(st, 4, r->max_sent);
    return step_reset(h, st);
}

/* first_sent - an email's earliest copy of the batch */
static void first_sent(struct agg *em, int64_t sent_at)
{
    if (sent_at > 0 && (!em->first_sent || sent_at < em->first_sent))
        em->first_sent = sent_at;
}

/* apply_part - copies e[0, n) of file h (keyed, in key order) inside h's
 * open transaction: rows per copy, the per-email and per-domain counters
 * once per email and domain of the part, the analytics counts once per
 * series and hour (what entered them in *an_entered); counts new copies
 * in *added */
static int apply_part(struct hshard *h, const struct keyed *e, size_t n, size_t *added,
                      int64_t an_entered[HAN_N])
{
    int rc = -1;
    struct aggs ea, da;
    aggs_init(&ea);
    aggs_init(&da);
    struct han_batch an;
    han_init(&an);
    struct han_series_map *sm = han_series_new();
    int64_t *series = xcalloc(n ? n : 1, sizeof *series), now = time_now_ms();
    struct batch_range br = {0};
    if (last_rowid(h, &br.first) != 0)
        goto out;
    br.first++;
    for (size_t i = 0; i < n; i++)
        if (han_series(h, sm, e[i].e, &series[i]) != 0)
            goto out;
    size_t run_end = 0; /* e[i, run_end) are email.sent copies */
    for (size_t i = 0; i < n;) {
        bool chunk_new[HSTORE_CHUNK];
        size_t m = 1;
        if (run_end <= i)
            for (run_end = i; run_end < n && !e[run_end].e->failed; run_end++)
                ;
        if (run_end >= i + HSTORE_CHUNK) {
            m = HSTORE_CHUNK;
            if (apply_sent_chunk(h, &e[i], &series[i], now, chunk_new) != 0)
                goto out;
        } else {
            int t, b;
            int64_t at = sent_time(e[i].e, now);
            if (apply_one_copy(h, &e[i], at, series[i], &an, &t, &b) != 0)
                goto out;
            chunk_new[0] = t; /* b: only with t for email.failed, or alone */
            if (b) {
                struct agg *em = agg_email(&ea, e[i].e), *dm = agg_domain(&da, e[i].e->domain);
                em->bounced++;
                dm->bounced++;
                first_sent(em, e[i].e->sent_at_ms);
                range_add(&br, at);
                if (t) /* a new dead letter; else counted by apply_one_copy */
                    han_add(&an, series[i], at, HAN_BOUNCED, 1);
            }
        }
        for (size_t k = 0; k < m; k++) {
            if (!chunk_new[k])
                continue;
            const struct copy_event *c = e[i + k].e;
            int64_t at = sent_time(c, now);
            struct agg *em = agg_email(&ea, c), *dm = agg_domain(&da, c->domain);
            em->tracked++;
            dm->tracked++;
            first_sent(em, c->sent_at_ms);
            range_add(&br, at);
            han_add(&an, series[i + k], at, HAN_SENT, 1);
            (*added)++;
        }
        i += m;
    }
    if (br.n && record_range(h, &br) != 0)
        goto out;
    for (size_t i = 0; i < ea.n; i++) {
        struct hstore_delta d = {.tracked = ea.v[i].tracked, .bounced = ea.v[i].bounced};
        if (hsqlite_stats_add(h, ea.v[i].email_id, ea.v[i].broadcast_id, ea.v[i].first_sent, &d,
                              0) != 0)
            goto out;
    }
    char now_text[32];
    time_rfc3339_ms(now, now_text, sizeof now_text);
    sqlite3_stmt *st =
        cached(h, &h->domain_upsert,
               "INSERT INTO domains(domain, users, first_seen, last_seen, tracked, bounced)"
               " VALUES(?1, 0, ?2, ?2, ?3, ?4) ON CONFLICT(domain) DO UPDATE SET"
               " tracked = tracked + ?3, bounced = bounced + ?4");
    if (!st)
        goto out;
    for (size_t i = 0; i < da.n; i++) {
        sqlite3_bind_text(st, 1, da.v[i].key, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, now_text, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 3, da.v[i].tracked);
        sqlite3_bind_int(st, 4, da.v[i].bounced);
        if (step_reset(h, st) != 0)
            goto out;
    }
    if (han_flush(h, &an) != 0)
        goto out;
    for (int q = 0; q < HAN_N; q++)
        an_entered[q] += an.entered[q];
    rc = 0;
out:
    aggs_cleanup(&ea);
    aggs_cleanup(&da);
    han_cleanup(&an);
    han_series_free(sm);
    free(series);
    return rc;
}

/* one file's part of a batch */
struct part {
    struct hshard *h;
    const struct keyed *e;
    size_t n, added;
    int64_t entered[HAN_N]; /* what entered the analytics counts */
    int rc;
    struct hstore *store; /* told of entered after the part's commit */
};

/* store_part - p's copies in a transaction of their own on p's file (on
 * the file's writer thread) */
static void store_part(void *arg)
{
    struct part *p = arg;
    struct hshard *h = p->h;
    int64_t t0 = time_mono_ms();
    pthread_mutex_lock(&h->w_lock);
    p->rc = -1;
    if (db_begin(h->w) == 0 && apply_part(h, p->e, p->n, &p->added, p->entered) == 0 &&
        db_commit(h->w) == 0) {
        p->rc = 0;
        hstore_counted(p->store, p->entered);
    }
    if (p->rc != 0) {
        log_error("hstore: applying %zu copies to file %s failed: %s", p->n, h->schema,
                  sqlite3_errmsg(h->w));
        db_rollback(h->w);
        p->added = 0;
    }
    pthread_mutex_unlock(&h->w_lock);
    log_debug("hstore: file %s: %zu copies stored in %lld ms", h->schema, p->n,
              (long long)(time_mono_ms() - t0));
}

int hsqlite_apply_copies(struct hsqlite *s, const struct copy_event *events, size_t n,
                         size_t *added, int64_t entered[HAN_N])
{
    /* in key order: the inserts walk the Message-ID index from one end to
     * the other instead of jumping around it (pages stay in the CPU
     * caches), and each file's copies are one run; copies of different
     * messages are independent */
    struct keyed *e = xcalloc(n ? n : 1, sizeof *e);
    bool keyed = keyed_in_order(events, n);
    for (size_t i = 0; i < n; i++)
        e[i] = (struct keyed){.e = &events[i],
                              .hash = keyed ? events[i].key : s->hash(events[i].message_id),
                              .seq = i};
    if (!keyed)
        sort_keyed(e, n);
    struct part parts[HSTORE_MAX_SHARDS];
    size_t at = 0;
    for (int k = 0; k < s->nshards; k++) {
        size_t end = at;
        while (end < n && hsqlite_shard_of(s, e[end].hash) == k)
            end++;
        parts[k] = (struct part){.h = &s->shard[k], .e = e + at, .n = end - at, .store = &s->base};
        at = end;
        if (k > 0 && parts[k].n)
            hsqlite_post(parts[k].h, store_part, &parts[k]);
    }
    /* file 0's part in the caller's transaction, with the users */
    int64_t t0 = time_mono_ms();
    int rc = apply_part(&s->shard[0], parts[0].e, parts[0].n, &parts[0].added, entered);
    log_debug("hstore: file main: %zu copies applied in %lld ms (commit to follow)", parts[0].n,
              (long long)(time_mono_ms() - t0));
    for (int k = 1; k < s->nshards; k++) {
        if (parts[k].n)
            hsqlite_wait(parts[k].h);
        rc |= parts[k].rc;
    }
    for (int k = 0; k < s->nshards; k++)
        *added += parts[k].added;
    free(e);
    return rc ? -1 : 0;
}
