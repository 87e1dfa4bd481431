/* test_csv.c - tests for the streaming CSV parser. Each record is rendered
 * as one text line "LINE:NFIELDS:[f1][f2]..." or "LINE:0:ERR reason", with
 * CR, LF, '[', ']' and '\' escaped, so a whole parse compares as a string. */
#include "csv.h"
#include "test.h"
#include "xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct out {
    char *s;
    size_t len, alloc;
    size_t records;
    size_t stop_at; /* return stop_rc from the stop_at-th record (1-based); 0: never */
    int stop_rc;
};

static void out_add(struct out *o, const char *s, size_t n)
{
    if (o->len + n + 1 > o->alloc) {
        while (o->len + n + 1 > o->alloc)
            o->alloc = o->alloc ? o->alloc * 2 : 256;
        o->s = xrealloc(o->s, o->alloc);
    }
    memcpy(o->s + o->len, s, n);
    o->len += n;
    o->s[o->len] = '\0';
}

static void out_str(struct out *o, const char *s)
{
    out_add(o, s, strlen(s));
}

static void out_free(struct out *o)
{
    free(o->s);
    memset(o, 0, sizeof *o);
}

static int on_record(void *arg, long line, const char *const *fields, size_t nfields,
                     const char *err)
{
    struct out *o = arg;
    char tmp[64];

    o->records++;
    snprintf(tmp, sizeof tmp, "%ld:%zu:", line, nfields);
    out_str(o, tmp);
    if (err) {
        out_str(o, "ERR ");
        out_str(o, err);
        if (nfields != 0)
            out_str(o, " (BUG: nfields != 0)");
    }
    for (size_t i = 0; i < nfields; i++) {
        out_str(o, "[");
        for (const char *f = fields[i]; *f; f++) {
            if (*f == '\n')
                out_str(o, "\\n");
            else if (*f == '\r')
                out_str(o, "\\r");
            else if (*f == '[' || *f == ']' || *f == '\\') {
                out_str(o, "\\");
                out_add(o, f, 1);
            } else
                out_add(o, f, 1);
        }
        out_str(o, "]");
    }
    if (!err && fields[nfields] != NULL)
        out_str(o, " (BUG: fields not NULL-terminated)");
    out_str(o, "\n");
    if (o->stop_at && o->records == o->stop_at)
        return o->stop_rc;
    return 0;
}

/* parse_chunks - parse doc[len] in chunks of the given sizes (cycled; 0 =
 * whole), returning the rendering; caller frees */
static char *parse_chunks(const char *doc, size_t len, const size_t *sizes, size_t nsizes)
{
    struct out o = {0};
    struct csv_parser *p = csv_new(on_record, &o);
    size_t pos = 0, k = 0;
    int rc = 0;

    out_str(&o, "");
    while (pos < len && rc == 0) {
        size_t n = nsizes ? sizes[k++ % nsizes] : len;
        if (n > len - pos)
            n = len - pos;
        rc = csv_feed(p, doc + pos, n);
        pos += n;
    }
    if (rc == 0)
        rc = csv_finish(p);
    if (rc != 0)
        out_str(&o, "STOPPED\n");
    csv_free(p);
    return o.s;
}

static char *parse(const char *doc, size_t len)
{
    return parse_chunks(doc, len, NULL, 0);
}

struct row {
    const char *name;
    const char *doc;
    size_t len; /* 0: strlen(doc) */
    const char *want;
};

