/* Cross-family Patchscopes: read the tiny GPT-2's hidden states through the tiny Llama's
   token-identity prompt. The two models tokenize differently, so positions are paired
   where the decoded prefixes of both tokenizations agree (as the official cross-model code
   pairs them); on the pairs of some sentences an affine map per (GPT-2 layer, Llama layer)
   is fitted by least squares, and on the other sentences each GPT-2 state, mapped, is
   written into the Llama's "cat->cat; 135->135; hello->hello; ?->" at its last token. A
   cell is right when the Llama then says the word whose state it is: its own token that
   ends at the paired point, leading spaces aside.

       build/cross_family [--source DIR] [--target DIR] [--prompts F] [--ridge R] [--svg F] [--threads N]

   Prints precision@1 per (source layer, target layer) twice: against the word itself, and
   against the Llama's own next-token prediction at the paired point (what a state fitted
   to the Llama's states at that layer carries); --svg draws the second, a line per target
   layer. Defaults: weights/tiny into weights/tiny-llama, examples/data/cross_family_prompts.txt
   (292 sentences of both models' training facts), ridge 1, one sentence in four held out. */
#define PATCHSCOPE_IMPLEMENTATION
#include "../patchscope.h"
#include "example.h"

#define IDENTITY "cat->cat; 135->135; hello->hello; ?->"
#define MAX_PAIRS 4096

typedef struct pair {
    int sentence, i, j; /* GPT-2 position i, Llama position j (after its BOS) */
    int want;           /* the Llama's token at j: what its identity prompt should say */
    int next;           /* the Llama's own prediction at j: what a state that holds it says */
    int held_out;
} pair;

/* the same word: two tokens' texts equal but for leading spaces (the copying prompt's answer
   follows "->" without one, "Warsaw" for " Warsaw") */
static int same_word(const ps_tokenizer *t, int a, int b) {
    size_t na, nb;
    const char *x = ps_token_bytes(t, a, &na), *y = ps_token_bytes(t, b, &nb);
    if (!x || !y) return 0;
    while (na && *x == ' ') x++, na--;
    while (nb && *y == ' ') y++, nb--;
    return na > 0 && na == nb && memcmp(x, y, na) == 0;
}

/* bytes of the decoded first k ids, for k = 1..n (len[k - 1]) */
static void prefix_lengths(const ps_tokenizer *t, const int *ids, int n, size_t *len) {
    int k;
    for (k = 1; k <= n; k++) ps_decode(t, ids, k, NULL, 0, &len[k - 1]);
}

