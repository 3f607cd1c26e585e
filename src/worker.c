/*
 * Worker processes (include/fnd/worker.h).
 *
 * A worker is five libuv handles around one process: the protocol channel (fd 3 in
 * the child), its stdout and stderr pipes, a poll handle on its pidfd (readable when
 * the process exits) and one timer whose meaning follows the state: the init deadline
 * while STARTING, the invocation deadline while BUSY, the kill grace while STOPPING.
 *
 * The process is created off the loop, on libuv's threadpool: a spawn blocks until the
 * child has walked the sandbox checklist and exec'd (milliseconds; tens of them through
 * the zygote), and the loop must keep serving meanwhile. Everything the spawn reads is
 * prepared on the loop first and owned by the spawn job until it is done; the loop
 * touches nothing of the process until then (spawning: no pid to signal yet), and a
 * worker stopped in the meantime is killed as soon as its process exists. The spawn
 * job holds a reference like a handle, so the worker is freed only after it.
 *
 * Ending a worker always goes the same way, whatever the cause: terminate() kills the
 * process group and closes the channel *before* anyone is told, so nothing can write an
 * invocation's payload after its submitter was answered; the pidfd then reports the
 * exit, the process is reaped, its remaining output is drained into the log, every
 * handle is closed, and the last close callback frees the worker after on_gone.
 *
 * The daemon never trusts a worker: frame lengths are checked against the response
 * limit before any byte of the payload is buffered, frames that the current state does
 * not allow end the worker, and error objects are validated before they are passed on.
 */
#include "fnd/worker.h"

#include "fnd/frames.h"
#include "fnd/log.h"
#include "fnd/protocol.h"
#include "fnd/stream.h"
#include "fnd/zygote.h"

#include <assert.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define WORKER_READ_CHUNK (64 * 1024)
#define WORKER_LINE_MAX (8 * 1024)    /* longer output lines are logged in pieces */
#define WORKER_STOP_GRACE_MS 1000     /* an idle worker told to stop gets this long */
#define WORKER_EOF_GRACE_MS 1000      /* after closing its channel, time to exit on its own */
#define WORKER_FRAME_SLACK 1024       /* room for error objects beyond max_response */
#define WORKER_UID_BASE 100000
#define WORKER_UID_SPAN 50000

static uint64_t next_tag = 1;

static void meta_build(struct worker *w);
static void meta_release(struct event_meta *m);
static void output_release(struct worker_output *o);

const char *worker_state_name(enum worker_state s)
{
    static const char *const names[] = {
#define WORKER_STATE_NAME(id, name) name,
        WORKER_STATES(WORKER_STATE_NAME)
#undef WORKER_STATE_NAME
    };
    return names[s];
}

/* Drops one of the references the handles and the spawn job hold; the last frees w. */
static void release_ref(struct worker *w)
{
    if (--w->open_handles > 0)
        return;
    w->ev->on_gone(w);
    cgroup_destroy(&w->cg);
    close(w->proc.pidfd);
    fn_version_unref(w->version);
    buf_release(&w->rx);
    buf_release(&w->tx);
    meta_release(&w->meta);
    output_release(&w->out);
    output_release(&w->err);
    funclog_capture_release(&w->capture);
    free(w);
}

static void on_handle_closed(uv_handle_t *h)
{
    release_ref(h->data);
}

static void close_handle(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, on_handle_closed);
}

/* A Lambda-style error object {"errorType": ..., "errorMessage": ...}. */
static void error_json(struct buf *out, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void error_json(struct buf *out, const char *type, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "errorType", type);
    cJSON_AddStringToObject(o, "errorMessage", msg);
    char *text = cJSON_PrintUnformatted(o);
    buf_append_str(out, text);
    cJSON_free(text);
    cJSON_Delete(o);
}

static void drain_output(struct worker *w, struct worker_output *o);
static void flush_output(struct worker *w, struct buf *line, const char *stream);
static uint64_t peak_memory(struct worker *w);
static void shut(struct worker *w);
static void begin(struct worker *w, struct invocation *inv, bool pipelined);
static void send_drained(struct worker *w);

/*
 * Pipelining. A warm worker that answered sleeps until its next event, and waking it
 * costs more than the rest of a short invocation. When its pool is at its limit and
 * invocations queue, the controller may send a pipelined runtime its next event
 * before it answers (worker_send_ahead), so the event is there when the answer goes.
 *
 * The price is telling the two invocations' output apart: the pipes carry no marks,
 * and once the worker has answered, what it prints is the next invocation's, while
 * the daemon may not have read the last one's yet. So an INVOKE after which the next
 * may come says so (FND_INVOKE_PIPELINED), and the runtime then says, with its
 * answer, whether its pipes still hold unread bytes (FND_REPLY_HELD); asking them
 * costs two system calls before the answer, so it asks only when told. If they do, it
 * runs nothing until the daemon has read them and sent DRAINED. If they do not,
 * everything the invocation printed was read already. While an event is ahead, the
 * daemon reads output only after it has read the answers waiting in the channel
 * (on_output_readable), and no more than the pipe held before that: bytes that were
 * there before an answer the daemon has not seen yet are the running invocation's.
 */

/* Takes what the pipes hold now. One poll asks both; most invocations print nothing. */
static void take_waiting_output(struct worker *w)
{
    struct worker_output *outs[2] = {&w->out, &w->err};
    struct pollfd pfd[2];
    for (size_t i = 0; i < 2; i++)
        pfd[i] = (struct pollfd){.fd = outs[i]->eof ? -1 : outs[i]->fd, .events = POLLIN};
    if ((pfd[0].fd >= 0 || pfd[1].fd >= 0) && poll(pfd, 2, 0) < 0)
        pfd[0].revents = pfd[1].revents = POLLIN; /* try reading, as without the poll */
    for (size_t i = 0; i < 2; i++)
        if (pfd[i].fd >= 0 && pfd[i].revents)
            drain_output(w, outs[i]);
}

