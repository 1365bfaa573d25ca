/* patchscope - the command line front end of patchscope.h.

     patchscope run      --model PATH --ids 1,2,3 [--all-logits] [--dump POINT,...] [--threads N] [--json]
     patchscope generate --model PATH --ids 1,2,3 -n N [--threads N] [--json]

   Errors go to stderr with a non-zero exit status. Floats print with %.9g so they
   read back exactly. */
#define PATCHSCOPE_IMPLEMENTATION
#include "../patchscope.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_IDS 65536

typedef struct options {
    const char *model;
    int ids[MAX_IDS], n_ids;
    int all_logits, json, threads, n_new;
    const char *dump;
} options;

static int die(const char *fmt, const char *arg) {
    fprintf(stderr, "patchscope: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n");
    return 1;
}

static int usage(void) {
    fprintf(stderr,
            "usage: patchscope run      --model PATH --ids 1,2,3 [--all-logits] [--dump POINT,...] [--threads N] [--json]\n"
            "       patchscope generate --model PATH --ids 1,2,3 -n N [--threads N] [--json]\n"
            "points: embed resid_pre q k v pattern z attn_out resid_mid mlp_pre mlp_post mlp_out resid_post ln_final logits\n");
    return 2;
}

/* "464,3139,286" -> ids; 0 on a malformed list */
static int parse_ids(const char *s, int *ids, int *n) {
    *n = 0;
    while (*s) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 0 || v > 0x7fffffff || *n == MAX_IDS) return 0;
        ids[(*n)++] = (int)v;
        s = end;
        if (*s == ',') s++;
        else if (*s) return 0;
    }
    return *n > 0;
}

static int parse_int(const char *s, int lo, int hi, int *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < lo || v > hi) return 0;
    *out = (int)v;
    return 1;
}

static int parse_options(int argc, char **argv, options *o) {
    int i;
    memset(o, 0, sizeof *o);
    o->model = "weights/gpt2";
    o->threads = 0;
    for (i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--all-logits") == 0) o->all_logits = 1;
        else if (strcmp(a, "--json") == 0) o->json = 1;
        else if (!v) return die("%s needs a value", a), 0;
        else if (strcmp(a, "--model") == 0) o->model = v, i++;
        else if (strcmp(a, "--dump") == 0) o->dump = v, i++;
        else if (strcmp(a, "--ids") == 0) {
            if (!parse_ids(v, o->ids, &o->n_ids)) return die("bad --ids list: %s", v), 0;
            i++;
        } else if (strcmp(a, "--threads") == 0) {
            if (!parse_int(v, 1, 256, &o->threads)) return die("bad --threads: %s", v), 0;
            i++;
        } else if (strcmp(a, "-n") == 0) {
            if (!parse_int(v, 0, MAX_IDS, &o->n_new)) return die("bad -n: %s", v), 0;
            i++;
        } else return die("unknown option %s", a), 0;
    }
    if (!o->n_ids) return die("%s", "--ids is required"), 0;
    return 1;
}

static void print_floats(const float *x, int n) {
    int i;
    putchar('[');
    for (i = 0; i < n; i++) printf(i ? ",%.9g" : "%.9g", x[i]);
    putchar(']');
}

static void print_ints(const int *x, int n) {
    int i;
    putchar('[');
    for (i = 0; i < n; i++) printf(i ? ",%d" : "%d", x[i]);
    putchar(']');
}

/* the k most probable ids of a row of logits, best first */
static void top_k(const float *logits, int V, float *probs, int *ids, int k) {
    int i, j;
    ps_softmax(logits, V, probs);
    for (j = 0; j < k; j++) {
        int best = -1;
        for (i = 0; i < V; i++) {
            int taken = 0, t;
            for (t = 0; t < j; t++) taken |= ids[t] == i;
            if (!taken && (best < 0 || probs[i] > probs[best])) best = i;
        }
        ids[j] = best;
    }
}

/* --dump: which points, captured for every layer they exist in */
typedef struct dump {
    ps_point points[PS_POINT_COUNT];
    int n;
    ps_capture caps[PS_POINT_COUNT];
} dump;

static int parse_dump(const char *list, dump *d) {
    char buf[256], *tok;
    d->n = 0;
    if (!list) return 1;
    if (strlen(list) >= sizeof buf) return die("bad --dump: %s", list), 0;
    strcpy(buf, list);
    for (tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        int p = ps_point_from_name(tok);
        if (p < 0) return die("unknown hook point %s", tok), 0;
        if (d->n == PS_POINT_COUNT) return die("%s", "too many --dump points"), 0;
        d->points[d->n++] = (ps_point)p;
    }
    return 1;
}

