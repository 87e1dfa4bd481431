/* test_mime.c - MIME composition: exact output, RFC 2047 encoded words
 * decoded back, quoted-printable decoded back, multipart structure, header
 * injection, placeholders, and line rules on random inputs. Includes the
 * .c to reach the encoders. */
#include "../../warmup-service/mime.c"
#include "../../warmup-service/html_text.c"
#include "test.h"

#include <stdint.h>

#include "../mime_check.h"

static const struct mime_input base = {
    .from = "noreply@d.com",
    .from_name = "Warmup",
    .to = "alice@example.com",
    .to_name = "Alice",
    .subject = "Hello",
    .text = "Hi Alice,\nbye\n",
    .message_id = "<email-1.9f2c@d.com>",
    .date_ms = 1795430252000, /* Mon, 23 Nov 2026 10:37:32 UTC */
};

/* compose - mime_compose into a fresh buffer; caller frees the string */
static char *compose(const struct mime_input *in, int *rc, char *err, size_t errlen)
{
    struct buf b;
    buf_init(&b, 1 << 24);
    *rc = mime_compose(in, &b, err, errlen);
    return buf_steal(&b);
}

/* body_of - pointer to the body (after the blank line) */
static const char *body_of(const char *msg)
{
    const char *p = strstr(msg, "\r\n\r\n");
    return p ? p + 4 : "";
}

/* repeat - s n times; caller frees */
static char *repeat(const char *s, int n)
{
    size_t l = strlen(s);
    char *r = xmalloc(l * (size_t)n + 1);
    for (int i = 0; i < n; i++)
        memcpy(r + l * (size_t)i, s, l);
    r[l * (size_t)n] = '\0';
    return r;
}

/* ---- tests ---- */

static void test_exact(void)
{
    int rc;
    char err[128] = "";
    char *m = compose(&base, &rc, err, sizeof err);
    CHECK_INT(rc, 0, "small ASCII message composes");
    CHECK_STR(m,
              "Date: Mon, 23 Nov 2026 10:37:32 +0000\r\n"
              "From: Warmup <noreply@d.com>\r\n"
              "To: Alice <alice@example.com>\r\n"
              "Subject: Hello\r\n"
              "Message-ID: <email-1.9f2c@d.com>\r\n"
              "MIME-Version: 1.0\r\n"
              "Content-Type: text/plain; charset=utf-8\r\n"
              "Content-Transfer-Encoding: quoted-printable\r\n"
              "\r\n"
              "Hi Alice,\r\n"
              "bye\r\n",
              "exact output for a small ASCII message");
    free(m);

    struct mime_input in = base;
    in.from_name = NULL;
    in.to_name = "Smith, John \"JJ\" \\o/";
    in.to = "John.Smith@Example.COM";
    in.subject = "";
    in.text = "no newline at the end";
    in.list_unsubscribe = "<mailto:unsub@d.com?subject=email-1>, <https://d.com/u/1>";
    in.date_ms = 0;
    m = compose(&in, &rc, err, sizeof err);
    CHECK_INT(rc, 0, "no from_name, quoted to_name, empty subject, List-Unsubscribe");
    CHECK_STR(m,
              "Date: Thu, 01 Jan 1970 00:00:00 +0000\r\n"
              "From: noreply@d.com\r\n"
              "To: \"Smith, John \\\"JJ\\\" \\\\o/\" <John.Smith@example.com>\r\n"
              "Subject:\r\n"
              "Message-ID: <email-1.9f2c@d.com>\r\n"
              "List-Unsubscribe: <mailto:unsub@d.com?subject=email-1>, <https://d.com/u/1>\r\n"
              "MIME-Version: 1.0\r\n"
              "Content-Type: text/plain; charset=utf-8\r\n"
              "Content-Transfer-Encoding: quoted-printable\r\n"
              "\r\n"
              "no newline at the end\r\n",
              "exact output: quoted-string display name, bare address, final CRLF added");
    free(m);

    /* appends: what was in the buffer stays */
    struct buf b;
    buf_init(&b, 1 << 20);
    buf_append(&b, "X-Before: 1\r\n", 13);
    CHECK_INT(mime_compose(&base, &b, err, sizeof err), 0, "compose appends");
    CHECK(strncmp(buf_str(&b), "X-Before: 1\r\nDate: ", 19) == 0, "earlier contents kept");
    buf_cleanup(&b);

    /* the cap: -1, a reason, buffer emptied */
    buf_init(&b, 100);
    rc = mime_compose(&base, &b, err, sizeof err);
    CHECK(rc == -1 && strstr(err, "cap") && b.len == 0, "over the buffer cap: -1, emptied");
    buf_cleanup(&b);
    buf_init(&b, 1000);
    in = base;
    in.html = "<p>hi</p>";
    char *big = repeat("0123456789", 100);
    in.text = big;
    rc = mime_compose(&in, &b, err, sizeof err);
    CHECK(rc == -1 && b.len == 0, "over the cap inside a multipart body: -1");
    buf_cleanup(&b);
    free(big);
}

