/* loop_imap.c - the IMAP FeedbackLoop: looks into one seed mailbox per
 * domain (libetpan) and tells, for each tracked copy, whether it landed in
 * the inbox or in the spam folder and whether it was opened or read.
 *
 * Settings (a JSON object; unknown fields and wrong types are errors that
 * name the field): host (required), port (993 for tls, else 143), tls
 * ("none" | "starttls" | "tls", default "tls"), user (required), password
 * or password_file (exactly one; the file is read at create time, one
 * trailing LF/CRLF stripped), inbox (default "INBOX"), spam (optional:
 * without it the mailbox with the SPECIAL-USE \Junk attribute is used,
 * else "Junk", else "Spam"), ca_file (optional PEM bundle; default the
 * system trust store), timeout_ms (default 10000: bounds the TCP connect,
 * the TLS handshake and every wait for the server).
 *
 * A round: EXAMINE the inbox (read-only, so checking never changes a
 * flag), UID SEARCH HEADER Message-ID "<id>" per copy (a substring match:
 * the angle brackets make it exact enough), one UID FETCH FLAGS for the
 * hits; the same in the spam folder. Found in the inbox -> FL_INBOX (it
 * wins when a copy is in both), in the spam folder -> FL_SPAM, searched in
 * both and found in neither -> FL_NOT_FOUND; \Seen -> opened; \Seen with
 * \Answered or \Flagged -> read. 2 searches per copy per round: fine for
 * seed mailboxes; batching (OR keys + FETCH of the header) would be the
 * next step for very large rounds.
 *
 * Connection: one per loop instance, kept across rounds. A kept connection
 * is probed with NOOP first; if the server dropped it (idle timeout,
 * restart) the loop reconnects at once, since that is no outage. A failed
 * connect or a connection error during a round closes the session and
 * returns -1; the next attempts wait 1 s, 2 s, 4 s .. 60 s (a round inside
 * that window returns -1 at once with "reconnecting in N s"); a round that
 * succeeds resets the backoff. A server NO to one command fails what it
 * concerns but keeps the connection.
 *
 * TLS: Debian's libetpan (GnuTLS) verifies nothing. After the handshake
 * (implicit TLS, or right after STARTTLS) the peer chain is taken from the
 * stream and verified with OpenSSL (X509_verify_cert, purpose TLS server)
 * against ca_file or the default paths, then the leaf is matched against
 * the host name (X509_check_host) or IP (X509_check_ip_asc); any failure
 * closes the connection before LOGIN. tls=starttls fails when the server
 * does not offer STARTTLS. SNI carries the host name.
 *
 * The TCP connect is our own (non-blocking connect bounded by timeout_ms);
 * libetpan's mailimap_socket_connect has no connect timeout. The password
 * is never logged nor put in an error message, and wiped on destroy.
 * SIGPIPE: writes to a dropped connection must not kill the process, so
 * check() and destroy() block SIGPIPE in the calling thread and swallow a
 * SIGPIPE they caused (curl's sigpipe guard); no process-wide change.
 *
 * Threads: an instance is used by one thread at a time (libetpan: one
 * session per thread); instances are independent.
 */
#include "feedback_loop.h"

#include "buf.h"
#include "jsonx.h"
#include "log.h"
#include "timeutil.h"
#include "xalloc.h"

#include <libetpan/libetpan.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum imap_tls { IMAP_TLS_NONE = 0, IMAP_TLS_STARTTLS, IMAP_TLS_IMPLICIT };
static const char *const tls_names[] = {"none", "starttls", "tls", NULL};

#define BACKOFF_FIRST_MS 1000
#define BACKOFF_MAX_MS 60000
#define DEFAULT_TIMEOUT_MS 10000
#define MAX_PASSWORD 1024
#define MAX_MESSAGE_ID 998 /* RFC 5322 line limit */
#define FETCH_CHUNK 500    /* UIDs per UID FETCH command */

struct imap_loop {
    char *domain;
    char *host;
    uint16_t port;
    enum imap_tls tls;
    char *user;
    char *password; /* secret: never logged, wiped on destroy */
    char *inbox;
    char *spam_conf; /* the "spam" setting, NULL: discover */
    char *ca_file;   /* NULL: system trust store */
    int timeout_ms;
    bool host_is_ip;
    X509_STORE *store; /* trust anchors, loaded at create time */

    mailimap *imap;      /* NULL while disconnected */
    char *spam;          /* spam folder of this connection */
    int64_t backoff_ms;  /* 0 after a good round */
    int64_t retry_at_ms; /* monotonic: no connect attempt before */
    char last_err[256];  /* why the last connect/round failed */
};

/* a search hit: copy index and the UID found */
struct hit {
    size_t copy;
    uint32_t uid;
};

/* per-copy bits for one round */
#define CK_INBOX 1u /* searched in the inbox */
#define CK_SPAM 2u  /* searched in the spam folder */

/* ---- helpers ---------------------------------------------------------- */

/* printable - copy s into out, control and 8-bit bytes as '?', so server
 * text cannot break a log line */
