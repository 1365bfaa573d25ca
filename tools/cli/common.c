/* Helpers every command uses: option values and JSON output. */
#include "cli.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- option values -------------------------------------------------------------------------- */

int int_opt(const char *name, int def, int *out) {
    const char *v = opt(name);
    char *end;
    long x;
    if (!v) { *out = def; return 1; }
    x = strtol(v, &end, 10);
    if (!*v || *end || x < -1000000 || x > 1000000) return usage_error("bad %s: %s", name, v), 0;
    *out = (int)x;
    return 1;
}

int range_opt(const char *name, int lo, int hi, int *a, int *b) {
    const char *v = opt(name);
    char tail;
    if (!v) { *a = lo; *b = hi; return 1; }
    if (sscanf(v, "%d-%d%c", a, b, &tail) == 2 || (sscanf(v, "%d%c", a, &tail) == 1 && (*b = *a, 1))) return 1;
    return usage_error("bad %s: %s (want A-B)", name, v), 0;
}

int *parse_ids(const char *s, int *n) {
    int cap = 16, *ids = (int *)malloc((size_t)cap * sizeof(int));
    *n = 0;
    while (ids && *s) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 0 || v > 0x7fffffff) { free(ids); return NULL; }
        if (*n == cap) {
            int *grown = (int *)realloc(ids, (size_t)(cap *= 2) * sizeof(int));
            if (!grown) { free(ids); return NULL; }
            ids = grown;
        }
        ids[(*n)++] = (int)v;
        s = end;
        while (*s == ',' || *s == ' ') s++;
    }
    if (ids && !*n) { free(ids); return NULL; }
    return ids;
}

char *read_file(const char *path, size_t *len) {
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    size_t cap = 1 << 16;
    char *buf = (char *)malloc(cap), *grown;
    if (!f || !buf) {
        free(buf);
        return die("cannot open %s", path), NULL;
    }
    *len = 0;
    while ((*len += fread(buf + *len, 1, cap - 1 - *len, f)) == cap - 1) {
        if (!(grown = (char *)realloc(buf, cap *= 2))) break;
        buf = grown;
    }
    if (f != stdin) fclose(f);
    if (*len == cap - 1) {
        free(buf);
        return die("out of memory reading %s", path), NULL;
    }
    buf[*len] = 0;
    return buf;
}

/* the prompt of ids_name (a list of ids), text_name (text to encode) or text_name-file
   (a file of it, - for standard input, one final newline dropped) */
int prompt_error;

int *prompt_ids(const example *e, const char *ids_name, const char *text_name, int *n) {
    char file_name[64];
    const char *ids = opt(ids_name), *text = opt(text_name), *file;
    char *buf = NULL;
    size_t len;
    int *out;
    snprintf(file_name, sizeof file_name, "%s-file", text_name);
    file = opt(file_name);
    prompt_error = CLI_USAGE;
    if (!!ids + !!text + !!file > 1) return usage_error("give one of %s, %s and %s", text_name, file_name, ids_name), NULL;
    if (ids) {
        if (!(out = parse_ids(ids, n))) usage_error("bad %s list: %s", ids_name, ids);
        return out;
    }
    if (file) {
        if (!(buf = read_file(file, &len))) return prompt_error = CLI_FAIL, NULL;
        if (len && buf[len - 1] == '\n') buf[--len] = 0;
        if (len && buf[len - 1] == '\r') buf[--len] = 0;
    } else if (!text) {
        usage_error("give %s, %s or %s", text_name, file_name, ids_name);
        return NULL;
    } else len = strlen(text);
    prompt_error = CLI_FAIL; /* the command line is right from here on */
    if (!e->t) {
        free(buf);
        die("%s has no tokenizer patchscope.h reads (vocab.json + merges.txt, or a tokenizer.json of the supported kinds): give %s", e->dir, ids_name);
        return NULL;
    }
    if (!(out = encode_text(e->t, buf ? buf : text, len, 0, n))) die("cannot encode the prompt");
    free(buf);
    return out;
}

int *encode_text(const ps_tokenizer *t, const char *text, size_t len, int flags, int *n) {
    int *out = NULL;
    ps_status s = ps_encode(t, text, len, flags, NULL, 0, n);
    if (s == PS_OK || s == PS_ERR_RANGE) {
        out = (int *)malloc((size_t)(*n ? *n : 1) * sizeof(int));
        if (out && ps_encode(t, text, len, flags, out, *n, n)) free(out), out = NULL;
    }
    return out;
}

/* 1 when the command line gives a prompt by text_name, text_name-file or ids_name */
int prompt_given(const char *ids_name, const char *text_name) {
    char file_name[64];
    snprintf(file_name, sizeof file_name, "%s-file", text_name);
    return opt(ids_name) || opt(text_name) || opt(file_name);
}

/* an affine map written by fit: (d_src + 1) x d_tgt floats (malloc'd), or NULL when the
   file is missing or holds another number of floats */
float *read_map(const char *path, int d_src, int d_tgt) {
    size_t want = (size_t)(d_src + 1) * d_tgt;
    float *A = (float *)malloc(want * sizeof(float));
    FILE *f = fopen(path, "rb");
    int ok = f && A && fread(A, sizeof(float), want, f) == want && fgetc(f) == EOF;
    if (f) fclose(f);
    if (!ok) free(A), A = NULL;
    return A;
}

