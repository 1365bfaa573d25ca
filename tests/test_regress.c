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
    ps_ctx_free(c);
    ps_model_free(m);
    return test_report("regress");
}
