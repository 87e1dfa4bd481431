/* mime.c - RFC 5322 / MIME composition of one recipient's copy.
 *
 * Every input is validated before the first octet is written, so a
 * rejected copy leaves the caller's buffer untouched. Headers go through a
 * small writer that tracks the column and folds (CRLF SP) at 78 octets;
 * each body part is quoted-printable encoded in one pass, a line at a time
 * through a stack buffer, straight into the output. The multipart boundary
 * contains "=_", which quoted-printable output can never contain; it is
 * still searched for in the encoded parts and replaced if found.
 * Owns nothing; any thread (the boundary counter is atomic).
 */
#include "mime.h"
#include "tmpl.h"
#include "html_text.h"
#include "errbuf.h"
#include "addr.h"
#include "timeutil.h"
#include "utf8.h"
#include "xalloc.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#define LINE_SOFT 78   /* RFC 5322 2.1.1: SHOULD */
#define LINE_HARD 998  /* RFC 5322 2.1.1: MUST */
#define QP_LINE 76     /* RFC 2045 6.7 */
#define EW_MAX 75      /* RFC 2047 2: encoded word length */
#define EW_OVERHEAD 12 /* "=?UTF-8?B?" + "?=" */
#define WORD_MAX 900   /* longer ASCII words are sent as encoded words */
#define MSGID_MAX 900
#define BOUNDARY_TRIES 8

static const char hexdig[] = "0123456789ABCDEF";
static const char b64dig[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* ---- validation ---- */

int mime_check_header_text(const char *s, size_t maxlen, char *errbuf, size_t errlen)
{
    if (!s) {
        errbuf_set(errbuf, errlen, "missing");
        return -1;
    }
    size_t n = strlen(s);
    if (n > maxlen) {
        errbuf_set(errbuf, errlen, "longer than %zu bytes", maxlen);
        return -1;
    }
    size_t bad = utf8_check(s, n);
    if (bad != n) {
        errbuf_set(errbuf, errlen, "invalid UTF-8 at byte %zu", bad);
        return -1;
    }
    if (utf8_has_ctl(s, n)) {
        errbuf_set(errbuf, errlen, "contains a control character (CR, LF, TAB, ...)");
        return -1;
    }
    return 0;
}

/* is_atext - RFC 5322 atext, ASCII part */
static bool is_atext(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

/* check_msgid - "<left@right>" with dot-atom-text on both sides */
static int check_msgid(const char *s, char *errbuf, size_t errlen)
{
    size_t n = strlen(s), at = 0, nat = 0;
    if (n < 5 || n > MSGID_MAX || s[0] != '<' || s[n - 1] != '>')
        goto bad;
    for (size_t i = 1; i + 1 < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '@') {
            at = i;
            nat++;
        } else if (c != '.' && !is_atext(c)) {
            goto bad;
        }
    }
    if (nat != 1 || at == 1 || at == n - 2)
        goto bad;
    return 0;
bad:
    errbuf_set(errbuf, errlen, "message_id: not of the form <left@right> (printable ASCII, <= %d)",
               MSGID_MAX);
    return -1;
}

/* max_word - length of the longest run of non-space octets */
static size_t max_word(const char *s, size_t n)
{
    size_t best = 0, cur = 0;
    for (size_t i = 0; i < n; i++) {
        cur = s[i] == ' ' ? 0 : cur + 1;
        if (cur > best)
            best = cur;
    }
    return best;
}

/* check_ascii_value - printable ASCII, foldable within 998 */
static int check_ascii_value(const char *field, const char *s, char *errbuf, size_t errlen)
{
    size_t n = strlen(s);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c > 0x7E) {
            errbuf_set(errbuf, errlen, "%s: not printable ASCII at byte %zu", field, i);
            return -1;
        }
    }
    if (max_word(s, n) > WORD_MAX) {
        errbuf_set(errbuf, errlen, "%s: a word longer than %d bytes", field, WORD_MAX);
        return -1;
    }
    return 0;
}

/* check_field - header text check with the field name in the reason */
static int check_field(const char *field, const char *s, char *errbuf, size_t errlen)
{
    char why[96];
    if (mime_check_header_text(s, (size_t)-1, why, sizeof why) != 0) {
        errbuf_set(errbuf, errlen, "%s: %s", field, why);
        return -1;
    }
    return 0;
}

