/* store_campaigns.c - the SQLite backend of store_campaigns.h: the
 * campaigns table, and a campaign's start (its emails and the audience's
 * copies in one transaction). Locks as in store.c: w_lock for the writer
 * connection, r_lock for the reader, never both. The audience is
 * evaluated in SQL from its canonical JSON (json_each, json_extract);
 * variants are stored as a JSON array (json-c here, never seen by a
 * caller). Results are heap copies the caller frees. */
#include "store_campaigns.h"
#include "buf.h"
#include "db.h"
#include "log.h"
#include "store_int.h"
#include "xalloc.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void campaign_cleanup(struct campaign *c)
{
    if (!c)
        return;
    free(c->name);
    free(c->from);
    free(c->from_name);
    free(c->template_name);
    free(c->smtp_client);
    free(c->audience);
    free(c->created_at);
    free(c->started_at);
    for (size_t i = 0; i < c->nvariants; i++) {
        free(c->variants[i].name);
        free(c->variants[i].subject);
    }
    free(c->variants);
    for (size_t i = 0; i < c->nemails; i++) {
        free(c->emails[i].variant);
        free(c->emails[i].subject);
    }
    free(c->emails);
    memset(c, 0, sizeof *c);
}

void store_campaigns_free(struct campaign *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        campaign_cleanup(&v[i]);
    free(v);
}

/* variants_json - the variants as stored; caller frees; NULL when none */
static char *variants_json(const struct campaign_variant *v, size_t n)
{
    if (n == 0)
        return NULL;
    json_object *arr = json_object_new_array();
    for (size_t i = 0; i < n; i++) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(v[i].name));
        if (v[i].subject)
            json_object_object_add(o, "subject", json_object_new_string(v[i].subject));
        json_object_object_add(o, "weight", json_object_new_int(v[i].weight));
        json_object_array_add(arr, o);
    }
    char *s = xstrdup(json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PLAIN));
    json_object_put(arr);
    return s;
}

/* parse_variants - the stored JSON into c->variants; 0 or -1 */
static int parse_variants(const char *text, struct campaign *c)
{
    if (!text)
        return 0;
    json_object *arr = json_tokener_parse(text);
    if (!arr || !json_object_is_type(arr, json_type_array)) {
        json_object_put(arr);
        return -1;
    }
    size_t n = json_object_array_length(arr);
    c->variants = xcalloc(n ? n : 1, sizeof *c->variants);
    for (size_t i = 0; i < n; i++) {
        json_object *o = json_object_array_get_idx(arr, i), *x;
        struct campaign_variant *v = &c->variants[c->nvariants++];
        v->name =
            xstrdup(json_object_object_get_ex(o, "name", &x) ? json_object_get_string(x) : "");
        if (json_object_object_get_ex(o, "subject", &x) && json_object_is_type(x, json_type_string))
            v->subject = xstrdup(json_object_get_string(x));
        v->weight = json_object_object_get_ex(o, "weight", &x) ? json_object_get_int(x) : 1;
    }
    json_object_put(arr);
    return 0;
}

#define CAMPAIGN_COLS                                                                              \
    "id, name, from_addr, from_name, template, version, audience, variants, tpm, smtp_client,"     \
    " state, paused, total, created_at, started_at"

/* read_campaign - the current row of st (CAMPAIGN_COLS) into c; 0 or -1 */
static int read_campaign(struct sqldb_stmt *st, struct campaign *c)
{
    memset(c, 0, sizeof *c);
    c->id = sqldb_column_int64(st, 0);
    c->name = store_qcol_str(st, 1);
    c->from = store_qcol_str(st, 2);
    c->from_name = store_qcol_dup(st, 3);
    c->template_name = store_qcol_str(st, 4);
    c->template_version = sqldb_column_int64(st, 5);
    c->audience = store_qcol_str(st, 6);
    c->tpm = sqldb_column_int64(st, 8);
    c->smtp_client = store_qcol_dup(st, 9);
    const char *state = sqldb_column_text(st, 10);
    c->started = state && strcmp((const char *)state, "draft") != 0;
    c->paused = sqldb_column_int64(st, 11) != 0;
    c->total = sqldb_column_int64(st, 12);
    c->created_at = store_qcol_str(st, 13);
    c->started_at = store_qcol_dup(st, 14);
    return parse_variants(sqldb_column_text(st, 7), c);
}

