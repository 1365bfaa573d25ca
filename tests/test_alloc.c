/* Allocation-failure injection: PS_MALLOC/PS_REALLOC fail at the k-th call, for every k
   along load + tokenize + forward + hooks + capture + sources + patches + grids + lens. Each run
   must stop with PS_ERR_NOMEM and an "out of memory" message, free everything it got,
   and a run without failures must then give the same results as ever. The live-block
   count catches leaks in any build; make test also runs this under ASan/LSan. */
#include <pthread.h>
#include <stdlib.h>

/* the pool's workers free their start-up blocks, so the counts take a lock */
static pthread_mutex_t alloc_lock = PTHREAD_MUTEX_INITIALIZER;
static long alloc_calls, alloc_fail_at = -1, alloc_live;

static void *t_realloc(void *p, size_t n) {
    void *q = NULL;
    pthread_mutex_lock(&alloc_lock);
    if (alloc_calls++ != alloc_fail_at) {
        q = realloc(p, n);
        if (q && !p) alloc_live++;
    }
    pthread_mutex_unlock(&alloc_lock);
    return q;
}
static void *t_malloc(size_t n) { return t_realloc(NULL, n); }
static void t_free(void *p) {
    pthread_mutex_lock(&alloc_lock);
    if (p) alloc_live--;
    pthread_mutex_unlock(&alloc_lock);
    free(p);
}
#define PS_MALLOC(n) t_malloc(n)
#define PS_REALLOC(p, n) t_realloc(p, n)
#define PS_FREE(p) t_free(p)

#define PATCHSCOPE_IMPLEMENTATION
#include "../patchscope.h"
#include "testutil.h"

/* what a complete run produces, to compare a clean run after the failures with */
typedef struct outcome {
    float logits[96];
    int gen[4], grid_top[4], tokens[16], n_tokens;
} outcome;

static int is_nomem(ps_status s, const char *msg) {
    return s == PS_ERR_NOMEM && strstr(msg, "out of memory") != NULL;
}

/* The whole workflow; stops at the first failure and frees what it made. *where gets
   the step that failed, for the report. */
static ps_status workflow(const char *model, int threads, int no_mmap, ps_weights weights, int tokenize,
                          outcome *o, const char **where, char *msg) {
    static const char text[] = "The capital of Poland is Warsaw; pneumonoultramicroscopic!";
    char back[sizeof text];
    size_t back_len;
    ps_tokenizer *t = NULL;
    ps_model *m = NULL;
    ps_pool *pool = NULL;
    ps_ctx *c = NULL;
    ps_source src;
    ps_grid grid;
    ps_grid_spec spec;
    ps_load_opts opts;
    ps_patch p;
    ps_error e;
    ps_status s;
    int ids[] = {17, 83, 5, 42, 0, 95, 61, 29}, pos = 2, i, calls = 0;
    static float probs[96 * 2], caps_out[2 * 8 * 128], pattern[8 * 2 * 8];
    ps_capture caps[2];
    ps_overwrite never = {99, 0, NULL}; /* a hook at every layer that never fires */
    memset(&opts, 0, sizeof opts);
    memset(&src, 0, sizeof src);
    memset(&grid, 0, sizeof grid);
    opts.no_mmap = no_mmap;
    opts.weights = weights;
    msg[0] = 0;
#define STEP(name, call, errmsg)                                                                              \
    do {                                                                                                      \
        *where = name;                                                                                        \
        if ((s = (call)) != PS_OK) {                                                                          \
            snprintf(msg, 256, "%s", errmsg);                                                                 \
            goto done;                                                                                        \
        }                                                                                                     \
    } while (0)
    STEP("pool", ps_pool_create(&pool, threads), "out of memory (pool)");
    STEP("load", ps_model_load(&m, model, &opts, &e), e.msg);
    if (tokenize) { /* loading the tokenizer is the slow step: one variant is enough */
        STEP("tokenizer", ps_tokenizer_load(&t, "weights", &e), e.msg);
        STEP("encode", ps_encode(t, text, sizeof text - 1, 0, o->tokens, 16, &o->n_tokens), "out of memory (encode)");
        CHECK(ps_decode(t, o->tokens, o->n_tokens, back, sizeof back, &back_len) == PS_OK &&
              back_len == sizeof text - 1 && memcmp(back, text, back_len) == 0);
    }
    STEP("ctx", ps_ctx_create(&c, m, pool, &e), e.msg);
    STEP("hook", ps_add_hook(c, PS_RESID_POST, PS_ALL_LAYERS, ps_overwrite_hook, &never, NULL), ps_ctx_error(c));
    caps[0].point = PS_MLP_POST; caps[0].layer = PS_ALL_LAYERS; caps[0].out = caps_out;
    caps[1].point = PS_PATTERN; caps[1].layer = 1; caps[1].out = pattern;
    STEP("run_with_cache", ps_run_with_cache(c, ids, 8, PS_ALL_LOGITS, caps, 2), ps_ctx_error(c));
    memcpy(o->logits, ps_logits(c, 7), sizeof o->logits);
    STEP("fork", ps_seq_fork(c, 0, 3, 5), ps_ctx_error(c));
    STEP("batch", ps_forward_batch(c, &(ps_batch){2, (int[]){3, 0}, (int[]){2, 1}, ids}, 0), ps_ctx_error(c));
    STEP("generate", (ps_ctx_reset(c), ps_generate(c, ids, 4, 4, o->gen)), ps_ctx_error(c));
    STEP("source", ps_source_run(c, ids, 8, PS_RESID_POST, &pos, 1, &src), ps_ctx_error(c));
    memset(&p, 0, sizeof p);
    p.vec = ps_source_state(&src, 0, pos);
    p.layer = 1;
    p.pos = -1;
    STEP("inspect", ps_inspect(c, &p, ids, 6, probs, 2, o->gen), ps_ctx_error(c));
    memset(&spec, 0, sizeof spec);
    spec.src = &src;
    spec.src_pos = pos;
    spec.src_last = spec.tgt_last = 1;
    spec.target = ids;
    spec.n_target = 6;
    spec.tgt_pos = 3;
    spec.keep_probs = 1;
    STEP("grid", ps_grid_run(c, &spec, &grid), ps_ctx_error(c));
    memcpy(o->grid_top, grid.top_id, sizeof o->grid_top);
    ps_grid_free(&grid);
    spec.naive = 1;
    STEP("naive grid", ps_grid_run(c, &spec, &grid), ps_ctx_error(c));
    for (i = 0; i < 4; i++) calls += grid.top_id[i] != o->grid_top[i];
    ps_grid_free(&grid);
    STEP("lens", ps_lens(c, ps_source_state(&src, 0, pos), 1, probs), ps_ctx_error(c));
    CHECK_MSG(calls == 0, "naive grid == efficient grid");
done:
#undef STEP
    ps_grid_free(&grid);
    ps_source_free(&src);
    ps_ctx_free(c);
    ps_tokenizer_free(t);
    ps_model_free(m);
    ps_pool_free(pool);
    return s;
}

