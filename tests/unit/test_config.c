/* test_config.c - config_* from the environment: NAME, NAME_FILE, types,
 * error messages (never echoing string values) and the fatal variants;
 * secrets leaving the environment (also /proc/self/environ), the loopback
 * rule, and the Kafka security settings (kafka_security_load). */
#include "config.h"
#include "kafka.h"
#include "test.h"
#include "xalloc.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char *tmp_paths[32];
static size_t ntmp;

/* write_temp - a temp file holding len bytes of data; path freed at exit */
static const char *write_temp(const char *data, size_t len)
{
    char *path = xstrdup("/tmp/test_config_XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0 || write(fd, data, len) != (ssize_t)len) {
        perror("mkstemp/write");
        exit(1);
    }
    close(fd);
    if (ntmp == sizeof tmp_paths / sizeof tmp_paths[0])
        exit(1);
    tmp_paths[ntmp++] = path;
    return path;
}

static void cleanup_temps(void)
{
    for (size_t i = 0; i < ntmp; i++) {
        unlink(tmp_paths[i]);
        free(tmp_paths[i]);
    }
}

/* set_env - NAME and NAME_FILE to the given values (NULL unsets) */
static void set_env(const char *name, const char *val, const char *file)
{
    char file_var[128];
    snprintf(file_var, sizeof file_var, "%s_FILE", name);
    if (val)
        setenv(name, val, 1);
    else
        unsetenv(name);
    if (file)
        setenv(file_var, file, 1);
    else
        unsetenv(file_var);
}

static bool contains(const char *hay, const char *needle)
{
    return hay && needle && strstr(hay, needle) != NULL;
}

/* file contents -> value, one row per case */
static void test_str_file(void)
{
    static const struct {
        const char *name;
        const char *data;
        size_t len;
        const char *want; /* NULL: the default (NULL) */
    } rows[] = {
        {"file: no newline", "s3cret", 6, "s3cret"},
        {"file: LF stripped", "s3cret\n", 7, "s3cret"},
        {"file: CRLF stripped", "s3cret\r\n", 8, "s3cret"},
        {"file: only one LF stripped", "s3cret\n\n", 8, "s3cret\n"},
        {"file: lone CR kept", "s3cret\r", 7, "s3cret\r"},
        {"file: inner newline kept", "a\nb\n", 4, "a\nb"},
        {"file: empty file is unset", "", 0, NULL},
        {"file: lone LF is unset", "\n", 1, NULL},
        {"file: lone CRLF is unset", "\r\n", 2, NULL},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char err[256] = "";
        char *v = (char *)"untouched";
        set_env("CFG_S", NULL, write_temp(rows[i].data, rows[i].len));
        int rc = config_get_str("CFG_S", NULL, &v, err, sizeof err);
        CHECK_INT(rc, 0, rows[i].name);
        CHECK_STR(v, rows[i].want, rows[i].name);
        free(v);
    }
}

