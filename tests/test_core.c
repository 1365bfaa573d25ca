/* Core tests: loading, the forward pass, hooks, KV cache, threads, errors.
   The numbers come from tools/reference (PyTorch, float64) via tests/data/golden; the
   models from build/gen_models. Run from the repository root (make test does). */
#define PATCHSCOPE_IMPLEMENTATION
#include "../patchscope.h"
#include "testutil.h"
#include "golden.h"

/* --- the forward pass against the oracle -------------------------------------------- */

static const ps_point layer_points[] = {PS_RESID_PRE, PS_Q, PS_K, PS_V, PS_PATTERN, PS_Z, PS_ATTN_OUT,
                                        PS_RESID_MID, PS_MLP_PRE, PS_MLP_POST, PS_MLP_OUT, PS_RESID_POST};
#define N_LAYER_POINTS (int)(sizeof layer_points / sizeof layer_points[0])

static void test_model_against_oracle(const char *name, int n_layer, int n_head, int n_embd, int n_vocab,
                                      int n_ctx, int hooks) {
    golden g;
    ps_model *m;
    ps_ctx *c;
    int T, *ids, i, l, p;
    size_t n;
    float *want;
    char what[128];
    if (!golden_open(&g, name)) { CHECK(0); return; }
    m = load(name, NULL);
    {
        const ps_config *cfg = ps_model_config(m);
        snprintf(what, sizeof what, "%s config", name);
        CHECK_MSG(cfg->n_layer == n_layer && cfg->n_head == n_head && cfg->n_embd == n_embd &&
                      cfg->n_vocab == n_vocab && cfg->n_ctx == n_ctx,
                  what);
    }
    CHECK(ps_ctx_create(&c, m, NULL, NULL) == PS_OK);
    ids = golden_i32(&g, "ids", &T);

    /* all-position logits, and every hook point of every layer in the same run */
    {
        ps_capture caps[2 + 12 * 16];
        float *bufs[2 + 12 * 16];
        int nc = 0;
        if (hooks) {
            caps[nc].point = PS_EMBED; caps[nc].layer = -1; nc++;
            caps[nc].point = PS_LN_FINAL; caps[nc].layer = -1; nc++;
            for (l = 0; l < n_layer; l++)
                for (p = 0; p < N_LAYER_POINTS; p++) {
                    caps[nc].point = layer_points[p];
                    caps[nc].layer = l;
                    nc++;
                }
        }
        for (i = 0; i < nc; i++) {
            bufs[i] = (float *)calloc((size_t)T * ps_point_width(m, caps[i].point, T), sizeof(float));
            caps[i].out = bufs[i];
        }
        CHECK(ps_run_with_cache(c, ids, T, PS_ALL_LOGITS, caps, nc) == PS_OK);
        CHECK(ps_logits_rows(c) == T);
        want = golden_f32(&g, "logits", &n);
        snprintf(what, sizeof what, "%s logits", name);
        CHECK_CLOSE(ps_logits(c, 0), want, n, 1e-4, what);
        free(want);
        for (i = 0; i < nc; i++) {
            if (caps[i].layer < 0) snprintf(what, sizeof what, "%s", ps_point_name(caps[i].point));
            else snprintf(what, sizeof what, "%s.%d", ps_point_name(caps[i].point), caps[i].layer);
            want = golden_f32(&g, what, &n);
            CHECK(n == (size_t)T * ps_point_width(m, caps[i].point, T));
            snprintf(what + strlen(what), sizeof what - strlen(what), " (%s)", name);
            CHECK_CLOSE(bufs[i], want, n, 1e-4, what);
            free(want);
            free(bufs[i]);
        }
    }

    /* token by token with the KV cache == the full pass */
    {
        ps_ctx *c2;
        CHECK(ps_ctx_create(&c2, m, NULL, NULL) == PS_OK);
        for (i = 0; i < T; i++) {
            CHECK(ps_forward(c2, &ids[i], 1, 0) == PS_OK);
            snprintf(what, sizeof what, "%s KV step %d", name, i);
            CHECK_CLOSE(ps_logits(c2, 0), ps_logits(c, i), (size_t)n_vocab, 1e-5, what);
        }
        CHECK(ps_seq_len(c2, 0) == T);
        ps_ctx_free(c2);
    }

    /* greedy generation */
    {
        int ng, *gen = golden_i32(&g, "gen.ids", &ng), out[16];
        ps_ctx_reset(c);
        CHECK(ps_generate(c, gen, 4, ng - 4, out) == PS_OK);
        snprintf(what, sizeof what, "%s greedy ids", name);
        CHECK_MSG(memcmp(out, gen + 4, (size_t)(ng - 4) * sizeof(int)) == 0, what);
        free(gen);
    }
    free(ids);
    ps_ctx_free(c);
    ps_model_free(m);
    golden_close(&g);
}

