/* seeds.h - the seed mailboxes (SEED_MAILBOXES_FILE, DESIGN 9.4): per
 * recipient address, the IMAP mailbox its copies are checked in and the
 * engagement performed there.
 *
 * The file is a JSON array of {"address","imap":{...},"engage":{...}};
 * each entry becomes an IMAP loop instance (loop_imap_ops, created with
 * the "imap" object plus "engage"). A bad entry (an invalid or duplicate
 * address, a setting the loop refuses) is kept with state "error" and its
 * reason, logged by address, and affects no other entry; a file that
 * cannot be read or is not a JSON array is refused as a whole
 * (seeds_load: -1; on a reload the old set stays).
 *
 * A reload (SIGHUP) keeps the instance (its connection, folder indexes
 * and counters) of every entry whose text did not change, makes the new
 * ones and drops the removed ones once no round holds them.
 *
 * Owns: the set, each mailbox (refcounted: seeds_snapshot takes
 * references, seeds_snapshot_free drops them) and its loop instance.
 * Threads: seeds_load from the main thread (start-up, SIGHUP); snapshot,
 * report from the scheduler's threads; seeds_list from HTTP threads. One
 * mutex guards the set and every mailbox's status; a mailbox's slot
 * belongs to the scheduler (loop_slot.h).
 */
#ifndef SEEDS_H
#define SEEDS_H

#include "loop_slot.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct seeds;

/* a seed mailbox as the scheduler sees it; the rest is private */
struct seed {
    char *address;         /* lower-cased local@domain */
    const char *domain;    /* into address */
    struct loop_slot slot; /* ops NULL: a bad entry, never checked */
};

/* a mailbox's status (GET /seed_mailboxes) */
struct seed_status {
    char *address;    /* owned */
    bool ok;          /* "ok": configured, and its last round (if any) ran */
    char *last_error; /* owned; NULL when none */
    bool has_round;
    int64_t last_round_at; /* ms since the epoch, if has_round */
    int64_t checked;       /* copies checked there at least once, since start-up */
    int64_t rescued;       /* copies moved from its spam folder to its inbox */
};

/* seeds_new - an empty set (no file: no seed mailboxes) */
struct seeds *seeds_new(void);
/* seeds_free - drop the set; mailboxes a snapshot still holds go with it */
void seeds_free(struct seeds *s);

/* seeds_load - (re)read path; -1 with the reason when the file as a whole
 * is unusable (the set is unchanged); else 0 and *bad (may be NULL) the
 * number of bad entries, each logged with its address */
int seeds_load(struct seeds *s, const char *path, size_t *bad, char *errbuf, size_t errlen);

/* seeds_count - mailboxes configured (bad entries included) */
size_t seeds_count(struct seeds *s);

/* seeds_snapshot - every mailbox, sorted by address, each referenced;
 * release with seeds_snapshot_free. *n may be 0 (array NULL). */
struct seed **seeds_snapshot(struct seeds *s, size_t *n);
void seeds_snapshot_free(struct seeds *s, struct seed **v, size_t n);
/* seeds_find - the index of address's mailbox in a sorted snapshot, n
 * when it has none (address compared without case; of a duplicate
 * address, the good entry) */
size_t seeds_find(struct seed *const *v, size_t n, const char *address);

/* seeds_report - a round in m ended at now_ms: error NULL when it ran;
 * checked copies seen there for the first time, rescued moved. True when
 * the round failed with a new error or the mailbox recovered (worth a log
 * line) */
bool seeds_report(struct seeds *s, struct seed *m, int64_t now_ms, const char *error,
                  int64_t checked, int64_t rescued);

/* seeds_count_ok - mailboxes whose state is "ok" (the rest are "error") */
size_t seeds_count_ok(struct seeds *s);

/* seeds_list - every mailbox's status in file order into a new array
 * (seeds_status_free) */
void seeds_list(struct seeds *s, struct seed_status **out, size_t *n);
void seeds_status_free(struct seed_status *v, size_t n);

#endif
