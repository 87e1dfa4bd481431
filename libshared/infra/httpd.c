/* httpd.c - libmicrohttpd wrapper: routing, auth, bodies, replies.
 *
 * Threads: MHD's internal pool (cfg->threads) calls access_cb and
 * completed_cb; each request's state (struct reqstate) lives in *req_cls
 * and is touched by one thread at a time. The server object is read-only
 * after http_start().
 */
#include "httpd.h"
#include "errbuf.h"
#include "buf.h"
#include "config.h"
#include "httpconn.h"
#include "httpguard.h"
#include "jsonx.h"
#include "log.h"
#include "metrics.h"
#include "timeutil.h"
#include "xalloc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define MAX_EXTRA_HEADERS 8
#define MAX_SEGMENTS 16

enum reply_kind { REPLY_NONE = 0, REPLY_TEXT, REPLY_STREAM };

struct http_response {
    enum reply_kind kind;
    int status;
    const char *ctype;
    char *text;
    http_stream_fn fn;
    void *ctx;
    void (*free_ctx)(void *);
    char *hname[MAX_EXTRA_HEADERS];
    char *hvalue[MAX_EXTRA_HEADERS];
    int nh;
};

struct http_server {
    struct MHD_Daemon *daemon;
    struct http_config cfg;
    char *token; /* NULL: no auth */
    int port;
    struct http_hosts *hosts;
    struct httpconn_table *conns;
    struct metric *refused[3]; /* framing 400, host 421, origin 403 */
    /* handlers running + deferred requests not yet back in MHD's hands:
     * MHD must not be stopped while a connection is suspended, so
     * http_stop sets stopping (later requests get a 503) and waits for 0 */
    pthread_mutex_t defer_mu;
    pthread_cond_t defer_cv;
    long active;
    bool stopping;
};

struct reqstate {
    struct http_server *srv;
    struct httpconn *hc;            /* the connection's deadlines; NULL if untracked */
    const struct http_route *route; /* NULL: replied at once */
    struct http_request req;
    struct http_response resp;
    struct buf body;
    char *pathbuf;
    int64_t start_ms;
    int too_large;
    int stream_stopped;
    int queued;
    int deferred; /* 1: http_defer was called, not resumed yet; 2: back from it */
};

/* ---- replies ---------------------------------------------------------- */

static void resp_clear_body(struct http_response *r)
{
    free(r->text);
    r->text = NULL;
    if (r->free_ctx && r->ctx)
        r->free_ctx(r->ctx);
    r->fn = NULL;
    r->ctx = NULL;
    r->free_ctx = NULL;
}

static void resp_cleanup(struct http_response *r)
{
    resp_clear_body(r);
    for (int i = 0; i < r->nh; i++) {
        free(r->hname[i]);
        free(r->hvalue[i]);
    }
    r->nh = 0;
}

void http_reply_text(struct http_response *resp, int status, const char *content_type, char *text)
{
    resp_clear_body(resp);
    resp->kind = REPLY_TEXT;
    resp->status = status;
    resp->ctype = content_type;
    resp->text = text;
}

void http_reply_json(struct http_response *resp, int status, json_object *body)
{
    char *s = jsonx_to_string(body);
    json_object_put(body);
    http_reply_text(resp, status, "application/json", s);
}

void http_reply_error(struct http_response *resp, int status, const char *code, const char *fmt,
                      ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    http_reply_text(resp, status, "application/json", jsonx_error_body(code, msg));
}

void http_reply_stream(struct http_response *resp, int status, const char *content_type,
                       http_stream_fn fn, void *ctx, void (*free_ctx)(void *))
{
    resp_clear_body(resp);
    resp->kind = REPLY_STREAM;
    resp->status = status;
    resp->ctype = content_type;
    resp->fn = fn;
    resp->ctx = ctx;
    resp->free_ctx = free_ctx;
}

void http_reply_header(struct http_response *resp, const char *name, const char *value)
{
    if (resp->nh >= MAX_EXTRA_HEADERS)
        return;
    resp->hname[resp->nh] = xstrdup(name);
    resp->hvalue[resp->nh] = xstrdup(value);
    resp->nh++;
}

