/* store.h - the warmup service's storage interface: users, the event
 * outbox, broadcast emails and their per-recipient copies (the send queue),
 * dead letters.
 *
 * This header is the seam a second backend (PostgreSQL) implements. It
 * speaks plain C structs only: no SQL, no SQLite type, no JSON (the API
 * files build the answers). Every result says who frees it; every call is
 * thread-safe; errors are 0 / 1 (not found, where stated) / -1 (logged).
 * The SQLite backend is store.c (users, outbox, registration thread) and
 * store_emails.c (emails, copies), with its private parts in store_int.h.
 *
 * A function set over an opaque struct store, not a vtable: a build has
 * one backend, as it has one libsqlite3, and no caller holds a backend
 * type, so a PostgreSQL store is a second set of these functions chosen
 * by meson. Should one binary ever need both at run time, these
 * signatures become a const struct store_ops unchanged.
 *
 * Durability: a write that has an event (user.registered, email.sent,
 * email.failed) adds its outbox row in the same transaction: a committed
 * change always has its event. API writes are on disk when they return;
 * the sender's claims and outcomes may be lost by a power cut, never a
 * copy (store_emails.c, sync_mode). Listings never wait for a long write.
 *
 * Threads: any thread may call any function. The registration thread
 * (store_register_async's group commits) runs from store_open to
 * store_free; store_free commits what is queued first, so stop the HTTP
 * server (its producer) before it.
 */
#ifndef STORE_H
#define STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ramp.h"

struct store;

/* ---- lifecycle ------------------------------------------------------- */

/* store_open - open the database at path (DB_PATH) and bring its schema
 * up to date; NULL with a message on failure. Caller frees: store_free. */
struct store *store_open(const char *path, char *errbuf, size_t errlen);
/* store_free - commit queued registrations, stop, close. NULL no-op. */
void store_free(struct store *s);
/* store_ping - the database answers a read (for /readyz) */
bool store_ping(struct store *s);

/* ---- users ----------------------------------------------------------- */

/* a registration; every pointer borrowed for the call */
struct user_reg {
    const char *name;
    const char *address; /* normalised ("email_id" in the API) */
    const char *domain;
    const char *created_at; /* RFC 3339 */
    const char *event;      /* user.registered JSON for the outbox */
    const char *attributes; /* a JSON object's text (<= 4 KiB, checked), NULL: none */
};

enum { STORE_INSERTED = 0, STORE_DUPLICATE = 1 };

/* store_register_batch - insert users and, for each new one, a copy of
 * every earlier email (none for a suppressed address) and its event (topic, key = domain) in ONE
 * transaction. result[i] is STORE_INSERTED or STORE_DUPLICATE (already
 * registered, or earlier in the same batch). 0 on commit; -1 (nothing
 * written) on a database error. */
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

/* a registered user; strings are heap copies */
struct user_row {
    char *name;
    char *address;    /* normalised */
    char *created_at; /* RFC 3339 */
    char *attributes; /* a JSON object's text, NULL: none */
};
/* store_list_users - up to limit users from offset, in registration order,
 * into a new array *out of *n rows. 0: caller frees with store_users_free;
 * -1: *out NULL, *n 0. */
int store_list_users(struct store *s, int64_t limit, int64_t offset, struct user_row **out,
                     size_t *n);
/* store_users_free - each row's strings and the array; NULL no-op */
void store_users_free(struct user_row *v, size_t n);

/* store_email_ids_page - up to max addresses registered after the cursor
 * *after (0: from the start), in registration order; calls fn for each
 * (address borrowed for the call, under the store's read lock: fn must
 * not call the store) and advances *after. Returns the count, -1 on
 * error. Keyset paging keeps a full listing's memory bounded. */
int store_email_ids_page(struct store *s, int64_t *after, int max,
                         void (*fn)(void *arg, const char *address), void *arg);
/* store_user_count - registered users, -1 on error */
int64_t store_user_count(struct store *s);

