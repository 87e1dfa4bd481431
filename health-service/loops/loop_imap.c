/* loop_imap.c - the IMAP FeedbackLoop: looks into one seed mailbox (a
 * domain's, or a seed mailbox's own) with libetpan and tells, for each
 * tracked copy, whether it landed in the inbox or in the spam folder and
 * whether it was opened or read; and, when configured, engages with it.
 *
 * This file: a round (connection, both folders, the verdicts), the command
 * counter, create/destroy and the ops. A folder's part of a round (open,
 * index, flags, engagement) is loop_imap_folder.c, its Message-ID index
 * imap_index.c; the settings are parsed in loop_imap_settings.c; the
 * connection (TCP, TLS and its verification, STARTTLS, LOGIN, the spam
 * folder) is loop_imap_conn.c; loop_imap_int.h is what the pieces share.
 *
 * A round: the inbox, then the spam folder, each opened read-only
 * (EXAMINE) unless an engage action is set (SELECT). Each folder's
 * Message-ID -> UID index, kept across rounds and connections, is brought
 * up to date by reading only the mail new since the last round (the first
 * time: the mail received since the day before the oldest copy was sent);
 * the copies are looked up in it and one UID FETCH FLAGS per chunk of found
 * UIDs gives their flags. So a round costs a handful of commands per
 * mailbox, whatever the number of copies. Found in the inbox -> FL_INBOX
 * (it wins when a copy is in both), in the spam folder -> FL_SPAM, both
 * folders read and found in neither -> FL_NOT_FOUND; \Seen -> opened;
 * \Seen with \Answered or \Flagged -> read. Engagement (mark_read, flag,
 * rescue) happens in the same pass and the results describe the mailbox
 * after it; a rescued copy keeps FL_SPAM and gets rescued = true.
 * Every libetpan command is counted: loop_imap_commands().
 *
 * Connection: one per loop instance, kept across rounds (idle_close drops
 * it and keeps the rest: indexes, backoff). A kept connection
 * is probed with NOOP first; if the server dropped it (idle timeout,
 * restart) the loop reconnects at once, since that is no outage. A failed
 * connect or a connection error during a round closes the session and
 * returns -1; the next attempts wait 1 s, 2 s, 4 s .. 60 s (a round inside
 * that window returns -1 at once with "reconnecting in N s", unless the
 * password or token file was rewritten since a refused login); a round that
 * succeeds resets the backoff. A server NO to one command fails what it
 * concerns but keeps the connection.
 *
 * The password is never logged nor put in an error message, and wiped on
 * destroy.
 * SIGPIPE: writes to a dropped connection must not kill the process, so
 * check(), idle_close() and destroy() block SIGPIPE in the calling thread and swallow a
 * SIGPIPE they caused (curl's sigpipe guard); no process-wide change.
 *
 * Threads: an instance is used by one thread at a time (libetpan: one
 * session per thread); instances are independent.
 */
#include "feedback_loop.h"
#include "errbuf.h"
#include "imap_index.h"
#include "loop_imap_int.h"

#include "log.h"
#include "timeutil.h"
#include "xalloc.h"

#include <libetpan/libetpan.h>
#include <openssl/x509.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BACKOFF_FIRST_MS 1000
#define BACKOFF_MAX_MS 60000
#define MAX_MESSAGE_ID 998 /* RFC 5322 line limit */

/* ---- helpers ---------------------------------------------------------- */

static _Atomic uint64_t commands;              /* every IMAP loop instance's */
static _Thread_local uint64_t thread_commands; /* this thread's: a round's share */

/* imap_count_command - one more libetpan command call */
void imap_count_command(void)
{
    atomic_fetch_add_explicit(&commands, 1, memory_order_relaxed);
    thread_commands++;
}

/* loop_imap_commands - the commands counted since start */
uint64_t loop_imap_commands(void)
{
    return atomic_load_explicit(&commands, memory_order_relaxed);
}

/* message_id_ok - searchable: 1..998 bytes of printable ASCII */
static bool message_id_ok(const char *id)
{
    size_t n = 0;
    if (!id)
        return false;
    for (; id[n]; n++) {
        unsigned char c = (unsigned char)id[n];
        if (c < 0x20 || c >= 0x7f || n >= MAX_MESSAGE_ID)
            return false;
    }
    return n > 0;
}

