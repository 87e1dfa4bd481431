/* test_store_identities.c - sending identities on a real SQLite file
 * (warmup-service/store_identities.c): create with and without ramp and
 * window, a taken address refused ignoring case, get, list with paging,
 * operator pause and resume (paused providers back to ramping with the
 * grace), summaries through the decision callback in one transaction, an
 * unknown address ignored, and everything read back after a reopen. */
#include "store.h"
#include "store_int.h"
#include "test.h"
#include "xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/test_store_identities.XXXXXX";

/* the callback's script: summary i becomes state[i] with reason[i] */
struct script {
    const char *state[8];
    const char *reason[8];
    int calls;
    char seen[8][64]; /* "state since grace" of cur per call */
};

static void decide(void *arg, size_t i, int64_t identity_id, const struct identity_provider *cur,
                   struct identity_provider *next)
{
    struct script *sc = arg;
    (void)identity_id;
    snprintf(sc->seen[i], sizeof sc->seen[i], "%s %lld %lld", cur->state, (long long)cur->since_ms,
             (long long)cur->grace_until_ms);
    sc->calls++;
    next->state = (char *)sc->state[i];
    next->reason = (char *)sc->reason[i];
    next->since_ms = 5000 + (int64_t)i;
    next->spam_rate = 0.25;
    next->inbox_rate = 0.75;
}

static const struct identity_provider *provider(const struct identity *x, const char *name)
{
    for (size_t i = 0; i < x->nproviders; i++)
        if (strcmp(x->providers[i].provider, name) == 0)
            return &x->providers[i];
    return NULL;
}

static void test_create(struct store *s)
{
    int64_t id1 = 0, id2 = 0, id3 = -1;
    struct identity_spec a = {
        .address = "News@acme.test",
        .name = "Acme News",
        .smtp_client = "relay",
        .has_ramp = true,
        .ramp = {.start_per_day = 20, .growth_pct = 15.5, .max_per_day = 5000, .start_day = 20427},
        .has_window = true,
        .win_start_min = 480,
        .win_end_min = 1440,
        .tz = "Europe/Berlin",
        .created_at = "2026-12-05T00:00:00Z",
    };
    CHECK_INT(store_create_identity(s, &a, &id1), 0, "create with ramp and window");
    CHECK_INT(id1, 1, "  ... id 1");
    struct identity_spec b = {.address = "ops@acme.test", .created_at = "2026-12-05T00:00:01Z"};
    CHECK_INT(store_create_identity(s, &b, &id2), 0, "create without ramp or window");
    struct identity_spec c = b;
    c.address = "NEWS@ACME.TEST";
    CHECK_INT(store_create_identity(s, &c, &id3), 1, "the same address in other case: duplicate");
    CHECK_INT(id3, 0, "  ... no id");

    struct identity x;
    CHECK_INT(store_get_identity(s, id1, &x), 0, "get by id");
    CHECK(x.has_ramp && x.ramp.start_per_day == 20 && x.ramp.growth_pct == 15.5 &&
              x.ramp.max_per_day == 5000 && x.ramp.start_day == 20427,
          "  ... the ramp");
    CHECK(x.has_window && x.win_start_min == 480 && x.win_end_min == 1440 &&
              strcmp(x.tz, "Europe/Berlin") == 0,
          "  ... the window");
    CHECK(strcmp(x.address, "News@acme.test") == 0 && strcmp(x.name, "Acme News") == 0 &&
              strcmp(x.smtp_client, "relay") == 0 && !x.paused && !x.paused_reason &&
              x.nproviders == 0,
          "  ... the rest");
    identity_cleanup(&x);
    CHECK_INT(store_identity_by_address(s, "news@ACME.test", &x), 0, "get by address, any case");
    CHECK_INT(x.id, id1, "  ... the same identity");
    identity_cleanup(&x);
    CHECK_INT(store_get_identity(s, id2, &x), 0, "get the plain one");
    CHECK(!x.has_ramp && !x.has_window && x.win_start_min == 0 && x.win_end_min == 1440 &&
              strcmp(x.tz, "UTC") == 0 && !x.name && !x.smtp_client,
          "  ... no ramp, the whole UTC day, no name or client");
    identity_cleanup(&x);
    CHECK_INT(store_get_identity(s, 99, &x), 1, "an unknown id: 1");
    CHECK_INT(store_identity_by_address(s, "nobody@acme.test", &x), 1, "an unknown address: 1");

    struct identity *v;
    size_t n;
    CHECK_INT(store_list_identities(s, 10, 0, &v, &n), 0, "list");
    CHECK(n == 2 && v[0].id == id1 && v[1].id == id2, "  ... both, in id order");
    store_identities_free(v, n);
    CHECK_INT(store_list_identities(s, 1, 1, &v, &n), 0, "list limit 1 offset 1");
    CHECK(n == 1 && v[0].id == id2, "  ... the second");
    store_identities_free(v, n);
}

