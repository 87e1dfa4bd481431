/* sigv4.c - AWS Signature Version 4 (see sigv4.h). Pure; any thread. */
#include "sigv4.h"
#include "buf.h"
#include "xalloc.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define SIGV4_MAX (1024 * 1024) /* a canonical request is small */

static const char hexd[] = "0123456789abcdef";

static void hex(const unsigned char *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hexd[p[i] >> 4];
        out[2 * i + 1] = hexd[p[i] & 15];
    }
    out[2 * n] = '\0';
}

char *sigv4_uri_encode(const char *s, bool keep_slash)
{
    struct buf b;
    buf_init(&b, SIGV4_MAX);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned c = *p;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/'))
            buf_appendc(&b, (char)c);
        else
            buf_printf(&b, "%%%02X", c);
    }
    return buf_steal(&b);
}

struct enc_pair {
    char *k, *v;
};

static int pair_cmp(const void *a, const void *b)
{
    const struct enc_pair *x = a, *y = b;
    int c = strcmp(x->k, y->k);
    return c ? c : strcmp(x->v, y->v);
}

char *sigv4_canonical_query(const struct sigv4_param *p, size_t n)
{
    struct enc_pair *e = xcalloc(n ? n : 1, sizeof *e);
    for (size_t i = 0; i < n; i++) {
        e[i].k = sigv4_uri_encode(p[i].key, false);
        e[i].v = sigv4_uri_encode(p[i].value ? p[i].value : "", false);
    }
    qsort(e, n, sizeof *e, pair_cmp);
    struct buf b;
    buf_init(&b, SIGV4_MAX);
    for (size_t i = 0; i < n; i++) {
        buf_printf(&b, "%s%s=%s", i ? "&" : "", e[i].k, e[i].v);
        free(e[i].k);
        free(e[i].v);
    }
    free(e);
    return buf_steal(&b);
}

void sigv4_sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
    hex(md, 32, out);
}

void sigv4_amz_date(long long t, char out[17])
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

static void hmac(const void *key, size_t klen, const char *msg, unsigned char out[32])
{
    unsigned int n = 32;
    HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, strlen(msg), out, &n);
}

/* signature - hex signature of a canonical request's hash for the scope
 * of amz_date (its first 8 characters are the date) */
static void signature(const struct sigv4_creds *c, const char *amz_date, const char *creq_hash,
                      char out[65])
{
    char date[9];
    memcpy(date, amz_date, 8);
    date[8] = '\0';
    char *k0 = xasprintf("AWS4%s", c->secret_key);
    unsigned char k1[32], k2[32], k3[32], k4[32], sig[32];
    hmac(k0, strlen(k0), date, k1);
    OPENSSL_cleanse(k0, strlen(k0));
    free(k0);
    hmac(k1, 32, c->region, k2);
    hmac(k2, 32, c->service, k3);
    hmac(k3, 32, "aws4_request", k4);
    char *sts = xasprintf("AWS4-HMAC-SHA256\n%s\n%s/%s/%s/aws4_request\n%s", amz_date, date,
                          c->region, c->service, creq_hash);
    hmac(k4, 32, sts, sig);
    free(sts);
    OPENSSL_cleanse(k1, sizeof k1);
    OPENSSL_cleanse(k2, sizeof k2);
    OPENSSL_cleanse(k3, sizeof k3);
    OPENSSL_cleanse(k4, sizeof k4);
    hex(sig, 32, out);
}

char *sigv4_presign(const struct sigv4_creds *c, const char *method, const char *host,
                    const char *path, const struct sigv4_param *p, size_t n, const char *amz_date,
                    long expires)
{
    char date[9], exp[24];
    memcpy(date, amz_date, 8);
    date[8] = '\0';
    snprintf(exp, sizeof exp, "%ld", expires);
    char *cred = xasprintf("%s/%s/%s/%s/aws4_request", c->access_key, date, c->region, c->service);
    struct sigv4_param *all = xcalloc(n + 5, sizeof *all);
    if (n)
        memcpy(all, p, n * sizeof *p);
    all[n] = (struct sigv4_param){"X-Amz-Algorithm", "AWS4-HMAC-SHA256"};
    all[n + 1] = (struct sigv4_param){"X-Amz-Credential", cred};
    all[n + 2] = (struct sigv4_param){"X-Amz-Date", amz_date};
    all[n + 3] = (struct sigv4_param){"X-Amz-Expires", exp};
    all[n + 4] = (struct sigv4_param){"X-Amz-SignedHeaders", "host"};
    char *query = sigv4_canonical_query(all, n + 5);
    char *epath = sigv4_uri_encode(path, true);
    char *creq =
        xasprintf("%s\n%s\n%s\nhost:%s\n\nhost\n" SIGV4_UNSIGNED, method, epath, query, host);
    char h[65], sig[65];
    sigv4_sha256_hex(creq, strlen(creq), h);
    signature(c, amz_date, h, sig);
    char *out = xasprintf("%s&X-Amz-Signature=%s", query, sig);
    free(creq);
    free(epath);
    free(query);
    free(all);
    free(cred);
    return out;
}

struct hdr {
    char *name;
    const char *value;
};

static int hdr_cmp(const void *a, const void *b)
{
    return strcmp(((const struct hdr *)a)->name, ((const struct hdr *)b)->name);
}

char *sigv4_authorization(const struct sigv4_creds *c, const char *method, const char *path,
                          const struct sigv4_param *q, size_t nq, const struct sigv4_param *h,
                          size_t nh, const char *payload_hash, const char *amz_date,
                          char canonical_hash[65])
{
    struct hdr *hs = xcalloc(nh ? nh : 1, sizeof *hs);
    for (size_t i = 0; i < nh; i++) {
        hs[i].name = xstrdup(h[i].key);
        for (char *s = hs[i].name; *s; s++)
            if (*s >= 'A' && *s <= 'Z')
                *s = (char)(*s - 'A' + 'a');
        hs[i].value = h[i].value;
    }
    qsort(hs, nh, sizeof *hs, hdr_cmp);
    struct buf canon, signed_hdrs;
    buf_init(&canon, SIGV4_MAX);
    buf_init(&signed_hdrs, SIGV4_MAX);
    char *query = sigv4_canonical_query(q, nq);
    char *epath = sigv4_uri_encode(path, true);
    buf_printf(&canon, "%s\n%s\n%s\n", method, epath, query);
    for (size_t i = 0; i < nh; i++) {
        buf_printf(&canon, "%s:%s\n", hs[i].name, hs[i].value);
        buf_printf(&signed_hdrs, "%s%s", i ? ";" : "", hs[i].name);
    }
    buf_printf(&canon, "\n%s\n%s", buf_str(&signed_hdrs), payload_hash);
    char ch[65], sig[65], date[9];
    sigv4_sha256_hex(canon.data, canon.len, ch);
    if (canonical_hash)
        memcpy(canonical_hash, ch, 65);
    signature(c, amz_date, ch, sig);
    memcpy(date, amz_date, 8);
    date[8] = '\0';
    char *out = xasprintf("AWS4-HMAC-SHA256 Credential=%s/%s/%s/%s/aws4_request,"
                          "SignedHeaders=%s,Signature=%s",
                          c->access_key, date, c->region, c->service, buf_str(&signed_hdrs), sig);
    for (size_t i = 0; i < nh; i++)
        free(hs[i].name);
    free(hs);
    free(query);
    free(epath);
    buf_cleanup(&canon);
    buf_cleanup(&signed_hdrs);
    return out;
}
