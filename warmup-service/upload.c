/* upload.c - the upload store (upload.h): configuration, the local
 * backend's signed URLs and part files, and the dispatch to upload_s3.c.
 *
 * Local layout: UPLOAD_DIR/<upload id>/<part> (0600, fsynced, renamed
 * into place from a temporary name so a part is whole or absent), the
 * HMAC key in UPLOAD_DIR/upload.key when UPLOAD_SECRET is not given
 * (generated at the first start and kept, so part URLs survive a
 * restart). Upload ids are 32 hex characters (checked before any path
 * is built from one). part_lock serialises a part's rename with its row
 * so the stored ETag is always the file's.
 */
#include "upload.h"
#include "config.h"
#include "db.h"
#include "errbuf.h"
#include "fileio.h"
#include "httpd.h"
#include "log.h"
#include "store_uploads.h"
#include "timeutil.h"
#include "upload_s3.h"
#include "xalloc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KEY_FILE "upload.key"
#define S3_MIN_PART (5L * 1024 * 1024)
#define MAX_PARTS 10000

struct uploads {
    const struct upload_config *cfg;
    struct store *store;
    unsigned char key[64];
    size_t keylen;
    pthread_mutex_t part_lock;
};

static const char hexd[] = "0123456789abcdef";

static void to_hex(const unsigned char *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hexd[p[i] >> 4];
        out[2 * i + 1] = hexd[p[i] & 15];
    }
    out[2 * n] = '\0';
}

/* ---- configuration ---------------------------------------------------- */

/* parse_s3 - s3://bucket[/prefix] */
static int parse_s3(struct upload_config *c, const char *v, char *errbuf, size_t errlen)
{
    const char *b = v + 5;
    size_t n = strcspn(b, "/");
    if (n == 0 || n > 63 || strspn(b, "abcdefghijklmnopqrstuvwxyz0123456789.-") < n) {
        errbuf_set(errbuf, errlen,
                   "UPLOAD_STORE: s3://bucket/prefix needs a bucket name (a-z 0-9 . -)");
        return -1;
    }
    c->bucket = xstrndup(b, n);
    const char *p = b + n;
    while (*p == '/')
        p++;
    size_t pl = strlen(p);
    while (pl && p[pl - 1] == '/')
        pl--;
    c->prefix = xstrndup(p, pl);
    return 0;
}

static int load_s3(struct upload_config *c, char *errbuf, size_t errlen)
{
    if (config_get_str("S3_ENDPOINT", NULL, &c->endpoint, errbuf, errlen) != 0 ||
        config_get_str("AWS_REGION", "us-east-1", &c->region, errbuf, errlen) != 0 ||
        config_get_str("AWS_ACCESS_KEY_ID", NULL, &c->access_key, errbuf, errlen) != 0 ||
        config_get_secret("AWS_SECRET_ACCESS_KEY", &c->secret_key, errbuf, errlen) != 0 ||
        config_get_str("S3_CA_FILE", NULL, &c->ca_file, errbuf, errlen) != 0)
        return -1;
    if (!c->endpoint) {
        errbuf_set(errbuf, errlen, "S3_ENDPOINT: required with UPLOAD_STORE=s3://...");
        return -1;
    }
    bool https = strncmp(c->endpoint, "https://", 8) == 0;
    if (!https && strncmp(c->endpoint, "http://", 7) != 0) {
        errbuf_set(errbuf, errlen,
                   "S3_ENDPOINT: must start with https:// (or http:// to loopback)");
        return -1;
    }
    size_t el = strlen(c->endpoint);
    while (el && c->endpoint[el - 1] == '/')
        c->endpoint[--el] = '\0';
    const char *host = c->endpoint + (https ? 8 : 7);
    size_t hl = strcspn(host, "/?#");
    if (hl == 0 || host[hl]) {
        errbuf_set(errbuf, errlen, "S3_ENDPOINT: scheme://host[:port] without a path");
        return -1;
    }
    if (!https) {
        char h[256];
        size_t n = host[0] == '[' ? strcspn(host, "]") + 1 : strcspn(host, ":");
        if (n >= sizeof h)
            n = sizeof h - 1;
        memcpy(h, host[0] == '[' ? host + 1 : host, n);
        h[host[0] == '[' ? n - 2 : n] = '\0';
        if (!config_host_is_loopback(h)) {
            errbuf_set(errbuf, errlen, "S3_ENDPOINT: plain http only to a loopback host");
            return -1;
        }
    }
    if (!c->access_key || !c->secret_key) {
        errbuf_set(errbuf, errlen,
                   "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY: required with UPLOAD_STORE=s3://");
        return -1;
    }
    if (c->part_size < S3_MIN_PART) {
        errbuf_set(errbuf, errlen, "UPLOAD_PART_SIZE: at least 5 MiB with S3 (its minimum)");
        return -1;
    }
    return 0;
}

