/* httpguard.c - Host, Origin and framing checks (see httpguard.h).
 * Built on the main thread, then read-only. */
#include "httpguard.h"
#include "errbuf.h"
#include "xalloc.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HOST_MAX 256

struct http_hosts {
    bool any;         /* "*" in the list */
    bool wildcard_ip; /* bound to 0.0.0.0 or ::: every IP literal names us */
    char bound[HOST_MAX];
    char **names; /* lower-case; ".x.y" matches x.y and its subdomains */
    size_t n;
};

/* host_part - copy the host of a Host value (no port, no brackets, lower
 * case, one trailing dot removed) into out; -1 when malformed */
static int host_part(const char *v, char *out, size_t len)
{
    const char *start = v, *end;
    if (*v == '[') {
        start = v + 1;
        end = strchr(start, ']');
        if (!end)
            return -1;
        const char *rest = end + 1;
        if (*rest == ':')
            rest++;
        else if (*rest)
            return -1;
        if (strspn(rest, "0123456789") != strlen(rest))
            return -1;
    } else {
        end = strchr(v, ':');
        if (end) {
            if (strchr(end + 1, ':') || strspn(end + 1, "0123456789") != strlen(end + 1))
                return -1;
        } else {
            end = v + strlen(v);
        }
    }
    size_t n = (size_t)(end - start);
    if (n > 0 && start[n - 1] == '.' && *v != '[')
        n--;
    if (n == 0 || n >= len)
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)start[i];
        if (!(isalnum(c) || c == '.' || c == '-' || c == '_' || (*v == '[' && c == ':')))
            return -1;
        out[i] = (char)tolower(c);
    }
    out[n] = '\0';
    return 0;
}

/* ip_parse - 1 and the address (v4 mapped into v6) when s is an IP literal */
static bool ip_parse(const char *s, struct in6_addr *a)
{
    struct in_addr a4;
    if (inet_pton(AF_INET, s, &a4) == 1) {
        memset(a, 0, sizeof *a);
        a->s6_addr[10] = 0xff;
        a->s6_addr[11] = 0xff;
        memcpy(&a->s6_addr[12], &a4, 4);
        return true;
    }
    return inet_pton(AF_INET6, s, a) == 1;
}

static bool ip_loopback(const struct in6_addr *a)
{
    if (IN6_IS_ADDR_V4MAPPED(a))
        return a->s6_addr[12] == 127;
    return IN6_IS_ADDR_LOOPBACK(a);
}

static bool loopback_name(const char *h)
{
    size_t n = strlen(h);
    struct in6_addr a;
    if (strcmp(h, "localhost") == 0 || (n > 10 && strcmp(h + n - 10, ".localhost") == 0))
        return true;
    return ip_parse(h, &a) && ip_loopback(&a);
}

static bool same_ip(const char *x, const char *y)
{
    struct in6_addr a, b;
    return ip_parse(x, &a) && ip_parse(y, &b) && memcmp(&a, &b, sizeof a) == 0;
}

struct http_hosts *http_hosts_new(const char *bind_addr, const char *allowed, char *errbuf,
                                  size_t errlen)
{
    struct http_hosts *h = xcalloc(1, sizeof *h);
    const char *bind = bind_addr && *bind_addr ? bind_addr : "127.0.0.1";
    struct in6_addr a;
    if (strlcpy_ok(h->bound, bind, sizeof h->bound) != 0 || !ip_parse(bind, &a)) {
        errbuf_set(errbuf, errlen, "BIND_ADDR '%s' is not an IPv4 or IPv6 address", bind);
        http_hosts_free(h);
        return NULL;
    }
    h->wildcard_ip = IN6_IS_ADDR_UNSPECIFIED(&a) ||
                     (IN6_IS_ADDR_V4MAPPED(&a) && memcmp(&a.s6_addr[12], "\0\0\0\0", 4) == 0);
    char *copy = xstrdup(allowed ? allowed : "");
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ' || *tok == '\t')
            tok++;
        size_t n = strlen(tok);
        while (n > 0 && (tok[n - 1] == ' ' || tok[n - 1] == '\t'))
            tok[--n] = '\0';
        if (n == 0)
            continue;
        if (strcmp(tok, "*") == 0) {
            h->any = true;
            continue;
        }
        char name[HOST_MAX];
        /* ".example.com": the dot is kept, the rest must be a host */
        if (host_part(tok[0] == '.' ? tok + 1 : tok, name, sizeof name) != 0 ||
            strchr(tok, ':') != NULL) {
            errbuf_set(errbuf, errlen,
                       "ALLOWED_HOSTS: '%.64s' is not a host name (no scheme, port or path)", tok);
            free(copy);
            http_hosts_free(h);
            return NULL;
        }
        h->names = xreallocarray(h->names, h->n + 1, sizeof *h->names);
        h->names[h->n++] = tok[0] == '.' ? xasprintf(".%s", name) : xstrdup(name);
    }
    free(copy);
    return h;
}

