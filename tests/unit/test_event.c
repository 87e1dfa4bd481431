/* test_event.c - the Kafka events (libshared/infra/event.c): the exact wire
 * format of each type, encode -> decode round trips, the contract's
 * examples (README.md, "Events (Kafka)"), and what decoding refuses. */
#include "event.h"
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ALL_TYPES (EVENT_ON_USER_TOPIC | EVENT_ON_EMAIL_TOPIC | EVENT_ON_FEEDBACK_TOPIC)

static const struct event_user_registered user_rows[] = {
    {.address = "alice@example.com",
     .name = "Alice",
     .domain = "example.com",
     .at = "2026-11-23T10:00:00.123Z"},
    {.address = "\"q u\"@xn--bcher-kva.example",
     .name = "J\xc3\xbcrgen \"J\" \\ </b>",
     .domain = "xn--bcher-kva.example",
     .at = "x"},
    {.address = "B\xc3\xb6"
                "b@d.test",
     .name = "\xe2\x80\xa6",
     .domain = "d.test",
     .at = "2026-01-01T00:00:00Z"},
};

static const struct event_email_sent email_rows[] = {
    {.message_id = "<email-123.9f2c00aa11bb22cc@d.com>",
     .broadcast_id = "<email-123@d.com>",
     .email_id = 123,
     .recipient = "alice@example.com",
     .domain = "example.com",
     .smtp_client = "mailpit",
     .sent_at_ms = 1795428000123},
    {.failed = true,
     .message_id = "<m1@x.test>",
     .broadcast_id = "<b1@x.test>",
     .email_id = INT64_MAX,
     .recipient = "Bob@d.test",
     .domain = "d.test",
     .smtp_client = "custom",
     .sent_at_ms = 1795428000000,
     .smtp_reply = "550 5.1.1 <bob@d.test>: \"no\" such user"},
    {.failed = true,
     .message_id = "<m2@x.test>",
     .broadcast_id = "<b1@x.test>",
     .email_id = 1,
     .recipient = "c@d.test",
     .domain = "d.test",
     .smtp_client = "x",
     .sent_at_ms = 0,
     .smtp_reply = NULL},
    {.message_id = "<m3@x.test>",
     .broadcast_id = "<b1@x.test>",
     .email_id = 7,
     .recipient = "e@d.test",
     .domain = "d.test",
     .smtp_client = "gmail",
     .sent_at_ms = 0},
};

/* the exact bytes of each type: the wire format consumers read */
static void test_wire_format(void)
{
    char *s = event_encode_user_registered(&user_rows[0]);
    CHECK_STR(s,
              "{\"v\":1,\"type\":\"user.registered\",\"email_id\":\"alice@example.com\","
              "\"name\":\"Alice\",\"domain\":\"example.com\",\"at\":\"2026-11-23T10:00:00.123Z\"}",
              "user.registered: fields and order");
    free(s);
    s = event_encode_email_sent(&email_rows[0]);
    CHECK_STR(s,
              "{\"v\":1,\"type\":\"email.sent\","
              "\"message_id\":\"<email-123.9f2c00aa11bb22cc@d.com>\","
              "\"broadcast_id\":\"<email-123@d.com>\",\"email_id\":123,"
              "\"recipient\":\"alice@example.com\",\"domain\":\"example.com\","
              "\"smtp_client\":\"mailpit\",\"sent_at\":\"2026-11-23T10:00:00.123Z\"}",
              "email.sent: fields and order");
    free(s);
    s = event_encode_email_sent(&email_rows[1]);
    CHECK_STR(s,
              "{\"v\":1,\"type\":\"email.failed\",\"message_id\":\"<m1@x.test>\","
              "\"broadcast_id\":\"<b1@x.test>\",\"email_id\":9223372036854775807,"
              "\"recipient\":\"Bob@d.test\",\"domain\":\"d.test\",\"smtp_client\":\"custom\","
              "\"sent_at\":\"2026-11-23T10:00:00.000Z\","
              "\"smtp_reply\":\"550 5.1.1 <bob@d.test>: \\\"no\\\" such user\"}",
              "email.failed: the same fields plus smtp_reply");
    free(s);
    s = event_encode_user_registered(&user_rows[1]);
    CHECK(s && strstr(s, "\"name\":\"J\xc3\xbcrgen \\\"J\\\" \\\\ </b>\""),
          "UTF-8 kept, quotes and backslashes escaped, '/' not escaped");
    free(s);
}

