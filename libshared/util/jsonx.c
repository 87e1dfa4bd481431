/* jsonx.c - strict JSON parsing and field getters over json-c.
 *
 * json-c 0.16 in JSON_TOKENER_STRICT mode still accepts single-quoted keys,
 * NaN/Infinity, raw control characters in strings, "1.", overlong and
 * surrogate UTF-8, numbers out of range (clamped or infinite) and a
 * "\u0000" in a key (silently truncated). So the text is first checked
 * against RFC 8259 (plus I-JSON's no lone surrogates, RFC 7493) by a small
 * validator that reports the byte offset (and caps nesting at 32
 * containers); json-c then builds the tree with its own strict, UTF-8 and
 * depth checks as a second line. jsonx_object_fields skips the tree for hot
 * paths: the same validator notes where the wanted top-level members of an
 * object are as it passes them, and they are taken straight from the text.
 * The validator's string scan passes plain bytes 8 at a time.
 * No global state: any thread, one object per thread at a time.
 */
#include "errbuf.h"
#include "jsonx.h"
#include "utf8.h"
#include "xalloc.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSONX_MAX_DEPTH 32
#define JSONX_KEY_ECHO 64

struct scan {
    const unsigned char *p;
    size_t len;
    size_t pos;
    int depth;
    const char *err; /* static text */
    /* jsonx_object_fields: the members of the root object to note (each
     * one's last value text in str/len) and room for an escaped key */
    struct jsonx_field *fields;
    size_t nf;
    char *keybuf;
};

static struct jsonx_field *capture_key(struct scan *s, size_t a, size_t b);

static int scan_value(struct scan *s);

/* plain_run - how many bytes from p (at most n) a string scan can pass
 * over: none is '"', '\\' or a control character (bytes >= 0x80 are
 * plain: the text was checked as UTF-8). Eight bytes at a time, by the
 * "has a byte less than" bit trick: (x - 0x01 * n) & ~x & 0x80 per byte is
 * non-zero iff some byte of x is below n (n <= 0x80). */
static size_t plain_run(const unsigned char *p, size_t n)
{
    const uint64_t ones = UINT64_C(0x0101010101010101), high = UINT64_C(0x8080808080808080);
    size_t i = 0;
    for (uint64_t w; n - i >= 8; i += 8) {
        memcpy(&w, p + i, 8);
        uint64_t q = w ^ (ones * '"'), b = w ^ (ones * '\\');
        if (((w - ones * 0x20) & ~w & high) | ((q - ones) & ~q & high) | ((b - ones) & ~b & high))
            break;
    }
    while (i < n && p[i] >= 0x20 && p[i] != '"' && p[i] != '\\')
        i++;
    return i;
}

static int scan_fail(struct scan *s, const char *msg)
{
    s->err = msg;
    return -1;
}

