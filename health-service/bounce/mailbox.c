/* mailbox.c - the bounce mailbox over IMAP (mailbox.h): settings, SELECT,
 * UID SEARCH UNSEEN, UID FETCH BODY.PEEK[], and \Seen or UID MOVE once a
 * report is processed.
 *
 * The connection and the settings are the IMAP FeedbackLoop's: the object
 * is checked here for the mailbox's own keys (folder, processed_folder),
 * the rest goes to loop_imap_ops.create, which gives a struct imap_loop
 * (loop_imap_int.h) with the folder as its inbox, and also as its spam
 * folder so that connecting never looks for a \Junk mailbox. Sessions are
 * opened and closed with imap_session_open / imap_session_close.
 *
 * Owns the loop instance (and so its session and password). Threads: the
 * bounce reader's, which blocks SIGPIPE (a write to a dropped connection
 * then fails with EPIPE instead of killing the process).
 */
#include "mailbox.h"
#include "errbuf.h"
#include "jsonx.h"
#include "log.h"
#include "xalloc.h"

#include "../loops/loop_imap_int.h"

#include <libetpan/libetpan.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mailbox {
    struct imap_loop *l; /* settings and session (loop_imap_ops) */
    char *folder;
    char *processed; /* processed_folder, or NULL: flag \Seen */
    char desc[600];
};

struct mailbox *mailbox_new(const char *json, char *errbuf, size_t errlen)
{
    static const char *const keys[] = {"host",     "port",
                                       "tls",      "user",
                                       "password", "password_file",
                                       "ca_file",  "timeout_ms",
                                       "folder",   "processed_folder",
                                       NULL};
    char err[384];
    struct mailbox *m = xcalloc(1, sizeof *m);
    json_object *o = json ? json_tokener_parse(json) : NULL, *rest = NULL;
    if (!o || !json_object_is_type(o, json_type_object)) {
        errbuf_set(errbuf, errlen, "not a JSON object with host, user and password");
        goto fail;
    }
    if (jsonx_check_keys(o, keys, err, sizeof err) < 0 ||
        imap_setting_name(o, "folder", false, 255, &m->folder, err, sizeof err) < 0 ||
        imap_setting_name(o, "processed_folder", false, 255, &m->processed, err, sizeof err) < 0) {
        errbuf_set(errbuf, errlen, "%s", err);
        goto fail;
    }
    if (!m->folder)
        m->folder = xstrdup("INBOX");
    rest = json_object_new_object();
    json_object_object_foreach(o, k, v)
    {
        if (strcmp(k, "folder") != 0 && strcmp(k, "processed_folder") != 0)
            json_object_object_add(rest, k, json_object_get(v));
    }
    json_object_object_add(rest, "inbox", json_object_new_string(m->folder));
    json_object_object_add(rest, "spam", json_object_new_string(m->folder));
    m->l = loop_imap_ops.create("bounce-mailbox", rest, err, sizeof err);
    if (!m->l) {
        errbuf_set(errbuf, errlen, "%s", err);
        goto fail;
    }
    snprintf(m->desc, sizeof m->desc, "%s@%s:%u/%s", m->l->user, m->l->host, (unsigned)m->l->port,
             m->folder);
    json_object_put(rest);
    json_object_put(o);
    return m;
fail:
    json_object_put(rest);
    json_object_put(o);
    mailbox_free(m);
    return NULL;
}

void mailbox_free(struct mailbox *m)
{
    if (!m)
        return;
    loop_imap_ops.destroy(m->l); /* LOGOUT, wipes the password */
    free(m->folder);
    free(m->processed);
    free(m);
}

const char *mailbox_describe(const struct mailbox *m)
{
    return m->desc;
}

/* fail - a command failed: the words into err; a connection error closes
 * the session. -1 */
static int fail(struct mailbox *m, int r, const char *what, char *err, size_t errlen)
{
    imap_cmd_error(m->l, r, what, err, errlen);
    if (imap_connection_error(r))
        imap_session_close(m->l, false, err);
    return -1;
}

/* connect - a session, probing a kept one with NOOP */
static int connect_once(struct mailbox *m, char *err, size_t errlen)
{
    if (m->l->imap && mailimap_noop(m->l->imap) != MAILIMAP_NO_ERROR)
        imap_session_close(m->l, false, "NOOP failed");
    if (m->l->imap)
        return 0;
    return imap_session_open(m->l, err, errlen);
}

