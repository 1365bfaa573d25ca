/* Tokenizer tests: GPT-2's BPE against tiktoken ("gpt2"), whose output for thousands of
   texts and the bytes of every token are in tests/data (tools/gen_tokenizer_fixtures.js).
   Then properties no fixture can hold: the round trip on random bytes (invalid UTF-8
   included), the heap merge against a plain quadratic one, the size protocols, the
   loader's errors, and speed on a 1 MB piece. Run from the repository root. */
#define PATCHSCOPE_IMPLEMENTATION
#include "../patchscope.h"
#include "testutil.h"
#include "fixture.h"
#include <time.h>

static ps_tokenizer *tok;

/* --- small helpers --------------------------------------------------------------------- */

static unsigned long long rng_state = 0x9E3779B97F4A7C15ull;
static unsigned rng(void) { /* xorshift64*: seeded, the same strings on every run */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (unsigned)((rng_state * 2685821657736338717ull) >> 32);
}

static int *encode(const char *text, size_t len, int flags, int *n) { return tu_encode(tok, text, len, flags, n); }

/* decode(ids) == text exactly */
static int decodes_to(const int *ids, int n, const char *text, size_t len) {
    size_t got = 0;
    char *buf = (char *)malloc(len + 1);
    int ok = ps_decode(tok, ids, n, buf, len, &got) == PS_OK && got == len && memcmp(buf, text, len) == 0;
    free(buf);
    return ok;
}

static void print_escaped(const char *s, size_t n) {
    size_t i;
    for (i = 0; i < n && i < 120; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7F && c != '\\') putchar(c);
        else printf("\\x%02X", c);
    }
    if (n > 120) printf("... (%lu bytes)", (unsigned long)n);
}

/* --- 1. fixtures: tiktoken's ids for each text ------------------------------------------ */

static void test_fixture_cases(void) {
    ps__file f;
    ps_error e;
    ps__json j;
    char key[16], *text;
    int *want, r, n_cases = 0, n_bad = 0;
    if (ps__file_read(&f, "tests/data/tokenizer_cases.json", 1, &e)) {
        CHECK_MSG(0, e.msg);
        return;
    }
    text = (char *)malloc(f.size + 1);
    want = (int *)malloc(f.size * sizeof(int) + 1);
    CHECK(fixture_open(&j, &f) == 0);
    while ((r = fixture_next(&j)) == 1) {
        size_t len = 0;
        int n_want = 0, special = 0, n_got = 0, *got;
        long long v;
        while ((r = ps__json_key(&j, key, sizeof key, NULL)) == 1) {
            if (!strcmp(key, "text")) r = ps__json_string(&j, text, f.size + 1, &len);
            else if (!strcmp(key, "special")) r = ps__json_int(&j, 0, 1, &v), special = (int)v;
            else if (!strcmp(key, "ids")) {
                r = ps__json_array(&j);
                while (!r && (r = ps__json_item(&j)) == 1) {
                    r = ps__json_int(&j, 0, 50256, &v);
                    want[n_want++] = (int)v;
                }
            } else r = ps__json_skip(&j);
            if (r < 0) break;
        }
        if (r < 0) break;
        n_cases++;
        got = encode(text, len, special ? PS_ENCODE_SPECIAL : 0, &n_got);
        if (!got || n_got != n_want || memcmp(got, want, (size_t)n_want * sizeof(int)) != 0) {
            int k = 0;
            while (got && k < n_got && k < n_want && got[k] == want[k]) k++;
            if (++n_bad <= 5) {
                printf("FAIL case %d (%s): first difference at id %d: got %d, want %d; text \"", n_cases - 1,
                       special ? "special" : "ordinary", k, got && k < n_got ? got[k] : -1,
                       k < n_want ? want[k] : -1);
                print_escaped(text, len);
                printf("\"\n");
            }
        }
        CHECK(decodes_to(want, n_want, text, len)); /* tiktoken's ids decode to the text */
        free(got);
    }
    CHECK_MSG(r == 0 && fixture_close(&j) == 0, j.err);
    CHECK_MSG(n_cases >= 2000, "at least 2000 fixture texts");
    CHECK_MSG(n_bad == 0, "every fixture text encodes as tiktoken does");
    printf("fixtures: %d texts, %d differ from tiktoken\n", n_cases, n_bad);
    free(text);
    free(want);
    ps__file_close(&f);
}

