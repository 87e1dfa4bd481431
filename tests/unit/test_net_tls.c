/* test_net_tls.c - libshared's client network module: net_connect (success,
 * refused, timed out on a full backlog, cancelled), net_wait; the peer
 * check of tls.c on certificates made here (a test CA and an unrelated
 * one; leaves for localhost + 127.0.0.1, for wrong.test, through an
 * intermediate, with wildcards): tls_verify_der as the IMAP loop uses it,
 * and a real handshake over a socket pair through tls_session and
 * tls_handshake as the SMTP engine uses it. Both must accept the right
 * chain and host and refuse a wrong CA, a wrong name and a wrong IP. */
#include "net.h"
#include "test.h"
#include "timeutil.h"
#include "tls.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- net ------------------------------------------------------------------ */

/* listener - a TCP socket listening on 127.0.0.1 with backlog; its port */
static int listener(int backlog, int *port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, backlog) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &al) != 0)
        abort();
    *port = ntohs(a.sin_port);
    return fd;
}

static void test_connect(void)
{
    char err[300], want[300];
    int port, fd = -1, e = -1;
    int l = listener(8, &port);
    int rc = net_connect("127.0.0.1", port, 1000, NULL, &fd, &e, err, sizeof err);
    CHECK_INT(rc, 0, "connect to a listener");
    int fl = fcntl(fd, F_GETFL), nd = 0;
    socklen_t sl = sizeof nd;
    CHECK(fl >= 0 && (fl & O_NONBLOCK), "the socket is non-blocking");
    CHECK(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &nd, &sl) == 0 && nd, "TCP_NODELAY is on");
    CHECK(net_set_blocking(fd, true) == 0 && !(fcntl(fd, F_GETFL) & O_NONBLOCK),
          "net_set_blocking(true) clears O_NONBLOCK");
    close(fd);
    close(l);

    fd = -1;
    rc = net_connect("127.0.0.1", port, 1000, NULL, &fd, &e, err, sizeof err);
    snprintf(want, sizeof want, "connect to 127.0.0.1:%d failed: 127.0.0.1: Connection refused",
             port);
    CHECK_INT(rc, NET_E_CONNECT, "refused: NET_E_CONNECT");
    CHECK_INT(e, ECONNREFUSED, "refused: *err ECONNREFUSED");
    CHECK_STR(err, want, "refused: the address and the reason");
    CHECK_INT(fd, -1, "refused: *fd untouched");

    /* a listener whose backlog is full drops the SYN: connect stays pending */
    l = listener(0, &port);
    int held[3];
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                            .sin_port = htons((uint16_t)port)};
    for (int i = 0; i < 3; i++) {
        held[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        (void)connect(held[i], (struct sockaddr *)&a, sizeof a);
    }
    int64_t t0 = time_mono_ms();
    rc = net_connect("127.0.0.1", port, 300, NULL, &fd, &e, err, sizeof err);
    int64_t took = time_mono_ms() - t0;
    CHECK_INT(rc, NET_E_CONNECT, "full backlog: NET_E_CONNECT");
    CHECK_INT(e, ETIMEDOUT, "full backlog: *err ETIMEDOUT");
    CHECK(strstr(err, ": 127.0.0.1: timed out after ") != NULL, "full backlog: 'timed out after'");
    CHECK(took >= 290 && took < 1500, "full backlog: bounded by the timeout");

    atomic_bool cancel = true;
    t0 = time_mono_ms();
    rc = net_connect("127.0.0.1", port, 5000, &cancel, &fd, &e, err, sizeof err);
    snprintf(want, sizeof want, "cancelled (shutting down) connecting to 127.0.0.1:%d", port);
    CHECK_INT(rc, NET_E_CANCEL, "cancel flag: NET_E_CANCEL");
    CHECK_STR(err, want, "cancel flag: the message");
    CHECK(time_mono_ms() - t0 < 1000, "cancel flag: no wait");
    for (int i = 0; i < 3; i++)
        close(held[i]);
    close(l);
}

static void test_wait(void)
{
    int sv[2];
    atomic_bool cancel = false;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        abort();
    int64_t t0 = time_mono_ms();
    CHECK_INT(net_wait(sv[0], POLLIN, t0 + 50, &cancel), NET_E_TIMEOUT, "wait: times out");
    CHECK(time_mono_ms() - t0 >= 50, "wait: not before the deadline");
    CHECK_INT(net_wait(sv[0], POLLOUT, t0 + 1000, NULL), 0, "wait: writable at once");
    CHECK_INT(write(sv[1], "x", 1), 1, "a byte written");
    CHECK_INT(net_wait(sv[0], POLLIN, time_mono_ms() + 1000, &cancel), 0, "wait: readable");
    atomic_store(&cancel, true);
    CHECK_INT(net_wait(sv[0], POLLIN, time_mono_ms() + 1000, &cancel), NET_E_CANCEL,
              "wait: the cancel flag wins");
    close(sv[0]);
    close(sv[1]);
}