static void printable(const char *s, char *out, size_t outlen)
{
    size_t i = 0;
    if (outlen == 0)
        return;
    for (; s && s[i] && i + 1 < outlen; i++) {
        unsigned char c = (unsigned char)s[i];
        out[i] = (c < 0x20 || c >= 0x7f) ? '?' : (char)c;
    }
    out[i] = '\0';
}

/* has_ctl - s holds a byte that cannot go into an IMAP quoted string */
static bool has_ctl(const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7f)
            return true;
    }
    return false;
}

/* message_id_ok - searchable: 1..998 bytes of printable ASCII */
static bool message_id_ok(const char *id)
{
    size_t n = 0;
    if (!id)
        return false;
    for (; id[n]; n++) {
        unsigned char c = (unsigned char)id[n];
        if (c < 0x20 || c >= 0x7f || n >= MAX_MESSAGE_ID)
            return false;
    }
    return n > 0;
}

/* libetpan result codes: words, and whether the session is unusable (as
 * opposed to a server NO to one command) */
static const struct {
    int code;
    const char *text;
} imap_errors[] = {
    {MAILIMAP_ERROR_STREAM, "connection lost or timed out"},
    {MAILIMAP_ERROR_PARSE, "unparsable server response"},
    {MAILIMAP_ERROR_FATAL, "server closed the session (BYE)"},
    {MAILIMAP_ERROR_PROTOCOL, "protocol error (BAD or wrong tag)"},
    {MAILIMAP_ERROR_MEMORY, "out of memory"},
    {MAILIMAP_ERROR_BAD_STATE, "session in the wrong state"},
    {MAILIMAP_ERROR_SSL, "TLS error"},
    {MAILIMAP_ERROR_CONNECTION_REFUSED, "connection refused"},
};

/* imap_strerror - words for r; NULL for a server NO */
static const char *imap_strerror(int r)
{
    for (size_t i = 0; i < sizeof imap_errors / sizeof imap_errors[0]; i++) {
        if (imap_errors[i].code == r)
            return imap_errors[i].text;
    }
    return NULL;
}

/* connection_error - r leaves the session unusable */
static bool connection_error(int r)
{
    return imap_strerror(r) != NULL;
}

/* cmd_error - "WHAT failed: reason[: server text]" into err; the server
 * text only for a NO, where it belongs to this command */
static void cmd_error(const struct imap_loop *l, int r, const char *what, char *err, size_t errlen)
{
    char text[160] = "";
    if (!connection_error(r) && l->imap && l->imap->imap_response)
        printable(l->imap->imap_response, text, sizeof text);
    const char *why = imap_strerror(r);
    snprintf(err, errlen, "%s failed: %s%s%s", what,
             why ? why : "command refused by the server (NO)", text[0] ? ": " : "", text);
}

/* SIGPIPE guard: block it in this thread around libetpan calls, swallow
 * one raised meanwhile (unless one was already pending), restore */
struct sigpipe_guard {
    sigset_t old;
    bool was_pending;
};

static void sigpipe_block(struct sigpipe_guard *g)
{
    sigset_t s, pend;
    sigemptyset(&s);
    sigaddset(&s, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &s, &g->old);
    sigpending(&pend);
    g->was_pending = sigismember(&pend, SIGPIPE) == 1;
}

static void sigpipe_restore(struct sigpipe_guard *g)
{
    sigset_t s, pend;
    sigemptyset(&s);
    sigaddset(&s, SIGPIPE);
    sigpending(&pend);
    if (!g->was_pending && sigismember(&pend, SIGPIPE) == 1) {
        struct timespec zero = {0, 0};
        while (sigtimedwait(&s, NULL, &zero) < 0 && errno == EINTR)
            ;
    }
    pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

/* ---- settings --------------------------------------------------------- */

/* get_name - optional string setting without control bytes; *out is a
 * heap copy or NULL when absent */
static int get_name(json_object *o, const char *key, bool required, size_t maxlen, char **out,
                    char *err, size_t errlen)
{
    const char *s;
    *out = NULL;
    if (jsonx_get_string(o, key, required, maxlen, &s, err, errlen) < 0)
        return -1;
    if (!s)
        return 0;
    if (s[0] == '\0') {
        snprintf(err, errlen, "field '%s' must not be empty", key);
        return -1;
    }
    if (has_ctl(s)) {
        snprintf(err, errlen, "field '%s' must not contain control characters", key);
        return -1;
    }
    *out = xstrdup(s);
    return 0;
}

/* read_password_file - the file's contents minus one trailing LF/CRLF */
static int read_password_file(const char *path, char **out, char *err, size_t errlen)
{
    int rc = -1;
    struct buf b;
    char chunk[512];

    buf_init(&b, MAX_PASSWORD + 2);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        snprintf(err, errlen, "field 'password_file': cannot open '%s': %s", path, strerror(errno));
        goto out;
    }
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(err, errlen, "field 'password_file': cannot read '%s': %s", path,
                     strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        if (buf_append(&b, chunk, (size_t)n) < 0) {
            snprintf(err, errlen, "field 'password_file': '%s' is longer than %d bytes", path,
                     MAX_PASSWORD);
            goto out;
        }
    }
    size_t len = b.len;
    if (len > 0 && b.data[len - 1] == '\n') {
        len--;
        if (len > 0 && b.data[len - 1] == '\r')
            len--;
    }
    if (len == 0) {
        snprintf(err, errlen, "field 'password_file': '%s' is empty", path);
        goto out;
    }
    if (memchr(b.data, '\0', len) || memchr(b.data, '\n', len) || memchr(b.data, '\r', len)) {
        snprintf(err, errlen, "field 'password_file': '%s' holds more than one line", path);
        goto out;
    }
    *out = xstrndup(b.data, len);
    rc = 0;
out:
    if (b.data)
        explicit_bzero(b.data, b.alloc);
    explicit_bzero(chunk, sizeof chunk);
    if (fd >= 0)
        close(fd);
    buf_cleanup(&b);
    return rc;
}

