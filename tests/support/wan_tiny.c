#include "wan_tiny.h"

#include "check.h"
#include "dit/error.h"
#include "dit/numeric.h"
#include "model_writer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void wan_tiny_config(wan_config *c)
{
    memset(c, 0, sizeof *c);
    c->dim = 256;
    c->heads = 2;
    c->head_dim = 128;
    c->ffn_dim = 384;
    c->layers = 2;
    c->in_dim = c->out_dim = 16;
    c->text_dim = 64;
    c->freq_dim = 256;
    c->text_len = 512;
    c->patch[0] = 1;
    c->patch[1] = c->patch[2] = 2;
    c->eps = 1e-6f;
}

static uint64_t tiny_rng;

static double tiny_normal(void)
{
    /* splitmix64 + Box-Muller: independent of check.c's generator so models are stable per seed */
    uint64_t z1 = (tiny_rng += 0x9e3779b97f4a7c15ull), z2 = (tiny_rng += 0x9e3779b97f4a7c15ull);
    z1 = (z1 ^ (z1 >> 30)) * 0xbf58476d1ce4e5b9ull;
    z1 = (z1 ^ (z1 >> 27)) * 0x94d049bb133111ebull;
    z1 ^= z1 >> 31;
    z2 = (z2 ^ (z2 >> 30)) * 0xbf58476d1ce4e5b9ull;
    z2 = (z2 ^ (z2 >> 27)) * 0x94d049bb133111ebull;
    z2 ^= z2 >> 31;
    double u1 = ((double)(z1 >> 11) + 1.0) / 9007199254740993.0;
    double u2 = (double)(z2 >> 11) / 9007199254740992.0;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

static int add(wan_tiny *m, const char *name, int ndim, int64_t a, int64_t b, int64_t c,
               int64_t d, int64_t e, double scale, double offset)
{
    wan_tiny_tensor *t = &m->t[m->n++];
    snprintf(t->name, sizeof t->name, "%s", name);
    int64_t shape[5] = {a, b, c, d, e};
    t->ndim = ndim;
    size_t n = 1;
    for (int i = 0; i < ndim; i++) {
        t->shape[i] = shape[i];
        n *= (size_t)shape[i];
    }
    t->data = malloc(n * sizeof(float));
    if (!t->data)
        return err_set(REEL_E_NOMEM, "tiny model: out of memory");
    /* bf16-representable and above fp16's smallest normal, so f32, bf16 and f16 files all
     * store exactly these values */
    for (size_t i = 0; i < n; i++) {
        float v = bf16_to_f32(f32_to_bf16((float)(offset + scale * tiny_normal())));
        t->data[i] = fabsf(v) < 6.2e-5f ? 0.0f : v;
    }
    return REEL_OK;
}

int wan_tiny_make(const wan_config *cfg, uint64_t seed, wan_tiny *m)
{
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    tiny_rng = seed;
    const int64_t D = cfg->dim, F = cfg->ffn_dim;
    const int64_t P = (int64_t)cfg->patch[0] * cfg->patch[1] * cfg->patch[2];
    m->t = calloc(16 + 27 * (size_t)cfg->layers, sizeof *m->t);
    if (!m->t)
        return err_set(REEL_E_NOMEM, "tiny model: out of memory");
    double sD = 1 / sqrt((double)D), sF = 1 / sqrt((double)F);
    TRY(add(m, "patch_embedding.weight", 5, D, cfg->in_dim, cfg->patch[0], cfg->patch[1],
            cfg->patch[2], 1 / sqrt((double)(cfg->in_dim * P)), 0));
    TRY(add(m, "patch_embedding.bias", 1, D, 0, 0, 0, 0, 0.1, 0));
    TRY(add(m, "text_embedding.0.weight", 2, D, cfg->text_dim, 0, 0, 0, 1 / sqrt((double)cfg->text_dim), 0));
    TRY(add(m, "text_embedding.0.bias", 1, D, 0, 0, 0, 0, 0.1, 0));
    TRY(add(m, "text_embedding.2.weight", 2, D, D, 0, 0, 0, sD, 0));
    TRY(add(m, "text_embedding.2.bias", 1, D, 0, 0, 0, 0, 0.1, 0));
    TRY(add(m, "time_embedding.0.weight", 2, D, cfg->freq_dim, 0, 0, 0, 1 / sqrt((double)cfg->freq_dim), 0));
    TRY(add(m, "time_embedding.0.bias", 1, D, 0, 0, 0, 0, 0.1, 0));
    TRY(add(m, "time_embedding.2.weight", 2, D, D, 0, 0, 0, sD, 0));
    TRY(add(m, "time_embedding.2.bias", 1, D, 0, 0, 0, 0, 0.1, 0));
    TRY(add(m, "time_projection.1.weight", 2, 6 * D, D, 0, 0, 0, 0.5 * sD, 0));
    TRY(add(m, "time_projection.1.bias", 1, 6 * D, 0, 0, 0, 0, 0.05, 0));
    TRY(add(m, "head.head.weight", 2, P * cfg->out_dim, D, 0, 0, 0, sD, 0));
    TRY(add(m, "head.head.bias", 1, P * cfg->out_dim, 0, 0, 0, 0, 0.1, 0));
    TRY(add(m, "head.modulation", 3, 1, 2, D, 0, 0, 0.1, 0));
    char name[96];
    static const struct {
        const char *suffix;
        int kind; /* 0: [D,D] 1: [D] bias 2: [D] gain 3: ffn0 w 4: ffn0 b 5: ffn2 w 6: modulation */
    } per_block[] = {
        {"modulation", 6},
        {"self_attn.q.weight", 0}, {"self_attn.q.bias", 1}, {"self_attn.k.weight", 0},
        {"self_attn.k.bias", 1}, {"self_attn.v.weight", 0}, {"self_attn.v.bias", 1},
        {"self_attn.o.weight", 0}, {"self_attn.o.bias", 1}, {"self_attn.norm_q.weight", 2},
        {"self_attn.norm_k.weight", 2}, {"norm3.weight", 2}, {"norm3.bias", 1},
        {"cross_attn.q.weight", 0}, {"cross_attn.q.bias", 1}, {"cross_attn.k.weight", 0},
        {"cross_attn.k.bias", 1}, {"cross_attn.v.weight", 0}, {"cross_attn.v.bias", 1},
        {"cross_attn.o.weight", 0}, {"cross_attn.o.bias", 1}, {"cross_attn.norm_q.weight", 2},
        {"cross_attn.norm_k.weight", 2}, {"ffn.0.weight", 3}, {"ffn.0.bias", 4},
        {"ffn.2.weight", 5}, {"ffn.2.bias", 1},
    };
    for (int i = 0; i < cfg->layers; i++)
        for (size_t j = 0; j < sizeof per_block / sizeof per_block[0]; j++) {
            snprintf(name, sizeof name, "blocks.%d.%s", i, per_block[j].suffix);
            switch (per_block[j].kind) {
            case 0: TRY(add(m, name, 2, D, D, 0, 0, 0, sD, 0)); break;
            case 1: TRY(add(m, name, 1, D, 0, 0, 0, 0, 0.1, 0)); break;
            case 2: TRY(add(m, name, 1, D, 0, 0, 0, 0, 0.1, 1.0)); break;
            case 3: TRY(add(m, name, 2, F, D, 0, 0, 0, sD, 0)); break;
            case 4: TRY(add(m, name, 1, F, 0, 0, 0, 0, 0.1, 0)); break;
            case 5: TRY(add(m, name, 2, D, F, 0, 0, 0, sF, 0)); break;
            default: TRY(add(m, name, 3, 1, 6, D, 0, 0, 0.1, 0)); break;
            }
        }
    return REEL_OK;
}

void wan_tiny_free(wan_tiny *m)
{
    for (int i = 0; i < m->n; i++)
        free(m->t[i].data);
    free(m->t);
    memset(m, 0, sizeof *m);
}

const float *wan_tiny_get(const wan_tiny *m, const char *canonical)
{
    for (int i = 0; i < m->n; i++)
        if (strcmp(m->t[i].name, canonical) == 0)
            return m->t[i].data;
    fprintf(stderr, "wan_tiny_get: no tensor '%s'\n", canonical);
    abort(); /* a test-suite bug, never user input */
}

/* ---- writing ------------------------------------------------------------------------------ */

/* diffusers names, written out from the spec's table (wan_dit_detail.md §2.4) as the oracle for
 * reel's own mapping: deliberately not computed by reel's code. */
static void diffusers_name(const char *canonical, char *out, size_t n)
{
    static const char *const table[][2] = {
        {"text_embedding.0.", "condition_embedder.text_embedder.linear_1."},
        {"text_embedding.2.", "condition_embedder.text_embedder.linear_2."},
        {"time_embedding.0.", "condition_embedder.time_embedder.linear_1."},
        {"time_embedding.2.", "condition_embedder.time_embedder.linear_2."},
        {"time_projection.1.", "condition_embedder.time_proj."},
        {"head.head.", "proj_out."},
        {"head.modulation", "scale_shift_table"},
        {".modulation", ".scale_shift_table"},
        {".self_attn.q.", ".attn1.to_q."}, {".self_attn.k.", ".attn1.to_k."},
        {".self_attn.v.", ".attn1.to_v."}, {".self_attn.o.", ".attn1.to_out.0."},
        {".self_attn.norm_q.", ".attn1.norm_q."}, {".self_attn.norm_k.", ".attn1.norm_k."},
        {".cross_attn.q.", ".attn2.to_q."}, {".cross_attn.k.", ".attn2.to_k."},
        {".cross_attn.v.", ".attn2.to_v."}, {".cross_attn.o.", ".attn2.to_out.0."},
        {".cross_attn.norm_q.", ".attn2.norm_q."}, {".cross_attn.norm_k.", ".attn2.norm_k."},
        {".norm3.", ".norm2."}, {".ffn.0.", ".ffn.net.0.proj."}, {".ffn.2.", ".ffn.net.2."},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        const char *at = strstr(canonical, table[i][0]);
        if (at) {
            snprintf(out, n, "%.*s%s%s", (int)(at - canonical), canonical, table[i][1],
                     at + strlen(table[i][0]));
            return;
        }
    }
    snprintf(out, n, "%s", canonical);
}

static int write_config(const char *path, const wan_config *c, int diffusers)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return err_set(REEL_E_IO, "%s: cannot create", path);
    if (diffusers)
        fprintf(f,
                "{\"_class_name\": \"WanTransformer3DModel\", \"num_attention_heads\": %d, "
                "\"attention_head_dim\": %d, \"in_channels\": %d, \"out_channels\": %d, "
                "\"text_dim\": %d, \"freq_dim\": %d, \"ffn_dim\": %d, \"num_layers\": %d, "
                "\"patch_size\": [%d, %d, %d], \"cross_attn_norm\": true, "
                "\"qk_norm\": \"rms_norm_across_heads\", \"eps\": %g, \"rope_max_seq_len\": 1024}\n",
                c->heads, c->head_dim, c->in_dim, c->out_dim, c->text_dim, c->freq_dim, c->ffn_dim,
                c->layers, c->patch[0], c->patch[1], c->patch[2], (double)c->eps);
    else
        fprintf(f,
                "{\"_class_name\": \"WanModel\", \"model_type\": \"t2v\", \"dim\": %d, "
                "\"ffn_dim\": %d, \"freq_dim\": %d, \"num_heads\": %d, \"num_layers\": %d, "
                "\"in_dim\": %d, \"out_dim\": %d, \"text_len\": %d, \"eps\": %g}\n",
                c->dim, c->ffn_dim, c->freq_dim, c->heads, c->layers, c->in_dim, c->out_dim,
                c->text_len, (double)c->eps);
    if (fclose(f) != 0)
        return err_set(REEL_E_IO, "%s: write failed", path);
    return REEL_OK;
}

