/* tokenizer.json tests: Hugging Face's own tokenizers library (npm tokenizers@0.23.2) is
   the oracle; tools/gen_hf_tokenizer_fixtures.js wrote its ids for thousands of texts
   into tests/data/hf_tokenizers/NAME.json: without special tokens, with them, with the
   post-processor's BOS, and the decoded text. Then the loader's errors on malformed
   files. Run from the repository root. */
#define PATCHSCOPE_IMPLEMENTATION
#include "../patchscope.h"
#include "testutil.h"
#include "fixture.h"

/* reads a JSON list of ids */
static int read_ids(ps__json *j, int *ids, int cap, int *n) {
    long long v;
    int r;
    *n = 0;
    if (ps__json_array(j)) return -1;
    while ((r = ps__json_item(j)) == 1) {
        if (*n >= cap || ps__json_int(j, 0, 1 << 24, &v)) return -1;
        ids[(*n)++] = (int)v;
    }
    return r;
}

static int same(const int *a, int na, const int *b, int nb) {
    return na == nb && (na == 0 || memcmp(a, b, (size_t)na * sizeof(int)) == 0);
}

/* every case of the fixture file agrees with the tokenizer at path */
static void test_fixture(const char *path, const char *fixture) {
    enum { CAP = 4096 };
    static int want[3][CAP];
    ps_tokenizer *t;
    ps__file f;
    ps_error e;
    ps__json j;
    char key[64], *text, *decoded;
    int r, n_cases = 0, bad = 0, n_want[3];
    size_t len = 0, dlen = 0;
    if (ps_tokenizer_load(&t, path, &e)) { CHECK_MSG(0, e.msg); return; }
    if (ps__file_read(&f, fixture, 1, &e)) { CHECK_MSG(0, e.msg); ps_tokenizer_free(t); return; }
    text = (char *)malloc(f.size + 1);
    decoded = (char *)malloc(f.size + 1);
    CHECK(fixture_open(&j, &f) == 0);
    while ((r = fixture_next(&j)) == 1) {
        static const char *const names[3] = {"ids", "special", "bos"};
        static const int flags[3] = {0, PS_ENCODE_SPECIAL, PS_ENCODE_SPECIAL | PS_ENCODE_BOS};
        int k, *got, n;
        size_t glen;
        char *gtext;
        while ((r = ps__json_key(&j, key, sizeof key, NULL)) == 1) {
            if (!strcmp(key, "text")) r = ps__json_string(&j, text, f.size + 1, &len);
            else if (!strcmp(key, "decoded")) r = ps__json_string(&j, decoded, f.size + 1, &dlen);
            else {
                for (k = 0; k < 3 && strcmp(key, names[k]); k++) {}
                r = k < 3 ? read_ids(&j, want[k], CAP, &n_want[k]) : ps__json_skip(&j);
            }
            if (r) break;
        }
        if (r) break;
        n_cases++;
        for (k = 0; k < 3; k++) {
            got = tu_encode(t, text, len, flags[k], &n);
            if (!got || !same(got, n, want[k], n_want[k])) {
                if (bad++ < 5) {
                    int q;
                    printf("  %s %s: text \"%.60s\"\n    got ", fixture, names[k], text);
                    for (q = 0; got && q < n && q < 24; q++) printf("%d ", got[q]);
                    printf("\n    want ");
                    for (q = 0; q < n_want[k] && q < 24; q++) printf("%d ", want[k][q]);
                    printf("\n");
                }
            }
            free(got);
        }
        /* decode(special) is Hugging Face's decode */
        gtext = (char *)malloc(dlen + 64);
        if (ps_decode(t, want[1], n_want[1], gtext, dlen + 64, &glen) || glen != dlen || memcmp(gtext, decoded, dlen)) {
            if (bad++ < 5) printf("  %s decode: text \"%.60s\" gives \"%.*s\"\n", fixture, text, (int)glen, gtext);
        }
        free(gtext);
    }
    CHECK_MSG(r == 0 && fixture_close(&j) == 0, j.err);
    CHECK_MSG(bad == 0, fixture);
    CHECK_MSG(n_cases > 1000, "the fixture has its cases");
    printf("%s: %d texts, %d disagreements\n", fixture, n_cases, bad);
    free(text);
    free(decoded);
    ps__file_close(&f);
    ps_tokenizer_free(t);
}

