/* test_buf.c - buf, utf8, xalloc string helpers, token compare, loopback. */
#include "buf.h"
#include "httpd.h"
#include "test.h"
#include "timeutil.h"
#include "utf8.h"
#include "xalloc.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* test_trim - a buffer that held a large message does not keep it */
static void test_trim(void)
{
    struct buf b;
    buf_init(&b, 1 << 20);
    buf_append(&b, "small", 5);
    char *small = b.data;
    buf_trim(&b, 4096);
    CHECK(b.len == 0 && b.data == small && buf_str(&b)[0] == '\0',
          "trim keeps a small buffer's memory");
    buf_reserve(&b, 500000);
    buf_append(&b, "large", 5);
    buf_trim(&b, 4096);
    CHECK(b.len == 0 && b.data == NULL && b.alloc == 0, "trim frees a large buffer");
    CHECK_INT(buf_append(&b, "again", 5), 0, "and it is usable again");
    CHECK_STR(buf_str(&b), "again", "contents after trim");
    buf_cleanup(&b);
}

static void test_buf(void)
{
    struct buf b;
    buf_init(&b, 10);
    CHECK_STR(buf_str(&b), "", "empty buffer reads as empty string");
    CHECK_INT(buf_append(&b, "hello", 5), 0, "append within cap");
    CHECK_INT(buf_printf(&b, "%d", 1234), 0, "printf within cap");
    CHECK_STR(buf_str(&b), "hello1234", "contents");
    CHECK_INT(buf_append(&b, "xy", 2), -1, "append over cap fails");
    CHECK_INT(b.len, 0, "failed append empties the buffer");
    CHECK(b.data == NULL, "failed append frees the memory");
    CHECK_INT(buf_append(&b, "0123456789", 10), 0, "exactly the cap fits");
    char *s = buf_steal(&b);
    CHECK_STR(s, "0123456789", "steal hands over the string");
    CHECK_INT(b.len, 0, "steal empties");
    free(s);
    buf_cleanup(&b);

    buf_init(&b, 100);
    buf_reserve(&b, 50);
    CHECK(b.alloc >= 51 && b.len == 0, "reserve makes room for 50 octets and their NUL");
    CHECK_STR(buf_str(&b), "", "a reserved buffer reads as empty");
    char *before = b.data;
    for (int i = 0; i < 10; i++)
        buf_append(&b, "01234", 5);
    CHECK(b.data == before && b.len == 50, "appends within the reservation do not move it");
    buf_reserve(&b, 1000);
    CHECK_INT((long long)b.alloc, 101, "reserve stops at the cap");
    CHECK_STR(buf_str(&b), "01234012340123401234012340123401234012340123401234",
              "reserve keeps the contents");
    CHECK_INT(buf_append(&b, "x", 51), -1, "the cap still holds after a reserve");
    buf_cleanup(&b);
}

