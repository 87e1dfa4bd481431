/* hstore_delta.c - see hstore_delta.h */
#include "hstore_delta.h"
#include "xalloc.h"

#include <stdlib.h>
#include <string.h>

#define HOUR_MS INT64_C(3600000)

enum fl_placement hstore_placement_after(const struct hstore_copy *x)
{
    return x->fl.rescued || x->old_rescued ? FL_SPAM : x->fl.placement;
}

bool hstore_check_outcome(const struct hstore_copy *x, enum fl_placement *p, bool *opened,
                          bool *read, bool *rescued)
{
    if (x->fl.placement == FL_UNKNOWN && !x->fl.rescued)
        return false;
    *p = hstore_placement_after(x);
    *opened = x->fl.opened || x->old_opened;
    *read = x->fl.read || x->old_read;
    *rescued = x->fl.rescued || x->old_rescued;
    if (*p == FL_UNCHECKED) /* keeps opened and read as they were */
        *opened = x->old_opened, *read = x->old_read;
    return true;
}

void hstore_delta_check(struct hstore_delta *d, const struct hstore_copy *x, enum fl_placement p,
                        bool opened, bool read, bool rescued)
{
    d->delivered += (p == FL_INBOX) - (x->old_placement == FL_INBOX);
    d->spam += (p == FL_SPAM) - (x->old_placement == FL_SPAM);
    d->unchecked += (p == FL_UNCHECKED) - (x->old_placement == FL_UNCHECKED);
    d->opened += opened - x->old_opened;
    d->read += read - x->old_read;
    d->rescued += rescued - x->old_rescued;
}

void han_add_check(struct han_batch *b, const struct hstore_copy *x, enum fl_placement p,
                   bool opened, bool read)
{
    int64_t t = x->fl.sent_at_ms;
    han_add(b, x->series, t, HAN_DELIVERED, (p == FL_INBOX) - (x->old_placement == FL_INBOX));
    han_add(b, x->series, t, HAN_SPAM, (p == FL_SPAM) - (x->old_placement == FL_SPAM));
    han_add(b, x->series, t, HAN_OPENED, opened - x->old_opened);
    han_add(b, x->series, t, HAN_READ, read - x->old_read);
}

void han_init(struct han_batch *b)
{
    memset(b, 0, sizeof *b);
    b->cap = 8;
    b->v = xcalloc(b->cap, sizeof *b->v);
    b->mask = 2 * b->cap - 1;
    b->slot = xcalloc(b->mask + 1, sizeof *b->slot);
}

void han_cleanup(struct han_batch *b)
{
    free(b->v);
    free(b->slot);
    b->v = NULL;
    b->slot = NULL;
    b->n = 0;
}

static uint64_t cell_hash(int64_t series, int64_t hour)
{
    return ((uint64_t)series * 0x9E3779B97F4A7C15u ^ (uint64_t)hour * 0xC2B2AE3D27D4EB4Fu) >> 17;
}

/* grow - twice the cells, the index rebuilt (slots stay at most half full) */
static void grow(struct han_batch *b)
{
    b->cap *= 2;
    b->v = xreallocarray(b->v, b->cap, sizeof *b->v);
    free(b->slot);
    b->mask = 2 * b->cap - 1;
    b->slot = xcalloc(b->mask + 1, sizeof *b->slot);
    for (size_t k = 0; k < b->n; k++) {
        size_t i = cell_hash(b->v[k].series, b->v[k].hour) & b->mask;
        while (b->slot[i])
            i = (i + 1) & b->mask;
        b->slot[i] = (uint32_t)(k + 1);
    }
}

void han_add(struct han_batch *b, int64_t series, int64_t sent_at_ms, enum hstore_an q, int delta)
{
    if (!series || !delta)
        return;
    int64_t hour = sent_at_ms / HOUR_MS;
    size_t i = cell_hash(series, hour) & b->mask;
    for (; b->slot[i]; i = (i + 1) & b->mask) {
        struct han_cell *c = &b->v[b->slot[i] - 1];
        if (c->series == series && c->hour == hour)
            goto found;
    }
    if (b->n == b->cap) {
        grow(b);
        for (i = cell_hash(series, hour) & b->mask; b->slot[i]; i = (i + 1) & b->mask)
            ;
    }
    b->v[b->n] = (struct han_cell){.series = series, .hour = hour};
    b->slot[i] = (uint32_t)++b->n;
found:;
    struct han_cell *c = &b->v[b->slot[i] - 1];
    c->n[q] += delta;
    if (delta > 0)
        b->entered[q] += delta;
}
