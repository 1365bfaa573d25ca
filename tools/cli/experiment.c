/* experiment: the Patchscopes paper's experiments as one command each. Each writes a job
   file, runs it with the sweep (so it can also be sharded by hand), scores the results
   and writes a summary, tables and figures into --out.

     next-token             (paper §4.1, Fig. 2) the logit lens, an affine lens and the
                            token-identity Patchscope against the model's own next token
     attribute-extraction   (§4.2, Table 5, Fig. 7) the official TSVs
     entity-description     (§4.3) an entity's name into a few-shot description prompt, ROUGE-L
     multi-hop              (§5) the first hop's answer patched into the second hop's question
     cross-model            (§4.4) next-token prediction from one model's states into another's */
#define _POSIX_C_SOURCE 200809L /* glob */
#include "cli.h"

#include <errno.h>
#include <glob.h>
#include <sys/stat.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const cli_opt experiment_opts[] = {
    {"--out", "DIR", NULL, "where jobs.jsonl, results.jsonl, scored.jsonl, summary.json, CSV and SVG go (required)"},
    {"--data", "F", "examples/data/patchscopes/*/*.tsv, examples/data/entities.tsv",
     "attribute-extraction: the official TSVs (comma-separated), one relation each; entity-description: lines of "
     "entity<TAB>reference description"},
    {"--per-relation", "N", "20", "cases drawn per relation (seeded; 0: every row); next-token: the first N texts (0: all)"},
    {"--ridge", "R", "0.1", "next-token, cross-model: the affine maps' ridge penalty"},
    {"--source-model", "DIR", NULL, "cross-model: the model whose states are read (one vocabulary with --model)"},
    {"--seed", "S", "0", "the draw's seed"},
    {"-n", "N", "20", "greedy tokens generated per cell"},
    {"--source-layers", "LAYERS", "every layer", "source layers, as a job's source_layers (\"0-5\", \"0,3,6\")"},
    {"--target-layers", "LAYERS", "same", "target layers, as a job's target_layers (\"same\": l* = l)"},
    {"--progress", NULL, NULL, "the sweep's progress on stderr"},
    {"--jobs-only", NULL, NULL, "write jobs.jsonl and stop (shard it by hand, merge into DIR/results.jsonl, then --score-only)"},
    {"--score-only", NULL, NULL, "score DIR/results.jsonl as it is, without running the sweep"},
    {NULL, NULL, NULL, NULL}};

/* --- TSV, as pandas writes it: tab-separated, a field in double quotes may hold tabs and
   newlines, "" inside one is a quote ------------------------------------------------------- */

/* The next record's fields (malloc'd) from text at *at; the number of fields, 0 at the end,
   -1 when a quote is never closed. */
static int tsv_record(const char *text, size_t len, size_t *at, char **fields, int max) {
    size_t i = *at;
    int n = 0;
    if (i >= len) return 0;
    for (;;) {
        size_t cap = 64, k = 0;
        char *f = (char *)malloc(cap);
        int quoted = i < len && text[i] == '"';
        if (!f) return -1;
        if (quoted) i++;
        for (; i < len; i++) {
            char c = text[i];
            if (quoted && c == '"') {
                if (i + 1 < len && text[i + 1] == '"') i++; /* "" is one quote */
                else {
                    quoted = 2; /* closed */
                    continue;
                }
            } else if (quoted != 1 && (c == '\t' || c == '\n')) break;
            if (k + 2 > cap) {
                char *g = (char *)realloc(f, cap *= 2);
                if (!g) return free(f), -1;
                f = g;
            }
            f[k++] = c;
        }
        if (quoted == 1) return free(f), -1;
        if (k && f[k - 1] == '\r') k--;
        f[k] = 0;
        if (n < max) fields[n++] = f;
        else free(f);
        if (i >= len || text[i] == '\n') break;
        i++; /* the tab */
    }
    *at = i + 1;
    return n;
}

static void fields_free(char **f, int n) {
    int i;
    for (i = 0; i < n; i++) free(f[i]);
}

/* DIR/results.jsonl (its path into results) from the job file, by the sweep (resuming what an
   earlier run left); with --score-only, the results as they are */
static int run_jobs(example *e, const char *dir, const char *jobs_path, char *results, size_t cap) {
    sweep_opts_t so;
    memset(&so, 0, sizeof so);
    snprintf(results, cap, "%s/results.jsonl", dir);
    so.jobs = jobs_path;
    so.out = results;
    so.n_shards = 1;
    so.resume = 1;
    so.progress = flag("--progress");
    return flag("--score-only") ? 0 : sweep_run(e, &so);
}

/* summarize's options for one scored file, by a metric (the rest unset) */
static void summary_of(summary_opts_t *su, const char **paths, const char *file, const char *metric) {
    memset(su, 0, sizeof *su);
    paths[0] = file;
    su->paths = paths;
    su->n_paths = 1;
    su->metric = metric;
}

/* a file (the summary) as the command's JSON answer */
static int print_file(const char *path) {
    size_t n;
    char *text = read_file(path, &n);
    if (!text) return CLI_FAIL;
    fwrite(text, 1, n, stdout);
    free(text);
    return 0;
}

/* su's table as DIR/summary.json, and as the answer: the JSON with --json, else a table */
static int summary_file(summary_opts_t *su, const char *dir) {
    char path[4096];
    int rc;
    snprintf(path, sizeof path, "%s/summary.json", dir);
    if (!(su->json = fopen(path, "w"))) return die("cannot write %s", path);
    su->table = !json;
    rc = summarize(su);
    if (fclose(su->json) && !rc) rc = die("cannot write %s", path);
    su->json = NULL;
    return !rc && json ? print_file(path) : rc;
}

/* a least-squares affine map on n pairs, written as the sweep's "map" files are read */
static int fit_map(const char *path, const float *X, int d_src, const float *Y, int d_tgt, int n, double ridge, float *A) {
    size_t want = (size_t)(d_src + 1) * d_tgt;
    FILE *f;
    int ok;
    if (ps_fit_affine(X, d_src, Y, d_tgt, n, ridge, A)) return die("the map %s is singular on %d positions: give --ridge", path, n);
    if (!(f = fopen(path, "wb"))) return die("cannot write %s", path);
    ok = fwrite(A, sizeof(float), want, f) == want;
    if (fclose(f) || !ok) return die("cannot write %s", path);
    return 0;
}

/* --- the attribute-extraction scorer ----------------------------------------------------------- */

/* The official rule: correct when the object, spaces removed, occurs in the generated text
   with spaces removed (case counts). */
static int object_in_text(const char *object, const char *text) {
    char *a = (char *)malloc(strlen(object) + 1), *b = (char *)malloc(strlen(text) + 1);
    size_t i, na = 0, nb = 0;
    int found;
    if (!a || !b) return free(a), free(b), 0;
    for (i = 0; object[i]; i++)
        if (object[i] != ' ') a[na++] = object[i];
    for (i = 0; text[i]; i++)
        if (text[i] != ' ') b[nb++] = text[i];
    a[na] = b[nb] = 0;
    found = na > 0 && strstr(b, a) != NULL;
    free(a);
    free(b);
    return found;
}

/* The subject's last token in the source ids: an occurrence of " subject" (or "subject" at
   the start), the one ending at the official position when there is one, else the last;
   -1 when the tokenizer splits the subject differently there (" Colombia" inside
   " Colombian"). */
