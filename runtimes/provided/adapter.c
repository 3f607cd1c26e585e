/*
 * fnd's custom runtime adapter (runtime "provided"): the program a provided worker runs
 * inside its sandbox. It serves Lambda's Runtime API on 127.0.0.1 for one runtime, the
 * bundle's `bootstrap`, which it starts as its child with AWS_LAMBDA_RUNTIME_API set,
 * and translates between that HTTP API and the worker protocol on fd 3
 * (docs/protocol.md):
 *
 *   first GET  /2018-06-01/runtime/invocation/next   -> READY
 *   INVOKE frame                                     -> the answer to a waiting .../next
 *   POST /2018-06-01/runtime/invocation/{id}/response -> RESULT
 *   POST /2018-06-01/runtime/invocation/{id}/error    -> ERROR
 *   POST /2018-06-01/runtime/init/error               -> INIT_ERROR (then exit)
 *
 * Guarantees: the adapter knows only its own worker's invocation, so a runtime can
 * fetch and answer nothing else; an id other than the one being served is refused
 * (400 InvalidRequestID). On a shared (host) network another worker could reach the
 * port, so connections from a socket owned by another uid are refused — workers run as
 * their own uids when the daemon may create them (docs/sandbox.md). When the bootstrap
 * exits, the adapter exits the same way, so the daemon reports the runtime's own exit
 * status; when the daemon closes fd 3, the adapter kills its child and exits 0. Every
 * exit is _exit(): the status is the runtime's, untouched by exit handlers (a leak
 * checker's, in sanitizer builds).
 *
 * One thread and poll(2): the runtime is the only client and talks to one invocation
 * at a time. Its requests are parsed by runtime_api_parse.c (llhttp; request bodies
 * bounded by the response limit before they are buffered), which the fuzz driver
 * tests on its own.
 */
#include "fnd/protocol.h"
#include "runtime_api_parse.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <fcntl.h>

#define MAX_BODY (6 * 1024 * 1024)    /* the daemon's default --max-response */
#define MAX_FRAME (MAX_BODY + 1024 * 1024)
#define MAX_CONNS 16

struct conn {
    int fd;                 /* -1: free slot */
    struct runtime_api_parser parser; /* its bytes and the request being answered */
    bool keep_alive;        /* of that request */
    bool parked;            /* a .../next waiting for an invocation */
};

/* The invocation being served: taken from the INVOKE frame, kept until answered. */
static struct {
    bool present;
    bool delivered;
    char id[64];
    char arn[256];
    char trace[256];
    char client_context[8192];
    long long deadline_ms;
    struct runtime_api_buffer event;
} inv;

static struct conn conns[MAX_CONNS];
static pid_t child = -1;
static bool ready_sent;

/* --- small helpers ----------------------------------------------------------------- */

static void die(const char *what)
{
    fprintf(stderr, "fnd-runtime-provided: %s: %s\n", what, strerror(errno));
    _exit(70);
}

static void check_memory(int rc)
{
    if (rc == -ENOMEM) {
        errno = ENOMEM;
        die("realloc");
    }
}

static void send_frame(uint8_t type, const void *payload, size_t len)
{
    if (fnd_frame_send(FND_CHANNEL_FD, type, 0, payload, len) < 0)
        die("write to the daemon");
}

/* An error object {"errorType","errorMessage","stackTrace"} for the daemon. */
static void send_error_frame(uint8_t type, const char *error_type, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void send_error_frame(uint8_t type, const char *error_type, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "errorType", error_type);
    cJSON_AddStringToObject(o, "errorMessage", msg);
    cJSON_AddArrayToObject(o, "stackTrace");
    char *text = cJSON_PrintUnformatted(o);
    send_frame(type, text, strlen(text));
    cJSON_free(text);
    cJSON_Delete(o);
}

/* Copies a header value for the runtime, replacing control characters (a client
 * context is JSON text and may hold newlines). */
