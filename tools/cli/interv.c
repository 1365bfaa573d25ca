/* patch, sae: interventions beyond Patchscopes (activation patching, sparse autoencoders). */
#include "cli.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const cli_opt patch_opts[] = {
    {"--clean-prompt", "TEXT", NULL, "the clean prompt"},
    {"--clean-prompt-file", "F", NULL, "the clean prompt from F (- for standard input)"},
    {"--clean-ids", "1,2,3", NULL, "the clean prompt as token ids instead"},
    {"--corrupted-prompt", "TEXT", NULL, "the corrupted prompt (as many tokens as the clean one)"},
    {"--corrupted-prompt-file", "F", NULL, "the corrupted prompt from F (- for standard input)"},
    {"--corrupted-ids", "1,2,3", NULL, "the corrupted prompt as token ids instead"},
    {"--answer", "TOK", NULL, "the token the clean prompt should give (one token, with its leading space)"},
    {"--answer-id", "ID", NULL, "the same as a token id"},
    {"--wrong", "TOK", NULL, "the token the corrupted prompt gives (one token)"},
    {"--wrong-id", "ID", NULL, "the same as a token id"},
    {"--site", "POINT", "resid_pre", "what is patched: resid_pre, attn_out, mlp_out, resid_post, z, ..."},
    {"--per-head", NULL, NULL, "cells are (layer, head) at every position (sites q, k, v, z, pattern)"},
    {"--svg", "F", NULL, "write the metric as an SVG heatmap"},
    {NULL, NULL, NULL, NULL}};

/* the id named by --NAME (exactly one token) or --NAME-id; -1 after printing why not */
static int token_opt(const example *e, const char *name) {
    char id_name[64];
    const char *text = opt(name), *id;
    int ids[2], n = 0, v;
    snprintf(id_name, sizeof id_name, "%s-id", name);
    id = opt(id_name);
    if (!!text == !!id) return usage_error("give one of %s and %s", name, id_name), -1;
    if (id) return int_opt(id_name, 0, &v) ? v : -1;
    if (!e->t) return die("%s has no tokenizer patchscope.h reads: give %s", e->dir, id_name), -1;
    if (ps_encode_piece(e->t, text, strlen(text), ids, 2, &n) || n != 1)
        return die("%s \"%s\" is %d tokens, not one (give %s for another)", name, text, n, id_name), -1;
    return ids[0];
}

/* rows of the matrix m[rows][cols] as JSON arrays */
static void print_matrix(const float *m, int rows, int cols) {
    int i;
    putchar('[');
    for (i = 0; i < rows; i++) {
        if (i) putchar(',');
        print_floats(m + (size_t)i * cols, cols);
    }
    putchar(']');
}