static void inject(const char *model, int threads, int no_mmap, ps_weights weights, int tokenize) {
    outcome want, got;
    const char *where;
    char msg[256], what[400];
    long k, total;
    ps_status s;
    alloc_fail_at = -1;
    alloc_calls = alloc_live = 0;
    memset(&want, 0, sizeof want);
    s = workflow(model, threads, no_mmap, weights, tokenize, &want, &where, msg);
    CHECK_MSG(s == PS_OK, msg);
    CHECK_MSG(alloc_live == 0, "a clean run frees everything");
    total = alloc_calls;
    for (k = 0; k < total; k++) {
        alloc_fail_at = k;
        alloc_calls = alloc_live = 0;
        s = workflow(model, threads, no_mmap, weights, tokenize, &got, &where, msg);
        snprintf(what, sizeof what, "%s: allocation %ld of %ld fails in %s: got %s \"%s\"", model, k, total, where,
                 ps_status_name(s), msg);
        CHECK_MSG(is_nomem(s, msg), what);
        snprintf(what, sizeof what, "%s: allocation %ld of %ld fails in %s: %ld blocks leak", model, k, total, where,
                 alloc_live);
        CHECK_MSG(alloc_live == 0, what);
    }
    alloc_fail_at = -1;
    alloc_calls = alloc_live = 0;
    memset(&got, 0, sizeof got);
    CHECK(workflow(model, threads, no_mmap, weights, tokenize, &got, &where, msg) == PS_OK);
    CHECK_CLOSE(got.logits, want.logits, 96, 0, "after the failures, a clean run gives the same logits");
    CHECK_MSG(memcmp(got.gen, want.gen, sizeof got.gen) == 0 && memcmp(got.grid_top, want.grid_top, sizeof got.grid_top) == 0 &&
                  got.n_tokens == want.n_tokens && memcmp(got.tokens, want.tokens, sizeof got.tokens) == 0,
              "after the failures, a clean run gives the same tokens and grid");
    printf("%s (%d threads%s%s): %ld allocation points, each failing cleanly\n", model, threads,
           no_mmap ? ", read" : ", mapped", tokenize ? ", tokenizer" : "", total);
}

int main(void) {
    inject("build/models/tiny", 1, 0, PS_WEIGHTS_AS_STORED, 1);
    inject("build/models/tiny", 3, 1, PS_WEIGHTS_BF16, 0);   /* read, not mapped; every matrix converted */
    inject("build/models/tiny-f16", 2, 0, PS_WEIGHTS_F32, 0); /* half precision converted at load */
    return test_report("alloc");
}