/* ---- emails ---------------------------------------------------------- */

/* emails.kind (email_info.kind) */
enum email_kind {
    EMAIL_KIND_BROADCAST = 0, /* /send: every user, and each later user by backfill */
    EMAIL_KIND_CAMPAIGN = 1,  /* one variant of a campaign: its audience only */
    EMAIL_KIND_MESSAGES = 2   /* transactional messages of one template version, from, priority */
};

/* a new email; every pointer borrowed for the call, from_name, html,
 * variant, template_name and defaults may be NULL (zero: a broadcast) */
struct email_spec {
    const char *from, *from_name, *subject, *body, *html, *smtp_client, *msgid_domain;
    int tpm;
    enum email_kind kind;
    int priority;              /* 1: high */
    int64_t campaign_id;       /* kind CAMPAIGN */
    const char *variant;       /* kind CAMPAIGN */
    const char *template_name; /* made from this template version */
    int template_version;
    const char *defaults; /* the template's defaults, a JSON object's text */
    bool paused;          /* stored paused (a campaign started while paused) */
};

/* an email as stored with its progress counters; strings are heap copies
 * (email_info_cleanup), from_name and html NULL when not given, body and
 * html NULL unless asked for */
struct email_info {
    int64_t id;
    char *message_id, *from, *from_name, *subject, *body, *html, *smtp_client, *salt, *msgid_domain,
        *created_at;
    int tpm;
    bool paused;
    int64_t pending, sent, failed, dead;
    int64_t suppressed; /* copies dropped: their address was suppressed */
    enum email_kind kind;
    int priority;         /* 1: high (claimed first), 0: normal */
    int64_t campaign_id;  /* kind CAMPAIGN: its campaign, else 0 */
    char *variant;        /* kind CAMPAIGN: the variant's name, else NULL */
    char *template_name;  /* the template it was made from, NULL: none (/send) */
    int template_version; /* with template_name */
    char *defaults;       /* the template's defaults (a JSON object's text), NULL: none */
};
/* email_info_cleanup - free e's strings and zero it */
void email_info_cleanup(struct email_info *e);
/* store_emails_free - email_info_cleanup each, then the array; NULL no-op */
void store_emails_free(struct email_info *v, size_t n);

/* ---- templates (store_templates.c) ------------------------------------ */

/* a template version; strings are heap copies (template_cleanup), html,
 * from and from_name NULL when not given, defaults "{}" when none */
struct template
{
    char *name;
    int version;
    char *subject, *text, *html, *defaults, *from, *from_name, *created_at;
};
/* template_cleanup - free t's strings and zero it; NULL no-op */
void template_cleanup(struct template *t);
void store_templates_free(struct template *v, size_t n);
/* a template version to store; every pointer borrowed, checked by the
 * caller (html, from, from_name may be NULL; defaults a JSON object's text) */
struct template_spec {
    const char *name, *subject, *text, *html, *defaults, *from, *from_name, *created_at;
};
/* store_add_template - a new version of t->name: version 1 when create
 * (STORE_DUPLICATE, nothing written, when the name exists), else the
 * next version (1 when the name is unknown: nothing written). *version
 * set on 0. 0, 1 as said, -1 error. */
int store_add_template(struct store *s, const struct template_spec *t, bool create, int *version);
/* store_get_template - version (0: the latest) of name: 0 found (caller
 * cleans *out with template_cleanup), 1 unknown name or version, -1 */
int store_get_template(struct store *s, const char *name, int version, struct template *out);
/* store_list_templates - the latest version of every template, by name,
 * into a new array. 0: caller frees with store_templates_free; -1. */
int store_list_templates(struct store *s, struct template **out, size_t *n);

/* store_users_missing - how many registered users, not suppressed, have
 * no usable value (a string, number or boolean) for attribute key in
 * *count, and one of them in *example (caller frees; NULL when none).
 * A full scan: for a request's check, not per copy. 0 or -1. */
