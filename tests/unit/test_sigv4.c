/* Unit tests for sigv4.c: AWS's documented example request (IAM ListUsers), a changed
 * byte anywhere breaks it, clock skew and malformed headers are refused. */
#include "fnd/sigv4.h"

#include "test.h"

#include <errno.h>

#define SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define WHEN 1440938160 /* 20150830T123600Z */

static struct http_header headers[4];

static void example(struct http_request *req, const char *signature)
{
    static char auth[512];
    snprintf(auth, sizeof(auth),
             "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, "
             "SignedHeaders=content-type;host;x-amz-date, Signature=%s", signature);
    headers[0] = (struct http_header){SLICE_LIT("Host"), SLICE_LIT("iam.amazonaws.com")};
    headers[1] = (struct http_header){SLICE_LIT("Content-Type"),
                                      SLICE_LIT("application/x-www-form-urlencoded; charset=utf-8")};
    headers[2] = (struct http_header){SLICE_LIT("X-Amz-Date"), SLICE_LIT("20150830T123600Z")};
    headers[3] = (struct http_header){SLICE_LIT("Authorization"), slice_from_cstr(auth)};
    memset(req, 0, sizeof(*req));
    req->method_name = "GET";
    req->path = SLICE_LIT("/");
    req->query = SLICE_LIT("Version=2010-05-08&Action=ListUsers"); /* sorted by the check */
    req->headers = headers;
    req->nheaders = 4;
    buf_init(&req->body, 0);
}

static const char good[] = "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7";

TEST(aws_documented_example)
{
    struct http_request req;
    char err[160];
    example(&req, good);
    ASSERT_EQ(sigv4_verify(&req, SECRET, WHEN, err, sizeof(err)), 0);
    ASSERT_EQ(sigv4_verify(&req, "another secret", WHEN, err, sizeof(err)), -EACCES);
    req.query = SLICE_LIT("Action=ListUsers&Version=2010-05-09");
    ASSERT_EQ(sigv4_verify(&req, SECRET, WHEN, err, sizeof(err)), -EACCES);
    example(&req, good);
    req.method_name = "POST";
    ASSERT_EQ(sigv4_verify(&req, SECRET, WHEN, err, sizeof(err)), -EACCES);
    example(&req, good);
    buf_append_str(&req.body, "x"); /* the payload is signed too */
    ASSERT_EQ(sigv4_verify(&req, SECRET, WHEN, err, sizeof(err)), -EACCES);
    buf_release(&req.body);
}

TEST(skew_and_malformed_headers)
{
    struct http_request req;
    char err[160];
    example(&req, good);
    ASSERT_EQ(sigv4_verify(&req, SECRET, WHEN + SIGV4_MAX_SKEW_S + 1, err, sizeof(err)), -EACCES);
    ASSERT(strstr(err, "too old") != NULL);
    ASSERT_EQ(sigv4_verify(&req, SECRET, WHEN - SIGV4_MAX_SKEW_S - 1, err, sizeof(err)), -EACCES);
    example(&req, "short");
    ASSERT_EQ(sigv4_verify(&req, SECRET, WHEN, err, sizeof(err)), -EACCES);
    ASSERT(strstr(err, "malformed") != NULL);
    example(&req, good);
    headers[3].value = SLICE_LIT("Bearer abc");
    ASSERT_EQ(sigv4_verify(&req, SECRET, WHEN, err, sizeof(err)), -EACCES);
    example(&req, good);
    req.nheaders = 3; /* no Authorization at all */
    ASSERT_EQ(sigv4_verify(&req, SECRET, WHEN, err, sizeof(err)), -EACCES);
}

TEST_MAIN()
