/* seeds.c - the seed mailboxes (see seeds.h). */
#include "seeds.h"
#include "addr.h"
#include "errbuf.h"
#include "fileio.h"
#include "jsonx.h"
#include "log.h"
#include "xalloc.h"

#include <ctype.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SEEDS_FILE_MAX (16u * 1024 * 1024)

struct mailbox {
    struct seed pub; /* first: a struct seed * is a struct mailbox * */
    char *text;      /* the entry as written (json-c's plain form): a reload
                      * keeps the mailbox when it is unchanged */
    char *config_error;
    int refs; /* the set's and every holder's */
    /* status */
    bool has_round, round_failed;
    int64_t last_round_at, checked, rescued;
    char last_error[256];
};

struct seeds {
    pthread_mutex_t mu;
    struct mailbox **v; /* file order */
    size_t n;
};

static struct mailbox *mb_of(struct seed *m)
{
    return (struct mailbox *)m;
}

static void mailbox_free(struct mailbox *m)
{
    if (m->pub.slot.ops)
        m->pub.slot.ops->destroy(m->pub.slot.loop);
    free(m->pub.address);
    free(m->text);
    free(m->config_error);
    free(m);
}

/* drop_refs - one reference less on each of v[0..n); those that reach
 * none are freed outside the lock (a destroy may wait for a LOGOUT). v is
 * reused as scratch; the caller frees it. */
static void drop_refs(struct seeds *s, struct mailbox **v, size_t n)
{
    size_t k = 0;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < n; i++)
        if (--v[i]->refs == 0)
            v[k++] = v[i];
    pthread_mutex_unlock(&s->mu);
    for (size_t i = 0; i < k; i++)
        mailbox_free(v[i]);
}

