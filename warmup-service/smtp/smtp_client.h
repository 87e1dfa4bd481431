/* smtp_client.h - the SmtpClient plugin interface and its settings.
 *
 * A client type (GOOGLE, MAILPIT, CUSTOM, DRYRUN) is a const struct
 * smtp_client_ops in its own file (smtp_gmail.c, smtp_mailpit.c,
 * smtp_custom.c, smtp_dryrun.c) plus one line in the registry
 * (smtp_clients.c). A session is created by ops->open() and used by ONE
 * worker thread at a time; it connects lazily, keeps the connection for
 * many messages (reused across send() calls), reconnects when the server
 * closed it, and pipelines commands when the server offers PIPELINING.
 * Every network wait is bounded (connect, each command, the whole message).
 * TLS always verifies the certificate chain against ca_file (or the system
 * store) AND the host name (or IP address) the client connected to.
 * Settings are borrowed: they must outlive the session.
 */
#ifndef SMTP_CLIENT_H
#define SMTP_CLIENT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum smtp_tls { SMTP_TLS_NONE = 0, SMTP_TLS_STARTTLS, SMTP_TLS_IMPLICIT };

struct smtp_settings {
    const char *name; /* client name used in /send smtp_client, logs, metrics */
    const char *type; /* "GOOGLE", "MAILPIT", "CUSTOM", "DRYRUN" */
    const char *host;
    int port;
    enum smtp_tls tls;
    const char *username; /* NULL: no AUTH */
    const char *password;
    const char *ca_file;   /* NULL: the system's trust store */
    const char *helo;      /* EHLO name; NULL: the domain of the batch's sender */
    const char *spool_dir; /* DRYRUN only */
    int tpm;               /* messages per minute for this client; 0 = unlimited */
    int connections;       /* sessions (worker threads) for this client */
    int connect_timeout_ms;
    int command_timeout_ms; /* each command's reply */
    int message_timeout_ms; /* the whole DATA phase of one message */
    /* cancel (NULL: none): once *cancel is true, every network wait of the
     * session (and of probe) ends within a second, SMTP_FAIL_CANCELLED */
    const atomic_bool *cancel;
};

/* one message to one recipient. data is the RFC 5322 message with CRLF
 * line ends, NOT dot-stuffed (the client stuffs), not ending in "." */
struct smtp_envelope {
    const char *from;
    const char *rcpt;
    const char *data;
    size_t len;
};

enum smtp_outcome { SMTP_SENT = 0, SMTP_TEMPFAIL, SMTP_PERMFAIL };

/* why a message failed without a deciding reply, for the circuit breaker */
enum smtp_fail {
    SMTP_FAIL_NONE = 0,  /* a reply decided, or another local failure (TLS, closed, ...) */
    SMTP_FAIL_TIMEOUT,   /* the server did not answer within a timeout */
    SMTP_FAIL_CONNECT,   /* resolve or TCP connect failed (refused, unreachable, timed out) */
    SMTP_FAIL_CANCELLED, /* settings' cancel was set during a wait */
};

/* The deciding reply is the first refusal among MAIL, RCPT and DATA, else
 * the reply to the end of data. An AUTH refused with 5xx makes every
 * message of the batch PERMFAIL with that reply (a wrong password
 * dead-letters); a failure to connect (TCP, TLS, greeting, EHLO, STARTTLS
 * missing) is copied to every message still to send. A message refused
 * locally (CR/LF or <> in an address, over 64 MiB, a UTF-8 address to a
 * server without SMTPUTF8: enhanced 5.6.7) is PERMFAIL with code 0
 * and nothing is sent for it. A timeout, a failed TCP connect or a cancel
 * ends the batch at once: the messages after it are not attempted and get
 * the same result with skipped set (a hanging server costs one timeout per
 * batch, not one per message); so do those after a failure to connect. */
struct smtp_result {
    enum smtp_outcome outcome; /* 2xx SENT; 4xx, timeout, connection or TLS error TEMPFAIL;
                                  5xx PERMFAIL */
    int code;                  /* the deciding reply code, 0 when there was none */
    char enhanced[16];         /* RFC 3463 "5.1.1" when the server gave one, else "" */
    char text[512]; /* that reply as one line, code included ("550 5.1.1 <a@b.example>: User
                       unknown"; multi-line replies joined by spaces, control characters
                       replaced by '?'), or the local error ("TLS: certificate verify failed:
                       ...", "timed out after 30000 ms waiting for the DATA reply"); never a
                       password */
    enum smtp_fail fail;
    bool skipped; /* not attempted: an earlier message of the batch failed at the
                     connection level (nothing of this one reached the server) */
};

struct smtp_client_ops {
    const char *type; /* "CUSTOM", ... (CHOOSEN_SMTP_CLIENT_TYPE) */
    /* open - a session for settings (no network yet); NULL with a message */
    void *(*open)(const struct smtp_settings *s, char *errbuf, size_t errlen);
    /* send - deliver n messages in order over the session, connecting or
     * reconnecting as needed; results[i] for msgs[i]. Never blocks longer
     * than the configured timeouts per message. */
    void (*send)(void *session, const struct smtp_envelope *msgs, size_t n,
                 struct smtp_result *results);
    /* probe - 0 when the server answers (connect, greeting, EHLO, a
     * command of a transaction, QUIT on a separate connection; no message
     * is sent); for the circuit breaker. NULL ops->probe: always ready */
    int (*probe)(const struct smtp_settings *s, char *errbuf, size_t errlen);
    /* close - QUIT if connected, free. NULL is a no-op. */
    void (*close)(void *session);
};

extern const struct smtp_client_ops smtp_custom_ops;
extern const struct smtp_client_ops smtp_gmail_ops;
extern const struct smtp_client_ops smtp_mailpit_ops;
extern const struct smtp_client_ops smtp_dryrun_ops;

/* smtp_client_ops_find - the ops for a type name (case-insensitive), NULL
 * if unknown */
const struct smtp_client_ops *smtp_client_ops_find(const char *type);

#endif
