/* loop_imap_conn.c - the IMAP FeedbackLoop's connection (part of the loop
 * in loop_imap.c): TCP connect, TLS and the peer's verification,
 * capabilities and STARTTLS, LOGIN or SASL XOAUTH2, the capabilities the
 * round uses (MOVE, UIDPLUS), the spam folder, LOGOUT and close; and the
 * words for libetpan's result codes.
 *
 * The TCP connect is libshared's net_connect (bounded by timeout_ms);
 * libetpan's mailimap_socket_connect has no connect timeout.
 *
 * Authentication: LOGIN with the password (inline, or password_file read
 * at each connect), or AUTHENTICATE XOAUTH2 with the access token read
 * from oauth2_token_file at each connect (the server must announce
 * AUTH=XOAUTH2). The secret goes to that command only: never into a log
 * line or an error message (a server text that echoes it is dropped), and
 * its buffer is wiped. A refusal is remembered with the file's identity
 * (imap_secret_changed), so a rewritten file is tried at once.
 *
 * Capabilities: the ones the server sent unasked (greeting, the OK of
 * LOGIN/AUTHENTICATE), else a CAPABILITY command; forgotten after STARTTLS
 * and before authenticating, so what is used after it is post-login.
 *
 * Spam folder: the "spam" setting, else the selectable mailbox with
 * SPECIAL-USE \Junk (Gmail "[Gmail]/Spam", Outlook "Junk Email"), else by
 * name: Junk, Spam, "Junk Email", "Junk E-mail", "Bulk Mail" (in this
 * order; a top-level name before the same name as the last level of a
 * hierarchy). Never a mailbox flagged \All, \Trash, \Sent, \Drafts,
 * \Noselect or \NonExistent, nor the inbox. Names are used as the server
 * lists them; libetpan quotes them (spaces, brackets) when sending.
 *
 * Every command sent here is counted (imap_count_command).
 *
 * TLS: Debian's libetpan (GnuTLS) verifies nothing. After the handshake
 * (implicit TLS, or right after STARTTLS) the peer chain is taken from the
 * stream and given to libshared's tls_verify_der, the peer check every
 * client uses (chain against ca_file or the default paths, leaf against the
 * host name or IP); any failure closes the connection before LOGIN.
 * tls=starttls fails when the server does not offer STARTTLS. SNI carries
 * the host name.
 *
 * Owns the session of a loop (its imap and spam fields): set by
 * imap_session_open, freed by imap_session_close; a failed open leaves
 * nothing open. The callers (loop_imap.c) hold the SIGPIPE guard.
 * Threads: the thread using the loop instance (one at a time).
 */
#include "loop_imap_int.h"
#include "errbuf.h"

#include "log.h"
#include "net.h"
#include "tls.h"
#include "xalloc.h"

#include <libetpan/libetpan.h>
#include <openssl/x509_vfy.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- result codes ----------------------------------------------------- */

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
const char *imap_strerror(int r)
{
    for (size_t i = 0; i < sizeof imap_errors / sizeof imap_errors[0]; i++) {
        if (imap_errors[i].code == r)
            return imap_errors[i].text;
    }
    return NULL;
}

/* imap_connection_error - r leaves the session unusable */
bool imap_connection_error(int r)
{
    return imap_strerror(r) != NULL;
}

/* imap_cmd_error - "WHAT failed: reason[: server text]" into err; the server
 * text only for a NO, where it belongs to this command */
void imap_cmd_error(const struct imap_loop *l, int r, const char *what, char *err, size_t errlen)
{
    char text[160] = "";
    if (!imap_connection_error(r) && l->imap && l->imap->imap_response)
        printable(l->imap->imap_response, text, sizeof text);
    const char *why = imap_strerror(r);
    errbuf_set(err, errlen, "%s failed: %s%s%s", what,
               why ? why : "command refused by the server (NO)", text[0] ? ": " : "", text);
}

/* ---- EOF guard ---------------------------------------------------------
 * libetpan 1.9.4 reads a literal ({n}) in a loop that takes a read of 0
 * bytes (the server closed the connection) for "nothing yet" and spins
 * forever. This layer over the stream's own reports the end of the stream
 * as an error, which every libetpan reader handles; the rest is passed on.
 * It goes on top once the peer is verified (libetpan's certificate getters
 * look into the TLS layer itself). */

static ssize_t guard_read(mailstream_low *s, void *buf, size_t count)
{
    ssize_t r = mailstream_low_read(s->data, buf, count);
    return r == 0 && count > 0 ? -1 : r;
}

