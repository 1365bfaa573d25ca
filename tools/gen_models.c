/* gen_models.c - writes the small random GPT-2 checkpoints the tests load.
 *
 *   cc -std=c99 -O2 -Wall -Wextra -Wpedantic tools/gen_models.c -o build/gen_models
 *   build/gen_models OUTDIR
 *
 * Every model is laid out as Hugging Face writes GPT-2 (config.json + model.safetensors, Conv1D
 * weights [in, out], the causal-mask buffers included), unless its row in the table below says
 * otherwise. The files are bit-identical on every machine: weights come from splitmix64 through
 * integer arithmetic only, and every weight is k * 2^-20 for an integer |k| < 2^24, which a float
 * holds exactly. F16/BF16 files hold the same weights rounded to nearest-even, done on the bits.
 *
 * The oracle in tools/reference/ reads these files and writes the goldens in tests/data/golden/.
 * This file stands alone on purpose: it shares no code with patchscope.h.
 */
#define _POSIX_C_SOURCE 200809L /* mkdir */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---------------------------------------------------------------------------------------------- */
/* The models */

enum { DT_F32, DT_F16, DT_BF16 };
enum { LAYOUT_DIR, LAYOUT_FILE_META, LAYOUT_FILE_BARE }; /* config.json + model.safetensors, or one bare file */
enum { FLAG_MASKED_BIAS = 1, FLAG_LM_HEAD = 2 };         /* FLAG_LM_HEAD: `transformer.` keys, lm_head, shuffled data */

typedef struct {
    const char *name;
    int n_layer, n_embd, n_head, n_vocab, n_ctx;
    const char *eps; /* as config.json spells it; NULL where there is no config */
    int dtype, layout, flags;
    uint64_t seed;
} Spec;

static const Spec specs[] = {
    /* tiny-f16 and tiny-bf16 share tiny's seed and shape, hence its weights */
    {"tiny", 2, 32, 2, 96, 32, "1e-05", DT_F32, LAYOUT_DIR, FLAG_MASKED_BIAS, 1},
    {"tiny-f16", 2, 32, 2, 96, 32, "1e-05", DT_F16, LAYOUT_DIR, 0, 1},
    {"tiny-bf16", 2, 32, 2, 96, 32, "1e-05", DT_BF16, LAYOUT_DIR, 0, 1},
    {"mid", 3, 64, 4, 50257, 64, "1e-05", DT_F32, LAYOUT_DIR, 0, 2},
    {"prefix", 2, 48, 3, 200, 24, "0.001", DT_F32, LAYOUT_DIR, FLAG_LM_HEAD, 3},
    /* width 32 is no GPT-2 size, so only the metadata can give the heads */
    {"meta", 2, 32, 4, 96, 16, NULL, DT_F32, LAYOUT_FILE_META, 0, 4},
    {"wide", 3, 48, 4, 96, 32, "1e-05", DT_F32, LAYOUT_DIR, 0, 5},
    /* nothing but tensors: heads from the width (768 -> 12), eps from the default */
    {"infer768", 1, 768, 12, 64, 8, NULL, DT_F32, LAYOUT_FILE_BARE, 0, 6},
    /* a few KB each: seeds for the fuzzers (tests/fuzz/seeds) */
    {"micro", 1, 8, 2, 16, 8, "1e-05", DT_F32, LAYOUT_DIR, FLAG_MASKED_BIAS, 7},
    {"micro-f16", 2, 8, 2, 16, 6, "1e-05", DT_F16, LAYOUT_DIR, FLAG_LM_HEAD, 8},
    {"micro-meta", 1, 8, 4, 16, 4, NULL, DT_BF16, LAYOUT_FILE_META, 0, 9},
};

/* ---------------------------------------------------------------------------------------------- */
/* Random dyadic weights */

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

#define UNIT 1048576.0 /* weights are integers in units of 2^-20 */
#define U(x) ((int64_t)((x) * UNIT + 0.5)) /* a constant in those units (x >= 0) */

static uint64_t isqrt(uint64_t n) { /* floor(sqrt(n)), by bisection: no libm */
    uint64_t lo = 0, hi = 1ull << 32;
    while (hi - lo > 1) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (mid * mid <= n) lo = mid; else hi = mid;
    }
    return lo;
}

