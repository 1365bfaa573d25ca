/* Patchscopes tests: sources, patches at every site, grids (efficient == naive ==
   oracle), patched generation, affine and cross-model maps, the lens, readouts.
   Goldens: the .scope.safetensors files of tests/data/golden, from tools/reference. */
#define PATCHSCOPE_IMPLEMENTATION
#include "../patchscope.h"
#include "testutil.h"
#include "golden.h"

typedef struct scope {
    golden g;
    ps_model *m;
    ps_ctx *c;
    int *src, n_src, *tgt, n_tgt, src_pos, L, V;
} scope;

static int first_i32(const golden *g, const char *name) {
    int n, *v = golden_i32(g, name, &n), x = v[0];
    free(v);
    return x;
}

static void scope_open(scope *s, const char *golden_name, const char *model) {
    if (!golden_open(&s->g, golden_name)) exit(1);
    s->m = load(model, NULL);
    if (ps_ctx_create(&s->c, s->m, NULL, NULL)) exit(1);
    s->src = golden_i32(&s->g, "src_ids", &s->n_src);
    s->tgt = golden_i32(&s->g, "tgt_ids", &s->n_tgt);
    s->src_pos = first_i32(&s->g, "src_pos");
    s->L = ps_model_config(s->m)->n_layer;
    s->V = ps_model_config(s->m)->n_vocab;
}

static void scope_close(scope *s) {
    free(s->src);
    free(s->tgt);
    ps_ctx_free(s->c);
    ps_model_free(s->m);
    golden_close(&s->g);
}

/* grid `name` (gridA/gridB) against the oracle, and the efficient runner against the naive one */
static void check_grid(scope *s, const ps_source *src, ps_ctx *c, const char *name, const ps_map *map, int with_probs) {
    char key[64], what[96];
    int n, *want_id, i, L_src = src->n_layer, L_tgt = ps_model_config(ps_ctx_model(c))->n_layer;
    size_t nf;
    float *want_prob;
    ps_grid fast, slow;
    ps_grid_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.src = src;
    spec.src_pos = s->src_pos;
    spec.src_first = 0;
    spec.src_last = L_src - 1;
    spec.target = s->tgt;
    spec.n_target = s->n_tgt;
    snprintf(key, sizeof key, "%s.tgt_pos", name);
    spec.tgt_pos = first_i32(&s->g, key);
    spec.tgt_first = 0;
    spec.tgt_last = L_tgt - 1;
    spec.keep_probs = 1;
    if (map) spec.map = *map;
    CHECK_MSG(ps_grid_run(c, &spec, &fast) == PS_OK, ps_ctx_error(c));
    spec.naive = 1;
    CHECK_MSG(ps_grid_run(c, &spec, &slow) == PS_OK, ps_ctx_error(c));
    snprintf(key, sizeof key, "%s.top_id", name);
    want_id = golden_i32(&s->g, key, &n);
    snprintf(key, sizeof key, "%s.top_prob", name);
    want_prob = golden_f32(&s->g, key, &nf);
    CHECK(n == L_src * L_tgt && fast.n_src == L_src && fast.n_tgt == L_tgt);
    snprintf(what, sizeof what, "%s top-1 ids == oracle", name);
    CHECK_MSG(memcmp(fast.top_id, want_id, (size_t)n * sizeof(int)) == 0, what);
    snprintf(what, sizeof what, "%s efficient top-1 == naive top-1", name);
    CHECK_MSG(memcmp(fast.top_id, slow.top_id, (size_t)n * sizeof(int)) == 0, what);
    snprintf(what, sizeof what, "%s top-1 probs", name);
    CHECK_CLOSE(fast.top_prob, want_prob, nf, 1e-4, what);
    snprintf(what, sizeof what, "%s efficient probs == naive probs", name);
    CHECK_CLOSE(fast.probs, slow.probs, (size_t)n * fast.n_vocab, 1e-5, what);
    if (with_probs) {
        float *want;
        snprintf(key, sizeof key, "%s.probs", name);
        want = golden_f32(&s->g, key, &nf);
        snprintf(what, sizeof what, "%s all probs", name);
        CHECK_CLOSE(fast.probs, want, nf, 1e-4, what);
        free(want);
    }
    for (i = 0; i < n; i++) CHECK(fast.top_prob[i] == fast.probs[(size_t)i * fast.n_vocab + fast.top_id[i]]);
    free(want_id);
    free(want_prob);
    ps_grid_free(&fast);
    ps_grid_free(&slow);
}

