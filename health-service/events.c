/* events.c - event validation for the consumer. Fields are picked from the
 * JSON text (jsonx_object_fields) without a json-c tree; a parsed copy
 * event holds its strings in one allocation. */
#include "events.h"
#include "jsonx.h"
#include "xalloc.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* the members of both event types (email_id is a string in user.registered,
 * an integer in email.*) */
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
    F_COUNT
};
static const char *const field_keys[F_COUNT] = {
    "v",          "type",         "email_id",  "domain",      "name",    "at",
    "message_id", "broadcast_id", "recipient", "smtp_client", "sent_at", "smtp_reply",
};

/* a parsed event's text: unescaped strings are written here (on the stack
 * for the usual small event) */
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

/* parse_envelope - what every event shares: a non-empty value within the
 * size limit, a JSON object, "v": 1 and a "type" string (*type points
 * into sc). The members in f, or -1 with errbuf. */
static int parse_envelope(const char *value, size_t len, struct jsonx_field *f, struct scratch *sc,
                          const char **type, char *errbuf, size_t errlen)
{
    int64_t v = 0;
    for (int i = 0; i < F_COUNT; i++)
        f[i] = (struct jsonx_field){.key = field_keys[i]};
    if (!value || len == 0) {
        snprintf(errbuf, errlen, "empty value");
        return -1;
    }
    if (len > EVENT_MAX_BYTES) {
        snprintf(errbuf, errlen, "value of %zu bytes is over the %d-byte limit", len,
                 EVENT_MAX_BYTES);
        return -1;
    }
    if (jsonx_object_fields(value, len, f, F_COUNT, sc->buf, sc->cap, errbuf, errlen) != 0)
        return -1;
    if (jsonx_field_int(&f[F_V], true, 0, INT32_MAX, &v, errbuf, errlen) != 0)
        return -1;
    if (v != 1) {
        snprintf(errbuf, errlen, "unknown schema version %lld", (long long)v);
        return -1;
    }
    return jsonx_field_string(&f[F_TYPE], true, 64, type, errbuf, errlen);
}

int events_parse_user(const char *value, size_t len, struct user_event *out, char *errbuf,
                      size_t errlen)
{
    struct jsonx_field f[F_COUNT];
    struct scratch sc;
    const char *type, *email, *name, *domain, *at;
    char why[160];
    int rc = -1;
    memset(out, 0, sizeof *out);
    scratch_init(&sc, len);
    if (parse_envelope(value, len, f, &sc, &type, errbuf, errlen) != 0)
        goto out;
    if (strcmp(type, "user.registered") != 0) {
        snprintf(errbuf, errlen, "unexpected type '%.64s'", type);
        goto out;
    }
    if (jsonx_field_string(&f[F_EMAIL_ID], true, 1024, &email, errbuf, errlen) != 0 ||
        jsonx_field_string(&f[F_NAME], true, 1024, &name, errbuf, errlen) != 0 ||
        jsonx_field_string(&f[F_DOMAIN], true, 255, &domain, errbuf, errlen) != 0 ||
        jsonx_field_string(&f[F_AT], true, 64, &at, errbuf, errlen) != 0)
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
    scratch_cleanup(&sc);
    return rc;
}

void events_user_cleanup(struct user_event *ev)
{
    free(ev->name);
    free(ev->at);
    ev->name = ev->at = NULL;
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

/* append - a copy of str at *p; returns it */
static char *append(char **p, const char *str)
{
    size_t n = strlen(str) + 1;
    char *at = memcpy(*p, str, n);
    *p += n;
    return at;
}

int events_parse_copy(const char *value, size_t len, struct copy_event *out, char *errbuf,
                      size_t errlen)
{
    struct jsonx_field f[F_COUNT];
    struct scratch sc;
    const char *type, *mid, *bid, *rcpt, *domain, *client, *sent_at, *reply = NULL;
    int64_t email_id = 0;
    char why[160];
    struct addr a;
    int rc = -1;
    memset(out, 0, sizeof *out);
    scratch_init(&sc, len);
    if (parse_envelope(value, len, f, &sc, &type, errbuf, errlen) != 0)
        goto out;
    if (strcmp(type, "email.sent") != 0 && strcmp(type, "email.failed") != 0) {
        snprintf(errbuf, errlen, "unexpected type '%.64s'", type);
        goto out;
    }
    out->failed = strcmp(type, "email.failed") == 0;
    if (jsonx_field_string(&f[F_MID], true, 998, &mid, errbuf, errlen) != 0 ||
        jsonx_field_string(&f[F_BID], true, 998, &bid, errbuf, errlen) != 0 ||
        jsonx_field_int(&f[F_EMAIL_ID], true, 1, INT64_MAX, &email_id, errbuf, errlen) != 0 ||
        jsonx_field_string(&f[F_RCPT], true, 1024, &rcpt, errbuf, errlen) != 0 ||
        jsonx_field_string(&f[F_DOMAIN], true, 255, &domain, errbuf, errlen) != 0 ||
        jsonx_field_string(&f[F_CLIENT], true, 128, &client, errbuf, errlen) != 0 ||
        jsonx_field_string(&f[F_SENT_AT], !out->failed, 64, &sent_at, errbuf, errlen) != 0 ||
        (out->failed && jsonx_field_string(&f[F_REPLY], false, 1024, &reply, errbuf, errlen) != 0))
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
    /* one allocation for all the strings */
    char *p = out->block = xmalloc(strlen(mid) + strlen(bid) + strlen(a.norm) + strlen(a.domain) +
                                   strlen(client) + (reply ? strlen(reply) : 0) + 6);
    out->message_id = append(&p, mid);
    out->broadcast_id = append(&p, bid);
    out->recipient = append(&p, a.norm);
    out->domain = append(&p, a.domain);
    out->smtp_client = append(&p, client);
    out->smtp_reply = reply ? append(&p, reply) : NULL;
    rc = 0;
out:
    scratch_cleanup(&sc);
    return rc;
}

void events_copy_cleanup(struct copy_event *ev)
{
    free(ev->block);
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