static int parse_settings(struct imap_loop *l, json_object *o, char *err, size_t errlen)
{
    static const char *const keys[] = {"loop", "host",     "port",          "tls",
                                       "user", "password", "password_file", "inbox",
                                       "spam", "ca_file",  "timeout_ms",    NULL};
    const char *s;
    int64_t v;

    if (!o || !json_object_is_type(o, json_type_object)) {
        snprintf(err, errlen, "settings must be an object with host, user and password");
        return -1;
    }
    if (jsonx_check_keys(o, keys, err, errlen) < 0)
        return -1;
    if (get_name(o, "host", true, 253, &l->host, err, errlen) < 0)
        return -1;
    struct in6_addr a6;
    l->host_is_ip = inet_pton(AF_INET, l->host, &a6) == 1 || inet_pton(AF_INET6, l->host, &a6) == 1;

    if (jsonx_get_string(o, "tls", false, 16, &s, err, errlen) < 0)
        return -1;
    l->tls = IMAP_TLS_IMPLICIT;
    if (s) {
        int i = 0;
        while (tls_names[i] && strcmp(tls_names[i], s) != 0)
            i++;
        if (!tls_names[i]) {
            snprintf(err, errlen, "field 'tls' must be \"none\", \"starttls\" or \"tls\"");
            return -1;
        }
        l->tls = (enum imap_tls)i;
    }
    v = l->tls == IMAP_TLS_IMPLICIT ? 993 : 143;
    if (jsonx_get_int(o, "port", false, 1, 65535, &v, NULL, err, errlen) < 0)
        return -1;
    l->port = (uint16_t)v;

    if (get_name(o, "user", true, 320, &l->user, err, errlen) < 0)
        return -1;
    const char *pw, *pwfile;
    if (jsonx_get_string(o, "password", false, MAX_PASSWORD, &pw, err, errlen) < 0 ||
        jsonx_get_string(o, "password_file", false, 4096, &pwfile, err, errlen) < 0)
        return -1;
    if ((pw != NULL) == (pwfile != NULL)) {
        snprintf(err, errlen, "exactly one of the fields 'password' and 'password_file' is needed");
        return -1;
    }
    if (pw) {
        if (pw[0] == '\0' || strchr(pw, '\r') || strchr(pw, '\n')) {
            snprintf(err, errlen, "field 'password' must be one non-empty line");
            return -1;
        }
        l->password = xstrdup(pw);
    } else if (read_password_file(pwfile, &l->password, err, errlen) < 0) {
        return -1;
    }

    if (get_name(o, "inbox", false, 255, &l->inbox, err, errlen) < 0)
        return -1;
    if (!l->inbox)
        l->inbox = xstrdup("INBOX");
    if (get_name(o, "spam", false, 255, &l->spam_conf, err, errlen) < 0)
        return -1;

    v = DEFAULT_TIMEOUT_MS;
    if (jsonx_get_int(o, "timeout_ms", false, 100, 600000, &v, NULL, err, errlen) < 0)
        return -1;
    l->timeout_ms = (int)v;

    if (jsonx_get_string(o, "ca_file", false, 4096, &s, err, errlen) < 0)
        return -1;
    if (s && l->tls == IMAP_TLS_NONE) {
        snprintf(err, errlen, "field 'ca_file' needs tls \"starttls\" or \"tls\"");
        return -1;
    }
    if (l->tls != IMAP_TLS_NONE) {
        l->store = X509_STORE_new();
        if (!l->store) {
            snprintf(err, errlen, "cannot create a certificate store");
            return -1;
        }
        if (s) {
            if (s[0] == '\0' || X509_STORE_load_file(l->store, s) != 1) {
                ERR_clear_error();
                snprintf(err, errlen, "field 'ca_file': cannot load certificates from '%s'", s);
                return -1;
            }
            l->ca_file = xstrdup(s);
        } else if (X509_STORE_set_default_paths(l->store) != 1) {
            ERR_clear_error();
            snprintf(err, errlen, "cannot load the system trust store");
            return -1;
        }
    }
    return 0;
}

