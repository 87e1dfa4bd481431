/* jsonx.h - json-c helpers for request bodies and responses.
 *
 * Parsing is strict: the whole input must be one JSON value (trailing
 * garbage is an error), nesting is capped at 32, the text must be valid
 * UTF-8. Field getters check presence, type and size and produce a message
 * that names the field, suitable for a 400 JSON error. Strings returned by
 * getters are borrowed from the object (valid while it lives).
 * Pure, thread-safe per object.
 */
#ifndef JSONX_H
#define JSONX_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* jsonx_parse - *out = new object (caller json_object_put), or -1 with a
 * message ("invalid JSON at offset 12: ..."). */
int jsonx_parse(const char *text, size_t len, json_object **out, char *errbuf, size_t errlen);
/* jsonx_parse_object - as jsonx_parse, but the root must be an object */
int jsonx_parse_object(const char *text, size_t len, json_object **out, char *errbuf,
                       size_t errlen);

/* jsonx_get_string - field key of obj must be a string of at most maxlen
 * bytes (and at least 1 when required). Absent or null: *out = NULL and 0
 * when !required, -1 when required. A string containing a NUL byte is an
 * error. Wrong type: -1 ("field 'name' must be a string"). */
int jsonx_get_string(json_object *obj, const char *key, bool required, size_t maxlen,
                     const char **out, char *errbuf, size_t errlen);
/* jsonx_get_int - an integer (not a double, not a string) in [min, max];
 * absent and !required: *out unchanged, *present false (present may be NULL) */
int jsonx_get_int(json_object *obj, const char *key, bool required, int64_t min, int64_t max,
                  int64_t *out, bool *present, char *errbuf, size_t errlen);
/* jsonx_check_keys - -1 if obj has a key not in allowed (NULL-terminated) */
int jsonx_check_keys(json_object *obj, const char *const *allowed, char *errbuf, size_t errlen);

/* A top-level member of an object, as jsonx_object_fields finds it. */
enum jsonx_kind {
    JSONX_ABSENT = 0, /* no such key */
    JSONX_NULL,
    JSONX_STRING,
    JSONX_INT,   /* an integer (no '.', no exponent), in num */
    JSONX_OTHER, /* a double, boolean, array or object */
};
struct jsonx_field {
    const char *key;      /* in: the member's name */
    enum jsonx_kind kind; /* out */
    const char *str;      /* JSONX_STRING: unescaped, NUL-terminated, in the caller's buf */
    size_t len;           /* its length (it may hold a NUL byte) */
    int64_t num;          /* JSONX_INT */
};
/* jsonx_object_fields - the members f[0..nf) of the JSON object text
 * without building a tree (for hot paths): the same strictness and error
 * messages as jsonx_parse_object; a key given twice takes its last value,
 * as json-c does. Unescaped strings are written to buf, which must hold
 * len + 1 bytes; they live as long as buf. 0, or -1 with a message. */
int jsonx_object_fields(const char *text, size_t len, struct jsonx_field *f, size_t nf, char *buf,
                        size_t buflen, char *errbuf, size_t errlen);
/* jsonx_field_string / jsonx_field_int - jsonx_get_string / jsonx_get_int
 * (same rules and messages) for a field found by jsonx_object_fields */
int jsonx_field_string(const struct jsonx_field *f, bool required, size_t maxlen, const char **out,
                       char *errbuf, size_t errlen);
int jsonx_field_int(const struct jsonx_field *f, bool required, int64_t min, int64_t max,
                    int64_t *out, char *errbuf, size_t errlen);

/* jsonx_error_body - {"error":{"code":code,"message":message}} as a new
 * string; caller frees */
char *jsonx_error_body(const char *code, const char *message);
/* jsonx_to_string - compact serialisation, new string; caller frees */
char *jsonx_to_string(json_object *obj);

#endif
