/* kafka-dev-broker - librdkafka's mock cluster as a local Kafka for tests
 * and the local stack.
 *
 * Usage: kafka-dev-broker [-n BROKERS] [-p PARTITIONS] [-r REPLICATION]
 *                         [-f BOOTSTRAP_FILE] [-t TOPIC]...
 *
 * Hosts an in-memory cluster speaking the real Kafka protocol (consumer
 * groups, committed offsets, idempotent producers), creates the topics
 * (default email-events, emailId-events and feedback-events; -t replaces
 * them), prints the bootstrap list on stdout and writes it atomically to
 * BOOTSTRAP_FILE.
 *
 * Outages without changing addresses: SIGUSR1 takes every broker down,
 * SIGUSR2 brings them back; the same from stdin lines "down", "up",
 * "down N", "up N" (N = broker id, 1..BROKERS), each acknowledged on
 * stderr. SIGTERM/SIGINT: destroy the cluster, exit 0.
 *
 * Standalone on purpose (no libshared): it is a dev tool, built beside the
 * services. Threads: main (sigwait), one stdin reader, librdkafka's own.
 */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PROG "kafka-dev-broker"
#define MAX_TOPICS 64

struct broker {
    pthread_mutex_t mu; /* guards mc against the shutdown */
    rd_kafka_mock_cluster_t *mc;
    int nbrokers;
};

static void logline(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* logline - one line on stderr, prefixed with the program name */
static void logline(const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, PROG ": %s\n", msg);
    fflush(stderr);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: " PROG " [-n BROKERS (3)] [-p PARTITIONS (3)] [-r REPLICATION]\n"
            "       [-f BOOTSTRAP_FILE] [-t TOPIC]...\n"
            "  default topics: email-events emailId-events feedback-events (-t replaces them)\n"
            "  SIGUSR1 / stdin \"down [N]\": brokers down; SIGUSR2 / \"up [N]\": back up\n");
}

/* parse_int - whole string as a base-10 int within [min, max]; 0 or -1 */
static int parse_int(const char *s, long min, long max, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
        return -1;
    *out = (int)v;
    return 0;
}

/* set_state - broker id (or -1: all) up or down; 0 or -1 (logged) */
static int set_state(struct broker *b, int id, bool up)
{
    int rc = 0;
    pthread_mutex_lock(&b->mu);
    if (!b->mc) {
        pthread_mutex_unlock(&b->mu);
        return -1;
    }
    int first = id < 0 ? 1 : id, last = id < 0 ? b->nbrokers : id;
    for (int i = first; i <= last; i++) {
        rd_kafka_resp_err_t err =
            up ? rd_kafka_mock_broker_set_up(b->mc, i) : rd_kafka_mock_broker_set_down(b->mc, i);
        if (err) {
            logline("broker %d %s failed: %s", i, up ? "up" : "down", rd_kafka_err2str(err));
            rc = -1;
        }
    }
    pthread_mutex_unlock(&b->mu);
    return rc;
}

/* command - one stdin control line; acknowledged on stderr */
static void command(struct broker *b, char *line)
{
    char verb[16] = "", arg[32] = "", extra[2] = "";
    int n = sscanf(line, "%15s %31s %1s", verb, arg, extra);
    if (n <= 0)
        return; /* blank line */
    bool up = strcmp(verb, "up") == 0;
    int id = -1;
    if ((!up && strcmp(verb, "down") != 0) || n > 2 ||
        (n == 2 && parse_int(arg, 1, b->nbrokers, &id) != 0)) {
        logline("error: unknown command '%s' (down|up [1..%d])", line, b->nbrokers);
        return;
    }
    if (set_state(b, id, up) != 0) {
        logline("error: %s failed", line);
        return;
    }
    if (id < 0)
        logline("ok: all %d brokers %s", b->nbrokers, up ? "up" : "down");
    else
        logline("ok: broker %d %s", id, up ? "up" : "down");
}

/* stdin_main - read control lines until EOF; cancelled at shutdown while
 * blocked in read() */
static void *stdin_main(void *arg)
{
    struct broker *b = arg;
    char line[256];
    size_t len = 0;
    bool overlong = false;
    for (;;) {
        char c;
        ssize_t r = read(STDIN_FILENO, &c, 1);
        if (r == 0)
            break;
        if (r < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (c != '\n') {
            if (len + 1 < sizeof line)
                line[len++] = c;
            else
                overlong = true;
            continue;
        }
        line[len] = '\0';
        if (len > 0 && line[len - 1] == '\r')
            line[len - 1] = '\0';
        int old;
        pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
        if (overlong)
            logline("error: control line too long");
        else
            command(b, line);
        pthread_setcancelstate(old, NULL);
        len = 0;
        overlong = false;
    }
    return NULL;
}

/* write_bootstrap - bootstrap list into path via a temporary file and
 * rename(), so a reader never sees a partial file */
static int write_bootstrap(const char *path, const char *bs)
{
    char tmp[PATH_MAX];
    int n = snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof tmp) {
        logline("error: bootstrap file name too long");
        return -1;
    }
    FILE *f = fopen(tmp, "w");
    if (!f) {
        logline("error: %s: %s", tmp, strerror(errno));
        return -1;
    }
    int rc = fprintf(f, "%s\n", bs) < 0 ? -1 : 0;
    if (fclose(f) != 0)
        rc = -1;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -1;
    if (rc != 0) {
        logline("error: writing %s: %s", path, strerror(errno));
        unlink(tmp);
    }
    return rc;
}

