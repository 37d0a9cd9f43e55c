/* Video tensor <-> 8-bit frames: Wan's cache_video conversion on hand-computed values, every
 * dtype and stride layout giving the same bytes, the image-to-video preprocessing, frames_write
 * into a sink, and the test pattern being a real test picture. */
#include "check.h"
#include "dit/error.h"
#include "dit/numeric.h"
#include "vae_io/frame_sink.h"
#include "vae_io/frames.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void known_values(void)
{
    /* (x + 1) / 2 * 255, then truncation, worked out by hand */
    const float x[] = {-1.0f, -0.5f, 0.0f, 0.5f, 1.0f, 2.0f, -3.0f, 0.99f, -0.999f, NAN, INFINITY};
    const uint8_t want[] = {0, 63, 127, 191, 255, 255, 0, 253, 0, 0, 255};
    enum { N = sizeof x / sizeof x[0] };
    float v[3 * N];
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < N; i++)
            v[c * N + i] = x[i];
    tensor t = tensor_make(v, DT_F32, DEV_CPU, 4, (const int64_t[]){3, 1, 1, N});
    uint8_t rgb[3 * N];
    memset(rgb, 0xAA, sizeof rgb);
    CHECK_OK(frames_to_rgb8(&t, 0, rgb, 3 * N));
    for (int i = 0; i < N; i++)
        for (int c = 0; c < 3; c++)
            CHECK(rgb[3 * i + c] == want[i], "x=%g channel %d -> %d, want %d", x[i], c, rgb[3 * i + c],
                  want[i]);
}

/* Random video in one layout [F, H, W, 3] viewed as [3, F, H, W] through strides, against the
 * same values stored contiguously, in f32, bf16 and f16. */
static void layouts_and_dtypes(void)
{
    enum { F = 3, H = 7, W = 11 };
    size_t n = 3 * F * H * W;
    float *cont = malloc(n * sizeof *cont), *perm = malloc(n * sizeof *perm);
    uint16_t *b16 = malloc(n * sizeof *b16), *h16 = malloc(n * sizeof *h16);
    check_fill_uniform(cont, n, -1.3f, 1.3f);
    for (int c = 0; c < 3; c++)
        for (int f = 0; f < F; f++)
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++)
                    perm[((f * H + y) * W + x) * 3 + c] = cont[((c * F + f) * H + y) * W + x];
    tensor tc = tensor_make(cont, DT_F32, DEV_CPU, 4, (const int64_t[]){3, F, H, W});
    tensor tp = tc;
    tp.data = perm;
    tp.stride[0] = 1, tp.stride[1] = H * W * 3, tp.stride[2] = W * 3, tp.stride[3] = 3;
    uint8_t a[H * W * 3], b[H * W * 3];
    for (int f = 0; f < F; f++) {
        memset(b, 0x55, sizeof b);
        CHECK_OK(frames_to_rgb8(&tc, f, a, W * 3));
        CHECK_OK(frames_to_rgb8(&tp, f, b, W * 3));
        CHECK(!memcmp(a, b, sizeof a), "frame %d: strided view differs from contiguous", f);
        /* one pixel recomputed independently in double precision (away from a rounding edge) */
        double xv = cont[((1 * F + f) * H + 2) * W + 3];
        double ref = floor((fmin(fmax(xv, -1.0), 1.0) + 1.0) / 2.0 * 255.0);
        CHECK(fabs(a[(2 * W + 3) * 3 + 1] - ref) <= 1.0, "frame %d pixel: %d vs %g", f,
              a[(2 * W + 3) * 3 + 1], ref);
    }
    /* bf16 / f16 give the bytes of their own values converted to f32 */
    for (size_t i = 0; i < n; i++) {
        b16[i] = f32_to_bf16(cont[i]);
        h16[i] = f32_to_f16(cont[i]);
    }
    for (int pass = 0; pass < 2; pass++) {
        uint16_t *src = pass ? h16 : b16;
        for (size_t i = 0; i < n; i++)
            cont[i] = pass ? f16_to_f32(src[i]) : bf16_to_f32(src[i]);
        tensor th = tensor_make(src, pass ? DT_F16 : DT_BF16, DEV_CPU, 4, (const int64_t[]){3, F, H, W});
        for (int f = 0; f < F; f++) {
            memset(b, 0x55, sizeof b);
            CHECK_OK(frames_to_rgb8(&tc, f, a, W * 3));
            CHECK_OK(frames_to_rgb8(&th, f, b, W * 3));
            CHECK(!memcmp(a, b, sizeof a), "%s frame %d differs from its f32 values",
                  pass ? "f16" : "bf16", f);
        }
    }
    /* refusals */
    tensor bad = tc;
    bad.shape[0] = 4;
    CHECK(frames_to_rgb8(&bad, 0, a, W * 3) == REEL_E_INVALID, "4 channels accepted");
    CHECK(frames_to_rgb8(&tc, F, a, W * 3) == REEL_E_INVALID, "frame past the end accepted");
    CHECK(frames_to_rgb8(&tc, 0, a, W * 3 - 1) == REEL_E_INVALID, "short stride accepted");
    tensor i8 = tc;
    i8.dtype = DT_I8;
    CHECK(frames_to_rgb8(&i8, 0, a, W * 3) == REEL_E_UNSUPPORTED, "int8 video accepted");
    free(cont);
    free(perm);
    free(b16);
    free(h16);
}

