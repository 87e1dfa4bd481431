/* test_csvrows.c - the recipient CSV's header and rows (warmup-service/
 * csvrows.c): required columns in any order and case, extra columns as
 * attributes (empty cells left out, the 4 KiB limit), per-line errors. */
#include "csvrows.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

struct header_case {
    const char *name;
    const char *f[6];
    size_t nf;
    int rc;
    const char *why; /* substring of the reason, rc -1 */
};

static const struct header_case headers[] = {
    {"name,email_id", {"name", "email_id"}, 2, 0, NULL},
    {"any order and case, blanks trimmed", {" Email_ID ", "plan", "NAME"}, 3, 0, NULL},
    {"email_id missing", {"name", "mail"}, 2, -1, "header name,email_id"},
    {"a column twice", {"name", "email_id", "plan", "Plan"}, 4, -1, "appears twice"},
    {"an empty column name", {"name", "email_id", " "}, 3, -1, "no name"},
};

struct row_case {
    const char *name;
    const char *f[4];
    size_t nf;
    int rc;
    const char *attrs; /* rc 0: the attributes' JSON or NULL */
    const char *why;   /* rc -1: substring */
};

/* header: email_id,name,plan,city */
static const struct row_case rows[] = {
    {"values and attributes",
     {"a@b.c", " Ann ", "pro", "Paris/Nord"},
     4,
     0,
     "{\"plan\":\"pro\",\"city\":\"Paris/Nord\"}",
     NULL},
    {"empty extra cells left out", {"a@b.c", "Ann", "", " "}, 4, 0, NULL, NULL},
    {"one extra value", {"a@b.c", "Ann", "", "Rome"}, 4, 0, "{\"city\":\"Rome\"}", NULL},
    {"too few columns", {"a@b.c", "Ann"}, 2, -1, NULL, "expected 4 columns"},
    {"not UTF-8", {"a@b.c", "Ann", "\xff", ""}, 4, -1, NULL, "not valid UTF-8"},
};

int main(void)
{
    char why[256];
    for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++) {
        const struct header_case *c = &headers[i];
        struct csvrows h;
        why[0] = '\0';
        int rc = csvrows_header(&h, c->f, c->nf, NULL, why, sizeof why);
        CHECK_INT(rc, c->rc, c->name);
        if (c->why)
            CHECK(strstr(why, c->why) != NULL, "  the reason");
        csvrows_cleanup(&h);
    }
    struct csvrows h;
    const char *hf[] = {"email_id", "name", "plan", "city"};
    CHECK_INT(csvrows_header(&h, hf, 4, NULL, why, sizeof why), 0,
              "header email_id,name,plan,city");
    CHECK_INT(h.name_col * 10 + h.email_col, 10, "  name is column 1, email_id column 0");
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const struct row_case *c = &rows[i];
        char name[CSV_MAX_FIELD + 1], email[CSV_MAX_FIELD + 1];
        char *attrs = NULL;
        why[0] = '\0';
        int rc = csvrows_row(&h, c->f, c->nf, NULL, name, email, &attrs, why, sizeof why);
        CHECK_INT(rc, c->rc, c->name);
        if (rc == 0) {
            CHECK_STR(attrs, c->attrs, "  attributes");
            CHECK_STR(name, strcmp(c->f[1], " Ann ") == 0 ? "Ann" : c->f[1], "  name trimmed");
        } else {
            CHECK(strstr(why, c->why) != NULL, "  the reason");
            CHECK(attrs == NULL, "  no attributes");
        }
        free(attrs);
    }
    /* the parser's error is the line's error */
    char name[CSV_MAX_FIELD + 1], email[CSV_MAX_FIELD + 1], *attrs = NULL;
    CHECK_INT(
        csvrows_row(&h, NULL, 0, "unterminated quoted field", name, email, &attrs, why, sizeof why),
        -1, "a parser error");
    CHECK_STR(why, "unterminated quoted field", "  reported as is");
    /* attributes over 4 KiB as JSON */
    char *big = malloc(4100);
    memset(big, 'x', 4099);
    big[4099] = '\0';
    const char *bf[] = {"a@b.c", "Ann", big, ""};
    CHECK_INT(csvrows_row(&h, bf, 4, NULL, name, email, &attrs, why, sizeof why), -1,
              "attributes over 4 KiB");
    CHECK(strstr(why, "4096") != NULL, "  the limit named");
    const char *ok[] = {"a@b.c", "Ann", big + 30, ""}; /* {"plan":"..."}: 4080 bytes */
    CHECK_INT(csvrows_row(&h, ok, 4, NULL, name, email, &attrs, why, sizeof why), 0,
              "attributes just under 4 KiB");
    free(attrs);
    free(big);
    csvrows_cleanup(&h);
    return test_done();
}
