/* api_emails.c - POST /send, GET /emails, GET /emails/{id}, the campaign
 * controls (pause, resume, rate-limit, reconcile) and GET /dlq.
 * HTTP pool threads; writes go through the store, the sender is told. */
#include "addr.h"
#include "api.h"
#include "app.h"
#include "fanout.h"
#include "jsonx.h"
#include "log.h"
#include "mime.h"
#include "sender.h"
#include "smtp/smtp_clients.h"
#include "store.h"
#include "tmpl.h"
#include "timeutil.h"
#include "users.h"
#include "xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SUBJECT_MAX 998
#define NAME_MAX_BYTES 256

/* email_json - the contract's shape of an email with its progress; with
 * sender, the reason its identity holds its pending copies back */
static json_object *email_json(const struct email_info *e, struct sender *sender)
{
    const char *status = e->pending + e->failed == 0 ? "done" : e->paused ? "paused" : "running";
    json_object *p = json_object_new_object();
    json_object_object_add(p, "sent", json_object_new_int64(e->sent));
    json_object_object_add(p, "failed", json_object_new_int64(e->failed));
    json_object_object_add(p, "pending", json_object_new_int64(e->pending));
    json_object_object_add(p, "dead", json_object_new_int64(e->dead));
    json_object_object_add(p, "suppressed", json_object_new_int64(e->suppressed));
    json_object_object_add(p, "status", json_object_new_string(status));
    json_object_object_add(p, "tpm", json_object_new_int(e->tpm));
    char why[256];
    if (sender && e->pending + e->failed > 0 && sender_email_reason(sender, e->id, why, sizeof why))
        json_object_object_add(p, "reason", json_object_new_string(why));
    json_object *o = json_object_new_object();
    json_object_object_add(o, "email_id", json_object_new_int64(e->id));
    json_object_object_add(o, "message_id", json_object_new_string(e->message_id));
    json_object_object_add(o, "from", json_object_new_string(e->from));
    json_object_object_add(o, "subject", json_object_new_string(e->subject));
    json_object_object_add(o, "smtp_client", json_object_new_string(e->smtp_client));
    json_object_object_add(o, "created_at", json_object_new_string(e->created_at));
    json_object_object_add(o, "status", json_object_new_string(status));
    static const char *const kinds[] = {"broadcast", "campaign", "messages"};
    json_object_object_add(o, "kind", json_object_new_string(kinds[e->kind <= 2 ? e->kind : 0]));
    if (e->template_name) {
        json_object_object_add(o, "template", json_object_new_string(e->template_name));
        json_object_object_add(o, "template_version", json_object_new_int(e->template_version));
    }
    if (e->kind == EMAIL_KIND_MESSAGES)
        json_object_object_add(o, "priority",
                               json_object_new_string(e->priority ? "high" : "normal"));
    if (e->campaign_id > 0) {
        json_object_object_add(o, "campaign", json_object_new_int64(e->campaign_id));
        if (e->variant)
            json_object_object_add(o, "variant", json_object_new_string(e->variant));
    }
    json_object_object_add(o, "progress", p);
    return o;
}

/* dead_letter_json - the shape of one /dlq entry */
static json_object *dead_letter_json(const struct dead_letter *d)
{
    char at[32];
    time_rfc3339_ms(d->at_ms, at, sizeof at);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "delivery_id", json_object_new_int64(d->copy_id));
    json_object_object_add(o, "email_id", json_object_new_int64(d->email_id));
    json_object_object_add(o, "recipient", json_object_new_string(d->recipient));
    json_object_object_add(o, "attempts", json_object_new_int(d->attempts));
    json_object_object_add(o, "smtp_code", json_object_new_int(d->smtp_code));
    json_object_object_add(o, "smtp_enhanced", json_object_new_string(d->smtp_enhanced));
    json_object_object_add(o, "smtp_reply", json_object_new_string(d->smtp_reply));
    json_object_object_add(o, "at", json_object_new_string(at));
    return o;
}

