/* Reading the oracle's golden files (safetensors) and the generated test models.
   Include after the header's implementation: it uses the header's own parser. */
#ifndef PS_GOLDEN_H
#define PS_GOLDEN_H

/* --- a safetensors golden file, read with the header's own parser ------------------ */
typedef struct golden {
    ps__file file;
    ps__st st;
} golden;

static int golden_open(golden *g, const char *name) {
    char path[256];
    ps_error e;
    snprintf(path, sizeof path, "tests/data/golden/%s.safetensors", name);
    if (ps__file_read(&g->file, path, 1, &e) || ps__st_parse(&g->st, g->file.data, g->file.size, &e)) {
        printf("cannot read %s: %s\n", path, e.msg);
        return 0;
    }
    return 1;
}

static void golden_close(golden *g) {
    ps__st_free(&g->st);
    ps__file_close(&g->file);
}

/* a float tensor (copied, caller frees); *n gets its element count */
static float *golden_f32(const golden *g, const char *name, size_t *n) {
    const ps__st_entry *e = ps__st_find(&g->st, name);
    float *out;
    if (!e || e->dtype != PS__ST_F32) {
        printf("golden tensor %s missing\n", name);
        exit(1);
    }
    *n = (e->end - e->begin) / 4;
    out = (float *)malloc(*n * sizeof(float) + 1);
    ps__to_f32(e->dtype, e->data, out, *n);
    return out;
}

/* an I32 tensor as ints (caller frees) */
static int *golden_i32(const golden *g, const char *name, int *n) {
    const ps__st_entry *e = ps__st_find(&g->st, name);
    int *out, i;
    if (!e || e->elem_size != 4 || e->dtype != PS__ST_OTHER) {
        printf("golden tensor %s missing\n", name);
        exit(1);
    }
    *n = (int)((e->end - e->begin) / 4);
    out = (int *)malloc((size_t)*n * sizeof(int) + 1);
    for (i = 0; i < *n; i++) {
        const unsigned char *p = g->st.data + e->begin + 4 * (size_t)i;
        out[i] = (int)((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
    }
    return out;
}

static const char *model_path(const char *name, char *buf, size_t cap) {
    if (strcmp(name, "meta") == 0 || strcmp(name, "infer768") == 0)
        snprintf(buf, cap, "build/models/%s.safetensors", name);
    else
        snprintf(buf, cap, "build/models/%s", name);
    return buf;
}

static ps_model *load(const char *name, const ps_load_opts *opts) {
    char path[256];
    ps_model *m = NULL;
    ps_error e;
    if (ps_model_load(&m, model_path(name, path, sizeof path), opts, &e)) {
        printf("load %s: %s\n", name, e.msg);
        exit(1);
    }
    return m;
}

#endif
