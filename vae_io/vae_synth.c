/* Synthetic Wan2.1 VAE checkpoints (see vae_synth.h). The layer walk mirrors WanVAE_'s
 * constructor in wan/modules/vae.py: Encoder3d dims = dim * [1, 1, 2, 4, 4], Decoder3d dims =
 * dim * [4, 4, 4, 2, 1] with the input of stages 1..3 halved by the preceding Resample. Weights
 * are uniform with the variance of a fan-in normal init, so activations keep their scale. */
#include "vae_synth.h"

#include "dit/error.h"
#include "dit/numeric.h"
#include "dit/st_write.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const int synth_mult[4] = {1, 2, 4, 4};

typedef struct synth {
    vae_synth_opts o;
    uint64_t rng;
    st_named *named;
    tensor *ts;
    char (*names)[96];
    int n, cap;
    int st;
} synth;

vae_synth_opts vae_synth_default(void)
{
    vae_synth_opts o = {96, 16, DT_BF16, 1, 0.1f};
    return o;
}

static float uniform(synth *s)
{
    s->rng ^= s->rng >> 12, s->rng ^= s->rng << 25, s->rng ^= s->rng >> 27;
    return (float)((s->rng * 0x2545f4914f6cdd1dull) >> 40) / 16777216.0f * 2.0f - 1.0f;
}

static void add(synth *s, const char *name, int ndim, const int64_t *shape, float stddev, float mean)
{
    if (s->st < 0)
        return;
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 512;
        st_named *nn = realloc(s->named, (size_t)cap * sizeof *nn);
        if (nn)
            s->named = nn;
        tensor *nt = realloc(s->ts, (size_t)cap * sizeof *nt);
        if (nt)
            s->ts = nt;
        char(*nm)[96] = realloc(s->names, (size_t)cap * sizeof *nm);
        if (nm)
            s->names = nm;
        if (!nn || !nt || !nm) {
            s->st = err_set(REEL_E_NOMEM, "vae synth: tensor list");
            return;
        }
        s->cap = cap;
    }
    snprintf(s->names[s->n], sizeof s->names[s->n], "%s", name);
    tensor *t = &s->ts[s->n];
    *t = tensor_make(NULL, s->o.dtype, DEV_CPU, ndim, shape);
    int64_t n = tensor_numel(t);
    if (!(t->data = malloc(tensor_nbytes(t)))) {
        s->st = err_set(REEL_E_NOMEM, "vae synth: %s (%lld values)", name, (long long)n);
        return;
    }
    float a = stddev * sqrtf(3.0f); /* uniform [-a, a] has standard deviation stddev */
    for (int64_t i = 0; i < n; i++) {
        float v = mean + a * uniform(s);
        if (s->o.dtype == DT_F32)
            ((float *)t->data)[i] = v;
        else
            ((uint16_t *)t->data)[i] = f32_to_bf16(v);
    }
    s->named[s->n].name = s->names[s->n];
    s->named[s->n].t = t;
    s->n++;
}

/* kt == 0: a Conv2d weight [cout, cin, k, k]. */
static void conv(synth *s, const char *block, int cout, int cin, int kt, int k, float gain)
{
    char n[128];
    int64_t s5[5] = {cout, cin, kt, k, k}, s4[4] = {cout, cin, k, k};
    float sd = gain / sqrtf((float)cin * (kt ? kt : 1) * k * k);
    snprintf(n, sizeof n, "%s.weight", block);
    add(s, n, kt ? 5 : 4, kt ? s5 : s4, sd, 0.0f);
    snprintf(n, sizeof n, "%s.bias", block);
    add(s, n, 1, s5, 0.02f, 0.0f);
}

static void norm_gain(synth *s, const char *key, int c, int images)
{
    int64_t shape[4] = {c, 1, 1, 1};
    add(s, key, images ? 3 : 4, shape, 0.1f, 1.0f);
}

static void res(synth *s, const char *b, int cin, int cout)
{
    char n[128];
    snprintf(n, sizeof n, "%s.residual.0.gamma", b);
    norm_gain(s, n, cin, 0);
    snprintf(n, sizeof n, "%s.residual.2", b);
    conv(s, n, cout, cin, 3, 3, 1.0f);
    snprintf(n, sizeof n, "%s.residual.3.gamma", b);
    norm_gain(s, n, cout, 0);
    snprintf(n, sizeof n, "%s.residual.6", b);
    conv(s, n, cout, cout, 3, 3, 1.0f);
    if (cin != cout) {
        snprintf(n, sizeof n, "%s.shortcut", b);
        conv(s, n, cout, cin, 1, 1, 1.0f);
    }
}

static void attn(synth *s, const char *b, int c)
{
    char n[128];
    snprintf(n, sizeof n, "%s.norm.gamma", b);
    norm_gain(s, n, c, 1);
    snprintf(n, sizeof n, "%s.to_qkv", b);
    conv(s, n, 3 * c, c, 0, 1, 1.0f);
    snprintf(n, sizeof n, "%s.proj", b);
    conv(s, n, c, c, 0, 1, 1.0f);
}

