/* outbox_pg_check - drives the outbox on PostgreSQL (outbox_add_q and
 * several publishers on one table) for tests/integration/test_outbox_pg.sh.
 *
 *   outbox_pg_check schema URL
 *       creates the outbox tables (OUTBOX_PG_SCHEMA_SQL) by sqldb_migrate
 *   outbox_pg_check add URL TOPIC N PREFIX [--tx K] [--sleep-ms MS] [--hold-ms MS]
 *                   [--rollback]
 *       N rows by outbox_add_q, K per transaction (default all N), MS
 *       between transactions, each held open --hold-ms before its commit; prints each
 * "KEY<TAB>VALUE" once its transaction committed (--rollback: every transaction is rolled back, the
 * rows are printed with a leading "rolledback<TAB>") outbox_pg_check count URL prints the number of
 * rows in the outbox outbox_pg_check publish URL BROKERS [--poll-ms MS] [--max-inflight N]
 *                   [--batch N] [--until-empty] [--timeout S]
 *       runs a publisher until SIGTERM/SIGINT (or until the table is
 *       empty); prints "stats published=N failed=N pending=N kafka_up=0|1"
 *       every 200 ms (t= the wall clock in ms), and "drained ms=N" (from the first row seen to the
 *       empty table) with --until-empty; exit 1 on timeout
 */
#include "log.h"
#include "outbox.h"
#include "sqldb.h"
#include "timeutil.h"
#include "xalloc.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct opts {
    long tx, sleep_ms, hold_ms, poll_ms, max_inflight, batch, timeout_s;
    bool rollback, until_empty;
};

static int parse_long(const char *s, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < 0 || v > 100000000)
        return -1;
    *out = v;
    return 0;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        long *target = NULL;
        if (strcmp(a, "--rollback") == 0)
            o->rollback = true;
        else if (strcmp(a, "--until-empty") == 0)
            o->until_empty = true;
        else if (strcmp(a, "--tx") == 0)
            target = &o->tx;
        else if (strcmp(a, "--sleep-ms") == 0)
            target = &o->sleep_ms;
        else if (strcmp(a, "--hold-ms") == 0)
            target = &o->hold_ms;
        else if (strcmp(a, "--poll-ms") == 0)
            target = &o->poll_ms;
        else if (strcmp(a, "--max-inflight") == 0)
            target = &o->max_inflight;
        else if (strcmp(a, "--batch") == 0)
            target = &o->batch;
        else if (strcmp(a, "--timeout") == 0)
            target = &o->timeout_s;
        else {
            fprintf(stderr, "outbox_pg_check: unknown option %s\n", a);
            return -1;
        }
        if (target && (i + 1 >= argc || parse_long(argv[++i], target) != 0)) {
            fprintf(stderr, "outbox_pg_check: %s wants a number\n", a);
            return -1;
        }
    }
    return 0;
}

static struct sqldb *open_url(const char *url)
{
    char err[512];
    struct sqldb *db = sqldb_open_pg(url, err, sizeof err);
    if (!db)
        fprintf(stderr, "outbox_pg_check: %s\n", err);
    return db;
}

static long count_rows(struct sqldb *db)
{
    if (!sqldb_ok(db))
        return -1;
    struct sqldb_stmt *st = sqldb_prepare(db, "SELECT count(*) FROM outbox");
    long n = st && sqldb_step(st) == SQLDB_ROW ? (long)sqldb_column_int64(st, 0) : -1;
    sqldb_finalize(st);
    return n;
}

static int cmd_schema(int argc, char **argv)
{
    if (argc != 1)
        return 2;
    struct sqldb *db = open_url(argv[0]);
    if (!db)
        return 1;
    static const char *const migrations[] = {OUTBOX_PG_SCHEMA_SQL};
    char err[512];
    int rc = sqldb_migrate(db, migrations, 1, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "outbox_pg_check: %s\n", err);
    sqldb_close(db);
    return rc == 0 ? 0 : 1;
}

/* cmd_add - values carry UTF-8, quotes and backslashes so the test sees
 * them survive the trip */
