/* reel vae decode|encode: the Wan VAE from a safetensors file to a safetensors file, so any
 * implementation can be compared with reel on the same latents or video. */
#include "cli.h"

#include "dit/error.h"
#include "dit/st_write.h"
#include "dit/weights.h"
#include "vae_io/vae_wan.h"
#include "dit/clock.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: reel vae decode --model VAE -i LATENTS.safetensors -o VIDEO.safetensors [options]\n"
            "       reel vae encode --model VAE -i VIDEO.safetensors -o LATENTS.safetensors [options]\n"
            "\n"
            "Runs the Wan2.1 video VAE on one tensor and writes the result.\n"
            "\n"
            "Tensors (input in any float dtype, output f32; a leading batch of 1 is accepted):\n"
            "  latents  [16, T, h, w]  latents in the DiT's normalised space ((mu - mean) / std)\n"
            "  video    [3, F, H, W]   RGB in [-1, 1]; F = 1 + 4 (T - 1), H = 8 h, W = 8 w\n"
            "decode reads 'latents' and writes 'video'; encode reads 'video' (F = 1 + 4k frames,\n"
            "H and W multiples of 8) and writes 'latents' (the posterior mean).\n"
            "\n"
            "Options:\n"
            "  --model PATH        Wan2.1_VAE.pth, a diffusers vae/ folder or its .safetensors,\n"
            "                      or ComfyUI's wan_2.1_vae.safetensors\n"
            "  --backend cpu|cuda  default: cuda when available, else cpu\n"
            "  --tile HxW          decode in tiles of H x W latents blended over the overlap, so\n"
            "                      device memory depends on the tile, not the frame (720p and up)\n"
            "  --overlap N         tile overlap in latents (default 4)\n"
            "  --overwrite         replace the output if it exists\n");
}

/* Tensor `name` of the input as a contiguous f32 host [c, t, h, w] (batch of 1 dropped). */
static int read_input(const weights *ws, const char *name, float **data, tensor *t)
{
    tensor s;
    TRY(cli_read_f32(ws, "vae", name, data, &s));
    int batch = s.ndim == 5;
    if (s.ndim != 4 && !(batch && s.shape[0] == 1)) {
        char b[96];
        return err_set(REEL_E_INVALID, "%s: '%s' is %s, expected a float [C, T, H, W] tensor",
                       weights_path(ws), name, tensor_shape_str(&s, b, sizeof b));
    }
    *t = tensor_make(*data, DT_F32, DEV_CPU, 4, s.shape + batch);
    return REEL_OK;
}

typedef struct vae_job {
    int encode;
    const char *model, *in, *out, *backend_name;
    vae_decode_opts tiles;
    int overwrite;
} vae_job;

