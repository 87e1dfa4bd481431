/* api_messages.c - POST /messages: one transactional copy (DESIGN 9.5;
 * messages.h does the work). HTTP pool threads. */
#include "api.h"
#include "app.h"
#include "jsonx.h"
#include "messages.h"
#include "users.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IDEMPOTENCY_KEY_MAX 200

void api_message(struct http_request *req, struct http_response *resp)
{
    static const char *const keys[] = {"to",   "template",  "version",     "data", "priority",
                                       "from", "from_name", "smtp_client", NULL};
    char err[256];
    json_object *body = NULL, *data = NULL;
    int64_t version = 0;
    struct message_req m = {0};
    if (!req->body) {
        http_reply_error(resp, 400, "invalid_json", "a JSON body is required");
        return;
    }
    if (jsonx_parse_object(req->body, req->body_len, &body, err, sizeof err) != 0) {
        http_reply_error(resp, 400, "invalid_json", "%s", err);
        return;
    }
    if (jsonx_check_keys(body, keys, err, sizeof err) != 0 ||
        jsonx_get_string(body, "to", true, 1024, &m.to, err, sizeof err) != 0 ||
        jsonx_get_string(body, "template", true, 64, &m.template_name, err, sizeof err) != 0 ||
        jsonx_get_int(body, "version", false, 1, 1000000000, &version, NULL, err, sizeof err) !=
            0 ||
        jsonx_get_string(body, "priority", false, 16, &m.priority, err, sizeof err) != 0 ||
        jsonx_get_string(body, "from", false, 1024, &m.from, err, sizeof err) != 0 ||
        jsonx_get_string(body, "from_name", false, USER_NAME_MAX, &m.from_name, err, sizeof err) !=
            0 ||
        jsonx_get_string(body, "smtp_client", false, 128, &m.smtp_client, err, sizeof err) != 0) {
        http_reply_error(resp, 400, "invalid_field", "%s", err);
        goto out;
    }
    if (json_object_object_get_ex(body, "data", &data) &&
        !json_object_is_type(data, json_type_null))
        m.data = data;
    m.version = (int)version;
    char key[IDEMPOTENCY_KEY_MAX + 8];
    const char *ik = http_header(req, "Idempotency-Key");
    if (ik) {
        size_t n = strlen(ik);
        bool printable = n > 0 && n <= IDEMPOTENCY_KEY_MAX;
        for (size_t i = 0; printable && i < n; i++)
            printable = ik[i] > 0x20 && ik[i] < 0x7f;
        if (!printable) {
            http_reply_error(resp, 400, "invalid_field",
                             "Idempotency-Key must be 1-%d printable ASCII characters",
                             IDEMPOTENCY_KEY_MAX);
            goto out;
        }
        snprintf(key, sizeof key, "http:%s", ik);
        m.request_key = key;
    }
    struct message_result r;
    messages_submit(req->app, &m, &r);
    if (r.status != 202) {
        http_reply_error(resp, r.status, r.code, "%s", r.error);
        goto out;
    }
    json_object *o = json_object_new_object();
    json_object_object_add(o, "message_id", json_object_new_string(r.message_id));
    json_object_object_add(o, "email_id", json_object_new_int64(r.email_id));
    if (r.replayed)
        json_object_object_add(o, "replayed", json_object_new_boolean(1));
    http_reply_json(resp, 202, o);
    free(r.message_id);
out:
    json_object_put(body);
}
