/* Kernel tests: the SIMD kernels against the portable C ones and against double
   precision, on shapes that hit every edge (row counts 1..PS__MR and beyond, partial
   panels, odd K, tails shorter than a vector); results independent of threads and of
   batching, bit for bit; and what BF16 weights cost against the float64 oracle.
   Run from the repository root (make test does). */
#define PATCHSCOPE_IMPLEMENTATION
#include "../patchscope.h"
#include "testutil.h"
#include "golden.h"

static uint64_t seed = 88172645463325252ull;
static float frand(void) { /* uniform in [-1, 1) */
    seed ^= seed << 13;
    seed ^= seed >> 7;
    seed ^= seed << 17;
    return (float)((seed >> 40) * (1.0 / 8388608.0) - 1.0);
}

/* a random K x N matrix, packed as the loader packs it (through a safetensors file in
   memory), in the storage asked for; w gets the F32 values the packed ones stand for */
typedef struct packed { ps_model m; ps__mat mat; } packed;

static void pack_random(packed *p, int K, int N, ps_weights want, float *w) {
    char hdr[160];
    size_t hlen, i;
    unsigned char *file;
    ps__ld ld;
    ps__file none;
    ps_error e;
    int k;
    snprintf(hdr, sizeof hdr, "{\"w\":{\"dtype\":\"F32\",\"shape\":[%d,%d],\"data_offsets\":[0,%lu]}}", K, N,
             (unsigned long)((size_t)K * N * 4));
    hlen = strlen(hdr);
    file = (unsigned char *)calloc(8 + hlen + (size_t)K * N * 4, 1);
    for (k = 0; k < 8; k++) file[k] = (unsigned char)((unsigned long long)hlen >> (8 * k));
    memcpy(file + 8, hdr, hlen);
    for (i = 0; i < (size_t)K * N; i++) {
        w[i] = frand();
        memcpy(file + 8 + hlen + 4 * i, &w[i], 4);
    }
    memset(&p->m, 0, sizeof p->m);
    memset(&ld, 0, sizeof ld);
    memset(&none, 0, sizeof none);
    ld.m = &p->m;
    ld.family = "test";
    ld.prefix = "";
    ld.want = want;
    ld.err = &e;
    p->m.files = &none;
    CHECK(ps__st_parse(&p->m.st, file, 8 + hlen + (size_t)K * N * 4, &e) == PS_OK);
    CHECK(ps__bind_mat(&ld, "w", K, N, 0, &p->mat) == PS_OK);
    if (p->mat.dtype == PS_BF16)
        for (i = 0; i < (size_t)K * N; i++) w[i] = ps__bf16_to_f32(ps__f32_to_bf16(w[i]));
    ps__st_free(&p->m.st);
    free(file);
}

static void packed_free(packed *p) {
    int i;
    for (i = 0; i < p->m.n_owned; i++) free(p->m.owned[i]);
    free(p->m.owned);
}

/* |got - want| <= tol * (sum of |terms| + 1) for y = x . W + b, checked against double */
static void check_matmul(const float *y, const float *x, const float *w, const float *b, int rows, int K, int N,
                         double tol, const char *what) {
    int r, k, n, bad = 0;
    double worst = 0;
    for (r = 0; r < rows; r++)
        for (n = 0; n < N; n++) {
            double s = b ? b[n] : 0, mag = b ? fabs(b[n]) : 0, d;
            for (k = 0; k < K; k++) {
                s += (double)x[(size_t)r * K + k] * w[(size_t)k * N + n];
                mag += fabs((double)x[(size_t)r * K + k] * w[(size_t)k * N + n]);
            }
            d = fabs(y[(size_t)r * N + n] - s) / (mag + 1);
            if (!(d <= worst)) worst = d;
            bad += !(d <= tol);
        }
    if (bad) printf("  %s: worst relative error %.3g\n", what, worst);
    CHECK_MSG(bad == 0, what);
}

