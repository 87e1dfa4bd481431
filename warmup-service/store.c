/* store.c - the SQLite backend of store.h: open and migrate, users, the
 * outbox rows of their events, the registration thread; store_emails.c
 * holds emails and copies. Results are heap copies the caller frees.
 * Locks: w_lock guards the writer connection and its statements; r_lock
 * the reader. Never held together. gc_mu guards the registration queue.
 * The registration thread (gc_main) takes every queued registration,
 * commits them in one transaction under w_lock and calls their done(). */
#include "store.h"
#include "errbuf.h"
#include "store_cluster.h"
#include "store_fanout.h"
#include "store_history.h"
#include "store_int.h"
#include "store_pg.h"
#include "db.h"
#include "log.h"
#include "outbox.h"
#include "timeutil.h"
#include "xalloc.h"

#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* migrations[i]: schema version i -> i+1; never edit a released one */
static const char *const migrations[] = {
    /* 1: users and the event outbox */
    "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL,"
    " email_id TEXT NOT NULL, domain TEXT NOT NULL, created_at TEXT NOT NULL);"
    "CREATE UNIQUE INDEX users_email_id ON users(email_id COLLATE NOCASE);" OUTBOX_SCHEMA_SQL,
    /* 2: broadcast emails and their per-recipient copies (the send queue) */
    STORE_EMAILS_SCHEMA_SQL,
    /* 3: the claim index holds only claimable copies */
    STORE_CLAIM_INDEX_SQL,
    /* 4: the suppression list */
    STORE_SUPPRESS_SCHEMA_SQL,
    /* 5: recipient domains as lanes, identities' day counts */
    STORE_LANES_SCHEMA_SQL,
    /* 6: sending identities and their providers' states */
    STORE_IDENTITIES_SCHEMA_SQL,
    /* 7: templates, attributes, campaigns, uploads, imports */
    STORE_CAMPAIGNS_SCHEMA_SQL,
    /* 8: transactional requests by idempotency key */
    STORE_MESSAGE_REQUESTS_SQL,
    /* 9: the background fan-out (store_fanout.h) */
    STORE_FANOUT_SCHEMA_SQL,
    /* 10: history indexes and archives (store_history.h) */
    STORE_HISTORY_SCHEMA_SQL,
    /* 11: the instance holding a lease */
    STORE_LEASE_OWNER_SQL,
    /* 12: PostgreSQL's deliveries indexes (store_pg.h) */
    "SELECT 1",
    /* 13: PostgreSQL's users trigger, once per statement (store_pg.h) */
    "SELECT 1",
};

/* PostgreSQL: the latest schema at once, then no-ops (store_pg.h) */
static const char *const pg_migrations[] = {
    STORE_PG_SCHEMA_SQL,
    "SELECT 1",
    "SELECT 1",
    "SELECT 1",
    "SELECT 1",
    "SELECT 1",
    "SELECT 1",
    "SELECT 1",
    "SELECT 1",
    "SELECT 1",
    "SELECT 1",
    STORE_PG_INDEXES_12_SQL,
    STORE_PG_USERS_TRIGGER_13_SQL,
};
_Static_assert(sizeof pg_migrations == sizeof migrations, "one version count for both engines");

static void *gc_main(void *arg);

/* open_pg - the writer and reader connections to url, the schema migrated */
static int open_pg(struct store *s, const char *url, char *errbuf, size_t errlen)
{
    s->wq = sqldb_open_pg(url, errbuf, errlen);
    if (!s->wq || sqldb_foreign_schema(s->wq, "copies", "health-service", errbuf, errlen) != 0)
        return -1;
    if (sqldb_migrate(s->wq, pg_migrations, sizeof pg_migrations / sizeof pg_migrations[0], errbuf,
                      errlen) != 0)
        return -1;
    s->rq = sqldb_open_pg(url, errbuf, errlen);
    if (s->rq)
        sqldb_custom_plans(s->rq); /* /history's plans follow its filters' values */
    s->cq = s->rq ? sqldb_open_pg(url, errbuf, errlen) : NULL;
    s->kq = s->cq ? sqldb_open_pg(url, errbuf, errlen) : NULL;
    return s->kq ? 0 : -1;
}

