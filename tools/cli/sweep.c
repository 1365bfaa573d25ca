/* sweep and merge: many Patchscopes from one job file (JSON Lines, one case a line),
   batched through ps_grid_run_many, sharded, resumable, merged back in job order.

   This file also holds the header's implementation (PATCHSCOPE_IMPLEMENTATION): it
   reads job and result lines with the header's JSON cursor (ps__json), which only the
   implementing file sees. */
#define _POSIX_C_SOURCE 200809L /* open_memstream, ftruncate */
#define PATCHSCOPE_IMPLEMENTATION
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

const cli_opt sweep_opts[] = {
    {"--jobs", "F.jsonl", NULL, "the cases, one JSON object a line (required; the README lists the fields)"},
    {"--out", "R.jsonl", "standard output", "where the results go, appended one whole case at a time"},
    {"--shard", "K/N", "0/1", "run only the cases whose id hashes to K of N (0 <= K < N)"},
    {"--resume", NULL, NULL, "skip the cases --out already holds whole (a case cut short is dropped and rerun)"},
    {"--keep-going", NULL, NULL, "report bad job lines and run the others (the exit status is still 1)"},
    {"--progress", NULL, NULL, "cases done, cells/s and the time left, on stderr"},
    {NULL, NULL, NULL, NULL}};

const cli_opt merge_opts[] = {
    {"--jobs", "F.jsonl", NULL, "the job file: every case must be present, whole (recommended)"},
    {NULL, NULL, NULL, NULL}};

/* --- jobs ---------------------------------------------------------------------------------- */

enum { READ_TOPK = 1, READ_RANK = 2, READ_P1 = 4, READ_SURPRISAL = 8 };
#define PROBS_NEEDED (READ_TOPK | READ_RANK | READ_P1 | READ_SURPRISAL)

typedef struct tag {
    char *key, *val;
    size_t key_len, val_len;
    int number; /* val is a JSON number, printed as given */
} tag;

typedef struct job {
    char *id;
    size_t id_len;
    int line, index;        /* its line in the job file; its place among the cases */
    example *src;           /* the source model: the target's unless source_model */
    int *src_ids, n_src, src_pos;
    int *tgt_ids, n_tgt, tgt_pos; /* positions resolved (no negatives) */
    int *sl, n_sl, *tl, n_tl, same;
    ps_point site;
    int n_new;
    unsigned readout;
    char **tokens;          /* readout "rank": the tokens, and the first id of each */
    int *token_ids, n_tokens;
    const float *map;
    tag *tags;
    int n_tags, cells;
    int compare_source;     /* precision@1 and surprisal against the source's own prediction */
} job;

/* models and maps named by the jobs, opened once */
typedef struct store {
    example *tgt;
    example **models;
    char **model_dirs;
    int n_models;
    float **maps;
    char **map_keys; /* "path|d_src|d_tgt" */
    int n_maps;
} store;

static const char *const fields[] = {
    "id", "source_prompt", "source_ids", "source_token", "source_pos", "target_prompt", "target_ids",
    "target_token", "target_pos", "source_layers", "target_layers", "site", "map", "source_model", "n_new",
    "readout", "tokens", "rank_ids", "compare", "bos", "tags"};
enum { F_ID, F_SRC_PROMPT, F_SRC_IDS, F_SRC_TOKEN, F_SRC_POS, F_TGT_PROMPT, F_TGT_IDS, F_TGT_TOKEN, F_TGT_POS,
       F_SRC_LAYERS, F_TGT_LAYERS, F_SITE, F_MAP, F_SRC_MODEL, F_N_NEW, F_READOUT, F_TOKENS, F_RANK_IDS, F_COMPARE, F_BOS, F_TAGS, N_FIELDS };

typedef struct span {
    const char *p;
    size_t n;
} span;

static char why[1024]; /* what is wrong with the line being read */

static int bad(const char *field, const char *fmt, ...) {
    va_list ap;
    int k = field ? snprintf(why, sizeof why, "%s: ", field) : 0;
    va_start(ap, fmt);
    vsnprintf(why + k, sizeof why - (size_t)k, fmt, ap);
    va_end(ap);
    return -1;
}

static ps__json cursor(span s) {
    ps__json j;
    ps__json_init(&j, s.p, s.n);
    return j;
}

/* a JSON string as malloc'd bytes (NUL-terminated; may hold NULs: see *len) */
static int get_str(int f, span s, char **out, size_t *len) {
    ps__json j = cursor(s);
    size_t n;
    if (ps__json_peek(&j) != '"') return bad(fields[f], "expected a string");
    if (ps__json_string(&j, NULL, 0, &n) || !(*out = (char *)malloc(n + 1))) return bad(fields[f], "bad string");
    j = cursor(s);
    ps__json_string(&j, *out, n + 1, len);
    return 0;
}

/* a string to match as text: valid UTF-8, no NUL */
static int get_text(int f, span s, char **out) {
    size_t n;
    if (get_str(f, s, out, &n)) return -1;
    if (strlen(*out) != n || ps__utf8_valid((const unsigned char *)*out, n) != n)
        return bad(fields[f], "must be valid UTF-8 without NUL");
    if (n == 0) return bad(fields[f], "is empty");
    return 0;
}

static int get_int(int f, span s, int lo, int hi, int *out) {
    ps__json j = cursor(s);
    long long v;
    if (ps__json_int(&j, -1e9, 1e9, &v)) return bad(fields[f], "expected an integer");
    if (v < lo || v > hi) return bad(fields[f], "%lld is outside %d..%d", v, lo, hi);
    *out = (int)v;
    return 0;
}

static int get_ids(int f, span s, int n_vocab, int **ids, int *n) {
    ps__json j = cursor(s);
    int cap = 0, r;
    *n = 0;
    if (ps__json_peek(&j) != '[' || ps__json_array(&j)) return bad(fields[f], "expected an array of token ids");
    while ((r = ps__json_item(&j)) == 1) {
        long long v;
        if (ps__json_int(&j, -1e9, 1e9, &v)) return bad(fields[f], "expected an array of token ids");
        if (v < 0 || v >= n_vocab) return bad(fields[f], "token id %lld is outside the vocabulary 0..%d", v, n_vocab - 1);
        if (*n == cap) {
            int *grown = (int *)realloc(*ids, (size_t)(cap = cap ? 2 * cap : 16) * sizeof(int));
            if (!grown) return bad(fields[f], "out of memory");
            *ids = grown;
        }
        (*ids)[(*n)++] = (int)v;
    }
    if (r < 0) return bad(fields[f], "expected an array of token ids");
    if (*n == 0) return bad(fields[f], "is empty");
    return 0;
}

static int add_layer(int f, int l, int L, int **list, int *n) {
    int i, *grown;
    if (l < 0 || l >= L) return bad(fields[f], "layer %d is outside 0..%d", l, L - 1);
    for (i = 0; i < *n; i++)
        if ((*list)[i] == l) return bad(fields[f], "layer %d appears twice", l);
    if (!(grown = (int *)realloc(*list, (size_t)(*n + 1) * sizeof(int)))) return bad(fields[f], "out of memory");
    *list = grown;
    grown[(*n)++] = l;
    return 0;
}

/* layers: absent (every layer), a number, an array of numbers, "all", or a string of
   items "A" and "A-B" separated by commas ("0-3,6"); the target's may be "same" */
static int get_layers(int f, span s, int L, int **list, int *n, int *same) {
    ps__json j = cursor(s);
    int c = s.p ? ps__json_peek(&j) : 0, a, b, r;
    *n = 0;
    if (!s.p) {
        for (a = 0; a < L; a++)
            if (add_layer(f, a, L, list, n)) return -1;
        return 0;
    }
    if (c == '[') {
        if (ps__json_array(&j)) return bad(fields[f], "bad array");
        while ((r = ps__json_item(&j)) == 1) {
            long long v;
            if (ps__json_int(&j, -1e9, 1e9, &v)) return bad(fields[f], "expected layer numbers");
            if (add_layer(f, (int)v, L, list, n)) return -1;
        }
        if (r < 0) return bad(fields[f], "bad array");
        return *n ? 0 : bad(fields[f], "is empty");
    }
    if (c == '"') {
        char text[256], *p, *end;
        if (ps__json_string(&j, text, sizeof text, NULL)) return bad(fields[f], "bad string");
        if (strcmp(text, "same") == 0) {
            if (!same) return bad(fields[f], "\"same\" is for target_layers");
            *same = 1;
            return 0;
        }
        if (strcmp(text, "all") == 0) return get_layers(f, (span){NULL, 0}, L, list, n, same);
        for (p = text; *p;) {
            if (*p < '0' || *p > '9') return bad(fields[f], "bad layers \"%s\" (want \"A-B\", \"A,B\" or \"same\")", text);
            a = b = (int)strtol(p, &end, 10);
            if (*end == '-') {
                p = end + 1;
                if (*p < '0' || *p > '9') return bad(fields[f], "bad layers \"%s\"", text);
                b = (int)strtol(p, &end, 10);
            }
            if (b < a) return bad(fields[f], "the range %d-%d runs backwards", a, b);
            if (b >= L) return bad(fields[f], "layer %d is outside 0..%d", b, L - 1);
            for (; a <= b; a++)
                if (add_layer(f, a, L, list, n)) return -1;
            p = end;
            if (*p == ',') p++;
            else if (*p) return bad(fields[f], "bad layers \"%s\"", text);
        }
        return *n ? 0 : bad(fields[f], "is empty");
    }
    if (get_int(f, s, 0, L - 1, &a)) return -1;
    return add_layer(f, a, L, list, n);
}