/* every register tile (each row count, each dtype) against the portable tile and double */
static void test_tiles(void) {
    static const ps_weights kinds[2] = {PS_WEIGHTS_F32, PS_WEIGHTS_BF16};
    int K = 37, N = PS__NR, mr, t;
    float *w = (float *)malloc(sizeof(float) * (size_t)K * N), x[PS__MR * 37], b[PS__NR];
    float simd[PS__MR * PS__NR], ref[PS__MR * PS__NR];
    char what[96];
    for (t = 0; t < 2; t++) {
        packed p;
        pack_random(&p, K, N, kinds[t], w);
        for (mr = 1; mr <= PS__MR; mr++) {
            int i, use_b = mr % 2;
            for (i = 0; i < mr * K; i++) x[i] = frand();
            for (i = 0; i < N; i++) b[i] = frand();
            ps__tile(mr, p.mat.dtype, x, (size_t)K, p.mat.data, K, use_b ? b : NULL, simd, PS__NR, NULL, 0);
            ps__tile_c(mr, p.mat.dtype, x, (size_t)K, p.mat.data, K, use_b ? b : NULL, ref, PS__NR);
            snprintf(what, sizeof what, "tile %d rows, %s: SIMD vs portable", mr, t ? "BF16" : "F32");
            CHECK_CLOSE(simd, ref, (size_t)mr * N, 1e-5, what);
            snprintf(what, sizeof what, "tile %d rows, %s: vs double", mr, t ? "BF16" : "F32");
            check_matmul(simd, x, w, use_b ? b : NULL, mr, K, N, 1e-6, what);
        }
        packed_free(&p);
    }
    free(w);
}

/* F16 panels: the tiny-f16 model's matrices, kept in half and converted at load */
static void test_f16_tiles(void) {
    ps_load_opts o;
    ps_model *half, *full;
    float x[PS__MR * 128], a[PS__MR * PS__NR], c[PS__MR * PS__NR];
    int i;
    memset(&o, 0, sizeof o);
    o.weights = PS_WEIGHTS_F32;
    half = load("tiny-f16", NULL);
    full = load("tiny-f16", &o);
    CHECK(half->blocks[1].fcproj_w.dtype == PS_F16 && full->blocks[1].fcproj_w.dtype == PS_F32);
    for (i = 0; i < PS__MR * 128; i++) x[i] = frand();
    ps__tile(PS__MR, PS_F16, x, 128, half->blocks[1].fcproj_w.data, 128, NULL, a, PS__NR, NULL, 0);
    ps__tile(PS__MR, PS_F32, x, 128, full->blocks[1].fcproj_w.data, 128, NULL, c, PS__NR, NULL, 0);
    CHECK_MSG(memcmp(a, c, sizeof a) == 0, "an F16 tile == the same tile on the weights converted at load, bitwise");
    ps__tile_c(PS__MR, PS_F16, x, 128, half->blocks[1].fcproj_w.data, 128, NULL, c, PS__NR);
    CHECK_CLOSE(a, c, sizeof a / sizeof a[0], 1e-5, "F16 tile: SIMD vs portable");
    ps_model_free(half);
    ps_model_free(full);
}

/* whole matmuls: partial panels, many row counts; thread counts and batching change no bit */
static void test_matmul(void) {
    static const int shapes[][3] = {{1, 17, 5}, {3, 64, PS__NR + 3}, {9, 96, 3 * PS__NR}, {33, 40, 100}, {100, 130, 61}};
    int s;
    for (s = 0; s < 5; s++) {
        int rows = shapes[s][0], K = shapes[s][1], N = shapes[s][2], i, r, t;
        float *w = (float *)malloc(sizeof(float) * (size_t)K * N), *x = (float *)malloc(sizeof(float) * (size_t)rows * K);
        float *b = (float *)malloc(sizeof(float) * (size_t)N), *y = (float *)malloc(sizeof(float) * (size_t)rows * N);
        float *y2 = (float *)malloc(sizeof(float) * (size_t)rows * N);
        char what[96];
        packed p;
        pack_random(&p, K, N, PS_WEIGHTS_AS_STORED, w);
        for (i = 0; i < rows * K; i++) x[i] = frand();
        for (i = 0; i < N; i++) b[i] = frand();
        ps__matmul(NULL, y, x, &p.mat, b, rows);
        snprintf(what, sizeof what, "matmul %dx%d . %dx%d vs double", rows, K, K, N);
        check_matmul(y, x, w, b, rows, K, N, 1e-6, what);
        for (t = 2; t <= 3; t++) {
            ps_pool *pool;
            CHECK(ps_pool_create(&pool, t) == PS_OK);
            ps__matmul(pool, y2, x, &p.mat, b, rows);
            snprintf(what, sizeof what, "matmul %dx%d . %dx%d: %d threads == 1, bitwise", rows, K, K, N, t);
            CHECK_MSG(memcmp(y, y2, sizeof(float) * (size_t)rows * N) == 0, what);
            ps_pool_free(pool);
        }
        for (r = 0; r < rows; r++) {
            ps__matmul(NULL, y2, x + (size_t)r * K, &p.mat, b, 1);
            if (memcmp(y2, y + (size_t)r * N, sizeof(float) * (size_t)N) != 0) break;
        }
        snprintf(what, sizeof what, "matmul %dx%d . %dx%d: each row alone == in the batch, bitwise", rows, K, K, N);
        CHECK_MSG(r == rows, what);
        packed_free(&p);
        free(w); free(x); free(b); free(y); free(y2);
    }
}

