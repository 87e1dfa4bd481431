/* hstore_pg_int.h - private to the PostgreSQL backend of the health store
 * (hstore_pg.h), shared by its files only:
 *   hstore_pg.c          schema and migrations, open and free, the ops
 *                        table, the shared helpers, the leader lock;
 *   hstore_pg_counters.c the counters' "+ delta" upserts (email_stats,
 *                        domains, analytics) and the text arrays that
 *                        bind a batch's values;
 *   hstore_pg_ingest.c   users and copies (hstore_apply_events);
 *   hstore_pg_rounds.c   feedback-loop rounds and bounce/complaint reports;
 *   hstore_pg_read.c     every read (domains, /mail_stats, placement,
 *                        reconciliation, /analytics).
 * Layers: counters below ingest and rounds; hstore_pg.c names them all.
 *
 * Threads: the writer connection w under w_lock (ingest, rounds, reports),
 * the reader r under r_lock (reads), the leader's l under l_lock. */
#ifndef HSTORE_PG_INT_H
#define HSTORE_PG_INT_H

#include "hstore.h"
#include "buf.h"
#include "hstore_delta.h"
#include "sqldb.h"
#include "sqlarr.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct hpg {
    struct hstore base; /* first */
    pthread_mutex_t w_lock, r_lock;
    struct sqldb *w, *r;
    /* the leader lock: a session advisory lock on a connection of its own
     * (l_lock), opened on first use; held: this instance has it */
    pthread_mutex_t l_lock;
    struct sqldb *l;
    char *url;
    bool held, told; /* told: the state was logged once */
};

static inline struct hpg *hpg(struct hstore *s)
{
    return (struct hpg *)s;
}

/* ---- helpers (hstore_pg.c) ----------------------------------------------- */

/* hpg_lock_reader - r_lock, with the reader reconnected if its connection
 * broke (the failed query before found it: a restarted server costs one
 * error) */
void hpg_lock_reader(struct hpg *s);
void hpg_bind_text_or_null(struct sqldb_stmt *st, int i, const char *v);
/* hpg_col_dup - a copy of column i's text ("" for NULL) */
char *hpg_col_dup(struct sqldb_stmt *st, int i);

/* ---- counters (hstore_pg_counters.c), w_lock held ------------------------ */

/* what a write adds to one email's or one domain's counters */
struct hpg_agg {
    int64_t email_id;
    const char *key; /* the domain; an email's broadcast_id (borrowed) */
    uint64_t h;
    struct hstore_delta d;
    int64_t first_sent; /* ingest: the earliest new copy's sent_at, 0 none */
    bool checked;       /* a round: some copy of the email was checked */
    /* a domain's users registered by the batch, the first's and the
     * last's registration time (borrowed) */
    int64_t users;
    const char *first_user, *last_user;
};

/* the distinct emails or domains of a write, in first-seen order, found
 * through an open-addressing index */
struct hpg_aggs {
    struct hpg_agg *v;
    size_t n, cap;
    uint32_t *slot; /* index + 1 into v, 0 = empty; mask + 1 slots */
    size_t mask;
};

void hpg_aggs_init(struct hpg_aggs *a);
void hpg_aggs_cleanup(struct hpg_aggs *a);
/* hpg_agg_email, hpg_agg_domain - the entry of email_id or domain (which
 * must outlive a), made if new */
struct hpg_agg *hpg_agg_email(struct hpg_aggs *a, int64_t email_id);
struct hpg_agg *hpg_agg_domain(struct hpg_aggs *a, const char *domain);

/* hpg_stats_upsert - every entry of a (emails) added to email_stats (rows
 * made if new) in one statement, in email_id order; checked_at for the
 * entries checked. Sorts a: no lookups after. */
int hpg_stats_upsert(struct hpg *s, struct hpg_aggs *a, int64_t checked_at);
/* hpg_stats_add - d into email_id's counters (row made if new) */
int hpg_stats_add(struct hpg *s, int64_t email_id, const char *broadcast_id, int64_t first_sent,
                  const struct hstore_delta *d, int64_t checked_at);
/* hpg_domains_upsert - every entry of a (domains) added to domains in one
 * statement, in name order: users (last_seen the last one's time),
 * tracked, bounced and the delta's counters; a new row first seen at its
 * first user's time, else now_ms. Sorts a: no lookups after. */
int hpg_domains_upsert(struct hpg *s, struct hpg_aggs *a, int64_t now_ms);
/* hpg_domain_add - d and newly checked into domain's counters (row made if
 * new); round: the domain loop's round time and error too */
int hpg_domain_add(struct hpg *s, const char *domain, const struct hstore_delta *d, int64_t checked,
                   bool round, int64_t now_ms, const char *error);
/* hpg_an_flush - b's cells into analytics in one statement, in key order */
int hpg_an_flush(struct hpg *s, struct han_batch *b);

/* ---- the ops (each as hstore.h's function of the same name) --------------- */

int hpg_apply_events(struct hstore *s, const struct user_event *users, size_t nu,
                     const struct copy_event *copies, size_t nc, size_t *new_users,
                     size_t *new_copies);
int hpg_open_copies(struct hstore *s, const char *domain, int64_t since_ms, size_t max,
                    struct hstore_copy **out, size_t *n);
int hpg_apply_checks(struct hstore *s, const char *domain, const struct hstore_copy *c, size_t n,
                     int64_t now_ms, const char *error, bool domain_round);
int hpg_apply_feedback(struct hstore *s, const char *message_id, const struct hstore_feedback *f,
                       bool *changed);
int hpg_domains(struct hstore *s, struct hstore_domain **out, size_t *n);
int64_t hpg_domain_count(struct hstore *s);
int hpg_domain_placement(struct hstore *s, const char *domain, struct hplacement *out);
int hpg_domain_names(struct hstore *s, char ***names, size_t *n);
int hpg_stats_email(struct hstore *s, int64_t email_id, const char *broadcast_id,
                    struct hstore_stats *out);
int hpg_stats_copy(struct hstore *s, const char *message_id, struct hstore_stats *out);
int hpg_all_stats(struct hstore *s, int64_t limit, int64_t offset, struct hstore_stats **out,
                  size_t *n);
int64_t hpg_tracked_count(struct hstore *s);
int hpg_placement_counts(struct hstore *s, int64_t since_ms, struct hstore_placement_row **out,
                         size_t *n);
int hpg_inbox_delays(struct hstore *s, int64_t since_ms, struct hstore_delay_row **out, size_t *n);
int hpg_reconcile(struct hstore *s, int64_t email_id, int64_t window_start_ms,
                  struct hstore_recon *out);
int hpg_analytics(struct hstore *s, const struct hstore_an_query *q, struct hstore_an_row **out,
                  size_t *n);

#endif
