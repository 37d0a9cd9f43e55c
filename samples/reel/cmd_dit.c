/* reel dit: one DiT forward from tensors in a safetensors file to a safetensors file, so any
 * implementation can be compared with reel on the same inputs. */
#include "cli.h"

#include "attention/attn.h"
#include "dit/error.h"
#include "dit/st_write.h"
#include "dit/wan_dit.h"
#include "dit/weights.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: reel dit --model PATH -i INPUT.safetensors -o OUTPUT.safetensors [options]\n"
            "\n"
            "Runs one forward of a Wan2.1 DiT and writes its prediction.\n"
            "\n"
            "Input tensors (any float dtype):\n"
            "  latent    [16, F, H, W]  noisy latent: F latent frames of H x W (H, W even)\n"
            "  timestep  [], [1] or [F] diffusion timestep(s) in [0, 1000]; one per latent\n"
            "                           frame runs the causal model's per-frame modulation\n"
            "  context   [L, 4096]      text-encoder output, L <= 512 rows (zero-padded to\n"
            "                           512 inside, as the reference does)\n"
            "Output tensor:\n"
            "  velocity  [16, F, H, W]  f32 flow prediction (noise - x0)\n"
            "\n"
            "Options:\n"
            "  --model PATH            checkpoint file or folder (original Wan, diffusers or\n"
            "                          ComfyUI layout; sharded safetensors with an index)\n"
            "  --backend cpu|cuda      default: cuda when available, else cpu\n"
            "  --attn NAME[:k=v,...]   self-attention plugin (default dense; see reel attn list)\n"
            "  --attn-plugin PATH      load an external attention plugin library first\n"
            "  --step N --steps N      step index / step count told to the plugin (0 / 1)\n"
            "  --overwrite             replace OUTPUT if it exists\n"
            "  --profile               print where the forward's time went\n");
}

typedef struct dit_job {
    const char *model, *in, *out, *backend_name, *attn, *plugin;
    int step, steps, overwrite, profile;
} dit_job;

