/* outbox_pg.c - the outbox publisher's PostgreSQL side. See outbox_pg.h.
 *
 * Invariant: a row's lease_owner is NULL or names a publisher whose
 * heartbeat row exists. Claims take their owner's heartbeat row FOR SHARE
 * (and take nothing without it); the reaper deletes dead heartbeats and
 * releases their rows in one transaction, the release in a statement of
 * its own so that it sees claims committed while the delete waited for
 * their FOR SHARE lock. A stop releases the rows, then the heartbeat.
 */
#include "outbox_pg.h"
#include "buf.h"
#include "errbuf.h"
#include "log.h"
#include "sqldb.h"
#include "timeutil.h"
#include "xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#define RECONNECT_EVERY_MS 1000
#define NOW_MS "(extract(epoch FROM clock_timestamp()) * 1000)::bigint"

struct outbox_pg {
    struct sqldb *db;
    char *owner;
    bool suspect;   /* a statement failed: check the connection first */
    bool down;      /* the connection is known lost (logged) */
    bool beat_once; /* the heartbeat row was written at least once */
    int64_t next_try_ms, next_beat_ms;
};

static const char claim_sql[] =
    "WITH me AS (SELECT 1 FROM outbox_publishers WHERE owner = ?1 FOR SHARE),"
    " c AS (SELECT id FROM outbox WHERE lease_owner IS NULL AND EXISTS (SELECT 1 FROM me)"
    " ORDER BY id LIMIT ?2 FOR UPDATE SKIP LOCKED),"
    " u AS (UPDATE outbox o SET lease_owner = ?1 FROM c WHERE o.id = c.id"
    " RETURNING o.id, o.topic, o.key, o.value)"
    " SELECT id, topic, key, value FROM u ORDER BY id";

/* ---- the connection ------------------------------------------------------- */

/* ready - the connection may be used now; after a failure it is checked
 * (and reset once) at most every RECONNECT_EVERY_MS */
static bool ready(struct outbox_pg *g)
{
    if (!g->suspect)
        return true;
    int64_t now = time_mono_ms();
    if (now < g->next_try_ms)
        return false;
    g->next_try_ms = now + RECONNECT_EVERY_MS;
    if (!sqldb_ok(g->db)) {
        if (!g->down)
            log_warn("outbox: PostgreSQL connection lost; reconnecting every %d ms",
                     RECONNECT_EVERY_MS);
        g->down = true;
        return false;
    }
    if (g->down)
        log_info("outbox: PostgreSQL connection back");
    g->down = false;
    g->suspect = false;
    g->next_beat_ms = 0; /* the heartbeat first */
    return true;
}

/* failed - a statement failed: roll back whatever was open, check later */
static int failed(struct outbox_pg *g, struct sqldb_stmt *st)
{
    sqldb_finalize(st);
    sqldb_rollback(g->db);
    g->suspect = true;
    return -1;
}

/* run_owner - prepare sql, bind the owner as ?1, run it; 0 or -1 */
static int run_owner(struct outbox_pg *g, const char *sql)
{
    struct sqldb_stmt *st = sqldb_prepare(g->db, sql);
    if (!st)
        return failed(g, NULL);
    sqldb_bind_text(st, 1, g->owner, -1);
    if (sqldb_run(st) != 0)
        return failed(g, st);
    sqldb_finalize(st);
    return 0;
}

/* beat - refresh the heartbeat row, writing it again when it is gone;
 * true when it was gone though written before (we were reaped) */
static bool beat(struct outbox_pg *g)
{
    if (run_owner(g, "UPDATE outbox_publishers SET seen_at = " NOW_MS " WHERE owner = ?1") != 0)
        return false;
    if (sqldb_changes(g->db) == 1) {
        g->beat_once = true;
        return false;
    }
    if (run_owner(g, "INSERT INTO outbox_publishers (owner, seen_at) VALUES (?1, " NOW_MS
                     ") ON CONFLICT (owner) DO UPDATE SET seen_at = excluded.seen_at") != 0)
        return false;
    bool reaped = g->beat_once;
    g->beat_once = true;
    if (reaped)
        log_warn("outbox: this publisher (%s) was taken for dead and its rows released; "
                 "heartbeat written again",
                 g->owner);
    return reaped;
}