/* ---- connection ------------------------------------------------------- */

/* timeout_s - timeout_ms rounded up to whole seconds, for libetpan */
static time_t timeout_s(const struct imap_loop *l)
{
    return (time_t)((l->timeout_ms + 999) / 1000);
}

/* wait_fd - poll fd for events until deadline (monotonic ms): 1 ready,
 * 0 timed out, -1 error */
static int wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - time_mono_ms();
        if (left <= 0)
            return 0;
        struct pollfd p = {.fd = fd, .events = events};
        int r = poll(&p, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        return r < 0 ? -1 : (r > 0 ? 1 : 0);
    }
}

/* tcp_connect - a connected, blocking socket to host:port within
 * timeout_ms (every address tried in turn), or -1 */
static int tcp_connect(const struct imap_loop *l, char *err, size_t errlen)
{
    char port[8];
    struct addrinfo hints, *res = NULL;
    int fd = -1, last = 0;
    bool timed_out = false;

    snprintf(port, sizeof port, "%u", (unsigned)l->port);
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    int gr = getaddrinfo(l->host, port, &hints, &res);
    if (gr != 0) {
        snprintf(err, errlen, "cannot resolve %s: %s", l->host, gai_strerror(gr));
        return -1;
    }
    int64_t deadline = time_mono_ms() + l->timeout_ms;
    for (struct addrinfo *ai = res; ai && !timed_out; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
        if (fd < 0) {
            last = errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        if (errno == EINPROGRESS) {
            int w = wait_fd(fd, POLLOUT, deadline);
            if (w > 0) {
                int so = 0;
                socklen_t sl = sizeof so;
                if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &so, &sl) == 0 && so == 0)
                    break;
                last = so ? so : errno;
            } else if (w == 0) {
                timed_out = true;
            } else {
                last = errno;
            }
        } else {
            last = errno;
        }
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        if (timed_out)
            snprintf(err, errlen, "connect to %s:%u timed out after %d ms", l->host,
                     (unsigned)l->port, l->timeout_ms);
        else
            snprintf(err, errlen, "connect to %s:%u failed: %s", l->host, (unsigned)l->port,
                     strerror(last));
        return -1;
    }
    /* libetpan wants a blocking descriptor; it bounds its waits with poll */
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

/* tls_setup - libetpan's hook before the handshake: SNI for host names */
static void tls_setup(struct mailstream_ssl_context *ctx, void *data)
{
    struct imap_loop *l = data;
    if (!l->host_is_ip)
        mailstream_ssl_set_server_name(ctx, l->host);
}

/* verify_peer - the server's chain verified against the trust store and
 * its leaf matched against the host name or IP; 0 or -1 with err */
static int verify_peer(const struct imap_loop *l, mailstream *s, char *err, size_t errlen)
{
    int rc = -1;
    unsigned char *der = NULL;
    X509 *leaf = NULL;
    STACK_OF(X509) *untrusted = NULL;
    X509_STORE_CTX *ctx = NULL;

    /* the leaf first: libetpan's chain getter reads an uninitialised
     * pointer when the peer sent no certificate */
    ssize_t len = mailstream_ssl_get_certificate(s, &der);
    if (len <= 0 || !der) {
        snprintf(err, errlen, "TLS peer %s sent no certificate", l->host);
        goto out;
    }
    const unsigned char *p = der;
    leaf = d2i_X509(NULL, &p, (long)len);
    if (!leaf) {
        snprintf(err, errlen, "cannot parse the certificate of %s", l->host);
        goto out;
    }
    untrusted = sk_X509_new_null();
    if (!untrusted) {
        snprintf(err, errlen, "out of memory verifying the certificate");
        goto out;
    }
    carray *chain = mailstream_get_certificate_chain(s);
    if (chain) {
        for (unsigned i = 1; i < carray_count(chain); i++) {
            MMAPString *m = carray_get(chain, i);
            const unsigned char *q = (const unsigned char *)m->str;
            X509 *x = d2i_X509(NULL, &q, (long)m->len);
            if (x && !sk_X509_push(untrusted, x))
                X509_free(x);
        }
        mailstream_certificate_chain_free(chain);
    }
    ctx = X509_STORE_CTX_new();
    if (!ctx || X509_STORE_CTX_init(ctx, l->store, leaf, untrusted) != 1) {
        snprintf(err, errlen, "out of memory verifying the certificate");
        goto out;
    }
    X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER);
    if (X509_verify_cert(ctx) != 1) {
        snprintf(err, errlen, "certificate of %s:%u not trusted: %s (%s)", l->host,
                 (unsigned)l->port, X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)),
                 l->ca_file ? l->ca_file : "system trust store");
        goto out;
    }
    if (l->host_is_ip) {
        if (X509_check_ip_asc(leaf, l->host, 0) != 1) {
            snprintf(err, errlen, "certificate of %s:%u does not match the IP address %s", l->host,
                     (unsigned)l->port, l->host);
            goto out;
        }
    } else if (X509_check_host(leaf, l->host, strlen(l->host), X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS,
                               NULL) != 1) {
        snprintf(err, errlen, "certificate of %s:%u does not match the host name %s", l->host,
                 (unsigned)l->port, l->host);
        goto out;
    }
    rc = 0;
