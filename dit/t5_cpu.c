/* CPU reference of the umT5 encoder's own ops (fp32): attention with a relative position bias
 * and a key padding mask, and the gated GELU of the feed-forward. One (head, query) row per
 * task, rows split over the CPU backend's workers. Test: tests/test_t5_cpu.c; the CUDA versions
 * in t5_cuda.cu are checked against these by tests/gpu/test_t5_cuda.c. */
#include "t5_internal.h"

#include "cpu_ops.h"
#include "error.h"

#include <math.h>

typedef struct t5_attn_job {
    row_view qkv, out;
    const float *bias;
    int heads, head_dim, n_valid;
} t5_attn_job;

/* Row r is query i = r / heads of head h = r % heads: the n_valid scores
 * s_j = q_i . k_j + bias[h][j - i], their softmax p, and out_i = sum_j p_j v_j. */
static void t5_attn_rows(void *ctx, int64_t begin, int64_t end, int worker)
{
    const t5_attn_job *j = ctx;
    int64_t da = (int64_t)j->heads * j->head_dim;
    const float *base = j->qkv.data;
    float s[T5_MAX_TOKENS];
    for (int64_t r = begin; r < end; r++) {
        int64_t i = r / j->heads;
        int h = (int)(r % j->heads);
        const float *q = base + i * j->qkv.stride + (int64_t)h * j->head_dim;
        const float *b = j->bias + (int64_t)h * T5_BIAS_SPAN + (T5_MAX_TOKENS - 1) - i;
        float mx = -INFINITY;
        for (int key = 0; key < j->n_valid; key++) {
            const float *k = base + key * j->qkv.stride + da + (int64_t)h * j->head_dim;
            float dot = 0;
            for (int c = 0; c < j->head_dim; c++)
                dot += q[c] * k[c];
            s[key] = dot + b[key];
            mx = s[key] > mx ? s[key] : mx;
        }
        float sum = 0;
        for (int key = 0; key < j->n_valid; key++) {
            s[key] = expf(s[key] - mx);
            sum += s[key];
        }
        float *o = (float *)j->out.data + i * j->out.stride + (int64_t)h * j->head_dim;
        for (int c = 0; c < j->head_dim; c++)
            o[c] = 0;
        for (int key = 0; key < j->n_valid; key++) {
            const float *v = base + key * j->qkv.stride + 2 * da + (int64_t)h * j->head_dim;
            float p = s[key] / sum;
            for (int c = 0; c < j->head_dim; c++)
                o[c] += p * v[c];
        }
    }
}

int t5_cpu_attention(backend *be, const tensor *qkv, const tensor *bias, int heads, int n_valid,
                     tensor *out)
{
    const char *op = "t5_attention";
    unsigned f32 = DTM(DT_F32);
    t5_attn_job j = {.heads = heads, .n_valid = n_valid};
    row_view bv;
    TRY(barg_rows(op, "qkv", qkv, DEV_CPU, f32, &j.qkv));
    TRY(barg_rows(op, "out", out, DEV_CPU, f32, &j.out));
    TRY(barg_contig(op, "bias", bias, DEV_CPU, f32));
    TRY(barg_rows(op, "bias", bias, DEV_CPU, f32, &bv));
    if (heads <= 0 || j.out.cols % heads || j.qkv.cols != 3 * j.out.cols ||
        j.qkv.rows != j.out.rows)
        return err_set(
            REEL_E_INVALID,
            "%s: qkv [%lld, %lld] and out [%lld, %lld] do not fit %d heads (qkv must be 3x out)",
            op, (long long)j.qkv.rows, (long long)j.qkv.cols, (long long)j.out.rows,
            (long long)j.out.cols, heads);
    if (bv.rows != heads || bv.cols != T5_BIAS_SPAN)
        return err_set(REEL_E_INVALID, "%s: bias: expected [%d, %d], got [%lld, %lld]", op, heads,
                       T5_BIAS_SPAN, (long long)bv.rows, (long long)bv.cols);
    if (j.qkv.rows > T5_MAX_TOKENS || n_valid < 1 || n_valid > j.qkv.rows)
        return err_set(REEL_E_INVALID,
                       "%s: %lld tokens with %d unmasked: need 1 <= unmasked <= tokens <= %d", op,
                       (long long)j.qkv.rows, n_valid, T5_MAX_TOKENS);
    j.head_dim = (int)(j.out.cols / heads);
    j.bias = bv.data;
    cpu_for_rows(be, j.qkv.rows * heads, (int64_t)n_valid * j.head_dim * 2, t5_attn_rows, &j);
    return REEL_OK;
}

typedef struct t5_gate_job {
    row_view g, out;
} t5_gate_job;

static void t5_gate_rows(void *ctx, int64_t begin, int64_t end, int worker)
{
    const t5_gate_job *j = ctx;
    int64_t f = j->out.cols;
    for (int64_t r = begin; r < end; r++) {
        const float *g = (const float *)j->g.data + r * j->g.stride;
        float *o = (float *)j->out.data + r * j->out.stride;
        for (int64_t c = 0; c < f; c++) {
            float v = g[c];
            float gelu =
                0.5f * v * (1.0f + tanhf(0.7978845608028654f * (v + 0.044715f * v * v * v)));
            o[c] = gelu * g[f + c];
        }
    }
}

int t5_cpu_gated_gelu(backend *be, const tensor *g, tensor *out)
{
    const char *op = "t5_gated_gelu";
    unsigned f32 = DTM(DT_F32);
    t5_gate_job j;
    TRY(barg_rows(op, "g", g, DEV_CPU, f32, &j.g));
    TRY(barg_rows(op, "out", out, DEV_CPU, f32, &j.out));
    if (j.g.cols != 2 * j.out.cols || j.g.rows != j.out.rows)
        return err_set(REEL_E_INVALID,
                       "%s: g [%lld, %lld] must be [rows, 2 x %lld] for out [%lld, %lld]", op,
                       (long long)j.g.rows, (long long)j.g.cols, (long long)j.out.cols,
                       (long long)j.out.rows, (long long)j.out.cols);
    cpu_for_rows(be, j.g.rows, j.g.cols, t5_gate_rows, &j);
    return REEL_OK;
}