static void copy_header_value(char *out, size_t size, const char *in)
{
    size_t i = 0;
    for (; in && in[i] && i + 1 < size; i++)
        out[i] = (unsigned char)in[i] < 0x20 || in[i] == 0x7f ? ' ' : in[i];
    out[i] = '\0';
}

/* --- answering the runtime --------------------------------------------------------- */

static void conn_close(struct conn *c);

static void respond(struct conn *c, int status, const char *reason, const char *extra_headers,
                    const void *body, size_t len)
{
    char head[16384];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n%sContent-Length: "
                     "%zu\r\n\r\n",
                     status, reason, extra_headers ? extra_headers : "", len);
    /* One writev: a head and a body in two small writes would wait out the client's
     * delayed ACK (Nagle), some 40 ms a response. */
    struct iovec iov[2] = {{head, n > 0 ? (size_t)n : 0}, {(void *)body, len}};
    if (n < 0 || (size_t)n >= sizeof(head) || fnd_writev_all(c->fd, iov, 2) < 0)
        conn_close(c); /* its buffers too: the slot is reused */
}

static void respond_error(struct conn *c, int status, const char *reason, const char *type,
                          const char *message)
{
    char body[512];
    int n = snprintf(body, sizeof(body), "{\"errorMessage\":\"%s\",\"errorType\":\"%s\"}",
                     message, type);
    respond(c, status, reason, NULL, body, (size_t)n);
}

static void respond_accepted(struct conn *c)
{
    static const char ok[] = "{\"status\":\"OK\"}";
    respond(c, 202, "Accepted", NULL, ok, sizeof(ok) - 1);
}

static void deliver(struct conn *c)
{
    char headers[12288];
    int n = snprintf(headers, sizeof(headers),
                     "Lambda-Runtime-Aws-Request-Id: %s\r\n"
                     "Lambda-Runtime-Deadline-Ms: %lld\r\n"
                     "Lambda-Runtime-Invoked-Function-Arn: %s\r\n",
                     inv.id, inv.deadline_ms, inv.arn);
    if (inv.trace[0])
        n += snprintf(headers + n, sizeof(headers) - (size_t)n, "Lambda-Runtime-Trace-Id: %s\r\n",
                      inv.trace);
    if (inv.client_context[0])
        snprintf(headers + n, sizeof(headers) - (size_t)n,
                 "Lambda-Runtime-Client-Context: %s\r\n", inv.client_context);
    inv.delivered = true;
    c->parked = false;
    respond(c, 200, "OK", headers, inv.event.data ? inv.event.data : "", inv.event.len);
}

/* After an answer: a connection the client did not keep alive is closed. */
static void answered(struct conn *c)
{
    if (c->fd >= 0 && !c->parked && !c->keep_alive)
        conn_close(c);
}

static struct conn *parked_conn(void)
{
    for (int i = 0; i < MAX_CONNS; i++)
        if (conns[i].fd >= 0 && conns[i].parked)
            return &conns[i];
    return NULL;
}

/* Whether a request's invocation id is the one being served. */
static bool is_ours(const struct runtime_api_request *r)
{
    return inv.present && inv.delivered && r->id_len == strlen(inv.id) &&
           memcmp(r->id, inv.id, r->id_len) == 0;
}

static void finish_invocation(void)
{
    inv.present = false;
    inv.delivered = false;
    inv.event.len = 0;
}

static void handle_error_post(const struct runtime_api_request *r, uint8_t frame)
{
    /* Pass on the runtime's error object; the daemon validates it. A body that is not
     * one becomes one, with the type the header named. */
    cJSON *o = cJSON_ParseWithLength(r->body, r->body_len);
    if (cJSON_IsObject(o) && cJSON_IsString(cJSON_GetObjectItemCaseSensitive(o, "errorType"))) {
        send_frame(frame, r->body, r->body_len);
    } else {
        const cJSON *msg = cJSON_GetObjectItemCaseSensitive(o, "errorMessage");
        char text[401];
        copy_header_value(text, sizeof(text), r->body); /* the body as its message */
        send_error_frame(frame, r->error_type[0] ? r->error_type : "Runtime.Unknown", "%.400s",
                         cJSON_IsString(msg) ? msg->valuestring : text);
    }
    cJSON_Delete(o);
}

