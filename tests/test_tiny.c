/* The shipped tiny model (weights/tiny), through the normal loader and the public API:
   what its training reliably produced (weights/tiny/MODEL_CARD.md lists the margins;
   every assertion here has a logit gap of at least 2.3 to the runner-up). */
#define PATCHSCOPE_IMPLEMENTATION
#include "../patchscope.h"
#include "testutil.h"

#define QA "Q: What is the capital of Somalia?\nA: Mogadishu\nQ: What is the capital of Poland?\nA:"
#define WARSAW 32955

static ps_model *m;
static ps_tokenizer *t;
static ps_ctx *c;
static int V;

static int encode(const char *text, int *ids, int cap) {
    int n = 0;
    CHECK(ps_encode(t, text, strlen(text), 0, ids, cap, &n) == PS_OK);
    return n;
}

/* the greedy next token of a prompt */
static int next_token(const char *text) {
    int ids[256], n = encode(text, ids, 256);
    ps_ctx_reset(c);
    CHECK(ps_forward(c, ids, n, 0) == PS_OK);
    return ps_argmax(ps_logits(c, 0), V);
}

/* the top-1 of the logit lens of h_layer at pos */
static int lens_top(const char *text, int pos, int layer) {
    int ids[256], n = encode(text, ids, 256), top;
    float *probs = (float *)malloc((size_t)V * sizeof(float));
    ps_source src;
    CHECK(ps_source_run(c, ids, n, PS_RESID_POST, &pos, 1, &src) == PS_OK);
    CHECK(ps_lens(c, ps_source_state(&src, layer, pos), 1, probs) == PS_OK);
    top = ps_argmax(probs, V);
    ps_source_free(&src);
    free(probs);
    return top;
}

int main(void) {
    static const int qa_ids[] = {48, 25, 1867, 318, 262, 3139, 286, 23918, 30, 198, 32, 25, 30926, 48563,
                                 84, 198, 48, 25, 1867, 318, 262, 3139, 286, 12873, 30, 198, 32, 25};
    ps_error e;
    int ids[64], n, gen[2], ceo;
    if (ps_model_load(&m, "weights/tiny", NULL, &e) || ps_tokenizer_load(&t, "weights/tiny", &e)) {
        printf("FAIL: %s\n", e.msg);
        return 1;
    }
    CHECK(ps_ctx_create(&c, m, NULL, &e) == PS_OK);
    V = ps_model_config(m)->n_vocab;
    CHECK(ps_model_config(m)->n_layer == 6 && ps_model_config(m)->n_embd == 128 && V == 50257);
    CHECK(ps_model_dtype(m) == PS_F16);

    /* Experiment B's prompt: our tokens are the trainer's (tiktoken's), and the answer */
    n = encode(QA, ids, 64);
    CHECK(n == 28 && memcmp(ids, qa_ids, sizeof qa_ids) == 0);
    ps_ctx_reset(c);
    CHECK(ps_generate(c, ids, n, 2, gen) == PS_OK);
    CHECK_MSG(gen[0] == WARSAW && gen[1] == 198, "greedy \" Warsaw\\n\" after Experiment B's prompt");
    CHECK_MSG(next_token("The capital of Somalia is Mogadishu.\nThe capital of Poland is Warsaw.\n" QA) == WARSAW,
              "Experiment C answers \" Warsaw\"");
    CHECK_MSG(next_token("Q: What is the capital of China?\nA:") == 11618, "\" Beijing\"");
    CHECK_MSG(next_token("The capital of Poland is") == WARSAW, "a statement template");
    /* the copy format, with held-out words: never copied in training */
    CHECK_MSG(next_token("cat->cat; 135->135; hello->hello; address->") == 21975, "copies \"address\"");
    CHECK_MSG(next_token("cat->cat; 135->135; hello->hello; reports->") == 48922, "copies \"reports\"");

    /* the logit lens: " CEO" at layer 0 of its own position; " Warsaw" from layer 1 of B */
    ceo = ps_token_id(t, " CEO", 4);
    CHECK(ceo == 6123);
    CHECK_MSG(lens_top("Amazon's former CEO attended Oscars", 3, 0) == ceo, "lens layer 0 at \" CEO\" is \" CEO\"");
    CHECK_MSG(lens_top(QA, -1, 1) == WARSAW, "lens layer 1 at B's last position is \" Warsaw\"");
    CHECK_MSG(lens_top(QA, -1, 4) == WARSAW, "lens layer 4 at B's last position is \" Warsaw\"");

    /* the CEO grid: source layer 0 reads " CEO" in the last target layers; from source
       layer 1 on the state carries the entity, " Jeff" (Bezos) */
    {
        int src_ids[16], tgt_ids[32], ns = encode("Amazon's former CEO attended Oscars", src_ids, 16);
        int nt = encode("cat->cat; 135->135; hello->hello; ?->", tgt_ids, 32), pos = ps_find_text(t, src_ids, ns, " CEO");
        ps_source src;
        ps_grid_spec spec;
        ps_grid g;
        CHECK(pos == 3);
        CHECK(ps_source_run(c, src_ids, ns, PS_RESID_POST, &pos, 1, &src) == PS_OK);
        memset(&spec, 0, sizeof spec);
        spec.src = &src;
        spec.src_pos = pos;
        spec.src_last = spec.tgt_last = 5;
        spec.target = tgt_ids;
        spec.n_target = nt;
        spec.tgt_pos = -1;
        CHECK(ps_grid_run(c, &spec, &g) == PS_OK);
        CHECK_MSG(g.top_id[0 * 6 + 5] == ceo && g.top_prob[0 * 6 + 5] > 0.9f, "cell (0, 5): \" CEO\"");
        CHECK_MSG(g.top_id[0 * 6 + 4] == ceo, "cell (0, 4): \" CEO\"");
        CHECK_MSG(g.top_id[3 * 6 + 0] == 5502 && g.top_id[3 * 6 + 1] == 5502, "cells (3, 0) and (3, 1): \" Jeff\"");
        CHECK_MSG(g.top_id[1 * 6 + 4] == 286, "cell (1, 4): \" of\"");
        ps_grid_free(&g);
        ps_source_free(&src);
    }
    ps_ctx_free(c);
    ps_tokenizer_free(t);
    ps_model_free(m);
    return test_report("tiny");
}
