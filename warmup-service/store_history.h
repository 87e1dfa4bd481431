/* store_history.h - the copies' history and their archives (DESIGN 9.6):
 * schema (migration 10), GET /history's keyset reads, the archiver's scan
 * of old copies in a final state and its commit (archives row + delete in
 * ONE transaction), GET /archives' listing. SQLite backend in
 * store_history.c; plain C structs, no SQL or JSON outside it.
 *
 * Every result says who frees it; any thread may call any function (the
 * reads take the store's reader, the commit its writer). */
#ifndef STORE_HISTORY_H
#define STORE_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;

/* 10: one index per /history filter, each ending in id so a filter's
 * newest-first page is an index range (id is the rowid: SQLite stores it
 * in every index anyway). deliveries is the send queue, so each index is
 * a cost on every fan-out row and outcome: email_id and state grow at
 * their right end as copies are made and sent; recipient is the one
 * random insert per fan-out row; updated_at only holds attempted copies
 * (the fan-out adds none; an outcome appends at the current time) and is
 * also the archiver's scan order. archives lists the archive files. */
#define STORE_HISTORY_SCHEMA_SQL                                                                   \
    "CREATE INDEX deliveries_email ON deliveries(email_id, id);"                                   \
    "CREATE INDEX deliveries_recipient ON deliveries(recipient COLLATE NOCASE, id);"               \
    "CREATE INDEX deliveries_state ON deliveries(state, id);"                                      \
    "CREATE INDEX deliveries_updated ON deliveries(updated_at, id) WHERE updated_at IS NOT NULL;"  \
    "CREATE TABLE archives (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"                    \
    " store TEXT NOT NULL, first_id INTEGER NOT NULL, last_id INTEGER NOT NULL,"                   \
    " n_rows INTEGER NOT NULL, n_bytes INTEGER NOT NULL, min_updated_at INTEGER NOT NULL,"         \
    " max_updated_at INTEGER NOT NULL, created_at INTEGER NOT NULL);"

/* the /history filters; strings borrowed for the call */
struct history_query {
    const char *recipient;  /* NULL: any; else exact, ignoring case */
    int64_t email_id;       /* 0: any */
    int state;              /* -1: any; else a deliveries.state (store_int.h) */
    bool has_from, has_to;  /* updated_at in [from_ms, to_ms) */
    int64_t from_ms, to_ms; /* with has_from / has_to */
    int64_t before_id;      /* keyset: only ids below it; 0: from the newest */
    int64_t limit;
};

/* one copy as /history and the archive files show it; strings heap */
struct history_row {
    int64_t id, email_id;
    char *message_id; /* the copy's own (msgid.h) */
    char *recipient;
    int state;
    int attempts;
    bool has_code; /* last_code set (an SMTP reply was had) */
    int last_code;
    char *last_reply;   /* NULL: none */
    int64_t updated_at; /* wall ms; 0: never attempted */
    int64_t due_at;     /* the next attempt of a retry (wall ms) */
};
void history_row_cleanup(struct history_row *r);
void store_history_free(struct history_row *v, size_t n);

/* store_history - up to q->limit copies matching q, newest (highest id)
 * first, into a new array. 0: caller frees with store_history_free; -1
 * (*out NULL, *n 0). */
int store_history(struct store *s, const struct history_query *q, struct history_row **out,
                  size_t *n);

/* an archive file's summary, as stored in archives */
struct archive_entry {
    int64_t id;
    char *name;                /* file name (local) or object key (s3); heap */
    char *store;               /* "local" or "s3"; heap */
    int64_t first_id, last_id; /* lowest and highest copy id in it */
    int64_t rows, bytes;
    int64_t min_updated_at, max_updated_at, created_at; /* wall ms */
};
void store_archives_free(struct archive_entry *v, size_t n);

/* the copies one archive batch holds: the first and last in (updated_at,
 * id) order bound its delete */
struct archive_span {
    int64_t rows;
    int64_t first_upd, first_id, last_upd, last_id; /* scan order bounds */
    int64_t min_id, max_id;
};

/* store_archive_scan - the copies in a final state (sent, dead,
 * suppressed) updated before cutoff_ms, in (updated_at, id) order, up to
 * max, handed to fn one at a time (row borrowed for the call; non-zero
 * stops: returned). Read in pages under the reader lock, released
 * between pages (fn runs without any store lock: it may write a file).
 * span filled. 0 (span->rows 0: nothing to archive), fn's code, or -1. */
int store_archive_scan(struct store *s, int64_t cutoff_ms, int64_t max,
                       int (*fn)(void *arg, const struct history_row *r), void *arg,
                       struct archive_span *span);

/* store_archive_commit - in ONE transaction: the archives row a (its id
 * ignored) and the delete of the copies span names (final state, updated
 * before cutoff_ms, within the span's bounds). When the delete does not
 * remove exactly span->rows copies (one changed meanwhile: a /reconcile
 * of a dead copy) nothing is written and 1 is returned. 0, 1, or -1. */
int store_archive_commit(struct store *s, int64_t cutoff_ms, const struct archive_span *span,
                         const struct archive_entry *a);

/* store_archive_partitions - PostgreSQL (a no-op on SQLite): the
 * deliveries partitions of this month and the next two made, and each
 * monthly partition whose whole month ended before cutoff_ms and that
 * holds no copy any more dropped (archived: the live table shrinks).
 * *dropped: how many. 0 or -1 (logged). The archiver calls it each pass. */
int store_archive_partitions(struct store *s, int64_t cutoff_ms, int *dropped);

/* store_list_archives - up to limit archives from offset, oldest first,
 * into a new array. 0: caller frees with store_archives_free; -1. */
int store_list_archives(struct store *s, int64_t limit, int64_t offset, struct archive_entry **out,
                        size_t *n);
/* store_archive_known - 1 when an archives row has this name, 0 when
 * none, -1 on error (the archiver's orphan check) */
int store_archive_known(struct store *s, const char *name);

#endif
