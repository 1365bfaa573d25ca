/* bench - how fast patchscope.h runs on this machine, against the machine's own peak.

   Usage: build/bench [--json] [--quick]       (from the repository root; make bench)
          build/bench --forward T THREADS [REPS]  only that forward pass, REPS times (default
                                                  50): a steady workload for a profiler
          build/bench --memory-7b DIR [THREADS]   a Llama-2-7B-shaped BF16 file (13.5 GB,
                                                  written into DIR once) loaded and run: memory,
                                                  load time, prompt and decode (one JSON line)

   Prints tables, or with --json exactly one JSON object:
     forward       [{model, T, threads, ms, gflops, peak_fraction, cpu_ms}]: a full pass over T
                   tokens with logits at every position, T in 8, 64, 256 on 1 and 2
                   threads (gpt2-small shapes), and T = 64 on 2 threads for gpt2-medium.
                   FLOPs = 2*P*T + 2*L*C*T^2 + 2*T*C*V, P = 12*L*C^2; cpu_ms: the least
                   CPU time of a run, all threads (on a busy machine, wall-clock is not)
     decode        [{dtype, threads, ms_per_token, bound_ms, cpu_ms}]: one token at context 128
                   with the KV cache, F32 weights and BF16 weights; bound_ms = bytes read
                   per token (weights, vectors, KV cache) / copy_gb_s
     grid          {efficient_ms, naive_ms, cpu_ms}: the 12x12 CEO grid of examples/ceo_demo.c
                   on gpt2-small shapes, 2 threads (naive: every cell recomputed, timed once)
     sweep         {cases, cases_per_s, loop_cases_per_s, speedup, cells_peak_fraction}: 200
                   CEO-style cases (one cell each: a company's " CEO" from layer l into layer
                   l of the copying prompt) through `patchscope sweep` on a gpt2-small-shaped
                   file, against one `patchscope grid` process per case (the first 20, timed);
                   cells_peak_fraction: the FLOP rate of their ps_grid_run_many (the target's
                   run, each cell's blocks from its entry, its logits) over the 2-thread peak
     peak_gflops   {"1", "2"}: the matmul kernel on 1536^3, 1 and 2 threads (and
                   peak_gflops_per_cpu_s, the same per CPU-second of all threads)
     copy_gb_s     {"1", "2"}: memcpy of 512 MB, bytes read + written per second
     bf16_logits   {max_abs_diff, max_abs_logit}: BF16 against F32 weights, 8 positions
     rss           {file_mb, peak_mb}: peak resident size after loading a gpt2-small F32
                   file (mapped) and running 8 tokens
     tokenizer_mb_s          encode, MB/s of text, one thread, on a few MB of mixed text:
                             the texts of tests/data/tokenizer_cases.json joined by
                             newlines and repeated (tools/bench_tiktoken.js times tiktoken
                             on the same bytes)
     tokenizer_ascii_mb_s    the same on the texts that are all ASCII (prose, code, spaces)
     tokenizer_decode_mb_s   decode of the mixed text's ids, MB/s of text out
     tokenizer_long_s        seconds to encode 1 MB of random letters, one piece

   The models are random checkpoints built in memory (no downloaded weights). Model times
   are wall-clock, best of 5 after a warm-up (--quick: best of 1); tokenizer times are CPU
   seconds of the process, so other work on the machine skews them less. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#define PATCHSCOPE_IMPLEMENTATION
#include "../patchscope.h"
#include <stdarg.h>
#include <time.h>
#include <sys/resource.h>
#include <sys/stat.h>

#define BENCH_TEXT_MIN (4u << 20) /* the texts are repeated up to at least 4 MiB */

/* --- results ---------------------------------------------------------------------------- */

typedef struct row {
    const char *key, *label, *unit;
    double value;
} row;

static row rows[64];
static int n_rows;

