/* test_policy.c - WARMUP_POLICY parsing and every state transition of the
 * per-provider decision (warmup-service/policy.c), at and around each
 * threshold */
#include "policy.h"
#include "test.h"

#include <stdio.h>
#include <string.h>

#define H (3600LL * 1000)
#define NOW (1000LL * 24 * H) /* any instant well after the epoch */

static void test_parse(void)
{
    char err[256];
    struct policy p, d;
    policy_defaults(&d);
    CHECK(d.min_checked == 20 && d.hold_spam_rate == 0.05 && d.pause_spam_rate == 0.20 &&
              d.pause_bounce_rate == 0.04 && d.pause_complaint_rate == 0.003 &&
              d.cooldown_hours == 24,
          "defaults as DESIGN 9.3");
    CHECK(policy_parse("{}", &p, err, sizeof err) == 0 && memcmp(&p, &d, sizeof p) == 0,
          "{} is the defaults");
    CHECK(policy_parse("{\"min_checked\":5,\"hold_spam_rate\":0.1,\"pause_spam_rate\":0.3,"
                       "\"pause_bounce_rate\":0,\"pause_complaint_rate\":1,\"cooldown_hours\":0.5}",
                       &p, err, sizeof err) == 0,
          "every key");
    CHECK(p.min_checked == 5 && p.hold_spam_rate == 0.1 && p.pause_spam_rate == 0.3 &&
              p.pause_bounce_rate == 0 && p.pause_complaint_rate == 1 && p.cooldown_hours == 0.5,
          "  ... read");
    CHECK(policy_parse("{\"cooldown_hours\":1}", &p, err, sizeof err) == 0 &&
              p.cooldown_hours == 1 && p.min_checked == 20,
          "an integer for a number; the others keep their defaults");

    static const struct {
        const char *json, *want;
    } bad[] = {
        {"", "WARMUP_POLICY: "},
        {"[]", "WARMUP_POLICY: "},
        {"{\"min_checked\":20,}", "WARMUP_POLICY: "},
        {"{\"max_checked\":1}", "max_checked"},
        {"{\"min_checked\":0}", "min_checked"},
        {"{\"min_checked\":2.5}", "min_checked"},
        {"{\"min_checked\":\"20\"}", "min_checked"},
        {"{\"hold_spam_rate\":-0.01}", "hold_spam_rate"},
        {"{\"pause_spam_rate\":1.01}", "pause_spam_rate"},
        {"{\"pause_bounce_rate\":\"0.1\"}", "pause_bounce_rate"},
        {"{\"pause_complaint_rate\":null}", "pause_complaint_rate"},
        {"{\"pause_complaint_rate\":true}", "pause_complaint_rate"},
        {"{\"cooldown_hours\":-1}", "cooldown_hours"},
        {"{\"cooldown_hours\":8761}", "cooldown_hours"},
        {"{\"hold_spam_rate\":0.3,\"pause_spam_rate\":0.2}", "must not exceed"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        policy_defaults(&p);
        err[0] = '\0';
        int rc = policy_parse(bad[i].json, &p, err, sizeof err);
        char name[160];
        snprintf(name, sizeof name, "refused: %s", bad[i].json);
        CHECK(rc == -1 && strncmp(err, "WARMUP_POLICY: ", 15) == 0 && strstr(err, bad[i].want) &&
                  memcmp(&p, &d, sizeof p) == 0,
              name);
        if (rc != -1 || !strstr(err, bad[i].want))
            printf("#   err '%s'\n", err);
    }
}

static void test_format(void)
{
    char b[32];
    policy_rate_format(0.2, b, sizeof b);
    CHECK_STR(b, "0.20", "two decimals at least");
    policy_rate_format(0.003, b, sizeof b);
    CHECK_STR(b, "0.003", "three when needed");
    policy_rate_format(1.0 / 3, b, sizeof b);
    CHECK_STR(b, "0.3333", "four at most");
    policy_rate_format(0, b, sizeof b);
    CHECK_STR(b, "0.00", "zero");
}

enum { R = POLICY_RAMPING, HO = POLICY_HOLDING, P = POLICY_PAUSED };

/* one decision: from state (changed since_h hours before now, the operator's
 * grace until grace_h hours after now: 0 is none) with counts -> expected */
static const struct row {
    const char *name;
    int from;
    double since_h, grace_h;
    int64_t checked, inbox, spam, bounced, complained;
    bool decided, changed;
    int to;
    const char *decision, *why, *reason;
} rows[] = {
    /* too few checked: nothing decided, whatever the rates */
    {"19 checked < min_checked: no decision", R, 100, 0, 19, 0, 19, 0, 0, false, false, R, NULL,
     NULL, NULL},
    {"0 checked: no decision", P, 100, 0, 0, 0, 0, 0, 0, false, false, P, NULL, NULL, NULL},
    /* ramping */
    {"ramping, all fine: stays", R, 0, 0, 40, 40, 0, 0, 0, true, false, R, NULL, NULL, NULL},
    {"ramping, spam = hold_spam_rate (2/40): stays", R, 0, 0, 40, 38, 2, 0, 0, true, false, R, NULL,
     NULL, NULL},
    {"ramping, spam above hold (3/40): holding at once", R, 0, 0, 40, 37, 3, 0, 0, true, true, HO,
     "hold", "spam_rate", "spam rate 0.075 above hold_spam_rate 0.05 (40 checked)"},
    {"ramping, spam = pause_spam_rate (8/40): holding", R, 0, 0, 40, 32, 8, 0, 0, true, true, HO,
     "hold", "spam_rate", "spam rate 0.20 above hold_spam_rate 0.05 (40 checked)"},
    {"ramping, spam above pause (14/40): paused at once", R, 0, 0, 40, 26, 14, 0, 0, true, true, P,
     "pause", "spam_rate", "spam rate 0.35 above pause_spam_rate 0.20 (40 checked)"},
    {"ramping, bounce = pause_bounce_rate (4/100): stays", R, 0, 0, 100, 96, 0, 4, 0, true, false,
     R, NULL, NULL, NULL},
    {"ramping, bounce above pause (5/100): paused", R, 0, 0, 100, 95, 0, 5, 0, true, true, P,
     "pause", "bounce_rate", "bounce rate 0.05 above pause_bounce_rate 0.04 (100 checked)"},
    {"ramping, complaint = pause_complaint_rate (3/1000): stays", R, 0, 0, 1000, 997, 0, 0, 3, true,
     false, R, NULL, NULL, NULL},
    {"ramping, complaint above pause (4/1000): paused", R, 0, 0, 1000, 996, 0, 0, 4, true, true, P,
     "pause", "complaint_rate",
     "complaint rate 0.004 above pause_complaint_rate 0.003 (1000 checked)"},
    {"spam and bounce above pause: the spam rate is named", R, 0, 0, 40, 20, 10, 10, 0, true, true,
     P, "pause", "spam_rate", "spam rate 0.25 above pause_spam_rate 0.20 (40 checked)"},
    /* holding */
    {"holding, spam still above hold: stays", HO, 100, 0, 40, 37, 3, 0, 0, true, false, HO, NULL,
     NULL, NULL},
    {"holding, pause rate: paused at once (no cooldown for escalation)", HO, 0, 0, 40, 26, 14, 0, 0,
     true, true, P, "pause", "spam_rate", "spam rate 0.35 above pause_spam_rate 0.20 (40 checked)"},
    {"holding, fine, 23.9 h after the change: stays (cooldown)", HO, 23.9, 0, 40, 40, 0, 0, 0, true,
     false, HO, NULL, NULL, NULL},
    {"holding, fine, 24 h after: ramping", HO, 24, 0, 40, 40, 0, 0, 0, true, true, R, "ramp",
     "recovered",
     "spam rate 0.00, bounce rate 0.00, complaint rate 0.00 within the policy (40 checked)"},
    {"holding, spam = hold, 30 h after: ramping", HO, 30, 0, 40, 38, 2, 0, 0, true, true, R, "ramp",
     "recovered", NULL},
    /* paused */
    {"paused, still above pause, 100 h after: stays", P, 100, 0, 40, 26, 14, 0, 0, true, false, P,
     NULL, NULL, NULL},
    {"paused, fine, 23.9 h after: stays (cooldown)", P, 23.9, 0, 40, 40, 0, 0, 0, true, false, P,
     NULL, NULL, NULL},
    {"paused, spam above hold only, 23.9 h after: stays", P, 23.9, 0, 40, 37, 3, 0, 0, true, false,
     P, NULL, NULL, NULL},
    {"paused, spam above hold only, 24 h after: holding", P, 24, 0, 40, 37, 3, 0, 0, true, true, HO,
     "hold", "spam_rate", "spam rate 0.075 above hold_spam_rate 0.05 (40 checked)"},
    {"paused, spam = pause rate, 24 h after: holding", P, 24, 0, 40, 32, 8, 0, 0, true, true, HO,
     "hold", "spam_rate", NULL},
    {"paused, fine, 24 h after: ramping", P, 24, 0, 40, 40, 0, 0, 0, true, true, R, "ramp",
     "recovered", NULL},
    {"paused, bounce = pause rate, 24 h after: ramping", P, 24, 0, 100, 96, 0, 4, 0, true, true, R,
     "ramp", "recovered", NULL},
    /* the operator's resume grace */
    {"grace: ramping, pause rate -> holding, not paused", R, 0, 10, 40, 26, 14, 0, 0, true, true,
     HO, "hold", "spam_rate",
     "spam rate 0.35 above pause_spam_rate 0.20 (40 checked); held, not paused: operator resume"},
    {"grace: bounce above pause -> holding", R, 0, 10, 100, 95, 0, 5, 0, true, true, HO, "hold",
     "bounce_rate", NULL},
    {"grace: holding, pause rate: stays holding", HO, 0, 10, 40, 26, 14, 0, 0, true, false, HO,
     NULL, NULL, NULL},
    {"grace ended (now = grace_until): paused", R, 0, 0, 40, 26, 14, 0, 0, true, true, P, "pause",
     "spam_rate", NULL},
    {"grace: spam above hold still holds", R, 0, 10, 40, 37, 3, 0, 0, true, true, HO, "hold",
     "spam_rate", NULL},
};

static void test_decide(void)
{
    struct policy p;
    policy_defaults(&p);
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const struct row *r = &rows[i];
        struct policy_current cur = {
            .state = (enum policy_state)r->from,
            .since_ms = NOW - (int64_t)(r->since_h * (double)H),
            .grace_until_ms = NOW + (int64_t)(r->grace_h * (double)H),
        };
        struct policy_counts c = {r->checked, r->inbox, r->spam, r->bounced, r->complained};
        struct policy_decision d;
        policy_decide(&p, &cur, &c, NOW, &d);
        bool good = d.decided == r->decided && d.changed == r->changed && (int)d.state == r->to;
        if (r->changed)
            good = good && d.decision && strcmp(d.decision, r->decision) == 0 && d.why &&
                   strcmp(d.why, r->why) == 0 && (!r->reason || strcmp(d.reason, r->reason) == 0);
        else
            good = good && !d.decision && !d.why && d.reason[0] == '\0';
        CHECK(good, r->name);
        if (!good)
            printf("#   decided %d changed %d state %s decision %s why %s reason '%s'\n", d.decided,
                   d.changed, policy_state_name(d.state), d.decision ? d.decision : "-",
                   d.why ? d.why : "-", d.reason);
    }

    /* the rates are computed even when nothing is decided */
    struct policy_current cur = {.state = POLICY_RAMPING};
    struct policy_counts c = {10, 5, 3, 1, 1};
    struct policy_decision d;
    policy_decide(&p, &cur, &c, NOW, &d);
    CHECK(!d.decided && d.inbox_rate == 0.5 && d.spam_rate == 0.3 && d.bounce_rate == 0.1 &&
              d.complaint_rate == 0.1,
          "rates = count / checked, also below min_checked");
    c = (struct policy_counts){0};
    policy_decide(&p, &cur, &c, NOW, &d);
    CHECK(d.inbox_rate == 0 && d.spam_rate == 0, "0 checked: rates 0");

    /* cooldown 0: de-escalation at once */
    p.cooldown_hours = 0;
    cur = (struct policy_current){.state = POLICY_PAUSED, .since_ms = NOW};
    c = (struct policy_counts){40, 40, 0, 0, 0};
    policy_decide(&p, &cur, &c, NOW, &d);
    CHECK(d.changed && d.state == POLICY_RAMPING, "cooldown_hours 0: paused -> ramping at once");
    /* a smaller min_checked */
    p.min_checked = 1;
    cur = (struct policy_current){.state = POLICY_RAMPING};
    c = (struct policy_counts){1, 0, 1, 0, 0};
    policy_decide(&p, &cur, &c, NOW, &d);
    CHECK(d.changed && d.state == POLICY_PAUSED, "min_checked 1: one spam copy of one pauses");
}

static void test_names(void)
{
    CHECK_STR(policy_state_name(POLICY_HOLDING), "holding", "state names");
    CHECK_INT(policy_state_parse("paused"), POLICY_PAUSED, "parse paused");
    CHECK_INT(policy_state_parse("warm"), -1, "warm is not a provider state");
    CHECK_INT(policy_state_parse(NULL), -1, "NULL");
}

int main(void)
{
    test_parse();
    test_format();
    test_decide();
    test_names();
    return test_done();
}
