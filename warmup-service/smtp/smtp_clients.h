/* smtp_clients.h - the SmtpClient registry and the named clients configured
 * from the environment (read once at start-up, read-only afterwards).
 *
 * One client from variables (its name is its type in lower case: "google",
 * "mailpit", "custom", "dryrun"):
 *   CHOOSEN_SMTP_CLIENT_TYPE  GOOGLE | MAILPIT | CUSTOM | DRYRUN (MAILPIT)
 *   GOOGLE   GMAIL_SMTP_USERNAME, GMAIL_SMTP_APP_PASSWORD (both required),
 *            GMAIL_SMTP_HOST (smtp.gmail.com), GMAIL_SMTP_PORT (587),
 *            SMTP_CA_FILE (optional); always STARTTLS + AUTH
 *   MAILPIT  MAILPIT_SMTP_ADDR (127.0.0.1:1025, HOST:PORT or [V6]:PORT)
 *   CUSTOM   SMTP_HOST (required), SMTP_PORT (25), SMTP_TLS
 *            none|starttls|tls (starttls), SMTP_USERNAME + SMTP_PASSWORD
 *            (both or neither), SMTP_CA_FILE
 *   DRYRUN   SMTP_SPOOL_DIR (./data/spool)
 *   all      SMTP_HELO (else the host's fully qualified name, else
 *            MESSAGE_ID_DOMAIN, else each connection's sender domain;
 *            never localhost or a name without a dot),
 *            SEND_TPM (0 = unlimited), WORKERS (connections, 4, 1..256),
 *            SMTP_CONNECT_TIMEOUT_MS (10000), SMTP_COMMAND_TIMEOUT_MS
 *            (30000), SMTP_MESSAGE_TIMEOUT_MS (120000)
 * Every variable may come as NAME_FILE (libshared/util/config.h).
 *
 * Or several from SMTP_CLIENTS_FILE, a JSON array whose first entry is the
 * default client; SMTP_HELO, SEND_TPM, WORKERS and the timeouts above are
 * then the defaults of each entry:
 *   [{"name":"gmail-a","type":"GOOGLE","username":"a@gmail.com",
 *     "password_file":"/run/secrets/gmail-a","tpm":100,"connections":2},
 *    {"name":"relay","type":"CUSTOM","host":"smtp.example.com","port":587,
 *     "tls":"starttls","username":"u","password":"p","ca_file":"/ca.pem",
 *     "tpm":6000,"connections":8}]
 * Fields: name (1..64 of [A-Za-z0-9._-], unique ignoring case), type, tpm,
 * connections, helo, connect_timeout_ms, command_timeout_ms,
 * message_timeout_ms for every type; plus
 *   GOOGLE   username, password | password_file (required), host, port,
 *            tls (starttls|tls), ca_file
 *   MAILPIT  host, port
 *   CUSTOM   host (required), port, tls (none|starttls|tls), username,
 *            password | password_file, ca_file
 *   DRYRUN   spool_dir
 * Any other field, a wrong type or a value out of range is an error that
 * names the entry ("SMTP_CLIENTS_FILE[1] (relay): field 'port' ...").
 * Error messages never contain a password.
 *
 * Credentials travel encrypted: a username or password with tls none is
 * refused unless the host is loopback (localhost, 127.0.0.0/8, ::1).
 * SMTP_PASSWORD and GMAIL_SMTP_APP_PASSWORD (and their _FILE forms) leave
 * the environment once loaded, read or not (config_get_secret).
 */
#ifndef SMTP_CLIENTS_H
#define SMTP_CLIENTS_H

#include "smtp_client.h"

#include <stddef.h>

struct smtp_client_cfg {
    struct smtp_settings s; /* every string owned, freed by smtp_clients_cleanup() */
    const struct smtp_client_ops *ops;
};

struct smtp_clients {
    struct smtp_client_cfg *v; /* stable: sessions borrow &v[i].s */
    size_t n;                  /* >= 1 after a successful load */
    size_t default_idx;        /* the first entry / the single client */
};

/* smtp_clients_load - read the configuration above from the environment
 * (main thread, before other threads start). 0, or -1 with one line naming
 * the variable (and entry and field) in errbuf; *out is then empty. Free
 * with smtp_clients_cleanup(). */
int smtp_clients_load(struct smtp_clients *out, char *errbuf, size_t errlen);
/* smtp_clients_cleanup - free everything; the struct is left empty */
void smtp_clients_cleanup(struct smtp_clients *c);
/* smtp_clients_find - index of the client named name (ignoring case), -1
 * when unknown or name is NULL */
int smtp_clients_find(const struct smtp_clients *c, const char *name);

#endif
