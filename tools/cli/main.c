/* patchscope - the command line front end of patchscope.h.

     patchscope COMMAND [options]       run one command (patchscope --help lists them)
     patchscope COMMAND --help          its usage, every option with its default, an example
     patchscope help [COMMAND]          the same
     patchscope --version

   JSON goes to stdout, messages to stderr, progress only when asked for. Exit status:
   0 success, 1 the run failed (a model that will not load, a position outside the
   prompt, ...), 2 the command line is wrong. This file parses the command line and
   dispatches; the commands live in run.c, scope.c, interv.c, sweep.c and experiment.c. */
#include "cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- option groups several commands take ------------------------------------------------ */

const cli_opt cli_common[] = {
    {"--model", "PATH", "weights/gpt2 when downloaded, else weights/tiny", "the model: a folder as the hub ships it (one file or an index and its shards), one .safetensors file, or an index .json"},
    {"--threads", "N", "0, every online CPU", "threads of the matmul pool"},
    {"--json", NULL, NULL, "print one JSON object (floats in %.9g: they read back bit for bit)"},
    {NULL, NULL, NULL, NULL}};

const cli_opt cli_prompt[] = {
    {"--prompt", "TEXT", NULL, "the prompt"},
    {"--prompt-file", "F", NULL, "the prompt from F (- for standard input; one final newline dropped)"},
    {"--ids", "1,2,3", NULL, "the prompt as token ids instead"},
    {NULL, NULL, NULL, NULL}};

const cli_opt cli_source[] = {
    {"--source-prompt", "TEXT", NULL, "the source prompt"},
    {"--source-prompt-file", "F", NULL, "the source prompt from F (- for standard input)"},
    {"--source-ids", "1,2,3", NULL, "the source prompt as token ids instead"},
    {"--source-token", "TOK", NULL, "source position: the last token of TOK's last occurrence (\" CEO\")"},
    {"--source-pos", "P", "-1, the last token", "source position (negative counts from the end)"},
    {"--site", "POINT", "resid_post", "what is taken and written: resid_post, resid_pre, attn_out, mlp_out, ..."},
    {"--source-model", "DIR", "the target model", "another model for the source side (needs --map)"},
    {"--map", "A.f32", NULL, "affine map from source to target states (written by fit)"},
    {NULL, NULL, NULL, NULL}};

const cli_opt cli_target[] = {
    {"--target-prompt", "TEXT", "the source prompt", "the target prompt"},
    {"--target-prompt-file", "F", NULL, "the target prompt from F (- for standard input)"},
    {"--target-ids", "1,2,3", NULL, "the target prompt as token ids instead"},
    {"--target-pos", "P", "-1, the last token", "target position of the patch"},
    {NULL, NULL, NULL, NULL}};

const cli_opt cli_steer[] = {
    {"--steer", "F.gguf", NULL, "add a control vector (llama.cpp's GGUF, as steer writes it) to resid_post of its layers"},
    {"--steer-scale", "S", "1", "times this (negative: away from the direction)"},
    {"--steer-layers", "A-B", "every layer the file has", "only these layers"},
    {"--steer-new", NULL, NULL, "steer the generated tokens only, not the prompt"},
    {NULL, NULL, NULL, NULL}};

const cli_opt cli_ablate[] = {
    {"--ablate", "POINT:LAYERS[:head=H|:units=A,B]", NULL, "ablate a point at layers \"A-B\" or \"all\" (one head, some units "
     "or the whole row; several targets joined by ;)"},
    {"--ablate-with", "zero|mean|resample", "zero", "what is written: zeros, the mean over --ablate-prompts, or the "
     "--ablate-source run"},
    {"--ablate-prompts", "F", NULL, "mean ablation: the prompts (a line each) the mean is over"},
    {"--ablate-per-position", NULL, NULL, "mean ablation: a mean per position (else one over every position)"},
    {"--ablate-source", "TEXT", NULL, "resample ablation: the prompt whose values are written, position by position"},
    {"--ablate-source-file", "F", NULL, "the same from F (- for standard input)"},
    {"--ablate-source-ids", "1,2,3", NULL, "the same as token ids"},
    {NULL, NULL, NULL, NULL}};

/* --- the commands --------------------------------------------------------------------------- */

