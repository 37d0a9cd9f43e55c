/* Video files through FFmpeg (libavformat muxes, libavcodec encodes, libswscale converts RGB):
 *   .mp4  H.264 with libx264 at a CRF, yuv420p; mpeg4 part 2 when this FFmpeg has no libx264
 *   .mkv  FFV1 level 3 in bgr0: lossless, the decoded RGB is the RGB that went in
 *   .mov  ProRes 4444 (prores_ks, else prores), yuv444p10le, for editing software
 * YUV outputs use BT.709 coefficients in limited range and say so in the stream, so players do
 * not have to guess. The generation parameters become container tags (mp4/mov: 'mdta' keys,
 * which need movflags use_metadata_tags; mkv: SimpleTags).
 *
 * The container is written through our own AVIOContext onto an out_file, so every byte goes
 * through one checked write (a full disk is reported with its errno and the temporary removed),
 * and the file is fsync'ed and renamed only after av_write_trailer succeeded. mp4/mov get
 * faststart (index before the data, so playback starts before the download ends): the muxer's
 * second pass re-opens the output by URL for reading, so the URL names the temporary. */

#include "dit/error.h"
#include "out_file.h"
#include "sink_impl.h"

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/avstring.h>
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if LIBAVFORMAT_VERSION_MAJOR >= 61
#define AVIO_WRITE_BUF const uint8_t *
#else
#define AVIO_WRITE_BUF uint8_t *
#endif

enum quality { Q_CRF, Q_QSCALE, Q_LOSSLESS, Q_PRORES4444 };

typedef struct ff_encoder {
    const char *name;
    enum AVPixelFormat pix_fmt;
    enum quality quality;
} ff_encoder;

typedef struct ff_container {
    const char *ext;
    const char *muxer;
    const char *movflags; /* NULL: not an ISO/QuickTime muxer */
    int even_sizes;       /* every encoder below subsamples chroma 2x2 */
    ff_encoder encoders[3];
} ff_container;

/* In order of preference; the first one this FFmpeg has and can open is used. */
static const ff_container containers[] = {
    {"mp4", "mp4", "+faststart+use_metadata_tags", 1,
     {{"libx264", AV_PIX_FMT_YUV420P, Q_CRF}, {"mpeg4", AV_PIX_FMT_YUV420P, Q_QSCALE}, {NULL}}},
    {"mkv", "matroska", NULL, 0, {{"ffv1", AV_PIX_FMT_BGR0, Q_LOSSLESS}, {NULL}}},
    {"mov", "mov", "+faststart+use_metadata_tags", 0,
     {{"prores_ks", AV_PIX_FMT_YUV444P10LE, Q_PRORES4444},
      {"prores", AV_PIX_FMT_YUV444P10LE, Q_PRORES4444},
      {NULL}}},
};

typedef struct ff_sink {
    frame_sink base;
    out_file *file;
    AVFormatContext *fmt;
    AVIOContext *io;
    AVCodecContext *enc;
    const ff_encoder *encoder;
    AVStream *st;
    AVFrame *frame;
    AVPacket *pkt;
    struct SwsContext *sws; /* NULL for bgr0, which is filled by hand */
    int64_t next_pts;
} ff_sink;

/* Reports an FFmpeg failure. When the cause was our own write (full disk...), out_file already
 * wrote a message naming the file and errno; FFmpeg only saw EIO, so that message is kept. */
static int ff_fail(ff_sink *s, int status, int averr, const char *what)
{
    if (s->file && out_file_failed(s->file))
        return out_file_failed(s->file);
    char buf[AV_ERROR_MAX_STRING_SIZE];
    av_strerror(averr, buf, sizeof buf);
    return err_set(averr == AVERROR(ENOMEM) ? REEL_E_NOMEM : status, "%s: %s: %s", s->base.path,
                   what, buf);
}

static int io_write(void *opaque, AVIO_WRITE_BUF buf, int n)
{
    ff_sink *s = opaque;
    return out_file_write(s->file, buf, (size_t)n) < 0 ? AVERROR(EIO) : n;
}

static int64_t io_seek(void *opaque, int64_t offset, int whence)
{
    ff_sink *s = opaque;
    int64_t pos;
    whence &= ~AVSEEK_FORCE;
    if (whence == AVSEEK_SIZE)
        return out_file_size(s->file, &pos) < 0 ? AVERROR(EIO) : pos;
    return out_file_seek(s->file, offset, whence, &pos) < 0 ? AVERROR(EIO) : pos;
}

/* H.264 CRF to an MPEG-4 part 2 qscale of about the same quantiser step: H.264's step is
 * 0.625 × 2^(qp/6), MPEG-4's is 2 × q. */