/* the pointwise kernels against double precision */
static void test_pointwise(void) {
    float v[203], p[203], g[203], want[203];
    double sum = 0, mx = -1e30;
    int i, n = 203;
#ifdef PS__VL
    { /* e^x over the clamped range, and NaN in, NaN out */
        float xs[PS__VL], e[PS__VL];
        double worst = 0;
        int k;
        for (i = 0; i < 20000; i++) {
            for (k = 0; k < PS__VL; k++) xs[k] = -87.0f + 175.0f * (float)(i * PS__VL + k) / (20000.0f * PS__VL);
            ps__vstore(e, ps__vexp(ps__vload(xs)));
            for (k = 0; k < PS__VL; k++) {
                double d = fabs(e[k] / exp((double)xs[k]) - 1);
                if (d > worst) worst = d;
            }
        }
        printf("  vector exp: worst relative error %.3g\n", worst);
        CHECK_MSG(worst < 3e-7, "vector exp within 3e-7 relative");
        xs[0] = NAN;
        ps__vstore(e, ps__vexp(ps__vload(xs)));
        CHECK_MSG(e[0] != e[0], "vector exp keeps NaN");
    }
#endif
    for (i = 0; i < n; i++) v[i] = g[i] = 8 * frand();
    ps__activate(NULL, PS__ACT_GELU_TANH, g, NULL, 0, 1, n);
    for (i = 0; i < n; i++)
        want[i] = (float)(0.5 * v[i] * (1 + tanh(0.7978845608028654 * (v[i] + 0.044715 * (double)v[i] * v[i] * v[i]))));
    CHECK_CLOSE(g, want, (size_t)n, 2e-6, "GELU vs double");
    for (i = 0; i < n; i++) {
        p[i] = 20 * frand();
        if (p[i] > mx) mx = p[i];
    }
    for (i = 0; i < n; i++) sum += exp((double)p[i] - mx);
    for (i = 0; i < n; i++) want[i] = (float)(exp((double)p[i] - mx) / sum);
    ps__softmax_row(p, n);
    CHECK_CLOSE(p, want, (size_t)n, 1e-7, "softmax vs double");
    { /* LayerNorm, in place, and attention's scores and mix, with strides */
        float lw[203], lb[203], kv[7 * 211], z[3 * 203], zw[3 * 203], z1[203], q[3 * 200], pr[3][7];
        float *rowp[3];
        const float *rowc[3];
        int cnt[3], k, same = 1;
        double mean = 0, var = 0;
        for (i = 0; i < n; i++) { v[i] = 3 + frand(); lw[i] = frand(); lb[i] = frand(); g[i] = v[i]; }
        for (i = 0; i < n; i++) mean += v[i];
        mean /= n;
        for (i = 0; i < n; i++) var += (v[i] - mean) * (v[i] - mean);
        var /= n;
        for (i = 0; i < n; i++) want[i] = (float)((v[i] - mean) / sqrt(var + 1e-5) * lw[i] + lb[i]);
        ps__layernorm_forward(g, g, lw, lb, 1, n, 1e-5f);
        CHECK_CLOSE(g, want, (size_t)n, 2e-6, "LayerNorm vs double");
        for (i = 0; i < 7 * 211; i++) kv[i] = frand();
        for (i = 0; i < 3 * 200; i++) q[i] = frand();
        for (i = 0; i < 3; i++) rowp[i] = pr[i];
        ps__scores(rowp, q, 200, 3, kv, 211, 7, 200, 0.125f);
        for (k = 0; k < 3; k++)
            for (i = 0; i < 7; i++) {
                double s = 0;
                int d;
                for (d = 0; d < 200; d++) s += (double)q[k * 200 + d] * kv[i * 211 + d];
                want[k * 7 + i] = (float)(s * 0.125);
                p[k * 7 + i] = pr[k][i];
                same &= pr[k][i] == ps__dot(q + k * 200, kv + i * 211, 200) * 0.125f;
            }
        CHECK_MSG(same, "scores of three rows together == each alone, bitwise");
        CHECK_CLOSE(p, want, 21, 1e-6, "attention scores vs double");
        for (i = 0; i < 3 * 203; i++) z[i] = zw[i] = 0;
        for (k = 0; k < 3; k++) {
            cnt[k] = 7 - 2 * k;
            rowc[k] = pr[k];
        }
        ps__mix(z, 203, rowc, cnt, 3, kv, 211, 200);
        for (k = 0; k < 3; k++)
            for (i = 0; i < 200; i++) {
                double s = 0;
                int j;
                for (j = 0; j < cnt[k]; j++) s += (double)pr[k][j] * kv[j * 211 + i];
                zw[k * 203 + i] = (float)s;
            }
        for (k = 0; k < 3; k++) {
            memset(z1, 0, sizeof z1);
            ps__mix(z1, 203, rowc + k, cnt + k, 1, kv, 211, 200);
            same &= memcmp(z1, z + k * 203, 200 * sizeof(float)) == 0;
        }
        CHECK_MSG(same, "values mixed for three rows together == each alone, bitwise");
        CHECK_CLOSE(z, zw, 3 * 203, 1e-6, "attention mix vs double");
    }
}

