/* loop_imap.c - the IMAP FeedbackLoop: looks into one seed mailbox per
 * domain (libetpan) and tells, for each tracked copy, whether it landed in
 * the inbox or in the spam folder and whether it was opened or read.
 *
 * This file: a round (search, fetch flags, check), create/destroy and the
 * ops. The settings are parsed in loop_imap_settings.c (described there);
 * the connection (TCP, TLS and its verification, STARTTLS, LOGIN, the spam
 * folder) is loop_imap_conn.c; loop_imap_int.h is what the pieces share.
 *
 * A round: EXAMINE the inbox (read-only, so checking never changes a
 * flag), UID SEARCH HEADER Message-ID "<id>" per copy (a substring match:
 * the angle brackets make it exact enough), one UID FETCH FLAGS for the
 * hits; the same in the spam folder. Found in the inbox -> FL_INBOX (it
 * wins when a copy is in both), in the spam folder -> FL_SPAM, searched in
 * both and found in neither -> FL_NOT_FOUND; \Seen -> opened; \Seen with
 * \Answered or \Flagged -> read. 2 searches per copy per round: fine for
 * seed mailboxes; batching (OR keys + FETCH of the header) would be the
 * next step for very large rounds.
 *
 * Connection: one per loop instance, kept across rounds. A kept connection
 * is probed with NOOP first; if the server dropped it (idle timeout,
 * restart) the loop reconnects at once, since that is no outage. A failed
 * connect or a connection error during a round closes the session and
 * returns -1; the next attempts wait 1 s, 2 s, 4 s .. 60 s (a round inside
 * that window returns -1 at once with "reconnecting in N s"); a round that
 * succeeds resets the backoff. A server NO to one command fails what it
 * concerns but keeps the connection.
 *
 * The password is never logged nor put in an error message, and wiped on
 * destroy.
 * SIGPIPE: writes to a dropped connection must not kill the process, so
 * check() and destroy() block SIGPIPE in the calling thread and swallow a
 * SIGPIPE they caused (curl's sigpipe guard); no process-wide change.
 *
 * Threads: an instance is used by one thread at a time (libetpan: one
 * session per thread); instances are independent.
 */
#include "feedback_loop.h"
#include "errbuf.h"
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
#define FETCH_CHUNK 500    /* UIDs per UID FETCH command */

/* a search hit: copy index and the UID found */
struct hit {
    size_t copy;
    uint32_t uid;
};

/* per-copy bits for one round */
#define CK_INBOX 1u /* searched in the inbox */
#define CK_SPAM 2u  /* searched in the spam folder */

/* ---- helpers ---------------------------------------------------------- */

static _Atomic uint64_t commands; /* every IMAP loop instance's commands */

