/* PyTorch zip checkpoints (.pth/.pt/.ckpt/.bin written by torch.save, torch >= 1.6):
 *   <root>/data.pkl                pickled (nested) dict of tensors, see pickle.h
 *   <root>/data/<key>              raw little-endian bytes of each storage
 *   <root>/version, <root>/byteorder, <root>/.data/...   bookkeeping
 * <root> is the folder of the archive's first entry, as torch's reader takes it. Tensors come
 * out as views into the file: nested dict keys joined with '.', dtype and strides as stored.
 * Values that are not tensors or dicts (step counters, config lists) are skipped. */
#ifndef REEL_PTH_H
#define REEL_PTH_H

#include "loader.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PTH_MAX_DEPTH 32      /* dict nesting; deeper means a reference loop in practice */
#define PTH_MAX_NAME 4096

/* True when data starts like a zip archive (local header or an empty archive's end record). */
int pth_is_zip(const uint8_t *data, uint64_t size);

/* Appends the tensors of the checkpoint at data[0..size) to out. */
int pth_parse(const char *path, const uint8_t *data, uint64_t size, ld_list *out);

#ifdef __cplusplus
}
#endif
#endif