static void test_dates(void)
{
    static const struct {
        int64_t ms;
        const char *want;
    } rows[] = {
        {0, "Thu, 01 Jan 1970 00:00:00 +0000"},
        {-1, "Wed, 31 Dec 1969 23:59:59 +0000"},
        {1795430252999, "Mon, 23 Nov 2026 10:37:32 +0000"},
        {951782400000, "Tue, 29 Feb 2000 00:00:00 +0000"},
        {253402300799000, "Fri, 31 Dec 9999 23:59:59 +0000"},
        {-2174586894000, "Sun, 03 Feb 1901 04:05:06 +0000"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char d[64] = "";
        CHECK_INT(time_rfc5322(rows[i].ms, d, sizeof d), 0, rows[i].want);
        CHECK_STR(d, rows[i].want, "RFC 5322 date");
    }
    char d[64];
    CHECK_INT(time_rfc5322(INT64_MAX, d, sizeof d), -1, "date out of range");
    CHECK_INT(time_rfc5322(INT64_MIN, d, sizeof d), -1, "date out of range (negative)");
    CHECK_INT(time_rfc5322(0, d, 31), -1, "a buffer one octet short of the date and its NUL");
    CHECK_INT(time_rfc5322(0, d, 32), 0, "a buffer that just holds the date and its NUL");
    CHECK_STR(d, "Thu, 01 Jan 1970 00:00:00 +0000", "the date in a buffer of its size");
    struct mime_input in = base;
    in.date_ms = INT64_MAX;
    int rc;
    char err[128];
    free(compose(&in, &rc, err, sizeof err));
    CHECK(rc == -1 && strstr(err, "date_ms"), "compose rejects a date out of range");
}

static void test_encoded_words(void)
{
    char *e200 = repeat("\xc3\xa9", 200), *euro = repeat("\xe2\x82\xac", 200),
         *emoji = repeat("\xf0\x9f\x98\x80", 200), *mixed = repeat("a\xc3\xa9 \xe2\x82\xac!", 60),
         *longword = repeat("x", 1000), *cjk = repeat("\xe6\x97\xa5\xe6\x9c\xac", 40),
         *spaces = repeat("word ", 60), *atoms = xstrndup(spaces, strlen(spaces) - 1);
    const struct {
        const char *name;
        const char *subject;
        int enc;       /* 1: must be encoded words; 0: must be plain */
        char how;      /* 'B', 'Q' or 0 for either */
        int at_spaces; /* encoded words must be split at spaces */
    } rows[] = {
        {"200 x U+00E9 (2 octets)", e200, 1, 0, 0},
        {"200 x U+20AC (3 octets)", euro, 1, 'B', 0},
        {"200 x U+1F600 (4 octets)", emoji, 1, 'B', 0},
        {"mixed ASCII and non-ASCII", mixed, 1, 0, 1},
        {"mostly ASCII: Q",
         "Gr\xc3\xbc\xc3\x9f"
         "e aus K\xc3\xb6ln - special offer for all friends",
         1, 'Q', 1},
        {"CJK: B", cjk, 1, 'B', 0},
        {"ASCII that looks like an encoded word", "see =?UTF-8?B?QQ==?= here", 1, 0, 0},
        {"1000-octet ASCII word", longword, 1, 0, 0},
        {"long ASCII folded at spaces", spaces, 0, 0, 0},
        {"ASCII with runs of spaces",
         "a  b   c    d  "
         "with_underscores_and=equals?",
         0, 0, 0},
        {"_ = ? and specials", "\xc3\xa9 a_b=c?d \"q\" (x) <y>", 1, 0, 0},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct mime_input in = base;
        in.subject = rows[i].subject;
        int rc;
        char err[128], name[160];
        char *m = compose(&in, &rc, err, sizeof err);
        struct ewstat st;
        char *d = decoded_header(m, "Subject", &st);
        snprintf(name, sizeof name, "subject %s: round-trips", rows[i].name);
        CHECK(rc == 0 && d && strcmp(d, rows[i].subject) == 0, name);
        snprintf(name, sizeof name, "subject %s: %s", rows[i].name,
                 rows[i].enc ? "encoded words" : "plain, folded");
        CHECK(rows[i].enc ? st.words > 0 : st.words == 0, name);
        snprintf(name, sizeof name, "subject %s: words <= 75, none split, well-formed",
                 rows[i].name);
        CHECK(st.longest <= 75 && st.split == 0 && st.bad == 0, name);
        if (st.longest > 75 || st.split || st.bad)
            printf("#   longest %zu split %d bad %d\n", st.longest, st.split, st.bad);
        snprintf(name, sizeof name, "subject %s: lines <= 78", rows[i].name);
        CHECK(st.longline <= 78, name);
        if (rows[i].at_spaces) {
            snprintf(name, sizeof name, "subject %s: words split before spaces", rows[i].name);
            CHECK(st.words > 1 && st.midword == 0, name);
        }
        if (rows[i].how) {
            snprintf(name, sizeof name, "subject %s: %c encoding", rows[i].name, rows[i].how);
            CHECK(rows[i].how == 'B' ? st.b > 0 && st.q == 0 : st.q > 0 && st.b == 0, name);
        }
        free(d);
        free(m);
    }
    /* 200 non-ASCII characters need several words */
    struct mime_input in = base;
    in.subject = e200;
    int rc;
    char err[128];
    char *m = compose(&in, &rc, err, sizeof err);
    struct ewstat st;
    free(decoded_header(m, "Subject", &st));
    CHECK(st.words >= 6, "200 x U+00E9: at least 6 encoded words");
    free(m);

    /* display names */
    const struct {
        const char *name;
        const char *want; /* raw header value */
    } names[] = {
        {"Alice", "Alice <alice@example.com>"},
        {"Mary Ann O'Neil", "Mary Ann O'Neil <alice@example.com>"},
        {"J. R. Smith", "\"J. R. Smith\" <alice@example.com>"},
        {"a@b", "\"a@b\" <alice@example.com>"},
        {" padded ", "\" padded \" <alice@example.com>"},
        {"J\xc3\xbcrgen M\xc3\xbcller", NULL},
        {"J\xc3\xbcrgen M\xc3\xbcller-L\xc3\xbc"
         "denscheid von und zu Gr\xc3\xbcnwald Hohenzollern",
         NULL},
        {"=?UTF-8?Q?x?=", NULL},
        {"\xe5\xb1\xb1\xe7\x94\xb0 \xe5\xa4\xaa\xe9\x83\x8e", NULL},
        {emoji, NULL},
        {atoms, NULL},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        in = base;
        in.to_name = names[i].name;
        in.from_name = names[i].name;
        m = compose(&in, &rc, err, sizeof err);
        char *raw = header_raw(m, "To");
        char tname[160];
        snprintf(tname, sizeof tname, "display name '%.40s' composes", names[i].name);
        CHECK(rc == 0 && raw, tname);
        if (names[i].want) {
            CHECK_STR(raw, names[i].want, "display name written as expected");
        } else {
            char *d = decoded_header(m, "To", &st);
            size_t nl = strlen(names[i].name);
            snprintf(tname, sizeof tname, "display name '%.40s' decodes back, then <addr>",
                     names[i].name);
            int ok = d && (st.words > 0 || names[i].name == atoms) &&
                     strncmp(d, names[i].name, nl) == 0 &&
                     strcmp(d + nl, " <alice@example.com>") == 0;
            CHECK(ok, tname);
            if (!ok)
                printf("#   got '%s'\n", d ? d : "(null)");
            CHECK(st.longest <= 75 && st.split == 0 && st.bad == 0 && st.longline <= 78,
                  "display name: words <= 75, lines <= 78");
            if (strchr(names[i].name, ' '))
                CHECK_INT(st.midword, 0, "display name: words split before spaces");
            free(d);
            d = decoded_header(m, "From", &st);
            CHECK(d && strncmp(d, names[i].name, nl) == 0 && st.longline <= 78,
                  "From display name decodes back");
            free(d);
        }
        free(raw);
        free(m);
    }
    free(e200);
    free(euro);
    free(emoji);
    free(mixed);
    free(longword);
    free(cjk);
    free(spaces);
    free(atoms);
}

/* qp - qp_encode into a fresh string; caller frees */
static char *qp(const char *s)
{
    struct buf b;
    buf_init(&b, 1 << 24);
    qp_encode(&b, s, strlen(s));
    return buf_steal(&b);
}

/* qp_ref - the encoding rules one octet at a time (qp_encode without its
 * fast path for runs), to compare qp_encode with; caller frees */
static char *qp_ref(const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t n = strlen(str), col = 0;
    struct buf b;
    buf_init(&b, 1 << 24);
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        if (c == '\n' || (c == '\r' && i + 1 < n && s[i + 1] == '\n')) {
            buf_append(&b, "\r\n", 2);
            col = 0;
            i += c == '\r' ? 2 : 1;
            continue;
        }
        bool eol =
            i + 1 == n || s[i + 1] == '\n' || (s[i + 1] == '\r' && i + 2 < n && s[i + 2] == '\n');
        bool lit = (c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && !eol);
        size_t tl = lit ? 1 : 3;
        if (col + tl > (eol ? 76u : 75u)) {
            buf_append(&b, "=\r\n", 3);
            col = 0;
        }
        if (col == 0 && n - i >= 5 && memcmp(s + i, "From ", 5) == 0) {
            lit = false; /* "=46rom " */
            tl = 3;
        }
        char e[3] = {(char)c};
        if (!lit) {
            e[0] = '=';
            e[1] = hexdig[c >> 4];
            e[2] = hexdig[c & 15];
        }
        buf_append(&b, e, tl);
        col += tl;
        i++;
    }
    return buf_steal(&b);
}

