/* store_emails.c - the SQLite backend of store.h for emails and their
 * copies: creation with fan-out, sending controls (pause, resume, rate limit), dead letters, and
 * the sender's claims and outcomes. Locks as in store.c (w_lock for the writer connection, r_lock
 * for the reader). The claim and outcome statements, run for every copy, are prepared once at open
 * (store_prepare_sender); every other statement runs once per request or dispatcher round and is
 * prepared per call. Results are heap copies the caller frees (store.h). */
#include "db.h"
#include "log.h"
#include "outbox.h"
#include "sqlarr.h"
#include "store.h"
#include "store_cluster.h"
#include "store_fanout.h"
#include "store_int.h"
#include "timeutil.h"
#include "xalloc.h"

#include <openssl/rand.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void email_info_cleanup(struct email_info *e)
{
    free(e->message_id);
    free(e->from);
    free(e->from_name);
    free(e->subject);
    free(e->body);
    free(e->html);
    free(e->smtp_client);
    free(e->salt);
    free(e->msgid_domain);
    free(e->created_at);
    free(e->variant);
    free(e->template_name);
    free(e->defaults);
    memset(e, 0, sizeof *e);
}

void store_emails_free(struct email_info *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        email_info_cleanup(&v[i]);
    free(v);
}

int store_insert_email(struct store *s, const struct email_spec *sp, int64_t *id, char **message_id)
{
    unsigned char rnd[16];
    char salt[33], now[32];
    int rc = -1;
    *message_id = NULL;
    if (RAND_bytes(rnd, sizeof rnd) != 1)
        return -1;
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(salt + 2 * i, 3, "%02x", rnd[i]);
    time_rfc3339_ms(time_now_ms(), now, sizeof now);
    struct sqldb_stmt *ins = sqldb_prepare(
        s->wq, "INSERT INTO emails(message_id, from_addr, from_name, subject, body,"
               " html, smtp_client, tpm, salt, msgid_domain, created_at, kind, priority,"
               " campaign_id, variant, template, template_version, defaults, paused)"
               " VALUES('', ?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) RETURNING id");
    struct sqldb_stmt *upd =
        sqldb_prepare(s->wq, "UPDATE emails SET message_id = ?2 WHERE id = ?1");
    if (!ins || !upd)
        goto out;
    sqldb_bind_text(ins, 1, sp->from, -1);
    sqldb_bind_text(ins, 2, sp->from_name, -1);
    sqldb_bind_text(ins, 3, sp->subject, -1);
    sqldb_bind_text(ins, 4, sp->body, -1);
    sqldb_bind_text(ins, 5, sp->html, -1);
    sqldb_bind_text(ins, 6, sp->smtp_client, -1);
    sqldb_bind_int64(ins, 7, sp->tpm);
    sqldb_bind_text(ins, 8, salt, -1);
    sqldb_bind_text(ins, 9, sp->msgid_domain, -1);
    sqldb_bind_text(ins, 10, now, -1);
    sqldb_bind_int64(ins, 11, (int)sp->kind);
    sqldb_bind_int64(ins, 12, sp->priority);
    if (sp->campaign_id > 0)
        sqldb_bind_int64(ins, 13, sp->campaign_id);
    sqldb_bind_text(ins, 14, sp->variant, -1);
    sqldb_bind_text(ins, 15, sp->template_name, -1);
    if (sp->template_name)
        sqldb_bind_int64(ins, 16, sp->template_version);
    sqldb_bind_text(ins, 17, sp->defaults, -1);
    sqldb_bind_int64(ins, 18, sp->paused ? 1 : 0);
    if (sqldb_step(ins) != SQLDB_ROW)
        goto out;
    *id = sqldb_column_int64(ins, 0);
    sqldb_reset(ins);
    *message_id = xasprintf("<email-%lld@%s>", (long long)*id, sp->msgid_domain);
    sqldb_bind_int64(upd, 1, *id);
    sqldb_bind_text(upd, 2, *message_id, -1);
    rc = sqldb_run(upd);
out:
    sqldb_finalize(ins);
    sqldb_finalize(upd);
    if (rc != 0) {
        free(*message_id);
        *message_id = NULL;
    }
    return rc;
}

int store_create_email(struct store *s, const struct email_spec *sp, int64_t *id,
                       int64_t *recipients, char **message_id)
{
    int rc = -1;
    struct sqldb_stmt *snap = NULL;
    *message_id = NULL;
    pthread_mutex_lock(&s->w_lock);
    if (sqldb_begin(s->wq) != 0 || store_lock_users(s, true) != 0)
        goto out;
    /* the copies are made in the background (store_fanout.h) */
    snap = sqldb_prepare(s->wq, STORE_FANOUT_SNAPSHOT_SQL);
    if (!snap || store_insert_email(s, sp, id, message_id) != 0)
        goto out;
    sqldb_bind_int64(snap, 1, *id);
    if (sqldb_step(snap) != SQLDB_ROW)
        goto out;
    *recipients = sqldb_column_int64(snap, 0);
    if (sqldb_step(snap) != SQLDB_DONE)
        goto out;
    rc = sqldb_commit(s->wq);
out:
    if (rc != 0 && s->w)
        log_error("store: create email failed: %s", sqldb_errmsg(s->wq));
    sqldb_finalize(snap);
    if (rc != 0) {
        sqldb_rollback(s->wq);
        free(*message_id);
        *message_id = NULL;
    }
    pthread_mutex_unlock(&s->w_lock);
    return rc;
}

