/* kafka_check - drives the outbox publisher and the consumer wrapper
 * against a real broker for tests/integration/test_kafka.sh.
 *
 *   kafka_check add DB TOPIC N PREFIX
 *       N outbox rows in one transaction; prints each "KEY<TAB>VALUE"
 *   kafka_check count DB
 *       prints the number of rows in the outbox
 *   kafka_check produce DB BROKERS TOPIC N PREFIX [TIMEOUT_S] [options]
 *       starts the publisher, adds N rows (as add), notifies, and waits
 *       until the outbox is empty; rows on stdout, counts on stderr;
 *       exit 0 when empty, 1 on timeout
 *   kafka_check publish DB BROKERS [options]
 *       runs the publisher until SIGTERM/SIGINT (or --until-empty);
 *       prints "stats published=N failed=N pending=N kafka_up=0|1"
 *       every 200 ms (flushed)
 *   kafka_check consume BROKERS GROUP TOPIC N TIMEOUT_S [options]
 *       a kconsumer member until N messages were handled (batches after
 *       that are refused, so they stay uncommitted); prints each
 *       "KEY<TAB>VALUE" (with --offsets "PARTITION<TAB>OFFSET<TAB>KEY<TAB>VALUE");
 *       counts on stderr; exit 0 when N arrived, 1 on timeout
 *
 * options: --poll-ms MS, --msg-timeout MS (publisher); --pad BYTES (add,
 * produce: a value that large, not printed); --batch N,
 * --fail K (handler fails its first K calls), --offsets, --wait-lag
 * (consumer: wait up to 5 s for lag 0 before stopping), --pipeline
 * (prepare/apply/release instead of one handler: prepare formats the
 * lines, apply prints them; "prepares=N releases=N" on the summary),
 * --slow MS (each handler/apply call sleeps first), --stop-file F (stop
 * once F exists; exit 0).
 */
#include "db.h"
#include "kconsumer.h"
#include "log.h"
#include "outbox.h"
#include "timeutil.h"
#include "xalloc.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct opts {
    int poll_ms, msg_timeout_ms, batch, fail, timeout_s, pad, slow_ms;
    bool offsets, wait_lag, until_empty, pipeline;
    const char *stop_file;
};

static int parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static int parse_int_arg(const char *name, const char *s, int *out)
{
    long v;
    if (parse_long(s, 0, 1000000000, &v) != 0) {
        fprintf(stderr, "kafka_check: %s wants a number, got '%s'\n", name, s);
        return -1;
    }
    *out = (int)v;
    return 0;
}

/* parse_opts - the --options after the positional arguments */
static int parse_opts(int argc, char **argv, struct opts *o)
{
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        int *target = NULL;
        if (strcmp(a, "--offsets") == 0)
            o->offsets = true;
        else if (strcmp(a, "--wait-lag") == 0)
            o->wait_lag = true;
        else if (strcmp(a, "--until-empty") == 0)
            o->until_empty = true;
        else if (strcmp(a, "--pipeline") == 0)
            o->pipeline = true;
        else if (strcmp(a, "--slow") == 0)
            target = &o->slow_ms;
        else if (strcmp(a, "--stop-file") == 0) {
            if (i + 1 >= argc)
                return -1;
            o->stop_file = argv[++i];
        } else if (strcmp(a, "--poll-ms") == 0)
            target = &o->poll_ms;
        else if (strcmp(a, "--msg-timeout") == 0)
            target = &o->msg_timeout_ms;
        else if (strcmp(a, "--batch") == 0)
            target = &o->batch;
        else if (strcmp(a, "--fail") == 0)
            target = &o->fail;
        else if (strcmp(a, "--timeout") == 0)
            target = &o->timeout_s;
        else if (strcmp(a, "--pad") == 0)
            target = &o->pad;
        else {
            fprintf(stderr, "kafka_check: unknown option %s\n", a);
            return -1;
        }
        if (target) {
            if (i + 1 >= argc || parse_int_arg(a, argv[i + 1], target) != 0)
                return -1;
            i++;
        }
    }
    return 0;
}

static int open_db(const char *path, sqlite3 **db)
{
    char err[512];
    static const char *const migrations[] = {OUTBOX_SCHEMA_SQL};
    if (db_open(path, db, err, sizeof err) != 0 ||
        db_migrate(*db, migrations, 1, err, sizeof err)) {
        fprintf(stderr, "kafka_check: %s\n", err);
        db_close(*db);
        *db = NULL;
        return -1;
    }
    return 0;
}