/* --- patching through a hook ---------------------------------------------------------- */

typedef struct patch { int layer, pos; const float *vec; } patch;

static int patch_hook(const ps_event *ev, void *user) {
    const patch *p = (const patch *)user;
    int r;
    for (r = 0; r < ev->n_rows; r++)
        if (ev->pos[r] == p->pos) memcpy(ev->data + (size_t)r * ev->width, p->vec, (size_t)ev->width * sizeof(float));
    return 0;
}

static void test_patch(const char *name) {
    golden g;
    ps_model *m;
    ps_ctx *c;
    int T, *ids, n1, *layer, *pos, rows;
    size_t n;
    float *vec, *want;
    patch p;
    char what[64];
    if (!golden_open(&g, name)) { CHECK(0); return; }
    m = load(name, NULL);
    CHECK(ps_ctx_create(&c, m, NULL, NULL) == PS_OK);
    ids = golden_i32(&g, "ids", &T);
    layer = golden_i32(&g, "patch.layer", &n1);
    pos = golden_i32(&g, "patch.pos", &n1);
    vec = golden_f32(&g, "patch.vec", &n);
    want = golden_f32(&g, "patch.logits", &n);
    rows = (int)(n / (size_t)ps_model_config(m)->n_vocab);
    p.layer = *layer;
    p.pos = *pos;
    p.vec = vec;
    CHECK(ps_add_hook(c, PS_RESID_POST, p.layer, patch_hook, &p, NULL) == PS_OK);
    CHECK(ps_forward(c, ids, T, rows == T ? PS_ALL_LOGITS : 0) == PS_OK);
    snprintf(what, sizeof what, "%s patched logits", name);
    CHECK_CLOSE(ps_logits(c, 0), want, n, 1e-4, what);
    free(ids); free(layer); free(pos); free(vec); free(want);
    ps_ctx_free(c);
    ps_model_free(m);
    golden_close(&g);
}

/* A hook that reads each row and writes the same values back must change nothing. */
static int rewrite_hook(const ps_event *ev, void *user) {
    size_t i, n = (size_t)ev->n_rows * ev->width;
    float *copy = (float *)malloc(n * sizeof(float) + 1);
    (void)user;
    memcpy(copy, ev->data, n * sizeof(float));
    for (i = 0; i < n; i++) ev->data[i] = copy[i];
    free(copy);
    return 0;
}

static int count_hook(const ps_event *ev, void *user) {
    (void)ev;
    ++*(int *)user;
    return 0;
}

static int stop_hook(const ps_event *ev, void *user) {
    (void)user;
    return ev->layer == 1 ? 7 : 0;
}

