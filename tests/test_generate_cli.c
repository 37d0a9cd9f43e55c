/* reel generate end to end on the CPU, and the embedding API (plugin/reel.h): tiny random-weight
 * models (DiT, umT5, SentencePiece tokenizer, VAE) written by the test in the original Wan
 * release layout and the ComfyUI layout, rendered to y4m, a PNG folder and (with FFmpeg) FFV1
 * MKV, then read back: frame counts, sizes, determinism per seed, and the refusals a user meets
 * (bad sizes and counts, unknown sampler, missing model parts, an existing output). */
#include "check.h"
#include "support/model_writer.h"
#include "support/t5_tiny.h"
#include "support/wan_tiny.h"
#include "tokenizer/spm_writer.h"

#include "dit/error.h"
#include "dit/weights.h"
#include "plugin/reel.h"
#include "vae_io/vae_synth.h"

#ifdef REEL_HAVE_FFMPEG
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#endif

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

enum { TEXT_DIM = 64, FRAMES = 5, SIZE = 32 };

static const char *bin;
static char orig[900], comfy[900];

static void mkdirs(const char *base, const char *sub)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", base, sub);
    mkdir(p, 0755);
}

/* A unigram model with a few pieces and byte fallback, so that any prompt (the Chinese default
 * negative prompt too) tokenises, every id below the tiny encoder's vocabulary. */
static int write_tokenizer(const char *path)
{
    static const spm_piece_spec pieces[] = {
        {"<pad>", 0, 3},  {"</s>", 0, 3},   {"<unk>", 0, 2},    {"\xE2\x96\x81", -2, 1},
        {"\xE2\x96\x81" "a", -1, 1}, {"fox", -1, 1}, {"snow", -1, 1}, {"\xE2\x96\x81" "red", -1, 1}};
    spm_model_spec spec = {.pieces = pieces, .n_pieces = 8, .byte_fallback = true};
    pbw w = spm_write_model(&spec);
    int ok = pbw_save(&w, path);
    free(w.p);
    return ok ? REEL_OK : err_set(REEL_E_IO, "cannot write %s", path);
}

/* The VAE as Wan publishes it (Wan2.1_VAE.pth, a torch zip) from the synthetic safetensors. */
static int safetensors_to_pth(const char *src, const char *dst)
{
    weights *ws;
    TRY(weights_open(src, &ws));
    int n = weights_count(ws);
    tw_tensor *t = calloc((size_t)n, sizeof *t);
    float **bufs = calloc((size_t)n, sizeof *bufs);
    int st = t && bufs ? REEL_OK : err_set(REEL_E_NOMEM, "VAE conversion");
    for (int i = 0; st >= 0 && i < n; i++) {
        const weight_entry *e = weights_at(ws, i);
        bufs[i] = malloc(sizeof(float) * (size_t)tensor_numel(&e->t));
        st = bufs[i] ? weights_read_f32(e, bufs[i]) : err_set(REEL_E_NOMEM, "VAE conversion");
        t[i] = (tw_tensor){e->name, DT_F32, e->t.ndim, {0}, bufs[i]};
        memcpy(t[i].shape, e->t.shape, sizeof(int64_t) * (size_t)e->t.ndim);
    }
    if (st >= 0)
        st = tw_write_pth(dst, t, n, NULL);
    for (int i = 0; bufs && i < n; i++)
        free(bufs[i]);
    free(bufs);
    free(t);
    weights_close(ws);
    return st;
}

