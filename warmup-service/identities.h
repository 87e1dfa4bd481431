/* identities.h - sending identities beyond their rows (DESIGN 9.3): today's
 * local day, quota and state of an identity, the warmup_identity_state
 * gauge, the policy decisions (log line and warmup_policy_decisions_total)
 * and the operator's pause and resume, each followed by a notice to the
 * sender.
 *
 * An identity's state: "paused" when the operator paused it; else
 * "holding" when a provider holds or pauses it (the reason names each);
 * else "warm" without a ramp or once today's quota reached max_per_day;
 * else "ramping". Days are local dates in the window's zone on the
 * identity clock (identity_clock.h).
 *
 * The gauge has one series per identity and state, created when the
 * identity is first seen (start-up, create) and computed at scrape time
 * from a cached copy of what the state depends on, so a day that brings
 * an identity to its max_per_day turns it "warm" without any event.
 *
 * Threads: any (the HTTP pool, the feedback consumer's writer, the
 * scraper); a mutex guards the cache. Time zones are loaded once per name
 * and kept until identities_free. */
#ifndef IDENTITIES_H
#define IDENTITIES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;
struct metrics;
struct policy;
struct identity;
struct tz;

enum identity_state { IDENTITY_RAMPING = 0, IDENTITY_HOLDING, IDENTITY_PAUSED, IDENTITY_WARM };
#define IDENTITY_NSTATES 4
/* identity_state_name - "ramping", "holding", "paused", "warm" */
const char *identity_state_name(enum identity_state s);

/* today's view of an identity */
struct identity_today {
    int64_t day;    /* local date, days since 1970-01-01 */
    bool has_quota; /* a ramp: quota is today's */
    int64_t quota;  /* 0 before the ramp's start_date */
    enum identity_state state;
    char reason[512]; /* "" when none */
};
/* identity_today - x's day, quota and state at now_ms; tz is x's zone
 * (NULL: UTC). Pure. */
void identity_today(const struct identity *x, const struct tz *tz, int64_t now_ms,
                    struct identity_today *t);

struct identities_config {
    struct store *store;
    struct metrics *metrics;
    const struct policy *policy; /* WARMUP_POLICY (the operator resume's grace) */
    /* called after any change of an identity (create, pause, resume, a
     * policy decision) with its id, from the changing thread; may be NULL */
    void (*changed)(void *arg, int64_t identity_id);
    void *changed_arg;
};

struct identities;

/* identities_new - read every identity into the gauge's cache; NULL with
 * the reason in err. Every pointer of cfg must outlive identities_free. */
struct identities *identities_new(const struct identities_config *cfg, char *err, size_t n);
/* identities_free - after the HTTP server (the scraper) and the consumer
 * stopped; NULL no-op */
void identities_free(struct identities *ids);

/* identities_tz - the zone named name, loaded once (UTC when it cannot be
 * loaded any more: logged); borrowed until identities_free */
const struct tz *identities_tz(struct identities *ids, const char *name);

/* identities_changed - x (as stored now) was created or changed: refresh
 * its gauge and tell the sender */
void identities_changed(struct identities *ids, const struct identity *x);

/* identities_decision - one decision, once committed: the log line
 * "identity=A provider=P <state>: <reason> (decision=D)" and
 * warmup_policy_decisions_total{identity,provider,decision,reason=why} */
void identities_decision(struct identities *ids, const char *address, const char *provider,
                         const char *decision, const char *why, const char *state,
                         const char *reason);

/* identities_pause - the operator pause (reason NULL: "paused by operator"),
 * logged and counted (decision pause, reason operator, provider "all").
 * 0, 1 unknown id, -1 store error. */
int identities_pause(struct identities *ids, int64_t id, const char *reason);
/* identities_resume - the operator resume: the pause cleared and every
 * provider "paused" back to "ramping" with reason "resumed by operator"
 * and no automatic pause for cooldown_hours; each logged and counted
 * (decision resume, reason operator). 0, 1 unknown id, -1 store error. */
int identities_resume(struct identities *ids, int64_t id);

#endif