/* one patch at each site against the oracle's logits */
static void check_sites(scope *s) {
    static const ps_point sites[] = {PS_RESID_PRE, PS_ATTN_OUT, PS_MLP_OUT, PS_RESID_POST};
    static const char *names[] = {"resid_pre", "attn_out", "mlp_out", "resid_post"};
    int ls = first_i32(&s->g, "site.ls"), lt = first_i32(&s->g, "site.lt"), i;
    for (i = 0; i < 4; i++) {
        ps_source src;
        ps_patch p;
        char key[64];
        size_t n;
        float *want;
        CHECK(ps_source_run(s->c, s->src, s->n_src, sites[i], &s->src_pos, 1, &src) == PS_OK);
        memset(&p, 0, sizeof p);
        p.vec = ps_source_state(&src, ls, s->src_pos);
        p.layer = lt;
        p.pos = -1;
        p.site = sites[i];
        CHECK_MSG(ps_inspect(s->c, &p, s->tgt, s->n_tgt, NULL, 0, NULL) == PS_OK, ps_ctx_error(s->c));
        snprintf(key, sizeof key, "site.%s.logits", names[i]);
        want = golden_f32(&s->g, key, &n);
        CHECK_CLOSE(ps_logits(s->c, 0), want, n, 1e-4, key);
        free(want);
        ps_source_free(&src);
    }
}

/* a patched generation equals the oracle's, and a naive recompute that re-applies the
   patch at the same position for every step */
static void check_generation(scope *s) {
    int ls = first_i32(&s->g, "gen.ls"), lt = first_i32(&s->g, "gen.lt"), n, *want, n_new, i, step;
    int gen[16], seq[64];
    ps_source src;
    ps_patch p;
    float *probs = (float *)malloc((size_t)s->V * sizeof(float));
    want = golden_i32(&s->g, "gen.patched", &n);
    n_new = n - s->n_tgt;
    CHECK(ps_source_run(s->c, s->src, s->n_src, PS_RESID_POST, NULL, 0, &src) == PS_OK);
    memset(&p, 0, sizeof p);
    p.vec = ps_source_state(&src, ls, s->src_pos);
    p.layer = lt;
    p.pos = s->n_tgt - 1; /* an absolute position: it must not move as the text grows */
    CHECK_MSG(ps_inspect(s->c, &p, s->tgt, s->n_tgt, probs, n_new, gen) == PS_OK, ps_ctx_error(s->c));
    CHECK_MSG(memcmp(gen, want + s->n_tgt, (size_t)n_new * sizeof(int)) == 0, "patched generation == oracle");
    CHECK(gen[0] == ps_argmax(probs, s->V));
    memcpy(seq, s->tgt, (size_t)s->n_tgt * sizeof(int));
    for (step = 0; step < n_new; step++) {
        CHECK(ps_inspect(s->c, &p, seq, s->n_tgt + step, probs, 0, NULL) == PS_OK);
        seq[s->n_tgt + step] = ps_argmax(probs, s->V);
    }
    for (i = 0; i < n_new; i++) CHECK_MSG(seq[s->n_tgt + i] == gen[i], "KV-cache generation == naive recompute");
    free(want);
    free(probs);
    ps_source_free(&src);
}

/* several grids through ps_grid_run_many: each equals its ps_grid_run alone bit for bit
   (mixed targets, positions, sites, a diagonal, a map, a repeated target, generation);
   generation and distributions equal ps_inspect's; the naive runner agrees */