/* ---- certificates ------------------------------------------------------------ */

struct cert {
    EVP_PKEY *key;
    X509 *x;
};

/* make_cert - a certificate for cn (CA when ca), signed by issuer (NULL:
 * self-signed), with subjectAltName san (NULL: none) */
static struct cert make_cert(const char *cn, bool ca, const struct cert *issuer, const char *san)
{
    static long serial = 1;
    struct cert c = {EVP_EC_gen("P-256"), X509_new()};
    if (!c.key || !c.x)
        abort();
    X509_set_version(c.x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(c.x), serial++);
    X509_gmtime_adj(X509_getm_notBefore(c.x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(c.x), 86400);
    X509_set_pubkey(c.x, c.key);
    X509_NAME *n = X509_get_subject_name(c.x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(c.x, issuer ? X509_get_subject_name(issuer->x) : n);
    X509V3_CTX v;
    X509V3_set_ctx_nodb(&v);
    X509V3_set_ctx(&v, issuer ? issuer->x : c.x, c.x, NULL, NULL, 0);
    const char *ext[][2] = {
        {"basicConstraints", ca ? "critical,CA:TRUE" : "CA:FALSE"},
        {"keyUsage", ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature"},
        {ca ? NULL : "extendedKeyUsage", "serverAuth"},
        {"subjectKeyIdentifier", "hash"},
        {issuer ? "authorityKeyIdentifier" : NULL, "keyid:always"},
        {san ? "subjectAltName" : NULL, san},
    };
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++) {
        if (!ext[i][0])
            continue;
        X509_EXTENSION *e = X509V3_EXT_conf(NULL, &v, ext[i][0], ext[i][1]);
        if (!e || !X509_add_ext(c.x, e, -1))
            abort();
        X509_EXTENSION_free(e);
    }
    if (!X509_sign(c.x, issuer ? issuer->key : c.key, EVP_sha256()))
        abort();
    return c;
}

static void cert_free(struct cert *c)
{
    EVP_PKEY_free(c->key);
    X509_free(c->x);
}

/* der - c's DER (caller frees .data) */
static struct tls_der der(const struct cert *c)
{
    unsigned char *p = NULL;
    int n = i2d_X509(c->x, &p);
    if (n <= 0)
        abort();
    return (struct tls_der){p, (size_t)n};
}

static X509_STORE *store_of(const struct cert *ca)
{
    X509_STORE *s = X509_STORE_new();
    if (!s || X509_STORE_add_cert(s, ca->x) != 1)
        abort();
    return s;
}

static struct cert ca, other_ca, inter, leaf, wrong, deep, wild;

static void make_certs(void)
{
    ca = make_cert("Test CA", true, NULL, NULL);
    other_ca = make_cert("Other CA", true, NULL, NULL);
    inter = make_cert("Test Intermediate", true, &ca, NULL);
    leaf = make_cert("localhost", false, &ca, "DNS:localhost,IP:127.0.0.1");
    wrong = make_cert("wrong.test", false, &ca, "DNS:wrong.test");
    deep = make_cert("mail.example.com", false, &inter, "DNS:mail.example.com");
    wild = make_cert("wild", false, &ca, "DNS:*.wild.example,DNS:f*.part.example");
}

static void test_host_is_ip(void)
{
    static const struct {
        const char *host;
        bool ip;
    } rows[] = {
        {"127.0.0.1", true},  {"::1", true},        {"2001:db8::25", true},
        {"localhost", false}, {"mail.test", false}, {"127.0.0.1.nip.io", false},
        {"1.2.3", false},     {"[::1]", false},     {"", false},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char name[80];
        snprintf(name, sizeof name, "tls_host_is_ip(\"%s\") %s", rows[i].host,
                 rows[i].ip ? "true" : "false");
        CHECK(tls_host_is_ip(rows[i].host) == rows[i].ip, name);
    }
}

static void test_verify_der(void)
{
    X509_STORE *good = store_of(&ca), *bad = store_of(&other_ca);
    struct tls_der d_leaf = der(&leaf), d_wrong = der(&wrong), d_deep = der(&deep),
                   d_inter = der(&inter), d_wild = der(&wild);
    static const unsigned char junk[] = {0x30, 0x03, 0x02, 0x01, 0x01};
    struct tls_der d_junk = {junk, sizeof junk};
    const struct {
        const char *name;
        X509_STORE *store;
        struct tls_der chain[2];
        size_t n;
        const char *host;
        int rc;
        long verr;
    } rows[] = {
        {"right CA, host name", good, {d_leaf}, 1, "localhost", 0, X509_V_OK},
        {"right CA, IP literal", good, {d_leaf}, 1, "127.0.0.1", 0, X509_V_OK},
        {"host names ignore case", good, {d_leaf}, 1, "LocalHost", 0, X509_V_OK},
        {"wrong CA",
         bad,
         {d_leaf},
         1,
         "localhost",
         TLS_E_VERIFY,
         X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY},
        {"wrong host name",
         good,
         {d_leaf},
         1,
         "mail.test",
         TLS_E_VERIFY,
         X509_V_ERR_HOSTNAME_MISMATCH},
        {"wrong IP", good, {d_leaf}, 1, "127.0.0.2", TLS_E_VERIFY, X509_V_ERR_IP_ADDRESS_MISMATCH},
        {"an IP is not matched as a name",
         good,
         {d_leaf},
         1,
         "::1",
         TLS_E_VERIFY,
         X509_V_ERR_IP_ADDRESS_MISMATCH},
        {"certificate for wrong.test, host localhost",
         good,
         {d_wrong},
         1,
         "localhost",
         TLS_E_VERIFY,
         X509_V_ERR_HOSTNAME_MISMATCH},
        {"certificate for wrong.test, host 127.0.0.1",
         good,
         {d_wrong},
         1,
         "127.0.0.1",
         TLS_E_VERIFY,
         X509_V_ERR_IP_ADDRESS_MISMATCH},
        {"wrong CA and wrong name: the CA is named",
         bad,
         {d_wrong},
         1,
         "localhost",
         TLS_E_VERIFY,
         X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY},
        {"through the intermediate the peer sent",
         good,
         {d_deep, d_inter},
         2,
         "mail.example.com",
         0,
         X509_V_OK},
        {"intermediate missing",
         good,
         {d_deep},
         1,
         "mail.example.com",
         TLS_E_VERIFY,
         X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY},
        {"an unparsable intermediate is left out",
         good,
         {d_leaf, d_junk},
         2,
         "localhost",
         0,
         X509_V_OK},
        {"wildcard", good, {d_wild}, 1, "a.wild.example", 0, X509_V_OK},
        {"wildcard covers one label",
         good,
         {d_wild},
         1,
         "a.b.wild.example",
         TLS_E_VERIFY,
         X509_V_ERR_HOSTNAME_MISMATCH},
        {"no partial wildcards",
         good,
         {d_wild},
         1,
         "foo.part.example",
         TLS_E_VERIFY,
         X509_V_ERR_HOSTNAME_MISMATCH},
        {"leaf not a certificate", good, {d_junk}, 1, "localhost", TLS_E_CERT, X509_V_OK},
        {"no leaf", good, {{NULL, 0}}, 0, "localhost", TLS_E_CERT, X509_V_OK},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        long verr = -1;
        char name[160];
        int rc = tls_verify_der(rows[i].store, rows[i].chain, rows[i].n, rows[i].host, &verr);
        snprintf(name, sizeof name, "verify_der: %s", rows[i].name);
        CHECK(rc == rows[i].rc && verr == rows[i].verr, name);
        if (rc != rows[i].rc || verr != rows[i].verr)
            printf("#   rc %d verr %ld (%s)\n", rc, verr, tls_verify_text(verr));
    }
    CHECK_STR(tls_verify_text(X509_V_ERR_HOSTNAME_MISMATCH), "hostname mismatch",
              "tls_verify_text words the reason");
    X509_STORE_free(good);
    X509_STORE_free(bad);
    struct tls_der *all[] = {&d_leaf, &d_wrong, &d_deep, &d_inter, &d_wild};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        OPENSSL_free((void *)all[i]->data);
}

/* ---- handshake ----------------------------------------------------------------- */

/* pem_file - ca's certificate in a temporary PEM file; its path in path */
static void pem_file(const struct cert *c, char *path, size_t len)
{
    snprintf(path, len, "/tmp/test_net_tls.XXXXXX");
    int fd = mkstemp(path);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f || PEM_write_X509(f, c->x) != 1 || fclose(f) != 0)
        abort();
}

/* handshake - tls_session + tls_handshake against an in-process server
 * presenting srv (with its chain) over a socket pair; the client's result
 * (1 or -1), its message in err, the SNI the server saw in sni */
static int handshake(SSL_CTX *cctx, const struct cert *srv, const char *host, char *err,
                     size_t errlen, char *sni, size_t snilen)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
        abort();
    SSL_CTX *sctx = SSL_CTX_new(TLS_server_method());
    if (!sctx || SSL_CTX_use_certificate(sctx, srv->x) != 1 ||
        SSL_CTX_use_PrivateKey(sctx, srv->key) != 1)
        abort();
    SSL *s = SSL_new(sctx);
    SSL_set_fd(s, sv[1]);
    SSL *c = tls_session(cctx, sv[0], host, err, errlen);
    int rc = c ? 0 : -1, sdone = 0;
    for (int i = 0; rc == 0 && i < 200; i++) {
        short ev;
        rc = tls_handshake(c, host, 25, &ev, err, errlen);
        if (sdone <= 0) {
            sdone = SSL_accept(s);
            int e = SSL_get_error(s, sdone);
            if (sdone <= 0 && e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
                sdone = 1; /* the server gave up: the client will hear */
        }
        if (rc == 0)
            (void)net_wait(sv[0], ev, time_mono_ms() + 20, NULL);
    }
    const char *name = SSL_get_servername(s, TLSEXT_NAMETYPE_host_name);
    snprintf(sni, snilen, "%s", name ? name : "");
    ERR_clear_error();
    tls_close(c, false);
    SSL_free(s);
    SSL_CTX_free(sctx);
    close(sv[0]);
    close(sv[1]);
    return rc;
}

static void test_handshake(void)
{
    char ca_pem[64], other_pem[64], err[300], sni[256];
    pem_file(&ca, ca_pem, sizeof ca_pem);
    pem_file(&other_ca, other_pem, sizeof other_pem);
    SSL_CTX *good = tls_ctx_acquire(ca_pem, err, sizeof err);
    SSL_CTX *again = tls_ctx_acquire(ca_pem, err, sizeof err);
    SSL_CTX *bad = tls_ctx_acquire(other_pem, err, sizeof err);
    CHECK(good && bad, "tls_ctx_acquire loads a CA file");
    CHECK(again == good, "tls_ctx_acquire: one context per CA file");
    CHECK(!tls_ctx_acquire("/nonexistent/ca.pem", err, sizeof err) &&
              !strncmp(err, "TLS: cannot load CA file '/nonexistent/ca.pem': ", 48),
          "tls_ctx_acquire: a missing CA file is refused");
    const struct {
        const char *name;
        SSL_CTX *ctx;
        const struct cert *srv;
        const char *host, *err, *sni;
    } rows[] = {
        {"right CA, host name", good, &leaf, "localhost", NULL, "localhost"},
        {"right CA, IP literal (no SNI)", good, &leaf, "127.0.0.1", NULL, ""},
        {"wrong CA", bad, &leaf, "localhost",
         "TLS: certificate verify failed: unable to get local issuer certificate (localhost:25)",
         NULL},
        {"wrong host name", good, &wrong, "localhost",
         "TLS: certificate verify failed: hostname mismatch (localhost:25)", NULL},
        {"wrong IP", good, &wrong, "127.0.0.1",
         "TLS: certificate verify failed: IP address mismatch (127.0.0.1:25)", NULL},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char name[160];
        err[0] = '\0';
        int rc =
            handshake(rows[i].ctx, rows[i].srv, rows[i].host, err, sizeof err, sni, sizeof sni);
        snprintf(name, sizeof name, "handshake: %s", rows[i].name);
        if (rows[i].err) {
            CHECK(rc < 0, name);
            CHECK_STR(err, rows[i].err, "  and says why");
        } else {
            CHECK(rc == 1, name);
            if (rc != 1)
                printf("#   %s\n", err);
            CHECK_STR(sni, rows[i].sni, "  SNI as expected");
        }
    }
    tls_ctx_release(good);
    tls_ctx_release(again);
    tls_ctx_release(bad);
    tls_ctx_release(NULL);
    unlink(ca_pem);
    unlink(other_pem);
}

int main(void)
{
    test_connect();
    test_wait();
    make_certs();
    test_host_is_ip();
    test_verify_der();
    test_handshake();
    struct cert *all[] = {&ca, &other_ca, &inter, &leaf, &wrong, &deep, &wild};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        cert_free(all[i]);
    return test_done();
}
