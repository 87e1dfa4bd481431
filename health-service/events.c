/* events.c - event validation for the consumer. */
#include "events.h"
#include "jsonx.h"
#include "xalloc.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int events_parse_user(const char *value, size_t len, struct user_event *out, char *errbuf,
                      size_t errlen)
{
    json_object *o = NULL;
    const char *type, *email, *name, *domain, *at;
    int64_t v = 0;
    char why[160];
    int rc = -1;
    memset(out, 0, sizeof *out);
    if (!value || len == 0) {
        snprintf(errbuf, errlen, "empty value");
        return -1;
    }
    if (len > EVENT_MAX_BYTES) {
        snprintf(errbuf, errlen, "value of %zu bytes is over the %d-byte limit", len,
                 EVENT_MAX_BYTES);
        return -1;
    }
    if (jsonx_parse_object(value, len, &o, errbuf, errlen) != 0)
        return -1;
    if (jsonx_get_int(o, "v", true, 0, INT32_MAX, &v, NULL, errbuf, errlen) != 0)
        goto out;
    if (v != 1) {
        snprintf(errbuf, errlen, "unknown schema version %lld", (long long)v);
        goto out;
    }
    if (jsonx_get_string(o, "type", true, 64, &type, errbuf, errlen) != 0)
        goto out;
    if (strcmp(type, "user.registered") != 0) {
        snprintf(errbuf, errlen, "unexpected type '%.64s'", type);
        goto out;
    }
    if (jsonx_get_string(o, "email_id", true, 1024, &email, errbuf, errlen) != 0 ||
        jsonx_get_string(o, "name", true, 1024, &name, errbuf, errlen) != 0 ||
        jsonx_get_string(o, "domain", true, 255, &domain, errbuf, errlen) != 0 ||
        jsonx_get_string(o, "at", true, 64, &at, errbuf, errlen) != 0)
        goto out;
    if (addr_parse(email, &out->addr, why, sizeof why) != 0) {
        snprintf(errbuf, errlen, "email_id is invalid: %s", why);
        goto out;
    }
    if (strcmp(out->addr.domain, domain) != 0) {
        snprintf(errbuf, errlen, "domain does not match email_id");
        goto out;
    }
    out->name = xstrdup(name);
    out->at = xstrdup(at);
    rc = 0;
out:
    json_object_put(o);
    return rc;
}

void events_user_cleanup(struct user_event *ev)
{
    free(ev->name);
    free(ev->at);
    ev->name = ev->at = NULL;
}
