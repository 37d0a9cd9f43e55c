/* reel bench attn: times attention kernels at Wan shapes on synthetic bf16 q/k/v laid out as
 * the DiT lays them out (slices of a fused [L, 3*heads*128] QKV buffer, packed output):
 * reel's flash kernels (mma.sync and, on Hopper, wgmma) dense, cuDNN SDPA dense, the Radial
 * mask at 81 frames, random block masks, and cross-attention over a 512-key text context.
 * Each time is the median of --reps runs after a warm-up, taken with CUDA events.
 * FLOPs per dense call: 4 * L * L * head_dim * heads; a sparse call reports the dense FLOPs
 * over its time (effective TFLOP/s) next to its density (fraction of 128x128 tiles computed)
 * and t / (density * t_dense), the sparse kernel's overhead over perfect scaling (1.0 = time
 * exactly proportional to the tiles computed). */
#include "cli.h"

#include "attention/attn_cuda.h"
#include "attention/attn_flash.h"
#include "attention/attn_radial_mask.h"
#ifdef REEL_HAVE_CUDNN
#include "attention/attn_cudnn.h"
#endif
#include "dit/error.h"
#include "dit/numeric.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct bench_shape {
    const char *name;
    int heads, f, h, w;
} bench_shape;

static const bench_shape shapes[] = {
    {"wan1.3b-480p-81f", 12, 21, 30, 52}, /* 832x480, 81 frames: 32760 tokens */
    {"wan14b-720p-81f", 40, 21, 45, 80},  /* 1280x720, 81 frames: 75600 tokens */
};

typedef struct bench {
    int json, reps, rows;
    char device[128];
    /* the shape being measured */
    const bench_shape *shape;
    int64_t L;
    attn_flash_args args;
    float dense_ms, cudnn_ms;
    const char *kernel; /* "mma", "wgmma", "cudnn" */
#ifdef REEL_HAVE_CUDNN
    attn_cudnn *cudnn;
#endif
} bench;

static void report(bench *b, const char *what, double density, float ms)
{
    char kernel[96];
    snprintf(kernel, sizeof kernel, "%s %s", b->kernel, what);
    const int heads = b->shape->heads;
    const int64_t kv = b->args.kv_tokens;
    double tflops = 4.0 * (double)b->L * kv * 128 * heads / (ms * 1e-3) / 1e12;
    double scaling = density < 1 && b->dense_ms > 0 ? ms / (density * b->dense_ms) : 0;
    double vs_cudnn = b->cudnn_ms > 0 ? b->cudnn_ms / ms : 0;
    if (b->json) {
        printf("%s  {\"shape\": \"%s\", \"kernel\": \"%s\", \"heads\": %d, \"tokens\": %lld, "
               "\"keys\": %lld, \"density\": %.4f, \"ms\": %.4f, \"tflops_effective\": %.1f, "
               "\"speedup_vs_cudnn_dense\": %.3f, \"t_over_density_t_dense\": %.3f, "
               "\"device\": \"%s\"}",
               b->rows ? ",\n" : "[\n", b->shape->name, kernel, heads, (long long)b->L,
               (long long)kv, density, ms, tflops, vs_cudnn, scaling, b->device);
    } else {
        char sc[32] = "", vc[32] = "", keys[32] = "";
        if (scaling > 0)
            snprintf(sc, sizeof sc, "%.3f", scaling);
        if (vs_cudnn > 0)
            snprintf(vc, sizeof vc, "%.2f", vs_cudnn);
        if (!b->rows)
            printf("device: %s\n| shape | kernel | heads x tokens | density | ms | TFLOP/s "
                   "(eff.) | speedup vs cuDNN dense | t/(density t_dense) |\n"
                   "|---|---|---|---|---|---|---|---|\n",
                   b->device);
        if (kv != b->L)
            snprintf(keys, sizeof keys, " (%lld keys)", (long long)kv);
        printf("| %s | %s | %d x %lld%s | %.3f | %.3f | %.1f | %s | %s |\n", b->shape->name,
               kernel, heads, (long long)b->L, keys, density, ms, tflops, vc, sc);
    }
    b->rows++;
    fflush(stdout);
}

static int run_flash(void *ctx) { return attn_flash_forward(ctx); }

#ifdef REEL_HAVE_CUDNN
static int run_cudnn(void *ctx)
{
    bench *b = ctx;
    return attn_cudnn_forward(b->cudnn, &b->args);
}
#endif

/* Random bf16 values (unit variance) into n elements of device memory: one host block,
 * written repeatedly at shifting offsets; timing depends on the values only through their
 * being ordinary numbers. */
