/* mime.h - one recipient's copy of a broadcast as an RFC 5322 / MIME message.
 *
 * Output (appended to a struct buf): headers Date, From, To, Subject,
 * Message-ID, [Feedback-ID], [List-Unsubscribe [, List-Unsubscribe-Post]],
 * MIME-Version, Content-Type, Content-Transfer-Encoding, then the body:
 *   - text only: text/plain; charset=utf-8, quoted-printable;
 *   - with html: multipart/alternative, text part first, html part second,
 *     each text/...; charset=utf-8, quoted-printable, random boundary.
 *     A text that is empty or only white space is replaced by one made
 *     from the html (html_text.h), so an html-only send still carries a
 *     readable text/plain part.
 * Non-ASCII subjects and display names become RFC 2047 encoded words
 * (UTF-8, B or Q, whichever is shorter; each word <= 75 octets, never
 * splitting a character); ASCII display names with specials are quoted
 * strings; header lines are folded with CRLF SP at 78 octets where
 * possible, never over 998. Lines end in CRLF only; body lines are at most
 * 76 octets. A text that does not end in a newline gets a final CRLF in
 * the single-part form. Lines starting with "." are left to the SMTP
 * layer to dot-stuff; an encoded line that would start with "From " starts
 * with "=46rom " instead, so no mbox-writing relay rewrites it to ">From ".
 * Addresses are written as addr_parse() normalises them (domain
 * lower-cased); a recipient with an ASCII local part and a UTF-8 domain is
 * written with the domain in A-labels (addr_ascii), so the message stays
 * ASCII; a UTF-8 local part (or a domain IDNA refuses) is written raw
 * (RFC 6532: the message then needs SMTPUTF8).
 *
 * All functions are pure apart from the random boundary; any thread.
 */
#ifndef MIME_H
#define MIME_H

#include "buf.h"
#include "tmpl.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* All strings borrowed for the duration of the call; NULL optional fields
 * are the same as "". */
struct mime_input {
    const char *from;             /* address, required */
    const char *from_name;        /* optional display name, UTF-8 */
    const char *to;               /* address, required */
    const char *to_name;          /* recipient's name, UTF-8, may be empty */
    const char *subject;          /* UTF-8, may be empty */
    const char *text;             /* text body, UTF-8; LF or CRLF line ends */
    const char *html;             /* optional html body, UTF-8 ("" = none) */
    const char *message_id;       /* "<email-1.9f2c@d.com>", required */
    int64_t date_ms;              /* Date header, ms since the epoch (UTC) */
    const char *list_unsubscribe; /* optional header value, printable ASCII */
    bool one_click;               /* and List-Unsubscribe-Post (RFC 8058 one-click) */
    const char *feedback_id;      /* optional Feedback-ID value (mime_feedback_id) */
};

/* mime_compose - append the whole message to out. Returns 0, or -1 with a
 * reason in errbuf naming the field: CR, LF or another control character
 * in a header input (header injection), invalid UTF-8 anywhere, an
 * invalid address, a malformed Message-ID, List-Unsubscribe or Feedback-ID. On those
 * errors out is left as it was. If out's cap is reached, -1 and out has
 * been emptied (buf semantics). */
int mime_compose(const struct mime_input *in, struct buf *out, char *errbuf, size_t errlen);

/* The most octets a filled subject, text or html may hold: templates are
 * refused at /send when their worst case exceeds it (mime_fill_worst), and
 * filling stops there, so a template of placeholders cannot make each
 * worker hold a message many times the request's size. */
#define MIME_FILLED_MAX TMPL_FILLED_MAX

/* mime_fill - tmpl with {{name}} and {{email_id}} (spaces or tabs allowed
 * inside the braces: {{ name }}) replaced by name and address (NULL =
 * ""); any other {{...}} is left as is (tmpl_fill without variables). Caller frees the result. NULL
 * when the result would exceed MIME_FILLED_MAX. */
char *mime_fill(const char *tmpl, const char *name, const char *address);
/* mime_fill_html - as mime_fill, with the values HTML-escaped (& < > " '),
 * for html bodies: a recipient's name cannot inject markup. Caller frees. */
char *mime_fill_html(const char *tmpl, const char *name, const char *address);
/* mime_fill_worst - the largest result of filling tmpl (html: escaped)
 * with a name of name_max and an address of email_max octets */
size_t mime_fill_worst(const char *tmpl, bool html, size_t name_max, size_t email_max);

/* the longest Feedback-ID value mime_feedback_id writes, NUL included */
#define MIME_FEEDBACK_ID_MAX 400

/* mime_feedback_id - the Feedback-ID value {email_id}:{identity}:warmup:{domain}
 * (Gmail's feedback loop: campaign, identity, type, sender id) into
 * out[len]. Until sending identities exist the identity is the local part
 * of from, made safe: an octet that is not an RFC 5322 atext character or
 * '.' (':' in particular, which separates the fields) becomes '-'. domain
 * is the MESSAGE_ID_DOMAIN (ASCII). 0, or -1 when an argument is unusable
 * or the value does not fit. */
int mime_feedback_id(int64_t email_id, const char *from, const char *domain, char *out, size_t len);

/* mime_check_header_text - 0 if s is usable as header text: valid UTF-8,
 * no CR, LF or other control character (C0, DEL), at most maxlen octets;
 * else -1 with the reason in errbuf. NULL is -1 ("missing"). */
int mime_check_header_text(const char *s, size_t maxlen, char *errbuf, size_t errlen);

#endif
