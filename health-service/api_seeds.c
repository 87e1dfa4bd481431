/* api_seeds.c - GET /seed_mailboxes (DESIGN 9.4): every seed mailbox of
 * SEED_MAILBOXES_FILE in file order with its state ("ok", or "error" with
 * the entry's or the last round's reason), the last round's time and the
 * copies checked and rescued there since start-up. One copy of the seeds'
 * status (seeds_list). HTTP pool threads. */
#include "api.h"
#include "happ.h"
#include "httpd.h"
#include "seeds.h"
#include "timeutil.h"

#include <json-c/json.h>

void api_seed_mailboxes(struct http_request *req, struct http_response *resp)
{
    struct happ *app = req->app;
    struct seed_status *v = NULL;
    size_t n = 0;
    seeds_list(app->seeds, &v, &n);
    json_object *a = json_object_new_array();
    for (size_t i = 0; i < n; i++) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "address", json_object_new_string(v[i].address));
        json_object_object_add(o, "state", json_object_new_string(v[i].ok ? "ok" : "error"));
        json_object_object_add(o, "last_error",
                               v[i].last_error ? json_object_new_string(v[i].last_error) : NULL);
        char at[32];
        if (v[i].has_round)
            time_rfc3339_ms(v[i].last_round_at, at, sizeof at);
        json_object_object_add(o, "last_round_at",
                               v[i].has_round ? json_object_new_string(at) : NULL);
        json_object_object_add(o, "checked", json_object_new_int64(v[i].checked));
        json_object_object_add(o, "rescued", json_object_new_int64(v[i].rescued));
        json_object_array_add(a, o);
    }
    seeds_status_free(v, n);
    http_reply_json(resp, 200, a);
}
