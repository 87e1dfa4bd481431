/* smtp_mailpit.c - MAILPIT: a local catcher (Mailpit, maildev, smtp-sink)
 * at the configured host:port (default 127.0.0.1:1025), plain SMTP, never
 * AUTH, whatever the settings say. A thin wrapper over smtp_conn. */
#include "smtp_client.h"
#include "smtp_conn.h"

#define MAILPIT_HOST "127.0.0.1"
#define MAILPIT_PORT 1025

/* mailpit_settings - the preset applied to s; strings stay borrowed */
static void mailpit_settings(const struct smtp_settings *s, struct smtp_settings *out)
{
    *out = *s;
    if (!out->host || !*out->host)
        out->host = MAILPIT_HOST;
    if (out->port == 0)
        out->port = MAILPIT_PORT;
    out->tls = SMTP_TLS_NONE;
    out->username = out->password = out->ca_file = NULL;
}

static void *mailpit_open(const struct smtp_settings *s, char *errbuf, size_t errlen)
{
    struct smtp_settings m;
    mailpit_settings(s, &m);
    return smtp_conn_new(&m, 0, errbuf, errlen);
}

static void mailpit_send(void *session, const struct smtp_envelope *msgs, size_t n,
                         struct smtp_result *results)
{
    smtp_conn_send(session, msgs, n, results);
}

static int mailpit_probe(const struct smtp_settings *s, char *errbuf, size_t errlen)
{
    struct smtp_settings m;
    mailpit_settings(s, &m);
    return smtp_conn_probe(&m, 0, errbuf, errlen);
}

static void mailpit_close(void *session)
{
    smtp_conn_free(session);
}

const struct smtp_client_ops smtp_mailpit_ops = {
    .type = "MAILPIT",
    .open = mailpit_open,
    .send = mailpit_send,
    .probe = mailpit_probe,
    .close = mailpit_close,
};
