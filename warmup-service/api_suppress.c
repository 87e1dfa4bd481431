/* api_suppress.c - the suppression list (GET/POST /suppressions, DELETE
 * /suppressions/{address}) and the public one-click unsubscribe (RFC
 * 8058): GET /u/{token} answers a confirmation page, POST /u/{token}
 * suppresses. /u/ is the one public form endpoint: no bearer token,
 * posts from other origins allowed (its route flags); the token itself is
 * the authorisation (unsub.h). HTTP pool threads. */
#include "addr.h"
#include "api.h"
#include "app.h"
#include "jsonx.h"
#include "log.h"
#include "mime.h"
#include "store.h"
#include "suppress.h"
#include "timeutil.h"
#include "unsub.h"
#include "xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* no script, style, image or frame; the form may post to this origin only */
#define PAGE_CSP "default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

static json_object *suppression_json(const struct suppression *x)
{
    char at[32];
    time_rfc3339_ms(x->at_ms, at, sizeof at);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "email_id", json_object_new_string(x->address));
    json_object_object_add(o, "reason", json_object_new_string(x->reason));
    json_object_object_add(o, "at", json_object_new_string(at));
    return o;
}

/* reply_stored - status with the address's entry as stored */
static void reply_stored(struct app *app, const char *address, int status,
                         struct http_response *resp)
{
    struct suppression x;
    if (store_get_suppression(app->store, address, &x) != 0) {
        http_reply_error(resp, 503, "unavailable", "the suppression list could not be read");
        return;
    }
    http_reply_json(resp, status, suppression_json(&x));
    suppression_cleanup(&x);
}

void api_suppressions(struct http_request *req, struct http_response *resp)
{
    struct app *app = req->app;
    int64_t limit, offset;
    if (http_paging(req, resp, 100, 1000, &limit, &offset) != 0)
        return;
    struct suppression *v;
    size_t n;
    if (store_list_suppressions(app->store, limit, offset, &v, &n) != 0) {
        http_reply_error(resp, 503, "unavailable", "the suppression list could not be read");
        return;
    }
    json_object *arr = json_object_new_array();
    for (size_t i = 0; i < n; i++)
        json_object_array_add(arr, suppression_json(&v[i]));
    store_suppressions_free(v, n);
    http_reply_json(resp, 200, arr);
}

/* POST /suppressions {"email_id","reason"}: 201 with the entry; an
 * address already suppressed is 200 with its entry as it was (its first
 * reason kept) */
void api_suppress_add(struct http_request *req, struct http_response *resp)
{
    struct app *app = req->app;
    static const char *const keys[] = {"email_id", "reason", NULL};
    char err[256], why[128];
    json_object *body = NULL;
    const char *email, *reason;
    struct addr a;
    if (!req->body) {
        http_reply_error(resp, 400, "invalid_json", "a JSON body is required");
        return;
    }
    if (jsonx_parse_object(req->body, req->body_len, &body, err, sizeof err) != 0) {
        http_reply_error(resp, 400, "invalid_json", "%s", err);
        return;
    }
    if (jsonx_check_keys(body, keys, err, sizeof err) != 0 ||
        jsonx_get_string(body, "email_id", true, 1024, &email, err, sizeof err) != 0 ||
        jsonx_get_string(body, "reason", true, 64, &reason, err, sizeof err) != 0) {
        http_reply_error(resp, 400, "invalid_field", "%s", err);
        goto out;
    }
    if (addr_parse(email, &a, why, sizeof why) != 0) {
        http_reply_error(resp, 400, "invalid_field", "email_id is not a valid address: %s", why);
        goto out;
    }
    if (!suppress_reason_ok(reason)) {
        http_reply_error(resp, 400, "invalid_field",
                         "reason must be one of unsubscribed, hard_bounce, complaint, manual");
        goto out;
    }
    int result;
    int64_t dropped;
    if (suppress_add(app->store, app->outbox, app->cfg->svc.user_topic, &a, reason, 0, &result,
                     &dropped) != 0) {
        http_reply_error(resp, 503, "unavailable", "the suppression could not be stored");
        goto out;
    }
    reply_stored(app, a.norm, result == STORE_INSERTED ? 201 : 200, resp);
out:
    json_object_put(body);
}

