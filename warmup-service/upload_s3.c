/* upload_s3.c - S3 calls of the upload store (upload_s3.h): multipart
 * create, complete and abort, presigned UploadPart URLs, a streamed GET.
 * Every request is SigV4 header-signed here (sigv4.c, the code the unit
 * test checks against AWS's examples), with x-amz-content-sha256 the
 * body's hash (UNSIGNED-PAYLOAD for the GET). Any thread: one curl
 * handle per call. */
#include "upload_s3.h"
#include "buf.h"
#include "errbuf.h"
#include "log.h"
#include "sigv4.h"
#include "timeutil.h"
#include "upload.h"
#include "xalloc.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S3_REPLY_MAX (1024 * 1024)

int s3_global_init(char *errbuf, size_t errlen)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        errbuf_set(errbuf, errlen, "libcurl: global init failed");
        return -1;
    }
    return 0;
}

void s3_global_cleanup(void)
{
    curl_global_cleanup();
}

static struct sigv4_creds creds(const struct upload_config *c)
{
    struct sigv4_creds k = {c->access_key, c->secret_key, c->region, "s3"};
    return k;
}

/* host_of - the endpoint's host[:port] as curl sends it in Host (a
 * default port dropped) into out[len] */
static void host_of(const struct upload_config *c, char *out, size_t len)
{
    bool https = strncmp(c->endpoint, "https://", 8) == 0;
    const char *h = c->endpoint + (https ? 8 : 7);
    size_t n = strlen(h);
    if ((https && n > 4 && strcmp(h + n - 4, ":443") == 0) ||
        (!https && n > 3 && strcmp(h + n - 3, ":80") == 0))
        n = (size_t)(strrchr(h, ':') - h);
    snprintf(out, len, "%.*s", (int)n, h);
}

struct req {
    const char *method;
    const char *key;
    struct sigv4_param q[3];
    size_t nq;
    const char *body; /* NULL: none */
    size_t body_len;
    const char *ctype; /* the body's Content-Type header line; NULL: XML */
    int (*fn)(void *arg, const char *data, size_t len); /* GET: streamed */
    void *arg;
    int stop;    /* fn's non-zero return */
    long status; /* HTTP status */
    struct buf reply;
};

static size_t on_data(char *p, size_t size, size_t nmemb, void *arg)
{
    struct req *r = arg;
    size_t n = size * nmemb;
    if (r->fn) {
        if (r->status == 0 || r->status / 100 == 2) {
            r->stop = r->fn(r->arg, p, n);
            return r->stop ? 0 : n;
        }
    }
    if (buf_append(&r->reply, p, n) != 0)
        return 0;
    return n;
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *arg)
{
    struct req *r = arg;
    size_t n = size * nmemb;
    if (n > 9 && strncmp(p, "HTTP/", 5) == 0) {
        const char *sp = memchr(p, ' ', n);
        if (sp)
            r->status = strtol(sp + 1, NULL, 10);
    }
    return n;
}

