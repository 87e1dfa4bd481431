/* store_history.h - the copies' history and archives: schema (migration
 * 10). The HISTORY work of issue 20 fills it in. */
#ifndef STORE_HISTORY_H
#define STORE_HISTORY_H

/* 10: history indexes and archives (to be defined) */
#define STORE_HISTORY_SCHEMA_SQL "SELECT 1;"

#endif