int store_users_missing(struct store *s, const char *key, int64_t *count, char **example);

/* ---- transactional messages (store_messages.c) ----------------------- */

/* one transactional copy; every pointer borrowed for the call */
struct message_spec {
    const struct email_spec *email; /* its email: kind MESSAGES, template, from, priority */
    const char *recipient;          /* normalised */
    const char *domain;             /* the recipient's, lower-cased */
    const char *name;               /* "" when unknown */
    const char *data;               /* the copy's variables (JSON object text) or NULL */
    const char *request_key;        /* idempotency key or NULL */
};
/* a stored message: what its Message-ID is made of (msgid.h) */
struct message_ref {
    int64_t email_id, copy_id;
    char *salt, *msgid_domain; /* heap, caller frees */
    bool replayed;             /* the request_key was stored before: that copy, nothing new */
};
/* store_add_message - the copy under the email of its template version,
 * From and priority (made at the first such message), pending, in ONE
 * transaction on disk at return. 0 and *out filled (replayed: a request
 * with the same request_key was stored before, *out is its copy, nothing
 * written); STORE_DUPLICATE (1) when the recipient is suppressed (nothing
 * written); -1. */
int store_add_message(struct store *s, const struct message_spec *m, struct message_ref *out);
/* store_user_vars - a registered user's name and attributes (heap, caller
 * frees; attributes NULL when none): 0 found, 1 not registered, -1 */
int store_user_vars(struct store *s, const char *address, char **name, char **attributes);
/* store_add_event - one event (JSON text) for the outbox (topic, key), on
 * disk at return: 0 or -1 */
int store_add_event(struct store *s, const char *topic, const char *key, const char *event);

/* store_create_email - the email with its fan-out snapshot, in one short
 * transaction: *recipients is the number of registered users whose address
 * is not suppressed, whose copies the background fan-out will make
 * (store_fanout.h); none is made here.
 * *message_id (caller frees) is <email-{id}@{msgid_domain}>. 0 or -1
 * (nothing stored, *message_id NULL). */
int store_create_email(struct store *s, const struct email_spec *spec, int64_t *id,
                       int64_t *recipients, char **message_id);
/* store_get_email - 0 found (caller cleans *out with email_info_cleanup),
 * 1 unknown id, -1 error; bodies only if asked */
int store_get_email(struct store *s, int64_t id, bool bodies, struct email_info *out);
/* store_list_emails - up to limit emails from offset (no bodies) in id
 * order into a new array *out of *n. 0: caller frees with
 * store_emails_free; -1: *out NULL, *n 0. */
int store_list_emails(struct store *s, int64_t limit, int64_t offset, struct email_info **out,
                      size_t *n);
/* store_set_paused / store_set_tpm - 0, 1 unknown id, -1 error */
int store_set_paused(struct store *s, int64_t id, bool paused);
int store_set_tpm(struct store *s, int64_t id, int tpm);
/* store_reconcile - dead copies and expired leases of the email back to
 * pending (attempts reset); *requeued counts them. 0, 1 unknown, -1 */
int store_reconcile(struct store *s, int64_t id, int64_t now_ms, int64_t *requeued);

/* ---- dead letters ---------------------------------------------------- */

/* a copy that will not be retried, with the last SMTP reply; strings are
 * heap copies, "" when the server gave none */
struct dead_letter {
    int64_t copy_id, email_id;
    char *recipient;
    int attempts;
    int smtp_code;
    char *smtp_enhanced;
    char *smtp_reply;
    int64_t at_ms; /* when it was dead-lettered (wall ms) */
};
/* store_dlq - up to limit dead letters from offset (email_id 0: of every
 * email), newest first, into a new array *out of *n. 0: caller frees with
 * store_dead_letters_free; -1: *out NULL, *n 0. */
int store_dlq(struct store *s, int64_t email_id, int64_t limit, int64_t offset,
              struct dead_letter **out, size_t *n);
/* store_dead_letters_free - each entry's strings and the array; NULL no-op */
void store_dead_letters_free(struct dead_letter *v, size_t n);

