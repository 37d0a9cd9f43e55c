#include "cli.h"

#include "plugin/reel.h"

#include <stdio.h>

int cmd_version(int argc, char **argv)
{
    reel_features f = reel_get_features();
    printf("reel %s\n", reel_version());
    printf("  cuda    %s\n", f.cuda ? "yes" : "no (built without CUDA)");
    printf("  cudnn   %s\n", f.cudnn ? "yes" : "no");
    printf("  png     %s\n", f.png ? "yes" : "no (built without libpng: PNG output unavailable)");
    printf("  ffmpeg  %s\n", f.ffmpeg ? "yes" : "no (built without FFmpeg: mp4/mkv/mov output unavailable)");
    printf("  stb     %s\n", f.stb ? "yes" : "no (built without stb_image: image input unavailable)");
    return 0;
}
