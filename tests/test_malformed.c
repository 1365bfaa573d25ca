/* Malformed files: every case is made from the valid tiny model (build/models/tiny) by
   a mutation in the table below, or by cutting the file at a section boundary (the
   length field, the header, each tensor's data). Each case asserts the error code and
   a message that names the problem. Weights that are NaN or infinite load, and
   ps_model_check reports them. Cases that need files on disk live in build/malformed. */
#define PATCHSCOPE_IMPLEMENTATION
#include "../patchscope.h"
#include "testutil.h"

#include <sys/stat.h>

#define TINY "build/models/tiny/model.safetensors"
#define TINY_CONFIG "{\"n_head\": 2}" /* the tiny model's width is not a standard one */

/* --- building a case ------------------------------------------------------------------ */
typedef struct bytes {
    unsigned char *p;
    size_t n;
} bytes;

static bytes read_all(const char *path) {
    ps__file f;
    ps_error e;
    bytes b;
    if (ps__file_read(&f, path, 0, &e)) {
        printf("cannot read %s: %s\n", path, e.msg);
        exit(1);
    }
    b.p = f.data;
    b.n = f.size;
    return b;
}

static size_t header_len(const bytes *b) {
    unsigned long long n = 0;
    int i;
    for (i = 7; i >= 0; i--) n = n << 8 | b->p[i];
    return (size_t)n;
}

/* a new file: the length field, header text, then the data section of src */
static bytes with_header(const bytes *src, const char *header) {
    size_t nh = strlen(header), old = header_len(src), data = src->n - 8 - old;
    bytes b;
    int i;
    b.n = 8 + nh + data;
    b.p = (unsigned char *)malloc(b.n);
    for (i = 0; i < 8; i++) b.p[i] = (unsigned char)((unsigned long long)nh >> (8 * i));
    memcpy(b.p + 8, header, nh);
    memcpy(b.p + 8 + nh, src->p + 8 + old, data);
    return b;
}

/* src with the first occurrence of old in its header replaced by repl */
static bytes edited(const bytes *src, const char *old, const char *repl) {
    size_t n = header_len(src);
    char *hdr = (char *)calloc(n + strlen(repl) + 1, 1), *at;
    bytes b;
    memcpy(hdr, src->p + 8, n);
    if (!(at = strstr(hdr, old))) {
        printf("edit target %s not found\n", old);
        exit(1);
    }
    memmove(at + strlen(repl), at + strlen(old), strlen(at + strlen(old)) + 1);
    memcpy(at, repl, strlen(repl));
    b = with_header(src, hdr);
    free(hdr);
    return b;
}

/* --- the cases --------------------------------------------------------------------------- */
enum { EDIT, HEADER, LENGTH, FLIP, POKE };

typedef struct mcase {
    const char *name;
    int kind;
    const char *a, *b;       /* EDIT: old -> new (\"\": config only); HEADER: the header; POKE: tensor, file */
    unsigned long long n;    /* LENGTH: header length; FLIP: offset in the file; POKE: element */
    unsigned bits;           /* FLIP: the new byte; POKE: the value's bits, in the tensor's dtype */
    const char *config;      /* NULL: TINY_CONFIG */
    ps_status code;          /* POKE: the code of ps_model_check (the load succeeds) */
    const char *needle;
} mcase;

/* JSON arrays nested 70 deep, past the parser's limit of 64 (filled in by main) */
static char deep_json[512], deep_config[512];

static void nest(char *out, const char *before, const char *after) {
    int i;
    strcpy(out, before);
    for (i = 0; i < 70; i++) strcat(out, "[");
    strcat(out, "1");
    for (i = 0; i < 70; i++) strcat(out, "]");
    strcat(out, after);
}

