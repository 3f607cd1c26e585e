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

#endif
