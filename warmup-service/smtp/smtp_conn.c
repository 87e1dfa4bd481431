/* smtp_conn.c - the SMTP client engine: greeting, EHLO, STARTTLS, AUTH,
 * pipelined transactions (design and reasons in smtp_conn.h). The bounded
 * socket I/O (connect, TLS handshake, writes, line reads, every wait under
 * a deadline) is smtp_io.c; the TLS layer (context cache, socket BIO,
 * handshake and certificate checks, TLS read/write steps) is libshared's
 * tls.c.
 *
 * Owns per session: the struct smtp_io (socket, SSL and 16 KiB input
 * buffer, closed with smtp_io_close), an output buffer holding the wire
 * form of what is written next, and the last failure text. The SSL_CTX is
 * shared per CA file (one reference per session, taken in smtp_conn_new,
 * dropped in smtp_conn_free). A session is used by one thread at a time;
 * the only shared state (CTX cache, BIO method) is in tls.c.
 */
#include "errbuf.h"
#include "smtp_conn.h"
#include "log.h"
#include "smtp_io.h"
#include "tls.h"
#include "utf8.h"
#include "xalloc.h"

#include <netdb.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#define SMTP_MAX_MESSAGE ((size_t)64 * 1024 * 1024) /* data bytes of one message */
/* stuffing at most doubles the data; room for the next envelope behind it */
#define SMTP_WIRE_CAP (2 * SMTP_MAX_MESSAGE + 8192)
#define SMTP_OUT_KEEP ((size_t)1024 * 1024) /* free a larger output buffer after use */
#define SMTP_ADDR_MAX 512
#define SMTP_CRED_MAX 1024
#define SMTP_QUIT_WAIT_MS 2000
#define SMTP_MAX_REPLY_LINES 200

#define AUTH_PLAIN 0x1u
#define AUTH_LOGIN 0x2u

/* internal status codes; after any but E_REPLY and E_POLICY the
 * connection is out of step and is dropped without QUIT */
enum {
    E_IO = SMTP_IO_E_IO,           /* connection lost or closed */
    E_TIMEOUT = SMTP_IO_E_TIMEOUT, /* a bounded wait expired */
    E_PROTO = SMTP_IO_E_PROTO,     /* malformed reply */
    E_TLS = SMTP_IO_E_TLS,         /* handshake or certificate */
    E_CONNECT = SMTP_IO_E_CONNECT, /* resolve or TCP connect */
    E_CANCEL = SMTP_IO_E_CANCEL,   /* the settings' cancel flag was set */
    E_REPLY = -16,                 /* the server answered with an error (result holds it) */
    E_POLICY = -17,                /* we refuse to go on (no STARTTLS, no AUTH); in step */
};

struct smtp_conn {
    struct smtp_settings s; /* copy; strings borrowed */
    const char *helo;       /* s.helo, or helo_auto */
    char helo_auto[260];
    SSL_CTX *ctx; /* shared, NULL when tls=none */
    struct smtp_io io;
    bool fresh;      /* no message attempted on this connection yet */
    bool need_rset;  /* a failed transaction is still open on the server */
    bool queued;     /* the next message's envelope is already in out / sent */
    bool out_secret; /* out held credentials: cleanse it */
    bool ext_pipelining, ext_starttls, ext_size, ext_8bitmime, ext_smtputf8;
    unsigned auth_mechs;
    const char *auth_used;
    struct buf out;
    char err[400];
};

/* ---- small helpers ------------------------------------------------------ */