#define EMAIL_COLS                                                                                 \
    "id, message_id, from_addr, from_name, subject, smtp_client, tpm, paused, salt,"               \
    " msgid_domain, created_at, n_pending + fan_left, n_sent, n_failed, n_dead, body, html,"       \
    " n_suppressed, kind, priority, campaign_id, variant, template, template_version, defaults"

static void read_email(struct sqldb_stmt *st, bool bodies, struct email_info *e)
{
    memset(e, 0, sizeof *e);
    e->id = sqldb_column_int64(st, 0);
    e->message_id = store_qcol_dup(st, 1);
    e->from = store_qcol_dup(st, 2);
    e->from_name = store_qcol_dup(st, 3);
    e->subject = store_qcol_dup(st, 4);
    e->smtp_client = store_qcol_dup(st, 5);
    e->tpm = sqldb_column_int64(st, 6);
    e->paused = sqldb_column_int64(st, 7) != 0;
    e->salt = store_qcol_dup(st, 8);
    e->msgid_domain = store_qcol_dup(st, 9);
    e->created_at = store_qcol_dup(st, 10);
    e->pending = sqldb_column_int64(st, 11);
    e->sent = sqldb_column_int64(st, 12);
    e->failed = sqldb_column_int64(st, 13);
    e->dead = sqldb_column_int64(st, 14);
    e->suppressed = sqldb_column_int64(st, 17);
    e->kind = (enum email_kind)sqldb_column_int64(st, 18);
    e->priority = sqldb_column_int64(st, 19);
    e->campaign_id = sqldb_column_int64(st, 20);
    e->variant = store_qcol_dup(st, 21);
    e->template_name = store_qcol_dup(st, 22);
    e->template_version = sqldb_column_int64(st, 23);
    e->defaults = store_qcol_dup(st, 24);
    if (bodies) {
        e->body = store_qcol_dup(st, 15);
        e->html = store_qcol_dup(st, 16);
    }
}

int store_get_email(struct store *s, int64_t id, bool bodies, struct email_info *out)
{
    int rc = -1;
    pthread_mutex_lock(&s->r_lock);
    struct sqldb_stmt *st = sqldb_prepare(s->rq, "SELECT " EMAIL_COLS " FROM emails WHERE id = ?");
    if (st) {
        sqldb_bind_int64(st, 1, id);
        int r = sqldb_step(st);
        if (r == SQLDB_ROW) {
            read_email(st, bodies, out);
            rc = 0;
        } else if (r == SQLDB_DONE) {
            rc = 1;
        }
        sqldb_finalize(st);
    }
    pthread_mutex_unlock(&s->r_lock);
    return rc;
}

