/* store.h - the warmup service's SQLite store: schema, users, outbox rows.
 *
 * Owns two connections to DB_PATH: a writer (one transaction at a time,
 * behind w_lock) and a reader (behind r_lock) so that listings never wait
 * for a long import batch under WAL. Every write that has an event writes
 * its outbox row in the same transaction: a committed change always has
 * its event. Thread-safe: any thread may call any function.
 */
#ifndef STORE_H
#define STORE_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;

struct user_reg {
    const char *name;
    const char *email_id; /* normalised address */
    const char *domain;
    const char *created_at; /* RFC 3339 */
    const char *event;      /* user.registered JSON for the outbox */
};

enum { STORE_INSERTED = 0, STORE_DUPLICATE = 1 };

/* store_open - open and migrate; NULL with a message on failure */
struct store *store_open(const char *path, char *errbuf, size_t errlen);
void store_free(struct store *s);

/* store_register_batch - insert users and, for each new one, its event
 * (topic, key = domain) in ONE transaction. result[i] is STORE_INSERTED or
 * STORE_DUPLICATE (already registered, or earlier in the same batch).
 * 0 on commit; -1 (rolled back, nothing written) on a database error. */
int store_register_batch(struct store *s, const struct user_reg *users, size_t n, const char *topic,
                         int *result);

/* store_list_users - [{"name","email_id","created_at"}] ordered by
 * registration; caller puts the array. NULL on error. */
json_object *store_list_users(struct store *s, int64_t limit, int64_t offset);

/* store_email_ids_page - up to max addresses with row id > *after, in id
 * order; calls fn for each and advances *after. Returns the count, -1 on
 * error. Keyset paging keeps a full listing's memory bounded. */
int store_email_ids_page(struct store *s, int64_t *after, int max,
                         void (*fn)(void *arg, const char *email_id), void *arg);

/* store_ping - the reader can run a query */
bool store_ping(struct store *s);
int64_t store_user_count(struct store *s);

#endif
