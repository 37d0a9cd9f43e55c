/* The umT5 encoder on CUDA against the CPU backend: its two ops at XXL shapes (attention with
 * relative bias and key mask, gated GELU), then whole encoders loaded from files on both
 * backends: the tiny model (d_model 64, 4 heads, 2 layers) and a 2-layer cut of XXL width
 * (4096, 64 heads of 64, ffn 10240) on 512 tokens, random weights stored in bf16 so that both
 * backends see the same numbers. Outputs and every activation buffer are poisoned with NaN
 * first. Tolerance: relative L2 2e-2 (bf16 GEMM inputs and probabilities on CUDA, fp32 on the
 * CPU). Prints `| op | shape | rel_l2 | tolerance | ms |` rows. */
#include "check.h"
#include "support/t5_tiny.h"

#include "dit/error.h"
#include "dit/numeric.h"
#include "dit/t5_internal.h"
#include "dit/clock.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define TOL 2e-2
#define REPS 10

static backend *cpu, *gpu;

static void row(const char *op, const char *shape, double err, double ms)
{
    printf("| %s | %s | %.3g | %g | %.3f |\n", op, shape, err, TOL, ms);
    CHECK(err <= TOL, "%s %s: rel_l2 %g > %g", op, shape, err, TOL);
}

/* Normal noise rounded to bf16, so the CPU sees exactly what the GPU stores. */
static float *bf16_noise(size_t n, float sd)
{
    float *x = malloc(n * sizeof(float));
    check_fill_normal(x, n, sd);
    for (size_t i = 0; i < n; i++)
        x[i] = bf16_to_f32(f32_to_bf16(x[i]));
    return x;
}

static int upload(const float *host, enum dtype dt, int ndim, const int64_t *shape, tensor *dev)
{
    TRY(backend_tensor_alloc(gpu, dt, ndim, shape, dev));
    tensor src = tensor_make((void *)host, DT_F32, DEV_CPU, ndim, shape);
    return gpu->ops->copy(gpu, &src, dev);
}

static int download(const tensor *dev, float *host)
{
    tensor dst = tensor_make(host, DT_F32, DEV_CPU, dev->ndim, dev->shape);
    TRY(gpu->ops->copy(gpu, dev, &dst));
    return gpu->ops->sync(gpu);
}

static void test_attention(void *state, int n, int heads, int d, int nv)
{
    int64_t da = (int64_t)heads * d, sq[2] = {n, 3 * da}, so[2] = {n, da},
            sb[2] = {heads, T5_BIAS_SPAN};
    int64_t ss[3] = {heads, n, n};
    float *qkv = bf16_noise((size_t)n * 3 * da, 0.3f),
          *bias = bf16_noise((size_t)heads * T5_BIAS_SPAN, 1.0f);
    float *ref = malloc(sizeof(float) * n * da), *got = malloc(sizeof(float) * n * da);
    tensor hq = tensor_make(qkv, DT_F32, DEV_CPU, 2, sq),
           hb = tensor_make(bias, DT_F32, DEV_CPU, 2, sb);
    tensor ho = tensor_make(ref, DT_F32, DEV_CPU, 2, so);
    CHECK_OK(t5_cpu_attention(cpu, &hq, &hb, heads, nv, &ho));
    tensor dq = {0}, db = {0}, dout = {0}, sc = {0}, pr = {0};
    CHECK_OK(upload(qkv, DT_BF16, 2, sq, &dq));
    CHECK_OK(upload(bias, DT_F32, 2, sb, &db));
    CHECK_OK(backend_tensor_alloc(gpu, DT_BF16, 2, so, &dout));
    CHECK_OK(backend_tensor_alloc(gpu, DT_F32, 3, ss, &sc));
    CHECK_OK(backend_tensor_alloc(gpu, DT_BF16, 3, ss, &pr));
    double ms[REPS];
    for (int r = 0; r < REPS; r++) {
        CHECK_OK(gpu->ops->fill(gpu, &dout, NAN));
        CHECK_OK(gpu->ops->sync(gpu));
        double t0 = clock_ms();
        CHECK_OK(t5_cuda_attention(state, gpu, &dq, &db, heads, nv, &sc, &pr, &dout));
        CHECK_OK(gpu->ops->sync(gpu));
        ms[r] = clock_ms() - t0;
    }
    qsort(ms, REPS, sizeof ms[0], clock_cmp_double);
    CHECK_OK(download(&dout, got));
    char shape[96];
    snprintf(shape, sizeof shape, "%d tok, %d unmasked, %dx%d", n, nv, heads, d);
    row("t5_attention", shape, check_rel_l2(got, ref, (size_t)n * da), ms[REPS / 2]);
    tensor *all[] = {&dq, &db, &dout, &sc, &pr};
    for (int i = 0; i < 5; i++)
        backend_tensor_free(gpu, all[i]);
    free(qkv), free(bias), free(ref), free(got);
}

