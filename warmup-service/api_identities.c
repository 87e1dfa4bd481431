/* api_identities.c - sending identities (DESIGN 9.3): POST /identities,
 * GET /identities and /identities/{id}, POST /identities/{id}/pause and
 * /resume. The answer is the identity as stored with "today" (its local
 * day, quota, copies sent, state and reason) and "providers" (each
 * recipient provider's state and last placement rates). HTTP pool
 * threads; writes go through the store, identities.c tells the sender. */
#include "addr.h"
#include "api.h"
#include "app.h"
#include "identities.h"
#include "identity_clock.h"
#include "jsonx.h"
#include "mime.h"
#include "policy.h"
#include "ramp.h"
#include "smtp/smtp_clients.h"
#include "store.h"
#include "timeutil.h"
#include "tz.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME_MAX_BYTES 256
#define REASON_MAX_BYTES 256
#define PER_DAY_MAX 100000000 /* a hundred million copies a day */
#define GROWTH_MAX 1000.0

/* rate_json - a rate as a JSON number with at most four decimals */
static json_object *rate_json(double r)
{
    char s[32];
    policy_rate_format(r, s, sizeof s);
    return json_object_new_double_s(r, s);
}

static json_object *opt_string(const char *s)
{
    return s ? json_object_new_string(s) : NULL;
}

static json_object *hhmm_json(int min)
{
    char s[8];
    snprintf(s, sizeof s, "%02d:%02d", (min / 60) % 100, min % 60);
    return json_object_new_string(s);
}

/* today_sent - the copies the identity handed to SMTP on local day day */
static int64_t today_sent(struct app *app, int64_t id, int64_t day)
{
    struct identity_day_count *v;
    size_t n;
    int64_t sent = 0;
    if (store_identity_days(app->store, id, day, day, &v, &n) != 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        sent += v[i].sent;
    store_identity_days_free(v, n);
    return sent;
}

/* identity_json - the contract's shape of an identity at now */
static json_object *identity_json(struct app *app, const struct identity *x, int64_t now)
{
    char buf[40];
    json_object *o = json_object_new_object();
    json_object_object_add(o, "id", json_object_new_int64(x->id));
    json_object_object_add(o, "address", json_object_new_string(x->address));
    json_object_object_add(o, "name", opt_string(x->name));
    json_object_object_add(o, "smtp_client", opt_string(x->smtp_client));
    json_object *w = NULL;
    if (x->has_ramp) {
        w = json_object_new_object();
        json_object_object_add(w, "start_per_day", json_object_new_int64(x->ramp.start_per_day));
        double g = x->ramp.growth_pct;
        json_object_object_add(w, "growth_pct",
                               g == floor(g) ? json_object_new_int64((int64_t)g)
                                             : json_object_new_double(g));
        json_object_object_add(w, "max_per_day", json_object_new_int64(x->ramp.max_per_day));
        date_format(x->ramp.start_day, buf, sizeof buf);
        json_object_object_add(w, "start_date", json_object_new_string(buf));
    }
    json_object_object_add(o, "warmup", w);
    w = NULL;
    if (x->has_window) {
        w = json_object_new_object();
        json_object_object_add(w, "start", hhmm_json(x->win_start_min));
        json_object_object_add(w, "end", hhmm_json(x->win_end_min));
        json_object_object_add(w, "tz", json_object_new_string(x->tz));
    }
    json_object_object_add(o, "window", w);
    json_object_object_add(o, "paused", json_object_new_boolean(x->paused));
    json_object_object_add(o, "paused_reason", opt_string(x->paused ? x->paused_reason : NULL));
    json_object_object_add(o, "created_at", json_object_new_string(x->created_at));

    struct identity_today t;
    identity_today(x, identities_tz(app->identities, x->tz), now, &t);
    json_object *d = json_object_new_object();
    json_object_object_add(d, "quota", t.has_quota ? json_object_new_int64(t.quota) : NULL);
    json_object_object_add(d, "sent", json_object_new_int64(today_sent(app, x->id, t.day)));
    json_object_object_add(d, "state", json_object_new_string(identity_state_name(t.state)));
    json_object_object_add(d, "reason", json_object_new_string(t.reason));
    date_format(t.day, buf, sizeof buf);
    json_object_object_add(d, "day", json_object_new_string(buf));
    json_object_object_add(o, "today", d);

    json_object *ps = json_object_new_object();
    for (size_t i = 0; i < x->nproviders; i++) {
        const struct identity_provider *p = &x->providers[i];
        json_object *j = json_object_new_object();
        json_object_object_add(j, "state", json_object_new_string(p->state));
        json_object_object_add(j, "reason", json_object_new_string(p->reason));
        json_object_object_add(j, "inbox_rate", rate_json(p->inbox_rate));
        json_object_object_add(j, "spam_rate", rate_json(p->spam_rate));
        json_object_object_add(j, "bounce_rate", rate_json(p->bounce_rate));
        json_object_object_add(j, "complaint_rate", rate_json(p->complaint_rate));
        json_object_object_add(j, "checked", json_object_new_int64(p->checked));
        time_rfc3339_ms(p->since_ms, buf, sizeof buf);
        json_object_object_add(j, "since", json_object_new_string(buf));
        json_object_object_add(ps, p->provider, j);
    }
    json_object_object_add(o, "providers", ps);
    return o;
}

/* reply_identity - status with the identity as stored, 404 unknown, 503 */
static void reply_identity(struct app *app, int64_t id, int status, struct http_response *resp)
{
    struct identity x;
    int rc = store_get_identity(app->store, id, &x);
    if (rc == 1) {
        http_reply_error(resp, 404, "not_found", "no identity with id %lld", (long long)id);
        return;
    }
    if (rc != 0) {
        http_reply_error(resp, 503, "unavailable", "the identity could not be read");
        return;
    }
    http_reply_json(resp, status, identity_json(app, &x, ident_now_ms()));
    identity_cleanup(&x);
}

/* path_id - the {id} segment: not an integer is 400, not a positive one 404 */
static int path_id(struct http_request *req, struct http_response *resp, int64_t *id)
{
    const char *p = req->nparams ? req->params[0] : "";
    if (http_parse_int(p, INT64_MIN, INT64_MAX, id) != 0) {
        http_reply_error(resp, 400, "invalid_id", "identity id '%.40s' is not an integer", p);
        return -1;
    }
    if (*id < 1) {
        http_reply_error(resp, 404, "not_found", "no identity with id %lld", (long long)*id);
        return -1;
    }
    return 0;
}

/* object_field - key of o: absent or null *out NULL and 0; an object, or -1 */
static int object_field(json_object *o, const char *key, json_object **out, char *err, size_t n)
{
    *out = NULL;
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || !v)
        return 0;
    if (!json_object_is_type(v, json_type_object)) {
        snprintf(err, n, "field '%s' must be an object", key);
        return -1;
    }
    *out = v;
    return 0;
}