/* GPT-2's own tokenizer.json layout (the hub's: ByteLevel with GPT-2's regex, a ByteLevel
   post-processor and decoder), built here from weights/vocab.json and merges.txt, gives
   the ids and bytes of the vocab.json tokenizer (tiktoken's, test_tokenizer) on every text
   of tests/data/tokenizer_cases.json, special tokens read or not */
static void test_gpt2_layout(void) {
    ps__file vf, mf, f;
    ps_error e;
    ps__json j;
    ps_tokenizer *hf = NULL, *ref = NULL;
    char *json, *p, key[16], *text;
    const char *m;
    int r, n_cases = 0, bad = 0;
    if (ps__file_read(&vf, "weights/vocab.json", 1, &e) || ps__file_read(&mf, "weights/merges.txt", 1, &e) ||
        ps__file_read(&f, "tests/data/tokenizer_cases.json", 1, &e)) {
        CHECK_MSG(0, e.msg);
        return;
    }
    json = p = (char *)malloc(vf.size + 2 * mf.size + 4096);
    text = (char *)malloc(f.size + 1);
    p += sprintf(p, "{\"version\": \"1.0\", \"truncation\": null, \"padding\": null, \"added_tokens\": [{\"id\": 50256, "
                 "\"content\": \"<|endoftext|>\", \"single_word\": false, \"lstrip\": false, \"rstrip\": false, "
                 "\"normalized\": false, \"special\": true}], \"normalizer\": null, \"pre_tokenizer\": {\"type\": "
                 "\"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": true, \"use_regex\": true}, "
                 "\"post_processor\": {\"type\": \"ByteLevel\", \"add_prefix_space\": true, \"trim_offsets\": false, "
                 "\"use_regex\": true}, \"decoder\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false, "
                 "\"trim_offsets\": true, \"use_regex\": true}, \"model\": {\"type\": \"BPE\", \"dropout\": null, "
                 "\"unk_token\": null, \"continuing_subword_prefix\": \"\", \"end_of_word_suffix\": \"\", \"fuse_unk\": "
                 "false, \"byte_fallback\": false, \"ignore_merges\": false, \"vocab\": ");
    memcpy(p, vf.data, vf.size);
    p += vf.size;
    p += sprintf(p, ", \"merges\": [");
    for (m = (const char *)mf.data; m < (const char *)mf.data + mf.size;) { /* each line after the first (#version) */
        const char *eol = (const char *)memchr(m, '\n', (size_t)((const char *)mf.data + mf.size - m)), *q;
        if (!eol) eol = (const char *)mf.data + mf.size;
        if (m != (const char *)mf.data && eol > m) {
            if (p[-1] != '[') *p++ = ',';
            *p++ = '"';
            for (q = m; q < eol; q++) {
                if (*q == '"' || *q == '\\') *p++ = '\\';
                *p++ = *q;
            }
            *p++ = '"';
        }
        m = eol + 1;
    }
    p += sprintf(p, "]}}");
    CHECK_MSG(ps_tokenizer_load_json_memory(&hf, json, (size_t)(p - json), &e) == PS_OK, e.msg);
    CHECK_MSG(ps_tokenizer_load(&ref, "weights", &e) == PS_OK, e.msg);
    CHECK(fixture_open(&j, &f) == 0);
    while (hf && ref && (r = fixture_next(&j)) == 1) {
        size_t len = 0, la, lb;
        long long special = 0;
        int *a, *b, na, nb, k;
        while ((r = ps__json_key(&j, key, sizeof key, NULL)) == 1) {
            if (!strcmp(key, "text")) r = ps__json_string(&j, text, f.size + 1, &len);
            else if (!strcmp(key, "special")) r = ps__json_int(&j, 0, 1, &special);
            else r = ps__json_skip(&j);
            if (r) break;
        }
        if (r) break;
        n_cases++;
        for (k = 0; k < 2; k++) {
            int flags = (special ? PS_ENCODE_SPECIAL : 0) | (k ? PS_ENCODE_BOS : 0); /* no BOS: GPT-2 adds none */
            a = tu_encode(hf, text, len, flags, &na);
            b = tu_encode(ref, text, len, flags, &nb);
            if ((!a || !b || !same(a, na, b, nb)) && bad++ < 5)
                printf("  GPT-2 tokenizer.json: \"%.60s\" encodes otherwise than vocab.json\n", text);
            if (a && b && !k) {
                char *x = (char *)malloc(4 * len + 64), *y = (char *)malloc(4 * len + 64);
                if (ps_decode(hf, a, na, x, 4 * len + 64, &la) || ps_decode(ref, b, nb, y, 4 * len + 64, &lb) || la != lb ||
                    memcmp(x, y, la))
                    if (bad++ < 5) printf("  GPT-2 tokenizer.json: \"%.60s\" decodes otherwise\n", text);
                free(x), free(y);
            }
            free(a), free(b);
        }
    }
    CHECK_MSG(r == 0 && fixture_close(&j) == 0, j.err);
    CHECK_MSG(n_cases > 2000 && bad == 0, "GPT-2's tokenizer.json == its vocab.json and merges.txt");
    printf("GPT-2's tokenizer.json layout: %d texts, %d disagreements with vocab.json + merges.txt\n", n_cases, bad);
    ps_tokenizer_free(hf), ps_tokenizer_free(ref);
    free(json), free(text);
    ps__file_close(&vf), ps__file_close(&mf), ps__file_close(&f);
}

