/* tls.c - TLS clients with OpenSSL: SSL_CTX cache per CA file, socket BIO
 * with MSG_NOSIGNAL, client handshake with the peer check, read/write steps,
 * and the same peer check for a chain got from another TLS stack
 * (contracts in tls.h).
 *
 * Owns the process-wide CTX cache (ctx_list, under ctx_lock) and the BIO
 * method (sock_method, made once under sock_once); both are the only shared
 * state, any thread may call in. An SSL belongs to the caller that made it
 * and is used by one thread at a time; the fd under it is the caller's.
 */
#include "tls.h"
#include "errbuf.h"
#include "xalloc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* ssl_reason - the first queued OpenSSL error as text; clears the queue */
static void ssl_reason(char *out, size_t len)
{
    unsigned long e = ERR_get_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    if (r)
        snprintf(out, len, "%s", r);
    else if (e)
        ERR_error_string_n(e, out, len);
    else
        snprintf(out, len, "unknown error");
    ERR_clear_error();
}

/* ---- context cache ----------------------------------------------------------- */

struct ctx_ent {
    struct ctx_ent *next;
    char *ca_file; /* NULL: OpenSSL's default paths */
    SSL_CTX *ctx;
    unsigned refs;
};

static pthread_mutex_t ctx_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ctx_ent *ctx_list;