static void check_many(scope *s) {
    enum { N = 5 };
    ps_source post, attn;
    ps_grid_spec sp[N];
    ps_grid many[N], one, naive[N];
    int i, a, b, gen_ls = first_i32(&s->g, "gen.ls"), gen_lt = first_i32(&s->g, "gen.lt"), n_want, *want;
    int gen[16];
    float *A, *probs = (float *)malloc((size_t)s->V * sizeof(float));
    size_t nA;
    ps_patch p;
    A = golden_f32(&s->g, "affine.A", &nA);
    want = golden_i32(&s->g, "gen.patched", &n_want);
    CHECK(ps_source_run(s->c, s->src, s->n_src, PS_RESID_POST, NULL, 0, &post) == PS_OK);
    CHECK(ps_source_run(s->c, s->src, s->n_src, PS_ATTN_OUT, NULL, 0, &attn) == PS_OK);
    memset(sp, 0, sizeof sp);
    for (i = 0; i < N; i++) {
        sp[i].src = &post;
        sp[i].src_pos = s->src_pos;
        sp[i].src_last = s->L - 1;
        sp[i].target = s->tgt;
        sp[i].n_target = s->n_tgt;
        sp[i].tgt_pos = -1;
        sp[i].tgt_last = s->L - 1;
        sp[i].keep_probs = 1;
    }
    sp[1].tgt_pos = 3; /* the same target, another position */
    sp[1].n_new = 4;
    sp[2].src = &attn; /* another site, a diagonal, the source prompt as target */
    sp[2].diagonal = 1;
    sp[2].target = s->src;
    sp[2].n_target = s->n_src;
    sp[2].n_new = 3;
    sp[3].map.affine = A; /* grid 0's target again, through a map, top-1 only */
    sp[3].keep_probs = 0;
    sp[4].src_first = sp[4].src_last = gen_ls; /* the oracle's patched generation */
    sp[4].tgt_first = sp[4].tgt_last = gen_lt;
    sp[4].n_new = n_want - s->n_tgt;
    CHECK_MSG(ps_grid_run_many(s->c, sp, N, many) == PS_OK, ps_ctx_error(s->c));
    for (i = 0; i < N; i++) {
        int cells = many[i].n_src * many[i].n_tgt;
        CHECK_MSG(ps_grid_run(s->c, &sp[i], &one) == PS_OK, ps_ctx_error(s->c));
        CHECK(one.n_src == many[i].n_src && one.n_tgt == many[i].n_tgt && one.n_new == sp[i].n_new);
        CHECK_MSG(memcmp(one.top_id, many[i].top_id, (size_t)cells * sizeof(int)) == 0, "many: top-1 == alone");
        CHECK_MSG(memcmp(one.top_prob, many[i].top_prob, (size_t)cells * sizeof(float)) == 0, "many: top prob == alone");
        if (sp[i].keep_probs) {
            CHECK_MSG(memcmp(one.probs, many[i].probs, (size_t)cells * s->V * sizeof(float)) == 0, "many: probs == alone");
            CHECK_MSG(memcmp(one.unpatched, many[i].unpatched, (size_t)s->V * sizeof(float)) == 0, "many: unpatched == alone");
        } else CHECK(!many[i].probs && !many[i].unpatched);
        if (sp[i].n_new)
            CHECK_MSG(memcmp(one.gen, many[i].gen, (size_t)cells * sp[i].n_new * sizeof(int)) == 0, "many: gen == alone");
        else CHECK(!many[i].gen);
        ps_grid_free(&one);
    }
    CHECK_MSG(memcmp(many[4].gen, want + s->n_tgt, (size_t)sp[4].n_new * sizeof(int)) == 0, "many: generation == oracle");
    /* every generating cell against ps_inspect: the same tokens, the same distribution */
    for (i = 1; i < 3; i++)
        for (a = 0; a < many[i].n_src; a++)
            for (b = 0; b < many[i].n_tgt; b++) {
                int at = a * many[i].n_tgt + b;
                memset(&p, 0, sizeof p);
                p.vec = ps_source_state(sp[i].src, sp[i].src_first + a, s->src_pos);
                p.layer = sp[i].diagonal ? sp[i].src_first + a : sp[i].tgt_first + b;
                p.pos = sp[i].tgt_pos;
                p.site = sp[i].src->site;
                CHECK(ps_inspect(s->c, &p, sp[i].target, sp[i].n_target, probs, sp[i].n_new, gen) == PS_OK);
                CHECK_MSG(memcmp(gen, many[i].gen + (size_t)at * sp[i].n_new, (size_t)sp[i].n_new * sizeof(int)) == 0,
                          "many: generation == ps_inspect");
                CHECK_MSG(memcmp(probs, many[i].probs + (size_t)at * s->V, (size_t)s->V * sizeof(float)) == 0,
                          "many: distribution == ps_inspect");
            }
    ps_ctx_reset(s->c);
    CHECK(ps_forward(s->c, s->src, s->n_src, 0) == PS_OK);
    ps_softmax(ps_logits(s->c, 0), s->V, probs);
    CHECK_MSG(memcmp(probs, many[2].unpatched, (size_t)s->V * sizeof(float)) == 0, "many: unpatched == ps_forward");
    sp[0].naive = 1;
    CHECK_MSG(ps_grid_run_many(s->c, sp, N, naive) == PS_OK, ps_ctx_error(s->c));
    for (i = 0; i < N; i++) {
        int cells = many[i].n_src * many[i].n_tgt;
        CHECK_MSG(memcmp(naive[i].top_id, many[i].top_id, (size_t)cells * sizeof(int)) == 0, "many: naive top-1");
        if (sp[i].n_new)
            CHECK_MSG(memcmp(naive[i].gen, many[i].gen, (size_t)cells * sp[i].n_new * sizeof(int)) == 0, "many: naive gen");
        if (sp[i].keep_probs) CHECK_CLOSE(naive[i].probs, many[i].probs, (size_t)cells * s->V, 1e-6, "many: naive probs");
        ps_grid_free(&naive[i]);
        ps_grid_free(&many[i]);
    }
    /* a bad grid is named */
    sp[0].naive = 0;
    sp[3].tgt_last = s->L;
    CHECK(ps_grid_run_many(s->c, sp, N, many) == PS_ERR_RANGE);
    CHECK_MSG(strstr(ps_ctx_error(s->c), "grid 3: target layers") != NULL, ps_ctx_error(s->c));
    for (i = 0; i < N; i++) CHECK(!many[i].top_id && !many[i].gen);
    free(A);
    free(want);
    free(probs);
    ps_source_free(&post);
    ps_source_free(&attn);
}

