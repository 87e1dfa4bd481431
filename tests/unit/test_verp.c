/* test_verp.c - VERP tokens and bounce addresses (libshared/infra/verp.c):
 * round trips, and tables of what each function must refuse. */
#include "test.h"
#include "verp.h"

#include <stdint.h>

#define HEX "9f2c00ab12cd34ef"

static void test_token(void)
{
    char tok[VERP_TOKEN_MAX];
    CHECK_INT(verp_token_from_message_id("<email-123." HEX "@d.example>", tok, sizeof tok), 0,
              "token of a copy's Message-ID");
    CHECK_STR(tok, "123." HEX, "token is {id}.{hex}");
    CHECK_INT(verp_token_from_message_id("<email-9223372036854775807." HEX "@d.example>", tok,
                                         sizeof tok),
              0, "largest email id fits VERP_TOKEN_MAX");
    CHECK_STR(tok, "9223372036854775807." HEX, "largest token");

    static const char *bad[] = {
        "<email-123@d.example>",                   /* the broadcast id: no copy */
        "email-123." HEX "@d.example",             /* no brackets */
        "<email-123." HEX "@d.example",            /* no closing bracket */
        "<email-123." HEX "@>",                    /* no domain */
        "<email-123." HEX ">",                     /* no @ */
        "<email-0123." HEX "@d.example>",          /* leading zero */
        "<email-123.9F2C00AB12CD34EF@d.example>",  /* upper-case hex */
        "<email-123.9f2c00ab12cd34e@d.example>",   /* 15 hex */
        "<email-123.9f2c00ab12cd34efa@d.example>", /* 17 hex */
        "<mail-123." HEX "@d.example>",            /* wrong prefix */
        "<email-123." HEX "@d.ex\r\nample>",       /* CR LF */
        "<email-9223372036854775808." HEX "@d.x>", /* id overflow */
        "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char name[160];
        snprintf(name, sizeof name, "token refused: bad[%zu]", i);
        CHECK_INT(verp_token_from_message_id(bad[i], tok, sizeof tok), -1, name);
    }
    CHECK_INT(verp_token_from_message_id(NULL, tok, sizeof tok), -1, "NULL message id refused");
    char small[8];
    CHECK_INT(verp_token_from_message_id("<email-123." HEX "@d.example>", small, sizeof small), -1,
              "token buffer too small refused");
}

static void test_address(void)
{
    char out[300];
    CHECK_INT(verp_address("123." HEX, "bounce.example", out, sizeof out), 0, "address built");
    CHECK_STR(out, "bounces+123." HEX "@bounce.example", "address is bounces+{token}@{domain}");

    static const struct {
        const char *tok, *dom;
    } bad[] = {
        {"123", "b.example"},              /* no hex */
        {"123." HEX "x", "b.example"},     /* trailing garbage */
        {"x123." HEX, "b.example"},        /* garbage first */
        {"123." HEX, ""},                  /* empty domain */
        {"123." HEX, "b.exa mple"},        /* space */
        {"123." HEX, "b.example\r\nX: y"}, /* header injection */
        {"123." HEX, "b@example"},         /* @ in the domain */
        {"-5." HEX, "b.example"},          /* sign */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char name[160];
        snprintf(name, sizeof name, "address refused: bad[%zu]", i);
        CHECK_INT(verp_address(bad[i].tok, bad[i].dom, out, sizeof out), -1, name);
    }
    char small[20];
    CHECK_INT(verp_address("123." HEX, "bounce.example", small, sizeof small), -1,
              "address buffer too small refused");
}

