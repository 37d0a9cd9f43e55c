/* reel bench generate: the whole text-to-video command on synthetic checkpoints written to disk
 * first (a Wan DiT of the chosen preset in the original layout, umT5-XXL in the Hugging Face
 * layout, a tokenizer.json, the Wan VAE), run through the public API exactly as `reel generate`
 * runs it, frames converted to 8-bit and dropped. Times each stage from the progress callback:
 * the text encoder's load and both prompts, the DiT load, the denoising loop, the VAE. */
#include "cli.h"

#include "dit/error.h"
#include "dit/t5_synth.h"
#include "dit/tok_synth.h"
#include "dit/wan_synth.h"
#include "plugin/reel.h"
#include "vae_io/vae_synth.h"
#include "dit/clock.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { ST_ENCODE, ST_LOAD, ST_DENOISE, ST_DECODE, ST_COUNT };
static const char *const stage_names[ST_COUNT] = {"encode", "load", "denoise", "decode"};

typedef struct bench_gen {
    const char *preset, *attn, *backend, *sampler, *dir;
    int frames, width, height, steps, t5_layers, layers, keep, json;
    float cfg;
    double start[ST_COUNT];
    int frames_seen;
} bench_gen;

static int on_progress(void *user, const char *stage, int done, int total)
{
    bench_gen *b = user;
    for (int i = 0; i < ST_COUNT; i++)
        if (!strcmp(stage, stage_names[i]) && b->start[i] == 0)
            b->start[i] = clock_s();
    return 0;
}

static int on_frame(void *user, const reel_frame *f)
{
    ((bench_gen *)user)->frames_seen++;
    return 0;
}

typedef struct parts {
    char root[1024], dit[1100], t5[1100], tok[1100], vae[1100];
} parts;

static int write_parts(bench_gen *b, parts *p, double *write_s)
{
    wan_config c;
    TRY(wan_config_preset(b->preset, &c));
    if (b->layers > 0)
        c.layers = b->layers;
    snprintf(p->root, sizeof p->root, "%s/reel-bench-generate-XXXXXX", b->dir);
    if (!mkdtemp(p->root))
        return err_set(REEL_E_IO, "%s: cannot create a folder there", b->dir);
    snprintf(p->dit, sizeof p->dit, "%s/dit", p->root);
    snprintf(p->t5, sizeof p->t5, "%s/umt5_xxl_bf16.safetensors", p->root);
    snprintf(p->tok, sizeof p->tok, "%s/tokenizer.json", p->root);
    snprintf(p->vae, sizeof p->vae, "%s/wan_2.1_vae.safetensors", p->root);
    double t0 = clock_s();
    if (mkdir(p->dit, 0755) != 0)
        return err_set(REEL_E_IO, "%s: cannot create", p->dit);
    TRY(wan_synth_write(p->dit, &c));
    TRY(t5_synth_write(p->t5, b->t5_layers, 512));
    TRY(tok_synth_write_json(p->tok));
    vae_synth_opts vo = vae_synth_default();
    TRY(vae_synth_write(p->vae, &vo));
    *write_s = clock_s() - t0;
    return REEL_OK;
}

static void remove_parts(const parts *p)
{
    char f[1200];
    snprintf(f, sizeof f, "%s/config.json", p->dit);
    remove(f);
    snprintf(f, sizeof f, "%s/diffusion_pytorch_model.safetensors", p->dit);
    remove(f);
    rmdir(p->dit);
    remove(p->t5);
    remove(p->tok);
    remove(p->vae);
    rmdir(p->root);
}

