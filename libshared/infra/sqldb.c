/* sqldb.c - see sqldb.h. SQLite calls go straight to sqlite3 (and db.c
 * for transactions and migrations); PostgreSQL ones to libpq with text
 * parameters and results, statements prepared once per connection. */
#include "sqldb.h"
#include "buf.h"
#include "db.h"
#include "errbuf.h"
#include "log.h"
#include "xalloc.h"

#include <ctype.h>
#include <errno.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PG_INT8OID 20
#define PG_FLOAT8OID 701
#define CACHE_BUCKETS 256
#define CACHE_MAX 1024 /* server-side statements kept per connection */
#define MIGRATE_LOCK_KEY 7405921311LL

/* a statement prepared on the server: key = parameter types + SQL */
struct pg_cached {
    char *key;
    char name[24];
    struct pg_cached *next;
};

struct sqldb {
    enum sqldb_engine engine;
    sqlite3 *lite;
    PGconn *pg;
    int64_t changes;
    bool unique;
    char err[512];
    struct pg_cached *cache[CACHE_BUCKETS];
    size_t ncached;
    unsigned long long next_name;
    struct sqldb_stmt *stmts; /* every open statement, finalized at close */
    bool in_txn;              /* between sqldb_begin and its commit or rollback */
    bool custom_plans;        /* sqldb_custom_plans: set again after a reset */
};

struct pg_param {
    const char *val; /* borrowed, or num / own */
    char *own;       /* a NUL-terminated copy of text given with a length */
    char num[32];
    unsigned int type; /* Oid: 0 for NULL (the server infers it) */
};

struct sqldb_stmt {
    struct sqldb *db;
    struct sqldb_stmt *prev, *next; /* db->stmts */
    sqlite3_stmt *lite;
    char *sql; /* PostgreSQL text */
    int nparams;
    struct pg_param *p;
    PGresult *res;
    int row, nrows;
    bool done; /* SQLite: stepped to the end (a further step would rerun it) */
};

/* ---- errors -------------------------------------------------------------- */

static void set_err(struct sqldb *db, const char *msg, bool unique)
{
    snprintf(db->err, sizeof db->err, "%s", msg ? msg : "unknown error");
    size_t n = strlen(db->err);
    while (n && (db->err[n - 1] == '\n' || db->err[n - 1] == ' '))
        db->err[--n] = '\0';
    db->unique = unique;
}

/* pg_result_err - the primary message only: DETAIL would quote values */
static void pg_result_err(struct sqldb *db, const PGresult *r)
{
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    set_err(db, msg ? msg : PQerrorMessage(db->pg), state && strcmp(state, "23505") == 0);
}

const char *sqldb_errmsg(struct sqldb *db)
{
    if (db->engine == SQLDB_SQLITE)
        return sqlite3_errmsg(db->lite);
    return db->err;
}

bool sqldb_unique_violation(struct sqldb *db)
{
    if (db->engine == SQLDB_SQLITE) {
        int c = sqlite3_extended_errcode(db->lite);
        return c == SQLITE_CONSTRAINT_UNIQUE || c == SQLITE_CONSTRAINT_PRIMARYKEY;
    }
    return db->unique;
}

/* ---- SQL text ------------------------------------------------------------ */

static bool word_at(const char *p, const char *w)
{
    size_t n = strlen(w);
    return strncasecmp(p, w, n) == 0 && !isalnum((unsigned char)p[n]) && p[n] != '_';
}