/* test_qp_runs - qp_encode (eight octets at a time where it can) writes
 * what the one-octet rules write, for random text made of the octets the
 * word test decides on (space and tab before a line end, '=', the limits
 * of 0x20..0x7E) at every place in a word and every column */
static void test_qp_runs(void)
{
    static const char alphabet[] = "xxxxxxxxxxxxxxxx      \t\r\n=\x1f\x7e\x7f\x80\xff!";
    uint64_t seed = 0x9e3779b97f4a7c15u;
    int bad = 0;
    char in[400];
    for (int t = 0; t < 20000; t++) {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        size_t n = 1 + seed % (sizeof in - 1), rare = 2 + (seed >> 20) % 40;
        for (size_t i = 0; i < n; i++) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            /* mostly plain octets, so that long runs and soft breaks happen */
            in[i] = seed % rare ? (char)('a' + (seed >> 40) % 26)
                                : alphabet[(seed >> 8) % (sizeof alphabet - 1)];
        }
        in[n] = '\0';
        if ((seed >> 50) % 4 == 0 && n > 10) /* "From " somewhere, at times at a line start */
            memcpy(in + (seed >> 30) % (n - 5), "From ", 5);
        char *got = qp(in), *want = qp_ref(in);
        if (strcmp(got, want) != 0 && bad++ < 3)
            fprintf(stderr, "qp mismatch for %zu octets:\n got  %s\n want %s\n", n, got, want);
        free(got);
        free(want);
    }
    CHECK_INT(bad, 0, "qp_encode = the one-octet rules on 20000 random texts");
}

static void test_qp(void)
{
    char *x76 = repeat("x", 76), *x77 = repeat("x", 77), *x75 = repeat("x", 75),
         *x74 = repeat("x", 74), *x73 = repeat("x", 73), *x72 = repeat("x", 72);
    char *w77 = xasprintf("%s=\r\nxx", x75), *sp = xasprintf("%s \n", x75),
         *sp_want = xasprintf("%s=\r\n=20\r\n", x75), *e74 = xasprintf("%s=", x74),
         *e74_want = xasprintf("%s=\r\n=3D", x74), *e73 = xasprintf("%s=", x73),
         *e73_want = xasprintf("%s=3D", x73), *e72 = xasprintf("%s=y", x72),
         *e72_want = xasprintf("%s=3Dy", x72), *s74 = xasprintf("%s y", x74),
         *s75 = xasprintf("%s y", x75), *s75_want = xasprintf("%s=\r\n y", x75),
         *t73 = xasprintf("%s\tz", x73);
    const struct {
        const char *name, *in, *want;
    } rows[] = {
        {"plain", "hello world", "hello world"},
        {"LF becomes CRLF", "a\nb\n", "a\r\nb\r\n"},
        {"CRLF stays CRLF", "a\r\nb\r\n", "a\r\nb\r\n"},
        {"empty lines", "\n\n", "\r\n\r\n"},
        {"bare CR encoded", "a\rb", "a=0Db"},
        {"CR CR LF", "a\r\r\nb", "a=0D\r\nb"},
        {"= encoded", "a=b==", "a=3Db=3D=3D"},
        {"trailing spaces before LF", "trailing  \nx", "trailing =20\r\nx"},
        {"trailing tab at the end", "tab\t", "tab=09"},
        {"trailing space before CRLF", "a \r\n", "a=20\r\n"},
        {"space before a bare CR stays", "a \rb", "a =0Db"},
        {"inner spaces and tabs stay", "a \t b", "a \t b"},
        {"non-ASCII", "caf\xc3\xa9 \xe2\x82\xac", "caf=C3=A9 =E2=82=AC"},
        {"control octets",
         "a\x01"
         "b\x7f",
         "a=01b=7F"},
        {"lone dot line left for SMTP", "a\n.\nb", "a\r\n.\r\nb"},
        {"empty", "", ""},
        {"76 octets: no soft break", x76, x76},
        {"77 octets: soft break after 75", x77, w77},
        {"encoded space at the line end moves to the next line", sp, sp_want},
        {"=3D that would pass 76 moves to the next line", e74, e74_want},
        {"=3D ending exactly at 76", e73, e73_want},
        {"=3D then one more octet at 76", e72, e72_want},
        /* the fast path for plain octets stops where a soft break is due */
        {"inner space at column 75", s74, s74},
        {"inner space at column 76 moves to the next line", s75, s75_want},
        {"inner tab at column 74", t73, t73},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char *got = qp(rows[i].in);
        CHECK_STR(got, rows[i].want, rows[i].name);
        free(got);
    }
    char *frees[] = {x76,      x77, x75,      x74, x73,      x72, w77, sp,       sp_want, e74,
                     e74_want, e73, e73_want, e72, e72_want, s74, s75, s75_want, t73};
    for (size_t i = 0; i < sizeof frees / sizeof frees[0]; i++)
        free(frees[i]);

    /* round trips: decode(encode(x)) == x with CRLF line ends */
    char *a1000 = repeat("a", 1000), *e1000 = repeat("\xc3\xa9", 1000), *eqs = repeat("= ", 600),
         *trail = repeat("line with trailing spaces   \n", 30),
         *mix = repeat("caf\xc3\xa9 = \t.\r\n\xf0\x9f\x98\x80 end \r", 50),
         *l1000 = xasprintf("%s\n%s\r\n%s", a1000, e1000, a1000);
    const char *rt[] = {a1000, e1000, eqs, trail, mix, l1000};
    for (size_t i = 0; i < sizeof rt / sizeof rt[0]; i++) {
        char *enc = qp(rt[i]);
        size_t n = strlen(enc);
        int bad = 0;
        char *dec = qp_decode(enc, n, &bad);
        char *want = crlf(rt[i]);
        char name[96];
        snprintf(name, sizeof name, "QP round trip %zu (%zu octets): decodes back", i,
                 strlen(rt[i]));
        CHECK(strcmp(dec, want) == 0, name);
        snprintf(name, sizeof name, "QP round trip %zu: lines <= 76, no trailing space", i);
        CHECK(bad == 0, name);
        free(enc);
        free(dec);
        free(want);
    }
    free(a1000);
    free(e1000);
    free(eqs);
    free(trail);
    free(mix);
    free(l1000);
}

