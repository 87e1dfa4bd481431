/* api_templates.c - POST /templates, PUT /templates/{name} (a new
 * version), GET /templates, GET /templates/{name}?version= (DESIGN 9.5):
 * the one owner of a template's JSON answer. A version, once stored,
 * never changes. HTTP pool threads. */
#include "addr.h"
#include "api.h"
#include "app.h"
#include "jsonx.h"
#include "log.h"
#include "mime.h"
#include "store.h"
#include "timeutil.h"
#include "tmpl.h"
#include "users.h"
#include "xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TEMPLATE_NAME_MAX 64
#define SUBJECT_MAX 998
#define TEMPLATE_MAX_BYTES (256 * 1024) /* subject, text, html and defaults */

/* template_name_ok - 1..64 of [A-Za-z0-9_.-]: safe in a path segment */
static bool template_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > TEMPLATE_NAME_MAX)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '-' || *s == '.'))
            return false;
    return true;
}

json_object *api_template_json(const struct template *t)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "name", json_object_new_string(t->name));
    json_object_object_add(o, "version", json_object_new_int(t->version));
    json_object_object_add(o, "subject", json_object_new_string(t->subject));
    json_object_object_add(o, "text", json_object_new_string(t->text));
    json_object_object_add(o, "html", t->html ? json_object_new_string(t->html) : NULL);
    json_object *d = json_tokener_parse(t->defaults);
    json_object_object_add(o, "defaults", d ? d : json_object_new_object());
    json_object_object_add(o, "from", t->from ? json_object_new_string(t->from) : NULL);
    json_object_object_add(o, "from_name",
                           t->from_name ? json_object_new_string(t->from_name) : NULL);
    json_object_object_add(o, "created_at", json_object_new_string(t->created_at));
    return o;
}

/* check_size - 0, or the reply 413 when subject, text, html and defaults
 * together are over TEMPLATE_MAX_BYTES or filling a part could exceed
 * what a worker composes */
static int check_size(struct http_response *resp, const char *const parts[3], const char *defaults)
{
    static const char *const names[] = {"subject", "text", "html"};
    size_t total = strlen(defaults);
    for (int i = 0; i < 3; i++)
        total += parts[i] ? strlen(parts[i]) : 0;
    if (total > TEMPLATE_MAX_BYTES) {
        http_reply_error(resp, 413, "template_too_large",
                         "the template is %zu bytes (subject, text, html and defaults), more than "
                         "%d",
                         total, TEMPLATE_MAX_BYTES);
        return -1;
    }
    for (int i = 0; i < 3; i++) {
        size_t worst = tmpl_worst(parts[i], i == 2, USER_NAME_MAX, ADDR_MAX, USER_ATTRIBUTES_MAX);
        if (worst > TMPL_FILLED_MAX) {
            http_reply_error(resp, 413, "template_too_large",
                             "%s: its placeholders can fill it to %zu bytes for one recipient, "
                             "more than the %d-byte limit; use fewer placeholders",
                             names[i], worst, TMPL_FILLED_MAX);
            return -1;
        }
    }
    return 0;
}

/* defaults_text - the defaults object checked as attributes are (keys,
 * scalar values, size) into *out (caller frees); "{}" when absent */
static int defaults_text(json_object *d, char **out, char *err, size_t len)
{
    struct user_input u = {0};
    if (user_input_attributes(&u, d, "defaults", err, len) != 0)
        return -1;
    *out = u.attributes ? u.attributes : xstrdup("{}");
    return 0;
}

