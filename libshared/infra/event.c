/* event.c - encoding and decoding of the Kafka events. The field names
 * live in one table used both ways. Encoding builds a json-c object with
 * constant keys; decoding picks the fields from the JSON text in one pass
 * (jsonx_object_fields, no json-c tree) since health ingests events by the
 * million, and keeps a decoded event's strings in one allocation. */
#include "event.h"
#include "addr.h"
#include "errbuf.h"
#include "jsonx.h"
#include "timeutil.h"
#include "xalloc.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const type_names[EVENT_TYPE_COUNT] = {
    [EVENT_USER_REGISTERED] = "user.registered",
    [EVENT_EMAIL_SENT] = "email.sent",
    [EVENT_EMAIL_FAILED] = "email.failed",
    [EVENT_EMAIL_BOUNCED] = "email.bounced",
    [EVENT_EMAIL_COMPLAINED] = "email.complained",
    [EVENT_USER_UNSUBSCRIBED] = "user.unsubscribed",
    [EVENT_PLACEMENT_SUMMARY] = "placement.summary",
};

/* the members of every event type (email_id is a string in
 * user.registered, an integer in email.*) */
enum {
    F_V,
    F_TYPE,
    F_EMAIL_ID,
    F_DOMAIN,
    F_NAME,
    F_AT,
    F_MID,
    F_BID,
    F_RCPT,
    F_CLIENT,
    F_SENT_AT,
    F_REPLY,
    F_BOUNCE,
    F_STATUS,
    F_DIAG,
    F_FBTYPE,
    F_REASON,
    F_IDENTITY,
    F_PROVIDER,
    F_WINDOW,
    F_CHECKED,
    F_INBOX,
    F_SPAM,
    F_BOUNCED,
    F_COMPLAINED,
    F_CAMPAIGN,
    F_VARIANT,
    F_COUNT
};
static const char *const field_keys[F_COUNT] = {
    [F_V] = "v",
    [F_TYPE] = "type",
    [F_EMAIL_ID] = "email_id",
    [F_DOMAIN] = "domain",
    [F_NAME] = "name",
    [F_AT] = "at",
    [F_MID] = "message_id",
    [F_BID] = "broadcast_id",
    [F_RCPT] = "recipient",
    [F_CLIENT] = "smtp_client",
    [F_SENT_AT] = "sent_at",
    [F_REPLY] = "smtp_reply",
    [F_BOUNCE] = "bounce",
    [F_STATUS] = "status",
    [F_DIAG] = "diagnostic",
    [F_FBTYPE] = "feedback_type",
    [F_REASON] = "reason",
    [F_IDENTITY] = "identity",
    [F_PROVIDER] = "provider",
    [F_WINDOW] = "window_s",
    [F_CHECKED] = "checked",
    [F_INBOX] = "inbox",
    [F_SPAM] = "spam",
    [F_BOUNCED] = "bounced",
    [F_COMPLAINED] = "complained",
    [F_CAMPAIGN] = "campaign",
    [F_VARIANT] = "variant",
};

const char *event_type_name(enum event_type t)
{
    return t > EVENT_NONE && t < EVENT_TYPE_COUNT ? type_names[t] : NULL;
}

enum event_type event_type_parse(const char *name)
{
    for (int t = EVENT_NONE + 1; t < EVENT_TYPE_COUNT; t++)
        if (strcmp(name, type_names[t]) == 0)
            return (enum event_type)t;
    return EVENT_NONE;
}

/* encoding */

/* each key is added once and is a constant: json-c neither copies nor
 * looks it up */
static void put(json_object *o, int field, json_object *v)
{
    json_object_object_add_ex(o, field_keys[field], v,
                              JSON_C_OBJECT_ADD_KEY_IS_NEW | JSON_C_OBJECT_KEY_IS_CONSTANT);
}

static void put_str(json_object *o, int field, const char *s)
{
    put(o, field, json_object_new_string(s));
}

/* envelope - a new object with "v" and "type" */
static json_object *envelope(enum event_type t)
{
    json_object *o = json_object_new_object();
    put(o, F_V, json_object_new_int(EVENT_VERSION));
    put_str(o, F_TYPE, type_names[t]);
    return o;
}

/* text_of - o as compact JSON text (o is put) */
static char *text_of(json_object *o)
{
    char *s = jsonx_to_string(o);
    json_object_put(o);
    return s;
}