static int subject_position(const ps_tokenizer *t, const int *ids, int n, const char *subject, int official) {
    char *spaced = (char *)malloc(strlen(subject) + 2);
    int k, m, *pat, at = -1, pass;
    if (!spaced) return -1;
    spaced[0] = ' ';
    strcpy(spaced + 1, subject);
    for (pass = 0; pass < 2 && at < 0; pass++) { /* " subject" anywhere, then "subject" at the start */
        const char *s = pass ? subject : spaced;
        if (!(pat = encode_text(t, s, strlen(s), 0, &m))) break;
        for (k = 0; k + m <= n && at != official; k++)
            if ((pass == 0 || k == 0) && memcmp(ids + k, pat, (size_t)m * sizeof(int)) == 0) at = k + m - 1;
        free(pat);
    }
    free(spaced);
    return at;
}

/* --- attribute extraction (§4.2) ------------------------------------------------------------------ */

#define MAX_RELATIONS 64

typedef struct relation {
    char name[128];
    int rows, drawn, dropped;      /* rows read, drawn, dropped (subject or placeholder not found) */
    long cells, correct, cells_b[2], correct_b[2]; /* patched cells; by the baseline's verdict */
    int cases, baseline_right;
} relation;

static unsigned long long rng_next(unsigned long long *s) { /* xorshift64* */
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

/* the JSON string of text into f */
static void put_string(FILE *f, const char *text) {
    cli_out = f;
    print_json_string(text);
    cli_out = NULL;
}

static int column(char **header, int n, const char *name) {
    int i;
    for (i = 0; i < n; i++)
        if (strcmp(header[i], name) == 0) return i;
    return -1;
}

/* One TSV's cases into the job file: a patched case per drawn row (the subject's last
   token into the template's " x") and its baseline (the template with the subject, run
   unpatched: its last state written back onto itself, which changes no bit). */
static int ae_jobs(example *e, const char *path, int per_relation, unsigned long long seed, int n_new,
                   const char *sl, const char *tl, FILE *jobs, relation *rel) {
    enum { C_PROMPT_TARGET, C_OBJECT, C_SUBJECT, C_PROMPT_SOURCE, C_POSITION_SOURCE, C_TARGET_BASELINE, N_COLS };
    static const char *const names[N_COLS] = {"prompt_target", "object", "subject", "prompt_source", "position_source",
                                              "target_baseline"};
    size_t len, at = 0;
    char *text = read_file(path, &len), *header[64], ***rows = NULL, *base;
    int n_head, col[N_COLS], n_rows = 0, cap = 0, i, k, *pick = NULL, L = ps_model_config(e->m)->n_layer, rc = 0;
    const char *slash = strrchr(path, '/');
    if (!text) return CLI_FAIL;
    snprintf(rel->name, sizeof rel->name, "%s", slash ? slash + 1 : path);
    if ((base = strstr(rel->name, ".tsv"))) *base = 0;
    if ((n_head = tsv_record(text, len, &at, header, 64)) < 1) return free(text), die("%s: no header", path);
    for (k = 0; k < N_COLS && !rc; k++)
        if ((col[k] = column(header, n_head, names[k])) < 0) rc = die("%s: no column %s", path, names[k]);
    while (!rc) { /* every row, kept whole */
        char **f = (char **)calloc(64, sizeof *f);
        int nf = f ? tsv_record(text, len, &at, f, 64) : -1;
        if (nf <= 0) {
            free(f);
            if (nf < 0) rc = die("%s: a quote is never closed", path);
            break;
        }
        if (nf != n_head) {
            fields_free(f, nf);
            free(f);
            rc = die("%s: record %d has %d fields, the header %d", path, n_rows + 1, nf, n_head);
            break;
        }
        if (n_rows == cap) {
            char ***g = (char ***)realloc(rows, (size_t)(cap = cap ? 2 * cap : 128) * sizeof *g);
            if (!g) {
                rc = die("out of memory");
                break;
            }
            rows = g;
        }
        rows[n_rows++] = f;
    }
    rel->rows = n_rows;
    /* the draw: a seeded partial shuffle, then the drawn rows in file order */
    if (!rc && !(pick = (int *)malloc((size_t)(n_rows ? n_rows : 1) * sizeof(int)))) rc = die("out of memory");
    if (!rc) {
        unsigned long long s = seed * 0x9E3779B97F4A7C15ull + 1;
        int n = per_relation > 0 && per_relation < n_rows ? per_relation : n_rows;
        for (i = 0; rel->name[i]; i++) s = (s ^ (unsigned char)rel->name[i]) * 1099511628211ull;
        for (i = 0; i < n_rows; i++) pick[i] = i;
        for (i = 0; i < n; i++) {
            int j = i + (int)(rng_next(&s) % (unsigned long long)(n_rows - i)), t = pick[i];
            pick[i] = pick[j];
            pick[j] = t;
        }
        for (i = 1; i < n; i++) /* insertion sort of the drawn */
            for (k = i; k > 0 && pick[k - 1] > pick[k]; k--) {
                int t = pick[k];
                pick[k] = pick[k - 1];
                pick[k - 1] = t;
            }
        rel->drawn = n;
    }
    for (i = 0; !rc && i < rel->drawn; i++) {
        char **f = rows[pick[i]], id[256];
        int n_src, n_tgt, *src = encode_text(e->t, f[col[C_PROMPT_SOURCE]], strlen(f[col[C_PROMPT_SOURCE]]), 0, &n_src);
        int *tgt = encode_text(e->t, f[col[C_PROMPT_TARGET]], strlen(f[col[C_PROMPT_TARGET]]), 0, &n_tgt);
        int pos = src ? subject_position(e->t, src, n_src, f[col[C_SUBJECT]], atoi(f[col[C_POSITION_SOURCE]])) : -1;
        int x = tgt ? ps_find_text(e->t, tgt, n_tgt, " x") : -1;
        free(src);
        free(tgt);
        if (pos < 0 || x < 0) {
            rel->dropped++;
            continue;
        }
        snprintf(id, sizeof id, "%s/%s", rel->name, f[0]);
        fputs("{\"id\": ", jobs);
        put_string(jobs, id);
        fputs(", \"source_prompt\": ", jobs);
        put_string(jobs, f[col[C_PROMPT_SOURCE]]);
        fprintf(jobs, ", \"source_pos\": %d, \"target_prompt\": ", pos);
        put_string(jobs, f[col[C_PROMPT_TARGET]]);
        fputs(", \"target_token\": \" x\", \"source_layers\": ", jobs);
        put_string(jobs, sl);
        fputs(", \"target_layers\": ", jobs);
        put_string(jobs, tl);
        fprintf(jobs, ", \"n_new\": %d, \"tags\": {\"relation\": ", n_new);
        put_string(jobs, rel->name);
        fputs(", \"object\": ", jobs);
        put_string(jobs, f[col[C_OBJECT]]);
        fputs(", \"kind\": \"patch\"}}\n{\"id\": ", jobs);
        snprintf(id + strlen(id), sizeof id - strlen(id), "/baseline");
        put_string(jobs, id);
        fputs(", \"source_prompt\": ", jobs);
        put_string(jobs, f[col[C_TARGET_BASELINE]]);
        fprintf(jobs, ", \"source_layers\": %d, \"target_layers\": \"same\", \"n_new\": %d, \"tags\": {\"relation\": ", L - 1,
                n_new);
        put_string(jobs, rel->name);
        fputs(", \"object\": ", jobs);
        put_string(jobs, f[col[C_OBJECT]]);
        fputs(", \"kind\": \"baseline\"}}\n", jobs);
        rel->cases++;
    }
    for (i = 0; i < n_rows; i++) fields_free(rows[i], n_head), free(rows[i]);
    fields_free(header, n_head);
    free(rows);
    free(pick);
    free(text);
    return rc;
}

static relation *relation_of(relation *rels, int n, const char *name) {
    int i;
    for (i = 0; i < n; i++)
        if (strcmp(rels[i].name, name) == 0) return &rels[i];
    return NULL;
}

/* Scores results.jsonl into scored.jsonl: each patched cell gets "correct" and
   "baseline_correct" (its case's unpatched verdict); the relations get their tallies. */
static int ae_score(const char *results, const char *scored, relation *rels, int n_rels) {
    size_t len, at;
    char *text = read_file(results, &len), kind[16], obj[1024], rel_name[128], id[300], gen[8192];
    char **base_ids = NULL;
    int *base_ok = NULL, n_base = 0, pass, rc = 0, i;
    FILE *out = fopen(scored, "w");
    if (!text || !out) return free(text), out ? fclose(out) : 0, die("cannot read %s or write %s", results, scored);
    for (pass = 0; pass < 2 && !rc; pass++) /* the baselines first, then the patched cells */
        for (at = 0; at < len && !rc;) {
            size_t end = at;
            relation *r;
            while (end < len && text[end] != '\n') end++;
            if (json_field(text + at, end - at, "tags.kind", kind, sizeof kind) ||
                json_field(text + at, end - at, "tags.object", obj, sizeof obj) ||
                json_field(text + at, end - at, "tags.relation", rel_name, sizeof rel_name) ||
                json_field(text + at, end - at, "id", id, sizeof id) ||
                !(r = relation_of(rels, n_rels, rel_name))) {
                rc = die("%s: a line that is not an attribute-extraction result", results);
                break;
            }
            if (json_field(text + at, end - at, "generated_text", gen, sizeof gen)) gen[0] = 0;
            if (pass == 0 && strcmp(kind, "baseline") == 0) {
                char **g = (char **)realloc(base_ids, (size_t)(n_base + 1) * sizeof *g);
                int *h = (int *)realloc(base_ok, (size_t)(n_base + 1) * sizeof *h);
                if (g) base_ids = g;
                if (h) base_ok = h;
                if (!g || !h || !(base_ids[n_base] = (char *)malloc(strlen(id) + 1))) rc = die("out of memory");
                else {
                    strcpy(base_ids[n_base], id);
                    base_ok[n_base] = object_in_text(obj, gen);
                    r->baseline_right += base_ok[n_base++];
                }
            } else if (pass == 1 && strcmp(kind, "patch") == 0) {
                int ok = object_in_text(obj, gen), b = 0;
                for (i = 0; i < n_base; i++) /* the case's baseline is "<id>/baseline" */
                    if (strncmp(base_ids[i], id, strlen(id)) == 0 && strcmp(base_ids[i] + strlen(id), "/baseline") == 0)
                        b = base_ok[i];
                r->cells++;
                r->correct += ok;
                r->cells_b[b]++;
                r->correct_b[b] += ok;
                fwrite(text + at, 1, end - at - 1, out); /* the line without its closing brace */
                fprintf(out, ", \"correct\": %d, \"baseline_correct\": %d}\n", ok, b);
            }
            at = end + 1;
        }
    for (i = 0; i < n_base; i++) free(base_ids[i]);
    free(base_ids);
    free(base_ok);
    free(text);
    if (fclose(out) && !rc) rc = die("cannot write %s", scored);
    return rc;
}

static void put_ratio(FILE *f, long a, long b) {
    if (b > 0) fprintf(f, "%.6g", (double)a / (double)b);
    else fputs("null", f);
}

static int attribute_extraction(example *e, const char *dir) {
    const char *data = opt("--data"), *sl = opt("--source-layers") ? opt("--source-layers") : "all";
    const char *tl = opt("--target-layers") ? opt("--target-layers") : "same";
    char path[4096], jobs_path[4096], results[4096], scored[4096], *list = NULL, *p;
    relation *rels = (relation *)calloc(MAX_RELATIONS, sizeof *rels);
    int per, seed, n_new, n_rels = 0, rc = 0, i;
    long cells = 0, correct = 0;
    glob_t g;
    FILE *jobs, *sum;
    summary_opts_t su;
    const char *paths[1];
    memset(&g, 0, sizeof g);
    if (!rels) return die("out of memory");
    if (!int_opt("--per-relation", 20, &per) || !int_opt("--seed", 0, &seed) || !int_opt("-n", 20, &n_new))
        return free(rels), CLI_USAGE;
    if (!e->t) return free(rels), die("%s has no tokenizer patchscope.h reads: the cases are text", e->dir);
    if (data) {
        if (!(list = (char *)malloc(strlen(data) + 1))) return free(rels), die("out of memory");
        strcpy(list, data);
    } else if (glob("examples/data/patchscopes/*/*.tsv", 0, NULL, &g) != 0 || g.gl_pathc == 0)
        return free(rels), die("no TSVs in examples/data/patchscopes: give --data (run from the repository root)");
    snprintf(jobs_path, sizeof jobs_path, "%s/jobs.jsonl", dir);
    if (!(jobs = fopen(jobs_path, "w"))) return free(rels), free(list), globfree(&g), die("cannot write %s", jobs_path);
    for (i = 0, p = list ? strtok(list, ",") : NULL; !rc && (list ? p != NULL : i < (int)g.gl_pathc); i++) {
        const char *tsv = list ? p : g.gl_pathv[i];
        if (n_rels == MAX_RELATIONS) rc = die("more than %d relations", MAX_RELATIONS);
        else rc = ae_jobs(e, tsv, per, (unsigned long long)seed, n_new, sl, tl, jobs, &rels[n_rels++]);
        if (list) p = strtok(NULL, ",");
    }
    free(list);
    globfree(&g);
    if (fclose(jobs) && !rc) rc = die("cannot write %s", jobs_path);
    if (!rc && flag("--jobs-only")) {
        printf("wrote %s\n", jobs_path);
        return free(rels), 0;
    }
    /* the sweep (resumed when an earlier run left results), the scores, the summary */
    snprintf(scored, sizeof scored, "%s/scored.jsonl", dir);
    if (!rc) rc = run_jobs(e, dir, jobs_path, results, sizeof results);
    if (!rc) rc = ae_score(results, scored, rels, n_rels);
    summary_of(&su, paths, scored, "correct");
    su.by = "relation";
    snprintf(path, sizeof path, "%s/accuracy_by_layer.csv", dir);
    su.csv = path;
    if (!rc) rc = summarize(&su);
    snprintf(path, sizeof path, "%s/accuracy_lines.svg", dir);
    su.csv = NULL;
    su.lines = path;
    su.title = "Attribute extraction: accuracy per source layer, by relation";
    if (!rc) rc = summarize(&su);
    snprintf(path, sizeof path, "%s/accuracy_heatmap.svg", dir);
    su.lines = NULL;
    su.by = NULL;
    su.heatmap = path;
    su.title = "Attribute extraction: accuracy, every relation";
    if (!rc) rc = summarize(&su);
    snprintf(path, sizeof path, "%s/summary.json", dir);
    if (!rc && !(sum = fopen(path, "w"))) rc = die("cannot write %s", path);
    if (!rc) {
        fprintf(sum, "{\"experiment\": \"attribute-extraction\", \"model\": ");
        put_string(sum, e->dir);
        fprintf(sum, ", \"n_new\": %d, \"source_layers\": ", n_new);
        put_string(sum, sl);
        fputs(", \"target_layers\": ", sum);
        put_string(sum, tl);
        fputs(", \"relations\": [", sum);
        for (i = 0; i < n_rels; i++) {
            relation *r = &rels[i];
            fputs(i ? ",\n  {\"relation\": " : "\n  {\"relation\": ", sum);
            put_string(sum, r->name);
            fprintf(sum, ", \"rows\": %d, \"drawn\": %d, \"dropped\": %d, \"cases\": %d, \"baseline_accuracy\": ", r->rows,
                    r->drawn, r->dropped, r->cases);
            put_ratio(sum, r->baseline_right, r->cases);
            fputs(", \"accuracy\": ", sum);
            put_ratio(sum, r->correct, r->cells);
            fputs(", \"accuracy_baseline_right\": ", sum);
            put_ratio(sum, r->correct_b[1], r->cells_b[1]);
            fputs(", \"accuracy_baseline_wrong\": ", sum);
            put_ratio(sum, r->correct_b[0], r->cells_b[0]);
            fputs("}", sum);
            cells += r->cells;
            correct += r->correct;
        }
        fputs("], \"accuracy\": ", sum);
        put_ratio(sum, correct, cells);
        fputs("}\n", sum);
        if (fclose(sum)) rc = die("cannot write %s", path);
    }
    if (!rc && json) rc = print_file(path);
    else if (!rc) {
        printf("%-34s %5s %7s %9s %9s %9s\n", "relation", "cases", "dropped", "baseline", "patched", "(b wrong)");
        for (i = 0; i < n_rels; i++) {
            relation *r = &rels[i];
            printf("%-34s %5d %7d %9.3f %9.3f %9.3f\n", r->name, r->cases, r->dropped,
                   r->cases ? (double)r->baseline_right / r->cases : 0.0, r->cells ? (double)r->correct / r->cells : 0.0,
                   r->cells_b[0] ? (double)r->correct_b[0] / r->cells_b[0] : 0.0);
        }
        printf("accuracy over every patched cell: %.3f; wrote %s/{jobs,results,scored}.jsonl, summary.json, "
               "accuracy_by_layer.csv, accuracy_lines.svg, accuracy_heatmap.svg\n", cells ? (double)correct / cells : 0.0, dir);
    }
    free(rels);
    return rc;
}


/* --- entity description (§4.3) -------------------------------------------------------------------- */

#define FEW_SHOT "Syria: Country in the Middle East, Leonardo DiCaprio: American actor, Samsung: South Korean " \
                 "multinational major appliance and consumer electronics corporation, x"

/* the words of text as ROUGE-L counts them (as Google's rouge-score does): lowercase runs
   of a-z and 0-9, everything else a separator; malloc'd into *words */
static int is_word_char(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }

static int rouge_words(const char *text, char ***words) {
    int n = 0, cap = 0, k;
    const char *p = text;
    *words = NULL;
    for (;;) {
        const char *q;
        char *w;
        while (*p && !is_word_char(*p)) p++;
        if (!*p) break;
        for (q = p; is_word_char(*q); q++) {}
        if (n == cap) {
            char **g = (char **)realloc(*words, (size_t)(cap = cap ? 2 * cap : 16) * sizeof *g);
            if (!g) break;
            *words = g;
        }
        if (!(w = (char *)malloc((size_t)(q - p) + 1))) break;
        for (k = 0; p < q; p++, k++) w[k] = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
        w[k] = 0;
        (*words)[n++] = w;
    }
    return n;
}

/* ROUGE-L F1 of a candidate against a reference: the longest common subsequence of their
   words, P = lcs / |candidate|, R = lcs / |reference|, F1 = 2PR / (P + R); 0 when either is empty */
static double rouge_l(const char *candidate, const char *reference) {
    char **a, **b;
    int na = rouge_words(candidate, &a), nb = rouge_words(reference, &b), i, j, lcs = 0;
    int *row = (int *)calloc((size_t)(nb + 1) * 2, sizeof(int));
    double f = 0;
    if (row && na > 0 && nb > 0) {
        int *prev = row, *cur = row + nb + 1;
        for (i = 1; i <= na; i++, prev = cur, cur = cur == row ? row + nb + 1 : row)
            for (j = 1; j <= nb; j++)
                cur[j] = strcmp(a[i - 1], b[j - 1]) == 0 ? prev[j - 1] + 1 : prev[j] > cur[j - 1] ? prev[j] : cur[j - 1];
        lcs = prev[nb];
        if (lcs > 0) f = 2.0 * lcs / (double)(na + nb); /* = 2PR / (P + R) */
    }
    for (i = 0; i < na; i++) free(a[i]);
    for (j = 0; j < nb; j++) free(b[j]);
    free(a);
    free(b);
    free(row);
    return f;
}

/* the description in a generation after the few-shot prompt's ", x": what follows the
   colon, up to the next entry (a comma) or line */
static void description_of(const char *gen, char *out, size_t cap) {
    size_t k = 0;
    while (*gen == ' ' || *gen == ':') gen++;
    while (*gen && *gen != ',' && *gen != '\n' && k + 1 < cap) out[k++] = *gen++;
    while (k > 0 && out[k - 1] == ' ') k--;
    out[k] = 0;
}

static int entity_description(example *e, const char *dir) {
    const char *data = opt("--data") ? opt("--data") : "examples/data/entities.tsv";
    const char *sl = opt("--source-layers") ? opt("--source-layers") : "all";
    const char *tl = opt("--target-layers") ? opt("--target-layers") : "same";
    char jobs_path[4096], results[4096], scored[4096], path[4096], *text, gen[8192], desc[8192], ref[4096], ent[1024];
    size_t len, at;
    int n_new, rc = 0, n = 0, with_ref = 0, i;
    FILE *jobs, *out, *csv;
    summary_opts_t su;
    const char *paths[1];
    if (!int_opt("-n", 20, &n_new)) return CLI_USAGE;
    if (!(text = read_file(data, &len))) return CLI_FAIL;
    snprintf(jobs_path, sizeof jobs_path, "%s/jobs.jsonl", dir);
    if (!(jobs = fopen(jobs_path, "w"))) return free(text), die("cannot write %s", jobs_path);
    for (at = 0; at < len;) { /* "entity<TAB>reference" lines; # comments */
        size_t end = at, tab;
        char id[32];
        while (end < len && text[end] != '\n') end++;
        text[end] = 0;
        if (end > at && text[at] != '#') {
            char *line = text + at, *t = strchr(line, '\t');
            if ((tab = t ? (size_t)(t - line) : strlen(line)) > 0 && tab < sizeof ent) {
                memcpy(ent, line, tab);
                ent[tab] = 0;
                snprintf(id, sizeof id, "entity/%d", n++);
                fputs("{\"id\": ", jobs);
                put_string(jobs, id);
                fputs(", \"source_prompt\": ", jobs);
                put_string(jobs, ent);
                fputs(", \"target_prompt\": \"" FEW_SHOT "\", \"target_token\": \" x\", \"source_layers\": ", jobs);
                put_string(jobs, sl);
                fputs(", \"target_layers\": ", jobs);
                put_string(jobs, tl);
                fprintf(jobs, ", \"n_new\": %d, \"tags\": {\"entity\": ", n_new);
                put_string(jobs, ent);
                fputs(", \"reference\": ", jobs);
                put_string(jobs, t ? t + 1 : "");
                fputs("}}\n", jobs);
            }
        }
        at = end + 1;
    }
    free(text);
    if (fclose(jobs)) return die("cannot write %s", jobs_path);
    if (flag("--jobs-only")) return printf("wrote %s\n", jobs_path), 0;
    if ((rc = run_jobs(e, dir, jobs_path, results, sizeof results))) return rc;
    /* each generation's description, and its ROUGE-L F1 where a reference is given */
    snprintf(scored, sizeof scored, "%s/scored.jsonl", dir);
    snprintf(path, sizeof path, "%s/descriptions.csv", dir);
    if (!(text = read_file(results, &len))) return CLI_FAIL;
    out = fopen(scored, "w");
    csv = fopen(path, "w");
    if (!out || !csv) rc = die("cannot write %s or %s", scored, path);
    if (csv) fputs("entity,source_layer,target_layer,description,rouge_l\n", csv);
    for (at = 0; !rc && at < len;) {
        size_t end = at;
        char ls[16], lt[16];
        const char *c;
        while (end < len && text[end] != '\n') end++;
        if (json_field(text + at, end - at, "tags.entity", ent, sizeof ent) ||
            json_field(text + at, end - at, "tags.reference", ref, sizeof ref) ||
            json_field(text + at, end - at, "source_layer", ls, sizeof ls) ||
            json_field(text + at, end - at, "target_layer", lt, sizeof lt)) {
            rc = die("%s: a line that is not an entity-description result", results);
            break;
        }
        if (json_field(text + at, end - at, "generated_text", gen, sizeof gen)) gen[0] = 0;
        description_of(gen, desc, sizeof desc);
        fwrite(text + at, 1, end - at - 1, out);
        fputs(", \"description\": ", out);
        put_string(out, desc);
        fputc('"', csv);
        for (c = ent; *c; c++) fprintf(csv, *c == '"' ? "\"\"" : "%c", *c);
        fprintf(csv, "\",%s,%s,\"", ls, lt);
        for (c = desc; *c; c++) fprintf(csv, *c == '"' ? "\"\"" : "%c", *c);
        fputc('"', csv);
        if (ref[0]) {
            double f = rouge_l(desc, ref);
            fprintf(out, ", \"rouge_l\": %.6g", f);
            fprintf(csv, ",%.6g", f);
            with_ref = 1;
        } else fputc(',', csv);
        fputs("}\n", out);
        fputc('\n', csv);
        if (!json) printf("%-24.24s layer %3s -> %3s  %s\n", ent, ls, lt, desc); /* the descriptions, as they come */
        at = end + 1;
    }
    free(text);
    if (out && fclose(out) && !rc) rc = die("cannot write %s", scored);
    if (csv && fclose(csv) && !rc) rc = die("cannot write %s", path);
    if (rc) return rc;
    summary_of(&su, paths, scored, "rouge_l");
    snprintf(path, sizeof path, "%s/summary.json", dir);
    if (!(out = fopen(path, "w"))) return die("cannot write %s", path);
    su.json = out;
    if (with_ref) { /* mean ROUGE-L per layer: the summary and its figure */
        snprintf(results, sizeof results, "%s/rouge_lines.svg", dir);
        su.lines = results;
        su.title = "Entity description: ROUGE-L F1 against the references, per source layer";
    }
    rc = summarize(&su);
    if (fclose(out) && !rc) rc = die("cannot write %s", path);
    if (!rc && !json) { /* the descriptions, entity by entity */
        snprintf(path, sizeof path, "%s/descriptions.csv", dir);
        printf("%d entities; descriptions per layer in %s, scored.jsonl, summary.json%s\n", n, path,
               with_ref ? ", rouge_lines.svg" : "");
    } else if (!rc) rc = print_file(path);
    (void)i;
    return rc;
}

/* --- next-token prediction (§4.1) ------------------------------------------------------------------ */

#define IDENTITY_PROMPT "cat -> cat\n1135 -> 1135\nhello -> hello\n?"

/* the texts: lines of a file, or (no --data) the source snippets of the official TSVs */
static char **nt_texts(int *n) {
    const char *data = opt("--data");
    char **texts = NULL, *text, *header[64];
    size_t len, at;
    int cap = 0, i, k;
    glob_t g;
    *n = 0;
    memset(&g, 0, sizeof g);
    if (data) {
        if (!(text = read_file(data, &len))) return NULL;
        for (at = 0; at < len;) {
            size_t end = at;
            while (end < len && text[end] != '\n') end++;
            text[end] = 0;
            if (end > at) {
                char **t2 = *n == cap ? (char **)realloc(texts, (size_t)(cap = cap ? 2 * cap : 256) * sizeof *t2) : texts;
                if (!t2 || !(t2[*n] = (char *)malloc(end - at + 1))) break;
                texts = t2;
                memcpy(texts[(*n)++], text + at, end - at + 1);
            }
            at = end + 1;
        }
        free(text);
        return texts;
    }
    if (glob("examples/data/patchscopes/*/*.tsv", 0, NULL, &g) != 0) return die("no TSVs in examples/data/patchscopes: give --data"), NULL;
    for (i = 0; i < (int)g.gl_pathc; i++) {
        int nh, col;
        at = 0;
        if (!(text = read_file(g.gl_pathv[i], &len))) continue;
        nh = tsv_record(text, len, &at, header, 64);
        col = nh > 0 ? column(header, nh, "prompt_source") : -1;
        for (;;) {
            char *f[64];
            int nf = col >= 0 ? tsv_record(text, len, &at, f, 64) : 0;
            if (nf <= 0) break;
            if (nf == nh) {
                char **t2 = *n == cap ? (char **)realloc(texts, (size_t)(cap = cap ? 2 * cap : 256) * sizeof *t2) : texts;
                if (t2) {
                    texts = t2;
                    texts[(*n)++] = f[col];
                    f[col] = NULL;
                }
            }
            for (k = 0; k < nf; k++) free(f[k]);
        }
        fields_free(header, nh > 0 ? nh : 0);
        free(text);
    }
    globfree(&g);
    return texts;
}

/* A job line: the prefix (ids), patched at its last token into target (ids; NULL: the
   prefix itself) at target_layers, read against the source's own next-token distribution
   (the official code's precision@1 and surprisal) */
static void nt_job(FILE *f, const char *id, const int *ids, int n, const int *tgt, int n_tgt, const char *sl,
                   const char *tl, const char *map, const char *method, int k) {
    fputs("{\"id\": ", f);
    put_string(f, id);
    fputs(", \"source_ids\": ", f);
    cli_out = f;
    print_ints(ids, n);
    fputs(", \"target_ids\": ", f);
    print_ints(tgt ? tgt : ids, tgt ? n_tgt : n);
    cli_out = NULL;
    fprintf(f, ", \"source_layers\": %s, \"target_layers\": %s", sl, tl);
    if (map) {
        fputs(", \"map\": ", f);
        put_string(f, map);
    }
    fprintf(f, ", \"readout\": [\"precision_at_1\", \"surprisal\"], \"compare\": \"source\", \"tags\": {\"method\": \"%s\", "
            "\"text\": %d}}\n", method, k);
}

static int next_token(example *e, const char *dir) {
    const ps_config *cfg = ps_model_config(e->m);
    int L = cfg->n_layer, C = cfg->n_embd, n_texts = 0, seed, n_train = 0, n_valid = 0, rc = 0, i, l;
    int max_texts, n_all = 0, *keep = NULL;
    char **texts = NULL, jobs_path[4096], results[4096], path[4096], id[64], sl[32], tl[32];
    double ridge, train_fraction = 0.8;
    float *X = NULL, *Y = NULL, *A = NULL;
    FILE *jobs;
    summary_opts_t su;
    const char *paths[1];
    unsigned long long rng;
    if (!int_opt("--seed", 0, &seed) || !int_opt("--per-relation", 0, &max_texts)) return CLI_USAGE;
    ridge = opt("--ridge") ? atof(opt("--ridge")) : 0.1;
    if (ridge < 0) return usage_error("--ridge must not be negative");
    if (!e->t && !opt("--data")) return die("%s has no tokenizer patchscope.h reads: the texts need one", e->dir);
    if (!e->t) return die("%s has no tokenizer patchscope.h reads", e->dir);
    if (!(texts = nt_texts(&n_all)) || (n_texts = n_all) < 4) {
        rc = die("too few texts (%d)", n_all);
        goto done;
    }
    if (max_texts > 0 && max_texts < n_texts) n_texts = max_texts; /* the first N */
    keep = (int *)calloc((size_t)n_texts * 2, sizeof(int)); /* per text: its position, train (1) or not */
    X = (float *)calloc((size_t)n_texts * L * C, sizeof(float));
    Y = (float *)calloc((size_t)n_texts * C, sizeof(float));
    A = (float *)calloc((size_t)(C + 1) * C, sizeof(float));
    snprintf(jobs_path, sizeof jobs_path, "%s/jobs.jsonl", dir);
    if (!keep || !X || !Y || !A || !(jobs = fopen(jobs_path, "w"))) {
        rc = die("out of memory, or cannot write %s", jobs_path);
        goto done;
    }
    rng = (unsigned long long)seed * 0x9E3779B97F4A7C15ull + 0x1234567ull;
    for (i = 0; !rc && i < n_texts; i++) { /* a position per text, and the prefix up to it */
        int n, *ids = encode_text(e->t, texts[i], strlen(texts[i]), 0, &n), p, *tgt = NULL, n_tgt = 0;
        ps_source src;
        if (!ids || n < 2 || n > cfg->n_ctx) {
            free(ids);
            keep[2 * i] = -1;
            continue;
        }
        p = (int)(rng_next(&rng) % (unsigned long long)(n - 1)); /* the prefix ids[0..p] has a next token */
        keep[2 * i] = p;
        keep[2 * i + 1] = (int)(rng_next(&rng) % 1000) < (int)(train_fraction * 1000);
        if (keep[2 * i + 1]) { /* a training pair per layer: h_l -> h_{L-1} at p */
            int last = -1;
            if (ps_source_run(e->c, ids, p + 1, PS_RESID_POST, &last, 1, &src)) rc = die("%s", ps_ctx_error(e->c));
            for (l = 0; !rc && l < L; l++)
                memcpy(X + ((size_t)l * n_texts + n_train) * C, ps_source_state(&src, l, -1), (size_t)C * sizeof(float));
            if (!rc) memcpy(Y + (size_t)n_train * C, ps_source_state(&src, L - 1, -1), (size_t)C * sizeof(float));
            ps_source_free(&src);
            n_train++;
        } else { /* a validation case: four methods */
            tgt = encode_text(e->t, IDENTITY_PROMPT, strlen(IDENTITY_PROMPT), 0, &n_tgt);
            snprintf(id, sizeof id, "lens/%d", i);
            snprintf(tl, sizeof tl, "%d", L - 1);
            nt_job(jobs, id, ids, p + 1, NULL, 0, "\"all\"", tl, NULL, "logit lens", i);
            snprintf(id, sizeof id, "identity/%d", i);
            if (tgt) nt_job(jobs, id, ids, p + 1, tgt, n_tgt, "\"all\"", "\"same\"", NULL, "token identity", i);
            for (l = 0; l < L; l++) { /* the maps, as the official notebook applies them to both */
                snprintf(path, sizeof path, "%s/map_%d.f32", dir, l);
                snprintf(sl, sizeof sl, "%d", l);
                snprintf(id, sizeof id, "affine/%d/%d", i, l);
                nt_job(jobs, id, ids, p + 1, NULL, 0, sl, tl, path, "affine lens", i);
                snprintf(id, sizeof id, "identity-map/%d/%d", i, l);
                if (tgt) nt_job(jobs, id, ids, p + 1, tgt, n_tgt, sl, sl, path, "token identity + map", i);
            }
            free(tgt);
            n_valid++;
        }
        free(ids);
    }
    if (fclose(jobs) && !rc) rc = die("cannot write %s", jobs_path);
    /* the affine lens: a least-squares map per layer, on the training positions */
    for (l = 0; !rc && l < L; l++) {
        snprintf(path, sizeof path, "%s/map_%d.f32", dir, l);
        rc = fit_map(path, X + (size_t)l * n_texts * C, C, Y, C, n_train, ridge, A);
    }
    if (rc || flag("--jobs-only")) {
        if (!rc) printf("wrote %s and the maps\n", jobs_path);
        goto done;
    }
    if ((rc = run_jobs(e, dir, jobs_path, results, sizeof results))) goto done;
    summary_of(&su, paths, results, "precision_at_1");
    su.by = "method";
    snprintf(path, sizeof path, "%s/precision_lines.svg", dir);
    su.lines = path;
    su.title = "Next-token prediction: precision@1 against the model's own prediction, per source layer";
    if (!rc) rc = summarize(&su);
    su.metric = "surprisal";
    snprintf(path, sizeof path, "%s/surprisal_lines.svg", dir);
    su.title = "Next-token prediction: surprisal (nats) of each method's top-1 under the model, per source layer";
    if (!rc) rc = summarize(&su);
    su.lines = NULL;
    if (!rc) rc = summary_file(&su, dir);
    if (!rc && !json)
        printf("%d texts: %d for the maps, %d evaluated; wrote %s/{jobs,results}.jsonl, summary.json, "
               "precision_lines.svg, surprisal_lines.svg\n", n_texts, n_train, n_valid, dir);
done:
    for (i = 0; texts && i < n_all; i++) free(texts[i]);
    free(texts), free(keep), free(X), free(Y), free(A);
    return rc;
}

/* --- multi-hop (§5) ------------------------------------------------------------------------------ */

/* A job whose source is prompt run unpatched (its last state written back onto itself): the
   model's own generation, scored like the patched cells. */
static void unpatched_job(FILE *f, const char *id, const char *prompt, int L, int n_new, const char *object,
                          const char *kind) {
    fputs("{\"id\": ", f);
    put_string(f, id);
    fputs(", \"source_prompt\": ", f);
    put_string(f, prompt);
    fprintf(f, ", \"source_layers\": %d, \"target_layers\": \"same\", \"n_new\": %d, \"tags\": {\"relation\": \"multihop\", "
            "\"object\": ", L - 1, n_new);
    put_string(f, object);
    fprintf(f, ", \"kind\": \"%s\"}}\n", kind);
}

static int multi_hop(example *e, const char *dir) {
    const char *data = opt("--data") ? opt("--data") : "examples/data/multihop_ceo.tsv";
    const char *sl = opt("--source-layers") ? opt("--source-layers") : "all";
    const char *tl = opt("--target-layers") ? opt("--target-layers") : "all";
    int L = ps_model_config(e->m)->n_layer, n_new, n = 0, rc = 0, i, cap = 0, solved = 0, solved_plain_wrong = 0;
    int tally[4] = {0, 0, 0, 0}, both = 0, pass; /* first hop, second hop, the two-hop question; both hops */
    char *text, jobs_path[4096], results[4096], scored[4096], path[4096], id[64], prompt[2048], obj[1024], kind[16];
    char (*rows)[3][512] = NULL;
    int (*right)[4] = NULL; /* per case: first hop, second hop, the question, any patched cell */
    size_t len, at;
    FILE *jobs;
    summary_opts_t su;
    relation rel;
    const char *paths[1];
    if (!int_opt("-n", 20, &n_new)) return CLI_USAGE;
    if (!(text = read_file(data, &len))) return CLI_FAIL;
    for (at = 0; at < len;) { /* product <TAB> company <TAB> CEO */
        size_t end = at;
        char *line = text + at, *t1, *t2;
        while (end < len && text[end] != '\n') end++;
        text[end] = 0;
        at = end + 1;
        if (!*line || *line == '#') continue;
        if (!(t1 = strchr(line, '\t')) || !(t2 = strchr(t1 + 1, '\t')) || strchr(t2 + 1, '\t') || t1 - line >= 512 ||
            t2 - t1 > 512 || strlen(t2 + 1) >= 512) {
            rc = die("%s: want product<TAB>company<TAB>CEO lines: %s", data, line);
            free(text), free(rows);
            return rc;
        }
        if (n == cap) {
            char (*g)[3][512] = realloc(rows, (size_t)(cap = cap ? 2 * cap : 64) * sizeof *rows);
            if (!g) return free(text), free(rows), die("out of memory");
            rows = g;
        }
        *t1 = *t2 = 0;
        strcpy(rows[n][0], line);
        strcpy(rows[n][1], t1 + 1);
        strcpy(rows[n][2], t2 + 1);
        n++;
    }
    free(text);
    snprintf(jobs_path, sizeof jobs_path, "%s/jobs.jsonl", dir);
    if (!n || !(right = calloc((size_t)n, sizeof *right)) || !(jobs = fopen(jobs_path, "w"))) {
        free(rows), free(right);
        return die(n ? "cannot write %s" : "no cases in %s", n ? jobs_path : data);
    }
    for (i = 0; i < n; i++) {
        /* the first hop's answer (the company) read where "<product> was created by" ends, into
           the second hop's question */
        snprintf(id, sizeof id, "multihop/%d", i);
        snprintf(prompt, sizeof prompt, "%s was created by", rows[i][0]);
        fputs("{\"id\": ", jobs);
        put_string(jobs, id);
        fputs(", \"source_prompt\": ", jobs);
        put_string(jobs, prompt);
        fputs(", \"target_prompt\": \"Who is the current CEO of x\", \"target_token\": \" x\", \"source_layers\": ", jobs);
        put_string(jobs, sl);
        fputs(", \"target_layers\": ", jobs);
        put_string(jobs, tl);
        fprintf(jobs, ", \"n_new\": %d, \"tags\": {\"relation\": \"multihop\", \"object\": ", n_new);
        put_string(jobs, rows[i][2]);
        fputs(", \"kind\": \"patch\"}}\n", jobs);
        snprintf(id, sizeof id, "multihop/%d/baseline", i); /* the plain two-hop question */
        snprintf(prompt, sizeof prompt, "Who is the current CEO of the company that created %s", rows[i][0]);
        unpatched_job(jobs, id, prompt, L, n_new, rows[i][2], "baseline");
        snprintf(id, sizeof id, "multihop/%d/first_hop", i);
        snprintf(prompt, sizeof prompt, "%s was created by", rows[i][0]);
        unpatched_job(jobs, id, prompt, L, n_new, rows[i][1], "first_hop");
        snprintf(id, sizeof id, "multihop/%d/second_hop", i);
        snprintf(prompt, sizeof prompt, "Who is the current CEO of %s", rows[i][1]);
        unpatched_job(jobs, id, prompt, L, n_new, rows[i][2], "second_hop");
    }
    free(rows);
    if (fclose(jobs)) return free(right), die("cannot write %s", jobs_path);
    if (flag("--jobs-only")) return free(right), printf("wrote %s\n", jobs_path), 0;
    rc = run_jobs(e, dir, jobs_path, results, sizeof results);
    memset(&rel, 0, sizeof rel);
    strcpy(rel.name, "multihop");
    snprintf(scored, sizeof scored, "%s/scored.jsonl", dir);
    if (!rc) rc = ae_score(results, scored, &rel, 1);
    /* per case: each hop and the plain question unpatched, and whether any layer pair solves it */
    for (pass = 0; !rc && pass < 2; pass++) {
        if (!(text = read_file(pass ? scored : results, &len))) rc = CLI_FAIL;
        for (at = 0; !rc && at < len;) {
            size_t end = at;
            char gen[8192], ok[8];
            int k;
            while (end < len && text[end] != '\n') end++;
            if (json_field(text + at, end - at, "id", id, sizeof id) || sscanf(id, "multihop/%d", &k) != 1 || k < 0 || k >= n)
                rc = die("%s: a line that is not a multi-hop result", pass ? scored : results);
            else if (pass == 0 && !json_field(text + at, end - at, "tags.kind", kind, sizeof kind) && strcmp(kind, "patch") != 0) {
                if (json_field(text + at, end - at, "generated_text", gen, sizeof gen)) gen[0] = 0;
                if (json_field(text + at, end - at, "tags.object", obj, sizeof obj)) obj[0] = 0;
                right[k][strcmp(kind, "first_hop") == 0 ? 0 : strcmp(kind, "second_hop") == 0 ? 1 : 2] = object_in_text(obj, gen);
            } else if (pass == 1 && !json_field(text + at, end - at, "correct", ok, sizeof ok) && strcmp(ok, "1") == 0)
                right[k][3] = 1;
            at = end + 1;
        }
        free(text);
    }
    for (i = 0; i < n; i++) {
        int j;
        for (j = 0; j < 3; j++) tally[j] += right[i][j];
        both += right[i][0] && right[i][1];
        solved += right[i][3];
        solved_plain_wrong += right[i][3] && !right[i][2];
    }
    free(right);
    summary_of(&su, paths, scored, "correct");
    snprintf(path, sizeof path, "%s/accuracy_heatmap.svg", dir);
    su.heatmap = path;
    su.title = "Multi-hop: the second hop answered from the first hop's state";
    if (!rc) rc = summarize(&su);
    snprintf(path, sizeof path, "%s/summary.json", dir);
    if (!rc && (jobs = fopen(path, "w"))) {
        fprintf(jobs, "{\"experiment\": \"multi-hop\", \"model\": ");
        put_string(jobs, e->dir);
        fprintf(jobs, ", \"cases\": %d, \"hop1_right\": %d, \"hop2_right\": %d, \"both_hops_right\": %d, "
                "\"two_hop_question_right\": %d, \"patchscope_solves\": %d, \"patchscope_solves_where_the_question_fails\": %d, "
                "\"accuracy\": ", n, tally[0], tally[1], both, tally[2], solved, solved_plain_wrong);
        put_ratio(jobs, rel.correct, rel.cells);
        fputs("}\n", jobs);
        if (fclose(jobs)) rc = die("cannot write %s", path);
    } else if (!rc) rc = die("cannot write %s", path);
    if (!rc && json) rc = print_file(path);
    else if (!rc)
        printf("%d cases: first hop known %d, second hop known %d, both %d; the two-hop question answered %d; a layer "
               "pair of the Patchscope answers %d (%d where the question fails); wrote %s/summary.json, "
               "accuracy_heatmap.svg\n", n, tally[0], tally[1], both, tally[2], solved, solved_plain_wrong, dir);
    return rc;
}

/* --- cross-model (§4.4) --------------------------------------------------------------------------- */

/* "all", "A", "A-B" and lists of those ("0,2,4-5") into out (at most L) */
static int layer_list(const char *spec, int L, int *out) {
    int n = 0, a, b;
    const char *p = spec;
    char *end;
    if (!spec || strcmp(spec, "all") == 0) {
        for (a = 0; a < L; a++) out[n++] = a;
        return n;
    }
    while (*p) {
        a = b = (int)strtol(p, &end, 10);
        if (end == p) return -1;
        if (*end == '-') b = (int)strtol(end + 1, &end, 10);
        if (a < 0 || b >= L || a > b) return -1;
        for (; a <= b && n < L; a++) out[n++] = a;
        p = *end == ',' ? end + 1 : end;
        if (*end && *end != ',') return -1;
    }
    return n;
}

static int cross_model(example *e, const char *dir) {
    const ps_config *tc = ps_model_config(e->m), *sc;
    int sl[512], tl[512], n_sl = 0, n_tl = 0, n_all = 0, n_texts, i, a, b, rc = 0, seed, n_train = 0, n_valid = 0, max_texts;
    char **texts = NULL, jobs_path[4096], results[4096], path[4096], id[96];
    float *X = NULL, *Y = NULL, *A = NULL;
    double ridge;
    unsigned long long rng;
    example src;
    FILE *jobs = NULL;
    summary_opts_t su;
    const char *paths[1], *src_dir = opt("--source-model");
    if (!src_dir) return usage_error("cross-model needs --source-model DIR");
    if (!int_opt("--seed", 0, &seed) || !int_opt("--per-relation", 0, &max_texts)) return CLI_USAGE;
    ridge = opt("--ridge") ? atof(opt("--ridge")) : 0.1;
    if (example_open(&src, src_dir, "weights/gpt2", 0)) return CLI_FAIL;
    sc = ps_model_config(src.m);
    if (!src.t || !e->t) rc = die("both models need a tokenizer patchscope.h reads");
    else if (sc->n_vocab != tc->n_vocab)
        rc = die("the models' vocabularies differ (%d and %d tokens): precision@1 compares token ids", sc->n_vocab, tc->n_vocab);
    else if ((n_sl = layer_list(opt("--source-layers"), sc->n_layer, sl)) < 1 ||
             (n_tl = layer_list(opt("--target-layers") && strcmp(opt("--target-layers"), "same") ? opt("--target-layers") : NULL,
                                tc->n_layer, tl)) < 1)
        rc = usage_error("bad --source-layers or --target-layers (\"0-5\", \"0,4,8\"; every pair is a map)");
    if (rc) goto done;
    if (!(texts = nt_texts(&n_all)) || (n_texts = n_all) < 4) {
        rc = die("too few texts (%d)", n_all);
        goto done;
    }
    if (max_texts > 0 && max_texts < n_texts) n_texts = max_texts;
    X = (float *)calloc((size_t)n_texts * sc->n_layer * sc->n_embd, sizeof(float));
    Y = (float *)calloc((size_t)n_texts * tc->n_layer * tc->n_embd, sizeof(float));
    A = (float *)calloc((size_t)(sc->n_embd + 1) * tc->n_embd, sizeof(float));
    snprintf(jobs_path, sizeof jobs_path, "%s/jobs.jsonl", dir);
    if (!X || !Y || !A || !(jobs = fopen(jobs_path, "w"))) {
        rc = die("out of memory, or cannot write %s", jobs_path);
        goto done;
    }
    rng = (unsigned long long)seed * 0x9E3779B97F4A7C15ull + 0x7654321ull;
    for (i = 0; !rc && i < n_texts; i++) {
        /* a position where both tokenizations give the same prefix, as the official code pairs them */
        int n1, n2, *s1 = encode_text(src.t, texts[i], strlen(texts[i]), 0, &n1), *t1 = encode_text(e->t, texts[i], strlen(texts[i]), 0, &n2);
        int p = -1, k, n = n1 < n2 ? n1 : n2, train;
        if (n > sc->n_ctx) n = sc->n_ctx;
        if (n > tc->n_ctx) n = tc->n_ctx;
        for (k = 0; s1 && t1 && n >= 2 && k < 10 && p < 0; k++) {
            int q = (int)(rng_next(&rng) % (unsigned long long)(n - 1));
            size_t l1 = 0, l2 = 0;
            char b1[4096], b2[4096];
            if (!ps_decode(src.t, s1, q + 1, b1, sizeof b1, &l1) && !ps_decode(e->t, t1, q + 1, b2, sizeof b2, &l2) &&
                l1 == l2 && memcmp(b1, b2, l1) == 0)
                p = q;
        }
        train = (int)(rng_next(&rng) % 5) != 0; /* 80% train */
        if (p >= 0 && train) { /* every layer of both at p: the maps' training pairs */
            ps_source ss, ts;
            int last = -1;
            if (ps_source_run(src.c, s1, p + 1, PS_RESID_POST, &last, 1, &ss)) rc = die("%s", ps_ctx_error(src.c));
            else if (ps_source_run(e->c, t1, p + 1, PS_RESID_POST, &last, 1, &ts)) {
                rc = die("%s", ps_ctx_error(e->c));
                ps_source_free(&ss);
            } else {
                for (a = 0; a < sc->n_layer; a++)
                    memcpy(X + ((size_t)a * n_texts + n_train) * sc->n_embd, ps_source_state(&ss, a, -1), (size_t)sc->n_embd * sizeof(float));
                for (b = 0; b < tc->n_layer; b++)
                    memcpy(Y + ((size_t)b * n_texts + n_train) * tc->n_embd, ps_source_state(&ts, b, -1), (size_t)tc->n_embd * sizeof(float));
                n_train++;
                ps_source_free(&ss);
                ps_source_free(&ts);
            }
        } else if (p >= 0) { /* a held-out case per layer pair */
            for (a = 0; a < n_sl; a++)
                for (b = 0; b < n_tl; b++) {
                    snprintf(id, sizeof id, "cross/%d/%d/%d", i, sl[a], tl[b]);
                    snprintf(path, sizeof path, "%s/map_%d_%d.f32", dir, sl[a], tl[b]);
                    fputs("{\"id\": ", jobs);
                    put_string(jobs, id);
                    fputs(", \"source_model\": ", jobs);
                    put_string(jobs, src_dir);
                    fputs(", \"source_ids\": ", jobs);
                    cli_out = jobs;
                    print_ints(s1, p + 1);
                    fputs(", \"target_ids\": ", jobs);
                    print_ints(t1, p + 1);
                    cli_out = NULL;
                    fprintf(jobs, ", \"source_layers\": %d, \"target_layers\": %d, \"map\": ", sl[a], tl[b]);
                    put_string(jobs, path);
                    fprintf(jobs, ", \"readout\": [\"precision_at_1\", \"surprisal\"], \"compare\": \"source\", \"tags\": "
                            "{\"text\": %d}}\n", i);
                }
            n_valid++;
        }
        free(s1);
        free(t1);
    }
    if (fclose(jobs) && !rc) rc = die("cannot write %s", jobs_path);
    jobs = NULL;
    for (a = 0; !rc && a < n_sl; a++) /* a least-squares map per (source layer, target layer) */
        for (b = 0; !rc && b < n_tl; b++) {
            snprintf(path, sizeof path, "%s/map_%d_%d.f32", dir, sl[a], tl[b]);
            rc = fit_map(path, X + (size_t)sl[a] * n_texts * sc->n_embd, sc->n_embd, Y + (size_t)tl[b] * n_texts * tc->n_embd,
                         tc->n_embd, n_train, ridge, A);
        }
    if (rc || flag("--jobs-only")) {
        if (!rc) printf("wrote %s and the maps\n", jobs_path);
        goto done;
    }
    if ((rc = run_jobs(e, dir, jobs_path, results, sizeof results))) goto done;
    summary_of(&su, paths, results, "precision_at_1");
    snprintf(path, sizeof path, "%s/precision_heatmap.svg", dir);
    su.heatmap = path;
    su.title = "Cross-model next-token prediction: precision@1 per (source layer, target layer)";
    if (!rc) rc = summarize(&su);
    su.heatmap = NULL;
    if (!rc) rc = summary_file(&su, dir);
    if (!rc && !json)
        printf("%d texts: %d for the maps, %d evaluated over %d x %d layer pairs; wrote %s/summary.json, "
               "precision_heatmap.svg\n", n_texts, n_train, n_valid, n_sl, n_tl, dir);
done:
    if (jobs) fclose(jobs);
    for (i = 0; texts && i < n_all; i++) free(texts[i]);
    free(texts), free(X), free(Y), free(A);
    example_close(&src);
    return rc;
}

int cmd_experiment(example *e) {
    const char *name = n_positional > 0 ? positional[0] : NULL, *dir = opt("--out");
    if (!name) return usage_error("give the experiment: next-token, attribute-extraction, entity-description, multi-hop or cross-model");
    if (!dir) return usage_error("give --out DIR");
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) return die("cannot make the folder %s: %s", dir, strerror(errno));
    if (strcmp(name, "attribute-extraction") == 0) return attribute_extraction(e, dir);
    if (strcmp(name, "entity-description") == 0) return entity_description(e, dir);
    if (strcmp(name, "next-token") == 0) return next_token(e, dir);
    if (strcmp(name, "multi-hop") == 0) return multi_hop(e, dir);
    if (strcmp(name, "cross-model") == 0) return cross_model(e, dir);
    return usage_error("unknown experiment %s (next-token, attribute-extraction, entity-description, multi-hop, "
                       "cross-model)", name);
}