static SSL_CTX *ctx_build(const char *ca_file, char *errbuf, size_t errlen)
{
    char why[256];
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        ssl_reason(why, sizeof why);
        errbuf_set(errbuf, errlen, "TLS: cannot create a context: %s", why);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    int ok = ca_file ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL)
                     : SSL_CTX_set_default_verify_paths(ctx);
    if (ok != 1) {
        ssl_reason(why, sizeof why);
        if (ca_file)
            errbuf_set(errbuf, errlen, "TLS: cannot load CA file '%s': %s", ca_file, why);
        else
            errbuf_set(errbuf, errlen, "TLS: cannot load the default CA paths: %s", why);
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

SSL_CTX *tls_ctx_acquire(const char *ca_file, char *errbuf, size_t errlen)
{
    SSL_CTX *ctx = NULL;
    pthread_mutex_lock(&ctx_lock);
    for (struct ctx_ent *e = ctx_list; e; e = e->next) {
        if ((!e->ca_file && !ca_file) || (e->ca_file && ca_file && !strcmp(e->ca_file, ca_file))) {
            e->refs++;
            ctx = e->ctx;
            goto out;
        }
    }
    ctx = ctx_build(ca_file, errbuf, errlen);
    if (ctx) {
        struct ctx_ent *e = xcalloc(1, sizeof *e);
        e->ca_file = ca_file ? xstrdup(ca_file) : NULL;
        e->ctx = ctx;
        e->refs = 1;
        e->next = ctx_list;
        ctx_list = e;
    }
out:
    pthread_mutex_unlock(&ctx_lock);
    return ctx;
}

void tls_ctx_release(SSL_CTX *ctx)
{
    if (!ctx)
        return;
    pthread_mutex_lock(&ctx_lock);
    for (struct ctx_ent **pp = &ctx_list; *pp; pp = &(*pp)->next) {
        struct ctx_ent *e = *pp;
        if (e->ctx != ctx)
            continue;
        if (--e->refs == 0) {
            *pp = e->next;
            SSL_CTX_free(e->ctx);
            free(e->ca_file);
            free(e);
        }
        break;
    }
    pthread_mutex_unlock(&ctx_lock);
}

/* ---- socket BIO ---------------------------------------------------------------- */

/* The socket BIO: OpenSSL's writes with write(2), which raises SIGPIPE on a
 * closed peer; ours sends with MSG_NOSIGNAL. The fd is owned by the caller. */
static BIO_METHOD *sock_method;
static pthread_once_t sock_once = PTHREAD_ONCE_INIT;

static int sbio_fd(BIO *b)
{
    return (int)(intptr_t)BIO_get_data(b);
}

static int sbio_write(BIO *b, const char *data, int len)
{
    BIO_clear_retry_flags(b);
    ssize_t n = send(sbio_fd(b), data, (size_t)len, MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        BIO_set_retry_write(b);
    return (int)n;
}

static int sbio_read(BIO *b, char *out, int len)
{
    BIO_clear_retry_flags(b);
    ssize_t n = recv(sbio_fd(b), out, (size_t)len, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        BIO_set_retry_read(b);
    return (int)n;
}

static long sbio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b;
    (void)num;
    (void)ptr;
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int sbio_create(BIO *b)
{
    BIO_set_data(b, (void *)(intptr_t)-1);
    BIO_set_init(b, 1);
    return 1;
}

static int sbio_destroy(BIO *b)
{
    (void)b;
    return 1;
}

static void sock_method_init(void)
{
    BIO_METHOD *m =
        BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "socket, MSG_NOSIGNAL");
    if (!m || !BIO_meth_set_write(m, sbio_write) || !BIO_meth_set_read(m, sbio_read) ||
        !BIO_meth_set_ctrl(m, sbio_ctrl) || !BIO_meth_set_create(m, sbio_create) ||
        !BIO_meth_set_destroy(m, sbio_destroy)) {
        BIO_meth_free(m);
        m = NULL;
    }
    sock_method = m;
}

/* ---- sessions -------------------------------------------------------------------- */

/* want - true when sslerr asks to wait; *ev the poll events to wait for */
static bool want(int sslerr, short *ev)
{
    if (sslerr != SSL_ERROR_WANT_READ && sslerr != SSL_ERROR_WANT_WRITE)
        return false;
    *ev = sslerr == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
    return true;
}

/* io_fail - text for a failed SSL_read/SSL_write/SSL_connect */
static void io_fail(int sslerr, int ret, const char *what, char *errbuf, size_t errlen)
{
    char why[256], eb[128];
    int saved = errno;
    unsigned long e = ERR_peek_error();
    if (sslerr == SSL_ERROR_ZERO_RETURN ||
        (sslerr == SSL_ERROR_SYSCALL && e == 0 && (ret == 0 || saved == 0)) ||
        (e && ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING)) {
        ERR_clear_error();
        errbuf_set(errbuf, errlen, "connection closed by the server while %s", what);
        return;
    }
    if (sslerr == SSL_ERROR_SYSCALL && e == 0)
        snprintf(why, sizeof why, "%s", strerror_r(saved, eb, sizeof eb));
    else
        ssl_reason(why, sizeof why);
    errbuf_set(errbuf, errlen, "connection lost while %s: TLS: %s", what, why);
}

bool tls_host_is_ip(const char *host)
{
    unsigned char b[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, host, b) == 1 || inet_pton(AF_INET6, host, b) == 1;
}

int tls_expect_host(X509_VERIFY_PARAM *param, const char *host)
{
    if (tls_host_is_ip(host))
        return X509_VERIFY_PARAM_set1_ip_asc(param, host);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    return X509_VERIFY_PARAM_set1_host(param, host, 0);
}

SSL *tls_session(SSL_CTX *ctx, int fd, const char *host, char *errbuf, size_t errlen)
{
    char why[256];
    if (pthread_once(&sock_once, sock_method_init) != 0 || !sock_method) {
        errbuf_set(errbuf, errlen, "TLS: cannot create the socket BIO method");
        return NULL;
    }
    ERR_clear_error();
    SSL *ssl = SSL_new(ctx);
    BIO *bio = ssl ? BIO_new(sock_method) : NULL;
    if (!ssl || !bio) {
        SSL_free(ssl);
        ssl_reason(why, sizeof why);
        errbuf_set(errbuf, errlen, "TLS: cannot create a session: %s", why);
        return NULL;
    }
    BIO_set_data(bio, (void *)(intptr_t)fd);
    SSL_set_bio(ssl, bio, bio);
    int ok = tls_expect_host(SSL_get0_param(ssl), host) == 1 &&
             (tls_host_is_ip(host) || SSL_set_tlsext_host_name(ssl, host) == 1);
    if (!ok) {
        ssl_reason(why, sizeof why);
        errbuf_set(errbuf, errlen, "TLS: cannot set the expected host '%s': %s", host, why);
        tls_close(ssl, false);
        return NULL;
    }
    return ssl;
}

int tls_handshake(SSL *ssl, const char *host, int port, short *ev, char *errbuf, size_t errlen)
{
    ERR_clear_error();
    int r = SSL_connect(ssl);
    if (r != 1) {
        int e = SSL_get_error(ssl, r);
        if (want(e, ev))
            return 0;
        long v = SSL_get_verify_result(ssl);
        if (v != X509_V_OK) {
            ERR_clear_error();
            errbuf_set(errbuf, errlen, "TLS: certificate verify failed: %s (%s:%d)",
                       X509_verify_cert_error_string(v), host, port);
            return -1;
        }
        char what[400];
        io_fail(e, r, "in the TLS handshake", what, sizeof what);
        errbuf_set(errbuf, errlen, "TLS: handshake with %s:%d failed: %s", host, port, what);
        return -1;
    }
    /* fail closed even if a future change loosened the verify mode */
    long v = SSL_get_verify_result(ssl);
    if (v != X509_V_OK || !SSL_get0_peer_certificate(ssl)) {
        errbuf_set(errbuf, errlen, "TLS: certificate verify failed: %s (%s:%d)",
                   v != X509_V_OK ? X509_verify_cert_error_string(v) : "no certificate", host,
                   port);
        return -1;
    }
    return 1;
}

int tls_write(SSL *ssl, const char *p, size_t len, short *ev, const char *what, char *errbuf,
              size_t errlen)
{
    ERR_clear_error();
    int r = SSL_write(ssl, p, len > (size_t)INT_MAX ? INT_MAX : (int)len);
    if (r > 0)
        return r;
    int e = SSL_get_error(ssl, r);
    if (want(e, ev))
        return 0;
    io_fail(e, r, what, errbuf, errlen);
    return -1;
}

int tls_read(SSL *ssl, char *out, size_t len, short *ev, const char *what, char *errbuf,
             size_t errlen)
{
    ERR_clear_error();
    int r = SSL_read(ssl, out, len > (size_t)INT_MAX ? INT_MAX : (int)len);
    if (r > 0)
        return r;
    int e = SSL_get_error(ssl, r);
    if (want(e, ev))
        return 0;
    io_fail(e, r, what, errbuf, errlen);
    return -1;
}

bool tls_idle_alive(SSL *ssl, char *scratch, size_t len)
{
    ERR_clear_error();
    int n = SSL_read(ssl, scratch, len > (size_t)INT_MAX ? INT_MAX : (int)len);
    int e = n > 0 ? SSL_ERROR_NONE : SSL_get_error(ssl, n);
    ERR_clear_error();
    /* WANT_READ: only a post-handshake record (a TLS 1.3 ticket) came */
    return n <= 0 && (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE);
}

const char *tls_version(const SSL *ssl)
{
    return ssl ? SSL_get_version(ssl) : "none";
}

void tls_close(SSL *ssl, bool notify)
{
    if (!ssl)
        return;
    ERR_clear_error();
    if (notify)
        (void)SSL_shutdown(ssl); /* close_notify, best effort */
    SSL_free(ssl);
    ERR_clear_error();
}

/* ---- a chain received by another TLS stack ------------------------------------- */

int tls_verify_der(X509_STORE *store, const struct tls_der *chain, size_t n, const char *host,
                   long *verr)
{
    int rc = TLS_E_INTERNAL;
    X509 *leaf = NULL;
    STACK_OF(X509) *untrusted = NULL;
    X509_STORE_CTX *ctx = NULL;

    *verr = X509_V_OK;
    const unsigned char *p = n > 0 ? chain[0].data : NULL;
    if (!p || chain[0].len == 0 || chain[0].len > LONG_MAX ||
        !(leaf = d2i_X509(NULL, &p, (long)chain[0].len))) {
        rc = TLS_E_CERT;
        goto out;
    }
    untrusted = sk_X509_new_null();
    if (!untrusted)
        goto out;
    for (size_t i = 1; i < n; i++) {
        const unsigned char *q = chain[i].data;
        X509 *x = q && chain[i].len <= LONG_MAX ? d2i_X509(NULL, &q, (long)chain[i].len) : NULL;
        if (x && !sk_X509_push(untrusted, x))
            X509_free(x);
    }
    ctx = X509_STORE_CTX_new();
    if (!ctx || X509_STORE_CTX_init(ctx, store, leaf, untrusted) != 1 ||
        tls_expect_host(X509_STORE_CTX_get0_param(ctx), host) != 1 ||
        X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER) != 1)
        goto out;
    if (X509_verify_cert(ctx) != 1) {
        *verr = X509_STORE_CTX_get_error(ctx);
        if (*verr == X509_V_OK)
            *verr = X509_V_ERR_UNSPECIFIED;
        rc = TLS_E_VERIFY;
        goto out;
    }
    rc = 0;
out:
    ERR_clear_error();
    X509_STORE_CTX_free(ctx);
    sk_X509_pop_free(untrusted, X509_free);
    X509_free(leaf);
    return rc;
}

const char *tls_verify_text(long verr)
{
    return X509_verify_cert_error_string(verr);
}