/* Half-width, in units, that gives a weight with fan-in n the spread gain8/8 / sqrt(n): a layer
   fed unit-scale inputs then gives outputs of about gain/sqrt(3) whatever its width. */
static int64_t fan_in(int gain8, int n) { return (int64_t)isqrt((uint64_t)gain8 * gain8 * (1ull << 34) / (uint64_t)n); }

/* x[i] = (center + uniform integer in [-half, half]) * 2^-20 */
static void uniform(uint64_t *rng, float *x, size_t n, int64_t center, int64_t half) {
    size_t i;
    for (i = 0; i < n; i++) {
        int64_t k = center + (int64_t)(splitmix64(rng) % (uint64_t)(2 * half + 1)) - half;
        if (k <= -(1 << 24) || k >= (1 << 24)) { fprintf(stderr, "gen_models: weight out of range\n"); exit(1); }
        x[i] = (float)((double)k / UNIT);
    }
}

/* ---------------------------------------------------------------------------------------------- */
/* Tensors of one model */

typedef struct {
    char name[64];
    int ndim;
    int64_t shape[4];
    int dtype;   /* as written */
    float *data; /* values before the dtype conversion */
} Tensor;

typedef struct {
    Tensor t[64];
    int n;
} TensorList;

static int64_t numel(const Tensor *t) {
    int64_t n = 1;
    int i;
    for (i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

/* Appends a tensor of shape d0 x d1 x ... (ndim of them; ndim 0 is a scalar). */
static Tensor *add(TensorList *tl, const char *prefix, const char *name, int dtype, int ndim, int64_t d0, int64_t d1,
                   int64_t d2, int64_t d3) {
    Tensor *t;
    if (tl->n == (int)(sizeof tl->t / sizeof tl->t[0])) { fprintf(stderr, "gen_models: too many tensors\n"); exit(1); }
    t = &tl->t[tl->n++];
    snprintf(t->name, sizeof t->name, "%s%s", prefix, name);
    t->ndim = ndim;
    t->shape[0] = d0, t->shape[1] = d1, t->shape[2] = d2, t->shape[3] = d3;
    t->dtype = dtype;
    t->data = malloc(sizeof(float) * (size_t)numel(t));
    if (!t->data) { fprintf(stderr, "gen_models: out of memory\n"); exit(1); }
    return t;
}

/* Scales: LayerNorm gains 1 +- 0.3 and biases +- 0.2; q/k spread enough for attention that is
   clearly peaked but not one-hot; the unembedding (tied to wte) spreads logits over several units;
   blocks write strongly into the residual stream, so the tied embedding's pull to repeat the
   current token does not reduce greedy generation to one token. */
static void build(const Spec *s, TensorList *tl) {
    uint64_t rng = s->seed;
    const int C = s->n_embd, V = s->n_vocab, N = s->n_ctx, dt = s->dtype;
    const char *pre = (s->flags & FLAG_LM_HEAD) ? "transformer." : "";
    char nm[64];
    Tensor *t, *wte;
    int l, i, j;

    tl->n = 0;
    wte = add(tl, pre, "wte.weight", dt, 2, V, C, 0, 0);
    uniform(&rng, wte->data, (size_t)V * C, 0, fan_in(28, C));
    t = add(tl, pre, "wpe.weight", dt, 2, N, C, 0, 0);
    uniform(&rng, t->data, (size_t)N * C, 0, fan_in(28, C));
    for (l = 0; l < s->n_layer; l++) {
#define P(suffix) (snprintf(nm, sizeof nm, "h.%d.%s", l, suffix), nm)
        t = add(tl, pre, P("ln_1.weight"), dt, 1, C, 0, 0, 0);
        uniform(&rng, t->data, (size_t)C, U(1.0), U(0.3));
        t = add(tl, pre, P("ln_1.bias"), dt, 1, C, 0, 0, 0);
        uniform(&rng, t->data, (size_t)C, 0, U(0.2));
        /* HF keeps the causal mask as a buffer in the checkpoint; loaders skip it */
        t = add(tl, pre, P("attn.bias"), DT_F32, 4, 1, 1, N, N);
        for (i = 0; i < N; i++)
            for (j = 0; j < N; j++) t->data[i * N + j] = j <= i ? 1.0f : 0.0f;
        if (s->flags & FLAG_MASKED_BIAS) { /* older transformers also saved this scalar */
            t = add(tl, pre, P("attn.masked_bias"), DT_F32, 0, 0, 0, 0, 0);
            t->data[0] = -10000.0f;
        }
        t = add(tl, pre, P("attn.c_attn.weight"), dt, 2, C, 3 * C, 0, 0);
        uniform(&rng, t->data, (size_t)C * 3 * C, 0, fan_in(25, C));
        t = add(tl, pre, P("attn.c_attn.bias"), dt, 1, 3 * C, 0, 0, 0);
        uniform(&rng, t->data, (size_t)3 * C, 0, U(0.25));
        t = add(tl, pre, P("attn.c_proj.weight"), dt, 2, C, C, 0, 0);
        uniform(&rng, t->data, (size_t)C * C, 0, fan_in(24, C));
        t = add(tl, pre, P("attn.c_proj.bias"), dt, 1, C, 0, 0, 0);
        uniform(&rng, t->data, (size_t)C, 0, U(0.1));
        t = add(tl, pre, P("ln_2.weight"), dt, 1, C, 0, 0, 0);
        uniform(&rng, t->data, (size_t)C, U(1.0), U(0.3));
        t = add(tl, pre, P("ln_2.bias"), dt, 1, C, 0, 0, 0);
        uniform(&rng, t->data, (size_t)C, 0, U(0.2));
        t = add(tl, pre, P("mlp.c_fc.weight"), dt, 2, C, 4 * C, 0, 0);
        uniform(&rng, t->data, (size_t)C * 4 * C, 0, fan_in(40, C));
        t = add(tl, pre, P("mlp.c_fc.bias"), dt, 1, 4 * C, 0, 0, 0);
        uniform(&rng, t->data, (size_t)4 * C, 0, U(0.5));
        t = add(tl, pre, P("mlp.c_proj.weight"), dt, 2, 4 * C, C, 0, 0);
        uniform(&rng, t->data, (size_t)4 * C * C, 0, fan_in(24, 4 * C));
        t = add(tl, pre, P("mlp.c_proj.bias"), dt, 1, C, 0, 0, 0);
        uniform(&rng, t->data, (size_t)C, 0, U(0.1));
#undef P
    }
    t = add(tl, pre, "ln_f.weight", dt, 1, C, 0, 0, 0);
    uniform(&rng, t->data, (size_t)C, U(1.0), U(0.3));
    t = add(tl, pre, "ln_f.bias", dt, 1, C, 0, 0, 0);
    uniform(&rng, t->data, (size_t)C, 0, U(0.2));
    if (s->flags & FLAG_LM_HEAD) { /* a full GPT2LMHeadModel state dict stores the tied matrix twice */
        t = add(tl, "", "lm_head.weight", dt, 2, V, C, 0, 0);
        memcpy(t->data, wte->data, sizeof(float) * (size_t)V * C);
    }
}

/* ---------------------------------------------------------------------------------------------- */
/* safetensors */

static uint32_t f32_bits(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    return x;
}

static uint16_t f32_to_f16(float f) { /* round to nearest, ties to even */
    uint32_t x = f32_bits(f), sign = (x >> 16) & 0x8000u, a = x & 0x7fffffffu, h, rem, half, shift, m;
    if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00u);     /* NaN */
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);    /* >= 65520 rounds to infinity */
    if (a < 0x38800000u) {                                      /* below 2^-14: f16 subnormal */
        if (a < 0x33000000u) return (uint16_t)sign;             /* below 2^-25: rounds to zero */
        m = (a & 0x7fffffu) | 0x800000u;
        shift = 126u - (a >> 23);                               /* value in units of 2^-24 is m >> shift */
        h = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    } else {
        a -= 112u << 23;                                        /* rebias the exponent from 127 to 15 */
        h = a >> 13, rem = a & 0x1fffu, half = 0x1000u;
    }
    if (rem > half || (rem == half && (h & 1))) h++;            /* a carry rolls into the exponent correctly */
    return (uint16_t)(sign | h);
}

