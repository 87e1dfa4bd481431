/* api_history.c - GET /history (every copy, filtered, newest first, keyset
 * paged) and GET /archives (the archive files, archive.h), and the one
 * JSON shape of a copy, shared with the archive files. HTTP pool threads
 * (the archiver's thread for api_history_json).
 *
 * The cursor is opaque: 32 hex digits, the last id of the page and a
 * SHA-256 check over that id and the filters, so a cursor that was
 * altered, made up or taken from another query is 400 invalid_cursor. */
#include "api.h"
#include "app.h"
#include "store.h"
#include "store_history.h"
#include "store_int.h"
#include "timeutil.h"
#include "xalloc.h"

#include <json-c/json.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>

#define RECIPIENT_MAX 320

static const char *const status_names[] = {
    [DLV_PENDING] = "pending", [DLV_LEASED] = "sending", [DLV_SENT] = "sent",
    [DLV_RETRY] = "retry",     [DLV_DEAD] = "dead",      [DLV_SUPPRESSED] = "suppressed"};
#define NSTATUS ((int)(sizeof status_names / sizeof status_names[0]))

static json_object *time_or_null(int64_t ms)
{
    char t[32];
    if (ms <= 0)
        return NULL;
    time_rfc3339_ms(ms, t, sizeof t);
    return json_object_new_string(t);
}

json_object *api_history_json(const struct history_row *r)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "id", json_object_new_int64(r->id));
    json_object_object_add(o, "email_id", json_object_new_int64(r->email_id));
    json_object_object_add(o, "message_id", json_object_new_string(r->message_id));
    json_object_object_add(o, "recipient", json_object_new_string(r->recipient));
    json_object_object_add(
        o, "status",
        json_object_new_string(r->state >= 0 && r->state < NSTATUS ? status_names[r->state] : "?"));
    json_object_object_add(o, "attempts", json_object_new_int(r->attempts));
    json_object_object_add(o, "last_code", r->has_code ? json_object_new_int(r->last_code) : NULL);
    json_object_object_add(o, "last_reply",
                           r->last_reply ? json_object_new_string(r->last_reply) : NULL);
    json_object_object_add(o, "updated_at", time_or_null(r->updated_at));
    json_object_object_add(o, "next_attempt_at",
                           r->state == DLV_RETRY ? time_or_null(r->due_at) : NULL);
    return o;
}

/* cursor_check - the 8-byte check of a cursor at id for the query's filters */
static void cursor_check(int64_t id, const struct history_query *q, unsigned char out[8])
{
    char in[512];
    int n = snprintf(in, sizeof in, "history-cursor-1|%lld|%s|%lld|%d|%d:%lld|%d:%lld",
                     (long long)id, q->recipient ? q->recipient : "", (long long)q->email_id,
                     q->state, q->has_from, (long long)q->from_ms, q->has_to, (long long)q->to_ms);
    /* the recipient is lower-cased: the filter ignores case */
    for (int i = 0; i < n && i < (int)sizeof in; i++)
        if (in[i] >= 'A' && in[i] <= 'Z')
            in[i] = (char)(in[i] - 'A' + 'a');
    unsigned char h[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)in, (size_t)(n < (int)sizeof in ? n : (int)sizeof in - 1), h);
    memcpy(out, h, 8);
}

static void cursor_make(int64_t id, const struct history_query *q, char out[33])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char b[16];
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)((uint64_t)id >> (56 - 8 * i));
    cursor_check(id, q, b + 8);
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hex[b[i] >> 4];
        out[2 * i + 1] = hex[b[i] & 15];
    }
    out[32] = '\0';
}

/* cursor_parse - the id of a cursor made for q; 0 or -1 (not one) */
static int cursor_parse(const char *c, const struct history_query *q, int64_t *id)
{
    unsigned char b[16], want[8];
    if (strlen(c) != 32)
        return -1;
    for (int i = 0; i < 32; i++) {
        int v = c[i] >= '0' && c[i] <= '9'   ? c[i] - '0'
                : c[i] >= 'a' && c[i] <= 'f' ? c[i] - 'a' + 10
                                             : -1;
        if (v < 0)
            return -1;
        b[i / 2] = (unsigned char)(i % 2 ? (b[i / 2] | v) : v << 4);
    }
    uint64_t u = 0;
    for (int i = 0; i < 8; i++)
        u = u << 8 | b[i];
    if (u == 0 || u > (uint64_t)INT64_MAX)
        return -1;
    cursor_check((int64_t)u, q, want);
    if (CRYPTO_memcmp(want, b + 8, 8) != 0)
        return -1;
    *id = (int64_t)u;
    return 0;
}

/* query_time - ?key= as an RFC 3339 time: 0 (absent: *has false), or
 * -1 after a 400 naming it */
