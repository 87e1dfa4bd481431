/* outbox.c - transactional outbox: outbox_add() for writers, and the
 * publisher thread that drains the table to Kafka. See outbox.h.
 *
 * The publisher owns its SQLite connection and an idempotent producer. Each
 * row is produced with its id as the message opaque; the delivery report
 * decides: success -> the id joins `done`, and done ids are deleted in one
 * transaction per pass; failure -> the id joins `retry` and is produced
 * again (read back by id) after a backoff that grows while nothing gets
 * through. A row is never produced twice at once: new rows are read with
 * id > hwm (every row at or below hwm is in flight, waiting in `retry`,
 * delivered-but-not-yet-deleted, or poisoned), and a retried row left the
 * in-flight set when its failure was reported.
 *
 * Row ids are INTEGER PRIMARY KEY without AUTOINCREMENT, so SQLite reuses
 * an id once the highest rows are deleted (new id = max(id) + 1). The
 * delete transaction therefore lowers hwm to max(id) read under the same
 * write lock: every remaining row at or below it was already produced, and
 * every later insert gets a larger id.
 *
 * On PostgreSQL the rows are taken by lease (outbox_pg.c) instead of
 * read above hwm; the rest (producing, reports, retries, the batched
 * delete) is the same.
 *
 * Everything below runs on the publisher thread (delivery reports and
 * error callbacks are served by rd_kafka_poll() there), except
 * outbox_add() and outbox_add_q() (caller's thread and connection), outbox_publisher_notify()
 * and outbox_publisher_stats() (any thread, under `mu`).
 */
#include "outbox.h"
#include "errbuf.h"
#include "db.h"
#include "kafka.h"
#include "log.h"
#include "outbox_pg.h"
#include "sqlarr.h"
#include "sqldb.h"
#include "timeutil.h"
#include "xalloc.h"

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BACKOFF_MIN_MS 500
#define BACKOFF_MAX_MS 30000
#define PROBE_EVERY_MS 2000     /* metadata probe when nothing was delivered lately */
#define PROBE_TIMEOUT_MS 1000   /* how long a probe may block the thread */
#define COUNT_EVERY_MS 250      /* refresh of the pending gauge */
#define DESTROY_TIMEOUT_MS 5000 /* bound on rd_kafka_destroy at shutdown */
/* delivered rows are deleted at most every DELETE_EVERY_MS or per
 * DELETE_BATCH rows: each delete is a write transaction (an fsync) that
 * the service's own writers would otherwise wait for, once per delivery
 * report under load. A crash before the delete only re-publishes them. */
#define DELETE_EVERY_MS 200
#define DELETE_BATCH 5000

static const char add_sql[] =
    "INSERT INTO outbox (topic, key, value, created_at) VALUES (?1, ?2, ?3, ?4)";

struct idvec {
    int64_t *v;
    size_t n, cap;
};

struct retry {
    int64_t id;
    int64_t due_ms;
};

struct outbox_publisher {
    /* configuration, owned copies */
    char *db_path, *brokers, *client_id;
    char **extra;
    int batch, poll_ms, message_timeout_ms, max_inflight;

    pthread_t thread;
    atomic_bool stop;
    atomic_int flush_ms;

    pthread_mutex_t mu; /* guards rk and mainq (notify vs re-creation) and stats */
    rd_kafka_t *rk;
    rd_kafka_queue_t *mainq; /* rk's main queue: yielding it wakes rd_kafka_poll() */
    struct outbox_stats stats;

    /* publisher thread only */
    struct outbox_pg *pg; /* PostgreSQL; then db and the statements are NULL */
    sqlite3 *db;
    sqlite3_stmt *sel_new, *sel_one, *del, *max_id, *count;
    int64_t hwm;
    int inflight;
    struct idvec done;   /* delivered, delete pending */
    struct idvec poison; /* can never be delivered; skipped until restart */
    struct retry *retry; /* failed, to be produced again */
    size_t nretry, cap_retry;
    int backoff_ms;
    bool retried; /* a retry round was produced since the backoff last grew */
    bool fatal;
    int64_t last_ok_ms, next_probe_ms, next_count_ms;
    int64_t next_delete_ms; /* delete_done's next turn (0: now) */
};

