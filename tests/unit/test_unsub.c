/* test_unsub.c - one-click unsubscribe tokens and settings
 * (warmup-service/unsub.c): a known answer computed independently
 * (Python's hmac), round trips, every kind of forged or damaged token
 * refused, the MAC compared through CRYPTO_memcmp, PUBLIC_URL checks, the
 * settings read from the environment and the header values. */
#include "test.h"
#include "unsub.h"

#include <openssl/crypto.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const unsigned char KEY[] = "0123456789abcdef";
#define KEYLEN 16

/* this definition takes the place of libcrypto's for unsub.c (same
 * program): it counts the calls and compares in constant time as well */
static int memcmp_calls;
static size_t memcmp_len;
int CRYPTO_memcmp(const void *a, const void *b, size_t len)
{
    const volatile unsigned char *x = a, *y = b;
    unsigned char d = 0;
    memcmp_calls++;
    memcmp_len = len;
    for (size_t i = 0; i < len; i++)
        d |= x[i] ^ y[i];
    return d;
}

static void test_known_answer(void)
{
    char tok[UNSUB_TOKEN_MAX + 1], addr[UNSUB_ADDRESS_MAX + 1];
    int64_t id = 0;
    /* python3: base64url(b"a@b.test\0" b"7") "." base64url(hmac.new(key, that, sha256)) */
    int n = unsub_token(KEY, KEYLEN, "a@b.test", 7, tok, sizeof tok);
    CHECK_STR(tok, "YUBiLnRlc3QANw.dVlqAAFPVuYAmWlWS-WQtl-YBEWRO7sEqtdrOJxsYPM",
              "known answer (Python hmac/base64)");
    CHECK_INT(n, (int)strlen(tok), "length returned");
    memcmp_calls = 0;
    CHECK_INT(unsub_verify(KEY, KEYLEN, tok, addr, sizeof addr, &id), 0, "verifies");
    CHECK_STR(addr, "a@b.test", "address back");
    CHECK_INT(id, 7, "email id back");
    CHECK(memcmp_calls == 1 && memcmp_len == 32, "the MAC is compared with CRYPTO_memcmp");
}

static void test_round_trips(void)
{
    static char longest[UNSUB_ADDRESS_MAX + 1];
    memset(longest, 'x', 64);
    longest[64] = '@';
    for (int i = 65; i < UNSUB_ADDRESS_MAX; i++)
        longest[i] = (i % 60 == 0) ? '.' : 'd';
    memcpy(longest + UNSUB_ADDRESS_MAX - 5, ".test", 6);
    static const struct {
        const char *address;
        int64_t id;
    } rows[] = {
        {"alice@example.com", 1},
        {"Mixed.Case+tag@Example.com", 42},
        {"j\xc3\xb6rg@b\xc3\xbc"
         "cher.example",
         123456789},
        {"\"quoted local\"@x.test", INT64_MAX},
        {NULL, 9},
    };
    char tok[UNSUB_TOKEN_MAX + 1], addr[UNSUB_ADDRESS_MAX + 1], name[96];
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const char *a = rows[i].address ? rows[i].address : longest;
        int64_t id = 0;
        snprintf(name, sizeof name, "round trip %zu", i);
        CHECK(unsub_token(KEY, KEYLEN, a, rows[i].id, tok, sizeof tok) > 0, name);
        CHECK(strspn(tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.") ==
                      strlen(tok) &&
                  strchr(tok, '.') == strrchr(tok, '.'),
              "URL-safe alphabet, one dot, no padding");
        CHECK_INT(unsub_verify(KEY, KEYLEN, tok, addr, sizeof addr, &id), 0, name);
        CHECK(strcmp(addr, a) == 0 && id == rows[i].id, "the same address and id");
    }
    CHECK(strlen(longest) == UNSUB_ADDRESS_MAX, "the longest address");
    CHECK(unsub_token(KEY, KEYLEN, longest, INT64_MAX, tok, sizeof tok) <= UNSUB_TOKEN_MAX,
          "the longest token fits UNSUB_TOKEN_MAX");
    CHECK_INT(unsub_token(KEY, KEYLEN, "a@b.test", 0, tok, sizeof tok), -1, "email id 0 refused");
    CHECK_INT(unsub_token(KEY, KEYLEN, "", 1, tok, sizeof tok), -1, "empty address refused");
    CHECK_INT(unsub_token(KEY, KEYLEN, "a@b.test", 1, tok, 20), -1, "small buffer refused");
}

