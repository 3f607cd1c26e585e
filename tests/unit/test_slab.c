/* Unit tests for slab.c: zeroed objects, reuse after free, many chunks, release. */
#include "fnd/slab.h"

#include "test.h"

#include <stdint.h>
#include <string.h>

struct rec {
    char name[40];
    uint64_t n;
};

TEST(objects_are_zeroed_aligned_and_distinct)
{
    struct slab s;
    slab_init(&s, sizeof(struct rec));
    struct rec *a = slab_alloc(&s), *b = slab_alloc(&s);
    ASSERT(a != b);
    ASSERT_EQ((uintptr_t)a % sizeof(void *), 0);
    ASSERT_EQ(a->n, 0);
    ASSERT_EQ(a->name[0], 0);
    strcpy(a->name, "first");
    b->n = 7;
    ASSERT_STR_EQ(a->name, "first");
    ASSERT_EQ(s.live, 2);
    slab_free(&s, a);
    struct rec *c = slab_alloc(&s); /* a freed object comes back zeroed */
    ASSERT_EQ(c->n, 0);
    ASSERT_EQ(c->name[0], 0);
    ASSERT_EQ(b->n, 7);
    slab_free(&s, NULL);
    slab_free(&s, b);
    slab_free(&s, c);
    ASSERT_EQ(s.live, 0);
    slab_release(&s);
}

/* Enough objects to fill several 2 MiB chunks: each keeps its own contents. */
TEST(many_objects_across_chunks)
{
    enum { N = 200000 };
    static struct rec *all[N];
    struct slab s;
    slab_init(&s, sizeof(struct rec));
    for (uint64_t i = 0; i < N; i++) {
        all[i] = slab_alloc(&s);
        ASSERT_EQ(all[i]->n, 0);
        all[i]->n = i;
    }
    for (uint64_t i = 0; i < N; i++)
        ASSERT_EQ(all[i]->n, i);
    for (uint64_t i = 0; i < N; i += 2)
        slab_free(&s, all[i]);
    for (uint64_t i = 0; i < N; i += 2)
        all[i] = slab_alloc(&s);
    for (uint64_t i = 1; i < N; i += 2)
        ASSERT_EQ(all[i]->n, i);
    ASSERT_EQ(s.live, N);
    slab_release(&s);
    ASSERT_EQ(s.live, 0);
    ASSERT_EQ(s.size, sizeof(struct rec));
}

/* Large and small arrays come back zeroed and writable to their last byte. */
TEST(huge_calloc_zeroed_both_sizes)
{
    size_t sizes[] = {100, (size_t)5 << 20};
    for (size_t k = 0; k < 2; k++) {
        unsigned char *p = huge_calloc(sizes[k]);
        ASSERT(p != NULL);
        ASSERT_EQ(p[0], 0);
        ASSERT_EQ(p[sizes[k] - 1], 0);
        memset(p, 0xab, sizes[k]);
        ASSERT_EQ(p[sizes[k] / 2], 0xab);
        huge_free(p, sizes[k]);
    }
    huge_free(NULL, 10);
}

TEST_MAIN()
