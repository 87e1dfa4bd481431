/* api.c - the health service's HTTP handlers and route table.
 * HTTP pool threads; reads only (the consumer thread writes). */
#include "happ.h"
#include "hstore.h"
#include "httpd.h"
#include "kconsumer.h"
#include "metrics.h"
#include "api.h"

#include "loops/loops.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void api_domains(struct http_request *req, struct http_response *resp)
{
    struct happ *app = req->app;
    json_object *arr = hstore_domains(app->store);
    if (!arr) {
        http_reply_error(resp, 503, "unavailable", "the domain list could not be read");
        return;
    }
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        json_object *d = json_object_array_get_idx(arr, i), *name;
        json_object_object_get_ex(d, "domain", &name);
        const struct loop_entry *e = loops_config_for(app->loops, json_object_get_string(name));
        json_object_object_add(d, "loop", json_object_new_string(e ? e->ops->name : "none"));
    }
    http_reply_json(resp, 200, arr);
}

/* normalize_mail_id - strip surrounding quotes, add the angle brackets
 * when missing; -1 when what is left is not <something@something> */
static int normalize_mail_id(const char *in, char *out, size_t len)
{
    size_t n = strlen(in);
    while (n >= 2 && (in[0] == '"' || in[0] == '\'') && in[n - 1] == in[0]) {
        in++;
        n -= 2;
    }
    bool br = n >= 2 && in[0] == '<' && in[n - 1] == '>';
    if (n == 0 || n + 3 > len)
        return -1;
    int w = snprintf(out, len, "%s%.*s%s", br ? "" : "<", (int)n, in, br ? "" : ">");
    if (w < 0 || (size_t)w >= len || !strchr(out, '@') || strchr(out + 1, '<') ||
        strchr(out, '>') != out + w - 1)
        return -1;
    for (const char *p = out; *p; p++)
        if ((unsigned char)*p <= ' ')
            return -1;
    return 0;
}

static void api_mail_stats(struct http_request *req, struct http_response *resp)
{
    struct happ *app = req->app;
    const char *mid = http_query(req, "mail_id"), *eid = http_query(req, "email_id");
    json_object *o = NULL;
    int rc;
    if ((mid && eid) || (!mid && !eid)) {
        http_reply_error(resp, 400, "invalid_query", "give exactly one of mail_id or email_id");
        return;
    }
    if (eid) {
        char *end;
        errno = 0;
        long long v = strtoll(eid, &end, 10);
        if (errno || end == eid || *end || v <= 0) {
            http_reply_error(resp, 400, "invalid_query", "email_id must be a positive integer");
            return;
        }
        rc = hstore_stats_email(app->store, v, NULL, &o);
    } else {
        char id[1024];
        if (normalize_mail_id(mid, id, sizeof id) != 0) {
            http_reply_error(resp, 400, "invalid_query",
                             "mail_id must be a Message-ID like <email-1@example.com>");
            return;
        }
        rc = hstore_stats_email(app->store, 0, id, &o);
        if (rc == 1)
            rc = hstore_stats_copy(app->store, id, &o);
    }
    if (rc == 1)
        http_reply_error(resp, 404, "not_found", "no email or copy with that id is tracked");
    else if (rc != 0)
        http_reply_error(resp, 503, "unavailable", "the stats could not be read");
    else
        http_reply_json(resp, 200, o);
}

static void api_all_mail_stats(struct http_request *req, struct http_response *resp)
{
    struct happ *app = req->app;
    const char *l = http_query(req, "limit"), *off = http_query(req, "offset");
    long long limit = 100, offset = 0;
    char *end;
    if (l) {
        errno = 0;
        limit = strtoll(l, &end, 10);
        if (errno || end == l || *end || limit < 1 || limit > 1000) {
            http_reply_error(resp, 400, "invalid_query", "limit must be an integer from 1 to 1000");
            return;
        }
    }
    if (off) {
        errno = 0;
        offset = strtoll(off, &end, 10);
        if (errno || end == off || *end || offset < 0) {
            http_reply_error(resp, 400, "invalid_query", "offset must be a non-negative integer");
            return;
        }
    }
    json_object *o = hstore_all_stats(app->store, limit, offset);
    if (!o) {
        http_reply_error(resp, 503, "unavailable", "the stats could not be read");
        return;
    }
    http_reply_json(resp, 200, o);
}

static void api_healthz(struct http_request *req, struct http_response *resp)
{
    (void)req;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "status", json_object_new_string("ok"));
    http_reply_json(resp, 200, o);
}

static void api_readyz(struct http_request *req, struct http_response *resp)
{
    struct happ *app = req->app;
    struct kconsumer_stats ks;
    kconsumer_stats(app->consumer, &ks);
    bool db = hstore_ping(app->store);
    bool ready = db && ks.kafka_up;
    json_object *o = json_object_new_object();
    json_object *checks = json_object_new_object();
    json_object_object_add(checks, "db", json_object_new_string(db ? "ok" : "down"));
    json_object_object_add(checks, "kafka", json_object_new_string(ks.kafka_up ? "ok" : "down"));
    json_object_object_add(o, "status", json_object_new_string(ready ? "ready" : "not_ready"));
    json_object_object_add(o, "checks", checks);
    json_object_object_add(o, "assigned", json_object_new_boolean(ks.assigned));
    http_reply_json(resp, ready ? 200 : 503, o);
}

static void api_metrics(struct http_request *req, struct http_response *resp)
{
    struct happ *app = req->app;
    http_reply_text(resp, 200, "text/plain; version=0.0.4; charset=utf-8",
                    metrics_render(app->metrics));
}

const struct http_route api_routes[] = {
    {.method = "GET", .pattern = "/domains", .handler = api_domains},
    {.method = "GET", .pattern = "/mail_stats", .handler = api_mail_stats},
    {.method = "GET", .pattern = "/all_mail_stats", .handler = api_all_mail_stats},
    {.method = "GET", .pattern = "/healthz", .handler = api_healthz, .flags = HTTP_PUBLIC},
    {.method = "GET", .pattern = "/readyz", .handler = api_readyz, .flags = HTTP_PUBLIC},
    {.method = "GET", .pattern = "/metrics", .handler = api_metrics, .flags = HTTP_PUBLIC},
};
const size_t api_nroutes = sizeof api_routes / sizeof api_routes[0];
