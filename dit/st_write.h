/* Writing safetensors files (the tensor-in/tensor-out tools' outputs): header JSON, then the
 * data, each tensor 8-byte aligned; written to a temporary and renamed when complete. */
#ifndef REEL_ST_WRITE_H
#define REEL_ST_WRITE_H

#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct st_named {
    const char *name;
    const tensor *t; /* host, contiguous; f32, f16, bf16, f64, i64, i32, u8 */
} st_named;

/* metadata: "key", "value", ..., NULL (may be NULL). REEL_E_EXISTS when path exists and
 * overwrite is 0. */
int st_write_file(const char *path, const st_named *tensors, int n, const char *const *metadata,
                  int overwrite);

#ifdef __cplusplus
}
#endif
#endif
