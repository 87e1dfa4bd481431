/* fuzz_smtp.c - the SMTP engine's reply handling (warmup-service/smtp/
 * smtp_conn.c) on arbitrary server bytes. Includes smtp_conn.c to reach
 * read_reply (multi-line replies, EHLO keywords) and replaces its connect
 * (smtp_io_connect) with a socketpair whose far end has been given the
 * server's whole side of the dialogue; the rest of the engine (smtp_io.c
 * line reads with their timeouts, pipelining, RSET, AUTH, QUIT) runs as
 * it does against a real server. No network, no threads.
 *
 * Input: byte 0 chooses the run (bit 0: replies only, read_reply until
 * the stream ends, bit 1: as EHLO replies; otherwise a session: bit 2
 * AUTH with a username, bits 3-4 one to four messages, bit 5 an 8-bit
 * body, bit 6 the second message refused locally); the rest is the
 * server's bytes, one connection per NUL-separated piece (a reconnect
 * takes the next piece; none left: connection refused).
 *
 * Invariants: every result has a code of 0 or 200..599, an enhanced code
 * that is empty or "C.S.D" of the code's class, printable text, never the
 * password nor its AUTH encodings; a message counted SENT had a 2xx
 * end-of-data reply and its body and "." were written; a message refused
 * locally is PERMFAIL with code 0; nothing the client wrote holds the
 * password in clear; no descriptor is left open.
 */
#define smtp_io_connect fuzz_io_connect
#include "../../warmup-service/smtp/smtp_conn.c"
#include "fuzz.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#define FUZZ_USER "fuzz-user"
#define FUZZ_PASS "Pw-secret-77"
#define FUZZ_PLAIN_B64 "AGZ1enotdXNlcgBQdy1zZWNyZXQtNzc" /* "\0user\0pass", less its end */
#define FUZZ_LOGIN_B64 "UHctc2VjcmV0LTc3"                /* AUTH LOGIN's password */
#define FUZZ_MAX_INPUT 65536
#define MAX_CONNS 8

/* the server's side: pieces of the input, one per connection */
static const uint8_t *srv_data;
static size_t srv_len, srv_pos;
static int peers[MAX_CONNS], npeers;

int fuzz_io_connect(struct smtp_io *io, const char *host, int port, int timeout_ms, char *errbuf,
                    size_t errlen)
{
    int sv[2];
    (void)host;
    (void)port;
    (void)timeout_ms;
    io->in_pos = io->in_len = 0;
    if (srv_pos > srv_len || npeers == MAX_CONNS) {
        errbuf_set(errbuf, errlen, "connection refused (no more server data)");
        return SMTP_IO_E_CONNECT;
    }
    const uint8_t *p = srv_data + srv_pos, *nul = memchr(p, '\0', srv_len - srv_pos);
    size_t n = nul ? (size_t)(nul - p) : srv_len - srv_pos;
    srv_pos += n + 1;
    FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
    FUZZ_CHECK(n == 0 || write(sv[1], p, n) == (ssize_t)n, "the server's bytes fit the socket");
    shutdown(sv[1], SHUT_WR);
    fcntl(sv[1], F_SETFL, O_NONBLOCK);
    fcntl(sv[0], F_SETFL, O_NONBLOCK); /* as smtp_io_connect leaves it */
    io->fd = sv[0];
    peers[npeers++] = sv[1];
    return 0;
}

/* wire - everything the client wrote on every connection, appended to w */
static void wire(struct buf *w)
{
    char b[4096];
    for (int i = 0; i < npeers; i++) {
        ssize_t n;
        while ((n = read(peers[i], b, sizeof b)) > 0)
            buf_append(w, b, (size_t)n);
        close(peers[i]);
    }
    npeers = 0;
}

static void check_result(const struct smtp_result *r)
{
    size_t n = strnlen(r->text, sizeof r->text);
    FUZZ_CHECK(n < sizeof r->text, "text is terminated");
    for (size_t i = 0; i < n; i++)
        FUZZ_CHECK((unsigned char)r->text[i] >= 0x20 && r->text[i] != 0x7f, "printable text");
    FUZZ_CHECK(r->code == 0 || (r->code >= 200 && r->code <= 599), "code 0 or 200..599");
    FUZZ_CHECK(r->outcome != SMTP_SENT || r->code / 100 == 2, "SENT only on 2xx");
    static const char *const secret[] = {FUZZ_PASS, FUZZ_PLAIN_B64, FUZZ_LOGIN_B64};
    for (size_t i = 0; i < 3; i++) /* unless the server sent it itself */
        FUZZ_CHECK(!strstr(r->text, secret[i]) ||
                       memmem(srv_data, srv_len, secret[i], strlen(secret[i])),
                   "no password, plain or encoded, in a result");
    const char *e = r->enhanced;
    size_t el = strnlen(e, sizeof r->enhanced);
    FUZZ_CHECK(el < sizeof r->enhanced, "enhanced code is terminated");
    if (el) {
        size_t i = 2, d1 = 0, d2 = 0;
        FUZZ_CHECK(el >= 5 && e[0] == '0' + r->code / 100 && e[1] == '.', "enhanced class");
        while (e[i] >= '0' && e[i] <= '9')
            i++, d1++;
        FUZZ_CHECK(e[i] == '.', "enhanced C.S.D");
        for (i++; e[i] >= '0' && e[i] <= '9'; i++)
            d2++;
        FUZZ_CHECK(e[i] == '\0' && d1 >= 1 && d1 <= 3 && d2 >= 1 && d2 <= 3, "enhanced digits");
    }
}

