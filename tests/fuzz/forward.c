/* libFuzzer harness: the forward pass and Patchscopes on a tiny valid model, through the
   public API only, with fuzzed token ids, sequence ids, positions, layers, hook points,
   captures, patches and grid specs.

   The input is a program: an opcode byte, then the bytes of its arguments, repeated.
   Arguments are mostly in range and sometimes just outside it or extreme. Checked:
   - every call succeeds or fails with the error the arguments call for, and a message;
   - a failed forward, fork or truncation leaves every sequence length as it was;
   - every hook event is well formed (layer, rows, positions, width, attention rows
     that sum to 1), and the API refuses to be re-entered from a hook;
   - results are in range and finite; a capture of the logits equals ps_logits;
   - the KV cache agrees with a full pass, any pool gives the same bits, and the
     efficient grid agrees with the naive one.
   The model is build/models/tiny (make fuzz builds it); run from the repository root. */
#define PATCHSCOPE_IMPLEMENTATION
#include "../../patchscope.h"

#include "fuzz.h"
#include <limits.h>
#include <math.h>


#define NSEQ 8      /* sequence ids whose lengths the harness tracks */
#define MAXW 128    /* widest row of the tiny model: 4 * n_embd (logits: 96) */
#define MAXHOOKS 16

static ps_model *model;
static ps_pool *pool;
static int L, C, V, N, H;
static float fixed_vec[MAXW];
static float affine[(MAXW + 1) * MAXW];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    ps_error e;
    int i;
    (void)argc, (void)argv;
    if (ps_model_load(&model, "build/models/tiny", NULL, &e) || ps_pool_create(&pool, 2)) {
        fprintf(stderr, "fuzz forward: cannot load build/models/tiny (run make fuzz from the repository root): %s\n", e.msg);
        exit(1);
    }
    L = ps_model_config(model)->n_layer;
    C = ps_model_config(model)->n_embd;
    V = ps_model_config(model)->n_vocab;
    N = ps_model_config(model)->n_ctx;
    H = ps_model_config(model)->n_head;
    for (i = 0; i < MAXW; i++) fixed_vec[i] = (float)((i * 37) % 17 - 8) / 4;
    for (i = 0; i < (MAXW + 1) * MAXW; i++) affine[i] = (float)((i * 53) % 29 - 14) / 256;
    return 0;
}

/* --- reading the program --------------------------------------------------------------- */
typedef struct prog { const uint8_t *p, *end; } prog;

static int byte(prog *g) { return g->p < g->end ? *g->p++ : 0; }

/* mostly a value in [lo, hi]; the top byte values give the edges and extremes */
static int num(prog *g, int lo, int hi) {
    int b = byte(g);
    if (b < 0xF8) return lo + b % (hi - lo + 1);
    switch (b) {
    case 0xF8: return lo - 1;
    case 0xF9: return hi + 1;
    case 0xFA: return -1;
    case 0xFB: return INT_MIN;
    case 0xFC: return INT_MAX;
    case 0xFD: return 65535;
    case 0xFE: return 65536;
    default: return (byte(g) << 8 | byte(g)) - 32768;
    }
}

static int tokens(prog *g, int *ids, int n) {
    int i, ok = 1;
    for (i = 0; i < n; i++) {
        ids[i] = num(g, 0, V - 1);
        ok &= ids[i] >= 0 && ids[i] < V;
    }
    return ok;
}

/* --- state of one input ---------------------------------------------------------------- */
enum { HOOK_WATCH, HOOK_OVERWRITE, HOOK_STOP, HOOK_SCALE, HOOK_REENTER, HOOK_KINDS };

typedef struct hookrec {
    int kind, layer, stop_after, calls;
    ps_point point;
    ps_overwrite ow;
} hookrec;

typedef struct state {
    ps_ctx *c;
    int lens[NSEQ];
    ps_source src[2];
    hookrec hooks[MAXHOOKS];
    int handles[MAXHOOKS], n_hooks, n_live, stops, edits_pattern;
} state;

static state st;

static int layerless(ps_point p) { return p == PS_EMBED || p == PS_LN_FINAL || p == PS_LOGITS; }

static void finite(const float *x, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) REQUIRE(isfinite(x[i]));
}