char *sqldb_pg_sql(const char *sql, int *nparams)
{
    struct buf b;
    buf_init(&b, 7 * strlen(sql) + 16); /* a cap: each ? may become $ and six digits */
    int max = 0;
    const char *p = sql;
    while (*p) {
        char c = *p;
        if (c == '\'' || c == '"') { /* a literal or quoted name, doubled quotes inside */
            const char *q = p + 1;
            while (*q && !(*q == c && q[1] != c))
                q += *q == c ? 2 : 1;
            if (*q)
                q++;
            buf_append(&b, p, (size_t)(q - p));
            p = q;
        } else if (c == '-' && p[1] == '-') {
            const char *q = strchr(p, '\n');
            q = q ? q : p + strlen(p);
            buf_append(&b, p, (size_t)(q - p));
            p = q;
        } else if (c == '/' && p[1] == '*') {
            const char *q = strstr(p + 2, "*/");
            q = q ? q + 2 : p + strlen(p);
            buf_append(&b, p, (size_t)(q - p));
            p = q;
        } else if (c == '?' || c == '$') {
            const char *q = p + 1;
            long v = 0;
            while (isdigit((unsigned char)*q) && v < 100000)
                v = v * 10 + (*q++ - '0');
            if (c == '$' && q == p + 1) { /* a $ that is no parameter */
                buf_append(&b, p, 1);
                p++;
                continue;
            }
            if (q == p + 1)
                v = max + 1;
            if (v > max)
                max = (int)v;
            buf_printf(&b, "$%ld", v);
            p = q;
        } else if (isspace((unsigned char)c) && word_at(p + strspn(p, " \t\r\n"), "COLLATE")) {
            const char *q = p + strspn(p, " \t\r\n") + 7;
            q += strspn(q, " \t\r\n");
            if (word_at(q, "NOCASE")) {
                p = q + 6;
                continue;
            }
            buf_append(&b, p, 1);
            p++;
        } else if (isspace((unsigned char)c) && word_at(p + strspn(p, " \t\r\n"), "INDEXED")) {
            const char *q = p + strspn(p, " \t\r\n") + 7; /* SQLite's planner hint: dropped */
            q += strspn(q, " \t\r\n");
            if (!word_at(q, "BY")) {
                buf_append(&b, p, 1);
                p++;
                continue;
            }
            q += 2;
            q += strspn(q, " \t\r\n");
            while (isalnum((unsigned char)*q) || *q == '_')
                q++;
            p = q;
        } else {
            buf_append(&b, p, 1);
            p++;
        }
    }
    *nparams = max;
    char *out = xstrdup(buf_str(&b));
    buf_cleanup(&b);
    return out;
}

/* ---- connections ----------------------------------------------------------- */

bool sqldb_is_url(const char *target)
{
    return target &&
           (strncmp(target, "postgres://", 11) == 0 || strncmp(target, "postgresql://", 13) == 0);
}

void sqldb_url_redacted(const char *url, char *buf, size_t len)
{
    const char *scheme = strstr(url, "://");
    const char *rest = scheme ? scheme + 3 : url;
    const char *at = strchr(rest, '@'), *slash = strchr(rest, '/');
    const char *colon = at ? memchr(rest, ':', (size_t)(at - rest)) : NULL;
    if (!at || (slash && slash < at) || !colon) {
        snprintf(buf, len, "%s", url);
        return;
    }
    snprintf(buf, len, "%.*s%s", (int)(colon - url), url, at);
}

/* loopback_or_socket - host (may be a list) is local: no TLS needed */
static bool loopback_or_socket(const char *host)
{
    if (!host || !*host || host[0] == '/')
        return true;
    return strcmp(host, "localhost") == 0 || strncmp(host, "127.", 4) == 0 ||
           strcmp(host, "::1") == 0;
}

/* session_setup - the session settings of a new or reset connection */
static void session_setup(struct sqldb *db)
{
    PGresult *r = PQexec(db->pg, db->custom_plans ? "SET client_min_messages = warning;"
                                                    " SET plan_cache_mode = force_custom_plan"
                                                  : "SET client_min_messages = warning");
    PQclear(r);
}

struct sqldb *sqldb_open_pg(const char *url, char *errbuf, size_t errlen)
{
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(url, &perr);
    if (!opts) {
        /* libpq's message may quote the URL (and its password): not ours to print */
        PQfreemem(perr);
        errbuf_set(errbuf, errlen, "DATABASE_URL: not a valid PostgreSQL URL");
        return NULL;
    }
    const char *host = NULL, *sslmode = NULL;
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (strcmp(o->keyword, "host") == 0 || (strcmp(o->keyword, "hostaddr") == 0 && !host))
            host = o->val;
        else if (strcmp(o->keyword, "sslmode") == 0)
            sslmode = o->val;
    }
    bool verify = !sslmode && !loopback_or_socket(host);
    PQconninfoFree(opts);
    /* later keywords override the URL's: sslmode only when it named none */
    const char *keys[5] = {"dbname", "options", "application_name"};
    const char *vals[5] = {url, "-c TimeZone=UTC", "email-warmup"};
    if (verify)
        keys[3] = "sslmode", vals[3] = "verify-full";
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (!c || PQstatus(c) != CONNECTION_OK) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s", c ? PQerrorMessage(c) : "out of memory");
        msg[strcspn(msg, "\n")] = '\0';
        errbuf_set(errbuf, errlen, "DATABASE_URL: cannot connect: %s", msg);
        PQfinish(c);
        return NULL;
    }
    struct sqldb *db = xcalloc(1, sizeof *db);
    db->engine = SQLDB_POSTGRES;
    db->pg = c;
    session_setup(db);
    return db;
}

