/* report.c - RFC 3464 delivery status notifications and RFC 5965 feedback
 * reports out of a raw message (report.h). libetpan parses the MIME
 * structure and the header fields (mailmime_parse; the status and feedback
 * groups with mailimf_optional_fields_parse, one group per call); this
 * file picks the fields, unfolds them and says what is missing.
 *
 * libetpan's bodies point into the caller's buffer; a part with a
 * transfer encoding is decoded into a copy first (mailmime_part_parse).
 * Owns the strings of the report it fills. Pure, any thread.
 */
#include "report.h"
#include "errbuf.h"
#include "xalloc.h"

#include <libetpan/libetpan.h>

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_VALUE 1000 /* longest field value kept (longer ones are cut) */

/* ---- values ------------------------------------------------------------ */

/* unfold - a field value on one line: CR, LF, TAB and other control bytes
 * as spaces, runs of spaces as one, trimmed, at most MAX_VALUE bytes; NULL
 * when nothing is left */
static char *unfold(const char *s)
{
    char *out = xmalloc(MAX_VALUE + 1);
    size_t n = 0;
    for (; s && *s && n < MAX_VALUE; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7f)
            c = ' ';
        if (c == ' ' && (n == 0 || out[n - 1] == ' '))
            continue;
        out[n++] = (char)c;
    }
    while (n > 0 && out[n - 1] == ' ')
        n--;
    out[n] = '\0';
    if (n == 0) {
        free(out);
        return NULL;
    }
    return out;
}

/* bare_addr - the address of a DSN address field ("rfc822; a@b"), an
 * ARF one ("<a@b>") or a header's: after the type, without brackets and
 * spaces; NULL when empty or still holding a space or bracket (a control
 * byte, which unfold made a space, or two words: no address) */
static char *bare_addr(const char *value)
{
    char *v = unfold(value);
    if (!v)
        return NULL;
    char *p = v, *semi = strchr(v, ';'), *at = strchr(v, '@');
    if (semi && (!at || semi < at))
        p = semi + 1;
    while (*p == ' ' || *p == '<')
        p++;
    size_t n = strlen(p);
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '>'))
        n--;
    char *out =
        n && !memchr(p, ' ', n) && !memchr(p, '<', n) && !memchr(p, '>', n) ? xstrndup(p, n) : NULL;
    free(v);
    return out;
}

/* lower - s lower-cased in place (ASCII) */
static char *lower(char *s)
{
    for (char *p = s; p && *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return s;
}

/* status_code - the leading RFC 3463 code of a Status value ("5.1.1",
 * "4.4.7 (delivery time expired)" -> "4.4.7"); NULL when not one */
static char *status_code(const char *value)
{
    char *v = unfold(value);
    if (!v)
        return NULL;
    size_t n = strcspn(v, " (");
    v[n] = '\0';
    const char *s = v;
    bool ok = (s[0] == '2' || s[0] == '4' || s[0] == '5') && s[1] == '.';
    s += 2;
    for (int part = 0; ok && part < 2; part++) {
        int d = 0;
        while (d < 3 && isdigit((unsigned char)s[d]))
            d++;
        ok = d > 0 && s[d] == (part ? '\0' : '.');
        s += d + 1;
    }
    if (!ok) {
        free(v);
        return NULL;
    }
    return v;
}

/* add_addr - a VERP candidate, unless empty, known or one too many */
static void add_addr(struct report *r, char *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < r->naddrs; i++) {
        if (strcasecmp(r->addrs[i], a) == 0) {
            free(a);
            return;
        }
    }
    if (r->naddrs == REPORT_MAX_ADDRS) {
        free(a);
        return;
    }
    r->addrs[r->naddrs++] = a;
}

/* set - *slot = v unless it is set already (the first field wins) */
static void set(char **slot, char *v)
{
    if (*slot)
        free(v);
    else
        *slot = v;
}

/* ---- header fields ----------------------------------------------------- */

/* optional_value - the first optional field named name in f, or NULL */
static const char *optional_value(const struct mailimf_fields *f, const char *name)
{
    for (clistiter *it = f ? clist_begin(f->fld_list) : NULL; it; it = clist_next(it)) {
        const struct mailimf_field *x = clist_content(it);
        if (x->fld_type == MAILIMF_FIELD_OPTIONAL_FIELD &&
            strcasecmp(x->fld_data.fld_optional_field->fld_name, name) == 0)
            return x->fld_data.fld_optional_field->fld_value;
    }
    return NULL;
}