static void result(const char *key, const char *label, const char *unit, double value) {
    if (n_rows < (int)(sizeof rows / sizeof rows[0])) {
        row r;
        r.key = key, r.label = label, r.unit = unit, r.value = value;
        rows[n_rows++] = r;
    }
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double wall(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int reps = 5; /* model timings: best of reps after a warm-up */

static void die(const char *what, const char *msg) {
    fprintf(stderr, "bench: %s: %s\n", what, msg);
    exit(1);
}

/* --- tokenizer ---------------------------------------------------------------------------- */

typedef struct text { char *data; size_t size, cap; } text;

static void reserve(text *t, size_t n) {
    if (t->size + n > t->cap) {
        t->cap = 2 * (t->size + n);
        t->data = (char *)realloc(t->data, t->cap);
        if (!t->data) die("text", "out of memory");
    }
}

static void append(text *t, const char *s, size_t n) {
    reserve(t, n);
    memcpy(t->data + t->size, s, n);
    t->size += n;
}

/* "\n" and the first n bytes again, until the text has BENCH_TEXT_MIN bytes */
static void repeat(text *t, size_t n) {
    while (t->size < BENCH_TEXT_MIN) {
        append(t, "\n", 1);
        reserve(t, n); /* before the copy: realloc may move the source */
        memcpy(t->data + t->size, t->data, n);
        t->size += n;
    }
}

/* 1 when s has a run of 256 bytes without ' ' or '\n': the fixture's long-piece stress
   texts, left out of the throughput texts (they would time tiktoken's quadratic merge) */
static int has_long_run(const char *s, size_t n) {
    size_t i, run = 0;
    for (i = 0; i < n; i++) {
        run = s[i] == ' ' || s[i] == '\n' ? 0 : run + 1;
        if (run >= 256) return 1;
    }
    return 0;
}

/* The fixture texts but the long-piece ones, joined by "\n" into mixed (all) and ascii
   (those all ASCII), each repeated to BENCH_TEXT_MIN. tools/bench_tiktoken.js builds
   the same bytes. */
static void bench_texts(text *mixed, text *ascii) {
    ps__file f;
    ps_error e;
    ps__json j;
    char key[16], *buf;
    size_t len, one_mixed, one_ascii, i;
    int r;
    if (ps__file_read(&f, "tests/data/tokenizer_cases.json", 1, &e)) die("fixture", e.msg);
    buf = (char *)malloc(f.size + 1);
    ps__json_init(&j, (const char *)f.data, f.size);
    if (ps__json_object(&j)) die("fixture", j.err);
    while ((r = ps__json_key(&j, key, sizeof key, NULL)) == 1) {
        if (strcmp(key, "cases") != 0) { ps__json_skip(&j); continue; }
        ps__json_array(&j);
        while ((r = ps__json_item(&j)) == 1) {
            ps__json_object(&j);
            while ((r = ps__json_key(&j, key, sizeof key, NULL)) == 1) {
                if (strcmp(key, "text") != 0) { ps__json_skip(&j); continue; }
                if (ps__json_string(&j, buf, f.size + 1, &len)) break;
                if (has_long_run(buf, len)) continue;
                for (i = 0; i < len && (unsigned char)buf[i] < 0x80; i++) {}
                if (mixed->size) append(mixed, "\n", 1);
                append(mixed, buf, len);
                if (i == len) {
                    if (ascii->size) append(ascii, "\n", 1);
                    append(ascii, buf, len);
                }
            }
            if (r < 0) break;
        }
        if (r < 0) break;
    }
    if (r < 0) die("fixture", j.err);
    one_mixed = mixed->size;
    one_ascii = ascii->size;
    repeat(mixed, one_mixed);
    repeat(ascii, one_ascii);
    free(buf);
    ps__file_close(&f);
}

/* best encode throughput in MB/s over a few runs; *n_ids gets the id count */
static double encode_mb_s(const ps_tokenizer *t, const text *x, int *ids, int cap, int *n_ids) {
    double best = 0;
    int run;
    for (run = 0; run < 5; run++) {
        double t0 = now(), dt;
        if (ps_encode(t, x->data, x->size, 0, ids, cap, n_ids)) die("encode", "failed");
        dt = now() - t0;
        if (x->size / dt / 1e6 > best) best = x->size / dt / 1e6;
    }
    return best;
}

static void bench_tokenizer(void) {
    ps_tokenizer *t;
    ps_error e;
    text mixed = {NULL, 0, 0}, ascii = {NULL, 0, 0};
    int *ids, cap, n = 0, run;
    char *out;
    double best = 0;
    if (ps_tokenizer_load(&t, "weights", &e)) die("tokenizer", e.msg);
    bench_texts(&mixed, &ascii);
    cap = (int)(mixed.size > ascii.size ? mixed.size : ascii.size);
    ids = (int *)malloc((size_t)cap * sizeof(int));
    out = (char *)malloc(mixed.size);
    result("tokenizer_ascii_mb_s", "tokenizer encode, ASCII text", "MB/s", encode_mb_s(t, &ascii, ids, cap, &n));
    result("tokenizer_mb_s", "tokenizer encode, mixed text", "MB/s", encode_mb_s(t, &mixed, ids, cap, &n));
    for (run = 0; run < 5; run++) {
        size_t len;
        double t0 = now(), dt;
        if (ps_decode(t, ids, n, out, mixed.size, &len) || len != mixed.size || memcmp(out, mixed.data, len))
            die("decode", "does not give the text back");
        dt = now() - t0;
        if (len / dt / 1e6 > best) best = len / dt / 1e6;
    }
    result("tokenizer_decode_mb_s", "tokenizer decode", "MB/s", best);
    {
        size_t i, len = 1 << 20;
        unsigned x = 1;
        int n_long;
        double t0;
        for (i = 0; i < len; i++) {
            x = x * 1103515245u + 12345u;
            out[i] = (char)('a' + (x >> 16) % 26);
        }
        t0 = now();
        if (ps_encode(t, out, len, 0, ids, cap, &n_long)) die("encode", "failed on 1 MB of letters");
        result("tokenizer_long_s", "tokenizer encode, 1 MB one piece", "s", now() - t0);
    }
    result("tokenizer_text_bytes", "  mixed text size", "bytes", (double)mixed.size);
    result("tokenizer_text_tokens", "  mixed text tokens", "ids", (double)n);
    free(ids);
    free(out);
    free(mixed.data);
    free(ascii.data);
    ps_tokenizer_free(t);
}

/* --- random GPT-2 checkpoints, as safetensors in memory or in a file ---------------------- */

typedef struct shape { int L, C, H, V, n_ctx; } shape;
static const shape gpt2_small = {12, 768, 12, 50257, 1024};
static const shape gpt2_medium = {24, 1024, 16, 50257, 1024};

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;
static float frand(void) { /* uniform in [-1, 1) */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((rng_state >> 40) * (1.0 / 8388608.0) - 1.0);
}

typedef struct tensor { char name[64]; int rows, cols; int kind; } tensor; /* kind 0 random, 1 ones, 2 zeros */

/* t[*n] = a tensor named by fmt, [rows] (cols 0) or [rows][cols] */
static void put(tensor *t, int *n, int rows, int cols, int kind, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t[*n].name, sizeof t[*n].name, fmt, ap);
    va_end(ap);
    t[*n].rows = rows;
    t[*n].cols = cols;
    t[(*n)++].kind = kind;
}

static int tensors(const shape *s, tensor *t) {
    static const char *parts[12] = {"ln_1.weight", "ln_1.bias", "attn.c_attn.weight", "attn.c_attn.bias",
                                    "attn.c_proj.weight", "attn.c_proj.bias", "ln_2.weight", "ln_2.bias",
                                    "mlp.c_fc.weight", "mlp.c_fc.bias", "mlp.c_proj.weight", "mlp.c_proj.bias"};
    int C = s->C, n = 0, l, i;
    const int rows[12] = {C, C, C, 3 * C, C, C, C, C, C, 4 * C, 4 * C, C};
    const int cols[12] = {0, 0, 3 * C, 0, C, 0, 0, 0, 4 * C, 0, C, 0};
    const int kind[12] = {1, 2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0};
    put(t, &n, s->V, C, 0, "wte.weight");
    put(t, &n, s->n_ctx, C, 0, "wpe.weight");
    for (l = 0; l < s->L; l++)
        for (i = 0; i < 12; i++) put(t, &n, rows[i], cols[i], kind[i], "h.%d.%s", l, parts[i]);
    put(t, &n, C, 0, 1, "ln_f.weight");
    put(t, &n, C, 0, 2, "ln_f.bias");
    return n;
}

/* A Llama-shaped checkpoint (TinyLlama-1.1B's shapes: GQA, SwiGLU, untied head), HF names */
typedef struct lshape { int L, C, H, KV, F, V, n_ctx; } lshape;
static const lshape tinyllama = {22, 2048, 32, 4, 5632, 32000, 2048};

static int llama_tensors(const lshape *s, tensor *t) {
    static const char *parts[9] = {"input_layernorm.weight", "self_attn.q_proj.weight", "self_attn.k_proj.weight",
                                   "self_attn.v_proj.weight", "self_attn.o_proj.weight",
                                   "post_attention_layernorm.weight", "mlp.gate_proj.weight", "mlp.up_proj.weight",
                                   "mlp.down_proj.weight"};
    int C = s->C, D = C / s->H, n = 0, l, i;
    const int rows[9] = {C, C, s->KV * D, s->KV * D, C, C, s->F, s->F, C};
    const int cols[9] = {0, C, C, C, C, 0, C, C, s->F};
    put(t, &n, s->V, C, 0, "model.embed_tokens.weight");
    for (l = 0; l < s->L; l++)
        for (i = 0; i < 9; i++) put(t, &n, rows[i], cols[i], cols[i] ? 0 : 1, "model.layers.%d.%s", l, parts[i]);
    put(t, &n, C, 0, 1, "model.norm.weight");
    put(t, &n, s->V, C, 0, "lm_head.weight");
    return n;
}

static size_t numel(const tensor *t) { return (size_t)t->rows * (size_t)(t->cols ? t->cols : 1); }

/* The header (8-byte length + JSON, padded so the data starts 64-byte aligned), every
   tensor F32 (bf16 0) or BF16 (bf16 1). */
static char *st_header(const tensor *t, int n, int bf16, size_t *hlen, size_t *data_len) {
    size_t cap = (size_t)n * 128 + 64, len = 0, off = 0;
    char *h = (char *)malloc(cap);
    const char *dt = bf16 ? "BF16" : "F32";
    int i;
    len += (size_t)sprintf(h + 8 + len, "{");
    for (i = 0; i < n; i++) {
        size_t bytes = numel(&t[i]) * (bf16 ? 2 : 4);
        if (t[i].cols)
            len += (size_t)sprintf(h + 8 + len, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[%d,%d],\"data_offsets\":[%lu,%lu]}",
                                   i ? "," : "", t[i].name, dt, t[i].rows, t[i].cols, (unsigned long)off,
                                   (unsigned long)(off + bytes));
        else
            len += (size_t)sprintf(h + 8 + len, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[%d],\"data_offsets\":[%lu,%lu]}",
                                   i ? "," : "", t[i].name, dt, t[i].rows, (unsigned long)off, (unsigned long)(off + bytes));
        off += bytes;
    }
    len += (size_t)sprintf(h + 8 + len, "}");
    while ((8 + len) % 64) h[8 + len++] = ' ';
    for (i = 0; i < 8; i++) h[i] = (char)((unsigned long long)len >> (8 * i));
    *hlen = 8 + len;
    *data_len = off;
    return h;
}

/* weights uniform with standard deviation ~0.02 (GPT-2's init), LayerNorm at identity */
static void fill(const tensor *t, float *out) {
    size_t i, n = numel(t);
    for (i = 0; i < n; i++) out[i] = t->kind == 1 ? 1.0f : t->kind == 2 ? 0.0f : 0.035f * frand();
}

static unsigned char *tensor_bytes(tensor *t, int n, size_t *size) {
    int i;
    size_t hlen, dlen, at;
    char *h = st_header(t, n, 0, &hlen, &dlen);
    unsigned char *buf = (unsigned char *)malloc(hlen + dlen);
    memcpy(buf, h, hlen);
    for (at = hlen, i = 0; i < n; i++) {
        fill(&t[i], (float *)(void *)(buf + at));
        at += numel(&t[i]) * 4;
    }
    free(h);
    free(t);
    *size = hlen + dlen;
    return buf;
}

static unsigned char *model_bytes(const shape *s, size_t *size) {
    tensor *t = (tensor *)malloc(sizeof(tensor) * (size_t)(12 * s->L + 4));
    return tensor_bytes(t, tensors(s, t), size);
}

/* the Llama-shaped model, its matrices kept in BF16 (as most Llama checkpoints are) */
static ps_model *llama_model(const lshape *s, unsigned char **bytes) {
    tensor *t = (tensor *)malloc(sizeof(tensor) * (size_t)(9 * s->L + 4));
    char cfg[512];
    size_t size;
    ps_model *m;
    ps_error e;
    ps_load_opts o;
    *bytes = tensor_bytes(t, llama_tensors(s, t), &size);
    memset(&o, 0, sizeof o);
    o.weights = PS_WEIGHTS_BF16;
    snprintf(cfg, sizeof cfg, "{\"model_type\": \"llama\", \"num_hidden_layers\": %d, \"hidden_size\": %d, "
             "\"num_attention_heads\": %d, \"num_key_value_heads\": %d, \"intermediate_size\": %d, "
             "\"vocab_size\": %d, \"max_position_embeddings\": %d}", s->L, s->C, s->H, s->KV, s->F, s->V, s->n_ctx);
    if (ps_model_load_memory(&m, *bytes, size, cfg, strlen(cfg), &o, &e)) {
        fprintf(stderr, "bench: %s\n", e.msg);
        exit(1);
    }
    return m;
}

/* a model from checkpoint bytes (which must outlive it), matrices stored as w asks */
static ps_model *load_bytes(const shape *s, const unsigned char *bytes, size_t size, ps_weights w) {
    char cfg[128];
    ps_model *m;
    ps_error e;
    ps_load_opts o;
    memset(&o, 0, sizeof o);
    o.weights = w;
    snprintf(cfg, sizeof cfg, "{\"n_layer\": %d, \"n_head\": %d}", s->L, s->H);
    if (ps_model_load_memory(&m, bytes, size, cfg, strlen(cfg), &o, &e)) {
        fprintf(stderr, "bench: %s\n", e.msg);
        exit(1);
    }
    return m;
}

/* a checkpoint of the n tensors t written to a file, F32 or BF16 (rounded to nearest even),
   a chunk at a time (no big buffer); frees t; the file's size */
static size_t write_tensors(tensor *t, int n, int bf16, const char *path) {
    size_t hlen, dlen, j, k, q;
    char *h = st_header(t, n, bf16, &hlen, &dlen);
    FILE *f = fopen(path, "wb");
    float chunk[4096];
    uint16_t half[4096];
    int i;
    if (!f) { fprintf(stderr, "bench: cannot write %s\n", path); exit(1); }
    fwrite(h, 1, hlen, f);
    for (i = 0; i < n; i++) {
        tensor part = t[i];
        for (j = 0; j < numel(&t[i]); j += 4096) {
            k = numel(&t[i]) - j < 4096 ? numel(&t[i]) - j : 4096;
            part.rows = (int)k;
            part.cols = 0;
            fill(&part, chunk);
            if (!bf16) {
                fwrite(chunk, 4, k, f);
                continue;
            }
            for (q = 0; q < k; q++) {
                uint32_t u;
                memcpy(&u, &chunk[q], 4);
                half[q] = (uint16_t)((u + 0x7FFF + ((u >> 16) & 1)) >> 16);
            }
            fwrite(half, 2, k, f);
        }
    }
    if (fclose(f)) { fprintf(stderr, "bench: cannot write %s\n", path); exit(1); }
    free(h);
    free(t);
    return hlen + dlen;
}

/* a gpt2-small-shaped F32 checkpoint written to a file */
static size_t write_model_file(const shape *s, const char *path) {
    tensor *t = (tensor *)malloc(sizeof(tensor) * (size_t)(12 * s->L + 4));
    return write_tensors(t, tensors(s, t), 0, path);
}

/* --- the model: forward, decode, grid, peak, bandwidth, memory ----------------------------- */

/* multiply-adds of one token through one block's matrices */
static double block_macs(const ps_config *g) {
    double C = g->n_embd, Q = (double)g->n_head * g->d_head, KV = (double)g->n_kv_head * g->d_head;
    int gated = strcmp(g->family, "gpt2") && strcmp(g->family, "gpt_neox") && strcmp(g->family, "gptj");
    return C * (Q + 2 * KV) + Q * C + (gated ? 3.0 : 2.0) * C * g->d_mlp;
}

/* FLOPs of a pass over T tokens with logits everywhere: the matrices, attention, the head */
static double forward_flops(const ps_model *m, int T) {
    const ps_config *g = ps_model_config(m);
    return 2 * block_macs(g) * g->n_layer * T + 2.0 * g->n_layer * g->n_head * g->d_head * (double)T * T +
           2.0 * T * g->n_embd * (double)g->n_vocab;
}

static void run_or_die(ps_ctx *c, ps_status s) {
    if (s) { fprintf(stderr, "bench: %s\n", ps_ctx_error(c)); exit(1); }
}

/* best wall-clock ms of a pass over n tokens after a prefix of `prefix` tokens that the KV
   cache holds (computed once), over `times` runs after a warm-up; *cpu_ms gets the least
   CPU time one took (all threads), which other work on the machine disturbs less.
   A full forward is prefix 0; decoding is n = 1. */
static double time_pass(const ps_model *m, int prefix, int n, int flags, int threads, int times, double *cpu_ms) {
    ps_pool *pool;
    ps_ctx *c;
    int *ids = (int *)malloc(sizeof(int) * (size_t)(prefix + n)), i;
    double best = 1e30;
    for (i = 0; i < prefix + n; i++) ids[i] = (i * 7919 + 13) % ps_model_config(m)->n_vocab;
    ps_pool_create(&pool, threads);
    ps_ctx_create(&c, m, pool, NULL);
    if (prefix) run_or_die(c, ps_forward(c, ids, prefix, PS_NO_LOGITS));
    *cpu_ms = 1e30;
    for (i = 0; i <= times; i++) {
        double t0 = wall(), c0 = now();
        run_or_die(c, ps_seq_truncate(c, 0, prefix));
        run_or_die(c, ps_forward(c, ids + prefix, n, flags));
        if (i > 0 && wall() - t0 < best) best = wall() - t0;
        if (i > 0 && (now() - c0) * 1e3 < *cpu_ms) *cpu_ms = (now() - c0) * 1e3;
    }
    ps_ctx_free(c);
    ps_pool_free(pool);
    free(ids);
    return best * 1e3;
}

/* a full pass over T tokens, logits everywhere */
static double time_forward(const ps_model *m, int T, int threads, double *cpu_ms) {
    return time_pass(m, 0, T, PS_ALL_LOGITS, threads, reps, cpu_ms);
}

/* one token at context `ctx` with the KV cache (best of 4 * reps: a token is quick) */
static double time_decode(const ps_model *m, int ctx, int threads, double *cpu_ms) {
    return time_pass(m, ctx, 1, 0, threads, 4 * reps, cpu_ms);
}

/* bytes one decoding step reads: every weight matrix, the vectors, and the KV cache */
static double decode_bytes(const ps_model *m, int ctx) {
    const ps_config *g = ps_model_config(m);
    double C = g->n_embd, el = ps_model_dtype(m) == PS_F32 ? 4 : 2;
    return el * (block_macs(g) * g->n_layer + (double)g->n_vocab * C) + 4.0 * (13.0 * g->n_layer * C + 2 * C) +
           4.0 * 2 * g->n_layer * (double)ctx * g->n_kv_head * g->d_head;
}

/* copy bandwidth in GB/s, STREAM's count (bytes read + bytes written), on the pool */
typedef struct copy_job { unsigned char *dst; const unsigned char *src; size_t n; int parts; } copy_job;
static void copy_task(void *arg, int t0, int t1, int thread) {
    const copy_job *j = (const copy_job *)arg;
    size_t per = j->n / (size_t)j->parts;
    (void)thread;
    memcpy(j->dst + per * (size_t)t0, j->src + per * (size_t)t0, per * (size_t)(t1 - t0));
}
static double copy_bandwidth(int threads) {
    copy_job j;
    ps_pool *pool;
    double best = 1e30;
    int i;
    j.n = (size_t)1 << 29;
    j.parts = 64;
    j.src = (unsigned char *)malloc(j.n);
    j.dst = (unsigned char *)malloc(j.n);
    memset((void *)j.src, 1, j.n);
    memset(j.dst, 2, j.n);
    ps_pool_create(&pool, threads);
    for (i = 0; i <= reps; i++) {
        double t0 = wall();
        ps__parallel(pool, j.parts, copy_task, &j);
        if (i > 0 && wall() - t0 < best) best = wall() - t0;
    }
    ps_pool_free(pool);
    free((void *)j.src);
    free(j.dst);
    return 2.0 * (double)j.n / best * 1e-9;
}

/* the kernel's own peak: y = x . W on n x n matrices, GFLOP/s; *per_cpu_s gets GFLOP per
   CPU-second (all threads), what the kernel does while it actually runs */
static double peak_gflops(int n, int threads, double *per_cpu_s) {
    ps__mat w;
    ps_pool *pool;
    size_t panels = ((size_t)n + PS__NR - 1) / PS__NR, i;
    float *x = (float *)malloc(sizeof(float) * (size_t)n * n), *y = (float *)malloc(sizeof(float) * (size_t)n * n);
    float *wd = (float *)malloc(sizeof(float) * panels * PS__NR * (size_t)n);
    double best = 1e30, best_cpu = 1e30;
    int r;
    for (i = 0; i < (size_t)n * n; i++) x[i] = frand();
    for (i = 0; i < panels * PS__NR * (size_t)n; i++) wd[i] = frand();
    w.data = wd;
    w.dtype = PS_F32;
    w.rows = w.cols = n;
    ps_pool_create(&pool, threads);
    for (r = 0; r <= reps; r++) {
        double t0 = wall(), c0 = now();
        ps__matmul(pool, y, x, &w, NULL, n);
        if (r > 0 && wall() - t0 < best) best = wall() - t0;
        if (r > 0 && now() - c0 < best_cpu) best_cpu = now() - c0;
    }
    *per_cpu_s = 2.0 * n * (double)n * n / best_cpu * 1e-9;
    ps_pool_free(pool);
    free(x);
    free(y);
    free(wd);
    return 2.0 * n * (double)n * n / best * 1e-9;
}

/* The CEO grid of the Patchscopes demo: "Amazon's former CEO attended Oscars", the state
   of " CEO" from every layer into every layer of "cat->cat; 135->135; hello->hello; ?->"
   (ids as GPT-2's tokenizer gives them). *naive_ms gets the per-cell recompute, *cpu_ms
   the least CPU time of an efficient run. */
static double time_grid(const ps_model *m, int threads, double *naive_ms, double *cpu_ms) {
    static const int source[] = {24888, 338, 1966, 6123, 9141, 46485};
    static const int target[] = {9246, 3784, 9246, 26, 17501, 3784, 17059, 26, 23748, 3784, 31373, 26, 5633, 3784};
    int ceo = 3, i, L = ps_model_config(m)->n_layer;
    ps_pool *pool;
    ps_ctx *c;
    ps_source src;
    ps_grid_spec spec;
    ps_grid g, gn;
    double best = 1e30, t0, c0;
    ps_pool_create(&pool, threads);
    ps_ctx_create(&c, m, pool, NULL);
    *cpu_ms = 1e30;
    run_or_die(c, ps_source_run(c, source, 6, PS_RESID_POST, &ceo, 1, &src));
    memset(&spec, 0, sizeof spec);
    spec.src = &src;
    spec.src_pos = ceo;
    spec.src_first = spec.tgt_first = 0;
    spec.src_last = spec.tgt_last = L - 1;
    spec.target = target;
    spec.n_target = 14;
    spec.tgt_pos = -1;
    for (i = 0; i <= reps; i++) {
        t0 = wall();
        c0 = now();
        run_or_die(c, ps_grid_run(c, &spec, &g));
        if (i > 0 && wall() - t0 < best) best = wall() - t0;
        if (i > 0 && (now() - c0) * 1e3 < *cpu_ms) *cpu_ms = (now() - c0) * 1e3;
        if (i < reps) ps_grid_free(&g);
    }
    spec.naive = 1; /* slow: timed once */
    t0 = wall();
    run_or_die(c, ps_grid_run(c, &spec, &gn));
    *naive_ms = (wall() - t0) * 1e3;
    if (memcmp(g.top_id, gn.top_id, sizeof(int) * (size_t)L * L) != 0)
        fprintf(stderr, "bench: the efficient and the naive grid disagree\n");
    ps_grid_free(&g);
    ps_grid_free(&gn);
    ps_source_free(&src);
    ps_ctx_free(c);
    ps_pool_free(pool);
    return best * 1e3;
}

/* The sweep: 200 CEO-style cases (a company's " CEO" from one source layer into the same
   layer of the copying prompt, one cell each) on the gpt2-small-shaped file at path.
   *loop_s gets the seconds per case of one `patchscope grid` process per case (timed on
   the first 20 and scaled), *frac the FLOP rate of the cells' ps_grid_run_many (the
   target's run and every cell's blocks and logits) over the 2-thread peak. */
#define SWEEP_CASES 200
static double time_sweep(const ps_model *m, const char *path, double peak2, double *loop_s, double *frac) {
    static const int target[] = {9246, 3784, 9246, 26, 17501, 3784, 17059, 26, 23748, 3784, 31373, 26, 5633, 3784};
    const ps_config *g = ps_model_config(m);
    int src[SWEEP_CASES][6], i, k, ceo = 3;
    char cmd[1024];
    double t0, sweep_s, best = 1e30, flops = 2 * block_macs(g) * g->n_layer * 14.0;
    FILE *f = fopen("build/bench-sweep.jsonl", "w");
    ps_pool *pool;
    ps_ctx *c;
    ps_source *sources = (ps_source *)calloc(SWEEP_CASES, sizeof *sources);
    ps_grid_spec *specs = (ps_grid_spec *)calloc(SWEEP_CASES, sizeof *specs);
    ps_grid *grids = (ps_grid *)calloc(SWEEP_CASES, sizeof *grids);
    if (!f || !sources || !specs || !grids) { fprintf(stderr, "bench: cannot set up the sweep\n"); exit(1); }
    for (i = 0; i < SWEEP_CASES; i++) { /* "<company>'s former CEO attended Oscars", the company varying */
        static const int rest[] = {338, 1966, 6123, 9141, 46485};
        src[i][0] = 1000 + i * 211 % 40000;
        memcpy(src[i] + 1, rest, sizeof rest);
        fprintf(f, "{\"id\": \"c%d\", \"source_ids\": [%d, 338, 1966, 6123, 9141, 46485], \"source_pos\": %d, "
                "\"target_ids\": [", i, src[i][0], ceo);
        for (k = 0; k < 14; k++) fprintf(f, k ? ", %d" : "%d", target[k]);
        fprintf(f, "], \"source_layers\": %d, \"target_layers\": \"same\"}\n", i % g->n_layer);
    }
    fclose(f);
    remove("build/bench-sweep-out.jsonl");
    snprintf(cmd, sizeof cmd, "build/patchscope sweep --model %s --jobs build/bench-sweep.jsonl --out "
             "build/bench-sweep-out.jsonl --threads 2", path);
    t0 = wall();
    if (system(cmd) != 0) { fprintf(stderr, "bench: %s failed\n", cmd); exit(1); }
    sweep_s = wall() - t0;
    t0 = wall();
    for (i = 0; i < 20; i++) {
        char *p = cmd + snprintf(cmd, sizeof cmd, "build/patchscope grid --model %s --threads 2 --json --source-pos %d "
                                 "--source-ids %d,338,1966,6123,9141,46485 --target-ids ", path, ceo, src[i][0]);
        for (k = 0; k < 14; k++) p += sprintf(p, k ? ",%d" : "%d", target[k]);
        sprintf(p, " --source-layers %d --target-layers %d > /dev/null", i % g->n_layer, i % g->n_layer);
        if (system(cmd) != 0) { fprintf(stderr, "bench: %s failed\n", cmd); exit(1); }
    }
    *loop_s = (wall() - t0) / 20;
    /* the cells' pass alone, in process */
    ps_pool_create(&pool, 2);
    ps_ctx_create(&c, m, pool, NULL);
    for (i = 0; i < SWEEP_CASES; i++) {
        int l = i % g->n_layer;
        run_or_die(c, ps_source_run(c, src[i], 6, PS_RESID_POST, &ceo, 1, &sources[i]));
        specs[i].src = &sources[i];
        specs[i].src_pos = ceo;
        specs[i].src_first = specs[i].src_last = specs[i].tgt_first = specs[i].tgt_last = l;
        specs[i].diagonal = 1;
        specs[i].target = target;
        specs[i].n_target = 14;
        specs[i].tgt_pos = -1;
        flops += 2 * block_macs(g) * (g->n_layer - l - 1) + 2.0 * g->n_embd * g->n_vocab; /* from block l + 1 on */
    }
    for (k = 0; k <= reps; k++) {
        double t = wall();
        run_or_die(c, ps_grid_run_many(c, specs, SWEEP_CASES, grids));
        if (k > 0 && wall() - t < best) best = wall() - t;
        for (i = 0; i < SWEEP_CASES; i++) ps_grid_free(&grids[i]);
    }
    *frac = flops / best * 1e-9 / peak2;
    for (i = 0; i < SWEEP_CASES; i++) ps_source_free(&sources[i]);
    free(sources), free(specs), free(grids);
    ps_ctx_free(c);
    ps_pool_free(pool);
    remove("build/bench-sweep.jsonl");
    remove("build/bench-sweep-out.jsonl");
    return SWEEP_CASES / sweep_s;
}

/* largest |logit(bf16 weights) - logit(f32 weights)| over T positions, and max |logit| */
static double bf16_logit_error(const ps_model *f32, const ps_model *bf16, int T, double *scale) {
    ps_ctx *a, *b;
    int *ids = (int *)malloc(sizeof(int) * (size_t)T), i;
    size_t n = (size_t)T * (size_t)ps_model_config(f32)->n_vocab, k;
    double worst = 0;
    for (i = 0; i < T; i++) ids[i] = (i * 7919 + 13) % ps_model_config(f32)->n_vocab;
    ps_ctx_create(&a, f32, NULL, NULL);
    ps_ctx_create(&b, bf16, NULL, NULL);
    run_or_die(a, ps_forward(a, ids, T, PS_ALL_LOGITS));
    run_or_die(b, ps_forward(b, ids, T, PS_ALL_LOGITS));
    *scale = 0;
    for (k = 0; k < n; k++) {
        double d = fabs((double)ps_logits(a, 0)[k] - ps_logits(b, 0)[k]);
        if (d > worst) worst = d;
        if (fabs(ps_logits(a, 0)[k]) > *scale) *scale = fabs(ps_logits(a, 0)[k]);
    }
    ps_ctx_free(a);
    ps_ctx_free(b);
    free(ids);
    return worst;
}

/* peak resident size (MB) of loading a gpt2-small-shaped F32 file (written to path, kept
   for the sweep) and running 8 tokens; measured first, before the process holds anything else */
static double rss_run(const char *path, double *file_mb) {
    ps_model *m;
    ps_ctx *c;
    ps_error e;
    struct rusage ru;
    int ids[8] = {464, 3139, 286, 4486, 318, 1, 2, 3};
    *file_mb = (double)write_model_file(&gpt2_small, path) / (1 << 20);
    if (ps_model_load(&m, path, NULL, &e)) { fprintf(stderr, "bench: %s\n", e.msg); exit(1); }
    ps_ctx_create(&c, m, NULL, NULL);
    run_or_die(c, ps_forward(c, ids, 8, 0));
    getrusage(RUSAGE_SELF, &ru);
    ps_ctx_free(c);
    ps_model_free(m);
    return (double)ru.ru_maxrss / 1024; /* KB on Linux */
}

/* resident size now, GB (Linux: /proc/self/statm; 0 elsewhere) */
static double rss_now_gb(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, resident = 0;
    if (f) {
        if (fscanf(f, "%lu %lu", &size, &resident) != 2) resident = 0;
        fclose(f);
    }
    return (double)resident * 4096 / 1e9;
}

/* --memory-7b DIR: a Llama-2-7B-shaped BF16 checkpoint (32 layers, width 4096, MLP 11008,
   vocabulary 32000: 13.5 GB) written into DIR unless it is there, then loaded from the file
   as a user would (mapped) and run: the resident size after loading, the peak, the time to
   load, an 8-token prompt pass and greedy decoding. One JSON line. */
static const lshape llama7b = {32, 4096, 32, 32, 11008, 32000, 4096};

static int memory_7b(const char *dir, int threads) {
    char path[4096];
    ps_model *m;
    ps_ctx *c;
    ps_pool *pool = NULL;
    ps_error e;
    struct rusage ru;
    struct stat st;
    int ids[8] = {1, 415, 5565, 302, 4843, 349, 28705, 5}, out[4];
    double t0, load_s, rss_load, prompt_s, decode_ms;
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (stat(path, &st) != 0) {
        tensor *t = (tensor *)malloc(sizeof(tensor) * (size_t)(9 * llama7b.L + 4));
        FILE *f;
        fprintf(stderr, "bench: writing %s (13.5 GB)\n", path);
        write_tensors(t, llama_tensors(&llama7b, t), 1, path);
        snprintf(path, sizeof path, "%s/config.json", dir);
        if (!(f = fopen(path, "w"))) { fprintf(stderr, "bench: cannot write %s\n", path); return 1; }
        fprintf(f, "{\"model_type\": \"llama\", \"num_hidden_layers\": %d, \"hidden_size\": %d, \"num_attention_heads\": %d, "
                "\"num_key_value_heads\": %d, \"intermediate_size\": %d, \"vocab_size\": %d, "
                "\"max_position_embeddings\": %d, \"rms_norm_eps\": 1e-05, \"torch_dtype\": \"bfloat16\"}\n", llama7b.L,
                llama7b.C, llama7b.H, llama7b.KV, llama7b.F, llama7b.V, llama7b.n_ctx);
        fclose(f);
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        stat(path, &st);
    }
    t0 = wall();
    if (ps_model_load(&m, dir, NULL, &e)) { fprintf(stderr, "bench: %s\n", e.msg); return 1; }
    load_s = wall() - t0;
    rss_load = rss_now_gb();
    if (threads > 1 && ps_pool_create(&pool, threads)) { fprintf(stderr, "bench: no thread pool\n"); return 1; }
    ps_ctx_create(&c, m, pool, NULL);
    t0 = wall();
    run_or_die(c, ps_forward(c, ids, 8, 0));
    prompt_s = wall() - t0;
    ps_ctx_reset(c);
    t0 = wall();
    run_or_die(c, ps_generate(c, ids, 8, 4, out));
    decode_ms = 1000 * (wall() - t0 - prompt_s) / 3; /* the prompt pass and the first token, then 3 more */
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"file_gb\": %.2f, \"threads\": %d, \"load_s\": %.1f, \"rss_after_load_gb\": %.2f, \"rss_after_run_gb\": %.2f, "
           "\"peak_rss_gb\": %.2f, \"prompt_8_s\": %.2f, \"decode_ms_per_token\": %.0f}\n", (double)st.st_size / 1e9, threads,
           load_s, rss_load, rss_now_gb(), (double)ru.ru_maxrss * 1024 / 1e9, prompt_s, decode_ms);
    ps_ctx_free(c);
    ps_pool_free(pool);
    ps_model_free(m);
    return 0;
}

