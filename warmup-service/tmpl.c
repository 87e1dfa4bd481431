/* tmpl.c - placeholders: parsing, filling, checking (tmpl.h). */
#include "tmpl.h"
#include "buf.h"
#include "xalloc.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* skip_blank / skip_key - p past spaces and tabs / past key octets
 * (strspn with a set builds its table on every call) */
static const char *skip_blank(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

static const char *skip_key(const char *p)
{
    while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
           *p == '_' || *p == '-' || *p == '.')
        p++;
    return p;
}

/* placeholder - p starts "{{": true when a placeholder starts there, its
 * key into key[TMPL_KEY_MAX + 1] and *end past the closing braces */
static bool placeholder(const char *p, char *key, const char **end)
{
    const char *k = skip_blank(p + 2), *q = skip_key(k);
    size_t n = (size_t)(q - k);
    q = skip_blank(q);
    if (n == 0 || n > TMPL_KEY_MAX || q[0] != '}' || q[1] != '}')
        return false;
    memcpy(key, k, n);
    key[n] = '\0';
    *end = q + 2;
    return true;
}

bool tmpl_key_ok(const char *key)
{
    size_t n = strlen(key);
    return n > 0 && n <= TMPL_KEY_MAX && *skip_key(key) == '\0';
}

bool tmpl_builtin(const char *key)
{
    return strcmp(key, "name") == 0 || strcmp(key, "email_id") == 0;
}

/* scalar - the text of a usable JSON value (a string as is, a number or
 * a boolean as JSON), NULL for null, an object, an array or no value */
static const char *scalar(const struct json_object *o, const char *key)
{
    json_object *v = NULL;
    if (!o || !json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, key, &v) ||
        !v)
        return NULL;
    switch (json_object_get_type(v)) {
    case json_type_string:
        return json_object_get_string(v);
    case json_type_int:
    case json_type_double:
    case json_type_boolean:
        return json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
    default:
        return NULL;
    }
}

/* value - key's value in v, NULL when it has none */
static const char *value(const struct tmpl_vars *v, const char *key)
{
    if (strcmp(key, "name") == 0)
        return v->name ? v->name : "";
    if (strcmp(key, "email_id") == 0)
        return v->address ? v->address : "";
    const char *s = scalar(v->data, key);
    return s ? s : scalar(v->defaults, key);
}

/* put_value - a value, HTML-escaped when asked; -1 when the buffer's cap
 * is reached (it is then empty) */
static int put_value(struct buf *b, const char *v, bool html)
{
    if (!html)
        return buf_append(b, v, strlen(v));
    for (const char *p = v; *p; p++) {
        const char *e = NULL;
        switch (*p) {
        case '&':
            e = "&amp;";
            break;
        case '<':
            e = "&lt;";
            break;
        case '>':
            e = "&gt;";
            break;
        case '"':
            e = "&quot;";
            break;
        case '\'':
            e = "&#39;";
            break;
        }
        size_t run = strcspn(p, "&<>\"'");
        if (e) {
            if (buf_append(b, e, strlen(e)) != 0)
                return -1;
        } else {
            if (buf_append(b, p, run) != 0)
                return -1;
            p += run - 1;
        }
    }
    return 0;
}

/* each - call fn(arg, key, start, end) for each placeholder of text in
 * order; stops when fn returns non-zero and returns that */
static int each(const char *text,
                int (*fn)(void *arg, const char *key, const char *start, const char *end),
                void *arg)
{
    char key[TMPL_KEY_MAX + 1];
    const char *p = text ? text : "", *end = NULL;
    while ((p = strstr(p, "{{")) != NULL) {
        if (!placeholder(p, key, &end)) {
            p++; /* "{{{name}}}" fills too */
            continue;
        }
        int rc = fn(arg, key, p, end);
        if (rc)
            return rc;
        p = end;
    }
    return 0;
}

struct fill_ctx {
    const struct tmpl_vars *v;
    bool html;
    struct buf b;
    const char *lit; /* the text not yet copied */
};

