/* fuzz_imap.c - the IMAP FeedbackLoop's handling of server responses
 * (health-service/loops/loop_imap.c and loop_imap_conn.c) on arbitrary
 * server bytes. libetpan parses the responses; what is fuzzed is our use
 * of what it returns: the greeting and PREAUTH, CAPABILITY and STARTTLS,
 * LOGIN refused, LIST for the spam folder (SPECIAL-USE \Junk, names,
 * hierarchy delimiters), EXAMINE refused, UID SEARCH results, UID FETCH
 * flags matched to the copies, NOOP on a kept connection, LOGOUT, and
 * the error texts built from server replies - together with libetpan's
 * response parser under it.
 *
 * The loop is created from JSON settings as the scheduler does and runs
 * its rounds through loop_imap_ops.check; only the stream is replaced:
 * the TCP connect goes to a local listener that is never spoken to, and
 * libetpan is handed (by mailstream_socket_open_timeout, renamed below) a
 * socketpair whose far end holds the server's side of the dialogue.
 *
 * Input: byte 0 chooses (bit 0: "spam" set, no LIST; bits 1-2: one to
 * four copies; bit 3: a second round on the same loop; bit 4: tls
 * starttls instead of none); the rest is the server's bytes, one
 * connection per NUL-separated piece (none left: the stream cannot be
 * set up).
 *
 * One loop per choice of settings is kept across inputs (create loads the
 * trust store); after each input its session is closed and its backoff
 * cleared, so every input starts from a fresh loop's state.
 *
 * Invariants: a round returns 0 or -1; -1 leaves every copy unknown and
 * says why; read implies opened, opened implies inbox or spam; a copy
 * whose Message-ID cannot be searched stays unknown; no error text holds
 * the password (unless the server sent it); a connected loop knows its
 * spam folder.
 */
#include "feedback_loop.h"
#include "fuzz.h"
#include "log.h"

#include <libetpan/libetpan.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define FUZZ_PASS "Pw-secret-77"
#define FUZZ_MAX_INPUT 65536
#define MAX_CONNS 8

static const uint8_t *srv_data;
static size_t srv_len, srv_pos;
static int peers[MAX_CONNS], npeers;
static int listener = -1;
static int listen_port;

static mailstream *fuzz_stream_open(int fd, time_t timeout);

#define mailstream_socket_open_timeout fuzz_stream_open
#include "../../health-service/loops/loop_imap_conn.c"
#undef mailstream_socket_open_timeout

/* fuzz_stream_open - replaces the connected socket fd with a socketpair
 * holding the next piece of the server's bytes */