static const mcase cases[] = {
    /* the length field */
    {"header length past the end", LENGTH, NULL, NULL, 1ull << 40, 0, NULL, PS_ERR_FORMAT, "header length 1099511627776 is past the end"},
    {"header length of 2^64-1", LENGTH, NULL, NULL, ~0ull, 0, NULL, PS_ERR_FORMAT, "is past the end of the file"},
    {"header length one past the file", LENGTH, NULL, NULL, 129056 - 7, 0, NULL, PS_ERR_FORMAT, "header length 129049 is past the end"},
    {"header length cutting the JSON", LENGTH, NULL, NULL, 2000, 0, NULL, PS_ERR_FORMAT, "safetensors header: unterminated string at byte 2000"},
    {"header length of 0", LENGTH, NULL, NULL, 0, 0, NULL, PS_ERR_FORMAT, "safetensors header: expected '{' at byte 0"},
    /* flipped header bytes (same length) */
    {"flip: object opens with [", EDIT, "{\"__metadata__\"", "[\"__metadata__\"", 0, 0, NULL, PS_ERR_FORMAT, "expected '{' at byte 0"},
    {"flip: colon", EDIT, "\"shape\":[", "\"shape\" [", 0, 0, NULL, PS_ERR_FORMAT, "expected ':'"},
    {"flip: control byte in a name", EDIT, "\"wpe.weight\"", "\"wpe\x01weight\"", 0, 0, NULL, PS_ERR_FORMAT, "control character in string"},
    {"flip: the first byte", FLIP, NULL, NULL, 8, 0xFF, NULL, PS_ERR_FORMAT, "expected '{' at byte 0"},
    {"flip: the closing brace", FLIP, NULL, NULL, 8 + 2574, ' ', NULL, PS_ERR_FORMAT, "expected ',' or '}' at byte 2576"},
    {"flip: NUL after the header", FLIP, NULL, NULL, 8 + 2575, 0, NULL, PS_ERR_FORMAT, "unexpected text after the value at byte 2575"},
    {"flip: NUL inside a name", FLIP, NULL, NULL, 8 + 20, 0, NULL, PS_ERR_FORMAT, "control character in string at byte 21"},
    {"flip: data_offsets not an array", EDIT, "\"data_offsets\":[0,12288]", "\"data_offsets\":{0,12288}", 0, 0, NULL, PS_ERR_FORMAT, "wte.weight: data_offsets must be [begin, end]"},
    {"flip: bad escape", EDIT, "\"ln_f.bias\"", "\"ln_f\\qbias\"", 0, 0, NULL, PS_ERR_FORMAT, "bad escape"},
    {"flip: trailing comma", EDIT, "32],\"data_offsets\":[0,", "32,],\"data_offsets\":[0,", 0, 0, NULL, PS_ERR_FORMAT, "trailing comma"},
    {"flip: text after the header", EDIT, "[126344,126472]}}", "[126344,126472]}}x", 0, 0, NULL, PS_ERR_FORMAT, "unexpected text after the value"},
    {"JSON nested past the depth limit", HEADER, deep_json, NULL, 0, 0, NULL, PS_ERR_FORMAT, "nesting too deep"},
    /* offsets */
    {"overlapping offsets", EDIT, "\"data_offsets\":[0,12288]", "\"data_offsets\":[4,12292]", 0, 0, NULL, PS_ERR_FORMAT, "wte.weight and wpe.weight overlap"},
    {"reversed offsets", EDIT, "\"data_offsets\":[0,12288]", "\"data_offsets\":[12288,0]", 0, 0, NULL, PS_ERR_FORMAT, "data_offsets [12288, 0] are reversed"},
    {"offsets past the data", EDIT, "[126344,126472]", "[126344,999999999]", 0, 0, NULL, PS_ERR_FORMAT, "ln_f.bias: bytes [126344, 999999999) lie past the end"},
    {"offsets that disagree with the shape", EDIT, "\"data_offsets\":[0,12288]", "\"data_offsets\":[0,12284]", 0, 0, NULL, PS_ERR_FORMAT, "3072 elements of F32 need 12288 bytes, data_offsets give 12284"},
    {"three offsets", EDIT, "[0,12288]", "[0,6144,12288]", 0, 0, NULL, PS_ERR_FORMAT, "data_offsets must be [begin, end]"},
    {"negative offset", EDIT, "[0,12288]", "[-8,12288]", 0, 0, NULL, PS_ERR_FORMAT, "integer out of range"},
    {"fractional offset", EDIT, "[0,12288]", "[0.5,12288]", 0, 0, NULL, PS_ERR_FORMAT, "expected an integer"},
    /* shapes and dtypes */
    {"dtype of the wrong size", EDIT, "\"wte.weight\":{\"dtype\":\"F32\"", "\"wte.weight\":{\"dtype\":\"F16\"", 0, 0, NULL, PS_ERR_FORMAT, "3072 elements of F16 need 6144 bytes"},
    {"8-byte dtype", EDIT, "\"ln_f.bias\":{\"dtype\":\"F32\"", "\"ln_f.bias\":{\"dtype\":\"F64\"", 0, 0, NULL, PS_ERR_FORMAT, "32 elements of F64 need 256 bytes"},
    {"unknown dtype", EDIT, "\"dtype\":\"F32\"", "\"dtype\":\"Q4\"", 0, 0, NULL, PS_ERR_SHAPE, "wte.weight has dtype Q4"},
    {"integer dtype for a weight", EDIT, "\"ln_f.bias\":{\"dtype\":\"F32\"", "\"ln_f.bias\":{\"dtype\":\"I32\"", 0, 0, NULL, PS_ERR_SHAPE, "ln_f.bias has dtype I32"},
    {"transposed matrix", EDIT, "\"shape\":[32,128]", "\"shape\":[128,32]", 0, 0, NULL, PS_ERR_SHAPE, "h.0.mlp.c_fc.weight has shape [128, 32]"},
    {"dims whose product overflows", EDIT, "\"shape\":[96,32]", "\"shape\":[1000000000000000,1000000000000000,1000000000000000]", 0, 0, NULL, PS_ERR_FORMAT, "wte.weight: shape is larger than the file"},
    {"dims larger than the file", EDIT, "\"shape\":[96,32]", "\"shape\":[96,32000]", 0, 0, NULL, PS_ERR_FORMAT, "wte.weight: shape is larger than the file"},
    {"nine dims", EDIT, "\"shape\":[96,32]", "\"shape\":[96,32,1,1,1,1,1,1,1]", 0, 0, NULL, PS_ERR_FORMAT, "wte.weight has more than 8 dimensions"},
    {"empty vocabulary", EDIT, "\"shape\":[96,32],\"data_offsets\":[0,12288]", "\"shape\":[0,32],\"data_offsets\":[0,0]", 0, 0, NULL, PS_ERR_SHAPE, "wte.weight must be [n_vocab"},
    {"embedding of one dim", EDIT, "\"shape\":[96,32]", "\"shape\":[3072]", 0, 0, NULL, PS_ERR_SHAPE, "wte.weight must be [n_vocab"},
    {"entry without a dtype", EDIT, "\"ln_f.bias\":{\"dtype\":\"F32\",", "\"ln_f.bias\":{", 0, 0, NULL, PS_ERR_FORMAT, "ln_f.bias lacks dtype, shape or data_offsets"},
    /* missing and duplicated tensors */
    {"missing block tensor", EDIT, "\"h.1.mlp.c_fc.weight\"", "\"h.1.mlp.c_fc.weighX\"", 0, 0, NULL, PS_ERR_MISSING, "tensor h.1.mlp.c_fc.weight is missing"},
    {"missing embedding", EDIT, "\"wte.weight\"", "\"wtf.weight\"", 0, 0, NULL, PS_ERR_MISSING, "tensor wte.weight is missing"},
    {"missing final LayerNorm", EDIT, "\"ln_f.bias\"", "\"ln_g.bias\"", 0, 0, NULL, PS_ERR_MISSING, "tensor ln_f.bias is missing"},
    {"duplicated tensor", EDIT, "\"h.1.ln_1.bias\"", "\"h.1.ln_1.weight\"", 0, 0, NULL, PS_ERR_FORMAT, "tensor h.1.ln_1.weight appears twice"},
    {"both naming schemes", EDIT, "\"h.0.attn.bias\"", "\"transformer.wte.weight\"", 0, 0, NULL, PS_ERR_FORMAT, "both wte.weight and transformer.wte.weight"},
    {"no tensors at all", HEADER, "{}", NULL, 0, 0, NULL, PS_ERR_MISSING, "tensor wte.weight is missing"},
    {"an extra block", EDIT, "\"h.0.attn.bias\"", "\"h.2.ln_1.weight\"", 0, 0, "{\"n_layer\": 2, \"n_head\": 2}", PS_ERR_SHAPE, "block h.2.ln_1.weight but n_layer is 2"},
    /* metadata */
    {"metadata value not a string", EDIT, "{\"format\":\"pt\"}", "{\"format\":1}", 0, 0, NULL, PS_ERR_FORMAT, "metadata values must be strings"},
    {"metadata n_head not a number", EDIT, "{\"format\":\"pt\"}", "{\"n_head\":\"two\"}", 0, 0, "{}", PS_ERR_FORMAT, "metadata: n_head is not a positive number"},
    /* config.json against the file */
    {"config: bad JSON", EDIT, "", "", 0, 0, "{\"n_layer\": 2,, }", PS_ERR_FORMAT, "config.json: expected"},
    {"config: too many layers", EDIT, "", "", 0, 0, "{\"n_layer\": 3, \"n_head\": 2}", PS_ERR_MISSING, "tensor h.2.ln_1.weight is missing"},
    {"config: too few layers", EDIT, "", "", 0, 0, "{\"n_layer\": 1, \"n_head\": 2}", PS_ERR_SHAPE, "n_layer is 1"},
    {"config: width", EDIT, "", "", 0, 0, "{\"n_embd\": 64, \"n_head\": 2}", PS_ERR_SHAPE, "config.json says n_embd 64"},
    {"config: vocabulary", EDIT, "", "", 0, 0, "{\"vocab_size\": 50257, \"n_head\": 2}", PS_ERR_SHAPE, "config.json says vocab_size 50257"},
    {"config: positions", EDIT, "", "", 0, 0, "{\"n_positions\": 1024, \"n_head\": 2}", PS_ERR_SHAPE, "config.json says n_positions 1024"},
    {"config: heads that do not divide", EDIT, "", "", 0, 0, "{\"n_head\": 5}", PS_ERR_CONFIG, "n_head 5 does not divide n_embd 32"},
    {"config: absurd heads", EDIT, "", "", 0, 0, "{\"n_head\": 4096}", PS_ERR_CONFIG, "n_head 4096"},
    {"config: absurd layers", EDIT, "", "", 0, 0, "{\"n_layer\": 100000, \"n_head\": 2}", PS_ERR_CONFIG, "n_layer 100000 is outside 1..512"},
    {"config: absurd number", EDIT, "", "", 0, 0, "{\"n_layer\": 1e300, \"n_head\": 2}", PS_ERR_CONFIG, "n_layer must be a positive number below 1e9"},
    {"config: fractional layers", EDIT, "", "", 0, 0, "{\"n_layer\": 1.5, \"n_head\": 2}", PS_ERR_CONFIG, "n_layer 1.5 is outside"},
    {"config: epsilon that is 0 as a float", EDIT, "", "", 0, 0, "{\"n_head\": 2, \"layer_norm_epsilon\": 1e-75}", PS_ERR_CONFIG, "layer_norm_epsilon 1e-75 is outside (0, 1) as a float"},
    {"config: activation", EDIT, "", "", 0, 0, "{\"n_head\": 2, \"activation_function\": \"relu\"}", PS_ERR_CONFIG, "activation_function \"relu\" is not supported"},
    {"config: layer-scaled attention", EDIT, "", "", 0, 0, "{\"n_head\": 2, \"scale_attn_by_inverse_layer_idx\": true}", PS_ERR_CONFIG, "scale_attn_by_inverse_layer_idx"},
    {"config: nested past the depth limit", EDIT, "", "", 0, 0, deep_config, PS_ERR_FORMAT, "config.json: nesting too deep"},
    /* weights that load but are not finite: ps_model_check names them */
    {"NaN in a matrix", POKE, "h.1.mlp.c_fc.weight", NULL, 5, 0x7FC00000u, NULL, PS_ERR_FORMAT, "tensor h.1.mlp.c_fc.weight has a non-finite value at element 5"},
    {"+Inf in the embedding", POKE, "wte.weight", NULL, 0, 0x7F800000u, NULL, PS_ERR_FORMAT, "tensor wte.weight has a non-finite value at element 0"},
    {"-Inf in a bias", POKE, "ln_f.bias", NULL, 31, 0xFF800000u, NULL, PS_ERR_FORMAT, "tensor ln_f.bias has a non-finite value at element 31"},
    {"NaN in the positions", POKE, "wpe.weight", NULL, 1000, 0xFFFFFFFFu, NULL, PS_ERR_FORMAT, "tensor wpe.weight has a non-finite value at element 1000"},
    {"Inf in a half-precision matrix", POKE, "h.0.attn.c_attn.weight", "build/models/tiny-f16/model.safetensors", 3, 0x7C00u, NULL, PS_ERR_FORMAT, "tensor h.0.attn.c_attn.weight has a non-finite value at element 3"},
    {"NaN in a bfloat16 vector", POKE, "h.1.ln_2.bias", "build/models/tiny-bf16/model.safetensors", 9, 0x7FC1u, NULL, PS_ERR_FORMAT, "tensor h.1.ln_2.bias has a non-finite value at element 9"},
    {"a large finite value", POKE, "h.0.attn.c_proj.weight", NULL, 7, 0x7149F2CAu, NULL, PS_OK, ""},
};

