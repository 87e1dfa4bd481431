/* addr.c - email address parsing and validation (RFC 5321/5322 subset).
 *
 * addr_parse() checks the whole input in one pre-pass (control characters,
 * CR/LF, UTF-8 well-formedness, display names and comments), then parses
 * the local part (dot-atom or quoted string) and the domain (host name of
 * at least two labels), and writes local@lower(domain). Owns nothing; pure
 * and thread-safe (no locale: lower-casing is ASCII only, by hand).
 */
#include "addr.h"
#include "errbuf.h"
#include "utf8.h"

#include <idn2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* fail - store a reason in errbuf (truncated to errlen, always terminated) */
static int fail(char *errbuf, size_t errlen, const char *why)
{
    errbuf_set(errbuf, errlen, "%s", why);
    return -1;
}

static int is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* is_atext - RFC 5322 atext, ASCII part */
static int is_atext(unsigned char c)
{
    return is_alpha(c) || is_digit(c) || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

/* prescan - reasons that apply anywhere in the input, quoted or not;
 * returns NULL if none */
static const char *prescan(const unsigned char *s)
{
    int quoted = 0;

    for (size_t i = 0; s[i]; i++) {
        unsigned char c = s[i];
        if (c == '\r' || c == '\n')
            return "CR/LF not allowed";
        if (c == '\t')
            return "whitespace not allowed";
        if (c < 0x20 || c == 0x7f)
            return "control character not allowed";
        if (c >= 0x80) {
            size_t n = utf8_seq_len(s + i, strnlen((const char *)s + i, 4));
            if (n == 0)
                return "invalid UTF-8";
            if (c == 0xc2 && s[i + 1] <= 0x9f) /* U+0080..U+009F, C1 controls */
                return "control character not allowed";
            i += n - 1;
            continue;
        }
        if (quoted) {
            if (c == '\\' && s[i + 1] >= 0x20 && s[i + 1] < 0x7f)
                i++; /* skip the escaped character */
            else if (c == '"')
                quoted = 0;
            continue;
        }
        if (c == '"' && i == 0)
            quoted = 1; /* only a whole local part may be quoted */
        else if (c == '<' || c == '>')
            return "display names and angle brackets not allowed";
        else if (c == '(' || c == ')')
            return "comments not allowed";
    }
    return NULL;
}

/* parse_quoted - quoted-string local part at s[0] == '"'; *len gets its
 * length including the quotes; NULL or a reason */
static const char *parse_quoted(const unsigned char *s, size_t *len)
{
    size_t i = 1;

    for (;;) {
        unsigned char c = s[i];
        if (c == '\0')
            return "unterminated quoted local part";
        if (c == '"')
            break;
        if (c == '\\') {
            if (s[i + 1] < 0x20 || s[i + 1] >= 0x7f)
                return "invalid escape in quoted local part";
            i += 2;
            continue;
        }
        /* printable ASCII, space, UTF-8 (already validated by prescan) */
        i++;
    }
    if (i == 1)
        return "empty quoted local part";
    i++; /* closing quote */
    if (s[i] == '\0')
        return "missing @";
    if (s[i] != '@')
        return "characters after quoted local part";
    *len = i;
    return NULL;
}

/* parse_dot_atom - dot-atom local part ending at the first '@'; *len gets
 * its length; NULL or a reason */
static const char *parse_dot_atom(const unsigned char *s, size_t *len)
{
    size_t i;

    for (i = 0; s[i] && s[i] != '@'; i++) {
        unsigned char c = s[i];
        if (c == '.') {
            if (i == 0)
                return "local part starts with a dot";
            if (s[i - 1] == '.')
                return "consecutive dots in local part";
            if (s[i + 1] == '@' || s[i + 1] == '\0')
                return "local part ends with a dot";
        } else if (c == ' ') {
            return "whitespace not allowed";
        } else if (c == '"') {
            return "quote inside unquoted local part";
        } else if (c < 0x80 && !is_atext(c)) {
            return "invalid character in local part";
        }
    }
    if (s[i] == '\0')
        return "missing @";
    if (i == 0)
        return "empty local part";
    *len = i;
    return NULL;
}

/* check_domain - host name of >= 2 labels; NULL or a reason */
static const char *check_domain(const unsigned char *d)
{
    size_t len = strlen((const char *)d), label = 0, labels = 0;
    int numeric = 1; /* current label is all digits */

    if (len == 0)
        return "missing domain";
    if (strchr((const char *)d, '@'))
        return "more than one @";
    if (d[0] == '[')
        return "domain literals not allowed";
    if (len > ADDR_DOMAIN_MAX)
        return "domain too long";
    if (d[len - 1] == '.')
        return "trailing dot in domain";
    for (size_t i = 0; i <= len; i++) {
        unsigned char c = d[i];
        if (c == '.' || c == '\0') {
            if (label == 0)
                return "empty label in domain";
            if (d[i - 1] == '-')
                return "domain label ends with a hyphen";
            labels++;
            if (c == '\0')
                break;
            label = 0;
            numeric = 1;
            continue;
        }
        if (c == ' ')
            return "whitespace not allowed";
        if (c == '-') {
            if (label == 0)
                return "domain label starts with a hyphen";
        } else if (c < 0x80 && !is_alpha(c) && !is_digit(c)) {
            return "invalid character in domain";
        }
        if (!is_digit(c))
            numeric = 0;
        if (++label > 63)
            return "domain label too long";
    }
    if (labels < 2)
        return "domain needs at least two labels";
    if (numeric)
        return "top-level domain is all-numeric";
    return NULL;
}

int addr_parse(const char *in, struct addr *out, char *errbuf, size_t errlen)
{
    const unsigned char *s = (const unsigned char *)in;
    const char *why;
    size_t llen = 0, dlen;

    if (out) {
        out->norm[0] = '\0';
        out->domain[0] = '\0';
    }
    if (!s || !s[0])
        return fail(errbuf, errlen, "empty address");
    why = prescan(s);
    if (!why)
        why = s[0] == '"' ? parse_quoted(s, &llen) : parse_dot_atom(s, &llen);
    if (!why && llen > ADDR_LOCAL_MAX)
        why = "local part too long";
    if (!why)
        why = check_domain(s + llen + 1);
    if (why)
        return fail(errbuf, errlen, why);
    dlen = strlen(in + llen + 1);
    if (llen + 1 + dlen > ADDR_MAX)
        return fail(errbuf, errlen, "address too long");
    if (!out)
        return 0;

    memcpy(out->norm, in, llen + 1 + dlen + 1);
    for (size_t i = llen + 1; i < llen + 1 + dlen; i++) {
        unsigned char c = (unsigned char)out->norm[i];
        if (c >= 'A' && c <= 'Z')
            out->norm[i] = (char)(c - 'A' + 'a');
    }
    memcpy(out->domain, out->norm + llen + 1, dlen + 1);
    return 0;
}

int addr_ascii(struct addr *a, char *errbuf, size_t errlen)
{
    const char *at = strrchr(a->norm, '@');
    size_t llen = at ? (size_t)(at - a->norm) : 0;
    if (!at)
        return fail(errbuf, errlen, "missing @");
    for (size_t i = 0; i < llen; i++)
        if ((unsigned char)a->norm[i] >= 0x80)
            return fail(errbuf, errlen, "the local part is not ASCII (SMTPUTF8 is not supported)");
    if (utf8_ascii_len(a->domain, strlen(a->domain)) == strlen(a->domain))
        return 0;
    char *ace = NULL;
    int rc = idn2_to_ascii_8z(a->domain, &ace, IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL);
    if (rc != IDN2_OK) {
        char why[160];
        snprintf(why, sizeof why, "the domain is not a valid internationalised name (%s)",
                 idn2_strerror(rc));
        return fail(errbuf, errlen, why);
    }
    size_t dlen = strlen(ace);
    struct addr tmp;
    if (dlen > ADDR_DOMAIN_MAX || llen + 1 + dlen > ADDR_MAX ||
        check_domain((const unsigned char *)ace) != NULL) {
        idn2_free(ace);
        return fail(errbuf, errlen, "the domain is too long in its ASCII (xn--) form");
    }
    memcpy(tmp.norm, a->norm, llen + 1);
    memcpy(tmp.norm + llen + 1, ace, dlen + 1);
    memcpy(tmp.domain, ace, dlen + 1);
    idn2_free(ace);
    *a = tmp;
    return 0;
}
