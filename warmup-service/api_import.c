/* api_import.c - POST /users/import: a text/csv body whose header names
 * name and email_id (extra columns become each user's attributes,
 * csvrows.h), streamed through the CSV parser so a large file never sits
 * in memory.
 *
 * Direct (default): valid rows are registered exactly as by /register, in
 * transactions of IMPORTER_BATCH rows (all or nothing per batch; a cut
 * connection keeps the batches already committed); the answer lists the
 * invalid rows by line number (line 1 is the header).
 * ?async=1: the body is spooled to a file under UPLOAD_DIR, fsynced, and
 * queued for the background importer (importer.h) before the 202;
 * GET /users/import/{id} shows its progress.
 * HTTP pool threads; the import state is owned by the request. */
#include "api.h"
#include "app.h"
#include "csvrows.h"
#include "importer.h"
#include "log.h"
#include "metrics.h"
#include "store_uploads.h"
#include "timeutil.h"
#include "upload.h"
#include "users.h"
#include "xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { STOP_DB = 1, STOP_HEADER = 2 };

struct import {
    struct app *app;
    struct csv_parser *csv;
    struct csvrows hdr;
    struct user_input batch[IMPORTER_BATCH];
    char *attrs[IMPORTER_BATCH];
    size_t n;
    long imported, duplicates, invalid_total;
    json_object *invalid;
    int header_seen;
    char header_err[200];
    /* ?async=1: the spool file */
    int fd;
    char *spool;
    bool failed;
};

static void add_invalid(struct import *im, long line, const char *why)
{
    im->invalid_total++;
    metric_inc(im->app->import_invalid);
    if (json_object_array_length(im->invalid) >= IMPORTER_MAX_REPORTED)
        return;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "line", json_object_new_int64(line));
    json_object_object_add(o, "error", json_object_new_string(why));
    json_object_array_add(im->invalid, o);
}

static void clear_batch(struct import *im)
{
    for (size_t i = 0; i < im->n; i++) {
        user_input_cleanup(&im->batch[i]);
        free(im->attrs[i]);
        im->attrs[i] = NULL;
    }
    im->n = 0;
}

/* flush - commit the batch; 0 or STOP_DB */
static int flush(struct import *im)
{
    long added = 0, dups = 0;
    int rc = import_users_commit(im->app, im->batch, im->attrs, im->n, &added, &dups);
    im->imported += added;
    im->duplicates += dups;
    clear_batch(im);
    return rc == 0 ? 0 : STOP_DB;
}

static int on_record(void *arg, long line, const char *const *f, size_t nf, const char *err)
{
    struct import *im = arg;
    char name[CSV_MAX_FIELD + 1], email[CSV_MAX_FIELD + 1], why[256];
    if (!im->header_seen) {
        im->header_seen = 1;
        if (csvrows_header(&im->hdr, f, nf, err, im->header_err, sizeof im->header_err) != 0)
            return STOP_HEADER;
        return 0;
    }
    char *attrs = NULL;
    if (csvrows_row(&im->hdr, f, nf, err, name, email, &attrs, why, sizeof why) != 0 ||
        user_input_make(&im->batch[im->n], name, email, why, sizeof why) != 0) {
        free(attrs);
        add_invalid(im, line, why);
        return 0;
    }
    im->attrs[im->n++] = attrs;
    return im->n == IMPORTER_BATCH ? flush(im) : 0;
}

static void reply_stop(struct import *im, int why, struct http_response *resp)
{
    if (why == STOP_HEADER)
        http_reply_error(resp, 400, "invalid_csv", "%s", im->header_err);
    else
        http_reply_error(resp, 503, "unavailable",
                         "the database failed after %ld users were imported; retry the file "
                         "(already imported users count as duplicates)",
                         im->imported);
}

/* async_query - ?async= as a boolean; replies 400 on a bad value */
static int async_query(struct http_request *req, struct http_response *resp, bool *on)
{
    int64_t v = 0;
    if (http_query_int(req, resp, "async", 0, 0, 1, &v) != 0)
        return -1;
    *on = v == 1;
    return 0;
}

