/*
 * Unit tests for sandbox.c: what a spawned worker process sees. A shell script in the
 * child reports its descriptors, environment, session and folder on stdout.
 */
#include "fnd/sandbox.h"

#include "fnd/common.h"

#include "test.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/wait.h>

/* A spec with only the process-level layers: no cgroups, namespaces, root or filter. */
static struct sandbox_spec plain_spec(const char *path, char **argv, char **envp,
                                      const char *cwd, int sv[2], int outp[2], int errp[2])
{
    return (struct sandbox_spec){.path = path, .argv = argv, .envp = envp, .cwd = cwd,
                                 .channel_fd = sv[1], .stdout_fd = outp[1],
                                 .stderr_fd = errp[1], .cgroup_fds = {-1, -1},
                                 .home_fds = {-1, -1},
                                 .max_open_files = 1024, .max_file_size = 1 << 30,
                                 .max_cpu_seconds = 7};
}

/* The channel and the output pipes a worker is given. */
static void open_worker_ends(int sv[2], int outp[2], int errp[2])
{
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    ASSERT_EQ(pipe2(outp, O_CLOEXEC), 0);
    ASSERT_EQ(pipe2(errp, O_CLOEXEC), 0);
}

static uint64_t test_namespaces; /* extra CLONE_NEW* flags for run_script's child */
static int test_cgroup_fd = -1;  /* a stand-in for a cgroup.procs file, for run_script */

/* Runs script under /bin/sh in a sandboxed child and returns what it printed. */
static char *run_script(const char *script, const char *cwd, int *status_out)
{
    int sv[2], outp[2], errp[2];
    open_worker_ends(sv, outp, errp);
    /* A descriptor that must not reach the child. */
    int leak = open("/dev/null", O_RDONLY);
    ASSERT(leak >= 0);
    char *argv[] = {"/bin/sh", "-c", (char *)script, NULL};
    char *envp[] = {"ONLY=this", "PATH=/usr/bin:/bin", NULL};
    struct sandbox_spec spec = plain_spec("/bin/sh", argv, envp, cwd, sv, outp, errp);
    spec.namespaces = test_namespaces;
    spec.cgroup_fds[0] = test_cgroup_fd;
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
    char *out = run_script("ulimit -c; ulimit -n; ulimit -t; grep NoNewPrivs /proc/self/status",
                           "/", &status);
    ASSERT_EQ(status, 0);
    ASSERT_CONTAINS(out, "0\n1024\n7\n");
    ASSERT_CONTAINS(out, "NoNewPrivs:\t1");
    free(out);
}

TEST(start_failures_are_reported)
{
    int sv[2], outp[2], errp[2];
    open_worker_ends(sv, outp, errp);
    char *argv[] = {"/no/such/runtime", NULL};
    char *envp[] = {NULL};
    struct sandbox_spec spec = plain_spec("/no/such/runtime", argv, envp, "/", sv, outp, errp);
    struct sandbox_process p;
    ASSERT_EQ(sandbox_spawn(&spec, &p), -ENOENT);
    spec.path = "/bin/true";
    spec.cwd = "/no/such/folder";
    ASSERT_EQ(sandbox_spawn(&spec, &p), -ENOENT);
    /* a move into a cgroup that fails (this file cannot be written) stops the child
     * before it runs anything */
    spec.cwd = "/";
    spec.cgroup_fds[1] = open("/dev/null", O_RDONLY | O_CLOEXEC);
    ASSERT(spec.cgroup_fds[1] >= 0);
    ASSERT_EQ(sandbox_spawn(&spec, &p), -EBADF);
    close(spec.cgroup_fds[1]);
    /* no child is left behind */
    ASSERT_EQ(waitpid(-1, NULL, WNOHANG), -1);
    ASSERT_EQ(errno, ECHILD);
}

/* The parent writes the child's pid where a cgroup.procs file would be, and the child
 * execs only after that: the script finds its own pid in the file already. */
TEST(parent_moves_the_child_before_its_exec)
{
    char path[] = "/tmp/fnd-test-cgroup-XXXXXX";
    int fd = mkstemp(path);
    ASSERT(fd >= 0);
    test_cgroup_fd = fd;
    char script[128];
    snprintf(script, sizeof(script), "echo \"$(cat %s) $$\"", path);
    int status;
    char *out = run_script(script, "/", &status);
    test_cgroup_fd = -1;
    close(fd);
    unlink(path);
    ASSERT_EQ(status, 0);
    int written = 0, self = -1;
    ASSERT_EQ(sscanf(out, "%d %d", &written, &self), 2);
    ASSERT(self > 0);
    ASSERT_EQ(written, self);
    free(out);
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
    open_worker_ends(sv, outp, errp);
    char *argv[] = {"/bin/sh", "-c", "sleep 60 & echo $!; wait", NULL};
    char *envp[] = {"PATH=/usr/bin:/bin", NULL};
    struct sandbox_spec spec = plain_spec("/bin/sh", argv, envp, "/", sv, outp, errp);
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

/* The pid namespace needs root (or a user namespace, which this test does not ask
 * for): skipped otherwise, saying so. */
static void require_pid_namespace(void)
{
    if (geteuid() != 0)
        SKIP("a pid namespace needs root");
    test_namespaces = CLONE_NEWPID;
}

TEST(pid_namespace_runs_the_runtime_under_an_init)
{
    require_pid_namespace();
    int status;
    /* The shell is pid 2 and its parent the init. */
    char *out = run_script("echo $$ $PPID", "/", &status);
    ASSERT_EQ(status, 0);
    ASSERT_STR_EQ(out, "2 1\n");
    free(out);
}

TEST(pid_namespace_reports_the_runtime_status)
{
    require_pid_namespace();
    int status;
    free(run_script("exit 3", "/", &status));
    ASSERT_EQ(status, 3 << 8);
    free(run_script("kill -SEGV $$", "/", &status));
    ASSERT_EQ(status, SIGSEGV); /* the init's 128 + 11, turned back into the signal */
}

TEST(pid_namespace_ends_with_the_runtime)
{
    require_pid_namespace();
    /* An orphan in its own session that ignores SIGTERM, with a command line no other
     * process has: it dies with the namespace the moment the runtime exits, without
     * any group kill. */
    char marker[32], script[160];
    snprintf(marker, sizeof(marker), "60.%d", (int)getpid());
    snprintf(script, sizeof(script), "setsid sh -c 'trap \"\" TERM; exec sleep %s' & echo $!",
             marker);
    int status;
    char *out = run_script(script, "/", &status);
    ASSERT_EQ(status, 0);
    ASSERT_GT(atoi(out), 2); /* it ran, inside the namespace */
    free(out);
    /* The kernel kills the namespace before the init's exit is reported, so no process
     * with that command line may remain. */
    char expect[48];
    int expect_len = snprintf(expect, sizeof(expect), "sleep%c%s", '\0', marker) + 1;
    DIR *proc = opendir("/proc");
    ASSERT(proc != NULL);
    size_t survivors = 0;
    struct dirent *de;
    while ((de = readdir(proc)) != NULL) {
        char path[300], cmdline[64];
        snprintf(path, sizeof(path), "/proc/%s/cmdline", de->d_name);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            continue;
        size_t n = fread(cmdline, 1, sizeof(cmdline), f);
        fclose(f);
        if (n == (size_t)expect_len && memcmp(cmdline, expect, n) == 0 && alive(atoi(de->d_name)))
            survivors++;
    }
    closedir(proc);
    ASSERT_EQ(survivors, 0);
}

TEST_MAIN()