/* check_addr - header text check, then addr_parse */
static int check_addr(const char *field, const char *s, struct addr *a, char *errbuf, size_t errlen)
{
    char why[96];
    if (check_field(field, s, errbuf, errlen) != 0)
        return -1;
    if (addr_parse(s, a, why, sizeof why) != 0) {
        errbuf_set(errbuf, errlen, "%s: invalid address: %s", field, why);
        return -1;
    }
    return 0;
}

/* check_body - valid UTF-8 (any control character is fine in a body) */
static int check_body(const char *field, const char *s, char *errbuf, size_t errlen)
{
    size_t n = strlen(s), bad = utf8_check(s, n);
    if (bad != n) {
        errbuf_set(errbuf, errlen, "%s: invalid UTF-8 at byte %zu", field, bad);
        return -1;
    }
    return 0;
}

/* ---- header writer ---- */

struct hw {
    struct buf *out;
    size_t col; /* octets on the current line */
    bool err;   /* the buffer cap was reached (buffer already emptied) */
};

static void hw_put(struct hw *w, const char *s, size_t n)
{
    if (w->err)
        return;
    if (buf_append(w->out, s, n) != 0) {
        w->err = true;
        return;
    }
    w->col += n;
}

static void hw_puts(struct hw *w, const char *s)
{
    hw_put(w, s, strlen(s));
}

/* hw_fold - continue the header on a new line */
static void hw_fold(struct hw *w)
{
    hw_put(w, "\r\n ", 3);
    w->col = 1;
}

/* hw_end - end the header line */
static void hw_end(struct hw *w)
{
    hw_put(w, "\r\n", 2);
    w->col = 0;
}

/* hw_words - ASCII text folded before the last space of a run when the
 * next word would pass column 78; unfolding gives the text back exactly,
 * and no line is only white space. Words are <= WORD_MAX (checked). */
static void hw_words(struct hw *w, const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        size_t j = i, k;
        while (j < n && s[j] == ' ')
            j++;
        for (k = j; k < n && s[k] != ' '; k++)
            ;
        if (j > i && k > j && w->col + (k - i) > LINE_SOFT && w->col > 1) {
            hw_put(w, s + i, j - i - 1);
            hw_fold(w);
            hw_put(w, s + j, k - j);
        } else {
            hw_put(w, s + i, k - i);
        }
        i = k;
    }
}

/* q_safe - octets written as themselves in a Q encoded word: the set
 * allowed in a phrase (RFC 2047 5(3)), so it is valid in every header */
static bool q_safe(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '!' ||
           c == '*' || c == '+' || c == '-' || c == '/';
}

static size_t q_cost(unsigned char c)
{
    return (q_safe(c) || c == ' ') ? 1 : 3;
}

/* char_len - octets of the (valid) UTF-8 character at s */
static size_t char_len(const unsigned char *s, size_t avail)
{
    if (s[0] < 0x80)
        return 1;
    size_t n = utf8_seq_len(s, avail);
    return n ? n : 1; /* input was validated; never split on garbage */
}

/* ew_encode - one encoded word for s[0..n) into word (>= EW_MAX + 1) */
static size_t ew_encode(char *word, const unsigned char *s, size_t n, bool b)
{
    size_t o = 0;
    memcpy(word, b ? "=?UTF-8?B?" : "=?UTF-8?Q?", 10);
    o = 10;
    if (b) {
        for (size_t i = 0; i < n; i += 3) {
            unsigned v = (unsigned)s[i] << 16;
            if (i + 1 < n)
                v |= (unsigned)s[i + 1] << 8;
            if (i + 2 < n)
                v |= s[i + 2];
            word[o++] = b64dig[(v >> 18) & 63];
            word[o++] = b64dig[(v >> 12) & 63];
            word[o++] = i + 1 < n ? b64dig[(v >> 6) & 63] : '=';
            word[o++] = i + 2 < n ? b64dig[v & 63] : '=';
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            unsigned char c = s[i];
            if (q_safe(c)) {
                word[o++] = (char)c;
            } else if (c == ' ') {
                word[o++] = '_';
            } else {
                word[o++] = '=';
                word[o++] = hexdig[c >> 4];
                word[o++] = hexdig[c & 15];
            }
        }
    }
    word[o++] = '?';
    word[o++] = '=';
    return o;
}

/* hw_encoded - s as a run of RFC 2047 encoded words, each <= 75 octets and
 * holding whole characters, folded between words. B or Q, whichever is
 * shorter for the whole text. Decoders drop the white space between
 * adjacent encoded words, so the text comes back exactly. */