/* path_id - the {id} segment as a positive integer, or reply 404 */
static int path_id(struct http_request *req, struct http_response *resp, int64_t *id)
{
    if (!req->nparams || http_parse_int(req->params[0], 1, INT64_MAX, id) != 0) {
        http_reply_error(resp, 404, "not_found", "no email with id '%.40s'",
                         req->nparams ? req->params[0] : "");
        return -1;
    }
    return 0;
}

/* reply_email - 200 with the email, 404 unknown, 503 store error */
static void reply_email(struct app *app, int64_t id, struct http_response *resp)
{
    struct email_info e;
    int rc = store_get_email(app->store, id, false, &e);
    if (rc == 1) {
        http_reply_error(resp, 404, "not_found", "no email with id %lld", (long long)id);
        return;
    }
    if (rc != 0) {
        http_reply_error(resp, 503, "unavailable", "the email could not be read");
        return;
    }
    http_reply_json(resp, 200, email_json(&e, app->sender));
    email_info_cleanup(&e);
}

struct placeholder_check {
    struct app *app;
    struct http_response *resp;
    int rc; /* -1: answered */
};

static void check_key(void *arg, const char *key)
{
    struct placeholder_check *pc = arg;
    int64_t n = 0;
    char *example = NULL;
    if (pc->rc != 0 || tmpl_builtin(key))
        return;
    if (store_users_missing(pc->app->store, key, &n, &example) != 0) {
        http_reply_error(pc->resp, 503, "unavailable", "the users could not be read");
        pc->rc = -1;
    } else if (n > 0) {
        http_reply_error(pc->resp, 400, "missing_placeholder",
                         "placeholder {{%s}} has no value for %lld users (e.g. %s) and /send has "
                         "no defaults",
                         key, (long long)n, example ? example : "");
        pc->rc = -1;
    }
    free(example);
}

/* check_placeholders - every placeholder of the parts that is not a
 * builtin has a value in every recipient's attributes; else the 400
 * naming it (or a 503) is answered and -1 returned */
static int check_placeholders(struct app *app, const char *const parts[3],
                              struct http_response *resp)
{
    struct placeholder_check pc = {.app = app, .resp = resp};
    for (int i = 0; i < 3 && pc.rc == 0; i++)
        tmpl_keys(parts[i], check_key, &pc);
    return pc.rc;
}