static void test_forged(void)
{
    char good[UNSUB_TOKEN_MAX + 1], other[UNSUB_TOKEN_MAX + 1], t[2 * UNSUB_TOKEN_MAX];
    char addr[UNSUB_ADDRESS_MAX + 1] = "untouched";
    int64_t id = -5;
    unsub_token(KEY, KEYLEN, "alice@example.com", 7, good, sizeof good);
    unsub_token(KEY, KEYLEN, "mallory@example.com", 7, other, sizeof other);
    size_t n = strlen(good), dot = (size_t)(strchr(good, '.') - good);
    const unsigned char other_key[] = "fedcba9876543210";
    char tok2[UNSUB_TOKEN_MAX + 1];
    unsub_token(other_key, KEYLEN, "alice@example.com", 7, tok2, sizeof tok2);
    CHECK_INT(unsub_verify(KEY, KEYLEN, tok2, addr, sizeof addr, &id), -1,
              "a token made with another secret");
    CHECK_INT(unsub_verify(other_key, KEYLEN, good, addr, sizeof addr, &id), -1,
              "checked with another secret");

    /* each damaged form, built from the good token */
    memcpy(t, good, n + 1);
    t[2] = t[2] == 'A' ? 'B' : 'A';
    CHECK_INT(unsub_verify(KEY, KEYLEN, t, addr, sizeof addr, &id), -1, "a payload byte changed");
    memcpy(t, good, n + 1);
    t[n - 3] = t[n - 3] == 'A' ? 'B' : 'A';
    CHECK_INT(unsub_verify(KEY, KEYLEN, t, addr, sizeof addr, &id), -1, "a MAC byte changed");
    memcpy(t, good, n + 1);
    t[n - 1] = '\0';
    CHECK_INT(unsub_verify(KEY, KEYLEN, t, addr, sizeof addr, &id), -1, "truncated by one");
    memcpy(t, good, n + 1);
    t[n - 4] = '\0';
    CHECK_INT(unsub_verify(KEY, KEYLEN, t, addr, sizeof addr, &id), -1, "truncated MAC");
    memcpy(t, good, dot + 1);
    t[dot + 1] = '\0';
    CHECK_INT(unsub_verify(KEY, KEYLEN, t, addr, sizeof addr, &id), -1, "no MAC");
    memcpy(t, good, dot);
    t[dot] = '\0';
    CHECK_INT(unsub_verify(KEY, KEYLEN, t, addr, sizeof addr, &id), -1, "payload only, no dot");
    CHECK_INT(unsub_verify(KEY, KEYLEN, good + dot, addr, sizeof addr, &id), -1, "MAC only");
    /* mallory's payload with alice's MAC */
    size_t odot = (size_t)(strchr(other, '.') - other);
    snprintf(t, sizeof t, "%.*s%s", (int)odot, other, good + dot);
    CHECK_INT(unsub_verify(KEY, KEYLEN, t, addr, sizeof addr, &id), -1,
              "another payload with a valid MAC");
    snprintf(t, sizeof t, "%s=", good);
    CHECK_INT(unsub_verify(KEY, KEYLEN, t, addr, sizeof addr, &id), -1, "padding added");
    snprintf(t, sizeof t, "%s.", good);
    CHECK_INT(unsub_verify(KEY, KEYLEN, t, addr, sizeof addr, &id), -1, "a second dot");
    memcpy(t, good, n + 1);
    t[1] = '+';
    CHECK_INT(unsub_verify(KEY, KEYLEN, t, addr, sizeof addr, &id), -1, "standard base64 '+'");
    /* the MAC's last character carries 2 unused bits: another value of
     * them is the same MAC in a non-canonical spelling */
    memcpy(t, good, n + 1);
    const char *alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    int v = (int)(strchr(alpha, t[n - 1]) - alpha);
    t[n - 1] = alpha[v ^ 1];
    CHECK_INT(unsub_verify(KEY, KEYLEN, t, addr, sizeof addr, &id), -1,
              "non-canonical base64 (unused bits set)");
    memset(t, 'A', UNSUB_TOKEN_MAX + 10);
    t[100] = '.';
    t[UNSUB_TOKEN_MAX + 10] = '\0';
    CHECK_INT(unsub_verify(KEY, KEYLEN, t, addr, sizeof addr, &id), -1, "overlong");
    CHECK_INT(unsub_verify(KEY, KEYLEN, "", addr, sizeof addr, &id), -1, "empty");
    CHECK_INT(unsub_verify(KEY, KEYLEN, ".", addr, sizeof addr, &id), -1, "a dot");
    CHECK_INT(unsub_verify(NULL, 0, good, addr, sizeof addr, &id), -1, "no key");
    CHECK(strcmp(addr, "untouched") == 0 && id == -5, "nothing written on refusal");
    char small[8];
    CHECK_INT(unsub_verify(KEY, KEYLEN, good, small, sizeof small, &id), -1,
              "address buffer too small");
}

