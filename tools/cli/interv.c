/* patch: interventions beyond Patchscopes (activation patching). */
#include "cli.h"

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