/* the tracked lengths match the context's */
static void same_lengths(void) {
    int i;
    for (i = 0; i < NSEQ; i++) REQUIRE(ps_seq_len(st.c, i) == st.lens[i]);
}

static void resync(void) {
    int i;
    for (i = 0; i < NSEQ; i++) st.lens[i] = ps_seq_len(st.c, i);
}

static void failed(ps_status s) {
    REQUIRE(s != PS_OK && s != PS_ERR_NOMEM && ps_ctx_error(st.c)[0]);
    REQUIRE(s != PS_ERR_HOOK || st.stops > 0 || strstr(ps_ctx_error(st.c), "progress"));
}

/* --- hooks ----------------------------------------------------------------------------- */
static void check_event(const ps_event *ev, const hookrec *h) {
    int r, k, j;
    REQUIRE(ev->point == h->point && ev->n_rows >= 1 && ev->seq && ev->pos && ev->data);
    if (layerless(ev->point)) REQUIRE(ev->layer == -1);
    else REQUIRE(ev->layer >= 0 && ev->layer < L && (h->layer == PS_ALL_LAYERS || h->layer == ev->layer));
    REQUIRE(ev->n_head == H && ev->d_head == C / H);
    REQUIRE(ev->width == ps_point_width(model, ev->point, ev->n_keys) && ev->width <= MAXW);
    for (r = 0; r < ev->n_rows; r++) {
        REQUIRE(ev->seq[r] >= 0 && ev->seq[r] < 65536 && ev->pos[r] >= 0 && ev->pos[r] < N);
        if (ev->point == PS_PATTERN) REQUIRE(ev->pos[r] < ev->n_keys && ev->n_keys <= N);
    }
    finite(ev->data, (size_t)ev->n_rows * ev->width);
    if (ev->point == PS_PATTERN && !st.edits_pattern)
        for (r = 0; r < ev->n_rows; r++)
            for (k = 0; k < H; k++) {
                const float *p = ev->data + (size_t)r * ev->width + (size_t)k * ev->n_keys;
                double sum = 0;
                for (j = 0; j < ev->n_keys; j++) {
                    REQUIRE(p[j] >= 0 && (j <= ev->pos[r] || p[j] == 0));
                    sum += p[j];
                }
                REQUIRE(fabs(sum - 1) < 1e-4);
            }
}

static int hook(const ps_event *ev, void *user) {
    hookrec *h = (hookrec *)user;
    size_t i;
    check_event(ev, h);
    switch (h->kind) {
    case HOOK_OVERWRITE: return ps_overwrite_hook(ev, &h->ow);
    case HOOK_STOP: return ++h->calls > h->stop_after ? 3 : 0;
    case HOOK_SCALE:
        for (i = 0; i < (size_t)ev->n_rows * ev->width; i++) ev->data[i] *= 0.5f;
        return 0;
    case HOOK_REENTER: {
        int ids[2] = {1, 2}, lens[NSEQ], k;
        ps_source src;
        float probs[96];
        for (k = 0; k < NSEQ; k++) lens[k] = ps_seq_len(st.c, k);
        src.h = probs; /* a failed run must clear it */
        REQUIRE(ps_forward(st.c, ids, 2, 0) == PS_ERR_ARG);
        REQUIRE(ps_seq_truncate(st.c, 0, 0) == PS_ERR_ARG);
        REQUIRE(ps_seq_fork(st.c, 0, 1, 0) == PS_ERR_ARG);
        REQUIRE(ps_add_hook(st.c, PS_EMBED, -1, hook, h, NULL) == PS_ERR_ARG);
        REQUIRE(ps_remove_hook(st.c, st.handles[0]) == PS_ERR_ARG);
        REQUIRE(ps_lens(st.c, fixed_vec, 1, probs) == PS_ERR_ARG);
        REQUIRE(ps_source_run(st.c, ids, 2, PS_RESID_POST, NULL, 0, &src) == PS_ERR_ARG && !src.h);
        ps_ctx_reset(st.c);
        ps_clear_hooks(st.c);
        for (k = 0; k < NSEQ; k++) REQUIRE(ps_seq_len(st.c, k) == lens[k]);
        return 0;
    }
    default: return 0;
    }
}