int upload_config_load(struct upload_config *c, const char *db_path, const char *base_url,
                       char *errbuf, size_t errlen)
{
    memset(c, 0, sizeof *c);
    char *store = NULL;
    long v;
    int rc = -1;
    if (config_get_str("UPLOAD_STORE", "local", &store, errbuf, errlen) != 0)
        goto out;
    if (strcmp(store, "local") == 0) {
        c->backend = UPLOAD_LOCAL;
        config_drop_secret("AWS_SECRET_ACCESS_KEY");
    } else if (strncmp(store, "s3://", 5) == 0) {
        c->backend = UPLOAD_S3;
        if (parse_s3(c, store, errbuf, errlen) != 0)
            goto out;
    } else {
        errbuf_set(errbuf, errlen, "UPLOAD_STORE: local or s3://bucket/prefix");
        goto out;
    }
    const char *slash = strrchr(db_path, '/');
    char *def =
        slash ? xasprintf("%.*s/uploads", (int)(slash - db_path), db_path) : xstrdup("uploads");
    int r = config_get_str("UPLOAD_DIR", def, &c->dir, errbuf, errlen);
    free(def);
    if (r != 0 || config_get_secret("UPLOAD_SECRET", &c->secret, errbuf, errlen) != 0)
        goto out;
    if (c->secret && strlen(c->secret) < 16) {
        errbuf_set(errbuf, errlen, "UPLOAD_SECRET: at least 16 bytes");
        goto out;
    }
    if (config_get_long("UPLOAD_MAX_BYTES", 5368709120L, 1, 5497558138880L, &v, errbuf, errlen))
        goto out;
    c->max_bytes = v;
    if (config_get_long("UPLOAD_PART_SIZE", 16L * 1024 * 1024, 65536, 5368709120L, &v, errbuf,
                        errlen))
        goto out;
    c->part_size = v;
    if (config_get_long("UPLOAD_URL_TTL", 3600, 60, 604800, &v, errbuf, errlen))
        goto out;
    c->url_ttl_s = (int)v;
    c->base_url = xstrdup(base_url);
    if (c->backend == UPLOAD_S3 && load_s3(c, errbuf, errlen) != 0)
        goto out;
    rc = 0;
out:
    free(store);
    return rc;
}

