/* smtp_check - drives the SmtpClients (warmup-service/smtp) against real
 * servers for tests/integration/test_smtp.sh and for throughput figures.
 *
 *   smtp_check [options] N
 *       loads the clients from the environment exactly as warmup-service
 *       does (smtp_clients_load), opens ONE session of the chosen client
 *       and sends N messages through ops->send in batches; prints one line
 *       per message on stdout:  CODE ENHANCED OUTCOME TEXT
 *       (ENHANCED is "-" when the reply had none; OUTCOME SENT, TEMPFAIL
 *       or PERMFAIL) and a summary on stderr:
 *       "summary sent=N tempfail=N permfail=N ms=N msgs_per_s=N"
 *   smtp_check -P
 *       ops->probe: prints "probe ok" or "probe failed: REASON"
 *
 * options: -c NAME client (default: the default client); -b N messages per
 * send() call (10); -s BYTES body size (2048); -f FROM sender; -r A,B,..
 * recipients used in turn; -d FILE send FILE's bytes as every message;
 * -p MS pause between send() calls; -t T sessions in T threads, as the
 * workers of warmup-service (the N messages are shared out; the sessions
 * share one SSL_CTX); -q no per-message lines.
 * Exit: 0 all SENT (or probe ok), 1 otherwise, 2 usage or configuration.
 * SIGPIPE keeps its default action on purpose: the client must not raise it.
 */
#include "buf.h"
#include "log.h"
#include "smtp_clients.h"
#include "timeutil.h"
#include "xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_BATCH 256
#define MAX_RCPTS 64
#define MAX_THREADS 64

static const char *const outcome_names[] = {"SENT", "TEMPFAIL", "PERMFAIL"};

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

static void usage(void)
{
    fprintf(stderr, "usage: smtp_check [-c NAME] [-b BATCH] [-s BYTES] [-f FROM] [-r RCPT,..] "
                    "[-d FILE] [-p MS] [-t THREADS] [-q] N\n       smtp_check [-c NAME] -P\n");
    exit(2);
}

/* make_message - headers plus a body of about size bytes whose lines
 * exercise dot-stuffing (a lone ".", a leading ".", "..") */
static void make_message(struct buf *b, const char *from, const char *rcpt, long i, long size)
{
    buf_reset(b);
    buf_printf(b,
               "From: <%s>\r\nTo: <%s>\r\nSubject: smtp_check %ld\r\n"
               "Message-ID: <check-%ld-%ld@smtp-check.test>\r\n\r\n"
               "Message %ld.\r\n.\r\n.leading dot\r\n..two dots\r\n",
               from, rcpt, i, (long)getpid(), i, i);
    long line = 0;
    while ((long)b->len < size) {
        buf_printf(b,
                   "%06ld xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n",
                   line++);
    }
    buf_printf(b, "end of message %ld\r\n", i);
}

static char *read_all(const char *path, size_t *len)
{
    struct buf b;
    char chunk[65536];
    buf_init(&b, (size_t)256 * 1024 * 1024);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        perror(path);
        exit(2);
    }
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || buf_append(&b, chunk, (size_t)(n > 0 ? n : 0)) < 0) {
            perror(path);
            exit(2);
        }
        if (n == 0)
            break;
    }
    close(fd);
    *len = b.len;
    char *s = b.data ? b.data : xstrdup("");
    return s;
}

/* one session's share of the work (one thread) */
struct run {
    const struct smtp_client_cfg *cfg;
    const char *from;
    const char *const *rcpts;
    size_t nrcpt;
    const char *file_data;
    size_t file_len;
    long batch, size, pause_ms, first, count;
    bool quiet;
    long counts[3];
    bool open_failed;
};

static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;

/* run_session - open a session, send messages first..first+count-1 in
 * batches, print each result, close */
static void *run_session(void *arg)
{
    struct run *r = arg;
    char err[512];
    void *session = r->cfg->ops->open(&r->cfg->s, err, sizeof err);
    if (!session) {
        fprintf(stderr, "open: %s\n", err);
        r->open_failed = true;
        return NULL;
    }
    struct buf *bodies = xcalloc(MAX_BATCH, sizeof *bodies);
    struct smtp_envelope env[MAX_BATCH];
    struct smtp_result res[MAX_BATCH];
    for (size_t i = 0; i < MAX_BATCH; i++)
        buf_init(&bodies[i], (size_t)128 * 1024 * 1024);
    for (long done = 0; done < r->count;) {
        if (done > 0 && r->pause_ms > 0)
            time_sleep_ms(r->pause_ms);
        size_t k = (size_t)(r->count - done < r->batch ? r->count - done : r->batch);
        for (size_t j = 0; j < k; j++) {
            long i = r->first + done + (long)j;
            const char *rcpt = r->rcpts[(size_t)i % r->nrcpt];
            env[j].from = r->from;
            env[j].rcpt = rcpt;
            if (r->file_data) {
                env[j].data = r->file_data;
                env[j].len = r->file_len;
            } else {
                make_message(&bodies[j], r->from, rcpt, i, r->size);
                env[j].data = bodies[j].data;
                env[j].len = bodies[j].len;
            }
        }
        r->cfg->ops->send(session, env, k, res);
        pthread_mutex_lock(&out_lock);
        for (size_t j = 0; j < k; j++) {
            r->counts[res[j].outcome]++;
            if (!r->quiet)
                printf("%d %s %s %s\n", res[j].code, res[j].enhanced[0] ? res[j].enhanced : "-",
                       outcome_names[res[j].outcome], res[j].text);
        }
        fflush(stdout);
        pthread_mutex_unlock(&out_lock);
        done += (long)k;
    }
    r->cfg->ops->close(session);
    for (size_t i = 0; i < MAX_BATCH; i++)
        buf_cleanup(&bodies[i]);
    free(bodies);
    return NULL;
}