static void handle_request(struct conn *c)
{
    const struct runtime_api_request *r = &c->parser.req;
    if (r->route == RUNTIME_API_ROUTE_NEXT) {
        if (!ready_sent) {
            /* The first call for work ends the runtime's initialisation. */
            ready_sent = true;
            send_frame(FND_FRAME_READY, "", 0);
        }
        c->parked = true;
        if (inv.present && !inv.delivered)
            deliver(c);
        return;
    }
    if (!r->post) {
        respond_error(c, 404, "Not Found", "NotFound", "no such endpoint");
        return;
    }
    if (r->too_large) {
        respond_error(c, 413, "Payload Too Large", "RequestEntityTooLarge",
                      "the body exceeds the response size limit");
        if (r->route == RUNTIME_API_ROUTE_RESPONSE && is_ours(r)) {
            send_error_frame(FND_FRAME_ERROR, "Function.ResponseSizeTooLarge",
                             "Response payload size exceeded maximum allowed payload size (%d "
                             "bytes).",
                             MAX_BODY);
            finish_invocation();
        }
        return;
    }
    if (r->route == RUNTIME_API_ROUTE_INIT_ERROR) {
        if (ready_sent) {
            respond_error(c, 403, "Forbidden", "InvalidStateTransition",
                          "the runtime is already initialised");
            return;
        }
        handle_error_post(r, FND_FRAME_INIT_ERROR);
        respond_accepted(c);
        if (child > 0)
            kill(child, SIGKILL);
        _exit(1);
    }
    if (r->route == RUNTIME_API_ROUTE_RESPONSE) {
        if (!is_ours(r)) {
            respond_error(c, 400, "Bad Request", "InvalidRequestID",
                          "no invocation with this id is being served");
            return;
        }
        send_frame(FND_FRAME_RESULT, r->body, r->body_len);
        finish_invocation();
        respond_accepted(c);
        return;
    }
    if (r->route == RUNTIME_API_ROUTE_ERROR) {
        if (!is_ours(r)) {
            respond_error(c, 400, "Bad Request", "InvalidRequestID",
                          "no invocation with this id is being served");
            return;
        }
        handle_error_post(r, FND_FRAME_ERROR);
        finish_invocation();
        respond_accepted(c);
        return;
    }
    respond_error(c, 404, "Not Found", "NotFound", "no such endpoint");
}

/* --- connections ------------------------------------------------------------------- */

/* Whether the peer of a loopback connection is a socket of our own uid: on the host's
 * network, a worker of another function could otherwise reach this port. The owner is
 * read from /proc/net/tcp, where the peer's socket is the entry whose local address is
 * the connection's remote end. */
static bool peer_is_ours(int fd)
{
    struct sockaddr_in local, peer;
    socklen_t ll = sizeof(local), pl = sizeof(peer);
    if (getsockname(fd, (struct sockaddr *)&local, &ll) < 0 ||
        getpeername(fd, (struct sockaddr *)&peer, &pl) < 0)
        return false;
    FILE *f = fopen("/proc/net/tcp", "re");
    if (f == NULL)
        return false;
    char line[512];
    bool ours = false;
    unsigned lport = ntohs(local.sin_port), pport = ntohs(peer.sin_port);
    while (fgets(line, sizeof(line), f)) {
        unsigned la, lp, ra, rp, st, uid;
        if (sscanf(line, " %*u: %8X:%4X %8X:%4X %2X %*X:%*X %*X:%*X %*X %u", &la, &lp, &ra, &rp,
                   &st, &uid) == 6 &&
            lp == pport && rp == lport) {
            ours = uid == geteuid();
            break;
        }
    }
    fclose(f);
    return ours;
}