static int same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void test_round_trips(void)
{
    char err[256], name[96];
    for (size_t i = 0; i < sizeof user_rows / sizeof user_rows[0]; i++) {
        const struct event_user_registered *in = &user_rows[i];
        struct event ev;
        char *s = event_encode_user_registered(in);
        snprintf(name, sizeof name, "user.registered %zu decodes", i);
        CHECK_INT(event_decode(s, strlen(s), ALL_TYPES, &ev, err, sizeof err), 0, name);
        if (ev.type != EVENT_USER_REGISTERED) {
            printf("# %s\n", err);
            free(s);
            continue;
        }
        const struct event_user_registered *out = &ev.user_registered;
        snprintf(name, sizeof name, "user.registered %zu: the same fields", i);
        CHECK(same(in->address, out->address) && same(in->name, out->name) &&
                  same(in->domain, out->domain) && same(in->at, out->at),
              name);
        char *again = event_encode(&ev);
        snprintf(name, sizeof name, "user.registered %zu: encoded again, the same bytes", i);
        CHECK_STR(again, s, name);
        free(again);
        free(s);
        event_cleanup(&ev);
        CHECK(ev.type == EVENT_NONE && !ev.user_registered.block, "cleanup zeroes");
    }
    for (size_t i = 0; i < sizeof email_rows / sizeof email_rows[0]; i++) {
        const struct event_email_sent *in = &email_rows[i];
        struct event ev;
        char *s = event_encode_email_sent(in);
        snprintf(name, sizeof name, "email %zu decodes", i);
        CHECK_INT(event_decode(s, strlen(s), ALL_TYPES, &ev, err, sizeof err), 0, name);
        if (ev.type == EVENT_NONE) {
            printf("# %s\n", err);
            free(s);
            continue;
        }
        const struct event_email_sent *out = &ev.email_sent;
        snprintf(name, sizeof name, "email %zu: type", i);
        CHECK_INT(ev.type, in->failed ? EVENT_EMAIL_FAILED : EVENT_EMAIL_SENT, name);
        snprintf(name, sizeof name, "email %zu: the same fields", i);
        CHECK(out->failed == in->failed && same(out->message_id, in->message_id) &&
                  same(out->broadcast_id, in->broadcast_id) && out->email_id == in->email_id &&
                  same(out->recipient, in->recipient) && same(out->domain, in->domain) &&
                  same(out->smtp_client, in->smtp_client) && out->sent_at_ms == in->sent_at_ms &&
                  same(out->smtp_reply, in->smtp_reply),
              name);
        char *again = event_encode(&ev);
        snprintf(name, sizeof name, "email %zu: encoded again, the same bytes", i);
        CHECK_STR(again, s, name);
        free(again);
        free(s);
        event_cleanup(&ev);
    }
    struct event none = {.type = EVENT_NONE};
    CHECK(event_encode(&none) == NULL, "no type, no text");
}

/* the contract's examples (README.md, "Events (Kafka)"): a "..." time is
 * filled in where the field is checked */
static void test_contract_examples(void)
{
    char err[256];
    struct event ev;
    static const char user[] =
        "{\"v\":1,\"type\":\"user.registered\",\"email_id\":\"alice@example.com\",\"name\":"
        "\"Alice\",\"domain\":\"example.com\",\"at\":\"...\"}";
    CHECK_INT(event_decode(user, strlen(user), EVENT_ON_USER_TOPIC, &ev, err, sizeof err), 0,
              "contract: user.registered");
    CHECK_STR(ev.user_registered.address, "alice@example.com", "contract: email_id");
    CHECK_STR(ev.user_registered.name, "Alice", "contract: name");
    CHECK_STR(ev.user_registered.domain, "example.com", "contract: domain");
    CHECK_STR(ev.user_registered.at, "...", "contract: at is kept as written");
    event_cleanup(&ev);

#define CONTRACT_SENT(type, sent_at, extra)                                                        \
    "{\"v\":1,\"type\":\"" type "\",\"message_id\":\"<email-123.9f2c\xe2\x80\xa6@d.com>\","        \
    "\"broadcast_id\":\"<email-123@d.com>\",\"email_id\":123,\"recipient\":"                       \
    "\"alice@example.com\",\"domain\":\"example.com\",\"smtp_client\":\"mailpit\","                \
    "\"sent_at\":\"" sent_at "\"" extra "}"
    static const char sent[] = CONTRACT_SENT("email.sent", "2026-11-23T10:00:00.000Z", "");
    CHECK_INT(event_decode(sent, strlen(sent), EVENT_ON_EMAIL_TOPIC, &ev, err, sizeof err), 0,
              "contract: email.sent");
    CHECK_INT(ev.type, EVENT_EMAIL_SENT, "contract: email.sent type");
    CHECK_STR(ev.email_sent.message_id, "<email-123.9f2c\xe2\x80\xa6@d.com>",
              "contract: message_id");
    CHECK_STR(ev.email_sent.broadcast_id, "<email-123@d.com>", "contract: broadcast_id");
    CHECK_INT(ev.email_sent.email_id, 123, "contract: email_id");
    CHECK_STR(ev.email_sent.recipient, "alice@example.com", "contract: recipient");
    CHECK_STR(ev.email_sent.domain, "example.com", "contract: domain");
    CHECK_STR(ev.email_sent.smtp_client, "mailpit", "contract: smtp_client");
    CHECK_INT(ev.email_sent.sent_at_ms, 1795428000000, "contract: sent_at");
    CHECK(ev.email_sent.smtp_reply == NULL, "contract: no smtp_reply in email.sent");
    event_cleanup(&ev);

    static const char failed[] = CONTRACT_SENT("email.failed", "2026-11-23T10:00:00.000Z",
                                               ",\"smtp_reply\":\"550 5.1.1 no such user\"");
    CHECK_INT(event_decode(failed, strlen(failed), EVENT_ON_EMAIL_TOPIC, &ev, err, sizeof err), 0,
              "contract: email.failed");
    CHECK_INT(ev.type, EVENT_EMAIL_FAILED, "contract: email.failed type");
    CHECK(ev.email_sent.failed, "contract: failed");
    CHECK_STR(ev.email_sent.smtp_reply, "550 5.1.1 no such user", "contract: smtp_reply");
    event_cleanup(&ev);

    static const char placeholder[] = CONTRACT_SENT("email.sent", "...", "");
    CHECK_INT(
        event_decode(placeholder, strlen(placeholder), EVENT_ON_EMAIL_TOPIC, &ev, err, sizeof err),
        -1, "contract: sent_at is checked");
}

