/* hstore_stats.c - what the HTTP threads read: /mail_stats by email,
 * broadcast Message-ID or copy Message-ID, /all_mail_stats and the
 * tracked total. Every email's counters are the sums over the store's
 * files (hstore_int.h); a copy is read from its own file. Reader
 * connection, statements prepared at open, r_lock. */
#include "db.h"
#include "hstore.h"
#include "hstore_int.h"
#include "timeutil.h"
#include "xalloc.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* the /mail_stats figures of an email (summed over the files) or a copy */
struct stats {
    int64_t email_id;
    int64_t n[6]; /* tracked, delivered, spam, opened, read, bounced */
    int64_t checked_at;
    bool checked;
    char *message_id; /* owned; the first non-empty one */
};

/* stats_add_row - add a row of STATS_COLS (email_id, broadcast_id,
 * tracked, delivered, spam, opened, read, bounced, checked_at) to t */
static void stats_add_row(struct stats *t, sqlite3_stmt *st)
{
    t->email_id = sqlite3_column_int64(st, 0);
    const char *mid = (const char *)sqlite3_column_text(st, 1);
    if (!t->message_id || (!*t->message_id && mid && *mid)) {
        free(t->message_id);
        t->message_id = xstrdup(mid ? mid : "");
    }
    for (int k = 0; k < 6; k++)
        t->n[k] += sqlite3_column_int64(st, 2 + k);
    if (sqlite3_column_type(st, 8) != SQLITE_NULL) {
        int64_t at = sqlite3_column_int64(st, 8);
        if (!t->checked || at > t->checked_at)
            t->checked_at = at;
        t->checked = true;
    }
}

/* stats_json - the contract's /mail_stats object of t; frees t's string */
static json_object *stats_json(struct stats *t)
{
    static const char *const names[] = {"tracked", "delivered", "spam",
                                        "opened",  "read",      "bounced"};
    json_object *o = json_object_new_object();
    json_object_object_add(o, "email_id", json_object_new_int64(t->email_id));
    json_object_object_add(o, "message_id", json_object_new_string(t->message_id));
    for (int k = 0; k < 6; k++)
        json_object_object_add(o, names[k], json_object_new_int64(t->n[k]));
    int64_t pending = t->n[0] - t->n[1] - t->n[2] - t->n[5];
    json_object_object_add(o, "pending", json_object_new_int64(pending > 0 ? pending : 0));
    json_object *at = NULL;
    if (t->checked) {
        char buf[32];
        time_rfc3339_ms(t->checked_at, buf, sizeof buf);
        at = json_object_new_string(buf);
    }
    json_object_object_add(o, "checked_at", at);
    free(t->message_id);
    t->message_id = NULL;
    return o;
}

#define STATS_COLS                                                                                 \
    "email_id, broadcast_id, tracked, delivered, spam, opened, read, bounced, checked_at"

int hstore_prepare_stats(struct hstore *s)
{
    /* /all_mail_stats: every file's rows, summed per email (a list, so
     * one statement over the files) */
    s->all_stats = hstore_prepare_union(
        s,
        "SELECT email_id, max(broadcast_id), sum(tracked), sum(delivered), sum(spam),"
        " sum(opened), sum(read), sum(bounced), max(checked_at) FROM (",
        "SELECT " STATS_COLS " FROM ", ".email_stats",
        ") GROUP BY email_id ORDER BY email_id LIMIT ?1 OFFSET ?2");
    s->tracked_count = hstore_prepare_union(s, "SELECT coalesce(sum(tracked), 0) FROM (",
                                            "SELECT tracked FROM ", ".email_stats", ")");
    bool ok = s->all_stats && s->tracked_count;
    /* /mail_stats: one primary-key lookup per file, summed here (a GROUP
     * BY over the files' rows cost twice the request) */
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
                 " bounced, checked_at, recipient, domain FROM %s.copies WHERE " HSTORE_COPY_MATCH,
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
static int email_of_broadcast(struct hstore *s, const char *broadcast_id, int64_t *id)
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

int hstore_stats_email(struct hstore *s, int64_t email_id, const char *broadcast_id,
                       json_object **out)
{
    struct stats t = {0};
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
        *out = stats_json(&t);
    free(t.message_id);
    return rc;
}

int hstore_stats_copy(struct hstore *s, const char *message_id, json_object **out)
{
    int rc = -1;
    pthread_mutex_lock(&s->r_lock);
    int64_t key = s->hash(message_id);
    sqlite3_stmt *st = s->shard[hstore_shard_of(s, key)].stats_copy;
    sqlite3_bind_int64(st, 1, key);
    sqlite3_bind_text(st, 2, message_id, -1, SQLITE_STATIC);
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
        struct stats t = {0};
        stats_add_row(&t, st);
        *out = stats_json(&t);
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
    int r;
    pthread_mutex_lock(&s->r_lock);
    sqlite3_stmt *st = s->all_stats;
    sqlite3_bind_int64(st, 1, limit);
    sqlite3_bind_int64(st, 2, offset);
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        char key[24];
        snprintf(key, sizeof key, "%lld", (long long)sqlite3_column_int64(st, 0));
        struct stats t = {0};
        stats_add_row(&t, st);
        json_object_object_add(all, key, stats_json(&t));
    }
    sqlite3_reset(st);
    pthread_mutex_unlock(&s->r_lock);
    if (r != SQLITE_DONE) {
        json_object_put(all);
        return NULL;
    }
    return all;
}

int64_t hstore_tracked_count(struct hstore *s)
{
    return hstore_read_int(s, s->tracked_count);
}