/* --- 2. the bytes of every token ------------------------------------------------------- */

static void test_token_bytes(void) {
    ps__file f;
    ps_error e;
    size_t at = 0, len;
    int id, bad = 0;
    if (ps__file_read(&f, "tests/data/gpt2_token_bytes.bin", 1, &e)) {
        CHECK_MSG(0, e.msg);
        return;
    }
    for (id = 0; id < 50257 && at < f.size; id++) {
        size_t n = f.data[at];
        const char *want = (const char *)f.data + at + 1, *got = ps_token_bytes(tok, id, &len);
        if (!got || len != n || memcmp(got, want, n) != 0 || !decodes_to(&id, 1, want, n) ||
            ps_token_id(tok, want, n) != id) {
            if (++bad <= 5) printf("FAIL token %d differs from tiktoken's bytes\n", id);
        }
        at += 1 + n;
    }
    CHECK_MSG(id == 50257 && at == f.size, "gpt2_token_bytes.bin holds 50257 tokens");
    CHECK_MSG(bad == 0, "every token's bytes, decode and id lookup agree with tiktoken");
    CHECK(ps_tokenizer_vocab_size(tok) == 50257);
    ps__file_close(&f);
}

/* --- 3. any bytes round-trip ------------------------------------------------------------ */

/* a random string mixing valid UTF-8 of every length with each kind of invalid sequence */
static size_t random_bytes(char *s, size_t cap) {
    static const char *bits[] = {
        "\x80", "\xBF", "\xC0\x80", "\xC1\xBF", "\xE0\x80\x80", "\xE0\x9F\xBF", "\xED\xA0\x80",
        "\xED\xBF\xBF", "\xF0\x80\x80\x80", "\xF4\x90\x80\x80", "\xF5\x80\x80\x80", "\xFF", "\xFE",
        "\xC3", "\xE4\xB8", "\xF0\x9F\x98", "\xC3\xA9", "\xE4\xB8\x80", "\xF0\x9F\x98\x80", "\xC2\xA0",
        "\xE3\x80\x80", "\xC2\x85", "\xCC\x81", "\xEF\xBB\xBF", " ", "  ", "\n", "\r\n", "\t", "'s",
        "'", "'LL", "a", "Zq", "7", "123", "!", ".", "<|endoftext|>", "\0", "\xE2\x80\xA8"};
    size_t n = 0, target = rng() % cap;
    while (n < target) {
        unsigned r = rng() % 4;
        if (r == 0) s[n++] = (char)(rng() & 0xFF); /* any byte at all */
        else {
            const char *b = bits[rng() % (sizeof bits / sizeof bits[0])];
            size_t k = b[0] ? strlen(b) : 1;
            if (n + k > target) break;
            memcpy(s + n, b, k);
            n += k;
        }
    }
    return n;
}

static void test_round_trip(void) {
    char s[600];
    int i, bad = 0;
    for (i = 0; i < 20000; i++) {
        size_t len = random_bytes(s, i < 10000 ? 40 : sizeof s);
        int n, k, *ids = encode(s, len, i & 1 ? PS_ENCODE_SPECIAL : 0, &n);
        int in_range = ids != NULL;
        for (k = 0; ids && k < n; k++) in_range &= ids[k] >= 0 && ids[k] < 50257;
        if (!in_range || !decodes_to(ids, n, s, len)) {
            if (++bad <= 5) {
                printf("FAIL round trip of \"");
                print_escaped(s, len);
                printf("\"\n");
            }
        }
        free(ids);
    }
    CHECK_MSG(bad == 0, "decode(encode(x)) == x for 20000 random byte strings");

    /* invalid bytes are one-byte symbols: they neither join letters nor break "other" runs */
    {
        int n, *ids = encode("x\x80y", 3, 0, &n);
        CHECK(ids && n == 3 && ids[0] == ps_token_id(tok, "x", 1) && ids[1] == ps_token_id(tok, "\x80", 1) &&
              ids[2] == ps_token_id(tok, "y", 1));
        free(ids);
        ids = encode(" \xC3", 2, 0, &n); /* a cut-off "é" after a space: " ?[^\s\p{L}\p{N}]+" */
        CHECK(ids && n == 1 && ids[0] == ps_token_id(tok, " \xC3", 2));
        free(ids);
        ids = encode("a\0b", 3, 0, &n);
        CHECK(ids && n == 3 && ids[1] == ps_token_id(tok, "\0", 1));
        free(ids);
        ids = encode("", 0, 0, &n);
        CHECK(ids && n == 0);
        free(ids);
    }
}