/* read_emails - the campaign's emails (st: EMAILS_OF bound to nothing
 * yet) into c; 0 or -1 */
#define EMAILS_OF                                                                                  \
    "SELECT id, variant, subject, tpm, paused, n_pending, n_sent, n_failed, n_dead,"               \
    " n_suppressed FROM emails WHERE campaign_id = ?1 ORDER BY id"
static int read_emails(struct sqldb_stmt *st, struct campaign *c)
{
    size_t cap = 0;
    int r;
    sqldb_reset(st);
    sqldb_bind_int64(st, 1, c->id);
    while ((r = sqldb_step(st)) == SQLDB_ROW) {
        c->emails = store_grow(c->emails, &cap, c->nemails, sizeof *c->emails);
        struct campaign_email *e = &c->emails[c->nemails++];
        e->email_id = sqldb_column_int64(st, 0);
        e->variant = store_qcol_dup(st, 1);
        e->subject = store_qcol_str(st, 2);
        e->tpm = sqldb_column_int64(st, 3);
        e->paused = sqldb_column_int64(st, 4) != 0;
        e->pending = sqldb_column_int64(st, 5);
        e->sent = sqldb_column_int64(st, 6);
        e->failed = sqldb_column_int64(st, 7);
        e->dead = sqldb_column_int64(st, 8);
        e->suppressed = sqldb_column_int64(st, 9);
    }
    sqldb_reset(st);
    return r == SQLDB_DONE ? 0 : -1;
}

int store_create_campaign(struct store *s, const struct campaign_spec *sp, int64_t *id)
{
    int rc = -1;
    char *variants = variants_json(sp->variants, sp->nvariants);
    pthread_mutex_lock(&s->w_lock);
    struct sqldb_stmt *st = sqldb_prepare(
        s->wq, "INSERT INTO campaigns(name, from_addr, from_name, template, version, audience,"
               " variants, tpm, smtp_client, created_at) VALUES(?,?,?,?,?,?,?,?,?,?) RETURNING id");
    if (st) {
        sqldb_bind_text(st, 1, sp->name, -1);
        sqldb_bind_text(st, 2, sp->from, -1);
        sqldb_bind_text(st, 3, sp->from_name, -1);
        sqldb_bind_text(st, 4, sp->template_name, -1);
        sqldb_bind_int64(st, 5, sp->template_version);
        sqldb_bind_text(st, 6, sp->audience, -1);
        sqldb_bind_text(st, 7, variants, -1);
        sqldb_bind_int64(st, 8, sp->tpm);
        sqldb_bind_text(st, 9, sp->smtp_client, -1);
        sqldb_bind_text(st, 10, sp->created_at, -1);
        if (sqldb_step(st) == SQLDB_ROW) {
            *id = sqldb_column_int64(st, 0);
            rc = 0;
        }
        sqldb_finalize(st);
    }
    pthread_mutex_unlock(&s->w_lock);
    free(variants);
    return rc;
}

/* get_campaign - campaign id with its emails over db (its lock held) */
static int get_campaign(struct sqldb *db, int64_t id, struct campaign *out)
{
    int rc = -1;
    struct sqldb_stmt *st =
        sqldb_prepare(db, "SELECT " CAMPAIGN_COLS " FROM campaigns WHERE id = ?");
    struct sqldb_stmt *em = sqldb_prepare(db, EMAILS_OF);
    memset(out, 0, sizeof *out);
    if (st && em) {
        sqldb_bind_int64(st, 1, id);
        int r = sqldb_step(st);
        if (r == SQLDB_DONE)
            rc = 1;
        else if (r == SQLDB_ROW)
            rc = read_campaign(st, out) == 0 && read_emails(em, out) == 0 ? 0 : -1;
    }
    sqldb_finalize(st);
    sqldb_finalize(em);
    if (rc != 0)
        campaign_cleanup(out);
    if (rc < 0)
        log_error("store: campaign %lld could not be read: %s", (long long)id, sqldb_errmsg(db));
    return rc;
}

