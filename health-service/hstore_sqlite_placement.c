/* hstore_sqlite_placement.c - the SQLite backend's reads of placement by
 * sending identity and recipient domain over the copies sent since a time
 * (hstore_placement_counts) and of their time to inbox
 * (hstore_inbox_delays), from the rowid range of the copies sent since a
 * time (copy_batches, migration 8).
 *
 * Each is one statement over every file: each file groups its own copies
 * (a range of the covering index, then a sort by the groups), the outer
 * query sums the files' groups. It runs on a reader connection of its own
 * (every file attached, under p_lock), so a long read over millions of
 * copies never holds r_lock, which /mail_stats and the rounds' reads share.
 * Threads: the placement thread and HTTP threads (/providers). */
#include "hstore_sqlite.h"
#include "buf.h"
#include "db.h"
#include "errbuf.h"
#include "xalloc.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* union_sql - arm for each file (arm %s: its schema) joined by UNION ALL
 * between head and tail; caller frees */
static char *union_sql(const struct hsqlite *s, const char *head, const char *arm, const char *tail)
{
    struct buf b;
    buf_init(&b, 64 * 1024);
    int rc = buf_printf(&b, "%s", head);
    for (int k = 0; k < s->nshards; k++) {
        rc |= buf_printf(&b, "%s", k ? " UNION ALL " : "");
        rc |= buf_printf(&b, arm, s->shard[k].schema);
    }
    rc |= buf_printf(&b, "%s", tail);
    if (rc != 0) {
        buf_cleanup(&b);
        return NULL;
    }
    return buf_steal(&b);
}

/* prepare - sql (NULL: an earlier failure) on the placement reader */
static sqlite3_stmt *prepare(struct hsqlite *s, char *sql)
{
    sqlite3_stmt *st = sql ? db_prepare(s->p, sql) : NULL;
    free(sql);
    return st;
}

int hsqlite_open_placement(struct hsqlite *s, char *errbuf, size_t errlen)
{
    const char *path = sqlite3_db_filename(s->shard[0].w, "main");
    if (db_open(path, &s->p, errbuf, errlen) != 0)
        return -1;
    for (int k = 1; k < s->nshards; k++) {
        char sql[64];
        snprintf(sql, sizeof sql, "ATTACH DATABASE ?1 AS %s", s->shard[k].schema);
        sqlite3_stmt *st = db_prepare(s->p, sql);
        int r = SQLITE_ERROR;
        if (st) {
            sqlite3_bind_text(st, 1, sqlite3_db_filename(s->shard[k].w, "main"), -1, SQLITE_STATIC);
            r = sqlite3_step(st);
            sqlite3_finalize(st);
        }
        if (r != SQLITE_DONE) {
            errbuf_set(errbuf, errlen, "cannot attach store file %d: %s", k, sqlite3_errmsg(s->p));
            return -1;
        }
    }
    /* the precedence of struct hstore_placement_row: bounced, complained,
     * spam (placement 3), inbox (placement 2) */
    s->placement_counts = prepare(
        s, union_sql(s, "SELECT identity, domain, sum(n), sum(b), sum(c), sum(sp), sum(i) FROM (",
                     "SELECT identity, domain, count(*) AS n, sum(bounced = 1) AS b,"
                     " sum(bounced = 0 AND complained = 1) AS c,"
                     " sum(bounced = 0 AND complained = 0 AND placement = 3) AS sp,"
                     " sum(bounced = 0 AND complained = 0 AND placement = 2) AS i"
                     " FROM %1$s.copies WHERE rowid >= " HSTORE_SINCE_ROWID(
                         "?1") " AND sent_at >= ?1 GROUP BY identity, domain",
                     ") GROUP BY identity, domain ORDER BY identity, domain"));
    s->inbox_delays = prepare(
        s, union_sql(
               s, "SELECT domain, d, sum(n) FROM (",
               "SELECT domain, max(0, (found_at - sent_at + 999) / 1000) AS d, count(*) AS n"
               " FROM %1$s.copies WHERE rowid >= " HSTORE_SINCE_ROWID(
                   "?1") " AND sent_at >= ?1 AND placement = 2 AND found_at > 0 GROUP BY domain, d",
               ") GROUP BY domain, d ORDER BY domain, d"));
    if (!s->placement_counts || !s->inbox_delays) {
        errbuf_set(errbuf, errlen, "cannot prepare the placement statements: %s",
                   sqlite3_errmsg(s->p));
        return -1;
    }
    return 0;
}