int wan_tiny_write(const wan_tiny *m, enum model_layout layout, enum dtype dt, int shards,
                   const char *dir, char *path_out, size_t path_n)
{
    char path[1024], sub[1024];
    mkdir(dir, 0755);
    tw_tensor *tw = calloc((size_t)m->n, sizeof *tw);
    char(*names)[160] = calloc((size_t)m->n, sizeof *names);
    void **bufs = calloc((size_t)m->n, sizeof *bufs);
    int st = tw && names && bufs ? REEL_OK : err_set(REEL_E_NOMEM, "tiny model writer");
    for (int i = 0; st >= 0 && i < m->n; i++) {
        const wan_tiny_tensor *t = &m->t[i];
        size_t n = 1;
        for (int d = 0; d < t->ndim; d++)
            n *= (size_t)t->shape[d];
        if (layout == LAYOUT_DIFFUSERS)
            diffusers_name(t->name, names[i], sizeof names[i]);
        else if (layout == LAYOUT_COMFYUI)
            snprintf(names[i], sizeof names[i], "model.diffusion_model.%s", t->name);
        else if (layout == LAYOUT_SELF_FORCING)
            snprintf(names[i], sizeof names[i], "model.%s", t->name);
        else
            snprintf(names[i], sizeof names[i], "%s", t->name);
        bufs[i] = malloc(n * dtype_size(dt));
        if (!bufs[i]) {
            st = err_set(REEL_E_NOMEM, "tiny model writer");
            break;
        }
        for (size_t k = 0; k < n; k++) {
            if (dt == DT_F32)
                ((float *)bufs[i])[k] = t->data[k];
            else if (dt == DT_BF16)
                ((uint16_t *)bufs[i])[k] = f32_to_bf16(t->data[k]);
            else
                ((uint16_t *)bufs[i])[k] = f32_to_f16(t->data[k]);
        }
        tw[i].name = names[i];
        tw[i].dtype = dt;
        tw[i].ndim = t->ndim;
        memcpy(tw[i].shape, t->shape, sizeof t->shape);
        tw[i].data = bufs[i];
    }
    if (st >= 0) {
        switch (layout) {
        case LAYOUT_DIFFUSERS:
            snprintf(sub, sizeof sub, "%s/transformer", dir);
            mkdir(sub, 0755);
            snprintf(path, sizeof path, "%s/config.json", sub);
            st = write_config(path, &m->cfg, 1);
            if (st >= 0 && shards > 1)
                st = tw_write_sharded(sub, "diffusion_pytorch_model", tw, m->n, shards);
            else if (st >= 0) {
                snprintf(path, sizeof path, "%s/diffusion_pytorch_model.safetensors", sub);
                st = tw_write_safetensors(path, tw, m->n, NULL);
            }
            snprintf(path, sizeof path, "%s", dir);
            break;
        case LAYOUT_COMFYUI:
            snprintf(path, sizeof path, "%s/wan_tiny.safetensors", dir);
            st = tw_write_safetensors(path, tw, m->n, NULL);
            break;
        case LAYOUT_SELF_FORCING:
            snprintf(path, sizeof path, "%s/self_forcing.pt", dir);
            st = tw_write_pth(path, tw, m->n, "generator_ema");
            break;
        default:
            snprintf(path, sizeof path, "%s/config.json", dir);
            st = write_config(path, &m->cfg, 0);
            if (st >= 0 && shards > 1)
                st = tw_write_sharded(dir, "diffusion_pytorch_model", tw, m->n, shards);
            else if (st >= 0) {
                snprintf(path, sizeof path, "%s/diffusion_pytorch_model.safetensors", dir);
                st = tw_write_safetensors(path, tw, m->n, NULL);
            }
            snprintf(path, sizeof path, "%s", dir);
            break;
        }
    }
    if (st >= 0 && path_out)
        snprintf(path_out, path_n, "%s", path);
    for (int i = 0; bufs && i < m->n; i++)
        free(bufs[i]);
    free(bufs);
    free(names);
    free(tw);
    return st;
}

