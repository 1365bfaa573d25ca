/* libFuzzer harness: the tokenizer.json loader from memory, and encoding with what it loads.

   Input: tokenizer.json up to the first NUL byte, then a text. A tokenizer that loads must
   be consistent: every id has bytes, encoding valid UTF-8 succeeds with every flag (invalid
   UTF-8 is PS_ERR_FORMAT), the ids are in range and decode. */
#define PATCHSCOPE_IMPLEMENTATION
#include "../../patchscope.h"

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *nul = (const uint8_t *)memchr(data, 0, size);
    size_t json_len = nul ? (size_t)(nul - data) : size;
    const char *text = nul ? (const char *)nul + 1 : "";
    size_t text_len = nul ? size - json_len - 1 : 0, k;
    ps_tokenizer *t = NULL;
    ps_error e;
    ps_status s = ps_tokenizer_load_json_memory(&t, (const char *)data, json_len, &e);
    int V, id, flags, valid;
    if (s) {
        REQUIRE(t == NULL && e.code == s && (s == PS_ERR_FORMAT || s == PS_ERR_RANGE) && e.msg[0]);
        return 0;
    }
    V = ps_tokenizer_vocab_size(t);
    REQUIRE(V >= 1);
    for (id = 0; id < V; id++) REQUIRE(ps_token_bytes(t, id, &k) != NULL);
    valid = ps__utf8_valid((const unsigned char *)text, text_len) == text_len;
    for (flags = 0; flags <= (PS_ENCODE_SPECIAL | PS_ENCODE_BOS); flags++) {
        int n = 0, *ids, j;
        size_t len = 0;
        char *back;
        s = ps_encode(t, text, text_len, flags, NULL, 0, &n);
        if (!valid) { REQUIRE(s == PS_ERR_FORMAT); continue; }
        REQUIRE(s == PS_OK || s == PS_ERR_RANGE);
        ids = (int *)malloc((size_t)(n ? n : 1) * sizeof(int));
        REQUIRE(ps_encode(t, text, text_len, flags, ids, n, &n) == PS_OK);
        for (j = 0; j < n; j++) REQUIRE(ids[j] >= 0 && ids[j] < V);
        s = ps_decode(t, ids, n, NULL, 0, &len);
        REQUIRE(s == PS_OK || s == PS_ERR_RANGE);
        back = (char *)malloc(len + 1);
        REQUIRE(ps_decode(t, ids, n, back, len, &len) == PS_OK);
        free(back);
        free(ids);
    }
    ps_tokenizer_free(t);
    return 0;
}
