/* reel generate: text to video on the command line, a thin layer over reel_open/reel_generate
 * with frames streamed into the chosen sink (mp4/mkv/mov, PNG folder, y4m on stdout). */
#include "cli.h"

#include "dit/error.h"
#include "pipelines/progress.h"
#include "pipelines/t2v.h"
#include "plugin/reel.h"
#include "vae_io/frame_sink.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void usage(FILE *f)
{
    fprintf(f,
        "usage: reel generate --model DIR --prompt TEXT -o OUTPUT [options]\n"
        "\n"
        "Renders a video from a text prompt with a Wan2.1 text-to-video model.\n"
        "\n"
        "  -o, --output PATH     clip.mp4 (H.264), clip.mkv (FFV1, lossless), clip.mov (ProRes),\n"
        "                        frames/ (PNG sequence), clip.y4m, or - (y4m on stdout)\n"
        "  --model DIR           model folder: original Wan release, diffusers or ComfyUI layout\n"
        "  --dit P, --text-encoder P, --tokenizer P, --vae P\n"
        "                        take a part from its own file or folder instead\n"
        "  --prompt TEXT         what to render\n"
        "  --negative TEXT       negative prompt (default: Wan's default negative prompt)\n"
        "  --size WxH            default 832x480 (multiples of 16)\n"
        "  --frames N            default 81 (4k+1; 16 frames per second)\n"
        "  --steps N             default 50\n"
        "  --cfg S               classifier-free guidance scale, default 5 (1 disables it)\n"
        "  --shift S             sigma shift, default 5 (Wan suggests 8-12 for 1.3B at 480p)\n"
        "  --seed N              default: random (printed, and stored in the output)\n"
        "  --sampler NAME        unipc (default), dpm++ or euler\n"
        "  --attn NAME[:k=v,..]  self-attention plugin (reel attn list), default dense\n"
        "  --attn-plugin PATH    load an external attention plugin library first\n"
        "  --backend NAME        cuda (default when present), cuda:N or cpu\n"
        "  --crf N               H.264 quality for .mp4, default 18\n"
        "  --keep-text-encoder   keep the text encoder loaded (default: drop it when memory is short)\n"
        "  --overwrite           replace OUTPUT if it exists\n"
        "  -q, --quiet           no progress output\n");
}

typedef struct gen_job {
    frame_sink *sink;
    progress_printer pp;
    int sink_status;     /* a failed write stops the run; its message is what the user needs */
    char sink_error[512];
} gen_job;

static int on_frame(void *user, const reel_frame *fr)
{
    gen_job *j = user;
    int st = sink_write_rgb(j->sink, fr->rgb, fr->stride);
    if (st < 0) {
        j->sink_status = st;
        snprintf(j->sink_error, sizeof j->sink_error, "%s", err_msg());
        return 1;
    }
    return 0;
}

static int on_progress(void *user, const char *stage, int done, int total)
{
    gen_job *j = user;
    return progress_update(&j->pp, stage, done, total);
}

