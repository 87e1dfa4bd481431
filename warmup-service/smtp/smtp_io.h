/* smtp_io.h - bounded socket I/O for the SMTP engine (smtp_conn.c): resolve
 * and connect within a timeout, the TLS handshake, writes and line reads,
 * plain or through TLS, each bounded by a deadline; nothing here
 * waits longer than the deadline it is given (to the kernel's timer tick).
 * Writes never block (MSG_DONTWAIT, then poll). A plaintext read waits in
 * recv() itself, the socket in blocking mode with SO_RCVTIMEO at most the
 * time left (one system call per reply instead of poll and recv); TLS
 * keeps the socket non-blocking and waits in poll.
 *
 * Owns, per struct smtp_io (embedded in the session, set up with
 * smtp_io_init()): the socket from smtp_io_connect() and the SSL from
 * smtp_io_tls_start(); smtp_io_close() frees the SSL, then closes the
 * socket. The SSL_CTX is borrowed (the caller holds its reference). A line
 * from smtp_io_read_line() is borrowed from the input buffer, valid until
 * the next read or close. Failures leave one line of text in the caller's
 * errbuf and return a SMTP_IO_E_* code; after any of them the connection
 * is out of step and is to be closed. With a cancel flag set, any wait
 * (connect, handshake, write, read) returns SMTP_IO_E_CANCEL within about
 * a second of the flag becoming true (a bounded shutdown).
 *
 * The connect, the waits and the TLS session are libshared's (net.h,
 * tls.h), shared with the other clients; this module adds the SMTP
 * engine's buffering, its messages and the plaintext read path.
 *
 * Threads: no shared state; a struct smtp_io is used by the thread that
 * owns its session, one at a time. getaddrinfo() has no timeout of its own:
 * name resolution is bounded only by the resolver's configuration.
 */
#ifndef SMTP_IO_H
#define SMTP_IO_H

#include <openssl/ssl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* status codes (0 is success) */
enum {
    SMTP_IO_E_IO = -1,      /* connection lost or closed */
    SMTP_IO_E_TIMEOUT = -2, /* a bounded wait expired */
    SMTP_IO_E_PROTO = -3,   /* a reply line longer than the input buffer */
    SMTP_IO_E_TLS = -4,     /* handshake or certificate */
    SMTP_IO_E_CONNECT = -5, /* resolve or TCP connect */
    SMTP_IO_E_CANCEL = -6,  /* *cancel became true during a wait */
};

/* Fields are written only by smtp_io_*; the caller may read fd (>= 0 while
 * connected) and ssl (non-NULL once TLS is up). */
struct smtp_io {
    int fd;                    /* the socket, -1 when not connected */
    SSL *ssl;                  /* the TLS session over fd, NULL for plaintext */
    int tmo_ms;                /* the timeout of the current wait, for messages */
    size_t in_pos, in_len;     /* unread input is in[in_pos..in_len) */
    bool blocking;             /* plaintext: the socket is in blocking mode and reads
                                * wait in recv (SO_RCVTIMEO), not in poll */
    int rcv_ms;                /* the SO_RCVTIMEO set, 0 none */
    const atomic_bool *cancel; /* set by the caller (NULL: none): every wait
                                * wakes at least once a second to look at it */
    char in[16384];
};

/* smtp_io_init - not connected, nothing buffered, no cancel flag */
void smtp_io_init(struct smtp_io *io);
/* smtp_io_deadline - the deadline ms from now; ms is remembered for the
 * timeout message of the waits that use it */
int64_t smtp_io_deadline(struct smtp_io *io, int ms);
/* smtp_io_connect - resolve host and connect to each address in turn,
 * non-blocking, with TCP_NODELAY; timeout_ms is shared: each address gets
 * an equal part of what is left (net_connect). Empties the input buffer.
 * 0, or SMTP_IO_E_CONNECT or SMTP_IO_E_CANCEL with the reason in errbuf. */
int smtp_io_connect(struct smtp_io *io, const char *host, int port, int timeout_ms, char *errbuf,
                    size_t errlen);
/* smtp_io_tls_start - TLS on the connected socket with ctx (borrowed, from
 * tls_ctx_acquire), the chain and host (a name or an IP literal) verified,
 * bounded by deadline; host and port also name the server in messages.
 * 0, SMTP_IO_E_TLS, or a wait's code; the SSL is kept in io->ssl even on
 * failure, for smtp_io_close(). */
int smtp_io_tls_start(struct smtp_io *io, SSL_CTX *ctx, const char *host, int port,
                      int64_t deadline, char *errbuf, size_t errlen);
/* smtp_io_write - all of p[0..len), bounded by deadline; what ("sending
 * ...") names the step in messages. 0, SMTP_IO_E_IO or SMTP_IO_E_TIMEOUT. */
int smtp_io_write(struct smtp_io *io, const char *p, size_t len, int64_t deadline, const char *what,
                  char *errbuf, size_t errlen);
/* smtp_io_read_line - the next line without its CR LF into *line, *len
 * (borrowed, valid until the next read or close), bounded by deadline.
 * 0, SMTP_IO_E_IO, SMTP_IO_E_TIMEOUT, or SMTP_IO_E_PROTO when the line
 * does not fit the input buffer. */
int smtp_io_read_line(struct smtp_io *io, int64_t deadline, const char *what, const char **line,
                      size_t *len, char *errbuf, size_t errlen);
/* smtp_io_pending - unread input is buffered */
bool smtp_io_pending(const struct smtp_io *io);
/* smtp_io_idle_alive - false when the peer closed the idle connection or
 * sent something unasked (unread input counts too); TLS post-handshake
 * records (a TLS 1.3 ticket) are read and dropped */
bool smtp_io_idle_alive(struct smtp_io *io);
/* smtp_io_close - free the SSL (notify: send close_notify first, best
 * effort), close the socket, drop buffered input. A no-op when not
 * connected. */
void smtp_io_close(struct smtp_io *io, bool notify);

#endif
