/* api_campaigns.c - campaigns (DESIGN 9.5): POST /campaigns, GET
 * /campaigns and /campaigns/{id}, POST /campaigns/{id}/start, /pause,
 * /resume, /rate-limit and /reconcile. Owns the campaign's JSON shape:
 * the campaign as stored with "progress" (seed 002's names) and one entry
 * per variant with its email and the same progress. Checks every field
 * of a new campaign and builds its canonical audience; start finds the
 * placeholders every recipient needs (tmpl.h) and lets the store check
 * them. HTTP pool threads; writes go through the store, the sender is
 * told of every email made or changed. */
#include "addr.h"
#include "api.h"
#include "app.h"
#include "event.h"
#include "jsonx.h"
#include "log.h"
#include "mime.h"
#include "sender.h"
#include "smtp/smtp_clients.h"
#include "store.h"
#include "store_campaigns.h"
#include "timeutil.h"
#include "tmpl.h"
#include "xalloc.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SUBJECT_MAX 998
#define NAME_MAX_BYTES 256
#define TEMPLATE_NAME_MAX 128
#define DOMAINS_MAX 1000
#define ATTRS_MAX 32
#define ATTR_VALUE_MAX 1024
#define WEIGHT_MAX 1000000
#define TPM_MAX 1000000

/* status - draft, done (nothing pending or failed), paused or running */
static const char *status_of(bool started, bool paused, int64_t pending, int64_t failed)
{
    return !started ? "draft" : pending + failed == 0 ? "done" : paused ? "paused" : "running";
}

static json_object *progress_json(int64_t total, int64_t sent, int64_t failed, int64_t pending,
                                  int64_t dead, int64_t suppressed, int tpm, const char *status)
{
    json_object *p = json_object_new_object();
    json_object_object_add(p, "total", json_object_new_int64(total));
    json_object_object_add(p, "sent", json_object_new_int64(sent));
    json_object_object_add(p, "failed", json_object_new_int64(failed));
    json_object_object_add(p, "pending", json_object_new_int64(pending));
    json_object_object_add(p, "dead", json_object_new_int64(dead));
    json_object_object_add(p, "suppressed", json_object_new_int64(suppressed));
    json_object_object_add(p, "rate_limit", json_object_new_int(tpm));
    json_object_object_add(p, "status", json_object_new_string(status));
    return p;
}

static json_object *opt_string(const char *s)
{
    return s ? json_object_new_string(s) : NULL;
}

/* email_of - the email of variant v (NULL: the campaign's only one) */
static const struct campaign_email *email_of(const struct campaign *c, const char *v)
{
    for (size_t i = 0; i < c->nemails; i++)
        if (v ? c->emails[i].variant && strcmp(c->emails[i].variant, v) == 0
              : !c->emails[i].variant)
            return &c->emails[i];
    return NULL;
}

/* variant_json - one variant with its email and progress (a draft: its
 * share of the campaign's tpm, tpm_share) */
static json_object *variant_json(const struct campaign *c, const struct campaign_variant *v,
                                 int tpm_share)
{
    const struct campaign_email *e = email_of(c, v->name);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "name", json_object_new_string(v->name));
    json_object_object_add(o, "weight", json_object_new_int(v->weight));
    json_object_object_add(o, "subject", opt_string(e ? e->subject : v->subject));
    json_object_object_add(o, "email_id", e ? json_object_new_int64(e->email_id) : NULL);
    if (e)
        json_object_object_add(
            o, "progress",
            progress_json(e->pending + e->sent + e->failed + e->dead + e->suppressed, e->sent,
                          e->failed, e->pending, e->dead, e->suppressed, e->tpm,
                          status_of(true, e->paused, e->pending, e->failed)));
    else
        json_object_object_add(o, "progress", progress_json(0, 0, 0, 0, 0, 0, tpm_share, "draft"));
    return o;
}