/* Closes the last invocation's log, when it is still open: what the function printed
 * before it answered is taken now and attributed to that invocation (unless it was all
 * read already: an answer without FND_REPLY_HELD to an INVOKE that asked), then END and
 * REPORT with the worker's peak memory. Returns the invocation's log tail
 * (funclog_end), empty when the log was closed already. */
static struct slice close_log(struct worker *w)
{
    if (!w->log_open)
        return (struct slice){NULL, 0};
    if (!w->asked_held || w->held)
        take_waiting_output(w);
    flush_output(w, &w->out.line, "stdout");
    flush_output(w, &w->err.line, "stderr");
    if (w->held)
        send_drained(w);
    w->report.max_memory_bytes = peak_memory(w);
    w->log_open = false;
    return funclog_end(w->opts->funclog, &w->capture, w->version->name, w->last_request_id,
                       &w->report);
}

/* Ends the running invocation with its outcome. The answer goes out before the
 * invocation's log is closed: closing it (the pipes' poll, the peak memory's read, END
 * and REPORT) took 3-6 µs of the 25-30 the daemon adds to a warm invocation, and a
 * client has no need to wait for it, unless it asked for the log with the answer
 * (wants_log). The log is closed before anything else can happen on the worker:
 * right after on_finished, or, when on_finished hands the worker its next invocation,
 * in worker_invoke before that one's event is sent; before the event sent ahead
 * begins, when there is one. */
static void finish(struct worker *w, enum inv_outcome outcome, struct slice body)
{
    struct invocation *inv = w->current;
    uint64_t duration_us = clock_mono_us() - inv->dispatched_us;
    w->last_duration_us = duration_us;
    w->report = (struct funclog_report){
        .duration_us = duration_us,
        .memory_mb = w->version->config.memory_mb,
        .cold_start = inv->cold_start,
        .init_us = w->init_us,
    };
    w->log_open = true;
    struct inv_result res = {
        .outcome = outcome,
        .body = body,
        .cold_start = inv->cold_start,
        .duration_us = duration_us,
        .queued_us = inv->dispatched_us - inv->submitted_us,
        .log = inv->wants_log ? close_log(w) : (struct slice){NULL, 0},
        .undelivered = w->send_failed,
    };
    w->current = NULL;
    w->send_failed = false;
    if (w->state == WORKER_BUSY) {
        uv_timer_stop(&w->timer);
        if (w->ahead) {
            struct invocation *next = w->ahead;
            w->ahead = NULL;
            close_log(w);
            begin(w, next, true); /* sent ahead: its pool is at its limit */
        } else {
            w->last_used_ms = uv_now(w->loop);
            w->state = WORKER_IDLE;
            if (w->exited) /* its answer was read after its exit (drain_channel) */
                shut(w);
            else if (w->stop_requested)
                worker_stop(w);
        }
    }
    w->ev->on_finished(w, inv, &res);
    close_log(w);
}

/* The event sent ahead never ran: the worker ends before it answered the one before.
 * It goes back to the controller as undelivered, to be queued again. */
static void give_back_ahead(struct worker *w, enum inv_outcome outcome, struct slice body)
{
    struct invocation *inv = w->ahead;
    w->ahead = NULL;
    struct inv_result res = {.outcome = outcome, .body = body, .undelivered = true};
    w->ev->on_finished(w, inv, &res);
}

/* Puts the worker out of service: kills its process group and closes the channel, so
 * that nothing more is read from or written to it. Reports nothing. */
static void shut(struct worker *w)
{
    w->state = WORKER_STOPPING;
    /* spawn_done kills what is still being created; until then the spawning thread,
     * the daemon's or the zygote's, may itself be in the worker's groups. */
    if (!w->spawning) {
        if (!w->exited)
            sandbox_kill_group(&w->proc);
        cgroup_kill_all(&w->cg); /* also what left the session (setsid, double fork) */
    }
    if (!w->channel_closed) {
        w->channel_closed = true;
        close_handle((uv_handle_t *)&w->channel);
    }
    uv_timer_stop(&w->timer);
}

/* Ends the worker for cause: shut() first, then report the running invocation with
 * outcome, or the failed start, with a Lambda error object of type and message. */
