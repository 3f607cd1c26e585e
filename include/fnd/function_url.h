/*
 * Function URLs (docs/lambda.md): `ANY <prefix>/{name}/{path...}` invokes the function
 * with the API Gateway v2 / Lambda function URL event (payload version "2.0") and maps
 * its result back to an HTTP response the way Lambda function URLs do, so that fnd is
 * a local backend for HTTP API handlers written for Lambda.
 */
#ifndef FND_FUNCTION_URL_H
#define FND_FUNCTION_URL_H

#include "fnd/daemon.h"

/* Answers req when its path is under the function URL prefix (--function-url-prefix)
 * and returns true; returns false, without answering, for any other path. */
bool function_url_handle(struct http_request *req, struct daemon *d);

#endif
