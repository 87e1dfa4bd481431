/* test_dkim.c - warmup-service/dkim.c: DKIM_KEYS_FILE errors, which keys
 * sign which From domain, the signed header list, dual signatures, and
 * equivalence with libopendkim: for the same message, time and header
 * lists libopendkim computes the same bh= and b= (RSA PKCS#1 v1.5 and
 * Ed25519 signatures are deterministic). Keys are generated here. */
#include "../../warmup-service/dkim.c"
#include "test.h"

#include <sys/types.h>
#include <opendkim/dkim.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/lsan_interface.h>
#endif

static char dir[] = "/tmp/test_dkim.XXXXXX";

static char *path_of(const char *name)
{
    return xasprintf("%s/%s", dir, name);
}

static void put(const char *name, const char *text)
{
    char *p = path_of(name);
    FILE *f = fopen(p, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
        perror(p);
        exit(1);
    }
    free(p);
}

/* genkey - a new key written to dir/name as PKCS#8 PEM */
static void genkey(const char *name, const char *type, size_t bits)
{
    EVP_PKEY *k =
        bits ? EVP_PKEY_Q_keygen(NULL, NULL, type, bits) : EVP_PKEY_Q_keygen(NULL, NULL, type);
    char *p = path_of(name);
    FILE *f = fopen(p, "w");
    if (!k || !f || PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL) != 1) {
        fprintf(stderr, "cannot write key %s\n", p);
        exit(1);
    }
    fclose(f);
    free(p);
    EVP_PKEY_free(k);
}

static char *slurp(const char *name)
{
    char *p = path_of(name), *text = NULL, err[256];
    if (file_read_small("key", p, 1 << 20, false, &text, NULL, err, sizeof err) < 0) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    free(p);
    return text;
}

/* keys_file - DKIM_KEYS_FILE text naming the keys in dir */
static char *keys_file(const char *json)
{
    put("keys.json", json);
    return path_of("keys.json");
}

static struct dkim_signer *load(const char *json, char *err, size_t len)
{
    struct dkim_signer *s = NULL;
    char *p = keys_file(json);
    err[0] = '\0';
    if (dkim_signer_load(p, &s, err, len) != 0)
        s = NULL;
    free(p);
    return s;
}

/* ---- key file errors ---- */

