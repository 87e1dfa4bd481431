/* httpguard.h - the browser-facing checks of a request (README, "Security"):
 * which Host names the server answers to (DNS rebinding -> 421), whether an
 * Origin is the request's own (cross-site request forgery -> 403), and the
 * header anomalies that let a proxy and this server disagree about where a
 * request ends (request smuggling -> 400).
 *
 * Pure functions over strings; struct http_hosts is built once at start-up
 * and read-only after, so any thread may use it. Free with
 * http_hosts_free().
 */
#ifndef HTTPGUARD_H
#define HTTPGUARD_H

#include <stdbool.h>
#include <stddef.h>

struct http_hosts;

/* http_hosts_new - the names a server bound to bind_addr answers to: the
 * bound address, loopback names (localhost, *.localhost, 127.0.0.0/8, ::1),
 * any IP literal when bound to a wildcard address, and the comma-separated
 * allowed list (exact names, ".example.com" for the domain and its
 * subdomains, "*" for any Host). NULL with a message on a bad list entry. */
struct http_hosts *http_hosts_new(const char *bind_addr, const char *allowed, char *errbuf,
                                  size_t errlen);
void http_hosts_free(struct http_hosts *h);

/* http_host_allowed - host is a Host header value (name, name:port,
 * [v6]:port); NULL is allowed only when allow_missing */
bool http_host_allowed(const struct http_hosts *h, const char *host, bool allow_missing);

/* http_origin_same - origin ("scheme://host[:port]") names the same
 * authority as the Host header; "null" and malformed origins never do */
bool http_origin_same(const char *origin, const char *host);

/* http_method_changes_state - POST, PUT, PATCH, DELETE (and anything not
 * known to be safe) */
bool http_method_changes_state(const char *method);

/* The request's framing headers, gathered by the server before it checks
 * them with http_framing_error. */
struct http_framing {
    int content_length; /* Content-Length headers seen */
    int transfer_encoding;
    int host;
    bool te_not_chunked;  /* a Transfer-Encoding other than exactly "chunked" */
    bool bad_header_name; /* an empty name, or one with a space, tab or control octet */
    bool http11;          /* HTTP/1.1 or later */
};

/* http_framing_add - account one request header */
void http_framing_add(struct http_framing *f, const char *name, const char *value);
/* http_framing_error - NULL when the framing is unambiguous, else a
 * message for a 400 */
const char *http_framing_error(const struct http_framing *f);

#endif
