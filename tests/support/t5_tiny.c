#include "t5_tiny.h"

#include "check.h"
#include "model_writer.h"

#include "dit/error.h"
#include "dit/numeric.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Uniform noise of standard deviation sd, rounded so that bf16 and f16 both hold it exactly. */
static float *t5t_noise(size_t n, double sd, double mean)
{
    float *x = malloc(n * sizeof(float));
    if (!x)
        return NULL;
    double a = sd * sqrt(3.0);
    for (size_t i = 0; i < n; i++) {
        float v = (float)(mean + check_rand_uniform(-a, a));
        x[i] = f16_to_f32(f32_to_f16(bf16_to_f32(f32_to_bf16(v))));
    }
    return x;
}

static float **t5t_layers(int layers) { return calloc((size_t)layers, sizeof(float *)); }

int t5t_make(t5t_model *m, int dim, int heads, int ffn, int layers, int vocab)
{
    memset(m, 0, sizeof *m);
    m->dim = dim;
    m->heads = heads;
    m->head_dim = dim / heads;
    m->ffn = ffn;
    m->layers = layers;
    m->vocab = vocab;
    m->buckets = 32;
    m->max_distance = 128;
    m->eps = 1e-6;
    float ***all[] = {&m->norm1, &m->q,     &m->k,    &m->v,  &m->o,
                      &m->rel,   &m->norm2, &m->gate, &m->up, &m->down};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (!(*all[i] = t5t_layers(layers)))
            return err_set(REEL_E_NOMEM, "t5t_make: out of memory");
    size_t d = (size_t)dim, f = (size_t)ffn;
    double sd = 1.0 / sqrt((double)dim);
    int ok = (m->embed = t5t_noise((size_t)vocab * d, 1.0, 0)) != NULL;
    ok = ok && (m->final_norm = t5t_noise(d, 0.1, 1.0));
    for (int l = 0; ok && l < layers; l++) {
        /* q scaled by 1/sqrt(head_dim): scores of order one, since T5 does not scale them */
        ok = (m->norm1[l] = t5t_noise(d, 0.1, 1.0)) && (m->norm2[l] = t5t_noise(d, 0.1, 1.0)) &&
             (m->q[l] = t5t_noise(d * d, sd / sqrt((double)m->head_dim), 0)) &&
             (m->k[l] = t5t_noise(d * d, sd, 0)) && (m->v[l] = t5t_noise(d * d, sd, 0)) &&
             (m->o[l] = t5t_noise(d * d, 0.5 * sd, 0)) &&
             (m->rel[l] = t5t_noise((size_t)m->buckets * heads, 1.0, 0)) &&
             (m->gate[l] = t5t_noise(f * d, sd, 0)) && (m->up[l] = t5t_noise(f * d, sd, 0)) &&
             (m->down[l] = t5t_noise(d * f, 1.0 / sqrt((double)ffn), 0));
    }
    return ok ? REEL_OK : err_set(REEL_E_NOMEM, "t5t_make: out of memory");
}

void t5t_free(t5t_model *m)
{
    float **all[] = {m->norm1, m->q, m->k, m->v, m->o, m->rel, m->norm2, m->gate, m->up, m->down};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        for (int l = 0; all[i] && l < m->layers; l++)
            free(all[i][l]);
        free(all[i]);
    }
    free(m->embed);
    free(m->final_norm);
    memset(m, 0, sizeof *m);
}

/* ---- writers ------------------------------------------------------------------------------ */

typedef struct t5t_list {
    tw_tensor *t;
    char **names;
    void **bufs;
    int n, cap;
    enum dtype dt;
    const char *omit;
} t5t_list;

static int t5t_add(t5t_list *l, const char *name, const float *data, int ndim, int64_t d0,
                   int64_t d1)
{
    if (l->omit && !strcmp(name, l->omit))
        return REEL_OK;
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 64;
        tw_tensor *t = realloc(l->t, cap * sizeof *t);
        if (t)
            l->t = t;
        char **nm = realloc(l->names, cap * sizeof *nm);
        if (nm)
            l->names = nm;
        void **b = realloc(l->bufs, cap * sizeof *b);
        if (b)
            l->bufs = b;
        if (!t || !nm || !b)
            return err_set(REEL_E_NOMEM, "t5t_write: out of memory");
        l->cap = cap;
    }
    size_t n = (size_t)d0 * (size_t)(ndim == 2 ? d1 : 1);
    void *buf = malloc(n * dtype_size(l->dt));
    char *nm = strdup(name);
    if (!buf || !nm) {
        free(buf);
        free(nm);
        return err_set(REEL_E_NOMEM, "t5t_write: out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        if (l->dt == DT_BF16)
            ((uint16_t *)buf)[i] = f32_to_bf16(data[i]);
        else if (l->dt == DT_F16)
            ((uint16_t *)buf)[i] = f32_to_f16(data[i]);
        else if (l->dt == DT_F8_E4M3) /* only refusals read these: every value 1.0 */
            ((uint8_t *)buf)[i] = 0x38;
        else
            ((float *)buf)[i] = data[i];
    }
    tw_tensor *t = &l->t[l->n];
    memset(t, 0, sizeof *t);
    t->name = nm;
    t->dtype = l->dt;
    t->ndim = ndim;
    t->shape[0] = d0;
    t->shape[1] = d1;
    t->data = buf;
    l->names[l->n] = nm;
    l->bufs[l->n] = buf;
    l->n++;
    return REEL_OK;
}