static void test_errors(void)
{
    static const struct {
        const char *name, *json, *want; /* want: a part of the error line */
    } rows[] = {
        {"not JSON", "[{", "DKIM_KEYS_FILE "},
        {"not an array", "{\"domain\":\"a.test\"}", "must be a JSON array"},
        {"empty list", "[]", "must be a JSON array"},
        {"entry not an object", "[1]", "DKIM_KEYS_FILE[0]: must be an object"},
        {"missing key_file",
         "[{\"domain\":\"a.test\",\"selector\":\"s1\",\"algorithm\":\"rsa-sha256\"}]",
         "DKIM_KEYS_FILE[0]: field 'key_file'"},
        {"unknown field",
         "[{\"domain\":\"a.test\",\"selector\":\"s1\",\"algorithm\":\"rsa-sha256\",\"key_file\":"
         "\"K/rsa.pem\",\"x\":1}]",
         "DKIM_KEYS_FILE[0]: "},
        {"unknown algorithm",
         "[{\"domain\":\"a.test\",\"selector\":\"s1\",\"algorithm\":\"rsa-sha1\",\"key_file\":"
         "\"K/rsa.pem\"}]",
         "DKIM_KEYS_FILE[0] (a.test s1): field 'algorithm'"},
        {"bad domain",
         "[{\"domain\":\"nodot\",\"selector\":\"s1\",\"algorithm\":\"rsa-sha256\",\"key_file\":"
         "\"K/rsa.pem\"}]",
         "DKIM_KEYS_FILE[0]: field 'domain'"},
        {"bad selector",
         "[{\"domain\":\"a.test\",\"selector\":\"s 1\",\"algorithm\":\"rsa-sha256\",\"key_file\":"
         "\"K/rsa.pem\"}]",
         "field 'selector'"},
        {"unreadable key",
         "[{\"domain\":\"a.test\",\"selector\":\"s1\",\"algorithm\":\"rsa-sha256\",\"key_file\":"
         "\"K/missing.pem\"}]",
         "DKIM_KEYS_FILE[0] (a.test s1): key_file"},
        {"malformed key",
         "[{\"domain\":\"a.test\",\"selector\":\"s1\",\"algorithm\":\"rsa-sha256\",\"key_file\":"
         "\"K/garbage.pem\"}]",
         "not a PEM private key"},
        {"ed25519 key for rsa-sha256",
         "[{\"domain\":\"a.test\",\"selector\":\"s1\",\"algorithm\":\"rsa-sha256\",\"key_file\":"
         "\"K/ed.pem\"}]",
         "not an RSA key"},
        {"rsa key for ed25519-sha256",
         "[{\"domain\":\"a.test\",\"selector\":\"s1\",\"algorithm\":\"ed25519-sha256\","
         "\"key_file\":\"K/rsa.pem\"}]",
         "not an Ed25519 key"},
        {"rsa key too small",
         "[{\"domain\":\"a.test\",\"selector\":\"s1\",\"algorithm\":\"rsa-sha256\",\"key_file\":"
         "\"K/rsa512.pem\"}]",
         "an RSA key of 512 bits"},
        {"same domain and selector twice",
         "[{\"domain\":\"a.test\",\"selector\":\"s1\",\"algorithm\":\"rsa-sha256\",\"key_file\":"
         "\"K/rsa.pem\"},{\"domain\":\"A.test\",\"selector\":\"s1\",\"algorithm\":\"ed25519-"
         "sha256\",\"key_file\":\"K/ed.pem\"}]",
         "DKIM_KEYS_FILE[1] (a.test s1): the same domain and selector as entry 0"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        /* K/ stands for the key directory */
        struct buf j;
        buf_init(&j, 1 << 16);
        for (const char *p = rows[i].json; *p; p++) {
            if (p[0] == 'K' && p[1] == '/')
                buf_printf(&j, "%s", dir);
            else
                buf_appendc(&j, *p);
        }
        char err[512], name[160];
        struct dkim_signer *s = load(buf_str(&j), err, sizeof err);
        snprintf(name, sizeof name, "keys file refused: %s", rows[i].name);
        CHECK(!s && strstr(err, rows[i].want) && !strchr(err, '\n'), name);
        if (s || !strstr(err, rows[i].want))
            printf("#   error: %s\n", err);
        snprintf(name, sizeof name, "error names DKIM_KEYS_FILE: %s", rows[i].name);
        CHECK(strncmp(err, "DKIM_KEYS_FILE", 14) == 0, name);
        dkim_signer_free(s);
        buf_cleanup(&j);
    }
    char err[512];
    struct dkim_signer *s = NULL;
    CHECK(dkim_signer_load("/nonexistent/keys.json", &s, err, sizeof err) == -1 && !s &&
              strstr(err, "DKIM_KEYS_FILE"),
          "a missing keys file is refused naming DKIM_KEYS_FILE");
    /* the key never appears in an error line */
    char *pem = slurp("rsa.pem");
    put("nokey.pem", pem + 28); /* the PEM body without its BEGIN line */
    char *json = xasprintf("[{\"domain\":\"a.test\",\"selector\":\"s1\",\"algorithm\":\"rsa-"
                           "sha256\",\"key_file\":\"%s/nokey.pem\"}]",
                           dir);
    s = load(json, err, sizeof err);
    CHECK(!s && !strstr(err, "MII") && strstr(err, "nokey.pem"),
          "a malformed key's error names the file, not its content");
    free(json);
    free(pem);
}

/* ---- signing ---- */

static const char *msg_plain = "Date: Mon, 01 Jan 2024 00:00:00 +0000\r\n"
                               "From: News <news@acme.test>\r\n"
                               "To: Bob <bob@example.test>\r\n"
                               "Subject: Hello\r\n"
                               "Message-ID: <email-1.abc@acme.test>\r\n"
                               "MIME-Version: 1.0\r\n"
                               "Content-Type: text/plain; charset=utf-8\r\n"
                               "Content-Transfer-Encoding: quoted-printable\r\n"
                               "\r\n"
                               "Hello Bob.\r\n";

/* sig_tags - the tags of the n-th DKIM-Signature of msg, unfolded and
 * without white space, as "a=...|b=...|..." in a static buffer; NULL when
 * there is no such header */
static const char *sig_tag(const char *msg, int n, const char *tag)
{
    static char out[2048];
    const char *p = msg;
    for (int i = 0;; i++) {
        p = strstr(p, "DKIM-Signature:");
        if (!p)
            return NULL;
        if (i == n)
            break;
        p++;
    }
    p += strlen("DKIM-Signature:");
    /* the field ends at a CRLF not followed by white space */
    const char *end = p;
    while (*end && !(end[0] == '\r' && end[1] == '\n' && end[2] != ' ' && end[2] != '\t'))
        end++;
    char flat[4096];
    size_t k = 0;
    for (const char *q = p; q < end && k + 1 < sizeof flat; q++)
        if (*q != ' ' && *q != '\t' && *q != '\r' && *q != '\n')
            flat[k++] = *q;
    flat[k] = '\0';
    char want[32];
    snprintf(want, sizeof want, "%s=", tag);
    for (char *t = flat; t && *t;) {
        char *semi = strchr(t, ';');
        if (semi)
            *semi = '\0';
        if (strncmp(t, want, strlen(want)) == 0) {
            snprintf(out, sizeof out, "%s", t + strlen(want));
            return out;
        }
        t = semi ? semi + 1 : NULL;
    }
    return NULL;
}

static char *sign_copy(struct dkim_ctx *c, const char *from, const char *msg, int *rc)
{
    struct buf b;
    char err[256];
    buf_init(&b, 1 << 22);
    buf_append(&b, msg, strlen(msg));
    *rc = dkim_sign_copy(c, from, 1700000000, &b, err, sizeof err);
    return buf_steal(&b);
}

static void test_domains(void)
{
    char err[512];
    char *json = xasprintf(
        "[{\"domain\":\"acme.test\",\"selector\":\"r1\",\"algorithm\":\"rsa-sha256\","
        "\"key_file\":\"%s/rsa.pem\"},"
        "{\"domain\":\"mail.acme.test\",\"selector\":\"e1\",\"algorithm\":\"ed25519-sha256\","
        "\"key_file\":\"%s/ed.pem\"},"
        "{\"domain\":\"dual.test\",\"selector\":\"e2\",\"algorithm\":\"ed25519-sha256\","
        "\"key_file\":\"%s/ed.pem\"},"
        "{\"domain\":\"DUAL.test\",\"selector\":\"r2\",\"algorithm\":\"rsa-sha256\","
        "\"key_file\":\"%s/rsa.pem\"}]",
        dir, dir, dir, dir);
    struct dkim_signer *s = load(json, err, sizeof err);
    free(json);
    CHECK(s && dkim_signer_keys(s) == 4, "a keys file of four entries loads");
    if (!s) {
        printf("#   %s\n", err);
        return;
    }
    struct dkim_ctx *c = dkim_ctx_new(s);
    static const struct {
        const char *from, *d, *s, *a; /* d NULL: not signed */
    } rows[] = {
        {"news@acme.test", "acme.test", "r1", "rsa-sha256"},
        {"news@ACME.Test", "acme.test", "r1", "rsa-sha256"},
        {"news@eu.acme.test", "acme.test", "r1", "rsa-sha256"},
        {"news@a.b.acme.test", "acme.test", "r1", "rsa-sha256"},
        {"news@mail.acme.test", "mail.acme.test", "e1", "ed25519-sha256"},
        {"news@x.mail.acme.test", "mail.acme.test", "e1", "ed25519-sha256"},
        {"news@notacme.test", NULL, NULL, NULL},
        {"news@acme.test.example", NULL, NULL, NULL},
        {"news@other.test", NULL, NULL, NULL},
        {"news@test", NULL, NULL, NULL},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        int rc;
        char *m = sign_copy(c, rows[i].from, msg_plain, &rc);
        char name[160];
        snprintf(name, sizeof name, "From %s: %s%s", rows[i].from,
                 rows[i].d ? "signed with d=" : "not signed", rows[i].d ? rows[i].d : "");
        if (!rows[i].d) {
            CHECK(rc == 0 && strcmp(m, msg_plain) == 0, name);
        } else {
            const char *d = sig_tag(m, 0, "d");
            bool ok = rc == 0 && d && strcmp(d, rows[i].d) == 0;
            ok = ok && strcmp(sig_tag(m, 0, "s"), rows[i].s) == 0 &&
                 strcmp(sig_tag(m, 0, "a"), rows[i].a) == 0 && !sig_tag(m, 1, "d");
            CHECK(ok, name);
            if (!ok)
                printf("#   got d=%s\n", d ? d : "(none)");
        }
        free(m);
    }

    /* dual: one header per key of the domain, in file order */
    int rc;
    char *m = sign_copy(c, "news@dual.test", msg_plain, &rc);
    CHECK(rc == 0 && strncmp(m, "DKIM-Signature: v=1; a=ed25519-sha256;", 38) == 0,
          "dual: the first header is the first key's (ed25519)");
    const char *a1 = sig_tag(m, 1, "a");
    CHECK(a1 && strcmp(a1, "rsa-sha256") == 0 && strcmp(sig_tag(m, 1, "s"), "r2") == 0 &&
              strcmp(sig_tag(m, 1, "d"), "dual.test") == 0,
          "dual: the second header is the rsa key's");
    CHECK(!sig_tag(m, 2, "a"), "dual: exactly two signatures");
    char *bh0 = xstrdup(sig_tag(m, 0, "bh"));
    CHECK(strcmp(bh0, sig_tag(m, 1, "bh")) == 0, "dual: both carry the same body hash");
    CHECK(strcmp(sig_tag(m, 0, "c"), "relaxed/relaxed") == 0 &&
              strcmp(sig_tag(m, 1, "c"), "relaxed/relaxed") == 0 &&
              strcmp(sig_tag(m, 0, "t"), "1700000000") == 0,
          "relaxed/relaxed, t= the time given");
    CHECK(strstr(m, msg_plain) && strlen(m) > strlen(msg_plain) &&
              strcmp(m + strlen(m) - strlen(msg_plain), msg_plain) == 0,
          "the message follows the signatures unchanged");
    free(bh0);
    free(m);

    /* which headers are signed */
    const char *full = "Received: from x by y; Mon, 01 Jan 2024 00:00:00 +0000\r\n"
                       "Date: Mon, 01 Jan 2024 00:00:00 +0000\r\n"
                       "From: News <news@acme.test>\r\n"
                       "To: Bob <bob@example.test>\r\n"
                       "Subject: Hello\r\n"
                       "Message-ID: <email-1.abc@acme.test>\r\n"
                       "Feedback-ID: 1:news:warmup:acme.test\r\n"
                       "List-Unsubscribe: <https://u.acme.test/u/t>\r\n"
                       "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
                       "X-Mailer: test\r\n"
                       "MIME-Version: 1.0\r\n"
                       "Content-Type: text/plain; charset=utf-8\r\n"
                       "Content-Transfer-Encoding: quoted-printable\r\n"
                       "\r\n"
                       "Hello.\r\n";
    m = sign_copy(c, "news@acme.test", full, &rc);
    CHECK_STR(sig_tag(m, 0, "h"),
              "Date:From:To:Subject:Message-ID:Feedback-ID:List-Unsubscribe:List-Unsubscribe-"
              "Post:MIME-Version:Content-Type:From",
              "h= lists the contract's fields present, in message order, From oversigned");
    free(m);
    m = sign_copy(c, "news@acme.test", msg_plain, &rc);
    CHECK_STR(sig_tag(m, 0, "h"), "Date:From:To:Subject:Message-ID:MIME-Version:Content-Type:From",
              "absent fields are not listed");
    free(m);
    m = sign_copy(c, "news@acme.test", "From: a@acme.test\r\nFrom: b@acme.test\r\n\r\nx\r\n", &rc);
    CHECK_STR(sig_tag(m, 0, "h"), "From:From:From", "two From fields: listed three times");
    free(m);
    dkim_ctx_free(c);
    dkim_signer_free(s);
    CHECK(dkim_ctx_new(NULL) == NULL, "no signer: no context");
    int r0 = 1;
    m = sign_copy(NULL, "news@acme.test", msg_plain, &r0);
    CHECK(r0 == 0 && strcmp(m, msg_plain) == 0, "no context: the message is left as it is");
    free(m);
}

/* ---- equivalence with libopendkim ---- */

static const char *const equiv_msgs[] = {
    "Date: Mon, 01 Jan 2024 00:00:00 +0000\r\nFrom: News <news@acme.test>\r\nTo: "
    "bob@example.test\r\nSubject: Hello\r\nMessage-ID: <m1@acme.test>\r\nMIME-Version: "
    "1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello Bob.\r\n",
    /* folded header with tabs and runs of spaces */
    "From:   \"News  Team\"\t<news@acme.test>  \r\nTo: a@b.test,\r\n\t  c@d.test\r\nSubject: "
    "=?UTF-8?B?WsO2ZQ==?=\r\n =?UTF-8?Q?_caf=C3=A9?=   \r\nDate: Mon, 01 Jan 2024 00:00:00 "
    "+0000\r\nX-Other: not signed\r\n\r\nbody\r\n",
    /* body: trailing white space, runs, tabs, empty lines inside and at the end */
    "From: news@acme.test\r\nSubject: ws\r\n\r\n  lead  and   runs\t\there  \r\n\r\n\t\r\nlast "
    "\t \r\n\r\n \r\n\r\n",
    /* empty body */
    "From: news@acme.test\r\nSubject: empty\r\n\r\n",
    /* dots, From lines, a long line, a multipart body */
    "From: news@acme.test\r\nTo: x@y.test\r\nMIME-Version: 1.0\r\nContent-Type: "
    "multipart/alternative; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\n.\r\n"
    "..two dots\r\n.leading dot\r\nFrom the start\r\n=46rom encoded\r\n--b1\r\n"
    "Content-Type: "
    "text/html\r\n\r\n<p>xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
    "</p>\r\n--b1--\r\n",
    /* every field of the contract, List-Unsubscribe folded */
    "Date: Mon, 01 Jan 2024 00:00:00 +0000\r\nFrom: news@acme.test\r\nTo: x@y.test\r\nSubject: "
    "s\r\nMessage-ID: <m@acme.test>\r\nFeedback-ID: 1:n:warmup:acme.test\r\nList-Unsubscribe: "
    "<https://u.acme.test/u/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa>,\r\n "
    "<mailto:u@acme.test?subject=unsubscribe>\r\nList-Unsubscribe-Post: "
    "List-Unsubscribe=One-Click\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nx\r\n",
};

/* ref_sign - libopendkim's DKIM-Signature value for msg, or NULL */
static char *ref_sign(char *pem, dkim_alg_t alg, const char *selector, const char *msg)
{
    static const char *hdrs[] = {DKIM_SIGNED_HEADERS, NULL};
    static const char *over[] = {"From", NULL};
#ifdef __SANITIZE_ADDRESS__
    __lsan_disable(); /* libopendkim 2.11 leaks the Ed25519 key of each handle */
#endif
    DKIM_LIB *lib = dkim_init(NULL, NULL);
    uint64_t t = 1700000000;
    DKIM_STAT st;
    char *out = NULL;
    dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_FIXEDTIME, &t, sizeof t);
    dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_SIGNHDRS, hdrs, sizeof(char **));
    dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_OVERSIGNHDRS, over, sizeof(char **));
    DKIM *d = dkim_sign(lib, (const unsigned char *)"t", NULL, (unsigned char *)pem,
                        (const unsigned char *)selector, (const unsigned char *)"acme.test",
                        DKIM_CANON_RELAXED, DKIM_CANON_RELAXED, alg, -1, &st);
    if (d) {
        dkim_set_margin(d, 0); /* no folds: ours fold only where a space is */
        st = dkim_chunk(d, (unsigned char *)msg, strlen(msg));
        if (st == DKIM_STAT_OK)
            st = dkim_chunk(d, NULL, 0);
        if (st == DKIM_STAT_OK)
            st = dkim_eom(d, NULL);
        unsigned char hdr[8192];
        if (st == DKIM_STAT_OK && dkim_getsighdr(d, hdr, sizeof hdr, 16) == DKIM_STAT_OK)
            out = xasprintf("DKIM-Signature: %s\r\n", hdr);
        else
            printf("#   libopendkim: %s\n", dkim_geterror(d) ? dkim_geterror(d) : "?");
        dkim_free(d);
    }
    dkim_close(lib);
