/* hstore_copies.c - tracked copies, per-email stats and check results.
 * Writes come from the consumer thread (ingest) and the scheduler workers
 * (check results), serialised by w_lock on the writer connection; reads
 * (stats API, open copies) use the reader connection under r_lock. */
#include "db.h"
#include "hstore.h"
#include "hstore_int.h"
#include "log.h"
#include "timeutil.h"
#include "xalloc.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

json_object *hstore_time_json(sqlite3_stmt *st, int i)
{
    if (sqlite3_column_type(st, i) == SQLITE_NULL)
        return NULL;
    char at[32];
    time_rfc3339_ms(sqlite3_column_int64(st, i), at, sizeof at);
    return json_object_new_string(at);
}

/* stats_add - add deltas to an email's counters (creating its row); writer,
 * w_lock held */
static int stats_add(struct hstore *s, int64_t email_id, const char *broadcast_id, int tracked,
                     int delivered, int spam, int opened, int read, int bounced,
                     int64_t checked_at);

/* cached - the statement *slot, prepared on the writer at first use */
static sqlite3_stmt *cached(struct hstore *s, sqlite3_stmt **slot, const char *sql)
{
    if (!*slot)
        *slot = db_prepare(s->w, sql);
    return *slot;
}

/* step_reset - step a cached statement once and make it reusable */
static int step_reset(struct hstore *s, sqlite3_stmt *st)
{
    int rc = db_step(s->w, st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}

static int stats_add(struct hstore *s, int64_t email_id, const char *broadcast_id, int tracked,
                     int delivered, int spam, int opened, int read, int bounced, int64_t checked_at)
{
    sqlite3_stmt *st =
        cached(s, &s->stats_upsert,
               "INSERT INTO email_stats(email_id, broadcast_id, tracked, delivered, spam, opened,"
               " read, bounced, checked_at) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
               " ON CONFLICT(email_id) DO UPDATE SET tracked = tracked + ?3,"
               " delivered = delivered + ?4, spam = spam + ?5, opened = opened + ?6,"
               " read = read + ?7, bounced = bounced + ?8,"
               " checked_at = coalesce(?9, checked_at)");
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, email_id);
    sqlite3_bind_text(st, 2, broadcast_id ? broadcast_id : "", -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, tracked);
    sqlite3_bind_int(st, 4, delivered);
    sqlite3_bind_int(st, 5, spam);
    sqlite3_bind_int(st, 6, opened);
    sqlite3_bind_int(st, 7, read);
    sqlite3_bind_int(st, 8, bounced);
    if (checked_at)
        sqlite3_bind_int64(st, 9, checked_at);
    else
        sqlite3_bind_null(st, 9);
    return step_reset(s, st);
}

/* what a batch adds to one email's or one domain's counters */
struct agg {
    const char *key;          /* domain (points into the batch's events) */
    int64_t email_id;         /* email aggregates */
    const char *broadcast_id; /* the email's, for a first row */
    uint64_t h;               /* of the email_id or the domain */
    int tracked, bounced;
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
    uint64_t h = (uint64_t)hstore_mid_hash(domain); /* FNV-1a */
    for (size_t i = h & a->mask; a->slot[i]; i = (i + 1) & a->mask)
        if (strcmp(a->v[a->slot[i] - 1].key, domain) == 0)
            return &a->v[a->slot[i] - 1];
    struct agg *g = aggs_add(a, h);
    g->key = domain;
    return g;
}

int64_t hstore_mid_hash(const char *message_id)
{
    uint64_t h = 1469598103934665603u; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)message_id; *p; p++)
        h = (h ^ *p) * 1099511628211u;
    int64_t v;
    memcpy(&v, &h, sizeof v); /* two's complement: the full 64 bits as an SQLite integer */
    return v;
}

/* a copy event of a batch with its key */
struct keyed {
    const struct copy_event *e;
    int64_t hash;
    size_t seq; /* arrival order */
};

/* sort_keyed - by key, then in arrival order: an LSD radix sort on the
 * key's bytes, stable, so copies with the same key keep the order they
 * came in (v must be in arrival order). A batch of 40,000 took ~5,800
 * instructions per copy through qsort; this takes a few dozen. */
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

/* find_copy - the stored copy e (hash h): 1 with its rowid and bounced
 * flag, 0 if none, -1 on error */
