/* test_smtp_clients.c - the SmtpClient configuration (smtp_clients.c) from
 * variables and from SMTP_CLIENTS_FILE, good and bad; the registry; the
 * checks each client's open() makes; DRYRUN's spool files; and the pure
 * helpers of the engine (smtp_conn.c): dot-stuffing, reply lines, RFC 3463
 * codes, envelope addresses. No server is needed (the network paths are in
 * tests/integration/test_smtp.sh). */
#include "buf.h"
#include "log.h"
#include "smtp_clients.h"
#include "smtp_conn.h"
#include "test.h"
#include "xalloc.h"

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[64];

static const char *const all_vars[] = {
    "CHOOSEN_SMTP_CLIENT_TYPE",
    "GMAIL_SMTP_USERNAME",
    "GMAIL_SMTP_APP_PASSWORD",
    "GMAIL_SMTP_HOST",
    "GMAIL_SMTP_PORT",
    "MAILPIT_SMTP_ADDR",
    "SMTP_HOST",
    "SMTP_PORT",
    "SMTP_TLS",
    "SMTP_USERNAME",
    "SMTP_PASSWORD",
    "SMTP_CA_FILE",
    "SMTP_HELO",
    "SMTP_SPOOL_DIR",
    "SEND_TPM",
    "WORKERS",
    "SMTP_CONNECT_TIMEOUT_MS",
    "SMTP_COMMAND_TIMEOUT_MS",
    "SMTP_MESSAGE_TIMEOUT_MS",
    "SMTP_CLIENTS_FILE",
    "MESSAGE_ID_DOMAIN",
    NULL,
};

static void clear_env(void)
{
    char buf[128];
    for (size_t i = 0; all_vars[i]; i++) {
        unsetenv(all_vars[i]);
        snprintf(buf, sizeof buf, "%s_FILE", all_vars[i]);
        unsetenv(buf);
    }
}

/* set_vars - "NAME=VALUE" pairs (NULL-terminated list); $T in a value is
 * replaced by the temp dir */
static void set_vars(const char *const *kv)
{
    clear_env();
    for (size_t i = 0; kv && kv[i]; i++) {
        char *s = xstrdup(kv[i]);
        char *eq = strchr(s, '=');
        if (!eq)
            exit(1);
        *eq = '\0';
        const char *v = eq + 1;
        char *val = NULL;
        if (strncmp(v, "$T", 2) == 0) {
            val = xasprintf("%s%s", tmpdir, v + 2);
            v = val;
        }
        setenv(s, v, 1);
        free(val);
        free(s);
    }
}