bool http_replied(const struct http_response *resp)
{
    return resp->kind != REPLY_NONE;
}

/* enter / leave - around a handler call and, when it defers, until the
 * request is back from its suspension; enter refuses once stopping */
static bool enter(struct http_server *srv)
{
    pthread_mutex_lock(&srv->defer_mu);
    bool ok = !srv->stopping;
    if (ok)
        srv->active++;
    pthread_mutex_unlock(&srv->defer_mu);
    return ok;
}

static void leave(struct http_server *srv)
{
    pthread_mutex_lock(&srv->defer_mu);
    if (--srv->active == 0 && srv->stopping)
        pthread_cond_broadcast(&srv->defer_cv);
    pthread_mutex_unlock(&srv->defer_mu);
}

struct http_deferred *http_defer(struct http_request *req, struct http_response *resp)
{
    struct reqstate *st = (struct reqstate *)((char *)resp - offsetof(struct reqstate, resp));
    (void)req;
    st->deferred = 1;
    /* suspended before the caller hands the request to another thread, so
     * a resume can never come first */
    MHD_suspend_connection(st->req.conn);
    return (struct http_deferred *)st;
}

void http_resume(struct http_deferred *d)
{
    struct reqstate *st = (struct reqstate *)d;
    /* st may be gone once this returns: MHD calls access_cb (which leaves)
     * or, if the client went away, completed_cb (which leaves too) */
    MHD_resume_connection(st->req.conn);
}

const char *http_query(const struct http_request *r, const char *key)
{
    return MHD_lookup_connection_value((struct MHD_Connection *)r->conn, MHD_GET_ARGUMENT_KIND,
                                       key);
}

const char *http_header(const struct http_request *r, const char *key)
{
    return MHD_lookup_connection_value((struct MHD_Connection *)r->conn, MHD_HEADER_KIND, key);
}

/* ---- query parameters ------------------------------------------------ */

int http_parse_int(const char *s, int64_t min, int64_t max, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int http_query_int(const struct http_request *r, struct http_response *resp, const char *key,
                   int64_t def, int64_t min, int64_t max, int64_t *out)
{
    const char *v = http_query(r, key);
    if (!v) {
        *out = def;
        return 0;
    }
    if (http_parse_int(v, min, max, out) == 0)
        return 0;
    if (max != INT64_MAX)
        http_reply_error(resp, 400, "invalid_query", "%s must be an integer from %lld to %lld", key,
                         (long long)min, (long long)max);
    else if (min == 0 || min == 1)
        http_reply_error(resp, 400, "invalid_query", "%s must be a %s integer", key,
                         min ? "positive" : "non-negative");
    else
        http_reply_error(resp, 400, "invalid_query", "%s must be an integer of at least %lld", key,
                         (long long)min);
    return -1;
}

int http_paging(const struct http_request *r, struct http_response *resp, int64_t def_limit,
                int64_t max_limit, int64_t *limit, int64_t *offset)
{
    if (http_query_int(r, resp, "limit", def_limit, 1, max_limit, limit) != 0)
        return -1;
    return http_query_int(r, resp, "offset", 0, 0, INT64_MAX, offset);
}

/* ---- auth and address helpers ---------------------------------------- */

bool http_token_equal(const char *a, const char *b)
{
    unsigned char ha[SHA256_DIGEST_LENGTH], hb[SHA256_DIGEST_LENGTH];
    /* hashing first makes the comparison independent of both lengths */
    SHA256((const unsigned char *)a, strlen(a), ha);
    SHA256((const unsigned char *)b, strlen(b), hb);
    return CRYPTO_memcmp(ha, hb, sizeof ha) == 0;
}

bool http_is_loopback(const char *addr)
{
    /* an address, not a name: BIND_ADDR must be an IP literal */
    return strcasecmp(addr, "localhost") != 0 && config_host_is_loopback(addr);
}

static bool authorized(const struct http_server *srv, struct MHD_Connection *c)
{
    if (!srv->token)
        return true;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h || strncasecmp(h, "Bearer ", 7) != 0)
        return false;
    h += 7;
    while (*h == ' ')
        h++;
    return http_token_equal(h, srv->token);
}