static void check_affine_and_lens(scope *s, int lens_probs) {
    int ls = first_i32(&s->g, "affine.ls"), lt = first_i32(&s->g, "affine.lt"), l;
    size_t n;
    float *A = golden_f32(&s->g, "affine.A", &n), *want = golden_f32(&s->g, "affine.logits", &n);
    float *lens = (float *)malloc((size_t)s->L * s->V * sizeof(float)), *h;
    ps_source src;
    ps_patch p;
    ps_grid col;
    ps_grid_spec spec;
    CHECK(ps_source_run(s->c, s->src, s->n_src, PS_RESID_POST, &s->src_pos, 1, &src) == PS_OK);
    memset(&p, 0, sizeof p);
    p.vec = ps_source_state(&src, ls, s->src_pos);
    p.layer = lt;
    p.pos = -1;
    p.map.affine = A;
    CHECK(ps_inspect(s->c, &p, s->tgt, s->n_tgt, NULL, 0, NULL) == PS_OK);
    CHECK_CLOSE(ps_logits(s->c, 0), want, n, 1e-4, "affine-mapped patch");
    free(want);

    /* the lens of every layer at the source position */
    h = (float *)malloc((size_t)s->L * src.width * sizeof(float));
    for (l = 0; l < s->L; l++) memcpy(h + (size_t)l * src.width, ps_source_state(&src, l, s->src_pos), (size_t)src.width * sizeof(float));
    CHECK(ps_lens(s->c, h, s->L, lens) == PS_OK);
    if (lens_probs) {
        want = golden_f32(&s->g, "lens.probs", &n);
        CHECK_CLOSE(lens, want, n, 1e-4, "logit lens");
        free(want);
    } else {
        int ni, *top = golden_i32(&s->g, "lens.top_id", &ni);
        float *tp = golden_f32(&s->g, "lens.top_prob", &n);
        for (l = 0; l < s->L; l++) {
            CHECK_MSG(ps_argmax(lens + (size_t)l * s->V, s->V) == top[l], "lens top-1");
            CHECK(fabs(lens[(size_t)l * s->V + top[l]] - tp[l]) < 1e-4);
        }
        free(top);
        free(tp);
    }
    /* lens == the grid column with the patch at the last layer, last position */
    memset(&spec, 0, sizeof spec);
    spec.src = &src;
    spec.src_pos = s->src_pos;
    spec.src_last = s->L - 1;
    spec.target = s->tgt;
    spec.n_target = s->n_tgt;
    spec.tgt_pos = -1;
    spec.tgt_first = spec.tgt_last = s->L - 1;
    spec.keep_probs = 1;
    CHECK(ps_grid_run(s->c, &spec, &col) == PS_OK);
    CHECK_CLOSE(col.probs, lens, (size_t)s->L * s->V, 1e-6, "lens == grid column L-1");
    ps_grid_free(&col);
    free(h);
    free(lens);
    free(A);
    ps_source_free(&src);
}

