/* The CLI (build/patchscope) end to end: its JSON must carry exactly the library's
   numbers (floats print with %.9g, so they read back bit for bit), the oracle's ids,
   and errors must exit non-zero. Run from the repository root after make. */
#define _POSIX_C_SOURCE 200809L /* popen, mkdtemp, getcwd */
#define PATCHSCOPE_IMPLEMENTATION
#include "../patchscope.h"
#include <sys/wait.h>
#include <unistd.h>
#include "testutil.h"
#include "golden.h"

/* stdout of a command (malloc'd) and its exit status */
static char *run(const char *cmd, int *status) {
    FILE *p = popen(cmd, "r");
    size_t cap = 1 << 16, n = 0;
    char *out = (char *)malloc(cap);
    while (p && out && (n += fread(out + n, 1, cap - n - 1, p)) == cap - 1) out = (char *)realloc(out, cap *= 2);
    out[n] = 0;
    *status = p ? pclose(p) : -1;
    return out;
}

/* every number under the current JSON value, in document order */
static int numbers(ps__json *j, float *out, int cap, int *n) {
    int c = ps__json_peek(j), r;
    if (c == '[') {
        if (ps__json_array(j)) return -1;
        while ((r = ps__json_item(j)) == 1)
            if (numbers(j, out, cap, n)) return -1;
        return r;
    }
    if (c == '{' || c == '"') return ps__json_skip(j);
    {
        double v;
        if (ps__json_number(j, &v, NULL)) return -1;
        if (*n < cap) out[*n] = (float)v;
        ++*n;
    }
    return 0;
}

/* the numbers of the top-level key `key` of a JSON object */
static int json_numbers(const char *text, const char *key, float *out, int cap) {
    ps__json j;
    char k[64];
    int r, n = 0;
    ps__json_init(&j, text, strlen(text));
    if (ps__json_object(&j)) return -1;
    while ((r = ps__json_key(&j, k, sizeof k, NULL)) == 1) {
        if (strcmp(k, key) == 0) return numbers(&j, out, cap, &n) ? -1 : n;
        if (ps__json_skip(&j)) return -1;
    }
    return -1;
}

static void test_run(void) {
    static float got[8 * 96 + 8], dump[2 * 4 * 32 + 8];
    int status, ids[] = {17, 83, 5, 42}, i;
    char *out = run("build/patchscope run --model build/models/tiny --ids 17,83,5,42 --all-logits "
                    "--dump resid_post,embed --threads 2 --json", &status);
    ps_model *m = load("tiny", NULL);
    ps_ctx *c;
    float resid[2 * 4 * 32];
    ps_capture cap;
    const char *d;
    CHECK(status == 0);
    CHECK(json_numbers(out, "ids", got, 8) == 4 && got[0] == 17 && got[3] == 42);
    CHECK(ps_ctx_create(&c, m, NULL, NULL) == PS_OK);
    cap.point = PS_RESID_POST;
    cap.layer = PS_ALL_LAYERS;
    cap.out = resid;
    CHECK(ps_run_with_cache(c, ids, 4, PS_ALL_LOGITS, &cap, 1) == PS_OK);
    CHECK(json_numbers(out, "logits", got, 8 * 96) == 4 * 96);
    CHECK_MSG(memcmp(got, ps_logits(c, 0), 4 * 96 * sizeof(float)) == 0, "CLI logits == library logits, bitwise");
    {   /* "dump": {"resid_post": [layer][position][width], "embed": [position][width]} */
        ps__json j;
        char k[32];
        int n = 0;
        d = strstr(out, "\"dump\"");
        CHECK(d != NULL);
        ps__json_init(&j, d + 7, strlen(d + 7));
        CHECK(ps__json_object(&j) == 0 && ps__json_key(&j, k, sizeof k, NULL) == 1 && strcmp(k, "resid_post") == 0);
        CHECK(numbers(&j, dump, 2 * 4 * 32, &n) == 0 && n == 2 * 4 * 32);
        CHECK_MSG(memcmp(dump, resid, sizeof resid) == 0, "CLI dump == library capture, bitwise");
        CHECK(ps__json_key(&j, k, sizeof k, NULL) == 1 && strcmp(k, "embed") == 0);
        n = 0;
        CHECK(numbers(&j, dump, 4 * 32, &n) == 0 && n == 4 * 32);
    }
    CHECK(json_numbers(out, "top", got, 16) == 0); /* objects: ids and probs are not bare numbers */
    CHECK(strstr(out, "\"top\": [{\"id\": ") != NULL);
    for (i = 0, d = out; (d = strstr(d, "\"prob\"")) != NULL; d++) i++;
    CHECK_MSG(i == 5, "five top entries");
    free(out);
    ps_ctx_free(c);
    ps_model_free(m);
}

static void test_generate(void) {
    golden g;
    int n, *want, status, i;
    float got[32];
    char cmd[256], *out;
    if (!golden_open(&g, "tiny")) { CHECK(0); return; }
    want = golden_i32(&g, "gen.ids", &n);
    snprintf(cmd, sizeof cmd, "build/patchscope generate --model build/models/tiny --ids %d,%d,%d,%d -n %d --json",
             want[0], want[1], want[2], want[3], n - 4);
    out = run(cmd, &status);
    CHECK(status == 0);
    CHECK(json_numbers(out, "ids", got, 32) == n);
    for (i = 0; i < n; i++) CHECK_MSG(got[i] == want[i], "CLI greedy ids == oracle");
    free(out);
    free(want);
    golden_close(&g);
}


/* the interface of the families issue on every family: run --all-logits --dump resid_post and
   generate, against the float64 oracle; without a tokenizer, text prompts are refused */
static void test_families(void) {
    static const char *const names[] = {"llama", "llama-tied", "mistral", "qwen2", "pythia", "neox-seq", "gptj", "gemma"};
    static float got[9 * 100 * 3 + 16];
    int f, i;
    for (f = 0; f < 8; f++) {
        golden g;
        int T, n_gen, status, *ids, *gen, L, C, n;
        char cmd[512], list[128], what[96], *out;
        size_t k, at = 0;
        float *want;
        if (!golden_open(&g, names[f])) { CHECK(0); return; }
        ids = golden_i32(&g, "ids", &T);
        gen = golden_i32(&g, "gen.ids", &n_gen);
        for (i = 0; i < T; i++) at += (size_t)snprintf(list + at, sizeof list - at, i ? ",%d" : "%d", ids[i]);
        snprintf(cmd, sizeof cmd, "build/patchscope run --model tests/data/families/%s --ids %s --all-logits --dump resid_post --json",
                 names[f], list);
        out = run(cmd, &status);
        CHECK(status == 0);
        want = golden_f32(&g, "logits", &k);
        snprintf(what, sizeof what, "%s: CLI logits vs the oracle", names[f]);
        CHECK(json_numbers(out, "logits", got, (int)k) == (int)k);
        CHECK_CLOSE(got, want, k, 1e-4, what);
        free(want);
        {
            ps__json j;
            char key[32];
            const char *d = strstr(out, "\"dump\"");
            CHECK(d != NULL);
            want = golden_f32(&g, "resid_post.0", &k);
            C = (int)k / T;
            ps__json_init(&j, d + 7, strlen(d + 7));
            n = 0;
            CHECK(ps__json_object(&j) == 0 && ps__json_key(&j, key, sizeof key, NULL) == 1);
            CHECK(numbers(&j, got, (int)(sizeof got / sizeof got[0]), &n) == 0);
            L = n / (T * C);
            snprintf(what, sizeof what, "%s: CLI resid_post of the last layer vs the oracle", names[f]);
            free(want);
            snprintf(key, sizeof key, "resid_post.%d", L - 1);
            want = golden_f32(&g, key, &k);
            CHECK_CLOSE(got + (size_t)(L - 1) * T * C, want, k, 1e-4, what);
            free(want);
        }
        free(out);
        snprintf(cmd, sizeof cmd, "build/patchscope generate --model tests/data/families/%s --ids %d,%d,%d,%d -n %d --json",
                 names[f], gen[0], gen[1], gen[2], gen[3], n_gen - 4);
        out = run(cmd, &status);
        CHECK(status == 0 && strstr(out, "\"text\": null") != NULL);
        CHECK(json_numbers(out, "ids", got, 32) == n_gen);
        for (i = 0; i < n_gen; i++) CHECK_MSG(got[i] == gen[i], "CLI greedy ids == oracle");
        free(out);
        free(ids);
        free(gen);
        golden_close(&g);
    }
    {
        int status;
        char *out = run("build/patchscope run --model tests/data/families/llama --prompt hello --json 2>/dev/null", &status);
        CHECK_MSG(status != 0 && out[0] == 0, "a text prompt without a tokenizer fails, printing nothing");
        free(out);
        out = run("build/patchscope info --model tests/data/families/llama-tied --json", &status);
        CHECK(status == 0 && strstr(out, "\"family\": \"llama\"") && strstr(out, "\"files\": 3") &&
              strstr(out, "\"n_kv_head\": 2") && strstr(out, "\"d_head\": 12") && strstr(out, "\"dtype\": \"BF16\""));
        free(out);
    }
}

static void test_grid(void) {
    golden g;
    int n_src, *src, n_tgt, *tgt, n, *want, status, i, src_pos;
    float got[16], probs[16];
    size_t np;
    float *want_p;
    char cmd[1024], *out, *p;
    if (!golden_open(&g, "tiny.scope")) { CHECK(0); return; }
    src = golden_i32(&g, "src_ids", &n_src);
    tgt = golden_i32(&g, "tgt_ids", &n_tgt);
    want = golden_i32(&g, "src_pos", &n);
    src_pos = want[0];
    free(want);
    p = cmd + snprintf(cmd, sizeof cmd, "build/patchscope grid --model build/models/tiny --source-pos %d --json --source-ids ", src_pos);
    for (i = 0; i < n_src; i++) p += sprintf(p, i ? ",%d" : "%d", src[i]);
    p += sprintf(p, " --target-ids ");
    for (i = 0; i < n_tgt; i++) p += sprintf(p, i ? ",%d" : "%d", tgt[i]);
    out = run(cmd, &status);
    CHECK(status == 0);
    want = golden_i32(&g, "gridA.top_id", &n);
    want_p = golden_f32(&g, "gridA.top_prob", &np);
    CHECK(json_numbers(out, "top_token_id", got, 16) == n);
    for (i = 0; i < n; i++) CHECK_MSG(got[i] == want[i], "CLI grid top-1 == oracle");
    CHECK(json_numbers(out, "top_prob", probs, 16) == n);
    CHECK_CLOSE(probs, want_p, np, 1e-4, "CLI grid probabilities");
    CHECK(json_numbers(out, "source_layers", got, 16) == 2 && got[1] == 1);
    free(out); free(want); free(want_p); free(src); free(tgt);
    golden_close(&g);
}

