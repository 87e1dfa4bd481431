/* csvrows.c - the recipient CSV's header and rows (csvrows.h). */
#include "csvrows.h"
#include "errbuf.h"
#include "utf8.h"
#include "xalloc.h"

#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* trim - copy s without surrounding blanks into out[CSV_MAX_FIELD + 1] */
static void trim(const char *s, char *out)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    if (n > CSV_MAX_FIELD)
        n = CSV_MAX_FIELD;
    memcpy(out, s, n);
    out[n] = '\0';
}

int csvrows_header(struct csvrows *h, const char *const *f, size_t nf, const char *err, char *why,
                   size_t whylen)
{
    memset(h, 0, sizeof *h);
    h->name_col = h->email_col = -1;
    if (err) {
        errbuf_set(why, whylen, "line 1 must be the header (name,email_id,...): %s", err);
        return -1;
    }
    char col[CSV_MAX_FIELD + 1];
    for (size_t i = 0; i < nf; i++) {
        trim(f[i], col);
        if (!*col || !utf8_valid(col, strlen(col))) {
            errbuf_set(why, whylen, "line 1: column %zu has no name (or not UTF-8)", i + 1);
            goto bad;
        }
        for (size_t j = 0; j < i; j++)
            if (strcasecmp(h->cols[j], col) == 0) {
                errbuf_set(why, whylen, "line 1: column '%.64s' appears twice", col);
                goto bad;
            }
        h->cols[i] = xstrdup(col);
        h->ncols = i + 1;
        if (strcasecmp(col, "name") == 0)
            h->name_col = (int)i;
        else if (strcasecmp(col, "email_id") == 0)
            h->email_col = (int)i;
    }
    if (h->name_col < 0 || h->email_col < 0) {
        errbuf_set(why, whylen, "line 1 must be the header name,email_id (extra columns allowed)");
        goto bad;
    }
    return 0;
bad:
    csvrows_cleanup(h);
    h->name_col = h->email_col = -1;
    return -1;
}

int csvrows_row(const struct csvrows *h, const char *const *f, size_t nf, const char *err,
                char *name, char *email, char **attributes, char *why, size_t whylen)
{
    *attributes = NULL;
    if (err) {
        errbuf_set(why, whylen, "%s", err);
        return -1;
    }
    if (nf != h->ncols) {
        errbuf_set(why, whylen, "expected %zu columns (as the header), got %zu", h->ncols, nf);
        return -1;
    }
    trim(f[h->name_col], name);
    trim(f[h->email_col], email);
    if (h->ncols == 2)
        return 0;
    json_object *o = NULL;
    char v[CSV_MAX_FIELD + 1];
    for (size_t i = 0; i < nf; i++) {
        if ((int)i == h->name_col || (int)i == h->email_col)
            continue;
        trim(f[i], v);
        if (!*v)
            continue; /* no value: the template's default applies */
        if (!utf8_valid(v, strlen(v))) {
            errbuf_set(why, whylen, "column '%.64s' is not valid UTF-8", h->cols[i]);
            json_object_put(o);
            return -1;
        }
        if (!o)
            o = json_object_new_object();
        json_object_object_add(o, h->cols[i], json_object_new_string(v));
    }
    if (!o)
        return 0;
    const char *t =
        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    if (strlen(t) > CSVROWS_ATTR_MAX) {
        errbuf_set(why, whylen, "attributes (the extra columns) exceed %d bytes as JSON",
                   CSVROWS_ATTR_MAX);
        json_object_put(o);
        return -1;
    }
    *attributes = xstrdup(t);
    json_object_put(o);
    return 0;
}

void csvrows_cleanup(struct csvrows *h)
{
    for (size_t i = 0; i < h->ncols; i++)
        free(h->cols[i]);
    h->ncols = 0;
}
