/* test_loops.c - FEEDBACK_LOOPS_FILE (health-service/loops/loops.c): the
 * built-in entries, a domain's own entry, "default"; a domain or "default"
 * mapped to null has no loop (an entry with ops and settings NULL); an
 * entry that is neither an object nor null is refused, naming the domain. */
#include "loops.h"
#include "log.h"
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* load - the config from text written to a file (NULL: no file); 0 or -1 */
static int load(struct loops_config *c, const char *text, char *err, size_t n)
{
    if (!text)
        return loops_config_load(c, NULL, err, n);
    char path[] = "/tmp/test_loops.XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return -1;
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        unlink(path);
        return -1;
    }
    fputs(text, f);
    fclose(f);
    int rc = loops_config_load(c, path, err, n);
    unlink(path);
    return rc;
}

/* loop_for - the loop name serving domain: "-" no entry, "null" no loop */
static const char *loop_for(const struct loops_config *c, const char *domain)
{
    const struct loop_entry *e = loops_config_for(c, domain);
    if (!e)
        return "-";
    if (!e->ops)
        return e->settings ? "null with settings" : "null";
    return e->ops->name;
}

int main(void)
{
    log_init(LOG_WARN, LOG_TEXT, "test");
    struct loops_config c;
    char err[256] = "";

    CHECK_INT(load(&c, NULL, err, sizeof err), 0, "built-ins without a file");
    CHECK_STR(loop_for(&c, "x.test"), "mock", "built-in: a domain not listed gets default's mock");
    CHECK_STR(loop_for(&c, "Gmail.COM"), "mock", "built-in: gmail.com (any case)");
    loops_config_cleanup(&c);

    CHECK_INT(load(&c, "{\"default\": null}", err, sizeof err), 0, "\"default\": null loads");
    const struct loop_entry *e = loops_config_for(&c, "x.test");
    CHECK(e != NULL && strcmp(e->domain, "default") == 0,
          "\"default\": null: a domain not listed gets the default entry");
    CHECK_STR(loop_for(&c, "x.test"), "null", "  ... without a loop (ops and settings NULL)");
    CHECK_STR(loop_for(&c, "gmail.com"), "mock", "  ... the built-in domains keep theirs");
    loops_config_cleanup(&c);

    CHECK_INT(load(&c,
                   "{\"X.Test\": null, \"gmail.com\": null,"
                   " \"y.test\": {\"loop\": \"mock\", \"delivered\": 0.5}}",
                   err, sizeof err),
              0, "domains mapped to null load");
    e = loops_config_for(&c, "x.test");
    CHECK(e != NULL && strcmp(e->domain, "x.test") == 0, "\"x.test\": null: its own entry");
    CHECK_STR(loop_for(&c, "x.TEST"), "null", "  ... without a loop");
    CHECK_STR(loop_for(&c, "gmail.com"), "null", "a built-in domain mapped to null: no loop");
    CHECK_STR(loop_for(&c, "y.test"), "mock", "a domain listed with a loop keeps it");
    CHECK_STR(loop_for(&c, "z.test"), "mock", "a domain not listed: the built-in default");
    loops_config_cleanup(&c);

    err[0] = '\0';
    CHECK_INT(load(&c, "{\"x.test\": 5}", err, sizeof err), -1, "a number is refused");
    CHECK(strstr(err, "x.test") && strstr(err, "must be an object or null"), err);
    CHECK_INT(load(&c, "{\"x.test\": {\"loop\": \"nope\"}}", err, sizeof err), -1,
              "an unknown loop is refused");
    CHECK(strstr(err, "x.test") && strstr(err, "unknown loop 'nope'"), err);
    return test_done();
}
