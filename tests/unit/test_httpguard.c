/* test_httpguard.c - Host allow-list, same-origin and framing checks, and
 * the connection deadlines of httpconn (reaped on a socket pair). */
#include "httpconn.h"
#include "httpguard.h"
#include "test.h"
#include "timeutil.h"

#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

static void test_hosts(void)
{
    char err[256];
    struct http_hosts *lo = http_hosts_new("127.0.0.1", NULL, err, sizeof err);
    struct http_hosts *any =
        http_hosts_new("0.0.0.0", "warmup-service, .acme.com", err, sizeof err);
    struct http_hosts *star = http_hosts_new("127.0.0.1", "*", err, sizeof err);
    CHECK(lo && any && star, "host lists built");
    static const struct {
        const char *host;
        bool lo, any;
    } rows[] = {
        {"127.0.0.1:8080", true, true},
        {"127.0.0.1", true, true},
        {"127.1.2.3:80", true, true},
        {"localhost:8080", true, true},
        {"LOCALHOST", true, true},
        {"localhost.:8080", true, true},
        {"app.localhost:8080", true, true},
        {"[::1]:8080", true, true},
        {"evil.example", false, false},
        {"evil.example:8080", false, false},
        {"localhost.evil.example", false, false},
        {"evillocalhost", false, false},
        {"10.0.0.5:8080", false, true},
        {"[2001:db8::1]:8080", false, true},
        {"warmup-service:8080", false, true},
        {"WARMUP-SERVICE", false, true},
        {"acme.com", false, true},
        {"mail.acme.com:443", false, true},
        {"notacme.com", false, false},
        {"", false, false},
        {"localhost:80:80", false, false},
        {"localhost:abc", false, false},
        {"local host", false, false},
        {"[::1", false, false},
        {"::1", false, false},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char name[128];
        snprintf(name, sizeof name, "loopback bind: Host '%s'", rows[i].host);
        CHECK(http_host_allowed(lo, rows[i].host, false) == rows[i].lo, name);
        snprintf(name, sizeof name, "wildcard bind + list: Host '%s'", rows[i].host);
        CHECK(http_host_allowed(any, rows[i].host, false) == rows[i].any, name);
        snprintf(name, sizeof name, "'*': Host '%s'", rows[i].host);
        CHECK(http_host_allowed(star, rows[i].host, false), name);
    }
    CHECK(!http_host_allowed(lo, NULL, false), "no Host refused for HTTP/1.1");
    CHECK(http_host_allowed(lo, NULL, true), "no Host allowed for HTTP/1.0");
    struct http_hosts *v6 = http_hosts_new("::1", NULL, err, sizeof err);
    CHECK(v6 && http_host_allowed(v6, "[::1]:9", false) &&
              !http_host_allowed(v6, "x.example", false),
          "bound to ::1");
    struct http_hosts *ip = http_hosts_new("192.0.2.7", NULL, err, sizeof err);
    CHECK(ip && http_host_allowed(ip, "192.0.2.7:8080", false) &&
              !http_host_allowed(ip, "192.0.2.8", false),
          "bound address named as Host, another address refused");
    http_hosts_free(v6);
    http_hosts_free(ip);
    http_hosts_free(lo);
    http_hosts_free(any);
    http_hosts_free(star);
    static const char *const bad[] = {"http://x.example", "x.example:80", "x/y", "a b"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct http_hosts *h = http_hosts_new("127.0.0.1", bad[i], err, sizeof err);
        CHECK(!h && strstr(err, "ALLOWED_HOSTS"), bad[i]);
        http_hosts_free(h);
    }
    CHECK(!http_hosts_new("localhost", NULL, err, sizeof err), "bind must be an IP literal");
}