static int by_uid(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

int mailbox_unseen(struct mailbox *m, uint32_t **uids, size_t *n, uint32_t *uidvalidity, char *err,
                   size_t errlen)
{
    *uids = NULL;
    *n = 0;
    if (connect_once(m, err, errlen) != 0)
        return -1;
    int r = mailimap_select(m->l->imap, m->folder);
    if (r != MAILIMAP_NO_ERROR) {
        char what[300];
        snprintf(what, sizeof what, "SELECT \"%s\"", m->folder);
        fail(m, r, what, err, errlen);
        imap_session_close(m->l, true, err); /* a NO too: try afresh next round */
        return -1;
    }
    *uidvalidity =
        m->l->imap->imap_selection_info ? m->l->imap->imap_selection_info->sel_uidvalidity : 0;
    struct mailimap_search_key *key = mailimap_search_key_new(
        MAILIMAP_SEARCH_KEY_UNSEEN, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
        NULL, NULL, NULL, NULL, 0, NULL, NULL, NULL, NULL, NULL, NULL, 0, NULL, NULL, NULL);
    if (!key)
        abort(); /* out of memory: the project's policy */
    clist *res = NULL;
    r = mailimap_uid_search(m->l->imap, NULL, key, &res);
    mailimap_search_key_free(key);
    if (r != MAILIMAP_NO_ERROR) {
        if (res) /* libetpan hands over the list with a NO or BAD too */
            mailimap_search_result_free(res);
        return fail(m, r, "UID SEARCH UNSEEN", err, errlen);
    }
    *uids = xcalloc(clist_count(res) + 1, sizeof **uids);
    for (clistiter *it = clist_begin(res); it; it = clist_next(it))
        (*uids)[(*n)++] = *(uint32_t *)clist_content(it);
    mailimap_search_result_free(res);
    qsort(*uids, *n, sizeof **uids, by_uid);
    return 0;
}

/* fetch_one - UID FETCH uid with the attribute att: its result list */
static int fetch_one(struct mailbox *m, uint32_t uid, struct mailimap_fetch_att *att, clist **res)
{
    struct mailimap_set *set = mailimap_set_new_single(uid);
    struct mailimap_fetch_type *ft = mailimap_fetch_type_new_fetch_att_list_empty();
    if (!set || !ft || !att)
        abort(); /* out of memory */
    mailimap_fetch_type_new_fetch_att_list_add(ft, mailimap_fetch_att_new_uid());
    mailimap_fetch_type_new_fetch_att_list_add(ft, att);
    *res = NULL;
    int r = mailimap_uid_fetch(m->l->imap, set, ft, res);
    mailimap_fetch_type_free(ft);
    mailimap_set_free(set);
    if (r != MAILIMAP_NO_ERROR && *res) {
        mailimap_fetch_list_free(*res);
        *res = NULL;
    }
    return r;
}

/* static_att - the first static attribute of type in a fetch result */
static struct mailimap_msg_att_static *static_att(clist *res, int type)
{
    for (clistiter *m = clist_begin(res); m; m = clist_next(m)) {
        struct mailimap_msg_att *ma = clist_content(m);
        for (clistiter *a = clist_begin(ma->att_list); a; a = clist_next(a)) {
            struct mailimap_msg_att_item *item = clist_content(a);
            if (item->att_type == MAILIMAP_MSG_ATT_ITEM_STATIC &&
                item->att_data.att_static->att_type == type)
                return item->att_data.att_static;
        }
    }
    return NULL;
}

int mailbox_fetch(struct mailbox *m, uint32_t uid, size_t max, char **msg, size_t *len, char *err,
                  size_t errlen)
{
    clist *res;
    *msg = NULL;
    *len = 0;
    if (!m->l->imap) {
        errbuf_set(err, errlen, "not connected");
        return -1;
    }
    /* the size first: a huge message is not read at all */
    int r = fetch_one(m, uid, mailimap_fetch_att_new_rfc822_size(), &res);
    if (r != MAILIMAP_NO_ERROR)
        return imap_connection_error(r) ? fail(m, r, "UID FETCH RFC822.SIZE", err, errlen) : 1;
    struct mailimap_msg_att_static *sz = static_att(res, MAILIMAP_MSG_ATT_RFC822_SIZE);
    uint32_t size = sz ? sz->att_data.att_rfc822_size : 0;
    mailimap_fetch_list_free(res);
    if (!sz) {
        errbuf_set(err, errlen, "no such message");
        return 1;
    }
    if (size > max) {
        errbuf_set(err, errlen, "%u bytes, over the %zu-byte limit", (unsigned)size, max);
        return 2;
    }
    r = fetch_one(m, uid, mailimap_fetch_att_new_body_peek_section(mailimap_section_new(NULL)),
                  &res);
    if (r != MAILIMAP_NO_ERROR)
        return imap_connection_error(r) ? fail(m, r, "UID FETCH BODY.PEEK[]", err, errlen) : 1;
    struct mailimap_msg_att_static *body = static_att(res, MAILIMAP_MSG_ATT_BODY_SECTION);
    int rc = 1;
    if (body && body->att_data.att_body_section->sec_body_part) {
        const struct mailimap_msg_att_body_section *b = body->att_data.att_body_section;
        *msg = xmalloc(b->sec_length + 1);
        memcpy(*msg, b->sec_body_part, b->sec_length);
        (*msg)[b->sec_length] = '\0';
        *len = b->sec_length;
        rc = 0;
    } else {
        errbuf_set(err, errlen, "the server sent no body");
    }
    mailimap_fetch_list_free(res);
    return rc;
}

int mailbox_done(struct mailbox *m, const uint32_t *uids, size_t n, char *err, size_t errlen)
{
    if (n == 0)
        return 0;
    if (!m->l->imap) {
        errbuf_set(err, errlen, "not connected");
        return -1;
    }
    struct mailimap_set *set = mailimap_set_new_empty();
    if (!set)
        abort();
    for (size_t i = 0; i < n; i++)
        mailimap_set_add_single(set, uids[i]);
    int r;
    if (m->processed) {
        r = mailimap_uid_move(m->l->imap, set, m->processed);
        mailimap_set_free(set);
        if (r == MAILIMAP_NO_ERROR)
            return 0;
        char what[300];
        snprintf(what, sizeof what, "UID MOVE to \"%s\"", m->processed);
        return fail(m, r, what, err, errlen);
    }
    struct mailimap_flag_list *fl = mailimap_flag_list_new_empty();
    if (!fl)
        abort();
    mailimap_flag_list_add(fl, mailimap_flag_new_seen());
    struct mailimap_store_att_flags *sa = mailimap_store_att_flags_new_add_flags_silent(fl);
    if (!sa)
        abort();
    r = mailimap_uid_store(m->l->imap, set, sa);
    mailimap_store_att_flags_free(sa);
    mailimap_set_free(set);
    if (r == MAILIMAP_NO_ERROR)
        return 0;
    return fail(m, r, "UID STORE +FLAGS (\\Seen)", err, errlen);
}