int cmd_patch(example *e) {
    ps_patching_spec sp;
    ps_patching p;
    int n_clean, n_bad, i, j, site, rc = CLI_USAGE;
    char title[128];
    int *clean = prompt_ids(e, "--clean-ids", "--clean-prompt", &n_clean), *bad = NULL;
    memset(&sp, 0, sizeof sp);
    if (!clean || !(bad = prompt_ids(e, "--corrupted-ids", "--corrupted-prompt", &n_bad))) {
        rc = prompt_error;
        goto done;
    }
    if (n_clean != n_bad) {
        rc = usage_error("the clean prompt has %d tokens and the corrupted one %d: they must be equally long", n_clean, n_bad);
        goto done;
    }
    if ((site = ps_point_from_name(opt("--site") ? opt("--site") : "resid_pre")) < 0) {
        rc = usage_error("unknown site %s", opt("--site"));
        goto done;
    }
    if ((sp.answer = token_opt(e, "--answer")) < 0 || (sp.wrong = token_opt(e, "--wrong")) < 0) {
        rc = CLI_FAIL;
        goto done;
    }
    sp.clean = clean;
    sp.corrupted = bad;
    sp.n = n_clean;
    sp.site = (ps_point)site;
    sp.per_head = flag("--per-head");
    rc = CLI_FAIL;
    if (ps_patching_run(e->c, &sp, &p)) {
        die("%s", ps_ctx_error(e->c));
        goto done;
    }
    snprintf(title, sizeof title, "Activation patching of %s%s: the logit difference restored", ps_point_name(sp.site),
             sp.per_head ? " per head" : "");
    if (opt("--svg") && ps_patching_save_svg(&p, e->t, bad, title, opt("--svg"))) {
        die("cannot write %s", opt("--svg"));
        goto free_p;
    }
    if (json) {
        printf("{\"site\": \"%s\", \"layers\": [", ps_point_name(sp.site));
        for (i = 0; i < p.n_layer; i++) printf(i ? ",%d" : "%d", i);
        printf("], \"%s\": [", p.per_head ? "heads" : "positions");
        for (j = 0; j < p.n_cols; j++) printf(j ? ",%d" : "%d", j);
        printf("], \"tokens\": [");
        for (j = 0; j < n_bad; j++) printf(j ? "," : ""), print_token(e, bad[j]);
        printf("], \"answer_id\": %d, \"wrong_id\": %d, \"clean_logit_diff\": %.9g, \"corrupted_logit_diff\": %.9g, "
               "\"metric\": ", sp.answer, sp.wrong, p.clean_diff, p.corrupted_diff);
        print_matrix(p.metric, p.n_layer, p.n_cols);
        printf(", \"logit_diff\": ");
        print_matrix(p.diff, p.n_layer, p.n_cols);
        printf("}\n");
    } else {
        char label[256];
        printf("logit difference: clean %.4f, corrupted %.4f; metric = fraction restored (clean = 1)\nlayer", p.clean_diff,
               p.corrupted_diff);
        for (j = 0; j < p.n_cols; j++) {
            if (p.per_head) snprintf(label, sizeof label, "head %d", j);
            else ps_token_label(e->t, bad[j], label, sizeof label);
            printf("\t%s", label);
        }
        for (i = 0; i < p.n_layer; i++) {
            printf("\n%d", i);
            for (j = 0; j < p.n_cols; j++) printf("\t%.3f", p.metric[i * p.n_cols + j]);
        }
        printf("\n");
    }
    rc = 0;
free_p:
    ps_patching_free(&p);
done:
    free(clean);
    free(bad);
    return rc;
}

const cli_opt sae_opts[] = {
    {"--sae", "DIR", NULL, "a sparse autoencoder in SAELens' layout: cfg.json + sae_weights.safetensors (required)"},
    {"--top", "K", "10", "features reported per position: the K most active (fewer where fewer are active)"},
    {"--splice", NULL, NULL, "also run with the reconstruction written in, and report the next token with and without"},
    {"--error-term", NULL, NULL, "splice the reconstruction plus the SAE's error (x - reconstruction): unchanged but for edits"},
    {"--set", "F=V,...", NULL, "splice with feature F's activation set to V (clamping)"},
    {"--ablate", "F,...", NULL, "splice with these features' activations set to 0"},
    {NULL, NULL, NULL, NULL}};

