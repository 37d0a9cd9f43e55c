/* PNG output: sequences into a new folder, an existing folder and a %d pattern, and a single
 * image, read back with libpng: 8-bit RGB, pixels exact (odd sizes and padded rows included),
 * the metadata as tEXt (ASCII) and iTXt (UTF-8) chunks; nothing is visible before sink_close,
 * an aborted sequence removes the folder it created, and bad patterns are refused. */

#include "check.h"
#include "dit/error.h"
#include "vae_io/frame_sink.h"
#include "vae_io/frames.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef REEL_HAVE_PNG
#include <png.h>

typedef struct png_back {
    int w, h, depth, color;
    uint8_t *rgb;
    int n_text;
    char key[8][80];
    char value[8][256];
    int itxt[8];
} png_back;

static int read_png(const char *path, png_back *o)
{
    memset(o, 0, sizeof *o);
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        fclose(f);
        return -1;
    }
    png_init_io(png, f);
    png_read_info(png, info);
    o->w = (int)png_get_image_width(png, info);
    o->h = (int)png_get_image_height(png, info);
    o->depth = png_get_bit_depth(png, info);
    o->color = png_get_color_type(png, info);
    o->rgb = malloc((size_t)o->w * o->h * 3);
    for (int y = 0; y < o->h; y++)
        png_read_row(png, o->rgb + (size_t)y * o->w * 3, NULL);
    png_read_end(png, info);
    png_textp text;
    int n = 0;
    png_get_text(png, info, &text, &n);
    for (int i = 0; i < n && i < 8; i++) {
        snprintf(o->key[i], sizeof o->key[i], "%s", text[i].key);
        snprintf(o->value[i], sizeof o->value[i], "%s", text[i].text);
        o->itxt[i] = text[i].compression == PNG_ITXT_COMPRESSION_NONE;
    }
    o->n_text = n;
    png_destroy_read_struct(&png, &info, NULL);
    fclose(f);
    return 0;
}

static const char *const metadata[] = {"prompt", "a café at dusk, 夕方の街",
                                       "seed", "1234",
                                       "steps", "50",
                                       "model", "Wan2.1-T2V-1.3B",
                                       NULL};

/* n random frames (padded rows: stride w*3 + 5) into the sink opened at path */
static uint8_t *write_frames(const char *path, int w, int h, int n, int overwrite, int close_it)
{
    sink_params p;
    sink_params_default(&p);
    p.width = w, p.height = h, p.metadata = metadata, p.overwrite = overwrite;
    frame_sink *s = NULL;
    int st = sink_open(path, &p, &s);
    CHECK(st == REEL_OK, "sink_open(%s): %s", path, err_msg());
    if (st < 0)
        return NULL;
    int64_t stride = (int64_t)w * 3 + 5;
    uint8_t *frames = malloc((size_t)stride * h * n);
    for (int f = 0; f < n; f++) {
        uint8_t *fr = frames + (size_t)f * stride * h;
        for (size_t i = 0; i < (size_t)stride * h; i++)
            fr[i] = (uint8_t)check_rand_u64();
        CHECK_OK(sink_write_rgb(s, fr, stride));
    }
    if (close_it)
        CHECK_OK(sink_close(s));
    else
        sink_abort(s);
    return frames;
}

static void check_frame(const char *file, const uint8_t *frames, int f, int w, int h)
{
    png_back b;
    int64_t stride = (int64_t)w * 3 + 5;
    CHECK(read_png(file, &b) == 0, "libpng cannot read %s", file);
    CHECK(b.w == w && b.h == h && b.depth == 8 && b.color == PNG_COLOR_TYPE_RGB,
          "%s: %dx%d depth %d colour type %d", file, b.w, b.h, b.depth, b.color);
    int bad = 0;
    for (int y = 0; y < h && b.rgb && b.w == w && b.h == h; y++)
        bad += memcmp(b.rgb + (size_t)y * w * 3, frames + ((size_t)f * h + y) * stride, (size_t)w * 3) != 0;
    CHECK(bad == 0, "%s: %d rows differ from what was written", file, bad);
    int found = 0;
    for (int i = 0; i < b.n_text; i++)
        for (int k = 0; metadata[k]; k += 2)
            if (!strcmp(b.key[i], metadata[k])) {
                found++;
                CHECK(!strcmp(b.value[i], metadata[k + 1]), "%s: %s = '%s'", file, b.key[i], b.value[i]);
                CHECK(b.itxt[i] == (k == 0), "%s: %s stored as %s", file, b.key[i],
                      b.itxt[i] ? "iTXt" : "tEXt");
            }
    CHECK(found == 4, "%s: %d of 4 metadata chunks", file, found);
    free(b.rgb);
}