static void conn_close(struct conn *c)
{
    close(c->fd);
    c->fd = -1;
    runtime_api_parser_release(&c->parser);
}

static void on_accept(int lfd)
{
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0)
        return;
    struct conn *c = NULL;
    for (int i = 0; i < MAX_CONNS && c == NULL; i++)
        if (conns[i].fd < 0)
            c = &conns[i];
    if (c == NULL || !peer_is_ours(fd)) {
        if (c)
            fprintf(stderr, "fnd-runtime-provided: refused a connection from another user\n");
        close(fd);
        return;
    }
    memset(c, 0, sizeof(*c));
    c->fd = fd;
    int one = 1; /* answers are whole messages: send them at once */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    runtime_api_parser_init(&c->parser, MAX_BODY);
}

/* Parses what c has buffered, answering each complete request, until it needs more
 * bytes or parks on .../next. */
static void conn_parse(struct conn *c)
{
    while (c->fd >= 0 && !c->parked) {
        int rc = runtime_api_parser_next(&c->parser);
        check_memory(rc);
        if (rc < 0) {
            respond_error(c, 400, "Bad Request", "InvalidRequest", "malformed HTTP request");
            if (c->fd >= 0)
                conn_close(c);
            return;
        }
        if (rc == 0)
            return;
        c->keep_alive = c->parser.req.keep_alive;
        handle_request(c);
        answered(c);
    }
}

static void on_conn_readable(struct conn *c)
{
    char chunk[65536];
    ssize_t n = read(c->fd, chunk, sizeof(chunk));
    if (n <= 0) {
        conn_close(c); /* a parked .../next gone: the invocation waits for the next one */
        return;
    }
    /* A client that sends more while parked: kept for after the answer. */
    check_memory(runtime_api_parser_feed(&c->parser, chunk, (size_t)n));
    if (!c->parked)
        conn_parse(c);
}

/* --- the daemon's side ------------------------------------------------------------- */

static void copy_meta_string(const cJSON *meta, const char *key, char *out, size_t size)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(meta, key);
    copy_header_value(out, size, cJSON_IsString(v) ? v->valuestring : "");
}

static void on_channel_readable(void)
{
    unsigned char header[FND_FRAME_HEADER_SIZE];
    struct fnd_frame_header h;
    if (fnd_read_full(FND_CHANNEL_FD, header, sizeof(header)) < 0) {
        /* The daemon closed the channel: we are done. */
        if (child > 0)
            kill(child, SIGKILL);
        _exit(0);
    }
    fnd_frame_header_decode(header, &h);
    if (h.type != FND_FRAME_INVOKE || h.length < 4 || h.length > MAX_FRAME || inv.present) {
        fprintf(stderr, "fnd-runtime-provided: unexpected frame from the daemon\n");
        _exit(70);
    }
    char *payload = malloc(h.length);
    if (payload == NULL || fnd_read_full(FND_CHANNEL_FD, payload, h.length) < 0)
        die("read from the daemon");
    uint32_t meta_len = fnd_get_u32le((unsigned char *)payload);
    if (meta_len > h.length - 4)
        die("malformed INVOKE frame");
    cJSON *meta = cJSON_ParseWithLength(payload + 4, meta_len);
    copy_meta_string(meta, "request_id", inv.id, sizeof(inv.id));
    copy_meta_string(meta, "invoked_function_arn", inv.arn, sizeof(inv.arn));
    copy_meta_string(meta, "trace_id", inv.trace, sizeof(inv.trace));
    copy_meta_string(meta, "client_context", inv.client_context, sizeof(inv.client_context));
    const cJSON *deadline = cJSON_GetObjectItemCaseSensitive(meta, "deadline_ms");
    inv.deadline_ms = cJSON_IsNumber(deadline) ? (long long)deadline->valuedouble : 0;
    cJSON_Delete(meta);
    inv.event.len = 0;
    check_memory(runtime_api_buffer_append(&inv.event, payload + 4 + meta_len,
                                           h.length - 4 - meta_len));
    free(payload);
    inv.present = true;
    inv.delivered = false;
    struct conn *c = parked_conn();
    if (c) {
        deliver(c);
        answered(c);
        if (c->fd >= 0)
            conn_parse(c);
    }
}