/* a Split on a string, each behaviour, in Mistral's tokenizer.json (its null pre_tokenizer
   replaced, as tools/gen_split_fixtures.js did for Hugging Face's ids) */
static void test_split_string(void) {
    static const char *const behaviors[4] = {"Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous"};
    static char texts[300][256];
    static int want[300][256], n_want[300];
    ps__file base, fx;
    ps_error e;
    ps__json j;
    char key[32];
    int b, bad = 0, n_texts = 0, r, checked = 0;
    if (ps__file_read(&base, "weights/tiny-llama/tokenizer.json", 1, &e) ||
        ps__file_read(&fx, "tests/data/hf_tokenizers/split_string.json", 1, &e)) {
        CHECK_MSG(0, e.msg);
        return;
    }
    for (b = 0; b < 4; b++) {
        static const char null_pre[] = "\"pre_tokenizer\": null";
        const char *at = NULL, *d = (const char *)base.data;
        char *json = (char *)malloc(base.size + 256), *p = json;
        ps_tokenizer *t = NULL;
        size_t len, q;
        int i, n;
        for (q = 0; !at && q + sizeof null_pre - 1 <= base.size; q++) /* the mapped file has no closing NUL */
            if (!memcmp(d + q, null_pre, sizeof null_pre - 1)) at = d + q;
        if (!at) { CHECK_MSG(0, "no null pre_tokenizer"); free(json); break; }
        memcpy(p, base.data, (size_t)(at - (const char *)base.data));
        p += at - (const char *)base.data;
        p += sprintf(p, "\"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"String\": \"\xe2\x96\x81\"}, \"behavior\": \"%s\", "
                     "\"invert\": false}", behaviors[b]);
        at += sizeof null_pre - 1;
        memcpy(p, at, base.size - (size_t)(at - (const char *)base.data));
        p += base.size - (size_t)(at - (const char *)base.data);
        CHECK_MSG(ps_tokenizer_load_json_memory(&t, json, (size_t)(p - json), &e) == PS_OK, e.msg);
        /* the fixture: texts once, then this behaviour's ids */
        ps__json_init(&j, (const char *)fx.data, fx.size);
        r = ps__json_object(&j);
        while (!r && (r = ps__json_key(&j, key, sizeof key, NULL)) == 1) {
            if (!strcmp(key, "texts") && !n_texts) {
                r = ps__json_array(&j);
                while (!r && (r = ps__json_item(&j)) == 1 && n_texts < 300)
                    r = ps__json_string(&j, texts[n_texts++], sizeof texts[0], &len);
            } else if (!strcmp(key, "behaviors")) {
                r = ps__json_object(&j);
                while (!r && (r = ps__json_key(&j, key, sizeof key, NULL)) == 1) {
                    if (strcmp(key, behaviors[b])) { r = ps__json_skip(&j); continue; }
                    r = ps__json_array(&j);
                    for (i = 0; !r && (r = ps__json_item(&j)) == 1 && i < 300; i++) r = read_ids(&j, want[i], 256, &n_want[i]);
                }
            } else r = ps__json_skip(&j);
        }
        CHECK_MSG(r == 0 && n_texts == 300, "tests/data/hf_tokenizers/split_string.json");
        for (i = 0; t && i < n_texts; i++) {
            int *got = tu_encode(t, texts[i], strlen(texts[i]), 0, &n);
            checked++;
            if ((!got || !same(got, n, want[i], n_want[i])) && bad++ < 5)
                printf("  Split %s: \"%s\" encodes otherwise than Hugging Face\n", behaviors[b], texts[i]);
            free(got);
        }
        ps_tokenizer_free(t);
        free(json);
    }
    CHECK_MSG(bad == 0 && checked == 4 * 300, "Split on a string, every behaviour, as Hugging Face cuts");
    printf("Split on a string: %d texts x 4 behaviours, %d disagreements\n", n_texts, bad);
    ps__file_close(&base);
    ps__file_close(&fx);
}