out:
    ERR_clear_error();
    X509_STORE_CTX_free(ctx);
    sk_X509_pop_free(untrusted, X509_free);
    X509_free(leaf);
    free(der);
    return rc;
}

/* has_capability - the server announces name (a fresh CAPABILITY) */
static int has_capability(struct imap_loop *l, const char *name, bool *yes, char *err,
                          size_t errlen)
{
    struct mailimap_capability_data *cap = NULL;
    *yes = false;
    int r = mailimap_capability(l->imap, &cap);
    if (r != MAILIMAP_NO_ERROR) {
        cmd_error(l, r, "CAPABILITY", err, errlen);
        return -1;
    }
    for (clistiter *it = clist_begin(cap->cap_list); it; it = clist_next(it)) {
        struct mailimap_capability *c = clist_content(it);
        if (c->cap_type == MAILIMAP_CAPABILITY_NAME && c->cap_data.cap_name &&
            strcasecmp(c->cap_data.cap_name, name) == 0)
            *yes = true;
    }
    mailimap_capability_data_free(cap);
    return 0;
}

/* starttls - STARTTLS, then the handshake on the same socket (with our
 * timeout, which mailimap_socket_starttls lacks) and the peer check */
static int starttls(struct imap_loop *l, char *err, size_t errlen)
{
    bool offered;
    if (has_capability(l, "STARTTLS", &offered, err, errlen) < 0)
        return -1;
    if (!offered) {
        snprintf(err, errlen, "server %s:%u does not offer STARTTLS (tls is \"starttls\")", l->host,
                 (unsigned)l->port);
        return -1;
    }
    int r = mailimap_starttls(l->imap);
    if (r != MAILIMAP_NO_ERROR) {
        cmd_error(l, r, "STARTTLS", err, errlen);
        return -1;
    }
    mailstream_low *plain = mailstream_get_low(l->imap->imap_stream);
    int fd = mailstream_low_get_fd(plain);
    mailstream_low *tls =
        fd < 0 ? NULL
               : mailstream_low_tls_open_with_callback_timeout(fd, timeout_s(l), tls_setup, l);
    if (!tls) {
        snprintf(err, errlen, "TLS handshake with %s:%u after STARTTLS failed", l->host,
                 (unsigned)l->port);
        return -1;
    }
    /* the plain layer goes without closing the descriptor, as in libetpan */
    mailstream_low_free(plain);
    mailstream_set_low(l->imap->imap_stream, tls);
    return verify_peer(l, l->imap->imap_stream, err, errlen);
}

/* find_spam - the spam folder: the setting, else the \Junk mailbox, else
 * "Junk", else "Spam" (also as the last level of a hierarchy name) */
static int find_spam(struct imap_loop *l, const char **how, char *err, size_t errlen)
{
    clist *list = NULL;
    const char *junk = NULL, *byname[2] = {NULL, NULL};
    static const char *const names[2] = {"Junk", "Spam"};

    if (l->spam_conf) {
        l->spam = xstrdup(l->spam_conf);
        *how = "settings";
        return 0;
    }
    int r = mailimap_list(l->imap, "", "*", &list);
    if (r != MAILIMAP_NO_ERROR) {
        cmd_error(l, r, "LIST", err, errlen);
        return -1;
    }
    for (clistiter *it = clist_begin(list); it; it = clist_next(it)) {
        struct mailimap_mailbox_list *mb = clist_content(it);
        if (!mb->mb_name)
            continue;
        if (mb->mb_flag && !junk) {
            for (clistiter *f = clist_begin(mb->mb_flag->mbf_oflags); f; f = clist_next(f)) {
                struct mailimap_mbx_list_oflag *of = clist_content(f);
                const char *ext = of->of_flag_ext;
                if (of->of_type != MAILIMAP_MBX_LIST_OFLAG_FLAG_EXT || !ext)
                    continue;
                if (ext[0] == '\\')
                    ext++;
                if (strcasecmp(ext, "Junk") == 0)
                    junk = mb->mb_name;
            }
        }
        const char *last = mb->mb_name;
        if (mb->mb_delimiter) {
            const char *d = strrchr(mb->mb_name, mb->mb_delimiter);
            if (d)
                last = d + 1;
        }
        for (int i = 0; i < 2; i++) {
            if (strcasecmp(mb->mb_name, names[i]) == 0)
                byname[i] = mb->mb_name; /* a top-level name wins */
            else if (!byname[i] && strcasecmp(last, names[i]) == 0)
                byname[i] = mb->mb_name;
        }
    }
    const char *pick = junk ? junk : byname[0] ? byname[0] : byname[1];
    *how = junk ? "special-use" : "name";
    if (pick)
        l->spam = xstrdup(pick);
    mailimap_list_result_free(list);
    if (!pick) {
        snprintf(err, errlen,
                 "no spam folder: no mailbox with \\Junk, none named Junk or Spam "
                 "(set \"spam\")");
        return -1;
    }
    return 0;
}