/* number_field - key of o as a JSON number in [min, max] (required) */
static int number_field(json_object *o, const char *key, double min, double max, double *out,
                        char *err, size_t n)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || !v) {
        snprintf(err, n, "field '%s' is required", key);
        return -1;
    }
    json_type t = json_object_get_type(v);
    double d = json_object_get_double(v);
    if ((t != json_type_int && t != json_type_double) || !isfinite(d) || d < min || d > max) {
        snprintf(err, n, "field '%s' must be a number from %g to %g", key, min, max);
        return -1;
    }
    *out = d;
    return 0;
}

/* parse_warmup - the warmup {} into spec (today: the default start_date) */
static int parse_warmup(json_object *w, int64_t today, struct identity_spec *spec, char *err,
                        size_t n)
{
    static const char *const keys[] = {"start_per_day", "growth_pct", "max_per_day", "start_date",
                                       NULL};
    const char *date;
    struct ramp *r = &spec->ramp;
    char why[200];
    if (jsonx_check_keys(w, keys, why, sizeof why) != 0) {
        snprintf(err, n, "warmup: %s", why);
        return -1;
    }
    if (jsonx_get_int(w, "start_per_day", true, 1, PER_DAY_MAX, &r->start_per_day, NULL, why,
                      sizeof why) != 0 ||
        number_field(w, "growth_pct", 0, GROWTH_MAX, &r->growth_pct, why, sizeof why) != 0 ||
        jsonx_get_int(w, "max_per_day", true, 1, PER_DAY_MAX, &r->max_per_day, NULL, why,
                      sizeof why) != 0 ||
        jsonx_get_string(w, "start_date", false, 32, &date, why, sizeof why) != 0) {
        snprintf(err, n, "warmup: %s", why);
        return -1;
    }
    if (r->max_per_day < r->start_per_day) {
        snprintf(err, n, "warmup: max_per_day must be at least start_per_day");
        return -1;
    }
    r->start_day = today;
    if (date && date_parse(date, &r->start_day) != 0) {
        snprintf(err, n, "warmup: start_date must be a date YYYY-MM-DD");
        return -1;
    }
    spec->has_ramp = true;
    return 0;
}