static void test_tokenizer_and_errors(void) {
    int status, n, ids[16];
    float got[16];
    ps_tokenizer *t;
    ps_error e;
    char *out = run("build/patchscope tokenize --json \"The capital of Poland is\"", &status);
    CHECK(status == 0 && ps_tokenizer_load(&t, "weights", &e) == PS_OK);
    CHECK(ps_encode(t, "The capital of Poland is", 24, 0, ids, 16, &n) == PS_OK);
    {
        ps__json j;
        int k = 0;
        ps__json_init(&j, out, strlen(out));
        CHECK(numbers(&j, got, 16, &k) == 0 && k == n);
        for (k = 0; k < n; k++) CHECK(got[k] == ids[k]);
    }
    free(out);
    out = run("build/patchscope decode 464,3139 286,12873", &status);
    CHECK(status == 0 && strcmp(out, "The capital of Poland\n") == 0);
    free(out);
    out = run("build/patchscope run --model build/models/tiny --ids 1,2 --bogus 2>/dev/null", &status);
    CHECK(status != 0 && out[0] == 0);
    free(out);
    out = run("build/patchscope run --model build/models/no-such --ids 1 2>&1", &status);
    CHECK(status != 0 && strstr(out, "weights/download.sh") != NULL);
    free(out);
    out = run("build/patchscope run --model build/models/tiny --ids 1,2,999 2>&1", &status);
    CHECK_MSG(status != 0 && strstr(out, "token id 999") != NULL, out);
    free(out);
    out = run("build/patchscope run --model tests/data/families/llama --prompt hi 2>&1", &status);
    CHECK_MSG(WEXITSTATUS(status) == 1 && strstr(out, "no tokenizer") && strstr(out, "give --ids"), out); /* a run that fails */
    free(out);
    out = run("build/patchscope decode 99999 2>&1", &status);
    CHECK(status != 0 && strstr(out, "outside the vocabulary") != NULL);
    free(out);
    /* a tokenizer.json: Hugging Face's ids (tests/data/hf_tokenizers/mistral.json), BOS and
       special tokens only when asked */
    out = run("printf 'Hello <s> world' > build/cli_text.txt && build/patchscope tokenize --tokenizer "
              "weights/tiny-llama/tokenizer.json --file build/cli_text.txt --json", &status);
    CHECK_MSG(status == 0 && strcmp(out, "[22557,523,28713,28767,1526]\n") == 0, out);
    free(out);
    out = run("build/patchscope tokenize --tokenizer weights/tiny-llama --bos --special 'Hello <s> world' --json", &status);
    CHECK_MSG(status == 0 && strcmp(out, "[1,22557,28705,1,28705,1526]\n") == 0, out);
    free(out);
    out = run("build/patchscope decode --tokenizer weights/tiny-llama/tokenizer.json 22557,1526", &status);
    CHECK_MSG(status == 0 && strcmp(out, "Hello world\n") == 0, out);
    free(out);
    out = run("printf 'a\\377' | build/patchscope tokenize --tokenizer weights/tiny-llama - 2>&1", &status);
    CHECK_MSG(status != 0 && strstr(out, "not valid UTF-8"), out);
    free(out);
    ps_tokenizer_free(t);
}

/* 1 when out is one JSON document (the header's strict parser) in valid UTF-8 */
static int strict_json(const char *out) {
    size_t n = strlen(out), i = 0, k;
    unsigned cp;
    ps__json j;
    for (; i < n; i += k)
        if (!(k = ps__utf8((const unsigned char *)out + i, n - i, &cp))) return 0;
    ps__json_init(&j, out, n);
    return ps__json_skip(&j) == 0 && ps__json_done(&j) == 0;
}

/* decode --json against Python's errors="replace" (tests/data/utf8_replace.txt, made by
   tools/gen_utf8_cases.py): each case's bytes as GPT-2 byte tokens, many cases a call */
static void test_utf8_replacement(void) {
    FILE *f = fopen("tests/data/utf8_replace.txt", "r");
    static char line[512], cmd[100000], want[64][128], text[256];
    size_t want_len[64];
    ps_tokenizer *t;
    ps_error e;
    int n_cases = 0, n_ok = 0, status;
    CHECK(f != NULL && ps_tokenizer_load(&t, "weights", &e) == PS_OK);
    if (!f) return;
    for (;;) {
        int batch = 0, more = 1, b;
        char *p = cmd + sprintf(cmd, "build/patchscope decode --json");
        while (batch < 64 && (more = fgets(line, sizeof line, f) != NULL)) {
            char *tab = strchr(line, '\t');
            size_t i, n_in = (size_t)(tab - line) / 2;
            p += sprintf(p, " ");
            for (i = 0; i < n_in; i++) {
                unsigned x;
                char byte;
                sscanf(line + 2 * i, "%2x", &x);
                byte = (char)x;
                p += sprintf(p, i ? ",%d" : "%d", ps_token_id(t, &byte, 1));
            }
            for (i = 0, want_len[batch] = 0; tab[1 + 2 * i] != '\n'; i++) {
                unsigned x;
                sscanf(tab + 1 + 2 * i, "%2x", &x);
                want[batch][want_len[batch]++] = (char)x;
            }
            batch++;
        }
        if (batch) {
            char *out = run(cmd, &status);
            ps__json j;
            ps__json_init(&j, out, strlen(out));
            CHECK(status == 0 && strict_json(out) && ps__json_array(&j) == 0);
            for (b = 0; b < batch && ps__json_item(&j) == 1; b++) {
                size_t len;
                if (ps__json_string(&j, text, sizeof text, &len) == 0 && len == want_len[b] &&
                    memcmp(text, want[b], len) == 0)
                    n_ok++;
            }
            n_cases += batch;
            free(out);
        }
        if (!more) break;
    }
    CHECK_MSG(n_cases == 3000 && n_ok == n_cases, "decode --json replaces invalid UTF-8 as Python does");
    fclose(f);
    ps_tokenizer_free(t);
}

/* every token of the 50257-token vocabulary alone, and generations of the random
   full-vocabulary model from random prompts: always strict UTF-8 JSON */
static void test_json_always_valid(void) {
    static char cmd[120000];
    int id = 0, status, k, bad = 0;
    unsigned seed = 17;
    while (id < 50257) {
        char *p = cmd + sprintf(cmd, "build/patchscope decode --json");
        char *out;
        for (k = 0; k < 12000 && id < 50257; k++) p += sprintf(p, " %d", id++);
        out = run(cmd, &status);
        bad += status != 0 || !strict_json(out);
        free(out);
    }
    CHECK_MSG(bad == 0, "decode --json of every token is strict UTF-8 JSON");
    for (k = 0, bad = 0; k < 8; k++) {
        char *p = cmd + sprintf(cmd, "build/patchscope generate --model build/models/mid -n 24 --json --ids ");
        char *out;
        int i;
        for (i = 0; i < 6; i++) p += sprintf(p, i ? ",%u" : "%u", ((seed = seed * 1103515245u + 12345u) >> 8) % 50257);
        out = run(cmd, &status);
        bad += status != 0 || !strict_json(out) || !strstr(out, "\"text\"");
        free(out);
    }
    CHECK_MSG(bad == 0, "generate --json is strict UTF-8 JSON");
    for (k = 0, bad = 0; k < 6; k++) { /* top-k token labels and generated ids of random prompts */
        char *p = cmd + sprintf(cmd, "build/patchscope inspect --model build/models/mid --source-layer 1 "
                                     "--target-layer 2 -n 8 --json --source-ids ");
        char *out;
        int i;
        for (i = 0; i < 5; i++) p += sprintf(p, i ? ",%u" : "%u", ((seed = seed * 1103515245u + 12345u) >> 8) % 50257);
        p += sprintf(p, " --target-ids ");
        for (i = 0; i < 4; i++) p += sprintf(p, i ? ",%u" : "%u", ((seed = seed * 1103515245u + 12345u) >> 8) % 50257);
        out = run(cmd, &status);
        bad += status != 0 || !strict_json(out) || !strstr(out, "\"top_token\"");
        free(out);
    }
    CHECK_MSG(bad == 0, "inspect --json is strict UTF-8 JSON");
}

/* Every command of the README's "Command line" block, run as written by bash in a
   scratch folder (with build/, weights/ and examples/ linked in): it exits 0, its JSON
   is strict, and a comment after it ("   # ...") is the start of what it prints. */
static void test_readme_commands(const char *section, int at_least) {
    static char readme[1 << 18], cmd[4096], script[4200];
    char dir[] = "/tmp/ps_readme_XXXXXX", cwd[1024], *p, *end;
    size_t n;
    int status, n_cmds = 0, started = 0;
    FILE *f = fopen("README.md", "r");
    CHECK(f != NULL && mkdtemp(dir) != NULL && getcwd(cwd, sizeof cwd) != NULL);
    if (!f) return;
    n = fread(readme, 1, sizeof readme - 1, f);
    readme[n] = 0;
    fclose(f);
    snprintf(cmd, sizeof cmd, "ln -s '%s/build' '%s/weights' '%s/examples' %s/", cwd, cwd, cwd, dir);
    CHECK(system(cmd) == 0);
    p = strstr(readme, section);
    CHECK(p != NULL);
    if (!p) return;
    for (p = strchr(p + 1, '\n') + 1; *p; p = end + 1) {
        char *comment, *out, *q;
        size_t len = 0;
        if (!(end = strchr(p, '\n'))) break;
        if (strncmp(p, "    ", 4) != 0) {
            if (started && end > p) break; /* the first paragraph after the block */
            continue;
        }
        started = 1;
        for (;;) { /* a command and its continuation lines */
            size_t k = (size_t)(end - p) - 4;
            memcpy(cmd + len, p + 4, k);
            len += k;
            if (!len || cmd[len - 1] != '\\') break;
            cmd[--len] = ' ';
            p = end + 1;
            end = strchr(p, '\n');
        }
        cmd[len] = 0;
        comment = strstr(cmd, "   # ");
        if (comment) {
            *comment = 0;
            comment += 5;
        }
        snprintf(script, sizeof script, "%s/cmd.sh", dir);
        f = fopen(script, "w");
        CHECK(f != NULL);
        if (!f) return;
        fprintf(f, "%s\n", cmd);
        fclose(f);
        snprintf(script, sizeof script, "cd %s && bash cmd.sh 2>/dev/null", dir);
        out = run(script, &status);
        CHECK_MSG(status == 0, cmd);
        if (strstr(cmd, "--json")) CHECK_MSG(strict_json(out), cmd);
        if (comment) {
            for (q = comment + strlen(comment); q > comment && q[-1] == ' '; q--) q[-1] = 0;
            CHECK_MSG(strncmp(out, comment, strlen(comment)) == 0, cmd);
        }
        free(out);
        n_cmds++;
    }
    CHECK_MSG(n_cmds >= at_least, section);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
}

/* patch --json carries the library's activation-patching numbers, bit for bit */
static void test_patch(void) {
    static float got[2 * 7 + 8];
    int status, clean[] = {17, 83, 5, 42, 0, 95, 61}, bad[] = {17, 83, 70, 42, 0, 95, 61};
    char *out = run("build/patchscope patch --model build/models/tiny --clean-ids 17,83,5,42,0,95,61 "
                    "--corrupted-ids 17,83,70,42,0,95,61 --answer-id 29 --wrong-id 50 --site mlp_out --json", &status);
    ps_model *m = load("tiny", NULL);
    ps_ctx *c;
    ps_patching_spec sp;
    ps_patching p;
    memset(&sp, 0, sizeof sp);
    sp.clean = clean;
    sp.corrupted = bad;
    sp.n = 7;
    sp.site = PS_MLP_OUT;
    sp.answer = 29;
    sp.wrong = 50;
    CHECK(status == 0 && strict_json(out));
    CHECK(ps_ctx_create(&c, m, NULL, NULL) == PS_OK && ps_patching_run(c, &sp, &p) == PS_OK);
    CHECK(json_numbers(out, "metric", got, 2 * 7 + 8) == 2 * 7);
    CHECK_MSG(memcmp(got, p.metric, 2 * 7 * sizeof(float)) == 0, "patch --json metric == library metric, bitwise");
    CHECK(json_numbers(out, "logit_diff", got, 2 * 7 + 8) == 2 * 7 && memcmp(got, p.diff, 2 * 7 * sizeof(float)) == 0);
    CHECK(json_numbers(out, "positions", got, 8) == 7 && got[6] == 6);
    free(out);
    ps_patching_free(&p);
    ps_ctx_free(c);
    ps_model_free(m);
    out = run("build/patchscope patch --model build/models/tiny --clean-ids 1,2,3 --corrupted-ids 1,2 --answer-id 1 "
              "--wrong-id 2 2>/dev/null", &status);
    CHECK_MSG(WEXITSTATUS(status) == 2, "prompts of different lengths are a usage error");
    free(out);
    out = run("build/patchscope patch --model build/models/tiny --clean-ids 1,2,3 --corrupted-ids 1,4,3 "
              "--answer \" Warsaw Poland\" --wrong-id 2 2>&1", &status);
    CHECK_MSG(WEXITSTATUS(status) == 1 && strstr(out, "is 2 tokens, not one"), out);
    free(out);
}