/* --set and --ablate into features/values (malloc'd); the count, -1 on a bad list */
static int sae_edits(int d_sae, int **features, float **values) {
    const char *set = opt("--set"), *abl = opt("--ablate");
    int n = 0, k, pass;
    size_t cap = (set ? strlen(set) : 0) + (abl ? strlen(abl) : 0) + 1;
    *features = (int *)malloc(cap * sizeof(int));
    *values = (float *)malloc(cap * sizeof(float));
    if (!*features || !*values) return die("out of memory"), -1;
    for (pass = 0; pass < 2; pass++) {
        const char *p = pass ? abl : set;
        char *end;
        while (p && *p) {
            long f = strtol(p, &end, 10);
            double v = 0;
            if (end == p || f < 0 || f >= d_sae) return usage_error("%s: a feature in 0..%d, not \"%s\"", pass ? "--ablate" : "--set", d_sae - 1, p), -1;
            if (!pass) {
                if (*end != '=') return usage_error("--set wants F=V pairs, not \"%s\"", p), -1;
                p = end + 1;
                v = strtod(p, &end);
                if (end == p) return usage_error("--set: no value in \"%s\"", p), -1;
            }
            for (k = 0; k < n && (*features)[k] != (int)f; k++) {}
            (*features)[k] = (int)f; /* a feature given twice: the last value */
            (*values)[k] = (float)v;
            if (k == n) n++;
            if (*end && *end != ',') return usage_error("%s: \"%s\" is not a list", pass ? "--ablate" : "--set", p), -1;
            p = *end ? end + 1 : end;
        }
    }
    return n;
}

/* the top 5 next tokens after a pass, as JSON or text */
static void print_next(const example *e, const float *logits, float *probs, const char *name) {
    int V = ps_model_config(e->m)->n_vocab, top[5], i;
    float p[5];
    ps_softmax(logits, V, probs);
    ps_top_k(probs, V, 5, top, p);
    if (json) {
        printf(", \"%s\": [", name);
        for (i = 0; i < 5; i++) printf("%s{\"id\": %d, \"prob\": %.9g, \"token\": ", i ? ", " : "", top[i], p[i]), print_token(e, top[i]), printf("}");
        printf("]");
        return;
    }
    printf("%s:", name);
    for (i = 0; i < 5; i++) printf("  %.4f ", p[i]), print_token(e, top[i]);
    printf("\n");
}

