/* smtp_clients.c - the SmtpClient registry (type name -> ops) and the named
 * clients read from the environment or SMTP_CLIENTS_FILE (the variables
 * and the file format are documented in smtp_clients.h).
 *
 * Adding a client type is one file with its const struct smtp_client_ops
 * and one line in registry[] below (plus its fields in load_entry()).
 * Loading runs on the main thread at start-up; the result is read-only.
 */
#include "errbuf.h"
#include "smtp_clients.h"
#include "buf.h"
#include "config.h"
#include "fileio.h"
#include "jsonx.h"
#include "xalloc.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <netdb.h>
#include <unistd.h>

#define CLIENTS_FILE_MAX ((size_t)1024 * 1024)
#define SECRET_FILE_MAX ((size_t)64 * 1024)
#define CLIENT_NAME_MAX 64
#define CLIENTS_MAX 64
#define TPM_MAX 100000000L
#define TIMEOUT_MIN 10L
#define TIMEOUT_MAX 3600000L

static const struct smtp_client_ops *const registry[] = {
    &smtp_gmail_ops,
    &smtp_mailpit_ops,
    &smtp_custom_ops,
    &smtp_dryrun_ops,
};

const struct smtp_client_ops *smtp_client_ops_find(const char *type)
{
    if (!type)
        return NULL;
    for (size_t i = 0; i < sizeof registry / sizeof registry[0]; i++)
        if (strcasecmp(registry[i]->type, type) == 0)
            return registry[i];
    return NULL;
}

/* the values every client starts from */
struct defaults {
    long tpm, workers, connect_ms, command_ms, message_ms;
    char *helo, *spool_dir;
};

static void sfree(const char *p)
{
    free((void *)p);
}

static char *lower_dup(const char *s)
{
    char *d = xstrdup(s);
    for (char *p = d; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    return d;
}

/* host_ok - a host name or address: 1..255 bytes, no space or control */
static bool host_ok(const char *h)
{
    size_t n = strlen(h);
    if (n == 0 || n > 255)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)h[i] <= 0x20 || h[i] == 0x7f)
            return false;
    return true;
}

/* helo_ok - a name to say in EHLO: an address literal, or a host name
 * with a dot that is not localhost (a bare or local name is spam-scored
 * and refused by some servers) */
static bool helo_ok(const char *h)
{
    size_t n = strlen(h);
    if (!host_ok(h))
        return false;
    if (h[0] == '[')
        return h[n - 1] == ']';
    return strchr(h, '.') && h[0] != '.' && strncasecmp(h, "localhost.", 10) != 0;
}

/* host_fqdn - this host's fully qualified name (gethostname, else its
 * canonical name through the resolver: /etc/hosts first), NULL when it
 * has none that helo_ok accepts */
static char *host_fqdn(void)
{
    char name[256];
    if (gethostname(name, sizeof name) != 0)
        return NULL;
    name[sizeof name - 1] = '\0';
    if (helo_ok(name) && name[0] != '[')
        return xstrdup(name);
    struct addrinfo hints = {.ai_flags = AI_CANONNAME}, *res = NULL;
    char *out = NULL;
    if (name[0] && getaddrinfo(name, NULL, &hints, &res) == 0 && res && res->ai_canonname &&
        helo_ok(res->ai_canonname) && res->ai_canonname[0] != '[')
        out = xstrdup(res->ai_canonname);
    if (res)
        freeaddrinfo(res);
    return out;
}

static bool name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > CLIENT_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == '-'))
            return false;
    }
    return true;
}

/* readable - a CA file must exist and be readable at start-up */
static int readable(const char *what, const char *path, char *errbuf, size_t errlen)
{
    char eb[128];
    if (access(path, R_OK) < 0) {
        errbuf_set(errbuf, errlen, "%s: cannot read '%s': %s", what, path,
                   strerror_r(errno, eb, sizeof eb));
        return -1;
    }
    return 0;
}

/* parse_hostport - "host:port" or "[v6]:port" */
static int parse_hostport(const char *v, char **host, int *port)
{
    const char *colon, *h = v;
    size_t hl;
    if (*v == '[') {
        const char *close = strchr(v, ']');
        if (!close || close[1] != ':')
            return -1;
        h = v + 1;
        hl = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(v, ':');
        if (!colon)
            return -1;
        hl = (size_t)(colon - v);
    }
    const char *p = colon + 1;
    long n = 0;
    if (!*p || strlen(p) > 5)
        return -1;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        n = n * 10 + (*p - '0');
    }
    if (n < 1 || n > 65535 || hl == 0)
        return -1;
    char *hs = xstrndup(h, hl);
    if (!host_ok(hs) || (*v != '[' && strchr(hs, ':'))) {
        free(hs);
        return -1;
    }
    *host = hs;
    *port = (int)n;
    return 0;
}

