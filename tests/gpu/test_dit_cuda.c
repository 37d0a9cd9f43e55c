/* The Wan DiT on CUDA (bf16 GEMMs and attention, fp32 residual stream, norms, modulation, time
 * embedding and head) against the CPU backend (fp32) and against the double-precision forward
 * written from the spec (tests/support/wan_tiny.c): the tiny model (dim 256, 2 heads of 128,
 * 2 layers, text_dim 64) on non-square grids whose token counts no tile size divides, a full
 * 512-row context, one timestep per latent frame, the Radial plugin (CPU against CUDA only: the
 * double reference is dense); then a 2-layer cut of the
 * 1.3B model's widths (dim 1536, 12 heads, ffn 8960, text_dim 4096). Weights are stored in bf16
 * so that both backends see the same numbers; outputs and activations are poisoned with NaN.
 * Tolerance: relative L2 2e-2 (bf16 inputs to every GEMM and to attention on CUDA).
 * Batched guidance: one forward over two contexts against the two single forwards, on CUDA
 * alone, tolerance 1e-2 (see batch_compare).
 * Prints `| op | shape | rel_l2 | tolerance | ms |` rows.
 *
 * With REEL_DIT_REF_DIR set, also leaves a 2-layer 1.3B-width model (original layout, one
 * file), its inputs and reel's CUDA and CPU outputs there, for tests/gpu/ref_wan.py compare (the
 * PyTorch implementation written from the spec) to check in the same run (tests/gpu/run.sh). */
#include "check.h"
#include "support/model_writer.h"
#include "support/wan_tiny.h"

#include "attention/attn.h"
#include "dit/error.h"
#include "dit/clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOL 2e-2

static backend *cpu, *gpu;

/* CUDA against the CPU backend and against the double reference (when given) on one input. */
static void compare(const char *what, const char *path, const wan_tiny *ref_model, const wan_config *c,
                    int F, int H, int W, int Lc, int nt, const char *attn, const char *keep_dir)
{
    wan_tiny_in in;
    wan_tiny_inputs(&in, c, F, H, W, Lc, nt);
    size_t n = (size_t)c->out_dim * F * H * W;
    float *g = malloc(n * sizeof *g), *r = malloc(n * sizeof *r);
    int st = wan_tiny_run(path, cpu, &in, r, attn);
    CHECK(st == 0, "%s on the CPU: %s", what, err_msg());
    double t0 = clock_ms();
    st = wan_tiny_run(path, gpu, &in, g, attn);
    double ms = clock_ms() - t0;
    CHECK(st == 0, "%s on CUDA: %s", what, err_msg());
    char shape[96];
    snprintf(shape, sizeof shape, "[16,%d,%d,%d] %d tok, ctx %d, %d t", F, H, W,
             F / c->patch[0] * (H / c->patch[1]) * (W / c->patch[2]), Lc, nt);
    double e = check_rel_l2(g, r, n);
    printf("| dit cuda vs cpu %s | %s | %.3g | %g | %.1f |\n", what, shape, e, TOL, ms);
    CHECK(e <= TOL, "%s %s: CUDA vs CPU rel L2 %.3e", what, shape, e);
    if (keep_dir) {
        char p[1200];
        float t = in.t[0];
        tw_tensor io[3] = {{"latent", DT_F32, 4, {c->in_dim, F, H, W}, in.latent},
                           {"timestep", DT_F32, 1, {1}, &t},
                           {"context", DT_F32, 2, {Lc, c->text_dim}, in.context}};
        tw_tensor vc = {"velocity", DT_F32, 4, {c->out_dim, F, H, W}, g};
        tw_tensor vr = {"velocity", DT_F32, 4, {c->out_dim, F, H, W}, r};
        snprintf(p, sizeof p, "%s/inputs.safetensors", keep_dir);
        CHECK_OK(tw_write_safetensors(p, io, 3, NULL));
        snprintf(p, sizeof p, "%s/reel_cuda.safetensors", keep_dir);
        CHECK_OK(tw_write_safetensors(p, &vc, 1, NULL));
        snprintf(p, sizeof p, "%s/reel_cpu.safetensors", keep_dir);
        CHECK_OK(tw_write_safetensors(p, &vr, 1, NULL));
    }
    if (ref_model) {
        double *d = malloc(n * sizeof *d);
        wan_ref_forward(ref_model, in.latent, F, H, W, in.t, nt, in.context, Lc, d);
        double ed = check_rel_l2_d(g, d, n);
        printf("| dit cuda vs double reference %s | %s | %.3g | %g | |\n", what, shape, ed, TOL);
        CHECK(ed <= TOL, "%s %s: CUDA vs double reference rel L2 %.3e", what, shape, ed);
        free(d);
    }
    free(g);
    free(r);
    wan_tiny_inputs_free(&in);
}

/* Relative L2 allowed between a batched prediction and its single forward on CUDA. Batching
 * changes no op's math: only cuBLASLt's algorithm for M = 2L rows against L (summation order,
 * fused or separate bias/GELU epilogue), i.e. an occasional bf16 rounding of the block GEMMs'
 * outputs, which lands far below this. The contexts are made to move the output by about 2e-1
 * (checked: at least 5x this), so a context, RoPE position or modulation group taken from the
 * wrong element fails by a wide margin. */