static const cli_opt *const run_groups[] = {cli_common, cli_prompt, run_opts, cli_steer, cli_ablate, NULL};
static const cli_opt *const generate_groups[] = {cli_common, cli_prompt, generate_opts, cli_steer, cli_ablate, NULL};
static const cli_opt *const tokenize_groups[] = {tokenize_opts, NULL};
static const cli_opt *const decode_groups[] = {decode_opts, NULL};
static const cli_opt *const grid_groups[] = {cli_common, cli_source, cli_target, grid_opts, cli_ablate, NULL};
static const cli_opt *const inspect_groups[] = {cli_common, cli_source, cli_target, inspect_opts, NULL};
static const cli_opt *const lens_groups[] = {cli_common, cli_prompt, lens_opts, NULL};
static const cli_opt *const fit_groups[] = {cli_common, fit_opts, NULL};
static const cli_opt *const patch_groups[] = {cli_common, patch_opts, NULL};
static const cli_opt *const sae_groups[] = {cli_common, cli_prompt, sae_opts, NULL};
static const cli_opt *const steer_groups[] = {cli_common, steer_opts, NULL};
static const cli_opt *const info_groups[] = {cli_common, info_opts, NULL};
static const cli_opt *const sweep_groups[] = {cli_common, sweep_opts, NULL};
static const cli_opt *const merge_groups[] = {merge_opts, NULL};
static const cli_opt *const summarize_groups[] = {summarize_opts, NULL};
static const cli_opt *const experiment_groups[] = {cli_common, experiment_opts, NULL};

static const cli_cmd commands[] = {
    {"run", "one forward pass: the top tokens, logits and any hook point", "", run_groups, CLI_MODEL, cmd_run,
     "patchscope run --prompt \"The capital of Poland is\" --dump resid_post --json"},
    {"generate", "greedy decoding", "", generate_groups, CLI_MODEL, cmd_generate,
     "patchscope generate --prompt \"The capital of Poland is\" -n 8"},
    {"tokenize", "text to token ids (no special tokens)", "[TEXT | -]", tokenize_groups, CLI_TOKENIZER, cmd_tokenize,
     "patchscope tokenize \"The capital of Poland is\" --json"},
    {"decode", "token ids to their bytes", "IDS...", decode_groups, CLI_TOKENIZER, cmd_decode,
     "patchscope decode 464,3139,286,12873,318"},
    {"grid", "a Patchscope for every (source layer, target layer): top token and probability", "", grid_groups,
     CLI_MODEL, cmd_grid,
     "patchscope grid --source-prompt \"Amazon's former CEO attended Oscars\" --source-token \" CEO\" "
     "--target-prompt \"cat->cat; 135->135; hello->hello; ?->\" --svg grid.svg --json"},
    {"inspect", "one Patchscope: top-k readout, precision@1, surprisal, patched generation", "", inspect_groups,
     CLI_MODEL, cmd_inspect,
     "patchscope inspect --source-prompt \"Amazon's former CEO attended Oscars\" --source-token \" CEO\" "
     "--source-layer 5 --target-prompt \"cat->cat; 135->135; hello->hello; ?->\" --target-layer 3 -n 8"},
    {"lens", "the logit lens at one position, with the ranks of chosen tokens", "", lens_groups, CLI_MODEL, cmd_lens,
     "patchscope lens --prompt $'Q: What is the capital of Poland?\\nA:' --tokens \" Poland\",\" Warsaw\""},
    {"fit", "least-squares affine map from one model's states to another's", "", fit_groups, CLI_MODEL, cmd_fit,
     "patchscope fit --source-model weights/gpt2 --model weights/gpt2-medium --prompts prompts.txt "
     "--source-layer 6 --target-layer 12 --out map.f32"},
    {"patch", "activation patching: clean values in a corrupted run, per (layer, position) or (layer, head)", "",
     patch_groups, CLI_MODEL, cmd_patch,
     "patchscope patch --clean-prompt \"The capital of Poland is\" --corrupted-prompt \"The capital of France is\" "
     "--answer \" Warsaw\" --wrong \" Paris\" --svg patching.svg"},
    {"steer", "steering vectors from contrastive prompt pairs, as llama.cpp's control-vector GGUF", "", steer_groups,
     CLI_MODEL, cmd_steer, "patchscope steer --pairs pairs.tsv --method pca --out happy.gguf && patchscope generate "
     "--prompt \"I feel\" --steer happy.gguf --steer-scale 4"},
    {"sae", "a sparse autoencoder (SAELens layout): features per position, spliced in, clamped, ablated", "", sae_groups,
     CLI_MODEL, cmd_sae, "patchscope sae --model weights/gpt2 --sae saes/blocks.8.hook_resid_pre --prompt \"The capital of "
     "Poland is\" --top 10 --set 1234=20 --json"},
    {"info", "what a model is: family, sizes, dtype, files, memory", "", info_groups, CLI_MODEL, cmd_info,
     "patchscope info --model weights/tiny-llama --json"},
    {"sweep", "many Patchscopes from a job file (JSON Lines): batched, sharded, resumable", "", sweep_groups, CLI_MODEL,
     cmd_sweep, "patchscope sweep --jobs cases.jsonl --out results.jsonl --shard 0/4 --resume --progress"},
    {"merge", "sweep shards into one file, in job order, every case once", "OUT SHARD...", merge_groups, CLI_NOTHING,
     cmd_merge, "patchscope merge --jobs cases.jsonl results.jsonl shard0.jsonl shard1.jsonl shard2.jsonl"},
    {"summarize", "mean readouts of sweep results per (group, source layer, target layer); heatmap, lines", "RESULTS...",
     summarize_groups, CLI_NOTHING, cmd_summarize,
     "patchscope summarize results.jsonl --by relation --metric precision_at_1 --lines layers.svg --json"},
    {"experiment", "one of the paper's experiments: jobs, sweep, scores, summary, figures", "NAME", experiment_groups,
     CLI_MODEL, cmd_experiment, "patchscope experiment attribute-extraction --model weights/gpt2 --out ae --progress"},
};
#define N_COMMANDS ((int)(sizeof commands / sizeof commands[0]))