/* session_free - close the socket and free the session (mailimap_free
 * alone would first try a LOGOUT, waiting on a dead connection) */
static void session_free(struct imap_loop *l)
{
    if (l->imap->imap_stream) {
        mailstream_close(l->imap->imap_stream);
        l->imap->imap_stream = NULL;
        l->imap->imap_state = MAILIMAP_STATE_DISCONNECTED;
    }
    mailimap_free(l->imap);
    l->imap = NULL;
    free(l->spam);
    l->spam = NULL;
}

/* session_close - drop the connection; polite: LOGOUT first (bounded by
 * the timeout) */
static void session_close(struct imap_loop *l, bool polite, const char *why)
{
    if (!l->imap)
        return;
    if (polite && l->imap->imap_stream && l->imap->imap_state != MAILIMAP_STATE_DISCONNECTED)
        mailimap_logout(l->imap);
    session_free(l);
    log_info("imap loop disconnected domain=%s host=%s port=%u reason=\"%s\"", l->domain, l->host,
             (unsigned)l->port, why);
}

/* session_open - connect, TLS as configured, LOGIN, find the spam folder;
 * on failure nothing stays open */
static int session_open(struct imap_loop *l, char *err, size_t errlen)
{
    mailstream *s = NULL;
    const char *how = "";
    int r;

    int fd = tcp_connect(l, err, errlen);
    if (fd < 0)
        return -1;
    if (l->tls == IMAP_TLS_IMPLICIT) {
        s = mailstream_ssl_open_with_callback_timeout(fd, timeout_s(l), tls_setup, l);
        if (!s) {
            close(fd);
            snprintf(err, errlen, "TLS handshake with %s:%u failed", l->host, (unsigned)l->port);
            return -1;
        }
        if (verify_peer(l, s, err, errlen) < 0) {
            mailstream_close(s);
            return -1;
        }
    } else {
        s = mailstream_socket_open_timeout(fd, timeout_s(l));
        if (!s) {
            close(fd);
            snprintf(err, errlen, "cannot set up a stream for %s:%u", l->host, (unsigned)l->port);
            return -1;
        }
    }
    l->imap = mailimap_new(0, NULL);
    if (!l->imap) {
        mailstream_close(s);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    mailimap_set_timeout(l->imap, timeout_s(l));
    r = mailimap_connect(l->imap, s); /* the session owns s from here on */
    if (r != MAILIMAP_NO_ERROR_NON_AUTHENTICATED && r != MAILIMAP_NO_ERROR_AUTHENTICATED) {
        char what[300];
        snprintf(what, sizeof what, "greeting from %s:%u", l->host, (unsigned)l->port);
        cmd_error(l, r, what, err, errlen);
        goto fail;
    }
    bool preauth = r == MAILIMAP_NO_ERROR_AUTHENTICATED;
    if (l->tls == IMAP_TLS_STARTTLS) {
        if (preauth) {
            snprintf(err, errlen, "server %s:%u sent PREAUTH before STARTTLS", l->host,
                     (unsigned)l->port);
            goto fail;
        }
        if (starttls(l, err, errlen) < 0)
            goto fail;
    }
    if (!preauth) {
        r = mailimap_login(l->imap, l->user, l->password);
        if (r != MAILIMAP_NO_ERROR) {
            char what[400];
            snprintf(what, sizeof what, "LOGIN as %s", l->user);
            cmd_error(l, r, what, err, errlen);
            goto fail;
        }
    }
    if (find_spam(l, &how, err, errlen) < 0)
        goto fail;
    log_info("imap loop connected domain=%s host=%s port=%u tls=%s user=%s inbox=\"%s\" "
             "spam=\"%s\" spam_from=%s",
             l->domain, l->host, (unsigned)l->port, tls_names[l->tls], l->user, l->inbox, l->spam,
             how);
    return 0;
fail:
    session_free(l); /* quietly: there was no connection to speak of */
    return -1;
}

/* ---- a round ---------------------------------------------------------- */

/* fetch_flags - UID FETCH FLAGS for the hits (in chunks), then apply them
 * to the copies; a NO leaves opened/read unset; -1 on connection error */
static int fetch_flags(struct imap_loop *l, const struct hit *hits, size_t nhits,
                       enum fl_placement where, struct fl_copy *copies, char *err, size_t errlen)
{
    for (size_t start = 0; start < nhits; start += FETCH_CHUNK) {
        size_t end = start + FETCH_CHUNK < nhits ? start + FETCH_CHUNK : nhits;
        struct mailimap_set *set = mailimap_set_new_empty();
        struct mailimap_fetch_type *ft = mailimap_fetch_type_new_fetch_att_list_empty();
        if (!set || !ft)
            abort(); /* out of memory: the project's policy */
        for (size_t i = start; i < end; i++)
            mailimap_set_add_single(set, hits[i].uid);
        mailimap_fetch_type_new_fetch_att_list_add(ft, mailimap_fetch_att_new_uid());
        mailimap_fetch_type_new_fetch_att_list_add(ft, mailimap_fetch_att_new_flags());
        clist *res = NULL;
        int r = mailimap_uid_fetch(l->imap, set, ft, &res);
        mailimap_fetch_type_free(ft);
        mailimap_set_free(set);
        if (r != MAILIMAP_NO_ERROR) {
            if (connection_error(r)) {
                cmd_error(l, r, "UID FETCH", err, errlen);
                return -1;
            }
            log_warn("imap loop UID FETCH refused domain=%s mailbox=\"%s\": flags unknown",
                     l->domain, where == FL_INBOX ? l->inbox : l->spam);
            continue;
        }
        for (clistiter *m = clist_begin(res); m; m = clist_next(m)) {
            struct mailimap_msg_att *ma = clist_content(m);
            uint32_t uid = 0;
            bool seen = false, answered = false, flagged = false;
            for (clistiter *a = clist_begin(ma->att_list); a; a = clist_next(a)) {
                struct mailimap_msg_att_item *item = clist_content(a);
                if (item->att_type == MAILIMAP_MSG_ATT_ITEM_STATIC &&
                    item->att_data.att_static->att_type == MAILIMAP_MSG_ATT_UID) {
                    uid = item->att_data.att_static->att_data.att_uid;
                } else if (item->att_type == MAILIMAP_MSG_ATT_ITEM_DYNAMIC &&
                           item->att_data.att_dyn->att_list) {
                    clist *fl = item->att_data.att_dyn->att_list;
                    for (clistiter *f = clist_begin(fl); f; f = clist_next(f)) {
                        struct mailimap_flag_fetch *ff = clist_content(f);
                        if (ff->fl_type != MAILIMAP_FLAG_FETCH_OTHER || !ff->fl_flag)
                            continue;
                        seen |= ff->fl_flag->fl_type == MAILIMAP_FLAG_SEEN;
                        answered |= ff->fl_flag->fl_type == MAILIMAP_FLAG_ANSWERED;
                        flagged |= ff->fl_flag->fl_type == MAILIMAP_FLAG_FLAGGED;
                    }
                }
            }
            for (size_t i = start; uid && i < end; i++) {
                struct fl_copy *c = &copies[hits[i].copy];
                if (hits[i].uid != uid || c->placement != where)
                    continue;
                c->opened |= seen;
                c->read |= seen && (answered || flagged);
            }
        }
        mailimap_fetch_list_free(res);
    }
    return 0;
}

/* check_folder - EXAMINE folder, search every checkable copy, fetch the
 * flags of the hits; marks searched copies in ck. -1 on a connection
 * error, -2 when the server refuses to open the folder */
static int check_folder(struct imap_loop *l, const char *folder, enum fl_placement where,
                        struct fl_copy *copies, size_t n, unsigned char *ck, char *err,
                        size_t errlen)
{
    struct hit *hits = NULL;
    size_t nhits = 0, cap = 0;
    int rc = -1;
    unsigned bit = where == FL_INBOX ? CK_INBOX : CK_SPAM;

    int r = mailimap_examine(l->imap, folder);
    if (r != MAILIMAP_NO_ERROR) {
        char what[300];
        snprintf(what, sizeof what, "EXAMINE \"%s\"", folder);
        cmd_error(l, r, what, err, errlen);
        return connection_error(r) ? -1 : -2;
    }
    for (size_t i = 0; i < n; i++) {
        if (!message_id_ok(copies[i].message_id))
            continue;
        /* libetpan frees both strings with the key */
        struct mailimap_search_key *key =
            mailimap_search_key_new_header(xstrdup("Message-ID"), xstrdup(copies[i].message_id));
        if (!key)
            abort(); /* out of memory */
        clist *uids = NULL;
        r = mailimap_uid_search(l->imap, NULL, key, &uids);
        mailimap_search_key_free(key);
        if (r != MAILIMAP_NO_ERROR) {
            if (connection_error(r)) {
                cmd_error(l, r, "UID SEARCH", err, errlen);
                goto out;
            }
            log_warn("imap loop UID SEARCH refused domain=%s mailbox=\"%s\" message_id=%s",
                     l->domain, folder, copies[i].message_id);
            continue;
        }
        ck[i] |= bit;
        for (clistiter *it = clist_begin(uids); it; it = clist_next(it)) {
            uint32_t *uid = clist_content(it);
            if (nhits == cap) {
                cap = cap ? cap * 2 : 16;
                hits = xreallocarray(hits, cap, sizeof *hits);
            }
            hits[nhits].copy = i;
            hits[nhits].uid = *uid;
            nhits++;
            if (copies[i].placement == FL_UNKNOWN)
                copies[i].placement = where; /* the inbox is searched first and wins */
        }
        mailimap_search_result_free(uids);
    }
    rc = fetch_flags(l, hits, nhits, where, copies, err, errlen);
out:
    free(hits);
    return rc;
}

static void reset_copies(struct fl_copy *copies, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        copies[i].placement = FL_UNKNOWN;
        copies[i].opened = false;
        copies[i].read = false;
    }
}

