/* api.c - the health service's HTTP handlers and route table (service.c
 * adds /healthz and /metrics).
 * HTTP pool threads; reads only (the consumer thread writes). */
#include "happ.h"
#include "hstore.h"
#include "httpd.h"
#include "kconsumer.h"
#include "timeutil.h"
#include "api.h"

#include "loops/loops.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* time_json - ms since the epoch as an RFC 3339 string */
static json_object *time_json(int64_t ms)
{
    char at[32];
    time_rfc3339_ms(ms, at, sizeof at);
    return json_object_new_string(at);
}

/* placement_json - the counters of p into o, in the contract's order */
static void placement_json(json_object *o, const struct hplacement *p)
{
    json_object_object_add(o, "delivered", json_object_new_int64(p->delivered));
    json_object_object_add(o, "spam", json_object_new_int64(p->spam));
    json_object_object_add(o, "opened", json_object_new_int64(p->opened));
    json_object_object_add(o, "read", json_object_new_int64(p->read));
    json_object_object_add(o, "bounced", json_object_new_int64(p->bounced));
    json_object_object_add(o, "complained", json_object_new_int64(p->complained));
    json_object_object_add(o, "unchecked", json_object_new_int64(p->unchecked));
    json_object_object_add(o, "rescued", json_object_new_int64(p->rescued));
}

/* domain_json - a /domains entry, with the name of the domain's feedback
 * loop (NULL: none, JSON null) */
static json_object *domain_json(const struct hstore_domain *d, const char *loop)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "domain", json_object_new_string(d->domain));
    json_object_object_add(o, "users", json_object_new_int64(d->users));
    json_object_object_add(o, "first_seen", json_object_new_string(d->first_seen));
    json_object_object_add(o, "last_seen", json_object_new_string(d->last_seen));
    json_object_object_add(o, "tracked", json_object_new_int64(d->n.tracked));
    json_object_object_add(o, "checked", json_object_new_int64(d->checked));
    json_object_object_add(o, "last_round_at", d->has_round ? time_json(d->last_round_at) : NULL);
    json_object_object_add(o, "last_error",
                           d->last_error ? json_object_new_string(d->last_error) : NULL);
    placement_json(o, &d->n);
    json_object_object_add(o, "loop", loop ? json_object_new_string(loop) : NULL);
    return o;
}

static void api_domains(struct http_request *req, struct http_response *resp)
{
    struct happ *app = req->app;
    struct hstore_domain *d;
    size_t n;
    if (hstore_domains(app->store, &d, &n) != 0) {
        http_reply_error(resp, 503, "unavailable", "the domain list could not be read");
        return;
    }
    json_object *arr = json_object_new_array();
    for (size_t i = 0; i < n; i++) {
        const struct loop_entry *e = loops_config_for(app->loops, d[i].domain);
        json_object_array_add(arr, domain_json(&d[i], e && e->ops ? e->ops->name : NULL));
    }
    hstore_domains_free(d, n);
    http_reply_json(resp, 200, arr);
}

/* stats_json - the /mail_stats object of t (a copy's with its recipient
 * and domain) */
static json_object *stats_json(const struct hstore_stats *t)
{
    const struct hplacement *p = &t->n;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "email_id", json_object_new_int64(t->email_id));
    json_object_object_add(o, "message_id", json_object_new_string(t->message_id));
    json_object_object_add(o, "tracked", json_object_new_int64(p->tracked));
    placement_json(o, p);
    int64_t pending = p->tracked - p->delivered - p->spam - p->bounced - p->unchecked;
    json_object_object_add(o, "pending", json_object_new_int64(pending > 0 ? pending : 0));
    json_object_object_add(o, "checked_at", t->checked ? time_json(t->checked_at) : NULL);
    if (t->recipient)
        json_object_object_add(o, "recipient", json_object_new_string(t->recipient));
    if (t->domain)
        json_object_object_add(o, "domain", json_object_new_string(t->domain));
    return o;
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
    struct hstore_stats t;
    int rc;
    if ((mid && eid) || (!mid && !eid)) {
        http_reply_error(resp, 400, "invalid_query", "give exactly one of mail_id or email_id");
        return;
    }
    if (eid) {
        int64_t v;
        if (http_query_int(req, resp, "email_id", 0, 1, INT64_MAX, &v) != 0)
            return;
        rc = hstore_stats_email(app->store, v, NULL, &t);
    } else {
        char id[1024];
        if (normalize_mail_id(mid, id, sizeof id) != 0) {
            http_reply_error(resp, 400, "invalid_query",
                             "mail_id must be a Message-ID like <email-1@example.com>");
            return;
        }
        rc = hstore_stats_email(app->store, 0, id, &t);
        if (rc == 1)
            rc = hstore_stats_copy(app->store, id, &t);
    }
    if (rc == 1) {
        http_reply_error(resp, 404, "not_found", "no email or copy with that id is tracked");
    } else if (rc != 0) {
        http_reply_error(resp, 503, "unavailable", "the stats could not be read");
    } else {
        http_reply_json(resp, 200, stats_json(&t));
        hstore_stats_cleanup(&t);
    }
}

static void api_all_mail_stats(struct http_request *req, struct http_response *resp)
{
    struct happ *app = req->app;
    int64_t limit, offset;
    struct hstore_stats *t;
    size_t n;
    if (http_paging(req, resp, 100, 1000, &limit, &offset) != 0)
        return;
    if (hstore_all_stats(app->store, limit, offset, &t, &n) != 0) {
        http_reply_error(resp, 503, "unavailable", "the stats could not be read");
        return;
    }
    json_object *all = json_object_new_object();
    for (size_t i = 0; i < n; i++) {
        char key[24];
        snprintf(key, sizeof key, "%lld", (long long)t[i].email_id);
        json_object_object_add(all, key, stats_json(&t[i]));
    }
    hstore_stats_free(t, n);
    http_reply_json(resp, 200, all);
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

const struct http_route api_routes[] = {
    {.method = "GET", .pattern = "/domains", .handler = api_domains},
    {.method = "GET", .pattern = "/mail_stats", .handler = api_mail_stats},
    {.method = "GET", .pattern = "/all_mail_stats", .handler = api_all_mail_stats},
    {.method = "GET", .pattern = "/providers", .handler = api_providers},
    {.method = "GET", .pattern = "/emails/*/reconciliation", .handler = api_reconciliation},
    {.method = "GET", .pattern = "/seed_mailboxes", .handler = api_seed_mailboxes},
    {.method = "GET", .pattern = "/analytics", .handler = api_analytics},
    {.method = "GET", .pattern = "/readyz", .handler = api_readyz, .flags = HTTP_PUBLIC},
};
const size_t api_nroutes = sizeof api_routes / sizeof api_routes[0];