static void op_add_hook(prog *g) {
    hookrec *h;
    int point, layer;
    ps_status s, want;
    if (st.n_hooks == MAXHOOKS) return;
    h = &st.hooks[st.n_hooks];
    memset(h, 0, sizeof *h);
    point = num(g, 0, PS_POINT_COUNT - 1);
    layer = num(g, -1, L - 1);
    h->kind = byte(g) % HOOK_KINDS;
    h->point = (ps_point)point;
    h->layer = layer;
    h->stop_after = byte(g) % 8;
    h->ow.pos = num(g, 0, N - 1);
    h->ow.seq = num(g, -1, NSEQ - 1);
    h->ow.vec = fixed_vec;
    s = ps_add_hook(st.c, (ps_point)point, layer, hook, h, &st.handles[st.n_hooks]);
    want = point < 0 || point >= PS_POINT_COUNT                          ? PS_ERR_ARG
           : (layerless(h->point) ? layer != -1 : layer < -1 || layer >= L) ? PS_ERR_RANGE
                                                                          : PS_OK;
    REQUIRE(s == want);
    if (s) return;
    st.n_hooks++;
    st.n_live++;
    st.stops += h->kind == HOOK_STOP;
    st.edits_pattern |= point == PS_PATTERN && (h->kind == HOOK_OVERWRITE || h->kind == HOOK_SCALE);
}

/* --- the operations -------------------------------------------------------------------- */
static void op_forward(prog *g) {
    int ids[64], n = num(g, -2, 40), flags = byte(g) & 3, valid, rows, r;
    ps_status s;
    if (n > 64) n = 64;
    valid = tokens(g, ids, n > 0 ? n : 0);
    s = ps_forward(st.c, ids, n, flags);
    if (n < 1) REQUIRE(s == PS_ERR_ARG);
    else if (st.lens[0] + n > N || !valid) REQUIRE(s == PS_ERR_RANGE);
    else REQUIRE(s == PS_OK || s == PS_ERR_HOOK);
    if (s) {
        failed(s);
        same_lengths();
        return;
    }
    st.lens[0] += n;
    same_lengths();
    rows = flags & PS_NO_LOGITS ? 0 : flags & PS_ALL_LOGITS ? n : 1;
    REQUIRE(ps_logits_rows(st.c) == rows && !ps_logits(st.c, rows) && !ps_logits(st.c, -1));
    for (r = 0; r < rows; r++) finite(ps_logits(st.c, r), (size_t)V);
}

static void op_batch(prog *g) {
    int seq[4], count[4], ids[4 * 8], n_seq = num(g, 0, 4), i, total = 0;
    ps_batch b;
    ps_status s;
    if (n_seq > 4) n_seq = 4;
    for (i = 0; i < (n_seq > 0 ? n_seq : 0); i++) {
        seq[i] = num(g, 0, NSEQ - 1);
        count[i] = num(g, -1, 8);
        if (count[i] > 8) count[i] = 8;
        if (count[i] > 0) total += count[i];
    }
    tokens(g, ids, total);
    b.n_seq = n_seq;
    b.seq = seq;
    b.n_tokens = count;
    b.tokens = ids;
    s = ps_forward_batch(st.c, &b, byte(g) & 3);
    if (s) {
        failed(s);
        same_lengths();
        return;
    }
    for (i = 0; i < n_seq; i++)
        if (seq[i] < NSEQ) st.lens[seq[i]] += count[i];
    same_lengths();
}

static void op_fork(prog *g) {
    int src = num(g, 0, NSEQ - 1), dst = num(g, 0, NSEQ - 1), len = num(g, 0, N);
    ps_status s = ps_seq_fork(st.c, src, dst, len);
    if (src == dst) REQUIRE(s == PS_ERR_ARG);
    else if (len < 0 || len > ps_seq_len(st.c, src)) REQUIRE(s == PS_ERR_RANGE);
    if (s) {
        failed(s);
        same_lengths();
        return;
    }
    if (dst < NSEQ) st.lens[dst] = len;
    same_lengths();
}

