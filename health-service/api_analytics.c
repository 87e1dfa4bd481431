/* api_analytics.c - GET /analytics (DESIGN 9.5): per hour or day of
 * sending, the copies sent, delivered, spam, opened, read, bounced and
 * complained, filtered by recipient domain, sending identity, campaign and
 * variant; every bucket of the window present (zeros included) and the
 * totals. One store read of the kept counts (hstore_analytics), laid out
 * by analytics.c. HTTP pool threads. */
#include "addr.h"
#include "analytics.h"
#include "api.h"
#include "event.h"
#include "happ.h"
#include "hstore.h"
#include "httpd.h"
#include "timeutil.h"
#include "xalloc.h"

#include <ctype.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

static json_object *counts_json(const int64_t n[HAN_N], const char *t)
{
    json_object *o = json_object_new_object();
    if (t)
        json_object_object_add(o, "t", json_object_new_string(t));
    for (int q = 0; q < HAN_N; q++)
        json_object_object_add(o, analytics_names[q], json_object_new_int64(n[q]));
    return o;
}

static json_object *time_json(int64_t ms)
{
    char at[32];
    time_rfc3339(ms, at, sizeof at);
    return json_object_new_string(at);
}

static json_object *string_or_null(const char *s)
{
    return s ? json_object_new_string(s) : NULL;
}

/* filters - ?domain= (lower-cased), ?identity= (normalised as the events'),
 * ?variant= into q; on a bad one a 400 naming it and -1 */
static int filters(struct http_request *req, struct http_response *resp, struct hstore_an_query *q,
                   char *domain, size_t dlen, struct addr *ident)
{
    const char *v = http_query(req, "domain");
    char err[128];
    if (v) {
        size_t n = strlen(v);
        if (n == 0 || n >= dlen) {
            http_reply_error(resp, 400, "invalid_query", "domain must be a domain name");
            return -1;
        }
        for (size_t i = 0; i <= n; i++)
            domain[i] = (char)tolower((unsigned char)v[i]);
        q->domain = domain;
    }
    if ((v = http_query(req, "identity"))) {
        if (addr_parse(v, ident, err, sizeof err) != 0) {
            http_reply_error(resp, 400, "invalid_query", "identity must be an email address (%s)",
                             err);
            return -1;
        }
        q->identity = ident->norm;
    }
    if ((v = http_query(req, "variant"))) {
        if (!*v || strlen(v) > EVENT_VARIANT_MAX) {
            http_reply_error(resp, 400, "invalid_query", "variant must be 1 to %d characters",
                             EVENT_VARIANT_MAX);
            return -1;
        }
        q->variant = v;
    }
    return http_query_int(req, resp, "campaign", 0, 1, INT64_MAX, &q->campaign);
}

void api_analytics(struct http_request *req, struct http_response *resp)
{
    struct happ *app = req->app;
    struct analytics_window w;
    char err[256], domain[ADDR_DOMAIN_MAX + 1];
    struct addr ident;
    if (analytics_window(http_query(req, "from"), http_query(req, "to"), http_query(req, "bucket"),
                         time_now_ms(), &w, err, sizeof err) != 0) {
        http_reply_error(resp, 400, "invalid_query", "%s", err);
        return;
    }
    struct hstore_an_query q = analytics_query(&w);
    if (filters(req, resp, &q, domain, sizeof domain, &ident) != 0)
        return;
    struct hstore_an_row *rows;
    size_t n;
    if (hstore_analytics(app->store, &q, &rows, &n) != 0) {
        http_reply_error(resp, 503, "unavailable", "the analytics could not be read");
        return;
    }
    int64_t(*b)[HAN_N] = xcalloc(w.nbuckets, sizeof *b), totals[HAN_N];
    analytics_fill(&w, rows, n, b, totals);
    free(rows);

    json_object *o = json_object_new_object();
    json_object_object_add(o, "bucket",
                           json_object_new_string(w.bucket_hours == 1 ? "hour" : "day"));
    json_object_object_add(o, "from", time_json(w.from_ms));
    json_object_object_add(o, "to", time_json(w.to_ms));
    json_object *f = json_object_new_object();
    json_object_object_add(f, "domain", string_or_null(q.domain));
    json_object_object_add(f, "identity", string_or_null(q.identity));
    json_object_object_add(f, "campaign", q.campaign ? json_object_new_int64(q.campaign) : NULL);
    json_object_object_add(f, "variant", string_or_null(q.variant));
    json_object_object_add(o, "filters", f);
    json_object *series = json_object_new_array_ext((int)w.nbuckets);
    for (size_t i = 0; i < w.nbuckets; i++) {
        char t[32];
        time_rfc3339(w.from_ms + (int64_t)i * w.bucket_hours * 3600000, t, sizeof t);
        json_object_array_add(series, counts_json(b[i], t));
    }
    json_object_object_add(o, "series", series);
    json_object_object_add(o, "totals", counts_json(totals, NULL));
    free(b);
    http_reply_json(resp, 200, o);
}