/* patching a state with itself (same prompt, layer, position) changes nothing */
static void check_identity(scope *s) {
    ps_source src;
    ps_grid diag;
    ps_grid_spec spec;
    float *probs = (float *)malloc((size_t)s->V * sizeof(float));
    int l, pos = 4;
    CHECK(ps_forward(s->c, s->tgt, s->n_tgt, 0) == PS_OK);
    ps_ctx_reset(s->c);
    CHECK(ps_forward(s->c, s->tgt, s->n_tgt, 0) == PS_OK);
    ps_softmax(ps_logits(s->c, 0), s->V, probs);
    CHECK(ps_source_run(s->c, s->tgt, s->n_tgt, PS_RESID_POST, &pos, 1, &src) == PS_OK);
    memset(&spec, 0, sizeof spec);
    spec.src = &src;
    spec.src_pos = pos;
    spec.src_last = spec.tgt_last = s->L - 1;
    spec.target = s->tgt;
    spec.n_target = s->n_tgt;
    spec.tgt_pos = pos;
    spec.diagonal = 1;
    CHECK(ps_grid_run(s->c, &spec, &diag) == PS_OK);
    CHECK(diag.n_src == s->L && diag.n_tgt == 1);
    for (l = 0; l < s->L; l++) {
        CHECK_MSG(diag.top_id[l] == ps_argmax(probs, s->V), "identity patch: same top-1");
        CHECK_MSG(diag.top_prob[l] == probs[diag.top_id[l]], "identity patch: same probability, bitwise");
    }
    ps_grid_free(&diag);
    ps_source_free(&src);
    free(probs);
}

