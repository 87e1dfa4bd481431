/* hstore_stats.c - what the HTTP threads read: /mail_stats by email,
 * broadcast Message-ID or copy Message-ID, /all_mail_stats and the
 * tracked total. Every email's counters are the sums over the store's
 * files (hstore_int.h); a copy is read from its own file. Reader
 * connection, statements prepared at open, r_lock. */
#include "buf.h"
#include "db.h"
#include "hstore.h"
#include "hstore_int.h"
#include "timeutil.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

json_object *hstore_time_json(sqlite3_stmt *st, int i)
{
    if (sqlite3_column_type(st, i) == SQLITE_NULL)
        return NULL;
    char at[32];
    time_rfc3339_ms(sqlite3_column_int64(st, i), at, sizeof at);
    return json_object_new_string(at);
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
/* STATS_COLS summed over the files (a file that only holds check results
 * of an email has an empty broadcast_id) */
#define STATS_SUMS                                                                                 \
    "email_id, max(broadcast_id), sum(tracked), sum(delivered), sum(spam), sum(opened),"           \
    " sum(read), sum(bounced), max(checked_at)"

/* prepare_sums - "SELECT STATS_SUMS FROM (<every file's email_stats rows
 * matching where>) GROUP BY email_id <tail>" on the reader */
static sqlite3_stmt *prepare_sums(struct hstore *s, const char *where, const char *tail)
{
    struct buf b, arm;
    buf_init(&b, 64 * 1024);
    buf_init(&arm, 1024);
    buf_printf(&arm, ".email_stats%s", where);
    buf_printf(&b, "SELECT " STATS_SUMS " FROM (");
    hstore_union(s, &b, "SELECT " STATS_COLS " FROM ", buf_str(&arm));
    buf_printf(&b, ") GROUP BY email_id%s", tail);
    sqlite3_stmt *st = b.data ? db_prepare(s->r, buf_str(&b)) : NULL;
    buf_cleanup(&b);
    buf_cleanup(&arm);
    return st;
}

int hstore_prepare_stats(struct hstore *s)
{
    s->stats_by_id = prepare_sums(s, " WHERE email_id = ?1", "");
    s->stats_by_bid = prepare_sums(s, " WHERE broadcast_id = ?1", " ORDER BY email_id LIMIT 1");
    s->all_stats = prepare_sums(s, "", " ORDER BY email_id LIMIT ?1 OFFSET ?2");
    s->tracked_count = NULL;
    struct buf b;
    buf_init(&b, 64 * 1024);
    buf_printf(&b, "SELECT coalesce(sum(tracked), 0) FROM (");
    hstore_union(s, &b, "SELECT tracked FROM ", ".email_stats");
    buf_printf(&b, ")");
    if (b.data)
        s->tracked_count = db_prepare(s->r, buf_str(&b));
    buf_cleanup(&b);
    bool ok = s->stats_by_id && s->stats_by_bid && s->all_stats && s->tracked_count;
    for (int k = 0; k < s->nshards; k++) {
        char sql[512];
        snprintf(sql, sizeof sql,
                 "SELECT email_id, message_id, 1, placement = 2, placement = 3, opened, read,"
                 " bounced, checked_at, recipient, domain FROM %s.copies WHERE " HSTORE_COPY_MATCH,
                 s->shard[k].schema);
        s->shard[k].stats_copy = db_prepare(s->r, sql);
        ok = ok && s->shard[k].stats_copy;
    }
    return ok ? 0 : -1;
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
    int64_t key = s->hash(message_id);
    sqlite3_stmt *st = s->shard[hstore_shard_of(s, key)].stats_copy;
    sqlite3_bind_int64(st, 1, key);
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
    int r;
    pthread_mutex_lock(&s->r_lock);
    sqlite3_stmt *st = s->all_stats;
    sqlite3_bind_int64(st, 1, limit);
    sqlite3_bind_int64(st, 2, offset);
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        char key[24];
        snprintf(key, sizeof key, "%lld", (long long)sqlite3_column_int64(st, 0));
        json_object_object_add(all, key, stats_json(st));
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
    int64_t n = -1;
    pthread_mutex_lock(&s->r_lock);
    if (sqlite3_step(s->tracked_count) == SQLITE_ROW)
        n = sqlite3_column_int64(s->tracked_count, 0);
    sqlite3_reset(s->tracked_count);
    pthread_mutex_unlock(&s->r_lock);
    return n;
}