/* The bootstrap ended: end the same way, so the daemon reports its status. */
static void on_child_exit(void)
{
    int status;
    if (waitpid(child, &status, 0) < 0)
        die("waitpid");
    if (WIFSIGNALED(status)) {
        signal(WTERMSIG(status), SIG_DFL);
        raise(WTERMSIG(status));
    }
    _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 1);
}

/* --- start-up ---------------------------------------------------------------------- */

static int listen_loopback(unsigned *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("socket");
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 16) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0)
        die("listen on 127.0.0.1");
    *port = ntohs(a.sin_port);
    return fd;
}

static pid_t start_bootstrap(const char *root)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/bootstrap", root);
    if (access(path, X_OK) != 0) {
        send_error_frame(FND_FRAME_INIT_ERROR, "Runtime.InvalidEntrypoint",
                         "Couldn't find valid bootstrap(s): [%s]: %s", path, strerror(errno));
        _exit(1);
    }
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0) {
        /* It stays in the worker's process group, which the daemon kills as a whole. */
        char *argv[] = {path, NULL};
        execv(path, argv);
        fprintf(stderr, "fnd-runtime-provided: exec %s: %s\n", path, strerror(errno));
        _exit(127);
    }
    return pid;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    /* The bootstrap must not inherit the daemon's channel. */
    if (fcntl(FND_CHANNEL_FD, F_SETFD, FD_CLOEXEC) < 0)
        die("fcntl fd 3");
    for (int i = 0; i < MAX_CONNS; i++)
        conns[i].fd = -1;

    unsigned port;
    int lfd = listen_loopback(&port);
    char api[32];
    snprintf(api, sizeof(api), "127.0.0.1:%u", port);
    setenv("AWS_LAMBDA_RUNTIME_API", api, 1);
    const char *root = getenv("LAMBDA_TASK_ROOT");
    child = start_bootstrap(root && *root ? root : ".");
    int pidfd = (int)syscall(SYS_pidfd_open, child, 0);
    if (pidfd < 0)
        die("pidfd_open");

    for (;;) {
        struct pollfd fds[3 + MAX_CONNS];
        struct conn *owner[3 + MAX_CONNS];
        nfds_t n = 0;
        fds[n] = (struct pollfd){.fd = pidfd, .events = POLLIN};
        owner[n++] = NULL;
        fds[n] = (struct pollfd){.fd = lfd, .events = POLLIN};
        owner[n++] = NULL;
        /* Work is taken only once the previous invocation was answered. */
        fds[n] = (struct pollfd){.fd = inv.present ? -1 : FND_CHANNEL_FD, .events = POLLIN};
        owner[n++] = NULL;
        for (int i = 0; i < MAX_CONNS; i++) {
            if (conns[i].fd >= 0) {
                fds[n] = (struct pollfd){.fd = conns[i].fd, .events = POLLIN};
                owner[n++] = &conns[i];
            }
        }
        if (poll(fds, n, -1) < 0) {
            if (errno == EINTR)
                continue;
            die("poll");
        }
        if (fds[0].revents)
            on_child_exit();
        if (fds[2].revents)
            on_channel_readable();
        if (fds[1].revents)
            on_accept(lfd);
        for (nfds_t i = 3; i < n; i++)
            if (fds[i].revents && owner[i]->fd == fds[i].fd)
                on_conn_readable(owner[i]);
    }
}
