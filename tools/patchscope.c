/* patchscope - the command line front end of patchscope.h.

     patchscope run      [--model DIR] (--ids 1,2,3 | --prompt TEXT) [--all-logits] [--dump POINT,...] [--json]
     patchscope generate [--model DIR] (--ids 1,2,3 | --prompt TEXT) -n N [--json]
     patchscope tokenize [TEXT | --file F | -] [--model DIR] [--json]
     patchscope decode   464,3139 ... [--model DIR]
     patchscope grid     [--model DIR] --source-prompt S (--source-token TOK | --source-pos P)
                         [--target-prompt T] [--target-pos P] [--source-layers A-B] [--target-layers A-B]
                         [--site POINT] [--source-model DIR --map A.f32] [--svg F] [--csv F] [--progress] [--json]
     patchscope inspect  [--model DIR] --source-prompt S (--source-token TOK | --source-pos P) --source-layer L
                         [--target-prompt T] [--target-pos P] --target-layer L [-n N] [--site POINT]
                         [--source-model DIR --map A.f32] [--json]
     patchscope lens     [--model DIR] --prompt S [--pos P] [--tokens " Poland"," Warsaw"] [--json]
     patchscope fit      --source-model DIR [--model DIR] --prompts FILE --source-layer L --target-layer L
                         --out A.f32 [--ridge R]

   Every command also takes --threads N. The model defaults to weights/gpt2 when it has
   been downloaded, else the tiny model in weights/tiny; the tokenizer is the model's or
   the committed weights/ files. Errors go to stderr with a non-zero exit status; floats
   print with %.9g so they read back exactly. A map file (fit writes one) is the affine
   map's (d_src + 1) x d_tgt floats, row-major, little-endian F32. */
#define PATCHSCOPE_IMPLEMENTATION
#include "../patchscope.h"
#include "../examples/example.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int die(const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "patchscope: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    return 1;
}

static int usage(void) {
    fprintf(stderr,
            "usage: patchscope run|generate|tokenize|decode|grid|inspect|lens|fit [options]\n"
            "       (see the top of tools/patchscope.c or the README for each command's options)\n"
            "points: embed resid_pre q k v pattern z attn_out resid_mid mlp_pre mlp_post mlp_out resid_post ln_final logits\n");
    return 2;
}

/* --- arguments ------------------------------------------------------------------------- */

static int argc_, json, n_positional;
static char **argv_, *positional[64];

/* every "--name value" must be a known option; values are looked up by name */
static const char *opt(const char *name) { return example_arg(argc_, argv_, name, NULL); }
static int flag(const char *name) { return example_flag(argc_, argv_, name); }

static int int_opt(const char *name, int def, int *out) {
    const char *v = opt(name);
    char *end;
    long x;
    if (!v) { *out = def; return 1; }
    x = strtol(v, &end, 10);
    if (!*v || *end || x < -1000000 || x > 1000000) return die("bad %s: %s", name, v), 0;
    *out = (int)x;
    return 1;
}

/* "A-B" or "A" into [a, b], defaulting to [lo, hi] */
static int range_opt(const char *name, int lo, int hi, int *a, int *b) {
    const char *v = opt(name);
    if (!v) { *a = lo; *b = hi; return 1; }
    if (sscanf(v, "%d-%d", a, b) == 2 || (sscanf(v, "%d", a) == 1 && (*b = *a, 1))) return 1;
    return die("bad %s: %s (want A-B)", name, v), 0;
}

/* "464,3139,286" (or several such arguments) into a malloc'd list */
static int *parse_ids(const char *s, int *n) {
    int cap = 16, *ids = (int *)malloc((size_t)cap * sizeof(int));
    *n = 0;
    while (ids && *s) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 0 || v > 0x7fffffff) { free(ids); return NULL; }
        if (*n == cap) ids = (int *)realloc(ids, (size_t)(cap *= 2) * sizeof(int));
        if (ids) ids[(*n)++] = (int)v;
        s = end;
        while (*s == ',' || *s == ' ') s++;
    }
    if (ids && !*n) { free(ids); return NULL; }
    return ids;
}

