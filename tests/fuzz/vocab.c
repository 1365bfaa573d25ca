/* libFuzzer harness: the tokenizer loader (vocab.json + merges.txt) from memory.

   Input: vocab.json up to the first NUL byte, then merges.txt. A tokenizer that loads
   must be consistent: every token's bytes map back to its id, and encoding the input
   itself (any bytes) decodes back to it, with and without special tokens. */
#define PATCHSCOPE_IMPLEMENTATION
#include "../../patchscope.h"

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *nul = (const uint8_t *)memchr(data, 0, size);
    size_t vocab_len = nul ? (size_t)(nul - data) : size;
    const char *merges = nul ? (const char *)nul + 1 : NULL;
    size_t merges_len = nul ? size - vocab_len - 1 : 0;
    ps_tokenizer *t = NULL;
    ps_error e;
    ps_status s = ps_tokenizer_load_memory(&t, (const char *)data, vocab_len, merges, merges_len, &e);
    int V, id, flags;
    if (s) {
        REQUIRE(t == NULL && e.code == s && (s == PS_ERR_FORMAT || s == PS_ERR_RANGE) && e.msg[0]);
        return 0;
    }
    V = ps_tokenizer_vocab_size(t);
    REQUIRE(V >= 257);
    for (id = 0; id < V; id++) {
        size_t k;
        const char *b = ps_token_bytes(t, id, &k);
        REQUIRE(b && k > 0 && ps_token_id(t, b, k) == id);
    }
    REQUIRE(!ps_token_bytes(t, V, NULL) && !ps_token_bytes(t, -1, NULL));
    for (flags = 0; flags <= PS_ENCODE_SPECIAL; flags++) {
        int n = 0, *ids;
        size_t back_len = 0;
        char *back = (char *)malloc(size ? size : 1);
        REQUIRE(ps_encode(t, (const char *)data, size, flags, NULL, 0, &n) == (size ? PS_ERR_RANGE : PS_OK));
        ids = (int *)malloc((size_t)(n ? n : 1) * sizeof(int));
        REQUIRE(ps_encode(t, (const char *)data, size, flags, ids, n, &n) == PS_OK);
        REQUIRE(ps_decode(t, ids, n, back, size, &back_len) == PS_OK && back_len == size);
        REQUIRE(memcmp(back, data, size) == 0);
        free(ids);
        free(back);
    }
    ps_tokenizer_free(t);
    return 0;
}