__attribute__((format(printf, 2, 3))) static void errf(struct smtp_conn *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    errbuf_vset(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
}

/* res_local - a local failure (no reply): TEMPFAIL, code 0 */
static void res_local(struct smtp_result *r, enum smtp_outcome o, const char *text)
{
    r->outcome = o;
    r->code = 0;
    r->enhanced[0] = '\0';
    snprintf(r->text, sizeof r->text, "%s", text);
    r->fail = SMTP_FAIL_NONE;
    r->skipped = false;
}

/* res_io - a failure of the connection (status rc) into r: TEMPFAIL, code
 * 0, with the breaker's view of it */
static void res_io(struct smtp_result *r, int rc, const char *text)
{
    res_local(r, SMTP_TEMPFAIL, text);
    r->fail = rc == E_TIMEOUT   ? SMTP_FAIL_TIMEOUT
              : rc == E_CONNECT ? SMTP_FAIL_CONNECT
              : rc == E_CANCEL  ? SMTP_FAIL_CANCELLED
                                : SMTP_FAIL_NONE;
}

/* ends_batch - a failure after which the rest of the batch is not tried:
 * the server does not answer (or we are shutting down) */
static bool ends_batch(const struct smtp_result *r)
{
    return r->fail != SMTP_FAIL_NONE;
}

/* outcome_final - the end-of-data reply: 2xx SENT, 5xx PERMFAIL, else TEMPFAIL */
static enum smtp_outcome outcome_final(int code)
{
    if (code / 100 == 2)
        return SMTP_SENT;
    return code / 100 == 5 ? SMTP_PERMFAIL : SMTP_TEMPFAIL;
}

/* outcome_fail - a reply that stopped a message: never SENT */
static enum smtp_outcome outcome_fail(int code)
{
    return code / 100 == 5 ? SMTP_PERMFAIL : SMTP_TEMPFAIL;
}

static bool has_8bit(const char *p, size_t len)
{
    return utf8_ascii_len(p, len) < len;
}

/* needs_smtputf8 - a UTF-8 envelope address (RFC 6531). The worker has
 * already put the domain of an ASCII local part into A-labels, so what
 * remains is a UTF-8 local part or a domain IDNA refuses. */
static bool needs_smtputf8(const struct smtp_envelope *m)
{
    return has_8bit(m->from, strlen(m->from)) || has_8bit(m->rcpt, strlen(m->rcpt));
}

/* utf8_refused - m needs SMTPUTF8 and this server does not offer it:
 * PERMFAIL into r (enhanced 5.6.7, RFC 6531) without sending anything,
 * rather than a refusal one round trip later (or a server that mangles
 * the address) */
static bool utf8_refused(const struct smtp_conn *c, const struct smtp_envelope *m,
                         struct smtp_result *r)
{
    if (c->ext_smtputf8 || !needs_smtputf8(m))
        return false;
    if (r) {
        res_local(r, SMTP_PERMFAIL,
                  has_8bit(m->rcpt, strlen(m->rcpt))
                      ? "the recipient address is internationalised (UTF-8) and the server does "
                        "not offer SMTPUTF8"
                      : "the sender address is internationalised (UTF-8) and the server does not "
                        "offer SMTPUTF8");
        snprintf(r->enhanced, sizeof r->enhanced, "5.6.7");
    }
    return true;
}

/* ---- exported pure helpers ---------------------------------------------- */

int smtp_wire_data(struct buf *out, const char *data, size_t len)
{
    /* appended in runs: only a dot at the start of a line and a bare LF
     * change anything, and a composed message (CRLF) has few of either */
    const char *p = data, *end = data + len, *run = data;
    bool bol = true;
    while (p < end) {
        if (bol && *p == '.') {
            if (buf_append(out, run, (size_t)(p - run)) < 0 || buf_appendc(out, '.') < 0)
                return -1;
            run = p;
        }
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) {
            bol = false;
            break;
        }
        if (!(nl > p && nl[-1] == '\r')) { /* a bare LF becomes CRLF */
            if (buf_append(out, run, (size_t)(nl - run)) < 0 || buf_append(out, "\r\n", 2) < 0)
                return -1;
            run = nl + 1;
        }
        p = nl + 1;
        bol = true;
    }
    if (buf_append(out, run, (size_t)(end - run)) < 0)
        return -1;
    if (!bol) {
        /* no final line end: complete it (a trailing CR only needs its LF) */
        const char *tail = end[-1] == '\r' ? "\n" : "\r\n";
        if (buf_append(out, tail, strlen(tail)) < 0)
            return -1;
    }
    return buf_append(out, ".\r\n", 3);
}

bool smtp_addr_ok(const char *a, bool empty_ok)
{
    if (!a)
        return false;
    size_t n = strlen(a);
    if (n == 0)
        return empty_ok;
    if (n > SMTP_ADDR_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)a[i];
        if (ch < 0x20 || ch == 0x7f || ch == '<' || ch == '>')
            return false;
    }
    return true;
}

int smtp_reply_line(const char *line, size_t len, int *code, bool *last, const char **text)
{
    if (len < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '9' ||
        line[2] < '0' || line[2] > '9')
        return -1;
    *code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    if (len == 3) {
        *last = true;
        *text = line + 3;
        return 0;
    }
    if (line[3] == ' ')
        *last = true;
    else if (line[3] == '-')
        *last = false;
    else
        return -1;
    *text = line + 4;
    return 0;
}

/* digits - 1..3 ASCII digits at p[*i] */
static bool digits(const char *p, size_t len, size_t *i)
{
    size_t start = *i;
    while (*i < len && *i - start < 3 && p[*i] >= '0' && p[*i] <= '9')
        (*i)++;
    return *i > start && !(*i < len && p[*i] >= '0' && p[*i] <= '9');
}

size_t smtp_enhanced_code(int code, const char *text, size_t len, char out[16])
{
    size_t i = 0;
    out[0] = '\0';
    if (len < 5 || text[0] != (char)('0' + code / 100) || text[1] != '.')
        return 0;
    i = 2;
    if (!digits(text, len, &i) || i >= len || text[i] != '.')
        return 0;
    i++;
    if (!digits(text, len, &i))
        return 0;
    if (i < len && text[i] != ' ')
        return 0;
    memcpy(out, text, i);
    out[i] = '\0';
    return i < len ? i + 1 : i;
}

/* text_add - append printable text to r->text (control characters become
 * '?', tabs spaces), truncated */
