/* fuzz_mime.c - the MIME composer (warmup-service/mime.c) on arbitrary
 * inputs: the fuzz data, split at NUL bytes, is subject, text, html,
 * from_name, to_name, to, from and List-Unsubscribe (an empty to or from
 * takes a fixed address).
 *
 * Invariants of a composed message: CRLF line ends only, no NUL, no line
 * over 998 octets, body lines at most 76; only ASCII unless an address is
 * UTF-8 (and then only in From/To); each header field exactly once and
 * no other (no header injection through any input); the Subject decodes
 * (RFC 2047) to the subject given; the text part, and the html part of a
 * multipart message, decode (quoted-printable) to the input with CRLF
 * line ends. A refused input says why and leaves the output as it was.
 * Placeholders: {{name}} becomes the name as is (mime_fill) and escaped
 * so it cannot open markup (mime_fill_html).
 * The decoders here are written independently of mime.c.
 */
#include "buf.h"
#include "fuzz.h"
#include "mime.h"
#include "utf8.h"
#include "xalloc.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

static const char b64dig[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* lines_ok - CRLF only and no line over max octets; reason into why */
static int lines_ok(const char *m, size_t n, size_t max, char *why, size_t whylen)
{
    size_t col = 0, line = 1;
    for (size_t i = 0; i < n; i++) {
        if (m[i] == '\r') {
            if (i + 1 >= n || m[i + 1] != '\n') {
                snprintf(why, whylen, "bare CR in line %zu", line);
                return 0;
            }
            i++;
            col = 0;
            line++;
        } else if (m[i] == '\n') {
            snprintf(why, whylen, "bare LF in line %zu", line);
            return 0;
        } else if (m[i] == '\0') {
            snprintf(why, whylen, "NUL in line %zu", line);
            return 0;
        } else if (++col > max) {
            snprintf(why, whylen, "line %zu longer than %zu", line, max);
            return 0;
        }
    }
    if (n && (n < 2 || m[n - 2] != '\r' || m[n - 1] != '\n')) {
        snprintf(why, whylen, "does not end in CRLF");
        return 0;
    }
    return 1;
}

/* header_raw - the header's value as written (folds kept); caller frees */
static char *header_raw(const char *msg, const char *name)
{
    const char *end = strstr(msg, "\r\n\r\n");
    size_t nl = strlen(name);
    for (const char *p = msg; p && p < end; p = strstr(p, "\r\n") ? strstr(p, "\r\n") + 2 : NULL) {
        if (strncmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1, *e = v;
            if (*v == ' ')
                v++;
            for (;;) {
                e = strstr(e, "\r\n");
                if (e[2] != ' ' && e[2] != '\t')
                    break;
                e += 2;
            }
            return xstrndup(v, (size_t)(e - v));
        }
    }
    return NULL;
}

/* unfold - remove every CRLF; caller frees */
static char *unfold(const char *s)
{
    char *r = xmalloc(strlen(s) + 1), *o = r;
    for (; *s; s++) {
        if (s[0] == '\r' && s[1] == '\n')
            s++;
        else
            *o++ = *s;
    }
    *o = '\0';
    return r;
}

static int b64val(char c)
{
    const char *p = strchr(b64dig, c);
    return c && p ? (int)(p - b64dig) : -1;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

struct ewstat {
    int words;
    size_t longest;  /* longest encoded word */
    int split;       /* an encoded word whose octets are not valid UTF-8 alone */
    int bad;         /* malformed encoded word */
    int b, q;        /* words per encoding */
    size_t longline; /* longest line of the raw value, with the header name */
    int midword;     /* adjacent encoded words split where neither side is a space */
};

/* ew_decode - RFC 2047 decoding of an unfolded header value; white space
 * between adjacent encoded words is dropped. Caller frees. */
static char *ew_decode(const char *v, struct ewstat *st)
{
    struct buf b;
    buf_init(&b, 1 << 20);
    const char *p = v;
    int prev_ew = 0;
    char prev_last = ' ';
    while (*p) {
        const char *ws = p;
        while (*p == ' ' || *p == '\t')
            p++;
        if (strncmp(p, "=?", 2) == 0) {
            const char *e1 = strchr(p + 2, '?');
            const char *e2 = e1 ? strchr(e1 + 1, '?') : NULL;
            const char *e3 = e2 ? strstr(e2 + 1, "?=") : NULL;
            if (e1 && e2 && e3 && e2 == e1 + 2) {
                if (!prev_ew)
                    buf_append(&b, ws, (size_t)(p - ws));
                size_t wl = (size_t)(e3 + 2 - p);
                if (wl > 200) { /* dec[] holds a word of the promised size */
                    st->bad++;
                    break;
                }
                st->words++;
                if (wl > st->longest)
                    st->longest = wl;
                if ((size_t)(e1 - p - 2) != 5 || strncasecmp(p + 2, "UTF-8", 5) != 0)
                    st->bad++;
                char dec[256];
                size_t dn = 0;
                const char *t = e2 + 1;
                if (e1[1] == 'B' || e1[1] == 'b') {
                    st->b++;
                    if ((e3 - t) % 4)
                        st->bad++;
                    for (; t + 3 < e3 + 1 && t < e3; t += 4) {
                        int a = b64val(t[0]), c = b64val(t[1]), d = b64val(t[2]), f = b64val(t[3]);
                        if (a < 0 || c < 0) {
                            st->bad++;
                            break;
                        }
                        dec[dn++] = (char)(a << 2 | c >> 4);
                        if (t[2] != '=' && d >= 0)
                            dec[dn++] = (char)((c & 15) << 4 | d >> 2);
                        if (t[3] != '=' && d >= 0 && f >= 0)
                            dec[dn++] = (char)((d & 3) << 6 | f);
                    }
                } else if (e1[1] == 'Q' || e1[1] == 'q') {
                    st->q++;
                    for (; t < e3; t++) {
                        if (*t == '_') {
                            dec[dn++] = ' ';
                        } else if (*t == '=' && t + 2 < e3 + 1 && hexval(t[1]) >= 0 &&
                                   hexval(t[2]) >= 0) {
                            dec[dn++] = (char)(hexval(t[1]) << 4 | hexval(t[2]));
                            t += 2;
                        } else if (*t == '?' || *t == ' ' || *t == '=') {
                            st->bad++;
                        } else {
                            dec[dn++] = *t;
                        }
                    }
                } else {
                    st->bad++;
                }
                if (!utf8_valid(dec, dn))
                    st->split++;
                if (prev_ew && dn && prev_last != ' ' && dec[0] != ' ')
                    st->midword++;
                if (dn)
                    prev_last = dec[dn - 1];
                buf_append(&b, dec, dn);
                p = e3 + 2;
                prev_ew = 1;
                continue;
            }
        }
        buf_append(&b, ws, (size_t)(p - ws));
        if (!*p)
            break;
        const char *q = p;
        while (*q && *q != ' ' && *q != '\t')
            q++;
        buf_append(&b, p, (size_t)(q - p));
        p = q;
        prev_ew = 0;
    }
    return buf_steal(&b);
}

/* decoded_header - unfold + RFC 2047 decode + line stats; caller frees */
static char *decoded_header(const char *msg, const char *name, struct ewstat *st)
{
    memset(st, 0, sizeof *st);
    char *raw = header_raw(msg, name);
    if (!raw)
        return NULL;
    size_t col = strlen(name) + 2;
    for (const char *p = raw; *p; p++) {
        if (p[0] == '\r' && p[1] == '\n') {
            col = 0;
            p++;
            continue;
        }
        if (++col > st->longline)
            st->longline = col;
    }
    char *u = unfold(raw);
    char *d = ew_decode(u, st);
    free(raw);
    free(u);
    return d;
}

/* qp_decode - RFC 2045 decoding; *bad counts malformed escapes, lines over
 * 76 and trailing white space. Caller frees. */
static char *qp_decode(const char *s, size_t n, int *bad)
{
    struct buf b;
    buf_init(&b, 1 << 24);
    size_t col = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\r' && i + 1 < n && s[i + 1] == '\n') {
            if (i > 0 && (s[i - 1] == ' ' || s[i - 1] == '\t'))
                (*bad)++;
            buf_append(&b, "\r\n", 2);
            i++;
            col = 0;
            continue;
        }
        if (++col > 76)
            (*bad)++;
        if (s[i] == '=') {
            if (i + 2 < n && s[i + 1] == '\r' && s[i + 2] == '\n') {
                i += 2;
                col = 0;
                continue;
            }
            if (i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
                buf_appendc(&b, (char)(hexval(s[i + 1]) << 4 | hexval(s[i + 2])));
                i += 2;
                col += 2;
                continue;
            }
            (*bad)++;
        }
        unsigned char c = (unsigned char)s[i];
        if ((c < 32 && c != '\t') || c > 126)
            (*bad)++;
        buf_appendc(&b, s[i]);
    }
    if (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        (*bad)++;
    return buf_steal(&b);
}

/* crlf - LF or CRLF line ends as CRLF; caller frees */
static char *crlf(const char *s)
{
    struct buf b;
    buf_init(&b, 1 << 24);
    for (; *s; s++) {
        if (s[0] == '\r' && s[1] == '\n')
            continue;
        if (*s == '\n')
            buf_append(&b, "\r\n", 2);
        else
            buf_appendc(&b, *s);
    }
    return buf_steal(&b);
}

/* ---- the harness ---- */

static const char *const header_names[] = {
    "Date",         "From",         "To",
    "Subject",      "Message-ID",   "List-Unsubscribe",
    "MIME-Version", "Content-Type", "Content-Transfer-Encoding"};
#define NHEADERS (sizeof header_names / sizeof header_names[0])

/* check_headers - each expected field once (List-Unsubscribe iff given,
 * Content-Transfer-Encoding in the single-part form only), nothing else;
 * non-ASCII only in From and To, and only when allowed */
static void check_headers(const char *msg, bool unsub, bool multi, bool utf8_addr)
{
    int seen[NHEADERS] = {0};
    const char *end = strstr(msg, "\r\n\r\n") + 2;
    const char *field = "";
    for (const char *p = msg; p < end; p = strstr(p, "\r\n") + 2) {
        size_t len = (size_t)(strstr(p, "\r\n") - p);
        if (p[0] != ' ' && p[0] != '\t') {
            const char *colon = memchr(p, ':', len);
            FUZZ_CHECK(colon, "a header line has a colon");
            size_t k = 0;
            while (k < NHEADERS && !(strlen(header_names[k]) == (size_t)(colon - p) &&
                                     strncasecmp(p, header_names[k], (size_t)(colon - p)) == 0))
                k++;
            FUZZ_CHECK(k < NHEADERS, "only the header fields of mime.h");
            seen[k]++;
            field = header_names[k];
        }
        for (size_t i = 0; i < len; i++)
            if ((unsigned char)p[i] >= 0x80)
                FUZZ_CHECK(utf8_addr && (!strcmp(field, "From") || !strcmp(field, "To")),
                           "8-bit header octets only in a UTF-8 address");
    }
    for (size_t k = 0; k < NHEADERS; k++)
        FUZZ_CHECK(seen[k] == ((k == 5 && !unsub) || (k == 8 && multi) ? 0 : 1),
                   "each header field exactly once");
}

/* same_body - decoded quoted-printable p[0..n) is crlf(want), plus a
 * final CRLF when final_crlf and the text does not end in one */
static void same_body(const char *p, size_t n, const char *want, bool final_crlf, const char *what)
{
    int bad = 0;
    char *dec = qp_decode(p, n, &bad);
    char *exp = crlf(want);
    size_t el = strlen(exp);
    FUZZ_CHECK(bad == 0, what);
    if (final_crlf && el && (el < 2 || strcmp(exp + el - 2, "\r\n") != 0)) {
        exp = xrealloc(exp, el + 3);
        memcpy(exp + el, "\r\n", 3);
    }
    FUZZ_CHECK(strcmp(dec, exp) == 0, what);
    free(dec);
    free(exp);
}

/* check_bodies - the text (and html) part decode to the inputs */
static void check_bodies(const char *msg, const struct mime_input *in)
{
    const char *body = strstr(msg, "\r\n\r\n") + 4;
    size_t bl = strlen(body);
    for (const char *p = body; p < body + bl; p = strstr(p, "\r\n") + 2) {
        size_t len = (size_t)(strstr(p, "\r\n") - p);
        FUZZ_CHECK(len <= 76, "body lines at most 76 octets");
        for (size_t i = 0; i < len; i++)
            FUZZ_CHECK((unsigned char)p[i] < 0x80, "an ASCII body");
    }
    if (!*in->html) {
        same_body(body, bl, in->text, true, "the text decodes to the input");
        return;
    }
    char *ct = header_raw(msg, "Content-Type"), *u = unfold(ct);
    const char *b = strstr(u, "boundary=\"");
    FUZZ_CHECK(b, "a multipart message has a boundary");
    char delim[128];
    int dn = snprintf(delim, sizeof delim, "\r\n--%.*s", (int)strcspn(b + 10, "\""), b + 10);
    FUZZ_CHECK(dn > 0 && (size_t)dn < sizeof delim, "a short boundary");
    const char *d1 = strstr(body, delim), *d2 = d1 ? strstr(d1 + 2, delim) : NULL;
    const char *d3 = d2 ? strstr(d2 + 2, delim) : NULL;
    FUZZ_CHECK(d1 && d2 && d3 && !strstr(d3 + 2, delim), "three delimiters");
    FUZZ_CHECK(strcmp(d3 + dn, "--\r\n") == 0, "the close delimiter ends the message");
    const char *t = strstr(d1 + 2, "\r\n\r\n") + 4, *h = strstr(d2 + 2, "\r\n\r\n") + 4;
    FUZZ_CHECK(t > d1 && t <= d2 && h > d2 && h <= d3, "each part has headers");
    same_body(t, (size_t)(d2 - t), in->text, false, "the text part decodes to the input");
    same_body(h, (size_t)(d3 - h), in->html, false, "the html part decodes to the input");
    free(ct);
    free(u);
}

static void check_fill(const char *name)
{
    char *s = mime_fill("Hi {{ name }}!", name, "a@b.example");
    size_t n = strlen(name);
    FUZZ_CHECK(strncmp(s, "Hi ", 3) == 0 && strncmp(s + 3, name, n) == 0 &&
                   strcmp(s + 3 + n, "!") == 0,
               "mime_fill puts the name in");
    free(s);
    s = mime_fill_html("<p>{{name}}</p>", name, "a@b.example");
    n = strlen(s);
    FUZZ_CHECK(n >= 7 && strncmp(s, "<p>", 3) == 0 && strcmp(s + n - 4, "</p>") == 0,
               "mime_fill_html keeps the template");
    for (size_t i = 3; i < n - 4; i++)
        FUZZ_CHECK(s[i] != '<' && s[i] != '>' && s[i] != '"' && s[i] != '\'', "escaped markup");
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy = xmalloc(size + 1);
    const char *piece[8] = {"", "", "", "", "", "", "", ""};
    size_t np = 0;
    memcpy(copy, data, size);
    copy[size] = '\0';
    for (char *p = copy; np < 8 && p <= copy + size; p += strlen(p) + 1)
        piece[np++] = p;
    struct mime_input in = {
        .subject = piece[0],
        .text = piece[1],
        .html = piece[2],
        .from_name = piece[3],
        .to_name = piece[4],
        .to = *piece[5] ? piece[5] : "alice@example.com",
        .from = *piece[6] ? piece[6] : "noreply@d.example",
        .list_unsubscribe = piece[7],
        .message_id = "<email-1.9f2c@d.example>",
        .date_ms = 1795430252000,
    };
    struct buf out;
    char err[256] = "";
    buf_init(&out, 64u * 1024 * 1024);
    buf_append(&out, "KEEP", 4);
    int rc = mime_compose(&in, &out, err, sizeof err);
    if (rc != 0) {
        FUZZ_CHECK(err[0] && out.len == 4 && strcmp(buf_str(&out), "KEEP") == 0,
                   "a refusal says why and leaves the output");
    } else {
        const char *msg = buf_str(&out) + 4;
        char why[128];
        FUZZ_CHECK(lines_ok(msg, out.len - 4, 998, why, sizeof why), why);
        FUZZ_CHECK(strstr(msg, "\r\n\r\n"), "headers end");
        bool utf8_addr = utf8_ascii_len(in.to, strlen(in.to)) < strlen(in.to) ||
                         utf8_ascii_len(in.from, strlen(in.from)) < strlen(in.from);
        check_headers(msg, *in.list_unsubscribe, *in.html, utf8_addr);
        struct ewstat st;
        char *subject = decoded_header(msg, "Subject", &st);
        FUZZ_CHECK(subject && st.bad == 0 && st.split == 0 && st.longest <= 75,
                   "well-formed encoded words");
        FUZZ_CHECK(strcmp(subject, in.subject) == 0, "the Subject decodes to the subject");
        free(subject);
        check_bodies(msg, &in);
    }
    if (utf8_valid(in.to_name, strlen(in.to_name)))
        check_fill(in.to_name);
    buf_cleanup(&out);
    free(copy);
    return 0;
}
