/* The test picture behind `reel frames-demo` and the sink tests (see frames.h). Edges are
 * smoothed over 5-6 pixels, as in decoded video: a hard-edged saturated shape loses most of its
 * colour to 4:2:0 subsampling whatever the encoder does (this picture with 3-pixel edges stays
 * below 43 dB even losslessly encoded), which would test the format rather than the code. */
#include "frames.h"

#include <math.h>

static double smoothstep(double e0, double e1, double x)
{
    double t = (x - e0) / (e1 - e0);
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    return t * t * (3 - 2 * t);
}

/* Coverage of a disc of radius r centred at (cx, cy), soft over 6 pixels. */
static double disc(double x, double y, double cx, double cy, double r)
{
    double d = sqrt((x - cx) * (x - cx) + (y - cy) * (y - cy));
    return 1.0 - smoothstep(r - 3.0, r + 3.0, d);
}

static double mix(double a, double b, double t) { return a + (b - a) * t; }

static uint8_t u8(double v) { return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : (int)(v + 0.5)); }

void frames_test_pattern(uint8_t *rgb, int width, int height, int64_t row_stride_bytes, int64_t t)
{
    const double pi = 3.14159265358979323846;
    double w = width, h = height, ft = (double)t;
    double r1 = 0.22 * (w < h ? w : h), r2 = 0.15 * (w < h ? w : h);
    double c1x = w * (0.3 + 0.15 * sin(0.21 * ft)), c1y = h * (0.5 + 0.2 * cos(0.17 * ft));
    double c2x = w * (0.7 - 0.12 * cos(0.13 * ft)), c2y = h * (0.4 + 0.25 * sin(0.23 * ft));
    double bar = fmod(3.0 * ft, w + 16.0) - 8.0; /* a bar sweeping to the right */
    for (int y = 0; y < height; y++) {
        uint8_t *row = rgb + (int64_t)y * row_stride_bytes;
        for (int x = 0; x < width; x++) {
            double px = x + 0.5, py = y + 0.5;
            double r = 255.0 * px / w;
            double g = 255.0 * py / h;
            double b = 128.0 + 70.0 * sin(2.0 * pi * (px + py) / 96.0 + 0.3 * ft);
            double a = disc(px, py, c1x, c1y, r1);
            r = mix(r, 230, a), g = mix(g, 70, a), b = mix(b, 50, a);
            a = disc(px, py, c2x, c2y, r2);
            r = mix(r, 40, a), g = mix(g, 190, a), b = mix(b, 220, a);
            a = smoothstep(bar - 8.0, bar - 3.0, px) * (1.0 - smoothstep(bar + 3.0, bar + 8.0, px));
            r = mix(r, 245, a), g = mix(g, 245, a), b = mix(b, 235, a);
            row[3 * x] = u8(r);
            row[3 * x + 1] = u8(g);
            row[3 * x + 2] = u8(b);
        }
    }
}