/* campaign_json - the contract's shape of a campaign */
static json_object *campaign_json(const struct campaign *c)
{
    int64_t sent = 0, failed = 0, pending = 0, dead = 0, supp = 0;
    json_object *ids = json_object_new_array();
    for (size_t i = 0; i < c->nemails; i++) {
        const struct campaign_email *e = &c->emails[i];
        sent += e->sent;
        failed += e->failed;
        pending += e->pending;
        dead += e->dead;
        supp += e->suppressed;
        json_object_array_add(ids, json_object_new_int64(e->email_id));
    }
    const char *status = status_of(c->started, c->paused, pending, failed);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "id", json_object_new_int64(c->id));
    json_object_object_add(o, "name", json_object_new_string(c->name));
    json_object_object_add(o, "from", json_object_new_string(c->from));
    json_object_object_add(o, "from_name", opt_string(c->from_name));
    json_object_object_add(o, "template", json_object_new_string(c->template_name));
    json_object_object_add(o, "version", json_object_new_int(c->template_version));
    json_object_object_add(o, "audience", json_tokener_parse(c->audience));
    json_object *vs = json_object_new_array();
    int split[CAMPAIGN_VARIANTS_MAX] = {0};
    if (c->nvariants <= CAMPAIGN_VARIANTS_MAX)
        campaign_split_tpm(c->tpm, c->variants, c->nvariants, split);
    for (size_t i = 0; i < c->nvariants; i++)
        json_object_array_add(
            vs, variant_json(c, &c->variants[i], i < CAMPAIGN_VARIANTS_MAX ? split[i] : 0));
    json_object_object_add(o, "variants", vs);
    json_object_object_add(o, "tpm", json_object_new_int(c->tpm));
    json_object_object_add(o, "smtp_client", opt_string(c->smtp_client));
    json_object_object_add(o, "state", json_object_new_string(status));
    json_object_object_add(o, "paused", json_object_new_boolean(c->paused));
    json_object_object_add(o, "email_ids", ids);
    json_object_object_add(o, "created_at", json_object_new_string(c->created_at));
    json_object_object_add(o, "started_at", opt_string(c->started_at));
    json_object_object_add(
        o, "progress", progress_json(c->total, sent, failed, pending, dead, supp, c->tpm, status));
    return o;
}

/* path_id - the {id} segment as a positive integer, or reply 404 */
static int path_id(struct http_request *req, struct http_response *resp, int64_t *id)
{
    if (!req->nparams || http_parse_int(req->params[0], 1, INT64_MAX, id) != 0) {
        http_reply_error(resp, 404, "not_found", "no campaign with id '%.40s'",
                         req->nparams ? req->params[0] : "");
        return -1;
    }
    return 0;
}

/* reply_campaign - status with the campaign, 404 unknown, 503 store error */
static void reply_campaign(struct app *app, int64_t id, int status, struct http_response *resp)
{
    struct campaign c;
    int rc = store_get_campaign(app->store, id, &c);
    if (rc == 1) {
        http_reply_error(resp, 404, "not_found", "no campaign with id %lld", (long long)id);
        return;
    }
    if (rc != 0) {
        http_reply_error(resp, 503, "unavailable", "the campaign could not be read");
        return;
    }
    http_reply_json(resp, status, campaign_json(&c));
    campaign_cleanup(&c);
}

/* ---- POST /campaigns --------------------------------------------------- */

/* parse_audience - the audience field into its canonical JSON (caller
 * frees); -1 with a message */
