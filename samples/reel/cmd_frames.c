/* reel frames-demo: writes a moving test pattern through the frame sinks, so a user can check
 * what this build's video, PNG and y4m output produce before spending minutes on a generation. */
#include "cli.h"

#include "dit/error.h"
#include "vae_io/frame_sink.h"
#include "vae_io/frames.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char usage_text[] =
    "usage: reel frames-demo -o PATH [--frames N] [--size WxH] [--fps N[/D]] [--crf N]\n"
    "                        [--prompt TEXT] [--overwrite]\n"
    "  -o PATH        clip.mp4 (H.264) | clip.mkv (FFV1, lossless) | clip.mov (ProRes 4444)\n"
    "                 | clip.y4m | - (y4m on standard output: reel frames-demo -o - | mpv -)\n"
    "                 | folder/ | frame_%05d.png | still.png\n"
    "  --frames N     frames to write (default 33)\n"
    "  --size WxH     frame size (default 832x480, Wan's 480p)\n"
    "  --fps N[/D]    frame rate (default 16, Wan's)\n"
    "  --crf N        H.264 quality for .mp4, 0-51, lower is better (default 18)\n"
    "  --prompt TEXT  stored in the metadata, as a generation's prompt would be\n"
    "  --overwrite    replace an existing output\n";

typedef struct demo_opts {
    const char *out, *prompt;
    int frames, overwrite;
    sink_params p;
} demo_opts;

static int parse_int(const char *s, int lo, int hi, int *v)
{
    char *end;
    long x = strtol(s, &end, 10);
    if (end == s || x < lo || x > hi)
        return 0;
    *v = (int)x;
    return *end == 0 ? 1 : 2; /* 2: a number followed by more text */
}

static int parse_args(int argc, char **argv, demo_opts *o)
{
    sink_params_default(&o->p);
    o->p.width = 832, o->p.height = 480;
    o->frames = 33;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage_text, stdout);
            exit(0);
        } else if (!strcmp(a, "--overwrite")) {
            o->p.overwrite = 1;
            continue;
        }
        static const char *const valued[] = {"-o", "--output", "--prompt", "--frames", "--crf",
                                             "--size", "--fps", NULL};
        int known = 0;
        for (int k = 0; valued[k]; k++)
            known |= !strcmp(a, valued[k]);
        if (!known)
            return cli_usage_error(argv[0], "unknown option %s", a);
        if (!v)
            return cli_usage_error(argv[0], "%s needs a value", a);
        i++;
        if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            o->out = v;
        } else if (!strcmp(a, "--prompt")) {
            o->prompt = v;
        } else if (!strcmp(a, "--frames")) {
            if (parse_int(v, 1, 100000, &o->frames) != 1)
                return cli_usage_error(argv[0], "--frames %s: a count from 1 to 100000", v);
        } else if (!strcmp(a, "--crf")) {
            if (parse_int(v, 0, 51, &o->p.crf) != 1)
                return cli_usage_error(argv[0], "--crf %s: 0 to 51", v);
        } else if (!strcmp(a, "--size")) {
            const char *x = strchr(v, 'x');
            if (!x || parse_int(v, 1, 16384, &o->p.width) != 2 ||
                parse_int(x + 1, 1, 16384, &o->p.height) != 1)
                return cli_usage_error(argv[0], "--size %s: WIDTHxHEIGHT, e.g. 832x480", v);
        } else { /* --fps */
            const char *slash = strchr(v, '/');
            o->p.fps_den = 1;
            int r = parse_int(v, 1, 1000000, &o->p.fps_num);
            if (!(r == 1 && !slash) &&
                !(r == 2 && slash && parse_int(slash + 1, 1, 1000000, &o->p.fps_den) == 1))
                return cli_usage_error(argv[0], "--fps %s: N or N/D, e.g. 16 or 30000/1001", v);
        }
    }
    if (!o->out)
        return cli_usage_error(argv[0], "-o PATH is required");
    return 0;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

int cmd_frames_demo(int argc, char **argv)
{
    demo_opts o = {0};
    int r = parse_args(argc, argv, &o);
    if (r)
        return r;
    const char *md[] = {"prompt", o.prompt ? o.prompt : "reel frames-demo test pattern",
                        "generator", "reel frames-demo", NULL};
    o.p.metadata = md;
    double t0 = now();
    frame_sink *s = NULL;
    int st = sink_open(o.out, &o.p, &s);
    if (st < 0)
        return cli_fail(argv[0], st);
    int w = o.p.width, h = o.p.height;
    uint8_t *rgb = malloc((size_t)w * h * 3);
    if (!rgb) {
        sink_abort(s);
        return cli_fail(argv[0], err_set(REEL_E_NOMEM, "a %dx%d frame", w, h));
    }
    char desc[192];
    snprintf(desc, sizeof desc, "%s", sink_describe(s));
    for (int f = 0; f < o.frames && st == REEL_OK; f++) {
        frames_test_pattern(rgb, w, h, (int64_t)w * 3, f);
        st = sink_write_rgb(s, rgb, (int64_t)w * 3);
    }
    free(rgb);
    if (st < 0) {
        sink_abort(s);
        return cli_fail(argv[0], st);
    }
    if ((st = sink_close(s)) < 0)
        return cli_fail(argv[0], st);
    /* stderr: standard output may be carrying the video */
    fprintf(stderr, "reel frames-demo: %d frames %dx%d at %d/%d fps to %s: %s, %.2f s\n", o.frames,
            w, h, o.p.fps_num, o.p.fps_den, o.out, desc, now() - t0);
    return 0;
}