static void test_origin(void)
{
    static const struct {
        const char *origin, *host;
        bool same;
    } rows[] = {
        {"http://127.0.0.1:8080", "127.0.0.1:8080", true},
        {"http://LOCALHOST:8080", "localhost:8080", true},
        {"https://mail.acme.com", "mail.acme.com", true},
        {"http://evil.example", "127.0.0.1:8080", false},
        {"http://127.0.0.1:9999", "127.0.0.1:8080", false},
        {"http://localhost:8080", "127.0.0.1:8080", false},
        {"null", "127.0.0.1:8080", false},
        {"http://127.0.0.1:8080/", "127.0.0.1:8080", false},
        {"http://u@127.0.0.1:8080", "127.0.0.1:8080", false},
        {"://127.0.0.1:8080", "127.0.0.1:8080", false},
        {"http://", "", false},
        {"http://127.0.0.1:8080", NULL, false},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        CHECK(http_origin_same(rows[i].origin, rows[i].host) == rows[i].same, rows[i].origin);
    CHECK(http_method_changes_state("POST") && http_method_changes_state("DELETE") &&
              http_method_changes_state("PUT") && http_method_changes_state("PATCH") &&
              !http_method_changes_state("GET") && !http_method_changes_state("HEAD"),
          "state-changing methods");
}

static const char *framing(const char *const *h, bool http11)
{
    struct http_framing f = {.http11 = http11};
    for (int i = 0; h[i]; i += 2)
        http_framing_add(&f, h[i], h[i + 1]);
    return http_framing_error(&f);
}

static void test_framing(void)
{
    CHECK(!framing((const char *[]){"Host", "a", "Content-Length", "5", NULL}, true), "plain");
    CHECK(!framing((const char *[]){NULL}, false), "HTTP/1.0 without Host");
    CHECK(framing((const char *[]){NULL}, true), "HTTP/1.1 without Host");
    CHECK(framing((const char *[]){"Host", "a", "Content-Length", "5", "Content-Length", "6", NULL},
                  true),
          "two Content-Length");
    CHECK(framing((const char *[]){"Host", "a", "Content-Length", "5", "content-length", "5", NULL},
                  true),
          "two Content-Length, same value");
    CHECK(framing((const char *[]){"Host", "a", "Content-Length ", "5", NULL}, true),
          "space before the colon");
    CHECK(framing((const char *[]){"Host", "a", "", "5", NULL}, true), "empty name");
    CHECK(framing((const char *[]){"Host", "a", "Transfer-Encoding", "chunked", "Content-Length",
                                   "5", NULL},
                  true),
          "Transfer-Encoding and Content-Length");
    CHECK(framing((const char *[]){"Host", "a", "Transfer-Encoding", "gzip, chunked", NULL}, true),
          "Transfer-Encoding other than chunked");
    CHECK(!framing((const char *[]){"Host", "a", "Transfer-Encoding", "Chunked", NULL}, true),
          "chunked alone");
    CHECK(framing((const char *[]){"Host", "a", "Host", "b", NULL}, true), "two Host headers");
}

static void test_deadlines(void)
{
    struct httpconn_config cfg = {.max_conns = 16,
                                  .header_timeout_s = 2,
                                  .body_timeout_s = 3,
                                  .body_min_rate = 1000,
                                  .busy_timeout_ms = 500};
    struct httpconn_table *t = httpconn_table_new(&cfg);
    int sv[2];
    CHECK(t && socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "table and socket pair");
    struct httpconn *c = httpconn_open(t, sv[0]);
    int64_t now = time_mono_ms();
    CHECK_INT(httpconn_reap(t, now + 1900), 0, "headers: alive before the deadline");
    httpconn_phase(t, c, HTTPCONN_BODY);
    now = time_mono_ms();
    CHECK_INT(httpconn_reap(t, now + 2900), 0, "body: alive before its deadline");
    httpconn_body(t, c, 2000); /* +2 s at 1000 B/s */
    CHECK_INT(httpconn_reap(t, now + 4900), 0, "body bytes extend the deadline");
    httpconn_phase(t, c, HTTPCONN_SERVING);
    CHECK_INT(httpconn_reap(t, now + 600000), 0, "no deadline while serving");
    httpconn_phase(t, c, HTTPCONN_HEADERS);
    now = time_mono_ms();
    CHECK_INT(httpconn_reap(t, now + 2100), 1, "headers late: shut down");
    char b;
    CHECK(read(sv[1], &b, 1) == 0, "the peer sees end of file");
    CHECK_INT(httpconn_reap(t, now + 9000), 0, "shut down once");
    httpconn_close(t, c);
    close(sv[0]);
    close(sv[1]);

    /* near the cap (14 of 16), waiting connections get busy_timeout_ms */
    int fds[14][2];
    struct httpconn *cs[14];
    for (int i = 0; i < 14; i++) {
        socketpair(AF_UNIX, SOCK_STREAM, 0, fds[i]);
        cs[i] = httpconn_open(t, fds[i][0]);
    }
    httpconn_phase(t, cs[0], HTTPCONN_SERVING);
    CHECK(httpconn_busy(t), "14 of 16 is busy");
    now = time_mono_ms();
    CHECK_INT(httpconn_reap(t, now + 600), 13, "busy: waiting connections shed, serving kept");
    for (int i = 0; i < 14; i++) {
        httpconn_close(t, cs[i]);
        close(fds[i][0]);
        close(fds[i][1]);
    }
    CHECK(!httpconn_busy(t), "empty is not busy");
    httpconn_table_free(t);
}

int main(void)
{
    test_hosts();
    test_origin();
    test_framing();
    test_deadlines();
    return test_done();
}
