/* Regression tests for what the fuzzers (tests/fuzz) found in the public API. Findings in
   file parsing are cases of tests/test_malformed.c; allocation failures are covered by
   tests/test_alloc.c. Each reproducer is also in the fuzzers' seed corpora. */
#define PATCHSCOPE_IMPLEMENTATION
#include "../patchscope.h"
#include "testutil.h"

/* ps_seq_truncate(c, -1, 0) walked c->seqs[-1] looking for forks */
static void regress_truncate_negative_sequence(ps_ctx *c) {
    int ids[] = {1, 2, 3};
    CHECK(ps_forward(c, ids, 3, 0) == PS_OK);
    CHECK(ps_seq_truncate(c, -1, 0) == PS_ERR_RANGE);
    CHECK_MSG(strstr(ps_ctx_error(c), "sequence id -1 is outside 0..65535") != NULL, ps_ctx_error(c));
    CHECK(ps_seq_truncate(c, -2147483647 - 1, 0) == PS_ERR_RANGE);
    CHECK(ps_seq_truncate(c, 65536, 0) == PS_ERR_RANGE);
    CHECK(ps_seq_truncate(c, 65535, 0) == PS_OK); /* valid, never used: already empty */
    CHECK(ps_seq_len(c, 0) == 3);
    ps_ctx_reset(c);
}

/* ps_grid_run with no source returned before clearing *out, so ps_grid_free on the
   error path freed whatever the caller's struct held */
static void regress_grid_without_source(ps_ctx *c) {
    ps_grid grid;
    ps_grid_spec spec;
    int ids[] = {1, 2, 3};
    memset(&grid, 0xAB, sizeof grid);
    memset(&spec, 0, sizeof spec);
    spec.target = ids;
    spec.n_target = 3;
    CHECK(ps_grid_run(c, &spec, &grid) == PS_ERR_ARG);
    CHECK(grid.top_id == NULL && grid.top_prob == NULL && grid.probs == NULL && grid.n_src == 0);
    ps_grid_free(&grid);
    memset(&grid, 0xAB, sizeof grid);
    CHECK(ps_grid_run(c, NULL, &grid) == PS_ERR_ARG && grid.top_id == NULL);
}

/* ps_run_with_cache reckoned the pattern's width, n_head * (length + n), before checking
   n: n = INT_MIN overflowed */
static void regress_capture_negative_count(ps_ctx *c) {
    float out[64];
    int ids[] = {1, 2, 3};
    ps_capture cap;
    cap.point = PS_PATTERN;
    cap.layer = PS_ALL_LAYERS;
    cap.out = out;
    CHECK(ps_run_with_cache(c, ids, -2147483647 - 1, 0, &cap, 1) == PS_ERR_ARG);
    CHECK(ps_run_with_cache(c, ids, 0, 0, &cap, 1) == PS_ERR_ARG);
    CHECK(ps_run_with_cache(c, ids, 2147483647, 0, &cap, 1) == PS_ERR_RANGE);
    CHECK_MSG(strstr(ps_ctx_error(c), "2147483647 tokens after 0 do not fit the model's 32 positions") != NULL, ps_ctx_error(c));
    CHECK(ps_seq_len(c, 0) == 0);
    CHECK(ps_run_with_cache(c, ids, 3, 0, &cap, 1) == PS_OK && out[0] == 1.0f && out[3] == 1.0f); /* row 0: itself */
    ps_ctx_reset(c);
}

/* ps_inspect took a negative d_src as the vector's width: an affine map then read
   A[(size_t)d_src * d_tgt + j], far before the matrix */
static void regress_inspect_negative_width(ps_ctx *c) {
    static float A[33 * 32], vec[32];
    int ids[] = {1, 2, 3};
    ps_patch p;
    memset(&p, 0, sizeof p);
    p.vec = vec;
    p.d_src = -1;
    p.pos = -1;
    p.map.affine = A;
    CHECK(ps_inspect(c, &p, ids, 3, NULL, 0, NULL) == PS_ERR_ARG);
    CHECK_MSG(strstr(ps_ctx_error(c), "d_src is -1") != NULL, ps_ctx_error(c));
    p.d_src = 32;
    CHECK(ps_inspect(c, &p, ids, 3, NULL, 0, NULL) == PS_OK);
    ps_ctx_reset(c);
}

