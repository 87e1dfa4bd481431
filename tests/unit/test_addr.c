/* test_addr.c - table-driven tests for addr_parse(): one row per address,
 * with the expected normalised form (ok) or an error substring (fail). */
#include "addr.h"
#include "test.h"

#include <stdio.h>
#include <string.h>

struct row {
    const char *in;
    int ok;
    const char *want; /* normalised address if ok, else error substring */
};

static const struct row rows[] = {
    /* plain, case handling */
    {"user@example.com", 1, "user@example.com"},
    {"User@EXAMPLE.COM", 1, "User@example.com"},
    {"MiXeD.Case@Sub.Example.ORG", 1, "MiXeD.Case@sub.example.org"},
    {"a@b.co", 1, "a@b.co"},
    {"first.last@example.co.uk", 1, "first.last@example.co.uk"},
    {"a.b.c.d@x.io", 1, "a.b.c.d@x.io"},
    {"user+tag@example.com", 1, "user+tag@example.com"},
    {"!#$%&'*+-/=?^_`{|}~@example.com", 1, "!#$%&'*+-/=?^_`{|}~@example.com"},
    {"0123456789@example.com", 1, "0123456789@example.com"},
    {"x@123.com", 1, "x@123.com"},
    {"x@a1.b2c", 1, "x@a1.b2c"},
    {"x@my-host.example.com", 1, "x@my-host.example.com"},
    {"x@a--b.com", 1, "x@a--b.com"},
    {"x@xn--bcher-kva.de", 1, "x@xn--bcher-kva.de"},
    {"x@EXAMPLE.c0m", 1, "x@example.c0m"},
    /* UTF-8 (RFC 6531 / IDN): kept as is, only ASCII lower-cased */
    {"user@b\xc3\xbc"
     "cher.de",
     1,
     "user@b\xc3\xbc"
     "cher.de"},
    {"user@B\xc3\x9c"
     "CHER.DE",
     1,
     "user@b\xc3\x9c"
     "cher.de"},
    {"j\xc3\xb6s\xc3\xa9@example.com", 1, "j\xc3\xb6s\xc3\xa9@example.com"},
    {"\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9\xbf\xe5\x91\x8a", 1,
     "\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9\xbf\xe5\x91\x8a"},
    {"emoji\xf0\x9f\x98\x80@example.com", 1, "emoji\xf0\x9f\x98\x80@example.com"},
    /* quoted local parts */
    {"\"john doe\"@Example.com", 1, "\"john doe\"@example.com"},
    {"\"a@b\"@example.com", 1, "\"a@b\"@example.com"},
    {"\"a\\\"b\"@example.com", 1, "\"a\\\"b\"@example.com"},
    {"\"a\\\\b\"@example.com", 1, "\"a\\\\b\"@example.com"},
    {"\"a\\\"<b>\"@example.com", 1, "\"a\\\"<b>\"@example.com"},
    {"\"a..b.\"@example.com", 1, "\"a..b.\"@example.com"},
    {"\"<not a name>\"@example.com", 1, "\"<not a name>\"@example.com"},
    {"\"(x),;:[]\"@example.com", 1, "\"(x),;:[]\"@example.com"},
    {"\"J\xc3\xb6rg\"@example.com", 1, "\"J\xc3\xb6rg\"@example.com"},
    {"\"\"@example.com", 0, "empty quoted"},
    {"\"abc@example.com", 0, "unterminated"},
    {"\"abc\\", 0, "invalid escape"},
    {"\"a\"b@example.com", 0, "after quoted"},
    {"\"a\".b@example.com", 0, "after quoted"},
    {"\"a\"", 0, "missing @"},
    {"\"a\tb\"@example.com", 0, "whitespace"},
    {"\"a\x01\"@example.com", 0, "control"},
    {"\"a\r\nb\"@example.com", 0, "CR/LF"},
    {"\"a\\\x01\"@example.com", 0, "control"},
    {"\"a\\\xc3\xa9\"@example.com", 0, "invalid escape"},
    /* structure */
    {"", 0, "empty address"},
    {"plainaddress", 0, "missing @"},
    {"@example.com", 0, "empty local part"},
    {"user@", 0, "missing domain"},
    {"a@@example.com", 0, "more than one @"},
    {"a@b@example.com", 0, "more than one @"},
    {"\"a\"@b@example.com", 0, "more than one @"},
    {"Bob <bob@example.com>", 0, "display name"},
    {"<bob@example.com>", 0, "display name"},
    {"\"Bob\" <bob@example.com>", 0, "display name"},
    {"bob@example.com (Bob)", 0, "comments"},
    {"a@[192.168.0.1]", 0, "domain literal"},
    {"a@[IPv6:2001:db8::1]", 0, "domain literal"},
    /* local part */
    {".a@example.com", 0, "starts with a dot"},
    {"a.@example.com", 0, "ends with a dot"},
    {"a..b@example.com", 0, "consecutive dots"},
    {"a\"b\"@example.com", 0, "quote inside"},
    {"a,b@example.com", 0, "invalid character in local part"},
    {"a;b@example.com", 0, "invalid character in local part"},
    {"a:b@example.com", 0, "invalid character in local part"},
    {"a\\b@example.com", 0, "invalid character in local part"},
    {"a[b]@example.com", 0, "invalid character in local part"},
    /* whitespace, CR/LF injection, control characters */
    {" a@example.com", 0, "whitespace"},
    {"a@example.com ", 0, "whitespace"},
    {"a b@example.com", 0, "whitespace"},
    {"a@exa mple.com", 0, "whitespace"},
    {"a\t@example.com", 0, "whitespace"},
    {"a@b.com\r\nBcc: x@y.com", 0, "CR/LF"},
    {"a@b.com\nBcc: x@y.com", 0, "CR/LF"},
    {"a@b.com\r", 0, "CR/LF"},
    {"a\r\n@b.com", 0, "CR/LF"},
    {"\r\n", 0, "CR/LF"},
    {"a\x01@example.com", 0, "control"},
    {"a@example.com\x7f", 0, "control"},
    {"a@exam\x1bple.com", 0, "control"},
    {"a\xc2\x85@example.com", 0, "control"}, /* U+0085 NEL, a C1 control */
    /* invalid UTF-8 */
    {"a\xff@example.com", 0, "invalid UTF-8"},
    {"a@b\xc3.com", 0, "invalid UTF-8"},                   /* truncated sequence */
    {"a@example.com\xc3", 0, "invalid UTF-8"},             /* truncated at the end */
    {"a\xc0\xaf@example.com", 0, "invalid UTF-8"},         /* overlong '/' */
    {"a\xe0\x80\xaf@example.com", 0, "invalid UTF-8"},     /* overlong, 3 bytes */
    {"a\xed\xa0\x80@example.com", 0, "invalid UTF-8"},     /* surrogate */
    {"a\xf4\x90\x80\x80@example.com", 0, "invalid UTF-8"}, /* > U+10FFFF */
    {"a\x80@example.com", 0, "invalid UTF-8"},             /* lone continuation */
    /* domain */
    {"a@localhost", 0, "at least two labels"},
    {"a@example.com.", 0, "trailing dot"},
    {"a@.example.com", 0, "empty label"},
    {"a@example..com", 0, "empty label"},
    {"a@-example.com", 0, "starts with a hyphen"},
    {"a@example-.com", 0, "ends with a hyphen"},
    {"a@example.-com", 0, "starts with a hyphen"},
    {"a@example.com-", 0, "ends with a hyphen"},
    {"a@exa_mple.com", 0, "invalid character in domain"},
    {"a@exa!mple.com", 0, "invalid character in domain"},
    {"a@1.2.3.4", 0, "all-numeric"},
    {"a@example.123", 0, "all-numeric"},
};

