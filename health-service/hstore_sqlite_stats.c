/* hstore_sqlite_stats.c - what the HTTP threads read from the SQLite
 * store: /mail_stats by email, broadcast Message-ID or copy Message-ID,
 * /all_mail_stats and the tracked total. Every email's counters are the
 * sums over the store's files (hstore_sqlite.h); a copy is read from its
 * own file. Reader connection, statements prepared at open, r_lock. */
#include "hstore_sqlite.h"
#include "db.h"
#include "xalloc.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* stats_add_row - add a row of STATS_COLS (email_id, broadcast_id,
 * tracked, delivered, spam, opened, read, bounced, checked_at,
 * complained, unchecked, rescued) to t; its message_id is the first
 * non-empty one */
static void stats_add_row(struct hstore_stats *t, sqlite3_stmt *st)
{
    t->email_id = sqlite3_column_int64(st, 0);
    const char *mid = (const char *)sqlite3_column_text(st, 1);
    if (!t->message_id || (!*t->message_id && mid && *mid)) {
        free(t->message_id);
        t->message_id = xstrdup(mid ? mid : "");
    }
    t->n.tracked += sqlite3_column_int64(st, 2);
    t->n.delivered += sqlite3_column_int64(st, 3);
    t->n.spam += sqlite3_column_int64(st, 4);
    t->n.opened += sqlite3_column_int64(st, 5);
    t->n.read += sqlite3_column_int64(st, 6);
    t->n.bounced += sqlite3_column_int64(st, 7);
    if (sqlite3_column_type(st, 8) != SQLITE_NULL) {
        int64_t at = sqlite3_column_int64(st, 8);
        if (!t->checked || at > t->checked_at)
            t->checked_at = at;
        t->checked = true;
    }
    t->n.complained += sqlite3_column_int64(st, 9);
    t->n.unchecked += sqlite3_column_int64(st, 10);
    t->n.rescued += sqlite3_column_int64(st, 11);
}

/* stats_free - n rows made by stats_add_row (the backend does not call
 * back into hstore.c) */
static void stats_free(struct hstore_stats *t, size_t n)
{
    for (size_t i = 0; t && i < n; i++)
        free(t[i].message_id);
    free(t);
}

#define STATS_COLS                                                                                 \
    "email_id, broadcast_id, tracked, delivered, spam, opened, read, bounced, checked_at,"         \
    " complained, unchecked, rescued"

int hsqlite_prepare_stats(struct hsqlite *s)
{
    /* /all_mail_stats: every file's rows, summed per email (a list, so
     * one statement over the files) */
    s->all_stats = hsqlite_prepare_union(
        s,
        "SELECT email_id, max(broadcast_id), sum(tracked), sum(delivered), sum(spam),"
        " sum(opened), sum(read), sum(bounced), max(checked_at), sum(complained),"
        " sum(unchecked), sum(rescued) FROM (",
        "SELECT " STATS_COLS " FROM ", ".email_stats",
        ") GROUP BY email_id ORDER BY email_id LIMIT ?1 OFFSET ?2");
    s->tracked_count = hsqlite_prepare_union(s, "SELECT coalesce(sum(tracked), 0) FROM (",
                                             "SELECT tracked FROM ", ".email_stats", ")");
    bool ok = s->all_stats && s->tracked_count;
    /* /mail_stats: one primary-key lookup per file, summed here */
    for (int k = 0; k < s->nshards; k++) {
        struct hshard *h = &s->shard[k];
        char sql[512];
        snprintf(sql, sizeof sql, "SELECT " STATS_COLS " FROM %s.email_stats WHERE email_id = ?1",
                 h->schema);
        h->stats_by_id = db_prepare(s->r, sql);
        snprintf(sql, sizeof sql,
                 "SELECT email_id FROM %s.email_stats WHERE broadcast_id = ?1"
                 " ORDER BY email_id LIMIT 1",
                 h->schema);
        h->stats_by_bid = db_prepare(s->r, sql);
        snprintf(sql, sizeof sql,
                 "SELECT email_id, message_id, 1, placement = 2, placement = 3, opened, read,"
                 " bounced, checked_at, complained, placement = 4, rescued, recipient, domain"
                 " FROM %s.copies "
                 "WHERE " HSTORE_COPY_MATCH,
                 h->schema);
        h->stats_copy = db_prepare(s->r, sql);
        ok = ok && h->stats_by_id && h->stats_by_bid && h->stats_copy;
    }
    return ok ? 0 : -1;
}

