/* fuzz_csv.c - the streaming CSV reader (libshared/util/csv.c) on arbitrary
 * bytes.
 *
 * Invariants: the records do not depend on how the input is cut into
 * chunks (all at once, or pieces of 1..16 bytes chosen by the input);
 * fields and records stay within their caps, an error comes with no
 * fields, line numbers never go down; the good records, written back as
 * RFC 4180 (every field quoted, CRLF) and read again, are the same
 * fields.
 */
#include "buf.h"
#include "csv.h"
#include "fuzz.h"
#include "xalloc.h"

#include <stdbool.h>
#include <string.h>

/* every record as text: "line:err" or "line|f1|f2..." with fields escaped,
 * so two runs compare with one strcmp; good records also as CSV */
struct rec_log {
    struct buf all;
    struct buf csv;
    long last_line;
    size_t good;
};

static void log_init(struct rec_log *l)
{
    buf_init(&l->all, 64u * 1024 * 1024);
    buf_init(&l->csv, 64u * 1024 * 1024);
    l->last_line = 0;
    l->good = 0;
}

static void log_cleanup(struct rec_log *l)
{
    buf_cleanup(&l->all);
    buf_cleanup(&l->csv);
}

static int on_record(void *arg, long line, const char *const *fields, size_t nfields,
                     const char *err)
{
    struct rec_log *l = arg;
    FUZZ_CHECK(line >= 1 && line >= l->last_line, "line numbers never go down");
    l->last_line = line;
    FUZZ_CHECK(nfields <= CSV_MAX_FIELDS, "at most CSV_MAX_FIELDS fields");
    FUZZ_CHECK(fields[nfields] == NULL, "fields end with NULL");
    if (err) {
        FUZZ_CHECK(nfields == 0 && *err, "an error comes alone");
        buf_printf(&l->all, "%ld:%s\n", line, err);
        return 0;
    }
    FUZZ_CHECK(nfields >= 1, "a good record has a field");
    buf_printf(&l->all, "%ld", line);
    for (size_t i = 0; i < nfields; i++) {
        size_t n = strlen(fields[i]);
        FUZZ_CHECK(n <= CSV_MAX_FIELD, "a field within CSV_MAX_FIELD");
        buf_appendc(&l->all, '|');
        buf_appendc(&l->csv, '"');
        for (size_t k = 0; k < n; k++) {
            unsigned char c = (unsigned char)fields[i][k];
            if (c == '|' || c == '\\' || c == '\n' || c < 0x20)
                buf_printf(&l->all, "\\%02x", c);
            else
                buf_appendc(&l->all, (char)c);
            if (c == '"')
                buf_appendc(&l->csv, '"');
            buf_appendc(&l->csv, (char)c);
        }
        buf_append(&l->csv, i + 1 < nfields ? "\"," : "\"\r\n", i + 1 < nfields ? 2 : 3);
    }
    buf_appendc(&l->all, '\n');
    l->good++;
    return 0;
}

/* run - parse data in chunks of the sizes given by steps (0: all at once) */
static void run(const char *data, size_t size, const uint8_t *steps, size_t nsteps,
                struct rec_log *l)
{
    struct csv_parser *p = csv_new(on_record, l);
    size_t pos = 0, k = 0;
    while (pos < size) {
        size_t n = nsteps ? (size_t)(steps[k++ % nsteps] % 16) + 1 : size;
        if (n > size - pos)
            n = size - pos;
        FUZZ_CHECK(csv_feed(p, data + pos, n) == 0, "feed returns 0");
        pos += n;
    }
    FUZZ_CHECK(csv_finish(p) == 0, "finish returns 0");
    csv_free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct rec_log whole, pieces, again;
    log_init(&whole);
    log_init(&pieces);
    log_init(&again);
    run((const char *)data, size, NULL, 0, &whole);
    run((const char *)data, size, data, size < 32 ? size : 32, &pieces);
    FUZZ_CHECK(whole.all.len == pieces.all.len &&
                   memcmp(buf_str(&whole.all), buf_str(&pieces.all), whole.all.len) == 0,
               "chunking does not change the records");

    /* the good records written back and read again: the same fields */
    run(buf_str(&whole.csv), whole.csv.len, NULL, 0, &again);
    FUZZ_CHECK(again.good == whole.good, "written records read back, all good");
    struct buf a, b;
    buf_init(&a, 64u * 1024 * 1024);
    buf_init(&b, 64u * 1024 * 1024);
    for (const char *s = buf_str(&whole.all); *s; s = strchr(s, '\n') + 1) {
        const char *e = strchr(s, '\n');
        if (memchr(s, '|', (size_t)(e - s))) /* a good record: its fields, not its line */
            buf_append(&a, strchr(s, '|'), (size_t)(e - strchr(s, '|')) + 1);
    }
    for (const char *s = buf_str(&again.all); *s; s = strchr(s, '\n') + 1) {
        const char *e = strchr(s, '\n');
        buf_append(&b, strchr(s, '|'), (size_t)(e - strchr(s, '|')) + 1);
    }
    FUZZ_CHECK(a.len == b.len && memcmp(buf_str(&a), buf_str(&b), a.len) == 0,
               "written records read back as the same fields");
    buf_cleanup(&a);
    buf_cleanup(&b);
    log_cleanup(&whole);
    log_cleanup(&pieces);
    log_cleanup(&again);
    return 0;
}