/* outer_addrs - the report's Delivered-To, X-Original-To and To */
static void outer_addrs(struct report *r, const struct mailimf_fields *f)
{
    add_addr(r, bare_addr(optional_value(f, "Delivered-To")));
    add_addr(r, bare_addr(optional_value(f, "X-Original-To")));
    for (clistiter *it = f ? clist_begin(f->fld_list) : NULL; it; it = clist_next(it)) {
        const struct mailimf_field *x = clist_content(it);
        if (x->fld_type != MAILIMF_FIELD_TO || !x->fld_data.fld_to->to_addr_list)
            continue;
        clist *l = x->fld_data.fld_to->to_addr_list->ad_list;
        for (clistiter *a = clist_begin(l); a; a = clist_next(a)) {
            const struct mailimf_address *ad = clist_content(a);
            if (ad->ad_type == MAILIMF_ADDRESS_MAILBOX && ad->ad_data.ad_mailbox->mb_addr_spec)
                add_addr(r, bare_addr(ad->ad_data.ad_mailbox->mb_addr_spec));
        }
    }
}

/* returned_fields - the returned message's Message-ID and Return-Path */
static void returned_fields(struct report *r, const struct mailimf_fields *f)
{
    for (clistiter *it = f ? clist_begin(f->fld_list) : NULL; it; it = clist_next(it)) {
        const struct mailimf_field *x = clist_content(it);
        if (x->fld_type == MAILIMF_FIELD_MESSAGE_ID && x->fld_data.fld_message_id->mid_value &&
            !r->returned_mid) {
            char *v = unfold(x->fld_data.fld_message_id->mid_value);
            if (v) {
                size_t n = strlen(v) + 3;
                r->returned_mid = xmalloc(n);
                snprintf(r->returned_mid, n, "<%s>", v);
                free(v);
            }
        } else if (x->fld_type == MAILIMF_FIELD_RETURN_PATH &&
                   x->fld_data.fld_return_path->ret_path->pt_addr_spec) {
            add_addr(r, bare_addr(x->fld_data.fld_return_path->ret_path->pt_addr_spec));
        }
    }
    /* libetpan leaves the fields it does not parse for a message part as
     * optional ones */
    add_addr(r, bare_addr(optional_value(f, "Return-Path")));
    const char *mid = optional_value(f, "Message-ID");
    char *v = !r->returned_mid && mid ? unfold(mid) : NULL;
    if (v && v[0] == '<' && v[strlen(v) - 1] == '>' && !strchr(v, ' '))
        r->returned_mid = v;
    else
        free(v);
}

/* ---- parts ------------------------------------------------------------- */

/* part_text - a single part's body, transfer-decoded, into a new buffer
 * (NUL-terminated; caller frees); -1 when it cannot be decoded */
static int part_text(const struct mailmime *m, char **out, size_t *outlen)
{
    const struct mailmime_data *b = m->mm_data.mm_single;
    if (!b || b->dt_type != MAILMIME_DATA_TEXT)
        return -1;
    int enc = m->mm_mime_fields ? mailmime_transfer_encoding_get(m->mm_mime_fields)
                                : MAILMIME_MECHANISM_8BIT;
    const char *p = b->dt_data.dt_text.dt_data;
    size_t n = b->dt_data.dt_text.dt_length;
    if (enc == MAILMIME_MECHANISM_BASE64 || enc == MAILMIME_MECHANISM_QUOTED_PRINTABLE) {
        size_t idx = 0, dlen = 0;
        char *dec = NULL;
        if (mailmime_part_parse(p, n, &idx, enc, &dec, &dlen) != MAILIMF_NO_ERROR)
            return -1;
        *out = xstrndup(dec, dlen);
        *outlen = dlen;
        mmap_string_unref(dec);
        return 0;
    }
    *out = xstrndup(p ? p : "", p ? n : 0);
    *outlen = strlen(*out); /* a NUL byte ends the part */
    return 0;
}

/* is_type - m's content type is message/subtype (message true) or
 * text/subtype (ASCII case ignored) */
static bool is_type(const struct mailmime *m, bool message, const char *subtype)
{
    const struct mailmime_content *ct = m->mm_content_type;
    if (!ct || !ct->ct_type || !ct->ct_subtype || strcasecmp(ct->ct_subtype, subtype) != 0)
        return false;
    const struct mailmime_type *t = ct->ct_type;
    if (message)
        return t->tp_type == MAILMIME_TYPE_COMPOSITE_TYPE &&
               t->tp_data.tp_composite_type->ct_type == MAILMIME_COMPOSITE_TYPE_MESSAGE;
    return t->tp_type == MAILMIME_TYPE_DISCRETE_TYPE &&
           t->tp_data.tp_discrete_type->dt_type == MAILMIME_DISCRETE_TYPE_TEXT;
}

