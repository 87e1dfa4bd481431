/* verp.h - the VERP bounce address of a copy (README.md, "Deliverability").
 *
 * A copy's Message-ID is <email-{email_id}.{hex}@{MESSAGE_ID_DOMAIN}> with
 * {hex} 16 lower-case hex digits; its token is "{email_id}.{hex}", the
 * unique part of that Message-ID. With BOUNCE_DOMAIN set the copy's
 * envelope sender is bounces+{token}@{BOUNCE_DOMAIN}, so a bounce names the
 * copy it is about. The token carries no secret: a forged one names no
 * tracked copy. warmup-service builds the address; health-service parses
 * it from a delivery status notification and rebuilds the Message-ID.
 *
 * Syntax, strict: email_id is decimal, 1 .. INT64_MAX, no sign and no
 * leading zero; hex is exactly 16 of [0-9a-f]; the local part prefix is
 * "bounces+" as written. The domain is compared without regard to ASCII
 * case; no control character, space or angle bracket is accepted anywhere.
 *
 * Pure, any thread, no allocation: results go to caller buffers.
 */
#ifndef VERP_H
#define VERP_H

#include <stddef.h>
#include <stdint.h>

#define VERP_HEX_LEN 16
/* longest token: 19 digits, '.', 16 hex, NUL */
#define VERP_TOKEN_MAX (19 + 1 + VERP_HEX_LEN + 1)
#define VERP_PREFIX "bounces+"

/* verp_token_from_message_id - the token of a copy's Message-ID (angle
 * brackets required) into tok[len]; 0, or -1 when message_id is not a
 * copy's Message-ID or tok is too small */
int verp_token_from_message_id(const char *message_id, char *tok, size_t len);

/* verp_address - bounces+{token}@{bounce_domain} into out[len]; 0, or -1
 * when the token is not valid, the domain is empty or holds a character
 * that cannot stand in an address, or out is too small */
int verp_address(const char *token, const char *bounce_domain, char *out, size_t len);

/* verp_parse - the copy named by a bare VERP address (no angle brackets):
 * 0 with *email_id and hex[] (NUL-terminated) filled, or -1 for anything
 * else. bounce_domain NULL: any non-empty domain; else the address's
 * domain must equal it (ASCII case ignored). */
int verp_parse(const char *address, const char *bounce_domain, int64_t *email_id,
               char hex[VERP_HEX_LEN + 1]);

/* verp_message_id - <email-{email_id}.{hex}@{domain}>, the Message-ID a
 * parsed token stands for, into out[len]; 0, or -1 (bad arguments, or out
 * too small) */
int verp_message_id(int64_t email_id, const char *hex, const char *domain, char *out, size_t len);

#endif