/* check_row - run one row; every row yields 2 or 3 checks */
static void check_row(const struct row *r, const char *label)
{
    struct addr a;
    char err[128], name[160];
    int rc;

    memset(&a, 'X', sizeof a);
    memset(err, 0, sizeof err);
    rc = addr_parse(r->in, &a, err, sizeof err);
    if (r->ok) {
        snprintf(name, sizeof name, "ok: %s", label);
        CHECK_INT(rc, 0, name);
        if (rc != 0)
            printf("#   error: %s\n", err);
        snprintf(name, sizeof name, "norm: %s", label);
        CHECK_STR(rc == 0 ? a.norm : NULL, r->want, name);
        const char *at = r->want ? strrchr(r->want, '@') : NULL;
        snprintf(name, sizeof name, "domain: %s", label);
        CHECK_STR(rc == 0 ? a.domain : NULL, at ? at + 1 : "(no @)", name);
    } else {
        snprintf(name, sizeof name, "fails: %s", label);
        CHECK_INT(rc, -1, name);
        snprintf(name, sizeof name, "reason '%s': %s", r->want, label);
        CHECK(strstr(err, r->want) != NULL, name);
        if (!strstr(err, r->want))
            printf("#   got reason '%s'\n", err);
        snprintf(name, sizeof name, "output cleared: %s", label);
        CHECK(a.norm[0] == '\0' && a.domain[0] == '\0', name);
    }
}

