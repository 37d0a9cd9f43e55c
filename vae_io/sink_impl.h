/* Inside the frame sinks: the table each format fills, and its constructor. Only frame_sink.c
 * and the sink_*.c files include this. A format struct starts with `frame_sink base`; frame_sink.c
 * checks arguments and counts frames, the format does the rest. */
#ifndef REEL_SINK_IMPL_H
#define REEL_SINK_IMPL_H

#include "frame_sink.h"

#include <stdint.h>

typedef struct sink_ops {
    /* rgb and the stride are already checked; base.frames counts the frames before this one */
    int (*write)(frame_sink *s, const uint8_t *rgb, int64_t row_stride_bytes);
    /* finalise and publish; frees everything (the format struct included) whatever the result */
    int (*close)(frame_sink *s);
    /* remove what was written; frees everything */
    void (*abort)(frame_sink *s);
} sink_ops;

struct frame_sink {
    const sink_ops *ops;
    const char *path;
    int width, height;
    int64_t frames;
    int failed; /* status of the first failed write: the sink takes no more frames */
    char desc[192];
};

/* Fills the base part (path is borrowed: the format keeps its own copy alive). */
void sink_base_init(frame_sink *s, const sink_ops *ops, const char *path, const sink_params *p);

/* "built without FFmpeg" aside, these are the formats frame_sink.c dispatches to. p is checked. */
int sink_y4m_open(const char *path, const sink_params *p, frame_sink **out);
/* kind: 0 a single image, 1 a pattern with %d, 2 a folder (frames named frame_%05d.png) */
int sink_png_open(const char *path, int kind, const sink_params *p, frame_sink **out);
/* container: "mp4", "mkv" or "mov" */
int sink_ffmpeg_open(const char *path, const char *container, const sink_params *p,
                     frame_sink **out);

#endif
