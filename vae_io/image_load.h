/* Still images in: PNG, JPEG, BMP, TGA, GIF (first frame), PSD, PNM, HDR through stb_image,
 * converted to 8-bit RGB (grey is expanded, an alpha channel is dropped, 16-bit is reduced). */
#ifndef REEL_IMAGE_LOAD_H
#define REEL_IMAGE_LOAD_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct image_rgb {
    int width, height;
    uint8_t *data; /* malloc'ed, rows of width × 3 bytes, no padding */
} image_rgb;

/* REEL_E_NOT_FOUND when path does not exist, REEL_E_IO when it cannot be read, REEL_E_FORMAT
 * naming stb_image's reason when it is not an image it understands (or is truncated),
 * REEL_E_UNSUPPORTED when reel was built without stb_image. */
int image_load(const char *path, image_rgb *out);
void image_free(image_rgb *img);

#ifdef __cplusplus
}
#endif
#endif