static void hw_encoded(struct hw *w, const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t qlen = 0;
    for (size_t i = 0; i < n; i++)
        qlen += q_cost(s[i]);
    bool b = 4 * ((n + 2) / 3) < qlen;
    size_t i = 0;
    bool first = true;
    while (i < n) {
        if (!first)
            hw_fold(w);
        first = false;
        size_t room = EW_MAX;
        if (w->col + room > LINE_SOFT)
            room = w->col < LINE_SOFT ? LINE_SOFT - w->col : 0;
        if (room < EW_OVERHEAD + 12) { /* not even one 4-octet character in Q */
            hw_fold(w);
            room = EW_MAX;
        }
        size_t pmax = room - EW_OVERHEAD, len = 0, cost = 0;
        while (i + len < n) {
            size_t cl = char_len(s + i + len, n - i - len);
            size_t c2;
            if (b) {
                c2 = 4 * ((len + cl + 2) / 3);
            } else {
                c2 = cost;
                for (size_t k = 0; k < cl; k++)
                    c2 += q_cost(s[i + len + k]);
            }
            if (c2 > pmax)
                break;
            cost = c2;
            len += cl;
        }
        /* prefer to end the word before a space (which then opens the next
         * word, encoded): decoders that wrongly keep the white space
         * between encoded words (Python's display names, some MUAs) then
         * show a wider gap instead of a space inside a word */
        if (i + len < n && s[i + len] != ' ') {
            size_t k = len;
            while (k > 0 && s[i + k] != ' ')
                k--;
            if (k > 0)
                len = k;
        }
        char word[EW_MAX + 1];
        size_t wl = ew_encode(word, s + i, len, b);
        hw_put(w, word, wl);
        i += len;
    }
}

/* needs_encoding - non-ASCII, something a decoder would take for an
 * encoded word, or a word too long to fold */
static bool needs_encoding(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] >= 0x80)
            return true;
    return strstr(s, "=?") != NULL || max_word(s, n) > WORD_MAX;
}

/* hw_text - unstructured text (Subject) */
static void hw_text(struct hw *w, const char *s)
{
    size_t n = strlen(s);
    if (needs_encoding(s, n))
        hw_encoded(w, s, n);
    else
        hw_words(w, s, n);
}

/* phrase_atoms - atoms separated by single spaces: writable as is */
static bool phrase_atoms(const char *s, size_t n)
{
    if (n == 0 || s[0] == ' ' || s[n - 1] == ' ')
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == ' ') {
            if (s[i + 1] == ' ')
                return false;
        } else if (!is_atext((unsigned char)s[i])) {
            return false;
        }
    }
    return true;
}

/* hw_phrase - a display name: atoms, a quoted string or encoded words */
static void hw_phrase(struct hw *w, const char *s)
{
    size_t n = strlen(s), q = 0;
    for (size_t i = 0; i < n; i++)
        q += (s[i] == '"' || s[i] == '\\') ? 2 : 1;
    if (needs_encoding(s, n) || max_word(s, n) + (q - n) > WORD_MAX) {
        hw_encoded(w, s, n);
    } else if (phrase_atoms(s, n)) {
        hw_words(w, s, n);
    } else {
        /* quoted-string; FWS inside it is allowed, so fold the same way */
        char small[512];
        char *tmp = q + 2 <= sizeof small ? small : xmalloc(q + 2);
        size_t o = 0;
        tmp[o++] = '"';
        for (size_t i = 0; i < n; i++) {
            if (s[i] == '"' || s[i] == '\\')
                tmp[o++] = '\\';
            tmp[o++] = s[i];
        }
        tmp[o++] = '"';
        hw_words(w, tmp, o);
        if (tmp != small)
            free(tmp);
    }
}

/* hw_mailbox - "Name <addr>" or "addr" */
static void hw_mailbox(struct hw *w, const char *name, const struct addr *a)
{
    size_t alen = strlen(a->norm);
    if (!name || !*name) {
        hw_put(w, a->norm, alen);
        return;
    }
    hw_phrase(w, name);
    if (w->col + 1 + alen + 2 > LINE_SOFT)
        hw_fold(w);
    else
        hw_put(w, " ", 1);
    hw_put(w, "<", 1);
    hw_put(w, a->norm, alen);
    hw_put(w, ">", 1);
}

/* ---- body ---- */