static void scan_ws(struct scan *s)
{
    while (s->pos < s->len) {
        unsigned char c = s->p[s->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        s->pos++;
    }
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* scan_u4 - the 4 hex digits at pos; pos moves past them */
static int scan_u4(struct scan *s, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int h = s->pos < s->len ? hexval(s->p[s->pos]) : -1;
        if (h < 0)
            return -1;
        v = v * 16 + (unsigned)h;
        s->pos++;
    }
    *out = v;
    return 0;
}

/* scan_string - a string starting at the quote; is_key rejects "\u0000",
 * which json-c would silently cut the key at */
static int scan_string(struct scan *s, bool is_key)
{
    s->pos++; /* opening quote */
    for (;;) {
        s->pos += plain_run(s->p + s->pos, s->len - s->pos);
        if (s->pos >= s->len)
            return scan_fail(s, "unterminated string");
        unsigned char c = s->p[s->pos];
        if (c == '"') {
            s->pos++;
            return 0;
        }
        if (c < 0x20)
            return scan_fail(s, "control character in string");
        size_t esc = s->pos++; /* escape errors point at the backslash */
        c = s->pos < s->len ? s->p[s->pos] : 0;
        if (c == 0 || !strchr("\"\\/bfnrtu", c)) {
            s->pos = esc;
            return scan_fail(s, "invalid escape in string");
        }
        s->pos++;
        if (c != 'u')
            continue;
        unsigned u, u2 = 0;
        if (scan_u4(s, &u) < 0) {
            s->pos = esc;
            return scan_fail(s, "invalid \\u escape");
        }
        if (u == 0 && is_key) {
            s->pos = esc;
            return scan_fail(s, "NUL character in object key");
        }
        if (u >= 0xD800 && u <= 0xDBFF) { /* must be followed by a low surrogate */
            if (s->len - s->pos >= 2 && s->p[s->pos] == '\\' && s->p[s->pos + 1] == 'u') {
                s->pos += 2;
                if (scan_u4(s, &u2) < 0) {
                    s->pos = esc;
                    return scan_fail(s, "invalid \\u escape");
                }
            }
            if (u2 < 0xDC00 || u2 > 0xDFFF) {
                s->pos = esc;
                return scan_fail(s, "lone surrogate in \\u escape");
            }
        } else if (u >= 0xDC00 && u <= 0xDFFF) {
            s->pos = esc;
            return scan_fail(s, "lone surrogate in \\u escape");
        }
    }
}

static size_t scan_digits(struct scan *s)
{
    size_t start = s->pos;
    while (s->pos < s->len && s->p[s->pos] >= '0' && s->p[s->pos] <= '9')
        s->pos++;
    return s->pos - start;
}

/* scan_number - RFC 8259 number; integers must fit int64_t and other
 * numbers a finite double, since json-c would clamp or make them infinite */
static int scan_number(struct scan *s)
{
    size_t start = s->pos;
    bool integer = true;
    if (s->p[s->pos] == '-')
        s->pos++;
    if (s->pos < s->len && s->p[s->pos] == '0')
        s->pos++;
    else if (scan_digits(s) == 0)
        return scan_fail(s, "invalid number");
    if (s->pos < s->len && s->p[s->pos] == '.') {
        integer = false;
        s->pos++;
        if (scan_digits(s) == 0)
            return scan_fail(s, "invalid number");
    }
    if (s->pos < s->len && (s->p[s->pos] == 'e' || s->p[s->pos] == 'E')) {
        integer = false;
        s->pos++;
        if (s->pos < s->len && (s->p[s->pos] == '+' || s->p[s->pos] == '-'))
            s->pos++;
        if (scan_digits(s) == 0)
            return scan_fail(s, "invalid number");
    }
    size_t n = s->pos - start;
    char small[24];
    char *copy = n < sizeof small ? small : xmalloc(n + 1);
    memcpy(copy, s->p + start, n);
    copy[n] = '\0';
    int rc = 0;
    errno = 0;
    if (integer) {
        (void)strtoll(copy, NULL, 10);
        if (errno == ERANGE)
            rc = -1;
    } else if (isinf(strtod(copy, NULL))) {
        rc = -1;
    }
    if (copy != small)
        free(copy);
    if (rc < 0) {
        s->pos = start;
        return scan_fail(s, "number out of range");
    }
    return 0;
}

static int scan_literal(struct scan *s, const char *word)
{
    size_t n = strlen(word);
    if (s->len - s->pos < n || memcmp(s->p + s->pos, word, n) != 0)
        return scan_fail(s, "unexpected character");
    s->pos += n;
    return 0;
}

/* scan_container - array or object starting at its bracket */
static int scan_container(struct scan *s)
{
    bool object = s->p[s->pos] == '{';
    unsigned char close = object ? '}' : ']';
    struct jsonx_field *hit = NULL;
    if (++s->depth > JSONX_MAX_DEPTH)
        return scan_fail(s, "nesting too deep");
    s->pos++;
    scan_ws(s);
    if (s->pos < s->len && s->p[s->pos] == close) {
        s->pos++;
        s->depth--;
        return 0;
    }
    for (;;) {
        if (object) {
            if (s->pos >= s->len)
                return scan_fail(s, "unexpected end of input");
            if (s->p[s->pos] != '"')
                return scan_fail(s, "expected a string key");
            size_t key = s->pos;
            if (scan_string(s, true) < 0)
                return -1;
            if (s->fields && s->depth == 1)
                hit = capture_key(s, key, s->pos);
            scan_ws(s);
            if (s->pos >= s->len || s->p[s->pos] != ':')
                return scan_fail(s, s->pos >= s->len ? "unexpected end of input" : "expected ':'");
            s->pos++;
            scan_ws(s);
        }
        size_t value = s->pos;
        if (scan_value(s) < 0)
            return -1;
        if (hit) {                   /* the last value of a key counts, as in json-c */
            hit->kind = JSONX_OTHER; /* seen; jsonx_object_fields says what */
            hit->str = (const char *)s->p + value;
            hit->len = s->pos - value;
            hit = NULL;
        }
        scan_ws(s);
        if (s->pos >= s->len)
            return scan_fail(s, "unexpected end of input");
        if (s->p[s->pos] == close) {
            s->pos++;
            s->depth--;
            return 0;
        }
        if (s->p[s->pos] != ',')
            return scan_fail(s, object ? "expected ',' or '}'" : "expected ',' or ']'");
        s->pos++;
        scan_ws(s);
    }
}

static int scan_value(struct scan *s)
{
    if (s->pos >= s->len)
        return scan_fail(s, "unexpected end of input");
    unsigned char c = s->p[s->pos];
    switch (c) {
    case '{':
    case '[':
        return scan_container(s);
    case '"':
        return scan_string(s, false);
    case 't':
        return scan_literal(s, "true");
    case 'f':
        return scan_literal(s, "false");
    case 'n':
        return scan_literal(s, "null");
    default:
        if (c == '-' || (c >= '0' && c <= '9'))
            return scan_number(s);
        return scan_fail(s, "unexpected character");
    }
}

/* jsonx_validate - 0 if text is one strict JSON value, else -1 and *off;
 * fields (nf of them, or NULL) as struct scan says */
static int jsonx_validate(const char *text, size_t len, struct jsonx_field *fields, size_t nf,
                          char *keybuf, size_t *off, const char **msg)
{
    struct scan s = {
        .p = (const unsigned char *)text, .len = len, .fields = fields, .nf = nf, .keybuf = keybuf};
    size_t bad = utf8_check((const char *)s.p, len);
    if (bad < len) {
        *off = bad;
        *msg = "invalid UTF-8";
        return -1;
    }
    scan_ws(&s);
    if (s.pos == len) {
        *off = s.pos;
        *msg = len ? "no value, only whitespace" : "empty input";
        return -1;
    }
    if (scan_value(&s) == 0) {
        scan_ws(&s);
        if (s.pos == len)
            return 0;
        s.err = "unexpected data after the value";
    }
    *off = s.pos;
    *msg = s.err;
    return -1;
}

int jsonx_parse(const char *text, size_t len, json_object **out, char *errbuf, size_t errlen)
{
    size_t off;
    const char *msg;
    json_object *o = NULL;
    json_tokener *tok = NULL;
    int rc = -1;

    *out = NULL;
    if (!text)
        text = "";
    if (len >= INT_MAX) {
        errbuf_set(errbuf, errlen, "invalid JSON at offset 0: input too large");
        goto out;
    }
    if (jsonx_validate(text, len, NULL, 0, NULL, &off, &msg) < 0) {
        errbuf_set(errbuf, errlen, "invalid JSON at offset %zu: %s", off, msg);
        goto out;
    }
    /* json-c counts a scalar leaf as a level too ([[1]] needs depth 3):
     * one more keeps "32 nested containers" as the limit, which the
     * validator has already enforced */
    tok = json_tokener_new_ex(JSONX_MAX_DEPTH + 1);
    if (!tok) {
        errbuf_set(errbuf, errlen, "invalid JSON at offset 0: out of memory");
        goto out;
    }
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    o = json_tokener_parse_ex(tok, text, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    off = json_tokener_get_parse_end(tok);
    if (!o && jerr == json_tokener_continue && off == len) {
        /* a value with no end of its own (a number): pass the end of input */
        o = json_tokener_parse_ex(tok, "", 1);
        jerr = json_tokener_get_error(tok);
        off = len;
    }
    if (jerr != json_tokener_success) { /* o is NULL for a valid "null" too */
        errbuf_set(errbuf, errlen, "invalid JSON at offset %zu: %s", off,
                   json_tokener_error_desc(jerr));
        goto out;
    }
    for (; off < len; off++) {
        if (!strchr(" \t\r\n", text[off])) {
            errbuf_set(errbuf, errlen,
                       "invalid JSON at offset %zu: unexpected data after the value", off);
            goto out;
        }
    }
    *out = o;
    o = NULL;
    rc = 0;
out:
    json_object_put(o);
    if (tok)
        json_tokener_free(tok);
    return rc;
}

int jsonx_parse_object(const char *text, size_t len, json_object **out, char *errbuf, size_t errlen)
{
    json_object *o;
    if (jsonx_parse(text, len, &o, errbuf, errlen) < 0) {
        *out = NULL;
        return -1;
    }
    if (!json_object_is_type(o, json_type_object)) {
        errbuf_set(errbuf, errlen, "JSON body must be an object, got %s",
                   json_type_to_name(json_object_get_type(o)));
        json_object_put(o);
        *out = NULL;
        return -1;
    }
    *out = o;
    return 0;
}

/* --- flat field extraction (jsonx_object_fields) ------------------------
 * Runs on text the validator accepted, so it skips checks it has made. */

/* skip_ws - pos past whitespace */
static size_t skip_ws(const char *t, size_t len, size_t pos)
{
    while (pos < len && (t[pos] == ' ' || t[pos] == '\t' || t[pos] == '\n' || t[pos] == '\r'))
        pos++;
    return pos;
}

/* scalar_end - pos just past the number or literal starting at pos */
static size_t scalar_end(const char *t, size_t len, size_t pos)
{
    while (pos < len) {
        char c = t[pos];
        if (c == ',' || c == ']' || c == '}' || c == ' ' || c == '\t' || c == '\r' || c == '\n')
            break;
        pos++;
    }
    return pos;
}

static size_t put_utf8(char *out, unsigned cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static unsigned hex4(const char *p)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++)
        v = v * 16 + (unsigned)hexval((unsigned char)p[i]);
    return v;
}

/* unescape - the string whose quotes are at a and b - 1 into out (which
 * has room: the text is never shorter); its length, out NUL-terminated */
static size_t unescape(const char *t, size_t a, size_t b, char *out)
{
    size_t n = 0;
    if (!memchr(t + a + 1, '\\', b - a - 2)) { /* the usual case */
        n = b - a - 2;
        memcpy(out, t + a + 1, n);
        out[n] = '\0';
        return n;
    }
    for (size_t i = a + 1; i < b - 1; i++) {
        if (t[i] != '\\') {
            out[n++] = t[i];
            continue;
        }
        char c = t[++i];
        switch (c) {
        case 'b':
            out[n++] = '\b';
            break;
        case 'f':
            out[n++] = '\f';
            break;
        case 'n':
            out[n++] = '\n';
            break;
        case 'r':
            out[n++] = '\r';
            break;
        case 't':
            out[n++] = '\t';
            break;
        case 'u': {
            unsigned cp = hex4(t + i + 1);
            i += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF) { /* the validator saw the low half */
                cp = 0x10000 + ((cp - 0xD800) << 10) + (hex4(t + i + 3) - 0xDC00);
                i += 6;
            }
            n += put_utf8(out + n, cp);
            break;
        }
        default:
            out[n++] = c; /* " \ / */
        }
    }
    out[n] = '\0';
    return n;
}

