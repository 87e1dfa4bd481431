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

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int api_paging(struct http_request *req, struct http_response *resp, int64_t def, int64_t max,
               int64_t *limit, int64_t *offset)
{
    const char *l = http_query(req, "limit"), *o = http_query(req, "offset");
    *limit = def;
    *offset = 0;
    if (l && parse_i64(l, 1, max, limit) != 0) {
        http_reply_error(resp, 400, "invalid_query", "limit must be an integer from 1 to %lld",
                         (long long)max);
        return -1;
    }
    if (o && parse_i64(o, 0, INT64_MAX, offset) != 0) {
        http_reply_error(resp, 400, "invalid_query", "offset must be a non-negative integer");
        return -1;
    }
    return 0;
}

void api_register(struct http_request *req, struct http_response *resp)
{
    struct app *app = req->app;
    char err[256];
    json_object *body = NULL;
    const char *name, *email;
    static const char *const keys[] = {"name", "email_id", NULL};
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
    struct user_input u;
    if (user_input_make(&u, name, email, err, sizeof err) != 0) {
        http_reply_error(resp, 400, "invalid_field", "%s", err);
        goto out;
    }
    struct user_reg reg = user_input_reg(&u);
    int result;
    if (store_register_one(app->store, &reg, app->cfg->svc.user_topic, &result) != 0) {
        http_reply_error(resp, 503, "unavailable", "the registration could not be stored");
    } else if (result == STORE_DUPLICATE) {
        metric_inc(app->users_duplicate);
        http_reply_error(resp, 409, "already_registered", "%s is already registered", u.addr.norm);
    } else {
        outbox_publisher_notify(app->outbox);
        sender_notify(app->sender); /* the backfill of earlier emails */
        metric_inc(app->users_registered);
        log_info("user registered email_id=%s domain=%s", u.addr.norm, u.addr.domain);
        json_object *o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(u.name));
        json_object_object_add(o, "email_id", json_object_new_string(u.addr.norm));
        json_object_object_add(o, "created_at", json_object_new_string(u.created_at));
        http_reply_json(resp, 201, o);
    }
    user_input_cleanup(&u);
out:
    json_object_put(body);
}

void api_users(struct http_request *req, struct http_response *resp)
{
    struct app *app = req->app;
    int64_t limit, offset;
    if (api_paging(req, resp, 100, 1000, &limit, &offset) != 0)
        return;
    json_object *arr = store_list_users(app->store, limit, offset);
    if (!arr) {
        http_reply_error(resp, 503, "unavailable", "the user list could not be read");
        return;
    }
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

static void ids_add(void *arg, const char *email_id)
{
    struct ids_stream *s = arg;
    json_object *js = json_object_new_string(email_id);
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
