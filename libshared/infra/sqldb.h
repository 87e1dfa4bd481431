/* sqldb.h - one SQL interface over SQLite and PostgreSQL (libpq), so a
 * store's statements are written once and run on either engine.
 *
 * The calls mirror SQLite's prepare/bind/step/column/reset cycle, which the
 * stores already use. SQL is written in the subset both engines accept
 * (ON CONFLICT, RETURNING, COALESCE, CASE; booleans as 0/1 integers;
 * times as integer milliseconds bound from C) with SQLite's parameter
 * forms ? and ?N. On PostgreSQL sqldb_pg_sql() rewrites the text once:
 * ?N and ? become $N, and COLLATE NOCASE is dropped (the PostgreSQL
 * schemas declare those columns citext), and so is SQLite's planner hint
 * INDEXED BY. What differs beyond that (FOR
 * UPDATE SKIP LOCKED, JSON operators, DDL) is chosen by the caller with
 * sqldb_engine().
 *
 * PostgreSQL statements are prepared on the server once per connection and
 * SQL text (a cache keyed by text and parameter types), so a statement
 * prepared and finalized on every call costs one round trip, not three.
 * Results come whole (PQexecPrepared): keep result sets bounded (LIMIT,
 * keyset paging), as the stores do.
 *
 * A connection belongs to one thread at a time (the caller serialises).
 * Bound text is borrowed: it must stay valid until the statement is
 * stepped (SQLite's SQLITE_STATIC). A column's text is valid until the
 * next step, reset or finalize of its statement.
 *
 * Owns: the connection (sqldb_close), each statement (sqldb_finalize, or
 * sqldb_close with the connection's).
 * Errors are logged once, with the engine's message (never a bound value).
 */
#ifndef SQLDB_H
#define SQLDB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sqlite3 sqlite3;

enum sqldb_engine { SQLDB_SQLITE = 1, SQLDB_POSTGRES = 2 };
/* sqldb_step's answers (-1: error) */
enum { SQLDB_DONE = 0, SQLDB_ROW = 1 };

struct sqldb;
struct sqldb_stmt;

/* sqldb_is_url - target names a PostgreSQL database (postgres:// or
 * postgresql://); anything else is a SQLite path */
bool sqldb_is_url(const char *target);

/* sqldb_url_redacted - url without its password, for log lines */
void sqldb_url_redacted(const char *url, char *buf, size_t len);

/* sqldb_open_pg - connect to url. Without sslmode in the URL, a host other
 * than loopback or a Unix socket gets sslmode=verify-full (certificate and
 * host name checked); sessions run in UTC with client messages at warning.
 * NULL with a message (never the password) on failure. */
struct sqldb *sqldb_open_pg(const char *url, char *errbuf, size_t errlen);
/* sqldb_custom_plans - (PostgreSQL) plan each execution of a cached
 * statement with its values, never a generic plan: for reads whose best
 * plan depends on them (a time range's width); no-op on SQLite */
void sqldb_custom_plans(struct sqldb *db);
/* sqldb_wrap_sqlite - a sqldb over an open SQLite connection, which the
 * caller keeps owning (sqldb_close does not close it) */
struct sqldb *sqldb_wrap_sqlite(sqlite3 *db);
/* sqldb_close - finalize the connection's statements, then close
 * (PostgreSQL) or unwrap (SQLite: close it after this); NULL no-op */
void sqldb_close(struct sqldb *db);

enum sqldb_engine sqldb_engine(const struct sqldb *db);
/* sqldb_sqlite - the wrapped SQLite connection, NULL on PostgreSQL */
sqlite3 *sqldb_sqlite(struct sqldb *db);
/* sqldb_ok - the connection is usable (PostgreSQL: not broken; it is reset
 * once when it is) */
bool sqldb_ok(struct sqldb *db);

/* sqldb_exec - fixed SQL without parameters, several statements allowed;
 * 0 or -1 (logged) */
