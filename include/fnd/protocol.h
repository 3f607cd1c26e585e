/*
 * The worker protocol: frames exchanged between the daemon and a worker process over
 * the stream socket the worker inherits as fd 3 (docs/protocol.md). Shared by the
 * daemon and the native runtime, so it is header-only and depends on nothing.
 *
 *   frame   = header payload
 *   header  = length:u32le type:u8 flags:u8 reserved:u16   (8 bytes)
 *   INVOKE  payload = meta_len:u32le meta(JSON object) event(bytes)
 *
 * A runtime that says so in its READY (FND_READY_PIPELINED) may be sent its next
 * INVOKE before it has answered one whose INVOKE said so (FND_INVOKE_PIPELINED); it
 * then tells, with that answer, whether what the invocation printed may still be
 * unread (FND_REPLY_HELD), and if so waits for DRAINED before it runs anything else
 * (docs/protocol.md, "Pipelining").
 *
 * The daemon never trusts a worker's lengths: a frame longer than the daemon's
 * limit, an unknown type, a non-zero reserved field or a frame the current state
 * does not allow gets the worker killed.
 */
#ifndef FND_PROTOCOL_H
#define FND_PROTOCOL_H

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#define FND_FRAME_HEADER_SIZE 8
#define FND_CHANNEL_FD 3

/* type, value, direction */
#define FND_FRAME_TYPES(X)                                                                     \
    X(READY, 1)      /* worker -> daemon: handler loaded; empty payload */                     \
    X(INIT_ERROR, 2) /* worker -> daemon: loading failed; error JSON; worker exits */          \
    X(INVOKE, 3)     /* daemon -> worker: meta_len, meta JSON, event */                        \
    X(RESULT, 4)     /* worker -> daemon: the handler's response bytes */                      \
    X(ERROR, 5)      /* worker -> daemon: {"errorType","errorMessage","stackTrace"} */     \
    X(DRAINED, 6)    /* daemon -> worker: the held output is read; empty payload */

enum fnd_frame_type {
#define FND_FRAME_ENUM(name, value) FND_FRAME_##name = value,
    FND_FRAME_TYPES(FND_FRAME_ENUM)
#undef FND_FRAME_ENUM
};

/* Flags of a READY frame. */
#define FND_READY_PIPELINED 0x01 /* the runtime sends FND_REPLY_HELD and honours DRAINED */
/* Flags of an INVOKE frame. */
#define FND_INVOKE_PIPELINED 0x01 /* the next INVOKE may come before this one's answer */
/* Flags of a RESULT or ERROR frame. */
#define FND_REPLY_HELD 0x01      /* the invocation's output may be unread: wait for DRAINED */

struct fnd_frame_header {
    uint32_t length; /* payload bytes that follow the header */
    uint8_t type;
    uint8_t flags;   /* FND_READY_*, FND_INVOKE_* or FND_REPLY_*; 0 on the other types */
    uint16_t reserved; /* 0 */
};

static inline void fnd_put_u32le(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static inline uint32_t fnd_get_u32le(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline void fnd_frame_header_encode(unsigned char out[FND_FRAME_HEADER_SIZE],
                                           uint8_t type, uint32_t length)
{
    fnd_put_u32le(out, length);
    out[4] = type;
    out[5] = 0; /* flags: set by the caller (fnd_frame_send) */
    out[6] = 0;
    out[7] = 0;
}

static inline void fnd_frame_header_decode(const unsigned char in[FND_FRAME_HEADER_SIZE],
                                           struct fnd_frame_header *h)
{
    h->length = fnd_get_u32le(in);
    h->type = in[4];
    h->flags = in[5];
    h->reserved = (uint16_t)(in[6] | in[7] << 8);
}

/* For the runtimes' side: waits until the channel has bytes to read (or is closed).
 * Why not simply block in read(): when the daemon reads a reply, the kernel frees it
 * and wakes every task asleep on the sender's socket, for write space, and a reader
 * blocked in read() sleeps there too. It would wake for nothing once per invocation,
 * a context switch on the worker's side and a cross-CPU wake-up on the daemon's.
 * poll() asks for readability only, and that wake-up passes it by. 0, or -1 with
 * errno set. */
static inline int fnd_channel_wait(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    for (;;) {
        int n = poll(&p, 1, -1);
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return -1;
    }
}

/* For blocking descriptors (the runtimes' side, the zygote): reads exactly len bytes.
 * 0, or -1 at EOF or on an error (errno set). */
static inline int fnd_read_full(int fd, void *into, size_t len)
{
    char *p = (char *)into;
    while (len > 0) {
        ssize_t n = read(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* For the runtimes' side (blocking descriptors): writes all of iov, retrying short
 * writes; iov is consumed. 0, or -1 with errno set. */
static inline int fnd_writev_all(int fd, struct iovec *iov, int n)
{
    while (n > 0) {
        ssize_t w = writev(fd, iov, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        while (n > 0 && (size_t)w >= iov->iov_len) {
            w -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + w;
            iov->iov_len -= (size_t)w;
        }
    }
    return 0;
}

/* Sends one frame with a single writev, so the daemon wakes once per reply. */
static inline int fnd_frame_send(int fd, uint8_t type, uint8_t flags, const void *payload,
                                 size_t len)
{
    unsigned char header[FND_FRAME_HEADER_SIZE];
    fnd_frame_header_encode(header, type, (uint32_t)len);
    header[5] = flags;
    struct iovec iov[2] = {{header, sizeof(header)}, {(void *)payload, len}};
    return fnd_writev_all(fd, iov, len ? 2 : 1);
}

/* For pipelining runtimes: whether the worker's stdout or stderr (fds 1 and 2, pipes
 * the daemon reads) holds bytes the daemon has not read yet, after the runtime has
 * flushed its own buffers. A pipe that cannot be asked counts as unread: the answer
 * then waits for DRAINED, which is slower but never wrong. */
static inline int fnd_output_unread(void)
{
    for (int fd = 1; fd <= 2; fd++) {
        int n = 0;
        if (ioctl(fd, FIONREAD, &n) < 0 || n > 0)
            return 1;
    }
    return 0;
}

#endif