int cmd_generate(int argc, char **argv)
{
    enum { O_DIT = 256, O_T5, O_TOK, O_VAE, O_NEG, O_SIZE, O_FRAMES, O_STEPS, O_CFG, O_SHIFT,
           O_SEED, O_SAMPLER, O_ATTN, O_PLUGIN, O_BACKEND, O_CRF, O_KEEP, O_OVER };
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"prompt", required_argument, 0, 'p'},
        {"output", required_argument, 0, 'o'}, {"dit", required_argument, 0, O_DIT},
        {"text-encoder", required_argument, 0, O_T5}, {"tokenizer", required_argument, 0, O_TOK},
        {"vae", required_argument, 0, O_VAE}, {"negative", required_argument, 0, O_NEG},
        {"size", required_argument, 0, O_SIZE}, {"frames", required_argument, 0, O_FRAMES},
        {"steps", required_argument, 0, O_STEPS}, {"cfg", required_argument, 0, O_CFG},
        {"shift", required_argument, 0, O_SHIFT}, {"seed", required_argument, 0, O_SEED},
        {"sampler", required_argument, 0, O_SAMPLER}, {"attn", required_argument, 0, O_ATTN},
        {"attn-plugin", required_argument, 0, O_PLUGIN}, {"backend", required_argument, 0, O_BACKEND},
        {"crf", required_argument, 0, O_CRF}, {"keep-text-encoder", no_argument, 0, O_KEEP},
        {"overwrite", no_argument, 0, O_OVER}, {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    reel_open_params op;
    reel_open_params_default(&op);
    reel_gen_params gp;
    reel_gen_params_default(&gp);
    const char *out = NULL;
    int crf = -1, overwrite = 0, quiet = 0, c;
    char *end;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:p:o:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'm': op.model_dir = optarg; break;
        case 'p': gp.prompt = optarg; break;
        case 'o': out = optarg; break;
        case O_DIT: op.dit = optarg; break;
        case O_T5: op.text_encoder = optarg; break;
        case O_TOK: op.tokenizer = optarg; break;
        case O_VAE: op.vae = optarg; break;
        case O_NEG: gp.negative_prompt = optarg; break;
        case O_SIZE:
            if (sscanf(optarg, "%dx%d", &gp.width, &gp.height) != 2)
                return cli_usage_error("generate", "--size takes WIDTHxHEIGHT, e.g. 832x480");
            break;
        case O_FRAMES: gp.frames = (int)strtol(optarg, &end, 10); if (*end) gp.frames = -1; break;
        case O_STEPS: gp.steps = (int)strtol(optarg, &end, 10); if (*end) gp.steps = -1; break;
        case O_CFG: gp.guidance = strtof(optarg, &end); if (*end) gp.guidance = -1; break;
        case O_SHIFT: gp.shift = strtof(optarg, &end); if (*end) gp.shift = -1; break;
        case O_SEED:
            gp.seed = strtoll(optarg, &end, 10);
            if (*end || gp.seed < 0)
                return cli_usage_error("generate", "--seed takes a non-negative integer");
            break;
        case O_SAMPLER: gp.sampler = optarg; break;
        case O_ATTN: gp.attn = op.attn = optarg; break;
        case O_PLUGIN: op.attn_plugin = optarg; break;
        case O_BACKEND: op.backend = optarg; break;
        case O_CRF: crf = atoi(optarg); break;
        case O_KEEP: op.free_text_encoder = -1; break;
        case O_OVER: overwrite = 1; break;
        case 'q': quiet = 1; break;
        case 'h': usage(stdout); return 0;
        default: return cli_usage_error("generate", "unknown option");
        }
    }
    if (optind < argc)
        return cli_usage_error("generate", "unexpected argument '%s'", argv[optind]);
    if (!gp.prompt || !out || (!op.model_dir && !(op.dit && op.text_encoder && op.tokenizer && op.vae)))
        return cli_usage_error("generate", "--prompt, -o and --model (or every part) are required");

    /* everything that can be checked before minutes of work is checked first */
    t2v_params chk;
    t2v_params_default(&chk);
    chk.prompt = gp.prompt, chk.width = gp.width, chk.height = gp.height, chk.frames = gp.frames;
    chk.steps = gp.steps, chk.guidance = gp.guidance, chk.shift = gp.shift;
    enum sched_kind sk;
    if (t2v_check_params(&chk) < 0 || sched_kind_from_name(gp.sampler, &sk) < 0)
        return cli_usage_error("generate", "%s", err_msg());
    if (gp.seed < 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        gp.seed = (long long)((ts.tv_nsec ^ ((long long)getpid() << 20)) & 0x7fffffff);
    }
    char software[32];
    snprintf(software, sizeof software, "reel %s", reel_version());
    char seed_s[32], steps_s[16], cfg_s[32], shift_s[32], size_s[32], frames_s[16];
    snprintf(seed_s, sizeof seed_s, "%lld", gp.seed);
    snprintf(steps_s, sizeof steps_s, "%d", gp.steps);
    snprintf(cfg_s, sizeof cfg_s, "%g", (double)gp.guidance);
    snprintf(shift_s, sizeof shift_s, "%g", (double)gp.shift);
    snprintf(size_s, sizeof size_s, "%dx%d", gp.width, gp.height);
    snprintf(frames_s, sizeof frames_s, "%d", gp.frames);
    const char *meta[] = {"prompt", gp.prompt,
                          "negative_prompt", gp.negative_prompt ? gp.negative_prompt : "(Wan default)",
                          "seed", seed_s, "steps", steps_s, "guidance", cfg_s, "shift", shift_s,
                          "sampler", gp.sampler, "size", size_s, "frames", frames_s,
                          "attention", gp.attn ? gp.attn : "dense",
                          "model", op.model_dir ? op.model_dir : op.dit,
                          "software", software, NULL};
    sink_params sp;
    sink_params_default(&sp);
    sp.width = gp.width, sp.height = gp.height, sp.crf = crf, sp.overwrite = overwrite;
    sp.metadata = meta;
    gen_job j = {0};
    progress_init(&j.pp, stderr, quiet);
    int st = sink_open(out, &sp, &j.sink);
    if (st < 0)
        return cli_fail("generate", st);
    reel_model *m = NULL;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    st = reel_open(&op, &m);
    if (st >= 0) {
        gp.on_frame = on_frame;
        gp.on_progress = on_progress;
        gp.user = &j;
        st = reel_generate(m, &gp);
    }
    progress_end(&j.pp);
    if (st < 0 && j.sink_status < 0)
        st = err_set(j.sink_status, "%s", j.sink_error);
    if (st < 0) {
        sink_abort(j.sink);
        reel_close(m);
        return cli_fail("generate", st);
    }
    st = sink_close(j.sink);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    unsigned long long peak, total;
    reel_memory(m, &peak, &total);
    reel_close(m);
    if (st < 0)
        return cli_fail("generate", st);
    if (!quiet) {
        fprintf(stderr, "wrote %s: %d frames %dx%d, seed %lld, %.1f s", strcmp(out, "-") ? out : "stdout",
                gp.frames, gp.width, gp.height, gp.seed,
                (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9);
        if (total)
            fprintf(stderr, ", peak GPU memory %.2f of %.1f GiB", peak / 1073741824.0, total / 1073741824.0);
        if (gp.guidance != 1.0f)
            fprintf(stderr, gp.forwards_per_step == 1 ? ", guidance passes batched (1 forward per step)"
                                                      : ", guidance passes separate (2 forwards per "
                                                        "step: memory too short to batch)");
        fprintf(stderr, "\n");
    }
    return 0;
}
