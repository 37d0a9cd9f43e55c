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

typedef struct run_inputs {
    int F, H, W, Lc, nt;
    float t[8];
    float *latent, *context;
} run_inputs;

static int run_reel(const char *path, backend *be, const run_inputs *in, float *out, const char *attn)
{
    wan_dit *m;
    TRY(wan_dit_load(path, be, &m));
    arena S;
    int st = arena_init(&S, be, wan_dit_scratch_bytes(m, in->F, in->H, in->W) + (64u << 20), "test");
    int64_t ls[4] = {m->cfg.in_dim, in->F, in->H, in->W}, os[4] = {m->cfg.out_dim, in->F, in->H, in->W};
    tensor lat_h = tensor_make(in->latent, DT_F32, DEV_CPU, 4, ls), lat, o;
    tensor ctx = tensor_2d(in->context, DT_F32, DEV_CPU, in->Lc, m->cfg.text_dim);
    wan_context wc = {0};
    attn_instance *self = NULL, *cross = NULL;
    reel_attn_config ac = wan_dit_attn_config(m, in->F, in->H, in->W, 1);
    if (st >= 0)
        st = arena_tensor(&S, DT_F32, 4, ls, &lat);
    if (st >= 0)
        st = arena_tensor(&S, DT_F32, 4, os, &o);
    if (st >= 0)
        st = be->ops->copy(be, &lat_h, &lat);
    if (st >= 0)
        st = wan_context_prepare(m, &ctx, &S, &wc);
    if (st >= 0)
        st = attn_instance_create(attn, &ac, &self);
    if (st >= 0)
        st = attn_instance_create("dense", &ac, &cross);
    if (st >= 0) {
        wan_forward_args a = {&lat, in->t, in->nt, &wc, self, cross, 0, &o, NULL};
        st = wan_dit_forward(m, &a, &S);
    }
    tensor oh = tensor_make(out, DT_F32, DEV_CPU, 4, os);
    if (st >= 0)
        st = be->ops->copy(be, &o, &oh);
    if (st >= 0)
        st = be->ops->sync(be);
    attn_instance_free(self);
    attn_instance_free(cross);
    wan_context_free(m, &wc);
    arena_release(&S);
    wan_dit_free(m);
    return st;
}

static void make_inputs(run_inputs *in, const wan_config *c, int F, int H, int W, int Lc, int nt)
{
    memset(in, 0, sizeof *in);
    in->F = F, in->H = H, in->W = W, in->Lc = Lc, in->nt = nt;
    in->latent = malloc(sizeof(float) * c->in_dim * F * H * W);
    in->context = malloc(sizeof(float) * (Lc ? Lc : 1) * c->text_dim);
    check_fill_normal(in->latent, (size_t)c->in_dim * F * H * W, 1.0f);
    check_fill_normal(in->context, (size_t)Lc * c->text_dim, 0.5f);
    for (int i = 0; i < nt; i++)
        in->t[i] = (float)check_rand_uniform(0, 1000);
}

static void free_inputs(run_inputs *in)
{
    free(in->latent);
    free(in->context);
}

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
    run_inputs in;
    make_inputs(&in, &cfg, 3, 6, 10, 7, 1);
    size_t n = (size_t)cfg.out_dim * in.F * in.H * in.W;
    float *got = malloc(n * sizeof *got), *other = malloc(n * sizeof *other);
    double *ref = malloc(n * sizeof *ref);
    wan_ref_forward(&tiny, in.latent, in.F, in.H, in.W, in.t, in.nt, in.context, in.Lc, ref);
    CHECK_OK(run_reel(orig, be, &in, got, "dense"));
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
        int st = run_reel(path, be, &in, other, "dense");
        CHECK(st == 0, "%s: %s", layouts[i].what, err_msg());
        double d = check_rel_l2(other, got, n);
        CHECK(d == 0, "%s: differs from the original layout by %.3e", layouts[i].what, d);
    }

    /* the context is zero-padded to 512 rows: passing the padding explicitly changes nothing */
    {
        run_inputs padded = in;
        padded.Lc = cfg.text_len;
        padded.context = calloc((size_t)cfg.text_len * cfg.text_dim, sizeof(float));
        memcpy(padded.context, in.context, sizeof(float) * in.Lc * cfg.text_dim);
        CHECK_OK(run_reel(orig, be, &padded, other, "dense"));
        double d = check_rel_l2(other, got, n);
        CHECK(d < 1e-6, "explicit zero padding changed the output by %.3e", d);
        free(padded.context);
    }

    /* one timestep per latent frame (the causal model's form), against the reference */
    {
        run_inputs pf;
        make_inputs(&pf, &cfg, 3, 4, 6, 5, 3);
        size_t m = (size_t)cfg.out_dim * 3 * 4 * 6;
        float *g = malloc(m * sizeof *g);
        double *r = malloc(m * sizeof *r);
        wan_ref_forward(&tiny, pf.latent, 3, 4, 6, pf.t, 3, pf.context, 5, r);
        CHECK_OK(run_reel(orig, be, &pf, g, "dense"));
        double e = check_rel_l2_d(g, r, m);
        printf("| dit cpu per-frame timesteps | [16,3,4,6] | %.2e | 1e-4 |\n", e);
        CHECK(e < 1e-4, "per-frame timesteps: rel L2 %.3e", e);
        free(g);
        free(r);
        free_inputs(&pf);
    }

    /* bad inputs give errors that name what is wrong */
    {
        run_inputs bad;
        make_inputs(&bad, &cfg, 3, 5, 10, 7, 1); /* H = 5: not a multiple of the patch */
        int st = run_reel(orig, be, &bad, other, "dense");
        CHECK(st == REEL_E_INVALID && strstr(err_msg(), "patch"), "odd height: %d %s", st, err_msg());
        free_inputs(&bad);
        make_inputs(&bad, &cfg, 3, 6, 10, 513, 1); /* longer than text_len */
        st = run_reel(orig, be, &bad, other, "dense");
        CHECK(st == REEL_E_INVALID && strstr(err_msg(), "context"), "long context: %d %s", st, err_msg());
        free_inputs(&bad);
        st = run_reel(check_path("no-such-model"), be, &in, other, "dense");
        CHECK(st < 0, "missing model folder loaded");
    }
    /* a checkpoint missing one tensor is rejected by name */
    {
        wan_tiny broken = tiny;
        broken.n = tiny.n - 1; /* drops the last block's ffn.2.bias */
        char path[1024];
        snprintf(dir, sizeof dir, "%s", check_path("broken"));
        CHECK_OK(wan_tiny_write(&broken, LAYOUT_WAN_ORIGINAL, DT_F32, 1, dir, path, sizeof path));
        int st = run_reel(path, be, &in, other, "dense");
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
    free_inputs(&in);
    wan_tiny_free(&tiny);
    backend_free(be);
    return check_done();
}