static void test_summaries(struct store *s)
{
    struct identity_summary sums[] = {
        {"news@acme.test", "gmail", 86400, 40, 30, 10, 0, 0, "2026-12-05T10:00:00Z"},
        {"nobody@acme.test", "gmail", 86400, 40, 30, 10, 0, 0, "2026-12-05T10:00:00Z"},
        {"News@acme.test", "yahoo", 86400, 50, 50, 0, 0, 0, "2026-12-05T10:00:00Z"},
        {"NEWS@acme.test", "gmail", 86400, 44, 30, 14, 0, 0, "2026-12-05T10:01:00Z"},
    };
    struct script sc = {
        .state = {"holding", "x", "ramping", "paused"},
        .reason = {"hold it", "x", "", "pause it"},
    };
    int64_t ids[4];
    CHECK_INT(store_apply_summaries(s, sums, 4, 1000, decide, &sc, ids), 0, "apply 4 summaries");
    CHECK(ids[0] == 1 && ids[1] == 0 && ids[2] == 1 && ids[3] == 1,
          "  ... the unknown address has no identity (ignored)");
    CHECK_INT(sc.calls, 3, "  ... the callback for the three known ones");
    CHECK_STR(sc.seen[0], "ramping 1000 0", "  ... a new provider starts ramping since now");
    CHECK_STR(sc.seen[3], "holding 5000 0",
              "  ... the same provider later in the batch sees the earlier write");
    struct identity x;
    CHECK_INT(store_get_identity(s, 1, &x), 0, "read back");
    const struct identity_provider *g = provider(&x, "gmail"), *y = provider(&x, "yahoo");
    CHECK(x.nproviders == 2 && g && y, "  ... two providers");
    CHECK(g && strcmp(g->state, "paused") == 0 && strcmp(g->reason, "pause it") == 0 &&
              g->since_ms == 5003 && g->checked == 44 && g->spam_rate == 0.25 &&
              g->inbox_rate == 0.75,
          "  ... gmail: the last decision, its since, the last summary's checked and rates");
    CHECK(y && strcmp(y->state, "ramping") == 0 && y->checked == 50, "  ... yahoo ramping");
    identity_cleanup(&x);

    /* operator pause, then resume */
    CHECK_INT(store_pause_identity(s, 1, "list cleanup"), 0, "operator pause");
    CHECK_INT(store_pause_identity(s, 99, "x"), 1, "  ... an unknown id: 1");
    CHECK_INT(store_get_identity(s, 1, &x), 0, "read back");
    CHECK(x.paused && strcmp(x.paused_reason, "list cleanup") == 0, "  ... paused with the reason");
    identity_cleanup(&x);
    bool was;
    char **resumed;
    size_t nr;
    CHECK_INT(store_resume_identity(s, 1, 7000, 9000, "resumed by operator", &was, &resumed, &nr),
              0, "operator resume");
    CHECK(was && nr == 1 && strcmp(resumed[0], "gmail") == 0,
          "  ... it was paused; gmail was the paused provider");
    for (size_t i = 0; i < nr; i++)
        free(resumed[i]);
    free(resumed);
    CHECK_INT(store_get_identity(s, 1, &x), 0, "read back");
    g = provider(&x, "gmail");
    CHECK(!x.paused && !x.paused_reason && g && strcmp(g->state, "ramping") == 0 &&
              strcmp(g->reason, "resumed by operator") == 0 && g->since_ms == 7000 &&
              g->grace_until_ms == 9000,
          "  ... pause cleared; gmail ramping since the resume, with the grace");
    identity_cleanup(&x);
    CHECK_INT(store_resume_identity(s, 99, 0, 0, "r", &was, &resumed, &nr), 1,
              "resume an unknown id: 1");
    CHECK_INT(store_resume_identity(s, 1, 7000, 9000, "r", &was, &resumed, &nr), 0, "resume again");
    CHECK(!was && nr == 0 && !resumed, "  ... nothing was paused");
}

int main(void)
{
    char why[256];
    if (!mkdtemp(tmpdir))
        return 1;
    char *path = xasprintf("%s/w.db", tmpdir);
    struct store *s = store_open(path, why, sizeof why);
    CHECK(s != NULL, "store opens");
    if (!s) {
        printf("# %s\n", why);
        return test_done();
    }
    test_create(s);
    test_summaries(s);
    store_free(s);

    s = store_open(path, why, sizeof why);
    CHECK(s != NULL, "store opens again");
    struct identity x;
    if (s && store_get_identity(s, 1, &x) == 0) {
        const struct identity_provider *g = provider(&x, "gmail");
        CHECK(x.has_ramp && x.ramp.growth_pct == 15.5 && x.nproviders == 2 && g &&
                  g->grace_until_ms == 9000,
              "  ... the identity, its ramp and providers as written");
        identity_cleanup(&x);
    } else {
        CHECK(0, "  ... the identity reads back");
    }
    store_free(s);
    char *rm = xasprintf("rm -rf %s", tmpdir);
    if (system(rm) != 0)
        printf("# could not remove %s\n", tmpdir);
    free(rm);
    free(path);
    return test_done();
}
