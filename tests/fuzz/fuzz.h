/*
 * Shared by the fuzz drivers: the libFuzzer entry points and a check that stays on in
 * every build type (assert() is compiled out of RelWithDebInfo), because the replay
 * of the corpus in the ordinary builds must judge the same properties the fuzzer does.
 */
#ifndef FND_FUZZ_H
#define FND_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FUZZ_CHECK(cond)                                                                       \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "%s:%d: property violated: %s\n", __FILE__, __LINE__, #cond);      \
            abort();                                                                           \
        }                                                                                      \
    } while (0)

/* The size of the next read when a stream of `left` bytes is fed in pieces of 1 to max
 * bytes, drawn from *state (an LCG the input seeds), or all of it when state is NULL:
 * the drivers that check a parser gives the same result however the bytes arrive. */
static inline size_t fuzz_next_read(uint32_t *state, size_t left, size_t max)
{
    if (state == NULL)
        return left;
    *state = *state * 1103515245u + 12345u;
    size_t want = 1 + (*state >> 16) % max;
    return want < left ? want : left;
}

#endif
