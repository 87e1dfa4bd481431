/* verp.c - VERP tokens and bounce addresses (verp.h) */
#include "verp.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define MSGID_PREFIX "<email-"
#define DOMAIN_MAX 255

/* parse_token - "{email_id}.{16 hex}" at s; the end of the token, or NULL */
static const char *parse_token(const char *s, int64_t *email_id, char hex[VERP_HEX_LEN + 1])
{
    int64_t id = 0;
    const char *p = s;
    if (*p < '1' || *p > '9')
        return NULL; /* no sign, no leading zero, at least one digit */
    for (; *p >= '0' && *p <= '9'; p++) {
        int d = *p - '0';
        if (id > (INT64_MAX - d) / 10)
            return NULL;
        id = id * 10 + d;
    }
    if (*p++ != '.')
        return NULL;
    for (int i = 0; i < VERP_HEX_LEN; i++, p++) {
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return NULL;
        if (hex)
            hex[i] = *p;
    }
    if (hex)
        hex[VERP_HEX_LEN] = '\0';
    if (email_id)
        *email_id = id;
    return p;
}

/* domain_ok - n octets at d could be an address's domain: not empty, not
 * too long, nothing that ends an address or a header line */
static bool domain_ok(const char *d, size_t n)
{
    if (n == 0 || n > DOMAIN_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)d[i];
        if (c <= ' ' || c == 0x7f || c == '<' || c == '>' || c == '@' || c == '"' || c == '\\')
            return false;
    }
    return true;
}

int verp_token_from_message_id(const char *message_id, char *tok, size_t len)
{
    size_t plen = strlen(MSGID_PREFIX);
    if (!message_id || !tok || strncmp(message_id, MSGID_PREFIX, plen) != 0)
        return -1;
    const char *start = message_id + plen;
    const char *end = parse_token(start, NULL, NULL);
    if (!end || *end != '@')
        return -1;
    size_t dlen = strlen(end + 1);
    if (dlen < 2 || end[dlen] != '>' || !domain_ok(end + 1, dlen - 1))
        return -1;
    size_t n = (size_t)(end - start);
    if (n >= len)
        return -1;
    memcpy(tok, start, n);
    tok[n] = '\0';
    return 0;
}

int verp_address(const char *token, const char *bounce_domain, char *out, size_t len)
{
    if (!token || !bounce_domain || !out)
        return -1;
    const char *end = parse_token(token, NULL, NULL);
    if (!end || *end != '\0' || !domain_ok(bounce_domain, strlen(bounce_domain)))
        return -1;
    int n = snprintf(out, len, "%s%s@%s", VERP_PREFIX, token, bounce_domain);
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

int verp_parse(const char *address, const char *bounce_domain, int64_t *email_id,
               char hex[VERP_HEX_LEN + 1])
{
    size_t plen = strlen(VERP_PREFIX);
    int64_t id;
    char h[VERP_HEX_LEN + 1];
    if (!address || strncmp(address, VERP_PREFIX, plen) != 0)
        return -1;
    const char *end = parse_token(address + plen, &id, h);
    if (!end || *end != '@')
        return -1;
    const char *dom = end + 1;
    if (!domain_ok(dom, strlen(dom)))
        return -1;
    if (bounce_domain && strcasecmp(dom, bounce_domain) != 0)
        return -1;
    if (email_id)
        *email_id = id;
    if (hex)
        memcpy(hex, h, sizeof h);
    return 0;
}

int verp_message_id(int64_t email_id, const char *hex, const char *domain, char *out, size_t len)
{
    char tok[VERP_TOKEN_MAX];
    if (email_id < 1 || !hex || !domain || !out || strlen(hex) != VERP_HEX_LEN)
        return -1;
    snprintf(tok, sizeof tok, "%lld.%s", (long long)email_id, hex);
    const char *end = parse_token(tok, NULL, NULL);
    if (!end || *end != '\0' || !domain_ok(domain, strlen(domain)))
        return -1;
    int n = snprintf(out, len, "%s%s@%s>", MSGID_PREFIX, tok, domain);
    return n < 0 || (size_t)n >= len ? -1 : 0;
}