static uint16_t f32_to_bf16(float f) {
    uint32_t x = f32_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u);
    return (uint16_t)((x + 0x7fffu + ((x >> 16) & 1)) >> 16);
}

static const char *dtype_name(int dt) { return dt == DT_F32 ? "F32" : dt == DT_F16 ? "F16" : "BF16"; }
static int64_t dtype_size(int dt) { return dt == DT_F32 ? 4 : 2; }

typedef struct {
    char *p;
    size_t n, cap;
} Buf;

static void bprintf(Buf *b, const char *fmt, ...) {
    va_list ap;
    int k;
    for (;;) {
        va_start(ap, fmt);
        k = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (k < 0) { fprintf(stderr, "gen_models: format error\n"); exit(1); }
        if (b->p && b->n + (size_t)k < b->cap) { b->n += (size_t)k; return; }
        b->cap = (b->cap + (size_t)k + 1) * 2;
        b->p = realloc(b->p, b->cap);
        if (!b->p) { fprintf(stderr, "gen_models: out of memory\n"); exit(1); }
    }
}

static void put_le(FILE *f, uint64_t v, int bytes) { /* little-endian whatever the host is */
    int i;
    for (i = 0; i < bytes; i++) fputc((int)((v >> (8 * i)) & 0xff), f);
}

