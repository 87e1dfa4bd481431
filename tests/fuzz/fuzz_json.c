/* fuzz_json.c - the JSON reader (libshared/util/jsonx.c) on arbitrary bytes.
 *
 * Invariants: jsonx_parse_object and jsonx_object_fields (the tree-less
 * fast path) accept the same texts with the same error message; for
 * accepted objects every field getter on the tree (jsonx_get_string /
 * jsonx_get_int) and on the flat fields (jsonx_field_string /
 * jsonx_field_int) gives the same result and message; an accepted value
 * serialises (jsonx_to_string) to text that parses again and serialises
 * to the same text; an error body built from any error message is a JSON
 * object again.
 */
#include "fuzz.h"
#include "jsonx.h"
#include "xalloc.h"

#include <stdbool.h>
#include <string.h>

static const char *const keys[] = {"v", "type", "email_id", "name", "a", "", "\xc3\xa9", "a b"};
#define NKEYS (sizeof keys / sizeof keys[0])

static const struct {
    int64_t min, max;
} ranges[] = {{INT64_MIN, INT64_MAX}, {0, INT32_MAX}, {1, INT64_MAX}, {-5, 5}};

/* same_str - both NULL or equal */
static bool same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* check_fields - the flat fields of an accepted object agree with its tree */
static void check_fields(json_object *obj, const struct jsonx_field *f, size_t maxlen)
{
    for (size_t i = 0; i < NKEYS; i++) {
        for (int req = 0; req < 2; req++) {
            const char *s1 = NULL, *s2 = NULL;
            char e1[256] = "", e2[256] = "";
            int r1 = jsonx_get_string(obj, keys[i], req, maxlen, &s1, e1, sizeof e1);
            int r2 = jsonx_field_string(&f[i], req, maxlen, &s2, e2, sizeof e2);
            FUZZ_CHECK(r1 == r2, "string getters agree on acceptance");
            FUZZ_CHECK(same_str(s1, s2), "string getters agree on the value");
            FUZZ_CHECK(r1 == 0 || strcmp(e1, e2) == 0, "string getters agree on the message");
            for (size_t k = 0; k < sizeof ranges / sizeof ranges[0]; k++) {
                int64_t n1 = 42, n2 = 42;
                bool present = false;
                r1 = jsonx_get_int(obj, keys[i], req, ranges[k].min, ranges[k].max, &n1, &present,
                                   e1, sizeof e1);
                r2 = jsonx_field_int(&f[i], req, ranges[k].min, ranges[k].max, &n2, e2, sizeof e2);
                FUZZ_CHECK(r1 == r2, "int getters agree on acceptance");
                FUZZ_CHECK(n1 == n2, "int getters agree on the value");
                FUZZ_CHECK(r1 == 0 || strcmp(e1, e2) == 0, "int getters agree on the message");
                FUZZ_CHECK(!present || (n1 >= ranges[k].min && n1 <= ranges[k].max),
                           "an int in range");
                FUZZ_CHECK(present || n1 == 42, "an absent int leaves the output");
            }
        }
    }
}

/* check_error_body - the 400 body for msg is a JSON object holding msg */
static void check_error_body(const char *msg)
{
    char *body = jsonx_error_body("bad_request", msg);
    json_object *o = NULL, *err = NULL, *m = NULL;
    char e[256];
    FUZZ_CHECK(jsonx_parse_object(body, strlen(body), &o, e, sizeof e) == 0,
               "an error body parses");
    FUZZ_CHECK(json_object_object_get_ex(o, "error", &err) &&
                   json_object_object_get_ex(err, "message", &m) &&
                   strcmp(json_object_get_string(m), msg) == 0,
               "an error body holds its message");
    json_object_put(o);
    free(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    json_object *any = NULL, *obj = NULL;
    char e1[256] = "", e2[256] = "", e3[256] = "";
    struct jsonx_field f[NKEYS];
    char *buf = xmalloc(size + 1);

    int r1 = jsonx_parse(text, size, &any, e1, sizeof e1);
    int r2 = jsonx_parse_object(text, size, &obj, e2, sizeof e2);
    for (size_t i = 0; i < NKEYS; i++)
        f[i] = (struct jsonx_field){.key = keys[i]};
    int r3 = jsonx_object_fields(text, size, f, NKEYS, buf, size + 1, e3, sizeof e3);

    FUZZ_CHECK(r1 == 0 ? any != NULL || (size >= 4 && memmem(text, size, "null", 4)) : !any,
               "a parsed value is there unless it is null");
    FUZZ_CHECK(r2 != 0 || r1 == 0, "an object is a value");
    FUZZ_CHECK(r2 == r3, "tree and flat parse accept the same texts");
    FUZZ_CHECK(r2 == 0 || strcmp(e2, e3) == 0, "tree and flat parse give the same message");
    FUZZ_CHECK(r1 == 0 || strncmp(e1, "invalid JSON at offset ", 23) == 0,
               "a parse error names its offset");
    if (r2 == 0)
        check_fields(obj, f, size % 7 == 0 ? 0 : size % 64);
    else
        check_error_body(e2);

    if (r1 == 0 && any) {
        char *s1 = jsonx_to_string(any), *s2;
        json_object *again = NULL;
        FUZZ_CHECK(jsonx_parse(s1, strlen(s1), &again, e1, sizeof e1) == 0,
                   "a serialised value parses again");
        s2 = jsonx_to_string(again);
        FUZZ_CHECK(strcmp(s1, s2) == 0, "serialisation is stable");
        json_object_put(again);
        free(s1);
        free(s2);
    }
    json_object_put(any);
    json_object_put(obj);
    free(buf);
    return 0;
}
