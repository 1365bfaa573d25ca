/* libFuzzer harness: llama.cpp's control-vector GGUF from memory.

   Input: the file's bytes. A vector that loads must be consistent (a width, a layer with a
   direction, the rest zeros) and survive a write and a read back unchanged. A failure
   must be a named error with nothing allocated. */
#define _POSIX_C_SOURCE 200809L /* getpid */
#define PATCHSCOPE_IMPLEMENTATION
#include "../../patchscope.h"

#include <unistd.h>

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ps_control_vector cv, back;
    ps_error e;
    ps_status s = ps_control_vector_read_memory(&cv, data, size, &e);
    int l, any = 0;
    char path[64];
    if (s != PS_OK) {
        REQUIRE(cv.dir == NULL && cv.has == NULL && e.code == s && e.msg[0] && s != PS_ERR_NOMEM);
        return 0;
    }
    REQUIRE(cv.n_embd >= 1 && cv.n_layer >= 2 && !cv.has[0]);
    for (l = 0; l < cv.n_layer; l++) any |= cv.has[l];
    REQUIRE(any && cv.has[cv.n_layer - 1]);
    snprintf(path, sizeof path, "/tmp/ps-fuzz-cvec-%d.gguf", (int)getpid());
    REQUIRE(ps_control_vector_write(&cv, path, "fuzz", &e) == PS_OK);
    REQUIRE(ps_control_vector_read(&back, path, &e) == PS_OK);
    remove(path);
    REQUIRE(back.n_layer == cv.n_layer && back.n_embd == cv.n_embd &&
            memcmp(back.has, cv.has, (size_t)cv.n_layer) == 0 &&
            memcmp(back.dir, cv.dir, (size_t)cv.n_layer * cv.n_embd * sizeof(float)) == 0);
    ps_control_vector_free(&back);
    ps_control_vector_free(&cv);
    return 0;
}
