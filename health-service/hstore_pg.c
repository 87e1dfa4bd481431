/* hstore_pg.c - the PostgreSQL backend of the health store (hstore.h),
 * chosen by a postgres:// DATABASE_URL: the same tables as the SQLite
 * backend's latest schema (users, domains, copies, email_stats,
 * analytics_series, analytics), one database shared by every
 * health-service instance. This file owns the schema (its migrations),
 * opening and freeing the store, the ops table, the helpers every file
 * of the backend shares and the leader lock; the rest is split by
 * concern (hstore_pg_int.h says which file does what).
 *
 * Threads as hstore.h: writes on the writer connection under w_lock (the
 * consumer's writer, the scheduler's workers, the bounce reader), reads
 * on the reader connection under r_lock, the leader lock on its own
 * connection under l_lock. libpq connections are not shared across
 * threads otherwise. */
#include "hstore_pg.h"
#include "hstore_pg_int.h"
#include "log.h"
#include "xalloc.h"

#include <stdlib.h>
#include <string.h>

static const char *const migrations[] = {
    /* 1: the SQLite backend's schema 11, as one */
    "CREATE TABLE users (email_id TEXT PRIMARY KEY, domain TEXT NOT NULL, name TEXT NOT NULL,"
    " registered_at TEXT NOT NULL);"
    "CREATE TABLE domains (domain TEXT PRIMARY KEY, users BIGINT NOT NULL DEFAULT 0,"
    " first_seen TEXT NOT NULL, last_seen TEXT NOT NULL, tracked BIGINT NOT NULL DEFAULT 0,"
    " checked BIGINT NOT NULL DEFAULT 0, last_round_at BIGINT, last_error TEXT,"
    " delivered BIGINT NOT NULL DEFAULT 0, spam BIGINT NOT NULL DEFAULT 0,"
    " opened BIGINT NOT NULL DEFAULT 0, read BIGINT NOT NULL DEFAULT 0,"
    " bounced BIGINT NOT NULL DEFAULT 0, complained BIGINT NOT NULL DEFAULT 0,"
    " unchecked BIGINT NOT NULL DEFAULT 0, rescued BIGINT NOT NULL DEFAULT 0);"
    "CREATE TABLE copies (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    " message_id TEXT NOT NULL UNIQUE, email_id BIGINT NOT NULL, broadcast_id TEXT NOT NULL,"
    " recipient TEXT NOT NULL, domain TEXT NOT NULL, smtp_client TEXT NOT NULL,"
    " sent_at BIGINT NOT NULL, bounced BIGINT NOT NULL DEFAULT 0, bounce TEXT, smtp_reply TEXT,"
    " placement BIGINT NOT NULL DEFAULT 0, opened BIGINT NOT NULL DEFAULT 0,"
    " read BIGINT NOT NULL DEFAULT 0, rounds BIGINT NOT NULL DEFAULT 0, checked_at BIGINT,"
    " complained BIGINT NOT NULL DEFAULT 0, feedback_type TEXT, identity TEXT, found_at BIGINT,"
    " rescued BIGINT NOT NULL DEFAULT 0, campaign BIGINT, variant TEXT, series BIGINT);"
    "CREATE INDEX copies_open ON copies(domain, sent_at) WHERE bounced = 0 AND placement <> 4;"
    "CREATE INDEX copies_email ON copies(email_id, sent_at);"
    "CREATE INDEX copies_sent ON copies(sent_at);"
    "CREATE TABLE email_stats (email_id BIGINT PRIMARY KEY, broadcast_id TEXT NOT NULL,"
    " tracked BIGINT NOT NULL DEFAULT 0, delivered BIGINT NOT NULL DEFAULT 0,"
    " spam BIGINT NOT NULL DEFAULT 0, opened BIGINT NOT NULL DEFAULT 0,"
    " read BIGINT NOT NULL DEFAULT 0, bounced BIGINT NOT NULL DEFAULT 0, checked_at BIGINT,"
    " complained BIGINT NOT NULL DEFAULT 0, first_sent_at BIGINT,"
    " unchecked BIGINT NOT NULL DEFAULT 0, rescued BIGINT NOT NULL DEFAULT 0);"
    "CREATE INDEX email_stats_broadcast ON email_stats(broadcast_id);"
    "CREATE TABLE analytics_series (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    " domain TEXT NOT NULL, identity TEXT NOT NULL, campaign BIGINT NOT NULL,"
    " variant TEXT NOT NULL, UNIQUE (domain, identity, campaign, variant));"
    "CREATE TABLE analytics (series BIGINT NOT NULL, hour BIGINT NOT NULL, sent BIGINT NOT NULL,"
    " delivered BIGINT NOT NULL, spam BIGINT NOT NULL, opened BIGINT NOT NULL,"
    " read BIGINT NOT NULL, bounced BIGINT NOT NULL, complained BIGINT NOT NULL,"
    " PRIMARY KEY (series, hour));",
    /* 2: Message-IDs compared as bytes: they are only ever matched whole
     * (equal under any deterministic collation), and the unique index,
     * which every ingested copy probes at a random place, then skips the
     * locale's collation */
    "ALTER TABLE copies ALTER COLUMN message_id TYPE text COLLATE \"C\";",
};