int store_list_emails(struct store *s, int64_t limit, int64_t offset, struct email_info **out,
                      size_t *n)
{
    int rc = -1, r;
    size_t cap = 0;
    *n = 0;
    *out = NULL;
    pthread_mutex_lock(&s->r_lock);
    struct sqldb_stmt *st =
        sqldb_prepare(s->rq, "SELECT " EMAIL_COLS " FROM emails ORDER BY id LIMIT ? OFFSET ?");
    if (st) {
        sqldb_bind_int64(st, 1, limit);
        sqldb_bind_int64(st, 2, offset);
        while ((r = sqldb_step(st)) == SQLDB_ROW) {
            *out = store_grow(*out, &cap, *n, sizeof **out);
            read_email(st, false, &(*out)[(*n)++]);
        }
        rc = r == SQLDB_DONE ? 0 : -1;
        sqldb_finalize(st);
    }
    pthread_mutex_unlock(&s->r_lock);
    if (rc != 0) {
        store_emails_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

/* update_email - run an UPDATE ... WHERE id = ?1 with one int parameter ?2 */
static int update_email(struct store *s, const char *sql, int64_t id, int64_t v)
{
    int rc = -1;
    pthread_mutex_lock(&s->w_lock);
    struct sqldb_stmt *st = sqldb_prepare(s->wq, sql);
    if (st) {
        sqldb_bind_int64(st, 1, id);
        sqldb_bind_int64(st, 2, v);
        if (sqldb_run(st) == 0)
            rc = sqldb_changes(s->wq) ? 0 : 1;
        sqldb_finalize(st);
    }
    pthread_mutex_unlock(&s->w_lock);
    return rc;
}

int store_set_paused(struct store *s, int64_t id, bool paused)
{
    return update_email(s, "UPDATE emails SET paused = ?2 WHERE id = ?1", id, paused);
}

int store_set_tpm(struct store *s, int64_t id, int tpm)
{
    return update_email(s, "UPDATE emails SET tpm = ?2 WHERE id = ?1", id, tpm);
}

int store_reconcile(struct store *s, int64_t id, int64_t now_ms, int64_t *requeued)
{
    int rc = -1;
    struct sqldb_stmt *exists = NULL, *dead = NULL, *leases = NULL, *upd = NULL;
    *requeued = 0;
    pthread_mutex_lock(&s->w_lock);
    if (sqldb_begin(s->wq) != 0)
        goto out;
    exists = sqldb_prepare(s->wq, "SELECT 1 FROM emails WHERE id = ?");
    dead = sqldb_prepare(s->wq, "UPDATE deliveries SET state = 0, attempts = 0, due_at = 0"
                                " WHERE email_id = ?1 AND state = 4");
    /* an expired lease (its worker is gone): back to its queue */
    leases = sqldb_prepare(s->wq, "UPDATE deliveries SET state = CASE WHEN attempts = 0 THEN 0"
                                  " ELSE 3 END, due_at = 0 WHERE email_id = ?1 AND state = 1"
                                  " AND lease_until < ?2");
    upd = sqldb_prepare(s->wq, "UPDATE emails SET n_dead = n_dead - ?2, n_pending = n_pending + ?2"
                               " WHERE id = ?1");
    if (!exists || !dead || !leases || !upd)
        goto out;
    sqldb_bind_int64(exists, 1, id);
    if (sqldb_step(exists) != SQLDB_ROW) {
        rc = 1;
        goto out;
    }
    sqldb_bind_int64(dead, 1, id);
    if (sqldb_run(dead) != 0)
        goto out;
    int64_t ndead = sqldb_changes(s->wq);
    sqldb_bind_int64(leases, 1, id);
    sqldb_bind_int64(leases, 2, now_ms);
    if (sqldb_run(leases) != 0)
        goto out;
    *requeued = ndead + sqldb_changes(s->wq);
    sqldb_bind_int64(upd, 1, id);
    sqldb_bind_int64(upd, 2, ndead);
    if (sqldb_run(upd) != 0)
        goto out;
    rc = sqldb_commit(s->wq);
out:
    sqldb_finalize(exists);
    sqldb_finalize(dead);
    sqldb_finalize(leases);
    sqldb_finalize(upd);
    if (rc != 0)
        sqldb_rollback(s->wq);
    pthread_mutex_unlock(&s->w_lock);
    return rc;
}

int store_dlq(struct store *s, int64_t email_id, int64_t limit, int64_t offset,
              struct dead_letter **out, size_t *n)
{
    int r = -1;
    size_t cap = 0;
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&s->r_lock);
    struct sqldb_stmt *st = sqldb_prepare(
        s->rq, email_id
                   ? "SELECT id, email_id, recipient, attempts, last_code, last_enhanced,"
                     " last_reply, updated_at FROM deliveries WHERE email_id = ?1 AND state = 4"
                     " ORDER BY updated_at DESC, id DESC LIMIT ?2 OFFSET ?3"
                   : "SELECT id, email_id, recipient, attempts, last_code, last_enhanced,"
                     " last_reply, updated_at FROM deliveries INDEXED BY deliveries_dead"
                     " WHERE state = 4 ORDER BY updated_at DESC, id DESC LIMIT ?2 OFFSET ?3");
    if (st) {
        sqldb_bind_int64(st, 1, email_id);
        sqldb_bind_int64(st, 2, limit);
        sqldb_bind_int64(st, 3, offset);
        while ((r = sqldb_step(st)) == SQLDB_ROW) {
            *out = store_grow(*out, &cap, *n, sizeof **out);
            struct dead_letter *d = &(*out)[(*n)++];
            d->copy_id = sqldb_column_int64(st, 0);
            d->email_id = sqldb_column_int64(st, 1);
            d->recipient = store_qcol_str(st, 2);
            d->attempts = sqldb_column_int64(st, 3);
            d->smtp_code = sqldb_column_int64(st, 4);
            d->smtp_enhanced = store_qcol_str(st, 5);
            d->smtp_reply = store_qcol_str(st, 6);
            d->at_ms = sqldb_column_int64(st, 7);
        }
        sqldb_finalize(st);
    }
    pthread_mutex_unlock(&s->r_lock);
    if (r != SQLDB_DONE) {
        store_dead_letters_free(*out, *n);
        *out = NULL;
        *n = 0;
        return -1;
    }
    return 0;
}

void store_dead_letters_free(struct dead_letter *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++) {
        free(v[i].recipient);
        free(v[i].smtp_enhanced);
        free(v[i].smtp_reply);
    }
    free(v);
}

int store_active_emails(struct store *s, int64_t *ids, size_t max, size_t *n)
{
    int r = -1;
    *n = 0;
    pthread_mutex_lock(&s->r_lock);
    struct sqldb_stmt *st = sqldb_prepare(s->rq, "SELECT id FROM emails WHERE paused = 0"
                                                 " AND n_pending + n_failed > 0"
                                                 " ORDER BY priority DESC, id LIMIT ?");
    if (st) {
        sqldb_bind_int64(st, 1, (int64_t)max);
        while ((r = sqldb_step(st)) == SQLDB_ROW)
            ids[(*n)++] = sqldb_column_int64(st, 0);
        sqldb_finalize(st);
    }
    pthread_mutex_unlock(&s->r_lock);
    return r == SQLDB_DONE ? 0 : -1;
}

int store_release_leases(struct store *s, int64_t *released)
{
    if (s->pg) /* only a dead instance's: the others' are theirs */
        return store_release_dead(s, time_now_ms(), released);
    int rc = -1;
    pthread_mutex_lock(&s->w_lock);
    struct sqldb_stmt *st =
        sqldb_prepare(s->wq, "UPDATE deliveries SET state = CASE WHEN attempts = 0"
                             " THEN 0 ELSE 3 END, due_at = 0 WHERE state = 1");
    if (st && sqldb_run(st) == 0) {
        *released = sqldb_changes(s->wq);
        rc = 0;
    }
    sqldb_finalize(st);
    pthread_mutex_unlock(&s->w_lock);
    return rc;
}

