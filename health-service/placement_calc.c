/* placement_calc.c - placement pairs, their changes and the providers'
 * report (placement_calc.h). Pure; the inputs hold a row per (identity,
 * domain) and per (domain, second), so everything here is small next to
 * the copies the store summed. */
#include "placement_calc.h"
#include "providers.h"
#include "xalloc.h"

#include <stdlib.h>
#include <string.h>

const double placement_buckets[PLACEMENT_NBUCKETS] = {10,   30,   60,   120,   300,  600,
                                                      1800, 3600, 7200, 21600, 86400};

/* nullcmp - strcmp with NULL before every string */
static int nullcmp(const char *a, const char *b)
{
    if (!a || !b)
        return (a != NULL) - (b != NULL);
    return strcmp(a, b);
}

static int pair_cmp(const struct placement_pair *a, const struct placement_pair *b)
{
    int c = nullcmp(a->identity, b->identity);
    return c ? c : strcmp(a->provider, b->provider);
}

static int pair_qsort(const void *a, const void *b)
{
    return pair_cmp(a, b);
}

static void counts_add(struct placement_counts *to, const struct placement_counts *x)
{
    to->copies += x->copies;
    to->checked += x->checked;
    to->inbox += x->inbox;
    to->spam += x->spam;
    to->bounced += x->bounced;
    to->complained += x->complained;
}

/* counts_eq - the same summary (copies not yet checked are not in one) */
static bool counts_eq(const struct placement_counts *a, const struct placement_counts *b)
{
    return a->checked == b->checked && a->inbox == b->inbox && a->spam == b->spam &&
           a->bounced == b->bounced && a->complained == b->complained;
}

static struct placement_pair pair_copy(const struct placement_pair *x)
{
    struct placement_pair c = *x;
    c.identity = x->identity ? xstrdup(x->identity) : NULL;
    c.provider = xstrdup(x->provider);
    return c;
}

void placement_pairs_free(struct placement_pair *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++) {
        free(v[i].identity);
        free(v[i].provider);
    }
    free(v);
}

void placement_group(const struct hstore_placement_row *rows, size_t n, const struct providers *p,
                     bool by_identity, struct placement_pair **out, size_t *nout)
{
    /* borrowed strings first, sorted, merged; copied at the end */
    struct placement_pair *v = xcalloc(n ? n : 1, sizeof *v);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        const struct hstore_placement_row *r = &rows[i];
        if (by_identity && !r->identity)
            continue;
        v[m++] = (struct placement_pair){
            .identity = by_identity ? r->identity : NULL,
            .provider = (char *)providers_name(p, r->domain),
            .n = {.copies = r->copies,
                  .checked = r->checked,
                  .inbox = r->inbox,
                  .spam = r->spam,
                  .bounced = r->bounced,
                  .complained = r->complained},
        };
    }
    qsort(v, m, sizeof *v, pair_qsort);
    *out = xcalloc(m ? m : 1, sizeof **out);
    *nout = 0;
    for (size_t i = 0; i < m; i++) {
        if (*nout && pair_cmp(&(*out)[*nout - 1], &v[i]) == 0) {
            counts_add(&(*out)[*nout - 1].n, &v[i].n);
            continue;
        }
        (*out)[(*nout)++] = pair_copy(&v[i]);
    }
    free(v);
}

void placement_diff(const struct placement_pair *last, size_t nlast,
                    const struct placement_pair *cur, size_t ncur, struct placement_pair **out,
                    size_t *nout)
{
    *out = xcalloc(nlast + ncur ? nlast + ncur : 1, sizeof **out);
    *nout = 0;
    size_t i = 0, j = 0;
    while (i < nlast || j < ncur) {
        int c = i == nlast ? 1 : j == ncur ? -1 : pair_cmp(&last[i], &cur[j]);
        if (c < 0) { /* gone from the window: once more, with nothing */
            static const struct placement_counts zero;
            struct placement_pair g = pair_copy(&last[i++]);
            g.quiet = counts_eq(&g.n, &zero);
            g.n = zero;
            g.gone = true;
            (*out)[(*nout)++] = g;
        } else if (c > 0) {
            (*out)[(*nout)++] = pair_copy(&cur[j++]);
        } else {
            if (!counts_eq(&last[i].n, &cur[j].n))
                (*out)[(*nout)++] = pair_copy(&cur[j]);
            i++;
            j++;
        }
    }
}

