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
    struct sqldb_stmt *st =
        sqldb_prepare(s->wq, "SELECT id, salt, msgid_domain FROM emails WHERE kind = 2"
                             " AND template = ?1 AND template_version = ?2 AND from_addr = ?3"
                             " AND coalesce(from_name, '') = coalesce(?4, '') AND priority = ?5"
                             " AND smtp_client = ?6 AND msgid_domain = ?7 ORDER BY id LIMIT 1");
    if (!st)
        return -1;
    sqldb_bind_text(st, 1, e->template_name, -1);
    sqldb_bind_int64(st, 2, e->template_version);
    sqldb_bind_text(st, 3, e->from, -1);
    sqldb_bind_text(st, 4, e->from_name, -1);
    sqldb_bind_int64(st, 5, e->priority);
    sqldb_bind_text(st, 6, e->smtp_client, -1);
    sqldb_bind_text(st, 7, e->msgid_domain, -1);
    r = sqldb_step(st);
    if (r == SQLDB_ROW) {
        out->email_id = sqldb_column_int64(st, 0);
        out->salt = store_qcol_str(st, 1);
        out->msgid_domain = store_qcol_str(st, 2);
        rc = 0;
    }
    sqldb_finalize(st);
    if (r != SQLDB_DONE)
        return rc;
    char *mid = NULL;
    if (store_insert_email(s, e, &out->email_id, &mid) != 0)
        return -1;
    free(mid);
    st = sqldb_prepare(s->wq, "SELECT salt, msgid_domain FROM emails WHERE id = ?");
    if (!st)
        return -1;
    sqldb_bind_int64(st, 1, out->email_id);
    if (sqldb_step(st) == SQLDB_ROW) {
        out->salt = store_qcol_str(st, 0);
        out->msgid_domain = store_qcol_str(st, 1);
        rc = 0;
    }
    sqldb_finalize(st);
    return rc;
}

/* replayed - the copy stored for key before, inside the caller's
 * transaction: 0 found (*out filled, replayed), 1 none, -1 */
static int replayed(struct store *s, const char *key, struct message_ref *out)
{
    int rc = -1, r;
    struct sqldb_stmt *st =
        sqldb_prepare(s->wq, "SELECT r.email_id, r.copy_id, e.salt, e.msgid_domain"
                             " FROM message_requests r JOIN emails e ON e.id = r.email_id"
                             " WHERE r.key = ?");
    if (!st)
        return -1;
    sqldb_bind_text(st, 1, key, -1);
    r = sqldb_step(st);
    if (r == SQLDB_ROW) {
        out->email_id = sqldb_column_int64(st, 0);
        out->copy_id = sqldb_column_int64(st, 1);
        out->salt = store_qcol_str(st, 2);
        out->msgid_domain = store_qcol_str(st, 3);
        out->replayed = true;
        rc = 0;
    } else if (r == SQLDB_DONE) {
        rc = 1;
    }
    sqldb_finalize(st);
    return rc;
}

/* remember - key names the copy in out, inside the caller's transaction */
static int remember(struct store *s, const char *key, const struct message_ref *out)
{
    struct sqldb_stmt *st =
        sqldb_prepare(s->wq, "INSERT INTO message_requests(key, email_id, copy_id)"
                             " VALUES(?, ?, ?)");
    if (!st)
        return -1;
    sqldb_bind_text(st, 1, key, -1);
    sqldb_bind_int64(st, 2, out->email_id);
    sqldb_bind_int64(st, 3, out->copy_id);
    int rc = sqldb_run(st);
    sqldb_finalize(st);
    return rc;
}