static const struct row rows[] = {
    /* basics, line ends */
    {"simple LF", "a,b,c\n1,2,3\n", 0, "1:3:[a][b][c]\n2:3:[1][2][3]\n"},
    {"simple CRLF", "a,b,c\r\n1,2,3\r\n", 0, "1:3:[a][b][c]\n2:3:[1][2][3]\n"},
    {"mixed line ends", "a\r\nb\nc\r\n", 0, "1:1:[a]\n2:1:[b]\n3:1:[c]\n"},
    {"last record without newline", "a,b\nc,d", 0, "1:2:[a][b]\n2:2:[c][d]\n"},
    {"last record ends in CR", "a,b\r", 0, "1:2:[a][b]\n"},
    {"last record is a quoted field", "x\n\"q\"", 0, "1:1:[x]\n2:1:[q]\n"},
    {"last record ends with a comma", "a,", 0, "1:2:[a][]\n"},
    {"single field", "hello", 0, "1:1:[hello]\n"},
    {"empty input", "", 0, ""},
    /* empty fields and whitespace */
    {"empty fields", ",\n,,\na,,b\n", 0, "1:2:[][]\n2:3:[][][]\n3:3:[a][][b]\n"},
    {"quoted empty field is a record", "\"\"\n", 0, "1:1:[]\n"},
    {"whitespace kept", " a , b \n\t\n", 0, "1:2:[ a ][ b ]\n2:1:[\t]\n"},
    {"spaces-only line is a record", "   \n", 0, "1:1:[   ]\n"},
    /* empty lines */
    {"empty lines skipped, counted", "\n\na\n\r\n\nb\n\n", 0, "3:1:[a]\n6:1:[b]\n"},
    {"only empty lines", "\n\r\n\n", 0, ""},
    {"lone CR at end of input", "\r", 0, ""},
    /* quoting */
    {"quoted comma, escaped quote, empty", "\"a,b\",\"c\"\"d\",\"\"\n", 0, "1:3:[a,b][c\"d][]\n"},
    {"only an escaped quote", "\"\"\"\"\n", 0, "1:1:[\"]\n"},
    {"quoted LF, CRLF, CR", "\"x\ny\",1\n\"p\r\nq\",2\n\"r\rs\",3\n", 0,
     "1:2:[x\\ny][1]\n3:2:[p\\r\\nq][2]\n5:2:[r\\rs][3]\n"},
    {"quoted field then CRLF", "\"a\",\"b\"\r\nc\r\n", 0, "1:2:[a][b]\n2:1:[c]\n"},
    {"quoted empty lines inside", "\"\n\n\",x\ny\n", 0, "1:2:[\\n\\n][x]\n4:1:[y]\n"},
    {"lone CR outside quotes is data", "a\rb,c\n\r,d\n", 0, "1:2:[a\\rb][c]\n2:2:[\\r][d]\n"},
    {"CR CR LF", "a\r\r\n", 0, "1:1:[a\\r]\n"},
    /* BOM */
    {"BOM skipped",
     "\xef\xbb\xbf"
     "a,b\n",
     0, "1:2:[a][b]\n"},
    {"BOM then quoted field", "\xef\xbb\xbf\"a\"\n", 0, "1:1:[a]\n"},
    {"BOM only", "\xef\xbb\xbf", 0, ""},
    {"BOM then empty line", "\xef\xbb\xbf\nx\n", 0, "2:1:[x]\n"},
    {"second BOM is data",
     "\xef\xbb\xbf\xef\xbb\xbf"
     "a\n",
     0,
     "1:1:[\xef\xbb\xbf"
     "a]\n"},
    {"BOM later is data",
     "a\n\xef\xbb\xbf"
     "b\n",
     0,
     "1:1:[a]\n2:1:[\xef\xbb\xbf"
     "b]\n"},
    {"partial BOM is data", "\xef\xbbx\n", 0, "1:1:[\xef\xbbx]\n"},
    {"partial BOM at end of input", "\xef\xbb", 0, "1:1:[\xef\xbb]\n"},
    {"partial BOM then newline", "\xef\n", 0, "1:1:[\xef]\n"},
    /* column counts */
    {"ragged rows", "a,b,c\nd\ne,f,g,h\n,\n", 0,
     "1:3:[a][b][c]\n2:1:[d]\n3:4:[e][f][g][h]\n4:2:[][]\n"},
    /* errors and resync */
    {"quote inside unquoted field", "ab\"c,d\nx,y\n", 0,
     "1:0:ERR quote inside unquoted field\n2:2:[x][y]\n"},
    {"quote after space", "a, \"b\"\nok\n", 0, "1:0:ERR quote inside unquoted field\n2:1:[ok]\n"},
    {"characters after closing quote", "\"a\"b,c\nx\n", 0,
     "1:0:ERR characters after closing quote\n2:1:[x]\n"},
    {"space after closing quote", "\"a\" ,c\r\nx\r\n", 0,
     "1:0:ERR characters after closing quote\n2:1:[x]\n"},
    {"CR then data after closing quote", "\"a\"\rb\nx\n", 0,
     "1:0:ERR characters after closing quote\n2:1:[x]\n"},
    {"framing error drops the rest of the physical line", "a\"b,\"c\nd,e\n", 0,
     "1:0:ERR quote inside unquoted field\n2:2:[d][e]\n"},
    {"unterminated quoted field", "a\n\"abc\nx,y\n", 0,
     "1:1:[a]\n2:0:ERR unterminated quoted field\n"},
    {"unterminated after escaped quote", "\"ab\"\"", 0, "1:0:ERR unterminated quoted field\n"},
    {"error in last record without newline", "x\nab\"c", 0,
     "1:1:[x]\n2:0:ERR quote inside unquoted field\n"},
    {"error after multi-line record", "\"a\nb\"\nc\"d\ne\n", 0,
     "1:1:[a\\nb]\n3:0:ERR quote inside unquoted field\n4:1:[e]\n"},
    {"two errors, two lines", "a\"\n\"b\"c\nd\n", 0,
     "1:0:ERR quote inside unquoted field\n2:0:ERR characters after closing quote\n3:1:[d]\n"},
    {"NUL byte in unquoted field", "a\0b,c\nd\n", 8, "1:0:ERR NUL byte in field\n2:1:[d]\n"},
    {"NUL byte in quoted field keeps framing", "\"a\0\n\",c\nd\n", 10,
     "1:0:ERR NUL byte in field\n3:1:[d]\n"},
};

