/* y4m output: the header and every frame parse back (4:4:4, limited range, BT.601 below HD and
 * BT.709 from 1280 wide), grey is exact (Y = 16 + 219 v / 255, Cb = Cr = 128), colour comes
 * back within 2 levels through the inverse matrix; standard output works, and when FFmpeg is
 * in the build its y4m demuxer reads the same frame count and rate. */

#include "check.h"
#include "dit/error.h"
#include "vae_io/frame_sink.h"
#include "vae_io/frames.h"

#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef REEL_HAVE_FFMPEG
#include <libavformat/avformat.h>
#endif

typedef struct y4m_file {
    int w, h, fps_num, fps_den, c444, limited;
    int frames;
    uint8_t *data; /* all frames' planes, 3 w h bytes each */
} y4m_file;

static uint8_t *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)len + 1);
    if (b && fread(b, 1, (size_t)len, f) != (size_t)len) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *n = (size_t)len;
    return b;
}

/* A strict reader: every header token understood, every frame marker where it must be. */
static int y4m_parse(const char *path, y4m_file *y)
{
    size_t n;
    memset(y, 0, sizeof *y);
    uint8_t *b = slurp(path, &n);
    if (!b)
        return -1;
    uint8_t *nl = memchr(b, '\n', n);
    if (!nl || memcmp(b, "YUV4MPEG2 ", 10)) {
        free(b);
        return -1;
    }
    *nl = 0;
    char *save = NULL;
    for (char *tok = strtok_r((char *)b + 10, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
        if (tok[0] == 'W')
            y->w = atoi(tok + 1);
        else if (tok[0] == 'H')
            y->h = atoi(tok + 1);
        else if (tok[0] == 'F')
            sscanf(tok + 1, "%d:%d", &y->fps_num, &y->fps_den);
        else if (!strcmp(tok, "C444"))
            y->c444 = 1;
        else if (!strcmp(tok, "XCOLORRANGE=LIMITED"))
            y->limited = 1;
        else if (strcmp(tok, "Ip") && strcmp(tok, "A1:1") && strcmp(tok, "XYSCSS=444")) {
            free(b);
            return -1;
        }
    }
    size_t pos = (size_t)(nl - b) + 1, fsize = (size_t)3 * y->w * y->h;
    y->data = malloc(n);
    while (pos < n) {
        if (n - pos < 6 + fsize || memcmp(b + pos, "FRAME\n", 6)) {
            free(b);
            return -1;
        }
        memcpy(y->data + (size_t)y->frames * fsize, b + pos + 6, fsize);
        y->frames++;
        pos += 6 + fsize;
    }
    free(b);
    return 0;
}

/* Inverse of limited-range Y'CbCr with luma weights kr, kb, in double. */
static void to_rgb(double Y, double Cb, double Cr, double kr, double kb, double rgb[3])
{
    double kg = 1 - kr - kb;
    double yf = (Y - 16) * 255 / 219, pb = (Cb - 128) * 255 / 224, pr = (Cr - 128) * 255 / 224;
    rgb[0] = yf + 2 * (1 - kr) * pr;
    rgb[2] = yf + 2 * (1 - kb) * pb;
    rgb[1] = (yf - kr * rgb[0] - kb * rgb[2]) / kg;
}

static void roundtrip(int w, int h, int nframes, int hd)
{
    char name[64];
    snprintf(name, sizeof name, "v_%dx%d.y4m", w, h);
    const char *path = check_path(name);
    sink_params p;
    sink_params_default(&p);
    p.width = w, p.height = h;
    frame_sink *s = NULL;
    CHECK_OK(sink_open(path, &p, &s));
    if (!s)
        return;
    CHECK(strstr(sink_describe(s), hd ? "BT.709" : "BT.601") != NULL, "describe: %s",
          sink_describe(s));
    size_t fsize = (size_t)3 * w * h;
    uint8_t *rgb = malloc(fsize * nframes);
    for (int f = 0; f < nframes; f++) {
        uint8_t *fr = rgb + f * fsize;
        if (f == 0) { /* a grey ramp with noise-free values: must convert exactly */
            for (int i = 0; i < w * h; i++)
                fr[3 * i] = fr[3 * i + 1] = fr[3 * i + 2] = (uint8_t)(check_rand_u64() & 255);
        } else if (f == 1) {
            for (size_t i = 0; i < fsize; i++)
                fr[i] = (uint8_t)(check_rand_u64() & 255);
        } else {
            frames_test_pattern(fr, w, h, 3 * w, f);
        }
        CHECK_OK(sink_write_rgb(s, fr, 3 * w));
    }
    CHECK(access(path, F_OK) != 0, "%s visible before close", path);
    CHECK_OK(sink_close(s));
    y4m_file y;
    CHECK(y4m_parse(path, &y) == 0, "%s does not parse", path);
    CHECK(y.w == w && y.h == h && y.fps_num == 16 && y.fps_den == 1 && y.c444 && y.limited,
          "header W%d H%d F%d:%d C444=%d limited=%d", y.w, y.h, y.fps_num, y.fps_den, y.c444,
          y.limited);
    CHECK(y.frames == nframes, "%d frames, want %d", y.frames, nframes);
    double kr = hd ? 0.2126 : 0.299, kb = hd ? 0.0722 : 0.114;
    int grey_bad = 0;
    double maxerr = 0;
    for (int f = 0; f < y.frames && f < nframes; f++) {
        const uint8_t *py = y.data + f * fsize, *pb = py + (size_t)w * h, *pr = pb + (size_t)w * h;
        const uint8_t *fr = rgb + f * fsize;
        for (int i = 0; i < w * h; i++) {
            if (f == 0) {
                int want = (int)floor(16 + 219.0 * fr[3 * i] / 255 + 0.5);
                grey_bad += py[i] != want || pb[i] != 128 || pr[i] != 128;
            }
            double back[3];
            to_rgb(py[i], pb[i], pr[i], kr, kb, back);
            for (int c = 0; c < 3; c++) {
                /* RGB input is never out of gamut: the only loss is rounding Y, Cb, Cr to 8 bits */
                double e = fabs(back[c] - fr[3 * i + c]);
                maxerr = e > maxerr ? e : maxerr;
            }
        }
    }
    CHECK(grey_bad == 0, "%d grey pixels not exact", grey_bad);
    CHECK(maxerr <= 2.0, "largest RGB error after the inverse matrix: %.2f levels (tolerance 2)",
          maxerr);
    printf("y4m %dx%d %s: %d frames, grey exact, max RGB error %.2f levels (tolerance 2)\n", w, h,
           hd ? "BT.709" : "BT.601", y.frames, maxerr);
    free(y.data);
    free(rgb);
}

static void to_stdout(void)
{
    const char *path = check_path("stdout.y4m");
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int saved = dup(STDOUT_FILENO);
    fflush(stdout);
    CHECK(fd >= 0 && saved >= 0 && dup2(fd, STDOUT_FILENO) == STDOUT_FILENO, "redirecting stdout");
    close(fd);
    sink_params p;
    sink_params_default(&p);
    p.width = 48, p.height = 32, p.fps_num = 24000, p.fps_den = 1001;
    frame_sink *s = NULL;
    int st = sink_open("-", &p, &s);
    uint8_t rgb[48 * 32 * 3];
    for (int f = 0; st == REEL_OK && f < 3; f++) {
        frames_test_pattern(rgb, 48, 32, 48 * 3, f);
        st = sink_write_rgb(s, rgb, 48 * 3);
    }
    if (st == REEL_OK)
        st = sink_close(s);
    else
        sink_abort(s);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    CHECK(st == REEL_OK, "y4m to stdout: %d %s", st, err_msg());
    y4m_file y;
    CHECK(y4m_parse(path, &y) == 0, "stdout y4m does not parse");
    CHECK(y.frames == 3 && y.fps_num == 24000 && y.fps_den == 1001, "stdout: %d frames at %d:%d",
          y.frames, y.fps_num, y.fps_den);
    free(y.data);

#ifdef REEL_HAVE_FFMPEG
    /* FFmpeg's demuxer (what `ffmpeg -i -` and mpv use) agrees on count, size and rate */
    AVFormatContext *fc = NULL;
    const char *vp = check_path("v_256x160.y4m");
    CHECK(avformat_open_input(&fc, vp, NULL, NULL) == 0, "libavformat cannot open %s", vp);
    if (fc) {
        CHECK(avformat_find_stream_info(fc, NULL) >= 0, "no stream info");
        AVStream *st0 = fc->streams[0];
        CHECK(st0->codecpar->width == 256 && st0->codecpar->height == 160, "size %dx%d",
              st0->codecpar->width, st0->codecpar->height);
        CHECK(st0->codecpar->format == AV_PIX_FMT_YUV444P, "pixel format %d",
              st0->codecpar->format);
        CHECK(fabs(av_q2d(av_guess_frame_rate(fc, st0, NULL)) - 16.0) < 1e-9, "fps %g",
              av_q2d(av_guess_frame_rate(fc, st0, NULL)));
        AVPacket *pkt = av_packet_alloc();
        int n = 0;
        while (av_read_frame(fc, pkt) >= 0) {
            n++;
            av_packet_unref(pkt);
        }
        CHECK(n == 5, "libavformat reads %d frames", n);
        av_packet_free(&pkt);
        avformat_close_input(&fc);
    }
#endif
}

int main(void)
{
    check_seed("test_io_y4m");
    roundtrip(256, 160, 5, 0);
    roundtrip(1280, 720, 3, 1);
    to_stdout();
    return check_done();
}
