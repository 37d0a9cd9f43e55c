#include "wan_synth.h"

#include "error.h"
#include "numeric.h"
#include "st_write.h"
#include "synth_fill.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Every matrix views one shared random bf16 buffer at its own offset (so q, k and v differ)
 * scaled for unit-variance activations (std 1/sqrt(fan-in) of the largest fan-in); biases and
 * modulations view a small random buffer, norm gains a buffer of ones. Memory stays at one
 * FFN matrix however deep the model. */
typedef struct synth_list {
    st_named *named;
    tensor *ts;
    char (*names)[96];
    int n;
} synth_list;

static void put(synth_list *l, const char *name, void *data, int ndim, int64_t a, int64_t b,
                int64_t c, int64_t d, int64_t e)
{
    int64_t shape[5] = {a, b, c, d, e};
    snprintf(l->names[l->n], sizeof l->names[l->n], "%s", name);
    l->ts[l->n] = tensor_make(data, DT_BF16, DEV_CPU, ndim, shape);
    l->named[l->n] = (st_named){l->names[l->n], &l->ts[l->n]};
    l->n++;
}

static int write_config(const char *dir, const wan_config *c)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    if (!f)
        return err_set(REEL_E_IO, "%s: cannot create", path);
    fprintf(f,
            "{\"_class_name\": \"WanModel\", \"model_type\": \"t2v\", \"dim\": %d, \"ffn_dim\": %d, "
            "\"freq_dim\": %d, \"num_heads\": %d, \"num_layers\": %d, \"in_dim\": %d, "
            "\"out_dim\": %d, \"text_len\": %d, \"eps\": %g}\n",
            c->dim, c->ffn_dim, c->freq_dim, c->heads, c->layers, c->in_dim, c->out_dim,
            c->text_len, (double)c->eps);
    return fclose(f) == 0 ? REEL_OK : err_set(REEL_E_IO, "%s: write failed", path);
}

int wan_synth_write(const char *dir, const wan_config *c)
{
    TRY(wan_config_validate(c));
    TRY(write_config(dir, c));
    const int64_t D = c->dim, FF = c->ffn_dim, P = (int64_t)c->patch[0] * c->patch[1] * c->patch[2];
    int64_t big_in = FF > c->text_dim ? FF : c->text_dim;
    if (c->freq_dim > big_in)
        big_in = c->freq_dim;
    /* the largest matrix is [max(6D, FF, text_dim...), ...]: FF x D, 6D x D or D x text_dim */
    size_t big = (size_t)(6 * D > FF ? 6 * D : FF) * (size_t)(D > big_in ? D : big_in) + 64 * (size_t)D;
    size_t small = 6 * (size_t)(FF > 6 * D ? FF : 6 * D);
    uint16_t *w = malloc(big * 2), *b = malloc(small * 2), *ones = malloc((size_t)D * 2);
    int cap = 16 + 27 * c->layers;
    synth_list l = {calloc((size_t)cap, sizeof *l.named), calloc((size_t)cap, sizeof *l.ts),
                    calloc((size_t)cap, sizeof *l.names), 0};
    int st = w && b && ones && l.named && l.ts && l.names ? REEL_OK
                                                           : err_set(REEL_E_NOMEM, "wan synth: buffers");
    if (st >= 0) {
        synth_fill_bf16(w, big, 1.7320508f / sqrtf((float)D), 0x9e3779b97f4a7c15ull);
        synth_fill_bf16(b, small, 0.05f, 0x2545f4914f6cdd1dull);
        for (int64_t i = 0; i < D; i++)
            ones[i] = f32_to_bf16(1.0f);
        int k = 0; /* matrix number: each starts 64 elements further into w */
#define M(name, r, cols) put(&l, name, w + 64 * (size_t)(k++ % 64), 2, r, cols, 0, 0, 0)
#define V(name, n) put(&l, name, b, 1, n, 0, 0, 0, 0)
        put(&l, "patch_embedding.weight", w, 5, D, c->in_dim, c->patch[0], c->patch[1], c->patch[2]);
        V("patch_embedding.bias", D);
        M("text_embedding.0.weight", D, c->text_dim);
        V("text_embedding.0.bias", D);
        M("text_embedding.2.weight", D, D);
        V("text_embedding.2.bias", D);
        M("time_embedding.0.weight", D, c->freq_dim);
        V("time_embedding.0.bias", D);
        M("time_embedding.2.weight", D, D);
        V("time_embedding.2.bias", D);
        M("time_projection.1.weight", 6 * D, D);
        V("time_projection.1.bias", 6 * D);
        M("head.head.weight", P * c->out_dim, D);
        V("head.head.bias", P * c->out_dim);
        put(&l, "head.modulation", b, 3, 1, 2, D, 0, 0);
        char n[96];
        for (int i = 0; i < c->layers; i++) {
            static const char *const attn[2] = {"self_attn", "cross_attn"};
#define BLK(fmt, ...) (snprintf(n, sizeof n, "blocks.%d." fmt, i, __VA_ARGS__), n)
            put(&l, BLK("%s", "modulation"), b, 3, 1, 6, D, 0, 0);
            for (int a = 0; a < 2; a++) {
                for (const char *q = "qkvo"; *q; q++) {
                    M(BLK("%s.%c.weight", attn[a], *q), D, D);
                    V(BLK("%s.%c.bias", attn[a], *q), D);
                }
                put(&l, BLK("%s.norm_q.weight", attn[a]), ones, 1, D, 0, 0, 0, 0);
                put(&l, BLK("%s.norm_k.weight", attn[a]), ones, 1, D, 0, 0, 0, 0);
            }
            put(&l, BLK("%s", "norm3.weight"), ones, 1, D, 0, 0, 0, 0);
            V(BLK("%s", "norm3.bias"), D);
            M(BLK("%s", "ffn.0.weight"), FF, D);
            V(BLK("%s", "ffn.0.bias"), FF);
            M(BLK("%s", "ffn.2.weight"), D, FF);
            V(BLK("%s", "ffn.2.bias"), D);
#undef BLK
        }
#undef M
#undef V
        char path[1100];
        snprintf(path, sizeof path, "%s/diffusion_pytorch_model.safetensors", dir);
        st = st_write_file(path, l.named, l.n, NULL, 1);
    }
    free(w), free(b), free(ones), free(l.named), free(l.ts), free(l.names);
    return st;
}
