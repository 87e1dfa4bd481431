/* unsub.c - unsubscribe settings, tokens and header values (unsub.h).
 * Main thread for the settings; the rest is pure. */
#include "unsub.h"
#include "addr.h"
#include "config.h"
#include "errbuf.h"
#include "xalloc.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAC_LEN 32
/* address NUL up to 19 digits */
#define PAYLOAD_MAX (UNSUB_ADDRESS_MAX + 1 + 20)

static const char b64url_chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* b64url_encode - n bytes of in as unpadded base64url into out (room for
 * 4 * ceil(n / 3) + 1); the length written */
static size_t b64url_encode(const unsigned char *in, size_t n, char *out)
{
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
        out[o++] = b64url_chars[v >> 18 & 63];
        out[o++] = b64url_chars[v >> 12 & 63];
        out[o++] = b64url_chars[v >> 6 & 63];
        out[o++] = b64url_chars[v & 63];
    }
    if (n - i == 1) {
        unsigned v = (unsigned)in[i] << 16;
        out[o++] = b64url_chars[v >> 18 & 63];
        out[o++] = b64url_chars[v >> 12 & 63];
    } else if (n - i == 2) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8;
        out[o++] = b64url_chars[v >> 18 & 63];
        out[o++] = b64url_chars[v >> 12 & 63];
        out[o++] = b64url_chars[v >> 6 & 63];
    }
    out[o] = '\0';
    return o;
}

static int b64url_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

/* b64url_decode - the canonical unpadded base64url text s[0..n) into out
 * (max bytes); the byte count, or -1 for any other text (a character out
 * of the alphabet, a length of 1 mod 4, unused bits set) */
static int b64url_decode(const char *s, size_t n, unsigned char *out, size_t max)
{
    if (n % 4 == 1 || n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0) > max)
        return -1;
    size_t o = 0;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64url_value(s[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6 | (unsigned)v) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    if (bits && (acc & ((1u << bits) - 1)) != 0)
        return -1; /* not the canonical form */
    return (int)o;
}

/* payload - address NUL email id into p; its length, -1 if it does not fit */
static int payload(const char *address, int64_t email_id, unsigned char *p)
{
    size_t alen = strlen(address);
    if (alen == 0 || alen > UNSUB_ADDRESS_MAX || email_id < 1)
        return -1;
    memcpy(p, address, alen);
    p[alen] = '\0';
    int n = snprintf((char *)p + alen + 1, 21, "%lld", (long long)email_id);
    return (int)alen + 1 + n;
}

int unsub_token(const unsigned char *key, size_t keylen, const char *address, int64_t email_id,
                char *out, size_t outlen)
{
    unsigned char p[PAYLOAD_MAX + 1], mac[MAC_LEN];
    unsigned maclen = 0;
    int n = payload(address, email_id, p);
    if (n < 0 || outlen < ((size_t)n + 2) / 3 * 4 + 1 + (MAC_LEN + 2) / 3 * 4 + 1)
        return -1;
    if (!HMAC(EVP_sha256(), key, (int)keylen, p, (size_t)n, mac, &maclen) || maclen != MAC_LEN)
        return -1;
    size_t o = b64url_encode(p, (size_t)n, out);
    out[o++] = '.';
    o += b64url_encode(mac, MAC_LEN, out + o);
    return (int)o;
}

int unsub_verify(const unsigned char *key, size_t keylen, const char *token, char *address,
                 size_t addrlen, int64_t *email_id)
{
    unsigned char p[PAYLOAD_MAX + 1], mac[MAC_LEN], want[MAC_LEN];
    unsigned wantlen = 0;
    if (!key || !token)
        return -1;
    size_t tlen = strnlen(token, UNSUB_TOKEN_MAX + 1);
    const char *dot = memchr(token, '.', tlen);
    if (tlen > UNSUB_TOKEN_MAX || !dot)
        return -1;
    int n = b64url_decode(token, (size_t)(dot - token), p, PAYLOAD_MAX);
    const char *m = dot + 1;
    if (n < 3 || b64url_decode(m, tlen - (size_t)(m - token), mac, sizeof mac) != MAC_LEN)
        return -1;
    if (!HMAC(EVP_sha256(), key, (int)keylen, p, (size_t)n, want, &wantlen) || wantlen != MAC_LEN ||
        CRYPTO_memcmp(mac, want, MAC_LEN) != 0)
        return -1;
    /* authentic: made by unsub_token, so well formed; checked all the same */
    p[n] = '\0';
    size_t alen = strnlen((const char *)p, (size_t)n);
    if (alen == 0 || alen + 1 >= (size_t)n || alen >= addrlen)
        return -1;
    const char *digits = (const char *)p + alen + 1;
    char *end;
    long long id = strtoll(digits, &end, 10);
    if (*end || id < 1 || digits[0] < '1' || digits[0] > '9')
        return -1;
    memcpy(address, p, alen + 1);
    *email_id = id;
    return 0;
}