/* --- sweep and merge -------------------------------------------------------------------------- */

/* the string value of the top-level key of a JSON object line, into out */
static int json_string(const char *text, const char *key, char *out, size_t cap) {
    ps__json j;
    char k[64];
    int r;
    ps__json_init(&j, text, strlen(text));
    if (ps__json_object(&j)) return -1;
    while ((r = ps__json_key(&j, k, sizeof k, NULL)) == 1) {
        if (strcmp(k, key) == 0) return ps__json_string(&j, out, cap, NULL);
        if (ps__json_skip(&j)) return -1;
    }
    return -1;
}

/* the lines of text (modified in place: each ends at its NUL) */
static int split_lines(char *text, char **lines, int cap) {
    int n = 0;
    char *p = text, *nl;
    while (*p && n < cap && (nl = strchr(p, '\n'))) {
        *nl = 0;
        lines[n++] = p;
        p = nl + 1;
    }
    return n;
}

static int run_ok(const char *cmd) {
    int status;
    free(run(cmd, &status));
    return status == 0;
}

#define SWEEP "build/patchscope sweep --model build/models/tiny --jobs tests/data/sweep/jobs.jsonl"

/* the oracle's 20 cases (tools/reference/make_sweep_goldens.py): every cell's top-1 id,
   probability (1e-4) and greedy tokens; then the same file sharded 3 ways, 3 processes at
   once, merged: byte for byte the unsharded output */
static void test_sweep_oracle_and_shards(void) {
    static char *got[256], *want[256];
    char id[64], wid[64], cmd[512];
    float a[16], b[16];
    int status, n_got, n_want, i, k, na, nb;
    char *out = run(SWEEP, &status), *exp = run("cat tests/data/sweep/expected.jsonl", &status);
    n_got = split_lines(out, got, 256);
    n_want = split_lines(exp, want, 256);
    CHECK_MSG(n_want == 50 && n_got == n_want, "sweep: one line per oracle cell");
    for (i = 0; i < n_got && i < n_want; i++) {
        static const char *ints[] = {"source_layer", "target_layer", "top_id", "generated_ids"};
        CHECK(json_string(got[i], "id", id, sizeof id) == 0 && json_string(want[i], "id", wid, sizeof wid) == 0 &&
              strcmp(id, wid) == 0);
        for (k = 0; k < 4; k++) {
            na = json_numbers(got[i], ints[k], a, 16);
            nb = json_numbers(want[i], ints[k], b, 16);
            CHECK_MSG(na == nb && memcmp(a, b, (size_t)(na > 0 ? na : 0) * sizeof(float)) == 0, ints[k]);
        }
        CHECK(json_numbers(got[i], "top_prob", a, 1) == 1 && json_numbers(want[i], "top_prob", b, 1) == 1);
        CHECK_CLOSE(a, b, 1, 1e-4, "sweep: top_prob == oracle");
    }
    free(exp);
    free(out);
    out = run("rm -f build/sweep_*.jsonl && " SWEEP " --out build/sweep_all.jsonl --progress 2>&1", &status);
    CHECK_MSG(status == 0 && strstr(out, "sweep: 20/20 cases") && strstr(out, "cells/s"), out);
    free(out);
    snprintf(cmd, sizeof cmd, "for k in 0 1 2; do " SWEEP " --out build/sweep_s$k.jsonl --shard $k/3 & done; wait");
    CHECK(run_ok(cmd));
    CHECK_MSG(run_ok("build/patchscope merge --jobs tests/data/sweep/jobs.jsonl build/sweep_merged.jsonl "
                     "build/sweep_s0.jsonl build/sweep_s1.jsonl build/sweep_s2.jsonl"), "merge of 3 shards");
    CHECK_MSG(run_ok("cmp -s build/sweep_merged.jsonl build/sweep_all.jsonl"), "3 shards merged == one run, byte for byte");
    CHECK_MSG(run_ok("test -s build/sweep_s0.jsonl && test -s build/sweep_s1.jsonl && test -s build/sweep_s2.jsonl"),
              "every shard got cases");
    /* the Slurm recipe as written, its array's environment set by hand: 3 tasks at once, then the merge job */
    CHECK_MSG(run_ok("rm -rf build/sweep_slurm && for k in 0 1 2; do SLURM_ARRAY_TASK_ID=$k SLURM_ARRAY_TASK_COUNT=3 bash "
                     "tools/slurm/sweep.sbatch tests/data/sweep/jobs.jsonl build/sweep_slurm build/models/tiny & done; wait; "
                     "bash tools/slurm/merge.sbatch tests/data/sweep/jobs.jsonl build/sweep_slurm && "
                     "cmp -s build/sweep_slurm/results.jsonl build/sweep_all.jsonl"),
              "the Slurm array + merge == one run, byte for byte");
    /* merge refuses what is not whole: a shard left out, a shard twice, a case cut short */
    out = run("build/patchscope merge --jobs tests/data/sweep/jobs.jsonl build/sweep_m.jsonl build/sweep_s0.jsonl "
              "build/sweep_s2.jsonl 2>&1; test ! -e build/sweep_m.jsonl", &status);
    CHECK_MSG(strstr(out, "missing: case") && strstr(out, "not written") && status == 0, out);
    free(out);
    out = run("build/patchscope merge build/sweep_m.jsonl build/sweep_s0.jsonl build/sweep_s0.jsonl build/sweep_s1.jsonl "
              "build/sweep_s2.jsonl 2>&1", &status);
    CHECK_MSG(status != 0 && strstr(out, "is in build/sweep_s0.jsonl and in build/sweep_s0.jsonl"), out);
    free(out);
    out = run("head -n 3 build/sweep_all.jsonl > build/sweep_cut.jsonl && build/patchscope merge build/sweep_m.jsonl "
              "build/sweep_cut.jsonl 2>&1", &status);
    CHECK_MSG(status != 0 && strstr(out, "has 3 of its 4 lines"), out);
    free(out);
}

/* a sweep equals grid (top-1 readouts) and inspect (top-k, precision@1, surprisal,
   generation) bit for bit: floats print in %.9g, which reads back exactly */
static void test_sweep_equals_grid_and_inspect(void) {
    static char *lines[64];
    const char *src = "--source-prompt \"Amazon's former CEO attended Oscars\" --source-token \" CEO\" "
                      "--target-prompt \"cat->cat; 135->135; hello->hello; ?->\"";
    char cmd[1024], *out, *grid, *insp[6];
    float a[256], b[256];
    int status, n, i, l;
    out = run("printf '%s\\n' '{\"id\": \"grid\", \"source_prompt\": \"Amazon'\\''s former CEO attended Oscars\", "
              "\"source_token\": \" CEO\", \"target_prompt\": \"cat->cat; 135->135; hello->hello; ?->\", "
              "\"source_layers\": \"1-3\", \"target_layers\": \"0-5\"}' '{\"id\": \"gen\", \"source_prompt\": \"Amazon'\\''s "
              "former CEO attended Oscars\", \"source_token\": \" CEO\", \"target_prompt\": \"cat->cat; 135->135; hello->hello; "
              "?->\", \"target_layers\": \"same\", \"n_new\": 4, \"readout\": [\"topk\", \"precision_at_1\", \"surprisal\"]}' "
              "> build/sweep_text.jsonl && build/patchscope sweep --model weights/tiny --jobs build/sweep_text.jsonl",
              &status);
    n = split_lines(out, lines, 64);
    CHECK_MSG(status == 0 && n == 18 + 6, "sweep on text prompts");
    snprintf(cmd, sizeof cmd, "build/patchscope grid --model weights/tiny %s --source-layers 1-3 --json", src);
    grid = run(cmd, &status);
    CHECK(status == 0 && json_numbers(grid, "top_token_id", a, 256) == 18 && json_numbers(grid, "top_prob", b, 256) == 18);
    for (i = 0; i < 18 && i < n; i++) {
        float id = -1, p = -1, ls = -1, lt = -1;
        CHECK(json_numbers(lines[i], "top_id", &id, 1) == 1 && json_numbers(lines[i], "top_prob", &p, 1) == 1 &&
              json_numbers(lines[i], "source_layer", &ls, 1) == 1 && json_numbers(lines[i], "target_layer", &lt, 1) == 1);
        CHECK_MSG(ls == 1 + i / 6 && lt == i % 6 && id == a[i] && p == b[i], "sweep cell == grid cell, bit for bit");
    }
    for (l = 0; l < 6 && 18 + l < n; l++) {
        static const char *keys[][2] = {{"top_k_ids", "top_token_id"}, {"top_k_probs", "top_prob"},
                                        {"precision_at_1", "precision_at_1"}, {"surprisal", "surprisal"},
                                        {"generated_ids", "generated_ids"}};
        int k, na, nb;
        snprintf(cmd, sizeof cmd, "build/patchscope inspect --model weights/tiny %s --source-layer %d --target-layer %d -n 4 "
                 "--json", src, l, l);
        insp[l] = run(cmd, &status);
        CHECK(status == 0);
        for (k = 0; k < 5; k++) {
            na = json_numbers(lines[18 + l], keys[k][0], a, 256);
            nb = json_numbers(insp[l], keys[k][1], b, 256);
            CHECK_MSG(na > 0 && na == nb && memcmp(a, b, (size_t)na * sizeof(float)) == 0, keys[k][0]);
        }
        CHECK(json_numbers(lines[18 + l], "top_prob", a, 1) == 1 && json_numbers(insp[l], "top_prob", b, 256) == 10 &&
              a[0] == b[0]);
        free(insp[l]);
    }
    free(grid);
    free(out);
}

/* A killed run loses at most the case it was writing: resume after a real SIGKILL, and
   after the output is cut at many byte offsets, gives the uninterrupted run's bytes. */
