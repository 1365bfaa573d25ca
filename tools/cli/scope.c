/* grid, inspect, lens, fit: Patchscopes, the logit lens and affine maps between models. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const cli_opt grid_opts[] = {
    {"--source-layers", "A-B", "every layer", "source layers (rows)"},
    {"--target-layers", "A-B", "every layer", "target layers (columns)"},
    {"--svg", "F", NULL, "write the grid as an SVG heatmap"},
    {"--csv", "F", NULL, "write the grid as CSV"},
    {"--progress", NULL, NULL, "show the cells done on stderr"},
    {NULL, NULL, NULL, NULL}};

const cli_opt inspect_opts[] = {
    {"--source-layer", "L", NULL, "source layer (required)"},
    {"--target-layer", "L", NULL, "target layer (required)"},
    {"-n", "N", "0", "greedy tokens to generate after the patched prompt"},
    {"--dump", "POINT,...", NULL, "hook points to print (with --json) for every layer and every position of the patched "
     "run: the target's, then each generated token's but the last"},
    {NULL, NULL, NULL, NULL}};

const cli_opt lens_opts[] = {
    {"--pos", "P", "-1, the last token", "the position read"},
    {"--tokens", "\" A\",\" B\"", NULL, "tokens whose rank to show (the first sub-token of each)"},
    {NULL, NULL, NULL, NULL}};

const cli_opt fit_opts[] = {
    {"--source-model", "DIR", NULL, "the model mapped from (required)"},
    {"--prompts", "FILE", NULL, "one prompt per line; every position is a pair (required)"},
    {"--source-layer", "L", NULL, "the source model's layer (required)"},
    {"--target-layer", "L", NULL, "the target model's layer (required)"},
    {"--out", "A.f32", NULL, "where the map goes: (d_src + 1) x d_tgt little-endian floats (required)"},
    {"--ridge", "R", "0", "ridge penalty on the weights (not the bias)"},
    {NULL, NULL, NULL, NULL}};

/* the source side of a patch: its model (the target's unless --source-model), prompt and
   position (--source-token's last occurrence, or --source-pos, default the last token) */
typedef struct side {
    example own, *e;
    int *ids, n, pos;
    ps_source src;
    float *map;
} side;

/* 0, or the exit status of what went wrong */
static int source_side(example *tgt, side *s, ps_point site) {
    const char *token = opt("--source-token");
    memset(s, 0, sizeof *s);
    s->e = tgt;
    if (opt("--source-model")) {
        if (!opt("--map")) return usage_error("--source-model needs --map A.f32 (patchscope fit makes one)");
        if (example_open(&s->own, opt("--source-model"), "weights/gpt2", 1)) return CLI_FAIL;
        s->e = &s->own;
        int d_src = ps_point_width(s->e->m, site, 0), d_tgt = ps_point_width(tgt->m, site, 0);
        if (!(s->map = read_map(opt("--map"), d_src, d_tgt)))
            return die("cannot read %s as a map for these models: (%d + 1) x %d floats", opt("--map"), d_src, d_tgt);
    }
    if (!(s->ids = prompt_ids(s->e, "--source-ids", "--source-prompt", &s->n))) return prompt_error;
    if (token) {
        if (!s->e->t) return die("%s has no tokenizer patchscope.h reads: give --source-pos", s->e->dir);
        if ((s->pos = ps_find_text(s->e->t, s->ids, s->n, token)) < 0) return die("\"%s\" is not in the source prompt", token);
    } else if (!int_opt("--source-pos", -1, &s->pos)) return CLI_USAGE;
    if (ps_source_run(s->e->c, s->ids, s->n, site, &s->pos, 1, &s->src)) return die("%s", ps_ctx_error(s->e->c));
    s->pos = s->src.pos[0];
    return 0;
}

static void side_free(side *s) {
    ps_source_free(&s->src);
    free(s->ids);
    free(s->map);
    if (s->e == &s->own) example_close(&s->own);
}

