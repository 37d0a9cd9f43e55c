#include "t5_synth.h"

#include "t5_internal.h"

#include "error.h"
#include "numeric.h"
#include "st_write.h"
#include "synth_fill.h"

#include <stdlib.h>

/* The checkpoint: every matrix views one random bf16 buffer (at a different offset, so q, k
 * and v differ), the norm gains are ones. */
int t5_synth_write(const char *path, int layers, int vocab)
{
    size_t big = (size_t)T5_SYNTH_FFN * T5_SYNTH_DIM + (size_t)10 * T5_SYNTH_DIM; /* matrix p starts at row p */
    size_t emb = (size_t)vocab * T5_SYNTH_DIM;
    size_t nr = big > emb ? big : emb;
    uint16_t *r = malloc(nr * sizeof *r), *ones = malloc(T5_SYNTH_DIM * sizeof *ones);
    int nt = 10 * layers + 2;
    st_named *named = calloc((size_t)nt, sizeof *named);
    tensor *ts = calloc((size_t)nt, sizeof *ts);
    char(*names)[96] = calloc((size_t)nt, sizeof *names);
    int st = r && ones && named && ts && names
                 ? REEL_OK
                 : err_set(REEL_E_NOMEM, "t5 synth: synthetic weights");
    if (st == REEL_OK) /* uniform with std 1/sqrt(dim) */
        synth_fill_bf16(r, nr, 1.7320508f / 64.0f, 0x9e3779b97f4a7c15ull);
    for (int i = 0; st == REEL_OK && i < T5_SYNTH_DIM; i++)
        ones[i] = f32_to_bf16(1.0f);
    /* the transformers layout, keys from the loader's table (t5_config.c): parameters
     * T5P_NORM1 + p for p = 0..9, in the order of the shapes below */
    const t5_config hf = {.layout = T5_LAYOUT_HF};
    const int64_t shape[10][2] = {
        {T5_SYNTH_DIM, 0},           {T5_SYNTH_DIM, T5_SYNTH_DIM}, {T5_SYNTH_DIM, T5_SYNTH_DIM}, {T5_SYNTH_DIM, T5_SYNTH_DIM}, {T5_SYNTH_DIM, T5_SYNTH_DIM},
        {T5_SYNTH_BUCKETS, T5_SYNTH_HEADS}, {T5_SYNTH_DIM, 0},     {T5_SYNTH_FFN, T5_SYNTH_DIM}, {T5_SYNTH_FFN, T5_SYNTH_DIM}, {T5_SYNTH_DIM, T5_SYNTH_FFN}};
    int k = 0;
    for (int l = 0; st == REEL_OK && l < layers; l++)
        for (int p = 0; p < 10; p++, k++) {
            t5_key(&hf, (enum t5_param)(T5P_NORM1 + p), l, names[k], sizeof names[k]);
            uint16_t *data = shape[p][1] ? r + (size_t)p * T5_SYNTH_DIM : ones;
            ts[k] = tensor_make(data, DT_BF16, DEV_CPU, shape[p][1] ? 2 : 1, shape[p]);
            named[k].name = names[k];
            named[k].t = &ts[k];
        }
    if (st == REEL_OK) {
        int64_t es[2] = {vocab, T5_SYNTH_DIM}, ns = T5_SYNTH_DIM;
        ts[k] = tensor_make(r, DT_BF16, DEV_CPU, 2, es);
        named[k] = (st_named){t5_key(&hf, T5P_EMBED, 0, names[k], sizeof names[k]), &ts[k]};
        k++;
        ts[k] = tensor_make(ones, DT_BF16, DEV_CPU, 1, &ns);
        named[k] = (st_named){t5_key(&hf, T5P_FINAL_NORM, 0, names[k], sizeof names[k]), &ts[k]};
        st = st_write_file(path, named, nt, NULL, 1);
    }
    free(r), free(ones), free(named), free(ts), free(names);
    return st;
}