/* --- messages ------------------------------------------------------------------------------- */

static const cli_cmd *current; /* the command being run, for messages */

static void vmessage(const char *fmt, va_list ap) {
    fprintf(stderr, current ? "patchscope %s: " : "patchscope: ", current ? current->name : "");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
}

int die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vmessage(fmt, ap);
    va_end(ap);
    return CLI_FAIL;
}

void note(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vmessage(fmt, ap);
    va_end(ap);
}

int usage_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vmessage(fmt, ap);
    va_end(ap);
    if (current) fprintf(stderr, "(patchscope %s --help lists its options)\n", current->name);
    return CLI_USAGE;
}

/* edit distance of two short names, for "did you mean" */
static int distance(const char *a, const char *b) {
    int row[64], i, j, la = (int)strlen(a), lb = (int)strlen(b);
    if (la >= 64 || lb >= 64) return 64;
    for (j = 0; j <= lb; j++) row[j] = j;
    for (i = 1; i <= la; i++) {
        int diag = row[0], up;
        row[0] = i;
        for (j = 1; j <= lb; j++) {
            int best = diag + (a[i - 1] != b[j - 1]);
            up = row[j];
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            diag = up;
            row[j] = best;
        }
    }
    return row[lb];
}

/* --- help ----------------------------------------------------------------------------------- */

static void list_commands(FILE *f) {
    int k;
    fprintf(f, "usage: patchscope COMMAND [options]   (patchscope COMMAND --help for its options)\n\ncommands:\n");
    for (k = 0; k < N_COMMANDS; k++) fprintf(f, "  %-10s %s\n", commands[k].name, commands[k].summary);
    fprintf(f, "\nhook points: embed resid_pre q k v pattern z attn_out resid_mid mlp_pre mlp_post mlp_out "
               "resid_post ln_final logits\nexit status: 0 success, 1 the run failed, 2 a usage error\n");
}

