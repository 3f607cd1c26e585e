/*
 * AWS Signature Version 4, checked: with --lambda-auth sigv4 the Lambda API accepts a
 * request only when it is signed with the daemon's token as the secret access key (the
 * access key id is not looked at), so AWS clients configured with that secret prove
 * they know the token without sending it. HMAC-SHA256 and SHA-256 come from nettle.
 */
#ifndef FND_SIGV4_H
#define FND_SIGV4_H

#include "fnd/http.h"

#define SIGV4_MAX_SKEW_S (15 * 60) /* AWS's own limit on X-Amz-Date's distance from now */

/* Checks req's Authorization: AWS4-HMAC-SHA256 header against secret. 0 when the
 * signature is valid, -EACCES when it is missing, malformed, stale or wrong (err says
 * which, never the secret). now_s is the wall clock in seconds. */
int sigv4_verify(const struct http_request *req, const char *secret, int64_t now_s, char *err,
                 size_t errsize);

#endif
