/* stb_image behind image_load. The file is read here first, so that "cannot read" (errno) and
 * "not an image" (stb's reason) are told apart, and the pixel count is checked from the header
 * before stb allocates anything: a 60-byte file may claim to be 100000 x 100000. */

#include "dit/error.h"
#include "image_load.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* private copy: an application linking libreel may carry its own stb_image */
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#if defined(__GNUC__)
/* static copy: most of stb's API goes unused here (checked at the end of the file, so this one
 * stays off for the whole file) */
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#endif
#include <stb_image.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

#define IMAGE_MAX_PIXELS (1ll << 27) /* 134 Mpixel: 16384 x 8192 */
#define IMAGE_MAX_FILE (1ll << 30)

int image_load_stb(const char *path, image_rgb *out);

static int read_file(const char *path, unsigned char **data, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return err_set(errno == ENOENT ? REEL_E_NOT_FOUND : REEL_E_IO, "cannot open image %s: %s",
                       path, strerror(errno));
    struct stat st;
    int status = REEL_OK;
    if (fstat(fileno(f), &st) != 0)
        status = err_set(REEL_E_IO, "cannot read image %s: %s", path, strerror(errno));
    else if (!S_ISREG(st.st_mode))
        status = err_set(REEL_E_IO, "image %s is not a regular file", path);
    else if (st.st_size == 0)
        status = err_set(REEL_E_FORMAT, "image %s is empty", path);
    else if ((long long)st.st_size > IMAGE_MAX_FILE)
        status = err_set(REEL_E_UNSUPPORTED, "image %s is %lld bytes (at most %lld)", path,
                         (long long)st.st_size, IMAGE_MAX_FILE);
    unsigned char *buf = status == REEL_OK ? malloc((size_t)st.st_size) : NULL;
    if (status == REEL_OK && !buf)
        status = err_set(REEL_E_NOMEM, "out of memory reading image %s", path);
    if (status == REEL_OK && fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size)
        status = err_set(REEL_E_IO, "cannot read image %s: %s", path,
                         ferror(f) ? strerror(errno) : "the file shrank while being read");
    fclose(f); /* read-only: a close error loses nothing */
    if (status < 0) {
        free(buf);
        return status;
    }
    *data = buf;
    *size = (size_t)st.st_size;
    return REEL_OK;
}

int image_load_stb(const char *path, image_rgb *out)
{
    unsigned char *file = NULL;
    size_t size = 0;
    TRY(read_file(path, &file, &size));
    int w, h, n;
    if (!stbi_info_from_memory(file, (int)size, &w, &h, &n)) {
        int st = err_set(REEL_E_FORMAT, "%s is not an image reel can read (%s)", path,
                         stbi_failure_reason());
        free(file);
        return st;
    }
    if ((long long)w * h > IMAGE_MAX_PIXELS) {
        free(file);
        return err_set(REEL_E_UNSUPPORTED, "image %s is %dx%d (at most %lld pixels)", path, w, h,
                       IMAGE_MAX_PIXELS);
    }
    unsigned char *rgb = stbi_load_from_memory(file, (int)size, &w, &h, &n, 3);
    free(file);
    if (!rgb)
        return err_set(REEL_E_FORMAT, "cannot decode image %s: %s", path, stbi_failure_reason());
    out->width = w;
    out->height = h;
    out->data = rgb; /* stb allocates with malloc: image_free's free() matches */
    return REEL_OK;
}