static char *write_file(const char *name, const char *content)
{
    char *path = xasprintf("%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    if (!f || fputs(content, f) < 0 || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
    return path;
}

static bool contains(const char *hay, const char *needle)
{
    return hay && needle && strstr(hay, needle) != NULL;
}

/* ---- variables ------------------------------------------------------------ */

struct env_case {
    const char *name;
    const char *vars[12];
    const char *err; /* substring of the error, NULL: must load */
    /* expectations when it loads; 0 for conns and timeouts: the default */
    const char *cname, *type, *host;
    int port;
    enum smtp_tls tls;
    const char *user, *pass, *ca, *helo, *spool;
    int tpm, conns, cto, cmto, msto;
};

static const struct env_case env_cases[] = {
    {.name = "defaults: MAILPIT at 127.0.0.1:1025",
     .cname = "mailpit",
     .type = "MAILPIT",
     .host = "127.0.0.1",
     .port = 1025},
    {.name = "MAILPIT_SMTP_ADDR with an IPv6 literal",
     .vars = {"CHOOSEN_SMTP_CLIENT_TYPE=mailpit", "MAILPIT_SMTP_ADDR=[::1]:2525"},
     .cname = "mailpit",
     .type = "MAILPIT",
     .host = "::1",
     .port = 2525},
    {.name = "MAILPIT_SMTP_ADDR without a port",
     .vars = {"MAILPIT_SMTP_ADDR=localhost"},
     .err = "MAILPIT_SMTP_ADDR"},
    {.name = "MAILPIT_SMTP_ADDR with port 0",
     .vars = {"MAILPIT_SMTP_ADDR=localhost:0"},
     .err = "MAILPIT_SMTP_ADDR"},
    {.name = "MAILPIT_SMTP_ADDR bare IPv6",
     .vars = {"MAILPIT_SMTP_ADDR=::1:25"},
     .err = "MAILPIT_SMTP_ADDR"},
    {.name = "unknown client type",
     .vars = {"CHOOSEN_SMTP_CLIENT_TYPE=gmail"},
     .err = "CHOOSEN_SMTP_CLIENT_TYPE"},
    {.name = "GOOGLE needs a username",
     .vars = {"CHOOSEN_SMTP_CLIENT_TYPE=GOOGLE", "GMAIL_SMTP_APP_PASSWORD=s3cret-pw"},
     .err = "GMAIL_SMTP_USERNAME"},
    {.name = "GOOGLE needs an app password",
     .vars = {"CHOOSEN_SMTP_CLIENT_TYPE=GOOGLE", "GMAIL_SMTP_USERNAME=a@gmail.com"},
     .err = "GMAIL_SMTP_APP_PASSWORD"},
    {.name = "GOOGLE preset, password from a _FILE",
     .vars = {"CHOOSEN_SMTP_CLIENT_TYPE=GOOGLE", "GMAIL_SMTP_USERNAME=a@gmail.com",
              "GMAIL_SMTP_APP_PASSWORD_FILE=$T/gmail-pw"},
     .cname = "google",
     .type = "GOOGLE",
     .host = "smtp.gmail.com",
     .port = 587,
     .tls = SMTP_TLS_STARTTLS,
     .user = "a@gmail.com",
     .pass = "app pass word"},
    {.name = "GOOGLE pointed at a local server with its CA",
     .vars = {"CHOOSEN_SMTP_CLIENT_TYPE=GOOGLE", "GMAIL_SMTP_USERNAME=u",
              "GMAIL_SMTP_APP_PASSWORD=p", "GMAIL_SMTP_HOST=localhost", "GMAIL_SMTP_PORT=2587",
              "SMTP_CA_FILE=$T/ca.pem", "SMTP_HELO=mx.example.test", "SEND_TPM=600", "WORKERS=2"},
     .cname = "google",
     .type = "GOOGLE",
     .host = "localhost",
     .port = 2587,
     .tls = SMTP_TLS_STARTTLS,
     .user = "u",
     .pass = "p",
     .ca = "$T/ca.pem",
     .helo = "mx.example.test",
     .tpm = 600,
     .conns = 2},
    {.name = "GMAIL_SMTP_PORT out of range",
     .vars = {"CHOOSEN_SMTP_CLIENT_TYPE=GOOGLE", "GMAIL_SMTP_USERNAME=u",
              "GMAIL_SMTP_APP_PASSWORD=p", "GMAIL_SMTP_PORT=70000"},
     .err = "GMAIL_SMTP_PORT"},
    {.name = "SMTP_CA_FILE that does not exist",
     .vars = {"CHOOSEN_SMTP_CLIENT_TYPE=GOOGLE", "GMAIL_SMTP_USERNAME=u",
              "GMAIL_SMTP_APP_PASSWORD=p", "SMTP_CA_FILE=$T/nope.pem"},
     .err = "SMTP_CA_FILE"},
    {.name = "CUSTOM needs SMTP_HOST",
     .vars = {"CHOOSEN_SMTP_CLIENT_TYPE=CUSTOM"},
     .err = "SMTP_HOST"},
    {.name = "CUSTOM with a bad SMTP_TLS",
     .vars = {"CHOOSEN_SMTP_CLIENT_TYPE=CUSTOM", "SMTP_HOST=mx", "SMTP_TLS=ssl"},
     .err = "SMTP_TLS"},
    {.name = "CUSTOM username without password",
     .vars = {"CHOOSEN_SMTP_CLIENT_TYPE=CUSTOM", "SMTP_HOST=mx", "SMTP_USERNAME=u"},
     .err = "SMTP_PASSWORD"},
    {.name = "CUSTOM password without username",
     .vars = {"CHOOSEN_SMTP_CLIENT_TYPE=CUSTOM", "SMTP_HOST=mx", "SMTP_PASSWORD=s3cret-pw"},
     .err = "SMTP_USERNAME"},
    {.name = "CUSTOM host with a space",
     .vars = {"CHOOSEN_SMTP_CLIENT_TYPE=CUSTOM", "SMTP_HOST=mx example"},
     .err = "SMTP_HOST"},
    {.name = "CUSTOM defaults: port 25, STARTTLS",
     .vars = {"CHOOSEN_SMTP_CLIENT_TYPE=custom", "SMTP_HOST=mx.example.test"},
     .cname = "custom",
     .type = "CUSTOM",
     .host = "mx.example.test",
     .port = 25,
     .tls = SMTP_TLS_STARTTLS},
    {.name = "CUSTOM implicit TLS with AUTH and timeouts",
     .vars = {"CHOOSEN_SMTP_CLIENT_TYPE=CUSTOM", "SMTP_HOST=127.0.0.1", "SMTP_PORT=465",
              "SMTP_TLS=tls", "SMTP_USERNAME=u", "SMTP_PASSWORD=p", "SMTP_CONNECT_TIMEOUT_MS=500",
              "SMTP_COMMAND_TIMEOUT_MS=700", "SMTP_MESSAGE_TIMEOUT_MS=900",
              "MESSAGE_ID_DOMAIN=d.example"},
     .cname = "custom",
     .type = "CUSTOM",
     .host = "127.0.0.1",
     .port = 465,
     .tls = SMTP_TLS_IMPLICIT,
     .user = "u",
     .pass = "p",
     .helo = "d.example",
     .cto = 500,
     .cmto = 700,
     .msto = 900},
    {.name = "CUSTOM tls=none chosen explicitly",
     .vars = {"CHOOSEN_SMTP_CLIENT_TYPE=CUSTOM", "SMTP_HOST=h", "SMTP_TLS=none"},
     .cname = "custom",
     .type = "CUSTOM",
     .host = "h",
     .port = 25,
     .tls = SMTP_TLS_NONE},
    {.name = "CUSTOM tls=none with AUTH to a remote host",
     .vars = {"CHOOSEN_SMTP_CLIENT_TYPE=CUSTOM", "SMTP_HOST=mail.example.invalid", "SMTP_TLS=none",
              "SMTP_USERNAME=u", "SMTP_PASSWORD=s3cret-pw"},
     .err = "SMTP_TLS"},
    {.name = "CUSTOM tls=none with AUTH to 127.0.0.1",
     .vars = {"CHOOSEN_SMTP_CLIENT_TYPE=CUSTOM", "SMTP_HOST=127.0.0.1", "SMTP_TLS=none",
              "SMTP_USERNAME=u", "SMTP_PASSWORD=p"},
     .cname = "custom",
     .type = "CUSTOM",
     .host = "127.0.0.1",
     .port = 25,
     .tls = SMTP_TLS_NONE,
     .user = "u",
     .pass = "p"},
    {.name = "CUSTOM tls=none with AUTH to localhost",
     .vars = {"CHOOSEN_SMTP_CLIENT_TYPE=CUSTOM", "SMTP_HOST=localhost", "SMTP_TLS=none",
              "SMTP_USERNAME=u", "SMTP_PASSWORD=p"},
     .cname = "custom",
     .type = "CUSTOM",
     .host = "localhost",
     .port = 25,
     .tls = SMTP_TLS_NONE,
     .user = "u",
     .pass = "p"},
    {.name = "CUSTOM starttls with AUTH to a remote host",
     .vars = {"CHOOSEN_SMTP_CLIENT_TYPE=CUSTOM", "SMTP_HOST=mail.example.invalid",
              "SMTP_TLS=starttls", "SMTP_USERNAME=u", "SMTP_PASSWORD=p"},
     .cname = "custom",
     .type = "CUSTOM",
     .host = "mail.example.invalid",
     .port = 25,
     .tls = SMTP_TLS_STARTTLS,
     .user = "u",
     .pass = "p"},
    {.name = "CUSTOM implicit tls with AUTH to a remote host",
     .vars = {"CHOOSEN_SMTP_CLIENT_TYPE=CUSTOM", "SMTP_HOST=mail.example.invalid", "SMTP_TLS=tls",
              "SMTP_PORT=465", "SMTP_USERNAME=u", "SMTP_PASSWORD=p"},
     .cname = "custom",
     .type = "CUSTOM",
     .host = "mail.example.invalid",
     .port = 465,
     .tls = SMTP_TLS_IMPLICIT,
     .user = "u",
     .pass = "p"},
    {.name = "DRYRUN with its spool dir",
     .vars = {"CHOOSEN_SMTP_CLIENT_TYPE=DRYRUN", "SMTP_SPOOL_DIR=$T/spool"},
     .cname = "dryrun",
     .type = "DRYRUN",
     .spool = "$T/spool"},
    {.name = "DRYRUN default spool dir",
     .vars = {"CHOOSEN_SMTP_CLIENT_TYPE=DRYRUN"},
     .cname = "dryrun",
     .type = "DRYRUN",
     .spool = "./data/spool"},
    {.name = "WORKERS 0", .vars = {"WORKERS=0"}, .err = "WORKERS"},
    {.name = "WORKERS 257", .vars = {"WORKERS=257"}, .err = "WORKERS"},
    {.name = "SEND_TPM negative", .vars = {"SEND_TPM=-1"}, .err = "SEND_TPM"},
    {.name = "SMTP_COMMAND_TIMEOUT_MS not a number",
     .vars = {"SMTP_COMMAND_TIMEOUT_MS=30s"},
     .err = "SMTP_COMMAND_TIMEOUT_MS"},
    {.name = "SMTP_HELO with a space", .vars = {"SMTP_HELO=my host"}, .err = "SMTP_HELO"},
    {.name = "SMTP_HOST and SMTP_HOST_FILE both set",
     .vars = {"CHOOSEN_SMTP_CLIENT_TYPE=CUSTOM", "SMTP_HOST=a", "SMTP_HOST_FILE=$T/gmail-pw"},
     .err = "SMTP_HOST"},
};

/* expand - "$T..." into the temp dir (static buffer) */
static const char *expand(const char *v, char *out, size_t len)
{
    if (v && strncmp(v, "$T", 2) == 0) {
        snprintf(out, len, "%s%s", tmpdir, v + 2);
        return out;
    }
    return v;
}

static void test_env(void)
{
    char err[512], name[256], x1[256], x2[256];
    for (size_t i = 0; i < sizeof env_cases / sizeof env_cases[0]; i++) {
        const struct env_case *tc = &env_cases[i];
        struct smtp_clients c;
        set_vars(tc->vars);
        err[0] = '\0';
        int rc = smtp_clients_load(&c, err, sizeof err);
        if (tc->err) {
            snprintf(name, sizeof name, "env: %s -> error naming %s", tc->name, tc->err);
            CHECK(rc == -1 && contains(err, tc->err) && c.n == 0 && c.v == NULL, name);
            if (!contains(err, tc->err))
                printf("#   error: %s\n", err);
            snprintf(name, sizeof name, "env: %s -> no secret in the message", tc->name);
            CHECK(!contains(err, "s3cret-pw") && !contains(err, "app pass word"), name);
            continue;
        }
        snprintf(name, sizeof name, "env: %s loads", tc->name);
        CHECK(rc == 0 && c.n == 1 && c.default_idx == 0, name);
        if (rc != 0) {
            printf("#   error: %s\n", err);
            continue;
        }
        const struct smtp_settings *s = &c.v[0].s;
        snprintf(name, sizeof name, "env: %s: name, type, ops", tc->name);
        CHECK(!strcmp(s->name, tc->cname) && !strcmp(s->type, tc->type) &&
                  c.v[0].ops == smtp_client_ops_find(tc->type),
              name);
        snprintf(name, sizeof name, "env: %s: host", tc->name);
        CHECK_STR(s->host, tc->host, name);
        snprintf(name, sizeof name, "env: %s: port and tls", tc->name);
        CHECK(s->port == tc->port && s->tls == tc->tls, name);
        snprintf(name, sizeof name, "env: %s: username", tc->name);
        CHECK_STR(s->username, tc->user, name);
        snprintf(name, sizeof name, "env: %s: password", tc->name);
        CHECK_STR(s->password, tc->pass, name);
        snprintf(name, sizeof name, "env: %s: ca_file", tc->name);
        CHECK_STR(s->ca_file, expand(tc->ca, x1, sizeof x1), name);
        snprintf(name, sizeof name, "env: %s: helo", tc->name);
        CHECK_STR(s->helo, tc->helo, name);
        snprintf(name, sizeof name, "env: %s: spool_dir", tc->name);
        CHECK_STR(s->spool_dir, expand(tc->spool, x2, sizeof x2), name);
        snprintf(name, sizeof name, "env: %s: tpm, connections, timeouts", tc->name);
        CHECK(s->tpm == tc->tpm && s->connections == (tc->conns ? tc->conns : 4) &&
                  s->connect_timeout_ms == (tc->cto ? tc->cto : 10000) &&
                  s->command_timeout_ms == (tc->cmto ? tc->cmto : 30000) &&
                  s->message_timeout_ms == (tc->msto ? tc->msto : 120000),
              name);
        smtp_clients_cleanup(&c);
        CHECK(c.n == 0 && c.v == NULL, "cleanup empties the list");
    }
}

/* ---- SMTP_CLIENTS_FILE ------------------------------------------------------ */

static void test_file_good(void)
{
    char err[512], *pwfile = write_file("relay-pw", "relay-s3cret\r\n");
    char *json = xasprintf(
        "[{\"name\":\"gmail-a\",\"type\":\"GOOGLE\",\"username\":\"a@gmail.com\","
        "\"password\":\"gpw\",\"tpm\":100,\"connections\":2},"
        " {\"name\":\"relay\",\"type\":\"custom\",\"host\":\"smtp.example.com\",\"port\":465,"
        "\"tls\":\"tls\",\"username\":\"u\",\"password_file\":\"%s\",\"ca_file\":\"%s/ca.pem\","
        "\"tpm\":6000,\"connections\":8,\"helo\":\"relay.example\",\"command_timeout_ms\":5000},"
        " {\"name\":\"catch\",\"type\":\"MAILPIT\",\"port\":2525},"
        " {\"name\":\"dry\",\"type\":\"DRYRUN\",\"spool_dir\":\"/tmp/x\"}]",
        pwfile, tmpdir);
    char *path = write_file("clients.json", json);
    const char *vars[] = {"SMTP_CLIENTS_FILE=$T/clients.json",
                          "WORKERS=3",
                          "SEND_TPM=60",
                          "SMTP_HELO=default.example",
                          "CHOOSEN_SMTP_CLIENT_TYPE=ignored",
                          NULL};
    set_vars(vars);
    struct smtp_clients c;
    int rc = smtp_clients_load(&c, err, sizeof err);
    CHECK(rc == 0 && c.n == 4 && c.default_idx == 0, "file: four clients, the first is default");
    if (rc != 0) {
        printf("#   error: %s\n", err);
        goto out;
    }
    const struct smtp_settings *g = &c.v[0].s, *r = &c.v[1].s, *m = &c.v[2].s, *d = &c.v[3].s;
    CHECK(c.v[0].ops == &smtp_gmail_ops && c.v[1].ops == &smtp_custom_ops &&
              c.v[2].ops == &smtp_mailpit_ops && c.v[3].ops == &smtp_dryrun_ops,
          "file: ops by type (case-insensitive)");
    CHECK(!strcmp(g->host, "smtp.gmail.com") && g->port == 587 && g->tls == SMTP_TLS_STARTTLS &&
              !strcmp(g->password, "gpw") && g->tpm == 100 && g->connections == 2,
          "file: GOOGLE preset and its fields");
    CHECK(!strcmp(r->host, "smtp.example.com") && r->port == 465 && r->tls == SMTP_TLS_IMPLICIT &&
              !strcmp(r->username, "u") && r->tpm == 6000 && r->connections == 8,
          "file: CUSTOM fields");
    CHECK_STR(r->password, "relay-s3cret", "file: password_file read, trailing CRLF stripped");
    CHECK(r->command_timeout_ms == 5000 && r->connect_timeout_ms == 10000,
          "file: per-entry timeout, others default");
    CHECK_STR(r->helo, "relay.example", "file: per-entry helo");
    CHECK_STR(g->helo, "default.example", "file: SMTP_HELO is the default helo");
    CHECK(!strcmp(m->host, "127.0.0.1") && m->port == 2525 && m->tls == SMTP_TLS_NONE &&
              m->tpm == 60 && m->connections == 3,
          "file: MAILPIT defaults; SEND_TPM and WORKERS are the entry defaults");
    CHECK_STR(d->spool_dir, "/tmp/x", "file: DRYRUN spool_dir");
    CHECK_STR(c.v[1].s.type, "CUSTOM", "file: type stored in canonical case");
    CHECK_INT(smtp_clients_find(&c, "relay"), 1, "find: by name");
    CHECK_INT(smtp_clients_find(&c, "RELAY"), 1, "find: ignoring case");
    CHECK_INT(smtp_clients_find(&c, "nope"), -1, "find: unknown name");
    CHECK_INT(smtp_clients_find(&c, NULL), -1, "find: NULL name");
    smtp_clients_cleanup(&c);
out:
    free(json);
    free(path);
    free(pwfile);
}

struct file_case {
    const char *name;
    const char *json;
    const char *err1, *err2; /* substrings of the error */
};

static const struct file_case file_cases[] = {
    {"not JSON", "[{\"name\":", "SMTP_CLIENTS_FILE", "invalid JSON"},
    {"root is an object", "{\"name\":\"a\"}", "SMTP_CLIENTS_FILE", "array"},
    {"empty array", "[]", "SMTP_CLIENTS_FILE", "1.."},
    {"entry not an object", "[1]", "SMTP_CLIENTS_FILE[0]", "object"},
    {"missing name", "[{\"type\":\"MAILPIT\"}]", "SMTP_CLIENTS_FILE[0]", "'name' is required"},
    {"bad name", "[{\"name\":\"a b\",\"type\":\"MAILPIT\"}]", "SMTP_CLIENTS_FILE[0]",
     "field 'name'"},
    {"name not a string", "[{\"name\":5,\"type\":\"MAILPIT\"}]", "SMTP_CLIENTS_FILE[0]",
     "'name' must be a string"},
    {"unknown type", "[{\"name\":\"a\",\"type\":\"SES\"}]", "SMTP_CLIENTS_FILE[0]", "field 'type'"},
    {"duplicate names ignoring case",
     "[{\"name\":\"a\",\"type\":\"MAILPIT\"},{\"name\":\"A\",\"type\":\"DRYRUN\"}]",
     "SMTP_CLIENTS_FILE[1] (A)", "same name"},
    {"field of another type", "[{\"name\":\"m\",\"type\":\"MAILPIT\",\"tls\":\"none\"}]",
     "SMTP_CLIENTS_FILE[0] (m)", "unknown field 'tls' for type MAILPIT"},
    {"unknown field", "[{\"name\":\"m\",\"type\":\"CUSTOM\",\"host\":\"h\",\"hots\":\"h\"}]",
     "SMTP_CLIENTS_FILE[0] (m)", "unknown field 'hots'"},
    {"port as a string",
     "[{\"name\":\"ok\",\"type\":\"MAILPIT\"},"
     "{\"name\":\"relay\",\"type\":\"CUSTOM\",\"host\":\"h\",\"port\":\"587\"}]",
     "SMTP_CLIENTS_FILE[1] (relay)", "field 'port'"},
    {"port out of range", "[{\"name\":\"r\",\"type\":\"CUSTOM\",\"host\":\"h\",\"port\":70000}]",
     "SMTP_CLIENTS_FILE[0] (r)", "field 'port'"},
    {"tpm as a float", "[{\"name\":\"r\",\"type\":\"MAILPIT\",\"tpm\":1.5}]",
     "SMTP_CLIENTS_FILE[0] (r)", "field 'tpm'"},
    {"connections 0", "[{\"name\":\"r\",\"type\":\"MAILPIT\",\"connections\":0}]",
     "SMTP_CLIENTS_FILE[0] (r)", "field 'connections'"},
    {"CUSTOM without host", "[{\"name\":\"r\",\"type\":\"CUSTOM\"}]", "SMTP_CLIENTS_FILE[0] (r)",
     "'host' is required"},
    {"bad tls", "[{\"name\":\"r\",\"type\":\"CUSTOM\",\"host\":\"h\",\"tls\":\"ssl\"}]",
     "SMTP_CLIENTS_FILE[0] (r)", "field 'tls'"},
    {"GOOGLE tls none",
     "[{\"name\":\"g\",\"type\":\"GOOGLE\",\"username\":\"u\",\"password\":\"s3cret-pw\","
     "\"tls\":\"none\"}]",
     "SMTP_CLIENTS_FILE[0] (g)", "field 'tls'"},
    {"GOOGLE without username", "[{\"name\":\"g\",\"type\":\"GOOGLE\",\"password\":\"s3cret-pw\"}]",
     "SMTP_CLIENTS_FILE[0] (g)", "'username' is required"},
    {"username without password",
     "[{\"name\":\"r\",\"type\":\"CUSTOM\",\"host\":\"h\",\"username\":\"u\"}]",
     "SMTP_CLIENTS_FILE[0] (r)", "'password'"},
    {"password and password_file",
     "[{\"name\":\"r\",\"type\":\"CUSTOM\",\"host\":\"h\",\"username\":\"u\","
     "\"password\":\"s3cret-pw\",\"password_file\":\"/etc/hostname\"}]",
     "SMTP_CLIENTS_FILE[0] (r)", "exclude each other"},
    {"password_file missing",
     "[{\"name\":\"r\",\"type\":\"CUSTOM\",\"host\":\"h\",\"username\":\"u\","
     "\"password_file\":\"/nonexistent/pw\"}]",
     "SMTP_CLIENTS_FILE[0] (r)", "/nonexistent/pw"},
    {"ca_file missing",
     "[{\"name\":\"r\",\"type\":\"CUSTOM\",\"host\":\"h\",\"ca_file\":\"/nonexistent/ca.pem\"}]",
     "SMTP_CLIENTS_FILE[0] (r)", "ca_file"},
    {"empty host", "[{\"name\":\"r\",\"type\":\"MAILPIT\",\"host\":\"\"}]",
     "SMTP_CLIENTS_FILE[0] (r)", "'host'"},
    {"trailing garbage", "[{\"name\":\"r\",\"type\":\"MAILPIT\"}] x", "SMTP_CLIENTS_FILE",
     "invalid JSON"},
    {"tls none with a password to a remote host",
     "[{\"name\":\"r\",\"type\":\"CUSTOM\",\"host\":\"mail.example.invalid\",\"tls\":\"none\","
     "\"username\":\"u\",\"password\":\"s3cret-pw\"}]",
     "SMTP_CLIENTS_FILE[0] (r)", "field 'tls': none would send"},
    {"tls none with a password to a remote host, second entry",
     "[{\"name\":\"m\",\"type\":\"MAILPIT\"},{\"name\":\"r\",\"type\":\"CUSTOM\","
     "\"host\":\"10.1.2.3\",\"tls\":\"none\",\"username\":\"u\",\"password\":\"s3cret-pw\"}]",
     "SMTP_CLIENTS_FILE[1] (r)", "clear text"},
};

static void test_file_bad(void)
{
    char err[512], name[256];
    const char *vars[] = {"SMTP_CLIENTS_FILE=$T/bad.json", NULL};
    for (size_t i = 0; i < sizeof file_cases / sizeof file_cases[0]; i++) {
        const struct file_case *tc = &file_cases[i];
        free(write_file("bad.json", tc->json));
        set_vars(vars);
        struct smtp_clients c;
        err[0] = '\0';
        int rc = smtp_clients_load(&c, err, sizeof err);
        snprintf(name, sizeof name, "file: %s -> error naming '%s' and '%s'", tc->name, tc->err1,
                 tc->err2);
        bool ok = rc == -1 && contains(err, tc->err1) && contains(err, tc->err2) && c.n == 0 &&
                  !contains(err, "s3cret-pw");
        CHECK(ok, name);
        if (!ok)
            printf("#   error: %s\n", err);
    }
    const char *missing[] = {"SMTP_CLIENTS_FILE=$T/does-not-exist.json", NULL};
    set_vars(missing);
    struct smtp_clients c;
    int rc = smtp_clients_load(&c, err, sizeof err);
    CHECK(rc == -1 && contains(err, "SMTP_CLIENTS_FILE") && contains(err, "does-not-exist"),
          "file: a missing SMTP_CLIENTS_FILE is named");
}

/* ---- credentials and secrets -------------------------------------------------- */

/* tls none with a password: accepted for loopback hosts, and with TLS */
static void test_cleartext_file(void)
{
    static const struct {
        const char *host, *tls;
        bool ok;
    } rows[] = {
        {"mail.example.invalid", "none", false},
        {"127.0.0.1", "none", true},
        {"127.9.9.9", "none", true},
        {"localhost", "none", true},
        {"LOCALHOST", "none", true},
        {"::1", "none", true},
        {"::ffff:10.0.0.1", "none", false},
        {"localhost.example.invalid", "none", false},
        {"mail.example.invalid", "starttls", true},
        {"mail.example.invalid", "tls", true},
    };
    const char *vars[] = {"SMTP_CLIENTS_FILE=$T/clear.json", NULL};
    char err[512], name[256];
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char *json = xasprintf("[{\"name\":\"r\",\"type\":\"CUSTOM\",\"host\":\"%s\","
                               "\"tls\":\"%s\",\"username\":\"u\",\"password\":\"s3cret-pw\"}]",
                               rows[i].host, rows[i].tls);
        free(write_file("clear.json", json));
        free(json);
        set_vars(vars);
        struct smtp_clients c;
        err[0] = '\0';
        int rc = smtp_clients_load(&c, err, sizeof err);
        snprintf(name, sizeof name, "file: password with tls %s to %s %s", rows[i].tls,
                 rows[i].host, rows[i].ok ? "loads" : "is refused, naming tls");
        bool ok = rows[i].ok ? rc == 0
                             : rc == -1 && contains(err, "field 'tls'") &&
                                   contains(err, rows[i].host) && !contains(err, "s3cret-pw");
        CHECK(ok, name);
        if (!ok)
            printf("#   rc %d error: %s\n", rc, err);
        smtp_clients_cleanup(&c);
    }
}