/* printable - the input with control bytes escaped, for test names */
static void printable(const char *in, char *out, size_t len)
{
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)in; *p && o + 5 < len; p++) {
        if (*p < 0x20 || *p >= 0x7f)
            o += (size_t)snprintf(out + o, len - o, "\\x%02x", *p);
        else
            out[o++] = (char)*p;
    }
    out[o] = '\0';
}

static void test_table(void)
{
    char label[120];
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        printable(rows[i].in, label, sizeof label);
        check_row(&rows[i], label);
    }
}

/* fill - n copies of c */
static void fill(char *dst, char c, size_t n)
{
    memset(dst, c, n);
    dst[n] = '\0';
}

/* test_sizes - RFC 5321 boundaries, built at run time */
static void test_sizes(void)
{
    char in[600], want[600], l1[80], l2[80], l3[80];
    struct row r;

    /* local part: 64 ok, 65 fails */
    fill(l1, 'a', 64);
    snprintf(in, sizeof in, "%s@example.com", l1);
    r = (struct row){in, 1, in};
    check_row(&r, "64-octet local part");
    fill(l1, 'a', 65);
    snprintf(in, sizeof in, "%s@example.com", l1);
    r = (struct row){in, 0, "local part too long"};
    check_row(&r, "65-octet local part");
    /* a quoted local part counts its quotes: 62 + 2 ok, 63 + 2 fails */
    fill(l1, 'q', 62);
    snprintf(in, sizeof in, "\"%s\"@example.com", l1);
    r = (struct row){in, 1, in};
    check_row(&r, "64-octet quoted local part");
    fill(l1, 'q', 63);
    snprintf(in, sizeof in, "\"%s\"@example.com", l1);
    r = (struct row){in, 0, "local part too long"};
    check_row(&r, "65-octet quoted local part");
    /* label: 63 ok, 64 fails, also as the TLD */
    fill(l1, 'B', 63);
    snprintf(in, sizeof in, "x@%s.com", l1);
    fill(l1, 'b', 63);
    snprintf(want, sizeof want, "x@%s.com", l1);
    r = (struct row){in, 1, want};
    check_row(&r, "63-char label");
    fill(l1, 'b', 64);
    snprintf(in, sizeof in, "x@%s.com", l1);
    r = (struct row){in, 0, "label too long"};
    check_row(&r, "64-char label");
    fill(l1, 'c', 64);
    snprintf(in, sizeof in, "x@example.%s", l1);
    r = (struct row){in, 0, "label too long"};
    check_row(&r, "64-char TLD");
    /* a UTF-8 label counts octets: 31 x 2-byte chars + 1 = 63 ok, + 2 = 64 fails */
    for (size_t i = 0; i < 62; i += 2) {
        l1[i] = (char)0xc3; /* U+00E9 */
        l1[i + 1] = (char)0xa9;
    }
    memcpy(l1 + 62, "x", 2);
    snprintf(in, sizeof in, "x@%s.com", l1);
    r = (struct row){in, 1, in};
    check_row(&r, "63-octet UTF-8 label");
    memcpy(l1 + 62, "xy", 3);
    snprintf(in, sizeof in, "x@%s.com", l1);
    r = (struct row){in, 0, "label too long"};
    check_row(&r, "64-octet UTF-8 label");
    /* whole address: 64 + 1 + 189 = 254 ok, 255 fails */
    fill(l1, 'a', 64);
    fill(l2, 'd', 61);
    fill(l3, 'e', 61);
    snprintf(in, sizeof in, "%s@%s.%s.%s.com", l1, l2, l2, l3);
    CHECK_INT(strlen(in), 254, "254-octet address is 254 octets");
    r = (struct row){in, 1, in};
    check_row(&r, "254-octet address");
    fill(l3, 'e', 62);
    snprintf(in, sizeof in, "%s@%s.%s.%s.com", l1, l2, l2, l3);
    CHECK_INT(strlen(in), 255, "255-octet address is 255 octets");
    r = (struct row){in, 0, "address too long"};
    check_row(&r, "255-octet address");
    /* domain over 255 octets (labels fine) */
    fill(l1, 'f', 63);
    snprintf(in, sizeof in, "a@%s.%s.%s.%s.com", l1, l1, l1, l1); /* 4*64 + 3 = 259 */
    r = (struct row){in, 0, "domain too long"};
    check_row(&r, "259-octet domain");
    /* a long local part of invalid characters still says what is wrong */
    fill(l1, ',', 70);
    snprintf(in, sizeof in, "%s@example.com", l1);
    r = (struct row){in, 0, "invalid character"};
    check_row(&r, "70 commas");
}

