/* upload_s3.h - the S3 calls of the upload store over libcurl, SigV4
 * header-signed (sigv4.h), path-style URLs ENDPOINT/bucket/key, TLS
 * verified (S3_CA_FILE or the system store). Any thread; each call uses
 * its own curl handle. Error messages never contain the secret. */
#ifndef UPLOAD_S3_H
#define UPLOAD_S3_H

#include <stddef.h>

struct upload_config;
struct upload_part_ref;

/* s3_global_init / s3_global_cleanup - libcurl's, main thread */
int s3_global_init(char *errbuf, size_t errlen);
void s3_global_cleanup(void);

/* s3_create - CreateMultipartUpload of key: *upload_id (caller frees). 0 or -1 */
int s3_create(const struct upload_config *c, const char *key, char **upload_id, char *errbuf,
              size_t errlen);
/* s3_part_url - the presigned UploadPart URL (caller frees) */
char *s3_part_url(const struct upload_config *c, const char *key, const char *upload_id, int part,
                  int ttl_s);
/* s3_complete - CompleteMultipartUpload: 0, 400 (S3 refused the parts:
 * its message in errbuf), or 503 */
int s3_complete(const struct upload_config *c, const char *key, const char *upload_id,
                const struct upload_part_ref *p, size_t n, char *errbuf, size_t errlen);
/* s3_abort - AbortMultipartUpload: 0 or -1 */
int s3_abort(const struct upload_config *c, const char *key, const char *upload_id, char *errbuf,
             size_t errlen);
/* s3_get - GetObject streamed to fn (non-zero stops: returned). 0, the stop code, or -1 */
int s3_get(const struct upload_config *c, const char *key,
           int (*fn)(void *arg, const char *data, size_t len), void *arg, char *errbuf,
           size_t errlen);

/* s3_put - PutObject of len bytes at body as key (the archiver's files):
 * 0 or -1 */
int s3_put(const struct upload_config *c, const char *key, const char *body, size_t len,
           const char *content_type, char *errbuf, size_t errlen);

#endif