static void write_models(void)
{
    wan_config cfg;
    wan_tiny_config(&cfg);
    CHECK(cfg.text_dim == TEXT_DIM, "tiny DiT text_dim %d", cfg.text_dim);
    wan_tiny dit;
    t5t_model t5;
    CHECK_OK(wan_tiny_make(&cfg, check_rand_u64(), &dit));
    CHECK_OK(t5t_make(&t5, TEXT_DIM, 2, 96, 2, 300));
    vae_synth_opts vo = vae_synth_default();
    vo.dim = 8;
    vo.seed = check_rand_u64();
    char p[1024], vae_st[1024];

    /* original release: DiT folder (2 shards + index + config.json), T5 and VAE .pth files,
     * tokenizer under google/umt5-xxl/ */
    snprintf(orig, sizeof orig, "%s", check_path("Wan2.1-T2V-tiny"));
    mkdir(orig, 0755);
    CHECK_OK(wan_tiny_write(&dit, LAYOUT_WAN_ORIGINAL, DT_BF16, 2, orig, NULL, 0));
    snprintf(p, sizeof p, "%s/models_t5_umt5-xxl-enc-bf16.pth", orig);
    CHECK_OK(t5t_write(&t5, T5T_WAN_PTH, DT_BF16, p, NULL));
    mkdirs(orig, "google");
    mkdirs(orig, "google/umt5-xxl");
    snprintf(p, sizeof p, "%s/google/umt5-xxl/spiece.model", orig);
    CHECK_OK(write_tokenizer(p));
    snprintf(vae_st, sizeof vae_st, "%s", check_path("vae.safetensors"));
    CHECK_OK(vae_synth_write(vae_st, &vo));
    snprintf(p, sizeof p, "%s/Wan2.1_VAE.pth", orig);
    CHECK_OK(safetensors_to_pth(vae_st, p));

    /* ComfyUI: diffusion_models/, text_encoders/ (fp16 T5, the tokenizer beside it), vae/ */
    snprintf(comfy, sizeof comfy, "%s", check_path("ComfyUI-models"));
    mkdir(comfy, 0755);
    mkdirs(comfy, "diffusion_models");
    mkdirs(comfy, "text_encoders");
    mkdirs(comfy, "vae");
    snprintf(p, sizeof p, "%s/diffusion_models", comfy);
    CHECK_OK(wan_tiny_write(&dit, LAYOUT_COMFYUI, DT_F16, 1, p, NULL, 0));
    snprintf(p, sizeof p, "%s/text_encoders/umt5_xxl_fp16.safetensors", comfy);
    CHECK_OK(t5t_write(&t5, T5T_COMFY, DT_F16, p, NULL));
    snprintf(p, sizeof p, "%s/text_encoders/spiece.model", comfy);
    CHECK_OK(write_tokenizer(p));
    snprintf(p, sizeof p, "%s/vae/wan_2.1_vae.safetensors", comfy);
    CHECK_OK(vae_synth_write(p, &vo));

    wan_tiny_free(&dit);
    t5t_free(&t5);
}

/* Runs `reel generate <args>` with stderr kept in the test folder; returns the exit status. */
static int run(const char *args, char *err, size_t err_n)
{
    char cmd[8192], errfile[1024];
    snprintf(errfile, sizeof errfile, "%s", check_path("stderr.txt"));
    snprintf(cmd, sizeof cmd, "'%s' generate --backend cpu --steps 2 --size %dx%d --frames %d %s 2>'%s'",
             bin, SIZE, SIZE, FRAMES, args, errfile);
    int rc = system(cmd);
    if (err) {
        err[0] = 0;
        FILE *f = fopen(errfile, "rb");
        if (f) {
            size_t n = fread(err, 1, err_n - 1, f);
            err[n] = 0;
            fclose(f);
        }
    }
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(len > 0 ? (size_t)len : 1);
    *n = b ? fread(b, 1, (size_t)len, f) : 0;
    fclose(f);
    return b;
}

/* Frames in a y4m stream of SIZE x SIZE 4:4:4 frames (what the y4m sink writes, so that the
 * colours survive), -1 when the stream is malformed. */
static int y4m_frames(const unsigned char *b, size_t n)
{
    char want[64];
    snprintf(want, sizeof want, "YUV4MPEG2 W%d H%d ", SIZE, SIZE);
    if (n < strlen(want) || memcmp(b, want, strlen(want)))
        return -1;
    const unsigned char *nl = memchr(b, '\n', n);
    char header[256];
    if (!nl || nl - b >= (long)sizeof header)
        return -1;
    memcpy(header, b, (size_t)(nl - b));
    header[nl - b] = 0;
    if (!strstr(header, " C444"))
        return -1;
    size_t pos = (size_t)(nl - b) + 1, frame = (size_t)SIZE * SIZE * 3;
    int count = 0;
    while (pos < n) {
        if (n - pos < 6 || memcmp(b + pos, "FRAME", 5))
            return -1;
        const unsigned char *e = memchr(b + pos, '\n', n - pos);
        if (!e || (size_t)(n - (size_t)(e - b) - 1) < frame)
            return -1;
        pos = (size_t)(e - b) + 1 + frame;
        count++;
    }
    return count;
}

