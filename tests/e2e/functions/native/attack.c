/*
 * A hostile native function for the sandbox tests: the event names one attack; the
 * answer is {"rc": <return value>, "errno": <errno>} of the system call it tried.
 * Attacks that the sandbox answers by killing the process never answer.
 */
#define _GNU_SOURCE
#include <fnd/handler.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif

static long attempt(const char *name)
{
    char buf[16];
    struct iovec local = {buf, sizeof(buf)}, remote = {(void *)0x400000, sizeof(buf)};
    struct timespec ts = {0, 0};
    if (!strcmp(name, "ptrace"))
        return syscall(SYS_ptrace, 16 /* PTRACE_ATTACH */, getppid(), 0, 0);
    if (!strcmp(name, "process_vm_readv"))
        return syscall(SYS_process_vm_readv, getppid(), &local, 1, &remote, 1, 0);
    if (!strcmp(name, "mount"))
        return mount("none", "/tmp", "tmpfs", 0, NULL);
    if (!strcmp(name, "umount"))
        return umount2("/proc", MNT_DETACH);
    if (!strcmp(name, "pivot_root"))
        return syscall(SYS_pivot_root, ".", ".");
    if (!strcmp(name, "unshare"))
        return unshare(CLONE_NEWUSER);
    /* The two calls the checklist itself makes late, refused by the last filter: */
    if (!strcmp(name, "unshare_cgroup"))
        return unshare(CLONE_NEWCGROUP);
    if (!strcmp(name, "move_mount")) { /* the root's mount onto /tmp */
        int root = open("/", O_PATH | O_CLOEXEC);
        long rc = syscall(SYS_move_mount, root, "", AT_FDCWD, "/tmp", 4 /* F_EMPTY_PATH */);
        int saved = errno;
        close(root);
        errno = saved;
        return rc;
    }
    if (!strcmp(name, "setns"))
        return setns(0, 0);
    if (!strcmp(name, "clone_newns")) {
        long pid = syscall(SYS_clone, CLONE_NEWNS | SIGCHLD, 0, 0, 0, 0);
        if (pid == 0)
            _exit(0);
        return pid;
    }
    if (!strcmp(name, "clone_plain")) { /* positive control: a plain fork-like clone */
        long pid = syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
        if (pid == 0)
            _exit(0);
        return pid > 0 ? 0 : pid;
    }
    if (!strcmp(name, "clone3"))
        return syscall(SYS_clone3, NULL, 0);
    if (!strcmp(name, "keyctl"))
        return syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3, 0);
    if (!strcmp(name, "add_key"))
        return syscall(SYS_add_key, "user", "fnd", "x", 1, -3);
    if (!strcmp(name, "userfaultfd"))
        return syscall(SYS_userfaultfd, 0);
    if (!strcmp(name, "io_uring_setup"))
        return syscall(SYS_io_uring_setup, 4, buf);
    if (!strcmp(name, "bpf"))
        return syscall(SYS_bpf, 0, NULL, 0);
    if (!strcmp(name, "perf_event_open")) {
        struct perf_event_attr attr;
        memset(&attr, 0, sizeof(attr));
        attr.size = sizeof(attr);
        return syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0);
    }
    if (!strcmp(name, "personality"))
        return personality(PER_LINUX32);
    if (!strcmp(name, "personality_query"))
        return personality(0xffffffff) < 0 ? -1 : 0;
    if (!strcmp(name, "tiocsti"))
        return ioctl(0, TIOCSTI, "x");
    if (!strcmp(name, "tiocsti_high_bits"))
        return syscall(SYS_ioctl, 0, (1UL << 32) | TIOCSTI, "x");
    if (!strcmp(name, "unknown_syscall"))
        return syscall(999);
    if (!strcmp(name, "x32_syscall"))
        return syscall(0x40000000 | SYS_getpid);
    if (!strcmp(name, "i386_syscall")) {
        long r;
        __asm__ volatile("int $0x80" : "=a"(r) : "a"(20 /* getpid */) : "memory");
        return r;
    }
    if (!strcmp(name, "mknod"))
        return mknod("/tmp/fnd-null", S_IFCHR | 0600, makedev(1, 3));
    if (!strcmp(name, "sethostname"))
        return sethostname("evil", 4);
    if (!strcmp(name, "clock_settime"))
        return clock_settime(CLOCK_REALTIME, &ts);
    if (!strcmp(name, "af_alg"))
        return socket(AF_ALG, SOCK_SEQPACKET, 0);
    if (!strcmp(name, "af_vsock"))
        return socket(AF_VSOCK, SOCK_STREAM, 0);
    if (!strcmp(name, "af_packet"))
        return socket(AF_PACKET, SOCK_RAW, 0);
    if (!strcmp(name, "af_inet")) { /* positive control */
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd >= 0)
            close(fd);
        return fd < 0 ? -1 : 0;
    }
    if (!strcmp(name, "kill_everyone"))
        return kill(-1, 0); /* signal 0: harmless even if the filter failed */
    if (!strcmp(name, "kill_group"))
        return kill(-getpgrp(), 0);
    if (!strcmp(name, "kill_self")) /* positive control */
        return kill(getpid(), 0);
    if (!strcmp(name, "setuid0"))
        return setuid(0);
    if (!strncmp(name, "kill_pid ", 9)) /* signal 0 to a pid of the host: the daemon */
        return kill((pid_t)atoi(name + 9), 0);
    if (!strcmp(name, "shm_create")) /* SysV IPC: a segment under a well-known key */
        return shmget(0xF00D, 4096, IPC_CREAT | 0600) < 0 ? -1 : 0;
    if (!strcmp(name, "shm_find"))
        return shmget(0xF00D, 0, 0) < 0 ? -1 : 0;
    errno = EINVAL;
    return -2;
}

int attack(const struct fnd_context *ctx, const char *event, size_t len,
           struct fnd_response *res)
{
    errno = 0;
    long rc = attempt(event);
    int e = rc < 0 ? errno : 0;
    return fnd_response_printf(res, "{\"rc\": %ld, \"errno\": %d}", rc < 0 ? -1 : rc, e);
}
