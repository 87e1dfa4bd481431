/* test_reports.c - bounce and complaint reports (health-service/bounce/):
 * report.c on the fixtures in tests/fixtures/bounces (real Postfix DSNs,
 * ARF reports in the shapes of RFC 5965's example and of Yahoo's,
 * Microsoft's and AOL's feedback loops, malformed ones), the same with
 * CRLF line ends and with the status part base64-encoded; and
 * bounce_match.c against a real store: VERP token first, the returned
 * Message-ID else, hard / soft / ignored / unmatched as bounce_match.h
 * says. Argument: the fixtures directory. */
#include "bounce/bounce_match.h"
#include "bounce/report.h"
#include "hstore.h"
#include "log.h"
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *dir = "tests/fixtures/bounces";

/* load - a fixture's bytes (NUL-terminated; caller frees) */
static char *load(const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = malloc(1 << 20);
    *len = fread(buf, 1, (1 << 20) - 1, f);
    buf[*len] = '\0';
    fclose(f);
    return buf;
}

/* crlf - every LF of s as CRLF (caller frees) */
static char *crlf(const char *s, size_t len, size_t *out)
{
    char *r = malloc(2 * len + 1);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r'))
            r[n++] = '\r';
        r[n++] = s[i];
    }
    r[n] = '\0';
    *out = n;
    return r;
}

static const struct {
    const char *file;
    int kind; /* 0: malformed */
    const char *why;
    const char *first_addr; /* the first VERP candidate */
    const char *mid;        /* returned Message-ID */
    const char *final_rcpt, *action, *status, *diag;
    const char *feedback_type, *rcpt_to;
} rows[] = {
    {"postfix-unknown-user.eml", REPORT_DSN, NULL, "bounces+7.0123456789abcdef@bounce.test",
     "<email-7.0123456789abcdef@w.test>", "nouser@rcpt.test", "failed", "5.1.1",
     "X-Postfix; unknown user: \"nouser\"", NULL, NULL},
    {"postfix-remote-hard.eml", REPORT_DSN, NULL, "bounces+7.1111111111111111@bounce.test",
     "<email-7.1111111111111111@w.test>", "x@hard.test", "failed", "5.3.0",
     "smtp; 500 5.3.0 Error: command failed", NULL, NULL},
    {"postfix-remote-soft.eml", REPORT_DSN, NULL, "bounces+7.2222222222222222@bounce.test",
     "<email-7.2222222222222222@w.test>", "y@soft.test", "failed", "4.3.0",
     "smtp; 450 4.3.0 Error: command failed", NULL, NULL},
    {"postfix-delayed.eml", REPORT_DSN, NULL, "bounces+7.3333333333333333@bounce.test",
     "<email-7.3333333333333333@w.test>", "z@soft.test", "delayed", "4.3.0",
     "smtp; 450 4.3.0 Error: command failed", NULL, NULL},
    {"arf-rfc5965.eml", REPORT_ARF, NULL, "fbl@w.test", "<email-7.4444444444444444@w.test>", NULL,
     NULL, NULL, NULL, "abuse", "reader@example.test"},
    {"arf-yahoo.eml", REPORT_ARF, NULL, "fbl@w.test", "<email-7.5555555555555555@w.test>", NULL,
     NULL, NULL, NULL, "abuse", "someone@yahoo.test"},
    {"arf-microsoft.eml", REPORT_ARF, NULL, "fbl@w.test", "<email-7.6666666666666666@w.test>", NULL,
     NULL, NULL, NULL, "abuse", NULL},
    {"arf-aol.eml", REPORT_ARF, NULL, "fbl@w.test", "<email-7.7777777777777777@w.test>", NULL, NULL,
     NULL, NULL, "abuse", NULL},
    {"arf-auth-failure.eml", REPORT_ARF, NULL, "fbl@w.test", "<email-7.8888888888888888@w.test>",
     NULL, NULL, NULL, NULL, "auth-failure", NULL},
    {.file = "malformed-truncated.eml", .why = "no per-recipient group"},
    {.file = "malformed-no-recipient.eml", .why = "without Final-Recipient"},
    {.file = "malformed-not-a-report.eml", .why = "not a multipart/report"},
};