typedef struct fwd_row { const char *model; int T, threads; double ms, gflops, cpu_ms; } fwd_row;
typedef struct dec_row { const char *dtype; int threads; double ms, bound_ms, cpu_ms; } dec_row;

int main(int argc, char **argv) {
    int json = 0, i, j, n_fwd = 0;
    const int Ts[3] = {8, 64, 256};
    unsigned char *bytes;
    size_t size;
    ps_model *m, *m16, *medium;
    fwd_row fwd[12];
    dec_row dec[6];
    double peak[3], peak_cpu[3], bw[3], rss_mb, file_mb, grid_ms, grid_cpu_ms, naive_ms, err16, scale;
    double sweep_cases_s, loop_s, sweep_frac;
    const char *file = "build/bench-gpt2.safetensors";
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) json = 1;
        else if (strcmp(argv[i], "--quick") == 0) reps = 1;
        else if (strcmp(argv[i], "--forward") == 0 && i + 2 < argc && i + 4 >= argc) {
            int T = atoi(argv[i + 1]), threads = atoi(argv[i + 2]);
            double cpu;
            reps = i + 3 < argc ? atoi(argv[i + 3]) : 50;
            if (T < 1 || T > gpt2_small.n_ctx || threads < 1 || reps < 1) break;
            bytes = model_bytes(&gpt2_small, &size);
            m = load_bytes(&gpt2_small, bytes, size, PS_WEIGHTS_AS_STORED);
            printf("forward T=%d, %d threads: best %.2f ms of %d\n", T, threads, time_forward(m, T, threads, &cpu),
                   reps);
            ps_model_free(m);
            free(bytes);
            return 0;
        } else if (strcmp(argv[i], "--memory-7b") == 0 && i + 1 < argc && i + 3 >= argc)
            return memory_7b(argv[i + 1], i + 2 < argc ? atoi(argv[i + 2]) : 2);
        else break;
    }
    if (i < argc) {
        fprintf(stderr, "usage: %s [--json] [--quick] | --forward T THREADS [REPS] | --memory-7b DIR [THREADS]\n", argv[0]);
        return 2;
    }
    rss_mb = rss_run(file, &file_mb); /* first, while the process holds nothing else */
    bench_tokenizer();
    for (j = 1; j <= 2; j++) {
        peak[j] = peak_gflops(1536, j, &peak_cpu[j]);
        bw[j] = copy_bandwidth(j);
    }
    bytes = model_bytes(&gpt2_small, &size);
    m = load_bytes(&gpt2_small, bytes, size, PS_WEIGHTS_AS_STORED);
    m16 = load_bytes(&gpt2_small, bytes, size, PS_WEIGHTS_BF16);
    for (i = 0; i < 3; i++)
        for (j = 1; j <= 2; j++) {
            fwd_row *f = &fwd[n_fwd++];
            f->model = "gpt2";
            f->T = Ts[i];
            f->threads = j;
            f->ms = time_forward(m, Ts[i], j, &f->cpu_ms);
            f->gflops = forward_flops(m, Ts[i]) / f->ms * 1e-6;
        }
    for (j = 0; j < 4; j++) {
        const ps_model *dm = j < 2 ? m : m16;
        dec[j].dtype = j < 2 ? "f32" : "bf16";
        dec[j].threads = j % 2 + 1;
        dec[j].ms = time_decode(dm, 128, dec[j].threads, &dec[j].cpu_ms);
        dec[j].bound_ms = decode_bytes(dm, 128) / (bw[dec[j].threads] * 1e9) * 1e3;
    }
    err16 = bf16_logit_error(m, m16, 8, &scale);
    grid_ms = time_grid(m, 2, &naive_ms, &grid_cpu_ms);
    sweep_cases_s = time_sweep(m, file, peak[2], &loop_s, &sweep_frac);
    remove(file);
    ps_model_free(m16);
    ps_model_free(m);
    free(bytes);
    bytes = model_bytes(&gpt2_medium, &size);
    medium = load_bytes(&gpt2_medium, bytes, size, PS_WEIGHTS_AS_STORED);
    fwd[n_fwd].model = "gpt2-medium";
    fwd[n_fwd].T = 64;
    fwd[n_fwd].threads = 2;
    fwd[n_fwd].ms = time_forward(medium, 64, 2, &fwd[n_fwd].cpu_ms);
    fwd[n_fwd].gflops = forward_flops(medium, 64) / fwd[n_fwd].ms * 1e-6;
    n_fwd++;
    ps_model_free(medium);
    free(bytes);
    medium = llama_model(&tinyllama, &bytes); /* TinyLlama-1.1B's shapes, BF16 */
    for (i = 1; i < 3; i++) {
        fwd[n_fwd].model = "tinyllama-bf16";
        fwd[n_fwd].T = Ts[i];
        fwd[n_fwd].threads = 2;
        fwd[n_fwd].ms = time_pass(medium, 0, Ts[i], PS_ALL_LOGITS, 2, reps < 2 ? reps : 2, &fwd[n_fwd].cpu_ms);
        fwd[n_fwd].gflops = forward_flops(medium, Ts[i]) / fwd[n_fwd].ms * 1e-6;
        n_fwd++;
    }
    for (j = 4; j < 6; j++) {
        dec[j].dtype = "tinyllama-bf16";
        dec[j].threads = j - 3;
        dec[j].ms = time_pass(medium, 128, 1, 0, dec[j].threads, reps, &dec[j].cpu_ms);
        dec[j].bound_ms = decode_bytes(medium, 128) / (bw[dec[j].threads] * 1e9) * 1e3;
    }
    ps_model_free(medium);
    free(bytes);

    if (json) {
        printf("{\"forward\": [");
        for (i = 0; i < n_fwd; i++)
            printf("%s{\"model\": \"%s\", \"T\": %d, \"threads\": %d, \"ms\": %.2f, \"gflops\": %.1f, "
                   "\"peak_fraction\": %.3f, \"cpu_ms\": %.2f}",
                   i ? ", " : "", fwd[i].model, fwd[i].T, fwd[i].threads, fwd[i].ms, fwd[i].gflops,
                   fwd[i].gflops / peak[fwd[i].threads], fwd[i].cpu_ms);
        printf("], \"decode\": [");
        for (i = 0; i < 6; i++)
            printf("%s{\"dtype\": \"%s\", \"threads\": %d, \"ms_per_token\": %.2f, \"bound_ms\": %.2f, \"cpu_ms\": %.2f}",
                   i ? ", " : "", dec[i].dtype, dec[i].threads, dec[i].ms, dec[i].bound_ms, dec[i].cpu_ms);
        printf("], \"grid\": {\"efficient_ms\": %.1f, \"naive_ms\": %.1f, \"cpu_ms\": %.1f}", grid_ms, naive_ms,
               grid_cpu_ms);
        printf(", \"sweep\": {\"cases\": %d, \"cases_per_s\": %.2f, \"loop_cases_per_s\": %.2f, \"speedup\": %.1f, "
               "\"cells_peak_fraction\": %.3f}", SWEEP_CASES, sweep_cases_s, 1 / loop_s, sweep_cases_s * loop_s, sweep_frac);
        for (i = 0; i < n_rows; i++) printf(", \"%s\": %.6g", rows[i].key, rows[i].value);
        printf(", \"peak_gflops\": {\"1\": %.1f, \"2\": %.1f}", peak[1], peak[2]);
        printf(", \"peak_gflops_per_cpu_s\": {\"1\": %.1f, \"2\": %.1f}", peak_cpu[1], peak_cpu[2]);
        printf(", \"copy_gb_s\": {\"1\": %.1f, \"2\": %.1f}", bw[1], bw[2]);
        printf(", \"bf16_logits\": {\"max_abs_diff\": %.4g, \"max_abs_logit\": %.4g}", err16, scale);
        printf(", \"rss\": {\"file_mb\": %.1f, \"peak_mb\": %.1f}}\n", file_mb, rss_mb);
        return 0;
    }
    printf("peak (own matmul kernel, 1536^3): %.1f GFLOP/s on 1 thread, %.1f on 2 (%.1f and %.1f per CPU-second)\n",
           peak[1], peak[2], peak_cpu[1], peak_cpu[2]);
    printf("copy bandwidth: %.1f GB/s on 1 thread, %.1f on 2\n\n", bw[1], bw[2]);
    printf("%-14s %5s %7s %10s %8s %6s %10s\n", "forward", "T", "threads", "ms", "GFLOP/s", "peak", "CPU ms");
    for (i = 0; i < n_fwd; i++)
        printf("%-14s %5d %7d %10.2f %8.1f %5.0f%% %10.2f\n", fwd[i].model, fwd[i].T, fwd[i].threads, fwd[i].ms,
               fwd[i].gflops, 100 * fwd[i].gflops / peak[fwd[i].threads], fwd[i].cpu_ms);
    printf("\n%-14s %7s %12s %10s %6s %10s\n", "decode@128", "threads", "ms/token", "bound ms", "ratio", "CPU ms");
    for (i = 0; i < 6; i++)
        printf("%-14s %7d %12.2f %10.2f %6.2f %10.2f\n", dec[i].dtype, dec[i].threads, dec[i].ms, dec[i].bound_ms,
               dec[i].ms / dec[i].bound_ms, dec[i].cpu_ms);
    printf("\ngrid 12x12 (2 threads): efficient %.1f ms (CPU %.1f ms), naive %.1f ms (%.1fx)\n", grid_ms, grid_cpu_ms,
           naive_ms, naive_ms / grid_ms);
    printf("sweep of %d one-cell CEO cases (2 threads): %.1f cases/s; a grid process per case %.2f cases/s (%.1fx); "
           "the cells' pass at %.0f%% of the peak\n", SWEEP_CASES, sweep_cases_s, 1 / loop_s, sweep_cases_s * loop_s,
           100 * sweep_frac);
    printf("bf16 weights: logits max |diff| %.3g (largest |logit| %.3g)\n", err16, scale);
    printf("peak RSS, gpt2-small F32 from a %.0f MB file: %.0f MB (%+.1f%%)\n\n", file_mb, rss_mb,
           100 * (rss_mb / file_mb - 1));
    printf("%-36s %14s  %s\n", "benchmark", "value", "unit");
    for (i = 0; i < n_rows; i++) printf("%-36s %14.6g  %s\n", rows[i].label, rows[i].value, rows[i].unit);
    return 0;
}
