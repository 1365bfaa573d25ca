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
    regress_token_label_zero_cap();
    ps_ctx_free(c);
    ps_model_free(m);
    return test_report("regress");
}
