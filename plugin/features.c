#include "reel.h"

#define REEL_STR2(x) #x
#define REEL_STR(x) REEL_STR2(x)

const char *reel_version(void)
{
    return REEL_STR(REEL_VERSION_MAJOR) "." REEL_STR(REEL_VERSION_MINOR) "." REEL_STR(
        REEL_VERSION_PATCH);
}

reel_features reel_get_features(void)
{
    reel_features f = {0};
#ifdef REEL_HAVE_CUDA
    f.cuda = 1;
#endif
#ifdef REEL_HAVE_CUDNN
    f.cudnn = 1;
#endif
#ifdef REEL_HAVE_PNG
    f.png = 1;
#endif
#ifdef REEL_HAVE_FFMPEG
    f.ffmpeg = 1;
#endif
#ifdef REEL_HAVE_STB
    f.stb = 1;
#endif
    return f;
}