static void test_sweep_resume(void) {
    char cmd[1024], *out;
    int status, cut, size, i;
    FILE *f = fopen("build/sweep_many.jsonl", "w");
    for (i = 0; f && i < 100; i++) /* enough cases on a full-vocabulary model to be mid-run when killed */
        fprintf(f, "{\"id\": \"k%d\", \"source_ids\": [%d, 7, %d, 11], \"target_ids\": [5, %d, 9], \"source_layers\": "
                "\"0-2\", \"target_layers\": \"0-2\", \"n_new\": 3}\n", i, i % 97, i * 31 % 50000, i * 7 % 50000);
    if (f) fclose(f);
    CHECK(run_ok("rm -f build/sweep_many_*.jsonl && build/patchscope sweep --model build/models/mid --jobs "
                 "build/sweep_many.jsonl --out build/sweep_many_all.jsonl"));
    out = run("build/patchscope sweep --model build/models/mid --jobs build/sweep_many.jsonl --out build/sweep_many_k.jsonl "
              "& pid=$!; while [ ! -s build/sweep_many_k.jsonl ] && kill -0 $pid 2>/dev/null; do sleep 0.01; done; "
              "kill -9 $pid 2>/dev/null && echo killed; wait $pid 2>/dev/null; wc -c < build/sweep_many_k.jsonl; "
              "wc -c < build/sweep_many_all.jsonl", &status);
    if (!strstr(out, "killed")) printf("note: the sweep finished before it could be killed; the cut tests still run\n");
    free(out);
    CHECK_MSG(run_ok("build/patchscope sweep --model build/models/mid --jobs build/sweep_many.jsonl --out "
                     "build/sweep_many_k.jsonl --resume 2>/dev/null && cmp -s build/sweep_many_k.jsonl build/sweep_many_all.jsonl"),
              "killed + resumed == uninterrupted");
    /* cuts inside lines, at line ends, at case ends, and of nothing at all */
    out = run("wc -c < build/sweep_all.jsonl", &status);
    size = atoi(out);
    free(out);
    for (cut = 0; cut <= size; cut += cut < 600 ? 97 : 1301) {
        snprintf(cmd, sizeof cmd, "head -c %d build/sweep_all.jsonl > build/sweep_r.jsonl && " SWEEP " --out build/sweep_r.jsonl "
                 "--resume 2>/dev/null && cmp -s build/sweep_r.jsonl build/sweep_all.jsonl", cut);
        CHECK_MSG(run_ok(cmd), cmd);
    }
    CHECK(run_ok("cp build/sweep_all.jsonl build/sweep_r.jsonl && " SWEEP " --out build/sweep_r.jsonl --resume && "
                 "cmp -s build/sweep_r.jsonl build/sweep_all.jsonl"));
    /* no silent appends: an existing output needs --resume; a foreign one is refused */
    out = run(SWEEP " --out build/sweep_r.jsonl 2>&1", &status);
    CHECK_MSG(status != 0 && strstr(out, "give --resume"), out);
    free(out);
    out = run("build/patchscope sweep --model build/models/mid --jobs build/sweep_many.jsonl --out build/sweep_r.jsonl "
              "--resume 2>&1", &status);
    CHECK_MSG(status != 0 && strstr(out, "not in the job file"), out);
    free(out);
}

/* bad job lines: each named by line and field; nothing runs, or with --keep-going the
   good lines do (the exit status still 1) */
static void test_sweep_errors(void) {
    static const char *lines[][2] = {
        {"{\"id\": \"ok1\", \"source_ids\": [1, 2, 3], \"target_ids\": [4, 5, 6]}", NULL},
        {"{\"id\": \"b1\", \"source_ids\": [1, 2, 3], \"colour\": 1}", ":2: unknown field \"colour\""},
        {"{\"id\": \"b2\", \"source_ids\": [1, 2, 3], \"target_layers\": \"0-9\"}", ":3: target_layers: layer 9 is outside 0..1"},
        {"{\"id\": \"b3\", \"source_prompt\": \"hello world\", \"target_prompt\": \"a b\", \"target_token\": \" x\"}",
         ":4: target_token: \" x\" does not occur"},
        {"not json", ":5: not a JSON object"},
        {"{\"id\": \"ok1\", \"source_ids\": [1]}", ":6: id: \"ok1\" is the id of line 1"},
        {"{\"id\": \"b5\", \"source_ids\": [1, 2, 3], \"source_pos\": 3}", ":7: source_pos: 3 is outside -3..2"},
        {"{\"id\": \"b6\", \"source_ids\": [1, 2, 99999]}", ":8: source_ids: token id 99999 is outside the vocabulary"},
        {"{\"id\": \"b7\", \"source_prompt\": \"x x x x x x x x x x x x x x x x x x x x x x x x x x x x x x x x x x\"}",
         ":9: source_prompt: 34 tokens are past the model's 32 positions"},
        {"{\"id\": \"b8\", \"source_ids\": [1], \"site\": \"pattern\"}", ":10: site: \"pattern\" is not a patch site"},
        {"{\"id\": \"b9\", \"source_ids\": [1], \"readout\": \"rank\"}", ":11: tokens: readout \"rank\" needs"},
        {"{\"id\": \"b10\", \"source_ids\": [1], \"map\": \"build/no-such.f32\"}", ":12: map: cannot read it"},
        {"{\"id\": \"b11\", \"source_ids\": [1], \"n_new\": 40}", ":13: n_new: 40 is outside 0..32"},
        {"{\"id\": \"b12\", \"source_ids\": [1], \"bos\": 1}", ":14: bos: expected true or false"},
        {"{\"source_ids\": [1]}", ":15: id: missing"},
        {"{\"id\": \"ok2\", \"source_ids\": [7, 8], \"source_layers\": [1, 0], \"target_layers\": \"same\"}", NULL}};
    int n = (int)(sizeof lines / sizeof lines[0]), i, status;
    char *out;
    FILE *f = fopen("build/sweep_bad.jsonl", "w");
    for (i = 0; f && i < n; i++) fprintf(f, "%s\n", lines[i][0]);
    if (f) fclose(f);
    out = run("build/patchscope sweep --model build/models/tiny --jobs build/sweep_bad.jsonl 2>&1", &status);
    for (i = 0; i < n; i++)
        if (lines[i][1]) CHECK_MSG(strstr(out, lines[i][1]) != NULL, lines[i][1]);
    CHECK_MSG(status != 0 && strstr(out, "14 bad lines") && strstr(out, "nothing ran") && !strstr(out, "\"id\""), out);
    free(out);
    out = run("build/patchscope sweep --model build/models/tiny --jobs build/sweep_bad.jsonl --keep-going 2>/dev/null", &status);
    CHECK_MSG(status != 0 && strstr(out, "\"id\": \"ok1\", \"case\": 0, \"cells\": 4") &&
              strstr(out, "\"id\": \"ok2\", \"case\": 15, \"cells\": 2, \"source_layer\": 1, \"target_layer\": 1") &&
              !strstr(out, "\"b"), out);
    CHECK(strict_json(strchr(out, '{')) == 0); /* many lines: not one document */
    free(out);
    out = run("build/patchscope sweep --model build/models/tiny --jobs build/sweep_bad.jsonl --shard 3/3 2>&1", &status);
    CHECK(WEXITSTATUS(status) == 2 && strstr(out, "bad --shard"));
    free(out);
}

/* summarize: the means of the sweep's own lines, per (source layer, target layer) and
   per group; the CSV and the figures are written; a line that is not a result is named */
static void test_summarize(void) {
    static char *lines[256], *cells[256];
    char cmd[512], group[64], id[64];
    float ls, lt, p, n_c, mean, gls, glt;
    int status, n, n_cells, i, k, count, found;
    char *all = run("cat build/sweep_all.jsonl", &status);
    char *out = run("build/patchscope summarize build/sweep_all.jsonl --json --csv build/sweep_sum.csv --heatmap "
                    "build/sweep_heat.svg --lines build/sweep_lines.svg", &status);
    CHECK_MSG(status == 0 && strict_json(out), out);
    n = split_lines(all, lines, 256);
    n_cells = split_lines(out, cells, 256) - 1; /* the first line opens the object */
    CHECK(n == 50 && n_cells > 3);
    for (k = 1; k <= n_cells; k++) { /* each cell's mean top_prob, recomputed from the lines */
        double sum = 0;
        char *c = cells[k] + strspn(cells[k], " ");
        if (c[strlen(c) - 1] == ',') c[strlen(c) - 1] = 0;
        if (strcmp(c + strlen(c) - 2, "]}") == 0) c[strlen(c) - 2] = 0;
        CHECK(json_numbers(c, "source_layer", &ls, 1) == 1 && json_numbers(c, "target_layer", &lt, 1) == 1 &&
              json_numbers(c, "n", &n_c, 1) == 1 && json_numbers(c, "top_prob", &mean, 1) == 1);
        for (i = 0, count = 0; i < n; i++)
            if (json_numbers(lines[i], "source_layer", &gls, 1) == 1 && json_numbers(lines[i], "target_layer", &glt, 1) == 1 &&
                gls == ls && glt == lt && json_numbers(lines[i], "top_prob", &p, 1) == 1)
                sum += p, count++;
        CHECK_MSG(count == (int)n_c && fabs(sum / count - mean) < 1e-6, "summarize: a cell's mean");
    }
    free(out);
    CHECK(run_ok("head -n 1 build/sweep_sum.csv | grep -qx 'source_layer,target_layer,n,top_prob' && "
                 "grep -q '<svg' build/sweep_heat.svg && grep -q '<polyline' build/sweep_lines.svg"));
    /* grouped by id: one group per case, each cell of a case alone */
    out = run("build/patchscope summarize build/sweep_all.jsonl --by id --json", &status);
    n_cells = split_lines(out, cells, 256) - 1;
    CHECK_MSG(status == 0 && n_cells == 50, "summarize --by id: every cell its own");
    for (k = 1, found = 0; k <= n_cells; k++) {
        char *c = cells[k] + strspn(cells[k], " ");
        if (c[strlen(c) - 1] == ',') c[strlen(c) - 1] = 0;
        if (strcmp(c + strlen(c) - 2, "]}") == 0) c[strlen(c) - 2] = 0;
        if (json_string(c, "group", group, sizeof group) == 0 && strcmp(group, "case01") == 0) found++;
    }
    for (i = 0, count = 0; i < n; i++) count += json_string(lines[i], "id", id, sizeof id) == 0 && strcmp(id, "case01") == 0;
    CHECK(found == count && count > 0);
    free(out);
    snprintf(cmd, sizeof cmd, "printf '{\"id\": 1}\\n' > build/sweep_notres.jsonl && build/patchscope summarize "
             "build/sweep_notres.jsonl 2>&1");
    out = run(cmd, &status);
    CHECK_MSG(status != 0 && strstr(out, "build/sweep_notres.jsonl:1: not a result line"), out);
    free(out);
    free(all);
}

/* experiment attribute-extraction: the TSV reader (quotes holding tabs, newlines and ""),
   the subject's position (the official occurrence; a subject inside a longer word is
   dropped), a deterministic draw, the scorer's rule (spaces removed, case kept) and its
   tallies on hand-written results, then a real run end to end */
