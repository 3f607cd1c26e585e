/*
 * Busy polling: for a short window after the daemon hands an invocation to a worker,
 * its loop polls for events without sleeping (src/busy_poll.c says why).
 */
#ifndef FND_BUSY_POLL_H
#define FND_BUSY_POLL_H

#include <stdint.h>
#include <uv.h>

struct busy_poll {
    uv_idle_t idle;     /* active during a window: libuv then polls with a zero timeout */
    uint64_t window_us; /* 0: never busy-poll */
    uint64_t until_us;  /* clock_mono_us() at which the current window ends */
};

void busy_poll_init(struct busy_poll *bp, uv_loop_t *loop, uint64_t window_us);
/* Opens a window of window_us from now, or moves the open one's end there. */
void busy_poll_kick(struct busy_poll *bp);
void busy_poll_close(struct busy_poll *bp);

#endif
