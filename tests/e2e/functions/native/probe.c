/* Native test functions for fnd's end-to-end tests. */
#include <fnd/handler.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int echo(const struct fnd_context *ctx, const char *event, size_t len, struct fnd_response *res)
{
    return fnd_response_write(res, event, len);
}

int nap(const struct fnd_context *ctx, const char *event, size_t len, struct fnd_response *res)
{
    usleep((useconds_t)atoi(event) * 1000);
    return fnd_response_printf(res, "%d", (int)getpid());
}

int fail(const struct fnd_context *ctx, const char *event, size_t len, struct fnd_response *res)
{
    return fnd_response_error(res, "ProbeError", "failed on %.*s", (int)len, event);
}

int crash(const struct fnd_context *ctx, const char *event, size_t len, struct fnd_response *res)
{
    abort();
}