/* parse_window - the window {} into spec (its zone checked by loading it) */
static int parse_window(json_object *w, struct identity_spec *spec, char *err, size_t n)
{
    static const char *const keys[] = {"start", "end", "tz", NULL};
    const char *start, *end, *tz;
    char why[200];
    if (jsonx_check_keys(w, keys, why, sizeof why) != 0 ||
        jsonx_get_string(w, "start", true, 8, &start, why, sizeof why) != 0 ||
        jsonx_get_string(w, "end", true, 8, &end, why, sizeof why) != 0 ||
        jsonx_get_string(w, "tz", false, 64, &tz, why, sizeof why) != 0) {
        snprintf(err, n, "window: %s", why);
        return -1;
    }
    if (window_parse(start, false, &spec->win_start_min) != 0) {
        snprintf(err, n, "window: start must be HH:MM from 00:00 to 23:59");
        return -1;
    }
    if (window_parse(end, true, &spec->win_end_min) != 0) {
        snprintf(err, n, "window: end must be HH:MM from 00:01 to 24:00");
        return -1;
    }
    if (spec->win_start_min >= spec->win_end_min) {
        snprintf(err, n, "window: start must be before end");
        return -1;
    }
    if (tz) {
        struct tz *z = tz_load(tz, why, sizeof why);
        if (!z) {
            snprintf(err, n, "window: tz: %s", why);
            return -1;
        }
        tz_free(z);
    }
    spec->tz = tz ? tz : "UTC";
    spec->has_window = true;
    return 0;
}

/* POST /identities: 201 with the identity; 409 when its address has one */
void api_identity_create(struct http_request *req, struct http_response *resp)
{
    struct app *app = req->app;
    static const char *const keys[] = {"address", "name", "smtp_client", "warmup", "window", NULL};
    char err[300], why[200];
    json_object *body = NULL, *warmup, *window;
    const char *address, *name, *client;
    struct identity_spec spec = {0};
    struct addr a;
    if (!req->body) {
        http_reply_error(resp, 400, "invalid_json", "a JSON body is required");
        return;
    }
    if (jsonx_parse_object(req->body, req->body_len, &body, err, sizeof err) != 0) {
        http_reply_error(resp, 400, "invalid_json", "%s", err);
        return;
    }
    if (jsonx_check_keys(body, keys, err, sizeof err) != 0 ||
        jsonx_get_string(body, "address", true, 1024, &address, err, sizeof err) != 0 ||
        jsonx_get_string(body, "name", false, NAME_MAX_BYTES, &name, err, sizeof err) != 0 ||
        jsonx_get_string(body, "smtp_client", false, 128, &client, err, sizeof err) != 0 ||
        object_field(body, "warmup", &warmup, err, sizeof err) != 0 ||
        object_field(body, "window", &window, err, sizeof err) != 0)
        goto bad;
    if (addr_parse(address, &a, why, sizeof why) != 0) {
        snprintf(err, sizeof err, "address is not a valid address: %s", why);
        goto bad;
    }
    if (name && mime_check_header_text(name, NAME_MAX_BYTES, why, sizeof why) != 0) {
        snprintf(err, sizeof err, "name cannot be a header: %s", why);
        goto bad;
    }
    if (client) {
        int i = smtp_clients_find(app->clients, client);
        if (i < 0) {
            snprintf(err, sizeof err, "smtp_client '%.64s' is not a configured client", client);
            goto bad;
        }
        client = app->clients->v[i].s.name; /* as configured */
    }
    spec.address = a.norm;
    spec.name = name;
    spec.smtp_client = client;
    if (window && parse_window(window, &spec, err, sizeof err) != 0)
        goto bad;
    if (!spec.has_window) {
        spec.win_start_min = 0;
        spec.win_end_min = 1440;
    }
    if (warmup) {
        /* the default start_date: today where the identity sends */
        struct tz *z = spec.has_window ? tz_load(spec.tz, why, sizeof why) : NULL;
        struct window w = {.start_min = spec.win_start_min, .end_min = spec.win_end_min, .tz = z};
        int64_t today, s, e;
        window_day(&w, ident_now_ms(), &today, &s, &e);
        tz_free(z);
        if (parse_warmup(warmup, today, &spec, err, sizeof err) != 0)
            goto bad;
    }
    char created[32];
    time_rfc3339(time_now_ms(), created, sizeof created);
    spec.created_at = created;
    int64_t id;
    int rc = store_create_identity(app->store, &spec, &id);
    if (rc == 1) {
        http_reply_error(resp, 409, "identity_exists", "%s already has an identity", a.norm);
        goto out;
    }
    if (rc != 0) {
        http_reply_error(resp, 503, "unavailable", "the identity could not be stored");
        goto out;
    }
    struct identity x;
    if (store_get_identity(app->store, id, &x) != 0) {
        http_reply_error(resp, 503, "unavailable", "the identity could not be read");
        goto out;
    }
    log_info("identity created id=%lld address=%s ramp=%s window=%s", (long long)id, x.address,
             x.has_ramp ? "yes" : "no", x.has_window ? x.tz : "none");
    identities_changed(app->identities, &x);
    http_reply_json(resp, 201, identity_json(app, &x, ident_now_ms()));
    identity_cleanup(&x);
    goto out;
bad:
    http_reply_error(resp, 400, "invalid_field", "%s", err);
out:
    json_object_put(body);
}

