/* hstore.h - the health service's SQLite store: known users and domains.
 *
 * Writes come only from the consumer thread (one writer connection,
 * w_lock); reads from HTTP threads on a reader connection (r_lock).
 * Applying an event is idempotent: a user.registered for an address
 * already seen changes nothing, so a redelivered event is harmless.
 */
#ifndef HSTORE_H
#define HSTORE_H

#include "events.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct hstore;

struct hstore *hstore_open(const char *path, char *errbuf, size_t errlen);
void hstore_free(struct hstore *s);

/* hstore_apply_users - record the users and their domains in ONE
 * transaction; *added = users not seen before. 0 on commit, -1 (nothing
 * written) on a database error. */
int hstore_apply_users(struct hstore *s, const struct user_event *ev, size_t n, size_t *added);

/* hstore_domains - [{"domain","users","first_seen","last_seen"}] by name;
 * caller puts. NULL on error. */
json_object *hstore_domains(struct hstore *s);
int64_t hstore_domain_count(struct hstore *s);
bool hstore_ping(struct hstore *s);

#endif