static int query_time(struct http_request *req, struct http_response *resp, const char *key,
                      bool *has, int64_t *ms)
{
    const char *v = http_query(req, key);
    *has = v != NULL;
    if (v && time_parse_rfc3339(v, ms) != 0) {
        http_reply_error(resp, 400, "invalid_field",
                         "%s must be an RFC 3339 time such as 2026-12-05T10:00:00Z (an offset's"
                         " + written %%2B)",
                         key);
        return -1;
    }
    return 0;
}

/* history_params - the query's filters into q; 0, or -1 after a 400 */
static int history_params(struct http_request *req, struct http_response *resp,
                          struct history_query *q)
{
    memset(q, 0, sizeof *q);
    q->state = -1;
    if (http_query_int(req, resp, "limit", 100, 1, 1000, &q->limit) != 0 ||
        http_query_int(req, resp, "email_id", 0, 1, INT64_MAX, &q->email_id) != 0)
        return -1;
    const char *r = http_query(req, "recipient");
    if (r) {
        size_t n = strlen(r);
        bool ok = n > 0 && n <= RECIPIENT_MAX && strchr(r, '@');
        for (size_t i = 0; ok && i < n; i++)
            ok = (unsigned char)r[i] > ' ' && r[i] != 0x7f;
        if (!ok) {
            http_reply_error(resp, 400, "invalid_field",
                             "recipient must be an email address (at most %d bytes)",
                             RECIPIENT_MAX);
            return -1;
        }
        q->recipient = r;
    }
    const char *st = http_query(req, "status");
    if (st) {
        for (int i = 0; i < NSTATUS && q->state < 0; i++)
            if (strcmp(st, status_names[i]) == 0)
                q->state = i;
        if (q->state < 0) {
            http_reply_error(resp, 400, "invalid_field",
                             "status must be one of pending, sending, sent, retry, dead,"
                             " suppressed");
            return -1;
        }
    }
    if (query_time(req, resp, "from", &q->has_from, &q->from_ms) != 0 ||
        query_time(req, resp, "to", &q->has_to, &q->to_ms) != 0)
        return -1;
    if (q->has_from && q->has_to && q->from_ms >= q->to_ms) {
        http_reply_error(resp, 400, "invalid_field", "from must be before to");
        return -1;
    }
    const char *c = http_query(req, "cursor");
    if (c && cursor_parse(c, q, &q->before_id) != 0) {
        http_reply_error(resp, 400, "invalid_cursor",
                         "cursor is not a next_cursor of this query (filters must stay the same)");
        return -1;
    }
    return 0;
}

void api_history(struct http_request *req, struct http_response *resp)
{
    struct app *app = req->app;
    struct history_query q;
    if (history_params(req, resp, &q) != 0)
        return;
    struct history_row *v;
    size_t n;
    if (store_history(app->store, &q, &v, &n) != 0) {
        http_reply_error(resp, 503, "unavailable", "the history could not be read");
        return;
    }
    json_object *arr = json_object_new_array();
    for (size_t i = 0; i < n; i++)
        json_object_array_add(arr, api_history_json(&v[i]));
    json_object *o = json_object_new_object();
    json_object_object_add(o, "copies", arr);
    if (n > 0 && (int64_t)n == q.limit) {
        char cur[33];
        cursor_make(v[n - 1].id, &q, cur);
        json_object_object_add(o, "next_cursor", json_object_new_string(cur));
    } else {
        json_object_object_add(o, "next_cursor", NULL);
    }
    store_history_free(v, n);
    http_reply_json(resp, 200, o);
}

void api_archives(struct http_request *req, struct http_response *resp)
{
    struct app *app = req->app;
    int64_t limit, offset;
    if (http_paging(req, resp, 100, 1000, &limit, &offset) != 0)
        return;
    struct archive_entry *v;
    size_t n;
    if (store_list_archives(app->store, limit, offset, &v, &n) != 0) {
        http_reply_error(resp, 503, "unavailable", "the archives could not be read");
        return;
    }
    json_object *arr = json_object_new_array();
    for (size_t i = 0; i < n; i++) {
        const struct archive_entry *a = &v[i];
        json_object *o = json_object_new_object();
        json_object_object_add(o, "id", json_object_new_int64(a->id));
        json_object_object_add(o, "name", json_object_new_string(a->name));
        json_object_object_add(o, "store", json_object_new_string(a->store));
        json_object_object_add(o, "rows", json_object_new_int64(a->rows));
        json_object_object_add(o, "bytes", json_object_new_int64(a->bytes));
        json_object_object_add(o, "first_id", json_object_new_int64(a->first_id));
        json_object_object_add(o, "last_id", json_object_new_int64(a->last_id));
        json_object_object_add(o, "from", time_or_null(a->min_updated_at));
        json_object_object_add(o, "to", time_or_null(a->max_updated_at));
        json_object_object_add(o, "created_at", time_or_null(a->created_at));
        json_object_array_add(arr, o);
    }
    store_archives_free(v, n);
    http_reply_json(resp, 200, arr);
}
