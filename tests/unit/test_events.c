/* test_events.c - validation of consumed events (health-service/events.c). */
#include "events.h"
#include "test.h"

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

int main(void)
{
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