static void test_type_names(void)
{
    CHECK_STR(event_type_name(EVENT_USER_REGISTERED), "user.registered", "name of user.registered");
    CHECK_STR(event_type_name(EVENT_EMAIL_SENT), "email.sent", "name of email.sent");
    CHECK_STR(event_type_name(EVENT_EMAIL_FAILED), "email.failed", "name of email.failed");
    CHECK(event_type_name(EVENT_NONE) == NULL && event_type_name(EVENT_TYPE_COUNT) == NULL,
          "no name out of range");
    for (int t = EVENT_NONE + 1; t < EVENT_TYPE_COUNT; t++)
        CHECK_INT(event_type_parse(event_type_name((enum event_type)t)), t, "name <-> type");
    CHECK_INT(event_type_parse("email.bogus"), EVENT_NONE, "unknown name");
    CHECK_INT(event_type_parse(""), EVENT_NONE, "empty name");
}

/* decoding refuses, with a reason naming the problem */
static const struct {
    const char *name;
    const char *json;
    int ok;
    const char *err; /* substring of the error */
} user_decode_rows[] = {
    {"valid",
     "{\"v\":1,\"type\":\"user.registered\",\"email_id\":\"a@Ex.com\",\"name\":\"A\","
     "\"domain\":\"ex.com\",\"at\":\"2026-11-23T10:00:00Z\"}",
     1, NULL},
    {"extra fields are fine",
     "{\"v\":1,\"type\":\"user.registered\",\"email_id\":\"a@ex.com\","
     "\"name\":\"A\",\"domain\":\"ex.com\",\"at\":\"x\",\"new\":[1]}",
     1, NULL},
    {"bad json", "{\"v\":1,", 0, "JSON"},
    {"not an object", "[1,2]", 0, "object"},
    {"unknown version",
     "{\"v\":2,\"type\":\"user.registered\",\"email_id\":\"a@ex.com\","
     "\"name\":\"A\",\"domain\":\"ex.com\",\"at\":\"x\"}",
     0, "version"},
    {"version as string",
     "{\"v\":\"1\",\"type\":\"user.registered\",\"email_id\":\"a@ex.com\","
     "\"name\":\"A\",\"domain\":\"ex.com\",\"at\":\"x\"}",
     0, "v"},
    {"no version", "{\"type\":\"user.registered\"}", 0, "'v' is required"},
    {"no type", "{\"v\":1}", 0, "'type' is required"},
    {"wrong type",
     "{\"v\":1,\"type\":\"email.sent\",\"email_id\":\"a@ex.com\",\"name\":\"A\","
     "\"domain\":\"ex.com\",\"at\":\"x\"}",
     0, "unexpected type 'email.sent'"},
    {"missing email_id",
     "{\"v\":1,\"type\":\"user.registered\",\"name\":\"A\","
     "\"domain\":\"ex.com\",\"at\":\"x\"}",
     0, "email_id"},
    {"email_id a number",
     "{\"v\":1,\"type\":\"user.registered\",\"email_id\":5,\"name\":\"A\","
     "\"domain\":\"ex.com\",\"at\":\"x\"}",
     0, "email_id"},
    {"invalid address",
     "{\"v\":1,\"type\":\"user.registered\",\"email_id\":\"nope\","
     "\"name\":\"A\",\"domain\":\"ex.com\",\"at\":\"x\"}",
     0, "email_id is invalid"},
    {"domain mismatch",
     "{\"v\":1,\"type\":\"user.registered\",\"email_id\":\"a@ex.com\","
     "\"name\":\"A\",\"domain\":\"other.com\",\"at\":\"x\"}",
     0, "domain does not match email_id"},
    {"missing at",
     "{\"v\":1,\"type\":\"user.registered\",\"email_id\":\"a@ex.com\","
     "\"name\":\"A\",\"domain\":\"ex.com\"}",
     0, "at"},
    {"empty", "", 0, "empty"},
};

static void test_user_decode(void)
{
    char err[256];
    for (size_t i = 0; i < sizeof user_decode_rows / sizeof user_decode_rows[0]; i++) {
        struct event ev;
        err[0] = '\0';
        int rc = event_decode(user_decode_rows[i].json, strlen(user_decode_rows[i].json),
                              EVENT_ON_USER_TOPIC, &ev, err, sizeof err);
        CHECK_INT(rc == 0, user_decode_rows[i].ok, user_decode_rows[i].name);
        if (rc == 0) {
            CHECK_INT(ev.type, EVENT_USER_REGISTERED, "type");
            CHECK_STR(ev.user_registered.domain, "ex.com", "domain lower-cased");
            CHECK_STR(ev.user_registered.address, "a@ex.com", "email_id normalised");
            CHECK_STR(ev.user_registered.name, "A", "name");
            event_cleanup(&ev);
        } else {
            CHECK(strstr(err, user_decode_rows[i].err) != NULL, err);
            CHECK(ev.type == EVENT_NONE && !ev.user_registered.block, "a refused event is empty");
        }
    }
}

#define SENT_HEAD "{\"v\":1,\"type\":\"email.sent\",\"message_id\":\"<m1@x.test>\","
#define SENT_BODY                                                                                  \
    "\"broadcast_id\":\"<b1@x.test>\",\"email_id\":7,\"recipient\":\"Bob@D.test\","                \
    "\"domain\":\"d.test\",\"smtp_client\":\"custom\","
#define SENT(sent_at) SENT_HEAD SENT_BODY "\"sent_at\":\"" sent_at "\"}"

