/* mime_check.h - decoders and checks for MIME messages, written
 * independently of warmup-service/mime.c so that tests can read back what
 * it composed: line rules, header lookup and unfolding, RFC 2047 encoded
 * words, quoted-printable. Shared by tests/unit/test_mime.c and
 * tests/fuzz/fuzz_mime.c; header-only (static inline), includes nothing
 * the includer does not already have (buf.h, string.h, strings.h). */
#ifndef MIME_CHECK_H
#define MIME_CHECK_H

static const char mc_b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* lines_ok - CRLF only and no line over max octets; reason into why */
static inline int lines_ok(const char *m, size_t n, size_t max, char *why, size_t whylen)
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
static inline char *header_raw(const char *msg, const char *name)
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
static inline char *unfold(const char *s)
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

static inline int b64val(char c)
{
    const char *p = strchr(mc_b64, c);
    return c && p ? (int)(p - mc_b64) : -1;
}

static inline int hexval(char c)
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
static inline char *ew_decode(const char *v, struct ewstat *st)
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
static inline char *decoded_header(const char *msg, const char *name, struct ewstat *st)
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
static inline char *qp_decode(const char *s, size_t n, int *bad)
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
static inline char *crlf(const char *s)
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

#endif
