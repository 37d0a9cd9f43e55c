/* reel bench vae: one Wan VAE decode at real shapes (default 21 latent frames of 60x104 ->
 * 81 frames of 480x832) with synthetic weights at the published widths (no checkpoint needed),
 * timed after a warm-up that also lets cuDNN pick its algorithms. Frames are streamed to the
 * host chunk by chunk as in real use; the device memory peak is the pool's high-water mark. */
#include "cli.h"

#include "dit/error.h"
#include "vae_io/vae_synth.h"
#include "vae_io/vae_wan.h"
#include "dit/clock.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct bench_vae_job {
    const char *backend_name, *dir;
    int frames, width, height, dim, iters, json, keep;
    vae_decode_opts tiles;
} bench_vae_job;

/* Counts frames so a short decode is noticed. */
static int count_frames(void *user, const float *frames, int n)
{
    *(int *)user += n;
    return 0;
}

static int run(const bench_vae_job *j)
{
    if ((j->frames - 1) % 4 || j->width % 8 || j->height % 8 || j->frames < 1 || j->iters < 1)
        return err_set(REEL_E_INVALID, "bench vae: frames must be 4k+1, the size a multiple of 8");
    const int T = 1 + (j->frames - 1) / 4, h = j->height / 8, w = j->width / 8;
    char path[1024];
    snprintf(path, sizeof path, "%s/reel-bench-vae-%d.safetensors", j->dir, j->dim);
    vae_synth_opts so = vae_synth_default();
    so.dim = j->dim;
    double t0 = clock_ms();
    TRY(vae_synth_write(path, &so));
    double write_ms = clock_ms() - t0;
    backend *be = NULL;
    wan_vae *v = NULL;
    int st = backend_create_by_name(j->backend_name, &be);
    t0 = clock_ms();
    if (st >= 0)
        st = wan_vae_load(path, be, &v);
    double load_ms = clock_ms() - t0;
    if (!j->keep)
        remove(path);
    size_t n = (size_t)16 * T * h * w;
    float *lat = malloc(n * sizeof(float));
    double *ms = calloc((size_t)j->iters, sizeof(double));
    if (st >= 0 && (!lat || !ms))
        st = err_set(REEL_E_NOMEM, "bench vae: latents");
    uint64_t r = 88172645463325252ull;
    for (size_t i = 0; st >= 0 && i < n; i++) { /* uniform, unit variance */
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        lat[i] = (float)((double)(r >> 11) / 9007199254740992.0 * 3.4641016 - 1.7320508);
    }
    int64_t ls[4] = {16, T, h, w};
    tensor lt = tensor_make(lat, DT_F32, DEV_CPU, 4, ls);
    double warm_ms = 0;
    size_t peak = 0, wbytes = 0;
    for (int i = -1; st >= 0 && i < j->iters; i++) { /* one warm-up */
        int got = 0;
        t0 = clock_ms();
        st = wan_vae_decode(v, &lt, &j->tiles, count_frames, &got, NULL);
        double dt = clock_ms() - t0;
        if (st >= 0 && got != j->frames)
            st = err_set(REEL_E_INVALID, "bench vae: %d frames decoded, expected %d", got, j->frames);
        if (i < 0)
            warm_ms = dt;
        else
            ms[i] = dt;
    }
    if (st >= 0) {
        wan_vae_memory(v, &peak, &wbytes);
        qsort(ms, (size_t)j->iters, sizeof *ms, clock_cmp_double);
        double med = ms[j->iters / 2];
        double tflops = 2 * vae_synth_decode_macs(j->dim, 16, T, h, w) / med / 1e9;
        if (j->json)
            printf("{\"bench\":\"vae\",\"backend\":\"%s\",\"latents\":[16,%d,%d,%d],"
                   "\"video\":[3,%d,%d,%d],\"dim\":%d,\"tile\":[%d,%d,%d],\"decode_ms\":%.1f,"
                   "\"min_ms\":%.1f,\"warmup_ms\":%.0f,\"tflops\":%.1f,\"peak_bytes\":%zu,"
                   "\"weight_bytes\":%zu}\n",
                   be->ops->name, T, h, w, j->frames, j->height, j->width, j->dim, j->tiles.tile_h,
                   j->tiles.tile_w, j->tiles.tile_overlap, med, ms[0], warm_ms, tflops, peak, wbytes);
        else
            printf("%s\nbackend %s: decode [16, %d, %d, %d] -> [3, %d, %d, %d]: %.1f ms (median of "
                   "%d, min %.1f; warm-up %.0f), %.0f TFLOP/s\ndevice memory: peak activations and "
                   "workspaces %.2f GiB + weights %.2f GiB; checkpoint written in %.0f ms, loaded "
                   "in %.0f ms\n",
                   wan_vae_describe(v), be->ops->name, T, h, w, j->frames, j->height, j->width, med,
                   j->iters, ms[0], warm_ms, tflops, peak / 1073741824.0, wbytes / 1073741824.0,
                   write_ms, load_ms);
    }
    free(lat);
    free(ms);
    wan_vae_free(v);
    backend_free(be);
    return st;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: reel bench vae [options]\n\n"
               "Times one Wan VAE decode with synthetic weights at the published widths.\n\n"
               "  --backend NAME   cuda (default) or cpu\n"
               "  --frames N       video frames, 4k+1 (default 81)\n"
               "  --width W        (default 832)\n"
               "  --height H       (default 480)\n"
               "  --dim N          base width (default 96, as Wan2.1)\n"
               "  --tile HxW       tiled decoding in tiles of H x W latents\n"
               "  --overlap N      tile overlap in latents (default 4)\n"
               "  --iters N        timed decodes after one warm-up (default 3)\n"
               "  --dir DIR        where the synthetic checkpoint is written (default /tmp)\n"
               "  --keep           keep that checkpoint\n"
               "  --json           one JSON line instead of text\n"
               "REEL_VAE_CONV=igemm|cudnn picks the convolution engine on CUDA.\n");
}

