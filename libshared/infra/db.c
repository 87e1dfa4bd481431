/* db.c - SQLite open/migrate/transaction helpers. A connection is used by
 * one thread at a time; the caller owns it. Database files are private to
 * the service's user (0600): they hold names and addresses. */
#include "db.h"
#include "errbuf.h"
#include "log.h"
#include "xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int db_mkdirs_for(const char *path)
{
    char *dup = xstrdup(path);
    int rc = 0;
    for (char *p = dup + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(dup, 0750) != 0 && errno != EEXIST) {
            rc = -1;
            break;
        }
        *p = '/';
    }
    free(dup);
    return rc;
}

/* tighten - a file open to group or others gets its owner's bits only.
 * By path (stat, chmod), never by an fd: closing any fd of a file drops
 * every POSIX lock this process holds on it, SQLite's included. */
static void tighten(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) || !(st.st_mode & 077))
        return;
    if (chmod(path, st.st_mode & 0700) == 0)
        log_warn("db: %s was open to group or others (mode %03o): now %03o", path,
                 (unsigned)(st.st_mode & 0777), (unsigned)(st.st_mode & 0700));
    else
        log_warn("db: %s is open to group or others (mode %03o) and cannot be changed: %s", path,
                 (unsigned)(st.st_mode & 0777), strerror(errno));
}

/* db_private - a new database file is created 0600 before SQLite opens it:
 * SQLite gives the files it makes beside it (-wal, -shm, -journal) the
 * database file's mode. A file left open to others (made by an older
 * version, or by hand) is tightened, with its -wal and -shm. */
static int db_private(const char *path, char *errbuf, size_t errlen)
{
    if (!*path || strcmp(path, ":memory:") == 0)
        return 0;
    /* O_EXCL: only a file nobody has open yet is opened (and closed) here */
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, 0600);
    if (fd >= 0) {
        close(fd);
    } else if (errno != EEXIST) {
        errbuf_set(errbuf, errlen, "cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    static const char *const sides[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < sizeof sides / sizeof sides[0]; i++) {
        char *file = xasprintf("%s%s", path, sides[i]);
        tighten(file);
        free(file);
    }
    return 0;
}

int db_open(const char *path, sqlite3 **out, char *errbuf, size_t errlen)
{
    sqlite3 *db = NULL;
    *out = NULL;
    if (db_mkdirs_for(path) != 0) {
        errbuf_set(errbuf, errlen, "cannot create the directory of %s: %s", path, strerror(errno));
        return -1;
    }
    if (db_private(path, errbuf, errlen) != 0)
        return -1;
    int rc = sqlite3_open_v2(
        path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        errbuf_set(errbuf, errlen, "cannot open %s: %s", path,
                   db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        sqlite3_close(db);
        return -1;
    }
    sqlite3_busy_timeout(db, 5000);
    static const char *const pragmas[] = {
        "PRAGMA journal_mode=WAL",
        "PRAGMA synchronous=FULL",
        "PRAGMA foreign_keys=ON",
    };
    for (size_t i = 0; i < sizeof pragmas / sizeof pragmas[0]; i++) {
        char *err = NULL;
        if (sqlite3_exec(db, pragmas[i], NULL, NULL, &err) != SQLITE_OK) {
            errbuf_set(errbuf, errlen, "%s on %s: %s", pragmas[i], path, err ? err : "?");
            sqlite3_free(err);
            sqlite3_close(db);
            return -1;
        }
    }
    *out = db;
    return 0;
}

void db_close(sqlite3 *db)
{
    if (!db)
        return;
    sqlite3_stmt *st;
    while ((st = sqlite3_next_stmt(db, NULL)) != NULL)
        sqlite3_finalize(st);
    sqlite3_close(db);
}

int db_exec(sqlite3 *db, const char *sql)
{
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
        log_error("db: exec failed: %s", err ? err : sqlite3_errmsg(db));
        sqlite3_free(err);
        return -1;
    }
    return 0;
}

int db_begin(sqlite3 *db)
{
    return db_exec(db, "BEGIN IMMEDIATE");
}

int db_commit(sqlite3 *db)
{
    return db_exec(db, "COMMIT");
}

void db_rollback(sqlite3 *db)
{
    if (!sqlite3_get_autocommit(db))
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
}

sqlite3_stmt *db_prepare(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        log_error("db: prepare failed: %s", sqlite3_errmsg(db));
        return NULL;
    }
    return st;
}

int db_step(sqlite3 *db, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE || rc == SQLITE_ROW)
        return 0;
    log_error("db: %s", sqlite3_errmsg(db));
    return -1;
}

static int user_version(sqlite3 *db, long *out)
{
    sqlite3_stmt *st = db_prepare(db, "PRAGMA user_version");
    if (!st)
        return -1;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : -1;
}

int db_migrate(sqlite3 *db, const char *const *migrations, size_t n, char *errbuf, size_t errlen)
{
    long v = 0;
    if (user_version(db, &v) != 0) {
        errbuf_set(errbuf, errlen, "cannot read the schema version: %s", sqlite3_errmsg(db));
        return -1;
    }
    if (v < 0 || (size_t)v > n) {
        errbuf_set(errbuf, errlen, "database schema version %ld is newer than this program (%zu)",
                   v, n);
        return -1;
    }
    for (size_t i = (size_t)v; i < n; i++) {
        char *err = NULL;
        char bump[64];
        snprintf(bump, sizeof bump, "PRAGMA user_version=%zu", i + 1);
        if (db_begin(db) != 0 || sqlite3_exec(db, migrations[i], NULL, NULL, &err) != SQLITE_OK ||
            sqlite3_exec(db, bump, NULL, NULL, &err) != SQLITE_OK || db_commit(db) != 0) {
            errbuf_set(errbuf, errlen, "migration %zu failed: %s", i + 1,
                       err ? err : sqlite3_errmsg(db));
            sqlite3_free(err);
            db_rollback(db);
            return -1;
        }
        log_info("db: migrated schema to version %zu", i + 1);
    }
    return 0;
}

int db_open_store(const char *path, const char *const *migrations, size_t n, db_setup_fn setup,
                  sqlite3 **writer, sqlite3 **reader, char *errbuf, size_t errlen)
{
    *writer = *reader = NULL;
    if (db_open(path, writer, errbuf, errlen) != 0)
        return -1;
    if ((setup && setup(*writer, errbuf, errlen) != 0) ||
        db_migrate(*writer, migrations, n, errbuf, errlen) != 0 ||
        db_open(path, reader, errbuf, errlen) != 0) {
        db_close(*writer);
        *writer = NULL;
        return -1;
    }
    return 0;
}
