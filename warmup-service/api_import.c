/* api_import.c - POST /users/import: a text/csv body with the header
 * `name,email_id`, streamed through the CSV parser so a large file never
 * sits in memory. Valid rows are registered exactly as by /register, in
 * transactions of IMPORT_BATCH rows (all or nothing per batch; a cut
 * connection keeps the batches already committed). Invalid rows are
 * reported with their line number (line 1 is the header).
 * HTTP pool thread; the import state is owned by the request. */
#include "api.h"
#include "app.h"
#include "csv.h"
#include "log.h"
#include "metrics.h"
#include "outbox.h"
#include "sender.h"
#include "store.h"
#include "users.h"
#include "xalloc.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define IMPORT_BATCH 500
#define IMPORT_MAX_REPORTED 1000 /* invalid rows listed; all are counted */

enum { STOP_DB = 1, STOP_HEADER = 2 };

struct import {
    struct app *app;
    struct csv_parser *csv;
    struct user_input batch[IMPORT_BATCH];
    size_t n;
    long imported, duplicates, invalid_total;
    json_object *invalid;
    int header_seen;
    char header_err[160];
};

static void add_invalid(struct import *im, long line, const char *why)
{
    im->invalid_total++;
    metric_inc(im->app->import_invalid);
    if (json_object_array_length(im->invalid) >= IMPORT_MAX_REPORTED)
        return;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "line", json_object_new_int64(line));
    json_object_object_add(o, "error", json_object_new_string(why));
    json_object_array_add(im->invalid, o);
}

/* flush - commit the batch; 0 or STOP_DB */
static int flush(struct import *im)
{
    if (im->n == 0)
        return 0;
    struct user_reg regs[IMPORT_BATCH];
    int result[IMPORT_BATCH];
    for (size_t i = 0; i < im->n; i++)
        regs[i] = user_input_reg(&im->batch[i]);
    int rc =
        store_register_batch(im->app->store, regs, im->n, im->app->cfg->svc.user_topic, result);
    if (rc == 0) {
        long added = 0;
        for (size_t i = 0; i < im->n; i++) {
            if (result[i] == STORE_INSERTED)
                added++;
            else
                im->duplicates++;
        }
        im->imported += added;
        metric_add(im->app->users_registered, (double)added);
        metric_add(im->app->users_duplicate, (double)(long)(im->n - (size_t)added));
        outbox_publisher_notify(im->app->outbox);
        sender_notify(im->app->sender);
    }
    for (size_t i = 0; i < im->n; i++)
        user_input_cleanup(&im->batch[i]);
    im->n = 0;
    return rc == 0 ? 0 : STOP_DB;
}

/* trim - copy s without surrounding blanks into out[len] */
static void trim(const char *s, char *out, size_t len)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    if (n >= len)
        n = len - 1;
    memcpy(out, s, n);
    out[n] = '\0';
}

static int on_record(void *arg, long line, const char *const *f, size_t nf, const char *err)
{
    struct import *im = arg;
    char name[CSV_MAX_FIELD + 1], email[CSV_MAX_FIELD + 1];
    if (!im->header_seen) {
        im->header_seen = 1;
        if (err || nf != 2) {
            snprintf(im->header_err, sizeof im->header_err,
                     "line 1 must be the header name,email_id");
            return STOP_HEADER;
        }
        trim(f[0], name, sizeof name);
        trim(f[1], email, sizeof email);
        if (strcasecmp(name, "name") != 0 || strcasecmp(email, "email_id") != 0) {
            snprintf(im->header_err, sizeof im->header_err,
                     "line 1 must be the header name,email_id");
            return STOP_HEADER;
        }
        return 0;
    }
    if (err) {
        add_invalid(im, line, err);
        return 0;
    }
    if (nf != 2) {
        char why[96];
        snprintf(why, sizeof why, "expected 2 columns (name,email_id), got %zu", nf);
        add_invalid(im, line, why);
        return 0;
    }
    trim(f[0], name, sizeof name);
    trim(f[1], email, sizeof email);
    char why[256];
    if (user_input_make(&im->batch[im->n], name, email, why, sizeof why) != 0) {
        add_invalid(im, line, why);
        return 0;
    }
    im->n++;
    return im->n == IMPORT_BATCH ? flush(im) : 0;
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

static void import_begin(struct http_request *req, struct http_response *resp)
{
    (void)resp;
    struct import *im = xcalloc(1, sizeof *im);
    im->app = req->app;
    im->csv = csv_new(on_record, im);
    im->invalid = json_object_new_array();
    req->stream = im;
}

static void import_data(struct http_request *req, const char *data, size_t len,
                        struct http_response *resp)
{
    struct import *im = req->stream;
    int rc = csv_feed(im->csv, data, len);
    if (rc)
        reply_stop(im, rc, resp);
}

static void import_end(struct http_request *req, struct http_response *resp)
{
    struct import *im = req->stream;
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
    for (size_t i = 0; i < im->n; i++)
        user_input_cleanup(&im->batch[i]);
    csv_free(im->csv);
    json_object_put(im->invalid);
    free(im);
    req->stream = NULL;
}

const struct http_stream_ops api_import_ops = {
    .begin = import_begin,
    .data = import_data,
    .end = import_end,
    .cleanup = import_cleanup,
};