int cmd_sae(example *e) {
    const ps_config *cfg = ps_model_config(e->m);
    const ps_sae_config *sc;
    ps_sae *sae = NULL;
    ps_sae_hook_spec h;
    ps_error err;
    int n, K, i, j, handle = -1, rc = CLI_FAIL, n_edits = 0, *edits = NULL, *top = NULL, V = cfg->n_vocab;
    int *ids = prompt_ids(e, "--ids", "--prompt", &n), spliced;
    float *acts = NULL, *values = NULL, *clean = NULL, *probs = NULL;
    memset(&h, 0, sizeof h);
    if (!ids) return prompt_error;
    if (!opt("--sae")) {
        free(ids);
        return usage_error("give --sae DIR");
    }
    if (!int_opt("--top", 10, &K) || K < 1) {
        free(ids);
        return K < 1 ? usage_error("--top must be at least 1") : CLI_USAGE;
    }
    if (ps_sae_load(&sae, opt("--sae"), &err)) {
        free(ids);
        return die("%s: %s", opt("--sae"), err.msg);
    }
    sc = ps_sae_info(sae);
    spliced = flag("--splice") || flag("--error-term") || opt("--set") || opt("--ablate");
    if (K > sc->d_sae) K = sc->d_sae;
    if (sc->layer >= cfg->n_layer || ps_point_width(e->m, sc->point, n) != sc->d_in) {
        rc = die("the SAE reads %s (%d wide), which %s does not have (%d layers, %s %d wide)", sc->hook_name, sc->d_in, e->dir,
                 cfg->n_layer, ps_point_name(sc->point), ps_point_width(e->m, sc->point, n));
        goto done;
    }
    if ((n_edits = sae_edits(sc->d_sae, &edits, &values)) < 0) {
        rc = CLI_USAGE;
        goto done;
    }
    acts = (float *)malloc((size_t)n * sc->d_sae * sizeof(float));
    clean = (float *)malloc((size_t)V * sizeof(float));
    probs = (float *)malloc((size_t)V * sizeof(float));
    top = (int *)malloc((size_t)K * sizeof(int));
    if (!acts || !clean || !probs || !top) {
        rc = die("out of memory");
        goto done;
    }
    /* the clean run, reading the features */
    h.sae = sae, h.mode = PS_SAE_READ, h.acts = acts, h.seq = 0, h.max_pos = n;
    ps_ctx_reset(e->c);
    if (ps_add_hook(e->c, sc->point, sc->layer, ps_sae_hook, &h, &handle) || ps_forward(e->c, ids, n, 0)) {
        rc = die("%s", ps_ctx_error(e->c));
        goto done;
    }
    memcpy(clean, ps_logits(e->c, 0), (size_t)V * sizeof(float));
    if (json) {
        printf("{\"sae\": ");
        print_json_string(opt("--sae"));
        printf(", \"hook\": ");
        print_json_string(sc->hook_name);
        printf(", \"point\": \"%s\", \"layer\": %d, \"d_sae\": %d, \"tokens\": [", ps_point_name(sc->point), sc->layer, sc->d_sae);
        for (i = 0; i < n; i++) printf(i ? ", " : ""), print_token(e, ids[i]);
        printf("], \"positions\": [");
    } else
        printf("%s at %s (layer %d, %d features): the %d most active per position\n", opt("--sae"), ps_point_name(sc->point),
               sc->layer, sc->d_sae, K);
    for (i = 0; i < n; i++) {
        const float *a = acts + (size_t)i * sc->d_sae;
        int m = 0;
        ps_top_k(a, sc->d_sae, K, top, NULL);
        while (m < K && a[top[m]] > 0) m++;
        if (json) {
            printf("%s{\"pos\": %d, \"features\": ", i ? ", " : "", i);
            print_ints(top, m);
            printf(", \"values\": [");
            for (j = 0; j < m; j++) printf(j ? ", %.9g" : "%.9g", a[top[j]]);
            printf("]}");
        } else {
            printf("%4d ", i);
            print_token(e, ids[i]);
            for (j = 0; j < m; j++) printf("  %d:%.3f", top[j], a[top[j]]);
            printf("\n");
        }
    }
    if (json) printf("]");
    if (spliced) { /* the same prompt with the reconstruction (and the edits) written in */
        double change = 0;
        const float *lg;
        h.mode = flag("--error-term") ? PS_SAE_SPLICE_ERROR : PS_SAE_SPLICE;
        h.features = edits, h.values = values, h.n_features = n_edits, h.acts = NULL;
        ps_ctx_reset(e->c);
        if (ps_forward(e->c, ids, n, 0)) {
            rc = die("%s", ps_ctx_error(e->c));
            goto done;
        }
        lg = ps_logits(e->c, 0);
        for (i = 0; i < V; i++) change = fabs(lg[i] - clean[i]) > change ? fabs(lg[i] - clean[i]) : change;
        print_next(e, clean, probs, "next");
        print_next(e, lg, probs, "spliced_next");
        if (json) printf(", \"max_logit_change\": %.9g", change);
        else printf("largest change of a logit: %.6g\n", change);
    }
    if (json) printf("}\n");
    rc = 0;
done:
    if (handle >= 0) ps_remove_hook(e->c, handle);
    ps_sae_free(sae);
    free(ids), free(acts), free(clean), free(probs), free(top), free(edits), free(values);
    return rc;
}

/* --- steering ------------------------------------------------------------------------------ */

