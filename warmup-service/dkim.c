/* dkim.c - DKIM signing of composed copies (see dkim.h for the contract).
 *
 * The relaxed canonicalisations (RFC 6376 3.4.2, 3.4.4) and the signature
 * header are written here on OpenSSL, with each key parsed once: a
 * libopendkim handle parses its PEM key again for every message, which
 * costs more than the signature itself. tests/unit/test_dkim.c checks
 * that libopendkim, given the same time and header lists, computes the
 * same bh= and b= values for a set of messages.
 *
 * The signer is built on the main thread and read-only afterwards; a
 * dkim_ctx belongs to one thread.
 */
#include "dkim.h"
#include "addr.h"
#include "errbuf.h"
#include "fileio.h"
#include "jsonx.h"
#include "xalloc.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define KEYS_FILE_MAX ((size_t)1024 * 1024)
#define KEY_FILE_MAX ((size_t)64 * 1024)
#define KEYS_MAX 64
#define SELECTOR_MAX 200
#define RSA_BITS_MIN 1024 /* RFC 8301 */
#define RSA_BITS_MAX 8192
#define WORK_CAP ((size_t)32 * 1024 * 1024)

enum sig_alg { ALG_RSA_SHA256 = 0, ALG_ED25519_SHA256 };
static const char *const alg_names[] = {"rsa-sha256", "ed25519-sha256", NULL};

struct sign_key {
    char *domain; /* lower-case A-labels */
    char *selector;
    enum sig_alg alg;
    EVP_PKEY *pkey;
};

struct dkim_signer {
    struct sign_key *k;
    size_t n;
};

/* one header field of the message being signed: "Name: value" with its
 * folds, without the final CRLF */
struct hfield {
    const char *p;
    size_t len, namelen; /* namelen: the name without white space before ':' */
    bool used;
};

struct key_rt {
    EVP_PKEY *pkey;   /* this thread's copy */
    EVP_PKEY_CTX *pc; /* rsa: PKCS#1 v1.5 over a SHA-256 digest */
    EVP_MD_CTX *mc;   /* ed25519: pure Ed25519 over the digest (RFC 8463) */
};

struct dkim_ctx {
    const struct dkim_signer *s;
    EVP_MD *sha256;
    EVP_MD_CTX *md;
    struct key_rt *k;
    struct buf hdata; /* the input of the header hash */
    struct buf sigs;  /* the signature headers being built */
    struct hfield *hf;
    size_t nhf, caphf;
};

static const char *const signed_names[] = {DKIM_SIGNED_HEADERS};
#define NSIGNED (sizeof signed_names / sizeof signed_names[0])

/* ---- loading ---- */

static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf, (void)size, (void)rwflag, (void)u;
    return -1; /* an encrypted key is refused, never prompted for */
}

/* selector_ok - dot-separated labels of letters, digits and inner '-' */
static bool selector_ok(const char *s)
{
    size_t n = strlen(s), label = 0;
    if (n == 0 || n > SELECTOR_MAX)
        return false;
    for (size_t i = 0; i <= n; i++) {
        char c = s[i];
        if (c == '.' || c == '\0') {
            if (label == 0 || label > 63 || s[i - 1] == '-')
                return false;
            label = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   (c == '-' && label > 0)) {
            label++;
        } else {
            return false;
        }
    }
    return true;
}

/* load_pem - the private key in path, of the type alg names */
static int load_pem(const char *path, enum sig_alg alg, EVP_PKEY **out, char *msg, size_t len)
{
    char *text = NULL;
    size_t n = 0;
    if (file_read_small("key_file", path, KEY_FILE_MAX, false, &text, &n, msg, len) < 0)
        return -1;
    BIO *bio = BIO_new_mem_buf(text, (int)n);
    EVP_PKEY *k = bio ? PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL) : NULL;
    BIO_free(bio);
    OPENSSL_cleanse(text, n);
    free(text);
    ERR_clear_error();
    if (!k) {
        errbuf_set(msg, len, "key_file %s: not a PEM private key (or encrypted)", path);
        return -1;
    }
    int id = EVP_PKEY_get_base_id(k), bits = EVP_PKEY_get_bits(k);
    if (alg == ALG_RSA_SHA256 && id != EVP_PKEY_RSA) {
        errbuf_set(msg, len, "key_file %s: not an RSA key (algorithm rsa-sha256)", path);
    } else if (alg == ALG_ED25519_SHA256 && id != EVP_PKEY_ED25519) {
        errbuf_set(msg, len, "key_file %s: not an Ed25519 key (algorithm ed25519-sha256)", path);
    } else if (alg == ALG_RSA_SHA256 && (bits < RSA_BITS_MIN || bits > RSA_BITS_MAX)) {
        errbuf_set(msg, len, "key_file %s: an RSA key of %d bits (%d to %d allowed)", path, bits,
                   RSA_BITS_MIN, RSA_BITS_MAX);
    } else {
        *out = k;
        return 0;
    }
    EVP_PKEY_free(k);
    return -1;
}

