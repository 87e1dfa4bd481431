/* hstore_delta.h - what a write changes in a store's counters, the same
 * for every backend: an email's or a domain's counters (struct
 * hstore_delta), a copy's placement after a round, and the /analytics
 * counts of one transaction summed in memory per (series, hour) before
 * they are written (struct han_batch). Pure logic, no storage: the
 * backends (hstore_sqlite*.c, hstore_pg*.c) write the sums. Not thread
 * safe: one per transaction. */
#ifndef HSTORE_DELTA_H
#define HSTORE_DELTA_H

#include "hstore.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* what a write adds to an email's or a domain's counters */
struct hstore_delta {
    int tracked, delivered, spam, opened, read, bounced, unchecked, rescued;
};

/* hstore_placement_after - what copy x's row says after its round: a
 * rescued copy stays in spam */
enum fl_placement hstore_placement_after(const struct hstore_copy *x);

/* hstore_check_outcome - what a round's result for x stores: its
 * placement, opened, read and rescued after the round; false when the
 * round left it as it was (FL_UNKNOWN and not rescued: keep what was
 * known). An unchecked copy keeps opened and read. */
bool hstore_check_outcome(const struct hstore_copy *x, enum fl_placement *p, bool *opened,
                          bool *read, bool *rescued);

/* hstore_delta_check - x's change to its email's counters into d */
void hstore_delta_check(struct hstore_delta *d, const struct hstore_copy *x, enum fl_placement p,
                        bool opened, bool read, bool rescued);

/* one series' counts in one hour, as a write changes them */
struct han_cell {
    int64_t series, hour;
    int64_t n[HAN_N];
};

/* han_batch - what one transaction adds to the counts, in memory: one
 * cell per (series, hour) it touches, so a batch of thousands of copies
 * costs one upsert per cell; entered: what entered each count (the
 * metrics' increments, hstore_counted) */
struct han_batch {
    struct han_cell *v;
    size_t n, cap;
    uint32_t *slot; /* index + 1 into v, 0 = empty; mask + 1 slots */
    size_t mask;
    int64_t entered[HAN_N];
};

void han_init(struct han_batch *b);
void han_cleanup(struct han_batch *b);
/* han_add - delta to count q of series in sent_at_ms's hour (series 0:
 * a copy without one, ignored); a positive delta also enters q */
void han_add(struct han_batch *b, int64_t series, int64_t sent_at_ms, enum hstore_an q, int delta);
/* han_add_check - x's change by its round (placement p, opened, read) */
void han_add_check(struct han_batch *b, const struct hstore_copy *x, enum fl_placement p,
                   bool opened, bool read);

#endif
