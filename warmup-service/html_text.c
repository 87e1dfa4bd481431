/* html_text.c - html to plain text (html_text.h): a single pass over the
 * markup with a small state (struct h2t); the output is capped at
 * MIME_FILLED_MAX, the cap of every filled text. */
#include "html_text.h"
#include "mime.h"
#include "utf8.h"
#include "xalloc.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* struct h2t - the text being made: octets in out[0..len), at most
 * MIME_FILLED_MAX; only whole characters are appended, so stopping at the
 * cap leaves valid UTF-8 */
struct h2t {
    char *out;
    size_t len, cap;
    int nl;         /* line ends at the end of out */
    bool space;     /* collapsed white space waits to be written */
    int pre;        /* depth of <pre>: white space kept */
    bool full;      /* the cap was reached: nothing more is written */
    char *href;     /* the open link's target, or NULL */
    size_t link_at; /* where the open link's text starts */
};

static void h2t_raw(struct h2t *h, const char *s, size_t n)
{
    if (h->full || n == 0)
        return;
    if (h->len + n + 2 > MIME_FILLED_MAX) { /* room for the final LF and NUL */
        n = MIME_FILLED_MAX - 2 - h->len;   /* a cut character is dropped at the end */
        h->full = true;
    }
    if (h->len + n + 2 > h->cap) {
        size_t c = h->cap * 2 > h->len + n + 2 ? h->cap * 2 : h->len + n + 2;
        h->cap = c < MIME_FILLED_MAX ? c : MIME_FILLED_MAX;
        h->out = xrealloc(h->out, h->cap);
    }
    memcpy(h->out + h->len, s, n);
    h->len += n;
}

/* h2t_word - visible non-space octets, after the pending space */
static void h2t_word(struct h2t *h, const char *s, size_t n)
{
    if (h->space && h->len && h->nl == 0)
        h2t_raw(h, " ", 1);
    h->space = false;
    h2t_raw(h, s, n);
    h->nl = 0;
}

/* h2t_break - end the line, or the paragraph (lines = 2); nothing before
 * the first text; never more than one empty line */
static void h2t_break(struct h2t *h, int lines)
{
    h->space = false;
    if (h->len == 0)
        return;
    while (h->nl < lines) {
        h2t_raw(h, "\n", 1);
        h->nl++;
    }
}

/* h2t_white - one white-space octet of the text */
static void h2t_white(struct h2t *h, char c)
{
    if (!h->pre) {
        h->space = true;
        return;
    }
    if (c == '\r')
        return; /* CR LF or a bare CR inside <pre>: the LF (or nothing) ends the line */
    if (c == '\n') {
        if (h->len == 0)
            return;
        h2t_raw(h, "\n", 1);
        h->nl = h->nl < 2 ? h->nl + 1 : 2;
        h->space = false;
    } else {
        h2t_raw(h, " ", 1);
        h->nl = 0;
    }
}

static bool is_white(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}

