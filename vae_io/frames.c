#include "frames.h"

#include "dit/error.h"
#include "dit/numeric.h"

#include <math.h>
#include <stdlib.h>

static int check_video(const tensor *v, const char *what)
{
    if (!v || !v->data)
        return err_set(REEL_E_INVALID, "%s: no tensor", what);
    if (v->dev != DEV_CPU)
        return err_set(REEL_E_INVALID, "%s: the tensor is on the GPU; copy it to the host first",
                       what);
    if (v->dtype != DT_F32 && v->dtype != DT_BF16 && v->dtype != DT_F16)
        return err_set(REEL_E_UNSUPPORTED, "%s: dtype %s (f32, bf16 or f16 expected)", what,
                       dtype_name(v->dtype));
    return tensor_expect(v, what, DT_COUNT, 4, (const int64_t[]){3, -1, -1, -1});
}

static float load(const tensor *v, int64_t off)
{
    switch (v->dtype) {
    case DT_BF16: return bf16_to_f32(((const uint16_t *)v->data)[off]);
    case DT_F16: return f16_to_f32(((const uint16_t *)v->data)[off]);
    default: return ((const float *)v->data)[off];
    }
}

/* Wan's order of fp32 operations, kept literally: each step rounds, so reordering (x * 127.5 +
 * 127.5, say) would change some pixels by one. */
static uint8_t wan_to_u8(float x)
{
    if (isnan(x))
        return 0;
    x = x < -1.0f ? -1.0f : x > 1.0f ? 1.0f : x;
    x = (x - (-1.0f)) / 2.0f;
    x = x * 255.0f;
    return (uint8_t)x;
}

int frames_to_rgb8(const tensor *video, int64_t f, uint8_t *rgb, int64_t row_stride_bytes)
{
    TRY(check_video(video, "video"));
    const int64_t *sh = video->shape, *sd = video->stride;
    if (f < 0 || f >= sh[1])
        return err_set(REEL_E_INVALID, "video frame %lld of %lld", (long long)f, (long long)sh[1]);
    if (!rgb || row_stride_bytes < 3 * sh[3])
        return err_set(REEL_E_INVALID, "video frame: row stride %lld below width %lld x 3",
                       (long long)row_stride_bytes, (long long)sh[3]);
    for (int64_t y = 0; y < sh[2]; y++) {
        uint8_t *row = rgb + y * row_stride_bytes;
        for (int64_t x = 0; x < sh[3]; x++)
            for (int64_t c = 0; c < 3; c++)
                row[3 * x + c] = wan_to_u8(load(video, c * sd[0] + f * sd[1] + y * sd[2] + x * sd[3]));
    }
    return REEL_OK;
}

int frames_write(const tensor *video, frame_sink *sink)
{
    TRY(check_video(video, "video"));
    int w, h;
    sink_frame_size(sink, &w, &h);
    if (video->shape[2] != h || video->shape[3] != w)
        return err_set(REEL_E_INVALID, "video frames are %lldx%lld but the sink was opened for %dx%d",
                       (long long)video->shape[3], (long long)video->shape[2], w, h);
    uint8_t *rgb = malloc((size_t)w * h * 3);
    if (!rgb)
        return err_set(REEL_E_NOMEM, "out of memory for a %dx%d frame", w, h);
    int st = REEL_OK;
    for (int64_t f = 0; f < video->shape[1] && st == REEL_OK; f++) {
        st = frames_to_rgb8(video, f, rgb, (int64_t)w * 3);
        if (st == REEL_OK)
            st = sink_write_rgb(sink, rgb, (int64_t)w * 3);
    }
    free(rgb);
    return st;
}

int frames_from_rgb8(const uint8_t *rgb, int64_t row_stride_bytes, const tensor *out)
{
    TRY(tensor_expect(out, "image tensor", DT_F32, 4, (const int64_t[]){3, 1, -1, -1}));
    if (out->dev != DEV_CPU)
        return err_set(REEL_E_INVALID, "image tensor: must be on the host");
    const int64_t *sh = out->shape, *sd = out->stride;
    if (!rgb || row_stride_bytes < 3 * sh[3])
        return err_set(REEL_E_INVALID, "image: row stride %lld below width %lld x 3",
                       (long long)row_stride_bytes, (long long)sh[3]);
    float *o = out->data;
    for (int64_t y = 0; y < sh[2]; y++) {
        const uint8_t *row = rgb + y * row_stride_bytes;
        for (int64_t x = 0; x < sh[3]; x++)
            for (int64_t c = 0; c < 3; c++) {
                float v = (float)row[3 * x + c] / 255.0f;
                o[c * sd[0] + y * sd[2] + x * sd[3]] = (v - 0.5f) / 0.5f;
            }
    }
    return REEL_OK;
}