/* note_failure - remember why, schedule the next connect attempt */
static void note_failure(struct imap_loop *l, const char *err)
{
    l->backoff_ms = l->backoff_ms ? l->backoff_ms * 2 : BACKOFF_FIRST_MS;
    if (l->backoff_ms > BACKOFF_MAX_MS)
        l->backoff_ms = BACKOFF_MAX_MS;
    l->retry_at_ms = time_mono_ms() + l->backoff_ms;
    snprintf(l->last_err, sizeof l->last_err, "%s", err);
}

static int imap_check(void *loop, struct fl_copy *copies, size_t n, char *errbuf, size_t errlen)
{
    struct imap_loop *l = loop;
    struct sigpipe_guard g;
    unsigned char *ck = NULL;
    char err[512] = "";
    int rc = -1;

    reset_copies(copies, n);
    if (n == 0)
        return 0;
    sigpipe_block(&g);
    if (l->imap) {
        int r = mailimap_noop(l->imap);
        if (r != MAILIMAP_NO_ERROR) {
            /* dropped while idle (server timeout, restart): not an outage
             * yet, so reconnect at once */
            session_close(l, false, connection_error(r) ? imap_strerror(r) : "NOOP refused");
        }
    }
    if (!l->imap) {
        int64_t now = time_mono_ms();
        if (now < l->retry_at_ms) {
            long long wait_s = (l->retry_at_ms - now + 999) / 1000;
            log_info("imap loop round skipped domain=%s reconnect_in_s=%lld", l->domain, wait_s);
            snprintf(errbuf, errlen, "reconnecting in %lld s (last error: %s)", wait_s,
                     l->last_err);
            goto out;
        }
        if (session_open(l, err, sizeof err) < 0) {
            note_failure(l, err);
            log_warn("imap loop connect failed domain=%s host=%s port=%u retry_in_ms=%lld: %s",
                     l->domain, l->host, (unsigned)l->port, (long long)l->backoff_ms, err);
            snprintf(errbuf, errlen, "%s", err);
            goto out;
        }
    }
    ck = xcalloc(n, 1);
    int fr = check_folder(l, l->inbox, FL_INBOX, copies, n, ck, err, sizeof err);
    if (fr == 0)
        fr = check_folder(l, l->spam, FL_SPAM, copies, n, ck, err, sizeof err);
    if (fr < 0) {
        reset_copies(copies, n);
        log_warn("imap loop round failed domain=%s host=%s copies=%zu: %s", l->domain, l->host, n,
                 err);
        snprintf(errbuf, errlen, "%s", err);
        if (fr == -1) {
            /* the session is gone: close it, the next rounds back off */
            session_close(l, false, err);
            note_failure(l, err);
        }
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (copies[i].placement == FL_UNKNOWN && ck[i] == (CK_INBOX | CK_SPAM))
            copies[i].placement = FL_NOT_FOUND;
    }
    l->backoff_ms = 0;
    l->retry_at_ms = 0;
    rc = 0;
out:
    free(ck);
    sigpipe_restore(&g);
    return rc;
}