/* part - the decoded body of the part after the boundary line at p;
 * *ctype gets its Content-Type value. Caller frees both. */
static char *part(const char *p, const char *delim, char **ctype, int *bad)
{
    const char *hend = strstr(p, "\r\n\r\n");
    const char *end = hend ? strstr(hend + 4, delim) : NULL;
    if (!hend || !end)
        return NULL;
    char *hdrs = xstrndup(p, (size_t)(hend - p + 2));
    const char *ct = strstr(hdrs, "Content-Type: ");
    *ctype = ct ? xstrndup(ct + 14, strcspn(ct + 14, "\r")) : xstrdup("");
    if (!strstr(hdrs, "Content-Transfer-Encoding: quoted-printable\r\n"))
        (*bad)++;
    free(hdrs);
    return qp_decode(hend + 4, (size_t)(end - hend - 4), bad);
}

static void test_multipart(void)
{
    struct mime_input in = base;
    in.text = "Hello {{name}},\nplain text \xe2\x82\xac\n";
    in.html = "<html><body><p style=\"color:red\">Hello \xe2\x82\xac</p></body></html>\n";
    int rc;
    char err[128];
    char *m = compose(&in, &rc, err, sizeof err);
    CHECK_INT(rc, 0, "multipart composes");
    char *ct = header_raw(m, "Content-Type");
    char *ctu = ct ? unfold(ct) : NULL;
    const char *bp = ctu ? strstr(ctu, "boundary=\"") : NULL;
    CHECK(ctu && strncmp(ctu, "multipart/alternative;", 22) == 0 && bp,
          "Content-Type: multipart/alternative with a boundary");
    char boundary[80] = "";
    if (bp)
        snprintf(boundary, sizeof boundary, "%.*s", (int)strcspn(bp + 10, "\""), bp + 10);
    CHECK(strlen(boundary) >= 20 && strlen(boundary) <= 70, "boundary 20..70 octets");
    char *mv = header_raw(m, "MIME-Version");
    CHECK_STR(mv, "1.0", "MIME-Version: 1.0");
    free(mv);

    const char *body = body_of(m);
    char *open = xasprintf("\r\n--%s\r\n", boundary),
         *close = xasprintf("\r\n--%s--\r\n", boundary);
    char *delim = xasprintf("\r\n--%s", boundary);
    const char *p1 = strstr(body, open), *p2 = p1 ? strstr(p1 + 1, open) : NULL,
               *p3 = p2 ? strstr(p2 + 1, open) : NULL, *pc = strstr(body, close);
    CHECK(p1 && p2 && !p3, "two parts");
    CHECK(pc && pc[strlen(close)] == '\0', "closing delimiter ends the message");
    int bad = 0;
    char *t1 = NULL, *t2 = NULL, *b1 = p1 ? part(p1 + strlen(open), delim, &t1, &bad) : NULL,
         *b2 = p2 ? part(p2 + strlen(open), delim, &t2, &bad) : NULL;
    CHECK_STR(t1, "text/plain; charset=utf-8", "text part first");
    CHECK_STR(t2, "text/html; charset=utf-8", "html part second");
    char *w1 = crlf(in.text), *w2 = crlf(in.html);
    CHECK_STR(b1, w1, "text part decodes back");
    CHECK_STR(b2, w2, "html part decodes back");
    CHECK_INT(bad, 0, "both parts quoted-printable, well-formed");
    int seen = 0;
    for (const char *q = strstr(m, boundary); q; q = strstr(q + 1, boundary))
        seen++;
    CHECK_INT(seen, 4, "boundary only in Content-Type and the 3 delimiters");
    char why[96] = "";
    CHECK(lines_ok(m, strlen(m), 998, why, sizeof why), "multipart: CRLF only, lines <= 998");

    /* a second copy gets a different boundary */
    char *m2 = compose(&in, &rc, err, sizeof err);
    char *ct2 = header_raw(m2, "Content-Type");
    CHECK(ct2 && strcmp(ct, ct2) != 0, "boundaries differ between copies");

    /* the collision check: a boundary found in an encoded part is refused */
    struct addr fa, ta;
    addr_parse(in.from, &fa, err, sizeof err);
    addr_parse(in.to, &ta, err, sizeof err);
    struct buf b;
    buf_init(&b, 1 << 20);
    in.html = "<p>xyz-boundary-xyz</p>";
    CHECK_INT(
        compose_once(&in, &fa, &ta, "Thu, 01 Jan 1970 00:00:00 +0000", "boundary", in.text, &b), 1,
        "a boundary occurring in the html part is detected");
    buf_reset(&b);
    in.text = "boundary";
    CHECK_INT(
        compose_once(&in, &fa, &ta, "Thu, 01 Jan 1970 00:00:00 +0000", "boundary", in.text, &b), 1,
        "a boundary occurring in the text part is detected");
    buf_cleanup(&b);

    /* html "" is no html */
    in = base;
    in.html = "";
    free(m2);
    m2 = compose(&in, &rc, err, sizeof err);
    CHECK(rc == 0 && strstr(m2, "Content-Type: text/plain; charset=utf-8\r\n"),
          "empty html: single part");

    char *frees[] = {m, m2, ct, ct2, ctu, open, close, delim, t1, t2, b1, b2, w1, w2};
    for (size_t i = 0; i < sizeof frees / sizeof frees[0]; i++)
        free(frees[i]);
}