int unsub_check_url(const char *url, char *errbuf, size_t errlen)
{
    size_t n = strlen(url);
    const char *host;
    if (strncasecmp(url, "https://", 8) == 0)
        host = url + 8;
    else if (strncasecmp(url, "http://", 7) == 0)
        host = url + 7;
    else {
        errbuf_set(errbuf, errlen, "must start with https:// (or http://)");
        return -1;
    }
    if (n > UNSUB_URL_MAX) {
        errbuf_set(errbuf, errlen, "longer than %d bytes", UNSUB_URL_MAX);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)url[i];
        if (c <= 0x20 || c >= 0x7f || c == '<' || c == '>' || c == '"' || c == '\\') {
            errbuf_set(errbuf, errlen,
                       "a space, control, non-ASCII or <>\"\\ character at byte %zu", i);
            return -1;
        }
        if (c == '?' || c == '#') {
            errbuf_set(errbuf, errlen, "must not have a query or fragment");
            return -1;
        }
    }
    size_t hlen = strcspn(host, "/");
    if (hlen == 0 || memchr(host, '@', hlen)) {
        errbuf_set(errbuf, errlen, "needs a host (and no user info)");
        return -1;
    }
    /* a host name or IPv4 (letters, digits, '.', '-'), or an [IPv6]; then :port */
    size_t name = host[0] == '[' ? strcspn(host, "]") + 1
                                 : strspn(host, "abcdefghijklmnopqrstuvwxyz"
                                                "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-");
    if (name == 0 || name > hlen ||
        (name < hlen &&
         (host[name] != ':' || strspn(host + name + 1, "0123456789") != hlen - name - 1 ||
          hlen - name - 1 == 0))) {
        errbuf_set(errbuf, errlen,
                   "the host must be a name, an IPv4 or [IPv6] address, "
                   "with an optional :port");
        return -1;
    }
    return 0;
}

int unsub_config_load(struct unsub_config *u, char *errbuf, size_t errlen)
{
    char why[160];
    char *secret = NULL;
    memset(u, 0, sizeof *u);
    if (config_get_str("PUBLIC_URL", NULL, &u->public_url, errbuf, errlen) != 0 ||
        config_get_secret("UNSUBSCRIBE_SECRET", &secret, errbuf, errlen) != 0 ||
        config_get_str("UNSUBSCRIBE_MAILTO", NULL, &u->mailto, errbuf, errlen) != 0)
        goto bad;
    if (u->public_url && unsub_check_url(u->public_url, why, sizeof why) != 0) {
        errbuf_set(errbuf, errlen, "PUBLIC_URL: %s", why);
        goto bad;
    }
    if (!u->public_url != !secret) {
        errbuf_set(errbuf, errlen, "%s is set but %s is not: unsubscribe links need both",
                   secret ? "UNSUBSCRIBE_SECRET" : "PUBLIC_URL",
                   secret ? "PUBLIC_URL" : "UNSUBSCRIBE_SECRET");
        goto bad;
    }
    if (secret && strlen(secret) < UNSUB_SECRET_MIN) {
        errbuf_set(errbuf, errlen, "UNSUBSCRIBE_SECRET: shorter than %d bytes", UNSUB_SECRET_MIN);
        goto bad;
    }
    if (u->mailto) {
        struct addr a;
        if (!u->public_url) {
            errbuf_set(errbuf, errlen,
                       "UNSUBSCRIBE_MAILTO: needs PUBLIC_URL and UNSUBSCRIBE_SECRET");
            goto bad;
        }
        if (addr_parse(u->mailto, &a, why, sizeof why) != 0 ||
            addr_ascii(&a, why, sizeof why) != 0) {
            errbuf_set(errbuf, errlen, "UNSUBSCRIBE_MAILTO: not a valid ASCII address: %s", why);
            goto bad;
        }
        /* written raw into a mailto: URI: no character that needs escaping there */
        if (strspn(a.norm, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-_+@") !=
            strlen(a.norm)) {
            errbuf_set(errbuf, errlen,
                       "UNSUBSCRIBE_MAILTO: only letters, digits and . - _ + are allowed");
            goto bad;
        }
        free(u->mailto);
        u->mailto = xstrdup(a.norm);
    }
    if (u->public_url) {
        size_t n = strlen(u->public_url);
        while (n > 0 && u->public_url[n - 1] == '/')
            u->public_url[--n] = '\0';
        u->secret_len = strlen(secret);
        u->secret = (unsigned char *)secret;
    }
    return 0;
bad:
    if (secret)
        OPENSSL_cleanse(secret, strlen(secret));
    free(secret);
    unsub_config_cleanup(u);
    return -1;
}

void unsub_config_cleanup(struct unsub_config *u)
{
    if (u->secret)
        OPENSSL_cleanse(u->secret, u->secret_len);
    free(u->secret);
    free(u->public_url);
    free(u->mailto);
    memset(u, 0, sizeof *u);
}

bool unsub_enabled(const struct unsub_config *u)
{
    return u && u->public_url && u->secret;
}

char *unsub_header(const struct unsub_config *u, const char *address, int64_t email_id)
{
    char tok[UNSUB_TOKEN_MAX + 1];
    if (!unsub_enabled(u) ||
        unsub_token(u->secret, u->secret_len, address, email_id, tok, sizeof tok) < 0)
        return NULL;
    if (u->mailto)
        return xasprintf("<%s/u/%s>, <mailto:%s?subject=unsubscribe-%s>", u->public_url, tok,
                         u->mailto, tok);
    return xasprintf("<%s/u/%s>", u->public_url, tok);
}