/* the prompt of --ids or --prompt */
static int *prompt_ids(const example *e, const char *ids_name, const char *text_name, int *n) {
    const char *ids = opt(ids_name), *text = opt(text_name);
    int *out;
    if (ids) {
        if (!(out = parse_ids(ids, n))) die("bad %s list: %s", ids_name, ids);
        return out;
    }
    if (text) return example_encode(e, text, n);
    die("give %s or %s", ids_name, text_name);
    return NULL;
}

/* --- output ---------------------------------------------------------------------------- */

static void print_floats(const float *x, int n) {
    int i;
    putchar('[');
    for (i = 0; i < n; i++) printf(i ? ",%.9g" : "%.9g", x[i]);
    putchar(']');
}

static void print_ints(const int *x, int n) {
    int i;
    putchar('[');
    for (i = 0; i < n; i++) printf(i ? ",%d" : "%d", x[i]);
    putchar(']');
}

/* a JSON string; labels are valid UTF-8 already (ps_token_label escapes the rest) */
static void print_json_string(const char *s) {
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20) printf("\\u%04x", *s);
        else putchar(*s);
    }
    putchar('"');
}

static void print_token(const example *e, int id) {
    char label[256];
    ps_token_label(e->t, id, label, sizeof label);
    print_json_string(label);
}

static int layerless(ps_point p) { return p == PS_EMBED || p == PS_LN_FINAL || p == PS_LOGITS; }

/* --- run, generate, tokenize, decode ----------------------------------------------------- */

static int cmd_run(example *e) {
    const ps_config *cfg = ps_model_config(e->m);
    int V = cfg->n_vocab, L = cfg->n_layer, T, i, l, t, k = 0, top[5];
    int *ids = prompt_ids(e, "--ids", "--prompt", &T);
    float *probs = (float *)malloc((size_t)V * sizeof(float)), topp[5];
    ps_capture caps[PS_POINT_COUNT];
    char list[256], *tok;
    if (!ids || !probs) return 1;
    if (opt("--dump")) {
        snprintf(list, sizeof list, "%s", opt("--dump"));
        for (tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
            int p = ps_point_from_name(tok);
            if (p < 0 || k == PS_POINT_COUNT) return die("unknown hook point %s", tok);
            caps[k].point = (ps_point)p;
            caps[k].layer = PS_ALL_LAYERS;
            caps[k].out = (float *)malloc((size_t)T * (layerless(caps[k].point) ? 1 : L) *
                                          ps_point_width(e->m, caps[k].point, T) * sizeof(float));
            if (!caps[k++].out) return die("out of memory");
        }
    }
    if (ps_run_with_cache(e->c, ids, T, flag("--all-logits") ? PS_ALL_LOGITS : 0, caps, k))
        return die("%s", ps_ctx_error(e->c));
    ps_softmax(ps_logits(e->c, ps_logits_rows(e->c) - 1), V, probs);
    ps_top_k(probs, V, 5, top, topp);
    if (!json) {
        printf("top 5 at position %d:\n", T - 1);
        for (i = 0; i < 5; i++) {
            printf("  %6d  %.6f  ", top[i], topp[i]);
            print_token(e, top[i]);
            printf("\n");
        }
        goto done;
    }
    printf("{\"ids\": ");
    print_ints(ids, T);
    printf(", \"logits\": [");
    for (i = 0; i < ps_logits_rows(e->c); i++) {
        if (i) putchar(',');
        print_floats(ps_logits(e->c, i), V);
    }
    printf("], \"top\": [");
    for (i = 0; i < 5; i++) printf("%s{\"id\": %d, \"prob\": %.9g}", i ? ", " : "", top[i], topp[i]);
    printf("]");
    for (i = 0; i < k; i++) { /* [layer][position][width], no layer level for layerless points */
        int w = ps_point_width(e->m, caps[i].point, T), n_l = layerless(caps[i].point) ? 1 : L;
        printf(i ? ", \"%s\": [" : ", \"dump\": {\"%s\": [", ps_point_name(caps[i].point));
        for (l = 0; l < n_l; l++) {
            if (n_l > 1) printf(l ? ",[" : "[");
            for (t = 0; t < T; t++) {
                if (t) putchar(',');
                print_floats(caps[i].out + ((size_t)l * T + t) * w, w);
            }
            if (n_l > 1) putchar(']');
        }
        printf("]");
    }
    printf(k ? "}}\n" : "}\n");
done:
    for (i = 0; i < k; i++) free(caps[i].out);
    free(ids);
    free(probs);
    return 0;
}