static bool has_addr(const struct report *r, const char *a)
{
    for (size_t i = 0; i < r->naddrs; i++)
        if (strcmp(r->addrs[i], a) == 0)
            return true;
    return false;
}

static void check_row(size_t i, const char *msg, size_t len, const char *how)
{
    char name[160], why[256] = "";
    struct report r;
    int rc = report_parse(msg, len, &r, why, sizeof why);
    snprintf(name, sizeof name, "%s (%s): %s", rows[i].file, how,
             rows[i].kind ? "parsed" : "refused");
    CHECK_INT(rc, rows[i].kind ? 0 : -1, name);
    if (rc != 0) {
        if (rows[i].kind)
            printf("# %s\n", why);
        else
            CHECK(strstr(why, rows[i].why) != NULL, why);
        CHECK(r.naddrs == 0 && !r.rcpts && !r.returned_mid, "a refused report is empty");
        return;
    }
    snprintf(name, sizeof name, "%s (%s): kind", rows[i].file, how);
    CHECK_INT(r.kind, rows[i].kind, name);
    snprintf(name, sizeof name, "%s (%s): first VERP candidate", rows[i].file, how);
    CHECK_STR(r.naddrs ? r.addrs[0] : "", rows[i].first_addr, name);
    snprintf(name, sizeof name, "%s (%s): returned Message-ID", rows[i].file, how);
    CHECK_STR(r.returned_mid, rows[i].mid, name);
    if (r.kind == REPORT_DSN) {
        snprintf(name, sizeof name, "%s (%s): one recipient group", rows[i].file, how);
        CHECK_INT(r.nrcpts, 1, name);
        if (r.nrcpts != 1)
            goto out;
        snprintf(name, sizeof name, "%s (%s): recipient fields", rows[i].file, how);
        CHECK_STR(r.rcpts[0].final_rcpt, rows[i].final_rcpt, name);
        CHECK_STR(r.rcpts[0].original_rcpt, rows[i].final_rcpt, name);
        CHECK_STR(r.rcpts[0].action, rows[i].action, name);
        CHECK_STR(r.rcpts[0].status, rows[i].status, name);
        CHECK_STR(r.rcpts[0].diagnostic, rows[i].diag, name);
    } else {
        snprintf(name, sizeof name, "%s (%s): feedback fields", rows[i].file, how);
        CHECK_STR(r.feedback_type, rows[i].feedback_type, name);
        CHECK(rows[i].rcpt_to ? r.original_rcpt_to && !strcmp(r.original_rcpt_to, rows[i].rcpt_to)
                              : !r.original_rcpt_to,
              name);
        CHECK(r.arrival_date != NULL && r.user_agent != NULL, "Arrival-Date or Received-Date");
    }
out:
    report_cleanup(&r);
}

static void test_fixtures(void)
{
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        size_t len, clen;
        char *msg = load(rows[i].file, &len);
        CHECK(msg != NULL, rows[i].file);
        if (!msg)
            continue;
        check_row(i, msg, len, "as stored");
        char *c = crlf(msg, len, &clen);
        check_row(i, c, clen, "CRLF");
        free(c);
        free(msg);
    }
    /* the VERP candidates in their order: a DSN's Delivered-To first; an
     * ARF's Original-Mail-From; the returned Return-Path (AOL-like) */
    size_t len;
    char *msg = load("arf-rfc5965.eml", &len), why[256];
    struct report r;
    CHECK_INT(report_parse(msg, len, &r, why, sizeof why), 0, "5965 again");
    CHECK(has_addr(&r, "bounces+7.4444444444444444@bounce.test") && r.naddrs == 2,
          "5965: To, then Original-Mail-From (the same as the Return-Path)");
    report_cleanup(&r);
    free(msg);
    msg = load("arf-aol.eml", &len);
    CHECK_INT(report_parse(msg, len, &r, why, sizeof why), 0, "aol again");
    CHECK(has_addr(&r, "bounces+7.7777777777777777@bounce.test"),
          "aol: the returned Return-Path is a candidate");
    report_cleanup(&r);
    free(msg);
}

