/* users.c - registration validation and the user.registered event. */
#include "users.h"
#include "errbuf.h"
#include "event.h"
#include "timeutil.h"
#include "tmpl.h"
#include "utf8.h"
#include "xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int user_input_make(struct user_input *u, const char *name, const char *address, char *errbuf,
                    size_t errlen)
{
    memset(u, 0, sizeof *u);
    size_t nlen = strlen(name);
    if (nlen == 0) {
        errbuf_set(errbuf, errlen, "name must not be empty");
        return -1;
    }
    if (nlen > USER_NAME_MAX) {
        errbuf_set(errbuf, errlen, "name is longer than %d bytes", USER_NAME_MAX);
        return -1;
    }
    if (!utf8_valid(name, nlen)) {
        errbuf_set(errbuf, errlen, "name is not valid UTF-8");
        return -1;
    }
    if (utf8_has_ctl(name, nlen)) {
        errbuf_set(errbuf, errlen, "name must not contain control characters (CR, LF, ...)");
        return -1;
    }
    char why[128];
    if (addr_parse(address, &u->addr, why, sizeof why) != 0) {
        errbuf_set(errbuf, errlen, "email_id is not a valid address: %s", why);
        return -1;
    }
    memcpy(u->name, name, nlen + 1);
    time_rfc3339_ms(time_now_ms(), u->created_at, sizeof u->created_at);

    struct event_user_registered ev = {
        .address = u->addr.norm,
        .name = u->name,
        .domain = u->addr.domain,
        .at = u->created_at,
    };
    u->event = event_encode_user_registered(&ev);
    return 0;
}

void user_input_cleanup(struct user_input *u)
{
    free(u->event);
    u->event = NULL;
    free(u->attributes);
    u->attributes = NULL;
}

int user_input_attributes(struct user_input *u, json_object *attrs, const char *what, char *errbuf,
                          size_t errlen)
{
    if (!attrs)
        return 0;
    if (!json_object_is_type(attrs, json_type_object)) {
        errbuf_set(errbuf, errlen, "%s must be an object", what);
        return -1;
    }
    json_object_object_foreach(attrs, key, val)
    {
        if (!tmpl_key_ok(key) || tmpl_builtin(key)) {
            errbuf_set(errbuf, errlen,
                       "%s: '%.64s' is not a usable key (1-%d of A-Z a-z 0-9 _ - ., "
                       "not name or email_id)",
                       what, key, TMPL_KEY_MAX);
            return -1;
        }
        json_type t = json_object_get_type(val);
        if (t == json_type_object || t == json_type_array) {
            errbuf_set(errbuf, errlen, "%s: '%s' must be a string, number, boolean or null", what,
                       key);
            return -1;
        }
    }
    const char *text = json_object_to_json_string_ext(attrs, JSON_C_TO_STRING_PLAIN);
    size_t n = strlen(text);
    if (n > USER_ATTRIBUTES_MAX) {
        errbuf_set(errbuf, errlen, "%s are %zu bytes as JSON, more than %d", what, n,
                   USER_ATTRIBUTES_MAX);
        return -1;
    }
    free(u->attributes);
    u->attributes = xstrdup(text);
    return 0;
}

struct user_reg user_input_reg(const struct user_input *u)
{
    struct user_reg r = {
        .name = u->name,
        .address = u->addr.norm,
        .domain = u->addr.domain,
        .created_at = u->created_at,
        .event = u->event,
        .attributes = u->attributes,
    };
    return r;
}
