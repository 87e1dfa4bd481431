/* identity_clock.h - the clock of everything about sending identities:
 * their local days, windows, quotas and policy cooldowns. It is the wall
 * clock plus WARMUP_CLOCK_OFFSET (0 in production), so tests can move an
 * identity's day without waiting for it. Set once at start-up (before any
 * thread reads it); any thread may read it. */
#ifndef IDENTITY_CLOCK_H
#define IDENTITY_CLOCK_H

#include <stdint.h>

/* ident_clock_set - the offset in milliseconds added to the wall clock */
void ident_clock_set(int64_t offset_ms);
/* ident_now_ms - wall milliseconds since the epoch plus the offset */
int64_t ident_now_ms(void);
/* ident_clock_offset_ms - the offset set */
int64_t ident_clock_offset_ms(void);

#endif