static int cmd_generate(example *e) {
    int n, n_new, *ids = prompt_ids(e, "--ids", "--prompt", &n), *all, i;
    char *text;
    size_t len;
    if (!ids || !int_opt("-n", 16, &n_new) || n_new < 0) return 1;
    all = (int *)malloc(((size_t)n + n_new) * sizeof(int));
    if (!all) return die("out of memory");
    memcpy(all, ids, (size_t)n * sizeof(int));
    if (ps_generate(e->c, ids, n, n_new, all + n)) return die("%s", ps_ctx_error(e->c));
    ps_decode(e->t, all, n + n_new, NULL, 0, &len);
    text = (char *)malloc(len + 1);
    if (!text || ps_decode(e->t, all, n + n_new, text, len, &len)) return die("cannot decode the ids");
    text[len] = 0;
    if (json) {
        printf("{\"ids\": ");
        print_ints(all, n + n_new);
        printf(", \"text\": ");
        print_json_string(text); /* the model's vocabulary decodes to UTF-8 in practice */
        printf("}\n");
    } else {
        for (i = 0; i < n + n_new; i++) printf(i ? ",%d" : "%d", all[i]);
        printf("\n%s\n", text);
    }
    free(all); free(ids); free(text);
    return 0;
}

/* the text: the positional argument, --file F, or - for standard input */
static char *read_text(size_t *len) {
    const char *file = opt("--file");
    FILE *f = NULL;
    char *buf;
    size_t cap = 1 << 16;
    if (!file && n_positional == 1 && strcmp(positional[0], "-") != 0) {
        *len = strlen(positional[0]);
        return strcpy((char *)malloc(*len + 1), positional[0]);
    }
    if (file) f = fopen(file, "rb");
    else if (n_positional == 1) f = stdin;
    else return die("give one TEXT, --file F or -"), NULL;
    if (!f) return die("cannot open %s", file), NULL;
    buf = (char *)malloc(cap);
    *len = 0;
    while (buf && (*len += fread(buf + *len, 1, cap - *len, f)) == cap) buf = (char *)realloc(buf, cap *= 2);
    if (f != stdin) fclose(f);
    return buf;
}

static int cmd_tokenize(ps_tokenizer *t) {
    size_t len;
    char *text = read_text(&len);
    int n, *ids, i;
    if (!text) return 1;
    ps_encode(t, text, len, 0, NULL, 0, &n);
    ids = (int *)malloc((size_t)(n ? n : 1) * sizeof(int));
    if (!ids || ps_encode(t, text, len, 0, ids, n, &n)) return die("cannot encode");
    if (json) print_ints(ids, n);
    else for (i = 0; i < n; i++) printf(i ? ",%d" : "%d", ids[i]);
    printf("\n");
    free(ids);
    free(text);
    return 0;
}

static int cmd_decode(ps_tokenizer *t) {
    int i, n;
    for (i = 0; i < n_positional; i++) {
        int *ids;
        char *text;
        size_t len;
        if (!(ids = parse_ids(positional[i], &n))) return die("bad id list: %s", positional[i]);
        if (ps_decode(t, ids, n, NULL, 0, &len) == PS_ERR_RANGE && len == 0) return die("an id is outside the vocabulary");
        text = (char *)malloc(len + 1);
        if (!text || ps_decode(t, ids, n, text, len, &len)) return die("cannot decode");
        fwrite(text, 1, len, stdout);
        free(text);
        free(ids);
    }
    printf("\n");
    return 0;
}

/* --- Patchscopes: grid, inspect, lens, fit ------------------------------------------------ */

/* the source side of a patch: its model (the target's unless --source-model), prompt and
   position (--source-token's last occurrence, or --source-pos, default the last token) */
typedef struct side {
    example own, *e;
    int *ids, n, pos;
    ps_source src;
    float *map;
} side;

static float *read_map(const char *path, int d_src, int d_tgt) {
    size_t want = (size_t)(d_src + 1) * d_tgt, got;
    float *A = (float *)malloc(want * sizeof(float));
    FILE *f = fopen(path, "rb");
    if (!f || !A) return die("cannot read the map %s", path), NULL;
    got = fread(A, sizeof(float), want, f);
    if (got != want || fgetc(f) != EOF) {
        fclose(f);
        return die("%s must hold (%d + 1) x %d floats for these models", path, d_src, d_tgt), NULL;
    }
    fclose(f);
    return A;
}