static int fill_random(void *dev, size_t n)
{
    const size_t block = (size_t)1 << 22;
    uint16_t *host = malloc((2 * block) * 2);
    if (!host)
        return err_set(REEL_E_NOMEM, "bench attn: out of memory");
    uint64_t s = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < 2 * block; i++) {
        s ^= s >> 12, s ^= s << 25, s ^= s >> 27;
        double u = (double)((s * 0x2545f4914f6cdd1dull) >> 11) / 9007199254740992.0;
        host[i] = f32_to_bf16((float)(2 * u - 1) * 1.732f);
    }
    int st = REEL_OK;
    for (size_t at = 0; at < n && st == REEL_OK; at += block) {
        size_t len = n - at < block ? n - at : block;
        size_t shift = (at / block * 7919) % block;
        st = attn_cuda_write((uint16_t *)dev + at, host + shift, len * 2);
    }
    free(host);
    return st;
}

#ifdef REEL_HAVE_CUDNN
/* cuDNN dense at the current shape; a shape cuDNN cannot take is reported, not fatal. */
static void time_cudnn(bench *b, const char *what)
{
    int st = attn_cuda_time(run_cudnn, b, NULL, b->reps, &b->cudnn_ms);
    if (st < 0) {
        fprintf(stderr, "reel bench attn: cuDNN at %s: %s\n", b->shape->name, err_msg());
        b->cudnn_ms = 0;
        return;
    }
    b->kernel = "cudnn";
    report(b, what, 1.0, b->cudnn_ms);
}
#endif

static int time_sparse(bench *b, const char *kernel, const attn_block_mask *m)
{
    void *rows = NULL, *cols = NULL;
    int st = attn_cuda_upload(m->row_start, sizeof(int32_t) * ((size_t)m->q_blocks + 1), &rows);
    if (st == REEL_OK)
        st = attn_cuda_upload(m->cols, sizeof(int32_t) * (size_t)(m->nnz ? m->nnz : 1), &cols);
    attn_flash_args a = b->args;
    a.row_start = rows, a.cols = cols;
    float ms = 0;
    if (st == REEL_OK)
        st = attn_cuda_time(run_flash, &a, NULL, b->reps, &ms);
    if (st == REEL_OK)
        report(b, kernel, attn_block_mask_density(m), ms);
    attn_cuda_free(rows);
    attn_cuda_free(cols);
    return st;
}

/* The Radial mask at two decay factors and random masks at two densities, with the kernel of
 * b->args.kernel. */
static int bench_sparse(bench *b)
{
    const bench_shape *sh = b->shape;
    int st = REEL_OK;
    for (int d = 0; d < 2 && st == REEL_OK; d++) {
        double decay = d ? 1.0 : 0.2;
        attn_radial_geom g = {sh->f, (int64_t)sh->h * sh->w, 0, decay};
        attn_block_mask m;
        st = attn_radial_block_mask(&g, &m);
        if (st == REEL_OK) {
            char name[64];
            snprintf(name, sizeof name, "radial decay %.1f", decay);
            st = time_sparse(b, name, &m);
            attn_block_mask_release(&m);
        }
    }
    for (int d = 0; d < 2 && st == REEL_OK; d++) {
        double want = d ? 0.25 : 0.5;
        attn_block_mask m;
        st = attn_block_mask_init(&m, b->L, b->L);
        uint64_t s = 12345 + d;
        for (int i = 0; st == REEL_OK && i < m.q_blocks * m.kv_blocks; i++) {
            s ^= s >> 12, s ^= s << 25, s ^= s >> 27;
            m.keep[i] = (double)((s * 0x2545f4914f6cdd1dull) >> 11) / 9007199254740992.0 < want;
        }
        if (st == REEL_OK)
            st = attn_block_mask_finish(&m);
        if (st == REEL_OK) {
            char name[64];
            snprintf(name, sizeof name, "random %.2f", want);
            st = time_sparse(b, name, &m);
        }
        attn_block_mask_release(&m);
    }
    return st;
}

/* Cross-attention at the shape: every query against the first `keys` keys (Wan's 512-row text
 * context), cuDNN and the wgmma kernel (mma.sync off Hopper), the cuDNN time as the ratio's base. */
static int bench_cross(bench *b, int64_t keys)
{
    const int64_t all = b->args.kv_tokens;
    b->args.kv_tokens = keys;
    b->cudnn_ms = 0;
#ifdef REEL_HAVE_CUDNN
    if (b->cudnn)
        time_cudnn(b, "cross");
#endif
    b->args.kernel = ATTN_FLASH_AUTO;
    int wgmma = 0;
    int st = attn_flash_has_wgmma(128, &wgmma);
    b->kernel = wgmma ? "wgmma" : "mma";
    float ms = 0;
    if (st == REEL_OK)
        st = attn_cuda_time(run_flash, &b->args, NULL, b->reps, &ms);
    if (st == REEL_OK)
        report(b, "cross", 1.0, ms);
    b->args.kv_tokens = all;
    return st;
}