/* --- 4. the heap merge against tiktoken's plain loop ------------------------------------ */

/* tiktoken's algorithm written plainly: rescan every pair after every merge. */
static int naive_bpe(const char *p, int n, int *out) {
    int *start = (int *)malloc(((size_t)n + 1) * sizeof(int)), parts = n, i, k;
    for (i = 0; i <= n; i++) start[i] = i;
    for (;;) {
        int best = -1, best_rank = 0x7FFFFFFF;
        for (i = 0; i + 1 < parts; i++) {
            int r = ps_token_id(tok, p + start[i], (size_t)(start[i + 2] - start[i]));
            if (r >= 0 && r < best_rank) { best_rank = r; best = i; }
        }
        if (best < 0) break;
        memmove(start + best + 1, start + best + 2, (size_t)(parts - best - 1) * sizeof(int));
        parts--;
    }
    for (k = 0; k < parts; k++) out[k] = ps_token_id(tok, p + start[k], (size_t)(start[k + 1] - start[k]));
    free(start);
    return parts;
}

static void test_long_pieces(void) {
    static const char *alphabets[] = {"abcdefghijklmnopqrstuvwxyz", "ab", "a", "etaoinshrdlu", "0123456789",
                                      "!?.,;:-=+*/#", "\xC3\xA9\xC3\xA8\xC3\xA0"};
    char *s = (char *)malloc(3001);
    int *want = (int *)malloc(3001 * sizeof(int)), i, bad = 0;
    for (i = 0; i < 42; i++) {
        const char *a = alphabets[i % 7];
        size_t na = strlen(a), len = 0, target = 50 + rng() % 2950;
        int n_want, n, *got;
        while (len < target) {
            size_t at = rng() % na;
            if (i % 7 == 6) at &= ~(size_t)1; /* whole 2-byte characters */
            s[len++] = a[at];
            if (i % 7 == 6) s[len++] = a[at + 1];
        }
        n_want = naive_bpe(s, (int)len, want);
        got = encode(s, len, 0, &n);
        if (ps__piece((const unsigned char *)s, len) != len) { bad++; printf("FAIL not one piece\n"); }
        if (!got || n != n_want || memcmp(got, want, (size_t)n * sizeof(int)) != 0) {
            if (++bad <= 3) printf("FAIL heap merge differs from the plain one on a %lu-byte piece\n", (unsigned long)len);
        }
        free(got);
    }
    CHECK_MSG(bad == 0, "the heap merge gives tiktoken's merges on long pieces");
    free(s);
    free(want);
}

/* --- 5. size protocols and small API ------------------------------------------------------ */

