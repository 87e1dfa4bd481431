/* api_users.c - POST /register, GET /users, GET /emailIds.
 * HTTP pool threads. */
#include "api.h"
#include "app.h"
#include "buf.h"
#include "jsonx.h"
#include "log.h"
#include "metrics.h"
#include "outbox.h"
#include "sender.h"
#include "store.h"
#include "users.h"
#include "xalloc.h"

#include <stdlib.h>
#include <string.h>

/* one POST /register between its handler and its group commit */
struct reg_call {
    struct store_reg_req req; /* first: done() gets it back */
    struct user_input u;
    struct app *app;
    struct http_response *resp;
    struct http_deferred *d;
};

/* reg_done - on the store's registration thread, after the commit: the
 * answer, then the connection goes back to the HTTP server */
static void reg_done(struct store_reg_req *r)
{
    struct reg_call *c = (struct reg_call *)r;
    struct app *app = c->app;
    if (r->rc != 0) {
        http_reply_error(c->resp, 503, "unavailable", "the registration could not be stored");
    } else if (r->result == STORE_DUPLICATE) {
        metric_inc(app->users_duplicate);
        http_reply_error(c->resp, 409, "already_registered", "%s is already registered",
                         c->u.addr.norm);
    } else {
        outbox_publisher_notify(app->outbox);
        if (r->backfilled > 0)
            sender_notify(app->sender); /* copies of earlier emails wait */
        metric_inc(app->users_registered);
        log_info("user registered email_id=%s domain=%s backfilled=%lld", c->u.addr.norm,
                 c->u.addr.domain, (long long)r->backfilled);
        json_object *o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(c->u.name));
        json_object_object_add(o, "email_id", json_object_new_string(c->u.addr.norm));
        json_object_object_add(o, "created_at", json_object_new_string(c->u.created_at));
        http_reply_json(c->resp, 201, o);
    }
    struct http_deferred *d = c->d;
    user_input_cleanup(&c->u);
    free(c);
    http_resume(d);
}

/* POST /register: validated here, committed by the store's registration
 * thread together with every other registration waiting (one fsync), and
 * answered from there: the pool thread is free meanwhile (http_defer) */
void api_register(struct http_request *req, struct http_response *resp)
{
    struct app *app = req->app;
    char err[256];
    json_object *body = NULL;
    const char *name, *email;
    static const char *const keys[] = {"name", "email_id", "attributes", NULL};
    if (!req->body) {
        http_reply_error(resp, 400, "invalid_json", "a JSON body is required");
        return;
    }
    if (jsonx_parse_object(req->body, req->body_len, &body, err, sizeof err) != 0) {
        http_reply_error(resp, 400, "invalid_json", "%s", err);
        return;
    }
    if (jsonx_check_keys(body, keys, err, sizeof err) != 0 ||
        jsonx_get_string(body, "name", true, USER_NAME_MAX, &name, err, sizeof err) != 0 ||
        jsonx_get_string(body, "email_id", true, 1024, &email, err, sizeof err) != 0) {
        http_reply_error(resp, 400, "invalid_field", "%s", err);
        goto out;
    }
    struct reg_call *c = xcalloc(1, sizeof *c);
    json_object *attrs = NULL;
    json_object_object_get_ex(body, "attributes", &attrs);
    if (user_input_make(&c->u, name, email, err, sizeof err) != 0 ||
        user_input_attributes(&c->u, attrs, "attributes", err, sizeof err) != 0) {
        user_input_cleanup(&c->u);
        free(c);
        http_reply_error(resp, 400, "invalid_field", "%s", err);
        goto out;
    }
    c->app = app;
    c->resp = resp;
    c->req.u = user_input_reg(&c->u);
    c->req.topic = app->cfg->svc.user_topic;
    c->req.done = reg_done;
    c->d = http_defer(req, resp);
    store_register_async(app->store, &c->req);
out:
    json_object_put(body);
}

void api_users(struct http_request *req, struct http_response *resp)
{
    struct app *app = req->app;
    int64_t limit, offset;
    if (http_paging(req, resp, 100, 1000, &limit, &offset) != 0)
        return;
    struct user_row *v;
    size_t n;
    if (store_list_users(app->store, limit, offset, &v, &n) != 0) {
        http_reply_error(resp, 503, "unavailable", "the user list could not be read");
        return;
    }
    json_object *arr = json_object_new_array();
    for (size_t i = 0; i < n; i++) {
        json_object *u = json_object_new_object();
        json_object_object_add(u, "name", json_object_new_string(v[i].name));
        json_object_object_add(u, "email_id", json_object_new_string(v[i].address));
        json_object_object_add(u, "created_at", json_object_new_string(v[i].created_at));
        json_object *attrs = v[i].attributes ? json_tokener_parse(v[i].attributes) : NULL;
        if (attrs)
            json_object_object_add(u, "attributes", attrs);
        json_object_array_add(arr, u);
    }
    store_users_free(v, n);
    http_reply_json(resp, 200, arr);
}

/* GET /emailIds streams the JSON array page by page: memory stays bounded
 * however many users there are. */
struct ids_stream {
    struct store *store;
    int64_t after;
    int state; /* 0 start, 1 rows, 2 done */
    int first;
    struct buf out;
    size_t pos;
};

static void ids_add(void *arg, const char *address)
{
    struct ids_stream *s = arg;
    json_object *js = json_object_new_string(address);
    const char *txt =
        json_object_to_json_string_ext(js, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    if (!s->first)
        buf_appendc(&s->out, ',');
    s->first = 0;
    buf_append(&s->out, txt, strlen(txt));
    json_object_put(js);
}

static ssize_t ids_read(void *ctx, char *dst, size_t max)
{
    struct ids_stream *s = ctx;
    while (s->pos == s->out.len) {
        buf_reset(&s->out);
        s->pos = 0;
        if (s->state == 0) {
            buf_appendc(&s->out, '[');
            s->state = 1;
        } else if (s->state == 1) {
            int n = store_email_ids_page(s->store, &s->after, 1000, ids_add, s);
            if (n < 0)
                return -1;
            if (n == 0) {
                buf_append(&s->out, "]\n", 2);
                s->state = 2;
            }
        } else {
            return 0;
        }
    }
    size_t n = s->out.len - s->pos;
    if (n > max)
        n = max;
    memcpy(dst, s->out.data + s->pos, n);
    s->pos += n;
    return (ssize_t)n;
}

static void ids_free(void *ctx)
{
    struct ids_stream *s = ctx;
    buf_cleanup(&s->out);
    free(s);
}

void api_email_ids(struct http_request *req, struct http_response *resp)
{
    struct app *app = req->app;
    struct ids_stream *s = xcalloc(1, sizeof *s);
    s->store = app->store;
    s->first = 1;
    buf_init(&s->out, 4 * 1024 * 1024);
    http_reply_stream(resp, 200, "application/json", ids_read, s, ids_free);
}
