/* db.h - SQLite helpers: open in WAL mode, versioned migrations,
 * transactions with retry on busy.
 *
 * A connection belongs to one thread at a time (the caller serialises).
 * Several connections on one file are fine (WAL): one writer at a time,
 * others wait up to the busy timeout. SQL is only ever run with bound
 * parameters; db_exec() is for fixed statements without input.
 */
#ifndef DB_H
#define DB_H

#include <sqlite3.h>
#include <stddef.h>

/* db_open - open (creating parent directories and the file, mode 0600;
 * an existing file open to group or others, and its -wal and -shm, are
 * set to their owner's bits with a warning), set
 * journal_mode=WAL, synchronous=FULL (a COMMIT is on disk when it
 * returns), foreign_keys=ON, busy_timeout=5000. *out owned by caller:
 * db_close(). -1 with a message on failure. */
int db_open(const char *path, sqlite3 **out, char *errbuf, size_t errlen);
void db_close(sqlite3 *db);

/* db_migrate - migrations[i] brings the schema from user_version i to
 * i+1; runs the missing ones, each in its own transaction together with
 * the user_version bump. A database newer than the code is an error. */
int db_migrate(sqlite3 *db, const char *const *migrations, size_t n, char *errbuf, size_t errlen);

/* db_setup_fn - prepares the writer before the migrations run (e.g. SQL
 * functions they call); 0, or -1 with a message */
typedef int (*db_setup_fn)(sqlite3 *writer, char *errbuf, size_t errlen);
/* db_open_store - a service store's two connections on one file: the
 * writer (set up by setup when not NULL, then migrated to the latest
 * schema) and a reader for queries that must not wait for a write
 * transaction. Both or neither are returned. */
int db_open_store(const char *path, const char *const *migrations, size_t n, db_setup_fn setup,
                  sqlite3 **writer, sqlite3 **reader, char *errbuf, size_t errlen);

/* db_exec - run fixed SQL (no parameters); 0 or -1 (logged) */
int db_exec(sqlite3 *db, const char *sql);
/* db_begin - BEGIN IMMEDIATE (takes the write lock now, so a later write
 * never fails with SQLITE_BUSY mid-transaction) */
int db_begin(sqlite3 *db);
int db_commit(sqlite3 *db);
/* db_rollback - safe to call when no transaction is open */
void db_rollback(sqlite3 *db);

/* db_prepare - prepare or abort-log; NULL on failure */
sqlite3_stmt *db_prepare(sqlite3 *db, const char *sql);
/* db_step - one sqlite3_step of a write (or a single-row read): 0 on
 * SQLITE_DONE or SQLITE_ROW, else -1 with the error logged. The statement
 * is left as it is (the caller resets or finalizes it). */
int db_step(sqlite3 *db, sqlite3_stmt *st);
/* db_mkdirs_for - create the parent directories of a file path */
int db_mkdirs_for(const char *path);

#endif
