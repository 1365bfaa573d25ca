/* The "CEO" demo (Patchscopes, token identity): what does GPT-2 know at the " CEO"
   position of "Amazon's former CEO attended Oscars", layer by layer?

   Take h_l, the output of block l at the last " CEO" token of the source prompt, for
   every source layer l; write it over the output of block l* at the last position of a
   few-shot copying prompt, "cat->cat; 135->135; hello->hello; ?->", for every target
   layer l*; read the top-1 next token. Column l* = L-1 is the logit lens of h_l.

       build/ceo_demo [--model DIR] [--svg F] [--csv F] [--threads N]

   Writes a table to stdout, the heatmap as SVG and the cells as CSV. */
#define PATCHSCOPE_IMPLEMENTATION
#include "../patchscope.h"
#include "example.h"

static int show_progress(int done, int total, void *user) {
    (void)user;
    fprintf(stderr, "\r%d/%d cells", done, total);
    if (done == total) fprintf(stderr, "\n");
    return 0;
}

int main(int argc, char **argv) {
    const char *source = example_arg(argc, argv, "--source-prompt", "Amazon's former CEO attended Oscars");
    const char *token = example_arg(argc, argv, "--source-token", " CEO");
    const char *target = example_arg(argc, argv, "--target-prompt", "cat->cat; 135->135; hello->hello; ?->");
    const char *svg = example_arg(argc, argv, "--svg", "build/ceo_grid.svg");
    const char *csv = example_arg(argc, argv, "--csv", "build/ceo_grid.csv");
    int threads = atoi(example_arg(argc, argv, "--threads", "0"));
    example e;
    ps_source src;
    ps_grid_spec spec;
    ps_grid grid;
    int n_src, n_tgt, *src_ids, *tgt_ids, pos, L, i, j;
    char label[64], title[256];

    if (example_open(&e, example_arg(argc, argv, "--model", NULL), "weights/gpt2", threads)) return 1;
    L = ps_model_config(e.m)->n_layer;
    src_ids = example_encode(&e, source, &n_src);
    tgt_ids = example_encode(&e, target, &n_tgt);

    /* the source position: the last occurrence of the token, by its ids */
    pos = ps_find_text(e.t, src_ids, n_src, token);
    if (pos < 0) {
        fprintf(stderr, "\"%s\" does not occur in the tokens of \"%s\"\n", token, source);
        return 1;
    }
    printf("model %s (%d layers); source \"%s\", \"%s\" at position %d of %d\n", e.dir, L, source, token, pos, n_src);
    printf("target \"%s\" (%d tokens), patched at its last position\n\n", target, n_tgt);

    /* one source run keeps h_l at that position for every layer */
    if (ps_source_run(e.c, src_ids, n_src, PS_RESID_POST, &pos, 1, &src)) {
        fprintf(stderr, "%s\n", ps_ctx_error(e.c));
        return 1;
    }

    /* the grid: every source layer into every target layer */
    memset(&spec, 0, sizeof spec);
    spec.src = &src;
    spec.src_pos = pos;
    spec.src_first = 0;
    spec.src_last = L - 1;
    spec.target = tgt_ids;
    spec.n_target = n_tgt;
    spec.tgt_pos = -1;
    spec.tgt_first = 0;
    spec.tgt_last = L - 1;
    if (example_flag(argc, argv, "--progress")) spec.progress = show_progress;
    if (ps_grid_run(e.c, &spec, &grid)) {
        fprintf(stderr, "%s\n", ps_ctx_error(e.c));
        return 1;
    }

    /* the table: rows are source layers, columns target layers */
    printf("src\\tgt");
    for (j = 0; j < L; j++) printf("%10d", j);
    printf("\n");
    for (i = 0; i < L; i++) {
        printf("%7d", i);
        for (j = 0; j < L; j++) {
            ps_token_label(e.t, grid.top_id[i * L + j], label, sizeof label);
            printf(" %5.5s %3.0f", label, 100 * grid.top_prob[i * L + j]);
        }
        printf("\n");
    }
    printf("(each cell: top-1 token, its probability in %%)\n\n");

    /* the logit-lens column, the one the paper reads */
    printf("logit lens of h_l at \"%s\" (target layer %d):\n", token, L - 1);
    for (i = 0; i < L; i++) {
        ps_token_label(e.t, grid.top_id[i * L + L - 1], label, sizeof label);
        printf("  layer %2d  %-12s p = %.3f\n", i, label, grid.top_prob[i * L + L - 1]);
    }

    snprintf(title, sizeof title, "%s: \"%s\" of \"%s\" patched into \"%s\"", e.dir, token, source, target);
    if (ps_grid_save_svg(&grid, e.t, title, svg) || ps_grid_save_csv(&grid, e.t, csv)) {
        fprintf(stderr, "cannot write %s or %s\n", svg, csv);
        return 1;
    }
    printf("\nwrote %s and %s\n", svg, csv);

    ps_grid_free(&grid);
    ps_source_free(&src);
    free(src_ids);
    free(tgt_ids);
    example_close(&e);
    return 0;
}
