/* smtp_breaker.h - a circuit breaker per SMTP client: after a send could
 * not reach the server (a timeout, or a connect refused or unreachable)
 * nothing more is sent through that client until a probe finds the
 * server answering again.
 *
 * States: CLOSED (sending) -> OPEN on a failure of a send started while
 * closed; OPEN -> PROBING when the probe is due (one caller probes);
 * PROBING -> CLOSED when the probe succeeds, else OPEN again with the next
 * backoff. The backoff doubles with each opening since the server last
 * answered a send (base, 2 base, 4 base ... up to max), each delay drawn
 * in [0.8, 1.2) of that step (capped at max) so clients and restarts do
 * not probe in step. A probe that succeeds keeps the level: a server that
 * answers a probe but not a send opens again with a longer backoff; a send
 * the server answered (any reply) resets it.
 *
 * A failure reported for a send that started in an earlier closed period
 * (epoch) is ignored: it says nothing about the server after the probe.
 *
 * Threads: shared by every worker of the client, the dispatcher and the
 * HTTP threads. smtp_breaker_closed() and smtp_breaker_epoch() are one
 * atomic read each (the send path); everything else takes the breaker's
 * lock briefly and never does I/O under it. Times are monotonic ms given
 * by the caller, so the state machine is testable without clocks.
 */
#ifndef SMTP_BREAKER_H
#define SMTP_BREAKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

enum smtp_breaker_state { SMTP_BREAKER_CLOSED = 0, SMTP_BREAKER_OPEN, SMTP_BREAKER_PROBING };

struct smtp_breaker {
    pthread_mutex_t lock; /* everything below but the atomics' lock-free reads */
    atomic_int state;     /* enum smtp_breaker_state */
    atomic_uint epoch;    /* incremented each time the breaker closes */
    atomic_int level;     /* openings since the server last answered a send */
    int64_t base_ms, max_ms;
    int64_t probe_at; /* OPEN: when the next probe is due */
    uint64_t trips;   /* CLOSED -> OPEN transitions */
    unsigned seed;
    char why[256]; /* the failure that opened it (or failed the last probe) */
};

struct smtp_breaker_status {
    enum smtp_breaker_state state;
    int64_t probe_in_ms; /* OPEN: ms until the probe is due, 0 when due */
    int level;
    uint64_t trips;
    char why[256];
};

/* smtp_breaker_init - closed; first backoff base_ms (> 0), at most max_ms
 * (>= base_ms); seed for the jitter. Undo with smtp_breaker_cleanup(). */
void smtp_breaker_init(struct smtp_breaker *b, int64_t base_ms, int64_t max_ms, unsigned seed);
void smtp_breaker_cleanup(struct smtp_breaker *b);

/* smtp_breaker_closed - sends may go out (one atomic read) */
bool smtp_breaker_closed(struct smtp_breaker *b);
/* smtp_breaker_epoch - the current closed period; read before a send and
 * given back to smtp_breaker_trip() */
unsigned smtp_breaker_epoch(struct smtp_breaker *b);

/* smtp_breaker_trip - a send started in epoch could not reach the server
 * (why: the reason, for /readyz). true when this opened the breaker; false
 * when it was already open or probing, or epoch is stale. */
bool smtp_breaker_trip(struct smtp_breaker *b, unsigned epoch, int64_t now_ms, const char *why);
/* smtp_breaker_answered - the server replied to a send: the backoff starts
 * from base again at the next opening (lock-free when already reset) */
void smtp_breaker_answered(struct smtp_breaker *b);
/* smtp_breaker_probe_begin - true when the breaker was OPEN and its probe
 * is due: it is now PROBING and the caller must end the probe with
 * smtp_breaker_probe_end(); false otherwise (closed, not due, or another
 * caller probes) */
bool smtp_breaker_probe_begin(struct smtp_breaker *b, int64_t now_ms);
/* smtp_breaker_probe_end - the probe's result: ok closes the breaker (a new
 * epoch); else OPEN again with the next backoff and why as the reason.
 * abandoned (shutting down): OPEN again, due at once, same level. */
void smtp_breaker_probe_end(struct smtp_breaker *b, bool ok, bool abandoned, int64_t now_ms,
                            const char *why);
/* smtp_breaker_status - a consistent snapshot */
void smtp_breaker_status(struct smtp_breaker *b, int64_t now_ms, struct smtp_breaker_status *out);

/* smtp_breaker_backoff - the delay before the probe after opening number
 * level (1: the first): min(base * 2^(level-1), max) times [0.8, 1.2),
 * capped at max; advances *seed */
int64_t smtp_breaker_backoff(int64_t base_ms, int64_t max_ms, int level, unsigned *seed);

#endif