static void test_hooks(void) {
    ps_model *m = load("tiny", NULL);
    ps_ctx *a, *b;
    int ids[] = {17, 83, 5, 42, 0, 95, 61, 29}, p, calls = 0, h, V = ps_model_config(m)->n_vocab;
    CHECK(ps_ctx_create(&a, m, NULL, NULL) == PS_OK);
    CHECK(ps_ctx_create(&b, m, NULL, NULL) == PS_OK);
    for (p = 0; p < PS_POINT_COUNT; p++)
        CHECK(ps_add_hook(b, (ps_point)p, PS_ALL_LAYERS, rewrite_hook, NULL, NULL) == PS_OK);
    CHECK(ps_forward(a, ids, 8, PS_ALL_LOGITS) == PS_OK);
    CHECK(ps_forward(b, ids, 8, PS_ALL_LOGITS) == PS_OK);
    CHECK_MSG(memcmp(ps_logits(a, 0), ps_logits(b, 0), 8 * (size_t)V * sizeof(float)) == 0,
              "identity hooks at every point change nothing, bitwise");

    /* counts: one call per point per layer per pass */
    ps_clear_hooks(b);
    ps_ctx_reset(b);
    CHECK(ps_add_hook(b, PS_RESID_POST, PS_ALL_LAYERS, count_hook, &calls, NULL) == PS_OK);
    CHECK(ps_add_hook(b, PS_LOGITS, -1, count_hook, &calls, &h) == PS_OK);
    CHECK(ps_forward(b, ids, 8, 0) == PS_OK);
    CHECK(calls == 2 + 1);
    CHECK(ps_remove_hook(b, h) == PS_OK);
    CHECK(ps_remove_hook(b, h) == PS_ERR_ARG);
    CHECK(ps_add_hook(b, PS_LOGITS, 0, count_hook, &calls, NULL) == PS_ERR_RANGE);
    CHECK(ps_add_hook(b, PS_RESID_POST, 2, count_hook, &calls, NULL) == PS_ERR_RANGE);
    CHECK_MSG(strstr(ps_ctx_error(b), "layer 2") != NULL, ps_ctx_error(b));

    /* a hook can stop the pass; the context is left as it was */
    ps_clear_hooks(b);
    ps_ctx_reset(b);
    CHECK(ps_forward(b, ids, 4, 0) == PS_OK);
    CHECK(ps_add_hook(b, PS_MLP_OUT, PS_ALL_LAYERS, stop_hook, NULL, NULL) == PS_OK);
    CHECK(ps_forward(b, ids + 4, 4, PS_ALL_LOGITS) == PS_ERR_HOOK);
    CHECK_MSG(strstr(ps_ctx_error(b), "mlp_out") && strstr(ps_ctx_error(b), "returned 7"), ps_ctx_error(b));
    CHECK(ps_seq_len(b, 0) == 4);
    CHECK(ps_logits(b, 0) == NULL);
    ps_clear_hooks(b);
    CHECK(ps_forward(b, ids + 4, 4, PS_ALL_LOGITS) == PS_OK);
    CHECK_MSG(memcmp(ps_logits(a, 4), ps_logits(b, 0), 4 * (size_t)V * sizeof(float)) == 0,
              "a stopped pass leaves the cache intact");
    ps_ctx_free(a);
    ps_ctx_free(b);
    ps_model_free(m);
}

/* --- sequences: batches, forks, truncation -------------------------------------------- */
static void test_sequences(void) {
    ps_model *m = load("tiny", NULL);
    ps_ctx *a, *b;
    int ids[] = {17, 83, 5, 42, 0, 95, 61, 29, 77, 8}, other[] = {9, 66, 9, 31, 66, 31};
    int V = ps_model_config(m)->n_vocab, seqs[2] = {3, 1}, counts[2] = {6, 10}, both[16];
    float ref_ids[10 * 96], ref_other[6 * 96];
    CHECK(ps_ctx_create(&a, m, NULL, NULL) == PS_OK);
    CHECK(ps_ctx_create(&b, m, NULL, NULL) == PS_OK);
    CHECK(ps_forward(a, ids, 10, PS_ALL_LOGITS) == PS_OK);
    memcpy(ref_ids, ps_logits(a, 0), sizeof ref_ids);
    ps_ctx_reset(a);
    CHECK(ps_forward(a, other, 6, PS_ALL_LOGITS) == PS_OK);
    memcpy(ref_other, ps_logits(a, 0), sizeof ref_other);

    /* two sequences of different lengths in one batch: no padding, no shifted positions */
    {
        ps_batch bt;
        memcpy(both, other, sizeof other);
        memcpy(both + 6, ids, sizeof ids);
        bt.n_seq = 2; bt.seq = seqs; bt.n_tokens = counts; bt.tokens = both;
        CHECK(ps_forward_batch(b, &bt, PS_ALL_LOGITS) == PS_OK);
        CHECK(ps_logits_rows(b) == 16);
        CHECK_MSG(memcmp(ps_logits(b, 0), ref_other, sizeof ref_other) == 0, "batch row = single run (seq 3)");
        CHECK_MSG(memcmp(ps_logits(b, 6), ref_ids, sizeof ref_ids) == 0, "batch row = single run (seq 1)");
        CHECK(ps_seq_len(b, 3) == 6 && ps_seq_len(b, 1) == 10 && ps_seq_len(b, 0) == 0);
        seqs[1] = 3;
        CHECK(ps_forward_batch(b, &bt, 0) == PS_ERR_ARG); /* a sequence twice */
    }
    /* forks share a prefix; continuing a fork equals the full run */
    {
        ps_ctx_reset(b);
        CHECK(ps_forward(b, ids, 4, 0) == PS_OK);
        CHECK(ps_seq_fork(b, 0, 5, 4) == PS_OK);
        CHECK(ps_seq_fork(b, 5, 6, 3) == PS_OK);  /* a fork of a fork */
        {
            ps_batch bt;
            int s2[2] = {5, 6}, n2[2] = {6, 7}, toks[13];
            memcpy(toks, ids + 4, 6 * sizeof(int));
            memcpy(toks + 6, ids + 3, 7 * sizeof(int));
            bt.n_seq = 2; bt.seq = s2; bt.n_tokens = n2; bt.tokens = toks;
            CHECK(ps_forward_batch(b, &bt, PS_ALL_LOGITS) == PS_OK);
            CHECK_MSG(memcmp(ps_logits(b, 0), ref_ids + 4 * V, 6 * (size_t)V * sizeof(float)) == 0, "fork at 4 continues exactly");
            CHECK_MSG(memcmp(ps_logits(b, 6), ref_ids + 3 * V, 7 * (size_t)V * sizeof(float)) == 0, "fork of a fork at 3 continues exactly");
        }
        /* truncating the root below the forks' prefix gives them their own copy */
        CHECK(ps_seq_truncate(b, 0, 1) == PS_OK);
        CHECK(ps_forward(b, other, 6, 0) == PS_OK); /* overwrites root positions 1..6 */
        CHECK(ps_seq_truncate(b, 5, 9) == PS_OK);
        CHECK(ps_forward_batch(b, &(ps_batch){1, (int[]){5}, (int[]){1}, ids + 9}, 0) == PS_OK);
        CHECK_MSG(memcmp(ps_logits(b, 0), ref_ids + 9 * V, (size_t)V * sizeof(float)) == 0,
                  "a fork survives its root being truncated and rewritten");
        CHECK(ps_seq_fork(b, 5, 5, 2) == PS_ERR_ARG);
        CHECK(ps_seq_fork(b, 5, 7, 11) == PS_ERR_RANGE);
    }
    ps_ctx_free(a);
    ps_ctx_free(b);
    ps_model_free(m);
}

