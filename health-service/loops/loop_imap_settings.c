/* loop_imap_settings.c - the IMAP FeedbackLoop's settings (part of the
 * loop in loop_imap.c): checks a domain's JSON object and fills a struct
 * imap_loop.
 *
 * Settings (a JSON object; unknown fields and wrong types are errors that
 * name the field): host (required), port (993 for tls, else 143), tls
 * ("none" | "starttls" | "tls", default "tls"; "none" only for a loopback
 * host: localhost, 127.0.0.0/8, ::1), user (required), exactly one of
 * password, password_file (LOGIN) and oauth2_token_file (SASL XOAUTH2; the
 * access token, printable ASCII without spaces), inbox (default "INBOX"),
 * spam (optional: without it the folder is discovered at connect, see
 * loop_imap_conn.c), ca_file (optional PEM bundle; default the system
 * trust store), timeout_ms (default 10000: bounds the TCP connect, the TLS
 * handshake and every wait for the server), engage (optional object:
 * rescue, mark_read, flag, each true or false, default false).
 *
 * password_file and oauth2_token_file are kept as paths: read here once so
 * that a bad file is reported when the settings load, and read again at
 * each connect (imap_read_secret), so a rotated password or a refreshed
 * token needs no restart. Each file: one line (one trailing LF/CRLF
 * stripped).
 *
 * The CA bundle is loaded here, at create time, into the loop's
 * X509_STORE. No secret is put in an error message; every buffer that held
 * one is wiped before it is freed.
 *
 * Owns nothing: every field it sets belongs to the loop, freed (and the
 * password wiped) by loop_imap.c, also after a failure half-way.
 * Threads: called by create() only, in the creating thread.
 */
#include "loop_imap_int.h"
#include "errbuf.h"

#include "config.h"
#include "fileio.h"
#include "jsonx.h"
#include "xalloc.h"

#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

const char *const imap_tls_names[] = {"none", "starttls", "tls", NULL};

#define DEFAULT_TIMEOUT_MS 10000
#define MAX_PASSWORD 1024
#define MAX_TOKEN 16384 /* Gmail's and Microsoft's access tokens: 2-4 KB */

/* has_ctl - s holds a byte that cannot go into an IMAP quoted string */
static bool has_ctl(const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7f)
            return true;
    }
    return false;
}

/* get_name - optional string setting without control bytes; *out is a
 * heap copy or NULL when absent */
static int get_name(json_object *o, const char *key, bool required, size_t maxlen, char **out,
                    char *err, size_t errlen)
{
    const char *s;
    *out = NULL;
    if (jsonx_get_string(o, key, required, maxlen, &s, err, errlen) < 0)
        return -1;
    if (!s)
        return 0;
    if (s[0] == '\0') {
        errbuf_set(err, errlen, "field '%s' must not be empty", key);
        return -1;
    }
    if (has_ctl(s)) {
        errbuf_set(err, errlen, "field '%s' must not contain control characters", key);
        return -1;
    }
    *out = xstrdup(s);
    return 0;
}

/* imap_setting_name - get_name for the bounce mailbox's own settings */
int imap_setting_name(json_object *o, const char *key, bool required, size_t maxlen, char **out,
                      char *err, size_t errlen)
{
    return get_name(o, key, required, maxlen, out, err, errlen);
}

/* token_ok - an access token: printable ASCII, no spaces (it goes into
 * the SASL XOAUTH2 string between \1 separators) */
static bool token_ok(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] <= 0x20 || s[i] >= 0x7f)
            return false;
    }
    return true;
}

/* read_secret_file - field's file (password_file or oauth2_token_file):
 * its one line, minus the LF/CRLF */
