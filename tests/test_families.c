/* The model families beyond GPT-2 (Llama, Mistral, Qwen2, Gemma, GPT-NeoX, GPT-J) against the
   float64 oracle tools/reference/families_ref.py: the random checkpoints in tests/data/families/ (the
   Hub's layout: configs, names, buffers, F32/F16/BF16, a 3-shard index) through the normal loader, and
   every hook point, the logits, KV-cache decoding, forks, greedy ids, thread counts, a Patchscope and
   the grid runner. */
#define PATCHSCOPE_IMPLEMENTATION
#include "../patchscope.h"
#include "testutil.h"
#include "golden.h"

#include <sys/stat.h>

static const char *const names[] = {"llama", "llama-tied", "mistral", "qwen2", "pythia", "neox-seq", "gptj", "gemma"};
static const char *const families[] = {"llama", "llama", "mistral", "qwen2", "gpt_neox", "gpt_neox", "gptj", "gemma"};

#define TOL 1e-4

static ps_model *load_family(const char *name) {
    char path[256];
    ps_model *m = NULL;
    ps_error e;
    snprintf(path, sizeof path, "tests/data/families/%s", name);
    if (ps_model_load(&m, path, NULL, &e)) {
        printf("FAIL load %s: %s\n", name, e.msg);
        exit(1);
    }
    return m;
}

/* every hook point of every layer, the logits of every position, against the oracle */
static void check_points(const char *name, ps_model *m, const golden *g, const int *ids, int T) {
    const ps_config *cfg = ps_model_config(m);
    ps_ctx *c;
    ps_capture caps[PS_POINT_COUNT];
    float *buf[PS_POINT_COUNT];
    int p, n = 0, l;
    ps_error e;
    CHECK(ps_ctx_create(&c, m, NULL, &e) == PS_OK);
    for (p = 0; p < PS_LOGITS; p++) {
        int w = ps_point_width(m, (ps_point)p, T), layerless = p == PS_EMBED || p == PS_LN_FINAL;
        caps[n].point = (ps_point)p;
        caps[n].layer = layerless ? -1 : PS_ALL_LAYERS;
        caps[n].out = buf[n] = (float *)calloc((size_t)(layerless ? 1 : cfg->n_layer) * T * w, sizeof(float));
        n++;
    }
    CHECK(ps_run_with_cache(c, ids, T, PS_ALL_LOGITS, caps, n) == PS_OK);
    for (p = 0; p < n; p++) {
        int w = ps_point_width(m, caps[p].point, T);
        int layerless = caps[p].point == PS_EMBED || caps[p].point == PS_LN_FINAL;
        for (l = 0; l < (layerless ? 1 : cfg->n_layer); l++) {
            char key[64], what[96];
            size_t k;
            float *want;
            if (layerless) snprintf(key, sizeof key, "%s", ps_point_name(caps[p].point));
            else snprintf(key, sizeof key, "%s.%d", ps_point_name(caps[p].point), l);
            want = golden_f32(g, key, &k);
            snprintf(what, sizeof what, "%s %s", name, key);
            CHECK_MSG(k == (size_t)T * w, what);
            if (k == (size_t)T * w) CHECK_CLOSE(buf[p] + (size_t)l * T * w, want, k, TOL, what);
            free(want);
        }
        free(buf[p]);
    }
    {
        size_t k;
        float *want = golden_f32(g, "logits", &k), *got = (float *)malloc(k * sizeof(float));
        char what[64];
        int t;
        for (t = 0; t < T; t++) memcpy(got + (size_t)t * cfg->n_vocab, ps_logits(c, t), (size_t)cfg->n_vocab * sizeof(float));
        snprintf(what, sizeof what, "%s logits", name);
        CHECK_CLOSE(got, want, k, TOL, what);
        free(want);
        free(got);
    }
    ps_ctx_free(c);
}

