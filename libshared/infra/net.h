/* net.h - TCP client sockets under a deadline: resolve and connect (every
 * address tried, each within its share of the time), wait for a descriptor
 * to become ready, switch blocking mode. Used by the SMTP engine, the IMAP
 * FeedbackLoop and any later client; TLS over the socket is tls.h.
 *
 * Deadlines are time_mono_ms() values. With a cancel flag (NULL: none) a
 * wait looks at it at least once a second and gives up with NET_E_CANCEL
 * when it is true (a bounded shutdown). getaddrinfo() has no timeout of its
 * own: resolution is bounded only by the resolver's configuration.
 *
 * Owns nothing: a socket from net_connect() is the caller's to close.
 * Threads: no shared state, any thread.
 */
#ifndef NET_H
#define NET_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* status codes (0 is success) */
enum {
    NET_E_IO = -1,      /* poll failed (errno says why) */
    NET_E_TIMEOUT = -2, /* the deadline passed */
    NET_E_CONNECT = -5, /* resolve or TCP connect */
    NET_E_CANCEL = -6,  /* *cancel became true */
};

/* the longest a wait sleeps without looking at its cancel flag */
#define NET_CANCEL_STEP_MS 1000

/* net_cancelled - cancel is set and true */
bool net_cancelled(const atomic_bool *cancel);

/* net_wait - wait until fd is ready for events (POLLIN, POLLOUT; an error
 * or hang-up counts as ready: the next I/O call tells) or deadline passes.
 * 0, NET_E_TIMEOUT, NET_E_CANCEL, or NET_E_IO with errno set. */
int net_wait(int fd, short events, int64_t deadline, const atomic_bool *cancel);

/* net_connect - resolve host and connect to each address in turn until one
 * answers, within timeout_ms: each address gets an equal share of what is
 * left, so one silent address cannot use up the others' time. On success
 * *fd is the socket: non-blocking, close-on-exec, TCP_NODELAY.
 * On failure NET_E_CONNECT or NET_E_CANCEL with one line in errbuf:
 * "cannot resolve HOST: why", "connect to HOST:PORT failed: ADDR: why" (the
 * last address tried; why may be "timed out after N ms") or "cancelled
 * (shutting down) connecting to HOST:PORT". *err (may be NULL) is 0 when
 * resolution failed, else the last address's errno, ETIMEDOUT when its
 * share of the time ran out. */
int net_connect(const char *host, int port, int timeout_ms, const atomic_bool *cancel, int *fd,
                int *err, char *errbuf, size_t errlen);

/* net_set_blocking - O_NONBLOCK off (blocking true) or on; 0 or -1 */
int net_set_blocking(int fd, bool blocking);

#endif
