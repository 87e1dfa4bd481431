/* tls.h - TLS clients with OpenSSL: the shared SSL_CTX per CA file, sessions
 * over a socket of ours (MSG_NOSIGNAL, so a closed peer cannot raise SIGPIPE
 * inside TLS), the handshake with SNI and the peer check, non-blocking read
 * and write steps; and the same peer check for a chain that another TLS
 * stack received (libetpan's GnuTLS).
 *
 * The peer check is one rule for every client: the chain verified against
 * the trust store for a TLS server, and the leaf matched against the host
 * as a name (no partial wildcards) or, for an IP literal, as an address
 * (tls_expect_host).
 *
 * Owns: the SSL_CTX cache, one context per distinct ca_file, reference
 * counted: tls_ctx_acquire() takes a reference, tls_ctx_release() drops it
 * and the last one frees the context; and the BIO method (made once, never
 * freed). An SSL from tls_session() belongs to the caller, who frees it
 * with tls_close(). The socket stays the caller's: the BIO only borrows
 * the fd and never closes it (close it after tls_close()).
 *
 * Nothing here waits: the handshake, read and write steps return "wait for
 * these poll events, then call again", and the caller waits (net_wait)
 * with its own deadline. Failures leave one line of text in errbuf (never
 * a credential) and OpenSSL's error queue cleared.
 *
 * Threads: the cache is under a mutex and the BIO method is made under
 * pthread_once, so any thread may acquire or release a context; a context
 * is never changed after it is built, which is what OpenSSL needs to share
 * it. An SSL (a session) is used by one thread at a time.
 */
#ifndef TLS_H
#define TLS_H

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stddef.h>

/* tls_ctx_acquire - the shared client SSL_CTX for ca_file (NULL: OpenSSL's
 * default paths): TLS >= 1.2, peer verification on, no session cache. One
 * reference, dropped with tls_ctx_release(). NULL with a message in errbuf
 * (may be NULL) when the CA cannot be loaded. */
SSL_CTX *tls_ctx_acquire(const char *ca_file, char *errbuf, size_t errlen);
/* tls_ctx_release - drop one reference from tls_ctx_acquire(); NULL is a
 * no-op */
void tls_ctx_release(SSL_CTX *ctx);

/* tls_host_is_ip - host is an IPv4 or IPv6 literal */
bool tls_host_is_ip(const char *host);
/* tls_expect_host - param (of a session or a chain check) accepts only a
 * certificate for host: an IP literal as an address, else a name without
 * partial wildcards; 1, or 0 when OpenSSL refuses the value */
int tls_expect_host(X509_VERIFY_PARAM *param, const char *host);

/* tls_session - a client session over the connected socket fd (borrowed),
 * sending SNI for a host name and expecting host (tls_expect_host). The
 * caller frees it with tls_close(). NULL with a message in errbuf. */
SSL *tls_session(SSL_CTX *ctx, int fd, const char *host, char *errbuf, size_t errlen);
/* tls_handshake - one SSL_connect step: 1 done, the peer checked (host and
 * port are for the messages: "TLS: certificate verify failed: why
 * (host:port)", "TLS: handshake with host:port failed: why"); 0 wait for
 * *ev (POLLIN or POLLOUT) and call again; -1 failed, the reason in errbuf */
int tls_handshake(SSL *ssl, const char *host, int port, short *ev, char *errbuf, size_t errlen);
/* tls_write - one SSL_write of up to len bytes of p: the count written
 * (> 0); 0 wait for *ev and call again; -1 the connection is lost, the
 * reason in errbuf ("connection ... while <what>") */
int tls_write(SSL *ssl, const char *p, size_t len, short *ev, const char *what, char *errbuf,
              size_t errlen);
/* tls_read - one SSL_read into out[0..len): the count read (> 0), 0 or -1
 * as for tls_write */
int tls_read(SSL *ssl, char *out, size_t len, short *ev, const char *what, char *errbuf,
             size_t errlen);
/* tls_idle_alive - for an idle session whose socket turned readable: read
 * what came into scratch[0..len) (to be discarded); true when it was only
 * post-handshake records (a TLS 1.3 ticket), so the session is usable */
bool tls_idle_alive(SSL *ssl, char *scratch, size_t len);
/* tls_version - the negotiated protocol ("TLSv1.3"), "none" for NULL */
const char *tls_version(const SSL *ssl);
/* tls_close - free the session; notify: send close_notify first (best
 * effort, only when the dialogue is in step). NULL is a no-op. */
void tls_close(SSL *ssl, bool notify);

/* ---- a chain received by another TLS stack ---------------------------- */

/* one certificate, DER, borrowed */
struct tls_der {
    const unsigned char *data;
    size_t len;
};

/* status codes of tls_verify_der (0 is success) */
enum {
    TLS_E_CERT = -1,     /* no leaf, or the leaf is not a certificate */
    TLS_E_INTERNAL = -2, /* OpenSSL could not set the check up */
    TLS_E_VERIFY = -3,   /* refused: *verr says why */
};

/* tls_verify_der - the peer check on chain[0..n) (leaf first, then the
 * intermediates the peer sent; one that does not parse is left out)
 * against store (borrowed). 0, or a TLS_E_* code; for TLS_E_VERIFY *verr is
 * the X509_V_ERR_* reason (X509_V_ERR_HOSTNAME_MISMATCH,
 * X509_V_ERR_IP_ADDRESS_MISMATCH for the host; tls_verify_text() words
 * it). */
int tls_verify_der(X509_STORE *store, const struct tls_der *chain, size_t n, const char *host,
                   long *verr);
/* tls_verify_text - words for an X509_V_ERR_* code ("hostname mismatch") */
const char *tls_verify_text(long verr);

#endif
