/* Interventions against the float64 oracle (tests/data/golden/interv.safetensors, from
   tools/reference/make_interv_goldens.py, one full run per cell): activation patching by
   (layer, position) and by (layer, head), batched and naive, with 1 and 3 threads;
   ablation, steering; sparse autoencoders (tests/data/golden/sae.safetensors, from
   make_sae_goldens.py). */
#define PATCHSCOPE_IMPLEMENTATION
#define PS__PATCH_ROWS 40 /* batches of a few cells: the chunk boundaries get exercised */
#include "../patchscope.h"
#include "testutil.h"
#include "golden.h"

static int *ints(const golden *g, const char *model, const char *what, int *n) {
    char key[256];
    snprintf(key, sizeof key, "%s.%s", model, what);
    return golden_i32(g, key, n);
}

static float *floats(const golden *g, const char *model, const char *what, size_t *n) {
    char key[256];
    snprintf(key, sizeof key, "%s.%s", model, what);
    return golden_f32(g, key, n);
}

static void test_patching(const golden *g, const char *model) {
    static const ps_point pos_sites[] = {PS_RESID_PRE, PS_ATTN_OUT, PS_MLP_OUT, PS_RESID_POST, PS_V, PS_PATTERN};
    static const ps_point head_sites[] = {PS_Q, PS_K, PS_V, PS_Z, PS_PATTERN};
    ps_model *m = load(model, NULL);
    ps_pool *pool;
    ps_ctx *c[2];
    int n, n2, k, per_head, i, *clean = ints(g, model, "ap.clean", &n), *corrupted = ints(g, model, "ap.corrupted", &n2);
    int *tok = ints(g, model, "ap.tokens", &k);
    size_t ne;
    float *ends = floats(g, model, "ap.ends", &ne);
    char what[128];
    CHECK(ps_pool_create(&pool, 3) == PS_OK);
    CHECK(ps_ctx_create(&c[0], m, NULL, NULL) == PS_OK && ps_ctx_create(&c[1], m, pool, NULL) == PS_OK);
    for (per_head = 0; per_head < 2; per_head++)
        for (i = 0; i < (per_head ? 5 : 6); i++) {
            ps_patching_spec sp;
            ps_patching got[3];
            int t;
            float *want;
            memset(&sp, 0, sizeof sp);
            sp.clean = clean;
            sp.corrupted = corrupted;
            sp.n = n;
            sp.site = per_head ? head_sites[i] : pos_sites[i];
            sp.per_head = per_head;
            sp.answer = tok[0];
            sp.wrong = tok[1];
            snprintf(what, sizeof what, "ap.%s.%s", per_head ? "head" : "pos", ps_point_name(sp.site));
            want = floats(g, model, what, &ne);
            for (t = 0; t < 3; t++) { /* batched on 1 thread, batched on 3, naive */
                sp.naive = t == 2;
                CHECK_MSG(ps_patching_run(c[t == 1], &sp, &got[t]) == PS_OK, ps_ctx_error(c[t == 1]));
            }
            snprintf(what, sizeof what, "%s %s: patched logit differences", model, ps_point_name(sp.site));
            CHECK(got[0].n_layer * got[0].n_cols == (int)ne && got[0].n_cols == (per_head ? ps_model_config(m)->n_head : n));
            CHECK_CLOSE(got[0].diff, want, ne, 1e-4, what);
            CHECK_CLOSE(got[2].diff, want, ne, 1e-4, what);
            CHECK_MSG(memcmp(got[0].diff, got[1].diff, ne * sizeof(float)) == 0, "1 and 3 threads: the same bits");
            CHECK_CLOSE(got[0].diff, got[2].diff, ne, 1e-5, "batched == one run per cell");
            CHECK(fabs(got[0].clean_diff - ends[0]) < 1e-4 && fabs(got[0].corrupted_diff - ends[1]) < 1e-4);
            for (k = 0; k < (int)ne; k++) /* the metric is the normalised difference */
                CHECK(fabs(got[0].metric[k] - (want[k] - ends[1]) / (ends[0] - ends[1])) < 1e-4);
            free(want);
            for (t = 0; t < 3; t++) ps_patching_free(&got[t]);
        }
    free(clean);
    free(corrupted);
    free(tok);
    free(ends);
    ps_ctx_free(c[0]);
    ps_ctx_free(c[1]);
    ps_pool_free(pool);
    ps_model_free(m);
}