static void cfg_free(struct smtp_client_cfg *c)
{
    struct smtp_settings *s = &c->s;
    sfree(s->name);
    sfree(s->type);
    sfree(s->host);
    sfree(s->username);
    if (s->password) {
        memset((void *)s->password, 0, strlen(s->password));
        sfree(s->password);
    }
    sfree(s->ca_file);
    sfree(s->helo);
    sfree(s->spool_dir);
    memset(c, 0, sizeof *c);
}

void smtp_clients_cleanup(struct smtp_clients *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        cfg_free(&c->v[i]);
    free(c->v);
    memset(c, 0, sizeof *c);
}

int smtp_clients_find(const struct smtp_clients *c, const char *name)
{
    if (!c || !name)
        return -1;
    for (size_t i = 0; i < c->n; i++)
        if (strcasecmp(c->v[i].s.name, name) == 0)
            return (int)i;
    return -1;
}

/* base_cfg - name, type, ops and the shared defaults */
static void base_cfg(struct smtp_client_cfg *c, const struct smtp_client_ops *ops, const char *name,
                     const struct defaults *d)
{
    c->ops = ops;
    c->s.name = name ? xstrdup(name) : lower_dup(ops->type);
    c->s.type = xstrdup(ops->type);
    c->s.tpm = (int)d->tpm;
    c->s.connections = (int)d->workers;
    c->s.connect_timeout_ms = (int)d->connect_ms;
    c->s.command_timeout_ms = (int)d->command_ms;
    c->s.message_timeout_ms = (int)d->message_ms;
    c->s.helo = d->helo ? xstrdup(d->helo) : NULL;
    c->s.tls = SMTP_TLS_NONE;
}

/* ---- one client from variables -------------------------------------------- */

/* env_str - config_get_str into a settings field; required: error if unset */
static int env_str(const char *var, const char *def, bool required, const char *why,
                   const char **field, char *errbuf, size_t errlen)
{
    char *v = NULL;
    if (config_get_str(var, def, &v, errbuf, errlen) < 0)
        return -1;
    if (!v && required) {
        errbuf_set(errbuf, errlen, "%s: is required %s", var, why);
        return -1;
    }
    sfree(*field);
    *field = v;
    return 0;
}

/* env_secret - config_get_secret into a settings field (the variable
 * leaves the environment) */
static int env_secret(const char *var, const char **field, char *errbuf, size_t errlen)
{
    char *v = NULL;
    if (config_get_secret(var, &v, errbuf, errlen) < 0)
        return -1;
    sfree(*field);
    *field = v;
    return 0;
}

/* cleartext_ok - credentials never cross the network unencrypted: with tls
 * none, a username or password is accepted for a loopback host only */
static bool cleartext_ok(const struct smtp_settings *s)
{
    return s->tls != SMTP_TLS_NONE || (!s->username && !s->password) ||
           config_host_is_loopback(s->host);
}

static int env_port(const char *var, long def, int *port, char *errbuf, size_t errlen)
{
    long v;
    if (config_get_long(var, def, 1, 65535, &v, errbuf, errlen) < 0)
        return -1;
    *port = (int)v;
    return 0;
}

/* need_var - the "is required" error for an unset variable */
static int need_var(const char *var, const char *why, char *errbuf, size_t errlen)
{
    errbuf_set(errbuf, errlen, "%s: is required %s", var, why);
    return -1;
}

static int env_host_ok(const char *var, const char *host, char *errbuf, size_t errlen)
{
    if (!host_ok(host)) {
        errbuf_set(errbuf, errlen, "%s: must be a host name or address (no spaces)", var);
        return -1;
    }
    return 0;
}

