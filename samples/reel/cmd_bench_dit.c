/* reel bench dit: one Wan DiT forward at real shapes with synthetic weights (no checkpoint
 * needed), timed after a warm-up, with the time split into GEMMs, attention and the rest.
 * --batch N times one forward over N text contexts (classifier-free guidance uses 2), reported
 * per forward and per prediction, so that it can be set against N single forwards.
 * --prompt-tokens P: the text context has P rows, zero-padded to text_len as a real prompt is
 * (cross-attention then runs over the prompt's rows and one padding row); the default, text_len,
 * has no padding: the costliest cross-attention. */
#include "cli.h"

#include "attention/attn.h"
#include "dit/error.h"
#include "dit/wan_dit.h"
#include "dit/clock.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct bench_dit_job {
    const char *preset, *attn, *backend_name;
    int frames, width, height, iters, batch, json, prompt_tokens; /* 0: text_len */
} bench_dit_job;

static int run(const bench_dit_job *j)
{
    wan_config cfg;
    TRY(wan_config_preset(j->preset, &cfg));
    if ((j->frames - 1) % 4 != 0 || j->width % 16 || j->height % 16)
        return err_set(REEL_E_INVALID, "frames must be 4k+1 and the size a multiple of 16");
    const int F = (j->frames - 1) / 4 + 1, H = j->height / 8, W = j->width / 8;
    const int P = j->prompt_tokens ? j->prompt_tokens : cfg.text_len;
    if (P < 1 || P > cfg.text_len)
        return err_set(REEL_E_INVALID, "--prompt-tokens %d: expected 1..%d", P, cfg.text_len);
    backend *be;
    TRY(backend_create_by_name(j->backend_name, &be));
    wan_dit *m = NULL;
    arena S = {0};
    const int N = j->batch;
    wan_context *ctx = calloc((size_t)N, sizeof *ctx);
    const wan_context **ctxs = calloc((size_t)N, sizeof *ctxs);
    attn_instance *self = NULL, *cross = NULL;
    float *host = NULL;
    double t_load = clock_ms();
    int st = ctx && ctxs ? wan_dit_create_random(&cfg, be, 1234, &m)
                         : err_set(REEL_E_NOMEM, "%d text contexts", N);
    t_load = clock_ms() - t_load;
    int64_t ls[4] = {cfg.in_dim, F, H, W}, os[5] = {N, cfg.out_dim, F, H, W};
    tensor lat, out;
    size_t n_lat = (size_t)cfg.in_dim * F * H * W, n_ctx = (size_t)cfg.text_len * cfg.text_dim;
    if (st >= 0) {
        host = malloc(sizeof(float) * (n_lat > n_ctx ? n_lat : n_ctx));
        if (!host)
            st = err_set(REEL_E_NOMEM, "bench inputs");
    }
    uint64_t r = 88172645463325252ull;
    for (size_t i = 0; st >= 0 && i < (n_lat > n_ctx ? n_lat : n_ctx); i++) {
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        host[i] = (float)((double)(r >> 11) / 9007199254740992.0 * 2 - 1);
    }
    if (st >= 0)
        st = arena_init(&S, be, wan_dit_scratch_bytes(m, F, H, W, N) + ((size_t)64 << 20),
                        "DiT activations");
    if (st >= 0)
        st = arena_tensor(&S, DT_F32, 4, ls, &lat);
    if (st >= 0)
        st = arena_tensor(&S, DT_F32, 5, os, &out);
    tensor lh = tensor_make(host, DT_F32, DEV_CPU, 4, ls);
    if (st >= 0)
        st = be->ops->copy(be, &lh, &lat);
    /* each prediction has its own K/V in memory, as under guidance; equal values time the same */
    tensor ch = tensor_2d(host, DT_F32, DEV_CPU, P, cfg.text_dim);
    for (int i = 0; st >= 0 && i < N; i++) {
        st = wan_context_prepare(m, &ch, &S, &ctx[i]);
        ctxs[i] = &ctx[i];
    }
    reel_attn_config ac = m ? wan_dit_attn_config(m, F, H, W, 50) : (reel_attn_config){0};
    if (st >= 0)
        st = attn_instance_create(j->attn, &ac, &self);
    if (st >= 0)
        st = attn_instance_create("dense", &ac, &cross);
    float t = 999.0f;
    double *ms = calloc((size_t)j->iters, sizeof *ms);
    wan_profile prof = {0};
    for (int it = -1; st >= 0 && it <= j->iters; it++) {
        /* it = -1 warms up, 0..iters-1 are timed, iters profiles the phases */
        wan_forward_args a = {&lat, &t, 1, ctxs, N, self, cross, 20, &out,
                              it == j->iters ? &prof : NULL};
        st = be->ops->sync(be);
        double t0 = clock_ms();
        if (st >= 0)
            st = wan_dit_forward(m, &a, &S);
        if (st >= 0)
            st = be->ops->sync(be);
        if (it >= 0 && it < j->iters)
            ms[it] = clock_ms() - t0;
    }
    if (st >= 0) {
        qsort(ms, (size_t)j->iters, sizeof *ms, clock_cmp_double);
        double med = ms[j->iters / 2];
        int64_t L = (int64_t)F * (H / 2) * (W / 2);
        double D = cfg.dim, FF = cfg.ffn_dim;
        /* N predictions: N x the GEMM rows, and N self-attentions over L tokens each */
        double gemm_tf = 2.0 * N * L * (6 * D * D + 2 * D * FF) * cfg.layers / 1e12;
        double attn_tf = 4.0 * N * (double)L * L * D * cfg.layers / 1e12;
        char desc[256];
        if (j->json) {
            printf("{\"bench\":\"dit\",\"model\":\"%s\",\"frames\":%d,\"width\":%d,\"height\":%d,"
                   "\"tokens\":%lld,\"prompt_tokens\":%d,\"attn\":\"%s\",\"batch\":%d,\"forward_ms\":%.2f,"
                   "\"per_prediction_ms\":%.2f,\"min_ms\":%.2f,"
                   "\"gemm_ms\":%.2f,\"self_attn_ms\":%.2f,\"cross_attn_ms\":%.2f,\"other_ms\":%.2f,"
                   "\"profiled_total_ms\":%.2f,\"weights_gib\":%.2f,\"activations_peak_gib\":%.2f,"
                   "\"synthetic_weights_s\":%.1f}\n",
                   j->preset, j->frames, j->width, j->height, (long long)L, P, j->attn, N, med,
                   med / N, ms[0],
                   prof.gemm_ms, prof.self_attn_ms, prof.cross_attn_ms, prof.other_ms,
                   prof.total_ms, m->weight_bytes / 1073741824.0, S.peak / 1073741824.0,
                   t_load / 1e3);
        } else {
            printf("Wan %s (%s), %d frames %dx%d = %lld tokens, attention '%s', backend %s, "
                   "%d context%s of %d prompt tokens per forward\n",
                   j->preset, wan_config_describe(&cfg, desc, sizeof desc), j->frames, j->width,
                   j->height, (long long)L, j->attn, be->ops->name, N, N == 1 ? "" : "s", P);
            printf("| what | ms | share | TFLOP/s |\n|---|---|---|---|\n");
            printf("| forward (median of %d) | %.1f | | %.0f |\n", j->iters, med,
                   (gemm_tf + attn_tf) / (med / 1e3));
            printf("| per prediction (forward / %d) | %.1f | | |\n", N, med / N);
            double tot = prof.total_ms > 0 ? prof.total_ms : 1;
            printf("| GEMMs (profiled run) | %.1f | %.0f%% | %.0f |\n", prof.gemm_ms,
                   100 * prof.gemm_ms / tot, gemm_tf / (prof.gemm_ms / 1e3));
            printf("| self-attention | %.1f | %.0f%% | %.0f |\n", prof.self_attn_ms,
                   100 * prof.self_attn_ms / tot, attn_tf / (prof.self_attn_ms / 1e3));
            printf("| cross-attention | %.1f | %.0f%% | |\n", prof.cross_attn_ms,
                   100 * prof.cross_attn_ms / tot);
            printf("| norms, RoPE, modulation, residuals | %.1f | %.0f%% | |\n", prof.other_ms,
                   100 * prof.other_ms / tot);
            printf("weights %.2f GiB, activations peak %.2f GiB, synthetic weights built in %.1f s\n",
                   m->weight_bytes / 1073741824.0, S.peak / 1073741824.0, t_load / 1e3);
        }
    }
    free(ms);
    attn_instance_free(self);
    attn_instance_free(cross);
    for (int i = 0; m && ctx && i < N; i++)
        wan_context_free(m, &ctx[i]);
    free(ctx);
    free(ctxs);
    arena_release(&S);
    wan_dit_free(m);
    free(host);
    backend_free(be);
    return st;
}

