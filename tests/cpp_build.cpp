// The header must compile as C++ (implementation included) and work there.
#define PATCHSCOPE_IMPLEMENTATION
#include "../patchscope.h"
#include <cstdio>

int main() {
    ps_model *m = nullptr;
    ps_ctx *c = nullptr;
    ps_error e;
    int ids[] = {17, 83, 5, 42};
    if (ps_model_load(&m, "build/models/tiny", nullptr, &e) != PS_OK) {
        std::printf("FAIL load: %s\n", e.msg);
        return 1;
    }
    if (ps_ctx_create(&c, m, nullptr, &e) != PS_OK || ps_forward(c, ids, 4, 0) != PS_OK) {
        std::printf("FAIL forward\n");
        return 1;
    }
    std::printf("cpp: loaded and ran the tiny model from C++ (argmax %d)\n",
                ps_argmax(ps_logits(c, 0), ps_model_config(m)->n_vocab));
    ps_ctx_free(c);
    ps_model_free(m);
    return 0;
}