/* the advisory lock key of the rounds' leader */
#define LEADER_KEY "7405921312"

/* ---- small helpers ------------------------------------------------------- */

/* lock_reader - r_lock, with the reader reconnected if its connection broke
 * (the failed query before found it: a restarted server costs one error) */
void hpg_lock_reader(struct hpg *s)
{
    pthread_mutex_lock(&s->r_lock);
    sqldb_ok(s->r);
}

void hpg_bind_text_or_null(struct sqldb_stmt *st, int i, const char *v)
{
    if (v)
        sqldb_bind_text(st, i, v, -1);
    else
        sqldb_bind_null(st, i);
}

char *hpg_col_dup(struct sqldb_stmt *st, int i)
{
    const char *t = sqldb_column_text(st, i);
    return xstrdup(t ? t : "");
}

/* ---- the leader ------------------------------------------------------------------- */

/* holds - the lock is held on a live connection (a query proves it) */
static bool holds(struct hpg *s)
{
    struct sqldb_stmt *st = sqldb_prepare(s->l, "SELECT 1");
    bool ok = st && sqldb_step(st) == SQLDB_ROW;
    sqldb_finalize(st);
    return ok;
}

static bool hpg_leader(struct hstore *store)
{
    struct hpg *s = hpg(store);
    char err[256];
    pthread_mutex_lock(&s->l_lock);
    bool was = s->held;
    if (s->held && !holds(s)) /* the connection went, and the lock with it */
        s->held = false;
    if (!s->held) {
        if (s->l && !sqldb_ok(s->l)) {
            sqldb_close(s->l);
            s->l = NULL;
        }
        if (!s->l && !(s->l = sqldb_open_pg(s->url, err, sizeof err)))
            log_warn("hstore: leader lock: %s", err);
        struct sqldb_stmt *st =
            s->l ? sqldb_prepare(s->l, "SELECT pg_try_advisory_lock(" LEADER_KEY ")") : NULL;
        s->held = st && sqldb_step(st) == SQLDB_ROW && sqldb_column_int64(st, 0) == 1;
        sqldb_finalize(st);
    }
    if (s->held != was || !s->told)
        log_info(s->held ? "hstore: this instance is the leader: it runs the rounds"
                         : "hstore: another instance is the leader: this one ingests only");
    s->told = true;
    bool held = s->held;
    pthread_mutex_unlock(&s->l_lock);
    return held;
}

/* ---- opening ----------------------------------------------------------------------- */

static void hpg_free(struct hstore *store)
{
    struct hpg *s = hpg(store);
    sqldb_close(s->w);
    sqldb_close(s->r);
    sqldb_close(s->l); /* the leader lock goes with its session */
    pthread_mutex_destroy(&s->w_lock);
    pthread_mutex_destroy(&s->r_lock);
    pthread_mutex_destroy(&s->l_lock);
    if (s->url)
        explicit_bzero(s->url, strlen(s->url));
    free(s->url);
    free(s);
}

static const struct hstore_ops hpg_ops = {
    .name = "postgres",
    .free = hpg_free,
    .apply_events = hpg_apply_events,
    .key_copies = NULL,
    .domains = hpg_domains,
    .domain_count = hpg_domain_count,
    .domain_placement = hpg_domain_placement,
    .domain_names = hpg_domain_names,
    .open_copies = hpg_open_copies,
    .apply_checks = hpg_apply_checks,
    .stats_email = hpg_stats_email,
    .stats_copy = hpg_stats_copy,
    .all_stats = hpg_all_stats,
    .tracked_count = hpg_tracked_count,
    .apply_feedback = hpg_apply_feedback,
    .placement_counts = hpg_placement_counts,
    .inbox_delays = hpg_inbox_delays,
    .reconcile = hpg_reconcile,
    .analytics = hpg_analytics,
    .leader = hpg_leader,
};

struct hstore *hstore_pg_open(const char *url, char *errbuf, size_t errlen)
{
    struct hpg *s = xcalloc(1, sizeof *s);
    s->base.ops = &hpg_ops;
    pthread_mutex_init(&s->w_lock, NULL);
    pthread_mutex_init(&s->r_lock, NULL);
    pthread_mutex_init(&s->l_lock, NULL);
    s->url = xstrdup(url);
    if (!(s->w = sqldb_open_pg(url, errbuf, errlen)) ||
        !(s->r = sqldb_open_pg(url, errbuf, errlen)) ||
        sqldb_foreign_schema(s->w, "deliveries", "warmup-service", errbuf, errlen) != 0 ||
        sqldb_migrate(s->w, migrations, sizeof migrations / sizeof migrations[0], errbuf, errlen) !=
            0) {
        hpg_free(&s->base);
        return NULL;
    }
    return &s->base;
}