static int source_side(example *tgt, side *s, ps_point site) {
    const char *token = opt("--source-token");
    memset(s, 0, sizeof *s);
    s->e = tgt;
    if (opt("--source-model")) {
        if (example_open(&s->own, opt("--source-model"), "weights/gpt2", 1)) return 0;
        s->e = &s->own;
        if (!opt("--map")) return die("--source-model needs --map A.f32 (patchscope fit makes one)"), 0;
        if (!(s->map = read_map(opt("--map"), ps_point_width(s->e->m, site, 0), ps_point_width(tgt->m, site, 0)))) return 0;
    }
    if (!(s->ids = prompt_ids(s->e, "--source-ids", "--source-prompt", &s->n))) return 0;
    if (token) {
        if ((s->pos = ps_find_text(s->e->t, s->ids, s->n, token)) < 0) return die("\"%s\" is not in the source prompt", token), 0;
    } else if (!int_opt("--source-pos", -1, &s->pos)) return 0;
    if (ps_source_run(s->e->c, s->ids, s->n, site, &s->pos, 1, &s->src)) return die("%s", ps_ctx_error(s->e->c)), 0;
    s->pos = s->src.pos[0];
    return 1;
}

static void side_free(side *s) {
    ps_source_free(&s->src);
    free(s->ids);
    free(s->map);
    if (s->e == &s->own) example_close(&s->own);
}

static int site_opt(ps_point *site) {
    const char *v = opt("--site");
    int p = v ? ps_point_from_name(v) : PS_RESID_POST;
    if (p < 0) return die("unknown site %s", v), 0;
    *site = (ps_point)p;
    return 1;
}

static int show_progress(int done, int total, void *user) {
    (void)user;
    fprintf(stderr, "\rgrid: %d/%d cells", done, total);
    if (done == total) fprintf(stderr, "\n");
    return 0;
}

static int cmd_grid(example *e) {
    int L = ps_model_config(e->m)->n_layer, n_tgt, *tgt, i, j;
    ps_point site;
    side s;
    ps_grid_spec spec;
    ps_grid g;
    memset(&spec, 0, sizeof spec);
    if (!site_opt(&site) || !source_side(e, &s, site)) return 1;
    tgt = opt("--target-prompt") || opt("--target-ids") ? prompt_ids(e, "--target-ids", "--target-prompt", &n_tgt)
                                                        : (n_tgt = s.n, s.ids); /* the seed's B/C setup */
    if (!tgt || !int_opt("--target-pos", -1, &spec.tgt_pos) ||
        !range_opt("--source-layers", 0, s.src.n_layer - 1, &spec.src_first, &spec.src_last) ||
        !range_opt("--target-layers", 0, L - 1, &spec.tgt_first, &spec.tgt_last))
        return 1;
    spec.src = &s.src;
    spec.src_pos = s.pos;
    spec.target = tgt;
    spec.n_target = n_tgt;
    spec.map.affine = s.map;
    if (flag("--progress")) spec.progress = show_progress;
    if (ps_grid_run(e->c, &spec, &g)) return die("%s", ps_ctx_error(e->c));
    if ((opt("--svg") && ps_grid_save_svg(&g, e->t, "patchscope grid", opt("--svg"))) ||
        (opt("--csv") && ps_grid_save_csv(&g, e->t, opt("--csv"))))
        return die("cannot write the figure or table");
    if (json) {
        printf("{\"source_layers\": [");
        for (i = 0; i < g.n_src; i++) printf(i ? ", %d" : "%d", g.src_first + i);
        printf("], \"target_layers\": [");
        for (j = 0; j < g.n_tgt; j++) printf(j ? ", %d" : "%d", g.tgt_first + j);
        printf("], \"top_token_id\": [");
        for (i = 0; i < g.n_src; i++) {
            printf(i ? ", " : "");
            print_ints(g.top_id + i * g.n_tgt, g.n_tgt);
        }
        printf("], \"top_token\": [");
        for (i = 0; i < g.n_src; i++) {
            printf(i ? ", [" : "[");
            for (j = 0; j < g.n_tgt; j++) {
                printf(j ? ", " : "");
                print_token(e, g.top_id[i * g.n_tgt + j]);
            }
            printf("]");
        }
        printf("], \"top_prob\": [");
        for (i = 0; i < g.n_src; i++) {
            printf(i ? ", " : "");
            print_floats(g.top_prob + i * g.n_tgt, g.n_tgt);
        }
        printf("]}\n");
    } else {
        char label[64];
        printf("src\\tgt");
        for (j = 0; j < g.n_tgt; j++) printf("%12d", g.tgt_first + j);
        for (i = 0; i < g.n_src; i++) {
            printf("\n%7d", g.src_first + i);
            for (j = 0; j < g.n_tgt; j++) {
                ps_token_label(e->t, g.top_id[i * g.n_tgt + j], label, sizeof label);
                printf(" %-7.7s%4.2f", label, g.top_prob[i * g.n_tgt + j]);
            }
        }
        printf("\n");
    }
    ps_grid_free(&g);
    if (tgt != s.ids) free(tgt);
    side_free(&s);
    return 0;
}