static int parse_audience(json_object *body, char **out, char *err, size_t errlen)
{
    json_object *a, *v;
    *out = NULL;
    if (!json_object_object_get_ex(body, "audience", &a) || !a) {
        snprintf(err, errlen,
                 "field 'audience' is required: {\"all\":true}, {\"domains\":[..]},"
                 " {\"attributes\":{..}} or {\"upload\":true}");
        return -1;
    }
    if (!json_object_is_type(a, json_type_object) || json_object_object_length(a) != 1) {
        snprintf(err, errlen,
                 "field 'audience' must be an object with exactly one of 'all',"
                 " 'domains', 'attributes', 'upload'");
        return -1;
    }
    json_object *canon = json_object_new_object();
    if (json_object_object_get_ex(a, "all", &v) || json_object_object_get_ex(a, "upload", &v)) {
        const char *k = json_object_object_get_ex(a, "all", NULL) ? "all" : "upload";
        if (!json_object_is_type(v, json_type_boolean) || !json_object_get_boolean(v)) {
            snprintf(err, errlen, "audience.%s must be true", k);
            goto bad;
        }
        json_object_object_add(canon, k, json_object_new_boolean(1));
    } else if (json_object_object_get_ex(a, "domains", &v)) {
        size_t n = json_object_is_type(v, json_type_array) ? json_object_array_length(v) : 0;
        if (n == 0 || n > DOMAINS_MAX) {
            snprintf(err, errlen, "audience.domains must be a list of 1 to %d domains",
                     DOMAINS_MAX);
            goto bad;
        }
        json_object *list = json_object_new_array();
        json_object_object_add(canon, "domains", list);
        for (size_t i = 0; i < n; i++) {
            json_object *d = json_object_array_get_idx(v, i);
            const char *ds =
                json_object_is_type(d, json_type_string) ? json_object_get_string(d) : NULL;
            char probe[ADDR_DOMAIN_MAX + 8], why[160];
            struct addr pa;
            if (!ds || strlen(ds) > ADDR_DOMAIN_MAX) {
                snprintf(err, errlen, "audience.domains[%zu] must be a domain name", i);
                goto bad;
            }
            snprintf(probe, sizeof probe, "x@%s", ds);
            if (addr_parse(probe, &pa, why, sizeof why) != 0) {
                snprintf(err, errlen, "audience.domains[%zu] '%.64s' is not a valid domain: %s", i,
                         ds, why);
                goto bad;
            }
            bool dup = false;
            for (size_t k = 0; k < json_object_array_length(list) && !dup; k++)
                dup = strcmp(json_object_get_string(json_object_array_get_idx(list, k)),
                             pa.domain) == 0;
            if (!dup)
                json_object_array_add(list, json_object_new_string(pa.domain));
        }
    } else if (json_object_object_get_ex(a, "attributes", &v)) {
        if (!json_object_is_type(v, json_type_object) || json_object_object_length(v) == 0 ||
            json_object_object_length(v) > ATTRS_MAX) {
            snprintf(err, errlen, "audience.attributes must be an object of 1 to %d attributes",
                     ATTRS_MAX);
            goto bad;
        }
        json_object *attrs = json_object_new_object();
        json_object_object_add(canon, "attributes", attrs);
        json_object_object_foreach(v, key, val)
        {
            if (!tmpl_key_ok(key)) {
                snprintf(err, errlen,
                         "audience.attributes: '%.64s' is not an attribute name (1 to %d letters,"
                         " digits, '_', '-', '.')",
                         key, TMPL_KEY_MAX);
                goto bad;
            }
            enum json_type t = json_object_get_type(val);
            if (t != json_type_string && t != json_type_int && t != json_type_double &&
                t != json_type_boolean) {
                snprintf(err, errlen,
                         "audience.attributes.%s must be a string, a number or a boolean", key);
                goto bad;
            }
            if (t == json_type_string && json_object_get_string_len(val) > ATTR_VALUE_MAX) {
                snprintf(err, errlen, "audience.attributes.%s is over %d bytes", key,
                         ATTR_VALUE_MAX);
                goto bad;
            }
            json_object_object_add(attrs, key, json_object_get(val));
        }
    } else {
        snprintf(err, errlen,
                 "field 'audience' must be an object with exactly one of 'all',"
                 " 'domains', 'attributes', 'upload'");
        goto bad;
    }
    *out = xstrdup(json_object_to_json_string_ext(canon, JSON_C_TO_STRING_PLAIN));
    json_object_put(canon);
    return 0;
bad:
    json_object_put(canon);
    return -1;
}

/* parse_variants - the optional variants field into v[] (strings borrowed
 * from body); -1 with a message */