/* --- writers ------------------------------------------------------------ */

/* cached_add_stmt - the connection's persistent INSERT, prepared once */
static sqlite3_stmt *cached_add_stmt(sqlite3 *db)
{
    for (sqlite3_stmt *st = sqlite3_next_stmt(db, NULL); st; st = sqlite3_next_stmt(db, st)) {
        const char *sql = sqlite3_sql(st);
        if (sql && strcmp(sql, add_sql) == 0 && !sqlite3_stmt_busy(st))
            return st;
    }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v3(db, add_sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
        log_error("outbox: prepare failed: %s", sqlite3_errmsg(db));
        return NULL;
    }
    return st;
}

int outbox_add(sqlite3 *db, const char *topic, const char *key, const char *value)
{
    sqlite3_stmt *st = cached_add_stmt(db);
    if (!st)
        return -1;
    int rc = -1;
    if (sqlite3_bind_text(st, 1, topic, -1, SQLITE_STATIC) != SQLITE_OK ||
        (key ? sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC) : sqlite3_bind_null(st, 2)) !=
            SQLITE_OK ||
        sqlite3_bind_text(st, 3, value, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_int64(st, 4, time_now_ms()) != SQLITE_OK)
        goto out;
    if (sqlite3_step(st) != SQLITE_DONE)
        goto out;
    rc = 0;
out:
    if (rc != 0)
        log_error("outbox: insert failed topic=%s: %s", topic, sqlite3_errmsg(db));
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}

int outbox_add_q(struct sqldb *db, const char *topic, const char *key, const char *value)
{
    if (sqldb_engine(db) == SQLDB_SQLITE)
        return outbox_add(sqldb_sqlite(db), topic, key, value);
    struct sqldb_stmt *st = sqldb_prepare(db, add_sql);
    if (!st)
        return -1;
    sqldb_bind_text(st, 1, topic, -1);
    if (key)
        sqldb_bind_text(st, 2, key, -1);
    else
        sqldb_bind_null(st, 2);
    sqldb_bind_text(st, 3, value, -1);
    sqldb_bind_int64(st, 4, time_now_ms());
    int rc = sqldb_run(st);
    if (rc != 0)
        log_error("outbox: insert failed topic=%s: %s", topic, sqldb_errmsg(db));
    sqldb_finalize(st);
    return rc;
}

int outbox_add_batch_q(struct sqldb *db, const char *topic, const char *const *keys,
                       const char *const *values, size_t n)
{
    if (n == 0)
        return 0;
    if (sqldb_engine(db) == SQLDB_SQLITE) {
        for (size_t i = 0; i < n; i++)
            if (outbox_add(sqldb_sqlite(db), topic, keys[i], values[i]) != 0)
                return -1;
        return 0;
    }
    /* one statement: the rows in order, so their ids follow the batch */
    struct sqldb_stmt *st = sqldb_prepare(
        db, "INSERT INTO outbox (topic, key, value, created_at) SELECT ?1, u.k, u.v, ?4"
            " FROM unnest(?2::text[], ?3::text[]) WITH ORDINALITY AS u(k, v, i) ORDER BY u.i");
    if (!st)
        return -1;
    struct sqlarr k, v;
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++)
        bytes += strlen(values[i]) + 8;
    sqlarr_init(&k, 64 * n);
    sqlarr_init(&v, bytes);
    for (size_t i = 0; i < n; i++) {
        sqlarr_text(&k, keys[i]);
        sqlarr_text(&v, values[i]);
    }
    sqldb_bind_text(st, 1, topic, -1);
    sqldb_bind_int64(st, 4, time_now_ms());
    int rc = sqlarr_bind(&k, st, 2) == 0 && sqlarr_bind(&v, st, 3) == 0 ? sqldb_run(st) : -1;
    if (rc != 0)
        log_error("outbox: insert of %zu rows failed topic=%s: %s", n, topic, sqldb_errmsg(db));
    sqldb_finalize(st);
    sqlarr_cleanup(&k);
    sqlarr_cleanup(&v);
    return rc;
}

/* --- small containers --------------------------------------------------- */

