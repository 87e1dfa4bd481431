/* test_ratelimit.c - token bucket: long-run rates on a simulated clock,
 * run-time changes, refunds, unlimited, burst cap, and threads that must
 * never be granted more than the rate allows. */
#include "ratelimit.h"
#include "test.h"
#include "timeutil.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>

/* simulate - take n at a time for duration_ms of simulated time starting at
 * *now; poll_ms 0 sleeps exactly the returned delay, else polls every
 * poll_ms. Returns the tokens granted; *now ends at or after the end. */
static long simulate(struct ratelimit *rl, int n, int64_t *now, int64_t duration_ms, int poll_ms)
{
    int64_t end = *now + duration_ms;
    long total = 0;
    while (*now < end) {
        int g = -1;
        int64_t wait = ratelimit_take(rl, n, *now, &g);
        total += g;
        if (wait > 0)
            *now += poll_ms ? poll_ms : wait;
        else if (g != n)
            return -1; /* a 0 delay must mean all n were granted */
    }
    return total;
}

static int within(long got, double want, double rel)
{
    return fabs((double)got - want) <= want * rel;
}

static void test_rates(void)
{
    static const struct {
        const char *name;
        double tpm;
        int n;
        int poll_ms;
    } rows[] = {
        {"600 tpm, one at a time, sleeping the returned delay", 600, 1, 0},
        {"60000 tpm, one at a time, sleeping the returned delay", 60000, 1, 0},
        {"600 tpm, batches of 7", 600, 7, 0},
        {"60000 tpm, batches of 50", 60000, 50, 0},
        {"60000 tpm, polling every 3 ms", 60000, 1, 3},
        {"700 tpm, polling every 1 ms (fractional tokens carry over)", 700, 1, 1},
        {"6100 tpm, polling every 7 ms", 6100, 5, 7},
        {"90 tpm, sleeping the returned delay", 90, 1, 0},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct ratelimit *rl = ratelimit_new(rows[i].tpm);
        int64_t now = 1000000;
        long got = simulate(rl, rows[i].n, &now, 60000, rows[i].poll_ms);
        CHECK(within(got, rows[i].tpm, 0.005), rows[i].name);
        if (!within(got, rows[i].tpm, 0.005))
            printf("#   granted %ld in 60 s, want %.0f +- 0.5%%\n", got, rows[i].tpm);
        ratelimit_free(rl);
    }
}

static void test_delays(void)
{
    struct ratelimit *rl = ratelimit_new(600);
    int g = -1;
    CHECK_INT(ratelimit_take(rl, 1, 5000, &g), 0, "a new bucket grants at once");
    CHECK_INT(g, 1, "one granted");
    CHECK_INT(ratelimit_take(rl, 1, 5000, &g), 100, "600 tpm: next token in 100 ms");
    CHECK_INT(g, 0, "none granted while empty");
    CHECK_INT(ratelimit_take(rl, 1, 5040, &g), 60, "40 ms later: 60 ms to go");
    CHECK_INT(ratelimit_take(rl, 1, 5100, &g), 0, "granted when due");
    CHECK_INT(ratelimit_take(rl, 0, 5100, &g), 0, "n = 0 returns 0");
    CHECK_INT(g, 0, "n = 0 grants nothing");
    CHECK_INT(ratelimit_take(rl, -3, 5100, NULL), 0, "negative n, NULL granted");
    /* a clock reading older than the last one adds nothing */
    CHECK(ratelimit_take(rl, 1, 4000, &g) > 0 && g == 0, "clock going back grants nothing");
    CHECK(ratelimit_take(rl, 1, 5150, &g) > 0 && g == 0, "nor does it shift the refill time");
    CHECK_INT(ratelimit_take(rl, 1, 5200, &g), 0, "next token at the original time");
    ratelimit_free(rl);
    ratelimit_free(NULL);
    CHECK(1, "ratelimit_free(NULL) is a no-op");
}

static void test_set(void)
{
    struct ratelimit *rl = ratelimit_new(600);
    int64_t now = 0;
    long a = simulate(rl, 1, &now, 30000, 0);
    ratelimit_set(rl, 6000);
    CHECK(ratelimit_get(rl) == 6000, "get returns the new rate");
    long b = simulate(rl, 1, &now, 30000, 0);
    CHECK(within(a, 300, 0.01), "first 30 s at 600 tpm: 300");
    CHECK(within(b, 3000, 0.01), "next 30 s at 6000 tpm: 3000");
    if (!within(b, 3000, 0.01))
        printf("#   got %ld\n", b);
    ratelimit_set(rl, 60);
    long c = simulate(rl, 1, &now, 60000, 0);
    CHECK(within(c, 60, 0.02), "slowed down to 60 tpm at once");
    ratelimit_free(rl);

    /* accrued tokens are kept up to the new capacity */
    rl = ratelimit_new(60000); /* capacity 100, starts full */
    int g = 0;
    ratelimit_take(rl, 50, 0, &g);
    CHECK_INT(g, 50, "50 of a full bucket of 100");
    ratelimit_set(rl, 120000); /* capacity 200 */
    ratelimit_take(rl, 1000, 0, &g);
    CHECK_INT(g, 50, "raising the rate keeps the 50 accrued tokens");
    ratelimit_take(rl, 1000, 10000, &g);
    CHECK_INT(g, 200, "refill up to the new capacity 200");
    ratelimit_take(rl, 1000, 20000, &g);
    ratelimit_set(rl, 600); /* capacity 1 */
    ratelimit_take(rl, 1000, 20000, &g);
    CHECK_INT(g, 0, "lowering the rate of an empty bucket grants nothing");
    ratelimit_take(rl, 1000, 30000, &g);
    CHECK_INT(g, 1, "lowering the rate caps tokens at the new capacity 1");
    ratelimit_free(rl);
}

