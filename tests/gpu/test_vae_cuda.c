/* Wan VAE on CUDA against the CPU executor (the fp32 reference, itself checked against a
 * one-shot reference in tests/test_vae_cpu.c), with each convolution engine (cuDNN when built
 * in, and our implicit-GEMM kernel): decode, tiled decode and encode of a small random-weight
 * VAE. Activations are stored in bf16 (relative rounding 2^-9 per store) after each of ~45
 * layers in sequence, so errors of sqrt(45) x 2^-9 ~ 1.5e-2 are expected: measured on an H100
 * (2026-11-22) decode 1.6e-2 to 1.9e-2, encode 7e-3; tolerance 3e-2 for decode, 2e-2 for
 * encode. Then the `reel bench vae` shape: 21 latent frames
 * of 60x104 -> 81 frames of 480x832 at the published widths, timed, with the device memory
 * peak. With REEL_VAE_EXPORT=DIR the models, inputs and outputs are written there for
 * tests/gpu/ref_vae.py (the PyTorch reference). Rows: op | shape | rel_l2 | tolerance | time. */
#include "check.h"

#include "dit/error.h"
#include "dit/st_write.h"
#include "plugin/reel.h"
#include "vae_io/vae_synth.h"
#include "vae_io/vae_wan.h"
#include "dit/clock.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *export_dir;

static void export_tensor(const char *file, const char *name, float *data, int ndim, const int64_t *shape)
{
    if (!export_dir)
        return;
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", export_dir, file);
    tensor t = tensor_make(data, DT_F32, DEV_CPU, ndim, shape);
    st_named n = {name, &t};
    CHECK_OK(st_write_file(path, &n, 1, NULL, 1));
}

static float *alloc_poisoned(size_t n)
{
    float *p = malloc(n * sizeof(float));
    for (size_t i = 0; p && i < n; i++)
        p[i] = NAN;
    return p;
}

static void row(const char *op, const char *shape, double err, double tol, double ms)
{
    printf("| %-34s | %-22s | %9.2e | %7.0e | %9.1f ms |\n", op, shape, err, tol, ms);
}

