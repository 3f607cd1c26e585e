/* Unit tests for stream.c: whole writes, and the rest of a write the socket could not
 * take at once. */
#include "fnd/stream.h"

#include "test.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

TEST(small_write_goes_out_whole)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    int sv[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    uv_pipe_t p;
    uv_pipe_init(&loop, &p, 0);
    ASSERT_EQ(uv_pipe_open(&p, sv[0]), 0);
    uv_buf_t b[2] = {uv_buf_init("head,", 5), uv_buf_init("body", 4)};
    uv_buf_t *bufs = b;
    unsigned n = 2;
    ASSERT_EQ(stream_write_now((uv_stream_t *)&p, &bufs, &n), 0);
    ASSERT_EQ(n, 0);
    char out[16] = {0};
    ASSERT_EQ(read(sv[1], out, sizeof(out)), 9);
    ASSERT_STR_EQ(out, "head,body");
    uv_close((uv_handle_t *)&p, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    close(sv[1]);
}

/* More than the socket buffer holds: what is left starts right after what was sent. */
TEST(large_write_leaves_the_rest)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    int sv[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    int small = 4096;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    uv_pipe_t p;
    uv_pipe_init(&loop, &p, 0);
    ASSERT_EQ(uv_pipe_open(&p, sv[0]), 0);
    size_t len = 4 << 20;
    char *big = malloc(len);
    for (size_t i = 0; i < len; i++)
        big[i] = (char)(i * 7);
    uv_buf_t b[2] = {uv_buf_init("hdr", 3), uv_buf_init(big, (unsigned)len)};
    uv_buf_t *bufs = b;
    unsigned n = 2;
    ASSERT_EQ(stream_write_now((uv_stream_t *)&p, &bufs, &n), 0);
    ASSERT_EQ(n, 1);
    ASSERT(bufs == &b[1]);
    size_t sent = (size_t)(bufs->base - big);
    ASSERT(sent < len);
    ASSERT_EQ(bufs->len, len - sent);
    uv_close((uv_handle_t *)&p, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    close(sv[1]);
    free(big);
}

TEST_MAIN()