static void op_truncate(prog *g) {
    int seq = num(g, 0, NSEQ - 1), len = num(g, 0, N);
    ps_status s = ps_seq_truncate(st.c, seq, len);
    REQUIRE((s == PS_OK) == (seq >= 0 && seq < 65536 && len >= 0 && len <= ps_seq_len(st.c, seq)));
    if (s) {
        failed(s);
        same_lengths();
        return;
    }
    if (seq < NSEQ) st.lens[seq] = len;
    same_lengths();
}

static void op_remove_hook(prog *g) {
    int i = byte(g);
    ps_status s;
    if (i < st.n_hooks) {
        s = ps_remove_hook(st.c, st.handles[i]);
        if (s == PS_OK) st.n_live--;
        else failed(s);
        if (s == PS_OK && st.hooks[i].kind == HOOK_STOP) st.stops--;
    } else {
        s = ps_remove_hook(st.c, num(g, -1, 40));
        REQUIRE(s == PS_OK || s == PS_ERR_ARG);
        if (s == PS_OK) st.n_live--;
    }
}

static void op_generate(prog *g) {
    int ids[16], out[16], n = num(g, -1, 12), n_new = num(g, -1, 12), valid, i;
    ps_status s;
    if (n > 16) n = 16;
    if (n_new > 16) n_new = 16;
    valid = tokens(g, ids, n > 0 ? n : 0);
    s = ps_generate(st.c, ids, n, n_new, out);
    if (n < 1 || n_new < 0) REQUIRE(s == PS_ERR_ARG);
    else if (!valid || st.lens[0] + n + (n_new > 0 ? n_new - 1 : 0) > N) REQUIRE(s == PS_ERR_RANGE);
    if (s) {
        failed(s);
        resync(); /* a failed step keeps the tokens run before it */
        return;
    }
    st.lens[0] += n + (n_new > 0 ? n_new - 1 : 0);
    same_lengths();
    for (i = 0; i < n_new; i++) REQUIRE(out[i] >= 0 && out[i] < V);
}

static void op_capture(prog *g) {
    ps_capture caps[3];
    int ids[40], n = num(g, 0, 40), n_caps = num(g, 0, 3), flags = byte(g) & 3, i, j, first = st.lens[0];
    ps_status s;
    if (n > 40) n = 40;
    if (n_caps > 3) n_caps = 3;
    for (i = 0; i < n_caps; i++) {
        size_t rows;
        caps[i].point = (ps_point)num(g, 0, PS_POINT_COUNT - 1);
        caps[i].layer = num(g, -1, L - 1);
        rows = (size_t)(n > 0 ? n : 1) * (caps[i].layer == PS_ALL_LAYERS && !layerless(caps[i].point) ? L : 1);
        caps[i].out = (float *)malloc(rows * ps_point_width(model, caps[i].point, first + (n > 0 ? n : 1)) * sizeof(float));
        REQUIRE(caps[i].out);
    }
    tokens(g, ids, n > 0 ? n : 0);
    s = ps_run_with_cache(st.c, ids, n, flags, caps, n_caps);
    if (n_caps < 0 || n < 1) REQUIRE(s == PS_ERR_ARG);
    if (s) {
        failed(s);
        same_lengths();
    } else {
        st.lens[0] += n;
        same_lengths();
        for (i = 0; i < n_caps; i++)
            if (caps[i].point == PS_LOGITS && (flags & 3) == PS_ALL_LOGITS) /* captured after every other hook */
                for (j = 0; j < n; j++)
                    REQUIRE(memcmp(caps[i].out + (size_t)j * V, ps_logits(st.c, j), (size_t)V * sizeof(float)) == 0);
    }
    for (i = 0; i < (n_caps > 0 ? n_caps : 0); i++) free(caps[i].out);
}