static void test_str(void)
{
    char err[256];
    char *v;

    set_env("CFG_S", NULL, NULL);
    CHECK_INT(config_get_str("CFG_S", "dflt", &v, err, sizeof err), 0, "str unset: ok");
    CHECK_STR(v, "dflt", "str unset: default copied");
    free(v);
    v = (char *)"untouched";
    CHECK_INT(config_get_str("CFG_S", NULL, &v, err, sizeof err), 0, "str unset, no default: ok");
    CHECK(v == NULL, "str unset, no default: NULL");

    set_env("CFG_S", "hello world", NULL);
    CHECK_INT(config_get_str("CFG_S", "dflt", &v, err, sizeof err), 0, "str set: ok");
    CHECK_STR(v, "hello world", "str set: value");
    free(v);

    set_env("CFG_S", "", NULL);
    CHECK_INT(config_get_str("CFG_S", "dflt", &v, err, sizeof err), 0, "str empty: ok");
    CHECK_STR(v, "dflt", "str empty counts as unset");
    free(v);

    set_env("CFG_S", NULL, "");
    CHECK_INT(config_get_str("CFG_S", "dflt", &v, err, sizeof err), 0, "str empty _FILE: ok");
    CHECK_STR(v, "dflt", "str empty _FILE counts as unset");
    free(v);

    test_str_file();

    /* empty NAME does not conflict with NAME_FILE */
    set_env("CFG_S", "", write_temp("fromfile\n", 9));
    CHECK_INT(config_get_str("CFG_S", NULL, &v, err, sizeof err), 0, "empty NAME + _FILE: ok");
    CHECK_STR(v, "fromfile", "empty NAME + _FILE: file wins");
    free(v);

    /* both set */
    v = (char *)"untouched";
    set_env("CFG_S", "s3cret-env", write_temp("s3cret-file", 11));
    CHECK_INT(config_get_str("CFG_S", "dflt", &v, err, sizeof err), -1, "both set: error");
    CHECK(contains(err, "CFG_S") && contains(err, "CFG_S_FILE"), "both set: names both variables");
    CHECK(!contains(err, "s3cret"), "both set: value not echoed");
    CHECK(v == NULL, "both set: *out NULL");

    /* unreadable: missing file, directory */
    set_env("CFG_S", NULL, "/nonexistent/dir/secret.txt");
    CHECK_INT(config_get_str("CFG_S", "dflt", &v, err, sizeof err), -1, "missing file: error");
    CHECK(contains(err, "CFG_S_FILE") && contains(err, "/nonexistent/dir/secret.txt"),
          "missing file: names variable and path");
    CHECK(contains(err, "No such file"), "missing file: says why");
    set_env("CFG_S", NULL, "/tmp");
    CHECK_INT(config_get_str("CFG_S", "dflt", &v, err, sizeof err), -1, "directory: error");
    CHECK(contains(err, "CFG_S_FILE") && contains(err, "'/tmp'"),
          "directory: names variable and path");

    /* NUL byte in the file */
    set_env("CFG_S", NULL, write_temp("s3cret\0tail", 11));
    CHECK_INT(config_get_str("CFG_S", NULL, &v, err, sizeof err), -1, "NUL in file: error");
    CHECK(contains(err, "NUL") && !contains(err, "s3cret"), "NUL in file: no value echoed");

    /* 64 KiB limit, file and environment */
    size_t max = (size_t)64 * 1024;
    char *big = xmalloc(max + 3);
    memset(big, 'k', max + 2);
    big[max] = '\r';
    big[max + 1] = '\n';
    big[max + 2] = '\0';
    set_env("CFG_S", NULL, write_temp(big, max + 2));
    CHECK_INT(config_get_str("CFG_S", NULL, &v, err, sizeof err), 0, "file 64 KiB + CRLF: ok");
    CHECK_INT(v ? strlen(v) : 0, max, "file 64 KiB + CRLF: length");
    free(v);
    memset(big, 'k', max + 2);
    set_env("CFG_S", NULL, write_temp(big, max + 1));
    CHECK_INT(config_get_str("CFG_S", NULL, &v, err, sizeof err), -1, "file 64 KiB + 1: error");
    CHECK(contains(err, "CFG_S_FILE") && !contains(err, "kkkk"), "file too big: no value echoed");
    big[max] = '\0';
    set_env("CFG_S", big, NULL);
    CHECK_INT(config_get_str("CFG_S", NULL, &v, err, sizeof err), 0, "env 64 KiB: ok");
    free(v);
    big[max] = 'k';
    big[max + 1] = '\0';
    set_env("CFG_S", big, NULL);
    CHECK_INT(config_get_str("CFG_S", NULL, &v, err, sizeof err), -1, "env 64 KiB + 1: error");
    CHECK(contains(err, "CFG_S:") && !contains(err, "kkkk"), "env too big: no value echoed");
    free(big);
    set_env("CFG_S", NULL, NULL);
}