static char **get_strs(int f, span s, int *n) {
    ps__json j = cursor(s);
    char **list = NULL, **grown;
    int r;
    *n = 0;
    if (ps__json_peek(&j) == '"') {
        if (!(list = (char **)calloc(1, sizeof *list)) || get_text(f, s, &list[0])) return free(list), NULL;
        *n = 1;
        return list;
    }
    if (ps__json_peek(&j) != '[' || ps__json_array(&j)) return bad(fields[f], "expected a string or an array of strings"), NULL;
    while ((r = ps__json_item(&j)) == 1) {
        span item;
        item.p = j.p;
        if (ps__json_skip(&j) || !(grown = (char **)realloc(list, (size_t)(*n + 1) * sizeof *list))) break;
        list = grown;
        item.n = (size_t)(j.p - item.p);
        list[*n] = NULL;
        if (get_text(f, item, &list[(*n)++])) return list; /* the caller frees what was read */
    }
    if (r != 0) return bad(fields[f], "expected a string or an array of strings"), list;
    if (*n == 0) return bad(fields[f], "is empty"), list;
    return list;
}

static int get_tags(span s, job *jb) {
    ps__json j = cursor(s);
    int r;
    if (ps__json_peek(&j) != '{' || ps__json_object(&j)) return bad("tags", "expected an object");
    while ((r = ps__json_more(&j, '}')) == 1) {
        tag *t, *grown = (tag *)realloc(jb->tags, (size_t)(jb->n_tags + 1) * sizeof *grown);
        span k, v;
        int c;
        if (!grown) return bad("tags", "out of memory");
        jb->tags = grown;
        t = &jb->tags[jb->n_tags++];
        memset(t, 0, sizeof *t);
        k.p = j.p;
        if (ps__json_peek(&j) != '"' || ps__json_skip(&j)) return bad("tags", "bad key");
        k.n = (size_t)(j.p - k.p);
        if (ps__json_expect(&j, ':')) return bad("tags", "expected ':'");
        c = ps__json_peek(&j);
        v.p = j.p;
        if (ps__json_skip(&j)) return bad("tags", "bad value");
        v.n = (size_t)(j.p - v.p);
        if (get_str(F_TAGS, k, &t->key, &t->key_len)) return -1;
        if (c == '"') {
            if (get_str(F_TAGS, v, &t->val, &t->val_len)) return -1;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            if (!(t->val = (char *)malloc(v.n + 1))) return bad("tags", "out of memory");
            memcpy(t->val, v.p, v.n);
            t->val[t->val_len = v.n] = 0;
            t->number = 1;
        } else return bad("tags", "the value of \"%s\" must be a string or a number", t->key);
    }
    return r < 0 ? bad("tags", "bad object") : 0;
}

/* the model of a source_model folder, opened once */
static example *source_model(store *st, const char *dir) {
    int i, threads;
    example *e, **grown;
    char **dirs;
    for (i = 0; i < st->n_models; i++)
        if (strcmp(st->model_dirs[i], dir) == 0) return st->models[i];
    if (!int_opt("--threads", 0, &threads) || !(e = (example *)calloc(1, sizeof *e))) return NULL;
    if (example_open(e, dir, "weights/gpt2", threads)) return free(e), NULL;
    grown = (example **)realloc(st->models, (size_t)(st->n_models + 1) * sizeof *grown);
    if (grown) st->models = grown;
    dirs = (char **)realloc(st->model_dirs, (size_t)(st->n_models + 1) * sizeof *dirs);
    if (dirs) st->model_dirs = dirs;
    if (!grown || !dirs || !(dirs[st->n_models] = (char *)malloc(strlen(dir) + 1))) {
        example_close(e);
        return free(e), NULL;
    }
    strcpy(dirs[st->n_models], dir);
    e->dir = dirs[st->n_models];
    grown[st->n_models++] = e;
    return e;
}

static const float *map_file(store *st, const char *path, int d_src, int d_tgt) {
    char key[1200];
    int i;
    float *A, **grown;
    char **keys;
    snprintf(key, sizeof key, "%s|%d|%d", path, d_src, d_tgt);
    for (i = 0; i < st->n_maps; i++)
        if (strcmp(st->map_keys[i], key) == 0) return st->maps[i];
    if (!(A = read_map(path, d_src, d_tgt))) return NULL;
    grown = (float **)realloc(st->maps, (size_t)(st->n_maps + 1) * sizeof *grown);
    if (grown) st->maps = grown;
    keys = (char **)realloc(st->map_keys, (size_t)(st->n_maps + 1) * sizeof *keys);
    if (keys) st->map_keys = keys;
    if (!grown || !keys || !(keys[st->n_maps] = (char *)malloc(strlen(key) + 1))) return free(A), NULL;
    strcpy(keys[st->n_maps], key);
    grown[st->n_maps++] = A;
    return A;
}

/* a prompt given as text (encoded by e's tokenizer) or as ids */
static int get_prompt(int f_text, int f_ids, const span *v, const example *e, int bos, int **ids, int *n) {
    char *text = NULL;
    size_t len;
    const ps_config *cfg = ps_model_config(e->m);
    if (v[f_text].p && v[f_ids].p) return bad(NULL, "give %s or %s, not both", fields[f_text], fields[f_ids]);
    if (v[f_ids].p) {
        if (get_ids(f_ids, v[f_ids], cfg->n_vocab, ids, n)) return -1;
    } else {
        if (get_str(f_text, v[f_text], &text, &len)) return -1;
        if (!e->t) return free(text), bad(fields[f_text], "%s has no tokenizer patchscope.h reads: give %s", e->dir, fields[f_ids]);
        *ids = encode_text(e->t, text, len, bos ? PS_ENCODE_BOS : 0, n);
        free(text);
        if (!*ids) return bad(fields[f_text], "cannot be encoded (invalid UTF-8?)");
        if (*n == 0) return bad(fields[f_text], "is empty");
    }
    if (*n > cfg->n_ctx) return bad(fields[f_text], "%d tokens are past the model's %d positions", *n, cfg->n_ctx);
    return 0;
}

/* a position: source_token / target_token (its last occurrence), or an index (negative
   counts from the end) */
static int get_pos(int f_token, int f_pos, const span *v, const example *e, const int *ids, int n, int *pos) {
    char *text = NULL;
    if (v[f_token].p && v[f_pos].p) return bad(NULL, "give %s or %s, not both", fields[f_token], fields[f_pos]);
    if (v[f_token].p) {
        if (get_text(f_token, v[f_token], &text)) return free(text), -1;
        if (!e->t) return free(text), bad(fields[f_token], "%s has no tokenizer patchscope.h reads: give %s", e->dir, fields[f_pos]);
        *pos = ps_find_text(e->t, ids, n, text);
        if (*pos < 0) bad(fields[f_token], "\"%s\" does not occur in the prompt", text);
        free(text);
        return *pos < 0 ? -1 : 0;
    }
    *pos = -1;
    if (v[f_pos].p && get_int(f_pos, v[f_pos], -n, n - 1, pos)) return -1;
    if (*pos < 0) *pos += n;
    return 0;
}

static void job_free(job *jb) {
    int i;
    free(jb->id);
    free(jb->src_ids);
    free(jb->tgt_ids);
    free(jb->sl);
    free(jb->tl);
    for (i = 0; jb->tokens && i < jb->n_tokens; i++) free(jb->tokens[i]);
    free(jb->tokens);
    free(jb->token_ids);
    for (i = 0; i < jb->n_tags; i++) free(jb->tags[i].key), free(jb->tags[i].val);
    free(jb->tags);
    memset(jb, 0, sizeof *jb);
}

