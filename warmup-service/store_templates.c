/* store_templates.c - the SQLite backend of store.h for templates: each
 * version one immutable row (name, version). Locks as in store.c. */
#include "db.h"
#include "log.h"
#include "store.h"
#include "store_int.h"
#include "tmpl.h"
#include "xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void template_cleanup(struct template *t)
{
    if (!t)
        return;
    free(t->name);
    free(t->subject);
    free(t->text);
    free(t->html);
    free(t->defaults);
    free(t->from);
    free(t->from_name);
    free(t->created_at);
    memset(t, 0, sizeof *t);
}

void store_templates_free(struct template *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        template_cleanup(&v[i]);
    free(v);
}

int store_add_template(struct store *s, const struct template_spec *t, bool create, int *version)
{
    int rc = -1, r;
    pthread_mutex_lock(&s->w_lock);
    struct sqldb_stmt *last =
        sqldb_prepare(s->wq, "SELECT max(version) FROM templates WHERE name = ?");
    struct sqldb_stmt *ins =
        sqldb_prepare(s->wq, "INSERT INTO templates(name, version, subject, text, html,"
                             " defaults, from_addr, from_name, created_at)"
                             " VALUES(?,?,?,?,?,?,?,?,?)");
    if (!last || !ins || sqldb_begin(s->wq) != 0)
        goto out;
    sqldb_bind_text(last, 1, t->name, -1);
    if ((r = sqldb_step(last)) != SQLDB_ROW)
        goto out;
    bool exists = !sqldb_column_null(last, 0);
    int next = exists ? sqldb_column_int64(last, 0) + 1 : 1;
    if (exists == create) { /* POST of a known name, PUT of an unknown one */
        rc = create ? STORE_DUPLICATE : 1;
        goto out;
    }
    sqldb_bind_text(ins, 1, t->name, -1);
    sqldb_bind_int64(ins, 2, next);
    sqldb_bind_text(ins, 3, t->subject, -1);
    sqldb_bind_text(ins, 4, t->text, -1);
    sqldb_bind_text(ins, 5, t->html, -1);
    sqldb_bind_text(ins, 6, t->defaults ? t->defaults : "{}", -1);
    sqldb_bind_text(ins, 7, t->from, -1);
    sqldb_bind_text(ins, 8, t->from_name, -1);
    sqldb_bind_text(ins, 9, t->created_at, -1);
    if (sqldb_run(ins) != 0)
        goto out;
    rc = sqldb_commit(s->wq);
    if (rc == 0)
        *version = next;
out:
    if (rc != 0)
        sqldb_rollback(s->wq);
    sqldb_finalize(last);
    sqldb_finalize(ins);
    pthread_mutex_unlock(&s->w_lock);
    return rc;
}

#define TEMPLATE_COLS                                                                              \
    "name, version, subject, text, html, defaults, from_addr, from_name, created_at"

static void read_template(struct sqldb_stmt *st, struct template *t)
{
    t->name = store_qcol_str(st, 0);
    t->version = sqldb_column_int64(st, 1);
    t->subject = store_qcol_str(st, 2);
    t->text = store_qcol_str(st, 3);
    t->html = store_qcol_dup(st, 4);
    t->defaults = store_qcol_str(st, 5);
    t->from = store_qcol_dup(st, 6);
    t->from_name = store_qcol_dup(st, 7);
    t->created_at = store_qcol_str(st, 8);
}

int store_get_template(struct store *s, const char *name, int version, struct template *out)
{
    int rc = -1, r;
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&s->r_lock);
    struct sqldb_stmt *st =
        sqldb_prepare(s->rq, version > 0 ? "SELECT " TEMPLATE_COLS " FROM templates"
                                           " WHERE name = ?1 AND version = ?2"
                                         : "SELECT " TEMPLATE_COLS " FROM templates"
                                           " WHERE name = ?1 ORDER BY version DESC LIMIT 1");
    if (st) {
        sqldb_bind_text(st, 1, name, -1);
        if (version > 0)
            sqldb_bind_int64(st, 2, version);
        r = sqldb_step(st);
        if (r == SQLDB_ROW) {
            read_template(st, out);
            rc = 0;
        } else if (r == SQLDB_DONE) {
            rc = 1;
        } else {
            log_error("store: template %s: %s", name, sqldb_errmsg(s->rq));
        }
        sqldb_finalize(st);
    }
    pthread_mutex_unlock(&s->r_lock);
    return rc;
}

int store_list_templates(struct store *s, struct template **out, size_t *n)
{
    int r = -1;
    size_t cap = 0;
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&s->r_lock);
    /* the latest version of each name: the primary key's order, one seek per name */
    struct sqldb_stmt *st =
        sqldb_prepare(s->rq, "SELECT " TEMPLATE_COLS " FROM templates t"
                             " WHERE version = (SELECT max(version) FROM templates"
                             " WHERE name = t.name) ORDER BY name");
    if (st) {
        while ((r = sqldb_step(st)) == SQLDB_ROW) {
            *out = store_grow(*out, &cap, *n, sizeof **out);
            memset(&(*out)[*n], 0, sizeof **out);
            read_template(st, &(*out)[(*n)++]);
        }
        sqldb_finalize(st);
    }
    pthread_mutex_unlock(&s->r_lock);
    if (r != SQLDB_DONE) {
        store_templates_free(*out, *n);
        *out = NULL;
        *n = 0;
        return -1;
    }
    return 0;
}

int store_users_missing(struct store *s, const char *key, int64_t *count, char **example)
{
    int rc = -1;
    char path[TMPL_KEY_MAX + 8];
    *count = 0;
    *example = NULL;
    if (snprintf(path, sizeof path, "$.\"%s\"", key) >= (int)sizeof path)
        return -1;
    pthread_mutex_lock(&s->r_lock);
    struct sqldb_stmt *st = sqldb_prepare(
        s->rq, "SELECT count(*), min(email_id) FROM users WHERE coalesce(json_type(attributes, ?1),"
               " 'null') NOT IN ('text', 'integer', 'real', 'true', 'false') AND NOT EXISTS"
               " (SELECT 1 FROM suppressions WHERE address = users.email_id)");
    if (st) {
        sqldb_bind_text(st, 1, path, -1);
        if (sqldb_step(st) == SQLDB_ROW) {
            *count = sqldb_column_int64(st, 0);
            *example = store_qcol_dup(st, 1);
            rc = 0;
        } else {
            log_error("store: users missing %s: %s", key, sqldb_errmsg(s->rq));
        }
        sqldb_finalize(st);
    }
    pthread_mutex_unlock(&s->r_lock);
    return rc;
}