char *event_encode_user_registered(const struct event_user_registered *e)
{
    json_object *o = envelope(EVENT_USER_REGISTERED);
    put_str(o, F_EMAIL_ID, e->address);
    put_str(o, F_NAME, e->name);
    put_str(o, F_DOMAIN, e->domain);
    put_str(o, F_AT, e->at);
    return text_of(o);
}

char *event_encode_email_sent(const struct event_email_sent *e)
{
    json_object *o = envelope(e->failed ? EVENT_EMAIL_FAILED : EVENT_EMAIL_SENT);
    put_str(o, F_MID, e->message_id);
    put_str(o, F_BID, e->broadcast_id);
    put(o, F_EMAIL_ID, json_object_new_int64(e->email_id));
    put_str(o, F_RCPT, e->recipient);
    put_str(o, F_DOMAIN, e->domain);
    put_str(o, F_CLIENT, e->smtp_client);
    if (e->identity)
        put_str(o, F_IDENTITY, e->identity);
    if (e->campaign > 0)
        put(o, F_CAMPAIGN, json_object_new_int64(e->campaign));
    if (e->variant)
        put_str(o, F_VARIANT, e->variant);
    if (!e->failed || e->sent_at_ms != 0) {
        char at[32];
        time_rfc3339_ms(e->sent_at_ms, at, sizeof at);
        put_str(o, F_SENT_AT, at);
    }
    if (e->failed && e->smtp_reply)
        put_str(o, F_REPLY, e->smtp_reply);
    return text_of(o);
}

char *event_encode_feedback(const struct event_email_feedback *e)
{
    json_object *o = envelope(e->complained ? EVENT_EMAIL_COMPLAINED : EVENT_EMAIL_BOUNCED);
    put_str(o, F_MID, e->message_id);
    put(o, F_EMAIL_ID, json_object_new_int64(e->email_id));
    put_str(o, F_RCPT, e->recipient);
    put_str(o, F_DOMAIN, e->domain);
    if (e->complained) {
        put_str(o, F_FBTYPE, e->feedback_type);
    } else {
        put_str(o, F_BOUNCE, e->soft ? "soft" : "hard");
        put_str(o, F_STATUS, e->status);
        put_str(o, F_DIAG, e->diagnostic ? e->diagnostic : "");
    }
    put_str(o, F_AT, e->at);
    return text_of(o);
}

char *event_encode_user_unsubscribed(const struct event_user_unsubscribed *e)
{
    json_object *o = envelope(EVENT_USER_UNSUBSCRIBED);
    put_str(o, F_EMAIL_ID, e->address);
    put_str(o, F_REASON, e->reason);
    put_str(o, F_AT, e->at);
    return text_of(o);
}

char *event_encode_placement_summary(const struct event_placement_summary *e)
{
    json_object *o = envelope(EVENT_PLACEMENT_SUMMARY);
    put_str(o, F_IDENTITY, e->identity);
    put_str(o, F_PROVIDER, e->provider);
    put(o, F_WINDOW, json_object_new_int64(e->window_s));
    put(o, F_CHECKED, json_object_new_int64(e->checked));
    put(o, F_INBOX, json_object_new_int64(e->inbox));
    put(o, F_SPAM, json_object_new_int64(e->spam));
    put(o, F_BOUNCED, json_object_new_int64(e->bounced));
    put(o, F_COMPLAINED, json_object_new_int64(e->complained));
    put_str(o, F_AT, e->at);
    return text_of(o);
}

char *event_encode(const struct event *ev)
{
    switch (ev->type) {
    case EVENT_USER_REGISTERED:
        return event_encode_user_registered(&ev->user_registered);
    case EVENT_EMAIL_SENT:
    case EVENT_EMAIL_FAILED:
        return event_encode_email_sent(&ev->email_sent);
    case EVENT_EMAIL_BOUNCED:
    case EVENT_EMAIL_COMPLAINED:
        return event_encode_feedback(&ev->feedback);
    case EVENT_USER_UNSUBSCRIBED:
        return event_encode_user_unsubscribed(&ev->user_unsubscribed);
    case EVENT_PLACEMENT_SUMMARY:
        return event_encode_placement_summary(&ev->placement);
    default:
        return NULL;
    }
}

/* decoding */

/* a value's unescaped strings are written here (on the stack for the
 * usual small event) */
struct scratch {
    char small[1024];
    char *buf;
    size_t cap;
};

