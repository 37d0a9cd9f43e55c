
#include "frame_sink.h"

#include "dit/error.h"
#include "sink_impl.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* Generous enough for any video model output, small enough that width × height × 4 and the
 * encoders' own arithmetic stay far from int overflow. */
#define SINK_MAX_SIDE 16384

void sink_params_default(sink_params *p)
{
    memset(p, 0, sizeof *p);
    p->fps_num = 16;
    p->fps_den = 1;
    p->crf = -1;
}

void sink_base_init(frame_sink *s, const sink_ops *ops, const char *path, const sink_params *p)
{
    s->ops = ops;
    s->path = path;
    s->width = p->width;
    s->height = p->height;
    s->frames = 0;
    s->failed = 0;
    s->desc[0] = 0;
}

/* Keys end up as PNG keywords (Latin-1, 1-79 bytes, no leading or double spaces), Matroska tag
 * names and MP4 'mdta' keys: the intersection of what all accept, kept simple. */
static int check_metadata(const char *const *md)
{
    if (!md)
        return REEL_OK;
    for (int i = 0; md[i]; i += 2) {
        const char *k = md[i];
        size_t n = strlen(k);
        if (n == 0 || n > 79)
            return err_set(REEL_E_INVALID, "metadata key '%s': must be 1 to 79 characters", k);
        for (size_t j = 0; j < n; j++)
            if (!isalnum((unsigned char)k[j]) && k[j] != '_' && k[j] != '-' && k[j] != '.')
                return err_set(REEL_E_INVALID,
                               "metadata key '%s': only letters, digits, '_', '-' and '.' allowed", k);
        if (!md[i + 1])
            return err_set(REEL_E_INVALID, "metadata key '%s' has no value", k);
    }
    return REEL_OK;
}

static int check_params(const char *path, const sink_params *p)
{
    if (!p)
        return err_set(REEL_E_INVALID, "%s: no sink parameters", path);
    if (p->width <= 0 || p->height <= 0 || p->width > SINK_MAX_SIDE || p->height > SINK_MAX_SIDE)
        return err_set(REEL_E_INVALID, "%s: frame size %dx%d (each side must be 1 to %d)", path,
                       p->width, p->height, SINK_MAX_SIDE);
    if (p->fps_num <= 0 || p->fps_den <= 0)
        return err_set(REEL_E_INVALID, "%s: frame rate %d/%d must be positive", path, p->fps_num,
                       p->fps_den);
    if (p->crf > 51)
        return err_set(REEL_E_INVALID, "%s: crf %d (0 to 51, lower is better)", path, p->crf);
    return check_metadata(p->metadata);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    if (m > n)
        return 0;
    for (size_t i = 0; i < m; i++)
        if (tolower((unsigned char)s[n - m + i]) != suffix[i])
            return 0;
    return 1;
}

static int is_folder(const char *path)
{
    struct stat st;
    size_t n = strlen(path);
    return (n > 0 && path[n - 1] == '/') || (stat(path, &st) == 0 && S_ISDIR(st.st_mode));
}

#if !defined(REEL_HAVE_FFMPEG) || !defined(REEL_HAVE_PNG)
static int unavailable(const char *what, const char *ext)
{
    return err_set(REEL_E_UNSUPPORTED, "built without %s: %s output unavailable", what, ext);
}
#endif

static int open_ffmpeg(const char *path, const char *container, const sink_params *p,
                       frame_sink **out)
{
#ifdef REEL_HAVE_FFMPEG
    return sink_ffmpeg_open(path, container, p, out);
#else
    return unavailable("FFmpeg", !strcmp(container, "mp4")   ? ".mp4"
                                 : !strcmp(container, "mkv") ? ".mkv"
                                                             : ".mov");
#endif
}

static int open_png(const char *path, int kind, const sink_params *p, frame_sink **out)
{
#ifdef REEL_HAVE_PNG
    return sink_png_open(path, kind, p, out);
#else
    return unavailable("libpng", "PNG");
#endif
}

int sink_open(const char *path, const sink_params *p, frame_sink **out)
{
    if (!out)
        return err_set(REEL_E_INVALID, "sink_open: no place for the result");
    *out = NULL;
    if (!path || !*path)
        return err_set(REEL_E_INVALID, "empty output path");
    TRY(check_params(path, p));
    if (!strcmp(path, "-") || ends_with(path, ".y4m"))
        return sink_y4m_open(path, p, out);
    if (is_folder(path))
        return open_png(path, 2, p, out);
    if (ends_with(path, ".png"))
        return open_png(path, strchr(path, '%') ? 1 : 0, p, out);
    if (ends_with(path, ".mp4"))
        return open_ffmpeg(path, "mp4", p, out);
    if (ends_with(path, ".mkv"))
        return open_ffmpeg(path, "mkv", p, out);
    if (ends_with(path, ".mov"))
        return open_ffmpeg(path, "mov", p, out);
    const char *dot = strrchr(path, '.');
    const char *slash = strrchr(path, '/');
    return err_set(REEL_E_UNSUPPORTED,
                   "%s: unknown output type '%s' (use .mp4, .mkv, .mov, .y4m, .png, a name_%%05d.png "
                   "pattern, a folder/, or - for y4m on standard output)",
                   path, dot && (!slash || dot > slash) ? dot : "(no extension)");
}

int sink_write_rgb(frame_sink *s, const uint8_t *rgb, int64_t row_stride_bytes)
{
    if (!s || !rgb)
        return err_set(REEL_E_INVALID, "sink_write_rgb: no sink or no frame");
    if (s->failed)
        return err_set(s->failed, "%s: an earlier frame failed; abort the sink", s->path);
    if (row_stride_bytes < (int64_t)s->width * 3)
        return err_set(REEL_E_INVALID, "%s: row stride %lld bytes is below width %d × 3", s->path,
                       (long long)row_stride_bytes, s->width);
    int st = s->ops->write(s, rgb, row_stride_bytes);
    if (st < 0) {
        s->failed = st;
        return st;
    }
    s->frames++;
    return REEL_OK;
}

int sink_close(frame_sink *s)
{
    if (!s)
        return err_set(REEL_E_INVALID, "sink_close: no sink");
    if (s->failed || s->frames == 0) {
        char path[512];
        int st = s->failed;
        snprintf(path, sizeof path, "%s", s->path);
        s->ops->abort(s);
        if (st)
            return err_set(st, "%s: not saved, an earlier frame failed to write", path);
        return err_set(REEL_E_INVALID, "%s: no frames were written; nothing was saved", path);
    }
    return s->ops->close(s);
}

void sink_abort(frame_sink *s)
{
    if (s)
        s->ops->abort(s);
}

const char *sink_describe(const frame_sink *s) { return s ? s->desc : ""; }

int64_t sink_frames_written(const frame_sink *s) { return s ? s->frames : 0; }

void sink_frame_size(const frame_sink *s, int *width, int *height)
{
    *width = s ? s->width : 0;
    *height = s ? s->height : 0;
}