static void test_injection(void)
{
    static const char *const evil[] = {
        "x\r\nBcc: victim@example.com",
        "x\nBcc: v@example.com",
        "x\rX",
        "x\x01",
        "x\x7f",
        "x\tY",
        "bad \xff utf8",
        "overlong \xc0\xaf",
        "\xed\xa0\x80 surrogate",
    };
    static const char *const fields[] = {
        "from", "from_name", "to", "to_name", "subject", "message_id", "list_unsubscribe"};
    for (size_t f = 0; f < sizeof fields / sizeof fields[0]; f++) {
        int all = 1;
        for (size_t e = 0; e < sizeof evil / sizeof evil[0]; e++) {
            struct mime_input in = base;
            const char **slot[] = {
                &in.from,       &in.from_name,       &in.to, &in.to_name, &in.subject,
                &in.message_id, &in.list_unsubscribe};
            char *v = xasprintf("%s%s", f == 0 || f == 2 ? "a@b.com" : "", evil[e]);
            if (f == 5) {
                free(v);
                v = xasprintf("<id%s@d.com>", evil[e]);
            }
            *slot[f] = v;
            struct buf b;
            buf_init(&b, 1 << 20);
            buf_append(&b, "keep", 4);
            char err[128] = "";
            int rc = mime_compose(&in, &b, err, sizeof err);
            if (rc != -1 || strncmp(err, fields[f], strlen(fields[f])) != 0 ||
                strcmp(buf_str(&b), "keep") != 0) {
                all = 0;
                printf("#   %s + '%s': rc %d err '%s'\n", fields[f], evil[e], rc, err);
            }
            buf_cleanup(&b);
            free(v);
        }
        char name[96];
        snprintf(name, sizeof name, "%s: CR/LF/control/invalid UTF-8 rejected, out untouched",
                 fields[f]);
        CHECK(all, name);
    }

    const struct {
        const char *name;
        struct mime_input in;
        const char *err; /* prefix of the reason */
    } rows[] = {
        {"from missing", {.to = "a@b.com", .message_id = "<a@b>"}, "from: missing"},
        {"to missing", {.from = "a@b.com", .message_id = "<a@b>"}, "to: missing"},
        {"message_id missing", {.from = "a@b.com", .to = "a@b.com"}, "message_id: missing"},
        {"from not an address",
         {.from = "nobody", .to = "a@b.com", .message_id = "<a@b>"},
         "from: invalid address"},
        {"to one label",
         {.from = "a@b.com", .to = "a@localhost", .message_id = "<a@b>"},
         "to: invalid address"},
        {"to with a display part",
         {.from = "a@b.com", .to = "<a@b.com>", .message_id = "<a@b>"},
         "to: invalid address"},
        {"to with two addresses",
         {.from = "a@b.com", .to = "a@b.com, c@d.com", .message_id = "<a@b>"},
         "to: invalid address"},
        {"message_id without <>",
         {.from = "a@b.com", .to = "a@b.com", .message_id = "a@b"},
         "message_id"},
        {"message_id with a space",
         {.from = "a@b.com", .to = "a@b.com", .message_id = "<a b@c>"},
         "message_id"},
        {"message_id two @",
         {.from = "a@b.com", .to = "a@b.com", .message_id = "<a@b@c>"},
         "message_id"},
        {"message_id no @",
         {.from = "a@b.com", .to = "a@b.com", .message_id = "<ab>"},
         "message_id"},
        {"list_unsubscribe non-ASCII",
         {.from = "a@b.com",
          .to = "a@b.com",
          .message_id = "<a@b>",
          .list_unsubscribe = "<https://d.com/\xc3\xa9>"},
         "list_unsubscribe"},
        {"text invalid UTF-8",
         {.from = "a@b.com", .to = "a@b.com", .message_id = "<a@b>", .text = "ok \xfe"},
         "text: invalid UTF-8"},
        {"html invalid UTF-8",
         {.from = "a@b.com", .to = "a@b.com", .message_id = "<a@b>", .html = "\xc3"},
         "html: invalid UTF-8"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct buf b;
        buf_init(&b, 1 << 20);
        char err[128] = "";
        int rc = mime_compose(&rows[i].in, &b, err, sizeof err);
        CHECK(rc == -1 && b.len == 0 && strncmp(err, rows[i].err, strlen(rows[i].err)) == 0,
              rows[i].name);
        if (rc != -1 || strncmp(err, rows[i].err, strlen(rows[i].err)) != 0)
            printf("#   rc %d err '%s'\n", rc, err);
        buf_cleanup(&b);
    }
    /* control characters are fine in a body */
    struct mime_input in = base;
    in.text = "tab\there\x01\f";
    int rc;
    char err[128];
    free(compose(&in, &rc, err, sizeof err));
    CHECK_INT(rc, 0, "control characters in the body are encoded, not rejected");

    const struct {
        const char *s;
        size_t max;
        int rc;
    } checks[] = {
        {"Hello", 10, 0},
        {"Gr\xc3\xbc\xc3\x9f"
         "e",
         10, 0},
        {"", 0, 0},
        {"12345678901", 10, -1},
        {"a\r\nb", 10, -1},
        {"a\nb", 10, -1},
        {"a\rb", 10, -1},
        {"a\tb", 10, -1},
        {"a\x1b", 10, -1},
        {"a\x7f", 10, -1},
        {"\xc3\x28", 10, -1},
        {"\xe2\x82", 10, -1},
    };
    for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++) {
        char why[96] = "";
        int r = mime_check_header_text(checks[i].s, checks[i].max, why, sizeof why);
        CHECK(r == checks[i].rc && (r == 0 || why[0]), "mime_check_header_text row");
    }
    char why[96] = "";
    CHECK(mime_check_header_text(NULL, 10, why, sizeof why) == -1 && strcmp(why, "missing") == 0,
          "mime_check_header_text(NULL) is missing");
}

static void test_fill(void)
{
    static const struct {
        const char *tmpl, *name, *email, *want, *want_html;
    } rows[] = {
        {"Hi {{name}}, this is for {{email_id}}.", "Alice", "a@x.com",
         "Hi Alice, this is for a@x.com.", NULL},
        {"no placeholders", "Alice", "a@x.com", "no placeholders", NULL},
        {"{{ name }} and {{\temail_id  }}", "Bob", "b@x.com", "Bob and b@x.com", NULL},
        {"{{name}}{{email_id}}{{name}}", "N", "e", "NeN", NULL},
        {"{{unknown}} {{ other }} {{name", "A", "e", "{{unknown}} {{ other }} {{name", NULL},
        {"{{{name}}}", "A", "e", "{A}", NULL},
        {"{{ {{name}}", "A", "e", "{{ A", NULL},
        {"{{Name}} {{name }} {{na me}}", "A", "e", "{{Name}} A {{na me}}", NULL},
        {"", "A", "e", "", NULL},
        {"{{name}}", "", "e", "", NULL},
        {"{{name}}", NULL, NULL, "", NULL},
        {"x{{email_id}}y", "A", NULL, "xy", NULL},
        {"{{name}}{{", "A", "e", "A{{", NULL},
        {"<b>{{name}}</b>", "<script>&\"'", "e", "<b><script>&\"'</b>",
         "<b>&lt;script&gt;&amp;&quot;&#39;</b>"},
        {"{{name}} \xc3\xa9", "J\xc3\xbcrgen", "e", "J\xc3\xbcrgen \xc3\xa9", NULL},
        {"a {{name}} b", "{{email_id}}", "e", "a {{email_id}} b", NULL},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char *got = mime_fill(rows[i].tmpl, rows[i].name, rows[i].email);
        CHECK_STR(got, rows[i].want, rows[i].tmpl);
        free(got);
        got = mime_fill_html(rows[i].tmpl, rows[i].name, rows[i].email);
        CHECK_STR(got, rows[i].want_html ? rows[i].want_html : rows[i].want, "html variant");
        free(got);
    }
    char *got = mime_fill(NULL, "A", "e");
    CHECK_STR(got, "", "NULL template reads as empty");
    free(got);

    /* worst case: each placeholder at its value's maximum, x6 escaped */
    CHECK_INT(mime_fill_worst("Hi {{name}}, {{ email_id }}!{{x}}", false, 256, 254),
              strlen("Hi , !{{x}}") + 256 + 254, "worst case, text");
    CHECK_INT(mime_fill_worst("<p>{{name}}</p>", true, 256, 254), 7 + 6 * 256,
              "worst case, html escaping");
    CHECK_INT(mime_fill_worst("{{{name}}}{{name", false, 10, 10), 2 + 10 + 6, "worst case, edges");
    CHECK_INT(mime_fill_worst(NULL, false, 10, 10), 0, "worst case, no template");
    /* the amplification attack: 1 MiB of {{name}} and a 256-octet name */
    size_t n = 131000;
    char *tmpl = xmalloc(8 * n + 1), name[257];
    for (size_t i = 0; i < n; i++)
        memcpy(tmpl + 8 * i, "{{name}}", 8);
    tmpl[8 * n] = '\0';
    memset(name, 'N', 256);
    name[256] = '\0';
    CHECK(mime_fill_worst(tmpl, false, 256, 254) > MIME_FILLED_MAX,
          "the attack's worst case is over");
    got = mime_fill(tmpl, name, "e");
    CHECK(got == NULL, "filling stops at MIME_FILLED_MAX (NULL, nothing kept)");
    free(got);
    tmpl[8 * 8000] = '\0'; /* 8,000 x 256 = 2,048,000 octets: just under */
    got = mime_fill(tmpl, name, "e");
    CHECK(got && strlen(got) == 8000 * 256, "a fill just under the cap completes");
    free(got);
    free(tmpl);
}