static void test_patching_errors(void) {
    ps_model *m = load("tiny", NULL);
    ps_ctx *c;
    ps_patching p;
    ps_patching_spec sp;
    int a[] = {1, 2, 3}, b[] = {1, 5, 3};
    CHECK(ps_ctx_create(&c, m, NULL, NULL) == PS_OK);
    memset(&sp, 0, sizeof sp);
    sp.clean = a;
    sp.corrupted = b;
    sp.n = 3;
    sp.site = PS_MLP_OUT;
    sp.per_head = 1;
    CHECK(ps_patching_run(c, &sp, &p) == PS_ERR_ARG && strstr(ps_ctx_error(c), "mlp_out has no heads"));
    sp.per_head = 0;
    sp.site = PS_LOGITS;
    CHECK(ps_patching_run(c, &sp, &p) == PS_ERR_ARG);
    sp.site = PS_RESID_PRE;
    sp.answer = 96;
    CHECK(ps_patching_run(c, &sp, &p) == PS_ERR_RANGE && strstr(ps_ctx_error(c), "outside the vocabulary"));
    sp.answer = 0;
    sp.n = 33;
    CHECK(ps_patching_run(c, &sp, &p) == PS_ERR_RANGE && p.diff == NULL);
    sp.n = 3;
    sp.corrupted = NULL;
    CHECK(ps_patching_run(c, &sp, &p) == PS_ERR_ARG);
    ps_ctx_free(c);
    ps_model_free(m);
}

/* logits of every position of ids with one hook at (point, layer) */
static void check_hooked(ps_ctx *c, const golden *g, const char *name, ps_point point, int layer, ps_hook_fn fn,
                         void *user) {
    int n, handle;
    int *ids = ints(g, "tiny", "ab.ids", &n);
    size_t ne;
    float *want = floats(g, "tiny", name, &ne);
    CHECK(ps_add_hook(c, point, layer, fn, user, &handle) == PS_OK);
    ps_ctx_reset(c);
    CHECK_MSG(ps_forward(c, ids, n, PS_ALL_LOGITS) == PS_OK, ps_ctx_error(c));
    CHECK(ps_logits_rows(c) == n && (int)ne == n * 96);
    CHECK_CLOSE(ps_logits(c, 0), want, ne, 1e-4, name);
    ps_remove_hook(c, handle);
    free(ids);
    free(want);
}

