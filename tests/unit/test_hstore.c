/* test_hstore.c - copy ingest of the health store (health-service/hstore*.c):
 * the same events applied one per transaction and in large batches (where
 * runs of email.sent copies go through the multi-row INSERT) must leave the
 * same copies and counters, redeliveries and bounces included. */
#include "hstore.h"
#include "log.h"
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NEV 900
#define NIDS 400

static char mids[NIDS][48], rcpts[NIDS][48], doms[NIDS][24], bids[8][40];

/* event i of the sequence: 400 email.sent copies with repeats (also
 * back to back), then a mix with email.failed for known and new copies */
static struct copy_event event(size_t i)
{
    static unsigned seed = 12345;
    size_t id;
    bool failed = false;
    if (i < 150)
        id = i;
    else if (i < 160)
        id = 150 + (i - 150) / 2; /* the same copy twice in a row */
    else if (i < 400)
        id = (i * 7) % 230; /* some seen before, some new */
    else {
        seed = seed * 1103515245 + 12345;
        id = (seed >> 8) % NIDS;
        failed = (seed >> 20) % 4 == 0;
    }
    int64_t email = (int64_t)(id % 7) + 1;
    return (struct copy_event){
        .failed = failed,
        .message_id = mids[id],
        .broadcast_id = bids[email],
        .recipient = rcpts[id],
        .domain = doms[id],
        .smtp_client = "custom",
        .smtp_reply = failed ? "550 no" : NULL,
        .email_id = email,
        .sent_at_ms = failed ? 0 : 1795428000000 + (int64_t)id,
    };
}

/* apply - the sequence in batches of `batch`; the sum of *new_copies */
static size_t apply(struct hstore *s, const struct copy_event *ev, size_t batch)
{
    size_t added = 0;
    for (size_t i = 0; i < NEV; i += batch) {
        size_t n = NEV - i < batch ? NEV - i : batch, nu, nc;
        if (hstore_apply_events(s, NULL, 0, &ev[i], n, &nu, &nc) != 0)
            return (size_t)-1;
        added += nc;
    }
    return added;
}

/* summary - every copy's and email's stats and every domain's counters */
static char *summary(struct hstore *s)
{
    size_t cap = 1 << 20, len = 0;
    char *out = calloc(1, cap);
    for (size_t id = 0; id < NIDS && out; id++) {
        json_object *o = NULL;
        int r = hstore_stats_copy(s, mids[id], &o);
        len += (size_t)snprintf(out + len, cap - len, "%s %d %s\n", mids[id], r,
                                r == 0 ? json_object_to_json_string(o) : "-");
        json_object_put(o);
    }
    for (int64_t e = 1; e <= 7; e++) {
        json_object *o = NULL;
        int r = hstore_stats_email(s, e, NULL, &o);
        len += (size_t)snprintf(out + len, cap - len, "email %lld %d %s\n", (long long)e, r,
                                r == 0 ? json_object_to_json_string(o) : "-");
        json_object_put(o);
    }
    for (int d = 0; d < 5; d++) {
        struct hplacement p = {0};
        char dom[24];
        snprintf(dom, sizeof dom, "d%d.test", d);
        int r = hstore_domain_placement(s, dom, &p);
        len += (size_t)snprintf(out + len, cap - len, "%s %d %lld %lld\n", dom, r,
                                (long long)p.tracked, (long long)p.bounced);
    }
    return out;
}

int main(void)
{
    static struct copy_event ev[NEV];
    log_init(LOG_WARN, LOG_TEXT, "test");
    for (size_t id = 0; id < NIDS; id++) {
        snprintf(mids[id], sizeof mids[id], "<email-%zu.%zu@w.test>", id % 7 + 1, id);
        snprintf(rcpts[id], sizeof rcpts[id], "u%zu@d%zu.test", id, id % 5);
        snprintf(doms[id], sizeof doms[id], "d%zu.test", id % 5);
    }
    for (int e = 1; e <= 7; e++)
        snprintf(bids[e], sizeof bids[e], "<email-%d@w.test>", e);
    for (size_t i = 0; i < NEV; i++)
        ev[i] = event(i);

    char dir[] = "/tmp/test_hstore.XXXXXX", path[3][64], err[256];
    CHECK(mkdtemp(dir) != NULL, "temp dir");
    static const size_t batches[3] = {1, 200, NEV};
    char *sum[3];
    size_t added[3];
    for (int k = 0; k < 3; k++) {
        snprintf(path[k], sizeof path[k], "%s/h%d.db", dir, k);
        struct hstore *s = hstore_open(path[k], err, sizeof err);
        CHECK(s != NULL, err);
        if (!s)
            return test_done();
        added[k] = apply(s, ev, batches[k]);
        sum[k] = summary(s);
        if (k == 0)
            CHECK_INT(hstore_tracked_count(s), (int64_t)added[0], "tracked = copies added");
        /* everything again: a redelivery of every batch changes nothing */
        CHECK_INT(apply(s, ev, batches[k]), 0, "redelivered batches add nothing");
        char *again = summary(s);
        CHECK_STR(again, sum[k], "redelivered batches change nothing");
        free(again);
        hstore_free(s);
    }
    CHECK(added[0] > 300 && added[0] < NIDS + 1, "some copies were redelivered");
    CHECK_INT(added[1], added[0], "batches of 200 add what single events add");
    CHECK_INT(added[2], added[0], "one batch adds what single events add");
    CHECK_STR(sum[1], sum[0], "batches of 200 leave what single events leave");
    CHECK_STR(sum[2], sum[0], "one batch leaves what single events leave");
    for (int k = 0; k < 3; k++) {
        free(sum[k]);
        static const char *const suffix[] = {"", "-wal", "-shm"};
        for (int j = 0; j < 3; j++) {
            char f[sizeof path[k] + 8];
            if ((size_t)snprintf(f, sizeof f, "%s%s", path[k], suffix[j]) < sizeof f)
                unlink(f);
        }
    }
    rmdir(dir);
    return test_done();
}