static void scratch_init(struct scratch *sc, size_t len)
{
    sc->cap = len + 1;
    sc->buf = sc->cap <= sizeof sc->small ? sc->small : xmalloc(sc->cap);
}

static void scratch_cleanup(struct scratch *sc)
{
    if (sc->buf != sc->small)
        free(sc->buf);
}

/* decode_envelope - what every event shares: a JSON object, "v": 1 and a
 * "type" in accept. The members in f, the type in *type, or -1 with
 * errbuf. */
static int decode_envelope(const char *text, size_t len, unsigned accept, struct jsonx_field *f,
                           struct scratch *sc, enum event_type *type, char *errbuf, size_t errlen)
{
    int64_t v = 0;
    const char *name;
    for (int i = 0; i < F_COUNT; i++)
        f[i] = (struct jsonx_field){.key = field_keys[i]};
    if (jsonx_object_fields(text, len, f, F_COUNT, sc->buf, sc->cap, errbuf, errlen) != 0)
        return -1;
    if (jsonx_field_int(&f[F_V], true, 0, INT32_MAX, &v, errbuf, errlen) != 0)
        return -1;
    if (v != EVENT_VERSION) {
        errbuf_set(errbuf, errlen, "unknown schema version %lld", (long long)v);
        return -1;
    }
    if (jsonx_field_string(&f[F_TYPE], true, EVENT_TYPE_MAX, &name, errbuf, errlen) != 0)
        return -1;
    *type = event_type_parse(name);
    if (*type == EVENT_NONE || !(accept & EVENT_BIT(*type))) {
        errbuf_set(errbuf, errlen, "unexpected type '%.64s'", name);
        return -1;
    }
    return 0;
}

/* append - a copy of str at *p; returns it */
static const char *append(char **p, const char *str)
{
    size_t n = strlen(str) + 1;
    const char *at = memcpy(*p, str, n);
    *p += n;
    return at;
}

/* address_field - s, the value of field `name`, parsed into *a; with
 * domain, it must be the address's domain ("domain does not match") */
static int address_field(const char *name, const char *s, const char *domain, struct addr *a,
                         char *errbuf, size_t errlen)
{
    char why[160];
    if (addr_parse(s, a, why, sizeof why) != 0) {
        errbuf_set(errbuf, errlen, "%s is invalid: %s", name, why);
        return -1;
    }
    if (domain && strcmp(a->domain, domain) != 0) {
        errbuf_set(errbuf, errlen, "domain does not match %s", name);
        return -1;
    }
    return 0;
}

static int decode_user_registered(const struct jsonx_field *f, struct event_user_registered *out,
                                  char *errbuf, size_t errlen)
{
    const char *email, *name, *domain, *at;
    struct addr a;
    if (jsonx_field_string(&f[F_EMAIL_ID], true, 1024, &email, errbuf, errlen) != 0 ||
        jsonx_field_string(&f[F_NAME], true, 1024, &name, errbuf, errlen) != 0 ||
        jsonx_field_string(&f[F_DOMAIN], true, 255, &domain, errbuf, errlen) != 0 ||
        jsonx_field_string(&f[F_AT], true, 64, &at, errbuf, errlen) != 0)
        return -1;
    if (address_field("email_id", email, domain, &a, errbuf, errlen) != 0)
        return -1;
    char *p = out->block =
        xmalloc(strlen(a.norm) + strlen(name) + strlen(a.domain) + strlen(at) + 4);
    out->address = append(&p, a.norm);
    out->name = append(&p, name);
    out->domain = append(&p, a.domain);
    out->at = append(&p, at);
    return 0;
}

/* digits - the n-digit decimal number at s, or -1 */
static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* days_from_civil - days since 1970-01-01 of a proleptic Gregorian date
 * (Howard Hinnant's algorithm) */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* canonical_datetime - "YYYY-MM-DDTHH:MM:SS" with every field in its
 * range (year 1900 on): seconds since the epoch in *out, and the rest of
 * s; NULL for any other form (strptime then decides) */
static const char *canonical_datetime(const char *s, int64_t *out)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y = digits(s, 4), mo, d, h, mi, sec;
    if (y < 1900 || s[4] != '-' || (mo = digits(s + 5, 2)) < 1 || mo > 12 || s[7] != '-' ||
        (d = digits(s + 8, 2)) < 1 || s[10] != 'T' || (h = digits(s + 11, 2)) < 0 || h > 23 ||
        s[13] != ':' || (mi = digits(s + 14, 2)) < 0 || mi > 59 || s[16] != ':' ||
        (sec = digits(s + 17, 2)) < 0 || sec > 59)
        return NULL;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (d > mdays[mo - 1] + (mo == 2 && leap))
        return NULL;
    *out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
    return s + 19;
}