#ifdef __SANITIZE_ADDRESS__
    __lsan_enable();
#endif
    return out;
}

static void test_equivalence(void)
{
    char err[512];
    char *json =
        xasprintf("[{\"domain\":\"acme.test\",\"selector\":\"r1\",\"algorithm\":\"rsa-sha256\","
                  "\"key_file\":\"%s/rsa.pem\"},"
                  "{\"domain\":\"acme.test\",\"selector\":\"e1\",\"algorithm\":\"ed25519-sha256\","
                  "\"key_file\":\"%s/ed.pem\"}]",
                  dir, dir);
    struct dkim_signer *s = load(json, err, sizeof err);
    free(json);
    if (!s) {
        CHECK(0, "equivalence keys load");
        printf("#   %s\n", err);
        return;
    }
    struct dkim_ctx *c = dkim_ctx_new(s);
    char *rsa = slurp("rsa.pem"), *ed = slurp("ed.pem");
    for (size_t i = 0; i < sizeof equiv_msgs / sizeof equiv_msgs[0]; i++) {
        int rc;
        char *m = sign_copy(c, "news@acme.test", equiv_msgs[i], &rc);
        for (int k = 0; k < 2; k++) {
            char *ref = ref_sign(k ? ed : rsa, k ? DKIM_SIGN_ED25519SHA256 : DKIM_SIGN_RSASHA256,
                                 k ? "e1" : "r1", equiv_msgs[i]);
            static const char *const tags[] = {"a", "c", "d", "s", "t", "bh", "h", "b"};
            bool same = ref != NULL && rc == 0;
            for (size_t t = 0; same && t < sizeof tags / sizeof tags[0]; t++) {
                char mine[2048];
                const char *v = sig_tag(m, k, tags[t]);
                snprintf(mine, sizeof mine, "%s", v ? v : "(none)");
                const char *r = sig_tag(ref, 0, tags[t]);
                if (!r || strcmp(mine, r) != 0) {
                    printf("#   message %zu tag %s: ours %s, libopendkim %s\n", i, tags[t], mine,
                           r ? r : "(none)");
                    same = false;
                }
            }
            char name[128];
            snprintf(name, sizeof name, "message %zu, %s: libopendkim computes the same tags", i,
                     k ? "ed25519-sha256" : "rsa-sha256");
            CHECK(same, name);
            free(ref);
        }
        free(m);
    }
    free(rsa);
    free(ed);
    dkim_ctx_free(c);
    dkim_signer_free(s);
}

int main(void)
{
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    genkey("rsa.pem", "RSA", 2048);
    genkey("rsa512.pem", "RSA", 512);
    genkey("ed.pem", "ED25519", 0);
    put("garbage.pem",
        "-----BEGIN PRIVATE KEY-----\nnot base64 at all\n-----END PRIVATE KEY-----\n");
    test_errors();
    test_domains();
    test_equivalence();
    static const char *const files[] = {"rsa.pem",   "rsa512.pem", "ed.pem", "garbage.pem",
                                        "keys.json", "nokey.pem",  NULL};
    for (size_t i = 0; files[i]; i++) {
        char *p = path_of(files[i]);
        unlink(p);
        free(p);
    }
    rmdir(dir);
    return test_done();
}