/* perform - one signed request; 0 when it got an answer (r->status), -1 otherwise */
static int perform(const struct upload_config *c, struct req *r, char *errbuf, size_t errlen)
{
    char host[256], date[17], sha[65];
    host_of(c, host, sizeof host);
    sigv4_amz_date(time_now_ms() / 1000, date);
    if (r->body)
        sigv4_sha256_hex(r->body, r->body_len, sha);
    else
        snprintf(sha, sizeof sha, "%s",
                 strcmp(r->method, "GET") == 0
                     ? SIGV4_UNSIGNED
                     : "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    char *path = xasprintf("/%s/%s", c->bucket, r->key);
    struct sigv4_param h[] = {{"host", host}, {"x-amz-content-sha256", sha}, {"x-amz-date", date}};
    struct sigv4_creds k = creds(c);
    char *auth = sigv4_authorization(&k, r->method, path, r->q, r->nq, h, 3, sha, date, NULL);
    char *epath = sigv4_uri_encode(path, true);
    char *query = sigv4_canonical_query(r->q, r->nq);
    char *url = xasprintf("%s%s%s%s", c->endpoint, epath, *query ? "?" : "", query);
    struct curl_slist *hl = NULL;
    char *ha = xasprintf("Authorization: %s", auth);
    char *hs = xasprintf("x-amz-content-sha256: %s", sha);
    char *hd = xasprintf("x-amz-date: %s", date);
    hl = curl_slist_append(hl, ha);
    hl = curl_slist_append(hl, hs);
    hl = curl_slist_append(hl, hd);
    hl = curl_slist_append(hl, "Expect:");
    if (r->body)
        hl = curl_slist_append(hl, r->ctype ? r->ctype : "Content-Type: application/xml");
    buf_init(&r->reply, S3_REPLY_MAX);
    int rc = -1;
    CURL *e = curl_easy_init();
    if (!e) {
        errbuf_set(errbuf, errlen, "S3: libcurl handle");
        goto out;
    }
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r->method);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L); /* a stalled transfer ends */
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    if (c->ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, c->ca_file);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    if (r->body) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
    } else if (strcmp(r->method, "POST") == 0) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
    } else if (strcmp(r->method, "GET") != 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, strcmp(r->method, "HEAD") == 0 ? 1L : 0L);
    }
    CURLcode cc = curl_easy_perform(e);
    if (r->stop) {
        rc = 0;
        goto out;
    }
    if (cc != CURLE_OK) {
        errbuf_set(errbuf, errlen, "S3 %s %s: %s", r->method, c->endpoint, curl_easy_strerror(cc));
        goto out;
    }
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r->status);
    rc = 0;
out:
    curl_easy_cleanup(e);
    curl_slist_free_all(hl);
    free(ha);
    free(hs);
    free(hd);
    free(url);
    free(query);
    free(epath);
    free(auth);
    free(path);
    return rc;
}