/* What BF16 weights cost: logits of the oracle's models with their F32 matrices rounded
   to BF16 at load, against the float64 oracle on the F32 weights. Printed for the
   README; the bound only catches a broken conversion. */
static void test_bf16_cost(const char *name) {
    golden gd;
    ps_model *m;
    ps_ctx *c;
    ps_load_opts o;
    int T, *ids;
    size_t n, i;
    float *want;
    double worst = 0, scale = 0;
    char what[96];
    if (!golden_open(&gd, name)) { CHECK(0); return; }
    memset(&o, 0, sizeof o);
    o.weights = PS_WEIGHTS_BF16;
    m = load(name, &o);
    CHECK(ps_model_dtype(m) == PS_BF16);
    CHECK(ps_ctx_create(&c, m, NULL, NULL) == PS_OK);
    ids = golden_i32(&gd, "ids", &T);
    CHECK(ps_forward(c, ids, T, PS_ALL_LOGITS) == PS_OK);
    want = golden_f32(&gd, "logits", &n);
    for (i = 0; i < n; i++) {
        double d = fabs((double)ps_logits(c, 0)[i] - want[i]);
        if (d > worst) worst = d;
        if (fabs(want[i]) > scale) scale = fabs(want[i]);
    }
    printf("  BF16 weights, %s: logits max |diff| %.3g against the F32 oracle (largest |logit| %.3g)\n", name, worst,
           scale);
    snprintf(what, sizeof what, "BF16 weights on %s stay within 2%% of the logit range", name);
    CHECK_MSG(worst < 0.02 * scale + 1e-3, what);
    free(ids);
    free(want);
    ps_ctx_free(c);
    ps_model_free(m);
    golden_close(&gd);
}

int main(void) {
#if defined(PS__AVX512)
    printf("  kernels: AVX-512, panels of %d columns, tiles of up to %d rows\n", PS__NR, PS__MR);
#elif defined(PS__AVX2)
    printf("  kernels: AVX2 + FMA, panels of %d columns, tiles of up to %d rows\n", PS__NR, PS__MR);
#elif defined(PS__NEON)
    printf("  kernels: NEON, panels of %d columns, tiles of up to %d rows\n", PS__NR, PS__MR);
#else
    printf("  kernels: portable C, panels of %d columns, tiles of up to %d rows\n", PS__NR, PS__MR);
#endif
    test_tiles();
    test_f16_tiles();
    test_matmul();
    test_pointwise();
    test_bf16_cost("tiny");
    test_bf16_cost("mid");
    test_bf16_cost("wide");
    return test_report("kernels");
}