/* CPU vs CUDA on the small model, one engine ("" = automatic). */
static void compare(backend *cpu, backend *cuda, const char *model, const char *engine,
                    wan_vae *vc)
{
    const double tol = 3e-2, tol_enc = 2e-2;
    const int T = 3, h = 6, w = 8, F = 9, H = 48, W = 64;
    char label[96];
    setenv("REEL_VAE_CONV", engine, 1);
    wan_vae *vg = NULL;
    CHECK_OK(wan_vae_load(model, cuda, &vg));
    unsetenv("REEL_VAE_CONV");
    if (!vg)
        return;
    size_t ln = (size_t)16 * T * h * w, vn = (size_t)3 * F * H * W;
    float *lat = malloc(ln * sizeof(float)), *ref = alloc_poisoned(vn), *got = alloc_poisoned(vn);
    check_fill_normal(lat, ln, 1.0f);
    int64_t ls[4] = {16, T, h, w}, vs[4] = {3, F, H, W};
    tensor lt = tensor_make(lat, DT_F32, DEV_CPU, 4, ls);
    tensor rt = tensor_make(ref, DT_F32, DEV_CPU, 4, vs), gt = tensor_make(got, DT_F32, DEV_CPU, 4, vs);
    const char *eng = engine;

    CHECK_OK(wan_vae_decode(vc, &lt, NULL, NULL, NULL, &rt));
    double t0 = clock_ms();
    CHECK_OK(wan_vae_decode(vg, &lt, NULL, NULL, NULL, &gt));
    double ms = clock_ms() - t0, e = check_rel_l2(got, ref, vn);
    snprintf(label, sizeof label, "decode (%s)", eng);
    row(label, "[16,3,6,8]", e, tol, ms);
    CHECK(e <= tol, "%s: rel_l2 %g", label, e);
    if (!strcmp(engine, "cudnn")) {
        export_tensor("tiny_latents.safetensors", "latents", lat, 4, ls);
        export_tensor("tiny_video_cpu.safetensors", "video", ref, 4, vs);
        export_tensor("tiny_video_cuda.safetensors", "video", got, 4, vs);
    }

    vae_decode_opts tiles = {4, 6, 2};
    for (size_t i = 0; i < vn; i++)
        got[i] = NAN;
    CHECK_OK(wan_vae_decode(vc, &lt, &tiles, NULL, NULL, &rt));
    t0 = clock_ms();
    CHECK_OK(wan_vae_decode(vg, &lt, &tiles, NULL, NULL, &gt));
    ms = clock_ms() - t0, e = check_rel_l2(got, ref, vn);
    snprintf(label, sizeof label, "tiled decode 4x6/2 (%s)", eng);
    row(label, "[16,3,6,8]", e, tol, ms);
    CHECK(e <= tol, "%s: rel_l2 %g", label, e);

    /* encode: video [3, 9, 48, 64] in [-1, 1] -> latents [16, 3, 6, 8] */
    float *vid = malloc(vn * sizeof(float)), *lref = alloc_poisoned(ln), *lgot = alloc_poisoned(ln);
    check_fill_uniform(vid, vn, -1, 1);
    tensor vt = tensor_make(vid, DT_F32, DEV_CPU, 4, vs);
    tensor lr = tensor_make(lref, DT_F32, DEV_CPU, 4, ls), lg = tensor_make(lgot, DT_F32, DEV_CPU, 4, ls);
    CHECK_OK(wan_vae_encode(vc, &vt, &lr));
    t0 = clock_ms();
    CHECK_OK(wan_vae_encode(vg, &vt, &lg));
    ms = clock_ms() - t0, e = check_rel_l2(lgot, lref, ln);
    snprintf(label, sizeof label, "encode (%s)", eng);
    row(label, "[3,9,48,64]", e, tol_enc, ms);
    CHECK(e <= tol_enc, "%s: rel_l2 %g", label, e);
    if (!strcmp(engine, "cudnn")) {
        export_tensor("tiny_video_in.safetensors", "video", vid, 4, vs);
        export_tensor("tiny_enc_cpu.safetensors", "latents", lref, 4, ls);
        export_tensor("tiny_enc_cuda.safetensors", "latents", lgot, 4, ls);
    }
    free(vid), free(lref), free(lgot), free(lat), free(ref), free(got);
    wan_vae_free(vg);
}

typedef struct frame_check {
    int frames, bad;
} frame_check;

static int check_frames(void *user, const float *frames, int n)
{
    frame_check *f = user;
    size_t count = (size_t)3 * n * 480 * 832;
    for (size_t i = 0; i < count; i += 4099)
        f->bad += !(fabsf(frames[i]) <= 1.0f);
    f->frames += n;
    return 0;
}