/* replies - read_reply over the whole stream */
static void replies(struct smtp_conn *c, bool ehlo)
{
    struct smtp_result r;
    char err[64];
    if (fuzz_io_connect(&c->io, "x", 25, 0, err, sizeof err) != 0)
        return;
    for (int i = 0; i < 10000; i++) {
        int rc = read_reply(c, smtp_io_deadline(&c->io, 2000), "fuzzing", &r, ehlo);
        if (rc) {
            FUZZ_CHECK(rc == E_IO || rc == E_PROTO, "the stream ends or is malformed");
            break;
        }
        check_result(&r);
        FUZZ_CHECK(r.code >= 200 && r.text[0] == r.code / 100 + '0', "a reply has its code");
    }
}

/* session - smtp_conn_send of one to four messages, then free c */
static void session(struct smtp_conn *c, unsigned flags)
{
    static const char body7[] = "Subject: hi\r\n\r\nhello\r\n.dot\r\n";
    static const char body8[] = "Subject: caf\xc3\xa9\r\n\r\nna\xc3\xafve\r\n";
    const char *body = (flags & 0x20) ? body8 : body7;
    struct smtp_envelope m[4];
    struct smtp_result res[4];
    size_t n = ((flags >> 3) & 3) + 1;
    for (size_t i = 0; i < n; i++)
        m[i] = (struct smtp_envelope){.from = "sender@example.com",
                                      .rcpt = "rcpt@example.net",
                                      .data = body,
                                      .len = strlen(body)};
    if ((flags & 0x40) && n > 1)
        m[1].rcpt = "rcpt@example.net>\r\nRSET";
    smtp_conn_send(c, m, n, res);
    smtp_conn_free(c); /* QUIT */
    bool sent = false;
    for (size_t i = 0; i < n; i++) {
        check_result(&res[i]);
        sent |= res[i].outcome == SMTP_SENT;
        if (m[i].rcpt[strlen(m[i].rcpt) - 1] == 'T')
            FUZZ_CHECK(res[i].outcome == SMTP_PERMFAIL && res[i].code == 0,
                       "a bad envelope is refused locally");
    }
    struct buf w;
    buf_init(&w, 64u * 1024 * 1024);
    wire(&w);
    const char *ws = buf_str(&w);
    FUZZ_CHECK(!strstr(ws, FUZZ_PASS), "no password in clear on the wire");
    FUZZ_CHECK(!strstr(ws, "RSET\r\nRSET"), "no command from an address");
    FUZZ_CHECK(!sent || strstr(ws, "\r\n..dot\r\n.\r\n") || strstr(ws, "\r\nna\xc3\xafve\r\n.\r\n"),
               "a SENT message was written");
    buf_cleanup(&w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool quiet;
    if (!quiet) {
        log_init(LOG_NONE, LOG_TEXT, "fuzz");
        quiet = true;
    }
    if (size < 1 || size > FUZZ_MAX_INPUT)
        return 0;
    unsigned flags = data[0];
    struct smtp_settings s = {.name = "fuzz",
                              .type = "CUSTOM",
                              .host = "smtp.invalid",
                              .port = 25,
                              .tls = SMTP_TLS_NONE,
                              .connect_timeout_ms = 2000,
                              .command_timeout_ms = 2000,
                              .message_timeout_ms = 2000};
    if (flags & 0x4) {
        s.username = FUZZ_USER;
        s.password = FUZZ_PASS;
    }
    char err[256];
    struct smtp_conn *c = smtp_conn_new(&s, 0, err, sizeof err);
    FUZZ_CHECK(c, "settings accepted");
    srv_data = data + 1;
    srv_len = size - 1;
    srv_pos = 0;
    npeers = 0;
    if (flags & 1) {
        struct buf w;
        replies(c, flags & 2);
        smtp_conn_free(c);
        buf_init(&w, 64u * 1024 * 1024);
        wire(&w);
        buf_cleanup(&w);
    } else {
        session(c, flags);
    }
    return 0;
}
