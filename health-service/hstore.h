/* hstore.h - the health service's store: known users and domains, tracked
 * copies and their counters. The interface every storage backend
 * implements; today SQLite (hstore_sqlite*.c), later PostgreSQL.
 *
 * Callers get plain structs, never JSON: the HTTP answers are built in
 * api.c. Strings in a returned struct are owned by it and freed by the
 * function named beside it; arguments are borrowed for the call.
 *
 * The seam is a const struct hstore_ops (as the FeedbackLoop and
 * SmtpClient plugins): the backend is chosen at run time by hstore_open
 * (DB_PATH today, a postgres:// DATABASE_URL later), so a link-time set
 * of functions would not do; one indirect call per operation costs
 * nothing next to a query. A backend embeds struct hstore as the first
 * member of its own state and fills every op (key_copies may be NULL).
 *
 * Threads: writes come from the consumer's writer thread (apply_events)
 * and the scheduler's workers (apply_checks); reads from HTTP threads
 * and the scheduler; key_copies from the consumer's thread while the
 * previous batch is applied. A backend serialises what it must. Applying
 * an event is idempotent: a user.registered for an address or a copy
 * event for a Message-ID already seen changes nothing, so a redelivered
 * event is harmless.
 */
#ifndef HSTORE_H
#define HSTORE_H

#include "events.h"
#include "loops/feedback_loop.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* what is known of tracked copies (an email's, a domain's or one copy's);
 * opened and read are subsets of delivered (and of the rescued spam);
 * bounced counts dead letters and bounce reports, complained complaint
 * reports, unchecked the copies no loop looks at (placement FL_UNCHECKED),
 * rescued the copies an engagement moved from spam to the inbox (still
 * counted in spam); each copy once in each. For one copy each is 0 or 1. */
struct hplacement {
    int64_t tracked, delivered, spam, opened, read, bounced, complained;
    int64_t unchecked, rescued;
};

/* a known domain (/domains) */
struct hstore_domain {
    char *domain;                 /* owned */
    char *first_seen, *last_seen; /* owned, RFC 3339 text as stored */
    int64_t users;                /* registered */
    int64_t checked;              /* copies checked at least once */
    bool has_round;               /* a feedback-loop round ran */
    int64_t last_round_at;        /* ms since the epoch, if has_round */
    char *last_error;             /* owned; NULL: the last round succeeded */
    struct hplacement n;
};

/* the /mail_stats figures of a broadcast (its copies summed) or a copy */
struct hstore_stats {
    int64_t email_id;
    char *message_id; /* owned: the broadcast's, or the copy's */
    struct hplacement n;
    bool checked;             /* some copy was checked */
    int64_t checked_at;       /* the last check, ms since the epoch, if checked */
    char *recipient, *domain; /* owned; a copy's only (NULL for a broadcast) */
};

/* a bounce or complaint report about one copy (bounce/, DESIGN 9.2) */
struct hstore_feedback {
    bool complained;           /* else a bounce */
    bool soft;                 /* a bounce: a temporary failure */
    const char *status;        /* a bounce: "5.1.1" */
    const char *diagnostic;    /* a bounce: the remote server's words, or NULL */
    const char *feedback_type; /* a complaint: "abuse", "fraud", ... */
};

/* a copy handed to a feedback loop, with what was known before the round */
struct hstore_copy {
    struct fl_copy fl;            /* message_id and recipient point into the strings below */
    char *message_id, *recipient; /* owned (hstore_copies_free) */
    int64_t email_id;
    enum fl_placement old_placement;
    bool old_opened, old_read;
    bool old_found;   /* found in a folder before (its found_at is set: never moved) */
    bool old_rescued; /* rescued by an earlier round (its placement stays FL_SPAM) */
    /* the backend's: where the copy is stored (SQLite: file and rowid) and
     * its analytics series (SQLite: that file's analytics_series id) */
    int64_t id;
    int shard;
    int64_t series;
};

/* the copies of one sending identity to one recipient domain sent since a
 * time (hstore_placement_counts). Each copy counts in at most one of
 * bounced, complained, spam, inbox (in that order of precedence), so
 * checked = their sum: the copies whose placement is known. */
struct hstore_placement_row {
    char *identity; /* owned; NULL: copies without an identity */
    char *domain;   /* owned */
    int64_t copies, checked, inbox, spam, bounced, complained;
};

/* copies of one domain found in the inbox delay_s seconds (rounded up)
 * after they were sent (hstore_inbox_delays) */