/* the passwords leave the environment once loaded, read or not */
static void test_secrets_leave_env(void)
{
    static const struct {
        const char *name;
        const char *vars[6];
    } rows[] = {
        {"CUSTOM",
         {"CHOOSEN_SMTP_CLIENT_TYPE=CUSTOM", "SMTP_HOST=127.0.0.1", "SMTP_USERNAME=u",
          "SMTP_PASSWORD=s3cret-pw", "GMAIL_SMTP_APP_PASSWORD=s3cret-pw"}},
        {"GOOGLE",
         {"CHOOSEN_SMTP_CLIENT_TYPE=GOOGLE", "GMAIL_SMTP_USERNAME=u",
          "GMAIL_SMTP_APP_PASSWORD_FILE=$T/gmail-pw", "SMTP_PASSWORD=s3cret-pw"}},
        {"SMTP_CLIENTS_FILE",
         {"SMTP_CLIENTS_FILE=$T/clear.json", "SMTP_PASSWORD=s3cret-pw",
          "GMAIL_SMTP_APP_PASSWORD=s3cret-pw"}},
        {"a refused configuration", {"CHOOSEN_SMTP_CLIENT_TYPE=CUSTOM", "SMTP_PASSWORD=s3cret-pw"}},
    };
    char err[512], name[256];
    free(write_file("clear.json", "[{\"name\":\"m\",\"type\":\"MAILPIT\"}]"));
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        set_vars(rows[i].vars);
        struct smtp_clients c;
        smtp_clients_load(&c, err, sizeof err);
        snprintf(name, sizeof name, "%s: no password variable left in the environment",
                 rows[i].name);
        CHECK(!getenv("SMTP_PASSWORD") && !getenv("GMAIL_SMTP_APP_PASSWORD") &&
                  !getenv("GMAIL_SMTP_APP_PASSWORD_FILE"),
              name);
        smtp_clients_cleanup(&c);
    }
}