void http_hosts_free(struct http_hosts *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->n; i++)
        free(h->names[i]);
    free(h->names);
    free(h);
}

bool http_host_allowed(const struct http_hosts *h, const char *host, bool allow_missing)
{
    if (!host)
        return allow_missing;
    if (h->any)
        return true;
    char name[HOST_MAX];
    if (host_part(host, name, sizeof name) != 0)
        return false;
    struct in6_addr a;
    if (loopback_name(name) || same_ip(name, h->bound) || (h->wildcard_ip && ip_parse(name, &a)))
        return true;
    size_t n = strlen(name);
    for (size_t i = 0; i < h->n; i++) {
        const char *e = h->names[i];
        if (e[0] == '.') {
            size_t m = strlen(e);
            if (strcmp(name, e + 1) == 0 || (n > m && strcmp(name + n - m, e) == 0))
                return true;
        } else if (strcmp(name, e) == 0 || same_ip(name, e)) {
            return true;
        }
    }
    return false;
}

bool http_origin_same(const char *origin, const char *host)
{
    if (!origin || !host)
        return false;
    const char *p = strstr(origin, "://");
    if (!p || p == origin)
        return false;
    for (const char *s = origin; s < p; s++)
        if (!isalpha((unsigned char)*s))
            return false;
    p += 3;
    /* an origin is scheme://authority with no path, user info or query */
    if (*p == '\0' || strpbrk(p, "/?#@ ") != NULL)
        return false;
    return strcasecmp(p, host) == 0;
}

bool http_method_changes_state(const char *method)
{
    static const char *const safe[] = {"GET", "HEAD", "OPTIONS", "TRACE", NULL};
    for (int i = 0; safe[i]; i++)
        if (strcmp(method, safe[i]) == 0)
            return false;
    return true;
}

void http_framing_add(struct http_framing *f, const char *name, const char *value)
{
    if (!name || !*name) {
        f->bad_header_name = true;
        return;
    }
    for (const char *s = name; *s; s++)
        if (*s == ' ' || *s == '\t' || (unsigned char)*s < 0x21 || *s == 0x7f)
            f->bad_header_name = true;
    if (strcasecmp(name, "Content-Length") == 0) {
        f->content_length++;
    } else if (strcasecmp(name, "Transfer-Encoding") == 0) {
        f->transfer_encoding++;
        if (!value || strcasecmp(value, "chunked") != 0)
            f->te_not_chunked = true;
    } else if (strcasecmp(name, "Host") == 0) {
        f->host++;
    }
}

const char *http_framing_error(const struct http_framing *f)
{
    if (f->bad_header_name)
        return "a header name is empty or contains white space";
    if (f->content_length > 1)
        return "more than one Content-Length header";
    if (f->transfer_encoding > 1 || f->te_not_chunked)
        return "Transfer-Encoding must be exactly one 'chunked'";
    if (f->transfer_encoding && f->content_length)
        return "both Content-Length and Transfer-Encoding";
    if (f->host > 1)
        return "more than one Host header";
    if (f->http11 && f->host == 0)
        return "an HTTP/1.1 request needs a Host header";
    return NULL;
}