/* one token at a time, a fork of a prefix, and 1, 2, 3, 7 threads: the same logits */
static void check_passes(const char *name, ps_model *m, const int *ids, int T) {
    const ps_config *cfg = ps_model_config(m);
    int V = cfg->n_vocab, t, threads[4] = {1, 2, 3, 7}, i, same = 1;
    float *full = (float *)malloc((size_t)T * V * sizeof(float));
    ps_ctx *c;
    ps_error e;
    char what[96];
    CHECK(ps_ctx_create(&c, m, NULL, &e) == PS_OK);
    CHECK(ps_forward(c, ids, T, PS_ALL_LOGITS) == PS_OK);
    for (t = 0; t < T; t++) memcpy(full + (size_t)t * V, ps_logits(c, t), (size_t)V * sizeof(float));
    ps_ctx_reset(c);
    for (t = 0; t < T; t++) {
        CHECK(ps_forward(c, &ids[t], 1, 0) == PS_OK);
        snprintf(what, sizeof what, "%s: cached decoding at %d", name, t);
        CHECK_CLOSE(ps_logits(c, 0), full + (size_t)t * V, (size_t)V, 1e-5, what);
    }
    /* sequence 1 forks the first 5 positions of sequence 0 and goes on with the rest */
    CHECK(ps_seq_fork(c, 0, 1, 5) == PS_OK);
    {
        ps_batch b;
        int seq = 1, n = T - 5;
        b.n_seq = 1; b.seq = &seq; b.n_tokens = &n; b.tokens = ids + 5;
        CHECK(ps_forward_batch(c, &b, 0) == PS_OK);
        snprintf(what, sizeof what, "%s: a fork goes on where its prefix ends", name);
        CHECK_CLOSE(ps_logits(c, 0), full + (size_t)(T - 1) * V, (size_t)V, 1e-5, what);
    }
    ps_ctx_free(c);
    for (i = 0; i < 4; i++) {
        ps_pool *pool;
        CHECK(ps_pool_create(&pool, threads[i]) == PS_OK);
        CHECK(ps_ctx_create(&c, m, pool, &e) == PS_OK);
        CHECK(ps_forward(c, ids, T, PS_ALL_LOGITS) == PS_OK);
        for (t = 0; t < T; t++) same &= memcmp(ps_logits(c, t), full + (size_t)t * V, (size_t)V * sizeof(float)) == 0;
        ps_ctx_free(c);
        ps_pool_free(pool);
    }
    snprintf(what, sizeof what, "%s: 1, 2, 3 and 7 threads give the same bits", name);
    CHECK_MSG(same, what);
    free(full);
}

static int write_back(const ps_event *ev, void *user) {
    (void)user;
    memmove(ev->data, ev->data, (size_t)ev->n_rows * ev->width * sizeof(float));
    return 0;
}

/* capture during generation: the same values as one run over the prompt and what it generated */
static void check_generate_capture(const char *name, ps_model *m, const int *ids) {
    const ps_config *cfg = ps_model_config(m);
    enum { P = 4, N = 5, ROWS = P + N - 1 };
    int gen[N], all[ROWS], i;
    size_t wr = (size_t)cfg->n_layer * ROWS * cfg->n_embd, wp = (size_t)ROWS * ps_point_width(m, PS_PATTERN, ROWS);
    size_t wk = (size_t)ROWS * ps_point_width(m, PS_K, 0);
    float *a[3], *b[3];
    ps_capture ca[3], cb[3];
    ps_ctx *c;
    char what[96];
    for (i = 0; i < 3; i++) {
        size_t w = i == 0 ? wr : i == 1 ? wp : wk;
        a[i] = (float *)calloc(w, sizeof(float));
        b[i] = (float *)calloc(w, sizeof(float));
    }
    ca[0].point = PS_RESID_POST; ca[0].layer = PS_ALL_LAYERS;
    ca[1].point = PS_PATTERN; ca[1].layer = cfg->n_layer - 1;
    ca[2].point = PS_K; ca[2].layer = 0;
    for (i = 0; i < 3; i++) { cb[i] = ca[i]; ca[i].out = a[i]; cb[i].out = b[i]; }
    CHECK(ps_ctx_create(&c, m, NULL, NULL) == PS_OK);
    CHECK(ps_generate_with_cache(c, ids, P, N, gen, ca, 3) == PS_OK);
    memcpy(all, ids, P * sizeof(int));
    memcpy(all + P, gen, (N - 1) * sizeof(int));
    ps_ctx_reset(c);
    CHECK(ps_run_with_cache(c, all, ROWS, 0, cb, 3) == PS_OK);
    snprintf(what, sizeof what, "%s: resid_post, pattern and k captured while generating == one run", name);
    CHECK_MSG(!memcmp(a[0], b[0], wr * 4) && !memcmp(a[1], b[1], wp * 4) && !memcmp(a[2], b[2], wk * 4), what);
    CHECK(a[0][wr - 1] != 0 && a[1][wp - 1] != 0 && a[2][wk - 1] != 0); /* the last rows were written */
    for (i = 0; i < 3; i++) { free(a[i]); free(b[i]); }
    ps_ctx_free(c);
}