static int find_copy(struct hstore *s, const struct copy_event *e, int64_t h, int64_t *rowid,
                     int *bounced)
{
    sqlite3_stmt *st =
        cached(s, &s->find_copy, "SELECT rowid, bounced FROM copies WHERE " HSTORE_COPY_MATCH);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, h);
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

/* insert_copy - e's row under key h (NULL when with_hash is false: the
 * hash belongs to another Message-ID); *added says whether it was new */
static int insert_copy(struct hstore *s, const struct copy_event *e, int64_t h, bool with_hash,
                       bool *added)
{
    sqlite3_stmt *st = cached(s, &s->ins_copy,
                              "INSERT OR IGNORE INTO copies(message_id, mid_hash, email_id,"
                              " broadcast_id, recipient, domain, smtp_client, sent_at, bounced,"
                              " smtp_reply) VALUES(?,?,?,?,?,?,?,?,?,?)");
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, e->message_id, -1, SQLITE_STATIC);
    if (with_hash)
        sqlite3_bind_int64(st, 2, h);
    else
        sqlite3_bind_null(st, 2);
    sqlite3_bind_int64(st, 3, e->email_id);
    sqlite3_bind_text(st, 4, e->broadcast_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, e->recipient, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, e->domain, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, e->smtp_client, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 8, e->sent_at_ms ? e->sent_at_ms : time_now_ms());
    sqlite3_bind_int(st, 9, e->failed);
    sqlite3_bind_text(st, 10, e->smtp_reply, -1, SQLITE_STATIC);
    if (step_reset(s, st) != 0)
        return -1;
    *added = sqlite3_changes(s->w) == 1;
    return 0;
}

/* insert_unless_stored - e's row if no copy with its Message-ID is stored
 * yet; under its hash, else (the hash is another Message-ID's) without */
static int insert_unless_stored(struct hstore *s, const struct keyed *k, bool *added)
{
    int64_t rowid;
    int bounced;
    if (insert_copy(s, k->e, k->hash, true, added) != 0)
        return -1;
    if (*added)
        return 0;
    int r = find_copy(s, k->e, k->hash, &rowid, &bounced);
    if (r != 0)
        return r < 0 ? -1 : 0; /* stored before: a redelivery */
    return insert_copy(s, k->e, k->hash, false, added);
}

/* apply_one_copy - the copy's row; *tracked and *bounced say what it adds */
static int apply_one_copy(struct hstore *s, const struct keyed *k, int *tracked, int *bounced)
{
    const struct copy_event *e = k->e;
    bool added = false;
    *tracked = *bounced = 0;
    if (e->failed) {
        int64_t rowid;
        int was;
        int r = find_copy(s, e, k->hash, &rowid, &was);
        if (r < 0)
            return -1;
        if (r == 1 && was)
            return 0; /* seen before: a redelivery */
        if (r == 1) { /* a tracked copy bounced after all */
            sqlite3_stmt *st = cached(
                s, &s->upd_bounce, "UPDATE copies SET bounced = 1, smtp_reply = ? WHERE rowid = ?");
            if (!st)
                return -1;
            sqlite3_bind_text(st, 1, e->smtp_reply, -1, SQLITE_STATIC);
            sqlite3_bind_int64(st, 2, rowid);
            if (step_reset(s, st) != 0)
                return -1;
            *bounced = 1;
            return 0;
        }
    }
    /* new, or a redelivered email.sent: the first row stays */
    if (insert_unless_stored(s, k, &added) != 0)
        return -1;
    if (added) {
        *tracked = 1;
        *bounced = e->failed;
    }
    return 0;
}

/* chunk_stmt - the HSTORE_CHUNK-row INSERT of email.sent copies (as
 * insert_copy's, with bounced and smtp_reply left to their defaults) */
static sqlite3_stmt *chunk_stmt(struct hstore *s)
{
    static const char head[] = "INSERT OR IGNORE INTO copies(message_id, mid_hash, email_id,"
                               " broadcast_id, recipient, domain, smtp_client, sent_at) VALUES";
    static const char row[] = "(?,?,?,?,?,?,?,?),";
    char sql[sizeof head + HSTORE_CHUNK * (sizeof row - 1)];
    if (s->ins_chunk)
        return s->ins_chunk;
    size_t len = sizeof head - 1;
    memcpy(sql, head, len);
    for (int k = 0; k < HSTORE_CHUNK; k++, len += sizeof row - 1)
        memcpy(sql + len, row, sizeof row - 1);
    sql[len - 1] = '\0'; /* the last comma */
    return s->ins_chunk = db_prepare(s->w, sql);
}

