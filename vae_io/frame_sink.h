/* Frame sinks: where decoded frames go, one RGB8 frame at a time, as they are decoded (a sink
 * never holds the whole video).
 *
 *   path                        sink
 *   *.mp4                       H.264 (libx264, else the best encoder present), yuv420p, CRF
 *   *.mkv                       FFV1 level 3, bgr0: lossless RGB
 *   *.mov                       ProRes 4444 (prores_ks), yuv444p10le
 *   *.y4m, "-"                  YUV4MPEG2 4:4:4 to a file, or to standard output for a pipe
 *   folder/ or existing folder  PNG sequence folder/frame_00000.png, ...
 *   name_%05d.png               PNG sequence with that pattern (one %d, optional zero width)
 *   name.png                    a single PNG image
 *
 * Video containers carry the metadata pairs as tags; PNG files as tEXt/iTXt chunks; y4m has no
 * place for them. Every file is written under a temporary name and renamed when complete (see
 * out_file.h); an existing output is kept unless overwrite is set. After any failure call
 * sink_abort, which removes what was written. */
#ifndef REEL_FRAME_SINK_H
#define REEL_FRAME_SINK_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sink_params {
    int width, height;           /* yuv420p (mp4) needs both even; other sinks take any size */
    int fps_num, fps_den;        /* Wan: 16/1 */
    int crf;                     /* H.264 quality 0..51, default 18 when < 0 */
    int overwrite;               /* replace an existing output */
    const char *const *metadata; /* "key","value",...,NULL: prompt, seed, steps, model, ...
                                  * keys: 1-79 of [A-Za-z0-9_.-]; values: UTF-8 */
} sink_params;

/* 0x0, 16/1 fps, crf -1 (18), no overwrite, no metadata. */
void sink_params_default(sink_params *p);

typedef struct frame_sink frame_sink;

/* Checks the parameters, the extension and the target (REEL_E_EXISTS without overwrite) before
 * any frame is produced. Unknown extension: REEL_E_UNSUPPORTED naming it; a format whose
 * library is not in this build: REEL_E_UNSUPPORTED "built without FFmpeg: .mp4 output
 * unavailable". */
int sink_open(const char *path, const sink_params *p, frame_sink **out);

/* One frame: height rows of width × 3 bytes (R, G, B), rows row_stride_bytes apart. */
int sink_write_rgb(frame_sink *s, const uint8_t *rgb, int64_t row_stride_bytes);

/* Flushes the encoder, finalises the container and renames it into place; frees s. A sink with
 * no frames, or whose earlier write failed, is removed and reported instead. */
int sink_close(frame_sink *s);

/* Removes temporaries (and a folder the sink created); frees s. NULL is accepted. */
void sink_abort(frame_sink *s);

/* "mp4 (libx264, yuv420p, crf 18)": what the sink writes, for logs. */
const char *sink_describe(const frame_sink *s);

int64_t sink_frames_written(const frame_sink *s);
void sink_frame_size(const frame_sink *s, int *width, int *height);

#ifdef __cplusplus
}
#endif
#endif