/* ---- create / destroy ------------------------------------------------- */

static void loop_free(struct imap_loop *l)
{
    if (!l)
        return;
    if (l->password) {
        explicit_bzero(l->password, strlen(l->password));
        free(l->password);
    }
    free(l->domain);
    free(l->host);
    free(l->user);
    free(l->inbox);
    free(l->spam_conf);
    free(l->ca_file);
    free(l->spam);
    X509_STORE_free(l->store);
    free(l);
}

static void *imap_create(const char *domain, json_object *settings, char *errbuf, size_t errlen)
{
    struct imap_loop *l = xcalloc(1, sizeof *l);
    char err[384];

    if (parse_settings(l, settings, err, sizeof err) < 0) {
        snprintf(errbuf, errlen, "imap settings: %s", err);
        loop_free(l);
        return NULL;
    }
    l->domain = xstrdup(domain ? domain : "");
    log_info("imap loop created domain=%s host=%s port=%u tls=%s user=%s", l->domain, l->host,
             (unsigned)l->port, tls_names[l->tls], l->user);
    return l;
}

static void imap_destroy(void *loop)
{
    struct imap_loop *l = loop;
    if (!l)
        return;
    if (l->imap) {
        struct sigpipe_guard g;
        sigpipe_block(&g);
        session_close(l, true, "loop destroyed");
        sigpipe_restore(&g);
    }
    loop_free(l);
}

const struct feedback_loop_ops loop_imap_ops = {
    .name = "imap",
    .create = imap_create,
    .check = imap_check,
    .destroy = imap_destroy,
};