/* add - POST (create) or PUT (a new version of name) */
static void add(struct http_request *req, struct http_response *resp, const char *path_name)
{
    struct app *app = req->app;
    static const char *const keys[] = {"name",     "subject", "text",      "html",
                                       "defaults", "from",    "from_name", NULL};
    char err[300], why[160];
    json_object *body = NULL, *defaults = NULL;
    const char *name = path_name, *subject, *text, *html, *from, *from_name;
    char *dtext = NULL;
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
        (!path_name &&
         jsonx_get_string(body, "name", true, TEMPLATE_NAME_MAX, &name, err, sizeof err) != 0) ||
        jsonx_get_string(body, "subject", true, SUBJECT_MAX, &subject, err, sizeof err) != 0 ||
        jsonx_get_string(body, "text", false, SIZE_MAX, &text, err, sizeof err) != 0 ||
        jsonx_get_string(body, "html", false, SIZE_MAX, &html, err, sizeof err) != 0 ||
        jsonx_get_string(body, "from", false, 1024, &from, err, sizeof err) != 0 ||
        jsonx_get_string(body, "from_name", false, USER_NAME_MAX, &from_name, err, sizeof err) != 0)
        goto bad;
    if (path_name && json_object_object_get_ex(body, "name", NULL)) {
        const char *bn = json_object_get_string(json_object_object_get(body, "name"));
        if (!bn || strcmp(bn, path_name) != 0) {
            snprintf(err, sizeof err, "name in the body differs from the path");
            goto bad;
        }
    }
    if (!template_name_ok(name)) {
        snprintf(err, sizeof err, "name must be 1-%d of A-Z a-z 0-9 _ - .", TEMPLATE_NAME_MAX);
        goto bad;
    }
    if ((!text || !*text) && (!html || !*html)) {
        snprintf(err, sizeof err, "text or html is required");
        goto bad;
    }
    if (mime_check_header_text(subject, SUBJECT_MAX, why, sizeof why) != 0) {
        snprintf(err, sizeof err, "subject: %s", why);
        goto bad;
    }
    if (from_name && mime_check_header_text(from_name, USER_NAME_MAX, why, sizeof why) != 0) {
        snprintf(err, sizeof err, "from_name: %s", why);
        goto bad;
    }
    if (from &&
        (addr_parse(from, &fa, why, sizeof why) != 0 || addr_ascii(&fa, why, sizeof why) != 0)) {
        snprintf(err, sizeof err, "from is not a valid address: %s", why);
        goto bad;
    }
    json_object_object_get_ex(body, "defaults", &defaults);
    if (defaults_text(defaults, &dtext, err, sizeof err) != 0)
        goto bad;
    const char *parts[3] = {subject, text, html};
    if (check_size(resp, parts, dtext) != 0)
        goto out;
    char now[32];
    time_rfc3339_ms(time_now_ms(), now, sizeof now);
    struct template_spec spec = {
        .name = name,
        .subject = subject,
        .text = text ? text : "",
        .html = html && *html ? html : NULL,
        .defaults = dtext,
        .from = from ? fa.norm : NULL,
        .from_name = from_name,
        .created_at = now,
    };
    int version = 0;
    int rc = store_add_template(app->store, &spec, path_name == NULL, &version);
    if (rc == STORE_DUPLICATE && !path_name) {
        http_reply_error(resp, 409, "template_exists",
                         "template '%s' exists; PUT /templates/%s adds a version", name, name);
    } else if (rc == 1) {
        http_reply_error(resp, 404, "unknown_template",
                         "no template '%s'; POST /templates creates it", name);
    } else if (rc != 0) {
        http_reply_error(resp, 503, "unavailable", "the template could not be stored");
    } else {
        log_info("template %s version %d stored", name, version);
        json_object *o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(name));
        json_object_object_add(o, "version", json_object_new_int(version));
        json_object_object_add(o, "created_at", json_object_new_string(now));
        http_reply_json(resp, 201, o);
    }
    goto out;
bad:
    http_reply_error(resp, 400, "invalid_field", "%s", err);
out:
    free(dtext);
    json_object_put(body);
}

void api_template_create(struct http_request *req, struct http_response *resp)
{
    add(req, resp, NULL);
}

void api_template_put(struct http_request *req, struct http_response *resp)
{
    if (!template_name_ok(req->params[0])) {
        http_reply_error(resp, 404, "unknown_template", "no such template");
        return;
    }
    add(req, resp, req->params[0]);
}

void api_templates(struct http_request *req, struct http_response *resp)
{
    struct app *app = req->app;
    struct template *v;
    size_t n;
    if (store_list_templates(app->store, &v, &n) != 0) {
        http_reply_error(resp, 503, "unavailable", "the templates could not be read");
        return;
    }
    json_object *arr = json_object_new_array();
    for (size_t i = 0; i < n; i++)
        json_object_array_add(arr, api_template_json(&v[i]));
    store_templates_free(v, n);
    http_reply_json(resp, 200, arr);
}

void api_template(struct http_request *req, struct http_response *resp)
{
    struct app *app = req->app;
    const char *name = req->params[0], *vq = http_query(req, "version");
    int64_t version = 0;
    if (vq) {
        char *end = NULL;
        long long v = strtoll(vq, &end, 10);
        if (!*vq || *end || v < 1 || v > 1000000000) {
            http_reply_error(resp, 400, "invalid_field", "version must be a positive integer");
            return;
        }
        version = v;
    }
    struct template t;
    int rc = template_name_ok(name) ? store_get_template(app->store, name, (int)version, &t) : 1;
    if (rc == 1) {
        http_reply_error(resp, 404, "unknown_template", "no template '%.64s'%s", name,
                         vq ? " in that version" : "");
        return;
    }
    if (rc != 0) {
        http_reply_error(resp, 503, "unavailable", "the template could not be read");
        return;
    }
    http_reply_json(resp, 200, api_template_json(&t));
    template_cleanup(&t);
}