static void image_preprocessing(void)
{
    enum { W = 256 };
    uint8_t rgb[3 * W];
    for (int i = 0; i < W; i++)
        rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = (uint8_t)i;
    float out[3 * W];
    for (int i = 0; i < 3 * W; i++)
        out[i] = NAN;
    tensor t = tensor_make(out, DT_F32, DEV_CPU, 4, (const int64_t[]){3, 1, 1, W});
    CHECK_OK(frames_from_rgb8(rgb, 3 * W, &t));
    CHECK(out[0] == -1.0f && out[255] == 1.0f, "0 -> %g, 255 -> %g", out[0], out[255]);
    int exact = 0;
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < W; i++) {
            double ref = ((double)i / 255.0 - 0.5) / 0.5;
            CHECK(fabs(out[c * W + i] - ref) < 1e-6, "value %d channel %d: %g vs %g", i, c,
                  out[c * W + i], ref);
        }
    /* back through cache_video: each byte comes back as itself or one below (fp32 rounding
     * of v/255 followed by truncation), the behaviour of the reference as well */
    uint8_t back[3 * W];
    CHECK_OK(frames_to_rgb8(&t, 0, back, 3 * W));
    for (int i = 0; i < W; i++) {
        CHECK(back[3 * i] == i || back[3 * i] == i - 1, "byte %d came back as %d", i, back[3 * i]);
        exact += back[3 * i] == i;
    }
    printf("image -> [-1,1] -> cache_video bytes: %d of 256 come back unchanged\n", exact);
    CHECK(exact > 128, "only %d of 256 bytes survive a round trip", exact);
}

static void pattern_and_write(void)
{
    enum { W = 96, H = 64 };
    uint8_t a[W * H * 3], b[W * H * 3];
    frames_test_pattern(a, W, H, W * 3, 0);
    frames_test_pattern(b, W, H, W * 3, 0);
    CHECK(!memcmp(a, b, sizeof a), "pattern is not deterministic");
    frames_test_pattern(b, W, H, W * 3, 5);
    int diff = 0;
    for (size_t i = 0; i < sizeof a; i++)
        diff += a[i] != b[i];
    CHECK(diff > (int)sizeof a / 10, "pattern barely moves: %d bytes differ", diff);
    for (int c = 0; c < 3; c++) {
        int lo = 255, hi = 0;
        for (int i = c; i < W * H * 3; i += 3)
            lo = a[i] < lo ? a[i] : lo, hi = a[i] > hi ? a[i] : hi;
        CHECK(hi - lo > 150, "channel %d spans only %d..%d", c, lo, hi);
    }

    /* frames_write: a [3, 4, H, W] tensor into a y4m file is header + 4 frames */
    enum { F = 4 };
    float *v = malloc(sizeof(float) * 3 * F * H * W);
    check_fill_uniform(v, 3 * F * H * W, -1, 1);
    tensor t = tensor_make(v, DT_F32, DEV_CPU, 4, (const int64_t[]){3, F, H, W});
    sink_params p;
    sink_params_default(&p);
    p.width = W, p.height = H;
    frame_sink *s = NULL;
    const char *path = check_path("write.y4m");
    CHECK_OK(sink_open(path, &p, &s));
    CHECK_OK(frames_write(&t, s));
    CHECK(sink_frames_written(s) == F, "%lld frames written", (long long)sink_frames_written(s));
    CHECK_OK(sink_close(s));
    struct stat st;
    CHECK(stat(path, &st) == 0, "%s missing", path);
    char head[128];
    int hl = snprintf(head, sizeof head,
                      "YUV4MPEG2 W%d H%d F16:1 Ip A1:1 C444 XYSCSS=444 XCOLORRANGE=LIMITED\n", W, H);
    CHECK(st.st_size == hl + F * (6 + 3 * W * H), "y4m size %lld", (long long)st.st_size);

    p.width = W + 2;
    CHECK_OK(sink_open(check_path("mismatch.y4m"), &p, &s));
    CHECK(frames_write(&t, s) == REEL_E_INVALID, "size mismatch accepted");
    CHECK(strstr(err_msg(), "96x64") != NULL, "message: %s", err_msg());
    sink_abort(s);
    CHECK(stat(check_path("mismatch.y4m"), &st) != 0, "aborted sink left its file");
    free(v);
}

int main(void)
{
    check_seed("test_io_frames");
    known_values();
    layouts_and_dtypes();
    image_preprocessing();
    pattern_and_write();
    return check_done();
}