static void test_urls(void)
{
    static const struct {
        const char *url;
        int ok;
    } rows[] = {
        {"https://mail.acme.com", 1},
        {"https://mail.acme.com/", 1},
        {"http://127.0.0.1:8080", 1},
        {"https://acme.com/mail/unsub", 1},
        {"HTTPS://Mail.Acme.com", 1},
        {"https://[::1]:8443", 1},
        {"ftp://acme.com", 0},
        {"mail.acme.com", 0},
        {"https://", 0},
        {"https:///path", 0},
        {"https://acme.com/?x=1", 0},
        {"https://acme.com/#top", 0},
        {"https://acme.com\r\nX-Injected: 1", 0},
        {"https://acme.com/a b", 0},
        {"https://user@acme.com", 0},
        {"https://acme.com:/", 0},
        {"https://acme.com:80x", 0},
        {"https://ac_me.com", 0},
        {"https://acme.com/\xc3\xa9", 0},
        {"https://acme.com/<x>", 0},
    };
    char err[160];
    char name[160];
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        snprintf(name, sizeof name, "url %zu %s", i, rows[i].ok ? "accepted" : "refused");
        CHECK_INT(unsub_check_url(rows[i].url, err, sizeof err) == 0, rows[i].ok, name);
    }
    char longurl[UNSUB_URL_MAX + 20] = "https://acme.com/";
    memset(longurl + 17, 'p', UNSUB_URL_MAX);
    longurl[UNSUB_URL_MAX + 1] = '\0';
    CHECK_INT(unsub_check_url(longurl, err, sizeof err), -1, "over UNSUB_URL_MAX");
}

static void clear_env(void)
{
    unsetenv("PUBLIC_URL");
    unsetenv("UNSUBSCRIBE_SECRET");
    unsetenv("UNSUBSCRIBE_SECRET_FILE");
    unsetenv("UNSUBSCRIBE_MAILTO");
}

/* load - set the three variables (NULL: unset) and load; the result */
static int load(struct unsub_config *u, const char *url, const char *secret, const char *mailto,
                char *err, size_t errlen)
{
    clear_env();
    if (url)
        setenv("PUBLIC_URL", url, 1);
    if (secret)
        setenv("UNSUBSCRIBE_SECRET", secret, 1);
    if (mailto)
        setenv("UNSUBSCRIBE_MAILTO", mailto, 1);
    err[0] = '\0';
    return unsub_config_load(u, err, errlen);
}

