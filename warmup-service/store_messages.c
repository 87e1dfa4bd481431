/* store_messages.c - the SQLite backend of store.h for transactional
 * messages: each copy joins the email (kind MESSAGES) of its template
 * version, From, SmtpClient and priority, so the sender sends them as it
 * sends any email, and a high-priority one is claimed first. Locks as in
 * store.c. */
#include "db.h"
#include "log.h"
#include "outbox.h"
#include "store.h"
#include "store_int.h"
#include "xalloc.h"

#include <stdlib.h>
#include <string.h>

/* container - the messages email for m->email, made when missing, inside
 * the caller's transaction: 0 and its id, salt and msgid domain in out */
static int container(struct store *s, const struct email_spec *e, struct message_ref *out)
{
    int rc = -1, r;
    sqlite3_stmt *st =
        db_prepare(s->w, "SELECT id, salt, msgid_domain FROM emails WHERE kind = 2"
                         " AND template = ?1 AND template_version = ?2 AND from_addr = ?3"
                         " AND coalesce(from_name, '') = coalesce(?4, '') AND priority = ?5"
                         " AND smtp_client = ?6 AND msgid_domain = ?7 ORDER BY id LIMIT 1");
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, e->template_name, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, e->template_version);
    sqlite3_bind_text(st, 3, e->from, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, e->from_name, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 5, e->priority);
    sqlite3_bind_text(st, 6, e->smtp_client, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, e->msgid_domain, -1, SQLITE_STATIC);
    r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
        out->email_id = sqlite3_column_int64(st, 0);
        out->salt = store_col_str(st, 1);
        out->msgid_domain = store_col_str(st, 2);
        rc = 0;
    }
    sqlite3_finalize(st);
    if (r != SQLITE_DONE)
        return rc;
    char *mid = NULL;
    if (store_insert_email(s, e, &out->email_id, &mid) != 0)
        return -1;
    free(mid);
    st = db_prepare(s->w, "SELECT salt, msgid_domain FROM emails WHERE id = ?");
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, out->email_id);
    if (sqlite3_step(st) == SQLITE_ROW) {
        out->salt = store_col_str(st, 0);
        out->msgid_domain = store_col_str(st, 1);
        rc = 0;
    }
    sqlite3_finalize(st);
    return rc;
}

/* replayed - the copy stored for key before, inside the caller's
 * transaction: 0 found (*out filled, replayed), 1 none, -1 */
static int replayed(struct store *s, const char *key, struct message_ref *out)
{
    int rc = -1, r;
    sqlite3_stmt *st =
        db_prepare(s->w, "SELECT r.email_id, r.copy_id, e.salt, e.msgid_domain"
                         " FROM message_requests r JOIN emails e ON e.id = r.email_id"
                         " WHERE r.key = ?");
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
        out->email_id = sqlite3_column_int64(st, 0);
        out->copy_id = sqlite3_column_int64(st, 1);
        out->salt = store_col_str(st, 2);
        out->msgid_domain = store_col_str(st, 3);
        out->replayed = true;
        rc = 0;
    } else if (r == SQLITE_DONE) {
        rc = 1;
    }
    sqlite3_finalize(st);
    return rc;
}

/* remember - key names the copy in out, inside the caller's transaction */
static int remember(struct store *s, const char *key, const struct message_ref *out)
{
    sqlite3_stmt *st = db_prepare(s->w, "INSERT INTO message_requests(key, email_id, copy_id)"
                                        " VALUES(?, ?, ?)");
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, out->email_id);
    sqlite3_bind_int64(st, 3, out->copy_id);
    int rc = db_step(s->w, st);
    sqlite3_finalize(st);
    return rc;
}