/* is_int - the validated number t[0..n) has no fraction and no exponent */
static bool is_int(const char *t, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (t[i] == '.' || t[i] == 'e' || t[i] == 'E')
            return false;
    return true;
}

/* root_type - json-c's name for the type of the value at pos */
static const char *root_type(const char *t, size_t len, size_t pos)
{
    switch (t[pos]) {
    case '[':
        return "array";
    case '"':
        return "string";
    case 't':
    case 'f':
        return "boolean";
    case 'n':
        return "null";
    default:
        break;
    }
    return is_int(t + pos, scalar_end(t, len, pos) - pos) ? "int" : "double";
}

/* capture_key - the field whose name is the key string at [a, b) of the
 * root object (quotes included), or NULL */
static struct jsonx_field *capture_key(struct scan *s, size_t a, size_t b)
{
    const char *t = (const char *)s->p, *key = t + a + 1;
    size_t klen = b - a - 2;
    if (memchr(key, '\\', klen)) { /* compare unescaped: in keybuf, not kept */
        klen = unescape(t, a, b, s->keybuf);
        key = s->keybuf;
    }
    for (size_t i = 0; i < s->nf; i++) {
        const char *k = s->fields[i].key;
        if ((klen == 0 || k[0] == key[0]) && strncmp(k, key, klen) == 0 && k[klen] == '\0')
            return &s->fields[i];
    }
    return NULL;
}