int steering_begin(example *e, int n_prompt, cli_steering *s) {
    const ps_config *cfg = ps_model_config(e->m);
    ps_error err;
    int a = 0, b = cfg->n_layer - 1, l;
    double scale = opt("--steer-scale") ? atof(opt("--steer-scale")) : 1;
    memset(s, 0, sizeof *s);
    if (!opt("--steer")) return (opt("--steer-scale") || opt("--steer-layers") || flag("--steer-new")) ? usage_error("the steering options need --steer F.gguf") : 0;
    if (opt("--steer-layers") && !range_opt("--steer-layers", 0, cfg->n_layer - 1, &a, &b)) return CLI_USAGE;
    if (a < 0 || a > b || b >= cfg->n_layer) return usage_error("--steer-layers: layers 0-%d, not %d-%d", cfg->n_layer - 1, a, b);
    if (ps_control_vector_read(&s->cv, opt("--steer"), &err)) return die("%s: %s", opt("--steer"), err.msg);
    if (s->cv.n_embd != ps_point_width(e->m, PS_RESID_POST, 0) || s->cv.n_layer > cfg->n_layer) {
        die("%s: directions of %d floats up to layer %d, and %s is %d wide with %d layers", opt("--steer"), s->cv.n_embd,
            s->cv.n_layer - 1, e->dir, ps_point_width(e->m, PS_RESID_POST, 0), cfg->n_layer);
        ps_control_vector_free(&s->cv);
        return CLI_FAIL;
    }
    for (l = a; l <= b && l < s->cv.n_layer; l++) {
        if (!s->cv.has[l]) continue;
        s->st[s->n].vec = s->cv.dir + (size_t)l * s->cv.n_embd;
        s->st[s->n].scale = (float)scale;
        s->st[s->n].from = flag("--steer-new") ? n_prompt : 0;
        if (ps_add_hook(e->c, PS_RESID_POST, l, ps_steer_hook, &s->st[s->n], &s->handle[s->n])) {
            steering_end(e, s);
            return die("%s", ps_ctx_error(e->c));
        }
        s->n++;
    }
    if (!s->n) {
        steering_end(e, s);
        return usage_error("%s has no direction in layers %d-%d", opt("--steer"), a, b);
    }
    return 0;
}

void steering_end(example *e, cli_steering *s) {
    int i;
    for (i = 0; i < s->n; i++) ps_remove_hook(e->c, s->handle[i]);
    ps_control_vector_free(&s->cv);
    s->n = 0;
}

const cli_opt steer_opts[] = {
    {"--pairs", "F", NULL, "contrastive pairs, a line each: positive<TAB>negative (# comments; required)"},
    {"--method", "M", "mean", "mean (the mean difference) or pca (the first principal component of the differences)"},
    {"--out", "F.gguf", NULL, "where the control vector goes (llama.cpp's format: layers 1 and up; required)"},
    {NULL, NULL, NULL, NULL}};