int store_add_message(struct store *s, const struct message_spec *m, struct message_ref *out)
{
    int rc = -1;
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&s->w_lock);
    sqlite3_stmt *supp = db_prepare(s->w, "SELECT 1 FROM suppressions WHERE address = ?");
    sqlite3_stmt *dom =
        db_prepare(s->w, "INSERT INTO domains(name) VALUES(?) ON CONFLICT DO NOTHING");
    sqlite3_stmt *ins =
        db_prepare(s->w, "INSERT INTO deliveries(email_id, user_id, recipient, name, lane, data)"
                         " VALUES(?1, coalesce((SELECT id FROM users WHERE email_id = ?2 COLLATE "
                         "NOCASE), 0), ?2, ?3,"
                         " (SELECT id FROM domains WHERE name = ?4), ?5)");
    sqlite3_stmt *cnt =
        db_prepare(s->w, "UPDATE emails SET n_pending = n_pending + 1 WHERE id = ?");
    if (!supp || !dom || !ins || !cnt || db_begin(s->w) != 0)
        goto out;
    if (m->request_key) {
        int r0 = replayed(s, m->request_key, out);
        if (r0 != 1) { /* 0: stored before, nothing to write */
            rc = r0;
            goto out;
        }
    }
    sqlite3_bind_text(supp, 1, m->recipient, -1, SQLITE_STATIC);
    int r = sqlite3_step(supp);
    if (r == SQLITE_ROW) {
        rc = STORE_DUPLICATE;
        goto out;
    }
    if (r != SQLITE_DONE || container(s, m->email, out) != 0)
        goto out;
    sqlite3_bind_text(dom, 1, m->domain, -1, SQLITE_STATIC);
    if (db_step(s->w, dom) != 0)
        goto out;
    sqlite3_bind_int64(ins, 1, out->email_id);
    sqlite3_bind_text(ins, 2, m->recipient, -1, SQLITE_STATIC);
    sqlite3_bind_text(ins, 3, m->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(ins, 4, m->domain, -1, SQLITE_STATIC);
    sqlite3_bind_text(ins, 5, m->data, -1, SQLITE_STATIC);
    if (db_step(s->w, ins) != 0)
        goto out;
    out->copy_id = sqlite3_last_insert_rowid(s->w);
    sqlite3_bind_int64(cnt, 1, out->email_id);
    if (db_step(s->w, cnt) != 0 || (m->request_key && remember(s, m->request_key, out) != 0))
        goto out;
    rc = db_commit(s->w);
out:
    if (rc == 0 && out->replayed)
        db_rollback(s->w); /* nothing written */
    if (rc != 0) {
        db_rollback(s->w);
        free(out->salt);
        free(out->msgid_domain);
        out->salt = out->msgid_domain = NULL;
    }
    sqlite3_finalize(supp);
    sqlite3_finalize(dom);
    sqlite3_finalize(ins);
    sqlite3_finalize(cnt);
    pthread_mutex_unlock(&s->w_lock);
    return rc;
}

int store_user_vars(struct store *s, const char *address, char **name, char **attributes)
{
    int rc = -1, r;
    *name = *attributes = NULL;
    pthread_mutex_lock(&s->r_lock);
    sqlite3_stmt *st =
        db_prepare(s->r, "SELECT name, attributes FROM users WHERE email_id = ? COLLATE NOCASE");
    if (st) {
        sqlite3_bind_text(st, 1, address, -1, SQLITE_STATIC);
        r = sqlite3_step(st);
        if (r == SQLITE_ROW) {
            *name = store_col_str(st, 0);
            *attributes = store_col_dup(st, 1);
            rc = 0;
        } else if (r == SQLITE_DONE) {
            rc = 1;
        }
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&s->r_lock);
    return rc;
}

int store_add_event(struct store *s, const char *topic, const char *key, const char *event)
{
    int rc = -1;
    pthread_mutex_lock(&s->w_lock);
    if (db_begin(s->w) == 0) {
        rc = outbox_add(s->w, topic, key, event);
        if (rc == 0)
            rc = db_commit(s->w);
        if (rc != 0)
            db_rollback(s->w);
    }
    pthread_mutex_unlock(&s->w_lock);
    return rc;
}
