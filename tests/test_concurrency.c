/* One loaded model and one tokenizer shared by contexts in several threads at once, each
   context with its own KV cache, hooks and pool (or none, or one pool shared by two
   contexts), must give bitwise what the same work gives run alone on one thread. make
   test also runs this under ThreadSanitizer. */
#define PATCHSCOPE_IMPLEMENTATION
#include "../patchscope.h"
#include "testutil.h"

#include <pthread.h>

#define T 10   /* prompt length */
#define NEW 4  /* generated tokens */

/* everything one workload produces */
static ps_tokenizer *tok; /* shared too */

typedef struct result {
    int tokens[64], n_tokens;
    float *logits;   /* [T][V] */
    int gen[NEW], patched_gen[NEW];
    float *probs;    /* patched distribution [V] */
    float *grid;     /* [n_layer][n_layer][V] */
} result;

typedef struct job {
    const ps_model *m;
    ps_pool *pool;
    int variant, rounds, mismatches;
    const result *want; /* NULL: fill got as the reference */
    result got;
} job;

static void result_alloc(result *r, const ps_model *m) {
    int V = ps_model_config(m)->n_vocab, L = ps_model_config(m)->n_layer;
    r->logits = (float *)calloc((size_t)T * V, sizeof(float));
    r->probs = (float *)calloc((size_t)V, sizeof(float));
    r->grid = (float *)calloc((size_t)L * L * V, sizeof(float));
}

static void result_free(result *r) {
    free(r->logits);
    free(r->probs);
    free(r->grid);
}

static int same(const result *a, const result *b, const ps_model *m) {
    int V = ps_model_config(m)->n_vocab, L = ps_model_config(m)->n_layer;
    return a->n_tokens == b->n_tokens && memcmp(a->tokens, b->tokens, sizeof a->tokens) == 0 &&
           memcmp(a->logits, b->logits, (size_t)T * V * sizeof(float)) == 0 &&
           memcmp(a->gen, b->gen, sizeof a->gen) == 0 && memcmp(a->patched_gen, b->patched_gen, sizeof a->gen) == 0 &&
           memcmp(a->probs, b->probs, (size_t)V * sizeof(float)) == 0 &&
           memcmp(a->grid, b->grid, (size_t)L * L * V * sizeof(float)) == 0;
}

/* encoding, a forward pass with a patching hook, generation, a source, a patch and a
   grid; the variant changes the text, prompts and hook, so threads do different work */
static int workload(ps_ctx *c, int variant, result *r) {
    static const char *texts[] = {"The capital of Poland is Warsaw.", "Ceci n'est pas une pipe, 2024!",
                                  "  indented\n\tcode(x) { return x * 42; }", "Zażółć gęślą jaźń; 日本語 🎉"};
    const ps_model *m = ps_ctx_model(c);
    int V = ps_model_config(m)->n_vocab, L = ps_model_config(m)->n_layer, ids[T], i, ok = 1;
    float *vec = (float *)malloc((size_t)ps_model_config(m)->n_embd * sizeof(float));
    ps_overwrite ow;
    ps_source src;
    ps_patch p;
    ps_grid grid;
    ps_grid_spec spec;
    ok &= ps_encode(tok, texts[variant % 4], strlen(texts[variant % 4]), 0, r->tokens, 64, &r->n_tokens) == PS_OK;
    for (i = 0; i < T; i++) ids[i] = (17 * (i + 1) + 31 * variant) % V;
    ok &= ps_model_embedding(m, (5 + variant) % V, vec) == PS_OK;
    ow.pos = 2 + variant % 3;
    ow.seq = 0;
    ow.vec = vec;
    ps_ctx_reset(c);
    ps_clear_hooks(c);
    ok &= ps_add_hook(c, PS_RESID_MID, variant % L, ps_overwrite_hook, &ow, NULL) == PS_OK;
    ok &= ps_forward(c, ids, T, PS_ALL_LOGITS) == PS_OK;
    if (ok) memcpy(r->logits, ps_logits(c, 0), (size_t)T * V * sizeof(float));
    ps_ctx_reset(c);
    ok &= ps_generate(c, ids, 5, NEW, r->gen) == PS_OK;
    ps_clear_hooks(c);
    ok &= ps_source_run(c, ids, T, PS_RESID_POST, NULL, 0, &src) == PS_OK;
    memset(&p, 0, sizeof p);
    p.vec = ps_source_state(&src, L - 1, 3);
    p.layer = variant % L;
    p.pos = -1;
    ok &= p.vec && ps_inspect(c, &p, ids + 3, 6, r->probs, NEW, r->patched_gen) == PS_OK;
    memset(&spec, 0, sizeof spec);
    spec.src = &src;
    spec.src_pos = 4;
    spec.src_last = spec.tgt_last = L - 1;
    spec.target = ids + 1;
    spec.n_target = 7;
    spec.tgt_pos = -2;
    spec.keep_probs = 1;
    ok &= ps_grid_run(c, &spec, &grid) == PS_OK;
    if (ok) memcpy(r->grid, grid.probs, (size_t)L * L * V * sizeof(float));
    ps_grid_free(&grid);
    ps_source_free(&src);
    free(vec);
    return ok;
}