/* reap - delete heartbeats older than the TTL and release their rows */
static void reap(struct outbox_pg *g)
{
    struct sqldb_stmt *st = sqldb_prepare(
        g->db, "SELECT 1 FROM outbox_publishers WHERE seen_at < " NOW_MS " - ?1 LIMIT 1");
    if (!st) {
        failed(g, NULL);
        return;
    }
    sqldb_bind_int64(st, 1, OUTBOX_PG_TTL_MS);
    int rc = sqldb_step(st);
    if (rc < 0) {
        failed(g, st);
        return;
    }
    sqldb_finalize(st);
    if (rc != SQLDB_ROW)
        return;
    if (sqldb_begin(g->db) != 0) {
        failed(g, NULL);
        return;
    }
    st = sqldb_prepare(g->db, "DELETE FROM outbox_publishers WHERE seen_at < " NOW_MS
                              " - ?1 RETURNING owner");
    if (!st) {
        failed(g, NULL);
        return;
    }
    sqldb_bind_int64(st, 1, OUTBOX_PG_TTL_MS);
    size_t n = 0;
    char **dead = NULL;
    while ((rc = sqldb_step(st)) == SQLDB_ROW) {
        dead = xreallocarray(dead, n + 1, sizeof dead[0]);
        dead[n++] = xstrdup(sqldb_column_text(st, 0));
    }
    sqldb_finalize(st);
    st = rc < 0
             ? NULL
             : sqldb_prepare(g->db, "UPDATE outbox SET lease_owner = NULL WHERE lease_owner = ?1");
    for (size_t i = 0; st && i < n && rc >= 0; i++) {
        sqldb_bind_text(st, 1, dead[i], -1);
        rc = sqldb_run(st);
        if (rc == 0)
            log_warn("outbox: publisher %s stopped its heartbeat; its %lld rows released", dead[i],
                     (long long)sqldb_changes(g->db));
    }
    if (!st || rc < 0 || sqldb_commit(g->db) != 0)
        failed(g, st);
    else
        sqldb_finalize(st);
    for (size_t i = 0; i < n; i++)
        free(dead[i]);
    free(dead);
}

/* ---- the interface ---------------------------------------------------------- */

struct outbox_pg *outbox_pg_open(const char *url, const char *client_id, char *errbuf,
                                 size_t errlen)
{
    struct sqldb *db = sqldb_open_pg(url, errbuf, errlen);
    if (!db)
        return NULL;
    unsigned char rnd[6] = {0};
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
        log_warn("outbox: getrandom failed; the owner name relies on host and pid");
    char host[256] = "";
    if (gethostname(host, sizeof host - 1) != 0)
        snprintf(host, sizeof host, "?");
    struct outbox_pg *g = xcalloc(1, sizeof *g);
    g->db = db;
    g->owner = xasprintf("%s/%s/%ld/%02x%02x%02x%02x%02x%02x", client_id, host, (long)getpid(),
                         rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5]);
    beat(g);
    if (!g->beat_once) {
        errbuf_set(errbuf, errlen, "outbox tables on PostgreSQL: %s", sqldb_errmsg(db));
        outbox_pg_close(g);
        return NULL;
    }
    g->next_beat_ms = time_mono_ms() + OUTBOX_PG_BEAT_MS;
    return g;
}

void outbox_pg_close(struct outbox_pg *g)
{
    if (!g)
        return;
    if (g->beat_once && ready(g)) {
        if (sqldb_begin(g->db) != 0 ||
            run_owner(g, "UPDATE outbox SET lease_owner = NULL WHERE lease_owner = ?1") != 0 ||
            run_owner(g, "DELETE FROM outbox_publishers WHERE owner = ?1") != 0 ||
            sqldb_commit(g->db) != 0) {
            sqldb_rollback(g->db);
            log_warn("outbox: could not release this publisher's rows; the others take them "
                     "in %d ms",
                     OUTBOX_PG_TTL_MS);
        }
    }
    sqldb_close(g->db);
    free(g->owner);
    free(g);
}