void api_send(struct http_request *req, struct http_response *resp)
{
    struct app *app = req->app;
    static const char *const keys[] = {"from", "from_name",   "subject", "body",
                                       "html", "smtp_client", "tpm",     NULL};
    char err[256];
    struct identity ident = {0}; /* the From's identity, when it has one */
    json_object *body = NULL;
    const char *from, *from_name, *subject, *text, *html, *client;
    int64_t tpm = 0;
    struct addr fa;
    if (!req->body) {
        http_reply_error(resp, 400, "invalid_json", "a JSON body is required");
        return;
    }
    if (jsonx_parse_object(req->body, req->body_len, &body, err, sizeof err) != 0) {
        http_reply_error(resp, 400, "invalid_json", "%s", err);
        return;
    }
    if (jsonx_check_keys(body, keys, err, sizeof err) != 0 ||
        jsonx_get_string(body, "from", true, 1024, &from, err, sizeof err) != 0 ||
        jsonx_get_string(body, "from_name", false, NAME_MAX_BYTES, &from_name, err, sizeof err) !=
            0 ||
        jsonx_get_string(body, "subject", true, SUBJECT_MAX, &subject, err, sizeof err) != 0 ||
        jsonx_get_string(body, "body", false, SIZE_MAX, &text, err, sizeof err) != 0 ||
        jsonx_get_string(body, "html", false, SIZE_MAX, &html, err, sizeof err) != 0 ||
        jsonx_get_string(body, "smtp_client", false, 128, &client, err, sizeof err) != 0 ||
        jsonx_get_int(body, "tpm", false, 0, 1000000, &tpm, NULL, err, sizeof err) != 0)
        goto bad;
    /* body is required; empty only with html (the text part is then made from the html) */
    if (!text || (!*text && (!html || !*html))) {
        snprintf(err, sizeof err, "field 'body' %s", text ? "must not be empty" : "is required");
        goto bad;
    }
    char why[160];
    if (addr_parse(from, &fa, why, sizeof why) != 0) {
        snprintf(err, sizeof err, "from is not a valid address: %s", why);
        goto bad;
    }
    /* From, MAIL FROM and the Message-IDs stay ASCII: no SMTPUTF8 here */
    if (addr_ascii(&fa, why, sizeof why) != 0) {
        snprintf(err, sizeof err, "from: %s", why);
        goto bad;
    }
    if (mime_check_header_text(subject, SUBJECT_MAX, why, sizeof why) != 0) {
        snprintf(err, sizeof err, "subject: %s", why);
        goto bad;
    }
    if (from_name && mime_check_header_text(from_name, NAME_MAX_BYTES, why, sizeof why) != 0) {
        snprintf(err, sizeof err, "from_name: %s", why);
        goto bad;
    }
    /* each part filled for a recipient whose name and address are as long
     * as registration allows must stay within what a worker will compose */
    const char *parts[] = {subject, text, html};
    static const char *const part_names[] = {"subject", "body", "html"};
    for (int i = 0; i < 3; i++) {
        size_t worst = mime_fill_worst(parts[i], i == 2, USER_NAME_MAX, ADDR_MAX);
        if (worst > MIME_FILLED_MAX) {
            snprintf(err, sizeof err,
                     "%s: its placeholders can fill it to %zu bytes for one recipient, more than "
                     "the %d-byte limit; use fewer placeholders",
                     part_names[i], worst, MIME_FILLED_MAX);
            goto bad;
        }
    }
    if (check_placeholders(app, parts, resp) != 0)
        goto out;
    const struct smtp_clients *cl = app->clients;
    if (client && smtp_clients_find(cl, client) < 0) {
        snprintf(err, sizeof err, "smtp_client '%.64s' is not configured", client);
        goto bad;
    }
    /* a From that is an identity's address: its name and SmtpClient
     * unless the request names others */
    if (store_identity_by_address(app->store, fa.norm, &ident) == 0) {
        if (!from_name)
            from_name = ident.name;
        if (!client && ident.smtp_client && smtp_clients_find(cl, ident.smtp_client) >= 0)
            client = ident.smtp_client;
    }
    struct email_spec spec = {
        .from = fa.norm,
        .from_name = from_name,
        .subject = subject,
        .body = text,
        .html = html,
        .smtp_client = client ? client : cl->v[cl->default_idx].s.name,
        .msgid_domain = app->cfg->message_id_domain ? app->cfg->message_id_domain : fa.domain,
        .tpm = (int)tpm,
    };
    int64_t id = 0, recipients = 0;
    char *msgid = NULL;
    if (store_create_email(app->store, &spec, &id, &recipients, &msgid) != 0) {
        http_reply_error(resp, 503, "unavailable", "the email could not be stored");
        goto out;
    }
    fanout_notify(app->fanout);
    log_info("email queued email_id=%lld message_id=%s recipients=%lld client=%s", (long long)id,
             msgid, (long long)recipients, spec.smtp_client);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "message_id", json_object_new_string(msgid));
    json_object_object_add(o, "email_id", json_object_new_int64(id));
    json_object_object_add(o, "recipients", json_object_new_int64(recipients));
    http_reply_json(resp, 202, o);
    free(msgid);
    goto out;
bad:
    http_reply_error(resp, 400, "invalid_field", "%s", err);
out:
    identity_cleanup(&ident);
    json_object_put(body);
}

void api_emails(struct http_request *req, struct http_response *resp)
{
    struct app *app = req->app;
    int64_t limit, offset;
    if (http_paging(req, resp, 100, 1000, &limit, &offset) != 0)
        return;
    struct email_info *v;
    size_t n;
    if (store_list_emails(app->store, limit, offset, &v, &n) != 0) {
        http_reply_error(resp, 503, "unavailable", "the email list could not be read");
        return;
    }
    json_object *arr = json_object_new_array();
    for (size_t i = 0; i < n; i++)
        json_object_array_add(arr, email_json(&v[i], app->sender));
    store_emails_free(v, n);
    http_reply_json(resp, 200, arr);
}