/* sync_mode - whether the writer's next commits sync the WAL. The
 * connection stays at FULL (an API request's commit is on disk before its
 * 2xx); the sender's claims and outcomes commit at NORMAL: the WAL is
 * synced by the next FULL commit or the next checkpoint, never skipped
 * before a checkpoint (so a power cut cannot corrupt the file). A power cut
 * can then lose the last claims and outcomes, never a copy: the WAL keeps a
 * prefix, so a lost outcome goes with everything after it, and its copy is
 * leased or pending again, sent again and its event written then (a
 * duplicate, as for a copy in flight at a crash). A process crash loses
 * nothing either way (the WAL is in the page cache). */
static void sync_mode(struct store *s, bool full)
{
    struct sqldb_stmt *st = full ? s->sync_full : s->sync_normal;
    if (!st) /* not SQLite */
        return;
    if (sqldb_step(st) != SQLDB_DONE)
        log_warn("store: PRAGMA synchronous=%s failed: %s", full ? "FULL" : "NORMAL",
                 sqldb_errmsg(s->wq));
    sqldb_reset(st);
}

/* the ids of up to ?4 due copies of email ?1 at ?2: pending copies first
 * (due_at 0), then retries that are due; "state IN (0, 3)" lets SQLite use
 * the claim index; ends the caller's "WHERE id IN (" */
#define CLAIM_DUE_IDS                                                                              \
    " SELECT id FROM (SELECT id FROM deliveries WHERE email_id = ?1 AND state = 0"                 \
    " AND state IN (0, 3) LIMIT ?4) UNION ALL SELECT id FROM (SELECT id FROM deliveries"           \
    " WHERE email_id = ?1 AND state = 3 AND state IN (0, 3) AND due_at <= ?2 LIMIT ?4)"            \
    " LIMIT ?4)"

/* the copies of lanes ?5..?6 a claim takes, in lane order (deliveries_lane) */
#define CLAIM_LANE_IDS                                                                             \
    " SELECT id FROM deliveries INDEXED BY deliveries_lane WHERE email_id = ?1"                    \
    " AND lane BETWEEN ?5 AND ?6 AND state IN (0, 3) AND (state = 0 OR due_at <= ?2) LIMIT ?4)"

/* PostgreSQL: the same ids, each row locked, those another instance holds
 * skipped; "= ANY(ARRAY(...))" makes the outer update an index probe per
 * id whatever the planner thinks of the subquery */
#define CLAIM_DUE_IDS_PG                                                                           \
    " SELECT id FROM (SELECT id FROM deliveries WHERE email_id = ?1 AND state = 0"                 \
    " LIMIT ?4 FOR UPDATE SKIP LOCKED) p UNION ALL SELECT id FROM (SELECT id FROM deliveries"      \
    " WHERE email_id = ?1 AND state = 3 AND due_at <= ?2 LIMIT ?4 FOR UPDATE SKIP LOCKED) r"       \
    " LIMIT ?4))"
#define CLAIM_LANE_IDS_PG                                                                          \
    " SELECT id FROM deliveries WHERE email_id = ?1 AND lane BETWEEN ?5 AND ?6"                    \
    " AND state IN (0, 3) AND (state = 0 OR due_at <= ?2) LIMIT ?4 FOR UPDATE SKIP LOCKED))"

/* a claim leases copies to this instance (?7) */
#define CLAIM_SET "UPDATE deliveries SET state = 1, lease_until = ?3, lease_owner = ?7 WHERE id "

/* a checked claim leases a copy, or drops it when its address is suppressed */
#define CLAIM_CHECKED_SET                                                                          \
    "UPDATE deliveries SET state = CASE WHEN EXISTS (SELECT 1 FROM suppressions"                   \
    " WHERE address = deliveries.recipient) THEN 5 ELSE 1 END, updated_at = CASE WHEN EXISTS"      \
    " (SELECT 1 FROM suppressions WHERE address = deliveries.recipient) THEN ?2"                   \
    " ELSE updated_at END, lease_until = ?3, lease_owner = ?7 WHERE id "
#define CLAIM_IN "IN ("
#define CLAIM_ANY "= ANY(ARRAY("
#define CLAIM_RET " RETURNING id, recipient, name, attempts, lane, data, state"

/* n copies of lane ?3 onto identity ?1's day ?2 */
#define CHARGE_SQL                                                                                 \
    "INSERT INTO identity_days(identity_id, day, lane, sent) VALUES(?1, ?2, ?3, ?4)"               \
    " ON CONFLICT (identity_id, day, lane)"                                                        \
    " DO UPDATE SET sent = identity_days.sent + excluded.sent"