static void text_add(struct smtp_result *r, size_t *tl, const char *p, size_t n)
{
    for (size_t i = 0; i < n && *tl + 1 < sizeof r->text; i++) {
        unsigned char ch = (unsigned char)p[i];
        r->text[(*tl)++] = ch == '\t' ? ' ' : (ch < 0x20 || ch == 0x7f) ? '?' : (char)ch;
    }
    r->text[*tl] = '\0';
}

/* ehlo_keyword - note one EHLO extension line */
static void ehlo_keyword(struct smtp_conn *c, const char *t, size_t n)
{
    size_t k = 0;
    while (k < n && t[k] != ' ' && t[k] != '=')
        k++;
#define KW(s) (k == sizeof(s) - 1 && strncasecmp(t, s, k) == 0)
    if (KW("PIPELINING"))
        c->ext_pipelining = true;
    else if (KW("STARTTLS"))
        c->ext_starttls = true;
    else if (KW("SIZE"))
        c->ext_size = true;
    else if (KW("8BITMIME"))
        c->ext_8bitmime = true;
    else if (KW("SMTPUTF8"))
        c->ext_smtputf8 = true;
    else if (KW("AUTH")) {
        size_t i = k;
        while (i < n) {
            while (i < n && (t[i] == ' ' || t[i] == '='))
                i++;
            size_t s = i;
            while (i < n && t[i] != ' ')
                i++;
            if (i - s == 5 && strncasecmp(t + s, "PLAIN", 5) == 0)
                c->auth_mechs |= AUTH_PLAIN;
            else if (i - s == 5 && strncasecmp(t + s, "LOGIN", 5) == 0)
                c->auth_mechs |= AUTH_LOGIN;
        }
    }
#undef KW
}

/* read_reply - one (multi-line) reply into r: code, enhanced code of the
 * first line, text "CODE text text..." on one line. ehlo: parse the
 * extension lines. The outcome is left to the caller. */
static int read_reply(struct smtp_conn *c, int64_t deadline, const char *what,
                      struct smtp_result *r, bool ehlo)
{
    size_t tl = 0;
    r->outcome = SMTP_TEMPFAIL;
    r->fail = SMTP_FAIL_NONE;
    r->skipped = false;
    r->code = 0;
    r->enhanced[0] = '\0';
    r->text[0] = '\0';
    for (int nl = 0;; nl++) {
        const char *line, *text;
        size_t len;
        int code, rc;
        bool last;
        rc = smtp_io_read_line(&c->io, deadline, what, &line, &len, c->err, sizeof c->err);
        if (rc)
            return rc;
        if (smtp_reply_line(line, len, &code, &last, &text) < 0 || (nl > 0 && code != r->code)) {
            errf(c, "malformed reply while %s", what);
            return E_PROTO;
        }
        size_t tlen = len - (size_t)(text - line);
        if (nl == 0) {
            r->code = code;
            text_add(r, &tl, line, 3);
            smtp_enhanced_code(code, text, tlen, r->enhanced);
        } else if (ehlo) {
            ehlo_keyword(c, text, tlen);
        }
        if (tlen > 0) {
            text_add(r, &tl, " ", 1);
            text_add(r, &tl, text, tlen);
        }
        if (last)
            return 0;
        if (nl >= SMTP_MAX_REPLY_LINES) {
            errf(c, "reply of more than %d lines while %s", SMTP_MAX_REPLY_LINES, what);
            return E_PROTO;
        }
    }
}

/* flush_out - write c->out, then empty it (cleansed if it held secrets) */
static int flush_out(struct smtp_conn *c, int64_t deadline, const char *what)
{
    int rc = c->out.len ? smtp_io_write(&c->io, c->out.data, c->out.len, deadline, what, c->err,
                                        sizeof c->err)
                        : 0;
    if (c->out_secret && c->out.data)
        OPENSSL_cleanse(c->out.data, c->out.alloc);
    c->out_secret = false;
    if (c->out.alloc > SMTP_OUT_KEEP)
        buf_cleanup(&c->out);
    else
        buf_reset(&c->out);
    return rc;
}

/* command - write line (CRLF included) and read its reply, each bounded by
 * the command timeout */
static int command(struct smtp_conn *c, const char *line, const char *what, struct smtp_result *r)
{
    char w[64];
    snprintf(w, sizeof w, "sending %s", what);
    if (buf_append(&c->out, line, strlen(line)) < 0) {
        errf(c, "command too long: %s", what);
        return E_PROTO;
    }
    int rc = flush_out(c, smtp_io_deadline(&c->io, c->s.command_timeout_ms), w);
    if (rc)
        return rc;
    snprintf(w, sizeof w, "waiting for the %s reply", what);
    return read_reply(c, smtp_io_deadline(&c->io, c->s.command_timeout_ms), w, r, false);
}

/* ---- connection set-up ------------------------------------------------------ */

/* conn_drop - close the connection; quit: send QUIT and wait briefly for
 * its reply (only when the dialogue is in step) */