/* instance_id - host:pid:random, the name of this process's leases */
static void instance_id(char *buf, size_t len)
{
    char host[64] = "";
    unsigned char rnd[4] = {0};
    if (gethostname(host, sizeof host - 1) != 0)
        snprintf(host, sizeof host, "host");
    if (RAND_bytes(rnd, sizeof rnd) != 1)
        memset(rnd, 0, sizeof rnd);
    snprintf(buf, len, "%.63s:%ld:%02x%02x%02x%02x", host, (long)getpid(), rnd[0], rnd[1], rnd[2],
             rnd[3]);
}

struct store *store_open(const char *path, char *errbuf, size_t errlen)
{
    struct store *s = xcalloc(1, sizeof *s);
    pthread_mutex_init(&s->w_lock, NULL);
    pthread_mutex_init(&s->r_lock, NULL);
    pthread_mutex_init(&s->c_lock, NULL);
    pthread_mutex_init(&s->k_lock, NULL);
    pthread_mutex_init(&s->gc_mu, NULL);
    pthread_cond_init(&s->gc_cv, NULL);
    s->gc_tail = &s->gc_head;
    instance_id(s->instance, sizeof s->instance);
    if (sqldb_is_url(path)) {
        s->pg = true;
        if (open_pg(s, path, errbuf, errlen) != 0) {
            store_free(s);
            return NULL;
        }
    } else {
        if (db_open_store(path, migrations, sizeof migrations / sizeof migrations[0], NULL, &s->w,
                          &s->r, errbuf, errlen) != 0) {
            store_free(s);
            return NULL;
        }
        s->wq = sqldb_wrap_sqlite(s->w);
        s->rq = sqldb_wrap_sqlite(s->r);
    }
    s->ins_user = sqldb_prepare(s->wq, "INSERT INTO users(name, email_id, domain, created_at, lane,"
                                       " attributes) VALUES(?,?,?,?,?,?) ON CONFLICT DO NOTHING"
                                       " RETURNING id");
    s->ins_domain =
        sqldb_prepare(s->wq, "INSERT INTO domains(name) VALUES(?) ON CONFLICT DO NOTHING");
    s->get_lane = sqldb_prepare(s->wq, "SELECT id FROM domains WHERE name = ?");
    s->list_users = sqldb_prepare(s->rq, "SELECT name, email_id, created_at, attributes FROM users"
                                         " ORDER BY id LIMIT ? OFFSET ?");
    s->list_ids =
        sqldb_prepare(s->rq, "SELECT id, email_id FROM users WHERE id > ? ORDER BY id LIMIT ?");
    s->count_users = sqldb_prepare(s->rq, "SELECT count(*) FROM users");
    s->backfill = sqldb_prepare(s->wq, "INSERT INTO deliveries(email_id, user_id, recipient, name,"
                                       " lane, data) SELECT id, ?1, ?2, ?3, ?4, ?5 FROM emails"
                                       " WHERE kind = 0 AND NOT EXISTS"
                                       " (SELECT 1 FROM suppressions WHERE address = ?2)");
    s->backfill_count =
        sqldb_prepare(s->wq, "UPDATE emails SET n_pending = n_pending + 1 WHERE kind = 0");
    if (!s->ins_user || !s->ins_domain || !s->get_lane || !s->backfill || !s->backfill_count ||
        !s->list_users || !s->list_ids || !s->count_users || store_prepare_sender(s) != 0 ||
        store_suppress_open(s) != 0) {
        errbuf_set(errbuf, errlen, "cannot prepare statements on %s",
                   s->pg ? "the PostgreSQL database" : path);
        store_free(s);
        return NULL;
    }
    int live;
    int64_t supp;
    if (s->pg && store_cluster_beat(s, time_now_ms(), &live, &supp) != 0) {
        /* before any claim: another instance releases leases naming an
         * instance it has not seen */
        errbuf_set(errbuf, errlen, "cannot write this instance's heartbeat");
        store_free(s);
        return NULL;
    }
    if (pthread_create(&s->gc_thread, NULL, gc_main, s) != 0) {
        errbuf_set(errbuf, errlen, "cannot start the registration thread");
        store_free(s);
        return NULL;
    }
    s->gc_started = true;
    return s;
}

