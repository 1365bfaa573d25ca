/* What every libFuzzer harness shares: the C headers, libFuzzer's entry points, and
   REQUIRE, which turns a broken property into a crash the fuzzer records. Include after
   patchscope.h with its implementation. */
#ifndef PS_FUZZ_H
#define PS_FUZZ_H
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REQUIRE(x)                                                                            \
    do {                                                                                      \
        if (!(x)) {                                                                           \
            fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #x);                          \
            abort();                                                                          \
        }                                                                                     \
    } while (0)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
#endif