/* --- JSON output ---------------------------------------------------------------------------- */

FILE *cli_out;
#define OUT (cli_out ? cli_out : stdout)

/* non-finite values as null: JSON has no NaN or infinity */
void print_floats(const float *x, int n) {
    int i;
    fputc('[', OUT);
    for (i = 0; i < n; i++) {
        if (i) fputc(',', OUT);
        if (isfinite(x[i])) fprintf(OUT, "%.9g", x[i]);
        else fputs("null", OUT);
    }
    fputc(']', OUT);
}

void print_number(double x) {
    if (isfinite(x)) fprintf(OUT, "%.9g", x);
    else fputs("null", OUT);
}

void print_ints(const int *x, int n) {
    int i;
    fputc('[', OUT);
    for (i = 0; i < n; i++) fprintf(OUT, i ? ",%d" : "%d", x[i]);
    fputc(']', OUT);
}

/* Bytes of a valid UTF-8 sequence at s (1-4), or minus the length of its maximal
   invalid subpart: the longest prefix that could still begin a valid sequence, at least
   one byte (Unicode's "maximal subpart" rule, which Python's errors="replace" follows). */
static int utf8_sequence(const unsigned char *s, size_t n) {
    unsigned char lo = 0x80, hi = 0xBF;
    int need, i;
    if (s[0] < 0x80) return 1;
    if (s[0] >= 0xC2 && s[0] <= 0xDF) need = 1;
    else if (s[0] >= 0xE0 && s[0] <= 0xEF) need = 2, lo = s[0] == 0xE0 ? 0xA0 : 0x80, hi = s[0] == 0xED ? 0x9F : 0xBF;
    else if (s[0] >= 0xF0 && s[0] <= 0xF4) need = 3, lo = s[0] == 0xF0 ? 0x90 : 0x80, hi = s[0] == 0xF4 ? 0x8F : 0xBF;
    else return -1;
    for (i = 1; i <= need; i++, lo = 0x80, hi = 0xBF)
        if ((size_t)i >= n || s[i] < lo || s[i] > hi) return -i;
    return need + 1;
}

/* n bytes as a JSON string that is always valid UTF-8: each maximal invalid subpart
   becomes one U+FFFD, every control character (NUL included) is escaped. */
void print_json_bytes(const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    fputc('"', OUT);
    while (i < n) {
        int k = utf8_sequence(p + i, n - i);
        if (k < 0) fputs("\xef\xbf\xbd", OUT), i += (size_t)-k;
        else if (k > 1) fwrite(p + i, 1, (size_t)k, OUT), i += (size_t)k;
        else {
            if (p[i] == '"' || p[i] == '\\') fprintf(OUT, "\\%c", p[i]);
            else if (p[i] < 0x20 || p[i] == 0x7F) fprintf(OUT, "\\u%04x", p[i]);
            else fputc(p[i], OUT);
            i++;
        }
    }
    fputc('"', OUT);
}

void print_json_string(const char *s) { print_json_bytes(s, strlen(s)); }

void print_token(const example *e, int id) {
    char label[256];
    ps_token_label(e->t, id, label, sizeof label);
    print_json_string(label);
}

int layerless(ps_point p) { return p == PS_EMBED || p == PS_LN_FINAL || p == PS_LOGITS; }

/* --dump POINT,...: a capture of each point at every layer, rows positions (of a context
   rows long) each; 0, or an exit status */
int dump_begin(const example *e, int rows, ps_capture *caps, int *k) {
    int L = ps_model_config(e->m)->n_layer;
    char list[256], *tok;
    *k = 0;
    if (!opt("--dump")) return 0;
    snprintf(list, sizeof list, "%s", opt("--dump"));
    for (tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
        int p = ps_point_from_name(tok);
        if (p < 0 || *k == PS_POINT_COUNT) {
            while (*k > 0) free(caps[--*k].out);
            return usage_error("unknown hook point %s", tok);
        }
        caps[*k].point = (ps_point)p;
        caps[*k].layer = PS_ALL_LAYERS;
        caps[*k].out = (float *)malloc((size_t)rows * (layerless(caps[*k].point) ? 1 : L) *
                                       ps_point_width(e->m, caps[*k].point, rows) * sizeof(float));
        if (!caps[(*k)++].out) return die("out of memory");
    }
    return 0;
}

/* the captures as JSON: , "dump": {"point": [layer][position][width], ...} (no layer
   level for layerless points) */
void print_dump(const example *e, const ps_capture *caps, int k, int rows) {
    int L = ps_model_config(e->m)->n_layer, i, l, t;
    for (i = 0; i < k; i++) {
        int w = ps_point_width(e->m, caps[i].point, rows), n_l = layerless(caps[i].point) ? 1 : L;
        printf(i ? ", \"%s\": [" : ", \"dump\": {\"%s\": [", ps_point_name(caps[i].point));
        for (l = 0; l < n_l; l++) {
            if (n_l > 1) printf(l ? ",[" : "[");
            for (t = 0; t < rows; t++) {
                if (t) putchar(',');
                print_floats(caps[i].out + ((size_t)l * rows + t) * w, w);
            }
            if (n_l > 1) putchar(']');
        }
        printf("]");
    }
    if (k) printf("}");
}