#define BATCH_TOL 1e-2

/* One forward over two contexts (a full-length one and a 100-row one, N(0, 1): long and large
 * enough to matter in a random model) against each context's single forward, both on CUDA. */
static void batch_compare(const char *what, const char *path, const wan_config *c, int F, int H,
                          int W, int nt, const char *attn)
{
    wan_tiny_in in;
    wan_tiny_inputs(&in, c, F, H, W, c->text_len, nt);
    check_fill_normal(in.context, (size_t)c->text_len * c->text_dim, 1.0f);
    float *neg = malloc(sizeof(float) * 100 * c->text_dim);
    check_fill_normal(neg, (size_t)100 * c->text_dim, 1.0f);
    const float *ctxs[2] = {in.context, neg};
    const int lc[2] = {c->text_len, 100};
    wan_tiny_batch_diff d;
    int st = wan_tiny_batch_check(path, gpu, c, &in, 2, ctxs, lc, attn, &d);
    CHECK(st == 0, "%s batched on CUDA: %s", what, err_msg());
    char shape[96];
    snprintf(shape, sizeof shape, "[16,%d,%d,%d] ctx %d, 100, %d t", F, H, W, c->text_len, nt);
    printf("| dit cuda batch of 2 vs single %s | %s | %.3g (contexts apart %.3g%s) | %g | |\n",
           what, shape, d.worst, d.apart, d.bit_equal ? ", bit-equal" : "", BATCH_TOL);
    CHECK(st != 0 || d.worst <= BATCH_TOL, "%s %s: batched vs single rel L2 %.3e", what, shape,
          d.worst);
    CHECK(st != 0 || d.apart >= 5 * BATCH_TOL,
          "%s %s: the two contexts' predictions differ by only %.3e, too little to test", what,
          shape, d.apart);
    free(neg);
    wan_tiny_inputs_free(&in);
}

int main(void)
{
    check_seed("gpu_test_dit_cuda");
    gpu = check_cuda_backend();
    if (!gpu)
        return check_skip("no CUDA device");
    attn_register_builtins();
    CHECK_OK(backend_cpu_create(0, &cpu));

    wan_config cfg;
    wan_tiny_config(&cfg);
    wan_tiny tiny;
    CHECK_OK(wan_tiny_make(&cfg, check_rand_u64(), &tiny));
    char path[1024], dir[1024];
    snprintf(dir, sizeof dir, "%s", check_path("tiny"));
    CHECK_OK(wan_tiny_write(&tiny, LAYOUT_WAN_ORIGINAL, DT_BF16, 1, dir, path, sizeof path));
    compare("tiny", path, &tiny, &cfg, 3, 6, 10, 7, 1, "dense", NULL);     /* 45 tokens */
    compare("tiny", path, &tiny, &cfg, 5, 18, 34, 77, 1, "dense", NULL);   /* 765 tokens */
    compare("tiny", path, &tiny, &cfg, 2, 30, 52, 512, 1, "dense", NULL);  /* 780 tokens, full context */
    compare("tiny per-frame t", path, &tiny, &cfg, 4, 8, 14, 19, 4, "dense", NULL);
    compare("tiny radial", path, NULL, &cfg, 11, 16, 24, 33, 1, "radial:dense_steps=0,dense_layers=0", NULL);
    batch_compare("tiny", path, &cfg, 3, 6, 10, 1, "dense");
    batch_compare("tiny per-frame t", path, &cfg, 4, 8, 14, 4, "dense");
    batch_compare("tiny radial", path, &cfg, 11, 16, 24, 1, "radial:dense_steps=0,dense_layers=0");
    wan_tiny_free(&tiny);

    /* the 1.3B model's widths, 2 layers: 12 heads through the real attention kernels */
    wan_config wide = cfg;
    wide.dim = 1536, wide.heads = 12, wide.head_dim = 128, wide.ffn_dim = 8960;
    wide.text_dim = 4096, wide.layers = 2;
    wan_tiny cut;
    CHECK_OK(wan_tiny_make(&wide, check_rand_u64(), &cut));
    const char *keep = getenv("REEL_DIT_REF_DIR");
    snprintf(dir, sizeof dir, "%s", keep ? keep : check_path("wide"));
    CHECK_OK(wan_tiny_write(&cut, LAYOUT_WAN_ORIGINAL, DT_BF16, keep ? 1 : 2, dir, path, sizeof path));
    wan_tiny_free(&cut);
    compare("1.3B widths, 2 layers", path, NULL, &wide, 3, 16, 26, 512, 1, "dense", NULL);
    /* before the kept compare: that one leaves its inputs and outputs next to the checkpoint */
    batch_compare("1.3B widths, 2 layers", path, &wide, 3, 16, 26, 1, "dense");
    compare("1.3B widths, 2 layers", path, NULL, &wide, 6, 20, 36, 100, 1, "dense", keep);

    backend_free(cpu);
    backend_free(gpu);
    return check_done();
}