static int fill_one(void *arg, const char *key, const char *start, const char *end)
{
    struct fill_ctx *f = arg;
    const char *val = value(f->v, key);
    if (!val)
        return 0; /* copied as written, with the text around it */
    if (buf_append(&f->b, f->lit, (size_t)(start - f->lit)) != 0 ||
        put_value(&f->b, val, f->html) != 0)
        return -1;
    f->lit = end;
    return 0;
}

char *tmpl_fill(const char *text, const struct tmpl_vars *v, bool html)
{
    struct fill_ctx f = {.v = v, .html = html, .lit = text ? text : ""};
    buf_init(&f.b, TMPL_FILLED_MAX);
    size_t want = strlen(f.lit) + 256; /* the text and a few values: no regrowth */
    buf_reserve(&f.b, want < TMPL_FILLED_MAX ? want : TMPL_FILLED_MAX);
    if (each(f.lit, fill_one, &f) != 0 || buf_append(&f.b, f.lit, strlen(f.lit)) != 0)
        return NULL; /* over the cap: the buffer is already freed */
    return buf_steal(&f.b);
}

struct keys_ctx {
    void (*fn)(void *arg, const char *key);
    void *arg;
    char **seen; /* the distinct keys so far */
    size_t n, cap;
};

static int keys_one(void *arg, const char *key, const char *start, const char *end)
{
    (void)start;
    (void)end;
    struct keys_ctx *k = arg;
    for (size_t i = 0; i < k->n; i++)
        if (strcmp(k->seen[i], key) == 0)
            return 0;
    if (k->n == k->cap) {
        k->cap = k->cap ? 2 * k->cap : 8;
        k->seen = xreallocarray(k->seen, k->cap, sizeof *k->seen);
    }
    k->seen[k->n++] = xstrdup(key);
    if (k->fn)
        k->fn(k->arg, key);
    return 0;
}

size_t tmpl_keys(const char *text, void (*fn)(void *arg, const char *key), void *arg)
{
    struct keys_ctx k = {.fn = fn, .arg = arg};
    each(text, keys_one, &k);
    for (size_t i = 0; i < k.n; i++)
        free(k.seen[i]);
    free(k.seen);
    return k.n;
}

struct missing_ctx {
    const struct tmpl_vars *v;
    char *key;
    size_t len;
};

static int missing_one(void *arg, const char *key, const char *start, const char *end)
{
    (void)start;
    (void)end;
    struct missing_ctx *m = arg;
    if (value(m->v, key))
        return 0;
    snprintf(m->key, m->len, "%s", key);
    return 1;
}

bool tmpl_missing(const char *text, const struct tmpl_vars *v, char *key, size_t len)
{
    struct missing_ctx m = {.v = v, .key = key, .len = len};
    return each(text, missing_one, &m) == 1;
}

struct worst_ctx {
    size_t n, grow, name_max, email_max, value_max;
};

static int worst_one(void *arg, const char *key, const char *start, const char *end)
{
    struct worst_ctx *w = arg;
    size_t vmax = strcmp(key, "name") == 0       ? w->name_max
                  : strcmp(key, "email_id") == 0 ? w->email_max
                                                 : w->value_max;
    size_t own = (size_t)(end - start);
    if (vmax * w->grow > own)
        w->n += vmax * w->grow - own;
    return 0;
}

size_t tmpl_worst(const char *text, bool html, size_t name_max, size_t email_max, size_t value_max)
{
    struct worst_ctx w = {.n = text ? strlen(text) : 0,
                          .grow = html ? 6 : 1, /* "&quot;" for each octet at worst */
                          .name_max = name_max,
                          .email_max = email_max,
                          .value_max = value_max};
    each(text, worst_one, &w);
    return w.n;
}

char *tmpl_escape_html(const char *s)
{
    struct buf b;
    buf_init(&b, SIZE_MAX / 2);
    if (put_value(&b, s ? s : "", true) != 0 || buf_append(&b, "", 0) != 0)
        return NULL;
    return buf_steal(&b);
}
