/* buf.c - growable capped buffer. Not thread-safe: one owner at a time. */
#include "buf.h"
#include "xalloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void buf_init(struct buf *b, size_t cap)
{
    b->data = NULL;
    b->len = 0;
    b->alloc = 0;
    b->cap = cap;
}

void buf_cleanup(struct buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->alloc = 0;
}

void buf_reset(struct buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void buf_trim(struct buf *b, size_t keep)
{
    if (b->alloc > keep) {
        free(b->data);
        b->data = NULL;
        b->alloc = 0;
    }
    buf_reset(b);
}

/* grow - alloc for at least need octets (need <= cap + 1): doubling from 64 */
static void grow(struct buf *b, size_t need)
{
    size_t na = b->alloc ? b->alloc : 64;
    while (na < need)
        na *= 2;
    if (na > b->cap + 1)
        na = b->cap + 1;
    b->data = xrealloc(b->data, na);
    if (b->alloc == 0)
        b->data[0] = '\0';
    b->alloc = na;
}

void buf_reserve(struct buf *b, size_t n)
{
    if (n > b->cap - b->len)
        n = b->cap - b->len;
    if (b->len + n + 1 > b->alloc)
        grow(b, b->len + n + 1);
}

int buf_append(struct buf *b, const void *data, size_t len)
{
    if (len > b->cap || b->len > b->cap - len) {
        buf_cleanup(b);
        return -1;
    }
    if (b->len + len + 1 > b->alloc)
        grow(b, b->len + len + 1);
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

int buf_appendc(struct buf *b, char c)
{
    return buf_append(b, &c, 1);
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    if ((size_t)n < sizeof small)
        return buf_append(b, small, (size_t)n);
    char *big = xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    int rc = buf_append(b, big, (size_t)n);
    free(big);
    return rc;
}

const char *buf_str(const struct buf *b)
{
    return b->data ? b->data : "";
}

char *buf_steal(struct buf *b)
{
    char *s = b->data ? b->data : xstrdup("");
    b->data = NULL;
    b->len = b->alloc = 0;
    return s;
}
