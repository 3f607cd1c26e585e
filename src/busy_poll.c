/*
 * Busy polling (include/fnd/busy_poll.h). A warm invocation is two hand-offs between
 * processes: the daemon writes the event and waits for the worker's reply, then
 * writes the response and waits for the client's next request. Each wait used to be
 * a sleep in epoll_wait, and on these virtual machines waking a sleeping task costs
 * tens of microseconds (more when its CPU had gone idle), as much as the rest of the
 * invocation. So, for window_us after each hand-off to a worker, the loop keeps
 * polling with a zero timeout instead of sleeping: a reply or a request that comes in
 * the window is picked up without a wake-up. At one connection this cut the native
 * no-op's p50 by a fifth (docs/benchmarks.md). The price is CPU: a window nobody
 * answers in burns window_us of a core. A daemon that serves nothing opens no window.
 *
 * The window is a libuv idle handle, which makes uv_run poll without blocking while
 * it is active; it is unreferenced, so it never keeps the loop alive.
 */
#include "fnd/busy_poll.h"

#include "fnd/common.h"

static void on_idle(uv_idle_t *h)
{
    struct busy_poll *bp = h->data;
    if (clock_mono_us() >= bp->until_us)
        uv_idle_stop(h);
}

void busy_poll_init(struct busy_poll *bp, uv_loop_t *loop, uint64_t window_us)
{
    bp->window_us = window_us;
    bp->until_us = 0;
    uv_idle_init(loop, &bp->idle);
    bp->idle.data = bp;
    uv_unref((uv_handle_t *)&bp->idle);
}

void busy_poll_kick(struct busy_poll *bp)
{
    if (bp == NULL || bp->window_us == 0)
        return;
    bp->until_us = clock_mono_us() + bp->window_us;
    if (!uv_is_active((uv_handle_t *)&bp->idle))
        uv_idle_start(&bp->idle, on_idle);
}

void busy_poll_close(struct busy_poll *bp)
{
    uv_close((uv_handle_t *)&bp->idle, NULL);
}
