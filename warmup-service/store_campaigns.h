/* store_campaigns.h - the campaigns part of the storage interface (DESIGN
 * 9.5): a campaign is a draft (its name, sender, template version,
 * audience, A/B variants and rate) until started; start makes its emails
 * (kind EMAIL_KIND_CAMPAIGN, one per variant, or one without variants)
 * and fans out the audience's copies in ONE transaction; its controls
 * (pause, resume, rate limit) apply to every one of its emails.
 *
 * Conventions as store.h: plain C structs, results are heap copies the
 * caller frees with the function named, errors 0 / 1 (unknown id) / -1
 * (logged), any thread. The audience travels as its canonical JSON text
 * (built and checked by api_campaigns.c) because the store evaluates it
 * in SQL (json_each), as users' attributes and templates' defaults do.
 * The SQLite backend is store_campaigns.c; it owns the campaigns table
 * and reads campaign_recipients and imports (written by the importer).
 */
#ifndef STORE_CAMPAIGNS_H
#define STORE_CAMPAIGNS_H

#include "store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* the most variants a campaign may have */
#define CAMPAIGN_VARIANTS_MAX 26

/* an A/B variant; strings heap in a struct campaign, borrowed in a spec */
struct campaign_variant {
    char *name;    /* unique in its campaign, <= EVENT_VARIANT_MAX octets */
    char *subject; /* NULL: the template's */
    int weight;    /* > 0 */
};

/* one email row of a started campaign, with its counters */
struct campaign_email {
    int64_t email_id;
    char *variant; /* heap; NULL for the one email of a campaign without variants */
    char *subject; /* heap */
    int tpm;
    bool paused;
    int64_t pending, sent, failed, dead, suppressed;
};

/* a campaign; strings heap (campaign_cleanup), from_name NULL when none */
struct campaign {
    int64_t id;
    char *name, *from, *from_name, *template_name, *smtp_client;
    int template_version;
    char *audience;                    /* canonical JSON: {"all":true} | {"domains":[..]} |
                                        * {"attributes":{..}} | {"upload":true} */
    struct campaign_variant *variants; /* nvariants 0: none */
    size_t nvariants;
    int tpm;      /* the campaign's rate (copies per minute), 0: none */
    bool started; /* false: a draft */
    bool paused;
    int64_t total;                 /* copies made at start */
    char *created_at, *started_at; /* RFC 3339; started_at NULL for a draft */
    struct campaign_email *emails; /* started: in variant order */
    size_t nemails;
};
/* campaign_cleanup - free c's strings, variants and emails and zero it */
void campaign_cleanup(struct campaign *c);
/* store_campaigns_free - campaign_cleanup each, then the array; NULL no-op */
void store_campaigns_free(struct campaign *v, size_t n);

/* a new campaign; every pointer borrowed for the call, checked by the
 * caller (from_name, smtp_client and variants may be NULL/0) */
struct campaign_spec {
    const char *name, *from, *from_name, *template_name, *smtp_client, *audience, *created_at;
    int template_version;
    const struct campaign_variant *variants;
    size_t nvariants;
    int tpm;
};
/* store_create_campaign - a draft; *id set. 0 or -1 (nothing written). */
int store_create_campaign(struct store *s, const struct campaign_spec *spec, int64_t *id);
/* store_get_campaign - 0 found (caller cleans *out with campaign_cleanup),
 * 1 unknown id, -1 error */
int store_get_campaign(struct store *s, int64_t id, struct campaign *out);
/* store_list_campaigns - up to limit campaigns from offset in id order,
 * with their emails, into a new array. 0: caller frees with
 * store_campaigns_free; -1: *out NULL, *n 0. */
int store_list_campaigns(struct store *s, int64_t limit, int64_t offset, struct campaign **out,
                         size_t *n);

/* what store_start_campaign needs besides the stored campaign; every
 * pointer borrowed for the call */
struct campaign_start {
    const struct template *tmpl; /* the campaign's template version */
    const char *msgid_domain;
    const char *const *keys; /* placeholders every recipient must have a value for (keys
                              * of the template and the variants' subjects that are neither
                              * builtin nor in the defaults): letters, digits, _ - . only */
    size_t nkeys;
    const char *started_at; /* RFC 3339 */
};

/* why a start was refused (store_start_campaign answered
 * STORE_START_CONFLICT) */
enum campaign_conflict {
    CAMPAIGN_NOT_DRAFT = 1,    /* already started */
    CAMPAIGN_NO_MATCH,         /* the audience matches no user (no recipient in the list) */
    CAMPAIGN_ALL_SUPPRESSED,   /* every address matched is suppressed */
    CAMPAIGN_UPLOAD_IMPORTING, /* an import of the campaign's list is queued or running */
    CAMPAIGN_UPLOAD_NONE,      /* audience upload: no list imported yet */
    CAMPAIGN_UPLOAD_FAILED     /* audience upload: the last import failed, no recipient */
};

enum {
    STORE_START_OK = 0,
    STORE_START_UNKNOWN = 1,  /* no such campaign */
    STORE_START_CONFLICT = 2, /* result->conflict says why */
    STORE_START_MISSING = 3   /* result->key has no value for result->missing recipients */
};

/* what a start did or why it did not */
struct campaign_start_result {
    enum campaign_conflict conflict;
    int64_t matched;    /* CONFLICT: addresses the audience matched */
    int64_t total;      /* OK: copies made */
    char key[72];       /* MISSING: the placeholder */
    int64_t missing;    /* MISSING: recipients without a value for it */
    char example[256];  /* MISSING: the first of them (audience order) */
    int64_t *email_ids; /* OK: the emails made, in variant order; caller frees */
    size_t nemails;
};

/* store_start_campaign - in ONE transaction: check the campaign is a
 * draft with a non-empty audience whose every recipient has a value for
 * each of st->keys, make its emails (paused if the campaign is) and one
 * copy per recipient whose address is not suppressed (data: the user's
 * attributes or the list's columns), each recipient's variant chosen by
 * weight (row number in audience order modulo the weights' sum, against
 * their running sums: exact per full round of the weights, reduced by
 * their gcd), the campaign's tpm split across them (campaign_split_tpm).
 * STORE_START_* as above (nothing written unless OK), -1 on error. */
int store_start_campaign(struct store *s, int64_t id, const struct campaign_start *st,
                         struct campaign_start_result *result);

/* campaign_split_tpm - tpm split by weight across n variants into out[]:
 * largest remainders, so they sum to tpm, and each at least 1 when tpm > 0
 * (the sum may then exceed a tpm smaller than n); 0 stays 0 (no limit).
 * n 0, v NULL or n over CAMPAIGN_VARIANTS_MAX: out[0] = tpm. Pure. */
void campaign_split_tpm(int tpm, const struct campaign_variant *v, size_t n, int *out);

/* store_campaign_set_paused - the campaign's pause flag and every one of
 * its emails', in ONE transaction; the emails' ids into a new array
 * *email_ids (caller frees; the sender must be told). 0, 1 unknown, -1. */
int store_campaign_set_paused(struct store *s, int64_t id, bool paused, int64_t **email_ids,
                              size_t *n);
/* store_campaign_set_tpm - the campaign's tpm and its split onto its
 * emails, in ONE transaction; email ids as above. 0, 1 unknown, -1. */
int store_campaign_set_tpm(struct store *s, int64_t id, int tpm, int64_t **email_ids, size_t *n);

#endif
