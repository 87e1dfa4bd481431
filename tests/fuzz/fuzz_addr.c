/* fuzz_addr.c - address parsing (libshared/util/addr.c) on arbitrary strings.
 *
 * Invariants: an accepted address is within the RFC 5321 sizes, its
 * normal form is the input with only the domain lower-cased (ASCII), it
 * holds no control character, and parsing the normal form gives the
 * normal form again (idempotent); the same address with its domain in
 * upper case has the same normal form; a refusal says why and leaves the
 * result empty; the result pointer does not change the verdict.
 */
#include "addr.h"
#include "fuzz.h"
#include "xalloc.h"

#include <string.h>

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static char upper(char c)
{
    return c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = xmalloc(size + 1);
    struct addr a, b;
    char err[128] = "", err2[128] = "";
    memcpy(in, data, size);
    in[size] = '\0';

    int rc = addr_parse(in, &a, err, sizeof err);
    FUZZ_CHECK(addr_parse(in, NULL, err2, sizeof err2) == rc, "no result, same verdict");
    if (rc != 0) {
        FUZZ_CHECK(rc == -1 && err[0] != '\0', "a refusal says why");
        FUZZ_CHECK(a.norm[0] == '\0' && a.domain[0] == '\0', "a refusal leaves no result");
        free(in);
        return 0;
    }
    size_t n = strlen(a.norm), dl = strlen(a.domain);
    FUZZ_CHECK(n == strlen(in), "the normal form keeps the length");
    FUZZ_CHECK(n <= ADDR_MAX && dl <= ADDR_DOMAIN_MAX && dl >= 3 && n >= dl + 2,
               "sizes within RFC 5321");
    size_t ll = n - dl - 1;
    FUZZ_CHECK(ll >= 1 && ll <= ADDR_LOCAL_MAX, "local part size");
    FUZZ_CHECK(a.norm[ll] == '@' && memcmp(a.norm + ll + 1, a.domain, dl) == 0,
               "the domain follows the last @");
    FUZZ_CHECK(memcmp(a.norm, in, ll + 1) == 0, "the local part keeps its case");
    for (size_t i = 0; i < dl; i++) {
        FUZZ_CHECK(a.domain[i] == lower(in[ll + 1 + i]), "the domain is lower-cased");
        FUZZ_CHECK(a.domain[i] != '@' && !(a.domain[i] >= 'A' && a.domain[i] <= 'Z'),
                   "no @ or upper case in the domain");
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)a.norm[i];
        FUZZ_CHECK(c >= 0x20 && c != 0x7f, "no control character");
    }

    FUZZ_CHECK(addr_parse(a.norm, &b, err, sizeof err) == 0, "the normal form parses");
    FUZZ_CHECK(strcmp(a.norm, b.norm) == 0 && strcmp(a.domain, b.domain) == 0, "idempotent");

    for (size_t i = ll + 1; i < n; i++)
        in[i] = upper(in[i]);
    FUZZ_CHECK(addr_parse(in, &b, err, sizeof err) == 0, "the domain in upper case parses");
    FUZZ_CHECK(strcmp(a.norm, b.norm) == 0, "the domain's case does not matter");
    free(in);
    return 0;
}