static void command_help(const cli_cmd *c) {
    const cli_opt *const *g;
    const cli_opt *o;
    printf("usage: patchscope %s [options]%s%s\n\n%s\n\noptions:\n", c->name, *c->args ? " " : "", c->args,
           c->summary);
    for (g = c->groups; *g; g++)
        for (o = *g; o->name; o++) {
            char left[64];
            snprintf(left, sizeof left, "%s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
            printf("  %-22s %s", left, o->help);
            if (o->def) printf(" (default: %s)", o->def);
            printf("\n");
        }
    printf("  %-22s %s\n\nexample:\n  %s\n", "--help", "this text", c->example);
}

/* --- parsing -------------------------------------------------------------------------------- */

#define MAX_ARGS 256
static const char *names[MAX_ARGS], *values[MAX_ARGS];
static int n_given;
int json, n_positional;
char **positional;

static const cli_opt *find_opt(const cli_cmd *c, const char *name) {
    const cli_opt *const *g;
    const cli_opt *o;
    for (g = c->groups; *g; g++)
        for (o = *g; o->name; o++)
            if (strcmp(o->name, name) == 0) return o;
    return NULL;
}

/* The value of the last --name given. A name the command does not declare is a bug of
   this program, not of its user. */
const char *opt(const char *name) {
    int i;
    if (!find_opt(current, name)) {
        fprintf(stderr, "patchscope %s: internal error: %s is not one of its options\n", current->name, name);
        abort();
    }
    for (i = n_given - 1; i >= 0; i--)
        if (strcmp(names[i], name) == 0) return values[i] ? values[i] : "";
    return NULL;
}

int flag(const char *name) { return opt(name) != NULL; }

/* 0 when every argument is an option of the command (with its value) or an allowed
   positional argument; 1 when --help was asked for; else a usage error */
static int parse(const cli_cmd *c, int argc, char **argv) {
    int i;
    positional = argv + argc; /* positional arguments are moved to the end, in order */
    for (i = 0; i < argc; i++) {
        const char *a = argv[i];
        const cli_opt *o;
        if (a[0] != '-' || strcmp(a, "-") == 0) {
            if (!*c->args) return usage_error("unexpected argument \"%s\"", a);
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) return 1;
        if (!(o = find_opt(c, a))) {
            const cli_opt *const *g, *best = NULL;
            const cli_opt *p;
            int d = 4;
            for (g = c->groups; *g; g++)
                for (p = *g; p->name; p++)
                    if (distance(a, p->name) < d) { d = distance(a, p->name); best = p; }
            return best ? usage_error("unknown option %s (did you mean %s?)", a, best->name)
                        : usage_error("unknown option %s", a);
        }
        if (n_given == MAX_ARGS) return usage_error("too many options");
        names[n_given] = o->name;
        values[n_given] = NULL;
        if (o->arg) {
            if (i + 1 >= argc) return usage_error("%s needs a value (%s)", a, o->arg);
            values[n_given] = argv[++i];
        }
        n_given++;
    }
    for (i = 0; i < argc; i++) { /* collect the positional ones, skipping option values */
        const cli_opt *o = argv[i][0] == '-' && strcmp(argv[i], "-") != 0 ? find_opt(c, argv[i]) : NULL;
        if (o) i += o->arg != NULL;
        else argv[n_positional++] = argv[i];
    }
    positional = argv;
    return 0;
}

static const cli_cmd *find_command(const char *name) {
    int k;
    for (k = 0; k < N_COMMANDS; k++)
        if (strcmp(name, commands[k].name) == 0) return &commands[k];
    return NULL;
}

static int unknown_command(const char *name) {
    int k, best = -1, d = 3;
    for (k = 0; k < N_COMMANDS; k++)
        if (distance(name, commands[k].name) < d) { d = distance(name, commands[k].name); best = k; }
    if (best >= 0) usage_error("unknown command \"%s\" (did you mean %s?)", name, commands[best].name);
    else usage_error("unknown command \"%s\"", name);
    list_commands(stderr);
    return CLI_USAGE;
}

int main(int argc, char **argv) {
    const cli_cmd *c;
    example e;
    int threads, rc;
    if (argc < 2) {
        list_commands(stderr);
        return CLI_USAGE;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("patchscope %s\n", PS_VERSION);
        return 0;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        if (strcmp(argv[1], "help") != 0 || argc < 3) {
            list_commands(stdout);
            return 0;
        }
        if (!(c = find_command(argv[2]))) return unknown_command(argv[2]);
        command_help(c);
        return 0;
    }
    if (!(c = find_command(argv[1]))) return unknown_command(argv[1]);
    current = c;
    if ((rc = parse(c, argc - 2, argv + 2))) {
        if (rc == 1) command_help(c);
        return rc == 1 ? 0 : rc;
    }
    json = find_opt(c, "--json") && flag("--json");
    if (c->needs == CLI_NOTHING) return c->run(NULL);
    if (c->needs == CLI_TOKENIZER) { /* tokenize, decode: only the tokenizer */
        ps_error err;
        memset(&e, 0, sizeof e);
        const char *path = opt("--tokenizer") ? opt("--tokenizer") : opt("--model") ? opt("--model") : "weights";
        if (ps_tokenizer_load(&e.t, path, &err)) return die("%s", err.msg);
        rc = c->run(&e);
        ps_tokenizer_free(e.t);
        return rc;
    }
    if (!int_opt("--threads", 0, &threads)) return CLI_USAGE;
    if (example_open(&e, opt("--model"), "weights/gpt2", threads)) return CLI_FAIL;
    rc = c->run(&e);
    example_close(&e);
    return rc;
}