static int cmd_add(int argc, char **argv)
{
    long n;
    struct opts o = {0};
    if (argc < 4 || parse_long(argv[2], &n) != 0 || parse_opts(argc - 4, argv + 4, &o) != 0) {
        fprintf(stderr, "usage: outbox_pg_check add URL TOPIC N PREFIX [--tx K] [--sleep-ms MS] "
                        "[--hold-ms MS] [--rollback]\n");
        return 2;
    }
    struct sqldb *db = open_url(argv[0]);
    if (!db)
        return 1;
    long tx = o.tx > 0 ? o.tx : n;
    char **lines = xcalloc((size_t)tx, sizeof lines[0]);
    int rc = 0;
    for (long i = 1; i <= n && rc == 0;) {
        long k = 0;
        if (sqldb_begin(db) != 0) {
            rc = 1;
            break;
        }
        for (; k < tx && i <= n; k++, i++) {
            char *key = xasprintf("%s-k%ld", argv[3], i);
            char *value = xasprintf("{\"v\":1,\"type\":\"test\",\"run\":\"%s\",\"seq\":%ld,"
                                    "\"text\":\"h\xc3\xa9llo \xe2\x9c\x93 \\\"q\\\" \\\\\"}",
                                    argv[3], i);
            if (outbox_add_q(db, argv[1], key, value) != 0)
                rc = 1;
            lines[k] = xasprintf("%s%s\t%s\n", o.rollback ? "rolledback\t" : "", key, value);
            free(key);
            free(value);
        }
        if (o.hold_ms)
            time_sleep_ms((int)o.hold_ms);
        if (rc == 0 && !o.rollback && sqldb_commit(db) != 0)
            rc = 1;
        if (rc != 0 || o.rollback)
            sqldb_rollback(db);
        for (long j = 0; j < k; j++) {
            if (rc == 0)
                fputs(lines[j], stdout);
            free(lines[j]);
        }
        fflush(stdout);
        if (o.sleep_ms && i <= n)
            time_sleep_ms((int)o.sleep_ms);
    }
    free(lines);
    sqldb_close(db);
    return rc;
}

static int cmd_count(int argc, char **argv)
{
    if (argc != 1)
        return 2;
    struct sqldb *db = open_url(argv[0]);
    if (!db)
        return 1;
    long n = count_rows(db);
    sqldb_close(db);
    if (n < 0)
        return 1;
    printf("%ld\n", n);
    return 0;
}

static void print_stats(struct outbox_publisher *p)
{
    struct outbox_stats st;
    outbox_publisher_stats(p, &st);
    printf("stats published=%llu failed=%llu pending=%lld kafka_up=%d t=%lld\n",
           (unsigned long long)st.published, (unsigned long long)st.failed, (long long)st.pending,
           st.kafka_up ? 1 : 0, (long long)time_now_ms());
    fflush(stdout);
}

static int cmd_publish(int argc, char **argv)
{
    struct opts o = {0};
    if (argc < 2 || parse_opts(argc - 2, argv + 2, &o) != 0) {
        fprintf(stderr, "usage: outbox_pg_check publish URL BROKERS [--poll-ms MS] "
                        "[--max-inflight N] [--batch N] [--until-empty] [--timeout S]\n");
        return 2;
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    struct sqldb *db = o.until_empty ? open_url(argv[0]) : NULL;
    if (o.until_empty && !db)
        return 1;
    char err[512];
    struct outbox_config cfg = {
        .db_path = argv[0],
        .brokers = argv[1],
        .client_id = "outbox_pg_check",
        .poll_ms = (int)o.poll_ms,
        .max_inflight = (int)o.max_inflight,
        .batch = (int)o.batch,
    };
    /* rows there before the start count from it: the publisher may drain
     * them before the loop's first look */
    bool had_rows = o.until_empty && count_rows(db) > 0;
    struct outbox_publisher *p = outbox_publisher_start(&cfg, err, sizeof err);
    if (!p) {
        fprintf(stderr, "outbox_pg_check: %s\n", err);
        sqldb_close(db);
        return 1;
    }
    int64_t t0 = time_mono_ms(), first = had_rows ? t0 : -1;
    int64_t deadline = o.timeout_s ? t0 + o.timeout_s * 1000 : INT64_MAX;
    int rc = 0;
    for (long round = 0;; round++) {
        if (round % 10 == 0)
            print_stats(p);
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 20 * 1000000L};
        if (sigtimedwait(&set, NULL, &ts) > 0)
            break;
        if (o.until_empty) {
            long n = count_rows(db);
            if (n > 0 && first < 0)
                first = time_mono_ms();
            if (n == 0 && first >= 0) {
                printf("drained ms=%lld\n", (long long)(time_mono_ms() - first));
                break;
            }
        }
        if (time_mono_ms() >= deadline) {
            rc = 1;
            break;
        }
    }
    print_stats(p);
    outbox_publisher_stop(p, 5000);
    sqldb_close(db);
    return rc;
}

int main(int argc, char **argv)
{
    enum log_level level = LOG_INFO;
    const char *lv = getenv("OUTBOX_CHECK_LOG");
    if (lv && log_parse_level(lv, &level) != 0)
        level = LOG_INFO;
    log_init(level, LOG_TEXT, "outbox_pg_check");
    if (argc < 2) {
        fprintf(stderr, "usage: outbox_pg_check schema|add|count|publish ...\n");
        return 2;
    }
    const char *cmd = argv[1];
    argc -= 2;
    argv += 2;
    if (strcmp(cmd, "schema") == 0)
        return cmd_schema(argc, argv);
    if (strcmp(cmd, "add") == 0)
        return cmd_add(argc, argv);
    if (strcmp(cmd, "count") == 0)
        return cmd_count(argc, argv);
    if (strcmp(cmd, "publish") == 0)
        return cmd_publish(argc, argv);
    fprintf(stderr, "outbox_pg_check: unknown command %s\n", cmd);
    return 2;
}