/* step_one - step st once: 1 a row (left for the caller to read and
 * reset), 0 none, -1 error (st reset either way unless 1) */
static int step_one(sqlite3_stmt *st)
{
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW)
        return 1;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return r == SQLITE_DONE ? 0 : -1;
}

/* done_one - reset a statement step_one left on a row */
static void done_one(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st); /* no pointer to the caller's string kept */
}

/* email_of_broadcast - the (lowest) email_id of a broadcast Message-ID in
 * any file: 0 and *id, 1 unknown, -1 error; r_lock held */
static int email_of_broadcast(struct hsqlite *s, const char *broadcast_id, int64_t *id)
{
    int rc = 1;
    for (int k = 0; k < s->nshards; k++) {
        sqlite3_stmt *st = s->shard[k].stats_by_bid;
        sqlite3_bind_text(st, 1, broadcast_id, -1, SQLITE_STATIC);
        int r = step_one(st);
        if (r < 0)
            return -1;
        if (r == 1) {
            int64_t v = sqlite3_column_int64(st, 0);
            if (rc == 1 || v < *id)
                *id = v;
            rc = 0;
            done_one(st);
        }
    }
    return rc;
}

int hsqlite_stats_email(struct hstore *store, int64_t email_id, const char *broadcast_id,
                        struct hstore_stats *out)
{
    struct hsqlite *s = hsqlite(store);
    struct hstore_stats t = {0};
    int rc = 0;
    pthread_mutex_lock(&s->r_lock);
    if (broadcast_id)
        rc = email_of_broadcast(s, broadcast_id, &email_id);
    bool found = false;
    for (int k = 0; rc == 0 && k < s->nshards; k++) {
        sqlite3_stmt *st = s->shard[k].stats_by_id;
        sqlite3_bind_int64(st, 1, email_id);
        int r = step_one(st);
        if (r < 0)
            rc = -1;
        if (r == 1) {
            stats_add_row(&t, st);
            found = true;
            done_one(st);
        }
    }
    pthread_mutex_unlock(&s->r_lock);
    if (rc == 0 && !found)
        rc = 1;
    if (rc == 0)
        *out = t;
    else
        free(t.message_id);
    return rc;
}

int hsqlite_stats_copy(struct hstore *store, const char *message_id, struct hstore_stats *out)
{
    struct hsqlite *s = hsqlite(store);
    int rc = -1;
    pthread_mutex_lock(&s->r_lock);
    int64_t key = s->hash(message_id);
    sqlite3_stmt *st = s->shard[hsqlite_shard_of(s, key)].stats_copy;
    sqlite3_bind_int64(st, 1, key);
    sqlite3_bind_text(st, 2, message_id, -1, SQLITE_STATIC);
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
        *out = (struct hstore_stats){0};
        stats_add_row(out, st);
        out->recipient = xstrdup((const char *)sqlite3_column_text(st, 12));
        out->domain = xstrdup((const char *)sqlite3_column_text(st, 13));
        rc = 0;
    } else if (r == SQLITE_DONE) {
        rc = 1;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    pthread_mutex_unlock(&s->r_lock);
    return rc;
}

int hsqlite_all_stats(struct hstore *store, int64_t limit, int64_t offset,
                      struct hstore_stats **out, size_t *n)
{
    struct hsqlite *s = hsqlite(store);
    size_t cap = 16;
    int r;
    *n = 0;
    *out = xcalloc(cap, sizeof **out);
    pthread_mutex_lock(&s->r_lock);
    sqlite3_stmt *st = s->all_stats;
    sqlite3_bind_int64(st, 1, limit);
    sqlite3_bind_int64(st, 2, offset);
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap *= 2;
            *out = xreallocarray(*out, cap, sizeof **out);
        }
        struct hstore_stats *t = &(*out)[(*n)++];
        *t = (struct hstore_stats){0};
        stats_add_row(t, st);
    }
    sqlite3_reset(st);
    pthread_mutex_unlock(&s->r_lock);
    if (r != SQLITE_DONE) {
        stats_free(*out, *n);
        *out = NULL;
        *n = 0;
        return -1;
    }
    return 0;
}

int64_t hsqlite_tracked_count(struct hstore *store)
{
    struct hsqlite *s = hsqlite(store);
    return hsqlite_read_int(s, s->tracked_count);
}
