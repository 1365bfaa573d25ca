/* Word2Vec-style stages (Merullo et al., arXiv 2305.16130) seen through Patchscopes.

   For "What is the capital of Poland?" (one-shot, abstractive) and the same question
   after a passage that states the answer (extractive): patch h_l of the last position
   into the same prompt at target layer T (default L-2, block L-1 still runs) for every
   source layer l <= T, and run the logit lens on every layer with the reciprocal rank of
   the argument " Poland" and the answer " Warsaw". The summary names the stages from
   the measured column: argument formation (the argument is top-1 before the answer),
   function application (the first layer from which the answer stays top-1), saturation.

       build/word2vec_stages [--model DIR] [--target-layer T] [--out build/w2v] [--threads N]

   Writes <out>_<task>.svg (column heatmap), <out>_<task>_rr.svg (reciprocal ranks per
   layer) and <out>_<task>.csv. */
#define PATCHSCOPE_IMPLEMENTATION
#include "../patchscope.h"
#include "example.h"

#define QA "Q: What is the capital of Somalia?\nA: Mogadishu\nQ: What is the capital of Poland?\nA:"

static int run_task(example *e, const char *task, const char *prompt, int T, const char *out) {
    int L = ps_model_config(e->m)->n_layer, V = ps_model_config(e->m)->n_vocab, n, *ids, l, pos;
    int n_arg, n_ans, *arg = example_piece(e, " Poland", &n_arg), *ans = example_piece(e, " Warsaw", &n_ans);
    int applied = -1, formed = -1, crossing = -1;
    double *rr_arg = (double *)malloc((size_t)L * sizeof(double)), *rr_ans = (double *)malloc((size_t)L * sizeof(double));
    float *lens = (float *)malloc((size_t)L * V * sizeof(float)), *h = NULL;
    char path[512], label[64], lens_label[64];
    ps_source src;
    ps_grid_spec spec;
    ps_grid col;
    FILE *csv;

    ids = example_encode(e, prompt, &n);
    pos = n - 1;
    if (ps_source_run(e->c, ids, n, PS_RESID_POST, &pos, 1, &src)) return fprintf(stderr, "%s\n", ps_ctx_error(e->c)), 1;
    memset(&spec, 0, sizeof spec);
    spec.src = &src;
    spec.src_pos = pos;
    spec.src_last = T;
    spec.target = ids;
    spec.n_target = n;
    spec.tgt_pos = -1;
    spec.tgt_first = spec.tgt_last = T;
    if (ps_grid_run(e->c, &spec, &col)) return fprintf(stderr, "%s\n", ps_ctx_error(e->c)), 1;

    /* the logit lens of every layer, with the reciprocal ranks of the two first sub-tokens */
    h = (float *)malloc((size_t)L * src.width * sizeof(float));
    for (l = 0; l < L; l++) memcpy(h + (size_t)l * src.width, ps_source_state(&src, l, pos), (size_t)src.width * sizeof(float));
    if (ps_lens(e->c, h, L, lens)) return fprintf(stderr, "%s\n", ps_ctx_error(e->c)), 1;
    for (l = 0; l < L; l++) {
        rr_arg[l] = 1.0 / (1 + ps_rank(lens + (size_t)l * V, V, arg[0]));
        rr_ans[l] = 1.0 / (1 + ps_rank(lens + (size_t)l * V, V, ans[0]));
    }

    /* the stages, read off the column: the answer from `applied` on, the argument before */
    for (l = T; l >= 0 && col.top_id[l] == ans[0]; l--) applied = l;
    for (l = 0; applied > 0 && l < applied && formed < 0; l++)
        if (col.top_id[l] == arg[0]) formed = l;
    for (l = L - 1; l >= 0 && rr_ans[l] > rr_arg[l]; l--) crossing = l;

    snprintf(path, sizeof path, "%s_%s.csv", out, task);
    if (!(csv = fopen(path, "w"))) return fprintf(stderr, "cannot write %s\n", path), 1;
    fprintf(csv, "layer,patched_top_token,patched_top_prob,lens_top_token,rr_poland,rr_warsaw\n");
    printf("\n%s task, %s: h_l of the last position patched into target layer %d\n", task, e->dir, T);
    printf("layer  patched top-1          lens top-1       RR(Poland) RR(Warsaw)\n");
    for (l = 0; l < L; l++) {
        ps_token_label(e->t, ps_argmax(lens + (size_t)l * V, V), lens_label, sizeof lens_label);
        if (l <= T) ps_token_label(e->t, col.top_id[l], label, sizeof label);
        else snprintf(label, sizeof label, "-");
        printf("%5d  %-12s %6.3f   %-14s   %8.3f  %8.3f\n", l, label, l <= T ? col.top_prob[l] : 0.0, lens_label,
               rr_arg[l], rr_ans[l]);
        fprintf(csv, "%d,\"%s\",%.6f,\"%s\",%.6f,%.6f\n", l, l <= T ? label : "", l <= T ? col.top_prob[l] : 0.0,
                lens_label, rr_arg[l], rr_ans[l]);
    }
    fclose(csv);
    if (applied < 0) printf("stages: \" Warsaw\" is not the top-1 at target layer %d, so no stages can be named\n", T);
    else {
        if (formed >= 0) printf("stages: argument formation at layers %d-%d (\" Poland\" is top-1 first), ", formed, applied - 1);
        else printf("stages: no argument formation seen (\" Poland\" is never top-1 before the answer), ");
        printf("function application at layer %d (\" Warsaw\" from here on), ", applied);
        if (applied < T) printf("saturation at layers %d-%d\n", applied + 1, T);
        else printf("no saturation layers before the target layer\n");
    }
    if (crossing >= 0) printf("logit lens: RR(Warsaw) > RR(Poland) from layer %d on\n", crossing);

    snprintf(path, sizeof path, "%s_%s.svg", out, task);
    snprintf(label, sizeof label, "%s task: source layer -> target layer %d", task, T);
    ps_grid_save_svg(&col, e->t, label, path);
    snprintf(path, sizeof path, "%s_%s_rr.svg", out, task);
    snprintf(label, sizeof label, "%s task: reciprocal rank per layer", task);
    {
        const char *names[2] = {"\" Poland\" (argument)", "\" Warsaw\" (answer)"};
        double *both = (double *)malloc((size_t)L * 2 * sizeof(double));
        int *layers = (int *)malloc((size_t)L * sizeof(int));
        for (l = 0; both && layers && l < L; l++) both[l] = rr_arg[l], both[L + l] = rr_ans[l], layers[l] = l;
        if (both && layers)
            ps_lines_save_svg(path, label, "layer (logit lens at the last position)", 2, names, both, layers, L, 0, 1);
        free(both);
        free(layers);
    }
    printf("wrote %s_%s.svg, %s_%s_rr.svg and %s_%s.csv\n", out, task, out, task, out, task);

    ps_grid_free(&col);
    ps_source_free(&src);
    free(ids); free(arg); free(ans); free(rr_arg); free(rr_ans); free(lens); free(h);
    return 0;
}

int main(int argc, char **argv) {
    const char *out = example_arg(argc, argv, "--out", "build/w2v");
    example e;
    int L, T;
    if (example_open(&e, example_arg(argc, argv, "--model", NULL), "weights/gpt2-medium",
                     atoi(example_arg(argc, argv, "--threads", "0"))))
        return 1;
    L = ps_model_config(e.m)->n_layer;
    T = atoi(example_arg(argc, argv, "--target-layer", "-1"));
    if (T < 0) T = L >= 2 ? L - 2 : 0;
    if (T >= L) return fprintf(stderr, "--target-layer must be below %d\n", L), 1;
    if (run_task(&e, "abstractive", QA, T, out) ||
        run_task(&e, "extractive", "The capital of Somalia is Mogadishu.\nThe capital of Poland is Warsaw.\n" QA, T, out))
        return 1;
    example_close(&e);
    return 0;
}
