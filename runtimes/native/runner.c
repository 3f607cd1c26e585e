/*
 * fnd's native runtime: the program a native worker runs. It loads the function's
 * shared object once (handler "file.symbol" -> <task root>/file.so, symbol), calls its
 * optional fnd_init(), then serves invocations over the worker protocol on fd 3
 * (docs/protocol.md). It exports the fnd_response_* API of include/fnd/handler.h, so a
 * handler object links against nothing.
 */
#include "fnd/common.h"
#include "fnd/handler.h"
#include "fnd/protocol.h"
#include "fnd/zygote.h"

#include <cjson/cJSON.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#ifdef __SANITIZE_ADDRESS__
/* The sanitizer build instruments the runner too, but a function's own fault must end
 * its worker with the same signal as in production (the daemon reports "signal:
 * segmentation fault"), so AddressSanitizer leaves those signals alone. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "handle_segv=0:handle_sigbus=0:handle_sigfpe=0:handle_sigill=0";
}
#endif

#define RESPONSE_MAX (6 * 1024 * 1024 + 64 * 1024)

struct fnd_response {
    char *data;
    size_t len, cap;
    int failed;
    char error_type[128];
    char error_message[1024];
};

static int64_t wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

int fnd_response_write(struct fnd_response *res, const void *data, size_t len)
{
    if (len > RESPONSE_MAX - res->len)
        return -1;
    if (res->len + len > res->cap) {
        size_t cap = res->cap ? res->cap : 4096;
        while (cap < res->len + len)
            cap *= 2;
        char *p = realloc(res->data, cap);
        if (p == NULL)
            return -1;
        res->data = p;
        res->cap = cap;
    }
    memcpy(res->data + res->len, data, len);
    res->len += len;
    return 0;
}

int fnd_response_printf(struct fnd_response *res, const char *fmt, ...)
{
    char small[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    if ((size_t)n < sizeof(small))
        return fnd_response_write(res, small, (size_t)n);
    char *big = malloc((size_t)n + 1);
    if (big == NULL)
        return -1;
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    int rc = fnd_response_write(res, big, (size_t)n);
    free(big);
    return rc;
}

int fnd_response_error(struct fnd_response *res, const char *type, const char *fmt, ...)
{
    res->failed = 1;
    snprintf(res->error_type, sizeof(res->error_type), "%s", type ? type : "Error");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->error_message, sizeof(res->error_message), fmt, ap);
    va_end(ap);
    return -1;
}

int64_t fnd_remaining_ms(const struct fnd_context *ctx)
{
    int64_t left = ctx->deadline_ms - wall_ms();
    return left > 0 ? left : 0;
}

/* --- the channel ------------------------------------------------------------------- */

/* Bytes read from the channel but not yet taken. The daemon writes a frame's header
 * and payload at once, so one read usually brings a whole INVOKE. */
static unsigned char inbox[64 * 1024];
static size_t inbox_start, inbox_end;

/* Reads exactly len bytes of the channel: 0, 1 at EOF (the daemon is done with us),
 * -1 on an error. Payloads larger than the inbox are read in place. */
static int read_all(void *data, size_t len)
{
    char *p = data;
    for (;;) {
        size_t take = FND_MIN(len, inbox_end - inbox_start);
        memcpy(p, inbox + inbox_start, take);
        inbox_start += take;
        p += take;
        len -= take;
        if (len == 0)
            return 0;
        bool direct = len >= sizeof(inbox);
        if (!direct && fnd_channel_wait(FND_CHANNEL_FD) < 0)
            return -1;
        ssize_t n = read(FND_CHANNEL_FD, direct ? p : (char *)inbox,
                         direct ? len : sizeof(inbox));
        if (n == 0)
            return 1;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (direct) {
            p += n;
            len -= (size_t)n;
        } else {
            inbox_start = 0;
            inbox_end = (size_t)n;
        }
    }
}

/* Reads the next frame's header: 0, 1 at EOF, -1 on an error (read_all). */
static int read_header(struct fnd_frame_header *h)
{
    unsigned char header[FND_FRAME_HEADER_SIZE];
    int rc = read_all(header, sizeof(header));
    if (rc == 0)
        fnd_frame_header_decode(header, h);
    return rc;
}

static void send_frame(uint8_t type, uint8_t flags, const void *payload, size_t len)
{
    if (fnd_frame_send(FND_CHANNEL_FD, type, flags, payload, len) < 0)
        exit(1);
}

static void send_error(uint8_t type, uint8_t flags, const char *error_type, const char *message)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "errorType", error_type);
    cJSON_AddStringToObject(o, "errorMessage", message);
    cJSON_AddItemToObject(o, "stackTrace", cJSON_CreateArray());
    char *text = cJSON_PrintUnformatted(o);
    send_frame(type, flags, text, strlen(text));
    cJSON_free(text);
    cJSON_Delete(o);
}

