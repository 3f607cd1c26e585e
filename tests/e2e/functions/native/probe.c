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

/* Answers with as many bytes as the event's number asks for. */
int big(const struct fnd_context *ctx, const char *event, size_t len, struct fnd_response *res)
{
    static char chunk[65536];
    memset(chunk, 'x', sizeof(chunk));
    long want = atol(event);
    while (want > 0) {
        size_t n = want > (long)sizeof(chunk) ? sizeof(chunk) : (size_t)want;
        if (fnd_response_write(res, chunk, n) != 0)
            return fnd_response_error(res, "TooBig", "the runtime refused the result");
        want -= (long)n;
    }
    return 0;
}

/* A malicious worker: writes straight to the protocol channel. */
int garbage(const struct fnd_context *ctx, const char *event, size_t len, struct fnd_response *res)
{
    if (strcmp(event, "huge") == 0) {
        /* a RESULT header that claims 1 GiB */
        unsigned char h[8] = {0, 0, 0, 0x40, 4, 0, 0, 0};
        if (write(3, h, sizeof(h)) < 0)
            return 1;
    } else {
        static const char junk[] = "\xde\xad\xbe\xef garbage that is not a frame";
        if (write(3, junk, sizeof(junk) - 1) < 0)
            return 1;
    }
    pause();
    return 0;
}
