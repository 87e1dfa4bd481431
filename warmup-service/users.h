/* users.h - validation of a recipient registration and its event, shared
 * by POST /register and POST /users/import. Pure apart from the clock. */
#ifndef USERS_H
#define USERS_H

#include "addr.h"
#include "store.h"

#include <json-c/json.h>

#include <stddef.h>

#define USER_NAME_MAX 256
#define USER_ATTRIBUTES_MAX 4096 /* a user's attributes as compact JSON, octets */

struct user_input {
    char name[USER_NAME_MAX + 1];
    struct addr addr;
    char created_at[32];
    char *event;      /* user.registered JSON; freed by user_input_cleanup */
    char *attributes; /* compact JSON object or NULL; freed by user_input_cleanup */
};

/* user_input_make - validate name and address, stamp created_at, build the
 * event. 0, or -1 with a reason in errbuf (nothing to clean up then). */
int user_input_make(struct user_input *u, const char *name, const char *address, char *errbuf,
                    size_t errlen);
void user_input_cleanup(struct user_input *u);
/* user_input_attributes - attrs (NULL: none) as u's attributes (what:
 * the field's name in errors, "attributes" or "defaults"): an
 * object whose keys are placeholder keys (tmpl.h) other than name and
 * email_id, whose values are strings, numbers, booleans or null, and
 * whose compact JSON is at most USER_ATTRIBUTES_MAX octets. 0, or -1
 * with the reason in errbuf (u unchanged). */
int user_input_attributes(struct user_input *u, json_object *attrs, const char *what, char *errbuf,
                          size_t errlen);
/* user_input_reg - view of u for store_register_batch (borrows u) */
struct user_reg user_input_reg(const struct user_input *u);

#endif