int bench_vae(int argc, char **argv)
{
    static const struct option opts[] = {
        {"backend", required_argument, 0, 'b'}, {"frames", required_argument, 0, 'f'},
        {"width", required_argument, 0, 'W'},   {"height", required_argument, 0, 'H'},
        {"dim", required_argument, 0, 'd'},     {"tile", required_argument, 0, 't'},
        {"overlap", required_argument, 0, 'v'}, {"iters", required_argument, 0, 'n'},
        {"dir", required_argument, 0, 'D'},     {"keep", no_argument, 0, 'k'},
        {"json", no_argument, 0, 'j'},          {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    bench_vae_job j = {"cuda", "/tmp", 81, 832, 480, 96, 3, 0, 0, {0, 0, 0}};
    int c, overlap = 4;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'b': j.backend_name = optarg; break;
        case 'f': j.frames = atoi(optarg); break;
        case 'W': j.width = atoi(optarg); break;
        case 'H': j.height = atoi(optarg); break;
        case 'd': j.dim = atoi(optarg); break;
        case 't':
            if (sscanf(optarg, "%dx%d", &j.tiles.tile_h, &j.tiles.tile_w) != 2)
                return cli_usage_error("bench vae", "--tile expects HxW in latents");
            break;
        case 'v': overlap = atoi(optarg); break;
        case 'n': j.iters = atoi(optarg); break;
        case 'D': j.dir = optarg; break;
        case 'k': j.keep = 1; break;
        case 'j': j.json = 1; break;
        case 'h': usage(stdout); return 0;
        default: return cli_usage_error("bench vae", "unknown option");
        }
    }
    if (optind < argc)
        return cli_usage_error("bench vae", "unexpected argument '%s'", argv[optind]);
    if (j.tiles.tile_h)
        j.tiles.tile_overlap = overlap;
    int st = run(&j);
    return st < 0 ? cli_fail("bench vae", st) : 0;
}
