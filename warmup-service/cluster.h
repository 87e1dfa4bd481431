/* cluster.h - the cluster thread: what keeps several warmup-service
 * instances on one PostgreSQL database in step (DESIGN 9.6). Every
 * CLUSTER_BEAT_MS it writes this instance's heartbeat, counts the live
 * instances and gives the sender its share of every TPM, releases the
 * leases of dead instances (their copies are claimed by the live ones),
 * hands the sender the pause and rate limit of every email with copies
 * left as the database has them (set through any instance) and tells the
 * store when another instance changed the suppression list.
 *
 * On SQLite (one process per database) no thread is started.
 * Owns: its thread. cluster_start from main; cluster_stop joins. */
#ifndef CLUSTER_H
#define CLUSTER_H

#include <stdbool.h>

struct store;
struct sender;
struct cluster;

#define CLUSTER_BEAT_MS 1000

/* cluster_start - the thread, after one heartbeat (so the instance counts
 * before its first claim); NULL on SQLite (nothing to do) or when the
 * thread cannot start (logged) */
struct cluster *cluster_start(struct store *st, struct sender *sender, bool pg);
/* cluster_stop - end the thread and free; NULL is a no-op */
void cluster_stop(struct cluster *c);

#endif