static void sequence_new_folder(void)
{
    char dir[600], file[700];
    snprintf(dir, sizeof dir, "%s/", check_path("seq"));
    enum { W = 37, H = 23, N = 4 };
    uint8_t *frames = write_frames(dir, W, H, N, 0, 1);
    CHECK(check_count_entries(dir) == N, "%s holds %d files, want %d", dir, check_count_entries(dir), N);
    for (int f = 0; f < N && frames; f++) {
        snprintf(file, sizeof file, "%sframe_%05d.png", dir, f);
        check_frame(file, frames, f, W, H);
    }
    free(frames);
    /* again without overwrite: refused at open, files untouched; with overwrite: replaced */
    sink_params p;
    sink_params_default(&p);
    p.width = W, p.height = H;
    frame_sink *s = NULL;
    CHECK(sink_open(dir, &p, &s) == REEL_E_EXISTS, "existing frame_00000.png not refused");
    CHECK(strstr(err_msg(), "frame_00000.png") != NULL, "message: %s", err_msg());
    frames = write_frames(dir, W, H, N, 1, 1);
    snprintf(file, sizeof file, "%sframe_%05d.png", dir, 2);
    if (frames)
        check_frame(file, frames, 2, W, H);
    free(frames);
}

static void pattern_and_visibility(void)
{
    char pat[600], file[700];
    snprintf(pat, sizeof pat, "%s/pat_%%03d.png", check_path("patdir"));
    sink_params p;
    sink_params_default(&p);
    p.width = 64, p.height = 48, p.metadata = metadata;
    frame_sink *s = NULL;
    CHECK_OK(sink_open(pat, &p, &s));
    CHECK(strstr(sink_describe(s), "png sequence") != NULL, "describe: %s", sink_describe(s));
    uint8_t rgb[64 * 48 * 3];
    for (int f = 0; f < 3; f++) {
        frames_test_pattern(rgb, 64, 48, 64 * 3, f);
        CHECK_OK(sink_write_rgb(s, rgb, 64 * 3));
    }
    snprintf(file, sizeof file, "%s/pat_000.png", check_path("patdir"));
    CHECK(access(file, F_OK) != 0, "%s visible before sink_close", file);
    CHECK_OK(sink_close(s));
    for (int f = 0; f < 3; f++) {
        snprintf(file, sizeof file, "%s/pat_%03d.png", check_path("patdir"), f);
        CHECK(access(file, F_OK) == 0, "%s missing", file);
    }
    CHECK(check_count_entries(check_path("patdir")) == 3, "stray files next to the sequence");

    /* an aborted sequence takes the folder it created with it */
    char dir[600];
    snprintf(dir, sizeof dir, "%s/", check_path("aborted"));
    free(write_frames(dir, 16, 16, 3, 0, 0));
    CHECK(access(check_path("aborted"), F_OK) != 0, "aborted sequence left its folder");

    const char *bad[] = {"bad_%s.png", "two_%d_%d.png", "pct_%.png", "x%d/y.png"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK(sink_open(check_path(bad[i]), &p, &s) == REEL_E_INVALID, "pattern %s accepted", bad[i]);
        CHECK(strstr(err_msg(), "%d") != NULL, "message for %s: %s", bad[i], err_msg());
    }
}

static void single_image(void)
{
    const char *path = check_path("one.png");
    uint8_t *frames = write_frames(path, 31, 17, 1, 0, 1);
    if (frames)
        check_frame(path, frames, 0, 31, 17);
    free(frames);
    sink_params p;
    sink_params_default(&p);
    p.width = 8, p.height = 8;
    frame_sink *s = NULL;
    const char *two = check_path("two.png");
    uint8_t rgb[8 * 8 * 3] = {0};
    CHECK_OK(sink_open(two, &p, &s));
    CHECK_OK(sink_write_rgb(s, rgb, 24));
    CHECK(sink_write_rgb(s, rgb, 24) == REEL_E_INVALID, "second frame into one .png accepted");
    CHECK(strstr(err_msg(), "%05d") != NULL, "message: %s", err_msg());
    CHECK(sink_close(s) == REEL_E_INVALID, "close after a failed frame succeeded");
    CHECK(access(two, F_OK) != 0, "%s exists after a failed run", two);
}
#endif

int main(void)
{
    check_seed("test_io_png");
#ifndef REEL_HAVE_PNG
    return check_skip("built without libpng");
#else
    sequence_new_folder();
    pattern_and_visibility();
    single_image();
    CHECK(check_count_entries(check_tmpdir()) == 3, "test folder holds %d entries (temporaries left?)",
          check_count_entries(check_tmpdir()));
    return check_done();
#endif
}
