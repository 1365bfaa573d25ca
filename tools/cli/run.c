/* run, generate, tokenize, decode, info: one pass, greedy decoding, the tokenizer both
   ways, and what a model is. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const cli_opt run_opts[] = {
    {"--all-logits", NULL, NULL, "logits of every position, not just the last"},
    {"--dump", "POINT,...", NULL, "hook points to print for every layer and position (with --json)"},
    {NULL, NULL, NULL, NULL}};

const cli_opt generate_opts[] = {
    {"-n", "N", "16", "tokens to generate"},
    {"--dump", "POINT,...", NULL, "hook points to print (with --json) for every layer and every position run: the "
     "prompt's, then each generated token's but the last (which is never run)"},
    {NULL, NULL, NULL, NULL}};

const cli_opt tokenize_opts[] = {
    {"--model", "DIR", "the committed GPT-2 tokenizer in weights/", "the folder whose tokenizer to use"},
    {"--tokenizer", "PATH", "--model's", "a tokenizer.json, or a folder with one (or vocab.json + merges.txt)"},
    {"--special", NULL, NULL, "read special tokens' strings (<s>, <|endoftext|>) as those tokens"},
    {"--bos", NULL, NULL, "add what the tokenizer's post-processor adds (Llama's BOS)"},
    {"--file", "F", NULL, "read the text from F instead (- or no TEXT: standard input)"},
    {"--json", NULL, NULL, "print the ids as a JSON list"},
    {NULL, NULL, NULL, NULL}};

const cli_opt info_opts[] = {{NULL, NULL, NULL, NULL}};

const cli_opt decode_opts[] = {
    {"--model", "DIR", "the committed GPT-2 tokenizer in weights/", "the folder whose tokenizer to use"},
    {"--tokenizer", "PATH", "--model's", "a tokenizer.json, or a folder with one (or vocab.json + merges.txt)"},
    {"--json", NULL, NULL, "a JSON list with one string per IDS argument (invalid UTF-8 becomes U+FFFD)"},
    {NULL, NULL, NULL, NULL}};

int cmd_run(example *e) {
    static cli_steering steering;
    static cli_ablation ablation;
    const ps_config *cfg = ps_model_config(e->m);
    int V = cfg->n_vocab, T, i, k = 0, top[5];
    int *ids = prompt_ids(e, "--ids", "--prompt", &T);
    float *probs = (float *)malloc((size_t)V * sizeof(float)), topp[5];
    ps_capture caps[PS_POINT_COUNT];
    if (!ids) return prompt_error;
    if (!probs) return die("out of memory");
    if ((i = dump_begin(e, T, caps, &k))) return i;
    if ((i = ablation_begin(e, &ablation)) || (i = steering_begin(e, T, &steering))) return i;
    i = ps_run_with_cache(e->c, ids, T, flag("--all-logits") ? PS_ALL_LOGITS : 0, caps, k);
    steering_end(e, &steering);
    ablation_end(e, &ablation);
    if (i) return die("%s", ps_ctx_error(e->c));
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
    print_dump(e, caps, k, T);
    printf("}\n");
done:
    for (i = 0; i < k; i++) free(caps[i].out);
    free(ids);
    free(probs);
    return 0;
}

int cmd_generate(example *e) {
    static cli_steering steering;
    static cli_ablation ablation;
    int n, n_new, *ids = prompt_ids(e, "--ids", "--prompt", &n), *all, i, k = 0, rows;
    ps_capture caps[PS_POINT_COUNT];
    char *text;
    size_t len;
    if (!ids) return prompt_error;
    if (!int_opt("-n", 16, &n_new)) return CLI_USAGE;
    if (n_new < 0) return usage_error("-n must not be negative");
    all = (int *)malloc(((size_t)n + n_new) * sizeof(int));
    if (!all) return die("out of memory");
    memcpy(all, ids, (size_t)n * sizeof(int));
    rows = n + (n_new > 0 ? n_new - 1 : 0); /* every position run; the last token is never run */
    if ((i = dump_begin(e, rows, caps, &k))) return i;
    if ((i = ablation_begin(e, &ablation)) || (i = steering_begin(e, n, &steering))) return i;
    i = ps_generate_with_cache(e->c, ids, n, n_new, all + n, caps, k);
    steering_end(e, &steering);
    ablation_end(e, &ablation);
    if (i) return die("%s", ps_ctx_error(e->c));
    len = 0; /* without a tokenizer there is no text: "text" is null */
    if (e->t) ps_decode(e->t, all, n + n_new, NULL, 0, &len);
    text = (char *)malloc(len + 1);
    if (!text || (e->t && ps_decode(e->t, all, n + n_new, text, len, &len))) return die("cannot decode the ids");
    if (json) { /* "text" is valid UTF-8 (U+FFFD for what is not); the ids are exact */
        printf("{\"ids\": ");
        print_ints(all, n + n_new);
        printf(", \"text\": ");
        if (e->t) print_json_bytes(text, len);
        else printf("null");
        print_dump(e, caps, k, rows);
        printf("}\n");
    } else {
        for (i = 0; i < n + n_new; i++) printf(i ? ",%d" : "%d", all[i]);
        printf("\n");
        fwrite(text, 1, len, stdout);
        printf("\n");
    }
    for (i = 0; i < k; i++) free(caps[i].out);
    free(all); free(ids); free(text);
    return 0;
}