static int load_entry(json_object *o, const struct dkim_signer *s, struct sign_key *k, char *msg,
                      size_t len)
{
    static const char *const keys[] = {"domain", "selector", "algorithm", "key_file", NULL};
    const char *domain, *selector, *alg, *file;
    if (!json_object_is_type(o, json_type_object)) {
        errbuf_set(msg, len, "must be an object");
        return -1;
    }
    if (jsonx_check_keys(o, keys, msg, len) < 0 ||
        jsonx_get_string(o, "domain", true, 253, &domain, msg, len) < 0 ||
        jsonx_get_string(o, "selector", true, SELECTOR_MAX, &selector, msg, len) < 0 ||
        jsonx_get_string(o, "algorithm", true, 32, &alg, msg, len) < 0 ||
        jsonx_get_string(o, "key_file", true, 4096, &file, msg, len) < 0)
        return -1;
    struct addr a;
    char why[128];
    char *probe = xasprintf("x@%s", domain);
    int bad = addr_parse(probe, &a, why, sizeof why) || addr_ascii(&a, why, sizeof why);
    free(probe);
    if (bad) {
        errbuf_set(msg, len, "field 'domain': not a valid domain: %s", why);
        return -1;
    }
    k->domain = xstrdup(a.domain);
    k->selector = xstrdup(selector);
    if (!selector_ok(selector)) {
        errbuf_set(msg, len, "field 'selector': letters, digits, '-' and dots only");
        return -1;
    }
    int i = 0;
    while (alg_names[i] && strcmp(alg_names[i], alg) != 0)
        i++;
    if (!alg_names[i]) {
        errbuf_set(msg, len, "field 'algorithm': must be rsa-sha256 or ed25519-sha256");
        return -1;
    }
    k->alg = (enum sig_alg)i;
    for (size_t j = 0; j < s->n; j++)
        if (strcmp(s->k[j].domain, k->domain) == 0 &&
            strcasecmp(s->k[j].selector, k->selector) == 0) {
            errbuf_set(msg, len, "the same domain and selector as entry %zu", j);
            return -1;
        }
    return load_pem(file, k->alg, &k->pkey, msg, len);
}

int dkim_signer_load(const char *path, struct dkim_signer **out, char *errbuf, size_t errlen)
{
    char *text = NULL, msg[512];
    json_object *root = NULL;
    struct dkim_signer *s = xcalloc(1, sizeof *s);
    int rc = -1;
    *out = NULL;
    if (file_read_small("DKIM_KEYS_FILE", path, KEYS_FILE_MAX, false, &text, NULL, errbuf, errlen) <
        0)
        goto out;
    if (jsonx_parse(text, strlen(text), &root, msg, sizeof msg) < 0) {
        errbuf_set(errbuf, errlen, "DKIM_KEYS_FILE %s: %s", path, msg);
        goto out;
    }
    size_t n = json_object_is_type(root, json_type_array) ? json_object_array_length(root) : 0;
    if (n == 0 || n > KEYS_MAX) {
        errbuf_set(errbuf, errlen, "DKIM_KEYS_FILE %s: must be a JSON array of 1 to %d keys", path,
                   KEYS_MAX);
        goto out;
    }
    s->k = xcalloc(n, sizeof *s->k);
    for (size_t i = 0; i < n; i++) {
        struct sign_key *k = &s->k[i];
        if (load_entry(json_object_array_get_idx(root, i), s, k, msg, sizeof msg) < 0) {
            if (k->domain && k->selector)
                errbuf_set(errbuf, errlen, "DKIM_KEYS_FILE[%zu] (%s %s): %s", i, k->domain,
                           k->selector, msg);
            else
                errbuf_set(errbuf, errlen, "DKIM_KEYS_FILE[%zu]: %s", i, msg);
            s->n = i + 1; /* the partial entry is freed with the rest */
            goto out;
        }
        s->n = i + 1;
    }
    *out = s;
    s = NULL;
    rc = 0;
out:
    dkim_signer_free(s);
    json_object_put(root);
    free(text);
    return rc;
}

