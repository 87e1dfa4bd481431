/* smtp_gmail.c - GOOGLE: Gmail's submission service with an app password.
 *
 * Preset: smtp.gmail.com:587, STARTTLS required, AUTH required (the
 * session fails closed without both). Host, port and CA file may be
 * overridden through the settings (GMAIL_SMTP_HOST, GMAIL_SMTP_PORT,
 * SMTP_CA_FILE) so the tests can point it at a local TLS server; tls=tls
 * (port 465) is allowed, tls=none is refused. A thin wrapper over smtp_conn.
 */
#include "smtp_client.h"
#include "errbuf.h"
#include "smtp_conn.h"

#include <stdio.h>

#define GMAIL_HOST "smtp.gmail.com"
#define GMAIL_PORT 587

/* gmail_settings - the preset applied to s; strings stay borrowed */
static int gmail_settings(const struct smtp_settings *s, struct smtp_settings *out, char *errbuf,
                          size_t errlen)
{
    *out = *s;
    if (!out->host || !*out->host)
        out->host = GMAIL_HOST;
    if (out->port == 0)
        out->port = GMAIL_PORT;
    if (out->tls == SMTP_TLS_NONE) {
        if (errbuf && errlen)
            errbuf_set(errbuf, errlen, "client %s: GOOGLE needs TLS (starttls or tls)",
                       s->name ? s->name : "google");
        return -1;
    }
    return 0;
}

static void *gmail_open(const struct smtp_settings *s, char *errbuf, size_t errlen)
{
    struct smtp_settings g;
    if (gmail_settings(s, &g, errbuf, errlen) < 0)
        return NULL;
    return smtp_conn_new(&g, SMTP_CONN_REQUIRE_AUTH, errbuf, errlen);
}

static void gmail_send(void *session, const struct smtp_envelope *msgs, size_t n,
                       struct smtp_result *results)
{
    smtp_conn_send(session, msgs, n, results);
}

static int gmail_probe(const struct smtp_settings *s, char *errbuf, size_t errlen)
{
    struct smtp_settings g;
    if (gmail_settings(s, &g, errbuf, errlen) < 0)
        return -1;
    return smtp_conn_probe(&g, SMTP_CONN_REQUIRE_AUTH, errbuf, errlen);
}

static void gmail_close(void *session)
{
    smtp_conn_free(session);
}

const struct smtp_client_ops smtp_gmail_ops = {
    .type = "GOOGLE",
    .open = gmail_open,
    .send = gmail_send,
    .probe = gmail_probe,
    .close = gmail_close,
};