/* ---- registry and open() checks ------------------------------------------------ */

static void test_registry(void)
{
    CHECK(smtp_client_ops_find("GOOGLE") == &smtp_gmail_ops, "registry: GOOGLE");
    CHECK(smtp_client_ops_find("mailpit") == &smtp_mailpit_ops, "registry: mailpit (any case)");
    CHECK(smtp_client_ops_find("Custom") == &smtp_custom_ops, "registry: Custom");
    CHECK(smtp_client_ops_find("DRYRUN") == &smtp_dryrun_ops, "registry: DRYRUN");
    CHECK(smtp_client_ops_find("SES") == NULL && smtp_client_ops_find(NULL) == NULL,
          "registry: unknown and NULL");
    const struct smtp_client_ops *all[] = {&smtp_gmail_ops, &smtp_mailpit_ops, &smtp_custom_ops,
                                           &smtp_dryrun_ops};
    bool full = true;
    for (size_t i = 0; i < 4; i++)
        full =
            full && all[i]->type && all[i]->open && all[i]->send && all[i]->close && all[i]->probe;
    CHECK(full, "registry: every ops is complete");
}

static void test_open_checks(void)
{
    char err[256], *ca = xasprintf("%s/nope.pem", tmpdir);
    struct smtp_settings s = {.name = "t", .host = "127.0.0.1", .port = 25};
    void *h;

    s.host = "bad host";
    h = smtp_custom_ops.open(&s, err, sizeof err);
    CHECK(!h && contains(err, "host"), "open: CUSTOM refuses a host with a space");
    s.host = "127.0.0.1";
    s.port = 0;
    h = smtp_custom_ops.open(&s, err, sizeof err);
    CHECK(!h && contains(err, "port"), "open: CUSTOM refuses port 0");
    s.port = 25;
    s.username = "u";
    h = smtp_custom_ops.open(&s, err, sizeof err);
    CHECK(!h && contains(err, "password"), "open: username without password");
    s.username = NULL;
    s.tls = SMTP_TLS_STARTTLS;
    s.ca_file = ca;
    h = smtp_custom_ops.open(&s, err, sizeof err);
    CHECK(!h && contains(err, "CA file") && contains(err, "nope.pem"),
          "open: an unreadable CA file fails open()");
    s.ca_file = NULL;
    s.tls = SMTP_TLS_NONE;
    h = smtp_gmail_ops.open(&s, err, sizeof err);
    CHECK(!h && contains(err, "TLS"), "open: GOOGLE refuses tls=none");
    s.tls = SMTP_TLS_STARTTLS;
    h = smtp_gmail_ops.open(&s, err, sizeof err);
    CHECK(!h && contains(err, "username"), "open: GOOGLE requires a username");
    s.helo = "two words";
    h = smtp_mailpit_ops.open(&s, err, sizeof err);
    CHECK(!h && contains(err, "EHLO"), "open: EHLO name with a space");
    s.helo = NULL;
    h = smtp_mailpit_ops.open(&s, err, sizeof err);
    CHECK(h != NULL, "open: MAILPIT ignores tls/auth settings, no network yet");
    smtp_mailpit_ops.close(h);
    smtp_custom_ops.close(NULL);
    CHECK(1, "close(NULL) is a no-op");

    /* a closed port: every message TEMPFAIL with code 0 and a clear text */
    s.tls = SMTP_TLS_NONE;
    s.port = 1;
    s.connect_timeout_ms = 2000;
    h = smtp_custom_ops.open(&s, err, sizeof err);
    struct smtp_envelope env[2] = {{"a@b.example", "c@d.example", "Subject: x\r\n\r\nx\r\n", 17},
                                   {"a@b.example", "c@d.example", "x", 1}};
    struct smtp_result res[2];
    if (h) {
        smtp_custom_ops.send(h, env, 2, res);
        CHECK(res[0].outcome == SMTP_TEMPFAIL && res[0].code == 0 &&
                  contains(res[0].text, "connect to 127.0.0.1:1 failed") &&
                  res[1].outcome == SMTP_TEMPFAIL && !strcmp(res[0].text, res[1].text),
              "send: connection refused -> TEMPFAIL code 0 for the batch");
        printf("#   %s\n", res[0].text);
        /* an envelope that would inject a command fails alone, before any I/O */
        env[0].rcpt = "c@d.example>\r\nRCPT TO:<x@y.example";
        smtp_custom_ops.send(h, env, 1, res);
        CHECK(res[0].outcome == SMTP_PERMFAIL && res[0].code == 0 &&
                  contains(res[0].text, "recipient"),
              "send: CR/LF in a recipient -> PERMFAIL, nothing sent");
        smtp_custom_ops.close(h);
    } else {
        CHECK(0, "open CUSTOM for 127.0.0.1:1");
    }
    free(ca);
}