/* ---- random inputs ---- */

static uint64_t rng = 0x9E3779B97F4A7C15u;

static unsigned rnd(unsigned n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng % n);
}

/* rand_text - random UTF-8 from a pool of pieces; lines allows line ends */
static char *rand_text(size_t maxlen, int lines)
{
    static const char *const pieces[] = {"a",
                                         "Z",
                                         "0",
                                         " ",
                                         "  ",
                                         "=",
                                         "?",
                                         "=?",
                                         "?=",
                                         "_",
                                         "\"",
                                         "\\",
                                         ".",
                                         ",",
                                         "<",
                                         ">",
                                         "@",
                                         "(",
                                         ";",
                                         ":",
                                         "\xc3\xa9",
                                         "\xe2\x82\xac",
                                         "\xf0\x9f\x98\x80",
                                         "\xe6\x97\xa5",
                                         "word ",
                                         "{{name}}",
                                         "x",
                                         "y",
                                         "~",
                                         "\t",
                                         "\n",
                                         "\r\n",
                                         "\r",
                                         "\n.\n",
                                         "\x01"};
    size_t len = rnd((unsigned)maxlen + 1);
    struct buf b;
    buf_init(&b, 1 << 24);
    buf_append(&b, "", 0);
    size_t np = sizeof pieces / sizeof pieces[0];
    size_t limit = lines ? np : np - 6; /* header text: no TAB, line ends, controls */
    while (b.len < len) {
        if (lines && rnd(8) == 0) { /* a long run without a line end */
            size_t run = rnd(1200);
            for (size_t k = 0; k < run; k++) {
                int ascii = rnd(4) != 0;
                buf_append(&b, ascii ? "x" : "\xc3\xa9", ascii ? 1 : 2);
            }
        }
        const char *p = pieces[rnd((unsigned)limit)];
        buf_append(&b, p, strlen(p));
    }
    return buf_steal(&b);
}

static void test_fuzz(void)
{
    int failed = 0, lines_bad = 0, subj_bad = 0, name_bad = 0, body_bad = 0, hdr78 = 0;
    char why[96] = "";
    for (int it = 0; it < 400; it++) {
        char *subject = rand_text(it % 3 ? 120 : 600, 0), *name = rand_text(80, 0),
             *fname = rand_text(40, 0), *text = rand_text(it % 5 ? 300 : 5000, 1),
             *html = it % 2 ? rand_text(2000, 1) : NULL;
        struct mime_input in = base;
        in.subject = subject;
        in.to_name = name;
        in.from_name = fname;
        in.text = text;
        in.html = html;
        in.date_ms = (int64_t)rnd(2000000000) * 1000;
        int rc;
        char err[128] = "";
        char *m = compose(&in, &rc, err, sizeof err);
        if (rc != 0) {
            if (!failed)
                printf("#   compose failed: %s\n", err);
            failed++;
            goto next;
        }
        size_t n = strlen(m);
        if (!lines_ok(m, n, 998, why, sizeof why)) {
            if (!lines_bad)
                printf("#   %s\n", why);
            lines_bad++;
        }
        /* header lines: <= 78 here (all addresses short) */
        const char *hend = strstr(m, "\r\n\r\n");
        if (!lines_ok(m, (size_t)(hend - m) + 2, 78, why, sizeof why)) {
            if (!hdr78)
                printf("#   header: %s\n", why);
            hdr78++;
        }
        struct ewstat st;
        char *d = decoded_header(m, "Subject", &st);
        if (!d || strcmp(d, subject) != 0 || st.longest > 75 || st.split || st.bad)
            subj_bad++;
        free(d);
        d = decoded_header(m, "To", &st);
        char *want =
            *name ? xasprintf("%s <alice@example.com>", name) : xstrdup("alice@example.com");
        /* a plain phrase or quoted string reads back with quotes: compare encoded ones only */
        if (!d || st.longest > 75 || st.split || st.bad || (st.words && strcmp(d, want) != 0))
            name_bad++;
        free(want);
        free(d);
        if (!html) {
            int bad = 0;
            const char *body = body_of(m);
            char *dec = qp_decode(body, strlen(body), &bad);
            char *w = crlf(text);
            size_t wl = strlen(w);
            /* a final CRLF is added when the text does not end in one */
            if (bad || strncmp(dec, w, wl) != 0 ||
                !(dec[wl] == '\0' || (strcmp(dec + wl, "\r\n") == 0 && wl > 0)))
                body_bad++;
            free(dec);
            free(w);
        }
    next:
        free(m);
        free(subject);
        free(name);
        free(fname);
        free(text);
        free(html);
    }
    CHECK_INT(failed, 0, "random inputs: all compose");
    CHECK_INT(lines_bad, 0, "random inputs: CRLF only, every line <= 998, ends in CRLF");
    CHECK_INT(hdr78, 0, "random inputs: every header line <= 78");
    CHECK_INT(subj_bad, 0, "random inputs: subject decodes back, words <= 75, none split");
    CHECK_INT(name_bad, 0, "random inputs: display names decode back");
    CHECK_INT(body_bad, 0, "random inputs: text body decodes back, QP well-formed");
}

/* ---- deliverability: Feedback-ID, text from html, "From " lines, IDN recipients ---- */