/* ---- the send queue (the sender's threads) --------------------------- */

/* store_active_emails - into ids[] (caller's, max entries) the emails that
 * are not paused and have copies pending or failed, in id order */
int store_active_emails(struct store *s, int64_t *ids, size_t max, size_t *n);
/* store_release_leases - at start-up: every leased copy back to its queue
 * (the process that leased it is gone); on PostgreSQL only the copies of
 * dead instances (store_cluster.h) */
int store_release_leases(struct store *s, int64_t *released);

/* a leased copy */
struct claim {
    int64_t id;
    char *recipient; /* heap, caller frees */
    char *name;      /* heap, caller frees */
    char *data;      /* heap, caller frees: the copy's variables (a JSON object's text:
                      * the user's attributes, a message's data), NULL: none */
    int attempts;    /* 0: the copy was pending */
    int64_t lane;    /* its recipient domain's lane (store_lanes) */
    uint64_t epoch;  /* the suppression list's epoch at the claim */
};
/* what a claim may take and whom it charges */
struct claim_scope {
    int64_t lane_lo, lane_hi; /* only copies of lanes lo..hi (inclusive) */
    int64_t identity_id;      /* > 0: charge the copies to its day count */
    int64_t day;              /* the identity's local day (days since 1970-01-01) */
};
/* store_claim - lease up to max due copies of an email until now +
 * lease_ms; out[] (caller's, max entries) filled, *n set. scope NULL: any
 * lane, in queue order (pending first, then retries with due_at <= now);
 * else only the lanes in scope, in lane order, and with an identity the
 * copies are added to its day count per lane in the same transaction.
 * Copies of a suppressed address among them are dropped (status
 * suppressed, counted) instead of leased. */
int store_claim(struct store *s, int64_t email_id, int max, int64_t now_ms, int64_t lease_ms,
                const struct claim_scope *scope, struct claim *out, size_t *n);

enum outcome_kind {
    OUTCOME_SENT,
    OUTCOME_RETRY,
    OUTCOME_DEAD,
    OUTCOME_RELEASE,
    OUTCOME_SUPPRESSED
};
/* the outcome of a leased copy; RELEASE puts it back unchanged; SUPPRESSED
 * drops it unsent (its address was suppressed after the claim) */
struct outcome {
    int64_t copy_id, email_id;
    int attempts_before; /* 0: the copy was pending, else it was failed */
    enum outcome_kind kind;
    int code;
    char enhanced[16];
    char text[512];
    int64_t due_at;                 /* RETRY: next attempt (wall ms) */
    int64_t identity_id, day, lane; /* the claim's charge (identity_id 0: none): a
                                     * RELEASE or SUPPRESSED outcome gives it back */
    char *event;                    /* email.sent / email.failed JSON or NULL (borrowed) */
    char *event_key;                /* the copy's Message-ID (borrowed) */
};
/* store_apply_results - the outcomes of a batch of copies, the emails'
 * counters and the events (topic) in ONE transaction; 0 or -1 (nothing
 * applied) */
int store_apply_results(struct store *s, const struct outcome *r, size_t n, const char *topic,
                        int64_t now_ms);

/* ---- lanes and identity day counts (store_emails.c) ------------------- */

/* a lane: a recipient domain's number, given at its first user */
struct lane_row {
    int64_t lane;
    char *domain; /* heap */
};
/* store_lanes - the lanes above after (0: all), in order, into a new
 * array. 0: caller frees with store_lanes_free; -1 on error (*out NULL). */
int store_lanes(struct store *s, int64_t after, struct lane_row **out, size_t *n);
void store_lanes_free(struct lane_row *v, size_t n);

/* an identity's copies handed to SMTP on one local day, per domain */
struct identity_day_count {
    int64_t day;  /* days since 1970-01-01 (local date) */
    char *domain; /* heap */
    int64_t lane;
    int64_t sent;
};
/* store_identity_days - the counts of days from_day..to_day (inclusive)
 * of an identity, by day then lane, into a new array. 0: caller frees
 * with store_identity_days_free; -1 on error (*out NULL). */