/* One job line into *jb; -1 with `why` set when it is bad. */
static int job_parse(store *st, const char *line, size_t len, job *jb) {
    span v[N_FIELDS];
    ps__json j;
    char key[64], *text = NULL;
    const ps_config *tcfg = ps_model_config(st->tgt->m), *scfg;
    int r, f, bos = 0, k;
    memset(v, 0, sizeof v);
    ps__json_init(&j, line, len);
    if (ps__json_peek(&j) != '{' || ps__json_object(&j)) return bad(NULL, "not a JSON object");
    while ((r = ps__json_key(&j, key, sizeof key, NULL)) == 1) {
        for (f = 0; f < N_FIELDS && strcmp(key, fields[f]) != 0; f++) {}
        if (f == N_FIELDS) return bad(NULL, "unknown field \"%s\"", key);
        if (v[f].p) return bad(fields[f], "given twice");
        ps__json_peek(&j); /* the value starts after the blanks */
        v[f].p = j.p;
        if (ps__json_skip(&j)) return bad(fields[f], "bad JSON (%s)", j.err);
        v[f].n = (size_t)(j.p - v[f].p);
    }
    if (r < 0 || ps__json_done(&j)) return bad(NULL, "bad JSON (%s)", j.err[0] ? j.err : "text after the object");
    /* the id: a non-empty string of valid UTF-8, or an integer (kept as its digits) */
    if (!v[F_ID].p) return bad("id", "missing");
    j = cursor(v[F_ID]);
    if (ps__json_peek(&j) == '"') {
        if (get_str(F_ID, v[F_ID], &jb->id, &jb->id_len)) return -1;
        if (!jb->id_len || jb->id_len > 256 || ps__utf8_valid((const unsigned char *)jb->id, jb->id_len) != jb->id_len)
            return bad("id", "must be a string of 1 to 256 bytes of valid UTF-8");
    } else {
        if (get_int(F_ID, v[F_ID], -1000000000, 1000000000, &k) || !(jb->id = (char *)malloc(16))) return -1;
        jb->id_len = (size_t)snprintf(jb->id, 16, "%d", k);
    }
    if (v[F_BOS].p) {
        j = cursor(v[F_BOS]);
        if (ps__json_literal(&j, "true") == 0) bos = 1;
        else if ((j = cursor(v[F_BOS]), ps__json_literal(&j, "false")) != 0) return bad("bos", "expected true or false");
    }
    /* the source side */
    jb->src = st->tgt;
    if (v[F_SRC_MODEL].p) {
        if (get_text(F_SRC_MODEL, v[F_SRC_MODEL], &text)) return free(text), -1;
        if (!v[F_MAP].p) return free(text), bad("source_model", "needs a map (patchscope fit makes one)");
        jb->src = source_model(st, text);
        if (!jb->src) bad("source_model", "cannot load %s", text);
        free(text);
        text = NULL;
        if (!jb->src) return -1;
    }
    scfg = ps_model_config(jb->src->m);
    jb->site = PS_RESID_POST;
    if (v[F_SITE].p) {
        int p;
        if (get_text(F_SITE, v[F_SITE], &text)) return free(text), -1;
        p = ps_point_from_name(text);
        if (p < 0 || layerless((ps_point)p) || p == PS_PATTERN) bad("site", "\"%s\" is not a patch site", text);
        free(text);
        text = NULL;
        if (p < 0 || layerless((ps_point)p) || p == PS_PATTERN) return -1;
        jb->site = (ps_point)p;
    }
    if (!v[F_SRC_PROMPT].p && !v[F_SRC_IDS].p) return bad(NULL, "give source_prompt or source_ids");
    if (get_prompt(F_SRC_PROMPT, F_SRC_IDS, v, jb->src, bos, &jb->src_ids, &jb->n_src) ||
        get_pos(F_SRC_TOKEN, F_SRC_POS, v, jb->src, jb->src_ids, jb->n_src, &jb->src_pos))
        return -1;
    /* the target side: the source prompt when none is given (the target model's ids) */
    if (v[F_TGT_PROMPT].p || v[F_TGT_IDS].p) {
        if (get_prompt(F_TGT_PROMPT, F_TGT_IDS, v, st->tgt, bos, &jb->tgt_ids, &jb->n_tgt)) return -1;
    } else {
        if (jb->src != st->tgt) return bad(NULL, "with source_model, give target_prompt or target_ids");
        if (!(jb->tgt_ids = (int *)malloc((size_t)jb->n_src * sizeof(int)))) return bad(NULL, "out of memory");
        memcpy(jb->tgt_ids, jb->src_ids, (size_t)jb->n_src * sizeof(int));
        jb->n_tgt = jb->n_src;
    }
    if (get_pos(F_TGT_TOKEN, F_TGT_POS, v, st->tgt, jb->tgt_ids, jb->n_tgt, &jb->tgt_pos)) return -1;
    /* layers, generation, readouts */
    if (get_layers(F_SRC_LAYERS, v[F_SRC_LAYERS], scfg->n_layer, &jb->sl, &jb->n_sl, NULL) ||
        get_layers(F_TGT_LAYERS, v[F_TGT_LAYERS], tcfg->n_layer, &jb->tl, &jb->n_tl, &jb->same))
        return -1;
    if (jb->same)
        for (k = 0; k < jb->n_sl; k++)
            if (jb->sl[k] >= tcfg->n_layer)
                return bad("target_layers", "\"same\": source layer %d is outside the target's 0..%d", jb->sl[k],
                           tcfg->n_layer - 1);
    jb->cells = jb->n_sl * (jb->same ? 1 : jb->n_tl);
    if (v[F_N_NEW].p && get_int(F_N_NEW, v[F_N_NEW], 0, tcfg->n_ctx, &jb->n_new)) return -1;
    if (jb->n_new > 1 && jb->n_new - 1 > tcfg->n_ctx - jb->n_tgt)
        return bad("n_new", "%d target tokens and %d new ones do not fit the model's %d positions", jb->n_tgt, jb->n_new,
                   tcfg->n_ctx);
    if (v[F_READOUT].p) {
        int n;
        char **names = get_strs(F_READOUT, v[F_READOUT], &n);
        for (k = 0; names && k < n && names[k]; k++) {
            const char *nm = names[k];
            if (!why[0])
                jb->readout |= strcmp(nm, "top1") == 0 ? 0u : strcmp(nm, "topk") == 0 ? READ_TOPK : strcmp(nm, "rank") == 0 ? READ_RANK
                             : strcmp(nm, "precision_at_1") == 0 ? READ_P1 : strcmp(nm, "surprisal") == 0 ? READ_SURPRISAL
                             : (bad("readout", "unknown readout \"%s\" (top1, topk, rank, precision_at_1, surprisal)", nm), 0u);
            free(names[k]);
        }
        free(names);
        if (why[0]) return -1;
    }
    if (v[F_TOKENS].p && v[F_RANK_IDS].p) return bad(NULL, "give tokens or rank_ids, not both");
    if (!!(jb->readout & READ_RANK) != (v[F_TOKENS].p || v[F_RANK_IDS].p))
        return bad(v[F_RANK_IDS].p ? "rank_ids" : "tokens",
                   v[F_TOKENS].p || v[F_RANK_IDS].p ? "needs readout \"rank\"" : "readout \"rank\" needs tokens or rank_ids");
    if (v[F_RANK_IDS].p && get_ids(F_RANK_IDS, v[F_RANK_IDS], tcfg->n_vocab, &jb->token_ids, &jb->n_tokens)) return -1;
    if (v[F_TOKENS].p) {
        if (!st->tgt->t) return bad("tokens", "%s has no tokenizer patchscope.h reads", st->tgt->dir);
        jb->tokens = get_strs(F_TOKENS, v[F_TOKENS], &jb->n_tokens);
        if (why[0]) return -1;
        if (!(jb->token_ids = (int *)calloc((size_t)jb->n_tokens, sizeof(int)))) return bad("tokens", "out of memory");
        for (k = 0; k < jb->n_tokens; k++) { /* the first sub-token of each, as lens ranks them */
            int ids[64], n = 0;
            ps_status s = ps_encode_piece(st->tgt->t, jb->tokens[k], strlen(jb->tokens[k]), ids, 64, &n);
            if ((s != PS_OK && s != PS_ERR_RANGE) || n < 1) return bad("tokens", "cannot encode \"%s\"", jb->tokens[k]);
            jb->token_ids[k] = ids[0];
        }
    }
    if (v[F_MAP].p) {
        int d_src = ps_point_width(jb->src->m, jb->site, 0), d_tgt = ps_point_width(st->tgt->m, jb->site, 0);
        if (get_text(F_MAP, v[F_MAP], &text)) return free(text), -1;
        jb->map = map_file(st, text, d_src, d_tgt);
        free(text);
        if (!jb->map) return bad("map", "cannot read it as a map for these models: (%d + 1) x %d floats", d_src, d_tgt);
    } else if (ps_point_width(jb->src->m, jb->site, 0) != ps_point_width(st->tgt->m, jb->site, 0))
        return bad("map", "the models' %s widths differ: give a map", ps_point_name(jb->site));
    if (v[F_COMPARE].p) { /* what precision@1 and surprisal are measured against */
        if (get_text(F_COMPARE, v[F_COMPARE], &text)) return free(text), -1;
        jb->compare_source = strcmp(text, "source") == 0;
        k = jb->compare_source || strcmp(text, "target") == 0;
        free(text);
        if (!k) return bad("compare", "expected \"target\" or \"source\"");
        if (jb->compare_source && scfg->n_vocab != tcfg->n_vocab)
            return bad("compare", "\"source\" needs one vocabulary: the models have %d and %d tokens", scfg->n_vocab,
                       tcfg->n_vocab);
    }
    if (v[F_TAGS].p && get_tags(v[F_TAGS], jb)) return -1;
    return 0;
}

/* --- ids: sharding and lookup ---------------------------------------------------------------- */

