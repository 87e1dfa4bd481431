/* sigv4.h - AWS Signature Version 4 for S3 (header and query-string
 * authentication), as the S3 API reference describes it: canonical
 * request, string to sign, signing key. Pure functions (OpenSSL's HMAC
 * and SHA-256), any thread. Every returned string is the caller's to
 * free; the secret is never copied into a returned string.
 */
#ifndef SIGV4_H
#define SIGV4_H

#include <stdbool.h>
#include <stddef.h>

/* credentials and scope; borrowed */
struct sigv4_creds {
    const char *access_key, *secret_key, *region, *service; /* service: "s3" */
};

/* a query parameter or a header, unencoded; borrowed */
struct sigv4_param {
    const char *key, *value;
};

#define SIGV4_UNSIGNED "UNSIGNED-PAYLOAD"

/* sigv4_uri_encode - RFC 3986 percent-encoding as SigV4 wants it
 * (unreserved kept, hex in upper case); '/' kept when keep_slash (a path) */
char *sigv4_uri_encode(const char *s, bool keep_slash);
/* sigv4_canonical_query - the parameters encoded, sorted by key (then
 * value) and joined with '&' */
char *sigv4_canonical_query(const struct sigv4_param *p, size_t n);
/* sigv4_sha256_hex - hex SHA-256 of data[0..len) into out[65] */
void sigv4_sha256_hex(const void *data, size_t len, char out[65]);
/* sigv4_amz_date - unix time t as 20130524T000000Z into out[17] */
void sigv4_amz_date(long long t, char out[17]);

/* sigv4_presign - the query string of a presigned URL (the parameters p,
 * the X-Amz-* ones and X-Amz-Signature last) for method on host
 * (host[:port] as the client will send it) and path (unencoded, starting
 * with '/'), valid expires seconds from amz_date. Only host is signed and
 * the payload is UNSIGNED-PAYLOAD. */
char *sigv4_presign(const struct sigv4_creds *c, const char *method, const char *host,
                    const char *path, const struct sigv4_param *p, size_t n, const char *amz_date,
                    long expires);

/* sigv4_authorization - the Authorization header's value for a request
 * with the query parameters q and the headers h (host, x-amz-date and
 * x-amz-content-sha256 among them; names any case, values trimmed by the
 * caller), every header given signed. payload_hash: the body's hex
 * SHA-256 or SIGV4_UNSIGNED. canonical_hash (may be NULL) receives the
 * canonical request's hex SHA-256 (for tests). */
char *sigv4_authorization(const struct sigv4_creds *c, const char *method, const char *path,
                          const struct sigv4_param *q, size_t nq, const struct sigv4_param *h,
                          size_t nh, const char *payload_hash, const char *amz_date,
                          char canonical_hash[65]);

#endif