static void t5t_list_free(t5t_list *l)
{
    for (int i = 0; i < l->n; i++) {
        free(l->names[i]);
        free(l->bufs[i]);
    }
    free(l->t);
    free(l->names);
    free(l->bufs);
}

static int t5t_write_config(const t5t_model *m, const char *dir)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    if (!f)
        return err_set(REEL_E_IO, "%s: cannot create", path);
    fprintf(
        f,
        "{\"architectures\": [\"UMT5EncoderModel\"], \"model_type\": \"umt5\", \"d_model\": %d, "
        "\"d_ff\": %d, \"d_kv\": %d, \"num_heads\": %d, \"num_layers\": %d, "
        "\"relative_attention_num_buckets\": %d, \"relative_attention_max_distance\": %d, "
        "\"layer_norm_epsilon\": %g, \"feed_forward_proj\": \"gated-gelu\", \"vocab_size\": %d}\n",
        m->dim, m->ffn, m->head_dim, m->heads, m->layers, m->buckets, m->max_distance, m->eps,
        m->vocab);
    return fclose(f) == 0 ? REEL_OK : err_set(REEL_E_IO, "%s: write failed", path);
}

int t5t_write(const t5t_model *m, enum t5t_layout layout, enum dtype dt, const char *path,
              const char *omit)
{
    static const char *const wan[] = {
        "blocks.%d.norm1.weight",   "blocks.%d.attn.q.weight",
        "blocks.%d.attn.k.weight",  "blocks.%d.attn.v.weight",
        "blocks.%d.attn.o.weight",  "blocks.%d.pos_embedding.embedding.weight",
        "blocks.%d.norm2.weight",   "blocks.%d.ffn.gate.0.weight",
        "blocks.%d.ffn.fc1.weight", "blocks.%d.ffn.fc2.weight"};
    static const char *const hf[] = {
        "encoder.block.%d.layer.0.layer_norm.weight",
        "encoder.block.%d.layer.0.SelfAttention.q.weight",
        "encoder.block.%d.layer.0.SelfAttention.k.weight",
        "encoder.block.%d.layer.0.SelfAttention.v.weight",
        "encoder.block.%d.layer.0.SelfAttention.o.weight",
        "encoder.block.%d.layer.0.SelfAttention.relative_attention_bias.weight",
        "encoder.block.%d.layer.1.layer_norm.weight",
        "encoder.block.%d.layer.1.DenseReluDense.wi_0.weight",
        "encoder.block.%d.layer.1.DenseReluDense.wi_1.weight",
        "encoder.block.%d.layer.1.DenseReluDense.wo.weight"};
    const char *const *names = layout == T5T_WAN_PTH ? wan : hf;
    t5t_list l = {.dt = dt, .omit = omit};
    int64_t d = m->dim, f = m->ffn;
    int st = t5t_add(&l, layout == T5T_WAN_PTH ? "token_embedding.weight" : "shared.weight",
                     m->embed, 2, m->vocab, d);
    for (int i = 0; st == REEL_OK && i < m->layers; i++) {
        const float *data[10] = {m->norm1[i], m->q[i],     m->k[i],    m->v[i],  m->o[i],
                                 m->rel[i],   m->norm2[i], m->gate[i], m->up[i], m->down[i]};
        const int64_t shape[10][2] = {
            {d, 0}, {d, d}, {d, d}, {d, d}, {d, d}, {m->buckets, m->heads},
            {d, 0}, {f, d}, {f, d}, {d, f}};
        for (int p = 0; st == REEL_OK && p < 10; p++) {
            if (p == 5 && m->shared_bias && (i > 0 || layout == T5T_WAN_PTH))
                continue;
            char name[160];
            snprintf(name, sizeof name, names[p], i);
            st = t5t_add(&l, name, data[p], shape[p][1] ? 2 : 1, shape[p][0], shape[p][1]);
        }
    }
    if (st == REEL_OK && m->shared_bias && layout == T5T_WAN_PTH)
        st = t5t_add(&l, "pos_embedding.embedding.weight", m->rel[0], 2, m->buckets, m->heads);
    if (st == REEL_OK)
        st = t5t_add(&l, layout == T5T_WAN_PTH ? "norm.weight" : "encoder.final_layer_norm.weight",
                     m->final_norm, 1, d, 0);
    if (st == REEL_OK) {
        if (layout == T5T_WAN_PTH)
            st = tw_write_pth(path, l.t, l.n, NULL);
        else if (layout == T5T_COMFY)
            st = tw_write_safetensors(path, l.t, l.n, NULL);
        else if ((st = tw_write_sharded(path, "model", l.t, l.n, 2)) == REEL_OK)
            st = t5t_write_config(m, path);
    }
    t5t_list_free(&l);
    return st;
}