static int crf_to_qscale(int crf)
{
    double q = 0.3125 * pow(2.0, crf / 6.0);
    return q < 2.0 ? 2 : q > 31.0 ? 31 : (int)(q + 0.5);
}

static int try_encoder(ff_sink *s, const ff_encoder *e, const sink_params *p, int crf, char *why,
                       size_t why_n)
{
    const AVCodec *codec = avcodec_find_encoder_by_name(e->name);
    size_t used = strlen(why);
    if (!codec) {
        snprintf(why + used, why_n - used, "%s%s: not in this FFmpeg", used ? "; " : "", e->name);
        return 0;
    }
    AVCodecContext *c = avcodec_alloc_context3(codec);
    if (!c)
        return err_set(REEL_E_NOMEM, "%s: out of memory", s->base.path);
    c->width = p->width;
    c->height = p->height;
    c->pix_fmt = e->pix_fmt;
    c->time_base = (AVRational){p->fps_den, p->fps_num};
    c->framerate = (AVRational){p->fps_num, p->fps_den};
    c->sample_aspect_ratio = (AVRational){1, 1};
    c->thread_count = 0; /* one per core */
    c->color_primaries = AVCOL_PRI_BT709;
    if (e->pix_fmt == AV_PIX_FMT_BGR0) {
        c->colorspace = AVCOL_SPC_RGB;
        c->color_trc = AVCOL_TRC_IEC61966_2_1;
        c->color_range = AVCOL_RANGE_JPEG;
    } else {
        c->colorspace = AVCOL_SPC_BT709;
        c->color_trc = AVCOL_TRC_BT709;
        c->color_range = AVCOL_RANGE_MPEG;
    }
    if (s->fmt->oformat->flags & AVFMT_GLOBALHEADER)
        c->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    AVDictionary *opts = NULL;
    char num[16];
    int r = 0;
    switch (e->quality) {
    case Q_CRF:
        snprintf(num, sizeof num, "%d", crf);
        r = av_dict_set(&opts, "crf", num, 0);
        break;
    case Q_QSCALE:
        c->flags |= AV_CODEC_FLAG_QSCALE;
        c->global_quality = FF_QP2LAMBDA * crf_to_qscale(crf);
        break;
    case Q_LOSSLESS:
        c->level = 3; /* the archival version: slices with CRCs */
        r = av_dict_set(&opts, "slicecrc", "1", 0);
        break;
    case Q_PRORES4444:
        r = av_dict_set(&opts, "profile", "4444", 0);
        break;
    }
    if (r >= 0)
        r = avcodec_open2(c, codec, &opts);
    av_dict_free(&opts);
    if (r < 0) {
        char buf[AV_ERROR_MAX_STRING_SIZE];
        av_strerror(r, buf, sizeof buf);
        snprintf(why + used, why_n - used, "%s%s: %s", used ? "; " : "", e->name, buf);
        avcodec_free_context(&c);
        return 0;
    }
    s->enc = c;
    s->encoder = e;
    return 1;
}

static int open_encoder(ff_sink *s, const ff_container *k, const sink_params *p, int crf)
{
    char why[512] = "";
    for (const ff_encoder *e = k->encoders; e->name; e++) {
        int r = try_encoder(s, e, p, crf, why, sizeof why);
        if (r != 0)
            return r < 0 ? r : REEL_OK;
    }
    return err_set(REEL_E_UNSUPPORTED, "%s: no usable .%s encoder in this FFmpeg (%s)",
                   s->base.path, k->ext, why);
}

static int add_metadata(ff_sink *s, const char *const *md)
{
    for (int i = 0; md && md[i]; i += 2)
        if (av_dict_set(&s->fmt->metadata, md[i], md[i + 1], 0) < 0)
            return err_set(REEL_E_NOMEM, "%s: out of memory for metadata", s->base.path);
    return REEL_OK;
}

static int open_io(ff_sink *s)
{
    enum { IO_BUF = 1 << 16 };
    unsigned char *buf = av_malloc(IO_BUF);
    if (!buf || !(s->io = avio_alloc_context(buf, IO_BUF, 1, s, NULL, io_write, io_seek))) {
        av_free(buf);
        return err_set(REEL_E_NOMEM, "%s: out of memory", s->base.path);
    }
    s->fmt->pb = s->io;
    s->fmt->flags |= AVFMT_FLAG_CUSTOM_IO;
    /* "file:" so that a ':' in the name is never taken for a protocol */
    av_freep(&s->fmt->url);
    if (!(s->fmt->url = av_asprintf("file:%s", out_file_tmp_path(s->file))))
        return err_set(REEL_E_NOMEM, "%s: out of memory", s->base.path);
    return REEL_OK;
}

