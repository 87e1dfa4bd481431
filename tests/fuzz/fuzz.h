/* fuzz.h - what every harness in tests/fuzz shares: libFuzzer's entry
 * point (also called by replay_main.c, which replays the seed corpus
 * under `make test`) and FUZZ_CHECK, which aborts on a broken invariant
 * so that libFuzzer and the replay both report it as a crash. */
#ifndef FUZZ_H
#define FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* LLVMFuzzerTestOneInput - run one input; always 0 (libFuzzer's contract) */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond, what)                                                                     \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant broken: %s (%s)\n", __FILE__, __LINE__, (what),      \
                    #cond);                                                                        \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif
