/* unsub.h - one-click unsubscribe (RFC 8058): the settings, the per-copy
 * token and the List-Unsubscribe header value.
 *
 * Token format (URL- and mailto-safe, no padding anywhere):
 *
 *     token   = b64url(payload) "." b64url(mac)
 *     payload = recipient address (as stored, normalised) NUL email id (decimal)
 *     mac     = HMAC-SHA256(UNSUBSCRIBE_SECRET, payload)   (32 bytes, 43 chars)
 *
 * b64url is RFC 4648 section 5 without "=" padding. The payload is readable
 * by anyone who holds the link (it names the address the link was sent
 * to); only the MAC makes it an order to unsubscribe: verification
 * recomputes it over the decoded payload and compares in constant time
 * (CRYPTO_memcmp), so a forged, truncated or altered token, or one made
 * with another secret, is refused without saying why.
 *
 * Header values, with {url} = PUBLIC_URL "/u/" token:
 *     List-Unsubscribe: <{url}>
 *     List-Unsubscribe: <{url}>, <mailto:{UNSUBSCRIBE_MAILTO}?subject=unsubscribe-{token}>
 *     List-Unsubscribe-Post: List-Unsubscribe=One-Click
 *
 * Threads: unsub_config_load on the main thread at start-up (it reads the
 * environment and takes the secret out of it); the struct is read-only
 * afterwards and every other function is pure, for any thread.
 */
#ifndef UNSUB_H
#define UNSUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define UNSUB_SECRET_MIN 16   /* bytes of UNSUBSCRIBE_SECRET, at least */
#define UNSUB_URL_MAX 200     /* PUBLIC_URL, at most (the header must fold) */
#define UNSUB_TOKEN_MAX 512   /* the longest token (a 254-byte address) fits */
#define UNSUB_ADDRESS_MAX 254 /* as addr.h ADDR_MAX */

struct unsub_config {
    char *public_url;      /* NULL: unsubscribe links off; no trailing '/' */
    unsigned char *secret; /* NULL when off; wiped by unsub_config_cleanup */
    size_t secret_len;
    char *mailto; /* UNSUBSCRIBE_MAILTO, ASCII address, or NULL */
};

/* unsub_config_load - PUBLIC_URL, UNSUBSCRIBE_SECRET (a secret: also
 * UNSUBSCRIBE_SECRET_FILE; never logged) and UNSUBSCRIBE_MAILTO from the
 * environment. Both of the first two or neither; 0, or -1 with one line
 * naming the variable in errbuf. Free with unsub_config_cleanup. */
int unsub_config_load(struct unsub_config *u, char *errbuf, size_t errlen);
void unsub_config_cleanup(struct unsub_config *u);
/* unsub_enabled - links are on (PUBLIC_URL and the secret set) */
bool unsub_enabled(const struct unsub_config *u);

/* unsub_check_url - 0 when url is a PUBLIC_URL: http:// or https://, a
 * host, an optional path, no query, fragment, user info, space or control
 * character, at most UNSUB_URL_MAX octets; else -1 with the reason */
int unsub_check_url(const char *url, char *errbuf, size_t errlen);

/* unsub_token - the token of (address, email_id) under key into out (NUL
 * terminated); its length, or -1 when out is too small or the address
 * longer than UNSUB_ADDRESS_MAX */
int unsub_token(const unsigned char *key, size_t keylen, const char *address, int64_t email_id,
                char *out, size_t outlen);
/* unsub_verify - 0 when token is one unsub_token made under key: the
 * address into address (addrlen >= UNSUB_ADDRESS_MAX + 1) and the email id
 * into *email_id; -1 for anything else (nothing is written then) */
int unsub_verify(const unsigned char *key, size_t keylen, const char *token, char *address,
                 size_t addrlen, int64_t *email_id);

/* unsub_header - the List-Unsubscribe value of a copy (see above); caller
 * frees. NULL when links are off. */
char *unsub_header(const struct unsub_config *u, const char *address, int64_t email_id);

/* the List-Unsubscribe-Post value (RFC 8058) */
#define UNSUB_POST_VALUE "List-Unsubscribe=One-Click"

#endif