static int open_frame(ff_sink *s)
{
    int w = s->base.width, h = s->base.height;
    if (!(s->frame = av_frame_alloc()) || !(s->pkt = av_packet_alloc()))
        return err_set(REEL_E_NOMEM, "%s: out of memory", s->base.path);
    s->frame->format = s->encoder->pix_fmt;
    s->frame->width = w;
    s->frame->height = h;
    /* some encoders (prores_ks) take the colour tags from each frame, not from the context */
    s->frame->colorspace = s->enc->colorspace;
    s->frame->color_range = s->enc->color_range;
    s->frame->color_primaries = s->enc->color_primaries;
    s->frame->color_trc = s->enc->color_trc;
    int r = av_frame_get_buffer(s->frame, 0);
    if (r < 0)
        return ff_fail(s, REEL_E_NOMEM, r, "allocating a frame");
    if (s->encoder->pix_fmt == AV_PIX_FMT_BGR0)
        return REEL_OK;
    s->sws = sws_getContext(w, h, AV_PIX_FMT_RGB24, w, h, s->encoder->pix_fmt,
                            SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INP, NULL, NULL, NULL);
    if (!s->sws)
        return err_set(REEL_E_UNSUPPORTED, "%s: swscale cannot convert rgb24 to %s", s->base.path,
                       av_get_pix_fmt_name(s->encoder->pix_fmt));
    /* full-range RGB in, BT.709 limited-range YUV out, matching the tags on the stream */
    const int *bt709 = sws_getCoefficients(SWS_CS_ITU709);
    if (sws_setColorspaceDetails(s->sws, bt709, 1, bt709, 0, 0, 1 << 16, 1 << 16) < 0)
        return err_set(REEL_E_UNSUPPORTED, "%s: swscale refuses BT.709 coefficients", s->base.path);
    return REEL_OK;
}

static void ff_free(ff_sink *s)
{
    avcodec_free_context(&s->enc);
    av_frame_free(&s->frame);
    av_packet_free(&s->pkt);
    sws_freeContext(s->sws);
    avformat_free_context(s->fmt); /* leaves our custom pb alone */
    if (s->io) {
        av_freep(&s->io->buffer);
        avio_context_free(&s->io);
    }
    out_file_discard(s->file);
    free((char *)s->base.path);
    free(s);
}

/* Moves every packet the encoder has ready into the muxer. */
static int drain(ff_sink *s)
{
    for (;;) {
        int r = avcodec_receive_packet(s->enc, s->pkt);
        if (r == AVERROR(EAGAIN) || r == AVERROR_EOF)
            return REEL_OK;
        if (r < 0)
            return ff_fail(s, REEL_E_INVALID, r, "encoding");
        av_packet_rescale_ts(s->pkt, s->enc->time_base, s->st->time_base);
        s->pkt->stream_index = s->st->index;
        r = av_interleaved_write_frame(s->fmt, s->pkt);
        if (r < 0)
            return ff_fail(s, REEL_E_IO, r, "writing");
    }
}

static void fill_bgr0(AVFrame *f, const uint8_t *rgb, int64_t stride, int w, int h)
{
    for (int y = 0; y < h; y++) {
        const uint8_t *src = rgb + (int64_t)y * stride;
        uint8_t *dst = f->data[0] + (int64_t)y * f->linesize[0];
        for (int x = 0; x < w; x++) {
            dst[4 * x + 0] = src[3 * x + 2];
            dst[4 * x + 1] = src[3 * x + 1];
            dst[4 * x + 2] = src[3 * x + 0];
            dst[4 * x + 3] = 0;
        }
    }
}

static int ff_write(frame_sink *base, const uint8_t *rgb, int64_t stride)
{
    ff_sink *s = (ff_sink *)base;
    /* the encoder may still hold the previous frame's buffer */
    int r = av_frame_make_writable(s->frame);
    if (r < 0)
        return ff_fail(s, REEL_E_NOMEM, r, "allocating a frame");
    if (!s->sws) {
        fill_bgr0(s->frame, rgb, stride, base->width, base->height);
    } else {
        if (stride > INT32_MAX)
            return err_set(REEL_E_INVALID, "%s: row stride %lld too large for swscale",
                           base->path, (long long)stride);
        const uint8_t *src[4] = {rgb, NULL, NULL, NULL};
        const int src_stride[4] = {(int)stride, 0, 0, 0};
        if (sws_scale(s->sws, src, src_stride, 0, base->height, s->frame->data,
                      s->frame->linesize) != base->height)
            return err_set(REEL_E_INVALID, "%s: swscale failed on frame %lld", base->path,
                           (long long)base->frames);
    }
    s->frame->pts = s->next_pts++;
    if ((r = avcodec_send_frame(s->enc, s->frame)) < 0)
        return ff_fail(s, REEL_E_INVALID, r, "encoding");
    return drain(s);
}