static void op_source(prog *g) {
    ps_source *src = &st.src[byte(g) & 1];
    int ids[16], pos[5], n = num(g, 0, 12), n_pos = num(g, 0, 5), keep_all = byte(g) & 1, site, i, l;
    ps_status s;
    if (n > 16) n = 16;
    if (n_pos > 5) n_pos = 5;
    site = num(g, 0, PS_POINT_COUNT - 1);
    for (i = 0; i < (n_pos > 0 ? n_pos : 0); i++) pos[i] = num(g, -13, 12);
    tokens(g, ids, n > 0 ? n : 0);
    ps_source_free(src);
    s = ps_source_run(st.c, ids, n, (ps_point)site, keep_all ? NULL : pos, n_pos, src);
    if (s) {
        failed(s);
        REQUIRE(src->h == NULL && src->pos == NULL);
        resync();
        return;
    }
    st.lens[0] = n;
    same_lengths();
    REQUIRE(src->n_layer == L && src->width == ps_point_width(model, (ps_point)site, 0) && src->n_tokens == n);
    for (i = 0; i < src->n_pos; i++) {
        REQUIRE(src->pos[i] >= 0 && src->pos[i] < n);
        for (l = 0; l < L; l++) {
            const float *h = ps_source_state(src, l, src->pos[i]);
            REQUIRE(h && h == ps_source_state(src, l, src->pos[i] - n));
            finite(h, (size_t)src->width);
        }
    }
    REQUIRE(!ps_source_state(src, L, src->pos[0]) && !ps_source_state(src, -1, src->pos[0]));
}

static void map_fn(const float *x, int d_src, float *y, int d_tgt, void *user) {
    int j;
    (void)user;
    for (j = 0; j < d_tgt; j++) y[j] = x[j % d_src] * 0.25f + 0.1f;
}

/* identity, affine or a callback; the affine matrix is big enough for any width here */
static ps_map pick_map(prog *g) {
    ps_map m;
    int k = byte(g) % 3;
    memset(&m, 0, sizeof m);
    if (k == 1) m.affine = affine;
    if (k == 2) m.fn = map_fn;
    return m;
}

static void op_inspect(prog *g) {
    ps_patch p;
    ps_source *src = &st.src[byte(g) & 1];
    int ids[16], gen[8], n, n_new, i;
    float probs[96];
    double sum = 0;
    ps_status s;
    memset(&p, 0, sizeof p);
    if (byte(g) & 1 && src->h) {
        p.vec = ps_source_state(src, num(g, 0, L - 1), num(g, -12, 12));
        p.d_src = src->width;
    } else {
        p.vec = fixed_vec;
        p.d_src = num(g, 0, MAXW);
        if (p.d_src > MAXW) p.d_src = MAXW; /* negatives stay: they must be refused */
    }
    p.site = (ps_point)num(g, 0, PS_POINT_COUNT - 1);
    p.layer = num(g, 0, L - 1);
    p.pos = num(g, -13, 12);
    p.map = pick_map(g);
    n = num(g, 0, 12);
    n_new = num(g, 0, 8);
    if (n > 16) n = 16;
    if (n_new > 8) n_new = 8;
    tokens(g, ids, n > 0 ? n : 0);
    s = ps_inspect(st.c, &p, ids, n, probs, n_new, gen);
    if (!p.vec || p.d_src < 0) REQUIRE(s == PS_ERR_ARG);
    if (s) {
        failed(s);
        resync();
        return;
    }
    st.lens[0] = n + (n_new > 0 ? n_new - 1 : 0);
    same_lengths();
    for (i = 0; i < V; i++) sum += probs[i];
    REQUIRE(fabs(sum - 1) < 1e-4);
    for (i = 0; i < n_new; i++) REQUIRE(gen[i] >= 0 && gen[i] < V);
}

static int cancel_after(int done, int total, void *user) {
    REQUIRE(done >= 1 && done <= total);
    return --*(int *)user < 0;
}

static void check_grid(const ps_grid *gr, int n_src, int n_tgt) {
    int i;
    REQUIRE(gr->n_src == n_src && gr->n_tgt == n_tgt && gr->n_vocab == V);
    for (i = 0; i < n_src * n_tgt; i++) {
        REQUIRE(gr->top_id[i] >= 0 && gr->top_id[i] < V && gr->top_prob[i] > 0 && gr->top_prob[i] <= 1);
        if (gr->probs) REQUIRE(gr->top_prob[i] == gr->probs[(size_t)i * V + gr->top_id[i]]);
    }
    if (gr->probs) finite(gr->probs, (size_t)n_src * n_tgt * V);
}

