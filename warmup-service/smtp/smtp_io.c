/* smtp_io.c - bounded socket I/O for the SMTP engine: connect, TLS
 * handshake, writes and line reads, every wait under a deadline (contracts
 * in smtp_io.h; the connect and waits are libshared's net.c, the TLS steps
 * its tls.c).
 *
 * Owns per struct smtp_io the socket and the SSL over it (freed with
 * tls_close before the socket is closed, in smtp_io_close) and the input
 * buffer. No shared state: a struct smtp_io is used by one thread at
 * a time, the one of the session that embeds it.
 */
#include "errbuf.h"
#include "net.h"
#include "smtp_io.h"
#include "timeutil.h"
#include "tls.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* the longest a wait sleeps without looking at the cancel flag; at least
 * 1000 so that rcv_limit keeps one SO_RCVTIMEO per connection */
#define CANCEL_STEP_MS NET_CANCEL_STEP_MS
_Static_assert(CANCEL_STEP_MS >= 1000, "rcv_limit needs a step of at least 1 s");

/* errstr - thread-safe strerror */
static const char *errstr(int e, char *buf, size_t len)
{
    return strerror_r(e, buf, len);
}

void smtp_io_init(struct smtp_io *io)
{
    io->fd = -1;
    io->ssl = NULL;
    io->tmo_ms = 0;
    io->in_pos = io->in_len = 0;
    io->blocking = false;
    io->rcv_ms = 0;
    io->cancel = NULL;
}

int64_t smtp_io_deadline(struct smtp_io *io, int ms)
{
    io->tmo_ms = ms;
    return time_mono_ms() + ms;
}

/* io_wait - net_wait on the session's socket, with the failure described */
static int io_wait(struct smtp_io *io, short ev, int64_t deadline, const char *what, char *errbuf,
                   size_t errlen)
{
    char eb[128];
    int r = net_wait(io->fd, ev, deadline, io->cancel);
    if (r == 0)
        return 0;
    if (r == NET_E_CANCEL) {
        errbuf_set(errbuf, errlen, "cancelled (shutting down) %s", what);
        return SMTP_IO_E_CANCEL;
    }
    if (r == NET_E_TIMEOUT) {
        errbuf_set(errbuf, errlen, "timed out after %d ms %s", io->tmo_ms, what);
        return SMTP_IO_E_TIMEOUT;
    }
    errbuf_set(errbuf, errlen, "poll: %s", errstr(errno, eb, sizeof eb));
    return SMTP_IO_E_IO;
}

/* set_blocking - the socket's O_NONBLOCK off (true) or on; 0 or -1 */
static int set_blocking(struct smtp_io *io, bool on)
{
    if (net_set_blocking(io->fd, on) != 0)
        return -1;
    io->blocking = on;
    return 0;
}

/* rcv_limit - SO_RCVTIMEO at most left ms (> 0): set only when the one set
 * is longer, rounded down to 100 ms so that waits with the same timeout
 * keep it (one setsockopt per connection, not per read), or when a wait
 * near its deadline left it short and this one is long (no recv waking
 * every few ms for the rest of the connection); with a cancel flag at most
 * CANCEL_STEP_MS, so a hanging read looks at the flag; 0 or -1 */