static int parse_variants(json_object *body, struct campaign_variant *v, size_t *n, char *err,
                          size_t errlen)
{
    json_object *arr;
    *n = 0;
    if (!json_object_object_get_ex(body, "variants", &arr) || !arr)
        return 0;
    size_t len = json_object_is_type(arr, json_type_array) ? json_object_array_length(arr) : 0;
    if (len == 0 || len > CAMPAIGN_VARIANTS_MAX) {
        snprintf(err, errlen, "field 'variants' must be a list of 1 to %d variants",
                 CAMPAIGN_VARIANTS_MAX);
        return -1;
    }
    static const char *const keys[] = {"name", "subject", "weight", NULL};
    for (size_t i = 0; i < len; i++) {
        json_object *o = json_object_array_get_idx(arr, i);
        const char *name, *subject;
        int64_t weight = 1;
        char e[200], why[160];
        if (!json_object_is_type(o, json_type_object)) {
            snprintf(err, errlen, "variants[%zu] must be an object", i);
            return -1;
        }
        if (jsonx_check_keys(o, keys, e, sizeof e) != 0 ||
            jsonx_get_string(o, "name", true, EVENT_VARIANT_MAX, &name, e, sizeof e) != 0 ||
            jsonx_get_string(o, "subject", false, SUBJECT_MAX, &subject, e, sizeof e) != 0 ||
            jsonx_get_int(o, "weight", false, 1, WEIGHT_MAX, &weight, NULL, e, sizeof e) != 0) {
            snprintf(err, errlen, "variants[%zu]: %s", i, e);
            return -1;
        }
        if (mime_check_header_text(name, EVENT_VARIANT_MAX, why, sizeof why) != 0) {
            snprintf(err, errlen, "variants[%zu].name: %s", i, why);
            return -1;
        }
        if (subject && mime_check_header_text(subject, SUBJECT_MAX, why, sizeof why) != 0) {
            snprintf(err, errlen, "variants[%zu].subject: %s", i, why);
            return -1;
        }
        for (size_t k = 0; k < i; k++)
            if (strcmp(v[k].name, name) == 0) {
                snprintf(err, errlen, "variants[%zu]: the name '%s' is taken by variants[%zu]", i,
                         name, k);
                return -1;
            }
        v[i] = (struct campaign_variant){
            .name = (char *)name, .subject = (char *)subject, .weight = (int)weight};
        (*n)++;
    }
    return 0;
}

/* template_error - reply the 404 of an unknown template or version */
static void template_error(struct app *app, struct http_response *resp, const char *name,
                           int64_t version)
{
    struct template t;
    if (version > 0 && store_get_template(app->store, name, 0, &t) == 0) {
        http_reply_error(resp, 404, "unknown_template",
                         "template '%s' has no version %lld (the latest is %d)", name,
                         (long long)version, t.version);
        template_cleanup(&t);
        return;
    }
    http_reply_error(resp, 404, "unknown_template", "no template named '%s'", name);
}