void dkim_signer_free(struct dkim_signer *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++) {
        free(s->k[i].domain);
        free(s->k[i].selector);
        EVP_PKEY_free(s->k[i].pkey);
    }
    free(s->k);
    free(s);
}

size_t dkim_signer_keys(const struct dkim_signer *s)
{
    return s ? s->n : 0;
}

/* ---- per-thread contexts ---- */

static void *ossl_check(void *p)
{
    if (!p) {
        fprintf(stderr, "dkim: OpenSSL context setup failed\n");
        abort(); /* only on allocation failure: the keys were checked at load */
    }
    return p;
}

struct dkim_ctx *dkim_ctx_new(const struct dkim_signer *s)
{
    if (!s)
        return NULL;
    struct dkim_ctx *c = xcalloc(1, sizeof *c);
    c->s = s;
    c->sha256 = ossl_check(EVP_MD_fetch(NULL, "SHA256", NULL));
    c->md = ossl_check(EVP_MD_CTX_new());
    c->k = xcalloc(s->n, sizeof *c->k);
    for (size_t i = 0; i < s->n; i++) {
        struct key_rt *r = &c->k[i];
        r->pkey = ossl_check(EVP_PKEY_dup(s->k[i].pkey));
        if (s->k[i].alg == ALG_RSA_SHA256) {
            r->pc = ossl_check(EVP_PKEY_CTX_new(r->pkey, NULL));
            if (EVP_PKEY_sign_init(r->pc) != 1 ||
                EVP_PKEY_CTX_set_rsa_padding(r->pc, RSA_PKCS1_PADDING) != 1 ||
                EVP_PKEY_CTX_set_signature_md(r->pc, c->sha256) != 1)
                ossl_check(NULL);
        } else {
            r->mc = ossl_check(EVP_MD_CTX_new());
            if (EVP_DigestSignInit(r->mc, NULL, NULL, NULL, r->pkey) != 1)
                ossl_check(NULL);
        }
    }
    buf_init(&c->hdata, WORK_CAP);
    buf_init(&c->sigs, WORK_CAP);
    return c;
}

void dkim_ctx_free(struct dkim_ctx *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->s->n; i++) {
        EVP_PKEY_CTX_free(c->k[i].pc);
        EVP_MD_CTX_free(c->k[i].mc);
        EVP_PKEY_free(c->k[i].pkey);
    }
    free(c->k);
    EVP_MD_CTX_free(c->md);
    EVP_MD_free(c->sha256);
    buf_cleanup(&c->hdata);
    buf_cleanup(&c->sigs);
    free(c->hf);
    free(c);
}

/* ---- canonicalisation ---- */

static bool wsp(char c)
{
    return c == ' ' || c == '\t';
}

/* canon_header - append the relaxed form of field f (RFC 6376 3.4.2):
 * name lower-cased, folds removed, white space runs one SP, none around
 * the colon or at the end; no CRLF. -1 when out's cap is reached. */
static int canon_header(struct buf *out, const char *f, size_t n, size_t namelen)
{
    buf_reserve(out, n + 1);
    if (out->alloc < out->len + n + 2)
        return -1;
    char *w = out->data + out->len, *start = w;
    for (size_t i = 0; i < namelen; i++) {
        char c = f[i];
        *w++ = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    *w++ = ':';
    char *value = w;
    bool space = false;
    for (size_t i = namelen + 1; i < n; i++) {
        char c = f[i];
        if (c == '\r' || c == '\n')
            continue;
        if (wsp(c)) {
            space = true;
            continue;
        }
        if (space && w != value)
            *w++ = ' ';
        space = false;
        *w++ = c;
    }
    out->len += (size_t)(w - start);
    out->data[out->len] = '\0';
    return 0;
}

/* body_hash - SHA-256 of the relaxed body (RFC 6376 3.4.4): white space
 * runs one SP, none at line ends, no empty lines at the end, a final CRLF
 * on a non-empty body */
static void body_hash(struct dkim_ctx *c, const char *p, size_t n, unsigned char h[32])
{
    char chunk[4096];
    size_t k = 0, empty = 0;
    EVP_DigestInit_ex(c->md, c->sha256, NULL);
    const char *end = p + n;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        if (le > p && le[-1] == '\r' && nl)
            le--;
        /* trim the line's trailing white space first: what is left ends
         * in a non-space, so inner runs are the only ones to collapse */
        while (le > p && wsp(le[-1]))
            le--;
        if (le == p) {
            empty++;
        } else {
            for (; empty > 0; empty--) {
                if (k + 2 > sizeof chunk) {
                    EVP_DigestUpdate(c->md, chunk, k);
                    k = 0;
                }
                chunk[k++] = '\r';
                chunk[k++] = '\n';
            }
            bool space = false;
            for (const char *q = p; q < le; q++) {
                if (k + 2 > sizeof chunk) { /* room for a pending SP and this octet */
                    EVP_DigestUpdate(c->md, chunk, k);
                    k = 0;
                }
                if (wsp(*q)) {
                    space = true;
                    continue;
                }
                if (space)
                    chunk[k++] = ' ';
                space = false;
                chunk[k++] = *q;
            }
            if (k + 2 > sizeof chunk) {
                EVP_DigestUpdate(c->md, chunk, k);
                k = 0;
            }
            chunk[k++] = '\r';
            chunk[k++] = '\n';
        }
        p = nl ? nl + 1 : end;
    }
    EVP_DigestUpdate(c->md, chunk, k);
    EVP_DigestFinal_ex(c->md, h, NULL);
}