static void terminate(struct worker *w, enum inv_outcome outcome, const char *type,
                      const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void terminate(struct worker *w, enum inv_outcome outcome, const char *type,
                      const char *fmt, ...)
{
    enum worker_state was = w->state;
    shut(w);
    if (was != WORKER_BUSY && (was != WORKER_STARTING || w->reported_start))
        return;
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    struct buf body;
    buf_init(&body, 0);
    error_json(&body, type, "%s", msg);
    if (was == WORKER_BUSY) {
        log_info("invocation failed", "fn=%s request_id=%s outcome=%s error=%s", w->version->name,
                 w->current->id, inv_outcome_word(outcome), type);
        finish(w, outcome, buf_slice(&body));
        if (w->ahead)
            give_back_ahead(w, outcome, buf_slice(&body));
    } else {
        w->reported_start = true;
        log_warn("worker start failed", "fn=%s worker=%llu error=%s", w->version->name,
                 (unsigned long long)w->tag, type);
        w->ev->on_start_failed(w, buf_slice(&body));
    }
    buf_release(&body);
}

/* A REPORT's peak memory is read again only after this much time: at 64 connections
 * the read is one system call in five of an invocation's, and it cost 4-8% of the
 * throughput. The peak only grows, so a REPORT sooner than that after the last read
 * may miss what the worker allocated in under 1 ms, and the next one shows it. */
#define PEAK_MEMORY_READ_EVERY_US 1000

static uint64_t read_peak_memory(const struct worker *w)
{
    uint64_t bytes = cgroup_max_memory(&w->cg);
    if (bytes)
        return bytes;
    char path[64], text[4096];
    snprintf(path, sizeof(path), "/proc/%d/status", w->proc.pid);
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return 0;
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    const char *p = strstr(text, "VmHWM:");
    return p ? strtoull(p + 6, NULL, 10) * 1024 : 0;
}

/* The worker's peak memory: its cgroup's high-water mark, or its main process's. */
static uint64_t peak_memory(struct worker *w)
{
    uint64_t now = clock_mono_us();
    if (w->peak_memory_read_us == 0 || now - w->peak_memory_read_us >= PEAK_MEMORY_READ_EVERY_US) {
        w->peak_memory_bytes = read_peak_memory(w);
        w->peak_memory_read_us = now;
    }
    return w->peak_memory_bytes;
}

static void emit_line(struct worker *w, const char *stream, const char *text, size_t len)
{
    /* Between its worker_invoke and the close of its log, the last invocation owns
     * what the worker prints; afterwards the line is still stamped with its id. */
    const char *rid = w->last_request_id[0] ? w->last_request_id : "-";
    bool owned = w->current != NULL || w->log_open;
    funclog_line(w->opts->funclog, owned ? &w->capture : NULL, w->version->name, rid, stream,
                 text, len);
    if (!log_enabled(LOG_INFO))
        return;
    char quoted[WORKER_LINE_MAX + 64];
    log_info("function output", "fn=%s request_id=%s stream=%s text=%s",
              w->version->name, rid, stream, log_quote(quoted, sizeof(quoted), text, len));
}

static void take_output(struct worker *w, struct buf *line, const char *stream, const char *data,
                        size_t len)
{
    while (len > 0) {
        const char *nl = memchr(data, '\n', len);
        size_t take = nl ? (size_t)(nl - data) : len;
        size_t room = WORKER_LINE_MAX - line->len;
        if (take > room)
            take = room;
        buf_append(line, data, take);
        data += take;
        len -= take;
        bool complete = nl && data == nl;
        if (complete) {
            data++;
            len--;
        }
        if (complete || line->len >= WORKER_LINE_MAX) {
            emit_line(w, stream, line->data, line->len);
            buf_reset(line);
        }
    }
}

static void flush_output(struct worker *w, struct buf *line, const char *stream)
{
    if (line->len > 0) {
        emit_line(w, stream, line->data, line->len);
        buf_reset(line);
    }
}

/* Reads what o holds, up to limit bytes, into the log; at EOF stops watching it.
 * Bounded: the function's children may still be writing. */
static void read_output(struct worker *w, struct worker_output *o, size_t limit)
{
    static char chunk[WORKER_READ_CHUNK]; /* consumed before the next read: one loop thread */
    const char *stream = o == &w->out ? "stdout" : "stderr";
    for (int rounds = 0; !o->eof && limit > 0 && rounds < 64; rounds++) {
        ssize_t n = read(o->fd, chunk, FND_MIN(sizeof(chunk), limit));
        if (n > 0) {
            take_output(w, &o->line, stream, chunk, (size_t)n);
            limit -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        o->eof = true;
        flush_output(w, &o->line, stream);
        uv_poll_stop(&o->poll);
    }
}

/* Reads what is waiting in o and ends its partial last line. */
static void drain_output(struct worker *w, struct worker_output *o)
{
    read_output(w, o, SIZE_MAX);
    flush_output(w, &o->line, o == &w->out ? "stdout" : "stderr");
}

static void drain_channel(struct worker *w);

static void on_output_readable(uv_poll_t *p, int status, int events)
{
    struct worker *w = p->data;
    struct worker_output *o = p == &w->out.poll ? &w->out : &w->err;
    size_t limit = SIZE_MAX;
    if (w->ahead != NULL && status == 0) {
        /* Pipelining (above): what the pipe holds now was printed before any answer
         * the daemon reads from the channel next, so the answers come first. */
        int waiting = 0;
        if (ioctl(o->fd, FIONREAD, &waiting) < 0)
            waiting = 0;
        drain_channel(w);
        if (waiting == 0 && !(events & UV_DISCONNECT))
            return;
        limit = waiting > 0 ? (size_t)waiting : SIZE_MAX; /* after a hang-up nothing comes */
    }
    read_output(w, o, limit);
}

static void output_open(struct worker *w, struct worker_output *o, int fd)
{
    o->fd = fd;
    o->eof = false;
    buf_init(&o->line, 0);
    int flags = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, flags | O_NONBLOCK); /* the daemon's end only: the worker's blocks */
    uv_poll_init(w->loop, &o->poll, fd);
    o->poll.data = w;
}

static void output_release(struct worker_output *o)
{
    close(o->fd);
    buf_release(&o->line);
}

/* --- the protocol channel ---------------------------------------------------------- */

static void handle_error_frame(struct worker *w, struct slice payload)
{
    /* Pass on only a well-formed error object; anything else is replaced. */
    cJSON *o = cJSON_ParseWithLength(payload.ptr, payload.len);
    bool ok = cJSON_IsObject(o) && cJSON_IsString(cJSON_GetObjectItemCaseSensitive(o, "errorType"));
    cJSON_Delete(o);
    if (ok) {
        finish(w, INV_FUNCTION_ERROR, payload);
        return;
    }
    struct buf body;
    buf_init(&body, 0);
    error_json(&body, "Runtime.InvalidError", "the runtime reported a malformed error");
    finish(w, INV_FUNCTION_ERROR, buf_slice(&body));
    buf_release(&body);
}

static void handle_frame(struct worker *w, uint8_t type, uint8_t flags, struct slice payload)
{
    switch (w->state) {
    case WORKER_STARTING:
        if (type == FND_FRAME_READY && payload.len == 0) {
            if (w->exited)
                return; /* ready, then gone at once: its exit is the start's failure */
            uv_timer_stop(&w->timer);
            w->ready_us = clock_mono_us();
            w->init_us = w->ready_us - w->spawned_us;
            w->state = WORKER_IDLE;
            w->last_used_ms = uv_now(w->loop);
            w->reported_start = true;
            w->pipelined = (flags & FND_READY_PIPELINED) != 0;
            log_debug("worker ready", "fn=%s worker=%llu pid=%d init_us=%llu", w->version->name,
                      (unsigned long long)w->tag, w->proc.pid, (unsigned long long)w->init_us);
            w->ev->on_ready(w);
            /* The start is over (its invocation, if one waited, is sent): the group
             * it took is made again, not while the next start waits. */
            cgroup_restock(w->opts->cgroups);
            if (w->stop_requested && w->state == WORKER_IDLE)
                worker_stop(w);
            return;
        }
        if (type == FND_FRAME_INIT_ERROR) {
            cJSON *o = cJSON_ParseWithLength(payload.ptr, payload.len);
            bool ok = cJSON_IsObject(o);
            cJSON_Delete(o);
            w->reported_start = true;
            shut(w);
            struct buf body;
            buf_init(&body, 0);
            if (ok)
                buf_append(&body, payload.ptr, payload.len);
            else
                error_json(&body, "Runtime.InitError", "the runtime failed to start");
            log_warn("worker init failed", "fn=%s worker=%llu", w->version->name,
                     (unsigned long long)w->tag);
            w->ev->on_start_failed(w, buf_slice(&body));
            buf_release(&body);
            return;
        }
        break;
    case WORKER_BUSY:
        w->held = (flags & FND_REPLY_HELD) != 0; /* whatever its READY said: it waits */
        if (type == FND_FRAME_RESULT) {
            finish(w, INV_SUCCESS, payload);
            return;
        }
        if (type == FND_FRAME_ERROR) {
            handle_error_frame(w, payload);
            return;
        }
        break;
    case WORKER_IDLE:
    case WORKER_STOPPING:
    default:
        break;
    }
    terminate(w, INV_CRASH, "Runtime.ProtocolError",
              "the runtime sent an unexpected frame (type %u) while %s", type,
              worker_state_name(w->state));
}

static void on_eof_grace(uv_timer_t *t)
{
    struct worker *w = t->data;
    terminate(w, INV_CRASH, "Runtime.ExitError", "Runtime closed its channel");
}

static void on_channel_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)suggested;
    struct worker *w = h->data;
    buf_reserve(&w->rx, WORKER_READ_CHUNK); /* unbounded buf: frames are checked below */
    b->base = w->rx.data + w->rx.len;
    b->len = w->rx.cap - w->rx.len - 1;
}