static ssize_t guard_write(mailstream_low *s, const void *buf, size_t count)
{
    return mailstream_low_write(s->data, buf, count);
}

static int guard_close(mailstream_low *s)
{
    return mailstream_low_close(s->data);
}

static int guard_get_fd(mailstream_low *s)
{
    return mailstream_low_get_fd(s->data);
}

static void guard_free(mailstream_low *s)
{
    mailstream_low_free(s->data);
    free(s); /* as libetpan's own layers do */
}

static void guard_cancel(mailstream_low *s)
{
    mailstream_low_cancel(s->data);
}

static struct mailstream_cancel *guard_get_cancel(mailstream_low *s)
{
    return mailstream_low_get_cancel(s->data);
}

static carray *guard_get_certificate_chain(mailstream_low *s)
{
    return mailstream_low_get_certificate_chain(s->data);
}

static int guard_setup_idle(mailstream_low *s)
{
    return mailstream_low_setup_idle(s->data);
}

static int guard_unsetup_idle(mailstream_low *s)
{
    return mailstream_low_unsetup_idle(s->data);
}

static int guard_interrupt_idle(mailstream_low *s)
{
    return mailstream_low_interrupt_idle(s->data);
}

static mailstream_low_driver guard_driver = {
    .mailstream_read = guard_read,
    .mailstream_write = guard_write,
    .mailstream_close = guard_close,
    .mailstream_get_fd = guard_get_fd,
    .mailstream_free = guard_free,
    .mailstream_cancel = guard_cancel,
    .mailstream_get_cancel = guard_get_cancel,
    .mailstream_get_certificate_chain = guard_get_certificate_chain,
    .mailstream_setup_idle = guard_setup_idle,
    .mailstream_unsetup_idle = guard_unsetup_idle,
    .mailstream_interrupt_idle = guard_interrupt_idle,
};

/* eof_guard - put the guard layer on top of s */
static void eof_guard(mailstream *s)
{
    mailstream_low *inner = mailstream_get_low(s);
    mailstream_low *g = mailstream_low_new(inner, &guard_driver);
    if (!g)
        abort(); /* out of memory: the project's policy */
    mailstream_low_set_timeout(g, mailstream_low_get_timeout(inner));
    mailstream_set_low(s, g);
}

/* ---- connection ------------------------------------------------------- */

/* timeout_s - timeout_ms rounded up to whole seconds, for libetpan */
static time_t timeout_s(const struct imap_loop *l)
{
    return (time_t)((l->timeout_ms + 999) / 1000);
}

/* tcp_connect - a connected, blocking socket to host:port within
 * timeout_ms (every address tried, net_connect), or -1 */
static int tcp_connect(const struct imap_loop *l, char *err, size_t errlen)
{
    int fd = -1, last = 0;
    if (net_connect(l->host, l->port, l->timeout_ms, NULL, &fd, &last, err, errlen) != 0) {
        /* the loop's last_error keeps its wording: without the address */
        if (last == ETIMEDOUT)
            errbuf_set(err, errlen, "connect to %s:%u timed out after %d ms", l->host,
                       (unsigned)l->port, l->timeout_ms);
        else if (last != 0)
            errbuf_set(err, errlen, "connect to %s:%u failed: %s", l->host, (unsigned)l->port,
                       strerror(last));
        return -1;
    }
    /* libetpan wants a blocking descriptor; it bounds its waits with poll */
    (void)net_set_blocking(fd, true);
    return fd;
}

/* tls_setup - libetpan's hook before the handshake: SNI for host names */
static void tls_setup(struct mailstream_ssl_context *ctx, void *data)
{
    struct imap_loop *l = data;
    if (!l->host_is_ip)
        mailstream_ssl_set_server_name(ctx, l->host);
}

/* verify_peer - the peer check (tls_verify_der) on the server's chain;
 * 0 or -1 with err */