/* --- threads: any count gives the same bits, run after run -------------------------------- */

/* the source's states of every layer patched into every layer, all probabilities kept */
static float *grid_probs(ps_ctx *c, const int *ids) {
    int L = ps_model_config(ps_ctx_model(c))->n_layer, V = ps_model_config(ps_ctx_model(c))->n_vocab;
    size_t n = (size_t)L * L * V;
    float *probs = (float *)malloc(n * sizeof(float));
    ps_source src;
    ps_grid grid;
    ps_grid_spec spec;
    int pos = 3;
    CHECK(ps_source_run(c, ids, 10, PS_RESID_POST, &pos, 1, &src) == PS_OK);
    memset(&spec, 0, sizeof spec);
    spec.src = &src;
    spec.src_pos = pos;
    spec.src_last = spec.tgt_last = L - 1;
    spec.target = ids + 2;
    spec.n_target = 8;
    spec.tgt_pos = -3;
    spec.keep_probs = 1;
    CHECK(ps_grid_run(c, &spec, &grid) == PS_OK);
    memcpy(probs, grid.probs, n * sizeof(float));
    ps_grid_free(&grid);
    ps_source_free(&src);
    return probs;
}

static void test_threads(const char *name) {
    ps_model *m = load(name, NULL);
    int ids[] = {464, 3139, 286, 17, 83, 5, 42, 11, 60, 2}, counts[] = {1, 2, 3, 7}, i, V, L;
    float *ref = NULL, *ref_grid = NULL;
    char what[64];
    V = ps_model_config(m)->n_vocab;
    L = ps_model_config(m)->n_layer;
    for (i = 0; i < 10; i++) ids[i] %= V;
    for (i = 0; i < 4; i++) {
        ps_pool *pool;
        ps_ctx *c;
        float *logits = (float *)malloc((size_t)V * sizeof(float)), *grid, *again;
        CHECK(ps_pool_create(&pool, counts[i]) == PS_OK);
        CHECK(ps_ctx_create(&c, m, pool, NULL) == PS_OK);
        CHECK(ps_forward(c, ids, 10, PS_ALL_LOGITS) == PS_OK);
        CHECK(ps_forward(c, ids, 1, 0) == PS_OK); /* a one-row step too */
        memcpy(logits, ps_logits(c, 0), (size_t)V * sizeof(float));
        grid = grid_probs(c, ids);
        again = grid_probs(c, ids);
        snprintf(what, sizeof what, "%s: the grid twice on %d threads, bitwise", name, counts[i]);
        CHECK_MSG(memcmp(grid, again, (size_t)L * L * V * sizeof(float)) == 0, what);
        free(again);
        if (!ref) {
            ref = logits;
            ref_grid = grid;
        } else {
            snprintf(what, sizeof what, "%s: %d threads == 1 thread, bitwise", name, counts[i]);
            CHECK_MSG(memcmp(ref, logits, (size_t)V * sizeof(float)) == 0, what);
            snprintf(what, sizeof what, "%s: grid on %d threads == 1 thread, bitwise", name, counts[i]);
            CHECK_MSG(memcmp(ref_grid, grid, (size_t)L * L * V * sizeof(float)) == 0, what);
            free(logits);
            free(grid);
        }
        ps_ctx_free(c);
        ps_pool_free(pool);
    }
    free(ref);
    free(ref_grid);
    ps_model_free(m);
}