void store_free(struct store *s)
{
    if (!s)
        return;
    if (s->gc_started) { /* commits what is still queued, then ends */
        pthread_mutex_lock(&s->gc_mu);
        s->gc_stop = true;
        pthread_cond_signal(&s->gc_cv);
        pthread_mutex_unlock(&s->gc_mu);
        pthread_join(s->gc_thread, NULL);
    }
    store_cluster_leave(s);
    sqldb_close(s->wq); /* with their statements, before the connections */
    sqldb_close(s->rq);
    sqldb_close(s->cq);
    sqldb_close(s->kq);
    db_close(s->w); /* finalizes its statements */
    db_close(s->r);
    pthread_mutex_destroy(&s->w_lock);
    pthread_mutex_destroy(&s->r_lock);
    pthread_mutex_destroy(&s->c_lock);
    pthread_mutex_destroy(&s->k_lock);
    pthread_mutex_destroy(&s->gc_mu);
    pthread_cond_destroy(&s->gc_cv);
    free(s);
}

/* insert_user - the user, its backfill (*backfilled copies, may be NULL)
 * and its event, inside the caller's transaction */
/* lane_of - the lane of a domain, made at its first user; 0 on error */
static int64_t lane_of(struct store *s, const char *domain)
{
    int64_t lane = 0;
    sqldb_bind_text(s->ins_domain, 1, domain, -1);
    int rc = sqldb_step(s->ins_domain);
    sqldb_reset(s->ins_domain);
    if (rc == SQLDB_DONE) {
        sqldb_bind_text(s->get_lane, 1, domain, -1);
        if (sqldb_step(s->get_lane) == SQLDB_ROW)
            lane = sqldb_column_int64(s->get_lane, 0);
        sqldb_reset(s->get_lane);
    }
    if (lane == 0)
        log_error("store: the lane of %s: %s", domain, sqldb_errmsg(s->wq));
    return lane;
}

static int insert_user(struct store *s, const struct user_reg *u, const char *topic, int *result,
                       int64_t *backfilled)
{
    struct sqldb_stmt *st = s->ins_user;
    int64_t lane = lane_of(s, u->domain);
    if (lane == 0)
        return -1;
    sqldb_reset(st);
    sqldb_bind_int64(st, 5, lane);
    sqldb_bind_text(st, 1, u->name, -1);
    sqldb_bind_text(st, 2, u->address, -1);
    sqldb_bind_text(st, 3, u->domain, -1);
    sqldb_bind_text(st, 4, u->created_at, -1);
    sqldb_bind_text(st, 6, u->attributes, -1);
    int r = sqldb_step(st);
    int64_t user_id = r == SQLDB_ROW ? sqldb_column_int64(st, 0) : 0;
    sqldb_reset(st);
    if (r < 0) {
        log_error("store: insert user failed: %s", sqldb_errmsg(s->wq));
        return -1;
    }
    if (r == SQLDB_DONE) { /* no row: registered before */
        *result = STORE_DUPLICATE;
        return 0;
    }
    *result = STORE_INSERTED;
    /* backfill: a copy of every earlier email for the new user */
    struct sqldb_stmt *b = s->backfill;
    sqldb_bind_int64(b, 1, user_id);
    sqldb_bind_text(b, 2, u->address, -1);
    sqldb_bind_text(b, 3, u->name, -1);
    sqldb_bind_int64(b, 4, lane);
    sqldb_bind_text(b, 5, u->attributes, -1);
    int rc = sqldb_step(b);
    sqldb_reset(b);
    int64_t n = rc == SQLDB_DONE ? sqldb_changes(s->wq) : 0;
    if (backfilled)
        *backfilled = n;
    if (n > 0) {
        rc = sqldb_step(s->backfill_count);
        sqldb_reset(s->backfill_count);
    }
    if (rc != SQLDB_DONE) {
        log_error("store: backfill failed: %s", sqldb_errmsg(s->wq));
        return -1;
    }
    return outbox_add_q(s->wq, topic, u->domain, u->event);
}

