/*
 * Control-plane authentication: one bearer token per daemon, given with --auth-token
 * or $FND_AUTH_TOKEN, or else generated at first start into <data>/auth-token (mode
 * 0600). Deploy, update, delete and every read of configuration, logs, stats and
 * metrics need `Authorization: Bearer <token>`; invocations need it according to
 * --invoke-auth; /healthz never does. Comparison is constant-time, and the token is
 * never written to a log.
 */
#ifndef FND_AUTH_H
#define FND_AUTH_H

#include "fnd/http.h"

#include <stdbool.h>

#define AUTH_TOKEN_MAX 256

/* --invoke-auth: who may invoke without the token */
#define AUTH_INVOKE_MODES(X)                                                                   \
    X(LOOPBACK, "loopback") /* peers on 127.0.0.0/8 or ::1 */                                \
    X(ALL, "all")           /* anyone who can reach the listener */                          \
    X(NONE, "none")         /* nobody: invocations need the token too */

enum auth_invoke {
#define AUTH_INVOKE_ENUM(id, word) AUTH_INVOKE_##id,
    AUTH_INVOKE_MODES(AUTH_INVOKE_ENUM)
#undef AUTH_INVOKE_ENUM
};

/* What a request needs, decided by its route. */
enum auth_class {
    AUTH_OPEN,    /* health checks */
    AUTH_INVOKE,  /* running a function: --invoke-auth decides */
    AUTH_CONTROL, /* everything else: the token */
};

struct auth {
    char token[AUTH_TOKEN_MAX + 1];
    bool given;              /* from --auth-token or $FND_AUTH_TOKEN, not generated */
    enum auth_invoke invoke;
};

/* Sets a up: the configured token when not empty, else the one in <data_dir>/auth-token,
 * created (0600, 32 random bytes in hex) when missing. 0, or a negative errno with the
 * reason in err (a token file readable by others, a malformed mode, a short token). */
int auth_setup(struct auth *a, const char *configured, const char *data_dir,
               const char *invoke_mode, char *err, size_t errsize);
/* Whether req may proceed for a route of class cls. */
bool auth_allows(const struct auth *a, const struct http_request *req, enum auth_class cls);
/* Whether req comes from a loopback address (127.0.0.0/8, ::1). */
bool auth_peer_is_loopback(const struct http_request *req);
/* Answers 401 with WWW-Authenticate: Bearer and a hint on where the token is. */
void auth_respond_unauthorized(struct http_request *req);
/* Whether host (an address literal or "localhost") is a loopback address. */
bool auth_host_is_loopback(const char *host);
/* Whether the bytes of a and b are equal, in time that depends only on their lengths'
 * maximum (both are hashed first). */
bool auth_token_equal(const char *a, size_t alen, const char *b, size_t blen);

#endif
