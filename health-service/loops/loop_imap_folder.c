/* loop_imap_folder.c - one folder's part of an IMAP FeedbackLoop round
 * (part of the loop in loop_imap.c): open the folder, bring its index up to
 * date, match the round's copies, fetch their flags, engage.
 *
 * Open: SELECT when an engage action is configured, else EXAMINE (read-only:
 * checking then never changes a flag). UIDVALIDITY and UIDNEXT come from
 * the open's answer.
 *
 * Index (imap_index.h, kept in the loop across connections; a changed
 * UIDVALIDITY empties it): the first sync reads the Message-ID of the mail
 * received since the round's since_day (UID SEARCH SINCE, then UID FETCH of
 * BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)] for those UIDs); later rounds read
 * only the UIDs from next_uid on, when UIDNEXT says there are any (UID FETCH
 * next_uid:*); a round with a copy older than what the index covers reads
 * the older days once (SEARCH SINCE .. BEFORE). Every Message-ID read is
 * kept, not only those of tracked copies: a message delivered before its
 * email.sent event is then found when the copy arrives. Pruning: a UID a
 * flags FETCH no longer returns is dropped; when the index holds clearly
 * more entries than the folder has messages, UID SEARCH ALL tells which
 * UIDs remain.
 *
 * Match and flags: each copy's key is looked up (a copy already found in
 * the inbox is not looked for in the spam folder: the inbox wins); one UID
 * FETCH (UID FLAGS) per FLAGS_CHUNK found UIDs; a UID the server does not
 * return is gone from the folder (moved, expunged).
 *
 * Engagement (SELECT only): mark_read stores \Seen, flag \Flagged, on the
 * found messages lacking it (+FLAGS.SILENT, before any move, so a rescued
 * message carries them); rescue moves the copies found in the spam folder
 * to the inbox: UID MOVE when the server offers MOVE, else (UIDPLUS) UID
 * COPY, UID STORE +FLAGS.SILENT (\Deleted) and UID EXPUNGE of exactly those
 * UIDs; never a plain EXPUNGE, which would also remove other mail marked
 * \Deleted. Without MOVE and UIDPLUS nothing is moved (one warning per
 * connection). A message already marked \Deleted is not rescued. Each
 * action batch is logged (info: mailbox, folder, count; debug: each
 * Message-ID); results describe the mailbox after the actions.
 *
 * Every libetpan command is counted (imap_count_command). A server NO
 * fails what it concerns and keeps the connection; a connection error
 * ends the round (-1).
 * Threads: the thread using the loop instance (one at a time).
 */
#include "imap_index.h"
#include "loop_imap_int.h"

#include "errbuf.h"
#include "log.h"
#include "xalloc.h"

#include <libetpan/libetpan.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HEADER_CHUNK 2000 /* UIDs per header FETCH */
#define FLAGS_CHUNK 1000  /* UIDs per FLAGS FETCH, STORE, MOVE, COPY, EXPUNGE */
#define PRUNE_SLACK 64    /* entries over the folder's count before a prune */

/* flag bits of a found message */
#define F_SEEN 1u
#define F_ANSWERED 2u
#define F_FLAGGED 4u
#define F_DELETED 8u
#define F_PRESENT 16u /* the flags FETCH returned the UID */

/* a copy found in the folder's index */
struct hit {
    uint32_t uid;
    size_t copy;
    unsigned flags;
};

/* the folder being worked on */
struct folder {
    struct imap_loop *l;
    struct imap_round *r;
    const char *name;
    enum fl_placement where;
    struct imap_index *ix;
    struct hit *hits;
    size_t nhits;
};

/* ---- helpers ---------------------------------------------------------- */

static void oom_if(const void *p)
{
    if (!p)
        abort(); /* out of memory: the project's policy */
}

/* set_of - a set of the sorted uids[0..n), runs as ranges, no duplicates */
static struct mailimap_set *set_of(const uint32_t *uids, size_t n)
{
    struct mailimap_set *set = mailimap_set_new_empty();
    oom_if(set);
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j + 1 < n && (uids[j + 1] == uids[j] || uids[j + 1] == uids[j] + 1))
            j++;
        if (mailimap_set_add_interval(set, uids[i], uids[j]) != MAILIMAP_NO_ERROR)
            abort();
        i = j + 1;
    }
    return set;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static int cmp_hit(const void *a, const void *b)
{
    const struct hit *x = a, *y = b;
    if (x->uid != y->uid)
        return x->uid < y->uid ? -1 : 1;
    return x->copy < y->copy ? -1 : x->copy > y->copy;
}