static int run(const vae_job *j)
{
    backend *be = NULL;
    weights *in = NULL;
    wan_vae *v = NULL;
    float *src = NULL, *dst = NULL;
    tensor x, y;
    int st = weights_open(j->in, &in);
    if (st >= 0)
        st = read_input(in, j->encode ? "video" : "latents", &src, &x);
    if (st >= 0) {
        const char *name = j->backend_name;
        if (!name)
            name = backend_cuda_create(0, &be) >= 0 ? NULL : "cpu";
        if (name)
            st = backend_create_by_name(name, &be);
    }
    double t0 = clock_ms();
    if (st >= 0)
        st = wan_vae_load(j->model, be, &v);
    double load_ms = clock_ms() - t0;
    if (st >= 0) {
        /* output shape: each latent frame after the first is 4 video frames, each latent 8x8 */
        int64_t shape[4];
        if (j->encode) {
            shape[0] = 16, shape[1] = 1 + (x.shape[1] - 1) / 4, shape[2] = x.shape[2] / 8;
            shape[3] = x.shape[3] / 8;
        } else {
            shape[0] = 3, shape[1] = 1 + 4 * (x.shape[1] - 1), shape[2] = 8 * x.shape[2];
            shape[3] = 8 * x.shape[3];
        }
        y = tensor_make(NULL, DT_F32, DEV_CPU, 4, shape);
        if (!(dst = malloc(tensor_nbytes(&y) ? tensor_nbytes(&y) : 1)))
            st = err_set(REEL_E_NOMEM, "output of %zu bytes", tensor_nbytes(&y));
        y.data = dst;
    }
    t0 = clock_ms();
    if (st >= 0)
        st = j->encode ? wan_vae_encode(v, &x, &y) : wan_vae_decode(v, &x, &j->tiles, NULL, NULL, &y);
    double run_ms = clock_ms() - t0;
    if (st >= 0) {
        st_named o = {j->encode ? "latents" : "video", &y};
        const char *meta[] = {"producer", j->encode ? "reel vae encode" : "reel vae decode",
                              "backend", be->ops->name, NULL};
        st = st_write_file(j->out, &o, 1, meta, j->overwrite);
    }
    if (st >= 0) {
        size_t peak, wbytes;
        char b[96];
        wan_vae_memory(v, &peak, &wbytes);
        fprintf(stderr, "%s\n%s %s on %s: %.1f ms (load %.0f ms)", wan_vae_describe(v),
                j->encode ? "encoded" : "decoded", tensor_shape_str(&x, b, sizeof b), be->ops->name,
                run_ms, load_ms);
        if (wbytes)
            fprintf(stderr, ", device memory: weights %.2f GiB, peak activations %.2f GiB",
                    wbytes / 1073741824.0, peak / 1073741824.0);
        fprintf(stderr, "\n");
    }
    wan_vae_free(v);
    weights_close(in);
    backend_free(be);
    free(src);
    free(dst);
    return st;
}

int cmd_vae(int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},   {"input", required_argument, 0, 'i'},
        {"output", required_argument, 0, 'o'},  {"backend", required_argument, 0, 'b'},
        {"tile", required_argument, 0, 't'},    {"overlap", required_argument, 0, 'v'},
        {"overwrite", no_argument, 0, 'w'},     {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    vae_job j;
    memset(&j, 0, sizeof j);
    if (!strcmp(argv[1], "encode"))
        j.encode = 1;
    else if (strcmp(argv[1], "decode"))
        return cli_usage_error("vae", "expected decode or encode, got '%s'", argv[1]);
    int c, overlap = 4;
    optind = 1;
    while ((c = getopt_long(argc - 1, argv + 1, "m:i:o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': j.model = optarg; break;
        case 'i': j.in = optarg; break;
        case 'o': j.out = optarg; break;
        case 'b': j.backend_name = optarg; break;
        case 't':
            if (sscanf(optarg, "%dx%d", &j.tiles.tile_h, &j.tiles.tile_w) != 2 ||
                j.tiles.tile_h < 1 || j.tiles.tile_w < 1)
                return cli_usage_error("vae", "--tile expects HxW in latents, e.g. 60x104");
            break;
        case 'v': overlap = atoi(optarg); break;
        case 'w': j.overwrite = 1; break;
        case 'h': usage(stdout); return 0;
        default: return cli_usage_error("vae", "unknown option");
        }
    }
    if (optind < argc - 1)
        return cli_usage_error("vae", "unexpected argument '%s'", argv[optind + 1]);
    if (!j.model || !j.in || !j.out)
        return cli_usage_error("vae", "--model, -i and -o are required");
    if (j.tiles.tile_h) {
        if (overlap < 0 || overlap >= j.tiles.tile_h || overlap >= j.tiles.tile_w)
            return cli_usage_error("vae", "--overlap must be at least 0 and smaller than the tile");
        j.tiles.tile_overlap = overlap;
    }
    if (j.encode && j.tiles.tile_h)
        return cli_usage_error("vae", "--tile applies to decode");
    int st = run(&j);
    return st < 0 ? cli_fail("vae", st) : 0;
}
