/* Image input through stb_image: a 24-bit BMP and a binary PGM written here byte by byte and a
 * PNG written by the PNG sink load back exactly (odd sizes, grey expanded to RGB); a missing
 * file, a folder, an empty file, garbage, a truncated PNG and a header claiming a huge size
 * each give their own status and a message naming the file. */

#include "check.h"
#include "dit/error.h"
#include "vae_io/frame_sink.h"
#include "vae_io/image_load.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void put_le(uint8_t *p, uint32_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* BMP: bottom-up rows of B, G, R padded to 4 bytes. */
static void write_bmp(const char *path, const uint8_t *rgb, int w, int h, int claim_w, int claim_h)
{
    int row = (w * 3 + 3) & ~3;
    uint32_t size = 54 + (uint32_t)row * h;
    uint8_t *b = calloc(1, size);
    b[0] = 'B', b[1] = 'M';
    put_le(b + 2, size, 4);
    put_le(b + 10, 54, 4);
    put_le(b + 14, 40, 4);
    put_le(b + 18, (uint32_t)claim_w, 4);
    put_le(b + 22, (uint32_t)claim_h, 4);
    put_le(b + 26, 1, 2);
    put_le(b + 28, 24, 2);
    put_le(b + 34, (uint32_t)row * h, 4);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            const uint8_t *s = rgb + ((size_t)(h - 1 - y) * w + x) * 3;
            uint8_t *d = b + 54 + (size_t)y * row + 3 * x;
            d[0] = s[2], d[1] = s[1], d[2] = s[0];
        }
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(b, 1, size, f) == size, "writing %s", path);
    if (f)
        fclose(f);
    free(b);
}

static void write_bytes(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(data, 1, n, f) == n, "writing %s", path);
    if (f)
        fclose(f);
}

static uint8_t *random_rgb(int w, int h)
{
    uint8_t *p = malloc((size_t)w * h * 3);
    for (size_t i = 0; i < (size_t)w * h * 3; i++)
        p[i] = (uint8_t)check_rand_u64();
    return p;
}

static void loads_exactly(void)
{
    enum { W = 37, H = 23 };
    uint8_t *rgb = random_rgb(W, H);
    const char *bmp = check_path("a.bmp");
    write_bmp(bmp, rgb, W, H, W, H);
    image_rgb img;
    CHECK_OK(image_load(bmp, &img));
    CHECK(img.width == W && img.height == H && img.data && !memcmp(img.data, rgb, (size_t)W * H * 3),
          "BMP %dx%d does not match what was written", img.width, img.height);
    image_free(&img);
    CHECK(img.data == NULL && img.width == 0, "image_free leaves a dangling image");

    /* binary PGM: grey becomes R = G = B */
    char head[32];
    int hl = snprintf(head, sizeof head, "P5\n%d %d\n255\n", W, H);
    uint8_t *pgm = malloc((size_t)hl + W * H);
    memcpy(pgm, head, (size_t)hl);
    for (int i = 0; i < W * H; i++)
        pgm[hl + i] = rgb[3 * i];
    const char *pgm_path = check_path("g.pgm");
    write_bytes(pgm_path, pgm, (size_t)hl + W * H);
    CHECK_OK(image_load(pgm_path, &img));
    int bad = 0;
    for (int i = 0; img.data && i < W * H; i++)
        bad += img.data[3 * i] != rgb[3 * i] || img.data[3 * i + 1] != rgb[3 * i] ||
               img.data[3 * i + 2] != rgb[3 * i];
    CHECK(img.data && bad == 0, "PGM: %d grey pixels wrong", bad);
    image_free(&img);
    free(pgm);

#ifdef REEL_HAVE_PNG
    const char *png = check_path("p.png");
    sink_params p;
    sink_params_default(&p);
    p.width = W, p.height = H;
    frame_sink *s = NULL;
    CHECK_OK(sink_open(png, &p, &s));
    CHECK_OK(sink_write_rgb(s, rgb, W * 3));
    CHECK_OK(sink_close(s));
    CHECK_OK(image_load(png, &img));
    CHECK(img.width == W && img.height == H && img.data && !memcmp(img.data, rgb, (size_t)W * H * 3),
          "PNG does not match what was written");
    image_free(&img);

    /* a PNG cut in half */
    FILE *f = fopen(png, "rb");
    uint8_t buf[8192];
    size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (f)
        fclose(f);
    write_bytes(check_path("cut.png"), buf, n / 2);
    int st = image_load(check_path("cut.png"), &img);
    CHECK(st == REEL_E_FORMAT && strstr(err_msg(), "cut.png"), "truncated PNG: %d %s", st, err_msg());
    CHECK(img.data == NULL, "a failed load returned pixels");
#endif
    free(rgb);
}

static void clear_errors(void)
{
    image_rgb img;
    int st = image_load(check_path("nope.png"), &img);
    CHECK(st == REEL_E_NOT_FOUND && strstr(err_msg(), "nope.png") && strstr(err_msg(), "No such file"),
          "missing file: %d %s", st, err_msg());
    st = image_load(check_tmpdir(), &img);
    CHECK(st == REEL_E_IO && strstr(err_msg(), check_tmpdir()), "folder: %d %s", st, err_msg());
    write_bytes(check_path("empty.jpg"), "", 0);
    st = image_load(check_path("empty.jpg"), &img);
    CHECK(st == REEL_E_FORMAT && strstr(err_msg(), "empty.jpg"), "empty file: %d %s", st, err_msg());
    uint8_t junk[1000];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (uint8_t)check_rand_u64();
    junk[0] = 'x'; /* not accidentally a magic number */
    write_bytes(check_path("junk.png"), junk, sizeof junk);
    st = image_load(check_path("junk.png"), &img);
    CHECK(st == REEL_E_FORMAT && strstr(err_msg(), "junk.png"), "garbage: %d %s", st, err_msg());
    /* a 60-byte BMP claiming 100000 x 100000: refused before any allocation */
    uint8_t px[3] = {1, 2, 3};
    write_bmp(check_path("huge.bmp"), px, 1, 1, 100000, 100000);
    st = image_load(check_path("huge.bmp"), &img);
    CHECK((st == REEL_E_UNSUPPORTED || st == REEL_E_FORMAT) && strstr(err_msg(), "huge.bmp"),
          "huge header: %d %s", st, err_msg());
    CHECK(image_load(NULL, &img) == REEL_E_INVALID, "NULL path accepted");
}

int main(void)
{
    check_seed("test_io_image");
    image_rgb img;
    if (image_load(check_path("probe"), &img) == REEL_E_UNSUPPORTED)
        return check_skip("built without stb_image");
    loads_exactly();
    clear_errors();
    return check_done();
}