void api_campaign_create(struct http_request *req, struct http_response *resp)
{
    struct app *app = req->app;
    static const char *const keys[] = {"name",        "from",     "from_name", "template",
                                       "version",     "audience", "variants",  "tpm",
                                       "smtp_client", NULL};
    char err[512], why[160];
    json_object *body = NULL;
    const char *name, *from, *from_name, *tname, *client;
    int64_t version = 0, tpm = 0;
    struct campaign_variant variants[CAMPAIGN_VARIANTS_MAX];
    size_t nvariants = 0;
    char *audience = NULL;
    struct template t = {0};
    struct identity ident = {0};
    struct addr fa;
    if (!req->body) {
        http_reply_error(resp, 400, "invalid_json", "a JSON body is required");
        return;
    }
    if (jsonx_parse_object(req->body, req->body_len, &body, err, sizeof err) != 0) {
        http_reply_error(resp, 400, "invalid_json", "%s", err);
        return;
    }
    if (jsonx_check_keys(body, keys, err, sizeof err) != 0 ||
        jsonx_get_string(body, "name", true, NAME_MAX_BYTES, &name, err, sizeof err) != 0 ||
        jsonx_get_string(body, "from", false, 1024, &from, err, sizeof err) != 0 ||
        jsonx_get_string(body, "from_name", false, NAME_MAX_BYTES, &from_name, err, sizeof err) !=
            0 ||
        jsonx_get_string(body, "template", true, TEMPLATE_NAME_MAX, &tname, err, sizeof err) != 0 ||
        jsonx_get_int(body, "version", false, 1, INT_MAX, &version, NULL, err, sizeof err) != 0 ||
        jsonx_get_int(body, "tpm", false, 0, TPM_MAX, &tpm, NULL, err, sizeof err) != 0 ||
        jsonx_get_string(body, "smtp_client", false, 128, &client, err, sizeof err) != 0 ||
        parse_audience(body, &audience, err, sizeof err) != 0 ||
        parse_variants(body, variants, &nvariants, err, sizeof err) != 0)
        goto bad;
    if (mime_check_header_text(name, NAME_MAX_BYTES, why, sizeof why) != 0) {
        snprintf(err, sizeof err, "name: %s", why);
        goto bad;
    }
    if (from_name && mime_check_header_text(from_name, NAME_MAX_BYTES, why, sizeof why) != 0) {
        snprintf(err, sizeof err, "from_name: %s", why);
        goto bad;
    }
    const struct smtp_clients *cl = app->clients;
    if (client && smtp_clients_find(cl, client) < 0) {
        snprintf(err, sizeof err, "smtp_client '%.64s' is not configured", client);
        goto bad;
    }
    int rc = store_get_template(app->store, tname, (int)version, &t);
    if (rc == 1) {
        template_error(app, resp, tname, version);
        goto out;
    }
    if (rc != 0) {
        http_reply_error(resp, 503, "unavailable", "the template could not be read");
        goto out;
    }
    /* the sender: the request's, else the template's */
    if (!from)
        from = t.from;
    if (!from) {
        snprintf(err, sizeof err, "field 'from' is required (template '%s' names no sender)",
                 tname);
        goto bad;
    }
    if (addr_parse(from, &fa, why, sizeof why) != 0) {
        snprintf(err, sizeof err, "from is not a valid address: %s", why);
        goto bad;
    }
    /* From, MAIL FROM and the Message-IDs stay ASCII: no SMTPUTF8 here */
    if (addr_ascii(&fa, why, sizeof why) != 0) {
        snprintf(err, sizeof err, "from: %s", why);
        goto bad;
    }
    /* an identity's address: its name and SmtpClient unless given */
    if (store_identity_by_address(app->store, fa.norm, &ident) == 0) {
        if (!from_name && !t.from_name)
            from_name = ident.name;
        if (!client && ident.smtp_client && smtp_clients_find(cl, ident.smtp_client) >= 0)
            client = ident.smtp_client;
    }
    char now[40];
    time_rfc3339_ms(time_now_ms(), now, sizeof now);
    struct campaign_spec spec = {
        .name = name,
        .from = fa.norm,
        .from_name = from_name ? from_name : t.from_name,
        .template_name = t.name,
        .template_version = t.version,
        .smtp_client = client ? client : cl->v[cl->default_idx].s.name,
        .audience = audience,
        .created_at = now,
        .variants = variants,
        .nvariants = nvariants,
        .tpm = (int)tpm,
    };
    int64_t id = 0;
    if (store_create_campaign(app->store, &spec, &id) != 0) {
        http_reply_error(resp, 503, "unavailable", "the campaign could not be stored");
        goto out;
    }
    log_info("campaign_id=%lld created: template %s v%d, audience %s, %zu variants", (long long)id,
             t.name, t.version, audience, nvariants);
    reply_campaign(app, id, 201, resp);
    goto out;
bad:
    http_reply_error(resp, 400, "invalid_field", "%s", err);
out:
    free(audience);
    template_cleanup(&t);
    identity_cleanup(&ident);
    json_object_put(body);
}

/* ---- GET ----------------------------------------------------------------- */

