/* dkim_verify.c - opendkim's verifier (libopendkim) for test_dkim.sh:
 *   dkim_verify KEYS_FILE MESSAGE...
 * checks every DKIM-Signature of each message against the public keys of
 * KEYS_FILE ("selector._domainkey.domain v=DKIM1; k=...; p=..." lines,
 * libopendkim's DKIM_QUERY_FILE, the mechanism of opendkim's
 * TestPublicKeys: no DNS). Prints one line per signature
 * "FILE d=D s=S a=A pass|fail (why)", or "FILE none" without one.
 * Exit 0 when every message has a signature and every signature passes,
 * 1 otherwise, 2 on a usage or setup error. */
#include <sys/types.h>
#include <opendkim/dkim.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int verify(DKIM_LIB *lib, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return 2;
    }
    DKIM_STAT st;
    DKIM *d = dkim_verify(lib, (const unsigned char *)path, NULL, &st);
    if (!d) {
        fprintf(stderr, "dkim_verify: %s\n", dkim_getresultstr(st));
        fclose(f);
        return 2;
    }
    unsigned char buf[65536];
    size_t n;
    st = DKIM_STAT_OK;
    while (st == DKIM_STAT_OK && (n = fread(buf, 1, sizeof buf, f)) > 0)
        st = dkim_chunk(d, buf, n);
    fclose(f);
    if (st == DKIM_STAT_OK)
        st = dkim_chunk(d, NULL, 0);
    if (st == DKIM_STAT_OK || st == DKIM_STAT_BADSIG)
        st = dkim_eom(d, NULL);
    DKIM_SIGINFO **sigs = NULL;
    int nsigs = 0, rc = 0;
    if (dkim_getsiglist(d, &sigs, &nsigs) != DKIM_STAT_OK || nsigs == 0) {
        printf("%s none (%s)\n", path, dkim_getresultstr(st));
        rc = 1;
    }
    for (int i = 0; i < nsigs; i++) {
        DKIM_SIGINFO *s = sigs[i];
        /* with several signatures libopendkim checks each at dkim_eom */
        if ((dkim_sig_getflags(s) & DKIM_SIGFLAG_PROCESSED) == 0)
            (void)dkim_sig_process(d, s);
        bool pass = DKIM_SIG_CHECK(s);
        int bh = dkim_sig_getbh(s);
        const char *why = dkim_sig_geterrorstr(dkim_sig_geterror(s));
        dkim_alg_t alg = 0;
        (void)dkim_sig_getsignalg(s, &alg);
        printf("%s d=%s s=%s a=%s %s (body hash %s; %s)\n", path, dkim_sig_getdomain(s),
               dkim_sig_getselector(s),
               alg == DKIM_SIGN_ED25519SHA256 ? "ed25519-sha256"
               : alg == DKIM_SIGN_RSASHA256   ? "rsa-sha256"
                                              : "other",
               pass ? "pass" : "fail",
               bh == DKIM_SIGBH_MATCH      ? "ok"
               : bh == DKIM_SIGBH_MISMATCH ? "MISMATCH"
                                           : "untested",
               why ? why : "-");
        if (!pass)
            rc = 1;
    }
    dkim_free(d);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s KEYS_FILE MESSAGE...\n", argv[0]);
        return 2;
    }
    DKIM_LIB *lib = dkim_init(NULL, NULL);
    dkim_query_t q = DKIM_QUERY_FILE;
    unsigned int flags = DKIM_LIBFLAGS_FIXCRLF;
    if (!lib ||
        dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_QUERYMETHOD, &q, sizeof q) != DKIM_STAT_OK ||
        dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_QUERYINFO, argv[1], strlen(argv[1])) !=
            DKIM_STAT_OK ||
        dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_FLAGS, &flags, sizeof flags) != DKIM_STAT_OK) {
        fprintf(stderr, "libopendkim setup failed\n");
        return 2;
    }
    int rc = 0;
    for (int i = 2; i < argc; i++) {
        int r = verify(lib, argv[i]);
        if (r > rc)
            rc = r;
    }
    dkim_close(lib);
    return rc;
}