static void test_long(void)
{
    static const struct {
        const char *name;
        const char *value; /* NULL: unset */
        long min, max;
        int rc;
        long want;
    } rows[] = {
        {"long unset: default", NULL, 1, 256, 0, 8},
        {"long empty: default", "", 1, 256, 0, 8},
        {"long set", "42", 1, 256, 0, 42},
        {"long min edge", "1", 1, 256, 0, 1},
        {"long max edge", "256", 1, 256, 0, 256},
        {"long plus sign", "+7", 1, 256, 0, 7},
        {"long negative allowed", "-5", -10, 10, 0, -5},
        {"long LONG_MAX", "9223372036854775807", 0, LONG_MAX, 0, LONG_MAX},
        {"long LONG_MIN", "-9223372036854775808", LONG_MIN, 0, 0, LONG_MIN},
        {"long not a number", "abc", 1, 256, -1, 0},
        {"long overflow", "99999999999999999999", 1, LONG_MAX, -1, 0},
        {"long underflow", "-99999999999999999999", LONG_MIN, 0, -1, 0},
        {"long below range", "0", 1, 256, -1, 0},
        {"long above range", "257", 1, 256, -1, 0},
        {"long negative out of range", "-1", 0, 256, -1, 0},
        {"long hex", "0x10", 1, 256, -1, 0},
        {"long trailing garbage", "12abc", 1, 256, -1, 0},
        {"long trailing space", "12 ", 1, 256, -1, 0},
        {"long leading space", " 12", 1, 256, -1, 0},
        {"long decimal point", "1.5", 1, 256, -1, 0},
        {"long sign only", "-", -10, 10, -1, 0},
        {"long double sign", "--1", -10, 10, -1, 0},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char err[256] = "";
        long v = 8;
        set_env("CFG_N", rows[i].value, NULL);
        int rc = config_get_long("CFG_N", 8, rows[i].min, rows[i].max, &v, err, sizeof err);
        CHECK_INT(rc, rows[i].rc, rows[i].name);
        if (rows[i].rc == 0)
            CHECK_INT(v, rows[i].want, rows[i].name);
        else
            CHECK(contains(err, "CFG_N: must be an integer between"), rows[i].name);
    }

    char err[256];
    long v;
    set_env("CFG_N", "abc", NULL);
    config_get_long("CFG_N", 8, 1, 256, &v, err, sizeof err);
    CHECK_STR(err, "CFG_N: must be an integer between 1 and 256, got 'abc'", "long: exact message");

    set_env("CFG_N", "1\n2", NULL);
    config_get_long("CFG_N", 8, 1, 256, &v, err, sizeof err);
    CHECK(contains(err, "got '1?2'"), "long: control characters not echoed raw");

    set_env("CFG_N", "123456789012345678901234567890123456789012345678901234567890", NULL);
    config_get_long("CFG_N", 8, 1, 256, &v, err, sizeof err);
    CHECK(contains(err, "got '12345678901234567890123456789012...'"), "long: long value cut");

    char small[8];
    CHECK_INT(config_get_long("CFG_N", 8, 1, 256, &v, small, sizeof small), -1,
              "long: small errbuf still fails");
    CHECK_STR(small, "CFG_N: ", "long: small errbuf truncated and terminated");

    set_env("CFG_N", NULL, write_temp("17\r\n", 4));
    CHECK_INT(config_get_long("CFG_N", 8, 1, 256, &v, err, sizeof err), 0, "long _FILE: ok");
    CHECK_INT(v, 17, "long _FILE: CRLF stripped");

    set_env("CFG_N", "3", "/nonexistent");
    CHECK_INT(config_get_long("CFG_N", 8, 1, 256, &v, err, sizeof err), -1, "long both set");
    set_env("CFG_N", NULL, NULL);
}