struct hstore_delay_row {
    char *domain; /* owned */
    int64_t delay_s, count;
};

/* the seven counts of GET /analytics (DESIGN 9.5), in this order: sent
 * (tracked: every email.sent and dead letter), delivered and spam (the
 * copy's placement now), opened, read, bounced, complained (each a copy
 * once) */
enum hstore_an {
    HAN_SENT,
    HAN_DELIVERED,
    HAN_SPAM,
    HAN_OPENED,
    HAN_READ,
    HAN_BOUNCED,
    HAN_COMPLAINED
};
#define HAN_N 7

/* what hstore_analytics sums: the copies sent in [from_hour, to_hour)
 * (hours since the epoch, UTC), in buckets of bucket_hours (1 or 24; a
 * bucket is hour / bucket_hours), of the series matching every filter
 * given (NULL, or campaign 0: any; identity "" matches copies without
 * one) */
struct hstore_an_query {
    int64_t from_hour, to_hour;
    int bucket_hours;
    const char *domain, *identity, *variant; /* borrowed */
    int64_t campaign;
};

/* one bucket that has copies: its first hour and the counts */
struct hstore_an_row {
    int64_t hour;
    int64_t n[HAN_N];
};

/* an observer of the counts: after each commit, what entered each of the
 * seven counts (copies newly tracked, newly found in the inbox or spam,
 * newly opened, read, bounced, complained); any writer thread */
typedef void (*hstore_counted_fn)(void *arg, const int64_t n[HAN_N]);

struct hstore_ops;
/* a store: the backend's state begins with this */
struct hstore {
    const struct hstore_ops *ops;
    hstore_counted_fn counted; /* or NULL; set before any write (hstore_set_counted) */
    void *counted_arg;
};

/* ---- what callers use (hstore.c dispatches to the backend) ---------- */

/* hstore_open - the store at path (SQLite; made if missing, its copies in
 * sqlite_files files: DB_FILES); NULL with the reason in errbuf.
 * hstore_free(NULL) is a no-op. */
struct hstore *hstore_open(const char *path, int sqlite_files, char *errbuf, size_t errlen);
void hstore_free(struct hstore *s);

/* hstore_apply_events - record users (and their domains) and copies
 * (email.sent: tracked; email.failed: bounced) in ONE transaction (a
 * SQLite store of several files: one per file, hstore_sqlite.h);
 * *new_users / *new_copies count what was not seen before (a redelivered
 * event changes nothing). 0 on commit, -1 on error (nothing written, or
 * with several files part of it: a retry of the batch completes it).
 * The events are borrowed. */
int hstore_apply_events(struct hstore *s, const struct user_event *users, size_t nu,
                        const struct copy_event *copies, size_t nc, size_t *new_users,
                        size_t *new_copies);
/* hstore_key_copies - give each copy its store key and put the copies in
 * the order the store applies them (copy_event's key, seq, keyed).
 * Optional (hstore_apply_events does it for copies not keyed), and
 * callable on any thread: the pipelined ingest does it while the previous
 * batch is stored. */
void hstore_key_copies(struct hstore *s, struct copy_event *copies, size_t n);

/* hstore_domains - every known domain, by name, into a new array
 * (hstore_domains_free); 0 or -1 */
int hstore_domains(struct hstore *s, struct hstore_domain **out, size_t *n);
void hstore_domains_free(struct hstore_domain *d, size_t n);
/* hstore_domain_count - known domains, -1 on error */
int64_t hstore_domain_count(struct hstore *s);
/* hstore_domain_placement - 0 and *out filled; 1 unknown domain; -1 error */
int hstore_domain_placement(struct hstore *s, const char *domain, struct hplacement *out);
/* hstore_domain_names - every known domain, sorted; caller frees each and
 * the array. 0 or -1. */
int hstore_domain_names(struct hstore *s, char ***names, size_t *n);
/* hstore_ping - the store answers */
bool hstore_ping(struct hstore *s);
/* hstore_leader - this instance runs the feedback-loop rounds and reads
 * the bounce mailbox: always with a store of its own (SQLite); on a store
 * several instances share (PostgreSQL), the one holding the store's
 * leader lock, taken here when free and given up with a lost connection,
 * so a dead leader's successor takes over at its next call. Any thread. */
bool hstore_leader(struct hstore *s);

/* hstore_open_copies - up to max copies of domain sent since since_ms,
 * not bounced and not unchecked (FL_UNCHECKED is final), oldest first,
 * into a new array (hstore_copies_free, also on error); 0 or -1 */