int store_identity_days(struct store *s, int64_t identity_id, int64_t from_day, int64_t to_day,
                        struct identity_day_count **out, size_t *n);
void store_identity_days_free(struct identity_day_count *v, size_t n);

/* ---- the suppression list (store_suppress.c) -------------------------- */

/* a suppressed address; strings are heap copies */
struct suppression {
    char *address; /* normalised, as given when suppressed */
    char *reason;  /* unsubscribed, hard_bounce, complaint, manual */
    int64_t at_ms; /* when (wall ms) */
};
/* suppression_cleanup - free x's strings and zero it */
void suppression_cleanup(struct suppression *x);
/* store_suppressions_free - suppression_cleanup each, then the array */
void store_suppressions_free(struct suppression *v, size_t n);

/* a suppression to store; every pointer borrowed for the call */
struct suppress_req {
    const char *address; /* normalised */
    const char *domain;  /* the address's domain: the event's key */
    const char *reason;
    int64_t at_ms;
    int64_t email_ref; /* the email whose link or report asked for it; 0: none */
    const char *event; /* user.unsubscribed JSON for the outbox (topic) */
};
/* store_suppress - the address onto the suppression list with its event,
 * and its queued copies (pending or retry) dropped with status suppressed
 * and counted in their emails' progress, in ONE transaction. *result is
 * STORE_INSERTED, or STORE_DUPLICATE when it was already suppressed
 * (nothing written, no event); *dropped counts the copies dropped. 0, or
 * -1 (nothing written). */
int store_suppress(struct store *s, const struct suppress_req *r, const char *topic, int *result,
                   int64_t *dropped);
/* store_suppress_batch - store_suppress for n requests in ONE transaction
 * (the feedback-events consumer's batch): result[i] and dropped[i] per
 * request; an address twice in r is stored once (its second request is
 * STORE_DUPLICATE). 0, or -1 (nothing written, every result
 * STORE_DUPLICATE). */
int store_suppress_batch(struct store *s, const struct suppress_req *r, size_t n, const char *topic,
                         int *result, int64_t *dropped);
/* store_unsuppress - remove the address from the list (copies dropped
 * earlier stay dropped): 0 removed, 1 not suppressed, -1 error */
int store_unsuppress(struct store *s, const char *address);
/* store_get_suppression - 0 found (caller cleans *out with
 * suppression_cleanup), 1 not suppressed, -1 error. Case-insensitive. */
int store_get_suppression(struct store *s, const char *address, struct suppression *out);
/* store_list_suppressions - up to limit entries from offset, oldest
 * first, into a new array *out of *n. 0: caller frees with
 * store_suppressions_free; -1: *out NULL, *n 0. */
int store_list_suppressions(struct store *s, int64_t limit, int64_t offset,
                            struct suppression **out, size_t *n);
/* store_suppressed_since - for a claimed copy: 1 when its address was
 * suppressed after the claim (epoch: struct claim's), 0 when not, -1 on a
 * database error. One atomic load unless a suppression was stored since. */
int store_suppressed_since(struct store *s, uint64_t epoch, const char *address);

/* ---- sending identities (store_identities.c) ------------------------ */