static int layerless(ps_point p) { return p == PS_EMBED || p == PS_LN_FINAL || p == PS_LOGITS; }

static int cmd_run(ps_ctx *c, const options *o) {
    const ps_config *cfg = ps_model_config(ps_ctx_model(c));
    int V = cfg->n_vocab, L = cfg->n_layer, T = o->n_ids, i, l, t, top_ids[5];
    float *probs = (float *)malloc((size_t)V * sizeof(float));
    dump d;
    if (!probs || !parse_dump(o->dump, &d)) return 1;
    for (i = 0; i < d.n; i++) {
        size_t rows = (size_t)T * (layerless(d.points[i]) ? 1 : (size_t)L);
        d.caps[i].point = d.points[i];
        d.caps[i].layer = PS_ALL_LAYERS;
        d.caps[i].out = (float *)malloc(rows * ps_point_width(ps_ctx_model(c), d.points[i], T) * sizeof(float));
        if (!d.caps[i].out) return die("%s", "out of memory");
    }
    if (ps_run_with_cache(c, o->ids, T, o->all_logits ? PS_ALL_LOGITS : 0, d.caps, d.n))
        return die("%s", ps_ctx_error(c));
    top_k(ps_logits(c, ps_logits_rows(c) - 1), V, probs, top_ids, 5);
    if (!o->json) {
        printf("top 5 at position %d:\n", T - 1);
        for (i = 0; i < 5; i++) printf("  %6d  %.6f\n", top_ids[i], probs[top_ids[i]]);
    } else {
        printf("{\"ids\": ");
        print_ints(o->ids, T);
        printf(", \"logits\": [");
        for (i = 0; i < ps_logits_rows(c); i++) {
            if (i) putchar(',');
            print_floats(ps_logits(c, i), V);
        }
        printf("], \"top\": [");
        for (i = 0; i < 5; i++) printf("%s{\"id\": %d, \"prob\": %.9g}", i ? ", " : "", top_ids[i], probs[top_ids[i]]);
        printf("]");
        if (d.n) {
            printf(", \"dump\": {");
            for (i = 0; i < d.n; i++) {
                int width = ps_point_width(ps_ctx_model(c), d.points[i], T), n_l = layerless(d.points[i]) ? 1 : L;
                printf("%s\"%s\": [", i ? ", " : "", ps_point_name(d.points[i]));
                for (l = 0; l < n_l; l++) {
                    if (!layerless(d.points[i])) printf(l ? ",[" : "[");
                    for (t = 0; t < T; t++) {
                        if (t) putchar(',');
                        print_floats(d.caps[i].out + ((size_t)l * T + t) * width, width);
                    }
                    if (!layerless(d.points[i])) putchar(']');
                }
                printf("]");
            }
            printf("}");
        }
        printf("}\n");
    }
    for (i = 0; i < d.n; i++) free(d.caps[i].out);
    free(probs);
    return 0;
}

static int cmd_generate(ps_ctx *c, const options *o) {
    int *all = (int *)malloc(((size_t)o->n_ids + (size_t)o->n_new) * sizeof(int)), i;
    if (!all) return die("%s", "out of memory");
    memcpy(all, o->ids, (size_t)o->n_ids * sizeof(int));
    if (ps_generate(c, o->ids, o->n_ids, o->n_new, all + o->n_ids)) return die("%s", ps_ctx_error(c));
    if (o->json) {
        printf("{\"ids\": ");
        print_ints(all, o->n_ids + o->n_new);
        printf("}\n");
    } else {
        for (i = 0; i < o->n_ids + o->n_new; i++) printf(i ? ",%d" : "%d", all[i]);
        printf("\n");
    }
    free(all);
    return 0;
}

int main(int argc, char **argv) {
    static options o;
    ps_model *m;
    ps_pool *pool = NULL;
    ps_ctx *c;
    ps_error e;
    int rc;
    if (argc < 2) return usage();
    if (strcmp(argv[1], "run") != 0 && strcmp(argv[1], "generate") != 0) return usage();
    if (!parse_options(argc, argv, &o)) return 2;
    if (ps_model_load(&m, o.model, NULL, &e)) return die("%s", e.msg);
    if (ps_pool_create(&pool, o.threads) || ps_ctx_create(&c, m, pool, &e)) return die("%s", "cannot create a context");
    rc = strcmp(argv[1], "run") == 0 ? cmd_run(c, &o) : cmd_generate(c, &o);
    ps_ctx_free(c);
    ps_pool_free(pool);
    ps_model_free(m);
    return rc;
}
