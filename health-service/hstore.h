/* hstore.h - the health service's SQLite store: known users and domains,
 * tracked copies and their counters.
 *
 * The copies are spread over a few SQLite files by their Message-ID's
 * hash, each with its own writer connection and lock, so that a batch's
 * inserts run on as many CPUs (hstore_int.h). Writes come from the
 * consumer's writer thread (ingest; the other files' parts on threads of
 * their own for the batch) and the scheduler's workers (check results);
 * reads from HTTP threads on one reader connection that sees every file
 * (r_lock). Applying an event is idempotent: a user.registered for an
 * address or a copy event for a Message-ID already seen changes nothing,
 * so a redelivered event is harmless.
 */
#ifndef HSTORE_H
#define HSTORE_H

#include "events.h"
#include "loops/feedback_loop.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct hstore;

/* hstore_open - the store at path (made if missing); a new store spreads
 * its copies over HSTORE_SHARDS_DEFAULT files (hstore_open_shards) */
struct hstore *hstore_open(const char *path, char *errbuf, size_t errlen);
/* hstore_open_shards - the same; a new store gets nshards files (a power
 * of two, 1..8); a store keeps the count it was made with */
struct hstore *hstore_open_shards(const char *path, int nshards, char *errbuf, size_t errlen);
void hstore_free(struct hstore *s);

/* hstore_apply_events - record users (and their domains) and copies
 * (email.sent: tracked; email.failed: bounced) in ONE transaction;
 * *new_users / *new_copies count what was not seen before (a redelivered
 * event changes nothing). 0 on commit, -1 (nothing written) on error. */
int hstore_apply_events(struct hstore *s, const struct user_event *users, size_t nu,
                        const struct copy_event *copies, size_t nc, size_t *new_users,
                        size_t *new_copies);

/* hstore_key_copies - give each copy its store key and put the copies in
 * the order the store applies them (by key, then as they came). Optional
 * (hstore_apply_events does it for copies not keyed), and callable on any
 * thread: the pipelined ingest does it while the previous batch is stored. */
void hstore_key_copies(struct hstore *s, struct copy_event *copies, size_t n);

/* hstore_domains - [{"domain","users","tracked","checked","first_seen",
 * "last_seen","last_round_at","last_error","delivered","spam","opened",
 * "read","bounced"}] by name; caller puts. NULL on error. */
json_object *hstore_domains(struct hstore *s);
int64_t hstore_domain_count(struct hstore *s);

/* what is known of a domain's tracked copies (opened and read are subsets
 * of delivered) */
struct hplacement {
    int64_t tracked, delivered, spam, opened, read, bounced;
};
/* hstore_domain_placement - 0 and *out filled; 1 unknown domain; -1 error */
int hstore_domain_placement(struct hstore *s, const char *domain, struct hplacement *out);
bool hstore_ping(struct hstore *s);
/* hstore_domain_names - every known domain, sorted; caller frees each and
 * the array */
int hstore_domain_names(struct hstore *s, char ***names, size_t *n);

/* ---- tracked copies (hstore_copies.c) ------------------------------- */

/* a copy handed to a feedback loop, with what was known before the round */
struct hcopy {
    struct fl_copy fl; /* message_id and recipient point into the strings below */
    char *message_id, *recipient;
    int64_t id; /* the copy's row in its file */
    int shard;  /* the file */
    int64_t email_id;
    enum fl_placement old_placement;
    bool old_opened, old_read;
};

/* hstore_open_copies - up to max copies of domain sent since since_ms and
 * not bounced, oldest first, into a new array (hstore_copies_free) */
int hstore_open_copies(struct hstore *s, const char *domain, int64_t since_ms, size_t max,
                       struct hcopy **out, size_t *n);
void hstore_copies_free(struct hcopy *c, size_t n);
/* hstore_apply_checks - a round's results for domain in ONE transaction:
 * copies (FL_UNKNOWN keeps what was known), the emails' counters, the
 * domain's checked count, round time and error (NULL: none) */
int hstore_apply_checks(struct hstore *s, const char *domain, const struct hcopy *c, size_t n,
                        int64_t now_ms, const char *error);

/* hstore_stats_email - the /mail_stats object of a broadcast, by email_id
 * (broadcast_id NULL) or by broadcast Message-ID; 0, 1 unknown, -1 error */
int hstore_stats_email(struct hstore *s, int64_t email_id, const char *broadcast_id,
                       json_object **out);
/* hstore_stats_copy - the same shape for one copy, with recipient and
 * domain; 0, 1 unknown, -1 error */
int hstore_stats_copy(struct hstore *s, const char *message_id, json_object **out);
/* hstore_all_stats - {"<email_id>": {...}, ...} by email_id; NULL on error */
json_object *hstore_all_stats(struct hstore *s, int64_t limit, int64_t offset);
/* hstore_tracked_count - copies tracked (all emails) */
int64_t hstore_tracked_count(struct hstore *s);

#endif