int store_prepare_sender(struct store *s)
{
    struct sqldb *kq = s->pg ? s->kq : s->wq;
    if (s->pg) {
        s->claim = sqldb_prepare(kq, CLAIM_SET CLAIM_ANY CLAIM_DUE_IDS_PG CLAIM_RET);
        s->claim_lane = sqldb_prepare(kq, CLAIM_SET CLAIM_ANY CLAIM_LANE_IDS_PG CLAIM_RET);
        s->claim_chk = sqldb_prepare(kq, CLAIM_CHECKED_SET CLAIM_ANY CLAIM_DUE_IDS_PG CLAIM_RET);
        s->claim_lane_chk =
            sqldb_prepare(kq, CLAIM_CHECKED_SET CLAIM_ANY CLAIM_LANE_IDS_PG CLAIM_RET);
    } else {
        s->claim = sqldb_prepare(s->wq, CLAIM_SET CLAIM_IN CLAIM_DUE_IDS CLAIM_RET);
        s->claim_lane = sqldb_prepare(s->wq, CLAIM_SET CLAIM_IN CLAIM_LANE_IDS CLAIM_RET);
        s->claim_chk = sqldb_prepare(s->wq, CLAIM_CHECKED_SET CLAIM_IN CLAIM_DUE_IDS CLAIM_RET);
        s->claim_lane_chk =
            sqldb_prepare(s->wq, CLAIM_CHECKED_SET CLAIM_IN CLAIM_LANE_IDS CLAIM_RET);
        s->sync_normal = sqldb_prepare(s->wq, "PRAGMA synchronous=NORMAL");
        s->sync_full = sqldb_prepare(s->wq, "PRAGMA synchronous=FULL");
        if (!s->sync_normal || !s->sync_full)
            return -1;
    }
    /* an outcome or release counts only while the copy is still leased to
     * this instance (?8): another may have taken it when this one was
     * thought dead (PostgreSQL), and its outcome is that one's to count */
    s->res_done = sqldb_prepare(s->wq, "UPDATE deliveries SET state = ?2, attempts = attempts + 1,"
                                       " due_at = ?3, last_code = ?4, last_enhanced = ?5,"
                                       " last_reply = ?6, updated_at = ?7 WHERE id = ?1"
                                       " AND state = 1 AND lease_owner = ?8");
    s->res_release = sqldb_prepare(s->wq, "UPDATE deliveries SET state = CASE WHEN attempts = 0"
                                          " THEN 0 ELSE 3 END WHERE id = ?1 AND state = 1"
                                          " AND lease_owner = ?2");
    s->res_counters = sqldb_prepare(s->wq, "UPDATE emails SET n_pending = n_pending + ?2,"
                                           " n_sent = n_sent + ?3, n_failed = n_failed + ?4,"
                                           " n_dead = n_dead + ?5, n_suppressed = n_suppressed + ?6"
                                           " WHERE id = ?1");
    s->claim_counters = sqldb_prepare(kq, "UPDATE emails SET n_pending = n_pending - ?2,"
                                          " n_failed = n_failed - ?3,"
                                          " n_suppressed = n_suppressed + ?2 + ?3 WHERE id = ?1");
    s->res_supp = sqldb_prepare(s->wq, "UPDATE deliveries SET state = 5, updated_at = ?2"
                                       " WHERE id = ?1 AND state = 1 AND lease_owner = ?3");
    s->charge = sqldb_prepare(s->wq, CHARGE_SQL);
    s->claim_charge = sqldb_prepare(kq, CHARGE_SQL);
    return s->claim && s->res_done && s->res_release && s->res_counters && s->claim_chk &&
                   s->claim_counters && s->res_supp && s->claim_lane && s->claim_lane_chk &&
                   s->charge && s->claim_charge
               ? 0
               : -1;
}

/* charge - n copies of lane onto an identity's day count with st
 * (s->charge or s->claim_charge), in the caller's transaction (n < 0:
 * copies given back) */
