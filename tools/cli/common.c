/* Helpers every command uses: option values and JSON output. */
#include "cli.h"

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

/* the prompt of ids_name (a list of ids) or text_name (text to encode) */
int *prompt_ids(const example *e, const char *ids_name, const char *text_name, int *n) {
    const char *ids = opt(ids_name), *text = opt(text_name);
    int *out;
    if (ids) {
        if (!(out = parse_ids(ids, n))) usage_error("bad %s list: %s", ids_name, ids);
        return out;
    }
    if (text) return example_encode(e, text, n);
    usage_error("give %s or %s", text_name, ids_name);
    return NULL;
}

/* --- JSON output ---------------------------------------------------------------------------- */

void print_floats(const float *x, int n) {
    int i;
    putchar('[');
    for (i = 0; i < n; i++) printf(i ? ",%.9g" : "%.9g", x[i]);
    putchar(']');
}

void print_ints(const int *x, int n) {
    int i;
    putchar('[');
    for (i = 0; i < n; i++) printf(i ? ",%d" : "%d", x[i]);
    putchar(']');
}

/* a JSON string; labels are valid UTF-8 already (ps_token_label escapes the rest) */
void print_json_string(const char *s) {
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20) printf("\\u%04x", *s);
        else putchar(*s);
    }
    putchar('"');
}

void print_token(const example *e, int id) {
    char label[256];
    ps_token_label(e->t, id, label, sizeof label);
    print_json_string(label);
}

int layerless(ps_point p) { return p == PS_EMBED || p == PS_LN_FINAL || p == PS_LOGITS; }