/* --- errors: each names the problem (malformed files: tests/test_malformed.c) ----------- */
static void test_errors(void) {
    ps_model *m;
    ps_ctx *c;
    int ids[40] = {0}, out[40];
    /* prompts past the context, tokens outside the vocabulary */
    m = load("tiny", NULL);
    CHECK(ps_ctx_create(&c, m, NULL, NULL) == PS_OK);
    CHECK(ps_forward(c, ids, 33, 0) == PS_ERR_RANGE);
    CHECK_MSG(strstr(ps_ctx_error(c), "32 positions") != NULL, ps_ctx_error(c));
    CHECK(ps_forward(c, ids, 32, 0) == PS_OK);
    CHECK(ps_forward(c, ids, 1, 0) == PS_ERR_RANGE);
    ps_ctx_reset(c);
    CHECK(ps_generate(c, ids, 30, 4, out) == PS_ERR_RANGE);
    CHECK(ps_generate(c, ids, 30, 3, out) == PS_OK);
    ps_ctx_reset(c);
    ids[2] = 96;
    CHECK(ps_forward(c, ids, 3, 0) == PS_ERR_RANGE);
    CHECK_MSG(strstr(ps_ctx_error(c), "token id 96") != NULL, ps_ctx_error(c));
    ids[2] = -1;
    CHECK(ps_forward(c, ids, 3, 0) == PS_ERR_RANGE);
    CHECK_MSG(strstr(ps_ctx_error(c), "token id -1") != NULL, ps_ctx_error(c));
    CHECK(ps_forward(c, ids, 0, 0) == PS_ERR_ARG);
    /* sources, patches and grids refuse long prompts before allocating for them */
    {
        ps_source src;
        ps_patch p;
        ps_grid grid;
        ps_grid_spec spec;
        float probs[96];
        int pos = 0;
        ids[2] = 5;
        CHECK(ps_source_run(c, ids, 33, PS_RESID_POST, NULL, 0, &src) == PS_ERR_RANGE && !src.h);
        CHECK_MSG(strstr(ps_ctx_error(c), "source of 33 tokens keeping 33 positions is past the model's 32") != NULL, ps_ctx_error(c));
        CHECK(ps_source_run(c, ids, 32, PS_RESID_POST, &pos, 1, &src) == PS_OK);
        memset(&p, 0, sizeof p);
        p.vec = ps_source_state(&src, 1, 0);
        CHECK(ps_inspect(c, &p, ids, 33, probs, 0, NULL) == PS_ERR_RANGE);
        memset(&spec, 0, sizeof spec);
        spec.src = &src;
        spec.src_last = spec.tgt_last = 1;
        spec.target = ids;
        spec.n_target = 33;
        CHECK(ps_grid_run(c, &spec, &grid) == PS_ERR_RANGE && !grid.top_id);
        CHECK_MSG(strstr(ps_ctx_error(c), "target prompt of 33 tokens is past the model's 32") != NULL, ps_ctx_error(c));
        ps_source_free(&src);
    }
    ps_ctx_free(c);
    ps_model_free(m);
}