int cmd_steer(example *e) {
    const char *method = opt("--method") ? opt("--method") : "mean";
    char *text, *line, *next;
    size_t len;
    int n = 0, cap = 0, rc = CLI_FAIL, i, l, **ids = NULL, *lens = NULL;
    ps_control_vector cv;
    ps_error err;
    memset(&cv, 0, sizeof cv);
    if (!opt("--pairs") || !opt("--out")) return usage_error("give --pairs F and --out F.gguf");
    if (strcmp(method, "mean") != 0 && strcmp(method, "pca") != 0) return usage_error("--method is mean or pca, not %s", method);
    if (!e->t) return die("%s has no tokenizer patchscope.h reads: the pairs are text", e->dir);
    if (!(text = read_file(opt("--pairs"), &len))) return CLI_FAIL;
    for (line = text; line && *line; line = next) { /* each pair: ids[2k] positive, ids[2k + 1] negative */
        char *tab;
        int k;
        if ((next = strchr(line, '\n'))) *next++ = 0;
        if (*line && line[strlen(line) - 1] == '\r') line[strlen(line) - 1] = 0;
        if (!*line || *line == '#') continue;
        if (!(tab = strchr(line, '\t')) || strchr(tab + 1, '\t') || tab == line || !tab[1]) {
            rc = die("%s: want positive<TAB>negative, not: %s", opt("--pairs"), line);
            goto done;
        }
        *tab = 0;
        if (2 * n + 2 > cap) {
            int **g = (int **)realloc(ids, (size_t)(cap = cap ? 2 * cap : 64) * sizeof *g), *h;
            if (g) ids = g;
            if (!g || !(h = (int *)realloc(lens, (size_t)cap * sizeof *h))) {
                rc = die("out of memory");
                goto done;
            }
            lens = h;
        }
        for (k = 0; k < 2; k++) {
            const char *p = k ? tab + 1 : line;
            if (!(ids[2 * n + k] = encode_text(e->t, p, strlen(p), 0, &lens[2 * n + k]))) {
                rc = die("cannot encode \"%s\"", p);
                n += k; /* what was encoded is freed */
                goto done;
            }
        }
        n++;
    }
    if (!n) {
        rc = die("no pairs in %s", opt("--pairs"));
        goto done;
    }
    {
        const int **pos = (const int **)malloc((size_t)n * sizeof *pos), **neg = (const int **)malloc((size_t)n * sizeof *neg);
        int *pl = (int *)malloc((size_t)n * sizeof(int)), *nl = (int *)malloc((size_t)n * sizeof(int)), st = 1;
        if (pos && neg && pl && nl) {
            for (i = 0; i < n; i++) pos[i] = ids[2 * i], neg[i] = ids[2 * i + 1], pl[i] = lens[2 * i], nl[i] = lens[2 * i + 1];
            st = ps_steering_vectors(e->c, pos, pl, neg, nl, n, strcmp(method, "pca") == 0 ? PS_STEER_PCA : PS_STEER_MEAN, &cv);
        }
        free(pos), free(neg), free(pl), free(nl);
        if (st) {
            rc = die("%s", st == 1 ? "out of memory" : ps_ctx_error(e->c));
            goto done;
        }
    }
    if (ps_control_vector_write(&cv, opt("--out"), ps_model_config(e->m)->family, &err)) {
        rc = die("%s", err.msg);
        goto done;
    }
    if (json) { /* per layer: the direction itself (layer 0 too, which the file cannot hold) */
        printf("{\"pairs\": %d, \"method\": \"%s\", \"out\": ", n, method);
        print_json_string(opt("--out"));
        printf(", \"layers\": [");
        for (l = 0; l < cv.n_layer; l++) printf(l ? ",%d" : "%d", l);
        printf("], \"directions\": [");
        for (l = 0; l < cv.n_layer; l++) printf(l ? "," : ""), print_floats(cv.dir + (size_t)l * cv.n_embd, cv.n_embd);
        printf("]}\n");
    } else
        printf("%d pairs, %s: a unit direction for each of %d layers; wrote layers 1-%d to %s\n", n, method, cv.n_layer,
               cv.n_layer - 1, opt("--out"));
    rc = 0;
done:
    for (i = 0; i < 2 * n; i++) free(ids[i]);
    free(ids), free(lens), free(text);
    ps_control_vector_free(&cv);
    return rc;
}

/* --- ablation ------------------------------------------------------------------------------ */