/* greedy ids, a Patchscope, an identity hook and the grid runner */
static void check_scope(const char *name, ps_model *m, const golden *g) {
    const ps_config *cfg = ps_model_config(m);
    int n_gen, n_src, n_tgt, n, *gen = golden_i32(g, "gen.ids", &n_gen), *src = golden_i32(g, "scope.src_ids", &n_src);
    int *tgt = golden_i32(g, "scope.tgt_ids", &n_tgt), *ls = golden_i32(g, "scope.ls", &n),
        *lt = golden_i32(g, "scope.lt", &n), *sp = golden_i32(g, "scope.src_pos", &n),
        *tp = golden_i32(g, "scope.tgt_pos", &n), out[16], V = cfg->n_vocab, p;
    size_t k;
    float *want = golden_f32(g, "scope.logits", &k), *base = (float *)malloc((size_t)V * sizeof(float));
    ps_ctx *c;
    ps_error e;
    ps_source s;
    ps_patch patch;
    char what[96];
    CHECK(ps_ctx_create(&c, m, NULL, &e) == PS_OK);
    CHECK(ps_generate(c, gen, 4, n_gen - 4, out) == PS_OK);
    snprintf(what, sizeof what, "%s: greedy ids", name);
    CHECK_MSG(memcmp(out, gen + 4, (size_t)(n_gen - 4) * sizeof(int)) == 0, what);
    CHECK(ps_source_run(c, src, n_src, PS_RESID_POST, sp, 1, &s) == PS_OK);
    memset(&patch, 0, sizeof patch);
    patch.vec = ps_source_state(&s, ls[0], sp[0]);
    patch.layer = lt[0];
    patch.pos = tp[0];
    CHECK(ps_inspect(c, &patch, tgt, n_tgt, NULL, 0, NULL) == PS_OK);
    snprintf(what, sizeof what, "%s: a Patchscope", name);
    CHECK_CLOSE(ps_logits(c, 0), want, (size_t)V, TOL, what);
    /* a hook at every point that writes back what it read changes no bit */
    ps_ctx_reset(c);
    CHECK(ps_forward(c, tgt, n_tgt, 0) == PS_OK);
    memcpy(base, ps_logits(c, 0), (size_t)V * sizeof(float));
    for (p = 0; p < PS_POINT_COUNT; p++)
        CHECK(ps_add_hook(c, (ps_point)p, p == PS_EMBED || p == PS_LN_FINAL || p == PS_LOGITS ? -1 : PS_ALL_LAYERS,
                          write_back, NULL, NULL) == PS_OK);
    ps_ctx_reset(c);
    CHECK(ps_forward(c, tgt, n_tgt, 0) == PS_OK);
    snprintf(what, sizeof what, "%s: writing every point back changes nothing", name);
    CHECK_MSG(memcmp(base, ps_logits(c, 0), (size_t)V * sizeof(float)) == 0, what);
    ps_clear_hooks(c);
    { /* the batched grid equals the per-cell recompute */
        ps_grid_spec gs;
        ps_grid a, b;
        memset(&gs, 0, sizeof gs);
        gs.src = &s;
        gs.src_pos = sp[0];
        gs.src_first = 0;
        gs.src_last = cfg->n_layer - 1;
        gs.target = tgt;
        gs.n_target = n_tgt;
        gs.tgt_pos = -2;
        gs.tgt_first = 0;
        gs.tgt_last = cfg->n_layer - 1;
        gs.keep_probs = 1;
        CHECK(ps_grid_run(c, &gs, &a) == PS_OK);
        gs.naive = 1;
        CHECK(ps_grid_run(c, &gs, &b) == PS_OK);
        snprintf(what, sizeof what, "%s: grid vs per-cell recompute", name);
        CHECK_CLOSE(a.probs, b.probs, (size_t)a.n_src * a.n_tgt * V, 1e-5, what);
        ps_grid_free(&a);
        ps_grid_free(&b);
    }
    ps_source_free(&s);
    ps_ctx_free(c);
    free(gen); free(src); free(tgt); free(ls); free(lt); free(sp); free(tp); free(want); free(base);
}


/* --- malformed checkpoints and configs of the new paths ---------------------------------------- */
static char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    char *b;
    long len;
    if (!f) { printf("cannot read %s\n", path); exit(1); }
    fseek(f, 0, SEEK_END);
    len = ftell(f);
    fseek(f, 0, SEEK_SET);
    b = (char *)malloc((size_t)len + 1);
    if (fread(b, 1, (size_t)len, f) != (size_t)len) exit(1);
    b[len] = 0;
    fclose(f);
    *n = (size_t)len;
    return b;
}