void sqldb_custom_plans(struct sqldb *db)
{
    if (db->engine != SQLDB_POSTGRES)
        return;
    db->custom_plans = true;
    session_setup(db);
}

struct sqldb *sqldb_wrap_sqlite(sqlite3 *lite)
{
    struct sqldb *db = xcalloc(1, sizeof *db);
    db->engine = SQLDB_SQLITE;
    db->lite = lite;
    return db;
}

static void cache_clear(struct sqldb *db)
{
    for (size_t i = 0; i < CACHE_BUCKETS; i++) {
        while (db->cache[i]) {
            struct pg_cached *e = db->cache[i];
            db->cache[i] = e->next;
            free(e->key);
            free(e);
        }
    }
    db->ncached = 0;
}

void sqldb_close(struct sqldb *db)
{
    if (!db)
        return;
    while (db->stmts)
        sqldb_finalize(db->stmts);
    if (db->pg)
        PQfinish(db->pg);
    cache_clear(db);
    free(db);
}

enum sqldb_engine sqldb_engine(const struct sqldb *db)
{
    return db->engine;
}

sqlite3 *sqldb_sqlite(struct sqldb *db)
{
    return db->lite;
}

bool sqldb_ok(struct sqldb *db)
{
    if (db->engine == SQLDB_SQLITE)
        return true;
    if (PQstatus(db->pg) == CONNECTION_OK)
        return true;
    PQreset(db->pg);
    cache_clear(db); /* the server forgot its prepared statements */
    if (PQstatus(db->pg) != CONNECTION_OK)
        return false;
    session_setup(db);
    return true;
}

/* revive - a connection lost outside a transaction (a server restart) is
 * opened again before its next use; inside one the caller's transaction
 * is gone, and its next statements must fail rather than run alone */
static bool revive(struct sqldb *db)
{
    if (db->in_txn || PQstatus(db->pg) == CONNECTION_OK)
        return true;
    bool ok = sqldb_ok(db);
    if (ok)
        log_info("sql: connection to the database opened again");
    return ok;
}

int sqldb_exec(struct sqldb *db, const char *sql)
{
    if (db->engine == SQLDB_SQLITE)
        return db_exec(db->lite, sql);
    if (!revive(db)) {
        snprintf(db->err, sizeof db->err, "the database is unreachable");
        return -1;
    }
    PGresult *r = PQexec(db->pg, sql);
    ExecStatusType t = PQresultStatus(r);
    int rc = t == PGRES_COMMAND_OK || t == PGRES_TUPLES_OK ? 0 : -1;
    if (rc != 0) {
        pg_result_err(db, r);
        log_error("sql: %s", db->err);
    }
    PQclear(r);
    return rc;
}

int sqldb_begin(struct sqldb *db)
{
    if (db->engine == SQLDB_SQLITE)
        return db_begin(db->lite);
    int rc = sqldb_exec(db, "BEGIN");
    db->in_txn = rc == 0;
    return rc;
}

int sqldb_commit(struct sqldb *db)
{
    if (db->engine == SQLDB_SQLITE)
        return db_commit(db->lite);
    int rc = sqldb_exec(db, "COMMIT");
    db->in_txn = false;
    return rc;
}

void sqldb_rollback(struct sqldb *db)
{
    if (db->engine == SQLDB_SQLITE) {
        db_rollback(db->lite);
        return;
    }
    db->in_txn = false;
    if (PQtransactionStatus(db->pg) == PQTRANS_IDLE)
        return;
    PGresult *r = PQexec(db->pg, "ROLLBACK");
    PQclear(r);
}

int64_t sqldb_changes(struct sqldb *db)
{
    return db->engine == SQLDB_SQLITE ? sqlite3_changes(db->lite) : db->changes;
}

/* ---- statements ------------------------------------------------------------ */