/* ps_token_label(t, id, out, 0) wrote its NUL to out[0], a byte past a zero-size buffer */
static void regress_token_label_zero_cap(void) {
    ps_tokenizer *t;
    ps_error e;
    char buf[8];
    int cap;
    if (ps_tokenizer_load(&t, "weights", &e)) {
        printf("cannot load the tokenizer: %s\n", e.msg);
        CHECK(0);
        return;
    }
    for (cap = 0; cap < 8; cap++) {
        memset(buf, 'Z', sizeof buf);
        ps_token_label(t, 464, buf, (size_t)cap); /* "The" */
        CHECK_MSG(buf[cap] == 'Z' && (cap == 0 || strlen(buf) < (size_t)cap), "a label stays inside its buffer");
        memset(buf, 'Z', sizeof buf);
        ps_token_label(t, 1 << 30, buf, (size_t)cap); /* "#1073741824", cut */
        CHECK_MSG(buf[cap] == 'Z' && (cap == 0 || strlen(buf) < (size_t)cap), "an unknown id's label too");
    }
    memset(buf, 0, sizeof buf);
    ps_token_label(t, 464, buf, sizeof buf);
    CHECK(strcmp(buf, "The") == 0);
    ps_tokenizer_free(t);
}

/* ps_rank read probs[id] for any id; ps_readout_fill left top-k slots unset when the
   vocabulary had fewer than PS_TOP_K ids (both left open by the fuzzing round) */
static void regress_readouts_small_and_out_of_range(void) {
    float p[3] = {0.2f, 0.5f, 0.3f};
    ps_readout r;
    memset(&r, 0xAB, sizeof r);
    CHECK(ps_rank(p, 3, 3) == -1 && ps_rank(p, 3, -1) == -1 && ps_rank(p, 3, 0) == 2);
    ps_readout_fill(p, p, 3, &r);
    CHECK(r.top_id[0] == 1 && r.top_id[1] == 2 && r.top_id[2] == 0 && r.precision_at_1 == 1);
    CHECK(r.top_id[3] == -1 && r.top_prob[3] == 0.0f && r.top_id[PS_TOP_K - 1] == -1);
}

/* a tensor name too long for a GPT-2 tensor showed up blank in the overlap message */
static void regress_long_name_in_messages(void) {
    static unsigned char file[1024];
    const char *hdr = "{\"a_tensor_name_that_goes_on_and_on_well_past_ninety_six_characters_so_that_it_cannot_be_kept_whole_xyz\":"
                      "{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                      "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}";
    size_t n = strlen(hdr);
    ps_model *m;
    ps_error e;
    int i;
    for (i = 0; i < 8; i++) file[i] = (unsigned char)(n >> (8 * i));
    memcpy(file + 8, hdr, n);
    CHECK(ps_model_load_memory(&m, file, 8 + n + 12, NULL, 0, NULL, &e) == PS_ERR_FORMAT);
    CHECK_MSG(strstr(e.msg, "a_tensor_name_that_goes_on") && strstr(e.msg, "...") && strstr(e.msg, "overlap"), e.msg);
}

int main(void) {
    ps_model *m;
    ps_ctx *c;
    ps_error e;
    if (ps_model_load(&m, "build/models/tiny", NULL, &e) || ps_ctx_create(&c, m, NULL, &e)) {
        printf("cannot load the tiny model: %s\n", e.msg);
        return 1;
    }
    regress_truncate_negative_sequence(c);
    regress_grid_without_source(c);
    regress_capture_negative_count(c);
    regress_inspect_negative_width(c);
    regress_token_label_zero_cap();
    regress_readouts_small_and_out_of_range();
    regress_long_name_in_messages();
    ps_ctx_free(c);
    ps_model_free(m);
    return test_report("regress");
}
