/* addr.h - email address parsing and validation (RFC 5321/5322 subset).
 *
 * Accepts local@domain where local is a dot-atom or a quoted string and
 * domain is a host name of at least two labels. Sizes per RFC 5321: local
 * part <= 64 octets, domain <= 255, each label <= 63, whole address <= 254.
 * Octets >= 0x80 (UTF-8, RFC 6531 / IDN) are accepted in the local part
 * and in labels and left as they are (no punycode conversion). No
 * comments, no display names, no domain literals ([1.2.3.4]), no control
 * characters, no whitespace outside quotes. The domain is lower-cased
 * (ASCII only); the local part keeps its case. Pure, thread-safe.
 */
#ifndef ADDR_H
#define ADDR_H

#include <stddef.h>

#define ADDR_MAX 254
#define ADDR_LOCAL_MAX 64
#define ADDR_DOMAIN_MAX 255

struct addr {
    char norm[ADDR_MAX + 1];          /* local@domain, domain lower-cased */
    char domain[ADDR_DOMAIN_MAX + 1]; /* lower-cased domain */
};

/* addr_parse - 0 and *out filled, or -1 with a short human reason in
 * errbuf ("missing @", "local part too long", ...) */
int addr_parse(const char *in, struct addr *out, char *errbuf, size_t errlen);
/* addr_ascii - rewrite a parsed address for mail that must stay ASCII (no
 * SMTPUTF8): the domain becomes its IDNA2008 A-label form (bücher.example
 * -> xn--bcher-kva.example, UTS #46 non-transitional mapping); -1 with a
 * reason when the local part is not ASCII or the domain is not valid IDNA.
 * *a is unchanged on failure. */
int addr_ascii(struct addr *a, char *errbuf, size_t errlen);

#endif