/* 0, or CLI_USAGE for an unknown point */
static int site_opt(ps_point *site) {
    const char *v = opt("--site");
    int p = v ? ps_point_from_name(v) : PS_RESID_POST;
    if (p < 0) return usage_error("unknown site %s", v);
    *site = (ps_point)p;
    return 0;
}

static int show_progress(int done, int total, void *user) {
    (void)user;
    fprintf(stderr, "\rgrid: %d/%d cells", done, total);
    if (done == total) fprintf(stderr, "\n");
    return 0;
}

int cmd_grid(example *e) {
    static cli_ablation ablation;
    int L = ps_model_config(e->m)->n_layer, n_tgt, *tgt, i, j, rc;
    ps_point site = PS_RESID_POST;
    side s;
    ps_grid_spec spec;
    ps_grid g;
    memset(&spec, 0, sizeof spec);
    if ((rc = site_opt(&site)) || (rc = source_side(e, &s, site))) return rc;
    tgt = prompt_given("--target-ids", "--target-prompt") ? prompt_ids(e, "--target-ids", "--target-prompt", &n_tgt)
                                                        : (n_tgt = s.n, s.ids); /* the seed's B/C setup */
    if (!tgt) return prompt_error;
    if (!int_opt("--target-pos", -1, &spec.tgt_pos) ||
        !range_opt("--source-layers", 0, s.src.n_layer - 1, &spec.src_first, &spec.src_last) ||
        !range_opt("--target-layers", 0, L - 1, &spec.tgt_first, &spec.tgt_last))
        return CLI_USAGE;
    spec.src = &s.src;
    spec.src_pos = s.pos;
    spec.target = tgt;
    spec.n_target = n_tgt;
    spec.map.affine = s.map;
    if (flag("--progress")) spec.progress = show_progress;
    if ((rc = ablation_begin(e, &ablation))) return rc; /* on the target runs: the source ran clean */
    rc = ps_grid_run(e->c, &spec, &g);
    ablation_end(e, &ablation);
    if (rc) return die("%s", ps_ctx_error(e->c));
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

/* --dump for inspect: the patched target followed by the generated tokens (but the last)
   run once more with captures, the patch written at its position only, as during the
   generation (later tokens see it through the cache); 0, or an exit status */
static int inspect_dump(example *e, const ps_patch *p, const int *tgt, int n_tgt, const int *gen, int n_new,
                        ps_capture *caps, int *k) {
    ps_point site = p->site == PS_EMBED ? PS_RESID_POST : p->site;
    int rows = n_tgt + (n_new > 0 ? n_new - 1 : 0), d = ps_point_width(e->m, site, 0), handle, rc;
    int *all = (int *)malloc((size_t)(rows > 0 ? rows : 1) * sizeof(int));
    float *y = (float *)malloc((size_t)d * sizeof(float));
    ps_overwrite ov;
    if ((rc = dump_begin(e, rows, caps, k)) || !*k) return free(all), free(y), rc;
    if (!all || !y) return free(all), free(y), die("out of memory");
    memcpy(all, tgt, (size_t)n_tgt * sizeof(int));
    memcpy(all + n_tgt, gen, (size_t)(rows - n_tgt) * sizeof(int));
    ov.pos = p->pos < 0 ? n_tgt + p->pos : p->pos, ov.seq = 0, ov.vec = y;
    ps_ctx_reset(e->c);
    rc = ps_map_apply(e->c, &p->map, p->vec, p->d_src ? p->d_src : d, y, d) ||
         ps_add_hook(e->c, site, p->layer, ps_overwrite_hook, &ov, &handle);
    if (!rc) {
        rc = ps_run_with_cache(e->c, all, rows, PS_NO_LOGITS, caps, *k);
        ps_remove_hook(e->c, handle);
    }
    free(all), free(y);
    return rc ? die("%s", ps_ctx_error(e->c)) : 0;
}

int cmd_inspect(example *e) {
    int V = ps_model_config(e->m)->n_vocab, n_tgt, *tgt, ls, n_new, i, *gen, rc, k = 0;
    ps_capture caps[PS_POINT_COUNT];
    float *probs = (float *)malloc((size_t)V * sizeof(float)), *unpatched = (float *)malloc((size_t)V * sizeof(float));
    ps_readout r;
    ps_patch p;
    side s;
    memset(&p, 0, sizeof p);
    if (!probs || !unpatched) return die("out of memory");
    if (!opt("--source-layer") || !opt("--target-layer")) return usage_error("give --source-layer and --target-layer");
    if ((rc = site_opt(&p.site)) || (rc = source_side(e, &s, p.site))) return rc;
    tgt = prompt_given("--target-ids", "--target-prompt") ? prompt_ids(e, "--target-ids", "--target-prompt", &n_tgt)
                                                        : (n_tgt = s.n, s.ids);
    if (!tgt) return prompt_error;
    if (!int_opt("--source-layer", -1, &ls) || !int_opt("--target-layer", -1, &p.layer) ||
        !int_opt("--target-pos", -1, &p.pos) || !int_opt("-n", 0, &n_new))
        return CLI_USAGE;
    if (n_new < 0) return usage_error("-n must not be negative");
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
    if ((rc = inspect_dump(e, &p, tgt, n_tgt, gen, n_new, caps, &k))) return rc;
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
        printf(", \"precision_at_1\": %d, \"surprisal\": ", r.precision_at_1);
        print_number(r.surprisal); /* infinite when the unpatched run gives the token nothing */
        printf(", \"generated_ids\": ");
        print_ints(gen, n_new);
        print_dump(e, caps, k, n_tgt + (n_new > 0 ? n_new - 1 : 0));
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
    for (i = 0; i < k; i++) free(caps[i].out);
    free(probs); free(unpatched); free(gen);
    return 0;
}

int cmd_lens(example *e) {
    const ps_config *cfg = ps_model_config(e->m);
    int L = cfg->n_layer, V = cfg->n_vocab, n, *ids = prompt_ids(e, "--ids", "--prompt", &n), pos, l, k, n_tok = 0;
    int tok_ids[16];
    const char *names[16];
    char list[1024], *t;
    float *probs = (float *)malloc((size_t)L * V * sizeof(float)), *h;
    ps_source src;
    if (!ids) return prompt_error;
    if (!int_opt("--pos", -1, &pos)) return CLI_USAGE;
    if (!probs) return die("out of memory");
    if (opt("--tokens")) { /* first sub-token of each, as Merullo et al. rank them */
        snprintf(list, sizeof list, "%s", opt("--tokens"));
        for (t = strtok(list, ","); t && n_tok < 16; t = strtok(NULL, ",")) {
            int m, *tid = example_piece(e, t, &m);
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
int cmd_fit(example *e) {
    example se;
    int ls, lt, ds, dt, n_pairs = 0, cap = 0, n, *ids, t;
    float *x = NULL, *y = NULL, *A;
    double ridge = opt("--ridge") ? atof(opt("--ridge")) : 0;
    char line[8192];
    FILE *f, *out;
    ps_source a, b;
    if (!opt("--prompts") || !opt("--out") || !opt("--source-model") || !opt("--source-layer") || !opt("--target-layer"))
        return usage_error("give --source-model, --prompts, --source-layer, --target-layer and --out");
    if (!int_opt("--source-layer", -1, &ls) || !int_opt("--target-layer", -1, &lt)) return CLI_USAGE;
    if (example_open(&se, opt("--source-model"), "weights/gpt2", 0)) return CLI_FAIL;
    if (!(f = fopen(opt("--prompts"), "r"))) return die("cannot open %s", opt("--prompts"));
    ds = ps_model_config(se.m)->n_embd;
    dt = ps_model_config(e->m)->n_embd;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        if (!*line) continue;
        if (!e->t || !(ids = encode_text(e->t, line, strlen(line), 0, &n)) || n < 1)
            return die("cannot encode the prompt \"%s\"", line);
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