static void test_protocols(void) {
    const char *text = "Hello world, it's 2024!";
    int ids[64], n = -1, k;
    char out[64];
    size_t len = 99;
    /* encode: learn the size, then a buffer one short, then an exact one */
    CHECK(ps_encode(tok, text, strlen(text), 0, NULL, 0, &n) == PS_ERR_RANGE && n == 7);
    for (k = 0; k < 64; k++) ids[k] = -7;
    CHECK(ps_encode(tok, text, strlen(text), 0, ids, 6, &n) == PS_ERR_RANGE && n == 7 && ids[6] == -7);
    CHECK(ids[0] == 15496 && ids[4] == 338 && ids[5] == 48609);
    CHECK(ps_encode(tok, text, strlen(text), 0, ids, 7, &n) == PS_OK && n == 7 && ids[6] == 0 && ids[7] == -7);
    CHECK(ps_encode(tok, "", 0, 0, NULL, 0, &n) == PS_OK && n == 0);
    CHECK(ps_encode(tok, NULL, 0, 0, NULL, 0, &n) == PS_OK && n == 0);
    CHECK(ps_encode(tok, text, 5, 0, ids, 64, NULL) == PS_OK && ids[0] == 15496);
    CHECK(ps_encode(NULL, text, 5, 0, ids, 64, &n) == PS_ERR_ARG);
    CHECK(ps_encode(tok, NULL, 5, 0, ids, 64, &n) == PS_ERR_ARG);
    CHECK(ps_encode(tok, text, 5, 0, NULL, 4, &n) == PS_ERR_ARG);
    CHECK(ps_encode(tok, text, 5, 0, ids, -1, &n) == PS_ERR_ARG);
    CHECK(ps_encode(tok, text, 5, 4, ids, 64, &n) == PS_ERR_ARG);

    /* decode: the same protocol, and a bad id anywhere fails the whole call */
    CHECK(ps_encode(tok, text, strlen(text), 0, ids, 64, &n) == PS_OK);
    CHECK(ps_decode(tok, ids, n, NULL, 0, &len) == PS_ERR_RANGE && len == strlen(text));
    memset(out, '#', sizeof out);
    CHECK(ps_decode(tok, ids, n, out, 10, &len) == PS_ERR_RANGE && len == strlen(text) &&
          memcmp(out, text, 10) == 0 && out[10] == '#');
    CHECK(ps_decode(tok, ids, n, out, strlen(text), &len) == PS_OK && len == strlen(text) &&
          memcmp(out, text, len) == 0 && out[len] == '#');
    CHECK(ps_decode(tok, ids, 0, NULL, 0, &len) == PS_OK && len == 0);
    ids[3] = 50257;
    CHECK(ps_decode(tok, ids, n, out, sizeof out, &len) == PS_ERR_RANGE && len == 0);
    ids[3] = -1;
    CHECK(ps_decode(tok, ids, n, out, sizeof out, &len) == PS_ERR_RANGE && len == 0);
    CHECK(ps_decode(tok, ids, -1, out, sizeof out, &len) == PS_ERR_ARG);
    CHECK(ps_decode(NULL, ids, 1, out, sizeof out, &len) == PS_ERR_ARG);

    /* single tokens */
    CHECK(ps_token_id(tok, " CEO", 4) == 6123);
    CHECK(ps_token_id(tok, " Poland", 7) == 12873);
    CHECK(ps_token_id(tok, "<|endoftext|>", 13) == 50256);
    CHECK(ps_token_id(tok, "!", 1) == 0);
    CHECK(ps_token_id(tok, " Polandx", 8) == -1);
    CHECK(ps_token_id(tok, "", 0) == -1);
    CHECK(ps_token_id(NULL, "a", 1) == -1);
    {
        size_t l = 7;
        const char *b = ps_token_bytes(tok, 6123, &l);
        CHECK(b && l == 4 && memcmp(b, " CEO", 4) == 0);
        CHECK(ps_token_bytes(tok, 50257, &l) == NULL && l == 0);
        CHECK(ps_token_bytes(tok, -1, NULL) == NULL);
        b = ps_token_bytes(tok, 50256, &l);
        CHECK(b && l == 13 && memcmp(b, "<|endoftext|>", 13) == 0);
    }

    /* the example prompt of the header's documentation */
    {
        static const int want[] = {464, 3139, 286, 12873, 318};
        int got[8];
        CHECK(ps_encode(tok, "The capital of Poland is", 24, 0, got, 8, &n) == PS_OK && n == 5 &&
              memcmp(got, want, sizeof want) == 0);
    }

    /* the last occurrence of a token string */
    {
        static const int seq[] = {5, 1, 2, 3, 1, 2, 9, 1, 1, 1};
        static const int p12[] = {1, 2}, p1[] = {1}, p11[] = {1, 1}, p9[] = {9, 1, 1, 1}, p7[] = {7};
        CHECK(ps_find_last(seq, 10, p12, 2) == 4);
        CHECK(ps_find_last(seq, 10, p1, 1) == 9);
        CHECK(ps_find_last(seq, 10, p11, 2) == 8); /* overlapping occurrences */
        CHECK(ps_find_last(seq, 10, p9, 4) == 6);  /* at the very end */
        CHECK(ps_find_last(seq, 10, seq, 10) == 0);
        CHECK(ps_find_last(seq, 1, seq, 1) == 0);
        CHECK(ps_find_last(seq, 10, p7, 1) == -1);
        CHECK(ps_find_last(seq, 3, p9, 4) == -1); /* longer than the sequence */
        CHECK(ps_find_last(seq, 10, p1, 0) == -1);
        CHECK(ps_find_last(NULL, 0, p1, 1) == -1);
    }

    /* "<|endoftext|>" is text unless asked for */
    {
        const char *s = "a<|endoftext|>b";
        int got[16];
        CHECK(ps_encode(tok, s, strlen(s), PS_ENCODE_SPECIAL, got, 16, &n) == PS_OK && n == 3 &&
              got[0] == 64 && got[1] == 50256 && got[2] == 65);
        CHECK(ps_encode(tok, s, strlen(s), 0, got, 16, &n) == PS_OK && n == 9);
        for (k = 0; k < n; k++) CHECK(got[k] != 50256);
        CHECK(ps_encode(tok, "<|endoftext|", 12, PS_ENCODE_SPECIAL, got, 16, &n) == PS_OK && n == 6);
    }
}