static void test_bool(void)
{
    static const struct {
        const char *value;
        bool def;
        int rc;
        bool want;
    } rows[] = {
        {NULL, true, 0, true},     {NULL, false, 0, false},  {"", true, 0, true},
        {"true", false, 0, true},  {"TRUE", false, 0, true}, {"1", false, 0, true},
        {"yes", false, 0, true},   {"On", false, 0, true},   {"false", true, 0, false},
        {"False", true, 0, false}, {"0", true, 0, false},    {"NO", true, 0, false},
        {"off", true, 0, false},   {"maybe", true, -1, 0},   {"2", true, -1, 0},
        {"tru", true, -1, 0},      {" true", true, -1, 0},   {"true ", true, -1, 0},
        {"yesno", true, -1, 0},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char name[64], err[256] = "";
        bool v = !rows[i].want;
        snprintf(name, sizeof name, "bool '%s' def %d", rows[i].value ? rows[i].value : "(unset)",
                 rows[i].def);
        set_env("CFG_B", rows[i].value, NULL);
        int rc = config_get_bool("CFG_B", rows[i].def, &v, err, sizeof err);
        CHECK_INT(rc, rows[i].rc, name);
        if (rows[i].rc == 0)
            CHECK(v == rows[i].want, name);
        else
            CHECK(contains(err, "CFG_B: must be one of true/false"), name);
    }
    set_env("CFG_B", NULL, NULL);
}