static void conn_drop(struct smtp_conn *c, bool quit)
{
    if (c->io.fd < 0)
        return;
    if (quit) {
        struct smtp_result r;
        int ms = c->s.command_timeout_ms < SMTP_QUIT_WAIT_MS ? c->s.command_timeout_ms
                                                             : SMTP_QUIT_WAIT_MS;
        buf_reset(&c->out);
        if (buf_append(&c->out, "QUIT\r\n", 6) == 0 &&
            flush_out(c, smtp_io_deadline(&c->io, ms), "sending QUIT") == 0)
            (void)read_reply(c, smtp_io_deadline(&c->io, ms), "waiting for the QUIT reply", &r,
                             false);
    }
    smtp_io_close(&c->io, quit);
    c->queued = c->need_rset = false;
    if (c->out_secret && c->out.data)
        OPENSSL_cleanse(c->out.data, c->out.alloc);
    c->out_secret = false;
    buf_reset(&c->out);
}

/* tls_start - TLS on the connected socket (smtp_io_tls_start) within the
 * command timeout; the certificate chain and the host name (or IP address)
 * must verify */
static int tls_start(struct smtp_conn *c)
{
    return smtp_io_tls_start(&c->io, c->ctx, c->s.host, c->s.port,
                             smtp_io_deadline(&c->io, c->s.command_timeout_ms), c->err,
                             sizeof c->err);
}

/* ehlo_name - the configured name, else the domain of the batch's
 * sender, else (a probe sends nothing) the local address as an address
 * literal (RFC 5321 4.1.3): never a bare or local name */
static const char *ehlo_name(struct smtp_conn *c)
{
    if (c->helo[0])
        return c->helo;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char host[INET6_ADDRSTRLEN] = "127.0.0.1";
    bool v6 = false;
    if (getsockname(c->io.fd, (struct sockaddr *)&ss, &sl) == 0 &&
        getnameinfo((struct sockaddr *)&ss, sl, host, sizeof host, NULL, 0, NI_NUMERICHOST) == 0)
        v6 = ss.ss_family == AF_INET6;
    snprintf(c->helo_auto, sizeof c->helo_auto, v6 ? "[IPv6:%s]" : "[%s]", host);
    return c->helo_auto;
}

/* say_hello - EHLO (HELO fallback when allowed); extensions recorded */
static int say_hello(struct smtp_conn *c, bool allow_helo, struct smtp_result *fail)
{
    char line[300];
    c->ext_pipelining = c->ext_starttls = c->ext_size = false;
    c->ext_8bitmime = c->ext_smtputf8 = false;
    c->auth_mechs = 0;
    snprintf(line, sizeof line, "EHLO %s\r\n", ehlo_name(c));
    if (buf_append(&c->out, line, strlen(line)) < 0) {
        errf(c, "EHLO line too long");
        return E_PROTO;
    }
    int rc = flush_out(c, smtp_io_deadline(&c->io, c->s.command_timeout_ms), "sending EHLO");
    if (rc)
        return rc;
    rc = read_reply(c, smtp_io_deadline(&c->io, c->s.command_timeout_ms),
                    "waiting for the EHLO reply", fail, true);
    if (rc)
        return rc;
    if (fail->code / 100 == 2)
        return 0;
    if (allow_helo && fail->code / 100 == 5) {
        c->auth_mechs = 0;
        c->ext_pipelining = c->ext_starttls = c->ext_size = false;
        c->ext_8bitmime = c->ext_smtputf8 = false;
        snprintf(line, sizeof line, "HELO %s\r\n", ehlo_name(c));
        rc = command(c, line, "HELO", fail);
        if (rc)
            return rc;
        if (fail->code / 100 == 2)
            return 0;
    }
    fail->outcome = SMTP_TEMPFAIL;
    return E_REPLY;
}

