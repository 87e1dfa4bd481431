/* hstore_sqlite.c - the SQLite backend of the health store (hstore.h):
 * opening it, its ops table, users and domains. The copies live in
 * hstore_sqlite_copies.c (ingest), _checks.c (rounds) and _stats.c
 * (reads), over the files of hstore_sqlite_files.c; hstore_sqlite.h says
 * how the files are laid out. Threads as hstore.h: writes under a file's
 * w_lock, reads on the one reader connection under r_lock. */
#include "hstore_sqlite.h"
#include "errbuf.h"
#include "db.h"
#include "log.h"
#include "xalloc.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static void hsqlite_free(struct hstore *store);
static int hsqlite_apply_events(struct hstore *store, const struct user_event *users, size_t nu,
                                const struct copy_event *copies, size_t nc, size_t *new_users,
                                size_t *new_copies);
static int hsqlite_domains(struct hstore *store, struct hstore_domain **out, size_t *n);
static int64_t hsqlite_domain_count(struct hstore *store);
static int hsqlite_domain_placement(struct hstore *store, const char *domain,
                                    struct hplacement *out);
static int hsqlite_domain_names(struct hstore *store, char ***names, size_t *n);

static const struct hstore_ops hsqlite_ops = {
    .name = "sqlite",
    .free = hsqlite_free,
    .apply_events = hsqlite_apply_events,
    .key_copies = hsqlite_key_copies,
    .domains = hsqlite_domains,
    .domain_count = hsqlite_domain_count,
    .domain_placement = hsqlite_domain_placement,
    .domain_names = hsqlite_domain_names,
    .open_copies = hsqlite_open_copies,
    .apply_checks = hsqlite_apply_checks,
    .stats_email = hsqlite_stats_email,
    .stats_copy = hsqlite_stats_copy,
    .all_stats = hsqlite_all_stats,
    .tracked_count = hsqlite_tracked_count,
    .apply_feedback = hsqlite_apply_feedback,
    .placement_counts = hsqlite_placement_counts,
    .inbox_delays = hsqlite_inbox_delays,
    .reconcile = hsqlite_reconcile,
    .analytics = hsqlite_analytics,
};

void hstore_sqlite_set_hash(struct hstore *store, hstore_hash_fn fn)
{
    hsqlite(store)->hash = fn;
}

/* prepare_domains - the reader's domain statements, summed over the files
 * (file 0 alone has the users and the round state) */
static int prepare_domains(struct hsqlite *s)
{
    static const char cols[] = "SELECT domain, users, first_seen, last_seen, tracked, checked,"
                               " last_round_at, last_error, delivered, spam, opened, read,"
                               " bounced, complained, unchecked, rescued FROM ";
    static const char sums[] = "SELECT domain, sum(users), min(first_seen), max(last_seen),"
                               " sum(tracked), sum(checked), max(last_round_at),"
                               " max(last_error), sum(delivered), sum(spam), sum(opened),"
                               " sum(read), sum(bounced), sum(complained), sum(unchecked),"
                               " sum(rescued) FROM (";
    s->list_domains =
        hsqlite_prepare_union(s, sums, cols, ".domains", ") GROUP BY domain ORDER BY domain");
    s->domain_placement = hsqlite_prepare_union(
        s,
        "SELECT sum(tracked), sum(delivered), sum(spam), sum(opened), sum(read),"
        " sum(bounced), sum(complained), sum(unchecked), sum(rescued) FROM (",
        cols, ".domains WHERE domain = ?1", ") GROUP BY domain");
    s->count_domains = hsqlite_prepare_union(s, "SELECT count(DISTINCT domain) FROM (",
                                             "SELECT domain FROM ", ".domains", ")");
    s->domain_names = hsqlite_prepare_union(s, "SELECT DISTINCT domain FROM (",
                                            "SELECT domain FROM ", ".domains", ") ORDER BY domain");
    return s->list_domains && s->domain_placement && s->count_domains && s->domain_names ? 0 : -1;
}