static void test_ablation(const golden *g) {
    static const int p0[] = {20, 45, 7, 66, 91, 33, 58, 2, 40}, p1[] = {3, 70, 44, 91, 12},
                     p2[] = {17, 83, 5, 42, 0, 95, 61, 29}, resample[] = {64, 3, 88, 21, 47, 90, 12, 70, 36};
    const int *prompts[] = {p0, p1, p2}, lens[] = {9, 5, 8}, units[] = {3, 17, 60, 100};
    ps_model *m = load("tiny", NULL);
    ps_ctx *c;
    ps_ablation ab;
    ps_capture cap;
    float mean_pos[9 * 32], mean_all[32], res[9 * 32];
    int rows;
    CHECK(ps_ctx_create(&c, m, NULL, NULL) == PS_OK);
    CHECK(ps_mean_activation(c, prompts, lens, 3, PS_MLP_OUT, 1, 1, mean_pos, &rows) == PS_OK && rows == 9);
    CHECK(ps_mean_activation(c, prompts, lens, 3, PS_MLP_OUT, 1, 0, mean_all, &rows) == PS_OK && rows == 1);
    memset(&ab, 0, sizeof ab);
    ab.head = -1;
    ab.values = mean_pos;
    ab.n_values = 9;
    check_hooked(c, g, "ab.mean_pos", PS_MLP_OUT, 1, ps_ablation_hook, &ab);
    ab.values = mean_all;
    ab.n_values = 1;
    check_hooked(c, g, "ab.mean_all", PS_MLP_OUT, 1, ps_ablation_hook, &ab);
    cap.point = PS_ATTN_OUT;
    cap.layer = 0;
    cap.out = res;
    ps_ctx_reset(c);
    CHECK(ps_run_with_cache(c, resample, 9, PS_NO_LOGITS, &cap, 1) == PS_OK);
    ab.values = res;
    ab.n_values = 9;
    check_hooked(c, g, "ab.resample", PS_ATTN_OUT, 0, ps_ablation_hook, &ab);
    memset(&ab, 0, sizeof ab);
    ab.head = 1;
    check_hooked(c, g, "ab.zero_head", PS_Z, 0, ps_ablation_hook, &ab);
    ab.head = 0;
    check_hooked(c, g, "ab.zero_pattern", PS_PATTERN, 1, ps_ablation_hook, &ab);
    ab.head = -1;
    ab.units = units;
    ab.n_units = 4;
    check_hooked(c, g, "ab.zero_units", PS_MLP_POST, 1, ps_ablation_hook, &ab);
    {   /* a head the point does not have stops the pass; so does a mean of the pattern */
        int ids[] = {1, 2, 3}, handle;
        ab.units = NULL;
        ab.head = 2;
        CHECK(ps_add_hook(c, PS_Z, 0, ps_ablation_hook, &ab, &handle) == PS_OK);
        CHECK(ps_forward(c, ids, 3, 0) == PS_ERR_HOOK);
        ps_remove_hook(c, handle);
        ab.head = 0;
        CHECK(ps_add_hook(c, PS_MLP_OUT, 0, ps_ablation_hook, &ab, &handle) == PS_OK);
        CHECK_MSG(ps_forward(c, ids, 3, 0) == PS_ERR_HOOK, "mlp_out has no heads");
        ps_remove_hook(c, handle);
        CHECK(ps_mean_activation(c, prompts, lens, 3, PS_PATTERN, 0, 0, mean_all, &rows) == PS_ERR_ARG);
        CHECK(ps_mean_activation(c, prompts, lens, 3, PS_MLP_OUT, 2, 0, mean_all, &rows) == PS_ERR_RANGE);
    }
    ps_ctx_free(c);
    ps_model_free(m);
}

static void test_steering(const golden *g) {
    ps_model *m = load("tiny", NULL);
    ps_ctx *c;
    ps_steer st;
    size_t ne;
    int prompt[] = {17, 83, 5, 42}, out[6], n, k, handle;
    float *vec = floats(g, "tiny", "steer.vec", &ne);
    CHECK(ps_ctx_create(&c, m, NULL, NULL) == PS_OK && ne == 32);
    st.vec = vec;
    st.scale = 4.0f;
    for (k = 0; k < 2; k++) {
        char name[64];
        int *want;
        float *logits;
        st.from = k ? 4 : 0;
        snprintf(name, sizeof name, "steer.%s.ids", k ? "new" : "all");
        want = ints(g, "tiny", name, &n);
        snprintf(name, sizeof name, "steer.%s.logits", k ? "new" : "all");
        logits = floats(g, "tiny", name, &ne);
        CHECK(ps_add_hook(c, PS_RESID_POST, 0, ps_steer_hook, &st, &handle) == PS_OK);
        ps_ctx_reset(c);
        CHECK(ps_generate(c, prompt, 4, 6, out) == PS_OK);
        CHECK_MSG(n == 10 && memcmp(out, want + 4, 6 * sizeof(int)) == 0, name);
        ps_ctx_reset(c);
        CHECK(ps_forward(c, prompt, 4, PS_ALL_LOGITS) == PS_OK);
        CHECK_CLOSE(ps_logits(c, 0), logits, ne, 1e-4, name);
        ps_remove_hook(c, handle);
        free(want);
        free(logits);
    }
    free(vec);
    ps_ctx_free(c);
    ps_model_free(m);
}