/* --- running a case ------------------------------------------------------------------------- */
static void expect(const char *what, ps_status got, const ps_error *e, ps_status code, const char *needle, int model_set) {
    char msg[600];
    snprintf(msg, sizeof msg, "%s: got %s \"%s\", want %s mentioning \"%s\"", what, ps_status_name(got), e->msg,
             ps_status_name(code), needle);
    CHECK_MSG(got == code && e->code == code && strstr(e->msg, needle) != NULL && !model_set, msg);
}

/* loads b from memory, with weights kept and converted; both must give the same error */
static void run_memory(const char *what, const bytes *b, const char *config, size_t config_len, ps_status code,
                       const char *needle) {
    ps_load_opts opts;
    int w;
    memset(&opts, 0, sizeof opts);
    for (w = PS_WEIGHTS_AS_STORED; w <= PS_WEIGHTS_BF16; w++) {
        ps_model *m = NULL;
        ps_error e;
        ps_status s;
        opts.weights = (ps_weights)w;
        s = ps_model_load_memory(&m, b->p, b->n, config, config_len, &opts, &e);
        expect(what, s, &e, code, needle, m != NULL);
        ps_model_free(m);
    }
}

/* a NaN or infinity written into a tensor loads; ps_model_check reports it, whatever the
   storage (bf16_needle, when not NULL: loaded as BF16 it is PS_ERR_FORMAT naming that instead) */
