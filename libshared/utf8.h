/* utf8.h - UTF-8 validation and control-character checks. Pure. */
#ifndef UTF8_H
#define UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* utf8_valid - well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF) */
bool utf8_valid(const char *s, size_t len);
/* utf8_has_ctl - contains an ASCII control character (C0 or DEL), which
 * includes CR and LF (header injection) */
bool utf8_has_ctl(const char *s, size_t len);

#endif
