/* imap_check - drives the IMAP FeedbackLoop (health-service/loops/
 * loop_imap.c) against a real IMAP server, for tests/integration/
 * test_imap.sh.
 *
 *   imap_check [-n ROUNDS] [-s] [-p MS] [-d DOMAIN] SETTINGS.json MESSAGE-ID...
 *
 * Creates ONE loop instance from the JSON in SETTINGS.json (the file may
 * hold `null`: settings NULL) exactly as the scheduler would, then runs
 * ROUNDS rounds (default 1) of ops->check over the given Message-IDs on
 * that instance. Per round it prints on stdout one line per copy
 *     <message-id> <placement> <opened 0|1> <read 0|1>
 * (placement: unknown, not_found, inbox, spam), then
 *     round <N> rc=<RC> ms=<MS>[ error=<errbuf>]
 * A create failure prints "create failed: <errbuf>" and exits 2.
 * Options: -s step mode: before each round read one line from stdin (EOF
 * ends the run; without -n the rounds are unlimited), so a test can stop
 * or restart the server between rounds; -p MS pause between rounds;
 * -d DOMAIN the loop's domain (default gmail.test).
 * Logs (LOG_LEVEL, default info) go to stderr.
 * Exit: 0 when every round returned 0, 1 when one returned -1, 2 on usage
 * or create errors. SIGPIPE keeps its default action on purpose: the loop
 * must not raise it.
 */
#include "buf.h"
#include "feedback_loop.h"
#include "jsonx.h"
#include "log.h"
#include "timeutil.h"
#include "xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const placement_names[] = {"unknown", "not_found", "inbox", "spam"};

static void usage(void)
{
    fprintf(stderr, "usage: imap_check [-n ROUNDS] [-s] [-p MS] [-d DOMAIN] SETTINGS.json "
                    "MESSAGE-ID...\n");
    exit(2);
}

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

/* read_file - whole file into b (at most 1 MiB); 0 or -1 */
static int read_file(const char *path, struct buf *b)
{
    char chunk[4096];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || buf_append(b, chunk, (size_t)n) < 0) {
            close(fd);
            return n == 0 ? 0 : -1;
        }
    }
}

int main(int argc, char **argv)
{
    long rounds = -1, pause_ms = 0;
    bool step = false;
    const char *domain = "gmail.test";
    int opt;
    enum log_level lvl = LOG_INFO;
    const char *env = getenv("LOG_LEVEL");

    if (env && log_parse_level(env, &lvl) < 0)
        lvl = LOG_INFO;
    log_init(lvl, LOG_TEXT, "imap_check");
    while ((opt = getopt(argc, argv, "n:sp:d:")) != -1) {
        switch (opt) {
        case 'n':
            if (parse_long(optarg, 1, 100000, &rounds) < 0)
                usage();
            break;
        case 's':
            step = true;
            break;
        case 'p':
            if (parse_long(optarg, 0, 600000, &pause_ms) < 0)
                usage();
            break;
        case 'd':
            domain = optarg;
            break;
        default:
            usage();
        }
    }
    if (argc - optind < 1)
        usage();
    if (rounds < 0)
        rounds = step ? 100000 : 1;

    struct buf text;
    buf_init(&text, 1 << 20);
    if (read_file(argv[optind], &text) < 0) {
        fprintf(stderr, "imap_check: cannot read %s: %s\n", argv[optind], strerror(errno));
        return 2;
    }
    json_object *settings = NULL;
    char err[512];
    if (jsonx_parse(buf_str(&text), text.len, &settings, err, sizeof err) < 0) {
        fprintf(stderr, "imap_check: %s: %s\n", argv[optind], err);
        buf_cleanup(&text);
        return 2;
    }
    buf_cleanup(&text);

    const struct feedback_loop_ops *ops = &loop_imap_ops;
    err[0] = '\0';
    void *loop = ops->create(domain, settings, err, sizeof err);
    json_object_put(settings); /* borrowed by create only */
    if (!loop) {
        printf("create failed: %s\n", err);
        return 2;
    }

    size_t n = (size_t)(argc - optind - 1);
    struct fl_copy *copies = xcalloc(n ? n : 1, sizeof *copies);
    for (size_t i = 0; i < n; i++) {
        copies[i].message_id = argv[optind + 1 + (int)i];
        copies[i].recipient = "seed1@gmail.test";
        copies[i].sent_at_ms = time_now_ms();
    }

    int status = 0;
    char line[256];
    for (long r = 1; r <= rounds; r++) {
        if (step && !fgets(line, sizeof line, stdin))
            break;
        if (r > 1 && pause_ms > 0)
            time_sleep_ms(pause_ms);
        err[0] = '\0';
        int64_t t0 = time_mono_ms();
        int rc = ops->check(loop, copies, n, err, sizeof err);
        int64_t ms = time_mono_ms() - t0;
        for (size_t i = 0; i < n; i++) {
            unsigned p = (unsigned)copies[i].placement;
            printf("%s %s %d %d\n", copies[i].message_id, p < 4 ? placement_names[p] : "?",
                   copies[i].opened ? 1 : 0, copies[i].read ? 1 : 0);
            copies[i].rounds++;
        }
        printf("round %ld rc=%d ms=%lld%s%s\n", r, rc, (long long)ms, rc < 0 ? " error=" : "",
               rc < 0 ? err : "");
        fflush(stdout);
        if (rc < 0)
            status = 1;
    }
    ops->destroy(loop);
    free(copies);
    return status;
}
