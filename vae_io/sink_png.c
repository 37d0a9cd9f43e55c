/* PNG output through libpng: 8-bit RGB, the generation parameters as text chunks (tEXt when the
 * value is ASCII, iTXt, which is UTF-8, otherwise).
 *
 * A sequence is published all at once: each frame is encoded to its own temporary as it
 * arrives, and only sink_close renames them into place, so a failed run leaves no partial
 * sequence (and removes the folder when it created it). */

#include "dit/error.h"
#include "out_file.h"
#include "sink_impl.h"

#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { PNG_SINGLE = 0, PNG_PATTERN = 1, PNG_FOLDER = 2 };

typedef struct png_sink {
    frame_sink base;
    int kind;
    int overwrite;
    char *path;   /* as given */
    char *dir;    /* folder of a sequence; NULL for a single image */
    int dir_created;
    char *prefix; /* frame k is prefix + k (zero-padded to digits) + suffix */
    char *suffix;
    int digits;
    png_text *text;
    int n_text;
    out_file **done; /* encoded frames waiting to be published */
    size_t n_done, cap_done;
    /* libpng reports through longjmp: state the callbacks change lives here, not on the stack
     * of the function that called setjmp */
    out_file *cur;
    int io_status;
    char io_msg[200];
} png_sink;

static char *str_ndup(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
}

/* Accepts exactly one %d, %0Nd or %Nd in the file name part; anything else with '%' is refused
 * rather than guessed at. */
static int parse_pattern(png_sink *s, const char *path)
{
    const char *pct = strchr(path, '%');
    const char *slash = strrchr(path, '/');
    if (!pct || strchr(pct + 1, '%') || (slash && slash > pct))
        return err_set(REEL_E_INVALID,
                       "%s: a PNG pattern needs exactly one %%d (or %%05d) in the file name", path);
    const char *q = pct + 1;
    int digits = 0;
    while (*q >= '0' && *q <= '9' && digits < 100)
        digits = digits * 10 + (*q++ - '0');
    if (*q != 'd' || digits > 12)
        return err_set(REEL_E_INVALID,
                       "%s: a PNG pattern needs exactly one %%d (or %%05d) in the file name", path);
    s->digits = digits;
    s->prefix = str_ndup(path, (size_t)(pct - path));
    s->suffix = str_ndup(q + 1, strlen(q + 1));
    s->dir = slash ? str_ndup(path, (size_t)(slash - path)) : str_ndup(".", 1);
    if (!s->prefix || !s->suffix || !s->dir)
        return err_set(REEL_E_NOMEM, "%s: out of memory", path);
    return REEL_OK;
}

static int parse_folder(png_sink *s, const char *path)
{
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/')
        n--;
    s->dir = str_ndup(path, n);
    s->prefix = malloc(n + 8);
    s->suffix = str_ndup(".png", 4);
    if (!s->dir || !s->prefix || !s->suffix)
        return err_set(REEL_E_NOMEM, "%s: out of memory", path);
    snprintf(s->prefix, n + 8, "%s%sframe_", s->dir, s->dir[n - 1] == '/' ? "" : "/");
    s->digits = 5;
    return REEL_OK;
}

/* Frame k's file name (malloc'ed); the single-image sink has one name. */
static char *frame_name(const png_sink *s, int64_t k)
{
    if (s->kind == PNG_SINGLE)
        return str_ndup(s->path, strlen(s->path));
    size_t n = strlen(s->prefix) + strlen(s->suffix) + 32;
    char *name = malloc(n);
    if (name)
        snprintf(name, n, "%s%0*lld%s", s->prefix, s->digits, (long long)k, s->suffix);
    return name;
}

static int is_ascii(const char *v)
{
    for (; *v; v++)
        if ((unsigned char)*v >= 0x80)
            return 0;
    return 1;
}

static int build_text(png_sink *s, const char *const *md)
{
    int n = 0;
    while (md && md[2 * n])
        n++;
    if (n == 0)
        return REEL_OK;
    if (!(s->text = calloc((size_t)n, sizeof *s->text)))
        return err_set(REEL_E_NOMEM, "%s: out of memory", s->path);
    for (int i = 0; i < n; i++) {
        png_text *t = &s->text[i];
        /* libpng takes non-const pointers but only reads them */
        t->key = (char *)md[2 * i];
        t->text = (char *)md[2 * i + 1];
        t->compression = is_ascii(t->text) ? PNG_TEXT_COMPRESSION_NONE : PNG_ITXT_COMPRESSION_NONE;
    }
    s->n_text = n;
    return REEL_OK;
}

static void on_png_error(png_structp png, png_const_charp msg)
{
    png_sink *s = png_get_error_ptr(png);
    if (!s->io_status) {
        s->io_status = REEL_E_IO;
        snprintf(s->io_msg, sizeof s->io_msg, "%s", msg);
    }
    png_longjmp(png, 1);
}

static void on_png_warning(png_structp png, png_const_charp msg)
{
    /* libpng warns about things it then fixes or skips (nothing we write triggers one) */
    (void)png;
    (void)msg;
}

static void on_png_write(png_structp png, png_bytep data, size_t n)
{
    png_sink *s = png_get_io_ptr(png);
    int st = out_file_write(s->cur, data, n);
    if (st < 0) {
        s->io_status = st; /* out_file_write's message names the file and the reason */
        png_error(png, "write failed");
    }
}

static void on_png_flush(png_structp png) { (void)png; }