/* The bench shape at the published widths; engine "" = automatic. */
static void bench(backend *cuda, const char *model, const char *engine, const vae_decode_opts *tiles,
                  int iters)
{
    setenv("REEL_VAE_CONV", engine, 1);
    wan_vae *v = NULL;
    CHECK_OK(wan_vae_load(model, cuda, &v));
    unsetenv("REEL_VAE_CONV");
    if (!v)
        return;
    const int T = 21, h = 60, w = 104;
    size_t ln = (size_t)16 * T * h * w;
    float *lat = malloc(ln * sizeof(float));
    check_fill_normal(lat, ln, 1.0f);
    int64_t ls[4] = {16, T, h, w};
    tensor lt = tensor_make(lat, DT_F32, DEV_CPU, 4, ls);
    double best = INFINITY, warm = 0, total = 0;
    frame_check fc = {0, 0};
    for (int i = -1; i < iters; i++) {
        double t0 = clock_ms();
        int st = wan_vae_decode(v, &lt, tiles, check_frames, &fc, NULL);
        double ms = clock_ms() - t0;
        CHECK(st == 0, "bench decode: %s", err_msg());
        if (st)
            break;
        if (i < 0)
            warm = ms;
        else
            best = fmin(best, ms), total += ms;
    }
    CHECK(fc.frames == 81 * (iters + 1) && fc.bad == 0, "%d frames, %d values outside [-1, 1]",
          fc.frames, fc.bad);
    size_t peak = 0, wb = 0;
    wan_vae_memory(v, &peak, &wb);
    char label[96];
    snprintf(label, sizeof label, "bench decode %s(%s)", tiles ? "tiled 30x52/4 " : "",
             *engine ? engine : "auto");
    double tflops = 2 * vae_synth_decode_macs(96, 16, T, h, w) / best / 1e9;
    printf("| %-34s | %-22s | %9s | %7s | %9.1f ms | min of %d, mean %.1f, warm-up %.0f ms, "
           "%.0f TFLOP/s, peak %.2f GiB + weights %.2f GiB\n",
           label, "[16,21,60,104]", "-", "-", best, iters, total / iters, warm, tflops,
           peak / 1073741824.0, wb / 1073741824.0);
    if (export_dir && !*engine && !tiles) {
        /* a small decode at the real widths for the PyTorch comparison */
        int64_t ss[4] = {16, 3, 16, 16}, vs[4] = {3, 9, 128, 128};
        size_t sn = (size_t)16 * 3 * 16 * 16, vn = (size_t)3 * 9 * 128 * 128;
        float *sl = malloc(sn * sizeof(float)), *sv = alloc_poisoned(vn);
        check_fill_normal(sl, sn, 1.0f);
        tensor st_ = tensor_make(sl, DT_F32, DEV_CPU, 4, ss), vt = tensor_make(sv, DT_F32, DEV_CPU, 4, vs);
        CHECK_OK(wan_vae_decode(v, &st_, NULL, NULL, NULL, &vt));
        export_tensor("wide_latents.safetensors", "latents", sl, 4, ss);
        export_tensor("wide_video_cuda.safetensors", "video", sv, 4, vs);
        free(sl), free(sv);
    }
    free(lat);
    wan_vae_free(v);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* rows survive a timeout */
    check_seed("test_vae_cuda");
    backend *cuda = check_cuda_backend();
    if (!cuda)
        return check_skip("no CUDA device");
    backend *cpu = NULL;
    CHECK_OK(backend_cpu_create(0, &cpu));
    export_dir = getenv("REEL_VAE_EXPORT");
    char tiny[1024], wide[1024];
    snprintf(tiny, sizeof tiny, "%s/%s", export_dir ? export_dir : check_tmpdir(), "tiny.safetensors");
    snprintf(wide, sizeof wide, "%s/%s", export_dir ? export_dir : check_tmpdir(), "wide.safetensors");

    vae_synth_opts o = vae_synth_default();
    o.dim = 8, o.dtype = DT_F32, o.seed = check_rand_u64(), o.head_gain = 0.5f;
    CHECK_OK(vae_synth_write(tiny, &o));
    wan_vae *vc = NULL;
    CHECK_OK(wan_vae_load(tiny, cpu, &vc));
    printf("| %-34s | %-22s | %9s | %7s | %12s |\n", "op", "shape", "rel_l2", "tol", "time");
    /* cuDNN forced (where it can express the convolution) so that a refusal shows as an error
     * instead of a silent switch to our kernel */
    if (vc && reel_get_features().cudnn)
        compare(cpu, cuda, tiny, "cudnn", vc);
    if (vc)
        compare(cpu, cuda, tiny, "igemm", vc);
    wan_vae_free(vc);

    o = vae_synth_default(); /* dim 96, bf16 */
    o.seed = check_rand_u64();
    CHECK_OK(vae_synth_write(wide, &o));
    vae_decode_opts tiles = {30, 52, 4};
    bench(cuda, wide, "", NULL, 3);
    bench(cuda, wide, "igemm", NULL, 1);
    bench(cuda, wide, "", &tiles, 1);
    if (!export_dir)
        remove(wide);
    backend_free(cpu);
    backend_free(cuda);
    return check_done();
}
