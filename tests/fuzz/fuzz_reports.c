/* fuzz_reports.c - bounce and complaint report parsing
 * (health-service/bounce/report.c, over libetpan's MIME and header
 * parsers) on arbitrary messages. Seeds: the fixtures of
 * tests/fixtures/bounces (real Postfix DSNs, ARF reports, malformed ones).
 *
 * Invariants: a refusal says why and leaves the report empty; an accepted
 * DSN has 1..REPORT_MAX_RCPTS recipient groups, each with an address, an
 * Action and an RFC 3463 Status; an accepted ARF has a lower-case
 * Feedback-Type; every string is non-empty, one line, without control
 * bytes; addresses carry no angle brackets or spaces; a returned
 * Message-ID is <...>; parsing the same bytes again gives the same
 * verdict (no state kept between calls).
 */
#include "bounce/report.h"
#include "fuzz.h"

#include <ctype.h>
#include <stdbool.h>
#include <string.h>

/* clean - NULL or a non-empty string without control bytes */
static bool clean(const char *s)
{
    if (!s)
        return true;
    if (!*s)
        return false;
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return false;
    return true;
}

static bool bare(const char *a)
{
    return clean(a) && (!a || (!strchr(a, '<') && !strchr(a, '>') && !strchr(a, ' ')));
}

static bool status_ok(const char *s)
{
    if (!s || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.')
        return false;
    s += 2;
    for (int part = 0; part < 2; part++) {
        int n = 0;
        while (n < 3 && isdigit((unsigned char)s[n]))
            n++;
        if (n == 0 || s[n] != (part ? '\0' : '.'))
            return false;
        s += n + 1;
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct report r, again;
    char why[256] = "", why2[256] = "";
    int rc = report_parse((const char *)data, size, &r, why, sizeof why);
    FUZZ_CHECK(rc == 0 || rc == -1, "0 or -1");
    int rc2 = report_parse((const char *)data, size, &again, why2, sizeof why2);
    FUZZ_CHECK(rc2 == rc, "the same verdict twice");
    report_cleanup(&again);
    if (rc != 0) {
        FUZZ_CHECK(why[0] != '\0', "a refusal says why");
        FUZZ_CHECK(r.naddrs == 0 && !r.rcpts && !r.returned_mid && !r.feedback_type,
                   "a refused report is empty");
        return 0;
    }
    FUZZ_CHECK(r.kind == REPORT_DSN || r.kind == REPORT_ARF, "a kind");
    FUZZ_CHECK(r.naddrs <= REPORT_MAX_ADDRS, "addresses capped");
    for (size_t i = 0; i < r.naddrs; i++)
        FUZZ_CHECK(r.addrs[i] && bare(r.addrs[i]), "a bare address");
    if (r.returned_mid) {
        size_t n = strlen(r.returned_mid);
        FUZZ_CHECK(clean(r.returned_mid) && n >= 2 && r.returned_mid[0] == '<' &&
                       r.returned_mid[n - 1] == '>',
                   "a returned Message-ID is <...>");
    }
    if (r.kind == REPORT_DSN) {
        FUZZ_CHECK(r.nrcpts >= 1 && r.nrcpts <= REPORT_MAX_RCPTS, "recipient groups");
        for (size_t i = 0; i < r.nrcpts; i++) {
            const struct report_rcpt *g = &r.rcpts[i];
            FUZZ_CHECK(g->final_rcpt || g->original_rcpt, "an address");
            FUZZ_CHECK(bare(g->final_rcpt) && bare(g->original_rcpt), "bare addresses");
            FUZZ_CHECK(g->action && clean(g->action), "an Action");
            for (const char *p = g->action; *p; p++)
                FUZZ_CHECK(!isupper((unsigned char)*p), "Action lower-cased");
            FUZZ_CHECK(status_ok(g->status), "an RFC 3463 Status");
            FUZZ_CHECK(clean(g->diagnostic), "a clean diagnostic");
        }
        FUZZ_CHECK(!r.feedback_type, "no feedback fields in a DSN");
    } else {
        FUZZ_CHECK(r.feedback_type && clean(r.feedback_type), "a Feedback-Type");
        for (const char *p = r.feedback_type; *p; p++)
            FUZZ_CHECK(!isupper((unsigned char)*p), "Feedback-Type lower-cased");
        FUZZ_CHECK(bare(r.original_rcpt_to) && bare(r.original_mail_from), "bare addresses");
        FUZZ_CHECK(clean(r.arrival_date) && clean(r.reported_domain) && clean(r.user_agent),
                   "clean fields");
        FUZZ_CHECK(r.nrcpts == 0, "no recipient groups in an ARF");
    }
    report_cleanup(&r);
    return 0;
}