/* the text: the positional argument, --file F, or - for standard input */
static char *read_text(size_t *len) {
    const char *file = opt("--file");
    if (!file && n_positional == 1 && strcmp(positional[0], "-") != 0) {
        *len = strlen(positional[0]);
        return strcpy((char *)malloc(*len + 1), positional[0]);
    }
    if (!file && n_positional != 1) return usage_error("give one TEXT, --file F or -"), NULL;
    return read_file(file ? file : "-", len);
}

int cmd_tokenize(example *e) {
    ps_tokenizer *t = e->t;
    size_t len;
    char *text = read_text(&len);
    int n, *ids, i, flags = (flag("--special") ? PS_ENCODE_SPECIAL : 0) | (flag("--bos") ? PS_ENCODE_BOS : 0);
    if (!text) return n_positional == 1 || opt("--file") ? CLI_FAIL : CLI_USAGE;
    if (ps_encode(t, text, len, flags, NULL, 0, &n) == PS_ERR_FORMAT)
        return die("the text is not valid UTF-8, which this tokenizer needs");
    ids = (int *)malloc((size_t)(n ? n : 1) * sizeof(int));
    if (!ids || ps_encode(t, text, len, flags, ids, n, &n)) return die("cannot encode");
    if (json) print_ints(ids, n);
    else for (i = 0; i < n; i++) printf(i ? ",%d" : "%d", ids[i]);
    printf("\n");
    free(ids);
    free(text);
    return 0;
}

int cmd_decode(example *e) {
    ps_tokenizer *t = e->t;
    int i, n;
    if (json) putchar('[');
    for (i = 0; i < n_positional; i++) {
        int *ids;
        char *text;
        size_t len;
        if (!(ids = parse_ids(positional[i], &n))) return usage_error("bad id list: %s", positional[i]);
        if (ps_decode(t, ids, n, NULL, 0, &len) == PS_ERR_RANGE && len == 0) return die("an id is outside the vocabulary");
        text = (char *)malloc(len + 1);
        if (!text || ps_decode(t, ids, n, text, len, &len)) return die("cannot decode");
        if (json) {
            if (i) printf(", ");
            print_json_bytes(text, len);
        } else fwrite(text, 1, len, stdout);
        free(text);
        free(ids);
    }
    printf(json ? "]\n" : "\n");
    return 0;
}

int cmd_info(example *e) {
    const ps_config *c = ps_model_config(e->m);
    static const char *const dtypes[] = {"F32", "F16", "BF16"};
    ps_model_sizes z;
    ps_model_get_sizes(e->m, &z);
    if (!json) {
        printf("%s: %s, %d layers, width %d, %d heads (%d key/value) of %d, MLP %d, vocabulary %d, %d positions\n",
               e->dir, c->family, c->n_layer, c->n_embd, c->n_head, c->n_kv_head, c->d_head, c->d_mlp, c->n_vocab,
               c->n_ctx);
        printf("%lld parameters in %d file(s), %.1f MB; matrices %s; %.1f MB converted at load\n", z.n_params,
               z.n_files, z.file_bytes / 1e6, dtypes[ps_model_dtype(e->m)], z.own_bytes / 1e6);
        return 0;
    }
    printf("{\"family\": ");
    print_json_string(c->family);
    printf(", \"n_layer\": %d, \"n_embd\": %d, \"n_head\": %d, \"n_kv_head\": %d, \"d_head\": %d, "
           "\"d_mlp\": %d, \"n_vocab\": %d, \"n_ctx\": %d, \"norm_eps\": %.9g, \"rotary_dim\": %d, "
           "\"sliding_window\": %d, \"dtype\": \"%s\", \"n_params\": %lld, \"files\": %d, \"file_bytes\": %lu, "
           "\"converted_bytes\": %lu, \"tokenizer\": %s}\n",
           c->n_layer, c->n_embd, c->n_head, c->n_kv_head, c->d_head, c->d_mlp, c->n_vocab, c->n_ctx,
           (double)c->ln_eps, c->rotary_dim, c->sliding_window, dtypes[ps_model_dtype(e->m)], z.n_params, z.n_files,
           (unsigned long)z.file_bytes, (unsigned long)z.own_bytes, e->t ? "true" : "false");
    return 0;
}
