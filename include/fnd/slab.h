/*
 * A pool of fixed-size objects carved from 2 MiB chunks that the kernel may back with
 * transparent huge pages. For tables of many small records built at once (the async
 * invocations replayed from the event log): a million of them cost a few hundred page
 * faults instead of a hundred thousand, and no per-object malloc header.
 */
#ifndef FND_SLAB_H
#define FND_SLAB_H

#include <stddef.h>

struct slab_chunk;

struct slab {
    size_t size;              /* of one object, rounded up to pointer alignment */
    struct slab_chunk *chunks; /* every chunk, for slab_release */
    char *next, *end;         /* the unused tail of the newest chunk */
    void *free_list;          /* freed objects, each holding the next one's address */
    size_t live;              /* objects handed out and not freed */
};

/* Prepares an empty pool of objects of the given size (at most 64 KiB). */
void slab_init(struct slab *s, size_t size);
/* A zeroed object; aborts when memory is exhausted, like xcalloc. */
void *slab_alloc(struct slab *s);
/* Returns an object to the pool for reuse (memory goes back to the system only with
 * slab_release). NULL is ignored. */
void slab_free(struct slab *s, void *obj);
/* Unmaps every chunk; all objects are invalid afterwards. */
void slab_release(struct slab *s);

/* A zeroed array of size bytes on huge pages where the kernel grants them (large hash
 * tables: each random probe would otherwise also miss the TLB), and its release with
 * the same size. Abort when memory is exhausted. */
void *huge_calloc(size_t size);
void huge_free(void *p, size_t size);

#endif