static void idvec_push(struct idvec *v, int64_t id)
{
    if (v->n == v->cap) {
        v->cap = v->cap ? v->cap * 2 : 64;
        v->v = xreallocarray(v->v, v->cap, sizeof v->v[0]);
    }
    v->v[v->n++] = id;
}

static bool idvec_has(const struct idvec *v, int64_t id)
{
    for (size_t i = 0; i < v->n; i++)
        if (v->v[i] == id)
            return true;
    return false;
}

static void retry_push(struct outbox_publisher *p, int64_t id, int64_t due_ms)
{
    if (p->nretry == p->cap_retry) {
        p->cap_retry = p->cap_retry ? p->cap_retry * 2 : 64;
        p->retry = xreallocarray(p->retry, p->cap_retry, sizeof p->retry[0]);
    }
    p->retry[p->nretry++] = (struct retry){.id = id, .due_ms = due_ms};
}

static int retry_cmp(const void *a, const void *b)
{
    const struct retry *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

/* retry_later - the row failed: produce it again after the backoff, which
 * grows while whole retry rounds keep failing; logs the first of a streak */
static void retry_later(struct outbox_publisher *p, int64_t id, const char *topic,
                        rd_kafka_resp_err_t err)
{
    if (p->backoff_ms == 0) {
        p->backoff_ms = BACKOFF_MIN_MS;
        log_warn("outbox: delivery failed id=%lld topic=%s: %s; will retry", (long long)id, topic,
                 rd_kafka_err2str(err));
    } else if (p->retried) {
        p->retried = false;
        p->backoff_ms = p->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : p->backoff_ms * 2;
    }
    retry_push(p, id, time_mono_ms() + p->backoff_ms);
}

static void set_up(struct outbox_publisher *p, bool up)
{
    pthread_mutex_lock(&p->mu);
    p->stats.kafka_up = up;
    pthread_mutex_unlock(&p->mu);
}

/* --- librdkafka callbacks (served on the publisher thread) -------------- */

/* permanent - a delivery error that retrying the same bytes cannot fix */
static bool permanent(rd_kafka_resp_err_t err)
{
    return err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE ||
           err == RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE || err == RD_KAFKA_RESP_ERR__INVALID_ARG ||
           err == RD_KAFKA_RESP_ERR_INVALID_RECORD;
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    struct outbox_publisher *p = opaque;
    int64_t id = (int64_t)(intptr_t)m->_private;
    p->inflight--;
    if (!m->err) {
        idvec_push(&p->done, id);
        p->backoff_ms = 0;
        p->last_ok_ms = time_mono_ms();
        set_up(p, true);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->stats.failed++;
    pthread_mutex_unlock(&p->mu);
    if (permanent(m->err)) {
        log_error("outbox: id=%lld topic=%s cannot be delivered: %s; kept in the table, skipped "
                  "until restart",
                  (long long)id, rd_kafka_topic_name(m->rkt), rd_kafka_err2str(m->err));
        idvec_push(&p->poison, id);
        return;
    }
    retry_later(p, id, rd_kafka_topic_name(m->rkt), m->err);
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)rk;
    struct outbox_publisher *p = opaque;
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
        log_warn("outbox: all Kafka brokers are down: %s", reason);
        set_up(p, false);
    } else if (err == RD_KAFKA_RESP_ERR__FATAL) {
        log_error("outbox: fatal producer error: %s", reason);
        p->fatal = true;
    } else {
        log_debug("outbox: kafka error %s: %s", rd_kafka_err2name(err), reason);
    }
}

/* --- producer ----------------------------------------------------------- */

