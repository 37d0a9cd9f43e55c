/* Between video tensors and 8-bit frames, exactly as Wan's reference code converts them, so a
 * reel video and a reference video made from the same tensor are identical byte for byte. */
#ifndef REEL_FRAMES_H
#define REEL_FRAMES_H

#include "dit/tensor.h"
#include "frame_sink.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Frame f of video [3, F, H, W] (f32, bf16 or f16 on the CPU, any strides) into H rows of
 * W × 3 bytes, as Wan's cache_video (wan/utils/utils.py) does it: clamp to [-1, 1], then
 * torchvision's make_grid normalisation (x + 1) / 2, then × 255 in fp32 and .type(torch.uint8),
 * which truncates. NaN, which torch leaves undefined, becomes 0. */
int frames_to_rgb8(const tensor *video, int64_t f, uint8_t *rgb, int64_t row_stride_bytes);

/* Every frame of video [3, F, H, W], in order, into the sink (whose size must be W x H): the
 * natural callback body for a decoder that produces frames chunk by chunk. */
int frames_write(const tensor *video, frame_sink *sink);

/* An RGB8 image into out [3, 1, H, W] f32 (caller's memory, any strides) in [-1, 1], as Wan's
 * image-to-video preprocessing TF.to_tensor(img).sub_(0.5).div_(0.5): v / 255, - 0.5, / 0.5. */
int frames_from_rgb8(const uint8_t *rgb, int64_t row_stride_bytes, const tensor *out);

/* A moving test picture for checking a build's sinks and the tests' round trips: colour
 * gradients, two soft-edged discs and a bar that move with t. Smooth enough that a good lossy
 * encoder keeps it above 40 dB PSNR, busy enough in every channel that a broken one does not. */
void frames_test_pattern(uint8_t *rgb, int width, int height, int64_t row_stride_bytes, int64_t t);

#ifdef __cplusplus
}
#endif
#endif