static void check_readouts(scope *s) {
    size_t n;
    float *lg = golden_f32(&s->g, "unpatched.logits", &n), *un = (float *)malloc(n * sizeof(float));
    float *pp = (float *)malloc(n * sizeof(float));
    ps_readout r;
    int top = ps_argmax(lg, s->V), i, ids[3];
    float pk[3];
    ps_softmax(lg, s->V, un);
    ps_ctx_reset(s->c);
    CHECK(ps_forward(s->c, s->tgt, s->n_tgt, 0) == PS_OK);
    CHECK_CLOSE(ps_logits(s->c, 0), lg, n, 1e-4, "unpatched target logits");
    ps_readout_fill(un, un, s->V, &r);
    CHECK(r.top_id[0] == top && r.precision_at_1 == 1 && fabs(r.surprisal + log(un[top])) < 1e-9);
    for (i = 1; i < PS_TOP_K; i++) CHECK(r.top_prob[i] <= r.top_prob[i - 1]);
    CHECK(ps_rank(un, s->V, top) == 0 && ps_rank(un, s->V, r.top_id[3]) == 3);
    /* a distribution that puts the old runner-up first: precision 0, surprisal of it */
    memcpy(pp, un, n * sizeof(float));
    pp[r.top_id[1]] = 2.0f;
    ps_readout_fill(pp, un, s->V, &r);
    CHECK(r.precision_at_1 == 0 && fabs(r.surprisal + log(un[r.top_id[0]])) < 1e-9);
    ps_top_k(un, s->V, 3, ids, pk);
    CHECK(ids[0] == top && pk[0] == un[top] && pk[1] >= pk[2]);
    ps_readout_fill(un, NULL, s->V, &r);
    CHECK(r.precision_at_1 == -1 && r.surprisal != r.surprisal);
    free(lg);
    free(un);
    free(pp);
}

static void check_errors(scope *s) {
    ps_source src;
    ps_patch p;
    ps_grid grid;
    ps_grid_spec spec;
    int bad = 99;
    CHECK(ps_source_run(s->c, s->src, s->n_src, PS_PATTERN, NULL, 0, &src) == PS_ERR_ARG);
    CHECK(ps_source_run(s->c, s->src, s->n_src, PS_RESID_POST, &bad, 1, &src) == PS_ERR_RANGE);
    CHECK_MSG(strstr(ps_ctx_error(s->c), "position 99") != NULL, ps_ctx_error(s->c));
    CHECK(ps_source_run(s->c, s->src, s->n_src, PS_RESID_POST, &s->src_pos, 1, &src) == PS_OK);
    memset(&p, 0, sizeof p);
    p.vec = ps_source_state(&src, 0, s->src_pos);
    p.layer = s->L;
    CHECK(ps_inspect(s->c, &p, s->tgt, s->n_tgt, NULL, 0, NULL) == PS_ERR_RANGE);
    p.layer = 0;
    p.pos = -s->n_tgt - 1;
    CHECK(ps_inspect(s->c, &p, s->tgt, s->n_tgt, NULL, 0, NULL) == PS_ERR_RANGE);
    p.pos = 0;
    p.d_src = 7;
    CHECK(ps_inspect(s->c, &p, s->tgt, s->n_tgt, NULL, 0, NULL) == PS_ERR_ARG);
    CHECK_MSG(strstr(ps_ctx_error(s->c), "give a map") != NULL, ps_ctx_error(s->c));
    memset(&spec, 0, sizeof spec);
    spec.src = &src;
    spec.src_pos = s->src_pos + 1;
    spec.target = s->tgt;
    spec.n_target = s->n_tgt;
    CHECK(ps_grid_run(s->c, &spec, &grid) == PS_ERR_RANGE); /* position not kept */
    spec.src_pos = s->src_pos;
    spec.tgt_last = s->L;
    CHECK(ps_grid_run(s->c, &spec, &grid) == PS_ERR_RANGE);
    CHECK(grid.top_id == NULL);
    ps_source_free(&src);
}

static int cancel_after_first(int done, int total, void *user) {
    (void)total;
    *(int *)user = done;
    return 1;
}

