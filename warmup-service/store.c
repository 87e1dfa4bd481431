/* store.c - warmup-service SQLite store (users + outbox). See store.h.
 * Locks: w_lock guards the writer connection and its statements; r_lock
 * the reader. Never held together. */
#include "store.h"
#include "store_int.h"
#include "db.h"
#include "log.h"
#include "outbox.h"
#include "xalloc.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

/* migrations[i]: schema version i -> i+1; never edit a released one */
static const char *const migrations[] = {
    /* 1: users and the event outbox */
    "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL,"
    " email_id TEXT NOT NULL, domain TEXT NOT NULL, created_at TEXT NOT NULL);"
    "CREATE UNIQUE INDEX users_email_id ON users(email_id COLLATE NOCASE);" OUTBOX_SCHEMA_SQL,
    /* 2: broadcast emails and their per-recipient copies (the send queue) */
    STORE_EMAILS_SCHEMA_SQL,
};

struct store *store_open(const char *path, char *errbuf, size_t errlen)
{
    struct store *s = xcalloc(1, sizeof *s);
    pthread_mutex_init(&s->w_lock, NULL);
    pthread_mutex_init(&s->r_lock, NULL);
    pthread_mutex_init(&s->gc_mu, NULL);
    pthread_cond_init(&s->gc_cv, NULL);
    s->gc_tail = &s->gc_head;
    if (db_open_store(path, migrations, sizeof migrations / sizeof migrations[0], &s->w, &s->r,
                      errbuf, errlen) != 0) {
        store_free(s);
        return NULL;
    }
    s->ins_user = db_prepare(s->w, "INSERT INTO users(name, email_id, domain, created_at)"
                                   " VALUES(?,?,?,?) ON CONFLICT DO NOTHING");
    s->list_users = db_prepare(s->r, "SELECT name, email_id, created_at FROM users"
                                     " ORDER BY id LIMIT ? OFFSET ?");
    s->list_ids =
        db_prepare(s->r, "SELECT id, email_id FROM users WHERE id > ? ORDER BY id LIMIT ?");
    s->count_users = db_prepare(s->r, "SELECT count(*) FROM users");
    s->backfill = db_prepare(s->w, "INSERT INTO deliveries(email_id, user_id, recipient, name)"
                                   " SELECT id, ?1, ?2, ?3 FROM emails");
    s->backfill_count = db_prepare(s->w, "UPDATE emails SET n_pending = n_pending + 1");
    if (!s->ins_user || !s->backfill || !s->backfill_count || !s->list_users || !s->list_ids ||
        !s->count_users) {
        snprintf(errbuf, errlen, "cannot prepare statements on %s", path);
        store_free(s);
        return NULL;
    }
    return s;
}

void store_free(struct store *s)
{
    if (!s)
        return;
    db_close(s->w); /* finalizes its statements */
    db_close(s->r);
    pthread_mutex_destroy(&s->w_lock);
    pthread_mutex_destroy(&s->r_lock);
    pthread_mutex_destroy(&s->gc_mu);
    pthread_cond_destroy(&s->gc_cv);
    free(s);
}