/* split_headers - the header fields of msg into c->hf; *body gets the
 * offset of the body (n when there is none) */
static void split_headers(struct dkim_ctx *c, const char *m, size_t n, size_t *body)
{
    size_t i = 0;
    c->nhf = 0;
    while (i < n) {
        if (m[i] == '\r' && i + 1 < n && m[i + 1] == '\n') {
            *body = i + 2;
            return;
        }
        size_t start = i;
        const char *nl;
        for (;;) { /* to the end of the field: its last line not followed by SP or TAB */
            nl = memchr(m + i, '\n', n - i);
            i = nl ? (size_t)(nl - m) + 1 : n;
            if (i >= n || !wsp(m[i]))
                break;
        }
        size_t len = i - start;
        if (len > 0 && m[start + len - 1] == '\n')
            len--;
        if (len > 0 && m[start + len - 1] == '\r')
            len--;
        const char *colon = memchr(m + start, ':', len);
        if (!colon)
            continue; /* not a field: never signed */
        size_t namelen = (size_t)(colon - (m + start));
        while (namelen > 0 && wsp(m[start + namelen - 1]))
            namelen--;
        if (c->nhf == c->caphf) {
            c->caphf = c->caphf ? 2 * c->caphf : 32;
            c->hf = xreallocarray(c->hf, c->caphf, sizeof *c->hf);
        }
        c->hf[c->nhf++] = (struct hfield){.p = m + start, .len = len, .namelen = namelen};
    }
    *body = n;
}

static bool name_is(const struct hfield *f, const char *name)
{
    return strlen(name) == f->namelen && strncasecmp(f->p, name, f->namelen) == 0;
}

static bool to_sign(const struct hfield *f)
{
    for (size_t i = 0; i < NSIGNED; i++)
        if (name_is(f, signed_names[i]))
            return true;
    return false;
}

/* hash_field - append the lowest unused instance of the field called
 * like f (RFC 6376 5.4.2: repeated names are taken from the bottom up) */
static int hash_field(struct dkim_ctx *c, const struct hfield *f)
{
    for (size_t j = c->nhf; j-- > 0;) {
        struct hfield *g = &c->hf[j];
        if (g->used || g->namelen != f->namelen || strncasecmp(g->p, f->p, f->namelen) != 0)
            continue;
        g->used = true;
        if (canon_header(&c->hdata, g->p, g->len, g->namelen) < 0 ||
            buf_append(&c->hdata, "\r\n", 2) < 0)
            return -1;
        return 0;
    }
    return 0;
}