int jsonx_object_fields(const char *text, size_t len, struct jsonx_field *f, size_t nf, char *buf,
                        size_t buflen, char *errbuf, size_t errlen)
{
    size_t off, used = 0;
    const char *msg;
    for (size_t i = 0; i < nf; i++)
        f[i].kind = JSONX_ABSENT;
    if (!text)
        text = "";
    if (len >= INT_MAX || buflen <= len) {
        errbuf_set(errbuf, errlen, "invalid JSON at offset 0: input too large");
        return -1;
    }
    /* one pass: the validator notes where the wanted members' values are */
    if (jsonx_validate(text, len, f, nf, buf, &off, &msg) < 0) {
        for (size_t i = 0; i < nf; i++)
            f[i].kind = JSONX_ABSENT;
        errbuf_set(errbuf, errlen, "invalid JSON at offset %zu: %s", off, msg);
        return -1;
    }
    size_t pos = skip_ws(text, len, 0);
    if (text[pos] != '{') {
        errbuf_set(errbuf, errlen, "JSON body must be an object, got %s",
                   root_type(text, len, pos));
        return -1;
    }
    for (size_t i = 0; i < nf; i++) {
        struct jsonx_field *hit = &f[i];
        if (hit->kind == JSONX_ABSENT)
            continue;
        const char *v = hit->str;
        size_t vlen = hit->len;
        char c = v[0];
        if (c == '"') {
            hit->kind = JSONX_STRING;
            hit->str = buf + used;
            hit->len = unescape(v, 0, vlen, buf + used);
            used += hit->len + 1;
        } else if (c == 'n') {
            hit->kind = JSONX_NULL;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            hit->kind = is_int(v, vlen) ? JSONX_INT : JSONX_OTHER;
            if (hit->kind == JSONX_INT) /* in range: the validator checked */
                hit->num = strtoll(v, NULL, 10);
        } else {
            hit->kind = JSONX_OTHER;
        }
    }
    return 0;
}