/* test_errbuf - errbuf is bounded by errlen and always terminated */
static void test_errbuf(void)
{
    struct addr a;
    char err[32];

    memset(err, '#', sizeof err);
    CHECK_INT(addr_parse("nope", &a, err, 8), -1, "small errbuf: fails");
    CHECK_INT(strlen(err), 7, "small errbuf: truncated to errlen - 1");
    CHECK(err[8] == '#' && err[31] == '#', "small errbuf: nothing written past errlen");
    CHECK(strncmp(err, "missing", 7) == 0, "small errbuf: truncated reason is a prefix");

    memset(err, '#', sizeof err);
    CHECK_INT(addr_parse("nope", &a, err, 1), -1, "errlen 1: fails");
    CHECK(err[0] == '\0' && err[1] == '#', "errlen 1: empty string only");

    memset(err, '#', sizeof err);
    CHECK_INT(addr_parse("nope", &a, err, 0), -1, "errlen 0: fails");
    CHECK(err[0] == '#', "errlen 0: errbuf untouched");

    CHECK_INT(addr_parse("nope", &a, NULL, 0), -1, "NULL errbuf: fails");
    CHECK_INT(addr_parse(NULL, &a, err, sizeof err), -1, "NULL input: fails");
    CHECK(strstr(err, "empty") != NULL, "NULL input: reason");
    CHECK_INT(addr_parse("a@b.com", NULL, NULL, 0), 0, "NULL out: validates only");
    CHECK_INT(addr_parse("a@b", NULL, NULL, 0), -1, "NULL out: still rejects");
}

/* test_ascii - IDNA A-labels for mail that stays ASCII */
static void test_ascii(void)
{
    static const struct {
        const char *in, *want; /* want NULL: refused */
    } ascii_rows[] = {
        {"news@example.com", "news@example.com"},
        {"news@b\xc3\xbc"
         "cher.example",
         "news@xn--bcher-kva.example"},
        {"news@B\xc3\x9c"
         "CHER.example",
         "news@xn--bcher-kva.example"}, /* mapped to lower case */
        {"news@\xe4\xbe\x8b\xe3\x81\x88.\xe3\x83\x86\xe3\x82\xb9\xe3\x83\x88",
         "news@xn--r8jz45g.xn--zckzah"},
        {"news@fa\xc3\x9f"
         ".de",
         "news@xn--fa-hia.de"}, /* non-transitional: sharp s kept */
        {"N.Ews@sub.b\xc3\xbc"
         "cher.example",
         "N.Ews@sub.xn--bcher-kva.example"},
        {"j\xc3\xb6rg@example.com", NULL},            /* local part not ASCII */
        {"a@\xe2\x98\x83\xe2\x80\x8d.example", NULL}, /* ZWJ: not valid IDNA2008 */
    };
    for (size_t i = 0; i < sizeof ascii_rows / sizeof ascii_rows[0]; i++) {
        struct addr a;
        char err[160] = "", label[120];
        printable(ascii_rows[i].in, label, sizeof label);
        int rc = addr_parse(ascii_rows[i].in, &a, err, sizeof err);
        if (rc == 0)
            rc = addr_ascii(&a, err, sizeof err);
        if (ascii_rows[i].want) {
            CHECK_STR(rc == 0 ? a.norm : err, ascii_rows[i].want, label);
            const char *at = strrchr(ascii_rows[i].want, '@');
            CHECK_STR(rc == 0 ? a.domain : err, at + 1, label);
        } else {
            CHECK(rc == -1 && err[0], label);
        }
    }
}

int main(void)
{
    test_table();
    test_sizes();
    test_errbuf();
    test_ascii();
    return test_done();
}