static int cmd_inspect(example *e) {
    int V = ps_model_config(e->m)->n_vocab, n_tgt, *tgt, ls, n_new, i, *gen;
    float *probs = (float *)malloc((size_t)V * sizeof(float)), *unpatched = (float *)malloc((size_t)V * sizeof(float));
    ps_readout r;
    ps_patch p;
    side s;
    memset(&p, 0, sizeof p);
    if (!probs || !unpatched || !site_opt(&p.site) || !source_side(e, &s, p.site)) return 1;
    tgt = opt("--target-prompt") || opt("--target-ids") ? prompt_ids(e, "--target-ids", "--target-prompt", &n_tgt)
                                                        : (n_tgt = s.n, s.ids);
    if (!tgt || !int_opt("--source-layer", -1, &ls) || !int_opt("--target-layer", -1, &p.layer) ||
        !int_opt("--target-pos", -1, &p.pos) || !int_opt("-n", 0, &n_new) || n_new < 0)
        return 1;
    if (!(p.vec = ps_source_state(&s.src, ls, s.pos))) return die("--source-layer %d is outside 0..%d", ls, s.src.n_layer - 1);
    p.d_src = s.src.width;
    p.map.affine = s.map;
    gen = (int *)malloc((size_t)(n_new + 1) * sizeof(int));
    /* the unpatched target first: precision@1 and surprisal are measured against it */
    ps_ctx_reset(e->c);
    if (ps_forward(e->c, tgt, n_tgt, 0)) return die("%s", ps_ctx_error(e->c));
    ps_softmax(ps_logits(e->c, 0), V, unpatched);
    if (ps_inspect(e->c, &p, tgt, n_tgt, probs, n_new, gen)) return die("%s", ps_ctx_error(e->c));
    ps_readout_fill(probs, unpatched, V, &r);
    if (json) {
        printf("{\"top_token_id\": ");
        print_ints(r.top_id, PS_TOP_K);
        printf(", \"top_token\": [");
        for (i = 0; i < PS_TOP_K; i++) {
            printf(i ? ", " : "");
            print_token(e, r.top_id[i]);
        }
        printf("], \"top_prob\": ");
        print_floats(r.top_prob, PS_TOP_K);
        printf(", \"precision_at_1\": %d, \"surprisal\": %.9g, \"generated_ids\": ", r.precision_at_1, r.surprisal);
        print_ints(gen, n_new);
        printf("}\n");
    } else {
        printf("source layer %d, position %d -> target layer %d, readout at the last target position\n", ls, s.pos, p.layer);
        for (i = 0; i < PS_TOP_K; i++) {
            printf("  %.4f  ", r.top_prob[i]);
            print_token(e, r.top_id[i]);
            printf("\n");
        }
        printf("precision@1 %d, surprisal %.3f nats\n", r.precision_at_1, r.surprisal);
        if (n_new) {
            printf("generated:");
            for (i = 0; i < n_new; i++) {
                printf(" ");
                print_token(e, gen[i]);
            }
            printf("\n");
        }
    }
    if (tgt != s.ids) free(tgt);
    side_free(&s);
    free(probs); free(unpatched); free(gen);
    return 0;
}

