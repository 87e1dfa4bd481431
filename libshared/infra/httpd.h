/* httpd.h - HTTP/JSON server over libmicrohttpd.
 *
 * Owns the MHD daemon (internal thread pool, epoll, connection timeout),
 * a route table with '*' path segments, the method check (405 + Allow),
 * bearer-token auth (constant-time compare; /healthz-like routes marked
 * HTTP_PUBLIC skip it), request bodies accumulated up to a cap (413) or
 * streamed to the route, Content-Type checks (415) and JSON error bodies
 * {"error":{"code","message"}}. Before routing, the browser and network
 * defences of the README's "Security" (httpguard.h, httpconn.h):
 * ambiguous framing is 400, a foreign Host 421, a cross-origin
 * state-changing request 403; connections are capped per client address
 * and in all, and a request's headers and body must arrive within
 * deadlines. Requests are counted in the optional metrics registry
 * (http_requests_total, http_request_duration_seconds).
 *
 * Threads: handlers run on MHD pool threads and may block on SQLite, never
 * on SMTP or Kafka; a deferred request is answered by whichever thread
 * calls http_resume. Anything they share must be locked by its owner.
 */
#ifndef HTTPD_H
#define HTTPD_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct metrics;
struct http_response;

#define HTTP_MAX_PARAMS 4

struct http_request {
    const char *method;
    const char *path;
    const char *params[HTTP_MAX_PARAMS]; /* the path segments matched by '*' */
    size_t nparams;
    const char *body; /* accumulated body, NUL-terminated; NULL if none */
    size_t body_len;
    void *app;               /* http_config.app */
    struct metrics *metrics; /* http_config.metrics (NULL if none) */
    void *stream;            /* free for a stream route's own state */
    void *conn;              /* private: the MHD connection */
};

/* http_query / http_header - borrowed, NULL when absent */
const char *http_query(const struct http_request *r, const char *key);
const char *http_header(const struct http_request *r, const char *key);

/* http_parse_int - s as a decimal integer in [min, max] (the whole string,
 * no overflow); 0 or -1. For path segments, which answer 404, not 400. */
int http_parse_int(const char *s, int64_t min, int64_t max, int64_t *out);
/* http_query_int - ?key= as an integer in [min, max], def when absent. On a
 * bad value replies 400 invalid_query naming the key and its range, and
 * returns -1: the handler just returns. */
int http_query_int(const struct http_request *r, struct http_response *resp, const char *key,
                   int64_t def, int64_t min, int64_t max, int64_t *out);
/* http_paging - ?limit= (1..max_limit, default def_limit) and ?offset=
 * (>= 0, default 0); as http_query_int on a bad value */
int http_paging(const struct http_request *r, struct http_response *resp, int64_t def_limit,
                int64_t max_limit, int64_t *limit, int64_t *offset);

/* Replies. Each handler sets exactly one; a later one replaces an earlier.
 * http_reply_json takes ownership of body (json_object_put when done). */
void http_reply_json(struct http_response *resp, int status, json_object *body);
void http_reply_error(struct http_response *resp, int status, const char *code, const char *fmt,
                      ...) __attribute__((format(printf, 4, 5)));
/* takes ownership of text (free()) */
void http_reply_text(struct http_response *resp, int status, const char *content_type, char *text);
/* streamed body: fn fills buf with up to max bytes, returns the count, 0 at
 * the end, -1 on error (connection closed). free_ctx(ctx) at completion. */
typedef ssize_t (*http_stream_fn)(void *ctx, char *buf, size_t max);
void http_reply_stream(struct http_response *resp, int status, const char *content_type,
                       http_stream_fn fn, void *ctx, void (*free_ctx)(void *));
/* an extra response header (copied) */
void http_reply_header(struct http_response *resp, const char *name, const char *value);
bool http_replied(const struct http_response *resp);

typedef void (*http_handler_fn)(struct http_request *req, struct http_response *resp);

/* Deferred replies. A handler whose answer depends on another thread (for
 * example a group commit) calls http_defer() and returns without a reply:
 * the connection is suspended and the pool thread goes on serving other
 * connections, so the number of requests waiting is bounded by the
 * connection limit, not by the pool size. The other thread then sets the
 * reply with http_reply_* on the same resp and calls http_resume(d)
 * exactly once; from then on it must not touch req or resp (they belong to
 * the server again, and the request body is freed). http_stop waits for
 * every deferred request to be resumed. */
struct http_deferred;
struct http_deferred *http_defer(struct http_request *req, struct http_response *resp);
void http_resume(struct http_deferred *d);

/* A route whose request body is streamed to it in chunks instead of being
 * accumulated. data() replying (an error) stops the stream: the rest of the
 * body is discarded. end() runs when the whole body arrived and must reply.
 * cleanup() always runs last, on success or failure, to free req->stream. */
struct http_stream_ops {
    void (*begin)(struct http_request *req, struct http_response *resp);
    void (*data)(struct http_request *req, const char *data, size_t len,
                 struct http_response *resp);
    void (*end)(struct http_request *req, struct http_response *resp);
    void (*cleanup)(struct http_request *req);
};

#define HTTP_PUBLIC 0x1       /* no bearer token needed */
#define HTTP_CROSS_ORIGIN 0x2 /* a public form: posts from other origins allowed */
#define HTTP_UNTYPED_BODY 0x4 /* a body without Content-Type is accepted (opaque bytes) */

struct http_route {
    const char *method;  /* "GET", "POST", ... (HEAD is served by GET routes) */
    const char *pattern; /* a path; a segment "*" matches any one segment */
    http_handler_fn handler;
    const struct http_stream_ops *stream; /* instead of handler */
    unsigned flags;
    const char *content_type; /* required request type when a body is sent */
    size_t body_max;          /* 0: the server's default */
};

struct http_config {
    const char *bind_addr;     /* IPv4 or IPv6 literal; default 127.0.0.1 */
    int port;                  /* 0: any free port (see http_port) */
    const char *api_token;     /* NULL/empty: no auth (loopback only) */
    unsigned threads;          /* pool size, default 4 */
    unsigned conn_timeout_s;   /* idle connection timeout, default 30 */
    size_t body_max;           /* default 1 MiB */
    const char *allowed_hosts; /* extra Host names, comma-separated (httpguard.h) */
    unsigned max_conns;        /* default 1024 */
    unsigned max_conns_per_ip; /* default 128 */
    unsigned header_timeout_s; /* request line + headers, default 10 */
    unsigned body_timeout_s;   /* body, default 30 (+1 s per body_min_rate bytes) */
    unsigned body_min_rate;    /* bytes/s, default 4096 */
    const struct http_route *routes;
    size_t nroutes;
    void *app;
    struct metrics *metrics; /* optional */
};

/* http_is_loopback - the address is 127.0.0.0/8 or ::1 */
bool http_is_loopback(const char *addr);
/* http_start - refuses a non-loopback bind_addr without api_token. NULL
 * with a message on failure. */
struct http_server *http_start(const struct http_config *cfg, char *errbuf, size_t errlen);
int http_port(const struct http_server *s);
/* http_stop - stop accepting, wait for deferred requests to be resumed,
 * finish running requests, free. NULL no-op. */
void http_stop(struct http_server *s);

/* http_token_equal - constant-time comparison of two tokens of any length */
bool http_token_equal(const char *a, const char *b);

#endif