/* failed - a command failed: the error into err for a connection error
 * (-1: the round ends), else a warning and -2 (the command's work is lost,
 * the connection stays) */
static int failed(struct folder *f, int r, const char *what, char *err, size_t errlen)
{
    char why[512];
    imap_cmd_error(f->l, r, what, why, sizeof why);
    if (imap_connection_error(r)) {
        errbuf_set(err, errlen, "%s", why);
        return -1;
    }
    log_warn("imap loop domain=%s mailbox=\"%s\": %s", f->l->domain, f->name, why);
    return -2;
}

/* imap_date - day (days since 1970-01-01) as a libetpan date */
static struct mailimap_date *imap_date(int64_t day)
{
    time_t t = (time_t)(day * 86400);
    struct tm tm;
    if (!gmtime_r(&t, &tm))
        abort();
    struct mailimap_date *d = mailimap_date_new(tm.tm_mday, tm.tm_mon + 1, tm.tm_year + 1900);
    oom_if(d);
    return d;
}

/* ---- the index -------------------------------------------------------- */

/* msg_uid - the UID of a FETCH answer, 0 when absent */
static uint32_t msg_uid(struct mailimap_msg_att *ma)
{
    for (clistiter *a = clist_begin(ma->att_list); a; a = clist_next(a)) {
        struct mailimap_msg_att_item *item = clist_content(a);
        if (item->att_type == MAILIMAP_MSG_ATT_ITEM_STATIC &&
            item->att_data.att_static->att_type == MAILIMAP_MSG_ATT_UID)
            return item->att_data.att_static->att_data.att_uid;
    }
    return 0;
}

/* read_headers - UID FETCH set (UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]):
 * every UID >= min_uid answered goes into the index; *max_uid the highest
 * seen. 0, -1 (connection) or -2 (refused) */
static int read_headers(struct folder *f, struct mailimap_set *set, uint32_t min_uid,
                        uint32_t *max_uid, char *err, size_t errlen)
{
    clist *names = clist_new();
    oom_if(names);
    if (clist_append(names, xstrdup("MESSAGE-ID")) < 0)
        abort();
    struct mailimap_header_list *hl = mailimap_header_list_new(names);
    oom_if(hl);
    struct mailimap_section *sec = mailimap_section_new_header_fields(hl);
    oom_if(sec);
    struct mailimap_fetch_att *body = mailimap_fetch_att_new_body_peek_section(sec);
    oom_if(body);
    struct mailimap_fetch_type *ft = mailimap_fetch_type_new_fetch_att_list_empty();
    oom_if(ft);
    mailimap_fetch_type_new_fetch_att_list_add(ft, mailimap_fetch_att_new_uid());
    mailimap_fetch_type_new_fetch_att_list_add(ft, body);

    clist *res = NULL;
    imap_count_command();
    int r = mailimap_uid_fetch(f->l->imap, set, ft, &res);
    mailimap_fetch_type_free(ft);
    if (r != MAILIMAP_NO_ERROR) /* libetpan freed the list (res dangles) */
        return failed(f, r, "UID FETCH (Message-ID)", err, errlen);
    char id[IMAP_INDEX_MAX_ID + 1];
    for (clistiter *m = clist_begin(res); m; m = clist_next(m)) {
        struct mailimap_msg_att *ma = clist_content(m);
        uint32_t uid = msg_uid(ma);
        if (uid == 0 || uid < min_uid)
            continue; /* "n:*" also answers the last UID when it is below n */
        if (uid > *max_uid)
            *max_uid = uid;
        for (clistiter *a = clist_begin(ma->att_list); a; a = clist_next(a)) {
            struct mailimap_msg_att_item *item = clist_content(a);
            if (item->att_type != MAILIMAP_MSG_ATT_ITEM_STATIC ||
                item->att_data.att_static->att_type != MAILIMAP_MSG_ATT_BODY_SECTION)
                continue;
            struct mailimap_msg_att_body_section *bs =
                item->att_data.att_static->att_data.att_body_section;
            if (!bs || !bs->sec_body_part)
                continue;
            int n = imap_index_message_id(bs->sec_body_part, bs->sec_length, id, sizeof id);
            if (n > 0)
                imap_index_put(f->ix, imap_index_hash(id, (size_t)n), uid);
        }
    }
    mailimap_fetch_list_free(res);
    return 0;
}