static void test_y4m_and_determinism(void)
{
    char args[4096], a[1024], b[1024], c[1024], err[4096];
    snprintf(a, sizeof a, "%s", check_path("a.y4m"));
    snprintf(b, sizeof b, "%s", check_path("b.y4m"));
    snprintf(c, sizeof c, "%s", check_path("c.y4m"));
    snprintf(args, sizeof args, "--model '%s' --prompt 'a red fox in snow' --seed 7 -o - >'%s'", orig, a);
    CHECK(run(args, err, sizeof err) == 0, "original layout to y4m: %s", err);
    snprintf(args, sizeof args, "--model '%s' --prompt 'a red fox in snow' --seed 7 -q -o '%s'", orig, b);
    CHECK(run(args, err, sizeof err) == 0, "second run to a y4m file: %s", err);
    CHECK(err[0] == 0, "--quiet printed: %s", err);
    snprintf(args, sizeof args, "--model '%s' --prompt 'a red fox in snow' --seed 8 -o '%s'", orig, c);
    CHECK(run(args, err, sizeof err) == 0, "third run: %s", err);
    CHECK(strstr(err, "seed 8") != NULL, "the summary names the seed: %s", err);
    /* the CPU always batches the guidance passes (its rows are independent) */
    CHECK(strstr(err, "guidance passes batched (1 forward per step)") != NULL,
          "the summary says how guidance ran: %s", err);
    size_t na = 0, nb = 0, nc = 0;
    unsigned char *ya = slurp(a, &na), *yb = slurp(b, &nb), *yc = slurp(c, &nc);
    CHECK(ya && y4m_frames(ya, na) == FRAMES, "y4m on stdout: %d frames, want %d",
          ya ? y4m_frames(ya, na) : -2, FRAMES);
    CHECK(yb && na == nb && !memcmp(ya, yb, na), "the same seed gave different videos");
    CHECK(yc && y4m_frames(yc, nc) == FRAMES, "seed 8 video malformed");
    CHECK(yc && ya && (nc != na || memcmp(ya, yc, na)), "seeds 7 and 8 gave the same video");
    free(ya);
    free(yb);
    free(yc);
}

static void test_png_folder_and_samplers(void)
{
    static const char *const samplers[] = {"unipc", "dpm++", "euler"};
    for (int s = 0; s < 3; s++) {
        char args[4096], dir[1024], err[4096], name[64];
        snprintf(name, sizeof name, "frames_%d", s);
        snprintf(dir, sizeof dir, "%s", check_path(name));
        snprintf(args, sizeof args, "--model '%s' --prompt 'snow' --seed 3 --sampler %s -o '%s/'",
                 comfy, samplers[s], dir);
        int rc = run(args, err, sizeof err);
        CHECK(rc == 0, "ComfyUI layout, %s, PNG folder: exit %d: %s", samplers[s], rc, err);
        CHECK(strstr(err, "denoise") != NULL, "no progress lines: %s", err);
        int pngs = 0;
        DIR *d = opendir(dir);
        for (struct dirent *e; d && (e = readdir(d));) {
            size_t l = strlen(e->d_name);
            if (l > 4 && !strcmp(e->d_name + l - 4, ".png")) {
                char p[1500];
                snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
                size_t n = 0;
                unsigned char *b = slurp(p, &n);
                CHECK(b && n > 8 && !memcmp(b, "\x89PNG\r\n\x1a\n", 8), "%s is not a PNG", p);
                free(b);
                pngs++;
            }
        }
        if (d)
            closedir(d);
        CHECK(pngs == FRAMES, "%s: %d PNG files, want %d", samplers[s], pngs, FRAMES);
    }
}

#ifdef REEL_HAVE_FFMPEG
/* Decodes every frame of a video file; returns the count (negative on failure). */
static int decode_frames(const char *path, int *w, int *h)
{
    AVFormatContext *fc = NULL;
    if (avformat_open_input(&fc, path, NULL, NULL) < 0)
        return -1;
    int count = -1, vs = avformat_find_stream_info(fc, NULL) >= 0
                             ? av_find_best_stream(fc, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0)
                             : -1;
    const AVCodec *codec = vs >= 0 ? avcodec_find_decoder(fc->streams[vs]->codecpar->codec_id) : NULL;
    AVCodecContext *cc = codec ? avcodec_alloc_context3(codec) : NULL;
    AVPacket *pkt = av_packet_alloc();
    AVFrame *fr = av_frame_alloc();
    if (cc && pkt && fr && avcodec_parameters_to_context(cc, fc->streams[vs]->codecpar) >= 0 &&
        avcodec_open2(cc, codec, NULL) >= 0) {
        count = 0;
        int flushing = 0;
        while (!flushing) {
            if (av_read_frame(fc, pkt) < 0) {
                flushing = 1;
                avcodec_send_packet(cc, NULL);
            } else if (pkt->stream_index == vs) {
                avcodec_send_packet(cc, pkt);
            }
            av_packet_unref(pkt);
            while (avcodec_receive_frame(cc, fr) >= 0) {
                *w = fr->width, *h = fr->height;
                count++;
            }
        }
    }
    av_frame_free(&fr);
    av_packet_free(&pkt);
    avcodec_free_context(&cc);
    avformat_close_input(&fc);
    return count;
}

