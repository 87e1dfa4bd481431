/* api_upload.c - the presigned multipart upload of a campaign's recipient
 * CSV (DESIGN 9.5): POST /campaigns/{id}/upload/init, /complete, /abort,
 * GET /campaigns/{id}/upload, and the local store's part URL
 * PUT /uploads/{upload_id}/{part}?expires=&sig= (public: the signature
 * authorises; the body is streamed to a file, never held). HTTP pool
 * threads; the store and the upload store do the work, the importer is
 * woken after a complete. */
#include "api.h"
#include "app.h"
#include "importer.h"
#include "jsonx.h"
#include "log.h"
#include "store_uploads.h"
#include "timeutil.h"
#include "upload.h"
#include "xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FILENAME 255

/* campaign_for_upload - the path's campaign, a draft whose audience is
 * the upload; replies and returns -1 when not */
static int campaign_for_upload(struct http_request *req, struct http_response *resp, int64_t *id)
{
    struct app *app = req->app;
    char *state = NULL;
    bool upload = false;
    if (http_parse_int(req->params[0], 1, INT64_MAX, id) != 0) {
        http_reply_error(resp, 404, "not_found", "no such campaign");
        return -1;
    }
    int rc = store_campaign_state(app->store, *id, &state, &upload);
    if (rc < 0)
        http_reply_error(resp, 503, "unavailable", "the database failed");
    else if (rc == 1)
        http_reply_error(resp, 404, "not_found", "no campaign %lld", (long long)*id);
    else if (strcmp(state, "draft") != 0)
        http_reply_error(resp, 409, "not_draft",
                         "campaign %lld is %s: its list can change only while it is a draft",
                         (long long)*id, state);
    else if (!upload)
        http_reply_error(resp, 409, "not_upload_audience",
                         "campaign %lld's audience is not {\"upload\":true}", (long long)*id);
    free(state);
    return http_replied(resp) ? -1 : 0;
}

static json_object *parse_body(struct http_request *req, struct http_response *resp,
                               const char *const *keys)
{
    json_object *o = NULL;
    char err[256];
    if (!req->body) {
        http_reply_error(resp, 400, "invalid_json", "a JSON body is required");
        return NULL;
    }
    if (jsonx_parse_object(req->body, req->body_len, &o, err, sizeof err) != 0 ||
        jsonx_check_keys(o, keys, err, sizeof err) != 0) {
        http_reply_error(resp, 400, o ? "invalid_field" : "invalid_json", "%s", err);
        json_object_put(o);
        return NULL;
    }
    return o;
}

void api_upload_init(struct http_request *req, struct http_response *resp)
{
    struct app *app = req->app;
    static const char *const keys[] = {"filename", "size", "content_type", NULL};
    int64_t cid, size = 0;
    const char *filename, *ctype;
    char err[512];
    if (campaign_for_upload(req, resp, &cid) != 0)
        return;
    json_object *o = parse_body(req, resp, keys);
    if (!o)
        return;
    const struct upload_config *cfg = uploads_config(app->uploads);
    if (jsonx_get_string(o, "filename", true, MAX_FILENAME, &filename, err, sizeof err) != 0 ||
        jsonx_get_int(o, "size", true, 1, cfg->max_bytes, &size, NULL, err, sizeof err) != 0 ||
        jsonx_get_string(o, "content_type", true, 128, &ctype, err, sizeof err) != 0) {
        http_reply_error(resp, 400, "invalid_field", "%s", err);
        goto out;
    }
    if (strcmp(ctype, "text/csv") != 0) {
        http_reply_error(resp, 400, "invalid_field", "content_type must be text/csv");
        goto out;
    }
    struct upload_row r;
    if (uploads_create(app->uploads, cid, filename, size, ctype, &r, err, sizeof err) != 0) {
        log_warn("upload init for campaign %lld: %s", (long long)cid, err);
        http_reply_error(resp, 503, "unavailable", "%s", err);
        goto out;
    }
    json_object *parts = json_object_new_array();
    for (int p = 1; p <= r.nparts; p++) {
        json_object *e = json_object_new_object();
        char *url = uploads_part_url(app->uploads, &r, p);
        json_object_object_add(e, "part", json_object_new_int(p));
        json_object_object_add(e, "url", json_object_new_string(url));
        free(url);
        json_object_array_add(parts, e);
    }
    char exp[32];
    time_rfc3339(r.expires_ms, exp, sizeof exp);
    json_object *a = json_object_new_object();
    json_object_object_add(a, "upload_id", json_object_new_string(r.id));
    json_object_object_add(a, "part_size", json_object_new_int64(r.part_size));
    json_object_object_add(a, "parts", parts);
    json_object_object_add(a, "expires_at", json_object_new_string(exp));
    log_info("upload %s for campaign %lld: %lld bytes in %d parts (%s)", r.id, (long long)cid,
             (long long)size, r.nparts, r.backend);
    upload_row_cleanup(&r);
    http_reply_json(resp, 201, a);
out:
    json_object_put(o);
}

