/* bench - how fast patchscope.h runs, one number per row.

   Usage: build/bench [--json]       (from the repository root)

   Prints a table, or with --json one JSON object of the same numbers (keys below), for
   tracking across commits. Each benchmark is timed several times and the best run is
   kept: on a shared machine the best is the least disturbed.

     tokenizer_mb_s          encode, MB/s of text, one thread, on a few MB of mixed text:
                             the texts of tests/data/tokenizer_cases.json joined by
                             newlines and repeated (tools/bench_tiktoken.js times tiktoken
                             on the same bytes)
     tokenizer_ascii_mb_s    the same on the texts that are all ASCII (prose, code, spaces)
     tokenizer_decode_mb_s   decode of the mixed text's ids, MB/s of text out
     tokenizer_long_s        seconds to encode 1 MB of random letters, one piece

   Times are CPU seconds of the process, so other work on the machine skews them less. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#define PATCHSCOPE_IMPLEMENTATION
#include "../patchscope.h"
#include <time.h>

#define BENCH_TEXT_MIN (4u << 20) /* the texts are repeated up to at least 4 MiB */

/* --- results ---------------------------------------------------------------------------- */

typedef struct row {
    const char *key, *label, *unit;
    double value;
} row;

static row rows[64];
static int n_rows;

static void result(const char *key, const char *label, const char *unit, double value) {
    if (n_rows < (int)(sizeof rows / sizeof rows[0])) {
        row r;
        r.key = key, r.label = label, r.unit = unit, r.value = value;
        rows[n_rows++] = r;
    }
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void die(const char *what, const char *msg) {
    fprintf(stderr, "bench: %s: %s\n", what, msg);
    exit(1);
}

/* --- tokenizer ---------------------------------------------------------------------------- */

typedef struct text { char *data; size_t size, cap; } text;

static void reserve(text *t, size_t n) {
    if (t->size + n > t->cap) {
        t->cap = 2 * (t->size + n);
        t->data = (char *)realloc(t->data, t->cap);
        if (!t->data) die("text", "out of memory");
    }
}

static void append(text *t, const char *s, size_t n) {
    reserve(t, n);
    memcpy(t->data + t->size, s, n);
    t->size += n;
}

/* "\n" and the first n bytes again, until the text has BENCH_TEXT_MIN bytes */
static void repeat(text *t, size_t n) {
    while (t->size < BENCH_TEXT_MIN) {
        append(t, "\n", 1);
        reserve(t, n); /* before the copy: realloc may move the source */
        memcpy(t->data + t->size, t->data, n);
        t->size += n;
    }
}

/* 1 when s has a run of 256 bytes without ' ' or '\n': the fixture's long-piece stress
   texts, left out of the throughput texts (they would time tiktoken's quadratic merge) */
static int has_long_run(const char *s, size_t n) {
    size_t i, run = 0;
    for (i = 0; i < n; i++) {
        run = s[i] == ' ' || s[i] == '\n' ? 0 : run + 1;
        if (run >= 256) return 1;
    }
    return 0;
}

/* The fixture texts but the long-piece ones, joined by "\n" into mixed (all) and ascii
   (those all ASCII), each repeated to BENCH_TEXT_MIN. tools/bench_tiktoken.js builds
   the same bytes. */
static void bench_texts(text *mixed, text *ascii) {
    ps__file f;
    ps_error e;
    ps__json j;
    char key[16], *buf;
    size_t len, one_mixed, one_ascii, i;
    int r;
    if (ps__file_read(&f, "tests/data/tokenizer_cases.json", 1, &e)) die("fixture", e.msg);
    buf = (char *)malloc(f.size + 1);
    ps__json_init(&j, (const char *)f.data, f.size);
    if (ps__json_object(&j)) die("fixture", j.err);
    while ((r = ps__json_key(&j, key, sizeof key, NULL)) == 1) {
        if (strcmp(key, "cases") != 0) { ps__json_skip(&j); continue; }
        ps__json_array(&j);
        while ((r = ps__json_item(&j)) == 1) {
            ps__json_object(&j);
            while ((r = ps__json_key(&j, key, sizeof key, NULL)) == 1) {
                if (strcmp(key, "text") != 0) { ps__json_skip(&j); continue; }
                if (ps__json_string(&j, buf, f.size + 1, &len)) break;
                if (has_long_run(buf, len)) continue;
                for (i = 0; i < len && (unsigned char)buf[i] < 0x80; i++) {}
                if (mixed->size) append(mixed, "\n", 1);
                append(mixed, buf, len);
                if (i == len) {
                    if (ascii->size) append(ascii, "\n", 1);
                    append(ascii, buf, len);
                }
            }
            if (r < 0) break;
        }
        if (r < 0) break;
    }
    if (r < 0) die("fixture", j.err);
    one_mixed = mixed->size;
    one_ascii = ascii->size;
    repeat(mixed, one_mixed);
    repeat(ascii, one_ascii);
    free(buf);
    ps__file_close(&f);
}

/* best encode throughput in MB/s over a few runs; *n_ids gets the id count */
static double encode_mb_s(const ps_tokenizer *t, const text *x, int *ids, int cap, int *n_ids) {
    double best = 0;
    int run;
    for (run = 0; run < 5; run++) {
        double t0 = now(), dt;
        if (ps_encode(t, x->data, x->size, 0, ids, cap, n_ids)) die("encode", "failed");
        dt = now() - t0;
        if (x->size / dt / 1e6 > best) best = x->size / dt / 1e6;
    }
    return best;
}

static void bench_tokenizer(void) {
    ps_tokenizer *t;
    ps_error e;
    text mixed = {NULL, 0, 0}, ascii = {NULL, 0, 0};
    int *ids, cap, n = 0, run;
    char *out;
    double best = 0;
    if (ps_tokenizer_load(&t, "weights", &e)) die("tokenizer", e.msg);
    bench_texts(&mixed, &ascii);
    cap = (int)(mixed.size > ascii.size ? mixed.size : ascii.size);
    ids = (int *)malloc((size_t)cap * sizeof(int));
    out = (char *)malloc(mixed.size);
    result("tokenizer_ascii_mb_s", "tokenizer encode, ASCII text", "MB/s", encode_mb_s(t, &ascii, ids, cap, &n));
    result("tokenizer_mb_s", "tokenizer encode, mixed text", "MB/s", encode_mb_s(t, &mixed, ids, cap, &n));
    for (run = 0; run < 5; run++) {
        size_t len;
        double t0 = now(), dt;
        if (ps_decode(t, ids, n, out, mixed.size, &len) || len != mixed.size || memcmp(out, mixed.data, len))
            die("decode", "does not give the text back");
        dt = now() - t0;
        if (len / dt / 1e6 > best) best = len / dt / 1e6;
    }
    result("tokenizer_decode_mb_s", "tokenizer decode", "MB/s", best);
    {
        size_t i, len = 1 << 20;
        unsigned x = 1;
        int n_long;
        double t0;
        for (i = 0; i < len; i++) {
            x = x * 1103515245u + 12345u;
            out[i] = (char)('a' + (x >> 16) % 26);
        }
        t0 = now();
        if (ps_encode(t, out, len, 0, ids, cap, &n_long)) die("encode", "failed on 1 MB of letters");
        result("tokenizer_long_s", "tokenizer encode, 1 MB one piece", "s", now() - t0);
    }
    result("tokenizer_text_bytes", "  mixed text size", "bytes", (double)mixed.size);
    result("tokenizer_text_tokens", "  mixed text tokens", "ids", (double)n);
    free(ids);
    free(out);
    free(mixed.data);
    free(ascii.data);
    ps_tokenizer_free(t);
}

int main(int argc, char **argv) {
    int json = argc > 1 && strcmp(argv[1], "--json") == 0, i;
    if (argc > 2 || (argc == 2 && !json)) {
        fprintf(stderr, "usage: %s [--json]\n", argv[0]);
        return 2;
    }
    bench_tokenizer();
    if (json) {
        printf("{");
        for (i = 0; i < n_rows; i++) printf("%s\"%s\": %.6g", i ? ", " : "", rows[i].key, rows[i].value);
        printf("}\n");
    } else {
        printf("%-36s %14s  %s\n", "benchmark", "value", "unit");
        for (i = 0; i < n_rows; i++) printf("%-36s %14.6g  %s\n", rows[i].label, rows[i].value, rows[i].unit);
    }
    return 0;
}
