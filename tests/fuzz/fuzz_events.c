/* fuzz_events.c - the Kafka event decoder (libshared/infra/event.c) on
 * arbitrary bytes, as a value of the user topic and of the email topic.
 * Includes the .c to reach its date parser.
 *
 * Invariants: an accepted event has what its type promises (a normalised
 * address whose domain is the event's domain, bracketed Message-IDs, an
 * email_id >= 1) and only a type that was asked for; its type is the
 * "type" json-c reads; encoded again it decodes to the same fields and
 * encodes to the same bytes; a refused event says why and holds nothing.
 * The fast path of the date parser (canonical_datetime) agrees with
 * strptime + timegm.
 */
#include "../../libshared/infra/event.c"
#include "fuzz.h"

static bool same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* check_datetime - canonical_datetime against the library's reading */
static void check_datetime(const uint8_t *data, size_t size)
{
    char s[32];
    size_t n = size < sizeof s - 1 ? size : sizeof s - 1;
    int64_t fast = 0;
    memcpy(s, data, n);
    s[n] = '\0';
    const char *rest = canonical_datetime(s, &fast);
    if (!rest)
        return;
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    FUZZ_CHECK(p == rest, "strptime reads as far as the fast path");
    FUZZ_CHECK((int64_t)timegm(&tm) == fast, "the fast path agrees with timegm");
}

/* type_by_json_c - the "type" of a JSON value as a json-c tree has it
 * ("" if none) */
static void type_by_json_c(const char *value, size_t len, char *out, size_t outlen)
{
    json_object *o = NULL;
    const char *t = NULL;
    char err[64];
    out[0] = '\0';
    if (value && len && len <= EVENT_MAX_BYTES &&
        jsonx_parse_object(value, len, &o, err, sizeof err) == 0 &&
        jsonx_get_string(o, "type", true, EVENT_TYPE_MAX, &t, err, sizeof err) == 0)
        snprintf(out, outlen, "%s", t);
    json_object_put(o);
}

static void check_user(const struct event_user_registered *u)
{
    struct addr a;
    char err[256];
    FUZZ_CHECK(u->address && u->name && u->domain && u->at && u->block, "the fields are there");
    FUZZ_CHECK(addr_parse(u->address, &a, err, sizeof err) == 0 &&
                   strcmp(a.norm, u->address) == 0 && strcmp(a.domain, u->domain) == 0,
               "a normalised address in its domain");
}

static void check_email(const struct event_email_sent *e)
{
    struct addr a;
    char err[256];
    FUZZ_CHECK(bracketed(e->message_id) && bracketed(e->broadcast_id), "bracketed ids");
    FUZZ_CHECK(e->email_id >= 1, "email_id >= 1");
    FUZZ_CHECK(addr_parse(e->recipient, &a, err, sizeof err) == 0 &&
                   strcmp(a.norm, e->recipient) == 0 && strcmp(a.domain, e->domain) == 0,
               "a normalised recipient in its domain");
    FUZZ_CHECK(e->failed || !e->smtp_reply, "smtp_reply only in email.failed");
}

static void check_unsub(const struct event_user_unsubscribed *u)
{
    struct addr a;
    char err[256];
    FUZZ_CHECK(addr_parse(u->address, &a, err, sizeof err) == 0 && strcmp(a.norm, u->address) == 0,
               "a normalised address");
    FUZZ_CHECK(u->reason[0] && u->at[0], "a reason and a time");
}

static bool same_event(const struct event *x, const struct event *y)
{
    if (x->type != y->type)
        return false;
    if (x->type == EVENT_USER_UNSUBSCRIBED) {
        const struct event_user_unsubscribed *a = &x->user_unsubscribed, *b = &y->user_unsubscribed;
        return same(a->address, b->address) && same(a->reason, b->reason) && same(a->at, b->at);
    }
    if (x->type == EVENT_USER_REGISTERED) {
        const struct event_user_registered *a = &x->user_registered, *b = &y->user_registered;
        return same(a->address, b->address) && same(a->name, b->name) &&
               same(a->domain, b->domain) && same(a->at, b->at);
    }
    const struct event_email_sent *a = &x->email_sent, *b = &y->email_sent;
    return a->failed == b->failed && a->email_id == b->email_id && a->sent_at_ms == b->sent_at_ms &&
           same(a->message_id, b->message_id) && same(a->broadcast_id, b->broadcast_id) &&
           same(a->recipient, b->recipient) && same(a->domain, b->domain) &&
           same(a->smtp_client, b->smtp_client) && same(a->smtp_reply, b->smtp_reply);
}

static void check_decode(const uint8_t *data, size_t size, unsigned accept, const char *type)
{
    struct event ev, ev2;
    char err[256] = "";
    int rc = event_decode((const char *)data, size, accept, &ev, err, sizeof err);
    if (rc != 0) {
        FUZZ_CHECK(err[0] && ev.type == EVENT_NONE && !ev.email_sent.block &&
                       !ev.user_registered.block,
                   "a refused event says why, holds nothing");
        return;
    }
    FUZZ_CHECK(accept & EVENT_BIT(ev.type), "a type that was asked for");
    FUZZ_CHECK(strcmp(type, event_type_name(ev.type)) == 0, "json-c reads the same type");
    if (ev.type == EVENT_USER_REGISTERED)
        check_user(&ev.user_registered);
    else if (ev.type == EVENT_USER_UNSUBSCRIBED)
        check_unsub(&ev.user_unsubscribed);
    else
        check_email(&ev.email_sent);
    char *s = event_encode(&ev);
    FUZZ_CHECK(s != NULL, "an event encodes");
    FUZZ_CHECK(event_decode(s, strlen(s), EVENT_BIT(ev.type), &ev2, err, sizeof err) == 0,
               "an event encoded again decodes");
    FUZZ_CHECK(same_event(&ev, &ev2), "an event encoded again is the same");
    char *s2 = event_encode(&ev2);
    FUZZ_CHECK(strcmp(s, s2) == 0, "encoding is stable");
    free(s);
    free(s2);
    event_cleanup(&ev);
    event_cleanup(&ev2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char type[80];
    check_datetime(data, size);
    type_by_json_c((const char *)data, size, type, sizeof type);
    check_decode(data, size, EVENT_ON_USER_TOPIC, type);
    check_decode(data, size, EVENT_ON_EMAIL_TOPIC, type);
    return 0;
}