static int verify_peer(const struct imap_loop *l, mailstream *s, char *err, size_t errlen)
{
    unsigned char *der = NULL;
    struct tls_der *chain = NULL;
    size_t n = 0;
    long verr;

    /* the leaf first: libetpan's chain getter reads an uninitialised
     * pointer when the peer sent no certificate */
    ssize_t len = mailstream_ssl_get_certificate(s, &der);
    if (len <= 0 || !der) {
        free(der);
        errbuf_set(err, errlen, "TLS peer %s sent no certificate", l->host);
        return -1;
    }
    carray *certs = mailstream_get_certificate_chain(s);
    chain = xcalloc(1 + (certs ? carray_count(certs) : 0), sizeof *chain);
    chain[n++] = (struct tls_der){der, (size_t)len};
    for (unsigned i = 1; certs && i < carray_count(certs); i++) {
        const MMAPString *m = carray_get(certs, i);
        chain[n++] = (struct tls_der){(const unsigned char *)m->str, m->len};
    }
    int rc = tls_verify_der(l->store, chain, n, l->host, &verr);
    if (rc == TLS_E_CERT)
        errbuf_set(err, errlen, "cannot parse the certificate of %s", l->host);
    else if (rc == TLS_E_INTERNAL)
        errbuf_set(err, errlen, "out of memory verifying the certificate");
    else if (rc && verr == X509_V_ERR_IP_ADDRESS_MISMATCH)
        errbuf_set(err, errlen, "certificate of %s:%u does not match the IP address %s", l->host,
                   (unsigned)l->port, l->host);
    else if (rc && verr == X509_V_ERR_HOSTNAME_MISMATCH)
        errbuf_set(err, errlen, "certificate of %s:%u does not match the host name %s", l->host,
                   (unsigned)l->port, l->host);
    else if (rc)
        errbuf_set(err, errlen, "certificate of %s:%u not trusted: %s (%s)", l->host,
                   (unsigned)l->port, tls_verify_text(verr),
                   l->ca_file ? l->ca_file : "system trust store");
    free(chain);
    if (certs)
        mailstream_certificate_chain_free(certs);
    free(der);
    return rc ? -1 : 0;
}

/* forget_capabilities - empty the session's capability list, so that a
 * list seen later was sent after this point. (Also: libetpan 1.9.4 copies
 * the session's list on a CAPABILITY OK without checking that there is
 * one, a NULL dereference.) */
static void forget_capabilities(struct imap_loop *l)
{
    struct mailimap_connection_info *ci = l->imap->imap_connection_info;
    if (!ci)
        return;
    if (ci->imap_capability)
        mailimap_capability_data_free(ci->imap_capability);
    clist *empty = clist_new();
    ci->imap_capability = empty ? mailimap_capability_data_new(empty) : NULL;
    if (!ci->imap_capability)
        abort(); /* out of memory: the project's policy */
}

/* capabilities - the server's list since forget_capabilities: the one it
 * sent unasked, else a CAPABILITY command's. The list belongs to the
 * session; NULL with err */
static const struct mailimap_capability_data *capabilities(struct imap_loop *l, char *err,
                                                           size_t errlen)
{
    struct mailimap_capability_data *cap = NULL;
    struct mailimap_connection_info *ci = l->imap->imap_connection_info;
    if (!ci) {
        errbuf_set(err, errlen, "CAPABILITY failed: %s", imap_strerror(MAILIMAP_ERROR_BAD_STATE));
        return NULL;
    }
    if (ci->imap_capability && clist_count(ci->imap_capability->cap_list) > 0)
        return ci->imap_capability;
    forget_capabilities(l);
    imap_count_command();
    int r = mailimap_capability(l->imap, &cap);
    if (r != MAILIMAP_NO_ERROR) {
        imap_cmd_error(l, r, "CAPABILITY", err, errlen);
        return NULL;
    }
    mailimap_capability_data_free(cap); /* a copy of the session's list */
    return ci->imap_capability;
}

/* has_cap - cap holds name ("AUTH=X" for a SASL mechanism) */
static bool has_cap(const struct mailimap_capability_data *cap, const char *name)
{
    bool auth = strncasecmp(name, "AUTH=", 5) == 0;
    for (clistiter *it = clist_begin(cap->cap_list); it; it = clist_next(it)) {
        const struct mailimap_capability *c = clist_content(it);
        if (auth && c->cap_type == MAILIMAP_CAPABILITY_AUTH_TYPE && c->cap_data.cap_auth_type &&
            strcasecmp(c->cap_data.cap_auth_type, name + 5) == 0)
            return true;
        if (c->cap_type == MAILIMAP_CAPABILITY_NAME && c->cap_data.cap_name &&
            strcasecmp(c->cap_data.cap_name, name) == 0)
            return true;
    }
    return false;
}