/* no_from_line - no line of m starts with "From " */
static int no_from_line(const char *m)
{
    for (const char *p = m; p; p = strstr(p, "\r\n") ? strstr(p, "\r\n") + 2 : NULL)
        if (strncmp(p, "From ", 5) == 0)
            return 0;
    return 1;
}

static void test_feedback_id(void)
{
    char v[MIME_FEEDBACK_ID_MAX];
    CHECK_INT(mime_feedback_id(123, "news@acme.example", "m.example", v, sizeof v), 0,
              "feedback id made");
    CHECK_STR(v, "123:news:warmup:m.example", "{email_id}:{identity}:warmup:{domain}");
    CHECK_INT(mime_feedback_id(7, "\"a:b c\"@acme.example", "m.example", v, sizeof v), 0,
              "quoted local part");
    CHECK_STR(v, "7:-a-b-c-:warmup:m.example", "identity made safe: no ':', no quote, no space");
    CHECK_INT(mime_feedback_id(9, "first.last+tag@acme.example", "m.example", v, sizeof v), 0,
              "dots and plus kept");
    CHECK_STR(v, "9:first.last+tag:warmup:m.example", "atext and dots as they are");
    static const struct {
        int64_t id;
        const char *from, *dom;
    } bad[] = {
        {0, "a@b.example", "m.example"},
        {-1, "a@b.example", "m.example"},
        {1, "nobody", "m.example"},
        {1, "@b.example", "m.example"},
        {1, "a@b.example", ""},
        {1, "a@b.example", "m:x"},
        {1, "a@b.example", "m.ex\r\nX: y"},
        {1, NULL, "m.example"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char name[64];
        snprintf(name, sizeof name, "feedback id refused: bad[%zu]", i);
        CHECK_INT(mime_feedback_id(bad[i].id, bad[i].from, bad[i].dom, v, sizeof v), -1, name);
    }
    char small[10];
    CHECK_INT(mime_feedback_id(123, "news@acme.example", "m.example", small, sizeof small), -1,
              "feedback id: buffer too small");

    struct mime_input in = base;
    in.feedback_id = "1:noreply:warmup:d.com";
    in.list_unsubscribe = "<https://d.com/u/1>";
    int rc;
    char err[160] = "";
    char *m = compose(&in, &rc, err, sizeof err);
    CHECK_INT(rc, 0, "message with Feedback-ID composes");
    CHECK(strstr(m, "Message-ID: <email-1.9f2c@d.com>\r\n"
                    "Feedback-ID: 1:noreply:warmup:d.com\r\n"
                    "List-Unsubscribe: <https://d.com/u/1>\r\n"
                    "MIME-Version: 1.0\r\n") != NULL,
          "Feedback-ID after Message-ID, before List-Unsubscribe");
    free(m);
    in.feedback_id = "1:x\r\nBcc: victim@evil.example";
    m = compose(&in, &rc, err, sizeof err);
    CHECK(rc == -1 && strstr(err, "feedback_id"), "CR LF in Feedback-ID refused");
    free(m);
    in.feedback_id = "1:caf\xc3\xa9:warmup:d.com";
    m = compose(&in, &rc, err, sizeof err);
    CHECK(rc == -1 && strstr(err, "feedback_id"), "non-ASCII Feedback-ID refused");
    free(m);
}

static void test_html_text(void)
{
    static const struct {
        const char *html, *want;
    } cases[] = {
        {"", ""},
        {"plain", "plain\n"},
        {"<p>Hello&nbsp;<b>World</b></p>", "Hello\xc2\xa0World\n"},
        {"<p>one</p><p>two</p>", "one\n\ntwo\n"},
        {"a<br>b<br/>c<BR >d", "a\nb\nc\nd\n"},
        {"a<br><br><br><br>b", "a\n\nb\n"},
        {"<div>x</div><div>y</div>", "x\ny\n"},
        {"<h1>Title</h1>text", "Title\n\ntext\n"},
        {"<ul><li>one</li><li>  two  </li></ul>", "- one\n- two\n"},
        {"  lots   of \n\t white   space  ", "lots of white space\n"},
        {"<pre>  a\n   b</pre>", "  a\n   b\n"},
        {"<table><tr><td>a</td><td>b</td></tr><tr><th>c</th><td>d</td></tr></table>", "a b\nc d\n"},
        {"Go <a href=\"https://x.example/p?a=1&amp;b=2\">here</a>.",
         "Go here (https://x.example/p?a=1&b=2).\n"},
        {"<a href='https://x.example'>https://x.example</a>", "https://x.example\n"},
        {"<a href=https://x.example></a>", "https://x.example\n"},
        {"<a href=\"mailto:a@b.example\">a@b.example</a>", "a@b.example\n"},
        {"<a href=\"mailto:a@b.example\">write</a>", "write (mailto:a@b.example)\n"},
        {"<a href=\"#top\">top</a> <a href=\"javascript:x()\">js</a>", "top js\n"},
        {"<a name=x>anchor</a>", "anchor\n"},
        {"<A HREF=\"u.example\">x <a href=v>y</a> z</A>", "x y (u.example) z\n"},
        {"&amp;&lt;&gt;&quot;&apos;&#65;&#x42;&#X43;", "&<>\"'ABC\n"},
        {"&euro;&copy;&mdash;&hellip;", "\xe2\x82\xac\xc2\xa9\xe2\x80\x94\xe2\x80\xa6\n"},
        {"&#0;&#xD800;&#x110000;&#1;&#150;", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
                                             "\xef\xbf\xbd\n"},
        {"&bogus; &amp &#; &#xZ; & ;", "&bogus; &amp &#; &#xZ; & ;\n"},
        {"soft&shy;hyphen", "softhyphen\n"},
        {"a&#10;b", "a b\n"},
        {"<head><title>T</title><style>p{}</style></head><body>B</body>", "B\n"},
        {"<html><head><title>T</title><body>B", "B\n"},
        {"a<script>alert('<p>x</p>')</script>b<SCRIPT src=x></SCRIPT >c", "abc\n"},
        {"a<style>never closed", "a\n"},
        {"a<!-- <p>hidden</p> -->b<!DOCTYPE html>c<?xml x?>d", "abcd\n"},
        {"a<!-- unclosed", "a\n"},
        {"a < b and c<3", "a < b and c<3\n"},
        {"x<p class=\"a>b\">y</p>", "x\n\ny\n"},
        {"x<p title=it's>y", "x\n\ny\n"},
        {"<p>unclosed <b", "unclosed\n"},
        {"<img src=x alt=\"A &amp; B\">", "A & B\n"},
        {"caf\xc3\xa9 \xe2\x82\xac", "caf\xc3\xa9 \xe2\x82\xac\n"},
        {"<p>From here</p>", "From here\n"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char name[96];
        snprintf(name, sizeof name, "html text: cases[%zu]", i);
        char *t = html_text(cases[i].html);
        CHECK_STR(t, cases[i].want, name);
        free(t);
    }
    char *t = html_text(NULL);
    CHECK_STR(t, "", "html text: NULL is empty");
    free(t);

    /* bounded, and cut between characters: 3 MiB of euro signs */
    size_t n = 3u * 1024 * 1024 / 3;
    char *big = xmalloc(3 * n + 1);
    for (size_t i = 0; i < n; i++)
        memcpy(big + 3 * i, "\xe2\x82\xac", 3);
    big[3 * n] = '\0';
    t = html_text(big);
    size_t tl = strlen(t);
    CHECK(tl <= MIME_FILLED_MAX && tl > MIME_FILLED_MAX - 8, "html text: at most MIME_FILLED_MAX");
    CHECK(utf8_valid(t, tl), "html text: cut at a character boundary");
    free(t);
    free(big);
    /* links that double the size are bounded too */
    struct buf b;
    buf_init(&b, 8u << 20);
    for (int i = 0; i < 20000; i++)
        buf_printf(&b, "<a href=\"https://x.example/%0100d\">l</a>", i);
    t = html_text(buf_str(&b));
    tl = strlen(t);
    CHECK(tl <= MIME_FILLED_MAX && utf8_valid(t, tl), "html text: many links bounded");
    free(t);
    buf_cleanup(&b);
}

/* text_part - the decoded text/plain part of multipart m; caller frees */
static char *text_part(const char *m)
{
    char *ct = header_raw(m, "Content-Type"), *u = ct ? unfold(ct) : NULL;
    const char *bp = u ? strstr(u, "boundary=\"") : NULL;
    char *r = NULL;
    if (bp) {
        char *open = xasprintf("--%.*s\r\n", (int)strcspn(bp + 10, "\""), bp + 10);
        char *delim = xasprintf("\r\n--%.*s", (int)strcspn(bp + 10, "\""), bp + 10);
        const char *p = strstr(m, open);
        char *ctype = NULL;
        int bad = 0;
        r = p ? part(p + strlen(open), delim, &ctype, &bad) : NULL;
        if (ctype && strcmp(ctype, "text/plain; charset=utf-8") != 0) {
            free(r);
            r = NULL;
        }
        free(ctype);
        free(open);
        free(delim);
    }
    free(ct);
    free(u);
    return r;
}

static void test_html_only(void)
{
    struct mime_input in = base;
    in.text = "";
    in.html = "<p>Hello <b>Alice</b></p><p>See <a href=\"https://d.com/x\">this</a></p>";
    int rc;
    char err[160] = "";
    char *m = compose(&in, &rc, err, sizeof err);
    CHECK_INT(rc, 0, "html only composes");
    char *ct = header_raw(m, "Content-Type");
    CHECK(ct && strncmp(ct, "multipart/alternative;", 22) == 0, "html only: multipart/alternative");
    char *tp = text_part(m);
    CHECK_STR(tp, "Hello Alice\r\n\r\nSee this (https://d.com/x)\r\n",
              "html only: the text part is made from the html");
    free(tp);
    free(ct);
    free(m);
    in.text = " \r\n\t\n";
    m = compose(&in, &rc, err, sizeof err);
    tp = text_part(m);
    CHECK_STR(tp, "Hello Alice\r\n\r\nSee this (https://d.com/x)\r\n",
              "white-space-only text: made from the html too");
    free(tp);
    free(m);
    in.text = "Own text";
    m = compose(&in, &rc, err, sizeof err);
    tp = text_part(m);
    CHECK_STR(tp, "Own text", "a given text is kept");
    free(tp);
    free(m);
    in.text = NULL;
    in.html = "<script>x</script>";
    m = compose(&in, &rc, err, sizeof err);
    tp = text_part(m);
    CHECK(rc == 0 && tp && !strcmp(tp, ""), "html with no visible text: empty text part");
    free(tp);
    free(m);
}

static void test_from_lines(void)
{
    char *e;
    static const struct {
        const char *in, *enc;
    } cases[] = {
        {"From here", "=46rom here"},
        {"From here\nFrom there\n", "=46rom here\r\n=46rom there\r\n"},
        {"x\r\nFrom a", "x\r\n=46rom a"},
        {"From", "From"},
        {"From\tx", "From\tx"},
        {"from x", "from x"},
        {" From x", " From x"},
        {"Fro", "Fro"},
        {"aFrom x", "aFrom x"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char name[64];
        snprintf(name, sizeof name, "From line: cases[%zu]", i);
        e = qp(cases[i].in);
        CHECK_STR(e, cases[i].enc, name);
        free(e);
    }
    /* a soft break right before "From ": the next encoded line starts with it */
    char *a75 = repeat("a", 75), *in = xasprintf("%sFrom z\n%sFrom y", a75, a75);
    e = qp(in);
    CHECK(no_from_line(e), "no encoded line starts with \"From \" after a soft break");
    CHECK(strstr(e, "=\r\n=46rom z") != NULL, "soft break then =46rom");
    int bad = 0;
    char *d = qp_decode(e, strlen(e), &bad), *w = crlf(in);
    CHECK(bad == 0 && !strcmp(d, w), "From lines decode back");
    free(d);
    free(w);
    free(e);
    free(in);
    free(a75);
    /* a whole message: text and html parts */
    struct mime_input mi = base;
    mi.text = "From the team\nbye\n";
    mi.html = "<p>x</p>\nFrom the team\n";
    int rc;
    char err[160];
    char *m = compose(&mi, &rc, err, sizeof err);
    CHECK(rc == 0 && no_from_line(body_of(m)) && strstr(m, "\r\n=46rom the team\r\n"),
          "message: no body line starts with \"From \"");
    free(m);
}

static void test_idn_to(void)
{
    struct mime_input in = base;
    in.to = "user@b\xc3\xbc"
            "cher.example";
    int rc;
    char err[160] = "";
    char *m = compose(&in, &rc, err, sizeof err);
    char *to = header_raw(m, "To");
    CHECK(rc == 0 && to && !strcmp(to, "Alice <user@xn--bcher-kva.example>"),
          "ASCII local part, UTF-8 domain: To in A-labels");
    free(to);
    free(m);
    in.to = "\xc3\xbcser@b\xc3\xbc"
            "cher.example";
    m = compose(&in, &rc, err, sizeof err);
    to = header_raw(m, "To");
    CHECK(rc == 0 && to &&
              !strcmp(to, "Alice <\xc3\xbcser@b\xc3\xbc"
                          "cher.example>"),
          "UTF-8 local part: To raw (RFC 6532)");
    free(to);
    free(m);
}

int main(void)
{
    test_exact();
    test_dates();
    test_encoded_words();
    test_qp();
    test_qp_runs();
    test_multipart();
    test_injection();
    test_fill();
    test_fuzz();
    test_feedback_id();
    test_html_text();
    test_html_only();
    test_from_lines();
    test_idn_to();
    return test_done();
}
