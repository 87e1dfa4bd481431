/* csvrows.h - the recipient CSV's columns: a header naming name and
 * email_id (any order, any case) and extra columns, which become each
 * row's attributes (a JSON object of the non-empty values, at most
 * CSVROWS_ATTR_MAX bytes). Shared by POST /users/import and the
 * background importer. One struct per stream; one thread at a time.
 */
#ifndef CSVROWS_H
#define CSVROWS_H

#include "csv.h"

#include <stddef.h>

#define CSVROWS_ATTR_MAX 4096

struct csvrows {
    int name_col, email_col; /* -1 until the header is read */
    size_t ncols;
    char *cols[CSV_MAX_FIELDS]; /* trimmed header names (heap) */
};

/* csvrows_header - read the header record (err: the parser's error);
 * 0, or -1 with the reason in why */
int csvrows_header(struct csvrows *h, const char *const *f, size_t nf, const char *err, char *why,
                   size_t whylen);
/* csvrows_row - a data record: name and email_id (trimmed) into the
 * caller's buffers of CSV_MAX_FIELD + 1 bytes, *attributes a new JSON
 * object text (caller frees) or NULL when no extra column has a value.
 * 0, or -1 with the line's error in why. */
int csvrows_row(const struct csvrows *h, const char *const *f, size_t nf, const char *err,
                char *name, char *email, char **attributes, char *why, size_t whylen);
void csvrows_cleanup(struct csvrows *h);

#endif