/* synthetic variations on the real DSN */
static void test_variants(void)
{
    char why[256];
    struct report r;
    size_t len;
    char *msg = load("postfix-unknown-user.eml", &len);
    if (!msg)
        return;
    /* the status part base64-encoded */
    const char *a = strstr(msg, "Content-Type: message/delivery-status\n\n");
    const char *b = a ? strstr(a, "\n--") : NULL;
    CHECK(a && b, "the status part");
    if (a && b) {
        const char *body = a + strlen("Content-Type: message/delivery-status\n\n");
        char *enc = NULL;
        size_t n = (size_t)(b - body);
        static const char tbl[] =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        enc = calloc(n * 2 + 8, 1);
        size_t e = 0;
        for (size_t i = 0; i < n; i += 3) {
            unsigned v = (unsigned char)body[i] << 16;
            v |= i + 1 < n ? (unsigned char)body[i + 1] << 8 : 0;
            v |= i + 2 < n ? (unsigned char)body[i + 2] : 0;
            enc[e++] = tbl[v >> 18 & 63];
            enc[e++] = tbl[v >> 12 & 63];
            enc[e++] = i + 1 < n ? tbl[v >> 6 & 63] : '=';
            enc[e++] = i + 2 < n ? tbl[v & 63] : '=';
            if (e % 77 == 76)
                enc[e++] = '\n';
        }
        char *v = calloc(len + e + 100, 1);
        int w = snprintf(v, len + e + 100,
                         "%.*sContent-Type: message/delivery-status\n"
                         "Content-Transfer-Encoding: base64\n\n%s%s",
                         (int)(a - msg), msg, enc, b);
        CHECK_INT(report_parse(v, (size_t)w, &r, why, sizeof why), 0, "base64 status part");
        CHECK(r.nrcpts == 1 && r.rcpts[0].status && !strcmp(r.rcpts[0].status, "5.1.1"),
              "base64: the same status");
        report_cleanup(&r);
        free(v);
        free(enc);
    }
    /* two recipients, a status with a comment, a folded diagnostic */
    const char *grp = strstr(msg, "Final-Recipient:");
    if (grp) {
        const char *end = strstr(grp, "\n--");
        char *v = calloc(len + 600, 1);
        int w = snprintf(v, len + 600,
                         "%.*sFinal-Recipient: rfc822; a@rcpt.test\nAction: failed\n"
                         "Status: 5.2.2 (mailbox full)\nDiagnostic-Code: smtp; 552 5.2.2\n"
                         "  mailbox full\n\n%.*s",
                         (int)(grp - msg), msg, (int)(strlen(grp)), grp);
        (void)end;
        CHECK_INT(report_parse(v, (size_t)w, &r, why, sizeof why), 0, "two recipient groups");
        CHECK_INT(r.nrcpts, 2, "both read");
        if (r.nrcpts == 2) {
            CHECK_STR(r.rcpts[0].status, "5.2.2", "a status comment is dropped");
            CHECK_STR(r.rcpts[0].diagnostic, "smtp; 552 5.2.2 mailbox full", "unfolded");
            CHECK(r.rcpts[0].original_rcpt == NULL, "no Original-Recipient");
        }
        report_cleanup(&r);
        free(v);
    }
    /* a status that is no status code */
    char *v = strdup(msg);
    char *st = strstr(v, "Status: 5.1.1");
    if (st) {
        memcpy(st, "Status: 9.x.1", 13);
        CHECK_INT(report_parse(v, len, &r, why, sizeof why), -1, "Status 9.x.1");
        CHECK(strstr(why, "invalid Status") != NULL, why);
    }
    free(v);
    CHECK_INT(report_parse("", 0, &r, why, sizeof why), -1, "empty");
    CHECK_INT(report_parse("x", 1, &r, why, sizeof why), -1, "one byte");
    free(msg);
}

