/* placement_calc.h - placement by sending identity and recipient provider,
 * from the store's per (identity, domain) counts (hstore_placement_counts)
 * and time-to-inbox rows (hstore_inbox_delays): the pairs of the
 * placement.summary events and what changed since the last ones published
 * (placement.c), and each provider's figures of GET /providers
 * (api_providers.c). Pure: no I/O, any thread; every array returned is the
 * caller's (the _free functions), inputs are borrowed. */
#ifndef PLACEMENT_CALC_H
#define PLACEMENT_CALC_H

#include "hstore.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct providers;

/* what the copies of a pair or a provider say (see hstore_placement_row:
 * checked = inbox + spam + bounced + complained) */
struct placement_counts {
    int64_t copies, checked, inbox, spam, bounced, complained;
};

/* one sending identity's copies to one provider (identity NULL: a
 * provider's copies from every identity and none) */
struct placement_pair {
    char *identity, *provider; /* owned */
    struct placement_counts n;
    bool gone;  /* a change: no copy of the pair is in the window any more */
    bool quiet; /* a gone change whose last summary was all zeros: forgotten, not published */
};

/* the time-to-inbox histogram's upper bounds (seconds), the same for GET
 * /providers and health_time_to_inbox_seconds; a last bucket +Inf follows */
#define PLACEMENT_NBUCKETS 11
extern const double placement_buckets[PLACEMENT_NBUCKETS];

/* placement_group - rows summed per (identity, provider): by_identity,
 * the rows with an identity only; else every row, per provider alone
 * (identity NULL). Sorted by identity then provider; *out new. A domain's
 * provider is providers_name(p, domain). */
void placement_group(const struct hstore_placement_row *rows, size_t n, const struct providers *p,
                     bool by_identity, struct placement_pair **out, size_t *nout);
/* placement_diff - what to publish: each pair of cur (sorted) whose
 * summary counts (checked, inbox, spam, bounced, complained) differ from
 * last's (sorted) or that last lacks, and each pair of last that cur lacks
 * (gone, counts 0; quiet when last's were 0 too), sorted; *out new */
void placement_diff(const struct placement_pair *last, size_t nlast,
                    const struct placement_pair *cur, size_t ncur, struct placement_pair **out,
                    size_t *nout);
/* placement_commit - change c was published: *last (sorted) takes it (a
 * gone pair leaves) */
void placement_commit(struct placement_pair **last, size_t *nlast, const struct placement_pair *c);
void placement_pairs_free(struct placement_pair *v, size_t n);

/* a provider's GET /providers figures */
struct provider_report {
    char *provider; /* owned */
    struct placement_counts n;
    int64_t found;                              /* copies in the histogram */
    int64_t p50, p90, p99;                      /* seconds; only when found > 0 */
    int64_t cumulative[PLACEMENT_NBUCKETS + 1]; /* copies at most placement_buckets[i] seconds;
                                                 * the last: every one (+Inf) */
};

/* placement_report - per provider (sorted by name) of the rows, with the
 * time to inbox of delays (ordered by domain, then delay): nearest-rank
 * percentiles (the smallest delay that at least p% of the copies do not
 * exceed) and the cumulative histogram; *out new (provider_reports_free) */
void placement_report(const struct hstore_placement_row *rows, size_t n,
                      const struct hstore_delay_row *delays, size_t nd, const struct providers *p,
                      struct provider_report **out, size_t *nout);
void provider_reports_free(struct provider_report *v, size_t n);

#endif
