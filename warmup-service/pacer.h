/* pacer.h - sending identities at run time (DESIGN 9.3), for the
 * dispatcher. An email whose From is an identity's address sends within
 * that identity's daily quota (ramp.h), spread with jitter over its window
 * in its time zone, and never to a provider the identity is paused for or
 * holding at its cap; copies beyond today's quota wait for the next
 * window. An email without an identity is not limited here.
 *
 * The day's count lives in the store (identity_days, charged by the claim
 * itself), so a restart or a DST change keeps it; the pacer reads it back
 * when it (re)loads an identity, and after a restart spreads what is left
 * of the quota over what is left of the window.
 *
 * A holding provider's copies per day are capped at the most it received
 * on one day of the last 7, today included (at least 1): its volume stops
 * growing (a hold on the first day ends that day's sending to it) while
 * other providers keep growing with the ramp. One grant may overshoot the
 * cap by the grant's size less one (grants are one copy per pacing slot).
 *
 * Threads: the dispatcher thread calls everything except pacer_changed,
 * which any thread may call (an identity was created or changed).
 */
#ifndef PACER_H
#define PACER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;
struct providers;
struct pacer;

/* what an email may send now */
struct pace {
    int64_t identity_id; /* 0: no identity (no limits below) */
    int64_t day;         /* the identity's local day: charged by the claim */
    int allow;           /* copies that may be claimed now (<= want) */
    /* providers not to send to now (paused, or holding at the cap); the
     * names are borrowed until the next pacer call */
    const char *const *blocked;
    size_t nblocked;
};

/* pacer_new - providers (may be NULL) name the providers of domains */
struct pacer *pacer_new(struct store *st, const struct providers *prov);
void pacer_free(struct pacer *p);
/* pacer_changed - reload the identity at its next use (0: every identity,
 * and forget which From addresses have none). Any thread. */
void pacer_changed(struct pacer *p, int64_t identity_id);
/* pacer_plan - for an email from `from` wanting up to `want` copies: *out
 * filled; when out->allow < want because of the identity, *wait_ms is
 * lowered to when it may send again and why says why; when providers are
 * blocked, why names them (the reason if the claim leaves copies waiting);
 * else why is "". */
void pacer_plan(struct pacer *p, const char *from, int want, struct pace *out, int64_t *wait_ms,
                char *why, size_t whylen);
/* pacer_claimed - n copies were claimed under pc, provider[i] naming
 * each one's provider: counted, and the next pacing slot set */
void pacer_claimed(struct pacer *p, const struct pace *pc, const char *const *provider, size_t n);

#endif