/* --- 6. Unicode classes ------------------------------------------------------------------ */

static void test_classes(void) {
    unsigned c;
    int bad = 0;
    for (c = 0; c < 128; c++) bad += ps__ascii_class[c] != ps__unicode_class(c);
    CHECK_MSG(bad == 0, "the ASCII table agrees with the generated tables");
    CHECK(ps__unicode_class(0x00A0) == PS__SPACE);  /* no-break space */
    CHECK(ps__unicode_class(0x0085) == PS__SPACE);  /* next line */
    CHECK(ps__unicode_class(0x3000) == PS__SPACE);  /* ideographic space */
    CHECK(ps__unicode_class(0x2028) == PS__SPACE);
    CHECK(ps__unicode_class(0x200B) == PS__OTHER);  /* zero width space is not White_Space */
    CHECK(ps__unicode_class(0x180E) == PS__OTHER);  /* nor the Mongolian vowel separator since 6.3 */
    CHECK(ps__unicode_class(0xFEFF) == PS__OTHER);
    CHECK(ps__unicode_class(0x0301) == PS__OTHER);  /* combining marks are neither L nor N */
    CHECK(ps__unicode_class(0x093F) == PS__OTHER);  /* Devanagari vowel sign (Mc) */
    CHECK(ps__unicode_class(0x00BD) == PS__NUMBER); /* 1/2 (No) */
    CHECK(ps__unicode_class(0x216B) == PS__NUMBER); /* Roman numeral twelve (Nl) */
    CHECK(ps__unicode_class(0x0663) == PS__NUMBER); /* Arabic-Indic three */
    CHECK(ps__unicode_class(0x4E00) == PS__LETTER); /* CJK one is a letter, not a number */
    CHECK(ps__unicode_class(0x1D400) == PS__LETTER);
    CHECK(ps__unicode_class(0x02B0) == PS__LETTER); /* modifier letter (Lm) */
    CHECK(ps__unicode_class(0x1F600) == PS__OTHER);
    CHECK(ps__unicode_class(0x10FFFF) == PS__OTHER);
    CHECK(ps__unicode_class(0x0378) == PS__OTHER);  /* unassigned */
}

/* --- 7. loader errors -------------------------------------------------------------------- */

typedef struct blob { char *data; size_t size; } blob;

static blob slurp(const char *path) {
    blob b = {NULL, 0};
    ps__file f;
    ps_error e;
    if (ps__file_read(&f, path, 0, &e) == PS_OK) {
        b.data = (char *)malloc(f.size + 64);
        memcpy(b.data, f.data, f.size);
        b.size = f.size;
        ps__file_close(&f);
    }
    return b;
}