struct hstore *hstore_sqlite_open(const char *path, int nshards, char *errbuf, size_t errlen)
{
    if (nshards == 0)
        nshards = HSTORE_SHARDS_DEFAULT;
    if (nshards < 1 || nshards > HSTORE_MAX_SHARDS || (nshards & (nshards - 1))) {
        errbuf_set(errbuf, errlen, "hstore: %d files: not a power of two up to %d", nshards,
                   HSTORE_MAX_SHARDS);
        return NULL;
    }
    struct hsqlite *s = xcalloc(1, sizeof *s);
    s->base.ops = &hsqlite_ops;
    pthread_mutex_init(&s->r_lock, NULL);
    pthread_mutex_init(&s->p_lock, NULL);
    for (int k = 0; k < HSTORE_MAX_SHARDS; k++)
        pthread_mutex_init(&s->shard[k].w_lock, NULL);
    s->hash = hsqlite_mid_hash;
    if (hsqlite_open_files(s, path, nshards, errbuf, errlen) != 0) {
        hsqlite_free(&s->base);
        return NULL;
    }
    sqlite3 *w = s->shard[0].w;
    s->ins_user = db_prepare(w, "INSERT INTO users(email_id, domain, name, registered_at)"
                                " VALUES(?,?,?,?) ON CONFLICT DO NOTHING");
    s->upsert_domain = db_prepare(w, "INSERT INTO domains(domain, users, first_seen, last_seen)"
                                     " VALUES(?1, 1, ?2, ?2) ON CONFLICT(domain) DO UPDATE"
                                     " SET users = users + 1, last_seen = ?2");
    if (!s->ins_user || !s->upsert_domain || prepare_domains(s) != 0 ||
        hsqlite_prepare_stats(s) != 0 || hsqlite_prepare_analytics(s) != 0) {
        errbuf_set(errbuf, errlen, "cannot prepare statements on %s", path);
        hsqlite_free(&s->base);
        return NULL;
    }
    if (hsqlite_open_placement(s, errbuf, errlen) != 0) {
        hsqlite_free(&s->base);
        return NULL;
    }
    if (s->nshards > 1)
        log_info("hstore: copies spread over %d files (%s and %s.shard1..%d)", s->nshards, path,
                 path, s->nshards - 1);
    return &s->base;
}

static void hsqlite_free(struct hstore *store)
{
    struct hsqlite *s = hsqlite(store);
    hsqlite_close_placement(s);
    hsqlite_close_files(s);
    pthread_mutex_destroy(&s->r_lock);
    pthread_mutex_destroy(&s->p_lock);
    for (int k = 0; k < HSTORE_MAX_SHARDS; k++)
        pthread_mutex_destroy(&s->shard[k].w_lock);
    free(s);
}