static void run_poke(const mcase *c, const char *bf16_needle) {
    bytes b = read_all(c->b ? c->b : TINY);
    ps__st st;
    ps_error e;
    const ps__st_entry *t;
    int w, i;
    if (ps__st_parse(&st, b.p, b.n, &e) || !(t = ps__st_find(&st, c->a))) {
        printf("cannot find %s\n", c->a);
        exit(1);
    }
    for (i = 0; i < t->elem_size; i++)
        b.p[(size_t)(st.data - b.p) + t->begin + t->elem_size * c->n + (size_t)i] = (unsigned char)(c->bits >> (8 * i));
    ps__st_free(&st);
    for (w = PS_WEIGHTS_AS_STORED; w <= PS_WEIGHTS_BF16; w++) {
        ps_model *m = NULL;
        ps_load_opts opts;
        memset(&opts, 0, sizeof opts);
        opts.weights = (ps_weights)w;
        CHECK_MSG(ps_model_load_memory(&m, b.p, b.n, TINY_CONFIG, strlen(TINY_CONFIG), &opts, &e) == PS_OK, c->name);
        if (w == PS_WEIGHTS_BF16 && bf16_needle) expect(c->name, ps_model_check(m, &e), &e, PS_ERR_FORMAT, bf16_needle, 0);
        else expect(c->name, ps_model_check(m, &e), &e, c->code, c->needle, 0);
        ps_model_free(m);
    }
    PS_FREE(b.p);
}