/* Header entries follow the tensor list; data sections follow `order` (the identity unless the
   model wants them shuffled), so offsets need not rise along the header. */
static void write_safetensors(const char *path, const TensorList *tl, const char *metadata, int meta_first, int shuffle,
                              uint64_t seed) {
    int order[64], i;
    int64_t begin[64], off = 0, k, n;
    Buf h = {NULL, 0, 0};
    FILE *f;

    for (i = 0; i < tl->n; i++) order[i] = i;
    if (shuffle) {
        uint64_t rng = seed ^ 0x5afe7e45u;
        for (i = tl->n - 1; i > 0; i--) {
            int j = (int)(splitmix64(&rng) % (uint64_t)(i + 1)), tmp = order[i];
            order[i] = order[j], order[j] = tmp;
        }
    }
    for (i = 0; i < tl->n; i++) {
        const Tensor *t = &tl->t[order[i]];
        begin[order[i]] = off;
        off += numel(t) * dtype_size(t->dtype);
    }

    bprintf(&h, "{");
    if (metadata && meta_first) bprintf(&h, "\"__metadata__\":%s,", metadata);
    for (i = 0; i < tl->n; i++) {
        const Tensor *t = &tl->t[i];
        int d;
        bprintf(&h, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[", i ? "," : "", t->name, dtype_name(t->dtype));
        for (d = 0; d < t->ndim; d++) bprintf(&h, "%s%lld", d ? "," : "", (long long)t->shape[d]);
        bprintf(&h, "],\"data_offsets\":[%lld,%lld]}", (long long)begin[i],
                (long long)(begin[i] + numel(t) * dtype_size(t->dtype)));
    }
    if (metadata && !meta_first) bprintf(&h, ",\"__metadata__\":%s", metadata);
    bprintf(&h, "}");
    while (h.n % 8) bprintf(&h, " "); /* the data starts 8-aligned, as the reference writer pads it */

    f = fopen(path, "wb");
    if (!f) { fprintf(stderr, "gen_models: cannot write %s: %s\n", path, strerror(errno)); exit(1); }
    put_le(f, (uint64_t)h.n, 8);
    fwrite(h.p, 1, h.n, f);
    for (i = 0; i < tl->n; i++) {
        const Tensor *t = &tl->t[order[i]];
        n = numel(t);
        for (k = 0; k < n; k++) {
            float v = t->data[k];
            if (t->dtype == DT_F32) put_le(f, f32_bits(v), 4);
            else put_le(f, t->dtype == DT_F16 ? f32_to_f16(v) : f32_to_bf16(v), 2);
        }
    }
    if (fclose(f) != 0) { fprintf(stderr, "gen_models: error writing %s\n", path); exit(1); }
    free(h.p);
}

/* ---------------------------------------------------------------------------------------------- */
/* config.json, shaped like the one published with gpt2 */

static void write_config(const char *path, const Spec *s) {
    FILE *f = fopen(path, "wb");
    if (!f) { fprintf(stderr, "gen_models: cannot write %s: %s\n", path, strerror(errno)); exit(1); }
    fprintf(f,
            "{\n"
            "  \"activation_function\": \"gelu_new\",\n"
            "  \"architectures\": [\n    \"GPT2LMHeadModel\"\n  ],\n"
            "  \"attn_pdrop\": 0.1,\n"
            "  \"bos_token_id\": %d,\n"
            "  \"embd_pdrop\": 0.1,\n"
            "  \"eos_token_id\": %d,\n"
            "  \"initializer_range\": 0.02,\n"
            "  \"layer_norm_epsilon\": %s,\n"
            "  \"model_type\": \"gpt2\",\n"
            "  \"n_ctx\": %d,\n"
            "  \"n_embd\": %d,\n"
            "  \"n_head\": %d,\n"
            "  \"n_inner\": null,\n"
            "  \"n_layer\": %d,\n"
            "  \"n_positions\": %d,\n"
            "  \"reorder_and_upcast_attn\": false,\n"
            "  \"resid_pdrop\": 0.1,\n"
            "  \"scale_attn_by_inverse_layer_idx\": false,\n"
            "  \"scale_attn_weights\": true,\n"
            "  \"summary_activation\": null,\n"
            "  \"summary_first_dropout\": 0.1,\n"
            "  \"summary_proj_to_labels\": true,\n"
            "  \"summary_type\": \"cls_index\",\n"
            "  \"summary_use_proj\": true,\n"
            "  \"task_specific_params\": {\n"
            "    \"text-generation\": {\n"
            "      \"do_sample\": true,\n"
            "      \"max_length\": 50\n"
            "    }\n"
            "  },\n"
            "  \"torch_dtype\": \"%s\",\n"
            "  \"transformers_version\": \"4.38.2\",\n"
            "  \"use_cache\": true,\n"
            "  \"vocab_size\": %d\n"
            "}\n",
            s->n_vocab - 1, s->n_vocab - 1, s->eps, s->n_ctx, s->n_embd, s->n_head, s->n_layer, s->n_ctx,
            s->dtype == DT_F32 ? "float32" : s->dtype == DT_F16 ? "float16" : "bfloat16", s->n_vocab);
    if (fclose(f) != 0) { fprintf(stderr, "gen_models: error writing %s\n", path); exit(1); }
}

/* ---------------------------------------------------------------------------------------------- */

static void make_dir(const char *path) {
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "gen_models: cannot create %s: %s\n", path, strerror(errno));
        exit(1);
    }
}