/* a copy of b with the first occurrence of from replaced by to */
static blob replaced(blob b, const char *from, const char *to) {
    blob r;
    size_t nf = strlen(from), nt = strlen(to), at = 0;
    while (at + nf <= b.size && memcmp(b.data + at, from, nf) != 0) at++;
    r.size = b.size - nf + nt;
    r.data = (char *)malloc(r.size + 1);
    memcpy(r.data, b.data, at);
    memcpy(r.data + at, to, nt);
    memcpy(r.data + at + nt, b.data + at + nf, b.size - at - nf);
    return r;
}

/* load from memory and expect code with every needle in the message */
static void expect_error(blob vocab, blob merges, ps_status code, const char *n1, const char *n2, int line) {
    ps_tokenizer *t = (ps_tokenizer *)&t;
    ps_error e;
    /* exact-size copies, so a sanitizer sees any read past the end */
    char *v = (char *)malloc(vocab.size + !vocab.size), *m = (char *)malloc(merges.size + !merges.size);
    ps_status s;
    int ok;
    memcpy(v, vocab.data, vocab.size);
    memcpy(m, merges.data, merges.size);
    s = ps_tokenizer_load_memory(&t, v, vocab.size, m, merges.size, &e);
    ok = s == code && e.code == code && t == NULL && strstr(e.msg, n1) && (!n2 || strstr(e.msg, n2));
    free(v);
    free(m);
    tu_checks++;
    if (!ok) {
        tu_failures++;
        printf("FAIL %s:%d: expected %s with \"%s\"%s%s%s, got %s: %s\n", __FILE__, line, ps_status_name(code), n1,
               n2 ? " and \"" : "", n2 ? n2 : "", n2 ? "\"" : "", ps_status_name(s), e.msg);
    }
    if (s == PS_OK) ps_tokenizer_free(t);
}
#define EXPECT_ERROR(v, m, code, n1, n2) expect_error(v, m, code, n1, n2, __LINE__)

