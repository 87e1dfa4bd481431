/* test_tmpl.c - placeholders (warmup-service/tmpl.c): keys, values from
 * the builtins, a copy's variables and the template's defaults, HTML
 * escaping, checks, the worst case and the fill cap. */
#include "test.h"
#include "tmpl.h"

#include <stdlib.h>
#include <string.h>

static void fill_is(const char *text, const struct tmpl_vars *v, bool html, const char *want,
                    const char *name)
{
    char *got = tmpl_fill(text, v, html);
    CHECK_STR(got ? got : "(null)", want, name);
    free(got);
}

struct collected {
    char all[256];
};

static void collect(void *arg, const char *key)
{
    struct collected *c = arg;
    size_t n = strlen(c->all);
    if (n + strlen(key) + 2 < sizeof c->all) {
        memcpy(c->all + n, key, strlen(key));
        c->all[n + strlen(key)] = ',';
        c->all[n + strlen(key) + 1] = '\0';
    }
}

int main(void)
{
    json_object *data = json_tokener_parse(
        "{\"plan\":\"pro\",\"seats\":12,\"vip\":true,\"ratio\":0.5,\"gone\":null,"
        "\"obj\":{\"a\":1},\"list\":[1],\"html\":\"<b>&'\\\"\",\"company\":\"Data Co\"}");
    json_object *defaults = json_tokener_parse("{\"company\":\"there\",\"city\":\"Berlin\"}");
    struct tmpl_vars v = {
        .name = "Alice", .address = "alice@example.com", .data = data, .defaults = defaults};

    /* values: builtins, data (string, number, boolean), defaults */
    fill_is("Hi {{name}} <{{ email_id }}>", &v, false, "Hi Alice <alice@example.com>", "builtins");
    fill_is("{{plan}}/{{seats}}/{{vip}}/{{ratio}}", &v, false, "pro/12/true/0.5",
            "data: a string as is, a number and a boolean as JSON");
    fill_is("{{company}} in {{city}}", &v, false, "Data Co in Berlin",
            "data before defaults; defaults fill what data lacks");
    fill_is("[{{gone}}][{{obj}}][{{list}}][{{nope}}]", &v, false,
            "[{{gone}}][{{obj}}][{{list}}][{{nope}}]",
            "null, an object, an array or no value: copied as written");
    fill_is("{{{name}}}", &v, false, "{Alice}", "a third brace is text");
    fill_is("{{name", &v, false, "{{name", "unclosed: text");
    fill_is("{{ bad key }}", &v, false, "{{ bad key }}", "a blank inside a key: text");
    fill_is("{{a.b-c_d}}", &v, false, "{{a.b-c_d}}", "dots, dashes, underscores are key octets");
    fill_is("", &v, false, "", "empty text");
    fill_is(NULL, &v, false, "", "no text");
    fill_is("<p>{{html}} {{name}}</p>", &v, true, "<p>&lt;b&gt;&amp;&#39;&quot; Alice</p>",
            "html: values escaped, the template kept");
    fill_is("{{html}}", &v, false, "<b>&'\"", "text: values as they are");
    struct tmpl_vars bare = {0};
    fill_is("[{{name}}][{{email_id}}]", &bare, false, "[][]", "builtins without values: empty");

    /* a key of 64 octets is one, 65 is text */
    char k64[80], k65[80];
    memset(k64, 'k', 64);
    k64[64] = '\0';
    memset(k65, 'k', 65);
    k65[65] = '\0';
    char t64[100], t65[100];
    snprintf(t64, sizeof t64, "{{%s}}", k64);
    snprintf(t65, sizeof t65, "{{%s}}", k65);
    char miss[TMPL_KEY_MAX + 1];
    CHECK(tmpl_missing(t64, &v, miss, sizeof miss) && strcmp(miss, k64) == 0,
          "a key of TMPL_KEY_MAX octets is a placeholder");
    CHECK(!tmpl_missing(t65, &v, miss, sizeof miss), "a longer one is text");

    /* keys: distinct, in order, builtins included */
    struct collected c = {""};
    size_t n = tmpl_keys("{{plan}} {{name}} {{ plan }} {{city}} {{{name}}} {{x", collect, &c);
    CHECK_INT((long long)n, 3, "three distinct keys");
    CHECK_STR(c.all, "plan,name,city,", "in order of first appearance");
    CHECK_INT((long long)tmpl_keys(NULL, NULL, NULL), 0, "no text, no keys");

    /* checks */
    CHECK(!tmpl_missing("{{name}} {{plan}} {{city}}", &v, miss, sizeof miss), "all have values");
    CHECK(tmpl_missing("{{name}} {{plan}} {{zip}} {{gone}}", &v, miss, sizeof miss) &&
              strcmp(miss, "zip") == 0,
          "the first key without a value is named");
    struct tmpl_vars nodata = {.name = "A", .address = "a@b.c", .defaults = defaults};
    CHECK(tmpl_missing("{{plan}}", &nodata, miss, sizeof miss) && strcmp(miss, "plan") == 0,
          "no variables: only defaults count");
    CHECK(tmpl_builtin("name") && tmpl_builtin("email_id") && !tmpl_builtin("plan"), "builtins");
    CHECK(tmpl_key_ok("a.b-c_D9") && tmpl_key_ok(k64), "usable keys");
    CHECK(!tmpl_key_ok("") && !tmpl_key_ok(k65) && !tmpl_key_ok("a b") && !tmpl_key_ok("a/b") &&
              !tmpl_key_ok("\xc3\xa9"),
          "empty, too long, blank, slash and non-ASCII keys are refused");

    /* worst case: builtins by their maxima, other keys by value_max */
    CHECK_INT((long long)tmpl_worst("Hi {{name}}, {{ email_id }}!{{x}}", false, 256, 254, 0),
              3 + 256 + 2 + 254 + 1 + 5, "worst: unknown keys kept as written with value_max 0");
    CHECK_INT((long long)tmpl_worst("{{x}}", false, 1, 1, 4096), 4096, "worst: value_max");
    CHECK_INT((long long)tmpl_worst("<p>{{name}}</p>", true, 256, 254, 0), 7 + 6 * 256,
              "worst: html escapes grow six times");

    /* the cap */
    size_t big = TMPL_FILLED_MAX / 4;
    char *bigv = malloc(big + 1);
    memset(bigv, 'x', big);
    bigv[big] = '\0';
    json_object *bd = json_object_new_object();
    json_object_object_add(bd, "v", json_object_new_string(bigv));
    struct tmpl_vars bv = {.data = bd};
    char *got = tmpl_fill("{{v}}{{v}}{{v}}", &bv, false);
    CHECK(got && strlen(got) == 3 * big, "under the cap: filled");
    free(got);
    got = tmpl_fill("{{v}}{{v}}{{v}}{{v}}{{v}}", &bv, false);
    CHECK(got == NULL, "over TMPL_FILLED_MAX: NULL");
    free(bigv);
    json_object_put(bd);

    char *e = tmpl_escape_html("a<b>&\"'");
    CHECK_STR(e, "a&lt;b&gt;&amp;&quot;&#39;", "escape_html");
    free(e);
    json_object_put(data);
    json_object_put(defaults);
    return test_done();
}