/* one provider's state for an identity; strings heap */
struct identity_provider {
    char *provider;         /* group name or domain */
    char *state;            /* "ramping" | "holding" | "paused" */
    char *reason;           /* "" when none */
    int64_t since_ms;       /* identity clock: when the state last changed */
    int64_t grace_until_ms; /* operator resume: no automatic pause before this; 0 none */
    int64_t checked;        /* the last summary's counts and rates */
    double inbox_rate, spam_rate, bounce_rate, complaint_rate;
};
/* a sending identity; strings heap, identity_cleanup() frees */
struct identity {
    int64_t id;
    char *address;            /* normalised, unique (case-insensitive) */
    char *name, *smtp_client; /* NULL when not given */
    bool has_ramp;            /* warmup {} given */
    struct ramp ramp;
    bool has_window;                /* window {} given; without: 00:00-24:00 UTC */
    int win_start_min, win_end_min; /* minutes after local midnight, 0 <= start < end <= 1440 */
    char *tz;                       /* the window's zone; "UTC" by default */
    bool paused;                    /* operator pause */
    char *paused_reason;            /* NULL when not paused */
    char *created_at;               /* RFC 3339 */
    struct identity_provider *providers; /* by provider name */
    size_t nproviders;
};
/* identity_cleanup - free x's strings and providers and zero it; NULL no-op */
void identity_cleanup(struct identity *x);
/* store_identities_free - identity_cleanup each, then the array; NULL no-op */
void store_identities_free(struct identity *v, size_t n);

/* a new identity; every pointer borrowed for the call, name, smtp_client
 * NULL when not given, tz NULL for "UTC" (with a window) */
struct identity_spec {
    const char *address; /* normalised */
    const char *name, *smtp_client;
    bool has_ramp;
    struct ramp ramp;
    bool has_window;
    int win_start_min, win_end_min;
    const char *tz;
    const char *created_at;
};
/* store_create_identity - 0 and *id, 1 (STORE_DUPLICATE) when the address
 * already has an identity (nothing written), -1 */
int store_create_identity(struct store *s, const struct identity_spec *spec, int64_t *id);
/* store_get_identity / store_identity_by_address - 0 found (caller cleans
 * *out with identity_cleanup), 1 unknown, -1 error. By address: ignoring
 * case. */
int store_get_identity(struct store *s, int64_t id, struct identity *out);
int store_identity_by_address(struct store *s, const char *address, struct identity *out);
/* store_list_identities - up to limit identities from offset in id order,
 * with their providers, into a new array. 0: caller frees with
 * store_identities_free; -1: *out NULL, *n 0. */
int store_list_identities(struct store *s, int64_t limit, int64_t offset, struct identity **out,
                          size_t *n);
/* store_pause_identity - the operator pause with its reason: 0, 1 unknown, -1 */
int store_pause_identity(struct store *s, int64_t id, const char *reason);
/* store_resume_identity - in ONE transaction: the operator pause cleared
 * (*was_paused: it was set) and every provider "paused" back to "ramping"
 * with reason, since now_ms and grace_until_ms; their names into a new
 * array *resumed (caller frees each and the array). 0, 1 unknown, -1. */
int store_resume_identity(struct store *s, int64_t id, int64_t now_ms, int64_t grace_until_ms,
                          const char *reason, bool *was_paused, char ***resumed, size_t *nresumed);

/* a placement.summary to apply; every pointer borrowed for the call */
struct identity_summary {
    const char *address; /* the identity, normalised */
    const char *provider;
    int64_t window_s, checked, inbox, spam, bounced, complained;
    const char *at;
};
/* store_summary_fn - decides summary i of identity identity_id: cur is
 * the provider's stored state (a new provider: "ramping" since now, no
 * grace), *next starts as a copy of it; the function sets next's state,
 * reason, since_ms and rates (its strings must live until it is called
 * again or the store call returns). Called under the store's write lock:
 * it must not call the store. */
typedef void (*store_summary_fn)(void *arg, size_t i, int64_t identity_id,
                                 const struct identity_provider *cur,
                                 struct identity_provider *next);
/* store_apply_summaries - in ONE transaction, each summary of a known
 * identity through fn onto its provider's row (the summary's counts
 * kept); identity_ids[i] is its identity, 0 when the address has none
 * (ignored). 0, or -1 (nothing written, every identity_ids[i] 0). */
int store_apply_summaries(struct store *s, const struct identity_summary *v, size_t n,
                          int64_t now_ms, store_summary_fn fn, void *arg, int64_t *identity_ids);

#endif