static int rcv_limit(struct smtp_io *io, int64_t left)
{
    if (io->rcv_ms > 0 && io->rcv_ms <= left && !(io->rcv_ms < 1000 && left >= 2000))
        return 0;
    if (io->cancel && left > CANCEL_STEP_MS)
        left = CANCEL_STEP_MS;
    int64_t ms = left > 100 ? left / 100 * 100 : left;
    if (ms > INT_MAX)
        ms = INT_MAX / 100 * 100;
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    if (setsockopt(io->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0)
        return -1;
    io->rcv_ms = (int)ms;
    return 0;
}

int smtp_io_connect(struct smtp_io *io, const char *host, int port, int timeout_ms, char *errbuf,
                    size_t errlen)
{
    io->in_pos = io->in_len = 0;
    int rc = net_connect(host, port, timeout_ms, io->cancel, &io->fd, NULL, errbuf, errlen);
    if (rc == 0)
        return 0;
    return rc == NET_E_CANCEL ? SMTP_IO_E_CANCEL : SMTP_IO_E_CONNECT;
}

int smtp_io_tls_start(struct smtp_io *io, SSL_CTX *ctx, const char *host, int port,
                      int64_t deadline, char *errbuf, size_t errlen)
{
    char eb[128];
    if (io->blocking && set_blocking(io, false) != 0) { /* OpenSSL waits in poll */
        errbuf_set(errbuf, errlen, "TLS: cannot make the socket non-blocking: %s",
                   errstr(errno, eb, sizeof eb));
        return SMTP_IO_E_TLS;
    }
    io->ssl = tls_session(ctx, io->fd, host, errbuf, errlen);
    if (!io->ssl)
        return SMTP_IO_E_TLS;
    for (;;) {
        short ev;
        int r = tls_handshake(io->ssl, host, port, &ev, errbuf, errlen);
        if (r > 0)
            return 0;
        if (r < 0)
            return SMTP_IO_E_TLS;
        int rc = io_wait(io, ev, deadline, "in the TLS handshake", errbuf, errlen);
        if (rc) {
            errbuf_set(errbuf, errlen, "TLS: handshake with %s:%d timed out after %d ms", host,
                       port, io->tmo_ms);
            return rc;
        }
    }
}

int smtp_io_write(struct smtp_io *io, const char *p, size_t len, int64_t deadline, const char *what,
                  char *errbuf, size_t errlen)
{
    char eb[128];
    while (len > 0) {
        size_t chunk = len > (size_t)INT_MAX ? (size_t)INT_MAX : len;
        int rc;
        if (io->ssl) {
            short ev;
            int r = tls_write(io->ssl, p, chunk, &ev, what, errbuf, errlen);
            if (r > 0) {
                p += r;
                len -= (size_t)r;
                continue;
            }
            if (r < 0)
                return SMTP_IO_E_IO;
            rc = io_wait(io, ev, deadline, what, errbuf, errlen);
            if (rc)
                return rc;
            continue;
        }
        ssize_t n = send(io->fd, p, chunk, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            rc = io_wait(io, POLLOUT, deadline, what, errbuf, errlen);
            if (rc)
                return rc;
            continue;
        }
        errbuf_set(errbuf, errlen, "connection lost while %s: %s", what,
                   n < 0 ? errstr(errno, eb, sizeof eb) : "EOF");
        return SMTP_IO_E_IO;
    }
    return 0;
}

/* io_fill - read more into io->in (which has room), bounded by deadline */
static int io_fill(struct smtp_io *io, int64_t deadline, const char *what, char *errbuf,
                   size_t errlen)
{
    char eb[128];
    size_t space = sizeof io->in - io->in_len;
    for (;;) {
        int rc;
        if (io->ssl) {
            short ev;
            int r = tls_read(io->ssl, io->in + io->in_len, space, &ev, what, errbuf, errlen);
            if (r > 0) {
                io->in_len += (size_t)r;
                return 0;
            }
            if (r < 0)
                return SMTP_IO_E_IO;
            rc = io_wait(io, ev, deadline, what, errbuf, errlen);
            if (rc)
                return rc;
            continue;
        }
        if (!io->blocking && set_blocking(io, true) != 0) {
            errbuf_set(errbuf, errlen, "cannot make the socket blocking while %s: %s", what,
                       errstr(errno, eb, sizeof eb));
            return SMTP_IO_E_IO;
        }
        if (net_cancelled(io->cancel)) {
            errbuf_set(errbuf, errlen, "cancelled (shutting down) %s", what);
            return SMTP_IO_E_CANCEL;
        }
        int64_t left = deadline - time_mono_ms();
        if (left <= 0) {
            errbuf_set(errbuf, errlen, "timed out after %d ms %s", io->tmo_ms, what);
            return SMTP_IO_E_TIMEOUT;
        }
        if (rcv_limit(io, left) != 0) {
            errbuf_set(errbuf, errlen, "SO_RCVTIMEO while %s: %s", what,
                       errstr(errno, eb, sizeof eb));
            return SMTP_IO_E_IO;
        }
        ssize_t n = recv(io->fd, io->in + io->in_len, space, 0);
        if (n > 0) {
            io->in_len += (size_t)n;
            return 0;
        }
        if (n == 0) {
            errbuf_set(errbuf, errlen, "connection closed by the server while %s", what);
            return SMTP_IO_E_IO;
        }
        if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
            continue; /* SO_RCVTIMEO expired: the deadline decides */
        errbuf_set(errbuf, errlen, "connection lost while %s: %s", what,
                   errstr(errno, eb, sizeof eb));
        return SMTP_IO_E_IO;
    }
}

int smtp_io_read_line(struct smtp_io *io, int64_t deadline, const char *what, const char **line,
                      size_t *len, char *errbuf, size_t errlen)
{
    for (;;) {
        char *start = io->in + io->in_pos;
        char *nl = memchr(start, '\n', io->in_len - io->in_pos);
        if (nl) {
            size_t n = (size_t)(nl - start);
            if (n > 0 && start[n - 1] == '\r')
                n--;
            *line = start;
            *len = n;
            io->in_pos = (size_t)(nl + 1 - io->in);
            return 0;
        }
        if (io->in_pos > 0) {
            memmove(io->in, start, io->in_len - io->in_pos);
            io->in_len -= io->in_pos;
            io->in_pos = 0;
        }
        if (io->in_len == sizeof io->in) {
            errbuf_set(errbuf, errlen, "reply line longer than %zu bytes while %s", sizeof io->in,
                       what);
            return SMTP_IO_E_PROTO;
        }
        int rc = io_fill(io, deadline, what, errbuf, errlen);
        if (rc)
            return rc;
    }
}

bool smtp_io_pending(const struct smtp_io *io)
{
    return io->in_pos != io->in_len;
}

bool smtp_io_idle_alive(struct smtp_io *io)
{
    if (io->in_pos != io->in_len)
        return false;
    struct pollfd p = {.fd = io->fd, .events = POLLIN};
    int r = poll(&p, 1, 0);
    if (r <= 0)
        return true;
    if (p.revents & (POLLERR | POLLHUP | POLLNVAL))
        return false;
    if (io->ssl) {
        io->in_pos = io->in_len = 0;
        return tls_idle_alive(io->ssl, io->in, sizeof io->in);
    }
    char b;
    ssize_t n = recv(io->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR);
}

void smtp_io_close(struct smtp_io *io, bool notify)
{
    if (io->fd < 0)
        return;
    tls_close(io->ssl, notify);
    io->ssl = NULL;
    close(io->fd);
    io->fd = -1;
    io->blocking = false;
    io->rcv_ms = 0;
    io->in_pos = io->in_len = 0;
}
