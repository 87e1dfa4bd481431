/* fuzz_events.c - the Kafka event parser (health-service/events.c) on
 * arbitrary bytes, as a user.registered and as an email.sent /
 * email.failed value. Includes the .c to reach its date parser.
 *
 * Invariants: an accepted event has what its type promises (a normalised
 * address whose domain is the event's domain, bracketed Message-IDs, an
 * email_id >= 1); written again as JSON (json-c) it parses to the same
 * fields, sent_at through time_rfc3339_ms; events_type agrees with the
 * parser; a refused event says why and holds nothing. The fast path of
 * the date parser (canonical_datetime) agrees with strptime + timegm.
 */
#include "../../health-service/events.c"
#include "fuzz.h"
#include "jsonx.h"
#include "timeutil.h"

#include <json-c/json.h>

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

static void add_str(json_object *o, const char *k, const char *v)
{
    if (v)
        json_object_object_add(o, k, json_object_new_string(v));
}

/* text_of - o as JSON text (o is put); caller frees */
static char *text_of(json_object *o)
{
    char *s = jsonx_to_string(o);
    json_object_put(o);
    return s;
}

static void check_user(const uint8_t *data, size_t size)
{
    struct user_event ev, ev2;
    char err[256] = "", type[80];
    int rc = events_parse_user((const char *)data, size, &ev, err, sizeof err);
    events_type((const char *)data, size, type, sizeof type);
    if (rc != 0) {
        FUZZ_CHECK(err[0] && !ev.name && !ev.at, "a refused user event says why, holds nothing");
        return;
    }
    FUZZ_CHECK(strcmp(type, "user.registered") == 0, "events_type agrees");
    FUZZ_CHECK(ev.name && ev.at && ev.addr.norm[0], "the fields are there");
    json_object *o = json_object_new_object();
    json_object_object_add(o, "v", json_object_new_int(1));
    add_str(o, "type", "user.registered");
    add_str(o, "email_id", ev.addr.norm);
    add_str(o, "domain", ev.addr.domain);
    add_str(o, "name", ev.name);
    add_str(o, "at", ev.at);
    char *s = text_of(o);
    FUZZ_CHECK(events_parse_user(s, strlen(s), &ev2, err, sizeof err) == 0,
               "a user event written again parses");
    FUZZ_CHECK(strcmp(ev.addr.norm, ev2.addr.norm) == 0 && same(ev.name, ev2.name) &&
                   same(ev.at, ev2.at),
               "a user event written again is the same");
    free(s);
    events_user_cleanup(&ev);
    events_user_cleanup(&ev2);
}

static void check_copy(const uint8_t *data, size_t size)
{
    struct copy_event ev, ev2;
    char err[256] = "", type[80];
    int rc = events_parse_copy((const char *)data, size, &ev, err, sizeof err);
    events_type((const char *)data, size, type, sizeof type);
    if (rc != 0) {
        FUZZ_CHECK(err[0] && !ev.block && !ev.message_id, "a refused copy event says why");
        return;
    }
    FUZZ_CHECK(strcmp(type, ev.failed ? "email.failed" : "email.sent") == 0, "events_type agrees");
    FUZZ_CHECK(bracketed(ev.message_id) && bracketed(ev.broadcast_id), "bracketed ids");
    FUZZ_CHECK(ev.email_id >= 1, "email_id >= 1");
    struct addr a;
    FUZZ_CHECK(addr_parse(ev.recipient, &a, err, sizeof err) == 0 &&
                   strcmp(a.norm, ev.recipient) == 0 && strcmp(a.domain, ev.domain) == 0,
               "a normalised recipient in its domain");

    json_object *o = json_object_new_object();
    json_object_object_add(o, "v", json_object_new_int(1));
    add_str(o, "type", ev.failed ? "email.failed" : "email.sent");
    json_object_object_add(o, "email_id", json_object_new_int64(ev.email_id));
    add_str(o, "message_id", ev.message_id);
    add_str(o, "broadcast_id", ev.broadcast_id);
    add_str(o, "recipient", ev.recipient);
    add_str(o, "domain", ev.domain);
    add_str(o, "smtp_client", ev.smtp_client);
    add_str(o, "smtp_reply", ev.smtp_reply);
    if (!ev.failed || ev.sent_at_ms != 0) {
        char at[64];
        time_rfc3339_ms(ev.sent_at_ms, at, sizeof at);
        add_str(o, "sent_at", at);
    }
    char *s = text_of(o);
    FUZZ_CHECK(events_parse_copy(s, strlen(s), &ev2, err, sizeof err) == 0,
               "a copy event written again parses");
    FUZZ_CHECK(ev.failed == ev2.failed && ev.email_id == ev2.email_id &&
                   ev.sent_at_ms == ev2.sent_at_ms && same(ev.message_id, ev2.message_id) &&
                   same(ev.broadcast_id, ev2.broadcast_id) && same(ev.recipient, ev2.recipient) &&
                   same(ev.domain, ev2.domain) && same(ev.smtp_client, ev2.smtp_client) &&
                   same(ev.smtp_reply, ev2.smtp_reply),
               "a copy event written again is the same");
    free(s);
    events_copy_cleanup(&ev);
    events_copy_cleanup(&ev2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_datetime(data, size);
    check_user(data, size);
    check_copy(data, size);
    return 0;
}