static void import_begin(struct http_request *req, struct http_response *resp)
{
    struct app *app = req->app;
    bool async;
    if (async_query(req, resp, &async) != 0)
        return;
    struct import *im = xcalloc(1, sizeof *im);
    im->app = app;
    im->fd = -1;
    req->stream = im;
    if (!async) {
        im->csv = csv_new(on_record, im);
        im->invalid = json_object_new_array();
        return;
    }
    unsigned char rnd[12];
    char hx[25];
    RAND_bytes(rnd, sizeof rnd);
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(hx + 2 * i, 3, "%02x", rnd[i]);
    im->spool = xasprintf("%s/import-%s.csv", uploads_config(app->uploads)->dir, hx);
    im->fd = open(im->spool, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (im->fd < 0) {
        log_error("import: cannot create %s: %s", im->spool, strerror(errno));
        http_reply_error(resp, 503, "unavailable", "cannot spool the file");
    }
}

static void import_data(struct http_request *req, const char *data, size_t len,
                        struct http_response *resp)
{
    struct import *im = req->stream;
    if (!im)
        return;
    if (im->spool) {
        while (len) {
            ssize_t n = write(im->fd, data, len);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                log_error("import: write %s: %s", im->spool, strerror(errno));
                http_reply_error(resp, 503, "unavailable", "cannot spool the file");
                return;
            }
            data += n;
            len -= (size_t)n;
        }
        return;
    }
    int rc = csv_feed(im->csv, data, len);
    if (rc)
        reply_stop(im, rc, resp);
}

/* async_end - the spool file durable, then its import queued: 202 */
static void async_end(struct import *im, struct http_response *resp)
{
    const char *dir = uploads_config(im->app->uploads)->dir;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    bool ok = fsync(im->fd) == 0 && dfd >= 0 && fsync(dfd) == 0;
    if (dfd >= 0)
        close(dfd);
    close(im->fd);
    im->fd = -1;
    char now[32];
    int64_t id = 0;
    time_rfc3339_ms(time_now_ms(), now, sizeof now);
    if (!ok || store_import_create(im->app->store, "users", im->spool, now, &id) != 0) {
        http_reply_error(resp, 503, "unavailable", "cannot queue the import");
        return;
    }
    free(im->spool); /* the importer owns the file now */
    im->spool = NULL;
    importer_notify(im->app->importer);
    char url[64];
    snprintf(url, sizeof url, "/users/import/%lld", (long long)id);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "import_id", json_object_new_int64(id));
    json_object_object_add(o, "state", json_object_new_string("queued"));
    json_object_object_add(o, "status_url", json_object_new_string(url));
    http_reply_json(resp, 202, o);
}

static void import_end(struct http_request *req, struct http_response *resp)
{
    struct import *im = req->stream;
    if (!im)
        return;
    if (im->spool) {
        async_end(im, resp);
        return;
    }
    int rc = csv_finish(im->csv);
    if (!rc)
        rc = flush(im);
    if (rc) {
        reply_stop(im, rc, resp);
        return;
    }
    if (!im->header_seen) {
        http_reply_error(resp, 400, "invalid_csv",
                         "the file is empty: expected the header "
                         "name,email_id");
        return;
    }
    log_info("import done imported=%ld duplicates=%ld invalid=%ld", im->imported, im->duplicates,
             im->invalid_total);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "imported", json_object_new_int64(im->imported));
    json_object_object_add(o, "duplicates", json_object_new_int64(im->duplicates));
    json_object_object_add(o, "invalid", json_object_get(im->invalid));
    json_object_object_add(o, "invalid_total", json_object_new_int64(im->invalid_total));
    http_reply_json(resp, 200, o);
}

static void import_cleanup(struct http_request *req)
{
    struct import *im = req->stream;
    if (!im)
        return;
    clear_batch(im);
    csvrows_cleanup(&im->hdr);
    csv_free(im->csv);
    json_object_put(im->invalid);
    if (im->fd >= 0)
        close(im->fd);
    if (im->spool) { /* not queued: the request failed */
        unlink(im->spool);
        free(im->spool);
    }
    free(im);
    req->stream = NULL;
}

const struct http_stream_ops api_import_ops = {
    .begin = import_begin,
    .data = import_data,
    .end = import_end,
    .cleanup = import_cleanup,
};

void api_import_status(struct http_request *req, struct http_response *resp)
{
    struct app *app = req->app;
    int64_t id;
    struct import_row im;
    if (http_parse_int(req->params[0], 1, INT64_MAX, &id) != 0) {
        http_reply_error(resp, 404, "not_found", "no such import");
        return;
    }
    int rc = store_import_get(app->store, id, "users", &im);
    if (rc != 0) {
        http_reply_error(resp, rc < 0 ? 503 : 404, rc < 0 ? "unavailable" : "not_found",
                         rc < 0 ? "the database failed" : "no import %lld", (long long)id);
        return;
    }
    json_object *o = api_import_json(&im, false);
    import_row_cleanup(&im);
    http_reply_json(resp, 200, o);
}
