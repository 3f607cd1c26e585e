/* Lookups into the error table of include/fnd/error.h. */
#include "fnd/error.h"

#include <errno.h>

struct error_info {
    int status;
    const char *code;
    const char *lambda_type;
};

static const struct error_info errors[] = {
#define FND_ERROR_INFO(name, status, code, lambda) {status, code, lambda},
    FND_ERROR_MAP(FND_ERROR_INFO)
#undef FND_ERROR_INFO
};

int fnd_error_status(enum fnd_error e)
{
    return errors[e].status;
}

const char *fnd_error_code(enum fnd_error e)
{
    return errors[e].code;
}

const char *fnd_error_lambda_type(enum fnd_error e)
{
    return errors[e].lambda_type;
}

enum fnd_error fnd_error_from_storage_errno(int err)
{
    /* 507 as WebDAV (RFC 4918) defines it: the server cannot store what the request
     * needs; the client may retry once space returns, which a 500 does not say. */
    return err == ENOSPC || err == EDQUOT ? FND_E_INSUFFICIENT_STORAGE : FND_E_INTERNAL;
}