/* upload_of - the body's upload_id, an upload of this campaign; replies
 * on failure */
static int upload_of(struct http_request *req, struct http_response *resp, json_object *o,
                     int64_t cid, struct upload_row *r)
{
    struct app *app = req->app;
    const char *id;
    char err[256];
    if (jsonx_get_string(o, "upload_id", true, 64, &id, err, sizeof err) != 0) {
        http_reply_error(resp, 400, "invalid_field", "%s", err);
        return -1;
    }
    int rc = store_upload_get(app->store, id, r);
    if (rc < 0) {
        http_reply_error(resp, 503, "unavailable", "the database failed");
        return -1;
    }
    if (rc == 1 || r->campaign_id != cid) {
        if (rc == 0)
            upload_row_cleanup(r);
        http_reply_error(resp, 404, "not_found", "no upload %s for campaign %lld", id,
                         (long long)cid);
        return -1;
    }
    if (strcmp(r->state, "open") != 0) {
        http_reply_error(resp, 409, "upload_closed", "upload %s is %s", r->id, r->state);
        upload_row_cleanup(r);
        return -1;
    }
    return 0;
}

/* parse_parts - the "parts" list: every part 1..nparts once, ascending,
 * each with a plausible etag (quotes dropped); replies 400 on failure */
static struct upload_part_ref *parse_parts(json_object *o, const struct upload_row *r,
                                           struct http_response *resp)
{
    json_object *a;
    if (!json_object_object_get_ex(o, "parts", &a) || !json_object_is_type(a, json_type_array)) {
        http_reply_error(resp, 400, "invalid_field", "field 'parts' must be a list");
        return NULL;
    }
    size_t n = json_object_array_length(a);
    struct upload_part_ref *p = xcalloc(n ? n : 1, sizeof *p);
    char err[256];
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(a, i);
        int64_t part = 0;
        const char *etag;
        if (!json_object_is_type(e, json_type_object) ||
            jsonx_get_int(e, "part", true, 1, 10000, &part, NULL, err, sizeof err) != 0) {
            http_reply_error(resp, 400, "invalid_part", "parts[%zu]: %s", i,
                             json_object_is_type(e, json_type_object) ? err : "must be an object");
            goto bad;
        }
        if (jsonx_get_string(e, "etag", false, 80, &etag, err, sizeof err) != 0 || !etag) {
            http_reply_error(resp, 400, "invalid_part", "part %lld: %s", (long long)part,
                             etag ? err : "its etag is missing");
            goto bad;
        }
        if (i > 0 && part == p[i - 1].part) {
            http_reply_error(resp, 400, "invalid_part_order", "part %lld is listed twice",
                             (long long)part);
            goto bad;
        }
        if (i > 0 && part < p[i - 1].part) {
            http_reply_error(resp, 400, "invalid_part_order",
                             "parts must be in ascending order: %lld after %d", (long long)part,
                             p[i - 1].part);
            goto bad;
        }
        if (part != (int64_t)i + 1 || part > r->nparts) {
            if (part > r->nparts)
                http_reply_error(resp, 400, "invalid_part", "part %lld: the upload has %d parts",
                                 (long long)part, r->nparts);
            else
                http_reply_error(resp, 400, "invalid_part", "part %zu is missing from the list",
                                 i + 1);
            goto bad;
        }
        size_t el = strlen(etag);
        if (el >= 2 && etag[0] == '"' && etag[el - 1] == '"') { /* as the ETag header gives it */
            etag++;
            el -= 2;
        }
        if (el == 0 || strspn(etag, "0123456789abcdefABCDEF-") < el) {
            http_reply_error(resp, 400, "invalid_part", "part %lld: the etag is not valid",
                             (long long)part);
            goto bad;
        }
        p[i].part = (int)part;
        p[i].etag = etag; /* may keep a closing quote: cut below */
    }
    if (n < (size_t)r->nparts) {
        http_reply_error(resp, 400, "invalid_part", "part %zu is missing from the list", n + 1);
        goto bad;
    }
    return p;