/* conventions the fixtures do not spell out */
static void test_conventions(void) {
    ps_tokenizer *t;
    ps_error e;
    int *ids, n;
    size_t len;
    const char *b;
    if (ps_tokenizer_load(&t, "weights/tiny-llama", &e)) { CHECK_MSG(0, e.msg); return; }
    CHECK(ps_tokenizer_vocab_size(t) == 32000);
    /* the text of a token is what it adds inside a text: "\u2581the" is " the" */
    b = ps_token_bytes(t, 272, &len);
    CHECK(b && len == 4 && !memcmp(b, " the", 4));
    CHECK(ps_token_id(t, " the", 4) == 272);
    b = ps_token_bytes(t, 16, &len); /* <0x0D> */
    CHECK(b && len == 1 && b[0] == '\r');
    /* invalid UTF-8 is refused: this format tokenizes Unicode text */
    CHECK(ps_encode(t, "a\xff", 2, 0, NULL, 0, &n) == PS_ERR_FORMAT);
    ids = tu_encode(t, "", 0, PS_ENCODE_BOS, &n);
    CHECK(ids && n == 1 && ids[0] == 1);
    free(ids);
    ps_tokenizer_free(t);
}

/* a tokenizer.json around a tiny model; what replaces "@" is the part under test */
static ps_status load_variant(const char *part, ps_error *e) {
    char json[2048];
    ps_tokenizer *t = NULL;
    ps_status s;
    snprintf(json, sizeof json,
             "{\"version\": \"1.0\", \"truncation\": null, \"padding\": null, \"added_tokens\": "
             "[{\"id\": 0, \"content\": \"<unk>\", \"special\": true}], \"normalizer\": null, "
             "\"pre_tokenizer\": null, \"post_processor\": null, \"decoder\": null, %s}", part);
    s = ps_tokenizer_load_json_memory(&t, json, strlen(json), e);
    ps_tokenizer_free(t);
    return s;
}

#define MODEL(vocab, merges, extra) "\"model\": {\"type\": \"BPE\", \"unk_token\": \"<unk>\", \"vocab\": " vocab ", \"merges\": " merges extra "}"
#define VOCAB "{\"<unk>\": 0, \"a\": 1, \"b\": 2, \"ab\": 3}"

static void expect_error(const char *part, const char *what) {
    ps_error e;
    ps_status s = load_variant(part, &e);
    CHECK_MSG(s == PS_ERR_FORMAT && strstr(e.msg, what), e.msg);
    if (s != PS_ERR_FORMAT || !strstr(e.msg, what)) printf("  expected \"%s\", got \"%s\"\n", what, e.msg);
}