int store_register_batch(struct store *s, const struct user_reg *users, size_t n, const char *topic,
                         int *result)
{
    int rc = -1;
    pthread_mutex_lock(&s->w_lock);
    if (sqldb_begin(s->wq) != 0 || store_lock_users(s, true) != 0)
        goto out;
    if (s->pg) { /* one statement per table for the batch */
        const struct user_reg **u = xcalloc(n ? n : 1, sizeof *u);
        for (size_t i = 0; i < n; i++)
            u[i] = &users[i];
        int r = store_register_pg(s, u, n, topic, result, NULL);
        free(u);
        if (r != 0)
            goto out;
    } else {
        for (size_t i = 0; i < n; i++)
            if (insert_user(s, &users[i], topic, &result[i], NULL) != 0)
                goto out;
    }
    rc = sqldb_commit(s->wq);
out:
    if (rc != 0)
        sqldb_rollback(s->wq);
    pthread_mutex_unlock(&s->w_lock);
    return rc;
}

/* gc_register_pg - the requests of list (all for one topic) as one batch;
 * 0 or -1 */
static int gc_register_pg(struct store *s, struct store_reg_req *list)
{
    size_t n = 0;
    for (struct store_reg_req *r = list; r; r = r->next)
        n++;
    const struct user_reg **u = xcalloc(n, sizeof *u);
    int *result = xcalloc(n, sizeof *result);
    int64_t *backfilled = xcalloc(n, sizeof *backfilled);
    size_t i = 0;
    for (struct store_reg_req *r = list; r; r = r->next)
        u[i++] = &r->u;
    int rc = store_register_pg(s, u, n, list->topic, result, backfilled);
    i = 0;
    for (struct store_reg_req *r = list; r; r = r->next, i++) {
        r->result = result[i];
        r->backfilled = backfilled[i];
    }
    free(u);
    free(result);
    free(backfilled);
    return rc;
}

/* same_topic - every request of list is for one topic */
static bool same_topic(const struct store_reg_req *list)
{
    for (const struct store_reg_req *r = list; r; r = r->next)
        if (strcmp(r->topic, list->topic) != 0)
            return false;
    return true;
}

/* gc_commit - one transaction for the taken requests; every request gets
 * rc and, on success, its result */
static void gc_commit(struct store *s, struct store_reg_req *list)
{
    int rc = -1;
    pthread_mutex_lock(&s->w_lock);
    if (sqldb_begin(s->wq) == 0) {
        rc = store_lock_users(s, true);
        bool batch = s->pg && same_topic(list);
        if (rc == 0 && batch)
            rc = gc_register_pg(s, list);
        for (struct store_reg_req *r = list; r && rc == 0 && !batch; r = r->next)
            rc = insert_user(s, &r->u, r->topic, &r->result, &r->backfilled);
        if (rc == 0)
            rc = sqldb_commit(s->wq);
        if (rc != 0)
            sqldb_rollback(s->wq);
    }
    pthread_mutex_unlock(&s->w_lock);
    for (struct store_reg_req *r = list; r; r = r->next) {
        r->rc = rc;
        if (rc != 0)
            r->backfilled = 0;
    }
}

static void *gc_main(void *arg)
{
    struct store *s = arg;
    pthread_mutex_lock(&s->gc_mu);
    for (;;) {
        while (!s->gc_head && !s->gc_stop)
            pthread_cond_wait(&s->gc_cv, &s->gc_mu);
        if (!s->gc_head)
            break;                               /* stopping, nothing left */
        struct store_reg_req *list = s->gc_head; /* everything waiting */
        s->gc_head = NULL;
        s->gc_tail = &s->gc_head;
        pthread_mutex_unlock(&s->gc_mu);
        gc_commit(s, list);
        for (struct store_reg_req *r = list, *next; r; r = next) {
            next = r->next; /* r belongs to its caller again once done */
            r->done(r);
        }
        pthread_mutex_lock(&s->gc_mu);
    }
    pthread_mutex_unlock(&s->gc_mu);
    return NULL;
}