/* has_capability - the server announces name (forgotten first: fresh) */
static int has_capability(struct imap_loop *l, const char *name, bool *yes, char *err,
                          size_t errlen)
{
    forget_capabilities(l);
    const struct mailimap_capability_data *cap = capabilities(l, err, errlen);
    *yes = cap && has_cap(cap, name);
    return cap ? 0 : -1;
}

/* starttls - STARTTLS, then the handshake on the same socket (with our
 * timeout, which mailimap_socket_starttls lacks) and the peer check */
static int starttls(struct imap_loop *l, char *err, size_t errlen)
{
    bool offered;
    if (has_capability(l, "STARTTLS", &offered, err, errlen) < 0)
        return -1;
    if (!offered) {
        errbuf_set(err, errlen, "server %s:%u does not offer STARTTLS (tls is \"starttls\")",
                   l->host, (unsigned)l->port);
        return -1;
    }
    imap_count_command();
    int r = mailimap_starttls(l->imap);
    if (r != MAILIMAP_NO_ERROR) {
        imap_cmd_error(l, r, "STARTTLS", err, errlen);
        return -1;
    }
    /* what the server said before TLS does not count after it */
    forget_capabilities(l);
    mailstream_low *plain = mailstream_get_low(l->imap->imap_stream);
    int fd = mailstream_low_get_fd(plain);
    mailstream_low *tls =
        fd < 0 ? NULL
               : mailstream_low_tls_open_with_callback_timeout(fd, timeout_s(l), tls_setup, l);
    if (!tls) {
        errbuf_set(err, errlen, "TLS handshake with %s:%u after STARTTLS failed", l->host,
                   (unsigned)l->port);
        return -1;
    }
    /* the plain layer goes without closing the descriptor, as in libetpan */
    mailstream_low_free(plain);
    mailstream_set_low(l->imap->imap_stream, tls);
    if (verify_peer(l, l->imap->imap_stream, err, errlen) < 0)
        return -1;
    eof_guard(l->imap->imap_stream);
    return 0;
}

/* spam folder names, in order of preference (when no \Junk) */
static const char *const spam_names[] = {"Junk", "Spam", "Junk Email", "Junk E-mail", "Bulk Mail"};
#define N_SPAM_NAMES (sizeof spam_names / sizeof spam_names[0])

/* list_attr - mb's LIST attributes as bits */
#define MB_NOSELECT 1u /* \Noselect, \NonExistent */
#define MB_JUNK 2u
#define MB_OTHER_USE 4u /* \All, \Trash, \Sent, \Drafts: never the spam folder */
static unsigned list_attr(const struct mailimap_mailbox_list *mb)
{
    static const struct {
        const char *name;
        unsigned bit;
    } attrs[] = {{"Noselect", MB_NOSELECT}, {"NonExistent", MB_NOSELECT}, {"Junk", MB_JUNK},
                 {"All", MB_OTHER_USE},     {"Trash", MB_OTHER_USE},      {"Sent", MB_OTHER_USE},
                 {"Drafts", MB_OTHER_USE}};
    unsigned bits = 0;
    if (!mb->mb_flag)
        return 0;
    if (mb->mb_flag->mbf_type == MAILIMAP_MBX_LIST_FLAGS_SFLAG &&
        mb->mb_flag->mbf_sflag == MAILIMAP_MBX_LIST_SFLAG_NOSELECT)
        bits |= MB_NOSELECT;
    for (clistiter *f = clist_begin(mb->mb_flag->mbf_oflags); f; f = clist_next(f)) {
        const struct mailimap_mbx_list_oflag *of = clist_content(f);
        const char *ext = of->of_flag_ext;
        if (of->of_type != MAILIMAP_MBX_LIST_OFLAG_FLAG_EXT || !ext)
            continue;
        if (ext[0] == '\\')
            ext++;
        for (size_t i = 0; i < sizeof attrs / sizeof attrs[0]; i++) {
            if (strcasecmp(ext, attrs[i].name) == 0)
                bits |= attrs[i].bit;
        }
    }
    return bits;
}

/* find_spam - the spam folder (see the top of the file); *how is
 * "settings", "special-use" or "name" */
