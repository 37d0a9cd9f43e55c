/* Video containers through FFmpeg, checked by decoding them back with libavformat/libavcodec:
 * a moving test pattern of 33 frames at 256x160 and 200x120 into .mp4 (H.264 CRF 18), .mkv
 * (FFV1) and .mov (ProRes 4444). Frame count and 16 fps exact; H.264 and ProRes PSNR >= 40 dB
 * against the RGB that went in; FFV1 bit-exact in RGB (odd sizes too); metadata tags present
 * (a UTF-8 prompt included); the file only appears at sink_close; odd sizes refused for mp4. */

#include "check.h"
#include "dit/error.h"
#include "vae_io/frame_sink.h"
#include "vae_io/frames.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef REEL_HAVE_FFMPEG
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libswscale/swscale.h>

static const char *const metadata[] = {"prompt", "a red fox running through snow, 雪の中の狐",
                                       "seed", "42",
                                       "steps", "50",
                                       "model", "Wan2.1-T2V-1.3B",
                                       NULL};

enum { NFRAMES = 33 };

typedef struct decoded {
    int frames, w, h;
    double fps;
    char codec[32];
    int pix_fmt;
    int colorspace;
    int tags;       /* how many metadata pairs came back with the right value */
    double mse_sum; /* over all frames and channels */
    int64_t samples;
    int exact;      /* every decoded RGB byte equals the input */
} decoded;

static double seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* Decoded picture to RGB24 with the matrix and range the stream declares; bgr0 by hand so that
 * "exact" does not depend on swscale. */
static void to_rgb(const AVFrame *fr, uint8_t *rgb, struct SwsContext **sws)
{
    int w = fr->width, h = fr->height;
    if (fr->format == AV_PIX_FMT_BGR0) {
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                const uint8_t *p = fr->data[0] + (size_t)y * fr->linesize[0] + 4 * x;
                uint8_t *o = rgb + ((size_t)y * w + x) * 3;
                o[0] = p[2], o[1] = p[1], o[2] = p[0];
            }
        return;
    }
    if (!*sws) {
        *sws = sws_getContext(w, h, fr->format, w, h, AV_PIX_FMT_RGB24,
                              SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT, NULL, NULL, NULL);
        int cs = fr->colorspace == AVCOL_SPC_BT709 ? SWS_CS_ITU709 : SWS_CS_ITU601;
        sws_setColorspaceDetails(*sws, sws_getCoefficients(cs), fr->color_range == AVCOL_RANGE_JPEG,
                                 sws_getCoefficients(cs), 1, 0, 1 << 16, 1 << 16);
    }
    uint8_t *dst[4] = {rgb, NULL, NULL, NULL};
    int dst_stride[4] = {w * 3, 0, 0, 0};
    sws_scale(*sws, (const uint8_t *const *)fr->data, fr->linesize, 0, h, dst, dst_stride);
}

static void compare(decoded *d, const uint8_t *got, int idx, int w, int h)
{
    uint8_t *want = malloc((size_t)w * h * 3);
    frames_test_pattern(want, w, h, w * 3, idx);
    for (size_t i = 0; i < (size_t)w * h * 3; i++) {
        double e = (double)got[i] - want[i];
        d->mse_sum += e * e;
        d->exact &= got[i] == want[i];
    }
    d->samples += (int64_t)w * h * 3;
    free(want);
}

static int decode(const char *path, decoded *d)
{
    memset(d, 0, sizeof *d);
    d->exact = 1;
    AVFormatContext *fc = NULL;
    if (avformat_open_input(&fc, path, NULL, NULL) < 0)
        return -1;
    if (avformat_find_stream_info(fc, NULL) < 0 || fc->nb_streams != 1) {
        avformat_close_input(&fc);
        return -1;
    }
    for (int k = 0; metadata[k]; k += 2) {
        AVDictionaryEntry *e = av_dict_get(fc->metadata, metadata[k], NULL, 0);
        d->tags += e && !strcmp(e->value, metadata[k + 1]);
    }
    AVStream *st = fc->streams[0];
    d->fps = av_q2d(av_guess_frame_rate(fc, st, NULL));
    const AVCodec *codec = avcodec_find_decoder(st->codecpar->codec_id);
    AVCodecContext *c = avcodec_alloc_context3(codec);
    avcodec_parameters_to_context(c, st->codecpar);
    snprintf(d->codec, sizeof d->codec, "%s", codec->name);
    if (avcodec_open2(c, codec, NULL) < 0) {
        avcodec_free_context(&c);
        avformat_close_input(&fc);
        return -1;
    }
    AVPacket *pkt = av_packet_alloc();
    AVFrame *fr = av_frame_alloc();
    struct SwsContext *sws = NULL;
    uint8_t *rgb = NULL;
    int eof = 0;
    while (!eof) {
        int r = av_read_frame(fc, pkt);
        if (r < 0) {
            eof = 1;
            avcodec_send_packet(c, NULL);
        } else {
            avcodec_send_packet(c, pkt);
            av_packet_unref(pkt);
        }
        while (avcodec_receive_frame(c, fr) == 0) {
            d->w = fr->width, d->h = fr->height, d->pix_fmt = fr->format, d->colorspace = fr->colorspace;
            if (!rgb)
                rgb = malloc((size_t)fr->width * fr->height * 3);
            to_rgb(fr, rgb, &sws);
            compare(d, rgb, d->frames, fr->width, fr->height);
            d->frames++;
        }
    }
    free(rgb);
    sws_freeContext(sws);
    av_frame_free(&fr);
    av_packet_free(&pkt);
    avcodec_free_context(&c);
    avformat_close_input(&fc);
    return 0;
}