static int load_env(struct smtp_clients *out, const struct defaults *d, char *errbuf, size_t errlen)
{
    static const char *const types[] = {"GOOGLE", "MAILPIT", "CUSTOM", "DRYRUN", NULL};
    static const char *const tls_names[] = {"none", "starttls", "tls", NULL};
    int t, tls;
    if (config_get_enum("CHOOSEN_SMTP_CLIENT_TYPE", "MAILPIT", types, &t, errbuf, errlen) < 0)
        return -1;
    out->v = xcalloc(1, sizeof *out->v);
    out->n = 1;
    struct smtp_client_cfg *c = &out->v[0];
    struct smtp_settings *s = &c->s;
    base_cfg(c, smtp_client_ops_find(types[t]), NULL, d);
    switch (t) {
    case 0: /* GOOGLE */
        s->tls = SMTP_TLS_STARTTLS;
        if (env_str("GMAIL_SMTP_USERNAME", NULL, true, "when CHOOSEN_SMTP_CLIENT_TYPE=GOOGLE",
                    &s->username, errbuf, errlen) < 0 ||
            env_secret("GMAIL_SMTP_APP_PASSWORD", &s->password, errbuf, errlen) < 0 ||
            env_str("GMAIL_SMTP_HOST", "smtp.gmail.com", false, "", &s->host, errbuf, errlen) < 0 ||
            (!s->password &&
             need_var("GMAIL_SMTP_APP_PASSWORD", "when CHOOSEN_SMTP_CLIENT_TYPE=GOOGLE", errbuf,
                      errlen) < 0) ||
            env_host_ok("GMAIL_SMTP_HOST", s->host, errbuf, errlen) < 0 ||
            env_port("GMAIL_SMTP_PORT", 587, &s->port, errbuf, errlen) < 0 ||
            env_str("SMTP_CA_FILE", NULL, false, "", &s->ca_file, errbuf, errlen) < 0)
            return -1;
        break;
    case 1: { /* MAILPIT */
        char *addr = NULL, *host = NULL;
        if (config_get_str("MAILPIT_SMTP_ADDR", "127.0.0.1:1025", &addr, errbuf, errlen) < 0)
            return -1;
        int rc = parse_hostport(addr, &host, &s->port);
        free(addr);
        if (rc < 0) {
            errbuf_set(errbuf, errlen, "MAILPIT_SMTP_ADDR: must be HOST:PORT (or [IPV6]:PORT)");
            return -1;
        }
        s->host = host;
        break;
    }
    case 2: /* CUSTOM */
        if (env_str("SMTP_HOST", NULL, true, "when CHOOSEN_SMTP_CLIENT_TYPE=CUSTOM", &s->host,
                    errbuf, errlen) < 0 ||
            env_host_ok("SMTP_HOST", s->host, errbuf, errlen) < 0 ||
            env_port("SMTP_PORT", 25, &s->port, errbuf, errlen) < 0 ||
            config_get_enum("SMTP_TLS", "starttls", tls_names, &tls, errbuf, errlen) < 0 ||
            env_str("SMTP_USERNAME", NULL, false, "", &s->username, errbuf, errlen) < 0 ||
            env_secret("SMTP_PASSWORD", &s->password, errbuf, errlen) < 0 ||
            env_str("SMTP_CA_FILE", NULL, false, "", &s->ca_file, errbuf, errlen) < 0)
            return -1;
        s->tls = (enum smtp_tls)tls;
        if (s->username && !s->password) {
            errbuf_set(errbuf, errlen, "SMTP_PASSWORD: is required when SMTP_USERNAME is set");
            return -1;
        }
        if (s->password && !s->username) {
            errbuf_set(errbuf, errlen, "SMTP_USERNAME: is required when SMTP_PASSWORD is set");
            return -1;
        }
        if (!cleartext_ok(s)) {
            errbuf_set(errbuf, errlen,
                       "SMTP_TLS: none would send SMTP_USERNAME and SMTP_PASSWORD in clear text "
                       "to %s, which is not a loopback host; use starttls or tls",
                       s->host);
            return -1;
        }
        break;
    default: /* DRYRUN */
        s->spool_dir = xstrdup(d->spool_dir);
        break;
    }
    if (s->ca_file && readable("SMTP_CA_FILE", s->ca_file, errbuf, errlen) < 0)
        return -1;
    return 0;
}

/* ---- clients from SMTP_CLIENTS_FILE ------------------------------------------ */

/* the fields each type accepts (every type: name ... message_timeout_ms) */
#define FIELDS_COMMON                                                                              \
    "name", "type", "tpm", "connections", "helo", "connect_timeout_ms", "command_timeout_ms",      \
        "message_timeout_ms"
static const char *const fields_google[] = {
    FIELDS_COMMON, "username", "password", "password_file", "host", "port", "tls", "ca_file", NULL};
