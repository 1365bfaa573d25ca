/* Reading a fixture file of the form {"cases": [{...}, ...], ...} (other top-level keys
   skipped) one case at a time, with the header's own JSON cursor. Include after the
   header's implementation.

     ps__json j;
     fixture_open(&j, &file);
     while (fixture_next(&j) == 1) { ...the case's keys, ps__json_key on j... }
     CHECK(fixture_close(&j) == 0);                                                     */
#ifndef PS_FIXTURE_H
#define PS_FIXTURE_H

/* the cursor at the start of the cases array; -1 when there is none */
static int fixture_open(ps__json *j, const ps__file *f) {
    char key[64];
    int r;
    ps__json_init(j, (const char *)f->data, f->size);
    if (ps__json_object(j)) return -1;
    while ((r = ps__json_key(j, key, sizeof key, NULL)) == 1) {
        if (strcmp(key, "cases") == 0) return ps__json_array(j);
        if (ps__json_skip(j)) return -1;
    }
    return -1;
}

/* 1 with the cursor inside the next case's object, 0 after the last, -1 on bad JSON */
static int fixture_next(ps__json *j) {
    int r = ps__json_item(j);
    return r == 1 ? (ps__json_object(j) ? -1 : 1) : r;
}

/* the rest of the file after the cases: 0 when it is well-formed */
static int fixture_close(ps__json *j) {
    char key[64];
    int r;
    while ((r = ps__json_key(j, key, sizeof key, NULL)) == 1)
        if (ps__json_skip(j)) return -1;
    return r == 0 && ps__json_done(j) == 0 ? 0 : -1;
}
#endif