void api_email(struct http_request *req, struct http_response *resp)
{
    int64_t id;
    if (path_id(req, resp, &id) == 0)
        reply_email(req->app, id, resp);
}

static void set_paused(struct http_request *req, struct http_response *resp, bool paused)
{
    struct app *app = req->app;
    int64_t id;
    if (path_id(req, resp, &id) != 0)
        return;
    int rc = store_set_paused(app->store, id, paused);
    if (rc == 0) {
        sender_email_changed(app->sender, id);
        if (!paused)
            fanout_notify(app->fanout);
        log_info("email_id=%lld %s", (long long)id, paused ? "paused" : "resumed");
    }
    if (rc == 1)
        http_reply_error(resp, 404, "not_found", "no email with id %lld", (long long)id);
    else if (rc != 0)
        http_reply_error(resp, 503, "unavailable", "the email could not be updated");
    else
        reply_email(app, id, resp);
}

void api_pause(struct http_request *req, struct http_response *resp)
{
    set_paused(req, resp, true);
}

void api_resume(struct http_request *req, struct http_response *resp)
{
    set_paused(req, resp, false);
}

void api_rate_limit(struct http_request *req, struct http_response *resp)
{
    struct app *app = req->app;
    int64_t id, tpm = 0;
    char err[256];
    json_object *body = NULL;
    static const char *const keys[] = {"tpm", NULL};
    if (path_id(req, resp, &id) != 0)
        return;
    if (!req->body || jsonx_parse_object(req->body, req->body_len, &body, err, sizeof err) != 0) {
        http_reply_error(resp, 400, "invalid_json", "%s",
                         req->body ? err : "a JSON body {\"tpm\":N} is required");
        return;
    }
    if (jsonx_check_keys(body, keys, err, sizeof err) != 0 ||
        jsonx_get_int(body, "tpm", true, 0, 1000000, &tpm, NULL, err, sizeof err) != 0) {
        http_reply_error(resp, 400, "invalid_field", "%s", err);
        json_object_put(body);
        return;
    }
    json_object_put(body);
    int rc = store_set_tpm(app->store, id, (int)tpm);
    if (rc == 1) {
        http_reply_error(resp, 404, "not_found", "no email with id %lld", (long long)id);
        return;
    }
    if (rc != 0) {
        http_reply_error(resp, 503, "unavailable", "the email could not be updated");
        return;
    }
    sender_email_changed(app->sender, id);
    log_info("email_id=%lld rate limit tpm=%lld", (long long)id, (long long)tpm);
    reply_email(app, id, resp);
}

void api_reconcile(struct http_request *req, struct http_response *resp)
{
    struct app *app = req->app;
    int64_t id, n = 0;
    if (path_id(req, resp, &id) != 0)
        return;
    int rc = store_reconcile(app->store, id, time_now_ms(), &n);
    if (rc == 1) {
        http_reply_error(resp, 404, "not_found", "no email with id %lld", (long long)id);
        return;
    }
    if (rc != 0) {
        http_reply_error(resp, 503, "unavailable", "the email could not be reconciled");
        return;
    }
    sender_notify(app->sender);
    log_info("email_id=%lld reconcile requeued=%lld", (long long)id, (long long)n);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "requeued", json_object_new_int64(n));
    http_reply_json(resp, 200, o);
}

void api_dlq(struct http_request *req, struct http_response *resp)
{
    struct app *app = req->app;
    int64_t limit, offset, email = 0;
    if (http_paging(req, resp, 100, 1000, &limit, &offset) != 0 ||
        http_query_int(req, resp, "email_id", 0, 1, INT64_MAX, &email) != 0)
        return;
    struct dead_letter *v;
    size_t n;
    if (store_dlq(app->store, email, limit, offset, &v, &n) != 0) {
        http_reply_error(resp, 503, "unavailable", "the dead letters could not be read");
        return;
    }
    json_object *arr = json_object_new_array();
    for (size_t i = 0; i < n; i++)
        json_object_array_add(arr, dead_letter_json(&v[i]));
    store_dead_letters_free(v, n);
    http_reply_json(resp, 200, arr);
}
