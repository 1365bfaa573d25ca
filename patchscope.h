/* patchscope.h - inspect GPT-2 hidden states with Patchscopes, in one C header.

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
     PATCHSCOPE_STATIC  make every public function static to this file

   USAGE
     ps_model *m; ps_ctx *c; ps_error e;
     if (ps_model_load(&m, "weights/gpt2", NULL, &e)) { puts(e.msg); return 1; }
     ps_ctx_create(&c, m, NULL, &e);               // NULL pool: single thread
     int ids[] = {464, 3139, 286, 4486, 318};      // "The capital of Poland is"
     ps_forward(c, ids, 5, 0);                     // logits of the last position
     printf("next id %d\n", ps_argmax(ps_logits(c, 0), ps_model_config(m)->n_vocab));
     ps_ctx_free(c); ps_model_free(m);

   CONVENTIONS
     - Layers are 0-based. h_l is the output of block l (the residual stream after block
       l, hook point PS_RESID_POST), BEFORE the final LayerNorm, for every l including
       the last. (Hugging Face's last hidden_states entry has ln_f applied; we do not.)
     - No BOS token is ever prepended: position 0 is the first token you pass.
     - Hook points are named as in TransformerLens (resid_pre, attn_out, mlp_out, ...).

   ERRORS
     Every fallible function returns a ps_status (PS_OK == 0). Loaders fill a ps_error
     you pass in; a context keeps the message of its last failure (ps_ctx_error). The
     library never prints, exits or aborts on bad input.

   THREAD SAFETY
     ps_model and ps_tokenizer are read-only after loading: share them freely. A ps_ctx
     belongs to one thread at a time. A ps_pool may be shared; its jobs run one at a time.

   CONTENTS (implementation, in the order data flows)
     1. Platform        allocation, errors, files and mapping, thread pool
     2. JSON            a small cursor parser for config.json, safetensors headers, vocab
     3. safetensors     header parsing and validation
     4. Model           hyperparameters, tensor binding, loading
     5. Kernels         matmul, layernorm, gelu, attention, softmax
     6. Forward pass    contexts, KV cache, sequences, hooks, capture, generation
*/
#ifndef PATCHSCOPE_H
#define PATCHSCOPE_H

#include <stddef.h>

#ifdef PATCHSCOPE_STATIC
#define PSDEF static
#else
#define PSDEF extern
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
    float ln_eps;
} ps_config;

typedef enum ps_dtype { PS_F32, PS_F16, PS_BF16 } ps_dtype;

typedef struct ps_load_opts {
    int convert_f32;  /* 1: convert F16/BF16 matrices to F32 at load (2x memory, faster) */
    int no_mmap;      /* 1: read the file into memory even where it could be mapped */
} ps_load_opts;

typedef struct ps_model ps_model;

/* path: a folder with model.safetensors (+ optional config.json) or one .safetensors */
PSDEF ps_status ps_model_load(ps_model **out, const char *path, const ps_load_opts *opts,
                              ps_error *err);
/* data must outlive the model (F32 tensors are used in place); config may be NULL */
PSDEF ps_status ps_model_load_memory(ps_model **out, const void *data, size_t size,
                                     const char *config_json, size_t config_len,
                                     const ps_load_opts *opts, ps_error *err);
PSDEF void ps_model_free(ps_model *m);
PSDEF const ps_config *ps_model_config(const ps_model *m);
PSDEF ps_dtype ps_model_dtype(const ps_model *m);  /* storage type of the matrices */
/* token embedding row of id (n_embd floats, converted to F32) */
PSDEF ps_status ps_model_embedding(const ps_model *m, int id, float *out);