void api_campaigns(struct http_request *req, struct http_response *resp)
{
    struct app *app = req->app;
    int64_t limit, offset;
    if (http_paging(req, resp, 100, 1000, &limit, &offset) != 0)
        return;
    struct campaign *v;
    size_t n;
    if (store_list_campaigns(app->store, limit, offset, &v, &n) != 0) {
        http_reply_error(resp, 503, "unavailable", "the campaigns could not be read");
        return;
    }
    json_object *arr = json_object_new_array();
    for (size_t i = 0; i < n; i++)
        json_object_array_add(arr, campaign_json(&v[i]));
    store_campaigns_free(v, n);
    http_reply_json(resp, 200, arr);
}

void api_campaign(struct http_request *req, struct http_response *resp)
{
    int64_t id;
    if (path_id(req, resp, &id) == 0)
        reply_campaign(req->app, id, 200, resp);
}

/* ---- start --------------------------------------------------------------- */

/* the placeholders a start must check: no builtin, none with a default */
struct keyset {
    json_object *defaults;
    char **v;
    size_t n, cap;
};

static void add_key(void *arg, const char *key)
{
    struct keyset *ks = arg;
    json_object *d;
    if (tmpl_builtin(key))
        return;
    if (ks->defaults && json_object_object_get_ex(ks->defaults, key, &d) && d &&
        !json_object_is_type(d, json_type_object) && !json_object_is_type(d, json_type_array))
        return;
    for (size_t i = 0; i < ks->n; i++)
        if (strcmp(ks->v[i], key) == 0)
            return;
    if (ks->n == ks->cap) {
        ks->cap = ks->cap ? 2 * ks->cap : 8;
        ks->v = xreallocarray(ks->v, ks->cap, sizeof *ks->v);
    }
    ks->v[ks->n++] = xstrdup(key);
}

/* conflict - the 409 of a refused start, with its reason */
static void conflict(struct http_response *resp, const struct campaign *c,
                     const struct campaign_start_result *r)
{
    long long id = (long long)c->id;
    switch (r->conflict) {
    case CAMPAIGN_NOT_DRAFT:
        http_reply_error(resp, 409, "not_draft",
                         "campaign %lld was already started: start works on a draft only", id);
        return;
    case CAMPAIGN_UPLOAD_IMPORTING:
        http_reply_error(resp, 409, "import_running",
                         "the uploaded list of campaign %lld is still being imported; start it when"
                         " GET /campaigns/%lld/upload says done",
                         id, id);
        return;
    case CAMPAIGN_UPLOAD_NONE:
        http_reply_error(resp, 409, "empty_audience",
                         "the upload has not been imported yet: campaign %lld has no list"
                         " (POST /campaigns/%lld/upload/init, then /upload/complete)",
                         id, id);
        return;
    case CAMPAIGN_UPLOAD_FAILED:
        http_reply_error(resp, 409, "import_failed",
                         "the last import of campaign %lld's list failed (see GET"
                         " /campaigns/%lld/upload); upload the list again",
                         id, id);
        return;
    case CAMPAIGN_ALL_SUPPRESSED:
        http_reply_error(resp, 409, "empty_audience",
                         "every one of the %lld addresses the audience matches is suppressed",
                         (long long)r->matched);
        return;
    case CAMPAIGN_NO_MATCH:
        break;
    }
    /* no match: say what was asked */
    json_object *a = json_tokener_parse(c->audience), *v;
    char what[600] = "no user is registered";
    size_t off = 0;
    if (a && json_object_object_get_ex(a, "domains", &v)) {
        off += (size_t)snprintf(what, sizeof what, "no user has an address in");
        for (size_t i = 0; i < json_object_array_length(v) && off < sizeof what; i++)
            off += (size_t)snprintf(what + off, sizeof what - off, "%s %s", i ? "," : "",
                                    json_object_get_string(json_object_array_get_idx(v, i)));
    } else if (a && json_object_object_get_ex(a, "attributes", &v)) {
        off += (size_t)snprintf(what, sizeof what, "no user has");
        bool first = true;
        json_object_object_foreach(v, key, val)
        {
            if (off >= sizeof what)
                break;
            off += (size_t)snprintf(what + off, sizeof what - off, "%s %s = %s",
                                    first ? "" : " and", key, json_object_get_string(val));
            first = false;
        }
    } else if (a && json_object_object_get_ex(a, "upload", NULL)) {
        snprintf(what, sizeof what, "the uploaded list has no valid recipient");
    }
    json_object_put(a);
    http_reply_error(resp, 409, "empty_audience", "%s", what);
}

