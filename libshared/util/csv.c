/* csv.c - streaming RFC 4180 CSV parser.
 *
 * A byte-at-a-time state machine, so chunk boundaries never matter. The
 * parser owns one record buffer (all fields of the current record, each
 * NUL-terminated, at most CSV_MAX_FIELDS * (CSV_MAX_FIELD + 1) bytes) and
 * nothing else: memory is bounded whatever the input.
 *
 * Errors. "field too long", "too many fields" and "NUL byte in field" leave
 * the record's framing intact: the parser stops storing data but keeps
 * following quotes, so the record ends at the next line end outside
 * quotes. "quote inside unquoted field" and "characters after closing
 * quote" break the framing: the rest of the physical line is dropped. The
 * first error of a record wins, except at end of input inside quotes,
 * which is always "unterminated quoted field". An error record is reported
 * once, when the record ends, with nfields == 0.
 *
 * A CR outside quotes ends the record only when an LF follows (or at end of
 * input); a lone CR is field data. Line numbers count every LF, including
 * those inside quoted fields and in skipped lines.
 *
 * The callback's fields array is always NULL-terminated (fields[nfields] ==
 * NULL, so fields[0] == NULL for an error record). When the callback
 * returns non-zero, csv_feed returns at once and the rest of that chunk is
 * not parsed.
 *
 * One thread at a time per parser.
 */
#include "csv.h"
#include "xalloc.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#define CSV_RECORD_MAX ((size_t)CSV_MAX_FIELDS * (CSV_MAX_FIELD + 1))

enum csv_state {
    ST_RECORD,   /* nothing of a record seen yet */
    ST_FIELD,    /* at the start of a field after a comma */
    ST_UNQUOTED, /* inside an unquoted field */
    ST_QUOTED,   /* inside a quoted field */
    ST_QUOTE,    /* a quote inside a quoted field: closing, or the first of "" */
    ST_CR,       /* CR outside quotes: LF ends the record, anything else is data */
    ST_QUOTE_CR, /* CR right after a closing quote: LF must follow */
    ST_SKIP,     /* framing lost: drop bytes up to the next LF */
};

struct csv_parser {
    csv_record_fn fn;
    void *arg;
    enum csv_state state;
    int bom;           /* BOM bytes matched so far; 3 once the BOM is decided */
    long line;         /* current physical line, 1-based */
    long rec_line;     /* line the current record started on */
    int has_data;      /* the record has content (not an empty line) */
    const char *err;   /* first error of the current record */
    char *buf;         /* fields of the current record, each NUL-terminated */
    size_t len, alloc; /* bytes used / allocated in buf */
    size_t flen;       /* length of the current field */
    size_t nfields;    /* completed fields */
    size_t off[CSV_MAX_FIELDS];
    const char *ptrs[CSV_MAX_FIELDS + 1];
};

static const unsigned char bom_bytes[3] = {0xef, 0xbb, 0xbf};

struct csv_parser *csv_new(csv_record_fn fn, void *arg)
{
    assert(fn);
    struct csv_parser *p = xcalloc(1, sizeof *p);
    p->fn = fn;
    p->arg = arg;
    p->state = ST_RECORD;
    p->line = 1;
    p->rec_line = 1;
    return p;
}

void csv_free(struct csv_parser *p)
{
    if (!p)
        return;
    free(p->buf);
    free(p);
}

/* reset_record - forget the current record; keeps the buffer for reuse */
static void reset_record(struct csv_parser *p)
{
    p->state = ST_RECORD;
    p->has_data = 0;
    p->err = NULL;
    p->len = 0;
    p->flen = 0;
    p->nfields = 0;
}

/* set_error - remember the record's first error */
static void set_error(struct csv_parser *p, const char *err)
{
    if (!p->err)
        p->err = err;
}

/* store - append one byte to the record buffer (room is checked by callers) */
static void store(struct csv_parser *p, char c)
{
    if (p->len == p->alloc) {
        size_t na = p->alloc ? p->alloc * 2 : 256;
        if (na > CSV_RECORD_MAX)
            na = CSV_RECORD_MAX;
        assert(na > p->len);
        p->buf = xrealloc(p->buf, na);
        p->alloc = na;
    }
    p->buf[p->len++] = c;
}

/* put - add a byte of field data, unless the record is already in error */
static void put(struct csv_parser *p, unsigned char c)
{
    if (p->err)
        return;
    if (c == '\0') {
        set_error(p, "NUL byte in field");
        return;
    }
    if (p->flen == CSV_MAX_FIELD) {
        set_error(p, "field too long");
        return;
    }
    store(p, (char)c);
    p->flen++;
}

/* close_field - terminate the current field */
static void close_field(struct csv_parser *p)
{
    store(p, '\0');
    p->off[p->nfields++] = p->len - p->flen - 1;
    p->flen = 0;
}