/* qp_printable - an octet quoted-printable writes as itself anywhere */
static bool qp_printable(unsigned char c)
{
    return c >= 33 && c <= 126 && c != '=';
}

/* qp_run - how many of s[0..lim) quoted-printable writes as themselves
 * with no soft break: printable octets, and spaces or tabs followed by more
 * text on their line (s[lim] exists: the octet after the last one looked
 * at). Eight octets at a time while they are all in 0x20..0x7E but '=' and
 * the eighth is not a space before a line end; then one at a time. */
static size_t qp_run(const unsigned char *s, size_t lim)
{
    const uint64_t ones = 0x0101010101010101u, high = 0x8080808080808080u;
    size_t k = 0;
    for (uint64_t w, e; lim - k >= 8; k += 8) {
        memcpy(&w, s + k, 8);
        e = w ^ (ones * '=');
        if ((((w - ones * 0x20) & ~w) | (w + ones) | w | ((e - ones) & ~e)) & high)
            break; /* an octet below 0x20, above 0x7E, or '=' */
        if (s[k + 7] == ' ' && (s[k + 8] == '\n' || s[k + 8] == '\r'))
            break;
    }
    for (; k < lim; k++) {
        unsigned char c = s[k], next = s[k + 1];
        if (!qp_printable(c) && !((c == ' ' || c == '\t') && next != '\n' && next != '\r'))
            break;
    }
    return k;
}

/* from_line - s[0..n) starts with "From " */
static bool from_line(const unsigned char *s, size_t n)
{
    return n >= 5 && memcmp(s, "From ", 5) == 0;
}

/* qp_encode - s[0..n) as quoted-printable: CRLF or LF become CRLF, a bare
 * CR is =0D, '=', non-ASCII and control octets are =XX, white space before
 * a line end is encoded, lines are at most 76 octets with "=" soft breaks,
 * a line (after a hard or a soft break) that would start with "From "
 * starts with "=46rom ". The last line is written without a line end.
 * Returns 0 or -1 (cap). */
static int qp_encode(struct buf *out, const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    char line[QP_LINE + 8];
    size_t col = 0;
    for (size_t i = 0; i < n;) {
        /* the common case: a run of printable octets, and spaces or tabs
         * with more text after them on their line, up to where a soft
         * break is due (the rules below give the same, one at a time) */
        size_t room = col < QP_LINE - 1 ? QP_LINE - 1 - col : 0;
        size_t k = col == 0 && from_line(s + i, n - i)
                       ? 0
                       : qp_run(s + i, room < n - i - 1 ? room : n - i - 1);
        if (k > 0) {
            memcpy(line + col, s + i, k);
            col += k;
            i += k;
            continue;
        }
        unsigned char c = s[i];
        if (c == '\n' || (c == '\r' && i + 1 < n && s[i + 1] == '\n')) {
            line[col++] = '\r';
            line[col++] = '\n';
            if (buf_append(out, line, col) != 0)
                return -1;
            col = 0;
            i += c == '\r' ? 2 : 1;
            continue;
        }
        /* last octet of its line: white space must be encoded, and it may
         * use column 76 as no soft break follows */
        bool eol =
            i + 1 == n || s[i + 1] == '\n' || (s[i + 1] == '\r' && i + 2 < n && s[i + 2] == '\n');
        bool lit = qp_printable(c) || ((c == ' ' || c == '\t') && !eol);
        size_t tl = lit ? 1 : 3;
        if (col + tl > (eol ? QP_LINE : QP_LINE - 1)) {
            line[col++] = '=';
            line[col++] = '\r';
            line[col++] = '\n';
            if (buf_append(out, line, col) != 0)
                return -1;
            col = 0;
        }
        if (col == 0 && from_line(s + i, n - i))
            lit = false; /* "=46rom ": the line cannot be taken for an mbox separator */
        if (lit) {
            line[col++] = (char)c;
        } else {
            line[col++] = '=';
            line[col++] = hexdig[c >> 4];
            line[col++] = hexdig[c & 15];
        }
        i++;
    }
    return col ? buf_append(out, line, col) : 0;
}

/* make_boundary - "=_wm<counter>_<24 random hex>": "=_" never occurs in
 * quoted-printable output */