int jsonx_field_string(const struct jsonx_field *f, bool required, size_t maxlen, const char **out,
                       char *errbuf, size_t errlen)
{
    *out = NULL;
    if (f->kind == JSONX_ABSENT || f->kind == JSONX_NULL) {
        if (!required)
            return 0;
        errbuf_set(errbuf, errlen, "field '%s' is required", f->key);
        return -1;
    }
    if (f->kind != JSONX_STRING) {
        errbuf_set(errbuf, errlen, "field '%s' must be a string", f->key);
        return -1;
    }
    if (memchr(f->str, '\0', f->len)) {
        errbuf_set(errbuf, errlen, "field '%s' must not contain a NUL character", f->key);
        return -1;
    }
    if (f->len > maxlen) {
        errbuf_set(errbuf, errlen, "field '%s' must be at most %zu bytes", f->key, maxlen);
        return -1;
    }
    if (required && f->len == 0) {
        errbuf_set(errbuf, errlen, "field '%s' must not be empty", f->key);
        return -1;
    }
    *out = f->str;
    return 0;
}

int jsonx_field_int(const struct jsonx_field *f, bool required, int64_t min, int64_t max,
                    int64_t *out, char *errbuf, size_t errlen)
{
    if (f->kind == JSONX_ABSENT || f->kind == JSONX_NULL) {
        if (!required)
            return 0;
        errbuf_set(errbuf, errlen, "field '%s' is required", f->key);
        return -1;
    }
    if (f->kind != JSONX_INT || f->num < min || f->num > max) {
        errbuf_set(errbuf, errlen, "field '%s' must be an integer between %" PRId64 " and %" PRId64,
                   f->key, min, max);
        return -1;
    }
    *out = f->num;
    return 0;
}

/* lookup - the value of key in obj, NULL when absent or null; -1 when obj
 * is not an object */
static int lookup(json_object *obj, const char *key, json_object **val, char *errbuf, size_t errlen)
{
    *val = NULL;
    if (!json_object_is_type(obj, json_type_object)) {
        errbuf_set(errbuf, errlen, "JSON body must be an object");
        return -1;
    }
    /* json-c holds a JSON null as a NULL value: absent and null look alike */
    json_object_object_get_ex(obj, key, val);
    return 0;
}