/* steering vectors from contrastive pairs against the oracle (mean and first principal
   component, per layer), their control-vector GGUF written and read back bit for bit,
   and steering by the file equal to steering by ps_steer_hook with the oracle's vector */
static void test_steering_vectors(const golden *g) {
    ps_model *m = load("tiny", NULL);
    ps_ctx *c;
    ps_control_vector cv, back;
    ps_error err;
    int n_pos, n_neg, n_pairs, n2, i, method, *pos = ints(g, "tiny", "cv.pos", &n_pos), *neg = ints(g, "tiny", "cv.neg", &n_neg);
    int *pos_len = ints(g, "tiny", "cv.pos_len", &n_pairs), *neg_len = ints(g, "tiny", "cv.neg_len", &n2);
    const int *pp[16], *nn[16];
    size_t ne;
    CHECK(ps_ctx_create(&c, m, NULL, NULL) == PS_OK && n_pairs == n2 && n_pairs <= 16);
    for (i = 0; i < n_pairs; i++) {
        pp[i] = i ? pp[i - 1] + pos_len[i - 1] : pos;
        nn[i] = i ? nn[i - 1] + neg_len[i - 1] : neg;
    }
    for (method = 0; method < 2; method++) {
        float *want = floats(g, "tiny", method ? "cv.pca" : "cv.mean", &ne);
        CHECK(ps_steering_vectors(c, pp, pos_len, nn, neg_len, n_pairs, method ? PS_STEER_PCA : PS_STEER_MEAN, &cv) == PS_OK);
        CHECK(cv.n_layer == 2 && cv.n_embd == 32 && cv.has[0] && cv.has[1] && ne == 64);
        CHECK_CLOSE(cv.dir, want, ne, 1e-4, method ? "first principal component per layer" : "mean difference per layer");
        /* the GGUF round trip: layer 1 (llama.cpp's format has no layer 0) */
        CHECK_MSG(ps_control_vector_write(&cv, "build/cv.gguf", "gpt2", &err) == PS_OK, err.msg);
        CHECK_MSG(ps_control_vector_read(&back, "build/cv.gguf", &err) == PS_OK, err.msg);
        CHECK(back.n_layer == 2 && back.n_embd == 32 && !back.has[0] && back.has[1] &&
              memcmp(back.dir + 32, cv.dir + 32, 32 * sizeof(float)) == 0);
        if (method == 0) { /* steering by the file's direction 1 == the hook with the oracle's vector */
            ps_steer a = {NULL, 3.0f, 0}, b = {NULL, 3.0f, 0};
            int h, out1[5], out2[5], prompt[] = {17, 83, 5, 42};
            a.vec = back.dir + 32, b.vec = want + 32;
            CHECK(ps_add_hook(c, PS_RESID_POST, 1, ps_steer_hook, &a, &h) == PS_OK);
            ps_ctx_reset(c);
            CHECK(ps_generate(c, prompt, 4, 5, out1) == PS_OK);
            ps_remove_hook(c, h);
            CHECK(ps_add_hook(c, PS_RESID_POST, 1, ps_steer_hook, &b, &h) == PS_OK);
            ps_ctx_reset(c);
            CHECK(ps_generate(c, prompt, 4, 5, out2) == PS_OK);
            ps_remove_hook(c, h);
            CHECK_MSG(memcmp(out1, out2, sizeof out1) == 0, "steering by the GGUF's vector");
        }
        ps_control_vector_free(&back);
        ps_control_vector_free(&cv);
        free(want);
    }
    /* pairs alike: no direction */
    CHECK(ps_steering_vectors(c, pp, pos_len, pp, pos_len, n_pairs, PS_STEER_MEAN, &cv) == PS_ERR_RANGE && cv.dir == NULL);
    free(pos), free(neg), free(pos_len), free(neg_len);
    ps_ctx_free(c);
    ps_model_free(m);
}