static void test_attribute_extraction(void) {
    static char *lines[64];
    const char *head = "\tsample_id\tprompt_target\tposition_target\ttarget_baseline\tobject\tsubject\tgenerations_baseline\t"
                       "generations_baseline_str\tis_correct_baseline\tprompt_source\tposition_source\tsource_cropped_toks\n";
    char pos[32], buf[256], *out, *jobs;
    float v;
    int status, n;
    FILE *f = fopen("build/ae_test.tsv", "w");
    if (f) {
        fputs(head, f);
        fputs("0\t0\tThe capital city of x\t-1\tThe capital city of Poland\tWarsaw\tPoland\t\"[' a'\n '\tb']\"\t x\tFalse\t"
              " the map of Poland and Poland again\t3\t[]\n", f);
        fputs("1\t0\tThe capital city of x\t-1\tThe capital city of Nigeria\tAbuja\tNigeria\t[]\t\tFalse\t"
              " assistance to the Nigerian-led forces\t3\t[]\n", f);
        fputs("2\t1\tThe capital city of x\t-1\tThe capital city of India\tNew Delhi\tIndia\t[]\t\tFalse\t"
              "\" \"\"quoted\"\" India rises\"\t99\t[]\n", f);
        fclose(f);
    }
    CHECK(run_ok("rm -rf build/ae && build/patchscope experiment attribute-extraction --model weights/tiny --data "
                 "build/ae_test.tsv --out build/ae --per-relation 0 -n 3 --jobs-only > /dev/null"));
    jobs = run("cat build/ae/jobs.jsonl", &status);
    n = split_lines(jobs, lines, 64);
    CHECK_MSG(n == 4, "two cases (and their baselines); the Nigeria row dropped");
    CHECK(n == 4 && json_string(lines[0], "id", buf, sizeof buf) == 0 && strcmp(buf, "ae_test/0") == 0);
    CHECK_MSG(n == 4 && json_numbers(lines[0], "source_pos", &v, 1) == 1 && v == 3, "the official occurrence of Poland");
    CHECK_MSG(n == 4 && json_numbers(lines[2], "source_pos", &v, 1) == 1 && v == 4, "India: its only occurrence");
    CHECK(n == 4 && json_string(lines[2], "source_prompt", buf, sizeof buf) == 0 && strcmp(buf, " \"quoted\" India rises") == 0);
    CHECK(n == 4 && json_string(lines[1], "source_prompt", buf, sizeof buf) == 0 &&
          strcmp(buf, "The capital city of Poland") == 0 && strstr(lines[1], "\"kind\": \"baseline\""));
    free(jobs);
    /* the same seed draws the same cases */
    CHECK(run_ok("for s in a b; do build/patchscope experiment attribute-extraction --model weights/tiny --data "
                 "build/ae_test.tsv --out build/ae_$s --per-relation 1 --seed 7 --jobs-only > /dev/null; done && "
                 "cmp -s build/ae_a/jobs.jsonl build/ae_b/jobs.jsonl && test $(wc -l < build/ae_a/jobs.jsonl) = 2"));
    /* the scorer on results written by hand */
    f = fopen("build/ae/results.jsonl", "w");
    if (f) {
        const char *tags0 = "\"tags\": {\"relation\": \"ae_test\", \"object\": \"Warsaw\", \"kind\": ";
        const char *tags2 = "\"tags\": {\"relation\": \"ae_test\", \"object\": \"New Delhi\", \"kind\": ";
        fprintf(f, "{\"id\": \"ae_test/0\", \"source_layer\": 0, \"target_layer\": 0, \"generated_text\": \" the War saw city\", %s\"patch\"}}\n", tags0);
        fprintf(f, "{\"id\": \"ae_test/0\", \"source_layer\": 1, \"target_layer\": 1, \"generated_text\": \" warsaw\", %s\"patch\"}}\n", tags0);
        fprintf(f, "{\"id\": \"ae_test/0/baseline\", \"source_layer\": 5, \"target_layer\": 5, \"generated_text\": \" Warsaw.\", %s\"baseline\"}}\n", tags0);
        fprintf(f, "{\"id\": \"ae_test/2\", \"source_layer\": 0, \"target_layer\": 0, \"generated_text\": \"NewDelhi is big\", %s\"patch\"}}\n", tags2);
        fprintf(f, "{\"id\": \"ae_test/2/baseline\", \"source_layer\": 5, \"target_layer\": 5, \"generated_text\": \" Mumbai\", %s\"baseline\"}}\n", tags2);
        fclose(f);
    }
    out = run("build/patchscope experiment attribute-extraction --model weights/tiny --data build/ae_test.tsv --out build/ae "
              "--per-relation 0 -n 3 --score-only --json", &status);
    CHECK_MSG(status == 0 && strict_json(out), out);
    CHECK(strstr(out, "\"rows\": 3, \"drawn\": 3, \"dropped\": 1, \"cases\": 2, \"baseline_accuracy\": 0.5, "
                      "\"accuracy\": 0.666667, \"accuracy_baseline_right\": 0.5, \"accuracy_baseline_wrong\": 1}") != NULL);
    free(out);
    out = run("cut -c1-40 build/ae/scored.jsonl; grep -o '\"correct\": [01], \"baseline_correct\": [01]' build/ae/scored.jsonl",
              &status);
    CHECK_MSG(strstr(out, "\"correct\": 1, \"baseline_correct\": 1\n\"correct\": 0, \"baseline_correct\": 1\n"
                          "\"correct\": 1, \"baseline_correct\": 0\n") != NULL, out);
    free(out);
    /* a real run: the figures are written, the summary's accuracy is the scored cells' mean */
    out = run("build/patchscope experiment attribute-extraction --model weights/tiny --out build/ae_run --per-relation 2 -n 4 "
              "--data examples/data/patchscopes/factual/country_capital_city.tsv,examples/data/patchscopes/factual/company_ceo.tsv "
              "--json && grep -q '<polyline' build/ae_run/accuracy_lines.svg && grep -q '<svg' build/ae_run/accuracy_heatmap.svg",
              &status);
    CHECK_MSG(status == 0 && strict_json(out), out);
    {
        char *sc = run("grep -c . build/ae_run/scored.jsonl; grep -c '\"correct\": 1' build/ae_run/scored.jsonl", &status);
        int cells = 0, right = 0;
        char *acc = strstr(out, "], \"accuracy\": ");
        CHECK(sscanf(sc, "%d %d", &cells, &right) == 2 && cells > 0 && cells % 6 == 0 && acc); /* 6 layers a case */
        snprintf(pos, sizeof pos, "%.6g", (double)right / cells);
        CHECK_MSG(acc && strncmp(acc + 15, pos, strlen(pos)) == 0, acc);
        free(sc);
    }
    free(out);
}

/* experiment entity-description: the description cut from a generation (after the colon, up
   to the next comma or line) and ROUGE-L F1 on hand-computed strings, then a real run */
static void test_entity_description(void) {
    char *out;
    int status;
    FILE *f = fopen("build/ed_test.tsv", "w");
    if (f) {
        fputs("# a comment\nWarsaw\tcapital and largest city of Poland\nThe Beatles\tEnglish rock band\nNoref\n", f);
        fclose(f);
    }
    CHECK(run_ok("rm -rf build/ed && build/patchscope experiment entity-description --model weights/tiny --data "
                 "build/ed_test.tsv --out build/ed --source-layers 0 -n 3 --jobs-only > /dev/null && "
                 "test $(wc -l < build/ed/jobs.jsonl) = 3 && grep -q '\"target_token\": \" x\"' build/ed/jobs.jsonl"));
    f = fopen("build/ed/results.jsonl", "w");
    if (f) {
        /* 4 of 4 and 6 words in common order: 2 * 4 / (4 + 6) = 0.8; then one word of 4 and 3 in order: 2 / 7 */
        fputs("{\"id\": \"entity/0\", \"source_layer\": 0, \"target_layer\": 0, \"generated_text\": \": Capital city of "
              "POLAND, Syria: x\", \"tags\": {\"entity\": \"Warsaw\", \"reference\": \"capital and largest city of Poland\"}}\n", f);
        fputs("{\"id\": \"entity/1\", \"source_layer\": 0, \"target_layer\": 0, \"generated_text\": \" The band from rock\\n"
              "English\", \"tags\": {\"entity\": \"The Beatles\", \"reference\": \"English rock band\"}}\n", f);
        fputs("{\"id\": \"entity/2\", \"source_layer\": 0, \"target_layer\": 0, \"generated_text\": \": anything\", "
              "\"tags\": {\"entity\": \"Noref\", \"reference\": \"\"}}\n", f);
        fclose(f);
    }
    out = run("build/patchscope experiment entity-description --model weights/tiny --data build/ed_test.tsv --out build/ed "
              "--source-layers 0 -n 3 --score-only > /dev/null && cat build/ed/descriptions.csv", &status);
    CHECK_MSG(status == 0 && strstr(out, "\"Warsaw\",0,0,\"Capital city of POLAND\",0.8\n") &&
              strstr(out, "\"The Beatles\",0,0,\"The band from rock\",0.285714\n") && strstr(out, "\"Noref\",0,0,\"anything\",\n"),
              out);
    free(out);
    out = run("cat build/ed/summary.json", &status);
    CHECK_MSG(strstr(out, "\"n\": 3, \"rouge_l\": 0.542857") && strict_json(out), out); /* (0.8 + 2/7) / 2 */
    free(out);
    out = run("rm -rf build/ed_run && build/patchscope experiment entity-description --model weights/tiny --out build/ed_run "
              "-n 4 --json && test $(grep -c . build/ed_run/scored.jsonl) = 120 && grep -q '<polyline' build/ed_run/rouge_lines.svg",
              &status);
    CHECK_MSG(status == 0 && strict_json(out), out);
    free(out);
}

/* experiment next-token: every method is read against the source's own next-token
   distribution (compare "source"), recomputed here through the library; the logit-lens
   cells are `lens` itself; the lens and the identity are exact at the last layer */
static void test_next_token(void) {
    static char *lines[4096];
    char cmd[8192], *out, *jobs, *res, *p, id[64];
    float got[64], ids[256], layer, top, p1, sur;
    int status, i, k, n_res, n_ids, src_ids[256];
    ps_model *m;
    ps_ctx *c;
    ps_error err;
    static float probs[50257];
    FILE *f = fopen("build/nt_test.txt", "w");
    for (i = 0; f && i < 24; i++) fprintf(f, "The capital of country %d is a city where people %d live\n", i, i * 7);
    if (f) fclose(f);
    out = run("rm -rf build/nt && build/patchscope experiment next-token --model weights/tiny --data build/nt_test.txt "
              "--out build/nt --json", &status);
    CHECK_MSG(status == 0 && strict_json(out), out);
    /* the lens and the identity read the model's own prediction at the last layer (the affine
       lens would too with more training positions than the width) */
    for (k = 0; k < 2; k++) {
        const char *cell = strstr(out, k ? "{\"group\": \"token identity\", \"source_layer\": 5, \"target_layer\": 5, \"n\": 3"
                                         : "{\"group\": \"logit lens\", \"source_layer\": 5, \"target_layer\": 5, \"n\": 3");
        const char *p1 = cell ? strstr(cell, "\"precision_at_1\": 1,") : NULL;
        CHECK_MSG(p1 && p1 < strchr(cell, '}'), "the lens and the identity read the model's prediction at the last layer");
    }
    for (p = out, k = 0; (p = strstr(p, "\"source_layer\": ")); p++) k++;
    CHECK(k == 24); /* 4 methods x 6 layers */
    free(out);
    /* the first logit-lens case against `patchscope lens` on the same prefix */
    jobs = run("grep -m 1 '\"lens/' build/nt/jobs.jsonl", &status);
    CHECK(json_string(jobs, "id", id, sizeof id) == 0);
    n_ids = json_numbers(jobs, "source_ids", ids, 256);
    p = cmd + snprintf(cmd, sizeof cmd, "build/patchscope lens --model weights/tiny --json --ids ");
    for (i = 0; i < n_ids; i++) p += sprintf(p, i ? ",%d" : "%d", (int)ids[i]);
    out = run(cmd, &status);
    CHECK(status == 0 && strstr(out, "\"layers\": [{\"layer\": 0,"));
    snprintf(cmd, sizeof cmd, "grep '\"id\": \"%s\"' build/nt/results.jsonl", id);
    res = run(cmd, &status);
    n_res = split_lines(res, lines, 4096);
    CHECK(n_res == 6);
    for (i = 0; i < n_res; i++) {
        char key[32];
        float lens_top = -1;
        snprintf(key, sizeof key, "\"layer\": %d,", i);
        CHECK(json_numbers(lines[i], "source_layer", &layer, 1) == 1 && layer == i &&
              json_numbers(lines[i], "top_id", got, 1) == 1 && strstr(out, key) &&
              sscanf(strstr(strstr(out, key), "\"top_token_id\": ") + 16, "%f", &lens_top) == 1);
        CHECK_MSG(got[0] == lens_top, "the logit lens as a patch == patchscope lens");
    }
    /* precision@1 and surprisal of those cells against the source's own distribution */
    CHECK(ps_model_load(&m, "weights/tiny", NULL, &err) == PS_OK && ps_ctx_create(&c, m, NULL, &err) == PS_OK);
    for (i = 0; i < n_ids; i++) src_ids[i] = (int)ids[i];
    CHECK(ps_forward(c, src_ids, n_ids, 0) == PS_OK);
    ps_softmax(ps_logits(c, 0), ps_model_config(m)->n_vocab, probs);
    for (i = 0; i < n_res; i++) {
        CHECK(json_numbers(lines[i], "top_id", &top, 1) == 1 && json_numbers(lines[i], "precision_at_1", &p1, 1) == 1 &&
              json_numbers(lines[i], "surprisal", &sur, 1) == 1);
        CHECK_MSG(p1 == (top == ps_argmax(probs, ps_model_config(m)->n_vocab)), "precision@1 against the source");
        CHECK_MSG(fabs(sur + log(probs[(int)top])) < 1e-5 * (1 + fabs(sur)), "surprisal: -ln p_source(top-1)");
    }
    ps_ctx_free(c);
    ps_model_free(m);
    free(res);
    free(out);
    free(jobs);
}