static int cmd_lens(example *e) {
    const ps_config *cfg = ps_model_config(e->m);
    int L = cfg->n_layer, V = cfg->n_vocab, n, *ids = prompt_ids(e, "--ids", "--prompt", &n), pos, l, k, n_tok = 0;
    int tok_ids[16];
    const char *names[16];
    char list[1024], *t;
    float *probs = (float *)malloc((size_t)L * V * sizeof(float)), *h;
    ps_source src;
    if (!ids || !probs || !int_opt("--pos", -1, &pos)) return 1;
    if (opt("--tokens")) { /* first sub-token of each, as Merullo et al. rank them */
        snprintf(list, sizeof list, "%s", opt("--tokens"));
        for (t = strtok(list, ","); t && n_tok < 16; t = strtok(NULL, ",")) {
            int m, *tid = example_encode(e, t, &m);
            names[n_tok] = t;
            tok_ids[n_tok++] = tid[0];
            free(tid);
        }
    }
    if (ps_source_run(e->c, ids, n, PS_RESID_POST, &pos, 1, &src)) return die("%s", ps_ctx_error(e->c));
    h = (float *)malloc((size_t)L * src.width * sizeof(float));
    for (l = 0; l < L; l++) memcpy(h + (size_t)l * src.width, ps_source_state(&src, l, src.pos[0]), (size_t)src.width * sizeof(float));
    if (ps_lens(e->c, h, L, probs)) return die("%s", ps_ctx_error(e->c));
    if (json) printf("{\"position\": %d, \"layers\": [", src.pos[0]);
    else {
        printf("logit lens at position %d\nlayer  top-1", src.pos[0]);
        for (k = 0; k < n_tok; k++) printf("   rank(\"%s\")", names[k]);
        printf("\n");
    }
    for (l = 0; l < L; l++) {
        const float *p = probs + (size_t)l * V;
        int top = ps_argmax(p, V);
        if (json) {
            printf("%s{\"layer\": %d, \"top_token_id\": %d, \"top_token\": ", l ? ", " : "", l, top);
            print_token(e, top);
            printf(", \"top_prob\": %.9g", p[top]);
            for (k = 0; k < n_tok; k++) {
                int rank = ps_rank(p, V, tok_ids[k]);
                printf(k ? ", " : ", \"tokens\": {");
                print_json_string(names[k]);
                printf(": {\"id\": %d, \"rank\": %d, \"rr\": %.9g, \"prob\": %.9g}", tok_ids[k], rank, 1.0 / (rank + 1), p[tok_ids[k]]);
            }
            printf(n_tok ? "}}" : "}");
        } else {
            char label[64];
            ps_token_label(e->t, top, label, sizeof label);
            printf("%5d  %-14s %.3f", l, label, p[top]);
            for (k = 0; k < n_tok; k++) printf("  %8d", ps_rank(p, V, tok_ids[k]));
            printf("\n");
        }
    }
    if (json) printf("]}\n");
    ps_source_free(&src);
    free(ids); free(probs); free(h);
    return 0;
}

/* pairs (h_ls of the source model, h_lt of the target model) at every position of every
   prompt in the file, one prompt per line; then the least-squares affine map */
