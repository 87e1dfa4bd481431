/* test_json.c - jsonx: strict parsing with offsets, field getters, key
 * checks and serialisation. */
#include "jsonx.h"
#include "test.h"

#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S(lit) lit, sizeof(lit) - 1

static void test_parse_table(void)
{
    static const struct {
        const char *name;
        const char *text;
        size_t len;
        const char *err; /* NULL: must parse */
    } rows[] = {
        /* accepted */
        {"empty object", S("{}"), NULL},
        {"empty array", S("[]"), NULL},
        {"all types with whitespace", S(" {\"a\":[1,-2.5e-3,true,false,null,\"x\"]} \r\n\t"), NULL},
        {"scalar root", S("\"text\""), NULL},
        {"number root", S("-0"), NULL},
        {"exponent", S("1E+2"), NULL},
        {"escaped NUL in a value", S("\"a\\u0000b\""), NULL},
        {"surrogate pair escape", S("\"\\ud83d\\ude00\""), NULL},
        {"two-byte UTF-8", S("\"\xc3\xa9\""), NULL},
        {"four-byte UTF-8", S("[\"\xf0\x9f\x98\x80\"]"), NULL},
        {"largest int64", S("9223372036854775807"), NULL},
        {"smallest int64", S("-9223372036854775808"), NULL},
        {"underflow to zero", S("[1e-999]"), NULL},
        /* empty and truncated */
        {"empty input", S(""), "invalid JSON at offset 0: empty input"},
        {"only whitespace", S("  \n"), "invalid JSON at offset 3: no value, only whitespace"},
        {"truncated after colon", S("{\"a\":"),
         "invalid JSON at offset 5: unexpected end of input"},
        {"truncated object", S("{\"a\":1"), "invalid JSON at offset 6: unexpected end of input"},
        {"truncated array", S("[1,2"), "invalid JSON at offset 4: unexpected end of input"},
        {"truncated string", S("\"abc"), "invalid JSON at offset 4: unterminated string"},
        {"truncated literal", S("tru"), "invalid JSON at offset 0: unexpected character"},
        /* trailing garbage */
        {"trailing garbage", S("{\"a\":1} x"),
         "invalid JSON at offset 8: unexpected data after the value"},
        {"two values", S("{}{}"), "invalid JSON at offset 2: unexpected data after the value"},
        {"two numbers", S("1 2"), "invalid JSON at offset 2: unexpected data after the value"},
        {"leading zero", S("01"), "invalid JSON at offset 1: unexpected data after the value"},
        /* not JSON, though json-c accepts some of it */
        {"single-quoted string", S("'a'"), "invalid JSON at offset 0: unexpected character"},
        {"single-quoted key", S("{'a':1}"), "invalid JSON at offset 1: expected a string key"},
        {"NaN", S("NaN"), "invalid JSON at offset 0: unexpected character"},
        {"Infinity", S("[Infinity]"), "invalid JSON at offset 1: unexpected character"},
        {"-Infinity", S("-Infinity"), "invalid JSON at offset 1: invalid number"},
        {"block comment", S("/*c*/1"), "invalid JSON at offset 0: unexpected character"},
        {"line comment", S("1 // c"), "invalid JSON at offset 2: unexpected data after the value"},
        {"trailing comma in array", S("[1,]"), "invalid JSON at offset 3: unexpected character"},
        {"trailing comma in object", S("{\"a\":1,}"),
         "invalid JSON at offset 7: expected a string key"},
        {"missing colon", S("{\"a\" 1}"), "invalid JSON at offset 5: expected ':'"},
        {"missing comma", S("[1 2]"), "invalid JSON at offset 3: expected ',' or ']'"},
        {"upper-case literal", S("TRUE"), "invalid JSON at offset 0: unexpected character"},
        {"plus sign", S("+1"), "invalid JSON at offset 0: unexpected character"},
        {"bare fraction", S(".5"), "invalid JSON at offset 0: unexpected character"},
        {"dot without digits", S("1."), "invalid JSON at offset 2: invalid number"},
        {"exponent without digits", S("1e"), "invalid JSON at offset 2: invalid number"},
        {"bad escape", S("\"\\x41\""), "invalid JSON at offset 1: invalid escape in string"},
        {"short \\u escape", S("\"\\u12\""), "invalid JSON at offset 1: invalid \\u escape"},
        {"raw tab in string", S("\"a\tb\""),
         "invalid JSON at offset 2: control character in string"},
        {"raw NUL in string", S("\"a\0b\""),
         "invalid JSON at offset 2: control character in string"},
        {"raw NUL between values", S("[1,\0]"), "invalid JSON at offset 3: unexpected character"},
        {"form feed is not whitespace", S("\f1"), "invalid JSON at offset 0: unexpected character"},
        {"byte order mark", S("\xef\xbb\xbf{}"), "invalid JSON at offset 0: unexpected character"},
        {"NUL escape in key", S("{\"a\\u0000b\":1}"),
         "invalid JSON at offset 3: NUL character in object key"},
        {"bad escape at end", S("\"\\"), "invalid JSON at offset 1: invalid escape in string"},
        {"bad low half of a pair", S("\"\\ud800\\uzzzz\""),
         "invalid JSON at offset 1: invalid \\u escape"},
        {"lone high surrogate", S("\"x\\ud800\""),
         "invalid JSON at offset 2: lone surrogate in \\u escape"},
        {"lone low surrogate", S("\"\\udc00\""),
         "invalid JSON at offset 1: lone surrogate in \\u escape"},
        {"high surrogate + non-low", S("\"\\ud800\\u0041\""),
         "invalid JSON at offset 1: lone surrogate in \\u escape"},
        {"int64 overflow", S("[9223372036854775808]"),
         "invalid JSON at offset 1: number out of range"},
        {"int64 underflow", S("-9223372036854775809"),
         "invalid JSON at offset 0: number out of range"},
        {"uint64 max", S("18446744073709551615"), "invalid JSON at offset 0: number out of range"},
        {"double overflow", S("{\"a\":1e999}"), "invalid JSON at offset 5: number out of range"},
        /* invalid UTF-8 */
        {"invalid byte 0xff", S("\"\xff\""), "invalid JSON at offset 1: invalid UTF-8"},
        {"stray continuation byte", S("\"ab\x80\""), "invalid JSON at offset 3: invalid UTF-8"},
        {"overlong NUL", S("\"\xc0\x80\""), "invalid JSON at offset 1: invalid UTF-8"},
        {"overlong 3-byte", S("\"\xe0\x80\xaf\""), "invalid JSON at offset 1: invalid UTF-8"},
        {"UTF-8 surrogate", S("\"\xed\xa0\x80\""), "invalid JSON at offset 1: invalid UTF-8"},
        {"above U+10FFFF", S("\"\xf4\x90\x80\x80\""), "invalid JSON at offset 1: invalid UTF-8"},
        {"truncated sequence", S("\"ab\xe2\x82\""), "invalid JSON at offset 3: invalid UTF-8"},
        {"truncated at end", S("\"\xe2\x82"), "invalid JSON at offset 1: invalid UTF-8"},
        {"invalid UTF-8 in key", S("{\"k\xfe\":1}"), "invalid JSON at offset 3: invalid UTF-8"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char err[256] = "";
        json_object *o = (json_object *)&err; /* must be overwritten */
        int rc = jsonx_parse(rows[i].text, rows[i].len, &o, err, sizeof err);
        if (!rows[i].err) {
            CHECK(rc == 0 && o != NULL, rows[i].name);
            if (rc != 0)
                printf("#   error: %s\n", err);
        } else {
            CHECK(rc == -1 && o == NULL, rows[i].name);
            CHECK_STR(err, rows[i].err, rows[i].name);
        }
        if (rc == 0)
            json_object_put(o);
    }
}

/* nested - n arrays (or objects) deep, around a scalar unless empty */
static char *nested(int n, bool objects, bool empty)
{
    char *s = malloc((size_t)n * 6 + 2);
    size_t k = 0;
    int open = empty ? n - 1 : n; /* containers that hold another value */
    for (int i = 0; i < open; i++) {
        if (objects) {
            memcpy(s + k, "{\"a\":", 5);
            k += 5;
        } else {
            s[k++] = '[';
        }
    }
    if (empty) {
        memcpy(s + k, objects ? "{}" : "[]", 2);
        k += 2;
    } else {
        s[k++] = '1';
    }
    for (int i = 0; i < open; i++)
        s[k++] = objects ? '}' : ']';
    s[k] = '\0';
    return s;
}

static void test_depth(void)
{
    static const struct {
        const char *name;
        int depth;
        bool objects, empty;
        int rc;
    } rows[] = {
        {"arrays 32 deep, scalar inside", 32, false, false, 0},
        {"arrays 32 deep, empty", 32, false, true, 0},
        {"arrays 33 deep, scalar inside", 33, false, false, -1},
        {"arrays 33 deep, empty", 33, false, true, -1},
        {"objects 32 deep, scalar inside", 32, true, false, 0},
        {"objects 32 deep, empty", 32, true, true, 0},
        {"objects 33 deep, scalar inside", 33, true, false, -1},
        {"objects 33 deep, empty", 33, true, true, -1},
        {"arrays 1000 deep", 1000, false, false, -1},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char err[256] = "", want[64];
        json_object *o;
        char *s = nested(rows[i].depth, rows[i].objects, rows[i].empty);
        int rc = jsonx_parse(s, strlen(s), &o, err, sizeof err);
        CHECK_INT(rc, rows[i].rc, rows[i].name);
        if (rc == 0) {
            char *out = jsonx_to_string(o);
            CHECK_STR(out, s, rows[i].name);
            free(out);
            json_object_put(o);
        } else {
            snprintf(want, sizeof want, "invalid JSON at offset %d: nesting too deep",
                     rows[i].objects ? 32 * 5 : 32);
            CHECK_STR(err, want, rows[i].name);
        }
        free(s);
    }
}

static void test_parse_misc(void)
{
    char err[256];
    json_object *o;

    /* the length bounds the input: no NUL terminator needed */
    CHECK_INT(jsonx_parse("123456", 3, &o, err, sizeof err), 0, "length bounds a number");
    CHECK_INT(json_object_get_int64(o), 123, "length bounds a number: value");
    json_object_put(o);
    CHECK_INT(jsonx_parse("{\"a\":1}garbage", 7, &o, err, sizeof err), 0,
              "length bounds an object");
    json_object_put(o);

    o = (json_object *)err;
    CHECK_INT(jsonx_parse(S("null"), &o, err, sizeof err), 0, "null root parses");
    CHECK(o == NULL, "null root: json-c's null is a NULL object");
    CHECK_INT(jsonx_parse(S(" [null] "), &o, err, sizeof err), 0, "null in an array");
    CHECK(json_object_is_type(json_object_array_get_idx(o, 0), json_type_null),
          "null in an array: value");
    json_object_put(o);

    /* refused before a byte is read (json-c takes an int length) */
    CHECK_INT(jsonx_parse("{}", (size_t)INT_MAX + 1, &o, err, sizeof err), -1,
              "length over INT_MAX");
    CHECK_STR(err, "invalid JSON at offset 0: input too large", "length over INT_MAX: message");

    CHECK_INT(jsonx_parse(NULL, 0, &o, err, sizeof err), -1, "NULL text");
    CHECK_STR(err, "invalid JSON at offset 0: empty input", "NULL text: message");

    CHECK_INT(jsonx_parse(S("\"a\\/b\\u00e9\\n\""), &o, err, sizeof err), 0, "escapes decode");
    CHECK_STR(json_object_get_string(o), "a/b\xc3\xa9\n", "escapes decode: value");
    json_object_put(o);

    CHECK_INT(jsonx_parse(S("{\"a\":1,\"a\":2}"), &o, err, sizeof err), 0, "duplicate keys parse");
    json_object_put(o);

    static const struct {
        const char *name;
        const char *text;
        const char *err;
    } obj_rows[] = {
        {"object root", "{\"a\":1}", NULL},
        {"array root", "[1]", "JSON body must be an object, got array"},
        {"string root", "\"s\"", "JSON body must be an object, got string"},
        {"null root", "null", "JSON body must be an object, got null"},
        {"number root", "7", "JSON body must be an object, got int"},
        {"malformed", "{", "invalid JSON at offset 1: unexpected end of input"},
        {"whitespace only", " ", "invalid JSON at offset 1: no value, only whitespace"},
    };
    for (size_t i = 0; i < sizeof obj_rows / sizeof obj_rows[0]; i++) {
        char name[96];
        snprintf(name, sizeof name, "parse_object: %s", obj_rows[i].name);
        o = (json_object *)err;
        err[0] = '\0';
        int rc =
            jsonx_parse_object(obj_rows[i].text, strlen(obj_rows[i].text), &o, err, sizeof err);
        if (!obj_rows[i].err) {
            CHECK(rc == 0 && json_object_is_type(o, json_type_object), name);
            json_object_put(o);
        } else {
            CHECK(rc == -1 && o == NULL, name);
            CHECK_STR(err, obj_rows[i].err, name);
        }
    }
}

static void test_get_string(void)
{
    static const char body[] = "{\"name\":\"alice\",\"empty\":\"\",\"nul\":\"a\\u0000b\","
                               "\"num\":5,\"null\":null,\"arr\":[],\"obj\":{},\"utf\":\"\\u00e9\","
                               "\"bool\":true}";
    static const struct {
        const char *name;
        const char *key;
        bool required;
        size_t maxlen;
        int rc;
        const char *want; /* value on success, message on error */
    } rows[] = {
        {"string", "name", true, 10, 0, "alice"},
        {"string at maxlen", "name", true, 5, 0, "alice"},
        {"string over maxlen", "name", true, 4, -1, "field 'name' must be at most 4 bytes"},
        {"length in bytes: 2-byte char, max 2", "utf", true, 2, 0, "\xc3\xa9"},
        {"length in bytes: 2-byte char, max 1", "utf", true, 1, -1,
         "field 'utf' must be at most 1 bytes"},
        {"empty, optional", "empty", false, 10, 0, ""},
        {"empty, required", "empty", true, 10, -1, "field 'empty' must not be empty"},
        {"embedded NUL", "nul", false, 10, -1, "field 'nul' must not contain a NUL character"},
        {"number", "num", false, 10, -1, "field 'num' must be a string"},
        {"array", "arr", false, 10, -1, "field 'arr' must be a string"},
        {"object", "obj", true, 10, -1, "field 'obj' must be a string"},
        {"bool", "bool", true, 10, -1, "field 'bool' must be a string"},
        {"null, optional", "null", false, 10, 0, NULL},
        {"null, required", "null", true, 10, -1, "field 'null' is required"},
        {"absent, optional", "missing", false, 10, 0, NULL},
        {"absent, required", "missing", true, 10, -1, "field 'missing' is required"},
    };
    char err[256];
    json_object *o;
    if (jsonx_parse_object(body, strlen(body), &o, err, sizeof err) < 0) {
        printf("# %s\n", err);
        CHECK(0, "get_string body parses");
        return;
    }
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const char *v = "untouched";
        err[0] = '\0';
        int rc =
            jsonx_get_string(o, rows[i].key, rows[i].required, rows[i].maxlen, &v, err, sizeof err);
        CHECK_INT(rc, rows[i].rc, rows[i].name);
        if (rows[i].rc == 0)
            CHECK_STR(v, rows[i].want, rows[i].name);
        else
            CHECK_STR(err, rows[i].want, rows[i].name);
    }
    json_object_put(o);

    json_object *arr = json_object_new_array();
    const char *v;
    CHECK_INT(jsonx_get_string(arr, "a", false, 10, &v, err, sizeof err), -1,
              "get_string on an array");
    json_object_put(arr);
}