void api_identities(struct http_request *req, struct http_response *resp)
{
    struct app *app = req->app;
    int64_t limit, offset;
    if (http_paging(req, resp, 100, 1000, &limit, &offset) != 0)
        return;
    struct identity *v;
    size_t n;
    if (store_list_identities(app->store, limit, offset, &v, &n) != 0) {
        http_reply_error(resp, 503, "unavailable", "the identities could not be read");
        return;
    }
    int64_t now = ident_now_ms();
    json_object *arr = json_object_new_array();
    for (size_t i = 0; i < n; i++)
        json_object_array_add(arr, identity_json(app, &v[i], now));
    store_identities_free(v, n);
    http_reply_json(resp, 200, arr);
}

void api_identity(struct http_request *req, struct http_response *resp)
{
    int64_t id;
    if (path_id(req, resp, &id) == 0)
        reply_identity(req->app, id, 200, resp);
}

/* POST /identities/{id}/pause, optional body {"reason":".."} */
void api_identity_pause(struct http_request *req, struct http_response *resp)
{
    struct app *app = req->app;
    static const char *const keys[] = {"reason", NULL};
    char err[256], why[160];
    json_object *body = NULL;
    const char *reason = NULL;
    int64_t id;
    if (path_id(req, resp, &id) != 0)
        return;
    if (req->body && req->body_len > 0) {
        if (jsonx_parse_object(req->body, req->body_len, &body, err, sizeof err) != 0) {
            http_reply_error(resp, 400, "invalid_json", "%s", err);
            return;
        }
        if (jsonx_check_keys(body, keys, err, sizeof err) != 0 ||
            jsonx_get_string(body, "reason", false, REASON_MAX_BYTES, &reason, err, sizeof err) !=
                0) {
            http_reply_error(resp, 400, "invalid_field", "%s", err);
            goto out;
        }
        if (reason && mime_check_header_text(reason, REASON_MAX_BYTES, why, sizeof why) != 0) {
            http_reply_error(resp, 400, "invalid_field", "reason: %s", why);
            goto out;
        }
    }
    int rc = identities_pause(app->identities, id, reason);
    if (rc == 1)
        http_reply_error(resp, 404, "not_found", "no identity with id %lld", (long long)id);
    else if (rc != 0)
        http_reply_error(resp, 503, "unavailable", "the identity could not be paused");
    else
        reply_identity(app, id, 200, resp);
out:
    json_object_put(body);
}

void api_identity_resume(struct http_request *req, struct http_response *resp)
{
    struct app *app = req->app;
    int64_t id;
    if (path_id(req, resp, &id) != 0)
        return;
    int rc = identities_resume(app->identities, id);
    if (rc == 1)
        http_reply_error(resp, 404, "not_found", "no identity with id %lld", (long long)id);
    else if (rc != 0)
        http_reply_error(resp, 503, "unavailable", "the identity could not be resumed");
    else
        reply_identity(app, id, 200, resp);
}