static unsigned long long fnv1a(const char *s, size_t n) {
    unsigned long long h = 14695981039346656037ull;
    size_t i;
    for (i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static int id_cmp(const char *a, size_t na, const char *b, size_t nb) {
    int c = memcmp(a, b, na < nb ? na : nb);
    return c ? c : (na > nb) - (na < nb);
}

static const job *sort_base;
static int by_id(const void *a, const void *b) { /* then by line: the first of equal ids leads */
    const job *x = &sort_base[*(const int *)a], *y = &sort_base[*(const int *)b];
    int c = id_cmp(x->id, x->id_len, y->id, y->id_len);
    return c ? c : (x->index > y->index) - (x->index < y->index);
}

/* the job with this id (order: job indices sorted by id), or -1 */
static int find_id(const job *jobs, const int *order, int n, const char *id, size_t len) {
    int lo = 0, hi = n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2, c = id_cmp(jobs[order[mid]].id, jobs[order[mid]].id_len, id, len);
        if (!c) return order[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}

/* a bad case keeps its place (line, index) and loses the rest */
static void job_drop(job *jb) {
    int line = jb->line, index = jb->index;
    job_free(jb);
    jb->line = line;
    jb->index = index;
}

/* Reads every line of the job file; bad ones are reported (FILE:LINE: field: why) and
   dropped (their id NULL). Returns the number of cases, bad ones included, or -1;
   *order gets the good ones' indices sorted by id (*n_ids of them). */
static int read_jobs(store *st, const char *path, job **out, int *n_bad, int **order, int *n_ids) {
    size_t len, at = 0;
    char *text = read_file(path, &len);
    int n = 0, cap = 0, line = 0, i, k;
    job *jobs = NULL;
    *n_bad = 0;
    if (!text) return -1;
    while (at < len) {
        size_t end = at, b = at;
        job *jb;
        while (end < len && text[end] != '\n') end++;
        line++;
        while (b < end && (text[b] == ' ' || text[b] == '\t' || text[b] == '\r')) b++;
        if (b == end) { /* blank lines are not cases */
            at = end + 1;
            continue;
        }
        if (n == cap) {
            job *grown = (job *)realloc(jobs, (size_t)(cap = cap ? 2 * cap : 64) * sizeof *jobs);
            if (!grown) return free(text), die("out of memory reading %s", path), -1;
            jobs = grown;
        }
        jb = &jobs[n];
        memset(jb, 0, sizeof *jb);
        why[0] = 0;
        jb->line = line;
        jb->index = n++;
        if (job_parse(st, text + at, end - at, jb)) {
            note("%s:%d: %s", path, line, why);
            job_drop(jb);
            ++*n_bad;
        }
        at = end + 1;
    }
    free(text);
    /* ids are unique: results, shards and resumes are keyed by them */
    if (!(*order = (int *)malloc((size_t)(n ? n : 1) * sizeof(int)))) return die("out of memory"), -1;
    for (i = 0, cap = 0; i < n; i++)
        if (jobs[i].id) (*order)[cap++] = i;
    sort_base = jobs;
    qsort(*order, (size_t)cap, sizeof(int), by_id);
    for (i = 1, k = 0; i < cap; i++) {
        job *first = &jobs[(*order)[k]], *again = &jobs[(*order)[i]];
        if (id_cmp(first->id, first->id_len, again->id, again->id_len) == 0) {
            note("%s:%d: id: \"%s\" is the id of line %d already", path, again->line, again->id, first->line);
            job_drop(again);
            ++*n_bad;
        } else (*order)[++k] = (*order)[i];
    }
    *n_ids = cap ? k + 1 : 0;
    *out = jobs;
    return n;
}

/* --- running the cases ------------------------------------------------------------------------ */

/* a source prompt's run, every position kept, shared by the cases that name it */
typedef struct source_run {
    const example *e;
    ps_point site;
    const int *ids;
    int n;
    ps_source s;
} source_run;

typedef struct runner {
    store *st;
    int fd;                    /* where results go */
    source_run **sources;      /* each its own allocation: grid specs point into them */
    int n_sources;
    size_t source_bytes;
} runner;

static const ps_source *source_of(runner *rn, const job *jb) {
    source_run *sr, **grown;
    int i;
    for (i = 0; i < rn->n_sources; i++) {
        sr = rn->sources[i];
        if (sr->e == jb->src && sr->site == jb->site && sr->n == jb->n_src &&
            memcmp(sr->ids, jb->src_ids, (size_t)jb->n_src * sizeof(int)) == 0)
            return &sr->s;
    }
    if (!(grown = (source_run **)realloc(rn->sources, (size_t)(rn->n_sources + 1) * sizeof *grown)) ||
        !(sr = (source_run *)calloc(1, sizeof *sr)))
        return die("out of memory"), NULL;
    rn->sources = grown;
    sr->e = jb->src;
    sr->site = jb->site;
    sr->ids = jb->src_ids;
    sr->n = jb->n_src;
    if (ps_source_run(jb->src->c, jb->src_ids, jb->n_src, jb->site, NULL, 0, &sr->s))
        return free(sr), die("case %s: %s", jb->id, ps_ctx_error(jb->src->c)), NULL;
    grown[rn->n_sources++] = sr;
    rn->source_bytes += (size_t)sr->s.n_layer * sr->s.n_pos * sr->s.width * sizeof(float);
    return &sr->s;
}

static void sources_clear(runner *rn) {
    int i;
    for (i = 0; i < rn->n_sources; i++) ps_source_free(&rn->sources[i]->s), free(rn->sources[i]);
    rn->n_sources = 0;
    rn->source_bytes = 0;
}

/* runs of consecutive layers in a list: [3,4,5,9] is 3-5 and 9; run[i] is layer i's */
static int layer_runs(const int *list, int n, int *run, int *first) {
    int i, k = 0;
    for (i = 0; i < n; i++) {
        if (i == 0 || list[i] != list[i - 1] + 1) first[k++] = i;
        run[i] = k - 1;
    }
    return k;
}

static int write_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* the case's result lines, one per (source layer, target layer) in the order of its lists;
   where[2 * cell] is the cell's grid, where[2 * cell + 1] its index in that grid */
static void print_case(const example *e, const job *jb, const ps_grid *grids, const int *where, const float *source_probs) {
    int V = ps_model_config(e->m)->n_vocab, i, k, c = 0;
    for (i = 0; i < jb->n_sl; i++)
        for (k = 0; k < (jb->same ? 1 : jb->n_tl); k++, c++) {
            const ps_grid *g = &grids[where[2 * c]];
            int at = where[2 * c + 1], q;
            const float *probs = g->probs ? g->probs + (size_t)at * V : NULL;
            ps_readout r;
            fputs("{\"id\": ", cli_out);
            print_json_bytes(jb->id, jb->id_len);
            fprintf(cli_out, ", \"case\": %d, \"cells\": %d, \"source_layer\": %d, \"target_layer\": %d, \"top_id\": %d, "
                    "\"top_token\": ", jb->index, jb->cells, jb->sl[i], jb->same ? jb->sl[i] : jb->tl[k], g->top_id[at]);
            print_token(e, g->top_id[at]);
            fputs(", \"top_prob\": ", cli_out);
            print_number(g->top_prob[at]);
            if (probs) ps_readout_fill(probs, source_probs ? source_probs : g->unpatched, V, &r);
            if (jb->readout & READ_TOPK) {
                fputs(", \"top_k_ids\": ", cli_out);
                print_ints(r.top_id, PS_TOP_K);
                fputs(", \"top_k_tokens\": [", cli_out);
                for (q = 0; q < PS_TOP_K; q++) {
                    fputs(q ? ", " : "", cli_out);
                    print_token(e, r.top_id[q]);
                }
                fputs("], \"top_k_probs\": ", cli_out);
                print_floats(r.top_prob, PS_TOP_K);
            }
            if (jb->readout & READ_RANK) {
                fputs(", \"rank_tokens\": [", cli_out);
                for (q = 0; q < jb->n_tokens; q++) {
                    fputs(q ? ", " : "", cli_out);
                    if (jb->tokens) print_json_string(jb->tokens[q]);
                    else print_token(e, jb->token_ids[q]); /* rank_ids */
                }
                fputs("], \"ranks\": [", cli_out);
                for (q = 0; q < jb->n_tokens; q++) fprintf(cli_out, q ? ", %d" : "%d", ps_rank(probs, V, jb->token_ids[q]));
                fputs("], \"rank_probs\": [", cli_out);
                for (q = 0; q < jb->n_tokens; q++) {
                    fputs(q ? ", " : "", cli_out);
                    print_number(probs[jb->token_ids[q]]);
                }
                fputs("]", cli_out);
            }
            if (jb->readout & READ_P1) fprintf(cli_out, ", \"precision_at_1\": %d", r.precision_at_1);
            if (jb->readout & READ_SURPRISAL) {
                fputs(", \"surprisal\": ", cli_out);
                print_number(r.surprisal);
            }
            if (jb->n_new) {
                const int *gen = g->gen + (size_t)at * jb->n_new;
                fputs(", \"generated_ids\": ", cli_out);
                print_ints(gen, jb->n_new);
                if (e->t) {
                    size_t len = 0;
                    char *text;
                    ps_decode(e->t, gen, jb->n_new, NULL, 0, &len);
                    if ((text = (char *)malloc(len + 1)) && ps_decode(e->t, gen, jb->n_new, text, len + 1, &len) == PS_OK) {
                        fputs(", \"generated_text\": ", cli_out);
                        print_json_bytes(text, len);
                    }
                    free(text);
                }
            }
            if (jb->n_tags) {
                fputs(", \"tags\": {", cli_out);
                for (q = 0; q < jb->n_tags; q++) {
                    fputs(q ? ", " : "", cli_out);
                    print_json_bytes(jb->tags[q].key, jb->tags[q].key_len);
                    fputs(": ", cli_out);
                    if (jb->tags[q].number) fputs(jb->tags[q].val, cli_out);
                    else print_json_bytes(jb->tags[q].val, jb->tags[q].val_len);
                }
                fputs("}", cli_out);
            }
            fputs("}\n", cli_out);
        }
}

#define MAX_LAYERS 512 /* the header's bound on a model's layers */

/* the grids of a case: one per (run of source layers, run of target layers), or a
   diagonal per run of source layers for "same"; specs NULL only counts them */
static int case_grids(const job *jb, const ps_source *src, ps_grid_spec *specs, int base, int *where) {
    int srun[MAX_LAYERS], sfirst[MAX_LAYERS + 1], trun[MAX_LAYERS], tfirst[MAX_LAYERS + 1], rs, rt, a, t, i, k, c = 0;
    rs = layer_runs(jb->sl, jb->n_sl, srun, sfirst);
    rt = jb->same ? 1 : layer_runs(jb->tl, jb->n_tl, trun, tfirst);
    sfirst[rs] = jb->n_sl;
    tfirst[rt] = jb->same ? 1 : jb->n_tl;
    for (a = 0; specs && a < rs; a++)
        for (t = 0; t < rt; t++) {
            ps_grid_spec *sp = &specs[a * rt + t];
            sp->src = src;
            sp->src_pos = jb->src_pos;
            sp->src_first = jb->sl[sfirst[a]];
            sp->src_last = jb->sl[sfirst[a + 1] - 1];
            sp->target = jb->tgt_ids;
            sp->n_target = jb->n_tgt;
            sp->tgt_pos = jb->tgt_pos;
            sp->tgt_first = jb->same ? sp->src_first : jb->tl[tfirst[t]];
            sp->tgt_last = jb->same ? sp->src_last : jb->tl[tfirst[t + 1] - 1];
            sp->diagonal = jb->same;
            sp->map.affine = jb->map;
            sp->keep_probs = (jb->readout & PROBS_NEEDED) != 0;
            sp->n_new = jb->n_new;
        }
    for (i = 0; specs && i < jb->n_sl; i++)
        for (k = 0; k < (jb->same ? 1 : jb->n_tl); k++, c++) {
            int a_ = srun[i], t_ = jb->same ? 0 : trun[k], cols = jb->same ? 1 : tfirst[t_ + 1] - tfirst[t_];
            where[2 * c] = base + a_ * rt + t_;
            where[2 * c + 1] = jb->same ? i - sfirst[a_] : (i - sfirst[a_]) * cols + (k - tfirst[t_]);
        }
    return rs * rt;
}

/* The cases of one batch as one ps_grid_run_many; each case's lines go out in one write. */
static int run_batch(runner *rn, job *const *batch, int nb) {
    example *e = rn->st->tgt;
    int n_specs = 0, n_cells = 0, b, i, rc = 0;
    ps_grid_spec *specs;
    ps_grid *grids;
    int *where;
    for (b = 0; b < nb; b++) {
        n_specs += case_grids(batch[b], NULL, NULL, 0, NULL);
        n_cells += batch[b]->cells;
    }
    specs = (ps_grid_spec *)calloc((size_t)n_specs, sizeof *specs);
    grids = (ps_grid *)calloc((size_t)n_specs, sizeof *grids);
    where = (int *)malloc((size_t)n_cells * 2 * sizeof(int));
    if (!specs || !grids || !where) {
        free(specs), free(grids), free(where);
        return die("out of memory");
    }
    for (b = 0, n_specs = 0, n_cells = 0; b < nb && !rc; b++) {
        const ps_source *src = source_of(rn, batch[b]);
        if (!src) rc = CLI_FAIL;
        else n_specs += case_grids(batch[b], src, specs + n_specs, n_specs, where + 2 * n_cells);
        n_cells += batch[b]->cells;
    }
    if (!rc && ps_grid_run_many(e->c, specs, n_specs, grids)) rc = die("%s", ps_ctx_error(e->c));
    for (b = 0, n_cells = 0; b < nb && !rc; b++) {
        const job *jb = batch[b];
        char *buf = NULL;
        size_t len = 0;
        float *source_probs = NULL;
        if (jb->compare_source) { /* the source's own next-token distribution at its position */
            int V = ps_model_config(jb->src->m)->n_vocab;
            ps_ctx_reset(jb->src->c);
            if (!(source_probs = (float *)malloc((size_t)V * sizeof(float)))) rc = die("out of memory");
            else if (ps_forward(jb->src->c, jb->src_ids, jb->src_pos + 1, 0))
                rc = die("case %s: %s", jb->id, ps_ctx_error(jb->src->c));
            else ps_softmax(ps_logits(jb->src->c, 0), V, source_probs);
        }
        if (!rc && !(cli_out = open_memstream(&buf, &len))) rc = die("out of memory");
        if (!rc) {
            print_case(e, jb, grids, where + 2 * n_cells, source_probs);
            fclose(cli_out);
            cli_out = NULL;
            if (write_all(rn->fd, buf, len)) rc = die("cannot write the results: %s", strerror(errno));
        }
        free(buf);
        free(source_probs);
        n_cells += jb->cells;
    }
    for (i = 0; i < n_specs; i++) ps_grid_free(&grids[i]);
    free(specs), free(grids), free(where);
    if (rn->source_bytes > ((size_t)256 << 20)) sources_clear(rn); /* a bound on what is kept */
    return rc;
}

/* --- resume and merge: result files read back ---------------------------------------------- */

/* The id and case number of a result line; -1 when it is not one. */
static int result_id(const char *line, size_t len, char *id, size_t cap, size_t *id_len, int *index, int *cells) {
    ps__json j;
    char key[32];
    int r, got = 0;
    ps__json_init(&j, line, len);
    *index = *cells = -1;
    if (ps__json_object(&j)) return -1;
    while ((r = ps__json_key(&j, key, sizeof key, NULL)) == 1) {
        long long v;
        if (strcmp(key, "id") == 0) {
            if (ps__json_string(&j, id, cap, id_len)) return -1;
            got = 1;
        } else if (strcmp(key, "case") == 0 || strcmp(key, "cells") == 0) {
            if (ps__json_int(&j, 0, 1e9, &v)) return -1;
            *(key[1] == 'a' ? index : cells) = (int)v;
        } else if (ps__json_skip(&j)) return -1;
    }
    return r == 0 && got && *index >= 0 && *cells > 0 && !ps__json_done(&j) ? 0 : -1;
}

/* A result file as blocks of consecutive lines with one id: a case each. */
typedef struct block {
    char *id;               /* decoded, malloc'd */
    size_t id_len, at, len; /* and the block's bytes in the file */
    int index, cells, lines; /* case number, lines it should have, lines it has */
} block;

/* Splits text into blocks; *tail gets the offset after the last whole line. -1 (said
   why) when a whole line is not a result. */
static int blocks_of(const char *path, const char *text, size_t len, block **out, int *n, size_t *tail) {
    size_t at = 0;
    int cap = 0, line = 0;
    char id[1024];
    *out = NULL;
    *n = 0;
    while (at < len) {
        size_t end = at, id_len;
        int index, cells;
        block *b;
        while (end < len && text[end] != '\n') end++;
        if (end == len) break; /* a line cut short */
        line++;
        if (result_id(text + at, end - at, id, sizeof id, &id_len, &index, &cells))
            return die("%s:%d: not a result line of patchscope sweep", path, line), -1;
        b = *n ? &(*out)[*n - 1] : NULL;
        if (!b || b->index != index || b->id_len != id_len || memcmp(b->id, id, id_len) != 0) {
            if (*n == cap) {
                block *grown = (block *)realloc(*out, (size_t)(cap = cap ? 2 * cap : 64) * sizeof *grown);
                if (!grown) return die("out of memory"), -1;
                *out = grown;
            }
            b = &(*out)[(*n)++];
            b->at = at;
            b->len = 0;
            b->lines = 0;
            b->index = index;
            b->cells = cells;
            b->id_len = id_len;
            b->id = NULL;
        }
        b->len = end + 1 - b->at;
        b->lines++;
        if (!b->id) {
            char *copy = (char *)malloc(id_len + 1);
            if (!copy) return die("out of memory"), -1;
            memcpy(copy, id, id_len + 1);
            b->id = copy;
        }
        at = end + 1;
    }
    *tail = at;
    return 0;
}

static void blocks_free(block *b, int n) {
    int i;
    for (i = 0; i < n; i++) free(b[i].id);
    free(b);
}

/* Marks done[] the cases --out holds whole. A case cut short at the end of the file (a
   run killed while writing it) is cut off, to run again; anywhere else it is an error. */
static int resume(const char *path, const job *jobs, const int *order, int n_ids, char *done) {
    FILE *f = fopen(path, "rb");
    size_t len, tail;
    char *text;
    block *bl;
    int n, i;
    if (!f) return 0; /* nothing to resume */
    fclose(f);
    if (!(text = read_file(path, &len))) return -1;
    if (blocks_of(path, text, len, &bl, &n, &tail)) return free(text), -1;
    for (i = 0; i < n; i++) {
        int k = find_id(jobs, order, n_ids, bl[i].id, bl[i].id_len);
        if (k < 0 || jobs[k].index != bl[i].index) {
            blocks_free(bl, n);
            free(text);
            return die("%s holds a case (id \"%s\", case %d) that is not in the job file", path, bl[i].id, bl[i].index), -1;
        }
        if (done[k]) {
            blocks_free(bl, n);
            free(text);
            return die("%s holds case \"%s\" twice", path, bl[i].id), -1;
        }
        if (bl[i].lines != jobs[k].cells && i + 1 < n) {
            blocks_free(bl, n);
            free(text);
            return die("%s: case \"%s\" has %d of its %d lines, and more cases follow it", path, bl[i].id, bl[i].lines,
                       jobs[k].cells), -1;
        }
        if (bl[i].lines == jobs[k].cells) done[k] = 1;
        else tail = bl[i].at;
    }
    blocks_free(bl, n);
    free(text);
    if (tail < len) {
        note("%s: dropping the last case, cut short (%lu bytes); it runs again", path,
                (unsigned long)(len - tail));
        if (truncate(path, (off_t)tail)) return die("cannot truncate %s: %s", path, strerror(errno)), -1;
    }
    return 0;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void show_sweep_progress(int done, int total, long cells, double t0) {
    double dt = now() - t0;
    fprintf(stderr, "\rsweep: %d/%d cases, %.1f cells/s", done, total, dt > 0 ? cells / dt : 0.0);
    if (done > 0 && done < total) {
        long left = (long)(dt / done * (total - done));
        fprintf(stderr, ", %ld:%02ld:%02ld left ", left / 3600, left / 60 % 60, left % 60);
    }
    if (done == total) fprintf(stderr, "\n");
}

static void store_close(store *st) {
    int i;
    for (i = 0; i < st->n_models; i++) {
        example_close(st->models[i]);
        free(st->models[i]);
        free(st->model_dirs[i]);
    }
    for (i = 0; i < st->n_maps; i++) free(st->maps[i]), free(st->map_keys[i]);
    free(st->models), free(st->model_dirs), free(st->maps), free(st->map_keys);
}

#define BATCH_CELLS 256 /* cells of one ps_grid_run_many: its pass takes at most 256 */

int cmd_sweep(example *e) {
    sweep_opts_t o;
    char tail;
    memset(&o, 0, sizeof o);
    o.jobs = opt("--jobs");
    o.out = opt("--out");
    o.n_shards = 1;
    if (!o.jobs) return usage_error("give --jobs F.jsonl");
    if (opt("--shard") && (sscanf(opt("--shard"), "%d/%d%c", &o.shard, &o.n_shards, &tail) != 2 || o.n_shards < 1 ||
                           o.shard < 0 || o.shard >= o.n_shards))
        return usage_error("bad --shard %s (want K/N with 0 <= K < N)", opt("--shard"));
    if (o.out && strcmp(o.out, "-") == 0) o.out = NULL;
    if (flag("--resume") && !o.out) return usage_error("--resume needs --out");
    o.resume = flag("--resume");
    o.keep_going = flag("--keep-going");
    o.progress = flag("--progress");
    return sweep_run(e, &o);
}

int sweep_run(example *e, const sweep_opts_t *o) {
    const char *jobs_path = o->jobs, *out = o->out;
    store st;
    runner rn;
    job *jobs = NULL, **batch = NULL;
    int *order = NULL, n, n_bad, n_ids, shard = o->shard, n_shards = o->n_shards, i, rc = 0, n_run = 0, done_cases = 0;
    int nb = 0, cells = 0;
    long done_cells = 0;
    char *done = NULL;
    double t0 = now();
    memset(&st, 0, sizeof st);
    memset(&rn, 0, sizeof rn);
    st.tgt = e;
    if ((n = read_jobs(&st, jobs_path, &jobs, &n_bad, &order, &n_ids)) < 0) {
        store_close(&st);
        return CLI_FAIL;
    }
    if (n_bad && !o->keep_going) {
        rc = die("%d bad line%s in %s: nothing ran (--keep-going runs the others)", n_bad, n_bad > 1 ? "s" : "", jobs_path);
        goto done;
    }
    if (!(done = (char *)calloc((size_t)(n ? n : 1), 1)) || !(batch = (job **)malloc((size_t)(n ? n : 1) * sizeof *batch))) {
        rc = die("out of memory");
        goto done;
    }
    rn.st = &st;
    rn.fd = 1;
    if (out) {
        struct stat sb;
        if (!o->resume && stat(out, &sb) == 0 && sb.st_size > 0) {
            rc = die("%s exists: give --resume to go on with it, or remove it", out);
            goto done;
        }
        if (o->resume && resume(out, jobs, order, n_ids, done)) {
            rc = CLI_FAIL;
            goto done;
        }
        if ((rn.fd = open(out, O_WRONLY | O_CREAT | O_APPEND, 0644)) < 0) {
            rc = die("cannot open %s: %s", out, strerror(errno));
            goto done;
        }
    }
    for (i = 0; i < n; i++) /* this shard's cases, not yet done */
        if (jobs[i].id && !done[i] && fnv1a(jobs[i].id, jobs[i].id_len) % (unsigned long long)n_shards == (unsigned long long)shard)
            n_run++;
    for (i = 0; i <= n && !rc; i++) {
        job *jb = i < n ? &jobs[i] : NULL;
        if (jb && (!jb->id || done[i] || fnv1a(jb->id, jb->id_len) % (unsigned long long)n_shards != (unsigned long long)shard))
            continue;
        if (nb > 0 && (!jb || cells + jb->cells > BATCH_CELLS)) { /* the batch is full */
            rc = run_batch(&rn, batch, nb);
            done_cases += nb;
            done_cells += cells;
            if (o->progress) show_sweep_progress(done_cases, n_run, done_cells, t0);
            nb = cells = 0;
        }
        if (jb) {
            batch[nb++] = jb;
            cells += jb->cells;
        }
    }
    if (!rc && o->progress && n_run == 0) show_sweep_progress(0, 0, 0, t0);
    if (!rc && n_bad)
        rc = die("%d bad line%s in %s %s left out", n_bad, n_bad > 1 ? "s" : "", jobs_path, n_bad > 1 ? "were" : "was");
done:
    if (rn.fd > 1) close(rn.fd);
    sources_clear(&rn);
    free(rn.sources);
    for (i = 0; i < n; i++) job_free(&jobs[i]);
    free(jobs), free(order), free(done), free(batch);
    store_close(&st);
    return rc;
}

/* Job files are read for their ids alone here: merge needs no model. */
static int job_ids(const char *path, char ***ids, size_t **lens, int *n) {
    size_t len, at = 0;
    char *text = read_file(path, &len);
    int cap = 0, line = 0;
    *ids = NULL;
    *lens = NULL;
    *n = 0;
    if (!text) return -1;
    while (at < len) {
        size_t end = at, b = at;
        while (end < len && text[end] != '\n') end++;
        line++;
        while (b < end && (text[b] == ' ' || text[b] == '\t' || text[b] == '\r')) b++;
        if (b < end) {
            ps__json j;
            char key[64], id[1024];
            int r, got = 0;
            ps__json_init(&j, text + at, end - at);
            if (*n == cap) {
                char **g1 = (char **)realloc(*ids, (size_t)(cap = cap ? 2 * cap : 64) * sizeof *g1);
                size_t *g2 = g1 ? (size_t *)realloc(*lens, (size_t)cap * sizeof *g2) : NULL;
                if (g1) *ids = g1;
                if (g2) *lens = g2;
                if (!g1 || !g2) return free(text), die("out of memory"), -1;
            }
            (*ids)[*n] = NULL;
            if (!ps__json_object(&j))
                while ((r = ps__json_key(&j, key, sizeof key, NULL)) == 1) {
                    long long v;
                    if (strcmp(key, "id") != 0) {
                        if (ps__json_skip(&j)) break;
                        continue;
                    }
                    if (ps__json_peek(&j) == '"') {
                        if (ps__json_string(&j, id, sizeof id, &(*lens)[*n])) break;
                    } else {
                        if (ps__json_int(&j, -1e9, 1e9, &v)) break;
                        (*lens)[*n] = (size_t)snprintf(id, sizeof id, "%lld", v);
                    }
                    got = 1;
                }
            if (got && ((*ids)[*n] = (char *)malloc((*lens)[*n] + 1))) memcpy((*ids)[*n], id, (*lens)[*n] + 1);
            ++*n; /* a line without a readable id stays a case without an id: reported missing */
        }
        at = end + 1;
    }
    free(text);
    return 0;
}

static const block *sort_blocks;
static int by_case(const void *a, const void *b) {
    const block *x = &sort_blocks[*(const int *)a], *y = &sort_blocks[*(const int *)b];
    return (x->index > y->index) - (x->index < y->index);
}

int cmd_merge(example *unused) {
    const char *out = n_positional > 0 ? positional[0] : NULL, *jobs_path = opt("--jobs");
    char **texts, **ids = NULL, tmp[4096];
    size_t *lens = NULL, *text_len;
    block **bl;
    int *n_bl, n_in = n_positional - 1, i, k, m, total = 0, *order = NULL, n_jobs = 0, missing = 0, rc = 0;
    FILE *f;
    (void)unused;
    if (n_in < 1) return usage_error("give OUT and at least one SHARD");
    texts = (char **)calloc((size_t)n_in, sizeof *texts);
    text_len = (size_t *)calloc((size_t)n_in, sizeof *text_len);
    bl = (block **)calloc((size_t)n_in, sizeof *bl);
    n_bl = (int *)calloc((size_t)n_in, sizeof *n_bl);
    if (!texts || !text_len || !bl || !n_bl) return die("out of memory");
    for (i = 0; i < n_in && !rc; i++) {
        size_t tail;
        const char *path = positional[i + 1];
        if (!(texts[i] = read_file(path, &text_len[i])) || blocks_of(path, texts[i], text_len[i], &bl[i], &n_bl[i], &tail))
            rc = CLI_FAIL;
        else if (tail < text_len[i])
            rc = die("%s ends in a line cut short: run its sweep again with --resume", path);
        total += n_bl[i];
    }
    /* every block, ordered by case number; one case in two places is an error */
    if (!rc) {
        block *all = (block *)malloc((size_t)(total ? total : 1) * sizeof *all);
        int *src = (int *)malloc((size_t)(total ? total : 1) * sizeof *src);
        order = (int *)malloc((size_t)(total ? total : 1) * sizeof *order);
        if (!all || !src || !order) return die("out of memory");
        for (i = 0, m = 0; i < n_in; i++)
            for (k = 0; k < n_bl[i]; k++, m++) {
                all[m] = bl[i][k];
                src[m] = i;
                order[m] = m;
            }
        sort_blocks = all;
        qsort(order, (size_t)total, sizeof *order, by_case);
        for (m = 1; m < total && !rc; m++) {
            const block *a = &all[order[m - 1]], *b = &all[order[m]];
            if (a->index == b->index)
                rc = die("case %d (\"%s\") is in %s and in %s", a->index, a->id, positional[src[order[m - 1]] + 1],
                         positional[src[order[m]] + 1]);
        }
        for (m = 0; m < total && !rc; m++) /* a shard killed while writing a case */
            if (all[m].lines != all[m].cells)
                rc = die("%s: case \"%s\" has %d of its %d lines: run its sweep again with --resume",
                         positional[src[m] + 1], all[m].id, all[m].lines, all[m].cells);
        if (!rc && jobs_path && job_ids(jobs_path, &ids, &lens, &n_jobs)) rc = CLI_FAIL;
        /* what is missing: a case number never seen, or seen with another id or cut short */
        for (m = 0, k = 0; !rc && k < (jobs_path ? n_jobs : (total ? all[order[total - 1]].index + 1 : 0)); k++) {
            const block *b = m < total && all[order[m]].index == k ? &all[order[m++]] : NULL;
            if (b && jobs_path && (!ids[k] || lens[k] != b->id_len || memcmp(ids[k], b->id, b->id_len) != 0))
                rc = die("case %d is \"%s\" in the results but \"%s\" in %s: another job file?", k, b->id,
                         ids[k] ? ids[k] : "(no id)", jobs_path);
            else if (!b) {
                if (jobs_path && ids[k]) note("missing: case %d, id \"%s\"", k, ids[k]);
                else note("missing: case %d", k);
                missing++;
            }
        }
        if (!rc && jobs_path && m < total)
            rc = die("case %d is past the %d cases of %s: another job file?", all[order[m]].index, n_jobs, jobs_path);
        if (!rc && missing) rc = die("%d case%s missing: %s not written", missing, missing > 1 ? "s" : "", out);
        /* whole cases only: written to a temporary file, renamed over OUT at the end */
        if (!rc) {
            snprintf(tmp, sizeof tmp, "%s.tmp%ld", out, (long)getpid());
            if (!(f = fopen(tmp, "wb"))) rc = die("cannot write %s", tmp);
            for (m = 0; !rc && m < total; m++) {
                const block *b = &all[order[m]];
                if (fwrite(texts[src[order[m]]] + b->at, 1, b->len, f) != b->len) rc = die("cannot write %s", tmp);
            }
            if (f && fclose(f) && !rc) rc = die("cannot write %s", tmp);
            if (!rc && rename(tmp, out)) rc = die("cannot rename %s to %s: %s", tmp, out, strerror(errno));
            if (rc && f) remove(tmp);
        }
        free(all);
        free(src);
    }
    for (i = 0; i < n_in; i++) blocks_free(bl[i], n_bl[i]), free(texts[i]);
    for (i = 0; i < n_jobs; i++) free(ids[i]);
    free(ids), free(lens), free(order), free(texts), free(text_len), free(bl), free(n_bl);
    return rc;
}

/* --- summarize: mean readouts per (group, source layer, target layer), figures ------------------ */

const cli_opt summarize_opts[] = {
    {"--by", "FIELD", NULL, "also group by this field of the results: a tag (\"relation\") or a field such as id"},
    {"--metric", "NAME", "top_prob", "what the figures show: any numeric readout (precision_at_1, surprisal, "
                                     "reciprocal_rank: 1 / (rank + 1) of the first rank token, ...)"},
    {"--csv", "F", NULL, "write the table as CSV"},
    {"--heatmap", "F.svg", NULL, "the metric per (source layer, target layer), every group together"},
    {"--lines", "F.svg", NULL, "the metric per source layer (over its target layers), one line per group"},
    {"--title", "TEXT", "patchscope summarize: mean METRIC", "the figures' title"},
    {"--json", NULL, NULL, "print the table as one JSON object"},
    {NULL, NULL, NULL, NULL}};

#define MAX_METRICS 32

typedef struct agg {
    int group, ls, lt;
    long n;
    double sum[MAX_METRICS];
    long count[MAX_METRICS];
} agg;

typedef struct table {
    const char *by;
    char *metric[MAX_METRICS];
    int n_metrics;
    char **group;
    int n_groups;
    agg *cells;
    int n_cells, cap;
    int *slot, n_slots; /* open addressing over (group, ls, lt): index + 1, 0 empty */
} table;

static int metric_index(table *tb, const char *name) {
    int i;
    for (i = 0; i < tb->n_metrics; i++)
        if (strcmp(tb->metric[i], name) == 0) return i;
    if (tb->n_metrics == MAX_METRICS || !(tb->metric[i] = (char *)malloc(strlen(name) + 1))) return -1;
    strcpy(tb->metric[i], name);
    return tb->n_metrics++;
}

static int group_index(table *tb, const char *name) {
    int i;
    char **grown;
    for (i = 0; i < tb->n_groups; i++)
        if (strcmp(tb->group[i], name) == 0) return i;
    if (!(grown = (char **)realloc(tb->group, (size_t)(i + 1) * sizeof *grown))) return -1;
    tb->group = grown;
    if (!(grown[i] = (char *)malloc(strlen(name) + 1))) return -1;
    strcpy(grown[i], name);
    return tb->n_groups++;
}

static unsigned agg_hash(int g, int ls, int lt) { return (unsigned)g * 2654435761u ^ (unsigned)ls * 40503u ^ (unsigned)lt * 97u; }

static agg *agg_cell(table *tb, int g, int ls, int lt) {
    unsigned h;
    int i;
    if (2 * (tb->n_cells + 1) > tb->n_slots) { /* grow the slots, then the cells */
        int n = tb->n_slots ? 2 * tb->n_slots : 1024, *slot = (int *)calloc((size_t)n, sizeof(int));
        if (!slot) return NULL;
        for (i = 0; i < tb->n_cells; i++) {
            agg *a = &tb->cells[i];
            for (h = agg_hash(a->group, a->ls, a->lt) & (unsigned)(n - 1); slot[h]; h = (h + 1) & (unsigned)(n - 1)) {}
            slot[h] = i + 1;
        }
        free(tb->slot);
        tb->slot = slot;
        tb->n_slots = n;
    }
    for (h = agg_hash(g, ls, lt) & (unsigned)(tb->n_slots - 1); tb->slot[h]; h = (h + 1) & (unsigned)(tb->n_slots - 1)) {
        agg *a = &tb->cells[tb->slot[h] - 1];
        if (a->group == g && a->ls == ls && a->lt == lt) return a;
    }
    if (tb->n_cells == tb->cap) {
        agg *grown = (agg *)realloc(tb->cells, (size_t)(tb->cap = tb->cap ? 2 * tb->cap : 256) * sizeof *grown);
        if (!grown) return NULL;
        tb->cells = grown;
    }
    memset(&tb->cells[tb->n_cells], 0, sizeof(agg));
    tb->cells[tb->n_cells].group = g;
    tb->cells[tb->n_cells].ls = ls;
    tb->cells[tb->n_cells].lt = lt;
    tb->slot[h] = ++tb->n_cells;
    return &tb->cells[tb->n_cells - 1];
}

/* a field's value as group text: a string as it reads, a number as written */
static int group_text(ps__json *j, char *out, size_t cap) {
    const char *at;
    if (ps__json_peek(j) == '"') return ps__json_string(j, out, cap, NULL);
    at = j->p;
    if (ps__json_skip(j) || (size_t)(j->p - at) >= cap) return -1;
    memcpy(out, at, (size_t)(j->p - at));
    out[j->p - at] = 0;
    return 0;
}

/* One result line into the table; -1 when it is not one. */
static int summarize_line(table *tb, const char *line, size_t len) {
    static const char *const structural[] = {"case", "cells", "source_layer", "target_layer", "top_id"};
    ps__json j;
    char key[128], group[256] = "";
    double vals[MAX_METRICS];
    int idx[MAX_METRICS], n = 0, r, i, ls = -1, lt = -1, g;
    agg *a;
    ps__json_init(&j, line, len);
    if (ps__json_object(&j)) return -1;
    while ((r = ps__json_key(&j, key, sizeof key, NULL)) == 1) {
        int c = ps__json_peek(&j), k;
        double v;
        long long iv;
        if (tb->by && strcmp(key, tb->by) == 0 && c != '{' && c != '[') {
            if (group_text(&j, group, sizeof group)) return -1;
        } else if (strcmp(key, "source_layer") == 0 || strcmp(key, "target_layer") == 0) {
            if (ps__json_int(&j, 0, 1e6, &iv)) return -1;
            *(key[0] == 's' ? &ls : &lt) = (int)iv;
        } else if (strcmp(key, "tags") == 0 && c == '{' && tb->by) {
            if (ps__json_object(&j)) return -1;
            while ((r = ps__json_key(&j, key, sizeof key, NULL)) == 1)
                if (strcmp(key, tb->by) == 0 ? group_text(&j, group, sizeof group) : ps__json_skip(&j)) return -1;
            if (r < 0) return -1;
        } else if (strcmp(key, "ranks") == 0 && c == '[') { /* the first token's reciprocal rank */
            if (ps__json_array(&j)) return -1;
            for (k = 0; (r = ps__json_item(&j)) == 1; k++) {
                if (ps__json_int(&j, -1, 1e9, &iv)) return -1;
                if (k == 0 && iv >= 0 && n < MAX_METRICS && (idx[n] = metric_index(tb, "reciprocal_rank")) >= 0)
                    vals[n++] = 1.0 / (double)(iv + 1);
            }
            if (r < 0) return -1;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            if (ps__json_number(&j, &v, NULL)) return -1;
            for (k = 0; k < 5 && strcmp(key, structural[k]) != 0; k++) {}
            if (k == 5 && n < MAX_METRICS && (idx[n] = metric_index(tb, key)) >= 0) vals[n++] = v;
        } else if (ps__json_skip(&j)) return -1; /* strings, arrays, null */
    }
    if (r < 0 || ps__json_done(&j) || ls < 0 || lt < 0) return -1;
    if ((g = group_index(tb, tb->by && !group[0] ? "(none)" : group)) < 0 || !(a = agg_cell(tb, g, ls, lt))) return -1;
    a->n++;
    for (i = 0; i < n; i++) {
        a->sum[idx[i]] += vals[i];
        a->count[idx[i]]++;
    }
    return 0;
}

static int by_cell(const void *x, const void *y) {
    const agg *a = (const agg *)x, *b = (const agg *)y;
    if (a->group != b->group) return a->group - b->group;
    return a->ls != b->ls ? a->ls - b->ls : a->lt - b->lt;
}

static double agg_mean(const agg *a, int m) { return m >= 0 && a->count[m] ? a->sum[m] / (double)a->count[m] : NAN; }

/* the distinct values of a layer field (0: ls, 1: lt) over the cells, sorted */
static int distinct_layers(const table *tb, int which, int *out) {
    int i, k, n = 0;
    for (i = 0; i < tb->n_cells; i++) {
        int l = which ? tb->cells[i].lt : tb->cells[i].ls;
        for (k = 0; k < n && out[k] != l; k++) {}
        if (k == n && n < MAX_LAYERS) out[n++] = l;
    }
    for (i = 1; i < n; i++) /* insertion sort: a few hundred at most */
        for (k = i; k > 0 && out[k - 1] > out[k]; k--) {
            int t = out[k];
            out[k] = out[k - 1];
            out[k - 1] = t;
        }
    return n;
}

static int layer_at(const int *list, int n, int l) {
    int i;
    for (i = 0; i < n && list[i] != l; i++) {}
    return i;
}

static int summary_heatmap(const table *tb, int m, const char *metric, const char *title_opt, const char *path) {
    int rows[MAX_LAYERS], cols[MAX_LAYERS], nr = distinct_layers(tb, 0, rows), nc = distinct_layers(tb, 1, cols);
    int i, diagonal = 1, rc = 0;
    double *sum = (double *)calloc((size_t)nr * nc * 2, sizeof(double));
    float *value = (float *)calloc((size_t)nr * nc, sizeof(float));
    char title[256];
    ps__heatmap h; /* the header's heatmap writer, which this file (the implementation) sees */
    for (i = 0; i < tb->n_cells; i++) diagonal &= tb->cells[i].ls == tb->cells[i].lt;
    if (diagonal) nc = 1;
    if (!sum || !value || ps__heatmap_alloc(&h, nr, nc, 1)) return free(sum), free(value), die("out of memory");
    for (i = 0; i < tb->n_cells; i++) { /* every group together */
        const agg *a = &tb->cells[i];
        int at = layer_at(rows, nr, a->ls) * nc + (diagonal ? 0 : layer_at(cols, nc, a->lt));
        if (m >= 0 && a->count[m]) sum[2 * at] += a->sum[m], sum[2 * at + 1] += (double)a->count[m];
    }
    h.lo = INFINITY;
    h.hi = -INFINITY;
    for (i = 0; i < nr * nc; i++)
        if (sum[2 * i + 1] > 0) {
            value[i] = (float)(sum[2 * i] / sum[2 * i + 1]);
            if (value[i] < h.lo) h.lo = value[i];
            if (value[i] > h.hi) h.hi = value[i];
            snprintf(h.cell[i], 32, "%.3g", value[i]);
        }
    if (h.lo > h.hi) h.lo = h.hi = 0;
    for (i = 0; i < nr * nc; i++)
        if (sum[2 * i + 1] == 0) value[i] = h.lo; /* no data: the lowest colour, no label */
    for (i = 0; i < nr; i++) snprintf(h.row[i], 32, "%d", rows[i]);
    for (i = 0; i < nc; i++) snprintf(h.col[i], 32, diagonal ? "same as the source" : "%d", cols[i]);
    snprintf(title, sizeof title, "patchscope summarize: mean %s", metric);
    h.cell_w = nc == 1 ? 240 : 64;
    h.value = value;
    h.title = title_opt ? title_opt : title;
    h.x_title = "Target layer";
    h.y_title = "Source layer";
    h.bar_title = metric;
    if (ps__heatmap_save(&h, path)) rc = die("cannot write %s", path);
    PS_FREE(h.row);
    free(sum);
    free(value);
    return rc;
}

static int summary_lines(const table *tb, int m, const char *metric, const char *title_opt, const char *path) {
    int xs[MAX_LAYERS], nx = distinct_layers(tb, 0, xs), i, rc = 0, unit = 1;
    double *sum = (double *)calloc((size_t)tb->n_groups * nx * 2, sizeof(double));
    double *val = (double *)calloc((size_t)tb->n_groups * nx, sizeof(double));
    char title[256];
    if (!sum || !val) return free(sum), free(val), die("out of memory");
    for (i = 0; i < tb->n_cells; i++) { /* over each source layer's target layers */
        const agg *a = &tb->cells[i];
        int at = a->group * nx + layer_at(xs, nx, a->ls);
        if (m >= 0 && a->count[m]) sum[2 * at] += a->sum[m], sum[2 * at + 1] += (double)a->count[m];
    }
    for (i = 0; i < tb->n_groups * nx; i++) {
        val[i] = sum[2 * i + 1] > 0 ? sum[2 * i] / sum[2 * i + 1] : NAN;
        if (val[i] < 0 || val[i] > 1) unit = 0;
    }
    snprintf(title, sizeof title, "patchscope summarize: mean %s per source layer", metric);
    if (ps_lines_save_svg(path, title_opt ? title_opt : title, "source layer", tb->n_groups,
                          (const char *const *)tb->group, val, xs, nx, 0, unit)) /* 0..1 when the values allow */
        rc = die("cannot write %s", path);
    free(sum);
    free(val);
    return rc;
}

int cmd_summarize(example *unused) {
    summary_opts_t o;
    (void)unused;
    if (n_positional < 1) return usage_error("give the results to summarize (RESULTS.jsonl ...)");
    o.paths = (const char *const *)positional;
    o.n_paths = n_positional;
    o.by = opt("--by");
    o.metric = opt("--metric") ? opt("--metric") : "top_prob";
    o.csv = opt("--csv");
    o.heatmap = opt("--heatmap");
    o.lines = opt("--lines");
    o.title = opt("--title");
    o.json = json ? stdout : NULL;
    o.table = !json;
    return summarize(&o);
}

int summarize(const summary_opts_t *o) {
    const char *metric = o->metric;
    table tb;
    int i, k, m, rc = 0;
    FILE *csv = NULL, *js = o->json;
    memset(&tb, 0, sizeof tb);
    tb.by = o->by;
    for (i = 0; i < o->n_paths && !rc; i++) {
        size_t len, at = 0;
        char *text = read_file(o->paths[i], &len);
        int line = 0;
        if (!text) rc = CLI_FAIL;
        while (text && !rc && at < len) {
            size_t end = at;
            while (end < len && text[end] != '\n') end++;
            line++;
            if (end > at && summarize_line(&tb, text + at, end - at))
                rc = die("%s:%d: not a result line of patchscope sweep", o->paths[i], line);
            at = end + 1;
        }
        free(text);
    }
    qsort(tb.cells, (size_t)tb.n_cells, sizeof *tb.cells, by_cell);
    for (m = 0; m < tb.n_metrics && strcmp(tb.metric[m], metric) != 0; m++) {}
    if (!rc && (o->heatmap || o->lines) && m == tb.n_metrics)
        rc = die("no result has a numeric \"%s\" to draw", metric);
    if (!rc && o->heatmap) rc = summary_heatmap(&tb, m, metric, o->title, o->heatmap);
    if (!rc && o->lines) rc = summary_lines(&tb, m, metric, o->title, o->lines);
    if (!rc && o->csv && !(csv = fopen(o->csv, "w"))) rc = die("cannot write %s", o->csv);
    if (!rc && csv) {
        fprintf(csv, "%ssource_layer,target_layer,n", tb.by ? "group," : "");
        for (k = 0; k < tb.n_metrics; k++) fprintf(csv, ",%s", tb.metric[k]);
        fprintf(csv, "\n");
        for (i = 0; i < tb.n_cells; i++) {
            const agg *a = &tb.cells[i];
            if (tb.by) {
                const char *c;
                fputc('"', csv);
                for (c = tb.group[a->group]; *c; c++) fprintf(csv, *c == '"' ? "\"\"" : "%c", *c);
                fputs("\",", csv);
            }
            fprintf(csv, "%d,%d,%ld", a->ls, a->lt, a->n);
            for (k = 0; k < tb.n_metrics; k++) {
                double v = agg_mean(a, k);
                if (v == v) fprintf(csv, ",%.9g", v);
                else fputc(',', csv);
            }
            fprintf(csv, "\n");
        }
        if (fclose(csv)) rc = die("cannot write %s", o->csv);
    }
    cli_out = js;
    if (!rc && js) {
        fprintf(js, "{\"by\": ");
        if (tb.by) print_json_string(tb.by);
        else fprintf(js, "null");
        fprintf(js, ", \"metrics\": [");
        for (k = 0; k < tb.n_metrics; k++) {
            fprintf(js, k ? ", " : "");
            print_json_string(tb.metric[k]);
        }
        fprintf(js, "], \"cells\": [");
        for (i = 0; i < tb.n_cells; i++) {
            const agg *a = &tb.cells[i];
            fprintf(js, i ? ",\n  {" : "\n  {");
            if (tb.by) {
                fprintf(js, "\"group\": ");
                print_json_string(tb.group[a->group]);
                fprintf(js, ", ");
            }
            fprintf(js, "\"source_layer\": %d, \"target_layer\": %d, \"n\": %ld", a->ls, a->lt, a->n);
            for (k = 0; k < tb.n_metrics; k++) {
                fprintf(js, ", ");
                print_json_string(tb.metric[k]);
                fprintf(js, ": ");
                print_number(agg_mean(a, k));
            }
            fprintf(js, "}");
        }
        fprintf(js, "]}\n");
    }
    cli_out = NULL;
    if (!rc && o->table) {
        printf("%-16s %6s %6s %6s", tb.by ? tb.by : "", "source", "target", "n");
        for (k = 0; k < tb.n_metrics; k++) printf(" %16.16s", tb.metric[k]);
        printf("\n");
        for (i = 0; i < tb.n_cells; i++) {
            const agg *a = &tb.cells[i];
            printf("%-16.16s %6d %6d %6ld", tb.by ? tb.group[a->group] : "", a->ls, a->lt, a->n);
            for (k = 0; k < tb.n_metrics; k++) printf(" %16.6g", agg_mean(a, k));
            printf("\n");
        }
    }
    for (k = 0; k < tb.n_metrics; k++) free(tb.metric[k]);
    for (k = 0; k < tb.n_groups; k++) free(tb.group[k]);
    free(tb.group), free(tb.cells), free(tb.slot);
    return rc;
}

/* --- result lines for other commands ------------------------------------------------------- */

int json_field(const char *line, size_t len, const char *path, char *out, size_t cap) {
    ps__json j;
    char key[128];
    int r;
    ps__json_init(&j, line, len);
    for (;;) {
        const char *dot = strchr(path, '.');
        size_t klen = dot ? (size_t)(dot - path) : strlen(path);
        if (ps__json_peek(&j) != '{' || ps__json_object(&j)) return -1;
        while ((r = ps__json_key(&j, key, sizeof key, NULL)) == 1) {
            if (strlen(key) == klen && memcmp(key, path, klen) == 0) break;
            if (ps__json_skip(&j)) return -1;
        }
        if (r != 1) return -1;
        if (!dot) return ps__json_peek(&j) == '{' || ps__json_peek(&j) == '[' ? -1 : group_text(&j, out, cap);
        path = dot + 1;
    }
}