/* SIGPIPE guard: block it in this thread around libetpan calls, swallow
 * one raised meanwhile (unless one was already pending), restore */
struct sigpipe_guard {
    sigset_t old;
    bool was_pending;
};

static void sigpipe_block(struct sigpipe_guard *g)
{
    sigset_t s, pend;
    sigemptyset(&s);
    sigaddset(&s, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &s, &g->old);
    sigpending(&pend);
    g->was_pending = sigismember(&pend, SIGPIPE) == 1;
}

static void sigpipe_restore(struct sigpipe_guard *g)
{
    sigset_t s, pend;
    sigemptyset(&s);
    sigaddset(&s, SIGPIPE);
    sigpending(&pend);
    if (!g->was_pending && sigismember(&pend, SIGPIPE) == 1) {
        struct timespec zero = {0, 0};
        while (sigtimedwait(&s, NULL, &zero) < 0 && errno == EINTR)
            ;
    }
    pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

/* ---- a round ---------------------------------------------------------- */

static void reset_copies(struct fl_copy *copies, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        copies[i].placement = FL_UNKNOWN;
        copies[i].opened = false;
        copies[i].read = false;
        copies[i].rescued = false;
    }
}

/* note_failure - remember why, schedule the next connect attempt */
static void note_failure(struct imap_loop *l, const char *err)
{
    l->backoff_ms = l->backoff_ms ? l->backoff_ms * 2 : BACKOFF_FIRST_MS;
    if (l->backoff_ms > BACKOFF_MAX_MS)
        l->backoff_ms = BACKOFF_MAX_MS;
    l->retry_at_ms = time_mono_ms() + l->backoff_ms;
    snprintf(l->last_err, sizeof l->last_err, "%s", err);
}

/* round_prepare - the copies' keys and the day the first read starts */
static void round_prepare(struct imap_round *r, struct fl_copy *copies, size_t n)
{
    int64_t oldest = INT64_MAX;
    r->copies = copies;
    r->n = n;
    r->keys = xcalloc(n, sizeof *r->keys);
    r->ck = xcalloc(n, 1);
    for (size_t i = 0; i < n; i++) {
        if (!message_id_ok(copies[i].message_id))
            continue;
        r->keys[i] = imap_index_hash(copies[i].message_id, strlen(copies[i].message_id));
        if (copies[i].sent_at_ms < oldest)
            oldest = copies[i].sent_at_ms;
    }
    /* a day of margin for the server's time zone; unknown times: all */
    r->since_day = oldest == INT64_MAX ? 0 : oldest <= 0 ? 0 : oldest / 86400000 - 1;
}

/* connect_if_needed - a usable session: the kept one (NOOP probe), or a new
 * one unless inside the backoff window. 0, or -1 with errbuf */
static int connect_if_needed(struct imap_loop *l, char *errbuf, size_t errlen)
{
    char err[512] = "";
    if (l->imap) {
        imap_count_command();
        int r = mailimap_noop(l->imap);
        if (r != MAILIMAP_NO_ERROR) {
            /* dropped while idle (server timeout, restart): not an outage
             * yet, so reconnect at once */
            imap_session_close(l, false,
                               imap_connection_error(r) ? imap_strerror(r) : "NOOP refused");
        }
    }
    if (l->imap)
        return 0;
    int64_t now = time_mono_ms();
    /* a rewritten password or token file is tried at once, backoff or not */
    if (now < l->retry_at_ms && !imap_secret_changed(l)) {
        long long wait_s = (l->retry_at_ms - now + 999) / 1000;
        log_info("imap loop round skipped domain=%s reconnect_in_s=%lld", l->domain, wait_s);
        errbuf_set(errbuf, errlen, "reconnecting in %lld s (last error: %s)", wait_s, l->last_err);
        return -1;
    }
    if (imap_session_open(l, err, sizeof err) < 0) {
        note_failure(l, err);
        log_warn("imap loop connect failed domain=%s host=%s port=%u retry_in_ms=%lld: %s",
                 l->domain, l->host, (unsigned)l->port, (long long)l->backoff_ms, err);
        errbuf_set(errbuf, errlen, "%s", err);
        return -1;
    }
    l->warned_no_move = false;
    return 0;
}