static double psnr(const decoded *d)
{
    double mse = d->mse_sum / (double)d->samples;
    return mse > 0 ? 10.0 * log10(255.0 * 255.0 / mse) : INFINITY;
}

/* Writes the pattern, checks the name stays free until close, decodes, returns the result. */
static int encode(const char *name, int w, int h, int crf, decoded *d, char *desc, size_t desc_n,
                  double *ms)
{
    const char *path = check_path(name);
    sink_params p;
    sink_params_default(&p);
    p.width = w, p.height = h, p.crf = crf, p.metadata = metadata;
    frame_sink *s = NULL;
    double t0 = seconds();
    int st = sink_open(path, &p, &s);
    CHECK(st == REEL_OK, "sink_open(%s): %s", name, err_msg());
    if (st < 0)
        return st;
    snprintf(desc, desc_n, "%s", sink_describe(s));
    uint8_t *rgb = malloc((size_t)w * h * 3);
    for (int f = 0; f < NFRAMES && st == REEL_OK; f++) {
        frames_test_pattern(rgb, w, h, w * 3, f);
        st = sink_write_rgb(s, rgb, w * 3);
        CHECK(st == REEL_OK, "%s frame %d: %s", name, f, err_msg());
    }
    free(rgb);
    CHECK(access(path, F_OK) != 0, "%s visible before sink_close", name);
    if (st == REEL_OK) {
        st = sink_close(s);
        CHECK(st == REEL_OK, "sink_close(%s): %s", name, err_msg());
    } else {
        sink_abort(s);
    }
    *ms = (seconds() - t0) * 1e3;
    if (st < 0)
        return st;
    CHECK(decode(path, d) == 0, "libavformat cannot read back %s", name);
    return REEL_OK;
}

static void one(const char *ext, int w, int h)
{
    char name[64], desc[192];
    snprintf(name, sizeof name, "pattern_%dx%d.%s", w, h, ext);
    decoded d;
    double ms;
    if (encode(name, w, h, -1, &d, desc, sizeof desc, &ms) < 0)
        return;
    double q = psnr(&d);
    printf("%-22s %-44s %2d frames %5.2f fps  psnr %6.2f dB  exact %d  %6.0f ms\n", name, desc,
           d.frames, d.fps, q, d.exact, ms);
    CHECK(d.frames == NFRAMES, "%s: %d frames decoded, want %d", name, d.frames, NFRAMES);
    CHECK(fabs(d.fps - 16.0) < 1e-6, "%s: %g fps, want 16", name, d.fps);
    CHECK(d.w == w && d.h == h, "%s: decoded %dx%d", name, d.w, d.h);
    CHECK(d.tags == 4, "%s: %d of 4 metadata tags came back", name, d.tags);
    if (!strcmp(ext, "mkv")) {
        CHECK(!strcmp(d.codec, "ffv1") && d.pix_fmt == AV_PIX_FMT_BGR0, "%s: %s %d", name, d.codec,
              d.pix_fmt);
        CHECK(d.exact, "%s: FFV1 is not bit-exact (psnr %.2f dB)", name, q);
    } else {
        CHECK(q >= 40.0, "%s: psnr %.2f dB below 40", name, q);
        CHECK(d.colorspace == AVCOL_SPC_BT709, "%s: colorspace %d, want BT.709 tag", name, d.colorspace);
        if (!strcmp(ext, "mov"))
            CHECK(!strcmp(d.codec, "prores"), "%s: codec %s", name, d.codec);
        else if (avcodec_find_encoder_by_name("libx264"))
            CHECK(!strcmp(d.codec, "h264") && strstr(desc, "libx264, yuv420p, crf 18"), "%s: %s / %s",
                  name, d.codec, desc);
    }
}

/* CRF is passed through: a much higher CRF gives a much smaller, worse file */
static void crf_is_used(void)
{
    if (!avcodec_find_encoder_by_name("libx264"))
        return;
    decoded lo, hi;
    char desc[192];
    double ms;
    if (encode("crf40.mp4", 256, 160, 40, &hi, desc, sizeof desc, &ms) < 0)
        return;
    CHECK(strstr(desc, "crf 40") != NULL, "describe: %s", desc);
    if (decode(check_path("pattern_256x160.mp4"), &lo) < 0)
        return;
    printf("crf 40: psnr %.2f dB (crf 18: %.2f dB)\n", psnr(&hi), psnr(&lo));
    CHECK(psnr(&hi) < psnr(&lo) - 3.0, "crf 40 (%.2f dB) not worse than crf 18 (%.2f dB)", psnr(&hi),
          psnr(&lo));
}

static void odd_sizes(void)
{
    sink_params p;
    sink_params_default(&p);
    p.width = 201, p.height = 121;
    frame_sink *s = NULL;
    CHECK(sink_open(check_path("odd.mp4"), &p, &s) == REEL_E_INVALID, "odd size accepted for mp4");
    CHECK(strstr(err_msg(), "201x121") && strstr(err_msg(), "even"), "message: %s", err_msg());
    CHECK(access(check_path("odd.mp4"), F_OK) != 0, "refused mp4 left a file");
    one("mkv", 201, 121); /* FFV1 in RGB has no such limit */
}
#endif

int main(void)
{
    check_seed("test_io_video");
#ifndef REEL_HAVE_FFMPEG
    return check_skip("built without FFmpeg");
#else
    const char *exts[] = {"mp4", "mkv", "mov"};
    for (int i = 0; i < 3; i++)
        one(exts[i], 256, 160);
    for (int i = 0; i < 3; i++)
        one(exts[i], 200, 120);
    crf_is_used();
    odd_sizes();
    return check_done();
#endif
}