static void test_gated_gelu(int n, int f)
{
    int64_t sg[2] = {n, 2 * (int64_t)f}, so[2] = {n, f};
    float *g = bf16_noise((size_t)n * 2 * f, 1.5f);
    float *ref = malloc(sizeof(float) * n * f), *got = malloc(sizeof(float) * n * f);
    tensor hg = tensor_make(g, DT_F32, DEV_CPU, 2, sg),
           ho = tensor_make(ref, DT_F32, DEV_CPU, 2, so);
    CHECK_OK(t5_cpu_gated_gelu(cpu, &hg, &ho));
    tensor dg = {0}, dout = {0};
    CHECK_OK(upload(g, DT_BF16, 2, sg, &dg));
    CHECK_OK(backend_tensor_alloc(gpu, DT_BF16, 2, so, &dout));
    double ms[REPS];
    for (int r = 0; r < REPS; r++) {
        CHECK_OK(gpu->ops->fill(gpu, &dout, NAN));
        CHECK_OK(gpu->ops->sync(gpu));
        double t0 = clock_ms();
        CHECK_OK(t5_cuda_gated_gelu(gpu, &dg, &dout));
        CHECK_OK(gpu->ops->sync(gpu));
        ms[r] = clock_ms() - t0;
    }
    qsort(ms, REPS, sizeof ms[0], clock_cmp_double);
    CHECK_OK(download(&dout, got));
    char shape[64];
    snprintf(shape, sizeof shape, "[%d, 2x%d]", n, f);
    row("t5_gated_gelu", shape, check_rel_l2(got, ref, (size_t)n * f), ms[REPS / 2]);
    backend_tensor_free(gpu, &dg);
    backend_tensor_free(gpu, &dout);
    free(g), free(ref), free(got);
}

/* Encodes on the GPU with every activation and the output poisoned; median time of reps. */
static double encode_gpu(t5_encoder *t, const int32_t *ids, int n, int nv, float *out, int reps)
{
    double ms[REPS];
    reps = reps > REPS ? REPS : reps;
    for (int r = 0; r < reps; r++) {
        tensor act =
            tensor_1d(t->act.base, DT_F32, DEV_CUDA, (int64_t)(t->act.cap / sizeof(float)));
        CHECK_OK(gpu->ops->fill(gpu, &act, NAN));
        for (size_t i = 0; i < (size_t)n * t5_dim(t); i++)
            out[i] = NAN;
        CHECK_OK(gpu->ops->sync(gpu));
        double t0 = clock_ms();
        CHECK_OK(t5_encode_masked(t, ids, n, nv, out));
        ms[r] = clock_ms() - t0;
    }
    qsort(ms, reps, sizeof ms[0], clock_cmp_double);
    return ms[reps / 2];
}

