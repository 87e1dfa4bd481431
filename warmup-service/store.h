/* store.h - the warmup service's SQLite store: schema, users, outbox rows.
 *
 * Owns two connections to DB_PATH: a writer (one transaction at a time,
 * behind w_lock) and a reader (behind r_lock) so that listings never wait
 * for a long import batch under WAL. Every write that has an event writes
 * its outbox row in the same transaction: a committed change always has
 * its event. Thread-safe: any thread may call any function.
 *
 * Threads: the registration thread (store_register_async's group commits)
 * runs from store_open to store_free; store_free commits what is queued
 * first, so stop the HTTP server (its producer) before it.
 */
#ifndef STORE_H
#define STORE_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;

struct user_reg {
    const char *name;
    const char *email_id; /* normalised address */
    const char *domain;
    const char *created_at; /* RFC 3339 */
    const char *event;      /* user.registered JSON for the outbox */
};

enum { STORE_INSERTED = 0, STORE_DUPLICATE = 1 };

/* store_open - open and migrate; NULL with a message on failure */
struct store *store_open(const char *path, char *errbuf, size_t errlen);
void store_free(struct store *s);

/* store_register_batch - insert users and, for each new one, its event
 * (topic, key = domain) in ONE transaction. result[i] is STORE_INSERTED or
 * STORE_DUPLICATE (already registered, or earlier in the same batch).
 * 0 on commit; -1 (rolled back, nothing written) on a database error. */
int store_register_batch(struct store *s, const struct user_reg *users, size_t n, const char *topic,
                         int *result);

/* One registration for the store's registration thread, which commits
 * every request waiting in ONE transaction (one fsync: group commit) and
 * then calls each request's done() on that thread. The caller owns the
 * struct and everything u points to until done() is called. */
struct store_reg_req {
    struct user_reg u;
    const char *topic;
    void (*done)(struct store_reg_req *r);
    /* set before done(): */
    int rc;             /* 0 committed; -1 database error, nothing of that transaction stored */
    int result;         /* STORE_INSERTED or STORE_DUPLICATE */
    int64_t backfilled; /* copies of earlier emails queued for a new user */
    struct store_reg_req *next; /* the store's */
};
/* store_register_async - queue r for the next group commit; never blocks
 * on the database. Waiting requests are bounded by the caller (HTTP
 * connection limit). */
void store_register_async(struct store *s, struct store_reg_req *r);

/* store_list_users - [{"name","email_id","created_at"}] ordered by
 * registration; caller puts the array. NULL on error. */
json_object *store_list_users(struct store *s, int64_t limit, int64_t offset);

/* store_email_ids_page - up to max addresses with row id > *after, in id
 * order; calls fn for each and advances *after. Returns the count, -1 on
 * error. Keyset paging keeps a full listing's memory bounded. */
int store_email_ids_page(struct store *s, int64_t *after, int max,
                         void (*fn)(void *arg, const char *email_id), void *arg);

/* store_ping - the reader can run a query */
bool store_ping(struct store *s);

/* ---- emails and their copies (store_emails.c) ----------------------- */

struct email_spec {
    const char *from, *from_name, *subject, *body, *html, *smtp_client, *msgid_domain;
    int tpm;
};

/* an email as stored; strings are heap copies (email_info_cleanup) */
struct email_info {
    int64_t id;
    char *message_id, *from, *from_name, *subject, *body, *html, *smtp_client, *salt, *msgid_domain,
        *created_at;
    int tpm;
    bool paused;
    int64_t pending, sent, failed, dead;
};
void email_info_cleanup(struct email_info *e);

/* store_create_email - the email and one copy per registered user, in ONE
 * transaction. *message_id (caller frees) is <email-{id}@{msgid_domain}>. */
int store_create_email(struct store *s, const struct email_spec *spec, int64_t *id,
                       int64_t *recipients, char **message_id);
/* store_get_email - 0 found, 1 unknown id, -1 error; bodies only if asked */
int store_get_email(struct store *s, int64_t id, bool bodies, struct email_info *out);
/* store_list_emails - up to limit emails (no bodies) in id order into a
 * new array (*out, caller frees each with email_info_cleanup and the array) */
int store_list_emails(struct store *s, int64_t limit, int64_t offset, struct email_info **out,
                      size_t *n);
/* store_set_paused / store_set_tpm - 0, 1 unknown id, -1 error */
int store_set_paused(struct store *s, int64_t id, bool paused);
int store_set_tpm(struct store *s, int64_t id, int tpm);
/* store_reconcile - dead copies and expired leases of the email back to
 * pending (attempts reset); *requeued counts them. 0, 1 unknown, -1 */
int store_reconcile(struct store *s, int64_t id, int64_t now_ms, int64_t *requeued);
/* store_dlq - dead letters (email_id 0: all emails), newest first, as a
 * JSON array; NULL on error */
json_object *store_dlq(struct store *s, int64_t email_id, int64_t limit);
/* store_active_emails - ids of emails that are not paused and have copies
 * pending or failed; up to max */
int store_active_emails(struct store *s, int64_t *ids, size_t max, size_t *n);
/* store_release_leases - at start-up: every leased copy back to its queue
 * (the process that leased it is gone) */
int store_release_leases(struct store *s, int64_t *released);

struct claim {
    int64_t id;
    char *recipient; /* heap */
    char *name;      /* heap */
    int attempts;
};
/* store_claim - lease up to max due copies of an email (pending, or retry
 * with due_at <= now) in one statement; out[] filled, *n set */
int store_claim(struct store *s, int64_t email_id, int max, int64_t now_ms, int64_t lease_ms,
                struct claim *out, size_t *n);

enum dlv_kind { DLV_R_SENT, DLV_R_RETRY, DLV_R_DEAD, DLV_R_RELEASE };
struct dlv_result {
    int64_t delivery_id, email_id;
    int attempts_before; /* 0: the copy was pending, else it was failed */
    enum dlv_kind kind;
    int code;
    char enhanced[16];
    char text[512];
    int64_t due_at;  /* RETRY: next attempt (wall ms) */
    char *event;     /* email.sent / email.failed JSON or NULL (borrowed) */
    char *event_key; /* the copy's Message-ID (borrowed) */
};
/* store_apply_results - the outcomes of a batch of copies, the emails'
 * counters and the events in ONE transaction */
int store_apply_results(struct store *s, const struct dlv_result *r, size_t n, const char *topic,
                        int64_t now_ms);
int64_t store_user_count(struct store *s);

#endif