int store_get_campaign(struct store *s, int64_t id, struct campaign *out)
{
    pthread_mutex_lock(&s->r_lock);
    int rc = get_campaign(s->rq, id, out);
    pthread_mutex_unlock(&s->r_lock);
    return rc;
}

int store_list_campaigns(struct store *s, int64_t limit, int64_t offset, struct campaign **out,
                         size_t *n)
{
    int rc = -1, r = -1;
    size_t cap = 0;
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&s->r_lock);
    struct sqldb_stmt *st = sqldb_prepare(s->rq, "SELECT " CAMPAIGN_COLS
                                                 " FROM campaigns ORDER BY id LIMIT ? OFFSET ?");
    struct sqldb_stmt *em = sqldb_prepare(s->rq, EMAILS_OF);
    if (st && em) {
        sqldb_bind_int64(st, 1, limit);
        sqldb_bind_int64(st, 2, offset);
        while ((r = sqldb_step(st)) == SQLDB_ROW) {
            *out = store_grow(*out, &cap, *n, sizeof **out);
            struct campaign *c = &(*out)[(*n)++];
            if (read_campaign(st, c) != 0 || read_emails(em, c) != 0) {
                r = -1;
                break;
            }
        }
        rc = r == SQLDB_DONE ? 0 : -1;
    }
    sqldb_finalize(st);
    sqldb_finalize(em);
    pthread_mutex_unlock(&s->r_lock);
    if (rc != 0) {
        log_error("store: listing campaigns failed");
        store_campaigns_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

void campaign_split_tpm(int tpm, const struct campaign_variant *v, size_t n, int *out)
{
    if (n == 0 || !v || n > CAMPAIGN_VARIANTS_MAX) {
        out[0] = tpm;
        return;
    }
    int64_t w = 0, given = 0, rem[CAMPAIGN_VARIANTS_MAX];
    for (size_t i = 0; i < n; i++)
        w += v[i].weight > 0 ? v[i].weight : 1;
    for (size_t i = 0; i < n; i++) {
        int64_t share = (int64_t)tpm * (v[i].weight > 0 ? v[i].weight : 1);
        out[i] = (int)(share / w);
        rem[i] = share % w;
        given += out[i];
    }
    /* what the floors left, one each to the largest remainders (the
     * first on ties): fewer than n */
    for (int64_t left = tpm - given; left > 0; left--) {
        size_t best = 0;
        for (size_t i = 1; i < n; i++)
            if (rem[i] > rem[best])
                best = i;
        out[best]++;
        rem[best] = -1;
    }
    for (size_t i = 0; tpm > 0 && i < n; i++)
        if (out[i] < 1)
            out[i] = 1;
}

/* ---- start ------------------------------------------------------------ */

/* The audience's rows (user_id, address, name, lane, data, ord, supp):
 * ?1 the audience JSON, ?2 the campaign id. supp: 1 when the address is
 * suppressed (no copy), else 0 (an integer on both engines). An attribute
 * matches a value of the same JSON type (numbers as numbers, true/false
 * as booleans, strings as strings): PostgreSQL's json_extract answers text
 * for every type, so the types are compared as well as the values. */
#define AUD_USERS                                                                                  \
    "SELECT u.id AS user_id, u.email_id AS address, u.name AS name, u.lane AS lane,"               \
    " u.attributes AS data, u.id AS ord, CASE WHEN EXISTS (SELECT 1 FROM suppressions"             \
    " WHERE address = u.email_id) THEN 1 ELSE 0 END AS supp FROM users u WHERE "
#define AUD_COND_DOMAINS "u.domain IN (SELECT value FROM json_each(?1, '$.domains'))"
#define ATTR_PATH "'$.\"' || a.key || '\"'"
#define JTYPE_CLASS(t)                                                                             \
    "CASE " t " WHEN 'true' THEN 'b' WHEN 'false' THEN 'b' WHEN 'integer' THEN 'n'"                \
    " WHEN 'real' THEN 'n' ELSE " t " END"
#define AUD_COND_ATTRIBUTES                                                                        \
    "NOT EXISTS (SELECT 1 FROM json_each(?1, '$.attributes') a WHERE NOT coalesce("                \
    "json_extract(u.attributes, " ATTR_PATH ") = a.value AND " JTYPE_CLASS(                        \
        "json_type(u.attributes, " ATTR_PATH ")") " = " JTYPE_CLASS("a.type") ", FALSE))"
#define AUD_UPLOAD                                                                                 \
    "SELECT coalesce((SELECT id FROM users WHERE email_id = r.address COLLATE NOCASE), 0)"         \
    " AS user_id, r.address AS address, r.name AS name, coalesce((SELECT id FROM domains"          \
    " WHERE name = r.domain), 0) AS lane, r.attributes AS data, r.line AS ord,"                    \
    " CASE WHEN EXISTS (SELECT 1 FROM suppressions WHERE address = r.address) THEN 1 ELSE 0 END"   \
    " AS supp"                                                                                     \
    " FROM campaign_recipients r WHERE r.campaign_id = ?2 AND json_type(?1, '$.upload') = 'true'"

enum aud_kind { AUD_BAD, AUD_ALL, AUD_DOMAINS, AUD_ATTRIBUTES, AUD_LIST };

/* aud_kind - the form of a canonical audience (its one key); AUD_BAD
 * for anything else, which starts nothing (never "everyone" by mistake) */
static enum aud_kind aud_kind(const char *audience)
{
    enum aud_kind k = AUD_BAD;
    json_object *o = json_tokener_parse(audience);
    if (o && json_object_is_type(o, json_type_object)) {
        if (json_object_object_get_ex(o, "domains", NULL))
            k = AUD_DOMAINS;
        else if (json_object_object_get_ex(o, "attributes", NULL))
            k = AUD_ATTRIBUTES;
        else if (json_object_object_get_ex(o, "upload", NULL))
            k = AUD_LIST;
        else if (json_object_object_get_ex(o, "all", NULL))
            k = AUD_ALL;
    }
    json_object_put(o);
    return k;
}

/* aud_sql - "(the audience's rows) AS aud" into b */
static void aud_sql(struct buf *b, enum aud_kind k)
{
    buf_printf(b, "(%s%s) AS aud", k == AUD_LIST ? AUD_UPLOAD : AUD_USERS,
               k == AUD_LIST         ? ""
               : k == AUD_DOMAINS    ? AUD_COND_DOMAINS
               : k == AUD_ATTRIBUTES ? AUD_COND_ATTRIBUTES
                                     : "1");
}

/* prep_aud - prepare sql (a format with one %s: the audience's rows) with
 * ?1 and ?2 bound */
static struct sqldb_stmt *prep_aud(struct store *s, const char *fmt, enum aud_kind k,
                                   const struct campaign *c)
{
    struct buf a, q;
    buf_init(&a, 1 << 16);
    buf_init(&q, 1 << 16);
    aud_sql(&a, k);
    buf_printf(&q, fmt, buf_str(&a));
    struct sqldb_stmt *st = sqldb_prepare(s->wq, buf_str(&q));
    buf_cleanup(&a);
    buf_cleanup(&q);
    if (st) {
        sqldb_bind_text(st, 1, c->audience, -1);
        sqldb_bind_int64(st, 2, c->id);
    }
    return st;
}

/* upload_state - for a list audience: whether an import is queued or
 * running, else whether the last one failed; 0 or -1 */
static int upload_state(struct store *s, int64_t id, bool *running, bool *failed, bool *any)
{
    *running = *failed = *any = false;
    struct sqldb_stmt *st = sqldb_prepare(s->wq, "SELECT state FROM imports WHERE campaign_id = ?"
                                                 " ORDER BY id DESC");
    if (!st)
        return -1;
    sqldb_bind_int64(st, 1, id);
    int r;
    bool first = true;
    while ((r = sqldb_step(st)) == SQLDB_ROW) {
        const char *state = sqldb_column_text(st, 0);
        state = state ? state : "";
        *any = true;
        if (strcmp(state, "queued") == 0 || strcmp(state, "importing") == 0)
            *running = true;
        if (first && strcmp(state, "failed") == 0)
            *failed = true;
        first = false;
    }
    sqldb_finalize(st);
    return r == SQLDB_DONE ? 0 : -1;
}

/* check_audience - matched and suppressed counts; 0 or -1 */
static int check_audience(struct store *s, enum aud_kind k, const struct campaign *c,
                          int64_t *matched, int64_t *supp)
{
    struct sqldb_stmt *st = prep_aud(s, "SELECT count(*), coalesce(sum(supp), 0) FROM %s", k, c);
    int rc = -1;
    if (st && sqldb_step(st) == SQLDB_ROW) {
        *matched = sqldb_column_int64(st, 0);
        *supp = sqldb_column_int64(st, 1);
        rc = 0;
    }
    sqldb_finalize(st);
    return rc;
}

/* check_key - recipients (not suppressed) without a value for key, and
 * the first of them; 0 or -1. No value: absent, null, object or array. */
static int check_key(struct store *s, enum aud_kind k, const struct campaign *c, const char *key,
                     int64_t *missing, char *example, size_t exlen)
{
    /* one scan; the count over all of them rides on the first row (no
     * row: none missing) */
    static const char *const fmt =
        "SELECT count(*) OVER (), address FROM %s WHERE supp = 0 AND coalesce(json_type(data,"
        " '$.\"' || ?3 || '\"'), 'null') IN ('null', 'object', 'array') ORDER BY ord LIMIT 1";
    if (strchr(key, '"') || strchr(key, '\\'))
        return -1; /* never a placeholder key */
    struct sqldb_stmt *st = prep_aud(s, fmt, k, c);
    int rc = -1;
    if (st) {
        sqldb_bind_text(st, 3, key, -1);
        int r = sqldb_step(st);
        if (r == SQLDB_ROW) {
            *missing = sqldb_column_int64(st, 0);
            const char *ex = sqldb_column_text(st, 1);
            snprintf(example, exlen, "%s", ex ? (const char *)ex : "");
            rc = 0;
        } else if (r == SQLDB_DONE) {
            *missing = 0;
            example[0] = '\0';
            rc = 0;
        }
        sqldb_finalize(st);
    }
    return rc;
}

static int64_t gcd64(int64_t a, int64_t b)
{
    while (b) {
        int64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* fan_out - one copy per recipient that is not suppressed, onto the
 * emails ids[] by weight; *total copies. 0 or -1. */
static int fan_out(struct store *s, enum aud_kind k, const struct campaign *c, const int64_t *ids,
                   size_t n, int64_t *total)
{
    int64_t g = 0, w = 0;
    for (size_t i = 0; i < n; i++)
        g = gcd64(g, c->nvariants ? c->variants[i].weight : 1);
    struct buf sel;
    buf_init(&sel, 1 << 16);
    /* ?3 the weights' sum (reduced), ?4+2i the running sum up to variant
     * i, ?5+2i its email */
    if (n == 1) {
        buf_printf(&sel, "?5");
    } else {
        buf_printf(&sel, "CASE");
        for (size_t i = 0; i + 1 < n; i++)
            buf_printf(&sel, " WHEN k < ?%zu THEN ?%zu", 4 + 2 * i, 5 + 2 * i);
        buf_printf(&sel, " ELSE ?%zu END", 5 + 2 * (n - 1));
    }
    struct buf fmt;
    buf_init(&fmt, 1 << 16);
    buf_printf(&fmt,
               "INSERT INTO deliveries(email_id, user_id, recipient, name, lane, data)"
               " SELECT %s, user_id, address, name, lane, data FROM (SELECT (row_number() OVER"
               " (ORDER BY ord) - 1) %%%% ?3 AS k, * FROM %%s WHERE supp = 0) AS f",
               buf_str(&sel));
    struct sqldb_stmt *st = prep_aud(s, buf_str(&fmt), k, c);
    buf_cleanup(&sel);
    buf_cleanup(&fmt);
    if (!st)
        return -1;
    for (size_t i = 0; i < n; i++) {
        w += (c->nvariants ? c->variants[i].weight : 1) / g;
        sqldb_bind_int64(st, (int)(4 + 2 * i), w);
        sqldb_bind_int64(st, (int)(5 + 2 * i), ids[i]);
    }
    sqldb_bind_int64(st, 3, w);
    int rc = sqldb_run(st);
    sqldb_finalize(st);
    if (rc == 0)
        *total = sqldb_changes(s->wq);
    return rc;
}

/* count_pending - each email's copies into its n_pending; 0 or -1 */
static int count_pending(struct store *s, const int64_t *ids, size_t n)
{
    struct sqldb_stmt *st =
        sqldb_prepare(s->wq, "UPDATE emails SET n_pending = (SELECT count(*) FROM"
                             " deliveries WHERE email_id = ?1 AND state IN (0, 3))"
                             " WHERE id = ?1");
    int rc = st ? 0 : -1;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        sqldb_reset(st);
        sqldb_bind_int64(st, 1, ids[i]);
        rc = sqldb_run(st);
    }
    sqldb_finalize(st);
    return rc;
}

/* start_checks - the conflicts and missing values that refuse a start:
 * STORE_START_OK or the refusal in r, -1 on error */
static int start_checks(struct store *s, enum aud_kind k, const struct campaign *c,
                        const struct campaign_start *st, struct campaign_start_result *r)
{
    if (c->started) {
        r->conflict = CAMPAIGN_NOT_DRAFT;
        return STORE_START_CONFLICT;
    }
    bool running = false, failed = false, any = false;
    if (k == AUD_LIST && upload_state(s, c->id, &running, &failed, &any) != 0)
        return -1;
    if (running || failed) { /* a failed import leaves the rows of its committed batches */
        r->conflict = running ? CAMPAIGN_UPLOAD_IMPORTING : CAMPAIGN_UPLOAD_FAILED;
        return STORE_START_CONFLICT;
    }
    int64_t matched = 0, supp = 0;
    if (check_audience(s, k, c, &matched, &supp) != 0)
        return -1;
    r->matched = matched;
    if (matched == 0) {
        r->conflict = k == AUD_LIST && !any ? CAMPAIGN_UPLOAD_NONE : CAMPAIGN_NO_MATCH;
        return STORE_START_CONFLICT;
    }
    if (matched == supp) {
        r->conflict = CAMPAIGN_ALL_SUPPRESSED;
        return STORE_START_CONFLICT;
    }
    for (size_t i = 0; i < st->nkeys; i++) {
        if (check_key(s, k, c, st->keys[i], &r->missing, r->example, sizeof r->example) != 0)
            return -1;
        if (r->missing > 0) {
            snprintf(r->key, sizeof r->key, "%s", st->keys[i]);
            return STORE_START_MISSING;
        }
    }
    return STORE_START_OK;
}

/* make_emails - the campaign's email rows into r->email_ids; 0 or -1 */
static int make_emails(struct store *s, const struct campaign *c, const struct campaign_start *st,
                       struct campaign_start_result *r)
{
    size_t n = c->nvariants ? c->nvariants : 1;
    int tpm[CAMPAIGN_VARIANTS_MAX];
    if (n > CAMPAIGN_VARIANTS_MAX)
        return -1;
    campaign_split_tpm(c->tpm, c->variants, c->nvariants, tpm);
    r->email_ids = xcalloc(n, sizeof *r->email_ids);
    for (size_t i = 0; i < n; i++) {
        const struct campaign_variant *v = c->nvariants ? &c->variants[i] : NULL;
        struct email_spec sp = {
            .from = c->from,
            .from_name = c->from_name ? c->from_name : st->tmpl->from_name,
            .subject = v && v->subject ? v->subject : st->tmpl->subject,
            .body = st->tmpl->text,
            .html = st->tmpl->html,
            .smtp_client = c->smtp_client ? c->smtp_client : "",
            .msgid_domain = st->msgid_domain,
            .tpm = tpm[i],
            .kind = EMAIL_KIND_CAMPAIGN,
            .campaign_id = c->id,
            .variant = v ? v->name : NULL,
            .template_name = st->tmpl->name,
            .template_version = st->tmpl->version,
            .defaults = st->tmpl->defaults,
            .paused = c->paused,
        };
        char *msgid = NULL;
        if (store_insert_email(s, &sp, &r->email_ids[i], &msgid) != 0)
            return -1;
        free(msgid);
        r->nemails++;
    }
    return 0;
}

int store_start_campaign(struct store *s, int64_t id, const struct campaign_start *st,
                         struct campaign_start_result *r)
{
    int rc = -1;
    struct campaign c;
    memset(r, 0, sizeof *r);
    pthread_mutex_lock(&s->w_lock);
    if (sqldb_begin(s->wq) != 0 || store_lock_users(s, true) != 0) {
        sqldb_rollback(s->wq);
        pthread_mutex_unlock(&s->w_lock);
        return -1;
    }
    int got = get_campaign(s->wq, id, &c);
    if (got != 0) {
        rc = got == 1 ? STORE_START_UNKNOWN : -1;
        goto out;
    }
    enum aud_kind k = aud_kind(c.audience);
    if (k == AUD_BAD) {
        log_error("store: campaign %lld has an unreadable audience", (long long)id);
        goto out;
    }
    rc = start_checks(s, k, &c, st, r);
    if (rc != STORE_START_OK)
        goto out;
    rc = -1;
    /* an uploaded list's domains get their lanes first */
    struct sqldb_stmt *dom = NULL, *upd = NULL;
    if (k == AUD_LIST) {
        dom = sqldb_prepare(s->wq,
                            "INSERT INTO domains(name) SELECT DISTINCT domain FROM"
                            " campaign_recipients WHERE campaign_id = ? ON CONFLICT DO NOTHING");
        if (dom)
            sqldb_bind_int64(dom, 1, id);
        int d = dom ? sqldb_run(dom) : -1;
        sqldb_finalize(dom);
        if (d != 0)
            goto out;
    }
    if (make_emails(s, &c, st, r) != 0 || fan_out(s, k, &c, r->email_ids, r->nemails, &r->total) ||
        count_pending(s, r->email_ids, r->nemails) != 0)
        goto out;
    upd = sqldb_prepare(s->wq, "UPDATE campaigns SET state = 'running', total = ?2, started_at = ?3"
                               " WHERE id = ?1 AND state = 'draft'");
    if (!upd)
        goto out;
    sqldb_bind_int64(upd, 1, id);
    sqldb_bind_int64(upd, 2, r->total);
    sqldb_bind_text(upd, 3, st->started_at, -1);
    int u = sqldb_run(upd);
    sqldb_finalize(upd);
    if (u == 0 && sqldb_commit(s->wq) == 0)
        rc = STORE_START_OK;
out:
    if (rc != STORE_START_OK) {
        sqldb_rollback(s->wq);
        free(r->email_ids);
        r->email_ids = NULL;
        r->nemails = 0;
        r->total = 0;
    }
    pthread_mutex_unlock(&s->w_lock);
    if (rc < 0)
        log_error("store: campaign %lld could not be started", (long long)id);
    campaign_cleanup(&c);
    return rc;
}

/* ---- controls --------------------------------------------------------- */

/* collect - the ids st returns (one column) into a new array */
static int collect(struct sqldb_stmt *st, int64_t **ids, size_t *n)
{
    size_t cap = 0;
    int r;
    while ((r = sqldb_step(st)) == SQLDB_ROW) {
        *ids = store_grow(*ids, &cap, *n, sizeof **ids);
        (*ids)[(*n)++] = sqldb_column_int64(st, 0);
    }
    return r == SQLDB_DONE ? 0 : -1;
}

int store_campaign_set_paused(struct store *s, int64_t id, bool paused, int64_t **email_ids,
                              size_t *n)
{
    int rc = -1;
    struct sqldb_stmt *camp = NULL, *em = NULL;
    *email_ids = NULL;
    *n = 0;
    pthread_mutex_lock(&s->w_lock);
    if (sqldb_begin(s->wq) != 0)
        goto out;
    camp = sqldb_prepare(s->wq, "UPDATE campaigns SET paused = ?2 WHERE id = ?1");
    em = sqldb_prepare(s->wq, "UPDATE emails SET paused = ?2 WHERE campaign_id = ?1 RETURNING id");
    if (!camp || !em)
        goto out;
    sqldb_bind_int64(camp, 1, id);
    sqldb_bind_int64(camp, 2, paused);
    if (sqldb_run(camp) != 0)
        goto out;
    if (sqldb_changes(s->wq) == 0) {
        rc = 1;
        goto out;
    }
    sqldb_bind_int64(em, 1, id);
    sqldb_bind_int64(em, 2, paused);
    if (collect(em, email_ids, n) != 0)
        goto out;
    sqldb_reset(em);
    rc = sqldb_commit(s->wq);
out:
    sqldb_finalize(camp);
    sqldb_finalize(em);
    if (rc != 0) {
        sqldb_rollback(s->wq);
        free(*email_ids);
        *email_ids = NULL;
        *n = 0;
    }
    pthread_mutex_unlock(&s->w_lock);
    return rc;
}

int store_campaign_set_tpm(struct store *s, int64_t id, int tpm, int64_t **email_ids, size_t *n)
{
    int rc = -1;
    struct campaign c;
    struct sqldb_stmt *camp = NULL, *em = NULL;
    *email_ids = NULL;
    *n = 0;
    memset(&c, 0, sizeof c);
    pthread_mutex_lock(&s->w_lock);
    if (sqldb_begin(s->wq) != 0)
        goto out;
    int got = get_campaign(s->wq, id, &c);
    if (got != 0) {
        rc = got;
        goto out;
    }
    camp = sqldb_prepare(s->wq, "UPDATE campaigns SET tpm = ?2 WHERE id = ?1");
    em = sqldb_prepare(s->wq, "UPDATE emails SET tpm = ?2 WHERE id = ?1");
    if (!camp || !em || c.nvariants > CAMPAIGN_VARIANTS_MAX)
        goto out;
    sqldb_bind_int64(camp, 1, id);
    sqldb_bind_int64(camp, 2, tpm);
    if (sqldb_run(camp) != 0)
        goto out;
    int split[CAMPAIGN_VARIANTS_MAX];
    campaign_split_tpm(tpm, c.variants, c.nvariants, split);
    *email_ids = xcalloc(c.nemails ? c.nemails : 1, sizeof **email_ids);
    for (size_t i = 0; i < c.nemails; i++) {
        int t = split[0];
        for (size_t v = 0; c.emails[i].variant && v < c.nvariants; v++)
            if (strcmp(c.variants[v].name, c.emails[i].variant) == 0)
                t = split[v];
        sqldb_reset(em);
        sqldb_bind_int64(em, 1, c.emails[i].email_id);
        sqldb_bind_int64(em, 2, t);
        if (sqldb_run(em) != 0)
            goto out;
        (*email_ids)[(*n)++] = c.emails[i].email_id;
    }
    rc = sqldb_commit(s->wq);
out:
    sqldb_finalize(camp);
    sqldb_finalize(em);
    if (rc != 0) {
        sqldb_rollback(s->wq);
        free(*email_ids);
        *email_ids = NULL;
        *n = 0;
    }
    pthread_mutex_unlock(&s->w_lock);
    campaign_cleanup(&c);
    return rc;
}