/* every section boundary: in the length field, in the header, before each tensor's data
   (the tensors tile the data section; the cut names the first one it leaves out) */
static void run_cuts(const bytes *tiny) {
    static const size_t early[] = {0, 1, 7, 8, 9, 100, 8 + 2575};
    ps__st st;
    ps_error e;
    size_t hlen = header_len(tiny), at = 0, i, n = 0;
    char what[160], needle[160];
    bytes b = *tiny;
    for (i = 0; i < sizeof early / sizeof early[0]; i++) {
        b.n = early[i];
        snprintf(what, sizeof what, "cut at byte %lu", (unsigned long)early[i]);
        run_memory(what, &b, TINY_CONFIG, strlen(TINY_CONFIG), PS_ERR_FORMAT,
                   early[i] < 8 ? "too short for safetensors" : "header length 2576 is past the end");
    }
    if (ps__st_parse(&st, tiny->p, tiny->n, &e)) exit(1);
    for (;;) {
        const ps__st_entry *next = NULL;
        int k;
        for (k = 0; k < st.n; k++)
            if (st.entries[k].begin == at && st.entries[k].end > at) next = &st.entries[k];
        if (!next) break;
        b.n = 8 + hlen + at;
        snprintf(what, sizeof what, "cut before the data of %s", next->name);
        snprintf(needle, sizeof needle, "tensor %s: bytes [%lu, ", next->name, (unsigned long)at);
        run_memory(what, &b, TINY_CONFIG, strlen(TINY_CONFIG), PS_ERR_FORMAT, needle);
        at = next->end;
        n++;
    }
    CHECK_MSG(8 + hlen + at == tiny->n && n == 32, "the cuts cover every tensor of the tiny model");
    ps__st_free(&st);
    b.n = tiny->n - 1;
    run_memory("cut one byte short", &b, TINY_CONFIG, strlen(TINY_CONFIG), PS_ERR_FORMAT,
               "tensor ln_f.bias: bytes [126344, 126472) lie past the end of the data (126471 bytes)");
    printf("malformed: %lu cuts at section boundaries\n", (unsigned long)(sizeof early / sizeof early[0] + n + 1));
}