int main(int argc, char **argv) {
    const char *svg = example_arg(argc, argv, "--svg", NULL);
    double ridge = atof(example_arg(argc, argv, "--ridge", "1"));
    FILE *f = fopen(example_arg(argc, argv, "--prompts", "examples/data/cross_family_prompts.txt"), "r");
    example src, tgt;
    pair *pairs = (pair *)malloc(MAX_PAIRS * sizeof *pairs);
    int n_pairs = 0, n_sent = 0, Ls, Lt, Cs, Ct, a, b, k, n_train = 0, n_test = 0, *tgt_ids, n_tgt;
    char line[512];
    float *xs, *ys, *maps;
    double *right, *ahead;
    if (!f || !pairs) return fprintf(stderr, "cannot read the prompts\n"), 1;
    if (example_open(&src, example_arg(argc, argv, "--source", "weights/tiny"), "weights/tiny", atoi(example_arg(argc, argv, "--threads", "0"))) ||
        example_open(&tgt, example_arg(argc, argv, "--target", "weights/tiny-llama"), "weights/tiny-llama", atoi(example_arg(argc, argv, "--threads", "0"))))
        return 1;
    Ls = ps_model_config(src.m)->n_layer, Lt = ps_model_config(tgt.m)->n_layer;
    Cs = ps_model_config(src.m)->n_embd, Ct = ps_model_config(tgt.m)->n_embd;
    xs = (float *)malloc((size_t)MAX_PAIRS * Ls * Cs * sizeof(float));
    ys = (float *)malloc((size_t)MAX_PAIRS * Lt * Ct * sizeof(float));
    maps = (float *)malloc((size_t)Ls * Lt * (Cs + 1) * Ct * sizeof(float));
    right = (double *)calloc((size_t)Ls * Lt, sizeof(double));
    ahead = (double *)calloc((size_t)Ls * Lt, sizeof(double));
    if (!xs || !ys || !maps || !right || !ahead) return fprintf(stderr, "out of memory\n"), 1;

    /* the pairs, and both models' states at them */
    while (fgets(line, sizeof line, f)) {
        int n1, n2, n_plain = 0, off, *s1, *s2, i, j = 0;
        size_t l1[256], l2[256];
        ps_source h1, h2;
        line[strcspn(line, "\n")] = 0;
        if (!*line) continue;
        s1 = example_encode(&src, line, &n1);
        s2 = example_encode(&tgt, line, &n2); /* with the Llama's BOS: the texts are compared after it */
        ps_encode(tgt.t, line, strlen(line), 0, NULL, 0, &n_plain);
        off = n2 - n_plain;
        if (n1 > 256 || n2 > 256 || off < 0) return fprintf(stderr, "a prompt is too long\n"), 1;
        prefix_lengths(src.t, s1, n1, l1);
        prefix_lengths(tgt.t, s2 + off, n2 - off, l2);
        if (ps_source_run(src.c, s1, n1, PS_RESID_POST, NULL, 0, &h1) || ps_source_run(tgt.c, s2, n2, PS_RESID_POST, NULL, 0, &h2))
            return fprintf(stderr, "%s\n", ps_ctx_error(src.c)), 1;
        for (i = 0; i < n1 && n_pairs < MAX_PAIRS; i++) {
            while (j < n2 - off && l2[j] < l1[i]) j++;
            if (j == n2 - off || l2[j] != l1[i] || l1[i] == 0) continue;
            pairs[n_pairs].sentence = n_sent;
            pairs[n_pairs].i = i;
            pairs[n_pairs].j = j + off;
            pairs[n_pairs].want = s2[j + off];
            ps_ctx_reset(tgt.c);
            if (ps_forward(tgt.c, s2, j + off + 1, 0)) return fprintf(stderr, "%s\n", ps_ctx_error(tgt.c)), 1;
            pairs[n_pairs].next = ps_argmax(ps_logits(tgt.c, 0), ps_model_config(tgt.m)->n_vocab);
            pairs[n_pairs].held_out = n_sent % 4 == 3;
            for (a = 0; a < Ls; a++)
                memcpy(xs + ((size_t)a * MAX_PAIRS + n_pairs) * Cs, ps_source_state(&h1, a, i), (size_t)Cs * sizeof(float));
            for (b = 0; b < Lt; b++)
                memcpy(ys + ((size_t)b * MAX_PAIRS + n_pairs) * Ct, ps_source_state(&h2, b, j + off), (size_t)Ct * sizeof(float));
            n_pairs++;
        }
        ps_source_free(&h1);
        ps_source_free(&h2);
        free(s1);
        free(s2);
        n_sent++;
    }
    fclose(f);
    /* training pairs first: each layer's rows are then one contiguous block to fit on */
    for (k = 0; k < n_pairs; k++) n_train += !pairs[k].held_out;
    {
        float *x2 = (float *)malloc((size_t)n_pairs * Cs * sizeof(float)), *y2 = (float *)malloc((size_t)n_pairs * Ct * sizeof(float));
        for (a = 0; a < Ls; a++)
            for (b = 0; b < Lt; b++) {
                int r = 0;
                for (k = 0; k < n_pairs; k++)
                    if (!pairs[k].held_out) {
                        memcpy(x2 + (size_t)r * Cs, xs + ((size_t)a * MAX_PAIRS + k) * Cs, (size_t)Cs * sizeof(float));
                        memcpy(y2 + (size_t)r * Ct, ys + ((size_t)b * MAX_PAIRS + k) * Ct, (size_t)Ct * sizeof(float));
                        r++;
                    }
                if (ps_fit_affine(x2, Cs, y2, Ct, n_train, ridge, maps + ((size_t)a * Lt + b) * (Cs + 1) * Ct))
                    return fprintf(stderr, "the map %d -> %d is singular: raise --ridge\n", a, b), 1;
            }
        free(x2);
        free(y2);
    }
    /* the held-out pairs through the Llama's identity prompt: every layer pair of 7 pairs in
       one run (about 256 cells), one shared run of the prompt */
    tgt_ids = example_encode(&tgt, IDENTITY, &n_tgt);
    {
        enum { G = 7 };
        ps_grid_spec *specs = (ps_grid_spec *)calloc((size_t)G * Ls * Lt, sizeof *specs);
        ps_grid *grids = (ps_grid *)calloc((size_t)G * Ls * Lt, sizeof *grids);
        ps_source one[G];
        int batch[G], nb = 0, g, c;
        for (k = 0; k <= n_pairs; k++) {
            if (k < n_pairs && !pairs[k].held_out) continue;
            if (k < n_pairs) { /* the GPT-2 state as a one-position source */
                ps_source *o = &one[nb];
                o->site = PS_RESID_POST, o->n_layer = Ls, o->width = Cs, o->n_pos = 1, o->n_tokens = pairs[k].i + 1;
                o->pos = &pairs[k].i;
                o->h = (float *)malloc((size_t)Ls * Cs * sizeof(float));
                for (a = 0; a < Ls; a++) memcpy(o->h + (size_t)a * Cs, xs + ((size_t)a * MAX_PAIRS + k) * Cs, (size_t)Cs * sizeof(float));
                for (a = 0; a < Ls; a++)
                    for (b = 0; b < Lt; b++) {
                        ps_grid_spec *sp = &specs[(nb * Ls + a) * Lt + b];
                        sp->src = o, sp->src_pos = pairs[k].i, sp->src_first = sp->src_last = a;
                        sp->target = tgt_ids, sp->n_target = n_tgt, sp->tgt_pos = -1, sp->tgt_first = sp->tgt_last = b;
                        sp->map.affine = maps + ((size_t)a * Lt + b) * (Cs + 1) * Ct;
                    }
                batch[nb++] = k;
            }
            if (nb == G || (k == n_pairs && nb > 0)) {
                if (ps_grid_run_many(tgt.c, specs, nb * Ls * Lt, grids)) return fprintf(stderr, "%s\n", ps_ctx_error(tgt.c)), 1;
                for (g = 0; g < nb; g++) {
                    for (c = 0; c < Ls * Lt; c++) {
                        int top = grids[g * Ls * Lt + c].top_id[0];
                        right[c] += same_word(tgt.t, top, pairs[batch[g]].want);
                        ahead[c] += same_word(tgt.t, top, pairs[batch[g]].next);
                        ps_grid_free(&grids[g * Ls * Lt + c]);
                    }
                    free(one[g].h);
                    n_test++;
                }
                nb = 0;
            }
        }
        free(specs);
        free(grids);
    }
    printf("%d sentences, %d paired positions (%d to fit the maps, %d held out)\n", n_sent, n_pairs, n_train, n_test);
    for (k = 0; k < 2; k++) {
        double *m = k ? ahead : right;
        printf(k ? "\nprecision@1 against the Llama's own next-token prediction there\nsrc\\tgt"
                 : "precision@1 of the Llama's token-identity readout of mapped GPT-2 states: the word itself\nsrc\\tgt");
        for (b = 0; b < Lt; b++) printf("%7d", b);
        for (a = 0; a < Ls; a++) {
            printf("\n%7d", a);
            for (b = 0; b < Lt; b++) printf("%7.2f", m[a * Lt + b] /= n_test > 0 ? n_test : 1);
        }
        printf("\n");
    }
    if (svg) { /* a line per target layer over the source layers */
        char names[64][32];
        const char *nm[64];
        double *v = (double *)malloc((size_t)Ls * Lt * sizeof(double));
        int *xl = (int *)malloc((size_t)Ls * sizeof(int));
        for (b = 0; b < Lt && b < 64; b++) {
            snprintf(names[b], sizeof names[b], "Llama layer %d", b);
            nm[b] = names[b];
            for (a = 0; a < Ls; a++) v[b * Ls + a] = ahead[a * Lt + b], xl[a] = a;
        }
        if (ps_lines_save_svg(svg, "Tiny GPT-2 states, mapped, in the tiny Llama's identity prompt: its own next token",
                              "GPT-2 layer", Lt < 64 ? Lt : 64, nm, v, xl, Ls, 0, 1))
            fprintf(stderr, "cannot write %s\n", svg);
        else printf("wrote %s\n", svg);
        free(v);
        free(xl);
    }
    free(tgt_ids), free(pairs), free(xs), free(ys), free(maps), free(right), free(ahead);
    example_close(&src);
    example_close(&tgt);
    return 0;
}
