/* test_events.c - a consumed value into the health store's record
 * (health-service/events.c): the topic's types only, every field moved.
 * The wire format itself is tested by test_event.c. */
#include "events.h"
#include "test.h"

#include <stdio.h>
#include <stdlib.h>

#define USER                                                                                       \
    "{\"v\":1,\"type\":\"user.registered\",\"email_id\":\"a@Ex.com\",\"name\":\"A\","              \
    "\"domain\":\"ex.com\",\"at\":\"2026-11-23T10:00:00Z\"}"
#define COPY_BODY                                                                                  \
    "\"message_id\":\"<m1@x.test>\",\"broadcast_id\":\"<b1@x.test>\",\"email_id\":7,"              \
    "\"recipient\":\"Bob@D.test\",\"domain\":\"d.test\",\"smtp_client\":\"custom\","
#define SENT                                                                                       \
    "{\"v\":1,\"type\":\"email.sent\"," COPY_BODY "\"sent_at\":\"2026-11-23T10:00:00.123Z\"}"
#define FAILED "{\"v\":1,\"type\":\"email.failed\"," COPY_BODY "\"smtp_reply\":\"550 no\"}"

static void test_user(void)
{
    struct user_event ev;
    char err[256];
    CHECK_INT(events_parse_user(USER, strlen(USER), &ev, err, sizeof err), 0, "user.registered");
    CHECK_STR(ev.addr.norm, "a@ex.com", "address normalised");
    CHECK_STR(ev.addr.domain, "ex.com", "domain");
    CHECK_STR(ev.name, "A", "name");
    CHECK_STR(ev.at, "2026-11-23T10:00:00Z", "at");
    events_user_cleanup(&ev);
    CHECK(!ev.block && !ev.name && !ev.at, "cleanup clears");
    events_user_cleanup(&ev); /* twice is harmless */

    CHECK_INT(events_parse_user(SENT, strlen(SENT), &ev, err, sizeof err), -1,
              "a copy event on the user topic");
    CHECK(strstr(err, "unexpected type 'email.sent'") != NULL, err);
    CHECK(!ev.block && !ev.name, "a refused event holds nothing");
    static const char unsub[] = "{\"v\":1,\"type\":\"user.unsubscribed\",\"email_id\":\"a@ex.com\","
                                "\"reason\":\"unsubscribed\",\"at\":\"2026-12-05T10:00:00Z\"}";
    CHECK_INT(events_parse_user(unsub, strlen(unsub), &ev, err, sizeof err), 1,
              "user.unsubscribed: valid, skipped (1), not invalid");
    CHECK(!ev.block && !ev.name, "a skipped event holds nothing");
    static char big[EVENT_MAX_BYTES + 2];
    memset(big, ' ', sizeof big - 1);
    CHECK_INT(events_parse_user(big, sizeof big - 1, &ev, err, sizeof err), -1, "huge value");
}

static void test_copy(void)
{
    struct copy_event ev;
    char err[256];
    CHECK_INT(events_parse_copy(SENT, strlen(SENT), &ev, err, sizeof err), 0, "email.sent");
    CHECK(!ev.failed, "sent");
    CHECK_STR(ev.message_id, "<m1@x.test>", "message_id");
    CHECK_STR(ev.broadcast_id, "<b1@x.test>", "broadcast_id");
    CHECK_STR(ev.recipient, "Bob@d.test", "recipient normalised");
    CHECK_STR(ev.domain, "d.test", "domain");
    CHECK_STR(ev.smtp_client, "custom", "smtp_client");
    CHECK_INT(ev.email_id, 7, "email_id");
    CHECK_INT(ev.sent_at_ms, 1795428000123, "sent_at");
    CHECK(ev.smtp_reply == NULL, "no smtp_reply");
    CHECK(!ev.keyed && ev.key == 0 && ev.seq == 0, "not keyed yet");
    events_copy_cleanup(&ev);
    CHECK(!ev.block && !ev.message_id, "cleanup clears");

    CHECK_INT(events_parse_copy(FAILED, strlen(FAILED), &ev, err, sizeof err), 0, "email.failed");
    CHECK(ev.failed, "failed");
    CHECK_STR(ev.smtp_reply, "550 no", "smtp_reply");
    CHECK_INT(ev.sent_at_ms, 0, "no sent_at");
    events_copy_cleanup(&ev);

    CHECK_INT(events_parse_copy(USER, strlen(USER), &ev, err, sizeof err), -1,
              "a user event on the email topic");
    CHECK(strstr(err, "unexpected type 'user.registered'") != NULL, err);
    CHECK(!ev.block && !ev.message_id, "a refused event holds nothing");
}

int main(void)
{
    test_user();
    test_copy();
    return test_done();
}
