/* api.c - the health service's HTTP handlers and route table.
 * HTTP pool threads; reads only (the consumer thread writes). */
#include "happ.h"
#include "hstore.h"
#include "httpd.h"
#include "kconsumer.h"
#include "metrics.h"
#include "api.h"

#include <json-c/json.h>

static void api_domains(struct http_request *req, struct http_response *resp)
{
    struct happ *app = req->app;
    json_object *arr = hstore_domains(app->store);
    if (!arr) {
        http_reply_error(resp, 503, "unavailable", "the domain list could not be read");
        return;
    }
    http_reply_json(resp, 200, arr);
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
    {.method = "GET", .pattern = "/healthz", .handler = api_healthz, .flags = HTTP_PUBLIC},
    {.method = "GET", .pattern = "/readyz", .handler = api_readyz, .flags = HTTP_PUBLIC},
    {.method = "GET", .pattern = "/metrics", .handler = api_metrics, .flags = HTTP_PUBLIC},
};
const size_t api_nroutes = sizeof api_routes / sizeof api_routes[0];
