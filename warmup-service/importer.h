/* importer.h - the background CSV importer: one thread that takes the
 * queued imports (a campaign's uploaded list, a /users/import?async=1
 * body spooled to a file) in id order and streams each through the CSV
 * parser in bounded memory, committing IMPORTER_BATCH rows per
 * transaction with the import's progress (imports row: counters, the
 * first IMPORTER_MAX_REPORTED invalid lines, resume_at). An import cut by
 * a stop or a crash resumes after its last committed batch.
 *
 * Owned by main: importer_start after the store, uploads, outbox and
 * sender; importer_stop before them (it ends between two batches).
 * importer_notify may be called from any thread.
 */
#ifndef IMPORTER_H
#define IMPORTER_H

#include "users.h"

#include <stddef.h>

#define IMPORTER_BATCH 1000
#define IMPORTER_MAX_REPORTED 1000

struct app;
struct importer;

struct importer *importer_start(struct app *app, char *errbuf, size_t errlen);
/* importer_notify - an import was queued */
void importer_notify(struct importer *im);
/* importer_stop - end the thread after the current batch; NULL no-op */
void importer_stop(struct importer *im);

/* import_users_commit - register n validated users (attrs[i]: their
 * attributes' JSON text or NULL) exactly as /register does, in ONE
 * transaction, with metrics and notices (outbox, sender). *added and
 * *dups counted. 0 or -1 (nothing stored). Any thread; shared by the
 * direct and the background import. */
int import_users_commit(struct app *app, const struct user_input *u, char *const *attrs, size_t n,
                        long *added, long *dups);

#endif