static int pngs_encode(png_sink *s, const uint8_t *rgb, int64_t stride)
{
    s->io_status = 0;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, s, on_png_error, on_png_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        return err_set(REEL_E_NOMEM, "%s: out of memory for libpng", out_file_path(s->cur));
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        if (s->io_status != REEL_E_IO || !s->io_msg[0])
            return s->io_status;
        return err_set(REEL_E_IO, "%s: libpng: %s", out_file_path(s->cur), s->io_msg);
    }
    s->io_msg[0] = 0;
    png_set_write_fn(png, s, on_png_write, on_png_flush);
    png_set_IHDR(png, info, (png_uint_32)s->base.width, (png_uint_32)s->base.height, 8,
                 PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (s->n_text)
        png_set_text(png, info, s->text, s->n_text);
    png_write_info(png, info);
    for (int y = 0; y < s->base.height; y++)
        png_write_row(png, rgb + (int64_t)y * stride);
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    return REEL_OK;
}

static int pngs_write(frame_sink *base, const uint8_t *rgb, int64_t stride)
{
    png_sink *s = (png_sink *)base;
    if (s->kind == PNG_SINGLE && base->frames > 0)
        return err_set(REEL_E_INVALID,
                       "%s holds one image; for several frames use a name_%%05d.png pattern or a "
                       "folder/", s->path);
    if (s->n_done == s->cap_done) {
        size_t cap = s->cap_done ? 2 * s->cap_done : 64;
        out_file **d = realloc(s->done, cap * sizeof *d);
        if (!d)
            return err_set(REEL_E_NOMEM, "%s: out of memory", s->path);
        s->done = d;
        s->cap_done = cap;
    }
    int st;
    if (!s->cur) { /* frame 0's file was opened by sink_png_open */
        char *name = frame_name(s, base->frames);
        if (!name)
            return err_set(REEL_E_NOMEM, "%s: out of memory", s->path);
        st = out_file_open(name, s->overwrite, &s->cur);
        free(name);
        if (st < 0)
            return st;
    }
    if ((st = pngs_encode(s, rgb, stride)) == REEL_OK)
        st = out_file_finish(s->cur);
    if (st < 0) {
        out_file_discard(s->cur);
        s->cur = NULL;
        return st;
    }
    s->done[s->n_done++] = s->cur;
    s->cur = NULL;
    return REEL_OK;
}

static void pngs_free(png_sink *s)
{
    for (size_t i = 0; i < s->n_done; i++)
        out_file_discard(s->done[i]);
    out_file_discard(s->cur);
    if (s->dir)
        out_dir_unprepare(s->dir, s->dir_created);
    free(s->done);
    free(s->text);
    free(s->prefix);
    free(s->suffix);
    free(s->dir);
    free(s->path);
    free(s);
}

static int pngs_close(frame_sink *base)
{
    png_sink *s = (png_sink *)base;
    for (size_t i = 0; i < s->n_done; i++) {
        out_file *f = s->done[i];
        s->done[i] = NULL;
        int st = out_file_commit(f);
        if (st < 0) {
            /* take back the frames already published: a sequence appears whole or not at all */
            for (size_t k = 0; k < i; k++) {
                char *name = frame_name(s, (int64_t)k);
                if (name)
                    unlink(name);
                free(name);
            }
            for (size_t k = i + 1; k < s->n_done; k++)
                out_file_discard(s->done[k]);
            s->n_done = 0;
            pngs_free(s);
            return st;
        }
    }
    s->n_done = 0;
    s->dir_created = 0; /* it now holds the output */
    pngs_free(s);
    return REEL_OK;
}

static void pngs_abort(frame_sink *base) { pngs_free((png_sink *)base); }

static const sink_ops pngs_ops = {pngs_write, pngs_close, pngs_abort};

int sink_png_open(const char *path, int kind, const sink_params *p, frame_sink **out)
{
    png_sink *s = calloc(1, sizeof *s);
    if (!s || !(s->path = str_ndup(path, strlen(path)))) {
        free(s);
        return err_set(REEL_E_NOMEM, "%s: out of memory", path);
    }
    s->kind = kind;
    s->overwrite = p->overwrite;
    sink_base_init(&s->base, &pngs_ops, s->path, p);
    int st = kind == PNG_PATTERN ? parse_pattern(s, path)
             : kind == PNG_FOLDER ? parse_folder(s, path)
                                  : REEL_OK;
    if (st == REEL_OK)
        st = build_text(s, p->metadata);
    char *first = st == REEL_OK ? frame_name(s, 0) : NULL;
    if (st == REEL_OK && !first)
        st = err_set(REEL_E_NOMEM, "%s: out of memory", path);
    /* an existing first frame or an unwritable folder is refused now, before minutes of
     * generation: the folder is made and frame 0's file opened here */
    if (st == REEL_OK)
        st = out_file_check_target(first, p->overwrite);
    if (st == REEL_OK && s->dir)
        st = out_dir_prepare(s->dir, &s->dir_created);
    if (st == REEL_OK)
        st = out_file_open(first, p->overwrite, &s->cur);
    free(first);
    if (st < 0) {
        pngs_free(s);
        return st;
    }
    if (kind == PNG_SINGLE)
        snprintf(s->base.desc, sizeof s->base.desc, "png %s (8-bit RGB)", path);
    else
        snprintf(s->base.desc, sizeof s->base.desc, "png sequence %s%%0%dd%s (8-bit RGB)",
                 s->prefix, s->digits > 0 ? s->digits : 1, s->suffix);
    *out = &s->base;
    return REEL_OK;
}