/* ---- matching against a store ----------------------------------------- */

static const char *const mids[] = {
    "<email-7.0123456789abcdef@w.test>", "<email-7.1111111111111111@w.test>",
    "<email-7.2222222222222222@w.test>", "<email-7.3333333333333333@w.test>",
    "<email-7.4444444444444444@w.test>", "<email-7.5555555555555555@w.test>",
    "<email-7.6666666666666666@w.test>", "<email-7.7777777777777777@w.test>",
    "<email-7.8888888888888888@w.test>"};
static const char *const rcpts[] = {
    "nouser@rcpt.test", "x@hard.test",         "y@soft.test",
    "z@soft.test",      "reader@example.test", "someone@yahoo.test",
    "h@hotmail.test",   "a@aol.test",          "other@receiver.test"};

static const struct {
    const char *file;
    enum bounce_result want;
    const char *mid;
    int soft;
    const char *what; /* status, feedback_type or the why */
} match_rows[] = {
    {"postfix-unknown-user.eml", BOUNCE_BOUNCED, "<email-7.0123456789abcdef@w.test>", 0, "5.1.1"},
    {"postfix-remote-hard.eml", BOUNCE_BOUNCED, "<email-7.1111111111111111@w.test>", 0, "5.3.0"},
    {"postfix-remote-soft.eml", BOUNCE_BOUNCED, "<email-7.2222222222222222@w.test>", 1, "4.3.0"},
    {"postfix-delayed.eml", BOUNCE_IGNORED, "<email-7.3333333333333333@w.test>", 0,
     "Action delayed"},
    {"arf-rfc5965.eml", BOUNCE_COMPLAINED, "<email-7.4444444444444444@w.test>", 0, "abuse"},
    {"arf-yahoo.eml", BOUNCE_COMPLAINED, "<email-7.5555555555555555@w.test>", 0, "abuse"},
    {"arf-microsoft.eml", BOUNCE_COMPLAINED, "<email-7.6666666666666666@w.test>", 0, "abuse"},
    {"arf-aol.eml", BOUNCE_COMPLAINED, "<email-7.7777777777777777@w.test>", 0, "abuse"},
    {"arf-auth-failure.eml", BOUNCE_IGNORED, "<email-7.8888888888888888@w.test>", 0,
     "auth-failure"},
};

static bool match_file(struct hstore *s, const char *file, const char *from, const char *to,
                       struct bounce_outcome *o)
{
    size_t len;
    char *msg = load(file, &len), why[256];
    if (!msg)
        return false;
    /* from -> to: the same report about another token or Message-ID */
    char *at = from ? strstr(msg, from) : NULL;
    while (at) {
        memcpy(at, to, strlen(to)); /* same length */
        at = strstr(at, from);
    }
    struct report r;
    bool ok = report_parse(msg, len, &r, why, sizeof why) == 0 &&
              bounce_match(s, &r, 1795428000000, o) == 0;
    if (ok)
        report_cleanup(&r);
    free(msg);
    return ok;
}

