/* dkim.h - DKIM signatures (RFC 6376) on composed copies: rsa-sha256 and
 * ed25519-sha256 (RFC 8463), relaxed/relaxed, keys from DKIM_KEYS_FILE.
 *
 * DKIM_KEYS_FILE is a JSON list
 *   [{"domain":"acme.com","selector":"s1","algorithm":"rsa-sha256",
 *     "key_file":"/run/secrets/dkim-s1.pem"}, ...]
 * with PEM private keys (PKCS#8 or traditional RSA; RSA of 1024 bits or
 * more). A copy whose From domain is a keyed domain, or a subdomain of
 * one, is signed with every key of the closest such domain (d= that
 * domain), one DKIM-Signature header each, in file order. Signed header
 * fields: those of DKIM_SIGNED_HEADERS present in the copy, in message
 * order, then From once more (oversigned: a From added later breaks the
 * signature).
 *
 * Keys are parsed once by dkim_signer_load (main thread, start-up) and
 * never logged; the key text is wiped after parsing. The signer is
 * read-only afterwards. Signing needs a struct dkim_ctx, one per thread
 * (its own copies of the keys and OpenSSL contexts, so signing threads
 * share no lock).
 */
#ifndef DKIM_H
#define DKIM_H

#include "buf.h"

#include <stddef.h>
#include <stdint.h>

/* the header fields signed when present, as they appear in h= */
#define DKIM_SIGNED_HEADERS                                                                        \
    "From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "Content-Type",                 \
        "List-Unsubscribe", "List-Unsubscribe-Post", "Feedback-ID"

struct dkim_signer;
struct dkim_ctx;

/* dkim_signer_load - read the keys file at path. 0 and *out (free with
 * dkim_signer_free), or -1 with one line in errbuf naming DKIM_KEYS_FILE,
 * the entry and what is wrong (never the key). */
int dkim_signer_load(const char *path, struct dkim_signer **out, char *errbuf, size_t errlen);
void dkim_signer_free(struct dkim_signer *s);
/* dkim_signer_keys - how many keys were loaded */
size_t dkim_signer_keys(const struct dkim_signer *s);

/* dkim_ctx_new - a signing context for one thread; NULL when s is NULL
 * (no signing). The signer must outlive it. */
struct dkim_ctx *dkim_ctx_new(const struct dkim_signer *s);
void dkim_ctx_free(struct dkim_ctx *c);

/* dkim_sign_copy - prepend to msg (a whole RFC 5322 message with CRLF line
 * ends) the DKIM-Signature header(s) for the domain of the address from,
 * with t= time_s. 0 (msg unchanged when c is NULL or no key matches), or
 * -1 with a reason (msg over its cap: then emptied, as buf does). */
int dkim_sign_copy(struct dkim_ctx *c, const char *from, int64_t time_s, struct buf *msg,
                   char *errbuf, size_t errlen);

#endif
