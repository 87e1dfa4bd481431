/* loop_mock.c - the deterministic mock FeedbackLoop.
 *
 * Settings: delivered, spam, opened, read (rates in [0, 1]; delivered +
 * spam <= 1). For a copy, h = FNV-1a 64 of its Message-ID (with the angle
 * brackets) and three uniform numbers u = ((h >> s) & 0xffff) / 65536 for
 * s = 0, 16, 32:
 *   placement: u0 < delivered -> inbox, u0 < delivered + spam -> spam,
 *              else not found (never arrives)
 *   opened:    inbox and u16 < opened, from its second check on
 *   read:      opened and u32 < read, from its third check on
 * so a test can compute every answer, and stats progress over rounds. No
 * state, no I/O: any thread.
 */
#include "feedback_loop.h"
#include "errbuf.h"
#include "jsonx.h"
#include "xalloc.h"

#include <stdio.h>
#include <stdlib.h>

struct mock {
    double delivered, spam, opened, read;
};

static int rate(json_object *s, const char *key, double def, double *out, char *errbuf,
                size_t errlen)
{
    json_object *v;
    *out = def;
    if (!s || !json_object_object_get_ex(s, key, &v) || json_object_is_type(v, json_type_null))
        return 0;
    if (!json_object_is_type(v, json_type_double) && !json_object_is_type(v, json_type_int)) {
        errbuf_set(errbuf, errlen, "field '%s' must be a number", key);
        return -1;
    }
    *out = json_object_get_double(v);
    if (!(*out >= 0 && *out <= 1)) {
        errbuf_set(errbuf, errlen, "field '%s' must be between 0 and 1", key);
        return -1;
    }
    return 0;
}

static void *mock_create(const char *domain, json_object *settings, char *errbuf, size_t errlen)
{
    (void)domain;
    static const char *const keys[] = {"loop", "delivered", "spam", "opened", "read", NULL};
    struct mock m;
    if ((settings && jsonx_check_keys(settings, keys, errbuf, errlen) != 0) ||
        rate(settings, "delivered", 0.8, &m.delivered, errbuf, errlen) != 0 ||
        rate(settings, "spam", 0.1, &m.spam, errbuf, errlen) != 0 ||
        rate(settings, "opened", 0.5, &m.opened, errbuf, errlen) != 0 ||
        rate(settings, "read", 0.2, &m.read, errbuf, errlen) != 0)
        return NULL;
    if (m.delivered + m.spam > 1.0 + 1e-9) {
        errbuf_set(errbuf, errlen, "delivered + spam must not exceed 1");
        return NULL;
    }
    struct mock *p = xmalloc(sizeof *p);
    *p = m;
    return p;
}

static uint64_t fnv1a64(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

static int mock_check(void *loop, struct fl_copy *copies, size_t n, char *errbuf, size_t errlen)
{
    (void)errbuf;
    (void)errlen;
    const struct mock *m = loop;
    for (size_t i = 0; i < n; i++) {
        struct fl_copy *c = &copies[i];
        uint64_t h = fnv1a64(c->message_id);
        double u0 = (double)(h & 0xffff) / 65536.0;
        double u16 = (double)((h >> 16) & 0xffff) / 65536.0;
        double u32 = (double)((h >> 32) & 0xffff) / 65536.0;
        c->placement = u0 < m->delivered             ? FL_INBOX
                       : u0 < m->delivered + m->spam ? FL_SPAM
                                                     : FL_NOT_FOUND;
        c->opened = c->placement == FL_INBOX && u16 < m->opened && c->rounds >= 1;
        c->read = c->opened && u32 < m->read && c->rounds >= 2;
    }
    return 0;
}

static void mock_destroy(void *loop)
{
    free(loop);
}

const struct feedback_loop_ops loop_mock_ops = {
    .name = "mock",
    .create = mock_create,
    .check = mock_check,
    .destroy = mock_destroy,
};