/* xml_text - the unescaped text of the first <tag> in xml (caller frees), NULL if none */
static char *xml_text(const char *xml, const char *tag)
{
    if (!xml)
        return NULL;
    char *open = xasprintf("<%s>", tag), *close = xasprintf("</%s>", tag);
    const char *a = strstr(xml, open), *b = a ? strstr(a, close) : NULL;
    char *out = NULL;
    if (a && b) {
        a += strlen(open);
        struct buf o;
        buf_init(&o, S3_REPLY_MAX);
        static const char *const ent[][2] = {
            {"&amp;", "&"}, {"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""}, {"&apos;", "'"}};
        while (a < b) {
            size_t i, done = 0;
            for (i = 0; i < 5 && !done; i++)
                if (strncmp(a, ent[i][0], strlen(ent[i][0])) == 0) {
                    buf_append(&o, ent[i][1], 1);
                    a += strlen(ent[i][0]);
                    done = 1;
                }
            if (!done)
                buf_appendc(&o, *a++);
        }
        out = buf_steal(&o);
    }
    free(open);
    free(close);
    return out;
}

/* s3_error - the message of an S3 error reply into errbuf */
static void s3_error(const char *what, struct req *r, char *errbuf, size_t errlen)
{
    char *code = xml_text(r->reply.data, "Code");
    char *msg = xml_text(r->reply.data, "Message");
    errbuf_set(errbuf, errlen, "S3 %s: HTTP %ld %s%s%s", what, r->status, code ? code : "",
               msg ? ": " : "", msg ? msg : "");
    free(code);
    free(msg);
}

int s3_create(const struct upload_config *c, const char *key, char **upload_id, char *errbuf,
              size_t errlen)
{
    struct req r = {.method = "POST", .key = key, .q = {{"uploads", ""}}, .nq = 1};
    *upload_id = NULL;
    int rc = -1;
    if (perform(c, &r, errbuf, errlen) != 0)
        goto out;
    *upload_id = r.status == 200 ? xml_text(r.reply.data, "UploadId") : NULL;
    if (!*upload_id || !**upload_id) {
        free(*upload_id);
        *upload_id = NULL;
        s3_error("CreateMultipartUpload", &r, errbuf, errlen);
        goto out;
    }
    rc = 0;
out:
    buf_cleanup(&r.reply);
    return rc;
}

char *s3_part_url(const struct upload_config *c, const char *key, const char *upload_id, int part,
                  int ttl_s)
{
    char host[256], date[17], pn[16];
    host_of(c, host, sizeof host);
    sigv4_amz_date(time_now_ms() / 1000, date);
    snprintf(pn, sizeof pn, "%d", part);
    char *path = xasprintf("/%s/%s", c->bucket, key);
    struct sigv4_param q[] = {{"partNumber", pn}, {"uploadId", upload_id}};
    struct sigv4_creds k = creds(c);
    char *query = sigv4_presign(&k, "PUT", host, path, q, 2, date, ttl_s);
    char *epath = sigv4_uri_encode(path, true);
    char *url = xasprintf("%s%s?%s", c->endpoint, epath, query);
    free(epath);
    free(query);
    free(path);
    return url;
}

int s3_complete(const struct upload_config *c, const char *key, const char *upload_id,
                const struct upload_part_ref *p, size_t n, char *errbuf, size_t errlen)
{
    struct buf x;
    buf_init(&x, 4 * 1024 * 1024);
    buf_printf(&x, "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
    for (size_t i = 0; i < n; i++) {
        /* etags were checked as [0-9a-zA-Z-] by the API: nothing to escape */
        buf_printf(&x, "<Part><PartNumber>%d</PartNumber><ETag>\"%s\"</ETag></Part>", p[i].part,
                   p[i].etag);
    }
    buf_printf(&x, "</CompleteMultipartUpload>");
    struct req r = {.method = "POST",
                    .key = key,
                    .q = {{"uploadId", upload_id}},
                    .nq = 1,
                    .body = buf_str(&x),
                    .body_len = x.len};
    int rc = 503;
    if (perform(c, &r, errbuf, errlen) != 0)
        goto out;
    /* S3 may answer 200 and report an error in the body */
    bool err = r.status != 200 || (r.reply.data && strstr(r.reply.data, "<Error>"));
    if (!err) {
        rc = 0;
    } else {
        s3_error("CompleteMultipartUpload", &r, errbuf, errlen);
        rc = r.status / 100 == 4 || (r.status == 200) ? 400 : 503;
    }
out:
    buf_cleanup(&r.reply);
    buf_cleanup(&x);
    return rc;
}

int s3_abort(const struct upload_config *c, const char *key, const char *upload_id, char *errbuf,
             size_t errlen)
{
    struct req r = {.method = "DELETE", .key = key, .q = {{"uploadId", upload_id}}, .nq = 1};
    int rc = -1;
    if (perform(c, &r, errbuf, errlen) == 0) {
        if (r.status / 100 == 2 || r.status == 404)
            rc = 0;
        else
            s3_error("AbortMultipartUpload", &r, errbuf, errlen);
    }
    buf_cleanup(&r.reply);
    return rc;
}

int s3_get(const struct upload_config *c, const char *key,
           int (*fn)(void *arg, const char *data, size_t len), void *arg, char *errbuf,
           size_t errlen)
{
    struct req r = {.method = "GET", .key = key, .fn = fn, .arg = arg};
    int rc = -1;
    if (perform(c, &r, errbuf, errlen) != 0)
        goto out;
    if (r.stop) {
        rc = r.stop;
        goto out;
    }
    if (r.status != 200) {
        s3_error("GetObject", &r, errbuf, errlen);
        goto out;
    }
    rc = 0;
out:
    buf_cleanup(&r.reply);
    return rc;
}

int s3_put(const struct upload_config *c, const char *key, const char *body, size_t len,
           const char *content_type, char *errbuf, size_t errlen)
{
    char *ct = xasprintf("Content-Type: %s", content_type);
    struct req r = {
        .method = "PUT", .key = key, .body = len ? body : "", .body_len = len, .ctype = ct};
    int rc = -1;
    if (perform(c, &r, errbuf, errlen) == 0) {
        if (r.status == 200)
            rc = 0;
        else
            s3_error("PutObject", &r, errbuf, errlen);
    }
    buf_cleanup(&r.reply);
    free(ct);
    return rc;
}
