/*
 * The daemon's error kinds, one X-macro table: each kind has its HTTP status, the
 * stable code in native error bodies ({"error": {"code", "message"}}) and the
 * exception name the Lambda API uses (x-amzn-ErrorType).
 */
#ifndef FND_ERROR_H
#define FND_ERROR_H

#define FND_ERROR_MAP(X)                                                                       \
    X(BAD_REQUEST, 400, "bad_request", "InvalidRequestContentException")                       \
    X(INVALID_PARAMETER, 400, "invalid_parameter", "InvalidParameterValueException")           \
    X(UNAUTHORIZED, 401, "unauthorized", "AccessDeniedException")                              \
    X(NOT_FOUND, 404, "not_found", "ResourceNotFoundException")                                \
    X(METHOD_NOT_ALLOWED, 405, "method_not_allowed", "InvalidRequestContentException")         \
    X(CONFLICT, 409, "conflict", "ResourceConflictException")                                  \
    X(PAYLOAD_TOO_LARGE, 413, "payload_too_large", "RequestTooLargeException")                 \
    X(URI_TOO_LONG, 414, "uri_too_long", "InvalidRequestContentException")                     \
    X(UNSUPPORTED_MEDIA_TYPE, 415, "unsupported_media_type", "UnsupportedMediaTypeException")  \
    X(UNPROCESSABLE, 422, "unprocessable", "InvalidParameterValueException")                   \
    X(TOO_MANY_REQUESTS, 429, "too_many_requests", "TooManyRequestsException")                 \
    X(HEADERS_TOO_LARGE, 431, "headers_too_large", "InvalidRequestContentException")           \
    X(INTERNAL, 500, "internal", "ServiceException")                                           \
    X(UNAVAILABLE, 503, "unavailable", "ServiceException")                                     \
    X(INSUFFICIENT_STORAGE, 507, "insufficient_storage", "ServiceException")

enum fnd_error {
#define FND_ERROR_ENUM(name, status, code, lambda) FND_E_##name,
    FND_ERROR_MAP(FND_ERROR_ENUM)
#undef FND_ERROR_ENUM
};

int fnd_error_status(enum fnd_error e);
const char *fnd_error_code(enum fnd_error e);
const char *fnd_error_lambda_type(enum fnd_error e);
/* The kind for a failure to store something, by its errno (positive): a full disk or
 * quota (ENOSPC, EDQUOT) is INSUFFICIENT_STORAGE, anything else INTERNAL. */
enum fnd_error fnd_error_from_storage_errno(int err);

#endif