static void test_enum(void)
{
    static const char *const levels[] = {"debug", "info", "warn", "error", NULL};
    static const struct {
        const char *name;
        const char *value;
        const char *def;
        int rc;
        int want;
        const char *err;
    } rows[] = {
        {"enum exact", "info", "warn", 0, 1, NULL},
        {"enum upper case", "INFO", "warn", 0, 1, NULL},
        {"enum mixed case", "Error", "warn", 0, 3, NULL},
        {"enum unset: default", NULL, "warn", 0, 2, NULL},
        {"enum empty: default", "", "debug", 0, 0, NULL},
        {"enum default case-insensitive", NULL, "WARN", 0, 2, NULL},
        {"enum bad choice", "verbose", "warn", -1, 0,
         "CFG_E: 'verbose' is not one of debug, info, warn, error"},
        {"enum prefix is not a match", "inf", "warn", -1, 0,
         "CFG_E: 'inf' is not one of debug, info, warn, error"},
        {"enum unset, no default", NULL, NULL, -1, 0,
         "CFG_E: is required, one of debug, info, warn, error"},
        {"enum bad default", NULL, "loud", -1, 0,
         "CFG_E: default 'loud' is not one of debug, info, warn, error"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char err[256] = "";
        int v = -7;
        set_env("CFG_E", rows[i].value, NULL);
        int rc = config_get_enum("CFG_E", rows[i].def, levels, &v, err, sizeof err);
        CHECK_INT(rc, rows[i].rc, rows[i].name);
        if (rows[i].rc == 0)
            CHECK_INT(v, rows[i].want, rows[i].name);
        else
            CHECK_STR(err, rows[i].err, rows[i].name);
    }
    set_env("CFG_E", NULL, NULL);
}

/* run_child - fork, run fn with stderr captured; exit status and output */
static int run_child(void (*fn)(void), char *out, size_t outlen)
{
    int pfd[2];
    if (pipe(pfd) < 0)
        exit(1);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(pfd[1], 2);
        close(pfd[0]);
        fn();
        _exit(0);
    }
    close(pfd[1]);
    size_t n = 0;
    ssize_t r;
    while (n + 1 < outlen && (r = read(pfd[0], out + n, outlen - 1 - n)) > 0)
        n += (size_t)r;
    out[n] = '\0';
    close(pfd[0]);
    int status;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void fatal_long(void)
{
    config_long("CFG_N", 8, 1, 256);
}

static void fatal_str(void)
{
    config_str("CFG_S", NULL);
}

static void fatal_enum(void)
{
    static const char *const modes[] = {"mock", "imap", NULL};
    config_enum("CFG_E", "mock", modes);
}

static void fatal_bool(void)
{
    config_bool("CFG_B", false);
}

static void test_fatal(void)
{
    static const char *const modes[] = {"mock", "imap", NULL};
    char out[2048];

    set_env("CFG_N", "64", NULL);
    CHECK_INT(config_long("CFG_N", 8, 1, 256), 64, "config_long: value");
    set_env("CFG_B", "yes", NULL);
    CHECK(config_bool("CFG_B", false), "config_bool: value");
    set_env("CFG_E", "IMAP", NULL);
    CHECK_INT(config_enum("CFG_E", "mock", modes), 1, "config_enum: value");
    set_env("CFG_S", "v", NULL);
    char *s = config_str("CFG_S", NULL);
    CHECK_STR(s, "v", "config_str: value");
    free(s);

    set_env("CFG_N", "lots", NULL);
    CHECK_INT(run_child(fatal_long, out, sizeof out), 2, "config_long fatal: exit 2");
    CHECK(contains(out, "config: CFG_N: must be an integer between 1 and 256, got 'lots'"),
          "config_long fatal: one clear line");
    CHECK(strchr(out, '\n') == out + strlen(out) - 1, "config_long fatal: exactly one line");

    set_env("CFG_S", "hunter2", write_temp("hunter3", 7));
    CHECK_INT(run_child(fatal_str, out, sizeof out), 2, "config_str fatal: exit 2");
    CHECK(contains(out, "config: CFG_S: both"), "config_str fatal: message");
    CHECK(!contains(out, "hunter"), "config_str fatal: secret not logged");

    set_env("CFG_E", "pop3", NULL);
    CHECK_INT(run_child(fatal_enum, out, sizeof out), 2, "config_enum fatal: exit 2");
    CHECK(contains(out, "config: CFG_E: 'pop3' is not one of mock, imap"),
          "config_enum fatal: message");

    set_env("CFG_B", "perhaps", NULL);
    CHECK_INT(run_child(fatal_bool, out, sizeof out), 2, "config_bool fatal: exit 2");
    CHECK(contains(out, "config: CFG_B: must be one of"), "config_bool fatal: message");

    set_env("CFG_N", NULL, NULL);
    set_env("CFG_S", NULL, NULL);
    set_env("CFG_E", NULL, NULL);
    set_env("CFG_B", NULL, NULL);
}

/* ---- secrets ---------------------------------------------------------- */

static void test_secret(void)
{
    char err[256], *v = NULL;

    setenv("CFG_SECRET", "tok-123", 1);
    char *where = getenv("CFG_SECRET"); /* setenv's copy: glibc never frees it */
    CHECK_INT(config_get_secret("CFG_SECRET", &v, err, sizeof err), 0, "secret: read");
    CHECK_STR(v, "tok-123", "secret: value");
    CHECK(getenv("CFG_SECRET") == NULL, "secret: NAME gone from the environment");
    CHECK(where && where[0] == '\0', "secret: the value is overwritten where it was");
    free(v);

    set_env("CFG_SECRET", NULL, write_temp("tok-456\n", 8));
    CHECK_INT(config_get_secret("CFG_SECRET", &v, err, sizeof err), 0, "secret file: read");
    CHECK_STR(v, "tok-456", "secret file: value");
    CHECK(getenv("CFG_SECRET_FILE") == NULL, "secret file: NAME_FILE gone");
    free(v);

    set_env("CFG_SECRET", "tok-789", write_temp("tok-000", 7));
    CHECK_INT(config_get_secret("CFG_SECRET", &v, err, sizeof err), -1, "secret: both is an error");
    CHECK(!getenv("CFG_SECRET") && !getenv("CFG_SECRET_FILE"),
          "secret: both gone after an error too");
    CHECK(!contains(err, "tok-"), "secret: error without the value");

    CHECK_INT(config_get_secret("CFG_SECRET", &v, err, sizeof err), 0, "secret: unset reads 0");
    CHECK(v == NULL, "secret: unset is NULL");

    set_env("CFG_SECRET", "tok-drop", "/nonexistent");
    config_drop_secret("CFG_SECRET");
    CHECK(!getenv("CFG_SECRET") && !getenv("CFG_SECRET_FILE"), "drop_secret: both gone");
}

/* environ_child - in a process started with CFG_INITIAL_SECRET in its
 * initial environment: after the read, /proc/self/environ must not hold
 * the value (unsetenv alone leaves it there) */
static int environ_child(void)
{
    char err[256], *v = NULL, buf[65536];
    if (config_get_secret("CFG_INITIAL_SECRET", &v, err, sizeof err) != 0 || !v ||
        strcmp(v, "tok-initial-42") != 0)
        return 3;
    free(v);
    FILE *f = fopen("/proc/self/environ", "r");
    if (!f)
        return 4;
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    for (size_t i = 0; i + 14 <= n; i++)
        if (memcmp(buf + i, "tok-initial-42", 14) == 0)
            return 1;
    return 0;
}

static void test_proc_environ(const char *self)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        char *argv[] = {(char *)self, "--environ-child", NULL};
        char *envp[] = {"CFG_INITIAL_SECRET=tok-initial-42", "CFG_OTHER=x", NULL};
        execve(self, argv, envp);
        _exit(5);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "secret: gone from /proc/self/environ after the read");
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        printf("#   child status %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

static void test_loopback(void)
{
    static const struct {
        const char *host;
        bool want;
    } rows[] = {
        {"localhost", true},
        {"LocalHost", true},
        {"127.0.0.1", true},
        {"127.255.0.9", true},
        {"::1", true},
        {"0:0:0:0:0:0:0:1", true},
        {"128.0.0.1", false},
        {"10.0.0.1", false},
        {"::2", false},
        {"localhost.", false},
        {"mail.example.invalid", false},
        {"", false},
        {"localhost:25", false},
        {"[::1]", false},
    };
    char name[128];
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        snprintf(name, sizeof name, "loopback: '%s' -> %s", rows[i].host,
                 rows[i].want ? "yes" : "no");
        CHECK(config_host_is_loopback(rows[i].host) == rows[i].want, name);
    }
    CHECK(!config_host_is_loopback(NULL), "loopback: NULL -> no");
}

