/* hstore.c - the store's front: opens the backend and passes each call to
 * its ops (hstore.h); frees what the ops return. Owns nothing of its own;
 * any thread (the backend serialises). */
#include "hstore.h"
#include "hstore_pg.h"
#include "sqldb.h"

#include <stdlib.h>

struct hstore *hstore_open(const char *path, int sqlite_files, char *errbuf, size_t errlen)
{
    if (sqldb_is_url(path))
        return hstore_pg_open(path, errbuf, errlen);
    return hstore_sqlite_open(path, sqlite_files, errbuf, errlen);
}

void hstore_free(struct hstore *s)
{
    if (s)
        s->ops->free(s);
}

int hstore_apply_events(struct hstore *s, const struct user_event *users, size_t nu,
                        const struct copy_event *copies, size_t nc, size_t *new_users,
                        size_t *new_copies)
{
    return s->ops->apply_events(s, users, nu, copies, nc, new_users, new_copies);
}

void hstore_key_copies(struct hstore *s, struct copy_event *copies, size_t n)
{
    if (s->ops->key_copies)
        s->ops->key_copies(s, copies, n);
}

int hstore_domains(struct hstore *s, struct hstore_domain **out, size_t *n)
{
    return s->ops->domains(s, out, n);
}

void hstore_domains_free(struct hstore_domain *d, size_t n)
{
    for (size_t i = 0; d && i < n; i++) {
        free(d[i].domain);
        free(d[i].first_seen);
        free(d[i].last_seen);
        free(d[i].last_error);
    }
    free(d);
}

int64_t hstore_domain_count(struct hstore *s)
{
    return s->ops->domain_count(s);
}

int hstore_domain_placement(struct hstore *s, const char *domain, struct hplacement *out)
{
    return s->ops->domain_placement(s, domain, out);
}

int hstore_domain_names(struct hstore *s, char ***names, size_t *n)
{
    return s->ops->domain_names(s, names, n);
}

bool hstore_ping(struct hstore *s)
{
    return s->ops->domain_count(s) >= 0;
}

bool hstore_leader(struct hstore *s)
{
    return !s->ops->leader || s->ops->leader(s);
}

int hstore_open_copies(struct hstore *s, const char *domain, int64_t since_ms, size_t max,
                       struct hstore_copy **out, size_t *n)
{
    return s->ops->open_copies(s, domain, since_ms, max, out, n);
}

void hstore_copies_free(struct hstore_copy *c, size_t n)
{
    for (size_t i = 0; c && i < n; i++) {
        free(c[i].message_id);
        free(c[i].recipient);
    }
    free(c);
}

int hstore_apply_checks(struct hstore *s, const char *domain, const struct hstore_copy *c, size_t n,
                        int64_t now_ms, const char *error, bool domain_round)
{
    return s->ops->apply_checks(s, domain, c, n, now_ms, error, domain_round);
}

int hstore_stats_email(struct hstore *s, int64_t email_id, const char *broadcast_id,
                       struct hstore_stats *out)
{
    return s->ops->stats_email(s, email_id, broadcast_id, out);
}

int hstore_apply_feedback(struct hstore *s, const char *message_id, const struct hstore_feedback *f,
                          bool *changed)
{
    return s->ops->apply_feedback(s, message_id, f, changed);
}

int hstore_stats_copy(struct hstore *s, const char *message_id, struct hstore_stats *out)
{
    return s->ops->stats_copy(s, message_id, out);
}

void hstore_stats_cleanup(struct hstore_stats *t)
{
    free(t->message_id);
    free(t->recipient);
    free(t->domain);
    t->message_id = t->recipient = t->domain = NULL;
}

int hstore_all_stats(struct hstore *s, int64_t limit, int64_t offset, struct hstore_stats **out,
                     size_t *n)
{
    return s->ops->all_stats(s, limit, offset, out, n);
}

void hstore_stats_free(struct hstore_stats *t, size_t n)
{
    for (size_t i = 0; t && i < n; i++)
        hstore_stats_cleanup(&t[i]);
    free(t);
}

int64_t hstore_tracked_count(struct hstore *s)
{
    return s->ops->tracked_count(s);
}

int hstore_placement_counts(struct hstore *s, int64_t since_ms, struct hstore_placement_row **out,
                            size_t *n)
{
    return s->ops->placement_counts(s, since_ms, out, n);
}

void hstore_placement_rows_free(struct hstore_placement_row *r, size_t n)
{
    for (size_t i = 0; r && i < n; i++) {
        free(r[i].identity);
        free(r[i].domain);
    }
    free(r);
}

int hstore_inbox_delays(struct hstore *s, int64_t since_ms, struct hstore_delay_row **out,
                        size_t *n)
{
    return s->ops->inbox_delays(s, since_ms, out, n);
}

void hstore_delay_rows_free(struct hstore_delay_row *r, size_t n)
{
    for (size_t i = 0; r && i < n; i++)
        free(r[i].domain);
    free(r);
}

int hstore_reconcile(struct hstore *s, int64_t email_id, int64_t window_start_ms,
                     struct hstore_recon *out)
{
    return s->ops->reconcile(s, email_id, window_start_ms, out);
}

void hstore_recon_cleanup(struct hstore_recon *r)
{
    for (size_t i = 0; r->missing_ids && i < r->nmissing_ids; i++)
        free(r->missing_ids[i]);
    free(r->missing_ids);
    r->missing_ids = NULL;
    r->nmissing_ids = 0;
}

int hstore_analytics(struct hstore *s, const struct hstore_an_query *q, struct hstore_an_row **out,
                     size_t *n)
{
    return s->ops->analytics(s, q, out, n);
}

void hstore_set_counted(struct hstore *s, hstore_counted_fn fn, void *arg)
{
    s->counted = fn;
    s->counted_arg = arg;
}

void hstore_counted(struct hstore *s, const int64_t n[HAN_N])
{
    if (!s->counted)
        return;
    for (int i = 0; i < HAN_N; i++)
        if (n[i]) {
            s->counted(s->counted_arg, n);
            return;
        }
}