static void free_secret(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

void upload_config_cleanup(struct upload_config *c)
{
    free(c->dir);
    free_secret(c->secret);
    free(c->base_url);
    free(c->bucket);
    free(c->prefix);
    free(c->endpoint);
    free(c->region);
    free(c->access_key);
    free_secret(c->secret_key);
    free(c->ca_file);
    memset(c, 0, sizeof *c);
}

/* ---- lifecycle ---------------------------------------------------------- */

/* fsync_dir - make a rename or a new file in dir durable */
static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* load_key - UPLOAD_SECRET, else dir/upload.key (made once: 32 random bytes, hex) */
static int load_key(struct uploads *u, char *errbuf, size_t errlen)
{
    if (u->cfg->secret) {
        size_t n = strlen(u->cfg->secret);
        u->keylen = n < sizeof u->key ? n : sizeof u->key;
        memcpy(u->key, u->cfg->secret, u->keylen);
        return 0;
    }
    char *path = xasprintf("%s/" KEY_FILE, u->cfg->dir);
    int rc = -1;
    char *text = NULL;
    size_t len = 0;
    if (access(path, F_OK) != 0) {
        unsigned char rnd[32];
        char hx[65];
        if (RAND_bytes(rnd, sizeof rnd) != 1) {
            errbuf_set(errbuf, errlen, "upload key: no randomness");
            goto out;
        }
        to_hex(rnd, sizeof rnd, hx);
        char *tmp = xasprintf("%s.tmp", path);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        bool ok = fd >= 0 && write(fd, hx, 64) == 64 && fsync(fd) == 0;
        if (fd >= 0)
            close(fd);
        ok = ok && rename(tmp, path) == 0 && fsync_dir(u->cfg->dir) == 0;
        free(tmp);
        OPENSSL_cleanse(hx, sizeof hx);
        if (!ok) {
            errbuf_set(errbuf, errlen, "UPLOAD_DIR: cannot write %s: %s", path, strerror(errno));
            goto out;
        }
        log_info("uploads: generated the part URL key in %s (set UPLOAD_SECRET to choose one)",
                 path);
    }
    if (file_read_small("upload key", path, 1024, true, &text, &len, errbuf, errlen) != 0)
        goto out;
    if (len < 16) {
        errbuf_set(errbuf, errlen, "upload key %s: shorter than 16 bytes", path);
        goto out;
    }
    u->keylen = len < sizeof u->key ? len : sizeof u->key;
    memcpy(u->key, text, u->keylen);
    rc = 0;
out:
    free_secret(text);
    free(path);
    return rc;
}

struct uploads *uploads_new(const struct upload_config *c, struct store *s, char *errbuf,
                            size_t errlen)
{
    struct uploads *u = xcalloc(1, sizeof *u);
    u->cfg = c;
    u->store = s;
    pthread_mutex_init(&u->part_lock, NULL);
    char *probe = xasprintf("%s/x", c->dir);
    int r = db_mkdirs_for(probe);
    free(probe);
    if (r != 0 || chmod(c->dir, 0700) != 0) {
        errbuf_set(errbuf, errlen, "UPLOAD_DIR: cannot create %s: %s", c->dir, strerror(errno));
        uploads_free(u);
        return NULL;
    }
    if (load_key(u, errbuf, errlen) != 0 ||
        (c->backend == UPLOAD_S3 && s3_global_init(errbuf, errlen) != 0)) {
        uploads_free(u);
        return NULL;
    }
    return u;
}

void uploads_free(struct uploads *u)
{
    if (!u)
        return;
    if (u->cfg->backend == UPLOAD_S3)
        s3_global_cleanup();
    OPENSSL_cleanse(u->key, sizeof u->key);
    pthread_mutex_destroy(&u->part_lock);
    free(u);
}

const struct upload_config *uploads_config(const struct uploads *u)
{
    return u->cfg;
}

/* ---- creation and URLs ------------------------------------------------ */

int uploads_create(struct uploads *u, int64_t campaign_id, const char *filename, int64_t size,
                   const char *content_type, struct upload_row *out, char *errbuf, size_t errlen)
{
    const struct upload_config *c = u->cfg;
    unsigned char rnd[16];
    char id[33], now[32];
    if (RAND_bytes(rnd, sizeof rnd) != 1) {
        errbuf_set(errbuf, errlen, "no randomness for the upload id");
        return -1;
    }
    to_hex(rnd, sizeof rnd, id);
    int64_t part = c->part_size;
    if ((size + part - 1) / part > MAX_PARTS) /* S3's limit: larger parts instead */
        part = (size + MAX_PARTS - 1) / MAX_PARTS;
    memset(out, 0, sizeof *out);
    out->id = xstrdup(id);
    out->campaign_id = campaign_id;
    out->filename = xstrdup(filename);
    out->content_type = xstrdup(content_type);
    out->backend = xstrdup(c->backend == UPLOAD_S3 ? "s3" : "local");
    out->state = xstrdup("open");
    out->size = size;
    out->part_size = part;
    out->nparts = (int)((size + part - 1) / part);
    out->expires_ms = time_now_ms() + (int64_t)c->url_ttl_s * 1000;
    time_rfc3339_ms(time_now_ms(), now, sizeof now);
    out->created_at = xstrdup(now);
    if (c->backend == UPLOAD_S3) {
        out->object_key =
            *c->prefix ? xasprintf("%s/%s.csv", c->prefix, id) : xasprintf("%s.csv", id);
        if (s3_create(c, out->object_key, &out->s3_upload_id, errbuf, errlen) != 0)
            goto fail;
    }
    if (store_upload_create(u->store, out) != 0) {
        errbuf_set(errbuf, errlen, "the database failed");
        if (out->s3_upload_id) {
            char ign[128];
            s3_abort(c, out->object_key, out->s3_upload_id, ign, sizeof ign);
        }
        goto fail;
    }
    return 0;
fail:
    upload_row_cleanup(out);
    return -1;
}

/* local_sig - base64url(HMAC-SHA256(key, "PUT\n" id "\n" part "\n" expires)), unpadded */
static void local_sig(struct uploads *u, const char *id, int part, const char *expires,
                      char out[48])
{
    char *msg = xasprintf("PUT\n%s\n%d\n%s", id, part, expires);
    unsigned char mac[32];
    unsigned int n = 32;
    HMAC(EVP_sha256(), u->key, (int)u->keylen, (const unsigned char *)msg, strlen(msg), mac, &n);
    free(msg);
    unsigned char b64[48];
    int len = EVP_EncodeBlock(b64, mac, 32); /* 44 with one '=' */
    int j = 0;
    for (int i = 0; i < len && b64[i] != '='; i++)
        out[j++] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : (char)b64[i];
    out[j] = '\0';
}

char *uploads_part_url(struct uploads *u, const struct upload_row *r, int part)
{
    if (u->cfg->backend == UPLOAD_S3 && r->s3_upload_id)
        return s3_part_url(u->cfg, r->object_key, r->s3_upload_id, part, u->cfg->url_ttl_s);
    char exp[24], sig[48];
    snprintf(exp, sizeof exp, "%lld", (long long)(r->expires_ms / 1000));
    local_sig(u, r->id, part, exp, sig);
    return xasprintf("%s/uploads/%s/%d?expires=%s&sig=%s", u->cfg->base_url, r->id, part, exp, sig);
}

/* valid_id - 32 lower-case hex characters */
static bool valid_id(const char *id)
{
    return strlen(id) == 32 && strspn(id, hexd) == 32;
}

bool uploads_check_sig(struct uploads *u, const char *id, int part, const char *expires,
                       const char *sig)
{
    /* at most 12 digits (year 33658): the product below cannot overflow */
    if (!valid_id(id) || !expires || !sig || strlen(expires) > 12 ||
        strspn(expires, "0123456789") != strlen(expires) || !*expires)
        return false;
    char want[48];
    local_sig(u, id, part, expires, want);
    bool ok = http_token_equal(want, sig);
    return ok && strtoll(expires, NULL, 10) * 1000 >= time_now_ms();
}

/* ---- local parts -------------------------------------------------------- */

struct upload_part_writer {
    struct uploads *u;
    char *id, *dir, *tmp;
    int part, fd;
    int64_t size;
    EVP_MD_CTX *md5;
};

struct upload_part_writer *uploads_part_begin(struct uploads *u, const char *id, int part,
                                              char *errbuf, size_t errlen)
{
    if (!valid_id(id)) {
        errbuf_set(errbuf, errlen, "no such upload");
        return NULL;
    }
    struct upload_part_writer *w = xcalloc(1, sizeof *w);
    w->u = u;
    w->id = xstrdup(id);
    w->part = part;
    w->dir = xasprintf("%s/%s", u->cfg->dir, id);
    unsigned char rnd[8];
    char rh[17];
    RAND_bytes(rnd, sizeof rnd);
    to_hex(rnd, sizeof rnd, rh);
    w->tmp = xasprintf("%s/.%d.%s.tmp", w->dir, part, rh);
    if (mkdir(w->dir, 0700) != 0 && errno != EEXIST) {
        errbuf_set(errbuf, errlen, "cannot create the part's folder: %s", strerror(errno));
        goto fail;
    }
    w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (w->fd < 0) {
        errbuf_set(errbuf, errlen, "cannot create the part's file: %s", strerror(errno));
        goto fail;
    }
    w->md5 = EVP_MD_CTX_new();
    if (!w->md5 || EVP_DigestInit_ex(w->md5, EVP_md5(), NULL) != 1) {
        errbuf_set(errbuf, errlen, "md5 unavailable");
        goto fail;
    }
    return w;
fail:
    uploads_part_abandon(w);
    return NULL;
}

int uploads_part_write(struct upload_part_writer *w, const char *data, size_t len)
{
    EVP_DigestUpdate(w->md5, data, len);
    w->size += (int64_t)len;
    while (len) {
        ssize_t n = write(w->fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            log_error("uploads: write %s: %s", w->tmp, strerror(errno));
            return -1;
        }
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

static void writer_free(struct upload_part_writer *w)
{
    if (w->fd > 0)
        close(w->fd);
    EVP_MD_CTX_free(w->md5);
    free(w->id);
    free(w->dir);
    free(w->tmp);
    free(w);
}

int uploads_part_commit(struct upload_part_writer *w, char etag[33])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_DigestFinal_ex(w->md5, md, &mdlen);
    to_hex(md, 16, etag);
    int rc = -1;
    if (fsync(w->fd) != 0) {
        log_error("uploads: fsync %s: %s", w->tmp, strerror(errno));
        uploads_part_abandon(w);
        return -1;
    }
    close(w->fd);
    w->fd = -1;
    char *final = xasprintf("%s/%d", w->dir, w->part);
    struct upload_row cur = {0};
    pthread_mutex_lock(&w->u->part_lock);
    int st = store_upload_get(w->u->store, w->id, &cur);
    if (st == 0 && strcmp(cur.state, "open") != 0)
        rc = 1; /* completed or aborted while this part arrived */
    else if (st != 0)
        rc = -1;
    else if (rename(w->tmp, final) == 0 && fsync_dir(w->dir) == 0)
        rc = store_upload_put_part(w->u->store, w->id, w->part, w->size, etag);
    else
        log_error("uploads: rename %s: %s", final, strerror(errno));
    pthread_mutex_unlock(&w->u->part_lock);
    upload_row_cleanup(&cur);
    if (rc != 0)
        unlink(w->tmp);
    free(final);
    writer_free(w);
    return rc;
}

void uploads_part_abandon(struct upload_part_writer *w)
{
    if (!w)
        return;
    if (w->fd > 0) {
        close(w->fd);
        w->fd = -1;
    }
    unlink(w->tmp);
    writer_free(w);
}

/* ---- complete, abort, read ------------------------------------------- */

void uploads_lock(struct uploads *u)
{
    pthread_mutex_lock(&u->part_lock);
}

void uploads_unlock(struct uploads *u)
{
    pthread_mutex_unlock(&u->part_lock);
}

int uploads_finish(struct uploads *u, const struct upload_row *r, const struct upload_part_ref *p,
                   size_t n, char *errbuf, size_t errlen)
{
    if (strcmp(r->backend, "s3") == 0)
        return s3_complete(u->cfg, r->object_key, r->s3_upload_id, p, n, errbuf, errlen);
    for (size_t i = 0; i < n; i++) {
        char etag[64];
        int rc = store_upload_etag(u->store, r->id, p[i].part, etag, sizeof etag);
        if (rc < 0) {
            errbuf_set(errbuf, errlen, "the database failed");
            return 503;
        }
        if (rc == 1) {
            errbuf_set(errbuf, errlen, "part %d was not uploaded", p[i].part);
            return 400;
        }
        if (!http_token_equal(etag, p[i].etag)) {
            errbuf_set(errbuf, errlen, "part %d: the etag does not match the part's", p[i].part);
            return 400;
        }
    }
    return 0;
}

void uploads_remove_files(struct uploads *u, const char *id)
{
    if (!valid_id(id))
        return;
    char *dir = xasprintf("%s/%s", u->cfg->dir, id);
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char *f = xasprintf("%s/%s", dir, e->d_name);
            unlink(f);
            free(f);
        }
        closedir(d);
        rmdir(dir);
    }
    free(dir);
}

