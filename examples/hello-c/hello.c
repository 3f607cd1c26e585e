/* A native fnd function: answers with a greeting for the event's text. */
#include <fnd/handler.h>

int handler(const struct fnd_context *ctx, const char *event, size_t len,
            struct fnd_response *res)
{
    return fnd_response_printf(res, "{\"message\": \"Hello, %.*s!\", \"function\": \"%s\"}",
                               len ? (int)len : 5, len ? event : "world", ctx->function_name);
}