static int bench_shape_run(bench *b, const bench_shape *sh)
{
    b->shape = sh;
    b->L = (int64_t)sh->f * sh->h * sh->w;
    const int64_t row = (int64_t)sh->heads * 128;
    void *qkv = NULL, *out = NULL;
    int st = attn_cuda_alloc((size_t)(b->L * 3 * row) * 2, &qkv);
    if (st == REEL_OK)
        st = attn_cuda_alloc((size_t)(b->L * row) * 2, &out);
    if (st == REEL_OK)
        st = fill_random(qkv, (size_t)(b->L * 3 * row));
    memset(&b->args, 0, sizeof b->args);
    b->args.q = qkv;
    b->args.k = (uint16_t *)qkv + row;
    b->args.v = (uint16_t *)qkv + 2 * row;
    b->args.out = out;
    b->args.q_tokens = b->args.kv_tokens = b->L;
    b->args.q_stride = b->args.kv_stride = 3 * row;
    b->args.heads = sh->heads;
    b->args.head_dim = 128;
    b->args.scale = 0.08838834764831845f;
    b->dense_ms = b->cudnn_ms = 0;

#ifdef REEL_HAVE_CUDNN
    if (st == REEL_OK && b->cudnn)
        time_cudnn(b, "dense");
#endif
    static const char *const names[] = {"", "mma", "wgmma"};
    for (int kernel = ATTN_FLASH_MMA; kernel <= ATTN_FLASH_WGMMA && st == REEL_OK; kernel++) {
        b->args.kernel = kernel;
        b->kernel = names[kernel];
        st = attn_cuda_time(run_flash, &b->args, NULL, b->reps, &b->dense_ms);
        if (st == REEL_E_UNSUPPORTED && kernel == ATTN_FLASH_WGMMA) {
            fprintf(stderr, "reel bench attn: %s\n", err_msg());
            st = REEL_OK;
            break;
        }
        if (st == REEL_OK)
            report(b, "dense", 1.0, b->dense_ms);
        st = st == REEL_OK ? bench_sparse(b) : st;
    }
    if (st == REEL_OK)
        st = bench_cross(b, 512);
    attn_cuda_free(qkv);
    attn_cuda_free(out);
    return st;
}

static void bench_usage(FILE *f)
{
    fprintf(f, "usage: reel bench attn [--shape 1.3b|14b|all] [--reps N] [--json] [--device N]\n"
               "  times reel's flash kernel (dense, Radial at 81 frames, random block masks,\n"
               "  cross-attention over 512 keys) and cuDNN SDPA at Wan 1.3B 480p (12 x 32760 x 128) and 14B 720p\n"
               "  (40 x 75600 x 128); median of N runs (default 10) after a warm-up\n");
}

int bench_attn(int argc, char **argv)
{
    bench b;
    memset(&b, 0, sizeof b);
    b.reps = 10;
    int device = 0, first = 0, last = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) {
            b.json = 1;
        } else if (!strcmp(argv[i], "--reps") && i + 1 < argc) {
            b.reps = atoi(argv[++i]);
            if (b.reps < 5 || b.reps > 64)
                return cli_usage_error("bench attn", "--reps %s: expected 5..64", argv[i]);
        } else if (!strcmp(argv[i], "--device") && i + 1 < argc) {
            device = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--shape") && i + 1 < argc) {
            const char *s = argv[++i];
            if (!strcmp(s, "1.3b"))
                first = last = 0;
            else if (!strcmp(s, "14b"))
                first = last = 1;
            else if (strcmp(s, "all"))
                return cli_usage_error("bench attn", "--shape %s: expected 1.3b, 14b or all", s);
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            bench_usage(stdout);
            return 0;
        } else {
            return cli_usage_error("bench attn", "unknown argument '%s'", argv[i]);
        }
    }
    int st = attn_cuda_use_device(device);
    if (st == REEL_OK)
        st = attn_cuda_device_name(b.device, sizeof b.device);
    if (st < 0)
        return cli_fail("bench attn", st);
#ifdef REEL_HAVE_CUDNN
    if (attn_cudnn_create(&b.cudnn) < 0)
        fprintf(stderr, "reel bench attn: cuDNN unavailable: %s\n", err_msg());
#endif
    for (int s = first; s <= last && st == REEL_OK; s++)
        st = bench_shape_run(&b, &shapes[s]);
    if (b.json && b.rows)
        printf("\n]\n");
#ifdef REEL_HAVE_CUDNN
    attn_cudnn_free(b.cudnn);
#endif
    return st < 0 ? cli_fail("bench attn", st) : 0;
}
