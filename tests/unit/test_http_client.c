/* Unit tests for http_client.c: URL parsing, and one exchange against a listener in
 * this process that answers in pieces with a chunked body. */
#include "fnd/http_client.h"

#include "test.h"

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

TEST(parse_url)
{
    char host[64];
    int port;
    ASSERT_EQ(http_client_parse_url("http://127.0.0.1:8080", host, sizeof(host), &port), 0);
    ASSERT_STR_EQ(host, "127.0.0.1");
    ASSERT_EQ(port, 8080);
    ASSERT_EQ(http_client_parse_url("http://localhost/", host, sizeof(host), &port), 0);
    ASSERT_STR_EQ(host, "localhost");
    ASSERT_EQ(port, 80);
    ASSERT_EQ(http_client_parse_url("http://[::1]:9", host, sizeof(host), &port), 0);
    ASSERT_STR_EQ(host, "::1");
    ASSERT_EQ(port, 9);
    ASSERT_EQ(http_client_parse_url("https://x", host, sizeof(host), &port), -EINVAL);
    ASSERT_EQ(http_client_parse_url("http://:80", host, sizeof(host), &port), -EINVAL);
    ASSERT_EQ(http_client_parse_url("http://x:0", host, sizeof(host), &port), -EINVAL);
    ASSERT_EQ(http_client_parse_url("http://x:99999", host, sizeof(host), &port), -EINVAL);
    ASSERT_EQ(http_client_parse_url("http://x:12a", host, sizeof(host), &port), -EINVAL);
}

static int listener;

static void *serve_once(void *arg)
{
    (void)arg;
    int fd = accept(listener, NULL, NULL);
    char req[4096];
    size_t got = 0;
    while (got < sizeof(req) - 1) { /* the head and the 5-byte body */
        ssize_t n = read(fd, req + got, sizeof(req) - 1 - got);
        if (n <= 0)
            break;
        got += (size_t)n;
        req[got] = '\0';
        char *end = strstr(req, "\r\n\r\n");
        if (end && strlen(end + 4) >= 5)
            break;
    }
    const char *parts[] = {"HTTP/1.1 200 OK\r\nX-Te",
                           "st: yes\r\nTransfer-Encoding: chunked\r\n\r\n", "3\r\nabc\r\n",
                           "2\r\nde\r\n0\r\n\r\n"};
    for (size_t i = 0; i < 4; i++) {
        if (write(fd, parts[i], strlen(parts[i])) < 0)
            break;
        usleep(20000);
    }
    close(fd);
    return strstr(req, "POST /p?q=1 HTTP/1.1\r\n") && strstr(req, "\r\nX-A: b\r\n") &&
                   strstr(req, "\r\n\r\nhello")
               ? (void *)1
               : NULL;
}

TEST(one_exchange)
{
    listener = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ASSERT_EQ(bind(listener, (struct sockaddr *)&a, sizeof(a)), 0);
    ASSERT_EQ(listen(listener, 1), 0);
    socklen_t len = sizeof(a);
    getsockname(listener, (struct sockaddr *)&a, &len);
    pthread_t t;
    pthread_create(&t, NULL, serve_once, NULL);
    char url[64], err[256];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", ntohs(a.sin_port));
    struct http_header h = {SLICE_LIT("X-A"), SLICE_LIT("b")};
    struct http_client_request rq = {.method = "POST", .url = url, .path = "/p?q=1",
                                     .headers = &h, .nheaders = 1, .body = "hello",
                                     .body_len = 5, .timeout_ms = 10000};
    struct http_client_response resp;
    ASSERT_EQ(http_client_fetch(&rq, &resp, err, sizeof(err)), 0);
    void *request_ok;
    pthread_join(t, &request_ok);
    ASSERT(request_ok != NULL);
    ASSERT_EQ(resp.status, 200);
    ASSERT_STR_EQ(http_client_header(&resp, "x-test"), "yes");
    ASSERT_EQ(resp.body.len, (size_t)5);
    ASSERT(memcmp(resp.body.data, "abcde", 5) == 0);
    http_client_response_release(&resp);

    /* nobody listens any more */
    close(listener);
    ASSERT(http_client_fetch(&rq, &resp, err, sizeof(err)) < 0);
    ASSERT_CONTAINS(err, "refused");
}

TEST_MAIN()
