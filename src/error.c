/* Lookups into the error table of include/fnd/error.h. */
#include "fnd/error.h"

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