static void spill(const char *path, const char *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n) { printf("cannot write %s\n", path); exit(1); }
    fclose(f);
}

/* text with the first `from` replaced by `to` (malloc'd) */
static char *edit(const char *text, const char *from, const char *to) {
    const char *at = strstr(text, from);
    char *out;
    if (!at) { printf("edit: \"%s\" not found\n", from); exit(1); }
    out = (char *)malloc(strlen(text) + strlen(to) + 1);
    sprintf(out, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
    return out;
}

/* dir gets config (NULL: the original's) and the files of model src; loading it must fail
   with code and a message containing needle */
static void expect_fail(const char *what, const char *src, const char *config, const char *index, ps_status code,
                        const char *needle) {
    static const char *const files[] = {"model.safetensors", "model-00001-of-00003.safetensors",
                                        "model-00002-of-00003.safetensors", "model-00003-of-00003.safetensors"};
    char dir[128], from[256], to[256], msg[512];
    size_t i, n;
    ps_model *m = NULL;
    ps_error e;
    ps_status s;
    snprintf(dir, sizeof dir, "build/malformed-families/%s", what);
    mkdir("build/malformed-families", 0755);
    mkdir(dir, 0755);
    for (i = 0; i < 4; i++) {
        FILE *f;
        snprintf(from, sizeof from, "tests/data/families/%s/%s", src, files[i]);
        snprintf(to, sizeof to, "%s/%s", dir, files[i]);
        remove(to);
        if (!(f = fopen(from, "rb"))) continue;
        fclose(f);
        {
            char *b = slurp(from, &n);
            spill(to, b, n);
            free(b);
        }
    }
    snprintf(from, sizeof from, "tests/data/families/%s/%s", src, files[1]);
    snprintf(to, sizeof to, "%s/model-dup.safetensors", dir); /* a shard's twin, for an index to list */
    {
        FILE *f = fopen(from, "rb");
        if (f) {
            char *b;
            fclose(f);
            b = slurp(from, &n);
            spill(to, b, n);
            free(b);
        }
    }
    snprintf(to, sizeof to, "%s/config.json", dir);
    if (config) spill(to, config, strlen(config));
    else {
        char *b;
        snprintf(from, sizeof from, "tests/data/families/%s/config.json", src);
        b = slurp(from, &n);
        spill(to, b, n);
        free(b);
    }
    snprintf(to, sizeof to, "%s/model.safetensors.index.json", dir);
    remove(to);
    if (index) spill(to, index, strlen(index));
    s = ps_model_load(&m, dir, NULL, &e);
    snprintf(msg, sizeof msg, "%s: got %s \"%s\", want %s mentioning \"%s\"", what, ps_status_name(s), e.msg,
             ps_status_name(code), needle);
    CHECK_MSG(s == code && strstr(e.msg, needle) != NULL && m == NULL, msg);
    ps_model_free(m);
}

static void check_malformed(void) {
    size_t n;
    char *cfg = slurp("tests/data/families/llama/config.json", &n), *neox = slurp("tests/data/families/pythia/config.json", &n);
    char *idx = slurp("tests/data/families/llama-tied/model.safetensors.index.json", &n), *t, *u;
    /* the index */
    t = edit(idx, "\"model.norm.weight\": \"model-00003-of-00003.safetensors\"", "\"model.norm.weight\": \"model-00004-of-00003.safetensors\"");
    expect_fail("missing-shard", "llama-tied", NULL, t, PS_ERR_IO, "model-00004-of-00003.safetensors");
    free(t);
    t = edit(idx, "\"model.norm.weight\": \"model-00003-of-00003.safetensors\"", "\"model.norm.weight\": \"model-00001-of-00003.safetensors\"");
    expect_fail("wrong-shard", "llama-tied", NULL, t, PS_ERR_FORMAT, "lists tensor model.norm.weight in model-00001-of-00003.safetensors, which does not hold it");
    free(t);
    t = edit(idx, "\"weight_map\": {", "\"weight_map\": {\"model.extra.weight\": \"model-00001-of-00003.safetensors\", ");
    expect_fail("tensor-in-no-shard", "llama-tied", NULL, t, PS_ERR_FORMAT, "lists tensor model.extra.weight");
    free(t);
    t = edit(idx, "\"model.norm.weight\": \"model-00003-of-00003.safetensors\"", "\"model.norm.weight\": \"../model-00003-of-00003.safetensors\"");
    expect_fail("escaping-shard", "llama-tied", NULL, t, PS_ERR_FORMAT, "is not a .safetensors file in the model's folder");
    free(t);
    t = edit(idx, "\"weight_map\": {", "\"weight_map\": {\"x\": \"model-dup.safetensors\", ");
    expect_fail("shard-listed-twice", "llama-tied", NULL, t, PS_ERR_FORMAT, "appears in two shards");
    free(t);
    expect_fail("index-without-map", "llama-tied", NULL, "{\"metadata\": {}}", PS_ERR_FORMAT, "has no weight_map");
    expect_fail("index-not-json", "llama-tied", NULL, "{\"weight_map\": {\"a\": ", PS_ERR_FORMAT, "model.safetensors.index.json");
    /* configs */
    t = edit(cfg, "\"num_key_value_heads\": 2", "\"num_key_value_heads\": 3");
    expect_fail("kv-heads", "llama", t, NULL, PS_ERR_CONFIG, "3 key/value heads do not divide 4 heads");
    free(t);
    t = edit(cfg, "\"model_type\": \"llama\"", "\"model_type\": \"bert\"");
    expect_fail("unknown-family", "llama", t, NULL, PS_ERR_CONFIG, "model_type \"bert\" is not supported (supported: gpt2, llama");
    free(t);
    t = edit(cfg, "\"model_type\": \"llama\"", "\"model_type\": \"gemma2\"");
    expect_fail("gemma2", "llama", t, NULL, PS_ERR_CONFIG, "soft-capping");
    free(t);
    t = edit(cfg, "\"rope_type\": \"llama3\"", "\"rope_type\": \"dynamic\"");
    expect_fail("rope-dynamic", "llama", t, NULL, PS_ERR_CONFIG, "rope_scaling type \"dynamic\" is not supported");
    free(t);
    t = edit(cfg, "\"intermediate_size\": 72", "\"intermediate_size\": 70");
    expect_fail("mlp-width", "llama", t, NULL, PS_ERR_SHAPE, "model.layers.0.mlp.gate_proj.weight has shape [72, 32] (2 dims), expected [70, 32] (llama)");
    free(t);
    t = edit(cfg, "\"num_hidden_layers\": 2", "\"num_hidden_layers\": 1");
    expect_fail("fewer-layers", "llama", t, NULL, PS_ERR_SHAPE, "is not part of a llama model with 1 layers");
    free(t);
    t = edit(cfg, "\"num_hidden_layers\": 2", "\"num_hidden_layers\": 3");
    expect_fail("more-layers", "llama", t, NULL, PS_ERR_MISSING, "tensor model.layers.2.input_layernorm.weight is missing (llama)");
    free(t);
    t = edit(cfg, "\"hidden_act\": \"silu\"", "\"hidden_act\": \"relu\"");
    expect_fail("activation", "llama", t, NULL, PS_ERR_CONFIG, "hidden_act \"relu\" is not supported");
    free(t);
    { /* an untied config for a tied checkpoint */
        char *q = slurp("tests/data/families/qwen2/config.json", &n);
        t = edit(q, "\"tie_word_embeddings\": true", "\"tie_word_embeddings\": false");
        expect_fail("untied-without-head", "qwen2", t, NULL, PS_ERR_MISSING, "tensor lm_head.weight is missing (qwen2)");
        free(t);
        free(q);
    }
    t = edit(neox, "\"rotary_pct\": 0.25", "\"rotary_pct\": 0.19");
    expect_fail("rotary-odd", "pythia", t, NULL, PS_ERR_CONFIG, "rotary dims 3 must be even");
    free(t);
    u = edit(neox, "\"rotary_pct\": 0.25", "\"rotary_pct\": 1.5");
    expect_fail("rotary-too-wide", "pythia", u, NULL, PS_ERR_CONFIG, "rotary_pct must be in (0, 1]");
    free(u);
    t = edit(cfg, "\"num_attention_heads\": 4", "\"num_attention_heads\": \"4\"");
    expect_fail("heads-a-string", "llama", t, NULL, PS_ERR_CONFIG, "num_attention_heads must be a number");
    free(t);
    free(cfg); free(neox); free(idx);
}

/* a Patchscope across families and widths: Pythia's h_1 through an affine map into Llama */
static void check_cross(void) {
    golden g;
    ps_model *src = load_family("pythia"), *tgt = load_family("llama");
    ps_ctx *cs, *ct;
    ps_source s;
    ps_patch p;
    size_t k, kl;
    int n_src, n_tgt, pos = 3, lt, V = ps_model_config(tgt)->n_vocab;
    int *src_ids, *tgt_ids;
    float *A, *want;
    char what[64];
    if (!golden_open(&g, "pythia-to-llama")) { CHECK(0); return; }
    A = golden_f32(&g, "A", &k);
    want = golden_f32(&g, "logits", &kl);
    src_ids = golden_i32(&g, "src_ids", &n_src);
    tgt_ids = golden_i32(&g, "tgt_ids", &n_tgt);
    CHECK(ps_ctx_create(&cs, src, NULL, NULL) == PS_OK && ps_ctx_create(&ct, tgt, NULL, NULL) == PS_OK);
    CHECK(ps_source_run(cs, src_ids, n_src, PS_RESID_POST, &pos, 1, &s) == PS_OK);
    for (lt = 0; lt < ps_model_config(tgt)->n_layer; lt++) {
        memset(&p, 0, sizeof p);
        p.vec = ps_source_state(&s, 1, pos);
        p.d_src = ps_model_config(src)->n_embd;
        p.layer = lt;
        p.pos = -1;
        p.map.affine = A;
        CHECK(ps_inspect(ct, &p, tgt_ids, n_tgt, NULL, 0, NULL) == PS_OK);
        snprintf(what, sizeof what, "pythia h_1 -> llama layer %d through an affine map", lt);
        CHECK_CLOSE(ps_logits(ct, 0), want + (size_t)lt * V, (size_t)V, TOL, what);
    }
    ps_source_free(&s);
    ps_ctx_free(cs);
    ps_ctx_free(ct);
    ps_model_free(src);
    ps_model_free(tgt);
    free(A); free(want); free(src_ids); free(tgt_ids);
    golden_close(&g);
}

/* the trained weights/tiny-llama (BF16, Mistral's 32k vocabulary) through the oracle */
static void check_trained(void) {
    golden g;
    ps_model *m;
    ps_ctx *c;
    ps_capture cap;
    ps_error e;
    int T, *ids, L;
    size_t k;
    float *want, *h;
    if (ps_model_load(&m, "weights/tiny-llama", NULL, &e)) { printf("FAIL weights/tiny-llama: %s\n", e.msg); CHECK(0); return; }
    if (!golden_open(&g, "tiny-llama")) { CHECK(0); return; }
    ids = golden_i32(&g, "ids", &T);
    L = ps_model_config(m)->n_layer;
    h = (float *)malloc((size_t)T * ps_model_config(m)->n_embd * sizeof(float));
    CHECK(ps_ctx_create(&c, m, NULL, NULL) == PS_OK);
    cap.point = PS_RESID_POST;
    cap.layer = L - 1;
    cap.out = h;
    CHECK(ps_run_with_cache(c, ids, T, 0, &cap, 1) == PS_OK);
    want = golden_f32(&g, "logits", &k);
    CHECK_CLOSE(ps_logits(c, 0), want, k, TOL, "weights/tiny-llama: logits vs the oracle");
    free(want);
    want = golden_f32(&g, "resid_post.5", &k);
    CHECK_CLOSE(h, want, k, TOL, "weights/tiny-llama: h of the last layer vs the oracle");
    free(want);
    free(h);
    free(ids);
    ps_ctx_free(c);
    ps_model_free(m);
    golden_close(&g);
}

int main(void) {
    int i;
    (void)load; /* golden.h's loader of build/models: these models live in tests/data */
    for (i = 0; i < (int)(sizeof names / sizeof names[0]); i++) {
        golden g;
        ps_model *m;
        int T, *ids;
        char what[64];
        if (!golden_open(&g, names[i])) return 1;
        m = load_family(names[i]);
        snprintf(what, sizeof what, "%s is a %s model", names[i], families[i]);
        CHECK_MSG(strcmp(ps_model_config(m)->family, families[i]) == 0, what);
        CHECK(ps_model_check(m, NULL) == PS_OK);
        ids = golden_i32(&g, "ids", &T);
        check_points(names[i], m, &g, ids, T);
        check_passes(names[i], m, ids, T);
        check_generate_capture(names[i], m, ids);
        check_scope(names[i], m, &g);
        free(ids);
        ps_model_free(m);
        golden_close(&g);
    }
    check_cross();
    check_trained();
    check_malformed();
    return test_report("families");
}