/* ---- routing ----------------------------------------------------------- */

/* split_path - split a copy of path into segments; returns the count or
 * -1 when there are too many */
static int split_path(char *p, char **seg)
{
    int n = 0;
    while (*p == '/')
        p++;
    while (*p) {
        if (n == MAX_SEGMENTS)
            return -1;
        seg[n++] = p;
        char *slash = strchr(p, '/');
        if (!slash)
            break;
        *slash = '\0';
        p = slash + 1;
    }
    return n;
}

static bool pattern_match(const char *pattern, char **seg, int nseg, const char **params,
                          size_t *nparams)
{
    char pbuf[256];
    char *pseg[MAX_SEGMENTS];
    if (strlcpy_ok(pbuf, pattern, sizeof pbuf) != 0)
        return false;
    int np = split_path(pbuf, pseg);
    if (np != nseg)
        return false;
    size_t k = 0;
    for (int i = 0; i < np; i++) {
        if (strcmp(pseg[i], "*") == 0) {
            if (k < HTTP_MAX_PARAMS && params)
                params[k] = seg[i];
            k++;
        } else if (strcmp(pseg[i], seg[i]) != 0) {
            return false;
        }
    }
    if (nparams)
        *nparams = k < HTTP_MAX_PARAMS ? k : HTTP_MAX_PARAMS;
    return true;
}

static bool method_is(const char *route_method, const char *method)
{
    if (strcmp(route_method, method) == 0)
        return true;
    return strcmp(method, "HEAD") == 0 && strcmp(route_method, "GET") == 0;
}

/* route - find the route for method+path; on a path match with another
 * method, fill allow. NULL when none. */
static const struct http_route *route(struct http_server *srv, struct reqstate *st,
                                      const char *method, const char *url, struct buf *allow)
{
    char *seg[MAX_SEGMENTS];
    st->pathbuf = xstrdup(url);
    int nseg = split_path(st->pathbuf, seg);
    if (nseg < 0)
        return NULL;
    const struct http_route *found = NULL;
    for (size_t i = 0; i < srv->cfg.nroutes; i++) {
        const struct http_route *r = &srv->cfg.routes[i];
        if (!pattern_match(r->pattern, seg, nseg, NULL, NULL))
            continue;
        if (method_is(r->method, method)) {
            found = r;
            pattern_match(r->pattern, seg, nseg, st->req.params, &st->req.nparams);
            break;
        }
        if (!strstr(buf_str(allow), r->method)) {
            if (allow->len)
                buf_append(allow, ", ", 2);
            buf_append(allow, r->method, strlen(r->method));
            if (strcmp(r->method, "GET") == 0)
                buf_append(allow, ", HEAD", 6);
        }
    }
    return found;
}

/* ---- MHD glue ----------------------------------------------------------- */

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    struct http_response *r = cls;
    ssize_t n = r->fn(r->ctx, buf, max);
    if (n == 0)
        return MHD_CONTENT_READER_END_OF_STREAM;
    if (n < 0)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    return n;
}

static void stream_free(void *cls)
{
    struct http_response *r = cls;
    if (r->free_ctx && r->ctx)
        r->free_ctx(r->ctx);
    free(r);
}

static enum MHD_Result queue(struct MHD_Connection *c, struct reqstate *st)
{
    struct http_response *r = &st->resp;
    struct MHD_Response *mr;
    if (r->kind == REPLY_NONE)
        http_reply_error(r, 500, "internal", "the handler produced no reply");
    if (r->kind == REPLY_STREAM) {
        /* the response owns a copy of the stream state from here on */
        struct http_response *own = xcalloc(1, sizeof *own);
        own->fn = r->fn;
        own->ctx = r->ctx;
        own->free_ctx = r->free_ctx;
        r->ctx = NULL;
        r->free_ctx = NULL;
        r->fn = NULL;
        mr = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 32 * 1024, stream_reader, own,
                                               stream_free);
        if (!mr)
            stream_free(own);
    } else {
        size_t len = r->text ? strlen(r->text) : 0;
        mr = MHD_create_response_from_buffer(len, r->text ? r->text : (char *)"",
                                             r->text ? MHD_RESPMEM_MUST_FREE
                                                     : MHD_RESPMEM_PERSISTENT);
        if (mr)
            r->text = NULL; /* now owned by the response */
    }
    if (!mr)
        return MHD_NO;
    if (r->ctype)
        MHD_add_response_header(mr, MHD_HTTP_HEADER_CONTENT_TYPE, r->ctype);
    MHD_add_response_header(mr, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(mr, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    for (int i = 0; i < r->nh; i++)
        MHD_add_response_header(mr, r->hname[i], r->hvalue[i]);
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)r->status, mr);
    MHD_destroy_response(mr);
    st->queued = 1;
    return ret;
}

