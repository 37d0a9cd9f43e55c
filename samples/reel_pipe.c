/* reel_pipe: embeds libreel through its public header only, and pipes the frames of a generated
 * video to a media tool as they are decoded, as YUV4MPEG2 (4:4:4, full-range BT.601).
 *
 *   reel_pipe MODEL_DIR "a red fox running through snow" | ffmpeg -i - fox.mp4
 *   reel_pipe MODEL_DIR "waves at dusk" | mpv -
 *
 * Optional: REEL_STEPS, REEL_FRAMES, REEL_SIZE (WxH), REEL_SEED, REEL_BACKEND from the
 * environment. Progress goes to stderr; stopping the reader (closing the pipe) cancels. */
#include <reel.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int header_done;

static unsigned char clamp_u8(double v) { return v < 0 ? 0 : v > 255 ? 255 : (unsigned char)(v + 0.5); }

static int on_frame(void *user, const reel_frame *f)
{
    unsigned char *plane = user;
    size_t n = (size_t)f->width * f->height;
    if (!header_done) {
        /* full-range BT.601, 4:4:4: no chroma subsampling, so the colours survive the pipe */
        if (printf("YUV4MPEG2 W%d H%d F16:1 Ip A1:1 C444 XCOLORRANGE=FULL\n", f->width, f->height) < 0)
            return 1;
        header_done = 1;
    }
    for (int y = 0; y < f->height; y++)
        for (int x = 0; x < f->width; x++) {
            const unsigned char *p = f->rgb + (size_t)y * f->stride + 3 * x;
            double r = p[0], g = p[1], b = p[2];
            size_t i = (size_t)y * f->width + x;
            plane[i] = clamp_u8(0.299 * r + 0.587 * g + 0.114 * b);
            plane[n + i] = clamp_u8(128 - 0.168736 * r - 0.331264 * g + 0.5 * b);
            plane[2 * n + i] = clamp_u8(128 + 0.5 * r - 0.418688 * g - 0.081312 * b);
        }
    if (fputs("FRAME\n", stdout) < 0 || fwrite(plane, 1, 3 * n, stdout) != 3 * n || fflush(stdout))
        return 1; /* the reader went away: cancel */
    return 0;
}

static int on_progress(void *user, const char *stage, int done, int total)
{
    (void)user;
    fprintf(stderr, "\r%-8s %d/%d   ", stage, done, total);
    if (done == total)
        fputc('\n', stderr);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s MODEL_DIR PROMPT | ffmpeg -i - out.mp4\n", argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN); /* a closed pipe becomes a write error, which cancels cleanly */
    reel_open_params op;
    reel_open_params_default(&op);
    op.model_dir = argv[1];
    op.backend = getenv("REEL_BACKEND");
    reel_gen_params gp;
    reel_gen_params_default(&gp);
    gp.prompt = argv[2];
    if (getenv("REEL_STEPS"))
        gp.steps = atoi(getenv("REEL_STEPS"));
    if (getenv("REEL_FRAMES"))
        gp.frames = atoi(getenv("REEL_FRAMES"));
    if (getenv("REEL_SEED"))
        gp.seed = atoll(getenv("REEL_SEED"));
    if (getenv("REEL_SIZE") && sscanf(getenv("REEL_SIZE"), "%dx%d", &gp.width, &gp.height) != 2) {
        fprintf(stderr, "REEL_SIZE must be WIDTHxHEIGHT\n");
        return 2;
    }
    unsigned char *plane = malloc((size_t)gp.width * gp.height * 3);
    if (!plane)
        return 1;
    gp.on_frame = on_frame;
    gp.on_progress = on_progress;
    gp.user = plane;
    reel_model *m;
    int st = reel_open(&op, &m);
    if (st == REEL_OK) {
        st = reel_generate(m, &gp);
        reel_close(m);
    }
    free(plane);
    if (st != REEL_OK) {
        fprintf(stderr, "reel_pipe: %s\n", reel_last_error());
        return 1;
    }
    fprintf(stderr, "reel_pipe: %d frames, seed %lld\n", gp.frames, gp.seed_used);
    return 0;
}