static void test_loader_errors(void) {
    blob v = slurp("weights/vocab.json"), m = slurp("weights/merges.txt"), x, y;
    ps_tokenizer *t = NULL;
    ps_error e;
    if (!v.data || !m.data) { CHECK_MSG(0, "weights/vocab.json and merges.txt"); return; }

    /* the same files from memory load, and give the same ids */
    CHECK(ps_tokenizer_load_memory(&t, v.data, v.size, m.data, m.size, &e) == PS_OK && e.code == PS_OK);
    if (t) {
        int a[8], b[8], na = 0, nb = 0;
        CHECK(ps_encode(t, " hello world", 12, 0, a, 8, &na) == PS_OK);
        CHECK(ps_encode(tok, " hello world", 12, 0, b, 8, &nb) == PS_OK && na == nb && !memcmp(a, b, 8));
        ps_tokenizer_free(t);
    }
    ps_tokenizer_free(NULL);

    /* files */
    CHECK(ps_tokenizer_load(&t, "tests/data/no_such_folder", &e) == PS_ERR_IO && t == NULL &&
          strstr(e.msg, "no tokenizer in tests/data/no_such_folder") && strstr(e.msg, "vocab.json"));
    CHECK(ps_tokenizer_load_files(&t, "weights/vocab.json", "weights/no_merges.txt", &e) == PS_ERR_IO &&
          strstr(e.msg, "weights/no_merges.txt"));
    CHECK(ps_tokenizer_load_files(&t, "weights/nothing.json", "weights/merges.txt", &e) == PS_ERR_IO &&
          strstr(e.msg, "weights/nothing.json"));
    CHECK(ps_tokenizer_load_files(&t, "weights/merges.txt", "weights/merges.txt", &e) == PS_ERR_FORMAT &&
          strstr(e.msg, "weights/merges.txt: expected '{' at byte 0"));
    CHECK(ps_tokenizer_load(NULL, "weights", &e) == PS_ERR_ARG);
    CHECK(ps_tokenizer_load(&t, NULL, &e) == PS_ERR_ARG);

    /* vocab.json */
    x = v;
    x.size = v.size / 2; /* truncated */
    EXPECT_ERROR(x, m, PS_ERR_FORMAT, "vocab.json: ", "at byte");
    x.size = v.size - 3; /* cut inside the last member */
    EXPECT_ERROR(x, m, PS_ERR_FORMAT, "vocab.json: ", "at byte");
    x.size = 0;
    EXPECT_ERROR(x, m, PS_ERR_FORMAT, "vocab.json: expected '{' at byte 0", NULL);
    x = replaced(v, "\"!\": 0", "\"!\": 1");
    EXPECT_ERROR(x, m, PS_ERR_FORMAT, "vocab.json: id 1 is given to two tokens", NULL);
    free(x.data);
    x = replaced(v, "\"<|endoftext|>\": 50256", "\"<|endoftext|>\": 50257");
    EXPECT_ERROR(x, m, PS_ERR_FORMAT, "id 50257 is out of range", NULL);
    free(x.data);
    x = replaced(v, "\"!\": 0", "\"\\u4e00\": 0");
    EXPECT_ERROR(x, m, PS_ERR_FORMAT, "vocab.json: token 0 has character U+4E00, outside GPT-2's byte alphabet", NULL);
    free(x.data);
    x = replaced(v, "\"!\": 0", "\"\\ud800\": 0");
    EXPECT_ERROR(x, m, PS_ERR_FORMAT, "lone high surrogate", NULL);
    free(x.data);
    x = replaced(v, "\"!\": 0", "\"\\\"\": 0"); /* the bytes of token 1 twice */
    EXPECT_ERROR(x, m, PS_ERR_FORMAT, "tokens 0 and 1 have the same bytes", NULL);
    free(x.data);
    x = replaced(v, "\"!\": 0", "\"!\": 0.5");
    EXPECT_ERROR(x, m, PS_ERR_FORMAT, "expected an integer", NULL);
    free(x.data);
    x = replaced(v, "\"<|endoftext|>\"", "\"<|endoftext|!\"");
    EXPECT_ERROR(x, m, PS_ERR_FORMAT, "the last token (id 50256) is not <|endoftext|>", NULL);
    free(x.data);

    /* merges.txt */
    y = replaced(m, "\n\xC4\xA0 t\n", "\n\xC4\xA0t\n"); /* line 2: one token */
    EXPECT_ERROR(v, y, PS_ERR_FORMAT, "merges.txt line 2: expected two tokens separated by one space", NULL);
    free(y.data);
    y = replaced(m, "\n\xC4\xA0 t\n", "\n\xC4\xA0 t x\n");
    EXPECT_ERROR(v, y, PS_ERR_FORMAT, "merges.txt line 2: expected two tokens", NULL);
    free(y.data);
    y = replaced(m, "\n\xC4\xA0 t\n", "\n\n");
    EXPECT_ERROR(v, y, PS_ERR_FORMAT, "merges.txt line 2: expected two tokens", NULL);
    free(y.data);
    y = replaced(m, "\n\xC4\xA0 t\n\xC4\xA0 a\n", "\n\xC4\xA0 a\n\xC4\xA0 t\n"); /* swapped: ranks disagree */
    EXPECT_ERROR(v, y, PS_ERR_FORMAT, "merges.txt line 2: merge 0", "do not belong together");
    free(y.data);
    y = replaced(m, "\n\xC4\xA0 t\n", "\n\xC4\xA0 qqqqqqqqqqqq\n");
    EXPECT_ERROR(v, y, PS_ERR_FORMAT, "merges.txt line 2: \"qqqqqqqqqqqq\" is not a token of vocab.json", NULL);
    free(y.data);
    y = replaced(m, "\n\xC4\xA0 t\n", "\n\xC4\xA0 \xE4\xB8\x80\n");
    EXPECT_ERROR(v, y, PS_ERR_FORMAT, "merges.txt line 2: character U+4E00, outside GPT-2", NULL);
    free(y.data);
    y = replaced(m, "\n\xC4\xA0 t\n", "\n\xC4\xA0 \xFF\n");
    EXPECT_ERROR(v, y, PS_ERR_FORMAT, "merges.txt line 2: invalid UTF-8", NULL);
    free(y.data);
    y = m;
    y.size = m.size - 1; /* the last merge line gone */
    while (y.size > 0 && y.data[y.size - 1] != '\n') y.size--;
    EXPECT_ERROR(v, y, PS_ERR_FORMAT, "vocab.json has 50257 tokens but merges.txt has 49999 merges", NULL);
    y = m;
    y.size = 0;
    EXPECT_ERROR(v, y, PS_ERR_FORMAT, "has 0 merges", NULL);
    y = replaced(m, "\xC4\xA0g azed\n", "\xC4\xA0g azed\n\r\n\n"); /* blank lines may close the file */
    CHECK(ps_tokenizer_load_memory(&t, v.data, v.size, y.data, y.size, &e) == PS_OK);
    ps_tokenizer_free(t);
    free(y.data);
    CHECK(ps_tokenizer_load_memory(NULL, v.data, v.size, m.data, m.size, &e) == PS_ERR_ARG);
    CHECK(ps_tokenizer_load_memory(&t, NULL, 5, m.data, m.size, &e) == PS_ERR_ARG);
    free(v.data);
    free(m.data);
}

