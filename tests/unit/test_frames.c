/* Unit tests for frames.c: frames split across reads, several in one read, headers a
 * worker may not send, the flags it may, lengths past the limit, and stopping early. */
#include "fnd/frames.h"

#include "fnd/protocol.h"

#include "test.h"

#include <errno.h>

struct got {
    uint8_t types[8];
    uint8_t flags[8];
    char payloads[8][32];
    size_t n;
    size_t stop_after; /* 0: never */
};

static bool record(void *data, uint8_t type, uint8_t flags, struct slice payload)
{
    struct got *g = data;
    g->types[g->n] = type;
    g->flags[g->n] = flags;
    snprintf(g->payloads[g->n], sizeof(g->payloads[0]), "%.*s", (int)payload.len, payload.ptr);
    g->n++;
    return g->stop_after == 0 || g->n < g->stop_after;
}

static void put_frame(struct buf *b, uint8_t type, const char *payload)
{
    unsigned char h[FND_FRAME_HEADER_SIZE];
    fnd_frame_header_encode(h, type, (uint32_t)strlen(payload));
    buf_append(b, h, sizeof(h));
    buf_append_str(b, payload);
}

TEST(frames_split_across_reads_and_several_per_read)
{
    struct buf all, rx;
    buf_init(&all, 0);
    buf_init(&rx, 0);
    put_frame(&all, FND_FRAME_READY, "");
    put_frame(&all, FND_FRAME_RESULT, "hello");
    put_frame(&all, FND_FRAME_ERROR, "{\"errorType\":\"E\"}");
    struct got g = {0};
    uint32_t length = 0;
    for (size_t i = 0; i < all.len; i++) { /* one byte per read */
        buf_append(&rx, all.data + i, 1);
        ASSERT_EQ(frames_consume(&rx, 64, record, &g, &length), 0);
    }
    ASSERT_EQ(g.n, 3);
    ASSERT_EQ(g.types[0], FND_FRAME_READY);
    ASSERT_STR_EQ(g.payloads[1], "hello");
    ASSERT_STR_EQ(g.payloads[2], "{\"errorType\":\"E\"}");
    ASSERT_EQ(rx.len, 0);
    buf_release(&all);
    buf_release(&rx);
}

/* A header alone, with flags put where frames.c reads them, so a test can send what
 * fnd_frame_header_encode would never make. */
static void put_header(struct buf *b, uint8_t type, uint8_t flags, uint32_t length)
{
    unsigned char h[FND_FRAME_HEADER_SIZE];
    fnd_frame_header_encode(h, type, length);
    h[5] = flags;
    buf_append(b, h, sizeof(h));
}

TEST(bad_headers_and_lengths_refused_before_the_payload)
{
    struct buf rx;
    buf_init(&rx, 0);
    struct got g = {0};
    uint32_t length = 0;
    put_header(&rx, FND_FRAME_INVOKE, 0, 0); /* the daemon's own type */
    ASSERT_EQ(frames_consume(&rx, 64, record, &g, &length), -EPROTO);
    buf_reset(&rx);
    put_header(&rx, FND_FRAME_RESULT, 2, 0); /* a flag a reply does not have */
    ASSERT_EQ(frames_consume(&rx, 64, record, &g, &length), -EPROTO);
    buf_reset(&rx);
    put_header(&rx, FND_FRAME_RESULT, 0, 1u << 30); /* no payload sent at all */
    ASSERT_EQ(frames_consume(&rx, 64, record, &g, &length), -EMSGSIZE);
    ASSERT_EQ(length, 1u << 30);
    ASSERT_EQ(g.n, 0);
    buf_release(&rx);
}

/* Only READY (pipelined) and the replies (held) have a flag, and they are handed on. */
TEST(flags_of_ready_and_replies_pass_and_no_others)
{
    struct buf rx;
    buf_init(&rx, 0);
    struct got g = {0};
    uint32_t length = 0;
    const uint8_t flagged[][2] = {{FND_FRAME_READY, FND_READY_PIPELINED},
                                  {FND_FRAME_RESULT, FND_REPLY_HELD},
                                  {FND_FRAME_ERROR, FND_REPLY_HELD}};
    for (size_t i = 0; i < 3; i++)
        put_header(&rx, flagged[i][0], flagged[i][1], 0);
    ASSERT_EQ(frames_consume(&rx, 64, record, &g, &length), 0);
    ASSERT_EQ(g.n, 3);
    for (size_t i = 0; i < 3; i++) {
        ASSERT_EQ(g.types[i], flagged[i][0]);
        ASSERT_EQ(g.flags[i], flagged[i][1]);
    }
    put_header(&rx, FND_FRAME_INIT_ERROR, FND_REPLY_HELD, 0);
    ASSERT_EQ(frames_consume(&rx, 64, record, &g, &length), -EPROTO);
    buf_reset(&rx);
    put_header(&rx, FND_FRAME_DRAINED, 0, 0); /* the daemon's own type */
    ASSERT_EQ(frames_consume(&rx, 64, record, &g, &length), -EPROTO);
    ASSERT_EQ(g.n, 3);
    buf_release(&rx);
}

TEST(stopping_leaves_the_rest)
{
    struct buf rx;
    buf_init(&rx, 0);
    put_frame(&rx, FND_FRAME_RESULT, "one");
    put_frame(&rx, FND_FRAME_RESULT, "two");
    struct got g = {.stop_after = 1};
    uint32_t length = 0;
    ASSERT_EQ(frames_consume(&rx, 64, record, &g, &length), 0);
    ASSERT_EQ(g.n, 1);
    ASSERT_EQ(rx.len, FND_FRAME_HEADER_SIZE + 3); /* "two" is still there */
    buf_release(&rx);
}

TEST_MAIN()