static int charge(struct sqldb_stmt *st, int64_t identity_id, int64_t day, int64_t lane, int64_t n)
{
    sqldb_bind_int64(st, 1, identity_id);
    sqldb_bind_int64(st, 2, day);
    sqldb_bind_int64(st, 3, lane);
    sqldb_bind_int64(st, 4, n);
    int rc = sqldb_run(st);
    sqldb_reset(st);
    return rc;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* charge_claims - the claimed copies onto the identity's day, one row per
 * lane, in lane order */
static int charge_claims(struct store *s, const struct claim_scope *sc, const struct claim *c,
                         size_t n)
{
    int64_t *lanes = xcalloc(n ? n : 1, sizeof *lanes);
    for (size_t i = 0; i < n; i++)
        lanes[i] = c[i].lane;
    qsort(lanes, n, sizeof *lanes, cmp_i64);
    int rc = 0;
    for (size_t i = 0, k; i < n && rc == 0; i = k) {
        for (k = i; k < n && lanes[k] == lanes[i]; k++)
            ;
        rc = charge(s->claim_charge, sc->identity_id, sc->day, lanes[i], (int64_t)(k - i));
    }
    free(lanes);
    return rc;
}

/* claim_dropped - the counters of the copies a checked claim dropped, in
 * its transaction */
static int claim_dropped(struct store *s, int64_t email_id, int64_t pending, int64_t failed)
{
    struct sqldb_stmt *st = s->claim_counters;
    sqldb_bind_int64(st, 1, email_id);
    sqldb_bind_int64(st, 2, pending);
    sqldb_bind_int64(st, 3, failed);
    int rc = sqldb_run(st);
    sqldb_reset(st);
    if (rc == 0)
        log_info("store: email_id=%lld %lld queued copies dropped at claim: address suppressed",
                 (long long)email_id, (long long)(pending + failed));
    return rc;
}

int store_claim(struct store *s, int64_t email_id, int max, int64_t now_ms, int64_t lease_ms,
                const struct claim_scope *scope, struct claim *out, size_t *n)
{
    int r, rc = -1;
    int64_t drop_pending = 0, drop_failed = 0;
    *n = 0;
    /* PostgreSQL: on the claims' connection, beside the outcomes */
    struct sqldb *q = s->pg ? s->kq : s->wq;
    pthread_mutex_t *lk = s->pg ? &s->k_lock : &s->w_lock;
    pthread_mutex_lock(lk);
    sync_mode(s, false);
    /* no suppression stored and no identity to charge: one statement;
     * else the claim, the dropped copies' counters and the identity's
     * day count in one transaction */
    /* on PostgreSQL another instance may have suppressed an address since
     * this one counted them: always checked */
    bool chk = s->pg || s->n_supp > 0, ident = scope && scope->identity_id > 0;
    bool lanes = scope != NULL;
    bool txn = chk || ident || s->pg;
    uint64_t epoch = atomic_load(&s->supp_epoch);
    struct sqldb_stmt *st =
        lanes ? (chk ? s->claim_lane_chk : s->claim_lane) : (chk ? s->claim_chk : s->claim);
    if (txn && sqldb_begin(q) != 0)
        goto out;
    sqldb_bind_int64(st, 1, email_id);
    sqldb_bind_int64(st, 2, now_ms);
    sqldb_bind_int64(st, 3, now_ms + lease_ms);
    sqldb_bind_int64(st, 4, max);
    sqldb_bind_int64(st, 5, lanes ? scope->lane_lo : 0);
    sqldb_bind_int64(st, 6, lanes ? scope->lane_hi : 0);
    sqldb_bind_text(st, 7, s->instance, -1);
    while ((r = sqldb_step(st)) == SQLDB_ROW) {
        int attempts = sqldb_column_int64(st, 3);
        if (chk && sqldb_column_int64(st, 6) == DLV_SUPPRESSED) {
            if (attempts == 0)
                drop_pending++;
            else
                drop_failed++;
            continue;
        }
        struct claim *c = &out[(*n)++];
        c->id = sqldb_column_int64(st, 0);
        c->recipient = store_qcol_dup(st, 1);
        c->name = store_qcol_dup(st, 2);
        c->attempts = attempts;
        c->lane = sqldb_column_int64(st, 4);
        c->data = store_qcol_dup(st, 5);
        c->epoch = epoch;
    }
    rc = r == SQLDB_DONE ? 0 : -1;
    if (rc != 0)
        log_error("store: claim failed: %s", sqldb_errmsg(q));
    sqldb_reset(st); /* ends the statement's write */
    /* identity_days before emails, as store_apply_results */
    if (ident && rc == 0)
        rc = charge_claims(s, scope, out, *n);
    if (chk && rc == 0 && drop_pending + drop_failed > 0)
        rc = claim_dropped(s, email_id, drop_pending, drop_failed);
    if (txn && rc == 0)
        rc = sqldb_commit(q);
out:
    if (txn && rc != 0) {
        sqldb_rollback(q);
        for (size_t i = 0; i < *n; i++) {
            free(out[i].recipient);
            free(out[i].name);
        }
        *n = 0;
    }
    sync_mode(s, true);
    pthread_mutex_unlock(lk);
    return rc;
}

struct counter_delta {
    int64_t email_id;
    int64_t pending, sent, failed, dead, suppressed;
};

static struct counter_delta *delta_for(struct counter_delta *d, size_t *nd, int64_t email_id)
{
    for (size_t i = 0; i < *nd; i++)
        if (d[i].email_id == email_id)
            return &d[i];
    struct counter_delta *x = &d[(*nd)++];
    memset(x, 0, sizeof *x);
    x->email_id = email_id;
    return x;
}

static int cmp_delta(const void *a, const void *b)
{
    const struct counter_delta *x = a, *y = b;
    return (x->email_id > y->email_id) - (x->email_id < y->email_id);
}

/* a copy given back to its identity's day (released or suppressed) */
struct give_back {
    int64_t identity_id, day, lane;
};

static int cmp_give_back(const void *a, const void *b)
{
    const struct give_back *x = a, *y = b;
    if (x->identity_id != y->identity_id)
        return (x->identity_id > y->identity_id) - (x->identity_id < y->identity_id);
    if (x->day != y->day)
        return (x->day > y->day) - (x->day < y->day);
    return (x->lane > y->lane) - (x->lane < y->lane);
}

/* give_back_all - the n copies of g off their identities' days, one row
 * at a time in key order (sorts g) */
static int give_back_all(struct store *s, struct give_back *g, size_t n)
{
    qsort(g, n, sizeof *g, cmp_give_back);
    for (size_t i = 0, k; i < n; i = k) {
        for (k = i; k < n && cmp_give_back(&g[k], &g[i]) == 0; k++)
            ;
        if (charge(s->charge, g[i].identity_id, g[i].day, g[i].lane, -(int64_t)(k - i)) != 0)
            return -1;
    }
    return 0;
}

/* lost_lease - an outcome for a copy no longer leased to this instance
 * (another took it, this one thought dead): neither counted nor
 * published; the copy's holder counts its own */
static void lost_lease(const struct outcome *x)
{
    log_warn("store: email_id=%lld copy %lld: lease lost before its outcome was stored (%s)",
             (long long)x->email_id, (long long)x->copy_id,
             x->kind == OUTCOME_SENT ? "sent: a duplicate may follow" : "not counted");
}

/* the outcomes of a batch's attempted copies in one statement
 * (PostgreSQL): each still leased to this instance (?8) takes its state */
#define RESULTS_PG_SQL                                                                             \
    "UPDATE deliveries d SET state = u.st, attempts = d.attempts + 1, due_at = u.due,"             \
    " last_code = u.code, last_enhanced = u.enh, last_reply = u.reply, updated_at = ?7"            \
    " FROM unnest(?1::bigint[], ?2::bigint[], ?3::bigint[], ?4::bigint[], ?5::text[],"             \
    " ?6::text[]) AS u(id, st, due, code, enh, reply)"                                             \
    " WHERE d.id = u.id AND d.state = 1 AND d.lease_owner = ?8 RETURNING d.id"

static const int state_of[] = {
    [OUTCOME_SENT] = DLV_SENT, [OUTCOME_RETRY] = DLV_RETRY, [OUTCOME_DEAD] = DLV_DEAD};

int store_cmp_id_ix(const void *a, const void *b)
{
    const struct store_id_ix *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

/* run_done - one attempted copy's outcome (SQLite), if still leased here */
static int run_done(struct store *s, struct sqldb_stmt *done, const struct outcome *x,
                    int64_t now_ms)
{
    sqldb_bind_int64(done, 1, x->copy_id);
    sqldb_bind_int64(done, 2, state_of[x->kind]);
    sqldb_bind_int64(done, 3, x->kind == OUTCOME_RETRY ? x->due_at : 0);
    sqldb_bind_int64(done, 4, x->code);
    sqldb_bind_text(done, 5, x->enhanced, -1);
    sqldb_bind_text(done, 6, x->text, -1);
    sqldb_bind_int64(done, 7, now_ms);
    sqldb_bind_text(done, 8, s->instance, -1);
    int st = sqldb_run(done);
    sqldb_reset(done);
    return st;
}

/* results_pg - the sent, retried and dead copies of r in one statement;
 * applied[i]: outcome i's copy was still leased to this instance */
static int results_pg(struct store *s, const struct outcome *r, size_t n, int64_t now_ms,
                      bool *applied)
{
    struct sqlarr a[6];
    struct store_id_ix *ix = xcalloc(n ? n : 1, sizeof *ix);
    size_t nix = 0;
    for (int k = 0; k < 6; k++)
        sqlarr_init(&a[k], k < 4 ? 16 * n : 64 * n);
    for (size_t i = 0; i < n; i++) {
        const struct outcome *x = &r[i];
        if (x->kind != OUTCOME_SENT && x->kind != OUTCOME_RETRY && x->kind != OUTCOME_DEAD)
            continue;
        sqlarr_int(&a[0], x->copy_id);
        sqlarr_int(&a[1], state_of[x->kind]);
        sqlarr_int(&a[2], x->kind == OUTCOME_RETRY ? x->due_at : 0);
        sqlarr_int(&a[3], x->code);
        sqlarr_text(&a[4], x->enhanced);
        sqlarr_text(&a[5], x->text);
        ix[nix++] = (struct store_id_ix){x->copy_id, i};
    }
    int rc = 0, row;
    if (nix > 0) {
        qsort(ix, nix, sizeof *ix, store_cmp_id_ix);
        struct sqldb_stmt *st = sqldb_prepare(s->wq, RESULTS_PG_SQL);
        rc = -1;
        if (st) {
            int b = sqlarr_bind_all(a, 6, st);
            sqldb_bind_int64(st, 7, now_ms);
            sqldb_bind_text(st, 8, s->instance, -1);
            while (b == 0 && (row = sqldb_step(st)) == SQLDB_ROW) {
                struct store_id_ix key = {sqldb_column_int64(st, 0), 0};
                struct store_id_ix *hit = bsearch(&key, ix, nix, sizeof *ix, store_cmp_id_ix);
                if (hit)
                    applied[hit->i] = true;
            }
            rc = b == 0 && row == SQLDB_DONE ? 0 : -1;
            sqldb_finalize(st);
        }
    }
    sqlarr_cleanup_all(a, 6);
    free(ix);
    return rc;
}

int store_apply_results(struct store *s, const struct outcome *r, size_t n, const char *topic,
                        int64_t now_ms)
{
    int rc = -1;
    struct counter_delta *d = xcalloc(n ? n : 1, sizeof *d);
    struct give_back *gb = xcalloc(n ? n : 1, sizeof *gb);
    size_t nd = 0, nev = 0, ngb = 0;
    /* PostgreSQL: outcomes and events as one statement each (a round trip
     * per copy would bound the send rate) */
    bool *applied = s->pg ? xcalloc(n ? n : 1, sizeof *applied) : NULL;
    const char **ev_keys = s->pg ? xcalloc(n ? n : 1, sizeof *ev_keys) : NULL;
    const char **ev_vals = s->pg ? xcalloc(n ? n : 1, sizeof *ev_vals) : NULL;
    struct sqldb_stmt *done = s->res_done, *release = s->res_release, *counters = s->res_counters;
    pthread_mutex_lock(&s->w_lock);
    sync_mode(s, false);
    if (sqldb_begin(s->wq) != 0 || (s->pg && results_pg(s, r, n, now_ms, applied) != 0))
        goto out;
    for (size_t i = 0; i < n; i++) {
        const struct outcome *x = &r[i];
        /* not handed to SMTP after all: off the identity's day */
        if ((x->kind == OUTCOME_RELEASE || x->kind == OUTCOME_SUPPRESSED) && x->identity_id > 0)
            gb[ngb++] = (struct give_back){x->identity_id, x->day, x->lane};
        if (x->kind == OUTCOME_RELEASE) {
            sqldb_bind_int64(release, 1, x->copy_id);
            sqldb_bind_text(release, 2, s->instance, -1);
            int st = sqldb_run(release);
            sqldb_reset(release);
            if (st != 0)
                goto out;
            continue;
        }
        if (x->kind == OUTCOME_SUPPRESSED) {
            sqldb_bind_int64(s->res_supp, 1, x->copy_id);
            sqldb_bind_int64(s->res_supp, 2, now_ms);
            sqldb_bind_text(s->res_supp, 3, s->instance, -1);
            int st = sqldb_run(s->res_supp);
            sqldb_reset(s->res_supp);
            if (st != 0)
                goto out;
            if (sqldb_changes(s->wq) == 0) {
                lost_lease(x);
                continue;
            }
            struct counter_delta *c = delta_for(d, &nd, x->email_id);
            if (x->attempts_before == 0)
                c->pending--;
            else
                c->failed--;
            c->suppressed++;
            continue;
        }
        if (s->pg && !applied[i]) {
            lost_lease(x);
            continue;
        }
        if (!s->pg && run_done(s, done, x, now_ms) != 0)
            goto out;
        if (!s->pg && sqldb_changes(s->wq) == 0) {
            lost_lease(x);
            continue;
        }
        struct counter_delta *c = delta_for(d, &nd, x->email_id);
        if (x->attempts_before == 0)
            c->pending--;
        else
            c->failed--;
        if (x->kind == OUTCOME_SENT)
            c->sent++;
        else if (x->kind == OUTCOME_RETRY)
            c->failed++;
        else
            c->dead++;
        if (x->event && s->pg) {
            ev_keys[nev] = x->event_key;
            ev_vals[nev++] = x->event;
        } else if (x->event && outbox_add_q(s->wq, topic, x->event_key, x->event) != 0) {
            goto out;
        }
    }
    if (nev > 0 && outbox_add_batch_q(s->wq, topic, ev_keys, ev_vals, nev) != 0)
        goto out;
    /* identity_days, then emails, each in key order, as store_claim: no
     * deadlock with a claim (or another instance's results) */
    if (give_back_all(s, gb, ngb) != 0)
        goto out;
    qsort(d, nd, sizeof *d, cmp_delta);
    for (size_t i = 0; i < nd; i++) {
        sqldb_bind_int64(counters, 1, d[i].email_id);
        sqldb_bind_int64(counters, 2, d[i].pending);
        sqldb_bind_int64(counters, 3, d[i].sent);
        sqldb_bind_int64(counters, 4, d[i].failed);
        sqldb_bind_int64(counters, 5, d[i].dead);
        sqldb_bind_int64(counters, 6, d[i].suppressed);
        int st = sqldb_run(counters);
        sqldb_reset(counters);
        if (st != 0)
            goto out;
    }
    rc = sqldb_commit(s->wq);
out: /* each statement was reset after its step */
    if (rc != 0)
        sqldb_rollback(s->wq);
    sync_mode(s, true);
    pthread_mutex_unlock(&s->w_lock);
    free(d);
    free(gb);
    free(applied);
    free(ev_keys);
    free(ev_vals);
    return rc;
}

int store_lanes(struct store *s, int64_t after, struct lane_row **out, size_t *n)
{
    size_t cap = 0;
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&s->r_lock);
    struct sqldb_stmt *st =
        sqldb_prepare(s->rq, "SELECT id, name FROM domains WHERE id > ? ORDER BY id");
    int r = -1;
    if (st) {
        sqldb_bind_int64(st, 1, after);
        while ((r = sqldb_step(st)) == SQLDB_ROW) {
            *out = store_grow(*out, &cap, *n, sizeof **out);
            (*out)[*n].lane = sqldb_column_int64(st, 0);
            (*out)[(*n)++].domain = store_qcol_str(st, 1);
        }
        sqldb_finalize(st);
    }
    pthread_mutex_unlock(&s->r_lock);
    if (r != SQLDB_DONE) {
        log_error("store: listing lanes failed");
        store_lanes_free(*out, *n);
        *out = NULL;
        *n = 0;
        return -1;
    }
    return 0;
}

void store_lanes_free(struct lane_row *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i].domain);
    free(v);
}

