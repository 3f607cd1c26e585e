/*
 * fnd native functions: the public API a C handler is written against.
 *
 * A native function is a shared object in the bundle. With handler "hello.handler",
 * fnd's native runtime loads hello.so from the function's folder once per worker,
 * calls `int fnd_init(void)` if the object defines it, then calls `handler` for each
 * invocation:
 *
 *     #include <fnd/handler.h>
 *
 *     int handler(const struct fnd_context *ctx, const char *event, size_t len,
 *                 struct fnd_response *res)
 *     {
 *         return fnd_response_printf(res, "{\"hello\": \"%s\"}", ctx->function_name);
 *     }
 *
 * Build it with `cc -shared -fPIC -I<fnd>/include hello.c -o hello.so`; nothing to link.
 * A handler returns 0 on success: the bytes written to res are the result. Any other
 * return value is a function error: the one set with fnd_response_error(), or a generic
 * one. The event and ctx stay valid until the handler returns.
 */
#ifndef FND_HANDLER_H
#define FND_HANDLER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct fnd_context {
    const char *request_id;           /* the invocation's id; the same on every retry */
    const char *function_name;
    const char *function_version;
    const char *invoked_function_arn;
    unsigned memory_limit_mb;
    int64_t deadline_ms;              /* wall clock, ms since the Unix epoch */
    const char *trace_id;             /* may be NULL */
    const char *client_context;       /* JSON text, may be NULL */
};

struct fnd_response;

/* Appends bytes to the result. 0, or -1 when the result would pass the size limit. */
int fnd_response_write(struct fnd_response *res, const void *data, size_t len);
int fnd_response_printf(struct fnd_response *res, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Marks the invocation as failed with an error type ("ValidationError") and message;
 * returns -1 so a handler can `return fnd_response_error(...)`. */
int fnd_response_error(struct fnd_response *res, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Milliseconds left before the invocation times out. */
int64_t fnd_remaining_ms(const struct fnd_context *ctx);

typedef int fnd_handler_fn(const struct fnd_context *ctx, const char *event, size_t len,
                           struct fnd_response *res);
typedef int fnd_init_fn(void);

#ifdef __cplusplus
}
#endif

#endif