static int cmd_fit(example *e) {
    example se;
    int ls, lt, ds, dt, n_pairs = 0, cap = 0, n, *ids, t;
    float *x = NULL, *y = NULL, *A;
    double ridge = opt("--ridge") ? atof(opt("--ridge")) : 0;
    char line[8192];
    FILE *f, *out;
    ps_source a, b;
    if (!opt("--prompts") || !opt("--out") || !opt("--source-model")) return die("fit needs --source-model, --prompts and --out");
    if (!int_opt("--source-layer", -1, &ls) || !int_opt("--target-layer", -1, &lt)) return 1;
    if (example_open(&se, opt("--source-model"), "weights/gpt2", 0)) return 1;
    if (!(f = fopen(opt("--prompts"), "r"))) return die("cannot open %s", opt("--prompts"));
    ds = ps_model_config(se.m)->n_embd;
    dt = ps_model_config(e->m)->n_embd;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        if (!*line) continue;
        ids = example_encode(e, line, &n);
        if (ps_source_run(se.c, ids, n, PS_RESID_POST, NULL, 0, &a)) return die("%s", ps_ctx_error(se.c));
        if (ps_source_run(e->c, ids, n, PS_RESID_POST, NULL, 0, &b)) return die("%s", ps_ctx_error(e->c));
        if (ls < 0 || ls >= a.n_layer || lt < 0 || lt >= b.n_layer) return die("layers outside the models");
        if (n_pairs + n > cap) {
            cap = 2 * (n_pairs + n);
            x = (float *)realloc(x, (size_t)cap * ds * sizeof(float));
            y = (float *)realloc(y, (size_t)cap * dt * sizeof(float));
            if (!x || !y) return die("out of memory");
        }
        for (t = 0; t < n; t++, n_pairs++) {
            memcpy(x + (size_t)n_pairs * ds, ps_source_state(&a, ls, t), (size_t)ds * sizeof(float));
            memcpy(y + (size_t)n_pairs * dt, ps_source_state(&b, lt, t), (size_t)dt * sizeof(float));
        }
        ps_source_free(&a);
        ps_source_free(&b);
        free(ids);
    }
    fclose(f);
    A = (float *)malloc((size_t)(ds + 1) * dt * sizeof(float));
    if (!A || ps_fit_affine(x, ds, y, dt, n_pairs, ridge, A))
        return die("the fit failed: %d pairs for %d unknowns per output (add prompts or --ridge)", n_pairs, ds + 1);
    if (!(out = fopen(opt("--out"), "wb")) || fwrite(A, sizeof(float), (size_t)(ds + 1) * dt, out) != (size_t)(ds + 1) * dt ||
        fclose(out))
        return die("cannot write %s", opt("--out"));
    printf("fitted a %d x %d map from %d pairs into %s\n", ds + 1, dt, n_pairs, opt("--out"));
    free(x); free(y); free(A);
    example_close(&se);
    return 0;
}

/* --- main --------------------------------------------------------------------------------- */

/* options each command takes (a trailing '=' takes a value) */
static const char *known[] = {"--model=", "--threads=", "--json", "--ids=", "--prompt=", "--all-logits", "--dump=",
                              "-n=", "--file=", "--source-prompt=", "--source-ids=", "--source-token=", "--source-pos=",
                              "--target-prompt=", "--target-ids=", "--target-pos=", "--source-layers=",
                              "--target-layers=", "--source-layer=", "--target-layer=", "--site=", "--source-model=",
                              "--map=", "--svg=", "--csv=", "--progress", "--pos=", "--tokens=", "--prompts=",
                              "--out=", "--ridge=", NULL};

static int check_options(void) {
    int i, k, free_args = strcmp(argv_[1], "tokenize") == 0 || strcmp(argv_[1], "decode") == 0;
    for (i = 2; i < argc_; i++) {
        const char *a = argv_[i];
        if (a[0] != '-' || strcmp(a, "-") == 0) {
            if (!free_args || n_positional == 64) return die("unexpected argument %s", a);
            positional[n_positional++] = argv_[i];
            continue;
        }
        for (k = 0; known[k]; k++) {
            size_t len = strcspn(known[k], "=");
            if (strlen(a) == len && strncmp(a, known[k], len) == 0) break;
        }
        if (!known[k]) return die("unknown option %s", a);
        if (known[k][strlen(known[k]) - 1] == '=' && ++i >= argc_) return die("%s needs a value", a);
    }
    return 0;
}

int main(int argc, char **argv) {
    static const char *commands[] = {"run", "generate", "tokenize", "decode", "grid", "inspect", "lens", "fit"};
    int (*const fns[])(example *) = {cmd_run, cmd_generate, NULL, NULL, cmd_grid, cmd_inspect, cmd_lens, cmd_fit};
    int threads, k, rc;
    example e;
    argc_ = argc;
    argv_ = argv;
    if (argc < 2) return usage();
    for (k = 0; k < 8 && strcmp(argv[1], commands[k]) != 0; k++) {}
    if (k == 8) return usage();
    if (check_options() || !int_opt("--threads", 0, &threads)) return 2;
    json = flag("--json");
    if (!fns[k]) { /* tokenize, decode: only the tokenizer */
        ps_tokenizer *t;
        ps_error err;
        if (ps_tokenizer_load(&t, opt("--model") ? opt("--model") : "weights", &err)) return die("%s", err.msg);
        rc = k == 2 ? cmd_tokenize(t) : cmd_decode(t);
        ps_tokenizer_free(t);
        return rc;
    }
    if (example_open(&e, opt("--model"), "weights/gpt2", threads)) return 1;
    rc = fns[k](&e);
    example_close(&e);
    return rc;
}