/* ---- DRYRUN ----------------------------------------------------------------- */

static int count_dir(const char *dir, const char *suffix, bool hidden)
{
    DIR *d = opendir(dir);
    int n = 0;
    if (!d)
        return -1;
    for (struct dirent *e; (e = readdir(d));) {
        size_t l = strlen(e->d_name), sl = strlen(suffix);
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if ((e->d_name[0] == '.') != hidden)
            continue;
        if (l >= sl && !strcmp(e->d_name + l - sl, suffix))
            n++;
    }
    closedir(d);
    return n;
}

static void test_dryrun(void)
{
    char err[256], *dir = xasprintf("%s/spool/a/b", tmpdir);
    struct smtp_settings s = {.name = "dry", .spool_dir = dir};
    CHECK(smtp_dryrun_ops.probe(&s, err, sizeof err) == 0, "dryrun: probe creates the spool dir");
    void *h = smtp_dryrun_ops.open(&s, err, sizeof err);
    CHECK(h != NULL, "dryrun: open");
    if (!h)
        goto out;
    struct smtp_envelope env[3] = {
        {"a@b.example", "c@d.example", "Subject: one\r\n\r\nbody\r\n", 23},
        {"", "e@f.example", "Subject: two\r\n\r\nno final newline", 32},
        {"a@b.example", "bad\r\n@x", "x", 1},
    };
    struct smtp_result res[3];
    smtp_dryrun_ops.send(h, env, 3, res);
    CHECK(res[0].outcome == SMTP_SENT && res[0].code == 250 && !strcmp(res[0].enhanced, "2.0.0") &&
              contains(res[0].text, ".eml"),
          "dryrun: SENT 250 2.0.0 with the file name");
    CHECK(res[1].outcome == SMTP_SENT, "dryrun: null sender accepted");
    CHECK(res[2].outcome == SMTP_PERMFAIL, "dryrun: a bad recipient is PERMFAIL");
    CHECK_INT(count_dir(dir, ".eml", false), 2, "dryrun: two .eml files");
    CHECK_INT(count_dir(dir, ".tmp", true), 0, "dryrun: no temporary file left");
    smtp_dryrun_ops.close(h);
    s.spool_dir = "/proc/no/such/dir";
    CHECK(smtp_dryrun_ops.open(&s, err, sizeof err) == NULL && contains(err, "/proc/no/such/dir"),
          "dryrun: an unusable spool dir fails open()");
out:
    free(dir);
}