/* --- files on disk ------------------------------------------------------------------------ */
static void write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n || fclose(f)) {
        printf("cannot write %s\n", path);
        exit(1);
    }
}

static void expect_path(const char *path, int no_mmap, ps_status code, const char *needle) {
    ps_model *m = NULL;
    ps_load_opts opts;
    ps_error e;
    char what[300];
    memset(&opts, 0, sizeof opts);
    opts.no_mmap = no_mmap;
    snprintf(what, sizeof what, "%s%s", path, no_mmap ? " (read)" : " (mapped)");
    expect(what, ps_model_load(&m, path, &opts, &e), &e, code, needle, m != NULL);
    ps_model_free(m);
}

static void run_files(const bytes *tiny) {
    int no_mmap;
    mkdir("build/malformed", 0755);
    mkdir("build/malformed/nomodel", 0755);
    mkdir("build/malformed/configonly", 0755);
    mkdir("build/malformed/modeldir", 0755);
    mkdir("build/malformed/modeldir/model.safetensors", 0755);
    mkdir("build/malformed/configdir", 0755);
    mkdir("build/malformed/configdir/config.json", 0755);
    mkdir("build/malformed/dir.safetensors", 0755);
    mkdir("build/malformed/emptydir", 0755);
    write_file("build/malformed/empty.safetensors", "", 0);
    write_file("build/malformed/emptydir/model.safetensors", "", 0);
    write_file("build/malformed/emptydir/config.json", "", 0);
    write_file("build/malformed/configonly/config.json", TINY_CONFIG, strlen(TINY_CONFIG));
    write_file("build/malformed/configdir/model.safetensors", tiny->p, tiny->n);
    for (no_mmap = 0; no_mmap < 2; no_mmap++) {
        expect_path("build/malformed/empty.safetensors", no_mmap, PS_ERR_FORMAT, "file of 0 bytes is too short");
        expect_path("build/malformed/emptydir", no_mmap, PS_ERR_FORMAT, "file of 0 bytes is too short for safetensors");
        expect_path("build/malformed/nomodel", no_mmap, PS_ERR_IO, "no model.safetensors or model.safetensors.index.json in build/malformed/nomodel");
        expect_path("build/malformed/configonly", no_mmap, PS_ERR_IO, "no model.safetensors or model.safetensors.index.json in build/malformed/configonly");
        expect_path("build/malformed/modeldir", no_mmap, PS_ERR_IO, "no model.safetensors or model.safetensors.index.json in build/malformed/modeldir");
        expect_path("build/malformed/configdir", no_mmap, PS_ERR_IO, "cannot read build/malformed/configdir/config.json");
        expect_path("build/malformed/dir.safetensors", no_mmap, PS_ERR_IO, "build/malformed/dir.safetensors");
        expect_path("build/models/no-such-model", no_mmap, PS_ERR_IO, "no model.safetensors or model.safetensors.index.json in build/models/no-such-model");
        expect_path("build/models/none.safetensors", no_mmap, PS_ERR_IO, "cannot open build/models/none.safetensors");
    }
}