static int insert_user(struct store *s, const struct user_reg *u, const char *topic, int *result)
{
    sqlite3_stmt *st = s->ins_user;
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, u->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, u->email_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, u->domain, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, u->created_at, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE) {
        log_error("store: insert user failed: %s", sqlite3_errmsg(s->w));
        sqlite3_reset(st);
        return -1;
    }
    sqlite3_reset(st);
    if (sqlite3_changes(s->w) == 0) {
        *result = STORE_DUPLICATE;
        return 0;
    }
    *result = STORE_INSERTED;
    /* backfill: a copy of every earlier email for the new user */
    sqlite3_stmt *b = s->backfill;
    sqlite3_bind_int64(b, 1, sqlite3_last_insert_rowid(s->w));
    sqlite3_bind_text(b, 2, u->email_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(b, 3, u->name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(b);
    sqlite3_reset(b);
    if (rc == SQLITE_DONE && sqlite3_changes(s->w) > 0) {
        rc = sqlite3_step(s->backfill_count);
        sqlite3_reset(s->backfill_count);
    }
    if (rc != SQLITE_DONE) {
        log_error("store: backfill failed: %s", sqlite3_errmsg(s->w));
        return -1;
    }
    return outbox_add(s->w, topic, u->domain, u->event);
}

int store_register_batch(struct store *s, const struct user_reg *users, size_t n, const char *topic,
                         int *result)
{
    int rc = -1;
    pthread_mutex_lock(&s->w_lock);
    if (db_begin(s->w) != 0)
        goto out;
    for (size_t i = 0; i < n; i++)
        if (insert_user(s, &users[i], topic, &result[i]) != 0)
            goto out;
    rc = db_commit(s->w);
out:
    if (rc != 0)
        db_rollback(s->w);
    pthread_mutex_unlock(&s->w_lock);
    return rc;
}

/* one caller of store_register_one, on its own stack */
struct gc_req {
    const struct user_reg *u;
    const char *topic;
    int result, rc;
    bool done;
    struct gc_req *next;
};

/* gc_commit - one transaction for the taken requests (the leader, without
 * gc_mu); every request gets rc and, on success, its result */
static void gc_commit(struct store *s, struct gc_req *list)
{
    int rc = -1;
    pthread_mutex_lock(&s->w_lock);
    if (db_begin(s->w) == 0) {
        rc = 0;
        for (struct gc_req *r = list; r && rc == 0; r = r->next)
            rc = insert_user(s, r->u, r->topic, &r->result);
        if (rc == 0)
            rc = db_commit(s->w);
        if (rc != 0)
            db_rollback(s->w);
    }
    pthread_mutex_unlock(&s->w_lock);
    for (struct gc_req *r = list; r; r = r->next)
        r->rc = rc;
}

int store_register_one(struct store *s, const struct user_reg *u, const char *topic, int *result)
{
    struct gc_req me = {.u = u, .topic = topic};
    pthread_mutex_lock(&s->gc_mu);
    *s->gc_tail = &me;
    s->gc_tail = &me.next;
    while (!me.done) {
        if (s->gc_busy) { /* a leader is committing: the next one takes us */
            pthread_cond_wait(&s->gc_cv, &s->gc_mu);
            continue;
        }
        struct gc_req *list = s->gc_head; /* lead: take everything waiting */
        s->gc_head = NULL;
        s->gc_tail = &s->gc_head;
        s->gc_busy = true;
        pthread_mutex_unlock(&s->gc_mu);
        gc_commit(s, list);
        pthread_mutex_lock(&s->gc_mu);
        for (struct gc_req *r = list, *next; r; r = next) {
            next = r->next; /* r may return (and go away) once done is set */
            r->done = true;
        }
        s->gc_busy = false;
        pthread_cond_broadcast(&s->gc_cv);
    }
    pthread_mutex_unlock(&s->gc_mu);
    *result = me.result;
    return me.rc;
}

static json_object *col_string(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return json_object_new_string(t ? (const char *)t : "");
}

json_object *store_list_users(struct store *s, int64_t limit, int64_t offset)
{
    json_object *arr = json_object_new_array();
    pthread_mutex_lock(&s->r_lock);
    sqlite3_stmt *st = s->list_users;
    sqlite3_bind_int64(st, 1, limit);
    sqlite3_bind_int64(st, 2, offset);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        json_object *u = json_object_new_object();
        json_object_object_add(u, "name", col_string(st, 0));
        json_object_object_add(u, "email_id", col_string(st, 1));
        json_object_object_add(u, "created_at", col_string(st, 2));
        json_object_array_add(arr, u);
    }
    sqlite3_reset(st);
    pthread_mutex_unlock(&s->r_lock);
    if (rc != SQLITE_DONE) {
        log_error("store: list users failed: %s", sqlite3_errstr(rc));
        json_object_put(arr);
        return NULL;
    }
    return arr;
}

int store_email_ids_page(struct store *s, int64_t *after, int max,
                         void (*fn)(void *arg, const char *email_id), void *arg)
{
    int n = 0, rc;
    pthread_mutex_lock(&s->r_lock);
    sqlite3_stmt *st = s->list_ids;
    sqlite3_bind_int64(st, 1, *after);
    sqlite3_bind_int(st, 2, max);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        *after = sqlite3_column_int64(st, 0);
        const unsigned char *t = sqlite3_column_text(st, 1);
        fn(arg, t ? (const char *)t : "");
        n++;
    }
    sqlite3_reset(st);
    pthread_mutex_unlock(&s->r_lock);
    return rc == SQLITE_DONE ? n : -1;
}

int64_t store_user_count(struct store *s)
{
    int64_t n = -1;
    pthread_mutex_lock(&s->r_lock);
    if (sqlite3_step(s->count_users) == SQLITE_ROW)
        n = sqlite3_column_int64(s->count_users, 0);
    sqlite3_reset(s->count_users);
    pthread_mutex_unlock(&s->r_lock);
    return n;
}

bool store_ping(struct store *s)
{
    return store_user_count(s) >= 0;
}