/* apply_sent_chunk - HSTORE_CHUNK email.sent copies in one statement;
 * tracked[k] says whether copy k is new (not a redelivery) */
static int apply_sent_chunk(struct hstore *s, const struct keyed *e, bool *tracked)
{
    sqlite3_stmt *st = chunk_stmt(s);
    if (!st)
        return -1;
    int64_t now = 0;
    for (int k = 0; k < HSTORE_CHUNK; k++) {
        const struct copy_event *c = e[k].e;
        int p = k * 8;
        if (!c->sent_at_ms && !now)
            now = time_now_ms();
        sqlite3_bind_text(st, p + 1, c->message_id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, p + 2, e[k].hash);
        sqlite3_bind_int64(st, p + 3, c->email_id);
        sqlite3_bind_text(st, p + 4, c->broadcast_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, p + 5, c->recipient, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, p + 6, c->domain, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, p + 7, c->smtp_client, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, p + 8, c->sent_at_ms ? c->sent_at_ms : now);
    }
    int r = db_step(s->w, st);
    sqlite3_reset(st); /* every parameter is bound again next time */
    if (r != 0)
        return -1;
    int changes = sqlite3_changes(s->w);
    if (changes == HSTORE_CHUNK) {
        for (int k = 0; k < HSTORE_CHUNK; k++)
            tracked[k] = true;
        return 0;
    }
    /* some were ignored: redeliveries, or a hash taken by another
     * Message-ID. The rows this statement added got the consecutive
     * rowids up to the last one it inserted (max + 1 each). */
    int64_t first_new = changes ? sqlite3_last_insert_rowid(s->w) - changes + 1 : INT64_MAX;
    int64_t rowids[HSTORE_CHUNK];
    for (int k = 0; k < HSTORE_CHUNK; k++) {
        int bounced;
        r = find_copy(s, e[k].e, e[k].hash, &rowids[k], &bounced);
        if (r < 0)
            return -1;
        if (r == 0) { /* its hash belongs to an older Message-ID */
            if (insert_copy(s, e[k].e, e[k].hash, false, &tracked[k]) != 0)
                return -1;
            rowids[k] = sqlite3_last_insert_rowid(s->w);
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

void hstore_key_copies(struct hstore *s, struct copy_event *copies, size_t n)
{
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

/* keyed_in_order - the copies as hstore_key_copies left them */
static bool keyed_in_order(const struct copy_event *c, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!c[i].keyed || (i > 0 && by_key(&c[i - 1], &c[i]) > 0))
            return false;
    return true;
}

int hstore_apply_copies(struct hstore *s, const struct copy_event *events, size_t n, size_t *added)
{
    int rc = -1;
    struct aggs ea, da;
    /* in key order: the inserts walk the Message-ID index from one end to
     * the other instead of jumping around it (pages stay in the CPU
     * caches); copies of different messages are independent */
    struct keyed *e = xcalloc(n ? n : 1, sizeof *e);
    bool keyed = keyed_in_order(events, n);
    for (size_t i = 0; i < n; i++)
        e[i] = (struct keyed){.e = &events[i],
                              .hash = keyed ? events[i].key : s->hash(events[i].message_id),
                              .seq = i};
    if (!keyed)
        sort_keyed(e, n);
    aggs_init(&ea);
    aggs_init(&da);
    size_t run_end = 0; /* e[i, run_end) are email.sent copies */
    for (size_t i = 0; i < n;) {
        bool chunk_new[HSTORE_CHUNK];
        size_t m = 1;
        if (run_end <= i)
            for (run_end = i; run_end < n && !e[run_end].e->failed; run_end++)
                ;
        if (run_end >= i + HSTORE_CHUNK) {
            m = HSTORE_CHUNK;
            if (apply_sent_chunk(s, &e[i], chunk_new) != 0)
                goto out;
        } else {
            int t, b;
            if (apply_one_copy(s, &e[i], &t, &b) != 0)
                goto out;
            chunk_new[0] = t; /* b: only with t for email.failed, or alone */
            if (b) {
                struct agg *em = agg_email(&ea, e[i].e), *dm = agg_domain(&da, e[i].e->domain);
                em->bounced++;
                dm->bounced++;
            }
        }
        for (size_t k = 0; k < m; k++) {
            if (!chunk_new[k])
                continue;
            const struct copy_event *c = e[i + k].e;
            struct agg *em = agg_email(&ea, c), *dm = agg_domain(&da, c->domain);
            em->tracked++;
            dm->tracked++;
            (*added)++;
        }
        i += m;
    }
    for (size_t i = 0; i < ea.n; i++)
        if (stats_add(s, ea.v[i].email_id, ea.v[i].broadcast_id, ea.v[i].tracked, 0, 0, 0, 0,
                      ea.v[i].bounced, 0) != 0)
            goto out;
    char now[32];
    time_rfc3339_ms(time_now_ms(), now, sizeof now);
    sqlite3_stmt *st =
        cached(s, &s->domain_upsert,
               "INSERT INTO domains(domain, users, first_seen, last_seen, tracked, bounced)"
               " VALUES(?1, 0, ?2, ?2, ?3, ?4) ON CONFLICT(domain) DO UPDATE SET"
               " tracked = tracked + ?3, bounced = bounced + ?4");
    if (!st)
        goto out;
    for (size_t i = 0; i < da.n; i++) {
        sqlite3_bind_text(st, 1, da.v[i].key, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, now, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 3, da.v[i].tracked);
        sqlite3_bind_int(st, 4, da.v[i].bounced);
        if (step_reset(s, st) != 0)
            goto out;
    }
    rc = 0;
out:
    free(e);
    aggs_cleanup(&ea);
    aggs_cleanup(&da);
    return rc;
}

int hstore_open_copies(struct hstore *s, const char *domain, int64_t since_ms, size_t max,
                       struct hcopy **out, size_t *n)
{
    int r = SQLITE_ERROR;
    *n = 0;
    *out = xcalloc(max ? max : 1, sizeof **out);
    pthread_mutex_lock(&s->r_lock);
    sqlite3_stmt *st = db_prepare(
        s->r, "SELECT message_id, recipient, sent_at, rounds, placement, opened, read, email_id,"
              " rowid FROM copies WHERE domain = ?1 AND bounced = 0 AND sent_at >= ?2"
              " ORDER BY sent_at LIMIT ?3");
    if (st) {
        sqlite3_bind_text(st, 1, domain, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, since_ms);
        sqlite3_bind_int64(st, 3, (int64_t)max);
        while ((r = sqlite3_step(st)) == SQLITE_ROW) {
            struct hcopy *c = &(*out)[(*n)++];
            c->message_id = xstrdup((const char *)sqlite3_column_text(st, 0));
            c->recipient = xstrdup((const char *)sqlite3_column_text(st, 1));
            c->fl.message_id = c->message_id;
            c->fl.recipient = c->recipient;
            c->fl.sent_at_ms = sqlite3_column_int64(st, 2);
            c->fl.rounds = sqlite3_column_int(st, 3);
            c->old_placement = (enum fl_placement)sqlite3_column_int(st, 4);
            c->old_opened = sqlite3_column_int(st, 5) != 0;
            c->old_read = sqlite3_column_int(st, 6) != 0;
            c->email_id = sqlite3_column_int64(st, 7);
            c->id = sqlite3_column_int64(st, 8);
        }
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&s->r_lock);
    return r == SQLITE_DONE ? 0 : -1;
}

void hstore_copies_free(struct hcopy *c, size_t n)
{
    for (size_t i = 0; c && i < n; i++) {
        free(c[i].message_id);
        free(c[i].recipient);
    }
    free(c);
}

struct stat_delta {
    int64_t email_id;
    int delivered, spam, opened, read;
};

int hstore_apply_checks(struct hstore *s, const char *domain, const struct hcopy *c, size_t n,
                        int64_t now_ms, const char *error)
{
    int rc = -1;
    struct stat_delta *d = xcalloc(n ? n : 1, sizeof *d);
    size_t nd = 0, newly_checked = 0;
    sqlite3_stmt *upd = NULL, *dom = NULL;
    pthread_mutex_lock(&s->w_lock);
    if (db_begin(s->w) != 0)
        goto out;
    upd = db_prepare(s->w, "UPDATE copies SET placement = ?2, opened = ?3, read = ?4,"
                           " rounds = rounds + 1, checked_at = ?5 WHERE rowid = ?1");
    dom = db_prepare(s->w, "UPDATE domains SET checked = checked + ?2, last_round_at = ?3,"
                           " last_error = ?4, delivered = delivered + ?5, spam = spam + ?6,"
                           " opened = opened + ?7, read = read + ?8 WHERE domain = ?1");
    if (!upd || !dom)
        goto out;
    for (size_t i = 0; i < n; i++) {
        const struct hcopy *x = &c[i];
        if (x->fl.placement == FL_UNKNOWN)
            continue; /* not checked this round: keep what was known */
        bool opened = x->fl.opened || x->old_opened, read = x->fl.read || x->old_read;
        sqlite3_bind_int64(upd, 1, x->id);
        sqlite3_bind_int(upd, 2, (int)x->fl.placement);
        sqlite3_bind_int(upd, 3, opened);
        sqlite3_bind_int(upd, 4, read);
        sqlite3_bind_int64(upd, 5, now_ms);
        int r = sqlite3_step(upd);
        sqlite3_reset(upd);
        if (r != SQLITE_DONE)
            goto out;
        if (x->fl.rounds == 0)
            newly_checked++;
        size_t k = 0;
        while (k < nd && d[k].email_id != x->email_id)
            k++;
        if (k == nd)
            d[nd++].email_id = x->email_id;
        d[k].delivered += (x->fl.placement == FL_INBOX) - (x->old_placement == FL_INBOX);
        d[k].spam += (x->fl.placement == FL_SPAM) - (x->old_placement == FL_SPAM);
        d[k].opened += opened - x->old_opened;
        d[k].read += read - x->old_read;
    }
    struct stat_delta all = {0};
    for (size_t k = 0; k < nd; k++) {
        if (stats_add(s, d[k].email_id, NULL, 0, d[k].delivered, d[k].spam, d[k].opened, d[k].read,
                      0, now_ms) != 0)
            goto out;
        all.delivered += d[k].delivered;
        all.spam += d[k].spam;
        all.opened += d[k].opened;
        all.read += d[k].read;
    }
    sqlite3_bind_text(dom, 1, domain, -1, SQLITE_STATIC);
    sqlite3_bind_int64(dom, 2, (int64_t)newly_checked);
    sqlite3_bind_int64(dom, 3, now_ms);
    sqlite3_bind_text(dom, 4, error, -1, SQLITE_STATIC);
    sqlite3_bind_int64(dom, 5, all.delivered);
    sqlite3_bind_int64(dom, 6, all.spam);
    sqlite3_bind_int64(dom, 7, all.opened);
    sqlite3_bind_int64(dom, 8, all.read);
    if (sqlite3_step(dom) != SQLITE_DONE)
        goto out;
    rc = db_commit(s->w);
out:
    if (rc != 0) {
        log_error("hstore: applying checks for %s failed: %s", domain, sqlite3_errmsg(s->w));
        db_rollback(s->w);
    }
    sqlite3_finalize(upd);
    sqlite3_finalize(dom);
    pthread_mutex_unlock(&s->w_lock);
    free(d);
    return rc;
}

/* stats_json - the contract's /mail_stats object from counters */
static json_object *stats_json(sqlite3_stmt *st)
{
    /* columns: email_id, broadcast_id, tracked, delivered, spam, opened, read, bounced,
     * checked_at */
    int64_t tracked = sqlite3_column_int64(st, 2), delivered = sqlite3_column_int64(st, 3),
            spam = sqlite3_column_int64(st, 4), bounced = sqlite3_column_int64(st, 7);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "email_id", json_object_new_int64(sqlite3_column_int64(st, 0)));
    json_object_object_add(o, "message_id",
                           json_object_new_string((const char *)sqlite3_column_text(st, 1)));
    json_object_object_add(o, "tracked", json_object_new_int64(tracked));
    json_object_object_add(o, "delivered", json_object_new_int64(delivered));
    json_object_object_add(o, "spam", json_object_new_int64(spam));
    json_object_object_add(o, "opened", json_object_new_int64(sqlite3_column_int64(st, 5)));
    json_object_object_add(o, "read", json_object_new_int64(sqlite3_column_int64(st, 6)));
    json_object_object_add(o, "bounced", json_object_new_int64(bounced));
    int64_t pending = tracked - delivered - spam - bounced;
    json_object_object_add(o, "pending", json_object_new_int64(pending > 0 ? pending : 0));
    json_object_object_add(o, "checked_at", hstore_time_json(st, 8));
    return o;
}

#define STATS_COLS                                                                                 \
    "email_id, broadcast_id, tracked, delivered, spam, opened, read, bounced, checked_at"

int hstore_prepare_stats(struct hstore *s)
{
    s->stats_by_id = db_prepare(s->r, "SELECT " STATS_COLS " FROM email_stats WHERE email_id = ?1");
    s->stats_by_bid =
        db_prepare(s->r, "SELECT " STATS_COLS " FROM email_stats WHERE broadcast_id = ?1");
    s->stats_copy = db_prepare(s->r, "SELECT email_id, message_id, 1, placement = 2,"
                                     " placement = 3, opened, read, bounced, checked_at,"
                                     " recipient, domain FROM copies WHERE " HSTORE_COPY_MATCH);
    return s->stats_by_id && s->stats_by_bid && s->stats_copy ? 0 : -1;
}

int hstore_stats_email(struct hstore *s, int64_t email_id, const char *broadcast_id,
                       json_object **out)
{
    int rc = -1;
    pthread_mutex_lock(&s->r_lock);
    sqlite3_stmt *st = broadcast_id ? s->stats_by_bid : s->stats_by_id;
    if (broadcast_id)
        sqlite3_bind_text(st, 1, broadcast_id, -1, SQLITE_STATIC);
    else
        sqlite3_bind_int64(st, 1, email_id);
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
        *out = stats_json(st);
        rc = 0;
    } else if (r == SQLITE_DONE) {
        rc = 1;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st); /* no pointer to the caller's string kept */
    pthread_mutex_unlock(&s->r_lock);
    return rc;
}

int hstore_stats_copy(struct hstore *s, const char *message_id, json_object **out)
{
    int rc = -1;
    pthread_mutex_lock(&s->r_lock);
    sqlite3_stmt *st = s->stats_copy;
    sqlite3_bind_int64(st, 1, s->hash(message_id));
    sqlite3_bind_text(st, 2, message_id, -1, SQLITE_STATIC);
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
        *out = stats_json(st);
        json_object_object_add(*out, "recipient",
                               json_object_new_string((const char *)sqlite3_column_text(st, 9)));
        json_object_object_add(*out, "domain",
                               json_object_new_string((const char *)sqlite3_column_text(st, 10)));
        rc = 0;
    } else if (r == SQLITE_DONE) {
        rc = 1;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    pthread_mutex_unlock(&s->r_lock);
    return rc;
}

json_object *hstore_all_stats(struct hstore *s, int64_t limit, int64_t offset)
{
    json_object *all = json_object_new_object();
    int r = SQLITE_ERROR;
    pthread_mutex_lock(&s->r_lock);
    sqlite3_stmt *st = db_prepare(s->r, "SELECT " STATS_COLS
                                        " FROM email_stats ORDER BY email_id LIMIT ? OFFSET ?");
    if (st) {
        sqlite3_bind_int64(st, 1, limit);
        sqlite3_bind_int64(st, 2, offset);
        while ((r = sqlite3_step(st)) == SQLITE_ROW) {
            char key[24];
            snprintf(key, sizeof key, "%lld", (long long)sqlite3_column_int64(st, 0));
            json_object_object_add(all, key, stats_json(st));
        }
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&s->r_lock);
    if (r != SQLITE_DONE) {
        json_object_put(all);
        return NULL;
    }
    return all;
}

int64_t hstore_tracked_count(struct hstore *s)
{
    int64_t n = -1;
    pthread_mutex_lock(&s->r_lock);
    sqlite3_stmt *st = db_prepare(s->r, "SELECT coalesce(sum(tracked), 0) FROM email_stats");
    if (st && sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->r_lock);
    return n;
}