/* imap_count_command - one more libetpan command call */
void imap_count_command(void)
{
    atomic_fetch_add_explicit(&commands, 1, memory_order_relaxed);
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

/* fetch_flags - UID FETCH FLAGS for the hits (in chunks), then apply them
 * to the copies; a NO leaves opened/read unset; -1 on connection error */
static int fetch_flags(struct imap_loop *l, const struct hit *hits, size_t nhits,
                       enum fl_placement where, struct fl_copy *copies, char *err, size_t errlen)
{
    for (size_t start = 0; start < nhits; start += FETCH_CHUNK) {
        size_t end = start + FETCH_CHUNK < nhits ? start + FETCH_CHUNK : nhits;
        struct mailimap_set *set = mailimap_set_new_empty();
        struct mailimap_fetch_type *ft = mailimap_fetch_type_new_fetch_att_list_empty();
        if (!set || !ft)
            abort(); /* out of memory: the project's policy */
        for (size_t i = start; i < end; i++)
            mailimap_set_add_single(set, hits[i].uid);
        mailimap_fetch_type_new_fetch_att_list_add(ft, mailimap_fetch_att_new_uid());
        mailimap_fetch_type_new_fetch_att_list_add(ft, mailimap_fetch_att_new_flags());
        clist *res = NULL;
        int r = mailimap_uid_fetch(l->imap, set, ft, &res);
        mailimap_fetch_type_free(ft);
        mailimap_set_free(set);
        if (r != MAILIMAP_NO_ERROR) {
            if (imap_connection_error(r)) {
                imap_cmd_error(l, r, "UID FETCH", err, errlen);
                return -1;
            }
            log_warn("imap loop UID FETCH refused domain=%s mailbox=\"%s\": flags unknown",
                     l->domain, where == FL_INBOX ? l->inbox : l->spam);
            continue;
        }
        for (clistiter *m = clist_begin(res); m; m = clist_next(m)) {
            struct mailimap_msg_att *ma = clist_content(m);
            uint32_t uid = 0;
            bool seen = false, answered = false, flagged = false;
            for (clistiter *a = clist_begin(ma->att_list); a; a = clist_next(a)) {
                struct mailimap_msg_att_item *item = clist_content(a);
                if (item->att_type == MAILIMAP_MSG_ATT_ITEM_STATIC &&
                    item->att_data.att_static->att_type == MAILIMAP_MSG_ATT_UID) {
                    uid = item->att_data.att_static->att_data.att_uid;
                } else if (item->att_type == MAILIMAP_MSG_ATT_ITEM_DYNAMIC &&
                           item->att_data.att_dyn->att_list) {
                    clist *fl = item->att_data.att_dyn->att_list;
                    for (clistiter *f = clist_begin(fl); f; f = clist_next(f)) {
                        struct mailimap_flag_fetch *ff = clist_content(f);
                        if (ff->fl_type != MAILIMAP_FLAG_FETCH_OTHER || !ff->fl_flag)
                            continue;
                        seen |= ff->fl_flag->fl_type == MAILIMAP_FLAG_SEEN;
                        answered |= ff->fl_flag->fl_type == MAILIMAP_FLAG_ANSWERED;
                        flagged |= ff->fl_flag->fl_type == MAILIMAP_FLAG_FLAGGED;
                    }
                }
            }
            for (size_t i = start; uid && i < end; i++) {
                struct fl_copy *c = &copies[hits[i].copy];
                if (hits[i].uid != uid || c->placement != where)
                    continue;
                c->opened |= seen;
                c->read |= seen && (answered || flagged);
            }
        }
        mailimap_fetch_list_free(res);
    }
    return 0;
}

/* check_folder - EXAMINE folder, search every checkable copy, fetch the
 * flags of the hits; marks searched copies in ck. -1 on a connection
 * error, -2 when the server refuses to open the folder */
static int check_folder(struct imap_loop *l, const char *folder, enum fl_placement where,
                        struct fl_copy *copies, size_t n, unsigned char *ck, char *err,
                        size_t errlen)
{
    struct hit *hits = NULL;
    size_t nhits = 0, cap = 0;
    int rc = -1;
    unsigned bit = where == FL_INBOX ? CK_INBOX : CK_SPAM;

    int r = mailimap_examine(l->imap, folder);
    if (r != MAILIMAP_NO_ERROR) {
        char what[300];
        snprintf(what, sizeof what, "EXAMINE \"%s\"", folder);
        imap_cmd_error(l, r, what, err, errlen);
        return imap_connection_error(r) ? -1 : -2;
    }
    for (size_t i = 0; i < n; i++) {
        if (!message_id_ok(copies[i].message_id))
            continue;
        /* libetpan frees both strings with the key */
        struct mailimap_search_key *key =
            mailimap_search_key_new_header(xstrdup("Message-ID"), xstrdup(copies[i].message_id));
        if (!key)
            abort(); /* out of memory */
        clist *uids = NULL;
        r = mailimap_uid_search(l->imap, NULL, key, &uids);
        mailimap_search_key_free(key);
        if (r != MAILIMAP_NO_ERROR) {
            /* libetpan hands over the result list with a NO or BAD too */
            if (uids)
                mailimap_search_result_free(uids);
            if (imap_connection_error(r)) {
                imap_cmd_error(l, r, "UID SEARCH", err, errlen);
                goto out;
            }
            log_warn("imap loop UID SEARCH refused domain=%s mailbox=\"%s\" message_id=%s",
                     l->domain, folder, copies[i].message_id);
            continue;
        }
        ck[i] |= bit;
        for (clistiter *it = clist_begin(uids); it; it = clist_next(it)) {
            uint32_t *uid = clist_content(it);
            if (nhits == cap) {
                cap = cap ? cap * 2 : 16;
                hits = xreallocarray(hits, cap, sizeof *hits);
            }
            hits[nhits].copy = i;
            hits[nhits].uid = *uid;
            nhits++;
            if (copies[i].placement == FL_UNKNOWN)
                copies[i].placement = where; /* the inbox is searched first and wins */
        }
        mailimap_search_result_free(uids);
    }
    rc = fetch_flags(l, hits, nhits, where, copies, err, errlen);
out:
    free(hits);
    return rc;
}

static void reset_copies(struct fl_copy *copies, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        copies[i].placement = FL_UNKNOWN;
        copies[i].opened = false;
        copies[i].read = false;
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

static int imap_check(void *loop, struct fl_copy *copies, size_t n, char *errbuf, size_t errlen)
{
    struct imap_loop *l = loop;
    struct sigpipe_guard g;
    unsigned char *ck = NULL;
    char err[512] = "";
    int rc = -1;

    reset_copies(copies, n);
    if (n == 0)
        return 0;
    sigpipe_block(&g);
    if (l->imap) {
        int r = mailimap_noop(l->imap);
        if (r != MAILIMAP_NO_ERROR) {
            /* dropped while idle (server timeout, restart): not an outage
             * yet, so reconnect at once */
            imap_session_close(l, false,
                               imap_connection_error(r) ? imap_strerror(r) : "NOOP refused");
        }
    }
    if (!l->imap) {
        int64_t now = time_mono_ms();
        if (now < l->retry_at_ms) {
            long long wait_s = (l->retry_at_ms - now + 999) / 1000;
            log_info("imap loop round skipped domain=%s reconnect_in_s=%lld", l->domain, wait_s);
            errbuf_set(errbuf, errlen, "reconnecting in %lld s (last error: %s)", wait_s,
                       l->last_err);
            goto out;
        }
        if (imap_session_open(l, err, sizeof err) < 0) {
            note_failure(l, err);
            log_warn("imap loop connect failed domain=%s host=%s port=%u retry_in_ms=%lld: %s",
                     l->domain, l->host, (unsigned)l->port, (long long)l->backoff_ms, err);
            errbuf_set(errbuf, errlen, "%s", err);
            goto out;
        }
    }
    ck = xcalloc(n, 1);
    int fr = check_folder(l, l->inbox, FL_INBOX, copies, n, ck, err, sizeof err);
    if (fr == 0)
        fr = check_folder(l, l->spam, FL_SPAM, copies, n, ck, err, sizeof err);
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
    for (size_t i = 0; i < n; i++) {
        if (copies[i].placement == FL_UNKNOWN && ck[i] == (CK_INBOX | CK_SPAM))
            copies[i].placement = FL_NOT_FOUND;
    }
    l->backoff_ms = 0;
    l->retry_at_ms = 0;
    rc = 0;
out:
    free(ck);
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

const struct feedback_loop_ops loop_imap_ops = {
    .name = "imap",
    .create = imap_create,
    .check = imap_check,
    .destroy = imap_destroy,
};