struct sqldb_stmt *sqldb_prepare(struct sqldb *db, const char *sql)
{
    struct sqldb_stmt *st = xcalloc(1, sizeof *st);
    st->db = db;
    if (db->engine == SQLDB_SQLITE) {
        st->lite = db_prepare(db->lite, sql);
        if (!st->lite) {
            free(st);
            return NULL;
        }
    } else {
        st->sql = sqldb_pg_sql(sql, &st->nparams);
        if (st->nparams)
            st->p = xcalloc((size_t)st->nparams, sizeof *st->p);
        st->row = -1;
    }
    st->next = db->stmts;
    if (db->stmts)
        db->stmts->prev = st;
    db->stmts = st;
    return st;
}

static void clear_result(struct sqldb_stmt *st)
{
    PQclear(st->res);
    st->res = NULL;
    st->row = -1;
    st->nrows = 0;
}

static void clear_param(struct pg_param *p)
{
    free(p->own);
    memset(p, 0, sizeof *p);
}

void sqldb_finalize(struct sqldb_stmt *st)
{
    if (!st)
        return;
    if (st->prev)
        st->prev->next = st->next;
    else
        st->db->stmts = st->next;
    if (st->next)
        st->next->prev = st->prev;
    if (st->lite)
        sqlite3_finalize(st->lite);
    clear_result(st);
    for (int i = 0; i < st->nparams; i++)
        clear_param(&st->p[i]);
    free(st->p);
    free(st->sql);
    free(st);
}

/* lite_rebind - binding restarts the statement, as on PostgreSQL */
static void lite_rebind(struct sqldb_stmt *st)
{
    sqlite3_reset(st->lite);
    st->done = false;
}

void sqldb_reset(struct sqldb_stmt *st)
{
    if (st->lite)
        lite_rebind(st);
    else
        clear_result(st);
}

const char *sqldb_sql(struct sqldb_stmt *st)
{
    return st->lite ? sqlite3_sql(st->lite) : st->sql;
}

void sqldb_clear_bindings(struct sqldb_stmt *st)
{
    if (st->lite) {
        sqlite3_clear_bindings(st->lite);
        return;
    }
    for (int i = 0; i < st->nparams; i++)
        clear_param(&st->p[i]);
}

/* param - the i-th parameter's slot, emptied; NULL when out of range */
static struct pg_param *param(struct sqldb_stmt *st, int i)
{
    if (i < 1 || i > st->nparams) /* not in the statement: ignored, as SQLite does */
        return NULL;
    clear_result(st);
    clear_param(&st->p[i - 1]);
    return &st->p[i - 1];
}

void sqldb_bind_int64(struct sqldb_stmt *st, int i, int64_t v)
{
    if (st->lite) {
        lite_rebind(st);
        sqlite3_bind_int64(st->lite, i, v);
        return;
    }
    struct pg_param *p = param(st, i);
    if (!p)
        return;
    snprintf(p->num, sizeof p->num, "%lld", (long long)v);
    p->val = p->num;
    p->type = PG_INT8OID;
}

void sqldb_bind_double(struct sqldb_stmt *st, int i, double v)
{
    if (st->lite) {
        lite_rebind(st);
        sqlite3_bind_double(st->lite, i, v);
        return;
    }
    struct pg_param *p = param(st, i);
    if (!p)
        return;
    snprintf(p->num, sizeof p->num, "%.17g", v);
    p->val = p->num;
    p->type = PG_FLOAT8OID;
}

void sqldb_bind_text(struct sqldb_stmt *st, int i, const char *text, int len)
{
    if (st->lite) {
        lite_rebind(st);
        sqlite3_bind_text(st->lite, i, text, len, SQLITE_STATIC);
        return;
    }
    struct pg_param *p = param(st, i);
    if (!p || !text)
        return;
    if (len >= 0) {
        p->own = xstrndup(text, (size_t)len);
        p->val = p->own;
    } else {
        p->val = text;
    }
}

void sqldb_bind_null(struct sqldb_stmt *st, int i)
{
    if (st->lite) {
        lite_rebind(st);
        sqlite3_bind_null(st->lite, i);
        return;
    }
    param(st, i);
}

/* cache_name - the server-side name of (types, sql), prepared now when
 * new; NULL: run it unnamed (cache full) or -1 via *failed */