static int find_spam(struct imap_loop *l, const char **how, char *err, size_t errlen)
{
    clist *list = NULL;
    const char *junk = NULL, *top[N_SPAM_NAMES] = {NULL}, *sub[N_SPAM_NAMES] = {NULL};

    if (l->spam_conf) {
        l->spam = xstrdup(l->spam_conf);
        *how = "settings";
        return 0;
    }
    imap_count_command();
    int r = mailimap_list(l->imap, "", "*", &list);
    if (r != MAILIMAP_NO_ERROR) {
        /* libetpan hands over the list it collected with a NO or BAD too */
        if (list)
            mailimap_list_result_free(list);
        imap_cmd_error(l, r, "LIST", err, errlen);
        return -1;
    }
    for (clistiter *it = clist_begin(list); it; it = clist_next(it)) {
        const struct mailimap_mailbox_list *mb = clist_content(it);
        if (!mb->mb_name || strcasecmp(mb->mb_name, "INBOX") == 0 ||
            strcmp(mb->mb_name, l->inbox) == 0)
            continue;
        unsigned attr = list_attr(mb);
        if (attr & (MB_NOSELECT | MB_OTHER_USE))
            continue;
        if ((attr & MB_JUNK) && !junk)
            junk = mb->mb_name;
        const char *last = mb->mb_name;
        if (mb->mb_delimiter) {
            const char *d = strrchr(mb->mb_name, mb->mb_delimiter);
            if (d)
                last = d + 1;
        }
        for (size_t i = 0; i < N_SPAM_NAMES; i++) {
            if (!top[i] && strcasecmp(mb->mb_name, spam_names[i]) == 0)
                top[i] = mb->mb_name;
            else if (!sub[i] && strcasecmp(last, spam_names[i]) == 0)
                sub[i] = mb->mb_name;
        }
    }
    const char *pick = junk;
    for (size_t i = 0; !pick && i < N_SPAM_NAMES; i++)
        pick = top[i] ? top[i] : sub[i];
    *how = junk ? "special-use" : "name";
    if (pick)
        l->spam = xstrdup(pick);
    mailimap_list_result_free(list);
    if (!pick) {
        errbuf_set(err, errlen,
                   "no spam folder: no selectable mailbox with \\Junk, none named Junk, Spam, "
                   "\"Junk Email\", \"Junk E-mail\" or \"Bulk Mail\" (set \"spam\")");
        return -1;
    }
    return 0;
}

/* scrub_secret - err without a server text that echoes the secret */
static void scrub_secret(char *err, size_t errlen, const char *what, const char *secret)
{
    if (secret[0] && strstr(err, secret))
        errbuf_set(err, errlen, "%s failed: refused by the server (its reply held the secret)",
                   what);
}

/* authenticate - LOGIN, or AUTHENTICATE XOAUTH2 with oauth2_token_file;
 * the secret read now. A refusal sets auth_failed and secret_id */
static int authenticate(struct imap_loop *l, const char **mech, char *err, size_t errlen)
{
    char what[400], *secret = NULL;
    struct imap_secret_id id;
    bool oauth2 = l->oauth2_token_file != NULL;
    int r;

    *mech = oauth2 ? "xoauth2" : "login";
    if (imap_read_secret(l, &secret, &id, err, errlen) < 0) {
        /* nothing to try yet: a new file is worth a try at once */
        l->auth_failed = true;
        l->secret_id = id;
        return -1;
    }
    if (oauth2) {
        const struct mailimap_capability_data *cap = capabilities(l, err, errlen);
        if (!cap || !has_cap(cap, "AUTH=XOAUTH2")) {
            if (cap)
                errbuf_set(err, errlen,
                           "server %s:%u does not offer AUTH=XOAUTH2 (oauth2_token_file is set)",
                           l->host, (unsigned)l->port);
            goto fail;
        }
    }
    forget_capabilities(l); /* the ones the OK carries are post-login */
    imap_count_command();
    if (oauth2) {
        snprintf(what, sizeof what, "AUTHENTICATE XOAUTH2 as %s", l->user);
        r = mailimap_oauth2_authenticate(l->imap, l->user, secret);
    } else {
        snprintf(what, sizeof what, "LOGIN as %s", l->user);
        r = mailimap_login(l->imap, l->user, secret);
    }
    if (r != MAILIMAP_NO_ERROR) {
        imap_cmd_error(l, r, what, err, errlen);
        scrub_secret(err, errlen, what, secret);
        if (!imap_connection_error(r)) {
            l->auth_failed = true;
            l->secret_id = id;
        }
        goto fail;
    }
    explicit_bzero(secret, strlen(secret));
    free(secret);
    return 0;
fail:
    explicit_bzero(secret, strlen(secret));
    free(secret);
    return -1;
}

