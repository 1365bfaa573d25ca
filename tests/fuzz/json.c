/* libFuzzer harness: the JSON cursor parser, through every reader built on it.

   The input is JSON text. It goes through the generic grammar (skip every value), the
   config.json reader (its key list and typed getters), and, wrapped in a safetensors file with no data, the header
   parser. A value the grammar accepts must be consumed to the end with the depth back
   at 0; the readers must fail cleanly or succeed. */
#define PATCHSCOPE_IMPLEMENTATION
#include "../../patchscope.h"

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ps__json j;
    ps__hp hp;
    ps__st st;
    ps_error e;
    ps_status s;
    unsigned char *file;
    int i;

    /* the grammar alone */
    ps__json_init(&j, (const char *)data, size);
    if (ps__json_skip(&j) == 0 && ps__json_done(&j) == 0) REQUIRE(j.depth == 0 && j.p == j.end && !j.err[0]);
    else REQUIRE(j.err[0] && j.p >= j.begin && j.p <= j.end);

    /* a string read into a small buffer must stay inside it */
    {
        char small[8];
        size_t len = 0;
        ps__json_init(&j, (const char *)data, size);
        if (ps__json_string(&j, small, sizeof small, &len) == 0) REQUIRE(len < sizeof small && strlen(small) <= len);
    }

    /* config.json: the key list, then every key read back as each kind of value */
    s = ps__hp_read(&hp, (const char *)data, size, "config.json", &e);
    REQUIRE(s == PS_OK || ((s == PS_ERR_FORMAT || s == PS_ERR_NOMEM) && e.msg[0]));
    for (i = 0; s == PS_OK && i < hp.n; i++) {
        double v = 0;
        int b = 0;
        char str[16];
        ps_status r = ps__hp_num(&hp, hp.v[i].key, 0, 1e9, 0, &v, &e);
        REQUIRE(r == PS_OK ? v >= 0 && v <= 1e9 : r == PS_ERR_CONFIG && e.msg[0] != 0);
        r = ps__hp_bool(&hp, hp.v[i].key, &b, &e);
        REQUIRE(r == PS_OK || r == PS_ERR_CONFIG);
        r = ps__hp_str(&hp, hp.v[i].key, str, sizeof str, &e);
        REQUIRE(r == PS_OK ? strlen(str) < sizeof str : r == PS_ERR_CONFIG);
    }
    PS_FREE(hp.v);

    /* a safetensors header with no data section */
    file = (unsigned char *)malloc(size + 8);
    REQUIRE(file);
    for (i = 0; i < 8; i++) file[i] = (unsigned char)((unsigned long long)size >> (8 * i));
    memcpy(file + 8, data, size);
    s = ps__st_parse(&st, file, size + 8, &e);
    if (s == PS_OK) {
        for (i = 0; i < st.n; i++) REQUIRE(st.entries[i].begin == st.entries[i].end); /* nothing to point at */
        ps__st_free(&st);
    } else {
        REQUIRE((s == PS_ERR_FORMAT || s == PS_ERR_NOMEM) && e.msg[0]);
    }
    free(file);
    return 0;
}