static void test_loader_errors(void) {
    ps_error e;
    ps_tokenizer *t = NULL;
    CHECK(ps_tokenizer_load_json_memory(&t, "{\"model\": \"\xff\"}", 14, &e) == PS_ERR_FORMAT && !t &&
          strstr(e.msg, "invalid UTF-8 at byte 11"));
    CHECK(ps_tokenizer_load_json(&t, "tests/data/no_such.json", &e) == PS_ERR_IO && strstr(e.msg, "no_such.json"));
    CHECK_MSG(load_variant(MODEL(VOCAB, "[\"a b\"]", ""), &e) == PS_OK, e.msg);
    CHECK_MSG(load_variant(MODEL(VOCAB, "[[\"a\", \"b\"]]", ""), &e) == PS_OK, e.msg);
    /* a key longer than any the loader knows is skipped like any unknown one */
    CHECK_MSG(load_variant(MODEL(VOCAB, "[]", ", \"a_key_of_more_than_sixty_four_bytes_that_no_version_of_the_format_has\": 1"),
                           &e) == PS_OK, e.msg);
    expect_error(MODEL(VOCAB, "[\"a c\"]", ""), "\"c\" is not in the vocabulary");
    expect_error(MODEL(VOCAB, "[\"ab\"]", ""), "not two tokens");
    expect_error(MODEL(VOCAB, "[[\"a\"]]", ""), "merges");
    expect_error(MODEL("{\"<unk>\": 0, \"a\": 1, \"b\": 5}", "[]", ""), "ids are not 0..");
    expect_error(MODEL("{\"<unk>\": 0, \"a\": 1, \"b\": 1}", "[]", ""), "ids are not 0..2");
    expect_error("\"model\": {\"type\": \"Unigram\", \"vocab\": []}", "model type Unigram is not supported");
    expect_error(MODEL(VOCAB, "[]", ", \"continuing_subword_prefix\": \"##\""), "continuing_subword_prefix is not supported");
    expect_error("\"model\": {\"type\": \"BPE\", \"unk_token\": \"<zz>\", \"vocab\": " VOCAB ", \"merges\": []}",
                 "unk_token is not in the vocabulary");
    expect_error(MODEL(VOCAB, "[]", "") ", \"pre_tokenizer\": {\"type\": \"Metaspace\"}", "Metaspace pre_tokenizer is not supported");
    expect_error(MODEL(VOCAB, "[]", "") ", \"pre_tokenizer\": {\"type\": \"ByteLevel\"}", "ByteLevel with add_prefix_space");
    expect_error(MODEL(VOCAB, "[]", "") ", \"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"\\\\s+\"}, "
                 "\"behavior\": \"Isolated\", \"invert\": false}", "pattern is not one this library implements");
    { /* Llama 3's own pattern, written as JSON, with a behaviour other than Isolated */
        char part[1024];
        const char *p;
        size_t k = (size_t)snprintf(part, sizeof part, "%s", MODEL(VOCAB, "[]", "") ", \"pre_tokenizer\": {\"type\": "
                                                                  "\"Split\", \"pattern\": {\"Regex\": \"");
        for (p = PS__LLAMA3_PATTERN; *p && k + 8 < sizeof part; p++) {
            if (*p == '\\') part[k++] = '\\';
            part[k++] = *p;
        }
        snprintf(part + k, sizeof part - k, "\"}, \"behavior\": \"Removed\", \"invert\": false}");
        expect_error(part, "the Split behavior \"Removed\" is not supported");
    }
    expect_error(MODEL(VOCAB, "[", ""), "tokenizer.json: ");
    expect_error("\"model\": null", "model");
    expect_error(MODEL(VOCAB, "[]", "") ", \"decoder\": {\"type\": \"WordPiece\"}", "WordPiece decoder is not supported");
    expect_error(MODEL(VOCAB, "[]", "") ", \"normalizer\": {\"type\": \"NFKC\"}", "NFKC normalizer is not supported");
    expect_error(MODEL(VOCAB, "[]", "") ", \"post_processor\": {\"type\": \"BertProcessing\"}", "BertProcessing post_processor");
    expect_error(MODEL(VOCAB, "[]", "") ", \"added_tokens\": [{\"id\": 0, \"content\": \"<unk>\", \"lstrip\": true}]",
                 "lstrip is not supported");
    expect_error(MODEL(VOCAB, "[]", "") ", \"added_tokens\": [{\"id\": 1, \"content\": \"zz\"}]", "is another token");
    expect_error(MODEL(VOCAB, "[]", "") ", \"added_tokens\": [{\"id\": 0, \"content\": \"<unk>\"}, {\"id\": 0, \"content\": \"<unk>\"}]",
                 "added token 0 twice");
}