int bench_dit(int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"frames", required_argument, 0, 'f'},
        {"size", required_argument, 0, 's'},  {"attn", required_argument, 0, 'a'},
        {"iters", required_argument, 0, 'n'}, {"backend", required_argument, 0, 'b'},
        {"batch", required_argument, 0, 'B'}, {"json", no_argument, 0, 'j'},
        {"prompt-tokens", required_argument, 0, 'P'},
        {"help", no_argument, 0, 'h'},        {0, 0, 0, 0}};
    bench_dit_job j = {"1.3B", "dense", "cuda", 81, 832, 480, 3, 1, 0, 0};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': j.preset = optarg; break;
        case 'f': j.frames = atoi(optarg); break;
        case 's':
            if (sscanf(optarg, "%dx%d", &j.width, &j.height) != 2)
                return cli_usage_error("bench dit", "--size takes WIDTHxHEIGHT");
            break;
        case 'a': j.attn = optarg; break;
        case 'n': j.iters = atoi(optarg); break;
        case 'B': j.batch = atoi(optarg); break;
        case 'b': j.backend_name = optarg; break;
        case 'j': j.json = 1; break;
        case 'P':
            j.prompt_tokens = atoi(optarg);
            if (j.prompt_tokens < 1)
                return cli_usage_error("bench dit", "--prompt-tokens takes a count of 1 or more");
            break;
        case 'h':
            printf("usage: reel bench dit [--model 1.3B|14B] [--frames 81] [--size 832x480]\n"
                   "                      [--attn NAME[:opts]] [--iters 3] [--batch 1]\n"
                   "                      [--prompt-tokens 512] [--backend cuda] [--json]\n"
                   "Times one DiT forward with synthetic weights at real shapes: the median of\n"
                   "--iters runs after a warm-up, then one profiled run split into GEMMs,\n"
                   "attention and the rest.\n"
                   "--batch N: one forward predicts for N text contexts on the same latent (as\n"
                   "classifier-free guidance does with 2); prints the time per forward and per\n"
                   "prediction (forward / N).\n"
                   "--prompt-tokens P: a P-token prompt, zero-padded to the model's text length\n"
                   "(512) as real prompts are; cross-attention runs over its rows and one row for\n"
                   "the padding. Default 512: no padding, the costliest cross-attention.\n");
            return 0;
        default: return cli_usage_error("bench dit", "unknown option");
        }
    }
    if (j.iters < 1)
        return cli_usage_error("bench dit", "--iters must be at least 1");
    if (j.batch < 1)
        return cli_usage_error("bench dit", "--batch must be at least 1");
    int st = run(&j);
    return st < 0 ? cli_fail("bench dit", st) : 0;
}
