/* smtp_dryrun.c - DRYRUN: no network; each message becomes an .eml file in
 * spool_dir (default ./data/spool, created when missing).
 *
 * A file is written under a hidden temporary name (".NAME.tmp") and then
 * renamed, so a reader of the directory only ever sees complete files.
 * NAME is "<ms since epoch>-<pid>-<sequence>.eml": never derived from the
 * message, so nothing in a message can choose a path. The envelope is kept
 * as "Return-Path" and "Delivered-To" headers in front of the message, as
 * a local delivery agent would. Files are not fsync'ed: a dry run proves
 * the pipeline, not durability. Result: SENT, 250 2.0.0.
 * Any thread; the sequence counter is atomic.
 */
#include "smtp_client.h"
#include "errbuf.h"
#include "smtp_conn.h"
#include "timeutil.h"
#include "xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DRYRUN_DEFAULT_DIR "./data/spool"

struct dryrun {
    char *dir;
};

static atomic_ulong dryrun_seq;

static const char *spool_dir(const struct smtp_settings *s)
{
    return s->spool_dir && *s->spool_dir ? s->spool_dir : DRYRUN_DEFAULT_DIR;
}

/* mkdir_p - create dir and its missing parents; 0 or -1 with errno */
static int mkdir_p(const char *dir)
{
    char *p = xstrdup(dir);
    int rc = 0;
    for (char *s = p + 1; *s && rc == 0; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, 0755) < 0 && errno != EEXIST)
            rc = -1;
        *s = '/';
    }
    if (rc == 0 && mkdir(p, 0755) < 0 && errno != EEXIST)
        rc = -1;
    free(p);
    return rc;
}

/* spool_check - dir exists (created if needed) and is writable */
static int spool_check(const struct smtp_settings *s, char *errbuf, size_t errlen)
{
    const char *dir = spool_dir(s);
    struct stat st;
    char eb[128];
    errno = 0;
    if (mkdir_p(dir) < 0 || stat(dir, &st) < 0 || !S_ISDIR(st.st_mode) ||
        access(dir, W_OK | X_OK) < 0) {
        int e = errno ? errno : ENOTDIR;
        if (errbuf && errlen)
            errbuf_set(errbuf, errlen, "client %s: spool directory '%s': %s",
                       s->name ? s->name : "dryrun", dir, strerror_r(e, eb, sizeof eb));
        return -1;
    }
    return 0;
}

static int write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* spool_one - write one message; the result says where or why not */
static void spool_one(struct dryrun *d, const struct smtp_envelope *m, struct smtp_result *r)
{
    char name[96], eb[128];
    unsigned long seq = atomic_fetch_add(&dryrun_seq, 1) + 1;
    snprintf(name, sizeof name, "%lld-%ld-%lu.eml", (long long)time_now_ms(), (long)getpid(), seq);
    char *path = xasprintf("%s/%s", d->dir, name);
    char *tmp = xasprintf("%s/.%s.tmp", d->dir, name);
    char *head = xasprintf("Return-Path: <%s>\r\nDelivered-To: %s\r\n", m->from, m->rcpt);
    bool crlf = m->len == 0 || m->data[m->len - 1] != '\n';
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    int rc = fd < 0 ? -1 : 0;
    if (rc == 0)
        rc = write_all(fd, head, strlen(head));
    if (rc == 0 && m->len)
        rc = write_all(fd, m->data, m->len);
    if (rc == 0 && crlf)
        rc = write_all(fd, "\r\n", 2);
    int e = errno;
    if (fd >= 0 && close(fd) < 0 && rc == 0) {
        rc = -1;
        e = errno;
    }
    if (rc == 0 && rename(tmp, path) < 0) {
        rc = -1;
        e = errno;
    }
    if (rc == 0) {
        r->outcome = SMTP_SENT;
        r->code = 250;
        snprintf(r->enhanced, sizeof r->enhanced, "2.0.0");
        snprintf(r->text, sizeof r->text, "250 2.0.0 Ok: spooled as %s", name);
    } else {
        if (fd >= 0)
            unlink(tmp);
        r->outcome = SMTP_TEMPFAIL;
        r->code = 0;
        r->enhanced[0] = '\0';
        snprintf(r->text, sizeof r->text, "dry run: cannot write %s: %s", path,
                 strerror_r(e, eb, sizeof eb));
    }
    free(head);
    free(tmp);
    free(path);
}

static void *dryrun_open(const struct smtp_settings *s, char *errbuf, size_t errlen)
{
    if (spool_check(s, errbuf, errlen) < 0)
        return NULL;
    struct dryrun *d = xcalloc(1, sizeof *d);
    d->dir = xstrdup(spool_dir(s));
    return d;
}

static void dryrun_send(void *session, const struct smtp_envelope *msgs, size_t n,
                        struct smtp_result *results)
{
    struct dryrun *d = session;
    for (size_t i = 0; i < n; i++) {
        struct smtp_result *r = &results[i];
        const struct smtp_envelope *m = &msgs[i];
        r->fail = SMTP_FAIL_NONE;
        r->skipped = false;
        if (!smtp_addr_ok(m->from, true) || !smtp_addr_ok(m->rcpt, false) || (!m->data && m->len)) {
            r->outcome = SMTP_PERMFAIL;
            r->code = 0;
            r->enhanced[0] = '\0';
            snprintf(r->text, sizeof r->text, "invalid envelope address or missing data");
            continue;
        }
        spool_one(d, m, r);
    }
}

static int dryrun_probe(const struct smtp_settings *s, char *errbuf, size_t errlen)
{
    return spool_check(s, errbuf, errlen);
}

static void dryrun_close(void *session)
{
    struct dryrun *d = session;
    if (!d)
        return;
    free(d->dir);
    free(d);
}

const struct smtp_client_ops smtp_dryrun_ops = {
    .type = "DRYRUN",
    .open = dryrun_open,
    .send = dryrun_send,
    .probe = dryrun_probe,
    .close = dryrun_close,
};
