/* smtp_tls.h - TLS for the SMTP engine (smtp_conn.c): the shared SSL_CTX per
 * CA file, our socket BIO (sends with MSG_NOSIGNAL, so a closed peer cannot
 * raise SIGPIPE inside TLS), the client handshake with SNI and the
 * certificate checks, and non-blocking read/write steps.
 *
 * Owns: the SSL_CTX cache, one context per distinct ca_file, reference
 * counted: smtp_tls_ctx_acquire() takes a reference, smtp_tls_ctx_release()
 * drops it and the last one frees the context; and the BIO method (made
 * once, never freed). An SSL from smtp_tls_session() belongs to the caller,
 * who frees it with smtp_tls_close(). The socket stays the caller's: the BIO
 * only borrows the fd and never closes it (close it after smtp_tls_close()).
 *
 * Nothing here waits: the handshake, read and write steps return "wait for
 * these poll events, then call again", and the caller polls with its own
 * deadline. Failures leave one line of text in errbuf (never a credential)
 * and OpenSSL's error queue cleared.
 *
 * Threads: the cache is under a mutex and the BIO method is made under
 * pthread_once, so any thread may acquire or release a context; a context is
 * never changed after it is built, which is what OpenSSL needs to share it.
 * An SSL (a session) is used by one thread at a time.
 */
#ifndef SMTP_TLS_H
#define SMTP_TLS_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>

/* smtp_tls_ctx_acquire - the shared client SSL_CTX for ca_file (NULL:
 * OpenSSL's default paths): TLS >= 1.2, peer verification on, no session
 * cache. One reference, dropped with smtp_tls_ctx_release(). NULL with a
 * message in errbuf (may be NULL) when the CA cannot be loaded. */
SSL_CTX *smtp_tls_ctx_acquire(const char *ca_file, char *errbuf, size_t errlen);
/* smtp_tls_ctx_release - drop one reference from smtp_tls_ctx_acquire();
 * NULL is a no-op */
void smtp_tls_ctx_release(SSL_CTX *ctx);

/* smtp_tls_session - a client session over the connected socket fd
 * (borrowed), set to send SNI and to verify host as a name (no partial
 * wildcards) or as an IP literal. The caller frees it with smtp_tls_close().
 * NULL with a message in errbuf. */
SSL *smtp_tls_session(SSL_CTX *ctx, int fd, const char *host, char *errbuf, size_t errlen);
/* smtp_tls_handshake - one SSL_connect step: 1 done, the chain and host
 * verified (host and port are for the messages); 0 wait for *ev (POLLIN or
 * POLLOUT) and call again; -1 failed, the reason in errbuf */
int smtp_tls_handshake(SSL *ssl, const char *host, int port, short *ev, char *errbuf,
                       size_t errlen);
/* smtp_tls_write - one SSL_write of up to len bytes of p: the count
 * written (> 0); 0 wait for *ev and call again; -1 the connection is lost,
 * the reason in errbuf ("connection ... while <what>") */
int smtp_tls_write(SSL *ssl, const char *p, size_t len, short *ev, const char *what, char *errbuf,
                   size_t errlen);
/* smtp_tls_read - one SSL_read into out[0..len): the count read (> 0), 0
 * or -1 as for smtp_tls_write */
int smtp_tls_read(SSL *ssl, char *out, size_t len, short *ev, const char *what, char *errbuf,
                  size_t errlen);
/* smtp_tls_idle_alive - for an idle session whose socket turned readable:
 * read what came into scratch[0..len) (to be discarded); true when it was
 * only post-handshake records (a TLS 1.3 ticket), so the session is usable */
bool smtp_tls_idle_alive(SSL *ssl, char *scratch, size_t len);
/* smtp_tls_version - the negotiated protocol ("TLSv1.3"), "none" for NULL */
const char *smtp_tls_version(const SSL *ssl);
/* smtp_tls_close - free the session; notify: send close_notify first (best
 * effort, only when the dialogue is in step). NULL is a no-op. */
void smtp_tls_close(SSL *ssl, bool notify);

#endif
