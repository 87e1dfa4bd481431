/* ratelimit.h - thread-safe token bucket (rate in tokens per minute).
 *
 * One bucket per SmtpClient and per email (/rate-limit). The caller passes
 * the time (time_mono_ms() in the services, a simulated clock in tests), so
 * the bucket itself never reads a clock. The capacity is kept small,
 * max(1, tokens per second / 10), i.e. at most 0.1 s of burst, so that the
 * long-run rate is accurate: over 60 s at most capacity + 1 more than
 * per_minute tokens are granted (0.33 % at 600 tpm, less above). Above the
 * capacity the bucket keeps the fraction of the next token, so a caller
 * that comes back late loses no rate (one take still never gets more than
 * the capacity). The bucket starts full. A clock that goes backwards
 * (threads passing slightly older readings) adds nothing and never
 * over-grants.
 * All functions may be called from any thread at the same time.
 */
#ifndef RATELIMIT_H
#define RATELIMIT_H

#include <stdint.h>

struct ratelimit;

/* ratelimit_new - a bucket of per_minute tokens per minute (<= 0, NaN or
 * infinite: unlimited); caller frees with ratelimit_free() */
struct ratelimit *ratelimit_new(double per_minute);
/* ratelimit_free - free the bucket; NULL is a no-op */
void ratelimit_free(struct ratelimit *rl);
/* ratelimit_set - change the rate at once; accrued tokens are kept up to the
 * new capacity. A delay returned earlier by ratelimit_take() was computed at
 * the old rate: a caller sleeping on it should re-take after at most that. */
void ratelimit_set(struct ratelimit *rl, double per_minute);
/* ratelimit_get - the current rate in tokens per minute (0: unlimited) */
double ratelimit_get(const struct ratelimit *rl);
/* ratelimit_take - grant up to n tokens at now_ms (monotonic milliseconds);
 * *granted (may be NULL) receives how many were granted (n when unlimited,
 * 0 when n <= 0). Returns 0 when all n were granted, else the milliseconds
 * (>= 1) until the next token accrues. */
int64_t ratelimit_take(struct ratelimit *rl, int n, int64_t now_ms, int *granted);
/* ratelimit_refund - give back n tokens granted by ratelimit_take() but not
 * used (e.g. a second bucket or the queue refused them); the bucket never
 * holds more than its capacity. No-op for n <= 0 or when unlimited. */
void ratelimit_refund(struct ratelimit *rl, int n);

#endif