static int apply_one(struct hsqlite *s, const struct user_event *e, size_t *added)
{
    sqlite3_stmt *st = s->ins_user;
    sqlite3_bind_text(st, 1, e->addr.norm, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, e->addr.domain, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, e->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, e->at, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return -1;
    if (sqlite3_changes(s->shard[0].w) == 0)
        return 0; /* seen before: a redelivery */
    st = s->upsert_domain;
    sqlite3_bind_text(st, 1, e->addr.domain, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, e->at, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return -1;
    (*added)++;
    return 0;
}

static int hsqlite_apply_events(struct hstore *store, const struct user_event *users, size_t nu,
                                const struct copy_event *copies, size_t nc, size_t *new_users,
                                size_t *new_copies)
{
    struct hsqlite *s = hsqlite(store);
    int rc = -1;
    struct hshard *h0 = &s->shard[0];
    int64_t entered[HAN_N] = {0};
    *new_users = *new_copies = 0;
    pthread_mutex_lock(&h0->w_lock);
    if (db_begin(h0->w) != 0)
        goto out;
    for (size_t i = 0; i < nu; i++) {
        if (apply_one(s, &users[i], new_users) != 0) {
            log_error("hstore: apply failed: %s", sqlite3_errmsg(h0->w));
            goto out;
        }
    }
    if (nc > 0 && hsqlite_apply_copies(s, copies, nc, new_copies, entered) != 0) {
        log_error("hstore: apply copies failed: %s", sqlite3_errmsg(h0->w));
        goto out;
    }
    rc = db_commit(h0->w);
    if (rc == 0)
        hstore_counted(store, entered);
out:
    if (rc != 0) {
        db_rollback(h0->w);
        *new_users = *new_copies = 0;
    }
    pthread_mutex_unlock(&h0->w_lock);
    return rc;
}

/* text - column i as a new string ("" for NULL) */
static char *text(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return xstrdup(t ? (const char *)t : "");
}

static int hsqlite_domains(struct hstore *store, struct hstore_domain **out, size_t *n)
{
    struct hsqlite *s = hsqlite(store);
    size_t cap = 16;
    int r;
    *n = 0;
    *out = xcalloc(cap, sizeof **out);
    pthread_mutex_lock(&s->r_lock);
    sqlite3_stmt *q = s->list_domains;
    while ((r = sqlite3_step(q)) == SQLITE_ROW) {
        if (*n == cap) {
            cap *= 2;
            *out = xreallocarray(*out, cap, sizeof **out);
        }
        struct hstore_domain *d = &(*out)[(*n)++];
        *d = (struct hstore_domain){
            .domain = text(q, 0),
            .users = sqlite3_column_int64(q, 1),
            .first_seen = text(q, 2),
            .last_seen = text(q, 3),
            .checked = sqlite3_column_int64(q, 5),
            .has_round = sqlite3_column_type(q, 6) != SQLITE_NULL,
            .last_round_at = sqlite3_column_int64(q, 6),
            .last_error = sqlite3_column_type(q, 7) != SQLITE_NULL ? text(q, 7) : NULL,
            .n = {.tracked = sqlite3_column_int64(q, 4),
                  .delivered = sqlite3_column_int64(q, 8),
                  .spam = sqlite3_column_int64(q, 9),
                  .opened = sqlite3_column_int64(q, 10),
                  .read = sqlite3_column_int64(q, 11),
                  .bounced = sqlite3_column_int64(q, 12),
                  .complained = sqlite3_column_int64(q, 13),
                  .unchecked = sqlite3_column_int64(q, 14),
                  .rescued = sqlite3_column_int64(q, 15)},
        };
    }
    sqlite3_reset(q);
    pthread_mutex_unlock(&s->r_lock);
    if (r != SQLITE_DONE) {
        for (size_t i = 0; i < *n; i++) { /* the backend does not call back into hstore.c */
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
    return 0;
}

static int64_t hsqlite_domain_count(struct hstore *store)
{
    struct hsqlite *s = hsqlite(store);
    return hsqlite_read_int(s, s->count_domains);
}

static int hsqlite_domain_placement(struct hstore *store, const char *domain,
                                    struct hplacement *out)
{
    struct hsqlite *s = hsqlite(store);
    sqlite3_stmt *q = s->domain_placement;
    pthread_mutex_lock(&s->r_lock);
    sqlite3_bind_text(q, 1, domain, -1, SQLITE_STATIC);
    int r = sqlite3_step(q);
    if (r == SQLITE_ROW)
        *out = (struct hplacement){
            .tracked = sqlite3_column_int64(q, 0),
            .delivered = sqlite3_column_int64(q, 1),
            .spam = sqlite3_column_int64(q, 2),
            .opened = sqlite3_column_int64(q, 3),
            .read = sqlite3_column_int64(q, 4),
            .bounced = sqlite3_column_int64(q, 5),
            .complained = sqlite3_column_int64(q, 6),
            .unchecked = sqlite3_column_int64(q, 7),
            .rescued = sqlite3_column_int64(q, 8),
        };
    sqlite3_reset(q);
    sqlite3_clear_bindings(q);
    pthread_mutex_unlock(&s->r_lock);
    return r == SQLITE_ROW ? 0 : r == SQLITE_DONE ? 1 : -1;
}

static int hsqlite_domain_names(struct hstore *store, char ***names, size_t *n)
{
    struct hsqlite *s = hsqlite(store);
    int r;
    size_t cap = 16;
    *n = 0;
    *names = xcalloc(cap, sizeof **names);
    pthread_mutex_lock(&s->r_lock);
    sqlite3_stmt *q = s->domain_names;
    while ((r = sqlite3_step(q)) == SQLITE_ROW) {
        if (*n == cap) {
            cap *= 2;
            *names = xreallocarray(*names, cap, sizeof **names);
        }
        (*names)[(*n)++] = xstrdup((const char *)sqlite3_column_text(q, 0));
    }
    sqlite3_reset(q);
    pthread_mutex_unlock(&s->r_lock);
    return r == SQLITE_DONE ? 0 : -1;
}