/* time_ref - what time_rfc3339[_ms] wrote with snprintf */
static void time_ref(int64_t ms, char *out, size_t len, int with_ms)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    if (with_ms)
        snprintf(out, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
    else
        snprintf(out, len, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static void test_time(void)
{
    char got[40], want[80];
    time_rfc3339_ms(0, got, sizeof got);
    CHECK_STR(got, "1970-01-01T00:00:00.000Z", "epoch with ms");
    time_rfc3339_ms(1795433852007, got, sizeof got);
    CHECK_STR(got, "2026-11-23T11:37:32.007Z", "a time with 7 ms");
    time_rfc3339(1795433852999, got, sizeof got);
    CHECK_STR(got, "2026-11-23T11:37:32Z", "seconds only: the ms are dropped");
    time_rfc3339_ms(253402300799999, got, sizeof got);
    CHECK_STR(got, "9999-12-31T23:59:59.999Z", "the last ms of year 9999");
    time_rfc3339_ms(253402300800000, got, sizeof got);
    CHECK_STR(got, "10000-01-01T00:00:00.000Z", "year 10000 as snprintf wrote it");
    time_rfc3339_ms(1795433852007, got, 11);
    CHECK_STR(got, "2026-11-23", "a short buffer gets what fits, terminated");
    got[0] = 'x';
    time_rfc3339(1795433852007, got, 0);
    CHECK(got[0] == 'x', "a zero-length buffer is not written");
    /* digit by digit = snprintf over the years, in every field */
    uint64_t x = 88172645463325252u;
    int bad = 0;
    for (int i = 0; i < 100000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        int64_t ms = (int64_t)(x % 253402300800000u);
        for (int w = 0; w < 2; w++) {
            (w ? time_rfc3339_ms : time_rfc3339)(ms, got, sizeof got);
            time_ref(ms, want, sizeof want, w);
            if (strcmp(got, want) != 0 && bad++ < 3)
                fprintf(stderr, "time %lld: got %s want %s\n", (long long)ms, got, want);
        }
    }
    CHECK_INT(bad, 0, "RFC 3339 text = snprintf's for 100000 random times");
}

static void test_utf8(void)
{
    static const struct {
        const char *s;
        int valid;
    } rows[] = {
        {"plain ascii", 1},
        {"caf\xc3\xa9", 1},
        {"\xe2\x82\xac euro", 1},
        {"\xf0\x9f\x98\x80", 1},
        {"\xc3", 0},             /* truncated */
        {"\xc0\xaf", 0},         /* overlong */
        {"\xed\xa0\x80", 0},     /* surrogate */
        {"\xf4\x90\x80\x80", 0}, /* > U+10FFFF */
        {"\xff", 0},
        {"\x80", 0},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        CHECK_INT(utf8_valid(rows[i].s, strlen(rows[i].s)), rows[i].valid, rows[i].s);
    /* utf8_check passes ASCII 8 bytes at a time: the first bad byte is
     * found wherever it sits in or after a word, and a sequence that
     * crosses a word boundary is taken whole */
    bool offsets_ok = true;
    for (size_t at = 0; at < 24; at++) {
        char t[32];
        memset(t, 'a', sizeof t);
        t[at] = '\xff';
        if (utf8_check(t, sizeof t) != at)
            offsets_ok = false;
        memset(t, 'a', sizeof t);
        memcpy(t + at, "\xe2\x82\xac", 3); /* valid, across the boundary at some at */
        t[at + 5] = '\x80';                /* a continuation byte alone */
        if (utf8_check(t, sizeof t) != at + 5 || utf8_check(t, at + 2) != at)
            offsets_ok = false;
    }
    CHECK(offsets_ok, "utf8_check: the offset of the first bad byte, at every position");
    CHECK(utf8_has_ctl("a\r\nb", 4), "CRLF is a control character");
    CHECK(utf8_has_ctl("a\tb", 3), "TAB is a control character");
    CHECK(!utf8_has_ctl("caf\xc3\xa9", 5), "UTF-8 is not a control character");
}

static void test_strings(void)
{
    char small[4];
    CHECK_INT(strlcpy_ok(small, "abc", sizeof small), 0, "strlcpy_ok fits");
    CHECK_INT(strlcpy_ok(small, "abcd", sizeof small), -1, "strlcpy_ok reports truncation");
    CHECK_STR(small, "abc", "truncated copy is terminated");
    char *s = xasprintf("%s-%d", "x", 42);
    CHECK_STR(s, "x-42", "xasprintf");
    free(s);
}

static void test_token(void)
{
    CHECK(http_token_equal("s3cret-token", "s3cret-token"), "equal tokens");
    CHECK(!http_token_equal("s3cret-token", "s3cret-tokem"), "one byte differs");
    CHECK(!http_token_equal("s3cret-token", "s3cret"), "prefix is not equal");
    CHECK(!http_token_equal("", "x"), "empty vs non-empty");
    CHECK(http_is_loopback("127.0.0.1"), "127.0.0.1 is loopback");
    CHECK(http_is_loopback("127.3.2.1"), "127/8 is loopback");
    CHECK(http_is_loopback("::1"), "::1 is loopback");
    CHECK(!http_is_loopback("0.0.0.0"), "0.0.0.0 is not loopback");
    CHECK(!http_is_loopback("::"), ":: is not loopback");
    CHECK(!http_is_loopback("10.0.0.1"), "10.0.0.1 is not loopback");
    CHECK(!http_is_loopback("localhost"), "names are not addresses");
}

int main(void)
{
    test_buf();
    test_trim();
    test_utf8();
    test_time();
    test_strings();
    test_token();
    return test_done();
}