/* imap_secret_changed - see loop_imap_int.h */
bool imap_secret_changed(const struct imap_loop *l)
{
    const char *path = l->oauth2_token_file ? l->oauth2_token_file : l->password_file;
    const struct imap_secret_id *o = &l->secret_id;
    struct stat st;

    if (!l->auth_failed || !path || stat(path, &st) != 0)
        return false;
    return !o->known || o->dev != (uint64_t)st.st_dev || o->ino != (uint64_t)st.st_ino ||
           o->size != (int64_t)st.st_size || o->mtime_s != (int64_t)st.st_mtim.tv_sec ||
           o->mtime_ns != (int64_t)st.st_mtim.tv_nsec;
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

/* imap_session_close - drop the connection; polite: LOGOUT first (bounded by
 * the timeout) */
void imap_session_close(struct imap_loop *l, bool polite, const char *why)
{
    if (!l->imap)
        return;
    if (polite && l->imap->imap_stream && l->imap->imap_state != MAILIMAP_STATE_DISCONNECTED) {
        imap_count_command();
        mailimap_logout(l->imap);
    }
    session_free(l);
    log_info("imap loop disconnected domain=%s host=%s port=%u reason=\"%s\"", l->domain, l->host,
             (unsigned)l->port, why);
}

/* imap_session_open - connect, TLS as configured, LOGIN, find the spam folder;
 * on failure nothing stays open */
int imap_session_open(struct imap_loop *l, char *err, size_t errlen)
{
    mailstream *s = NULL;
    const char *how = "", *mech = "preauth";
    int r;

    l->auth_failed = false;
    l->cap_move = l->cap_uidplus = false;
    int fd = tcp_connect(l, err, errlen);
    if (fd < 0)
        return -1;
    if (l->tls == IMAP_TLS_IMPLICIT) {
        s = mailstream_ssl_open_with_callback_timeout(fd, timeout_s(l), tls_setup, l);
        if (!s) {
            close(fd);
            errbuf_set(err, errlen, "TLS handshake with %s:%u failed", l->host, (unsigned)l->port);
            return -1;
        }
        if (verify_peer(l, s, err, errlen) < 0) {
            mailstream_close(s);
            return -1;
        }
        eof_guard(s);
    } else {
        s = mailstream_socket_open_timeout(fd, timeout_s(l));
        if (!s) {
            close(fd);
            errbuf_set(err, errlen, "cannot set up a stream for %s:%u", l->host, (unsigned)l->port);
            return -1;
        }
        eof_guard(s);
    }
    l->imap = mailimap_new(0, NULL);
    if (!l->imap) {
        mailstream_close(s);
        errbuf_set(err, errlen, "out of memory");
        return -1;
    }
    mailimap_set_timeout(l->imap, timeout_s(l));
    r = mailimap_connect(l->imap, s); /* the session owns s from here on */
    if (r != MAILIMAP_NO_ERROR_NON_AUTHENTICATED && r != MAILIMAP_NO_ERROR_AUTHENTICATED) {
        char what[300];
        snprintf(what, sizeof what, "greeting from %s:%u", l->host, (unsigned)l->port);
        imap_cmd_error(l, r, what, err, errlen);
        goto fail;
    }
    bool preauth = r == MAILIMAP_NO_ERROR_AUTHENTICATED;
    if (l->tls == IMAP_TLS_STARTTLS) {
        if (preauth) {
            errbuf_set(err, errlen, "server %s:%u sent PREAUTH before STARTTLS", l->host,
                       (unsigned)l->port);
            goto fail;
        }
        if (starttls(l, err, errlen) < 0)
            goto fail;
    }
    if (!preauth && authenticate(l, &mech, err, errlen) < 0)
        goto fail;
    const struct mailimap_capability_data *cap = capabilities(l, err, errlen);
    if (!cap)
        goto fail;
    l->cap_move = has_cap(cap, "MOVE");
    l->cap_uidplus = has_cap(cap, "UIDPLUS");
    if (find_spam(l, &how, err, errlen) < 0)
        goto fail;
    log_info("imap loop connected domain=%s host=%s port=%u tls=%s user=%s inbox=\"%s\" "
             "spam=\"%s\" spam_from=%s auth=%s move=%s uidplus=%s",
             l->domain, l->host, (unsigned)l->port, imap_tls_names[l->tls], l->user, l->inbox,
             l->spam, how, mech, l->cap_move ? "yes" : "no", l->cap_uidplus ? "yes" : "no");
    return 0;
fail:
    session_free(l); /* quietly: there was no connection to speak of */
    return -1;
}