static const struct {
    const char *name;
    const char *json;
    int ok;
    const char *err;    /* substring of the error */
    int64_t sent_at_ms; /* when ok */
} email_decode_rows[] = {
    {"sent", SENT("2026-11-23T10:00:00.123Z"), 1, NULL, 1795428000123},
    {"sent, no fraction", SENT("2026-11-23T10:00:00Z"), 1, NULL, 1795428000000},
    {"sent, one fraction digit", SENT("2026-11-23T10:00:00.5Z"), 1, NULL, 1795428000500},
    {"sent, six fraction digits", SENT("2026-11-23T10:00:00.123456Z"), 1, NULL, 1795428000123},
    {"sent, +00:00", SENT("2026-11-23T10:00:00+00:00"), 1, NULL, 1795428000000},
    {"sent, leap day", SENT("2028-02-29T23:59:59.999Z"), 1, NULL, 1835481599999},
    {"sent, epoch", SENT("1970-01-01T00:00:00Z"), 1, NULL, 0},
    {"sent, other zone", SENT("2026-11-23T10:00:00+01:00"), 0, "sent_at", 0},
    {"sent, no zone", SENT("2026-11-23T10:00:00"), 0, "sent_at", 0},
    {"sent, not a time", SENT("yesterday"), 0, "sent_at", 0},
    {"sent, trailing data", SENT("2026-11-23T10:00:00Zx"), 0, "sent_at", 0},
    {"sent without sent_at", SENT_HEAD SENT_BODY "\"x\":1}", 0, "sent_at", 0},
    {"sent: smtp_reply ignored",
     SENT_HEAD SENT_BODY "\"smtp_reply\":\"250 ok\",\"sent_at\":\"2026-11-23T10:00:00Z\"}", 1, NULL,
     1795428000000},
    {"failed",
     "{\"v\":1,\"type\":\"email.failed\",\"message_id\":\"<m1@x.test>\"," SENT_BODY
     "\"smtp_reply\":\"550 no\"}",
     1, NULL, 0},
    {"failed: smtp_reply a number",
     "{\"v\":1,\"type\":\"email.failed\",\"message_id\":\"<m1@x.test>\"," SENT_BODY
     "\"smtp_reply\":550}",
     0, "smtp_reply", 0},
    {"escapes decoded, duplicate key: the last wins",
     "{\"v\":1,\"type\":\"email.sent\",\"message_id\":\"<m0@x.test>\","
     "\"message_id\":\"<m1@x.test>\",\"broadcast_id\":\"<b1@x.test>\",\"email_id\":7,"
     "\"recipient\":\"Bob@\\u0044.test\",\"domain\":\"d.test\",\"smtp_\\u0063lient\":\"custom\","
     "\"sent_at\":\"2026-11-23T10:00:00.123Z\"}",
     1, NULL, 1795428000123},
    {"message_id without brackets",
     "{\"v\":1,\"type\":\"email.sent\",\"message_id\":\"m1@x.test\"," SENT_BODY
     "\"sent_at\":\"2026-11-23T10:00:00Z\"}",
     0, "message_id", 0},
    {"email_id 0",
     SENT_HEAD
     "\"broadcast_id\":\"<b1@x.test>\",\"email_id\":0,\"recipient\":\"Bob@D.test\","
     "\"domain\":\"d.test\",\"smtp_client\":\"custom\",\"sent_at\":\"2026-11-23T10:00:00Z\"}",
     0, "email_id", 0},
    {"email_id a double",
     SENT_HEAD
     "\"broadcast_id\":\"<b1@x.test>\",\"email_id\":7.0,\"recipient\":\"Bob@D.test\","
     "\"domain\":\"d.test\",\"smtp_client\":\"custom\",\"sent_at\":\"2026-11-23T10:00:00Z\"}",
     0, "email_id", 0},
    {"domain mismatch",
     SENT_HEAD
     "\"broadcast_id\":\"<b1@x.test>\",\"email_id\":7,\"recipient\":\"Bob@D.test\","
     "\"domain\":\"e.test\",\"smtp_client\":\"custom\",\"sent_at\":\"2026-11-23T10:00:00Z\"}",
     0, "domain", 0},
    {"NUL in a string",
     SENT_HEAD "\"broadcast_id\":\"<b1@x.test>\",\"email_id\":7,\"recipient\":\"Bob@D.test\","
               "\"domain\":\"d.test\",\"smtp_client\":\"cus\\u0000tom\",\"sent_at\":\"2026-11-"
               "23T10:00:00Z\"}",
     0, "smtp_client", 0},
    {"smtp_client a number",
     SENT_HEAD "\"broadcast_id\":\"<b1@x.test>\",\"email_id\":7,\"recipient\":\"Bob@D.test\","
               "\"domain\":\"d.test\",\"smtp_client\":1,\"sent_at\":\"2026-11-23T10:00:00Z\"}",
     0, "smtp_client", 0},
    {"user event on the email topic",
     "{\"v\":1,\"type\":\"user.registered\",\"email_id\":\"a@ex.com\",\"name\":\"A\","
     "\"domain\":\"ex.com\",\"at\":\"x\"}",
     0, "unexpected type 'user.registered'", 0},
    {"unknown type", "{\"v\":1,\"type\":\"email.bogus\"}", 0, "unexpected type 'email.bogus'", 0},
    {"not an object", "\"email.sent\"", 0, "object", 0},
    {"bad json", SENT_HEAD, 0, "JSON", 0},
};