static int run(const dit_job *j)
{
    backend *be = NULL;
    weights *in = NULL;
    wan_dit *m = NULL;
    arena S = {0};
    wan_context ctx = {0};
    attn_instance *self = NULL, *cross = NULL;
    float *lat_h = NULL, *t_h = NULL, *c_h = NULL, *out_h = NULL;
    tensor lat, tt, ct, lat_d, out_d;
    int st = weights_open(j->in, &in);
    if (st >= 0)
        st = cli_read_f32(in, "dit", "latent", &lat_h, &lat);
    if (st >= 0)
        st = cli_read_f32(in, "dit", "timestep", &t_h, &tt);
    if (st >= 0)
        st = cli_read_f32(in, "dit", "context", &c_h, &ct);
    if (st >= 0 && (lat.ndim != 4 || ct.ndim != 2 || tt.ndim > 1))
        st = err_set(REEL_E_INVALID, "%s: expected latent [16,F,H,W], timestep [] or [F], "
                     "context [L,4096]", j->in);
    if (st >= 0) {
        const char *name = j->backend_name;
        if (!name)
            name = backend_cuda_create(0, &be) >= 0 ? NULL : "cpu";
        if (name)
            st = backend_create_by_name(name, &be);
    }
    if (st >= 0 && j->plugin)
        st = reel_attn_load(j->plugin, &(const char *){NULL});
    if (st >= 0)
        st = wan_dit_load(j->model, be, &m);
    int F = st >= 0 ? (int)lat.shape[1] : 0, H = st >= 0 ? (int)lat.shape[2] : 0;
    int W = st >= 0 ? (int)lat.shape[3] : 0;
    if (st >= 0)
        st = arena_init(&S, be, wan_dit_scratch_bytes(m, F, H, W, 1) + ((size_t)64 << 20), "DiT activations");
    if (st >= 0)
        st = arena_tensor(&S, DT_F32, 4, lat.shape, &lat_d);
    if (st >= 0)
        st = be->ops->copy(be, &lat, &lat_d);
    int64_t os[4] = {m ? m->cfg.out_dim : 0, F, H, W};
    if (st >= 0)
        st = arena_tensor(&S, DT_F32, 4, os, &out_d);
    if (st >= 0)
        st = wan_context_prepare(m, &ct, &S, &ctx);
    if (st >= 0) {
        reel_attn_config ac = wan_dit_attn_config(m, F, H, W, j->steps);
        st = attn_instance_create(j->attn, &ac, &self);
        if (st >= 0)
            st = attn_instance_create("dense", &ac, &cross);
    }
    wan_profile prof;
    if (st >= 0) {
        wan_forward_args a = {&lat_d, t_h, (int)(tt.ndim ? tt.shape[0] : 1),
                              &(const wan_context *){&ctx}, 1, self, cross, j->step, &out_d,
                              j->profile ? &prof : NULL};
        st = wan_dit_forward(m, &a, &S);
    }
    tensor out_t;
    if (st >= 0) {
        out_h = malloc(tensor_nbytes(&out_d));
        out_t = tensor_make(out_h, DT_F32, DEV_CPU, 4, os);
        st = out_h ? be->ops->copy(be, &out_d, &out_t) : err_set(REEL_E_NOMEM, "output");
    }
    if (st >= 0)
        st = be->ops->sync(be);
    if (st >= 0) {
        st_named o = {"velocity", &out_t};
        const char *meta[] = {"producer", "reel dit", "backend", be->ops->name, "attention", j->attn, NULL};
        st = st_write_file(j->out, &o, 1, meta, j->overwrite);
    }
    if (st >= 0 && j->profile)
        fprintf(stderr, "forward %.1f ms: gemm %.1f, self-attention %.1f, cross-attention %.1f, "
                "other %.1f\n", prof.total_ms, prof.gemm_ms, prof.self_attn_ms, prof.cross_attn_ms,
                prof.other_ms);
    attn_instance_free(self);
    attn_instance_free(cross);
    if (m)
        wan_context_free(m, &ctx);
    arena_release(&S);
    wan_dit_free(m);
    weights_close(in);
    backend_free(be);
    free(lat_h), free(t_h), free(c_h), free(out_h);
    return st;
}

int cmd_dit(int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"input", required_argument, 0, 'i'},
        {"output", required_argument, 0, 'o'}, {"backend", required_argument, 0, 'b'},
        {"attn", required_argument, 0, 'a'},  {"attn-plugin", required_argument, 0, 'p'},
        {"step", required_argument, 0, 's'},  {"steps", required_argument, 0, 'n'},
        {"overwrite", no_argument, 0, 'w'},   {"profile", no_argument, 0, 'P'},
        {"help", no_argument, 0, 'h'},        {0, 0, 0, 0}};
    dit_job j = {NULL, NULL, NULL, NULL, "dense", NULL, 0, 1, 0, 0};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:i:o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': j.model = optarg; break;
        case 'i': j.in = optarg; break;
        case 'o': j.out = optarg; break;
        case 'b': j.backend_name = optarg; break;
        case 'a': j.attn = optarg; break;
        case 'p': j.plugin = optarg; break;
        case 's': j.step = atoi(optarg); break;
        case 'n': j.steps = atoi(optarg); break;
        case 'w': j.overwrite = 1; break;
        case 'P': j.profile = 1; break;
        case 'h': usage(stdout); return 0;
        default: return cli_usage_error("dit", "unknown option");
        }
    }
    if (optind < argc)
        return cli_usage_error("dit", "unexpected argument '%s'", argv[optind]);
    if (!j.model || !j.in || !j.out)
        return cli_usage_error("dit", "--model, -i and -o are required");
    if (j.steps < 1 || j.step < 0 || j.step >= j.steps)
        return cli_usage_error("dit", "--step must be in [0, --steps)");
    int st = run(&j);
    return st < 0 ? cli_fail("dit", st) : 0;
}