int store_add_message(struct store *s, const struct message_spec *m, struct message_ref *out)
{
    int rc = -1;
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&s->w_lock);
    struct sqldb_stmt *supp = sqldb_prepare(s->wq, "SELECT 1 FROM suppressions WHERE address = ?");
    struct sqldb_stmt *dom =
        sqldb_prepare(s->wq, "INSERT INTO domains(name) VALUES(?) ON CONFLICT DO NOTHING");
    struct sqldb_stmt *ins = sqldb_prepare(
        s->wq, "INSERT INTO deliveries(email_id, user_id, recipient, name, lane, data)"
               " VALUES(?1, coalesce((SELECT id FROM users WHERE email_id = ?2 COLLATE "
               "NOCASE), 0), ?2, ?3,"
               " (SELECT id FROM domains WHERE name = ?4), ?5) RETURNING id");
    struct sqldb_stmt *cnt =
        sqldb_prepare(s->wq, "UPDATE emails SET n_pending = n_pending + 1 WHERE id = ?");
    if (!supp || !dom || !ins || !cnt || sqldb_begin(s->wq) != 0)
        goto out;
    if (m->request_key) {
        int r0 = replayed(s, m->request_key, out);
        if (r0 != 1) { /* 0: stored before, nothing to write */
            rc = r0;
            goto out;
        }
    }
    sqldb_bind_text(supp, 1, m->recipient, -1);
    int r = sqldb_step(supp);
    if (r == SQLDB_ROW) {
        rc = STORE_DUPLICATE;
        goto out;
    }
    if (r != SQLDB_DONE || container(s, m->email, out) != 0)
        goto out;
    sqldb_bind_text(dom, 1, m->domain, -1);
    if (sqldb_run(dom) != 0)
        goto out;
    sqldb_bind_int64(ins, 1, out->email_id);
    sqldb_bind_text(ins, 2, m->recipient, -1);
    sqldb_bind_text(ins, 3, m->name, -1);
    sqldb_bind_text(ins, 4, m->domain, -1);
    sqldb_bind_text(ins, 5, m->data, -1);
    if (sqldb_step(ins) != SQLDB_ROW)
        goto out;
    out->copy_id = sqldb_column_int64(ins, 0);
    sqldb_reset(ins);
    sqldb_bind_int64(cnt, 1, out->email_id);
    if (sqldb_run(cnt) != 0 || (m->request_key && remember(s, m->request_key, out) != 0))
        goto out;
    rc = sqldb_commit(s->wq);
out:
    if (rc == 0 && out->replayed)
        sqldb_rollback(s->wq); /* nothing written */
    if (rc != 0) {
        sqldb_rollback(s->wq);
        free(out->salt);
        free(out->msgid_domain);
        out->salt = out->msgid_domain = NULL;
    }
    sqldb_finalize(supp);
    sqldb_finalize(dom);
    sqldb_finalize(ins);
    sqldb_finalize(cnt);
    pthread_mutex_unlock(&s->w_lock);
    return rc;
}

int store_user_vars(struct store *s, const char *address, char **name, char **attributes)
{
    int rc = -1, r;
    *name = *attributes = NULL;
    pthread_mutex_lock(&s->r_lock);
    struct sqldb_stmt *st = sqldb_prepare(
        s->rq, "SELECT name, attributes FROM users WHERE email_id = ? COLLATE NOCASE");
    if (st) {
        sqldb_bind_text(st, 1, address, -1);
        r = sqldb_step(st);
        if (r == SQLDB_ROW) {
            *name = store_qcol_str(st, 0);
            *attributes = store_qcol_dup(st, 1);
            rc = 0;
        } else if (r == SQLDB_DONE) {
            rc = 1;
        }
        sqldb_finalize(st);
    }
    pthread_mutex_unlock(&s->r_lock);
    return rc;
}

int store_add_event(struct store *s, const char *topic, const char *key, const char *event)
{
    int rc = -1;
    pthread_mutex_lock(&s->w_lock);
    if (sqldb_begin(s->wq) == 0) {
        rc = outbox_add_q(s->wq, topic, key, event);
        if (rc == 0)
            rc = sqldb_commit(s->wq);
        if (rc != 0)
            sqldb_rollback(s->wq);
    }
    pthread_mutex_unlock(&s->w_lock);
    return rc;
}