static void op_grid(prog *g) {
    ps_grid_spec spec;
    ps_grid gr, slow;
    ps_source *src = &st.src[byte(g) & 1];
    int ids[16], n, budget, i, n_src, n_tgt;
    ps_status s;
    memset(&spec, 0, sizeof spec);
    spec.src = src->h ? src : NULL;
    spec.src_pos = num(g, -12, 12);
    spec.src_first = num(g, 0, L - 1);
    spec.src_last = num(g, 0, L - 1);
    spec.tgt_first = num(g, 0, L - 1);
    spec.tgt_last = num(g, 0, L - 1);
    spec.tgt_pos = num(g, -13, 12);
    spec.map = pick_map(g);
    i = byte(g);
    spec.diagonal = i & 1;
    spec.keep_probs = i >> 1 & 1;
    spec.naive = i >> 2 & 1;
    if (i >> 3 & 1) {
        budget = i >> 4;
        spec.progress = cancel_after;
        spec.progress_user = &budget;
    }
    n = num(g, 0, 12);
    if (n > 16) n = 16;
    tokens(g, ids, n > 0 ? n : 0);
    spec.target = ids;
    spec.n_target = n;
    s = ps_grid_run(st.c, &spec, &gr);
    if (s) {
        failed(s);
        REQUIRE(!gr.top_id && !gr.top_prob && !gr.probs);
        resync();
        return;
    }
    n_src = spec.src_last - spec.src_first + 1;
    n_tgt = spec.diagonal ? 1 : spec.tgt_last - spec.tgt_first + 1;
    check_grid(&gr, n_src, n_tgt);
    REQUIRE(ps_seq_len(st.c, 0) == n);
    if (!spec.naive && st.n_live == 0) { /* the fast runner == the naive one */
        spec.naive = 1;
        spec.progress = NULL;
        REQUIRE(ps_grid_run(st.c, &spec, &slow) == PS_OK);
        check_grid(&slow, n_src, n_tgt);
        for (i = 0; i < n_src * n_tgt; i++)
            REQUIRE(fabs(gr.top_prob[i] - slow.top_prob[i]) < 1e-4 &&
                    (gr.top_id[i] == slow.top_id[i] || gr.top_prob[i] < 0.5f));
        if (gr.probs)
            for (i = 0; i < n_src * n_tgt * V; i++) REQUIRE(fabs(gr.probs[i] - slow.probs[i]) < 1e-4);
        ps_grid_free(&slow);
    }
    ps_grid_free(&gr);
    resync();
}

static void op_lens(prog *g) {
    ps_source *src = &st.src[byte(g) & 1];
    int n = num(g, 0, 4), i;
    float h[4 * 32], probs[4 * 96];
    double sum;
    ps_status s;
    if (!src->h || src->width != C) return;
    if (n > 4) n = 4;
    for (i = 0; i < (n > 0 ? n : 0); i++) {
        const float *x = ps_source_state(src, i % L, src->pos[i % src->n_pos]);
        memcpy(h + (size_t)i * C, x, (size_t)C * sizeof(float));
    }
    s = ps_lens(st.c, h, n, probs);
    REQUIRE((s == PS_OK) == (n >= 1));
    if (s) {
        failed(s);
        return;
    }
    for (sum = 0, i = 0; i < V; i++) sum += probs[(size_t)(n - 1) * V + i];
    REQUIRE(fabs(sum - 1) < 1e-4);
    same_lengths();
}

/* a fresh context with and without the pool, full pass and token by token */
static void op_replay(prog *g) {
    ps_ctx *a, *b;
    int ids[12], n = num(g, 1, 12), i;
    if (n < 1 || n > 12) return;
    tokens(g, ids, n);
    for (i = 0; i < n; i++) ids[i] = ((ids[i] % V) + V) % V;
    REQUIRE(ps_ctx_create(&a, model, pool, NULL) == PS_OK && ps_ctx_create(&b, model, NULL, NULL) == PS_OK);
    REQUIRE(ps_forward(a, ids, n, PS_ALL_LOGITS) == PS_OK && ps_forward(b, ids, n, PS_ALL_LOGITS) == PS_OK);
    REQUIRE(memcmp(ps_logits(a, 0), ps_logits(b, 0), (size_t)n * V * sizeof(float)) == 0);
    ps_ctx_reset(b);
    for (i = 0; i < n; i++) {
        int k;
        REQUIRE(ps_forward(b, &ids[i], 1, 0) == PS_OK);
        for (k = 0; k < V; k++) REQUIRE(fabsf(ps_logits(b, 0)[k] - ps_logits(a, i)[k]) < 1e-4f);
    }
    ps_ctx_free(a);
    ps_ctx_free(b);
}