int store_identity_days(struct store *s, int64_t identity_id, int64_t from_day, int64_t to_day,
                        struct identity_day_count **out, size_t *n)
{
    size_t cap = 0;
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&s->r_lock);
    struct sqldb_stmt *st = sqldb_prepare(
        s->rq, "SELECT d.day, coalesce(m.name, ''), d.lane, d.sent FROM identity_days d"
               " LEFT JOIN domains m ON m.id = d.lane WHERE d.identity_id = ?1"
               " AND d.day BETWEEN ?2 AND ?3 AND d.sent > 0 ORDER BY d.day, d.lane");
    int r = -1;
    if (st) {
        sqldb_bind_int64(st, 1, identity_id);
        sqldb_bind_int64(st, 2, from_day);
        sqldb_bind_int64(st, 3, to_day);
        while ((r = sqldb_step(st)) == SQLDB_ROW) {
            *out = store_grow(*out, &cap, *n, sizeof **out);
            struct identity_day_count *x = &(*out)[(*n)++];
            x->day = sqldb_column_int64(st, 0);
            x->domain = store_qcol_str(st, 1);
            x->lane = sqldb_column_int64(st, 2);
            x->sent = sqldb_column_int64(st, 3);
        }
        sqldb_finalize(st);
    }
    pthread_mutex_unlock(&s->r_lock);
    if (r != SQLDB_DONE) {
        log_error("store: identity_id=%lld day counts failed", (long long)identity_id);
        store_identity_days_free(*out, *n);
        *out = NULL;
        *n = 0;
        return -1;
    }
    return 0;
}

void store_identity_days_free(struct identity_day_count *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i].domain);
    free(v);
}
