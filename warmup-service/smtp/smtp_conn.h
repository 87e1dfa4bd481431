/* smtp_conn.h - our SMTP protocol engine (RFC 5321 client) over TCP and OpenSSL.
 *
 * Why our own and not libESMTP: the README's "The SMTP engine is our own".
 * This engine is small, bounded everywhere and fails closed.
 *
 * What it does, per session (one connection at a time, kept across send()
 * calls):
 *   - getaddrinfo, non-blocking connect to each address in turn within
 *     connect_timeout_ms (shared among the addresses), TCP_NODELAY;
 *   - every command's write and reply bounded by command_timeout_ms, the
 *     whole DATA phase (body write + final reply) by message_timeout_ms;
 *   - EHLO (HELO fallback), extensions PIPELINING, STARTTLS, AUTH, SIZE,
 *     ENHANCEDSTATUSCODES, 8BITMIME, SMTPUTF8 (a message with a UTF-8
 *     envelope address: MAIL FROM ... SMTPUTF8 when offered, else refused
 *     before anything of it is sent);
 *   - tls=starttls: STARTTLS is required (not offered -> fail closed);
 *     tls=tls: TLS from the first byte; TLS >= 1.2 with SNI, the chain
 *     verified against ca_file (or OpenSSL's default paths) and the host
 *     name or IP literal checked (libshared's tls_expect_host), so a wrong
 *     CA or name fails the connection;
 *   - AUTH PLAIN (preferred) or LOGIN, only inside TLS unless tls=none was
 *     configured; a 5xx AUTH reply fails every message of the batch PERMFAIL
 *     with the server's reply;
 *   - with PIPELINING: MAIL, RCPT and DATA in one write, and the next
 *     message's MAIL/RCPT/DATA in the same write as this message's body and
 *     "." (RFC 2920 allows it: DATA ends a group), so one round trip per
 *     message; lock-step otherwise;
 *   - RSET after a message that failed with its transaction open;
 *   - a connection the server closed while idle is detected before the
 *     first command of a message; a reused connection that breaks before
 *     the message's first reply (a race with that close) is replaced once,
 *     transparently (safe: no message content was sent);
 *   - QUIT on close. Sends use MSG_NOSIGNAL (also inside TLS, through our
 *     own socket BIO), so a peer that closed cannot raise SIGPIPE.
 * Passwords are never logged and never appear in a result text; the
 * buffers that held them are cleansed.
 *
 * Threads: a session belongs to one thread at a time. The SSL_CTX is built
 * once per distinct ca_file and shared (reference counted, under a mutex)
 * by every session that uses it; OpenSSL allows that once it is set up.
 * getaddrinfo() has no timeout of its own: name resolution is bounded only
 * by the resolver's configuration (resolv.conf timeout/attempts).
 */
#ifndef SMTP_CONN_H
#define SMTP_CONN_H

#include "buf.h"
#include "smtp_client.h"

#include <stdbool.h>
#include <stddef.h>

/* smtp_conn_new flags */
#define SMTP_CONN_REQUIRE_AUTH 0x1u /* fail closed unless AUTH succeeds (GOOGLE) */

struct smtp_conn;

/* smtp_conn_new - a session for *s (copied; its strings are borrowed and
 * must outlive the session). Checks the settings (host, port, timeouts,
 * username/password pairs, EHLO name) and loads the CA for TLS; no network.
 * NULL with a message in errbuf. Free with smtp_conn_free(). */
struct smtp_conn *smtp_conn_new(const struct smtp_settings *s, unsigned flags, char *errbuf,
                                size_t errlen);
/* smtp_conn_send - deliver msgs[0..n) in order, results[i] for msgs[i]
 * (see smtp_client.h for the outcome rules) */
void smtp_conn_send(struct smtp_conn *c, const struct smtp_envelope *msgs, size_t n,
                    struct smtp_result *results);
/* smtp_conn_free - QUIT if connected, close, free. NULL is a no-op. */
void smtp_conn_free(struct smtp_conn *c);
/* smtp_conn_probe - connect, greeting, EHLO, STARTTLS when configured (so
 * the certificate is checked), MAIL FROM:<> (any reply; RSET after a 2xx),
 * QUIT, on a connection of its own. No AUTH, no message. 0, or -1 with the
 * reason in errbuf. */
int smtp_conn_probe(const struct smtp_settings *s, unsigned flags, char *errbuf, size_t errlen);

/* Helpers shared with the DRYRUN client and the unit tests. */

/* smtp_wire_data - append data's SMTP wire form to out: CRLF line ends
 * (a bare LF becomes CRLF), a '.' starting a line doubled, a final CRLF
 * when missing, then ".\r\n". -1 when out's cap is exceeded. */
int smtp_wire_data(struct buf *out, const char *data, size_t len);
/* smtp_addr_ok - an envelope address we can put between <> on a command
 * line: no control characters, no '<' or '>', at most 512 bytes; empty
 * allowed only when empty_ok (the null reverse-path) */
bool smtp_addr_ok(const char *a, bool empty_ok);
/* smtp_reply_line - parse one reply line (CR/LF removed): *code, *last
 * (a space or nothing after the code, not '-'), *text after the separator.
 * -1 when it is not "DDD", "DDD text" or "DDD-text" with D 2..5 first. */
int smtp_reply_line(const char *line, size_t len, int *code, bool *last, const char **text);
/* smtp_enhanced_code - the RFC 3463 code ("5.1.1") at the start of text
 * into out (16 bytes) when it is there and its class matches code's first
 * digit; else out = "". Returns the length of the code plus the following
 * space (what to skip), or 0. */
size_t smtp_enhanced_code(int code, const char *text, size_t len, char out[16]);

#endif