static bool ctype_ok(const char *want, const char *got)
{
    if (!want || !got)
        return true; /* no requirement, or none given: the body check decides */
    size_t n = strlen(want);
    return strncasecmp(got, want, n) == 0 && (got[n] == '\0' || got[n] == ';' || got[n] == ' ');
}

static enum MHD_Result framing_cb(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *value)
{
    (void)kind;
    http_framing_add(cls, key, value);
    return MHD_YES;
}

/* refuse - an early error that also ends the connection: after a framing
 * error nothing that follows on it can be trusted */
static void refuse(struct http_server *srv, struct reqstate *st, int which, int status,
                   const char *code, const char *msg)
{
    http_reply_error(&st->resp, status, code, "%s", msg);
    http_reply_header(&st->resp, "Connection", "close");
    if (srv->refused[which])
        metric_inc(srv->refused[which]);
}

/* guard - the checks that come before routing: framing, Host, load.
 * Replies and returns false when the request is refused. */
static bool guard(struct http_server *srv, struct reqstate *st, struct MHD_Connection *c,
                  const char *version)
{
    struct http_framing f = {.http11 = strcmp(version, MHD_HTTP_VERSION_1_0) != 0};
    MHD_get_connection_values(c, MHD_HEADER_KIND, framing_cb, &f);
    const char *bad = http_framing_error(&f);
    if (bad) {
        refuse(srv, st, 0, 400, "bad_request", bad);
        return false;
    }
    const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
    if (!http_host_allowed(srv->hosts, host, !f.http11)) {
        refuse(srv, st, 1, 421, "misdirected_request",
               "this server does not answer to that Host (see ALLOWED_HOSTS)");
        return false;
    }
    if (httpconn_busy(srv->conns)) {
        http_reply_error(&st->resp, 503, "busy", "too many open connections; retry shortly");
        http_reply_header(&st->resp, "Retry-After", "1");
        http_reply_header(&st->resp, "Connection", "close");
        return false;
    }
    return true;
}

/* cross_origin - a browser sent this state-changing request from a page of
 * another origin (or an opaque one) */
static bool cross_origin(struct MHD_Connection *c, const char *method)
{
    if (!http_method_changes_state(method))
        return false;
    const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
    const char *site = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Sec-Fetch-Site");
    if (site && strcasecmp(site, "cross-site") == 0)
        return true;
    if (!origin)
        return false;
    return !http_origin_same(origin,
                             MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST));
}

/* has_body - the request announces a body */
static bool has_body(struct MHD_Connection *c)
{
    const char *cl =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING))
        return true;
    return cl && strspn(cl, "0") != strlen(cl);
}

/* first_call - guard, route, authorize, check headers; reply early on
 * failure */