static rd_kafka_t *producer_new(struct outbox_publisher *p, char *errbuf, size_t errlen)
{
    char timeout[32];
    snprintf(timeout, sizeof timeout, "%d", p->message_timeout_ms);
    const char *const base[] = {
        "enable.idempotence", "true", "acks", "all", "message.timeout.ms", timeout, NULL,
    };
    rd_kafka_conf_t *conf = kafka_conf_new(p->brokers, p->client_id, base, errbuf, errlen);
    if (!conf)
        return NULL;
    for (size_t i = 0; p->extra && p->extra[i]; i += 2) {
        char err[512];
        if (rd_kafka_conf_set(conf, p->extra[i], p->extra[i + 1], err, sizeof err) !=
            RD_KAFKA_CONF_OK) {
            errbuf_set(errbuf, errlen, "kafka setting %s: %s", p->extra[i], err);
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    }
    rd_kafka_conf_set_opaque(conf, p);
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    char err[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!rk) {
        errbuf_set(errbuf, errlen, "kafka producer: %s", err);
        rd_kafka_conf_destroy(conf);
    }
    return rk;
}

/* producer_drain - give outstanding messages up to ms to be delivered, then
 * purge the rest (their rows stay for a retry or the next run) */
static void producer_drain(struct outbox_publisher *p, int ms)
{
    if (ms > 0)
        rd_kafka_flush(p->rk, ms);
    if (p->inflight > 0) {
        rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        for (int i = 0; i < 100 && p->inflight > 0; i++)
            rd_kafka_poll(p->rk, 50);
    }
    rd_kafka_flush(p->rk, 0);
}

static void delete_done(struct outbox_publisher *p, bool force);

/* producer_replace - after a fatal error (e.g. the idempotent producer
 * lost its sequence): fail what is outstanding, start a new producer and
 * read the table again from the start (delivery reports of the old one may
 * be lost with it) */
static void producer_replace(struct outbox_publisher *p)
{
    char reason[512] = "";
    rd_kafka_fatal_error(p->rk, reason, sizeof reason);
    producer_drain(p, 0);
    char err[512];
    rd_kafka_t *fresh = producer_new(p, err, sizeof err);
    if (!fresh) {
        log_error("outbox: cannot re-create the producer: %s", err);
        return; /* try again next pass */
    }
    log_warn("outbox: producer re-created after a fatal error: %s", reason);
    pthread_mutex_lock(&p->mu);
    rd_kafka_t *old = p->rk;
    rd_kafka_queue_t *oldq = p->mainq;
    p->rk = fresh;
    p->mainq = rd_kafka_queue_get_main(fresh);
    pthread_mutex_unlock(&p->mu);
    rd_kafka_queue_destroy(oldq);
    rd_kafka_destroy(old);
    delete_done(p, true);
    if (p->pg)
        outbox_pg_release(p->pg); /* what was outstanding is free to take again */
    p->inflight = 0;
    p->nretry = 0;
    p->hwm = 0;
    p->fatal = false;
}

/* --- the publisher pass ------------------------------------------------- */

/* produce_row - 0 produced (or poisoned, or queued for a retry), 1 queue
 * full (try the same row again soon). key may be NULL. */
static int produce_row(struct outbox_publisher *p, int64_t id, const char *topic, const void *key,
                       size_t klen, const void *value, size_t vlen)
{
    if (!topic || !*topic) {
        log_error("outbox: id=%lld has no topic; skipped until restart", (long long)id);
        idvec_push(&p->poison, id);
        return 0;
    }
    rd_kafka_resp_err_t err = rd_kafka_producev(
        p->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, klen),
        RD_KAFKA_V_VALUE((void *)value, vlen), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_OPAQUE((void *)(intptr_t)id), RD_KAFKA_V_END);
    if (!err) {
        p->inflight++;
        return 0;
    }
    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL)
        return 1;
    if (permanent(err)) {
        log_error("outbox: id=%lld topic=%s cannot be produced: %s; skipped until restart",
                  (long long)id, topic, rd_kafka_err2str(err));
        idvec_push(&p->poison, id);
        return 0;
    }
    if (err == RD_KAFKA_RESP_ERR__FATAL)
        p->fatal = true;
    retry_later(p, id, topic, err);
    return 0;
}

/* produce_retries - rows whose backoff elapsed, in id order; false when
 * the producer refused more for now. Due entries leave the list first: a
 * row that fails again at once is appended to it by retry_later(). */
/* lite_produce - produce the statement's row (columns topic, key, value from col) */
static int lite_produce(struct outbox_publisher *p, sqlite3_stmt *st, int64_t id, int col)
{
    const void *key = NULL;
    size_t klen = 0;
    if (sqlite3_column_type(st, col + 1) != SQLITE_NULL) {
        key = sqlite3_column_blob(st, col + 1);
        klen = (size_t)sqlite3_column_bytes(st, col + 1);
    }
    return produce_row(p, id, (const char *)sqlite3_column_text(st, col), key, klen,
                       sqlite3_column_blob(st, col + 2), (size_t)sqlite3_column_bytes(st, col + 2));
}