/* parse_rfc3339_ms - "2026-11-23T10:00:00.123Z" (fraction optional) */
static int parse_rfc3339_ms(const char *s, int64_t *out)
{
    int64_t secs;
    const char *p = canonical_datetime(s, &secs);
    if (!p) { /* the fast path above takes what the producers write */
        struct tm tm;
        memset(&tm, 0, sizeof tm);
        if (!(p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm)))
            return -1;
        secs = (int64_t)timegm(&tm);
    }
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
    *out = secs * 1000 + ms;
    return 0;
}

static bool bracketed(const char *s)
{
    size_t n = strlen(s);
    return n >= 3 && s[0] == '<' && s[n - 1] == '>' && strchr(s, '@');
}

static int decode_email_sent(const struct jsonx_field *f, bool failed, struct event_email_sent *out,
                             char *errbuf, size_t errlen)
{
    const char *mid, *bid, *rcpt, *domain, *client, *sent_at, *reply = NULL, *ident = NULL,
                                                              *variant = NULL;
    int64_t email_id = 0, campaign = 0;
    struct addr a, ia;
    out->failed = failed;
    if (jsonx_field_string(&f[F_MID], true, 998, &mid, errbuf, errlen) != 0 ||
        jsonx_field_string(&f[F_BID], true, 998, &bid, errbuf, errlen) != 0 ||
        jsonx_field_int(&f[F_EMAIL_ID], true, failed ? 0 : 1, INT64_MAX, &email_id, errbuf,
                        errlen) != 0 ||
        jsonx_field_string(&f[F_RCPT], true, 1024, &rcpt, errbuf, errlen) != 0 ||
        jsonx_field_string(&f[F_DOMAIN], true, 255, &domain, errbuf, errlen) != 0 ||
        jsonx_field_string(&f[F_CLIENT], true, 128, &client, errbuf, errlen) != 0 ||
        jsonx_field_string(&f[F_SENT_AT], !failed, 64, &sent_at, errbuf, errlen) != 0 ||
        (failed && jsonx_field_string(&f[F_REPLY], false, 1024, &reply, errbuf, errlen) != 0) ||
        jsonx_field_string(&f[F_IDENTITY], false, 1024, &ident, errbuf, errlen) != 0 ||
        jsonx_field_int(&f[F_CAMPAIGN], false, 1, INT64_MAX, &campaign, errbuf, errlen) != 0 ||
        jsonx_field_string(&f[F_VARIANT], false, EVENT_VARIANT_MAX, &variant, errbuf, errlen) != 0)
        return -1;
    if (!bracketed(mid) || !bracketed(bid)) {
        errbuf_set(errbuf, errlen, "message_id and broadcast_id must be <...@...>");
        return -1;
    }
    if (address_field("recipient", rcpt, domain, &a, errbuf, errlen) != 0)
        return -1;
    if (ident && address_field("identity", ident, NULL, &ia, errbuf, errlen) != 0)
        return -1;
    if (sent_at && parse_rfc3339_ms(sent_at, &out->sent_at_ms) != 0) {
        errbuf_set(errbuf, errlen, "sent_at is not an RFC 3339 UTC time");
        return -1;
    }
    out->email_id = email_id;
    char *p = out->block =
        xmalloc(strlen(mid) + strlen(bid) + strlen(a.norm) + strlen(a.domain) + strlen(client) +
                (reply ? strlen(reply) : 0) + (ident ? strlen(ia.norm) : 0) +
                (variant ? strlen(variant) : 0) + 8);
    out->message_id = append(&p, mid);
    out->broadcast_id = append(&p, bid);
    out->recipient = append(&p, a.norm);
    out->domain = append(&p, a.domain);
    out->smtp_client = append(&p, client);
    out->smtp_reply = reply ? append(&p, reply) : NULL;
    out->identity = ident ? append(&p, ia.norm) : NULL;
    out->campaign = campaign;
    out->variant = variant ? append(&p, variant) : NULL;
    return 0;
}

/* status_ok - an RFC 3463 status: class 2, 4 or 5, subject 1-3 digits,
 * detail 1-3 digits */