/* search - UID SEARCH key (freed here) into a sorted array (*out, caller
 * frees); 0, -1 or -2 */
static int search(struct folder *f, struct mailimap_search_key *key, const char *what,
                  uint32_t **out, size_t *nout, char *err, size_t errlen)
{
    clist *uids = NULL;
    *out = NULL;
    *nout = 0;
    imap_count_command();
    int r = mailimap_uid_search(f->l->imap, NULL, key, &uids);
    mailimap_search_key_free(key);
    if (r != MAILIMAP_NO_ERROR) {
        /* libetpan hands over the result list with a NO or BAD too */
        if (uids)
            mailimap_search_result_free(uids);
        return failed(f, r, what, err, errlen);
    }
    size_t n = (size_t)clist_count(uids), k = 0;
    uint32_t *a = xcalloc(n ? n : 1, sizeof *a);
    for (clistiter *it = clist_begin(uids); it; it = clist_next(it))
        a[k++] = *(uint32_t *)clist_content(it);
    mailimap_search_result_free(uids);
    qsort(a, k, sizeof *a, cmp_u32);
    *out = a;
    *nout = k;
    return 0;
}

/* read_uids - the headers of the sorted uids[0..n), HEADER_CHUNK at a time */
static int read_uids(struct folder *f, const uint32_t *uids, size_t n, uint32_t *max_uid, char *err,
                     size_t errlen)
{
    for (size_t i = 0; i < n; i += HEADER_CHUNK) {
        size_t k = n - i < HEADER_CHUNK ? n - i : HEADER_CHUNK;
        struct mailimap_set *set = set_of(uids + i, k);
        int rc = read_headers(f, set, 1, max_uid, err, errlen);
        mailimap_set_free(set);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* read_since - the headers of the mail received since day since (<= 0: all)
 * and, when before > 0, before that day */
static int read_since(struct folder *f, int64_t since, int64_t before, uint32_t *max_uid, char *err,
                      size_t errlen)
{
    struct mailimap_search_key *key;
    if (since <= 0 && before <= 0) {
        key = mailimap_search_key_new_all();
    } else if (before <= 0) {
        key = mailimap_search_key_new_since(imap_date(since));
    } else {
        key = mailimap_search_key_new_multiple_empty();
        oom_if(key);
        if (since > 0 &&
            mailimap_search_key_multiple_add(
                key, mailimap_search_key_new_since(imap_date(since))) != MAILIMAP_NO_ERROR)
            abort();
        if (mailimap_search_key_multiple_add(
                key, mailimap_search_key_new_before(imap_date(before))) != MAILIMAP_NO_ERROR)
            abort();
    }
    oom_if(key);
    uint32_t *uids;
    size_t n;
    int rc = search(f, key, "UID SEARCH SINCE", &uids, &n, err, errlen);
    if (rc == 0)
        rc = read_uids(f, uids, n, max_uid, err, errlen);
    free(uids);
    return rc;
}

/* read_new - the headers of UIDs from next_uid on, in ranges of
 * HEADER_CHUNK UIDs up to uidnext (when known), the last one open-ended */
static int read_new(struct folder *f, uint32_t uidnext, char *err, size_t errlen)
{
    struct imap_index *ix = f->ix;
    uint32_t from = ix->next_uid ? ix->next_uid : 1, max_uid = 0;
    for (;;) {
        bool last = uidnext == 0 || uidnext - from <= HEADER_CHUNK;
        struct mailimap_set *set =
            mailimap_set_new_interval(from, last ? 0 : from + HEADER_CHUNK - 1);
        oom_if(set);
        int rc = read_headers(f, set, from, &max_uid, err, errlen);
        mailimap_set_free(set);
        if (rc < 0)
            return rc;
        if (last)
            break;
        from += HEADER_CHUNK;
        ix->next_uid = from; /* a later failure does not read these again */
    }
    if (max_uid >= ix->next_uid)
        ix->next_uid = max_uid + 1;
    if (uidnext > ix->next_uid)
        ix->next_uid = uidnext;
    return 0;
}

/* prune - keep only the entries whose UID the folder still has */
static int prune(struct folder *f, char *err, size_t errlen)
{
    uint32_t *uids;
    size_t n;
    int rc = search(f, mailimap_search_key_new_all(), "UID SEARCH ALL", &uids, &n, err, errlen);
    if (rc == 0) {
        size_t gone = imap_index_retain(f->ix, uids, n);
        log_debug("imap loop index pruned domain=%s mailbox=\"%s\" dropped=%zu kept=%zu",
                  f->l->domain, f->name, gone, imap_index_count(f->ix));
    }
    free(uids);
    return rc;
}

/* sync - bring the index up to date with the open folder */
static int sync_index(struct folder *f, uint32_t uidnext, uint32_t exists, char *err, size_t errlen)
{
    struct imap_index *ix = f->ix;
    int64_t since = f->r->since_day;
    uint32_t max_uid = 0;
    int rc = 0;

    if (!ix->synced) {
        if (exists > 0)
            rc = read_since(f, since, 0, &max_uid, err, errlen);
        if (rc < 0)
            return rc;
        ix->next_uid = max_uid + 1 > uidnext ? max_uid + 1 : uidnext;
        ix->since_day = since;
        ix->synced = true;
        log_debug("imap loop index built domain=%s mailbox=\"%s\" uidvalidity=%u entries=%zu "
                  "next_uid=%u",
                  f->l->domain, f->name, (unsigned)ix->uidvalidity, imap_index_count(ix),
                  (unsigned)ix->next_uid);
        return 0;
    }
    if (ix->since_day > 0 && since < ix->since_day) {
        /* a copy older than what was read: those days, once */
        rc = read_since(f, since, ix->since_day, &max_uid, err, errlen);
        if (rc < 0)
            return rc;
        ix->since_day = since;
    }
    if (uidnext == 0 || uidnext > ix->next_uid)
        rc = read_new(f, uidnext, err, errlen);
    if (rc == 0 && imap_index_count(ix) > (size_t)exists + exists / 4 + PRUNE_SLACK)
        rc = prune(f, err, errlen);
    return rc;
}

/* ---- flags and engagement -------------------------------------------- */

/* fetch_flags - UID FLAGS of every hit (FLAGS_CHUNK UIDs per command); a
 * hit not answered keeps no F_PRESENT. 0, -1 or -2 */
static int fetch_flags(struct folder *f, char *err, size_t errlen)
{
    uint32_t *uids = xcalloc(f->nhits ? f->nhits : 1, sizeof *uids);
    int rc = 0;
    for (size_t i = 0; i < f->nhits; i++)
        uids[i] = f->hits[i].uid;
    for (size_t start = 0; start < f->nhits && rc == 0; start += FLAGS_CHUNK) {
        size_t k = f->nhits - start < FLAGS_CHUNK ? f->nhits - start : FLAGS_CHUNK;
        struct mailimap_set *set = set_of(uids + start, k);
        struct mailimap_fetch_type *ft = mailimap_fetch_type_new_fetch_att_list_empty();
        oom_if(ft);
        mailimap_fetch_type_new_fetch_att_list_add(ft, mailimap_fetch_att_new_uid());
        mailimap_fetch_type_new_fetch_att_list_add(ft, mailimap_fetch_att_new_flags());
        clist *res = NULL;
        imap_count_command();
        int r = mailimap_uid_fetch(f->l->imap, set, ft, &res);
        mailimap_fetch_type_free(ft);
        mailimap_set_free(set);
        if (r != MAILIMAP_NO_ERROR) {
            /* libetpan freed the list itself (res dangles) */
            rc = failed(f, r, "UID FETCH (FLAGS)", err, errlen);
            break;
        }
        for (clistiter *m = clist_begin(res); m; m = clist_next(m)) {
            struct mailimap_msg_att *ma = clist_content(m);
            uint32_t uid = msg_uid(ma);
            unsigned fl = F_PRESENT;
            for (clistiter *a = clist_begin(ma->att_list); a; a = clist_next(a)) {
                struct mailimap_msg_att_item *item = clist_content(a);
                if (item->att_type != MAILIMAP_MSG_ATT_ITEM_DYNAMIC ||
                    !item->att_data.att_dyn->att_list)
                    continue;
                clist *fls = item->att_data.att_dyn->att_list;
                for (clistiter *x = clist_begin(fls); x; x = clist_next(x)) {
                    struct mailimap_flag_fetch *ff = clist_content(x);
                    if (ff->fl_type != MAILIMAP_FLAG_FETCH_OTHER || !ff->fl_flag)
                        continue;
                    int t = ff->fl_flag->fl_type;
                    fl |= t == MAILIMAP_FLAG_SEEN       ? F_SEEN
                          : t == MAILIMAP_FLAG_ANSWERED ? F_ANSWERED
                          : t == MAILIMAP_FLAG_FLAGGED  ? F_FLAGGED
                          : t == MAILIMAP_FLAG_DELETED  ? F_DELETED
                                                        : 0;
                }
            }
            /* the hits are sorted by UID: find the first with this one */
            struct hit key = {.uid = uid, .copy = 0};
            size_t lo = start, hi = start + k;
            while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (cmp_hit(&f->hits[mid], &key) < 0)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            for (; uid && lo < start + k && f->hits[lo].uid == uid; lo++)
                f->hits[lo].flags = fl;
        }
        mailimap_fetch_list_free(res);
    }
    free(uids);
    return rc;
}

/* uids_where - the distinct UIDs of present hits having none of the flags
 * in without (0: any) and, for the spam folder's rescue, no \Deleted;
 * sorted; *n their count; caller frees */
static uint32_t *uids_where(const struct folder *f, unsigned without, size_t *n)
{
    uint32_t *u = xcalloc(f->nhits ? f->nhits : 1, sizeof *u);
    size_t k = 0;
    for (size_t i = 0; i < f->nhits; i++) {
        const struct hit *h = &f->hits[i];
        if (!(h->flags & F_PRESENT) || (h->flags & without))
            continue;
        if (k == 0 || u[k - 1] != h->uid)
            u[k++] = h->uid;
    }
    *n = k;
    return u;
}

/* mark - set bit on the hits with a UID in uids[0..n) (sorted) */
static void mark(struct folder *f, const uint32_t *uids, size_t n, unsigned bit)
{
    for (size_t i = 0, j = 0; i < f->nhits; i++) {
        while (j < n && uids[j] < f->hits[i].uid)
            j++;
        if (j < n && uids[j] == f->hits[i].uid)
            f->hits[i].flags |= bit;
    }
}

/* log_copies - one debug line per copy with a UID in uids[0..n) */
static void log_copies(const struct folder *f, const char *action, const uint32_t *uids, size_t n)
{
    if (!log_enabled(LOG_DEBUG))
        return;
    for (size_t i = 0, j = 0; i < f->nhits; i++) {
        while (j < n && uids[j] < f->hits[i].uid)
            j++;
        if (j < n && uids[j] == f->hits[i].uid)
            log_debug("imap loop engaged domain=%s mailbox=\"%s\" action=%s uid=%u message_id=%s",
                      f->l->domain, f->name, action, (unsigned)f->hits[i].uid,
                      f->r->copies[f->hits[i].copy].message_id);
    }
}

/* uid_cmd - one UID command over uids[0..n) in FLAGS_CHUNK sets: STORE
 * +FLAGS.SILENT (flag) when flag, else MOVE / COPY to dest, or EXPUNGE
 * (neither). 0, -1 or -2 (refused: the chunks before it were done) */
enum uid_op { OP_STORE, OP_MOVE, OP_COPY, OP_EXPUNGE };

static int uid_cmd(struct folder *f, enum uid_op op, struct mailimap_flag *(*flag)(void),
                   const uint32_t *uids, size_t n, char *err, size_t errlen)
{
    static const char *const what[] = {"UID STORE", "UID MOVE", "UID COPY", "UID EXPUNGE"};
    for (size_t start = 0; start < n; start += FLAGS_CHUNK) {
        size_t k = n - start < FLAGS_CHUNK ? n - start : FLAGS_CHUNK;
        struct mailimap_set *set = set_of(uids + start, k);
        int r;
        imap_count_command();
        if (op == OP_STORE) {
            struct mailimap_flag_list *fl = mailimap_flag_list_new_empty();
            oom_if(fl);
            if (mailimap_flag_list_add(fl, flag()) != MAILIMAP_NO_ERROR)
                abort();
            struct mailimap_store_att_flags *sa = mailimap_store_att_flags_new_add_flags_silent(fl);
            oom_if(sa);
            r = mailimap_uid_store(f->l->imap, set, sa);
            mailimap_store_att_flags_free(sa);
        } else if (op == OP_MOVE) {
            r = mailimap_uid_move(f->l->imap, set, f->l->inbox);
        } else if (op == OP_COPY) {
            r = mailimap_uid_copy(f->l->imap, set, f->l->inbox);
        } else {
            r = mailimap_uid_expunge(f->l->imap, set);
        }
        mailimap_set_free(set);
        if (r != MAILIMAP_NO_ERROR)
            return failed(f, r, what[op], err, errlen);
    }
    return 0;
}

/* set_flag - STORE +FLAGS.SILENT (flag) on the present hits without bit;
 * they carry bit afterwards */
static int set_flag(struct folder *f, const char *action, unsigned bit,
                    struct mailimap_flag *(*flag)(void), char *err, size_t errlen)
{
    size_t n;
    uint32_t *uids = uids_where(f, bit, &n);
    int rc = n ? uid_cmd(f, OP_STORE, flag, uids, n, err, errlen) : 0;
    if (n && rc == 0) {
        mark(f, uids, n, bit);
        log_info("imap loop engaged domain=%s mailbox=\"%s\" action=%s count=%zu", f->l->domain,
                 f->name, action, n);
        log_copies(f, action, uids, n);
        if (bit == F_SEEN)
            f->r->marked_read += n;
        else
            f->r->flagged += n;
    }
    free(uids);
    return rc == -1 ? -1 : 0;
}

/* rescue - move the present, not \Deleted hits of the spam folder to the
 * inbox; the moved ones leave the spam index and their copies are rescued */
static int rescue(struct folder *f, char *err, size_t errlen)
{
    struct imap_loop *l = f->l;
    size_t n;
    int rc;
    uint32_t *uids = uids_where(f, F_DELETED, &n);
    const char *via = l->cap_move ? "move" : "copy+expunge";

    if (n == 0 || (!l->cap_move && !l->cap_uidplus)) {
        if (n && !l->warned_no_move) {
            log_warn("imap loop cannot rescue domain=%s host=%s: the server offers neither MOVE "
                     "nor UIDPLUS (UID EXPUNGE); copies stay in \"%s\"",
                     l->domain, l->host, f->name);
            l->warned_no_move = true;
        }
        free(uids);
        return 0;
    }
    bool moved;
    if (l->cap_move) {
        rc = uid_cmd(f, OP_MOVE, NULL, uids, n, err, errlen);
        moved = rc == 0;
    } else {
        /* COPY, then \Deleted and UID EXPUNGE of exactly these UIDs: once
         * copied, the messages are in the inbox whatever follows (a
         * refused EXPUNGE leaves them marked \Deleted, so never rescued
         * twice) */
        rc = uid_cmd(f, OP_COPY, NULL, uids, n, err, errlen);
        moved = rc == 0;
        if (rc == 0)
            rc = uid_cmd(f, OP_STORE, mailimap_flag_new_deleted, uids, n, err, errlen);
        if (rc == 0)
            rc = uid_cmd(f, OP_EXPUNGE, NULL, uids, n, err, errlen);
    }
    if (moved) {
        for (size_t i = 0, j = 0; i < f->nhits; i++) {
            while (j < n && uids[j] < f->hits[i].uid)
                j++;
            if (j < n && uids[j] == f->hits[i].uid) {
                f->r->copies[f->hits[i].copy].rescued = true;
                imap_index_remove(f->ix, f->r->keys[f->hits[i].copy], f->hits[i].uid);
            }
        }
        f->r->rescued += n;
        log_info("imap loop engaged domain=%s mailbox=\"%s\" action=rescue count=%zu via=%s "
                 "to=\"%s\"",
                 l->domain, f->name, n, via, l->inbox);
        log_copies(f, "rescue", uids, n);
    }
    free(uids);
    return rc == -1 ? -1 : 0;
}

/* ---- a folder --------------------------------------------------------- */

/* open_folder - SELECT (engage) or EXAMINE; the index checked against the
 * folder's UIDVALIDITY. 0, -1 or -2 */
static int open_folder(struct folder *f, uint32_t *uidnext, uint32_t *exists, char *err,
                       size_t errlen)
{
    struct imap_loop *l = f->l;
    bool rw = l->engage_rescue || l->engage_mark_read || l->engage_flag;
    imap_count_command();
    int r = rw ? mailimap_select(l->imap, f->name) : mailimap_examine(l->imap, f->name);
    if (r != MAILIMAP_NO_ERROR) {
        char what[300];
        snprintf(what, sizeof what, "%s \"%s\"", rw ? "SELECT" : "EXAMINE", f->name);
        imap_cmd_error(l, r, what, err, errlen);
        return imap_connection_error(r) ? -1 : -2;
    }
    struct mailimap_selection_info *si = l->imap->imap_selection_info;
    uint32_t validity = si ? si->sel_uidvalidity : 0;
    *uidnext = si ? si->sel_uidnext : 0;
    *exists = si ? si->sel_exists : 0;
    bool was = f->ix->synced;
    if (imap_index_validity(f->ix, validity) && was)
        log_info("imap loop UIDVALIDITY changed domain=%s mailbox=\"%s\" uidvalidity=%u: "
                 "reading the folder again",
                 l->domain, f->name, (unsigned)validity);
    return 0;
}

/* imap_folder_round - the folder's part of a round (see the file header).
 * -1 on a connection error, -2 when the folder cannot be opened (err set
 * for both); 0 otherwise, also when a NO left some copies unknown */
int imap_folder_round(struct imap_loop *l, enum fl_placement where, struct imap_round *r, char *err,
                      size_t errlen)
{
    struct imap_index **ixp = where == FL_INBOX ? &l->ix_inbox : &l->ix_spam;
    struct folder f = {
        .l = l, .r = r, .name = where == FL_INBOX ? l->inbox : l->spam, .where = where};
    unsigned bit = where == FL_INBOX ? IMAP_CK_INBOX : IMAP_CK_SPAM;
    uint32_t uidnext, exists;

    if (!*ixp)
        *ixp = imap_index_new(0);
    f.ix = *ixp;
    int rc = open_folder(&f, &uidnext, &exists, err, errlen);
    if (rc < 0)
        return rc;
    rc = sync_index(&f, uidnext, exists, err, errlen);
    if (rc < 0)
        return rc == -1 ? -1 : 0; /* refused: the folder stays unread this round */

    f.hits = xcalloc(r->n ? r->n : 1, sizeof *f.hits);
    for (size_t i = 0; i < r->n; i++) {
        if (r->keys[i] == 0)
            continue;
        r->ck[i] |= bit;
        if (r->copies[i].placement == FL_INBOX)
            continue; /* the inbox wins */
        uint32_t uid = imap_index_get(f.ix, r->keys[i]);
        if (uid)
            f.hits[f.nhits++] = (struct hit){.uid = uid, .copy = i};
    }
    qsort(f.hits, f.nhits, sizeof *f.hits, cmp_hit);
    rc = f.nhits ? fetch_flags(&f, err, errlen) : 0;
    bool flags_known = rc == 0;
    if (rc == -2) {
        /* flags unknown: the index still says where they are; no action */
        for (size_t i = 0; i < f.nhits; i++)
            f.hits[i].flags = F_PRESENT;
        rc = 0;
    }
    if (rc < 0)
        goto out;
    /* gone from the folder (moved, expunged): forget them */
    for (size_t i = 0; i < f.nhits; i++) {
        if (!(f.hits[i].flags & F_PRESENT))
            imap_index_remove(f.ix, r->keys[f.hits[i].copy], f.hits[i].uid);
    }
    if (flags_known && l->engage_mark_read)
        rc = set_flag(&f, "mark_read", F_SEEN, mailimap_flag_new_seen, err, errlen);
    if (flags_known && rc == 0 && l->engage_flag)
        rc = set_flag(&f, "flag", F_FLAGGED, mailimap_flag_new_flagged, err, errlen);
    if (flags_known && rc == 0 && l->engage_rescue && where == FL_SPAM)
        rc = rescue(&f, err, errlen);
    if (rc < 0)
        goto out;
    for (size_t i = 0; i < f.nhits; i++) {
        const struct hit *h = &f.hits[i];
        struct fl_copy *c = &r->copies[h->copy];
        if (!(h->flags & F_PRESENT) || c->placement == FL_INBOX)
            continue;
        c->placement = where;
        bool seen = h->flags & F_SEEN;
        c->opened |= seen;
        c->read |= seen && (h->flags & (F_ANSWERED | F_FLAGGED));
    }
out:
    free(f.hits);
    return rc;
}
