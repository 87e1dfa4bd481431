/* msgid.c - copies' Message-IDs (msgid.h). */
#include "msgid.h"
#include "xalloc.h"

#include <openssl/sha.h>
#include <stdio.h>

char *msgid_copy(int64_t email_id, const char *salt, int64_t copy_id, const char *domain)
{
    static const char digits[] = "0123456789abcdef";
    char in[96], hex[17];
    unsigned char h[SHA256_DIGEST_LENGTH];
    int n = snprintf(in, sizeof in, "%s:%lld", salt, (long long)copy_id);
    if (n < 0 || n >= (int)sizeof in)
        n = (int)sizeof in - 1;
    SHA256((const unsigned char *)in, (size_t)n, h);
    for (int i = 0; i < 8; i++) { /* no snprintf per byte: this runs for every copy */
        hex[2 * i] = digits[h[i] >> 4];
        hex[2 * i + 1] = digits[h[i] & 15];
    }
    hex[16] = '\0';
    return xasprintf("<email-%lld.%s@%s>", (long long)email_id, hex, domain);
}