/* --- hooks ------------------------------------------------------------------------ */
typedef enum ps_point {
    PS_EMBED,        /* token + position embedding               [n_embd]          */
    PS_RESID_PRE,    /* input of block l                         [n_embd]          */
    PS_Q, PS_K, PS_V,/* per-head projections, head h at columns [h*d_head, ...)  */
    PS_PATTERN,      /* softmax attention, [n_head][n_keys] per row               */
    PS_Z,            /* per-head attention output before c_proj  [n_embd]          */
    PS_ATTN_OUT,     /* attention output after c_proj            [n_embd]          */
    PS_RESID_MID,    /* resid_pre + attn_out                     [n_embd]          */
    PS_MLP_PRE,      /* MLP neurons before GELU                  [4*n_embd]        */
    PS_MLP_POST,     /* MLP neurons after GELU                   [4*n_embd]        */
    PS_MLP_OUT,      /* MLP output after c_proj                  [n_embd]          */
    PS_RESID_POST,   /* output of block l = h_l                  [n_embd]          */
    PS_LN_FINAL,     /* ln_f of the last block's output          [n_embd]          */
    PS_LOGITS,       /* unembedding                              [n_vocab]         */
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
    int n_head, d_head; /* q, k, v, z, pattern                                    */
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
#define PS_NO_LOGITS  2  /* stop after the last block (no ln_f, no unembedding)          */

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
/* floats one row of a point takes in a context whose longest sequence has n_keys tokens */
PSDEF int ps_point_width(const ps_model *m, ps_point p, int n_keys);

/* --- small helpers ---------------------------------------------------------------- */
PSDEF int ps_argmax(const float *x, int n);                 /* lowest index on ties */
/* probabilities = softmax(logits), computed in double for readouts */
PSDEF void ps_softmax(const float *logits, int n, float *probs);

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
} ps__file;

