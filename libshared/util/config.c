/* config.c - typed configuration values from the environment.
 *
 * A variable NAME is read from NAME, or from the file named by NAME_FILE
 * (secrets mounted by Docker/Kubernetes). Values are copied to the heap;
 * nothing is cached. Messages name the variable and the problem; string
 * values are never echoed (they may be secrets), short numeric/bool/enum
 * values are, sanitised and truncated. A secret leaves the environment once
 * read (config_get_secret).
 * Uses getenv() and strerror(): main thread only, before other threads start.
 */
#include "errbuf.h"
#include "config.h"
#include "fileio.h"
#include "buf.h"
#include "log.h"
#include "xalloc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

extern char **environ;

#define CONFIG_MAX_VALUE ((size_t)64 * 1024)
#define CONFIG_ECHO_MAX 32
#define CONFIG_ERRLEN 512

/* echo_value - printable, truncated copy of a non-secret value for a message */
static void echo_value(const char *v, char *out, size_t outlen)
{
    size_t i = 0, n = strlen(v);
    for (; i < n && i < CONFIG_ECHO_MAX && i + 4 < outlen; i++) {
        unsigned char c = (unsigned char)v[i];
        out[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (i < n && i + 4 <= outlen) {
        memcpy(out + i, "...", 3);
        i += 3;
    }
    out[i] = '\0';
}

/* read_value_file - contents of path minus one trailing LF/CRLF (NULL
 * when empty), or -1 */
static int read_value_file(const char *var, const char *path, char **out, char *errbuf,
                           size_t errlen)
{
    size_t len;
    /* + 2: room for the CRLF that gets stripped */
    if (file_read_small(var, path, CONFIG_MAX_VALUE + 2, true, out, &len, errbuf, errlen) != 0)
        return -1;
    if (len > CONFIG_MAX_VALUE) {
        errbuf_set(errbuf, errlen, "%s: file '%s' holds a value longer than %zu bytes", var, path,
                   CONFIG_MAX_VALUE);
        explicit_bzero(*out, len);
        free(*out);
        *out = NULL;
        return -1;
    }
    if (len == 0) {
        free(*out);
        *out = NULL;
    }
    return 0;
}

/* config_lookup - heap copy of the raw value of name or name_FILE; *out is
 * NULL when neither is set (empty counts as unset) */
static int config_lookup(const char *name, char **out, char *errbuf, size_t errlen)
{
    char *file_var = xasprintf("%s_FILE", name);
    const char *val = getenv(name);
    const char *path = getenv(file_var);
    int rc = -1;

    *out = NULL;
    if (val && *val == '\0')
        val = NULL;
    if (path && *path == '\0')
        path = NULL;
    if (val && path) {
        errbuf_set(errbuf, errlen, "%s: both %s and %s are set; use only one", name, name,
                   file_var);
        goto out;
    }
    if (path) {
        rc = read_value_file(file_var, path, out, errbuf, errlen);
        goto out;
    }
    if (val && strlen(val) > CONFIG_MAX_VALUE) {
        errbuf_set(errbuf, errlen, "%s: value is longer than %zu bytes", name, CONFIG_MAX_VALUE);
        goto out;
    }
    *out = val ? xstrdup(val) : NULL;
    rc = 0;
out:
    free(file_var);
    return rc;
}

int config_get_str(const char *name, const char *def, char **out, char *errbuf, size_t errlen)
{
    char *v;
    *out = NULL;
    if (config_lookup(name, &v, errbuf, errlen) < 0)
        return -1;
    if (!v && def)
        v = xstrdup(def);
    *out = v;
    return 0;
}

/* wipe_env - remove every NAME= entry of the environment, then overwrite
 * each "NAME=value" string where it lies (no longer referenced by environ;
 * setenv keeps its copies for reuse, which then merely go unmatched) */
static void wipe_env(const char *name)
{
    size_t len = strlen(name), n = 0, k = 0;
    for (char **e = environ; e && *e; e++)
        if (strncmp(*e, name, len) == 0 && (*e)[len] == '=')
            n++;
    if (n == 0)
        return;
    char **found = xcalloc(n, sizeof *found);
    for (char **e = environ; e && *e && k < n; e++)
        if (strncmp(*e, name, len) == 0 && (*e)[len] == '=')
            found[k++] = *e;
    unsetenv(name);
    for (size_t i = 0; i < k; i++)
        explicit_bzero(found[i], strlen(found[i]));
    free(found);
}

void config_drop_secret(const char *name)
{
    char *file_var = xasprintf("%s_FILE", name);
    wipe_env(name);
    wipe_env(file_var); /* only a path, but no trace of the secret stays */
    free(file_var);
}

int config_get_secret(const char *name, char **out, char *errbuf, size_t errlen)
{
    int rc = config_get_str(name, NULL, out, errbuf, errlen);
    config_drop_secret(name);
    return rc;
}

bool config_host_is_loopback(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (!host)
        return false;
    if (strcasecmp(host, "localhost") == 0)
        return true;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6);
    return false;
}

/* parse_long - strict decimal: optional sign then digits, nothing else */
static int parse_long(const char *s, long *out)
{
    const char *p = (*s == '-' || *s == '+') ? s + 1 : s;
    if (*p < '0' || *p > '9')
        return -1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

int config_get_long(const char *name, long def, long min, long max, long *out, char *errbuf,
                    size_t errlen)
{
    char *v;
    long n;
    char shown[CONFIG_ECHO_MAX + 4];

    if (config_lookup(name, &v, errbuf, errlen) < 0)
        return -1;
    if (!v) {
        *out = def;
        return 0;
    }
    int rc = 0;
    if (parse_long(v, &n) < 0 || n < min || n > max) {
        echo_value(v, shown, sizeof shown);
        errbuf_set(errbuf, errlen, "%s: must be an integer between %ld and %ld, got '%s'", name,
                   min, max, shown);
        rc = -1;
    } else {
        *out = n;
    }
    free(v);
    return rc;
}

int config_get_bool(const char *name, bool def, bool *out, char *errbuf, size_t errlen)
{
    static const char *const truthy[] = {"true", "1", "yes", "on"};
    static const char *const falsy[] = {"false", "0", "no", "off"};
    char *v;
    char shown[CONFIG_ECHO_MAX + 4];

    if (config_lookup(name, &v, errbuf, errlen) < 0)
        return -1;
    if (!v) {
        *out = def;
        return 0;
    }
    int rc = -1;
    for (size_t i = 0; i < sizeof truthy / sizeof truthy[0]; i++) {
        if (strcasecmp(v, truthy[i]) == 0) {
            *out = true;
            rc = 0;
        } else if (strcasecmp(v, falsy[i]) == 0) {
            *out = false;
            rc = 0;
        }
    }
    if (rc < 0) {
        echo_value(v, shown, sizeof shown);
        errbuf_set(errbuf, errlen, "%s: must be one of true/false/1/0/yes/no/on/off, got '%s'",
                   name, shown);
    }
    free(v);
    return rc;
}

/* find_choice - index of s in choices (case-insensitive), or -1 */
static int find_choice(const char *const *choices, const char *s)
{
    for (int i = 0; choices[i]; i++)
        if (strcasecmp(choices[i], s) == 0)
            return i;
    return -1;
}

/* choice_list - "a, b, c" into b (uncapped in practice: choices are ours) */
static void choice_list(const char *const *choices, struct buf *b)
{
    for (int i = 0; choices[i]; i++)
        buf_printf(b, "%s%s", i ? ", " : "", choices[i]);
}

int config_get_enum(const char *name, const char *def, const char *const *choices, int *out,
                    char *errbuf, size_t errlen)
{
    char *v;
    char shown[CONFIG_ECHO_MAX + 4];
    struct buf list;
    int rc = -1;

    if (config_lookup(name, &v, errbuf, errlen) < 0)
        return -1;
    buf_init(&list, 4096);
    choice_list(choices, &list);
    const char *s = v ? v : def;
    if (!s) {
        errbuf_set(errbuf, errlen, "%s: is required, one of %s", name, buf_str(&list));
        goto out;
    }
    int idx = find_choice(choices, s);
    if (idx < 0) {
        echo_value(s, shown, sizeof shown);
        errbuf_set(errbuf, errlen, "%s: %s'%s' is not one of %s", name, v ? "" : "default ", shown,
                   buf_str(&list));
        goto out;
    }
    *out = idx;
    rc = 0;
out:
    buf_cleanup(&list);
    free(v);
    return rc;
}

char *config_str(const char *name, const char *def)
{
    char err[CONFIG_ERRLEN];
    char *v;
    if (config_get_str(name, def, &v, err, sizeof err) < 0)
        log_fatal("config: %s", err);
    return v;
}

char *config_secret(const char *name)
{
    char err[CONFIG_ERRLEN];
    char *v;
    if (config_get_secret(name, &v, err, sizeof err) < 0)
        log_fatal("config: %s", err);
    return v;
}

long config_long(const char *name, long def, long min, long max)
{
    char err[CONFIG_ERRLEN];
    long v = 0;
    if (config_get_long(name, def, min, max, &v, err, sizeof err) < 0)
        log_fatal("config: %s", err);
    return v;
}

bool config_bool(const char *name, bool def)
{
    char err[CONFIG_ERRLEN];
    bool v = false;
    if (config_get_bool(name, def, &v, err, sizeof err) < 0)
        log_fatal("config: %s", err);
    return v;
}

int config_enum(const char *name, const char *def, const char *const *choices)
{
    char err[CONFIG_ERRLEN];
    int v = 0;
    if (config_get_enum(name, def, choices, &v, err, sizeof err) < 0)
        log_fatal("config: %s", err);
    return v;
}
