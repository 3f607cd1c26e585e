/*
 * Unit tests for sandbox.c: what a spawned worker process sees. A shell script in the
 * child reports its descriptors, environment, session and folder on stdout.
 */
#include "fnd/sandbox.h"

#include "fnd/common.h"

#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/wait.h>

/* Runs script under /bin/sh in a sandboxed child and returns what it printed. */
static char *run_script(const char *script, const char *cwd, int *status_out)
{
    int sv[2], outp[2], errp[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    ASSERT_EQ(pipe2(outp, O_CLOEXEC), 0);
    ASSERT_EQ(pipe2(errp, O_CLOEXEC), 0);
    /* A descriptor that must not reach the child. */
    int leak = open("/dev/null", O_RDONLY);
    ASSERT(leak >= 0);
    char *argv[] = {"/bin/sh", "-c", (char *)script, NULL};
    char *envp[] = {"ONLY=this", "PATH=/usr/bin:/bin", NULL};
    struct sandbox_spec spec = {"/bin/sh", argv, envp, cwd, sv[1], outp[1], errp[1], {-1, -1}, 1024, 1 << 30, NULL, 0, false, NULL, 0, 0};
    struct sandbox_process p;
    ASSERT_EQ(sandbox_spawn(&spec, &p), 0);
    close(sv[1]);
    close(outp[1]);
    close(errp[1]);
    close(leak);
    char *out = xcalloc(1, 65536);
    size_t len = 0;
    ssize_t n;
    while ((n = read(outp[0], out + len, 65535 - len)) > 0)
        len += (size_t)n;
    int status = sandbox_reap(&p);
    ASSERT(status >= 0);
    *status_out = status;
    close(p.pidfd);
    close(sv[0]);
    close(outp[0]);
    close(errp[0]);
    return out;
}

TEST(only_protocol_and_std_fds_survive)
{
    int status;
    char *out = run_script("ls /proc/self/fd | sort -n | tr '\\n' ' '", "/", &status);
    ASSERT_EQ(status, 0);
    /* 0-3 are ours; the fourth is the one `ls` opens to read the folder. */
    ASSERT(strncmp(out, "0 1 2 3 ", 8) == 0);
    ASSERT(strlen(out) <= strlen("0 1 2 3 4 "));
    free(out);
}

TEST(fd3_is_the_channel_socket)
{
    int status;
    char *out = run_script("readlink /proc/self/fd/3", "/", &status);
    ASSERT_EQ(status, 0);
    ASSERT_CONTAINS(out, "socket:");
    free(out);
}

TEST(environment_is_exactly_the_given_one)
{
    setenv("FND_TEST_SECRET", "leaked", 1);
    int status;
    char *out = run_script("env | grep -v '^PWD=' | grep -v '^SHLVL=' | grep -v '^_=' | sort",
                           "/", &status);
    ASSERT_EQ(status, 0);
    ASSERT_STR_EQ(out, "ONLY=this\nPATH=/usr/bin:/bin\n");
    free(out);
}

TEST(new_session_cwd_and_umask)
{
    int status;
    char *out = run_script("echo $(cut -d' ' -f6 /proc/self/stat) $$ $(pwd) $(umask)", "/tmp",
                           &status);
    ASSERT_EQ(status, 0);
    /* field 6 of /proc/self/stat (session id) of the subshell equals the shell's pid */
    int sid, pid;
    char cwd[64], mask[16];
    ASSERT_EQ(sscanf(out, "%d %d %63s %15s", &sid, &pid, cwd, mask), 4);
    ASSERT_EQ(sid, pid);
    ASSERT_STR_EQ(cwd, "/tmp");
    ASSERT_STR_EQ(mask, "0077");
    free(out);
}

TEST(rlimits_and_no_new_privs)
{
    int status;
    char *out = run_script("ulimit -c; ulimit -n; grep NoNewPrivs /proc/self/status", "/",
                           &status);
    ASSERT_EQ(status, 0);
    ASSERT_CONTAINS(out, "0\n1024\n");
    ASSERT_CONTAINS(out, "NoNewPrivs:\t1");
    free(out);
}

TEST(exec_failure_is_reported)
{
    int sv[2], outp[2], errp[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    ASSERT_EQ(pipe2(outp, O_CLOEXEC), 0);
    ASSERT_EQ(pipe2(errp, O_CLOEXEC), 0);
    char *argv[] = {"/no/such/runtime", NULL};
    char *envp[] = {NULL};
    struct sandbox_spec spec = {"/no/such/runtime", argv, envp, "/", sv[1], outp[1], errp[1], {-1, -1}, 1024, 1 << 30, NULL, 0, false, NULL, 0, 0};
    struct sandbox_process p;
    ASSERT_EQ(sandbox_spawn(&spec, &p), -ENOENT);
    spec.path = "/bin/true";
    spec.cwd = "/no/such/folder";
    ASSERT_EQ(sandbox_spawn(&spec, &p), -ENOENT);
    /* no child is left behind */
    ASSERT_EQ(waitpid(-1, NULL, WNOHANG), -1);
    ASSERT_EQ(errno, ECHILD);
}

/* Alive means running or sleeping: a zombie waiting for a reaper (init, here) is dead. */
static bool alive(pid_t pid)
{
    char path[64], stat[256];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    size_t n = fread(stat, 1, sizeof(stat) - 1, f);
    fclose(f);
    stat[n] = '\0';
    const char *end = strrchr(stat, ')');
    return end && end[1] == ' ' && end[2] != 'Z' && end[2] != 'X';
}

TEST(kill_group_reaches_grandchildren)
{
    int sv[2], outp[2], errp[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    ASSERT_EQ(pipe2(outp, O_CLOEXEC), 0);
    ASSERT_EQ(pipe2(errp, O_CLOEXEC), 0);
    char *argv[] = {"/bin/sh", "-c", "sleep 60 & echo $!; wait", NULL};
    char *envp[] = {"PATH=/usr/bin:/bin", NULL};
    struct sandbox_spec spec = {"/bin/sh", argv, envp, "/", sv[1], outp[1], errp[1], {-1, -1}, 1024, 1 << 30, NULL, 0, false, NULL, 0, 0};
    struct sandbox_process p;
    ASSERT_EQ(sandbox_spawn(&spec, &p), 0);
    close(outp[1]);
    char line[32] = "";
    ASSERT(read(outp[0], line, sizeof(line) - 1) > 0);
    pid_t grandchild = atoi(line);
    ASSERT(grandchild > 0);
    ASSERT(alive(grandchild));
    sandbox_kill_group(&p);
    int status = sandbox_reap(&p);
    ASSERT_EQ(status, SIGKILL);
    /* The grandchild is re-parented and reaped by init; wait until it is gone. */
    for (int i = 0; i < 200 && alive(grandchild); i++)
        usleep(10000);
    ASSERT(!alive(grandchild));
    close(p.pidfd);
}

TEST_MAIN()
