/* The three reference experiments on the real checkpoints, against the seed's numbers
   (tests/data/seed_reference_values.json, measured with PyTorch + Hugging Face): the
   top-1 token of every cell must be equal and its probability within 0.01.
   Needs weights/gpt2 and weights/gpt2-medium (weights/download.sh); without them each
   experiment prints that it was skipped and why, and passes. */
#define PATCHSCOPE_IMPLEMENTATION
#include "../patchscope.h"
#include "testutil.h"

#define QA "Q: What is the capital of Somalia?\nA: Mogadishu\nQ: What is the capital of Poland?\nA:"
#define EXTRACTIVE "The capital of Somalia is Mogadishu.\nThe capital of Poland is Warsaw.\n" QA

/* the seed's cells for one experiment: top tokens as text, and probabilities */
typedef struct seed {
    char tok[24][12][32];
    float prob[24][12];
    int rows, cols;
} seed;

static int read_seed(const char *experiment, seed *s) {
    ps__file f;
    ps__json j;
    ps_error e;
    char key[64];
    int r, found = 0;
    if (ps__file_read(&f, "tests/data/seed_reference_values.json", 0, &e)) return 0;
    ps__json_init(&j, (const char *)f.data, f.size);
    memset(s, 0, sizeof *s);
    if (ps__json_object(&j)) return 0;
    while ((r = ps__json_key(&j, key, sizeof key, NULL)) == 1) {
        if (strcmp(key, experiment) != 0) {
            if (ps__json_skip(&j)) break;
            continue;
        }
        found = 1;
        if (ps__json_object(&j)) break;
        while ((r = ps__json_key(&j, key, sizeof key, NULL)) == 1) {
            int is_tok = strcmp(key, "top_token") == 0, is_prob = strcmp(key, "top_prob") == 0, i = 0, k;
            if (!is_tok && !is_prob) {
                if (ps__json_skip(&j)) return 0;
                continue;
            }
            if (ps__json_array(&j)) return 0;
            for (; ps__json_item(&j) == 1 && i < 24; i++) {
                if (ps__json_array(&j)) return 0;
                for (k = 0; ps__json_item(&j) == 1 && k < 12; k++) {
                    double v;
                    if (is_tok ? ps__json_string(&j, s->tok[i][k], 32, NULL) : ps__json_number(&j, &v, NULL)) return 0;
                    if (is_prob) s->prob[i][k] = (float)v;
                }
                s->cols = k;
            }
            s->rows = i;
        }
        break;
    }
    ps__file_close(&f);
    return found && s->rows > 0;
}

static int have(const char *dir) {
    char path[256];
    FILE *f;
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if ((f = fopen(path, "rb"))) fclose(f);
    else printf("SKIP: %s is not downloaded (weights/download.sh %s fetches it)\n", dir, dir + 8);
    return f != NULL;
}

static int *encode(const ps_tokenizer *t, const char *text, int *n) {
    int *ids = (int *)malloc(1024 * sizeof(int));
    CHECK(ps_encode(t, text, strlen(text), 0, ids, 1024, n) == PS_OK);
    return ids;
}

/* run the grid and compare every cell with the seed */
static void experiment(const char *name, const char *dir, const char *source, const char *token, const char *target,
                       int src_last, int tgt_first, int tgt_last) {
    ps_model *m;
    ps_tokenizer *t;
    ps_pool *pool;
    ps_ctx *c;
    ps_error e;
    ps_source src;
    ps_grid_spec spec;
    ps_grid g;
    seed sd;
    int n_src, n_tgt, *s_ids, *t_ids, pos, i, k, bad = 0;
    if (!have(dir)) return;
    CHECK(read_seed(name, &sd));
    CHECK(ps_model_load(&m, dir, NULL, &e) == PS_OK);
    CHECK(ps_tokenizer_load(&t, "weights", &e) == PS_OK);
    CHECK(ps_pool_create(&pool, 0) == PS_OK);
    CHECK(ps_ctx_create(&c, m, pool, &e) == PS_OK);
    s_ids = encode(t, source, &n_src);
    t_ids = encode(t, target, &n_tgt);
    pos = token ? ps_find_text(t, s_ids, n_src, token) : n_src - 1;
    CHECK(pos >= 0);
    CHECK(ps_source_run(c, s_ids, n_src, PS_RESID_POST, &pos, 1, &src) == PS_OK);
    memset(&spec, 0, sizeof spec);
    spec.src = &src;
    spec.src_pos = pos;
    spec.src_last = src_last;
    spec.target = t_ids;
    spec.n_target = n_tgt;
    spec.tgt_pos = -1;
    spec.tgt_first = tgt_first;
    spec.tgt_last = tgt_last;
    CHECK(ps_grid_run(c, &spec, &g) == PS_OK);
    CHECK(g.n_src == sd.rows && g.n_tgt == sd.cols);
    for (i = 0; i < g.n_src && i < sd.rows; i++)
        for (k = 0; k < g.n_tgt && k < sd.cols; k++) {
            size_t len;
            const char *b = ps_token_bytes(t, g.top_id[i * g.n_tgt + k], &len);
            int same = len == strlen(sd.tok[i][k]) && memcmp(b, sd.tok[i][k], len) == 0;
            float dp = g.top_prob[i * g.n_tgt + k] - sd.prob[i][k];
            if (!same || dp > 0.01f || dp < -0.01f) {
                printf("%s cell (%d, %d): got \"%.*s\" %.4f, seed \"%s\" %.4f\n", name, i, tgt_first + k, (int)len, b,
                       g.top_prob[i * g.n_tgt + k], sd.tok[i][k], sd.prob[i][k]);
                bad++;
            }
        }
    CHECK_MSG(bad == 0, name);
    printf("%s: %d x %d cells compared with the seed, %d differ\n", name, g.n_src, g.n_tgt, bad);
    ps_grid_free(&g);
    ps_source_free(&src);
    free(s_ids);
    free(t_ids);
    ps_ctx_free(c);
    ps_pool_free(pool);
    ps_tokenizer_free(t);
    ps_model_free(m);
}