/* experiment multi-hop: the job file (the first hop's prompt into the second hop's
   question, three unpatched runs a case) and the tallies on hand-written results */
static void test_multi_hop(void) {
    char *out;
    int status;
    FILE *f = fopen("build/mh_test.tsv", "w");
    if (f) {
        fputs("# product, company, CEO\nXbox 360\tMicrosoft\tSatya Nadella\nSiri\tApple\tTim Cook\n", f);
        fclose(f);
    }
    CHECK(run_ok("rm -rf build/mh && build/patchscope experiment multi-hop --model weights/tiny --data build/mh_test.tsv "
                 "--out build/mh -n 3 --jobs-only > /dev/null && test $(wc -l < build/mh/jobs.jsonl) = 8 && "
                 "grep -q '\"source_prompt\": \"Xbox 360 was created by\", \"target_prompt\": \"Who is the current CEO of x\"' "
                 "build/mh/jobs.jsonl && grep -q '\"Who is the current CEO of the company that created Siri\"' build/mh/jobs.jsonl"));
    f = fopen("build/mh/results.jsonl", "w");
    if (f) {
        const char *t = "\"tags\": {\"relation\": \"multihop\", \"object\": ";
        fprintf(f, "{\"id\": \"multihop/0\", \"source_layer\": 0, \"target_layer\": 0, \"generated_text\": \" Satya Nadella\", %s\"Satya Nadella\", \"kind\": \"patch\"}}\n", t);
        fprintf(f, "{\"id\": \"multihop/0\", \"source_layer\": 0, \"target_layer\": 1, \"generated_text\": \" Bill\", %s\"Satya Nadella\", \"kind\": \"patch\"}}\n", t);
        fprintf(f, "{\"id\": \"multihop/0/baseline\", \"source_layer\": 5, \"target_layer\": 5, \"generated_text\": \" Bill Gates\", %s\"Satya Nadella\", \"kind\": \"baseline\"}}\n", t);
        fprintf(f, "{\"id\": \"multihop/0/first_hop\", \"source_layer\": 5, \"target_layer\": 5, \"generated_text\": \" Microsoft\", %s\"Microsoft\", \"kind\": \"first_hop\"}}\n", t);
        fprintf(f, "{\"id\": \"multihop/0/second_hop\", \"source_layer\": 5, \"target_layer\": 5, \"generated_text\": \" SatyaNadella\", %s\"Satya Nadella\", \"kind\": \"second_hop\"}}\n", t);
        fprintf(f, "{\"id\": \"multihop/1\", \"source_layer\": 0, \"target_layer\": 0, \"generated_text\": \" Steve\", %s\"Tim Cook\", \"kind\": \"patch\"}}\n", t);
        fprintf(f, "{\"id\": \"multihop/1\", \"source_layer\": 0, \"target_layer\": 1, \"generated_text\": \" Steve\", %s\"Tim Cook\", \"kind\": \"patch\"}}\n", t);
        fprintf(f, "{\"id\": \"multihop/1/baseline\", \"source_layer\": 5, \"target_layer\": 5, \"generated_text\": \" Tim Cook\", %s\"Tim Cook\", \"kind\": \"baseline\"}}\n", t);
        fprintf(f, "{\"id\": \"multihop/1/first_hop\", \"source_layer\": 5, \"target_layer\": 5, \"generated_text\": \" Google\", %s\"Apple\", \"kind\": \"first_hop\"}}\n", t);
        fprintf(f, "{\"id\": \"multihop/1/second_hop\", \"source_layer\": 5, \"target_layer\": 5, \"generated_text\": \" Tim Cook\", %s\"Tim Cook\", \"kind\": \"second_hop\"}}\n", t);
        fclose(f);
    }
    out = run("build/patchscope experiment multi-hop --model weights/tiny --data build/mh_test.tsv --out build/mh -n 3 "
              "--score-only --json", &status);
    CHECK_MSG(status == 0 && strict_json(out) &&
              strstr(out, "\"cases\": 2, \"hop1_right\": 1, \"hop2_right\": 2, \"both_hops_right\": 1, "
                          "\"two_hop_question_right\": 1, \"patchscope_solves\": 1, "
                          "\"patchscope_solves_where_the_question_fails\": 1, \"accuracy\": 0.25}"), out);
    free(out);
}

/* experiment cross-model: a model mapped onto itself learns the identity where the layers
   agree (precision@1 1 at (3, 3) and (5, 5)); different vocabularies are refused */
static void test_cross_model(void) {
    int status, k;
    char *out = run("rm -rf build/xm && build/patchscope experiment cross-model --model weights/tiny --source-model "
                    "weights/tiny --per-relation 300 --out build/xm --source-layers 3,5 --target-layers 3,5 --json",
                    &status);
    CHECK_MSG(status == 0 && strict_json(out), out);
    for (k = 0; k < 2; k++) {
        const char *cell = strstr(out, k ? "{\"source_layer\": 5, \"target_layer\": 5," : "{\"source_layer\": 3, \"target_layer\": 3,");
        const char *p1 = cell ? strstr(cell, "\"precision_at_1\": 1,") : NULL;
        CHECK_MSG(p1 && p1 < strchr(cell, '}'), "a model mapped onto itself reads its own prediction");
    }
    CHECK(strstr(out, "{\"source_layer\": 3, \"target_layer\": 5,") && strstr(out, "{\"source_layer\": 5, \"target_layer\": 3,"));
    free(out);
    out = run("build/patchscope experiment cross-model --model weights/tiny --source-model build/models/tiny --out build/xm2 2>&1",
              &status);
    CHECK_MSG(status != 0 && strstr(out, "vocabularies differ (96 and 50257 tokens)"), out);
    free(out);
}

/* a result line agrees with the oracle's cell: id, layers, top-1 and greedy ids */
static int cell_agrees(const char *got, const char *want) {
    static const char *const keys[] = {"source_layer", "target_layer", "top_id", "generated_ids"};
    char id_g[256], id_w[256];
    float g[64], w[64];
    int k, i, ng, nw;
    if (json_string(got, "id", id_g, sizeof id_g) || json_string(want, "id", id_w, sizeof id_w) || strcmp(id_g, id_w) != 0) {
        fprintf(stderr, "  %s: the oracle's cell %s\n", got, want);
        return 0;
    }
    for (k = 0; k < 4; k++) {
        ng = json_numbers(got, keys[k], g, 64);
        nw = json_numbers(want, keys[k], w, 64);
        for (i = 0; ng == nw && i < ng && i < 64; i++)
            if (g[i] != w[i]) break;
        if (ng != nw || i < ng) {
            fprintf(stderr, "  %s: %s differs from the oracle's %s\n", got, keys[k], want);
            return 0;
        }
    }
    return 1;
}

/* summary.json's line for a cell (the one beginning with head) holds the oracle's metrics */
static int summary_cell_agrees(const char *summary, const char *want, const char *head) {
    static const char *const metrics[] = {"precision_at_1", "surprisal", "rouge_l"};
    const char *cell = strstr(summary, head), *end = cell ? strchr(cell, '}') : NULL;
    char line[1024];
    float g, w;
    int k, ok = 1;
    if (!end || end - cell + 2 > (long)sizeof line) {
        fprintf(stderr, "  no summary line %s\n", head);
        return 0;
    }
    memcpy(line, cell, (size_t)(end - cell + 1));
    line[end - cell + 1] = 0;
    for (k = 0; k < 3; k++)
        if (json_numbers(want, metrics[k], &w, 1) == 1 &&
            !(json_numbers(line, metrics[k], &g, 1) == 1 && fabs(g - w) <= 1e-5 * (1 + fabs(w)))) {
            fprintf(stderr, "  %s: %s %g, the oracle's %g\n", line, metrics[k], g, w);
            ok = 0;
        }
    return ok;
}

/* Every experiment end to end against the float64 oracle (tools/reference/make_experiment_goldens.py
   on the inputs in tests/data/experiments): each result cell's top-1 and greedy ids, in order, and
   the summary: summarize's per-layer metrics, the attribute-extraction relations, the multi-hop
   tallies. The oracle tokenizes with tiktoken and replays the seeded draws, so this also checks
   positions, placeholders, train/validation splits and the fitted maps. */
static void test_experiments_oracle(void) {
    static const struct {
        const char *name, *args;
    } runs[] = {
        {"attribute-extraction", "attribute-extraction --data tests/data/experiments/country_capital_city.tsv,"
                                 "tests/data/experiments/company_ceo.tsv --per-relation 0 -n 8"},
        {"entity-description", "entity-description --data tests/data/experiments/entities.tsv -n 8"},
        {"multi-hop", "multi-hop --data tests/data/experiments/multihop.tsv -n 6"},
        {"next-token", "next-token --data tests/data/experiments/texts.txt"},
        {"cross-model", "cross-model --source-model weights/tiny --data tests/data/experiments/texts.txt "
                        "--source-layers 1,3 --target-layers 3,5"},
        {"cross-model-mid", "cross-model --source-model build/models/mid --data tests/data/experiments/texts.txt "
                            "--source-layers 2 --target-layers 5 --per-relation 60"}};
    static char *want[4096], *got[2048];
    char cmd[1024], *expected;
    int status, n_want, r, i;
    expected = run("cat tests/data/experiments/expected.jsonl", &status);
    n_want = split_lines(expected, want, 4096);
    CHECK_MSG(status == 0 && n_want > 1000, "tests/data/experiments/expected.jsonl");
    for (r = 0; r < (int)(sizeof runs / sizeof runs[0]); r++) {
        int n_got, at = 0, checks = 0, bad = 0;
        char *results, *summary, name[64], text[1024];
        snprintf(cmd, sizeof cmd, "rm -rf build/xo/%s && mkdir -p build/xo && build/patchscope experiment %s "
                 "--model weights/tiny --out build/xo/%s > /dev/null && cat build/xo/%s/results.jsonl",
                 runs[r].name, runs[r].args, runs[r].name, runs[r].name);
        results = run(cmd, &status);
        CHECK_MSG(status == 0, runs[r].name);
        n_got = split_lines(results, got, 2048);
        snprintf(cmd, sizeof cmd, "cat build/xo/%s/summary.json", runs[r].name);
        summary = run(cmd, &status);
        for (i = 0; i < n_want; i++) {
            if (json_string(want[i], "experiment", name, sizeof name) || strcmp(name, runs[r].name) != 0) continue;
            if (json_string(want[i], "summary_cell", text, sizeof text) == 0) {
                bad += !summary_cell_agrees(summary, want[i], text);
                checks++;
            } else if (json_string(want[i], "summary_text", text, sizeof text) == 0) {
                if (!strstr(summary, text)) bad++, fprintf(stderr, "  %s: no %s in %s\n", runs[r].name, text, summary);
                checks++;
            } else
                bad += !(at < n_got && cell_agrees(got[at], want[i])), at++;
        }
        CHECK_MSG(bad == 0 && at == n_got && at > 0 && checks > 0, runs[r].name);
        free(results);
        free(summary);
    }
    free(expected);
}

/* patchscope sae: the features per position are ps_sae_encode's on the captured input
   (which test_interv holds to the oracle); the error term changes no logit; an edit
   does; bad edits and an SAE the model cannot take are errors */
