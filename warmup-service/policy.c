/* policy.c - WARMUP_POLICY parsing and the per-provider decision
 * (policy.h). Pure; any thread. */
#include "policy.h"
#include "errbuf.h"
#include "jsonx.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const char *const state_names[POLICY_NSTATES] = {"ramping", "holding", "paused"};

const char *policy_state_name(enum policy_state s)
{
    return (unsigned)s < POLICY_NSTATES ? state_names[s] : "ramping";
}

int policy_state_parse(const char *s)
{
    for (int i = 0; s && i < POLICY_NSTATES; i++)
        if (strcmp(s, state_names[i]) == 0)
            return i;
    return -1;
}

void policy_defaults(struct policy *p)
{
    *p = (struct policy){
        .min_checked = 20,
        .hold_spam_rate = 0.05,
        .pause_spam_rate = 0.20,
        .pause_bounce_rate = 0.04,
        .pause_complaint_rate = 0.003,
        .cooldown_hours = 24,
    };
}

/* get_number - key as a JSON number in [min, max] into *out (unchanged when absent) */
static int get_number(json_object *o, const char *key, double min, double max, double *out,
                      char *err, size_t n)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v))
        return 0;
    json_type t = json_object_get_type(v);
    double d = json_object_get_double(v);
    if ((t != json_type_double && t != json_type_int) || !isfinite(d) || d < min || d > max) {
        errbuf_set(err, n, "WARMUP_POLICY: %s must be a number from %g to %g", key, min, max);
        return -1;
    }
    *out = d;
    return 0;
}

int policy_parse(const char *json, struct policy *p, char *err, size_t n)
{
    static const char *const keys[] = {"min_checked",
                                       "hold_spam_rate",
                                       "pause_spam_rate",
                                       "pause_bounce_rate",
                                       "pause_complaint_rate",
                                       "cooldown_hours",
                                       NULL};
    char why[256];
    json_object *o = NULL;
    struct policy q;
    int rc = -1;
    policy_defaults(&q);
    if (jsonx_parse_object(json, strlen(json), &o, why, sizeof why) != 0) {
        errbuf_set(err, n, "WARMUP_POLICY: %s", why);
        goto out;
    }
    if (jsonx_check_keys(o, keys, why, sizeof why) != 0) {
        errbuf_set(err, n, "WARMUP_POLICY: %s", why);
        goto out;
    }
    if (jsonx_get_int(o, "min_checked", false, 1, 1000000, &q.min_checked, NULL, why, sizeof why) !=
        0) {
        errbuf_set(err, n, "WARMUP_POLICY: %s", why);
        goto out;
    }
    if (get_number(o, "hold_spam_rate", 0, 1, &q.hold_spam_rate, err, n) != 0 ||
        get_number(o, "pause_spam_rate", 0, 1, &q.pause_spam_rate, err, n) != 0 ||
        get_number(o, "pause_bounce_rate", 0, 1, &q.pause_bounce_rate, err, n) != 0 ||
        get_number(o, "pause_complaint_rate", 0, 1, &q.pause_complaint_rate, err, n) != 0 ||
        get_number(o, "cooldown_hours", 0, 8760, &q.cooldown_hours, err, n) != 0)
        goto out;
    if (q.hold_spam_rate > q.pause_spam_rate) {
        errbuf_set(err, n, "WARMUP_POLICY: hold_spam_rate must not exceed pause_spam_rate");
        goto out;
    }
    *p = q;
    rc = 0;
out:
    json_object_put(o);
    return rc;
}

void policy_rate_format(double r, char *out, size_t n)
{
    int len = snprintf(out, n, "%.4f", r);
    if (len <= 0 || (size_t)len >= n)
        return;
    char *dot = strchr(out, '.');
    if (!dot)
        return;
    char *end = out + len;
    while (end > dot + 3 && end[-1] == '0')
        end--;
    *end = '\0';
}

/* over - the reason text "<what> rate R above <name> T (C checked)" */
static void over(char *out, size_t n, const char *what, double rate, const char *name,
                 double threshold, int64_t checked)
{
    char r[32], t[32];
    policy_rate_format(rate, r, sizeof r);
    policy_rate_format(threshold, t, sizeof t);
    snprintf(out, n, "%s rate %s above %s %s (%lld checked)", what, r, name, t, (long long)checked);
}

void policy_decide(const struct policy *p, const struct policy_current *cur,
                   const struct policy_counts *c, int64_t now_ms, struct policy_decision *out)
{
    memset(out, 0, sizeof *out);
    out->state = cur->state;
    if (c->checked > 0) {
        double k = (double)c->checked;
        out->inbox_rate = (double)c->inbox / k;
        out->spam_rate = (double)c->spam / k;
        out->bounce_rate = (double)c->bounced / k;
        out->complaint_rate = (double)c->complained / k;
    }
    if (c->checked < p->min_checked)
        return;
    out->decided = true;

    enum policy_state target = POLICY_RAMPING;
    const char *why = "recovered";
    char text[sizeof out->reason];
    if (out->spam_rate > p->pause_spam_rate) {
        why = "spam_rate";
        over(text, sizeof text, "spam", out->spam_rate, "pause_spam_rate", p->pause_spam_rate,
             c->checked);
    } else if (out->bounce_rate > p->pause_bounce_rate) {
        why = "bounce_rate";
        over(text, sizeof text, "bounce", out->bounce_rate, "pause_bounce_rate",
             p->pause_bounce_rate, c->checked);
    } else if (out->complaint_rate > p->pause_complaint_rate) {
        why = "complaint_rate";
        over(text, sizeof text, "complaint", out->complaint_rate, "pause_complaint_rate",
             p->pause_complaint_rate, c->checked);
    }
    if (strcmp(why, "recovered") != 0) { /* a pause rate exceeded */
        target = POLICY_PAUSED;
        if (now_ms < cur->grace_until_ms) {
            target = POLICY_HOLDING;
            size_t len = strlen(text);
            snprintf(text + len, sizeof text - len, "; held, not paused: operator resume");
        }
    } else if (out->spam_rate > p->hold_spam_rate) {
        target = POLICY_HOLDING;
        why = "spam_rate";
        over(text, sizeof text, "spam", out->spam_rate, "hold_spam_rate", p->hold_spam_rate,
             c->checked);
    } else {
        char s[32], b[32], m[32];
        policy_rate_format(out->spam_rate, s, sizeof s);
        policy_rate_format(out->bounce_rate, b, sizeof b);
        policy_rate_format(out->complaint_rate, m, sizeof m);
        snprintf(text, sizeof text,
                 "spam rate %s, bounce rate %s, complaint rate %s within the policy"
                 " (%lld checked)",
                 s, b, m, (long long)c->checked);
    }

    if (target == cur->state)
        return;
    if (target < cur->state) { /* de-escalation waits for the cooldown */
        double cool_ms = p->cooldown_hours * 3600.0 * 1000.0;
        if ((double)(now_ms - cur->since_ms) < cool_ms)
            return;
    }
    out->changed = true;
    out->state = target;
    out->why = why;
    out->decision = target == POLICY_PAUSED ? "pause" : target == POLICY_HOLDING ? "hold" : "ramp";
    snprintf(out->reason, sizeof out->reason, "%s", text);
}