/* b64 - base64 of p[0..n) as a new string (caller cleanses and frees) */
static char *b64(const void *p, size_t n)
{
    char *out = xmalloc(4 * ((n + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)out, p, (int)n);
    return out;
}

/* auth_step - the AUTH line a b (b may be NULL) and its reply; the output
 * buffer held credentials, so it is cleansed after (out_secret) */
static int auth_step(struct smtp_conn *c, const char *a, const char *b, struct smtp_result *r)
{
    char w[] = "sending AUTH";
    c->out_secret = true;
    if (buf_append(&c->out, a, strlen(a)) < 0 || (b && buf_append(&c->out, b, strlen(b)) < 0) ||
        buf_append(&c->out, "\r\n", 2) < 0) {
        errf(c, "AUTH line too long");
        return E_PROTO;
    }
    int rc = flush_out(c, smtp_io_deadline(&c->io, c->s.command_timeout_ms), w);
    if (rc)
        return rc;
    return read_reply(c, smtp_io_deadline(&c->io, c->s.command_timeout_ms),
                      "waiting for the AUTH reply", r, false);
}

static void free_secret(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

/* do_auth - AUTH PLAIN (preferred) or LOGIN. E_REPLY with fail filled
 * (5xx PERMFAIL) when the server refuses. */
static int do_auth(struct smtp_conn *c, struct smtp_result *fail)
{
    const char *user = c->s.username, *pass = c->s.password;
    size_t ul = strlen(user), pl = strlen(pass);
    char *tok = NULL, *tok2 = NULL;
    int rc;
    if (c->auth_mechs & AUTH_PLAIN) {
        c->auth_used = "PLAIN";
        size_t rl = ul + pl + 2;
        char *raw = xmalloc(rl);
        raw[0] = '\0';
        memcpy(raw + 1, user, ul);
        raw[1 + ul] = '\0';
        memcpy(raw + 2 + ul, pass, pl);
        tok = b64(raw, rl);
        OPENSSL_cleanse(raw, rl);
        free(raw);
        rc = auth_step(c, "AUTH PLAIN ", tok, fail);
        if (rc == 0 && fail->code == 334) /* asked again for the response */
            rc = auth_step(c, tok, NULL, fail);
    } else {
        c->auth_used = "LOGIN";
        rc = auth_step(c, "AUTH LOGIN", NULL, fail);
        if (rc == 0 && fail->code == 334) {
            tok = b64(user, ul);
            rc = auth_step(c, tok, NULL, fail);
        }
        if (rc == 0 && fail->code == 334) {
            tok2 = b64(pass, pl);
            rc = auth_step(c, tok2, NULL, fail);
        }
    }
    free_secret(tok);
    free_secret(tok2);
    if (rc)
        return rc;
    if (fail->code == 235)
        return 0;
    fail->outcome = outcome_fail(fail->code);
    if (fail->code / 100 == 3) /* a challenge we did not expect */
        fail->outcome = SMTP_TEMPFAIL;
    return E_REPLY;
}

/* conn_open - connect and bring the session to "ready for MAIL": TLS as
 * configured, EHLO, AUTH when a username is set (only when auth). On
 * failure *fail holds the result for the messages and the connection is
 * closed. */
static int conn_open(struct smtp_conn *c, bool auth, struct smtp_result *fail)
{
    struct smtp_result r;
    int rc;
    c->need_rset = c->queued = false;
    c->auth_used = NULL;
    rc = smtp_io_connect(&c->io, c->s.host, c->s.port, c->s.connect_timeout_ms, c->err,
                         sizeof c->err);
    if (rc == 0 && c->s.tls == SMTP_TLS_IMPLICIT)
        rc = tls_start(c);
    if (rc == 0)
        rc = read_reply(c, smtp_io_deadline(&c->io, c->s.command_timeout_ms),
                        "waiting for the greeting", fail, false);
    if (rc == 0 && fail->code != 220) {
        fail->outcome = SMTP_TEMPFAIL;
        rc = E_REPLY;
    }
    if (rc == 0)
        rc = say_hello(c, c->s.tls == SMTP_TLS_NONE, fail);
    if (rc == 0 && c->s.tls == SMTP_TLS_STARTTLS) {
        if (!c->ext_starttls) {
            errf(c, "TLS: STARTTLS required but not offered by %s:%d", c->s.host, c->s.port);
            rc = E_POLICY;
        } else {
            rc = command(c, "STARTTLS\r\n", "STARTTLS", &r);
            if (rc == 0 && r.code != 220) {
                *fail = r;
                fail->outcome = SMTP_TEMPFAIL;
                rc = E_REPLY;
            } else if (rc == 0 && smtp_io_pending(&c->io)) {
                /* plaintext pipelined behind the 220 would be trusted as TLS data */
                errf(c, "TLS: unexpected data after the STARTTLS reply from %s:%d", c->s.host,
                     c->s.port);
                rc = E_TLS;
            }
            if (rc == 0)
                rc = tls_start(c);
            if (rc == 0)
                rc = say_hello(c, false, fail);
        }
    }
    if (rc == 0 && c->s.username) {
        if (!(c->auth_mechs & (AUTH_PLAIN | AUTH_LOGIN))) {
            errf(c, "AUTH: %s:%d offers neither PLAIN nor LOGIN", c->s.host, c->s.port);
            rc = E_POLICY;
        } else if (c->s.tls != SMTP_TLS_NONE && !c->io.ssl) {
            errf(c, "AUTH: refusing to send credentials without TLS");
            rc = E_POLICY;
        } else if (auth) {
            rc = do_auth(c, fail);
        }
    }
    if (rc == 0) {
        c->fresh = true;
        log_info("smtp client=%s connected to %s:%d tls=%s auth=%s pipelining=%s", c->s.name,
                 c->s.host, c->s.port, tls_version(c->io.ssl), c->auth_used ? c->auth_used : "none",
                 c->ext_pipelining ? "yes" : "no");
        return 0;
    }
    if (rc != E_REPLY)
        res_io(fail, rc, c->err);
    log_warn("smtp client=%s %s:%d not ready: %s", c->s.name, c->s.host, c->s.port, fail->text);
    conn_drop(c, rc == E_REPLY || rc == E_POLICY);
    return rc;
}

/* ---- transactions ------------------------------------------------------------ */

enum cmd_kind { C_RSET, C_MAIL, C_RCPT, C_DATA };

static const char *const cmd_wait[] = {
    [C_RSET] = "waiting for the RSET reply",
    [C_MAIL] = "waiting for the MAIL FROM reply",
    [C_RCPT] = "waiting for the RCPT TO reply",
    [C_DATA] = "waiting for the DATA reply",
};

/* append_cmd - one envelope command for m into c->out */
static int append_cmd(struct smtp_conn *c, enum cmd_kind k, const struct smtp_envelope *m)
{
    struct buf *o = &c->out;
    switch (k) {
    case C_RSET:
        return buf_append(o, "RSET\r\n", 6);
    case C_MAIL:
        if (buf_printf(o, "MAIL FROM:<%s>", m->from) < 0)
            return -1;
        if (c->ext_size && buf_printf(o, " SIZE=%zu", m->len) < 0)
            return -1;
        if (c->ext_8bitmime && has_8bit(m->data, m->len) && buf_append(o, " BODY=8BITMIME", 14) < 0)
            return -1;
        if (c->ext_smtputf8 && needs_smtputf8(m) && buf_append(o, " SMTPUTF8", 9) < 0)
            return -1;
        return buf_append(o, "\r\n", 2);
    case C_RCPT:
        return buf_printf(o, "RCPT TO:<%s>\r\n", m->rcpt);
    case C_DATA:
        return buf_append(o, "DATA\r\n", 6);
    }
    return -1;
}

/* append_envelope - [RSET] MAIL RCPT DATA; the kinds go to k[], count returned */
static int append_envelope(struct smtp_conn *c, const struct smtp_envelope *m, bool rset,
                           enum cmd_kind k[4])
{
    int n = 0;
    if (rset)
        k[n++] = C_RSET;
    k[n++] = C_MAIL;
    k[n++] = C_RCPT;
    k[n++] = C_DATA;
    for (int i = 0; i < n; i++)
        if (append_cmd(c, k[i], m) < 0)
            return -1;
    return n;
}

/* envelope_ok - checks before anything is sent; PERMFAIL into r if not */
static bool envelope_ok(const struct smtp_envelope *m, struct smtp_result *r)
{
    const char *why = NULL;
    if (!smtp_addr_ok(m->from, true))
        why = "invalid sender address (control character, angle bracket or too long)";
    else if (!smtp_addr_ok(m->rcpt, false))
        why = "invalid recipient address (empty, control character, angle bracket or too long)";
    else if (!m->data && m->len > 0)
        why = "message data missing";
    else if (m->len > SMTP_MAX_MESSAGE)
        why = "message too large for this client (64 MiB)";
    if (why && r)
        res_local(r, SMTP_PERMFAIL, why);
    return why == NULL;
}

enum msg_rc { MSG_DONE, MSG_RETRY };

/* run_message - one transaction for m over the open connection. next (or
 * NULL): the following message, whose envelope is pipelined behind this
 * body. MSG_RETRY (res filled anyway): the reused connection broke before
 * the message's first reply; nothing of it can have been delivered. */
static enum msg_rc run_message(struct smtp_conn *c, const struct smtp_envelope *m,
                               const struct smtp_envelope *next, struct smtp_result *res)
{
    struct smtp_result rep[4];
    enum cmd_kind k[4];
    bool reused = !c->fresh, pipe = c->ext_pipelining, rset = c->need_rset;
    int n = 0, got = 0, rc = 0;

    c->need_rset = false;
    if (pipe) {
        if (c->queued) {
            k[n++] = C_MAIL; /* queued behind the previous body, never with RSET */
            k[n++] = C_RCPT;
            k[n++] = C_DATA;
            rset = false;
        } else {
            n = append_envelope(c, m, rset, k);
        }
        c->queued = false;
        if (n < 0) {
            errf(c, "envelope too long for the send buffer");
            rc = E_PROTO;
        } else {
            rc = flush_out(c, smtp_io_deadline(&c->io, c->s.command_timeout_ms),
                           "sending MAIL FROM, RCPT TO and DATA");
        }
        for (int i = 0; i < n && rc == 0; i++) {
            rc = read_reply(c, smtp_io_deadline(&c->io, c->s.command_timeout_ms), cmd_wait[k[i]],
                            &rep[i], false);
            if (rc == 0 && rep[got++].code == 421)
                break; /* the server is closing: no more replies */
        }
    } else {
        if (rset)
            k[n++] = C_RSET;
        k[n++] = C_MAIL;
        k[n++] = C_RCPT;
        k[n++] = C_DATA;
        for (int i = 0; i < n && rc == 0; i++) {
            if (append_cmd(c, k[i], m) < 0) {
                errf(c, "command too long for the send buffer");
                rc = E_PROTO;
                break;
            }
            rc = flush_out(c, smtp_io_deadline(&c->io, c->s.command_timeout_ms),
                           "sending a command");
            if (rc == 0)
                rc = read_reply(c, smtp_io_deadline(&c->io, c->s.command_timeout_ms),
                                cmd_wait[k[i]], &rep[i], false);
            if (rc)
                break;
            got++;
            if (rep[i].code / 100 != (k[i] == C_DATA ? 3 : 2))
                break; /* lock-step: nothing more after a refusal */
        }
    }
    int base = rset ? 1 : 0; /* index of the MAIL reply */
    c->fresh = false;
    if (rc) {
        res_io(res, rc, c->err);
        conn_drop(c, false);
        return reused && got <= base && rc != E_TIMEOUT && rc != E_CANCEL ? MSG_RETRY : MSG_DONE;
    }
    if (rset && rep[0].code / 100 != 2) {
        /* RSET refused: out of step; start again on a new connection */
        *res = rep[0];
        res->outcome = SMTP_TEMPFAIL;
        conn_drop(c, false);
        return reused ? MSG_RETRY : MSG_DONE;
    }
    int fail_at = -1;
    for (int i = base; i < got; i++) {
        if (rep[i].code / 100 != (k[i] == C_DATA ? 3 : 2)) {
            fail_at = i;
            break;
        }
    }
    if (fail_at >= 0) {
        *res = rep[fail_at];
        res->outcome = outcome_fail(res->code);
        bool closing = false;
        for (int i = base; i < got; i++)
            closing |= rep[i].code == 421;
        if (closing) {
            conn_drop(c, false);
            return reused && fail_at == base ? MSG_RETRY : MSG_DONE;
        }
        if (got == n && rep[n - 1].code == 354) {
            /* pipelined DATA accepted although MAIL or RCPT failed: end
             * the empty message; its reply does not matter */
            struct smtp_result ignored;
            rc = buf_append(&c->out, ".\r\n", 3) < 0
                     ? E_PROTO
                     : flush_out(c, smtp_io_deadline(&c->io, c->s.command_timeout_ms), "sending .");
            if (rc == 0)
                rc = read_reply(c, smtp_io_deadline(&c->io, c->s.command_timeout_ms),
                                "waiting for the end-of-data reply", &ignored, false);
            if (rc)
                conn_drop(c, false);
        } else if (fail_at > base) {
            c->need_rset = true; /* MAIL was accepted: the transaction is open */
        }
        return MSG_DONE;
    }

    /* 354: the body, "." and maybe the next envelope, in one write */
    int64_t mdl = smtp_io_deadline(&c->io, c->s.message_timeout_ms);
    if (smtp_wire_data(&c->out, m->data, m->len) < 0) {
        res_local(res, SMTP_TEMPFAIL, "message too large for the send buffer");
        conn_drop(c, false);
        return MSG_DONE;
    }
    if (pipe && next) {
        enum cmd_kind nk[4];
        if (append_envelope(c, next, false, nk) < 0) {
            res_local(res, SMTP_TEMPFAIL, "message too large for the send buffer");
            conn_drop(c, false);
            return MSG_DONE;
        }
        c->queued = true;
    }
    rc = flush_out(c, mdl, "sending the message");
    if (rc == 0)
        rc = read_reply(c, mdl, "waiting for the end-of-data reply", res, false);
    if (rc) {
        res_io(res, rc, c->err);
        conn_drop(c, false);
        return MSG_DONE;
    }
    res->outcome = outcome_final(res->code);
    if (res->code == 421)
        conn_drop(c, false);
    return MSG_DONE;
}

/* ---- public API ------------------------------------------------------------------ */

/* clean_name - a host or EHLO name: 1..255 bytes, no space or control */
static bool clean_name(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 255)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

static bool clean_cred(const char *s)
{
    return s && *s && strlen(s) <= SMTP_CRED_MAX;
}

struct smtp_conn *smtp_conn_new(const struct smtp_settings *s, unsigned flags, char *errbuf,
                                size_t errlen)
{
    const char *name = s->name ? s->name : "smtp";
    if (!clean_name(s->host)) {
        errbuf_set(errbuf, errlen, "client %s: host must be a name or address without spaces",
                   name);
        return NULL;
    }
    if (s->port < 1 || s->port > 65535) {
        errbuf_set(errbuf, errlen, "client %s: port must be between 1 and 65535", name);
        return NULL;
    }
    if (s->tls != SMTP_TLS_NONE && s->tls != SMTP_TLS_STARTTLS && s->tls != SMTP_TLS_IMPLICIT) {
        errbuf_set(errbuf, errlen, "client %s: unknown TLS mode", name);
        return NULL;
    }
    if (!s->username != !s->password) {
        errbuf_set(errbuf, errlen, "client %s: username and password go together", name);
        return NULL;
    }
    if (s->username && (!clean_cred(s->username) || !clean_cred(s->password))) {
        errbuf_set(errbuf, errlen, "client %s: username and password must be 1..%d bytes", name,
                   SMTP_CRED_MAX);
        return NULL;
    }
    if ((flags & SMTP_CONN_REQUIRE_AUTH) && !s->username) {
        errbuf_set(errbuf, errlen, "client %s: a username and password are required", name);
        return NULL;
    }
    if (s->helo && !clean_name(s->helo)) {
        errbuf_set(errbuf, errlen, "client %s: EHLO name must be 1..255 bytes without spaces",
                   name);
        return NULL;
    }
    SSL_CTX *ctx = NULL;
    if (s->tls != SMTP_TLS_NONE) {
        ctx = tls_ctx_acquire(s->ca_file, errbuf, errlen);
        if (!ctx)
            return NULL;
    }
    struct smtp_conn *c = xcalloc(1, sizeof *c);
    c->s = *s;
    c->s.name = name;
    if (c->s.connect_timeout_ms <= 0)
        c->s.connect_timeout_ms = 10000;
    if (c->s.command_timeout_ms <= 0)
        c->s.command_timeout_ms = 30000;
    if (c->s.message_timeout_ms <= 0)
        c->s.message_timeout_ms = 120000;
    c->helo = s->helo ? s->helo : c->helo_auto;
    c->ctx = ctx;
    smtp_io_init(&c->io);
    c->io.cancel = s->cancel;
    buf_init(&c->out, SMTP_WIRE_CAP);
    return c;
}

/* fail_rest - results[from..n) = *fail, skipped, for every message that
 * passes the local checks (the others keep their PERMFAIL); fail may be
 * &results[from - 1] */
static void fail_rest(const struct smtp_envelope *msgs, size_t n, size_t from,
                      const struct smtp_result *fail, struct smtp_result *results)
{
    struct smtp_result r = *fail;
    r.skipped = true;
    for (size_t j = from; j < n; j++)
        if (envelope_ok(&msgs[j], &results[j]))
            results[j] = r;
}

void smtp_conn_send(struct smtp_conn *c, const struct smtp_envelope *msgs, size_t n,
                    struct smtp_result *results)
{
    if (!c->s.helo && n > 0) { /* no EHLO name configured: the sender's domain */
        const char *at = strrchr(msgs[0].from, '@');
        if (at && clean_name(at + 1) && utf8_ascii_len(at + 1, strlen(at + 1)) == strlen(at + 1))
            snprintf(c->helo_auto, sizeof c->helo_auto, "%s", at + 1);
    }
    for (size_t i = 0; i < n; i++) {
        res_local(&results[i], SMTP_TEMPFAIL, "not attempted");
        results[i].skipped = true;
    }
    bool retried = false;
    size_t i = 0;
    while (i < n) {
        if (!envelope_ok(&msgs[i], &results[i])) {
            i++;
            continue;
        }
        if (c->io.fd >= 0 && !c->queued && !smtp_io_idle_alive(&c->io)) {
            log_info("smtp client=%s server closed the idle connection; reconnecting", c->s.name);
            conn_drop(c, false);
        }
        if (c->io.fd < 0) {
            struct smtp_result fail;
            if (conn_open(c, true, &fail) != 0) {
                results[i] = fail;
                fail_rest(msgs, n, i + 1, &fail, results);
                return;
            }
        }
        if (!c->queued && utf8_refused(c, &msgs[i], &results[i])) {
            i++;
            continue;
        }
        const struct smtp_envelope *next =
            i + 1 < n && envelope_ok(&msgs[i + 1], NULL) && !utf8_refused(c, &msgs[i + 1], NULL)
                ? &msgs[i + 1]
                : NULL;
        if (run_message(c, &msgs[i], next, &results[i]) == MSG_RETRY && !retried) {
            log_info("smtp client=%s connection lost before the first reply (%s); reconnecting",
                     c->s.name, results[i].text);
            retried = true;
            continue;
        }
        retried = false;
        if (ends_batch(&results[i])) {
            if (i + 1 < n)
                log_warn("smtp client=%s %s; the %zu messages after it in this batch are not tried",
                         c->s.name, results[i].text, n - i - 1);
            fail_rest(msgs, n, i + 1, &results[i], results);
            return;
        }
        i++;
    }
}

void smtp_conn_free(struct smtp_conn *c)
{
    if (!c)
        return;
    conn_drop(c, true);
    tls_ctx_release(c->ctx);
    buf_cleanup(&c->out);
    free(c);
}

int smtp_conn_probe(const struct smtp_settings *s, unsigned flags, char *errbuf, size_t errlen)
{
    struct smtp_conn *c = smtp_conn_new(s, flags, errbuf, errlen);
    if (!c)
        return -1;
    struct smtp_result fail, r;
    int rc = conn_open(c, false, &fail);
    if (rc != 0) {
        errbuf_set(errbuf, errlen, "%s", fail.text);
    } else {
        /* a server that greets but hangs in a transaction fails here; any
         * reply will do (530 before AUTH is an answer) */
        rc = command(c, "MAIL FROM:<>\r\n", "MAIL FROM", &r);
        if (rc == 0 && r.code / 100 == 2)
            rc = command(c, "RSET\r\n", "RSET", &r);
        if (rc != 0) {
            errbuf_set(errbuf, errlen, "%s", c->err);
            conn_drop(c, false);
        }
    }
    smtp_conn_free(c);
    return rc ? -1 : 0;
}