bad:
    free(p);
    return NULL;
}

void api_upload_complete(struct http_request *req, struct http_response *resp)
{
    struct app *app = req->app;
    static const char *const keys[] = {"upload_id", "parts", NULL};
    int64_t cid;
    struct upload_row r = {0};
    struct upload_part_ref *p = NULL;
    char **etags = NULL;
    if (campaign_for_upload(req, resp, &cid) != 0)
        return;
    json_object *o = parse_body(req, resp, keys);
    if (!o)
        return;
    if (upload_of(req, resp, o, cid, &r) != 0)
        goto out;
    if (!(p = parse_parts(o, &r, resp)))
        goto out;
    etags = xcalloc((size_t)r.nparts, sizeof *etags);
    for (int i = 0; i < r.nparts; i++) { /* without surrounding quotes */
        const char *e = p[i].etag;
        size_t n = strlen(e);
        etags[i] = xstrndup(e, n && e[n - 1] == '"' ? n - 1 : n);
        p[i].etag = etags[i];
    }
    char err[512];
    char now[32];
    int64_t import_id = 0;
    uploads_lock(app->uploads); /* no part replaced between the check and the close */
    int rc = uploads_finish(app->uploads, &r, p, (size_t)r.nparts, err, sizeof err);
    if (rc == 0) {
        time_rfc3339_ms(time_now_ms(), now, sizeof now);
        rc = store_upload_complete(app->store, r.id, cid, r.backend, now, &import_id);
    } else {
        http_reply_error(resp, rc, rc == 400 ? "invalid_part" : "unavailable", "%s", err);
    }
    uploads_unlock(app->uploads);
    if (http_replied(resp))
        goto out;
    if (rc < 0) {
        http_reply_error(resp, 503, "unavailable", "the database failed");
        goto out;
    }
    if (rc == 1) {
        http_reply_error(resp, 409, "import_running",
                         "campaign %lld has an import queued or running, or the upload closed",
                         (long long)cid);
        goto out;
    }
    importer_notify(app->importer);
    json_object *a = json_object_new_object();
    char url[64];
    snprintf(url, sizeof url, "/campaigns/%lld/upload", (long long)cid);
    json_object_object_add(a, "upload_id", json_object_new_string(r.id));
    json_object_object_add(a, "import_id", json_object_new_int64(import_id));
    json_object_object_add(a, "state", json_object_new_string("queued"));
    json_object_object_add(a, "status_url", json_object_new_string(url));
    http_reply_json(resp, 202, a);
out:
    for (int i = 0; etags && i < r.nparts; i++)
        free(etags[i]);
    free(etags);
    free(p);
    upload_row_cleanup(&r);
    json_object_put(o);
}

