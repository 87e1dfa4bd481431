/* utf8.c - UTF-8 checks. */
#include "utf8.h"

#include <stdint.h>
#include <string.h>

/* a 64-bit word of ASCII has no byte with its top bit set */
#define HIGH_BITS UINT64_C(0x8080808080808080)

size_t utf8_seq_len(const unsigned char *s, size_t avail)
{
    unsigned char c = s[0], lo = 0x80, hi = 0xBF; /* allowed range of the 2nd byte */
    size_t n;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0; /* overlong */
        else if (c == 0xED)
            hi = 0x9F; /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90; /* overlong */
        else if (c == 0xF4)
            hi = 0x8F; /* above U+10FFFF */
    } else {
        return 0;
    }
    if (avail < n || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t k = 2; k < n; k++)
        if ((s[k] & 0xC0) != 0x80)
            return 0;
    return n;
}

size_t utf8_ascii_len(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    for (uint64_t w; len - i >= 8; i += 8) {
        memcpy(&w, s + i, 8);
        if (w & HIGH_BITS)
            break;
    }
    while (i < len && s[i] < 0x80)
        i++;
    return i;
}

size_t utf8_check(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < len) {
        i += utf8_ascii_len(str + i, len - i); /* the common case */
        if (i == len)
            break;
        size_t n = utf8_seq_len(s + i, len - i); /* s[i] >= 0x80 */
        if (n == 0)
            return i;
        i += n;
    }
    return len;
}

bool utf8_valid(const char *s, size_t len)
{
    return utf8_check(s, len) == len;
}

bool utf8_has_ctl(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    for (size_t i = 0; i < len; i++)
        if (s[i] < 0x20 || s[i] == 0x7F)
            return true;
    return false;
}