static void *run_job(void *arg) {
    job *j = (job *)arg;
    ps_ctx *c;
    int r;
    if (ps_ctx_create(&c, j->m, j->pool, NULL)) {
        j->mismatches = -1;
        return NULL;
    }
    for (r = 0; r < j->rounds; r++) {
        if (!workload(c, j->variant, &j->got)) j->mismatches = -1;
        else if (j->want && !same(&j->got, j->want, j->m)) j->mismatches++;
    }
    ps_ctx_free(c);
    return NULL;
}

/* four threads on one model: no pool, a pool each, and one pool shared by two contexts */
static void test_shared_model(const char *path, int rounds) {
    enum { N = 4 };
    ps_model *m;
    ps_pool *own, *shared;
    ps_error e;
    job ref[N], jobs[N];
    pthread_t th[N];
    char what[160];
    int i;
    if (ps_model_load(&m, path, NULL, &e)) {
        printf("cannot load %s: %s\n", path, e.msg);
        exit(1);
    }
    CHECK(ps_pool_create(&own, 2) == PS_OK && ps_pool_create(&shared, 3) == PS_OK);
    for (i = 0; i < N; i++) { /* references, alone and single-threaded */
        memset(&ref[i], 0, sizeof ref[i]);
        ref[i].m = m;
        ref[i].variant = i;
        ref[i].rounds = 1;
        result_alloc(&ref[i].got, m);
        run_job(&ref[i]);
        CHECK_MSG(ref[i].mismatches == 0, "the reference workload runs");
    }
    for (i = 0; i < N; i++) {
        memset(&jobs[i], 0, sizeof jobs[i]);
        jobs[i].m = m;
        jobs[i].pool = i == 0 ? NULL : i == 1 ? own : shared;
        jobs[i].variant = i;
        jobs[i].rounds = rounds;
        jobs[i].want = &ref[i].got;
        result_alloc(&jobs[i].got, m);
        CHECK(pthread_create(&th[i], NULL, run_job, &jobs[i]) == 0);
    }
    for (i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        snprintf(what, sizeof what, "%s: thread %d (%s) == alone, bitwise, %d rounds", path, i,
                 i == 0 ? "no pool" : i == 1 ? "own pool" : "shared pool", rounds);
        CHECK_MSG(jobs[i].mismatches == 0, what);
        result_free(&jobs[i].got);
        result_free(&ref[i].got);
    }
    ps_pool_free(own);
    ps_pool_free(shared);
    ps_model_free(m);
}

/* arguments: the models to use (make test runs the ThreadSanitizer build on tiny only) */
int main(int argc, char **argv) {
    ps_error e;
    int i;
    if (ps_tokenizer_load(&tok, "weights", &e)) {
        printf("cannot load the tokenizer: %s\n", e.msg);
        return 1;
    }
    if (argc > 1)
        for (i = 1; i < argc; i++) test_shared_model(argv[i], 2);
    else {
        test_shared_model("build/models/tiny", 2);
        test_shared_model("build/models/mid", 1);
    }
    ps_tokenizer_free(tok);
    return test_report("concurrency");
}
