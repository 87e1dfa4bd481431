/* store_fanout.h - the background fan-out's schema (migration 9). The
 * FANOUT work of issue 20 fills it in. */
#ifndef STORE_FANOUT_H
#define STORE_FANOUT_H

/* 9: background fan-out (to be defined) */
#define STORE_FANOUT_SCHEMA_SQL "SELECT 1;"

#endif