/* ---- reference forward -------------------------------------------------------------------- */

int t5t_ref_bucket(int rel, int buckets, int max_distance)
{
    int half = buckets / 2, max_exact = half / 2;
    int base = rel > 0 ? half : 0, dist = abs(rel);
    if (dist < max_exact)
        return base + dist;
    int large = max_exact + (int)floor(log((double)dist / max_exact) /
                                       log((double)max_distance / max_exact) * (half - max_exact));
    return base + (large < half - 1 ? large : half - 1);
}

/* y[r] = weight * x[r] / sqrt(mean(x[r]^2) + eps) */
static void ref_rms(const double *x, const float *w, int n, int d, double eps, double *y)
{
    for (int r = 0; r < n; r++) {
        double ss = 0;
        for (int c = 0; c < d; c++)
            ss += x[r * d + c] * x[r * d + c];
        double s = 1.0 / sqrt(ss / d + eps);
        for (int c = 0; c < d; c++)
            y[r * d + c] = w[c] * x[r * d + c] * s;
    }
}

/* y[n, out] = x[n, in] w[out, in]^T */
static void ref_linear(const double *x, const float *w, int n, int in, int out, double *y)
{
    for (int r = 0; r < n; r++)
        for (int o = 0; o < out; o++) {
            double s = 0;
            for (int c = 0; c < in; c++)
                s += x[r * in + c] * w[(size_t)o * in + c];
            y[(size_t)r * out + o] = s;
        }
}

void t5t_reference(const t5t_model *m, const int32_t *ids, int n, int n_valid, double *out)
{
    int d = m->dim, f = m->ffn, hd = m->head_dim;
    double *x = malloc(sizeof(double) * n * d), *h = malloc(sizeof(double) * n * d);
    double *q = malloc(sizeof(double) * n * d), *k = malloc(sizeof(double) * n * d);
    double *v = malloc(sizeof(double) * n * d), *att = malloc(sizeof(double) * n * d);
    double *y = malloc(sizeof(double) * n * d), *g = malloc(sizeof(double) * n * f);
    double *u = malloc(sizeof(double) * n * f), *s = malloc(sizeof(double) * n);
    for (int i = 0; i < n; i++)
        for (int c = 0; c < d; c++)
            x[i * d + c] = m->embed[(size_t)ids[i] * d + c];
    for (int l = 0; l < m->layers; l++) {
        ref_rms(x, m->norm1[l], n, d, m->eps, h);
        ref_linear(h, m->q[l], n, d, d, q);
        ref_linear(h, m->k[l], n, d, d, k);
        ref_linear(h, m->v[l], n, d, d, v);
        for (int hh = 0; hh < m->heads; hh++)
            for (int i = 0; i < n; i++) {
                double mx = -INFINITY, sum = 0;
                for (int j = 0; j < n_valid; j++) {
                    double dot = 0;
                    for (int c = 0; c < hd; c++)
                        dot += q[i * d + hh * hd + c] * k[j * d + hh * hd + c];
                    int b = t5t_ref_bucket(j - i, m->buckets, m->max_distance);
                    s[j] = dot + m->rel[m->shared_bias ? 0 : l][b * m->heads + hh];
                    mx = fmax(mx, s[j]);
                }
                for (int j = 0; j < n_valid; j++)
                    sum += s[j] = exp(s[j] - mx);
                for (int c = 0; c < hd; c++) {
                    double a = 0;
                    for (int j = 0; j < n_valid; j++)
                        a += s[j] / sum * v[j * d + hh * hd + c];
                    att[i * d + hh * hd + c] = a;
                }
            }
        ref_linear(att, m->o[l], n, d, d, y);
        for (int i = 0; i < n * d; i++)
            x[i] += y[i];
        ref_rms(x, m->norm2[l], n, d, m->eps, h);
        ref_linear(h, m->gate[l], n, d, f, g);
        ref_linear(h, m->up[l], n, d, f, u);
        for (int i = 0; i < n * f; i++) {
            double a = g[i];
            g[i] = 0.5 * a * (1.0 + tanh(sqrt(2.0 / M_PI) * (a + 0.044715 * a * a * a))) * u[i];
        }
        ref_linear(g, m->down[l], n, f, d, y);
        for (int i = 0; i < n * d; i++)
            x[i] += y[i];
    }
    ref_rms(x, m->final_norm, n, d, m->eps, out);
    free(x), free(h), free(q), free(k), free(v), free(att), free(y), free(g), free(u), free(s);
}