int main(int argc, char **argv)
{
    int nbrokers = 3, partitions = 3, replication = -1, c;
    const char *bsfile = NULL;
    const char *topics[MAX_TOPICS];
    int ntopics = 0;

    while ((c = getopt(argc, argv, "n:p:r:f:t:h")) != -1) {
        switch (c) {
        case 'n':
            if (parse_int(optarg, 1, 64, &nbrokers) != 0) {
                logline("error: -n wants 1..64 brokers, got '%s'", optarg);
                return 2;
            }
            break;
        case 'p':
            if (parse_int(optarg, 1, 1000, &partitions) != 0) {
                logline("error: -p wants 1..1000 partitions, got '%s'", optarg);
                return 2;
            }
            break;
        case 'r':
            if (parse_int(optarg, 1, 64, &replication) != 0) {
                logline("error: -r wants a replication factor 1..64, got '%s'", optarg);
                return 2;
            }
            break;
        case 'f':
            bsfile = optarg;
            break;
        case 't':
            if (ntopics == MAX_TOPICS || optarg[0] == '\0') {
                logline("error: -t wants a non-empty topic name (at most %d topics)", MAX_TOPICS);
                return 2;
            }
            topics[ntopics++] = optarg;
            break;
        case 'h':
            usage();
            return 0;
        default:
            usage();
            return 2;
        }
    }
    if (optind != argc) {
        usage();
        return 2;
    }
    if (ntopics == 0) {
        topics[ntopics++] = "email-events";
        topics[ntopics++] = "emailId-events";
        topics[ntopics++] = "feedback-events";
    }
    if (replication < 0)
        replication = nbrokers < 3 ? nbrokers : 3;
    if (replication > nbrokers) {
        logline("error: replication %d exceeds the %d brokers", replication, nbrokers);
        return 2;
    }

    /* block before librdkafka starts threads: only sigwait() below sees them */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "log_level", "3", err, sizeof err) != RD_KAFKA_CONF_OK) {
        logline("error: %s", err);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    /* this handle only hosts the mock cluster; it never connects anywhere */
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!rk) {
        logline("error: rd_kafka_new: %s", err);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    struct broker b = {.mu = PTHREAD_MUTEX_INITIALIZER, .nbrokers = nbrokers};
    b.mc = rd_kafka_mock_cluster_new(rk, nbrokers);
    if (!b.mc) {
        logline("error: cannot create the mock cluster");
        rd_kafka_destroy(rk);
        return 1;
    }
    int rc = 0;
    for (int i = 0; i < ntopics && rc == 0; i++) {
        rd_kafka_resp_err_t e =
            rd_kafka_mock_topic_create(b.mc, topics[i], partitions, replication);
        if (e) {
            logline("error: topic %s: %s", topics[i], rd_kafka_err2str(e));
            rc = 1;
        }
    }
    const char *bs = rd_kafka_mock_cluster_bootstraps(b.mc);
    if (rc == 0 && bsfile && write_bootstrap(bsfile, bs) != 0)
        rc = 1;
    if (rc == 0) {
        printf("%s\n", bs);
        fflush(stdout);
    }
    pthread_t reader;
    bool have_reader = false;
    if (rc == 0) {
        for (int i = 0; i < ntopics; i++)
            logline("topic %s partitions=%d replication=%d", topics[i], partitions, replication);
        logline("ready brokers=%d bootstrap=%s", nbrokers, bs);
        have_reader = pthread_create(&reader, NULL, stdin_main, &b) == 0;
        if (!have_reader)
            logline("warning: no stdin control thread");
    }

    while (rc == 0) {
        int sig = 0;
        if (sigwait(&set, &sig) != 0)
            continue;
        if (sig == SIGUSR1 || sig == SIGUSR2) {
            bool up = sig == SIGUSR2;
            if (set_state(&b, -1, up) == 0)
                logline("ok: all %d brokers %s (%s)", nbrokers, up ? "up" : "down",
                        up ? "SIGUSR2" : "SIGUSR1");
            continue;
        }
        logline("signal %d, shutting down", sig);
        break;
    }

    pthread_mutex_lock(&b.mu);
    rd_kafka_mock_cluster_t *mc = b.mc;
    b.mc = NULL;
    pthread_mutex_unlock(&b.mu);
    if (have_reader) {
        pthread_cancel(reader);
        pthread_join(reader, NULL);
    }
    rd_kafka_mock_cluster_destroy(mc); /* before the handle that hosts it */
    rd_kafka_destroy(rk);
    if (bsfile && rc == 0)
        unlink(bsfile);
    return rc;
}