/* ---- Kafka security ------------------------------------------------------- */

static const char *const kafka_vars[] = {"KAFKA_SECURITY_PROTOCOL", "KAFKA_SASL_MECHANISM",
                                         "KAFKA_SASL_USERNAME",     "KAFKA_SASL_PASSWORD",
                                         "KAFKA_CA_FILE",           NULL};

static void test_kafka_security(void)
{
    const char *ca = write_temp("not a PEM, only readable\n", 25);
    const struct {
        const char *name;
        const char *vals[5]; /* in kafka_vars order; NULL unset */
        const char *brokers;
        const char *err;  /* substring of the error; NULL: loads */
        const char *conf; /* the pairs as "k=v k=v", password shown as *** */
    } rows[] = {
        {"nothing set", {NULL}, "127.0.0.1:9092", NULL, "security.protocol=plaintext"},
        {"PLAINTEXT",
         {"PLAINTEXT"},
         "broker.example.invalid:9092",
         NULL,
         "security.protocol=plaintext"},
        {"bogus protocol", {"bogus"}, "127.0.0.1:1", "KAFKA_SECURITY_PROTOCOL", NULL},
        {"SASL_PLAINTEXT PLAIN on loopback",
         {"SASL_PLAINTEXT", "PLAIN", "svc", "s3cret-pw"},
         "127.0.0.1:9092,localhost:9093,[::1]:9094",
         NULL,
         "security.protocol=sasl_plaintext sasl.mechanisms=PLAIN sasl.username=svc "
         "sasl.password=***"},
        {"mechanism defaults to PLAIN",
         {"sasl_plaintext", NULL, "svc", "s3cret-pw"},
         "localhost:9092",
         NULL,
         "security.protocol=sasl_plaintext sasl.mechanisms=PLAIN sasl.username=svc "
         "sasl.password=***"},
        {"SASL_PLAINTEXT PLAIN to a remote broker",
         {"SASL_PLAINTEXT", "PLAIN", "svc", "s3cret-pw"},
         "127.0.0.1:9092,broker.example.invalid:9092",
         "KAFKA_SECURITY_PROTOCOL",
         NULL},
        {"SASL_PLAINTEXT PLAIN to a remote broker with a scheme",
         {"SASL_PLAINTEXT", NULL, "svc", "s3cret-pw"},
         "SASL_PLAINTEXT://10.1.2.3:9092",
         "10.1.2.3",
         NULL},
        {"SASL_PLAINTEXT SCRAM to a remote broker",
         {"SASL_PLAINTEXT", "SCRAM-SHA-512", "svc", "s3cret-pw"},
         "broker.example.invalid:9092",
         NULL,
         "security.protocol=sasl_plaintext sasl.mechanisms=SCRAM-SHA-512 sasl.username=svc "
         "sasl.password=***"},
        {"SASL_SSL PLAIN to a remote broker with a CA",
         {"SASL_SSL", "PLAIN", "svc", "s3cret-pw", ca},
         "broker.example.invalid:9093",
         NULL,
         "security.protocol=sasl_ssl sasl.mechanisms=PLAIN sasl.username=svc "
         "sasl.password=*** ssl.ca.location=CA"},
        {"SSL without SASL", {"SSL"}, "broker.example.invalid:9093", NULL, "security.protocol=ssl"},
        {"unknown mechanism",
         {"SASL_SSL", "GSSAPI", "svc", "s3cret-pw"},
         "b:1",
         "KAFKA_SASL_MECHANISM",
         NULL},
        {"SASL without username",
         {"SASL_SSL", NULL, NULL, "s3cret-pw"},
         "b:1",
         "KAFKA_SASL_USERNAME",
         NULL},
        {"SASL without password", {"SASL_SSL", NULL, "svc"}, "b:1", "KAFKA_SASL_PASSWORD", NULL},
        {"password without SASL",
         {"SSL", NULL, NULL, "s3cret-pw"},
         "b:1",
         "KAFKA_SASL_PASSWORD",
         NULL},
        {"username without SASL", {NULL, NULL, "svc"}, "b:1", "KAFKA_SASL_USERNAME", NULL},
        {"CA file without TLS",
         {"SASL_PLAINTEXT", NULL, "svc", "s3cret-pw", ca},
         "127.0.0.1:1",
         "KAFKA_CA_FILE",
         NULL},
        {"CA file that does not exist",
         {"SSL", NULL, NULL, NULL, "/nonexistent/ca.pem"},
         "b:1",
         "KAFKA_CA_FILE",
         NULL},
    };
    char err[512], name[256];
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        for (size_t k = 0; kafka_vars[k]; k++)
            set_env(kafka_vars[k], rows[i].vals[k], NULL);
        struct kafka_security sec;
        err[0] = '\0';
        int rc = kafka_security_load(&sec, rows[i].brokers, err, sizeof err);
        snprintf(name, sizeof name, "kafka security: %s -> %s%s", rows[i].name,
                 rows[i].err ? "error naming " : "loads", rows[i].err ? rows[i].err : "");
        bool ok = rows[i].err ? rc == -1 && contains(err, rows[i].err) : rc == 0;
        CHECK(ok, name);
        if (!ok)
            printf("#   rc %d: %s\n", rc, err);
        snprintf(name, sizeof name,
                 "kafka security: %s: no password in the message or the "
                 "environment",
                 rows[i].name);
        CHECK(!contains(err, "s3cret-pw") && !getenv("KAFKA_SASL_PASSWORD"), name);
        if (rc == 0) {
            char got[512] = "";
            size_t n = 0;
            for (size_t k = 0; sec.conf[k]; k += 2) {
                const char *v = sec.conf[k + 1];
                if (!strcmp(sec.conf[k], "sasl.password"))
                    v = strcmp(v, "s3cret-pw") ? "WRONG" : "***";
                else if (!strcmp(sec.conf[k], "ssl.ca.location"))
                    v = strcmp(v, ca) ? "WRONG" : "CA";
                n += (size_t)snprintf(got + n, sizeof got - n, "%s%s=%s", k ? " " : "", sec.conf[k],
                                      v);
            }
            snprintf(name, sizeof name, "kafka security: %s: librdkafka settings", rows[i].name);
            CHECK_STR(got, rows[i].conf, name);
        }
        kafka_security_cleanup(&sec);
    }
    for (size_t k = 0; kafka_vars[k]; k++)
        set_env(kafka_vars[k], NULL, NULL);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--environ-child") == 0)
        return environ_child();
    test_str();
    test_long();
    test_bool();
    test_enum();
    test_fatal();
    test_secret();
    test_proc_environ(argv[0]);
    test_loopback();
    test_kafka_security();
    cleanup_temps();
    return test_done();
}