/* pg_row_ctx - a PostgreSQL row handed back by outbox_pg.c */
struct pg_row_ctx {
    struct outbox_publisher *p;
    int64_t now;
    bool full;     /* the producer refused a row: the rest wait too */
    bool produced; /* the row was handed to the producer */
};

static void pg_produce(void *arg, int64_t id, const char *topic, const char *key, const char *value)
{
    struct pg_row_ctx *c = arg;
    if (idvec_has(&c->p->poison, id))
        return;
    if (c->full || produce_row(c->p, id, topic, key, key ? strlen(key) : 0, value,
                               value ? strlen(value) : 0) != 0) {
        c->full = true;
        retry_push(c->p, id, c->now + 100);
        return;
    }
    c->produced = true;
}

/* pg_retry - produce row id again if this publisher still holds it; 0
 * done (or no longer ours), 1 queue full, -1 database error */
static int pg_retry(struct outbox_publisher *p, int64_t id, int64_t now)
{
    struct pg_row_ctx c = {.p = p, .now = now};
    int rc = outbox_pg_reread(p->pg, id, pg_produce, &c);
    if (rc < 0)
        return -1;
    if (c.full)
        return 1;
    if (c.produced)
        p->retried = true;
    return 0;
}

static bool produce_retries(struct outbox_publisher *p, int64_t now)
{
    size_t ndue = 0, keep = 0;
    for (size_t i = 0; i < p->nretry; i++)
        if (p->retry[i].due_ms <= now)
            ndue++;
    if (ndue == 0)
        return true;
    struct retry *due = xmalloc(ndue * sizeof due[0]);
    ndue = 0;
    for (size_t i = 0; i < p->nretry; i++) {
        if (p->retry[i].due_ms <= now)
            due[ndue++] = p->retry[i];
        else
            p->retry[keep++] = p->retry[i];
    }
    p->nretry = keep;
    qsort(due, ndue, sizeof due[0], retry_cmp);
    bool ok = true;
    for (size_t i = 0; i < ndue; i++) {
        if (!ok) {
            retry_push(p, due[i].id, now + 100);
            continue;
        }
        if (p->pg) {
            int rc = pg_retry(p, due[i].id, now);
            if (rc != 0) {
                ok = false; /* pg_produce queued this one again on a full queue */
                if (rc < 0)
                    retry_push(p, due[i].id, now + BACKOFF_MIN_MS);
            }
            continue;
        }
        sqlite3_bind_int64(p->sel_one, 1, due[i].id);
        int rc = sqlite3_step(p->sel_one);
        if (rc == SQLITE_ROW) {
            if (lite_produce(p, p->sel_one, due[i].id, 0) != 0) {
                ok = false; /* queue full: this one and the rest wait */
                retry_push(p, due[i].id, now + 100);
            } else {
                p->retried = true;
            }
        } else if (rc != SQLITE_DONE) { /* SQLITE_DONE: the row is gone, nothing to send */
            log_warn("outbox: reading id=%lld failed: %s", (long long)due[i].id,
                     sqlite3_errmsg(p->db));
            ok = false;
            retry_push(p, due[i].id, now + BACKOFF_MIN_MS);
        }
        sqlite3_reset(p->sel_one);
    }
    free(due);
    return ok;
}

/* produce_new - rows above hwm in id order; true when a full batch was
 * produced (more are probably waiting) */