/* ---- reference forward in double ---------------------------------------------------------- */

static void linear(const double *x, int rows, int in, const float *w, const float *b, int out,
                   double *y)
{
    for (int r = 0; r < rows; r++)
        for (int o = 0; o < out; o++) {
            double s = b ? b[o] : 0;
            for (int i = 0; i < in; i++)
                s += x[(size_t)r * in + i] * w[(size_t)o * in + i];
            y[(size_t)r * out + o] = s;
        }
}

static double gelu_tanh(double x)
{
    return 0.5 * x * (1 + tanh(sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
}

static double silu(double x) { return x / (1 + exp(-x)); }

static void layer_norm(const double *x, int rows, int D, double eps, double *y)
{
    for (int r = 0; r < rows; r++) {
        const double *a = x + (size_t)r * D;
        double mean = 0, var = 0;
        for (int i = 0; i < D; i++)
            mean += a[i];
        mean /= D;
        for (int i = 0; i < D; i++)
            var += (a[i] - mean) * (a[i] - mean);
        var /= D;
        for (int i = 0; i < D; i++)
            y[(size_t)r * D + i] = (a[i] - mean) / sqrt(var + eps);
    }
}

static void rms_norm(double *x, int rows, int D, const float *g, double eps)
{
    for (int r = 0; r < rows; r++) {
        double *a = x + (size_t)r * D, ms = 0;
        for (int i = 0; i < D; i++)
            ms += a[i] * a[i];
        double inv = 1 / sqrt(ms / D + eps);
        for (int i = 0; i < D; i++)
            a[i] = a[i] * inv * g[i];
    }
}

/* Wan 3D RoPE on one head vector at grid position (ft, fy, fx). */
static void rope(double *v, int hd, int ft, int fy, int fx)
{
    int pairs = hd / 2, ph = pairs / 3, pt = pairs - 2 * ph;
    for (int p = 0; p < pairs; p++) {
        double ang;
        if (p < pt)
            ang = ft * pow(10000.0, -2.0 * p / (2.0 * pt));
        else if (p < pt + ph)
            ang = fy * pow(10000.0, -2.0 * (p - pt) / (2.0 * ph));
        else
            ang = fx * pow(10000.0, -2.0 * (p - pt - ph) / (2.0 * ph));
        double a = v[2 * p], b = v[2 * p + 1];
        v[2 * p] = a * cos(ang) - b * sin(ang);
        v[2 * p + 1] = a * sin(ang) + b * cos(ang);
    }
}

static void attention(const double *q, const double *k, const double *v, int Lq, int Lk, int H,
                      int hd, double *out)
{
    int D = H * hd;
    double *s = malloc((size_t)Lk * sizeof *s);
    for (int h = 0; h < H; h++)
        for (int i = 0; i < Lq; i++) {
            double mx = -INFINITY;
            for (int j = 0; j < Lk; j++) {
                double d = 0;
                for (int c = 0; c < hd; c++)
                    d += q[(size_t)i * D + h * hd + c] * k[(size_t)j * D + h * hd + c];
                s[j] = d / sqrt((double)hd);
                if (s[j] > mx)
                    mx = s[j];
            }
            double z = 0;
            for (int j = 0; j < Lk; j++)
                z += (s[j] = exp(s[j] - mx));
            for (int c = 0; c < hd; c++) {
                double acc = 0;
                for (int j = 0; j < Lk; j++)
                    acc += s[j] * v[(size_t)j * D + h * hd + c];
                out[(size_t)i * D + h * hd + c] = acc / z;
            }
        }
    free(s);
}

void wan_ref_forward(const wan_tiny *m, const float *latent, int F, int H, int W, const float *t,
                     int nt, const float *context, int Lc, double *out)
{
    const wan_config *c = &m->cfg;
    const int D = c->dim, FF = c->ffn_dim, hd = c->head_dim, NH = c->heads, T = c->text_len;
    const int pt = c->patch[0], ph = c->patch[1], pw = c->patch[2];
    const int gf = F / pt, gh = H / ph, gw = W / pw, L = gf * gh * gw;
    const int K = c->in_dim * pt * ph * pw, P = pt * ph * pw;
    char name[96];
#define G(n) wan_tiny_get(m, n)
    /* patch embedding */
    double *patch = calloc((size_t)L * K, sizeof *patch), *x = calloc((size_t)L * D, sizeof *x);
    for (int fi = 0; fi < gf; fi++)
        for (int yi = 0; yi < gh; yi++)
            for (int xi = 0; xi < gw; xi++) {
                int tok = (fi * gh + yi) * gw + xi, k = 0;
                for (int ch = 0; ch < c->in_dim; ch++)
                    for (int a = 0; a < pt; a++)
                        for (int b = 0; b < ph; b++)
                            for (int d = 0; d < pw; d++)
                                patch[(size_t)tok * K + k++] =
                                    latent[(((size_t)ch * F + fi * pt + a) * H + yi * ph + b) * W +
                                           xi * pw + d];
            }
    linear(patch, L, K, G("patch_embedding.weight"), G("patch_embedding.bias"), D, x);
    /* time: e per timestep group, e0 = proj(silu(e)) */
    int half = c->freq_dim / 2;
    double *sn = calloc((size_t)c->freq_dim, sizeof *sn), *e1 = calloc((size_t)D, sizeof *e1);
    double *e = calloc((size_t)nt * D, sizeof *e), *e0 = calloc((size_t)nt * 6 * D, sizeof *e0);
    for (int g = 0; g < nt; g++) {
        for (int j = 0; j < half; j++) {
            double a = t[g] * pow(10000.0, -(double)j / half);
            sn[j] = cos(a);
            sn[half + j] = sin(a);
        }
        linear(sn, 1, c->freq_dim, G("time_embedding.0.weight"), G("time_embedding.0.bias"), D, e1);
        for (int i = 0; i < D; i++)
            e1[i] = silu(e1[i]);
        linear(e1, 1, D, G("time_embedding.2.weight"), G("time_embedding.2.bias"), D, e + (size_t)g * D);
        for (int i = 0; i < D; i++)
            e1[i] = silu(e[(size_t)g * D + i]);
        linear(e1, 1, D, G("time_projection.1.weight"), G("time_projection.1.bias"), 6 * D,
               e0 + (size_t)g * 6 * D);
    }
    /* text: zero-pad to text_len, MLP with GELU(tanh) */
    double *ctx = calloc((size_t)T * c->text_dim, sizeof *ctx), *ch = calloc((size_t)T * D, sizeof *ch);
    double *cemb = calloc((size_t)T * D, sizeof *cemb);
    for (size_t i = 0; i < (size_t)Lc * c->text_dim; i++)
        ctx[i] = context[i];
    linear(ctx, T, c->text_dim, G("text_embedding.0.weight"), G("text_embedding.0.bias"), D, ch);
    for (size_t i = 0; i < (size_t)T * D; i++)
        ch[i] = gelu_tanh(ch[i]);
    linear(ch, T, D, G("text_embedding.2.weight"), G("text_embedding.2.bias"), D, cemb);

    double *n = malloc(sizeof(double) * L * D), *q = malloc(sizeof(double) * L * D);
    double *k = malloc(sizeof(double) * (L > T ? L : T) * D), *v = malloc(sizeof(double) * (L > T ? L : T) * D);
    double *o = malloc(sizeof(double) * L * D), *y = malloc(sizeof(double) * L * D);
    double *hbuf = malloc(sizeof(double) * L * FF);
    for (int blk = 0; blk < c->layers; blk++) {
#define B(s) (snprintf(name, sizeof name, "blocks.%d.%s", blk, s), G(name))
        const float *mod = B("modulation");
        /* m[j][g][i] = mod[j][i] + e0[g][j][i]; token tok belongs to group tok / (L / nt) */
#define MOD(j, tok, i) (mod[(j) * D + (i)] + e0[((size_t)((tok) / (L / nt)) * 6 + (j)) * D + (i)])
        layer_norm(x, L, D, c->eps, n);
        for (int r = 0; r < L; r++)
            for (int i = 0; i < D; i++)
                n[(size_t)r * D + i] = n[(size_t)r * D + i] * (1 + MOD(1, r, i)) + MOD(0, r, i);
        linear(n, L, D, B("self_attn.q.weight"), B("self_attn.q.bias"), D, q);
        linear(n, L, D, B("self_attn.k.weight"), B("self_attn.k.bias"), D, k);
        linear(n, L, D, B("self_attn.v.weight"), B("self_attn.v.bias"), D, v);
        rms_norm(q, L, D, B("self_attn.norm_q.weight"), c->eps);
        rms_norm(k, L, D, B("self_attn.norm_k.weight"), c->eps);
        for (int tok = 0; tok < L; tok++)
            for (int h = 0; h < NH; h++) {
                int fi = tok / (gh * gw), yi = (tok / gw) % gh, xi = tok % gw;
                rope(q + (size_t)tok * D + h * hd, hd, fi, yi, xi);
                rope(k + (size_t)tok * D + h * hd, hd, fi, yi, xi);
            }
        attention(q, k, v, L, L, NH, hd, o);
        linear(o, L, D, B("self_attn.o.weight"), B("self_attn.o.bias"), D, y);
        for (int r = 0; r < L; r++)
            for (int i = 0; i < D; i++)
                x[(size_t)r * D + i] += y[(size_t)r * D + i] * MOD(2, r, i);
        /* cross-attention on norm3(x) with affine */
        layer_norm(x, L, D, c->eps, n);
        const float *n3w = B("norm3.weight"), *n3b = B("norm3.bias");
        for (int r = 0; r < L; r++)
            for (int i = 0; i < D; i++)
                n[(size_t)r * D + i] = n[(size_t)r * D + i] * n3w[i] + n3b[i];
        linear(n, L, D, B("cross_attn.q.weight"), B("cross_attn.q.bias"), D, q);
        linear(cemb, T, D, B("cross_attn.k.weight"), B("cross_attn.k.bias"), D, k);
        linear(cemb, T, D, B("cross_attn.v.weight"), B("cross_attn.v.bias"), D, v);
        rms_norm(q, L, D, B("cross_attn.norm_q.weight"), c->eps);
        rms_norm(k, T, D, B("cross_attn.norm_k.weight"), c->eps);
        attention(q, k, v, L, T, NH, hd, o);
        linear(o, L, D, B("cross_attn.o.weight"), B("cross_attn.o.bias"), D, y);
        for (size_t i = 0; i < (size_t)L * D; i++)
            x[i] += y[i];
        /* FFN */
        layer_norm(x, L, D, c->eps, n);
        for (int r = 0; r < L; r++)
            for (int i = 0; i < D; i++)
                n[(size_t)r * D + i] = n[(size_t)r * D + i] * (1 + MOD(4, r, i)) + MOD(3, r, i);
        linear(n, L, D, B("ffn.0.weight"), B("ffn.0.bias"), FF, hbuf);
        for (size_t i = 0; i < (size_t)L * FF; i++)
            hbuf[i] = gelu_tanh(hbuf[i]);
        linear(hbuf, L, FF, B("ffn.2.weight"), B("ffn.2.bias"), D, y);
        for (int r = 0; r < L; r++)
            for (int i = 0; i < D; i++)
                x[(size_t)r * D + i] += y[(size_t)r * D + i] * MOD(5, r, i);
#undef MOD
#undef B
    }
    /* head: (shift, scale) = head.modulation + e */
    const float *hm = G("head.modulation");
    layer_norm(x, L, D, c->eps, n);
    for (int r = 0; r < L; r++) {
        const double *eg = e + (size_t)(r / (L / nt)) * D;
        for (int i = 0; i < D; i++)
            n[(size_t)r * D + i] = n[(size_t)r * D + i] * (1 + hm[D + i] + eg[i]) + hm[i] + eg[i];
    }
    int OC = c->out_dim * P;
    double *ot = malloc(sizeof(double) * L * OC);
    linear(n, L, D, G("head.head.weight"), G("head.head.bias"), OC, ot);
    for (int fi = 0; fi < gf; fi++)
        for (int yi = 0; yi < gh; yi++)
            for (int xi = 0; xi < gw; xi++) {
                int tok = (fi * gh + yi) * gw + xi;
                for (int a = 0; a < pt; a++)
                    for (int b = 0; b < ph; b++)
                        for (int d = 0; d < pw; d++)
                            for (int chn = 0; chn < c->out_dim; chn++)
                                out[(((size_t)chn * F + fi * pt + a) * H + yi * ph + b) * W + xi * pw + d] =
                                    ot[(size_t)tok * OC + ((a * ph + b) * pw + d) * c->out_dim + chn];
            }
#undef G
    free(patch), free(x), free(sn), free(e1), free(e), free(e0), free(ctx), free(ch), free(cemb);
    free(n), free(q), free(k), free(v), free(o), free(y), free(hbuf), free(ot);
}