/* the largest float in an F32 matrix is finite as stored, but rounds to infinity in BF16:
   ps_model_check says so when the model was loaded as BF16 */
static void test_bf16_overflow(void) {
    static const mcase c = {"FLT_MAX in an F32 matrix", POKE, "h.0.attn.c_proj.weight", NULL, 7, 0x7F7FFFFFu, NULL,
                            PS_OK, ""};
    run_poke(&c, "tensor h.0.attn.c_proj.weight element 7 (3.40282e+38) rounds to infinity in BF16");
}

int main(void) {
    bytes tiny = read_all(TINY);
    size_t i;
    CHECK(tiny.n == 129056 && header_len(&tiny) == 2576);
    nest(deep_json, "{\"x\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0],\"extra\":", "}}");
    nest(deep_config, "{\"n_head\": 2, \"task_specific_params\": ", "}");
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const mcase *c = &cases[i];
        const char *config = c->config ? c->config : TINY_CONFIG;
        bytes b;
        if (c->kind == POKE) {
            run_poke(c, NULL);
            continue;
        }
        if (c->kind == EDIT && c->a[0]) b = edited(&tiny, c->a, c->b);
        else if (c->kind == HEADER) b = with_header(&tiny, c->a);
        else { /* a copy, then the length field or one byte */
            int k;
            b.n = tiny.n;
            b.p = (unsigned char *)malloc(b.n);
            memcpy(b.p, tiny.p, b.n);
            if (c->kind == LENGTH)
                for (k = 0; k < 8; k++) b.p[k] = (unsigned char)(c->n >> (8 * k));
            if (c->kind == FLIP) b.p[c->n] = (unsigned char)c->bits;
        }
        run_memory(c->name, &b, config, strlen(config), c->code, c->needle);
        free(b.p);
    }
    printf("malformed: %lu table cases\n", (unsigned long)(sizeof cases / sizeof cases[0]));
    /* a NUL byte ends no JSON text: what follows it is still checked */
    run_memory("config: NUL then text", &tiny, "{\"n_head\": 2}\0{", 15, PS_ERR_FORMAT,
               "config.json: unexpected text after the value at byte 13");
    run_cuts(&tiny);
    run_files(&tiny);
    PS_FREE(tiny.p);
    test_bf16_overflow();
    return test_report("malformed");
}