/* a control vector another tool wrote (tests/data/controlvector/foreign.gguf: alignment 64,
   metadata of every type, a tensor that is no direction, layers 1 and 3 out of order);
   GGUFs that are not control vectors: each a named error, nothing allocated */
static void test_control_vector_files(void) {
    static unsigned char buf[4096];
    ps_control_vector cv;
    ps_error err;
    size_t n;
    FILE *f;
    int k;
    CHECK_MSG(ps_control_vector_read(&cv, "tests/data/controlvector/foreign.gguf", &err) == PS_OK, err.msg);
    CHECK(cv.n_layer == 4 && cv.n_embd == 32 && !cv.has[0] && cv.has[1] && !cv.has[2] && cv.has[3]);
    for (k = 0; cv.dir && k < 32; k++)
        CHECK(cv.dir[32 + k] == (float)(0.5 + 0.01 * k) && cv.dir[96 + k] == (float)(1.5 + 0.01 * k) && cv.dir[64 + k] == 0);
    ps_control_vector_free(&cv);
    f = fopen("build/cv.gguf", "rb");
    n = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (f) fclose(f);
    CHECK(n > 200 && ps_control_vector_read_memory(&cv, buf, n, &err) == PS_OK);
    ps_control_vector_free(&cv);
    for (k = 0; k < (int)n; k++) { /* every cut is an error */
        if (ps_control_vector_read_memory(&cv, buf, (size_t)k, &err) == PS_OK || cv.dir) {
            CHECK_MSG(0, "a cut GGUF");
            break;
        }
    }
    {
        static const struct {
            size_t at;
            const char *bytes, *want;
        } edits[] = {{0, "GGUX", "no \"GGUF\" magic"},
                     {4, "\x07", "version 7"},
                     {64, "chess", "is \"chessolvector\", not \"controlvector\""}};
        for (k = 0; k < 3; k++) {
            static unsigned char ed[4096];
            memcpy(ed, buf, n);
            memcpy(ed + edits[k].at, edits[k].bytes, strlen(edits[k].bytes));
            CHECK_MSG(ps_control_vector_read_memory(&cv, ed, n, &err) != PS_OK && strstr(err.msg, edits[k].want), err.msg);
        }
    }
}

/* the SAEs of tools/reference/make_sae_goldens.py (tests/data/sae, SAELens' layout) against
   the oracle (tests/data/golden/sae.safetensors): activations at every position, the
   reconstruction, the logits with it spliced in, and with the error term and two edits;
   the error term alone leaves the logits as they were (< 1e-5) */
