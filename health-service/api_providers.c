/* api_providers.c - GET /providers (DESIGN 9.3): per recipient provider
 * (THROTTLES_FILE group, else the domain), over the copies sent within
 * FEEDBACK_WINDOW: placement counts and rates, time to inbox percentiles
 * and its cumulative histogram. Two store reads (placement_counts,
 * inbox_delays) shaped by placement_calc.h. HTTP pool threads. */
#include "api.h"
#include "happ.h"
#include "hstore.h"
#include "httpd.h"
#include "placement_calc.h"
#include "timeutil.h"

#include <json-c/json.h>
#include <stdio.h>

/* rate - x / of, four significant digits; null when of is 0 */
static json_object *rate(int64_t x, int64_t of)
{
    if (of <= 0)
        return NULL;
    double v = (double)x / (double)of;
    char s[32];
    snprintf(s, sizeof s, "%.4g", v);
    return json_object_new_double_s(v, s);
}

static json_object *report_json(const struct provider_report *r)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "checked", json_object_new_int64(r->n.checked));
    json_object_object_add(o, "inbox", json_object_new_int64(r->n.inbox));
    json_object_object_add(o, "spam", json_object_new_int64(r->n.spam));
    json_object_object_add(o, "bounced", json_object_new_int64(r->n.bounced));
    json_object_object_add(o, "complained", json_object_new_int64(r->n.complained));
    json_object_object_add(o, "inbox_rate", rate(r->n.inbox, r->n.checked));
    json_object_object_add(o, "spam_rate", rate(r->n.spam, r->n.checked));
    json_object *t = json_object_new_object();
    const int64_t pct[] = {r->p50, r->p90, r->p99};
    const char *const names[] = {"p50", "p90", "p99"};
    for (int i = 0; i < 3; i++)
        json_object_object_add(t, names[i], r->found ? json_object_new_int64(pct[i]) : NULL);
    json_object_object_add(o, "time_to_inbox_s", t);
    json_object *h = json_object_new_array();
    for (int b = 0; b <= PLACEMENT_NBUCKETS; b++) {
        json_object *e = json_object_new_object();
        json_object_object_add(e, "le",
                               b < PLACEMENT_NBUCKETS
                                   ? json_object_new_int64((int64_t)placement_buckets[b])
                                   : json_object_new_string("+Inf"));
        json_object_object_add(e, "count", json_object_new_int64(r->cumulative[b]));
        json_object_array_add(h, e);
    }
    json_object_object_add(o, "histogram", h);
    return o;
}

void api_providers(struct http_request *req, struct http_response *resp)
{
    struct happ *app = req->app;
    int64_t since = time_now_ms() - app->cfg->feedback_window_s * 1000;
    struct hstore_placement_row *rows = NULL;
    struct hstore_delay_row *delays = NULL;
    size_t n = 0, nd = 0;
    if (hstore_placement_counts(app->store, since, &rows, &n) != 0 ||
        hstore_inbox_delays(app->store, since, &delays, &nd) != 0) {
        hstore_placement_rows_free(rows, n);
        http_reply_error(resp, 503, "unavailable", "the placement could not be read");
        return;
    }
    struct provider_report *r;
    size_t nr;
    placement_report(rows, n, delays, nd, app->providers, &r, &nr);
    hstore_placement_rows_free(rows, n);
    hstore_delay_rows_free(delays, nd);
    json_object *all = json_object_new_object();
    for (size_t i = 0; i < nr; i++)
        json_object_object_add(all, r[i].provider, report_json(&r[i]));
    provider_reports_free(r, nr);
    http_reply_json(resp, 200, all);
}
