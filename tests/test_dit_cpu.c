/* Wan DiT on the CPU backend against an independent double-precision forward written from the
 * spec (tests/support/wan_tiny.c), on a tiny random model written in every published layout. */
#include "check.h"
#include "support/model_writer.h"
#include "support/wan_tiny.h"

#include "attention/attn.h"
#include "dit/error.h"
#include "dit/wan_dit.h"
#include "dit/weights.h"

#include <sys/wait.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void)
{
    check_seed("test_dit_cpu");
    attn_register_builtins();
    backend *be;
    CHECK_OK(backend_cpu_create(0, &be));
    wan_config cfg;
    wan_tiny_config(&cfg);
    wan_tiny tiny;
    CHECK_OK(wan_tiny_make(&cfg, check_rand_u64(), &tiny));

    char orig[1024], dir[1024];
    snprintf(dir, sizeof dir, "%s", check_path("original"));
    CHECK_OK(wan_tiny_write(&tiny, LAYOUT_WAN_ORIGINAL, DT_F32, 1, dir, orig, sizeof orig));

    /* non-square grid, 45 tokens (no tile size divides it), 7-row context, one timestep */
    wan_tiny_in in;
    wan_tiny_inputs(&in, &cfg, 3, 6, 10, 7, 1);
    size_t n = (size_t)cfg.out_dim * in.F * in.H * in.W;
    float *got = malloc(n * sizeof *got), *other = malloc(n * sizeof *other);
    double *ref = malloc(n * sizeof *ref);
    wan_ref_forward(&tiny, in.latent, in.F, in.H, in.W, in.t, in.nt, in.context, in.Lc, ref);
    CHECK_OK(wan_tiny_run(orig, be, &in, got, "dense"));
    double err = check_rel_l2_d(got, ref, n);
    printf("| dit cpu vs double reference | [16,3,6,10] t=%.1f ctx 7 | %.2e | 1e-4 |\n", in.t[0], err);
    CHECK(err < 1e-4, "CPU DiT vs double reference: rel L2 %.3e", err);

    /* every published layout and stored dtype loads to the same model (values are bf16-exact) */
    static const struct {
        enum model_layout layout;
        enum dtype dt;
        int shards;
        const char *what;
    } layouts[] = {
        {LAYOUT_WAN_ORIGINAL, DT_BF16, 3, "original, 3 shards + index, bf16"},
        {LAYOUT_DIFFUSERS, DT_F32, 2, "diffusers transformer/, 2 shards"},
        {LAYOUT_COMFYUI, DT_BF16, 1, "ComfyUI single file, prefixed, bf16"},
        {LAYOUT_COMFYUI, DT_F16, 1, "ComfyUI single file, prefixed, fp16"},
        {LAYOUT_SELF_FORCING, DT_F32, 1, "Self-Forcing .pt, nested generator_ema"},
    };
    for (size_t i = 0; i < sizeof layouts / sizeof layouts[0]; i++) {
        char sub[64], path[1024];
        snprintf(sub, sizeof sub, "layout%zu", i);
        snprintf(dir, sizeof dir, "%s", check_path(sub));
        CHECK_OK(wan_tiny_write(&tiny, layouts[i].layout, layouts[i].dt, layouts[i].shards, dir,
                                path, sizeof path));
        memset(other, 0, n * sizeof *other);
        int st = wan_tiny_run(path, be, &in, other, "dense");
        CHECK(st == 0, "%s: %s", layouts[i].what, err_msg());
        double d = check_rel_l2(other, got, n);
        CHECK(d == 0, "%s: differs from the original layout by %.3e", layouts[i].what, d);
    }

    /* the context is zero-padded to 512 rows: passing the padding explicitly changes nothing */
    {
        wan_tiny_in padded = in;
        padded.Lc = cfg.text_len;
        padded.context = calloc((size_t)cfg.text_len * cfg.text_dim, sizeof(float));
        memcpy(padded.context, in.context, sizeof(float) * in.Lc * cfg.text_dim);
        CHECK_OK(wan_tiny_run(orig, be, &padded, other, "dense"));
        double d = check_rel_l2(other, got, n);
        CHECK(d < 1e-6, "explicit zero padding changed the output by %.3e", d);
        free(padded.context);
    }

    /* one timestep per latent frame (the causal model's form), against the reference */
    {
        wan_tiny_in pf;
        wan_tiny_inputs(&pf, &cfg, 3, 4, 6, 5, 3);
        size_t m = (size_t)cfg.out_dim * 3 * 4 * 6;
        float *g = malloc(m * sizeof *g);
        double *r = malloc(m * sizeof *r);
        wan_ref_forward(&tiny, pf.latent, 3, 4, 6, pf.t, 3, pf.context, 5, r);
        CHECK_OK(wan_tiny_run(orig, be, &pf, g, "dense"));
        double e = check_rel_l2_d(g, r, m);
        printf("| dit cpu per-frame timesteps | [16,3,4,6] | %.2e | 1e-4 |\n", e);
        CHECK(e < 1e-4, "per-frame timesteps: rel L2 %.3e", e);
        free(g);
        free(r);
        wan_tiny_inputs_free(&pf);
    }

    /* guidance's two contexts (prompt, negative prompt: different lengths) in one batched
     * forward equal the two single forwards bit for bit: every op either works row by row or
     * runs per element slice, and the CPU GEMM sums each output over K in the same order
     * whatever M is, so batching changes no arithmetic. With one timestep, with one per latent
     * frame (each element's rows must meet its own copy of the modulation groups), and through
     * the Radial plugin (called once per element and layer). */
    static const struct {
        int F, H, W, nt;
        const char *attn;
    } batches[] = {
        {3, 6, 10, 1, "dense"},
        {3, 6, 10, 3, "dense"},
        {11, 16, 24, 1, "radial:dense_steps=0,dense_layers=0"},
    };
    for (size_t i = 0; i < sizeof batches / sizeof batches[0]; i++) {
        wan_tiny_in bi;
        wan_tiny_inputs(&bi, &cfg, batches[i].F, batches[i].H, batches[i].W, 7, batches[i].nt);
        float *neg = malloc(sizeof(float) * 12 * cfg.text_dim);
        check_fill_normal(neg, (size_t)12 * cfg.text_dim, 0.5f);
        const float *ctxs[2] = {bi.context, neg};
        const int lc[2] = {bi.Lc, 12};
        wan_tiny_batch_diff d;
        CHECK_OK(wan_tiny_batch_check(orig, be, &cfg, &bi, 2, ctxs, lc, batches[i].attn, &d));
        printf("| dit cpu batch of 2 vs single, %s | [16,%d,%d,%d] ctx 7, 12, %d t | %.2e "
               "(contexts apart %.2e) | bit-equal |\n", batches[i].attn, bi.F, bi.H, bi.W, bi.nt,
               d.worst, d.apart);
        CHECK(d.bit_equal, "batched forward (%s, %d timesteps) differs from the single forwards: "
              "rel L2 %.3e", batches[i].attn, bi.nt, d.worst);
        free(neg);
        wan_tiny_inputs_free(&bi);
    }

    /* bad inputs give errors that name what is wrong */
    {
        wan_tiny_in bad;
        wan_tiny_inputs(&bad, &cfg, 3, 5, 10, 7, 1); /* H = 5: not a multiple of the patch */
        int st = wan_tiny_run(orig, be, &bad, other, "dense");
        CHECK(st == REEL_E_INVALID && strstr(err_msg(), "patch"), "odd height: %d %s", st, err_msg());
        wan_tiny_inputs_free(&bad);
        wan_tiny_inputs(&bad, &cfg, 3, 6, 10, 513, 1); /* longer than text_len */
        st = wan_tiny_run(orig, be, &bad, other, "dense");
        CHECK(st == REEL_E_INVALID && strstr(err_msg(), "context"), "long context: %d %s", st, err_msg());
        wan_tiny_inputs_free(&bad);
        st = wan_tiny_run(check_path("no-such-model"), be, &in, other, "dense");
        CHECK(st < 0, "missing model folder loaded");
    }
    /* a checkpoint missing one tensor is rejected by name */
    {
        wan_tiny broken = tiny;
        broken.n = tiny.n - 1; /* drops the last block's ffn.2.bias */
        char path[1024];
        snprintf(dir, sizeof dir, "%s", check_path("broken"));
        CHECK_OK(wan_tiny_write(&broken, LAYOUT_WAN_ORIGINAL, DT_F32, 1, dir, path, sizeof path));
        int st = wan_tiny_run(path, be, &in, other, "dense");
        CHECK(st == REEL_E_FORMAT && strstr(err_msg(), "blocks.1.ffn.2.bias"), "missing tensor: %d %s",
              st, err_msg());
    }

    /* reel dit: the same forward through the command-line tool and files */
    {
        const char *bin = getenv("REEL_BIN");
        float t1 = in.t[0];
        tw_tensor io[3] = {
            {"latent", DT_F32, 4, {16, in.F, in.H, in.W}, in.latent},
            {"timestep", DT_F32, 1, {1}, &t1},
            {"context", DT_F32, 2, {in.Lc, cfg.text_dim}, in.context},
        };
        char inp[1024], outp[1024], cmd[4096];
        snprintf(inp, sizeof inp, "%s", check_path("dit_in.safetensors"));
        snprintf(outp, sizeof outp, "%s", check_path("dit_out.safetensors"));
        CHECK_OK(tw_write_safetensors(inp, io, 3, NULL));
        CHECK(bin != NULL, "REEL_BIN not set (run through ctest)");
        if (bin) {
            snprintf(cmd, sizeof cmd, "'%s' dit --backend cpu --model '%s' -i '%s' -o '%s'", bin, orig, inp, outp);
            int rc = system(cmd);
            CHECK(rc == 0, "reel dit exited with %d", rc);
            weights *ws = NULL;
            CHECK_OK(weights_open(outp, &ws));
            const weight_entry *e = ws ? weights_find(ws, "velocity") : NULL;
            CHECK(e && tensor_numel(&e->t) == (int64_t)n, "reel dit output lacks velocity [16,3,6,10]");
            if (e && tensor_numel(&e->t) == (int64_t)n) {
                CHECK_OK(weights_read_f32(e, other));
                double d = check_rel_l2(other, got, n);
                CHECK(d < 1e-6, "reel dit output differs from the library call by %.3e", d);
            }
            weights_close(ws);
            /* no overwrite without --overwrite; a missing input tensor is named */
            rc = system(cmd);
            CHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == 1, "second run without --overwrite: %d", rc);
            snprintf(cmd, sizeof cmd, "'%s' dit --backend cpu --model '%s' -i '%s' -o '%s' --overwrite 2>/dev/null",
                     bin, orig, orig, check_path("x.safetensors"));
            rc = system(cmd);
            CHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == 1, "input without tensors: %d", rc);
        }
    }

    free(got);
    free(other);
    free(ref);
    wan_tiny_inputs_free(&in);
    wan_tiny_free(&tiny);
    backend_free(be);
    return check_done();
}