static bool produce_new(struct outbox_publisher *p)
{
    int room = p->max_inflight - p->inflight - (int)p->nretry;
    int limit = room < p->batch ? room : p->batch;
    if (limit <= 0)
        return false;
    if (p->pg) {
        struct pg_row_ctx c = {.p = p, .now = time_mono_ms()};
        return outbox_pg_claim(p->pg, limit, pg_produce, &c) == limit && !c.full;
    }
    sqlite3_bind_int64(p->sel_new, 1, p->hwm);
    sqlite3_bind_int(p->sel_new, 2, limit);
    int n = 0, rc;
    bool stopped = false;
    while ((rc = sqlite3_step(p->sel_new)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(p->sel_new, 0);
        if (!idvec_has(&p->poison, id) && lite_produce(p, p->sel_new, id, 1) != 0) {
            stopped = true;
            break;
        }
        p->hwm = id;
        n++;
    }
    if (!stopped && rc != SQLITE_DONE)
        log_warn("outbox: reading rows failed: %s", sqlite3_errmsg(p->db));
    sqlite3_reset(p->sel_new);
    return !stopped && n == limit;
}

static int cmp_id(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* delete_done - delete delivered rows in one transaction, lower hwm to the
 * table's max id (see the header comment); unless force, only when their
 * turn came (DELETE_EVERY_MS) or DELETE_BATCH of them wait */
static void delete_done(struct outbox_publisher *p, bool force)
{
    if (p->done.n == 0)
        return;
    int64_t now = time_mono_ms();
    if (!force && p->done.n < DELETE_BATCH && now < p->next_delete_ms)
        return;
    p->next_delete_ms = now + DELETE_EVERY_MS;
    if (p->pg) {
        if (outbox_pg_delete(p->pg, p->done.v, p->done.n) != 0)
            return; /* keep them; next turn */
        goto deleted;
    }
    if (db_begin(p->db) != 0)
        return; /* keep them; next pass */
    /* rows are delivered nearly in id order: one range per run of
     * consecutive ids (a row not delivered is never inside a run) */
    qsort(p->done.v, p->done.n, sizeof p->done.v[0], cmp_id);
    for (size_t i = 0, j; i < p->done.n; i = j) {
        for (j = i + 1; j < p->done.n && p->done.v[j] <= p->done.v[j - 1] + 1; j++)
            ;
        sqlite3_bind_int64(p->del, 1, p->done.v[i]);
        sqlite3_bind_int64(p->del, 2, p->done.v[j - 1]);
        int rc = sqlite3_step(p->del);
        sqlite3_reset(p->del);
        if (rc != SQLITE_DONE) {
            log_warn("outbox: delete failed: %s", sqlite3_errmsg(p->db));
            db_rollback(p->db);
            return;
        }
    }
    int64_t max_id = 0;
    int rc = sqlite3_step(p->max_id);
    if (rc == SQLITE_ROW)
        max_id = sqlite3_column_int64(p->max_id, 0); /* NULL (empty) reads as 0 */
    sqlite3_reset(p->max_id);
    if (rc != SQLITE_ROW || db_commit(p->db) != 0) {
        db_rollback(p->db);
        return;
    }
    if (max_id < p->hwm)
        p->hwm = max_id;
deleted:
    pthread_mutex_lock(&p->mu);
    p->stats.published += p->done.n;
    pthread_mutex_unlock(&p->mu);
    p->done.n = 0;
    p->next_count_ms = 0; /* refresh the gauge now */
}

static void refresh_pending(struct outbox_publisher *p, int64_t now)
{
    if (now < p->next_count_ms)
        return;
    p->next_count_ms = now + COUNT_EVERY_MS;
    if (p->pg) {
        int64_t n = outbox_pg_count(p->pg);
        if (n >= 0) {
            pthread_mutex_lock(&p->mu);
            p->stats.pending = n;
            pthread_mutex_unlock(&p->mu);
        }
        return;
    }
    if (sqlite3_step(p->count) == SQLITE_ROW) {
        int64_t n = sqlite3_column_int64(p->count, 0);
        pthread_mutex_lock(&p->mu);
        p->stats.pending = n;
        pthread_mutex_unlock(&p->mu);
    }
    sqlite3_reset(p->count);
}

/* probe - ask a broker for metadata when nothing was delivered lately, so
 * kafka_up also follows an idle producer */
static void probe(struct outbox_publisher *p, int64_t now)
{
    if (now - p->last_ok_ms < PROBE_EVERY_MS || now < p->next_probe_ms)
        return;
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(p->rk, 0, NULL, &md, PROBE_TIMEOUT_MS);
    if (md)
        rd_kafka_metadata_destroy(md);
    now = time_mono_ms();
    p->next_probe_ms = now + PROBE_EVERY_MS;
    if (!err)
        p->last_ok_ms = now;
    else
        log_debug("outbox: kafka probe failed: %s", rd_kafka_err2str(err));
    set_up(p, !err);
}

/* pass - one round of work; returns how long to wait for events */
static int pass(struct outbox_publisher *p)
{
    delete_done(p, false);
    if (p->pg && outbox_pg_tick(p->pg)) {
        /* our rows were released and may be taken by another publisher:
         * what is still queued here comes back failed and is produced
         * again only if it is ours again (pg_retry) */
        rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE);
    }
    if (p->fatal)
        producer_replace(p);
    int64_t now = time_mono_ms();
    bool more = false;
    if (!p->fatal && produce_retries(p, now))
        more = produce_new(p);
    delete_done(p, false);
    refresh_pending(p, now);
    probe(p, now);
    if (more)
        return 0;
    int wait = p->poll_ms;
    for (size_t i = 0; i < p->nretry; i++) {
        int64_t d = p->retry[i].due_ms - now;
        if (d < wait)
            wait = d < 0 ? 0 : (int)d;
    }
    if (p->done.n > 0) { /* wake for the delete's turn */
        int64_t d = p->next_delete_ms - now;
        if (d < wait)
            wait = d < 0 ? 0 : (int)d;
    }
    if (p->pg) { /* and for the heartbeat's */
        int d = outbox_pg_due_ms(p->pg, time_mono_ms());
        if (d < wait)
            wait = d;
    }
    return wait;
}

static void *publisher_main(void *arg)
{
    struct outbox_publisher *p = arg;
    while (!atomic_load(&p->stop)) {
        int wait = pass(p);
        rd_kafka_poll(p->rk, wait); /* woken early by notify (rd_kafka_queue_yield) */
    }
    int flush_ms = atomic_load(&p->flush_ms);
    if (flush_ms > 0)
        pass(p); /* rows committed just before the stop get their chance too */
    producer_drain(p, flush_ms);
    delete_done(p, true);
    p->next_count_ms = 0;
    refresh_pending(p, time_mono_ms());
    return NULL;
}

/* --- lifecycle ---------------------------------------------------------- */

static void publisher_free(struct outbox_publisher *p)
{
    if (p->mainq)
        rd_kafka_queue_destroy(p->mainq);
    /* a handle that did not go away may still call back with p: keep p */
    if (p->rk && !kafka_destroy_bounded(p->rk, DESTROY_TIMEOUT_MS))
        return;
    sqlite3_finalize(p->sel_new);
    sqlite3_finalize(p->sel_one);
    sqlite3_finalize(p->del);
    sqlite3_finalize(p->max_id);
    sqlite3_finalize(p->count);
    db_close(p->db);
    outbox_pg_close(p->pg);
    for (size_t i = 0; p->extra && p->extra[i]; i++) {
        explicit_bzero(p->extra[i], strlen(p->extra[i])); /* may hold sasl.password */
        free(p->extra[i]);
    }
    free(p->extra);
    free(p->db_path);
    free(p->brokers);
    free(p->client_id);
    free(p->done.v);
    free(p->poison.v);
    free(p->retry);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

static sqlite3_stmt *prepare(struct outbox_publisher *p, const char *sql, char *errbuf,
                             size_t errlen)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v3(p->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
        errbuf_set(errbuf, errlen, "outbox table in %s: %s", p->db_path, sqlite3_errmsg(p->db));
        return NULL;
    }
    return st;
}

/* lite_open - the SQLite connection and its statements; 0 or -1 */
static int lite_open(struct outbox_publisher *p, char *errbuf, size_t errlen)
{
    if (db_open(p->db_path, &p->db, errbuf, errlen) != 0 ||
        db_exec(p->db, "PRAGMA synchronous=NORMAL") != 0 || /* see outbox.h */
        !(p->sel_new = prepare(p,
                               "SELECT id, topic, key, value FROM outbox WHERE id > ?1 "
                               "ORDER BY id LIMIT ?2",
                               errbuf, errlen)) ||
        !(p->sel_one =
              prepare(p, "SELECT topic, key, value FROM outbox WHERE id = ?1", errbuf, errlen)) ||
        !(p->del = prepare(p, "DELETE FROM outbox WHERE id BETWEEN ?1 AND ?2", errbuf, errlen)) ||
        !(p->max_id = prepare(p, "SELECT max(id) FROM outbox", errbuf, errlen)) ||
        !(p->count = prepare(p, "SELECT count(*) FROM outbox", errbuf, errlen)))
        return -1;
    return 0;
}

struct outbox_publisher *outbox_publisher_start(const struct outbox_config *cfg, char *errbuf,
                                                size_t errlen)
{
    if (!cfg->db_path || !cfg->brokers) {
        errbuf_set(errbuf, errlen, "outbox: db_path and brokers are required");
        return NULL;
    }
    struct outbox_publisher *p = xcalloc(1, sizeof *p);
    pthread_mutex_init(&p->mu, NULL);
    p->db_path = xstrdup(cfg->db_path);
    p->brokers = xstrdup(cfg->brokers);
    p->client_id = xstrdup(cfg->client_id ? cfg->client_id : "outbox");
    p->batch = cfg->batch > 0 ? cfg->batch : 500;
    p->poll_ms = cfg->poll_ms > 0 ? cfg->poll_ms : 200;
    p->message_timeout_ms = cfg->message_timeout_ms > 0 ? cfg->message_timeout_ms : 30000;
    p->max_inflight = cfg->max_inflight > 0 ? cfg->max_inflight : 10000;
    if (cfg->extra) {
        size_t n = 0;
        while (cfg->extra[n])
            n++;
        if (n % 2 != 0) {
            errbuf_set(errbuf, errlen, "outbox: kafka setting %s has no value", cfg->extra[n - 1]);
            publisher_free(p);
            return NULL;
        }
        p->extra = xcalloc(n + 1, sizeof p->extra[0]);
        for (size_t i = 0; i < n; i++)
            p->extra[i] = xstrdup(cfg->extra[i]);
    }
    int rc = -1;
    if (sqldb_is_url(p->db_path))
        rc = (p->pg = outbox_pg_open(p->db_path, p->client_id, errbuf, errlen)) ? 0 : -1;
    else
        rc = lite_open(p, errbuf, errlen);
    if (rc != 0 || !(p->rk = producer_new(p, errbuf, errlen))) {
        publisher_free(p);
        return NULL;
    }
    p->mainq = rd_kafka_queue_get_main(p->rk);
    refresh_pending(p, time_mono_ms());
    p->last_ok_ms = time_mono_ms() - PROBE_EVERY_MS; /* probe at once */
    if (pthread_create(&p->thread, NULL, publisher_main, p) != 0) {
        errbuf_set(errbuf, errlen, "outbox: cannot start the publisher thread");
        publisher_free(p);
        return NULL;
    }
    if (p->pg) {
        char shown[512];
        sqldb_url_redacted(p->db_path, shown, sizeof shown);
        log_info("outbox: publisher started db=%s owner=%s brokers=%s", shown,
                 outbox_pg_owner(p->pg), p->brokers);
    } else {
        log_info("outbox: publisher started db=%s brokers=%s", p->db_path, p->brokers);
    }
    return p;
}

void outbox_publisher_notify(struct outbox_publisher *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    if (p->mainq)
        rd_kafka_queue_yield(p->mainq);
    pthread_mutex_unlock(&p->mu);
}

void outbox_publisher_stop(struct outbox_publisher *p, int flush_ms)
{
    if (!p)
        return;
    atomic_store(&p->flush_ms, flush_ms);
    atomic_store(&p->stop, true);
    outbox_publisher_notify(p);
    pthread_join(p->thread, NULL);
    struct outbox_stats st;
    outbox_publisher_stats(p, &st);
    log_info("outbox: publisher stopped published=%llu failed=%llu pending=%lld",
             (unsigned long long)st.published, (unsigned long long)st.failed,
             (long long)st.pending);
    publisher_free(p);
}

void outbox_publisher_stats(struct outbox_publisher *p, struct outbox_stats *out)
{
    if (!p) {
        memset(out, 0, sizeof *out);
        return;
    }
    pthread_mutex_lock(&p->mu);
    *out = p->stats;
    pthread_mutex_unlock(&p->mu);
}
