/* YUV4MPEG2 output, to a file or to standard output ("-o - | mpv -", "| x264 --demuxer y4m").
 *
 * 4:4:4 (C444) so that colour is not subsampled on the way to an encoder that may want it, in
 * limited range (16-235/240, "XCOLORRANGE=LIMITED", what every reader assumes). y4m cannot say
 * which colour matrix it uses, and players guess from the size (mpv, browsers: BT.709 when
 * width >= 1280 or height > 576, else BT.601); the conversion here makes the same choice so the
 * guess is right. */
#include "dit/error.h"
#include "out_file.h"
#include "sink_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct y4m_sink {
    frame_sink base;
    out_file *file;
    uint8_t *buf; /* "FRAME\n" then the Y, Cb, Cr planes: one write per frame */
    size_t buf_size;
    float ky[3], kcb[3], kcr[3]; /* limited-range rows of the RGB -> YCbCr matrix */
} y4m_sink;

static void y4m_matrix(y4m_sink *s)
{
    int hd = s->base.width >= 1280 || s->base.height > 576;
    float kr = hd ? 0.2126f : 0.299f, kb = hd ? 0.0722f : 0.114f, kg = 1.0f - kr - kb;
    float sy = 219.0f / 255.0f, sc = 224.0f / 255.0f;
    s->ky[0] = sy * kr, s->ky[1] = sy * kg, s->ky[2] = sy * kb;
    /* Cb = (B - Y) / (2 (1 - kb)), Cr = (R - Y) / (2 (1 - kr)), Y the full-range luma */
    float db = 0.5f / (1.0f - kb), dr = 0.5f / (1.0f - kr);
    s->kcb[0] = -sc * db * kr, s->kcb[1] = -sc * db * kg, s->kcb[2] = sc * db * (1.0f - kb);
    s->kcr[0] = sc * dr * (1.0f - kr), s->kcr[1] = -sc * dr * kg, s->kcr[2] = -sc * dr * kb;
}

static uint8_t to_u8(float v)
{
    return (uint8_t)(v < 0.0f ? 0 : v > 255.0f ? 255 : (int)(v + 0.5f));
}

static int y4m_write(frame_sink *base, const uint8_t *rgb, int64_t stride)
{
    y4m_sink *s = (y4m_sink *)base;
    int w = base->width, h = base->height;
    size_t plane = (size_t)w * h;
    uint8_t *py = s->buf + 6, *pb = py + plane, *pr = pb + plane;
    for (int y = 0; y < h; y++) {
        const uint8_t *row = rgb + (int64_t)y * stride;
        for (int x = 0; x < w; x++) {
            float r = row[3 * x], g = row[3 * x + 1], b = row[3 * x + 2];
            size_t i = (size_t)y * w + x;
            py[i] = to_u8(16.0f + s->ky[0] * r + s->ky[1] * g + s->ky[2] * b);
            pb[i] = to_u8(128.0f + s->kcb[0] * r + s->kcb[1] * g + s->kcb[2] * b);
            pr[i] = to_u8(128.0f + s->kcr[0] * r + s->kcr[1] * g + s->kcr[2] * b);
        }
    }
    return out_file_write(s->file, s->buf, s->buf_size);
}

static void y4m_free(y4m_sink *s)
{
    free(s->buf);
    free(s);
}

static int y4m_close(frame_sink *base)
{
    y4m_sink *s = (y4m_sink *)base;
    int st = out_file_commit(s->file);
    y4m_free(s);
    return st;
}

static void y4m_abort(frame_sink *base)
{
    y4m_sink *s = (y4m_sink *)base;
    out_file_discard(s->file);
    y4m_free(s);
}

static const sink_ops y4m_ops = {y4m_write, y4m_close, y4m_abort};

int sink_y4m_open(const char *path, const sink_params *p, frame_sink **out)
{
    y4m_sink *s = calloc(1, sizeof *s);
    if (!s)
        return err_set(REEL_E_NOMEM, "%s: out of memory", path);
    s->buf_size = 6 + (size_t)3 * p->width * p->height;
    if (!(s->buf = malloc(s->buf_size))) {
        free(s);
        return err_set(REEL_E_NOMEM, "%s: out of memory for a %dx%d frame", path, p->width,
                       p->height);
    }
    memcpy(s->buf, "FRAME\n", 6);
    int st = out_file_open(path, p->overwrite, &s->file);
    if (st < 0) {
        y4m_free(s);
        return st;
    }
    sink_base_init(&s->base, &y4m_ops, out_file_path(s->file), p);
    y4m_matrix(s);
    int hd = p->width >= 1280 || p->height > 576;
    snprintf(s->base.desc, sizeof s->base.desc, "y4m (4:4:4, %s limited range%s)",
             hd ? "BT.709" : "BT.601", strcmp(path, "-") ? "" : ", standard output");
    /* The header goes out now: a reader at the other end of a pipe learns the format at once. */
    char head[160];
    int n = snprintf(head, sizeof head,
                     "YUV4MPEG2 W%d H%d F%d:%d Ip A1:1 C444 XYSCSS=444 XCOLORRANGE=LIMITED\n",
                     p->width, p->height, p->fps_num, p->fps_den);
    if ((st = out_file_write(s->file, head, (size_t)n)) < 0) {
        y4m_abort(&s->base);
        return st;
    }
    *out = &s->base;
    return REEL_OK;
}