static void test_sae_command(void) {
    int ids[] = {17, 83, 5, 42, 0, 95, 61, 29, 77}, n = 9, status, p, top[2];
    float x[9 * 32], acts[9 * 40], v[2];
    char *out = run("build/patchscope sae --model build/models/tiny --sae tests/data/sae/jumprelu_mlp_out "
                    "--ids 17,83,5,42,0,95,61,29,77 --top 2 --json", &status), key[64];
    ps_model *m = NULL;
    ps_ctx *c = NULL;
    ps_sae *sae;
    ps_capture cap = {PS_MLP_OUT, 1, x};
    CHECK_MSG(status == 0 && strict_json(out) && strstr(out, "\"hook\": \"blocks.1.hook_mlp_out\", \"point\": \"mlp_out\", "
                                                            "\"layer\": 1, \"d_sae\": 40"), out);
    CHECK(ps_model_load(&m, "build/models/tiny", NULL, NULL) == PS_OK && ps_ctx_create(&c, m, NULL, NULL) == PS_OK &&
          ps_sae_load(&sae, "tests/data/sae/jumprelu_mlp_out", NULL) == PS_OK);
    CHECK(ps_run_with_cache(c, ids, n, 0, &cap, 1) == PS_OK && ps_sae_encode(sae, x, n, acts, NULL) == PS_OK);
    for (p = 0; p < n; p++) {
        const char *at;
        int f[2];
        ps_top_k(acts + p * 40, 40, 2, top, v);
        snprintf(key, sizeof key, "{\"pos\": %d, \"features\": [", p);
        at = strstr(out, key);
        CHECK_MSG(at && sscanf(at + strlen(key), "%d,%d", &f[0], &f[1]) == 2 && f[0] == top[0] && f[1] == top[1], key);
    }
    free(out);
    out = run("build/patchscope sae --model build/models/tiny --sae tests/data/sae/topk_z --ids 17,83,5,42 --error-term --json",
              &status);
    CHECK_MSG(status == 0 && strict_json(out) && strstr(out, "\"max_logit_change\": ") &&
              atof(strstr(out, "\"max_logit_change\": ") + 20) < 1e-5, out);
    free(out);
    out = run("build/patchscope sae --model build/models/tiny --sae tests/data/sae/topk_z --ids 17,83,5,42 --error-term "
              "--set 3=2.5 --ablate 7 --json", &status);
    CHECK_MSG(status == 0 && strstr(out, "\"max_logit_change\": ") && atof(strstr(out, "\"max_logit_change\": ") + 20) > 1e-3,
              out);
    free(out);
    out = run("build/patchscope sae --model build/models/tiny --sae tests/data/sae/topk_z --ids 1,2 --set 48=1 2>&1", &status);
    CHECK_MSG(WEXITSTATUS(status) == 2 && strstr(out, "--set: a feature in 0..47"), out);
    free(out);
    out = run("build/patchscope sae --model build/models/mid --sae tests/data/sae/topk_z --ids 1,2 2>&1", &status);
    CHECK_MSG(WEXITSTATUS(status) == 1 && strstr(out, "does not have"), out);
    free(out);
    ps_sae_free(sae);
    ps_ctx_free(c);
    ps_model_free(m);
}

/* whether `generate ... --json` (cmd) generates want[0..n_new) after an n_prompt-token prompt */
static int generates(const char *cmd, int n_prompt, const int *want, int n_new) {
    float got[64];
    int status, k, ok;
    char *res = run(cmd, &status);
    ok = status == 0 && n_prompt + n_new <= 64 && json_numbers(res, "ids", got, 64) == n_prompt + n_new;
    for (k = 0; ok && k < n_new; k++) ok = got[n_prompt + k] == want[k];
    if (!ok) fprintf(stderr, "  %s\n  gave %s\n", cmd, res);
    free(res);
    return ok;
}

/* patchscope steer: its directions are ps_steering_vectors' (held to the oracle by
   test_interv), printed bit for bit; generate --steer equals steering hooks on the
   file's layers; the options' errors */
static void test_steer_command(void) {
    static const char *const pairs[3][2] = {{"I love this", "I hate this"}, {"a wonderful day", "a terrible day"},
                                           {"so happy", "so sad"}};
    static float dirs[6 * 128];
    int status, i, n_pos[3], n_neg[3], prompt[5] = {464, 3139, 286, 12873, 318}, out[8], handles[6];
    int *pos[3], *neg[3];
    char *res;
    ps_model *m;
    ps_ctx *c;
    ps_tokenizer *t;
    ps_control_vector cv;
    ps_steer st[6];
    FILE *f = fopen("build/pairs.tsv", "w");
    for (i = 0; f && i < 3; i++) fprintf(f, "%s%s\t%s\n", i == 1 ? "# a comment\n" : "", pairs[i][0], pairs[i][1]);
    if (f) fclose(f);
    res = run("build/patchscope steer --model weights/tiny --pairs build/pairs.tsv --method pca --out build/steer.gguf --json",
              &status);
    CHECK_MSG(status == 0 && strict_json(res) && strstr(res, "\"pairs\": 3, \"method\": \"pca\"") &&
              json_numbers(res, "directions", dirs, 6 * 128) == 6 * 128, res);
    free(res);
    CHECK(ps_model_load(&m, "weights/tiny", NULL, NULL) == PS_OK && ps_ctx_create(&c, m, NULL, NULL) == PS_OK &&
          ps_tokenizer_load(&t, "weights/tiny", NULL) == PS_OK);
    for (i = 0; i < 3; i++) {
        pos[i] = tu_encode(t, pairs[i][0], strlen(pairs[i][0]), 0, &n_pos[i]);
        neg[i] = tu_encode(t, pairs[i][1], strlen(pairs[i][1]), 0, &n_neg[i]);
    }
    CHECK(ps_steering_vectors(c, (const int *const *)pos, n_pos, (const int *const *)neg, n_neg, 3, PS_STEER_PCA, &cv) == PS_OK);
    CHECK_MSG(memcmp(cv.dir, dirs, sizeof dirs) == 0, "steer --json prints ps_steering_vectors' directions");
    /* generate --steer: hooks at layers 1-5 (the file has no layer 0), scale -3, new tokens only */
    for (i = 1; i < 6; i++) {
        st[i].vec = cv.dir + i * 128, st[i].scale = -3.0f, st[i].from = 5;
        CHECK(ps_add_hook(c, PS_RESID_POST, i, ps_steer_hook, &st[i], &handles[i]) == PS_OK);
    }
    ps_ctx_reset(c);
    CHECK(ps_generate(c, prompt, 5, 8, out) == PS_OK);
    CHECK_MSG(generates("build/patchscope generate --model weights/tiny --ids 464,3139,286,12873,318 -n 8 --steer "
                        "build/steer.gguf --steer-scale -3 --steer-new --json", 5, out, 8), "generate --steer == the hooks");
    res = run("build/patchscope run --model weights/tiny --ids 1,2 --steer-scale 2 2>&1; "
              "build/patchscope run --model weights/tiny --ids 1,2 --steer tests/data/controlvector/foreign.gguf 2>&1; "
              "build/patchscope steer --model weights/tiny --pairs build/pairs.tsv --method median --out x.gguf 2>&1; "
              "printf 'no tab here\\n' > build/pairs_bad.tsv; "
              "build/patchscope steer --model weights/tiny --pairs build/pairs_bad.tsv --out x.gguf 2>&1", &status);
    CHECK_MSG(strstr(res, "the steering options need --steer") && strstr(res, "directions of 32 floats up to layer 3") &&
              strstr(res, "--method is mean or pca, not median") && strstr(res, "want positive<TAB>negative, not: no tab here"),
              res);
    free(res);
    for (i = 0; i < 3; i++) free(pos[i]), free(neg[i]);
    ps_control_vector_free(&cv);
    ps_tokenizer_free(t);
    ps_ctx_free(c);
    ps_model_free(m);
}

/* the ablation flags: run, generate and grid with --ablate equal the library's ablation
   hooks (held to the oracle by test_interv) bit for bit: zeroed heads and units, a mean
   per position over a prompts file, a resampled run; bad targets are named */
static void test_ablation_flags(void) {
    static float got[2][50257 + 8], mean[16 * 128];
    int ids[] = {464, 3139, 286, 12873, 318}, other[] = {464, 3139, 286, 4881, 318}, units[] = {3, 17, 60, 100};
    int status, k, h1 = -1, h2 = -1, n_rows, out[4], *pr[3], lens[3];
    const char *prompts[] = {"The capital of Kenya is Nairobi.", "Paris is in France.", "Tim Cook runs Apple."};
    float resample[5 * 128];
    char *res;
    ps_model *m;
    ps_ctx *c = NULL;
    ps_tokenizer *t;
    ps_ablation head = {1, NULL, 0, NULL, 0}, un = {-1, units, 4, NULL, 0}, mn = {-1, NULL, 0, NULL, 0};
    ps_capture cap = {PS_ATTN_OUT, 3, resample};
    FILE *f = fopen("build/ablate_prompts.txt", "w");
    for (k = 0; f && k < 3; k++) fprintf(f, "%s\n", prompts[k]);
    if (f) fclose(f);
    CHECK(ps_model_load(&m, "weights/tiny", NULL, NULL) == PS_OK && ps_ctx_create(&c, m, NULL, NULL) == PS_OK &&
          ps_tokenizer_load(&t, "weights/tiny", NULL) == PS_OK);
    /* zeros: head 1 of z.0 and four units of mlp_post.1 */
    CHECK(ps_add_hook(c, PS_Z, 0, ps_ablation_hook, &head, &h1) == PS_OK &&
          ps_add_hook(c, PS_MLP_POST, 1, ps_ablation_hook, &un, &h2) == PS_OK && ps_forward(c, ids, 5, 0) == PS_OK);
    memcpy(got[0], ps_logits(c, 0), 50257 * sizeof(float));
    ps_remove_hook(c, h1), ps_remove_hook(c, h2);
    res = run("build/patchscope run --model weights/tiny --ids 464,3139,286,12873,318 --ablate "
              "\"z:0:head=1;mlp_post:1:units=3,17,60,100\" --json", &status);
    CHECK_MSG(status == 0 && json_numbers(res, "logits", got[1], 50257 + 8) == 50257 &&
              memcmp(got[0], got[1], 50257 * sizeof(float)) == 0, "run --ablate (zeros) == the hooks");
    free(res);
    /* the mean of mlp_out.3 per position over the prompts file */
    for (k = 0; k < 3; k++) pr[k] = tu_encode(t, prompts[k], strlen(prompts[k]), 0, &lens[k]);
    CHECK(ps_mean_activation(c, (const int *const *)pr, lens, 3, PS_MLP_OUT, 3, 1, mean, &n_rows) == PS_OK);
    mn.values = mean, mn.n_values = n_rows;
    ps_ctx_reset(c);
    CHECK(ps_add_hook(c, PS_MLP_OUT, 3, ps_ablation_hook, &mn, &h1) == PS_OK && ps_forward(c, ids, 5, 0) == PS_OK);
    memcpy(got[0], ps_logits(c, 0), 50257 * sizeof(float));
    ps_remove_hook(c, h1);
    res = run("build/patchscope run --model weights/tiny --ids 464,3139,286,12873,318 --ablate mlp_out:3 --ablate-with mean "
              "--ablate-prompts build/ablate_prompts.txt --ablate-per-position --json", &status);
    CHECK_MSG(status == 0 && json_numbers(res, "logits", got[1], 50257 + 8) == 50257 &&
              memcmp(got[0], got[1], 50257 * sizeof(float)) == 0, "run --ablate-with mean == ps_mean_activation + the hook");
    free(res);
    /* generate with attn_out.3 resampled from another prompt */
    ps_ctx_reset(c);
    CHECK(ps_run_with_cache(c, other, 5, 0, &cap, 1) == PS_OK);
    mn.values = resample, mn.n_values = 5;
    ps_ctx_reset(c);
    CHECK(ps_add_hook(c, PS_ATTN_OUT, 3, ps_ablation_hook, &mn, &h1) == PS_OK && ps_generate(c, ids, 5, 4, out) == PS_OK);
    ps_remove_hook(c, h1);
    CHECK_MSG(generates("build/patchscope generate --model weights/tiny --ids 464,3139,286,12873,318 -n 4 --ablate attn_out:3 "
                        "--ablate-with resample --ablate-source-ids 464,3139,286,4881,318 --json", 5, out, 4),
              "generate --ablate-with resample == the hook");
    /* grid: the target runs ablated (every attention output zeroed) change the cells */
    res = run("a=$(build/patchscope grid --model weights/tiny --source-prompt \"Amazon's former CEO attended Oscars\" "
              "--source-token \" CEO\" --json); b=$(build/patchscope grid --model weights/tiny --source-prompt \"Amazon's former "
              "CEO attended Oscars\" --source-token \" CEO\" --ablate attn_out:all --json); test -n \"$a\" && test \"$a\" != \"$b\"",
              &status);
    CHECK_MSG(status == 0, "grid --ablate changes the grid");
    free(res);
    res = run("build/patchscope run --model weights/tiny --ids 1,2 --ablate z:1:head=4 2>&1; "
              "build/patchscope run --model weights/tiny --ids 1,2 --ablate mlp_post:0:units=512 2>&1; "
              "build/patchscope run --model weights/tiny --ids 1,2 --ablate resid_pre:0-6 2>&1; "
              "build/patchscope run --model weights/tiny --ids 1,2 --ablate embed:0 2>&1; "
              "build/patchscope run --model weights/tiny --ids 1,2 --ablate z:0 --ablate-with mean 2>&1; "
              "build/patchscope run --model weights/tiny --ids 1,2 --ablate-with zero 2>&1", &status);
    CHECK_MSG(strstr(res, "z has heads 0-3, not 4") && strstr(res, "mlp_post has units 0-511, not 512") &&
              strstr(res, "layers 0-6 (0-5, A-B or all)") && strstr(res, "embed is not a layer point") &&
              strstr(res, "--ablate-with mean needs --ablate-prompts") && strstr(res, "the ablation options need --ablate"), res);
    free(res);
    for (k = 0; k < 3; k++) free(pr[k]);
    ps_tokenizer_free(t);
    ps_ctx_free(c);
    ps_model_free(m);
}