int main(int argc, char **argv) {
    static TensorList tl;
    char path[4096], meta[64];
    size_t m;
    int i;

    if (argc != 2) {
        fprintf(stderr, "usage: %s OUTDIR\n", argv[0]);
        return 2;
    }
    make_dir(argv[1]);
    for (m = 0; m < sizeof specs / sizeof specs[0]; m++) {
        const Spec *s = &specs[m];
        build(s, &tl);
        if (s->layout == LAYOUT_DIR) {
            snprintf(path, sizeof path, "%s/%s", argv[1], s->name);
            make_dir(path);
            snprintf(path, sizeof path, "%s/%s/config.json", argv[1], s->name);
            write_config(path, s);
            snprintf(path, sizeof path, "%s/%s/model.safetensors", argv[1], s->name);
            write_safetensors(path, &tl, "{\"format\":\"pt\"}", 1, s->flags & FLAG_LM_HEAD, s->seed);
        } else {
            snprintf(path, sizeof path, "%s/%s.safetensors", argv[1], s->name);
            snprintf(meta, sizeof meta, "{\"format\":\"pt\",\"n_head\":\"%d\"}", s->n_head);
            write_safetensors(path, &tl, s->layout == LAYOUT_FILE_META ? meta : NULL, 0, 0, s->seed);
        }
        for (i = 0; i < tl.n; i++) free(tl.t[i].data);
    }
    return 0;
}