void store_register_async(struct store *s, struct store_reg_req *r)
{
    r->next = NULL;
    r->rc = -1;
    r->result = STORE_DUPLICATE;
    r->backfilled = 0;
    pthread_mutex_lock(&s->gc_mu);
    bool was_empty = !s->gc_head;
    *s->gc_tail = r;
    s->gc_tail = &r->next;
    if (was_empty)
        pthread_cond_signal(&s->gc_cv);
    pthread_mutex_unlock(&s->gc_mu);
}

int store_lock_users(struct store *s, bool exclusive)
{
    if (!s->pg)
        return 0; /* SQLite: the write lock is the whole database's */
    struct sqldb_stmt *st =
        sqldb_prepare(s->wq, exclusive ? "SELECT pg_advisory_xact_lock(?)"
                                       : "SELECT pg_advisory_xact_lock_shared(?)");
    int rc = -1;
    if (st) {
        sqldb_bind_int64(st, 1, STORE_USERS_LOCK_KEY);
        rc = sqldb_run(st);
        sqldb_finalize(st);
    }
    return rc;
}

char *store_qcol_dup(struct sqldb_stmt *st, int i)
{
    const char *t = sqldb_column_text(st, i);
    return t ? xstrdup(t) : NULL;
}

char *store_qcol_str(struct sqldb_stmt *st, int i)
{
    const char *t = sqldb_column_text(st, i);
    return xstrdup(t ? t : "");
}

void *store_grow(void *v, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return v;
    *cap = *cap ? 2 * *cap : 16;
    return xreallocarray(v, *cap, size);
}

int store_list_users(struct store *s, int64_t limit, int64_t offset, struct user_row **out,
                     size_t *n)
{
    size_t cap = 0;
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&s->r_lock);
    struct sqldb_stmt *st = s->list_users;
    sqldb_bind_int64(st, 1, limit);
    sqldb_bind_int64(st, 2, offset);
    int rc;
    while ((rc = sqldb_step(st)) == SQLDB_ROW) {
        *out = store_grow(*out, &cap, *n, sizeof **out);
        struct user_row *u = &(*out)[(*n)++];
        u->name = store_qcol_str(st, 0);
        u->address = store_qcol_str(st, 1);
        u->created_at = store_qcol_str(st, 2);
        u->attributes = store_qcol_dup(st, 3);
    }
    sqldb_reset(st);
    pthread_mutex_unlock(&s->r_lock);
    if (rc != SQLDB_DONE) {
        log_error("store: list users failed: %s", sqldb_errmsg(s->rq));
        store_users_free(*out, *n);
        *out = NULL;
        *n = 0;
        return -1;
    }
    return 0;
}

void store_users_free(struct user_row *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++) {
        free(v[i].name);
        free(v[i].address);
        free(v[i].created_at);
        free(v[i].attributes);
    }
    free(v);
}

int store_email_ids_page(struct store *s, int64_t *after, int max,
                         void (*fn)(void *arg, const char *address), void *arg)
{
    int n = 0, rc;
    pthread_mutex_lock(&s->r_lock);
    struct sqldb_stmt *st = s->list_ids;
    sqldb_bind_int64(st, 1, *after);
    sqldb_bind_int64(st, 2, max);
    while ((rc = sqldb_step(st)) == SQLDB_ROW) {
        *after = sqldb_column_int64(st, 0);
        const char *t = sqldb_column_text(st, 1);
        fn(arg, t ? (const char *)t : "");
        n++;
    }
    sqldb_reset(st);
    pthread_mutex_unlock(&s->r_lock);
    return rc == SQLDB_DONE ? n : -1;
}

int64_t store_user_count(struct store *s)
{
    int64_t n = -1;
    pthread_mutex_lock(&s->r_lock);
    if (sqldb_step(s->count_users) == SQLDB_ROW)
        n = sqldb_column_int64(s->count_users, 0);
    sqldb_reset(s->count_users);
    pthread_mutex_unlock(&s->r_lock);
    return n;
}

bool store_ping(struct store *s)
{
    return store_user_count(s) >= 0;
}
