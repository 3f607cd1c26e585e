/*
 * Unit tests for bundle_sandbox.c, the confinement of fnd-bundle.
 *
 * The real helper, paused on its input (a pipe, which it reads to the end), shows its
 * confinement in /proc: a seccomp filter, no_new_privs, only descriptors 0-2 (one
 * more was left open for it on purpose), its limits; once the pipe closes it refuses
 * the empty input as a corrupt zip and leaves nothing.
 *
 * In this test's own process (each test runs in a fork of its own): once confined,
 * unpacking, refusing (which removes a tree) and zipping still work — the filter
 * allows what the helper needs — and the network, exec, fork, signals, ptrace and an
 * executable mapping fail with EPERM.
 */
#include "fnd/bundle_sandbox.h"

#include "test.h"
#include "testzip.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>

static const struct bundle_limits roomy = {1 << 20, 100};

/* The number after field in /proc/<pid>/status, or -1. */
static long status_field(pid_t pid, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long v = -1;
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, field, strlen(field)) == 0)
            v = strtol(line + strlen(field), NULL, 10);
    if (f)
        fclose(f);
    return v;
}

/* The soft and hard values of a /proc/<pid>/limits line, e.g. "Max cpu time". */
static void limit_of(pid_t pid, const char *name, char *soft, char *hard)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/limits", (int)pid);
    FILE *f = fopen(path, "r");
    ASSERT(f != NULL);
    soft[0] = hard[0] = '\0';
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, name, strlen(name)) == 0)
            ASSERT_EQ(sscanf(line + 26, "%31s %31s", soft, hard), 2);
    fclose(f);
    ASSERT(soft[0] != '\0');
}

static void assert_limit(pid_t pid, const char *name, const char *soft, const char *hard)
{
    char s[32], h[32];
    limit_of(pid, name, s, h);
    ASSERT_STR_EQ(s, soft);
    ASSERT_STR_EQ(h, hard);
}

TEST(helper_paused_on_its_input_is_confined)
{
    char root[] = "/tmp/fnd-bundle-sandbox-XXXXXX", dest[64];
    ASSERT(mkdtemp(root) != NULL);
    snprintf(dest, sizeof(dest), "%s/dest", root);
    int in[2], err[2];
    ASSERT_EQ(pipe2(in, O_CLOEXEC), 0);
    ASSERT_EQ(pipe2(err, O_CLOEXEC), 0);
    int stray = open("/dev/null", O_RDONLY); /* inherited, unless the helper closes it */
    ASSERT(stray > 2);
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(err[1], 2);
        execl(FND_BUNDLE_HELPER, "fnd-bundle", "unpack", dest, "5000", "10", (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(err[1]);
    close(stray);
    /* The filter is the last step before the read: once it is there, so is the rest. */
    for (int i = 0; i < 1000 && status_field(pid, "Seccomp:") != 2; i++)
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    ASSERT_EQ(status_field(pid, "Seccomp:"), 2);
    ASSERT_EQ(status_field(pid, "NoNewPrivs:"), 1);
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    ASSERT(d != NULL);
    struct dirent *de;
    int fds = 0;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        ASSERT(strcmp(de->d_name, "0") == 0 || strcmp(de->d_name, "1") == 0 ||
               strcmp(de->d_name, "2") == 0);
        fds++;
    }
    closedir(d);
    ASSERT_EQ(fds, 3);
    assert_limit(pid, "Max cpu time", "60", "61");
    assert_limit(pid, "Max file size", "5000", "5000");
    assert_limit(pid, "Max open files", "64", "64");
    assert_limit(pid, "Max core file size", "0", "0");

    close(in[1]); /* the end of an empty zip */
    int status;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT(WIFEXITED(status));
    ASSERT_EQ(WEXITSTATUS(status), EINVAL);
    char text[256] = "";
    ASSERT(read(err[0], text, sizeof(text) - 1) > 0);
    ASSERT_STR_EQ(text, "bundle: not a zip archive\n");
    close(err[0]);
    ASSERT_EQ(access(dest, F_OK), -1);
    ASSERT_EQ(remove_tree(root), 0);
}

/* Expects a call to have failed with EPERM. */
#define ASSERT_EPERM(call)                                                                     \
    do {                                                                                       \
        errno = 0;                                                                             \
        ASSERT((call) == -1 && errno == EPERM);                                                \
    } while (0)

TEST(confined_process_does_its_work_and_nothing_else)
{
    char root[] = "/tmp/fnd-bundle-sandbox-XXXXXX", src[64], path[96];
    ASSERT(mkdtemp(root) != NULL);
    make_src_folder(root, src, sizeof(src));
    const struct entry good[] = {{"lib/app.py", AE_IFREG, 0, "x = 1\n", NULL}};
    const struct entry hostile[] = {{"lib/app.py", AE_IFREG, 0, "x = 1\n", NULL},
                                    {"../x", AE_IFREG, 0, "escaped", NULL}};
    struct buf zip, bad, out;
    make_zip(&zip, good, 1);
    make_zip(&bad, hostile, 2);
    buf_init(&out, 0);
    int stray = open("/dev/null", O_RDONLY);
    ASSERT(stray > 2);
    char err[256] = "";

    ASSERT_EQ(bundle_sandbox_enter(BUNDLE_TASK_UNPACK, &roomy, err, sizeof(err)), 0);
    /* what the helper needs */
    snprintf(path, sizeof(path), "%s/ok", root);
    ASSERT_EQ(bundle_unpack_zip(zip.data, zip.len, path, &roomy, err, sizeof(err)), 0);
    snprintf(path, sizeof(path), "%s/ok/lib/app.py", root);
    ASSERT_STR_EQ(read_text(path), "x = 1\n");
    snprintf(path, sizeof(path), "%s/refused", root);
    ASSERT_EQ(bundle_unpack_zip(bad.data, bad.len, path, &roomy, err, sizeof(err)), -EINVAL);
    ASSERT_EQ(access(path, F_OK), -1); /* removed under the filter */
    ASSERT_EQ(bundle_zip_dir(src, &out, &roomy, err, sizeof(err)), 0);
    ASSERT(out.len > 0);
    /* and nothing else */
    ASSERT_EQ(fcntl(stray, F_GETFD), -1);
    ASSERT_EPERM(socket(AF_INET, SOCK_STREAM, 0));
    ASSERT_EPERM(socket(AF_UNIX, SOCK_STREAM, 0));
    char *const argv[] = {"true", NULL};
    ASSERT_EPERM(execve("/bin/true", argv, argv + 1));
    ASSERT_EPERM(fork());
    ASSERT_EPERM(kill(1, 0));
    ASSERT_EPERM(ptrace(PTRACE_TRACEME, 0, NULL, NULL));
    errno = 0;
    ASSERT(mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) ==
               MAP_FAILED &&
           errno == EPERM);
    void *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT(page != MAP_FAILED); /* a mapping without PROT_EXEC is allowed */
    ASSERT_EPERM(mprotect(page, 4096, PROT_READ | PROT_EXEC));
    ASSERT_EQ(remove_tree(root), 0);
    /* Leave by the system call: LeakSanitizer, in the sanitizer build, would stop this
     * process with ptrace at exit, and ASan's hook before a noreturn call such as _exit
     * calls sigaltstack; the filter refuses both. */
    fflush(stdout);
    syscall(SYS_exit_group, 0);
}

TEST_MAIN()