static long count_rows(sqlite3 *db)
{
    sqlite3_stmt *st = db_prepare(db, "SELECT count(*) FROM outbox");
    long n = -1;
    if (st && sqlite3_step(st) == SQLITE_ROW)
        n = (long)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

/* add_rows - N rows in one transaction; keys and values carry UTF-8,
 * quotes and backslashes so a test sees them survive the trip; pad adds
 * that many bytes to each value (a value Kafka refuses) */
static int add_rows(sqlite3 *db, const char *topic, long n, const char *prefix, int pad)
{
    if (db_begin(db) != 0)
        return -1;
    char *padding = xmalloc((size_t)pad + 1);
    memset(padding, 'x', (size_t)pad);
    padding[pad] = '\0';
    int rc = 0;
    for (long i = 1; i <= n && rc == 0; i++) {
        char *key = xasprintf("%s-k%ld", prefix, i);
        char *value = xasprintf("{\"v\":1,\"type\":\"test\",\"run\":\"%s\",\"seq\":%ld,"
                                "\"text\":\"h\xc3\xa9llo w\xc3\xb6rld \xe2\x9c\x93 \\\"q\\\" \\\\ "
                                "\\t\"%s%s%s}",
                                prefix, i, pad ? ",\"pad\":\"" : "", padding, pad ? "\"" : "");
        if (outbox_add(db, topic, key, value) != 0)
            rc = -1;
        else if (pad == 0)
            printf("%s\t%s\n", key, value);
        free(key);
        free(value);
    }
    free(padding);
    if (rc != 0 || db_commit(db) != 0) {
        db_rollback(db);
        return -1;
    }
    fflush(stdout);
    return 0;
}

static struct outbox_publisher *start_publisher(const char *dbpath, const char *brokers,
                                                const struct opts *o)
{
    char err[512];
    struct outbox_config cfg = {
        .db_path = dbpath,
        .brokers = brokers,
        .client_id = "kafka_check",
        .poll_ms = o->poll_ms,
        .message_timeout_ms = o->msg_timeout_ms,
    };
    struct outbox_publisher *p = outbox_publisher_start(&cfg, err, sizeof err);
    if (!p)
        fprintf(stderr, "kafka_check: %s\n", err);
    return p;
}

static void print_outbox_stats(FILE *f, struct outbox_publisher *p)
{
    struct outbox_stats st;
    outbox_publisher_stats(p, &st);
    fprintf(f, "stats published=%llu failed=%llu pending=%lld kafka_up=%d\n",
            (unsigned long long)st.published, (unsigned long long)st.failed, (long long)st.pending,
            st.kafka_up ? 1 : 0);
    fflush(f);
}

static int cmd_add(int argc, char **argv)
{
    long n;
    struct opts o = {0};
    if (argc < 4 || parse_long(argv[2], 0, 1000000, &n) != 0 ||
        parse_opts(argc - 4, argv + 4, &o) != 0) {
        fprintf(stderr, "usage: kafka_check add DB TOPIC N PREFIX [--pad BYTES]\n");
        return 2;
    }
    sqlite3 *db;
    if (open_db(argv[0], &db) != 0)
        return 1;
    int rc = add_rows(db, argv[1], n, argv[3], o.pad) == 0 ? 0 : 1;
    db_close(db);
    return rc;
}

static int cmd_count(int argc, char **argv)
{
    if (argc != 1) {
        fprintf(stderr, "usage: kafka_check count DB\n");
        return 2;
    }
    sqlite3 *db;
    if (open_db(argv[0], &db) != 0)
        return 1;
    long n = count_rows(db);
    db_close(db);
    if (n < 0)
        return 1;
    printf("%ld\n", n);
    return 0;
}

static int cmd_produce(int argc, char **argv)
{
    long n;
    struct opts o = {.timeout_s = 30};
    int npos = argc > 5 && argv[5][0] != '-' ? 6 : 5;
    if (argc < 5 || parse_long(argv[3], 0, 1000000, &n) != 0 ||
        (npos == 6 && parse_int_arg("TIMEOUT_S", argv[5], &o.timeout_s) != 0) ||
        parse_opts(argc - npos, argv + npos, &o) != 0) {
        fprintf(stderr, "usage: kafka_check produce DB BROKERS TOPIC N PREFIX [TIMEOUT_S]\n");
        return 2;
    }
    sqlite3 *db;
    if (open_db(argv[0], &db) != 0)
        return 1;
    int rc = 1;
    struct outbox_publisher *p = start_publisher(argv[0], argv[1], &o);
    if (!p)
        goto out;
    int64_t t0 = time_mono_ms();
    if (add_rows(db, argv[2], n, argv[4], o.pad) != 0)
        goto out;
    outbox_publisher_notify(p);
    int64_t deadline = t0 + (int64_t)o.timeout_s * 1000;
    while (count_rows(db) != 0 && time_mono_ms() < deadline)
        time_sleep_ms(20);
    int64_t took = time_mono_ms() - t0;
    print_outbox_stats(stderr, p);
    outbox_publisher_stop(p, 5000);
    p = NULL;
    long left = count_rows(db);
    fprintf(stderr, "produce added=%ld left=%ld ms=%lld\n", n, left, (long long)took);
    rc = left == 0 ? 0 : 1;
out:
    outbox_publisher_stop(p, 5000);
    db_close(db);
    return rc;
}

static int cmd_publish(int argc, char **argv)
{
    struct opts o = {0};
    if (argc < 2 || parse_opts(argc - 2, argv + 2, &o) != 0) {
        fprintf(stderr, "usage: kafka_check publish DB BROKERS [--until-empty] [--timeout S]\n");
        return 2;
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    sqlite3 *db;
    if (open_db(argv[0], &db) != 0)
        return 1;
    struct outbox_publisher *p = start_publisher(argv[0], argv[1], &o);
    if (!p) {
        db_close(db);
        return 1;
    }
    int64_t deadline = o.timeout_s ? time_mono_ms() + (int64_t)o.timeout_s * 1000 : INT64_MAX;
    int rc = 0;
    for (;;) {
        print_outbox_stats(stdout, p);
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 200 * 1000000L};
        if (sigtimedwait(&set, NULL, &ts) > 0)
            break;
        if (o.until_empty && count_rows(db) == 0)
            break;
        if (time_mono_ms() >= deadline) {
            rc = 1;
            break;
        }
    }
    outbox_publisher_stop(p, 5000);
    db_close(db);
    return rc;
}

struct consume_state {
    long want;
    atomic_long handled;
    atomic_int calls, prepares, releases;
    int fail, slow_ms;
    bool offsets;
};

/* format - the output lines of a batch */
static char *format(const struct consume_state *cs, const struct kmsg *msgs, size_t n, size_t *len)
{
    char *out = NULL;
    FILE *f = open_memstream(&out, len);
    if (!f)
        abort();
    for (size_t i = 0; i < n; i++) {
        if (cs->offsets)
            fprintf(f, "%d\t%lld\t", (int)msgs[i].partition, (long long)msgs[i].offset);
        if (msgs[i].key)
            fwrite(msgs[i].key, 1, msgs[i].key_len, f);
        fputc('\t', f);
        if (msgs[i].value)
            fwrite(msgs[i].value, 1, msgs[i].value_len, f);
        fputc('\n', f);
    }
    fclose(f);
    return out;
}

/* take - what every call does first; 0 when the batch may be taken */
static int take(struct consume_state *cs)
{
    if (cs->slow_ms)
        time_sleep_ms(cs->slow_ms);
    if (atomic_load(&cs->handled) >= cs->want)
        return -1; /* enough: refuse the rest, so the stop leaves them uncommitted
                    * (not counted: the writer may already hold the next batch) */
    if (atomic_fetch_add(&cs->calls, 1) < cs->fail)
        return -1; /* a store that is down: the same batch must come again */
    return 0;
}

static int consume_handler(void *arg, const struct kmsg *msgs, size_t n)
{
    struct consume_state *cs = arg;
    if (take(cs) != 0)
        return -1;
    size_t len;
    char *out = format(cs, msgs, n, &len);
    fwrite(out, 1, len, stdout);
    fflush(stdout);
    free(out);
    atomic_fetch_add(&cs->handled, (long)n);
    return 0;
}

/* the pipelined form: the lines are made on the consumer thread */
struct consume_work {
    char *out;
    size_t len, n;
};

static void *consume_prepare(void *arg, const struct kmsg *msgs, size_t n)
{
    struct consume_state *cs = arg;
    struct consume_work *w = xcalloc(1, sizeof *w);
    w->out = format(cs, msgs, n, &w->len);
    w->n = n;
    atomic_fetch_add(&cs->prepares, 1);
    return w;
}

static int consume_apply(void *arg, void *work)
{
    struct consume_state *cs = arg;
    struct consume_work *w = work;
    if (take(cs) != 0)
        return -1;
    fwrite(w->out, 1, w->len, stdout);
    fflush(stdout);
    atomic_fetch_add(&cs->handled, (long)w->n);
    return 0;
}

static void consume_release(void *arg, void *work)
{
    struct consume_state *cs = arg;
    struct consume_work *w = work;
    free(w->out);
    free(w);
    atomic_fetch_add(&cs->releases, 1);
}

static int cmd_consume(int argc, char **argv)
{
    long want;
    int timeout_s;
    struct opts o = {0};
    if (argc < 5 || parse_long(argv[3], 0, 100000000, &want) != 0 ||
        parse_int_arg("TIMEOUT_S", argv[4], &timeout_s) != 0 ||
        parse_opts(argc - 5, argv + 5, &o) != 0) {
        fprintf(stderr, "usage: kafka_check consume BROKERS GROUP TOPIC N TIMEOUT_S "
                        "[--batch B] [--fail K] [--offsets] [--wait-lag] [--pipeline] "
                        "[--slow MS] [--stop-file F]\n");
        return 2;
    }
    struct consume_state cs = {
        .want = want, .fail = o.fail, .slow_ms = o.slow_ms, .offsets = o.offsets};
    const char *topics[] = {argv[2], NULL};
    struct kconsumer_config cfg = {
        .brokers = argv[0],
        .group_id = argv[1],
        .topics = topics,
        .client_id = "kafka_check",
        .max_batch = o.batch,
        .handler = o.pipeline ? NULL : consume_handler,
        .prepare = o.pipeline ? consume_prepare : NULL,
        .apply = o.pipeline ? consume_apply : NULL,
        .release = o.pipeline ? consume_release : NULL,
        .arg = &cs,
    };
    char err[512];
    int64_t t0 = time_mono_ms(), first_ms = -1;
    struct kconsumer *c = kconsumer_start(&cfg, err, sizeof err);
    if (!c) {
        fprintf(stderr, "kafka_check: %s\n", err);
        return 1;
    }
    int64_t deadline = t0 + (int64_t)timeout_s * 1000;
    while (time_mono_ms() < deadline) {
        long h = atomic_load(&cs.handled);
        if (first_ms < 0 && h > 0)
            first_ms = time_mono_ms() - t0;
        if (h >= want)
            break;
        if (o.stop_file && access(o.stop_file, F_OK) == 0)
            break;
        time_sleep_ms(10);
    }
    struct kconsumer_stats st;
    kconsumer_stats(c, &st);
    if (o.wait_lag) {
        int64_t lag_deadline = time_mono_ms() + 5000;
        while (time_mono_ms() < lag_deadline) {
            kconsumer_stats(c, &st);
            if (st.lag == 0)
                break;
            time_sleep_ms(50);
        }
    }
    long handled = atomic_load(&cs.handled);
    kconsumer_stop(c);
    fprintf(stderr,
            "consume handled=%ld calls=%d prepares=%d releases=%d consumed=%llu batches=%llu "
            "lag=%lld assigned=%d kafka_up=%d first_ms=%lld total_ms=%lld\n",
            handled, atomic_load(&cs.calls), atomic_load(&cs.prepares), atomic_load(&cs.releases),
            (unsigned long long)st.consumed, (unsigned long long)st.batches, (long long)st.lag,
            st.assigned ? 1 : 0, st.kafka_up ? 1 : 0, (long long)first_ms,
            (long long)(time_mono_ms() - t0));
    if (o.stop_file && access(o.stop_file, F_OK) == 0)
        return 0;
    return handled >= want ? 0 : 1;
}

int main(int argc, char **argv)
{
    enum log_level level = LOG_INFO;
    const char *lv = getenv("KAFKA_CHECK_LOG");
    if (lv && log_parse_level(lv, &level) != 0)
        level = LOG_INFO;
    log_init(level, LOG_TEXT, "kafka_check");
    if (argc < 2) {
        fprintf(stderr, "usage: kafka_check add|count|produce|publish|consume ...\n");
        return 2;
    }
    const char *cmd = argv[1];
    argc -= 2;
    argv += 2;
    if (strcmp(cmd, "add") == 0)
        return cmd_add(argc, argv);
    if (strcmp(cmd, "count") == 0)
        return cmd_count(argc, argv);
    if (strcmp(cmd, "produce") == 0)
        return cmd_produce(argc, argv);
    if (strcmp(cmd, "publish") == 0)
        return cmd_publish(argc, argv);
    if (strcmp(cmd, "consume") == 0)
        return cmd_consume(argc, argv);
    fprintf(stderr, "kafka_check: unknown command %s\n", cmd);
    return 2;
}