static void test_email_decode(void)
{
    char err[256];
    for (size_t i = 0; i < sizeof email_decode_rows / sizeof email_decode_rows[0]; i++) {
        struct event ev;
        err[0] = '\0';
        int rc = event_decode(email_decode_rows[i].json, strlen(email_decode_rows[i].json),
                              EVENT_ON_EMAIL_TOPIC, &ev, err, sizeof err);
        CHECK_INT(rc == 0, email_decode_rows[i].ok, email_decode_rows[i].name);
        if (rc != 0) {
            CHECK(strstr(err, email_decode_rows[i].err) != NULL, err);
            CHECK(ev.type == EVENT_NONE && !ev.email_sent.block, "a refused event is empty");
            continue;
        }
        const struct event_email_sent *e = &ev.email_sent;
        CHECK_INT(ev.type, e->failed ? EVENT_EMAIL_FAILED : EVENT_EMAIL_SENT, "type");
        CHECK_STR(e->message_id, "<m1@x.test>", "message_id");
        CHECK_STR(e->broadcast_id, "<b1@x.test>", "broadcast_id");
        CHECK_STR(e->recipient, "Bob@d.test", "recipient normalised");
        CHECK_STR(e->domain, "d.test", "domain");
        CHECK_STR(e->smtp_client, "custom", "smtp_client");
        CHECK_INT(e->email_id, 7, "email_id");
        CHECK_INT(e->sent_at_ms, email_decode_rows[i].sent_at_ms, "sent_at");
        if (e->failed)
            CHECK_STR(e->smtp_reply, "550 no", "smtp_reply");
        else
            CHECK(e->smtp_reply == NULL, "no smtp_reply");
        event_cleanup(&ev);
    }
}

