/* smtp_custom.c - CUSTOM: any SMTP server; host, port, TLS mode, AUTH and
 * CA file all come from the settings. A thin wrapper over smtp_conn. */
#include "smtp_client.h"
#include "smtp_conn.h"

static void *custom_open(const struct smtp_settings *s, char *errbuf, size_t errlen)
{
    return smtp_conn_new(s, 0, errbuf, errlen);
}

static void custom_send(void *session, const struct smtp_envelope *msgs, size_t n,
                        struct smtp_result *results)
{
    smtp_conn_send(session, msgs, n, results);
}

static int custom_probe(const struct smtp_settings *s, char *errbuf, size_t errlen)
{
    return smtp_conn_probe(s, 0, errbuf, errlen);
}

static void custom_close(void *session)
{
    smtp_conn_free(session);
}

const struct smtp_client_ops smtp_custom_ops = {
    .type = "CUSTOM",
    .open = custom_open,
    .send = custom_send,
    .probe = custom_probe,
    .close = custom_close,
};