static void test_mkv(void)
{
    char args[4096], out[1024], err[4096];
    snprintf(out, sizeof out, "%s", check_path("clip.mkv"));
    snprintf(args, sizeof args, "--model '%s' --prompt 'a fox' --seed 1 --cfg 1 -o '%s'", comfy, out);
    CHECK(run(args, err, sizeof err) == 0, "MKV: %s", err);
    int w = 0, h = 0, n = decode_frames(out, &w, &h);
    CHECK(n == FRAMES && w == SIZE && h == SIZE, "MKV decoded to %d frames of %dx%d", n, w, h);
}
#endif

static void expect_refusal(const char *args, int want_rc, const char *want_msg, const char *out)
{
    char err[4096];
    int rc = run(args, err, sizeof err);
    CHECK(rc == want_rc, "'%s': exit %d, want %d (%s)", args, rc, want_rc, err);
    CHECK(strstr(err, want_msg) != NULL, "'%s': message lacks '%s': %s", args, want_msg, err);
    struct stat s;
    CHECK(!out || stat(out, &s) != 0, "'%s' left %s behind", args, out);
}

static void test_refusals(void)
{
    char args[4096], out[1024], broken[1024], p[1300];
    snprintf(out, sizeof out, "%s", check_path("never.y4m"));
    snprintf(args, sizeof args, "--model '%s' --prompt x --size 30x32 -o '%s'", orig, out);
    expect_refusal(args, 2, "multiples of 16", out);
    snprintf(args, sizeof args, "--model '%s' --prompt x --frames 6 -o '%s'", orig, out);
    expect_refusal(args, 2, "4k+1", out);
    snprintf(args, sizeof args, "--model '%s' --prompt x --sampler ddim -o '%s'", orig, out);
    expect_refusal(args, 2, "ddim", out);
    snprintf(args, sizeof args, "--model '%s' -o '%s'", orig, out);
    expect_refusal(args, 2, "--prompt", out);
    snprintf(args, sizeof args, "--model '%s' --prompt x -o '%s'", check_path("nowhere"), out);
    expect_refusal(args, 1, "does not exist", out);
    snprintf(args, sizeof args, "--model '%s' --prompt x -o '%s/clip.avi'", orig, check_path(""));
    expect_refusal(args, 1, "avi", NULL);

    /* a folder without its VAE: the part is named, and nothing is written */
    snprintf(broken, sizeof broken, "%s", check_path("no-vae"));
    mkdir(broken, 0755);
    mkdirs(broken, "diffusion_models");
    mkdirs(broken, "text_encoders");
    snprintf(p, sizeof p, "%s/diffusion_models/wan.safetensors", broken);
    CHECK(symlink(check_path("ComfyUI-models/diffusion_models/wan_tiny.safetensors"), p) == 0, "symlink");
    static const char *const te[] = {"umt5_xxl_fp16.safetensors", "spiece.model"};
    for (int i = 0; i < 2; i++) {
        char from[1024];
        snprintf(from, sizeof from, "%s/text_encoders/%s", comfy, te[i]);
        snprintf(p, sizeof p, "%s/text_encoders/%s", broken, te[i]);
        CHECK(symlink(from, p) == 0, "symlink %s", p);
    }
    snprintf(args, sizeof args, "--model '%s' --prompt x -o '%s'", broken, out);
    expect_refusal(args, 1, "VAE", out);
    /* an explicit part that is not there */
    snprintf(args, sizeof args, "--model '%s' --vae '%s' --prompt x -o '%s'", orig,
             check_path("missing.pth"), out);
    expect_refusal(args, 1, "missing.pth", out);

    /* an existing output is kept unless --overwrite */
    FILE *f = fopen(out, "wb");
    fputs("keep me", f);
    fclose(f);
    snprintf(args, sizeof args, "--model '%s' --prompt x -o '%s'", orig, out);
    expect_refusal(args, 1, "exists", NULL);
    size_t n = 0;
    unsigned char *b = slurp(out, &n);
    CHECK(b && n == 7 && !memcmp(b, "keep me", 7), "an existing output was changed");
    free(b);
    char err[4096];
    snprintf(args, sizeof args, "--model '%s' --prompt x --overwrite -q -o '%s'", orig, out);
    CHECK(run(args, err, sizeof err) == 0, "--overwrite: %s", err);
    b = slurp(out, &n);
    CHECK(b && y4m_frames(b, n) == FRAMES, "--overwrite did not write the video");
    free(b);
}

