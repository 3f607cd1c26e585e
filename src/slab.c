/*
 * Fixed-size object pool. Chunks are 2 MiB anonymous mappings aligned to 2 MiB and
 * marked MADV_HUGEPAGE, so where transparent huge pages are on "madvise" (the usual
 * default) one fault maps a whole chunk. Objects are handed out from the tail of the
 * newest chunk, and freed ones go on an intrusive free list that is used first.
 *
 * Memory returns to the system only when the pool is released: the pool trades that
 * for speed, which suits records whose number rises and falls with the load.
 *
 * Under AddressSanitizer every object is a separate calloc, so use after free and
 * leaks of pooled objects are still found. huge_calloc serves large arrays the same
 * way: whole 2 MiB pages, marked for huge pages.
 */
#include "fnd/slab.h"

#include "fnd/common.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define CHUNK_SIZE ((size_t)2 << 20)

#if defined(__SANITIZE_ADDRESS__)
#define SLAB_PASSTHROUGH 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SLAB_PASSTHROUGH 1
#endif
#endif

struct slab_chunk {
    struct slab_chunk *next;
    void *map;      /* the mapping to unmap */
    size_t map_len;
};

void slab_init(struct slab *s, size_t size)
{
    size_t align = sizeof(void *);
    memset(s, 0, sizeof(*s));
    s->size = (FND_MAX(size, sizeof(void *)) + align - 1) / align * align;
    if (s->size > 64 * 1024)
        abort(); /* a programming error: the pool is for small records */
}

#ifndef SLAB_PASSTHROUGH
/* Maps one aligned chunk: over-map by a chunk, then use the aligned part. The chunk's
 * bookkeeping lives at its start. */
static void add_chunk(struct slab *s)
{
    size_t len = 2 * CHUNK_SIZE;
    char *map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED) {
        fprintf(stderr, "fnd: out of memory mapping a %zu-byte slab chunk\n", len);
        abort();
    }
    char *start = (char *)(((uintptr_t)map + CHUNK_SIZE - 1) & ~(uintptr_t)(CHUNK_SIZE - 1));
    (void)madvise(start, CHUNK_SIZE, MADV_HUGEPAGE); /* a hint: fine if refused */
    struct slab_chunk *c = (struct slab_chunk *)start;
    c->next = s->chunks;
    c->map = map;
    c->map_len = len;
    s->chunks = c;
    size_t head = (sizeof(*c) + s->size - 1) / s->size * s->size;
    s->next = start + head;
    s->end = start + CHUNK_SIZE;
}
#endif

void *slab_alloc(struct slab *s)
{
    s->live++;
#ifdef SLAB_PASSTHROUGH
    return xcalloc(1, s->size);
#else
    void *obj = s->free_list;
    if (obj) {
        memcpy(&s->free_list, obj, sizeof(void *));
        memset(obj, 0, s->size);
        return obj;
    }
    if (s->next == NULL || (size_t)(s->end - s->next) < s->size)
        add_chunk(s);
    obj = s->next;
    s->next += s->size;
    return obj; /* fresh anonymous memory is already zero */
#endif
}

void slab_free(struct slab *s, void *obj)
{
    if (obj == NULL)
        return;
    s->live--;
#ifdef SLAB_PASSTHROUGH
    free(obj);
#else
    memcpy(obj, &s->free_list, sizeof(void *));
    s->free_list = obj;
#endif
}

void slab_release(struct slab *s)
{
    struct slab_chunk *c = s->chunks;
    while (c) {
        struct slab_chunk *next = c->next;
        munmap(c->map, c->map_len);
        c = next;
    }
    size_t size = s->size;
    memset(s, 0, sizeof(*s));
    s->size = size;
}

#define HUGE_MIN CHUNK_SIZE /* below this, malloc's pages serve as well */

void *huge_calloc(size_t size)
{
#ifndef SLAB_PASSTHROUGH
    if (size >= HUGE_MIN) {
        size_t len = (size + CHUNK_SIZE - 1) & ~(CHUNK_SIZE - 1);
        void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            fprintf(stderr, "fnd: out of memory mapping %zu bytes\n", len);
            abort();
        }
        (void)madvise(p, len, MADV_HUGEPAGE); /* a hint: fine if refused */
        return p;
    }
#endif
    return xcalloc(1, size);
}

void huge_free(void *p, size_t size)
{
    if (p == NULL)
        return;
#ifndef SLAB_PASSTHROUGH
    if (size >= HUGE_MIN) {
        munmap(p, (size + CHUNK_SIZE - 1) & ~(CHUNK_SIZE - 1));
        return;
    }
#endif
    free(p);
}
