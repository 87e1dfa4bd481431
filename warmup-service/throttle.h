/* throttle.h - provider throttles at run time (THROTTLES_FILE, DESIGN 9.3):
 * per provider group a per-minute and a per-hour token bucket and a count
 * of its copies in flight against its `connections`, shared by every
 * email and identity. A provider's limits hold back only its own copies:
 * the dispatcher claims them by lane (store_claim's scope).
 *
 * In flight: a copy granted here until throttle_done (its outcome, sent
 * or not) or throttle_refund (never claimed). The relay in between sees
 * at most `connections` of the provider's messages at once.
 * Any thread; the providers outlive the throttle.
 */
#ifndef THROTTLE_H
#define THROTTLE_H

#include <stdbool.h>
#include <stdint.h>

struct providers;
struct metrics;
struct throttle;

/* throttle_new - one runtime per group of p (p may be NULL: none) */
struct throttle *throttle_new(const struct providers *p, struct metrics *m);
void throttle_free(struct throttle *t);
/* throttle_set_share - n instances share each group's rates: this one
 * takes 1/n of them (the connections limit stays per instance) */
void throttle_set_share(struct throttle *t, int n);
/* throttle_limited - group g has a limit (g < 0: no group: false) */
bool throttle_limited(const struct throttle *t, int g);
/* throttle_take - grant up to want of group g's copies at now_ms
 * (monotonic); when fewer were granted, *wait_ms is lowered to when the
 * next may go (a bucket's next token; 1000 when its connections are all
 * busy). Returns the grant (want for an unlimited group). */
int throttle_take(struct throttle *t, int g, int want, int64_t now_ms, int64_t *wait_ms);
/* throttle_refund - n granted copies not claimed after all */
void throttle_refund(struct throttle *t, int g, int n);
/* throttle_done - one granted copy finished (its outcome is known) */
void throttle_done(struct throttle *t, int g);

#endif
