/* What every example (and the CLI) does first: pick a model folder, open it with its
   tokenizer and a thread pool, and turn prompts into ids.

   The model: --model PATH if given (a folder or a .safetensors file; a missing path
   prints the command that downloads it); otherwise the example's real checkpoint (weights/gpt2, weights/gpt2-medium) when
   it has been downloaded, else the tiny model that ships in weights/tiny. The tokenizer:
   the model folder's vocab.json + merges.txt, else the committed weights/ files. */
#ifndef PS_EXAMPLE_H
#define PS_EXAMPLE_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXAMPLE_FALLBACK "weights/tiny"

typedef struct example {
    const char *dir;
    ps_model *m;
    ps_tokenizer *t;
    ps_pool *pool;
    ps_ctx *c;
} example;

/* the value after --name, or def */
static inline const char *example_arg(int argc, char **argv, const char *name, const char *def) {
    int i;
    for (i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0) return argv[i + 1];
    return def;
}

static inline int example_flag(int argc, char **argv, const char *name) {
    int i;
    for (i = 1; i < argc; i++)
        if (strcmp(argv[i], name) == 0) return 1;
    return 0;
}

static inline int example_has_model(const char *dir) {
    char path[1024];
    FILE *f;
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (!(f = fopen(path, "rb"))) {
        snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
        f = fopen(path, "rb");
    }
    if (f) fclose(f);
    return f != NULL;
}

/* how to fetch the model a missing path names: download.sh knows GPT-2 by name and
   anything else by its hub id */
static inline void example_download_hint(const char *path) {
    const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    if (strcmp(name, "gpt2") == 0 || strcmp(name, "gpt2-medium") == 0 || strcmp(name, "gpt2-large") == 0 ||
        strcmp(name, "gpt2-xl") == 0)
        fprintf(stderr, "%s is not there. Download it with:\n    weights/download.sh %s\n", path, name);
    else
        fprintf(stderr, "%s is not there. Download a Hugging Face model into it with:\n"
                        "    weights/download.sh OWNER/%s %s\n", path, name, path);
}

/* 0 on success; prints why not. model_arg: a folder (model.safetensors or an index and
   its shards, config.json, tokenizer files) or one .safetensors file (the tokenizer is
   then the one beside it) */
static inline int example_open(example *e, const char *model_arg, const char *real_default, int threads) {
    ps_error err;
    char tok_dir[1024];
    size_t n;
    FILE *f;
    memset(e, 0, sizeof *e);
    e->dir = model_arg ? model_arg : example_has_model(real_default) ? real_default : EXAMPLE_FALLBACK;
    if (!model_arg && e->dir != real_default)
        fprintf(stderr, "note: %s is not downloaded (weights/download.sh %s fetches it); using the tiny model in %s\n",
                real_default, strrchr(real_default, '/') ? strrchr(real_default, '/') + 1 : real_default, e->dir);
    if (ps_model_load(&e->m, e->dir, NULL, &err)) {
        if (err.code == PS_ERR_IO && !(f = fopen(e->dir, "rb"))) example_download_hint(e->dir);
        else {
            if (err.code == PS_ERR_IO) fclose(f);
            fprintf(stderr, "%s\n", err.msg);
        }
        return 1;
    }
    snprintf(tok_dir, sizeof tok_dir, "%s", e->dir);
    n = strlen(tok_dir);
    if (n > 12 && strcmp(tok_dir + n - 12, ".safetensors") == 0) { /* the folder the file is in */
        char *slash = strrchr(tok_dir, '/');
        if (slash) *slash = 0;
        else strcpy(tok_dir, ".");
    }
    /* the tokenizer beside the model (tokenizer.json, or GPT-2's files), else (GPT-2 models
       only) the ones in weights/; a tokenizer.json of a kind not read yet leaves e->t NULL,
       said once, and ids still work */
    if (ps_tokenizer_load(&e->t, tok_dir, &err) && strcmp(ps_model_config(e->m)->family, "gpt2") != 0 &&
        err.code != PS_ERR_IO)
        fprintf(stderr, "note: %s: %s (prompts as ids only)\n", tok_dir, err.msg);
    if (!e->t && strcmp(ps_model_config(e->m)->family, "gpt2") == 0 && ps_tokenizer_load(&e->t, "weights", &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    if (ps_pool_create(&e->pool, threads) || ps_ctx_create(&e->c, e->m, e->pool, &err)) {
        fprintf(stderr, "cannot create a context\n");
        return 1;
    }
    return 0;
}

static inline void example_close(example *e) {
    ps_ctx_free(e->c);
    ps_pool_free(e->pool);
    ps_tokenizer_free(e->t);
    ps_model_free(e->m);
}

/* ids (malloc'd) of a prompt, as Hugging Face's tokenizer(text) gives them (Llama's BOS first;
   nothing added for GPT-2), or (piece) of a word as it reads inside a text (ps_encode_piece);
   exits on failure, which only a broken or missing tokenizer can cause */
static inline int *example_tokens(const example *e, const char *text, int piece, int *n) {
    int *ids;
    ps_status s;
    if (!e->t) {
        fprintf(stderr, "%s: no tokenizer patchscope.h can read\n", e->dir);
        exit(1);
    }
    s = piece ? ps_encode_piece(e->t, text, strlen(text), NULL, 0, n) : ps_encode(e->t, text, strlen(text), PS_ENCODE_BOS, NULL, 0, n);
    ids = (int *)malloc((size_t)(*n ? *n : 1) * sizeof(int));
    if (s == PS_OK || s == PS_ERR_RANGE)
        s = piece ? ps_encode_piece(e->t, text, strlen(text), ids, *n, n) : ps_encode(e->t, text, strlen(text), PS_ENCODE_BOS, ids, *n, n);
    if (!ids || s) {
        fprintf(stderr, "cannot encode \"%s\"\n", text);
        exit(1);
    }
    return ids;
}
static inline int *example_encode(const example *e, const char *text, int *n) { return example_tokens(e, text, 0, n); }
static inline int *example_piece(const example *e, const char *text, int *n) { return example_tokens(e, text, 1, n); }

#endif
