/* libFuzzer harness: the safetensors loader from memory, with and without config.json.

   Input: one options byte, then (when bit 0 is set) config.json up to the first NUL
   byte, then the .safetensors bytes. Bits 1-2 pick the weights option (3 is invalid on
   purpose). A model that loads must be usable: its config within the limits, every
   weight readable (ps_model_check reads them all), a forward pass that runs. */
#define PATCHSCOPE_IMPLEMENTATION
#include "../../patchscope.h"

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ps_model *m = NULL;
    ps_ctx *c = NULL;
    ps_load_opts opts;
    ps_error e;
    ps_status s;
    const char *config = NULL;
    size_t config_len = 0;
    int flags;
    if (size < 1) return 0;
    flags = data[0];
    data++, size--;
    if (flags & 1) {
        const uint8_t *nul = (const uint8_t *)memchr(data, 0, size);
        if (!nul) return 0;
        config = (const char *)data;
        config_len = (size_t)(nul - data);
        size -= config_len + 1;
        data = nul + 1;
    }
    memset(&opts, 0, sizeof opts);
    opts.weights = (ps_weights)((flags >> 1) & 3);
    s = ps_model_load_memory(&m, data, size, config, config_len, &opts, &e);
    if (s != PS_OK) {
        REQUIRE(m == NULL && e.code == s && e.msg[0] && strlen(e.msg) < sizeof e.msg);
        REQUIRE(s != PS_ERR_NOMEM); /* nothing here is big enough to run out of memory */
        return 0;
    }
    {
        const ps_config *cfg = ps_model_config(m);
        int ids[3], i;
        float *row;
        REQUIRE(cfg->n_layer >= 1 && cfg->n_layer <= PS__MAX_LAYERS);
        REQUIRE(cfg->n_head >= 1 && cfg->n_embd % cfg->n_head == 0);
        REQUIRE(cfg->n_embd >= 1 && cfg->n_embd <= PS__MAX_EMBD && cfg->n_vocab >= 1 && cfg->n_vocab <= PS__MAX_VOCAB);
        REQUIRE(cfg->n_ctx >= 1 && cfg->n_ctx <= PS__MAX_CTX && cfg->ln_eps > 0 && cfg->ln_eps < 1);
        s = ps_model_check(m, &e); /* reads every weight */
        REQUIRE(s == PS_OK || (s == PS_ERR_FORMAT && strstr(e.msg, "non-finite")));
        row = (float *)malloc((size_t)cfg->n_embd * sizeof(float));
        REQUIRE(row && ps_model_embedding(m, cfg->n_vocab - 1, row) == PS_OK);
        REQUIRE(ps_model_embedding(m, cfg->n_vocab, row) == PS_ERR_RANGE);
        free(row);
        REQUIRE(ps_ctx_create(&c, m, NULL, &e) == PS_OK);
        for (i = 0; i < 3; i++) ids[i] = (int)((flags * 7u + (unsigned)i * 31u) % (unsigned)cfg->n_vocab);
        s = ps_forward(c, ids, cfg->n_ctx < 3 ? cfg->n_ctx : 3, PS_ALL_LOGITS);
        REQUIRE(s == PS_OK && ps_logits_rows(c) == (cfg->n_ctx < 3 ? cfg->n_ctx : 3));
        ps_ctx_free(c);
    }
    ps_model_free(m);
    return 0;
}
