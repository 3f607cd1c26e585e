/* Native functions that misbehave on purpose, for tests/e2e/test_faults.py. */
#include <fnd/handler.h>
#include <fnd/protocol.h>

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Reports its pid on stderr, then stops itself: the daemon sees a silent worker. */
int stop(const struct fnd_context *ctx, const char *event, size_t len, struct fnd_response *res)
{
    if (strcmp(event, "stop") == 0) {
        fprintf(stderr, "stopping pid=%d\n", (int)getpid());
        fflush(stderr);
        raise(SIGSTOP);
    }
    return fnd_response_printf(res, "%d", (int)getpid());
}

/* Writes to the protocol channel without end. */
int flood(const struct fnd_context *ctx, const char *event, size_t len, struct fnd_response *res)
{
    static char junk[65536];
    memset(junk, 0xff, sizeof(junk));
    for (;;)
        if (write(FND_CHANNEL_FD, junk, sizeof(junk)) < 0)
            return 1;
}

/* Writes to stdout without end: the invocation can only time out. */
int chatter(const struct fnd_context *ctx, const char *event, size_t len, struct fnd_response *res)
{
    static const char line[] = "chatter chatter chatter chatter chatter chatter chatter\n";
    for (;;)
        if (write(1, line, sizeof(line) - 1) < 0)
            return 1;
}

/* Announces 100 bytes of result, sends 10, and goes quiet. */
int partial(const struct fnd_context *ctx, const char *event, size_t len, struct fnd_response *res)
{
    unsigned char h[FND_FRAME_HEADER_SIZE];
    fnd_frame_header_encode(h, FND_FRAME_RESULT, 100);
    if (write(FND_CHANNEL_FD, h, sizeof(h)) < 0 || write(FND_CHANNEL_FD, "0123456789", 10) < 0)
        return 1;
    pause();
    return 0;
}

/* Answers twice: one RESULT frame, then another that nobody asked for. */
int twice(const struct fnd_context *ctx, const char *event, size_t len, struct fnd_response *res)
{
    unsigned char h[FND_FRAME_HEADER_SIZE];
    fnd_frame_header_encode(h, FND_FRAME_RESULT, 5);
    for (int i = 0; i < 2; i++)
        if (write(FND_CHANNEL_FD, h, sizeof(h)) < 0 || write(FND_CHANNEL_FD, "first", 5) < 0)
            return 1;
    pause();
    return 0;
}