static bool status_ok(const char *s)
{
    if ((s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.')
        return false;
    s += 2;
    for (int part = 0; part < 2; part++) {
        int n = 0;
        while (n < 3 && s[n] >= '0' && s[n] <= '9')
            n++;
        if (n == 0 || s[n] != (part ? '\0' : '.'))
            return false;
        s += n + 1;
    }
    return true;
}

static int decode_feedback(const struct jsonx_field *f, bool complained,
                           struct event_email_feedback *out, char *errbuf, size_t errlen)
{
    const char *mid, *rcpt, *domain, *at, *bounce = NULL, *status = "", *diag = "", *fbtype = "";
    int64_t email_id = 0;
    struct addr a;
    out->complained = complained;
    if (jsonx_field_string(&f[F_MID], true, 998, &mid, errbuf, errlen) != 0 ||
        jsonx_field_int(&f[F_EMAIL_ID], true, 1, INT64_MAX, &email_id, errbuf, errlen) != 0 ||
        jsonx_field_string(&f[F_RCPT], true, 1024, &rcpt, errbuf, errlen) != 0 ||
        jsonx_field_string(&f[F_DOMAIN], true, 255, &domain, errbuf, errlen) != 0 ||
        jsonx_field_string(&f[F_AT], true, 64, &at, errbuf, errlen) != 0)
        return -1;
    if (complained) {
        if (jsonx_field_string(&f[F_FBTYPE], true, 64, &fbtype, errbuf, errlen) != 0)
            return -1;
        if (!*fbtype) {
            errbuf_set(errbuf, errlen, "feedback_type is empty");
            return -1;
        }
    } else {
        if (jsonx_field_string(&f[F_BOUNCE], true, 8, &bounce, errbuf, errlen) != 0 ||
            jsonx_field_string(&f[F_STATUS], true, 16, &status, errbuf, errlen) != 0 ||
            jsonx_field_string(&f[F_DIAG], false, 1024, &diag, errbuf, errlen) != 0)
            return -1;
        if (strcmp(bounce, "hard") != 0 && strcmp(bounce, "soft") != 0) {
            errbuf_set(errbuf, errlen, "bounce must be \"hard\" or \"soft\"");
            return -1;
        }
        if (!status_ok(status)) {
            errbuf_set(errbuf, errlen, "status is not an RFC 3463 status code");
            return -1;
        }
        out->soft = bounce[0] == 's';
        if (!diag)
            diag = "";
    }
    if (!bracketed(mid)) {
        errbuf_set(errbuf, errlen, "message_id must be <...@...>");
        return -1;
    }
    if (address_field("recipient", rcpt, domain, &a, errbuf, errlen) != 0)
        return -1;
    int64_t at_ms;
    if (parse_rfc3339_ms(at, &at_ms) != 0) {
        errbuf_set(errbuf, errlen, "at is not an RFC 3339 UTC time");
        return -1;
    }
    out->email_id = email_id;
    char *p = out->block = xmalloc(strlen(mid) + strlen(a.norm) + strlen(a.domain) +
                                   strlen(status) + strlen(diag) + strlen(fbtype) + strlen(at) + 7);
    out->message_id = append(&p, mid);
    out->recipient = append(&p, a.norm);
    out->domain = append(&p, a.domain);
    out->status = append(&p, status);
    out->diagnostic = append(&p, diag);
    out->feedback_type = append(&p, fbtype);
    out->at = append(&p, at);
    if (complained)
        out->status = out->diagnostic = NULL; /* email.complained has neither */
    else
        out->feedback_type = NULL;
    return 0;
}

static int decode_user_unsubscribed(const struct jsonx_field *f,
                                    struct event_user_unsubscribed *out, char *errbuf,
                                    size_t errlen)
{
    const char *email, *reason, *at;
    struct addr a;
    int64_t at_ms;
    if (jsonx_field_string(&f[F_EMAIL_ID], true, 1024, &email, errbuf, errlen) != 0 ||
        jsonx_field_string(&f[F_REASON], true, 64, &reason, errbuf, errlen) != 0 ||
        jsonx_field_string(&f[F_AT], true, 64, &at, errbuf, errlen) != 0)
        return -1;
    if (address_field("email_id", email, NULL, &a, errbuf, errlen) != 0)
        return -1;
    if (!*reason) {
        errbuf_set(errbuf, errlen, "reason is empty");
        return -1;
    }
    if (parse_rfc3339_ms(at, &at_ms) != 0) {
        errbuf_set(errbuf, errlen, "at is not an RFC 3339 UTC time");
        return -1;
    }
    char *p = out->block = xmalloc(strlen(a.norm) + strlen(reason) + strlen(at) + 3);
    out->address = append(&p, a.norm);
    out->reason = append(&p, reason);
    out->at = append(&p, at);
    return 0;
}

static int decode_placement_summary(const struct jsonx_field *f,
                                    struct event_placement_summary *out, char *errbuf,
                                    size_t errlen)
{
    static const int counts[] = {F_CHECKED, F_INBOX, F_SPAM, F_BOUNCED, F_COMPLAINED};
    int64_t *dst[] = {&out->checked, &out->inbox, &out->spam, &out->bounced, &out->complained};
    const char *ident, *provider, *at;
    struct addr a;
    int64_t at_ms;
    if (jsonx_field_string(&f[F_IDENTITY], true, 1024, &ident, errbuf, errlen) != 0 ||
        jsonx_field_string(&f[F_PROVIDER], true, 255, &provider, errbuf, errlen) != 0 ||
        jsonx_field_int(&f[F_WINDOW], true, 1, INT64_MAX, &out->window_s, errbuf, errlen) != 0 ||
        jsonx_field_string(&f[F_AT], true, 64, &at, errbuf, errlen) != 0)
        return -1;
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++)
        if (jsonx_field_int(&f[counts[i]], true, 0, INT64_MAX, dst[i], errbuf, errlen) != 0)
            return -1;
    if (address_field("identity", ident, NULL, &a, errbuf, errlen) != 0)
        return -1;
    if (parse_rfc3339_ms(at, &at_ms) != 0) {
        errbuf_set(errbuf, errlen, "at is not an RFC 3339 UTC time");
        return -1;
    }
    char *p = out->block = xmalloc(strlen(a.norm) + strlen(provider) + strlen(at) + 3);
    out->identity = append(&p, a.norm);
    out->provider = append(&p, provider);
    out->at = append(&p, at);
    return 0;
}

int event_decode(const char *text, size_t len, unsigned accept, struct event *out, char *errbuf,
                 size_t errlen)
{
    struct jsonx_field f[F_COUNT];
    struct scratch sc;
    enum event_type type = EVENT_NONE;
    int rc = -1;
    memset(out, 0, sizeof *out);
    if (!text || len == 0) {
        errbuf_set(errbuf, errlen, "empty value");
        return -1;
    }
    if (len > EVENT_MAX_BYTES) {
        errbuf_set(errbuf, errlen, "value of %zu bytes is over the %d-byte limit", len,
                   EVENT_MAX_BYTES);
        return -1;
    }
    scratch_init(&sc, len);
    if (decode_envelope(text, len, accept, f, &sc, &type, errbuf, errlen) != 0)
        goto out;
    if (type == EVENT_USER_REGISTERED)
        rc = decode_user_registered(f, &out->user_registered, errbuf, errlen);
    else if (type == EVENT_USER_UNSUBSCRIBED)
        rc = decode_user_unsubscribed(f, &out->user_unsubscribed, errbuf, errlen);
    else if (type == EVENT_PLACEMENT_SUMMARY)
        rc = decode_placement_summary(f, &out->placement, errbuf, errlen);
    else if (type == EVENT_EMAIL_BOUNCED || type == EVENT_EMAIL_COMPLAINED)
        rc = decode_feedback(f, type == EVENT_EMAIL_COMPLAINED, &out->feedback, errbuf, errlen);
    else
        rc = decode_email_sent(f, type == EVENT_EMAIL_FAILED, &out->email_sent, errbuf, errlen);
out:
    scratch_cleanup(&sc);
    if (rc == 0)
        out->type = type;
    else
        memset(out, 0, sizeof *out);
    return rc;
}

void event_cleanup(struct event *ev)
{
    switch (ev->type) {
    case EVENT_USER_REGISTERED:
        free(ev->user_registered.block);
        break;
    case EVENT_EMAIL_SENT:
    case EVENT_EMAIL_FAILED:
        free(ev->email_sent.block);
        break;
    case EVENT_EMAIL_BOUNCED:
    case EVENT_EMAIL_COMPLAINED:
        free(ev->feedback.block);
        break;
    case EVENT_USER_UNSUBSCRIBED:
        free(ev->user_unsubscribed.block);
        break;
    case EVENT_PLACEMENT_SUMMARY:
        free(ev->placement.block);
        break;
    default:
        break;
    }
    memset(ev, 0, sizeof *ev);
}
