/* upload.h - the upload store of recipient CSVs (DESIGN 9.5,
 * UPLOAD_STORE): presigned multipart uploads, either to the service
 * itself (local: parts PUT to /uploads/{id}/{part}?expires=&sig=, HMAC
 * signed, kept as files under UPLOAD_DIR) or to an S3-compatible bucket
 * (s3: SigV4 presigned UploadPart URLs, upload_s3.c). Also reads a
 * completed upload back for the importer, streamed.
 *
 * Owned by main (uploads_new / uploads_free); any thread may call it:
 * HTTP pool threads (init, parts, complete, abort) and the importer's
 * thread (read). The local key never leaves the process.
 */
#ifndef UPLOAD_H
#define UPLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;
struct upload_row;

enum upload_backend { UPLOAD_LOCAL = 0, UPLOAD_S3 = 1 };

struct upload_config {
    enum upload_backend backend; /* UPLOAD_STORE */
    char *dir;                   /* UPLOAD_DIR: parts, spooled imports, the generated key */
    char *secret;                /* UPLOAD_SECRET; NULL: dir/upload.key, made at first start */
    int64_t max_bytes;           /* UPLOAD_MAX_BYTES */
    int64_t part_size;           /* UPLOAD_PART_SIZE */
    int url_ttl_s;               /* UPLOAD_URL_TTL */
    char *base_url;              /* where local part URLs point (PUBLIC_URL or the bind address) */
    /* s3://bucket/prefix, S3_ENDPOINT, AWS_REGION, AWS_ACCESS_KEY_ID,
     * AWS_SECRET_ACCESS_KEY, S3_CA_FILE */
    char *bucket, *prefix, *endpoint, *region, *access_key, *secret_key, *ca_file;
};

/* upload_config_load - from the environment (main thread, start-up);
 * db_path places UPLOAD_DIR's default, base_url the local part URLs
 * (borrowed, copied). 0, or -1 with one line naming the variable. */
int upload_config_load(struct upload_config *c, const char *db_path, const char *base_url,
                       char *errbuf, size_t errlen);
void upload_config_cleanup(struct upload_config *c);

struct uploads;

/* uploads_new - check UPLOAD_DIR (made 0700), load or make the local key,
 * set up libcurl for s3. NULL with a message. Caller frees: uploads_free. */
struct uploads *uploads_new(const struct upload_config *c, struct store *s, char *errbuf,
                            size_t errlen);
void uploads_free(struct uploads *u);
const struct upload_config *uploads_config(const struct uploads *u);

/* uploads_create - a new upload of size bytes for the campaign: the row
 * stored (S3: CreateMultipartUpload first). *out filled (caller cleans
 * with upload_row_cleanup). 0, or -1 with a message (the store or S3 is
 * down: 503). */
int uploads_create(struct uploads *u, int64_t campaign_id, const char *filename, int64_t size,
                   const char *content_type, struct upload_row *out, char *errbuf, size_t errlen);
/* uploads_part_url - the presigned URL of a part (caller frees) */
char *uploads_part_url(struct uploads *u, const struct upload_row *r, int part);

/* uploads_check_sig - a local part URL's expires and sig are valid now
 * (constant-time comparison) */
bool uploads_check_sig(struct uploads *u, const char *id, int part, const char *expires,
                       const char *sig);

/* a local part being written: begin, write*, commit (or abandon) */
struct upload_part_writer;
struct upload_part_writer *uploads_part_begin(struct uploads *u, const char *id, int part,
                                              char *errbuf, size_t errlen);
int uploads_part_write(struct upload_part_writer *w, const char *data, size_t len);
/* uploads_part_commit - fsync, rename into place, store size and etag
 * (etag[33]: md5 hex); frees w. 0, 1 (the upload closed meanwhile:
 * nothing replaced) or -1. */
int uploads_part_commit(struct upload_part_writer *w, char etag[33]);
/* uploads_part_abandon - remove the temporary file, free w; NULL no-op */
void uploads_part_abandon(struct upload_part_writer *w);

/* uploads_lock / uploads_unlock - hold off local part commits while a
 * complete checks the parts and closes the upload, so the bytes imported
 * are the ones whose ETags were checked */
void uploads_lock(struct uploads *u);
void uploads_unlock(struct uploads *u);

/* a part in a complete request */
struct upload_part_ref {
    int part;
    const char *etag; /* unquoted */
};
/* uploads_finish - complete (S3: CompleteMultipartUpload) after the
 * parts were checked for order; returns 0, 400 with the reason (a part
 * missing or an ETag not matching), or 503. */
int uploads_finish(struct uploads *u, const struct upload_row *r, const struct upload_part_ref *p,
                   size_t n, char *errbuf, size_t errlen);
/* uploads_abort - S3 AbortMultipartUpload, then the upload closed
 * (aborted, its part rows removed) and its local files removed: 0, 1 no
 * longer open, -1 with a message (S3 or the database failed; the upload
 * stays open). */
int uploads_abort(struct uploads *u, const struct upload_row *r, char *errbuf, size_t errlen);
/* uploads_sweep - abort the open uploads whose part URLs expired more
 * than a day ago (their parts would otherwise stay forever); the count */
int uploads_sweep(struct uploads *u);
/* uploads_remove_files - the local parts of an upload (after its import) */
void uploads_remove_files(struct uploads *u, const char *id);

/* uploads_read - stream a completed upload's bytes in order to fn (which
 * returns non-zero to stop: uploads_read then returns it). 0, the stop
 * code, or -1 with a message. */
int uploads_read(struct uploads *u, const struct upload_row *r,
                 int (*fn)(void *arg, const char *data, size_t len), void *arg, char *errbuf,
                 size_t errlen);
/* uploads_read_file - the same for a local file (a spooled import) */
int uploads_read_file(const char *path, int (*fn)(void *arg, const char *data, size_t len),
                      void *arg, char *errbuf, size_t errlen);

#endif