/* Real checkpoints of the other families, where downloaded (weights/download.sh OWNER/NAME):
   every weight finite, and the logit lens of the last layer equal to the logits (the final
   norm and unembedding are the family's). No reference next token can be recorded here
   without the weights, so these are self-consistency checks; without the folder: a skip. */
static void real_family(const char *dir, const int *ids, int n) {
    ps_model *m;
    ps_ctx *c;
    ps_error e;
    ps_source s;
    float *probs, *want;
    int V, pos = -1;
    char what[160];
    FILE *f;
    char cfg[512];
    snprintf(cfg, sizeof cfg, "%s/config.json", dir);
    if (!(f = fopen(cfg, "rb"))) {
        printf("SKIP: %s is not downloaded (weights/download.sh fetches it)\n", dir);
        return;
    }
    fclose(f);
    if (ps_model_load(&m, dir, NULL, &e)) {
        printf("FAIL %s: %s\n", dir, e.msg);
        CHECK(0);
        return;
    }
    V = ps_model_config(m)->n_vocab;
    snprintf(what, sizeof what, "%s (%s): weights finite", dir, ps_model_config(m)->family);
    CHECK_MSG(ps_model_check(m, &e) == PS_OK, what);
    probs = (float *)malloc((size_t)V * sizeof(float));
    want = (float *)malloc((size_t)V * sizeof(float));
    CHECK(ps_ctx_create(&c, m, NULL, NULL) == PS_OK);
    CHECK(ps_source_run(c, ids, n, PS_RESID_POST, &pos, 1, &s) == PS_OK);
    ps_ctx_reset(c);
    CHECK(ps_forward(c, ids, n, 0) == PS_OK);
    ps_softmax(ps_logits(c, 0), V, want);
    CHECK(ps_lens(c, ps_source_state(&s, ps_model_config(m)->n_layer - 1, -1), 1, probs) == PS_OK);
    snprintf(what, sizeof what, "%s: the lens of the last layer is the model's output", dir);
    CHECK_CLOSE(probs, want, (size_t)V, 1e-6, what);
    printf("  %s: next token after the prompt ids: %d\n", dir, ps_argmax(want, V));
    ps_source_free(&s);
    ps_ctx_free(c);
    ps_model_free(m);
    free(probs);
    free(want);
}

int main(void) {
    seed sd;
    /* the seed file itself is read right, weights or not */
    CHECK(read_seed("gpt2_ceo_grid", &sd) && sd.rows == 12 && sd.cols == 12);
    CHECK(strcmp(sd.tok[0][11], " CEO") == 0 && fabsf(sd.prob[0][11] - 0.8773f) < 1e-4f && strcmp(sd.tok[11][11], ",") == 0);
    CHECK(read_seed("gpt2medium_abstractive", &sd) && sd.rows == 23 && sd.cols == 1);
    CHECK(strcmp(sd.tok[22][0], " Warsaw") == 0 && fabsf(sd.prob[22][0] - 0.5692f) < 1e-4f);
    CHECK(read_seed("gpt2medium_extractive", &sd) && sd.rows == 23 && strcmp(sd.tok[0][0], "\n") == 0);
    experiment("gpt2_ceo_grid", "weights/gpt2", "Amazon's former CEO attended Oscars", " CEO",
               "cat->cat; 135->135; hello->hello; ?->", 11, 0, 11);
    experiment("gpt2medium_abstractive", "weights/gpt2-medium", QA, NULL, QA, 22, 22, 22);
    experiment("gpt2medium_extractive", "weights/gpt2-medium", EXTRACTIVE, NULL, EXTRACTIVE, 22, 22, 22);
    { /* a short prompt in ids: no tokenizer.json is read yet (Llama-family ids start with BOS 1) */
        static const int neox[] = {510, 5347, 273, 11913, 310}, llama[] = {1, 450, 7483, 310, 18898, 338};
        real_family("weights/pythia-160m", neox, 5);
        real_family("weights/TinyLlama-1.1B-Chat-v1.0", llama, 6);
        real_family("weights/tiny-llama", llama, 6);
    }
    return test_report("real");
}