/* --- loading variants ---------------------------------------------------------------------- */
static void test_loading(void) {
    ps__file f;
    ps_error e;
    ps_model *a, *b;
    ps_load_opts conv;
    ps_ctx *ca, *cb;
    int ids[] = {17, 83, 5, 42};
    /* from memory, and F16 converted to F32 at load: same numbers as kept in half */
    CHECK(ps__file_read(&f, "build/models/tiny/model.safetensors", 0, &e) == PS_OK);
    CHECK(ps_model_load_memory(&a, f.data, f.size, NULL, 0, NULL, &e) == PS_ERR_CONFIG);
    CHECK_MSG(strstr(e.msg, "width 32 is not a standard") != NULL, e.msg);
    CHECK(ps_model_load_memory(&a, f.data, f.size, "{\"n_head\": 2}", 13, NULL, &e) == PS_OK);
    CHECK(ps_model_config(a)->n_head == 2 && ps_model_config(a)->n_layer == 2);
    ps_model_free(a);
    /* a .safetensors path reads the config.json of its folder: prefix's eps and context
       (1e-3, 24) are in no tensor shape */
    CHECK_MSG(ps_model_load(&a, "build/models/prefix/model.safetensors", NULL, &e) == PS_OK, e.msg);
    CHECK(a && ps_model_config(a)->ln_eps == 1e-3f && ps_model_config(a)->n_ctx == 24 && ps_model_config(a)->n_head == 3);
    ps_model_free(a);
    memset(&conv, 0, sizeof conv);
    conv.weights = PS_WEIGHTS_F32;
    a = load("tiny-f16", NULL);
    b = load("tiny-f16", &conv);
    CHECK(ps_model_dtype(a) == PS_F16 && ps_model_dtype(b) == PS_F32);
    CHECK(ps_ctx_create(&ca, a, NULL, NULL) == PS_OK);
    CHECK(ps_ctx_create(&cb, b, NULL, NULL) == PS_OK);
    CHECK(ps_forward(ca, ids, 4, 0) == PS_OK);
    CHECK(ps_forward(cb, ids, 4, 0) == PS_OK);
    CHECK_MSG(memcmp(ps_logits(ca, 0), ps_logits(cb, 0), 96 * sizeof(float)) == 0, "F16 in place == F16 converted");
    ps_ctx_free(ca);
    ps_ctx_free(cb);
    ps_model_free(a);
    ps_model_free(b);
    /* F32 converted to BF16 at load computes exactly what the BF16 file computes */
    conv.weights = PS_WEIGHTS_BF16;
    a = load("tiny", &conv);
    b = load("tiny-bf16", NULL);
    CHECK(ps_model_dtype(a) == PS_BF16 && ps_model_dtype(b) == PS_BF16);
    CHECK(ps_ctx_create(&ca, a, NULL, NULL) == PS_OK);
    CHECK(ps_ctx_create(&cb, b, NULL, NULL) == PS_OK);
    {   /* the matrices are bit for bit the file's round-to-nearest-even BF16 */
        int l, same = memcmp(a->wte.data, b->wte.data, 96 * 32 * 2) == 0;
        for (l = 0; l < 2; l++) {
            same &= memcmp(a->blocks[l].attn_w.data, b->blocks[l].attn_w.data, 32 * 96 * 2) == 0;
            same &= memcmp(a->blocks[l].proj_w.data, b->blocks[l].proj_w.data, 32 * 32 * 2) == 0;
            same &= memcmp(a->blocks[l].fc_w.data, b->blocks[l].fc_w.data, 32 * 128 * 2) == 0;
            same &= memcmp(a->blocks[l].fcproj_w.data, b->blocks[l].fcproj_w.data, 128 * 32 * 2) == 0;
        }
        CHECK_MSG(same, "F32 -> BF16 at load == the BF16 file's matrices");
    }
    CHECK(ps_forward(ca, ids, 4, 0) == PS_OK);
    CHECK(ps_forward(cb, ids, 4, 0) == PS_OK);
    CHECK_CLOSE(ps_logits(ca, 0), ps_logits(cb, 0), 96, 0.1, "BF16 matrices, F32 vs BF16 vectors");
    ps_ctx_free(ca);
    ps_ctx_free(cb);
    ps_model_free(a);
    ps_model_free(b);
    ps__file_close(&f);
}

/* A zero-filled checkpoint of any shape, in memory: enough to check how the loader
   reads hyperparameters from shapes alone (calloc'd pages cost nothing until touched). */