static void b64(const unsigned char *in, size_t n, char *out)
{
    EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

/* ---- signing ---- */

/* sign_one - append key i's DKIM-Signature header to c->sigs */
static int sign_one(struct dkim_ctx *c, size_t i, const char *bh, int64_t t)
{
    const struct sign_key *k = &c->s->k[i];
    struct buf *o = &c->sigs;
    size_t from = o->len;
    if (buf_printf(
            o,
            "DKIM-Signature: v=1; a=%s; c=relaxed/relaxed; d=%s; s=%s;\r\n\tt=%lld; bh=%s;\r\n\th=",
            alg_names[k->alg], k->domain, k->selector, (long long)t, bh) < 0)
        return -1;
    bool first = true;
    for (size_t j = 0; j < c->nhf; j++) {
        const struct hfield *f = &c->hf[j];
        c->hf[j].used = false;
        if (!to_sign(f))
            continue;
        if ((!first && buf_appendc(o, ':') < 0) || buf_append(o, f->p, f->namelen) < 0)
            return -1;
        first = false;
    }
    if (buf_append(o, first ? "From;\r\n\tb=" : ":From;\r\n\tb=", first ? 10 : 11) < 0)
        return -1;

    /* the header hash: the signed fields in h= order, then this header
     * with an empty b= and no CRLF */
    buf_reset(&c->hdata);
    for (size_t j = 0; j < c->nhf; j++)
        if (to_sign(&c->hf[j]) && hash_field(c, &c->hf[j]) < 0)
            return -1;
    /* the oversigned From names no further instance: it adds nothing */
    if (canon_header(&c->hdata, o->data + from, o->len - from, strlen("DKIM-Signature")) < 0)
        return -1;
    unsigned char digest[32], sig[RSA_BITS_MAX / 8];
    size_t siglen = sizeof sig;
    EVP_DigestInit_ex(c->md, c->sha256, NULL);
    EVP_DigestUpdate(c->md, c->hdata.data, c->hdata.len);
    EVP_DigestFinal_ex(c->md, digest, NULL);
    int ok = k->alg == ALG_RSA_SHA256
                 ? EVP_PKEY_sign(c->k[i].pc, sig, &siglen, digest, sizeof digest)
                 : EVP_DigestSign(c->k[i].mc, sig, &siglen, digest, sizeof digest);
    if (ok != 1) {
        ERR_clear_error();
        return -2;
    }
    char text[(RSA_BITS_MAX / 8 + 2) / 3 * 4 + 1];
    b64(sig, siglen, text);
    size_t tn = strlen(text);
    for (size_t at = 0; at < tn; at += 72) {
        size_t w = tn - at < 72 ? tn - at : 72;
        if ((at > 0 && buf_append(o, "\r\n\t", 3) < 0) || buf_append(o, text + at, w) < 0)
            return -1;
    }
    return buf_append(o, "\r\n", 2);
}

/* key_domain - the closest keyed domain of dom (itself or a parent), NULL
 * when none */
static const char *key_domain(const struct dkim_signer *s, const char *dom)
{
    const char *best = NULL;
    size_t n = strlen(dom), bestlen = 0;
    for (size_t i = 0; i < s->n; i++) {
        const char *d = s->k[i].domain;
        size_t dl = strlen(d);
        if (dl > n || dl <= bestlen || strcasecmp(dom + n - dl, d) != 0)
            continue;
        if (dl < n && dom[n - dl - 1] != '.')
            continue;
        best = d;
        bestlen = dl;
    }
    return best;
}

int dkim_sign_copy(struct dkim_ctx *c, const char *from, int64_t time_s, struct buf *msg,
                   char *errbuf, size_t errlen)
{
    if (!c)
        return 0;
    const char *at = strrchr(from, '@'), *dom = at ? at + 1 : "";
    struct addr a;
    for (const char *p = dom; *p; p++)
        if ((unsigned char)*p >= 0x80) { /* keys name A-labels */
            char why[128];
            if (addr_parse(from, &a, why, sizeof why) == 0 && addr_ascii(&a, why, sizeof why) == 0)
                dom = a.domain;
            break;
        }
    const char *d = key_domain(c->s, dom);
    if (!d)
        return 0;
    size_t body;
    split_headers(c, msg->data, msg->len, &body);
    unsigned char bh[32];
    char bh64[45];
    body_hash(c, msg->data + body, msg->len - body, bh);
    b64(bh, sizeof bh, bh64);
    buf_reset(&c->sigs);
    for (size_t i = 0; i < c->s->n; i++) {
        if (c->s->k[i].domain != d && strcmp(c->s->k[i].domain, d) != 0)
            continue;
        int rc = sign_one(c, i, bh64, time_s);
        if (rc < 0) {
            errbuf_set(errbuf, errlen, "DKIM %s (d=%s s=%s)",
                       rc == -2 ? "signing failed" : "header over the size limit", d,
                       c->s->k[i].selector);
            buf_trim(&c->sigs, 64 * 1024);
            buf_trim(&c->hdata, 64 * 1024);
            return -1;
        }
    }
    size_t add = c->sigs.len;
    if (add > msg->cap || msg->len > msg->cap - add) {
        buf_cleanup(msg);
        errbuf_set(errbuf, errlen, "the signed message is over the size limit");
        return -1;
    }
    buf_reserve(msg, add);
    memmove(msg->data + add, msg->data, msg->len + 1);
    memcpy(msg->data, c->sigs.data, add);
    msg->len += add;
    buf_trim(&c->sigs, 64 * 1024);
    buf_trim(&c->hdata, 64 * 1024);
    return 0;
}