static void test_config(void)
{
    struct unsub_config u;
    char err[256];
    const char *secret = "s3cret-s3cret-s3cret";
    CHECK_INT(load(&u, NULL, NULL, NULL, err, sizeof err), 0, "nothing set: off");
    CHECK(!unsub_enabled(&u) && !unsub_header(&u, "a@b.test", 1), "off: no header");
    unsub_config_cleanup(&u);

    CHECK_INT(load(&u, "https://mail.acme.com", NULL, NULL, err, sizeof err), -1,
              "PUBLIC_URL without the secret");
    CHECK(strstr(err, "UNSUBSCRIBE_SECRET") && strstr(err, "need both"), err);
    CHECK_INT(load(&u, NULL, secret, NULL, err, sizeof err), -1, "the secret without PUBLIC_URL");
    CHECK(strstr(err, "PUBLIC_URL") && !strstr(err, secret), "names PUBLIC_URL, not the secret");
    CHECK_INT(load(&u, "https://mail.acme.com", "tiny9", NULL, err, sizeof err), -1,
              "a secret under 16 bytes");
    CHECK(strstr(err, "16") && !strstr(err, "tiny9"), "says 16 bytes, not the secret");
    CHECK_INT(load(&u, "https://mail.acme.com/?a=b", secret, NULL, err, sizeof err), -1,
              "PUBLIC_URL with a query");
    CHECK(strstr(err, "PUBLIC_URL") != NULL, err);
    CHECK_INT(load(&u, NULL, NULL, "unsub@acme.com", err, sizeof err), -1,
              "UNSUBSCRIBE_MAILTO alone");
    CHECK_INT(load(&u, "https://mail.acme.com", secret, "not an address", err, sizeof err), -1,
              "UNSUBSCRIBE_MAILTO not an address");
    CHECK_INT(load(&u, "https://mail.acme.com", secret, "a?b=c@acme.com", err, sizeof err), -1,
              "UNSUBSCRIBE_MAILTO with a URI special");

    CHECK_INT(load(&u, "https://mail.acme.com/", secret, NULL, err, sizeof err), 0, "on");
    CHECK(getenv("UNSUBSCRIBE_SECRET") == NULL, "the secret left the environment");
    CHECK(unsub_enabled(&u), "enabled");
    CHECK_STR(u.public_url, "https://mail.acme.com", "trailing / dropped");
    char tok[UNSUB_TOKEN_MAX + 1];
    unsub_token((const unsigned char *)secret, strlen(secret), "a@b.test", 7, tok, sizeof tok);
    char *h = unsub_header(&u, "a@b.test", 7);
    char want[2048];
    snprintf(want, sizeof want, "<https://mail.acme.com/u/%s>", tok);
    CHECK_STR(h, want, "List-Unsubscribe: the https link");
    free(h);
    unsub_config_cleanup(&u);

    CHECK_INT(load(&u, "https://mail.acme.com", secret, "Unsub@ACME.com", err, sizeof err), 0,
              "with a mailto");
    h = unsub_header(&u, "a@b.test", 7);
    snprintf(want, sizeof want,
             "<https://mail.acme.com/u/%s>, <mailto:Unsub@acme.com?subject=unsubscribe-%s>", tok,
             tok);
    CHECK_STR(h, want, "List-Unsubscribe: the link and the mailto");
    free(h);
    unsub_config_cleanup(&u);
    CHECK(!u.secret && !u.public_url, "cleanup clears");
    clear_env();
}

int main(void)
{
    test_known_answer();
    test_round_trips();
    test_forged();
    test_urls();
    test_config();
    return test_done();
}