/* every day from 1969 to 2101 at a few times of day: the same as strptime + timegm */
static void test_sent_at_days(void)
{
    int bad = 0, n = 0;
    for (time_t t = -86400 * 366; t < (time_t)4133980800 && bad < 5; t += 86400 + 3671) {
        struct tm tm;
        char at[64], json[512];
        gmtime_r(&t, &tm);
        strftime(at, sizeof at, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(json, sizeof json, SENT_HEAD SENT_BODY "\"sent_at\":\"%s.042Z\"}", at);
        struct event ev;
        char err[256];
        int rc = event_decode(json, strlen(json), EVENT_ON_EMAIL_TOPIC, &ev, err, sizeof err);
        if (rc != 0 || ev.email_sent.sent_at_ms != (int64_t)t * 1000 + 42) {
            bad++;
            printf("# %s: rc %d, got %lld, want %lld\n", at, rc,
                   rc ? 0LL : (long long)ev.email_sent.sent_at_ms, (long long)t * 1000 + 42);
        }
        event_cleanup(&ev);
        n++;
    }
    CHECK(bad == 0 && n > 40000, "sent_at of every day 1969-2101");
}

static void test_sizes(void)
{
    char err[256];
    struct event ev;
    /* a huge value is refused before parsing */
    static char big[EVENT_MAX_BYTES + 2];
    memset(big, ' ', sizeof big - 1);
    CHECK_INT(event_decode(big, sizeof big - 1, ALL_TYPES, &ev, err, sizeof err), -1, "huge value");
    CHECK(strstr(err, "limit") != NULL, err);
    CHECK_INT(event_decode(NULL, 0, ALL_TYPES, &ev, err, sizeof err), -1, "no value");
    CHECK(strstr(err, "empty") != NULL, err);
    /* a value over the stack scratch (1 KiB) */
    char *s, name[2100];
    memset(name, 'n', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    struct event_user_registered u = {
        .address = "a@ex.com", .name = name, .domain = "ex.com", .at = "x"};
    s = event_encode_user_registered(&u);
    CHECK_INT(event_decode(s, strlen(s), ALL_TYPES, &ev, err, sizeof err), -1,
              "a name over 1024 bytes");
    CHECK(strstr(err, "name") != NULL, err);
    free(s);
    name[1024] = '\0';
    s = event_encode_user_registered(&u);
    CHECK_INT(event_decode(s, strlen(s), ALL_TYPES, &ev, err, sizeof err), 0,
              "a name of 1024 bytes");
    CHECK_INT(strlen(ev.user_registered.name), 1024, "all of it");
    event_cleanup(&ev);
    free(s);
}

/* email.bounced and email.complained (feedback-events) */
static const struct event_email_feedback feedback_rows[] = {
    {.message_id = "<email-7.0123456789abcdef@w.test>",
     .email_id = 7,
     .recipient = "nouser@rcpt.test",
     .domain = "rcpt.test",
     .status = "5.1.1",
     .diagnostic = "X-Postfix; unknown user: \"nouser\"",
     .at = "2026-11-23T10:00:00.123Z"},
    {.message_id = "<email-8.00000000000000ff@w.test>",
     .email_id = INT64_MAX,
     .recipient = "B\xc3\xb6"
                  "b@d.test",
     .domain = "d.test",
     .soft = true,
     .status = "4.4.1",
     .diagnostic = "",
     .at = "2026-11-23T10:00:00Z"},
    {.complained = true,
     .message_id = "<m1@x.test>",
     .email_id = 1,
     .recipient = "c@d.test",
     .domain = "d.test",
     .feedback_type = "abuse",
     .at = "2026-11-23T10:00:00.000Z"},
};

static void test_feedback(void)
{
    char err[256], name[96];
    char *s = event_encode_feedback(&feedback_rows[0]);
    CHECK_STR(s,
              "{\"v\":1,\"type\":\"email.bounced\","
              "\"message_id\":\"<email-7.0123456789abcdef@w.test>\",\"email_id\":7,"
              "\"recipient\":\"nouser@rcpt.test\",\"domain\":\"rcpt.test\",\"bounce\":\"hard\","
              "\"status\":\"5.1.1\",\"diagnostic\":\"X-Postfix; unknown user: \\\"nouser\\\"\","
              "\"at\":\"2026-11-23T10:00:00.123Z\"}",
              "email.bounced: fields and order");
    free(s);
    s = event_encode_feedback(&feedback_rows[2]);
    CHECK_STR(s,
              "{\"v\":1,\"type\":\"email.complained\",\"message_id\":\"<m1@x.test>\","
              "\"email_id\":1,\"recipient\":\"c@d.test\",\"domain\":\"d.test\","
              "\"feedback_type\":\"abuse\",\"at\":\"2026-11-23T10:00:00.000Z\"}",
              "email.complained: fields and order");
    free(s);
    struct event_email_feedback nodiag = feedback_rows[0];
    nodiag.diagnostic = NULL;
    s = event_encode_feedback(&nodiag);
    CHECK(s && strstr(s, "\"diagnostic\":\"\""), "no diagnostic: written as \"\"");
    free(s);

    for (size_t i = 0; i < sizeof feedback_rows / sizeof feedback_rows[0]; i++) {
        const struct event_email_feedback *in = &feedback_rows[i];
        struct event ev;
        s = event_encode_feedback(in);
        snprintf(name, sizeof name, "feedback %zu decodes", i);
        CHECK_INT(event_decode(s, strlen(s), EVENT_ON_FEEDBACK_TOPIC, &ev, err, sizeof err), 0,
                  name);
        if (ev.type == EVENT_NONE) {
            printf("# %s\n", err);
            free(s);
            continue;
        }
        const struct event_email_feedback *out = &ev.feedback;
        snprintf(name, sizeof name, "feedback %zu: type", i);
        CHECK_INT(ev.type, in->complained ? EVENT_EMAIL_COMPLAINED : EVENT_EMAIL_BOUNCED, name);
        snprintf(name, sizeof name, "feedback %zu: the same fields", i);
        CHECK(out->complained == in->complained && same(out->message_id, in->message_id) &&
                  out->email_id == in->email_id && same(out->recipient, in->recipient) &&
                  same(out->domain, in->domain) && out->soft == in->soft &&
                  same(out->status, in->status) && same(out->diagnostic, in->diagnostic) &&
                  same(out->feedback_type, in->feedback_type) && same(out->at, in->at),
              name);
        char *again = event_encode(&ev);
        snprintf(name, sizeof name, "feedback %zu: encoded again, the same bytes", i);
        CHECK_STR(again, s, name);
        free(again);
        CHECK_INT(
            event_decode(s, strlen(s), EVENT_ON_EMAIL_TOPIC, &(struct event){0}, err, sizeof err),
            -1, "feedback events are not email-topic events");
        free(s);
        event_cleanup(&ev);
    }
}

#define BOUNCED(bounce, status, at)                                                                \
    "{\"v\":1,\"type\":\"email.bounced\",\"message_id\":\"<m1@x.test>\",\"email_id\":7,"           \
    "\"recipient\":\"Bob@D.test\",\"domain\":\"d.test\",\"bounce\":\"" bounce "\","                \
    "\"status\":\"" status "\",\"at\":\"" at "\"}"

static const struct {
    const char *name;
    const char *json;
    int ok;
    const char *err;
} feedback_decode_rows[] = {
    {"bounced, no diagnostic", BOUNCED("hard", "5.1.1", "2026-11-23T10:00:00Z"), 1, NULL},
    {"bounced, 3-digit parts", BOUNCED("soft", "4.123.999", "2026-11-23T10:00:00Z"), 1, NULL},
    {"bounce neither hard nor soft", BOUNCED("medium", "5.1.1", "2026-11-23T10:00:00Z"), 0,
     "bounce"},
    {"status class 3", BOUNCED("hard", "3.1.1", "2026-11-23T10:00:00Z"), 0, "status"},
    {"status with 4 digits", BOUNCED("hard", "5.1234.1", "2026-11-23T10:00:00Z"), 0, "status"},
    {"status truncated", BOUNCED("hard", "5.1", "2026-11-23T10:00:00Z"), 0, "status"},
    {"status trailing", BOUNCED("hard", "5.1.1 ", "2026-11-23T10:00:00Z"), 0, "status"},
    {"at not a time", BOUNCED("hard", "5.1.1", "..."), 0, "at"},
    {"complained without feedback_type",
     "{\"v\":1,\"type\":\"email.complained\",\"message_id\":\"<m1@x.test>\",\"email_id\":7,"
     "\"recipient\":\"Bob@D.test\",\"domain\":\"d.test\",\"at\":\"2026-11-23T10:00:00Z\"}",
     0, "feedback_type"},
    {"complained, domain mismatch",
     "{\"v\":1,\"type\":\"email.complained\",\"message_id\":\"<m1@x.test>\",\"email_id\":7,"
     "\"recipient\":\"Bob@D.test\",\"domain\":\"e.test\",\"feedback_type\":\"abuse\","
     "\"at\":\"2026-11-23T10:00:00Z\"}",
     0, "domain"},
    {"complained, message_id without brackets",
     "{\"v\":1,\"type\":\"email.complained\",\"message_id\":\"m1@x.test\",\"email_id\":7,"
     "\"recipient\":\"Bob@D.test\",\"domain\":\"d.test\",\"feedback_type\":\"abuse\","
     "\"at\":\"2026-11-23T10:00:00Z\"}",
     0, "message_id"},
    {"an email.sent on the feedback topic", SENT("2026-11-23T10:00:00Z"), 0,
     "unexpected type 'email.sent'"},
};

static void test_feedback_decode(void)
{
    char err[256];
    for (size_t i = 0; i < sizeof feedback_decode_rows / sizeof feedback_decode_rows[0]; i++) {
        struct event ev;
        err[0] = '\0';
        int rc = event_decode(feedback_decode_rows[i].json, strlen(feedback_decode_rows[i].json),
                              EVENT_ON_FEEDBACK_TOPIC, &ev, err, sizeof err);
        CHECK_INT(rc == 0, feedback_decode_rows[i].ok, feedback_decode_rows[i].name);
        if (rc != 0) {
            CHECK(strstr(err, feedback_decode_rows[i].err) != NULL, err);
            CHECK(ev.type == EVENT_NONE && !ev.feedback.block, "a refused event is empty");
            continue;
        }
        CHECK_STR(ev.feedback.recipient, "Bob@d.test", "recipient normalised");
        CHECK_STR(ev.feedback.diagnostic, "", "no diagnostic: \"\"");
        event_cleanup(&ev);
    }
}

/* user.unsubscribed (emailId-events): wire format, round trip, refusals */
static void test_unsubscribed(void)
{
    struct event ev;
    char err[256];
    struct event_user_unsubscribed in = {
        .address = "Bob@Example.COM", .reason = "unsubscribed", .at = "2026-12-05T10:00:00.123Z"};
    char *s = event_encode_user_unsubscribed(&in);
    CHECK_STR(s,
              "{\"v\":1,\"type\":\"user.unsubscribed\",\"email_id\":\"Bob@Example.COM\","
              "\"reason\":\"unsubscribed\",\"at\":\"2026-12-05T10:00:00.123Z\"}",
              "user.unsubscribed: the contract's fields and order");
    CHECK_INT(event_decode(s, strlen(s), EVENT_ON_USER_TOPIC, &ev, err, sizeof err), 0,
              "user.unsubscribed is a user-topic event");
    CHECK_INT(ev.type, EVENT_USER_UNSUBSCRIBED, "its type");
    CHECK_STR(ev.user_unsubscribed.address, "Bob@example.com", "email_id normalised");
    CHECK_STR(ev.user_unsubscribed.reason, "unsubscribed", "reason");
    CHECK_STR(ev.user_unsubscribed.at, "2026-12-05T10:00:00.123Z", "at as written");
    char *s2 = event_encode(&ev);
    CHECK_STR(s2,
              "{\"v\":1,\"type\":\"user.unsubscribed\",\"email_id\":\"Bob@example.com\","
              "\"reason\":\"unsubscribed\",\"at\":\"2026-12-05T10:00:00.123Z\"}",
              "decoded and encoded again (address normalised)");
    free(s2);
    event_cleanup(&ev);
    CHECK(ev.type == EVENT_NONE && !ev.user_unsubscribed.block, "cleanup zeroes");
    CHECK_INT(event_decode(s, strlen(s), EVENT_ON_EMAIL_TOPIC, &ev, err, sizeof err), -1,
              "not an email-topic event");
    CHECK_INT(event_decode(s, strlen(s), EVENT_BIT(EVENT_USER_REGISTERED), &ev, err, sizeof err),
              -1, "not a user.registered");
    free(s);
    static const struct {
        const char *name, *json, *err;
    } bad[] = {
        {"no reason",
         "{\"v\":1,\"type\":\"user.unsubscribed\",\"email_id\":\"a@b.test\",\"at\":\"2026-12-05T10:"
         "00:00Z\"}",
         "reason"},
        {"empty reason",
         "{\"v\":1,\"type\":\"user.unsubscribed\",\"email_id\":\"a@b.test\",\"reason\":\"\",\"at\":"
         "\"2026-12-05T10:00:00Z\"}",
         "reason"},
        {"bad address",
         "{\"v\":1,\"type\":\"user.unsubscribed\",\"email_id\":\"nope\",\"reason\":\"manual\","
         "\"at\":\"2026-12-05T10:00:00Z\"}",
         "email_id"},
        {"at not RFC 3339",
         "{\"v\":1,\"type\":\"user.unsubscribed\",\"email_id\":\"a@b.test\",\"reason\":\"manual\","
         "\"at\":\"yesterday\"}",
         "at"},
        {"no at",
         "{\"v\":1,\"type\":\"user.unsubscribed\",\"email_id\":\"a@b.test\",\"reason\":\"manual\"}",
         "at"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        CHECK_INT(event_decode(bad[i].json, strlen(bad[i].json), EVENT_ON_USER_TOPIC, &ev, err,
                               sizeof err),
                  -1, bad[i].name);
        CHECK(strstr(err, bad[i].err) != NULL && ev.type == EVENT_NONE, err);
    }
}

/* placement.summary (DESIGN 9.3) and email.sent's identity */
static void test_placement(void)
{
    char err[256];
    struct event ev;
    const struct event_placement_summary in = {.identity = "news@acme.test",
                                               .provider = "gmail",
                                               .window_s = 86400,
                                               .checked = 40,
                                               .inbox = 30,
                                               .spam = 8,
                                               .bounced = 1,
                                               .complained = 1,
                                               .at = "2026-12-05T10:00:00.000Z"};
    char *s = event_encode_placement_summary(&in);
    CHECK_STR(s,
              "{\"v\":1,\"type\":\"placement.summary\",\"identity\":\"news@acme.test\","
              "\"provider\":\"gmail\",\"window_s\":86400,\"checked\":40,\"inbox\":30,"
              "\"spam\":8,\"bounced\":1,\"complained\":1,\"at\":\"2026-12-05T10:00:00.000Z\"}",
              "placement.summary: the contract's fields and order");
    CHECK_INT(event_decode(s, strlen(s), EVENT_ON_FEEDBACK_TOPIC, &ev, err, sizeof err), 0,
              "placement.summary decodes on the feedback topic");
    CHECK(ev.type == EVENT_PLACEMENT_SUMMARY && same(ev.placement.identity, in.identity) &&
              same(ev.placement.provider, "gmail") && ev.placement.window_s == 86400 &&
              ev.placement.checked == 40 && ev.placement.inbox == 30 && ev.placement.spam == 8 &&
              ev.placement.bounced == 1 && ev.placement.complained == 1 &&
              same(ev.placement.at, in.at),
          "placement.summary round trip");
    event_cleanup(&ev);
    CHECK_INT(event_decode(s, strlen(s), EVENT_ON_EMAIL_TOPIC, &ev, err, sizeof err), -1,
              "placement.summary refused on the email topic");
    free(s);
    static const struct {
        const char *json, *why;
    } bad[] = {
        {"{\"v\":1,\"type\":\"placement.summary\",\"identity\":\"nobody\",\"provider\":\"g\","
         "\"window_s\":1,\"checked\":0,\"inbox\":0,\"spam\":0,\"bounced\":0,\"complained\":0,"
         "\"at\":\"2026-12-05T10:00:00Z\"}",
         "identity is invalid"},
        {"{\"v\":1,\"type\":\"placement.summary\",\"identity\":\"a@b.test\",\"provider\":\"\","
         "\"window_s\":1,\"checked\":0,\"inbox\":0,\"spam\":0,\"bounced\":0,\"complained\":0,"
         "\"at\":\"2026-12-05T10:00:00Z\"}",
         "provider"},
        {"{\"v\":1,\"type\":\"placement.summary\",\"identity\":\"a@b.test\",\"provider\":\"g\","
         "\"window_s\":0,\"checked\":0,\"inbox\":0,\"spam\":0,\"bounced\":0,\"complained\":0,"
         "\"at\":\"2026-12-05T10:00:00Z\"}",
         "window_s"},
        {"{\"v\":1,\"type\":\"placement.summary\",\"identity\":\"a@b.test\",\"provider\":\"g\","
         "\"window_s\":1,\"checked\":3,\"inbox\":-1,\"spam\":0,\"bounced\":0,\"complained\":0,"
         "\"at\":\"2026-12-05T10:00:00Z\"}",
         "inbox"},
        {"{\"v\":1,\"type\":\"placement.summary\",\"identity\":\"a@b.test\",\"provider\":\"g\","
         "\"window_s\":1,\"checked\":3,\"inbox\":0,\"spam\":0,\"bounced\":0,"
         "\"at\":\"2026-12-05T10:00:00Z\"}",
         "complained"},
        {"{\"v\":1,\"type\":\"placement.summary\",\"identity\":\"a@b.test\",\"provider\":\"g\","
         "\"window_s\":1,\"checked\":3,\"inbox\":0,\"spam\":0,\"bounced\":0,\"complained\":0,"
         "\"at\":\"yesterday\"}",
         "at is not"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char name[96];
        snprintf(name, sizeof name, "placement.summary refused: %s", bad[i].why);
        int rc = event_decode(bad[i].json, strlen(bad[i].json), EVENT_ON_FEEDBACK_TOPIC, &ev, err,
                              sizeof err);
        CHECK(rc == -1 && ev.type == EVENT_NONE && strstr(err, bad[i].why), name);
        if (rc == -1 && !strstr(err, bad[i].why))
            printf("# got: %s\n", err);
    }

    struct event_email_sent es = email_rows[0];
    es.identity = "News@Acme.test";
    s = event_encode_email_sent(&es);
    CHECK(s && strstr(s, "\"smtp_client\":\"mailpit\",\"identity\":\"News@Acme.test\","),
          "email.sent: identity after smtp_client");
    CHECK_INT(event_decode(s, strlen(s), EVENT_ON_EMAIL_TOPIC, &ev, err, sizeof err), 0,
              "email.sent with identity decodes");
    CHECK(ev.type == EVENT_EMAIL_SENT && same(ev.email_sent.identity, "News@acme.test"),
          "email.sent: identity decoded, normalised");
    event_cleanup(&ev);
    free(s);
    s = event_encode_email_sent(&email_rows[0]);
    CHECK(s && !strstr(s, "identity"), "email.sent: no identity written when there is none");
    CHECK(event_decode(s, strlen(s), EVENT_ON_EMAIL_TOPIC, &ev, err, sizeof err) == 0 &&
              ev.email_sent.identity == NULL,
          "email.sent without identity: NULL");
    event_cleanup(&ev);
    free(s);
    const char *badid = "{\"v\":1,\"type\":\"email.sent\",\"message_id\":\"<a@b.test>\","
                        "\"broadcast_id\":\"<c@b.test>\",\"email_id\":1,\"recipient\":\"r@x.test\","
                        "\"domain\":\"x.test\",\"smtp_client\":\"c\",\"identity\":\"no at sign\","
                        "\"sent_at\":\"2026-12-05T10:00:00Z\"}";
    CHECK(event_decode(badid, strlen(badid), EVENT_ON_EMAIL_TOPIC, &ev, err, sizeof err) == -1 &&
              strstr(err, "identity is invalid"),
          "email.sent: an invalid identity is refused");
}

int main(void)
{
    test_wire_format();
    test_round_trips();
    test_contract_examples();
    test_type_names();
    test_user_decode();
    test_email_decode();
    test_sent_at_days();
    test_sizes();
    test_feedback();
    test_feedback_decode();
    test_unsubscribed();
    test_placement();
    return test_done();
}
