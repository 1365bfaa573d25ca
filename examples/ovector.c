/* The o-vector intervention (Merullo et al., arXiv 2305.16130, section 4): the output of
   one FFN at the last position of "What is the capital of Poland?" carries the
   "capital of" function. Take it (FFN 19 of gpt2-medium by default), write it over the
   MLP outputs of layers 18..23 at the last position of a prompt with no question in it,
   "table mug free China table mug free China table mug free", and watch the rank of
   " Beijing" in the logit lens of every layer, before and after.

       build/ovector [--model DIR] [--ffn LAYER] [--from A] [--to B] [--city " Beijing"] [--threads N]

   The defaults scale with the model's depth (19, 18..23 of gpt2-medium's 24 layers). */
#define PATCHSCOPE_IMPLEMENTATION
#include "../patchscope.h"
#include "example.h"

#define QA "Q: What is the capital of Somalia?\nA: Mogadishu\nQ: What is the capital of Poland?\nA:"
#define NONSENSE "table mug free China table mug free China table mug free"

/* the rank of id in the logit lens of h_l at the last position, for every layer */
static int lens_ranks(example *e, const int *ids, int n, int id, int *ranks) {
    int L = ps_model_config(e->m)->n_layer, V = ps_model_config(e->m)->n_vocab, l, last = n - 1;
    float *probs = (float *)malloc((size_t)L * V * sizeof(float)), *h;
    ps_source src;
    if (!probs || ps_source_run(e->c, ids, n, PS_RESID_POST, &last, 1, &src)) return 1;
    h = (float *)malloc((size_t)L * src.width * sizeof(float));
    for (l = 0; l < L; l++) memcpy(h + (size_t)l * src.width, ps_source_state(&src, l, last), (size_t)src.width * sizeof(float));
    if (ps_lens(e->c, h, L, probs)) return 1;
    for (l = 0; l < L; l++) ranks[l] = ps_rank(probs + (size_t)l * V, V, id);
    ps_source_free(&src);
    free(h);
    free(probs);
    return 0;
}

int main(int argc, char **argv) {
    const char *city = example_arg(argc, argv, "--city", " Beijing");
    example e;
    ps_source ffn;
    ps_overwrite ov;
    int L, ffn_layer, from, to, l, n_qa, n_in, n_city, *qa, *in, *city_ids, last, *before, *after, handle;
    char label[64];
    if (example_open(&e, example_arg(argc, argv, "--model", NULL), "weights/gpt2-medium",
                     atoi(example_arg(argc, argv, "--threads", "0"))))
        return 1;
    L = ps_model_config(e.m)->n_layer;
    ffn_layer = atoi(example_arg(argc, argv, "--ffn", "-1"));
    from = atoi(example_arg(argc, argv, "--from", "-1"));
    to = atoi(example_arg(argc, argv, "--to", "-1"));
    if (ffn_layer < 0) ffn_layer = L * 19 / 24;
    if (from < 0) from = L * 18 / 24;
    if (to < 0) to = L - 1;
    if (ffn_layer >= L || from > to || to >= L) return fprintf(stderr, "layers must lie in 0..%d\n", L - 1), 1;

    qa = example_encode(&e, QA, &n_qa);
    in = example_encode(&e, NONSENSE, &n_in);
    city_ids = example_piece(&e, city, &n_city);
    before = (int *)malloc((size_t)L * sizeof(int));
    after = (int *)malloc((size_t)L * sizeof(int));

    /* the o-vector: FFN ffn_layer's output (mlp_out) at the last position of the question */
    last = n_qa - 1;
    if (ps_source_run(e.c, qa, n_qa, PS_MLP_OUT, &last, 1, &ffn)) return fprintf(stderr, "%s\n", ps_ctx_error(e.c)), 1;

    if (lens_ranks(&e, in, n_in, city_ids[0], before)) return fprintf(stderr, "%s\n", ps_ctx_error(e.c)), 1;

    /* the intervention is just a hook: overwrite mlp_out at the last position in each layer */
    ov.pos = n_in - 1;
    ov.seq = 0;
    ov.vec = ps_source_state(&ffn, ffn_layer, last);
    for (l = from; l <= to; l++)
        if (ps_add_hook(e.c, PS_MLP_OUT, l, ps_overwrite_hook, &ov, &handle)) return fprintf(stderr, "%s\n", ps_ctx_error(e.c)), 1;
    if (lens_ranks(&e, in, n_in, city_ids[0], after)) return fprintf(stderr, "%s\n", ps_ctx_error(e.c)), 1;
    ps_clear_hooks(e.c);

    printf("model %s: the output of FFN %d at the last position of the Poland question\n", e.dir, ffn_layer);
    printf("replaces the MLP outputs of layers %d-%d at the last position of \"%s\"\n\n", from, to, NONSENSE);
    ps_token_label(e.t, city_ids[0], label, sizeof label);
    printf("rank of \"%s\" in the logit lens (0 = top-1)\nlayer   before    after\n", label);
    for (l = 0; l < L; l++) printf("%5d %8d %8d%s\n", l, before[l], after[l], l >= from && l <= to ? "  *" : "");
    printf("(* layers whose MLP output was replaced)\n");
    printf("final prediction rank of \"%s\": %d before, %d after\n", label, before[L - 1], after[L - 1]);

    ps_source_free(&ffn);
    free(qa); free(in); free(city_ids); free(before); free(after);
    example_close(&e);
    return 0;
}