static const char *cache_name(struct sqldb_stmt *st, const unsigned int *types, bool *failed)
{
    struct sqldb *db = st->db;
    struct buf k;
    buf_init(&k, strlen(st->sql) + (size_t)st->nparams * 12 + 2); /* a cap */
    for (int i = 0; i < st->nparams; i++)
        buf_printf(&k, "%u,", types[i]);
    buf_printf(&k, "|%s", st->sql);
    const char *key = buf_str(&k);
    unsigned long h = 5381;
    for (const char *c = key; *c; c++)
        h = h * 33 + (unsigned char)*c;
    struct pg_cached **slot = &db->cache[h % CACHE_BUCKETS];
    for (struct pg_cached *e = *slot; e; e = e->next)
        if (strcmp(e->key, key) == 0) {
            buf_cleanup(&k);
            return e->name;
        }
    if (db->ncached >= CACHE_MAX) {
        buf_cleanup(&k);
        return NULL;
    }
    struct pg_cached *e = xcalloc(1, sizeof *e);
    snprintf(e->name, sizeof e->name, "sq%llu", ++db->next_name);
    PGresult *r = PQprepare(db->pg, e->name, st->sql, st->nparams, (const Oid *)types);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        pg_result_err(db, r);
        PQclear(r);
        free(e);
        buf_cleanup(&k);
        *failed = true;
        return NULL;
    }
    PQclear(r);
    e->key = xstrdup(key);
    buf_cleanup(&k);
    e->next = *slot;
    *slot = e;
    db->ncached++;
    return e->name;
}

/* pg_execute - run the statement with its bindings; 0 or -1 (logged) */
static int pg_execute(struct sqldb_stmt *st)
{
    struct sqldb *db = st->db;
    size_t n = (size_t)st->nparams;
    const char **vals = n ? xcalloc(n, sizeof *vals) : NULL;
    unsigned int *types = n ? xcalloc(n, sizeof *types) : NULL;
    for (size_t i = 0; i < n; i++) {
        vals[i] = st->p[i].val;
        types[i] = st->p[i].type;
    }
    bool failed = !revive(db);
    if (failed)
        snprintf(db->err, sizeof db->err, "the database is unreachable");
    const char *name = failed ? NULL : cache_name(st, types, &failed);
    PGresult *r = NULL;
    if (!failed)
        r = name ? PQexecPrepared(db->pg, name, st->nparams, vals, NULL, NULL, 0)
                 : PQexecParams(db->pg, st->sql, st->nparams, (const Oid *)types, vals, NULL, NULL,
                                0);
    free(vals);
    free(types);
    ExecStatusType t = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (failed || (t != PGRES_TUPLES_OK && t != PGRES_COMMAND_OK)) {
        if (!failed)
            pg_result_err(db, r);
        PQclear(r);
        log_error("sql: %s (in: %.80s)", db->err, st->sql);
        return -1;
    }
    const char *cmd = PQcmdStatus(r);
    if (strncmp(cmd, "INSERT", 6) == 0 || strncmp(cmd, "UPDATE", 6) == 0 ||
        strncmp(cmd, "DELETE", 6) == 0 || strncmp(cmd, "MERGE", 5) == 0)
        db->changes = strtoll(PQcmdTuples(r), NULL, 10);
    st->res = r;
    st->nrows = t == PGRES_TUPLES_OK ? PQntuples(r) : 0;
    st->row = -1;
    return 0;
}

int sqldb_step(struct sqldb_stmt *st)
{
    if (st->lite) {
        if (st->done)
            return SQLDB_DONE;
        int rc = sqlite3_step(st->lite);
        if (rc == SQLITE_ROW)
            return SQLDB_ROW;
        st->done = rc == SQLITE_DONE;
        if (rc == SQLITE_DONE)
            return SQLDB_DONE;
        log_error("sql: %s", sqlite3_errmsg(st->db->lite));
        return -1;
    }
    if (!st->res && pg_execute(st) != 0)
        return -1;
    if (st->row < st->nrows)
        st->row++;
    return st->row < st->nrows ? SQLDB_ROW : SQLDB_DONE;
}

int sqldb_run(struct sqldb_stmt *st)
{
    return sqldb_step(st) < 0 ? -1 : 0;
}

/* ---- columns ------------------------------------------------------------- */

static bool pg_has(struct sqldb_stmt *st, int col)
{
    return st->res && st->row >= 0 && st->row < st->nrows && col >= 0 && col < PQnfields(st->res);
}

int sqldb_column_count(struct sqldb_stmt *st)
{
    if (st->lite)
        return sqlite3_column_count(st->lite);
    return st->res ? PQnfields(st->res) : 0;
}

bool sqldb_column_null(struct sqldb_stmt *st, int col)
{
    if (st->lite)
        return sqlite3_column_type(st->lite, col) == SQLITE_NULL;
    return !pg_has(st, col) || PQgetisnull(st->res, st->row, col);
}

