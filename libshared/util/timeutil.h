/* timeutil.h - clocks, RFC 3339 and RFC 5322 formatting and monotonic condvar waits.
 * Pure functions, any thread. */
#ifndef TIMEUTIL_H
#define TIMEUTIL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* time_now_ms - wall clock, milliseconds since the epoch */
int64_t time_now_ms(void);
/* time_mono_ms - monotonic clock in milliseconds, for timeouts and rates */
int64_t time_mono_ms(void);
/* time_rfc3339_ms - "2026-11-23T10:37:32.123Z" into out (>= 25 bytes) */
void time_rfc3339_ms(int64_t ms, char *out, size_t len);
/* time_rfc3339 - "2026-11-23T10:37:32Z" (seconds) into out (>= 21 bytes) */
void time_rfc3339(int64_t ms, char *out, size_t len);
/* time_rfc5322 - "Mon, 23 Nov 2026 10:37:32 +0000" (RFC 5322 date-time,
 * UTC) into out; 0, or -1 when the year is outside 1900..9999 or out is
 * too small for the date and its NUL */
int time_rfc5322(int64_t ms, char *out, size_t len);
/* time_parse_rfc3339 - an RFC 3339 date-time ("2026-12-05T10:00:00Z",
 * fraction optional, "Z" or an offset "+01:00"; a space for the '+' a
 * form-decoded query leaves) or a date ("2026-12-05": 00:00 UTC) in years
 * 1970-9999, as ms since the epoch; 0 or -1 */
int time_parse_rfc3339(const char *s, int64_t *ms);
/* time_sleep_ms - sleep, restarting on EINTR */
void time_sleep_ms(int64_t ms);
/* time_cond_init_mono - init cv so that pthread_cond_timedwait() takes
 * CLOCK_MONOTONIC deadlines (see time_mono_deadline) */
void time_cond_init_mono(pthread_cond_t *cv);
/* time_mono_deadline - CLOCK_MONOTONIC now + ms (ms >= 0), for
 * pthread_cond_timedwait() on a time_cond_init_mono() condvar */
struct timespec time_mono_deadline(int64_t ms);

#endif