static const char *const fields_mailpit[] = {FIELDS_COMMON, "host", "port", NULL};
static const char *const fields_custom[] = {
    FIELDS_COMMON, "host", "port", "tls", "username", "password", "password_file", "ca_file", NULL};
static const char *const fields_dryrun[] = {FIELDS_COMMON, "spool_dir", NULL};

/* opt_str - optional string field copied into *field (replacing a default) */
static int opt_str(json_object *o, const char *key, size_t maxlen, const char **field, char *errbuf,
                   size_t errlen)
{
    const char *v;
    if (jsonx_get_string(o, key, false, maxlen, &v, errbuf, errlen) < 0)
        return -1;
    if (v) {
        if (!*v) {
            errbuf_set(errbuf, errlen, "field '%s' must not be empty", key);
            return -1;
        }
        sfree(*field);
        *field = xstrdup(v);
    }
    return 0;
}

static int opt_int(json_object *o, const char *key, long min, long max, int *field, char *errbuf,
                   size_t errlen)
{
    int64_t v;
    bool present;
    if (jsonx_get_int(o, key, false, min, max, &v, &present, errbuf, errlen) < 0)
        return -1;
    if (present)
        *field = (int)v;
    return 0;
}

/* entry_secret - password or password_file (not both) */
static int entry_secret(json_object *o, struct smtp_settings *s, char *errbuf, size_t errlen)
{
    const char *file = NULL;
    char *secret = NULL;
    if (opt_str(o, "password", 4096, &s->password, errbuf, errlen) < 0 ||
        jsonx_get_string(o, "password_file", false, 4096, &file, errbuf, errlen) < 0)
        return -1;
    if (file && s->password) {
        errbuf_set(errbuf, errlen, "fields 'password' and 'password_file' exclude each other");
        return -1;
    }
    if (file) {
        if (file_read_small("field 'password_file'", file, SECRET_FILE_MAX, true, &secret, NULL,
                            errbuf, errlen) < 0)
            return -1;
        if (!*secret) {
            free(secret);
            errbuf_set(errbuf, errlen, "field 'password_file': '%s' is empty", file);
            return -1;
        }
        s->password = secret;
    }
    return 0;
}

static int entry_tls(json_object *o, bool allow_none, struct smtp_settings *s, char *errbuf,
                     size_t errlen)
{
    const char *v;
    if (jsonx_get_string(o, "tls", false, 16, &v, errbuf, errlen) < 0)
        return -1;
    if (!v)
        return 0;
    if (allow_none && strcasecmp(v, "none") == 0)
        s->tls = SMTP_TLS_NONE;
    else if (strcasecmp(v, "starttls") == 0)
        s->tls = SMTP_TLS_STARTTLS;
    else if (strcasecmp(v, "tls") == 0)
        s->tls = SMTP_TLS_IMPLICIT;
    else {
        errbuf_set(errbuf, errlen, "field 'tls' must be %s",
                   allow_none ? "none, starttls or tls" : "starttls or tls");
        return -1;
    }
    return 0;
}

/* load_entry - one array element into c (c is filled as far as it got, so
 * the caller frees it either way) */