/* ---- engine helpers ------------------------------------------------------------ */

struct wire_case {
    const char *in, *out;
};

static const struct wire_case wire_cases[] = {
    {"a\r\nb\r\n", "a\r\nb\r\n.\r\n"},
    {".x\r\n", "..x\r\n.\r\n"},
    {"a\r\n.\r\nb", "a\r\n..\r\nb\r\n.\r\n"},
    {"a\nb\n", "a\r\nb\r\n.\r\n"},
    {"", ".\r\n"},
    {"abc", "abc\r\n.\r\n"},
    {"abc\r", "abc\r\n.\r\n"},
    {"x\r\n..y\r\n", "x\r\n...y\r\n.\r\n"},
    {"a.b\r\n. \r\n", "a.b\r\n.. \r\n.\r\n"},
    {".\n.", "..\r\n..\r\n.\r\n"},
    {"\r\n\r\n", "\r\n\r\n.\r\n"},
    {"\n\n", "\r\n\r\n.\r\n"},
    {"a\r\r\nb", "a\r\r\nb\r\n.\r\n"},
    {".\r\n.\r\n.", "..\r\n..\r\n..\r\n.\r\n"},
    {"ab\ncd\r\n.e\nf", "ab\r\ncd\r\n..e\r\nf\r\n.\r\n"},
    {"x\r\n\n.\n", "x\r\n\r\n..\r\n.\r\n"},
    {"a. b .\r\nc.", "a. b .\r\nc.\r\n.\r\n"},
};

