/* What the commands of build/patchscope share: the command table's types, the parsed
   arguments, and small printing helpers. main.c parses and dispatches; each command
   lives in the file of its group (run.c: run, generate, tokenize, decode, info; scope.c:
   grid, inspect, lens, fit; interv.c: patch, sae, steer and the steering and ablation flags; sweep.c: sweep, merge, summarize, which also holds
   the header's implementation; experiment.c: experiment). A new command is a function, an options table and one
   line in main.c's table. */
#ifndef PS_CLI_H
#define PS_CLI_H
#include "../../patchscope.h"
#include "../../examples/example.h"

#include <stdio.h>

/* One option: "--name", its value's placeholder (NULL for a flag), its default as
   help shows it (NULL: none) and what it does. */
typedef struct cli_opt {
    const char *name, *arg, *def, *help;
} cli_opt;

/* What a command needs opened before it runs. */
typedef enum cli_needs { CLI_MODEL, CLI_TOKENIZER, CLI_NOTHING } cli_needs;

typedef struct cli_cmd {
    const char *name, *summary;
    const char *args;                  /* positional arguments in the usage line ("" for none) */
    const cli_opt *const *groups;      /* NULL-terminated list of NULL-name-terminated tables */
    cli_needs needs;
    int (*run)(example *e);            /* e->t only, for CLI_TOKENIZER; NULL for CLI_NOTHING */
    const char *example;               /* one command line, shown by --help */
} cli_cmd;

/* Option groups several commands take (main.c). */
extern const cli_opt cli_common[], cli_prompt[], cli_source[], cli_target[], cli_steer[], cli_ablate[];

/* The parsed command line (main.c): values by option name, positional arguments. */
const char *opt(const char *name);     /* the value, or NULL when not given */
int flag(const char *name);            /* 1 when the flag was given */
extern int json, n_positional;
extern char **positional;

/* Exit statuses: 0 success, 1 the run failed, 2 the command line is wrong. */
#define CLI_FAIL 1
#define CLI_USAGE 2
int die(const char *fmt, ...);         /* prints "patchscope: ..." to stderr, returns CLI_FAIL */
int usage_error(const char *fmt, ...); /* the same for a bad command line, returns CLI_USAGE */
void note(const char *fmt, ...);       /* the same, for what goes on (a line left out, a case rerun) */

/* Option values; on a bad value they print why and return 0. */
int int_opt(const char *name, int def, int *out);
int range_opt(const char *name, int lo, int hi, int *a, int *b); /* "A-B" or "A" */
int *parse_ids(const char *s, int *n);                           /* "464,3139" (malloc'd) */
int *prompt_ids(const example *e, const char *ids_name, const char *text_name, int *n);
extern int prompt_error;               /* why prompt_ids gave NULL: CLI_USAGE, or CLI_FAIL (no tokenizer, unreadable file) */
int prompt_given(const char *ids_name, const char *text_name);
int *encode_text(const ps_tokenizer *t, const char *text, size_t len, int flags, int *n); /* malloc'd; NULL: bad text */
char *read_file(const char *path, size_t *len);                  /* "-": standard input; NUL-terminated */
float *read_map(const char *path, int d_src, int d_tgt);        /* fit's (d_src + 1) x d_tgt floats */

/* JSON output, to cli_out (NULL: stdout) */
extern FILE *cli_out;
void print_floats(const float *x, int n);
void print_number(double x);                    /* %.9g; null when not finite */
void print_ints(const int *x, int n);
void print_json_bytes(const char *s, size_t n); /* always valid UTF-8 and JSON */
void print_json_string(const char *s);
void print_token(const example *e, int id);
int layerless(ps_point p);
/* --dump POINT,...: a capture of each point at every layer for rows positions; 0, or an
   exit status; then the captures as JSON: , "dump": {"point": [layer][position][width]} */
int dump_begin(const example *e, int rows, ps_capture *caps, int *k);
void print_dump(const example *e, const ps_capture *caps, int k, int rows);

/* sweep.c's machinery, for commands that run sweeps of their own (experiment.c) */
typedef struct sweep_opts_t {
    const char *jobs, *out;            /* out NULL: standard output */
    int shard, n_shards, resume, keep_going, progress;
} sweep_opts_t;
int sweep_run(example *e, const sweep_opts_t *o);
typedef struct summary_opts_t {
    const char *const *paths;          /* result files */
    int n_paths;
    const char *by, *metric, *csv, *heatmap, *lines, *title; /* NULL: not wanted (metric: top_prob) */
    FILE *json;                        /* the table as JSON there, or NULL */
    int table;                         /* the table as text on stdout */
} summary_opts_t;
int summarize(const summary_opts_t *o);
/* a scalar of a JSON object line at a dotted path ("tags.object"): a string decoded, a
   number as written, into out; 0, or -1 when absent, not a scalar or longer than cap */
int json_field(const char *line, size_t len, const char *path, char *out, size_t cap);

/* the commands */
int cmd_run(example *e);
int cmd_generate(example *e);
int cmd_tokenize(example *e);
int cmd_decode(example *e);
int cmd_grid(example *e);
int cmd_inspect(example *e);
int cmd_lens(example *e);
int cmd_fit(example *e);
int cmd_patch(example *e);
int cmd_sae(example *e);
int cmd_steer(example *e);
/* --steer F.gguf (--steer-scale, --steer-layers, --steer-new): steering hooks on e->c for a
   prompt of n tokens, until steering_end; 0, or an exit status after printing why */
typedef struct cli_steering {
    ps_control_vector cv;
    ps_steer st[1024];
    int handle[1024], n;
} cli_steering;
int steering_begin(example *e, int n_prompt, cli_steering *s);
void steering_end(example *e, cli_steering *s);
/* --ablate POINT:LAYERS[:head=H|:units=A,B][;...] (--ablate-with zero|mean|resample,
   --ablate-prompts, --ablate-per-position, --ablate-source): ablation hooks on e->c
   until ablation_end; 0, or an exit status after printing why */
typedef struct cli_ablation_target {
    ps_point point;
    int first, last, n_hooks;
    ps_ablation a;              /* head and units, as given */
    int *units;
    ps_ablation per_layer[512]; /* with each layer's values */
    float *values[512];
    int handle[512];
} cli_ablation_target;
typedef struct cli_ablation {
    cli_ablation_target t[8];
    int n;
} cli_ablation;
int ablation_begin(example *e, cli_ablation *ab);
void ablation_end(example *e, cli_ablation *ab);
int cmd_info(example *e);
int cmd_sweep(example *e);
int cmd_merge(example *e);
int cmd_summarize(example *e);
int cmd_experiment(example *e);
extern const cli_opt run_opts[], generate_opts[], tokenize_opts[], decode_opts[], grid_opts[], inspect_opts[],
    lens_opts[], fit_opts[], patch_opts[], sae_opts[], steer_opts[], info_opts[], sweep_opts[], merge_opts[], summarize_opts[], experiment_opts[];

#endif