static bool on_frame(void *data, uint8_t type, uint8_t flags, struct slice payload)
{
    struct worker *w = data;
    handle_frame(w, type, flags, payload);
    return !w->channel_closed;
}

/* Consumes every complete frame in w->rx. */
static void parse_frames(struct worker *w)
{
    uint32_t length = 0;
    int rc = frames_consume(&w->rx, w->opts->max_response + WORKER_FRAME_SLACK, on_frame, w,
                            &length);
    if (rc == -EPROTO)
        terminate(w, INV_CRASH, "Runtime.ProtocolError",
                  "the runtime sent a malformed frame header");
    else if (rc == -EMSGSIZE)
        terminate(w, INV_CRASH, "Function.ResponseSizeTooLarge",
                  "Response payload size (%u bytes) exceeded maximum allowed payload size "
                  "(%zu bytes).",
                  length, w->opts->max_response);
}

static void on_channel_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    struct worker *w = s->data;
    if (nread > 0) {
        w->rx.len += (size_t)nread;
        parse_frames(w);
        return;
    }
    if (nread == 0)
        return;
    /* The runtime closed its end. Give it a moment to exit on its own so its exit
     * status explains what happened; then kill it. */
    uv_read_stop(s);
    uv_timer_start(&w->timer, on_eof_grace, WORKER_EOF_GRACE_MS, 0);
}

/* Reads what the channel still holds once the process is gone: a runtime that sent
 * its init error or result and exited at once has that frame honoured, whichever of
 * the channel and the exit the loop happened to see first. Bounded like a frame. */
static void drain_channel(struct worker *w)
{
    uv_os_fd_t fd;
    if (w->channel_closed || uv_fileno((uv_handle_t *)&w->channel, &fd) != 0)
        return;
    size_t limit = w->opts->max_response + WORKER_FRAME_SLACK + FND_FRAME_HEADER_SIZE;
    while (!w->channel_closed && w->rx.len < limit &&
           (w->state == WORKER_STARTING || w->state == WORKER_BUSY)) {
        buf_reserve(&w->rx, WORKER_READ_CHUNK);
        ssize_t n = read(fd, w->rx.data + w->rx.len, w->rx.cap - w->rx.len - 1);
        if (n <= 0)
            return;
        w->rx.len += (size_t)n;
        parse_frames(w);
    }
}

/* --- process exit ------------------------------------------------------------------ */

