/* outbox_pg.h - the outbox publisher's PostgreSQL side (private to
 * outbox.c): several publishers, one per service instance, drain one
 * shared outbox table.
 *
 * A row is taken by a publisher before it is produced: its lease_owner is
 * set to the publisher's owner name (client id, host, pid and a random
 * tag, new at every start) by one statement that picks free rows with
 * FOR UPDATE SKIP LOCKED, so two publishers never take the same row and
 * never wait for each other. A taken row stays the owner's until it is
 * deleted (delivered) or released. Each publisher writes a heartbeat row
 * in outbox_publishers every second; any publisher deletes the heartbeat
 * rows older than OUTBOX_PG_TTL_MS and releases their rows in the same
 * transaction, so the rows of a publisher killed with -9 are produced by
 * the others a few seconds later. A claim holds its own heartbeat row FOR
 * SHARE, so no row is ever taken for an owner whose heartbeat is gone.
 * Times are the server's clock (the instances' clocks may differ).
 *
 * A failed statement makes the next call check the connection (sqldb_ok:
 * reset once), at most once per second, logging the loss and the return
 * once each.
 *
 * Threads: the publisher thread only. Owns its connection.
 */
#ifndef OUTBOX_PG_H
#define OUTBOX_PG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OUTBOX_PG_TTL_MS 5000  /* a heartbeat older than this: the publisher is dead */
#define OUTBOX_PG_BEAT_MS 1000 /* heartbeat and reap period */

struct outbox_pg;

/* a row handed to the publisher; key may be NULL; the strings are valid
 * during the call only */
typedef void (*outbox_pg_row_fn)(void *arg, int64_t id, const char *topic, const char *key,
                                 const char *value);

/* outbox_pg_open - connect to url and write the first heartbeat; the
 * outbox tables must exist. NULL with a message (never the password). */
struct outbox_pg *outbox_pg_open(const char *url, const char *client_id, char *errbuf,
                                 size_t errlen);
/* outbox_pg_close - release this publisher's rows and heartbeat, close;
 * NULL no-op */
void outbox_pg_close(struct outbox_pg *g);
const char *outbox_pg_owner(const struct outbox_pg *g);

/* outbox_pg_claim - take up to limit free rows, hand them to fn in id
 * order; how many were taken, or -1 */
int outbox_pg_claim(struct outbox_pg *g, int limit, outbox_pg_row_fn fn, void *arg);
/* outbox_pg_reread - hand row id to fn again if it is still ours: 1, 0
 * when it is not (deleted, or released and perhaps taken by another), -1
 * on error */
int outbox_pg_reread(struct outbox_pg *g, int64_t id, outbox_pg_row_fn fn, void *arg);
/* outbox_pg_delete - delete these (delivered) rows; 0 or -1 */
int outbox_pg_delete(struct outbox_pg *g, const int64_t *ids, size_t n);
/* outbox_pg_count - rows in the table, or -1 */
int64_t outbox_pg_count(struct outbox_pg *g);
/* outbox_pg_release - every row this publisher holds is free again */
void outbox_pg_release(struct outbox_pg *g);
/* outbox_pg_tick - heartbeat, then release dead publishers' rows, when
 * due; true when this publisher's own heartbeat had been removed (its
 * rows were released: what it still has queued may be taken by another) */
bool outbox_pg_tick(struct outbox_pg *g);
/* outbox_pg_due_ms - milliseconds until the next tick is due */
int outbox_pg_due_ms(const struct outbox_pg *g, int64_t now);

#endif