static void check_progress(scope *s) {
    ps_source src;
    ps_grid grid;
    ps_grid_spec spec;
    int seen = 0;
    CHECK(ps_source_run(s->c, s->src, s->n_src, PS_RESID_POST, &s->src_pos, 1, &src) == PS_OK);
    memset(&spec, 0, sizeof spec);
    spec.src = &src;
    spec.src_pos = s->src_pos;
    spec.src_last = spec.tgt_last = s->L - 1;
    spec.target = s->tgt;
    spec.n_target = s->n_tgt;
    spec.tgt_pos = -1;
    spec.naive = 1;
    spec.progress = cancel_after_first;
    spec.progress_user = &seen;
    CHECK(ps_grid_run(s->c, &spec, &grid) == PS_ERR_HOOK && seen == 1);
    ps_source_free(&src);
}

/* the affine fit recovers a known map from noiseless pairs */
static void check_fit(void) {
    enum { N = 200, DS = 16, DT = 8 };
    static float x[N * DS], y[N * DT], A[(DS + 1) * DT], fit[(DS + 1) * DT];
    unsigned long long r = 12345;
    int i, j, k;
    for (i = 0; i < N * DS; i++) x[i] = (float)((r = r * 6364136223846793005ULL + 1442695040888963407ULL) >> 40) / (1 << 23) - 1;
    for (i = 0; i < (DS + 1) * DT; i++) A[i] = (float)((r = r * 6364136223846793005ULL + 1442695040888963407ULL) >> 40) / (1 << 22) - 2;
    for (i = 0; i < N; i++)
        for (j = 0; j < DT; j++) {
            double acc = A[DS * DT + j];
            for (k = 0; k < DS; k++) acc += (double)x[i * DS + k] * A[k * DT + j];
            y[i * DT + j] = (float)acc;
        }
    CHECK(ps_fit_affine(x, DS, y, DT, N, 0, fit) == PS_OK);
    CHECK_CLOSE(fit, A, (DS + 1) * DT, 1e-4, "affine fit recovers A");
    CHECK(ps_fit_affine(x, DS, y, DT, 10, 0, fit) == PS_ERR_RANGE); /* fewer pairs than unknowns */
    CHECK(ps_fit_affine(x, DS, y, DT, 10, 1e-3, fit) == PS_OK);      /* a ridge makes it solvable */
}

int main(void) {
    scope s, w;
    ps_source src;
    ps_map map;
    size_t n;
    float *A;

    scope_open(&s, "tiny.scope", "tiny");
    CHECK(ps_source_run(s.c, s.src, s.n_src, PS_RESID_POST, NULL, 0, &src) == PS_OK);
    check_grid(&s, &src, s.c, "gridA", NULL, 1);
    check_grid(&s, &src, s.c, "gridB", NULL, 1);
    ps_source_free(&src);
    check_sites(&s);
    check_generation(&s);
    check_many(&s);
    check_affine_and_lens(&s, 1);
    check_identity(&s);
    check_readouts(&s);
    check_errors(&s);
    check_progress(&s);
    scope_close(&s);

    scope_open(&s, "mid.scope", "mid");
    CHECK(ps_source_run(s.c, s.src, s.n_src, PS_RESID_POST, &s.src_pos, 1, &src) == PS_OK);
    check_grid(&s, &src, s.c, "gridA", NULL, 0);
    check_grid(&s, &src, s.c, "gridB", NULL, 0);
    ps_source_free(&src);
    check_sites(&s);
    check_generation(&s);
    check_many(&s);
    check_affine_and_lens(&s, 0);
    check_identity(&s);
    scope_close(&s);

    /* cross-model: states of "wide" (48 wide) into "tiny" (32 wide) through an affine map */
    scope_open(&s, "wide-to-tiny.scope", "tiny");
    scope_open(&w, "wide-to-tiny.scope", "wide");
    CHECK(ps_source_run(w.c, w.src, w.n_src, PS_RESID_POST, &w.src_pos, 1, &src) == PS_OK);
    A = golden_f32(&s.g, "cross.A", &n);
    memset(&map, 0, sizeof map);
    map.affine = A;
    check_grid(&s, &src, s.c, "gridA", &map, 1);
    free(A);
    ps_source_free(&src);
    scope_close(&w);
    scope_close(&s);

    check_fit();
    return test_report("scope");
}
