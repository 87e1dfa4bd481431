/* dblock.h - one process per SQLite database.
 *
 * SQLite lets several processes open one file, but the services assume
 * they are its only writer (a start-up releases the leases of in-flight
 * copies, the health store splits batches over its files). dblock_acquire
 * takes an exclusive flock(2) on "<db_path>.lock" (created 0600, holding
 * the owner's pid) for as long as the process lives, before the store is
 * opened. A separate file, because closing any descriptor of the database
 * itself would drop SQLite's own POSIX locks. Main thread, at start-up.
 */
#ifndef DBLOCK_H
#define DBLOCK_H

#include <stddef.h>

/* dblock_acquire - the lock's descriptor (keep it open), or -1 with a
 * message naming the path and the holder's pid when another process has
 * it, or when the lock file cannot be created */
int dblock_acquire(const char *db_path, char *errbuf, size_t errlen);
/* dblock_release - drop the lock (fd < 0: no-op); the file stays */
void dblock_release(int fd);

#endif