static void first_call(struct http_server *srv, struct reqstate *st, struct MHD_Connection *c,
                       const char *url, const char *method, const char *version)
{
    if (!guard(srv, st, c, version))
        return;
    struct buf allow;
    buf_init(&allow, 256);
    const struct http_route *r = route(srv, st, method, url, &allow);
    if (!r) {
        if (allow.len) {
            http_reply_error(&st->resp, 405, "method_not_allowed", "%s is not allowed on %s",
                             method, url);
            http_reply_header(&st->resp, "Allow", buf_str(&allow));
        } else {
            http_reply_error(&st->resp, 404, "not_found", "no such path");
        }
        buf_cleanup(&allow);
        return;
    }
    buf_cleanup(&allow);
    st->route = r; /* cleanup() of a stream route must accept req->stream == NULL */
    if (!(r->flags & HTTP_CROSS_ORIGIN) && cross_origin(c, method)) {
        http_reply_error(&st->resp, 403, "forbidden_origin",
                         "a state-changing request from another origin is refused");
        if (srv->refused[2])
            metric_inc(srv->refused[2]);
        return;
    }
    if (!(r->flags & HTTP_PUBLIC) && !authorized(srv, c)) {
        http_reply_error(&st->resp, 401, "unauthorized", "a valid bearer token is required");
        http_reply_header(&st->resp, "WWW-Authenticate", "Bearer");
        return;
    }
    size_t cap = r->body_max ? r->body_max : srv->cfg.body_max;
    const char *cl =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl) {
        char *end;
        unsigned long long v = strtoull(cl, &end, 10);
        if (*end == '\0' && v > cap) {
            http_reply_error(&st->resp, 413, "payload_too_large",
                             "the body is larger than %zu bytes", cap);
            return;
        }
    }
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (!ct && has_body(c) && !(r->flags & HTTP_UNTYPED_BODY)) {
        /* a browser sends a Blob without a type with no CORS preflight */
        http_reply_error(&st->resp, 415, "unsupported_media_type",
                         "a request body needs a Content-Type%s%s", r->content_type ? " of " : "",
                         r->content_type ? r->content_type : "");
        return;
    }
    if (!ctype_ok(r->content_type, ct)) {
        http_reply_error(&st->resp, 415, "unsupported_media_type", "Content-Type must be %s",
                         r->content_type);
        return;
    }
    buf_init(&st->body, cap);
    if (r->stream && r->stream->begin)
        r->stream->begin(&st->req, &st->resp);
}

static enum MHD_Result access_cb(void *cls, struct MHD_Connection *c, const char *url,
                                 const char *method, const char *version, const char *data,
                                 size_t *data_size, void **req_cls)
{
    struct http_server *srv = cls;
    struct reqstate *st = *req_cls;
    if (!st) {
        st = xcalloc(1, sizeof *st);
        st->srv = srv;
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        st->hc = ci ? ci->socket_context : NULL;
        httpconn_phase(srv->conns, st->hc, HTTPCONN_BODY);
        st->start_ms = time_mono_ms();
        st->req.method = method;
        st->req.path = url;
        st->req.app = srv->cfg.app;
        st->req.metrics = srv->cfg.metrics;
        st->req.conn = c;
        buf_init(&st->body, 0);
        *req_cls = st;
        first_call(srv, st, c, url, method, version);
        if (http_replied(&st->resp)) {
            httpconn_phase(srv->conns, st->hc, HTTPCONN_SERVING);
            return queue(c, st); /* early answer; MHD closes after it */
        }
        return MHD_YES;
    }
    if (st->queued) { /* replied early: discard whatever still arrives */
        *data_size = 0;
        return MHD_YES;
    }
    if (st->deferred == 1) { /* resumed: the reply is set */
        st->deferred = 2;
        leave(srv);
        return queue(c, st);
    }
    const struct http_route *r = st->route;
    if (*data_size) {
        httpconn_body(srv->conns, st->hc, *data_size);
        if (r->stream) {
            if (st->body.len + *data_size > st->body.cap) {
                if (!st->too_large)
                    http_reply_error(&st->resp, 413, "payload_too_large",
                                     "the body is larger than %zu bytes", st->body.cap);
                st->too_large = 1;
                st->stream_stopped = 1;
            }
            st->body.len += *data_size; /* counted, not kept */
            if (!st->stream_stopped) {
                r->stream->data(&st->req, data, *data_size, &st->resp);
                if (http_replied(&st->resp))
                    st->stream_stopped = 1;
            }
        } else if (!st->too_large && buf_append(&st->body, data, *data_size) != 0) {
            st->too_large = 1;
        }
        *data_size = 0;
        return MHD_YES;
    }
    /* the whole body has arrived */
    httpconn_phase(srv->conns, st->hc, HTTPCONN_SERVING);
    if (r->stream) {
        if (!st->stream_stopped && r->stream->end)
            r->stream->end(&st->req, &st->resp);
    } else if (st->too_large) {
        http_reply_error(&st->resp, 413, "payload_too_large", "the body is larger than %zu bytes",
                         st->body.cap);
    } else {
        st->req.body = st->body.len ? st->body.data : NULL;
        st->req.body_len = st->body.len;
        if (!enter(srv)) {
            http_reply_error(&st->resp, 503, "unavailable", "the server is shutting down");
            return queue(c, st);
        }
        r->handler(&st->req, &st->resp);
        if (st->deferred)
            return MHD_YES; /* suspended until http_resume */
        leave(srv);
    }
    return queue(c, st);
}