static void make_boundary(char *b, size_t len)
{
    static atomic_uint_fast64_t counter;
    uint64_t k = atomic_fetch_add(&counter, 1);
    unsigned char rnd[12];
    if (getrandom(rnd, sizeof rnd, GRND_NONBLOCK) != (ssize_t)sizeof rnd) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ (k * 0x9E3779B97F4A7C15u);
        for (size_t i = 0; i < sizeof rnd; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            rnd[i] = (unsigned char)x;
        }
    }
    char hex[2 * sizeof rnd + 1];
    for (size_t i = 0; i < sizeof rnd; i++) {
        hex[2 * i] = hexdig[rnd[i] >> 4];
        hex[2 * i + 1] = hexdig[rnd[i] & 15];
    }
    hex[2 * sizeof rnd] = '\0';
    snprintf(b, len, "=_wm%llx_%s", (unsigned long long)k, hex);
}

/* part_clean - the boundary does not occur in out[from..) */
static bool part_clean(const struct buf *out, size_t from, const char *boundary)
{
    return memmem(out->data + from, out->len - from, boundary, strlen(boundary)) == NULL;
}

/* compose_once - the message with the given boundary (NULL: single part).
 * Returns 0, -1 when the cap was reached, 1 when the boundary occurs in an
 * encoded part (the caller rolls back and tries another) */
static int compose_once(const struct mime_input *in, const struct addr *from, const struct addr *to,
                        const char *date, const char *boundary, const char *text, struct buf *out)
{
    struct hw w = {.out = out};
    hw_puts(&w, "Date: ");
    hw_puts(&w, date);
    hw_end(&w);
    hw_puts(&w, "From: ");
    hw_mailbox(&w, in->from_name, from);
    hw_end(&w);
    hw_puts(&w, "To: ");
    hw_mailbox(&w, in->to_name, to);
    hw_end(&w);
    hw_puts(&w, "Subject:");
    if (in->subject && *in->subject) {
        hw_put(&w, " ", 1);
        hw_text(&w, in->subject);
    }
    hw_end(&w);
    hw_puts(&w, "Message-ID: ");
    hw_puts(&w, in->message_id);
    hw_end(&w);
    if (in->feedback_id && *in->feedback_id) {
        hw_puts(&w, "Feedback-ID: ");
        hw_words(&w, in->feedback_id, strlen(in->feedback_id));
        hw_end(&w);
    }
    if (in->list_unsubscribe && *in->list_unsubscribe) {
        hw_puts(&w, "List-Unsubscribe: ");
        hw_words(&w, in->list_unsubscribe, strlen(in->list_unsubscribe));
        hw_end(&w);
        if (in->one_click) /* RFC 8058 */
            hw_puts(&w, "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n");
    }
    hw_puts(&w, "MIME-Version: 1.0\r\n");
    if (!boundary) {
        hw_puts(&w, "Content-Type: text/plain; charset=utf-8\r\n"
                    "Content-Transfer-Encoding: quoted-printable\r\n\r\n");
        if (w.err || qp_encode(out, text, strlen(text)) != 0)
            return -1;
        if (out->len >= 2 && memcmp(out->data + out->len - 2, "\r\n", 2) != 0)
            return buf_append(out, "\r\n", 2);
        return 0;
    }
    hw_puts(&w, "Content-Type: multipart/alternative;");
    hw_fold(&w);
    hw_puts(&w, "boundary=\"");
    hw_puts(&w, boundary);
    hw_puts(&w, "\"\r\n\r\nThis is a multi-part message in MIME format.\r\n\r\n--");
    hw_puts(&w, boundary);
    hw_puts(&w, "\r\nContent-Type: text/plain; charset=utf-8\r\n"
                "Content-Transfer-Encoding: quoted-printable\r\n\r\n");
    if (w.err)
        return -1;
    size_t start = out->len;
    if (qp_encode(out, text, strlen(text)) != 0)
        return -1;
    if (!part_clean(out, start, boundary))
        return 1;
    hw_puts(&w, "\r\n--");
    hw_puts(&w, boundary);
    hw_puts(&w, "\r\nContent-Type: text/html; charset=utf-8\r\n"
                "Content-Transfer-Encoding: quoted-printable\r\n\r\n");
    if (w.err)
        return -1;
    start = out->len;
    if (qp_encode(out, in->html, strlen(in->html)) != 0)
        return -1;
    if (!part_clean(out, start, boundary))
        return 1;
    hw_puts(&w, "\r\n--");
    hw_puts(&w, boundary);
    hw_puts(&w, "--\r\n");
    return w.err ? -1 : 0;
}

