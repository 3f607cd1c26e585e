/*
 * Unit tests for zygote.c: the zygote's side refuses requests that do not decode
 * exactly, before anything is cloned (it runs as root, so a bad request must never
 * become a read past its buffer). Forking through a live zygote is covered end to end
 * by tests/e2e/test_zygote.py.
 */
#include "fnd/zygote.h"

#include "test.h"

#include <errno.h>

TEST(short_and_foreign_requests_are_refused)
{
    static unsigned char junk[300000];
    int fds[3] = {0, 1, 2};
    int pidfd = 42;
    ASSERT_EQ(fnd_zygote_fork(junk, 0, fds, 3, &pidfd), -EINVAL);
    ASSERT_EQ(pidfd, -1); /* nothing was cloned */
    ASSERT_EQ(fnd_zygote_fork(junk, 16, fds, 3, &pidfd), -EINVAL);
    /* the right size but no magic */
    ASSERT_EQ(fnd_zygote_fork(junk, sizeof(junk), fds, 3, &pidfd), -EINVAL);
    memset(junk, 0xff, sizeof(junk));
    ASSERT_EQ(fnd_zygote_fork(junk, sizeof(junk), fds, 3, &pidfd), -EINVAL);
    ASSERT_EQ(pidfd, -1);
}

TEST_MAIN()