static mailstream *fuzz_stream_open(int fd, time_t timeout)
{
    int sv[2], a;
    while ((a = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0)
        close(a); /* the TCP side is never spoken to */
    close(fd);
    if (srv_pos > srv_len || npeers == MAX_CONNS)
        return NULL;
    const uint8_t *p = srv_data + srv_pos, *nul = memchr(p, '\0', srv_len - srv_pos);
    size_t n = nul ? (size_t)(nul - p) : srv_len - srv_pos;
    srv_pos += n + 1;
    FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
    FUZZ_CHECK(n == 0 || write(sv[1], p, n) == (ssize_t)n, "the server's bytes fit the socket");
    shutdown(sv[1], SHUT_WR);
    fcntl(sv[1], F_SETFL, O_NONBLOCK);
    peers[npeers++] = sv[1];
    mailstream *s = mailstream_socket_open_timeout(sv[0], timeout);
    if (!s)
        close(sv[0]);
    return s;
}

/* listen_once - the local listener the loop's TCP connect reaches */
static void listen_once(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    if (listener >= 0)
        return;
    listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    FUZZ_CHECK(listener >= 0 && bind(listener, (struct sockaddr *)&sa, sizeof sa) == 0 &&
                   listen(listener, 64) == 0 &&
                   getsockname(listener, (struct sockaddr *)&sa, &sl) == 0,
               "a local listener");
    listen_port = ntohs(sa.sin_port);
}

/* drain_peers - the client's side of the dialogue: dropped, or printed
 * when FUZZ_IMAP_WIRE is set (with the logs and each round's results, to
 * write seeds) */
static void drain_peers(void)
{
    char b[4096];
    bool show = getenv("FUZZ_IMAP_WIRE") != NULL;
    for (int i = 0; i < npeers; i++) {
        ssize_t n;
        while ((n = read(peers[i], b, sizeof b)) > 0)
            if (show)
                fwrite(b, 1, (size_t)n, stderr);
        close(peers[i]);
    }
    npeers = 0;
}

/* __lsan_default_suppressions - libetpan 1.9.4's parse_greeting returns on
 * a BYE greeting without freeing the greeting it parsed (mailimap.c); the
 * blocks under it are libetpan's alone. Leaks of what our code is handed
 * (search results, fetch and LIST lists) are still reported. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:mailimap_greeting_new\n";
}

static const char *const ids[] = {"<m1@d.example>", "<m2@d.example>", "<m3\x01@d.example>",
                                  "<m4@d.example>"};

static void check_round(int rc, const struct fl_copy *c, size_t n, const char *err)
{
    FUZZ_CHECK(rc == 0 || rc == -1, "a round returns 0 or -1");
    FUZZ_CHECK(!strstr(err, FUZZ_PASS) || memmem(srv_data, srv_len, FUZZ_PASS, strlen(FUZZ_PASS)),
               "no password in an error (unless the server sent it)");
    for (size_t i = 0; i < n; i++) {
        FUZZ_CHECK(c[i].placement >= FL_UNKNOWN && c[i].placement <= FL_SPAM, "a placement");
        FUZZ_CHECK(!c[i].read || c[i].opened, "read implies opened");
        FUZZ_CHECK(!c[i].opened || c[i].placement == FL_INBOX || c[i].placement == FL_SPAM,
                   "opened implies found");
        if (rc != 0)
            FUZZ_CHECK(c[i].placement == FL_UNKNOWN && !c[i].opened, "a failed round: unknown");
        if (strchr(c[i].message_id, '\x01'))
            FUZZ_CHECK(c[i].placement == FL_UNKNOWN, "an unsearchable id stays unknown");
    }
    FUZZ_CHECK(rc == 0 || err[0], "a failed round says why");
    if (getenv("FUZZ_IMAP_WIRE")) {
        fprintf(stderr, "round rc=%d err=%s\n", rc, err);
        for (size_t i = 0; i < n; i++)
            fprintf(stderr, "  %s placement=%d opened=%d read=%d\n", c[i].message_id,
                    (int)c[i].placement, c[i].opened, c[i].read);
    }
}

/* get_loop - the loop for the settings chosen by flags (bit 0: "spam"
 * set, bit 4: starttls), created once: loading the trust store at create
 * time costs more than a round */
static struct imap_loop *get_loop(unsigned flags)
{
    static void *loops[0x12];
    if (!loops[flags]) {
        char js[256], err[512];
        snprintf(js, sizeof js,
                 "{\"host\":\"127.0.0.1\",\"port\":%d,\"tls\":\"%s\",\"user\":\"seed@d.example\","
                 "\"password\":\"" FUZZ_PASS "\",\"timeout_ms\":2000%s}",
                 listen_port, (flags & 0x10) ? "starttls" : "none",
                 (flags & 1) ? ",\"spam\":\"Junk\"" : "");
        json_object *o = json_tokener_parse(js);
        loops[flags] = loop_imap_ops.create("d.example", o, err, sizeof err);
        json_object_put(o);
        FUZZ_CHECK(loops[flags], "settings accepted");
    }
    return loops[flags];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool quiet;
    if (!quiet) {
        log_init(getenv("FUZZ_IMAP_WIRE") ? LOG_DEBUG : LOG_NONE, LOG_TEXT, "fuzz");
        quiet = true;
    }
    if (size < 1 || size > FUZZ_MAX_INPUT)
        return 0;
    listen_once();
    unsigned flags = data[0];
    srv_data = data + 1;
    srv_len = size - 1;
    srv_pos = 0;
    npeers = 0;

    char err[512];
    struct imap_loop *l = get_loop(flags & 0x11);
    struct fl_copy copies[4];
    size_t n = ((flags >> 1) & 3) + 1;
    for (int round = 0; round < ((flags & 8) ? 2 : 1); round++) {
        for (size_t i = 0; i < n; i++)
            copies[i] = (struct fl_copy){.message_id = ids[i], .recipient = "seed@d.example"};
        err[0] = '\0';
        int rc = loop_imap_ops.check(l, copies, n, err, sizeof err);
        check_round(rc, copies, n, err);
        FUZZ_CHECK(!l->imap || l->spam, "a connected loop knows its spam folder");
    }
    /* as destroy() does, but the loop is kept for the next input */
    imap_session_close(l, true, "end of input");
    l->backoff_ms = l->retry_at_ms = 0;
    l->last_err[0] = '\0';
    drain_peers();
    return 0;
}