void api_suppress_delete(struct http_request *req, struct http_response *resp)
{
    struct app *app = req->app;
    struct addr a;
    char why[128];
    const char *p = req->nparams ? req->params[0] : "";
    int rc = addr_parse(p, &a, why, sizeof why) == 0 ? store_unsuppress(app->store, a.norm) : 1;
    if (rc == 1) {
        http_reply_error(resp, 404, "not_found", "'%.300s' is not suppressed", p);
        return;
    }
    if (rc != 0) {
        http_reply_error(resp, 503, "unavailable", "the suppression could not be removed");
        return;
    }
    log_info("suppression removed email_id=%s", a.norm);
    http_reply_text(resp, 204, NULL, NULL);
}

/* ---- /u/{token} -------------------------------------------------------- */

/* token_address - the address and email of the path's token; false when
 * links are off or the token is not one of ours */
static bool token_address(struct http_request *req, struct addr *a, int64_t *email_id)
{
    const struct unsub_config *u = &((struct app *)req->app)->cfg->unsub;
    char address[UNSUB_ADDRESS_MAX + 1], why[128];
    if (!unsub_enabled(u) || req->nparams != 1 ||
        unsub_verify(u->secret, u->secret_len, req->params[0], address, sizeof address, email_id) !=
            0)
        return false;
    return addr_parse(address, a, why, sizeof why) == 0;
}

/* page - a self-contained HTML page (title, one paragraph, an optional
 * confirm form) with the browser guards */
static void page(struct http_response *resp, int status, const char *title, const char *text,
                 const char *address, bool form)
{
    char *esc = address ? mime_fill_html("{{email_id}}", "", address) : NULL;
    char *html =
        xasprintf("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                  "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                  "<meta name=\"robots\" content=\"noindex\"><title>%s</title></head>\n"
                  "<body><h1>%s</h1>\n<p>%s%s%s</p>\n%s</body></html>\n",
                  title, title, text, esc ? " " : "", esc ? esc : "",
                  form ? "<form method=\"post\"><input type=\"hidden\" name=\"List-Unsubscribe\" "
                         "value=\"One-Click\"><button type=\"submit\">Unsubscribe</button></form>\n"
                       : "");
    free(esc);
    http_reply_text(resp, status, "text/html; charset=utf-8", html);
    http_reply_header(resp, "Content-Security-Policy", PAGE_CSP);
    http_reply_header(resp, "Referrer-Policy", "no-referrer");
    http_reply_header(resp, "X-Frame-Options", "DENY");
}

/* GET /u/{token}: the confirmation page; a GET changes nothing (mail
 * scanners follow links) */
void api_unsub_page(struct http_request *req, struct http_response *resp)
{
    struct addr a;
    int64_t email_id;
    if (!token_address(req, &a, &email_id)) {
        page(resp, 404, "Link not valid",
             "This unsubscribe link is not valid. Use the link of a recent email.", NULL, false);
        return;
    }
    page(resp, 200, "Unsubscribe", "Stop all emails to", a.norm, true);
}

/* one_click_body - the body is RFC 8058's "List-Unsubscribe=One-Click" or
 * empty (trailing white space allowed) */
static bool one_click_body(const struct http_request *req)
{
    size_t n = req->body ? req->body_len : 0;
    while (n > 0 &&
           (req->body[n - 1] == '\r' || req->body[n - 1] == '\n' || req->body[n - 1] == ' '))
        n--;
    return n == 0 || (n == strlen(UNSUB_POST_VALUE) && memcmp(req->body, UNSUB_POST_VALUE, n) == 0);
}

/* POST /u/{token}: suppress the token's address (reason unsubscribed);
 * 200 also when it already was (idempotent, nothing published again). A
 * browser (Accept: text/html, our page's form) gets a page, a mail
 * client's one-click POST the JSON entry. */
void api_unsub(struct http_request *req, struct http_response *resp)
{
    struct app *app = req->app;
    struct addr a;
    int64_t email_id;
    const char *accept = http_header(req, "Accept");
    bool html = accept && strstr(accept, "text/html");
    if (!token_address(req, &a, &email_id)) {
        http_reply_error(resp, 404, "not_found", "no such unsubscribe link");
        return;
    }
    if (!one_click_body(req)) {
        http_reply_error(resp, 400, "invalid_body", "the body must be " UNSUB_POST_VALUE);
        return;
    }
    int result;
    int64_t dropped;
    if (suppress_add(app->store, app->outbox, app->cfg->svc.user_topic, &a, "unsubscribed",
                     email_id, &result, &dropped) != 0) {
        http_reply_error(resp, 503, "unavailable", "the unsubscription could not be stored");
        return;
    }
    if (html)
        page(resp, 200, "Unsubscribed", "No more emails will be sent to", a.norm, false);
    else
        reply_stored(app, a.norm, 200, resp);
}
