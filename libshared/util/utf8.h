/* utf8.h - UTF-8 validation (RFC 3629) and control-character checks.
 * Pure; the one implementation the JSON, address and name checks share. */
#ifndef UTF8_H
#define UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* utf8_seq_len - length (2-4) of the well-formed multi-byte sequence at s
 * (lead byte >= 0x80) within avail bytes, or 0 if it is overlong, a
 * surrogate, above U+10FFFF, truncated or not a lead byte */
size_t utf8_seq_len(const unsigned char *s, size_t avail);
/* utf8_ascii_len - how many leading bytes of s[0..len) are ASCII (< 0x80);
 * 8 bytes at a time */
size_t utf8_ascii_len(const char *s, size_t len);
/* utf8_check - offset of the first byte that is not valid UTF-8, or len */
size_t utf8_check(const char *s, size_t len);
/* utf8_valid - utf8_check(s, len) == len */
bool utf8_valid(const char *s, size_t len);
/* utf8_has_ctl - contains an ASCII control character (C0 or DEL), which
 * includes CR and LF (header injection) */
bool utf8_has_ctl(const char *s, size_t len);

#endif
