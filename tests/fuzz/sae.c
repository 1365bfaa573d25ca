/* libFuzzer harness: a sparse autoencoder from memory.

   Input: cfg.json up to the first NUL byte, then sae_weights.safetensors. An SAE that
   loads must be usable: its config within the limits, a row encoded and reconstructed,
   the TopK count of active features at most k. A failure must be a named error. */
#define PATCHSCOPE_IMPLEMENTATION
#include "../../patchscope.h"

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *nul = (const uint8_t *)memchr(data, 0, size);
    ps_sae *sae = NULL;
    ps_error e;
    ps_status s;
    if (!nul) return 0;
    s = ps_sae_load_memory(&sae, (const char *)data, (size_t)(nul - data), nul + 1, size - (size_t)(nul - data) - 1, &e);
    if (s != PS_OK) {
        REQUIRE(sae == NULL && e.code == s && e.msg[0] && strlen(e.msg) < sizeof e.msg && s != PS_ERR_NOMEM);
        return 0;
    }
    {
        const ps_sae_config *c = ps_sae_info(sae);
        float *x, *acts, *recon;
        int i, active = 0;
        REQUIRE(c->d_in >= 1 && c->d_sae >= 1 && c->layer >= 0 && (c->kind != PS_SAE_TOPK || (c->k >= 1 && c->k <= c->d_sae)));
        if ((size_t)c->d_in * c->d_sae > (1u << 24)) { /* a big SAE the fuzzer made from few bytes: loaded, not run */
            ps_sae_free(sae);
            return 0;
        }
        x = (float *)malloc((size_t)c->d_in * sizeof(float));
        acts = (float *)malloc((size_t)c->d_sae * sizeof(float));
        recon = (float *)malloc((size_t)c->d_in * sizeof(float));
        REQUIRE(x && acts && recon);
        for (i = 0; i < c->d_in; i++) x[i] = (float)((i * 37 % 11) - 5) * 0.25f;
        REQUIRE(ps_sae_encode(sae, x, 1, acts, recon) == PS_OK);
        for (i = 0; i < c->d_sae; i++) active += acts[i] != 0;
        REQUIRE(c->kind != PS_SAE_TOPK || active <= c->k);
        free(x), free(acts), free(recon);
    }
    ps_sae_free(sae);
    return 0;
}