int jsonx_get_string(json_object *obj, const char *key, bool required, size_t maxlen,
                     const char **out, char *errbuf, size_t errlen)
{
    json_object *v;
    *out = NULL;
    if (lookup(obj, key, &v, errbuf, errlen) < 0)
        return -1;
    if (!v) {
        if (!required)
            return 0;
        errbuf_set(errbuf, errlen, "field '%s' is required", key);
        return -1;
    }
    if (!json_object_is_type(v, json_type_string)) {
        errbuf_set(errbuf, errlen, "field '%s' must be a string", key);
        return -1;
    }
    const char *s = json_object_get_string(v);
    int n = json_object_get_string_len(v);
    size_t len = n > 0 ? (size_t)n : 0;
    if (memchr(s, '\0', len)) {
        errbuf_set(errbuf, errlen, "field '%s' must not contain a NUL character", key);
        return -1;
    }
    if (len > maxlen) {
        errbuf_set(errbuf, errlen, "field '%s' must be at most %zu bytes", key, maxlen);
        return -1;
    }
    if (required && len == 0) {
        errbuf_set(errbuf, errlen, "field '%s' must not be empty", key);
        return -1;
    }
    *out = s;
    return 0;
}

int jsonx_get_int(json_object *obj, const char *key, bool required, int64_t min, int64_t max,
                  int64_t *out, bool *present, char *errbuf, size_t errlen)
{
    json_object *v;
    if (present)
        *present = false;
    if (lookup(obj, key, &v, errbuf, errlen) < 0)
        return -1;
    if (!v) {
        if (!required)
            return 0;
        errbuf_set(errbuf, errlen, "field '%s' is required", key);
        return -1;
    }
    bool ok = json_object_is_type(v, json_type_int);
    int64_t n = ok ? json_object_get_int64(v) : 0;
    /* json-c keeps values above INT64_MAX as uint64 and clamps get_int64 */
    if (ok && n == INT64_MAX && json_object_get_uint64(v) > (uint64_t)INT64_MAX)
        ok = false;
    if (!ok || n < min || n > max) {
        errbuf_set(errbuf, errlen, "field '%s' must be an integer between %" PRId64 " and %" PRId64,
                   key, min, max);
        return -1;
    }
    *out = n;
    if (present)
        *present = true;
    return 0;
}

/* echo_key - printable copy of a client-supplied key, cut at a UTF-8
 * character boundary */
static void echo_key(const char *key, char *out, size_t outlen)
{
    size_t n = strlen(key), i;
    bool cut = n > JSONX_KEY_ECHO;
    if (cut) {
        n = JSONX_KEY_ECHO;
        while (n > 0 && ((unsigned char)key[n] & 0xC0) == 0x80)
            n--;
    }
    for (i = 0; i < n && i + 4 < outlen; i++) {
        unsigned char c = (unsigned char)key[i];
        out[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    if (cut && i + 4 <= outlen) {
        memcpy(out + i, "...", 3);
        i += 3;
    }
    out[i] = '\0';
}

int jsonx_check_keys(json_object *obj, const char *const *allowed, char *errbuf, size_t errlen)
{
    char shown[JSONX_KEY_ECHO + 4];
    if (!json_object_is_type(obj, json_type_object)) {
        errbuf_set(errbuf, errlen, "JSON body must be an object");
        return -1;
    }
    json_object_object_foreach(obj, key, val)
    {
        (void)val;
        size_t i = 0;
        while (allowed[i] && strcmp(allowed[i], key) != 0)
            i++;
        if (!allowed[i]) {
            echo_key(key, shown, sizeof shown);
            errbuf_set(errbuf, errlen, "unknown field '%s'", shown);
            return -1;
        }
    }
    return 0;
}

char *jsonx_error_body(const char *code, const char *message)
{
    json_object *root = json_object_new_object();
    json_object *err = json_object_new_object();
    json_object_object_add(err, "code", json_object_new_string(code ? code : ""));
    json_object_object_add(err, "message", json_object_new_string(message ? message : ""));
    json_object_object_add(root, "error", err);
    char *s = jsonx_to_string(root);
    json_object_put(root);
    return s;
}

char *jsonx_to_string(json_object *obj)
{
    const char *s = json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN |
                                                            JSON_C_TO_STRING_NOSLASHESCAPE);
    if (!s) /* json-c only fails on allocation: same policy as xmalloc */
        abort();
    return xstrdup(s);
}
