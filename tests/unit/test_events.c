/* test_events.c - validation of consumed events (health-service/events.c). */
#include "events.h"
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static const struct {
    const char *name;
    const char *json;
    int ok;
    const char *err; /* substring of the error */
} rows[] = {
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
    {"wrong type",
     "{\"v\":1,\"type\":\"email.sent\",\"email_id\":\"a@ex.com\",\"name\":\"A\","
     "\"domain\":\"ex.com\",\"at\":\"x\"}",
     0, "type"},
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
     0, "email_id"},
    {"domain mismatch",
     "{\"v\":1,\"type\":\"user.registered\",\"email_id\":\"a@ex.com\","
     "\"name\":\"A\",\"domain\":\"other.com\",\"at\":\"x\"}",
     0, "domain"},
    {"missing at",
     "{\"v\":1,\"type\":\"user.registered\",\"email_id\":\"a@ex.com\","
     "\"name\":\"A\",\"domain\":\"ex.com\"}",
     0, "at"},
    {"empty", "", 0, "empty"},
};

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
} copy_rows[] = {
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
    {"failed",
     "{\"v\":1,\"type\":\"email.failed\",\"message_id\":\"<m1@x.test>\"," SENT_BODY
     "\"smtp_reply\":\"550 no\"}",
     1, NULL, 0},
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
     0, "type", 0},
    {"not an object", "\"email.sent\"", 0, "object", 0},
    {"bad json", SENT_HEAD, 0, "JSON", 0},
};

static void test_copies(void)
{
    char err[256];
    for (size_t i = 0; i < sizeof copy_rows / sizeof copy_rows[0]; i++) {
        struct copy_event ev;
        err[0] = '\0';
        int rc =
            events_parse_copy(copy_rows[i].json, strlen(copy_rows[i].json), &ev, err, sizeof err);
        CHECK_INT(rc == 0, copy_rows[i].ok, copy_rows[i].name);
        if (rc != 0) {
            CHECK(strstr(err, copy_rows[i].err) != NULL, err);
            continue;
        }
        CHECK_STR(ev.message_id, "<m1@x.test>", "message_id");
        CHECK_STR(ev.broadcast_id, "<b1@x.test>", "broadcast_id");
        CHECK_STR(ev.recipient, "Bob@d.test", "recipient normalised");
        CHECK_STR(ev.domain, "d.test", "domain");
        CHECK_STR(ev.smtp_client, "custom", "smtp_client");
        CHECK_INT(ev.email_id, 7, "email_id");
        CHECK_INT(ev.sent_at_ms, copy_rows[i].sent_at_ms, "sent_at");
        if (ev.failed)
            CHECK_STR(ev.smtp_reply, "550 no", "smtp_reply");
        else
            CHECK(ev.smtp_reply == NULL, "no smtp_reply");
        events_copy_cleanup(&ev);
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
        struct copy_event ev;
        char err[256];
        int rc = events_parse_copy(json, strlen(json), &ev, err, sizeof err);
        if (rc != 0 || ev.sent_at_ms != (int64_t)t * 1000 + 42) {
            bad++;
            printf("# %s: rc %d, got %lld, want %lld\n", at, rc,
                   rc ? 0LL : (long long)ev.sent_at_ms, (long long)t * 1000 + 42);
        }
        if (rc == 0)
            events_copy_cleanup(&ev);
        n++;
    }
    CHECK(bad == 0 && n > 40000, "sent_at of every day 1969-2101");
}

int main(void)
{
    test_copies();
    test_sent_at_days();
    char err[256];
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct user_event ev;
        err[0] = '\0';
        int rc = events_parse_user(rows[i].json, strlen(rows[i].json), &ev, err, sizeof err);
        CHECK_INT(rc == 0, rows[i].ok, rows[i].name);
        if (rc == 0) {
            CHECK_STR(ev.addr.domain, "ex.com", "domain lower-cased");
            events_user_cleanup(&ev);
        } else if (rows[i].err) {
            CHECK(strstr(err, rows[i].err) != NULL, err);
        }
    }
    /* a huge value is refused before parsing */
    static char big[EVENT_MAX_BYTES + 2];
    memset(big, ' ', sizeof big - 1);
    struct user_event ev;
    CHECK_INT(events_parse_user(big, sizeof big - 1, &ev, err, sizeof err), -1, "huge value");
    return test_done();
}
