/* test_sigv4.c - warmup-service/sigv4.c against the examples AWS publishes
 * in the S3 API reference ("Signature Calculations for the Authorization
 * Header" and "Authenticating Requests: Using Query Parameters"), with
 * their example credentials. */
#include "sigv4.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

static const struct sigv4_creds aws = {
    .access_key = "AKIAIOSFODNN7EXAMPLE",
    .secret_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    .region = "us-east-1",
    .service = "s3",
};

#define EMPTY_SHA "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static void presigned_get(void)
{
    char *q = sigv4_presign(&aws, "GET", "examplebucket.s3.amazonaws.com", "/test.txt", NULL, 0,
                            "20130524T000000Z", 86400);
    CHECK_STR(q,
              "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%"
              "2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&"
              "X-Amz-SignedHeaders=host&X-Amz-Signature="
              "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404",
              "presigned GET example: query and signature");
    free(q);
}

struct header_case {
    const char *name, *method, *path, *payload;
    struct sigv4_param q[2];
    size_t nq;
    struct sigv4_param h[5];
    size_t nh;
    const char *canonical_hash; /* NULL: not published */
    const char *authorization;
};

static const struct header_case header_cases[] = {
    {"GET Object (Range)",
     "GET",
     "/test.txt",
     EMPTY_SHA,
     {{0}},
     0,
     {{"Host", "examplebucket.s3.amazonaws.com"},
      {"Range", "bytes=0-9"},
      {"x-amz-content-sha256", EMPTY_SHA},
      {"x-amz-date", "20130524T000000Z"}},
     4,
     "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972",
     "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
     "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
     "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"},
    {"GET Bucket (query parameters sorted)",
     "GET",
     "/",
     EMPTY_SHA,
     {{"prefix", "J"}, {"max-keys", "2"}},
     2,
     {{"Host", "examplebucket.s3.amazonaws.com"},
      {"x-amz-content-sha256", EMPTY_SHA},
      {"x-amz-date", "20130524T000000Z"}},
     3,
     NULL,
     "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
     "SignedHeaders=host;x-amz-content-sha256;x-amz-date,"
     "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"},
};

static void header_signing(void)
{
    for (size_t i = 0; i < sizeof header_cases / sizeof header_cases[0]; i++) {
        const struct header_case *c = &header_cases[i];
        char ch[65] = "";
        char *a = sigv4_authorization(&aws, c->method, c->path, c->q, c->nq, c->h, c->nh,
                                      c->payload, "20130524T000000Z", ch);
        CHECK_STR(a, c->authorization, c->name);
        if (c->canonical_hash)
            CHECK_STR(ch, c->canonical_hash, "canonical request hash");
        free(a);
    }
}

static void helpers(void)
{
    char *e = sigv4_uri_encode("a b/c~d_e.f-g+h*é", false);
    CHECK_STR(e, "a%20b%2Fc~d_e.f-g%2Bh%2A%C3%A9", "uri encode: unreserved kept, rest %XX");
    free(e);
    e = sigv4_uri_encode("/bucket/a b/key", true);
    CHECK_STR(e, "/bucket/a%20b/key", "uri encode of a path keeps '/'");
    free(e);
    struct sigv4_param p[] = {{"uploadId", "x/y"}, {"partNumber", "2"}, {"X-Amz-Date", "d"}};
    e = sigv4_canonical_query(p, 3);
    CHECK_STR(e, "X-Amz-Date=d&partNumber=2&uploadId=x%2Fy", "canonical query: byte order");
    free(e);
    char h[65];
    sigv4_sha256_hex("", 0, h);
    CHECK_STR(h, EMPTY_SHA, "sha256 of the empty payload");
    char d[17];
    sigv4_amz_date(1369353600, d);
    CHECK_STR(d, "20130524T000000Z", "amz date");
}

int main(void)
{
    presigned_get();
    header_signing();
    helpers();
    return test_done();
}
