/* Native test functions for fnd's end-to-end tests. */
#include <fnd/handler.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

/* Which worker process answered: random per process, since in its pid namespace every
 * worker's runtime has the same pid. */
static const char *worker_id(void)
{
    static char id[17];
    if (id[0] == '\0') {
        uint64_t r = 0;
        if (getrandom(&r, sizeof(r), 0) != sizeof(r))
            r = (uint64_t)getpid();
        snprintf(id, sizeof(id), "%016llx", (unsigned long long)r);
    }
    return id;
}

int echo(const struct fnd_context *ctx, const char *event, size_t len, struct fnd_response *res)
{
    return fnd_response_write(res, event, len);
}

/* Echoes, and prints the event first when it asks to be said. */
int say(const struct fnd_context *ctx, const char *event, size_t len, struct fnd_response *res)
{
    if (strstr(event, "\"say\"") != NULL)
        printf("said %.*s\n", (int)len, event);
    return fnd_response_write(res, event, len);
}

int nap(const struct fnd_context *ctx, const char *event, size_t len, struct fnd_response *res)
{
    usleep((useconds_t)atoi(event) * 1000);
    return fnd_response_printf(res, "%s", worker_id());
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