static void test_table(void)
{
    char name[160];
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const struct row *r = &rows[i];
        size_t len = r->len ? r->len : strlen(r->doc);
        char *got = parse(r->doc, len);
        snprintf(name, sizeof name, "whole: %s", r->name);
        CHECK_STR(got, r->want, name);
        free(got);
        /* every row must also come out the same fed byte by byte */
        size_t one = 1;
        got = parse_chunks(r->doc, len, &one, 1);
        snprintf(name, sizeof name, "byte by byte: %s", r->name);
        CHECK_STR(got, r->want, name);
        free(got);
    }
}

/* repeat - n copies of c at dst, returns dst + n */
static char *repeat(char *dst, char c, size_t n)
{
    memset(dst, c, n);
    return dst + n;
}

/* test_limits - CSV_MAX_FIELD and CSV_MAX_FIELDS, with resync */
static void test_limits(void)
{
    size_t cap = 3 * CSV_MAX_FIELD + 1000;
    char *doc = xmalloc(cap), *want = xmalloc(cap), *d, *got;
    char expect_tail[64];

    /* a field of exactly CSV_MAX_FIELD bytes is fine */
    d = repeat(doc, 'x', CSV_MAX_FIELD);
    memcpy(d, ",y\nz\n", 6);
    got = parse(doc, strlen(doc));
    d = repeat(want, 'x', CSV_MAX_FIELD);
    snprintf(d, 64, "][y]\n2:1:[z]\n");
    CHECK(strncmp(got, "1:2:[", 5) == 0 && strcmp(got + 5, want) == 0, "max-size field ok");
    free(got);

    /* one byte more is an error; the next record keeps its line number */
    d = repeat(doc, 'x', CSV_MAX_FIELD + 1);
    memcpy(d, ",y\nz\n", 6);
    got = parse(doc, strlen(doc));
    CHECK_STR(got, "1:0:ERR field too long\n2:1:[z]\n", "field too long, unquoted");
    free(got);

    /* same in a quoted field holding newlines: resync at the line end after
     * the closing quote, not at the first LF inside the quotes */
    d = doc;
    *d++ = '"';
    d = repeat(d, 'q', CSV_MAX_FIELD);
    memcpy(d, "\n,\"\"\n\",tail\r\nz\n", 16);
    got = parse(doc, strlen(doc));
    CHECK_STR(got, "1:0:ERR field too long\n4:1:[z]\n", "field too long, quoted, multi-line");
    free(got);

    /* quoted field with "" escapes: the limit counts decoded bytes */
    d = doc;
    *d++ = '"';
    for (size_t i = 0; i < CSV_MAX_FIELD; i++) {
        *d++ = '"';
        *d++ = '"';
    }
    memcpy(d, "\"\n", 3);
    got = parse(doc, strlen(doc));
    CHECK(strncmp(got, "1:1:[\"\"\"", 8) == 0 && strlen(got) == 5 + CSV_MAX_FIELD + 2,
          "max-size quoted field of escaped quotes ok");
    free(got);

    /* CSV_MAX_FIELDS fields ok, one more is an error */
    d = doc;
    for (int i = 0; i < CSV_MAX_FIELDS; i++)
        d += snprintf(d, 8, "%s%d", i ? "," : "", i % 10);
    memcpy(d, "\n", 2);
    got = parse(doc, strlen(doc));
    snprintf(expect_tail, sizeof expect_tail, "1:%d:[0][1]", CSV_MAX_FIELDS);
    CHECK(strncmp(got, expect_tail, strlen(expect_tail)) == 0, "CSV_MAX_FIELDS fields ok");
    free(got);
    memcpy(d, ",x\n\nlast\n", 10);
    got = parse(doc, strlen(doc));
    CHECK_STR(got, "1:0:ERR too many fields\n3:1:[last]\n", "too many fields");
    free(got);

    /* an empty field at the end also counts */
    memcpy(d, ",\nlast", 7);
    got = parse(doc, strlen(doc));
    CHECK_STR(got, "1:0:ERR too many fields\n2:1:[last]\n", "too many fields, empty last");
    free(got);

    /* an unterminated quote beats an earlier error at end of input */
    d = doc;
    *d++ = '"';
    d = repeat(d, 'q', CSV_MAX_FIELD + 5);
    memcpy(d, "\nmore\n", 7);
    got = parse(doc, strlen(doc));
    CHECK_STR(got, "1:0:ERR unterminated quoted field\n", "unterminated wins at end of input");
    free(got);

    free(doc);
    free(want);
}

