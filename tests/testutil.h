/* Minimal test helpers shared by the test programs: failures are counted and printed,
   and test_report() turns them into the exit status. */
#ifndef PS_TESTUTIL_H
#define PS_TESTUTIL_H
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tu_checks, tu_failures;

#define CHECK_MSG(cond, msg)                                                          \
    do {                                                                              \
        tu_checks++;                                                                  \
        if (!(cond)) {                                                                \
            tu_failures++;                                                            \
            printf("FAIL %s:%d: %s (%s)\n", __FILE__, __LINE__, #cond, (msg));       \
        }                                                                             \
    } while (0)
#define CHECK(cond) CHECK_MSG(cond, "")

/* |got - want| <= tol everywhere; prints the worst element when not */
static inline int tu_close(const float *got, const float *want, size_t n, double tol, const char *what,
                    const char *file, int line) {
    size_t i, worst = 0;
    double maxd = 0;
    tu_checks++;
    for (i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)want[i]);
        if (!(d <= maxd)) { maxd = d; worst = i; } /* NaN lands here too */
    }
    if (n && !(maxd <= tol)) {
        tu_failures++;
        printf("FAIL %s:%d: %s: max |diff| %.3g > %.1g at %lu (got %.9g, want %.9g)\n", file, line, what, maxd,
               tol, (unsigned long)worst, got[worst], want[worst]);
        return 0;
    }
    return 1;
}
#define CHECK_CLOSE(got, want, n, tol, what) tu_close(got, want, n, tol, what, __FILE__, __LINE__)

/* encode into a fresh array (caller frees); *n gets the count; NULL on failure (include
   after patchscope.h) */
static inline int *tu_encode(const ps_tokenizer *t, const char *text, size_t len, int flags, int *n) {
    int *ids, need = -1;
    ps_status s = ps_encode(t, text, len, flags, NULL, 0, &need);
    if ((s != PS_OK && s != PS_ERR_RANGE) || need < 0) return NULL;
    ids = (int *)malloc((size_t)need * sizeof(int) + 1);
    if (ps_encode(t, text, len, flags, ids, need, n) != PS_OK || *n != need) { free(ids); return NULL; }
    return ids;
}

static int test_report(const char *name) {
    printf("%s: %d checks, %d failures\n", name, tu_checks, tu_failures);
    return tu_failures ? 1 : 0;
}
#endif
