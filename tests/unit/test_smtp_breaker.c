/* test_smtp_breaker.c - the SMTP circuit breaker's state machine
 * (warmup-service/smtp/smtp_breaker.c): a scripted table of events with
 * the state, level, trips and probe delay expected after each, the
 * backoff's growth, cap and jitter bounds, and one prober among racing
 * workers. */
#include "smtp_breaker.h"
#include "test.h"

#include <pthread.h>

enum op { TRIP, ANSWERED, PROBE_BEGIN, PROBE_OK, PROBE_FAIL, PROBE_ABANDON };

struct step {
    const char *name;
    enum op op;
    int64_t now;
    unsigned epoch; /* TRIP: the epoch the send started in */
    int ret;        /* TRIP, PROBE_BEGIN: expected return; -1 none */
    enum smtp_breaker_state state;
    int level;
    int trips;
    int64_t probe_lo, probe_hi; /* OPEN: the probe is due in [lo, hi] ms */
};

/* base 1000, max 4000: steps 1000, 2000, 4000, 4000; each drawn in
 * [0.8, 1.2) of its step, capped at 4000 */
static const struct step script[] = {
    {"closed: no probe", PROBE_BEGIN, 0, 0, 0, SMTP_BREAKER_CLOSED, 0, 0, 0, 0},
    {"a timeout opens it", TRIP, 0, 0, 1, SMTP_BREAKER_OPEN, 1, 1, 800, 1199},
    {"a second failure while open: no new trip", TRIP, 10, 0, 0, SMTP_BREAKER_OPEN, 1, 1, 790,
     1189},
    {"a reply while open does not close it", ANSWERED, 20, 0, -1, SMTP_BREAKER_OPEN, 1, 1, 780,
     1179},
    {"probe not due yet", PROBE_BEGIN, 500, 0, 0, SMTP_BREAKER_OPEN, 1, 1, 300, 699},
    {"probe due: this caller probes", PROBE_BEGIN, 1200, 0, 1, SMTP_BREAKER_PROBING, 1, 1, 0, 0},
    {"only one prober", PROBE_BEGIN, 1200, 0, 0, SMTP_BREAKER_PROBING, 1, 1, 0, 0},
    {"a late failure while probing is ignored", TRIP, 1300, 0, 0, SMTP_BREAKER_PROBING, 1, 1, 0, 0},
    {"probe fails: open again, backoff doubled", PROBE_FAIL, 1300, 0, -1, SMTP_BREAKER_OPEN, 2, 1,
     1600, 2399},
    {"second probe due", PROBE_BEGIN, 3700, 0, 1, SMTP_BREAKER_PROBING, 2, 1, 0, 0},
    {"probe abandoned (shutdown): open, due at once, same level", PROBE_ABANDON, 3800, 0, -1,
     SMTP_BREAKER_OPEN, 2, 1, 0, 0},
    {"the abandoned probe is due again", PROBE_BEGIN, 3800, 0, 1, SMTP_BREAKER_PROBING, 2, 1, 0, 0},
    {"probe ok: closed (epoch 1), level kept", PROBE_OK, 3900, 0, -1, SMTP_BREAKER_CLOSED, 2, 1, 0,
     0},
    {"a failure of a send from before the close is stale", TRIP, 4000, 0, 0, SMTP_BREAKER_CLOSED, 2,
     1, 0, 0},
    {"no reply since: the next opening backs off longer", TRIP, 4000, 1, 1, SMTP_BREAKER_OPEN, 3, 2,
     3200, 4000},
    {"third probe due", PROBE_BEGIN, 8000, 0, 1, SMTP_BREAKER_PROBING, 3, 2, 0, 0},
    {"probe fails: capped at max", PROBE_FAIL, 8000, 0, -1, SMTP_BREAKER_OPEN, 4, 2, 3200, 4000},
    {"fourth probe due", PROBE_BEGIN, 12000, 0, 1, SMTP_BREAKER_PROBING, 4, 2, 0, 0},
    {"probe ok: closed (epoch 2)", PROBE_OK, 12000, 0, -1, SMTP_BREAKER_CLOSED, 4, 2, 0, 0},
    {"a server reply resets the backoff", ANSWERED, 12100, 0, -1, SMTP_BREAKER_CLOSED, 0, 2, 0, 0},
    {"a refused connect opens it from the first step", TRIP, 12200, 2, 1, SMTP_BREAKER_OPEN, 1, 3,
     800, 1199},
};