/* comma - a field separator outside quotes */
static void comma(struct csv_parser *p)
{
    p->state = ST_FIELD;
    if (p->err)
        return;
    if (p->nfields + 1 >= CSV_MAX_FIELDS) {
        set_error(p, "too many fields");
        return;
    }
    close_field(p);
}

/* end_record - hand the finished record (or its error) to the callback;
 * empty lines are dropped */
static int end_record(struct csv_parser *p)
{
    int rc = 0;

    if (p->err) {
        p->ptrs[0] = NULL;
        rc = p->fn(p->arg, p->rec_line, p->ptrs, 0, p->err);
    } else if (p->has_data) {
        close_field(p);
        for (size_t i = 0; i < p->nfields; i++)
            p->ptrs[i] = p->buf + p->off[i];
        p->ptrs[p->nfields] = NULL;
        rc = p->fn(p->arg, p->rec_line, p->ptrs, p->nfields, NULL);
    }
    reset_record(p);
    return rc;
}

/* at_field_start - a byte at the start of a field */
static int at_field_start(struct csv_parser *p, unsigned char c)
{
    if (c == '\r') {
        p->state = ST_CR;
        return 0;
    }
    if (c == '\n')
        return end_record(p);
    p->has_data = 1;
    if (c == '"') {
        p->state = ST_QUOTED;
    } else if (c == ',') {
        comma(p);
    } else {
        p->state = ST_UNQUOTED;
        put(p, c);
    }
    return 0;
}

/* in_unquoted - a byte inside an unquoted field */
static int in_unquoted(struct csv_parser *p, unsigned char c)
{
    if (c == ',') {
        comma(p);
    } else if (c == '\n') {
        return end_record(p);
    } else if (c == '\r') {
        p->state = ST_CR;
    } else if (c == '"') {
        set_error(p, "quote inside unquoted field");
        p->state = ST_SKIP;
    } else {
        put(p, c);
    }
    return 0;
}

/* step - advance the state machine by one byte; 0 or the callback's value */
static int step(struct csv_parser *p, unsigned char c)
{
    if (c == '\n')
        p->line++; /* every LF counts, quoted or skipped; rec_line is already set */

    switch (p->state) {
    case ST_RECORD:
        p->rec_line = p->line;
        if (c == '\n')
            return 0; /* empty line */
        return at_field_start(p, c);
    case ST_FIELD:
        return at_field_start(p, c);
    case ST_CR:
        if (c == '\n')
            return end_record(p);
        /* a lone CR is data: the field goes on unquoted with c */
        p->has_data = 1;
        p->state = ST_UNQUOTED;
        put(p, '\r');
        return in_unquoted(p, c);
    case ST_UNQUOTED:
        return in_unquoted(p, c);
    case ST_QUOTED:
        if (c == '"')
            p->state = ST_QUOTE;
        else
            put(p, c);
        return 0;
    case ST_QUOTE:
        if (c == '"') {
            put(p, c);
            p->state = ST_QUOTED;
        } else if (c == ',') {
            comma(p);
        } else if (c == '\n') {
            return end_record(p);
        } else if (c == '\r') {
            p->state = ST_QUOTE_CR;
        } else {
            set_error(p, "characters after closing quote");
            p->state = ST_SKIP;
        }
        return 0;
    case ST_QUOTE_CR:
        if (c == '\n')
            return end_record(p);
        set_error(p, "characters after closing quote");
        p->state = ST_SKIP;
        return 0;
    case ST_SKIP:
        if (c == '\n')
            return end_record(p);
        return 0;
    }
    return 0;
}

int csv_feed(struct csv_parser *p, const char *data, size_t len)
{
    const unsigned char *s = (const unsigned char *)data;
    int rc;

    for (size_t i = 0; i < len; i++) {
        if (p->bom < 3) {
            if (s[i] == bom_bytes[p->bom]) {
                p->bom++;
                continue;
            }
            /* not a BOM after all: the bytes matched so far are data */
            int matched = p->bom;
            p->bom = 3;
            for (int k = 0; k < matched; k++)
                if ((rc = step(p, bom_bytes[k])) != 0)
                    return rc;
        }
        if ((rc = step(p, s[i])) != 0)
            return rc;
    }
    return 0;
}

int csv_finish(struct csv_parser *p)
{
    if (p->bom < 3) {
        /* input shorter than a BOM: its bytes are data, and hold no LF */
        int matched = p->bom;
        p->bom = 3;
        for (int k = 0; k < matched; k++)
            (void)step(p, bom_bytes[k]);
    }
    switch (p->state) {
    case ST_RECORD:
        return 0;
    case ST_QUOTED:
        p->err = "unterminated quoted field";
        return end_record(p);
    default:
        /* a pending CR is the record's line end */
        return end_record(p);
    }
}