static int run(bench_gen *b)
{
    parts p;
    memset(&p, 0, sizeof p);
    double write_s = 0;
    int st = write_parts(b, &p, &write_s);
    reel_model *m = NULL;
    reel_open_params op;
    reel_open_params_default(&op);
    op.dit = p.dit, op.text_encoder = p.t5, op.tokenizer = p.tok, op.vae = p.vae;
    op.backend = b->backend;
    op.attn = b->attn;
    reel_gen_params gp;
    reel_gen_params_default(&gp);
    gp.prompt = "a red fox running through fresh snow at dawn, cinematic, detailed fur";
    gp.width = b->width, gp.height = b->height, gp.frames = b->frames, gp.steps = b->steps;
    gp.guidance = b->cfg, gp.sampler = b->sampler, gp.seed = 1;
    gp.on_progress = on_progress, gp.on_frame = on_frame, gp.user = b;
    double t0 = clock_s(), t_open = 0, t_end = 0;
    if (st >= 0)
        st = reel_open(&op, &m);
    t_open = clock_s();
    if (st >= 0)
        st = reel_generate(m, &gp);
    t_end = clock_s();
    unsigned long long peak = 0, total = 0;
    reel_memory(m, &peak, &total);
    reel_close(m);
    if (!b->keep && p.root[0])
        remove_parts(&p);
    if (st < 0)
        return st;
    if (b->frames_seen != b->frames)
        return err_set(REEL_E_INVALID, "bench generate: %d frames came back, expected %d",
                       b->frames_seen, b->frames);
    double encode = b->start[ST_LOAD] - b->start[ST_ENCODE];
    double load = b->start[ST_DENOISE] - b->start[ST_LOAD];
    double denoise = b->start[ST_DECODE] - b->start[ST_DENOISE];
    double decode = t_end - b->start[ST_DECODE];
    double all = t_end - t0;
    int passes = b->cfg != 1.0f ? 2 : 1;
    if (b->json) {
        printf("{\"bench\":\"generate\",\"model\":\"%s\",\"frames\":%d,\"width\":%d,\"height\":%d,"
               "\"steps\":%d,\"cfg\":%g,\"attn\":\"%s\",\"sampler\":\"%s\",\"total_s\":%.2f,"
               "\"open_s\":%.2f,\"encode_s\":%.2f,\"dit_load_s\":%.2f,\"denoise_s\":%.2f,"
               "\"decode_s\":%.2f,\"peak_gib\":%.2f,\"forwards_per_step\":%d,\"write_s\":%.1f}\n",
               b->preset, b->frames, b->width, b->height, b->steps, (double)b->cfg,
               b->attn ? b->attn : "dense", b->sampler, all, t_open - t0, encode, load, denoise,
               decode, peak / 1073741824.0, gp.forwards_per_step, write_s);
        return REEL_OK;
    }
    printf("reel generate, Wan %s synthetic, %d frames %dx%d, %d %s steps, guidance %g (%d DiT "
           "passes a step in %d forward%s), attention '%s', backend %s\n",
           b->preset, b->frames, b->width, b->height, b->steps, b->sampler, (double)b->cfg, passes,
           gp.forwards_per_step, gp.forwards_per_step == 1 ? "" : "s",
           b->attn ? b->attn : "dense", b->backend ? b->backend : "default");
    printf("| stage | s | per unit |\n|---|---|---|\n");
    printf("| open (tokenizer) | %.2f | |\n", t_open - t0);
    printf("| text encoder load + 2 prompts | %.2f | |\n", encode);
    printf("| DiT load | %.2f | |\n", load);
    printf("| denoise | %.2f | %.3f s/step, %.1f ms/pass |\n", denoise, denoise / b->steps,
           1e3 * denoise / b->steps / passes);
    printf("| VAE load + decode | %.2f | %.1f frames/s |\n", decode, b->frames / decode);
    printf("| whole command | %.2f | |\n", all);
    if (total)
        printf("peak GPU memory %.2f GiB of %.1f GiB\n", peak / 1073741824.0, total / 1073741824.0);
    printf("synthetic checkpoints written in %.1f s (not counted)\n", write_s);
    return REEL_OK;
}

int bench_generate(int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},   {"frames", required_argument, 0, 'f'},
        {"size", required_argument, 0, 's'},    {"steps", required_argument, 0, 'n'},
        {"cfg", required_argument, 0, 'g'},     {"attn", required_argument, 0, 'a'},
        {"sampler", required_argument, 0, 'S'}, {"backend", required_argument, 0, 'b'},
        {"dir", required_argument, 0, 'd'},     {"t5-layers", required_argument, 0, 'T'},
        {"layers", required_argument, 0, 'L'},  {"keep", no_argument, 0, 'k'},
        {"json", no_argument, 0, 'j'},          {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    bench_gen b;
    memset(&b, 0, sizeof b);
    b.preset = "1.3B", b.sampler = "unipc", b.dir = "/tmp";
    b.frames = 81, b.width = 832, b.height = 480, b.steps = 50, b.cfg = 5.0f, b.t5_layers = 24;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': b.preset = optarg; break;
        case 'f': b.frames = atoi(optarg); break;
        case 's':
            if (sscanf(optarg, "%dx%d", &b.width, &b.height) != 2)
                return cli_usage_error("bench generate", "--size takes WIDTHxHEIGHT");
            break;
        case 'n': b.steps = atoi(optarg); break;
        case 'g': b.cfg = strtof(optarg, NULL); break;
        case 'a': b.attn = optarg; break;
        case 'S': b.sampler = optarg; break;
        case 'b': b.backend = optarg; break;
        case 'd': b.dir = optarg; break;
        case 'T': b.t5_layers = atoi(optarg); break;
        case 'L': b.layers = atoi(optarg); break;
        case 'k': b.keep = 1; break;
        case 'j': b.json = 1; break;
        case 'h':
            printf("usage: reel bench generate [--model 1.3B|14B] [--frames 81] [--size 832x480]\n"
                   "         [--steps 50] [--cfg 5] [--attn NAME[:opts]] [--sampler unipc]\n"
                   "         [--backend cuda] [--dir /tmp] [--keep] [--json]\n"
                   "         [--layers N] [--t5-layers N]   (fewer blocks: quick smoke runs)\n"
                   "Writes synthetic checkpoints of every part to --dir, then times the whole\n"
                   "text-to-video run through the library as `reel generate` does, stage by\n"
                   "stage; the checkpoints are removed afterwards unless --keep.\n");
            return 0;
        default: return cli_usage_error("bench generate", "unknown option");
        }
    }
    if (b.steps < 1 || b.t5_layers < 1 || b.layers < 0)
        return cli_usage_error("bench generate", "--steps and --t5-layers must be at least 1");
    int st = run(&b);
    return st < 0 ? cli_fail("bench generate", st) : 0;
}
