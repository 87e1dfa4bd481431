/* archive.h - the archiver (DESIGN 9.6, ARCHIVE_AFTER_DAYS): one
 * background thread that, at start and then every interval, moves the
 * copies in a final state (sent, dead, suppressed) last changed more than
 * N days ago out of the live table into gzip JSON Lines files, one
 * /history object per line (api_history_json), at most batch copies per
 * file, in ARCHIVE_DIR or, with UPLOAD_STORE=s3://bucket/prefix, as
 * objects prefix/archives/<name> of the upload store's bucket.
 *
 * Nothing is lost: a file is complete on disk (fsync'd, renamed into
 * place, its folder synced) or in S3 (the PUT answered 200) before ONE
 * transaction stores its archives row and deletes exactly its copies
 * (store_archive_commit). A crash in between leaves a file without a row:
 * the next pass writes the same name again (it is made of the batch's
 * first copy), and start-up removes local files no row names. Emails'
 * progress counters are not touched: GET /emails/{id} stays exact.
 *
 * Owned by main (archiver_start / archiver_stop); archive_once is the
 * pass itself, for the thread and the unit test. */
#ifndef ARCHIVE_H
#define ARCHIVE_H

#include <stddef.h>
#include <stdint.h>

struct store;
struct upload_config;

struct archive_config {
    struct store *store;
    int after_days;                 /* ARCHIVE_AFTER_DAYS; 0: never (no thread) */
    const char *dir;                /* ARCHIVE_DIR: the files, or the S3 files' spool */
    const struct upload_config *s3; /* NULL: local files; else the S3 store */
    int64_t batch;                  /* ARCHIVE_BATCH: copies per file */
    int interval_s;                 /* ARCHIVE_INTERVAL: seconds between passes */
};

/* archive_once - one pass at now_ms: files of up to batch copies until no
 * copy is due. *files and *rows count what was moved. 0, or -1 with a
 * message (what was committed before stays). */
int archive_once(const struct archive_config *c, int64_t now_ms, int64_t *files, int64_t *rows,
                 char *errbuf, size_t errlen);

/* archive_clean - remove the local files of dir that no archives row
 * names (a crash between a file and its commit), and spool leftovers */
void archive_clean(const struct archive_config *c);

struct archiver;
/* archiver_start - make dir (0700), clean it, start the thread (c is
 * copied; its pointers must outlive the archiver). NULL when after_days
 * is 0 (nothing to do, not an error: *errbuf "") or on failure. */
struct archiver *archiver_start(const struct archive_config *c, char *errbuf, size_t errlen);
/* archiver_stop - end the pass between two files, join; NULL no-op */
void archiver_stop(struct archiver *a);

#endif