void api_campaign_start(struct http_request *req, struct http_response *resp)
{
    struct app *app = req->app;
    int64_t id;
    struct campaign c;
    struct template t = {0};
    struct keyset ks = {0};
    if (path_id(req, resp, &id) != 0)
        return;
    int rc = store_get_campaign(app->store, id, &c);
    if (rc == 1) {
        http_reply_error(resp, 404, "not_found", "no campaign with id %lld", (long long)id);
        return;
    }
    if (rc != 0) {
        http_reply_error(resp, 503, "unavailable", "the campaign could not be read");
        return;
    }
    if (c.started) {
        int64_t pending = 0, failed = 0;
        for (size_t i = 0; i < c.nemails; i++) {
            pending += c.emails[i].pending;
            failed += c.emails[i].failed;
        }
        http_reply_error(resp, 409, "not_draft", "campaign %lld is %s: start works on a draft only",
                         (long long)id, status_of(true, c.paused, pending, failed));
        goto out;
    }
    rc = store_get_template(app->store, c.template_name, c.template_version, &t);
    if (rc != 0) {
        http_reply_error(resp, 503, "unavailable", "template '%s' version %d could not be read",
                         c.template_name, c.template_version);
        goto out;
    }
    /* every placeholder a copy will fill: the subject each email uses,
     * the text and the html */
    ks.defaults = json_tokener_parse(t.defaults ? t.defaults : "{}");
    bool tmpl_subject = c.nvariants == 0;
    for (size_t i = 0; i < c.nvariants; i++) {
        if (c.variants[i].subject)
            tmpl_keys(c.variants[i].subject, add_key, &ks);
        else
            tmpl_subject = true;
    }
    if (tmpl_subject)
        tmpl_keys(t.subject, add_key, &ks);
    tmpl_keys(t.text, add_key, &ks);
    if (t.html)
        tmpl_keys(t.html, add_key, &ks);
    char now[40];
    time_rfc3339_ms(time_now_ms(), now, sizeof now);
    const char *at = strchr(c.from, '@');
    struct campaign_start st = {
        .tmpl = &t,
        .msgid_domain = app->cfg->message_id_domain ? app->cfg->message_id_domain
                                                    : (at ? at + 1 : "localhost.invalid"),
        .keys = (const char *const *)ks.v,
        .nkeys = ks.n,
        .started_at = now,
    };
    struct campaign_start_result r;
    rc = store_start_campaign(app->store, id, &st, &r);
    switch (rc) {
    case STORE_START_OK:
        sender_notify(app->sender);
        log_info("campaign_id=%lld started: %lld copies in %zu emails%s", (long long)id,
                 (long long)r.total, r.nemails, c.paused ? " (paused)" : "");
        free(r.email_ids);
        reply_campaign(app, id, 200, resp);
        break;
    case STORE_START_UNKNOWN:
        http_reply_error(resp, 404, "not_found", "no campaign with id %lld", (long long)id);
        break;
    case STORE_START_CONFLICT:
        conflict(resp, &c, &r);
        break;
    case STORE_START_MISSING:
        http_reply_error(resp, 400, "missing_placeholder",
                         "placeholder {{%s}} has no value for %lld recipient%s (e.g. %s) and no"
                         " default",
                         r.key, (long long)r.missing, r.missing == 1 ? "" : "s", r.example);
        break;
    default:
        http_reply_error(resp, 503, "unavailable", "the campaign could not be started");
    }
out:
    for (size_t i = 0; i < ks.n; i++)
        free(ks.v[i]);
    free(ks.v);
    json_object_put(ks.defaults);
    template_cleanup(&t);
    campaign_cleanup(&c);
}