static void middle(synth *s, const char *side, int c)
{
    char b[64];
    snprintf(b, sizeof b, "%s.middle.0", side);
    res(s, b, c, c);
    snprintf(b, sizeof b, "%s.middle.1", side);
    attn(s, b, c);
    snprintf(b, sizeof b, "%s.middle.2", side);
    res(s, b, c, c);
}

static void encoder(synth *s)
{
    int dim = s->o.dim, c = dim, idx = 0;
    char b[96];
    conv(s, "encoder.conv1", dim, 3, 3, 3, 1.0f);
    for (int i = 0; i < 4; i++) {
        int out = dim * synth_mult[i];
        for (int r = 0; r < 2; r++, idx++, c = out) {
            snprintf(b, sizeof b, "encoder.downsamples.%d", idx);
            res(s, b, c, out);
        }
        if (i < 3) {
            snprintf(b, sizeof b, "encoder.downsamples.%d.resample.1", idx);
            conv(s, b, c, c, 0, 3, 1.0f);
            if (i > 0) { /* temperal_downsample [False, True, True] */
                snprintf(b, sizeof b, "encoder.downsamples.%d.time_conv", idx);
                conv(s, b, c, c, 3, 1, 1.0f);
            }
            idx++;
        }
    }
    middle(s, "encoder", c);
    norm_gain(s, "encoder.head.0.gamma", c, 0);
    conv(s, "encoder.head.2", 2 * s->o.z, c, 3, 3, 1.0f);
    conv(s, "conv1", 2 * s->o.z, 2 * s->o.z, 1, 1, 1.0f);
}

static void decoder(synth *s)
{
    int dim = s->o.dim, idx = 0;
    int dims[5] = {dim * 4, dim * 4, dim * 4, dim * 2, dim};
    char b[96];
    conv(s, "conv2", s->o.z, s->o.z, 1, 1, 1.0f);
    conv(s, "decoder.conv1", dims[0], s->o.z, 3, 3, 1.0f);
    middle(s, "decoder", dims[0]);
    for (int i = 0; i < 4; i++) {
        int c = i ? dims[i] / 2 : dims[i];
        for (int r = 0; r < 3; r++, idx++, c = dims[i + 1]) {
            snprintf(b, sizeof b, "decoder.upsamples.%d", idx);
            res(s, b, c, dims[i + 1]);
        }
        if (i < 3) {
            snprintf(b, sizeof b, "decoder.upsamples.%d.resample.1", idx);
            conv(s, b, c / 2, c, 0, 3, 1.0f);
            if (i < 2) { /* temperal_upsample [True, True, False] */
                snprintf(b, sizeof b, "decoder.upsamples.%d.time_conv", idx);
                conv(s, b, 2 * c, c, 3, 1, 1.0f);
            }
            idx++;
        }
    }
    norm_gain(s, "decoder.head.0.gamma", dim, 0);
    conv(s, "decoder.head.2", 3, dim, 3, 3, s->o.head_gain);
}

int vae_synth_write(const char *path, const vae_synth_opts *o)
{
    if (o->dim < 1 || o->dim > 4096 || o->z < 1 || o->z > 1024 ||
        (o->dtype != DT_F32 && o->dtype != DT_BF16))
        return err_set(REEL_E_INVALID, "vae synth: dim %d, z %d, dtype %s", o->dim, o->z,
                       dtype_name(o->dtype));
    synth s;
    memset(&s, 0, sizeof s);
    s.o = *o;
    s.rng = o->seed ? o->seed : 1;
    encoder(&s);
    decoder(&s);
    int st = s.st;
    if (st >= 0)
        st = st_write_file(path, s.named, s.n, NULL, 1);
    for (int i = 0; i < s.n; i++)
        free(s.ts[i].data);
    free(s.named);
    free(s.ts);
    free(s.names);
    return st;
}

/* Residual block MACs at vox voxels. */
static double res_macs(int cin, int cout, double vox)
{
    return vox * (27.0 * cin * cout + 27.0 * cout * cout + (cin != cout ? (double)cin * cout : 0));
}

double vae_synth_decode_macs(int dim, int z, int T, int h, int w)
{
    int dims[5] = {dim * 4, dim * 4, dim * 4, dim * 2, dim};
    double frames = T, px = (double)h * w, m = 0;
    m += frames * px * ((double)z * z + 27.0 * z * dims[0]);
    m += 2 * res_macs(dims[0], dims[0], frames * px);
    m += frames * px * 4.0 * dims[0] * dims[0] + frames * 2.0 * px * px * dims[0]; /* attention */
    for (int i = 0; i < 4; i++) {
        int c = i ? dims[i] / 2 : dims[i];
        for (int r = 0; r < 3; r++, c = dims[i + 1])
            m += res_macs(c, dims[i + 1], frames * px);
        if (i == 3)
            break;
        if (i < 2) { /* time_conv on every frame but the first, then twice the frames */
            m += (frames - 1) * px * 3.0 * c * 2 * c;
            frames = 1 + 2 * (frames - 1);
        }
        px *= 4;
        m += frames * px * 9.0 * c * (c / 2);
    }
    m += frames * px * 27.0 * dim * 3;
    return m;
}
