/* libFuzzer harness: ps_encode on arbitrary bytes with GPT-2's tokenizer (weights/).

   Input: one flags byte (bit 0: PS_ENCODE_SPECIAL; bits 1-7: a cap to try, to test the
   size protocol), then the text. Checked: the size protocol (cap 0 counts, a short cap
   writes no more than cap ids and says PS_ERR_RANGE, the exact cap succeeds), every id
   in the vocabulary, decode(encode(x)) == x byte for byte, and the same for the text cut
   into two halves encoded apart; token labels fit any buffer. Run from the repository root. */
#define PATCHSCOPE_IMPLEMENTATION
#include "../../patchscope.h"

#include "fuzz.h"

static ps_tokenizer *tok;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    ps_error e;
    (void)argc, (void)argv;
    if (ps_tokenizer_load(&tok, "weights", &e)) {
        fprintf(stderr, "fuzz encode: %s (run from the repository root)\n", e.msg);
        exit(1);
    }
    return 0;
}

/* encodes text with the size protocol, checks the ids and the round trip; returns them */
static int *encode(const char *text, size_t len, int flags, int try_cap, int *n) {
    int *ids, *few, got = -1, i;
    char *back;
    size_t back_len = 1;
    ps_status s = ps_encode(tok, text, len, flags, NULL, 0, n);
    REQUIRE(s == (*n == 0 ? PS_OK : PS_ERR_RANGE) && *n >= 0 && (size_t)*n <= len);
    if (try_cap < *n) { /* too small a buffer: filled, not overrun (ASan sees the exact size) */
        few = (int *)malloc((size_t)(try_cap ? try_cap : 1) * sizeof(int));
        REQUIRE(ps_encode(tok, text, len, flags, few, try_cap, &got) == PS_ERR_RANGE && got == *n);
        free(few);
    }
    ids = (int *)malloc((size_t)(*n ? *n : 1) * sizeof(int));
    REQUIRE(ps_encode(tok, text, len, flags, ids, *n, &got) == PS_OK && got == *n);
    for (i = 0; i < *n; i++) REQUIRE(ids[i] >= 0 && ids[i] < ps_tokenizer_vocab_size(tok));
    REQUIRE(ps_decode(tok, ids, *n, NULL, 0, &back_len) == (len ? PS_ERR_RANGE : PS_OK) && back_len == len);
    back = (char *)malloc(len ? len : 1);
    REQUIRE(ps_decode(tok, ids, *n, back, len, &back_len) == PS_OK && back_len == len);
    REQUIRE(memcmp(back, text, len) == 0);
    free(back);
    return ids;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *text = (const char *)data + 1;
    size_t len = size ? size - 1 : 0, half = len / 2;
    int flags, n, na, nb, *ids, *a, *b, i;
    char label[64];
    if (size < 1) return 0;
    flags = data[0] & PS_ENCODE_SPECIAL;
    ids = encode(text, len, flags, data[0] >> 1, &n);
    /* the halves apart decode to the same bytes (not always the same ids: pieces may span the cut) */
    a = encode(text, half, flags, 0, &na);
    b = encode(text + half, len - half, flags, 0, &nb);
    for (i = 0; i < n && i < 4; i++) {
        size_t k;
        REQUIRE(ps_token_bytes(tok, ids[i], &k) && k > 0 && ps_token_id(tok, ps_token_bytes(tok, ids[i], &k), k) == ids[i]);
        size_t cap = (size_t)(data[0] + i) % 12; /* labels in buffers of every small size */
        char *small = (char *)malloc(cap + 1);
        ps_token_label(tok, ids[i], label, sizeof label);
        REQUIRE(strlen(label) < sizeof label);
        small[cap] = 'Z'; /* a byte past the buffer: must stay (ASan misses writes into malloc(0)) */
        ps_token_label(tok, ids[i], small, cap);
        REQUIRE(small[cap] == 'Z');
        REQUIRE(cap == 0 || (strlen(small) < cap && strncmp(small, label, strlen(small)) == 0));
        free(small);
    }
    if (n > 0) REQUIRE(ps_find_last(ids, n, ids + n - 1, 1) >= n - 1);
    free(ids);
    free(a);
    free(b);
    return 0;
}