/* "POINT:LAYERS[:head=H | :units=A,B,...]" into a target; 0, or an exit status */
static int ablation_target(example *e, const char *spec, cli_ablation_target *t) {
    const ps_config *cfg = ps_model_config(e->m);
    char buf[512], *layers, *extra, *end;
    int p;
    if (snprintf(buf, sizeof buf, "%s", spec) >= (int)sizeof buf) return usage_error("--ablate: %s is too long", spec);
    memset(t, 0, sizeof *t);
    t->a.head = -1;
    if (!(layers = strchr(buf, ':'))) return usage_error("--ablate wants POINT:LAYERS[:head=H|:units=A,B], not %s", spec);
    *layers++ = 0;
    if ((extra = strchr(layers, ':'))) *extra++ = 0;
    if ((p = ps_point_from_name(buf)) < 0 || layerless((ps_point)p)) return usage_error("--ablate: %s is not a layer point", buf);
    t->point = (ps_point)p;
    if (strcmp(layers, "all") == 0) t->first = 0, t->last = cfg->n_layer - 1;
    else {
        t->first = t->last = (int)strtol(layers, &end, 10);
        if (*end == '-') t->last = (int)strtol(end + 1, &end, 10);
        if (end == layers || *end || t->first < 0 || t->first > t->last || t->last >= cfg->n_layer)
            return usage_error("--ablate: layers %s (0-%d, A-B or all)", layers, cfg->n_layer - 1);
    }
    if (extra && strncmp(extra, "head=", 5) == 0) {
        int heads = t->point == PS_K || t->point == PS_V ? cfg->n_kv_head : cfg->n_head;
        int by_head = t->point == PS_Q || t->point == PS_K || t->point == PS_V || t->point == PS_Z || t->point == PS_PATTERN;
        t->a.head = (int)strtol(extra + 5, &end, 10);
        if (!by_head) return usage_error("--ablate: %s has no heads (q, k, v, z, pattern do)", buf);
        if (end == extra + 5 || *end || t->a.head < 0 || t->a.head >= heads)
            return usage_error("--ablate: %s has heads 0-%d, not %s", buf, heads - 1, extra + 5);
    } else if (extra && strncmp(extra, "units=", 6) == 0) {
        int w = ps_point_width(e->m, t->point, 0), k;
        if (t->point == PS_PATTERN) return usage_error("--ablate: pattern is ablated by head");
        if (!(t->units = parse_ids(extra + 6, &t->a.n_units))) return usage_error("--ablate: bad units in %s", spec);
        for (k = 0; k < t->a.n_units; k++)
            if (t->units[k] >= w) return usage_error("--ablate: %s has units 0-%d, not %d", buf, w - 1, t->units[k]);
        t->a.units = t->units;
    } else if (extra)
        return usage_error("--ablate: after the layers comes head=H or units=A,B, not %s", extra);
    return 0;
}

/* the values of each of t's layers, read once for the target: a mean over --ablate-prompts
   (encoded once, a mean per layer) or a resample (one run of --ablate-source, every layer
   kept); t->values owns them, t->per_layer points at them; 0, or an exit status */
static int ablation_values(example *e, cli_ablation_target *t, const char *with) {
    int w = ps_point_width(e->m, t->point, 0), L = ps_model_config(e->m)->n_layer, i, l;
    if (strcmp(with, "resample") == 0) {
        int n, *ids = prompt_ids(e, "--ablate-source-ids", "--ablate-source", &n);
        ps_capture cap;
        if (!ids) return prompt_error;
        cap.point = t->point, cap.layer = PS_ALL_LAYERS, cap.out = t->values[0] = (float *)malloc((size_t)L * n * w * sizeof(float));
        ps_ctx_reset(e->c);
        i = !cap.out ? die("out of memory") : ps_run_with_cache(e->c, ids, n, PS_NO_LOGITS, &cap, 1) ? die("%s", ps_ctx_error(e->c)) : 0;
        for (l = t->first; !i && l <= t->last; l++) /* [layer][position][width] */
            t->per_layer[l - t->first].values = cap.out + (size_t)l * n * w, t->per_layer[l - t->first].n_values = n;
        free(ids);
        return i;
    }
    {
        size_t len;
        char *text = opt("--ablate-prompts") ? read_file(opt("--ablate-prompts"), &len) : NULL, *line, *next;
        int n = 0, cap = 0, **ids = NULL, *lens = NULL, rc = 0, longest = 0;
        if (!opt("--ablate-prompts")) return usage_error("--ablate-with mean needs --ablate-prompts F (a prompt a line)");
        if (!text) return CLI_FAIL;
        if (!e->t) rc = die("%s has no tokenizer: the prompts are text", e->dir);
        for (line = text; !rc && line && *line; line = next) {
            if ((next = strchr(line, '\n'))) *next++ = 0;
            if (!*line) continue;
            if (n == cap) {
                int **g = (int **)realloc(ids, (size_t)(cap = cap ? 2 * cap : 32) * sizeof *g), *h = NULL;
                if (g) ids = g;
                if (!g || !(h = (int *)realloc(lens, (size_t)cap * sizeof *h))) rc = die("out of memory");
                if (h) lens = h;
            }
            if (!rc && !(ids[n] = encode_text(e->t, line, strlen(line), 0, &lens[n]))) rc = die("cannot encode \"%s\"", line);
            if (!rc && lens[n] > longest) longest = lens[n];
            if (!rc) n++;
        }
        if (!rc && !n) rc = die("no prompts in %s", opt("--ablate-prompts"));
        for (l = t->first; !rc && l <= t->last; l++) {
            ps_ablation *a = &t->per_layer[l - t->first];
            float *v = t->values[l - t->first] = (float *)malloc((size_t)(flag("--ablate-per-position") ? longest : 1) * w * sizeof(float));
            if (!v) rc = die("out of memory");
            else if (ps_mean_activation(e->c, (const int *const *)ids, lens, n, t->point, l, flag("--ablate-per-position"), v,
                                        &a->n_values))
                rc = die("%s", ps_ctx_error(e->c));
            a->values = v;
        }
        for (i = 0; i < n; i++) free(ids[i]);
        free(ids), free(lens), free(text);
        return rc;
    }
}