static void test_wire(void)
{
    char name[128];
    for (size_t i = 0; i < sizeof wire_cases / sizeof wire_cases[0]; i++) {
        struct buf b;
        buf_init(&b, 1024);
        int rc = smtp_wire_data(&b, wire_cases[i].in, strlen(wire_cases[i].in));
        snprintf(name, sizeof name, "wire: case %zu", i);
        CHECK(rc == 0 && b.len == strlen(wire_cases[i].out) &&
                  !memcmp(b.data, wire_cases[i].out, b.len),
              name);
        buf_cleanup(&b);
    }
    struct buf b;
    buf_init(&b, 8);
    CHECK(smtp_wire_data(&b, "0123456789", 10) == -1, "wire: over the cap fails");
    buf_cleanup(&b);
}

struct line_case {
    const char *line;
    int rc, code;
    bool last;
    const char *text;
};

static const struct line_case line_cases[] = {
    {"250 ok", 0, 250, true, "ok"},
    {"250-PIPELINING", 0, 250, false, "PIPELINING"},
    {"354", 0, 354, true, ""},
    {"535 5.7.8 Authentication credentials invalid", 0, 535, true,
     "5.7.8 Authentication credentials invalid"},
    {"25", -1, 0, false, NULL},
    {"2500 x", -1, 0, false, NULL},
    {"abc def", -1, 0, false, NULL},
    {"150 x", -1, 0, false, NULL},
    {"600 x", -1, 0, false, NULL},
    {"", -1, 0, false, NULL},
};