/* resid_post's numbers then pattern's, from a JSON answer's "dump" object; their count */
static int dumped(const char *answer, float *out) {
    const char *d = strstr(answer, "\"dump\": ");
    int a = d ? json_numbers(d + 8, "resid_post", out, 2 * 8 * 32) : -1;
    int b = d ? json_numbers(d + 8, "pattern", out + (a > 0 ? a : 0), 2 * 8 * 16) : -1;
    return a < 0 || b < 0 ? -1 : a + b;
}

/* generate --dump keeps every position it runs (the prompt's, then each generated token's
   but the last): the same values as run --dump over that sequence */
static void test_generate_dump(void) {
    static float g[2][2 * 8 * 32 + 2 * 8 * 16];
    float ids[16];
    int status, n[2], k;
    char cmd[512], *res = run("build/patchscope generate --model build/models/tiny --ids 17,83,5 -n 6 --dump resid_post,pattern "
                              "--json", &status), *again;
    CHECK_MSG(status == 0 && strict_json(res) && json_numbers(res, "ids", ids, 16) == 9, res);
    /* the dump object's numbers: resid_post [2][8][32], then pattern [2][8][2 * 8] */
    n[0] = dumped(res, g[0]);
    k = snprintf(cmd, sizeof cmd, "build/patchscope run --model build/models/tiny --ids ");
    for (status = 0; status < 8; status++) k += snprintf(cmd + k, sizeof cmd - (size_t)k, status ? ",%d" : "%d", (int)ids[status]);
    snprintf(cmd + k, sizeof cmd - (size_t)k, " --dump resid_post,pattern --json");
    again = run(cmd, &status);
    n[1] = dumped(again, g[1]);
    CHECK_MSG(status == 0 && n[0] == 2 * 8 * 32 + 2 * 8 * 16 && n[1] == n[0], again);
    for (k = 0; k < n[0] && k < n[1]; k++)
        if (fabs(g[0][k] - g[1][k]) > 1e-5 * (1 + fabs(g[1][k]))) break;
    CHECK_MSG(k == n[0], "generate --dump == run --dump over the generated sequence");
    free(res);
    free(again);
    /* inspect --dump: the patched generation's positions, as ps_generate_with_cache keeps them
       with the patch written at the target position (the library's semantics) */
    {
        ps_model *m = NULL;
        ps_ctx *c = NULL;
        ps_source src;
        ps_overwrite ov = {2, 0, NULL};
        ps_capture cap[2];
        int sids[] = {1, 2, 3, 4}, tids[] = {5, 6, 7}, out[3], h = -1, last = -1;
        float rp[2][2 * 5 * 32], pat[2][2 * 5 * 10], *want;
        CHECK(ps_model_load(&m, "build/models/tiny", NULL, NULL) == PS_OK && ps_ctx_create(&c, m, NULL, NULL) == PS_OK &&
              ps_source_run(c, sids, 4, PS_RESID_POST, &last, 1, &src) == PS_OK);
        ov.vec = ps_source_state(&src, 1, -1);
        cap[0].point = PS_RESID_POST, cap[0].layer = PS_ALL_LAYERS, cap[0].out = g[0];
        cap[1].point = PS_PATTERN, cap[1].layer = PS_ALL_LAYERS, cap[1].out = g[0] + 2 * 5 * 32;
        ps_ctx_reset(c);
        CHECK(ps_add_hook(c, PS_RESID_POST, 0, ps_overwrite_hook, &ov, &h) == PS_OK &&
              ps_generate_with_cache(c, tids, 3, 3, out, cap, 2) == PS_OK);
        res = run("build/patchscope inspect --model build/models/tiny --source-ids 1,2,3,4 --source-layer 1 --target-ids 5,6,7 "
                  "--target-layer 0 -n 3 --dump resid_post,pattern --json", &status);
        CHECK_MSG(status == 0 && json_numbers(res, "generated_ids", ids, 16) == 3 && ids[0] == out[0] && ids[1] == out[1] &&
                  ids[2] == out[2], res);
        want = g[0];
        memcpy(rp[0], want, sizeof rp[0]);
        memcpy(pat[0], want + 2 * 5 * 32, sizeof pat[0]);
        {
            const char *d = strstr(res, "\"dump\": ");
            CHECK(d && json_numbers(d + 8, "resid_post", rp[1], 2 * 5 * 32) == 2 * 5 * 32 &&
                  json_numbers(d + 8, "pattern", pat[1], 2 * 5 * 10) == 2 * 5 * 10);
        }
        for (k = 0; k < 2 * 5 * 32; k++)
            if (fabs(rp[0][k] - rp[1][k]) > 1e-5 * (1 + fabs(rp[0][k]))) break;
        CHECK_MSG(k == 2 * 5 * 32, "inspect --dump resid_post == the patched ps_generate_with_cache");
        for (k = 0; k < 2 * 5 * 10; k++)
            if (fabs(pat[0][k] - pat[1][k]) > 1e-5) break;
        CHECK_MSG(k == 2 * 5 * 10, "inspect --dump pattern == the patched ps_generate_with_cache");
        free(res);
        ps_source_free(&src);
        ps_ctx_free(c);
        ps_model_free(m);
    }
}

/* the example's table that follows title, rows 0..5 of six numbers, into v[36]; 0 if it is not there */
static int cross_family_table(const char *out, const char *title, float *v) {
    const char *p = strstr(out, title);
    int a;
    for (a = 0; p && a < 6; a++) {
        char row[16];
        snprintf(row, sizeof row, "\n%7d", a);
        if (!(p = strstr(p, row)) ||
            sscanf(p + 8, "%f %f %f %f %f %f", &v[6 * a], &v[6 * a + 1], &v[6 * a + 2], &v[6 * a + 3], &v[6 * a + 4],
                   &v[6 * a + 5]) != 6)
            return 0;
    }
    return p != NULL;
}

/* examples/cross_family.c on 100 of its sentences: the tiny GPT-2's states, mapped into the
   tiny Llama's identity prompt, make the Llama say its own next token at most pairs of the
   deeper layers (0.67 at (5, 5) when this was written; asserted with a margin) */
static void test_cross_family_example(void) {
    int status;
    float v[36];
    char *out = run("head -n 100 examples/data/cross_family_prompts.txt > build/cf100.txt && build/cross_family "
                    "--prompts build/cf100.txt --svg build/cf.svg && grep -q '<polyline' build/cf.svg", &status);
    CHECK_MSG(status == 0 && strstr(out, "100 sentences,"), out);
    CHECK(cross_family_table(out, "next-token prediction there", v));
    CHECK_MSG(v[35] > 0.5 && v[30] < v[35], "the Llama reads its next token from mapped GPT-2 states");
    free(out);
}

/* the example on 40 sentences against the float64 oracle (the first line of
   tests/data/experiments/expected.jsonl): the pairs found, and both tables (printed to two
   decimals; one pair's difference is 1/held_out > 0.01) */
static void test_cross_family_oracle(void) {
    int status, k, t, n[4];
    float want[4], tab_w[36], tab_g[36];
    char *line = run("head -n 1 tests/data/experiments/expected.jsonl", &status), head[128];
    char *out = run("build/cross_family --prompts tests/data/experiments/cross_family.txt", &status);
    static const char *const counts[] = {"sentences", "pairs", "train", "held_out"};
    CHECK_MSG(status == 0 && sscanf(out, "%d sentences, %d paired positions (%d to fit the maps, %d held out)", &n[0], &n[1],
                                    &n[2], &n[3]) == 4, out);
    for (k = 0; k < 4; k++) CHECK_MSG(json_numbers(line, counts[k], &want[k], 1) == 1 && want[k] == n[k], counts[k]);
    for (t = 0; t < 2; t++) {
        CHECK(json_numbers(line, t ? "next" : "word", tab_w, 36) == 36 &&
              cross_family_table(out, t ? "next-token prediction there" : "the word itself", tab_g));
        for (k = 0; k < 36; k++) {
            snprintf(head, sizeof head, "%s table, GPT-2 layer %d, Llama layer %d: %.2f, the oracle's %.4f", t ? "next" : "word",
                     k / 6, k % 6, tab_g[k], tab_w[k]);
            CHECK_MSG(fabs(tab_g[k] - tab_w[k]) <= 0.005 + 1e-6, head);
        }
    }
    free(line);
    free(out);
}

int main(void) {
    test_patch();
    test_run();
    test_generate();
    test_families();
    test_grid();
    test_tokenizer_and_errors();
    test_utf8_replacement();
    test_json_always_valid();
    test_readme_commands("\n## Command line\n", 10);
    test_readme_commands("\n## Sweeps\n", 6);
    test_sweep_oracle_and_shards();
    test_sweep_equals_grid_and_inspect();
    test_sweep_resume();
    test_sweep_errors();
    test_summarize();
    test_attribute_extraction();
    test_entity_description();
    test_next_token();
    test_multi_hop();
    test_cross_model();
    test_experiments_oracle();
    test_sae_command();
    test_steer_command();
    test_ablation_flags();
    test_generate_dump();
    test_cross_family_example();
    test_cross_family_oracle();
    return test_report("cli");
}
