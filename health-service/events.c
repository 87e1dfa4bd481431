/* events.c - event validation for the consumer. */
#include "events.h"
#include "jsonx.h"
#include "xalloc.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* parse_envelope - what every event shares: a non-empty value within the
 * size limit, a JSON object, "v": 1 and a "type" string (*type points
 * into the object). The object, or NULL with errbuf; caller puts. */
static json_object *parse_envelope(const char *value, size_t len, const char **type, char *errbuf,
                                   size_t errlen)
{
    json_object *o = NULL;
    int64_t v = 0;
    if (!value || len == 0) {
        snprintf(errbuf, errlen, "empty value");
        return NULL;
    }
    if (len > EVENT_MAX_BYTES) {
        snprintf(errbuf, errlen, "value of %zu bytes is over the %d-byte limit", len,
                 EVENT_MAX_BYTES);
        return NULL;
    }
    if (jsonx_parse_object(value, len, &o, errbuf, errlen) != 0)
        return NULL;
    if (jsonx_get_int(o, "v", true, 0, INT32_MAX, &v, NULL, errbuf, errlen) != 0)
        goto fail;
    if (v != 1) {
        snprintf(errbuf, errlen, "unknown schema version %lld", (long long)v);
        goto fail;
    }
    if (jsonx_get_string(o, "type", true, 64, type, errbuf, errlen) != 0)
        goto fail;
    return o;
fail:
    json_object_put(o);
    return NULL;
}

int events_parse_user(const char *value, size_t len, struct user_event *out, char *errbuf,
                      size_t errlen)
{
    json_object *o = NULL;
    const char *type, *email, *name, *domain, *at;
    char why[160];
    int rc = -1;
    memset(out, 0, sizeof *out);
    if (!(o = parse_envelope(value, len, &type, errbuf, errlen)))
        return -1;
    if (strcmp(type, "user.registered") != 0) {
        snprintf(errbuf, errlen, "unexpected type '%.64s'", type);
        goto out;
    }
    if (jsonx_get_string(o, "email_id", true, 1024, &email, errbuf, errlen) != 0 ||
        jsonx_get_string(o, "name", true, 1024, &name, errbuf, errlen) != 0 ||
        jsonx_get_string(o, "domain", true, 255, &domain, errbuf, errlen) != 0 ||
        jsonx_get_string(o, "at", true, 64, &at, errbuf, errlen) != 0)
        goto out;
    if (addr_parse(email, &out->addr, why, sizeof why) != 0) {
        snprintf(errbuf, errlen, "email_id is invalid: %s", why);
        goto out;
    }
    if (strcmp(out->addr.domain, domain) != 0) {
        snprintf(errbuf, errlen, "domain does not match email_id");
        goto out;
    }
    out->name = xstrdup(name);
    out->at = xstrdup(at);
    rc = 0;
out:
    json_object_put(o);
    return rc;
}

void events_user_cleanup(struct user_event *ev)
{
    free(ev->name);
    free(ev->at);
    ev->name = ev->at = NULL;
}

/* parse_rfc3339_ms - "2026-11-23T10:00:00.123Z" (fraction optional) */
static int parse_rfc3339_ms(const char *s, int64_t *out)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!p)
        return -1;
    int ms = 0;
    if (*p == '.') {
        p++;
        int digits = 0;
        while (*p >= '0' && *p <= '9') {
            if (digits < 3)
                ms = ms * 10 + (*p - '0');
            digits++;
            p++;
        }
        for (; digits < 3; digits++)
            ms *= 10;
    }
    if (strcmp(p, "Z") != 0 && strcmp(p, "+00:00") != 0)
        return -1;
    *out = (int64_t)timegm(&tm) * 1000 + ms;
    return 0;
}

static bool bracketed(const char *s)
{
    size_t n = strlen(s);
    return n >= 3 && s[0] == '<' && s[n - 1] == '>' && strchr(s, '@');
}

int events_parse_copy(const char *value, size_t len, struct copy_event *out, char *errbuf,
                      size_t errlen)
{
    json_object *o = NULL;
    const char *type, *mid, *bid, *rcpt, *domain, *client, *sent_at, *reply = NULL;
    int64_t email_id = 0;
    char why[160];
    struct addr a;
    int rc = -1;
    memset(out, 0, sizeof *out);
    if (!(o = parse_envelope(value, len, &type, errbuf, errlen)))
        return -1;
    if (strcmp(type, "email.sent") != 0 && strcmp(type, "email.failed") != 0) {
        snprintf(errbuf, errlen, "unexpected type '%.64s'", type);
        goto out;
    }
    out->failed = strcmp(type, "email.failed") == 0;
    if (jsonx_get_string(o, "message_id", true, 998, &mid, errbuf, errlen) != 0 ||
        jsonx_get_string(o, "broadcast_id", true, 998, &bid, errbuf, errlen) != 0 ||
        jsonx_get_int(o, "email_id", true, 1, INT64_MAX, &email_id, NULL, errbuf, errlen) != 0 ||
        jsonx_get_string(o, "recipient", true, 1024, &rcpt, errbuf, errlen) != 0 ||
        jsonx_get_string(o, "domain", true, 255, &domain, errbuf, errlen) != 0 ||
        jsonx_get_string(o, "smtp_client", true, 128, &client, errbuf, errlen) != 0 ||
        jsonx_get_string(o, "sent_at", !out->failed, 64, &sent_at, errbuf, errlen) != 0 ||
        (out->failed &&
         jsonx_get_string(o, "smtp_reply", false, 1024, &reply, errbuf, errlen) != 0))
        goto out;
    if (!bracketed(mid) || !bracketed(bid)) {
        snprintf(errbuf, errlen, "message_id and broadcast_id must be <...@...>");
        goto out;
    }
    if (addr_parse(rcpt, &a, why, sizeof why) != 0) {
        snprintf(errbuf, errlen, "recipient is invalid: %s", why);
        goto out;
    }
    if (strcmp(a.domain, domain) != 0) {
        snprintf(errbuf, errlen, "domain does not match recipient");
        goto out;
    }
    if (sent_at && parse_rfc3339_ms(sent_at, &out->sent_at_ms) != 0) {
        snprintf(errbuf, errlen, "sent_at is not an RFC 3339 UTC time");
        goto out;
    }
    out->email_id = email_id;
    out->message_id = xstrdup(mid);
    out->broadcast_id = xstrdup(bid);
    out->recipient = xstrdup(a.norm);
    out->domain = xstrdup(a.domain);
    out->smtp_client = xstrdup(client);
    out->smtp_reply = reply ? xstrdup(reply) : NULL;
    rc = 0;
out:
    json_object_put(o);
    return rc;
}

void events_copy_cleanup(struct copy_event *ev)
{
    free(ev->message_id);
    free(ev->broadcast_id);
    free(ev->recipient);
    free(ev->domain);
    free(ev->smtp_client);
    free(ev->smtp_reply);
    memset(ev, 0, sizeof *ev);
}

void events_type(const char *value, size_t len, char *out, size_t outlen)
{
    json_object *o = NULL;
    const char *t = NULL;
    char err[64];
    out[0] = '\0';
    if (value && len && len <= EVENT_MAX_BYTES &&
        jsonx_parse_object(value, len, &o, err, sizeof err) == 0 &&
        jsonx_get_string(o, "type", true, 64, &t, err, sizeof err) == 0)
        snprintf(out, outlen, "%s", t);
    json_object_put(o);
}