int sqldb_exec(struct sqldb *db, const char *sql);
/* sqldb_begin - a write transaction: BEGIN IMMEDIATE on SQLite (the
 * write lock now), BEGIN on PostgreSQL */
int sqldb_begin(struct sqldb *db);
int sqldb_commit(struct sqldb *db);
/* sqldb_rollback - safe when no transaction is open */
void sqldb_rollback(struct sqldb *db);

/* sqldb_prepare - a statement of sql, or NULL (logged) */
struct sqldb_stmt *sqldb_prepare(struct sqldb *db, const char *sql);
void sqldb_finalize(struct sqldb_stmt *st);
/* sqldb_reset - ready to step again from the start; bindings are kept */
void sqldb_reset(struct sqldb_stmt *st);
void sqldb_clear_bindings(struct sqldb_stmt *st);
/* sqldb_sql - the statement's SQL as the engine runs it (for plans in tests) */
const char *sqldb_sql(struct sqldb_stmt *st);

/* binding: i from 1; text NULL binds NULL; len -1: NUL-terminated. A
 * binding restarts the statement (an implicit sqldb_reset). */
void sqldb_bind_int64(struct sqldb_stmt *st, int i, int64_t v);
void sqldb_bind_double(struct sqldb_stmt *st, int i, double v);
void sqldb_bind_text(struct sqldb_stmt *st, int i, const char *text, int len);
void sqldb_bind_null(struct sqldb_stmt *st, int i);

/* sqldb_step - SQLDB_ROW with a row to read, SQLDB_DONE at the end (and
 * on every step after it until a reset), -1 on error (logged; on
 * PostgreSQL the transaction is then aborted: roll back). sqldb_changes
 * counts a write once it is done. */
int sqldb_step(struct sqldb_stmt *st);
/* sqldb_run - step a write or single-row read: 0 (ROW or DONE) or -1 */
int sqldb_run(struct sqldb_stmt *st);

int sqldb_column_count(struct sqldb_stmt *st);
bool sqldb_column_null(struct sqldb_stmt *st, int col);
/* 0 for NULL; a PostgreSQL boolean reads 1 or 0 */
int64_t sqldb_column_int64(struct sqldb_stmt *st, int col);
double sqldb_column_double(struct sqldb_stmt *st, int col);
/* NULL for NULL */
const char *sqldb_column_text(struct sqldb_stmt *st, int col);

/* sqldb_changes - rows changed by the connection's last write statement */
int64_t sqldb_changes(struct sqldb *db);
/* sqldb_errmsg - the last error's text (engine's wording) */
const char *sqldb_errmsg(struct sqldb *db);
/* sqldb_unique_violation - the last error was a UNIQUE/PRIMARY KEY conflict */
bool sqldb_unique_violation(struct sqldb *db);

/* sqldb_migrate - migrations[i] brings the schema from version i to i+1;
 * runs the missing ones, each in one transaction with the version bump.
 * SQLite keeps the version in user_version; PostgreSQL in the table
 * schema_version, under an advisory lock so instances starting together
 * migrate once. A database newer than the code is an error. */
int sqldb_migrate(struct sqldb *db, const char *const *migrations, size_t n, char *errbuf,
                  size_t errlen);

/* sqldb_foreign_schema - 0 unless the PostgreSQL database holds table
 * (another service's: both count their versions in schema_version, so
 * sharing one database would mix their migrations): then -1 with a
 * message naming service. 0 on SQLite. */
int sqldb_foreign_schema(struct sqldb *db, const char *table, const char *service, char *errbuf,
                         size_t errlen);

/* sqldb_pg_sql - sql with SQLite's parameters as $N, COLLATE NOCASE and
 * INDEXED BY name dropped (outside quotes and comments); *nparams the highest $N.
 * Heap string, caller frees. Exposed for tests. */
char *sqldb_pg_sql(const char *sql, int *nparams);

#endif
