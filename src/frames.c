/*
 * Frames from a worker (include/fnd/frames.h). A worker is untrusted: it may send
 * anything, in pieces of any size. The header is checked as soon as its 8 bytes are
 * there and before a byte of the payload is kept, so an announced length over the
 * limit is refused at once, and a valid frame is handed on only when all of it has
 * arrived. Consumed frames are dropped from the front of the buffer after their
 * callback, so their payload slices never outlive the bytes they point into.
 */
#include "fnd/frames.h"

#include "fnd/protocol.h"

#include <errno.h>
#include <string.h>

/* Whether a worker may send a frame of type with flags; INVOKE and DRAINED go the
 * other way. */
static bool from_worker(uint8_t type, uint8_t flags)
{
    switch (type) {
    case FND_FRAME_READY:
        return (flags & ~FND_READY_PIPELINED) == 0;
    case FND_FRAME_RESULT:
    case FND_FRAME_ERROR:
        return (flags & ~FND_REPLY_HELD) == 0;
    case FND_FRAME_INIT_ERROR:
        return flags == 0;
    default:
        return false;
    }
}

int frames_consume(struct buf *rx, size_t max_payload, frames_fn *on_frame, void *data,
                   uint32_t *length)
{
    while (rx->len >= FND_FRAME_HEADER_SIZE) {
        struct fnd_frame_header h;
        fnd_frame_header_decode((const unsigned char *)rx->data, &h);
        if (h.reserved != 0 || !from_worker(h.type, h.flags))
            return -EPROTO;
        if (h.length > max_payload) {
            *length = h.length;
            return -EMSGSIZE;
        }
        size_t total = FND_FRAME_HEADER_SIZE + (size_t)h.length;
        if (rx->len < total)
            return 0;
        bool more = on_frame(data, h.type, h.flags, (struct slice){rx->data + FND_FRAME_HEADER_SIZE,
                                                          h.length});
        memmove(rx->data, rx->data + total, rx->len - total);
        rx->len -= total;
        if (!more)
            return 0;
    }
    return 0;
}
