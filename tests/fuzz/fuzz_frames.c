/*
 * Fuzz driver for the worker protocol as the daemon sees it: frames_consume(), the
 * reassembly and validation worker.c runs on whatever a (possibly malicious) worker
 * writes to its channel.
 *
 * Input: byte 0 seeds the sizes of the reads the bytes arrive in; the rest is the
 * stream. The same stream is consumed twice, all at once and in reads of 1 to 32
 * bytes, and both must give the same frames and the same verdict: reassembly may not
 * depend on how the kernel splits the stream. After every read that leaves the
 * channel open, the buffer holds less than one header plus the payload limit, the
 * bound on what a worker can make the daemon hold.
 */
#include "fuzz.h"

#include "fnd/frames.h"
#include "fnd/protocol.h"

#include <errno.h>
#include <string.h>

#define MAX_PAYLOAD 512
#define MAX_FRAMES 4096

struct seen {
    uint8_t type[MAX_FRAMES];
    uint32_t len[MAX_FRAMES];
    uint32_t sum[MAX_FRAMES];
    size_t n;
    bool stopped;
};

static uint32_t checksum(struct slice s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < s.len; i++)
        h = (h ^ (unsigned char)s.ptr[i]) * 16777619u;
    return h;
}

static bool on_frame(void *data, uint8_t type, uint8_t flags, struct slice payload)
{
    struct seen *s = data;
    FUZZ_CHECK(flags == 0 || type != FND_FRAME_INIT_ERROR);
    FUZZ_CHECK(payload.len <= MAX_PAYLOAD);
    FUZZ_CHECK(type == FND_FRAME_READY || type == FND_FRAME_INIT_ERROR ||
               type == FND_FRAME_RESULT || type == FND_FRAME_ERROR);
    if (s->n < MAX_FRAMES) {
        s->type[s->n] = type;
        s->len[s->n] = (uint32_t)payload.len;
        s->sum[s->n] = checksum(payload);
        s->n++;
    }
    /* As worker.c stops listening once a frame ended the worker, stop on some frames. */
    if (payload.len == 13) {
        s->stopped = true;
        return false;
    }
    return true;
}

/* Feeds the stream in reads of the given sizes (0: all at once); the final verdict. */
static int consume(const uint8_t *data, size_t size, uint8_t seed, struct seen *s,
                   uint32_t *length)
{
    struct buf rx;
    buf_init(&rx, 0);
    int rc = 0;
    size_t off = 0;
    uint32_t state = seed;
    while (off < size) {
        size_t n = fuzz_next_read(seed ? &state : NULL, size - off, 32);
        FUZZ_CHECK(buf_append(&rx, data + off, n) == 0);
        off += n;
        rc = frames_consume(&rx, MAX_PAYLOAD, on_frame, s, length);
        if (rc < 0 || s->stopped)
            break;
        FUZZ_CHECK(rx.len < FND_FRAME_HEADER_SIZE + MAX_PAYLOAD);
    }
    buf_release(&rx);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t seed = data[0] | 1; /* never 0: that is the all-at-once run */
    static struct seen whole, pieces;
    memset(&whole, 0, sizeof(whole));
    memset(&pieces, 0, sizeof(pieces));
    uint32_t len_whole = 0, len_pieces = 0;
    int rc_whole = consume(data + 1, size - 1, 0, &whole, &len_whole);
    int rc_pieces = consume(data + 1, size - 1, seed, &pieces, &len_pieces);
    FUZZ_CHECK(rc_whole == 0 || rc_whole == -EPROTO || rc_whole == -EMSGSIZE);
    FUZZ_CHECK(rc_whole == rc_pieces);
    if (rc_whole == -EMSGSIZE)
        FUZZ_CHECK(len_whole == len_pieces && len_whole > MAX_PAYLOAD);
    FUZZ_CHECK(whole.n == pieces.n && whole.stopped == pieces.stopped);
    FUZZ_CHECK(memcmp(whole.type, pieces.type, whole.n) == 0);
    FUZZ_CHECK(memcmp(whole.len, pieces.len, whole.n * sizeof(uint32_t)) == 0);
    FUZZ_CHECK(memcmp(whole.sum, pieces.sum, whole.n * sizeof(uint32_t)) == 0);
    return 0;
}