static int load_entry(json_object *o, struct smtp_client_cfg *c, const struct defaults *d,
                      char *errbuf, size_t errlen)
{
    const char *name, *type;
    if (!json_object_is_type(o, json_type_object)) {
        errbuf_set(errbuf, errlen, "must be an object");
        return -1;
    }
    if (jsonx_get_string(o, "name", true, CLIENT_NAME_MAX, &name, errbuf, errlen) < 0)
        return -1;
    if (!name_ok(name)) {
        errbuf_set(errbuf, errlen, "field 'name' must be 1..%d of A-Z a-z 0-9 . _ -",
                   CLIENT_NAME_MAX);
        return -1;
    }
    if (jsonx_get_string(o, "type", true, 16, &type, errbuf, errlen) < 0)
        return -1;
    const struct smtp_client_ops *ops = smtp_client_ops_find(type);
    if (!ops) {
        errbuf_set(errbuf, errlen, "field 'type' must be GOOGLE, MAILPIT, CUSTOM or DRYRUN");
        return -1;
    }
    base_cfg(c, ops, name, d);
    struct smtp_settings *s = &c->s;
    const char *const *allowed = ops == &smtp_gmail_ops     ? fields_google
                                 : ops == &smtp_mailpit_ops ? fields_mailpit
                                 : ops == &smtp_custom_ops  ? fields_custom
                                                            : fields_dryrun;
    if (jsonx_check_keys(o, allowed, errbuf, errlen) < 0) {
        size_t n = strlen(errbuf);
        if (n + 1 < errlen)
            snprintf(errbuf + n, errlen - n, " for type %s", ops->type);
        return -1;
    }
    if (opt_int(o, "tpm", 0, TPM_MAX, &s->tpm, errbuf, errlen) < 0 ||
        opt_int(o, "connections", 1, 256, &s->connections, errbuf, errlen) < 0 ||
        opt_int(o, "connect_timeout_ms", TIMEOUT_MIN, TIMEOUT_MAX, &s->connect_timeout_ms, errbuf,
                errlen) < 0 ||
        opt_int(o, "command_timeout_ms", TIMEOUT_MIN, TIMEOUT_MAX, &s->command_timeout_ms, errbuf,
                errlen) < 0 ||
        opt_int(o, "message_timeout_ms", TIMEOUT_MIN, TIMEOUT_MAX, &s->message_timeout_ms, errbuf,
                errlen) < 0 ||
        opt_str(o, "helo", 255, &s->helo, errbuf, errlen) < 0)
        return -1;
    if (s->helo && !helo_ok(s->helo)) {
        errbuf_set(errbuf, errlen,
                   "field 'helo' must be a fully qualified host name (with a dot, not "
                   "localhost) or an address literal");
        return -1;
    }
    if (ops == &smtp_dryrun_ops) {
        s->spool_dir = xstrdup(d->spool_dir);
        return opt_str(o, "spool_dir", 4096, &s->spool_dir, errbuf, errlen);
    }
    /* the SMTP types */
    bool google = ops == &smtp_gmail_ops, custom = ops == &smtp_custom_ops;
    s->port = google ? 587 : custom ? 25 : 1025;
    s->tls = custom || google ? SMTP_TLS_STARTTLS : SMTP_TLS_NONE;
    if (!custom)
        s->host = xstrdup(google ? "smtp.gmail.com" : "127.0.0.1");
    if (custom) {
        const char *h;
        if (jsonx_get_string(o, "host", true, 255, &h, errbuf, errlen) < 0)
            return -1;
        s->host = xstrdup(h);
    } else if (opt_str(o, "host", 255, &s->host, errbuf, errlen) < 0) {
        return -1;
    }
    if (!host_ok(s->host)) {
        errbuf_set(errbuf, errlen, "field 'host' must be a host name or address (no spaces)");
        return -1;
    }
    if (opt_int(o, "port", 1, 65535, &s->port, errbuf, errlen) < 0)
        return -1;
    if (ops == &smtp_mailpit_ops)
        return 0;
    if (entry_tls(o, custom, s, errbuf, errlen) < 0 ||
        opt_str(o, "username", 1024, &s->username, errbuf, errlen) < 0 ||
        entry_secret(o, s, errbuf, errlen) < 0 ||
        opt_str(o, "ca_file", 4096, &s->ca_file, errbuf, errlen) < 0)
        return -1;
    if (google && !s->username) {
        errbuf_set(errbuf, errlen, "field 'username' is required for type GOOGLE");
        return -1;
    }
    if (s->username && !s->password) {
        errbuf_set(errbuf, errlen,
                   "field 'password' or 'password_file' is required with 'username'");
        return -1;
    }
    if (s->password && !s->username) {
        errbuf_set(errbuf, errlen, "field 'username' is required with a password");
        return -1;
    }
    if (!cleartext_ok(s)) {
        errbuf_set(errbuf, errlen,
                   "field 'tls': none would send the username and password in clear text to "
                   "'%s', which is not a loopback host; use starttls or tls",
                   s->host);
        return -1;
    }
    if (s->ca_file && readable("field 'ca_file'", s->ca_file, errbuf, errlen) < 0)
        return -1;
    return 0;
}