static void test_match(void)
{
    char path[] = "/tmp/test_reports.XXXXXX", db[64], err[256];
    CHECK(mkdtemp(path) != NULL, "temp dir");
    snprintf(db, sizeof db, "%s/h.db", path);
    struct hstore *s = hstore_open(db, 2, err, sizeof err);
    CHECK(s != NULL, err);
    if (!s)
        return;
    struct copy_event c[9];
    for (size_t i = 0; i < 9; i++) {
        const char *d = strchr(rcpts[i], '@') + 1;
        c[i] = (struct copy_event){.message_id = mids[i],
                                   .broadcast_id = "<email-7@w.test>",
                                   .recipient = rcpts[i],
                                   .domain = d,
                                   .smtp_client = "custom",
                                   .email_id = 7,
                                   .sent_at_ms = 1795428000000};
    }
    size_t nu, nc;
    CHECK_INT(hstore_apply_events(s, NULL, 0, c, 9, &nu, &nc), 0, "copies stored");
    struct bounce_outcome o;
    for (size_t i = 0; i < sizeof match_rows / sizeof match_rows[0]; i++) {
        char name[160];
        snprintf(name, sizeof name, "match %s", match_rows[i].file);
        CHECK(match_file(s, match_rows[i].file, NULL, NULL, &o), name);
        snprintf(name, sizeof name, "%s: %s", match_rows[i].file,
                 bounce_result_name(match_rows[i].want));
        CHECK_INT(o.result, match_rows[i].want, name);
        if (o.result != match_rows[i].want)
            printf("# %s\n", o.why);
        CHECK_STR(o.ev.message_id, match_rows[i].mid, "the copy");
        CHECK_STR(o.recipient, rcpts[i], "its recipient");
        if (o.result == BOUNCE_BOUNCED) {
            CHECK_INT(o.ev.soft, match_rows[i].soft, "hard or soft");
            CHECK_STR(o.ev.status, match_rows[i].what, "status");
            CHECK_INT(o.ev.email_id, 7, "email_id");
            CHECK_STR(o.ev.domain, strchr(rcpts[i], '@') + 1, "domain");
            CHECK_STR(o.ev.at, "2026-11-23T10:00:00.000Z", "at");
        } else if (o.result == BOUNCE_COMPLAINED) {
            CHECK_STR(o.ev.feedback_type, "abuse", "feedback_type");
        } else {
            CHECK(strstr(o.why, match_rows[i].what) != NULL, o.why);
        }
    }
    /* a forged token (right syntax, no such copy) and no returned copy */
    CHECK(match_file(s, "postfix-unknown-user.eml", "7.0123456789abcdef", "7.0123456789abcdee", &o),
          "forged token parsed");
    CHECK_INT(o.result, BOUNCE_UNMATCHED, "a forged token is unmatched");
    CHECK(strstr(o.why, "names no tracked copy") != NULL, o.why);
    /* an unknown email id in the token */
    CHECK(match_file(s, "postfix-unknown-user.eml", "bounces+7.", "bounces+9.", &o),
          "unknown email parsed");
    CHECK_INT(o.result, BOUNCE_BOUNCED, "token unknown: the returned Message-ID matches");
    /* a token that is no VERP token; the returned Message-ID still matches */
    CHECK(match_file(s, "postfix-remote-soft.eml", "bounces+7.2222", "bounces+x.2222", &o),
          "bad token parsed");
    CHECK_INT(o.result, BOUNCE_BOUNCED, "no token: matched by the returned Message-ID");
    /* a DSN about an address we never sent to */
    CHECK(match_file(s, "postfix-unknown-user.eml", "nouser@rcpt.test", "nobody@rcpt.test", &o),
          "other recipient parsed");
    CHECK_INT(o.result, BOUNCE_UNMATCHED, "a DSN for an address we never sent to");
    CHECK(strstr(o.why, "nobody@rcpt.test") != NULL, o.why);
    /* an ARF whose Original-Rcpt-To is not the copy's */
    CHECK(match_file(s, "arf-yahoo.eml", "someone@yahoo.test", "someone@yahoo.tesX", &o),
          "other Original-Rcpt-To parsed");
    CHECK_INT(o.result, BOUNCE_UNMATCHED, "an ARF about another recipient");
    hstore_free(s);
    unlink(db);
    char wal[128];
    snprintf(wal, sizeof wal, "%s-wal", db);
    unlink(wal);
    snprintf(wal, sizeof wal, "%s-shm", db);
    unlink(wal);
    for (int k = 1; k < 2; k++) {
        char f[96];
        snprintf(f, sizeof f, "%s.shard%d", db, k);
        unlink(f);
        snprintf(wal, sizeof wal, "%s-wal", f);
        unlink(wal);
        snprintf(wal, sizeof wal, "%s-shm", f);
        unlink(wal);
    }
    rmdir(path);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        dir = argv[1];
    log_init(LOG_WARN, LOG_TEXT, "test");
    test_fixtures();
    test_variants();
    test_match();
    return test_done();
}