static bool is_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* utf8_put - code point cp as UTF-8 into b (4 octets); its length */
static size_t utf8_put(char *b, unsigned long cp)
{
    if (cp < 0x80) {
        b[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        b[0] = (char)(0xC0 | (cp >> 6));
        b[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        b[0] = (char)(0xE0 | (cp >> 12));
        b[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    b[0] = (char)(0xF0 | (cp >> 18));
    b[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    b[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    b[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static const struct {
    const char *name;
    unsigned long cp;
} entities[] = {
    {"amp", '&'},      {"lt", '<'},        {"gt", '>'},       {"quot", '"'},     {"apos", '\''},
    {"nbsp", 0xA0},    {"copy", 0xA9},     {"reg", 0xAE},     {"trade", 0x2122}, {"hellip", 0x2026},
    {"mdash", 0x2014}, {"ndash", 0x2013},  {"lsquo", 0x2018}, {"rsquo", 0x2019}, {"ldquo", 0x201C},
    {"rdquo", 0x201D}, {"bull", 0x2022},   {"middot", 0xB7},  {"euro", 0x20AC},  {"pound", 0xA3},
    {"yen", 0xA5},     {"cent", 0xA2},     {"sect", 0xA7},    {"deg", 0xB0},     {"laquo", 0xAB},
    {"raquo", 0xBB},   {"times", 0xD7},    {"divide", 0xF7},  {"shy", 0xAD},     {"zwnj", 0x200C},
    {"zwj", 0x200D},   {"thinsp", 0x2009}, {"ensp", 0x2002},  {"emsp", 0x2003},
};

/* entity - the character reference at s ('&'): its code point and *n, the
 * octets it takes; 0 when it is none (the '&' is then text). Invalid
 * numbers, NUL, surrogates and controls other than TAB and LF are U+FFFD. */
static unsigned long entity(const char *s, size_t *n)
{
    const char *p = s + 1;
    if (*p == '#') {
        bool hex = p[1] == 'x' || p[1] == 'X';
        const char *d = p + (hex ? 2 : 1), *q = d;
        unsigned long cp = 0;
        for (; q - d < 8; q++) {
            unsigned char c = (unsigned char)*q;
            int v = c >= '0' && c <= '9'                            ? c - '0'
                    : hex && (c | 0x20) >= 'a' && (c | 0x20) <= 'f' ? (c | 0x20) - 'a' + 10
                                                                    : -1;
            if (v < 0)
                break;
            cp = cp * (hex ? 16 : 10) + (unsigned long)v;
        }
        if (q == d || *q != ';')
            return 0;
        *n = (size_t)(q + 1 - s);
        if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF) ||
            (cp < 0x20 && cp != '\t' && cp != '\n') || (cp >= 0x7F && cp < 0xA0))
            return 0xFFFD;
        return cp;
    }
    size_t k = 0;
    while (k < 8 && is_alnum((unsigned char)p[k]))
        k++;
    if (k == 0 || p[k] != ';')
        return 0;
    for (size_t i = 0; i < sizeof entities / sizeof entities[0]; i++) {
        if (strlen(entities[i].name) == k && memcmp(entities[i].name, p, k) == 0) {
            *n = k + 2;
            return entities[i].cp;
        }
    }
    return 0;
}

/* h2t_text - the text s[0..n) between tags: references decoded, white
 * space collapsed (kept inside <pre>) */
static void h2t_text(struct h2t *h, const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && !h->full) {
        unsigned char c = (unsigned char)s[i];
        if (is_white(c)) {
            h2t_white(h, (char)c);
            i++;
            continue;
        }
        size_t run = i;
        while (run < n && !is_white((unsigned char)s[run]) && s[run] != '&')
            run++;
        if (run > i) {
            h2t_word(h, s + i, run - i);
            i = run;
            continue;
        }
        /* '&': the input is a NUL-terminated string, so looking ahead is safe */
        size_t len = 0;
        unsigned long cp = entity(s + i, &len);
        if (cp == 0 || i + len > n) {
            h2t_word(h, "&", 1);
            i++;
        } else if (cp == '\t' || cp == '\n') {
            h2t_white(h, (char)cp);
            i += len;
        } else if (cp == 0xAD || cp == 0x200C || cp == 0x200D) {
            i += len; /* invisible */
        } else {
            char u[4];
            h2t_word(h, u, utf8_put(u, cp));
            i += len;
        }
    }
}

/* tag_name - the lower-cased element name at p into name[16]; its end, or
 * NULL when it does not start with a letter; a longer name is cut (no
 * element we act on has one) */
static const char *tag_name(const char *p, char name[16])
{
    size_t k = 0;
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
        return NULL;
    for (; is_alnum((unsigned char)*p); p++)
        if (k < 15)
            name[k++] = (char)(*p | 0x20);
    name[k] = '\0';
    return p;
}

/* tag_end - past the '>' that ends the tag whose attributes start at p
 * (a quoted value, after '=', may hold '>'); NULL when the input ends
 * first */
static const char *tag_end(const char *p)
{
    char prev = ' ';
    for (; *p && *p != '>'; p++) {
        if ((*p == '"' || *p == '\'') && prev == '=') {
            const char *q = strchr(p + 1, *p);
            if (!q)
                return NULL;
            p = q;
        }
        if (!is_white((unsigned char)*p))
            prev = *p;
    }
    return *p ? p + 1 : NULL;
}

/* attr - the value of attribute want (lower case) among p[0..end), decoded
 * and with white space collapsed; caller frees; NULL when absent */
static char *attr(const char *p, const char *end, const char *want)
{
    size_t wl = strlen(want);
    while (p < end) {
        while (p < end && (is_white((unsigned char)*p) || *p == '/'))
            p++;
        const char *name = p;
        while (p < end && !is_white((unsigned char)*p) && *p != '=' && *p != '>' && *p != '/')
            p++;
        size_t nl = (size_t)(p - name);
        while (p < end && is_white((unsigned char)*p))
            p++;
        const char *v = p, *ve = p;
        if (p < end && *p == '=') {
            p++;
            while (p < end && is_white((unsigned char)*p))
                p++;
            if (p < end && (*p == '"' || *p == '\'')) {
                char q = *p++;
                v = p;
                while (p < end && *p != q)
                    p++;
                ve = p;
                if (p < end)
                    p++;
            } else {
                v = p;
                while (p < end && !is_white((unsigned char)*p) && *p != '>')
                    p++;
                ve = p;
            }
        }
        if (nl == 0) {
            if (p < end)
                p++;
            continue;
        }
        if (nl == wl && strncasecmp(name, want, wl) == 0) {
            struct h2t t = {.cap = (size_t)(ve - v) + 8};
            t.out = xmalloc(t.cap);
            h2t_text(&t, v, (size_t)(ve - v));
            h2t_raw(&t, "", 1);
            return t.out;
        }
    }
    return NULL;
}

/* skip_element - past the end tag of name (script, style, ...) from p;
 * NULL when there is none */
static const char *skip_element(const char *p, const char *name)
{
    size_t nl = strlen(name);
    for (const char *q = p; (q = strstr(q, "</")) != NULL; q += 2)
        if (strncasecmp(q + 2, name, nl) == 0 && !is_alnum((unsigned char)q[2 + nl]))
            return tag_end(q + 2 + nl);
    return NULL;
}

/* in_set - name is one of the space-separated words of set */
static bool in_set(const char *name, const char *set)
{
    size_t n = strlen(name);
    for (const char *p = set; (p = strstr(p, name)) != NULL; p += n)
        if ((p == set || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
            return true;
    return false;
}

static const char *const h2t_hidden = "script style head title template";
static const char *const h2t_para = "p h1 h2 h3 h4 h5 h6 ul ol dl table blockquote pre hr address "
                                    "center form fieldset figure header footer section article "
                                    "nav aside main";
static const char *const h2t_line = "div li tr dt dd caption figcaption";

/* link_close - </a>: " (url)" after the link's text */
static void link_close(struct h2t *h)
{
    char *url = h->href;
    h->href = NULL;
    if (!url)
        return;
    size_t ul = strlen(url);
    const char *text = h->len >= h->link_at ? h->out + h->link_at : "";
    size_t tl = h->len >= h->link_at ? h->len - h->link_at : 0;
    while (tl && is_white((unsigned char)*text))
        text++, tl--;
    const char *shown = strncasecmp(url, "mailto:", 7) == 0 ? url + 7 : url;
    bool skip = ul == 0 || url[0] == '#' || strncasecmp(url, "javascript:", 11) == 0;
    if (!skip && !(tl == strlen(shown) && memcmp(text, shown, tl) == 0) &&
        !(tl == ul && memcmp(text, url, tl) == 0)) {
        if (tl == 0) {
            h2t_word(h, url, ul);
        } else {
            h->space = true;
            h2t_word(h, "(", 1);
            h2t_raw(h, url, ul);
            h2t_raw(h, ")", 1);
        }
    }
    free(url);
}

char *html_text(const char *html)
{
    struct h2t h = {0};
    const char *p = html ? html : "";
    size_t n = strlen(p);
    h.cap = (n < MIME_FILLED_MAX ? n : MIME_FILLED_MAX) + 16;
    h.out = xmalloc(h.cap);
    while (*p && !h.full) {
        const char *lt = strchr(p, '<');
        size_t run = lt ? (size_t)(lt - p) : strlen(p);
        h2t_text(&h, p, run);
        if (!lt)
            break;
        p = lt;
        char name[16];
        bool closing = p[1] == '/';
        const char *ne = tag_name(p + 1 + closing, name);
        if (p[1] == '!' || p[1] == '?') {
            const char *e = strncmp(p, "<!--", 4) == 0 ? strstr(p + 4, "-->") : strchr(p, '>');
            if (!e)
                break; /* an unclosed comment hides the rest */
            p = e + (e[0] == '-' ? 3 : 1);
            continue;
        }
        if (!ne) {
            h2t_word(&h, "<", 1); /* "a < b": text */
            p++;
            continue;
        }
        const char *end = tag_end(ne);
        if (!end)
            break;
        if (!closing && in_set(name, h2t_hidden)) {
            const char *after = skip_element(end, name);
            if (after) {
                p = after;
                continue;
            }
            if (!strcmp(name, "script") || !strcmp(name, "style"))
                break; /* never show code: an unclosed script ends the text */
        }
        if (!strcmp(name, "br")) {
            h.space = false;
            if (h.len && h.nl < 2) {
                h2t_raw(&h, "\n", 1);
                h.nl++;
            }
        } else if (in_set(name, h2t_para)) {
            h2t_break(&h, 2);
            if (!strcmp(name, "pre"))
                h.pre = closing ? (h.pre ? h.pre - 1 : 0) : h.pre + 1;
        } else if (in_set(name, h2t_line)) {
            h2t_break(&h, 1);
            if (!closing && !strcmp(name, "li")) {
                h2t_word(&h, "-", 1);
                h.space = true; /* "- item" */
            }
        } else if (!strcmp(name, "td") || !strcmp(name, "th")) {
            h.space = true;
        } else if (!strcmp(name, "img") && !closing) {
            char *alt = attr(ne, end - 1, "alt");
            if (alt && *alt)
                h2t_word(&h, alt, strlen(alt));
            free(alt);
        } else if (!strcmp(name, "a")) {
            if (closing) {
                link_close(&h);
            } else if (!h.href) {
                h.href = attr(ne, end - 1, "href");
                h.link_at = h.len; /* a space written before the text is skipped */
            }
        }
        p = end;
    }
    link_close(&h); /* an unclosed link still shows its target */
    while (h.len && (h.out[h.len - 1] == '\n' || h.out[h.len - 1] == ' '))
        h.len--;
    if (h.full)
        h.len = utf8_check(h.out, h.len);
    if (h.len)
        h.out[h.len++] = '\n';
    h.out[h.len] = '\0';
    return h.out;
}
