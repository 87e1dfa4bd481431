/* api_reconcile.c - GET /emails/{id}/reconciliation (DESIGN 9.3): what
 * became of an email's copies, each counted once (hstore.h: struct
 * hstore_recon), with up to 100 Message-IDs of the missing ones. The one
 * owner of that answer's shape. HTTP pool threads; reads only. */
#include "api.h"
#include "happ.h"
#include "hstore.h"
#include "httpd.h"
#include "timeutil.h"

#include <json-c/json.h>
#include <stdint.h>

/* recon_json - the answer's object, fields in the contract's order */
static json_object *recon_json(const struct hstore_recon *r)
{
    json_object *o = json_object_new_object();
    const struct {
        const char *name;
        int64_t v;
    } f[] = {{"email_id", r->email_id},     {"accepted", r->accepted},   {"tracked", r->tracked},
             {"inbox", r->inbox},           {"spam", r->spam},           {"bounced", r->bounced},
             {"complained", r->complained}, {"unchecked", r->unchecked}, {"pending", r->pending},
             {"missing", r->missing}};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        json_object_object_add(o, f[i].name, json_object_new_int64(f[i].v));
    json_object *ids = json_object_new_array();
    for (size_t i = 0; i < r->nmissing_ids; i++)
        json_object_array_add(ids, json_object_new_string(r->missing_ids[i]));
    json_object_object_add(o, "missing_ids", ids);
    return o;
}

void api_reconciliation(struct http_request *req, struct http_response *resp)
{
    struct happ *app = req->app;
    int64_t id;
    if (!req->nparams || http_parse_int(req->params[0], 1, INT64_MAX, &id) != 0) {
        http_reply_error(resp, 400, "invalid_id", "the email id must be a positive integer");
        return;
    }
    struct hstore_recon r;
    int64_t window_start = time_now_ms() - app->cfg->track_window_s * 1000;
    int rc = hstore_reconcile(app->store, id, window_start, &r);
    if (rc == 1) {
        http_reply_error(resp, 404, "not_found", "no copy of email %lld is tracked", (long long)id);
    } else if (rc != 0) {
        http_reply_error(resp, 503, "unavailable", "the reconciliation could not be read");
    } else {
        http_reply_json(resp, 200, recon_json(&r));
        hstore_recon_cleanup(&r);
    }
}
