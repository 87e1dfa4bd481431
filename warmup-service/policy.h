/* policy.h - WARMUP_POLICY (DESIGN 9.3): the placement thresholds that
 * move an identity's state for one recipient provider, and the pure
 * decision from a placement.summary's counts.
 *
 * States per provider: "ramping" (the quota grows), "holding" (growth
 * stops: spam above hold_spam_rate), "paused" (nothing sent: a pause rate
 * exceeded). Rates are count / checked; a summary with fewer than
 * min_checked copies checked decides nothing. A rate equal to its
 * threshold is not above it. Escalation is immediate; de-escalation
 * (paused -> holding or ramping, holding -> ramping) waits cooldown_hours
 * after the last change. After an operator resume (grace_until_ms) a pause
 * rate holds instead of pausing.
 *
 * Pure: no clock, no I/O; any thread. */
#ifndef POLICY_H
#define POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct policy {
    int64_t min_checked;
    double hold_spam_rate;
    double pause_spam_rate;
    double pause_bounce_rate;
    double pause_complaint_rate;
    double cooldown_hours;
};

/* policy_defaults - DESIGN's defaults: 20, 0.05, 0.20, 0.04, 0.003, 24 */
void policy_defaults(struct policy *p);
/* policy_parse - WARMUP_POLICY's JSON object over the defaults (absent keys
 * keep theirs). -1 with a message naming WARMUP_POLICY on an unknown key,
 * a wrong type or a value out of range (rates 0..1, hold_spam_rate at most
 * pause_spam_rate, min_checked 1..1000000, cooldown_hours 0..8760). */
int policy_parse(const char *json, struct policy *p, char *err, size_t n);

/* a placement.summary's counts over its window */
struct policy_counts {
    int64_t checked, inbox, spam, bounced, complained;
};

enum policy_state { POLICY_RAMPING = 0, POLICY_HOLDING, POLICY_PAUSED, POLICY_NSTATES };
/* policy_state_name - "ramping", "holding", "paused" */
const char *policy_state_name(enum policy_state s);
/* policy_state_parse - the state named s; -1 when unknown */
int policy_state_parse(const char *s);

/* a provider's current state */
struct policy_current {
    enum policy_state state;
    int64_t since_ms;       /* when it last changed (identity clock) */
    int64_t grace_until_ms; /* operator resume: no pause before this; 0 none */
};

/* the decision on one summary */
struct policy_decision {
    bool decided; /* checked >= min_checked: the thresholds were compared */
    bool changed; /* state differs from the current one */
    enum policy_state state;
    const char *decision; /* "pause", "hold", "ramp"; NULL when !changed */
    const char *why;      /* the metric's reason label: "spam_rate", "bounce_rate",
                             "complaint_rate", "recovered"; NULL when !changed */
    char reason[192];     /* "spam rate 0.35 above pause_spam_rate 0.20 (40 checked)";
                             "" when !changed */
    double inbox_rate, spam_rate, bounce_rate, complaint_rate; /* 0 when checked is 0 */
};

/* policy_decide - the new state for cur given the summary c at now_ms */
void policy_decide(const struct policy *p, const struct policy_current *cur,
                   const struct policy_counts *c, int64_t now_ms, struct policy_decision *out);

/* policy_rate_format - a rate with at least two and at most four decimals
 * ("0.20", "0.003") into out */
void policy_rate_format(double r, char *out, size_t n);

#endif