void api_upload_abort(struct http_request *req, struct http_response *resp)
{
    struct app *app = req->app;
    static const char *const keys[] = {"upload_id", "parts", NULL};
    int64_t cid;
    struct upload_row r = {0};
    if (http_parse_int(req->params[0], 1, INT64_MAX, &cid) != 0) {
        http_reply_error(resp, 404, "not_found", "no such campaign");
        return;
    }
    json_object *o = parse_body(req, resp, keys);
    if (!o)
        return;
    if (upload_of(req, resp, o, cid, &r) != 0)
        goto out;
    char err[512];
    int rc = uploads_abort(app->uploads, &r, err, sizeof err);
    if (rc != 0) {
        http_reply_error(resp, rc < 0 ? 503 : 409, rc < 0 ? "unavailable" : "upload_closed", "%s",
                         err);
        goto out;
    }
    log_info("upload %s of campaign %lld aborted", r.id, (long long)cid);
    json_object *a = json_object_new_object();
    json_object_object_add(a, "upload_id", json_object_new_string(r.id));
    json_object_object_add(a, "state", json_object_new_string("aborted"));
    http_reply_json(resp, 202, a);
out:
    upload_row_cleanup(&r);
    json_object_put(o);
}

/* import_json - an import's progress; campaign: the contract's states
 * (queued shows as importing) */
json_object *api_import_json(const struct import_row *im, bool campaign)
{
    json_object *a = json_object_new_object();
    const char *state = im->state;
    if (campaign && strcmp(state, "queued") == 0)
        state = "importing";
    if (!campaign)
        json_object_object_add(a, "import_id", json_object_new_int64(im->id));
    json_object_object_add(a, "state", json_object_new_string(state));
    json_object_object_add(a, "rows", json_object_new_int64(im->rows));
    json_object_object_add(a, "imported", json_object_new_int64(im->imported));
    json_object_object_add(a, "duplicates", json_object_new_int64(im->duplicates));
    json_object *inv = json_tokener_parse(im->invalid);
    json_object_object_add(a, "invalid", inv ? inv : json_object_new_array());
    json_object_object_add(a, "invalid_total", json_object_new_int64(im->n_invalid));
    if (im->error)
        json_object_object_add(a, "error", json_object_new_string(im->error));
    return a;
}

void api_upload_status(struct http_request *req, struct http_response *resp)
{
    struct app *app = req->app;
    int64_t cid;
    struct upload_row r = {0};
    struct import_row im = {0};
    if (http_parse_int(req->params[0], 1, INT64_MAX, &cid) != 0) {
        http_reply_error(resp, 404, "not_found", "no such campaign");
        return;
    }
    int rc = store_upload_latest(app->store, cid, &r);
    if (rc != 0) {
        http_reply_error(resp, rc < 0 ? 503 : 404, rc < 0 ? "unavailable" : "not_found",
                         rc < 0 ? "the database failed" : "campaign %lld has no upload",
                         (long long)cid);
        return;
    }
    json_object *a;
    rc = store_import_of_upload(app->store, r.id, &im);
    if (rc == 0) {
        a = api_import_json(&im, true);
    } else {
        a = json_object_new_object();
        json_object_object_add(
            a, "state",
            json_object_new_string(strcmp(r.state, "open") == 0 ? "uploading" : r.state));
        json_object_object_add(a, "rows", json_object_new_int64(0));
        json_object_object_add(a, "imported", json_object_new_int64(0));
        json_object_object_add(a, "duplicates", json_object_new_int64(0));
        json_object_object_add(a, "invalid", json_object_new_array());
    }
    json_object_object_add(a, "upload_id", json_object_new_string(r.id));
    json_object_object_add(a, "filename", json_object_new_string(r.filename));
    json_object_object_add(a, "size", json_object_new_int64(r.size));
    import_row_cleanup(&im);
    upload_row_cleanup(&r);
    http_reply_json(resp, 200, a);
}

/* ---- PUT /uploads/{upload_id}/{part} (local store) -------------------- */