struct enh_case {
    int code;
    const char *text, *want;
    size_t skip;
};

static const struct enh_case enh_cases[] = {
    {550, "5.1.1 User unknown", "5.1.1", 6},
    {550, "4.1.1 x", "", 0},
    {250, "2.0.0", "2.0.0", 5},
    {250, "2.0.0x", "", 0},
    {250, "2.1234.0 x", "", 0},
    {421, "4.4.2 bye", "4.4.2", 6},
    {250, "Ok", "", 0},
    {450, "4.7.10 greylisted", "4.7.10", 7},
    {535, "5.7.8 Auth", "5.7.8", 6},
    {250, "2..0 x", "", 0},
    {550, "5.100.999 long", "5.100.999", 10},
};

static void test_reply_parse(void)
{
    char name[128];
    for (size_t i = 0; i < sizeof line_cases / sizeof line_cases[0]; i++) {
        const struct line_case *tc = &line_cases[i];
        int code = 0;
        bool last = false;
        const char *text = NULL;
        int rc = smtp_reply_line(tc->line, strlen(tc->line), &code, &last, &text);
        snprintf(name, sizeof name, "reply line: '%s'", tc->line);
        CHECK(rc == tc->rc &&
                  (rc < 0 || (code == tc->code && last == tc->last && !strcmp(text, tc->text))),
              name);
    }
    for (size_t i = 0; i < sizeof enh_cases / sizeof enh_cases[0]; i++) {
        const struct enh_case *tc = &enh_cases[i];
        char out[16];
        size_t skip = smtp_enhanced_code(tc->code, tc->text, strlen(tc->text), out);
        snprintf(name, sizeof name, "enhanced code: %d '%s'", tc->code, tc->text);
        CHECK(!strcmp(out, tc->want) && skip == tc->skip, name);
    }
    char long_addr[600];
    memset(long_addr, 'a', sizeof long_addr - 1);
    long_addr[sizeof long_addr - 1] = '\0';
    CHECK(smtp_addr_ok("a@b.example", false), "addr: plain address");
    CHECK(smtp_addr_ok("", true) && !smtp_addr_ok("", false), "addr: empty only as sender");
    CHECK(smtp_addr_ok("\"a b\"@c.example", false), "addr: quoted local part with a space");
    CHECK(!smtp_addr_ok("a\r\n@b", false) && !smtp_addr_ok("a\t@b", false),
          "addr: control characters refused");
    CHECK(!smtp_addr_ok("<a@b>", false), "addr: angle brackets refused");
    CHECK(!smtp_addr_ok(long_addr, false), "addr: over 512 bytes refused");
    CHECK(!smtp_addr_ok(NULL, true), "addr: NULL refused");
}

int main(void)
{
    log_init(LOG_NONE, LOG_TEXT, "test");
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_smtp_clients.XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    free(write_file("gmail-pw", "app pass word\n"));
    free(write_file("ca.pem", "not really a CA, only readable\n"));

    test_env();
    test_file_good();
    test_file_bad();
    test_cleartext_file();
    test_secrets_leave_env();
    test_registry();
    test_open_checks();
    test_dryrun();
    test_wire();
    test_reply_parse();

    clear_env();
    char *cmd = xasprintf("rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        printf("# could not remove %s\n", tmpdir);
    free(cmd);
    return test_done();
}