struct seeds *seeds_new(void)
{
    struct seeds *s = xcalloc(1, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    return s;
}

void seeds_free(struct seeds *s)
{
    if (!s)
        return;
    drop_refs(s, s->v, s->n);
    free(s->v);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static void lower(char *p)
{
    for (; *p; p++)
        *p = (char)tolower((unsigned char)*p);
}

/* settings_of - the loop's settings: the entry's "imap" object plus its
 * "engage"; NULL with err when either is not an object */
static json_object *settings_of(json_object *entry, char *err, size_t errlen)
{
    json_object *imap = NULL, *engage = NULL;
    if (!json_object_object_get_ex(entry, "imap", &imap) ||
        !json_object_is_type(imap, json_type_object)) {
        errbuf_set(err, errlen, "field 'imap' must be an object with the mailbox's settings");
        return NULL;
    }
    if (json_object_object_get_ex(entry, "engage", &engage) &&
        !json_object_is_type(engage, json_type_object)) {
        errbuf_set(err, errlen, "field 'engage' must be an object");
        return NULL;
    }
    if (json_object_object_get_ex(imap, "engage", NULL)) {
        errbuf_set(err, errlen, "field 'imap.engage': engage belongs beside imap");
        return NULL;
    }
    json_object *o = json_object_new_object();
    if (!o)
        abort(); /* out of memory: the project's policy */
    json_object_object_foreach(imap, k, v) json_object_object_add(o, k, json_object_get(v));
    if (engage)
        json_object_object_add(o, "engage", json_object_get(engage));
    return o;
}

/* make_mailbox - a mailbox for entry i of the file: a bad one keeps its
 * reason in config_error. address is the parsed one or NULL. */
static struct mailbox *make_mailbox(json_object *entry, const char *address, const char *text,
                                    const char *why)
{
    struct mailbox *m = xcalloc(1, sizeof *m);
    char err[512];
    m->refs = 1;
    m->text = xstrdup(text);
    m->pub.address = xstrdup(address);
    const char *at = strrchr(m->pub.address, '@');
    m->pub.domain = at ? at + 1 : m->pub.address;
    if (why) {
        m->config_error = xstrdup(why);
        return m;
    }
    json_object *settings = settings_of(entry, err, sizeof err);
    void *loop = settings ? loop_imap_ops.create(address, settings, err, sizeof err) : NULL;
    json_object_put(settings);
    if (!loop) {
        m->config_error = xstrdup(err);
        return m;
    }
    m->pub.slot.ops = &loop_imap_ops;
    m->pub.slot.loop = loop;
    return m;
}

/* entry_address - the entry's address, lower-cased, into out; -1 with why */
static int entry_address(json_object *entry, char *out, size_t outlen, char *why, size_t whylen)
{
    static const char *const keys[] = {"address", "imap", "engage", NULL};
    const char *a = NULL;
    struct addr ad;
    char err[256];
    if (!json_object_is_type(entry, json_type_object)) {
        errbuf_set(why, whylen, "must be an object with address and imap");
        return -1;
    }
    if (jsonx_get_string(entry, "address", true, ADDR_MAX, &a, err, sizeof err) != 0) {
        errbuf_set(why, whylen, "%s", err);
        return -1;
    }
    if (addr_parse(a, &ad, err, sizeof err) != 0) {
        errbuf_set(why, whylen, "field 'address': %s", err);
        return -1;
    }
    snprintf(out, outlen, "%s", ad.norm);
    lower(out);
    if (jsonx_check_keys(entry, keys, err, sizeof err) != 0) {
        errbuf_set(why, whylen, "%s", err);
        return 1; /* the address is known: report the entry under it */
    }
    return 0;
}

/* find_kept - the old mailbox for address with the same text, or NULL */
static struct mailbox *find_kept(struct mailbox **old, size_t nold, const char *address,
                                 const char *text)
{
    for (size_t i = 0; i < nold; i++) {
        if (old[i] && !old[i]->config_error && strcmp(old[i]->pub.address, address) == 0 &&
            strcmp(old[i]->text, text) == 0)
            return old[i];
    }
    return NULL;
}

int seeds_load(struct seeds *s, const char *path, size_t *bad, char *errbuf, size_t errlen)
{
    char *text = NULL, err[512];
    size_t len = 0, nbad = 0, kept = 0;
    json_object *root = NULL;
    if (bad)
        *bad = 0;
    if (file_read_small("SEED_MAILBOXES_FILE", path, SEEDS_FILE_MAX, false, &text, &len, errbuf,
                        errlen) != 0)
        return -1;
    int rc = jsonx_parse(text, len, &root, err, sizeof err);
    free(text);
    if (rc != 0 || !json_object_is_type(root, json_type_array)) {
        errbuf_set(errbuf, errlen, "SEED_MAILBOXES_FILE: %s",
                   rc != 0 ? err : "must be a JSON array of mailboxes");
        json_object_put(root);
        return -1;
    }
    /* the old set, to keep unchanged mailboxes (only this thread changes
     * the set, so reading it unlocked is safe) */
    struct mailbox **old = s->v;
    size_t nold = s->n;
    size_t n = json_object_array_length(root);
    struct mailbox **v = n ? xcalloc(n, sizeof *v) : NULL;
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(root, i);
        char address[ADDR_MAX + 1], why[512] = "", name[64];
        const char *etext = json_object_to_json_string_ext(e, JSON_C_TO_STRING_PLAIN);
        int ar = entry_address(e, address, sizeof address, why, sizeof why);
        if (ar < 0) {
            snprintf(name, sizeof name, "entry %zu", i + 1);
            snprintf(address, sizeof address, "%s", name);
        }
        for (size_t j = 0; ar == 0 && j < i; j++) {
            if (strcmp(v[j]->pub.address, address) == 0) {
                errbuf_set(why, sizeof why, "duplicate address (also entry %zu)", j + 1);
                ar = 1;
            }
        }
        struct mailbox *m = ar == 0 ? find_kept(old, nold, address, etext) : NULL;
        if (m) {
            pthread_mutex_lock(&s->mu);
            m->refs++;
            pthread_mutex_unlock(&s->mu);
            kept++;
        } else {
            m = make_mailbox(e, address, etext, ar == 0 ? NULL : why);
        }
        if (m->config_error) {
            nbad++;
            log_error("SEED_MAILBOXES_FILE: %s: %s", m->pub.address, m->config_error);
        }
        v[i] = m;
    }
    json_object_put(root);
    pthread_mutex_lock(&s->mu);
    s->v = v;
    s->n = n;
    pthread_mutex_unlock(&s->mu);
    drop_refs(s, old, nold); /* the set's references */
    free(old);
    log_info("seed mailboxes loaded file=%s mailboxes=%zu bad=%zu kept=%zu", path, n, nbad, kept);
    if (bad)
        *bad = nbad;
    return 0;
}

size_t seeds_count(struct seeds *s)
{
    pthread_mutex_lock(&s->mu);
    size_t n = s->n;
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* by_address - sorted by address; of a duplicate address (a bad entry
 * beside the good one) the one with an instance first */
static int by_address(const void *a, const void *b)
{
    const struct seed *x = *(const struct seed *const *)a, *y = *(const struct seed *const *)b;
    int c = strcmp(x->address, y->address);
    return c ? c : (y->slot.ops != NULL) - (x->slot.ops != NULL);
}

struct seed **seeds_snapshot(struct seeds *s, size_t *n)
{
    pthread_mutex_lock(&s->mu);
    *n = s->n;
    struct seed **v = s->n ? xcalloc(s->n, sizeof *v) : NULL;
    for (size_t i = 0; i < s->n; i++) {
        s->v[i]->refs++;
        v[i] = &s->v[i]->pub;
    }
    pthread_mutex_unlock(&s->mu);
    if (*n > 1)
        qsort(v, *n, sizeof *v, by_address);
    return v;
}

void seeds_snapshot_free(struct seeds *s, struct seed **v, size_t n)
{
    struct mailbox **mv = n ? xcalloc(n, sizeof *mv) : NULL;
    for (size_t i = 0; i < n; i++)
        mv[i] = mb_of(v[i]);
    drop_refs(s, mv, n);
    free(mv);
    free(v);
}

size_t seeds_find(struct seed *const *v, size_t n, const char *address)
{
    size_t lo = 0, hi = n;
    char key[ADDR_MAX + 1];
    snprintf(key, sizeof key, "%s", address);
    lower(key);
    while (lo < hi) { /* the first not below key */
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(v[mid]->address, key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && strcmp(v[lo]->address, key) == 0 ? lo : n;
}

bool seeds_report(struct seeds *s, struct seed *sm, int64_t now_ms, const char *error,
                  int64_t checked, int64_t rescued)
{
    struct mailbox *m = mb_of(sm);
    pthread_mutex_lock(&s->mu);
    /* a first round that ran is no news; a first failure is */
    bool changed = (m->has_round && m->round_failed != (error != NULL)) ||
                   (error && strcmp(m->last_error, error) != 0);
    m->has_round = true;
    m->last_round_at = now_ms;
    m->round_failed = error != NULL;
    snprintf(m->last_error, sizeof m->last_error, "%s", error ? error : "");
    m->checked += checked;
    m->rescued += rescued;
    pthread_mutex_unlock(&s->mu);
    return changed;
}

size_t seeds_count_ok(struct seeds *s)
{
    size_t ok = 0;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->n; i++)
        ok += !s->v[i]->config_error && !s->v[i]->round_failed;
    pthread_mutex_unlock(&s->mu);
    return ok;
}

void seeds_list(struct seeds *s, struct seed_status **out, size_t *n)
{
    pthread_mutex_lock(&s->mu);
    *n = s->n;
    struct seed_status *v = s->n ? xcalloc(s->n, sizeof *v) : NULL;
    for (size_t i = 0; i < s->n; i++) {
        const struct mailbox *m = s->v[i];
        v[i].address = xstrdup(m->pub.address);
        v[i].ok = !m->config_error && !m->round_failed;
        if (m->config_error)
            v[i].last_error = xstrdup(m->config_error);
        else if (m->last_error[0])
            v[i].last_error = xstrdup(m->last_error);
        v[i].has_round = m->has_round;
        v[i].last_round_at = m->last_round_at;
        v[i].checked = m->checked;
        v[i].rescued = m->rescued;
    }
    pthread_mutex_unlock(&s->mu);
    *out = v;
}

void seeds_status_free(struct seed_status *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].address);
        free(v[i].last_error);
    }
    free(v);
}
