/* sqlarr.c - PostgreSQL array literals (sqlarr.h) */
#include "sqlarr.h"
#include "sqldb.h"

#include <string.h>

#define ARR_CAP ((size_t)1 << 30)

void sqlarr_init(struct sqlarr *a, size_t hint)
{
    buf_init(&a->b, ARR_CAP);
    buf_reserve(&a->b, hint + 2);
    a->n = 0;
    a->closed = false;
    a->err = buf_appendc(&a->b, '{') != 0;
}

void sqlarr_cleanup(struct sqlarr *a)
{
    buf_cleanup(&a->b);
}

/* sep - the comma before every element but the first; an element after
 * the literal was closed makes it an error */
static void sep(struct sqlarr *a)
{
    if (a->closed || (a->n++ && buf_appendc(&a->b, ',') != 0))
        a->err = true;
}

void sqlarr_text(struct sqlarr *a, const char *v)
{
    if (!v) {
        sqlarr_null(a);
        return;
    }
    sep(a);
    /* quoted, with " and \ escaped: any other octet stands for itself */
    int e = buf_appendc(&a->b, '"');
    while (*v) {
        size_t run = strcspn(v, "\"\\");
        e |= buf_append(&a->b, v, run);
        v += run;
        if (*v) {
            char esc[2] = {'\\', *v++};
            e |= buf_append(&a->b, esc, 2);
        }
    }
    e |= buf_appendc(&a->b, '"');
    if (e)
        a->err = true;
}

void sqlarr_int(struct sqlarr *a, int64_t v)
{
    char d[24], *p = d + sizeof d;
    uint64_t u = v < 0 ? -(uint64_t)v : (uint64_t)v;
    do
        *--p = (char)('0' + u % 10);
    while (u /= 10);
    if (v < 0)
        *--p = '-';
    sep(a);
    if (buf_append(&a->b, p, (size_t)(d + sizeof d - p)) != 0)
        a->err = true;
}

void sqlarr_null(struct sqlarr *a)
{
    sep(a);
    if (buf_append(&a->b, "NULL", 4) != 0)
        a->err = true;
}

int sqlarr_bind(struct sqlarr *a, struct sqldb_stmt *st, int i)
{
    if (a->err || (!a->closed && buf_appendc(&a->b, '}') != 0)) {
        a->err = true;
        return -1;
    }
    a->closed = true;
    sqldb_bind_text(st, i, buf_str(&a->b), (int)a->b.len);
    return 0;
}

void sqlarr_init_all(struct sqlarr *v, int n, size_t hint)
{
    for (int i = 0; i < n; i++)
        sqlarr_init(&v[i], hint);
}

int sqlarr_bind_all(struct sqlarr *v, int n, struct sqldb_stmt *st)
{
    for (int i = 0; i < n; i++)
        if (sqlarr_bind(&v[i], st, i + 1) != 0)
            return -1;
    return 0;
}

void sqlarr_cleanup_all(struct sqlarr *v, int n)
{
    for (int i = 0; i < n; i++)
        sqlarr_cleanup(&v[i]);
}
