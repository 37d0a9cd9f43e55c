/* The image_load entry that exists in every build: the decoder itself is image_load_stb.c,
 * compiled only where stb_image.h was found. */
#include "image_load.h"

#include "dit/error.h"

#include <stdlib.h>

int image_load_stb(const char *path, image_rgb *out);

int image_load(const char *path, image_rgb *out)
{
    if (!out)
        return err_set(REEL_E_INVALID, "image_load: no place for the result");
    out->width = out->height = 0;
    out->data = NULL;
    if (!path || !*path)
        return err_set(REEL_E_INVALID, "image_load: empty path");
#ifdef REEL_HAVE_STB
    return image_load_stb(path, out);
#else
    return err_set(REEL_E_UNSUPPORTED, "built without stb_image: cannot read %s", path);
#endif
}

void image_free(image_rgb *img)
{
    if (!img)
        return;
    free(img->data);
    img->data = NULL;
    img->width = img->height = 0;
}