/* validate - every input, before anything is written */
static int validate(const struct mime_input *in, struct addr *from, struct addr *to, char *errbuf,
                    size_t errlen)
{
    if (check_addr("from", in->from, from, errbuf, errlen) != 0 ||
        check_addr("to", in->to, to, errbuf, errlen) != 0)
        return -1;
    if ((in->from_name && check_field("from_name", in->from_name, errbuf, errlen) != 0) ||
        (in->to_name && check_field("to_name", in->to_name, errbuf, errlen) != 0) ||
        (in->subject && check_field("subject", in->subject, errbuf, errlen) != 0) ||
        check_field("message_id", in->message_id, errbuf, errlen) != 0 ||
        check_msgid(in->message_id, errbuf, errlen) != 0)
        return -1;
    if (in->list_unsubscribe &&
        check_ascii_value("list_unsubscribe", in->list_unsubscribe, errbuf, errlen) != 0)
        return -1;
    if (in->feedback_id && check_ascii_value("feedback_id", in->feedback_id, errbuf, errlen) != 0)
        return -1;
    if ((in->text && check_body("text", in->text, errbuf, errlen) != 0) ||
        (in->html && check_body("html", in->html, errbuf, errlen) != 0))
        return -1;
    return 0;
}

/* blank - only white space (or nothing) */
static bool blank(const char *s)
{
    return s[strspn(s, " \t\r\n")] == '\0';
}

int mime_feedback_id(int64_t email_id, const char *from, const char *domain, char *out, size_t len)
{
    const char *at = from ? strrchr(from, '@') : NULL;
    if (email_id < 1 || !at || at == from || !domain || !*domain || !out || len == 0)
        return -1;
    for (const char *d = domain; *d; d++)
        if (*d <= ' ' || *d > '~' || *d == ':')
            return -1;
    char id[ADDR_LOCAL_MAX + 1];
    size_t n = (size_t)(at - from);
    if (n > ADDR_LOCAL_MAX)
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)from[i];
        id[i] = is_atext(c) || c == '.' ? (char)c : '-';
    }
    id[n] = '\0';
    int k = snprintf(out, len, "%lld:%s:warmup:%s", (long long)email_id, id, domain);
    return k < 0 || (size_t)k >= len ? -1 : 0;
}

int mime_compose(const struct mime_input *in, struct buf *out, char *errbuf, size_t errlen)
{
    struct addr from, to;
    char date[64], boundary[64];
    int rc = validate(in, &from, &to, errbuf, errlen);
    if (rc != 0)
        goto out;
    if (time_rfc5322(in->date_ms, date, sizeof date) != 0) {
        errbuf_set(errbuf, errlen, "date_ms: out of range");
        rc = -1;
        goto out;
    }
    /* an ASCII local part: the domain in A-labels, so no SMTPUTF8 is needed */
    (void)addr_ascii(&to, NULL, 0);
    bool multi = in->html && *in->html;
    const char *text = in->text ? in->text : "";
    char *made = NULL;
    if (multi && blank(text))
        text = made = html_text(in->html);
    size_t start = out->len;
    for (int tries = 0; tries < BOUNDARY_TRIES; tries++) {
        if (multi)
            make_boundary(boundary, sizeof boundary);
        rc = compose_once(in, &from, &to, date, multi ? boundary : NULL, text, out);
        if (rc <= 0)
            break;
        out->len = start; /* roll back; data is non-NULL as something was written */
        out->data[start] = '\0';
    }
    free(made);
    if (rc > 0)
        errbuf_set(errbuf, errlen, "no multipart boundary found");
    else if (rc < 0)
        errbuf_set(errbuf, errlen, "message larger than the buffer cap (%zu bytes)", out->cap);
    rc = rc ? -1 : 0;
out:
    return rc;
}

/* ---- placeholders: the builtins only (tmpl.h) ---- */

char *mime_fill(const char *tmpl, const char *name, const char *address)
{
    struct tmpl_vars v = {.name = name, .address = address};
    return tmpl_fill(tmpl, &v, false);
}

char *mime_fill_html(const char *tmpl, const char *name, const char *address)
{
    struct tmpl_vars v = {.name = name, .address = address};
    return tmpl_fill(tmpl, &v, true);
}

size_t mime_fill_worst(const char *tmpl, bool html, size_t name_max, size_t email_max)
{
    return tmpl_worst(tmpl, html, name_max, email_max, 0);
}