int ablation_begin(example *e, cli_ablation *ab) {
    const char *with = opt("--ablate-with") ? opt("--ablate-with") : "zero";
    char list[4096], *spec;
    int rc, l, i;
    memset(ab, 0, sizeof *ab);
    if (!opt("--ablate"))
        return opt("--ablate-with") || opt("--ablate-prompts") || opt("--ablate-source") || opt("--ablate-source-ids") ||
                       flag("--ablate-per-position")
                   ? usage_error("the ablation options need --ablate POINT:LAYERS")
                   : 0;
    if (strcmp(with, "zero") && strcmp(with, "mean") && strcmp(with, "resample"))
        return usage_error("--ablate-with is zero, mean or resample, not %s", with);
    snprintf(list, sizeof list, "%s", opt("--ablate"));
    for (spec = strtok(list, ";"); spec; spec = strtok(NULL, ";")) { /* the targets and their values, from clean runs */
        cli_ablation_target *t = &ab->t[ab->n];
        if (ab->n == (int)(sizeof ab->t / sizeof ab->t[0])) return ablation_end(e, ab), usage_error("--ablate: too many targets");
        if ((rc = ablation_target(e, spec, t))) return ablation_end(e, ab), rc;
        ab->n++;
        if (t->point == PS_PATTERN && strcmp(with, "zero") != 0)
            return ablation_end(e, ab), usage_error("--ablate: pattern is only zeroed");
        for (l = t->first; l <= t->last; l++) t->per_layer[l - t->first] = t->a;
        if (strcmp(with, "zero") && (rc = ablation_values(e, t, with))) return ablation_end(e, ab), rc;
    }
    for (i = 0; i < ab->n; i++) /* then the hooks */
        for (l = ab->t[i].first; l <= ab->t[i].last; l++) {
            cli_ablation_target *t = &ab->t[i];
            if (ps_add_hook(e->c, t->point, l, ps_ablation_hook, &t->per_layer[l - t->first], &t->handle[l - t->first]))
                return ablation_end(e, ab), die("%s", ps_ctx_error(e->c));
            t->n_hooks++;
        }
    ps_ctx_reset(e->c);
    return 0;
}

void ablation_end(example *e, cli_ablation *ab) {
    int i, l;
    for (i = 0; i < ab->n; i++) {
        for (l = 0; l < ab->t[i].n_hooks; l++) ps_remove_hook(e->c, ab->t[i].handle[l]);
        for (l = 0; l <= ab->t[i].last - ab->t[i].first; l++) free(ab->t[i].values[l]);
        free(ab->t[i].units);
    }
    memset(ab, 0, sizeof *ab);
}