static int read_secret_file(const char *field, const char *path, char **out, char *err,
                            size_t errlen)
{
    char what[64];
    size_t len;
    bool token = strcmp(field, "oauth2_token_file") == 0;
    size_t max = token ? MAX_TOKEN : MAX_PASSWORD;

    snprintf(what, sizeof what, "field '%s'", field);
    if (file_read_small(what, path, max + 2, true, out, &len, err, errlen) != 0)
        return -1;
    const char *why = len == 0    ? "is empty"
                      : len > max ? "is too long"
                      : memchr(*out, '\n', len) || memchr(*out, '\r', len)
                          ? "holds more than one line"
                      : token && !token_ok(*out, len) ? "holds a byte that is not printable ASCII "
                                                        "or a space: not an access token"
                                                      : NULL;
    if (!why)
        return 0;
    errbuf_set(err, errlen, "field '%s': '%s' %s", field, path, why);
    explicit_bzero(*out, len);
    free(*out);
    *out = NULL;
    return -1;
}

/* imap_read_secret - the secret for a connect (see loop_imap_int.h) */
int imap_read_secret(const struct imap_loop *l, char **out, struct imap_secret_id *id, char *err,
                     size_t errlen)
{
    const char *field = l->oauth2_token_file ? "oauth2_token_file" : "password_file";
    const char *path = l->oauth2_token_file ? l->oauth2_token_file : l->password_file;
    struct stat st;

    *out = NULL;
    if (id)
        *id = (struct imap_secret_id){0};
    if (!path) {
        *out = xstrdup(l->password ? l->password : "");
        return 0;
    }
    /* before the read: a rewrite in between shows as a change later */
    if (id && stat(path, &st) == 0)
        *id = (struct imap_secret_id){true,
                                      (uint64_t)st.st_dev,
                                      (uint64_t)st.st_ino,
                                      (int64_t)st.st_size,
                                      (int64_t)st.st_mtim.tv_sec,
                                      (int64_t)st.st_mtim.tv_nsec};
    return read_secret_file(field, path, out, err, errlen);
}

/* parse_engage - the optional "engage" object into l->engage_* */
static int parse_engage(struct imap_loop *l, json_object *o, char *err, size_t errlen)
{
    static const char *const keys[] = {"rescue", "mark_read", "flag", NULL};
    bool *const dst[] = {&l->engage_rescue, &l->engage_mark_read, &l->engage_flag};
    json_object *e, *v;
    char sub[160];

    if (!json_object_object_get_ex(o, "engage", &e))
        return 0;
    if (!json_object_is_type(e, json_type_object)) {
        errbuf_set(err, errlen, "field 'engage' must be an object with rescue, mark_read and flag");
        return -1;
    }
    if (jsonx_check_keys(e, keys, sub, sizeof sub) < 0) {
        errbuf_set(err, errlen, "field 'engage': %s (rescue, mark_read, flag)", sub);
        return -1;
    }
    for (size_t i = 0; keys[i]; i++) {
        if (!json_object_object_get_ex(e, keys[i], &v))
            continue;
        if (!json_object_is_type(v, json_type_boolean)) {
            errbuf_set(err, errlen, "field 'engage.%s' must be true or false", keys[i]);
            return -1;
        }
        *dst[i] = json_object_get_boolean(v);
    }
    return 0;
}

