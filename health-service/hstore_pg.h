/* hstore_pg.h - the PostgreSQL backend of the health store (hstore_pg.c) */
#ifndef HSTORE_PG_H
#define HSTORE_PG_H

#include "hstore.h"

#include <stddef.h>

/* hstore_pg_open - the store in the database at url (postgres://...),
 * migrated to the latest schema; NULL with the reason (never the
 * password) in errbuf. Free with hstore_free. */
struct hstore *hstore_pg_open(const char *url, char *errbuf, size_t errlen);

#endif