void hsqlite_close_placement(struct hsqlite *s)
{
    db_close(s->p); /* with its statements */
    s->p = NULL;
    s->placement_counts = s->inbox_delays = NULL;
}

/* text_or_null - column i as a new string; NULL for NULL or "" */
static char *text_or_null(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t && *t ? xstrdup((const char *)t) : NULL;
}

int hsqlite_placement_counts(struct hstore *store, int64_t since_ms,
                             struct hstore_placement_row **out, size_t *n)
{
    struct hsqlite *s = hsqlite(store);
    size_t cap = 16;
    int r;
    *n = 0;
    *out = xcalloc(cap, sizeof **out);
    pthread_mutex_lock(&s->p_lock);
    sqlite3_stmt *q = s->placement_counts;
    sqlite3_bind_int64(q, 1, since_ms);
    while ((r = sqlite3_step(q)) == SQLITE_ROW) {
        if (*n == cap) {
            cap *= 2;
            *out = xreallocarray(*out, cap, sizeof **out);
        }
        struct hstore_placement_row *x = &(*out)[(*n)++];
        *x = (struct hstore_placement_row){
            .identity = text_or_null(q, 0),
            .domain = xstrdup((const char *)sqlite3_column_text(q, 1)),
            .copies = sqlite3_column_int64(q, 2),
            .bounced = sqlite3_column_int64(q, 3),
            .complained = sqlite3_column_int64(q, 4),
            .spam = sqlite3_column_int64(q, 5),
            .inbox = sqlite3_column_int64(q, 6),
        };
        x->checked = x->bounced + x->complained + x->spam + x->inbox;
    }
    sqlite3_reset(q);
    pthread_mutex_unlock(&s->p_lock);
    if (r == SQLITE_DONE)
        return 0;
    for (size_t i = 0; i < *n; i++) { /* the backend does not call back into hstore.c */
        free((*out)[i].identity);
        free((*out)[i].domain);
    }
    free(*out);
    *out = NULL;
    *n = 0;
    return -1;
}

int hsqlite_inbox_delays(struct hstore *store, int64_t since_ms, struct hstore_delay_row **out,
                         size_t *n)
{
    struct hsqlite *s = hsqlite(store);
    size_t cap = 16;
    int r;
    *n = 0;
    *out = xcalloc(cap, sizeof **out);
    pthread_mutex_lock(&s->p_lock);
    sqlite3_stmt *q = s->inbox_delays;
    sqlite3_bind_int64(q, 1, since_ms);
    while ((r = sqlite3_step(q)) == SQLITE_ROW) {
        if (*n == cap) {
            cap *= 2;
            *out = xreallocarray(*out, cap, sizeof **out);
        }
        (*out)[(*n)++] = (struct hstore_delay_row){
            .domain = xstrdup((const char *)sqlite3_column_text(q, 0)),
            .delay_s = sqlite3_column_int64(q, 1),
            .count = sqlite3_column_int64(q, 2),
        };
    }
    sqlite3_reset(q);
    pthread_mutex_unlock(&s->p_lock);
    if (r == SQLITE_DONE)
        return 0;
    for (size_t i = 0; i < *n; i++)
        free((*out)[i].domain);
    free(*out);
    *out = NULL;
    *n = 0;
    return -1;
}