static void run_script(unsigned seed)
{
    struct smtp_breaker b;
    smtp_breaker_init(&b, 1000, 4000, seed);
    char name[160];
    for (size_t i = 0; i < sizeof script / sizeof script[0]; i++) {
        const struct step *s = &script[i];
        int ret = -1;
        switch (s->op) {
        case TRIP:
            ret = smtp_breaker_trip(&b, s->epoch, s->now, "timed out after 2000 ms");
            break;
        case ANSWERED:
            smtp_breaker_answered(&b);
            break;
        case PROBE_BEGIN:
            ret = smtp_breaker_probe_begin(&b, s->now);
            break;
        case PROBE_OK:
        case PROBE_FAIL:
        case PROBE_ABANDON:
            smtp_breaker_probe_end(&b, s->op == PROBE_OK, s->op == PROBE_ABANDON, s->now,
                                   "probe: timed out");
            break;
        }
        struct smtp_breaker_status st;
        smtp_breaker_status(&b, s->now, &st);
        bool ok = (s->ret < 0 || ret == s->ret) && st.state == s->state && st.level == s->level &&
                  (int)st.trips == s->trips &&
                  (s->state != SMTP_BREAKER_OPEN ||
                   (st.probe_in_ms >= s->probe_lo && st.probe_in_ms <= s->probe_hi)) &&
                  smtp_breaker_closed(&b) == (s->state == SMTP_BREAKER_CLOSED);
        snprintf(name, sizeof name, "seed %u: %s", seed, s->name);
        CHECK(ok, name);
        if (!ok)
            printf("#   ret %d state %d level %d trips %d probe_in %lld\n", ret, (int)st.state,
                   st.level, (int)st.trips, (long long)st.probe_in_ms);
    }
    struct smtp_breaker_status st;
    smtp_breaker_status(&b, 0, &st);
    CHECK_STR(st.why, "timed out after 2000 ms", "the reason is the failure that opened it");
    smtp_breaker_cleanup(&b);
}

/* backoff: the step doubles up to max, each delay within [0.8, 1.2) of
 * its step and never above max, so delays grow until the cap */
static void backoff_bounds(void)
{
    static const struct {
        int level;
        int64_t lo, hi;
    } rows[] = {{1, 80, 120},   {2, 160, 240},  {3, 320, 480},  {4, 640, 960},
                {5, 800, 1000}, {9, 800, 1000}, {62, 800, 1000}};
    unsigned seed = 7;
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        bool in = true;
        for (int k = 0; k < 2000; k++) {
            int64_t d = smtp_breaker_backoff(100, 1000, rows[r].level, &seed);
            in &= d >= rows[r].lo && d <= rows[r].hi;
        }
        char name[96];
        snprintf(name, sizeof name, "backoff at level %d within [%lld, %lld]", rows[r].level,
                 (long long)rows[r].lo, (long long)rows[r].hi);
        CHECK(in, name);
    }
    bool grows = true, varies = false;
    int64_t first = smtp_breaker_backoff(100, 1000, 2, &seed);
    for (int k = 0; k < 1000; k++) {
        int64_t a = smtp_breaker_backoff(100, 100000, 3, &seed);
        int64_t b = smtp_breaker_backoff(100, 100000, 4, &seed);
        grows &= b > a;
        varies |= smtp_breaker_backoff(100, 1000, 2, &seed) != first;
    }
    CHECK(grows, "each step's delay is longer than the previous step's (jitter < 1/3)");
    CHECK(varies, "the delays are jittered");
}

struct race {
    struct smtp_breaker *b;
    pthread_barrier_t *go;
    int won;
};

static void *racer(void *arg)
{
    struct race *r = arg;
    pthread_barrier_wait(r->go);
    for (int i = 0; i < 1000; i++)
        r->won += smtp_breaker_probe_begin(r->b, 1000000);
    return NULL;
}

/* eight workers see the probe due at once: exactly one probes */
static void one_prober(void)
{
    struct smtp_breaker b;
    smtp_breaker_init(&b, 10, 10, 1);
    CHECK(smtp_breaker_trip(&b, smtp_breaker_epoch(&b), 0, "refused"), "opened");
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, 8);
    pthread_t t[8];
    struct race r[8];
    for (int i = 0; i < 8; i++) {
        r[i] = (struct race){.b = &b, .go = &go};
        pthread_create(&t[i], NULL, racer, &r[i]);
    }
    int won = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        won += r[i].won;
    }
    CHECK_INT(won, 1, "one prober among eight racing workers");
    pthread_barrier_destroy(&go);
    smtp_breaker_cleanup(&b);
}

int main(void)
{
    run_script(1);
    run_script(12345);
    run_script(0xdeadbeefu);
    backoff_bounds();
    one_prober();
    return test_done();
}