static void test_sae(void) {
    static const struct {
        const char *name;
        ps_sae_kind kind;
        ps_point point;
        int layer, d_sae, k;
    } saes[] = {{"relu_resid_pre", PS_SAE_STANDARD, PS_RESID_PRE, 1, 64, 0},
                {"topk_z", PS_SAE_TOPK, PS_Z, 0, 48, 6},
                {"jumprelu_mlp_out", PS_SAE_JUMPRELU, PS_MLP_OUT, 1, 40, 0},
                {"legacy_topk", PS_SAE_TOPK, PS_RESID_POST, 0, 32, 4}};
    golden g;
    ps_model *m = load("tiny", NULL);
    ps_ctx *c;
    int i, n, *ids, V = 96, edits[2] = {3, 7}, handle;
    float values[2] = {2.5f, 0.0f}, plain[96];
    if (!golden_open(&g, "sae")) {
        CHECK(0);
        return;
    }
    ids = golden_i32(&g, "ids", &n);
    CHECK(ps_ctx_create(&c, m, NULL, NULL) == PS_OK && ps_forward(c, ids, n, 0) == PS_OK);
    memcpy(plain, ps_logits(c, 0), sizeof plain);
    for (i = 0; i < (int)(sizeof saes / sizeof saes[0]); i++) {
        char dir[128], key[128];
        ps_sae *sae;
        ps_error err;
        const ps_sae_config *sc;
        ps_sae_hook_spec h;
        ps_capture cap;
        size_t ne;
        float *acts, *want, *x, *recon, *acts2;
        int mode;
        snprintf(dir, sizeof dir, "tests/data/sae/%s", saes[i].name);
        if (ps_sae_load(&sae, dir, &err) != PS_OK) {
            CHECK_MSG(0, err.msg);
            continue;
        }
        sc = ps_sae_info(sae);
        CHECK_MSG(sc->kind == saes[i].kind && sc->point == saes[i].point && sc->layer == saes[i].layer && sc->d_in == 32 &&
                  sc->d_sae == saes[i].d_sae && sc->k == saes[i].k, saes[i].name);
        acts = (float *)calloc((size_t)n * sc->d_sae, sizeof(float));
        acts2 = (float *)calloc((size_t)n * sc->d_sae, sizeof(float));
        x = (float *)calloc((size_t)n * 32, sizeof(float));
        recon = (float *)calloc((size_t)n * 32, sizeof(float));
        /* reading: the activations of every position */
        memset(&h, 0, sizeof h);
        h.sae = sae, h.mode = PS_SAE_READ, h.acts = acts, h.max_pos = n;
        ps_ctx_reset(c);
        CHECK(ps_add_hook(c, sc->point, sc->layer, ps_sae_hook, &h, &handle) == PS_OK && ps_forward(c, ids, n, 0) == PS_OK);
        CHECK_MSG(memcmp(ps_logits(c, 0), plain, sizeof plain) == 0, "reading changes nothing");
        snprintf(key, sizeof key, "%s.acts", saes[i].name);
        want = golden_f32(&g, key, &ne);
        CHECK(ne == (size_t)n * sc->d_sae);
        CHECK_CLOSE(acts, want, ne, 1e-4, key);
        free(want);
        /* ps_sae_encode on the captured input: the same activations, and the reconstruction */
        cap.point = sc->point, cap.layer = sc->layer, cap.out = x;
        ps_remove_hook(c, handle);
        ps_ctx_reset(c);
        CHECK(ps_run_with_cache(c, ids, n, 0, &cap, 1) == PS_OK && ps_sae_encode(sae, x, n, acts2, recon) == PS_OK);
        CHECK_MSG(memcmp(acts, acts2, ne * sizeof(float)) == 0, "the hook and ps_sae_encode agree");
        snprintf(key, sizeof key, "%s.recon", saes[i].name);
        want = golden_f32(&g, key, &ne);
        CHECK_CLOSE(recon, want, ne, 1e-4, key);
        free(want);
        /* splicing: the reconstruction; the reconstruction + error with edits; the error alone */
        for (mode = 0; mode < 3; mode++) {
            h.mode = mode == 0 ? PS_SAE_SPLICE : PS_SAE_SPLICE_ERROR;
            h.acts = NULL;
            h.features = mode == 1 ? edits : NULL, h.values = values, h.n_features = mode == 1 ? 2 : 0;
            ps_ctx_reset(c);
            CHECK(ps_add_hook(c, sc->point, sc->layer, ps_sae_hook, &h, &handle) == PS_OK && ps_forward(c, ids, n, 0) == PS_OK);
            ps_remove_hook(c, handle);
            if (mode == 2) {
                CHECK_CLOSE(ps_logits(c, 0), plain, (size_t)V, 1e-5, "the error term restores the logits");
                continue;
            }
            snprintf(key, sizeof key, "%s.%s", saes[i].name, mode ? "edit" : "splice");
            want = golden_f32(&g, key, &ne);
            CHECK_CLOSE(ps_logits(c, 0), want, ne, 1e-4, key);
            free(want);
        }
        /* a feature outside the SAE, and the SAE at a point of another width, stop the pass */
        h.mode = PS_SAE_SPLICE, h.features = edits, h.n_features = 1;
        edits[0] = sc->d_sae;
        ps_ctx_reset(c);
        CHECK(ps_add_hook(c, sc->point, sc->layer, ps_sae_hook, &h, &handle) == PS_OK && ps_forward(c, ids, n, 0) == PS_ERR_HOOK);
        ps_remove_hook(c, handle);
        edits[0] = 3;
        ps_ctx_reset(c);
        CHECK(ps_add_hook(c, PS_MLP_PRE, 0, ps_sae_hook, &h, &handle) == PS_OK && ps_forward(c, ids, n, 0) == PS_ERR_HOOK);
        ps_remove_hook(c, handle);
        free(acts), free(acts2), free(x), free(recon);
        ps_sae_free(sae);
    }
    free(ids);
    golden_close(&g);
    ps_ctx_free(c);
    ps_model_free(m);
}