/* report_type - the report-type parameter of a multipart/report, or NULL */
static const char *report_type(const struct mailmime *m)
{
    const struct mailmime_content *ct = m->mm_content_type;
    if (!ct || !ct->ct_subtype || strcasecmp(ct->ct_subtype, "report") != 0)
        return NULL;
    for (clistiter *it = clist_begin(ct->ct_parameters); it; it = clist_next(it)) {
        const struct mailmime_parameter *pa = clist_content(it);
        if (pa->pa_name && pa->pa_value && strcasecmp(pa->pa_name, "report-type") == 0)
            return pa->pa_value;
    }
    return "";
}

/* field groups: fn(arg, fields) for each blank-line separated group of
 * "Name: value" lines in text; stops at the first line that is neither */
typedef int (*group_fn)(void *arg, const struct mailimf_fields *f, char *why, size_t whylen);

static int each_group(const char *text, size_t len, group_fn fn, void *arg, char *why,
                      size_t whylen)
{
    size_t idx = 0;
    while (idx < len && mailimf_crlf_parse(text, len, &idx) == MAILIMF_NO_ERROR)
        ; /* leading blank lines */
    while (idx < len) {
        struct mailimf_fields *f = NULL;
        size_t at = idx;
        if (mailimf_optional_fields_parse(text, len, &idx, &f) != MAILIMF_NO_ERROR || !f)
            break;
        int rc = clist_count(f->fld_list) ? fn(arg, f, why, whylen) : 0;
        mailimf_fields_free(f);
        if (rc != 0)
            return rc;
        if (idx == at)
            break;
        bool blank = false;
        while (idx < len && mailimf_crlf_parse(text, len, &idx) == MAILIMF_NO_ERROR)
            blank = true;
        if (!blank)
            break;
    }
    return 0;
}

/* dsn_group - a per-recipient group (one with a recipient, Action or
 * Status field) into r->rcpts; per-message groups are skipped */
static int dsn_group(void *arg, const struct mailimf_fields *f, char *why, size_t whylen)
{
    struct report *r = arg;
    const char *final = optional_value(f, "Final-Recipient"),
               *orig = optional_value(f, "Original-Recipient"),
               *action = optional_value(f, "Action"), *status = optional_value(f, "Status");
    if (!final && !orig && !action && !status)
        return 0; /* the per-message group */
    struct report_rcpt rc = {
        .final_rcpt = bare_addr(final),
        .original_rcpt = bare_addr(orig),
        .action = lower(unfold(action)),
        .status = status_code(status),
        .diagnostic = unfold(optional_value(f, "Diagnostic-Code")),
    };
    const char *bad = !rc.final_rcpt && !rc.original_rcpt ? "without Final-Recipient"
                      : !rc.action                        ? "without Action"
                      : !status                           ? "without Status"
                      : !rc.status                        ? "with an invalid Status"
                                                          : NULL;
    if (bad || r->nrcpts == REPORT_MAX_RCPTS) {
        free(rc.final_rcpt);
        free(rc.original_rcpt);
        free(rc.action);
        free(rc.status);
        free(rc.diagnostic);
        if (!bad)
            return 0; /* the recipients past the cap are not read */
        errbuf_set(why, whylen, "a recipient group %s", bad);
        return -1;
    }
    r->rcpts = xreallocarray(r->rcpts, r->nrcpts + 1, sizeof *r->rcpts);
    r->rcpts[r->nrcpts++] = rc;
    return 0;
}

/* arf_group - the feedback report's fields (the first group only counts) */
static int arf_group(void *arg, const struct mailimf_fields *f, char *why, size_t whylen)
{
    struct report *r = arg;
    (void)why;
    (void)whylen;
    if (r->feedback_type)
        return 0;
    const char *date = optional_value(f, "Arrival-Date");
    r->feedback_type = lower(unfold(optional_value(f, "Feedback-Type")));
    set(&r->original_mail_from, bare_addr(optional_value(f, "Original-Mail-From")));
    set(&r->original_rcpt_to, bare_addr(optional_value(f, "Original-Rcpt-To")));
    set(&r->arrival_date, unfold(date ? date : optional_value(f, "Received-Date")));
    set(&r->reported_domain, unfold(optional_value(f, "Reported-Domain")));
    set(&r->user_agent, unfold(optional_value(f, "User-Agent")));
    return 0;
}

/* returned_part - a returned message (message/rfc822, message/global) or
 * its headers (text/rfc822-headers, message/global-headers) */
