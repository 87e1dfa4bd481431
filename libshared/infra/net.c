/* net.c - TCP client sockets under a deadline: non-blocking connect over
 * every resolved address, bounded waits, blocking mode (contracts in net.h).
 * No state; any thread.
 */
#include "net.h"
#include "errbuf.h"
#include "timeutil.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

bool net_cancelled(const atomic_bool *cancel)
{
    return cancel && atomic_load_explicit(cancel, memory_order_relaxed);
}

int net_wait(int fd, short events, int64_t deadline, const atomic_bool *cancel)
{
    for (;;) {
        if (net_cancelled(cancel))
            return NET_E_CANCEL;
        int64_t left = deadline - time_mono_ms();
        if (left <= 0)
            return NET_E_TIMEOUT;
        if (cancel && left > NET_CANCEL_STEP_MS)
            left = NET_CANCEL_STEP_MS;
        struct pollfd p = {.fd = fd, .events = events};
        int r = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
        if (r > 0)
            return 0;
        if (r < 0 && errno != EINTR)
            return NET_E_IO;
    }
}

/* try_addr - connect to ai within ms; 0 with *fd, else the errno
 * (ETIMEDOUT: ms ran out; *in_socket: socket() failed) or -1 when
 * cancelled */
static int try_addr(const struct addrinfo *ai, int64_t ms, const atomic_bool *cancel, int *fd,
                    bool *in_socket)
{
    int s = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    *in_socket = s < 0;
    if (s < 0)
        return errno;
    int err = 0;
    if (connect(s, ai->ai_addr, ai->ai_addrlen) < 0) {
        err = errno;
        if (err == EINPROGRESS) {
            int w = net_wait(s, POLLOUT, time_mono_ms() + ms, cancel);
            socklen_t sl = sizeof err;
            if (w == NET_E_CANCEL)
                err = -1;
            else if (w == NET_E_TIMEOUT)
                err = ETIMEDOUT;
            else if (w < 0 || getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &sl) < 0)
                err = errno;
        }
    }
    if (err != 0) {
        close(s);
        return err;
    }
    int one = 1;
    (void)setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    *fd = s;
    return 0;
}

int net_connect(const char *host, int port, int timeout_ms, const atomic_bool *cancel, int *fd,
                int *err, char *errbuf, size_t errlen)
{
    char sport[16], last[200] = "no address", addr[INET6_ADDRSTRLEN], eb[128];
    struct addrinfo hints, *res = NULL;
    int last_err = ETIMEDOUT;

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    snprintf(sport, sizeof sport, "%d", port);
    int g = getaddrinfo(host, sport, &hints, &res);
    if (g != 0) {
        errbuf_set(errbuf, errlen, "cannot resolve %s: %s", host,
                   g == EAI_SYSTEM ? strerror_r(errno, eb, sizeof eb) : gai_strerror(g));
        if (err)
            *err = 0;
        return NET_E_CONNECT;
    }
    size_t left_addrs = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next)
        left_addrs++;
    int64_t deadline = time_mono_ms() + timeout_ms;
    int rc = NET_E_CONNECT;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next, left_addrs--) {
        int64_t left = deadline - time_mono_ms();
        if (left <= 0)
            break;
        int64_t share = left / (int64_t)left_addrs;
        bool in_socket;
        int e = try_addr(ai, share, cancel, fd, &in_socket);
        if (e == 0) {
            rc = 0;
            break;
        }
        if (e < 0) {
            rc = NET_E_CANCEL;
            break;
        }
        if (getnameinfo(ai->ai_addr, ai->ai_addrlen, addr, sizeof addr, NULL, 0, NI_NUMERICHOST) !=
            0)
            snprintf(addr, sizeof addr, "?");
        if (e == ETIMEDOUT)
            snprintf(last, sizeof last, "%s: timed out after %lld ms", addr, (long long)share);
        else
            snprintf(last, sizeof last, "%s: %s%s", addr, in_socket ? "socket: " : "",
                     strerror_r(e, eb, sizeof eb));
        last_err = e;
    }
    freeaddrinfo(res);
    if (rc == NET_E_CANCEL)
        errbuf_set(errbuf, errlen, "cancelled (shutting down) connecting to %s:%d", host, port);
    else if (rc)
        errbuf_set(errbuf, errlen, "connect to %s:%d failed: %s", host, port, last);
    if (rc && err)
        *err = last_err;
    return rc;
}

int net_set_blocking(int fd, bool blocking)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, blocking ? fl & ~O_NONBLOCK : fl | O_NONBLOCK) < 0)
        return -1;
    return 0;
}