int hstore_open_copies(struct hstore *s, const char *domain, int64_t since_ms, size_t max,
                       struct hstore_copy **out, size_t *n);
void hstore_copies_free(struct hstore_copy *c, size_t n);
/* hstore_apply_checks - a round's results for domain: the copies
 * (FL_UNKNOWN keeps what was known), their emails' and the domain's
 * counters and the domain's checked count, in the same transactions.
 * domain_round: the domain loop's round, which also sets the domain's
 * round time and error (NULL: none); false (a seed mailbox's round, or
 * the scheduler marking copies FL_UNCHECKED) leaves both alone.
 * FL_UNCHECKED: placement 4, counted once in unchecked; such a copy was
 * not checked (no checked count, no checked_at). fl.rescued (and not
 * old_rescued): rescued once, counted once. A rescued copy's placement is
 * FL_SPAM whatever a later round finds (opened and read still follow);
 * a copy rescued this round is recorded even if its placement is
 * FL_UNKNOWN. 0 or -1 */
int hstore_apply_checks(struct hstore *s, const char *domain, const struct hstore_copy *c, size_t n,
                        int64_t now_ms, const char *error, bool domain_round);

/* hstore_stats_email - a broadcast's figures, by email_id (broadcast_id
 * NULL) or by its Message-ID, into *out (hstore_stats_cleanup); 0, 1
 * unknown, -1 error (*out untouched unless 0) */
int hstore_stats_email(struct hstore *s, int64_t email_id, const char *broadcast_id,
                       struct hstore_stats *out);
/* hstore_stats_copy - one copy's figures, with recipient and domain; as
 * hstore_stats_email */
int hstore_stats_copy(struct hstore *s, const char *message_id, struct hstore_stats *out);
void hstore_stats_cleanup(struct hstore_stats *t);
/* hstore_all_stats - every broadcast's figures by email_id, at most limit
 * from offset, into a new array (hstore_stats_free); 0 or -1 */
int hstore_all_stats(struct hstore *s, int64_t limit, int64_t offset, struct hstore_stats **out,
                     size_t *n);
void hstore_stats_free(struct hstore_stats *t, size_t n);
/* hstore_tracked_count - copies tracked (all emails), -1 on error */
int64_t hstore_tracked_count(struct hstore *s);
/* hstore_apply_feedback - record report f about the copy message_id, in
 * one transaction with its email's and domain's counters: a bounce marks
 * the copy bounced (no more feedback-loop checks) and counts it in
 * bounced, unless it was already (a dead letter or an earlier report); a
 * complaint marks it complained and counts it, once. *changed says
 * whether anything was written (a second report changes nothing). 0, 1
 * when no such copy is tracked, -1 on error (nothing written). Called by
 * the bounce mailbox reader's thread. */
int hstore_apply_feedback(struct hstore *s, const char *message_id, const struct hstore_feedback *f,
                          bool *changed);

/* hstore_placement_counts - one row per (identity, domain) of the copies
 * sent since since_ms (ordered by identity, NULL first, then domain), into
 * a new array (hstore_placement_rows_free); 0 or -1. One query over the
 * copies stored since the first batch holding a copy sent then, for the
 * placement thread and /providers. */
int hstore_placement_counts(struct hstore *s, int64_t since_ms, struct hstore_placement_row **out,
                            size_t *n);
void hstore_placement_rows_free(struct hstore_placement_row *r, size_t n);
/* hstore_inbox_delays - per domain and whole second, the copies sent since
 * since_ms whose placement is the inbox and whose found_at is known, by
 * found_at - sent_at rounded up (0 if the clocks disagree), into a new
 * array (hstore_delay_rows_free) ordered by domain and delay; 0 or -1 */
int hstore_inbox_delays(struct hstore *s, int64_t since_ms, struct hstore_delay_row **out,
                        size_t *n);
void hstore_delay_rows_free(struct hstore_delay_row *r, size_t n);

/* the most Message-IDs a reconciliation names (DESIGN 9.3: up to 100) */
#define HSTORE_RECON_IDS 100

/* an email's reconciliation (GET /emails/{id}/reconciliation): each
 * tracked copy in exactly one state, the first that holds of bounced,
 * complained, spam, inbox (its placement), unchecked (no loop looks at
 * it), pending (not found, sent at or after the window's start) and
 * missing (not found, sent before it), so inbox + spam + bounced +
 * complained + unchecked + pending + missing = tracked.
 * accepted: the copies an email.sent made (tracked less the dead letters
 * an email.failed made). */