static void describe_status(int status, char *out, size_t size)
{
    if (WIFEXITED(status)) {
        snprintf(out, size, "Runtime exited with error: exit status %d", WEXITSTATUS(status));
    } else {
        int sig = status & 0x7f;
        char name[64];
        snprintf(name, sizeof(name), "%s", strsignal(sig));
        name[0] = (char)(name[0] >= 'A' && name[0] <= 'Z' ? name[0] + 32 : name[0]);
        snprintf(out, size, "Runtime exited with error: signal: %s", name);
    }
}

static void on_exit_readable(uv_poll_t *p, int status, int events)
{
    (void)status;
    (void)events;
    struct worker *w = p->data;
    uv_poll_stop(p);
    /* Leftovers (a grandchild the function started, even one in its own session) go
     * with it. */
    sandbox_kill_group(&w->proc);
    cgroup_kill_all(&w->cg);
    int wstatus = sandbox_reap(&w->proc);
    w->exited = true;
    /* The answers first: once the worker has answered, what follows in its pipes is
     * the next invocation's (pipelining, above). */
    drain_channel(w);
    drain_output(w, &w->out);
    drain_output(w, &w->err);

    char why[160];
    if (wstatus < 0)
        snprintf(why, sizeof(why), "Runtime exited (wait failed: %s)", strerror(-wstatus));
    else
        describe_status(wstatus, why, sizeof(why));
    log_debug("worker exited", "fn=%s worker=%llu pid=%d status=\"%s\"", w->version->name,
              (unsigned long long)w->tag, w->proc.pid, why);
    if (cgroup_oom_killed(&w->cg))
        terminate(w, INV_CRASH, "Runtime.OutOfMemory", "%s (out of memory: limit %u MB)", why,
                  w->version->config.memory_mb);
    else
        terminate(w, INV_CRASH, "Runtime.ExitError", "%s", why);

    close_handle((uv_handle_t *)&w->out.poll);
    close_handle((uv_handle_t *)&w->err.poll);
    close_handle((uv_handle_t *)&w->timer);
    close_handle((uv_handle_t *)&w->exit_watch);
}

/* --- timers ------------------------------------------------------------------------ */

static void on_init_timeout(uv_timer_t *t)
{
    struct worker *w = t->data;
    terminate(w, INV_INIT_ERROR, "Runtime.InitTimeout",
              "the runtime did not become ready within %llu ms",
              (unsigned long long)w->opts->init_timeout_ms);
}

static void on_invocation_timeout(uv_timer_t *t)
{
    struct worker *w = t->data;
    terminate(w, INV_TIMEOUT, "TimeoutError", "Task timed out after %.2f seconds",
              w->version->config.timeout_ms / 1000.0);
}

static void on_stop_grace(uv_timer_t *t)
{
    struct worker *w = t->data;
    if (!w->exited)
        sandbox_kill_group(&w->proc);
}

/* --- public ------------------------------------------------------------------------ */

/* A worker's process being created on the threadpool, with everything the spawn
 * reads; the loop frees it in spawn_done. */
struct spawn_job {
    uv_work_t req;
    struct worker *w;      /* the loop's: not touched on the threadpool */
    const struct worker_options *opts;
    const struct fn_version *version;
    struct zygote *zygote; /* python3 workers through the fork server, else NULL */
    struct sandbox_spec spec;
    struct runtime_command cmd;
    struct fsroot_plan *plan; /* mapped by spawn_work for the spawn only */
    int join[2];        /* the cgroup.procs files the child joins */
    int child_ends[3];  /* the child's ends of the channel and the output pipes */
    struct sandbox_process proc;
    const char *how;
    int rc;
};

/* On a threadpool thread: the root's plan (it stats a few dozen paths) and the spawn,
 * which read the job alone. The plan is large (paths of PATH_MAX each) and lives only
 * for the spawn: mapped for it and unmapped after, so that many workers starting at
 * once do not leave the daemon's heap at their high-water mark. */