static void test_get_int(void)
{
    static const char body[] = "{\"n\":42,\"neg\":-7,\"zero\":0,\"d\":1.5,\"d10\":10.0,\"e\":1e2,"
                               "\"s\":\"5\",\"b\":true,\"null\":null,\"arr\":[1],"
                               "\"big\":9223372036854775807,\"small\":-9223372036854775808}";
    static const struct {
        const char *name;
        const char *key;
        bool required;
        int64_t min, max;
        int rc;
        bool present;
        int64_t want;
        const char *err;
    } rows[] = {
        {"int in range", "n", true, 0, 100, 0, true, 42, NULL},
        {"int at max", "n", true, 0, 42, 0, true, 42, NULL},
        {"int at min", "n", true, 42, 50, 0, true, 42, NULL},
        {"int above max", "n", true, 0, 41, -1, false, 0,
         "field 'n' must be an integer between 0 and 41"},
        {"int below min", "n", true, 43, 100, -1, false, 0,
         "field 'n' must be an integer between 43 and 100"},
        {"negative in range", "neg", true, -10, 10, 0, true, -7, NULL},
        {"negative out of range", "neg", true, 0, 10, -1, false, 0,
         "field 'neg' must be an integer between 0 and 10"},
        {"zero", "zero", true, 0, 0, 0, true, 0, NULL},
        {"double 1.5", "d", true, 0, 100, -1, false, 0,
         "field 'd' must be an integer between 0 and 100"},
        {"double 10.0", "d10", true, 0, 100, -1, false, 0,
         "field 'd10' must be an integer between 0 and 100"},
        {"double 1e2", "e", true, 0, 1000, -1, false, 0,
         "field 'e' must be an integer between 0 and 1000"},
        {"string \"5\"", "s", true, 0, 100, -1, false, 0,
         "field 's' must be an integer between 0 and 100"},
        {"bool", "b", true, 0, 100, -1, false, 0, "field 'b' must be an integer between 0 and 100"},
        {"array", "arr", false, 0, 100, -1, false, 0,
         "field 'arr' must be an integer between 0 and 100"},
        {"null, optional", "null", false, 0, 100, 0, false, 99, NULL},
        {"null, required", "null", true, 0, 100, -1, false, 0, "field 'null' is required"},
        {"absent, optional", "missing", false, 0, 100, 0, false, 99, NULL},
        {"absent, required", "missing", true, 0, 100, -1, false, 0, "field 'missing' is required"},
        {"INT64_MAX", "big", true, INT64_MIN, INT64_MAX, 0, true, INT64_MAX, NULL},
        {"INT64_MIN", "small", true, INT64_MIN, INT64_MAX, 0, true, INT64_MIN, NULL},
    };
    char err[256];
    json_object *o;
    if (jsonx_parse_object(body, strlen(body), &o, err, sizeof err) < 0) {
        printf("# %s\n", err);
        CHECK(0, "get_int body parses");
        return;
    }
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        int64_t v = 99;
        bool present = !rows[i].present;
        err[0] = '\0';
        int rc = jsonx_get_int(o, rows[i].key, rows[i].required, rows[i].min, rows[i].max, &v,
                               &present, err, sizeof err);
        CHECK_INT(rc, rows[i].rc, rows[i].name);
        if (rows[i].rc == 0) {
            CHECK_INT(v, rows[i].want, rows[i].name);
            CHECK(present == rows[i].present, rows[i].name);
        } else {
            CHECK_STR(err, rows[i].err, rows[i].name);
        }
    }
    int64_t v = 5;
    CHECK_INT(jsonx_get_int(o, "missing", false, 0, 10, &v, NULL, err, sizeof err), 0,
              "get_int: present may be NULL");
    CHECK_INT(v, 5, "get_int: absent leaves *out unchanged");
    json_object_put(o);

    /* values above INT64_MAX built by hand are uint64 inside json-c */
    o = json_object_new_object();
    json_object_object_add(o, "u", json_object_new_uint64(UINT64_MAX));
    CHECK_INT(jsonx_get_int(o, "u", true, INT64_MIN, INT64_MAX, &v, NULL, err, sizeof err), -1,
              "get_int: uint64 above INT64_MAX rejected");
    json_object_put(o);
}