static unsigned char *zero_model(int C, int L, int V, int n_ctx, size_t *size) {
    char hdr[16384];
    int n = 0, l, i;
    size_t off = 0;
    unsigned char *buf;
    const char *parts[12] = {"ln_1.weight", "ln_1.bias", "attn.c_attn.weight", "attn.c_attn.bias",
                             "attn.c_proj.weight", "attn.c_proj.bias", "ln_2.weight", "ln_2.bias",
                             "mlp.c_fc.weight", "mlp.c_fc.bias", "mlp.c_proj.weight", "mlp.c_proj.bias"};
    int rows[12] = {C, C, C, 3 * C, C, C, C, C, C, 4 * C, 4 * C, C}, cols[12] = {0, 0, 3 * C, 0, C, 0, 0, 0, 4 * C, 0, C, 0};
#define ZM_TENSOR(name, r, c)                                                                                      \
    do {                                                                                                         \
        size_t bytes = (size_t)(r) * ((c) ? (size_t)(c) : 1) * 4;                                                \
        if ((c)) n += snprintf(hdr + n, sizeof hdr - n, "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[%d,%d],\"data_offsets\":[%lu,%lu]}", \
                               n > 1 ? "," : "", name, r, c, (unsigned long)off, (unsigned long)(off + bytes)); \
        else n += snprintf(hdr + n, sizeof hdr - n, "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[%d],\"data_offsets\":[%lu,%lu]}", \
                           n > 1 ? "," : "", name, r, (unsigned long)off, (unsigned long)(off + bytes));         \
        off += bytes;                                                                                            \
    } while (0)
    n += snprintf(hdr + n, sizeof hdr - n, "{");
    ZM_TENSOR("wte.weight", V, C);
    ZM_TENSOR("wpe.weight", n_ctx, C);
    ZM_TENSOR("ln_f.weight", C, 0);
    ZM_TENSOR("ln_f.bias", C, 0);
    for (l = 0; l < L; l++)
        for (i = 0; i < 12; i++) {
            char name[64];
            snprintf(name, sizeof name, "h.%d.%s", l, parts[i]);
            ZM_TENSOR(name, rows[i], cols[i]);
        }
#undef ZM_TENSOR
    n += snprintf(hdr + n, sizeof hdr - n, "}");
    *size = 8 + (size_t)n + off;
    buf = (unsigned char *)calloc(*size, 1);
    for (i = 0; i < 8; i++) buf[i] = (unsigned char)((unsigned long long)n >> (8 * i));
    memcpy(buf + 8, hdr, (size_t)n);
    return buf;
}

/* the four GPT-2 widths load from shapes alone, with their head counts */
static void test_standard_sizes(void) {
    static const int width[4] = {768, 1024, 1280, 1600}, heads[4] = {12, 16, 20, 25};
    int k, id = 3;
    for (k = 0; k < 4; k++) {
        size_t size;
        unsigned char *d = zero_model(width[k], 1, 8, 4, &size);
        ps_model *m;
        ps_ctx *c;
        ps_error e;
        char what[64];
        snprintf(what, sizeof what, "width %d loads with %d heads", width[k], heads[k]);
        CHECK_MSG(ps_model_load_memory(&m, d, size, NULL, 0, NULL, &e) == PS_OK && ps_model_config(m)->n_head == heads[k], what);
        CHECK(ps_ctx_create(&c, m, NULL, &e) == PS_OK);
        CHECK(ps_forward(c, &id, 1, 0) == PS_OK && ps_logits(c, 0)[0] == 0.0f); /* zero weights: zero logits */
        ps_ctx_free(c);
        ps_model_free(m);
        free(d);
    }
}

int main(void) {
    test_model_against_oracle("tiny", 2, 2, 32, 96, 32, 1);
    test_model_against_oracle("tiny-f16", 2, 2, 32, 96, 32, 1);
    test_model_against_oracle("tiny-bf16", 2, 2, 32, 96, 32, 1);
    test_model_against_oracle("mid", 3, 4, 64, 50257, 64, 1);
    test_model_against_oracle("prefix", 2, 3, 48, 200, 24, 1);
    test_model_against_oracle("meta", 2, 4, 32, 96, 16, 1);
    test_model_against_oracle("wide", 3, 4, 48, 96, 32, 1);
    test_model_against_oracle("infer768", 1, 12, 768, 64, 8, 0);
    test_patch("tiny");
    test_patch("mid");
    test_patch("prefix");
    test_hooks();
    test_sequences();
    test_threads("tiny");
    test_threads("mid");
    test_errors();
    test_loading();
    test_standard_sizes();
    return test_report("core");
}