static void returned_part(struct report *r, const struct mailmime *m)
{
    if (m->mm_type == MAILMIME_MESSAGE) {
        returned_fields(r, m->mm_data.mm_message.mm_fields);
        return;
    }
    char *text;
    size_t len, idx = 0;
    struct mailimf_fields *f = NULL;
    if (m->mm_type != MAILMIME_SINGLE || part_text(m, &text, &len) != 0)
        return;
    /* every field as a name and a value: libetpan 1.9.4's structured
     * Return-Path parser leaks what it allocated on a malformed path */
    if (mailimf_optional_fields_parse(text, len, &idx, &f) == MAILIMF_NO_ERROR && f) {
        returned_fields(r, f);
        mailimf_fields_free(f);
    }
    free(text);
}

/* read_parts - the parts of the multipart/report body */
static int read_parts(struct report *r, const struct mailmime *body, char *why, size_t whylen)
{
    const struct mailmime *status = NULL, *returned = NULL;
    for (clistiter *it = clist_begin(body->mm_data.mm_multipart.mm_mp_list); it;
         it = clist_next(it)) {
        const struct mailmime *m = clist_content(it);
        if (is_type(m, true, "delivery-status") || is_type(m, true, "global-delivery-status")) {
            if (r->kind == REPORT_DSN && !status)
                status = m;
        } else if (is_type(m, true, "feedback-report")) {
            if (r->kind == REPORT_ARF && !status)
                status = m;
        } else if ((is_type(m, true, "rfc822") || is_type(m, true, "global") ||
                    is_type(m, true, "global-headers") || is_type(m, false, "rfc822-headers")) &&
                   !returned) {
            returned = m;
        }
    }
    if (!status || status->mm_type != MAILMIME_SINGLE) {
        errbuf_set(why, whylen, "no message/%s part",
                   r->kind == REPORT_DSN ? "delivery-status" : "feedback-report");
        return -1;
    }
    char *text;
    size_t len;
    if (part_text(status, &text, &len) != 0) {
        errbuf_set(why, whylen, "the report part cannot be decoded");
        return -1;
    }
    int rc = each_group(text, len, r->kind == REPORT_DSN ? dsn_group : arf_group, r, why, whylen);
    free(text);
    if (rc != 0)
        return -1;
    if (r->kind == REPORT_DSN && r->nrcpts == 0) {
        errbuf_set(why, whylen, "no per-recipient group in the delivery status");
        return -1;
    }
    if (r->kind == REPORT_ARF && !r->feedback_type) {
        errbuf_set(why, whylen, "no Feedback-Type in the feedback report");
        return -1;
    }
    add_addr(r, r->original_mail_from ? xstrdup(r->original_mail_from) : NULL);
    if (returned)
        returned_part(r, returned);
    return 0;
}

int report_parse(const char *msg, size_t len, struct report *out, char *why, size_t whylen)
{
    struct mailmime *mime = NULL;
    size_t idx = 0;
    int rc = -1;
    memset(out, 0, sizeof *out);
    if (!msg || len == 0) {
        errbuf_set(why, whylen, "empty message");
        return -1;
    }
    if (mailmime_parse(msg, len, &idx, &mime) != MAILIMF_NO_ERROR || !mime) {
        errbuf_set(why, whylen, "not a MIME message");
        return -1;
    }
    const struct mailmime *body =
        mime->mm_type == MAILMIME_MESSAGE ? mime->mm_data.mm_message.mm_msg_mime : NULL;
    const char *type = body && body->mm_type == MAILMIME_MULTIPLE ? report_type(body) : NULL;
    if (!type) {
        errbuf_set(why, whylen, "not a multipart/report");
        goto out;
    }
    if (strcasecmp(type, "delivery-status") == 0 || strcasecmp(type, "global-delivery-status") == 0)
        out->kind = REPORT_DSN;
    else if (strcasecmp(type, "feedback-report") == 0)
        out->kind = REPORT_ARF;
    else {
        errbuf_set(why, whylen,
                   "report-type \"%.40s\" is neither delivery-status nor "
                   "feedback-report",
                   type);
        goto out;
    }
    outer_addrs(out, mime->mm_data.mm_message.mm_fields);
    rc = read_parts(out, body, why, whylen);
out:
    mailmime_free(mime);
    if (rc != 0)
        report_cleanup(out);
    return rc;
}

void report_cleanup(struct report *r)
{
    for (size_t i = 0; i < r->naddrs; i++)
        free(r->addrs[i]);
    for (size_t i = 0; i < r->nrcpts; i++) {
        free(r->rcpts[i].final_rcpt);
        free(r->rcpts[i].original_rcpt);
        free(r->rcpts[i].action);
        free(r->rcpts[i].status);
        free(r->rcpts[i].diagnostic);
    }
    free(r->rcpts);
    free(r->returned_mid);
    free(r->feedback_type);
    free(r->original_rcpt_to);
    free(r->original_mail_from);
    free(r->arrival_date);
    free(r->reported_domain);
    free(r->user_agent);
    memset(r, 0, sizeof *r);
}
