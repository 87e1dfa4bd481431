/* test_providers.c - THROTTLES_FILE groups and domain lookups */
#include "providers.h"
#include "test.h"

#include <stdio.h>
#include <stdlib.h>

static void test_lookup(void)
{
    char err[256];
    struct providers *p = providers_parse(
        "[{\"provider\":\"gmail\",\"domains\":[\"gmail.com\",\"GoogleMail.com\"],"
        "\"per_minute\":600,\"per_hour\":20000,\"connections\":4},"
        "{\"provider\":\"microsoft\",\"domains\":[\"outlook.com\",\".hotmail.com\",\"live.com\"]},"
        "{\"provider\":\"corp\",\"domains\":[\".corp.test\",\"mail.corp.test\"],\"per_minute\":1}]",
        err, sizeof err);
    CHECK(p != NULL, "a valid file parses");
    if (!p) {
        printf("# %s\n", err);
        return;
    }
    CHECK_INT((int)providers_count(p), 3, "three groups");
    const struct provider_group *g = providers_get(p, 0);
    CHECK(g && g->per_minute == 600 && g->per_hour == 20000 && g->connections == 4,
          "gmail's limits");
    g = providers_get(p, 1);
    CHECK(g && g->per_minute == 0 && g->per_hour == 0 && g->connections == 0,
          "absent limits are 0 (none)");
    CHECK_STR(providers_name(p, "gmail.com"), "gmail", "exact domain");
    CHECK_STR(providers_name(p, "googlemail.com"), "gmail", "a domain written in capitals");
    CHECK_STR(providers_name(p, "mail.gmail.com"), "mail.gmail.com",
              "an exact entry does not cover subdomains");
    CHECK_STR(providers_name(p, "hotmail.com"), "microsoft", ".suffix covers the domain");
    CHECK_STR(providers_name(p, "eu.mx.hotmail.com"), "microsoft", ".suffix covers subdomains");
    CHECK_STR(providers_name(p, "nothotmail.com"), "nothotmail.com",
              "a suffix matches on a label boundary only");
    CHECK_STR(providers_name(p, "example.org"), "example.org",
              "a domain in no group is its own provider");
    CHECK_INT(providers_index(p, "mail.corp.test"), 2, "exact entry in the same group");
    CHECK_INT(providers_index(p, "a.b.corp.test"), 2, "deep subdomain");
    CHECK_INT(providers_index(p, "example.org"), -1, "no group: -1");
    CHECK_INT(providers_find(p, "Microsoft"), 1, "find by name, any case");
    CHECK_INT(providers_find(p, "yahoo"), -1, "unknown name");
    providers_free(p);

    CHECK_STR(providers_name(NULL, "gmail.com"), "gmail.com", "no file: the domain");
    p = providers_load(NULL, err, sizeof err);
    CHECK(p && providers_count(p) == 0 && providers_index(p, "gmail.com") == -1,
          "no path: no groups");
    providers_free(p);
    p = providers_load("/nonexistent/throttles.json", err, sizeof err);
    CHECK(!p && strstr(err, "THROTTLES_FILE"), "a missing file is an error naming the variable");
}

static void test_refusals(void)
{
    static const struct {
        const char *json, *why;
    } bad[] = {
        {"{}", "must be a JSON array"},
        {"[1]", "entry 1 is not an object"},
        {"[{\"domains\":[\"a.test\"]}]", "provider"},
        {"[{\"provider\":\"g\"}]", "domains must be a non-empty array"},
        {"[{\"provider\":\"g\",\"domains\":[]}]", "domains must be a non-empty array"},
        {"[{\"provider\":\"g\",\"domains\":[\"a b\"]}]", "is not a domain"},
        {"[{\"provider\":\"g\",\"domains\":[\"a..b\"]}]", "is not a domain"},
        {"[{\"provider\":\"g\",\"domains\":[\".\"]}]", "is not a domain"},
        {"[{\"provider\":\"g\",\"domains\":[7]}]", "is not a string"},
        {"[{\"provider\":\"g\",\"domains\":[\"a.test\"],\"per_minute\":-1}]", "per_minute"},
        {"[{\"provider\":\"g\",\"domains\":[\"a.test\"],\"per_hour\":\"9\"}]", "per_hour"},
        {"[{\"provider\":\"g\",\"domains\":[\"a.test\"],\"burst\":9}]", "burst"},
        {"[{\"provider\":\"g h\",\"domains\":[\"a.test\"]}]", "provider may hold only"},
        {"[{\"provider\":\"g\",\"domains\":[\"a.test\"]},{\"provider\":\"G\",\"domains\":[\"b."
         "test\"]}]",
         "listed twice"},
        {"[{\"provider\":\"g\",\"domains\":[\"a.test\"]},{\"provider\":\"h\",\"domains\":[\"A."
         "test\"]}]",
         "domain a.test is in providers g and h"},
        {"[", "THROTTLES_FILE"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[256] = "", name[128];
        struct providers *p = providers_parse(bad[i].json, err, sizeof err);
        snprintf(name, sizeof name, "refused: %s", bad[i].why);
        CHECK(!p && strstr(err, bad[i].why) && strstr(err, "THROTTLES_FILE"), name);
        if (p || !strstr(err, bad[i].why))
            printf("# got: %s\n", err);
        providers_free(p);
    }
}

int main(void)
{
    test_lookup();
    test_refusals();
    return test_done();
}
