/* Writers of checkpoint files for tests: safetensors, sharded safetensors with an HF index, and
 * PyTorch zip checkpoints laid out byte for byte as torch.save writes them (checked against
 * torch 1.13: torch.load reads these files and reel reads torch's). Tests of the DiT, VAE and
 * T5 build tiny models with them. All return REEL_OK or a negative status with err_msg set. */
#ifndef REEL_TEST_MODEL_WRITER_H
#define REEL_TEST_MODEL_WRITER_H

#include "dit/tensor.h"

#include <stdint.h>

typedef struct tw_tensor {
    const char *name;
    enum dtype dtype;
    int ndim;
    int64_t shape[5];
    const void *data; /* in the tensor's dtype, contiguous */
} tw_tensor;

/* metadata_json may be NULL; otherwise a JSON object text stored as "__metadata__". */
int tw_write_safetensors(const char *path, const tw_tensor *t, int n, const char *metadata_json);

/* Splits the tensors over `shards` files named <base>-0000k-of-0000n.safetensors in dir and
 * writes <base>.safetensors.index.json (HF format: {"metadata":{"total_size":N},"weight_map":{...}}). */
int tw_write_sharded(const char *dir, const char *base, const tw_tensor *t, int n, int shards);

/* A PyTorch zip checkpoint as torch.save writes it (torch >= 1.6 zip format, pickle protocol 2):
 * <root>/data.pkl (an OrderedDict state dict with its _metadata, tensors as _rebuild_tensor_v2
 * of persistent-id storages), <root>/byteorder, <root>/data/<key> (stored, payloads 64-byte
 * aligned by an "FB" extra field), <root>/version, <root>/.data/serialization_id; root = file
 * name without extension. nest (may be NULL) wraps the state dict in {nest: {...}} like
 * Self-Forcing's generator_ema. */
int tw_write_pth(const char *path, const tw_tensor *t, int n, const char *nest);

/* The same, with the pickle given by the caller (for tests of the unpickler's refusals); the
 * storages written are data/0 .. data/<nstorage-1> holding storage_bytes[i] bytes of zeros. */
int tw_write_pth_raw(const char *path, const uint8_t *pickle, size_t pickle_len, int nstorage,
                     const uint64_t *storage_bytes);

/* The pickle tw_write_pth would write, in a malloc'd buffer (caller frees). */
int tw_pickle_state_dict(const tw_tensor *t, int n, const char *nest, uint8_t **out, size_t *len);

#endif
