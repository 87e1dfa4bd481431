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
#include "html_text.h"
#include "mime.h"
#include "utf8.h"
#include "xalloc.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "../mime_check.h"

/* ---- the harness ---- */

static const char *const header_names[] = {
    "Date",         "From",         "To",
    "Subject",      "Message-ID",   "List-Unsubscribe",
    "MIME-Version", "Content-Type", "Content-Transfer-Encoding",
    "Feedback-ID"};
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
        FUZZ_CHECK(seen[k] == ((k == 5 && !unsub) || (k == 8 && multi) || k == 9 ? 0 : 1),
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
    /* a blank text is made from the html */
    char *made = in->text[strspn(in->text, " \t\r\n")] ? NULL : html_text(in->html);
    same_body(t, (size_t)(d2 - t), made ? made : in->text, false,
              "the text part decodes to the input (or to the html's text)");
    free(made);
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