/* ---- controls ------------------------------------------------------------ */

/* changed - tell the sender about each email, free the ids */
static void changed(struct app *app, int64_t *ids, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sender_email_changed(app->sender, ids[i]);
    free(ids);
}

/* updated - the answer to a change of the campaign's emails (rc of the
 * store call): 404, 503, or the sender told and the campaign; 0 when it
 * was changed */
static int updated(struct app *app, struct http_response *resp, int64_t id, int rc, int64_t *ids,
                   size_t n)
{
    if (rc == 1) {
        http_reply_error(resp, 404, "not_found", "no campaign with id %lld", (long long)id);
        return -1;
    }
    if (rc != 0) {
        http_reply_error(resp, 503, "unavailable", "the campaign could not be updated");
        return -1;
    }
    changed(app, ids, n);
    reply_campaign(app, id, 200, resp);
    return 0;
}

static void set_paused(struct http_request *req, struct http_response *resp, bool paused)
{
    struct app *app = req->app;
    int64_t id, *ids;
    size_t n;
    if (path_id(req, resp, &id) != 0)
        return;
    int rc = store_campaign_set_paused(app->store, id, paused, &ids, &n);
    if (updated(app, resp, id, rc, ids, n) == 0)
        log_info("campaign_id=%lld %s (%zu emails)", (long long)id, paused ? "paused" : "resumed",
                 n);
}

void api_campaign_pause(struct http_request *req, struct http_response *resp)
{
    set_paused(req, resp, true);
}

void api_campaign_resume(struct http_request *req, struct http_response *resp)
{
    set_paused(req, resp, false);
}

void api_campaign_rate_limit(struct http_request *req, struct http_response *resp)
{
    struct app *app = req->app;
    int64_t id, tpm = 0, *ids;
    size_t n;
    char err[256];
    json_object *body = NULL;
    static const char *const keys[] = {"tpm", NULL};
    if (path_id(req, resp, &id) != 0)
        return;
    if (!req->body || jsonx_parse_object(req->body, req->body_len, &body, err, sizeof err) != 0) {
        http_reply_error(resp, 400, "invalid_json", "%s",
                         req->body ? err : "a JSON body {\"tpm\":N} is required");
        return;
    }
    if (jsonx_check_keys(body, keys, err, sizeof err) != 0 ||
        jsonx_get_int(body, "tpm", true, 0, TPM_MAX, &tpm, NULL, err, sizeof err) != 0) {
        http_reply_error(resp, 400, "invalid_field", "%s", err);
        json_object_put(body);
        return;
    }
    json_object_put(body);
    int rc = store_campaign_set_tpm(app->store, id, (int)tpm, &ids, &n);
    if (updated(app, resp, id, rc, ids, n) == 0)
        log_info("campaign_id=%lld rate limit tpm=%lld (%zu emails)", (long long)id, (long long)tpm,
                 n);
}

void api_campaign_reconcile(struct http_request *req, struct http_response *resp)
{
    struct app *app = req->app;
    int64_t id, total = 0;
    struct campaign c;
    if (path_id(req, resp, &id) != 0)
        return;
    int rc = store_get_campaign(app->store, id, &c);
    if (rc == 1) {
        http_reply_error(resp, 404, "not_found", "no campaign with id %lld", (long long)id);
        return;
    }
    for (size_t i = 0; rc == 0 && i < c.nemails; i++) {
        int64_t n = 0;
        rc = store_reconcile(app->store, c.emails[i].email_id, time_now_ms(), &n);
        total += n;
    }
    campaign_cleanup(&c);
    if (rc != 0) {
        http_reply_error(resp, 503, "unavailable", "the campaign could not be reconciled");
        return;
    }
    sender_notify(app->sender);
    log_info("campaign_id=%lld reconcile requeued=%lld", (long long)id, (long long)total);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "requeued", json_object_new_int64(total));
    http_reply_json(resp, 200, o);
}