static void test_check_keys(void)
{
    static const char *const allowed[] = {"name", "email", NULL};
    static const struct {
        const char *name;
        const char *text;
        const char *err; /* NULL: ok */
    } rows[] = {
        {"no keys", "{}", NULL},
        {"all allowed", "{\"email\":1,\"name\":2}", NULL},
        {"unknown key", "{\"name\":1,\"extra\":2}", "unknown field 'extra'"},
        {"first unknown reported", "{\"x\":1,\"y\":2}", "unknown field 'x'"},
        {"case matters", "{\"Name\":1}", "unknown field 'Name'"},
        {"prefix is unknown", "{\"nam\":1}", "unknown field 'nam'"},
        {"control character echoed safely", "{\"a\\nb\":1}", "unknown field 'a?b'"},
        {"long key cut",
         "{\"kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk\":1}",
         "unknown field 'kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk...'"},
        {"cut at a UTF-8 boundary",
         "{\"kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk\xc3\xa9\xc3\xa9\":1}",
         "unknown field 'kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk...'"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char err[256] = "";
        json_object *o;
        if (jsonx_parse_object(rows[i].text, strlen(rows[i].text), &o, err, sizeof err) < 0) {
            printf("# %s\n", err);
            CHECK(0, rows[i].name);
            continue;
        }
        int rc = jsonx_check_keys(o, allowed, err, sizeof err);
        CHECK_INT(rc, rows[i].err ? -1 : 0, rows[i].name);
        if (rows[i].err)
            CHECK_STR(err, rows[i].err, rows[i].name);
        json_object_put(o);
    }
}

static void test_serialise(void)
{
    char *s = jsonx_error_body("bad_request", "field 'x' is \"bad\" / see a\\b\n");
    CHECK_STR(s,
              "{\"error\":{\"code\":\"bad_request\",\"message\":\"field 'x' is \\\"bad\\\" / see "
              "a\\\\b\\n\"}}",
              "error_body: compact, escaped, slash kept");
    free(s);
    s = jsonx_error_body("internal", NULL);
    CHECK_STR(s, "{\"error\":{\"code\":\"internal\",\"message\":\"\"}}",
              "error_body: NULL message");
    free(s);

    static const struct {
        const char *in, *out;
    } rows[] = {
        {" { \"a\" : [ 1 , 2 ] , \"b\" : \"x/y\" , \"c\" : null } ",
         "{\"a\":[1,2],\"b\":\"x/y\",\"c\":null}"},
        {"\"a\\u0000b\"", "\"a\\u0000b\""},
        {"[\"\\u00e9\\t\"]", "[\"\xc3\xa9\\t\"]"},
        {"-0", "0"},
        {"{}", "{}"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char err[256], name[96];
        json_object *o;
        snprintf(name, sizeof name, "to_string: %s", rows[i].out);
        if (jsonx_parse(rows[i].in, strlen(rows[i].in), &o, err, sizeof err) < 0) {
            printf("# %s\n", err);
            CHECK(0, name);
            continue;
        }
        s = jsonx_to_string(o);
        CHECK_STR(s, rows[i].out, name);
        free(s);
        json_object_put(o);
    }
    s = jsonx_to_string(NULL);
    CHECK_STR(s, "null", "to_string: NULL object");
    free(s);
}

/* fields_agree - jsonx_object_fields + jsonx_field_* answer as
 * jsonx_parse_object + jsonx_get_* do, for the string field s, the integer
 * field n and the optional string field o (error messages included) */
static void fields_agree(const char *name, const char *text)
{
    size_t len = strlen(text);
    char e1[256] = "", e2[256] = "", what[320];
    const char *s1 = NULL, *s2 = NULL, *o1 = NULL, *o2 = NULL;
    int64_t n1 = -7, n2 = -7;
    int r1, r2;
    json_object *obj = NULL;
    r1 = jsonx_parse_object(text, len, &obj, e1, sizeof e1);
    if (r1 == 0)
        r1 = jsonx_get_string(obj, "s", true, 16, &s1, e1, sizeof e1) ||
             jsonx_get_int(obj, "n", true, -5, INT64_MAX, &n1, NULL, e1, sizeof e1) ||
             jsonx_get_string(obj, "o", false, 16, &o1, e1, sizeof e1);
    char *buf = malloc(len + 1);
    struct jsonx_field f[] = {{.key = "n"}, {.key = "o"}, {.key = "s"}};
    r2 = jsonx_object_fields(text, len, f, 3, buf, len + 1, e2, sizeof e2);
    if (r2 == 0)
        r2 = jsonx_field_string(&f[2], true, 16, &s2, e2, sizeof e2) ||
             jsonx_field_int(&f[0], true, -5, INT64_MAX, &n2, e2, sizeof e2) ||
             jsonx_field_string(&f[1], false, 16, &o2, e2, sizeof e2);
    snprintf(what, sizeof what, "fields as the tree: %s", name);
    bool same = r1 == r2 && strcmp(e1, e2) == 0 && n1 == n2 &&
                (s1 && s2 ? strcmp(s1, s2) == 0 : s1 == s2) &&
                (o1 && o2 ? strcmp(o1, o2) == 0 : o1 == o2);
    CHECK(same, what);
    if (!same)
        printf("#   tree: %d '%s' s=%s n=%lld o=%s\n#   flat: %d '%s' s=%s n=%lld o=%s\n", r1, e1,
               s1 ? s1 : "-", (long long)n1, o1 ? o1 : "-", r2, e2, s2 ? s2 : "-", (long long)n2,
               o2 ? o2 : "-");
    json_object_put(obj);
    free(buf);
}

static void test_object_fields(void)
{
    static const struct {
        const char *name, *text;
    } rows[] = {
        {"plain", "{\"s\":\"abc\",\"n\":3}"},
        {"with the optional one", "{\"o\":\"x\",\"s\":\"abc\",\"n\":3}"},
        {"whitespace everywhere", " \t{ \"s\" :\r\n\"abc\" , \"n\" : 3 , \"o\" : null } \n"},
        {"escapes", "{\"s\":\"a\\\"\\\\\\/\\b\\f\\n\\r\\tz\",\"n\":0}"},
        {"unicode escapes", "{\"s\":\"\\u00e9\\u20ac\\ud83d\\ude00\\u0041\",\"n\":1}"},
        {"raw UTF-8", "{\"s\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\",\"n\":1}"},
        {"escaped key", "{\"\\u0073\":\"abc\",\"n\":1}"},
        {"escaped other key", "{\"\\u0073x\":\"abc\",\"s\":\"d\",\"n\":1}"},
        {"duplicate key, last wins", "{\"s\":\"first\",\"n\":1,\"s\":\"second\",\"n\":2}"},
        {"duplicate, last null", "{\"s\":\"first\",\"n\":1,\"s\":null}"},
        {"nested values skipped", "{\"a\":{\"s\":\"in\",\"b\":[1,{\"n\":\"}\"}],\"c\":\"]\"},\"s\":"
                                  "\"out\",\"x\":[[]],\"n\":4}"},
        {"keys that are prefixes", "{\"ss\":\"no\",\"s\":\"yes\",\"nn\":9,\"n\":5,\"\":1}"},
        {"string with a quote and brace", "{\"s\":\"a\\\"}\",\"n\":5}"},
        {"missing string", "{\"n\":5}"},
        {"null string", "{\"s\":null,\"n\":5}"},
        {"empty string", "{\"s\":\"\",\"n\":5}"},
        {"long string", "{\"s\":\"0123456789abcdefg\",\"n\":5}"},
        {"string at the limit", "{\"s\":\"0123456789abcdef\",\"n\":5}"},
        {"escaped NUL", "{\"s\":\"a\\u0000b\",\"n\":5}"},
        {"string a number", "{\"s\":5,\"n\":5}"},
        {"string an object", "{\"s\":{},\"n\":5}"},
        {"string an array", "{\"s\":[\"a\"],\"n\":5}"},
        {"string true", "{\"s\":true,\"n\":5}"},
        {"int missing", "{\"s\":\"a\"}"},
        {"int null", "{\"s\":\"a\",\"n\":null}"},
        {"int a double", "{\"s\":\"a\",\"n\":5.0}"},
        {"int an exponent", "{\"s\":\"a\",\"n\":5e0}"},
        {"int a string", "{\"s\":\"a\",\"n\":\"5\"}"},
        {"int false", "{\"s\":\"a\",\"n\":false}"},
        {"int negative in range", "{\"s\":\"a\",\"n\":-5}"},
        {"int below range", "{\"s\":\"a\",\"n\":-6}"},
        {"int minus zero", "{\"s\":\"a\",\"n\":-0}"},
        {"int largest", "{\"s\":\"a\",\"n\":9223372036854775807}"},
        {"int too large", "{\"s\":\"a\",\"n\":9223372036854775808}"},
        {"optional a number", "{\"s\":\"a\",\"n\":1,\"o\":2}"},
        {"array root", "[1]"},
        {"string root", "\"s\""},
        {"int root", "12"},
        {"double root", "-1.5"},
        {"exponent root", "1e5"},
        {"boolean root", "false"},
        {"null root", "null"},
        {"empty", ""},
        {"truncated", "{\"s\":\"a\""},
        {"trailing garbage", "{\"s\":\"a\",\"n\":1}x"},
        {"bad escape", "{\"s\":\"\\x\",\"n\":1}"},
        {"lone surrogate", "{\"s\":\"\\ud800\",\"n\":1}"},
        {"invalid UTF-8", "{\"s\":\"\xc3\",\"n\":1}"},
        {"empty object", "{}"},
        /* strings are scanned 8 bytes at a time: what ends or breaks the
         * plain run at each place in a word */
        {"7 bytes", "{\"s\":\"0123456\",\"n\":1}"},
        {"8 bytes", "{\"s\":\"01234567\",\"n\":1}"},
        {"9 bytes", "{\"s\":\"012345678\",\"n\":1}"},
        {"escape at byte 8", "{\"s\":\"01234567\\\"9\",\"n\":1}"},
        {"escape at byte 9", "{\"s\":\"012345678\\n\",\"n\":1}"},
        {"quote-like byte in a word", "{\"s\":\"ab!#cd\",\"n\":1}"},
        {"UTF-8 across a word", "{\"s\":\"012345\xe2\x82\xac"
                                "9\",\"n\":1}"},
        {"tab at byte 3", "{\"s\":\"012\t\",\"n\":1}"},
        {"DEL is allowed", "{\"s\":\"0123456\x7f\",\"n\":1}"},
        {"bad UTF-8 at byte 16", "{\"s\":\"0123456789\",\"n\":1,\"x\":\"\xff\"}"},
        {"unterminated after a word", "{\"s\":\"0123456789abcdef"},
        {"long key", "{\"0123456789abcdefghij\":1,\"s\":\"a\",\"n\":1}"},
        {"wanted keys inside an array", "[{\"s\":\"a\",\"n\":1}]"},
        {"wanted key after a nested one", "{\"o\":{\"s\":\"in\",\"n\":7},\"s\":\"out\",\"n\":2}"},
        {"error after a wanted key", "{\"s\":\"a\",\"n\":1,\"x\":tru}"},
        {"number at the end", "{\"s\":\"a\",\"n\":12345678901}"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        fields_agree(rows[i].name, rows[i].text);
    /* a control character, a quote or a backslash anywhere in a word of
     * the 8-byte string scan: found at its own offset */
    bool ctl_ok = true, esc_ok = true;
    for (size_t at = 0; at < 20; at++) {
        char text[64], buf2[64], err2[128], want[96];
        struct jsonx_field g = {.key = "s"};
        snprintf(text, sizeof text, "{\"s\":\"%s\"}", "abcdefghijklmnopqrst");
        text[6 + at] = '\x01';
        snprintf(want, sizeof want, "invalid JSON at offset %zu: control character in string",
                 6 + at);
        if (jsonx_object_fields(text, strlen(text), &g, 1, buf2, sizeof buf2, err2, sizeof err2) !=
                -1 ||
            strcmp(err2, want) != 0)
            ctl_ok = false;
        char plain[24] = "abcdefghijklmnopqrst";
        plain[at] = '"';
        snprintf(text, sizeof text, "{\"s\":\"%.*s\\%s\"}", (int)at, plain, plain + at);
        if (jsonx_object_fields(text, strlen(text), &g, 1, buf2, sizeof buf2, err2, sizeof err2) !=
                0 ||
            g.kind != JSONX_STRING || strcmp(g.str, plain) != 0)
            esc_ok = false;
    }
    CHECK(ctl_ok, "fields: a control character at every place in a word is an error at its offset");
    CHECK(esc_ok, "fields: an escaped quote at every place in a word");
    /* strings go to buf, which must be larger than the text */
    char buf[8], err[128];
    struct jsonx_field f = {.key = "s"};
    CHECK_INT(jsonx_object_fields("{\"s\":\"ab\"}", 10, &f, 1, buf, 10, err, sizeof err), -1,
              "buf too small");
    CHECK_INT(jsonx_object_fields("{\"s\":\"ab\"}", 7, &f, 1, buf, 8, err, sizeof err), -1,
              "truncated text");
}

int main(void)
{
    test_object_fields();
    test_parse_table();
    test_depth();
    test_parse_misc();
    test_get_string();
    test_get_int();
    test_check_keys();
    test_serialise();
    return test_done();
}