/* --- 8. a 1 MB piece: n log n, not quadratic (a quadratic merge would take hours and
   time the suite out; the speed itself is measured by make bench, not asserted here) -- */

static void test_speed(void) {
    size_t len = 1 << 20, i;
    char *s = (char *)malloc(len);
    int pass;
    for (pass = 0; pass < 3; pass++) {
        int n = 0, *ids;
        double sec;
        clock_t t0;
        for (i = 0; i < len; i++)
            s[i] = pass == 0 ? 'a' : pass == 1 ? (char)('a' + rng() % 26) : "\xE4\xB8\x80"[i % 3];
        t0 = clock();
        ids = encode(s, len, 0, &n);
        sec = (double)(clock() - t0) / CLOCKS_PER_SEC;
        CHECK(ids && decodes_to(ids, n, s, len));
        printf("1 MB without spaces (%s): %d tokens in %.3f s\n",
               pass == 0 ? "aaaa..." : pass == 1 ? "random letters" : "one CJK character", n, sec);
        free(ids);
    }
    free(s);
}

/* --- 9. one tokenizer, several threads --------------------------------------------------- */

#ifndef PS_NO_THREADS
typedef struct job { int ok; unsigned seed; } job;

static void *encode_many(void *arg) {
    job *jb = (job *)arg;
    char s[256];
    int i, a[300], b[300], na, nb, k;
    jb->ok = 1;
    for (i = 0; i < 2000; i++) {
        size_t len = 0, n = 50 + (jb->seed = jb->seed * 1103515245u + 12345u) % 200;
        for (len = 0; len < n; len++) s[len] = "ab cd'sEF 12\n\xC3\xA9!"[(jb->seed = jb->seed * 1103515245u + 12345u) >> 16 & 15];
        if (ps_encode(tok, s, len, 0, a, 300, &na) || ps_encode(tok, s, len, 0, b, 300, &nb) || na != nb) jb->ok = 0;
        for (k = 0; k < na && jb->ok; k++) jb->ok = a[k] == b[k];
    }
    return NULL;
}

static void test_threads(void) {
    pthread_t th[4];
    job jobs[4];
    int i;
    for (i = 0; i < 4; i++) {
        jobs[i].seed = (unsigned)i + 1;
        pthread_create(&th[i], NULL, encode_many, &jobs[i]);
    }
    for (i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK_MSG(jobs[i].ok, "threads share one tokenizer");
    }
}
#endif

int main(void) {
    ps_error e;
    if (ps_tokenizer_load(&tok, "weights", &e) != PS_OK) {
        printf("FAIL cannot load the tokenizer from weights/: %s\n", e.msg);
        return 1;
    }
    test_fixture_cases();
    test_token_bytes();
    test_round_trip();
    test_long_pieces();
    test_protocols();
    test_classes();
    test_loader_errors();
    test_speed();
#ifndef PS_NO_THREADS
    test_threads();
#endif
    ps_tokenizer_free(tok);
    printf("Unicode %s tables\n", PS__UNICODE_VERSION);
    return test_report("test_tokenizer");
}