struct part_put {
    struct upload_part_writer *w;
    int64_t limit, got;
    int part;
};

static void part_begin(struct http_request *req, struct http_response *resp)
{
    struct app *app = req->app;
    int64_t part;
    struct upload_row r = {0};
    char err[256];
    if (http_parse_int(req->params[1], 1, 10000, &part) != 0 ||
        !uploads_check_sig(app->uploads, req->params[0], (int)part, http_query(req, "expires"),
                           http_query(req, "sig"))) {
        http_reply_error(resp, 403, "forbidden",
                         "the part URL's signature is invalid or has expired");
        return;
    }
    int rc = store_upload_get(app->store, req->params[0], &r);
    if (rc != 0) {
        http_reply_error(resp, rc < 0 ? 503 : 404, rc < 0 ? "unavailable" : "not_found",
                         rc < 0 ? "the database failed" : "no such upload");
        return;
    }
    if (strcmp(r.state, "open") != 0 || strcmp(r.backend, "local") != 0 || part > r.nparts) {
        http_reply_error(resp, 409, "upload_closed", "upload %s is %s", r.id, r.state);
        goto out;
    }
    const char *cl = http_header(req, "Content-Length");
    if (cl && strtoll(cl, NULL, 10) > r.part_size) {
        http_reply_error(resp, 413, "payload_too_large", "a part is at most %lld bytes",
                         (long long)r.part_size);
        goto out;
    }
    struct part_put *pp = xcalloc(1, sizeof *pp);
    pp->limit = r.part_size;
    pp->part = (int)part;
    pp->w = uploads_part_begin(app->uploads, r.id, (int)part, err, sizeof err);
    if (!pp->w) {
        free(pp);
        log_error("upload %s part %lld: %s", r.id, (long long)part, err);
        http_reply_error(resp, 503, "unavailable", "cannot store the part");
        goto out;
    }
    req->stream = pp;
out:
    upload_row_cleanup(&r);
}

static void part_data(struct http_request *req, const char *data, size_t len,
                      struct http_response *resp)
{
    struct part_put *pp = req->stream;
    if (!pp)
        return;
    pp->got += (int64_t)len;
    if (pp->got > pp->limit) {
        http_reply_error(resp, 413, "payload_too_large", "a part is at most %lld bytes",
                         (long long)pp->limit);
        return;
    }
    if (uploads_part_write(pp->w, data, len) != 0)
        http_reply_error(resp, 503, "unavailable", "cannot store the part");
}

static void part_end(struct http_request *req, struct http_response *resp)
{
    struct part_put *pp = req->stream;
    if (!pp)
        return;
    if (pp->got == 0) {
        http_reply_error(resp, 400, "empty_part", "a part needs at least one byte");
        return;
    }
    char etag[33], quoted[40];
    int rc = uploads_part_commit(pp->w, etag);
    pp->w = NULL;
    if (rc == 1) {
        http_reply_error(resp, 409, "upload_closed", "the upload was completed or aborted");
        return;
    }
    if (rc != 0) {
        http_reply_error(resp, 503, "unavailable", "cannot store the part");
        return;
    }
    snprintf(quoted, sizeof quoted, "\"%s\"", etag);
    json_object *a = json_object_new_object();
    json_object_object_add(a, "part", json_object_new_int(pp->part));
    json_object_object_add(a, "size", json_object_new_int64(pp->got));
    json_object_object_add(a, "etag", json_object_new_string(quoted));
    http_reply_header(resp, "ETag", quoted);
    http_reply_json(resp, 200, a);
}

static void part_cleanup(struct http_request *req)
{
    struct part_put *pp = req->stream;
    if (!pp)
        return;
    uploads_part_abandon(pp->w);
    free(pp);
    req->stream = NULL;
}

const struct http_stream_ops api_upload_part_ops = {
    .begin = part_begin,
    .data = part_data,
    .end = part_end,
    .cleanup = part_cleanup,
};