/* a document that exercises every state, error and line-end kind */
static const char mixed_doc[] = "\xef\xbb\xbf"
                                "name,email_id\r\n"
                                "\n"
                                "\"Doe, John\",john@example.com\r\n"
                                "\"multi\r\nline\nfield\",\"a\"\"b\"\n"
                                "bad\"quote,x\n"
                                "\r\n"
                                "\"closed\"junk,y\r\n"
                                "ragged\n"
                                "a,b,c,d\n"
                                "\"\",,\"\"\n"
                                "lone\rcr,z\n"
                                "\"x\"\r\"\n"
                                "\xef\xbb\xbf,mid-bom\n"
                                "last,no newline";

static const char mixed_want[] = "1:2:[name][email_id]\n"
                                 "3:2:[Doe, John][john@example.com]\n"
                                 "4:2:[multi\\r\\nline\\nfield][a\"b]\n"
                                 "7:0:ERR quote inside unquoted field\n"
                                 "9:0:ERR characters after closing quote\n"
                                 "10:1:[ragged]\n"
                                 "11:4:[a][b][c][d]\n"
                                 "12:3:[][][]\n"
                                 "13:2:[lone\\rcr][z]\n"
                                 "14:0:ERR characters after closing quote\n"
                                 "15:2:[\xef\xbb\xbf][mid-bom]\n"
                                 "16:2:[last][no newline]\n";

/* test_chunks - any chunking gives exactly the records of a whole feed */
static void test_chunks(void)
{
    size_t len = sizeof mixed_doc - 1;
    char *whole = parse(mixed_doc, len), *got;
    char name[96];
    int same;

    CHECK_STR(whole, mixed_want, "mixed document, whole");

    size_t one = 1;
    got = parse_chunks(mixed_doc, len, &one, 1);
    CHECK_STR(got, whole, "mixed document, byte by byte");
    free(got);

    /* every split into two chunks */
    same = 1;
    for (size_t cut = 0; cut <= len; cut++) {
        size_t sizes[2] = {cut ? cut : len, len};
        got = parse_chunks(mixed_doc, len, sizes, 2);
        if (strcmp(got, whole) != 0) {
            same = 0;
            printf("#   split at %zu differs:\n%s", cut, got);
        }
        free(got);
    }
    CHECK(same, "mixed document, every two-chunk split");

    /* random chunk sizes, fixed seeds so a failure reproduces */
    for (unsigned seed = 1; seed <= 4; seed++) {
        same = 1;
        srand(seed);
        for (int iter = 0; iter < 100; iter++) {
            size_t sizes[32];
            size_t max = iter % 2 ? 7 : 64;
            for (size_t k = 0; k < 32; k++)
                sizes[k] = 1 + (size_t)rand() % max;
            got = parse_chunks(mixed_doc, len, sizes, 32);
            if (strcmp(got, whole) != 0) {
                same = 0;
                printf("#   seed %u iteration %d differs\n", seed, iter);
            }
            free(got);
        }
        snprintf(name, sizeof name, "mixed document, random chunks (seed %u)", seed);
        CHECK(same, name);
    }
    free(whole);

    /* empty chunks change nothing */
    struct out o = {0};
    struct csv_parser *p = csv_new(on_record, &o);
    csv_feed(p, "a,", 2);
    csv_feed(p, NULL, 0);
    csv_feed(p, "", 0);
    csv_feed(p, "b\n", 2);
    csv_finish(p);
    CHECK_STR(o.s, "1:2:[a][b]\n", "empty chunks ignored");
    csv_free(p);
    out_free(&o);
}

