/* loops.h - which FeedbackLoop serves which domain: the registry of loop
 * types and FEEDBACK_LOOPS_FILE.
 *
 * FEEDBACK_LOOPS_FILE is a JSON object mapping a domain (or "default") to
 * {"loop": "<type>", ...settings of that type}, or to null: no loop for
 * that domain (for "default": for every domain not listed). Built-in
 * entries exist for gmail.com, googlemail.com, yahoo.com, outlook.com,
 * hotmail.com, live.com, icloud.com and "default" (the mock loop); the
 * file replaces them per domain. Loaded once at start-up; read-only
 * afterwards (any thread).
 */
#ifndef LOOPS_H
#define LOOPS_H

#include "feedback_loop.h"

#include <json-c/json.h>
#include <stddef.h>

struct loop_entry {
    char *domain;                        /* lower case, or "default" */
    const struct feedback_loop_ops *ops; /* NULL: no loop (the file said null) */
    json_object *settings;               /* owned (json_object_put); NULL when ops is */
};

struct loops_config {
    struct loop_entry *v;
    size_t n;
};

/* loops_config_load - built-ins, then the file (path may be NULL); every
 * entry's settings are validated by creating (and destroying) a loop for
 * it. -1 with a message naming the domain and field. */
int loops_config_load(struct loops_config *c, const char *path, char *errbuf, size_t errlen);
void loops_config_cleanup(struct loops_config *c);
/* loops_config_for - the entry serving domain (its own, else "default");
 * NULL when neither exists. Its ops may be NULL: the domain has no loop,
 * and callers must check. */
const struct loop_entry *loops_config_for(const struct loops_config *c, const char *domain);

#endif
