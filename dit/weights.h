/* A set of named weight tensors read from checkpoint files, mapped read-only and never copied:
 * each entry is a CPU view into the mapping, in the dtype and strides the file stores.
 *
 * weights_open takes
 *   - a .safetensors file,
 *   - a *.safetensors.index.json (sharded checkpoint; its shards are opened from its folder),
 *   - a .pth/.pt/.ckpt/.bin PyTorch zip checkpoint (nested dicts flattened with '.'),
 *   - or a folder holding one *.safetensors.index.json, or else exactly one *.safetensors, or
 *     else exactly one PyTorch checkpoint. A folder with several candidates of one kind is an
 *     error that lists them; .pth files are ignored when safetensors are present (the original
 *     Wan release puts the T5 and VAE .pth beside the DiT safetensors: name those files).
 * Every failure names the file and what is wrong with it. */
#ifndef REEL_WEIGHTS_H
#define REEL_WEIGHTS_H

#include "tensor.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weight_entry {
    const char *name; /* full key as stored; nested pickle dicts flattened with '.' */
    tensor t;         /* DEV_CPU view into the read-only mapping, dtype as stored, strides as stored;
                         t.data may be unaligned (a safetensors header has any length):
                         read through weights_read_f32 or memcpy, never by dereferencing */
    const char *file; /* path of the file it lives in (for messages) */
} weight_entry;

typedef struct weights weights;

int weights_open(const char *path, weights **out);
void weights_close(weights *ws);

/* Entries are sorted by name, numbers in names compared by value (blocks.2 before blocks.10). */
int weights_count(const weights *ws);
const weight_entry *weights_at(const weights *ws, int i);
const weight_entry *weights_find(const weights *ws, const char *name); /* NULL if absent */

/* Copies any stored float dtype (f32/f16/bf16/f8_e4m3/f8_e5m2/f64), any strides, into a
 * contiguous host f32 buffer of numel elements. REEL_E_UNSUPPORTED for integer dtypes. */
int weights_read_f32(const weight_entry *e, float *dst);

/* The path given to weights_open. */
const char *weights_path(const weights *ws);
/* The folder that holds the weight files (where config.json would be). */
const char *weights_dir(const weights *ws);
/* Files the entries live in. */
int weights_file_count(const weights *ws);
const char *weights_file(const weights *ws, int i);
/* Total bytes of tensor data. */
uint64_t weights_total_bytes(const weights *ws);

/* Natural order of names: runs of digits compare by value. */
int weights_name_cmp(const char *a, const char *b);

#ifdef __cplusplus
}
#endif
#endif
