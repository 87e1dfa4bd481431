/* api_ops.c - /readyz and the route table (service.c adds /healthz and
 * /metrics). HTTP pool threads. */
#include "api.h"
#include "app.h"
#include "feedback.h"
#include "sendq.h"
#include "outbox.h"
#include "sender.h"
#include "store.h"

#include <json-c/json.h>

/* ready when the database answers, a Kafka broker was reachable recently (by the outbox
 * publisher and by the feedback-events consumer), no client's circuit
 * breaker is open and the last SMTP attempt of every client reached its server (the smtp check
 * names the client and why); a registration is accepted durably
 * even while Kafka is down (the outbox keeps it), so this only tells a load balancer we are
 * degraded */
void api_readyz(struct http_request *req, struct http_response *resp)
{
    struct app *app = req->app;
    struct outbox_stats os;
    outbox_publisher_stats(app->outbox, &os);
    bool kafka = os.kafka_up && feedback_kafka_up(app->feedback) &&
                 sendq_kafka_up(app->sendq); /* producer and consumers */
    bool db = store_ping(app->store);
    char why[700] = "";
    bool smtp = sender_smtp_ok(app->sender, why, sizeof why);
    json_object *o = json_object_new_object();
    json_object *checks = json_object_new_object();
    json_object_object_add(checks, "db", json_object_new_string(db ? "ok" : "down"));
    json_object_object_add(checks, "kafka", json_object_new_string(kafka ? "ok" : "down"));
    json_object_object_add(checks, "smtp", json_object_new_string(smtp ? "ok" : why));
    json_object_object_add(o, "status",
                           json_object_new_string(db && kafka && smtp ? "ready" : "not_ready"));
    json_object_object_add(o, "checks", checks);
    json_object_object_add(o, "outbox_pending", json_object_new_int64(os.pending));
    http_reply_json(resp, db && kafka && smtp ? 200 : 503, o);
}

const struct http_route api_routes[] = {
    {.method = "POST",
     .pattern = "/register",
     .handler = api_register,
     .content_type = "application/json"},
    {.method = "GET", .pattern = "/users", .handler = api_users},
    {.method = "POST",
     .pattern = "/users/import",
     .stream = &api_import_ops,
     .content_type = "text/csv",
     .body_max = (size_t)-1},
    {.method = "GET", .pattern = "/emailIds", .handler = api_email_ids},
    {.method = "POST", .pattern = "/send", .handler = api_send, .content_type = "application/json"},
    {.method = "GET", .pattern = "/emails", .handler = api_emails},
    {.method = "GET", .pattern = "/emails/*", .handler = api_email},
    {.method = "POST", .pattern = "/emails/*/pause", .handler = api_pause},
    {.method = "POST", .pattern = "/emails/*/resume", .handler = api_resume},
    {.method = "POST",
     .pattern = "/emails/*/rate-limit",
     .handler = api_rate_limit,
     .content_type = "application/json"},
    {.method = "POST", .pattern = "/emails/*/reconcile", .handler = api_reconcile},
    {.method = "GET", .pattern = "/dlq", .handler = api_dlq},
    {.method = "GET", .pattern = "/history", .handler = api_history},
    {.method = "GET", .pattern = "/archives", .handler = api_archives},
    {.method = "GET", .pattern = "/readyz", .handler = api_readyz, .flags = HTTP_PUBLIC},
    {.method = "GET", .pattern = "/suppressions", .handler = api_suppressions},
    {.method = "POST",
     .pattern = "/suppressions",
     .handler = api_suppress_add,
     .content_type = "application/json"},
    {.method = "DELETE", .pattern = "/suppressions/*", .handler = api_suppress_delete},
    /* sending identities (DESIGN 9.3) */
    {.method = "POST",
     .pattern = "/identities",
     .handler = api_identity_create,
     .content_type = "application/json"},
    {.method = "GET", .pattern = "/identities", .handler = api_identities},
    {.method = "GET", .pattern = "/identities/*", .handler = api_identity},
    {.method = "POST",
     .pattern = "/identities/*/pause",
     .handler = api_identity_pause,
     .content_type = "application/json"},
    {.method = "POST", .pattern = "/identities/*/resume", .handler = api_identity_resume},
    {.method = "POST",
     .pattern = "/messages",
     .handler = api_message,
     .content_type = "application/json"},
    /* templates (DESIGN 9.5) */
    {.method = "POST",
     .pattern = "/templates",
     .handler = api_template_create,
     .content_type = "application/json"},
    {.method = "PUT",
     .pattern = "/templates/*",
     .handler = api_template_put,
     .content_type = "application/json"},
    {.method = "GET", .pattern = "/templates", .handler = api_templates},
    {.method = "GET", .pattern = "/templates/*", .handler = api_template},
    /* campaigns (DESIGN 9.5) */
    {.method = "POST",
     .pattern = "/campaigns",
     .handler = api_campaign_create,
     .content_type = "application/json"},
    {.method = "GET", .pattern = "/campaigns", .handler = api_campaigns},
    {.method = "GET", .pattern = "/campaigns/*", .handler = api_campaign},
    {.method = "POST", .pattern = "/campaigns/*/start", .handler = api_campaign_start},
    {.method = "POST", .pattern = "/campaigns/*/pause", .handler = api_campaign_pause},
    {.method = "POST", .pattern = "/campaigns/*/resume", .handler = api_campaign_resume},
    {.method = "POST",
     .pattern = "/campaigns/*/rate-limit",
     .handler = api_campaign_rate_limit,
     .content_type = "application/json"},
    {.method = "POST", .pattern = "/campaigns/*/reconcile", .handler = api_campaign_reconcile},
    /* uploads of a campaign's list and background imports (DESIGN 9.5) */
    {.method = "POST",
     .pattern = "/campaigns/*/upload/init",
     .handler = api_upload_init,
     .content_type = "application/json"},
    {.method = "POST",
     .pattern = "/campaigns/*/upload/complete",
     .handler = api_upload_complete,
     .content_type = "application/json"},
    {.method = "POST",
     .pattern = "/campaigns/*/upload/abort",
     .handler = api_upload_abort,
     .content_type = "application/json"},
    {.method = "GET", .pattern = "/campaigns/*/upload", .handler = api_upload_status},
    /* a presigned part URL: the signature authorises, any or no Content-Type */
    {.method = "PUT",
     .pattern = "/uploads/*/*",
     .stream = &api_upload_part_ops,
     .flags = HTTP_PUBLIC | HTTP_UNTYPED_BODY,
     .body_max = (size_t)5 * 1024 * 1024 * 1024},
    {.method = "GET", .pattern = "/users/import/*", .handler = api_import_status},
    /* one-click unsubscribe (RFC 8058): the one public form, the token authorises */
    {.method = "GET", .pattern = "/u/*", .handler = api_unsub_page, .flags = HTTP_PUBLIC},
    {.method = "POST",
     .pattern = "/u/*",
     .handler = api_unsub,
     .flags = HTTP_PUBLIC | HTTP_CROSS_ORIGIN,
     .content_type = "application/x-www-form-urlencoded",
     .body_max = 1024},
};
const size_t api_nroutes = sizeof api_routes / sizeof api_routes[0];