/* ---- the embedding API ---------------------------------------------------------------------- */

typedef struct api_run {
    int frames, cancel_at, bad, denoise_steps;
    unsigned long long sum;
} api_run;

static int api_frame(void *user, const reel_frame *f)
{
    api_run *r = user;
    if (f->index != r->frames || f->width != SIZE || f->height != SIZE || f->stride < SIZE * 3)
        r->bad++;
    for (int y = 0; y < f->height; y++)
        for (int x = 0; x < f->width * 3; x++)
            r->sum = r->sum * 31 + f->rgb[y * f->stride + x];
    r->frames++;
    return r->cancel_at && r->frames == r->cancel_at;
}

static int api_progress(void *user, const char *stage, int done, int total)
{
    api_run *r = user;
    if (!strcmp(stage, "denoise"))
        r->denoise_steps = done;
    return 0;
}

static void test_api(void)
{
    reel_open_params op;
    reel_open_params_default(&op);
    op.model_dir = orig;
    op.backend = "cpu";
    reel_model *m = NULL;
    CHECK_OK(reel_open(&op, &m));
    if (!m)
        return;
    api_run runs[3] = {{0}, {0}, {.cancel_at = 2}};
    for (int i = 0; i < 3; i++) {
        reel_gen_params gp;
        reel_gen_params_default(&gp);
        CHECK(gp.width == 832 && gp.height == 480 && gp.frames == 81 && gp.steps == 50,
              "defaults %dx%d %d frames %d steps", gp.width, gp.height, gp.frames, gp.steps);
        gp.prompt = "a red fox";
        gp.width = gp.height = SIZE;
        gp.frames = FRAMES;
        gp.steps = 2;
        gp.seed = 11;
        gp.on_frame = api_frame;
        gp.on_progress = api_progress;
        gp.user = &runs[i];
        int st = reel_generate(m, &gp);
        if (i < 2) {
            CHECK(st == REEL_OK, "reel_generate: %d %s", st, err_msg());
            CHECK(runs[i].frames == FRAMES && !runs[i].bad, "run %d: %d frames, %d bad", i,
                  runs[i].frames, runs[i].bad);
            CHECK(runs[i].denoise_steps == 2, "progress reached step %d of 2", runs[i].denoise_steps);
            CHECK(gp.seed_used == 11, "seed_used %lld", gp.seed_used);
            CHECK(gp.forwards_per_step == 1, "guided CPU run: %d forwards per step, want 1 "
                  "(batched)", gp.forwards_per_step);
        } else {
            CHECK(st == REEL_E_CANCELLED, "cancel from the frame callback: %d", st);
            CHECK(runs[i].frames == 2, "frames after cancelling at 2: %d", runs[i].frames);
        }
    }
    CHECK(runs[0].sum == runs[1].sum, "the same seed through the API gave different frames");
    reel_gen_params bad;
    reel_gen_params_default(&bad);
    bad.prompt = "x";
    bad.frames = 4;
    CHECK(reel_generate(m, &bad) == REEL_E_INVALID && strstr(err_msg(), "4k+1"), "4 frames: %s",
          err_msg());
    unsigned long long peak = 1, total = 1;
    reel_memory(m, &peak, &total);
    CHECK(peak == 0 && total == 0, "CPU reports no device memory (%llu of %llu)", peak, total);
    reel_close(m);

    reel_open_params wrong;
    reel_open_params_default(&wrong);
    wrong.struct_size = 8;
    CHECK(reel_open(&wrong, &m) == REEL_E_ABI, "a params struct of another size is refused");
}

int main(void)
{
    check_seed("test_generate_cli");
    bin = getenv("REEL_BIN");
    CHECK(bin != NULL, "REEL_BIN not set (run through ctest)");
    if (!bin)
        return check_done();
    write_models();
    if (check_failures)
        return check_done();
    test_y4m_and_determinism();
    test_png_folder_and_samplers();
#ifdef REEL_HAVE_FFMPEG
    test_mkv();
#endif
    test_refusals();
    test_api();
    return check_done();
}