static void ps__file_close(ps__file *f) {
#ifdef PS__MMAP
    if (f->mapped) munmap(f->data, f->size);
    else
#endif
        PS_FREE(f->data);
    f->data = NULL;
    f->size = 0;
    f->mapped = 0;
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
                close(fd);
                f->data = (unsigned char *)p;
                f->size = (size_t)st.st_size;
                f->mapped = 1;
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

/* path + "/" + name into out (cap bytes); 0 when it does not fit */
static int ps__join(char *out, size_t cap, const char *dir, const char *name) {
    size_t n = strlen(dir);
    int slash = n > 0 && (dir[n - 1] == '/' || dir[n - 1] == '\\');
    int w = snprintf(out, cap, "%s%s%s", dir, slash ? "" : "/", name);
    return w > 0 && (size_t)w < cap;
}

/* The thread pool. A job is n_tasks independent tasks; thread t of n runs the tasks
   [t*n_tasks/n, (t+1)*n_tasks/n). Every output element belongs to exactly one task and
   each task computes it the same way, so results do not depend on the thread count. */
typedef void (*ps__task_fn)(void *arg, int begin, int end, int thread);

struct ps_pool {
    int n;
#ifndef PS_NO_THREADS
    pthread_t *threads;
    pthread_mutex_t job_lock;       /* one job at a time, whoever calls */
    pthread_mutex_t lock;
    pthread_cond_t start, done;
    unsigned long generation;
    int pending, quit;
    ps__task_fn fn;
    void *arg;
    int n_tasks;
#endif
};

#ifndef PS_NO_THREADS
typedef struct ps__worker { ps_pool *pool; int index; } ps__worker;

static void ps__run_share(ps_pool *p, int t) {
    int begin = (int)((long long)p->n_tasks * t / p->n);
    int end = (int)((long long)p->n_tasks * (t + 1) / p->n);
    if (begin < end) p->fn(p->arg, begin, end, t);
}

static void *ps__worker_main(void *arg) {
    ps__worker *w = (ps__worker *)arg;
    ps_pool *p = w->pool;
    int index = w->index;
    unsigned long seen = 0;
    PS_FREE(w);
    for (;;) {
        pthread_mutex_lock(&p->lock);
        while (p->generation == seen && !p->quit) pthread_cond_wait(&p->start, &p->lock);
        if (p->quit) { pthread_mutex_unlock(&p->lock); return NULL; }
        seen = p->generation;
        pthread_mutex_unlock(&p->lock);
        ps__run_share(p, index);
        pthread_mutex_lock(&p->lock);
        if (--p->pending == 0) pthread_cond_signal(&p->done);
        pthread_mutex_unlock(&p->lock);
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
        p->pending = p->n - 1;
        p->generation++;
        pthread_cond_broadcast(&p->start);
        pthread_mutex_unlock(&p->lock);
        ps__run_share(p, 0);
        pthread_mutex_lock(&p->lock);
        while (p->pending > 0) pthread_cond_wait(&p->done, &p->lock);
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

/* after the top-level value: only white space may follow */
static int ps__json_done(ps__json *j) {
    return ps__json_peek(j) ? ps__json_fail(j, "unexpected text after the value") : 0;
}

/* ---------------------------------------------------------------------------------- */
/* 3. safetensors: 8-byte little-endian header length, a JSON header naming each        */
/*    tensor's dtype, shape and byte range, then the raw little-endian data.            */
/* ---------------------------------------------------------------------------------- */

#define PS__MAX_HEADER (100u << 20) /* real headers are a few KB; this bounds the parse */
#define PS__MAX_DIMS 8

enum { PS__ST_F32, PS__ST_F16, PS__ST_BF16, PS__ST_OTHER };

typedef struct ps__st_entry {
    char name[96];   /* longer names cannot be GPT-2 tensors; they are checked, not kept */
    int dtype;       /* PS__ST_*; PS__ST_OTHER for dtypes we never compute with */
    int elem_size;   /* bytes per element, 0 when the dtype is unknown */
    int ndim;
    long long shape[PS__MAX_DIMS];
    size_t begin, end; /* byte range inside the data section */
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
    char key[32], dtype[16];
    int r, have = 0;
    long long numel = 1;
    memset(&e, 0, sizeof e);
    if (name_len < sizeof e.name) memcpy(e.name, name, name_len + 1);
    e.dtype = -1;
    if (ps__json_object(j)) return ps__st_json_error(j, err);
    while ((r = ps__json_key(j, key, sizeof key, NULL)) == 1) {
        if (strcmp(key, "dtype") == 0) {
            if (ps__json_string(j, dtype, sizeof dtype, NULL)) return ps__st_json_error(j, err);
            e.dtype = ps__st_dtype(dtype, &e.elem_size);
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
                            name, numel, dtype, numel * e.elem_size, (unsigned long)(e.end - e.begin));
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
        if (st->entries[i].name[0] && strcmp(st->entries[i - 1].name, st->entries[i].name) == 0) {
            s = ps__fail(err, PS_ERR_FORMAT, "tensor %s appears twice", st->entries[i].name);
            ps__st_free(st);
            return s;
        }
    return PS_OK;
}

static const ps__st_entry *ps__st_find(const ps__st *st, const char *name) {
    ps__st_entry key;
    if (strlen(name) >= sizeof key.name) return NULL;
    strcpy(key.name, name);
    return (const ps__st_entry *)bsearch(&key, st->entries, (size_t)st->n, sizeof key, ps__st_by_name);
}

/* ---------------------------------------------------------------------------------- */
/* 4. Model: hyperparameters, tensor binding, loading                                  */
/* ---------------------------------------------------------------------------------- */

/* Limits that keep a hostile config from asking for absurd allocations; every real
   GPT-2 (small to xl) is far inside them. */
#define PS__MAX_LAYERS 512
#define PS__MAX_EMBD 65536
#define PS__MAX_HEADS 1024
#define PS__MAX_CTX (1 << 20)
#define PS__MAX_VOCAB (1 << 24)

/* A weight matrix as stored: row-major [rows][cols], F32 or 16-bit. */
typedef struct ps__mat {
    const void *data;
    ps_dtype dtype;
    int rows, cols;
} ps__mat;

typedef struct ps__block {
    const float *ln1_w, *ln1_b, *attn_b, *proj_b, *ln2_w, *ln2_b, *fc_b, *fcproj_b;
    ps__mat attn_w;   /* c_attn   [C][3C] (Conv1D: in x out) */
    ps__mat proj_w;   /* c_proj   [C][C]  */
    ps__mat fc_w;     /* c_fc     [C][4C] */
    ps__mat fcproj_w; /* mlp proj [4C][C] */
} ps__block;

struct ps_model {
    ps_config cfg;
    ps__mat wte;            /* [n_vocab][n_embd]: embedding rows, and the tied unembedding */
    const float *wpe;       /* [n_ctx][n_embd] */
    const float *lnf_w, *lnf_b;
    ps__block *blocks;
    ps__file file;          /* the checkpoint, when we opened it */
    void **owned;           /* buffers converted at load */
    int n_owned;
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

/* n elements of a safetensors entry as F32, read byte by byte (any alignment, any host) */
static void ps__st_to_f32(const ps__st_entry *e, const unsigned char *p, float *out, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) {
        if (e->dtype == PS__ST_F32) {
            uint32_t u = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 |
                         (uint32_t)p[4 * i + 2] << 16 | (uint32_t)p[4 * i + 3] << 24;
            memcpy(&out[i], &u, 4);
        } else {
            uint16_t h = (uint16_t)(p[2 * i] | p[2 * i + 1] << 8);
            out[i] = e->dtype == PS__ST_F16 ? ps__f16_to_f32(h) : ps__bf16_to_f32(h);
        }
    }
}

/* Hyperparameters as found; 0 means "not given". */
typedef struct ps__hparams {
    double n_layer, n_head, n_embd, n_ctx, n_vocab, eps;
} ps__hparams;

static ps_status ps__config_json(const char *text, size_t len, ps__hparams *hp, ps_error *err) {
    ps__json j;
    char key[64], val[32];
    int r;
    double positions = 0, ctx = 0;
    ps__json_init(&j, text, len);
    if (ps__json_object(&j)) return ps__fail(err, PS_ERR_FORMAT, "config.json: %s", j.err);
    while ((r = ps__json_key(&j, key, sizeof key, NULL)) == 1) {
        double *slot = NULL;
        if (strcmp(key, "n_layer") == 0) slot = &hp->n_layer;
        else if (strcmp(key, "n_head") == 0) slot = &hp->n_head;
        else if (strcmp(key, "n_embd") == 0) slot = &hp->n_embd;
        else if (strcmp(key, "n_positions") == 0) slot = &positions;
        else if (strcmp(key, "n_ctx") == 0) slot = &ctx;
        else if (strcmp(key, "vocab_size") == 0) slot = &hp->n_vocab;
        else if (strcmp(key, "layer_norm_epsilon") == 0) slot = &hp->eps;
        if (slot) {
            if (ps__json_number(&j, slot, NULL)) break;
            if (!(*slot > 0) || *slot > 1e9)
                return ps__fail(err, PS_ERR_CONFIG, "config.json: %s must be positive", key);
        } else if (strcmp(key, "activation_function") == 0) {
            /* other activations would silently change every number */
            if (ps__json_string(&j, val, sizeof val, NULL)) break;
            if (strcmp(val, "gelu_new") != 0 && strcmp(val, "gelu_pytorch_tanh") != 0)
                return ps__fail(err, PS_ERR_CONFIG, "config.json: activation_function \"%s\" is not supported (only gelu_new)", val);
        } else if (strcmp(key, "scale_attn_by_inverse_layer_idx") == 0 && ps__json_peek(&j) == 't') {
            return ps__fail(err, PS_ERR_CONFIG, "config.json: scale_attn_by_inverse_layer_idx is not supported");
        } else if (strcmp(key, "scale_attn_weights") == 0 && ps__json_peek(&j) == 'f') {
            return ps__fail(err, PS_ERR_CONFIG, "config.json: scale_attn_weights=false is not supported");
        } else if (ps__json_skip(&j)) {
            break;
        }
    }
    if (r != 0 || ps__json_done(&j)) return ps__fail(err, PS_ERR_FORMAT, "config.json: %s", j.err);
    hp->n_ctx = positions ? positions : ctx;
    return PS_OK;
}

/* Tensor names, with the "transformer." prefix when the file uses it. */
static const ps__st_entry *ps__tensor(const ps__st *st, const char *prefix, const char *name,
                                      ps_error *err) {
    char full[96];
    const ps__st_entry *e;
    snprintf(full, sizeof full, "%s%s", prefix, name);
    e = ps__st_find(st, full);
    if (!e) ps__fail(err, PS_ERR_MISSING, "tensor %s is missing", full);
    return e;
}

static ps_status ps__check_shape(const ps__st_entry *e, int rows, int cols, ps_error *err) {
    int ok = e->dtype != PS__ST_OTHER;
    if (!ok)
        return ps__fail(err, PS_ERR_SHAPE, "tensor %s has a dtype patchscope.h does not read (F32, F16, BF16 only)", e->name);
    if (cols == 0) ok = e->ndim == 1 && e->shape[0] == rows;
    else ok = e->ndim == 2 && e->shape[0] == rows && e->shape[1] == cols;
    if (ok) return PS_OK;
    if (cols == 0)
        return ps__fail(err, PS_ERR_SHAPE, "tensor %s has %d dims (first %lld), expected [%d]", e->name,
                        e->ndim, e->ndim ? e->shape[0] : 0, rows);
    return ps__fail(err, PS_ERR_SHAPE, "tensor %s has shape [%lld, %lld] (%d dims), expected [%d, %d]",
                    e->name, e->ndim > 0 ? e->shape[0] : 0, e->ndim > 1 ? e->shape[1] : 0, e->ndim, rows, cols);
}

static void *ps__own(ps_model *m, size_t bytes) {
    void *p, **list;
    list = (void **)PS_REALLOC(m->owned, (size_t)(m->n_owned + 1) * sizeof *list);
    if (!list) return NULL;
    m->owned = list;
    p = ps__alloc(bytes);
    if (p) m->owned[m->n_owned++] = p;
    return p;
}

/* Vectors (LayerNorm, biases) and wpe are always converted to F32: they are small. */
static ps_status ps__bind_vec(ps_model *m, const ps__st *st, const char *prefix, const char *name,
                              int rows, int cols, const float **out, ps_error *err) {
    const ps__st_entry *e = ps__tensor(st, prefix, name, err);
    size_t n = (size_t)rows * (size_t)(cols ? cols : 1);
    float *buf;
    ps_status s;
    if (!e) return PS_ERR_MISSING;
    if ((s = ps__check_shape(e, rows, cols, err))) return s;
    if (e->dtype == PS__ST_F32 && ps__little_endian() && ((uintptr_t)(st->data + e->begin) & 3) == 0) {
        *out = (const float *)(const void *)(st->data + e->begin);
        return PS_OK;
    }
    if (!(buf = (float *)ps__own(m, n * sizeof(float))))
        return ps__fail(err, PS_ERR_NOMEM, "out of memory converting %s", e->name);
    ps__st_to_f32(e, st->data + e->begin, buf, n);
    *out = buf;
    return PS_OK;
}

/* Matrices stay as stored (mapped, no copy) unless asked to convert or misaligned. */
static ps_status ps__bind_mat(ps_model *m, const ps__st *st, const char *prefix, const char *name,
                              int rows, int cols, int to_f32, ps__mat *out, ps_error *err) {
    const ps__st_entry *e = ps__tensor(st, prefix, name, err);
    const unsigned char *p;
    size_t n = (size_t)rows * (size_t)cols, i;
    ps_status s;
    if (!e) return PS_ERR_MISSING;
    if ((s = ps__check_shape(e, rows, cols, err))) return s;
    p = st->data + e->begin;
    out->rows = rows;
    out->cols = cols;
    out->dtype = e->dtype == PS__ST_F32 ? PS_F32 : e->dtype == PS__ST_F16 ? PS_F16 : PS_BF16;
    if (e->dtype == PS__ST_F32 || to_f32) {
        float *buf;
        if (e->dtype == PS__ST_F32 && ps__little_endian() && ((uintptr_t)p & 3) == 0) {
            out->data = p;
            return PS_OK;
        }
        if (!(buf = (float *)ps__own(m, n * sizeof(float))))
            return ps__fail(err, PS_ERR_NOMEM, "out of memory converting %s", e->name);
        ps__st_to_f32(e, p, buf, n);
        out->data = buf;
        out->dtype = PS_F32;
    } else if (ps__little_endian() && ((uintptr_t)p & 1) == 0) {
        out->data = p;
    } else {
        uint16_t *buf = (uint16_t *)ps__own(m, n * sizeof(uint16_t));
        if (!buf) return ps__fail(err, PS_ERR_NOMEM, "out of memory converting %s", e->name);
        for (i = 0; i < n; i++) buf[i] = (uint16_t)(p[2 * i] | p[2 * i + 1] << 8);
        out->data = buf;
    }
    return PS_OK;
}

static int ps__standard_heads(int n_embd) {
    switch (n_embd) {
    case 768: return 12;   /* gpt2 */
    case 1024: return 16;  /* gpt2-medium */
    case 1280: return 20;  /* gpt2-large */
    case 1600: return 25;  /* gpt2-xl */
    default: return 0;
    }
}

/* Resolve hyperparameters: config.json, else safetensors metadata, else the shapes. */
static ps_status ps__resolve_config(ps_config *cfg, const ps__hparams *hp, const ps__st *st,
                                    const char *prefix, ps_error *err) {
    const ps__st_entry *wte = ps__tensor(st, prefix, "wte.weight", err);
    const ps__st_entry *wpe = ps__tensor(st, prefix, "wpe.weight", err);
    double n_layer, n_head, eps;
    if (!wte || !wpe) return PS_ERR_MISSING;
    if (wte->ndim != 2 || wte->shape[0] < 1 || wte->shape[1] < 1 || wte->shape[0] > PS__MAX_VOCAB ||
        wte->shape[1] > PS__MAX_EMBD)
        return ps__fail(err, PS_ERR_SHAPE, "tensor %s must be [n_vocab <= %d, n_embd <= %d]", wte->name,
                        PS__MAX_VOCAB, PS__MAX_EMBD);
    if (wpe->ndim != 2 || wpe->shape[0] < 1 || wpe->shape[0] > PS__MAX_CTX)
        return ps__fail(err, PS_ERR_SHAPE, "tensor %s must be [n_ctx <= %d, n_embd]", wpe->name, PS__MAX_CTX);
    cfg->n_vocab = (int)wte->shape[0];
    cfg->n_embd = (int)wte->shape[1];
    cfg->n_ctx = (int)wpe->shape[0];
    if (hp->n_vocab && hp->n_vocab != cfg->n_vocab)
        return ps__fail(err, PS_ERR_SHAPE, "tensor %s has %d rows but config.json says vocab_size %g", wte->name, cfg->n_vocab, hp->n_vocab);
    if (hp->n_embd && hp->n_embd != cfg->n_embd)
        return ps__fail(err, PS_ERR_SHAPE, "tensor %s is %d wide but config.json says n_embd %g", wte->name, cfg->n_embd, hp->n_embd);
    if (hp->n_ctx && hp->n_ctx != cfg->n_ctx)
        return ps__fail(err, PS_ERR_SHAPE, "tensor %s has %d rows but config.json says n_positions %g", wpe->name, cfg->n_ctx, hp->n_ctx);
    n_layer = hp->n_layer ? hp->n_layer : st->meta_n_layer;
    if (!n_layer) { /* count the blocks present */
        char name[48];
        while (n_layer < PS__MAX_LAYERS) {
            snprintf(name, sizeof name, "%sh.%d.ln_1.weight", prefix, (int)n_layer);
            if (!ps__st_find(st, name)) break;
            n_layer++;
        }
    }
    n_head = hp->n_head ? hp->n_head : st->meta_n_head ? st->meta_n_head : ps__standard_heads(cfg->n_embd);
    eps = hp->eps ? hp->eps : st->meta_eps ? st->meta_eps : 1e-5;
    if (!n_head)
        return ps__fail(err, PS_ERR_CONFIG, "cannot tell the number of heads: no config.json, no n_head in the "
                        "safetensors metadata, and width %d is not a standard GPT-2 width", cfg->n_embd);
    if (n_layer < 1 || n_layer > PS__MAX_LAYERS || n_layer != floor(n_layer))
        return ps__fail(err, PS_ERR_CONFIG, "n_layer %g is outside 1..%d", n_layer, PS__MAX_LAYERS);
    if (n_head < 1 || n_head > PS__MAX_HEADS || n_head != floor(n_head) || cfg->n_embd % (int)n_head)
        return ps__fail(err, PS_ERR_CONFIG, "n_head %g does not divide n_embd %d", n_head, cfg->n_embd);
    if (!(eps > 0 && eps < 1)) return ps__fail(err, PS_ERR_CONFIG, "layer_norm_epsilon %g is outside (0, 1)", eps);
    {
        char name[48]; /* a config that forgets blocks would silently drop them */
        snprintf(name, sizeof name, "%sh.%d.ln_1.weight", prefix, (int)n_layer);
        if (ps__st_find(st, name))
            return ps__fail(err, PS_ERR_SHAPE, "the file has a block %s but n_layer is %g", name, n_layer);
    }
    cfg->n_layer = (int)n_layer;
    cfg->n_head = (int)n_head;
    cfg->ln_eps = (float)eps;
    return PS_OK;
}

static ps_status ps__bind(ps_model *m, const ps__st *st, const char *prefix, int to_f32, ps_error *err) {
    static const char *parts[12] = {"ln_1.weight", "ln_1.bias", "attn.c_attn.weight", "attn.c_attn.bias",
                                    "attn.c_proj.weight", "attn.c_proj.bias", "ln_2.weight", "ln_2.bias",
                                    "mlp.c_fc.weight", "mlp.c_fc.bias", "mlp.c_proj.weight", "mlp.c_proj.bias"};
    int C = m->cfg.n_embd, l, i;
    ps_status s;
    m->blocks = (ps__block *)ps__calloc((size_t)m->cfg.n_layer, sizeof *m->blocks);
    if (!m->blocks) return ps__fail(err, PS_ERR_NOMEM, "out of memory");
    if ((s = ps__bind_mat(m, st, prefix, "wte.weight", m->cfg.n_vocab, C, to_f32, &m->wte, err)) ||
        (s = ps__bind_vec(m, st, prefix, "wpe.weight", m->cfg.n_ctx, C, &m->wpe, err)) ||
        (s = ps__bind_vec(m, st, prefix, "ln_f.weight", C, 0, &m->lnf_w, err)) ||
        (s = ps__bind_vec(m, st, prefix, "ln_f.bias", C, 0, &m->lnf_b, err)))
        return s;
    for (l = 0; l < m->cfg.n_layer; l++) {
        ps__block *b = &m->blocks[l];
        char n[12][48];
        for (i = 0; i < 12; i++) snprintf(n[i], sizeof n[i], "h.%d.%s", l, parts[i]);
        if ((s = ps__bind_vec(m, st, prefix, n[0], C, 0, &b->ln1_w, err)) ||
            (s = ps__bind_vec(m, st, prefix, n[1], C, 0, &b->ln1_b, err)) ||
            (s = ps__bind_mat(m, st, prefix, n[2], C, 3 * C, to_f32, &b->attn_w, err)) ||
            (s = ps__bind_vec(m, st, prefix, n[3], 3 * C, 0, &b->attn_b, err)) ||
            (s = ps__bind_mat(m, st, prefix, n[4], C, C, to_f32, &b->proj_w, err)) ||
            (s = ps__bind_vec(m, st, prefix, n[5], C, 0, &b->proj_b, err)) ||
            (s = ps__bind_vec(m, st, prefix, n[6], C, 0, &b->ln2_w, err)) ||
            (s = ps__bind_vec(m, st, prefix, n[7], C, 0, &b->ln2_b, err)) ||
            (s = ps__bind_mat(m, st, prefix, n[8], C, 4 * C, to_f32, &b->fc_w, err)) ||
            (s = ps__bind_vec(m, st, prefix, n[9], 4 * C, 0, &b->fc_b, err)) ||
            (s = ps__bind_mat(m, st, prefix, n[10], 4 * C, C, to_f32, &b->fcproj_w, err)) ||
            (s = ps__bind_vec(m, st, prefix, n[11], C, 0, &b->fcproj_b, err)))
            return s;
    }
    return PS_OK;
}

PSDEF void ps_model_free(ps_model *m) {
    int i;
    if (!m) return;
    for (i = 0; i < m->n_owned; i++) PS_FREE(m->owned[i]);
    PS_FREE(m->owned);
    PS_FREE(m->blocks);
    if (m->file.data) ps__file_close(&m->file);
    PS_FREE(m);
}

/* Everything after the bytes are in memory: parse, resolve, bind. */
static ps_status ps__model_init(ps_model *m, const unsigned char *data, size_t size, const char *config,
                                size_t config_len, const ps_load_opts *opts, ps_error *err) {
    ps__hparams hp;
    ps__st st;
    ps_status s;
    const char *prefix;
    memset(&hp, 0, sizeof hp);
    if (config && (s = ps__config_json(config, config_len, &hp, err))) return s;
    if ((s = ps__st_parse(&st, data, size, err))) return s;
    prefix = ps__st_find(&st, "transformer.wte.weight") ? "transformer." : "";
    if (*prefix && ps__st_find(&st, "wte.weight"))
        s = ps__fail(err, PS_ERR_FORMAT, "both wte.weight and transformer.wte.weight are present");
    else s = ps__resolve_config(&m->cfg, &hp, &st, prefix, err);
    if (!s) s = ps__bind(m, &st, prefix, opts && opts->convert_f32, err);
    ps__st_free(&st);
    return s;
}

PSDEF ps_status ps_model_load_memory(ps_model **out, const void *data, size_t size,
                                     const char *config_json, size_t config_len,
                                     const ps_load_opts *opts, ps_error *err) {
    ps_model *m;
    ps_status s;
    if (!out || (!data && size)) return ps__fail(err, PS_ERR_ARG, "ps_model_load_memory: NULL argument");
    *out = NULL;
    if (!(m = (ps_model *)ps__calloc(1, sizeof *m))) return ps__fail(err, PS_ERR_NOMEM, "out of memory");
    s = ps__model_init(m, (const unsigned char *)data, size, config_json, config_len, opts, err);
    if (s) { ps_model_free(m); return s; }
    *out = m;
    ps__ok(err);
    return PS_OK;
}

static int ps__ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

PSDEF ps_status ps_model_load(ps_model **out, const char *path, const ps_load_opts *opts, ps_error *err) {
    char weights[4096], cfg_path[4096];
    ps__file cfg;
    ps_model *m;
    ps_status s;
    int single = 0;
    if (!out || !path) return ps__fail(err, PS_ERR_ARG, "ps_model_load: NULL argument");
    *out = NULL;
    memset(&cfg, 0, sizeof cfg);
    /* a .safetensors path is one file (hyperparameters from its metadata and shapes);
       anything else is a Hugging Face model folder */
    if (ps__ends_with(path, ".safetensors")) {
        single = 1;
        if (strlen(path) >= sizeof weights) return ps__fail(err, PS_ERR_ARG, "path too long");
        strcpy(weights, path);
    } else if (!ps__join(weights, sizeof weights, path, "model.safetensors") ||
               !ps__join(cfg_path, sizeof cfg_path, path, "config.json")) {
        return ps__fail(err, PS_ERR_ARG, "path too long");
    }
    if (!(m = (ps_model *)ps__calloc(1, sizeof *m))) return ps__fail(err, PS_ERR_NOMEM, "out of memory");
    s = ps__file_read(&m->file, weights, !(opts && opts->no_mmap), err);
    if (s == PS_ERR_IO && !single)
        s = ps__fail(err, PS_ERR_IO, "no model.safetensors in %s (weights/download.sh fetches one)", path);
    if (!s && !single) {
        FILE *probe = fopen(cfg_path, "rb"); /* config.json is optional */
        if (probe) {
            fclose(probe);
            s = ps__file_read(&cfg, cfg_path, 0, err);
        }
    }
    if (!s) s = ps__model_init(m, m->file.data, m->file.size, (const char *)cfg.data, cfg.size, opts, err);
    if (cfg.data) ps__file_close(&cfg);
    if (s) { ps_model_free(m); return s; }
    *out = m;
    ps__ok(err);
    return PS_OK;
}

PSDEF const ps_config *ps_model_config(const ps_model *m) { return &m->cfg; }
PSDEF ps_dtype ps_model_dtype(const ps_model *m) { return m->blocks[0].attn_w.dtype; }

#endif /* PATCHSCOPE_IMPLEMENTATION */