int uploads_abort(struct uploads *u, const struct upload_row *r, char *errbuf, size_t errlen)
{
    if (strcmp(r->backend, "s3") == 0 &&
        s3_abort(u->cfg, r->object_key, r->s3_upload_id, errbuf, errlen) != 0)
        return -1;
    pthread_mutex_lock(&u->part_lock); /* a part arriving now finds the upload closed */
    int rc = store_upload_abort(u->store, r->id);
    if (rc == 0)
        uploads_remove_files(u, r->id);
    pthread_mutex_unlock(&u->part_lock);
    if (rc < 0)
        errbuf_set(errbuf, errlen, "the database failed");
    else if (rc == 1)
        errbuf_set(errbuf, errlen, "the upload is no longer open");
    return rc;
}

#define SWEEP_GRACE_MS (24LL * 3600 * 1000)
#define SWEEP_MAX 100

int uploads_sweep(struct uploads *u)
{
    char *ids[SWEEP_MAX];
    size_t n = 0;
    int done = 0;
    if (store_uploads_stale(u->store, time_now_ms() - SWEEP_GRACE_MS, ids, SWEEP_MAX, &n) != 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        struct upload_row r;
        char err[256];
        if (store_upload_get(u->store, ids[i], &r) == 0) {
            if (uploads_abort(u, &r, err, sizeof err) == 0) {
                log_info("upload %s of campaign %lld: its URLs expired on %lld, aborted", r.id,
                         (long long)r.campaign_id, (long long)(r.expires_ms / 1000));
                done++;
            } else {
                log_warn("upload %s: the expired upload cannot be aborted: %s", r.id, err);
            }
            upload_row_cleanup(&r);
        }
        free(ids[i]);
    }
    return done;
}