static void test_parse(void)
{
    int64_t id = 0;
    char hex[VERP_HEX_LEN + 1] = "";
    CHECK_INT(verp_parse("bounces+123." HEX "@bounce.example", "bounce.example", &id, hex), 0,
              "parse accepts its own address");
    CHECK_INT(id, 123, "email id");
    CHECK_STR(hex, HEX, "hex");
    CHECK_INT(verp_parse("bounces+7." HEX "@Bounce.EXAMPLE", "bounce.example", &id, hex), 0,
              "domain compared without case");
    CHECK_INT(id, 7, "email id 7");
    CHECK_INT(verp_parse("bounces+42." HEX "@any.example", NULL, &id, hex), 0,
              "NULL bounce domain: any domain");
    CHECK_INT(id, 42, "email id 42");
    CHECK_INT(verp_parse("bounces+9223372036854775807." HEX "@b.example", NULL, &id, hex), 0,
              "INT64_MAX accepted");
    CHECK(id == INT64_MAX, "INT64_MAX parsed");

    /* round trip through every function */
    char tok[VERP_TOKEN_MAX], addr[300], msgid[300];
    CHECK_INT(verp_token_from_message_id("<email-555." HEX "@m.example>", tok, sizeof tok), 0,
              "round trip: token");
    CHECK_INT(verp_address(tok, "b.example", addr, sizeof addr), 0, "round trip: address");
    CHECK_INT(verp_parse(addr, "b.example", &id, hex), 0, "round trip: parse");
    CHECK_INT(verp_message_id(id, hex, "m.example", msgid, sizeof msgid), 0,
              "round trip: message id");
    CHECK_STR(msgid, "<email-555." HEX "@m.example>", "round trip gives the Message-ID back");

    static const char *bad[] = {
        /* wrong prefix */
        "bounce+123." HEX "@b.example",
        "Bounces+123." HEX "@b.example",
        "xbounces+123." HEX "@b.example",
        "bounces-123." HEX "@b.example",
        "bounces123." HEX "@b.example",
        "<bounces+123." HEX "@b.example>",
        "alice@b.example",
        /* bad hex */
        "bounces+123.9f2c00ab12cd34eg@b.example",
        "bounces+123.9f2c00ab12cd34e-@b.example",
        "bounces+123.9f2c 0ab12cd34ef@b.example",
        /* upper-case hex */
        "bounces+123.9F2C00AB12CD34EF@b.example",
        "bounces+123.9f2c00ab12cd34eF@b.example",
        /* wrong length */
        "bounces+123.9f2c00ab12cd34e@b.example",
        "bounces+123.9f2c00ab12cd34ef0@b.example",
        "bounces+123.@b.example",
        "bounces+123@b.example",
        "bounces+." HEX "@b.example",
        /* bad email id */
        "bounces+0." HEX "@b.example",
        "bounces+0123." HEX "@b.example",
        "bounces+-1." HEX "@b.example",
        "bounces++1." HEX "@b.example",
        "bounces+9223372036854775808." HEX "@b.example",  /* INT64_MAX + 1 */
        "bounces+18446744073709551616." HEX "@b.example", /* 2^64 */
        "bounces+99999999999999999999999." HEX "@b.example",
        /* missing domain */
        "bounces+123." HEX,
        "bounces+123." HEX "@",
        /* another domain */
        "bounces+123." HEX "@other.example",
        "bounces+123." HEX "@b.example.evil",
        "bounces+123." HEX "@xb.example",
        "bounces+123." HEX "@b.example.",
        /* CR / LF and other controls */
        "bounces+123." HEX "@b.example\r\n",
        "bounces+123." HEX "\r\n@b.example",
        "bounces+123\n." HEX "@b.example",
        "bounces+123." HEX "@b.exa\tmple",
        "bounces+123." HEX "@b.example ",
        "bounces+123." HEX "@b@b.example",
        "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char name[200];
        snprintf(name, sizeof name, "parse refused: bad[%zu]", i);
        id = -1;
        CHECK_INT(verp_parse(bad[i], "b.example", &id, hex), -1, name);
        CHECK_INT(id, -1, "refusal leaves email_id alone");
    }
    /* without a bounce domain the syntax rules still hold */
    CHECK_INT(verp_parse("bounces+123." HEX "@", NULL, &id, hex), -1, "NULL domain: empty refused");
    CHECK_INT(verp_parse("bounces+123." HEX "@a\r\nb", NULL, &id, hex), -1,
              "NULL domain: CR LF refused");
    CHECK_INT(verp_parse("bounces+123.9F2C00AB12CD34EF@a.example", NULL, &id, hex), -1,
              "NULL domain: upper-case hex refused");
    CHECK_INT(verp_parse(NULL, NULL, &id, hex), -1, "NULL address refused");

    CHECK_INT(verp_message_id(0, HEX, "m.example", msgid, sizeof msgid), -1,
              "message id: email id 0 refused");
    CHECK_INT(verp_message_id(1, "9F2C00AB12CD34EF", "m.example", msgid, sizeof msgid), -1,
              "message id: upper-case hex refused");
    CHECK_INT(verp_message_id(1, HEX, "m.ex>ample", msgid, sizeof msgid), -1,
              "message id: '>' in the domain refused");
}

int main(void)
{
    test_token();
    test_address();
    test_parse();
    return test_done();
}