static int imap_check(void *loop, struct fl_copy *copies, size_t n, char *errbuf, size_t errlen)
{
    struct imap_loop *l = loop;
    struct sigpipe_guard g;
    struct imap_round r = {0};
    char err[512] = "";
    int rc = -1;
    uint64_t cmd0 = thread_commands;

    reset_copies(copies, n);
    if (n == 0)
        return 0;
    sigpipe_block(&g);
    if (connect_if_needed(l, errbuf, errlen) < 0)
        goto out;
    round_prepare(&r, copies, n);
    int fr = imap_folder_round(l, FL_INBOX, &r, err, sizeof err);
    if (fr == 0)
        fr = imap_folder_round(l, FL_SPAM, &r, err, sizeof err);
    if (fr < 0) {
        reset_copies(copies, n);
        log_warn("imap loop round failed domain=%s host=%s copies=%zu: %s", l->domain, l->host, n,
                 err);
        errbuf_set(errbuf, errlen, "%s", err);
        if (fr == -1) {
            /* the session is gone: close it, the next rounds back off */
            imap_session_close(l, false, err);
            note_failure(l, err);
        }
        goto out;
    }
    size_t found[4] = {0};
    for (size_t i = 0; i < n; i++) {
        if (copies[i].placement == FL_UNKNOWN && r.ck[i] == (IMAP_CK_INBOX | IMAP_CK_SPAM))
            copies[i].placement = FL_NOT_FOUND;
        if ((unsigned)copies[i].placement < 4)
            found[copies[i].placement]++;
    }
    log_debug("imap loop round domain=%s copies=%zu inbox=%zu spam=%zu not_found=%zu "
              "unknown=%zu rescued=%zu marked_read=%zu flagged=%zu commands=%llu",
              l->domain, n, found[FL_INBOX], found[FL_SPAM], found[FL_NOT_FOUND], found[FL_UNKNOWN],
              r.rescued, r.marked_read, r.flagged, (unsigned long long)(thread_commands - cmd0));
    l->backoff_ms = 0;
    l->retry_at_ms = 0;
    rc = 0;
out:
    free(r.keys);
    free(r.ck);
    sigpipe_restore(&g);
    return rc;
}

/* ---- create / destroy ------------------------------------------------- */

static void loop_free(struct imap_loop *l)
{
    if (!l)
        return;
    if (l->password) {
        explicit_bzero(l->password, strlen(l->password));
        free(l->password);
    }
    free(l->domain);
    free(l->host);
    free(l->user);
    free(l->inbox);
    free(l->spam_conf);
    free(l->ca_file);
    free(l->spam);
    free(l->password_file);
    free(l->oauth2_token_file);
    imap_index_free(l->ix_inbox);
    imap_index_free(l->ix_spam);
    X509_STORE_free(l->store);
    free(l);
}

static void *imap_create(const char *domain, json_object *settings, char *errbuf, size_t errlen)
{
    struct imap_loop *l = xcalloc(1, sizeof *l);
    char err[384];

    if (imap_parse_settings(l, settings, err, sizeof err) < 0) {
        errbuf_set(errbuf, errlen, "imap settings: %s", err);
        loop_free(l);
        return NULL;
    }
    l->domain = xstrdup(domain ? domain : "");
    log_info("imap loop created domain=%s host=%s port=%u tls=%s user=%s", l->domain, l->host,
             (unsigned)l->port, imap_tls_names[l->tls], l->user);
    return l;
}

static void imap_destroy(void *loop)
{
    struct imap_loop *l = loop;
    if (!l)
        return;
    if (l->imap) {
        struct sigpipe_guard g;
        sigpipe_block(&g);
        imap_session_close(l, true, "loop destroyed");
        sigpipe_restore(&g);
    }
    loop_free(l);
}

/* imap_connected - holds a session now */
static bool imap_connected(void *loop)
{
    const struct imap_loop *l = loop;
    return l && l->imap;
}

/* imap_idle_close - LOGOUT and close (bounded by the timeout); the indexes,
 * backoff and counters stay for the next check */
static void imap_idle_close(void *loop)
{
    struct imap_loop *l = loop;
    if (!l || !l->imap)
        return;
    struct sigpipe_guard g;
    sigpipe_block(&g);
    imap_session_close(l, true, "idle");
    sigpipe_restore(&g);
}

const struct feedback_loop_ops loop_imap_ops = {
    .name = "imap",
    .create = imap_create,
    .check = imap_check,
    .destroy = imap_destroy,
    .connected = imap_connected,
    .idle_close = imap_idle_close,
};
