/* tmpl.h - placeholders in subjects and bodies (DESIGN 9.5).
 *
 * A placeholder is {{key}}, blanks (spaces, tabs) allowed inside the
 * braces: {{ key }}. A key is 1 to TMPL_KEY_MAX octets of letters,
 * digits, '_', '-' and '.'. Anything else between braces is text.
 *
 * Values, first found wins:
 *   - name and email_id: the recipient's name and address, always set;
 *   - the copy's variables: a JSON object (a user's attributes, a
 *     transactional message's data);
 *   - the template's defaults: a JSON object.
 * A JSON string is used as it is, a number or a boolean as its JSON text;
 * null, an object or an array is no value. In html the value is
 * HTML-escaped (& < > " '), so a value cannot inject markup.
 *
 * Checking happens when a send is requested (tmpl_missing, tmpl_keys):
 * a key with neither value nor default is a 400 naming it. Filling never
 * fails on a missing key: it is copied as written (a broadcast's late
 * registrant without the attribute, an old body holding literal braces).
 *
 * Pure functions; any thread.
 */
#ifndef TMPL_H
#define TMPL_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

#define TMPL_KEY_MAX 64
/* the most octets a filled subject, text or html may hold: filling stops
 * there, so a template of placeholders cannot make a worker hold a
 * message many times the request's size */
#define TMPL_FILLED_MAX (2 * 1024 * 1024)

/* the values of one copy; every pointer borrowed, NULL: none */
struct tmpl_vars {
    const char *name;               /* {{name}} */
    const char *address;            /* {{email_id}} */
    const struct json_object *data; /* the copy's variables (an object) */
    const struct json_object *defaults;
};

/* tmpl_fill - text with every placeholder that has a value replaced by
 * it (escaped when html). Caller frees. NULL when the result would exceed
 * TMPL_FILLED_MAX. */
char *tmpl_fill(const char *text, const struct tmpl_vars *v, bool html);

/* tmpl_keys - call fn once per distinct key of text (name and email_id
 * included), in order of first appearance; key is NUL-terminated and
 * borrowed for the call. Returns the number of distinct keys. */
size_t tmpl_keys(const char *text, void (*fn)(void *arg, const char *key), void *arg);

/* tmpl_missing - the first key of text that has no value in v: true and
 * the key in key[len]; false when every placeholder has one */
bool tmpl_missing(const char *text, const struct tmpl_vars *v, char *key, size_t len);

/* tmpl_key_ok - key is a usable placeholder key (1 to TMPL_KEY_MAX of
 * letters, digits, '_', '-', '.') */
bool tmpl_key_ok(const char *key);
/* tmpl_builtin - key is name or email_id (always has a value) */
bool tmpl_builtin(const char *key);

/* tmpl_worst - the largest result of filling text (html: escaped) when
 * each value is at most value_max octets, name name_max and email_id
 * email_max */
size_t tmpl_worst(const char *text, bool html, size_t name_max, size_t email_max, size_t value_max);

/* tmpl_escape_html - s HTML-escaped (& < > " '); caller frees */
char *tmpl_escape_html(const char *s);

#endif
