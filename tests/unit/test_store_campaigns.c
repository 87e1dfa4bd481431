/* test_store_campaigns.c - campaigns on a real SQLite file
 * (warmup-service/store_campaigns.c): create, get and list a draft; start
 * with each audience (all, domains, attributes, an uploaded list) making
 * one copy per recipient that is not suppressed, with the user's
 * attributes or the list's columns as the copy's data and the list's new
 * domains given lanes; start twice, an audience matching nobody, an
 * import still running, a placeholder without a value: refused with
 * nothing written; variants' weights honoured on 10,000 users; the tpm
 * split; pause before start makes the emails paused. */
#include "store.h"
#include "store_campaigns.h"
#include "store_int.h"
#include "test.h"
#include "xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/test_store_campaigns.XXXXXX";

static struct template tmpl = {
    .name = "welcome",
    .version = 2,
    .subject = "Hi {{name}}",
    .text = "Your plan: {{plan}}",
    .html = NULL,
    .defaults = "{\"company\":\"Acme\"}",
};

/* one_int - the first column of the first row of sql on the writer */
static int64_t one_int(struct store *s, const char *sql)
{
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    if (sqlite3_prepare_v2(s->w, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static void exec(struct store *s, const char *sql)
{
    char *err = NULL;
    if (sqlite3_exec(s->w, sql, NULL, NULL, &err) != SQLITE_OK)
        printf("# exec failed: %s\n", err ? err : "?");
    sqlite3_free(err);
}

/* add_users - n users uNNN@dK.test (K = i % 3) with attributes from attr(i) */
static void add_users(struct store *s, int from, int n, const char *(*attr)(int i, char *b))
{
    struct user_reg *u = xcalloc((size_t)n, sizeof *u);
    int *res = xcalloc((size_t)n, sizeof *res);
    char **bufs = xcalloc((size_t)n * 3, sizeof *bufs);
    for (int i = 0; i < n; i++) {
        int k = from + i;
        bufs[3 * i] = xasprintf("u%d@d%d.test", k, k % 3);
        bufs[3 * i + 1] = xasprintf("d%d.test", k % 3);
        bufs[3 * i + 2] = xmalloc(128);
        u[i] = (struct user_reg){.name = "User",
                                 .address = bufs[3 * i],
                                 .domain = bufs[3 * i + 1],
                                 .created_at = "2026-12-05T00:00:00Z",
                                 .event = "{}",
                                 .attributes = attr ? attr(k, bufs[3 * i + 2]) : NULL};
    }
    if (store_register_batch(s, u, (size_t)n, "emailId-events", res) != 0)
        printf("# register failed\n");
    for (int i = 0; i < 3 * n; i++)
        free(bufs[i]);
    free(bufs);
    free(u);
    free(res);
}

static const char *attr_plan(int i, char *b)
{
    /* every third user pro, the others free; n = i as a number; user 4 has no plan */
    if (i == 4)
        snprintf(b, 128, "{\"n\":%d}", i);
    else
        snprintf(b, 128, "{\"plan\":\"%s\",\"n\":%d,\"vip\":%s}", i % 3 == 0 ? "pro" : "free", i,
                 i == 3 ? "true" : "false");
    return b;
}

static int64_t create(struct store *s, const char *audience, const struct campaign_variant *v,
                      size_t nv, int tpm)
{
    struct campaign_spec sp = {
        .name = "Spring",
        .from = "news@acme.test",
        .from_name = "Acme",
        .template_name = "welcome",
        .template_version = 2,
        .smtp_client = "custom",
        .audience = audience,
        .created_at = "2026-12-05T10:00:00Z",
        .variants = v,
        .nvariants = nv,
        .tpm = tpm,
    };
    int64_t id = 0;
    if (store_create_campaign(s, &sp, &id) != 0)
        printf("# create failed\n");
    return id;
}

static int start(struct store *s, int64_t id, const char *const *keys, size_t nkeys,
                 struct campaign_start_result *r)
{
    struct campaign_start st = {.tmpl = &tmpl,
                                .msgid_domain = "w.test",
                                .keys = keys,
                                .nkeys = nkeys,
                                .started_at = "2026-12-05T11:00:00Z"};
    return store_start_campaign(s, id, &st, r);
}

/* nothing_written - no email and no copy more than before */
static bool nothing_written(struct store *s, int64_t emails, int64_t copies)
{
    return one_int(s, "SELECT count(*) FROM emails") == emails &&
           one_int(s, "SELECT count(*) FROM deliveries") == copies;
}

static void test_draft(struct store *s)
{
    struct campaign_variant v[2] = {{.name = "A", .subject = "A {{name}}", .weight = 3},
                                    {.name = "B", .subject = NULL, .weight = 1}};
    int64_t id = create(s, "{\"all\":true}", v, 2, 600);
    CHECK(id > 0, "create a draft");
    struct campaign c;
    CHECK_INT(store_get_campaign(s, id, &c), 0, "get it");
    CHECK(!c.started && !c.paused && c.nemails == 0 && c.total == 0, "  ... a draft, no email");
    CHECK_STR(c.audience, "{\"all\":true}", "  ... its audience");
    CHECK(c.nvariants == 2 && strcmp(c.variants[0].name, "A") == 0 &&
              strcmp(c.variants[0].subject, "A {{name}}") == 0 && c.variants[0].weight == 3 &&
              c.variants[1].subject == NULL && c.variants[1].weight == 1,
          "  ... its variants");
    CHECK(strcmp(c.from, "news@acme.test") == 0 && strcmp(c.from_name, "Acme") == 0 &&
              c.template_version == 2 && c.tpm == 600 && strcmp(c.smtp_client, "custom") == 0 &&
              c.started_at == NULL,
          "  ... its fields");
    campaign_cleanup(&c);
    CHECK_INT(store_get_campaign(s, 999, &c), 1, "an unknown id");
    int64_t id2 = create(s, "{\"upload\":true}", NULL, 0, 0);
    struct campaign *l;
    size_t n;
    CHECK_INT(store_list_campaigns(s, 1, 1, &l, &n), 0, "list with limit 1 offset 1");
    CHECK(n == 1 && l[0].id == id2 && l[0].nvariants == 0, "  ... the second campaign");
    store_campaigns_free(l, n);
}

static void test_start_all(struct store *s)
{
    add_users(s, 0, 9, attr_plan);
    exec(s, "INSERT INTO suppressions(address, reason, at_ms) VALUES('U6@d0.test', 'manual', 1)");
    s->n_supp = 1;
    int64_t id = create(s, "{\"all\":true}", NULL, 0, 100);
    struct campaign_start_result r;
    int64_t e0 = one_int(s, "SELECT count(*) FROM emails"),
            d0 = one_int(s, "SELECT count(*) FROM deliveries");
    /* {{plan}} is missing for user 4 (and 6 is suppressed: not counted) */
    static const char *const keys[] = {"n", "plan"};
    CHECK_INT(start(s, id, keys, 2, &r), STORE_START_MISSING, "a placeholder without a value");
    CHECK(strcmp(r.key, "plan") == 0 && r.missing == 1 && strcmp(r.example, "u4@d1.test") == 0,
          "  ... names the key, the count and the recipient");
    CHECK(nothing_written(s, e0, d0), "  ... nothing written");
    struct campaign c;
    store_get_campaign(s, id, &c);
    CHECK(!c.started, "  ... still a draft");
    campaign_cleanup(&c);

    static const char *const ok_keys[] = {"n"};
    CHECK_INT(start(s, id, ok_keys, 1, &r), STORE_START_OK, "start, audience all");
    CHECK(r.total == 8 && r.nemails == 1, "  ... 8 copies (9 users, one suppressed), one email");
    int64_t eid = r.nemails ? r.email_ids[0] : 0;
    free(r.email_ids);
    struct email_info e;
    CHECK_INT(store_get_email(s, eid, true, &e), 0, "  ... its email");
    CHECK(e.kind == EMAIL_KIND_CAMPAIGN && e.campaign_id == id && e.variant == NULL &&
              strcmp(e.subject, "Hi {{name}}") == 0 && strcmp(e.body, "Your plan: {{plan}}") == 0 &&
              strcmp(e.template_name, "welcome") == 0 && e.template_version == 2 &&
              strcmp(e.defaults, "{\"company\":\"Acme\"}") == 0 && e.pending == 8 && e.tpm == 100 &&
              !e.paused && strcmp(e.from, "news@acme.test") == 0,
          "  ... kind, campaign, subject, body, template, defaults, counters, tpm");
    email_info_cleanup(&e);
    CHECK_INT(one_int(s, "SELECT count(*) FROM deliveries d JOIN users u ON u.id = d.user_id"
                         " WHERE d.data = u.attributes AND d.lane = u.lane AND d.name = u.name"
                         " AND d.recipient = u.email_id AND d.email_id = (SELECT max(id) FROM"
                         " emails)"),
              8, "  ... each copy with its user's attributes, lane and name");
    CHECK_INT(one_int(s, "SELECT count(*) FROM deliveries WHERE recipient = 'u6@d0.test'"), 0,
              "  ... none to the suppressed address");
    store_get_campaign(s, id, &c);
    CHECK(c.started && c.total == 8 && c.nemails == 1 && c.emails[0].pending == 8 &&
              strcmp(c.started_at, "2026-12-05T11:00:00Z") == 0,
          "  ... the campaign started with its email");
    campaign_cleanup(&c);
    e0 = one_int(s, "SELECT count(*) FROM emails");
    d0 = one_int(s, "SELECT count(*) FROM deliveries");
    CHECK_INT(start(s, id, NULL, 0, &r), STORE_START_CONFLICT, "start twice");
    CHECK(r.conflict == CAMPAIGN_NOT_DRAFT && nothing_written(s, e0, d0),
          "  ... not a draft, nothing written");
    CHECK_INT(start(s, 12345, NULL, 0, &r), STORE_START_UNKNOWN, "start an unknown campaign");
}

static void test_audiences(struct store *s)
{
    struct campaign_start_result r;
    int64_t e0 = one_int(s, "SELECT count(*) FROM emails"),
            d0 = one_int(s, "SELECT count(*) FROM deliveries");
    int64_t id = create(s, "{\"domains\":[\"d2.test\",\"nowhere.test\"]}", NULL, 0, 0);
    CHECK_INT(start(s, id, NULL, 0, &r), STORE_START_OK, "start, audience domains");
    CHECK_INT(r.total, 3, "  ... the 3 users of d2.test");
    CHECK_INT(one_int(s, "SELECT count(*) FROM deliveries WHERE email_id = (SELECT max(id) FROM"
                         " emails) AND recipient LIKE '%@d2.test'"),
              3, "  ... all in d2.test");
    free(r.email_ids);

    id = create(s, "{\"domains\":[\"nowhere.test\"]}", NULL, 0, 0);
    e0 = one_int(s, "SELECT count(*) FROM emails");
    d0 = one_int(s, "SELECT count(*) FROM deliveries");
    CHECK_INT(start(s, id, NULL, 0, &r), STORE_START_CONFLICT, "a domain without users");
    CHECK(r.conflict == CAMPAIGN_NO_MATCH && nothing_written(s, e0, d0),
          "  ... no match, nothing written");

    id = create(s, "{\"attributes\":{\"plan\":\"pro\"}}", NULL, 0, 0);
    CHECK_INT(start(s, id, NULL, 0, &r), STORE_START_OK, "start, audience plan = pro");
    /* users 0, 3, 6 (suppressed), 9.. none: 0 and 3 */
    CHECK_INT(r.total, 2, "  ... users 0 and 3 (6 is suppressed)");
    free(r.email_ids);
    id = create(s, "{\"attributes\":{\"plan\":\"pro\",\"vip\":true}}", NULL, 0, 0);
    CHECK_INT(start(s, id, NULL, 0, &r), STORE_START_OK, "two attributes, one a boolean");
    CHECK_INT(r.total, 1, "  ... user 3 only");
    CHECK_INT(one_int(s, "SELECT count(*) FROM deliveries WHERE email_id = (SELECT max(id) FROM"
                         " emails) AND recipient = 'u3@d0.test'"),
              1, "  ... to u3");
    free(r.email_ids);
    id = create(s, "{\"attributes\":{\"n\":\"5\"}}", NULL, 0, 0);
    CHECK_INT(start(s, id, NULL, 0, &r), STORE_START_CONFLICT,
              "the string \"5\" is not the number 5");
    CHECK_INT(r.conflict, CAMPAIGN_NO_MATCH, "  ... no match");
    id = create(s, "{\"attributes\":{\"n\":5}}", NULL, 0, 0);
    CHECK_INT(start(s, id, NULL, 0, &r), STORE_START_OK, "the number 5 matches user 5");
    CHECK_INT(r.total, 1, "  ... one copy");
    free(r.email_ids);
    id = create(s, "{\"attributes\":{\"vip\":1}}", NULL, 0, 0);
    CHECK_INT(start(s, id, NULL, 0, &r), STORE_START_CONFLICT, "the number 1 is not true");
    id = create(s, "{\"attributes\":{\"n\":6}}", NULL, 0, 0);
    CHECK_INT(start(s, id, NULL, 0, &r), STORE_START_CONFLICT, "only a suppressed user matches");
    CHECK(r.conflict == CAMPAIGN_ALL_SUPPRESSED && r.matched == 1, "  ... all suppressed");
}

static void test_upload(struct store *s)
{
    struct campaign_start_result r;
    int64_t id = create(s, "{\"upload\":true}", NULL, 0, 0);
    int64_t e0 = one_int(s, "SELECT count(*) FROM emails"),
            d0 = one_int(s, "SELECT count(*) FROM deliveries");
    CHECK_INT(start(s, id, NULL, 0, &r), STORE_START_CONFLICT, "upload: nothing uploaded");
    CHECK(r.conflict == CAMPAIGN_UPLOAD_NONE && nothing_written(s, e0, d0),
          "  ... not imported yet, nothing written");
    char sql[512];
    snprintf(sql, sizeof sql,
             "INSERT INTO imports(kind, campaign_id, source, state, created_at)"
             " VALUES('campaign', %lld, 'upload', 'importing', 'now')",
             (long long)id);
    exec(s, sql);
    snprintf(sql, sizeof sql,
             "INSERT INTO campaign_recipients(campaign_id, address, name, domain, attributes,"
             " line) VALUES(%lld, 'U1@d1.test', 'Listed One', 'd1.test', '{\"plan\":\"gold\"}', 3),"
             " (%lld, 'new@fresh.test', 'New', 'fresh.test', '{\"plan\":\"x\"}', 2),"
             " (%lld, 'u6@d0.test', 'Supp', 'd0.test', NULL, 4)",
             (long long)id, (long long)id, (long long)id);
    exec(s, sql);
    CHECK_INT(start(s, id, NULL, 0, &r), STORE_START_CONFLICT, "upload: import running");
    CHECK(r.conflict == CAMPAIGN_UPLOAD_IMPORTING && nothing_written(s, e0, d0),
          "  ... importing, nothing written");
    exec(s, "UPDATE imports SET state = 'done'");
    CHECK_INT(one_int(s, "SELECT count(*) FROM domains WHERE name = 'fresh.test'"), 0,
              "  (fresh.test has no lane yet)");
    static const char *const keys[] = {"plan"};
    CHECK_INT(start(s, id, keys, 1, &r), STORE_START_OK, "upload: start");
    CHECK_INT(r.total, 2, "  ... two copies (the third address is suppressed)");
    free(r.email_ids);
    CHECK_INT(
        one_int(s, "SELECT count(*) FROM deliveries d WHERE email_id = (SELECT max(id) FROM"
                   " emails) AND ((recipient = 'U1@d1.test' AND user_id = (SELECT id FROM"
                   " users WHERE email_id = 'u1@d1.test') AND name = 'Listed One'"
                   " AND data = '{\"plan\":\"gold\"}' AND lane = (SELECT id FROM domains WHERE"
                   " name = 'd1.test')) OR (recipient = 'new@fresh.test' AND user_id = 0 AND"
                   " lane = (SELECT id FROM domains WHERE name = 'fresh.test') AND lane > 0"
                   " AND data = '{\"plan\":\"x\"}'))"),
        2, "  ... a registered user's id, 0 for a new address, the list's name and data, lanes");
    CHECK_INT(one_int(s, "SELECT id FROM deliveries WHERE recipient = 'new@fresh.test'") <
                  one_int(s, "SELECT id FROM deliveries WHERE recipient = 'U1@d1.test'"),
              1, "  ... in list order");

    id = create(s, "{\"upload\":true}", NULL, 0, 0);
    snprintf(sql, sizeof sql,
             "INSERT INTO imports(kind, campaign_id, source, state, created_at)"
             " VALUES('campaign', %lld, 'upload', 'failed', 'now')",
             (long long)id);
    exec(s, sql);
    CHECK_INT(start(s, id, NULL, 0, &r), STORE_START_CONFLICT, "upload: the import failed");
    CHECK_INT(r.conflict, CAMPAIGN_UPLOAD_FAILED, "  ... says so");
    snprintf(sql, sizeof sql,
             "INSERT INTO campaign_recipients(campaign_id, address, name, domain, attributes,"
             " line) VALUES(%lld, 'part@d1.test', 'Partial', 'd1.test', NULL, 2)",
             (long long)id);
    exec(s, sql);
    e0 = one_int(s, "SELECT count(*) FROM emails");
    d0 = one_int(s, "SELECT count(*) FROM deliveries");
    CHECK_INT(start(s, id, NULL, 0, &r), STORE_START_CONFLICT,
              "upload: a failed import's committed rows do not make a list");
    CHECK(r.conflict == CAMPAIGN_UPLOAD_FAILED && nothing_written(s, e0, d0),
          "  ... nothing written");
}

/* count_variant - the copies of the newest campaign's variant v */
static int64_t count_variant(struct store *s, const char *v)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM deliveries WHERE email_id = (SELECT id FROM emails WHERE"
             " campaign_id = (SELECT max(id) FROM campaigns) AND variant = '%s')",
             v);
    return one_int(s, sql);
}

static bool within(int64_t got, int64_t want, int64_t total)
{
    return llabs(got - want) * 100 <= total;
}

static void test_weights(struct store *s)
{
    int64_t users = one_int(s, "SELECT count(*) FROM users");
    add_users(s, 1000, (int)(10000 - users + 1), NULL); /* 10,000 with one suppressed */
    CHECK_INT(one_int(s, "SELECT count(*) FROM users"), 10001, "10,001 users");
    struct campaign_variant v[3] = {{.name = "A", .subject = "A", .weight = 50},
                                    {.name = "B", .subject = "B", .weight = 30},
                                    {.name = "C", .weight = 20}};
    int64_t id = create(s, "{\"all\":true}", v, 3, 600);
    struct campaign_start_result r;
    CHECK_INT(start(s, id, NULL, 0, &r), STORE_START_OK, "start 50/30/20 over 10,000");
    CHECK(r.total == 10000 && r.nemails == 3, "  ... 10,000 copies, 3 emails");
    free(r.email_ids);
    int64_t a = count_variant(s, "A"), b = count_variant(s, "B"), c = count_variant(s, "C");
    printf("# A %lld B %lld C %lld\n", (long long)a, (long long)b, (long long)c);
    CHECK(within(a, 5000, 10000) && within(b, 3000, 10000) && within(c, 2000, 10000),
          "  ... each variant within 1% of its weight");
    CHECK(a + b + c == 10000, "  ... every recipient exactly once");
    CHECK_INT(one_int(s, "SELECT count(DISTINCT recipient) FROM deliveries WHERE email_id IN"
                         " (SELECT id FROM emails WHERE campaign_id = (SELECT max(id) FROM"
                         " campaigns))"),
              10000, "  ... 10,000 distinct recipients");
    struct campaign cp;
    store_get_campaign(s, id, &cp);
    CHECK(cp.nemails == 3 && strcmp(cp.emails[0].variant, "A") == 0 &&
              strcmp(cp.emails[0].subject, "A") == 0 &&
              strcmp(cp.emails[2].subject, "Hi {{name}}") == 0 && cp.emails[0].tpm == 300 &&
              cp.emails[1].tpm == 180 && cp.emails[2].tpm == 120 && cp.emails[0].pending == a &&
              cp.emails[1].pending == b && cp.emails[2].pending == c,
          "  ... variant subjects (C the template's), tpm 600 split 300/180/120, pending counts");
    campaign_cleanup(&cp);

    struct campaign_variant w[2] = {{.name = "X", .weight = 7}, {.name = "Y", .weight = 3}};
    create(s, "{\"all\":true}", w, 2, 0);
    CHECK_INT(start(s, id + 1, NULL, 0, &r), STORE_START_OK, "start 7/3");
    free(r.email_ids);
    a = count_variant(s, "X");
    b = count_variant(s, "Y");
    printf("# X %lld Y %lld\n", (long long)a, (long long)b);
    CHECK(within(a, 7000, 10000) && within(b, 3000, 10000) && a + b == 10000,
          "  ... within 1%, every recipient once");

    struct campaign_variant t[3] = {
        {.name = "a", .weight = 1}, {.name = "b", .weight = 1}, {.name = "c", .weight = 1}};
    create(s, "{\"all\":true}", t, 3, 0);
    CHECK_INT(start(s, id + 2, NULL, 0, &r), STORE_START_OK, "start 1/1/1");
    free(r.email_ids);
    a = count_variant(s, "a");
    b = count_variant(s, "b");
    c = count_variant(s, "c");
    CHECK(llabs(a - 3334) <= 1 && llabs(b - 3333) <= 1 && llabs(c - 3333) <= 1,
          "  ... 3334/3333/3333");
}

static void test_split(void)
{
    int out[4];
    struct campaign_variant v[3] = {{.weight = 50}, {.weight = 30}, {.weight = 20}};
    campaign_split_tpm(600, v, 3, out);
    CHECK(out[0] == 300 && out[1] == 180 && out[2] == 120, "split 600 by 50/30/20");
    campaign_split_tpm(10, v, 3, out);
    CHECK(out[0] + out[1] + out[2] == 10 && out[0] == 5 && out[1] == 3 && out[2] == 2,
          "split 10: sums to 10");
    struct campaign_variant e[3] = {{.weight = 1}, {.weight = 1}, {.weight = 1}};
    campaign_split_tpm(100, e, 3, out);
    CHECK(out[0] + out[1] + out[2] == 100 && out[0] == 34, "split 100 by thirds: 34/33/33");
    campaign_split_tpm(2, e, 3, out);
    CHECK(out[0] >= 1 && out[1] >= 1 && out[2] >= 1, "split 2 over 3: each at least 1");
    campaign_split_tpm(0, v, 3, out);
    CHECK(out[0] == 0 && out[1] == 0 && out[2] == 0, "tpm 0 stays 0 (no limit)");
    campaign_split_tpm(77, NULL, 0, out);
    CHECK_INT(out[0], 77, "no variants: the whole tpm");
}

static void test_controls(struct store *s)
{
    struct campaign_variant v[2] = {{.name = "A", .weight = 1}, {.name = "B", .weight = 1}};
    int64_t id = create(s, "{\"domains\":[\"d1.test\"]}", v, 2, 50), *ids;
    size_t n;
    CHECK_INT(store_campaign_set_paused(s, id, true, &ids, &n), 0, "pause a draft");
    CHECK(n == 0, "  ... no email yet");
    free(ids);
    struct campaign_start_result r;
    CHECK_INT(start(s, id, NULL, 0, &r), STORE_START_OK, "start it");
    free(r.email_ids);
    struct campaign c;
    store_get_campaign(s, id, &c);
    CHECK(c.paused && c.nemails == 2 && c.emails[0].paused && c.emails[1].paused,
          "  ... its emails are made paused");
    CHECK(c.emails[0].tpm == 25 && c.emails[1].tpm == 25, "  ... tpm 50 split 25/25");
    campaign_cleanup(&c);
    int64_t act[64];
    size_t nact;
    store_active_emails(s, act, 64, &nact);
    bool listed = false;
    for (size_t i = 0; i < nact; i++)
        listed |= act[i] == one_int(s, "SELECT max(id) FROM emails");
    CHECK(!listed, "  ... not active for the sender");
    CHECK_INT(store_campaign_set_paused(s, id, false, &ids, &n), 0, "resume");
    CHECK(n == 2, "  ... both emails");
    free(ids);
    store_get_campaign(s, id, &c);
    CHECK(!c.paused && !c.emails[0].paused && !c.emails[1].paused, "  ... unpaused");
    campaign_cleanup(&c);
    CHECK_INT(store_campaign_set_tpm(s, id, 3, &ids, &n), 0, "rate limit 3");
    free(ids);
    store_get_campaign(s, id, &c);
    CHECK(c.tpm == 3 && c.emails[0].tpm == 2 && c.emails[1].tpm == 1, "  ... split 2/1");
    campaign_cleanup(&c);
    CHECK_INT(store_campaign_set_tpm(s, 9999, 3, &ids, &n), 1, "rate limit an unknown campaign");
    CHECK_INT(store_campaign_set_paused(s, 9999, true, &ids, &n), 1, "pause an unknown campaign");
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
    test_draft(s);
    test_start_all(s);
    test_audiences(s);
    test_upload(s);
    test_split();
    test_weights(s);
    test_controls(s);
    store_free(s);
    free(path);
    char *rm = xasprintf("rm -rf %s", tmpdir);
    if (system(rm) != 0)
        printf("# could not remove %s\n", tmpdir);
    free(rm);
    return test_done();
}