/* steps that grow the text are measured, not bounded: two Replace normalizers of 1 -> 15
   bytes make 225 a's of each */
static void test_growing_edits(void) {
    static const char json[] =
        "{\"normalizer\": {\"type\": \"Sequence\", \"normalizers\": ["
        "{\"type\": \"Replace\", \"pattern\": {\"String\": \"a\"}, \"content\": \"aaaaaaaaaaaaaaa\"},"
        "{\"type\": \"Replace\", \"pattern\": {\"String\": \"a\"}, \"content\": \"aaaaaaaaaaaaaaa\"}]},"
        "\"decoder\": {\"type\": \"Sequence\", \"decoders\": [{\"type\": \"Fuse\"},"
        "{\"type\": \"Replace\", \"pattern\": {\"String\": \"b\"}, \"content\": \"ccccccccccccccc\"},"
        "{\"type\": \"Replace\", \"pattern\": {\"String\": \"c\"}, \"content\": \"ddddddddddddddd\"}]},"
        "\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": []}}";
    ps_tokenizer *t;
    ps_error e;
    int *ids, n, i, all_a = 1, b[3] = {1, 1, 1};
    size_t len = 0;
    if (ps_tokenizer_load_json_memory(&t, json, sizeof json - 1, &e)) { CHECK_MSG(0, e.msg); return; }
    ids = tu_encode(t, "aaaa", 4, 0, &n);
    for (i = 0; ids && i < n; i++) all_a &= ids[i] == 0;
    CHECK(ids && n == 4 * 225 && all_a);
    CHECK(ps_decode(t, b, 3, NULL, 0, &len) == PS_ERR_RANGE && len == 3 * 225);
    free(ids);
    ps_tokenizer_free(t);
}

/* a word as it reads inside a text: the Mistral tokenizer prepends its space marker to every
   text, so " Warsaw" alone is "Warsaw" alone; GPT-2 keeps the space. ps_find_text uses it. */
static void test_pieces(void) {
    ps_tokenizer *t, *g;
    ps_error e;
    int n, m, k, *sent, *word, *alone, piece[16], at;
    const char *text = "Amazon's former CEO attended Oscars";
    if (ps_tokenizer_load(&t, "weights/tiny-llama", &e) || ps_tokenizer_load(&g, "weights", &e)) { CHECK_MSG(0, e.msg); return; }
    sent = tu_encode(t, text, strlen(text), 0, &n);
    alone = tu_encode(t, "CEO", 3, 0, &m);
    CHECK(ps_encode_piece(t, " CEO", 4, piece, 16, &k) == PS_OK && k == m && memcmp(piece, alone, (size_t)m * sizeof(int)) == 0);
    at = ps_find_text(t, sent, n, " CEO");
    CHECK_MSG(at >= 0 && ps_find_last(sent, n, piece, k) + k - 1 == at, "\" CEO\" is found in a SentencePiece text");
    word = tu_encode(t, " CEO", 4, 0, &m);
    CHECK(ps_find_last(sent, n, word, m) < 0); /* plain ps_encode gives it a second space marker */
    free(sent), free(alone), free(word);
    sent = tu_encode(g, text, strlen(text), 0, &n);
    CHECK(ps_encode_piece(g, " CEO", 4, piece, 16, &k) == PS_OK && k == 1 && piece[0] == 6123); /* GPT-2's " CEO" */
    CHECK(ps_find_text(g, sent, n, " CEO") == 3);
    free(sent);
    ps_tokenizer_free(t);
    ps_tokenizer_free(g);
}

int main(void) {
    test_fixture("weights/tiny-llama/tokenizer.json", "tests/data/hf_tokenizers/mistral.json");
    test_fixture("tests/data/hf_tokenizers/bytelevel/tokenizer.json", "tests/data/hf_tokenizers/bytelevel.json");
    test_gpt2_layout();
    test_split_string();
    test_conventions();
    test_loader_errors();
    test_growing_edits();
    test_pieces();
    return test_report("test_hf_tokenizer");
}
