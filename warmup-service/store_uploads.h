/* store_uploads.h - the store's uploads, upload_parts, imports and
 * campaign_recipients tables (schema 7), SQLite backend in
 * store_uploads.c. Plain structs, no JSON: the invalid-line list and the
 * attributes are opaque JSON texts built by the importer. Any thread;
 * errors 0 / 1 (not found or refused, where stated) / -1 (logged).
 */
#ifndef STORE_UPLOADS_H
#define STORE_UPLOADS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;

/* an upload; strings heap (upload_row_cleanup) */
struct upload_row {
    char *id;
    int64_t campaign_id;
    char *filename, *content_type, *backend, *s3_upload_id, *object_key;
    char *state; /* open, completed, aborted */
    int64_t size, part_size, expires_ms;
    int nparts;
    char *created_at;
};
void upload_row_cleanup(struct upload_row *u);

/* store_upload_create - a new open upload (u's strings borrowed) */
int store_upload_create(struct store *s, const struct upload_row *u);
/* store_upload_get - 0 (caller cleans *out), 1 unknown, -1 */
int store_upload_get(struct store *s, const char *id, struct upload_row *out);
/* store_upload_latest - the campaign's newest upload: 0, 1 none, -1 */
int store_upload_latest(struct store *s, int64_t campaign_id, struct upload_row *out);
/* store_upload_put_part - a part's size and etag (a new PUT replaces) */
int store_upload_put_part(struct store *s, const char *id, int part, int64_t size,
                          const char *etag);
/* store_upload_etag - the stored etag of a part into out[len]: 0, 1 none, -1 */
int store_upload_etag(struct store *s, const char *id, int part, char *out, size_t len);
/* store_upload_complete - in ONE transaction: the upload open -> completed
 * and a queued import of kind "campaign" reading it (*import_id). 1 when
 * the upload is no longer open or the campaign has an import queued or
 * running (nothing written). */
int store_upload_complete(struct store *s, const char *id, int64_t campaign_id, const char *source,
                          const char *now, int64_t *import_id);
/* store_uploads_stale - up to max ids (heap, caller frees each) of open
 * uploads whose URLs expired before before_ms */
int store_uploads_stale(struct store *s, int64_t before_ms, char **ids, size_t max, size_t *n);
/* store_upload_abort - open -> aborted, its part rows removed; 1 when not open */
int store_upload_abort(struct store *s, const char *id);

/* store_campaign_state - a campaign's state ("draft", ...; caller frees
 * *state) and whether its audience is {"upload":true}: 0, 1 unknown, -1 */
int store_campaign_state(struct store *s, int64_t id, char **state, bool *upload_audience);

/* an import's progress; strings heap (import_row_cleanup) */
struct import_row {
    int64_t id, campaign_id;
    char *kind; /* "campaign" | "users" */
    char *upload_id, *source;
    char *state; /* queued, importing, done, failed */
    int64_t rows, imported, duplicates, n_invalid;
    char *invalid;     /* JSON array text of the first reported lines */
    char *error;       /* NULL unless failed */
    int64_t resume_at; /* the last line of the last committed batch */
    char *created_at, *updated_at;
};
void import_row_cleanup(struct import_row *r);

/* store_import_create - a queued import of kind "users" reading source */
int store_import_create(struct store *s, const char *kind, const char *source, const char *now,
                        int64_t *id);
/* store_import_get - 0 (caller cleans), 1 unknown, -1. kind NULL: any */
int store_import_get(struct store *s, int64_t id, const char *kind, struct import_row *out);
/* store_import_of_upload - the import of an upload: 0, 1 none, -1 */
int store_import_of_upload(struct store *s, const char *upload_id, struct import_row *out);
/* store_import_next - the oldest import queued or importing: 0, 1 none, -1 */
int store_import_next(struct store *s, struct import_row *out);
/* store_import_start - queued -> importing; for a campaign the earlier
 * list is removed in the same transaction. Resumed imports: no-op. */
int store_import_start(struct store *s, int64_t id, const char *now);

/* a recipient of an uploaded list; borrowed */
struct recipient_in {
    const char *address, *name, *domain, *attributes; /* attributes may be NULL */
    int64_t line;
};
/* progress to store with a batch */
struct import_progress {
    int64_t rows, imported, duplicates, n_invalid, resume_at;
    const char *invalid; /* NULL: unchanged */
    const char *now;
};
/* store_import_recipients - ONE transaction: the recipients (an address
 * already in the list is a duplicate: *dups) and the progress p */
int store_import_recipients(struct store *s, int64_t import_id, int64_t campaign_id,
                            const struct recipient_in *v, size_t n, struct import_progress *p,
                            int64_t *dups);
/* store_import_progress - the progress only (users imports commit their
 * users through store_register_batch first) */
int store_import_progress(struct store *s, int64_t import_id, const struct import_progress *p);
/* store_import_finish - state done or failed (error NULL when done) */
int store_import_finish(struct store *s, int64_t import_id, const char *state, const char *error,
                        const struct import_progress *p);

#endif