/* test_finish - records waiting for end of input */
static void test_finish(void)
{
    struct out o = {0};
    struct csv_parser *p = csv_new(on_record, &o);

    out_str(&o, "");
    CHECK_INT(csv_feed(p, "a,b\n\"open,", 10), 0, "feed with an open quote");
    CHECK_STR(o.s, "1:2:[a][b]\n", "open quote not reported before finish");
    CHECK_INT(csv_feed(p, "\nstill open", 11), 0, "feed more");
    CHECK_STR(o.s, "1:2:[a][b]\n", "still not reported");
    CHECK_INT(csv_finish(p), 0, "finish");
    CHECK_STR(o.s, "1:2:[a][b]\n2:0:ERR unterminated quoted field\n", "reported at finish");
    csv_free(p);
    out_free(&o);

    p = csv_new(on_record, &o);
    out_str(&o, "");
    csv_feed(p, "x,y", 3);
    CHECK_INT(o.records, 0, "record without newline waits");
    csv_finish(p);
    CHECK_STR(o.s, "1:2:[x][y]\n", "record without newline emitted at finish");
    csv_free(p);
    out_free(&o);
}

/* test_stop - a non-zero callback return stops csv_feed and is returned */
static void test_stop(void)
{
    struct out o = {.stop_at = 2, .stop_rc = 7};
    struct csv_parser *p = csv_new(on_record, &o);
    const char *doc = "a\nb\nc\nd\n";

    CHECK_INT(csv_feed(p, doc, strlen(doc)), 7, "csv_feed returns the callback's value");
    CHECK_INT(o.records, 2, "no record delivered after the stop");
    CHECK_STR(o.s, "1:1:[a]\n2:1:[b]\n", "records up to the stop");
    csv_free(p);
    out_free(&o);

    /* stopping on an error record */
    o = (struct out){.stop_at = 1, .stop_rc = -3};
    p = csv_new(on_record, &o);
    doc = "x\"y\nz\n";
    CHECK_INT(csv_feed(p, doc, strlen(doc)), -3, "stop on an error record");
    CHECK_INT(o.records, 1, "nothing after the stopping error record");
    csv_free(p);
    out_free(&o);

    /* csv_finish returns the callback's value too */
    o = (struct out){.stop_at = 2, .stop_rc = 5};
    p = csv_new(on_record, &o);
    doc = "a\nlast";
    CHECK_INT(csv_feed(p, doc, strlen(doc)), 0, "feed before finish");
    CHECK_INT(csv_finish(p), 5, "csv_finish returns the callback's value");
    CHECK_INT(o.records, 2, "last record delivered by finish");
    csv_free(p);
    out_free(&o);

    o = (struct out){.stop_at = 1, .stop_rc = 9};
    p = csv_new(on_record, &o);
    csv_feed(p, "\"open", 5);
    CHECK_INT(csv_finish(p), 9, "csv_finish returns the value for an error record");
    csv_free(p);
    out_free(&o);

    csv_free(NULL);
    CHECK(1, "csv_free(NULL) is a no-op");
}

/* test_stream - many records through small chunks: counts and line numbers */
static void test_stream(void)
{
    struct out o = {0};
    struct csv_parser *p = csv_new(on_record, &o);
    char line[64];
    size_t want = 0;
    long last_line = 0;

    for (int i = 1; i <= 100000; i++) {
        if (o.len > 1 << 16) { /* keep only the tail of the rendering */
            o.len = 0;
            o.s[0] = '\0';
        }
        int n = i % 10 == 0 ? snprintf(line, sizeof line, "\n")
                            : snprintf(line, sizeof line, "user%d,\"u%d@x.com\"\r\n", i, i);
        if (i % 10)
            want++;
        csv_feed(p, line, (size_t)n);
        last_line = i;
    }
    csv_finish(p);
    CHECK_INT(o.records, want, "100000 lines: records counted");
    snprintf(line, sizeof line, "%ld:2:[user%ld][u%ld@x.com]\n", last_line - 1, last_line - 1,
             last_line - 1);
    CHECK(o.len >= strlen(line) && strcmp(o.s + o.len - strlen(line), line) == 0,
          "100000 lines: last record has the right line number");
    csv_free(p);
    out_free(&o);
}

int main(void)
{
    test_table();
    test_limits();
    test_chunks();
    test_finish();
    test_stop();
    test_stream();
    return test_done();
}