static void count_request(struct reqstate *st)
{
    struct metrics *m = st->srv->cfg.metrics;
    if (!m)
        return;
    char code[8];
    snprintf(code, sizeof code, "%d", st->resp.status);
    const char *path = st->route ? st->route->pattern : "unmatched";
    const char *method = st->route ? st->route->method : "other";
    metric_inc(
        metrics_counter(m, "http_requests_total", "HTTP requests answered",
                        (const char *[]){"method", method, "route", path, "code", code, NULL}));
    static const double buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                     0.05,   0.1,   0.25,   0.5,   1,    2.5};
    metric_observe(metrics_histogram(m, "http_request_duration_seconds",
                                     "Time to answer an HTTP request",
                                     (const char *[]){"route", path, NULL}, buckets,
                                     sizeof buckets / sizeof buckets[0]),
                   (double)(time_mono_ms() - st->start_ms) / 1000.0);
}

static void completed_cb(void *cls, struct MHD_Connection *c, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)c;
    struct http_server *srv = cls;
    struct reqstate *st = *req_cls;
    if (!st)
        return;
    /* keep-alive: the next request's headers are due */
    httpconn_phase(srv->conns, st->hc, HTTPCONN_HEADERS);
    if (st->deferred == 1) /* resumed, but the client had gone */
        leave(st->srv);
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && st->route)
        log_debug("http: %s %s terminated early (code %d)", st->req.method, st->req.path, (int)toe);
    if (st->queued)
        count_request(st);
    if (st->route && st->route->stream && st->route->stream->cleanup)
        st->route->stream->cleanup(&st->req);
    resp_cleanup(&st->resp);
    buf_cleanup(&st->body);
    free(st->pathbuf);
    free(st);
    *req_cls = NULL;
}

/* notify_conn - track each connection from accept to close; MHD calls
 * CLOSED before it closes the descriptor (see httpconn.h) */
static void notify_conn(void *cls, struct MHD_Connection *c, void **socket_context,
                        enum MHD_ConnectionNotificationCode toe)
{
    struct http_server *srv = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        *socket_context = ci ? httpconn_open(srv->conns, ci->connect_fd) : NULL;
    } else {
        httpconn_close(srv->conns, *socket_context);
        *socket_context = NULL;
    }
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    log_warn("http: %s", msg);
}