/* imap_parse_settings - the settings object into l (see loop_imap_int.h) */
int imap_parse_settings(struct imap_loop *l, json_object *o, char *err, size_t errlen)
{
    static const char *const keys[] = {
        "loop",  "host", "port",    "tls",        "user",   "password",          "password_file",
        "inbox", "spam", "ca_file", "timeout_ms", "engage", "oauth2_token_file", NULL};
    const char *s;
    int64_t v;

    if (!o || !json_object_is_type(o, json_type_object)) {
        errbuf_set(err, errlen, "settings must be an object with host, user and password");
        return -1;
    }
    if (jsonx_check_keys(o, keys, err, errlen) < 0)
        return -1;
    if (get_name(o, "host", true, 253, &l->host, err, errlen) < 0)
        return -1;
    struct in6_addr a6;
    l->host_is_ip = inet_pton(AF_INET, l->host, &a6) == 1 || inet_pton(AF_INET6, l->host, &a6) == 1;

    if (jsonx_get_string(o, "tls", false, 16, &s, err, errlen) < 0)
        return -1;
    l->tls = IMAP_TLS_IMPLICIT;
    if (s) {
        int i = 0;
        while (imap_tls_names[i] && strcmp(imap_tls_names[i], s) != 0)
            i++;
        if (!imap_tls_names[i]) {
            errbuf_set(err, errlen, "field 'tls' must be \"none\", \"starttls\" or \"tls\"");
            return -1;
        }
        l->tls = (enum imap_tls)i;
    }
    v = l->tls == IMAP_TLS_IMPLICIT ? 993 : 143;
    if (jsonx_get_int(o, "port", false, 1, 65535, &v, NULL, err, errlen) < 0)
        return -1;
    l->port = (uint16_t)v;

    if (get_name(o, "user", true, 320, &l->user, err, errlen) < 0)
        return -1;
    const char *pw, *pwfile, *tokfile;
    if (jsonx_get_string(o, "password", false, MAX_PASSWORD, &pw, err, errlen) < 0 ||
        jsonx_get_string(o, "password_file", false, 4096, &pwfile, err, errlen) < 0 ||
        jsonx_get_string(o, "oauth2_token_file", false, 4096, &tokfile, err, errlen) < 0)
        return -1;
    if ((pw != NULL) + (pwfile != NULL) + (tokfile != NULL) != 1) {
        errbuf_set(err, errlen,
                   "exactly one of the fields 'password' and 'password_file' (or "
                   "'oauth2_token_file') is needed");
        return -1;
    }
    if (pw) {
        if (pw[0] == '\0' || strchr(pw, '\r') || strchr(pw, '\n')) {
            errbuf_set(err, errlen, "field 'password' must be one non-empty line");
            return -1;
        }
        l->password = xstrdup(pw);
    } else {
        /* the file is checked now and read again at each connect */
        const char *field = pwfile ? "password_file" : "oauth2_token_file";
        const char *path = pwfile ? pwfile : tokfile;
        char *secret = NULL;
        if (path[0] == '\0') {
            errbuf_set(err, errlen, "field '%s' must not be empty", field);
            return -1;
        }
        if (read_secret_file(field, path, &secret, err, errlen) < 0)
            return -1;
        explicit_bzero(secret, strlen(secret));
        free(secret);
        *(pwfile ? &l->password_file : &l->oauth2_token_file) = xstrdup(path);
    }
    if (parse_engage(l, o, err, errlen) < 0)
        return -1;

    if (get_name(o, "inbox", false, 255, &l->inbox, err, errlen) < 0)
        return -1;
    if (!l->inbox)
        l->inbox = xstrdup("INBOX");
    if (get_name(o, "spam", false, 255, &l->spam_conf, err, errlen) < 0)
        return -1;

    v = DEFAULT_TIMEOUT_MS;
    if (jsonx_get_int(o, "timeout_ms", false, 100, 600000, &v, NULL, err, errlen) < 0)
        return -1;
    l->timeout_ms = (int)v;

    if (jsonx_get_string(o, "ca_file", false, 4096, &s, err, errlen) < 0)
        return -1;
    if (s && l->tls == IMAP_TLS_NONE) {
        errbuf_set(err, errlen, "field 'ca_file' needs tls \"starttls\" or \"tls\"");
        return -1;
    }
    if (l->tls != IMAP_TLS_NONE) {
        l->store = X509_STORE_new();
        if (!l->store) {
            errbuf_set(err, errlen, "cannot create a certificate store");
            return -1;
        }
        if (s) {
            if (s[0] == '\0' || X509_STORE_load_file(l->store, s) != 1) {
                ERR_clear_error();
                errbuf_set(err, errlen, "field 'ca_file': cannot load certificates from '%s'", s);
                return -1;
            }
            l->ca_file = xstrdup(s);
        } else if (X509_STORE_set_default_paths(l->store) != 1) {
            ERR_clear_error();
            errbuf_set(err, errlen, "cannot load the system trust store");
            return -1;
        }
    }
    /* LOGIN and XOAUTH2 send the secret as it is: never unencrypted off
     * the machine */
    if (l->tls == IMAP_TLS_NONE && !config_host_is_loopback(l->host)) {
        errbuf_set(err, errlen,
                   "field 'tls': \"none\" would send the %s in clear text to '%s', which is "
                   "not a loopback host; use \"starttls\" or \"tls\"",
                   l->oauth2_token_file ? "access token" : "password", l->host);
        return -1;
    }
    return 0;
}