const char *outbox_pg_owner(const struct outbox_pg *g)
{
    return g->owner;
}

/* hand - give the statement's row to fn (columns id?, topic, key, value) */
static void hand(struct sqldb_stmt *st, int64_t id, int col, outbox_pg_row_fn fn, void *arg)
{
    fn(arg, id, sqldb_column_text(st, col), sqldb_column_text(st, col + 1),
       sqldb_column_text(st, col + 2));
}

int outbox_pg_claim(struct outbox_pg *g, int limit, outbox_pg_row_fn fn, void *arg)
{
    if (!ready(g))
        return -1;
    struct sqldb_stmt *st = sqldb_prepare(g->db, claim_sql);
    if (!st)
        return failed(g, NULL);
    sqldb_bind_text(st, 1, g->owner, -1);
    sqldb_bind_int64(st, 2, limit);
    int n = 0, rc;
    while ((rc = sqldb_step(st)) == SQLDB_ROW) {
        n++;
        hand(st, sqldb_column_int64(st, 0), 1, fn, arg);
    }
    if (rc < 0)
        return failed(g, st);
    sqldb_finalize(st);
    return n;
}

int outbox_pg_reread(struct outbox_pg *g, int64_t id, outbox_pg_row_fn fn, void *arg)
{
    if (!ready(g))
        return -1;
    struct sqldb_stmt *st = sqldb_prepare(
        g->db, "SELECT topic, key, value FROM outbox WHERE id = ?1 AND lease_owner = ?2");
    if (!st)
        return failed(g, NULL);
    sqldb_bind_int64(st, 1, id);
    sqldb_bind_text(st, 2, g->owner, -1);
    int rc = sqldb_step(st);
    if (rc < 0)
        return failed(g, st);
    if (rc == SQLDB_ROW)
        hand(st, id, 0, fn, arg);
    sqldb_finalize(st);
    return rc == SQLDB_ROW ? 1 : 0;
}

int outbox_pg_delete(struct outbox_pg *g, const int64_t *ids, size_t n)
{
    if (!ready(g))
        return -1;
    struct buf b;
    buf_init(&b, n * 21 + 3); /* a cap: 20 digits and a comma per id */
    buf_appendc(&b, '{');
    for (size_t i = 0; i < n; i++)
        buf_printf(&b, i ? ",%lld" : "%lld", (long long)ids[i]);
    buf_appendc(&b, '}');
    struct sqldb_stmt *st = sqldb_prepare(g->db, "DELETE FROM outbox WHERE id = ANY(?1::bigint[])");
    int rc = -1;
    if (st) {
        sqldb_bind_text(st, 1, buf_str(&b), -1);
        rc = sqldb_run(st);
    }
    buf_cleanup(&b);
    if (rc != 0)
        return failed(g, st);
    sqldb_finalize(st);
    return 0;
}

int64_t outbox_pg_count(struct outbox_pg *g)
{
    if (!ready(g))
        return -1;
    struct sqldb_stmt *st = sqldb_prepare(g->db, "SELECT count(*) FROM outbox");
    if (!st)
        return failed(g, NULL);
    if (sqldb_step(st) != SQLDB_ROW)
        return failed(g, st);
    int64_t n = sqldb_column_int64(st, 0);
    sqldb_finalize(st);
    return n;
}

void outbox_pg_release(struct outbox_pg *g)
{
    if (ready(g))
        run_owner(g, "UPDATE outbox SET lease_owner = NULL WHERE lease_owner = ?1");
}

bool outbox_pg_tick(struct outbox_pg *g)
{
    int64_t now = time_mono_ms();
    if (now < g->next_beat_ms || !ready(g))
        return false;
    g->next_beat_ms = now + OUTBOX_PG_BEAT_MS;
    bool reaped = beat(g);
    if (!g->suspect)
        reap(g);
    return reaped;
}

int outbox_pg_due_ms(const struct outbox_pg *g, int64_t now)
{
    int64_t d = (g->suspect ? g->next_try_ms : g->next_beat_ms) - now;
    return d < 0 ? 0 : d > OUTBOX_PG_BEAT_MS ? OUTBOX_PG_BEAT_MS : (int)d;
}
