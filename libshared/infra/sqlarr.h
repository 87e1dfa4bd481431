/* sqlarr.h - a PostgreSQL array literal ('{1,"a b",NULL}') built in
 * memory: a batch's values bound as ONE text parameter, cast in the SQL
 * (?1::bigint[], ?2::text[]) and expanded with unnest(), so a batch of N
 * rows is one statement and one round trip instead of N.
 *
 * Owns: its buffer (sqlarr_cleanup). Not thread-safe (one builder, one
 * thread). */
#ifndef SQLARR_H
#define SQLARR_H

#include "buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sqldb_stmt;

struct sqlarr {
    struct buf b;
    size_t n;    /* elements */
    bool err;    /* outgrew its cap (1 GiB) */
    bool closed; /* bound: no more elements */
};

/* sqlarr_init - an empty array, room for about hint octets */
void sqlarr_init(struct sqlarr *a, size_t hint);
void sqlarr_cleanup(struct sqlarr *a);
/* sqlarr_text - v quoted (NULL: a NULL element) */
void sqlarr_text(struct sqlarr *a, const char *v);
void sqlarr_int(struct sqlarr *a, int64_t v);
void sqlarr_null(struct sqlarr *a);
/* sqlarr_bind - close the literal (no element may follow) and bind it as
 * st's parameter i (a stays the owner until st is stepped); it may be
 * bound again, to other statements too; -1 if it outgrew its cap */
int sqlarr_bind(struct sqlarr *a, struct sqldb_stmt *st, int i);

/* the same over v[0..n): each with room for about hint octets; bound as
 * st's parameters 1..n (-1 at the first that outgrew its cap) */
void sqlarr_init_all(struct sqlarr *v, int n, size_t hint);
int sqlarr_bind_all(struct sqlarr *v, int n, struct sqldb_stmt *st);
void sqlarr_cleanup_all(struct sqlarr *v, int n);

#endif
