/*
 * What memory costs on this machine, for the cold-start figures: the time per 4 KiB page
 * of (1) copying a page that is already mapped (the floor), (2) the first write to a
 * fresh anonymous page (a page fault that allocates and zeroes it), (3) the first write
 * in a forked child to a page it shares with its parent (a copy-on-write fault), and
 * (4) populating fresh pages with one madvise(MADV_POPULATE_WRITE) instead of a fault
 * each. A forked interpreter pays (3) for every page it writes, and a fresh one pays
 * (2) for every page it touches, so these bound what a fork server can save.
 *
 * Usage: bench_pagefault [MiB] (default 32). Prints one line per figure, "name ns"
 * (nanoseconds per page, median of five rounds), for tests/bench/suite.py.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#define PAGE 4096
#define ROUNDS 5

static double now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static char *fresh(size_t bytes)
{
    char *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        perror("mmap");
        exit(1);
    }
    madvise(p, bytes, MADV_NOHUGEPAGE); /* 4 KiB pages, as an interpreter's heap mostly is */
    return p;
}

static void touch(char *p, size_t bytes, char v)
{
    for (size_t i = 0; i < bytes; i += PAGE)
        ((volatile char *)p)[i] = v;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v)
{
    qsort(v, ROUNDS, sizeof(*v), cmp);
    return v[ROUNDS / 2];
}

/* ns per page of a write to every page in a forked child, timed there and sent back. */
static double cow_round(char *p, size_t bytes)
{
    int fd[2];
    if (pipe(fd) < 0)
        exit(1);
    pid_t pid = fork();
    if (pid == 0) {
        double t0 = now_ns();
        touch(p, bytes, 3);
        double per = (now_ns() - t0) / (double)(bytes / PAGE);
        ssize_t n = write(fd[1], &per, sizeof(per));
        _exit(n == sizeof(per) ? 0 : 1);
    }
    double per = 0;
    if (read(fd[0], &per, sizeof(per)) != sizeof(per))
        exit(1);
    waitpid(pid, NULL, 0);
    close(fd[0]);
    close(fd[1]);
    return per;
}

int main(int argc, char **argv)
{
    size_t bytes = (size_t)(argc > 1 ? atoi(argv[1]) : 32) << 20;
    size_t pages = bytes / PAGE;
    double copy[ROUNDS], fault[ROUNDS], cow[ROUNDS], populate[ROUNDS];
    char *src = fresh(bytes), *dst = fresh(bytes);
    touch(src, bytes, 1);
    touch(dst, bytes, 1);
    /* Before any fork: afterwards every page of the parent is write-protected, and even
     * with the child gone its first write to each would fault. */
    for (int r = 0; r < ROUNDS; r++) {
        double t0 = now_ns();
        memcpy(dst, src, bytes);
        copy[r] = (now_ns() - t0) / (double)pages;
    }
    for (int r = 0; r < ROUNDS; r++) {
        char *p = fresh(bytes);
        double t0 = now_ns();
        touch(p, bytes, 1);
        fault[r] = (now_ns() - t0) / (double)pages;
        cow[r] = cow_round(p, bytes);
        munmap(p, bytes);

        p = fresh(bytes);
        t0 = now_ns();
        int rc = madvise(p, bytes, MADV_POPULATE_WRITE);
        populate[r] = rc == 0 ? (now_ns() - t0) / (double)pages : -1;
        munmap(p, bytes);
    }
    printf("copy %.0f\nfault %.0f\ncow %.0f\npopulate %.0f\n", median(copy), median(fault),
           median(cow), median(populate));
    return 0;
}