void placement_commit(struct placement_pair **last, size_t *nlast, const struct placement_pair *c)
{
    size_t lo = 0, hi = *nlast;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (pair_cmp(&(*last)[mid], c) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    bool found = lo < *nlast && pair_cmp(&(*last)[lo], c) == 0;
    if (found && c->gone) {
        free((*last)[lo].identity);
        free((*last)[lo].provider);
        memmove(&(*last)[lo], &(*last)[lo + 1], (*nlast - lo - 1) * sizeof **last);
        (*nlast)--;
    } else if (found) {
        (*last)[lo].n = c->n;
    } else if (!c->gone) {
        *last = xreallocarray(*last, *nlast + 1, sizeof **last);
        memmove(&(*last)[lo + 1], &(*last)[lo], (*nlast - lo) * sizeof **last);
        (*last)[lo] = pair_copy(c);
        (*nlast)++;
    }
}

/* a delay row under its provider */
struct pdelay {
    const char *provider;
    int64_t delay_s, count;
};

static int pdelay_qsort(const void *a, const void *b)
{
    const struct pdelay *x = a, *y = b;
    int c = strcmp(x->provider, y->provider);
    if (c)
        return c;
    return (x->delay_s > y->delay_s) - (x->delay_s < y->delay_s);
}

/* percentile - the smallest delay of d[0, n) (sorted) not exceeded by at
 * least pct% of the total copies */
static int64_t percentile(const struct pdelay *d, size_t n, int64_t total, int pct)
{
    int64_t rank = (total * pct + 99) / 100, cum = 0;
    if (rank < 1)
        rank = 1;
    for (size_t i = 0; i < n; i++) {
        cum += d[i].count;
        if (cum >= rank)
            return d[i].delay_s;
    }
    return n ? d[n - 1].delay_s : 0;
}

/* report_delays - r's time to inbox from its delays d[0, n) (sorted) */
static void report_delays(struct provider_report *r, const struct pdelay *d, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        r->found += d[i].count;
        for (int b = 0; b < PLACEMENT_NBUCKETS; b++)
            if ((double)d[i].delay_s <= placement_buckets[b])
                r->cumulative[b] += d[i].count;
        r->cumulative[PLACEMENT_NBUCKETS] += d[i].count;
    }
    if (r->found == 0)
        return;
    r->p50 = percentile(d, n, r->found, 50);
    r->p90 = percentile(d, n, r->found, 90);
    r->p99 = percentile(d, n, r->found, 99);
}

void placement_report(const struct hstore_placement_row *rows, size_t n,
                      const struct hstore_delay_row *delays, size_t nd, const struct providers *p,
                      struct provider_report **out, size_t *nout)
{
    struct placement_pair *g;
    size_t ng;
    placement_group(rows, n, p, false, &g, &ng);
    struct pdelay *d = xcalloc(nd ? nd : 1, sizeof *d);
    for (size_t i = 0; i < nd; i++)
        d[i] = (struct pdelay){.provider = providers_name(p, delays[i].domain),
                               .delay_s = delays[i].delay_s,
                               .count = delays[i].count};
    qsort(d, nd, sizeof *d, pdelay_qsort);
    *out = xcalloc(ng ? ng : 1, sizeof **out);
    *nout = ng;
    size_t at = 0;
    for (size_t i = 0; i < ng; i++) {
        struct provider_report *r = &(*out)[i];
        r->provider = g[i].provider; /* moved */
        g[i].provider = NULL;
        r->n = g[i].n;
        while (at < nd && strcmp(d[at].provider, r->provider) < 0)
            at++; /* delays of a provider without counts: none expected */
        size_t end = at;
        while (end < nd && strcmp(d[end].provider, r->provider) == 0)
            end++;
        report_delays(r, &d[at], end - at);
        at = end;
    }
    free(d);
    placement_pairs_free(g, ng);
}

void provider_reports_free(struct provider_report *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i].provider);
    free(v);
}