int main(int argc, char **argv)
{
    const char *client = NULL, *from = "sender@example.test", *rcpt_list = "rcpt@example.test";
    const char *data_file = NULL;
    long batch = 10, size = 2048, pause_ms = 0, n = 0, threads = 1;
    bool probe = false, quiet = false;
    int opt;
    while ((opt = getopt(argc, argv, "c:b:s:f:r:d:p:t:Pq")) != -1) {
        switch (opt) {
        case 'c':
            client = optarg;
            break;
        case 'b':
            if (parse_long(optarg, 1, MAX_BATCH, &batch) < 0)
                usage();
            break;
        case 's':
            if (parse_long(optarg, 0, 64L * 1024 * 1024, &size) < 0)
                usage();
            break;
        case 'f':
            from = optarg;
            break;
        case 'r':
            rcpt_list = optarg;
            break;
        case 'd':
            data_file = optarg;
            break;
        case 'p':
            if (parse_long(optarg, 0, 600000, &pause_ms) < 0)
                usage();
            break;
        case 't':
            if (parse_long(optarg, 1, MAX_THREADS, &threads) < 0)
                usage();
            break;
        case 'P':
            probe = true;
            break;
        case 'q':
            quiet = true;
            break;
        default:
            usage();
        }
    }
    if (!probe && (optind + 1 != argc || parse_long(argv[optind], 0, 10000000, &n) < 0))
        usage();

    enum log_level lvl = LOG_INFO;
    const char *lv = getenv("LOG_LEVEL");
    if (lv && log_parse_level(lv, &lvl) < 0)
        lvl = LOG_INFO;
    log_init(lvl, LOG_TEXT, "smtp_check");

    char err[512];
    struct smtp_clients clients;
    if (smtp_clients_load(&clients, err, sizeof err) != 0) {
        fprintf(stderr, "config: %s\n", err);
        return 2;
    }
    int idx = client ? smtp_clients_find(&clients, client) : (int)clients.default_idx;
    if (idx < 0) {
        fprintf(stderr, "no client named '%s'\n", client);
        smtp_clients_cleanup(&clients);
        return 2;
    }
    const struct smtp_client_cfg *cfg = &clients.v[idx];
    int rc = 0;
    if (probe) {
        if (!cfg->ops->probe || cfg->ops->probe(&cfg->s, err, sizeof err) == 0) {
            printf("probe ok\n");
        } else {
            printf("probe failed: %s\n", err);
            rc = 1;
        }
        smtp_clients_cleanup(&clients);
        return rc;
    }

    /* recipients used in turn */
    char *rcpts_buf = xstrdup(rcpt_list);
    const char *rcpts[MAX_RCPTS];
    size_t nrcpt = 0;
    for (char *p = rcpts_buf; nrcpt < MAX_RCPTS;) {
        rcpts[nrcpt++] = p;
        char *comma = strchr(p, ',');
        if (!comma)
            break;
        *comma = '\0';
        p = comma + 1;
    }
    size_t file_len = 0;
    char *file_data = data_file ? read_all(data_file, &file_len) : NULL;

    struct run runs[MAX_THREADS];
    pthread_t tids[MAX_THREADS];
    long first = 0;
    for (long t = 0; t < threads; t++) {
        long share = n / threads + (t < n % threads ? 1 : 0);
        runs[t] = (struct run){.cfg = cfg,
                               .from = from,
                               .rcpts = rcpts,
                               .nrcpt = nrcpt,
                               .file_data = file_data,
                               .file_len = file_len,
                               .batch = batch,
                               .size = size,
                               .pause_ms = pause_ms,
                               .first = first,
                               .count = share,
                               .quiet = quiet};
        first += share;
    }
    int64_t t0 = time_mono_ms();
    long started = 0;
    if (threads == 1) {
        run_session(&runs[0]);
    } else {
        for (; started < threads; started++)
            if (pthread_create(&tids[started], NULL, run_session, &runs[started]) != 0)
                break;
        for (long t = 0; t < started; t++)
            pthread_join(tids[t], NULL);
    }
    int64_t ms = time_mono_ms() - t0;
    long counts[3] = {0, 0, 0};
    bool open_failed = threads > 1 && started < threads;
    for (long t = 0; t < threads; t++) {
        for (int o = 0; o < 3; o++)
            counts[o] += runs[t].counts[o];
        open_failed |= runs[t].open_failed;
    }
    fprintf(stderr, "summary sent=%ld tempfail=%ld permfail=%ld ms=%lld msgs_per_s=%.0f\n",
            counts[SMTP_SENT], counts[SMTP_TEMPFAIL], counts[SMTP_PERMFAIL], (long long)ms,
            ms > 0 ? (double)n * 1000.0 / (double)ms : 0.0);
    free(file_data);
    free(rcpts_buf);
    smtp_clients_cleanup(&clients);
    if (open_failed)
        return 2;
    return counts[SMTP_SENT] == n ? 0 : 1;
}