struct hstore_recon {
    int64_t email_id;
    int64_t accepted, tracked, inbox, spam, bounced, complained, unchecked, pending, missing;
    char **missing_ids; /* owned (hstore_recon_cleanup): up to HSTORE_RECON_IDS
                         * missing copies' Message-IDs, oldest first */
    size_t nmissing_ids;
};

/* hstore_reconcile - email_id's copies by state into *out
 * (hstore_recon_cleanup), a copy not found being missing when it was
 * sent before window_start_ms (now - TRACK_WINDOW), pending otherwise; 0,
 * 1 when no copy of the email is tracked, -1 error (*out empty unless 0) */
int hstore_reconcile(struct hstore *s, int64_t email_id, int64_t window_start_ms,
                     struct hstore_recon *out);
void hstore_recon_cleanup(struct hstore_recon *r);

/* hstore_analytics - the buckets of q that have copies, oldest first,
 * into a new array (free()); the counts kept per series and sending hour
 * by every write (never the copies read); 0 or -1 */
int hstore_analytics(struct hstore *s, const struct hstore_an_query *q, struct hstore_an_row **out,
                     size_t *n);
/* hstore_set_counted - fn(arg, counts) after each commit that changed the
 * counts (metrics); call before the store is written to */
void hstore_set_counted(struct hstore *s, hstore_counted_fn fn, void *arg);
/* hstore_counted - for backends: tell the observer, if any, when n has
 * something */
void hstore_counted(struct hstore *s, const int64_t n[HAN_N]);

/* ---- what a backend implements -------------------------------------- */

/* hstore_sqlite_open - the SQLite backend (hstore_sqlite.c): the store at
 * path, its copies spread over nshards files if it is new (0: the
 * default; a power of two up to 8); a store keeps the count it was made
 * with. NULL with the reason in errbuf. */
struct hstore *hstore_sqlite_open(const char *path, int nshards, char *errbuf, size_t errlen);

/* Each op has the contract of the hstore_ function of the same name.
 * Arrays and strings an op returns are allocated with the xalloc family:
 * the hstore_*_free / cleanup functions free them whatever the backend. */
struct hstore_ops {
    const char *name; /* "sqlite" */
    void (*free)(struct hstore *s);
    int (*apply_events)(struct hstore *s, const struct user_event *users, size_t nu,
                        const struct copy_event *copies, size_t nc, size_t *new_users,
                        size_t *new_copies);
    void (*key_copies)(struct hstore *s, struct copy_event *copies, size_t n); /* or NULL */
    int (*domains)(struct hstore *s, struct hstore_domain **out, size_t *n);
    int64_t (*domain_count)(struct hstore *s);
    int (*domain_placement)(struct hstore *s, const char *domain, struct hplacement *out);
    int (*domain_names)(struct hstore *s, char ***names, size_t *n);
    int (*open_copies)(struct hstore *s, const char *domain, int64_t since_ms, size_t max,
                       struct hstore_copy **out, size_t *n);
    int (*apply_checks)(struct hstore *s, const char *domain, const struct hstore_copy *c, size_t n,
                        int64_t now_ms, const char *error, bool domain_round);
    int (*stats_email)(struct hstore *s, int64_t email_id, const char *broadcast_id,
                       struct hstore_stats *out);
    int (*stats_copy)(struct hstore *s, const char *message_id, struct hstore_stats *out);
    int (*all_stats)(struct hstore *s, int64_t limit, int64_t offset, struct hstore_stats **out,
                     size_t *n);
    int64_t (*tracked_count)(struct hstore *s);
    int (*apply_feedback)(struct hstore *s, const char *message_id, const struct hstore_feedback *f,
                          bool *changed);
    int (*placement_counts)(struct hstore *s, int64_t since_ms, struct hstore_placement_row **out,
                            size_t *n);
    int (*inbox_delays)(struct hstore *s, int64_t since_ms, struct hstore_delay_row **out,
                        size_t *n);
    int (*reconcile)(struct hstore *s, int64_t email_id, int64_t window_start_ms,
                     struct hstore_recon *out);
    int (*analytics)(struct hstore *s, const struct hstore_an_query *q, struct hstore_an_row **out,
                     size_t *n);
    bool (*leader)(struct hstore *s); /* or NULL: always the leader */
};

#endif
