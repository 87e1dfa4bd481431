/* store_fanout.h - the background fan-out of broadcast emails (store_fanout.c):
 * its schema, the snapshot /send takes, the chunks the fan-out thread
 * (fanout.h) commits. Locks as in store.c: every function here takes
 * w_lock; any thread may call them.
 *
 * A broadcast's copies are made after its 202, in chunks of users in id
 * order. The email row keeps the fan-out's state:
 *  - fan_max: the highest users.id when the email was stored (users
 *    registered later get their copy by backfill, never by the fan-out);
 *  - fan_cursor: the last users.id done; the chunk's copies and the new
 *    cursor commit together, so a restart resumes where it stopped and
 *    never makes a copy twice. Done when fan_cursor = fan_max;
 *  - fan_left: the copies still to make, i.e. the users with id in
 *    (fan_cursor, fan_max] whose address is not suppressed; the email's
 *    "pending" counts them (EMAIL_COLS in store_emails.c).
 * fanout_counts.eligible counts the registered users whose address is not
 * suppressed, so /send knows its number of recipients without a scan. The
 * triggers keep both exact in the transactions of registrations,
 * suppressions and their removal: a suppression of an address the
 * fan-out has not reached moves one copy from fan_left to n_suppressed
 * (as dropping a queued copy does); its removal adds one to fan_left. */
#ifndef STORE_FANOUT_H
#define STORE_FANOUT_H

#include <stdint.h>

struct store;

/* the users of an email's remaining range (cursor, max] for a suppressed
 * address (NEW.address) */
#define FANOUT_RANGE_OF_ADDRESS                                                                    \
    " WHERE id IN (SELECT e.id FROM emails e, users u WHERE e.fan_cursor < e.fan_max"              \
    " AND u.email_id = NEW.address COLLATE NOCASE AND u.id > e.fan_cursor AND u.id <= e.fan_max)"

/* schema version 9 */
#define STORE_FANOUT_SCHEMA_SQL                                                                    \
    "ALTER TABLE emails ADD COLUMN fan_cursor INTEGER NOT NULL DEFAULT 0;"                         \
    "ALTER TABLE emails ADD COLUMN fan_max INTEGER NOT NULL DEFAULT 0;"                            \
    "ALTER TABLE emails ADD COLUMN fan_left INTEGER NOT NULL DEFAULT 0;"                           \
    "CREATE INDEX emails_fanout ON emails(id) WHERE fan_cursor < fan_max;"                         \
    "CREATE TABLE fanout_counts (id INTEGER PRIMARY KEY, eligible INTEGER NOT NULL);"              \
    "INSERT INTO fanout_counts(id, eligible) SELECT 1, count(*) FROM users WHERE NOT EXISTS"       \
    " (SELECT 1 FROM suppressions WHERE address = users.email_id);"                                \
    "CREATE TRIGGER fanout_user AFTER INSERT ON users BEGIN"                                       \
    " UPDATE fanout_counts SET eligible = eligible + 1 WHERE id = 1 AND NOT EXISTS"                \
    " (SELECT 1 FROM suppressions WHERE address = NEW.email_id); END;"                             \
    "CREATE TRIGGER fanout_supp_add AFTER INSERT ON suppressions BEGIN"                            \
    " UPDATE fanout_counts SET eligible = eligible - 1 WHERE id = 1 AND EXISTS"                    \
    " (SELECT 1 FROM users WHERE email_id = NEW.address COLLATE NOCASE);"                          \
    " UPDATE emails SET fan_left = fan_left - 1, n_suppressed = n_suppressed + "                   \
    "1" FANOUT_RANGE_OF_ADDRESS "; END;"                                                           \
    "CREATE TRIGGER fanout_supp_del AFTER DELETE ON suppressions BEGIN"                            \
    " UPDATE fanout_counts SET eligible = eligible + 1 WHERE id = 1 AND EXISTS"                    \
    " (SELECT 1 FROM users WHERE email_id = OLD.address COLLATE NOCASE);"                          \
    " UPDATE emails SET fan_left = fan_left + 1"                                                   \
    " WHERE id IN (SELECT e.id FROM emails e, users u WHERE e.fan_cursor < e.fan_max"              \
    " AND u.email_id = OLD.address COLLATE NOCASE AND u.id > e.fan_cursor"                         \
    " AND u.id <= e.fan_max); END;"

/* the snapshot of a new broadcast ?1, in /send's transaction: O(1) */
#define STORE_FANOUT_SNAPSHOT_SQL                                                                  \
    "UPDATE emails SET fan_cursor = 0,"                                                            \
    " fan_max = (SELECT COALESCE(max(id), 0) FROM users),"                                         \
    " fan_left = (SELECT eligible FROM fanout_counts WHERE id = 1)"                                \
    " WHERE id = ?1 RETURNING fan_left"

/* store_fanout_step - one chunk of the fan-out: the first email (id
 * order) that is not paused, whose fan-out is not done and which has
 * fewer than ahead copies pending (ahead 0: any number); up to chunk users
 * of its range after its cursor, their copies, the cursor and counters in
 * one transaction. *email_id: the email served, *copies: the copies made
 * (both 0 when none). 1 a chunk committed, 0 nothing to do, -1 error. */
int store_fanout_step(struct store *s, int64_t chunk, int64_t ahead, int64_t *email_id,
                      int64_t *copies);

/* store_fanout_drain - store_fanout_step without an ahead bound until
 * nothing is left to do (paused emails wait); 0 or -1. For tests and
 * tools: the service runs the steps on its own thread (fanout.h). */
int store_fanout_drain(struct store *s, int64_t chunk);

/* store_fanout_eligible - the registered users whose address is not
 * suppressed (the recipients of a /send now); -1 on error */
int64_t store_fanout_eligible(struct store *s);

#endif