const char *sqldb_column_text(struct sqldb_stmt *st, int col)
{
    if (st->lite)
        return (const char *)sqlite3_column_text(st->lite, col);
    return sqldb_column_null(st, col) ? NULL : PQgetvalue(st->res, st->row, col);
}

int64_t sqldb_column_int64(struct sqldb_stmt *st, int col)
{
    if (st->lite)
        return sqlite3_column_int64(st->lite, col);
    const char *v = sqldb_column_text(st, col);
    if (!v)
        return 0;
    if (v[0] == 't' && !v[1])
        return 1;
    if (v[0] == 'f' && !v[1])
        return 0;
    if (strpbrk(v, ".eE")) /* numeric or float text */
        return (int64_t)strtod(v, NULL);
    return strtoll(v, NULL, 10);
}

double sqldb_column_double(struct sqldb_stmt *st, int col)
{
    if (st->lite)
        return sqlite3_column_double(st->lite, col);
    const char *v = sqldb_column_text(st, col);
    return v ? strtod(v, NULL) : 0.0;
}

/* ---- migrations ------------------------------------------------------------ */

/* pg_version - the schema version in schema_version (made at 0) */
static int pg_version(struct sqldb *db, int64_t *v)
{
    if (sqldb_exec(db, "CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL);"
                       " INSERT INTO schema_version SELECT 0"
                       " WHERE NOT EXISTS (SELECT 1 FROM schema_version)") != 0)
        return -1;
    struct sqldb_stmt *st = sqldb_prepare(db, "SELECT max(version) FROM schema_version");
    int rc = st && sqldb_step(st) == SQLDB_ROW ? 0 : -1;
    if (rc == 0)
        *v = sqldb_column_int64(st, 0);
    sqldb_finalize(st);
    return rc;
}

int sqldb_foreign_schema(struct sqldb *db, const char *table, const char *service, char *errbuf,
                         size_t errlen)
{
    if (db->engine == SQLDB_SQLITE)
        return 0;
    struct sqldb_stmt *st = sqldb_prepare(db, "SELECT to_regclass(?) IS NOT NULL");
    int found = -1;
    if (st) {
        sqldb_bind_text(st, 1, table, -1);
        if (sqldb_step(st) == SQLDB_ROW)
            found = sqldb_column_int64(st, 0) != 0;
        sqldb_finalize(st);
    }
    if (found < 0)
        errbuf_set(errbuf, errlen, "DATABASE_URL: cannot read the schema: %s", db->err);
    else if (found)
        errbuf_set(errbuf, errlen,
                   "DATABASE_URL: this database holds %s's tables; give each service its own "
                   "database",
                   service);
    return found ? -1 : 0;
}

int sqldb_migrate(struct sqldb *db, const char *const *migrations, size_t n, char *errbuf,
                  size_t errlen)
{
    if (db->engine == SQLDB_SQLITE)
        return db_migrate(db->lite, migrations, n, errbuf, errlen);
    for (;;) {
        int64_t v = 0;
        char lock[96];
        snprintf(lock, sizeof lock, "BEGIN; SELECT pg_advisory_xact_lock(%lld)",
                 (long long)MIGRATE_LOCK_KEY);
        if (sqldb_exec(db, lock) != 0 || pg_version(db, &v) != 0) {
            errbuf_set(errbuf, errlen, "schema version: %s", db->err);
            sqldb_rollback(db);
            return -1;
        }
        if (v > (int64_t)n) {
            sqldb_rollback(db);
            errbuf_set(errbuf, errlen,
                       "database schema version %lld is newer than this program's (%zu)",
                       (long long)v, n);
            return -1;
        }
        if (v == (int64_t)n) {
            if (sqldb_commit(db) == 0)
                return 0;
            errbuf_set(errbuf, errlen, "schema version: %s", db->err);
            return -1;
        }
        char bump[64];
        snprintf(bump, sizeof bump, "UPDATE schema_version SET version = %lld", (long long)v + 1);
        if (sqldb_exec(db, migrations[v]) != 0 || sqldb_exec(db, bump) != 0 ||
            sqldb_commit(db) != 0) {
            errbuf_set(errbuf, errlen, "migration %lld: %s", (long long)v + 1, db->err);
            sqldb_rollback(db);
            return -1;
        }
        log_info("database migrated to schema version %lld", (long long)v + 1);
    }
}