struct http_server *http_start(const struct http_config *cfg, char *errbuf, size_t errlen)
{
    const char *bind = cfg->bind_addr && *cfg->bind_addr ? cfg->bind_addr : "127.0.0.1";
    bool has_token = cfg->api_token && *cfg->api_token;
    if (!http_is_loopback(bind) && !has_token) {
        errbuf_set(errbuf, errlen,
                   "BIND_ADDR %s is not a loopback address and API_TOKEN is not set: refusing to "
                   "serve the API unauthenticated",
                   bind);
        return NULL;
    }
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
                     MHD_ALLOW_SUSPEND_RESUME;
    if (cfg->port < 0 || cfg->port > 65535) {
        errbuf_set(errbuf, errlen, "PORT %d is out of range", cfg->port);
        return NULL;
    }
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, bind, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)cfg->port);
    } else if (inet_pton(AF_INET6, bind, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)cfg->port);
        flags |= MHD_USE_IPv6;
    } else {
        errbuf_set(errbuf, errlen, "BIND_ADDR '%s' is not an IPv4 or IPv6 address", bind);
        return NULL;
    }
    struct http_hosts *hosts = http_hosts_new(bind, cfg->allowed_hosts, errbuf, errlen);
    if (!hosts)
        return NULL;
    struct http_server *srv = xcalloc(1, sizeof *srv);
    srv->cfg = *cfg;
    srv->hosts = hosts;
    struct http_config *hc = &srv->cfg;
    if (!hc->threads)
        hc->threads = 4;
    if (!hc->conn_timeout_s)
        hc->conn_timeout_s = 30;
    if (!hc->body_max)
        hc->body_max = 1024 * 1024;
    if (!hc->max_conns)
        hc->max_conns = 1024;
    if (!hc->max_conns_per_ip)
        hc->max_conns_per_ip = 128;
    if (!hc->header_timeout_s)
        hc->header_timeout_s = 10;
    if (!hc->body_timeout_s)
        hc->body_timeout_s = 30;
    if (!hc->body_min_rate)
        hc->body_min_rate = 4096;
    struct httpconn_config cc = {.max_conns = hc->max_conns,
                                 .header_timeout_s = hc->header_timeout_s,
                                 .body_timeout_s = hc->body_timeout_s,
                                 .body_min_rate = hc->body_min_rate,
                                 .busy_timeout_ms = 1000,
                                 .metrics = cfg->metrics};
    srv->conns = httpconn_table_new(&cc);
    if (cfg->metrics) {
        static const char *const why[] = {"bad_framing", "host", "origin"};
        for (int i = 0; i < 3; i++)
            srv->refused[i] = metrics_counter(cfg->metrics, "http_requests_refused_total",
                                              "Requests refused before routing",
                                              (const char *[]){"reason", why[i], NULL});
    }
    srv->token = has_token ? xstrdup(cfg->api_token) : NULL;
    pthread_mutex_init(&srv->defer_mu, NULL);
    pthread_cond_init(&srv->defer_cv, NULL);
    if (srv->conns) /* notify_conn needs the table */
        srv->daemon = MHD_start_daemon(
            /* the logger first: libmicrohttpd warns about options before it */
            flags, (uint16_t)cfg->port, NULL, NULL, access_cb, srv, MHD_OPTION_EXTERNAL_LOGGER,
            mhd_log, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
            MHD_OPTION_THREAD_POOL_SIZE, hc->threads, MHD_OPTION_CONNECTION_TIMEOUT,
            hc->conn_timeout_s, MHD_OPTION_CONNECTION_LIMIT, hc->max_conns,
            MHD_OPTION_PER_IP_CONNECTION_LIMIT, hc->max_conns_per_ip, MHD_OPTION_NOTIFY_COMPLETED,
            completed_cb, srv, MHD_OPTION_NOTIFY_CONNECTION, notify_conn, srv, MHD_OPTION_END);
    if (!srv->daemon) {
        errbuf_set(errbuf, errlen, "cannot listen on %s port %d (in use?)", bind, cfg->port);
        httpconn_table_free(srv->conns);
        http_hosts_free(srv->hosts);
        pthread_mutex_destroy(&srv->defer_mu);
        pthread_cond_destroy(&srv->defer_cv);
        free(srv->token);
        free(srv);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = info ? info->port : cfg->port;
    return srv;
}

int http_port(const struct http_server *s)
{
    return s->port;
}

void http_stop(struct http_server *s)
{
    if (!s)
        return;
    /* stop accepting, then let every deferred request get its answer:
     * MHD must not be stopped with a suspended connection */
    MHD_socket ls = MHD_quiesce_daemon(s->daemon);
    if (ls != MHD_INVALID_SOCKET)
        close(ls);
    pthread_mutex_lock(&s->defer_mu);
    s->stopping = true;
    while (s->active > 0)
        pthread_cond_wait(&s->defer_cv, &s->defer_mu);
    pthread_mutex_unlock(&s->defer_mu);
    MHD_stop_daemon(s->daemon);
    httpconn_table_free(s->conns);
    http_hosts_free(s->hosts);
    pthread_mutex_destroy(&s->defer_mu);
    pthread_cond_destroy(&s->defer_cv);
    if (s->token)
        OPENSSL_cleanse(s->token, strlen(s->token));
    free(s->token);
    free(s);
}