static int ff_close(frame_sink *base)
{
    ff_sink *s = (ff_sink *)base;
    int st = REEL_OK, r = avcodec_send_frame(s->enc, NULL); /* flush the encoder's delay */
    if (r < 0)
        st = ff_fail(s, REEL_E_INVALID, r, "flushing the encoder");
    if (st == REEL_OK)
        st = drain(s);
    if (st == REEL_OK && (r = av_write_trailer(s->fmt)) < 0)
        st = ff_fail(s, REEL_E_IO, r, "finishing the container");
    if (st == REEL_OK) {
        avio_flush(s->io);
        if (s->io->error < 0)
            st = ff_fail(s, REEL_E_IO, s->io->error, "writing");
    }
    if (st == REEL_OK) {
        st = out_file_commit(s->file);
        s->file = NULL;
    }
    ff_free(s);
    return st;
}

static void ff_abort(frame_sink *base) { ff_free((ff_sink *)base); }

static const sink_ops ff_ops = {ff_write, ff_close, ff_abort};

static int ff_open(ff_sink *s, const ff_container *k, const sink_params *p)
{
    int crf = p->crf < 0 ? 18 : p->crf;
    TRY(out_file_open(s->base.path, p->overwrite, &s->file));
    int r = avformat_alloc_output_context2(&s->fmt, NULL, k->muxer, NULL);
    if (r < 0 || !s->fmt)
        return ff_fail(s, REEL_E_UNSUPPORTED, r, "no muxer");
    TRY(open_encoder(s, k, p, crf));
    if (!(s->st = avformat_new_stream(s->fmt, NULL)))
        return err_set(REEL_E_NOMEM, "%s: out of memory", s->base.path);
    if ((r = avcodec_parameters_from_context(s->st->codecpar, s->enc)) < 0)
        return ff_fail(s, REEL_E_INVALID, r, "stream parameters");
    s->st->time_base = s->enc->time_base;
    s->st->avg_frame_rate = s->enc->framerate;
    TRY(add_metadata(s, p->metadata));
    TRY(open_io(s));
    AVDictionary *opts = NULL;
    if (k->movflags && av_dict_set(&opts, "movflags", k->movflags, 0) < 0)
        return err_set(REEL_E_NOMEM, "%s: out of memory", s->base.path);
    r = avformat_write_header(s->fmt, &opts);
    av_dict_free(&opts);
    if (r < 0)
        return ff_fail(s, REEL_E_IO, r, "writing the container header");
    TRY(open_frame(s));
    const char *name = s->encoder->name, *fmt = av_get_pix_fmt_name(s->encoder->pix_fmt);
    switch (s->encoder->quality) {
    case Q_CRF:
        snprintf(s->base.desc, sizeof s->base.desc, "%s (%s, %s, crf %d)", k->ext, name, fmt, crf);
        break;
    case Q_QSCALE:
        snprintf(s->base.desc, sizeof s->base.desc, "%s (%s, %s, qscale %d)", k->ext, name, fmt,
                 crf_to_qscale(crf));
        break;
    case Q_LOSSLESS:
        snprintf(s->base.desc, sizeof s->base.desc, "%s (%s, %s, lossless)", k->ext, name, fmt);
        break;
    case Q_PRORES4444:
        snprintf(s->base.desc, sizeof s->base.desc, "%s (%s 4444, %s)", k->ext, name, fmt);
        break;
    }
    return REEL_OK;
}

int sink_ffmpeg_open(const char *path, const char *container, const sink_params *p,
                     frame_sink **out)
{
    const ff_container *k = NULL;
    for (size_t i = 0; i < sizeof containers / sizeof containers[0]; i++)
        if (!strcmp(containers[i].ext, container))
            k = &containers[i];
    if (!k)
        return err_set(REEL_E_UNSUPPORTED, "%s: no FFmpeg container '%s'", path, container);
    if (k->even_sizes && (p->width % 2 || p->height % 2))
        return err_set(REEL_E_INVALID,
                       "%s: .%s uses yuv420p, which needs an even width and height (got %dx%d); "
                       "use .mkv or .mov for odd sizes",
                       path, k->ext, p->width, p->height);
    /* libx264 and the muxers log every file's statistics at the default level; a host that
     * chose its own level keeps it */
    if (av_log_get_level() == AV_LOG_INFO)
        av_log_set_level(AV_LOG_ERROR);
    ff_sink *s = calloc(1, sizeof *s);
    char *copy = malloc(strlen(path) + 1);
    if (!s || !copy) {
        free(s);
        free(copy);
        return err_set(REEL_E_NOMEM, "%s: out of memory", path);
    }
    memcpy(copy, path, strlen(path) + 1);
    sink_base_init(&s->base, &ff_ops, copy, p);
    int st = ff_open(s, k, p);
    if (st < 0) {
        ff_free(s);
        return st;
    }
    *out = &s->base;
    return REEL_OK;
}