static int load_file(struct smtp_clients *out, const char *path, const struct defaults *d,
                     char *errbuf, size_t errlen)
{
    char *text = NULL, msg[512];
    size_t len = 0;
    json_object *root = NULL;
    int rc = -1;
    if (file_read_small("SMTP_CLIENTS_FILE", path, CLIENTS_FILE_MAX, false, &text, &len, errbuf,
                        errlen) < 0)
        return -1;
    if (jsonx_parse(text, len, &root, msg, sizeof msg) < 0) {
        errbuf_set(errbuf, errlen, "SMTP_CLIENTS_FILE: '%s': %s", path, msg);
        goto out;
    }
    if (!json_object_is_type(root, json_type_array)) {
        errbuf_set(errbuf, errlen, "SMTP_CLIENTS_FILE: '%s' must hold a JSON array of clients",
                   path);
        goto out;
    }
    size_t n = json_object_array_length(root);
    if (n == 0 || n > CLIENTS_MAX) {
        errbuf_set(errbuf, errlen, "SMTP_CLIENTS_FILE: '%s' must list 1..%d clients", path,
                   CLIENTS_MAX);
        goto out;
    }
    out->v = xcalloc(n, sizeof *out->v);
    for (size_t i = 0; i < n; i++) {
        json_object *o = json_object_array_get_idx(root, i);
        out->n = i + 1;
        msg[0] = '\0';
        int erc = load_entry(o, &out->v[i], d, msg, sizeof msg);
        if (erc == 0 && smtp_clients_find(out, out->v[i].s.name) != (int)i) {
            errbuf_set(msg, sizeof msg, "field 'name': another client has the same name");
            erc = -1;
        }
        if (erc < 0) {
            if (out->v[i].s.name)
                errbuf_set(errbuf, errlen, "SMTP_CLIENTS_FILE[%zu] (%s): %s", i, out->v[i].s.name,
                           msg);
            else
                errbuf_set(errbuf, errlen, "SMTP_CLIENTS_FILE[%zu]: %s", i, msg);
            goto out;
        }
    }
    rc = 0;
out:
    json_object_put(root);
    free(text);
    return rc;
}

static int load_defaults(struct defaults *d, char *errbuf, size_t errlen)
{
    if (config_get_long("SEND_TPM", 0, 0, TPM_MAX, &d->tpm, errbuf, errlen) < 0 ||
        config_get_long("WORKERS", 4, 1, 256, &d->workers, errbuf, errlen) < 0 ||
        config_get_long("SMTP_CONNECT_TIMEOUT_MS", 10000, TIMEOUT_MIN, TIMEOUT_MAX, &d->connect_ms,
                        errbuf, errlen) < 0 ||
        config_get_long("SMTP_COMMAND_TIMEOUT_MS", 30000, TIMEOUT_MIN, TIMEOUT_MAX, &d->command_ms,
                        errbuf, errlen) < 0 ||
        config_get_long("SMTP_MESSAGE_TIMEOUT_MS", 120000, TIMEOUT_MIN, TIMEOUT_MAX, &d->message_ms,
                        errbuf, errlen) < 0 ||
        config_get_str("SMTP_SPOOL_DIR", "./data/spool", &d->spool_dir, errbuf, errlen) < 0 ||
        config_get_str("SMTP_HELO", NULL, &d->helo, errbuf, errlen) < 0)
        return -1;
    if (d->helo) {
        if (helo_ok(d->helo))
            return 0;
        errbuf_set(errbuf, errlen,
                   "SMTP_HELO: must be a fully qualified host name (with a dot, not localhost) "
                   "or an address literal");
        return -1;
    }
    /* the default: this host's name, else MESSAGE_ID_DOMAIN (checked by
     * wconfig), else (NULL) each connection's sender domain */
    d->helo = host_fqdn();
    if (!d->helo && config_get_str("MESSAGE_ID_DOMAIN", NULL, &d->helo, errbuf, errlen) < 0)
        return -1;
    if (d->helo && !helo_ok(d->helo)) {
        free(d->helo);
        d->helo = NULL;
    }
    return 0;
}

int smtp_clients_load(struct smtp_clients *out, char *errbuf, size_t errlen)
{
    struct defaults d = {0};
    char *file = NULL;
    int rc = -1;
    memset(out, 0, sizeof *out);
    if (load_defaults(&d, errbuf, errlen) < 0 ||
        config_get_str("SMTP_CLIENTS_FILE", NULL, &file, errbuf, errlen) < 0)
        goto out;
    rc = file ? load_file(out, file, &d, errbuf, errlen) : load_env(out, &d, errbuf, errlen);
out:
    /* the secrets this configuration did not read leave the environment too */
    config_drop_secret("SMTP_PASSWORD");
    config_drop_secret("GMAIL_SMTP_APP_PASSWORD");
    if (rc < 0)
        smtp_clients_cleanup(out);
    free(file);
    free(d.helo);
    free(d.spool_dir);
    return rc;
}