static void op_embedding(prog *g) {
    float row[32];
    int id = num(g, 0, V - 1);
    ps_status s = ps_model_embedding(model, id, row);
    REQUIRE(s == (id >= 0 && id < V ? PS_OK : PS_ERR_RANGE));
    if (!s) finite(row, (size_t)C);
}

/* readouts of the last logits: top-k sorted and consistent with ranks, the readout's top-1 */
static void op_readout(prog *g) {
    const float *lg = ps_logits(st.c, 0);
    float probs[96], p[12];
    int ids[12], k = num(g, 0, 12), id = num(g, 0, V - 1), j;
    ps_readout r;
    if (!lg) return;
    if (k > 12) k = 12;
    ps_softmax(lg, V, probs);
    ps_top_k(probs, V, k, ids, p);
    for (j = 0; j < k; j++) {
        REQUIRE(ids[j] >= 0 && ids[j] < V && p[j] == probs[ids[j]] && ps_rank(probs, V, ids[j]) == j);
        if (j) REQUIRE(p[j] <= p[j - 1]);
    }
    if (id >= 0 && id < V) REQUIRE(ps_rank(probs, V, id) >= 0 && ps_rank(probs, V, id) < V);
    ps_readout_fill(probs, probs, V, &r);
    REQUIRE(r.top_id[0] == ps_argmax(probs, V) && r.precision_at_1 == 1 && r.surprisal >= 0);
}

/* a small affine fit: solved or refused as singular, never anything else */
static void op_fit(prog *g) {
    float x[16 * 8], y[16 * 8], A[9 * 8];
    int d_src = num(g, 1, 8), d_tgt = num(g, 1, 8), n = num(g, 1, 16), i;
    double ridge = byte(g) / 16.0;
    ps_status s;
    if (d_src < 1 || d_src > 8 || d_tgt < 1 || d_tgt > 8 || n < 1 || n > 16) return;
    for (i = 0; i < n * d_src; i++) x[i] = fixed_vec[(i * 7 + byte(g)) % MAXW];
    for (i = 0; i < n * d_tgt; i++) y[i] = fixed_vec[(i * 3 + byte(g)) % MAXW];
    s = ps_fit_affine(x, d_src, y, d_tgt, n, ridge, A);
    REQUIRE(s == PS_OK || s == PS_ERR_RANGE);
    if (!s) finite(A, (size_t)(d_src + 1) * d_tgt);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    prog g;
    int ops = 0;
    g.p = data;
    g.end = data + size;
    memset(&st, 0, sizeof st);
    REQUIRE(ps_ctx_create(&st.c, model, byte(&g) & 1 ? pool : NULL, NULL) == PS_OK);
    while (g.p < g.end && ops++ < 64) {
        switch (byte(&g) % 18) {
        case 0: op_forward(&g); break;
        case 1: op_batch(&g); break;
        case 2: op_fork(&g); break;
        case 3: op_truncate(&g); break;
        case 4: ps_ctx_reset(st.c); memset(st.lens, 0, sizeof st.lens); same_lengths(); break;
        case 5: op_add_hook(&g); break;
        case 6: op_remove_hook(&g); break;
        case 7: ps_clear_hooks(st.c); st.n_live = st.stops = st.edits_pattern = 0; break;
        case 8: op_generate(&g); break;
        case 9: op_capture(&g); break;
        case 10: op_source(&g); break;
        case 11: op_inspect(&g); break;
        case 12: op_grid(&g); break;
        case 13: op_lens(&g); break;
        case 14: op_replay(&g); break;
        case 15: op_readout(&g); break;
        case 16: op_fit(&g); break;
        default: op_embedding(&g); break;
        }
    }
    ps_source_free(&st.src[0]);
    ps_source_free(&st.src[1]);
    ps_ctx_free(st.c);
    return 0;
}