/* what ps_sae_load refuses, each by name: cfg.json's values, missing or misshapen tensors */
static void test_sae_errors(void) {
    static const struct {
        const char *cfg, *want;
    } cases[] = {
        {"{\"architecture\": \"gated\", \"d_in\": 32, \"d_sae\": 64, \"metadata\": {\"hook_name\": \"blocks.1.hook_resid_pre\"}}",
         "architecture \"gated\" is not supported"},
        {"{\"d_in\": 32, \"d_sae\": 64, \"hook_name\": \"blocks.1.hook_embed\"}", "hook \"blocks.1.hook_embed\" is not one"},
        {"{\"d_in\": 32, \"d_sae\": 64, \"hook_name\": \"blocks.1.hook_resid_pre\", \"hook_head_index\": 2}", "hook_head_index"},
        {"{\"d_in\": 32, \"d_sae\": 64, \"hook_name\": \"blocks.1.hook_resid_pre\", \"activation_fn_str\": \"tanh-relu\"}",
         "activation_fn_str \"tanh-relu\""},
        {"{\"architecture\": \"topk\", \"k\": 65, \"d_in\": 32, \"d_sae\": 64, \"hook_name\": \"blocks.1.hook_resid_pre\"}",
         "needs k in 1..d_sae"},
        {"{\"d_in\": 32, \"d_sae\": 64, \"hook_name\": \"blocks.1.hook_resid_pre\", \"normalize_activations\": \"max\"}",
         "normalize_activations \"max\""},
        {"{\"d_in\": 32, \"d_sae\": 64, \"hook_name\": \"blocks.1.hook_resid_pre\", \"apply_b_dec_to_input\": 1}",
         "cfg.json: apply_b_dec_to_input must be true or false"},
        {"{\"d_in\": 32, \"d_sae\": 64, \"hook_name\": \"blocks.1.hook_resid_pre\"", "cfg.json: "},
        {"{\"d_in\": 16, \"d_sae\": 64, \"hook_name\": \"blocks.1.hook_resid_pre\"}", "W_enc has the wrong shape (want [16, 64])"},
        {"{\"architecture\": \"jumprelu\", \"d_in\": 32, \"d_sae\": 64, \"hook_name\": \"blocks.1.hook_resid_pre\"}",
         "no tensor threshold"}};
    int i;
    for (i = 0; i < (int)(sizeof cases / sizeof cases[0]); i++) {
        ps_sae *sae = (ps_sae *)1;
        ps_error err;
        FILE *f;
        CHECK(system("mkdir -p build/sae_bad && cp tests/data/sae/relu_resid_pre/sae_weights.safetensors build/sae_bad/") == 0);
        f = fopen("build/sae_bad/cfg.json", "w");
        if (f) fputs(cases[i].cfg, f), fclose(f);
        CHECK_MSG(ps_sae_load(&sae, "build/sae_bad", &err) != PS_OK && sae == NULL && strstr(err.msg, cases[i].want), err.msg);
    }
}

int main(void) {
    golden g;
    if (!golden_open(&g, "interv")) return 1;
    test_patching(&g, "tiny");
    test_patching(&g, "mid");
    test_patching_errors();
    test_ablation(&g);
    test_steering(&g);
    test_steering_vectors(&g);
    test_control_vector_files();
    test_sae();
    test_sae_errors();
    golden_close(&g);
    return test_report("interv");
}