static void test_refund(void)
{
    struct ratelimit *rl = ratelimit_new(60000); /* capacity 100 */
    int g = 0;
    ratelimit_take(rl, 80, 0, &g);
    CHECK_INT(g, 80, "take 80 of 100");
    ratelimit_refund(rl, 30);
    ratelimit_take(rl, 1000, 0, &g);
    CHECK_INT(g, 50, "30 refunded tokens can be taken again");
    ratelimit_refund(rl, 500);
    ratelimit_take(rl, 1000, 0, &g);
    CHECK_INT(g, 100, "a refund never fills past the capacity");
    ratelimit_refund(rl, 0);
    ratelimit_refund(rl, -5);
    ratelimit_take(rl, 1000, 0, &g);
    CHECK_INT(g, 0, "refund of 0 or less adds nothing");
    ratelimit_free(rl);
    rl = ratelimit_new(0);
    ratelimit_refund(rl, 10);
    CHECK_INT(ratelimit_take(rl, 7, 0, &g), 0, "refund on an unlimited bucket is a no-op");
    ratelimit_free(rl);
}

static void test_unlimited(void)
{
    static const double rates[] = {0, -5, NAN, INFINITY};
    for (size_t i = 0; i < sizeof rates / sizeof rates[0]; i++) {
        struct ratelimit *rl = ratelimit_new(rates[i]);
        int g = 0;
        int64_t w = ratelimit_take(rl, 1000000, 0, &g);
        CHECK(w == 0 && g == 1000000, "unlimited grants everything at once");
        CHECK(ratelimit_get(rl) == 0, "unlimited reads back as 0");
        ratelimit_free(rl);
    }
    struct ratelimit *rl = ratelimit_new(600);
    int g = 0;
    ratelimit_take(rl, 5, 0, &g);
    CHECK_INT(g, 1, "limited first");
    ratelimit_set(rl, 0);
    CHECK_INT(ratelimit_take(rl, 5000, 0, &g), 0, "set(0) lifts the limit at once");
    CHECK_INT(g, 5000, "all granted");
    ratelimit_set(rl, 600);
    ratelimit_take(rl, 5, 100, &g);
    CHECK(g <= 1, "limited again");
    ratelimit_free(rl);
}

/* a caller that always comes back 5 ms late (a dispatcher on a timer)
 * still gets the full rate: the fraction above the capacity carries over */
static void test_late_caller(void)
{
    struct ratelimit *rl = ratelimit_new(600); /* 10/s, capacity 1 */
    int total = 0, g;
    int64_t t = 0;
    while (t <= 60000) {
        int64_t w = ratelimit_take(rl, 8, t, &g);
        total += g;
        CHECK(g <= 1, "never more than the capacity at once");
        t += (w > 0 ? w : 1) + 5;
    }
    CHECK(total >= 597 && total <= 601, "600 tpm, caller 5 ms late every time: 597..601 in 60 s");
    ratelimit_free(rl);
}

static void test_burst(void)
{
    static const struct {
        double tpm;
        int cap;
    } rows[] = {{600, 1}, {60, 1}, {6000, 10}, {60000, 100}, {15000, 25}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct ratelimit *rl = ratelimit_new(rows[i].tpm);
        int g = 0;
        ratelimit_take(rl, 1000000, 0, &g);
        CHECK_INT(g, rows[i].cap, "a new bucket holds one capacity");
        ratelimit_take(rl, 1000000, 3600 * 1000, &g);
        CHECK_INT(g, rows[i].cap, "after an idle hour: still one capacity (0.1 s of tokens)");
        ratelimit_free(rl);
    }
}

/* contention: 4 threads on one bucket and one shared simulated clock */
static struct ratelimit *c_rl;
static atomic_long c_clock, c_granted;

static void *contend_sim(void *arg)
{
    (void)arg;
    for (int i = 0; i < 200000; i++) {
        int g = 0;
        int64_t w = ratelimit_take(c_rl, 1 + i % 3, atomic_load(&c_clock), &g);
        atomic_fetch_add(&c_granted, g);
        if (w > 0 && i % 2)
            atomic_fetch_add(&c_clock, 1);
    }
    return NULL;
}

static void *contend_real(void *arg)
{
    int64_t end = *(const int64_t *)arg;
    int64_t now;
    while ((now = time_mono_ms()) < end) {
        int g = 0;
        ratelimit_take(c_rl, 2, now, &g);
        atomic_fetch_add(&c_granted, g);
    }
    return NULL;
}

static void test_threads(void)
{
    pthread_t th[4];
    c_rl = ratelimit_new(60000); /* 1 token per ms, capacity 100 */
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, contend_sim, NULL);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    long clock = atomic_load(&c_clock), got = atomic_load(&c_granted);
    printf("# simulated: %ld ms, %ld granted\n", clock, got);
    CHECK(got <= 100 + clock, "4 threads, simulated clock: never more than capacity + rate * time");
    CHECK(clock > 1000 && got >= clock * 9 / 10, "and the rate is reached");
    ratelimit_free(c_rl);

    c_rl = ratelimit_new(60000);
    atomic_store(&c_granted, 0);
    int64_t start = time_mono_ms(), end = start + 300;
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, contend_real, &end);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    got = atomic_load(&c_granted);
    printf("# real clock: 300 ms, %ld granted\n", got);
    CHECK(got <= 100 + 300 + 1, "4 threads, real clock: never more than capacity + rate * time");
    CHECK(got >= 100, "and tokens were granted");
    ratelimit_free(c_rl);
}

int main(void)
{
    test_rates();
    test_delays();
    test_set();
    test_refund();
    test_unlimited();
    test_burst();
    test_late_caller();
    test_threads();
    return test_done();
}