static const char *string_member(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* In a runner started as the zygote's blank (src/zygote.c), before any function was
 * known: waits to be given one, walks the rest of the sandbox checklist and takes the
 * worker's environment. 0 once it is the worker, -1 when it was let go. */
static int become_worker(void)
{
    char *env;
    size_t len;
    if (fnd_zygote_specialise(&env, &len) != 0)
        return -1;
    clearenv();
    for (char *p = env; p < env + len; p += strlen(p) + 1)
        if (*p)
            putenv(p); /* env stays allocated: the environment points into it */
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--blank") == 0 && become_worker() != 0)
        return 0;
    const char *spec = getenv("_HANDLER");
    const char *root = getenv("LAMBDA_TASK_ROOT");
    const char *dot = spec ? strrchr(spec, '.') : NULL;
    if (dot == NULL || root == NULL) {
        send_error(FND_FRAME_INIT_ERROR, 0, "Runtime.InvalidEntrypoint", "_HANDLER must be file.symbol");
        return 1;
    }
    char path[4096];
    snprintf(path, sizeof(path), "%s/%.*s.so", root, (int)(dot - spec), spec);
    void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        send_error(FND_FRAME_INIT_ERROR, 0, "Runtime.ImportModuleError", dlerror());
        return 1;
    }
    fnd_handler_fn *handler = (fnd_handler_fn *)dlsym(lib, dot + 1);
    if (handler == NULL) {
        char msg[4096 + 256];
        snprintf(msg, sizeof(msg), "symbol %.200s not found in %s", dot + 1, path);
        send_error(FND_FRAME_INIT_ERROR, 0, "Runtime.HandlerNotFound", msg);
        return 1;
    }
    fnd_init_fn *init = (fnd_init_fn *)dlsym(lib, "fnd_init");
    if (init && init() != 0) {
        send_error(FND_FRAME_INIT_ERROR, 0, "Runtime.InitError", "fnd_init failed");
        return 1;
    }
    send_frame(FND_FRAME_READY, FND_READY_PIPELINED, NULL, 0);

    struct fnd_response res = {0};
    char *payload = NULL;
    size_t payload_cap = 0;
    char memory[32];
    snprintf(memory, sizeof(memory), "%s", getenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE") ?: "128");
    int status = 1;
    bool held = false; /* the last answer was FND_REPLY_HELD, and no DRAINED came yet */
    for (;;) {
        struct fnd_frame_header h;
        int rc = read_header(&h);
        if (rc != 0) {
            status = rc > 0 ? 0 : 1; /* EOF is the daemon's way of saying stop */
            break;
        }
        if (h.type == FND_FRAME_DRAINED && h.length == 0) {
            held = false;
            continue;
        }
        if (h.type != FND_FRAME_INVOKE || h.length < 4)
            break;
        if (h.length + 1 > payload_cap) {
            char *grown = realloc(payload, (size_t)h.length + 1);
            if (grown == NULL)
                break;
            payload = grown;
            payload_cap = (size_t)h.length + 1;
        }
        if (read_all(payload, h.length) != 0)
            break;
        /* Sent ahead of the last answer's DRAINED: that comes next. */
        struct fnd_frame_header drained;
        if (held && (read_header(&drained) != 0 || drained.type != FND_FRAME_DRAINED ||
                     drained.length != 0))
            break;
        held = false;
        uint32_t meta_len = fnd_get_u32le((unsigned char *)payload);
        if (meta_len > h.length - 4)
            break;
        cJSON *meta = cJSON_ParseWithLength(payload + 4, meta_len);
        const cJSON *deadline = cJSON_GetObjectItemCaseSensitive(meta, "deadline_ms");
        struct fnd_context ctx = {
            .request_id = string_member(meta, "request_id"),
            .function_name = getenv("AWS_LAMBDA_FUNCTION_NAME"),
            .function_version = getenv("AWS_LAMBDA_FUNCTION_VERSION"),
            .invoked_function_arn = string_member(meta, "invoked_function_arn"),
            .memory_limit_mb = (unsigned)atoi(memory),
            .deadline_ms = cJSON_IsNumber(deadline) ? (int64_t)deadline->valuedouble : 0,
            .trace_id = string_member(meta, "trace_id"),
            .client_context = string_member(meta, "client_context"),
        };
        res.len = 0;
        res.failed = 0;
        const char *event = payload + 4 + meta_len;
        size_t event_len = h.length - 4 - meta_len;
        payload[h.length] = '\0'; /* handlers may treat a text event as a C string */
        rc = handler(&ctx, event, event_len, &res);
        cJSON_Delete(meta);
        fflush(stdout);
        fflush(stderr);
        /* What the daemon has not read of this invocation's output, it must read before
         * this process runs anything else (protocol.h), when the next event may be here
         * already: only then is it worth two system calls to ask. */
        held = (h.flags & FND_INVOKE_PIPELINED) && fnd_output_unread();
        uint8_t flags = held ? FND_REPLY_HELD : 0;
        if (rc == 0 && !res.failed) {
            send_frame(FND_FRAME_RESULT, flags, res.data, res.len);
        } else if (res.failed) {
            send_error(FND_FRAME_ERROR, flags, res.error_type, res.error_message);
        } else {
            char msg[64];
            snprintf(msg, sizeof(msg), "handler returned %d", rc);
            send_error(FND_FRAME_ERROR, flags, "HandlerError", msg);
        }
    }
    free(payload);
    free(res.data);
    dlclose(lib);
    return status;
}