static void spawn_work(uv_work_t *req)
{
    struct spawn_job *j = container_of(req, struct spawn_job, req);
    const struct worker_options *opts = j->opts;
    const struct fn_version *v = j->version;
    j->how = "exec";
    if (opts->fsroot_base) {
        j->plan = mmap(NULL, sizeof(*j->plan), PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (j->plan == MAP_FAILED) {
            j->plan = NULL;
            j->rc = -ENOMEM;
            return;
        }
        j->rc = fsroot_plan_build(j->plan, opts->fsroot_base, v->code_dir,
                                  opts->paths->runtime_dir,
                                  runtime_program_outside(opts->paths, v->config.runtime),
                                  opts->tmp_bytes);
        if (j->rc < 0)
            return;
        j->spec.fsroot = j->plan;
    }
    j->rc = -ECHILD;
    if (j->zygote) {
        bool blank, native = v->config.runtime == RUNTIME_NATIVE;
        j->rc = zygote_spawn(j->zygote, &j->spec, native, &j->proc, &blank);
        j->how = blank ? "blank" : "zygote";
        if (j->rc == -ENOENT && native)
            j->rc = -ECHILD; /* no blank of the runner ready: exec it */
    }
    if (j->rc == -ECHILD) { /* no zygote, or it just failed: exec the runtime */
        j->rc = sandbox_spawn(&j->spec, &j->proc);
        j->how = "exec";
    }
    munmap(j->plan, sizeof(*j->plan));
    j->plan = NULL;
    j->spec.fsroot = NULL;
}

static void spawn_job_free(struct spawn_job *j)
{
    runtime_command_release(&j->cmd);
    if (j->plan)
        munmap(j->plan, sizeof(*j->plan));
    for (int i = 0; i < 2; i++)
        if (j->join[i] >= 0)
            close(j->join[i]);
    for (int i = 0; i < 3; i++)
        if (j->child_ends[i] >= 0)
            close(j->child_ends[i]);
    free(j);
}

/* Back on the loop: the process exists (or could not be created). */
static void spawn_done(uv_work_t *req, int status)
{
    struct spawn_job *j = container_of(req, struct spawn_job, req);
    struct worker *w = j->w;
    int rc = status < 0 ? status : j->rc;
    w->spawning = false;
    if (rc == 0)
        w->proc = j->proc;
    log_debug("worker started", "fn=%s worker=%llu pid=%d via=%s spawn_us=%llu rc=%d",
              w->version->name, (unsigned long long)w->tag, w->proc.pid, j->how,
              (unsigned long long)(clock_mono_us() - w->spawned_us), rc);
    spawn_job_free(j);
    if (rc < 0) {
        /* No process: fail the start (unless it was stopped meanwhile) and close. */
        w->exited = true;
        terminate(w, INV_INIT_ERROR, "Runtime.StartError", "the worker could not start: %s",
                  strerror(-rc));
        close_handle((uv_handle_t *)&w->out.poll);
        close_handle((uv_handle_t *)&w->err.poll);
        close_handle((uv_handle_t *)&w->timer);
        release_ref(w);
        return;
    }
    uv_poll_init(w->loop, &w->exit_watch, w->proc.pidfd);
    w->exit_watch.data = w;
    w->open_handles++;
    uv_poll_start(&w->exit_watch, UV_READABLE, on_exit_readable);
    if (w->state == WORKER_STOPPING) {
        /* Stopped or killed while it was being created: its exit ends it as usual. */
        sandbox_kill_group(&w->proc);
        cgroup_kill_all(&w->cg);
    } else {
        uv_read_start((uv_stream_t *)&w->channel, on_channel_alloc, on_channel_read);
        uv_poll_start(&w->out.poll, UV_READABLE | UV_DISCONNECT, on_output_readable);
        uv_poll_start(&w->err.poll, UV_READABLE | UV_DISCONNECT, on_output_readable);
        uint64_t spent_ms = (clock_mono_us() - w->spawned_us) / 1000;
        uint64_t left_ms = w->opts->init_timeout_ms > spent_ms ? w->opts->init_timeout_ms - spent_ms : 1;
        uv_timer_start(&w->timer, on_init_timeout, left_ms, 0);
    }
    release_ref(w);
}

int worker_start(struct worker **out, uv_loop_t *loop, const struct worker_options *opts,
                 struct fn_version *v, const struct worker_events *ev, void *owner,
                 bool ahead_of_need)
{
    int sv[2] = {-1, -1}, outp[2] = {-1, -1}, errp[2] = {-1, -1};
    int rc;

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0 ||
        pipe2(outp, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
        rc = -errno;
        log_error("worker pipes failed", "fn=%s err=\"%s\"", v->name, strerror(-rc));
        goto fail;
    }

    struct worker *w = xcalloc(1, sizeof(*w));
    struct spawn_job *j = xcalloc(1, sizeof(*j));
    j->join[0] = j->join[1] = -1;
    j->child_ends[0] = j->child_ends[1] = j->child_ends[2] = -1;
    w->tag = next_tag++;
    rc = cgroup_take(opts->cgroups, &w->cg, j->join, (uint64_t)v->config.memory_mb << 20);
    if (rc < 0)
        goto fail_worker;
    bool via_zygote = v->config.runtime == RUNTIME_PYTHON3 || v->config.runtime == RUNTIME_NATIVE;
    runtime_command_build(&j->cmd, opts->paths, v, w->tag,
                          opts->fsroot_base ? FSROOT_TASK_ROOT : NULL, ahead_of_need);
    j->spec = (struct sandbox_spec){
        .path = j->cmd.path,
        .argv = j->cmd.argv,
        .envp = j->cmd.envp,
        .cwd = j->cmd.cwd,
        .channel_fd = sv[1],
        .stdout_fd = outp[1],
        .stderr_fd = errp[1],
        .cgroup_fds = {j->join[0], j->join[1]},
        .home_fds = {opts->cgroups->home_fds[0], opts->cgroups->home_fds[1]},
        .max_open_files = 1024,
        .max_file_size = UINT64_C(4) << 30,
        .max_cpu_seconds = opts->cpu_seconds,
        .seccomp = opts->seccomp,
        .namespaces = opts->namespaces,
        .own_network = v->config.network == NETWORK_NONE,
        .sched_batch = opts->sched_batch,
        .fsroot = NULL, /* planned in spawn_work */
        /* A uid per worker (a window of 50,000 ids above 100,000, no /etc/passwd entry
         * on the host), so workers can neither signal nor inspect one another. */
        .uid = opts->drop_privileges ? (uid_t)(WORKER_UID_BASE + w->tag % WORKER_UID_SPAN) : 0,
        .gid = opts->drop_privileges ? (gid_t)(WORKER_UID_BASE + w->tag % WORKER_UID_SPAN) : 0,
    };
    j->child_ends[0] = sv[1];
    j->child_ends[1] = outp[1];
    j->child_ends[2] = errp[1];
    /* python3 workers are forked by the zygote; native ones may be its blanks, which
     * exec the runner ahead of need (zygote.c). */
    j->zygote = via_zygote ? opts->zygote : NULL;
    j->w = w;
    j->opts = opts;
    j->version = v;
    j->req.data = j;

    list_init(&w->link);
    list_init(&w->idle_link);
    list_init(&w->lru_link);
    w->owner = owner;
    w->ev = ev;
    w->opts = opts;
    w->loop = loop;
    w->version = v;
    fn_version_ref(v);
    w->state = WORKER_STARTING;
    w->spawning = true;
    w->proc.pidfd = -1;
    buf_init(&w->rx, 0);
    buf_init(&w->tx, 0);
    meta_build(w);
    funclog_capture_init(&w->capture);

    uv_pipe_init(loop, &w->channel, 0);
    output_open(w, &w->out, outp[0]);
    output_open(w, &w->err, errp[0]);
    uv_timer_init(loop, &w->timer);
    /* Four handles now (the pidfd's poll joins when the process exists) and the job. */
    w->open_handles = 5;
    w->channel.data = w->timer.data = w;
    w->last_duration_us = UINT64_MAX;
    w->write_req.data = w->drained_req.data = w;
    uv_pipe_open(&w->channel, sv[0]);
    w->spawned_us = clock_mono_us();
    /* The threadpool's threads live as long as the daemon, which matters to the child:
     * its PR_SET_PDEATHSIG fires when the thread that created it exits. */
    int queued = uv_queue_work(loop, &j->req, spawn_work, spawn_done);
    assert(queued == 0); /* it fails only without a work callback */
    (void)queued;
    *out = w;
    return 0;

fail_worker:
    cgroup_destroy(&w->cg);
    spawn_job_free(j);
    free(w);
fail:
    for (int i = 0; i < 2; i++) {
        if (sv[i] >= 0)
            close(sv[i]);
        if (outp[i] >= 0)
            close(outp[i]);
        if (errp[i] >= 0)
            close(errp[i]);
    }
    return rc;
}

/* The channel broke while an event was written. A runtime runs its handler only on a
 * whole INVOKE frame: one that was not written whole was never run. That is the event
 * ahead when there is one (nothing else is written to a worker that has one), else the
 * running invocation's, which is then undelivered. */
static void event_not_sent(struct worker *w, int status)
{
    w->send_failed = w->ahead == NULL;
    terminate(w, INV_CRASH, "Runtime.ExitError", "could not send the event: %s",
              uv_strerror(status));
}

static void on_invoke_written(uv_write_t *req, int status)
{
    struct worker *w = req->data;
    if (status < 0 && status != UV_ECANCELED && w->state == WORKER_BUSY)
        event_not_sent(w, status);
}

static void on_drained_written(uv_write_t *req, int status)
{
    struct worker *w = req->data;
    if (status < 0 && status != UV_ECANCELED && w->state == WORKER_BUSY)
        terminate(w, INV_CRASH, "Runtime.ExitError", "could not send DRAINED: %s",
                  uv_strerror(status));
}

/* Lets a runtime that held its answer (FND_REPLY_HELD) go on: its output is read. */
static void send_drained(struct worker *w)
{
    w->held = false;
    if (w->channel_closed)
        return;
    fnd_frame_header_encode(w->drained, FND_FRAME_DRAINED, 0);
    uv_buf_t b = uv_buf_init((char *)w->drained, sizeof(w->drained));
    uv_buf_t *bufs = &b;
    unsigned nbufs = 1;
    int rc = stream_write_now((uv_stream_t *)&w->channel, &bufs, &nbufs);
    if (rc == 0 && nbufs > 0)
        rc = uv_write(&w->drained_req, (uv_stream_t *)&w->channel, bufs, nbufs,
                      on_drained_written);
    if (rc < 0 && w->state == WORKER_BUSY)
        terminate(w, INV_CRASH, "Runtime.ExitError", "could not send DRAINED: %s",
                  uv_strerror(rc));
}

/* Writes at once what the channel takes, and queues only the rest (stream.h). */
static int send_now(struct worker *w, uv_buf_t *bufs, unsigned nbufs)
{
    int rc = stream_write_now((uv_stream_t *)&w->channel, &bufs, &nbufs);
    if (rc < 0 || nbufs == 0)
        return rc;
    return uv_write(&w->write_req, (uv_stream_t *)&w->channel, bufs, nbufs, on_invoke_written);
}

/* --- the event ------------------------------------------------------------------- */

/* Room for any uint64_t in decimal, the deadline's raw text. */
#define META_NUMBER_PLACEHOLDER "00000000000000000000"

/* Builds the worker's metadata tree (worker.h, struct event_meta): what the runtime
 * needs per invocation, the rest is in its environment. The ARN is the worker's for its
 * life, a published version's qualified. */
static void meta_build(struct worker *w)
{
    struct event_meta *m = &w->meta;
    char *arn = runtime_function_arn(w->opts->region, w->version->name);
    if (w->version->published) {
        char *qualified = xasprintf("%s:%llu", arn, (unsigned long long)w->version->published);
        free(arn);
        arn = qualified;
    }
    m->obj = cJSON_CreateObject();
    m->request_id = cJSON_CreateStringReference("");
    cJSON_AddItemToObjectCS(m->obj, "request_id", m->request_id);
    /* A raw item, not a number: cJSON prints a double that does not fit an int with
     * "%1.15g" and reads it back with sscanf to check it, for every event. */
    m->deadline = cJSON_CreateRaw(META_NUMBER_PLACEHOLDER);
    cJSON_AddItemToObjectCS(m->obj, "deadline_ms", m->deadline);
    cJSON_AddStringToObject(m->obj, "invoked_function_arn", arn);
    /* Keys, the id, the number, the ARN escaped at worst 6x, and the 5 bytes that
     * cJSON_PrintPreallocated asks beyond what it writes. */
    m->room = 128 + 6 * strlen(arn);
    free(arn);
    m->trace_id = cJSON_CreateStringReference("");
    m->client_context = cJSON_CreateStringReference("");
}

static void meta_release(struct event_meta *m)
{
    cJSON_Delete(m->obj); /* references: their strings are not freed */
    cJSON_Delete(m->trace_id);
    cJSON_Delete(m->client_context);
}

/* Attaches an optional member that refers to value, when there is one. The room its
 * printing needs at most: every byte escaped as \u00XX, the key and the quotes. */
static size_t meta_attach(struct event_meta *m, cJSON *item, const char *key, char *value)
{
    if (value == NULL)
        return 0;
    item->valuestring = value;
    cJSON_AddItemToObjectCS(m->obj, key, item);
    return 6 * strlen(value) + 32;
}

/* Writes inv's INVOKE header and metadata into w->tx; 0, or -ENOBUFS if the metadata
 * did not print (it cannot: the room is a bound). */
static int encode_event(struct worker *w, struct invocation *inv, bool pipelined)
{
    struct event_meta *m = &w->meta;
    m->request_id->valuestring = inv->id;
    uint64_t deadline_ms = (uint64_t)clock_wall_ms() + w->version->config.timeout_ms;
    snprintf(m->deadline->valuestring, sizeof(META_NUMBER_PLACEHOLDER), "%llu",
             (unsigned long long)deadline_ms);
    size_t room = m->room;
    room += meta_attach(m, m->trace_id, "trace_id", inv->trace_id);
    room += meta_attach(m, m->client_context, "client_context", inv->client_context);
    buf_reset(&w->tx);
    buf_reserve(&w->tx, FND_FRAME_HEADER_SIZE + 4 + room);
    char *text = w->tx.data + FND_FRAME_HEADER_SIZE + 4;
    bool printed = room <= INT_MAX && cJSON_PrintPreallocated(m->obj, text, (int)room, false);
    if (inv->trace_id)
        cJSON_DetachItemViaPointer(m->obj, m->trace_id);
    if (inv->client_context)
        cJSON_DetachItemViaPointer(m->obj, m->client_context);
    if (!printed)
        return -ENOBUFS;
    size_t meta_len = strlen(text);
    unsigned char *p = (unsigned char *)w->tx.data;
    fnd_frame_header_encode(p, FND_FRAME_INVOKE, (uint32_t)(4 + meta_len + inv->payload.len));
    p[5] = pipelined ? FND_INVOKE_PIPELINED : 0;
    fnd_put_u32le(p + FND_FRAME_HEADER_SIZE, (uint32_t)meta_len);
    w->tx.len = FND_FRAME_HEADER_SIZE + 4 + meta_len;
    return 0;
}

/* Sends inv's INVOKE, with FND_INVOKE_PIPELINED when pipelined; a failure ends the
 * worker (event_not_sent). */
static void send_event(struct worker *w, struct invocation *inv, bool pipelined)
{
    int rc = encode_event(w, inv, pipelined);
    if (rc == 0) {
        /* The event goes out straight from the invocation's buffer: no copy. */
        uv_buf_t bufs[2] = {uv_buf_init(w->tx.data, (unsigned)w->tx.len),
                            uv_buf_init(inv->payload.data, (unsigned)inv->payload.len)};
        rc = send_now(w, bufs, inv->payload.len ? 2 : 1);
    }
    if (rc < 0)
        event_not_sent(w, rc);
}

/* inv becomes the running invocation: its log opens and its deadline runs. pipelined:
 * its INVOKE says FND_INVOKE_PIPELINED (a runtime that is not pipelined is never told). */
static void begin(struct worker *w, struct invocation *inv, bool pipelined)
{
    w->state = WORKER_BUSY;
    w->current = inv;
    w->asked_held = pipelined && w->pipelined;
    memcpy(w->last_request_id, inv->id, sizeof(w->last_request_id));
    inv->dispatched_us = clock_mono_us();
    funclog_start(w->opts->funclog, &w->capture, w->version->name, inv->id);
    uv_timer_start(&w->timer, on_invocation_timeout, w->version->config.timeout_ms, 0);
}

void worker_invoke(struct worker *w, struct invocation *inv, bool may_send_ahead)
{
    assert(w->state == WORKER_IDLE); /* the controller only hands work to idle workers */
    close_log(w); /* the previous invocation's, when its on_finished brought us here */
    begin(w, inv, may_send_ahead);
    send_event(w, inv, w->asked_held);
}

/* Only invocations this short gain from pipelining (a worker's wake-up costs 10-30 µs),
 * and an event sent ahead tells a deadline counted from its sending: the function sees
 * up to its predecessor's run less time left than it has. */
#define WORKER_AHEAD_MAX_US 1000

bool worker_takes_ahead(const struct worker *w)
{
    return w->state == WORKER_BUSY && w->asked_held && w->ahead == NULL && !w->stop_requested &&
           !w->channel_closed && w->last_duration_us < WORKER_AHEAD_MAX_US &&
           uv_stream_get_write_queue_size((const uv_stream_t *)&w->channel) == 0;
}

void worker_send_ahead(struct worker *w, struct invocation *inv)
{
    assert(worker_takes_ahead(w));
    w->ahead = inv;
    send_event(w, inv, true);
}

void worker_stop(struct worker *w)
{
    switch (w->state) {
    case WORKER_BUSY:
        w->stop_requested = true;
        return;
    case WORKER_STARTING:
        w->stop_requested = true;
        w->reported_start = true; /* asked for: not a failure to report */
        shut(w);
        return;
    case WORKER_IDLE:
        /* Closing the channel is the polite request: the runtime sees EOF and exits. */
        w->state = WORKER_STOPPING;
        if (!w->channel_closed) {
            w->channel_closed = true;
            close_handle((uv_handle_t *)&w->channel);
        }
        uv_timer_start(&w->timer, on_stop_grace, WORKER_STOP_GRACE_MS, 0);
        return;
    case WORKER_STOPPING:
    default:
        return;
    }
}

void worker_kill(struct worker *w)
{
    w->reported_start = true;
    terminate(w, INV_CANCELLED, "Runtime.Cancelled", "the invocation was cancelled");
}
