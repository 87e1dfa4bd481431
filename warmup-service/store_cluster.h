/* store_cluster.h - what several warmup-service instances on one
 * PostgreSQL database share (DESIGN 9.6), in store_cluster.c: each
 * instance's heartbeat (the instances table), the release of a dead
 * instance's leases, the sending controls and suppression changes other
 * instances made. On SQLite one process owns the database (dblock.h):
 * these answer at once (one live instance, nothing to release).
 *
 * The functions use a connection of their own (the cluster thread's,
 * cluster.h), so a heartbeat never waits behind the sender's writes. */
#ifndef STORE_CLUSTER_H
#define STORE_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;

/* an instance whose heartbeat is older than this is dead: its leases are
 * released for the others to claim */
#define STORE_DEAD_MS 10000

/* store_cluster_beat - this instance seen at now_ms; *live: the instances
 * seen within STORE_DEAD_MS (this one included); *supp_version: a number
 * that moves whenever any instance adds or removes a suppression. 0 or -1. */
int store_cluster_beat(struct store *s, int64_t now_ms, int *live, int64_t *supp_version);

/* store_release_dead - the leases of instances not seen within
 * STORE_DEAD_MS (and leases naming none) back to their queues;
 * *released: how many. 0 or -1. */
int store_release_dead(struct store *s, int64_t now_ms, int64_t *released);

/* store_cluster_leave - this instance's heartbeat removed (a clean stop:
 * the others count one fewer at once). */
void store_cluster_leave(struct store *s);

/* store_supp_moved - suppressions changed elsewhere: the next check of a
 * claimed copy reads the list again (store_suppressed_since) */
void store_supp_moved(struct store *s);

/* the sending controls of one email with copies left */
struct email_control {
    int64_t id;
    bool paused;
    int tpm;
};
/* store_email_controls - the controls of the emails with copies left (at
 * most max), into out; *n how many. 0 or -1. */
int store_email_controls(struct store *s, struct email_control *out, size_t max, size_t *n);

/* store_cluster_try - a session lock named key, for work one instance at
 * a time must do (the archiver); false when another instance holds it (or
 * the database is unreachable). Always true on SQLite. */
bool store_cluster_try(struct store *s, int64_t key);
void store_cluster_release(struct store *s, int64_t key);
#define STORE_LOCK_ARCHIVE 0x7761726361726368LL

/* store_instance - this process's name in leases and heartbeats */
const char *store_instance(const struct store *s);

#endif