int uploads_read_file(const char *path, int (*fn)(void *arg, const char *data, size_t len),
                      void *arg, char *errbuf, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        errbuf_set(errbuf, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    static const size_t chunk = 256 * 1024;
    char *buf = xmalloc(chunk);
    int rc = 0;
    for (;;) {
        ssize_t n = read(fd, buf, chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            errbuf_set(errbuf, errlen, "cannot read %s: %s", path, strerror(errno));
            rc = -1;
            break;
        }
        if (n == 0)
            break;
        if ((rc = fn(arg, buf, (size_t)n)) != 0)
            break;
    }
    free(buf);
    close(fd);
    return rc;
}

int uploads_read(struct uploads *u, const struct upload_row *r,
                 int (*fn)(void *arg, const char *data, size_t len), void *arg, char *errbuf,
                 size_t errlen)
{
    if (strcmp(r->backend, "s3") == 0)
        return s3_get(u->cfg, r->object_key, fn, arg, errbuf, errlen);
    for (int part = 1; part <= r->nparts; part++) {
        char *path = xasprintf("%s/%s/%d", u->cfg->dir, r->id, part);
        int rc = uploads_read_file(path, fn, arg, errbuf, errlen);
        free(path);
        if (rc != 0)
            return rc;
    }
    return 0;
}