/* The model written at path, on both backends, n tokens with nv unmasked. */
static void test_model(const char *what, const char *path, const int32_t *ids, int n, int nv,
                       int reps)
{
    t5_encoder *tc = NULL, *tg = NULL;
    double t0 = clock_ms();
    CHECK_OK(t5_load(path, gpu, &tg));
    double load_gpu = clock_ms() - t0;
    CHECK_OK(t5_load(path, cpu, &tc));
    if (!tc || !tg) {
        t5_free(tc);
        t5_free(tg);
        return;
    }
    size_t nd = (size_t)n * t5_dim(tc);
    float *ref = malloc(nd * sizeof(float)), *got = malloc(nd * sizeof(float));
    t0 = clock_ms();
    CHECK_OK(t5_encode_masked(tc, ids, n, nv, ref));
    double cpu_ms = clock_ms() - t0;
    double ms = encode_gpu(tg, ids, n, nv, got, reps);
    char shape[160];
    snprintf(shape, sizeof shape, "%s, %d tok, %d unmasked (cpu %.0f ms, load %.0f ms)", what, n,
             nv, cpu_ms, load_gpu);
    row("t5_encode", shape, check_rel_l2(got, ref, nd), ms);
    if (nv < n) { /* the real rows alone give the same rows on the GPU too */
        float *alone = malloc((size_t)nv * t5_dim(tc) * sizeof(float));
        encode_gpu(tg, ids, nv, nv, alone, 1);
        double e = check_rel_l2(alone, got, (size_t)nv * t5_dim(tc));
        printf("| t5_encode padded vs alone | %s | %.3g | %g | |\n", what, e, TOL);
        CHECK(e <= 1e-2, "padding changed the real rows on CUDA: %g", e);
        free(alone);
    }
    free(ref), free(got);
    t5_free(tc);
    t5_free(tg);
}

int main(void)
{
    check_seed("test_t5_cuda");
    gpu = check_cuda_backend();
    if (!gpu)
        return check_skip("no CUDA device");
    CHECK_OK(backend_cpu_create(0, &cpu));
    void *state = NULL;
    CHECK_OK(t5_cuda_open(gpu, &state));
    if (!cpu || !state)
        return check_done();
    printf("| op | shape | rel_l2 | tolerance | ms |\n|---|---|---|---|---|\n");
    test_attention(state, 40, 4, 16, 23);
    test_attention(state, 512, 64, 64, 512);
    test_attention(state, 512, 64, 64, 77);
    test_gated_gelu(40, 96);
    test_gated_gelu(512, 10240);
    test_gated_gelu(7, 13); /* odd widths: the scalar path */
    t5_cuda_close(state);

    int32_t ids[T5_MAX_TOKENS];
    for (int i = 0; i < T5_MAX_TOKENS; i++)
        ids[i] = 2 + (int32_t)(check_rand_u64() % 298);
    ids[T5_MAX_TOKENS - 1] = 1;

    t5t_model m;
    CHECK_OK(t5t_make(&m, 64, 4, 96, 2, 300));
    const char *tiny = check_path("tiny");
    char tiny_dir[512];
    snprintf(tiny_dir, sizeof tiny_dir, "%s", tiny);
    CHECK(mkdir(tiny_dir, 0755) == 0, "mkdir %s", tiny_dir);
    CHECK_OK(t5t_write(&m, T5T_HF_SHARDED, DT_BF16, tiny_dir, NULL));
    t5t_free(&m);
    test_model("tiny", tiny_dir, ids, 40, 23, REPS);
    test_model("tiny", tiny_dir, ids, 40, 40, REPS);

    double t0 = clock_ms();
    CHECK_OK(t5t_make(&m, 4096, 64, 10240, 2, 300));
    char xxl[512];
    snprintf(xxl, sizeof xxl, "%s", check_path("xxl2.safetensors"));
    CHECK_OK(t5t_write(&m, T5T_COMFY, DT_BF16, xxl, NULL));
    t5t_free(&m);
    printf("XXL 2-layer cut written in %.1f s\n", (clock_ms() - t0) / 1e3);
    test_model("XXL width, 2 layers", xxl, ids, T5_MAX_TOKENS, T5_MAX_TOKENS, 5);
    test_model("XXL width, 2 layers", xxl, ids, T5_MAX_TOKENS, 200, 3);
    remove(xxl);

    backend_free(cpu);
    backend_free(gpu);
    return check_done();
}
